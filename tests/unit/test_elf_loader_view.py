"""What the loader reads of an ELF member, the scanners read too: version needs (.gnu.version_r)
by one bounded walk (at most one entry per 16 bytes of the section, whatever the counts and
`next` fields say; oracles: pyelftools on well-formed tables, the entry budget on hostile ones),
and the code the program headers map (a library without section headers, or an executable
section read from other bytes than the loader maps, is refused, never scanned as empty)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import elf_samples as samples
import pytest
from conftest import need_tool
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfforge.elfscan import scan as elfscan
from tfforge.errors import ConfigError
from tfforge.wheel import builtwith, symvers, verneed

SETTINGS = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)


def table(needs: list[tuple[str, list[str]]]) -> tuple[bytes, bytes]:
    """(section, string table) as a linker lays them out: each need followed by its aux
    entries, `next` 0 on the last of each chain."""
    strtab = bytearray(b"\0")

    def name(text: str) -> int:
        at = len(strtab)
        strtab.extend(text.encode() + b"\0")
        return at

    out = bytearray()
    for i, (lib, versions) in enumerate(needs):
        last = i == len(needs) - 1
        size = 16 * (1 + len(versions))
        out += struct.pack("<HHIII", 1, len(versions), name(lib), 16, 0 if last else size)
        for j, version in enumerate(versions):
            nxt = 0 if j == len(versions) - 1 else 16
            out += struct.pack("<IHHII", 0, 0, j + 2, name(version), nxt)
    return bytes(out), bytes(strtab)


def read_bytes(tmp: Path, section: bytes, strtab: bytes) -> list[tuple[str, tuple[str, ...]]]:
    path = tmp / "t.bin"
    path.write_bytes(section + strtab)
    with open(path, "rb") as f:
        return verneed.read(
            f.fileno(), (0, len(section)), (len(section), len(strtab)), len(section + strtab)
        )


@SETTINGS
@given(st.lists(st.tuples(names, st.lists(names, min_size=1, max_size=5)), max_size=6))
def test_a_linker_laid_table_reads_back_as_written(tmp_path, needs):
    section, strtab = table(needs)
    assert read_bytes(tmp_path, section, strtab) == [(lib, tuple(v)) for lib, v in needs]


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(0, 0xFFFF),  # vn_cnt
            st.sampled_from([0, 1, 16, 32, 0xFFFFFFF0, 0xFFFFFFFF]),  # vn_aux
            st.sampled_from([0, 16, 32, 48, 0xFFFFFFF0]),  # vn_next
            st.sampled_from([0, 16, 0xFFFFFFF0]),  # vna_next (in the same place)
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_counts_and_links_are_a_bounded_answer_or_one_value_error(tmp_path, entries):
    section = b"".join(
        struct.pack("<HHIII", 1, cnt, 0, aux, nxt) + struct.pack("<IHHII", 0, 0, 2, 0, aux_next)
        for cnt, aux, nxt, aux_next in entries
    )
    try:
        got = read_bytes(tmp_path, section, b"lib\0")
    except ValueError:
        return
    assert sum(1 + len(v) for _, v in got) <= len(section) // 16


def real_libraries() -> list[Path]:
    folder = Path("/usr/lib/x86_64-linux-gnu")
    wanted = ["libc.so.6", "libstdc++.so.6", "libm.so.6", "libz.so.1", "libssl.so.3"]
    return [folder / n for n in wanted if (folder / n).is_file()]


@pytest.mark.parametrize("lib", real_libraries(), ids=lambda p: p.name)
def test_real_libraries_read_as_pyelftools_reads_them(lib):
    with open(lib, "rb") as f:
        elf = ELFFile(f)
        sec = elf.get_section_by_name(".gnu.version_r")
        if sec is None:
            pytest.skip("no version needs")
        want = [
            (str(n.name), tuple(str(a.name) for a in auxes)) for n, auxes in sec.iter_versions()
        ]
        size = lib.stat().st_size
        assert builtwith.version_needs(f, elf, sec, size) == want


def lying_counts(data: bytes) -> bytes:
    """data with .gnu.version_r claiming 2**32-1 needs of 65535 versions each: the last
    entries (their `next` is 0) again and again for a walk that trusts the counts."""
    out = bytearray(data)
    elf = ELFFile(io.BytesIO(data))
    index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == ".gnu.version_r")
    sec = elf.get_section(index)
    header = elf["e_shoff"] + index * elf["e_shentsize"]
    off = sec["sh_offset"]
    struct.pack_into("<I", out, header + 44, 0xFFFFFFFF)  # sh_info
    struct.pack_into("<H", out, off + 2, 0xFFFF)  # vn_cnt
    struct.pack_into("<I", out, off + 12, 0)  # vn_next: the first need is the last
    return bytes(out)


def test_counts_that_lie_cost_no_more_than_the_table(tmp_path):
    need_tool("gcc")
    lib = samples.compile_so(tmp_path, "g", samples.GLIBC, ["-O2"])
    bad = tmp_path / "lying.so"
    bad.write_bytes(lying_counts(lib.read_bytes()))
    honest = builtwith.read_file(lib)
    # each reader answers (these walks never ended before) and the answer is the table's
    assert builtwith.read_file(bad).glibc == honest.glibc
    assert symvers.read_needs(bad, "m").versions == symvers.read_needs(lib, "m").versions
    assert elfscan.scan_library(bad).glibc == elfscan.scan_library(lib).glibc


# ---- code the loader maps that the scan would not read -----------------------------------


@pytest.fixture(scope="module")
def at_load(tmp_path_factory) -> Path:
    need_tool("gcc")
    folder = tmp_path_factory.mktemp("load")
    return samples.compile_so(folder, "c", AT_LOAD, ["-O2"])


AT_LOAD = r"""
__attribute__((constructor)) static void boom(void)
{ __asm__ volatile("vpxord %%zmm0, %%zmm0, %%zmm0" ::: "xmm0"); }
int PyInit_c(void) { return 0; }
"""


def test_a_library_without_section_headers_is_not_scanned_as_empty(tmp_path, at_load):
    """The loader maps code from the program headers; with the section headers gone the scan
    found no code and verify said every host runs it (a Haswell gets SIGILL at load)."""
    assert "avx512f" in elfscan.scan_library(at_load).required
    out = bytearray(at_load.read_bytes())
    struct.pack_into("<Q", out, 0x28, 0)  # e_shoff
    struct.pack_into("<HH", out, 0x3C, 0, 0)  # e_shnum, e_shstrndx
    bare = tmp_path / "bare.so"
    bare.write_bytes(bytes(out))
    with pytest.raises(ConfigError, match="no section header describes"):
        elfscan.scan_library(bare)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(delta=st.integers(-(1 << 14), 1 << 14).filter(bool))
def test_an_executable_section_is_read_where_the_loader_maps_it(tmp_path_factory, delta):
    need_tool("gcc")
    lib = samples.compile_so(tmp_path_factory.mktemp("m"), "c", AT_LOAD, ["-O2"])
    data = bytearray(lib.read_bytes())
    elf = ELFFile(io.BytesIO(bytes(data)))
    index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == ".text")
    header = elf["e_shoff"] + index * elf["e_shentsize"]
    offset = struct.unpack_from("<Q", data, header + 24)[0]
    struct.pack_into("<Q", data, header + 24, max(offset + delta, 0))
    lib.write_bytes(bytes(data))
    try:
        got = elfscan.scan_library(lib)
    except ConfigError as exc:
        assert "damaged ELF" in str(exc)
        return
    raise AssertionError(f".text read {delta} bytes away from its code and scanned: {got}")


LIES = ("not executable", "empty", "no file bytes")


@settings(max_examples=30, derandomize=True, deadline=None)
@given(data=st.data())
def test_section_headers_that_hide_code_do_not_hide_it_from_the_scan(
    at_load, tmp_path_factory, data
):
    """Section headers are the linker's description, the program headers are what the loader
    maps: whichever executable sections a crafted header hides (flag cleared, size 0, no file
    bytes), code entered there is still scanned, so the AVX-512 constructor stays required."""
    raw = bytearray(at_load.read_bytes())
    elf = ELFFile(io.BytesIO(bytes(raw)))
    execs = [
        i
        for i, s in enumerate(elf.iter_sections())
        if s["sh_flags"] & 0x4 and s["sh_type"] == "SHT_PROGBITS" and s["sh_size"]
    ]
    hidden = data.draw(st.lists(st.sampled_from(execs), min_size=1, unique=True))
    for index in hidden:
        header = elf["e_shoff"] + index * elf["e_shentsize"]
        lie = data.draw(st.sampled_from(LIES))
        if lie == "not executable":
            flags = struct.unpack_from("<Q", raw, header + 8)[0]
            struct.pack_into("<Q", raw, header + 8, flags & ~0x4)
        elif lie == "empty":
            struct.pack_into("<Q", raw, header + 32, 0)
        else:
            struct.pack_into("<I", raw, header + 4, 8)  # SHT_NOBITS
    lib = tmp_path_factory.mktemp("hide") / "c.so"
    lib.write_bytes(bytes(raw))
    try:
        got = elfscan.scan_library(lib)
    except ConfigError as exc:
        assert "damaged" in str(exc)
        return
    assert "avx512f" in got.required, (hidden, got.required, got.baseline)
