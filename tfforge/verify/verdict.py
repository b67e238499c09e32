"""The whole verdict on one wheel: the wheel checks, the ISA scan, host and fleet verdicts, the
label claim and optional emulated runs, as one VerifyReport (no printing, no settings).

Exit: 0 all pass, 1 a check failed (VerifyError), 2 unusable input (ConfigError).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from tfforge.elfscan import scan as elfscan
from tfforge.elfscan.classify import RULES
from tfforge.elfscan.results import FeatureEvidence, LibraryScan
from tfforge.errors import ConfigError
from tfforge.host import cpu, isa
from tfforge.verify import builtwith, emulate
from tfforge.verify import runtime as runtime_verdicts
from tfforge.verify.wheelcheck import (
    FAIL,
    PASS,
    SKIP,
    Check,
    claim_check,
    claimed_features,
    glibc_check,
    isa_note_check,
    provenance_check,
    python_check,
    reproducible_check,
    structure_check,
)
from tfforge.verify.wheelscan import scan_wheel


@dataclass(frozen=True)
class HostVerdict:
    name: str
    model: str
    source: str
    ok: bool
    missing: tuple[str, ...]  # baseline features the host lacks: why it fails
    missing_dispatched: tuple[str, ...]  # dispatched ones it lacks: never a failure


@dataclass(frozen=True)
class EmulationVerdict:
    result: emulate.EmulationResult
    predicted_missing: tuple[str, ...]  # baseline features the model lacks under qemu
    unexecutable: tuple[str, ...]  # of them, ones the real CPU has but qemu cannot run
    agrees: bool | None  # the run went as predicted; None: not confirmable

    @property
    def confirmable(self) -> bool:
        return not self.unexecutable


@dataclass(frozen=True)
class VerifyReport:
    wheel: str
    sha256: str
    name: str
    version: str
    tags: tuple[str, ...]
    size: int
    members: int
    checks: tuple[Check, ...]
    libraries: tuple[LibraryScan, ...]
    baseline: tuple[str, ...]  # union over libraries: what the wheel requires
    dispatched: tuple[str, ...]  # used only behind run-time checks everywhere
    hosts: tuple[HostVerdict, ...]
    emulation: tuple[EmulationVerdict, ...]
    scan_cached: bool
    seconds: float
    timings: tuple[tuple[str, float], ...] = ()
    rules: tuple[str, ...] = field(default=RULES)
    runtime: tuple[runtime_verdicts.RuntimeVerdict, ...] = ()  # per host: glibc, libstdc++, Python

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["libraries"] = [lib.to_dict() for lib in self.libraries]
        for e, doc in zip(self.emulation, d["emulation"], strict=True):
            doc["confirmable"] = e.confirmable
        d["ok"] = self.ok
        d["exit_code"] = 0 if self.ok else 1
        return d


def host_verdicts(
    hosts: list[cpu.HostProfile], baseline: frozenset[str], dispatched: frozenset[str]
) -> list[HostVerdict]:
    out = []
    for h in hosts:
        if not h.is_x86:
            out.append(HostVerdict(h.name, h.model_name, h.source, False, ("x86_64",), ()))
            continue
        have = h.features
        miss = tuple(sorted(baseline - have, key=isa.sort_key))
        extra = tuple(sorted(dispatched - have, key=isa.sort_key))
        out.append(HostVerdict(h.name, h.model_name, h.source, not miss, miss, extra))
    return out


def compatibility_check(verdicts: list[HostVerdict]) -> Check:
    bad = [v for v in verdicts if not v.ok]
    details = tuple(f"{v.name}: missing {', '.join(v.missing)}" for v in bad)
    if bad:
        return Check(
            "compatibility",
            FAIL,
            f"{len(bad)} of {len(verdicts)} host(s) lack baseline features: {details[0]}",
            details,
        )
    names = ", ".join(v.name for v in verdicts)
    return Check("compatibility", PASS, f"every host has every baseline feature ({names})")


# ---- the whole verdict ---------------------------------------------------------------------
def union(scans: list[LibraryScan]) -> tuple[frozenset[str], frozenset[str]]:
    baseline = frozenset().union(*(s.baseline for s in scans))
    dispatched = frozenset().union(*(s.dispatched for s in scans)) - baseline
    return baseline, dispatched


def verify(
    wheel_path: Path,
    *,
    hosts: list[cpu.HostProfile],
    python: str,
    emulate_models: Iterable[str] = (),
    jobs: int = 1,
    examples: int = elfscan.EXAMPLES,
    use_cache: bool = True,
    emulate_timeout: float = 900.0,
    status: Callable[[str], None] = lambda _m: None,
    progress: Callable[[int, int], None] | None = None,
    builds_dir: Path | None = None,
) -> VerifyReport:
    """Everything verify measures about one wheel (no printing). builds_dir: where a rebuild
    of a tfforge wheel's id would be recorded (issue 11)."""
    t0 = time.perf_counter()
    models = [emulate.check_model(m) for m in emulate_models]  # bad input fails early
    _check_platform(wheel_path)
    timings = []
    checked, scans, errors, sha, cached = scan_wheel(
        wheel_path,
        jobs=jobs,
        examples=examples,
        use_cache=use_cache,
        status=status,
        progress=progress,
    )
    timings.append(("read + scan", time.perf_counter() - t0))
    facts = checked.facts
    baseline, dispatched = union(scans)
    claim = claimed_features(facts.local_label) if facts.local_label else (frozenset(), [])
    members = [s.path for s in scans]

    isa_summary = (
        f"{len(scans)} ELF libraries; requires "
        f"{', '.join(sorted(baseline, key=isa.sort_key)) or 'nothing beyond x86-64'}"
        f"; dispatched only: "
        f"{', '.join(sorted(dispatched, key=isa.sort_key)) or 'none'}"
    )
    isa_check = Check(
        "isa",
        FAIL if errors else PASS,
        (f"{len(errors)} librar(ies) could not be scanned: {errors[0]}" if errors else isa_summary),
        tuple(errors),
    )
    verdicts = host_verdicts(hosts, baseline, dispatched)
    checks = [
        structure_check(checked),
        python_check(facts, python, members),
        glibc_check(facts, scans),
        provenance_check(facts, claim[0]),
        isa_check,
        isa_note_check(scans),
        compatibility_check(verdicts),
        claim_check(facts, baseline, scans, claim),
    ]
    if facts.provenance:
        checks.append(reproducible_check(facts, sha, builds_dir))
    status("reading which compiler and linker built it (.comment of every ELF member)")
    checks.append(builtwith.check(facts, builtwith.read(wheel_path, sha, use_cache=use_cache)))
    runtime_check, runtime_hosts = runtime_verdicts.runtime_check(wheel_path, facts.tags, hosts)
    checks.append(runtime_check)

    emulations = []
    if models:
        from tfforge.runtime import venvs

        t1 = time.perf_counter()
        status(f"installing {facts.filename} into its venv for emulation (cached by sha256)")
        py = venvs.venv_python(wheel_path)
        for model in models:
            status(f"running {facts.name} under qemu-x86_64 -cpu {model} ...")
            emulations.append(
                emulated_verdict(py, model, facts.name, baseline, timeout=emulate_timeout)
            )
            res = emulations[-1].result
            status(
                f"qemu {model}: {res.status}{' ' + res.signal if res.signal else ''} "
                f"after {res.seconds:.0f} s"
            )
        checks.append(_emulation_check(emulations))
        timings.append(("emulation", time.perf_counter() - t1))

    return VerifyReport(
        wheel=str(wheel_path),
        sha256=sha,
        name=facts.name,
        version=str(facts.version),
        tags=tuple(sorted(str(t) for t in facts.tags)),
        size=facts.size,
        members=facts.members,
        checks=tuple(checks),
        libraries=tuple(scans),
        baseline=tuple(sorted(baseline, key=isa.sort_key)),
        dispatched=tuple(sorted(dispatched, key=isa.sort_key)),
        hosts=tuple(verdicts),
        emulation=tuple(emulations),
        scan_cached=cached,
        seconds=round(time.perf_counter() - t0, 2),
        timings=tuple((k, round(v, 2)) for k, v in timings),
        runtime=tuple(runtime_hosts),
    )


def static_host_verdict(
    wheel_path: Path,
    host: cpu.HostProfile,
    *,
    jobs: int = 1,
    status: Callable[[str], None] = lambda _m: None,
) -> HostVerdict:
    """verify's static verdict for one host, from the wheel's (cached) ISA scan: what smoke
    compares with what really happens."""
    _, scans, errors, _, _ = scan_wheel(wheel_path, jobs=jobs, status=status)
    if errors:
        raise ConfigError(
            f"{wheel_path.name}: {len(errors)} librar(ies) could not be scanned: {errors[0]}"
        )
    baseline, dispatched = union(scans)
    return host_verdicts([host], baseline, dispatched)[0]


def emulated_verdict(
    python: Path, model: str, project: str, baseline: frozenset[str], *, timeout: float
) -> EmulationVerdict:
    """Run the project's probe under qemu as `model` and compare with the static verdict:
    it must run when the model has every baseline feature and trap (a signal) when not.
    When the real CPU behind the model has a baseline feature qemu cannot execute (AVX-512,
    AMX ...), the run is not confirmable either way (agrees is None)."""
    res = emulate.run(python, model, project=project, timeout=timeout)
    offered = emulate.model_host(model).features
    missing = tuple(sorted(baseline - offered, key=isa.sort_key))
    lost = emulate.unexecutable(model, baseline, offered)
    if lost:
        return EmulationVerdict(res, missing, lost, None)
    ran, trapped = res.status == "pass", res.status == "signal"
    return EmulationVerdict(res, missing, (), (ran and not missing) or (trapped and bool(missing)))


def _check_platform(wheel_path: Path) -> None:
    try:
        tags = parse_wheel_filename(wheel_path.name)[3]
    except InvalidWheelFilename:
        return  # wheel.check says what is wrong with the name
    if not any(t.platform.endswith("x86_64") or t.platform == "any" for t in tags):
        raise ConfigError(
            f"{wheel_path.name}: platform "
            f"{', '.join(sorted({t.platform for t in tags}))}; tfforge verifies "
            "x86_64 (and pure-Python) wheels only"
        )


def _emulation_check(ems: list[EmulationVerdict]) -> Check:
    details = []
    for e in ems:
        r = e.result
        pred = (
            f"static verdict predicts a trap (lacks {', '.join(e.predicted_missing)})"
            if e.predicted_missing
            else "static verdict predicts it runs"
        )
        what = {
            "pass": "import + ops passed",
            "signal": f"killed by {r.signal}",
            "failed": "probe failed",
            "timeout": "timed out",
        }[r.status]
        at = f" at stage '{r.stage}'" if r.stage and r.status != "pass" else ""
        where = f" ({r.where})" if r.where else ""
        if not e.confirmable:
            pred = (
                f"not confirmable under qemu: the real CPU has "
                f"{', '.join(e.unexecutable)}, which qemu-user cannot execute"
            )
        details.append(
            f"{r.model}: {what}{at}{where} in {r.seconds:.0f} s; {pred}"
            + (" - DISAGREES" if e.agrees is False else "")
        )
    judged = [e for e in ems if e.confirmable]
    disagree = [e for e in judged if not e.agrees]
    failed = [e for e in judged if e.result.status != "pass"]

    def first(e: EmulationVerdict) -> tuple[str, ...]:  # the summary's run first
        i = ems.index(e)
        return (details[i], *details[:i], *details[i + 1 :])

    if disagree:
        return Check(
            "emulate",
            FAIL,
            "emulated run and static verdict disagree: " + details[ems.index(disagree[0])],
            first(disagree[0]),
        )
    if failed:
        return Check("emulate", FAIL, details[ems.index(failed[0])], first(failed[0]))
    if not judged:
        return Check("emulate", SKIP, "; ".join(details), tuple(details))
    return Check("emulate", PASS, "; ".join(details), tuple(details))


def feature_rows(r: VerifyReport) -> list[dict[str, Any]]:
    """One row per feature over all libraries, with the strongest evidence for its class."""
    rows = []
    for feat in (*r.baseline, *r.dispatched):
        per = [(s, e) for s in r.libraries if (e := s.feature(feat))]
        base = [(s, e) for s, e in per if e.cls == "baseline"]
        pick_s, pick_e = max(base or per, key=lambda se: (se[1].ordinary, se[1].functions))
        rows.append(
            {
                "feature": feat,
                "title": isa.title(feat) if feat in isa.features() else feat,
                "class": "baseline" if base else "dispatched",
                "libraries": len(per),
                "baseline_in": len(base),
                "instructions": sum(e.instructions for _, e in per),
                "ordinary": sum(e.ordinary for _, e in per),
                "dispatched_fns": sum(e.named + e.guarded + e.unlabelled for _, e in per),
                "why": _why(pick_e),
                "library": pick_s.path,
                "evidence": f"{PurePosixPath(pick_s.path).name}: {pick_e.reason}",
                "example": pick_e.examples[0] if pick_e.examples else "",
            }
        )
    return rows


def _why(e: FeatureEvidence) -> str:
    if e.cls == "baseline":
        return "runs at load (R3)" if e.load_time else "ordinary code (R4)"
    parts = (
        (["named (R1)"] if e.named else [])
        + (["CPU-checked (R2)"] if e.guarded else [])
        + (["unlabelled code (R5)"] if e.unlabelled else [])
    )
    return " + ".join(parts)
