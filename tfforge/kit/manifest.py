"""kit.json: what a kit holds. Each file has its sha256, size, kind, where a kit build puts it and
what asked for it; the bytes live in the store beside the kit (tfforge.kit.store).

A kit folder is <kits>/<build id>/ holding kit.json alone; <kits>/store/ holds the files of every
kit in <kits>. `load` validates a manifest as outside input (a kit may come from anywhere):
paths are relative, '/'-separated, without '..', from a small charset, and unique.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tfforge.errors import ConfigError
from tfforge.files import read_user_bytes
from tfforge.kit.store import SHA256, Store
from tfforge.text import plain

SCHEMA = "tfforge-kit/1"
MANIFEST = "kit.json"
MAX_MANIFEST = 64 << 20
# What each kind of file is, in the words `kit check` and the docs use.
KINDS = {
    "build": "the rendered build (Dockerfile, build.json, clone_check.py, apt.lock)",
    "source": "the TensorFlow source",
    "deb": "a Debian package of apt.lock",
    "bazel-download": "a download of Bazel's repository rules (repository cache)",
    "bazelisk": "bazelisk",
    "bazel": "the Bazel binary bazelisk runs",
    "pypi": "a Python wheel of the release's requirements lock",
    "base-image": "the base image (docker save)",
}
BUILD_FILES = ("Dockerfile", "build.json", "clone_check.py", ".dockerignore", "apt.lock")
SOURCE_TAR = "src.tar"  # a local source tree, unpacked into src/
GIT_TAR = "kit/source.tar"  # a git clone at the pinned commit, .git included
BASE_IMAGE = "base-image.tar"
# What lay_out writes into a laid-out kit itself (the flat Debian repository's index and apt
# files): never a manifest path, or writing it would write through a link into the store.
GENERATED = ("kit/debs/Packages", "kit/debs/sources.list", "kit/debs/apt.conf")
GENERATED_DIR = "kit/debs/sources.list.d"
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+~%@=,:-]{0,254}$")
_TEXT_MAX = 2000


@dataclass(frozen=True)
class Entry:
    path: str  # where a kit build puts it, relative to the build folder it lays out
    sha256: str
    size: int
    kind: str
    asked_by: str  # what needed it: a repository rule, an apt.lock line, the Dockerfile ...
    name: str = ""  # its own name where the path does not show it (a repository cache file)
    urls: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["urls"] = list(self.urls)
        return {k: v for k, v in doc.items() if v not in ("", [])}


@dataclass(frozen=True)
class Manifest:
    build_id: str
    files: tuple[Entry, ...]
    wheel: dict[str, Any] = field(default_factory=dict)  # the online build's wheel: name, sha256
    base_image: dict[str, Any] = field(default_factory=dict)  # ref, id
    capture: dict[str, Any] = field(default_factory=dict)  # seconds, mirror, probes, bytes_added
    tfforge: str = ""
    created_at: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "build_id": self.build_id,
            "tfforge": self.tfforge,
            "created_at": self.created_at,
            "wheel": self.wheel,
            "base_image": self.base_image,
            "capture": self.capture,
            "files": [e.as_dict() for e in self.files],
        }

    @property
    def size(self) -> int:
        """Bytes of the kit's files, each counted once."""
        return sum({e.sha256: e.size for e in self.files}.values())

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """kind -> (files, bytes)."""
        out: dict[str, tuple[int, int]] = {}
        for e in self.files:
            n, b = out.get(e.kind, (0, 0))
            out[e.kind] = (n + 1, b + e.size)
        return out


def check_path(path: object, where: str) -> str:
    """A manifest path, or ConfigError: relative, '/'-separated, no '.' or '..' parts."""
    if not isinstance(path, str) or not path or len(path) > 1024:
        raise ConfigError(f"{where}: path {plain(repr(path))[:80]} must be a non-empty string")
    parts = path.split("/")
    if path not in BUILD_FILES and any(not _PART.fullmatch(p) or p in (".", "..") for p in parts):
        raise ConfigError(
            f"{where}: path {plain(repr(path))[:80]} must be relative, '/'-separated, without "
            "'..', using letters, digits and ._+~%@=,:- only"
        )
    if path in GENERATED or path.startswith(GENERATED_DIR):
        raise ConfigError(
            f"{where}: path {plain(path)[:80]} is a file a kit build writes itself; "
            "capture the kit again"
        )
    top = parts[0]
    if not (path in BUILD_FILES or path in (SOURCE_TAR, BASE_IMAGE) or top == "kit"):
        raise ConfigError(
            f"{where}: path {plain(path)[:80]} is not a place a kit build uses "
            f"({', '.join(BUILD_FILES)}, {SOURCE_TAR}, {BASE_IMAGE} or kit/...)"
        )
    return path


def _text(value: object, where: str, key: str) -> str:
    if not isinstance(value, str) or len(value) > _TEXT_MAX:
        raise ConfigError(f"{where}: {key} must be a string of at most {_TEXT_MAX} characters")
    return value


def parse(doc: object, where: str) -> Manifest:
    """A Manifest from a parsed kit.json, or ConfigError naming the first bad field."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise ConfigError(
            f"{where}: schema {plain(repr(doc.get('schema')))[:60]} is not {SCHEMA}; "
            "capture the kit again with this tfforge"
        )
    build_id = _text(doc.get("build_id"), where, "build_id")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}", build_id):
        raise ConfigError(f"{where}: build_id {plain(build_id)[:80]!r} is not a build id")
    raw = doc.get("files")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: files must be a non-empty list")
    entries, seen = [], set()
    for i, item in enumerate(raw):
        at = f"{where}: files[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{at}: not an object")
        path = check_path(item.get("path"), at)
        if path in seen:
            raise ConfigError(f"{at}: path {path} is listed twice")
        seen.add(path)
        sha = item.get("sha256")
        if not isinstance(sha, str) or not SHA256.fullmatch(sha):
            raise ConfigError(f"{at}: sha256 must be 64 lowercase hex digits")
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 1 << 50:
            raise ConfigError(f"{at}: size must be a whole number of bytes")
        kind = item.get("kind")
        if kind not in KINDS:
            raise ConfigError(
                f"{at}: kind {plain(repr(kind))[:40]} is not one of {', '.join(KINDS)}"
            )
        urls = item.get("urls", [])
        if not isinstance(urls, list) or len(urls) > 64:
            raise ConfigError(f"{at}: urls must be a list of at most 64 strings")
        entries.append(
            Entry(
                path,
                sha,
                size,
                str(kind),
                _text(item.get("asked_by", ""), at, "asked_by"),
                _text(item.get("name", ""), at, "name"),
                tuple(_text(u, at, "urls[]") for u in urls),
            )
        )
    folders = {"/".join(p.split("/")[:i]) for p in seen for i in range(1, p.count("/") + 1)}
    if clash := sorted(seen & folders):
        raise ConfigError(f"{where}: path {plain(clash[0])[:80]} is a file and a folder of others")
    dicts = {}
    for key in ("wheel", "base_image", "capture"):
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be an object")
        dicts[key] = value
    created = doc.get("created_at", 0)
    return Manifest(
        build_id,
        tuple(entries),
        dicts["wheel"],
        dicts["base_image"],
        dicts["capture"],
        _text(doc.get("tfforge", ""), where, "tfforge"),
        created if isinstance(created, int) else 0,
    )


def kit_folder(kit: str | Path) -> Path:
    """The kit folder a KIT argument names (the folder or its kit.json)."""
    path = Path(kit)
    return path.parent if path.name == MANIFEST else path


def load(kit: str | Path) -> Manifest:
    folder = kit_folder(kit)
    where = str(folder / MANIFEST)
    data = read_user_bytes(
        folder / MANIFEST,
        missing=f"no kit here (no {MANIFEST}); pass a folder made by `invoke kit BUILD_ID`",
        limit=MAX_MANIFEST,
    )
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc}); capture the kit again") from None
    return parse(doc, where)


def store_of(kit: str | Path) -> Store:
    """The store a kit's files live in: the kits folder's, one level up."""
    return Store(kit_folder(kit).resolve().parent)


@dataclass(frozen=True)
class Checked:
    """What `kit check` found: entries missing from the store, stored with other bytes, and
    files nothing asked for (in the kit folder, or in the store and no kit's manifest)."""

    kit: Path
    manifest: Manifest
    missing: tuple[Entry, ...]
    corrupt: tuple[tuple[Entry, str], ...]  # (entry, the sha256 the store's file has)
    extra: tuple[str, ...]

    @property
    def can_build(self) -> bool:
        return not self.missing and not self.corrupt


def _sibling_manifests(kits_dir: Path) -> Iterable[Manifest]:
    for path in sorted(kits_dir.glob(f"*/{MANIFEST}")):
        try:
            yield load(path)
        except ConfigError:
            continue  # another kit's broken manifest is that kit's problem


def check(kit: str | Path, *, progress: Callable[[int, int], None] | None = None) -> Checked:
    """Hash every file of a kit against its manifest (see Checked). progress(done, total)."""
    from tfforge.kit.store import digest

    folder = kit_folder(kit)
    manifest = load(folder)
    store = store_of(folder)
    missing, corrupt = [], []
    unique = {e.sha256: e for e in manifest.files}
    for n, (sha, entry) in enumerate(sorted(unique.items())):
        path = store.path(sha)
        if not path.is_file() and not path.is_symlink():
            missing += [e for e in manifest.files if e.sha256 == sha]
        elif not store.regular(sha):
            corrupt += [(e, "not a regular file") for e in manifest.files if e.sha256 == sha]
        else:
            got, size = digest(path)
            if got != sha or size != entry.size:
                corrupt += [(e, got) for e in manifest.files if e.sha256 == sha]
        if progress:
            progress(n + 1, len(unique))
    extra = [str(p) for p in sorted(folder.iterdir()) if p.name != MANIFEST]
    referenced = set()
    for other in _sibling_manifests(folder.resolve().parent):
        referenced |= {e.sha256 for e in other.files}
    extra += [str(store.path(s)) for s in sorted(store.names() - referenced - set(unique))]
    return Checked(folder, manifest, tuple(missing), tuple(corrupt), tuple(extra))
