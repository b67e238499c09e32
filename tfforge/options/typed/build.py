"""The typed options of build. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfforge.options.base import Options
from tfforge.options.typed.spec import SpecOptions


@dataclass(frozen=True, kw_only=True)
class BuildOptions(Options):
    """Build a tuned TensorFlow wheel into wheels/ (renders first; --dry-run prints the plan)."""

    spec: SpecOptions = field(default_factory=SpecOptions)
    # show the plan and run nothing: build renders and prints the docker and bazel commands; matrix
    # prints the cells and writes nothing
    dry_run: bool = False
    # seconds a build may run before it is stopped (matrix: each cell's build)
    build_timeout: float = 21600.0
    # a kit folder (KITS/BUILD_ID, made by `kit`): build: its own build with no network, every input
    # from the kit, no other build option given; rebuild: from this kit of the build; kit check: the
    # kit to hash against its manifest
    kit: str | None = None
    # a download mirror with the host/path layout (e.g. http://127.0.0.1:8081 serving
    # 127.0.0.1:8081/github.com/...): every Bazel download and pip's index go there; not part of the
    # build id (every download is pinned by sha256)
    mirror: str | None = None
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
    # the docker client builds use
    docker: str | None = None
