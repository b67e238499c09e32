"""Running a rendered build on a Docker engine.

One wrapper with few verbs: resolve the docker client, read the engine's facts, check the base
images, run a BuildKit build of `builds/<id>/` that exports only the `export` stage, stream its
log to `builds/<id>/build.log` with progress, stop it for real on timeout or Ctrl-C, and move the
finalized wheel into wheels/ atomically. Interpreting wheels is wheel_edit's job.

How a build is stopped (measured on Docker 20.10, see README): the client runs in its own
process group; we send it SIGINT, on which it calls the engine's `POST /build/cancel` and closes
its session; the engine then cancels the solve and BuildKit kills the running step (a runc
container that dockerd itself spawned). After the client has gone we check that the step
processes started during this build have left the engine's process tree.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from tfforge import console, paths
from tfforge.errors import BuildError, ConfigError, Interrupted
from tfforge.files import sha256_file, write_json_atomic

DEBIAN_CLIENT = "/usr/bin/docker"
START_ENGINE = "start it: `dockerd > /tmp/dockerd.log 2>&1 &` or `systemctl start docker`"
MAKE_BASE = ("make it: `bash scripts/make-base-image.sh {ref}` (Debian bookworm via "
             "debootstrap), or pull it: `docker pull {ref}` where a registry is reachable")
TAIL_LINES = 30
# Seconds the client gets to send /build/cancel after SIGINT, and the engine to end the steps.
CLIENT_GRACE_S = 15.0
ENGINE_GRACE_S = 20.0
PULL_TIMEOUT_S = 1800.0


# ---- the docker client --------------------------------------------------------------------
@dataclass(frozen=True)
class Client:
    """A docker CLI binary and whether it can run `DOCKER_BUILDKIT=1 docker build` itself."""

    path: str
    version: str
    buildkit: bool
    note: str = ""


def client_can_buildkit(version: str, has_buildx: bool) -> bool:
    """Clients before 23.0 run BuildKit builds themselves; 23.0+ hand them to the buildx plugin.

    Docker 23.0 moved `DOCKER_BUILDKIT=1 docker build` to buildx ("BuildKit is enabled but the
    buildx component is missing or broken"; docker/cli docs/deprecated.md, "Legacy builder
    fallback"). Debian bookworm ships client 20.10 and no buildx package."""
    match = re.match(r"(\d+)\.", version)
    if not match:
        return has_buildx
    return int(match.group(1)) < 23 or has_buildx


def candidate_paths(configured: str = "", search_path: str | None = None) -> list[str]:
    """The configured client only, else Debian's /usr/bin/docker, then each `docker` on PATH."""
    if configured:
        return [configured]
    found, seen = [], set()
    search = search_path if search_path is not None else os.environ.get("PATH", "")
    dirs = search.split(os.pathsep)
    for path in [DEBIAN_CLIENT] + [os.path.join(d, "docker") for d in dirs if d]:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                found.append(path)
    return found


def probe_client(path: str) -> Client:
    """Ask one binary for its version and, for 23.0+, whether the buildx plugin works."""
    try:
        proc = subprocess.run([path, "version", "--format", "{{.Client.Version}}"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Client(path, "", False, f"does not run ({exc})")
    version = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
    if not version:
        return Client(path, "", False, "printed no client version")
    has_buildx = False
    if not client_can_buildkit(version, False):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            has_buildx = subprocess.run([path, "buildx", "version"], capture_output=True,
                                        timeout=30).returncode == 0
    ok = client_can_buildkit(version, has_buildx)
    note = "" if ok else "lacks the buildx plugin BuildKit builds need from client 23.0 on"
    return Client(path, version, ok, note)


def choose_client(clients: Sequence[Client]) -> Client:
    """The first client that can run BuildKit builds; an error naming every one refused."""
    for client in clients:
        if client.buildkit:
            return client
    if not clients:
        raise BuildError("no docker client found; install Debian's: apt-get install -y docker.io")
    refused = "; ".join(f"{c.path} {c.version or '?'} {c.note}".strip() for c in clients)
    raise BuildError(f"no docker client can run BuildKit builds ({refused}); install Debian's "
                     f"{DEBIAN_CLIENT} (apt-get install -y docker.io) or set TFFORGE_DOCKER to one "
                     f"that can")


def resolve_client(configured: str = "") -> Client:
    """The client tfforge uses: TFFORGE_DOCKER / `docker` option if set, else auto (see above)."""
    if configured and not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
        raise ConfigError(f"docker client {configured!r} is not an executable; fix the `docker` "
                          f"option (TFFORGE_DOCKER) or leave it empty to pick one")
    return choose_client([probe_client(p) for p in candidate_paths(configured)])


# ---- the engine ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Engine:
    """What a build ran on; recorded in the provenance."""

    client: str
    client_version: str
    server_version: str
    api_version: str
    os_arch: str
    kernel: str
    storage_driver: str
    buildkit: bool

    def as_dict(self) -> dict:
        return asdict(self)


def engine_error(stderr: str) -> str:
    """One line for a client that could not talk to the engine."""
    text = " ".join(stderr.split())
    if "permission denied" in text.lower():
        return (f"Docker engine refused this user ({text[:160]}); run as root or add the user "
                f"to the docker group")
    if "Cannot connect" in text or "Is the docker daemon running" in text or not text:
        where = re.search(r"at (\S+?)\.? Is the docker", text)
        return (f"Docker engine not reachable{' at ' + where.group(1) if where else ''}; "
                f"{START_ENGINE}")
    return f"Docker engine not usable ({text[:200]}); {START_ENGINE}"


def _docker(client: Client, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A short engine query; an engine that hangs or a client that cannot start is a BuildError."""
    try:
        return subprocess.run([client.path, *args], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(f"Docker engine did not answer `docker {args[0]}` within {timeout:g}s; "
                         f"check it (docker info, /tmp/dockerd.log) or restart it")
    except OSError as exc:
        raise BuildError(f"docker client {client.path} does not run ({exc})")


def api_at_least(version: str, minimum: tuple[int, int]) -> bool:
    parts = re.match(r"(\d+)\.(\d+)", version or "")
    return bool(parts) and (int(parts.group(1)), int(parts.group(2))) >= minimum


def engine_facts(client: Client) -> Engine:
    """Engine version, API, platform, storage driver; BuildKit needs API 1.39+ on Linux."""
    proc = _docker(client, "version", "--format", "{{json .Server}}")
    server = None
    with contextlib.suppress(json.JSONDecodeError):
        server = json.loads(proc.stdout or "null")
    if proc.returncode != 0 or not server:
        raise BuildError(engine_error(proc.stderr))
    info = _docker(client, "info", "--format", "{{.Driver}}")
    os_name = server.get("Os", "")
    api = server.get("ApiVersion", "")
    return Engine(client=client.path, client_version=client.version,
                  server_version=server.get("Version", ""), api_version=api,
                  os_arch=f"{os_name}/{server.get('Arch', '')}",
                  kernel=server.get("KernelVersion", ""),
                  storage_driver=info.stdout.strip() if info.returncode == 0 else "",
                  buildkit=os_name == "linux" and api_at_least(api, (1, 39)))


def engine_command(*, image: str = "local/bookworm:base", as_json: bool = False) -> dict:
    """`invoke engine`: which client, which engine, BuildKit, and whether the base image exists."""
    from tfforge import settings
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
    else:
        for line in (f"client:  {client.path} {client.version} (runs BuildKit builds itself)"
                     if client_can_buildkit(client.version, False) else
                     f"client:  {client.path} {client.version} (BuildKit through buildx)",
                     f"engine:  Docker {facts.server_version}, API {facts.api_version}, "
                     f"{facts.os_arch}, storage {facts.storage_driver or '?'}",
                     f"buildkit: {'available' if facts.buildkit else 'NOT available'}",
                     f"base:    {image} " + (base.get('id', '') or base.get('missing', ''))):
            console.say(line)
    return doc


# ---- base images ---------------------------------------------------------------------------
def dockerfile_images(text: str) -> list[str]:
    """Images the Dockerfile's FROM lines pull: not `scratch`, not earlier stage names.

    Global `ARG NAME=default` before the first FROM is substituted, as docker does.
    """
    args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    seen_from = False
    for raw in text.splitlines():
        line = raw.strip()
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0].upper()
        if keyword == "ARG" and not seen_from and len(words) > 1 and "=" in words[1]:
            name, value = words[1].split("=", 1)
            args[name] = value.strip("\"'")
        elif keyword == "FROM":
            seen_from = True
            rest = [w for w in words[1:] if not w.startswith("--")]
            if not rest:
                continue
            ref = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), rest[0])
            if len(rest) >= 3 and rest[1].upper() == "AS":
                stages.add(rest[2].lower())
            if ref.lower() != "scratch" and ref.lower() not in stages and ref not in images:
                images.append(ref)
    return images


def image_facts(client: Client, refs: Iterable[str], *, pull: bool = False) -> list[dict]:
    """Id and repo digests of each base image; BuildError naming the first one missing.

    pull=True first tries `docker pull` for an image the engine lacks (the default base image
    is a public one pinned by digest); without a registry that fails at once."""
    def inspect(ref: str):
        return _docker(client, "image", "inspect", "--format",
                       "{{json .Id}} {{json .RepoDigests}}", ref)

    facts = []
    for ref in refs:
        proc = inspect(ref)
        if proc.returncode != 0 and pull and "No such" in proc.stderr:
            console.info(f"pulling base image {ref}")
            pulled = _docker(client, "pull", "--quiet", ref, timeout=PULL_TIMEOUT_S)
            if pulled.returncode != 0:
                why = short(pulled.stderr.strip().splitlines()[-1] if pulled.stderr.strip()
                            else f"exit {pulled.returncode}", 120)
                raise BuildError(f"base image {ref!r} is not in the engine and `docker pull` "
                                 f"failed ({why}); " + MAKE_BASE.format(ref=ref))
            proc = inspect(ref)
        if proc.returncode != 0:
            if "No such image" in proc.stderr or "No such object" in proc.stderr:
                raise BuildError(f"base image {ref!r} is not in the engine; "
                                 + MAKE_BASE.format(ref=ref))
            raise BuildError(engine_error(proc.stderr))
        image_id, digests = proc.stdout.strip().split(" ", 1)
        facts.append({"ref": ref, "id": json.loads(image_id),
                      "repo_digests": json.loads(digests) or []})
    return facts


# ---- the build log -------------------------------------------------------------------------
_HEADER = re.compile(r"^#(\d+) (\[.*|[a-z].*)$")
_STATUS = re.compile(r"^#(\d+) (DONE (\d+(?:\.\d+)?)s|CACHED|CANCELED|ERROR:? ?(.*))$")
_STAGE = re.compile(r"^\[(\S+?)(?: (\d+)/(\d+))?\]")


@dataclass
class StepLog:
    """Follows BuildKit's plain progress: step names, what runs now, durations per stage."""

    names: dict[str, str] = field(default_factory=dict)
    current: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    cached: int = 0
    ran: int = 0
    failed_step: str = ""
    failed_number: str = ""
    failed_reason: str = ""
    outputs: dict[str, deque] = field(default_factory=dict)  # last lines of each step
    running: dict[str, str] = field(default_factory=dict)     # started, not yet finished

    def running_commands(self) -> list[str]:
        """The shell commands of RUN steps now running (as the step container runs them)."""
        return [step_title(name).split("] RUN ", 1)[1] for name in self.running.values()
                if "] RUN " in name]

    def feed(self, line: str) -> str | None:
        """Take one log line; return a step name when a new step starts."""
        number = re.match(r"#(\d+) ", line)
        if number:
            self.outputs.setdefault(number.group(1), deque(maxlen=TAIL_LINES)).append(line)
        status = _STATUS.match(line)
        if status:
            name = self.names.get(status.group(1), "")
            self.running.pop(status.group(1), None)
            word = status.group(2)
            if word.startswith("DONE"):
                self.ran += 1
                stage = step_stage(name)
                self.stage_seconds[stage] = round(
                    self.stage_seconds.get(stage, 0.0) + float(status.group(3)), 3)
            elif word == "CACHED":
                self.cached += 1
            elif word.startswith("ERROR") and not self.failed_step:
                self.failed_step, self.failed_reason = name, (status.group(4) or "").strip()
                self.failed_number = status.group(1)
            return None
        header = _HEADER.match(line)
        if header and not line.startswith(f"#{header.group(1)} sha256:"):
            number, name = header.groups()
            if re.match(r"\d+(\.\d+)? ", name):  # a step's own output line "#5 1.23 text"
                return None
            if number not in self.names:
                self.names[number] = name
                self.running[number] = name
                self.current = name
                return name
        return None


def step_stage(name: str) -> str:
    """'[build 2/3] RUN ...' -> 'build'; BuildKit's own steps -> 'internal' / 'export'."""
    match = _STAGE.match(name)
    if match:
        return match.group(1)
    if name.startswith("exporting"):
        return "export"
    return "internal"


def step_title(name: str) -> str:
    """A step as people read it: 'RUN --mount=... bazel build' -> 'RUN bazel build'."""
    return re.sub(r"\bRUN (?:--\S+ +)+", "RUN ", name)


def tail(lines: Sequence[str], count: int = TAIL_LINES) -> list[str]:
    return [line.rstrip("\n") for line in lines[-count:]]


def short(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def classify_failure(lines: Sequence[str], returncode: int, steps: StepLog,
                     log_path: Path) -> BuildError:
    """The one-line cause of a failed `docker build` plus the last log lines as detail.

    For a failed step the detail is that step's own last lines (the compiler's error, not
    BuildKit's summary that repeats the command)."""
    own = steps.outputs.get(steps.failed_number) if steps.failed_step else None
    detail = "\n".join(tail(list(own) if own else lines) + [f"full log: {log_path}"])
    text = "\n".join(lines[-200:])
    missing = re.search(r"load metadata for (\S+)", steps.failed_step) or re.search(
        r"(?:pull access denied for|failed to resolve source metadata for) (\S+?)[,:\s]", text)
    if missing and ("metadata" in steps.failed_step or "pull access denied" in text
                    or "failed to resolve source metadata" in text):
        ref = missing.group(1).rstrip(",:")
        ref = re.sub(r"^docker\.io/(library/)?", "", ref)
        return BuildError(f"base image {ref!r} is not in the engine and cannot be pulled; "
                          + MAKE_BASE.format(ref=ref), detail)
    if "Cannot connect to the Docker daemon" in text:
        return BuildError(engine_error(text), detail)
    if "buildx component is missing" in text:
        return BuildError("the docker client needs the buildx plugin for BuildKit; use Debian's "
                          f"{DEBIAN_CLIENT} (set TFFORGE_DOCKER)", detail)
    if steps.failed_step:
        code = re.search(r"exit code: (\d+)", steps.failed_reason or text)
        why = f" (exit code {code.group(1)})" if code else ""
        return BuildError(f"build step failed: {short(step_title(steps.failed_step))}{why}; "
                          f"its last {TAIL_LINES} log lines are shown, full log {log_path}",
                          detail)
    return BuildError(f"docker build failed (exit {returncode}); full log {log_path}", detail)


# ---- the engine's running build steps -----------------------------------------------------
@dataclass(frozen=True)
class EngineStep:
    """A BuildKit step container: a `runc run` child of dockerd (not of containerd)."""

    pid: int
    started: float
    bundle: str
    command: str  # the container's init command line, e.g. "/bin/sh -c make"


def _proc_stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks since boot) from /proc/PID/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[19])


def _argv(pid: int | str) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [w.decode(errors="replace") for w in raw.split(b"\0") if w]


def engine_steps() -> list[EngineStep] | None:
    """BuildKit steps running in a dockerd on this machine; None when no dockerd is visible.

    dockerd runs BuildKit's steps with runc itself (its containers run under containerd), so
    a step is a `runc ... run ... <bundle>` child of dockerd; its child is the step's command."""
    try:
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        tick = os.sysconf("SC_CLK_TCK")
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except (OSError, StopIteration, ValueError):
        return None
    parents: dict[int, list[int]] = {}
    started: dict[int, float] = {}
    daemons = set()
    for pid in pids:
        stat = _proc_stat(pid)
        if stat is None:
            continue
        parents.setdefault(stat[0], []).append(int(pid))
        started[int(pid)] = boot + stat[1] / tick
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd":
                daemons.add(int(pid))
    if not daemons:
        return None
    steps = []
    for daemon in daemons:
        for pid in parents.get(daemon, []):
            words = _argv(pid)
            if words and words[0].endswith("runc") and "run" in words and \
                    any("buildkit" in w for w in words):
                init = next((_argv(c) for c in parents.get(pid, [])), [])
                steps.append(EngineStep(pid, started[pid], words[-1], " ".join(init)))
    return steps


def _same_command(step: EngineStep, commands: Iterable[str]) -> bool:
    """Whether a step container runs one of our RUN commands (whitespace-insensitive)."""
    have = " ".join(step.command.split())
    return any(have.endswith(" ".join(c.split())) for c in commands if c.strip())


def stop_client(proc: subprocess.Popen, since: float, running: Iterable[str] = ()) -> str:
    """Stop a running build for real; return what happened, for the error message.

    running: the RUN commands our log shows as started and not finished; they tell our step
    containers from those of other builds on the same engine."""
    commands = list(running)
    before = engine_steps()
    ours = {s.pid for s in before or [] if s.started >= since - 1
            and (not commands or _same_command(s, commands))}
    with contextlib.suppress(ProcessLookupError):
        # SIGINT: the client calls POST /build/cancel and closes its session.
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=CLIENT_GRACE_S)
        how = "the client cancelled the build in the engine"
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        how = "the client did not exit on SIGINT and was killed (its session closed)"
    if before is None:
        return f"{how}; the engine's processes are not visible here to confirm"
    deadline = time.monotonic() + ENGINE_GRACE_S
    left = ours
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = ours & {s.pid for s in engine_steps() or []}
    if left:
        return (f"{how}, but {len(left)} of its step(s) still run in the engine after "
                f"{ENGINE_GRACE_S:g}s (runc pids {', '.join(map(str, sorted(left)))}; another "
                f"build may share them)")
    return f"{how}; no step of it is left running in the engine ({len(ours)} stopped)"


# ---- locking ----------------------------------------------------------------------------
@contextlib.contextmanager
def build_lock(build_id: str) -> Iterator[None]:
    """One build per id at a time (the id is a hash of the inputs); other ids run freely."""
    path = paths.cache_dir("locks") / f"{build_id}.lock"
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise BuildError(f"build {build_id} is already running (pid {holder}); wait for it "
                             f"to finish or stop it, then retry")
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


# ---- progress -----------------------------------------------------------------------------
class Progress:
    """Current step and elapsed time: a rich line on a terminal, plain lines otherwise."""

    HEARTBEAT_S = 60.0

    def __init__(self):
        self.start = time.monotonic()
        self.last_plain = self.start
        self.step = "starting"
        self.rich = None
        if console.err.is_terminal:
            from rich.progress import Progress as RichProgress
            from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn
            # No markup: step names such as "[build 3/4]" are text, not rich tags.
            self.rich = RichProgress(SpinnerColumn(), TimeElapsedColumn(),
                                     TextColumn("{task.description}", markup=False),
                                     console=console.err, transient=True)
            self.task = self.rich.add_task(self._text(), total=None)
            self.rich.start()

    def _text(self) -> str:
        # Spinner and clock take ~12 columns; the step gets the rest of one line.
        return short(step_title(self.step), max(20, console.err.width - 14))

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def step_started(self, name: str) -> None:
        self.step = name
        if self.rich:
            self.rich.update(self.task, description=self._text())
        else:
            self._plain(f"[{self.elapsed():7.1f}s] {short(step_title(name), 110)}")

    def tick(self) -> None:
        if self.rich:
            self.rich.refresh()
        elif time.monotonic() - self.last_plain >= self.HEARTBEAT_S:
            self._plain(f"[{self.elapsed():7.1f}s] still running: "
                        f"{short(step_title(self.step), 90)}")

    def _plain(self, text: str) -> None:
        self.last_plain = time.monotonic()
        console.info(text)

    def close(self) -> None:
        if self.rich:
            self.rich.stop()
            self.rich = None


# ---- the build ------------------------------------------------------------------------------
def build_command(client: Client, build_dir: Path, dest: Path) -> list[str]:
    return [client.path, "build", "--progress=plain", "--target", "export",
            "--output", f"type=local,dest={dest}", str(build_dir)]


def _interrupt_when_parent_dies() -> None:
    """In the client (Linux): SIGINT it if tfforge dies (e.g. SIGKILL), so it cancels the build
    in the engine instead of building on as an orphan in its own session."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # 1 = PR_SET_PDEATHSIG


def _read_lines(stream, lines: "queue.Queue[str | None]") -> None:
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode("utf-8", errors="replace"))
    lines.put(None)


def run_docker_build(client: Client, build_dir: Path, dest: Path, log_path: Path, *,
                     build_id: str, timeout_s: float, started: float | None = None) -> StepLog:
    """Run the BuildKit build, streaming its log; stop it in the engine on timeout or Ctrl-C.

    The timeout counts from `started` (time.monotonic(); default now)."""
    cmd = build_command(client, build_dir, dest)
    console.info("$ DOCKER_BUILDKIT=1 " + " ".join(cmd))
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    steps = StepLog()
    kept: list[str] = []
    since = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ DOCKER_BUILDKIT=1 " + " ".join(cmd) + "\n")
        # Own session: a terminal's Ctrl-C reaches only us and we decide how the client stops.
        # Started before any thread of ours exists (preexec_fn runs in the forked child).
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_interrupt_when_parent_dies)
        progress = Progress()
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
                        raise TimeoutError
                    progress.tick()
                    continue
                if line is None:
                    break
                log.write(line)
                log.flush()
                kept.append(line)
                del kept[:-400]
                new_step = steps.feed(line.rstrip("\n"))
                if new_step:
                    progress.step_started(new_step)
            proc.wait()
        except (KeyboardInterrupt, TimeoutError) as exc:
            progress.close()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a 2nd Ctrl-C must not
            try:                                                    # cut the cleanup short
                what = stop_client(proc, since, steps.running_commands())
            finally:
                signal.signal(signal.SIGINT, previous)
            log.write(f"tfforge: build stopped ({type(exc).__name__}): {what}\n")
            cause = (f"timed out after {timeout_s:g}s" if isinstance(exc, TimeoutError)
                     else "interrupted")
            raise Interrupted(f"build {build_id} {cause} in step "
                              f"{short(step_title(steps.current), 80)!r}; "
                              f"{what}; log {log_path}") from None
        finally:
            progress.close()
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
        raise BuildError(f"{target} already exists and is a different wheel; tfforge never "
                         f"replaces one: this build's wheel is kept at {kept}; move the old one "
                         "away and copy it in, or build with another version label") from None
    finally:
        partial.unlink(missing_ok=True)
    src.unlink(missing_ok=True)
    return target


def load_build(build_dir: Path) -> dict:
    """build.json of a rendered build directory; ConfigError if it is not one."""
    record = build_dir / "build.json"
    if not (build_dir / "Dockerfile").is_file() or not record.is_file():
        raise ConfigError(f"{build_dir} is not a rendered build (needs Dockerfile and "
                          f"build.json); run `invoke render` first")
    try:
        doc = json.loads(record.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{record}: not valid JSON ({exc}); re-render the build")
    if not isinstance(doc, dict) or not doc.get("id"):
        raise ConfigError(f"{record}: has no 'id'; re-render the build")
    return doc


def _exported_wheel(export: Path, log_path: Path) -> Path:
    """The one wheel the export stage delivered; BuildError otherwise."""
    raw = sorted(export.glob("*.whl"))
    if len(raw) == 1:
        return raw[0]
    found = ", ".join(sorted(p.name for p in export.iterdir())) if export.is_dir() else ""
    raise BuildError(f"the export stage holds {len(raw)} wheels, expected 1 (found: "
                     f"{found or 'nothing'}); check that the bazel build wrote "
                     f"wheel_house/*.whl; log {log_path}",
                     "\n".join(tail(log_path.read_text().splitlines())))


def run_build(build_dir: Path, *, wheels_dir: Path, timeout_s: float,
              docker: str | None = None) -> dict:
    """Build builds/<id>/ on the engine and deliver the finalized wheel into wheels_dir.

    Returns {"wheel", "build_id", "durations" (seconds), "engine", "cache" (steps cached/run),
    "log", "provenance", "sha256"}.
    Raises BuildError / ConfigError / Interrupted with wheels_dir unchanged. docker: the client
    to use; None = the `docker` option (TFFORGE_DOCKER), "" = pick one.
    """
    from tfforge import settings
    from tfforge.wheel import edit as wheel_edit

    t0 = time.monotonic()
    build_dir = Path(build_dir).resolve()
    record = load_build(build_dir)
    build_id = str(record["id"])
    if timeout_s <= 0:
        raise ConfigError(f"build timeout {timeout_s!r} must be positive seconds; fix "
                          f"--timeout (or TFFORGE_BUILD_TIMEOUT)")
    if docker is None:
        docker = settings.load(cwd=paths.project_root()).docker
    with build_lock(build_id):
        client = resolve_client(docker)
        facts = engine_facts(client)
        if not facts.buildkit:
            raise BuildError(f"the engine ({facts.server_version}, API {facts.api_version}, "
                             f"{facts.os_arch}) cannot run BuildKit builds; use Docker 18.09+ "
                             f"on Linux")
        images = image_facts(client, dockerfile_images((build_dir / "Dockerfile").read_text()),
                             pull=True)
        engine_doc = {**facts.as_dict(), "base_images": images}
        console.info(f"engine: Docker {facts.server_version} (API {facts.api_version}, BuildKit) via "
            f"{client.path} {client.version}")
        t_checked = time.monotonic()
        log_path = build_dir / "build.log"
        # Staged beside the build (same filesystem as wheels/ in a project): the final move is
        # one rename. Removed whatever happens.
        stage = Path(tempfile.mkdtemp(prefix=".export-", dir=build_dir))
        try:
            steps = run_docker_build(client, build_dir, stage / "export", log_path,
                                     build_id=build_id, timeout_s=timeout_s, started=t0)
            t_built = time.monotonic()
            raw = _exported_wheel(stage / "export", log_path)
            cache = {"steps_cached": steps.cached, "steps_run": steps.ran}
            durations = {"engine_check_s": round(t_checked - t0, 3),
                         "build_s": round(t_built - t_checked, 3),
                         "stages_s": steps.stage_seconds}
            final = wheel_edit.finalize(
                raw, stage, local_version=str(record.get("derived", {}).get("local_version", "")),
                provenance={**record, "engine": engine_doc, "durations": durations,
                            "cache": cache})
            # The copy inside the wheel was written before these figures and the wheel's hash
            # existed; provenance.json beside the build has them.
            durations = {**durations, "finalize_s": round(time.monotonic() - t_built, 3),
                         "total_s": round(time.monotonic() - t0, 3)}
            provenance = {**record, "engine": engine_doc, "durations": durations,
                          "cache": cache, "wheel": {"name": final.name, "raw_name": raw.name,
                                                    "sha256": sha256_file(final)}}
            target = _move_into(final, Path(wheels_dir), keep_in=build_dir)
            write_json_atomic(build_dir / "provenance.json", provenance)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    console.info(f"built {target} in {durations['total_s']:.1f}s "
        f"({steps.cached} steps cached, {steps.ran} run)")
    return {"wheel": str(target), "build_id": build_id, "durations": durations,
            "engine": engine_doc, "cache": cache, "log": str(log_path),
            "provenance": str(build_dir / "provenance.json"),
            "sha256": provenance["wheel"]["sha256"]}
