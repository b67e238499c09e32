"""tfforge.wheel.builtwith: which compiler, linker and libstdc++ built a library, read from real
gcc-built ELF files, checked against binutils' readelf (which nobody here wrote), on `.comment`
sections rewritten by objcopy, and on hostile bytes and text (hypothesis)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import elf_samples as samples
import pytest
from conftest import need_tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfforge.wheel import builtwith

CXX = r"""
#include <string>
#include <sstream>
std::string greet(int n) { std::ostringstream s; s << "tfforge " << n; return s.str(); }
"""
FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def libs(tmp_path_factory) -> dict[str, Path]:
    need_tool("gcc")
    need_tool("g++")
    need_tool("objcopy")
    d = tmp_path_factory.mktemp("bw")
    c = samples.compile_so(d, "k", samples.KERNELS, ["-O2"])
    src = d / "cxx.cc"
    src.write_text(CXX)
    cxx = d / "libcxx.so"
    run("g++", "-shared", "-fPIC", "-O2", "-o", str(cxx), str(src))
    gold = d / "libgold.so"
    run("gcc", "-shared", "-fPIC", "-fuse-ld=gold", "-o", str(gold), str(d / "k.c"))
    # the .comment of a clang build linked by LLD against a devtoolset GCC's objects: the
    # lines of TensorFlow 2.16.1's official wheel, written into a real library by objcopy
    lines = [
        "GCC: (Ubuntu/Linaro 4.7.3-1ubuntu1) 4.7.3",
        "GCC: (GNU) 9.3.1 20200408",
        "Ubuntu clang version 17.0.6 (++20231208085846+6009708b4367-1~exp1~20231208085949.74)",
        "Linker: Ubuntu LLD 17.0.6",
    ]
    blob = d / "comment.bin"
    blob.write_bytes(b"".join(line.encode() + b"\0" for line in lines))
    clang = d / "libclang.so"
    run(
        "objcopy",
        "--remove-section=.comment",
        f"--add-section=.comment={blob}",
        "--set-section-flags=.comment=readonly,contents",
        str(cxx),
        str(clang),
    )
    stripped = d / "libstripped.so"
    run("objcopy", "--remove-section=.comment", str(c), str(stripped))
    return {"c": c, "cxx": cxx, "gold": gold, "clang": clang, "stripped": stripped}


def readelf_comments(path: Path) -> set[str]:
    out = run("readelf", "-p", ".comment", str(path))
    return {m.strip() for m in re.findall(r"^\s*\[\s*[0-9a-f]+\]\s+(.*)$", out, re.M)}


def readelf_highest(path: Path, prefix: str) -> str:
    names = re.findall(rf"Name: {prefix}_([0-9.]+)\b", run("readelf", "-V", str(path)))
    return max(names, key=builtwith.version_key, default="")


# ---- real libraries, against readelf --------------------------------------------------------
def test_a_gcc_library_names_this_machines_gcc(libs):
    host_gcc = run("gcc", "-dumpfullversion").strip()
    got = builtwith.read_file(libs["c"])
    assert set(got.comments) == readelf_comments(libs["c"])
    assert got.compiler is not None
    assert (got.compiler.name, got.compiler.version) == ("gcc", host_gcc)
    assert got.glibc == readelf_highest(libs["c"], "GLIBC")
    assert not got.needs_libstdcxx and got.glibcxx == ""
    assert got.linker is None  # GNU ld leaves no mark


def test_a_cxx_library_needs_libstdcxx_at_the_level_readelf_shows(libs):
    got = builtwith.read_file(libs["cxx"])
    assert got.needs_libstdcxx
    assert "libstdc++.so.6" in got.needed
    assert got.glibcxx == readelf_highest(libs["cxx"], "GLIBCXX") != ""


def test_gold_is_named_by_its_note(libs):
    got = builtwith.read_file(libs["gold"])
    assert got.linker is not None and (got.linker.name, got.linker.version) == ("gold", "1.16")


def test_a_clang_build_is_told_from_the_gcc_objects_it_linked(libs):
    got = builtwith.read_file(libs["clang"])
    assert got.compiler is not None and got.compiler.label == "clang 17.0.6 (Ubuntu)"
    assert got.compiler.origin == "distribution"
    assert got.linker is not None and got.linker.label == "LLD 17.0.6 (Ubuntu)"
    assert [i.label for i in got.gcc_objects] == ["GCC 9.3.1 (GNU)", "GCC 4.7.3 (Ubuntu/Linaro)"]
    # what g++ linked stays: the libstdc++ need is the library's own
    assert got.glibcxx == readelf_highest(libs["clang"], "GLIBCXX")


def test_wheel_reads_every_elf_member_whatever_its_name(libs, tmp_path):
    whl = samples.make_wheel(
        tmp_path,
        files={
            "demo/__init__.py": b"",
            "demo/_core.so": libs["clang"].read_bytes(),
            "demo/data/blob.bin": libs["c"].read_bytes(),  # an ELF under a data name
            "demo/libplain.so": b"not an ELF at all, only named like one" * 4,
            "demo/libstripped.so": libs["stripped"].read_bytes(),
        },
    )
    built = builtwith.read_wheel(whl)
    assert sorted(m.member for m in built.members) == [
        "demo/_core.so",
        "demo/data/blob.bin",
        "demo/libstripped.so",
    ]
    assert [m.member for m in built.silent] == ["demo/libstripped.so"]
    # one clang member, one gcc member: the tie goes to the newer version, never to order
    assert {i.name for i in built.compilers} == {"clang", "gcc"}
    assert built.glibcxx == readelf_highest(libs["clang"], "GLIBCXX")
    assert built.summary().startswith(built.compiler.label if built.compiler else "")
    assert "glibc " in built.summary()


def test_libstdcxx_table_agrees_with_this_machines_gcc():
    """The table's row for the newest GLIBCXX_ this machine's libstdc++ defines is a GCC no newer
    than the installed one, and the next row (if any) a newer one."""
    need_tool("gcc")
    host = builtwith.version_key(run("gcc", "-dumpfullversion").strip())
    lib = run("g++", "-print-file-name=libstdc++.so.6").strip()
    defined = re.findall(r"\bGLIBCXX_(3\.4\.\d+)\b", run("readelf", "-V", lib))
    newest = max(defined, key=builtwith.version_key)
    table = builtwith._glibcxx_table()
    rows = [v for v, _ in table]
    assert newest in rows, f"{newest} is missing from tfforge/data/libstdcxx.toml"
    first = builtwith.version_key(builtwith.glibcxx_gcc(newest))
    assert first[:2] <= host[:2]
    later = rows[rows.index(newest) + 1 :]
    if later:
        assert builtwith.version_key(builtwith.glibcxx_gcc(later[0]))[:2] > host[:2]


def test_glibcxx_outside_the_table():
    assert builtwith.glibcxx_gcc("3.4.9").startswith("<")
    assert builtwith.glibcxx_gcc("3.4.99").startswith(">")
    assert builtwith.glibcxx_gcc("3.4.19") == "4.8.3"


# ---- .comment lines ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line,kind,name,version,vendor",
    [
        ("clang version 18.1.8", "compiler", "clang", "18.1.8", ""),
        ("Debian clang version 16.0.6 (15~deb12u1)", "compiler", "clang", "16.0.6", "Debian"),
        ("GCC: (Debian 12.2.0-14+deb12u1) 12.2.0", "compiler", "gcc", "12.2.0", "Debian"),
        ("GCC: (GNU) 9.3.1 20200408", "compiler", "gcc", "9.3.1", "GNU"),
        ("GCC: (GNU) 13", "compiler", "gcc", "13.0.0", "GNU"),
        ("Linker: LLD 18.1.8", "linker", "lld", "18.1.8", ""),
        ("Linker: Debian LLD 16.0.6", "linker", "lld", "16.0.6", "Debian"),
        ("mold 2.30.0 (compatible with GNU ld)", "linker", "mold", "2.30.0", ""),
        ("rustc version 1.75.0 (82e1608df 2023-12-21)", "compiler", "rustc", "1.75.0", ""),
        ("Intel(R) oneAPI DPC++/C++ Compiler 2024.0.0", "other", "", "", ""),
    ],
)
def test_comment_lines(line, kind, name, version, vendor):
    got = builtwith.parse_comment_line(line)
    assert (got.kind, got.name, got.version, got.vendor) == (kind, name, version, vendor)


@FUZZ
@given(st.text(max_size=300))
def test_any_comment_text_parses(text):
    got = builtwith.parse_comment_line(text)
    assert got.text == text and got.kind in ("compiler", "linker", "other")
    assert len(got.vendor) <= 40


@FUZZ
@given(
    st.text(alphabet=st.characters(whitelist_categories=("L", "N")), max_size=12),
    st.tuples(*[st.integers(0, 99)] * 3),
)
def test_clang_idents_round_trip(vendor, parts):
    version = ".".join(map(str, parts))
    got = builtwith.parse_comment_line(f"{vendor} clang version {version} (extra)".strip())
    assert (got.name, got.version, got.vendor) == ("clang", version, vendor.strip()[:40])
    assert got.origin == ("distribution" if vendor.strip() else "unbranded")


@FUZZ
@given(st.binary(max_size=2000))
def test_any_comment_bytes_split(data):
    lines = builtwith.comment_lines(data)
    assert all(line and "\0" not in line and len(line) <= 512 for line in lines)
    assert len(set(lines)) == len(lines)


# ---- hostile ELF bytes ------------------------------------------------------------------------
@FUZZ
@given(st.data())
def test_damaged_elf_files_become_an_error_not_a_crash(libs, tmp_path, data):
    raw = bytearray(libs["cxx"].read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        # the ELF header and the section headers at the end: where damage misleads a reader
        at = data.draw(st.one_of(st.integers(0, 63), st.integers(len(raw) - 2048, len(raw) - 1)))
        raw[at] = data.draw(st.integers(0, 255))
    path = tmp_path / "damaged.so"
    path.write_bytes(bytes(raw))
    with open(path, "rb") as fh:
        got = builtwith.read_elf(fh, "damaged.so")
    assert isinstance(got, builtwith.ElfBuild)
    assert got.error == "" or got.error.startswith("unreadable ELF (")


def test_a_truncated_member_is_reported(libs, tmp_path):
    path = tmp_path / "cut.so"
    path.write_bytes(libs["cxx"].read_bytes()[:200])
    with open(path, "rb") as fh:
        got = builtwith.read_elf(fh, "cut.so")
    assert got.error.startswith("unreadable ELF (")
