"""Extra Docker daemons standing for build machines, and the tfws fixture made new each run.

Shared by tests/integration/test_matrix_cluster.py and benchmarks/bench_matrix.py. Each daemon
has its own data root, exec root, socket, pid file, containerd namespace and its own bridge
interface (created here, removed after; never --bridge=none: a dockerd started with it deletes
the host's docker0, which the main engine uses), no iptables changes, and is stopped by its pid.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from conftest import FIXTURE_RULES

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
DOCKER = "/usr/bin/docker"
BASE = "local/bookworm:base"
PREFIX = "tfforge-matrix"
# bookworm's gcc-12 (in every recipe's range): the prepared image's tag names no Debian suite
FIXTURE_ARGS = (
    "--bazel-provider",
    "debian",
    "--gcc-version",
    "12.2.0",
    *FIXTURE_RULES,
)


@dataclass(frozen=True)
class Daemon:
    name: str
    pid: int
    host: str  # DOCKER_HOST value
    data_root: Path
    exec_root: Path
    log: Path

    def docker(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, "-H", self.host, *args], capture_output=True, **kw)


def _bridge(name: str, subnet: int, up: bool) -> str:
    bridge = f"{name}-br"[:15]
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    if up:
        for cmd in (
            ["ip", "link", "add", bridge, "type", "bridge"],
            ["ip", "addr", "add", f"172.31.{subnet}.1/24", "dev", bridge],
            ["ip", "link", "set", bridge, "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)
    return bridge


def start_daemon(name: str, log_dir: Path, subnet: int) -> Daemon:
    """subnet: N of 172.31.N.0/24 for the daemon's own bridge."""
    data_root, exec_root = Path(f"/var/lib/{name}"), Path(f"/run/{name}")
    sock, pidfile = f"/run/{name}.sock", f"/run/{name}.pid"
    log = log_dir / f"{name}.log"
    cmd = [
        "dockerd",
        "--data-root",
        str(data_root),
        "--exec-root",
        str(exec_root),
        "-H",
        f"unix://{sock}",
        "--pidfile",
        pidfile,
        "--bridge",
        _bridge(name, subnet, True),
        "--iptables=false",
        "--ip-masq=false",
        "--storage-driver=overlay2",
        "--containerd-namespace",
        name,
        "--containerd-plugins-namespace",
        f"{name}-plugins",
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    d = Daemon(name, proc.pid, f"unix://{sock}", data_root, exec_root, log)
    for _ in range(120):
        if proc.poll() is not None:
            raise RuntimeError(f"dockerd {name} exited: {log.read_text()[-2000:]}")
        if d.docker("info", timeout=30).returncode == 0:
            return d
        time.sleep(0.5)
    stop_daemons([d])
    raise RuntimeError(f"dockerd {name} did not answer; see {log}")


def _children(pid: int) -> list[int]:
    """Direct children of pid (its managed containerd), read from /proc."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def stop_daemons(daemons: list[Daemon], *, remove: bool = False) -> None:
    """SIGTERM the daemons we started and their managed containerd (by pid, all at once; dockerd
    otherwise waits ~30 s for containerd), wait; remove=True also deletes their data roots
    (kept by default: the next run then finds the base image there, ~50 s saved)."""
    pids = []
    for d in daemons:
        for pid in (d.pid, *_children(d.pid)):
            try:
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 30
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                if pid == os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:  # not our child (containerd): poll for it
                if not Path(f"/proc/{pid}").exists():
                    break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for d in daemons:
        _bridge(d.name, 0, False)
        if remove:
            subprocess.run(["umount", "-R", str(d.exec_root)], capture_output=True)
    if remove:
        threads = [
            threading.Thread(target=shutil.rmtree, args=(p,), kwargs={"ignore_errors": True})
            for d in daemons
            for p in (d.data_root, d.exec_root)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def copy_image(ref: str, to: list[Daemon], folder: Path) -> None:
    """docker save REF once, then docker -H X load into every daemon at once (no registry)."""
    to = [d for d in to if d.docker("image", "inspect", ref).returncode != 0]
    if not to:
        return
    archive = folder / "image.tar"
    subprocess.run([DOCKER, "save", "-o", str(archive), ref], check=True, capture_output=True)
    loads = [
        subprocess.Popen(
            [DOCKER, "-H", d.host, "load", "-i", str(archive)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for d in to
    ]
    errors = [p.stderr.read().decode() for p in loads if p.wait() != 0]
    archive.unlink()
    if errors:
        raise RuntimeError(f"loading {ref} failed: {errors}")


def toolchain_image(apt_packages: list[str]) -> str:
    """BASE plus the build's Debian packages, built on the main engine (BuildKit-cached).

    Stands for a team's prepared build image: a fresh daemon then spends seconds, not minutes,
    in the toolchain stage (whose apt-get install finds everything installed)."""
    digest = hashlib.sha256(" ".join(sorted(apt_packages)).encode()).hexdigest()[:12]
    tag = f"{PREFIX}/toolchain:{digest}"
    dockerfile = (
        f"FROM {BASE}\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive "
        f"apt-get install -y --no-install-recommends {' '.join(sorted(apt_packages))}"
        " && rm -rf /var/lib/apt/lists/*\n"
    )
    proc = subprocess.run(
        [DOCKER, "build", "-t", tag, "-"],
        input=dockerfile,
        text=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        timeout=1200,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"building {tag} failed: {proc.stderr[-2000:]}")
    return tag


def fresh_source(dest: Path, overlay: str = "") -> Path:
    """The tfws fixture (with an overlay such as tfws_deps laid over it) with a new comment in
    each of its own C/C++ files: every compile action of the fixture's own code is new to every
    cache (Bazel's action keys hash the inputs), so hits come only from this run. The external
    dependencies' actions (abseil's) keep their keys: the same archive, flags and toolchain."""
    folder = dest / "tfws"
    shutil.copytree(FIXTURES / "tfws", folder)
    if overlay:
        shutil.copytree(FIXTURES / overlay, folder, dirs_exist_ok=True)
    nonce = uuid.uuid4().hex
    for c_file in [*folder.rglob("*.c"), *folder.rglob("*.cc")]:
        c_file.write_text(c_file.read_text() + f"/* run {nonce} */\n")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
