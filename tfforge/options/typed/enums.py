"""The options' choices, as enums. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from enum import StrEnum


class Compiler(StrEnum):
    GCC = "gcc"
    CLANG = "clang"


class BazelProvider(StrEnum):
    BAZELISK = "bazelisk"
    DEBIAN = "debian"
    IMAGE = "image"


class SmokeMode(StrEnum):
    EAGER = "eager"
    GRAPH = "graph"
    FROZEN = "frozen"
    XLA = "xla"


class EmitFormat(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    SLURM = "slurm"


class MatrixRunner(StrEnum):
    SLURM = "slurm"


class CacheAction(StrEnum):
    SERVE = "serve"


ENUMS: dict[str, type[StrEnum]] = {
    "Compiler": Compiler,
    "BazelProvider": BazelProvider,
    "SmokeMode": SmokeMode,
    "EmitFormat": EmitFormat,
    "MatrixRunner": MatrixRunner,
    "CacheAction": CacheAction,
}
