"""THE docker command that builds a rendered folder: `build --dry-run` prints it, the engine
runs it (with DOCKER_ENV), build.json records it for the folder under builds/."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

DOCKER_ENV = {"DOCKER_BUILDKIT": "1"}
EXPORT_STAGE = ".export"  # beside the build: the export stage's files land here
FRESH_BUILD_ARGS = {"TFFORGE_FRESH": "1"}  # the template's switch for a rebuild from nothing


def export_dir(build_dir: str | Path) -> Path:
    """Where the build's export stage lands, beside the build (one build per id at a time)."""
    return Path(build_dir) / EXPORT_STAGE


def docker_env_text() -> str:
    """The client's environment as the dry run and build.log show it (DOCKER_BUILDKIT=1)."""
    return " ".join(f"{k}={v}" for k, v in DOCKER_ENV.items())


def docker_argv(
    client: str,
    build_dir: str | Path,
    *,
    network: str | None = None,
    secrets: Mapping[str, str] | None = None,
    fresh: bool = False,
    build_args: Mapping[str, str] | None = None,
    target: str = "export",
) -> list[str]:
    """The docker build argv for a rendered folder.

    network: --network for a loopback remote cache or mirror (`none` for a kit build); secrets:
    {secret id: file}; fresh: no BuildKit cache and no Bazel cache (`invoke rebuild`);
    build_args: the rebuild's variations, a kit build's or a mirror's switches as
    `--build-arg K=V`, sorted so the argv is stable; target: the stage to export (`kitexport`
    when tfforge.kit captures a build's inputs)."""
    argv = [client, "build"]
    if network:
        argv.append(f"--network={network}")
    for sid, path in sorted((secrets or {}).items()):
        argv += ["--secret", f"id={sid},src={path}"]
    argv += [
        "--progress=plain",
        "--target",
        target,
        "--output",
        f"type=local,dest={export_dir(build_dir)}",
    ]
    args = {**(FRESH_BUILD_ARGS if fresh else {}), **(build_args or {})}
    if fresh:
        argv.append("--no-cache")
    for key in sorted(args):
        argv += ["--build-arg", f"{key}={args[key]}"]
    return argv + [str(build_dir)]


def docker_command(build_id: str, network: str | None = None) -> dict[str, Any]:
    """The docker command recorded in build.json, relative to the project root."""
    return {
        "env": dict(DOCKER_ENV),
        "argv": docker_argv("/usr/bin/docker", f"builds/{build_id}", network=network),
        "note": "run from the project root; builds/<id>/.export receives the "
        "wheel(s) and build.json; `build` runs this with the client it resolves "
        "(and --secret files for remote-cache credentials)",
    }
