"""Where tfforge leans on a dependency's internals: each such use is here, and
tests/unit/test_adapters.py fails when the dependency changes behaviour under it.

- `CPUID_PROBE`: Python code printing what py-cpuinfo's CPUID decoder reads
  (`cpuinfo.cpuinfo._get_cpu_info_from_cpuid`, private). `verify --emulate` runs it under
  `qemu-x86_64 -cpu MODEL`: the public get_cpu_info() prefers /proc/cpuinfo, which under
  qemu-user describes the real host, not the emulated model.
- `host_cpu` + `can_run`: archspec's x86_64 compatibility rule (archspec.cpu.detect, not
  exported), written with archspec's public Microarchitecture class, so hosts read from
  snapshot files are judged exactly as archspec judges the machine it runs on.

pyproject.toml bounds both dependencies' versions.
"""

from __future__ import annotations

from collections.abc import Iterable

import archspec.cpu

CPUID_PROBE = (
    "import json, cpuinfo; d = cpuinfo.cpuinfo._get_cpu_info_from_cpuid(); "
    "print(json.dumps({'brand': d.get('brand_raw', ''), "
    "'vendor': d.get('vendor_id_raw', ''), 'flags': d.get('flags', [])}))"
)

GENERIC = "generic"


def host_cpu(vendor: str, flags: Iterable[str]) -> archspec.cpu.Microarchitecture:
    """A host as archspec's detection describes one: its public constructor also adds the
    features /proc/cpuinfo leaves out (sse3 when ssse3 is there)."""
    return archspec.cpu.Microarchitecture("", [], vendor, set(flags), {})


def can_run(target: archspec.cpu.Microarchitecture, host: archspec.cpu.Microarchitecture) -> bool:
    """True when `host` (host_cpu) runs `target`: the target is in the x86_64 family, of the
    host's vendor or generic, and the host has all its features."""
    root = archspec.cpu.TARGETS["x86_64"]
    return (
        (target == root or root in target.ancestors)
        and target.vendor in (host.vendor, GENERIC)
        and target.features <= host.features
    )
