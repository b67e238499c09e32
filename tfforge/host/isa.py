"""The vocabulary of x86 ISA features: canonical names, aliases, implications, psABI levels
and GCC flags. Data lives in ``data/isa.toml``; this module only reads it. No I/O beyond that.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from packaging.version import Version

from tfforge import resources
from tfforge.errors import ConfigError

PSABI_LEVELS = ("x86-64-v1", "x86-64-v2", "x86-64-v3", "x86-64-v4")


@dataclass(frozen=True)
class Feature:
    """One ISA extension under its canonical (Linux /proc/cpuinfo) name."""

    name: str
    title: str
    aliases: tuple[str, ...] = ()
    implies: tuple[str, ...] = ()
    level: int | None = None
    gcc_flag: str | None = None
    gcc_since: str | None = None
    tf: bool = False
    flag: str | None = None  # the boolean flag render and build take for it


@dataclass(frozen=True)
class Vocabulary:
    features: dict[str, Feature]
    aliases: dict[str, str] = field(repr=False)


def _load() -> Vocabulary:
    raw = resources.toml("isa.toml")
    feats: dict[str, Feature] = {}
    aliases: dict[str, str] = {}
    for name, row in raw["features"].items():
        gcc = row.get("gcc") or [None, None]
        feats[name] = Feature(
            name,
            row["title"],
            tuple(row.get("aliases", ())),
            tuple(row.get("implies", ())),
            row.get("level"),
            gcc[0],
            gcc[1],
            bool(row.get("tf", False)),
            row.get("flag"),
        )
        for alias in (name, *row.get("aliases", ())):
            key = alias.lower()
            if aliases.get(key, name) != name:
                raise ValueError(f"isa.toml: alias {alias!r} names two features")
            aliases[key] = name
    for f in feats.values():
        for dep in f.implies:
            if dep not in feats:
                raise ValueError(f"isa.toml: {f.name} implies unknown feature {dep!r}")
    return Vocabulary(feats, aliases)


@cache
def vocabulary() -> Vocabulary:
    """The loaded vocabulary (read once)."""
    return _load()


def features() -> dict[str, Feature]:
    return vocabulary().features


def tf_features() -> list[str]:
    """Features TensorFlow builds care about, in the data file's order."""
    return [f.name for f in features().values() if f.tf]


def flag_features() -> list[Feature]:
    """Features with a boolean flag of their own (--avx2 ...), in the data file's order."""
    return [f for f in features().values() if f.flag]


def tf_relevant(names: Iterable[str]) -> list[str]:
    """The TensorFlow-relevant features among names, in vocabulary order."""
    table = features()
    return sorted((n for n in names if table[n].tf), key=sort_key)


def lookup(name: str) -> str | None:
    """Canonical name for any known spelling, or None."""
    return vocabulary().aliases.get(name.strip().lower())


def canonical(name: str, *, source: str = "feature") -> str:
    """Canonical name for a spelling; ConfigError naming the valid ones otherwise."""
    found = lookup(name)
    if found is None:
        valid = sorted(features())
        close = difflib.get_close_matches(name.lower(), list(vocabulary().aliases), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{source}: unknown ISA feature {name!r}{hint}; valid: {', '.join(valid)}"
        )
    return found


def normalize(names: Iterable[str]) -> frozenset[str]:
    """Known features among raw flag names (unknown flags such as 'fpu' are dropped)."""
    out = set()
    for n in names:
        c = lookup(n)
        if c:
            out.add(c)
    return frozenset(out)


def closure(names: Iterable[str]) -> frozenset[str]:
    """The features plus everything they imply, transitively."""
    todo, seen = list(names), set()
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(features()[n].implies)
    return frozenset(seen)


def level_features(level: int) -> frozenset[str]:
    """Features required by psABI level x86-64-vN (cumulative)."""
    return frozenset(f.name for f in features().values() if f.level and f.level <= level)


def psabi_level(present: Iterable[str]) -> int:
    """Highest psABI level (1..4) whose every feature is present."""
    present = frozenset(present)
    best = 1
    for lvl in (2, 3, 4):
        if level_features(lvl) <= present:
            best = lvl
        else:
            break
    return best


def level_name(level: int) -> str:
    return PSABI_LEVELS[level - 1]


def parse_level(text: str) -> int | None:
    """1..4 for 'x86-64-v3', 'x86_64_v3' or 'v3'; None when text is not a level."""
    t = text.strip().lower().replace("_", "-")
    for i, name in enumerate(PSABI_LEVELS, start=1):
        if t in (name, name.removeprefix("x86-64-")):
            return i
    return None


def gcc_flags(names: Iterable[str], gcc_version: str | None) -> list[str]:
    """`-m` flags for the features, in vocabulary order; ConfigError if the GCC is too old.

    gcc_version None skips the version gate (Clang accepts GCC's spellings for these)."""
    wanted = frozenset(names)
    flags, too_new = [], []
    for f in features().values():
        if f.name not in wanted or not f.gcc_flag:
            continue
        if gcc_version and f.gcc_since and Version(gcc_version) < Version(f.gcc_since):
            too_new.append(f"{f.gcc_flag} needs GCC >= {f.gcc_since}")
        flags.append(f.gcc_flag)
    if too_new:
        raise ConfigError(f"GCC {gcc_version} cannot emit: {'; '.join(too_new)}")
    return flags


def title(name: str) -> str:
    return features()[name].title


@cache
def _order() -> dict[str, int]:
    return {name: i for i, name in enumerate(features())}


def sort_key(name: str) -> int:
    """Vocabulary order (roughly oldest to newest) for stable display; unknown names last."""
    order = _order()
    return order.get(name, len(order))
