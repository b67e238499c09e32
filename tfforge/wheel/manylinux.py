"""The platform tag a wheel's libraries allow, decided by auditwheel's own verdict.

`decide(wheel)` runs `auditwheel show --json` (its documented output schema) on a built wheel and
returns the PEP 600 tag of its `overall_tag` (with the legacy alias PEP 600 defines, if any):
the highest glibc symbol version and the libstdc++/libgcc_s versions within a manylinux
policy, and only whitelisted external libraries. `linux_x86_64` when no policy fits, with why.

auditwheel's ISA-extension check is turned off (`--disable-isa-ext-check`): a tfforge wheel is
tuned to a CPU on purpose; the CPU it needs is its local version label and the x86 ISA-level note
glibc enforces at load (verify checks both per host). The tag promises the runtime only, which
is what PEP 600 defines it for.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfforge.errors import BuildError
from tfforge.wheel import read

LINUX = "linux_x86_64"
# PEP 600: the legacy names of three manylinux_x_y tags.
LEGACY = {
    "manylinux_2_5": "manylinux1",
    "manylinux_2_12": "manylinux2010",
    "manylinux_2_17": "manylinux2014",
}
_POLICY = re.compile(r"^(manylinux_[0-9]+_[0-9]+)_x86_64$")
ISA_NOTE = (
    "auditwheel's ISA-extension check is off: the CPU the wheel needs is its local version "
    "label and ISA-level note (verify checks them per host); the tag promises the runtime"
)


@dataclass(frozen=True)
class TagDecision:
    """The platform tag(s) a wheel gets and what auditwheel measured."""

    tag: str  # the PEP 600 tag, or linux_x86_64
    tags: tuple[str, ...]  # tag plus its legacy alias, as the file name carries them
    sym_tag: str  # the tag the symbol versions alone allow
    versioned_symbols: dict[str, list[str]]  # library -> versions the wheel needs from it
    external_libs: dict[str, str | None]  # libraries outside the wheel and every policy
    why: str

    @property
    def manylinux(self) -> bool:
        return self.tag != LINUX

    @property
    def glibc(self) -> str | None:
        """'2.31' for manylinux_2_31_x86_64."""
        m = re.fullmatch(r"manylinux_([0-9]+)_([0-9]+)_x86_64", self.tag)
        return f"{m[1]}.{m[2]}" if m else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "tags": list(self.tags),
            "sym_tag": self.sym_tag,
            "versioned_symbols": self.versioned_symbols,
            "external_libs": self.external_libs,
            "why": self.why,
            "checked_by": "auditwheel show --json --disable-isa-ext-check",
            "isa_check": ISA_NOTE,
        }


def tags_for(tag: str) -> tuple[str, ...]:
    """'manylinux_2_17_x86_64' -> (it, 'manylinux2014_x86_64'); other tags alone."""
    m = _POLICY.fullmatch(tag)
    if m and m[1] in LEGACY:
        return (tag, f"{LEGACY[m[1]]}_x86_64")
    return (tag,)


def auditwheel_show(wheel: Path, timeout: float = 3600.0) -> dict[str, Any]:
    """`auditwheel show --json --disable-isa-ext-check WHEEL` as a document; BuildError when it
    fails or prints something else."""
    argv = [
        sys.executable,
        "-m",
        "auditwheel",
        "show",
        "--json",
        "--disable-isa-ext-check",
        str(wheel),
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(f"auditwheel show {wheel.name} took more than {timeout:g}s") from None
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        doc = None
    if proc.returncode != 0 or not isinstance(doc, dict) or "error" in doc:
        said = (doc or {}).get("error") if isinstance(doc, dict) else None
        tail = said or proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BuildError(
            f"auditwheel show {wheel.name} failed (exit {proc.returncode}): "
            f"{tail if isinstance(tail, str) else tail[0]}"
        )
    return doc


def from_show(doc: dict[str, Any]) -> TagDecision:
    """The decision from an `auditwheel show --json` document."""
    overall = str(doc.get("overall_tag", LINUX))
    sym = str(doc.get("sym_tag", LINUX))
    versioned = {str(k): list(v) for k, v in (doc.get("versioned_symbols") or {}).items()}
    external = {str(k): v for k, v in (doc.get("external_libs") or {}).items()}
    if doc.get("pure"):
        return TagDecision("any", ("any",), "any", {}, {}, "pure Python: no libraries")
    if overall == LINUX or not _POLICY.fullmatch(overall):
        reasons = []
        if sym == LINUX:
            reasons.append("its symbol versions fit no manylinux policy")
        if external:
            reasons.append(
                "it needs libraries outside the wheel that no policy allows: "
                + ", ".join(sorted(external))
            )
        if doc.get("pyfpe") or doc.get("ucs2"):
            reasons.append("it uses PyFPE_jbuf or a UCS2 Python")
        why = "; ".join(reasons) or f"auditwheel's overall tag is {overall}"
        return TagDecision(LINUX, (LINUX,), sym, versioned, external, why)
    need = ", ".join(f"{lib}: {max(v, key=_vkey)}" for lib, v in sorted(versioned.items()) if v)
    return TagDecision(
        overall,
        tags_for(overall),
        sym,
        versioned,
        external,
        f"the newest symbol versions it needs ({need or 'none'}) fit {overall}",
    )


def _vkey(name: str) -> tuple[int, ...]:
    nums = re.findall(r"[0-9]+", name)
    return tuple(int(n) for n in nums)


def decide(wheel: Path, timeout: float = 3600.0) -> TagDecision:
    """The tag a wheel's libraries allow. A wheel with no ELF member gives auditwheel nothing to
    measure (it refuses such a wheel): its own platform tag stays, and the decision says so.
    The members are looked at only when auditwheel refuses, so a wheel with libraries is read
    once, by auditwheel."""
    try:
        return from_show(auditwheel_show(wheel, timeout))
    except BuildError:
        if read.elf_members(wheel):
            raise
    own = platform_of(wheel.name)
    return TagDecision(
        own[0],
        own,
        own[0],
        {},
        {},
        "no ELF library in the wheel: nothing for auditwheel to measure; its tag stays",
    )


def platform_of(wheel_name: str) -> tuple[str, ...]:
    """The platform tags in a wheel's file name ('manylinux_2_31_x86_64', ...)."""
    stem = wheel_name[: -len(".whl")] if wheel_name.endswith(".whl") else wheel_name
    return tuple(stem.rsplit("-", 1)[-1].split("."))


def check_agrees(wheel: Path, expected: TagDecision, timeout: float = 3600.0) -> TagDecision:
    """auditwheel's verdict on the finished wheel must name the tag its file name carries."""
    seen = decide(wheel, timeout)
    carried = platform_of(wheel.name)
    if seen.tag != expected.tag or carried != expected.tags:
        raise BuildError(
            f"{wheel.name}: auditwheel says {seen.tag}, the file is tagged "
            f"{'.'.join(carried)}; the finished wheel's tag is not what its libraries allow"
        )
    return seen
