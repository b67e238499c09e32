"""Rendering a BuildSpec into builds/<id>/: Dockerfile, build.json and, for a local source, src/.

Rendering is pure templating plus an atomic write: everything goes into a hidden temporary folder
beside the final one, which is then renamed into place. Re-rendering an id that exists with the
same bytes is a no-op. Nothing here runs a build.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from tfforge import resources
from tfforge.build import toolchains
from tfforge.build.dockercmd import docker_command
from tfforge.build.document import canonical_json, clone_check_source
from tfforge.build.spec import CLONE_CHECK, DIST, FRESH_ROOT, BuildSpec
from tfforge.errors import BuildError, ConfigError
from tfforge.files import JsonDoc, io_error

# The build context: its inputs only (not logs, exports or kept rebuilds).
DOCKERIGNORE = (
    "# the build context: its inputs only\n*\n!Dockerfile\n!build.json\n!apt-pins\n"
    "!clone_check.py\n!src\n!kit\n"
)
KIT = "kit"  # an empty folder in an ordinary build; a kit build's inputs (tfforge.kit.layout)


@dataclass(frozen=True)
class Rendered:
    build_id: str
    path: Path
    created: bool  # False: an identical rendering already existed
    document: JsonDoc  # build.json content


def build_document(spec: BuildSpec) -> JsonDoc:
    """The full build.json: the spec's document plus its id and the docker command."""
    doc = spec.document()
    doc["id"] = spec.build_id
    doc["commands"]["docker"] = docker_command(spec.build_id, spec.docker_network)
    return doc


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.template_path().parent)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def context(spec: BuildSpec, doc: JsonDoc) -> dict[str, Any]:
    """The one context the template sees; plain values only."""
    pins = toolchains.pins()
    docker = doc["commands"]["docker"]
    return {
        "id": spec.build_id,
        "docker_command": " ".join(f"{k}={v}" for k, v in docker["env"].items())
        + " "
        + shlex.join(docker["argv"]),
        "base_image": spec.base_image,
        "bazel_provider": spec.bazel_provider,
        "compiler_packages": list(spec.compiler_packages),
        "apt_packages": list(spec.apt_packages),
        "compiler_version_command": spec.compiler_check[0],
        "compiler_required": spec.compiler_check[1],
        "compiler_flag": f"--{spec.compiler}-version",
        "bazelisk_url": pins.bazelisk.url,
        "bazelisk_sha256": pins.bazelisk.sha256,
        "user": pins.image.user,
        "uid": pins.image.uid,
        "dist": DIST,
        "toolchain_env": [f"{k}={v}" for k, v in spec.toolchain_env],
        "source_kind": spec.source.kind,
        "source_note": (
            f"the pinned tag {spec.source.tag}, its commit verified"
            if spec.source.kind == "git"
            else f"a local folder, tree sha256 {spec.source.tree_sha256}"
        ),
        "git_url": spec.source.url or "",
        "git_tag": spec.source.tag or "",
        "git_commit": spec.source.commit or "",
        "src_dir": spec.src_dir,
        "configure_env": [f'{k}="{v}"' for k, v in spec.configure_env],
        "bazel_cache": spec.bazel_cache,
        "fresh_root": FRESH_ROOT,
        "bazel_command": list(spec.bazel_command),
        "collect_command": list(spec.collect_command),
        "clone_check_path": CLONE_CHECK,
        "clone_check": list(spec.clone_check_argv),
        "compiler_story": spec.compiler_story,
        "probe": PROBE,
        **remote_context(spec),
        "sysroot": sysroot_context(spec),
        **kit_context(spec),
    }


# ---- kits (tfforge.kit): where a kit build reads its inputs, how capture fetches ----------
KIT_DIR = "/tmp/tfforge-kit"  # the build context's kit/ folder inside a step
KIT_PORT = 18080  # bazelisk's Bazel served on a kit build step's own loopback
KIT_ROOT = "/tmp/tfforge-kitroot"  # Bazel's output root while capturing
KIT_OUT = "/tmp/tfforge-kitout"  # what capture exports: repository cache, external.xml


def kit_context(spec: BuildSpec) -> dict[str, Any]:
    """The capture's Bazel commands: the build's own command with --nobuild and a fresh
    repository cache (every download the wheel target's repository rules make), and a query of
    the repository rules that asked for them (with the build's repository overrides)."""
    remote = set(spec.remote_flags)
    words = [w for w in spec.bazel_command if w not in remote]
    fetch = [*words[:2], "--nobuild", f"--repository_cache={KIT_OUT}/repository_cache", *words[2:]]
    query = [
        "bazel",
        "query",
        *(a for a in spec.bazel_args if a.startswith("--override_repository=")),
        *(f"--repo_env={e}" for e in spec.repo_env),
        "'//external:*'",
        "--output=xml",
    ]
    return {
        "kit_dir": KIT_DIR,
        "kit_port": KIT_PORT,
        "kit_root": KIT_ROOT,
        "kit_out": KIT_OUT,
        "kit_fetch": fetch,
        "kit_query": query,
    }


# ---- remote cache / execution -------------------------------------------------------------
SECRET_HEADER = "tfforge_remote_header"  # docker build --secret ids (tfforge.build.remote)
SECRET_NETRC = "tfforge_netrc"
PROBE = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)"


def sysroot_context(spec: BuildSpec) -> dict[str, Any] | None:
    """The sysroot stage and wrappers of a build on the sysroot route (tfforge/build/floor.py)."""
    if spec.floor is None or not spec.sysroot:
        return None
    from tfforge.build import floor

    fl = spec.floor.floor
    return {
        "suite": fl.name,
        "glibc": fl.glibc,
        "glibcxx": fl.glibcxx,
        "libstdcxx": fl.libstdcxx,
        "image": spec.floor.sysroot_image,
        "packages": list(fl.sysroot),
        "path": floor.SYSROOT,
        "specs": list(floor.specs_lines(fl)),
        "wrappers": [list(w) for w in spec.sysroot_wrappers],
    }


def remote_context(spec: BuildSpec) -> dict[str, Any]:
    """The remote flags as shell words the RUN step may drop, and how it probes the endpoint.

    The step keeps the flags only when the endpoint answers (else: a warning and a local build);
    credentials come from BuildKit secrets read at run time, never from the build files."""
    flags, endpoint = spec.remote_flags, spec.remote_endpoint
    if not flags or endpoint is None:
        return {"remote": None, "bazel_run": list(spec.bazel_command)}
    words = list(spec.bazel_command)
    at = words.index(flags[0])
    words[at : at + len(flags)] = ["$tfforge_remote", '"$@"']
    host, port = endpoint
    return {
        "remote": {
            "flags": " ".join(flags),
            "host": host,
            "port": port,
            "probe": PROBE,
            "header": f"/run/secrets/{SECRET_HEADER}",
            "netrc": f"/run/secrets/{SECRET_NETRC}",
            "header_id": SECRET_HEADER,
            "netrc_id": SECRET_NETRC,
        },
        "bazel_run": words,
    }


def dockerfile(spec: BuildSpec, doc: JsonDoc | None = None) -> str:
    doc = doc if doc is not None else build_document(spec)
    return _environment().get_template(resources.DOCKERFILE_TEMPLATE).render(context(spec, doc))


def files(spec: BuildSpec) -> tuple[dict[str, bytes], JsonDoc]:
    """The bytes render owns, by file name, and the build document."""
    doc = build_document(spec)
    # apt-pins: empty; `invoke rebuild` fills its copy from the apt.lock a build recorded.
    # .dockerignore: only the inputs go to the engine, not logs, exports or kept rebuilds.
    return (
        {
            "Dockerfile": dockerfile(spec, doc).encode(),
            "build.json": canonical_json(doc).encode(),
            "apt-pins": b"",
            "clone_check.py": clone_check_source().encode(),
            ".dockerignore": DOCKERIGNORE.encode(),
        },
        doc,
    )


def _same(folder: Path, owned: dict[str, bytes]) -> bool:
    try:
        return all((folder / name).read_bytes() == data for name, data in owned.items())
    except OSError:
        return False


def _copy_source(spec: BuildSpec, dest: Path) -> None:
    """Copy exactly the hashed entries; refuse if a file changed since it was hashed."""
    root = spec.source.path
    if root is None:
        raise BuildError("a git source has no local files to copy")
    for e in spec.source.entries:
        out = dest / e.path
        out.parent.mkdir(parents=True, exist_ok=True)
        if e.kind == "link":
            os.symlink(e.target, out)
            continue
        h = hashlib.sha256()
        with open(root / e.path, "rb") as src, open(out, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                dst.write(chunk)
        if h.hexdigest() != e.digest:
            raise BuildError(
                f"{root / e.path} changed while it was being copied; render again "
                "when the source tree is quiet"
            )
        os.chmod(out, e.mode)


def render(spec: BuildSpec, builds_dir: Path) -> Rendered:
    """Write builds/<id>/ atomically; a no-op when an identical rendering exists."""
    owned, doc = files(spec)
    final = builds_dir / spec.build_id
    if (final.exists() or final.is_symlink()) and (final.is_symlink() or not final.is_dir()):
        raise ConfigError(
            f"{final} is a file or link, not a rendered build folder; move it away and render again"
        )
    if final.exists():
        if _same(final, owned):
            return Rendered(spec.build_id, final, False, doc)
        raise BuildError(
            f"{final} exists but differs from what this spec renders (edited by "
            "hand?); move it away and render again"
        )
    try:
        builds_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{spec.build_id}-", dir=builds_dir))
    except OSError as exc:
        raise io_error(builds_dir, exc, "cannot be written") from exc
    try:
        for name, data in owned.items():
            (tmp / name).write_bytes(data)
            os.chmod(tmp / name, 0o644)
        if spec.source.kind == "local":
            _copy_source(spec, tmp / "src")
        (tmp / KIT).mkdir()
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)
        except OSError:
            # Someone rendered the same id meanwhile: fine if it is the same bytes.
            if final.exists() and _same(final, owned):
                return Rendered(spec.build_id, final, False, doc)
            raise
    except OSError as exc:  # a full disk, a quota: nothing is left half-written
        raise io_error(final, exc, "cannot be written") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return Rendered(spec.build_id, final, True, doc)
