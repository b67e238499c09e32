"""A download mirror with the host/path layout (https://github.com/a/b -> MIRROR/github.com/a/b,
as mirror.tensorflow.org serves TensorFlow's dependencies), and where a kit came from.

`--mirror URL` sends Bazel's downloads there through Bazel's downloader config (`rewrite (.*)
URL/$1`); it decides nothing about the bytes (every download is pinned by sha256), so it is a
run-time setting, not part of the build id.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tfforge.errors import ConfigError
from tfforge.text import is_loopback, mask_url

_HOST = re.compile(r"^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$")
_PATH = re.compile(r"^[A-Za-z0-9._~/%-]*$")
MAX_PROBES = 16


def check(url: str, option: str = "--mirror") -> str:
    """The mirror URL without a trailing '/', or ConfigError naming what is wrong."""
    bad = f"{option} {mask_url(url)[:100]!r}"  # credentials and token-like parameters masked
    if len(url) > 1024 or any(c.isspace() for c in url):
        raise ConfigError(f"{bad}: must be one URL without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{bad}: not a URL") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{bad}: the scheme must be http or https")
    if parts.username is not None or "@" in parts.netloc:
        raise ConfigError(f"{bad}: no credentials in the URL (Bazel reads ~/.netrc)")
    if not parts.hostname or not _HOST.fullmatch(parts.hostname) or port == 0:
        raise ConfigError(f"{bad}: the host must be a name or address with an optional :port")
    if parts.query or parts.fragment or not _PATH.fullmatch(parts.path):
        raise ConfigError(f"{bad}: only letters, digits and ._~/%- in the path; no query")
    return url.rstrip("/")


def network(url: str) -> str | None:
    """'host' for a mirror on this machine's loopback (a build step has its own), else None."""
    return "host" if url and is_loopback(urlsplit(url).hostname or "") else None


def via(url: str, mirror: str) -> str:
    """Where `url` is on the mirror (host/path layout); the url itself without a mirror."""
    if not mirror:
        return url
    rest = url.split("://", 1)[1] if "://" in url else url
    return f"{mirror}/{rest}"


def endpoint(url: str) -> str | None:
    """host:port a URL connects to, or None for one that names no host."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    host = parts.hostname or ""
    if not host or port is None or not _HOST.fullmatch(host) or ":" in host:
        return None
    return f"{host}:{port}"


def probes(mirror: str, urls: list[str]) -> list[str]:
    """host:port a kit build must NOT reach: the capture's mirror, else the download hosts."""
    found = [endpoint(mirror)] if mirror else [endpoint(u) for u in urls]
    out: list[str] = []
    for e in found:
        if e and e not in out:
            out.append(e)
    return out[:MAX_PROBES]
