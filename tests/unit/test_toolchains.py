"""Toolchain pins: agree with tf-facts.md, are complete and well-formed, and bad data is refused."""

from __future__ import annotations

import copy
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from conftest import ROOT

from tfforge.build import toolchains
from tfforge.build.inputs import check_image_ref
from tfforge.errors import ConfigError

# TensorFlow's "Tested build configurations" table for Linux CPU
# (https://www.tensorflow.org/install/source#cpu): Python range, Clang, Bazel per release.
FACTS = {
    "2.21.0": ("3.10", "3.13", "18.1.8", "7.4.1"),
    "2.20.0": ("3.9", "3.13", "18.1.8", "7.4.1"),
    "2.19.0": ("3.9", "3.12", "18.1.8", "6.5.0"),
    "2.18.0": ("3.9", "3.12", "17.0.6", "6.5.0"),
    "2.17.0": ("3.9", "3.12", "17.0.6", "6.5.0"),
    "2.16.1": ("3.9", "3.12", "17.0.6", "6.5.0"),
    "2.15.0": ("3.9", "3.11", "16.0.0", "6.1.0"),
    "2.14.0": ("3.9", "3.11", "16.0.0", "6.1.0"),
}
# Where the official wheels' own machine code (release_evidence.toml) names another clang than
# the install docs: the recipe follows the wheels and its evidence says what the docs say.
WHEELS_DISAGREE_WITH_DOCS = {"2.14.0": "16.0.6", "2.15.0": "17.0.2", "2.18.0": "18.1.8"}


def _raw() -> dict:
    return tomllib.loads(resources.files("tfforge.data").joinpath("toolchains.toml").read_text())


def test_every_fact_row_is_pinned_and_agrees():
    assert toolchains.known_versions() == sorted(FACTS, key=lambda v: tuple(map(int, v.split("."))))
    for ver, (py_lo, py_hi, clang, bazel) in FACTS.items():
        tc = toolchains.toolchain(ver)
        assert (tc.pythons[0], tc.pythons[-1]) == (py_lo, py_hi), ver
        official = WHEELS_DISAGREE_WITH_DOCS.get(ver, clang)
        assert (tc.official_compiler, tc.official_compiler_version) == ("clang", official), ver
        ev = tc.evidence["official_compiler"]
        assert ev.level == "release-artifact", ver
        assert (f"install docs say {clang}" in ev.source) == (ver in WHEELS_DISAGREE_WITH_DOCS)
        assert tc.bazel == bazel, ver
        assert tc.git_tag == f"v{ver}"


def test_pythons_are_contiguous_minor_versions():
    for ver in toolchains.known_versions():
        minors = [int(p.split(".")[1]) for p in toolchains.toolchain(ver).pythons]
        assert minors == list(range(minors[0], minors[-1] + 1)), ver


def test_wheel_target_and_hermetic_python_by_version():
    # 2.14/2.15: build_pip_package (release files); 2.16: pip_package/v2:wheel (nearby master,
    # TF's 2.16 CI); 2.17+: :wheel. 2.14-2.16 read TF_PYTHON_VERSION only; later ones get both.
    targets = {
        "2.14.0": "pip_package:build_pip_package",
        "2.15.0": "pip_package:build_pip_package",
        "2.16.1": "pip_package/v2:wheel",
    }
    for ver in toolchains.known_versions():
        tc = toolchains.toolchain(ver)
        assert tc.wheel_target == "//tensorflow/tools/" + targets.get(ver, "pip_package:wheel")
        if ver in targets:
            assert tc.python_env == ("TF_PYTHON_VERSION",)
        else:
            assert set(tc.python_env) == {"HERMETIC_PYTHON_VERSION", "TF_PYTHON_VERSION"}
        assert "patchelf" in tc.packages, ver
        assert set(tc.evidence) == set(toolchains.DECIDING)


def test_pins_are_complete_and_distinct():
    pins = toolchains.pins()
    commits = [toolchains.toolchain(v).git_commit for v in toolchains.known_versions()]
    assert len(set(commits)) == len(commits)
    assert all(re.fullmatch(r"[0-9a-f]{40}", c) for c in commits)
    for v in toolchains.known_versions():
        assert re.fullmatch(r"[0-9a-f]{64}", toolchains.toolchain(v).bazel_sha256)
    assert pins.bazelisk.version == "1.17.0"  # first bazelisk with BAZELISK_VERIFY_SHA256
    assert pins.bazelisk.url.endswith(f"/v{pins.bazelisk.version}/bazelisk-linux-amd64")
    assert re.fullmatch(r"[0-9a-f]{64}", pins.bazelisk.sha256)
    assert pins.git_url.startswith("https://")


def test_base_images_are_pinned_by_digest_and_cover_every_default_compiler():
    for image in toolchains.pins().base_images.values():
        assert check_image_ref(image.ref) is True
        assert re.search(r"@sha256:[0-9a-f]{64}$", image.ref)
        assert image.local == f"local/{image.suite}:base"
    for ver in toolchains.known_versions():
        tc = toolchains.toolchain(ver)
        assert toolchains.base_image_for("gcc", tc.gcc_default) is not None, ver
        assert toolchains.base_image_for("clang", tc.clang[0]) is not None, ver


def test_secondary_only_releases_are_the_ones_without_files():
    assert [v for v in toolchains.known_versions() if toolchains.toolchain(v).secondary_only] == [
        "2.17.0",
        "2.18.0",
        "2.19.0",
        "2.20.0",
    ]


def test_unknown_version_lists_the_known_ones():
    with pytest.raises(ConfigError) as exc:
        toolchains.toolchain("9.9")
    msg = str(exc.value)
    assert "'9.9' is not pinned" in msg
    assert all(v in msg for v in FACTS)
    assert "tfforge/data/toolchains.toml" in msg and "\n" not in msg


def test_unknown_patch_release_suggests_the_pinned_one():
    with pytest.raises(ConfigError, match=r"did you mean 2\.16\.1\?"):
        toolchains.toolchain("2.16.0")
    with pytest.raises(ConfigError) as exc:
        toolchains.toolchain("3.0.0")
    assert "did you mean" not in str(exc.value)


def test_python_check_names_supported_versions_and_a_fix():
    tc = toolchains.toolchain("2.19.0")
    toolchains.check_python(tc, "3.12")
    with pytest.raises(
        ConfigError,
        match=r"Python 3\.13 is not supported by TensorFlow 2\.19\.0 "
        r"\(supported: 3\.9, 3\.10, 3\.11, 3\.12\); "
        r"pick --python-version 3\.12",
    ):
        toolchains.check_python(tc, "3.13")
    with pytest.raises(ConfigError, match="pick --python-version 3.10"):
        toolchains.check_python(toolchains.toolchain("2.21.0"), "3.9")


def _mutate(path: tuple, value):
    raw = copy.deepcopy(_raw())
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    "path,value,needle",
    [
        (("tensorflow", "2.21.0", "bazel"), "7.9.9", "has no sha256"),
        (("tensorflow", "2.21.0", "wheel_target"), "pip", "wheel_target"),
        (("tensorflow", "2.21.0", "wheel_naming"), "pip", "wheel_naming must be one of"),
        (("tensorflow", "2.21.0", "local_cc_config"), "", "local_cc_config"),
        (("tensorflow", "2.21.0", "gcc"), [13, 12], "gcc must be [lowest, highest]"),
        (("tensorflow", "2.21.0", "gcc_default"), 14, "gcc_default"),
        (("tensorflow", "2.21.0", "gcc_args"), {"12": ["-O0; rm"]}, "gcc_args"),
        (
            ("tensorflow", "2.21.0", "evidence", "bazel"),
            {"level": "hearsay", "source": "x"},
            "evidence.bazel",
        ),
        (("base_images", "trixie", "ref"), "debian:trixie-slim", "pinned by digest"),
        (("tensorflow", "2.21.0", "git_tag"), "v2.20.0", "does not name version"),
        (("tensorflow", "2.21.0", "git_commit"), "a481b10", "git_commit"),
        (("tensorflow", "2.21.0", "pythons"), ["3.11; rm -rf /"], "pythons"),
        (("tensorflow", "2.21.0", "python_env"), ["PYTHON"], "python_env"),
        (("tensorflow", "2.21.0", "official_compiler"), KeyError, "official_compiler"),
        (("tensorflow", "2.21.0", "glibc"), "2.x", "glibc"),
        (("tensorflow", "2.21.0", "clang"), [17, 17], "the official clang 18.1.8's major"),
        (("tensorflow", "2.21.0", "clang_args"), ["--define=x=1"], "--copt=... and --linkopt="),
        (("tensorflow", "2.21.0", "clang_args"), ["--copt=-O2 -g"], "clang_args"),
        (
            ("tensorflow", "2.21.0", "evidence", "bazel"),
            {"level": "release-artifact", "source": "a wheel"},
            "the official wheels cannot show it",
        ),
        (("base_images", "trixie", "clang"), ["17"], "clang must map majors"),
        (("bazelisk", "sha256"), "0" * 63, "sha256"),
        (("bazelisk", "url"), "http://example.com/bazelisk", "url"),
        (("image", "apt"), ["gcc; curl evil"], "apt"),
        (("image", "uid"), 0, "uid"),
        (("schema",), 2, "schema"),
    ],
)
def test_broken_data_is_refused_when_loaded(path, value, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        toolchains.parse(_mutate(path, value))


def test_adding_a_version_is_one_table():
    raw = _raw()
    raw["tensorflow"]["2.22.0"] = {
        **raw["tensorflow"]["2.21.0"],
        "git_tag": "v2.22.0",
        "git_commit": "0" * 40,
    }
    pins = toolchains.parse(raw)
    assert list(pins.toolchains)[-1] == "2.22.0"
    assert pins.toolchains["2.22.0"].bazel == "7.4.1"


def test_data_file_is_where_the_errors_say():
    assert (ROOT / toolchains.DATA_FILE).is_file()
    assert Path(toolchains.__file__).parent == ROOT / "tfforge" / "build"
