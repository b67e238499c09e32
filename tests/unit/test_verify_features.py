"""The feature vocabulary covers what iced-x86 reports: every CpuidFeature iced knows is decided
in tfforge/data/verify_features.toml (a kernel flag, always, never or data), and each flag is
one a real host can list: tfforge's own vocabulary, archspec's microarchitecture data, or the
kernel flags of a real machine (tests/fixtures/cpuinfo, tests/fixtures/cpuflags)."""

from __future__ import annotations

import tomllib

import archspec.cpu
import iced_x86
from conftest import FIXTURES

from tfforge import resources
from tfforge.elfscan import rules
from tfforge.host import cpu, isa

WORDS = {"always", "never", "data"}


def _table() -> dict[str, str]:
    return tomllib.loads(resources.read_text(resources.DATA, "verify_features.toml"))["features"]


def _real_flags() -> set[str]:
    flags: set[str] = set()
    for path in (FIXTURES / "cpuinfo").glob("*.cpuinfo"):
        flags |= set(cpu.load_host(path).flags_raw)
    for line in (FIXTURES / "cpuflags" / "flags.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            flags |= set(line.split())
    for target in archspec.cpu.TARGETS.values():
        if target.family.name == "x86_64":
            flags |= set(target.features)
    return flags


def test_every_iced_feature_is_decided():
    iced = {k for k, v in vars(iced_x86.CpuidFeature).items() if isinstance(v, int)}
    iced -= {k for k in iced if k.startswith("_")}
    table = _table()
    assert sorted(iced - set(table)) == [], "decide these in verify_features.toml"
    assert sorted(set(table) - iced) == []


def test_every_flag_is_one_a_host_can_list():
    real = _real_flags()
    for raw, value in _table().items():
        if value in WORDS:
            continue
        assert value == value.lower() and " " not in value, (raw, value)
        assert isa.lookup(value) or value in real, (
            f"{raw} = {value!r}: neither tfforge's vocabulary, archspec nor a real "
            "cpuinfo fixture lists it"
        )


def test_requirement_names():
    names = dict(rules.rules().names)
    assert names["PREFETCHW"] == "3dnowprefetch" and names["RTM"] == "rtm"
    assert names["HLE_OR_RTM"] == "rtm" and names["LZCNT"] == "abm"
    assert names["SSE4_2"] == "sse4_2" and names["SHA"] == "sha_ni"
    assert names["AVX_IFMA"] == "avx_ifma"  # no kernel flag: no host lists it
    assert "CPUID" in rules.rules().implicit and "D3NOW" in rules.rules().data_in_text
    table = rules.code_table()
    # no requirement is an "iced:" placeholder any more
    assert not any(f.startswith("iced:") for feats in table.features for f in feats)


def test_hint_space_instructions_are_not_requirements():
    t = rules.code_table()
    C = iced_x86.Code
    for code in (C.PREFETCH_M8, C.PREFETCHW_M8, C.PREFETCHWT1_M8, C.BNDMK_BND_M64, C.CLDEMOTE_M8):
        assert t.features[code] == () and code in t.ignored, t.mnemonic[code]
    assert t.features[C.XBEGIN_REL32] == ("rtm",)
