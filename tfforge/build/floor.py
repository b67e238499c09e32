"""The runtime floor of a build: the oldest glibc and libstdc++ its wheel may need, and how the
build reaches it. Pure decisions over data (tfforge/data/runtimes.toml); runs nothing.

A fleet's floor is the newest known suite whose glibc, GLIBCXX_ and CXXABI_ versions every host
has. A build reaches it on a base image of that suite (or an older one) when the image ships a
compiler the release's recipe accepts ("base" route); otherwise it compiles with the recipe's
compiler against a sysroot made from the floor's suite ("sysroot" route: the compiler's own C++
headers are replaced by the suite's, its libstdc++, libgcc_s and C library are linked, so the
wheel needs nothing newer than the suite has; TensorFlow's manylinux toolchains and conda-forge
do the same).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from tfforge import resources
from tfforge.errors import ConfigError
from tfforge.host.cpu import HostProfile
from tfforge.host.runtime import Runtime, numbered, version_tuple

DATA_FILE = "tfforge/data/runtimes.toml"
SYSROOT = "/opt/tfforge/sysroot"  # where the build image holds the floor's root filesystem
WRAPPERS = "/usr/local/bin"
NONE, AUTO = "none", "auto"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


@dataclass(frozen=True)
class Floor:
    """One suite a build can target as its runtime floor (see the data file)."""

    name: str
    glibc: str
    glibcxx: str
    cxxabi: str
    libstdcxx: int
    python: str
    gcc: Mapping[str, str]
    local: str
    distribution: str
    sysroot: tuple[str, ...]
    evidence: str

    def key(self) -> tuple[tuple[int, ...], ...]:
        """Older suites sort first."""
        return (
            version_tuple(self.glibc),
            _num(self.glibcxx),
            _num(self.cxxabi),
        )

    def serves(self, rt: Runtime) -> str | None:
        """None when a host with runtime rt has everything this floor's wheels may need,
        else why not."""
        if rt.libc != "glibc" or rt.glibc is None:
            return f"its C library is {rt.libc}, not glibc"
        if version_tuple(rt.glibc) < version_tuple(self.glibc):
            return f"glibc {rt.glibc} < {self.glibc}"
        if rt.glibcxx is not None and _num(rt.glibcxx) < _num(self.glibcxx):
            return f"libstdc++ has {rt.glibcxx} < {self.glibcxx}"
        if rt.cxxabi is not None and _num(rt.cxxabi) < _num(self.cxxabi):
            return f"libstdc++ has {rt.cxxabi} < {self.cxxabi}"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.name,
            "glibc": self.glibc,
            "glibcxx": self.glibcxx,
            "cxxabi": self.cxxabi,
            "libstdcxx_gcc": self.libstdcxx,
            "python": self.python,
            "distribution": self.distribution,
            "evidence": self.evidence,
        }


def _num(name: str) -> tuple[int, ...]:
    parsed = numbered(name)
    return parsed[1] if parsed else ()


def _check(name: str, raw: Mapping[str, Any]) -> Floor:
    where = f"{DATA_FILE} [floors.{name}]"
    try:
        floor = Floor(
            name,
            str(raw["glibc"]),
            str(raw["glibcxx"]),
            str(raw["cxxabi"]),
            int(raw["libstdcxx"]),
            str(raw["python"]),
            {str(k): str(v) for k, v in raw["gcc"].items()},
            str(raw["local"]),
            str(raw["distribution"]),
            tuple(str(p) for p in raw["sysroot"]),
            str(raw["evidence"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"{where}: missing or malformed field ({exc}); fix the data file"
        ) from None
    if not (
        _NAME.fullmatch(name)
        and re.fullmatch(r"[0-9]+\.[0-9]+", floor.glibc)
        and _num(floor.glibcxx)
        and _num(floor.cxxabi)
    ):
        raise ConfigError(f"{where}: glibc must be X.Y, glibcxx/cxxabi numbered version names")
    return floor


@cache
def floors() -> dict[str, Floor]:
    """Every known floor, oldest first."""
    raw = resources.toml("runtimes.toml")
    known = [_check(n, v) for n, v in raw.get("floors", {}).items()]
    return {f.name: f for f in sorted(known, key=Floor.key)}


@cache
def glibc_libraries() -> frozenset[str]:
    return frozenset(resources.toml("runtimes.toml")["glibc"]["libraries"])


def floor(name: str, *, source: str = "--runtime-floor") -> Floor:
    known = floors()
    if name not in known:
        raise ConfigError(
            f"{source} {name[:40]!r}: not a known runtime floor; known: "
            f"{', '.join(known)} (or {AUTO}: the --host snapshots', {NONE}: the base image's)"
        )
    return known[name]


# ---- a fleet's runtime and its floor -------------------------------------------------------------
@dataclass(frozen=True)
class FleetRuntime:
    """The oldest runtime of a fleet, and the hosts whose runtime is unknown."""

    hosts: tuple[tuple[str, Runtime | None], ...]

    @property
    def known(self) -> list[tuple[str, Runtime]]:
        return [(n, rt) for n, rt in self.hosts if rt is not None]

    @property
    def unknown(self) -> list[str]:
        return [n for n, rt in self.hosts if rt is None]

    def oldest(self, what: str) -> tuple[str, str] | None:
        """(value, host) of the oldest glibc / glibcxx / cxxabi among the known hosts."""
        values = []
        for name, rt in self.known:
            value = getattr(rt, what)
            if value:
                key = version_tuple(value) if what == "glibc" else _num(value)
                values.append((key, value, name))
        return (min(values)[1], min(values)[2]) if values else None

    def floor(self) -> Floor | None:
        """The newest known floor every host with a known runtime can load; None when no host's
        runtime is known. ConfigError naming the hosts when no known floor serves them all."""
        if not self.known:
            return None
        fits = [f for f in floors().values() if all(f.serves(rt) is None for _, rt in self.known)]
        if fits:
            return fits[-1]
        oldest = next(iter(floors().values()))
        why = "; ".join(f"{n}: {w}" for n, rt in self.known if (w := oldest.serves(rt)))
        raise ConfigError(
            f"no known runtime floor serves every host ({why}); the oldest tfforge can build "
            f"for is {oldest.name} (glibc {oldest.glibc}, {oldest.glibcxx}): leave those hosts "
            f"out or add an older suite to {DATA_FILE}"
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for what in ("glibc", "glibcxx", "cxxabi"):
            found = self.oldest(what)
            out[f"oldest_{what}"] = {"value": found[0], "host": found[1]} if found else None
        out["unknown"] = self.unknown
        try:
            chosen = self.floor()
        except ConfigError as exc:
            out["floor"], out["floor_refused"] = None, str(exc)
        else:
            out["floor"] = chosen.as_dict() if chosen else None
        return out


def fleet_runtime(hosts: Iterable[HostProfile]) -> FleetRuntime:
    return FleetRuntime(tuple((h.name, h.runtime) for h in hosts))


def serving_python(rt: Runtime | None, supported: Iterable[str]) -> tuple[str | None, str]:
    """The Python a host gets its wheel for (its python3 when the release supports it, else its
    newest supported one) and why; (None, why not) when it has none the release supports."""
    allowed = list(supported)
    if rt is None:
        return None, "runtime unknown (no Python recorded)"
    if rt.python and rt.python in allowed:
        return rt.python, f"its python3 is {rt.python}"
    mine = [p for p in rt.pythons if p in allowed]
    if mine:
        pick = max(mine, key=version_tuple)
        return pick, f"python{pick} (its python3 is {rt.python or 'unknown'})"
    have = ", ".join(rt.pythons) or "none"
    return None, f"has Python {have}; the release supports {', '.join(allowed)}"


def fleet_plan(hosts: list[HostProfile], tf_version: str, pythons: Iterable[str]) -> dict[str, Any]:
    """What match and matrix report about a fleet's runtime for one release: the oldest glibc
    and libstdc++, the floor, each host's Python (or why the release cannot serve it), and one
    build per Python the served hosts need, all for the fleet's floor."""
    fr = fleet_runtime(hosts)
    doc = fr.to_dict()
    supported = list(pythons)
    rows: list[dict[str, Any]] = []
    builds: dict[str, list[str]] = {}
    for h in hosts:
        py, why = serving_python(h.runtime, supported)
        rows.append(
            {
                "name": h.name,
                "runtime": h.runtime.summary() if h.runtime else None,
                "python": py,
                "why": why,
                "served": py is not None or h.runtime is None,
            }
        )
        if py:
            builds.setdefault(py, []).append(h.name)
    chosen = doc["floor"]
    doc.update(
        {
            "tf_version": tf_version,
            "release_pythons": supported,
            "hosts": rows,
            "refused": [{"name": r["name"], "why": r["why"]} for r in rows if not r["served"]],
            "builds": [
                {
                    "python": py,
                    "hosts": names,
                    "runtime_floor": chosen["suite"] if chosen else None,
                    "build_args": ["--python-version", py]
                    + (["--runtime-floor", chosen["suite"]] if chosen else []),
                }
                for py, names in sorted(builds.items(), key=lambda kv: version_tuple(kv[0]))
            ],
        }
    )
    return doc


# ---- how a build reaches its floor -------------------------------------------------------------
@dataclass(frozen=True)
class FloorPlan:
    """The floor a build targets and the route to it (recorded in build.json)."""

    floor: Floor
    route: str  # 'base' or 'sysroot'
    request: str  # what was asked: a suite name, or 'auto' with the hosts
    build_suite: str | None  # the build image's suite, when known
    why: str
    hosts: tuple[str, ...] = ()
    python_from_sysroot: bool = False

    @property
    def sysroot_image(self) -> str:
        return self.floor.local

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "request": self.request,
            "hosts": list(self.hosts),
            "floor": self.floor.as_dict(),
            "route": self.route,
            "build_image_suite": self.build_suite,
            "why": self.why,
            "expected_tag": f"manylinux_{self.floor.glibc.replace('.', '_')}_x86_64 at most "
            "(the tag the built libraries allow is decided by auditwheel after the build)",
        }
        if self.route == "sysroot":
            doc["sysroot"] = {
                "image": self.sysroot_image,
                "path": SYSROOT,
                "packages": list(self.floor.sysroot),
                "python": self.floor.python if self.python_from_sysroot else None,
            }
        return doc


def within(suite: str | None, fl: Floor) -> bool:
    """True when a build image of `suite` links nothing newer than the floor."""
    mine = floors().get(suite or "")
    return mine is not None and mine.key() <= fl.key()


def plan(
    fl: Floor,
    *,
    request: str,
    hosts: tuple[str, ...],
    build_suite: str | None,
    compiler: str,
    compiler_major: int,
    recipe_range: tuple[int, int],
    python_version: str,
) -> FloorPlan:
    """The route to the floor for a build on an image of `build_suite` (None: unknown image)."""
    lo, hi = recipe_range
    py = python_version == fl.python
    if within(build_suite, fl):
        return FloorPlan(
            fl,
            "base",
            request,
            build_suite,
            f"the build image ({build_suite}) has glibc and libstdc++ at or below the floor "
            f"{fl.name} (glibc {fl.glibc}, {fl.glibcxx})",
            hosts,
        )
    ships = sorted(int(m) for m in fl.gcc if lo <= int(m) <= hi)
    image = build_suite or "an image tfforge does not know"
    reason = (
        f"the build image ({image}) is newer than the floor {fl.name} (glibc {fl.glibc}, "
        f"{fl.glibcxx})"
    )
    if compiler == "gcc" and not ships:
        reason += (
            f", and {fl.name} ships gcc {', '.join(sorted(fl.gcc, key=int))}, outside the "
            f"recipe's range {lo}-{hi}"
        )
    return FloorPlan(
        fl,
        "sysroot",
        request,
        build_suite,
        f"{reason}: {compiler} {compiler_major} compiles against a {fl.name} sysroot "
        f"(its glibc {fl.glibc}, libstdc++ of GCC {fl.libstdcxx} and headers)",
        hosts,
        python_from_sysroot=py,
    )


def base_for(fl: Floor, recipe_range: tuple[int, int], suites: Iterable[str]) -> str | None:
    """The newest suite among `suites` (images tfforge can build on) at or below the floor that
    ships a GCC the recipe accepts: a base route without a sysroot; None when there is none."""
    lo, hi = recipe_range
    fits = [
        floors()[s]
        for s in suites
        if s in floors() and within(s, fl) and any(lo <= int(m) <= hi for m in floors()[s].gcc)
    ]
    return max(fits, key=Floor.key).name if fits else None


# ---- what the sysroot route puts into the build image -----------------------------------------
def wrapper_lines(fl: Floor, compiler: str, compiler_bin: str) -> tuple[tuple[str, str], ...]:
    """(wrapper path, the command it execs) for the C/C++ compiler drivers of the sysroot route.

    GCC: --sysroot for the C library and its headers; a specs file puts the floor's libstdc++
    headers in place of the compiler's own (for C++ only); -B and -L make the link use the
    floor's crt files, libstdc++, libgcc_s and libc before the build image's. Clang: --sysroot
    alone, since clang takes libstdc++ from the GCC installation it finds inside the sysroot."""
    s = SYSROOT
    if compiler == "clang":
        flags = f"--sysroot={s}"
        return ((f"{WRAPPERS}/tfforge-cc", f"{compiler_bin} {flags}"),)
    gcc = f"{s}/usr/lib/gcc/x86_64-linux-gnu/{fl.libstdcxx}"
    flags = (
        f"--sysroot={s} -specs={s}.specs -B{s}/usr/lib/x86_64-linux-gnu/ -L{gcc} "
        f"-L{s}/usr/lib/x86_64-linux-gnu"
    )
    cxx = compiler_bin.replace("/gcc-", "/g++-")
    return (
        (f"{WRAPPERS}/tfforge-cc", f"{compiler_bin} {flags}"),
        (f"{WRAPPERS}/tfforge-c++", f"{cxx} {flags}"),
    )


def specs_lines(fl: Floor) -> tuple[str, ...]:
    """A GCC specs file: C++ compilations see the floor's libstdc++ headers only."""
    inc = f"{SYSROOT}/usr/include"
    v = fl.libstdcxx
    return (
        "*cc1plus:",
        f"+ -nostdinc++ -isystem {inc}/c++/{v} -isystem {inc}/x86_64-linux-gnu/c++/{v} "
        f"-isystem {inc}/c++/{v}/backward",
        "",
    )


def python_wrapper(fl: Floor) -> tuple[str, str]:
    """(path, command) running the floor's own Python with the floor's loader and libraries: a
    wheel built with it gets that Python's headers and tag."""
    s = SYSROOT
    libs = f"{s}/usr/lib/x86_64-linux-gnu:{s}/lib/x86_64-linux-gnu"
    return (
        f"{WRAPPERS}/tfforge-python{fl.python}",
        f"{s}/lib64/ld-linux-x86-64.so.2 --library-path {libs} {s}/usr/bin/python{fl.python}",
    )
