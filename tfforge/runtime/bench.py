"""The g2p benchmark: the model across wheels x threading x oneDNN x mode x batch size.

Each wheel gets its own cached venv (runtime/venvs.py); each configuration runs in its own
process (runtime/g2p/runner.py): warm-up passes, then timed passes over the same words. A row
reports the median words/s with min and max, and is checked against the golden phonemes.
Outputs: bench.json, bench.md (table with speedup against a named baseline row), bench.png.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tfforge import __version__
from tfforge.errors import ConfigError, TfforgeError
from tfforge.files import expand, io_error
from tfforge.paths import folder, project_root
from tfforge.runtime import g2p, venvs
from tfforge.runtime.g2p import MODES
from tfforge.runtime.probe import TfPython, explain_failure, probe_tensorflow, run_script
from tfforge.runtime.smoke import compare, single_thread_env

THREADS = ("default", "1")  # TensorFlow's defaults; intra=inter=1 with OMP_NUM_THREADS=1
ONEDNN = ("0", "1")  # TF_ENABLE_ONEDNN_OPTS
BATCHES = (1, 64)
REFERENCE = "g2p-en-numpy"
# --quick: small and fast, for tests and a first look; explicit options still win.
QUICK = {
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


def _choices(
    name: str,
    given: str | tuple | list | None,
    allowed: tuple,
    fallback: tuple,
    convert: Callable = str,
) -> tuple:
    if given is None or given == "":
        return fallback
    items = given.split(",") if isinstance(given, str) else list(given)
    values = []
    for item in (str(i).strip() for i in items):
        try:
            value = convert(item)
        except ValueError:
            value = None
        if value not in allowed:
            raise ConfigError(f"--{name} {item!r} is not one of {', '.join(map(str, allowed))}")
        if value not in values:
            values.append(value)
    return tuple(values)


def make_plan(
    specs: list[str],
    *,
    threads=None,
    onednn=None,
    modes=None,
    batches=None,
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
        threads=_choices("threads", threads, THREADS, THREADS),
        onednn=_choices("onednn", onednn, ONEDNN, ONEDNN),
        modes=_choices("modes", modes, MODES, MODES),
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


def run_config(
    row: Row, target: TfPython, plan: Plan, words_file: Path, golden: list[tuple[str, list[str]]]
) -> Row:
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


def run_reference(row: Row, plan: Plan, words_file: Path, golden) -> Row:
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


def _measure(row: Row, fill: Callable[..., Row], *args) -> Row:
    """fill(row, *args); its TfforgeError (a timeout, a venv that would not build) becomes the
    row's error, so the other rows still run."""
    try:
        return fill(row, *args)
    except TfforgeError as exc:
        row.error = str(exc)
        return row


def _fill(row: Row, proc, doc: dict | None, golden) -> Row:
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
        if r.words_per_s and ref:
            r.speedup = r.words_per_s["median"] / ref.words_per_s["median"]


def machine() -> dict:
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
    if row.error:
        return f"{name}: FAILED: {row.error}"
    w = row.words_per_s
    check = "" if not row.mismatches else f" ({row.mismatches} words differ from golden!)"
    return f"{name}: {w['median']:,.0f} words/s (min {w['min']:,.0f}, max {w['max']:,.0f}){check}"


def run(plan: Plan, progress: Callable[..., Any]) -> dict:
    """Run the whole matrix; returns the results document (also when rows failed).

    `progress(title, total=N)` makes the step display (console.Progress: a context manager with
    step(text) and done(line)); Ctrl-C stops the matrix and marks the document interrupted."""
    golden = list(plan.golden[: plan.words])
    targets: dict[str, TfPython] = {}
    wheels: list[dict] = []
    # Every spec is checked (and downloaded) before any venv is built: bad input fails fast.
    resolved = {}
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
    doc = {
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


def markdown(doc: dict) -> str:
    m = doc["machine"]
    lines = [
        f"g2p benchmark: {doc['words']} words, {doc['warmup']} warm-up + {doc['repeat']} "
        f"timed passes per row, each row in its own process; {m['cpu']}, {m['cores']} "
        f"cores; speedup against `{doc['baseline']}`"
        + (" (one word per call)." if doc["baseline"] == REFERENCE else " at the same batch size."),
        "",
        "| wheel | threads | oneDNN | mode | batch | words/s (median) | min | max | "
        "speedup | golden |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in doc["rows"]:
        w = r["words_per_s"]
        nums = (
            [f"{w['median']:,.0f}", f"{w['min']:,.0f}", f"{w['max']:,.0f}"]
            if w
            else ["-", "-", "-"]
        )
        speed = f"{r['speedup']:.2f}x" if r["speedup"] is not None else "-"
        if r["key"] == doc["baseline"]:
            speed = f"**{speed}** (baseline)"
        check = (
            "error: " + r["error"].replace("|", "/")
            if r["error"]
            else "ok"
            if not r["mismatches"]
            else f"{r['mismatches']} differ"
        )
        threads = "1 (+OMP=1)" if r["threads"] == "1" else r["threads"]
        lines.append(
            f"| {r['wheel']} | {threads} | {r['onednn']} | {r['mode']} | "
            f"{r['batch']} | " + " | ".join(nums) + f" | {speed} | {check} |"
        )
    return "\n".join(lines) + "\n"


def side_by_side(doc: dict) -> str:
    """One line per configuration, one column per wheel: median words/s (speedup)."""
    rows = [r for r in doc["rows"] if r["key"] != REFERENCE]
    wheels = list(dict.fromkeys(r["wheel"] for r in rows))
    if len(wheels) < 2:
        return ""
    cells: dict[tuple, dict[str, str]] = {}
    for r in rows:
        setting = (r["batch"], r["threads"], r["onednn"], r["mode"])
        w = r["words_per_s"]
        text = "failed" if r["error"] else f"{w['median']:,.0f}"
        if w and r["speedup"] is not None:
            text += f" ({r['speedup']:.2f}x)"
        if r["mismatches"]:
            text += " MISMATCH"
        cells.setdefault(setting, {})[r["wheel"]] = text
    lines = [
        "| batch | threads | oneDNN | mode | " + " | ".join(wheels) + " |",
        "|---:|---|---|---|" + "---:|" * len(wheels),
    ]
    order = sorted(
        cells,
        key=lambda k: (
            k[0],
            THREADS.index(k[1]) if k[1] in THREADS else 9,
            k[2],
            MODES.index(k[3]) if k[3] in MODES else 9,
        ),
    )
    for batch, threads, onednn, mode in order:
        by_wheel = cells[(batch, threads, onednn, mode)]
        lines.append(
            f"| {batch} | {threads} | {onednn} | {mode} | "
            + " | ".join(by_wheel.get(w, "-") for w in wheels)
            + " |"
        )
    return "\n".join(lines) + "\n"


def chart(doc: dict, path: Path) -> None:
    """Horizontal bars of median words/s (min-max whiskers), one panel per batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in doc["rows"] if r["words_per_s"]]
    measured = [r for r in rows if r["key"] != REFERENCE]
    batches = sorted({r["batch"] for r in measured or rows}) or [1]
    wheels = list(dict.fromkeys(r["wheel"] for r in rows))
    colours = {w: plt.cm.tab10(i % 10) for i, w in enumerate(wheels)}
    # The numpy reference (one word per call) is the yardstick in every panel.
    per = [[r for r in rows if r["batch"] == b or r["key"] == REFERENCE] for b in batches]
    height = max(3.0, 0.28 * max(len(p) for p in per) + 1.5)
    fig, axes = plt.subplots(1, len(batches), figsize=(9 * len(batches), height), squeeze=False)
    for ax, batch, group in zip(axes[0], batches, per, strict=True):
        labels = [
            r["wheel"]
            if r["key"] == REFERENCE
            else f"{r['wheel']} | threads={r['threads']} oneDNN={r['onednn']} {r['mode']}"
            for r in group
        ]
        med = [r["words_per_s"]["median"] for r in group]
        lo = [r["words_per_s"]["median"] - r["words_per_s"]["min"] for r in group]
        hi = [r["words_per_s"]["max"] - r["words_per_s"]["median"] for r in group]
        y = list(range(len(group)))[::-1]
        ax.barh(
            y,
            med,
            xerr=[lo, hi],
            color=[colours[r["wheel"]] for r in group],
            edgecolor=["black" if r["key"] == doc["baseline"] else "none" for r in group],
            capsize=2,
        )
        for yi, r in zip(y, group, strict=True):
            if r["speedup"] is not None:
                ax.text(
                    r["words_per_s"]["max"], yi, f" {r['speedup']:.2f}x", va="center", fontsize=7
                )
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_xlabel("words/s (median; whiskers: min-max)")
        ax.set_title(f"batch {batch}")
        ax.margins(x=0.15)
    fig.suptitle(
        f"g2p on {doc['machine']['cpu']} ({doc['machine']['cores']} cores); "
        f"speedup vs {doc['baseline']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def write_outputs(doc: dict, out_dir: Path, stem: str = "bench") -> dict[str, Path]:
    """bench.json, bench.md, bench.png, each written to a temp name and renamed into place;
    on a failure (a full disk) no temp file stays and the earlier results stay whole."""
    folder(out_dir, "bench folder", create=True)
    paths = {
        "json": out_dir / f"{stem}.json",
        "markdown": out_dir / f"{stem}.md",
        "chart": out_dir / f"{stem}.png",
    }
    tmp = {k: p.with_name(p.name + ".tmp") for k, p in paths.items()}
    try:
        tmp["json"].write_text(json.dumps(doc, indent=2) + "\n")
        pivot = side_by_side(doc)
        tmp["markdown"].write_text(
            markdown(doc)
            + (
                "\nSide by side: median words/s (speedup against the baseline)\n\n" + pivot
                if pivot
                else ""
            )
        )
        chart(doc, tmp["chart"])
        for k, p in paths.items():
            os.replace(tmp[k], p)
    except OSError as exc:
        raise io_error(out_dir, exc, "cannot be written") from exc
    finally:
        for t in tmp.values():
            t.unlink(missing_ok=True)
    return paths


def expand_specs(specs: list[str]) -> list[str]:
    """Comma-separated lists and globs (wheels/*.whl) into single wheel specs."""
    import glob

    result = []
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
