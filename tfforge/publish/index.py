"""The private index: a static PEP 503 + PEP 691 simple index of a wheels folder.

The static index lives in `wheels/simple/`, so the whole `wheels/` folder is what a static server
or bucket publishes: `simple/index.html` lists the projects, `simple/<project>/index.html` links
each wheel as `../../<wheel>#sha256=<hex>`. Beside every `index.html` sits an `index.json`, the
same page in the PEP 691 JSON form (api-version 1.1, PEP 700 `versions` and `size`); a server that
answers `Accept: application/vnd.pypi.simple.v1+json` with it serves both forms
(docs/how-to/publish-to-a-private-index.md). publish/serve.py serves the folder with pypiserver
instead.

`wheels/simple` is a symlink to a hidden `.simple-XXXX` folder: a rebuild writes a new folder and
swaps the link with one rename, so a reader sees either the old index or the new one, never a mix.
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict
from urllib.parse import quote

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from tfforge.errors import ConfigError, PublishError
from tfforge.files import io_error, parse_json, read_user_bytes, sha256_file

SIMPLE = "simple"
API_VERSION = "1.1"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
LOOPBACK = "127.0.0.1"
LOCK_WAIT_S = 30.0
MANIFEST = ".tfforge-index.json"  # in each index folder: the files it wrote (what may go)


@dataclass(frozen=True)
class IndexedWheel:
    """One wheel as the index lists it."""

    filename: str
    project: str  # normalized name
    version: Version
    sha256: str
    size: int
    requires_python: str | None


@dataclass(frozen=True)
class Skipped:
    filename: str
    reason: str


# ---- reading wheels ------------------------------------------------------------------------


def scan_wheels(folder: Path) -> tuple[list[IndexedWheel], list[Skipped]]:
    """Each *.whl directly in folder with hash, size, Requires-Python; unreadable ones skipped.

    Each wheel is read by the one reader (tfforge.wheel.read.check): the index lists only
    what `invoke publish` would upload."""
    from tfforge.wheel.read import check

    wheels, skipped = [], []
    for path in sorted(folder.glob("*.whl")):
        if path.is_symlink() and not path.exists() or not path.is_file():
            skipped.append(
                Skipped(path.name, "not a regular file (a folder, pipe or dangling link)")
            )
            continue
        try:
            name, version, _build, _tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename as exc:
            skipped.append(Skipped(path.name, f"not a valid wheel file name ({exc})"))
            continue
        try:
            checked = check(path)
        except ConfigError as exc:
            skipped.append(Skipped(path.name, str(exc).removeprefix(f"{path.name}: ")))
            continue
        if checked.problems:
            skipped.append(Skipped(path.name, f"publish would refuse it: {checked.problems[0]}"))
            continue
        wheels.append(
            IndexedWheel(
                path.name,
                canonicalize_name(name),
                version,
                sha256_file(path),
                path.stat().st_size,
                checked.facts.requires_python,
            )
        )
    return wheels, skipped


# ---- rendering (pure) ----------------------------------------------------------------------


def _page(title: str, links: list[str]) -> str:
    body = "".join(f"    {link}<br>\n" for link in links)
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{html.escape(title)}</h1>\n{body}  </body>\n</html>\n"
    )


def _json(doc: dict[str, object]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def wheel_href(filename: str) -> str:
    """The link from a project page to a wheel in the folder two levels up.

    Quoted because local version labels put '+' in file names, which S3-style servers read as a
    space in an unquoted path."""
    return "../../" + quote(filename)


def render_index(wheels: list[IndexedWheel]) -> dict[str, str]:
    """The whole index as {relative path: text}; same wheels, same bytes (no timestamps)."""
    meta = {"api-version": API_VERSION}
    projects: dict[str, list[IndexedWheel]] = {}
    for wheel in wheels:
        projects.setdefault(wheel.project, []).append(wheel)
    names = sorted(projects)
    tree = {
        "index.html": _page(
            "Simple index", [f'<a href="{quote(n)}/">{html.escape(n)}</a>' for n in names]
        ),
        "index.json": _json({"meta": meta, "projects": [{"name": n} for n in names]}),
    }
    for name in names:
        files = sorted(projects[name], key=lambda w: (w.version, w.filename))
        links: list[str] = []
        entries: list[dict[str, object]] = []
        for w in files:
            attrs = f'href="{html.escape(wheel_href(w.filename))}#sha256={w.sha256}"'
            if w.requires_python:
                attrs += f' data-requires-python="{html.escape(w.requires_python)}"'
            links.append(f"<a {attrs}>{html.escape(w.filename)}</a>")
            entry = {
                "filename": w.filename,
                "url": wheel_href(w.filename),
                "hashes": {"sha256": w.sha256},
                "size": w.size,
            }
            if w.requires_python:
                entry["requires-python"] = w.requires_python
            entries.append(entry)
        versions = sorted({w.version for w in files})
        tree[f"{name}/index.html"] = _page(f"Links for {name}", links)
        tree[f"{name}/index.json"] = _json(
            {"meta": meta, "name": name, "files": entries, "versions": [str(v) for v in versions]}
        )
    return tree


# ---- writing atomically --------------------------------------------------------------------


class _Lock:
    """flock on the wheels folder itself, so two index runs do not swap at the same time."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.fd = -1

    def __enter__(self) -> _Lock:
        self.fd = os.open(self.folder, os.O_RDONLY)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise PublishError(
                        f"another process holds the lock on {self.folder} for "
                        f"over {LOCK_WAIT_S:.0f}s; wait for it and re-run"
                    ) from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the flock


def _ours(link: Path) -> bool:
    """wheels/simple as this module leaves it: a link to a hidden `.simple-*` folder beside it."""
    if not link.is_symlink():
        return False
    target = os.readlink(link)
    return "/" not in target and target.startswith(f".{SIMPLE}-")


def _made_by_index(path: Path) -> bool:
    """Whether `path` is an index folder this module wrote and nobody changed since: a real
    folder whose manifest lists exactly the files below it."""
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        listed = read_json_record_list(path / MANIFEST)
        held = sorted(
            str(p.relative_to(path))
            for p in path.rglob("*")
            if p.name != MANIFEST and (p.is_symlink() or not p.is_dir())
        )
    except (ConfigError, OSError):
        return False
    return held == listed


def read_json_record_list(path: Path) -> list[str]:
    doc = parse_json(read_user_bytes(path, limit=1 << 20), path)
    if not isinstance(doc, list) or not all(isinstance(x, str) for x in doc):
        raise ConfigError(f"{path}: not a list of file names")
    return sorted(doc)


def write_index(folder: Path, tree: dict[str, str]) -> Path:
    """Write tree into a fresh hidden folder and point folder/simple at it with one rename."""
    link = folder / SIMPLE
    with _Lock(folder):
        if (link.exists() or link.is_symlink()) and not _ours(link):
            raise ConfigError(
                f"{link} was not written by `invoke index` (a folder, file or "
                "link of yours); nothing was changed: move it away (e.g. to "
                f"{folder / 'simple.mine'}) and run `invoke index` again"
            )
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{SIMPLE}-", dir=folder))
        except OSError as exc:
            raise io_error(folder, exc, "cannot be written") from exc
        try:
            # mkdtemp makes 0700; a static server usually runs as another user.
            staging.chmod(0o755)
            (staging / MANIFEST).write_text(json.dumps(sorted(tree)) + "\n", encoding="utf-8")
            for rel, text in tree.items():
                path = staging / rel
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                path.write_text(text, encoding="utf-8")
                path.chmod(0o644)
            tmp_link = folder / f".{SIMPLE}-link-{os.getpid()}"
            tmp_link.unlink(missing_ok=True)
            tmp_link.symlink_to(staging.name)
            os.replace(tmp_link, link)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError):  # a full disk: the old index stays as it was
                raise io_error(link, exc, "cannot be written") from None
            raise
        # Under the lock no other run is staging, so every other index folder of ours is stale.
        # Ours means: its manifest lists exactly the files it holds; a folder of the user's
        # (whatever its name) or one the user added a file to is kept.
        for old in folder.glob(f".{SIMPLE}-*"):
            if old != staging and _made_by_index(old):
                shutil.rmtree(old, ignore_errors=True)
    return link


class IndexResult(TypedDict):
    """What `build_index` returns: where the index is, what it lists, what it skipped."""

    index: str
    url: str
    projects: dict[str, list[str]]  # project -> its wheel file names
    wheels: list[dict[str, object]]
    skipped: list[dict[str, str]]


def build_index(folder: Path) -> IndexResult:
    """Scan folder's wheels and (re)write folder/simple; return what was indexed."""
    if not folder.is_dir():
        raise ConfigError(
            f"no wheels folder at {folder}; build a wheel first (invoke build) or "
            "set TFFORGE_ROOT to the project folder"
        )
    wheels, skipped = scan_wheels(folder)
    link = write_index(folder, render_index(wheels))
    projects: dict[str, list[str]] = {}
    for w in wheels:
        projects.setdefault(w.project, []).append(w.filename)
    return {
        "index": str(link),
        "url": (folder.resolve() / SIMPLE).as_uri() + "/",
        "projects": {k: sorted(v) for k, v in sorted(projects.items())},
        "wheels": [
            {
                "filename": w.filename,
                "project": w.project,
                "version": str(w.version),
                "sha256": w.sha256,
                "size": w.size,
                "requires_python": w.requires_python,
            }
            for w in wheels
        ],
        "skipped": [{"filename": s.filename, "reason": s.reason} for s in skipped],
    }
