"""Matching build targets to one host or a fleet, and explaining refusals. Touches no Docker.

Targets are archspec microarchitectures (psABI levels are archspec's x86_64_vN). A host can run
a target when the vendor fits (or the target is generic) and it has every target feature.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import archspec.cpu

from tfforge import resources
from tfforge.errors import ConfigError
from tfforge.host import isa
from tfforge.host.adapters import GENERIC, can_run, host_cpu
from tfforge.host.cpu import HostProfile


@dataclass(frozen=True)
class Target:
    """A build target and the flags the configured GCC gives for it."""

    name: str  # archspec name, e.g. 'haswell', 'x86_64_v3'
    vendor: str
    features: frozenset[str]  # canonical names
    level: int  # psABI level the target's features satisfy
    flags: str | None  # e.g. '-march=haswell -mtune=haswell'; None when refused
    refused: str | None  # why the compiler cannot emit it
    skipped: tuple[str, ...] = ()  # better shared targets this GCC refused, with reasons

    @property
    def display(self) -> str:
        return self.name.replace("_", "-") if self.name.startswith("x86_64") else self.name

    def copts(self, gcc_version: str) -> list[str]:
        """The explicit `-m` equivalent of the target (x86-64 baseline SSE/SSE2 left out)."""
        return isa.gcc_flags(self.features - isa.level_features(1), gcc_version)


def candidate_names() -> list[str]:
    raw = resources.toml("targets.toml")
    return list(raw["candidates"])


def target_key(name: str, *, source: str = "target") -> str:
    """The archspec key for a target name ('haswell', 'skylake-avx512') or psABI level."""
    level = isa.parse_level(name)
    key = (
        (f"x86_64_v{level}" if level > 1 else "x86_64")
        if level
        else name.strip().lower().replace("-", "_")
    )  # GCC spells skylake-avx512
    u = archspec.cpu.TARGETS.get(key)
    if u is None or u.family.name != "x86_64":
        known = ", ".join(n for n, t in archspec.cpu.TARGETS.items() if t.family.name == "x86_64")
        raise ConfigError(
            f"{source} {name!r}: not an x86_64 target; known: {known}, x86-64-v2/v3/v4"
        )
    return key


def _uarch(name: str) -> archspec.cpu.Microarchitecture:
    return archspec.cpu.TARGETS[target_key(name)]


def optimization_flags(key: str, compiler: str, version: str) -> str:
    """archspec's flags for a target; raises archspec.cpu.UnsupportedMicroarchitecture.

    archspec's compiler ranges are inclusive major.minor bounds ("10.3:12.2") compared as version
    tuples, so a full '12.2.0' falls outside '12.2' and zen4 is refused for GCC 12.2.0. When the
    full version is refused, ask again with major.minor, which archspec's ranges are written in.
    """
    u = archspec.cpu.TARGETS[key]
    try:
        return u.optimization_flags(compiler, version)
    except archspec.cpu.UnsupportedMicroarchitecture:
        short = ".".join(version.split(".")[:2])
        if short == version:
            raise
        try:
            return u.optimization_flags(compiler, short)
        except archspec.cpu.UnsupportedMicroarchitecture:
            pass
        raise


def target(name: str, gcc_version: str) -> Target:
    """A named target (archspec name or psABI level such as 'x86-64-v3') for the given GCC."""
    u = _uarch(name)
    feats = isa.normalize(u.features)
    try:
        flags, refused = optimization_flags(u.name, "gcc", gcc_version), None
    except archspec.cpu.UnsupportedMicroarchitecture as exc:
        flags, refused = None, str(exc)
    return Target(u.name, u.vendor, feats, isa.psabi_level(feats), flags, refused)


def runs_on(t: Target, host: HostProfile) -> bool:
    return host.is_x86 and can_run(_uarch(t.name), host_cpu(host.vendor, host.flags_raw))


def why_not(t: Target, host: HostProfile) -> str | None:
    """None when the host can run the target, else the reason (archspec's wording)."""
    if not host.is_x86:
        return f"{host.name} is {host.arch}; x86 targets do not apply"
    u = _uarch(t.name)
    if u.vendor not in (host.vendor, GENERIC):
        return f"{u.name} targets vendor {u.vendor}, but {host.name} is {host.vendor}"
    missing = u.features - host_cpu(host.vendor, host.flags_raw).features
    if missing:
        names = sorted(
            isa.normalize(missing) | {m for m in missing if isa.lookup(m) is None}, key=isa.sort_key
        )
        return "missing " + ", ".join(names)
    return None


def _rank(u: archspec.cpu.Microarchitecture) -> tuple[int, int]:
    """archspec's own order for a host's candidates: deeper, then more features."""
    return len(u.ancestors), len(u.features)


def _ranked(hosts: list[HostProfile]) -> list[archspec.cpu.Microarchitecture]:
    """Targets every host can run, best first: descendants of the best shared generic level,
    then the generic levels."""
    if not hosts:
        raise ConfigError("no hosts given; pass snapshot files (hosts/*.json or raw cpuinfo)")
    for h in hosts:
        if not h.is_x86:
            raise ConfigError(
                f"{h.source}: {h.name} is {h.arch}; x86 ISA targets do not apply "
                "(tfforge builds x86_64 wheels)"
            )
    cpus = [host_cpu(h.vendor, h.flags_raw) for h in hosts]
    common = [
        u
        for u in archspec.cpu.TARGETS.values()
        if u.family.name == "x86_64" and all(can_run(u, c) for c in cpus)
    ]
    generics = sorted((u for u in common if u.vendor == GENERIC), key=_rank, reverse=True)
    specific = sorted((u for u in common if u > generics[0]), key=_rank, reverse=True)
    return specific + generics


def best_target(hosts: list[HostProfile], gcc_version: str) -> Target:
    """The most capable target every host can run that this GCC can emit."""
    skipped: list[str] = []
    for u in _ranked(hosts):
        t = target(u.name, gcc_version)
        if t.flags is not None:
            return dataclasses.replace(t, skipped=tuple(skipped))
        skipped.append(f"{u.name}: {t.refused}")
    raise ConfigError(f"GCC {gcc_version} can emit none of the targets these hosts share")


def microarchitecture(host: HostProfile) -> str:
    """archspec's microarchitecture for one host (whatever the compiler can emit)."""
    return _ranked([host])[0].name


def check_fleet(hosts: list[HostProfile]) -> None:
    """Refuse duplicated hosts: the same name twice, or the same file twice."""
    seen: dict[str, str] = {}
    for h in hosts:
        for key in (f"name {h.name!r}", f"file {h.source}"):
            if key in seen:
                raise ConfigError(
                    f"{h.source}: duplicated host ({key} also given by "
                    f"{seen[key]}); pass each machine once"
                )
            seen[key] = h.source


def common_features(hosts: list[HostProfile]) -> frozenset[str]:
    feats = [h.features for h in hosts]
    return frozenset.intersection(*feats) if feats else frozenset()
