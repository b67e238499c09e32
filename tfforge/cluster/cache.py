"""A Bazel HTTP remote cache on nginx's WebDAV module, for a team that has none.

Bazel's HTTP cache protocol is plain GET/PUT of /ac/<sha256> and /cas/<sha256> under the URL's
path; nginx serves it with `dav_methods PUT` and `create_full_put_path`. The server listens on
loopback by default. To share it with build hosts, bind it to a private interface and put basic
auth (htpasswd) and TLS in front (see docs/how-to/share-a-bazel-cache.md); never expose a
writable cache to the internet: whoever can PUT can poison every build that reads it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tfforge.errors import BuildError, ConfigError

NGINX = "nginx"


@dataclass(frozen=True)
class CacheServer:
    pid: int
    url: str  # what to pass to --remote-cache
    store: Path  # where the cache entries live
    config: Path


def nginx_config(
    *,
    state: Path,
    store: Path,
    bind: str,
    port: int,
    htpasswd: Path | None = None,
    run_as_root: bool = False,
) -> str:
    """An nginx.conf serving `store` read/write over WebDAV PUT on bind:port."""
    auth = (
        (
            f'            auth_basic "tfforge bazel cache";\n'
            f"            auth_basic_user_file {htpasswd};\n"
        )
        if htpasswd
        else ""
    )
    return (
        "daemon off;\n"
        "worker_processes 2;\n"
        + ("user root;\n" if run_as_root else "")
        + f"pid {state}/nginx.pid;\n"
        f"error_log {state}/error.log warn;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        f"    access_log {state}/access.log;\n"
        f"    client_body_temp_path {state}/body;\n"
        "    server {\n"
        f"        listen {bind}:{port};\n"
        "        client_max_body_size 0;\n"
        "        location / {\n"
        f"            root {store};\n"
        "            dav_methods PUT;\n"
        "            create_full_put_path on;\n"
        "            dav_access user:rw group:r all:r;\n" + auth + "        }\n"
        "    }\n"
        "}\n"
    )


def _wait_listening(
    bind: str, port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 10
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BuildError(
                f"nginx exited ({proc.returncode}): "
                + " ".join(log.read_text(errors="replace").split()[-40:])
            )
        try:
            socket.create_connection((bind, port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    stop(proc.pid)
    raise BuildError(f"nginx did not listen on {bind}:{port} within {timeout:g}s; see {log}")


def start(
    state: Path,
    *,
    port: int,
    bind: str = "127.0.0.1",
    htpasswd: Path | None = None,
    path: str = "cache",
) -> CacheServer:
    """Start nginx in the background (own session); stop it with stop(pid)."""
    exe = shutil.which(NGINX) or (shutil.which(NGINX, path="/usr/sbin:/sbin") or "")
    if not exe:
        raise ConfigError(
            "nginx is not installed; install it: apt-get install -y nginx-light "
            "(Debian's nginx has the WebDAV module Bazel's HTTP cache needs)"
        )
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port}: must be 1-65535")
    state = Path(state).resolve()
    store = state / "store"
    for d in (state, store, state / "body"):
        d.mkdir(parents=True, exist_ok=True)
    conf = state / "nginx.conf"
    conf.write_text(
        nginx_config(
            state=state,
            store=store,
            bind=bind,
            port=port,
            htpasswd=Path(htpasswd).resolve() if htpasswd else None,
            run_as_root=os.geteuid() == 0,
        )
    )
    log = state / "error.log"
    with open(state / "stderr.log", "w") as err:
        proc = subprocess.Popen(
            [exe, "-c", str(conf), "-p", str(state), "-e", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
    _wait_listening(bind, port, proc, state / "stderr.log")
    host = f"[{bind}]" if ":" in bind else bind
    return CacheServer(proc.pid, f"http://{host}:{port}/{path}", store, conf)


def stop(pid: int, timeout: float = 10) -> None:
    """Stop the nginx master we started (SIGQUIT: graceful), then wait for it."""
    try:
        os.kill(pid, signal.SIGQUIT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid if not _alive(pid) else 0
        if done:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def entries(store: Path) -> dict[str, int]:
    """How many action results and blobs the cache holds."""
    return {kind: sum(1 for p in store.rglob(f"{kind}/*") if p.is_file()) for kind in ("ac", "cas")}
