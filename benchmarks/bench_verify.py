"""Wall time and peak RSS of a full `verify` of the stock tensorflow-cpu 2.21.0 wheel, beside
a plain decode-and-count pass over the same code bytes in the same run.

Targets (team machine): at --jobs 1 the whole verify at most 1.5x the plain pass, under 1 GiB
RSS. The verify runs without the scan cache (a cold verify) through
tfforge.verify.verdict.verify, i.e. everything `tfforge verify` measures: reading and hashing all
members against RECORD, extracting the ELF members, the ISA scan with per-function attribution
and classification, the host answer. On a shared machine the figures move with the load, so
each round runs the plain pass and the verifies back to back and the ratio of each round is
printed; the summary is the median over rounds (--rounds).
Peak RSS is sampled every 20 ms over the whole process tree (this process + scan workers),
because worker processes are not in this process's ru_maxrss.
The plain pass: iced-x86 decode of every SHF_EXECINSTR section of the same ELF members (found by
their magic bytes, as verify finds them), in bounded chunks, one counter increment per
instruction, nothing else (elfscan.decode.plain_decode_count).

Usage: python benchmarks/bench_verify.py [--jobs N ...] [--rounds R]   (default: --jobs 1 and
the configured value, 1 round; each verify is a cold run)
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfforge import settings
from tfforge.elfscan import decode, tables
from tfforge.host import cpu
from tfforge.options.typed.verify import VerifyOptions
from tfforge.paths import cache_dir
from tfforge.verify import verdict, wheelscan
from tfforge.wheel import fetch as pypi
from tfforge.wheel import members


def tree_rss_kib(pid: int) -> int:
    """VmRSS of pid and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


class PeakSampler:
    def __init__(self, every: float = 0.02):
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_kib(os.getpid()))
            time.sleep(self.every)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_kib(os.getpid()))


def plain_pass(whl: Path) -> tuple[int, int, float, int]:
    """(libraries, instructions, seconds, code bytes) of the plain decode over the same .so."""
    libs = instrs = code = 0
    seconds = 0.0
    with tempfile.TemporaryDirectory(dir=cache_dir("tmp")) as tmp, zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            if info.is_dir():
                continue
            with z.open(info) as src:
                if not members.is_elf(src.read(4)):
                    continue
            dest = Path(tmp) / "lib.so"
            with z.open(info) as src, open(dest, "wb") as out:  # not timed
                while block := src.read(1 << 20):
                    out.write(block)
            if dest.read_bytes()[:4] != b"\x7fELF":
                continue
            n, s = decode.plain_decode_count(dest)  # timed inside
            libs, instrs, seconds = libs + 1, instrs + n, seconds + s
            code += tables.code_bytes(dest)
    return libs, instrs, seconds, code


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--jobs",
        type=int,
        action="append",
        help="scan processes for verify; repeat to compare (default: 1 and config)",
    )
    ap.add_argument("--rounds", type=int, default=1, help="repeat plain pass + verifies")
    args = ap.parse_args()
    configured = settings.options(VerifyOptions, "verify", {"wheel": "x"}).verify_jobs
    configured = configured or wheelscan.default_jobs()
    jobs_list = args.jobs or sorted({1, configured})
    whl = pypi.fetch("tensorflow-cpu==2.21.0")
    host = cpu.detect_host()
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    print(
        f"wheel: {whl.name} ({whl.stat().st_size / 1e6:.1f} MB); machine: "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    ratios: dict[int, list[float]] = {j: [] for j in jobs_list}
    peaks: dict[int, list[int]] = {j: [] for j in jobs_list}
    report = None
    for round_ in range(1, max(args.rounds, 1) + 1):
        libs, instrs, plain, code = plain_pass(whl)
        print(
            f"round {round_}: plain decode-and-count pass: {plain:.1f} s over {libs} ELF files, "
            f"{code / 1e6:.1f} MB code, {instrs / 1e6:.1f} M instructions "
            f"({plain / max(instrs, 1) * 1e9:.0f} ns/instruction); load average "
            f"{os.getloadavg()[0]:.2f}"
        )
        for jobs in jobs_list:
            with PeakSampler() as peak:
                t0 = time.perf_counter()
                cpu0 = time.process_time()
                report = verdict.verify(whl, hosts=[host], python=py, jobs=jobs, use_cache=False)
                wall = time.perf_counter() - t0
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            ratios[jobs].append(wall / plain)
            peaks[jobs].append(peak.peak)
            print(
                f"round {round_}: verify --jobs {jobs}: {wall:.1f} s wall = {wall / plain:.2f}x "
                f"plain, peak RSS {peak.peak / 1024:.0f} MiB (process tree), this process CPU "
                f"{time.process_time() - cpu0:.1f} s, largest worker ru_maxrss "
                f"{children / 1024:.0f} MiB; "
                f"{sum(s.decoded_bytes for s in report.libraries) / 1e6:.1f} MB of function "
                f"bodies decoded in {len(report.libraries)} ELF files"
            )
    for jobs in jobs_list:
        ratio, peak_kib = statistics.median(ratios[jobs]), max(peaks[jobs])
        target = ratio <= 1.5 and peak_kib < 1 << 20 if jobs == 1 else peak_kib < 1 << 20
        rule = "<= 1.5x plain, < 1024 MiB" if jobs == 1 else "< 1024 MiB"
        print(
            f"--jobs {jobs}: median {ratio:.2f}x plain over {len(ratios[jobs])} round(s) "
            f"({', '.join(f'{r:.2f}' for r in ratios[jobs])}); peak {peak_kib / 1024:.0f} MiB; "
            f"target ({rule}): {'met' if target else 'NOT met'}"
        )
    if report is not None:
        print(
            f"answer for this host: {report.hosts[0].answer}; required "
            f"{', '.join(report.required) or 'nothing'}; unguarded "
            f"{', '.join(report.unguarded) or 'nothing'}; dispatched only: "
            f"{', '.join(report.dispatched)}"
        )


if __name__ == "__main__":
    main()
