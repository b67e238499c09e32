"""A content-addressed store: every file once, named by its sha256, shared by the kits beside it.

Layout: <kits folder>/store/sha256/<64 hex>. A file is written to a temporary name in the store
and renamed into place, so a store holds only whole files; one that is already there is kept.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tfforge.errors import ConfigError
from tfforge.files import io_error, sha256_file

STORE = "store"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int
    added: bool  # False: the store already had this content


def digest(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file, streamed."""
    return sha256_file(path), path.stat().st_size


class Store:
    """The store under `root` (a kits folder)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / STORE / "sha256"

    def path(self, sha256: str) -> Path:
        if not SHA256.fullmatch(sha256):
            raise ConfigError(f"{sha256!r} is not a sha256 (64 lowercase hex digits)")
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def regular(self, sha256: str) -> bool:
        """Whether the store holds this name as a regular file of its own: a symlink (which
        could lead to any file of the machine) or anything else is not content."""
        try:
            return stat.S_ISREG(os.lstat(self.path(sha256)).st_mode)
        except OSError:
            return False

    def put(self, src: Path, *, expect: str | None = None) -> Stored:
        """Copy src in (hashing while copying); ConfigError when `expect` is given and differs."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=".in-", dir=self.root)
        except OSError as exc:
            raise io_error(self.root, exc, "cannot be written") from None
        tmp = Path(tmp_name)
        h = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as fh:
                for chunk in iter(lambda: fh.read(CHUNK), b""):
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            sha = h.hexdigest()
            if expect is not None and sha != expect:
                raise ConfigError(f"{src}: sha256 {sha}, expected {expect}; the file changed")
            final = self.path(sha)
            if final.is_file():
                return Stored(sha, size, False)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
            return Stored(sha, size, True)
        except OSError as exc:
            raise io_error(src, exc, "cannot be stored") from None
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> Stored:
        with tempfile.NamedTemporaryFile(prefix=".bytes-", dir=self._ready()) as tmp:
            tmp.write(data)
            tmp.flush()
            return self.put(Path(tmp.name))

    def _ready(self) -> Path:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise io_error(self.root, exc, "cannot be written") from None
        return self.root

    def names(self) -> set[str]:
        """Every sha256 the store holds (temporary files left by a crash are not content)."""
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if SHA256.fullmatch(p.name)}

    def link_or_copy(self, sha256: str, dest: Path) -> None:
        """Place a stored file at dest: a hard link where the filesystem allows, else a copy."""
        if not self.regular(sha256):
            raise ConfigError(f"{self.path(sha256)}: not a regular file; capture the kit again")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(self.path(sha256), dest, follow_symlinks=False)
        except OSError:
            shutil.copyfile(self.path(sha256), dest)
