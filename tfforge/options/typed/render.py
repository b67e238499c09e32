"""The typed options of render. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfforge.options.base import Options
from tfforge.options.typed.spec import SpecOptions


@dataclass(frozen=True, kw_only=True)
class RenderOptions(Options):
    """Render a pinned, reproducible build context into builds/<id>/ (Dockerfile, build.json)."""

    spec: SpecOptions = field(default_factory=SpecOptions)
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
