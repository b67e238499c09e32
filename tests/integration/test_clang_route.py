"""The official clang route, built for real: the fixture workspace (TensorFlow 2.21's interface)
with `--compiler clang` on a trixie image made by scripts/make-base-image.sh. The build uses the
release's own clang major (Debian's clang-18 18.1.8; the release's wheels: unbranded clang 18.1.8)
and the flags of its CPU release config (-fuse-ld=lld among them), and the wheel's machine code
says so: verify's built-with check names Debian clang 18.1.8 and LLD, matches the build record,
and fails the same machine code against a record that names another compiler.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import FIXTURE_RULES, FIXTURES, invoke, need_engine

from tfforge.build import toolchains
from tfforge.verify import builtwith as check
from tfforge.wheel import builtwith
from tfforge.wheel.read import check as read_wheel

pytestmark = pytest.mark.integration
# setup.sh makes it; TFFORGE_TEST_TRIXIE names another trixie image made the same way
TRIXIE = os.environ.get("TFFORGE_TEST_TRIXIE", "local/trixie:base")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    need_engine(TRIXIE)
    project = tmp_path_factory.mktemp("clang")
    source = project / "src" / "tfws"
    shutil.copytree(FIXTURES / "tfws", source)
    (source / "NONCE").write_text(f"{time.time_ns()}\n")
    proc = invoke(
        "build",
        "--source-dir",
        str(source),
        "--tf-version",
        "2.21.0",
        # trixie's own Python: the fixture cannot download a hermetic one as TensorFlow does
        "--python-version",
        "3.13",
        "--compiler",
        "clang",
        "--base-image",
        TRIXIE,
        "--bazel-provider",
        "debian",
        *FIXTURE_RULES,
        "--target",
        "haswell",
        "--json",
        env={"TFFORGE_ROOT": str(project), "TFFORGE_CACHE": str(project / "cache")},
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def test_the_build_passes_the_releases_clang_flags(built):
    doc = json.loads((Path(built["build_dir"]) / "build.json").read_text())
    tc = toolchains.toolchain("2.21.0")
    assert doc["spec"]["clang_version"] == "18.1.8"
    bazel = doc["commands"]["bazel"]
    assert [a for a in bazel if a in tc.clang_args] == list(tc.clang_args)
    route = doc["derived"]["official_route"]
    assert route["official"].startswith("unbranded clang 18.1.8 + LLD 18.1.8")
    assert any("hermetic LLVM 18.1.8" in d for d in route["differences"])
    log = (Path(built["build_dir"]) / "build.log").read_text()
    assert "--version 2.21.0 --clang-major 18" in log
    assert "tfforge: the source tree matches the recipe" in log


def test_the_wheels_machine_code_names_debian_clang_and_lld(built):
    wheel = Path(built["wheel"])
    facts = read_wheel(wheel).facts
    found = builtwith.read_wheel(wheel)
    got = check.check(facts, found)
    print(f"\n{wheel.name}: {got.summary}")
    assert got.status == "pass", got.summary
    assert got.summary.startswith("built with clang 18.1.8 (Debian) + LLD 18.1.8")
    assert got.summary.endswith("matches the build record (clang 18.1.8)")
    # the same machine code against a record that says GCC: a failed check
    record = json.loads(json.dumps(facts.provenance))
    record["spec"]["compiler"] = "gcc"
    wrong = check.check(dataclasses.replace(facts, provenance=record), found)
    assert wrong.status == "fail"
    assert wrong.summary.startswith(f"the build record says gcc {record['spec']['gcc_version']}")
