"""The feature vocabulary: aliases, implications, psABI levels, GCC flags."""

import pytest

from tfforge.errors import ConfigError
from tfforge.host import isa


@pytest.mark.parametrize(
    "alias,canon",
    [
        ("sse3", "pni"),
        ("SSE3", "pni"),
        ("lzcnt", "abm"),
        ("LZCNT", "abm"),
        ("sha", "sha_ni"),
        ("avx512vnni", "avx512_vnni"),
        ("AVX512_VNNI", "avx512_vnni"),
        ("AVX_VNNI", "avx_vnni"),
        ("avx512_vbmi", "avx512vbmi"),
        ("AVX512_VBMI2", "avx512_vbmi2"),
        ("AMX_TILE", "amx_tile"),
        ("sse4.2", "sse4_2"),
        ("bmi", "bmi1"),
        ("fma", "fma"),
    ],
)
def test_aliases_map_to_linux_names(alias, canon):
    assert isa.lookup(alias) == canon


def test_unknown_feature_lists_valid_names_and_suggests():
    with pytest.raises(ConfigError) as e:
        isa.canonical("avx2x", source="--features")
    msg = str(e.value)
    assert "--features" in msg and "'avx2x'" in msg and "avx512_vnni" in msg
    assert "did you mean 'avx2'" in msg
    assert "\n" not in msg


def test_closure_follows_chains():
    c = isa.closure(["avx2"])
    assert {"avx", "sse4_2", "sse4_1", "ssse3", "pni", "sse2", "sse"} <= c
    assert "fma" not in c and "avx512f" not in c
    assert {"avx2", "fma", "f16c"} <= isa.closure(["avx512f"])


def test_psabi_levels():
    v2 = isa.level_features(2)
    assert {"pni", "ssse3", "sse4_1", "sse4_2", "popcnt", "cx16", "lahf_lm"} <= v2
    assert "avx" not in v2
    assert isa.level_features(3) - v2 >= {
        "avx",
        "avx2",
        "fma",
        "bmi1",
        "bmi2",
        "f16c",
        "abm",
        "movbe",
    }
    assert isa.level_features(4) - isa.level_features(3) == {
        "avx512f",
        "avx512bw",
        "avx512cd",
        "avx512dq",
        "avx512vl",
    }
    assert isa.psabi_level(isa.level_features(3)) == 3
    assert isa.psabi_level(isa.level_features(3) - {"movbe"}) == 2
    assert isa.psabi_level(set()) == 1
    assert [isa.parse_level(t) for t in ("x86-64-v3", "x86_64_v4", "v2", "haswell")] == [
        3,
        4,
        2,
        None,
    ]


def test_gcc_flags_and_version_gate():
    assert isa.gcc_flags(["avx2", "fma"], "9.4.0") == ["-mfma", "-mavx2"]
    assert "-mavx512fp16" in isa.gcc_flags(["avx512_fp16"], "12.2.0")
    with pytest.raises(ConfigError, match="-mavx512fp16 needs GCC >= 12.1"):
        isa.gcc_flags(["avx512_fp16"], "11.4.0")
    with pytest.raises(ConfigError, match="-mamx-tile needs GCC >= 11.1"):
        isa.gcc_flags(["amx_tile"], "10.2.0")


def test_every_tf_feature_from_issue_is_in_vocabulary():
    wanted = [
        "pni",
        "ssse3",
        "sse4_1",
        "sse4_2",
        "popcnt",
        "avx",
        "f16c",
        "fma",
        "avx2",
        "bmi1",
        "bmi2",
        "avx512f",
        "avx512cd",
        "avx512bw",
        "avx512dq",
        "avx512vl",
        "avx512_vnni",
        "avx512_bf16",
        "avx512_fp16",
        "avx_vnni",
        "amx_tile",
        "amx_int8",
        "amx_bf16",
    ]
    assert isa.tf_features() == wanted
