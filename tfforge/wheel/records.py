"""A wheel's own records, parsed as installers parse them, with bounds.

- `parse_metadata(data)`: METADATA as strict UTF-8 (pip refuses anything else), at most
  METADATA_MAX bytes and MAX_HEADER_LINES header lines (counted before any parser sees them),
  then `packaging.metadata`: Name and Version must be valid, a single-valued field may appear
  once, Requires-Python and Requires-Dist must parse.
- `parse_headers(data, what)`: the same bounds for WHEEL (RFC 822 headers, values stripped).
- `parse_record(data)`: RECORD through `installer.records` (the CSV rules of PEP 376 and the
  binary distribution format): three fields a row, a hash algorithm hashlib knows and is not
  weak, a size of ASCII digits.
"""

from __future__ import annotations

import base64
import csv
import hashlib
from dataclasses import dataclass
from email.parser import HeaderParser

from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file
from packaging.metadata import InvalidMetadata, Metadata, RawMetadata, parse_email

METADATA_MAX = 4 << 20  # real METADATA files are 1-70 KB (numpy's, with its licence: 62 KB)
MAX_HEADER_LINES = 20_000  # numpy's header block: ~1,000 lines
RECORD_MAX = 64 << 20  # TensorFlow's RECORD: ~1 MB
# Any hashlib algorithm except these (PEP 376 / the binary distribution format).
WEAK_HASHES = frozenset({"md5", "sha1"})
MAX_SIZE_DIGITS = 20
# Header names of the fields packaging knows (single-valued ones map exactly: home_page ->
# home-page); RawMetadata is packaging's public TypedDict of them.
_KNOWN_FIELDS = frozenset(k.replace("_", "-") for k in RawMetadata.__annotations__)


class RecordsError(ValueError):
    """A record file that cannot be trusted; the message says why."""


@dataclass(frozen=True)
class MetadataFacts:
    name: str
    version: str
    requires_python: str | None


@dataclass(frozen=True)
class Row:
    """One RECORD row: hash as `algorithm=urlsafe-b64` ("" when none), size (None when none)."""

    path: str
    hash: str
    size: int | None


def _text(data: bytes, what: str, limit: int) -> str:
    if len(data) > limit:
        raise RecordsError(f"{what} has {len(data)} bytes, over the {limit >> 20} MiB cap")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordsError(
            f"{what} is not UTF-8 (byte {exc.start}); installers refuse it"
        ) from None
    head = text.split("\n\n", 1)[0]
    lines = head.count("\n") + 1
    if lines > MAX_HEADER_LINES:
        raise RecordsError(f"{what} has over {MAX_HEADER_LINES} header lines; not read")
    return text


def parse_headers(data: bytes, what: str) -> dict[str, list[str]]:
    """Lower-cased header name -> stripped values, in order (WHEEL's form)."""
    msg = HeaderParser().parsestr(_text(data, what, METADATA_MAX))
    out: dict[str, list[str]] = {}
    for key, value in msg.items():
        out.setdefault(key.lower(), []).append(str(value).strip())
    return out


def parse_metadata(data: bytes) -> MetadataFacts:
    """Name, Version and Requires-Python of a METADATA file; RecordsError when unusable.

    Every field is validated by packaging; the one leniency is a field used before the
    Metadata-Version that introduced it (TensorFlow 2.14/2.15 write License-File in 2.1),
    which pip installs too. A known field given twice (or undecodable) is refused."""
    raw, unparsed = parse_email(_text(data, "METADATA", METADATA_MAX))
    bad = sorted(k for k in unparsed if k.lower() in _KNOWN_FIELDS)
    if bad:
        raise RecordsError(f"METADATA field {bad[0]!r} is given twice or cannot be parsed")
    try:
        meta = Metadata.from_raw(raw, validate=True)
    except ExceptionGroup as group:
        real = [e for e in group.exceptions if "introduced in metadata version" not in str(e)]
        if real:
            raise RecordsError(f"METADATA {real[0]}") from None
        meta = Metadata.from_raw(raw, validate=False)
    except InvalidMetadata as exc:
        raise RecordsError(f"METADATA {exc}") from None
    if not meta.name or meta.version is None:
        raise RecordsError("METADATA lacks a Name or Version header")
    # The text as written (validated above): an index shows it as the wheel states it.
    written = raw.get("requires_python")
    return MetadataFacts(meta.name, str(meta.version), written.strip() if written else None)


def parse_record(data: bytes) -> tuple[dict[str, Row], list[str]]:
    """RECORD's rows by path, and what is wrong with them (a whole-file fault stops there)."""
    try:
        text = _text(data, "RECORD", RECORD_MAX)
    except RecordsError as exc:
        return {}, [str(exc)]
    rows: dict[str, Row] = {}
    problems: list[str] = []
    try:
        elements = list(parse_record_file(text.splitlines()))
    except InvalidRecordEntry as exc:
        return {}, [f"RECORD is not a 3-column CSV file ({'; '.join(exc.issues)})"]
    except csv.Error as exc:  # a NUL, an unclosed quote
        return {}, [f"RECORD is not valid CSV ({exc})"]
    for path, hash_text, size_text in elements:
        if size_text and not (size_text.isascii() and size_text.isdigit()):
            problems.append(f"RECORD size {size_text[:40]!r} of {path} is not a byte count")
            size_text = ""
        elif len(size_text) > MAX_SIZE_DIGITS:
            problems.append(f"RECORD size of {path} has over {MAX_SIZE_DIGITS} digits")
            size_text = ""
        try:
            entry = RecordEntry.from_elements(path, hash_text, size_text)
        except InvalidRecordEntry as exc:
            problems.append(f"RECORD line for {path[:200]!r}: {'; '.join(exc.issues)}")
            continue
        digest = ""
        if entry.hash_ is not None:
            algo = entry.hash_.name
            if (
                algo in WEAK_HASHES
                or algo.startswith("shake_")
                or (algo not in hashlib.algorithms_guaranteed)
            ):
                problems.append(f"RECORD uses hash {algo!r} for {path}; use sha256")
            else:
                digest = str(entry.hash_)
        if path in rows:
            problems.append(f"RECORD lists {path} twice")
        rows[path] = Row(path, digest, entry.size)
    return rows, problems


def record_digest(digest: hashlib._Hash) -> str:
    """A hash as RECORD writes it: <algorithm>=<urlsafe base64 without padding>."""
    return f"{digest.name}=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
