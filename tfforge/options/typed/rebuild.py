"""The typed options of rebuild. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass

from tfforge.options.base import Options


@dataclass(frozen=True, kw_only=True)
class RebuildOptions(Options):
    """Rebuild a build from empty caches and compare with its wheel: exit 0 iff byte-identical."""

    # a finished build's id (a folder in builds/ with provenance.json and apt.lock)
    build_id: str
    # vary the second build reprotest-style: build path, time zone, locale, umask, host name, CPU
    # count
    vary: bool = False
    # seconds a build may run before it is stopped (matrix: each cell's build)
    build_timeout: float = 21600.0
    # a kit folder (KITS/BUILD_ID, made by `kit`): build: its own build with no network, every input
    # from the kit, no other build option given; rebuild: from this kit of the build; kit check: the
    # kit to hash against its manifest
    kit: str | None = None
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
    # the docker client builds use
    docker: str | None = None
