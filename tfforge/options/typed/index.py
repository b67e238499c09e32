"""The typed options of index. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass

from tfforge.options.base import Options


@dataclass(frozen=True, kw_only=True)
class IndexOptions(Options):
    """Write the static PEP 503 + PEP 691 simple index of wheels/ into wheels/simple/."""

    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
