"""verify's "built with" check: how any wheel's machine code was built (tfforge.wheel.builtwith),
and for a tfforge wheel, whether that is what its own build record says.

Third-party wheels: the check passes and says what built them. A tfforge wheel fails when an
ELF member's code names another compiler family or major version than its record's, or another
linker than the record's `-fuse-ld=`. The facts are cached per wheel sha256 and reader version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from tfforge import resources
from tfforge.files import write_json_atomic
from tfforge.paths import cache_dir
from tfforge.verify.wheelcheck import FAIL, PASS, SKIP, Check
from tfforge.wheel import builtwith
from tfforge.wheel.read import WheelFacts

NAME = "built-with"


def reader_key() -> str:
    """Changes whenever the reader could give another answer."""
    h = hashlib.sha256(Path(builtwith.__file__).read_bytes())
    h.update(resources.read_bytes(resources.DATA, "libstdcxx.toml"))
    return h.hexdigest()[:16]


def read(
    path: Path,
    sha256: str,
    *,
    use_cache: bool = True,
    members: list[builtwith.ElfBuild] | None = None,
) -> builtwith.BuiltWith:
    """The wheel's build facts, from the cache when this reader already read these bytes.
    members: every ELF member's facts when already read (else the wheel is read)."""
    cached = cache_dir("builtwith") / f"{sha256}-{reader_key()}.json"
    if use_cache and cached.is_file():
        try:
            rows = json.loads(cached.read_text())
            return builtwith.BuiltWith(tuple(_member(r) for r in rows))
        except (ValueError, TypeError, KeyError, OSError):
            pass  # a damaged cache entry is read again below
    if members is not None:
        built = builtwith.BuiltWith(tuple(members))
    else:
        built = builtwith.read_wheel(path)
    write_json_atomic(cached, [dataclasses.asdict(m) for m in built.members])
    return built


def _member(row: dict[str, Any]) -> builtwith.ElfBuild:
    """One cached ElfBuild (lists back to tuples); KeyError/TypeError when malformed."""
    return builtwith.ElfBuild(
        member=str(row["member"]),
        comments=tuple(str(c) for c in row["comments"]),
        needed=tuple(str(n) for n in row["needed"]),
        glibcxx=str(row["glibcxx"]),
        glibc=str(row["glibc"]),
        gold=str(row["gold"]),
        error=str(row["error"]),
    )


def _table(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _recorded(provenance: dict[str, Any]) -> tuple[str, str, str]:
    """(compiler, version, linker) a tfforge build record names ('' when it does not)."""
    spec = _table(provenance, "spec")
    compiler = str(spec.get("compiler") or "")
    version = str(spec.get(f"{compiler}_version") or "") if compiler in ("gcc", "clang") else ""
    bazel = _table(provenance, "commands").get("bazel")
    linker = next(
        (
            str(a).split("=", 2)[2]
            for a in (bazel if isinstance(bazel, list) else [])
            if str(a).startswith("--linkopt=-fuse-ld=")
        ),
        "",
    )
    return compiler, version, linker


def check(facts: WheelFacts, built: builtwith.BuiltWith) -> Check:
    """The built-with check of one wheel (see the module docstring)."""
    if not built.members:
        return Check(NAME, SKIP, "no ELF members: nothing in the wheel was compiled")
    said = f"built with {built.summary()}"
    details = tuple(f"{m.member}: {m.error}" for m in built.unreadable)
    if facts.provenance is None:
        return Check(NAME, PASS, said, details)
    compiler, version, linker = _recorded(facts.provenance)
    if not compiler or not version:
        return Check(NAME, SKIP, f"{said}; the build record names no compiler to compare")
    major = version.split(".")[0]
    wrong = [
        f"{m.member}: {m.compiler.label}"
        for m in built.members
        if m.compiler is not None
        and (m.compiler.name != compiler or m.compiler.version.split(".")[0] != major)
    ]
    if linker:
        wrong += [
            f"{m.member}: linked by {m.linker.label}, the record passes -fuse-ld={linker}"
            for m in built.members
            if m.linker is not None and m.linker.name != linker
        ]
    if wrong:
        return Check(
            NAME,
            FAIL,
            f"the build record says {compiler} {version}, but {wrong[0]} "
            f"({len(wrong)} contradiction(s)); {said}",
            tuple(wrong) + details,
        )
    if built.compiler is None:
        return Check(NAME, SKIP, f"{said}; no member names its compiler, nothing to compare")
    return Check(NAME, PASS, f"{said}; matches the build record ({compiler} {version})", details)
