"""The g2p benchmark: the model across wheels x threading x oneDNN x mode x batch size.

Each wheel gets its own cached venv (runtime/venvs.py); each configuration runs in its own
process (runtime/g2p/runner.py): warm-up passes, then timed passes over the same words. A row
reports the median words/s with min and max, and is checked against the golden phonemes.
Outputs: bench.json, bench.md (table with speedup against a named baseline row), bench.png
(runtime/bench_report.py).
"""

from __future__ import annotations

import glob
import itertools
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

from tfforge import __version__
from tfforge.errors import ConfigError, TfforgeError
from tfforge.files import JsonDoc, expand
from tfforge.paths import project_root
from tfforge.runtime import g2p, venvs
from tfforge.runtime.g2p import MODES
from tfforge.runtime.probe import TfPython, explain_failure, probe_tensorflow, run_script
from tfforge.runtime.smoke import compare, single_thread_env

T = TypeVar("T")
Golden = list[tuple[str, list[str]]]  # (word, phonemes) pairs
Axis = str | Sequence[object] | None  # a comma list, a sequence of values, or None for all

THREADS = ("default", "1")  # TensorFlow's defaults; intra=inter=1 with OMP_NUM_THREADS=1
ONEDNN = ("0", "1")  # TF_ENABLE_ONEDNN_OPTS
BATCHES = (1, 64)
REFERENCE = "g2p-en-numpy"
# --quick: small and fast, for tests and a first look; explicit options still win.
QUICK: dict[str, tuple[str, ...] | tuple[int, ...] | int] = {
    "threads": ("1",),
    "onednn": ("0", "1"),
    "modes": ("graph", "frozen"),
    "batches": (64,),
    "warmup": 1,
    "repeat": 2,
    "words": 256,
}


@dataclass(frozen=True)
class Config:
    """One benchmark configuration; `key` (without the batch) names a baseline."""

    wheel: str
    threads: str
    onednn: str
    mode: str
    batch: int

    @property
    def key(self) -> str:
        return f"{self.wheel} threads={self.threads} onednn={self.onednn} {self.mode}"


@dataclass(frozen=True)
class Plan:
    specs: tuple[str, ...]
    threads: tuple[str, ...]
    onednn: tuple[str, ...]
    modes: tuple[str, ...]
    batches: tuple[int, ...]
    warmup: int
    repeat: int
    words: int
    reference: bool
    baseline: str | None
    out_dir: Path
    timeout: float
    # The golden (word, phonemes) pairs, read once; the first `words` are benchmarked.
    golden: tuple[tuple[str, list[str]], ...] = field(repr=False)


@dataclass
class Row:
    key: str
    wheel: str
    threads: str
    onednn: str
    mode: str
    batch: int
    times_s: list[float] = field(default_factory=list)
    words_per_s: dict[str, float] | None = None
    mismatches: int | None = None
    speedup: float | None = None
    error: str | None = None


class Steps(Protocol):
    """The step display `run` reports to (console.Progress is one)."""

    def step(self, text: str) -> None: ...
    def done(self, line: str) -> None: ...
    def __enter__(self) -> Steps: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class StepsFactory(Protocol):
    """Makes the step display of one job: `progress(title, total=N)`."""

    def __call__(self, title: str, total: int | None = None) -> Steps: ...


def _choices(
    name: str,
    given: Axis,
    allowed: tuple[T, ...],
    fallback: tuple[T, ...],
    convert: Callable[[str], T],
) -> tuple[T, ...]:
    if given is None or given == "":
        return fallback
    items = given.split(",") if isinstance(given, str) else list(given)
    values: list[T] = []
    for item in (str(i).strip() for i in items):
        try:
            value: T | None = convert(item)
        except ValueError:
            value = None
        if value is None or value not in allowed:
            raise ConfigError(f"--{name} {item!r} is not one of {', '.join(map(str, allowed))}")
        if value not in values:
            values.append(value)
    return tuple(values)


def make_plan(
    specs: list[str],
    *,
    threads: Axis = None,
    onednn: Axis = None,
    modes: Axis = None,
    batches: Axis = None,
    warmup: int = 1,
    repeat: int = 5,
    words: int = 1024,
    reference: bool = False,
    baseline: str | None = None,
    out_dir: Path | None = None,
    timeout: float = 1800.0,
) -> Plan:
    """Check the axes (comma lists or tuples; None = all) and read the golden words once."""
    if not specs:
        raise ConfigError(
            "no wheel given; pass wheel files, names in wheels/ or PyPI pins "
            "(e.g. invoke bench tensorflow-cpu==2.21.0)"
        )
    batch_choices = tuple(sorted(set(BATCHES) | {2, 4, 8, 16, 32, 128, 256}))
    plan = Plan(
        specs=tuple(dict.fromkeys(specs)),
        threads=_choices("threads", threads, THREADS, THREADS, str),
        onednn=_choices("onednn", onednn, ONEDNN, ONEDNN, str),
        modes=_choices("modes", modes, MODES, MODES, str),
        batches=_choices("batches", batches, batch_choices, BATCHES, int),
        warmup=warmup,
        repeat=repeat,
        words=words,
        reference=reference,
        baseline=baseline or None,
        out_dir=out_dir or project_root() / "bench",
        timeout=timeout,
        golden=tuple(g2p.read_golden()),
    )
    if plan.words > len(plan.golden):
        raise ConfigError(
            f"--words {plan.words}: choose 1 to {len(plan.golden)} (the golden words)"
        )
    return plan


def wheel_label(wheel: Path) -> str:
    name, version = venvs.check_installable(wheel)
    return f"{name}-{version}"


def configs(plan: Plan, labels: list[str]) -> list[Config]:
    return [
        Config(*combo)
        for combo in itertools.product(labels, plan.threads, plan.onednn, plan.modes, plan.batches)
    ]


def find_baseline(plan: Plan, keys: list[str]) -> str:
    """The key the baseline option names: exact, or the one key whose parts contain all its
    words ('2.14.1 threads=1 xla')."""
    if not plan.baseline:
        return REFERENCE if plan.reference else keys[0]
    if plan.baseline == REFERENCE or plan.baseline in keys:
        if plan.baseline == REFERENCE and not plan.reference:
            raise ConfigError(f"--baseline {REFERENCE} needs --reference")
        return plan.baseline
    words = plan.baseline.split()
    hits = [k for k in keys if all(any(w in token for token in k.split()) for w in words)]
    if len(hits) != 1:
        raise ConfigError(
            f"--baseline {plan.baseline!r} matches {len(hits)} configurations; "
            f"name one of: {'; '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
        )
    return hits[0]


def stats(words: int, times: list[float]) -> dict[str, float]:
    rates = [words / t for t in times]
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def config_env(threads: str, onednn: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")
    }
    env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    if threads == "1":
        env["OMP_NUM_THREADS"] = "1"
    return env


def config_row(cfg: Config) -> Row:
    return Row(cfg.key, cfg.wheel, cfg.threads, cfg.onednn, cfg.mode, cfg.batch)


def reference_row() -> Row:
    return Row(REFERENCE, REFERENCE, "1", "-", "numpy", 1)


def run_config(row: Row, target: TfPython, plan: Plan, words_file: Path, golden: Golden) -> Row:
    """Fill a configuration's row (config_row) from the runner; TfforgeError on a timeout."""
    args = [
        str(g2p.RUNNER),
        "--words",
        str(words_file),
        "--mode",
        row.mode,
        "--batch",
        str(row.batch),
        "--warmup",
        str(plan.warmup),
        "--repeat",
        str(plan.repeat),
    ]
    if row.threads == "1":
        args += ["--intra", "1", "--inter", "1"]
    proc, doc = run_script(target, args, config_env(row.threads, row.onednn), plan.timeout)
    return _fill(row, proc, doc, golden)


def run_reference(row: Row, plan: Plan, words_file: Path, golden: Golden) -> Row:
    """Fill the reference row (reference_row); TfforgeError on a timeout or a failed venv."""
    python = venvs.venv_python(None, requirements=g2p.REFERENCE_REQUIREMENTS)
    target = TfPython(python, None)
    args = [
        str(g2p.REFERENCE),
        "--words",
        str(words_file),
        "--warmup",
        str(plan.warmup),
        "--repeat",
        str(plan.repeat),
    ]
    proc, doc = run_script(target, args, single_thread_env(), plan.timeout)
    return _fill(row, proc, doc, golden)


def _measure(row: Row, fill: Callable[..., Row], *args: object) -> Row:
    """fill(row, *args); its TfforgeError (a timeout, a venv that would not build) becomes the
    row's error, so the other rows still run."""
    try:
        return fill(row, *args)
    except TfforgeError as exc:
        row.error = str(exc)
        return row


def _fill(
    row: Row, proc: subprocess.CompletedProcess[str], doc: JsonDoc | None, golden: Golden
) -> Row:
    """The row's timings and golden mismatches from a runner's JSON, or its failure."""
    if proc.returncode != 0 or doc is None or "times_s" not in doc:
        row.error = explain_failure(proc, doc)
        return row
    row.times_s = doc["times_s"]
    row.words_per_s = stats(doc["words"], doc["times_s"])
    row.mismatches = len(compare(golden, doc["predictions"]))
    return row


def add_speedups(rows: list[Row], baseline: str) -> None:
    """Speedup against the baseline row of the same batch size (or its only row)."""
    base = {r.batch: r for r in rows if r.key == baseline and r.words_per_s}
    for r in rows:
        ref = base.get(r.batch) or (next(iter(base.values())) if len(base) == 1 else None)
        if r.words_per_s and ref and ref.words_per_s:
            r.speedup = r.words_per_s["median"] / ref.words_per_s["median"]


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }


def _done_line(row: Row) -> str:
    name = f"{row.key} batch {row.batch}"
    w = row.words_per_s
    if row.error or w is None:
        return f"{name}: FAILED: {row.error}"
    check = "" if not row.mismatches else f" ({row.mismatches} words differ from golden!)"
    return f"{name}: {w['median']:,.0f} words/s (min {w['min']:,.0f}, max {w['max']:,.0f}){check}"


def run(plan: Plan, progress: StepsFactory) -> JsonDoc:
    """Run the whole matrix; returns the results document (also when rows failed).

    `progress(title, total=N)` makes the step display (console.Progress: a context manager with
    step(text) and done(line)); Ctrl-C stops the matrix and marks the document interrupted."""
    golden = list(plan.golden[: plan.words])
    targets: dict[str, TfPython] = {}
    wheels: list[dict[str, object]] = []
    # Every spec is checked (and downloaded) before any venv is built: bad input fails fast.
    resolved: dict[str, Path] = {}
    for spec in plan.specs:
        wheel = venvs.wheel_from_spec(spec)
        resolved.setdefault(wheel_label(wheel), wheel)
    todo = configs(plan, list(resolved))
    keys = list(dict.fromkeys(c.key for c in todo))
    baseline = find_baseline(plan, keys)
    broken: dict[str, str | None] = {}  # label -> why the wheel's TensorFlow is unusable
    for label, wheel in resolved.items():
        venv = venvs.plan(wheel)
        target = TfPython(venvs.ensure(venv), wheel)
        try:
            probe = probe_tensorflow(target, None, plan.timeout)
        except TfforgeError as exc:
            probe = {"error": str(exc)}
        targets[label] = target
        broken[label] = probe.get("error")
        wheels.append(
            {
                "label": label,
                "wheel": str(wheel),
                "sha256": venv.wheel_sha256,
                "tensorflow": probe.get("version"),
                "onednn_default": probe.get("onednn_on"),
                "mkl_enabled": probe.get("mkl_enabled"),
                "unused_cpu_features": probe.get("unused_cpu_features"),
                "error": probe.get("error"),
            }
        )
    rows: list[Row] = []
    doc: JsonDoc = {
        "tfforge": __version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "words": len(golden),
        "warmup": plan.warmup,
        "repeat": plan.repeat,
        "baseline": baseline,
        "wheels": wheels,
        "rows": [],
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        progress("bench", total=len(todo) + plan.reference) as bar,
    ):
        words_file = Path(tmp, "words.txt")
        words_file.write_text("".join(w + "\n" for w, _ in golden), encoding="utf-8")
        try:
            if plan.reference:
                bar.step(f"{REFERENCE} (g2p-en's numpy model, one word per call)")
                rows.append(_measure(reference_row(), run_reference, plan, words_file, golden))
                bar.done(_done_line(rows[-1]))
            for cfg in todo:
                bar.step(f"{cfg.key} batch {cfg.batch}")
                row = config_row(cfg)
                if broken[cfg.wheel]:
                    row.error = broken[cfg.wheel]
                else:
                    row = _measure(row, run_config, targets[cfg.wheel], plan, words_file, golden)
                rows.append(row)
                bar.done(_done_line(row))
        except KeyboardInterrupt:
            doc["interrupted"] = True
    add_speedups(rows, baseline)
    doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    doc["rows"] = [asdict(r) for r in rows]
    return doc


def expand_specs(specs: list[str]) -> list[str]:
    """Comma-separated lists and globs (wheels/*.whl) into single wheel specs."""
    result: list[str] = []
    for spec in (s.strip() for item in specs for s in item.split(",")):
        if not spec:
            continue
        if glob.has_magic(spec) and not Path(spec).exists():
            matches = expand(spec) or expand(str(project_root() / spec))
            if not matches:
                raise ConfigError(f"{spec!r} matches no file; pass wheel files or PyPI pins")
            result.extend(str(m) for m in matches)
        else:
            result.append(spec)
    return result
