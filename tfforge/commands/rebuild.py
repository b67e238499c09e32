"""The `rebuild` command: build a finished build again from nothing and compare the wheels."""

from __future__ import annotations

from pathlib import Path

from invoke.exceptions import Exit

from tfforge import console, paths, settings
from tfforge.commands.build import timeout_seconds


def lines(result: dict) -> list[str]:
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


def rebuild_command(
    build_id: str, *, vary: bool = False, timeout=None, kit=None, as_json: bool = False
) -> dict:
    """`invoke rebuild`: exit 0 when the rebuild is byte-identical, 1 otherwise."""
    from tfforge.commands.watch import BuildWatcher
    from tfforge.docker import rebuild

    with BuildWatcher() as watcher:
        result = rebuild.rebuild(
            build_id,
            builds_dir=paths.builds_dir(),
            wheels_dir=paths.wheels_dir(),
            timeout_s=timeout_seconds(timeout),
            docker=settings.load(cwd=paths.project_root()).docker,
            vary=vary,
            watcher=watcher,
            kit=Path(kit) if kit else None,
        )
    if as_json:
        console.print_json(result)
    else:
        for line in lines(result):
            console.say(line)
    if not result["identical"]:
        raise Exit(code=1)
    return result
