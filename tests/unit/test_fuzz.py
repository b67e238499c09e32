"""Issue 14, class 5: seeded mutation fuzzing of the ELF reader and the snapshot/cpuinfo parser,
bounded in time (TFFORGE_FUZZ_SECONDS per parser, default 15 and 6 s) and memory (2 GiB of
address space), each case within tests/fuzz_worker.CASE_SECONDS. A finding prints the seed
and case; rerun with TFFORGE_FUZZ_SEED=<seed> to reproduce, another seed to explore."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import elf_samples as samples
from conftest import FIXTURES, need_tool

WORKER = Path(__file__).resolve().parents[1] / "fuzz_worker.py"
SEED = int(os.environ.get("TFFORGE_FUZZ_SEED", "14"))
MEMORY = 2 << 30


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def fuzz(kind: str, seconds: float, files: list[Path]) -> dict:
    budget = float(os.environ.get("TFFORGE_FUZZ_SECONDS", seconds))
    proc = subprocess.run(
        [sys.executable, str(WORKER), kind, str(SEED), str(budget), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=budget + 60,
        preexec_fn=_limits,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert not doc["failures"], json.dumps(doc["failures"][:5], indent=1)
    assert doc["cases"] > 50 and doc["parsed"] > 0, doc  # the fuzzer really ran both paths
    return doc


def test_fuzz_the_elf_reader(tmp_path):
    need_tool("gcc")
    libs = [
        samples.compile_so(tmp_path, "k", samples.KERNELS, ["-O2", "-mavx2", "-mfma"]),
        samples.compile_so(tmp_path, "g", samples.GUARDED, ["-O2"]),
        samples.compile_so(tmp_path, "c", samples.CONSTRUCTOR, ["-O2"]),
    ]
    fuzz("elf", 15, libs)


def test_fuzz_the_snapshot_and_cpuinfo_parser():
    cpus = FIXTURES / "cpuinfo"
    fuzz(
        "text",
        6,
        [
            cpus / "haswell-i7-4770.cpuinfo",
            cpus / "aarch64-neoverse-n1.cpuinfo",
            cpus / "zen4-epyc-9r14.cpuinfo",
            FIXTURES / "hosts" / "qemu-haswell.json",
            FIXTURES / "hosts" / "skylake-sp-8175m.json",
        ],
    )
