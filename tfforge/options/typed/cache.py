"""The typed options of cache. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfforge.options.base import Options
from tfforge.options.typed.enums import CacheAction


@dataclass(frozen=True, kw_only=True)
class CacheOptions(Options):
    """A Bazel remote cache for a team that has none (`cache serve`)."""

    # serve: run an nginx WebDAV Bazel HTTP cache until Ctrl-C
    cache_action: CacheAction
    # TCP port the Bazel cache listens on
    cache_port: int = 9090
    # address the Bazel cache listens on; loopback unless you put auth + TLS in front
    cache_bind: str = "127.0.0.1"
    # htpasswd file: clients must send basic auth (TFFORGE_REMOTE_HEADER)
    cache_htpasswd: Path | None = None
    # where the cache lives
    cache_folder: Path | None = None
    # serve the cache on a non-loopback --bind (needs --htpasswd too)
    cache_allow_remote: bool = False
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
