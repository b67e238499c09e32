"""verify against reality: a wheel's static verdict compared with real runs of its probe on
this host and under qemu models (the corpus in tfforge/data/corpus.toml). No printing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfforge import resources
from tfforge.elfscan.tables import NOT_LOADED
from tfforge.errors import ConfigError
from tfforge.host import cpu, isa
from tfforge.verify import emulate, modules
from tfforge.verify.answers import host_has, host_verdict, judge_run, needs
from tfforge.verify.wheelscan import scan_wheel


@dataclass(frozen=True)
class Run:
    """One ground-truth run of a wheel's probe and what the static verdict predicted."""

    where: str  # "this host" or "qemu Haswell"
    predicted: str  # the static answer: runs | cannot run | undecided
    status: str  # pass | signal | failed | timeout
    detail: str  # signal, stage reached, or what qemu cannot execute
    agrees: bool | None  # None: undecided, or not confirmable under qemu
    seconds: float
    settled: str = ""  # what the run settled an undecided answer to

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
    required: tuple[str, ...] = ()

    @property
    def disagreements(self) -> list[Run]:
        return [r for r in self.runs if r.agrees is False]


def corpus() -> tuple[list[str], list[str], str]:
    """(wheel pins, qemu ladder, the model beyond the ladder) from corpus.toml."""
    doc = resources.toml("corpus.toml")
    try:
        return [w["pin"] for w in doc["wheel"]], list(doc["ladder"]), str(doc["beyond"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(
            f"tfforge/data/corpus.toml: missing {exc}; each [[wheel]] needs pin"
        ) from None


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
    from tfforge.wheel import read as wheel_read

    t0 = time.perf_counter()
    _, scans, errors, _, _ = scan_wheel(wheel, jobs=jobs, status=status)
    errors = [e for e in errors if NOT_LOADED not in e]
    if errors:
        raise ConfigError(
            f"{wheel.name}: {len(errors)} librar(ies) could not be scanned: {errors[0]}"
        )
    n = needs(scans)
    python = venvs.venv_python(wheel)
    script = modules.probe_for(wheel, wheel_read.check(wheel).facts).script
    runs = []
    here = host_verdict(host, n)
    status(f"{pin}: probe on this host ({host.model_name})")
    res = emulate.run_probe([], python, "this host", script=script, timeout=timeout)
    ran = res.status == "pass"
    runs.append(
        Run(
            "this host",
            here.answer,
            res.status,
            _detail(res, here.missing or here.unsettled),
            None if here.undecided else ran == here.ok,
            res.seconds,
        )
    )
    if models is None:
        ladder, beyond = corpus()[1:]
        offered = {m: host_has(emulate.model_host(m)) for m in ladder}
        models = pick_models(n.baseline, offered, ladder, beyond)
    for model in models:
        status(f"{pin}: probe under qemu-x86_64 -cpu {model}")
        offered_m = host_has(emulate.model_host(model))
        static = host_verdict(emulate.model_host(model), n)
        lost = emulate.unexecutable(model, n.baseline, offered_m)
        got = emulate.run(python, model, script=script, timeout=timeout)
        v = judge_run(got, static, offered_m, lost, ran)
        detail = (
            f"qemu cannot execute {', '.join(v.unexecutable)}"
            if v.unexecutable
            else _detail(v.result, static.missing or static.unsettled)
        )
        runs.append(
            Run(
                f"qemu {model}",
                static.answer,
                v.result.status,
                detail,
                v.agrees,
                v.result.seconds,
                v.answer if v.settled else "",
            )
        )
    return CorpusRow(
        pin,
        wheel.name,
        tuple(sorted(n.baseline, key=isa.sort_key)),
        tuple(sorted(n.dispatched, key=isa.sort_key)),
        tuple(runs),
        round(time.perf_counter() - t0, 1),
        tuple(sorted(n.required, key=isa.sort_key)),
    )


def _detail(res: emulate.EmulationResult, missing: tuple[str, ...]) -> str:
    what = res.signal or res.status
    at = f" at {res.stage}" if res.stage and res.status != "pass" else ""
    lacks = f"; lacks {', '.join(missing)}" if missing else ""
    return f"{what}{at}{lacks}"
