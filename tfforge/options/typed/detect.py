"""The typed options of detect. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfforge.options.base import Options


@dataclass(frozen=True, kw_only=True)
class DetectOptions(Options):
    """What this CPU supports, what the installed TensorFlow uses, and the build target for it."""

    # print one JSON document (for machines) instead of the report
    json: bool = False
    # write a host snapshot to this path (e.g. hosts/web-1.json)
    save: Path | None = None
    # analyse a saved /proc/cpuinfo text from another machine instead of this host
    cpuinfo: Path | None = None
    # GCC version the recommended target and flags are for (matrix plans with it unless
    # --gcc-version is given)
    match_gcc_version: str = "12.2.0"
    # skip probing the installed TensorFlow
    no_tf: bool = False
    # print the stdlib-only script that captures another host's CPU and runtime (run it there:
    # python3 capture.py > hosts/NAME.json)
    capture_script: bool = False
    # show a traceback on errors
    debug: bool = False
    # seconds detect waits for `import tensorflow` in a subprocess
    tf_probe_timeout: float = 60.0
