"""End to end: `invoke build` on the real Docker engine with the shared templates, building the
tfws fixture workspace (tests/fixtures/tfws, TensorFlow's build interface) with Debian's Bazel.

Builds (in a throwaway TFFORGE_ROOT, so the repo's builds/ and wheels/ stay untouched):
  A  --avx2 --fma                    -> the .so holds AVX2 and FMA instructions in ordinary code
  B  --mkl --target x86-64-v2        -> no AVX at all; reports MKL at import
  C  --target x86-64-v3               -> GCC's ISA-level note: glibc refuses it on a
                                        SandyBridge (qemu) instead of a SIGILL; runs on Haswell
  A again, unchanged                 -> served from the cache (time ratio printed)
  a broken variant (tfws_broken)     -> fails, prints the cause, wheels/ unchanged
  a tree without the recipe's config -> the clone check stops it in the source stage

The fixture mirrors TensorFlow 2.21's interfaces: its .bazelrc defaults ML_WHEEL_TYPE=snapshot
(a .dev0 version) and a hermetic C++ toolchain (the build stops unless --config=clang_local),
and its packaging calls patchelf. The 2.21 recipe overrides both; the wheels prove it.
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
from conftest import FIXTURE_RULES, FIXTURES, invoke, need, need_engine
from conftest import tree_bytes as snapshot

from tfforge.elfscan.scan import scan_library
from tfforge.wheel.read import check as check_wheel

pytestmark = pytest.mark.integration
BASE = "local/bookworm:base"
# bookworm ships gcc-12: inside TensorFlow 2.21's recipe range (12 to 13; its default 13 needs
# a trixie image)
COMMON = (
    "--base-image",
    BASE,
    "--bazel-provider",
    "debian",
    "--gcc-version",
    "12.2.0",
    *FIXTURE_RULES,
)
SO = "tensorflow/python/_pywrap_tfws.so"
AVX_FAMILY = {"avx", "avx2", "fma", "f16c", "avx512f"}


def host_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def baseline_features(library: Path) -> set[str]:
    """ISA features the library's ordinary (not runtime-dispatched) code needs (the verify scan)."""
    return set(scan_library(library).baseline)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    need_engine(BASE)
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def source(project) -> Path:
    """The fixture with a fresh nonce file: a new source digest, so the first build of this run
    really configures and runs Bazel (the toolchain stage may come from an earlier run's cache)."""
    folder = project / "src" / "tfws"
    shutil.copytree(FIXTURES / "tfws", folder)
    (folder / "NONCE").write_text(f"{time.time_ns()}\n")
    return folder


def build(project: Path, *flags: str, source: Path):
    start = time.monotonic()
    proc = invoke(
        "build",
        *flags,
        "--source-dir",
        str(source),
        *COMMON,
        "--json",
        env={"TFFORGE_ROOT": str(project), "TFFORGE_CACHE": str(project / "cache")},
        timeout=1500,
    )
    return proc, time.monotonic() - start


@pytest.fixture(scope="module")
def builds(project, source):
    """Build A, B and A again once for the module's checks."""
    results = {}
    for key, flags in (
        ("avx2_fma", ("--avx2", "--fma")),
        ("v2_mkl", ("--mkl", "--target", "x86-64-v2")),
        ("v3", ("--target", "x86-64-v3")),
        ("avx2_fma_again", ("--avx2", "--fma")),
    ):
        proc, seconds = build(project, *flags, source=source)
        assert proc.returncode == 0, f"build {flags} failed:\n{proc.stderr[-4000:]}"
        results[key] = {**json.loads(proc.stdout), "wall_s": seconds}
    return results


def library(wheel: str, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(SO, dest)
    return dest / SO


def venv_run(wheel: str, folder: Path, code: str) -> subprocess.CompletedProcess:
    """Install the wheel alone into a fresh venv and run code there."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", wheel],
        check=True,
        capture_output=True,
        text=True,
    )
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=120, cwd=folder
    )


PROBE = """
import json, importlib.metadata as md
import tensorflow as tf
from tensorflow.python import _pywrap_tfws as ext
print(json.dumps({"version": md.version("tensorflow-cpu"), "tf": tf.__version__,
                  "info": tf.sysconfig.get_build_info(),
                  "dot": ext.dot([1.5] * 37, [2.0] * 37), "imad": ext.imad(3, 4, 5)}))
"""


def test_avx2_fma_build_uses_avx2_and_fma_in_ordinary_code(builds, tmp_path):
    result = builds["avx2_fma"]
    wheel = Path(result["wheel"])
    assert wheel.name.startswith("tensorflow_cpu-2.21.0+") and "avx2" in wheel.name
    features = baseline_features(library(result["wheel"], tmp_path))
    print(f"\n{wheel.name}: baseline features {sorted(features)}")
    assert {"avx2", "fma"} <= features
    provenance = check_wheel(wheel).facts.provenance
    assert provenance["id"] == result["build_id"]
    assert {"avx2", "fma"} <= set(provenance["derived"]["features"])
    assert provenance["base_images"][0]["ref"] == BASE
    assert provenance["apt_lock"]["packages"]  # the toolchain stage's packages, name=version
    assert "durations" not in provenance and "run" not in provenance  # inputs only
    assert "-mavx2" in provenance["derived"]["copts"]


def test_dry_run_prints_the_argv_the_build_ran(builds, project, source):
    """The dry run (another process) prints exactly the argv the real build gave the client."""
    proc = invoke(
        "build",
        "--avx2",
        "--fma",
        "--dry-run",
        "--source-dir",
        str(source),
        *COMMON,
        "--json",
        env={"TFFORGE_ROOT": str(project), "TFFORGE_CACHE": str(project / "cache")},
    )
    assert proc.returncode == 0, proc.stderr
    planned = json.loads(proc.stdout)["docker_command"]
    folder = Path(builds["avx2_fma"]["build_dir"])
    ran = json.loads((folder / "provenance.json").read_text())["run"]["argv"]
    assert planned == ran == builds["avx2_fma"]["argv"]
    assert (folder / "build.log").read_text().splitlines()[0] == "$ DOCKER_BUILDKIT=1 " + " ".join(
        planned
    )


def test_v2_mkl_build_has_no_avx(builds, tmp_path):
    result = builds["v2_mkl"]
    features = baseline_features(library(result["wheel"], tmp_path))
    print(f"\n{Path(result['wheel']).name}: baseline features {sorted(features)}")
    assert not features & AVX_FAMILY
    assert "sse4_2" in features or "sse4_1" in features or "pni" in features


def test_wheels_install_and_import_in_fresh_venvs(builds, tmp_path):
    mkl = venv_run(builds["v2_mkl"]["wheel"], tmp_path / "mkl", PROBE)
    assert mkl.returncode == 0, mkl.stderr
    doc = json.loads(mkl.stdout)
    assert doc["version"].endswith("+x86.64.v2.mkl") and doc["tf"] == "2.21.0"
    assert doc["info"]["is_mkl_build"] is True and doc["info"]["is_openmp_build"] is True
    assert not {"-mavx", "-mavx2", "-mfma"} & set(doc["info"]["m_flags"])
    assert doc["dot"] == pytest.approx(111.0) and doc["imad"] == 17
    assert "tfws: built with MKL: yes" in mkl.stderr

    if not {"avx2", "fma"} <= host_flags():
        print("\nthis CPU lacks AVX2/FMA: the avx2+fma wheel is not imported here")
        return
    avx = venv_run(builds["avx2_fma"]["wheel"], tmp_path / "avx", PROBE)
    assert avx.returncode == 0, avx.stderr
    doc = json.loads(avx.stdout)
    assert doc["info"]["is_mkl_build"] is False
    assert {"__AVX2__", "__FMA__"} <= set(doc["info"]["isa_macros"])
    assert {"-mavx2", "-mfma"} <= set(doc["info"]["m_flags"])
    assert doc["dot"] == pytest.approx(111.0) and doc["imad"] == 17
    assert "tfws: built with MKL: no" in avx.stderr


def test_unchanged_spec_reuses_the_cache(builds):
    first, again = builds["avx2_fma"], builds["avx2_fma_again"]
    assert again["build_id"] == first["build_id"] and again["created"] is False
    ratio = again["durations"]["total_s"] / first["durations"]["total_s"]
    print(
        f"\ncache reuse: first build {first['durations']['total_s']:.1f}s "
        f"(wall {first['wall_s']:.1f}s), unchanged rebuild {again['durations']['total_s']:.1f}s "
        f"(wall {again['wall_s']:.1f}s): ratio {ratio:.3f}; "
        f"steps cached {again['cache']['steps_cached']}, run {again['cache']['steps_run']}"
    )
    assert first["durations"]["stages_s"]["build"] > 0  # the first one really ran Bazel
    # Every Dockerfile step came from the cache: nothing in the toolchain/source/build stages ran.
    assert again["durations"]["stages_s"].get("build", 0.0) == 0.0
    assert again["durations"]["stages_s"].get("toolchain", 0.0) == 0.0
    assert again["cache"]["steps_cached"] > first["cache"]["steps_cached"]
    assert ratio < 0.5
    assert Path(again["wheel"]).name == Path(first["wheel"]).name


def test_failing_build_leaves_wheels_unchanged(builds, project, tmp_path):
    broken = tmp_path / "tfws_broken"
    shutil.copytree(FIXTURES / "tfws", broken)
    shutil.copytree(FIXTURES / "tfws_broken", broken, dirs_exist_ok=True)
    wheels = project / "wheels"
    before = {p.name: p.read_bytes() for p in wheels.iterdir()}
    assert len(before) == 3
    proc, _ = build(project, "--avx2", "--fma", source=broken)
    print("\n" + proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 1
    assert re.search(r"error: build step failed: \[build \d+/\d+\] RUN ", proc.stderr)
    assert "(exit code 1)" in proc.stderr and "build.log" in proc.stderr
    assert "vector_kernels.c" in proc.stderr and "error: expected ';'" in proc.stderr
    assert {p.name: p.read_bytes() for p in wheels.iterdir()} == before
    assert proc.stdout == ""


def _readelf(flag: str, library: Path) -> str:
    return subprocess.run(
        ["readelf", flag, str(library)], capture_output=True, text=True, check=True
    ).stdout


def test_recipe_overrides_the_fixture_defaults_and_packaging_ran_patchelf(builds, tmp_path):
    """ML_WHEEL_TYPE=release beats the .bazelrc's snapshot (no .dev0 in the version), the
    hermetic toolchain was switched off (the fixture stops otherwise), and the packaging step
    ran patchelf (RUNPATH $ORIGIN on the library)."""
    result = builds["avx2_fma"]
    name = Path(result["wheel"]).name
    assert name.startswith("tensorflow_cpu-2.21.0+avx2.fma-") and "dev0" not in name
    doc = check_wheel(Path(result["wheel"])).facts.provenance
    assert "ML_WHEEL_TYPE=release" in doc["derived"]["repo_env"]
    assert doc["derived"]["configs"][:2] == ["opt", "clang_local"]
    assert doc["recipe"]["evidence"]["wheel_type"]["level"] == "nearby-master"
    dynamic = _readelf("-d", library(result["wheel"], tmp_path))
    assert re.search(r"\((RUNPATH|RPATH)\)\s+Library r(un)?path: \[\$ORIGIN\]", dynamic), dynamic


def test_isa_level_note_makes_glibc_refuse_an_older_cpu(builds, tmp_path):
    """Built for x86-64-v3 with GCC -mneeded (linked by gold): the note says v3; under qemu as a
    SandyBridge glibc's loader refuses the library ("CPU ISA level is lower than required"), no
    SIGILL; as a Haswell it imports and runs."""
    qemu = shutil.which("qemu-x86_64")
    need(qemu is not None, "qemu-x86_64 (apt-get install qemu-user)")
    result = builds["v3"]
    notes = _readelf("-n", library(result["wheel"], tmp_path))
    assert "x86 ISA needed" in notes and "x86-64-v3" in notes, notes
    provenance = check_wheel(Path(result["wheel"])).facts.provenance
    assert provenance["derived"]["isa_note"]["copt"] == "-mneeded"
    venv = tmp_path / "v3"
    probe = venv_run(result["wheel"], venv, "import sys; print(sys.version)")
    assert probe.returncode == 0, probe.stderr
    python = str(venv / "bin" / "python")
    code = "from tensorflow.python import _pywrap_tfws as e; print(e.imad(3, 4, 5))"
    env = {"TF_CPP_MIN_LOG_LEVEL": "1", "PATH": "/usr/bin:/bin"}
    old = subprocess.run(
        [qemu, "-cpu", "SandyBridge", python, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=venv,
        env=env,
    )
    print(f"\nSandyBridge: exit {old.returncode}: {old.stderr.strip().splitlines()[-1:]}")
    assert old.returncode == 1, (old.returncode, old.stderr)  # an ImportError, not -SIGILL
    assert "CPU ISA level is lower than required" in old.stderr
    new = subprocess.run(
        [qemu, "-cpu", "Haswell", python, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=venv,
        env=env,
    )
    assert new.returncode == 0 and new.stdout.strip() == "17", new.stderr


def test_clone_check_stops_a_tree_that_disagrees_with_the_recipe(builds, project, tmp_path):
    """A tree whose .bazelrc lacks the recipe's clang_local config stops in the source stage,
    with the reason, before configure or Bazel run."""
    tree = tmp_path / "no_clang_local"
    shutil.copytree(FIXTURES / "tfws", tree)
    rc = tree / ".bazelrc"
    rc.write_text(
        "".join(
            line
            for line in rc.read_text().splitlines(keepends=True)
            if not line.startswith("build:clang_local")
        )
    )
    start = time.monotonic()
    proc, _ = build(project, "--avx2", "--fma", source=tree)
    seconds = time.monotonic() - start
    print(f"\nclone check stopped the build after {seconds:.1f} s")
    assert proc.returncode == 1
    assert "[source " in proc.stderr and "clone_check.py" in proc.stderr
    assert ".bazelrc defines no config clang_local" in proc.stderr
    assert seconds < 120


# ---- reproducibility (issue 11): rebuild from empty caches and compare ----------------------
def env_of(project: Path) -> dict:
    return {"TFFORGE_ROOT": str(project), "TFFORGE_CACHE": str(project / "cache")}


def test_rebuild_with_variations_is_bit_identical(builds, project):
    first = builds["avx2_fma"]
    before = snapshot(project / "wheels")
    start = time.monotonic()
    proc = invoke(
        "rebuild", first["build_id"], "--vary", "--json", env=env_of(project), timeout=1500
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(proc.stdout)
    print(
        f"\nrebuild --vary: identical={doc['identical']} sha256 {doc['sha256']['rebuild']} "
        f"in {time.monotonic() - start:.0f}s (fresh build {doc['durations']['total_s']:.0f}s)"
    )
    assert doc["identical"] is True and doc["sha256"]["rebuild"] == first["sha256"]
    # the second build really ran from nothing, elsewhere, with every variation
    assert "--no-cache" in doc["argv"] and "TFFORGE_FRESH=1" in doc["argv"]
    assert not doc["vary"]["build_path"].startswith(str(project))
    assert {"TZ", "LC_ALL", "HOSTNAME", "TFFORGE_UMASK", "TFFORGE_CPUS"} <= set(doc["vary"])
    assert (
        doc["durations"]["stages_s"]["toolchain"] > 0 and doc["durations"]["stages_s"]["build"] > 0
    )
    assert snapshot(project / "wheels") == before  # the original wheel untouched, nothing added
    # verify knows: inputs-only provenance and an identical rebuild recorded for this wheel
    check = invoke("verify", first["wheel"], "--json", env=env_of(project))
    [repro] = [c for c in json.loads(check.stdout)["checks"] if c["name"] == "reproducible"]
    assert repro["status"] == "pass", repro
    assert repro["summary"].startswith(
        "provenance is inputs-only; a rebuild from empty caches "
        "with variations gave the same sha256"
    )


def test_unsatisfiable_apt_lock_fails_naming_the_snapshot_archive(builds, project):
    folder = Path(builds["avx2_fma"]["build_dir"])
    lock = folder / "apt.lock"
    original = lock.read_text()
    date = re.search(r"^# archive-date: (\d{8}T\d{6}Z)$", original, re.M).group(1)
    assert re.search(r"^zip=\S+$", original, re.M)
    lock.write_text(re.sub(r"^zip=\S+$", "zip=9.9-tfforge1", original, flags=re.M))
    before = snapshot(project / "wheels")
    try:
        proc = invoke("rebuild", folder.name, env=env_of(project), timeout=900)
    finally:
        lock.write_text(original)
    message = proc.stderr.strip().splitlines()[-1]
    print("\n" + message)
    assert proc.returncode == 1 and proc.stdout == ""
    assert message.startswith(
        "error: the Debian archive no longer has the locked package "
        f"version(s) zip=9.9-tfforge1; apt.lock was recorded from the "
        f"archive of {date}: get them from Debian's snapshot archive, "
        f"https://snapshot.debian.org/archive/debian/{date}/"
    )
    assert f"full log {folder / 'rebuild.log'})" in message and (folder / "rebuild.log").is_file()
    assert snapshot(project / "wheels") == before


def test_nondeterministic_extension_is_caught_and_named(tmp_path_factory):
    """tfws_nondet embeds `date +%s%N` in its extension: the rebuild differs there."""
    other = tmp_path_factory.mktemp("nondet")
    src = other / "src" / "tfws"
    shutil.copytree(FIXTURES / "tfws", src)
    shutil.copytree(FIXTURES / "tfws_nondet", src, dirs_exist_ok=True)
    proc, _ = build(other, "--avx2", "--fma", source=src)
    assert proc.returncode == 0, proc.stderr[-4000:]
    first = json.loads(proc.stdout)
    before = snapshot(other / "wheels")
    again = invoke("rebuild", first["build_id"], env=env_of(other), timeout=1500)
    print("\n" + again.stdout)
    assert again.returncode == 1, again.stderr[-2000:]
    assert again.stdout.startswith(f"NOT reproducible: {Path(first['wheel']).name}")
    assert re.search(rf"^  {re.escape(SO)} +differs ", again.stdout, re.M)
    assert snapshot(other / "wheels") == before
    record = json.loads((Path(first["build_dir"]) / "rebuild.json").read_text())
    assert record["identical"] is False and SO in [m["name"] for m in record["differing"]]
    kept = Path(first["build_dir"]) / "rebuilt" / Path(first["wheel"]).name
    assert kept.is_file() and kept.read_bytes() != Path(first["wheel"]).read_bytes()
