"""Kits end to end, on the real engine, with TensorFlow's real C++ dependencies.

The tfws_deps fixture (tfws plus abseil, Eigen, platforms and bazel_skylib as sha256-pinned
http_archives, and a requirements lock pip installs) is built online, its files served by a
loopback mirror this test starts (`--mirror`: Bazel's downloads and pip's index; the build on
the host's network). `invoke kit` captures every input while the
mirror runs; then the mirror is stopped and a canary listens on its port, and `invoke build
--kit` builds in a new project with `docker build --network=none`: its step must fail to reach
the old mirror (and the canary sees no connection), and the wheel must be the online build's,
byte for byte. A corrupted kit file is named and refused before anything builds; a missing
one is named with what asked for it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import kit_helpers as kh
import pytest
from conftest import FIXTURE_RULES, invoke, need, need_engine

pytestmark = pytest.mark.integration
BASE = "local/bookworm:base"
FLAGS = (
    "--avx2",
    "--fma",
    "--base-image",
    BASE,
    "--bazel-provider",
    "debian",
    "--gcc-version",
    "12.2.0",
    *FIXTURE_RULES,
)
TIMEOUT = 2400


def env_of(project: Path) -> dict:
    return {"TFFORGE_ROOT": str(project), "TFFORGE_CACHE": str(project / "cache")}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Online build and capture (mirror running), then the mirror stopped."""
    need_engine(BASE)
    from tfforge import paths

    try:
        mirror_dir = kh.fetch_sources(paths.cache_dir("kit-sources"))
    except OSError as exc:
        need(False, f"the fixture's archives from the Debian archive ({exc})")
    tmp = tmp_path_factory.mktemp("kit")
    online = tmp / "online"
    source = kh.deps_source(online / "src", nonce=str(time.time_ns()))
    kits = tmp / "kits"
    with kh.serve(mirror_dir) as (url, requests):
        start = time.monotonic()
        proc = invoke(
            "build",
            *FLAGS,
            "--source-dir",
            str(source),
            "--mirror",
            url,
            "--json",
            env=env_of(online),
            timeout=TIMEOUT,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        built = {**json.loads(proc.stdout), "wall_s": time.monotonic() - start}
        start = time.monotonic()
        proc = invoke(
            "kit",
            built["build_id"],
            "--out",
            str(kits),
            "--mirror",
            url,
            "--json",
            env=env_of(online),
            timeout=TIMEOUT,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        kit = {**json.loads(proc.stdout), "wall_s": time.monotonic() - start}
        served = list(requests)
    port = int(url.rsplit(":", 1)[1])
    return {
        "tmp": tmp,
        "online": online,
        "built": built,
        "kit": kit,
        "kits": kits,
        "served": served,
        "port": port,
        "url": url,
    }


def test_capture_lists_every_input_with_what_asked_for_it(world):
    kit, built = world["kit"], world["built"]
    files = kit["files"]
    kinds = {f["kind"] for f in files}
    assert {"build", "source", "deb", "bazel-download", "base-image"} <= kinds
    downloads = {f["name"]: f for f in files if f["kind"] == "bazel-download"}
    for url, sha in kh.declared():
        name = url.rsplit("/", 1)[1]
        assert downloads[name]["sha256"] == sha
        # the capture really fetched it from the mirror (a fresh repository cache)
        assert any(p.endswith(url.split("://", 1)[1]) for p in world["served"]), name
    assert downloads["abseil_20220623.1.orig.tar.gz"]["asked_by"].startswith(
        "@com_google_absl (http_archive via tf_workspace2() at WORKSPACE:"
    )
    [six] = [f for f in files if f["kind"] == "pypi"]  # pip's download, not Bazel's
    assert six["path"] == "kit/pypi/six-1.16.0-py2.py3-none-any.whl"
    assert six["asked_by"] == "requirements_lock_3_11.txt: six==1.16.0"
    assert six["sha256"] == dict(kh.locked())["six"].pop()
    debs = [f for f in files if f["kind"] == "deb"]
    asked = {f["asked_by"].split(": ", 1)[1].split("=")[0] for f in debs}
    assert {"bazel-bootstrap", "gcc-12", "g++-12", "python3-dev", "patchelf"} <= asked
    assert kit["wheel"]["sha256"] == built["sha256"]
    assert kit["base_image"]["ref"] == BASE
    assert kit["capture"]["probes"] == [f"127.0.0.1:{world['port']}"]
    store = world["kits"] / "store" / "sha256"
    assert {f["sha256"] for f in files} <= {p.name for p in store.iterdir()}
    print(
        f"\ncapture: {kit['capture']['seconds']:.1f} s, {len(files)} files, "
        f"{kit['size'] / 2**20:.1f} MiB ({len(debs)} debs, {len(downloads)} Bazel downloads); "
        f"online build {built['durations']['total_s']:.1f} s"
    )


def test_kit_check_passes_a_whole_kit(world):
    kit = world["kits"] / world["built"]["build_id"]
    proc = invoke("kit", "check", "--kit", str(kit), "--json", env=env_of(world["online"]))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["can_build"] is True and doc["missing"] == doc["corrupt"] == doc["extra"] == []


@pytest.fixture(scope="module")
def offline(world):
    """`build --kit` in a new project, the mirror stopped and a canary on its port."""
    project = world["tmp"] / "offline"
    kit = world["kits"] / world["built"]["build_id"]
    with kh.canary(world["port"]) as seen:
        start = time.monotonic()
        proc = invoke("build", "--kit", str(kit), "--json", env=env_of(project), timeout=TIMEOUT)
        wall = time.monotonic() - start
        connections = list(seen)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {
        **json.loads(proc.stdout),
        "wall_s": wall,
        "connections": connections,
        "project": project,
    }


def test_kit_build_had_no_network_and_gives_the_online_wheel(world, offline):
    built = world["built"]
    print(
        f"\nkit build: sha256 {offline['sha256']} (online {built['sha256']}), "
        f"{offline['durations']['total_s']:.1f} s offline"
    )
    assert offline["sha256"] == built["sha256"] and offline["identical"] is True
    assert Path(offline["wheel"]).read_bytes() == Path(built["wheel"]).read_bytes()
    argv = offline["argv"]
    assert "--network=none" in argv and "--no-cache" in argv and "TFFORGE_KIT=1" in argv
    assert f"TFFORGE_KIT_PROBES=127.0.0.1:{world['port']}" in argv
    log = (offline["project"] / "builds" / built["build_id"] / "kit-build.log").read_text()
    assert f"tfforge: kit build: 127.0.0.1:{world['port']} is unreachable from this step" in log
    assert "tfforge: kit build: network interfaces: lo \n" in log
    assert offline["connections"] == []  # nothing reached the stopped mirror's port
    # the offline project can verify and rebuild it: builds/<id>/ was kept
    kept = offline["project"] / "builds" / built["build_id"]
    assert (kept / "build.json").read_bytes() == (
        Path(built["build_dir"]) / "build.json"
    ).read_bytes()


def test_the_wheel_runs_the_dependencies_code(offline, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    with zipfile.ZipFile(offline["wheel"]) as wheel:  # installed by pip from the kit's wheel
        assert "def add_metaclass" in wheel.read("tensorflow/python/_vendor/six.py").decode()
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", offline["wheel"]], check=True
    )
    code = (
        "from tensorflow.python import _pywrap_deps as d; "
        "print(d.word_counts('b a, B. c;a')); print(d.matvec(64))"
    )
    host = Path("/proc/cpuinfo").read_text()
    need(" avx2 " in host and " fma " in host, "a CPU with AVX2 and FMA to run the wheel")
    proc = subprocess.run(
        [py, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"TF_CPP_MIN_LOG_LEVEL": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    counts, total = proc.stdout.split()
    assert counts == "a=2,b=2,c=1"
    expected = sum(sum((0.5 * (i + 1) + 0.25 * j) / (j + 1) for j in range(64)) for i in range(64))
    assert float(total) == pytest.approx(expected, rel=1e-5)


@pytest.fixture
def damaged(world, tmp_path):
    """A copy of the kits folder to damage (the original stays whole)."""
    kits = tmp_path / "kits"
    shutil.copytree(world["kits"], kits)
    return kits / world["built"]["build_id"], json.loads(
        (kits / world["built"]["build_id"] / "kit.json").read_text()
    )


def test_corrupt_file_is_named_and_nothing_is_built(world, damaged, tmp_path):
    kit, doc = damaged
    [absl] = [f for f in doc["files"] if f.get("name") == "abseil_20220623.1.orig.tar.gz"]
    stored = kit.parent / "store" / "sha256" / absl["sha256"]
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[1000] ^= 0xFF
    stored.write_bytes(bytes(data))
    check = invoke("kit", "check", "--kit", str(kit), env=env_of(tmp_path))
    print("\n" + check.stdout)
    assert check.returncode == 1
    assert f"corrupt  {absl['path']}" in check.stdout and "@com_google_absl" in check.stdout
    assert "can build: NO" in check.stdout
    project = tmp_path / "p"
    start = time.monotonic()
    proc = invoke("build", "--kit", str(kit), env=env_of(project), timeout=600)
    line = proc.stderr.strip().splitlines()[-1]
    print(line)
    assert proc.returncode == 1 and line.startswith(f"error: kit {kit} cannot build: 1 corrupt")
    assert absl["path"] in line and "@com_google_absl" in line
    assert "docker" not in proc.stderr and not (project / "wheels").exists()
    assert time.monotonic() - start < 120  # refused before anything is built (a hang guard)


def test_missing_file_fails_fast_naming_what_asked_for_it(world, damaged, tmp_path):
    kit, doc = damaged
    [gcc] = [f for f in doc["files"] if f["asked_by"].startswith("apt.lock: gcc-12=")]
    (kit.parent / "store" / "sha256" / gcc["sha256"]).unlink()
    proc = invoke("build", "--kit", str(kit), env=env_of(tmp_path / "p"), timeout=600)
    line = proc.stderr.strip().splitlines()[-1]
    print("\n" + line)
    assert proc.returncode == 1
    assert f"missing: {gcc['path']} (asked for by {gcc['asked_by']})" in line
    check = invoke("kit", "check", "--kit", str(kit), "--json", env=env_of(tmp_path))
    assert check.returncode == 1
    assert json.loads(check.stdout)["missing"][0]["asked_by"] == gcc["asked_by"]


def test_rebuild_from_the_kit_is_identical(world):
    """`invoke rebuild ID --kit KIT`: from the kit, no network, compared with the wheel the
    online build left in wheels/ (rebuild.json records it)."""
    built = world["built"]
    kit = world["kits"] / built["build_id"]
    proc = invoke(
        "rebuild", built["build_id"], "--kit", str(kit), "--json",
        env=env_of(world["online"]), timeout=TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(proc.stdout)
    print(f"\nrebuild --kit: identical={doc['identical']} in {doc['durations']['total_s']:.1f} s")
    assert doc["identical"] is True and doc["sha256"]["rebuild"] == built["sha256"]
    assert "--network=none" in doc["argv"] and "TFFORGE_KIT=1" in doc["argv"]
    assert "--no-cache" in doc["argv"]
