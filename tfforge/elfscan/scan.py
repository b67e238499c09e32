"""Streaming x86 ISA scan of ELF shared objects: which extensions the machine code uses, in which
functions, and whether each one is required to run (baseline) or used only behind run-time CPU
checks (dispatched).

The entry points: scan_library (one process), or split_points + stream_part (in workers) +
finish. The parts: tables (ELF), decode (streamed iced-x86), rules + names (data files, R1),
classify (R1-R4 and evidence), results (dataclasses).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tfforge.elfscan.classify import classify, evidence
from tfforge.elfscan.decode import Streamed, merge, stream
from tfforge.elfscan.library import Library
from tfforge.elfscan.results import LibraryScan
from tfforge.elfscan.rules import code_table
from tfforge.elfscan.tables import open_file
from tfforge.elfscan.variables import variable_ranges

EXAMPLES = 3


def stream_part(
    path: Path | str,
    lo: int = 0,
    hi: int = 1 << 64,
    progress: Callable[[int], None] | None = None,
    out: Path | str | None = None,
) -> Streamed | Path:
    """The decode phase for the code in [lo, hi), for `finish`; with `out`, written to that
    .npz file and its path returned (for worker processes)."""
    t0 = time.perf_counter()
    path = Path(path)
    with open_file(path) as f:
        lib = Library(path, f)
        part = stream(lib, progress, lo, hi)
    part.seconds = time.perf_counter() - t0
    return part.save(Path(out)) if out is not None else part


def finish(
    path: Path | str,
    parts: Sequence[Streamed | Path | str],
    *,
    display_name: str | None = None,
    examples: int = EXAMPLES,
    readable: bool = True,
) -> LibraryScan:
    """Classify decoded parts of one library (from stream_part, maybe in other processes)."""
    path = Path(path)
    loaded = [p if isinstance(p, Streamed) else Streamed.load(Path(p)) for p in parts]
    with open_file(path) as f:
        return _finish(
            Library(path, f),
            merge(loaded),
            display_name,
            examples,
            readable,
            time.perf_counter() - max(p.seconds for p in loaded),
        )


def _finish(
    lib: Library,
    streamed: Streamed,
    display_name: str | None,
    examples: int,
    readable: bool,
    started: float,
) -> LibraryScan:
    t0 = time.perf_counter()
    table = code_table()
    cpuid_fns = streamed.pair_fn[np.isin(streamed.pair_code, sorted(table.cpuid))]
    classes = classify(
        lib,
        streamed,
        variable_ranges(lib, cpuid_fns, streamed.calls),
        (display_name or str(lib.path)).rsplit("/", 1)[-1],
    )
    t1 = time.perf_counter()
    found = evidence(lib, streamed, classes, examples, readable)
    totals = np.bincount(streamed.pair_code, weights=streamed.pair_count, minlength=len(table.hot))
    ignored: dict[str, int] = {}
    for code in table.ignored:
        if totals[code]:
            mn = table.mnemonic[code]
            ignored[mn] = ignored.get(mn, 0) + int(totals[code])
    t2 = time.perf_counter()
    return LibraryScan(
        path=display_name or str(lib.path),
        size=lib.path.stat().st_size,
        code_bytes=sum(s.size for s in lib.exec_secs),
        decoded_bytes=streamed.decoded_bytes,
        functions=len(lib),
        symbols=lib.symbol_source,
        baseline=frozenset(e.name for e in found if e.cls != "dispatched"),
        required=frozenset(e.name for e in found if e.cls == "required"),
        dispatched=frozenset(e.name for e in found if e.cls == "dispatched"),
        features=tuple(found),
        ignored=tuple(sorted(ignored.items())),
        cpu_checks=classes.checks,
        roots=classes.roots,
        load_reachable=int(classes.load.sum()),
        pattern_hits=tuple(sorted(classes.hits.items())),
        glibc=lib.glibc_needed(),
        isa_needed=lib.isa_needed(),
        seconds=round(time.perf_counter() - started, 3),
        phases=(
            ("decode", round(streamed.seconds, 3)),
            ("classify", round(t1 - t0, 3)),
            ("evidence", round(t2 - t1, 3)),
        ),
    )


def scan_library(
    path: Path | str,
    *,
    display_name: str | None = None,
    progress: Callable[[int], None] | None = None,
    examples: int = EXAMPLES,
    readable: bool = True,
) -> LibraryScan:
    """Scan one ELF library in this process; ConfigError if it is not a
    readable x86-64 ELF file.

    display_name: the name reported (a wheel member path); allow-list globs match its
    file name. progress: called with the code bytes done after each chunk.
    examples: example function names kept per feature; readable=False keeps them mangled
    (verify demangles all libraries' examples in one c++filt run).
    """
    t0 = time.perf_counter()
    path = Path(path)
    with open_file(path) as f:
        lib = Library(path, f)
        streamed = stream(lib, progress)
        streamed.seconds = time.perf_counter() - t0
        return _finish(lib, streamed, display_name, examples, readable, t0)
