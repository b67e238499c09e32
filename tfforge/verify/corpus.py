"""verify against reality: a wheel's static verdict compared with real runs of its probe on
this host and under qemu models (the corpus in tfforge/data/corpus.toml). No printing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfforge import resources
from tfforge.errors import ConfigError
from tfforge.host import cpu, isa
from tfforge.verify import emulate
from tfforge.verify.verdict import emulated_verdict, host_verdicts, union
from tfforge.verify.wheelscan import scan_wheel


@dataclass(frozen=True)
class Run:
    """One ground-truth run of a wheel's probe and what the static verdict predicted."""

    where: str  # "this host" or "qemu Haswell"
    predicted: bool  # the static verdict: it runs here
    status: str  # pass | signal | failed | timeout
    detail: str  # signal, stage reached, or what qemu cannot execute
    agrees: bool | None  # None: not confirmable under qemu
    seconds: float

    @property
    def ran(self) -> bool:
        return self.status == "pass"


@dataclass(frozen=True)
class CorpusRow:
    pin: str
    wheel: str
    baseline: tuple[str, ...]
    dispatched: tuple[str, ...]
    runs: tuple[Run, ...]
    seconds: float

    @property
    def disagreements(self) -> list[Run]:
        return [r for r in self.runs if r.agrees is False]


def corpus() -> tuple[list[str], list[str], str]:
    """(wheel pins, qemu ladder, the model beyond the ladder) from corpus.toml."""
    doc = resources.toml("corpus.toml")
    try:
        return [w["pin"] for w in doc["wheel"]], list(doc["ladder"]), str(doc["beyond"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"tfforge/data/corpus.toml: missing {exc}; each [[wheel]] needs pin")


def pick_models(
    baseline: frozenset[str], offered: dict[str, frozenset[str]], ladder: list[str], beyond: str
) -> list[str]:
    """The ladder model just below the first one that executes every baseline feature, and
    that one; when none does, the last ladder model and `beyond` (not confirmable)."""
    at = next((i for i, m in enumerate(ladder) if baseline <= offered[m]), None)
    if at is None:
        return [ladder[-1], beyond]
    return ladder[max(at - 1, 0) : at + 1]


def check(
    wheel: Path,
    pin: str,
    *,
    host: cpu.HostProfile,
    jobs: int = 1,
    timeout: float = 900.0,
    models: list[str] | None = None,
    status: Callable[[str], None] = lambda _m: None,
) -> CorpusRow:
    """Scan (cached), then run the probe here and under the picked qemu models."""
    from tfforge.runtime import venvs

    t0 = time.perf_counter()
    _, scans, errors, _, _ = scan_wheel(wheel, jobs=jobs, status=status)
    if errors:
        raise ConfigError(
            f"{wheel.name}: {len(errors)} librar(ies) could not be scanned: {errors[0]}"
        )
    baseline, dispatched = union(scans)
    project = pin.split("==")[0]
    python = venvs.venv_python(wheel)
    runs = []
    here = host_verdicts([host], baseline, dispatched)[0]
    status(f"{pin}: probe on this host ({host.model_name})")
    res = emulate.run_probe([], python, "this host", project=project, timeout=timeout)
    runs.append(
        Run(
            "this host",
            here.ok,
            res.status,
            _detail(res, here.missing),
            res.status == "pass" if here.ok else res.status == "signal",
            res.seconds,
        )
    )
    if models is None:
        ladder, beyond = corpus()[1:]
        offered = {m: emulate.model_host(m).features for m in ladder}
        models = pick_models(baseline, offered, ladder, beyond)
    for model in models:
        status(f"{pin}: probe under qemu-x86_64 -cpu {model}")
        v = emulated_verdict(python, model, project, baseline, timeout=timeout)
        detail = (
            f"qemu cannot execute {', '.join(v.unexecutable)}"
            if v.unexecutable
            else _detail(v.result, v.predicted_missing)
        )
        runs.append(
            Run(
                f"qemu {model}",
                not v.predicted_missing,
                v.result.status,
                detail,
                v.agrees,
                v.result.seconds,
            )
        )
    return CorpusRow(
        pin,
        wheel.name,
        tuple(sorted(baseline, key=isa.sort_key)),
        tuple(sorted(dispatched, key=isa.sort_key)),
        tuple(runs),
        round(time.perf_counter() - t0, 1),
    )


def _detail(res: emulate.EmulationResult, missing: tuple[str, ...]) -> str:
    what = res.signal or res.status
    at = f" at {res.stage}" if res.stage and res.status != "pass" else ""
    lacks = f"; lacks {', '.join(missing)}" if missing else ""
    return f"{what}{at}{lacks}"
