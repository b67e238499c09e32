"""Beyond one machine, on this one: a real Slurm cluster runs the matrix, two extra Docker
daemons share a real Bazel remote cache (nginx WebDAV on loopback, basic auth).

  two machines  d1 builds the fixture with the cache -> d2 builds the same request and gets
                remote cache hits (Bazel's own summary); a closed port degrades to a local build
                with a warning; the credential is in no file under builds/ or wheels/, nor in
                the history or layers of an image of the build
  slurm         scripts/slurm-up.sh starts munged, slurmctld, slurmd; `invoke matrix --run slurm`
                builds three cells as array tasks two at a time; a matrix whose cells fail
                reports every cell and exits 1; emitted scripts pass `sbatch --test-only`
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
from pathlib import Path

import cluster_helpers as ch
import pytest
from conftest import FIXTURES, ROOT, invoke, need, need_engine, need_tool

BUILD_TIMEOUT = 1200


def _build(project: Path, src: Path, *flags: str, env: dict) -> subprocess.CompletedProcess:
    return invoke(
        "build",
        "--source-dir",
        str(src),
        "--base-image",
        env["BASE"],
        *ch.FIXTURE_ARGS,
        *flags,
        "--json",
        env={k: v for k, v in env.items() if k != "BASE"}
        | {"TFFORGE_ROOT": str(project), "TFFORGE_CACHE": str(project / "cache")},
        timeout=BUILD_TIMEOUT,
    )


def _files_containing(folder: Path, needle: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


# ---- two machines, one cache ------------------------------------------------------------------
@pytest.fixture(scope="module")
def machines(tmp_path_factory):
    need_engine(ch.BASE)
    need_tool("dockerd")
    need(
        shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists(),
        "nginx is not installed (apt-get install -y nginx-light)",
    )
    need(os.geteuid() == 0, "extra Docker daemons need root")
    from conftest import make_spec

    from tfforge.build import render

    tmp = tmp_path_factory.mktemp("machines")
    s = make_spec(target="x86-64-v2", base_image=ch.BASE, bazel_provider="debian")
    image = ch.toolchain_image(render.context(s, render.build_document(s))["apt_packages"])
    daemons = []
    try:
        for i, name in enumerate(("tfforge-d1", "tfforge-d2")):
            daemons.append(ch.start_daemon(name, tmp, 201 + i))
        ch.copy_image(image, daemons, tmp)
        yield {"d1": daemons[0], "d2": daemons[1], "image": image, "tmp": tmp}
    finally:
        ch.stop_daemons(daemons)


@pytest.fixture(scope="module")
def cache_server(machines):
    from passlib.apache import HtpasswdFile

    from tfforge.cluster import cache

    tmp = machines["tmp"]
    password = secrets.token_hex(12)
    users = HtpasswdFile(str(tmp / "htpasswd"), new=True)
    users.set_password("tfforge", password)
    users.save()
    server = cache.start(tmp / "cache", port=ch.free_port(), htpasswd=tmp / "htpasswd")
    token = base64.b64encode(f"tfforge:{password}".encode()).decode()
    try:
        yield server, f"Authorization=Basic {token}", token
    finally:
        cache.stop(server.pid)


@pytest.fixture(scope="module")
def shared_cache_builds(machines, cache_server):
    """The same request on d1 (fills the cache), then d2; then d1 with the cache's port closed."""
    from tfforge.cluster import cache

    server, header, _ = cache_server
    access_log = server.config.parent / "access.log"
    src = ch.fresh_source(machines["tmp"] / "src")
    results = {}
    for key, daemon, url in (
        ("d1", machines["d1"], server.url),
        ("d2", machines["d2"], server.url),
        ("down", machines["d1"], f"http://127.0.0.1:{ch.free_port()}/cache"),
    ):
        project = machines["tmp"] / f"project-{key}"
        proc = _build(
            project,
            src,
            "--target",
            "x86-64-v2",
            "--remote-cache",
            url,
            env={
                "BASE": machines["image"],
                "DOCKER_HOST": daemon.host,
                "TFFORGE_REMOTE_HEADER": header,
            },
        )
        assert proc.returncode == 0, f"{key}: {proc.stderr[-3000:]}"
        results[key] = {"doc": json.loads(proc.stdout), "stderr": proc.stderr, "project": project}
        if key == "d1":
            results["entries_after_d1"] = cache.entries(server.store)
            log_mark = access_log.stat().st_size
        if key == "d2":  # what the server itself saw while d2 built
            with open(access_log, "rb") as log:
                log.seek(log_mark)
                results["d2_access"] = log.read().decode(errors="replace")
    return results


def test_second_machine_gets_remote_cache_hits(shared_cache_builds):
    d1, d2 = shared_cache_builds["d1"]["doc"], shared_cache_builds["d2"]["doc"]
    print(
        f"\nd1: {d1['remote']['summary']} ({d1['durations']['stages_s']})"
        f"\nd2: {d2['remote']['summary']} ({d2['durations']['stages_s']})"
    )
    assert d1["build_id"] == d2["build_id"]
    assert shared_cache_builds["entries_after_d1"]["ac"] > 0  # d1 uploaded action results
    assert shared_cache_builds["entries_after_d1"]["cas"] > 0
    # New sources: their compile actions ran on d1. (Bazel counts hits of its local
    # --disk_cache as "remote cache hit" too; on a fresh daemon that cache is empty.)
    assert d1["remote"]["remote_cache_hits"] < d1["remote"]["cacheable"]
    assert d2["remote"]["remote_cache_hits"] >= 2
    assert d2["remote"]["remote_cache_hits"] == d2["remote"]["cacheable"]  # every action
    # ... and the server really served them: action results fetched with d2's credential
    served = re.findall(
        r'"GET /cache/ac/[0-9a-f]{64} HTTP/1\.1" 200', shared_cache_builds["d2_access"]
    )
    assert len(served) >= 2, shared_cache_builds["d2_access"][-2000:]
    log = Path(d2["log"]).read_text()
    assert f"{d2['remote']['remote_cache_hits']} remote cache hit" in log
    assert Path(d1["wheel"]).name == Path(d2["wheel"]).name


def test_unreachable_cache_degrades_to_a_local_build(shared_cache_builds):
    down = shared_cache_builds["down"]
    assert "warning: remote cache 127.0.0.1:" in down["stderr"]
    assert "is not reachable from the build" in down["stderr"]
    assert down["doc"]["remote"]["unreachable"] and down["doc"]["remote"]["remote_cache_hits"] == 0
    assert Path(down["doc"]["wheel"]).is_file()


def test_credentials_are_in_no_file_and_no_image(shared_cache_builds, cache_server, machines):
    server, header, token = cache_server
    needles = (token.encode(), header.encode())
    for key in ("d1", "d2", "down"):
        project = shared_cache_builds[key]["project"]
        for sub in ("builds", "wheels"):
            for needle in needles:
                assert _files_containing(project / sub, needle) == [], (key, sub)
    # An image of the build stage, built from the same folder with the same secret (all steps
    # come from d1's BuildKit cache): neither its history nor its layers hold the credential.
    d1, doc = machines["d1"], shared_cache_builds["d1"]["doc"]
    secret = machines["tmp"] / "header"
    secret.write_text(header)
    tag = f"{ch.PREFIX}/leak-check:d1"
    proc = subprocess.run(
        [
            ch.DOCKER,
            "-H",
            d1.host,
            "build",
            "--network=host",
            "--secret",
            f"id=tfforge_remote_header,src={secret}",
            "--target",
            "build",
            "-t",
            tag,
            doc["build_dir"],
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        timeout=600,
    )
    secret.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    history = d1.docker("history", "--no-trunc", tag, text=True).stdout
    assert "tfforge_remote_header" in history and token not in history
    save = subprocess.Popen([ch.DOCKER, "-H", d1.host, "save", tag], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=save.stdout, mode="r|") as outer:
        for member in outer:
            if member.isreg():  # layer tars are stored uncompressed: raw bytes are searched
                assert token.encode() not in outer.extractfile(member).read(), member.name
    save.wait()
    d1.docker("rmi", tag)


# ---- slurm -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    for tool in ("slurmctld", "slurmd", "munged", "sbatch"):
        need_tool(tool)
    need(os.geteuid() == 0, "the test cluster runs slurmd as root")
    state = tmp_path_factory.mktemp("slurm")
    up = subprocess.run(
        ["bash", str(ROOT / "scripts" / "slurm-up.sh"), str(state)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        assert up.returncode == 0, up.stderr
        yield {"SLURM_CONF": str(state / "slurm.conf")}
    finally:
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "slurm-down.sh"), str(state)],
            capture_output=True,
            timeout=60,
        )


def _hosts(folder: Path, names: list[str]) -> Path:
    folder.mkdir()
    for n in names:
        shutil.copy(FIXTURES / "hosts" / f"{n}.json", folder)
    return folder


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    need_engine(ch.BASE)
    tmp = tmp_path_factory.mktemp("matrix")
    hosts = _hosts(tmp / "hosts", ["qemu-nehalem", "qemu-sandybridge", "qemu-haswell"])
    src = ch.fresh_source(tmp / "src")
    project = tmp / "project"
    proc = invoke(
        "matrix",
        str(hosts),
        "--run",
        "slurm",
        "--source-dir",
        str(src),
        "--base-image",
        ch.BASE,
        *ch.FIXTURE_ARGS,
        "--concurrent",
        "2",
        "--json",
        env={**cluster, "TFFORGE_ROOT": str(project), "TFFORGE_CACHE": str(tmp / "cache")},
        timeout=1800,
    )
    return {"proc": proc, "project": project, "hosts": hosts, "src": src, "tmp": tmp}


def test_slurm_runs_the_matrix_two_at_a_time(slurm_run):
    proc = slurm_run["proc"]
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(proc.stdout)
    rows = doc["rows"]
    print(
        "\n"
        + "\n".join(
            f"{r['cell']}: {r['node']} {r['seconds']}s {Path(r['wheel']).name}" for r in rows
        )
    )
    assert {r["cell"].split("-tf")[0] for r in rows} == {"nehalem", "sandybridge", "x86-64-v3"}
    node = socket.gethostname().split(".")[0]
    wheels = slurm_run["project"] / "wheels"
    for r in rows:
        assert r["rc"] == 0 and r["node"] == node
        assert Path(r["wheel"]).parent == wheels and Path(r["wheel"]).is_file()
        assert Path(r["log"]).is_file() and Path(r["log"]).parent.parent.name == "builds"
    assert len(list(wheels.glob("*.whl"))) == 3
    # two at a time: some pair of cells overlapped, never all three
    spans = [(r["start"], r["end"]) for r in rows]
    overlaps = [
        t
        for t in range(min(s for s, _ in spans), max(e for _, e in spans))
        if sum(s <= t < e for s, e in spans) >= 2
    ]
    assert overlaps, spans
    assert not any(
        sum(s <= t < e for s, e in spans) > 2
        for t in range(min(s for s, _ in spans), max(e for _, e in spans))
    )
    assert "job" in proc.stderr and "running" in proc.stderr  # the progress view


def test_failed_cells_are_all_reported_and_exit_nonzero(cluster, slurm_run):
    tmp = slurm_run["tmp"]
    hosts = _hosts(tmp / "hosts-fail", ["qemu-nehalem", "qemu-haswell"])
    proc = invoke(
        "matrix",
        str(hosts),
        "--run",
        "slurm",
        "--source-dir",
        str(slurm_run["src"]),
        "--base-image",
        f"{ch.PREFIX}/missing:none",
        *ch.FIXTURE_ARGS,
        "--json",
        env={
            **cluster,
            "TFFORGE_ROOT": str(tmp / "project-fail"),
            "TFFORGE_CACHE": str(tmp / "cache"),
        },
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["failed"] == 2 and len(doc["rows"]) == 2
    for r in doc["rows"]:
        assert r["rc"] != 0 and r["node"]  # each cell ran, although the other failed
        assert "missing:none" in r["error"]
    assert "error: 2 of 2 cells failed" in proc.stderr


def test_emitted_slurm_script_passes_sbatch_test_only(cluster, slurm_run, tmp_path):
    out = tmp_path / "m.sbatch"
    proc = invoke(
        "matrix",
        str(slurm_run["hosts"]),
        "--emit",
        "slurm",
        "--out",
        str(out),
        "--base-image",
        ch.BASE,
        *ch.FIXTURE_ARGS,
        env={**cluster, "TFFORGE_ROOT": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    test = subprocess.run(
        ["sbatch", "--test-only", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, **cluster},
        timeout=60,
    )
    assert test.returncode == 0 and "to start at" in test.stderr, test.stderr


# ---- invoke cache serve ------------------------------------------------------------------------
def test_cache_serve_stores_bazel_blobs_and_stops_on_ctrl_c(tmp_path):
    import signal
    import sys
    import urllib.request

    need(
        shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists(),
        "nginx is not installed (apt-get install -y nginx-light)",
    )
    port = ch.free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "invoke",
            "-r",
            str(ROOT),
            "cache",
            "serve",
            "--port",
            str(port),
            "--folder",
            str(tmp_path / "c"),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        doc = json.loads("".join(iter(proc.stdout.readline, "}\n")) + "}")
        assert doc["url"] == f"http://127.0.0.1:{port}/cache"
        put = urllib.request.Request(doc["url"] + "/cas/ab12", data=b"blob", method="PUT")
        assert urllib.request.urlopen(put, timeout=10).status in (201, 204)
        assert urllib.request.urlopen(doc["url"] + "/cas/ab12", timeout=10).read() == b"blob"
        assert (tmp_path / "c" / "store" / "cache" / "cas" / "ab12").read_bytes() == b"blob"
        own = subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True
        ).stdout
        # the bridges this project's engines made (docker0, tfforge-*): addresses of this
        # machine that are not loopback, and the only ones a test here may connect to
        others = re.findall(r"^\d+: (?:docker0|tfforge-\S+)\s+inet (\S+)/", own, re.M)
        assert others, f"no Docker bridge address to check the loopback-only bind against: {own!r}"
        for address in others:
            with pytest.raises(OSError):
                socket.create_connection((address, port), 2)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert not Path(f"/proc/{doc['pid']}").exists()  # nginx stopped with it
