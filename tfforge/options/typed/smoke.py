"""The typed options of smoke. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfforge.options.base import Options
from tfforge.options.typed.enums import SmokeMode


@dataclass(frozen=True, kw_only=True)
class SmokeOptions(Options):
    """Install a wheel in its cached venv, import TensorFlow, check g2p on the golden words."""

    # wheel file, name in wheels/ or PyPI pin (tensorflow-cpu==2.21.0); 'current' = the TensorFlow
    # of the Python running tfforge (invoke has no optional positionals)
    smoke_wheel: str
    # golden file of `word<TAB>phonemes` lines
    golden: Path | None = None
    # eager, graph (tf.function), frozen (GraphDef in a Session) or xla
    smoke_mode: SmokeMode = SmokeMode.GRAPH
    # words per model call
    smoke_batch: int = 64
    # timed passes over the golden words; words/s is their median
    smoke_repeat: int = 3
    # seconds the probe or the runner may take
    smoke_timeout: float = 900.0
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
