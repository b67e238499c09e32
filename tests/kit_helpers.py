"""The tfws_deps fixture's dependencies and a loopback mirror serving them.

Shared by tests/integration/test_kit_offline.py and benchmarks/bench_matrix.py (--fixture deps). The
files the fixture's tensorflow/workspace2.bzl declares are downloaded once (Debian's from the
archive this machine uses, pip's wheel from PyPI) into the tfforge cache, checked against the
sha256 the workspace pins, then served on 127.0.0.1 in the mirror layout (host/path), as
`--mirror` expects.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import threading
import urllib.request
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
WORKSPACE2 = FIXTURES / "tfws_deps" / "tensorflow" / "workspace2.bzl"
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")


def declared() -> list[tuple[str, str]]:
    """(url, sha256) of every file the fixture's workspace2.bzl declares."""
    text = WORKSPACE2.read_text()
    bases = dict(re.findall(r'^(_[A-Z]+) = "([^"]+)"', text, re.M))
    found = re.findall(r'urls = \[(_[A-Z]+) \+ "([^"]+)"\],\s*sha256 = "([0-9a-f]{64})"', text)
    return [(bases[base] + path, sha) for base, path, sha in found]


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (deb.debian.org when none is configured)."""
    if SOURCES.is_file():
        found = re.search(r"^URIs:\s*(\S+)", SOURCES.read_text(), re.M)
        if found:
            return found.group(1).rstrip("/")
    return "http://deb.debian.org/debian"


def fetch_sources(cache: Path) -> Path:
    """The mirror folder (host/path layout) holding every declared archive, downloaded once."""
    archive = debian_mirror()
    for url, sha in declared():
        rel = url.split("://", 1)[1]
        dest = cache / rel
        if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Debian's files from the archive this machine uses; others (PyPI's) from their URL
        source = archive + "/" + url.split("/debian/", 1)[1] if "/debian/" in url else url
        partial_file = dest.with_suffix(".partial")
        with urllib.request.urlopen(source, timeout=120) as resp, open(partial_file, "wb") as fh:
            shutil.copyfileobj(resp, fh)
        got = hashlib.sha256(partial_file.read_bytes()).hexdigest()
        if got != sha:
            partial_file.unlink()
            raise RuntimeError(f"{source}: sha256 {got}, the fixture pins {sha}")
        partial_file.replace(dest)
    fetch_pypi(cache)
    return cache


LOCK = FIXTURES / "tfws_deps" / "requirements_lock_3_11.txt"


def locked() -> list[tuple[str, set[str]]]:
    """(name, sha256 hashes) of each requirement of the fixture's lock."""
    text = LOCK.read_text().replace("\\\n", " ")
    return [
        (m.group(1), set(re.findall(r"--hash=sha256:([0-9a-f]{64})", m.group(0))))
        for m in re.finditer(r"^([A-Za-z0-9._-]+)==\S+.*$", text, re.M)
    ]


def fetch_pypi(cache: Path) -> None:
    """The lock's files from PyPI (by the hashes it pins) in the mirror layout, and a simple
    index page for each (pypi.org/simple/NAME/), linking to them relatively."""
    for name, hashes in locked():
        page = cache / "pypi.org" / "simple" / name / "index.html"
        if page.is_file():
            continue
        with urllib.request.urlopen(f"https://pypi.org/simple/{name}/", timeout=60) as resp:
            html = resp.read().decode()
        links = []
        for url, sha in re.findall(
            r'href="(https://files\.pythonhosted\.org/[^"#]+)#sha256=([0-9a-f]{64})"', html
        ):
            if sha not in hashes:
                continue
            rel = url.split("://", 1)[1]
            dest = cache / rel
            if not dest.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                with urllib.request.urlopen(url, timeout=120) as resp:
                    data = resp.read()
                if hashlib.sha256(data).hexdigest() != sha:
                    raise RuntimeError(f"{url}: not the sha256 the lock pins")
                dest.write_bytes(data)
            links.append(f'<a href="../../../{rel}#sha256={sha}">{rel.rsplit("/", 1)[1]}</a>')
        if not links:
            raise RuntimeError(f"PyPI lists no file of {name} with the lock's hashes")
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(
            "<!DOCTYPE html><html><body>\n" + "<br>\n".join(links) + "\n</body></html>\n"
        )


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the base class names its argument `format`
        self.server.requests.append(self.path)


@contextmanager
def serve(folder: Path):
    """A loopback HTTP server for folder; yields (url, requests seen), stopped on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def canary(port: int):
    """A listener on a stopped server's port that counts the connections made to it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    sock.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = sock.accept()
            except OSError:
                continue
            seen.append(f"{peer[0]}:{peer[1]}")
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def deps_source(dest: Path, nonce: str = "") -> Path:
    """tfws with the tfws_deps overlay in dest/tfws (a NONCE file makes a new source digest)."""
    folder = dest / "tfws"
    shutil.copytree(FIXTURES / "tfws", folder)
    shutil.copytree(FIXTURES / "tfws_deps", folder, dirs_exist_ok=True)
    if nonce:
        (folder / "NONCE").write_text(nonce + "\n")
    return folder
