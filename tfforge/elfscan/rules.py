"""The scan's rules as data: verify.toml / verify_allow.toml loaded and validated once, and the
per-iced-Code table (requirement features, what the decode loop keeps) built from them."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from typing import Any

import iced_x86

from tfforge import resources
from tfforge.errors import ConfigError
from tfforge.host import isa

# What the decode loop keeps per iced Code (CodeTable.hot).
FEATURE, CALL, JMP, LEA = 1, 2, 3, 4


@dataclass(frozen=True)
class Pattern:
    """A dispatch-name pattern: generic ones (verify.toml) match the identifiers of a symbol,
    allow-list ones (verify_allow.toml) the raw symbol name."""

    source: str
    regex: re.Pattern[str]
    why: str
    libraries: tuple[str, ...] = ("*",)
    contains: tuple[str, ...] = ()  # a name must contain one of these before the search

    def applies(self, lib_name: str) -> bool:
        return any(fnmatch.fnmatch(lib_name, g) for g in self.libraries)

    @property
    def label(self) -> str:
        return f"{self.source}: {self.regex.pattern}"


@dataclass(frozen=True)
class Rules:
    implicit: frozenset[str]  # CpuidFeatures every x86-64 CPU has ("always")
    ignore: tuple[tuple[str, str], ...]
    check_instructions: frozenset[str]
    check_variables: tuple[str, ...]
    generic: tuple[Pattern, ...]
    allow: tuple[Pattern, ...]
    name_hints: tuple[str, ...] = ()  # generic patterns run only on names containing one
    tail_hints: tuple[str, ...] = ()  # ... or ending (last 32 characters) with one
    data_in_text: frozenset[str] = frozenset()  # CpuidFeatures only data decodes as ("data")
    names: tuple[tuple[str, str], ...] = ()  # CpuidFeature -> requirement name
    check_variables_in: tuple[str, ...] = ()  # found anywhere in a (mangled) name


def _read_toml(name: str) -> dict[str, Any]:
    text = resources.read_text(resources.DATA, name)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"tfforge/data/{name}: not valid TOML ({exc}); fix the file") from None


def _compile(source: str, entry: dict[str, Any]) -> Pattern:
    try:
        return Pattern(
            source,
            re.compile(entry["pattern"], re.ASCII),  # symbol names: ASCII case and \w
            entry["why"],
            tuple(entry.get("libraries", ["*"])),
            tuple(entry.get("contains", ())),
        )
    except KeyError as exc:
        raise ConfigError(
            f"tfforge/data/{source}: an entry lacks {exc}; each needs pattern and why"
        ) from None
    except re.error as exc:
        raise ConfigError(
            f"tfforge/data/{source}: bad pattern {entry['pattern']!r} ({exc})"
        ) from None


@cache
def rules() -> Rules:
    """verify.toml + verify_allow.toml, validated once."""
    base = _read_toml("verify.toml")
    allow = _read_toml("verify_allow.toml")
    checks = base.get("cpu_checks", {})
    known = _mnemonics()
    bad = [
        m
        for m in (*base.get("ignore", {}), *checks.get("instructions", ()))
        if m not in known.values()
    ]
    if bad:
        raise ConfigError(
            f"tfforge/data/verify.toml: unknown mnemonic(s) {', '.join(bad)}; "
            "use iced-x86 mnemonic names in lower case"
        )
    implicit, data, named = feature_table()
    hints = base.get("names", {})
    return Rules(
        implicit=implicit,
        ignore=tuple(base.get("ignore", {}).items()),
        check_instructions=frozenset(checks.get("instructions", ())),
        check_variables=tuple(checks.get("variables", ())),
        generic=tuple(_compile("verify.toml", e) for e in base.get("dispatch", [])),
        allow=tuple(_compile("verify_allow.toml", e) for e in allow.get("allow", [])),
        name_hints=tuple(h.lower() for h in hints.get("hints", ())),
        tail_hints=tuple(h.lower() for h in hints.get("tail_hints", ())),
        data_in_text=data,
        names=tuple(sorted(named.items())),
        check_variables_in=tuple(checks.get("variables_in", ())),
    )


def feature_table() -> tuple[frozenset[str], frozenset[str], dict[str, str]]:
    """verify_features.toml: (features every x86-64 CPU has, features only data decodes as,
    CpuidFeature -> requirement name for the rest). A requirement is named by isa.toml's
    canonical name when isa.toml knows the kernel flag, else by the flag; "never" features
    by their lower-case iced name (no host lists them)."""
    table = _read_toml("verify_features.toml").get("features", {})
    known = {k for k in vars(iced_x86.CpuidFeature) if not k.startswith("_")}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"tfforge/data/verify_features.toml: unknown iced-x86 CpuidFeature(s) "
            f"{', '.join(unknown)}; use iced-x86's names"
        )
    implicit, data, named = set(), set(), {}
    for raw, value in table.items():
        if not isinstance(value, str) or not value:
            raise ConfigError(
                f"tfforge/data/verify_features.toml: {raw} = {value!r}; give a kernel flag, "
                '"always", "never" or "data"'
            )
        if value == "always":
            implicit.add(raw)
        elif value == "data":
            data.add(raw)
        elif value == "never":
            named[raw] = raw.lower()
        else:
            named[raw] = isa.lookup(value) or value
    return frozenset(implicit), frozenset(data), named


@cache
def _mnemonics() -> dict[int, str]:
    return {
        v: k.lower()
        for k, v in vars(iced_x86.Mnemonic).items()
        if not k.startswith("_") and isinstance(v, int)
    }


def feature_name(cpuid_feature: str) -> str:
    """The requirement name of an iced CpuidFeature (verify_features.toml); one a newer
    iced-x86 adds before the table knows it is named in lower case, like "never" ones."""
    return dict(rules().names).get(cpuid_feature) or cpuid_feature.lower()


@dataclass(frozen=True)
class CodeTable:
    """Per iced Code: requirement features, what the decode loop keeps, mnemonic."""

    features: tuple[tuple[str, ...], ...]
    hot: list[int]
    mnemonic: tuple[str, ...]
    ignored: frozenset[int]  # codes whose features are not requirements
    checks: frozenset[int]  # cpuid, xgetbv
    cpuid: frozenset[int] = frozenset()  # cpuid itself: its functions set CPU-feature flags


@cache
def code_table() -> CodeTable:
    """Built once: a Code's CPUID features depend only on the Code, never on its operands."""
    r = rules()
    ignore = dict(r.ignore)
    cf_names = {
        v: k
        for k, v in vars(iced_x86.CpuidFeature).items()
        if not k.startswith("_") and isinstance(v, int)
    }
    codes = [
        v for k, v in vars(iced_x86.Code).items() if not k.startswith("_") and isinstance(v, int)
    ]
    n = max(codes) + 1
    feats: list[tuple[str, ...]] = [()] * n
    mnem = [""] * n
    hot = [0] * n
    ignored: set[int] = set()
    checks: set[int] = set()
    ins = iced_x86.Instruction()
    for code in codes:
        ins.code = code  # type: ignore[assignment]  # iced's Code values are ints
        mn = _mnemonics().get(iced_x86.OpCodeInfo(code).mnemonic, "?")  # type: ignore[arg-type]
        mnem[code] = mn
        names, noise = [], False
        for f in ins.cpuid_features():
            raw = cf_names[f]
            noise |= raw in r.data_in_text
            if raw in r.implicit or raw in r.data_in_text:
                continue
            name = feature_name(raw)
            level = isa.features()[name].level if name in isa.features() else None
            if level != 1:
                names.append(name)
        if mn in r.check_instructions:
            checks.add(code)
        if noise or (mn in ignore and names):
            ignored.add(code)  # counted in the report, never a requirement
            names = []
        feats[code] = tuple(dict.fromkeys(names))
        if names or code in checks or code in ignored:
            hot[code] = FEATURE
    hot[iced_x86.Code.CALL_REL32_64] = CALL
    # Jumps into another function: tail calls, and hand-written assembly that tests the CPU and
    # jumps to its variant (jnz .Lavx2_shortcut). rel8 ones reach only a neighbour; a long
    # conditional jump is how assembly reaches a variant further away.
    for name, code in vars(iced_x86.Code).items():
        if isinstance(code, int) and (
            (name.startswith("J") and name.endswith("REL32_64")) or name == "JMP_REL8_64"
        ):
            hot[code] = JMP
    # LEAs of a function's address are found in the bytes (decode.Collector), not here.
    return CodeTable(
        tuple(feats),
        hot,
        tuple(mnem),
        frozenset(ignored),
        frozenset(checks),
        frozenset({iced_x86.Code.CPUID}),
    )
