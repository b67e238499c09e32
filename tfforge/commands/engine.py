"""The `engine` command: which docker client builds use, the engine, BuildKit, the base image."""

from __future__ import annotations

from tfforge import console, paths, settings
from tfforge.docker.client import client_can_buildkit, engine_facts, image_facts, resolve_client
from tfforge.errors import BuildError


def engine_command(*, image: str = "local/bookworm:base", as_json: bool = False) -> dict:
    """`invoke engine`: which client, which engine, BuildKit, and whether the base image exists."""
    from tfforge.build.spec import check_image_ref

    check_image_ref(image, "--image")  # before the engine: `--image --help` is no image
    client = resolve_client(settings.load(cwd=paths.project_root()).docker)
    facts = engine_facts(client)
    try:
        base = image_facts(client, [image])[0]
    except BuildError as exc:
        base = {"ref": image, "missing": str(exc)}
    doc = {**facts.as_dict(), "base_image": base}
    if as_json:
        console.print_json(doc)
        return doc
    how = (
        "runs BuildKit builds itself"
        if client_can_buildkit(client.version, False)
        else "BuildKit through buildx"
    )
    for line in (
        f"client:  {client.path} {client.version} ({how})",
        f"engine:  Docker {facts.server_version}, API {facts.api_version}, "
        f"{facts.os_arch}, storage {facts.storage_driver or '?'}",
        f"buildkit: {'available' if facts.buildkit else 'NOT available'}",
        f"base:    {image} " + (base.get("id", "") or base.get("missing", "")),
    ):
        console.say(line)
    return doc
