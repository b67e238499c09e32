"""What a library scan returns: per-library ISA facts and per-feature evidence (plain data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tfforge.host import isa


@dataclass(frozen=True)
class FeatureEvidence:
    """Why one feature was classed baseline or dispatched in one library."""

    name: str  # canonical feature name (tfforge.isa), or iced:NAME
    cls: str  # "baseline" | "dispatched"
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


@dataclass(frozen=True)
class LibraryScan:
    """The ISA facts of one ELF library: `.baseline`, `.dispatched` and per-feature evidence."""

    path: str
    size: int
    code_bytes: int
    instructions: int
    functions: int
    symbols: str  # where function names came from
    baseline: frozenset[str]
    dispatched: frozenset[str]
    features: tuple[FeatureEvidence, ...] = ()
    ignored: tuple[tuple[str, int], ...] = ()  # non-requirement mnemonics and counts
    cpu_checks: int = 0  # CPU-check functions found
    roots: int = 0  # load-time entry points
    load_reachable: int = 0  # functions reachable from them
    pattern_hits: tuple[tuple[str, int], ...] = ()  # dispatch pattern -> feature functions
    glibc: str | None = None  # highest GLIBC_x.y symbol version needed
    isa_needed: str | None = None  # x86 ISA level in .note.gnu.property, if recorded
    seconds: float = 0.0
    phases: tuple[tuple[str, float], ...] = ()

    def feature(self, name: str) -> FeatureEvidence | None:
        return next((f for f in self.features if f.name == name), None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["baseline"] = sorted(self.baseline, key=isa.sort_key)
        d["dispatched"] = sorted(self.dispatched, key=isa.sort_key)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LibraryScan:
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
                "features": feats,
                "ignored": tuple(map(tuple, d["ignored"])),
                "pattern_hits": tuple(map(tuple, d["pattern_hits"])),
                "phases": tuple(map(tuple, d["phases"])),
            }
        )
