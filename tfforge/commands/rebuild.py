"""The `rebuild` command: build a finished build again from nothing and compare the wheels."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke.exceptions import Exit

from tfforge import console, paths
from tfforge.options.typed.rebuild import RebuildOptions

if TYPE_CHECKING:
    from tfforge.docker.rebuild import RebuildResult


def lines(result: Mapping[str, Any]) -> list[str]:
    """The report for people: one line when identical, else the members that differ."""
    sha = result["sha256"]
    vary = result.get("vary") or {}
    varied = (" (varied: " + ", ".join(f"{k}={v}" for k, v in vary.items()) + ")") if vary else ""
    if result["identical"]:
        return [f"reproducible: sha256 {sha['original']} {result['wheel']}{varied}"]
    out = [
        f"NOT reproducible: {result['wheel']}{varied}",
        f"  original sha256 {sha['original']}",
        f"  rebuild  sha256 {sha['rebuild']}",
    ]
    if result["differing"]:
        out.append(f"  {'member':60} {'status':17} original        rebuild")
        for m in result["differing"]:
            out.append(
                f"  {m['name']:60} {m['status']:17} {m['original'][:12] or '-':15} "
                f"{m['rebuild'][:12] or '-'}"
            )
    for z in result["zip"][:20]:
        out.append(f"  zip: {z}")
    if result.get("diffoscope"):
        out += ["", "diffoscope:"] + result["diffoscope"].rstrip("\n").splitlines()[:200]
    else:
        out.append("  (install Debian's diffoscope for a member-by-member explanation)")
    if result.get("kept"):
        out.append(f"  rebuilt wheel kept: {result['kept']}")
    return out


def kit_layout(
    kit: Path, build_id: str, docker: str
) -> Callable[[Path], tuple[Path, dict[str, str]]]:
    """rebuild's from_kit: the kit checked (it must be build_id's and whole), its base image in
    the engine, laid out in the folder rebuild gives; with the kit build's build args."""
    from tfforge.docker import client as engine
    from tfforge.errors import ConfigError
    from tfforge.kit import layout, manifest

    checked = manifest.check(kit)
    if checked.manifest.build_id != build_id:
        raise ConfigError(
            f"--kit {kit} is a kit of build {checked.manifest.build_id}, not {build_id}; "
            "pass that build's kit"
        )
    layout.refuse_unless_buildable(checked)

    def lay_out(dest: Path) -> tuple[Path, dict[str, str]]:
        store = manifest.store_of(kit)
        layout.load_base_image(checked.manifest, store, engine.resolve_client(docker))
        dest.mkdir(parents=True, exist_ok=True)
        return layout.lay_out(checked.manifest, store, dest), layout.build_args(checked.manifest)

    return lay_out


def rebuild_command(opts: RebuildOptions) -> RebuildResult:
    """`invoke rebuild`: exit 0 when the rebuild is byte-identical, 1 otherwise."""
    from tfforge.commands.watch import BuildWatcher
    from tfforge.docker import rebuild

    with BuildWatcher() as watcher:
        result = rebuild.rebuild(
            opts.build_id,
            builds_dir=paths.builds_dir(),
            wheels_dir=paths.wheels_dir(),
            timeout_s=opts.build_timeout,
            docker=opts.docker or "",
            vary=opts.vary,
            watcher=watcher,
            from_kit=kit_layout(Path(opts.kit), opts.build_id, opts.docker or "")
            if opts.kit
            else None,
        )
    if opts.json:
        console.print_json(result)
    else:
        for line in lines(result):
            console.say(line)
    if not result["identical"]:
        raise Exit(code=1)
    return result
