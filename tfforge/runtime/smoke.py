"""`invoke smoke`: does a wheel install, import and translate the golden words correctly?

Runs tfforge/tfprobe.py and the g2p runner with the python of the wheel's cached venv (or this
interpreter when no wheel is given), single-threaded (OMP_NUM_THREADS=1, intra/inter-op
threads 1), and compares every word with the golden phonemes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tfforge.runtime import g2p
from tfforge.runtime import venvs
from tfforge.settings import load as settings
from tfforge.console import info, print_json, say
from tfforge.errors import ConfigError, TfforgeError, VerifyError

CURRENT = "current"  # the wheel spec meaning: this interpreter's TensorFlow
TFPROBE = Path(__file__).resolve().parent / "tfprobe.py"
# cpu_feature_guard.cc aborts with this when the binary's baseline ISA is missing.
_GUARD = re.compile(r"compiled to use (\S+) instructions, but these aren't available")


@dataclass(frozen=True)
class Target:
    """Where TensorFlow comes from: a wheel in its venv, or this interpreter."""

    python: Path
    wheel: Path | None

    @property
    def name(self) -> str:
        return self.wheel.name if self.wheel else f"the current environment ({self.python})"


@dataclass(frozen=True)
class Mismatch:
    word: str
    expected: tuple[str, ...]
    got: tuple[str, ...]


def number(flag: str, value, kind=int, minimum: float = 0):
    """A command-line number, or ConfigError naming the flag."""
    try:
        result = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--{flag} {value!r} is not a{'n integer' if kind is int else ' number'}")
    if result < minimum:
        raise ConfigError(f"--{flag} {value!r} must be at least {minimum}")
    return result


def resolve(spec: str | None) -> Target:
    """Install (once) the wheel a spec names; no spec = this interpreter's TensorFlow."""
    if not spec or spec == CURRENT:
        return Target(Path(sys.executable), None)
    wheel = venvs.wheel_from_spec(spec)
    return Target(venvs.venv_python(wheel), wheel)


def single_thread_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def run_script(target: Target, args: list[str], env: dict[str, str],
               timeout: float) -> tuple[subprocess.CompletedProcess, dict | None]:
    """Run a standalone script with the target's python; (process, its JSON doc or None)."""
    cmd = [str(target.python), *args]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TfforgeError(f"{Path(args[0]).name} with {target.name} did not finish in "
                           f"{timeout:.0f} s (raise --timeout)")
    doc = None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if lines:
        try:
            doc = json.loads(lines[-1])
        except json.JSONDecodeError:
            doc = None
    return proc, doc


def explain_failure(proc: subprocess.CompletedProcess, doc: dict | None) -> str:
    """One line saying why TensorFlow did not import/run, and whether the CPU is the cause."""
    text = (proc.stderr or "") + "\n" + (doc or {}).get("traceback", "")
    guard = _GUARD.search(text)
    if guard:
        return (f"TensorFlow aborted: it was compiled to use {guard.group(1)}, which this CPU "
                "lacks (a missing CPU feature; `invoke verify WHEEL` shows what the wheel needs)")
    if proc.returncode == -signal.SIGILL or "Illegal instruction" in text:
        return ("TensorFlow died with SIGILL (illegal instruction): the wheel uses a CPU "
                "feature this machine lacks (`invoke verify WHEEL` shows which)")
    if proc.returncode < 0:
        return f"the process was killed by signal {signal.Signals(-proc.returncode).name}"
    if doc and doc.get("error"):
        return str(doc.get("message") or doc["error"])
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^\w*(Error|Exception)\b", ln)]
    return (errors or lines or [f"exit code {proc.returncode}"])[-1]


def probe(target: Target, env: dict[str, str], timeout: float) -> dict:
    """tfprobe's JSON (version, build info, oneDNN/MKL, unused CPU features) or an error."""
    proc, doc = run_script(target, [str(TFPROBE)], env, timeout)
    if proc.returncode == 0 and doc is not None and doc.get("installed", True):
        return doc
    if doc is not None and not doc.get("installed", True):
        message = doc.get("error", "not installed")
        if target.wheel is None and "No module named 'tensorflow'" in message:
            raise ConfigError(f"TensorFlow is not installed for {target.python}; pass a wheel "
                              "(invoke smoke wheels/NAME.whl) or a pin (tensorflow-cpu==2.21.0)")
        raise VerifyError(f"import tensorflow failed with {target.name}: {message}")
    raise VerifyError(f"import tensorflow failed with {target.name}: "
                      f"{explain_failure(proc, doc)}")


def compare(golden: list[tuple[str, list[str]]], predictions: list[list[str]]) -> list[Mismatch]:
    return [Mismatch(word, tuple(want), tuple(got))
            for (word, want), got in zip(golden, predictions) if list(want) != list(got)]


def smoke(spec: str | None, *, golden: Path, mode: str, batch: int, repeat: int,
          timeout: float) -> dict:
    """The smoke result document; raises VerifyError (after nothing is left half-done)."""
    pairs = g2p.read_golden(golden)
    target = resolve(spec)
    env = single_thread_env()
    static = _static_verdict(target)
    started = time.monotonic()
    try:
        tf = probe(target, env, timeout)
    except VerifyError as exc:
        if static is not None and static.ok:
            raise VerifyError(f"{exc} - and verify's static verdict says this host has every "
                              "feature the wheel requires: smoke and verify disagree (not a "
                              "missing CPU feature, or verify missed one)") from exc
        raise
    if static is not None and not static.ok:
        raise VerifyError(f"smoke and verify disagree: {target.name} imports and runs on this "
                          f"host, but verify's static verdict says it lacks "
                          f"{', '.join(static.missing)}; verify classed a feature as required "
                          "that is not (report it with `invoke verify WHEEL --json`)")
    info(f"TensorFlow {tf.get('version')} imports ({time.monotonic() - started:.1f} s)")
    proc, doc = run_script(target, [str(g2p.RUNNER), "--words", str(golden), "--mode", mode,
                                    "--batch", str(batch), "--intra", "1", "--inter", "1",
                                    "--warmup", "1", "--repeat", str(repeat)], env, timeout)
    if proc.returncode != 0 or doc is None or "predictions" not in doc:
        raise VerifyError(f"the g2p runner failed with {target.name}: "
                          f"{explain_failure(proc, doc)}")
    mismatches = compare(pairs, doc["predictions"])
    median = statistics.median(doc["times_s"])
    return {
        "ok": not mismatches,
        "wheel": str(target.wheel) if target.wheel else None,
        "python": str(target.python),
        "tensorflow": {k: tf.get(k) for k in ("version", "build_info", "mkl_enabled",
                                              "onednn_on", "onednn_env",
                                              "unused_cpu_features", "missing_cpu_features")},
        "threads": {"OMP_NUM_THREADS": "1", "intra_op": 1, "inter_op": 1},
        "mode": mode, "batch": batch, "golden": str(golden), "words": len(pairs),
        "matched": len(pairs) - len(mismatches),
        "mismatches": [{"word": m.word, "expected": " ".join(m.expected),
                        "got": " ".join(m.got)} for m in mismatches],
        "times_s": doc["times_s"], "words_per_s": len(pairs) / median,
        "verify": None if static is None else {"host": static.name, "runs": static.ok,
                                               "missing": list(static.missing)},
    }


def _static_verdict(target: Target):
    """verify's static verdict for this host (cached scan), or None without a wheel."""
    if target.wheel is None:
        return None
    from tfforge.host import cpu
    from tfforge.verify import verdict, wheelscan
    info("verify's static verdict for this host (ISA scan, cached per wheel)")
    return verdict.static_host_verdict(target.wheel, cpu.detect_host(),
                                       jobs=wheelscan.default_jobs(), status=info)


def _print(doc: dict) -> None:
    tf = doc["tensorflow"]
    build = ", ".join(f"{k}={v}" for k, v in sorted((tf.get("build_info") or {}).items()))
    onednn = "on" if tf.get("onednn_on") else "off"
    say(f"wheel:      {doc['wheel'] or 'none (current environment)'}")
    say(f"python:     {doc['python']}")
    say(f"tensorflow: {tf.get('version')}  build: {build or 'n/a'}")
    say(f"oneDNN:     {onednn} (TF_ENABLE_ONEDNN_OPTS={tf.get('onednn_env') or 'unset'}), "
        f"MKL/oneDNN compiled in: {'yes' if tf.get('mkl_enabled') else 'no'}")
    say("CPU features this TensorFlow does not use: "
        + (" ".join(tf.get("unused_cpu_features") or []) or "none"))
    say("threads:    OMP_NUM_THREADS=1, intra-op 1, inter-op 1")
    if doc.get("verify"):
        say(f"verify:     static verdict for this host: "
            f"{'runs' if doc['verify']['runs'] else 'cannot run'} (agrees with this run)")
    say(f"g2p:        {doc['matched']}/{doc['words']} golden words match ({doc['mode']}, "
        f"batch {doc['batch']}); {doc['words_per_s']:,.0f} words/s "
        f"(median of {len(doc['times_s'])})")
    for m in doc["mismatches"][:10]:
        say(f"  MISMATCH {m['word']}: expected {m['expected']!r}, got {m['got']!r}")


def smoke_command(wheel: str | None = None, *, golden: str | None = None,
                  mode: str | None = None, batch: int | None = None,
                  repeat: int | None = None, timeout: float | None = None,
                  as_json: bool = False) -> dict:
    opts = settings({"smoke_mode": mode, "smoke_batch": batch, "smoke_repeat": repeat,
                     "smoke_timeout": timeout}, prefix="smoke_")
    if opts["smoke_mode"] not in g2p.MODES:
        raise ConfigError(f"--mode {opts['smoke_mode']!r} is not one of {', '.join(g2p.MODES)}")
    batch = number("batch", opts["smoke_batch"], int, 1)
    repeat = number("repeat", opts["smoke_repeat"], int, 1)
    timeout = number("timeout", opts["smoke_timeout"], float, 1)
    golden_path = Path(golden) if golden else g2p.GOLDEN
    if not golden_path.is_file():
        raise ConfigError(f"golden file {golden!r} not found; pass a file of "
                          "`word<TAB>phonemes` lines (default: the bundled one)")
    doc = smoke(wheel, golden=golden_path, mode=opts["smoke_mode"], batch=batch,
                repeat=repeat, timeout=timeout)
    if as_json:
        print_json(doc)
    else:
        _print(doc)
    if not doc["ok"]:
        first = ", ".join(f"{m['word']} (expected {m['expected']!r}, got {m['got']!r})"
                          for m in doc["mismatches"][:3])
        raise VerifyError(f"{len(doc['mismatches'])} of {doc['words']} words differ from the "
                          f"golden phonemes; first: {first}")
    return doc
