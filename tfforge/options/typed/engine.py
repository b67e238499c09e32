"""The typed options of engine. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass

from tfforge.options.base import Options


@dataclass(frozen=True, kw_only=True)
class EngineOptions(Options):
    """Which docker client builds use, the engine's version, BuildKit, and the base image."""

    # base image to look for (made by scripts/make-base-image.sh)
    engine_image: str = "local/bookworm:base"
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
    # the docker client builds use
    docker: str | None = None
