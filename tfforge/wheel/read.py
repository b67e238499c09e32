"""The one wheel reader: file name, WHEEL and METADATA, RECORD hashes and sizes, member rules.

Every consumer (verify, index, publish, smoke, bench, rebuild's compare, finalising a build)
reads wheels through here, under installer-grade rules: member names and types
(`wheel/members.py`), METADATA through `packaging.metadata` and RECORD through
`installer.records` with bounds (`wheel/records.py`), zip-bomb caps, and tfforge.json whose
`id` must be a build id before anything joins it to a path.

`check(path)` reads every member once, hashing it against RECORD; `verify` also has it extract
every member whose content is ELF (whatever its name; library names first, largest first), so
the ISA scan can start while the rest is still being hashed. `structure_problems(path)` is the
same pass without extraction. Decides nothing about CPUs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from packaging.tags import Tag, parse_tag
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from tfforge import grammar
from tfforge.errors import ConfigError
from tfforge.files import JsonDoc, io_error
from tfforge.text import clip
from tfforge.wheel import members, records
from tfforge.wheel.records import parse_record, record_digest  # noqa: F401 - edit's names

PROVENANCE = "tfforge.json"
LIBRARY_NAME = re.compile(r"\.so(\.\d+)*$")
BLOCK = 1 << 20
# Zip bomb caps, checked on the sizes the zip declares before a member is read (zipfile never
# expands a member past its declared size): a member over RATIO_FLOOR may expand at most
# MAX_RATIO times its compressed size; no member over MAX_MEMBER, no wheel over MAX_TOTAL.
# TensorFlow's libraries compress about 3-4:1 and the largest is about 1 GB.
MAX_RATIO = 100
RATIO_FLOOR = 16 << 20
MAX_MEMBER = 8 << 30
MAX_TOTAL = 32 << 30
PROVENANCE_MAX = 1 << 20  # tfforge.json: a few KB
# RECORD and its signatures, which RECORD does not list.
RECORD_FILES = ("RECORD", "RECORD.jws", "RECORD.p7s")


@dataclass(frozen=True)
class WheelFacts:
    """What a wheel says about itself (file name, .dist-info, WHEEL, METADATA)."""

    path: Path
    name: str  # distribution name from the file name (canonical)
    version: Version
    tags: frozenset[Tag]
    dist_info: str | None  # the .dist-info folder, when there is exactly one
    requires_python: str | None
    wheel_tags: frozenset[str]  # Tag lines of WHEEL
    members: int
    size: int  # bytes of the .whl file
    provenance: JsonDoc | None  # .dist-info/tfforge.json, parsed
    provenance_error: str | None

    @property
    def local_label(self) -> str | None:
        return self.version.local

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class WheelCheck:
    facts: WheelFacts
    problems: tuple[str, ...]


def structure_problems(path: Path) -> list[str]:
    """What is wrong with the wheel's structure (empty list = sound).

    ConfigError when the file is not a readable wheel at all.
    """
    return list(check(Path(path)).problems)


def open_wheel(path: Path) -> tuple[zipfile.ZipFile, str, Version, frozenset[Tag]]:
    """The open zip and the file name's (name, version, tags); ConfigError when unusable."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"wheel {str(path)!r} does not exist (or is not a file); pass a .whl")
    try:
        name, version, _build, tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename as exc:
        raise ConfigError(
            f"{path.name!r} is not a wheel file name ({exc}); wheels are named "
            "NAME-VERSION-PYTHON-ABI-PLATFORM.whl"
        ) from exc
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        archive = zipfile.ZipFile(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except zipfile.BadZipFile as exc:
        if head == b"PK\x03\x04":
            raise ConfigError(
                f"{path.name}: truncated or damaged zip ({exc}: no readable "
                "end-of-central-directory record); download or copy it again"
            ) from exc
        raise ConfigError(f"{path.name}: not a zip archive, so not a wheel ({exc})") from exc
    return archive, canonicalize_name(name), version, tags


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member may not be extracted or installed (its name or its file type), or None."""
    return members.name_problem(info.filename) or members.type_problem(info)


class LocalWriteError(Exception):
    """Writing an extracted member failed here (not a fault of the wheel)."""


def bomb_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a member's declared expansion is over the caps (MAX_MEMBER, MAX_RATIO), or None."""
    if info.file_size > MAX_MEMBER:
        return f"expands to {info.file_size} bytes, over the {MAX_MEMBER >> 30} GiB cap"
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return (
            f"expands {info.file_size // max(info.compress_size, 1)}:1 to {info.file_size} "
            f"bytes, over the {MAX_RATIO}:1 cap"
        )
    return None


def headers(data: bytes) -> dict[str, list[str]]:
    """The header block of WHEEL or METADATA (bounded; see records.parse_headers)."""
    return records.parse_headers(data, "METADATA")


def parse_provenance(data: bytes) -> tuple[JsonDoc | None, str | None]:
    """tfforge.json as (document, None) or (None, why it cannot be trusted).

    Its `id` names a folder under builds/ that verify reads: it must be a build id."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except RecursionError:
        return None, f"{PROVENANCE} is nested too deeply"
    except MemoryError:
        return None, f"{PROVENANCE} is too large to parse"
    except (ValueError, UnicodeDecodeError) as exc:  # includes the 4,300-digit int limit
        return None, f"{PROVENANCE} is not valid JSON ({clip(str(exc))})"
    if not isinstance(doc, dict):
        return None, f"{PROVENANCE} is not a JSON object"
    if "id" in doc and not grammar.is_build_id(doc["id"]):
        return None, f"{PROVENANCE} id {clip(repr(doc['id']))} is not a build id"
    return doc, None


def _dist_info(
    files: list[zipfile.ZipInfo], name: str, version: Version
) -> tuple[str | None, list[str]]:
    """The one top-level .dist-info folder, named after the file name's project and version."""
    tops = {i.filename.split("/")[0] for i in files if "/" in i.filename}
    found = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(found) != 1:
        listed = f" ({', '.join(found[:5])})" if found else ""
        return None, [f"expected one .dist-info folder, found {len(found)}{listed}"]
    dist_info = found[0]
    dname, _, dver = dist_info[: -len(".dist-info")].rpartition("-")
    try:
        same = canonicalize_name(dname) == name and Version(dver) == version
    except InvalidVersion:
        same = False
    if not same:
        return dist_info, [f"{dist_info} does not match the file name's {name} {version}"]
    return dist_info, []


def _wheel_tags(data: bytes, tags: frozenset[Tag], problems: list[str]) -> frozenset[str]:
    try:
        hdr = records.parse_headers(data, "WHEEL")
    except records.RecordsError as exc:
        problems.append(str(exc))
        return frozenset()
    wv = (hdr.get("wheel-version") or [""])[0]
    if len(hdr.get("wheel-version", [])) > 1 or not re.fullmatch(r"1\.[0-9]{1,4}", wv):
        problems.append(f"WHEEL has Wheel-Version {clip(wv) or 'missing'!r}; expected one 1.x")
    expanded: set[str] = set()
    for tag_line in hdr.get("tag", []):
        try:
            expanded |= {str(t) for t in parse_tag(tag_line)}
        except ValueError:
            problems.append(f"WHEEL has a malformed Tag line {clip(tag_line)!r}")
    from_name = {str(t) for t in tags}
    if expanded != from_name:
        problems.append(
            f"file name tags ({', '.join(sorted(from_name))}) differ from WHEEL Tag "
            f"lines ({clip(', '.join(sorted(expanded))) or 'none'})"
        )
    return frozenset(expanded)


def _metadata(
    data: bytes, name: str, version: Version, problems: list[str]
) -> records.MetadataFacts | None:
    try:
        meta = records.parse_metadata(data)
    except records.RecordsError as exc:
        problems.append(clip(str(exc), 300))
        return None
    if canonicalize_name(meta.name) != name:
        problems.append(f"METADATA Name {clip(meta.name)!r} differs from the file name's {name!r}")
    if Version(meta.version) != version:
        problems.append(f"METADATA Version {meta.version} differs from the file name's {version}")
    return meta


def _record_coverage(listed: dict[str, records.Row], names: list[str], dist_info: str) -> list[str]:
    """Installer rules: every file listed with hash and size, RECORD itself without, the
    signatures not at all, nothing listed that is absent."""
    problems = []
    signatures = {f"{dist_info}/{r}" for r in RECORD_FILES[1:]}
    record_name = f"{dist_info}/RECORD"
    present = set(names)
    unlisted = sorted(n for n in present if n not in listed and n not in signatures | {record_name})
    if unlisted:
        problems.append(
            f"{len(unlisted)} member(s) not in RECORD: "
            f"{', '.join(unlisted[:3])}{' ...' if len(unlisted) > 3 else ''}"
        )
    absent = sorted(n for n in listed if n not in present)
    if absent:
        problems.append(
            f"RECORD lists {len(absent)} file(s) not in the wheel: "
            f"{', '.join(clip(a) for a in absent[:3])}{' ...' if len(absent) > 3 else ''}"
        )
    for sig in sorted(signatures & set(listed)):
        problems.append(f"RECORD lists the signature {sig}, which it may not")
    own = listed.get(record_name)
    if own is not None and (own.hash or own.size is not None):
        problems.append("RECORD gives itself a hash or size; its own line must leave them empty")
    bare = sorted(
        n
        for n in present - signatures - {record_name}
        if n in listed and (not listed[n].hash or listed[n].size is None)
    )
    if bare:
        problems.append(
            f"RECORD has no hash or size for {len(bare)} file(s): {', '.join(bare[:3])}"
            + (" ..." if len(bare) > 3 else "")
        )
    return problems


def check(
    path: Path,
    *,
    extract_dir: Path | None = None,
    on_library: Callable[[str, Path], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    smallest_first: bool = False,
) -> WheelCheck:
    """Read the whole wheel once: structure problems, facts, and (with extract_dir) every member
    whose content is ELF, written there (members named like libraries first, largest first),
    each handed to on_library(member name, path) when complete (smallest first when asked: a
    single scanner starts sooner)."""
    path = Path(path)
    archive, name, version, tags = open_wheel(path)
    problems: list[str] = []
    with archive:
        infos = archive.infolist()
        problems += members.duplicate_problems(i.filename for i in infos)
        unsafe = set()
        for info in infos:
            why = member_problem(info)
            if why:
                unsafe.add(info.filename)
                problems.append(f"unsafe member path {clip(info.filename)!r}: {why}")
        files = [i for i in infos if not i.filename.endswith("/")]
        dist_info, found = _dist_info(files, name, version)
        problems += found
        by_name = {i.filename: i for i in files}

        def small(member: str, limit: int) -> bytes | None:
            info = by_name.get(f"{dist_info}/{member}") if dist_info else None
            if info is None:
                return None
            if info.file_size > limit or bomb_reason(info) or info.filename in unsafe:
                problems.append(
                    f"{info.filename} declares {info.file_size} bytes, over the "
                    f"{limit >> 10} KiB such a file may have, or is unsafe; not read"
                )
                return b""
            try:
                with archive.open(info) as fh:
                    return fh.read(limit + 1)[:limit]
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
                problems.append(f"{info.filename} cannot be read ({clip(str(exc))})")
                return b""

        wheel_tags: frozenset[str] = frozenset()
        wheel_meta = small("WHEEL", records.METADATA_MAX)
        if wheel_meta is None and dist_info:
            problems.append(f"{dist_info}/WHEEL is missing")
        elif wheel_meta:
            wheel_tags = _wheel_tags(wheel_meta, tags, problems)

        meta = None
        metadata = small("METADATA", records.METADATA_MAX)
        if metadata is None and dist_info:
            problems.append(f"{dist_info}/METADATA is missing")
        elif metadata:
            meta = _metadata(metadata, name, version, problems)

        provenance = provenance_error = None
        prov = small(PROVENANCE, PROVENANCE_MAX)
        if prov is not None:
            provenance, provenance_error = parse_provenance(prov)

        record_data = small("RECORD", records.RECORD_MAX)
        listed: dict[str, records.Row] = {}
        if record_data is None and dist_info:
            problems.append(f"{dist_info}/RECORD is missing")
        elif record_data is not None and dist_info:
            listed, rec_problems = records.parse_record(record_data)
            problems += rec_problems
            problems += _record_coverage(listed, list(by_name), dist_info)

        readable = [i for i in files if i.filename not in unsafe]

        def hinted(info: zipfile.ZipInfo) -> bool:
            return extract_dir is not None and LIBRARY_NAME.search(info.filename) is not None

        sign = 1 if smallest_first else -1
        order = sorted(
            readable, key=lambda i: (not hinted(i), sign * i.file_size if hinted(i) else 0)
        )
        total = sum(i.file_size for i in files)
        if total > MAX_TOTAL:
            problems.append(
                f"the members expand to {total} bytes, over the {MAX_TOTAL >> 30} "
                "GiB cap for a wheel; not read (a zip bomb?)"
            )
            order = []
        done = 0
        for n, info in enumerate(order):
            bomb = bomb_reason(info)
            if bomb:
                problems.append(f"member {info.filename} {bomb}; not read (a zip bomb?)")
                continue
            row = listed.get(info.filename)
            algo = row.hash.partition("=")[0] if row and row.hash else ""
            digest = hashlib.new(algo or "sha256")
            dest = extract_dir / f"{n:05d}.elf" if extract_dir is not None else None
            size, error, out = 0, None, None
            try:
                with archive.open(info) as src:
                    while block := src.read(BLOCK):
                        if size == 0 and dest is not None and members.is_elf(block):
                            out = _open_out(dest, info.file_size)
                        digest.update(block)
                        size += len(block)
                        if out is not None:
                            try:
                                out.write(block)
                            except OSError as exc:  # a full cache disk: ours, not the wheel's
                                raise LocalWriteError(exc) from None
                        if progress:
                            progress(done + size, total)
            except LocalWriteError as exc:
                assert dest is not None  # only an extraction writes
                _close(out, dest)
                dest.unlink(missing_ok=True)
                raise io_error(dest, exc.args[0], "cannot be written") from None
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
                error = clip(str(exc))
            finally:
                _close(out, dest)
            done += info.file_size
            if error:
                problems.append(f"member {info.filename} cannot be read ({error})")
            elif row is not None and row.hash:
                got = records.record_digest(digest)
                if got != row.hash:
                    problems.append(
                        f"RECORD hash mismatch for {info.filename} "
                        f"(RECORD {clip(row.hash)}, file {got})"
                    )
                if row.size is not None and row.size != size:
                    problems.append(
                        f"RECORD size mismatch for {info.filename} (RECORD {row.size}, file {size})"
                    )
            if out is not None and dest is not None:
                if not error and on_library:
                    on_library(info.filename, dest)
                elif error:
                    dest.unlink(missing_ok=True)

    facts = WheelFacts(
        path,
        name,
        version,
        tags,
        dist_info,
        meta.requires_python if meta else None,
        wheel_tags,
        len(files),
        path.stat().st_size,
        provenance,
        provenance_error,
    )
    return WheelCheck(facts, tuple(problems))


def _open_out(dest: Path, size: int) -> BinaryIO:
    """dest opened for writing (the caller closes it, through _close)."""
    try:
        out = open(dest, "wb")  # noqa: SIM115 - closed by the caller's _close, always
    except OSError as exc:
        raise io_error(dest, exc, "cannot be written") from None
    if size and hasattr(os, "posix_fallocate"):
        # one allocation instead of one per block: ~30% faster on ext4
        with contextlib.suppress(OSError):
            os.posix_fallocate(out.fileno(), 0, size)
    return out


def _close(out: BinaryIO | None, dest: Path | None) -> None:
    if out is not None and not out.closed:
        try:
            out.close()
        except OSError as exc:
            raise io_error(dest, exc, "cannot be written") from None


def elf_members(path: Path) -> list[str]:
    """The names of the members whose content starts with the ELF magic, whatever their name."""
    found = []
    archive = open_wheel(Path(path))[0]
    with archive:
        for info in archive.infolist():
            if info.filename.endswith("/") or member_problem(info) or bomb_reason(info):
                continue
            try:
                with archive.open(info) as fh:
                    if members.is_elf(fh.read(4)):
                        found.append(info.filename)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError):
                continue
    return found


def member_digests(path: Path) -> dict[str, tuple[str, int]]:
    """Every member's (sha256 hex, size), under the same caps as check; ConfigError naming the
    wheel and member when one is over a cap or unreadable."""
    out: dict[str, tuple[str, int]] = {}
    archive = open_wheel(Path(path))[0]
    with archive:
        infos = archive.infolist()
        if sum(i.file_size for i in infos) > MAX_TOTAL:
            raise ConfigError(f"{Path(path).name}: members over the {MAX_TOTAL >> 30} GiB cap")
        for info in infos:
            bomb = bomb_reason(info)
            if bomb:
                raise ConfigError(f"{Path(path).name}: member {clip(info.filename)!r} {bomb}")
            digest, size = hashlib.sha256(), 0
            try:
                with archive.open(info) as src:
                    while block := src.read(BLOCK):
                        digest.update(block)
                        size += len(block)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
                raise ConfigError(
                    f"{Path(path).name}: member {clip(info.filename)!r} cannot be read "
                    f"({clip(str(exc))})"
                ) from None
            out[info.filename] = (digest.hexdigest(), size)
    return out
