"""The typed options of serve. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfforge.options.base import Options


@dataclass(frozen=True, kw_only=True)
class ServeOptions(Options):
    """Serve wheels/ with pypiserver on 127.0.0.1 until Ctrl-C (a team's quick private index)."""

    # TCP port on 127.0.0.1
    serve_port: int = 8080
    # Apache htpasswd file whose users may upload; without it the index is read-only
    serve_htpasswd: Path | None = None
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
