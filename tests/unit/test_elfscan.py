"""The streaming ISA scan on small libraries compiled here with the real gcc.

Each library is built with the flags the issue names; the asserted verdicts are what those
flags and sources must produce (the instructions are checked against objdump-free facts: GCC
vector extensions and target attributes emit known instructions).
"""

from __future__ import annotations

from pathlib import Path

import elf_samples as samples
import pytest
from conftest import need_tool

from tfforge.elfscan import decode, names, rules
from tfforge.elfscan import scan as elfscan
from tfforge.elfscan.results import LibraryScan
from tfforge.errors import ConfigError


@pytest.fixture(scope="module")
def libs(tmp_path_factory) -> dict[str, Path]:
    need_tool("gcc")
    d = tmp_path_factory.mktemp("libs")
    k = samples.KERNELS
    return {
        "O2": samples.compile_so(d, "o2", k, ["-O2"]),
        "avx2fma": samples.compile_so(d, "avx2fma", k, ["-O2", "-mavx2", "-mfma"]),
        "v3": samples.compile_so(d, "v3", k, ["-O2", "-march=x86-64-v3"]),
        "skx": samples.compile_so(d, "skx", k, ["-O2", "-march=skylake-avx512"]),
        "guarded": samples.compile_so(d, "guarded", samples.GUARDED, ["-O2"]),
        "pointer": samples.compile_so(d, "pointer", samples.POINTER, ["-O2"]),
        "named": samples.compile_so(d, "named", samples.NAMED, ["-O2"]),
        "ctor": samples.compile_so(d, "ctor", samples.CONSTRUCTOR, ["-O2"]),
        "many": samples.compile_so(d, "many", samples.many_functions(), ["-O2", "-mavx2"]),
        "own_flag": samples.strip(samples.compile_so(d, "own_flag", samples.OWN_FLAG, ["-O2"])),
        "table": samples.strip(samples.compile_so(d, "table", samples.TABLE, ["-O2"])),
        "asm": samples.strip(samples.compile_so(d, "asm", samples.ASM, ["-O2"])),
        "table_read": samples.strip(
            samples.compile_so(d, "table_read", samples.TABLE_READ, ["-O2"])
        ),
        "extension": samples.compile_so(d, "extension", samples.EXTENSION, ["-O2", "-mavx2"]),
        "v3note": samples.compile_so(
            d, "v3note", k, ["-O2", "-march=x86-64-v3", "-Wl,-z,x86-64-v3"]
        ),
        "v2note": samples.compile_so(
            d, "v2note", k, ["-O2", "-mavx2", "-mfma", "-Wl,-z,x86-64-v2"]
        ),
        "asm_jumps": samples.compile_so(d, "asm_jumps", samples.ASM_JUMPS, ["-O2"]),
        "wrapper": samples.strip(
            samples.compile_so(d, "wrapper", samples.POINTER_WRAPPER, ["-O2"])
        ),
        "unreached": samples.compile_so(d, "unreached", samples.UNREACHED, ["-O2"]),
        "versioned": samples.compile_so(d, "versioned", samples.VERSIONED_WORD, ["-O2"]),
    }


@pytest.fixture(scope="module")
def scans(libs) -> dict[str, LibraryScan]:
    return {name: elfscan.scan_library(path) for name, path in libs.items()}


def test_plain_O2_requires_nothing_and_tzcnt_is_not_a_requirement(scans):
    s = scans["O2"]
    assert s.baseline == frozenset() and s.dispatched == frozenset()
    # __builtin_ctz compiles to tzcnt (rep bsf) even without -mbmi: seen, ignored.
    assert dict(s.ignored).get("tzcnt", 0) >= 1
    assert "bmi1" not in s.baseline | s.dispatched
    assert 0 < s.decoded_bytes <= s.code_bytes and s.functions >= 7


def test_avx2_fma_build(scans):
    s = scans["avx2fma"]
    assert {"avx", "avx2", "fma"} <= s.baseline
    assert not ({"bmi2", "avx512f", "abm"} & s.baseline)  # -mavx2 -mfma only
    avx2 = s.feature("avx2")
    assert avx2.cls == "unguarded" and avx2.ordinary >= 1 and "add8" in avx2.examples
    assert "ordinary" in avx2.reason and avx2.mnemonics[0][0] == "vpaddd"
    assert "axpy8" in s.feature("fma").examples


def test_x86_64_v3_adds_bmi2_and_lzcnt(scans):
    s = scans["v3"]
    assert {"avx", "avx2", "fma", "bmi2", "abm"} <= s.baseline
    assert "shifts" in s.feature("bmi2").examples and "lz" in s.feature("abm").examples
    assert "avx512f" not in s.baseline


def test_skylake_avx512_uses_evex_in_ordinary_code(scans):
    s = scans["skx"]
    assert {"avx512f", "avx2", "fma", "bmi2"} <= s.baseline
    ev = s.feature("avx512f")
    assert ev.cls == "unguarded" and "u2d" in ev.examples
    assert any(m == "vcvtusi2sd" for m, _ in ev.mnemonics)


def test_avx512_behind_builtin_cpu_supports_is_dispatched(scans):
    s = scans["guarded"]
    assert "avx512f" in s.dispatched and "avx512f" not in s.baseline
    assert s.baseline == frozenset()
    ev = s.feature("avx512f")
    assert ev.guarded == 1 and ev.ordinary == 0 and ev.named == 0
    assert ev.examples == ("add_wide",) and "CPU-check" in ev.reason
    assert s.cpu_checks >= 1
    # cpuid probing (xgetbv in libgcc's __cpu_indicator_init) is not a requirement either
    assert "xsave" not in s.baseline


def test_pointer_dispatch_after_cpu_check_is_dispatched(scans):
    # sum_fast is only referenced by a LEA inside pick(), which reads __cpu_model.
    s = scans["pointer"]
    assert "avx2" in s.dispatched and not s.baseline
    assert s.feature("avx2").examples == ("sum_fast",)


def test_dispatch_named_and_multiversioned_functions(scans):
    s = scans["named"]
    assert "avx2" in s.dispatched and "avx2" not in s.baseline
    assert s.feature("avx2").named >= 1
    assert any("(?i:" in label for label, _ in s.pattern_hits)


def test_stripped_library_with_its_own_cpuid_flag(scans):
    # No symbols: the flag is found as what the cpuid-executing constructor stores.
    s = scans["own_flag"]
    assert s.symbols != ".symtab"
    assert "avx2" in s.dispatched and not s.baseline
    assert s.feature("avx2").guarded == 1


def test_dispatch_table_chosen_after_a_cpu_check(scans):
    # The AVX2 kernels are only pointers in a const table whose address init_ops() (which
    # reads __cpu_model) takes: not unknown callers.
    s = scans["table"]
    assert "avx2" in s.dispatched and not s.baseline
    assert s.feature("avx2").guarded == 2


def test_table_read_by_ordinary_code_is_not_guarded(scans):
    s = scans["table_read"]
    assert "avx2" in s.baseline


def test_unlabelled_assembly_and_data_in_text(scans):
    s = scans["asm"]
    # asm_avx_always is called directly by run(): required. asm_avx2_kernel's address is
    # taken only by pick(), a CPU check: dispatched (R5). The table decodes as 3DNow! femms:
    # data, never a feature.
    assert s.baseline == frozenset({"avx"}) and not s.required
    assert "avx2" in s.dispatched and s.feature("avx2").unlabelled == 1
    assert "R5" in s.feature("avx2").reason
    assert dict(s.ignored).get("femms", 0) >= 1
    assert not any(f.name.startswith("iced:D3NOW") for f in s.features)


def test_extension_module_method_table_is_ordinary_code(scans):
    # PyInit_* is no CPU check: what its table points to, and an exported helper, are
    # ordinary, however the RTLD_LOCAL rule narrows who may call the module's exports.
    s = scans["extension"]
    assert "avx2" in s.baseline
    assert s.feature("avx2").ordinary == 3


def test_isa_level_note_is_read_and_checked(scans):
    from tfforge.verify.wheelcheck import isa_note_check

    assert scans["v3note"].isa_needed == "x86-64-v3"
    assert scans["v2note"].isa_needed == "x86-64-v2"
    assert scans["O2"].isa_needed is None
    assert isa_note_check([scans["v3note"]]).status == "pass"
    bad = isa_note_check([scans["v2note"]])
    assert bad.status == "fail" and "avx2" in bad.summary and "x86-64-v3" in bad.summary
    assert isa_note_check([scans["O2"]]).status == "skip"


def test_code_run_by_a_constructor_is_load_time_baseline(scans):
    s = scans["ctor"]
    ev = s.feature("avx2")
    assert ev.cls == "required" and ev.load_time == 1 and "runs at load" in ev.reason
    assert s.roots >= 1 and s.load_reachable >= 2


def test_split_scan_equals_whole_scan(libs, tmp_path):
    path = libs["many"]
    whole = elfscan.scan_library(path, readable=False)
    bounds = decode.split_points(path, 3)
    assert len(bounds) == 3
    # parts as verify's worker processes hand them over: .npz files
    parts = [
        elfscan.stream_part(path, lo, hi, out=tmp_path / f"p{i}.npz")
        for i, (lo, hi) in enumerate(bounds)
    ]
    split = elfscan.finish(path, parts, readable=False)
    # function bodies only: the plain pass also decodes the alignment padding between them
    assert whole.decoded_bytes == split.decoded_bytes
    assert 0.7 * whole.code_bytes < whole.decoded_bytes <= whole.code_bytes
    assert whole.features == split.features and whole.baseline == {"avx2"}
    assert whole.feature("avx2").ordinary == 300


def test_scan_round_trips_through_json(scans):
    s = scans["skx"]
    assert LibraryScan.from_dict(s.to_dict()) == s


def test_not_an_elf_file_is_bad_input(tmp_path):
    bad = tmp_path / "x.so"
    bad.write_bytes(b"not an elf at all")
    with pytest.raises(ConfigError, match="not an ELF file"):
        elfscan.scan_library(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        elfscan.scan_library(tmp_path / "missing.so")


def test_truncated_elf_is_bad_input(libs, tmp_path):
    cut = tmp_path / "cut.so"
    cut.write_bytes(libs["O2"].read_bytes()[:200])
    with pytest.raises(ConfigError):
        elfscan.scan_library(cut)


def test_code_table_drops_non_requirements():
    import iced_x86

    t = rules.code_table()
    C = iced_x86.Code
    for code in (C.TZCNT_R32_RM32, C.ENDBR64, C.PREFETCHW_M8, C.NOP_RM32, C.XGETBV):
        assert t.features[code] == (), t.mnemonic[code]
    assert t.features[C.VEX_VFMADD231PS_YMM_YMM_YMMM256] == ("fma",)
    assert t.features[C.LZCNT_R32_RM32] == ("abm",)  # unlike tzcnt, lzcnt != bsr
    assert t.features[C.ADDPS_XMM_XMMM128] == ()  # SSE: every x86-64 CPU


@pytest.mark.parametrize(
    "symbol,named",
    [
        ("_ZN3ynn22min_max_bf16_4x16_avx2Emmm", True),  # mangled ISA suffix
        ("xnn_f32_gemm_minmax_ukernel_1x16__fma3_broadcast", True),
        ("_ZN3hwy6N_AVX36detail3FooEv", True),  # Highway target namespace
        ("_ZN3ruy18Kernel8bitAvx2ImplERKNS_16KernelParams8bitILi8ELi8EEE", True),
        ("sum.avx2.0", True),  # GCC target_clones
        ("ChaCha20_8x", True),  # allow-listed assembly
        ("_ZSt3fmaddd", False),  # std::fma is not a kernel
        (
            "_ZN10tensorflow6tensor8internal21CompressRepeatedFieldIN5Eigen4halfEEEbfRKNS_11TensorShapeEPNS_11TensorProtoE",
            False,
        ),
        ("_ZN8gemmlowp24SSE4_64_Kernel12x4Depth23RunEv", False),  # compile-time SSE4 kernel
        ("xnn_qu8_dwconv_minmax_fp32_ukernel_25p16c__xop_mul32", True),  # XNNPACK XOP (AMD)
        ("xnn_f32_gemm_minmax_ukernel_4x8__fma4", True),
        ("MlasGemmFloatKernelAvx512F", True),  # onnxruntime MLAS
        ("dgemm_kernel_HASWELL", True),  # OpenBLAS DYNAMIC_ARCH
        ("_ZN4dnnl4impl3cpu3x6417jit_avx512_core_x", True),  # oneDNN ISA-named code
        ("boxop_helper", False),  # no separator before xop
        ("HASWELL_notes", False),
        ("xnn_qd8_f16_qc4w_gemm_minmax_ukernel_8x8c8__avx256skx_madd_prfm", True),
        ("_ZN2np10qsort_simd15ArgQSort_X86_V4IjEEvPT_Pll", True),  # numpy's per-target name
        ("simsimd_dot_f32_skylake", True),  # microarchitecture suffix
        ("simsimd_dot_u8_ice", True),
        ("get_device_slice", False),
        ("HUF_decompress4X2_usingDTable_internal_fast.constprop.0", True),  # GCC clone
        ("ring_core_0_17_14__vpaes_encrypt", True),  # versioned crate prefix
        ("ring_core_0_17_14__x25519_ge_frombytes_vartime", False),
    ],
)
def test_dispatch_name_patterns(symbol, named):
    assert (names.Matcher("libx.so").match(symbol) is not None) == named


def test_assembly_that_jumps_to_its_variants_is_dispatched(scans):
    # dispatch_sum reads the word the cpuid constructor filled and jumps (jnz) into wide_sum;
    # wide_sum and wide_tail jump to each other: a cycle entered only after the check.
    s = scans["asm_jumps"]
    assert "avx2" in s.dispatched and "avx2" not in s.baseline
    assert s.feature("avx2").guarded == 2


def test_function_pointer_to_a_featureless_wrapper(scans):
    # pick() takes the wrapper's address after __builtin_cpu_supports; the wrapper has no AVX2
    # itself and is the kernel's only caller (stripped: no names to go by).
    s = scans["wrapper"]
    assert "avx2" in s.dispatched and not s.baseline


def test_code_nothing_refers_to_never_runs(scans):
    s = scans["unreached"]
    assert "avx512f" in s.dispatched and not s.baseline
    assert "R6" in s.feature("avx512f").reason


def test_capability_word_under_a_versioned_prefix_through_its_got_entry(scans):
    s = scans["versioned"]
    assert "avx2" in s.dispatched and not s.baseline
    assert s.feature("avx2").guarded == 1
