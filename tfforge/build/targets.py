"""The CPU target of a build: a named target (archspec name or psABI level), this host, a
fleet of host snapshots, or a set of ISA features, and the compiler flags for it.

Exactly one kind may be asked for; `resolve_target` returns a TargetChoice saying what was
asked, what it became and how its flags were decided, or raises ConfigError naming the option.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import archspec
import archspec.cpu

from tfforge.build.document import canonical_json
from tfforge.errors import ConfigError
from tfforge.host import cpu, fleet, isa
from tfforge.options.typed.spec import SpecOptions

KINDS = ("archspec", "psabi", "features", "host", "fleet")


@dataclass(frozen=True, kw_only=True)
class TargetChoice:
    """The CPU target a build is for, and how its compiler flags were decided."""

    kind: str  # one of KINDS
    request: tuple[str, ...]  # what was asked: a name, feature names or host names
    name: str | None  # archspec name of the target (None for feature sets)
    features: frozenset[str]  # canonical features the build may use
    requested: frozenset[str] = frozenset()  # features asked for explicitly (feature sets)
    implied: frozenset[str] = frozenset()  # features added because requested ones imply them
    flags: tuple[str, ...]  # compiler flags for the target
    flags_from: str  # which path produced the flags
    hosts: tuple[tuple[str, str], ...] = ()  # (host name, sha256 of its snapshot)
    skipped: tuple[str, ...] = ()  # better shared targets the compiler refused

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "request": list(self.request),
            "name": self.name,
            "hosts": [{"name": n, "snapshot_sha256": s} for n, s in self.hosts],
            "skipped": list(self.skipped),
        }


def _flags_for(name: str, compiler: str, version: str, asked: str) -> tuple[str, ...]:
    """archspec's optimization flags for a named target; ConfigError with archspec's reason."""
    try:
        flags = fleet.optimization_flags(name, compiler, version)
    except archspec.cpu.UnsupportedMicroarchitecture as exc:
        raise ConfigError(
            f"{asked}: {exc}; pick an older target or a newer --{compiler}-version"
        ) from exc
    return tuple(flags.split())


def _named_target(name: str, compiler: str, version: str, where: str) -> TargetChoice:
    key = fleet.target_key(name, source=where)
    u = archspec.cpu.TARGETS[key]
    return TargetChoice(
        kind="psabi" if key.startswith("x86_64") else "archspec",
        request=(name,),
        name=key,
        features=isa.normalize(u.features),
        flags=_flags_for(key, compiler, version, f"{where} {name}"),
        flags_from=f"archspec optimization_flags({compiler!r}, {version!r})",
    )


def snapshot_sha256(host: cpu.HostProfile) -> str:
    """sha256 of a host's snapshot in canonical JSON (recorded in build.json)."""
    return hashlib.sha256(canonical_json(host.to_dict()).encode()).hexdigest()


def _host_target(
    hosts: list[cpu.HostProfile], compiler: str, version: str, gcc_version: str
) -> TargetChoice:
    best = fleet.best_target(hosts, gcc_version)
    if compiler == "gcc":
        flags = tuple((best.flags or "").split())
    else:
        flags = _flags_for(best.name, compiler, version, f"target {best.name}")
    return TargetChoice(
        kind="fleet" if len(hosts) > 1 else "host",
        request=tuple(h.name for h in hosts),
        name=best.name,
        features=best.features,
        flags=flags,
        flags_from="fleet.best_target, then archspec "
        f"optimization_flags({compiler!r}, {version!r})",
        hosts=tuple((h.name, snapshot_sha256(h)) for h in hosts),
        skipped=best.skipped,
    )


def _feature_target(names: list[str], compiler: str, version: str, where: str) -> TargetChoice:
    requested = frozenset(isa.canonical(n, source=where) for n in names)
    full = isa.closure(requested)
    if compiler == "gcc":
        flags = tuple(isa.gcc_flags(full, version))
        how = f"tfforge.host.isa.gcc_flags(closure of the requested features, {version!r})"
    else:
        flags = tuple(isa.gcc_flags(full, None))
        how = "tfforge.host.isa -m flags (closure of the requested features)"
    return TargetChoice(
        kind="features",
        request=tuple(sorted(requested, key=isa.sort_key)),
        name=None,
        features=full,
        requested=requested,
        implied=full - requested,
        flags=flags,
        flags_from=how,
    )


def resolve_target(
    opts: SpecOptions, compiler: str, version: str, gcc_version: str
) -> TargetChoice:
    """The one target the options ask for. `version` is the compiler's version (the flags are
    for it); `gcc_version` is the GCC a host or fleet target is matched for."""
    target = (opts.target or "").strip()
    hosts = [h for h in opts.hosts if h.strip()]
    features = [f for f in opts.features if f.strip()]
    given = [
        what
        for what, value in (
            (opts.where("target"), target),
            (opts.where("hosts"), hosts),
            ("feature flags", features),
        )
        if value
    ]
    if len(given) > 1:
        raise ConfigError(
            f"give one kind of target, not {' and '.join(given)}: a named target "
            "(--target haswell / x86-64-v3 / host), host snapshots (--host FILE) "
            "or feature flags (--avx2 --fma ...)"
        )
    if features:
        return _feature_target(features, compiler, version, "feature flag")
    if hosts:
        profiles = cpu.load_hosts(hosts, option=opts.where("hosts"))
        fleet.check_fleet(profiles)
        return _host_target(profiles, compiler, version, gcc_version)
    if target.lower() == "host":
        return _host_target([cpu.detect_host()], compiler, version, gcc_version)
    if target:
        return _named_target(target, compiler, version, opts.where("target"))
    raise ConfigError(
        "no build target: pass --target NAME (archspec name such as haswell, a "
        "psABI level such as x86-64-v3, or 'host'), --host FILE (snapshot), or "
        "feature flags such as --avx2 --fma (or set target in tfforge.toml)"
    )
