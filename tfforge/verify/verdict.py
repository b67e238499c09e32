"""The whole verdict on one wheel: the wheel checks, the ISA scan, host and fleet verdicts, the
label claim and optional emulated runs, as one VerifyReport (no printing, no settings).

Exit: 0 every host asked runs it, 1 a check failed (some host cannot run it), 3 undecided
(some host lacks a feature ordinary code uses and no CPU check is shown to guard it), 2 unusable
input, 4 internal error (tfforge/commands/runner.py).
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
from tfforge.elfscan.tables import NOT_LOADED
from tfforge.errors import ConfigError
from tfforge.host import cpu, isa
from tfforge.verify import builtwith, emulate
from tfforge.verify import runtime as runtime_verdicts
from tfforge.verify.answers import (
    CANNOT,
    UNDECIDED,
    EmulationVerdict,
    HostVerdict,
    WheelNeeds,
    host_verdict,
    host_verdicts,
    needs,
    with_variants,
)
from tfforge.verify.settling import emulation_check, run_emulations, settle
from tfforge.verify.wheelcheck import (
    FAIL,
    PASS,
    SKIP,
    Check,
    built_for,
    claim_check,
    claimed_features,
    glibc_check,
    isa_note_check,
    provenance_check,
    python_check,
    reproducible_check,
    structure_check,
)
from tfforge.verify.wheelscan import ElfFacts, scan_wheel


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
    baseline: tuple[str, ...]  # what ordinary code uses: required + unguarded
    dispatched: tuple[str, ...]  # used only behind run-time checks everywhere
    hosts: tuple[HostVerdict, ...]
    emulation: tuple[EmulationVerdict, ...]
    scan_cached: bool
    seconds: float
    timings: tuple[tuple[str, float], ...] = ()
    rules: tuple[str, ...] = field(default=RULES)
    required: tuple[str, ...] = ()  # needed unconditionally: at load, or by an ISA-level note
    unguarded: tuple[str, ...] = ()  # in ordinary code not shown to be guarded
    skipped: tuple[str, ...] = ()  # ELF members not scanned (another machine, object files)
    probe: str = ""  # what the emulated runs ran
    runtime: tuple[runtime_verdicts.RuntimeVerdict, ...] = ()  # per host: glibc, libstdc++, Python

    @property
    def ok(self) -> bool:
        return all(c.status in (PASS, SKIP) for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def undecided(self) -> list[Check]:
        return [c for c in self.checks if c.status == UNDECIDED]

    @property
    def exit_code(self) -> int:
        """0 every host asked runs it, 1 a check failed (some host cannot run it), 3 no check
        failed but some host is undecided."""
        return 1 if self.failed else 3 if self.undecided else 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["libraries"] = [lib.to_dict() for lib in self.libraries]
        for e, doc in zip(self.emulation, d["emulation"], strict=True):
            doc["confirmable"] = e.confirmable
            doc["settled"] = e.settled
        for h, doc in zip(self.hosts, d["hosts"], strict=True):
            doc["ok"] = h.ok
        d["ok"] = self.ok
        d["exit_code"] = self.exit_code
        return d


def compatibility_check(verdicts: list[HostVerdict], n: WheelNeeds) -> Check:
    cannot = [v for v in verdicts if v.answer == CANNOT]
    open_ = [v for v in verdicts if v.answer == UNDECIDED]
    settled = [v for v in verdicts if v.settled_by]

    def why(v: HostVerdict) -> str:
        if v.answer == CANNOT:
            declared = [f for f in v.missing if f in n.declared]
            return (
                f"{v.name} cannot run it: lacks {', '.join(v.missing)}"
                + (
                    " (declared: an ISA-level note or the build record demands "
                    + ", ".join(declared)
                    + ")"
                    if declared
                    else " (used by code that runs at load)"
                )
                + (f", settled by emulation under {v.settled_by}" if v.settled_by else "")
            )
        if v.answer == UNDECIDED:
            return (
                f"{v.name} is undecided: lacks {', '.join(v.unsettled)}, used in ordinary code "
                "no CPU check is shown to guard (settle it with --emulate MODEL)"
            )
        by = f" (settled by emulation under {v.settled_by})" if v.settled_by else ""
        return f"{v.name} runs it{by}"

    details = tuple(why(v) for v in (*cannot, *open_, *settled))
    if cannot:
        return Check(
            "compatibility",
            FAIL,
            f"{len(cannot)} of {len(verdicts)} host(s) cannot run it: {why(cannot[0])}",
            details,
        )
    if open_:
        return Check(
            "compatibility",
            UNDECIDED,
            f"{len(open_)} of {len(verdicts)} host(s) undecided: {why(open_[0])}",
            details,
        )
    names = ", ".join(v.name for v in verdicts)
    return Check(
        "compatibility",
        PASS,
        f"every host runs it: each lacks only features used behind CPU checks ({names})",
        details,
    )


# ---- the whole verdict ---------------------------------------------------------------------
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
    of a tfforge wheel's id would be recorded."""
    t0 = time.perf_counter()
    models = [emulate.check_model(m) for m in emulate_models]  # bad input fails early
    _check_platform(wheel_path)
    timings = []
    elf = ElfFacts()
    scanned = scan_wheel(
        wheel_path,
        jobs=jobs,
        examples=examples,
        use_cache=use_cache,
        status=status,
        progress=progress,
        elf_facts=elf,
    )
    checked, scans, errors, sha, cached = scanned
    scans = with_variants(scans)
    timings.append(("read + scan", time.perf_counter() - t0))
    facts = checked.facts
    claim = claimed_features(facts.local_label) if facts.local_label else (frozenset(), [])
    prov = provenance_check(facts, claim[0])
    n = needs(scans, built_for(facts) if prov.status == PASS else frozenset())
    members = [s.path for s in scans]

    def listed(names: frozenset[str]) -> str:
        return ", ".join(sorted(names, key=isa.sort_key)) or "none"

    skipped = scan_skipped(errors)
    errors = [e for e in errors if e not in skipped]
    isa_summary = (
        f"{len(scans)} ELF libraries; required (runs at load or named by an ISA note): "
        f"{listed(n.required)}; in ordinary code not shown to be guarded: "
        f"{listed(n.unguarded)}; dispatched only: {listed(n.dispatched)}"
        + (
            f"; {len(skipped)} ELF member(s) not for x86-64 processes, not scanned"
            if skipped
            else ""
        )
    )
    isa_check = Check(
        "isa",
        FAIL if errors else PASS,
        (f"{len(errors)} librar(ies) could not be scanned: {errors[0]}" if errors else isa_summary),
        tuple(errors or skipped),
    )
    verdicts = host_verdicts(hosts, n)
    emulations: list[EmulationVerdict] = []
    probe_text = ""
    if models:
        t1 = time.perf_counter()
        emulations, probe_text = run_emulations(
            wheel_path, facts, models, n, timeout=emulate_timeout, status=status
        )
        verdicts = settle(hosts, verdicts, emulations, n)
        timings.append(("emulation", time.perf_counter() - t1))
    checks = [
        structure_check(checked),
        python_check(facts, python, members),
        glibc_check(facts, scans),
        prov,
        isa_check,
        isa_note_check(scans),
        compatibility_check(verdicts, n),
        claim_check(facts, frozenset().union(*(s.baseline for s in scans)), scans, claim),
    ]
    if facts.provenance:
        checks.append(reproducible_check(facts, sha, builds_dir))
    if not elf.complete:
        status("reading which compiler and linker built it (.comment of every ELF member)")
    built = builtwith.read(
        wheel_path, sha, use_cache=use_cache, members=elf.builds if elf.complete else None
    )
    checks.append(builtwith.check(facts, built))
    runtime_check, runtime_hosts = runtime_verdicts.runtime_check(
        wheel_path, facts.tags, hosts, (elf.needs, elf.errors) if elf.complete else None
    )
    checks.append(runtime_check)
    if emulations:
        checks.append(emulation_check(emulations, probe_text))

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
        baseline=tuple(sorted(n.baseline, key=isa.sort_key)),
        dispatched=tuple(sorted(n.dispatched, key=isa.sort_key)),
        hosts=tuple(verdicts),
        emulation=tuple(emulations),
        scan_cached=cached,
        seconds=round(time.perf_counter() - t0, 2),
        timings=tuple((k, round(v, 2)) for k, v in timings),
        required=tuple(sorted(n.required, key=isa.sort_key)),
        unguarded=tuple(sorted(n.unguarded, key=isa.sort_key)),
        skipped=tuple(skipped),
        probe=probe_text,
        runtime=tuple(runtime_hosts),
    )


def scan_skipped(errors: list[str]) -> list[str]:
    """Scan errors that are not failures: ELF members no x86-64 process loads."""
    return [e for e in errors if NOT_LOADED in e]


def static_host_verdict(
    wheel_path: Path,
    host: cpu.HostProfile,
    *,
    jobs: int = 1,
    status: Callable[[str], None] = lambda _m: None,
) -> HostVerdict:
    """verify's static answer for one host, from the wheel's (cached) ISA scan: what smoke
    compares with what really happens."""
    _, scans, errors, _, _ = scan_wheel(wheel_path, jobs=jobs, status=status)
    errors = [e for e in errors if NOT_LOADED not in e]
    if errors:
        raise ConfigError(
            f"{wheel_path.name}: {len(errors)} librar(ies) could not be scanned: {errors[0]}"
        )
    return host_verdict(host, needs(scans))


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


def feature_rows(r: VerifyReport) -> list[dict[str, Any]]:
    """One row per feature over all libraries, with the strongest evidence for its class:
    required, then unguarded, then dispatched."""
    rank = {"required": 0, "unguarded": 1, "dispatched": 2}
    rows = []
    for feat in (*r.required, *r.unguarded, *r.dispatched):
        per = [(s, e) for s in r.libraries if (e := s.feature(feat))]
        cls = (
            "required"
            if feat in r.required
            else "unguarded"
            if feat in r.unguarded
            else ("dispatched")
        )
        title = isa.title(feat) if feat in isa.features() else feat
        if not per:  # demanded by a declaration only (ISA-level note, build record)
            noted = [s.path for s in r.libraries if s.isa_needed]
            rows.append(
                {
                    "feature": feat,
                    "title": title,
                    "class": cls,
                    "libraries": 0,
                    "baseline_in": 0,
                    "instructions": 0,
                    "ordinary": 0,
                    "dispatched_fns": 0,
                    "why": "declared",
                    "library": noted[0] if noted else "",
                    "evidence": "declared: the x86 ISA level a library's .note.gnu.property "
                    "names (glibc refuses to load it without), or the features the tfforge "
                    "build record says every file was compiled for",
                    "example": "",
                }
            )
            continue
        pick_s, pick_e = min(
            per, key=lambda se: (rank.get(se[1].cls, 3), -se[1].ordinary, -se[1].functions)
        )
        rows.append(
            {
                "feature": feat,
                "title": title,
                "class": cls,
                "libraries": len(per),
                "baseline_in": sum(e.cls != "dispatched" for _, e in per),
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
    if e.cls == "required":
        return "runs at load (R3)"
    if e.cls == "unguarded":
        return "ordinary code (R4)"
    parts = (
        (["named (R1)"] if e.named else [])
        + (["CPU-checked (R2)"] if e.guarded else [])
        + (["unlabelled code (R5)"] if e.unlabelled else [])
    )
    return " + ".join(parts)
