"""Property tests of the one wheel reader: generated hostile archives, judged by oracles nobody
here wrote (pypa's installer, a real extraction into a folder, packaging's strict METADATA
parser). Whatever the reader passes, an installer accepts and nothing lands outside the root.

Found cases each property covers (each fails on the reader before this rule was written):
symlink chains (`q -> ..`, `r -> q/../..`), a link stored with a non-Unix create_system,
latin-1 METADATA, an AVX-512 library under a name that is not *.so, a tfforge.json id that
climbs out of builds/.
"""

from __future__ import annotations

import tempfile
import unicodedata
from pathlib import Path

import hostile_wheels as hw
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tfforge import grammar
from tfforge.wheel import members as rules
from tfforge.wheel import read

# Hostile wheels repeat member names on purpose; zipfile warns on each one it writes.
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")

SETTINGS = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

PARTS = [
    "demo", "Demo", "q", "r", "a.py", "A.py", "lib.so", "..", ".", "", "C:", "x\\y", "\x00",
    "n\nl", "\x1b[2J", "\u202e", "\u00e9", "e\u0301", "sub",
]  # fmt: skip
TARGETS = ["..", "q/../..", "../..", "a.py", "/etc", "q", "demo/../..", "."]

names = st.lists(st.sampled_from(PARTS), min_size=1, max_size=4).map("/".join)
member = st.one_of(
    st.tuples(names, st.just("file"), st.binary(max_size=16), st.sampled_from([0, 3, 11])),
    st.tuples(
        names,
        st.just("symlink"),
        st.sampled_from(TARGETS).map(str.encode),
        st.sampled_from([0, 3, 11]),
    ),
    st.tuples(names, st.sampled_from(["fifo", "dir"]), st.just(b""), st.sampled_from([0, 3])),
)

CHAIN = [
    ("demo/q", "symlink", b"..", 3),
    ("demo/r", "symlink", b"q/../..", 3),
    ("demo/r/evil.pth", "file", b"import os\n", 3),
]
NON_UNIX_LINK = [("demo/up", "symlink", b"../..", 0), ("demo/up/evil.pth", "file", b"x", 0)]
CASE_TWINS = [("demo/a.py", "file", b"1", 3), ("demo/A.py", "file", b"2", 3)]
NORMAL_TWINS = [("demo/\u00e9.py", "file", b"1", 3), ("demo/e\u0301.py", "file", b"2", 3)]


@SETTINGS
@given(st.lists(member, max_size=6))
@example(CHAIN)
@example(NON_UNIX_LINK)
@example(CASE_TWINS)
@example(NORMAL_TWINS)
def test_what_the_reader_passes_installs_and_stays_inside_the_root(entries):
    with tempfile.TemporaryDirectory() as tmp:
        path = hw.build(Path(tmp), [("demo/__init__.py", "file", b"", 3), *entries])
        problems = read.structure_problems(path)
        if not problems:
            assert hw.installer_refuses(path) is None
            assert hw.escapes(path) is None
        # And the converse for what an installer refuses outright.
        if hw.installer_refuses(path) is not None:
            assert problems


@SETTINGS
@given(st.binary(max_size=40))
@example(b"caf\xe9")  # latin-1: pip refuses it
@example(b"\xff\xfe")
def test_metadata_the_reader_passes_is_strict_utf8_that_packaging_accepts(summary):
    data = hw.metadata(summary.replace(b"\n", b" ").replace(b"\r", b" "))
    with tempfile.TemporaryDirectory() as tmp:
        path = hw.build(Path(tmp), [("demo/__init__.py", "file", b"", 3)], meta=data)
        problems = read.structure_problems(path)
    if not problems:
        data.decode("utf-8")
        assert hw.metadata_refused(data) is None


ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 9
safe_names = st.text(
    alphabet=st.sampled_from("abcxyz_-.0123456789"), min_size=1, max_size=12
).filter(lambda n: rules.name_problem(f"demo/{n}") is None)


@SETTINGS
@given(st.dictionaries(safe_names, st.tuples(st.booleans(), st.binary(max_size=64)), max_size=6))
@example({"libavx512.bin": (True, b"")})  # machine code under a name that is not *.so
@example({"not_elf.so": (False, b"text")})
def test_every_member_that_is_elf_by_content_is_handed_over(contents):
    files = {f"demo/{n}": (ELF + body if elf else body) for n, (elf, body) in contents.items()}
    entries = [(n, "file", d, 3) for n, d in files.items()]
    handed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = hw.build(Path(tmp) / "w", entries)
        out = Path(tmp) / "x"
        out.mkdir()
        checked = read.check(path, extract_dir=out, on_library=lambda m, p: handed.append(m))
        assert not checked.problems
        found = read.elf_members(path)
    expected = sorted(n for n, d in files.items() if d[:4] == b"\x7fELF")
    assert sorted(handed) == expected
    assert sorted(found) == expected


ids = st.one_of(
    st.text(alphabet=st.sampled_from("0123456789abcdef.-/_\\x~ "), max_size=40),
    st.sampled_from(["../x", "..", "2.21.0-a-0123456789ab/../..", "/etc", "."]),
    st.integers(),
    st.none(),
)


@SETTINGS
@given(ids)
@example("../../outside")
def test_a_provenance_id_the_reader_keeps_names_a_folder_inside_builds(value):
    import json

    doc = json.dumps({"id": value, "spec": {}, "derived": {}}).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = hw.build(
            Path(tmp) / "w",
            [("demo/__init__.py", "file", b"", 3)],
            extra_info={read.PROVENANCE: doc},
        )
        facts = read.check(path).facts
        builds = Path(tmp) / "builds"
    if facts.provenance is not None:
        kept = facts.provenance.get("id")
        assert grammar.is_build_id(kept)
        assert (builds / kept).resolve().parent == builds.resolve()
    else:
        assert facts.provenance_error


@SETTINGS
@given(st.lists(names, max_size=8))
def test_duplicate_rule_matches_a_case_insensitive_normalising_file_system(listing):
    """Two names flagged as one file are exactly the names one such file system stores once."""
    problems = rules.duplicate_problems(listing)
    stored: dict[str, str] = {}
    clash = False
    for n in listing:
        key = unicodedata.normalize("NFC", n.rstrip("/")).casefold()
        if key in stored and not (n.endswith("/") and stored[key].endswith("/")):
            clash = True
        stored.setdefault(key, n)
    if clash:
        assert problems


def test_metadata_with_millions_of_header_lines_is_refused_unread(tmp_path):
    """5 million header lines (60 MB, a few hundred KB compressed): refused on the size the
    zip declares, so nothing close to the 2.8 GB the email parser would take is allocated."""
    huge = hw.metadata().replace(b"\n\n", b"\n") + b"X-A: b\n" * 5_000_000 + b"\n"
    path = hw.build(tmp_path, [("demo/__init__.py", "file", b"", 3)], meta=huge)
    problems = read.structure_problems(path)
    assert any("METADATA declares" in p and "not read" in p for p in problems)


def test_metadata_under_the_size_cap_with_too_many_header_lines_is_refused(tmp_path):
    many = hw.metadata().replace(b"\n\n", b"\n") + b"X: y\n" * 200_000 + b"\n"
    path = hw.build(tmp_path, [("demo/__init__.py", "file", b"", 3)], meta=many)
    assert any("header lines" in p for p in read.structure_problems(path))


@SETTINGS
@given(st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=0x7F))))
@example("a\x7fb")  # DEL: ASCII, not printable
@example("a\u200eb")  # a format character
def test_a_name_is_refused_for_its_characters_exactly_when_one_is_of_a_bad_category(name):
    """The printable-ASCII shortcut changes no answer: the character check flags a name iff
    one of its characters is in a category no file name should hold."""
    bad = next((c for c in name if unicodedata.category(c) in rules._BAD_CATEGORIES), None)
    problem = rules.name_problem(name) or ""
    if not name:
        assert problem == "empty name"
    elif bad is not None:
        assert problem == f"control or format character U+{ord(bad):04X} in the name"
    else:
        assert not problem.startswith("control or format character")
