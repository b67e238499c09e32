"""The `render` and `build` commands: typed options -> BuildSpec -> builds/<id>/ -> plan or
engine.

The options come resolved (tfforge.settings: defaults -> tfforge.toml -> TFFORGE_* -> command
line). `build` renders (or reuses an identical rendering), then either prints the plan
(--dry-run: the exact docker argv `build` runs, from tfforge.build.dockercmd.docker_argv) or
hands the folder to tfforge.docker.run.run_build.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from tfforge import console, paths
from tfforge.build import dockercmd, document, remote, render, request, spec
from tfforge.errors import BuildError, ConfigError
from tfforge.files import JsonDoc
from tfforge.host import isa
from tfforge.options.typed.build import BuildOptions
from tfforge.options.typed.render import RenderOptions


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _warn_all(s: spec.BuildSpec) -> None:
    for w in s.warnings:
        console.warn(w)


def runtime_line(s: spec.BuildSpec) -> str:
    """The runtime floor and its route, or loudly that there is none."""
    from tfforge.build import floor

    if s.floor is None:
        suite = request.image_suite(s.base_image, s.base_image_choice)
        known = floor.floors().get(suite or "")
        links = (
            f"{suite}'s glibc {known.glibc} and {known.glibcxx}"
            if known
            else "whatever glibc and libstdc++ the image has"
        )
        return (
            f"NO runtime floor: the wheel may need up to {links}; hosts with older ones cannot "
            "load it (pass --host snapshots with a runtime, or --runtime-floor SUITE); its "
            "manylinux tag is decided by auditwheel after the build"
        )
    fl = s.floor.floor
    return f"floor {fl.name} (glibc {fl.glibc}, {fl.glibcxx}), {s.floor.route} route: {s.floor.why}"


def _summary(s: spec.BuildSpec, r: render.Rendered) -> list[str]:
    t = s.target
    if t.kind == "features":
        what = "features " + ", ".join(sorted(t.requested, key=isa.sort_key, reverse=True))
    elif t.kind in ("host", "fleet"):
        what = f"{t.kind} {', '.join(t.request)} -> {t.name}"
    else:
        what = f"{t.kind} {t.name}"
    src = (
        f"git {s.source.tag} @ {s.source.commit}"
        if s.source.kind == "git"
        else f"local {s.source.path} ({len(s.source.entries)} files, "
        f"tree sha256 {(s.source.tree_sha256 or '')[:16]})"
    )
    pin = "pinned" if s.base_image_pinned else "NOT pinned by digest"
    return [
        f"{'rendered' if r.created else 'unchanged (already rendered)'}: {_shown(r.path)}",
        f"  TensorFlow {s.tf_version}, Python {s.python_version}, Bazel {s.bazel_version} "
        f"({s.bazel_provider}), {s.compiler} {s.compiler_check[1]}"
        + (", --config=mkl (OpenMP)" if s.mkl else ""),
        f"  target:  {what}",
        f"  flags:   {' '.join(s.copts)}   [{t.flags_from}]",
        f"  compiler: {s.compiler_story}",
        f"  official: {s.official_route['official']}",
        *(f"  differs:  {d}" for d in s.official_route["differences"]),
        f"  isa note: {s.isa_note.level}: {s.isa_note.why}",
        f"  recipe:  {s.evidence_line()}"
        + (" (secondary evidence only)" if s.toolchain.secondary_only else ""),
        f"  version: {s.version} ({document.WHEEL_NAME})",
        f"  image:   {s.base_image} ({pin})",
        f"  runtime: {runtime_line(s)}",
        f"  source:  {src}",
    ]


def render_command(opts: RenderOptions) -> JsonDoc:
    """`invoke render`: write builds/<id>/ and say what it holds."""
    s = request.make(opts.spec)
    _warn_all(s)
    r = render.render(s, paths.builds_dir())
    result = {
        "id": r.build_id,
        "build_dir": str(r.path),
        "created": r.created,
        "dockerfile": str(r.path / "Dockerfile"),
        "warnings": list(s.warnings),
        "runtime": runtime_line(s),
        "build": r.document,
    }
    if opts.json:
        console.print_json(result)
    else:
        for line in _summary(s, r):
            console.say(line)
    return result


def _host_isa_warning(s: spec.BuildSpec) -> str | None:
    """configure passes CC_OPT_FLAGS as --host_copt too: tools built for the target run here."""
    from tfforge.host import cpu

    try:
        here = cpu.detect_host()
    except Exception:  # noqa: BLE001 - detection is advice here; never block a build on it
        return None
    if not here.is_x86:
        return None
    missing = sorted(s.target.features - here.features, key=isa.sort_key)
    if not missing:
        return None
    return (
        f"this machine lacks {', '.join(missing)}: build tools compiled with the target "
        "flags (configure also passes them as --host_copt) may stop with SIGILL here; "
        "build on a machine of the target's kind"
    )


def docker_client(configured: str | None) -> tuple[str, str | None]:
    """The client `build` will run (as the engine resolves it), and a warning if there is none."""
    from tfforge.docker import client
    from tfforge.errors import TfforgeError

    try:
        return client.resolve_client(configured or "").path, None
    except TfforgeError as exc:
        return (
            client.DEBIAN_CLIENT,
            f"no usable docker client ({exc}); shown with {client.DEBIAN_CLIENT}",
        )


def mirror_setting(opts: BuildOptions) -> str:
    """The mirror (--mirror, tfforge.toml, TFFORGE_MIRROR), checked; "" for none."""
    from tfforge.kit import mirror

    return mirror.check(opts.mirror, opts.where("mirror")) if opts.mirror else ""


def run_options(s: spec.BuildSpec, via: str) -> dict[str, Any]:
    """The docker network and build args of a run: a loopback mirror needs the host's network
    (a build step's 127.0.0.1 is its own), and reaches the template as TFFORGE_MIRROR."""
    from tfforge.kit import mirror

    return {
        "network": s.docker_network or mirror.network(via),
        "build_args": {"TFFORGE_MIRROR": via} if via else None,
    }


def plan(
    s: spec.BuildSpec,
    r: render.Rendered,
    client: str,
    secrets: Mapping[str, str] | None = None,
    via: str = "",
) -> JsonDoc:
    """What `build` runs: the argv the engine runs (tfforge.build.dockercmd.docker_argv)."""
    build_dir = r.path.resolve()
    return {
        "id": r.build_id,
        "build_dir": str(build_dir),
        "created": r.created,
        "dockerfile": str(build_dir / "Dockerfile"),
        "docker_env": dict(dockercmd.DOCKER_ENV),
        "docker_command": dockercmd.docker_argv(
            client, build_dir, secrets=secrets, **run_options(s, via)
        ),
        "bazel_command": list(s.bazel_command),
        "workdir": s.src_dir,
        "evidence": {k: e.level for k, e in s.toolchain.evidence.items()},
        "warnings": list(s.warnings),
        "runtime": runtime_line(s),
    }


def build_command(opts: BuildOptions) -> JsonDoc:
    """`invoke build`: render (or reuse), then print the plan or run it on the engine."""
    if opts.kit:
        from tfforge.commands import kit as kit_cmd

        given = [f.name for f in fields(opts.spec) if opts.spec.given(f.name)]
        typed = sorted({opts.spec.where(name) for name in given})
        typed += ["--dry-run"] * opts.dry_run + ["--mirror"] * opts.given("mirror")
        if typed:
            raise ConfigError(
                f"--kit builds the kit's own build with no network; drop {', '.join(typed)}"
            )
        return kit_cmd.build_from_kit(opts.kit, opts)
    s = request.make(opts.spec)
    via = mirror_setting(opts)
    timeout_s = opts.build_timeout
    if opts.dry_run:
        client, no_client = docker_client(opts.docker)  # shown even when no client is usable
    else:
        from tfforge.docker import client as docker_clients

        # An unusable client is refused before builds/<id> is written.
        client, no_client = docker_clients.resolve_client(opts.docker or "").path, None
    _warn_all(s)
    warning = _host_isa_warning(s)
    if warning:
        console.warn(warning)
    r = render.render(s, paths.builds_dir())
    secrets = remote.credentials(os.environ) if s.remote_flags else {}
    files = remote.secret_files(r.build_id, secrets)
    p = plan(s, r, client, files, via)
    for extra in (warning, no_client):
        if extra:
            p["warnings"].append(extra)
    if no_client:
        console.warn(no_client)
    if s.remote_flags:  # which credentials `docker build --secret` will carry
        p["docker_secrets"] = sorted(secrets)
    if opts.dry_run:
        if opts.json:
            console.print_json({**p, "dry_run": True})
        else:
            for line in (
                f"{'rendered' if r.created else 'reused'} build {r.build_id}",
                f"Dockerfile: {p['dockerfile']}",
                f"docker:     {dockercmd.docker_env_text()} {shlex.join(p['docker_command'])}",
                f"bazel:      (in {s.src_dir}) {shlex.join(p['bazel_command'])}",
                f"recipe:     {s.evidence_line()}",
                f"runtime:    {runtime_line(s)}",
                *(
                    [
                        f"secrets:    {', '.join(p['docker_secrets']) or 'none'} (docker build "
                        "--secret from private files that exist only while the build runs; values "
                        "never shown)"
                    ]
                    if "docker_secrets" in p
                    else []
                ),
                "dry run: nothing was built; `build` runs exactly this docker command",
            ):
                console.say(line)
        return {**p, "dry_run": True}

    from tfforge.build import network
    from tfforge.commands.watch import BuildWatcher
    from tfforge.docker import run as docker_run

    missing = network.unreachable(network.needs(s))
    if missing:
        suite = s.base_image_choice.suite if s.base_image_choice else "bookworm"
        raise BuildError(network.offline_message(missing, suite))

    console.info(f"building {r.build_id} (timeout {timeout_s:g} s)")
    with BuildWatcher() as watcher:
        result = docker_run.run_build(
            r.path,
            wheels_dir=paths.wheels_dir(),
            timeout_s=timeout_s,
            docker=p["docker_command"][0],
            watcher=watcher,
            secrets=files,
            secret_values=secrets,
            **run_options(s, via),
        )
    out = {**p, "dry_run": False, **result}
    if s.remote_flags:  # what Bazel's summary says about the remote cache
        facts = remote.log_facts(Path(result["log"]).read_text(errors="replace"))
        out["remote"] = facts.as_dict()
        if facts.unreachable:
            console.warn(facts.unreachable + " (built locally)")
    if opts.json:
        console.print_json(out)
    else:
        console.say(f"wheel: {result.get('wheel')}")
        tag = result.get("platform") or {}
        if tag.get("tag") == "linux_x86_64":
            console.warn(f"no manylinux tag fits ({tag.get('why')}): pip installs it anywhere")
        elif tag:
            console.say(f"  tag: {tag.get('tag')} ({tag.get('why')}; auditwheel agrees)")
        console.say(f"  sha256: {result.get('sha256')}")
        for step, secs in sorted((result.get("durations") or {}).items()):
            if isinstance(secs, (int, float)):
                console.say(f"  {step}: {secs:.1f} s")
    return out
