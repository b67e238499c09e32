"""`verify --emulate MODEL`: run the wheel as an older CPU under Debian's qemu-user.

The wheel is installed into its isolated venv (tfforge.venvs, cached by sha256); then
`qemu-x86_64 -cpu MODEL <venv python>` runs the project's probe (tfforge.verify.probes: for
TensorFlow an import and a few ops, including a float16 cast; for other wheels their top-level
modules' import, or the corpus workload). qemu-user refuses AVX, F16C, AVX2, FMA, BMI1 and BMI2
instructions a model lacks (it has no AVX-512 at all), so a missing feature shows as SIGILL.
What the model offers is read the same way: py-cpuinfo's CPUID decoder run under that model.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tfforge import resources
from tfforge.errors import ConfigError, TfforgeError
from tfforge.files import write_json_atomic
from tfforge.host import adapters, cpu, isa
from tfforge.paths import cache_dir

# What a model offers, read by py-cpuinfo's own CPUID decoder under qemu (the kernel's
# /proc/cpuinfo would describe the real host, not the model).
MODEL_PROBE = adapters.CPUID_PROBE


@dataclass(frozen=True)
class EmulationResult:
    model: str
    status: str  # "pass" | "signal" | "failed" | "timeout"
    signal: str | None  # e.g. "SIGILL"
    stage: str | None  # last stage the probe reached
    where: str | None  # innermost Python frame faulthandler printed
    seconds: float
    detail: str  # result line or the last lines of output


def qemu() -> str:
    path = shutil.which("qemu-x86_64")
    if path is None:
        raise ConfigError(
            "--emulate needs qemu-x86_64; install Debian's qemu-user (apt-get install qemu-user)"
        )
    return path


@cache
def models() -> tuple[str, ...]:
    """CPU model names qemu-x86_64 knows (`-cpu help`)."""
    proc = subprocess.run([qemu(), "-cpu", "help"], capture_output=True, text=True)
    names = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "x86":
            names.append(parts[1])
    return tuple(names)


def check_model(model: str) -> str:
    """The qemu model name as qemu spells it; ConfigError with the closest names otherwise."""
    known = models()
    for name in known:
        if name.lower() == model.lower():
            return name
    close = difflib.get_close_matches(model, known, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ConfigError(
        f"--emulate {model!r}: qemu-x86_64 has no such CPU model; {hint}"
        f"see `qemu-x86_64 -cpu help` (e.g. Nehalem, SandyBridge, IvyBridge, "
        "Haswell)"
    )


def _model_facts(model: str) -> dict[str, str]:
    base = re.sub(r"(-v\d+|-noTSX|-IBRS)+$", "", model)
    facts = resources.toml("qemu_models.toml")["models"].get(base, {})
    return {str(k): str(v) for k, v in facts.items()} if isinstance(facts, dict) else {}


def stands_for(model: str) -> str | None:
    """The archspec microarchitecture a qemu model stands for (qemu_models.toml), or None."""
    return _model_facts(model).get("uarch")


def model_env(model: str) -> dict[str, str]:
    """Environment that makes libraries' own CPU detection see the model as the real CPU
    (OPENBLAS_CORETYPE; see qemu_models.toml)."""
    core = _model_facts(model).get("openblas")
    return {"OPENBLAS_CORETYPE": core} if core else {}


def unexecutable(model: str, required: Iterable[str], offered: Iterable[str]) -> tuple[str, ...]:
    """Required features the real CPU behind `model` has but the model does not execute under
    qemu-user (`offered`: what CPUID says under qemu). A run that needs them confirms nothing:
    it traps where the real CPU would run."""
    import archspec.cpu

    target = stands_for(model)
    if target is None or target not in archspec.cpu.TARGETS:
        return ()
    real = isa.normalize(archspec.cpu.TARGETS[target].features)
    lost = (frozenset(required) & real) - frozenset(offered)
    return tuple(sorted(lost, key=isa.sort_key))


def _host_python() -> str:
    # The real binary: shims and wrappers (pyenv) are shell scripts qemu cannot run.
    return os.path.realpath(sys.executable)


def model_host(model: str) -> cpu.HostProfile:
    """What a qemu model offers, as a HostProfile (cached per model and qemu binary)."""
    model = check_model(model)
    qemu_path = qemu()
    key = f"{model}-{int(os.stat(qemu_path).st_mtime)}.json"
    cached = cache_dir("emulate") / key
    if cached.is_file():
        return cpu.load_host(cached)
    proc = subprocess.run(
        [qemu_path, "-cpu", model, _host_python(), "-c", MODEL_PROBE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise TfforgeError(
            f"could not read the CPU features of qemu model {model} "
            f"(exit {proc.returncode}): {_tail(proc.stderr)}"
        )
    doc = json.loads(lines[-1])
    snapshot = {
        "schema": cpu.SCHEMA,
        "name": f"qemu-{model}",
        "vendor": doc["vendor"],
        "model_name": f"{doc['brand']} [qemu-x86_64 -cpu {model}]",
        "arch": cpu.X86,
        "flags": sorted(doc["flags"]),
    }
    write_json_atomic(cached, snapshot)
    return cpu.load_host(cached)


def _tail(text: str, lines: int = 3) -> str:
    keep = [
        ln
        for ln in text.strip().splitlines()
        if ln.strip() and "TCG doesn't support requested feature" not in ln
    ]
    return " | ".join(keep[-lines:]) or "no output"


def run(python: Path, model: str, *, script: str, timeout: float) -> EmulationResult:
    """Run a probe script (tfforge.verify.probes) with `python` (a venv's) under
    qemu-x86_64 -cpu MODEL."""
    model = check_model(model)
    return run_probe(
        [qemu(), "-cpu", model], python, model, script=script, timeout=timeout, env=model_env(model)
    )


# One thread per pool: the runs are compared, not timed, and qemu-user emulates every thread.
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "POLARS_MAX_THREADS": "1",
}


def run_probe(
    prefix: list[str],
    python: Path,
    label: str,
    *,
    script: str,
    timeout: float,
    env: dict[str, str] | None = None,
) -> EmulationResult:
    """A probe script run as `prefix + [python, ...]` (no prefix: on this CPU)."""
    model = label
    cmd = [*prefix, str(python), "-X", "faulthandler", "-c", script]
    env = {**os.environ, **QUIET_ENV, **(env or {})}
    t0 = time.monotonic()
    # cwd: an empty folder, so a ./tensorflow directory cannot shadow the installed package.
    with tempfile.TemporaryDirectory(prefix="tfforge-emulate-") as cwd:
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=cwd,
                env=env,
                errors="replace",
            )
        except subprocess.TimeoutExpired as exc:
            out = (
                exc.stdout.decode("utf-8", "replace")
                if isinstance(exc.stdout, bytes)
                else (exc.stdout or "")
            )
            return EmulationResult(
                model,
                "timeout",
                None,
                _stage(out),
                None,
                round(time.monotonic() - t0, 1),
                f"still running after {timeout:g} s",
            )
    seconds = round(time.monotonic() - t0, 1)
    stage = _stage(proc.stdout)
    result = next(
        (
            ln.split(" ", 1)[1]
            for ln in proc.stdout.splitlines()
            if ln.startswith("TFFORGE-RESULT ")
        ),
        None,
    )
    if proc.returncode == 0:
        return EmulationResult(model, "pass", None, stage, None, seconds, result or "")
    if proc.returncode < 0:
        try:
            sig = signal.Signals(-proc.returncode).name
        except ValueError:
            sig = f"signal {-proc.returncode}"
        return EmulationResult(
            model, "signal", sig, stage, _where(proc.stderr), seconds, _tail(proc.stderr)
        )
    return EmulationResult(
        model, "failed", None, stage, _where(proc.stderr), seconds, result or _tail(proc.stderr)
    )


def _stage(stdout: str) -> str | None:
    stages = [ln.split(" ", 1)[1] for ln in stdout.splitlines() if ln.startswith("TFFORGE-STAGE ")]
    return stages[-1] if stages else None


def _where(stderr: str) -> str | None:
    """The innermost frame of faulthandler's traceback ('File "...", line N in f')."""
    for line in stderr.splitlines():
        line = line.strip()
        if line.startswith("File ") and "<frozen" not in line:
            path, _, rest = line[len("File ") :].partition(", line ")
            return f"{Path(path.strip(chr(34))).name}:{rest}"
    return None
