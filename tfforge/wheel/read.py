"""Reading wheels: file name, WHEEL and METADATA, RECORD hashes and sizes, safe member paths.

`check(path)` reads every member once, hashing it against RECORD; `verify` also has it extract
the ELF libraries on the way (largest first), so the ISA scan can start while the rest is
still being hashed. `structure_problems(path)` (used by publish) is the same pass without
extraction. Decides nothing about CPUs.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

from packaging.tags import Tag, parse_tag
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from tfforge.errors import ConfigError
from tfforge.files import JsonDoc, io_error

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
SMALL_MAX = 64 << 20  # WHEEL, METADATA, RECORD, tfforge.json (TensorFlow's RECORD: ~1 MB)
LINK_MAX = 4096  # PATH_MAX: a longer symlink target is refused, never skipped
# RECORD may use any hashlib algorithm except these (PEP 376 / the binary distribution spec).
WEAK_HASHES = {"md5", "sha1"}
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


def unsafe_reason(info: zipfile.ZipInfo, link_target: str | None = None) -> str | None:
    """Why a member path could write outside the install folder, or None."""
    name = info.filename
    parts = PurePosixPath(name).parts
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if "\\" in name:
        return "backslash in path"
    if ".." in parts:
        return "'..' in path"
    if link_target is not None:
        target = PurePosixPath(link_target)
        depth = len(parts) - 1
        if target.is_absolute():
            return f"symlink to absolute path {link_target!r}"
        for part in target.parts:
            depth += -1 if part == ".." else (0 if part == "." else 1)
            if depth < 0:
                return f"symlink to {link_target!r}, outside the wheel"
    return None


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


def _is_link(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def headers(data: bytes) -> dict[str, list[str]]:
    """The header block of WHEEL or METADATA: lower-cased name -> stripped values, in order."""
    msg = HeaderParser().parsestr(data.decode("utf-8", "replace"))
    out: dict[str, list[str]] = {}
    for key, value in msg.items():
        out.setdefault(key.lower(), []).append(value.strip())
    return out


def record_digest(digest: hashlib._Hash) -> str:
    """A hash as RECORD writes it: <algorithm>=<urlsafe base64 without padding>."""
    return f"{digest.name}=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def parse_record(data: bytes) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """RECORD's rows as {path: (hash, size)} and what is wrong with its text."""
    rows, problems = {}, []
    try:
        for row in csv.reader(io.StringIO(data.decode("utf-8"))):
            if not row:
                continue
            if len(row) != 3:
                problems.append(f"RECORD line {row!r} does not have 3 fields")
                continue
            if row[2] and not row[2].isdigit():
                problems.append(f"RECORD size {row[2]!r} of {row[0]} is not a byte count")
            if row[0] in rows:
                problems.append(f"RECORD lists {row[0]} twice")
            rows[row[0]] = (row[1], row[2])
    except (UnicodeDecodeError, csv.Error) as exc:
        problems.append(f"RECORD is not UTF-8 CSV ({exc})")
    return rows, problems


def check(
    path: Path,
    *,
    extract_dir: Path | None = None,
    on_library: Callable[[str, Path], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WheelCheck:
    """Read the whole wheel once: structure problems, facts, and (with extract_dir) the ELF
    libraries written there, largest first, each handed to on_library when complete."""
    path = Path(path)
    archive, name, version, tags = open_wheel(path)
    problems: list[str] = []
    with archive:
        infos = archive.infolist()
        files = [i for i in infos if not i.is_dir()]
        seen: set[str] = set()
        for info in files:
            if info.filename in seen:
                problems.append(f"member {info.filename} appears twice in the zip")
            seen.add(info.filename)
            target = None
            if _is_link(info) and not bomb_reason(info):
                try:
                    with archive.open(info) as fh:
                        raw = fh.read(LINK_MAX + 1)
                    target = raw.decode("utf-8", "replace")
                except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError):
                    target = "?"
            why = (
                f"symlink target longer than {LINK_MAX} bytes"
                if target is not None and len(target.encode()) > LINK_MAX
                else unsafe_reason(info, target)
            )
            if why:
                problems.append(f"unsafe member path {info.filename!r}: {why}")

        # .dist-info, WHEEL, METADATA
        tops = {
            PurePosixPath(i.filename).parts[0]
            for i in files
            if len(PurePosixPath(i.filename).parts) > 1
        }
        infos_dirs = sorted(t for t in tops if t.endswith(".dist-info"))
        dist_info = None
        if len(infos_dirs) != 1:
            problems.append(
                f"expected one .dist-info folder, found {len(infos_dirs)}"
                + (f" ({', '.join(infos_dirs)})" if infos_dirs else "")
            )
        else:
            dist_info = infos_dirs[0]
            dname, _, dver = dist_info[: -len(".dist-info")].rpartition("-")
            try:
                same = canonicalize_name(dname) == name and Version(dver) == version
            except InvalidVersion:
                same = False
            if not same:
                problems.append(f"{dist_info} does not match the file name's {name} {version}")
        by_name = {i.filename: i for i in files}

        def small(member: str) -> bytes | None:
            info = by_name.get(f"{dist_info}/{member}") if dist_info else None
            if info is None:
                return None
            if info.file_size > SMALL_MAX or bomb_reason(info):
                problems.append(
                    f"{info.filename} declares {info.file_size} bytes, over the "
                    f"{SMALL_MAX >> 20} MiB a metadata file may have; not read"
                )
                return b""
            try:
                return archive.read(info)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                problems.append(f"{info.filename} cannot be read ({exc})")
                return b""

        wheel_tags: frozenset[str] = frozenset()
        wheel_meta = small("WHEEL")
        if wheel_meta is None and dist_info:
            problems.append(f"{dist_info}/WHEEL is missing")
        elif wheel_meta:
            hdr = headers(wheel_meta)
            wv = (hdr.get("wheel-version") or [""])[0]
            if not wv.startswith("1."):
                problems.append(f"WHEEL has Wheel-Version {wv or 'missing'!r}; expected 1.x")
            expanded = set()
            for tag_line in hdr.get("tag", []):
                try:
                    expanded |= {str(t) for t in parse_tag(tag_line)}
                except ValueError:
                    problems.append(f"WHEEL has a malformed Tag line {tag_line!r}")
            wheel_tags = frozenset(expanded)
            from_name = {str(t) for t in tags}
            if wheel_tags != from_name:
                problems.append(
                    f"file name tags ({', '.join(sorted(from_name))}) differ from WHEEL Tag "
                    f"lines ({', '.join(sorted(wheel_tags)) or 'none'})"
                )

        meta_name = meta_version = requires_python = None
        metadata = small("METADATA")
        if metadata is None and dist_info:
            problems.append(f"{dist_info}/METADATA is missing")
        elif metadata:
            hdr = headers(metadata)
            meta_name = next(iter(hdr.get("name", ())), None)
            meta_version = next(iter(hdr.get("version", ())), None)
            requires_python = next(iter(hdr.get("requires-python", ())), None)
            if not meta_name or not meta_version:
                problems.append("METADATA lacks a Name or Version header")
            else:
                if canonicalize_name(meta_name) != name:
                    problems.append(
                        f"METADATA Name {meta_name!r} differs from the file name's {name!r}"
                    )
                try:
                    if Version(meta_version) != version:
                        problems.append(
                            f"METADATA Version {meta_version} differs from the "
                            f"file name's {version}"
                        )
                except InvalidVersion:
                    problems.append(f"METADATA Version {meta_version!r} is not PEP 440")

        provenance = provenance_error = None
        prov = small(PROVENANCE)
        if prov is not None:
            try:
                provenance = json.loads(prov)
                if not isinstance(provenance, dict):
                    provenance, provenance_error = None, f"{PROVENANCE} is not a JSON object"
            except (ValueError, UnicodeDecodeError) as exc:
                provenance_error = f"{PROVENANCE} is not valid JSON ({exc})"
            except RecursionError:
                provenance_error = f"{PROVENANCE} is nested too deeply"

        # RECORD: every member listed, every listed member present, hashes and sizes equal.
        record_data = small("RECORD")
        listed: dict[str, tuple[str, str]] = {}
        if record_data is None and dist_info:
            problems.append(f"{dist_info}/RECORD is missing")
        elif record_data:
            listed, rec_problems = parse_record(record_data)
            problems += rec_problems
        record_names = {f"{dist_info}/{r}" for r in RECORD_FILES} if dist_info else set()
        unlisted = sorted(n for n in seen if n not in listed and n not in record_names)
        if record_data is not None and unlisted:
            problems.append(
                f"{len(unlisted)} member(s) not in RECORD: "
                f"{', '.join(unlisted[:3])}{' ...' if len(unlisted) > 3 else ''}"
            )
        absent = sorted(n for n in listed if n not in seen)
        if absent:
            problems.append(
                f"RECORD lists {len(absent)} file(s) not in the wheel: "
                f"{', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}"
            )

        def wanted(info: zipfile.ZipInfo) -> bool:
            return (
                extract_dir is not None
                and LIBRARY_NAME.search(info.filename) is not None
                and not _is_link(info)
                and unsafe_reason(info) is None
            )

        order = sorted(files, key=lambda i: (not wanted(i), -i.file_size if wanted(i) else 0))
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
            dest = (
                extract_dir / f"{n:05d}-{PurePosixPath(info.filename).name}"
                if extract_dir is not None and wanted(info)
                else None
            )
            digest_line, size_line = listed.get(info.filename, ("", ""))
            algo = digest_line.partition("=")[0]
            # shake_* are variable-length: RECORD cannot name their length, so they never fit.
            if algo and (
                algo in WEAK_HASHES
                or algo.startswith("shake_")
                or algo not in hashlib.algorithms_guaranteed
            ):
                problems.append(f"RECORD uses hash {algo!r} for {info.filename}; use sha256")
                algo = ""
            digest = hashlib.new(algo or "sha256")
            size = 0
            error = None
            try:
                out = open(dest, "wb") if dest else None  # noqa: SIM115 - closed below, always
            except OSError as exc:
                raise io_error(dest, exc, "cannot be written") from None
            if out is not None and info.file_size and hasattr(os, "posix_fallocate"):
                # one allocation instead of one per block: ~30% faster on ext4
                with contextlib.suppress(OSError):
                    os.posix_fallocate(out.fileno(), 0, info.file_size)
            try:
                with archive.open(info) as src:
                    while block := src.read(BLOCK):
                        digest.update(block)
                        size += len(block)
                        if out:
                            try:
                                out.write(block)
                            except OSError as exc:  # a full cache disk: ours, not the wheel's
                                raise LocalWriteError(exc) from None
                        if progress:
                            progress(done + size, total)
            except LocalWriteError as exc:
                assert out is not None and dest is not None  # raised by a write to `out` only
                with contextlib.suppress(OSError):
                    out.close()
                dest.unlink(missing_ok=True)
                raise io_error(dest, exc.args[0], "cannot be written") from None
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
                error = str(exc)
            finally:
                if out and not out.closed:
                    try:
                        out.close()
                    except OSError as exc:
                        raise io_error(dest, exc, "cannot be written") from None
            done += info.file_size
            if error:
                problems.append(f"member {info.filename} cannot be read ({error})")
            elif digest_line and algo:
                got = record_digest(digest)
                if got != digest_line:
                    problems.append(
                        f"RECORD hash mismatch for {info.filename} "
                        f"(RECORD {digest_line}, file {got})"
                    )
                if size_line and size_line != str(size):
                    problems.append(
                        f"RECORD size mismatch for {info.filename} "
                        f"(RECORD {size_line}, file {size})"
                    )
            elif info.filename in listed and info.filename not in record_names:
                problems.append(f"RECORD has no hash for {info.filename}")
            if dest is not None:
                if not error and _is_elf(dest):
                    if on_library:
                        on_library(info.filename, dest)
                else:
                    dest.unlink(missing_ok=True)

    facts = WheelFacts(
        path,
        name,
        version,
        tags,
        dist_info,
        requires_python,
        wheel_tags,
        len(files),
        path.stat().st_size,
        provenance,
        provenance_error,
    )
    return WheelCheck(facts, tuple(problems))


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"\x7fELF"
