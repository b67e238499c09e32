"""Where a build's TensorFlow source comes from: the release's pinned git tag and commit, or a
local folder, walked file by file into a content digest (paths, modes, contents; not its
location), so the digest is an input of the build id.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfforge.build import toolchains
from tfforge.build.inputs import short
from tfforge.errors import ConfigError
from tfforge.files import sha256_file

_SKIP_TOP = (".git", ".tf_configure.bazelrc")  # VCS data; configure's output (regenerated)
_SKIP_ANY = ("__pycache__",)


@dataclass(frozen=True, kw_only=True)
class SourceEntry:
    path: str  # relative, '/'-separated
    kind: str  # 'file' or 'link'
    mode: int  # 0o644 / 0o755 for files, 0 for links
    digest: str  # sha256 of the content (files) or of the link target (links)
    target: str = ""  # link target


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where the TensorFlow source comes from: the pinned git tag or a local directory."""

    kind: str  # 'git' or 'local'
    url: str | None = None
    tag: str | None = None
    commit: str | None = None
    path: Path | None = field(default=None, compare=False)  # not an input of the bytes
    tree_sha256: str | None = None
    entries: tuple[SourceEntry, ...] = field(default=(), compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        if self.kind == "git":
            return {"kind": "git", "url": self.url, "tag": self.tag, "commit": self.commit}
        return {"kind": "local", "tree_sha256": self.tree_sha256, "files": len(self.entries)}


def _entry(full: Path, rel: str, root_real: Path, where: str) -> SourceEntry:
    st = full.lstat()
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(full)
        dest = (full.parent / target).resolve()
        if os.path.isabs(target) or not dest.is_relative_to(root_real):
            raise ConfigError(
                f"{where}: symlink {rel} -> {target} points outside "
                "the source folder; replace it with the file it points to"
            )
        digest = hashlib.sha256(target.encode()).hexdigest()
        return SourceEntry(path=rel, kind="link", mode=0, digest=digest, target=target)
    if stat.S_ISREG(st.st_mode):
        mode = 0o755 if st.st_mode & 0o111 else 0o644
        return SourceEntry(path=rel, kind="file", mode=mode, digest=sha256_file(full))
    raise ConfigError(f"{where}: {rel} is not a regular file, folder or symlink; remove it")


def walk_source(root: Path, where: str = "--source-dir") -> tuple[SourceEntry, ...]:
    """Every file and symlink under root, sorted, with content digests.

    Skipped: .git and .tf_configure.bazelrc at the top, Bazel's bazel-* convenience links at
    the top, __pycache__ folders and *.pyc files (none of them are sources).
    """
    entries: list[SourceEntry] = []
    root_real = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        top = rel_dir == Path(".")
        keep = []
        for d in sorted(dirnames):
            if d in _SKIP_ANY or (top and (d in _SKIP_TOP or d.startswith("bazel-"))):
                continue
            if Path(dirpath, d).is_symlink():
                filenames.append(d)  # a link to a folder is recorded as a link
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(set(filenames)):
            rel = (rel_dir / name).as_posix()
            if top and (name in _SKIP_TOP or name.startswith("bazel-")):
                continue
            if name.endswith(".pyc"):
                continue
            if any(ord(ch) < 32 or ch == "\x7f" for ch in rel):
                raise ConfigError(
                    f"{where}: file name {short(rel)} has control characters; rename it"
                )
            full = Path(dirpath, name)
            target = os.readlink(full) if full.is_symlink() else ""
            if any(0xDC80 <= ord(ch) <= 0xDCFF for ch in rel + target):  # undecodable bytes
                raise ConfigError(f"{where}: file name {short(rel)} is not UTF-8; rename it")
            entries.append(_entry(full, rel, root_real, where))
    entries.sort(key=lambda e: e.path)
    return tuple(entries)


def tree_digest(entries: Iterable[SourceEntry]) -> str:
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.kind} {e.mode:o} {e.path} {e.digest}\n".encode())
    return h.hexdigest()


def resolve_source(
    source_dir: Path | None, tc: toolchains.Toolchain, where: str = "--source-dir"
) -> Source:
    """The release's pinned git source, or the local folder `source_dir` with its digest."""
    if source_dir is None:
        pins = toolchains.pins()
        return Source(kind="git", url=pins.git_url, tag=tc.git_tag, commit=tc.git_commit)
    if not source_dir.is_dir():
        raise ConfigError(
            f"{where} {short(str(source_dir))}: not a folder; pass a TensorFlow "
            "source tree (or leave it out to clone the pinned tag)"
        )
    entries = walk_source(source_dir, where)
    if not entries:
        raise ConfigError(f"{where} {source_dir}: the folder has no files")
    return Source(
        kind="local",
        path=source_dir.resolve(),
        tree_sha256=tree_digest(entries),
        entries=entries,
    )
