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
import hashlib
from dataclasses import dataclass
from email.parser import HeaderParser

from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file
from packaging.metadata import InvalidMetadata, Metadata, parse_email

METADATA_MAX = 4 << 20  # real METADATA files are 1-70 KB (numpy's, with its licence: 62 KB)
MAX_HEADER_LINES = 20_000  # numpy's header block: ~1,000 lines
RECORD_MAX = 64 << 20  # TensorFlow's RECORD: ~1 MB
# Any hashlib algorithm except these (PEP 376 / the binary distribution format).
WEAK_HASHES = frozenset({"md5", "sha1"})
MAX_SIZE_DIGITS = 20


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
    """Name, Version and Requires-Python of a METADATA file; RecordsError when unusable."""
    raw, unparsed = parse_email(_text(data, "METADATA", METADATA_MAX))
    repeated = sorted(k for k, v in unparsed.items() if isinstance(v, list) and len(v) > 1)
    known = {"name", "version", "metadata-version", "requires-python", "summary"}
    twice = [k for k in repeated if k in known]
    if twice:
        raise RecordsError(f"METADATA has {twice[0]!r} more than once; which one holds?")
    meta = Metadata.from_raw(raw, validate=False)
    try:
        name, version = meta.name, meta.version
        requires_python = meta.requires_python
        meta.requires_dist  # noqa: B018 - parses every Requires-Dist (raises when one is bad)
    except InvalidMetadata as exc:
        raise RecordsError(f"METADATA {exc}") from None
    except (KeyError, AttributeError):
        raise RecordsError("METADATA lacks a Name or Version header") from None
    if not name or version is None:
        raise RecordsError("METADATA lacks a Name or Version header")
    # The text as written (validated above): an index shows it as the wheel states it.
    written = raw.get("requires_python")
    return MetadataFacts(
        name, str(version), written.strip() if requires_python and written else None
    )


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
    except Exception as exc:  # csv.Error: a NUL, an unclosed quote
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
