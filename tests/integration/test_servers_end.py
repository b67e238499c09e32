"""The servers tfforge starts end with it, and a writable cache is never exposed by accident.

Real nginx and real pypiserver, started by `invoke cache serve` / `invoke serve` as a user runs
them; tfforge is then stopped by SIGTERM, SIGHUP, or killed outright (SIGKILL, which no handler
sees), and the server's process must be gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, invoke, need


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_args(tmp_path: Path) -> tuple[str, ...]:
    """`cache serve` on a free loopback port with its folder under tmp_path."""
    return ("cache", "serve", "--port", str(_free_port()), "--folder", str(tmp_path / "s"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def _start(args: list[str], env: dict) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "-r", str(ROOT), *args],
        cwd=env["TFFORGE_ROOT"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("}"):
            return proc, json.loads("".join(lines))
    proc.kill()
    raise AssertionError(f"no JSON from {args}: {''.join(lines)} {proc.stderr.read()}")


def _nginx() -> None:
    need(
        shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists(),
        "nginx is not installed (apt-get install -y nginx-light)",
    )


@pytest.fixture
def env(tmp_path):
    (tmp_path / "wheels").mkdir()
    return {**os.environ, "TFFORGE_ROOT": str(tmp_path), "TFFORGE_CACHE": str(tmp_path / "c")}


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_nginx_ends_with_tfforge(tmp_path, env, how):
    _nginx()
    proc, doc = _start([*_serve_args(tmp_path), "--json"], env)
    try:
        assert _alive(doc["pid"])
        proc.send_signal(how)
        assert _gone_within(doc["pid"], 15), f"nginx {doc['pid']} outlived tfforge ({how!r})"
        proc.wait(timeout=15)
    finally:
        if _alive(doc["pid"]):
            os.kill(doc["pid"], signal.SIGKILL)
        proc.kill()


@pytest.mark.parametrize("how", [signal.SIGHUP, signal.SIGKILL])
def test_pypiserver_ends_with_tfforge(env, how):
    proc, doc = _start(["serve", "--port", str(_free_port()), "--json"], env)
    try:
        assert _alive(doc["pid"])
        proc.send_signal(how)
        assert _gone_within(doc["pid"], 15), f"pypiserver outlived tfforge ({how!r})"
        proc.wait(timeout=15)
    finally:
        if _alive(doc["pid"]):
            os.kill(doc["pid"], signal.SIGKILL)
        proc.kill()


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--bind", "0.0.0.0"], "--allow-remote and --htpasswd"),
        (["--bind", "0.0.0.0", "--allow-remote"], "--htpasswd"),
        (["--bind", "127.0.0.1:1; location /etc { root /; } #"], "not an IP address"),
        (["--bind", "localhost"], "not an IP address"),
    ],
)
def test_a_cache_is_not_exposed_by_accident(tmp_path, env, extra, needle):
    _nginx()
    proc = invoke(
        *_serve_args(tmp_path), *extra, cwd=Path(env["TFFORGE_ROOT"]), env=env, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and needle in proc.stderr
    assert not (tmp_path / "s" / "nginx.conf").exists()


def test_the_environment_cannot_expose_it_either(tmp_path, env):
    _nginx()
    proc = invoke(
        *_serve_args(tmp_path),
        cwd=Path(env["TFFORGE_ROOT"]),
        env={**env, "TFFORGE_CACHE_BIND": "0.0.0.0"},
        timeout=60,
    )
    assert proc.returncode == 2
    assert "TFFORGE_CACHE_BIND 0.0.0.0" in proc.stderr and "--allow-remote" in proc.stderr
