"""tfforge/host/adapters.py: fail here, not in detect/match/verify, when a dependency changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import archspec.cpu
import pytest
from archspec.cpu import detect as archspec_detect

from tfforge.host import adapters, cpu

CPUS = Path(__file__).resolve().parents[1] / "fixtures" / "cpuinfo"
HOSTS = [p for p in sorted(CPUS.glob("*.cpuinfo")) if cpu.load_host(p).is_x86]


def test_there_are_x86_host_fixtures():
    assert len(HOSTS) >= 8


@pytest.mark.parametrize("path", HOSTS, ids=[p.stem for p in HOSTS])
def test_can_run_is_archspecs_own_x86_rule(path):
    host = cpu.load_host(path)
    info = archspec_detect.partial_uarch(vendor=host.vendor, features=set(host.flags_raw))
    x86 = [u for u in archspec.cpu.TARGETS.values() if u.family.name == "x86_64"]
    assert len(x86) > 20
    mine = adapters.host_cpu(host.vendor, host.flags_raw)
    ours = {u.name for u in x86 if adapters.can_run(u, mine)}
    theirs = {u.name for u in x86 if archspec_detect.compatibility_check_for_x86_64(info, u)}
    assert ours == theirs and "x86_64" in ours


def test_cpuid_probe_reads_this_cpu():
    if cpu.detect_host().arch != cpu.X86:
        pytest.fail("the CPUID probe is for x86_64 machines; tfforge's tests run on one")
    proc = subprocess.run(
        [sys.executable, "-c", adapters.CPUID_PROBE], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    here = cpu.detect_host()
    assert doc["vendor"] == here.vendor
    assert {"sse", "sse2"} <= set(doc["flags"]) and doc["brand"]
