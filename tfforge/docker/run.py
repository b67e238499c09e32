"""Running a rendered build on the engine: one build per id, the docker argv, streaming the log,
stopping on timeout, exporting the finalized wheel into wheels/ atomically.

The argv comes from tfforge.build.dockercmd.docker_argv alone: `build --dry-run` prints it and
`run_build` runs it.
Nothing here prints; a `Watcher` passed in hears about the command, notes and steps.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol, TypedDict

from tfforge import grammar, paths
from tfforge.build import remote
from tfforge.build.dockercmd import DOCKER_ENV, docker_argv, docker_env_text, export_dir
from tfforge.docker import stages
from tfforge.docker.cancel import stop_client
from tfforge.docker.client import dockerfile_images, engine_facts, image_facts, resolve_client
from tfforge.docker.progress import StepLog, classify_failure, short, step_title, tail
from tfforge.errors import BuildError, ConfigError, Interrupted
from tfforge.files import JsonDoc, read_json_record, sha256_file, write_json_atomic
from tfforge.wheel import manylinux

APT_LOCK = "apt.lock"  # the packages the toolchain stage installed, as the export delivers them
SYSROOT_LOCK = "sysroot.lock"  # the sysroot stage's packages (runtime floor, sysroot route)
APT_PINS = "apt-pins"  # in the build context: versions the toolchain stage must install ("" = any)


class Durations(TypedDict):
    """Seconds of each phase of one build."""

    engine_check_s: float
    build_s: float
    stages_s: dict[str, float]  # BuildKit stage -> seconds
    finalize_s: float
    total_s: float


class BuildResult(TypedDict):
    """What `run_build` returns (see its docstring)."""

    wheel: str
    build_id: str
    argv: list[str]
    durations: Durations
    engine: dict[str, object]
    cache: dict[str, int]
    log: str
    provenance: str
    apt_lock: str
    sha256: str
    platform: dict[str, Any]  # the platform tag and auditwheel's verdict (wheel/manylinux.py)


class Watcher(Protocol):
    """What a command shows while a build runs."""

    def note(self, text: str) -> None: ...
    def step_started(self, name: str) -> None: ...
    def tick(self) -> None: ...
    def close(self) -> None: ...


class Quiet:
    """A watcher that shows nothing."""

    def note(self, text: str) -> None:
        pass

    def step_started(self, name: str) -> None:
        pass

    def tick(self) -> None:
        pass

    def close(self) -> None:
        pass


@contextlib.contextmanager
def build_lock(build_id: str) -> Iterator[None]:
    """One build per id at a time (the id is a hash of the inputs); other ids run freely."""
    path = paths.cache_dir("locks") / f"{build_id}.lock"
    with open(path, "a+") as handle:  # closing it releases the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise BuildError(
                f"build {build_id} is already running (pid {holder}); wait for it "
                f"to finish or stop it, then retry"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def _interrupt_when_parent_dies() -> None:
    """In the client (Linux): SIGINT it if tfforge dies (e.g. SIGKILL), so it cancels the build
    in the engine instead of building on as an orphan in its own session."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # 1 = PR_SET_PDEATHSIG


def _read_lines(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode("utf-8", errors="replace"))
    lines.put(None)


def run_docker_build(
    argv: Sequence[str],
    log_path: Path,
    *,
    build_id: str,
    timeout_s: float,
    started: float | None = None,
    watcher: Watcher | None = None,
    env: Mapping[str, str] | None = None,
    dockerfile: str | None = None,
) -> StepLog:
    """Run argv (from dockercmd.docker_argv), streaming its log; stop it in the engine on
    timeout or Ctrl-C.

    The timeout counts from `started` (time.monotonic(); default now). env: added to ours.
    dockerfile: the build's Dockerfile text, whose stages the steps' seconds are counted in."""
    watcher = watcher or Quiet()
    cmd = list(argv)
    full_env = {**os.environ, **(env or {}), **DOCKER_ENV}
    steps = StepLog(stages=stages.parse(dockerfile) if dockerfile is not None else None)
    kept: list[str] = []
    since = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(f"$ {docker_env_text()} " + " ".join(cmd) + "\n")
        # Own session: a terminal's Ctrl-C reaches only us and we decide how the client stops.
        # Started before any thread of ours exists (preexec_fn runs in the forked child).
        proc = subprocess.Popen(
            cmd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_interrupt_when_parent_dies,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        deadline = (started if started is not None else time.monotonic()) + timeout_s
        try:
            while True:
                try:
                    line = lines.get(timeout=0.25)
                except queue.Empty:
                    if time.monotonic() > deadline:
                        raise TimeoutError from None
                    watcher.tick()
                    continue
                if line is None:
                    break
                log.write(line)
                log.flush()
                kept.append(line)
                del kept[:-400]
                new_step = steps.feed(line.rstrip("\n"))
                if new_step:
                    watcher.step_started(new_step)
            proc.wait()
        except (KeyboardInterrupt, TimeoutError) as exc:
            watcher.close()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a 2nd Ctrl-C must not
            try:  # cut the cleanup short
                what = stop_client(proc, since, steps.running_commands())
            finally:
                signal.signal(signal.SIGINT, previous)
            log.write(f"tfforge: build stopped ({type(exc).__name__}): {what}\n")
            cause = (
                f"timed out after {timeout_s:g}s"
                if isinstance(exc, TimeoutError)
                else "interrupted"
            )
            raise Interrupted(
                f"build {build_id} {cause} in step "
                f"{short(step_title(steps.current), 80)!r}; "
                f"{what}; log {log_path}"
            ) from None
        finally:
            watcher.close()
    if proc.returncode != 0:
        raise classify_failure(kept, proc.returncode, steps, log_path)
    return steps


def _move_into(src: Path, wheels_dir: Path, keep_in: Path | None = None) -> Path:
    """Place src in wheels_dir atomically, never replacing a different file of the same name.

    os.link fails when the name exists, so the check and the placing are one step (a hard link
    on one filesystem, else a copy linked into place). An identical file there is fine; a
    different one is refused and this build's wheel is kept in `keep_in` (builds/<id>/)."""
    wheels_dir.mkdir(parents=True, exist_ok=True)
    target = wheels_dir / src.name
    partial = wheels_dir / f".{src.name}.{os.getpid()}.partial"
    try:
        try:
            os.link(src, target)
        except FileExistsError:
            raise
        except OSError:  # another filesystem, or no hard links: copy beside, then link
            shutil.copyfile(src, partial)
            os.link(partial, target)
    except FileExistsError:
        if target.is_file() and sha256_file(target) == sha256_file(src):
            return target
        kept = src
        if keep_in is not None:
            kept = keep_in / src.name
            shutil.copyfile(src, kept)
        raise BuildError(
            f"{target} already exists and is a different wheel; tfforge never "
            f"replaces one: this build's wheel is kept at {kept}; move the old one "
            "away and copy it in, or build with another version label"
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    src.unlink(missing_ok=True)
    return target


def load_build(build_dir: Path) -> JsonDoc:
    """build.json of a rendered build directory; ConfigError if it is not one."""
    record = build_dir / "build.json"
    if not (build_dir / "Dockerfile").is_file() or not record.is_file():
        raise ConfigError(
            f"{build_dir} is not a rendered build (needs Dockerfile and "
            f"build.json); run `invoke render` first"
        )
    try:
        doc = read_json_record(record)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; re-render the build") from None
    if not grammar.is_build_id(doc.get("id")):
        raise ConfigError(f"{record}: has no build id; re-render the build")
    return doc


def _exported_wheel(export: Path, log_path: Path) -> Path:
    """The one wheel the export stage delivered; BuildError otherwise."""
    raw = sorted(export.glob("*.whl"))
    if len(raw) == 1:
        return raw[0]
    found = ", ".join(sorted(p.name for p in export.iterdir())) if export.is_dir() else ""
    raise BuildError(
        f"the export stage holds {len(raw)} wheels, expected 1 (found: "
        f"{found or 'nothing'}); check that the bazel build wrote "
        f"wheel_house/*.whl; log {log_path}",
        "\n".join(tail(log_path.read_text().splitlines())),
    )


def apt_packages(lock_text: str) -> list[str]:
    """The `name=version` lines of an apt lock (comments and blanks dropped), sorted."""
    return sorted(
        line.strip()
        for line in lock_text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


def run_build(
    build_dir: Path,
    *,
    wheels_dir: Path,
    timeout_s: float,
    docker: str = "",
    watcher: Watcher | None = None,
    fresh: bool = False,
    build_args: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    network: str | None = None,
    secrets: Mapping[str, str] | None = None,
    secret_values: Mapping[str, str] | None = None,
) -> BuildResult:
    """Build builds/<id>/ on the engine and deliver the finalized wheel into wheels_dir.

    The wheel's `.dist-info/tfforge.json` holds only inputs (build.json, base images, the apt
    lock); what varies per run (engine, durations, cache counts, host, time) goes to
    builds/<id>/provenance.json. Returns {"wheel", "build_id", "argv", "durations" (seconds),
    "engine", "cache" (steps cached/run), "log", "provenance", "apt_lock", "sha256"}.
    Raises BuildError / ConfigError / Interrupted with wheels_dir unchanged. docker: the client
    ("" = pick one); network, secrets, fresh, build_args: see tfforge.build.dockercmd.docker_argv;
    secret_values: {secret id: content}, written to the `secrets` files under the build lock
    (so a second build of the id never touches a running build's files) and removed after;
    env: added to the client's environment; log_path: default builds/<id>/build.log.
    """
    from tfforge.wheel import edit as wheel_edit

    watcher = watcher or Quiet()
    t0 = time.monotonic()
    build_dir = Path(build_dir).resolve()
    record = load_build(build_dir)
    build_id = str(record["id"])
    if timeout_s <= 0:
        raise ConfigError(
            f"build timeout {timeout_s!r} must be positive seconds; fix "
            f"--timeout (or TFFORGE_BUILD_TIMEOUT)"
        )
    with build_lock(build_id):
        client = resolve_client(docker)
        facts = engine_facts(client)
        if not facts.buildkit:
            raise BuildError(
                f"the engine ({facts.server_version}, API {facts.api_version}, "
                f"{facts.os_arch}) cannot run BuildKit builds; use Docker 18.09+ "
                f"on Linux"
            )
        dockerfile = (build_dir / "Dockerfile").read_text()
        images = image_facts(
            client,
            dockerfile_images(dockerfile),
            pull=True,
            on_pull=lambda ref: watcher.note(f"pulling {ref}"),
        )
        engine_doc: dict[str, object] = {**facts.as_dict(), "base_images": images}
        watcher.note(
            f"engine: Docker {facts.server_version} (API {facts.api_version}, "
            f"BuildKit) via {client.path} {client.version}"
        )
        t_checked = time.monotonic()
        log_path = Path(log_path) if log_path else build_dir / "build.log"
        argv = docker_argv(
            client.path,
            build_dir,
            network=network,
            secrets=secrets,
            fresh=fresh,
            build_args=build_args,
        )
        watcher.note(f"$ {docker_env_text()} " + " ".join(argv))
        # Beside the build (same filesystem as wheels/ in a project): the final move is one
        # rename. Removed whatever happens.
        stage = export_dir(build_dir)
        shutil.rmtree(stage, ignore_errors=True)
        try:
            with remote.written(secret_values or {}, secrets or {}):
                steps = run_docker_build(
                    argv,
                    log_path,
                    build_id=build_id,
                    timeout_s=timeout_s,
                    started=t0,
                    watcher=watcher,
                    env=env,
                    dockerfile=dockerfile,
                )
            t_built = time.monotonic()
            raw = _exported_wheel(stage, log_path)
            lock_path = stage / APT_LOCK
            lock_text = lock_path.read_text() if lock_path.is_file() else ""
            sysroot_lock = stage / SYSROOT_LOCK
            watcher.note("platform tag: auditwheel show --json on the built wheel")
            platform = manylinux.decide(raw, timeout_s)
            if not platform.manylinux:
                watcher.note(
                    f"WARNING: no manylinux tag fits: {platform.why}; tagged {platform.tag}"
                )
            inputs = {
                **record,
                "base_images": images,
                "apt_lock": {"packages": apt_packages(lock_text)},
                **(
                    {"sysroot_lock": {"packages": apt_packages(sysroot_lock.read_text())}}
                    if sysroot_lock.is_file()
                    else {}
                ),
                "platform": platform.as_dict(),
            }
            final = wheel_edit.finalize(
                raw,
                stage,
                local_version=str(record.get("derived", {}).get("local_version", "")),
                provenance=inputs,
                platforms=platform.tags,
            )
            manylinux.check_agrees(final, platform, timeout_s)
            cache = {"steps_cached": steps.cached, "steps_run": steps.ran}
            durations: Durations = {
                "engine_check_s": round(t_checked - t0, 3),
                "build_s": round(t_built - t_checked, 3),
                "stages_s": steps.stage_seconds,
                "finalize_s": round(time.monotonic() - t_built, 3),
                "total_s": round(time.monotonic() - t0, 3),
            }
            wheel_sha256 = sha256_file(final)
            provenance = {
                **inputs,
                "run": {
                    "engine": engine_doc,
                    "durations": durations,
                    "cache": cache,
                    "fresh": fresh,
                    "build_args": dict(build_args or {}),
                    "argv": argv,
                    "host": socket.gethostname(),
                    "finished_at": int(time.time()),
                },
                "wheel": {"name": final.name, "raw_name": raw.name, "sha256": wheel_sha256},
            }
            target = _move_into(final, Path(wheels_dir), keep_in=build_dir)
            if lock_text:
                (build_dir / f".{APT_LOCK}.tmp").write_text(lock_text)
                os.replace(build_dir / f".{APT_LOCK}.tmp", build_dir / APT_LOCK)
            write_json_atomic(build_dir / "provenance.json", provenance)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return {
        "wheel": str(target),
        "build_id": build_id,
        "argv": argv,
        "durations": durations,
        "engine": engine_doc,
        "cache": cache,
        "log": str(log_path),
        "provenance": str(build_dir / "provenance.json"),
        "apt_lock": str(build_dir / APT_LOCK) if lock_text else "",
        "sha256": wheel_sha256,
        "platform": platform.as_dict(),
    }
