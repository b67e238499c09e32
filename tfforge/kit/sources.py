"""The source in a kit: a deterministic tar of a folder (sorted, owner 0, mtime 0), a git clone
at the pinned commit (.git kept: TensorFlow's build reads its version from git), and a checked
unpacking of such a tar."""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

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


def link_problem(name: str, linkname: str) -> str | None:
    """Why a link member `name -> linkname` could reach outside the tree, or None. A target is
    relative, its '..' parts all lead (never after a name, which may itself be a link) and climb
    no higher than the link's own folder: with no member written through a link, every link then
    resolves inside the tree however the links chain."""
    if not linkname or linkname.startswith("/"):
        return "is empty or absolute"
    parts = [p for p in linkname.split("/") if p not in ("", ".")]
    ups = next((i for i, p in enumerate(parts) if p != ".."), len(parts))
    if ".." in parts[ups:]:
        return "has '..' after a name"
    if ups > len(PurePosixPath(name).parts) - 1:
        return "climbs above the source"
    return None


def _through_link(dest: Path, name: str) -> bool:
    """Whether writing member `name` under dest would pass through (or replace) a link."""
    here = dest
    for part in PurePosixPath(name).parts:
        here = here / part
        if here.is_symlink():
            return True
    return False


def unpack(archive: Path, dest: Path) -> None:
    """Unpack a kit's source tar into dest, refusing any member that would land outside it
    (absolute names, '..', a path through a link, links that may point out: `link_problem`)
    or that is not a file, folder or symlink."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:") as tar:
        for m in tar:
            name = m.name
            parts = PurePosixPath(name).parts
            if not name or PurePosixPath(name).is_absolute() or ".." in parts:
                raise ConfigError(f"{archive}: member {name!r} would land outside the source")
            if _through_link(dest, name):
                raise ConfigError(f"{archive}: member {name!r} would be written through a link")
            target = dest / name
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif m.issym():
                why = link_problem(name, m.linkname)
                if why:
                    raise ConfigError(
                        f"{archive}: link {name!r} -> {m.linkname!r} {why}: it may point "
                        "outside the source"
                    )
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
