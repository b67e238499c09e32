"""A Bazel HTTP remote cache on nginx's WebDAV module, for a team that has none.

Bazel's HTTP cache protocol is plain GET/PUT of /ac/<sha256> and /cas/<sha256> under the URL's
path; nginx serves it with `dav_methods PUT` and `create_full_put_path`. The server listens on
loopback by default. A non-loopback address is refused unless the caller opts in
(`allow_remote`) and gives an htpasswd file: whoever can PUT can poison every build that reads
the cache. Put TLS in front of it too (docs/how-to/share-a-bazel-cache.md).

The configuration is written only from validated parts (`listen_address`, `check_port`,
`grammar.plain_path`): an address is an IP literal parsed by `ipaddress`, a port an int, a path
plain characters, so no value can end a directive and start another.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tfforge import grammar, procs
from tfforge.errors import BuildError, ConfigError
from tfforge.files import write_atomic
from tfforge.text import clip, plain

NGINX = "nginx"


@dataclass(frozen=True)
class CacheServer:
    pid: int
    url: str  # what to pass to --remote-cache
    store: Path  # where the cache entries live
    config: Path


def listen_address(
    bind: str, where: str = "--bind"
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """`bind` as an IP address (no host names, no zone, nothing after it)."""
    try:
        address = ipaddress.ip_address(str(bind).strip())
    except ValueError:
        raise ConfigError(
            f"{where} {clip(plain(repr(bind)))} is not an IP address; pass one such as "
            "127.0.0.1 (this machine) or a private interface's address"
        ) from None
    return address


def check_port(port: object, where: str = "--port") -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where} {clip(plain(repr(port)))}: must be a whole number 1-65535")
    return port


def check_exposure(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    htpasswd: Path | None,
    allow_remote: bool,
    where: str = "--bind",
) -> None:
    """A writable cache off loopback needs an explicit opt-in and an htpasswd file."""
    if address.is_loopback:
        return
    if not allow_remote or htpasswd is None:
        raise ConfigError(
            f"{where} {address} is reachable from other machines, and whoever can write to the "
            "cache can poison every build that reads it; pass --allow-remote and --htpasswd "
            "FILE (basic auth) to serve it there, or bind 127.0.0.1"
        )


def nginx_config(
    *,
    state: Path,
    store: Path,
    bind: str,
    port: int,
    htpasswd: Path | None = None,
    run_as_root: bool = False,
) -> str:
    """An nginx.conf serving `store` read/write over WebDAV PUT on bind:port (each part is
    validated first; ConfigError names the one that is not plain)."""
    address = listen_address(bind)
    port = check_port(port)
    state = Path(grammar.plain_path(state, "cache state folder"))
    store = Path(grammar.plain_path(store, "cache store folder"))
    if htpasswd is not None:
        htpasswd = Path(grammar.plain_path(htpasswd, "--htpasswd"))
    listen = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
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
        f"        listen {listen};\n"
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
    allow_remote: bool = False,
) -> CacheServer:
    """Start nginx in the background (own session, ended when tfforge dies); stop it with
    stop(pid). ConfigError for a bad address, port or path, or an exposed cache without
    `allow_remote` and an htpasswd file."""
    address = listen_address(bind)
    check_port(port)
    check_exposure(address, htpasswd, allow_remote)
    exe = shutil.which(NGINX) or (shutil.which(NGINX, path="/usr/sbin:/sbin") or "")
    if not exe:
        raise ConfigError(
            "nginx is not installed; install it: apt-get install -y nginx-light "
            "(Debian's nginx has the WebDAV module Bazel's HTTP cache needs)"
        )
    state = Path(state).resolve()
    store = state / "store"
    for d in (state, store, state / "body"):
        d.mkdir(parents=True, exist_ok=True)
    conf = state / "nginx.conf"
    write_atomic(
        conf,
        nginx_config(
            state=state,
            store=store,
            bind=bind,
            port=port,
            htpasswd=Path(htpasswd).resolve() if htpasswd else None,
            run_as_root=os.geteuid() == 0,
        ).encode(),
    )
    log = state / "error.log"
    with open(state / "stderr.log", "w") as err:
        proc = subprocess.Popen(
            [exe, "-c", str(conf), "-p", str(state), "-e", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
            preexec_fn=procs.die_with_parent,
        )
    _wait_listening(str(address), port, proc, state / "stderr.log")
    host = f"[{address}]" if address.version == 6 else str(address)
    return CacheServer(proc.pid, f"http://{host}:{port}/{path}", store, conf)


def stop(pid: int, timeout: float = 10) -> None:
    """Stop the nginx master we started (SIGQUIT: graceful), then wait for it; its workers
    (its process group, which start() made) are killed if they outlive it."""
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
            return  # a graceful quit: the master outlives its workers
        time.sleep(0.1)
    # The master did not quit: kill its whole group (its own session, so only nginx's).
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def entries(store: Path) -> dict[str, int]:
    """How many action results and blobs the cache holds."""
    return {kind: sum(1 for p in store.rglob(f"{kind}/*") if p.is_file()) for kind in ("ac", "cas")}
