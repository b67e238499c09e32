"""Publishing: credentials handling, input checks, and an end-to-end run against a real pypiserver
(started with `invoke serve`, htpasswd authentication) that pip then installs from."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from conftest import ROOT, invoke, need
from publish_helpers import (
    PASSWORD,
    USER,
    env_for,
    free_port,
    fresh_venv,
    isolated_pip_env,
    make_wheel,
    no_secrets,
    one_line_error,
    pip_install,
    tree,
)

# ---- integration: a real pypiserver with htpasswd ------------------------------------------


@pytest.fixture(scope="module")
def index_server(tmp_path_factory):
    """`invoke serve` on a free loopback port with an htpasswd file; stopped with SIGTERM."""
    need(importlib.util.find_spec("pypiserver") is not None, "pypiserver is not installed")
    need(importlib.util.find_spec("passlib") is not None, "passlib is not installed")
    from passlib.apache import HtpasswdFile

    root = tmp_path_factory.mktemp("server")
    (root / "wheels").mkdir()
    htpasswd = root / "htpasswd"
    users = HtpasswdFile(str(htpasswd), new=True)
    users.set_password(USER, PASSWORD)
    users.save()
    port = free_port()
    log = open(root / "serve.log", "w")  # noqa: SIM115 - the server's stderr while it runs
    stdout_path = root / "serve.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "invoke",
            "-r",
            str(ROOT),
            "serve",
            "--port",
            str(port),
            "--htpasswd",
            str(htpasswd),
            "--json",
        ],
        cwd=ROOT,
        env=env_for(root, None, None),
        stdout=open(stdout_path, "w"),  # noqa: SIM115 - the server's stdout while it runs
        stderr=log,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        doc = None
        while doc is None:
            assert proc.poll() is None, (root / "serve.log").read_text()
            assert time.monotonic() < deadline, "invoke serve did not report readiness"
            try:
                doc = json.loads(stdout_path.read_text())
            except ValueError:
                time.sleep(0.2)
        with urllib.request.urlopen(doc["url"], timeout=10) as resp:
            assert resp.status == 200
        yield {"root": root, "wheels": root / "wheels", "port": port, **doc}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        log.close()
        # serve stopped its pypiserver child too: nothing listens any more
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert code == 0, (root / "serve.log").read_text()


@pytest.mark.integration
def test_publish_conflict_credentials_and_pip_install_with_hashes(index_server, tmp_path):
    project = tmp_path / "project"
    wheel = make_wheel(project / "wheels", "tfdemo", "1.0.0+avx2.fma", value=11)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    url = index_server["upload_url"]
    before = tree(project)

    # first upload
    proc = invoke("publish", str(wheel), "--repository", url, "--json", env=env_for(project))
    assert proc.returncode == 0, proc.stderr
    no_secrets(proc.stdout, proc.stderr)
    doc = json.loads(proc.stdout)
    assert doc["wheels"] == [
        {
            "file": wheel.name,
            "sha256": sha,
            "size": wheel.stat().st_size,
            "status": "uploaded",
            "seconds": doc["wheels"][0]["seconds"],
        }
    ]
    served = index_server["wheels"] / wheel.name
    assert hashlib.sha256(served.read_bytes()).hexdigest() == sha

    # re-upload: a conflict, one line, nothing replaced
    proc = invoke("publish", str(wheel), "--repository", url, env=env_for(project))
    assert "already exists" in one_line_error(proc, 1)
    no_secrets(proc.stdout, proc.stderr)
    proc = invoke(
        "publish",
        str(wheel),
        "--repository",
        url,
        "--skip-existing",
        "--json",
        env=env_for(project),
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["wheels"][0]["status"] == "skipped"

    # wrong password, and no credentials at all
    other = make_wheel(tmp_path / "other", "tfdemo", "1.0.1+avx2.fma")
    proc = invoke(
        "publish", str(other), "--repository", url, env=env_for(project, password="not-" + PASSWORD)
    )
    assert "refused the credentials" in one_line_error(proc, 1)
    no_secrets(proc.stdout, proc.stderr)
    assert "not-" + PASSWORD not in proc.stderr
    proc = invoke("publish", str(other), "--repository", url, env=env_for(project, None, None))
    assert "TWINE_PASSWORD" in one_line_error(proc, 2)
    assert not (index_server["wheels"] / other.name).exists()
    assert tree(project) == before

    # pip, isolated from this machine's config, installs it with --require-hashes
    env = isolated_pip_env(tmp_path)
    python = fresh_venv(tmp_path / "venv")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"tfdemo==1.0.0+avx2.fma --hash=sha256:{sha}\n")
    res = pip_install(
        python, env, "--index-url", index_server["url"], "--require-hashes", "-r", str(reqs)
    )
    assert res.returncode == 0, res.stdout + res.stderr
    got = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, tfdemo; print(m.version('tfdemo'), tfdemo.VALUE)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert got.stdout.split() == ["1.0.0+avx2.fma", "11"]
    # a wrong hash is refused: pip really checks the downloaded bytes
    reqs.write_text(f"tfdemo==1.0.0+avx2.fma --hash=sha256:{'0' * 64}\n")
    res = pip_install(
        fresh_venv(tmp_path / "venv2"),
        env,
        "--index-url",
        index_server["url"],
        "--require-hashes",
        "-r",
        str(reqs),
    )
    assert res.returncode != 0 and "DO NOT MATCH THE HASHES" in res.stderr
    # PEP 440: the public pin ==1.0.0 selects the local version 1.0.0+avx2.fma
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-deps",
            "--index-url",
            index_server["url"],
            "tfdemo==1.0.0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0 and "Would install tfdemo-1.0.0+avx2.fma" in res.stdout


@pytest.mark.integration
def test_a_wheel_failing_verification_is_not_uploaded(index_server, tmp_path):
    project = tmp_path / "project"
    good = make_wheel(project / "wheels", "tfgood", "1.0")
    bad = make_wheel(project / "wheels", "tfbad", "1.0", corrupt_record=True)
    before = tree(project)
    proc = invoke(
        "publish", f"{good},{bad}", "--repository", index_server["upload_url"], env=env_for(project)
    )
    line = one_line_error(proc, 1)
    assert "refusing to publish tfbad-1.0-py3-none-any.whl" in line
    assert "nothing was uploaded" in line
    # the good wheel was not uploaded either: checks run before any upload
    assert not (index_server["wheels"] / good.name).exists()
    assert not (index_server["wheels"] / bad.name).exists()
    assert tree(project) == before


@pytest.mark.integration
def test_server_down_is_one_line(tmp_path):
    project = tmp_path / "project"
    wheel = make_wheel(project / "wheels", "tfdemo", "1.0")
    before = tree(project)
    proc = invoke(
        "publish",
        str(wheel),
        "--repository",
        f"http://127.0.0.1:{free_port()}/",
        env=env_for(project),
    )
    assert "connection refused" in one_line_error(proc, 1)
    no_secrets(proc.stdout, proc.stderr)
    assert tree(project) == before


class _FaultServer:
    """A loopback TCP server that breaks uploads: 'drop' reads part of the request and closes
    the connection, 'stall' accepts and never reads nor answers."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.accepted = threading.Event()
        self.received = 0
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        self.accepted.set()
        if self.mode == "drop":
            while self.received < 256 * 1024:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                self.received += len(chunk)
            conn.close()

    def close(self):
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.mark.integration
def test_upload_cut_off_by_the_server(tmp_path):
    project = tmp_path / "project"
    wheel = make_wheel(project / "wheels", "tfdemo", "1.0", payload_bytes=4 * 1024 * 1024)
    before = tree(project)
    server = _FaultServer("drop")
    try:
        proc = invoke("publish", str(wheel), "--repository", server.url, env=env_for(project))
    finally:
        server.close()
    assert server.received > 0  # the upload had started
    line = one_line_error(proc, 1)
    assert "closed the connection during the upload" in line
    no_secrets(proc.stdout, proc.stderr)
    assert tree(project) == before


@pytest.mark.integration
def test_interrupted_upload_exits_130_and_timeout_exits_1(tmp_path):
    project = tmp_path / "project"
    wheel = make_wheel(project / "wheels", "tfdemo", "1.0", payload_bytes=8 * 1024 * 1024)
    before = tree(project)

    server = _FaultServer("stall")
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "invoke",
                "-r",
                str(ROOT),
                "publish",
                str(wheel),
                "--repository",
                server.url,
            ],
            cwd=ROOT,
            env=env_for(project),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert server.accepted.wait(60), "publish never connected"
        time.sleep(0.5)  # the upload is now blocked mid-body
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        server.close()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert "interrupted" in one_line_error(result, 130)
    no_secrets(stdout, stderr)
    assert tree(project) == before

    server = _FaultServer("stall")
    try:
        started = time.monotonic()
        proc = invoke(
            "publish",
            str(wheel),
            "--repository",
            server.url,
            "--timeout",
            "3",
            env=env_for(project),
        )
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert "did not finish within 3s" in one_line_error(proc, 1)
    assert elapsed < 30
    assert tree(project) == before
