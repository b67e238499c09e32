"""What a library scan returns: per-library ISA facts and per-feature evidence (plain data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tfforge.host import isa


@dataclass(frozen=True)
class FeatureEvidence:
    """Why one feature was classed baseline or dispatched in one library."""

    name: str  # canonical feature name (tfforge.isa), else the /proc/cpuinfo flag
    cls: str  # "required" | "unguarded" | "dispatched" (see CLASSES)
    instructions: int  # instructions using it (in function bodies)
    ordinary_instructions: int  # of them in ordinary (incl. load-time) functions
    functions: int  # functions using it
    ordinary: int  # ordinary functions (R3 + R4) using it
    load_time: int  # of those, reachable at load (R3)
    named: int  # dispatch-named / allow-listed functions (R1)
    guarded: int  # functions reached only from CPU-check code (R2)
    examples: tuple[str, ...]  # function names: ordinary ones (most uses first) if any
    mnemonics: tuple[tuple[str, int], ...]  # its most frequent instructions
    reason: str
    unlabelled: int = 0  # unlabelled code blocks (R5)
    checking: int = 0  # of the ordinary functions, ones that test the CPU themselves


# What a feature's class says about a host that lacks it.
CLASSES = {
    "required": "cannot run: code that needs it runs unconditionally (at load)",
    "unguarded": "undecided: ordinary code needs it and no CPU check is shown to guard it",
    "dispatched": "runs: only code reached behind CPU checks needs it",
}


@dataclass(frozen=True)
class LibraryScan:
    """The ISA facts of one ELF library: `.baseline`, `.dispatched` and per-feature evidence."""

    path: str
    size: int
    code_bytes: int
    decoded_bytes: int  # of code_bytes, in function bodies (decoded)
    functions: int
    symbols: str  # where function names came from
    baseline: frozenset[str]  # what ordinary code uses: required | unguarded
    dispatched: frozenset[str]
    features: tuple[FeatureEvidence, ...] = ()
    ignored: tuple[tuple[str, int], ...] = ()  # non-requirement mnemonics and counts
    cpu_checks: int = 0  # CPU-check functions found
    roots: int = 0  # load-time entry points
    load_reachable: int = 0  # functions reachable from them
    pattern_hits: tuple[tuple[str, int], ...] = ()  # dispatch pattern -> feature functions
    glibc: str | None = None  # highest GLIBC_x.y symbol version needed
    isa_needed: str | None = None  # x86 ISA level in .note.gnu.property, if recorded
    required: frozenset[str] = frozenset()  # of baseline, what runs at load (R3)
    seconds: float = 0.0
    phases: tuple[tuple[str, float], ...] = ()

    @property
    def unguarded(self) -> frozenset[str]:
        return self.baseline - self.required

    def feature(self, name: str) -> FeatureEvidence | None:
        return next((f for f in self.features if f.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["baseline"] = sorted(self.baseline, key=isa.sort_key)
        d["dispatched"] = sorted(self.dispatched, key=isa.sort_key)
        d["required"] = sorted(self.required, key=isa.sort_key)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LibraryScan:
        feats = tuple(
            FeatureEvidence(
                **{
                    **f,
                    "examples": tuple(f["examples"]),
                    "mnemonics": tuple(map(tuple, f["mnemonics"])),
                }
            )
            for f in d["features"]
        )
        return cls(
            **{
                **d,
                "baseline": frozenset(d["baseline"]),
                "dispatched": frozenset(d["dispatched"]),
                "required": frozenset(d["required"]),
                "features": feats,
                "ignored": tuple(map(tuple, d["ignored"])),
                "pattern_hits": tuple(map(tuple, d["pattern_hits"])),
                "phases": tuple(map(tuple, d["phases"])),
            }
        )
