"""Can each host's runtime install and load the wheel? Its Python against the wheel's tags, its
glibc against the manylinux tag (what pip checks) and against every GLIBC_ version the wheel's
libraries need (what the loader checks), its libstdc++/libgcc_s/libgomp against the versions they
need from those. A host snapshot without a runtime gets "unknown", never a guess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.tags import Tag

from tfforge.build.floor import glibc_libraries
from tfforge.host.cpu import HostProfile
from tfforge.host.runtime import Runtime, newest, numbered, version_tuple
from tfforge.verify.wheelcheck import FAIL, PASS, SKIP, Check, manylinux_glibc
from tfforge.wheel.symvers import ElfNeeds, provided_inside, wheel_needs

LOADS, CANNOT, UNKNOWN = "loads", "cannot load", "unknown"


@dataclass(frozen=True)
class RuntimeVerdict:
    host: str
    status: str  # LOADS | CANNOT | UNKNOWN
    runtime: str  # the host's runtime in one line
    reasons: tuple[str, ...]  # why it cannot (each names the version that fails)
    notes: tuple[str, ...] = ()  # what could not be checked

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _pythons(tags: frozenset[Tag]) -> set[str] | None:
    """CPython versions the tags install on ('3.9'); None when any Python 3 will do."""
    out = set()
    for t in tags:
        if not t.interpreter.startswith("cp") or t.abi == "abi3":
            return None
        digits = t.interpreter[2:]
        out.add(f"{digits[0]}.{digits[1:]}")
    return out


def _glibc_ok(name: str, rt: Runtime) -> bool | None:
    """A glibc library's version name against the host (None: cannot tell)."""
    parsed = numbered(name)
    if parsed and parsed[0] == "GLIBC" and rt.glibc:
        return parsed[1] <= version_tuple(rt.glibc)
    libc = rt.library("libc.so.6")
    return (name in libc.defines) if libc and libc.defines else None


def host_verdict(needs: list[ElfNeeds], tags: frozenset[Tag], host: HostProfile) -> RuntimeVerdict:
    rt = host.runtime
    if rt is None:
        return RuntimeVerdict(
            host.name,
            UNKNOWN,
            "unknown",
            (),
            (
                f"{host.source} records no runtime; capture the host with the script "
                "`invoke detect --capture-script` prints",
            ),
        )
    reasons: list[str] = []
    notes: list[str] = []
    wants = _pythons(tags)
    if wants is not None and not wants & set(rt.pythons):
        reasons.append(
            f"the wheel is for CPython {', '.join(sorted(wants))}; the host has Python "
            f"{', '.join(rt.pythons) or 'none'}"
        )
    promised = manylinux_glibc(tags)
    if promised and rt.glibc and version_tuple(rt.glibc) < promised:
        reasons.append(
            f"pip refuses it: the tag needs glibc >= {promised[0]}.{promised[1]}, the host has "
            f"{rt.glibc}"
        )
    if rt.libc != "glibc":
        reasons.append(f"the host's C library is {rt.libc}; the wheel is built for glibc")
    inside = provided_inside(needs)
    glibc_libs = glibc_libraries()
    for n in needs:
        vers = dict(n.versions)
        for lib in n.needed:
            if lib in inside or lib in vers:
                continue
            rec = rt.library(lib)
            if rec is not None and rec.path is None:
                reasons.append(f"{n.member} needs {lib}, which the host does not have")
        for lib, names in n.versions:
            if lib in inside:
                continue
            rec = rt.library(lib)
            if lib in glibc_libs:
                for name in names:
                    ok = _glibc_ok(name, rt)
                    if ok is False:
                        reasons.append(
                            f"{n.member} needs {name} from {lib}; the host has glibc {rt.glibc}"
                        )
                    elif ok is None:
                        notes.append(f"{n.member}: {name} from {lib} not checked")
            elif rec is None:
                notes.append(f"{n.member}: {lib} ({', '.join(names)}) not recorded by the capture")
            elif rec.path is None:
                reasons.append(f"{n.member} needs {lib}, which the host does not have")
            else:
                for name in names:
                    if name not in rec.defines:
                        parsed = numbered(name)
                        have = newest(rec.defines, parsed[0]) if parsed else None
                        reasons.append(
                            f"{n.member} needs {name} from {lib}; the host's {lib} defines up "
                            f"to {have or 'no such version'}"
                        )
    status = CANNOT if reasons else LOADS
    return RuntimeVerdict(
        host.name, status, rt.summary(), tuple(dict.fromkeys(reasons)), tuple(dict.fromkeys(notes))
    )


def runtime_check(
    wheel: Path,
    tags: frozenset[Tag],
    hosts: list[HostProfile],
    read: tuple[list[ElfNeeds], list[str]] | None = None,
) -> tuple[Check, list[RuntimeVerdict]]:
    """The per-host runtime verdicts and their check (skip when no host's runtime is known).
    read: the members' needs and read errors when already read (else the wheel is read)."""
    needs, errors = read if read is not None else wheel_needs(wheel)
    verdicts = [host_verdict(needs, tags, h) for h in hosts]
    bad = [v for v in verdicts if v.status == CANNOT]
    known = [v for v in verdicts if v.status != UNKNOWN]
    details = tuple(f"{v.host}: {r}" for v in bad for r in v.reasons) + tuple(errors)
    if bad:
        return (
            Check(
                "runtime",
                FAIL,
                f"{len(bad)} of {len(verdicts)} host(s) cannot load it: {details[0]}",
                details,
            ),
            verdicts,
        )
    if errors:
        return Check("runtime", FAIL, f"unreadable libraries: {errors[0]}", details), verdicts
    if not known:
        return (
            Check(
                "runtime",
                SKIP,
                "no host snapshot records a runtime (glibc, libstdc++, Python): not checked",
            ),
            verdicts,
        )
    unknown = [v.host for v in verdicts if v.status == UNKNOWN]
    more = f"; runtime unknown for {', '.join(unknown)}" if unknown else ""
    return (
        Check(
            "runtime",
            PASS,
            f"{', '.join(v.host for v in known)}: glibc, libstdc++ and Python load it{more}",
        ),
        verdicts,
    )
