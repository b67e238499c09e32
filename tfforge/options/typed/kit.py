"""The typed options of kit. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass

from tfforge.options.base import Options


@dataclass(frozen=True, kw_only=True)
class KitOptions(Options):
    """Capture every input of a build into a kit (`kit BUILD_ID`), or check one (`kit check --kit
    KIT`).
    """

    # a finished build's id: capture its inputs into a kit; or 'check' (with --kit)
    kit_action: str
    # a kit folder (KITS/BUILD_ID, made by `kit`): build: its own build with no network, every input
    # from the kit, no other build option given; rebuild: from this kit of the build; kit check: the
    # kit to hash against its manifest
    kit: str | None = None
    # kits folder; its kits share one content-addressed store
    kits_dir: str | None = None
    # a download mirror with the host/path layout (e.g. http://127.0.0.1:8081 serving
    # 127.0.0.1:8081/github.com/...): every Bazel download and pip's index go there; not part of the
    # build id (every download is pinned by sha256)
    mirror: str | None = None
    # seconds a build may run before it is stopped (matrix: each cell's build)
    build_timeout: float = 21600.0
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
    # the docker client builds use
    docker: str | None = None
