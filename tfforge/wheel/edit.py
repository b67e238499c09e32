"""Finalizing a freshly built wheel: local version label, provenance, RECORD, deterministic zip.

`finalize(raw, out_dir, local_version="avx2.fma", provenance={...})` turns
`tensorflow_cpu-2.21.0-cp311-cp311-linux_x86_64.whl` into
`tensorflow_cpu-2.21.0+avx2.fma-cp311-cp311-linux_x86_64.whl`: the `.dist-info` (and `.data`)
directory is renamed, METADATA's Version rewritten, `<dist-info>/tfforge.json` added and RECORD
rewritten with sha256 and sizes. Members are streamed (TensorFlow's .so files are large), written
in a fixed order with a fixed timestamp, so the same inputs give the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from tfforge.errors import BuildError, ConfigError
from tfforge.wheel.read import PROVENANCE, RECORD_FILES, member_problem
from tfforge.wheel.records import Row, parse_record, record_digest

# The earliest date a zip entry can carry; fixed so rebuilding the same wheel gives the same bytes.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
CHUNK = 1 << 20


def labelled_version(version: str, label: str) -> Version:
    """2.21.0 + 'avx2.fma' -> 2.21.0+avx2.fma (an existing local label is kept in front)."""
    try:
        base = Version(version)
    except InvalidVersion:
        raise BuildError(
            f"wheel version {version!r} is not PEP 440; check the wheel target"
        ) from None
    if not label:
        return base
    local = f"{base.local}.{label}" if base.local else label
    try:
        return Version(f"{base.public}+{local}")
    except InvalidVersion:
        raise ConfigError(
            f"local version label {label!r} is not valid PEP 440 (letters, "
            f"digits and dots); fix derived.local_version in build.json"
        ) from None


def _rewrite_metadata(data: bytes, version: str) -> bytes:
    """Replace the Version header (headers end at the first blank line).

    Hand-written: only that line may change. packaging.metadata parses METADATA but writes no
    byte-for-byte copy, and email's generator re-folds headers."""
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise BuildError("wheel METADATA is not UTF-8; check the wheel target") from None
    for index, line in enumerate(lines):
        if not line.strip():
            break
        if line.lower().startswith("version:"):
            lines[index] = f"Version: {version}"
            return "\n".join(lines).encode("utf-8")
    raise BuildError("wheel METADATA has no Version header; check the wheel target")


def _rewrite_wheel(data: bytes, platforms: tuple[str, ...]) -> bytes:
    """WHEEL with its Tag lines for the new platform tags (one line per python-abi-platform)."""
    lines, out, pyabi = data.decode("utf-8").split("\n"), [], []
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "tag":
            pair = value.strip().rsplit("-", 1)[0]
            if pair not in pyabi:
                pyabi.append(pair)
            continue
        out.append(line)
    if not pyabi:
        raise BuildError("wheel WHEEL file has no Tag line; check the wheel target")
    while out and not out[-1].strip():
        out.pop()
    out += [f"Tag: {pair}-{plat}" for pair in pyabi for plat in platforms]
    return ("\n".join(out) + "\n").encode("utf-8")


def _zip_info(name: str, source: zipfile.ZipInfo | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    executable = source is not None and (source.external_attr >> 16) & 0o111
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    return info


def finalize(
    raw: Path,
    out_dir: Path,
    *,
    local_version: str,
    provenance: Mapping[str, object],
    platforms: tuple[str, ...] | None = None,
) -> Path:
    """Write the finalized wheel into out_dir and return its path (see module docstring).

    platforms: the platform tags the wheel gets instead of its own (tfforge/wheel/manylinux.py
    decides them), in the file name and WHEEL's Tag lines.

    Raises BuildError when the raw wheel is inconsistent (bad name, unsafe paths, a member whose
    hash or size differs from its RECORD line), ConfigError for an invalid local label.
    """
    raw = Path(raw)
    try:
        parse_wheel_filename(raw.name)
    except InvalidWheelFilename as exc:
        raise BuildError(f"built wheel name {raw.name!r} is invalid ({exc})") from exc
    dist, old_version, rest = raw.name[: -len(".whl")].split("-", 2)
    new_version = str(labelled_version(old_version, local_version))
    old_info, new_info = f"{dist}-{old_version}.dist-info", f"{dist}-{new_version}.dist-info"
    old_data, new_data = f"{dist}-{old_version}.data", f"{dist}-{new_version}.data"
    if platforms:
        rest = f"{rest.rsplit('-', 1)[0]}-{'.'.join(platforms)}"
    final = Path(out_dir) / f"{dist}-{new_version}-{rest}.whl"

    def renamed(name: str) -> str:
        top, _, below = name.partition("/")
        top = {old_info: new_info, old_data: new_data}.get(top, top)
        return f"{top}/{below}" if below else top

    try:
        archive = zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BuildError(f"built wheel {raw.name} is not a readable zip ({exc})") from exc
    tmp = final.with_name(f".{final.name}.tmp")
    try:
        with archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
            unsafe = [i.filename for i in archive.infolist() if member_problem(i)]
            if unsafe:
                raise BuildError(f"built wheel {raw.name} has unsafe member paths: {unsafe[:3]}")
            names = {i.filename for i in members}
            if f"{old_info}/METADATA" not in names or f"{old_info}/RECORD" not in names:
                raise BuildError(f"built wheel {raw.name} lacks {old_info}/METADATA or RECORD")
            listed, problems = parse_record(archive.read(f"{old_info}/RECORD"))
            if problems:
                raise BuildError(f"built wheel {raw.name}: {problems[0]}")
            # RECORD and its signatures are not listed in RECORD; the signatures are dropped
            # below, since they sign the RECORD that is rewritten.
            record_files = {f"{old_info}/{r}" for r in RECORD_FILES}
            unlisted = sorted(names - set(listed) - record_files)
            missing = sorted(set(listed) - names)
            if unlisted or missing:
                raise BuildError(
                    f"built wheel {raw.name}: RECORD does not match the files "
                    f"(not listed: {unlisted[:3]}, listed but absent: {missing[:3]})"
                )
            # Package files first, then .dist-info with RECORD last, each group sorted.
            members.sort(
                key=lambda i: (renamed(i.filename).startswith(new_info + "/"), renamed(i.filename))
            )
            record: list[tuple[str, str, int]] = []
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
                for member in members:
                    if member.filename in record_files:
                        continue
                    target = renamed(member.filename)
                    rewrite = {
                        f"{old_info}/METADATA": lambda d: _rewrite_metadata(d, new_version),
                        **(
                            {f"{old_info}/WHEEL": lambda d: _rewrite_wheel(d, platforms)}
                            if platforms
                            else {}
                        ),
                    }.get(member.filename)
                    if rewrite is not None:
                        data = archive.read(member)
                        _check(member.filename, hashlib.sha256(data), len(data), listed)
                        data = rewrite(data)
                        out.writestr(_zip_info(target, member), data)
                        record.append((target, record_digest(hashlib.sha256(data)), len(data)))
                        continue
                    digest, size = hashlib.sha256(), 0
                    with (
                        archive.open(member) as src,
                        out.open(
                            _zip_info(target, member), "w", force_zip64=member.file_size >= 1 << 31
                        ) as dst,
                    ):
                        for block in iter(lambda: src.read(CHUNK), b""):
                            digest.update(block)
                            size += len(block)
                            dst.write(block)
                    _check(member.filename, digest, size, listed)
                    record.append((target, record_digest(digest), size))
                doc = (
                    json.dumps(dict(provenance), indent=2, sort_keys=True, default=str) + "\n"
                ).encode("utf-8")
                out.writestr(_zip_info(f"{new_info}/{PROVENANCE}"), doc)
                record.append(
                    (f"{new_info}/{PROVENANCE}", record_digest(hashlib.sha256(doc)), len(doc))
                )
                text = io.StringIO()
                writer = csv.writer(text, lineterminator="\n")
                for row in sorted(record, key=lambda r: (r[0].startswith(new_info + "/"), r[0])):
                    writer.writerow(row)
                writer.writerow((f"{new_info}/RECORD", "", ""))
                out.writestr(_zip_info(f"{new_info}/RECORD"), text.getvalue().encode("utf-8"))
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def _check(name: str, digest: hashlib._Hash, size: int, listed: Mapping[str, Row]) -> None:
    """A member must match its RECORD line where that line has a hash."""
    want_hash, want_size = listed[name].hash, listed[name].size
    if want_hash and (
        want_hash != record_digest(digest) or (want_size is not None and want_size != size)
    ):
        raise BuildError(
            f"built wheel member {name} does not match its RECORD line "
            f"({want_hash}, {want_size} bytes); the export is corrupt, rebuild"
        )
