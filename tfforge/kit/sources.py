"""The source in a kit: a deterministic tar of a folder (sorted, owner 0, mtime 0), a git clone
at the pinned commit (.git kept: TensorFlow's build reads its version from git), and a checked
unpacking of such a tar."""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tfforge.errors import BuildError, ConfigError


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if st.st_mode & 0o111 else 0o644
    return info


def tar_folder(root: Path, out: Path) -> None:
    """Write every file, folder and symlink under root into out, sorted, byte-stable."""
    root = Path(root)
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for here, dirs, files in os.walk(root):
            dirs.sort()
            rel_here = Path(here).relative_to(root)
            for name in sorted(dirs + files):
                path = Path(here) / name
                rel = (rel_here / name).as_posix()
                st = path.lstat()
                info = _info(rel, st)
                if stat.S_ISLNK(st.st_mode):
                    info.type = tarfile.SYMTYPE
                    info.linkname = os.readlink(path)
                    info.mode = 0o777
                    tar.addfile(info)
                elif stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    info.size = st.st_size
                    with open(path, "rb") as fh:
                        tar.addfile(info, fh)
                else:
                    raise ConfigError(f"{path}: not a file, folder or symlink; remove it")


def unpack(archive: Path, dest: Path) -> None:
    """Unpack a kit's source tar into dest, refusing any member that would land outside it
    (absolute names, '..', links pointing out) or that is not a file, folder or symlink."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with tarfile.open(archive, "r:") as tar:
        for m in tar:
            name = m.name
            parts = Path(name).parts
            if not name or Path(name).is_absolute() or ".." in parts:
                raise ConfigError(f"{archive}: member {name!r} would land outside the source")
            target = dest / name
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif m.issym():
                link = (target.parent / m.linkname).resolve()
                if Path(m.linkname).is_absolute() or not link.is_relative_to(root):
                    raise ConfigError(f"{archive}: link {name!r} points outside the source")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(m.linkname, target)
            elif m.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                handle = tar.extractfile(m)
                with open(target, "wb") as out:
                    while handle and (chunk := handle.read(1 << 20)):
                        out.write(chunk)
                os.chmod(target, 0o755 if m.mode & 0o111 else 0o644)
            else:
                raise ConfigError(f"{archive}: member {name!r} is not a file, folder or link")


def git_clone_tar(url: str, tag: str, commit: str, out: Path, *, timeout_s: float = 3600) -> None:
    """Clone tag (depth 1) as the build's source stage does, check it is `commit`, tar it."""
    with tempfile.TemporaryDirectory(prefix="tfforge-kit-git-") as tmp:
        clone = Path(tmp) / "src"
        argv = ["git", "-c", "advice.detachedHead=false", "clone", "--quiet", "--depth", "1"]
        try:
            subprocess.run(
                [*argv, "--branch", tag, url, str(clone)],
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            got = subprocess.run(
                ["git", "-C", str(clone), "rev-parse", "HEAD"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            why = getattr(exc, "stderr", "") or str(exc)
            raise BuildError(
                f"cloning {tag} from {url} failed: {str(why).strip()[-300:]}"
            ) from None
        if got != commit:
            raise BuildError(f"tag {tag} of {url} is commit {got}, expected {commit}; refusing")
        tar_folder(clone, out)
