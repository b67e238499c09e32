"""verify's three answers for a host, from a wheel's ISA scans: *runs*, *cannot run* or
*undecided*, each with its evidence; and how an emulated run settles or confirms them.

- runs: every feature the host lacks is used only behind CPU checks (dispatched).
- cannot run: the host lacks a feature that code runs unconditionally: at load (R3), or the
  x86 ISA level a library's note declares (glibc refuses to load it).
- undecided: the host lacks a feature ordinary code uses, and static analysis cannot tell
  whether a CPU check guards it. An emulated run of the wheel's import (and a workload) under a
  qemu model that lacks the same features settles it.
No printing, no settings.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from tfforge.elfscan.results import LibraryScan
from tfforge.host import cpu, isa
from tfforge.verify.emulate import EmulationResult

RUNS, CANNOT, UNDECIDED = "runs", "cannot run", "undecided"


def _sorted(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=lambda n: (isa.sort_key(n), n)))


@dataclass(frozen=True)
class WheelNeeds:
    """What a wheel's code needs, over all its libraries."""

    required: frozenset[str]  # runs unconditionally, or declared (ISA note, build record)
    unguarded: frozenset[str]  # in ordinary code not shown to be guarded
    dispatched: frozenset[str]  # only behind CPU checks
    declared: frozenset[str] = frozenset()  # of required, what declarations demand

    @property
    def baseline(self) -> frozenset[str]:
        """What ordinary code uses (required | unguarded): a host lacking none of it runs."""
        return self.required | self.unguarded


# A library file whose name is a sibling's name plus an ISA word: an alternative build that
# Python code imports only after a CPU check (rapidfuzz's fuzz_cpp_avx2 beside fuzz_cpp).
_VARIANT = re.compile(
    r"^(?P<stem>.+?)_(?:avx512\w*|avx2|avx|sse4_?[12]|sse\d+|ssse3|fma3?|haswell|skylake\w*|"
    r"icelake\w*|x86_64_v[234])$",
    re.IGNORECASE,
)
_SUFFIXES = re.compile(r"(\.cpython-[^.]+|\.abi3)?\.so(\.\d+)*$|-[0-9a-f]{8}(?=\.so)")


def _stem(path: str) -> str:
    return _SUFFIXES.sub("", PurePosixPath(path).name)


def variant_libraries(paths: Iterable[str]) -> frozenset[str]:
    """Libraries that are ISA variants of a sibling in the same folder (same name without the
    ISA word): the import picks one, so what only they use is dispatched."""
    paths = list(paths)
    stems = {(str(PurePosixPath(p).parent), _stem(p)) for p in paths}
    out = set()
    for p in paths:
        m = _VARIANT.match(_stem(p))
        if m and (str(PurePosixPath(p).parent), m["stem"]) in stems:
            out.add(p)
    return frozenset(out)


def as_variant(scan: LibraryScan) -> LibraryScan:
    """A variant library's scan with every feature dispatched, saying why."""
    why = "an ISA variant of a sibling library, imported only after a CPU check (R7): "
    return dataclasses.replace(
        scan,
        baseline=frozenset(),
        required=frozenset(),
        dispatched=scan.dispatched | scan.baseline,
        features=tuple(
            dataclasses.replace(f, cls="dispatched", reason=why + f.reason) for f in scan.features
        ),
    )


def with_variants(scans: list[LibraryScan]) -> list[LibraryScan]:
    variants = variant_libraries(s.path for s in scans)
    return [as_variant(s) if s.path in variants else s for s in scans]


def needs(scans: list[LibraryScan], built_for: frozenset[str] = frozenset()) -> WheelNeeds:
    """The wheel's needs from its library scans, and what it declares: each library's x86
    ISA-level note (glibc refuses to load it below that level) and, for a tfforge wheel, the
    features its build record says every file was compiled for (`built_for`). ISA variant
    libraries count as dispatched (with_variants)."""
    scans = with_variants(scans)
    at_load = frozenset().union(*(s.required for s in scans))
    noted = frozenset().union(
        *(
            isa.level_features(level)
            for s in scans
            if s.isa_needed and (level := isa.parse_level(s.isa_needed))
        )
    )
    declared = (noted | built_for) - {"sse", "sse2"}  # x86-64 level 1: every CPU
    required = at_load | declared
    unguarded = frozenset().union(*(s.unguarded for s in scans)) - required
    dispatched = frozenset().union(*(s.dispatched for s in scans)) - required - unguarded
    return WheelNeeds(required, unguarded, dispatched, declared - at_load)


def host_has(host: cpu.HostProfile) -> frozenset[str]:
    """What a host offers, in the names requirements use: tfforge's canonical feature names,
    and the raw flags (rtm, 3dnowprefetch ... that the build vocabulary does not name)."""
    return host.features | frozenset(f.lower() for f in host.flags_raw)


@dataclass(frozen=True)
class HostVerdict:
    name: str
    model: str
    source: str
    answer: str  # RUNS | CANNOT | UNDECIDED
    missing: tuple[str, ...]  # required features the host lacks: why it cannot run
    unsettled: tuple[str, ...]  # unguarded features it lacks: why it is undecided
    missing_dispatched: tuple[str, ...]  # dispatched ones it lacks: never a failure
    settled_by: str = ""  # the emulated run that settled an undecided answer

    @property
    def ok(self) -> bool:
        return self.answer == RUNS

    @property
    def undecided(self) -> bool:
        return self.answer == UNDECIDED


def host_verdict(host: cpu.HostProfile, n: WheelNeeds) -> HostVerdict:
    if not host.is_x86:
        return HostVerdict(host.name, host.model_name, host.source, CANNOT, ("x86_64",), (), ())
    have = host_has(host)
    missing = _sorted(n.required - have)
    unsettled = _sorted(n.unguarded - have)
    answer = CANNOT if missing else UNDECIDED if unsettled else RUNS
    return HostVerdict(
        host.name,
        host.model_name,
        host.source,
        answer,
        missing,
        unsettled,
        _sorted(n.dispatched - have),
    )


def host_verdicts(hosts: list[cpu.HostProfile], n: WheelNeeds) -> list[HostVerdict]:
    return [host_verdict(h, n) for h in hosts]


def relevant(n: WheelNeeds, offered: frozenset[str]) -> frozenset[str]:
    """The features that decide an answer, as one host offers them."""
    return n.baseline & offered


def same_answer_as(n: WheelNeeds, host: cpu.HostProfile, offered: frozenset[str]) -> bool:
    """Whether a machine offering `offered` stands for `host` for this wheel: it has and lacks
    the same features among those ordinary code uses, so a run there settles the host."""
    return relevant(n, host_has(host)) == relevant(n, offered)


@dataclass(frozen=True)
class EmulationVerdict:
    """One run of the wheel's probe under a qemu model, against the model's static answer."""

    result: EmulationResult
    static: HostVerdict  # the answer for what the model offers
    offered: frozenset[str]  # what the model offers under qemu (host_has names)
    unexecutable: tuple[str, ...]  # features its real CPU has that qemu cannot execute
    witness: bool  # the same probe passed on this host: a failure under qemu is the CPU's
    answer: str  # what the run shows (RUNS | CANNOT), "" when it shows nothing
    agrees: bool | None  # static answer vs the run; None when undecided or not confirmable

    @property
    def confirmable(self) -> bool:
        return self.answer != ""

    @property
    def settled(self) -> bool:
        """The run decided what static analysis left undecided."""
        return self.static.answer == UNDECIDED and self.confirmable


def judge_run(
    result: EmulationResult,
    static: HostVerdict,
    offered: frozenset[str],
    unexecutable: tuple[str, ...],
    witness: bool,
    *,
    workload: bool = True,
) -> EmulationVerdict:
    """Compare an emulated run with the static answer, or settle an undecided one. A run shows
    nothing when qemu cannot execute what the real CPU has, when the probe fails on this host
    as well (not a CPU question), or when it timed out. A passing import with no workload
    (workload=False) settles no undecided answer as runs: the unguarded code it found may run
    only when the library is used."""
    if unexecutable or not witness or result.status == "timeout":
        return EmulationVerdict(result, static, offered, unexecutable, witness, "", None)
    if not workload and result.status == "pass" and static.answer == UNDECIDED:
        return EmulationVerdict(result, static, offered, unexecutable, witness, "", None)
    got = RUNS if result.status == "pass" else CANNOT
    agrees = None if static.answer == UNDECIDED else got == static.answer
    return EmulationVerdict(result, static, offered, unexecutable, witness, got, agrees)
