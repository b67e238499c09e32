"""The typed options of match. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfforge.options.base import Options
from tfforge.options.typed.spec import SpecOptions


@dataclass(frozen=True, kw_only=True)
class MatchOptions(Options):
    """The best build target every host in a fleet can run, and why others are refused."""

    spec: SpecOptions = field(default_factory=SpecOptions)
    # host files: a folder (e.g. hosts/), a glob, or a comma-separated list of snapshots (.json from
    # detect --save) and raw /proc/cpuinfo copies
    fleet: str
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # GCC version the recommended target and flags are for (matrix plans with it unless
    # --gcc-version is given)
    match_gcc_version: str = "12.2.0"
    # comma-separated features the target must have (e.g. avx512_vnni); fails listing the hosts that
    # lack them
    require: tuple[str, ...] = ()
    # show a traceback on errors
    debug: bool = False
