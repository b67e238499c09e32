"""The scan's rules as data: verify.toml / verify_allow.toml loaded and validated once, and the
per-iced-Code table (requirement features, what the decode loop keeps) built from them."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass
from functools import cache

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
    regex: re.Pattern
    why: str
    libraries: tuple[str, ...] = ("*",)

    def applies(self, lib_name: str) -> bool:
        return any(fnmatch.fnmatch(lib_name, g) for g in self.libraries)

    @property
    def label(self) -> str:
        return f"{self.source}: {self.regex.pattern}"


@dataclass(frozen=True)
class Rules:
    implicit: frozenset[str]
    ignore: tuple[tuple[str, str], ...]
    check_instructions: frozenset[str]
    check_variables: tuple[str, ...]
    check_functions: tuple[str, ...]
    generic: tuple[Pattern, ...]
    allow: tuple[Pattern, ...]
    name_hints: tuple[str, ...] = ()  # generic patterns run only on names containing one
    data_in_text: frozenset[str] = frozenset()  # CpuidFeatures only data decodes as


def _read_toml(name: str) -> dict:
    text = resources.read_text(resources.DATA, name)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"tfforge/data/{name}: not valid TOML ({exc}); fix the file")


def _compile(source: str, entry: dict) -> Pattern:
    try:
        return Pattern(
            source, re.compile(entry["pattern"]), entry["why"], tuple(entry.get("libraries", ["*"]))
        )
    except KeyError as exc:
        raise ConfigError(
            f"tfforge/data/{source}: an entry lacks {exc}; each needs pattern and why"
        )
    except re.error as exc:
        raise ConfigError(f"tfforge/data/{source}: bad pattern {entry['pattern']!r} ({exc})")


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
    cpuid_names = {k for k in vars(iced_x86.CpuidFeature) if not k.startswith("_")}
    unknown = sorted(set(base.get("data_in_text", ())) - cpuid_names)
    if unknown:
        raise ConfigError(
            f"tfforge/data/verify.toml: data_in_text names unknown iced-x86 "
            f"CpuidFeature(s) {', '.join(unknown)}"
        )
    return Rules(
        frozenset(base.get("implicit", ())),
        tuple(base.get("ignore", {}).items()),
        frozenset(checks.get("instructions", ())),
        tuple(checks.get("variables", ())),
        tuple(checks.get("functions", ())),
        tuple(_compile("verify.toml", e) for e in base.get("dispatch", [])),
        tuple(_compile("verify_allow.toml", e) for e in allow.get("allow", [])),
        tuple(h.lower() for h in base.get("names", {}).get("hints", ())),
        frozenset(base.get("data_in_text", ())),
    )


@cache
def _mnemonics() -> dict[int, str]:
    return {
        v: k.lower()
        for k, v in vars(iced_x86.Mnemonic).items()
        if not k.startswith("_") and isinstance(v, int)
    }


def feature_name(cpuid_feature: str) -> str:
    """Canonical name of an iced CpuidFeature; 'iced:NAME' when the vocabulary lacks it."""
    return isa.lookup(cpuid_feature) or f"iced:{cpuid_feature}"


@dataclass(frozen=True)
class CodeTable:
    """Per iced Code: requirement features, what the decode loop keeps, mnemonic."""

    features: tuple[tuple[str, ...], ...]
    hot: list[int]
    mnemonic: tuple[str, ...]
    ignored: frozenset[int]  # codes whose features are not requirements
    checks: frozenset[int]  # cpuid, xgetbv


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
    ignored, checks = set(), set()
    ins = iced_x86.Instruction()
    for code in codes:
        ins.code = code
        mn = _mnemonics().get(iced_x86.OpCodeInfo(code).mnemonic, "?")
        mnem[code] = mn
        names, noise = [], False
        for f in ins.cpuid_features():
            raw = cf_names[f]
            noise |= raw in r.data_in_text
            name = feature_name(raw)
            level = isa.features()[name].level if name in isa.features() else None
            if raw not in r.implicit and level != 1:
                names.append(name)
        if mn in r.check_instructions:
            checks.add(code)
        if (mn in ignore or noise) and names:
            ignored.add(code)
            names = []
        feats[code] = tuple(dict.fromkeys(names))
        if names or code in checks or code in ignored:
            hot[code] = FEATURE
    hot[iced_x86.Code.CALL_REL32_64] = CALL
    hot[iced_x86.Code.JMP_REL32_64] = JMP
    hot[iced_x86.Code.JMP_REL8_64] = JMP  # a short tail call to a neighbour
    hot[iced_x86.Code.LEA_R64_M] = LEA
    return CodeTable(tuple(feats), hot, tuple(mnem), frozenset(ignored), frozenset(checks))
