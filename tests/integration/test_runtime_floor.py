"""End to end: a fleet of a Debian bullseye host (glibc 2.31, GCC 10's libstdc++, Python 3.9) and
a bookworm host (glibc 2.36, Python 3.11), captured in real containers of those suites, planned by
`match`, built from the tfws fixture, installed and imported in those containers.

  capture   the capture script (`detect --capture-script`) runs in each container
  match     floor bullseye; one build per Python (3.9, 3.11); TF 2.21 cannot serve bullseye
  floor39   --host both, --python-version 3.9: sysroot route (bookworm's gcc 12 against a
            bullseye sysroot and its Python 3.9) -> installs and imports in bullseye
  floor311  --runtime-floor bullseye, Python 3.11 -> installs and imports in bookworm
  plain311  --runtime-floor none: bookworm's glibc/libstdc++ -> a manylinux tag above 2.31:
            pip in bullseye refuses it, verify names the versions bullseye lacks, and
            bullseye's loader really refuses its library

The base images come from scripts/make-base-image.sh (debootstrap, offline); the Python host
images are built here from them (labelled, kept between runs as a cache).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURE_RULES, FIXTURES, invoke, need_engine

pytestmark = pytest.mark.integration
DOCKER = "/usr/bin/docker"
COMMON = (
    "--base-image",
    "local/bookworm:base",
    "--bazel-provider",
    "debian",
    "--gcc-version",
    "12.2.0",
    "--tf-version",
    "2.20.0",
    "--target",
    "x86-64-v2",
    # tfws mirrors 2.21's hermetic C++ toolchain, which the 2.20 recipe does not switch off
    "--bazel-arg=--config=clang_local",
    *FIXTURE_RULES,
)
SO = "tensorflow/python/_pywrap_tfws.so"
PROBE = (
    "import tensorflow as tf; from tensorflow.python import _pywrap_tfws as e; "
    "print(tf.__version__, e.file_size('/etc/hostname') > 0, e.dot([1.5] * 37, [2.0] * 37))"
)


def docker(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def host_image(suite: str) -> str:
    """local/SUITE:base with python3, venv and pip from the suite's archive (built once)."""
    tag = f"tfforge-test/{suite}-python:runtime"
    if docker("image", "inspect", tag).returncode == 0:
        return tag
    dockerfile = (
        f"FROM local/{suite}:base\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv "
        "python3-pip && rm -rf /var/lib/apt/lists/*\n"
    )
    proc = subprocess.run(
        [DOCKER, "build", "-q", "--label", "tfforge.test=runtime", "-t", tag, "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        timeout=900,
        env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    return tag


def in_container(image: str, folder: Path, script: str) -> subprocess.CompletedProcess:
    return docker(
        "run", "--rm", "--network=none", "-v", f"{folder}:/w:ro", image, "sh", "-c", script
    )


def install_and_probe(fleet: dict, suite: str, wheel: Path) -> subprocess.CompletedProcess:
    """pip-install the wheel into a fresh venv in the suite's host image and run PROBE there."""
    shutil.copy(wheel, fleet["work"] / wheel.name)
    return in_container(
        fleet["images"][suite],
        fleet["work"],
        f"python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --no-index /w/{wheel.name} "
        f'&& /tmp/v/bin/python -c "{PROBE}"',
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    need_engine("local/bookworm:base")
    need_engine("local/bullseye:base")  # bash scripts/make-base-image.sh local/bullseye:base
    work = tmp_path_factory.mktemp("runtime")
    script = invoke("detect", "--capture-script")
    assert script.returncode == 0, script.stderr
    (work / "capture.py").write_text(script.stdout)
    hosts = work / "hosts"
    hosts.mkdir()
    images = {}
    for suite in ("bullseye", "bookworm"):
        images[suite] = host_image(suite)
        proc = docker(
            "run",
            "--rm",
            "--hostname",
            f"{suite}-1",
            "-v",
            f"{work}:/w:ro",
            images[suite],
            "python3",
            "/w/capture.py",
        )
        assert proc.returncode == 0, proc.stderr
        (hosts / f"{suite}-1.json").write_text(proc.stdout)
    return {"work": work, "hosts": hosts, "images": images}


@pytest.fixture(scope="module")
def source(fleet) -> Path:
    """tfws as TensorFlow 2.20.0 (the last release that supports Python 3.9), fresh nonce."""
    folder = fleet["work"] / "src" / "tfws"
    shutil.copytree(FIXTURES / "tfws", folder)
    (folder / "tensorflow" / "tf_version.bzl").write_text('TF_VERSION = "2.20.0"\n')
    (folder / "NONCE").write_text(f"{time.time_ns()}\n")
    return folder


@pytest.fixture(scope="module")
def builds(fleet, source):
    work, hosts = fleet["work"], fleet["hosts"]
    env = {"TFFORGE_ROOT": str(work), "TFFORGE_CACHE": str(work / "cache")}
    both = ("--host", str(hosts / "bullseye-1.json"), "--host", str(hosts / "bookworm-1.json"))
    out = {}
    for key, flags in (
        ("floor39", ("--python-version", "3.9", *both)),
        ("floor311", ("--python-version", "3.11", "--runtime-floor", "bullseye")),
        ("plain311", ("--python-version", "3.11", "--runtime-floor", "none")),
    ):
        if key != "floor39":  # a named target
            args = (*flags, *COMMON)
        else:  # the target comes from the --host snapshots
            args = (*flags, *(a for a in COMMON if a not in ("--target", "x86-64-v2")))
        start = time.monotonic()
        proc = invoke("build", *args, "--source-dir", str(source), "--json", env=env, timeout=1800)
        assert proc.returncode == 0, f"build {key} failed:\n{proc.stderr[-4000:]}"
        out[key] = {**json.loads(proc.stdout), "wall_s": round(time.monotonic() - start, 1)}
        print(f"\n{key}: {Path(out[key]['wheel']).name} in {out[key]['wall_s']} s")
    return out


def provenance(wheel: str) -> dict:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/tfforge.json"))
        return json.loads(z.read(name))


def glibc_of(tag: str) -> tuple[int, int]:
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", tag)
    assert m, tag
    return int(m[1]), int(m[2])


def test_capture_records_each_suites_runtime(fleet):
    from tfforge.host import cpu

    bull = cpu.load_host(fleet["hosts"] / "bullseye-1.json")
    book = cpu.load_host(fleet["hosts"] / "bookworm-1.json")
    assert bull.runtime.glibc == "2.31" and bull.runtime.glibcxx == "GLIBCXX_3.4.28"
    assert bull.runtime.pythons == ("3.9",) and book.runtime.pythons == ("3.11",)
    assert book.runtime.glibc == "2.36" and book.runtime.cxxabi == "CXXABI_1.3.13"


def test_match_plans_for_the_oldest_runtime(fleet):
    proc = invoke("match", str(fleet["hosts"]), "--tf-version", "2.20.0", "--json")
    assert proc.returncode == 0, proc.stderr
    rt = json.loads(proc.stdout)["runtime"]
    assert rt["oldest_glibc"] == {"value": "2.31", "host": "bullseye-1"}
    assert rt["floor"]["suite"] == "bullseye"
    assert [(b["python"], b["hosts"]) for b in rt["builds"]] == [
        ("3.9", ["bullseye-1"]),
        ("3.11", ["bookworm-1"]),
    ]
    newer = json.loads(invoke("match", str(fleet["hosts"]), "--json").stdout)["runtime"]
    assert newer["tf_version"] == "2.21.0"
    assert [r["name"] for r in newer["refused"]] == ["bullseye-1"]
    assert "3.9" in newer["refused"][0]["why"]


def test_floor_build_installs_and_imports_on_bullseye(builds, fleet):
    result = builds["floor39"]
    wheel = Path(result["wheel"])
    doc = provenance(str(wheel))
    runtime = doc["derived"]["runtime"]
    assert runtime["floor"]["suite"] == "bullseye" and runtime["route"] == "sysroot"
    assert runtime["sysroot"]["python"] == "3.9"
    tag = doc["platform"]["tag"]
    assert wheel.name.endswith(f"-cp39-cp39-{tag}.whl") and glibc_of(tag) <= (2, 31)
    shown = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", "--disable-isa-ext-check", str(wheel)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f'consistent with the following platform tag: "{tag}"' in " ".join(shown.split())
    run = install_and_probe(fleet, "bullseye", wheel)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[:3] == ["2.20.0", "True", "111.0"]


def test_floor_build_for_bookworm_python(builds, fleet):
    wheel = Path(builds["floor311"]["wheel"])
    tag = provenance(str(wheel))["platform"]["tag"]
    assert "-cp311-cp311-" in wheel.name and glibc_of(tag) <= (2, 31)
    run = install_and_probe(fleet, "bookworm", wheel)
    assert run.returncode == 0, run.stderr


def test_unfloored_build_is_refused_for_bullseye(builds, fleet):
    wheel = Path(builds["plain311"]["wheel"])
    tag = provenance(str(wheel))["platform"]["tag"]
    assert glibc_of(tag) >= (2, 34)  # dlopen/stat from bookworm's glibc, GCC 12's libstdc++
    shutil.copy(wheel, fleet["work"] / wheel.name)
    # pip in bullseye: the tag is not one it supports
    pip = in_container(
        fleet["images"]["bullseye"],
        fleet["work"],
        "python3 -m pip debug --verbose 2>/dev/null | grep -c manylinux_2_3[4-9]_x86_64; "
        "python3 -m pip debug --verbose 2>/dev/null | grep -c manylinux_2_31_x86_64",
    )
    newer, floor_tags = (int(n) for n in pip.stdout.split())
    assert newer == 0 and floor_tags > 0, pip.stdout  # pip in bullseye accepts up to 2_31
    # verify with the snapshots: bullseye cannot load it, naming the versions it lacks
    proc = invoke(
        "verify",
        str(wheel),
        "--json",
        "--python",
        "3.11",
        "--host",
        str(fleet["hosts"] / "bullseye-1.json"),
        "--host",
        str(fleet["hosts"] / "bookworm-1.json"),
        env={"TFFORGE_CACHE": str(fleet["work"] / "cache")},
    )
    doc = json.loads(proc.stdout)
    verdicts = {v["host"]: v for v in doc["runtime"]}
    assert verdicts["bookworm-1"]["status"] == "loads"
    bull = " ".join(verdicts["bullseye-1"]["reasons"])
    assert verdicts["bullseye-1"]["status"] == "cannot load"
    for missing in ("GLIBC_2.34", "GLIBCXX_3.4.29", "CXXABI_1.3.13", "pip refuses it"):
        assert missing in bull, bull
    # the real loader agrees: bullseye's glibc refuses the library for the version verify named
    with zipfile.ZipFile(wheel) as z:
        (fleet["work"] / "plain.so").write_bytes(z.read(SO))
    load = in_container(
        fleet["images"]["bullseye"],
        fleet["work"],
        "python3 -c \"import ctypes; ctypes.CDLL('/w/plain.so')\"",
    )
    assert load.returncode != 0 and "version `GLIBC_2.34' not found" in load.stderr, load.stderr
    # and bookworm's loads it (its import works after pip install)
    run = in_container(
        fleet["images"]["bookworm"],
        fleet["work"],
        f"python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --no-index /w/{wheel.name} "
        f'&& /tmp/v/bin/python -c "{PROBE}"',
    )
    assert run.returncode == 0, run.stderr
