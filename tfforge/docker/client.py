"""The docker client and the engine: which client runs BuildKit builds, the engine's facts, the
base images a Dockerfile needs. Short queries only; running a build is tfforge.docker.run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TypedDict

from tfforge.errors import BuildError, ConfigError

DEBIAN_CLIENT = "/usr/bin/docker"
START_ENGINE = "start it: `dockerd > /tmp/dockerd.log 2>&1 &` or `systemctl start docker`"
MAKE_BASE = (
    "pull it where a registry is reachable (`docker pull {ref}`), or offline make a "
    "local one with debootstrap and build on it: `bash scripts/make-base-image.sh "
    "{local} {suite}`, then pass --base-image {local}"
)
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
        proc = subprocess.run(
            [path, "version", "--format", "{{.Client.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Client(path, "", False, f"does not run ({exc})")
    version = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
    if not version:
        return Client(path, "", False, "printed no client version")
    has_buildx = False
    if not client_can_buildkit(version, False):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            has_buildx = (
                subprocess.run(
                    [path, "buildx", "version"], capture_output=True, timeout=30
                ).returncode
                == 0
            )
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
    raise BuildError(
        f"no docker client can run BuildKit builds ({refused}); install Debian's "
        f"{DEBIAN_CLIENT} (apt-get install -y docker.io) or set TFFORGE_DOCKER to one "
        f"that can"
    )


def resolve_client(configured: str = "") -> Client:
    """The client tfforge uses: TFFORGE_DOCKER / `docker` option if set, else auto (see above)."""
    if configured and not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
        raise ConfigError(
            f"docker client {configured!r} is not an executable; fix the `docker` "
            f"option (TFFORGE_DOCKER) or leave it empty to pick one"
        )
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

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def engine_error(stderr: str) -> str:
    """One line for a client that could not talk to the engine."""
    text = " ".join(stderr.split())
    if "permission denied" in text.lower():
        return (
            f"Docker engine refused this user ({text[:160]}); run as root or add the user "
            f"to the docker group"
        )
    if "Cannot connect" in text or "Is the docker daemon running" in text or not text:
        where = re.search(r"at (\S+?)\.? Is the docker", text)
        return (
            f"Docker engine not reachable{' at ' + where.group(1) if where else ''}; {START_ENGINE}"
        )
    return f"Docker engine not usable ({text[:200]}); {START_ENGINE}"


def query(client: Client, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A short engine query; an engine that hangs or a client that cannot start is a BuildError."""
    try:
        return subprocess.run([client.path, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(
            f"Docker engine did not answer `docker {args[0]}` within {timeout:g}s; "
            f"check it (docker info, /tmp/dockerd.log) or restart it"
        ) from None
    except OSError as exc:
        raise BuildError(f"docker client {client.path} does not run ({exc})") from exc


def api_at_least(version: str, minimum: tuple[int, int]) -> bool:
    parts = re.match(r"(\d+)\.(\d+)", version or "")
    return parts is not None and (int(parts.group(1)), int(parts.group(2))) >= minimum


def engine_facts(client: Client) -> Engine:
    """Engine version, API, platform, storage driver; BuildKit needs API 1.39+ on Linux."""
    proc = query(client, "version", "--format", "{{json .Server}}")
    server = None
    with contextlib.suppress(json.JSONDecodeError):
        server = json.loads(proc.stdout or "null")
    if proc.returncode != 0 or not server:
        raise BuildError(engine_error(proc.stderr))
    info = query(client, "info", "--format", "{{.Driver}}")
    os_name = server.get("Os", "")
    api = server.get("ApiVersion", "")
    return Engine(
        client=client.path,
        client_version=client.version,
        server_version=server.get("Version", ""),
        api_version=api,
        os_arch=f"{os_name}/{server.get('Arch', '')}",
        kernel=server.get("KernelVersion", ""),
        storage_driver=info.stdout.strip() if info.returncode == 0 else "",
        buildkit=os_name == "linux" and api_at_least(api, (1, 39)),
    )


# ---- base images ---------------------------------------------------------------------------
class ImageFact(TypedDict):
    """A base image as the engine holds it (recorded in the provenance)."""

    ref: str
    id: str
    repo_digests: list[str]


def dockerfile_images(text: str) -> list[str]:
    """Images the Dockerfile's FROM lines pull: not `scratch`, not earlier stage names.

    Global `ARG NAME=default` before the first FROM is substituted, as docker does. Hand-written:
    FROM lines, global ARG defaults and stage names are all it needs; a Dockerfile parser
    (dockerfile-parse) would add a dependency and scopes ARGs to the last stage.
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


def image_facts(
    client: Client,
    refs: Iterable[str],
    *,
    pull: bool = False,
    on_pull: Callable[[str], None] | None = None,
) -> list[ImageFact]:
    """Id and repo digests of each base image; BuildError naming the first one missing.

    pull=True first tries `docker pull` for an image the engine lacks (the default base image
    is a public one pinned by digest); without a registry that fails at once. on_pull(ref) is
    told before a pull starts."""

    def inspect(ref: str) -> subprocess.CompletedProcess[str]:
        return query(
            client, "image", "inspect", "--format", "{{json .Id}} {{json .RepoDigests}}", ref
        )

    facts: list[ImageFact] = []
    for ref in refs:
        proc = inspect(ref)
        if proc.returncode != 0 and pull and "No such" in proc.stderr:
            if on_pull:
                on_pull(ref)
            pulled = query(client, "pull", "--quiet", ref, timeout=PULL_TIMEOUT_S)
            if pulled.returncode != 0:
                lines = pulled.stderr.strip().splitlines()
                why = " ".join((lines[-1] if lines else f"exit {pulled.returncode}").split())[:120]
                raise BuildError(
                    f"base image {ref!r} is not in the engine and `docker pull` "
                    f"failed ({why}); " + make_base(ref)
                )
            proc = inspect(ref)
        if proc.returncode != 0:
            if "No such image" in proc.stderr or "No such object" in proc.stderr:
                raise BuildError(f"base image {ref!r} is not in the engine; " + make_base(ref))
            raise BuildError(engine_error(proc.stderr))
        image_id, digests = proc.stdout.strip().split(" ", 1)
        facts.append(
            {"ref": ref, "id": json.loads(image_id), "repo_digests": json.loads(digests) or []}
        )
    return facts


def base_suite(ref: str) -> str:
    """The Debian suite a base image reference names (bookworm when it names none)."""
    found = re.search(r"(bookworm|trixie)", ref)
    return found.group(1) if found else "bookworm"


def make_base(ref: str) -> str:
    """How to get a missing base image: `docker import` cannot create a digest reference, so
    a pinned public image is replaced by the local image of the same Debian suite."""
    suite = base_suite(ref)
    local = f"local/{suite}:base" if "@" in ref else ref
    return MAKE_BASE.format(ref=ref, suite=suite, local=local)
