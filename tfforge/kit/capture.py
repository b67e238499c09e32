"""`invoke kit BUILD_ID`: capture every input of a finished build into a kit.

With the network on, the build's own Dockerfile exports its `kitexport` stage: the Debian
packages of apt.lock the base image lacks (apt-get download in the base image) and a fresh
repository cache filled by `bazel build --nobuild` with the build's own flags (every download
the wheel target's repository rules make), with `bazel query //external:*` naming the rules.
Added here: the rendered build files, the source (a tar of the local tree, or a clone of the
pinned tag with .git), bazelisk and Bazel for a bazelisk build, and `docker save` of the base
image. Every file goes into the content-addressed store; kit.json lists them.
"""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tfforge import __version__
from tfforge.build import render, toolchains
from tfforge.build.dockercmd import docker_argv, export_dir
from tfforge.docker import client as engine
from tfforge.docker import rebuild, run
from tfforge.errors import BuildError, ConfigError
from tfforge.files import write_json_atomic
from tfforge.kit import debs, external, mirror, pypi, sources
from tfforge.kit.manifest import (
    BASE_IMAGE,
    BUILD_FILES,
    GIT_TAR,
    MANIFEST,
    SOURCE_TAR,
    Entry,
    Manifest,
)
from tfforge.kit.store import Store

log = logging.getLogger(__name__)
TARGET = "kitexport"
CAPTURE_DIR = "kit-capture"  # in the capture's copy of the build: the apt.lock kitdebs reads
LOG = "kit.log"
CACHE = "bazel/repository_cache/content_addressable/sha256"
BAZEL_URL = "https://releases.bazel.build/{v}/release/bazel-{v}-linux-x86_64"


def _copy_for_capture(folder: Path, dest: Path) -> Path:
    """The build folder as the ordinary build sees it (empty apt-pins, so its cached toolchain
    stage is reused), plus kit-capture/apt.lock for the kitdebs stage."""
    target = dest / folder.name
    target.mkdir(parents=True)
    for name in ("Dockerfile", "build.json", "clone_check.py", "apt-pins"):
        shutil.copyfile(folder / name, target / name)
    ignore = (folder / ".dockerignore").read_text()
    (target / ".dockerignore").write_text(ignore + f"!{CAPTURE_DIR}\n")
    if (folder / "src").is_dir():
        rebuild._copy_tree(folder / "src", target / "src")
    (target / render.KIT).mkdir()
    (target / CAPTURE_DIR).mkdir()
    shutil.copyfile(folder / run.APT_LOCK, target / CAPTURE_DIR / "apt.lock")
    return target


def _download(url: str, via: str, out: Path, timeout_s: float) -> str:
    """Fetch url (through the mirror when given) into out; the URL used. Checked by the store."""
    where = mirror.via(url, via)
    try:
        with urllib.request.urlopen(where, timeout=timeout_s) as resp, open(out, "wb") as fh:
            shutil.copyfileobj(resp, fh, 1 << 20)
    except OSError as exc:
        raise BuildError(
            f"downloading {where} failed ({exc}); capture where it is reachable"
        ) from None
    return where


def _bazel_downloads(out: Path, store: Store, roots: tuple[str, ...]) -> list[Entry]:
    xml = out / "bazel" / "external.xml"
    asked = external.askers(xml.read_text(errors="replace"), roots) if xml.is_file() else {}
    entries = []
    for f in sorted((out / CACHE).glob("*/file")):
        sha = f.parent.name
        got = store.put(f, expect=sha)
        who = asked.get(sha, [])
        urls = tuple(u for a in who for u in a.urls)
        name = next((u.rsplit("/", 1)[-1] for u in urls), "")
        entries.append(
            Entry(
                f"kit/repository_cache/content_addressable/sha256/{sha}/file",
                sha,
                got.size,
                "bazel-download",
                "; ".join(a.describe() for a in who)
                or "a repository rule's own download (no rule attribute pins this sha256)",
                name,
                urls,
            )
        )
    return entries


def _debs(out: Path, store: Store) -> list[Entry]:
    entries, have = [], set()
    for deb in sorted((out / "debs").glob("*.deb")):
        control = debs.read(deb)
        line = f"{control.get('Package', '?')}={control.get('Version', '?')}"
        have.add(line)
        got = store.put(deb)
        entries.append(
            Entry(f"kit/debs/{deb.name}", got.sha256, got.size, "deb", f"apt.lock: {line}")
        )
    wanted_path = out / "debs" / "wanted.lock"
    wanted = wanted_path.read_text().split() if wanted_path.is_file() else []
    lost = sorted(set(wanted) - have)
    if lost:
        raise BuildError(
            f"the archive gave no package for {', '.join(lost[:5])} of apt.lock; "
            "capture while the archive (or its snapshot) has them"
        )
    return entries


def _lock_wheels(
    tar: Path, python_version: str, work: Path, store: Store, timeout_s: float
) -> list[Entry]:
    """The wheels of the source's requirements lock for the build's Python, if it has one."""
    name = pypi.lock_name(python_version)
    with tarfile.open(tar, "r:") as archive:
        try:
            member = archive.getmember(name)
        except KeyError:
            return []
        handle = archive.extractfile(member) if member.isfile() else None
        text = handle.read(pypi.MAX_LOCK + 1).decode("utf-8", "replace") if handle else ""
    locked = pypi.parse_lock(text, name)
    lock = work / name
    lock.write_text(text)
    by_hash = {h: req for req in locked for h in req.hashes}
    entries = []
    for wheel in pypi.download(lock, python_version, work / "pypi", timeout_s=timeout_s):
        got = store.put(wheel)
        req = by_hash.get(got.sha256)
        if req is None:
            raise BuildError(f"pip downloaded {wheel.name}, whose sha256 {name} does not list")
        entries.append(
            Entry(f"kit/pypi/{wheel.name}", got.sha256, got.size, "pypi", f"{name}: {req.pin}")
        )
    return entries


def capture(
    build_id: str,
    *,
    builds_dir: Path,
    kits_dir: Path,
    timeout_s: float,
    docker: str = "",
    via: str = "",
    watcher: run.Watcher | None = None,
) -> dict[str, Any]:
    """Capture build_id into kits_dir/<build_id>/ (see the module docstring). Returns the
    manifest document plus seconds, size, bytes_added and the kit folder."""
    t0 = time.monotonic()
    folder = rebuild.build_folder(build_id, builds_dir)
    doc = run.load_build(folder)
    floor = (doc.get("derived") or {}).get("runtime") or {}
    if floor.get("route") == "sysroot":
        raise ConfigError(
            f"build {build_id} compiles against a {floor['floor']['suite']} sysroot, whose "
            "packages a kit does not carry yet; capture a build on the base route instead "
            "(--runtime-floor none, or a floor its base image is within)"
        )
    provenance = json.loads((folder / "provenance.json").read_text())
    via = mirror.check(via) if via else ""
    store = Store(kits_dir)
    client = engine.resolve_client(docker)
    base_ref = str(doc["spec"]["base_image"])
    [image] = engine.image_facts(client, [base_ref])
    entries: list[Entry] = []
    work = Path(tempfile.mkdtemp(prefix=".kit-", dir=builds_dir))
    try:
        copy = _copy_for_capture(folder, work)
        argv = docker_argv(
            client.path,
            copy,
            network=mirror.network(via),
            build_args={"TFFORGE_MIRROR": via} if via else None,
            target=TARGET,
        )
        if watcher:
            watcher.note("$ " + " ".join(argv))
        run.run_docker_build(
            argv, folder / LOG, build_id=build_id, timeout_s=timeout_s, watcher=watcher
        )
        out = export_dir(copy)
        src_dir = str(doc["commands"]["workdir"])
        entries += _bazel_downloads(out, store, (src_dir,))
        entries += _debs(out, store)

        for name in BUILD_FILES:
            got = store.put(folder / name)
            entries.append(Entry(name, got.sha256, got.size, "build", f"builds/{build_id}/"))
        source = doc["spec"]["source"]
        tar = work / "source.tar"
        if source["kind"] == "local":
            sources.tar_folder(folder / "src", tar)
            path, asked = SOURCE_TAR, f"--source-dir (tree sha256 {source['tree_sha256']})"
        else:
            sources.git_clone_tar(source["url"], source["tag"], source["commit"], tar)
            path, asked = GIT_TAR, f"git {source['url']} {source['tag']} @ {source['commit']}"
        got = store.put(tar)
        entries.append(Entry(path, got.sha256, got.size, "source", asked))
        entries += _lock_wheels(tar, str(doc["spec"]["python_version"]), work, store, timeout_s)

        if doc["toolchain"]["bazel_provider"] == "bazelisk":
            pins = toolchains.pins()
            version = str(doc["toolchain"]["bazel"])
            url = pins.bazelisk.url
            _download(url, via, work / "bazelisk", timeout_s)
            got = store.put(work / "bazelisk", expect=pins.bazelisk.sha256)
            entries.append(
                Entry(
                    "kit/bazelisk",
                    got.sha256,
                    got.size,
                    "bazelisk",
                    "bazel provider bazelisk",
                    urls=(url,),
                )
            )
            sha = str(doc["toolchain"]["bazel_sha256"])
            url = BAZEL_URL.format(v=version)
            _download(url, via, work / "bazel", timeout_s)
            got = store.put(work / "bazel", expect=sha)
            entries.append(
                Entry(
                    f"kit/bazel/{version}/bazel-{version}-linux-x86_64",
                    got.sha256,
                    got.size,
                    "bazel",
                    f".bazelversion {version} (bazelisk)",
                    urls=(url,),
                )
            )

        saved = work / "image.tar"
        proc = engine.query(client, "save", "-o", str(saved), base_ref, timeout=1800)
        if proc.returncode != 0:
            raise BuildError(f"docker save {base_ref} failed: {proc.stderr.strip()[-300:]}")
        got = store.put(saved)
        entries.append(Entry(BASE_IMAGE, got.sha256, got.size, "base-image", f"FROM {base_ref}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    urls = [u for e in entries if e.kind == "bazel-download" for u in e.urls]
    manifest = Manifest(
        build_id,
        tuple(entries),
        wheel=dict(provenance.get("wheel", {})),
        base_image={"ref": base_ref, "id": image["id"]},
        capture={
            "seconds": round(time.monotonic() - t0, 1),
            "mirror": via,
            "probes": mirror.probes(via, urls),
            "log": str(folder / LOG),
        },
        tfforge=__version__,
        created_at=int(time.time()),
    )
    kit = Path(kits_dir) / build_id
    kit.mkdir(parents=True, exist_ok=True)
    write_json_atomic(kit / MANIFEST, manifest.as_dict())
    return {
        **manifest.as_dict(),
        "kit": str(kit),
        "size": manifest.size,
        "by_kind": manifest.by_kind(),
    }
