"""The `render` and `build` commands: options -> BuildSpec -> builds/<id>/ -> plan or engine.

Options come through tfforge.settings.load (defaults -> tfforge.toml -> TFFORGE_* -> command
line). `build` renders (or reuses an identical rendering), then either prints the plan
(--dry-run) or hands the folder to tfforge.engine.run_build.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Mapping

from tfforge import settings, console, paths
from tfforge.host import isa
from tfforge.build import render
from tfforge.build import spec
from tfforge.errors import ConfigError

# Options of the spec that the command line may give; list-valued ones are never in defaults.
SPEC_OPTIONS = ("tf_version", "python_version", "target", "hosts", "features", "mkl",
                "compiler", "gcc_version", "clang_version", "base_image", "source_dir",
                "bazel_provider", "bazel_args", "remote_cache", "source_date_epoch")


def make_spec(cli: Mapping[str, Any]) -> spec.BuildSpec:
    unknown = sorted(set(cli) - set(SPEC_OPTIONS))
    if unknown:
        raise TypeError(f"not spec options: {', '.join(unknown)}")
    opts = settings.load(dict(cli), cwd=paths.project_root())
    try:
        return spec.make(opts.to_dict())
    except ConfigError as exc:
        raise settings.from_origin(exc, opts) from None


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _warn_all(s: spec.BuildSpec) -> None:
    for w in s.warnings:
        console.warn(w)


def _summary(s: spec.BuildSpec, r: render.Rendered) -> list[str]:
    t = s.target
    if t.kind == "features":
        what = "features " + ", ".join(sorted(t.requested, key=isa.sort_key, reverse=True))
    elif t.kind in ("host", "fleet"):
        what = f"{t.kind} {', '.join(t.request)} -> {t.name}"
    else:
        what = f"{t.kind} {t.name}"
    src = (f"git {s.source.tag} @ {s.source.commit}" if s.source.kind == "git" else
           f"local {s.source.path} ({len(s.source.entries)} files, "
           f"tree sha256 {s.source.tree_sha256[:16]})")
    pin = "pinned" if s.base_image_pinned else "NOT pinned by digest"
    return [
        f"{'rendered' if r.created else 'unchanged (already rendered)'}: {_shown(r.path)}",
        f"  TensorFlow {s.tf_version}, Python {s.python_version}, Bazel {s.bazel_version} "
        f"({s.bazel_provider}), {s.compiler} {s.compiler_check[1]}"
        + (", --config=mkl (OpenMP)" if s.mkl else ""),
        f"  target:  {what}",
        f"  flags:   {' '.join(s.copts)}   [{t.flags_from}]",
        f"  version: {s.version} ({spec.WHEEL_NAME})",
        f"  image:   {s.base_image} ({pin})",
        f"  source:  {src}",
    ]


def render_command(cli: Mapping[str, Any], *, as_json: bool = False) -> dict:
    """`invoke render`: write builds/<id>/ and say what it holds."""
    s = make_spec(cli)
    _warn_all(s)
    r = render.render(s, paths.builds_dir())
    result = {"id": r.build_id, "build_dir": str(r.path), "created": r.created,
              "dockerfile": str(r.path / "Dockerfile"), "warnings": list(s.warnings),
              "build": r.document}
    if as_json:
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
    except Exception:  # detection is advice here; never block a build on it
        return None
    if not here.is_x86:
        return None
    missing = sorted(s.target.features - here.features, key=isa.sort_key)
    if not missing:
        return None
    return (f"this machine lacks {', '.join(missing)}: build tools compiled with the target "
            "flags (configure also passes them as --host_copt) may stop with SIGILL here; "
            "build on a machine of the target's kind")


def plan(s: spec.BuildSpec, r: render.Rendered) -> dict:
    docker = r.document["commands"]["docker"]
    argv = [a if a != f"builds/{r.build_id}" else str(r.path) for a in docker["argv"]]
    return {"id": r.build_id, "build_dir": str(r.path), "created": r.created,
            "dockerfile": str(r.path / "Dockerfile"), "docker_env": docker["env"],
            "docker_command": argv, "bazel_command": list(s.bazel_command),
            "workdir": s.src_dir, "warnings": list(s.warnings)}


def build_command(cli: Mapping[str, Any], *, dry_run: bool = False,
                  timeout: float | str | None = None, as_json: bool = False) -> dict:
    """`invoke build`: render (or reuse), then print the plan or run it on the engine."""
    s = make_spec(cli)
    merged = settings.load({"build_timeout": timeout}, cwd=paths.project_root(), prefix="build_")
    timeout_s = settings.positive(merged, "build_timeout")
    client = None
    if not dry_run:
        from tfforge.docker import engine  # only when a build really runs

        # An unusable client is refused before builds/<id> is written.
        client = engine.resolve_client(merged.docker)
    _warn_all(s)
    warning = _host_isa_warning(s)
    if warning:
        console.warn(warning)
    r = render.render(s, paths.builds_dir())
    p = plan(s, r)
    if warning:
        p["warnings"].append(warning)
    if dry_run:
        if as_json:
            console.print_json({**p, "dry_run": True})
        else:
            env = " ".join(f"{k}={v}" for k, v in p["docker_env"].items())
            for line in (
                f"{'rendered' if r.created else 'reused'} build {r.build_id}",
                f"Dockerfile: {p['dockerfile']}",
                f"docker:     {env} {shlex.join(p['docker_command'])}",
                f"bazel:      (in {s.src_dir}) {shlex.join(p['bazel_command'])}",
                "dry run: nothing was built (OUT is the folder that receives the wheel)",
            ):
                console.say(line)
        return {**p, "dry_run": True}

    console.info(f"building {r.build_id} (timeout {timeout_s:g} s)")
    result = engine.run_build(r.path, wheels_dir=paths.wheels_dir(), timeout_s=timeout_s,
                              docker=client.path)
    out = {**p, "dry_run": False, **result}
    if as_json:
        console.print_json(out)
    else:
        console.say(f"wheel: {result.get('wheel')}")
        for step, secs in sorted((result.get("durations") or {}).items()):
            if isinstance(secs, (int, float)):
                console.say(f"  {step}: {secs:.1f} s")
    return out

