"""The typed options of matrix. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tfforge.options.base import Options
from tfforge.options.typed.enums import EmitFormat, MatrixRunner
from tfforge.options.typed.spec import SpecOptions


@dataclass(frozen=True, kw_only=True)
class MatrixOptions(Options):
    """A fleet's build matrix: one build per best target (x TF x Python); emit it or run it."""

    spec: SpecOptions = field(default_factory=SpecOptions)
    # host files: a folder (e.g. hosts/), a glob, or a comma-separated list of snapshots (.json from
    # detect --save) and raw /proc/cpuinfo copies
    fleet: str
    # comma list of TensorFlow releases to build
    matrix_tf_versions: tuple[str, ...] = ()
    # comma list of Pythons to build for
    matrix_python_versions: tuple[str, ...] = ()
    # one build for the whole fleet: the single common target `match` gives
    one: bool = False
    # show the plan and run nothing: build renders and prints the docker and bazel commands; matrix
    # prints the cells and writes nothing
    dry_run: bool = False
    # write the matrix for an engine: github (strategy.matrix), gitlab (parallel:matrix) or slurm
    # (sbatch array script)
    emit: EmitFormat | None = None
    # where --emit writes
    matrix_out: Path | None = None
    # slurm: submit the array with sbatch, follow it, collect wheels and logs (assumes the project
    # folder is on storage every node shares)
    matrix_run: MatrixRunner | None = None
    # cells running at once (Slurm array throttle %N, GitHub max-parallel)
    matrix_concurrent: int = 2
    # seconds a build may run before it is stopped (matrix: each cell's build)
    build_timeout: float = 21600.0
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
    # GCC version the recommended target and flags are for (matrix plans with it unless
    # --gcc-version is given)
    match_gcc_version: str = "12.2.0"
