"""Running TensorFlow-side scripts (tfprobe.py, the g2p runner) with a chosen Python.

`TfPython` names the interpreter (a wheel's cached venv, or the one running tfforge);
`run_script` runs a standalone script with it and reads the JSON line it prints;
`probe_tensorflow` is the one place that runs tfprobe.py (detect, smoke and bench use it);
`explain_failure` turns a dead process into one line that says whether the CPU is the cause.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tfforge.errors import ConfigError, TfforgeError, VerifyError
from tfforge.files import JsonDoc

TFPROBE = Path(__file__).resolve().parent / "tfprobe.py"
# cpu_feature_guard.cc aborts with this when the binary's baseline ISA is missing.
_GUARD = re.compile(r"compiled to use (\S+) instructions, but these aren't available")


@dataclass(frozen=True)
class TfPython:
    """The Python that runs TensorFlow: a wheel's venv, or (wheel None) this interpreter."""

    python: Path
    wheel: Path | None

    @property
    def name(self) -> str:
        return self.wheel.name if self.wheel else f"the current environment ({self.python})"


def current() -> TfPython:
    return TfPython(Path(sys.executable), None)


def run_script(
    tf: TfPython, args: list[str], env: Mapping[str, str] | None, timeout: float
) -> tuple[subprocess.CompletedProcess[str], JsonDoc | None]:
    """Run a standalone script with tf's python; (process, its last JSON line or None)."""
    cmd = [str(tf.python), *args]
    try:
        proc = subprocess.run(
            cmd,
            env=None if env is None else dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise TfforgeError(
            f"{Path(args[0]).name} with {tf.name} did not finish in "
            f"{timeout:.0f} s (raise --timeout)"
        ) from None
    doc = None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if lines:
        try:
            doc = json.loads(lines[-1])
        except json.JSONDecodeError:
            doc = None
    return proc, doc


def explain_failure(proc: subprocess.CompletedProcess[str], doc: JsonDoc | None) -> str:
    """One line saying why TensorFlow did not import/run, and whether the CPU is the cause."""
    text = (proc.stderr or "") + "\n" + str((doc or {}).get("traceback", ""))
    guard = _GUARD.search(text)
    if guard:
        return (
            f"TensorFlow aborted: it was compiled to use {guard.group(1)}, which this CPU "
            "lacks (a missing CPU feature; `invoke verify WHEEL` shows what the wheel needs)"
        )
    if proc.returncode == -signal.SIGILL or "Illegal instruction" in text:
        return (
            "TensorFlow died with SIGILL (illegal instruction): the wheel uses a CPU "
            "feature this machine lacks (`invoke verify WHEEL` shows which)"
        )
    if proc.returncode < 0:
        return f"the process was killed by signal {signal.Signals(-proc.returncode).name}"
    if doc and doc.get("error"):
        return str(doc.get("message") or doc["error"])
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^\w*(Error|Exception)\b", ln)]
    return (errors or lines or [f"exit code {proc.returncode}"])[-1]


def probe_tensorflow(tf: TfPython, env: Mapping[str, str] | None, timeout: float) -> JsonDoc:
    """tfprobe's JSON (version, build info, oneDNN/MKL, unused CPU features).

    Raises ConfigError when this interpreter has no TensorFlow, VerifyError when TensorFlow
    does not import (the reason says whether the CPU is the cause), TfforgeError on a timeout.
    """
    proc, doc = run_script(tf, [str(TFPROBE)], env, timeout)
    if proc.returncode == 0 and doc is not None and doc.get("installed", True):
        return doc
    if doc is not None and not doc.get("installed", True):
        message = doc.get("error", "not installed")
        if tf.wheel is None and "No module named 'tensorflow'" in message:
            raise ConfigError(
                f"TensorFlow is not installed for {tf.python}; pass a wheel "
                "(invoke smoke wheels/NAME.whl) or a pin (tensorflow-cpu==2.21.0)"
            )
        raise VerifyError(f"import tensorflow failed with {tf.name}: {message}")
    if doc is None and proc.returncode == 0:
        raise VerifyError(f"the TensorFlow probe printed no JSON document with {tf.name}")
    raise VerifyError(f"import tensorflow failed with {tf.name}: {explain_failure(proc, doc)}")
