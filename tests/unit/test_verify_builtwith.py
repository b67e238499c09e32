"""`invoke verify` says how any wheel was built, and fails a tfforge wheel whose machine code
contradicts its own build record (wheels finalised the way the build engine does it, around
libraries compiled here by gcc)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import elf_samples as samples
import pytest
from conftest import invoke, need_tool

from tfforge.verify import builtwith as check
from tfforge.wheel import builtwith
from tfforge.wheel import edit as wheel_edit
from tfforge.wheel.read import check as read_wheel

TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> Path:
    need_tool("gcc")
    return samples.compile_so(tmp_path_factory.mktemp("vb"), "k", samples.KERNELS, ["-O2"])


def gcc_version() -> str:
    return subprocess.run(
        ["gcc", "-dumpfullversion"], capture_output=True, text=True, check=True
    ).stdout.strip()


def record(compiler: str, version: str, bazel: list[str] | None = None) -> dict:
    label = "x86.64"
    return {
        "id": f"1.0-{label}-0123456789ab",
        "schema": "tfforge-build/1",
        "spec": {"tf_version": "1.0", "compiler": compiler, f"{compiler}_version": version},
        "derived": {"local_version": label, "version": f"1.0+{label}", "features": [], "copts": []},
        "commands": {"bazel": bazel or ["bazel", "build", "//x:y"]},
    }


def tfforge_wheel(tmp: Path, lib: Path, doc: dict | None) -> Path:
    raw = samples.make_wheel(
        tmp / "raw",
        tag=f"{TAG}-{TAG}-linux_x86_64",
        files={"demo/__init__.py": b"", "demo/libk.so": lib.read_bytes()},
    )
    if doc is None:
        return raw
    out = tmp / "wheels"
    out.mkdir(exist_ok=True)
    return wheel_edit.finalize(raw, out, local_version="x86.64", provenance=doc)


def built_with(tmp: Path, lib: Path, doc: dict | None) -> check.Check:
    whl = tfforge_wheel(tmp, lib, doc)
    facts = read_wheel(whl).facts
    return check.check(facts, builtwith.read_wheel(whl))


def test_a_third_party_wheel_is_told_what_built_it(tmp_path, lib):
    got = built_with(tmp_path, lib, None)
    assert got.status == "pass"
    assert got.summary.startswith(f"built with GCC {gcc_version()} (Debian)")


def test_a_record_that_matches_passes(tmp_path, lib):
    major = gcc_version().split(".")[0]
    got = built_with(tmp_path, lib, record("gcc", major))
    assert got.status == "pass", got.summary
    assert got.summary.endswith(f"matches the build record (gcc {major})")


@pytest.mark.parametrize(
    "doc,first",
    [
        (
            lambda: record("clang", "18.1.8"),
            "the build record says clang 18.1.8, but demo/libk.so: GCC",
        ),
        (
            lambda: record("gcc", "99.1.0"),
            "the build record says gcc 99.1.0, but demo/libk.so: GCC",
        ),
        (
            lambda: record("gcc", gcc_version(), ["bazel", "--linkopt=-fuse-ld=gold"]),
            None,  # GNU ld leaves no mark: nothing contradicts -fuse-ld=gold
        ),
    ],
)
def test_machine_code_that_contradicts_the_record_fails(tmp_path, lib, doc, first):
    got = built_with(tmp_path, lib, doc())
    if first is None:
        assert got.status == "pass", got.summary
    else:
        assert got.status == "fail" and got.summary.startswith(first), got.summary
        assert got.details and got.details[0].startswith("demo/libk.so: GCC")


def test_a_linker_other_than_the_records_fails(tmp_path):
    need_tool("gcc")
    gold = tmp_path / "libgold.so"
    src = tmp_path / "k.c"
    src.write_text(samples.KERNELS)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-fuse-ld=gold", "-o", str(gold), str(src)], check=True
    )
    doc = record("gcc", gcc_version(), ["bazel", "--linkopt=-fuse-ld=lld"])
    got = built_with(tmp_path, gold, doc)
    assert got.status == "fail"
    assert "linked by gold 1.16 (GNU), the record passes -fuse-ld=lld" in got.summary


def test_verify_fails_the_contradicted_wheel_with_exit_1(tmp_path, lib):
    whl = tfforge_wheel(tmp_path, lib, record("clang", "18.1.8"))
    proc = invoke(
        "verify", str(whl), "--json", "--jobs", "1", env={"TFFORGE_CACHE": str(tmp_path / "c")}
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    [c] = [c for c in doc["checks"] if c["name"] == "built-with"]
    assert c["status"] == "fail" and "the build record says clang 18.1.8" in c["summary"]
    assert "built-with" in proc.stderr  # the error line names the failed check
    # cached per sha256: a second run reads no ELF again and answers the same
    again = invoke(
        "verify", str(whl), "--json", "--jobs", "1", env={"TFFORGE_CACHE": str(tmp_path / "c")}
    )
    [c2] = [c for c in json.loads(again.stdout)["checks"] if c["name"] == "built-with"]
    assert c2 == c
    assert len(list((tmp_path / "c" / "builtwith").glob("*.json"))) == 1
