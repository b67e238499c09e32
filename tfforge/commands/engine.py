"""The `engine` command: which docker client builds use, the engine, BuildKit, the base image."""

from __future__ import annotations

from tfforge import console
from tfforge.docker.client import client_can_buildkit, engine_facts, image_facts, resolve_client
from tfforge.errors import BuildError
from tfforge.files import JsonDoc
from tfforge.options.typed.engine import EngineOptions


def engine_command(opts: EngineOptions) -> JsonDoc:
    """`invoke engine`: which client, which engine, BuildKit, and whether the base image exists."""
    from tfforge.build.inputs import check_image_ref

    image = opts.engine_image
    check_image_ref(image, opts.where("engine_image"))  # before the engine: `--image --help`
    client = resolve_client(opts.docker or "")
    facts = engine_facts(client)
    base: dict[str, object]
    try:
        base = dict(image_facts(client, [image])[0])
    except BuildError as exc:
        base = {"ref": image, "missing": str(exc)}
    doc = {**facts.as_dict(), "base_image": base}
    if opts.json:
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
        f"base:    {image} {base.get('id') or base.get('missing') or ''}",
    ):
        console.say(line)
    return doc
