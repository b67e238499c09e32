"""The wide corpus and its ground truth: native PyPI wheels outside TensorFlow
(data/corpus_wide.toml), what really happened when each one's import and workload ran under qemu
models and natively (data/corpus_truth.toml, written by tools/corpus_truth.py), and how verify's
answer for each (wheel, host) cell compares with that. No printing, no settings."""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfforge import resources
from tfforge.errors import ConfigError
from tfforge.host import cpu
from tfforge.verify import emulate, probes
from tfforge.verify.answers import CANNOT, RUNS, WheelNeeds, host_verdict

NATIVE = "native"  # the cell run on the recording host itself
TRUTH_FILE = "corpus_truth.toml"


@dataclass(frozen=True)
class WideWheel:
    pin: str
    style: str
    module: str
    workload: str
    requires: tuple[str, ...] = ()

    @property
    def probe(self) -> str:
        return probes.workload_probe(self.module, self.workload)


@dataclass(frozen=True)
class WideCorpus:
    wheels: tuple[WideWheel, ...]
    models: tuple[str, ...]
    timeout: float

    def wheel(self, pin: str) -> WideWheel:
        for w in self.wheels:
            if w.pin == pin:
                return w
        raise ConfigError(
            f"{pin!r} is not in tfforge/data/corpus_wide.toml; known: "
            + ", ".join(w.pin for w in self.wheels)
        )


def wide_corpus() -> WideCorpus:
    doc = resources.toml("corpus_wide.toml")
    try:
        wheels = tuple(
            WideWheel(
                str(w["pin"]),
                str(w["style"]),
                str(w["module"]),
                str(w["workload"]),
                tuple(str(r) for r in w.get("requires", ())),
            )
            for w in doc["wheel"]
        )
        models = tuple(str(m) for m in doc["models"])
        timeout = float(doc["timeout"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"tfforge/data/corpus_wide.toml: missing or bad {exc}; each [[wheel]] needs pin, "
            "style, module and workload"
        ) from None
    bad = [w.module for w in wheels if not probes.valid_module(w.module)]
    if bad:
        raise ConfigError(f"tfforge/data/corpus_wide.toml: not module names: {', '.join(bad)}")
    return WideCorpus(wheels, models, timeout)


@dataclass(frozen=True)
class TruthRun:
    """One recorded run of a wheel's import + workload."""

    pin: str
    wheel: str  # file name
    sha256: str
    where: str  # a qemu model, or NATIVE
    status: str  # pass | signal | failed | timeout
    signal: str
    stage: str
    seconds: float
    detail: str  # the result line, or the last lines of stderr

    @property
    def ran(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class Truth:
    qemu: str
    host: cpu.HostProfile  # the recording host (the NATIVE cells)
    runs: tuple[TruthRun, ...]
    models: tuple[cpu.HostProfile, ...] = ()  # what each qemu model offered (py-cpuinfo)

    def run(self, pin: str, where: str) -> TruthRun | None:
        return next((r for r in self.runs if r.pin == pin and r.where == where), None)

    def machine(self, where: str) -> cpu.HostProfile:
        """The host a cell ran on: the recording host, or the qemu model as recorded."""
        if where == NATIVE:
            return self.host
        for m in self.models:
            if m.name == f"qemu-{where}":
                return m
        raise ConfigError(
            f"tfforge/data/{TRUTH_FILE} records no features for qemu model {where}; "
            "regenerate it with `python tools/corpus_truth.py`"
        )


def load_truth(text: str | None = None) -> Truth:
    """The recorded ground truth (data/corpus_truth.toml, or the given TOML text)."""
    import tomllib

    try:
        doc = tomllib.loads(text) if text is not None else resources.toml(TRUTH_FILE)
        h = doc["host"]
        host = cpu.HostProfile(
            str(h["name"]),
            str(h["vendor"]),
            str(h["model"]),
            cpu.X86,
            tuple(str(f) for f in h["flags"]),
            None,
            None,
            f"tfforge/data/{TRUTH_FILE}",
        )
        runs = tuple(
            TruthRun(
                str(r["pin"]),
                str(r["wheel"]),
                str(r["sha256"]),
                str(r["where"]),
                str(r["status"]),
                str(r.get("signal", "")),
                str(r.get("stage", "")),
                float(r["seconds"]),
                str(r.get("detail", "")),
            )
            for r in doc.get("run", ())
        )
        models = tuple(
            cpu.HostProfile(
                f"qemu-{name}",
                str(m["vendor"]),
                str(m["model"]),
                cpu.X86,
                tuple(str(f) for f in m["flags"]),
                None,
                None,
                f"tfforge/data/{TRUTH_FILE}",
            )
            for name, m in doc.get("models", {}).items()
        )
        return Truth(str(doc["qemu"]), host, runs, models)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"tfforge/data/{TRUTH_FILE}: missing or bad {exc}; regenerate it with "
            "`python tools/corpus_truth.py`"
        ) from None


def qemu_version() -> str:
    proc = subprocess.run([emulate.qemu(), "--version"], capture_output=True, text=True)
    return (proc.stdout.strip().splitlines() or ["unknown"])[0]


def record(
    wheel_path: Path,
    sha256: str,
    w: WideWheel,
    python: Path,
    where: Iterable[str],
    *,
    timeout: float,
    status: Callable[[str], None] = lambda _m: None,
) -> list[TruthRun]:
    """Run the wheel's import + workload natively (NATIVE) and under each qemu model."""
    out = []
    for place in where:
        shown = "on this host" if place == NATIVE else f"under qemu {place}"
        status(f"{w.pin}: import + workload {shown}")
        if place == NATIVE:
            res = emulate.run_probe([], python, NATIVE, script=w.probe, timeout=timeout)
        else:
            res = emulate.run(python, place, script=w.probe, timeout=timeout)
        out.append(
            TruthRun(
                w.pin,
                wheel_path.name,
                sha256,
                place,
                res.status,
                res.signal or "",
                res.stage or "",
                res.seconds,
                res.detail[-400:],
            )
        )
        status(f"{w.pin} {place}: {res.status} {res.signal or ''} at {res.stage} ({res.seconds} s)")
    return out


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; DEL is escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def dump_truth(truth: Truth) -> str:
    """corpus_truth.toml's text."""
    h = truth.host
    lines = [
        "# Ground truth for the wide corpus (corpus_wide.toml): what each wheel's import and",
        "# workload did under qemu-x86_64 -cpu MODEL and natively on the recording host.",
        "# Written by `python tools/corpus_truth.py` (re-run it to regenerate; never by hand).",
        f"qemu = {_toml_string(truth.qemu)}",
        f"python = {_toml_string(platform.python_version())}",
        "",
        "[host]",
        f"name = {_toml_string(h.name)}",
        f"vendor = {_toml_string(h.vendor)}",
        f"model = {_toml_string(h.model_name)}",
        "flags = [" + ", ".join(_toml_string(f) for f in h.flags_raw) + "]",
    ]
    for m in sorted(truth.models, key=lambda m: m.name):
        lines += [
            "",
            f"[models.{m.name.removeprefix('qemu-')}]",
            f"vendor = {_toml_string(m.vendor)}",
            f"model = {_toml_string(m.model_name)}",
            "flags = [" + ", ".join(_toml_string(f) for f in m.flags_raw) + "]",
        ]
    for r in sorted(truth.runs, key=lambda r: (r.pin, r.where != NATIVE, r.where)):
        lines += ["", "[[run]]"]
        for key, value in r.to_dict().items():
            shown = _toml_string(value) if isinstance(value, str) else repr(value)
            lines.append(f"{key} = {shown}")
    return "\n".join(lines) + "\n"


AGREE, FALSE_PASS, FALSE_REFUSAL, OPEN = "agree", "false pass", "false refusal", "undecided"


@dataclass(frozen=True)
class Cell:
    """verify's static answer for one (wheel, machine) cell against what really happened."""

    pin: str
    where: str
    answer: str  # runs | cannot run | undecided
    lacks: tuple[str, ...]  # what the machine lacks that decides the answer
    truth: TruthRun

    @property
    def outcome(self) -> str:
        if self.answer == RUNS:
            return AGREE if self.truth.ran else FALSE_PASS
        if self.answer == CANNOT:
            return FALSE_REFUSAL if self.truth.ran else AGREE
        return OPEN


def cells(truth: Truth, pin: str, n: WheelNeeds) -> list[Cell]:
    """Every recorded cell of one wheel, with verify's answer for that machine."""
    out = []
    for r in sorted(
        (r for r in truth.runs if r.pin == pin), key=lambda r: (r.where == NATIVE, r.where)
    ):
        v = host_verdict(truth.machine(r.where), n)
        out.append(Cell(pin, r.where, v.answer, v.missing or v.unsettled, r))
    return out


@dataclass(frozen=True)
class WheelCells:
    wheel: WideWheel
    cells: tuple[Cell, ...]
    required: tuple[str, ...]
    unguarded: tuple[str, ...]
    dispatched: tuple[str, ...]
    scan_seconds: float
    cached: bool


def evaluate(
    truth: Truth,
    wheels: Iterable[WideWheel],
    *,
    fetch: Callable[[str], Path],
    jobs: int = 1,
    use_cache: bool = True,
    status: Callable[[str], None] = lambda _m: None,
) -> list[WheelCells]:
    """verify's answer for every recorded cell of each wheel (its ISA scan cached per sha256)."""
    import time

    from tfforge.elfscan.tables import NOT_LOADED
    from tfforge.verify.answers import needs
    from tfforge.verify.wheelscan import scan_wheel

    out = []
    for w in wheels:
        t0 = time.perf_counter()
        path = fetch(w.pin)
        status(f"{w.pin}: ISA scan")
        _, scans, errors, _, cached = scan_wheel(path, jobs=jobs, use_cache=use_cache)
        errors = [e for e in errors if NOT_LOADED not in e]
        if errors:
            raise ConfigError(f"{path.name}: a library could not be scanned: {errors[0]}")
        n = needs(scans)
        out.append(
            WheelCells(
                w,
                tuple(cells(truth, w.pin, n)),
                _names(n.required),
                _names(n.unguarded),
                _names(n.dispatched),
                round(time.perf_counter() - t0, 1),
                cached,
            )
        )
    return out


def _names(features: frozenset[str]) -> tuple[str, ...]:
    from tfforge.host import isa

    return tuple(sorted(features, key=lambda f: (isa.sort_key(f), f)))


def tally(rows: Iterable[WheelCells]) -> dict[str, int]:
    """How many cells agree, are undecided, or are false passes or false refusals."""
    counts = {AGREE: 0, OPEN: 0, FALSE_PASS: 0, FALSE_REFUSAL: 0}
    for row in rows:
        for c in row.cells:
            counts[c.outcome] += 1
    return counts
