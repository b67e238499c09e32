"""A fleet's build matrix: the fewest builds that serve every host well. Pure planning.

Hosts are grouped by their own best target (fleet.best_target of each host alone): one build per
distinct target, each serving the hosts whose best it is. `one=True` gives the single common
target `match` would pick for the whole fleet instead. Every group is crossed with the TensorFlow
and Python version lists; each cell of the result is one `invoke build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfforge.build import floor as floors
from tfforge.build import toolchains
from tfforge.errors import ConfigError
from tfforge.host import fleet, isa
from tfforge.host.cpu import HostProfile


@dataclass(frozen=True)
class HostGain:
    """One host served by a cell, and what its cell's target adds over the fleet's common one."""

    name: str
    gains: tuple[str, ...]  # canonical features beyond the common target, most capable first


@dataclass(frozen=True)
class Cell:
    """One build of the matrix."""

    cell: str  # e.g. 'haswell-tf2.21.0-py3.11'
    target: str  # archspec name (x86_64_v3 for psABI levels)
    display: str  # as `--target` spells it (x86-64-v3)
    flags: str  # GCC flags of the target
    tf_version: str
    python_version: str
    hosts: tuple[HostGain, ...]
    runtime_floor: str | None = None  # the plan's runtime floor (tfforge/build/floor.py)

    def build_args(self) -> tuple[str, ...]:
        """The `invoke build` flags that select this cell (the shared options, the runtime
        floor among them, come after)."""
        return (
            "--target",
            self.display,
            "--tf-version",
            self.tf_version,
            "--python-version",
            self.python_version,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell,
            "target": self.display,
            "archspec": self.target,
            "flags": self.flags,
            "tf_version": self.tf_version,
            "python_version": self.python_version,
            "hosts": [{"name": h.name, "gains": list(h.gains)} for h in self.hosts],
            "runtime_floor": self.runtime_floor,
            "build_args": list(self.build_args()),
        }


@dataclass(frozen=True)
class Plan:
    common: str  # the fleet's common target (display name)
    one: bool
    gcc_version: str
    cells: tuple[Cell, ...]
    runtime: tuple[dict[str, Any], ...] = ()  # per release: floor.fleet_plan
    runtime_floor: str | None = None  # the floor every cell builds for (None: no floor)

    def as_dict(self) -> dict[str, Any]:
        return {
            "common_target": self.common,
            "one": self.one,
            "gcc_version": self.gcc_version,
            "cells": [c.as_dict() for c in self.cells],
            "runtime": list(self.runtime),
            "runtime_floor": self.runtime_floor,
        }


def split_list(text: str | list[str] | tuple[str, ...] | None, default: str) -> tuple[str, ...]:
    """'2.20.0,2.21.0' (or a list of such) -> ('2.20.0', '2.21.0'); empty -> (default,)."""
    items = [text] if isinstance(text, str) else list(text or [])
    out: list[str] = []
    for item in items:
        for part in str(item).split(","):
            if part.strip() and part.strip() not in out:
                out.append(part.strip())
    return tuple(out) or (default,)


def headline_first(names: frozenset[str]) -> tuple[str, ...]:
    """Features with a psABI level first, newest level first (AVX-512, AVX2 ...), then the rest."""
    levels = {f: isa.features()[f].level or 0 for f in names if f in isa.features()}
    return tuple(sorted(names, key=lambda f: (-levels.get(f, 0), -isa.sort_key(f))))


def _groups(
    hosts: list[HostProfile], gcc_version: str, one: bool
) -> list[tuple[fleet.Target, list[HostProfile]]]:
    """(target, hosts) pairs, most capable target first; one pair with `one`."""
    if one:
        return [(fleet.best_target(hosts, gcc_version), list(hosts))]
    by_name: dict[str, tuple[fleet.Target, list[HostProfile]]] = {}
    for h in hosts:
        t = fleet.best_target([h], gcc_version)
        by_name.setdefault(t.name, (t, []))[1].append(h)
    return sorted(by_name.values(), key=lambda g: (-g[0].level, -len(g[0].features), g[0].name))


def plan(
    hosts: list[HostProfile],
    *,
    gcc_version: str,
    tf_versions: tuple[str, ...],
    python_versions: tuple[str, ...],
    one: bool = False,
    runtime_floor: str = floors.AUTO,
    floor_source: str = "--runtime-floor",
) -> Plan:
    """The matrix for a fleet; ConfigError for an unknown TF release or an unsupported Python.

    runtime_floor: "auto" (the fleet's oldest known runtime), a suite, or "none"/"" (no floor);
    floor_source names where that value came from in a refusal."""
    fleet.check_fleet(hosts)
    common = fleet.best_target(hosts, gcc_version)
    pairs = []
    for tf in tf_versions:
        tc = toolchains.toolchain(tf)
        for py in python_versions:
            if not toolchains.PY_VERSION.match(py):
                raise ConfigError(f"--python-version {py!r}: expected versions such as 3.11,3.12")
            toolchains.check_python(tc, py)
            pairs.append((tf, py))
    floor = fleet_floor(hosts, runtime_floor, floor_source)
    runtime = tuple(
        floors.fleet_plan(hosts, tf, toolchains.toolchain(tf).pythons) for tf in tf_versions
    )
    cells = []
    for t, members in _groups(hosts, gcc_version, one):
        served = tuple(
            HostGain(h.name, headline_first(t.features - common.features)) for h in members
        )
        for tf, py in pairs:
            cells.append(
                Cell(
                    f"{t.display}-tf{tf}-py{py}",
                    t.name,
                    t.display,
                    t.flags or "",
                    tf,
                    py,
                    served,
                    floor.name if floor else None,
                )
            )
    return Plan(
        common.display, one, gcc_version, tuple(cells), runtime, floor.name if floor else None
    )


def fleet_floor(
    hosts: list[HostProfile], request: str, source: str = "--runtime-floor"
) -> floors.Floor | None:
    """The floor a request names for a fleet: a suite, the fleet's own ("auto"), or none."""
    asked = request.strip().lower() or floors.NONE
    if asked == floors.NONE:
        return None
    if asked == floors.AUTO:
        return floors.fleet_runtime(hosts).floor()
    return floors.floor(asked, source=source)
