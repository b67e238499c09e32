"""Serving a wheels folder with pypiserver on loopback: the command line, start, wait, stop.

Without an htpasswd file pypiserver refuses every upload (it has no way to authenticate), so the
index is read-only; with one, uploads need a user from it and downloads stay open.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
import time
from pathlib import Path

from tfforge import procs
from tfforge.errors import ConfigError, PublishError
from tfforge.files import read_user_bytes
from tfforge.text import clip, plain

LOOPBACK = "127.0.0.1"


HTPASSWD_MAX = 1 << 20  # a line per user: a few thousand users at most


def load_htpasswd(path: Path) -> Path:
    """The htpasswd file, read through the one input layer (a regular file, at most
    HTPASSWD_MAX bytes) and checked to hold at least one user."""
    from passlib.apache import HtpasswdFile

    data = read_user_bytes(
        path,
        limit=HTPASSWD_MAX,
        missing="htpasswd file does not exist; create it (docs/how-to/"
        "publish-to-a-private-index.md) or leave --htpasswd out",
    )
    try:
        users = HtpasswdFile.from_string(data).users()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"htpasswd file {clip(plain(str(path)))!r} is not readable ({clip(exc)}); recreate it"
        ) from None
    if not users:
        raise ConfigError(
            f"htpasswd file {str(path)!r} has no users; add one "
            "(docs/how-to/publish-to-a-private-index.md)"
        )
    return path.resolve()


def pypiserver_argv(root: Path, port: int, htpasswd: Path | None) -> list[str]:
    """The pypiserver command: loopback only, no PyPI fallback, sha256 links, no overwrite."""
    argv = [
        sys.executable,
        "-m",
        "pypiserver",
        "run",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--disable-fallback",
        "--hash-algo",
        "sha256",
    ]
    if htpasswd is not None:
        argv += ["--passwords", str(htpasswd), "--authenticate", "update"]
    return argv + [str(root)]


def check_port(port: int, where: str = "--port") -> None:
    """ConfigError unless `port` is a TCP port free on the loopback address; `where` names the
    flag, variable or toml key the port came from."""
    if not 0 < port < 65536:
        raise ConfigError(f"{where} {port} is not a TCP port; pick 1-65535, e.g. 8080")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc})"
            raise ConfigError(f"port {port} on {LOOPBACK} {why}; pick another with --port") from exc


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PublishError(
                f"pypiserver exited with code {proc.returncode} before it "
                "listened; see its messages above"
            )
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise PublishError(f"pypiserver did not listen on {LOOPBACK}:{port} within {timeout_s:.0f}s")


def start(argv: list[str]) -> subprocess.Popen[bytes]:
    """Start the server; it gets SIGTERM if tfforge dies (even by SIGKILL)."""
    return subprocess.Popen(argv, preexec_fn=procs.die_with_parent)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
