"""The typed options of verify. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass

from tfforge.options.base import Options


@dataclass(frozen=True, kw_only=True)
class VerifyOptions(Options):
    """Prove what a wheel is and which CPUs can run it: structure, provenance, ISA, hosts. Exit 0:
    every host runs it; 1: a check failed (a host cannot run it); 2: bad input; 3: undecided for
    some host (--emulate settles it); 4: internal error, never a verdict.
    """

    # the wheel: a .whl path, a file name in wheels/, or a PyPI pin such as tensorflow-cpu==2.21.0
    verify_wheel: str
    # host snapshot (.json from detect --save) or raw /proc/cpuinfo text to check against; repeat
    # for a fleet
    verify_hosts: tuple[str, ...] = ()
    # Python version the wheel must install on, e.g. 3.12
    verify_python: str | None = None
    # also run the wheel's own import (its top-level modules; TensorFlow, numpy, onnxruntime and
    # corpus wheels with a small workload) under qemu-x86_64 -cpu MODEL (e.g. Nehalem, SandyBridge,
    # IvyBridge, Haswell): confirms the static answer for that model, or settles an undecided one;
    # repeatable
    emulate: tuple[str, ...] = ()
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # processes scanning libraries in parallel (a big library is split across them), 0 = one per
    # CPU, at most 2 (each adds ~200-450 MB)
    verify_jobs: int = 0
    # scan again even when a cached scan of this wheel exists
    no_cache: bool = False
    # example function names kept per feature and library
    verify_examples: int = 3
    # show a traceback on errors
    debug: bool = False
    # seconds one emulated run (verify --emulate MODEL: install + import + ops under qemu) may take
    emulate_timeout: float = 900.0
