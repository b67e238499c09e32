"""The typed options of bench. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfforge.options.base import Options


@dataclass(frozen=True, kw_only=True)
class BenchOptions(Options):
    """Benchmark g2p over wheels x threading x oneDNN x mode x batch; table, JSON and chart."""

    # wheel files, names in wheels/, globs or PyPI pins, comma-separated (e.g.
    # tensorflow-cpu==2.14.1,intel-tensorflow-avx512==2.14.0)
    bench_wheels: str
    # one more wheel spec; repeatable
    bench_more_wheels: tuple[str, ...] = ()
    # comma list of: default (TensorFlow's), 1 (intra=inter=1, OMP_NUM_THREADS=1)
    bench_threads: str = "default,1"
    # comma list of TF_ENABLE_ONEDNN_OPTS values
    bench_onednn: str = "0,1"
    # comma list of: eager, graph, frozen, xla
    bench_modes: str = "eager,graph,frozen,xla"
    # comma list of batch sizes
    bench_batches: str = "1,64"
    # untimed passes before timing
    bench_warmup: int = 1
    # timed passes per configuration (median, min and max are reported)
    bench_repeat: int = 5
    # golden words per pass
    bench_words: int = 1024
    # small preset for tests: threads 1, oneDNN 0,1, graph+frozen, batch 64, 2 passes of 256 words
    # (options given on the command line win)
    quick: bool = False
    # also time g2p-en's numpy model (row g2p-en-numpy)
    reference: bool = False
    # row the speedups are against: 'WHEEL threads=T onednn=N MODE' or words naming one row (e.g.
    # '2.14.1 threads=default onednn=1 graph')
    baseline: str | None = None
    # folder for bench.json, bench.md, bench.png
    bench_out: Path | None = None
    # seconds one configuration may take
    bench_timeout: float = 1800.0
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
