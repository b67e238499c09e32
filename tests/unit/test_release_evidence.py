"""Release evidence: the data file read from the releases' own wheels, its one text form, the
recipes reconciled with it, and the reader's parts on synthetic and hostile input.

The conformance test here fails when a recipe's official compiler, Pythons, glibc baseline,
clang major or commit differs from what the release's official wheels show, or when those facts
lack release-artifact evidence naming the wheel (as every recipe did before the evidence
existed: 2.14's official clang was recorded as 16.0.0, its wheels say 16.0.6)."""

from __future__ import annotations

import dataclasses
import json
import tomllib

import elf_samples as samples
import pytest
from conftest import ROOT, need_tool
from hypothesis import given, settings
from hypothesis import strategies as st

from tfforge.build import evidence, toolchains
from tfforge.errors import ConfigError, TfforgeError
from tfforge.wheel import builtwith, official

DATA = ROOT / "tfforge" / "data" / "release_evidence.toml"
FUZZ = settings(max_examples=200, derandomize=True, deadline=None)


# ---- the data file -------------------------------------------------------------------------------
def test_the_data_file_is_its_own_text_form_byte_for_byte():
    text = DATA.read_text(encoding="utf-8")
    parsed = evidence.parse(tomllib.loads(text))
    assert evidence.to_toml({v: evidence.as_doc(e) for v, e in parsed.items()}) == text


def test_every_pinned_release_has_evidence_and_nothing_else_does():
    assert sorted(evidence.load(), key=toolchains.known_versions().index) == (
        toolchains.known_versions()
    )


@pytest.mark.parametrize("version", toolchains.known_versions())
def test_recipe_agrees_with_its_release_wheels(version):
    tc, ev = toolchains.toolchain(version), evidence.load()[version]
    assert evidence.disagreements(tc, ev) == []
    # the wheel read is one of the index files, named with the same sha256
    assert (ev.wheel.name, ev.wheel.sha256) in ev.files
    assert ev.wheel.version == version
    # its libraries need no newer glibc than the tags promise
    key = builtwith.version_key
    assert ev.wheel.glibc_needed and key(ev.wheel.glibc_needed) <= key(ev.glibc)


def _mutations(tc: toolchains.Toolchain) -> dict[str, toolchains.Toolchain]:
    weak = toolchains.Evidence("secondary", "TF's install docs")
    return {
        "official compiler": dataclasses.replace(tc, official_compiler_version="16.0.0"),
        "pythons": dataclasses.replace(tc, pythons=tc.pythons[:-1]),
        "glibc baseline": dataclasses.replace(tc, glibc="2.28"),
        "clang majors": dataclasses.replace(tc, clang=(tc.clang[0] - 1, tc.clang[1])),
        "git_commit": dataclasses.replace(tc, git_commit="0" * 40),
        "evidence.pythons": dataclasses.replace(tc, evidence={**tc.evidence, "pythons": weak}),
    }


@pytest.mark.parametrize("version", toolchains.known_versions())
def test_each_wrong_fact_is_named(version):
    ev = evidence.load()[version]
    for fact, wrong in _mutations(toolchains.toolchain(version)).items():
        found = evidence.disagreements(wrong, ev)
        assert len(found) == 1 and found[0].startswith(fact), (fact, found)
        assert "tfforge/data/toolchains.toml" in found[0]


def test_the_route_says_what_cannot_be_reproduced():
    hermetic = evidence.official_route(
        toolchains.toolchain("2.21.0"),
        "clang",
        "18.1.8",
        toolchains.image_named("local/trixie:base"),
    )
    assert hermetic["official"].startswith("unbranded clang 18.1.8 + LLD 18.1.8; glibc 2.27")
    assert hermetic["tfforge"] == "Debian trixie clang-18 18.1.8 + lld-18"
    assert any("hermetic LLVM 18.1.8" in d and "clang_local" in d for d in hermetic["differences"])
    older = evidence.official_route(toolchains.toolchain("2.15.0"), "clang", "17.0.6", None)
    assert any("17.0.6, not the release's 17.0.2" in d for d in older["differences"])
    assert any(
        "GCC 9.3.1 (GNU) objects and a glibc 2.17 sysroot" in d for d in older["differences"]
    )
    gcc = evidence.official_route(toolchains.toolchain("2.14.0"), "gcc", "12.2.0", None)
    assert gcc["differences"][0].startswith("the release was built with clang 16.0.6")
    assert not gcc["exact"]


# ---- the text form on any input ------------------------------------------------------------------
@FUZZ
@given(st.text())
def test_any_text_survives_a_toml_string(text):
    assert tomllib.loads(f"x = {evidence.toml_string(text)}")["x"] == text


def _doc(draw_text: str, n: int) -> dict:
    wheel = evidence.as_doc(evidence.load()["2.21.0"])
    wheel["wheel"]["comments"] = [draw_text] * n
    wheel["wheel"]["compiler_vendor"] = draw_text
    wheel["wheel"]["requires_numpy"] = [draw_text]
    return wheel


@FUZZ
@given(st.text(max_size=200), st.integers(0, 6))
def test_to_toml_round_trips_any_facts(text, n):
    doc = {"2.21.0": _doc(text, n)}
    written = evidence.to_toml(doc)
    parsed = evidence.parse(tomllib.loads(written))
    assert evidence.as_doc(parsed["2.21.0"]) == doc["2.21.0"]
    assert evidence.to_toml({"2.21.0": evidence.as_doc(parsed["2.21.0"])}) == written


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda r: r.pop("schema"), "schema = 1"),
        (lambda r: r["release"]["2.21.0"].update(pythons=["3.x"]), "pythons"),
        (lambda r: r["release"]["2.21.0"].update(glibc="two"), "glibc"),
        (lambda r: r["release"]["2.21.0"]["files"][0].update(sha256="00"), "files"),
        (lambda r: r["release"]["2.21.0"]["wheel"].pop("git_version"), "[wheel] needs"),
        (lambda r: r["release"]["2.21.0"]["wheel"].update(elf_members="77"), "elf_members"),
        (lambda r: r["release"]["2.21.0"]["wheel"].update(compiler="icc"), "compiler"),
        (lambda r: r["release"].update({"2.21": {}}), "X.Y.Z"),
    ],
)
def test_a_broken_data_file_is_refused_naming_it(edit, message):
    raw = tomllib.loads(DATA.read_text(encoding="utf-8"))
    edit(raw)
    with pytest.raises(ValueError) as exc:
        evidence.parse(raw)
    assert str(exc.value).startswith("tfforge/data/release_evidence.toml: ")
    assert message in str(exc.value)


# ---- the reader's parts --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "platform,glibc",
    [
        ("manylinux_2_27_x86_64", "2.27"),
        ("manylinux2014_x86_64", "2.17"),
        ("manylinux2010_x86_64", "2.12"),
        ("manylinux1_x86_64", "2.5"),
        ("linux_x86_64", ""),
        ("manylinux_2_17_aarch64", None),
        ("macosx_10_15_x86_64", None),
        ("win_amd64", None),
    ],
)
def test_glibc_of_a_platform_tag(platform, glibc):
    assert official.glibc_of(platform) == glibc


def _index(files: list[tuple[str, int, bool]]) -> list[official.IndexFile]:
    return [official.IndexFile(n, "a" * 64, size, yanked) for n, size, yanked in files]


def test_linux_wheels_and_the_project_choice():
    big, small = 200 << 20, 1 << 20
    cpu = _index(
        [
            (
                "tensorflow_cpu-2.99.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                big,
                False,
            ),
            (
                "tensorflow_cpu-2.99.0-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                big,
                False,
            ),
            ("tensorflow_cpu-2.99.0-cp312-cp312-manylinux_2_17_x86_64.whl", big, True),  # yanked
            ("tensorflow_cpu-2.99.0-cp311-cp311-macosx_10_15_x86_64.whl", big, False),
            ("tensorflow_cpu-2.99.0-cp311-cp311-win_amd64.whl", big, False),
            ("tensorflow_cpu-2.99.1-cp311-cp311-manylinux_2_17_x86_64.whl", big, False),
            ("tensorflow_cpu-2.99.0.tar.gz", small, False),
        ]
    )
    rows = official.linux_wheels(cpu, "2.99.0")
    assert [(py, glibc) for _, py, glibc in rows] == [("3.10", "2.17"), ("3.11", "2.17")]
    assert official.pick_project("2.99.0", {"tensorflow-cpu": cpu}) == "tensorflow-cpu"
    stub = _index([("tensorflow_cpu-2.99.0-cp311-cp311-manylinux_2_17_x86_64.whl", small, False)])
    full = _index([("tensorflow-2.99.0-cp311-cp311-manylinux_2_17_x86_64.whl", big, False)])
    lists = {"tensorflow-cpu": stub, "tensorflow": full}
    assert official.pick_project("2.99.0", lists) == "tensorflow"
    with pytest.raises(ConfigError, match="no Linux x86-64 CPU wheels of TensorFlow 3.0.0"):
        official.pick_project("3.0.0", lists)


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda kids: (
            st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_index_document_is_read_or_refused(doc):
    try:
        files = official.parse_index(json.dumps({"files": doc}).encode(), "test")
    except TfforgeError as exc:
        assert str(exc).startswith("test: ")
    else:
        assert all(isinstance(f, official.IndexFile) for f in files)


def test_index_bytes_that_are_not_json_are_refused():
    with pytest.raises(TfforgeError, match="not a PEP 691 file list"):
        official.parse_index(b"<html>", "https://pypi.org/simple/x/")


GIT = r"""
const char *tf_git_version(void) { return "v2.99.0-rc1-7-g0123456789a"; }
const char *tf_compiler_version(void) { return __VERSION__; }
"""


def test_a_wheels_facts_are_read_from_its_own_bytes(tmp_path):
    need_tool("gcc")
    lib = samples.compile_so(tmp_path / "lib", "session", GIT, ["-O2"])
    whl = samples.make_wheel(
        tmp_path,
        name="tensorflow_cpu",
        version="2.99.0",
        files={
            "tensorflow/python/client/_pywrap_tf_session.so": lib.read_bytes(),
            official.VERSION_H: b"#define TF_MAJOR_VERSION 2\n#define TF_MINOR_VERSION 99\n"
            b'#define TF_PATCH_VERSION 0\n#define TF_VERSION_SUFFIX ""\n',
        },
    )
    facts = official.read_wheel_facts(whl)
    assert facts["git_version"] == "v2.99.0-rc1-7-g0123456789a"
    assert facts["git_version_in"] == "tensorflow/python/client/_pywrap_tf_session.so"
    assert facts["version_h"] == "2.99.0" and facts["version"] == "2.99.0"
    assert facts["compiler"] == "gcc" and facts["linker"] == ""  # GNU ld: no mark
    assert facts["elf_members"] == 1


def test_the_tool_refuses_an_unpinned_release_in_one_line():
    import subprocess
    import sys

    before = DATA.read_bytes()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "release_evidence.py"), "--release", "9.9.9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --release '9.9.9' is not a pinned release; known: 2.14.0")
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""
    assert DATA.read_bytes() == before
