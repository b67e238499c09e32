"""Release evidence and "built with" on real wheels from PyPI that nobody here built.

- `tools/release_evidence.py --check` regenerates the data file's entries byte for byte from the
  official wheels CI already downloads for the verify corpus (tensorflow-cpu 2.16.1 and 2.21.0,
  pinned releases); all eight releases: benchmarks/bench_release_evidence.py (about 1.9 GB of
  wheels the first time, ~1 minute once cached).
- the built-with reader agrees, member by member, with binutils' readelf on every ELF member of
  the corpus wheels (TensorFlow 2.14.1 / 2.16.1 / 2.21.0, numpy, onnxruntime).
- `invoke verify` prints how a third-party wheel was built.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, invoke, need, need_tool

from tfforge.build import evidence
from tfforge.verify import builtwith as check
from tfforge.wheel import builtwith
from tfforge.wheel import fetch as pypi
from tfforge.wheel.read import check as read_wheel

CI_RELEASES = ("2.16.1", "2.21.0")  # pinned releases whose wheels the verify corpus fetches
CORPUS = (
    "tensorflow-cpu==2.14.1",
    "tensorflow-cpu==2.16.1",
    "tensorflow-cpu==2.21.0",
    "numpy==2.1.3",
    "onnxruntime==1.20.1",
)


def _fetch(pin: str) -> Path:
    try:
        return pypi.fetch(pin, python_version="3.11")
    except Exception as exc:
        need(False, f"cannot fetch {pin} from PyPI: {exc}")  # skips, or fails under CI
        raise


def test_check_regenerates_the_ci_releases_byte_for_byte():
    for version in CI_RELEASES:
        _fetch(f"tensorflow-cpu=={version}")  # the corpus's wheels, cached once
    argv = [sys.executable, str(ROOT / "tools" / "release_evidence.py"), "--check"]
    for version in CI_RELEASES:
        argv += ["--release", version]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    need("cannot read PyPI" not in proc.stderr, f"PyPI's index is not reachable: {proc.stderr}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "matches the official wheels of 2.16.1, 2.21.0" in proc.stderr


def test_check_fails_naming_the_release_when_the_file_is_stale(tmp_path):
    """The same --check on a copy of the tool whose data file says another compiler."""
    data = ROOT / "tfforge" / "data" / "release_evidence.toml"
    stale = data.read_text(encoding="utf-8").replace(
        'compiler_version = "18.1.8"\ncompiler_vendor = ""',
        'compiler_version = "18.1.3"\ncompiler_vendor = ""',
    )
    assert stale != data.read_text(encoding="utf-8")
    tool = tmp_path / "tools" / "release_evidence.py"
    tool.parent.mkdir()
    tool.write_text((ROOT / "tools" / "release_evidence.py").read_text())
    (tmp_path / "tfforge" / "data").mkdir(parents=True)
    (tmp_path / "tfforge" / "data" / "release_evidence.toml").write_text(stale, encoding="utf-8")
    # the copy imports tfforge from the checkout (sys.path) but reads and compares its own file
    _fetch("tensorflow-cpu==2.21.0")
    proc = subprocess.run(
        [sys.executable, str(tool), "--check", "--release", "2.21.0"],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    need("cannot read PyPI" not in proc.stderr, f"PyPI's index is not reachable: {proc.stderr}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert '-compiler_version = "18.1.3"' in proc.stderr
    assert '+compiler_version = "18.1.8"' in proc.stderr
    assert "out of date for 2.21.0" in proc.stderr


def readelf(path: Path) -> tuple[set[str], str]:
    comments = subprocess.run(
        ["readelf", "-p", ".comment", str(path)], capture_output=True, text=True
    ).stdout
    lines = {m.strip() for m in re.findall(r"^\s*\[\s*[0-9a-f]+\]\s+(.*)$", comments, re.M)}
    versions = subprocess.run(["readelf", "-V", str(path)], capture_output=True, text=True).stdout
    glibcxx = re.findall(r"Name: GLIBCXX_([0-9.]+)\b", versions)
    return lines, max(glibcxx, key=builtwith.version_key, default="")


@pytest.mark.parametrize("pin", CORPUS)
def test_builtwith_agrees_with_readelf_on_every_member(pin):
    need_tool("readelf")
    whl = _fetch(pin)
    oracle: dict[str, tuple[set[str], str]] = {}
    built = builtwith.read_wheel(whl, on_elf=lambda m, p: oracle.__setitem__(m, readelf(p)))
    assert built.members and not built.unreadable
    assert {m.member for m in built.members} == set(oracle)
    for m in built.members:
        lines, glibcxx = oracle[m.member]
        assert set(m.comments) == lines, m.member
        assert m.glibcxx == glibcxx, m.member
    print(f"\n{pin}: {len(built.members)} ELF members; built with {built.summary()}")


def test_the_official_wheels_tell_what_built_them():
    expect = {
        "tensorflow-cpu==2.14.1": "clang 16.0.6 (Ubuntu) + LLD 16.0.6 (Ubuntu); "
        "libstdc++ GLIBCXX_3.4.19",
        "tensorflow-cpu==2.21.0": "clang 18.1.8 + LLD 18.1.8; libstdc++ GLIBCXX_3.4.22",
    }
    for pin, said in expect.items():
        whl = _fetch(pin)
        got = check.check(read_wheel(whl).facts, builtwith.read_wheel(whl))
        assert got.status == "pass" and got.summary.startswith(f"built with {said}"), got.summary
    # the recorded evidence of 2.21.0 is what this wheel says
    w = evidence.load()["2.21.0"].wheel
    assert (w.compiler, w.compiler_version, w.compiler_origin) == ("clang", "18.1.8", "unbranded")


def test_verify_prints_built_with_for_a_third_party_wheel(tmp_path):
    whl = _fetch("onnxruntime==1.20.1")
    proc = invoke("verify", str(whl), "--jobs", "1", env={"TFFORGE_CACHE": str(tmp_path / "c")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = " ".join(proc.stdout.split())
    assert "built-with" in text and "built with GCC 12.2.1 (GNU)" in text
