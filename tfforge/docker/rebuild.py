"""Rebuilding a finished build from nothing and comparing it with the wheel it made.

`rebuild(build_id, ...)` copies builds/<id>/ (Dockerfile, build.json, src/) to a fresh folder,
fills its apt-pins from the apt.lock the build recorded, builds it with no BuildKit cache and no
Bazel cache (optionally with reprotest-style variations: another build path, time zone, locale,
umask, host name, CPU count), and compares the result with the original wheel, which stays
untouched. The outcome is recorded in builds/<id>/rebuild.json; `status` reads it for verify.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypedDict

from tfforge import grammar
from tfforge.docker import run
from tfforge.errors import ConfigError
from tfforge.files import read_json_record, write_json_atomic
from tfforge.text import clip, plain
from tfforge.wheel import compare

RECORD = "rebuild.json"
RECORD_MAX = 4 << 20  # a rebuild record lists the members that differ: a few hundred KB at most
LOG = "rebuild.log"
REBUILT = "rebuilt"  # builds/<id>/rebuilt/<wheel>: a rebuild that differed, kept for inspection
# What a wheel's provenance must not hold: it varies from run to run of the same inputs.
RUN_KEYS = ("run", "engine", "durations", "cache", "wheel", "host", "finished_at", "built_at")
# reprotest's variations, as they can reach a BuildKit build: build args become the build
# stage's environment (TZ, LC_ALL, HOSTNAME; TFFORGE_UMASK and TFFORGE_CPUS are applied by the
# template), the client gets TZ/LC_ALL too, and the copy is made under the umask. The step's
# uts host name is BuildKit's own ("buildkitsandbox") in every build.
VARIATIONS = {
    "TZ": "Pacific/Kiritimati",
    "LC_ALL": "fr_CH.UTF-8",
    "HOSTNAME": "tfforge-vary",
    "TFFORGE_UMASK": "0002",
    "TFFORGE_CPUS": "1",
}


class RebuildRecord(TypedDict):
    """builds/<id>/rebuild.json: the comparison and how the rebuild ran."""

    build_id: str
    wheel: str
    identical: bool
    sha256: dict[str, str]
    differing: list[dict[str, object]]
    zip: list[str]
    vary: dict[str, str]
    argv: list[str]
    durations: run.Durations
    finished_at: int


class RebuildResult(RebuildRecord):
    """What `rebuild` returns: the record, diffoscope's report and where things are."""

    diffoscope: str | None
    kept: str
    record: str


class ReproStatus(TypedDict):
    """What verify reports about a wheel's reproducibility (see `status`)."""

    inputs_only: bool
    run_keys: list[str]
    rebuild: str  # "identical" | "differs" | "none" | "other wheel"
    summary: str


def build_folder(build_id: str, builds_dir: Path) -> Path:
    """builds/<id>/ of a finished build; ConfigError naming the known ids otherwise."""
    # Only a build id is joined to builds/: nothing else can name a folder outside it.
    folder = Path(builds_dir) / (build_id if grammar.is_build_id(build_id) else "-")
    if not grammar.is_build_id(build_id) or not (folder / "build.json").is_file():
        known = sorted(p.parent.name for p in Path(builds_dir).glob("*/provenance.json"))
        raise ConfigError(
            f"no build {clip(build_id)!r} in {builds_dir}; known: "
            f"{', '.join(known) or 'none'} (run `invoke build` first)"
        )
    if not (folder / "provenance.json").is_file():
        raise ConfigError(
            f"build {build_id} never finished (no {folder}/provenance.json); "
            f"run `invoke build` for it first"
        )
    if not (folder / run.APT_LOCK).is_file():
        raise ConfigError(
            f"build {build_id} has no {run.APT_LOCK} (built by an older tfforge); "
            f"build it again, then rebuild"
        )
    return folder


def original_wheel(folder: Path, wheels_dir: Path) -> Path:
    record = folder / "provenance.json"
    try:
        name = read_json_record(record)["wheel"]["name"]
    except (KeyError, TypeError, ConfigError) as exc:
        raise ConfigError(
            f"{record} does not name the build's wheel "
            f"({clip(exc)}); build it again (`invoke build`), then rebuild"
        ) from None
    wheel = Path(wheels_dir) / grammar.file_name(name, f"{record}: wheel name")
    if not wheel.is_file():
        raise ConfigError(
            f"the wheel of build {folder.name}, {wheel}, is gone; build it again "
            f"(`invoke build`), then rebuild"
        )
    return wheel


@contextlib.contextmanager
def _umask(mask: int | None) -> Iterator[None]:
    if mask is None:
        yield
        return
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _copy_tree(src: Path, dest: Path) -> None:
    """Files with their modes and links as links; folders made anew, so the umask decides
    their modes (a folder's mode is not an input: render makes them the same way)."""
    for here, dirs, files in os.walk(src):
        out = dest / Path(here).relative_to(src)
        out.mkdir()
        for name in files + [d for d in dirs if (Path(here) / d).is_symlink()]:
            path = Path(here) / name
            if path.is_symlink():
                os.symlink(os.readlink(path), out / name)
            else:
                shutil.copy2(path, out / name)


def copy_build(folder: Path, dest: Path, *, umask: int | None = None) -> Path:
    """The build's inputs in dest/<id>/: Dockerfile, build.json (.dockerignore, clone_check.py),
    src/, and apt-pins = apt.lock."""
    target = dest / folder.name
    with _umask(umask):
        target.mkdir(parents=True)
        for name in ("Dockerfile", "build.json", ".dockerignore", "clone_check.py"):
            if name in ("Dockerfile", "build.json") or (folder / name).is_file():
                shutil.copyfile(folder / name, target / name)
        if (folder / "src").is_dir():
            _copy_tree(folder / "src", target / "src")
        (target / "kit").mkdir()  # the template's kit mount: empty unless a kit is laid out
        shutil.copyfile(folder / run.APT_LOCK, target / run.APT_PINS)
    return target


def rebuild(
    build_id: str,
    *,
    builds_dir: Path,
    wheels_dir: Path,
    timeout_s: float,
    docker: str = "",
    vary: bool = False,
    watcher: run.Watcher | None = None,
    from_kit: Callable[[Path], tuple[Path, dict[str, str]]] | None = None,
) -> RebuildResult:
    """Rebuild from nothing and compare (see module docstring); wheels_dir is only read.
    from_kit(dest): lay out a kit of the build in dest instead of copying builds/<id>/, giving
    (folder, build args); the rebuild then runs with no network (tfforge.kit.layout).

    Returns {"build_id", "identical", "sha256", "wheel", "differing", "zip", "vary",
    "diffoscope", "kept", "durations", "record"}."""
    folder = build_folder(build_id, builds_dir)
    wheel = original_wheel(folder, wheels_dir)
    variations = dict(VARIATIONS) if vary else {}
    # A different build path: with --vary a new root outside the project (another TFFORGE_ROOT),
    # else a hidden folder in builds/.
    parent = None if vary else Path(builds_dir)
    work = Path(tempfile.mkdtemp(prefix="tfforge-vary-" if vary else ".rebuild-", dir=parent))
    try:
        umask = int(variations["TFFORGE_UMASK"], 8) if vary else None
        network = None
        if from_kit is not None:
            copy, kit_args = from_kit(work / "builds")
            variations, network = {**variations, **kit_args}, "none"
        else:
            copy = copy_build(folder, work / "builds", umask=umask)
        env: dict[str, str] = {k: variations[k] for k in ("TZ", "LC_ALL") if k in variations}
        # The work folder goes; the log stays beside the build (errors name it).
        result = run.run_build(
            copy,
            wheels_dir=work / "wheels",
            timeout_s=timeout_s,
            docker=docker,
            watcher=watcher,
            fresh=True,
            build_args=variations,
            env=env,
            log_path=folder / LOG,
            network=network,
        )
        rebuilt = Path(result["wheel"])
        outcome = compare.compare(wheel, rebuilt)
        report = compare.diffoscope(wheel, rebuilt) if not outcome["identical"] else None
        kept = ""
        shutil.rmtree(folder / REBUILT, ignore_errors=True)
        if not outcome["identical"]:
            (folder / REBUILT).mkdir()
            kept = str(shutil.copy2(rebuilt, folder / REBUILT / rebuilt.name))
            if report:
                (folder / REBUILT / "diffoscope.txt").write_text(report)
        record: RebuildRecord = {
            "build_id": build_id,
            "wheel": wheel.name,
            **outcome,
            "vary": {"build_path": str(copy), **variations} if vary else {},
            "argv": result["argv"],
            "durations": result["durations"],
            "finished_at": int(time.time()),
        }
        write_json_atomic(folder / RECORD, record)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {**record, "diffoscope": report, "kept": kept, "record": str(folder / RECORD)}


def status(
    provenance: Mapping[str, object] | None, wheel_sha256: str, builds_dir: Path
) -> ReproStatus:
    """What verify reports about a wheel's reproducibility, from its provenance and the rebuild
    record beside its build: {"inputs_only", "run_keys", "rebuild": "identical" | "differs" |
    "none" | "other wheel", "summary"}."""
    if not provenance:
        return {
            "inputs_only": False,
            "run_keys": [],
            "rebuild": "none",
            "summary": "no tfforge provenance",
        }
    found = [k for k in RUN_KEYS if k in provenance]
    inputs = (
        "provenance is inputs-only"
        if not found
        else f"provenance holds per-run facts ({', '.join(found)}): two builds differ"
    )
    build = provenance.get("id")
    if not grammar.is_build_id(build):
        return {
            "inputs_only": not found,
            "run_keys": found,
            "rebuild": "none",
            "summary": f"{inputs}; the provenance names no build id, so no rebuild is known",
        }
    record_path = Path(builds_dir) / str(build) / RECORD
    try:
        record = read_json_record(record_path, limit=RECORD_MAX) if record_path.exists() else None
    except ConfigError as exc:
        record, unreadable = None, str(exc).removeprefix(f"{record_path}: ")
    else:
        unreadable = ""
    sha = record.get("sha256") if record else None
    if unreadable:
        state, said = "none", f"{record_path} is unusable ({clip(unreadable)})"
    elif record is None:
        state, said = "none", f"no rebuild recorded (run `invoke rebuild {provenance.get('id')}`)"
    elif not isinstance(sha, dict) or sha.get("original") != wheel_sha256:
        state, said = "other wheel", f"the rebuild in {record_path} compared another wheel"
    elif record.get("identical") is True:
        how = " with variations" if record.get("vary") else ""
        state, said = "identical", f"a rebuild from empty caches{how} gave the same sha256"
    else:
        differing = record.get("differing")
        names = (
            ", ".join(
                clip(plain(m.get("name")), 60)
                for m in (differing if isinstance(differing, list) else [])[:3]
                if isinstance(m, dict)
            )
            or "zip metadata"
        )
        state, said = "differs", f"a rebuild differed ({names}); see {record_path}"
    return {
        "inputs_only": not found,
        "run_keys": found,
        "rebuild": state,
        "summary": f"{inputs}; {said}",
    }
