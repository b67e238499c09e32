"""File helpers every module shares: the one way to read a user-given file, the one way to write.

Reading (`read_user_bytes`/`read_user_text`): regular files only (a FIFO or device would block or
never end), bounded size, UTF-8 text; every failure is one ConfigError line naming the file.
Writing (`write_atomic`, `write_json_atomic`): into a temporary file beside the target, renamed
into place; on any failure the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import stat
from pathlib import Path
from typing import Any, TypeAlias

from tfforge.errors import ConfigError

# A JSON object read from or written to a file whose fields are not fixed here (build.json,
# provenance): its values are whatever the document holds, checked where they are read.
JsonDoc: TypeAlias = dict[str, Any]

MAX_INPUT_BYTES = 16 << 20  # cpuinfo texts, snapshots, tfforge.toml: a few KB; refuse absurd ones


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed (wheels can be hundreds of MB)."""
    import hashlib  # loads OpenSSL (~5-9 ms): only for commands that hash (not detect)

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def io_error(path: object, exc: OSError, doing: str = "cannot be read") -> ConfigError:
    """The one-line error for a local I/O failure on `path`."""
    why = exc.strerror or exc.__class__.__name__
    return ConfigError(f"{path}: {doing} ({why}); fix the path or free the space")


def read_user_bytes(
    path: str | Path, *, missing: str = "no such file", limit: int = MAX_INPUT_BYTES
) -> bytes:
    """The bytes of a user-given file; ConfigError unless it is a readable regular file.

    Opened non-blocking, then checked with fstat on the open descriptor: a FIFO is refused
    before anything waits on it, and the check is about the file actually read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except OSError as exc:
        raise io_error(path, exc) from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ConfigError(
            f"{path}: not a regular file (a folder, pipe or device); pass a regular file"
        )
    with os.fdopen(fd, "rb") as fh:
        if st.st_size > limit:
            raise ConfigError(
                f"{path}: {st.st_size} bytes is more than the "
                f"{limit >> 20} MiB such a file can be; pass the right file"
            )
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise io_error(path, exc) from exc
    if len(data) > limit:
        raise ConfigError(f"{path}: more than {limit >> 20} MiB; pass the right file")
    return data


def read_user_text(
    path: str | Path, *, missing: str = "no such file", limit: int = MAX_INPUT_BYTES
) -> str:
    """A user-given UTF-8 text file (see read_user_bytes)."""
    data = read_user_bytes(path, missing=missing, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); pass a text file") from exc


def parse_json(text: str | bytes, where: object) -> object:
    """A JSON document; every way the parser can fail (syntax, nesting past the recursion
    limit, an integer of over 4,300 digits, memory) is one ConfigError naming `where`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}: malformed JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
        ) from None
    except RecursionError:
        raise ConfigError(f"{where}: JSON nested too deeply") from None
    except MemoryError:
        raise ConfigError(f"{where}: JSON too large to parse") from None
    except (ValueError, UnicodeDecodeError) as exc:  # e.g. the 4,300-digit integer limit
        raise ConfigError(f"{where}: not usable JSON ({str(exc)[:80]})") from None


def read_json_record(path: str | Path, *, limit: int = MAX_INPUT_BYTES) -> JsonDoc:
    """A JSON object tfforge wrote earlier and reads back (build.json, rebuild.json,
    provenance.json, a Slurm cell's result): through read_user_bytes (regular file, size cap),
    then parse_json; ConfigError unless it is a JSON object."""
    doc = parse_json(read_user_bytes(path, limit=limit), path)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not a JSON object; remove it and run the step again")
    return doc


def expand(spec: str) -> list[Path]:
    """A path the user typed: itself when it exists (a file may be named `a[1].whl`), else what
    it matches as a glob, sorted; [] when neither."""
    path = Path(spec).expanduser()
    if path.exists() or path.is_symlink() or not glob.has_magic(spec):
        return [path]
    return sorted(Path(p) for p in glob.glob(str(path)))


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file beside it and a rename.

    The temporary name carries the process id: two processes writing the same file (a shared
    cache) never write into each other's temporary file. Any OSError (a folder in the way, a
    parent that is a file, no permission, a full disk) is one ConfigError naming the path; the
    temporary file is gone and the target untouched. Hand-written: the standard library has no
    atomic write and the atomicwrites package is no longer maintained."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; pass a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise io_error(path.parent, exc, "cannot be made a folder") from exc
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
        os.replace(tmp, path)
    except OSError as exc:
        raise io_error(path, exc, "cannot be written") from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return path


def write_json_atomic(path: Path, doc: object) -> Path:
    """Write sorted, indented JSON atomically (see write_atomic)."""
    return write_atomic(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
