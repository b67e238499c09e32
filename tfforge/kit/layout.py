"""A kit laid out as a build folder, and builds from it with no network.

`lay_out` places a checked kit's files (hard links into the store where possible) as the build
context the rendered Dockerfile expects: the build files, src/ (a local source), apt-pins from
the kit's apt.lock, and kit/ holding the source of a git build, the Debian packages as a flat
repository, bazelisk and Bazel, and Bazel's repository cache. `build` runs it with
`docker build --network=none`, no BuildKit cache and a fresh Bazel output root.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tfforge.build import render
from tfforge.docker import client as engine
from tfforge.docker import run
from tfforge.errors import BuildError, ConfigError
from tfforge.kit import debs, manifest
from tfforge.kit.manifest import BASE_IMAGE, BUILD_FILES, SOURCE_TAR, Checked, Manifest
from tfforge.kit.sources import unpack
from tfforge.kit.store import Store

REPO = f"{render.KIT_DIR}/debs"  # where the template's kit mount shows kit/debs
BUILD_ARGS = {"TFFORGE_KIT": "1"}
NETWORK = "none"


_PROBE = re.compile(r"^[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$")


def _probes(kit: Manifest) -> list[str]:
    """The kit's capture endpoints (host:port), checked: they reach a shell word list."""
    found = kit.capture.get("probes", [])
    if not isinstance(found, list) or not all(
        isinstance(p, str) and _PROBE.fullmatch(p) for p in found
    ):
        raise ConfigError(f"kit {kit.build_id}: capture.probes must be host:port strings")
    return found[:16]


def build_args(kit: Manifest) -> dict[str, str]:
    """--build-arg values of a kit build: TFFORGE_KIT, and the endpoints it must not reach."""
    probes = " ".join(_probes(kit))
    return {**BUILD_ARGS, **({"TFFORGE_KIT_PROBES": probes} if probes else {})}


def refuse_unless_buildable(checked: Checked) -> None:
    """BuildError naming every corrupt and missing file (and what asked for it)."""
    if checked.can_build:
        return
    lines = [
        f"corrupt: {e.path} (stored bytes have sha256 {got[:16]}..., the manifest says "
        f"{e.sha256[:16]}...; asked for by {e.asked_by})"
        for e, got in checked.corrupt
    ]
    lines += [f"missing: {e.path} (asked for by {e.asked_by})" for e in checked.missing]
    raise BuildError(
        f"kit {checked.kit} cannot build: {len(checked.corrupt)} corrupt, "
        f"{len(checked.missing)} missing file(s): "
        + "; ".join(lines[:8])
        + ("; ..." if len(lines) > 8 else "")
        + "; capture the kit again (`invoke kit BUILD_ID`) where the inputs are reachable"
    )


def lay_out(kit: Manifest, store: Store, dest: Path) -> Path:
    """dest/<build id>/: the build context a kit build runs (see the module docstring)."""
    folder = dest / kit.build_id
    (folder / render.KIT).mkdir(parents=True)
    packages = []
    for e in kit.files:
        if e.path == BASE_IMAGE:
            continue
        if e.path == SOURCE_TAR:
            unpack(store.path(e.sha256), folder / "src")
            continue
        store.link_or_copy(e.sha256, folder / e.path)
        if e.kind == "deb":
            control = debs.control_text(store.path(e.sha256).read_bytes(), e.path)
            packages.append((Path(e.path).name, control, e.size, e.sha256))
    missing = [n for n in BUILD_FILES if not (folder / n).is_file()]
    if missing:
        raise ConfigError(f"kit {kit.build_id} lacks {', '.join(missing)}; capture it again")
    shutil.copyfile(folder / run.APT_LOCK, folder / run.APT_PINS)
    repo = folder / render.KIT / "debs"
    (repo / "sources.list.d").mkdir(parents=True, exist_ok=True)
    (repo / "Packages").write_text(debs.packages_index(packages))
    for name, text in debs.apt_files(REPO).items():
        (repo / name).write_text(text)
    return folder


def _keep(folder: Path, dest: Path) -> None:
    """builds/<id>/ for a build first made from a kit (so verify and rebuild find it): the
    build files, src/, provenance.json and an empty kit/."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in (*BUILD_FILES, "apt-pins", "provenance.json"):
        if (folder / name).is_file():
            shutil.copyfile(folder / name, dest / name)
    (dest / "apt-pins").write_bytes(b"")
    if (folder / "src").is_dir() and not (dest / "src").exists():
        shutil.copytree(folder / "src", dest / "src", symlinks=True)
    (dest / render.KIT).mkdir(exist_ok=True)


def load_base_image(kit: Manifest, store: Store, client: engine.Client) -> str:
    """Make sure the engine has the kit's base image under its name: `docker load` it from the
    kit when missing; refuse when the name is another image. Returns what was done."""
    ref, want = str(kit.base_image.get("ref", "")), str(kit.base_image.get("id", ""))
    entry = next((e for e in kit.files if e.path == BASE_IMAGE), None)
    proc = engine.query(client, "image", "inspect", "--format", "{{.Id}}", ref)
    have = proc.stdout.strip() if proc.returncode == 0 else ""
    if have == want:
        return f"{ref} is in the engine ({want[:19]})"
    if have:
        raise BuildError(
            f"the engine's {ref} is image {have[:19]}, the kit's is {want[:19]}; tag the "
            f"engine's image another name, then build again (the kit loads its own)"
        )
    if entry is None:
        raise BuildError(f"the engine lacks {ref} and the kit holds no base image")
    loaded = engine.query(client, "load", "-i", str(store.path(entry.sha256)), timeout=1800)
    if loaded.returncode != 0:
        raise BuildError(f"docker load of the kit's {ref} failed: {loaded.stderr.strip()[-300:]}")
    return f"loaded {ref} ({want[:19]}) from the kit"


def build(
    kit_path: Path,
    *,
    work_parent: Path,
    wheels_dir: Path,
    timeout_s: float,
    docker: str = "",
    watcher: run.Watcher | None = None,
    log_path: Path,
    checked: Checked | None = None,
    keep_build_in: Path | None = None,
) -> dict[str, Any]:
    """Check the kit, lay it out under work_parent, build it offline, deliver the wheel into
    wheels_dir. Returns run.run_build's result plus "kit", "identical" (to the wheel the kit
    was captured from) and "base_image" (what was done for it)."""
    checked = checked or manifest.check(kit_path)
    refuse_unless_buildable(checked)
    kit = checked.manifest
    store = manifest.store_of(kit_path)
    client = engine.resolve_client(docker)
    image = load_base_image(kit, store, client)
    work = Path(tempfile.mkdtemp(prefix=".kitbuild-", dir=work_parent))
    try:
        folder = lay_out(kit, store, work)
        result = run.run_build(
            folder,
            wheels_dir=wheels_dir,
            timeout_s=timeout_s,
            docker=client.path,
            watcher=watcher,
            fresh=True,
            build_args=build_args(kit),
            network=NETWORK,
            log_path=log_path,
        )
        provenance = json.loads((folder / "provenance.json").read_text())
        if keep_build_in is not None and not (keep_build_in / "build.json").is_file():
            _keep(folder, keep_build_in)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    online = str(kit.wheel.get("sha256", ""))
    return {
        **result,
        "provenance_doc": provenance,
        "kit": str(manifest.kit_folder(kit_path)),
        "online_sha256": online,
        "identical": bool(online) and online == result["sha256"],
        "base_image": image,
    }
