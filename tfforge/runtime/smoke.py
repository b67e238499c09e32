"""Does a wheel install, import and translate the golden words correctly?

Runs tfprobe.py and the g2p runner with the python of the wheel's cached venv (or this
interpreter when no wheel is given), single-threaded (OMP_NUM_THREADS=1, intra/inter-op
threads 1), and compares every word with the golden phonemes.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tfforge.errors import VerifyError
from tfforge.files import JsonDoc
from tfforge.runtime import g2p, probe, venvs
from tfforge.runtime.probe import TfPython

if TYPE_CHECKING:  # verify is loaded only when a wheel is given
    from tfforge.verify.answers import HostVerdict

CURRENT = "current"  # the wheel spec meaning: this interpreter's TensorFlow


@dataclass(frozen=True)
class Mismatch:
    word: str
    expected: tuple[str, ...]
    got: tuple[str, ...]


def resolve(spec: str | None) -> TfPython:
    """Install (once) the wheel a spec names; no spec = this interpreter's TensorFlow."""
    if not spec or spec == CURRENT:
        return probe.current()
    wheel = venvs.wheel_from_spec(spec)
    return TfPython(venvs.venv_python(wheel), wheel)


def single_thread_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def compare(golden: list[tuple[str, list[str]]], predictions: list[list[str]]) -> list[Mismatch]:
    """The golden words whose prediction differs, in order; VerifyError when the runner gave
    another number of predictions than there are words (nothing can be matched then)."""
    if len(predictions) != len(golden):
        raise VerifyError(
            f"the g2p runner returned {len(predictions)} predictions for {len(golden)} words; "
            "its output does not line up with the golden file"
        )
    return [
        Mismatch(word, tuple(want), tuple(got))
        for (word, want), got in zip(golden, predictions, strict=True)
        if list(want) != list(got)
    ]


def smoke(
    spec: str | None,
    *,
    golden: Path,
    mode: str,
    batch: int,
    repeat: int,
    timeout: float,
    status: Callable[[str], None] = lambda line: None,
) -> JsonDoc:
    """The smoke result document (`ok` False when words differ); VerifyError when TensorFlow
    does not import or the runner fails. `status` receives progress lines."""
    pairs = g2p.read_golden(golden)
    tf_python = resolve(spec)
    env = single_thread_env()
    static = _static_verdict(tf_python, status)
    started = time.monotonic()
    try:
        tf = probe.probe_tensorflow(tf_python, env, timeout)
    except VerifyError as exc:
        if static is not None and static.ok:
            raise VerifyError(
                f"{exc} - and verify's static verdict says this host has every "
                "feature the wheel requires: smoke and verify disagree (not a "
                "missing CPU feature, or verify missed one)"
            ) from exc
        raise
    if static is not None and static.answer == "cannot run":
        raise VerifyError(
            f"smoke and verify disagree: {tf_python.name} imports and runs on "
            f"this host, but verify's static verdict says it lacks "
            f"{', '.join(static.missing)}; verify classed a feature as required "
            "that is not (report it with `invoke verify WHEEL --json`)"
        )
    status(f"TensorFlow {tf.get('version')} imports ({time.monotonic() - started:.1f} s)")
    proc, doc = probe.run_script(
        tf_python,
        [
            str(g2p.RUNNER),
            "--words",
            str(golden),
            "--mode",
            mode,
            "--batch",
            str(batch),
            "--intra",
            "1",
            "--inter",
            "1",
            "--warmup",
            "1",
            "--repeat",
            str(repeat),
        ],
        env,
        timeout,
    )
    if proc.returncode != 0 or doc is None or "predictions" not in doc:
        raise VerifyError(
            f"the g2p runner failed with {tf_python.name}: {probe.explain_failure(proc, doc)}"
        )
    mismatches = compare(pairs, doc["predictions"])
    median = statistics.median(doc["times_s"])
    return {
        "ok": not mismatches,
        "wheel": str(tf_python.wheel) if tf_python.wheel else None,
        "python": str(tf_python.python),
        "tensorflow": {
            k: tf.get(k)
            for k in (
                "version",
                "build_info",
                "mkl_enabled",
                "onednn_on",
                "onednn_env",
                "unused_cpu_features",
                "missing_cpu_features",
            )
        },
        "threads": {"OMP_NUM_THREADS": "1", "intra_op": 1, "inter_op": 1},
        "mode": mode,
        "batch": batch,
        "golden": str(golden),
        "words": len(pairs),
        "matched": len(pairs) - len(mismatches),
        "mismatches": [
            {"word": m.word, "expected": " ".join(m.expected), "got": " ".join(m.got)}
            for m in mismatches
        ],
        "times_s": doc["times_s"],
        "words_per_s": len(pairs) / median,
        "verify": None
        if static is None
        else {
            "host": static.name,
            "runs": static.ok,
            "answer": static.answer,
            "missing": list(static.missing),
            "unsettled": list(static.unsettled),
        },
    }


def _static_verdict(tf_python: TfPython, status: Callable[[str], None]) -> HostVerdict | None:
    """verify's static verdict for this host (cached scan), or None without a wheel."""
    if tf_python.wheel is None:
        return None
    from tfforge.host import cpu
    from tfforge.verify import verdict, wheelscan

    status("verify's static verdict for this host (ISA scan, cached per wheel)")
    return verdict.static_host_verdict(
        tf_python.wheel, cpu.detect_host(), jobs=wheelscan.default_jobs(), status=status
    )
