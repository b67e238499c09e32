"""The `kit` command: capture a build's inputs (`invoke kit BUILD_ID`), check a kit
(`invoke kit check KIT`); and the kit side of `build --kit` and `rebuild --kit`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke.exceptions import Exit

from tfforge import console, paths
from tfforge.errors import ConfigError
from tfforge.kit import manifest
from tfforge.options.typed.build import BuildOptions
from tfforge.options.typed.kit import KitOptions


def mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def capture_command(opts: KitOptions) -> dict[str, Any]:
    """`invoke kit BUILD_ID`: capture every input of a finished build into a kit."""
    from tfforge.commands.watch import BuildWatcher
    from tfforge.kit import capture, mirror
    from tfforge.kit.store import Store

    kits = paths.kits_dir(opts.kits_dir or "")
    via = mirror.check(opts.mirror, opts.where("mirror")) if opts.mirror else ""
    before = Store(kits).names()
    with BuildWatcher() as watcher:
        result = capture.capture(
            opts.kit_action,
            builds_dir=paths.builds_dir(),
            kits_dir=kits,
            timeout_s=opts.build_timeout,
            docker=opts.docker or "",
            via=via,
            watcher=watcher,
        )
    added = {f["sha256"]: f["size"] for f in result["files"] if f["sha256"] not in before}
    result["bytes_added"] = sum(added.values())
    if opts.json:
        console.print_json(result)
        return result
    console.say(f"kit: {result['kit']}")
    console.say(
        f"  captured in {result['capture']['seconds']:.1f} s: {len(result['files'])} files, "
        f"{mib(result['size'])} ({mib(result['bytes_added'])} new in the store)"
    )
    for kind, (n, size) in sorted(result["by_kind"].items()):
        console.say(f"  {kind:15} {n:4} files {mib(size):>12}  {manifest.KINDS[kind]}")
    return result


def check_lines(checked: manifest.Checked) -> list[str]:
    m = checked.manifest
    out = [
        f"kit {checked.kit}: build {m.build_id}, {len(m.files)} files, {mib(m.size)}",
    ]
    for entry, got in checked.corrupt:
        out.append(
            f"  corrupt  {entry.path}: sha256 {got}, manifest {entry.sha256} "
            f"(asked for by {entry.asked_by})"
        )
    for entry in checked.missing:
        out.append(f"  missing  {entry.path} (asked for by {entry.asked_by})")
    for path in checked.extra:
        out.append(f"  extra    {path} (no manifest lists it)")
    out.append(
        "  can build: yes" if checked.can_build else "  can build: NO (corrupt or missing files)"
    )
    return out


def check_command(kit: str, *, as_json: bool = False) -> dict[str, Any]:
    """`invoke kit check --kit KIT`: exit 0 when every file matches, 1 when the kit cannot build."""
    if not kit:
        raise ConfigError("kit check needs the kit: `invoke kit check --kit KITS/BUILD_ID`")
    with console.Progress("kit check", unit="files") as progress:
        checked = manifest.check(Path(kit), progress=lambda d, t: progress.update(d, t))
    doc = {
        "kit": str(checked.kit),
        "build_id": checked.manifest.build_id,
        "files": len(checked.manifest.files),
        "size": checked.manifest.size,
        "can_build": checked.can_build,
        "corrupt": [
            {"path": e.path, "sha256": got, "expected": e.sha256, "asked_by": e.asked_by}
            for e, got in checked.corrupt
        ],
        "missing": [
            {"path": e.path, "expected": e.sha256, "asked_by": e.asked_by} for e in checked.missing
        ],
        "extra": list(checked.extra),
    }
    if as_json:
        console.print_json(doc)
    else:
        for line in check_lines(checked):
            console.say(line)
    if not checked.can_build:
        raise Exit(code=1)
    return doc


def kit_command(opts: KitOptions) -> dict[str, Any]:
    """`invoke kit BUILD_ID` or `invoke kit check --kit KIT` (invoke has one positional)."""
    if opts.kit_action == "check":
        return check_command(opts.kit or "", as_json=opts.json)
    if opts.kit:
        raise ConfigError(
            f"--kit names a kit to check: `invoke kit check --kit {opts.kit}`; "
            f"`invoke kit {opts.kit_action}` captures a build into --out"
        )
    return capture_command(opts)


def build_from_kit(kit: str, opts: BuildOptions) -> dict[str, Any]:
    """`invoke build --kit KIT`: the kit's build with no network; its wheel into wheels/."""
    from tfforge.commands.watch import BuildWatcher
    from tfforge.kit import layout

    with console.Progress("kit check", unit="files") as progress:
        checked = manifest.check(Path(kit), progress=lambda d, t: progress.update(d, t))
    layout.refuse_unless_buildable(checked)
    builds = paths.builds_dir()
    kit_id = checked.manifest.build_id
    console.info(f"building {kit_id} from kit {checked.kit} with no network")
    with BuildWatcher() as watcher:
        result = layout.build(
            Path(kit),
            work_parent=builds,
            wheels_dir=paths.wheels_dir(),
            timeout_s=opts.build_timeout,
            docker=opts.docker or "",
            watcher=watcher,
            log_path=_log(builds, kit_id),
            checked=checked,
            keep_build_in=builds / kit_id,
        )
    result.pop("provenance_doc", None)
    if opts.json:
        console.print_json(result)
        return result
    console.say(f"wheel: {result['wheel']}")
    console.say(f"  sha256: {result['sha256']}")
    if result["online_sha256"]:
        same = "identical to" if result["identical"] else "DIFFERENT from"
        console.say(f"  {same} the build the kit was captured from ({result['online_sha256']})")
    console.say(f"  base image: {result['base_image']}")
    console.say(f"  built offline in {result['durations']['total_s']:.1f} s")
    if result["online_sha256"] and not result["identical"]:
        raise Exit(code=1)
    return result


def _log(builds: Path, build_id: str) -> Path:
    folder = builds / build_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "kit-build.log"
