"""What a build must reach on the network, and a quick check that it can.

The default build path clones TensorFlow from GitHub and downloads bazelisk and Bazel; a real
TensorFlow tree then fetches its dependencies through Bazel's mirrors. On a machine without
them the build should stop in seconds, naming what it could not reach and the offline way.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tfforge.build.spec import BuildSpec

PROBE_TIMEOUT_S = 5.0
OFFLINE_WAY = (
    "Offline: build a tree whose Bazel dependencies are all local (such as "
    "tests/fixtures/tfws) with --source-dir DIR --bazel-provider debian (or image) "
    "and a local base image: `bash scripts/make-base-image.sh local/{suite}:base "
    "{suite}`, then --base-image local/{suite}:base"
)


@dataclass(frozen=True)
class Need:
    host: str
    port: int
    why: str


def needs(spec: BuildSpec) -> list[Need]:
    """The hosts the build reaches, by what in the spec needs them (merged per host)."""
    found: dict[tuple[str, int], list[str]] = {}

    def add(host: str, why: str) -> None:
        found.setdefault((host, 443), []).append(why)

    if spec.source.kind == "git":
        add("github.com", f"cloning {spec.source.tag}")
        add("mirror.bazel.build", "TensorFlow's Bazel dependencies")
    if spec.bazel_provider == "bazelisk":
        add("github.com", "downloading bazelisk")
        add("releases.bazel.build", f"downloading Bazel {spec.toolchain.bazel}")
    return [Need(h, p, " and ".join(w)) for (h, p), w in found.items()]


def _reachable(need: Need, timeout: float) -> str | None:
    """None when a TCP connection opens, else why not."""
    try:
        with socket.create_connection((need.host, need.port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def unreachable(wanted: list[Need], timeout: float = PROBE_TIMEOUT_S) -> list[tuple[Need, str]]:
    """The needs no connection could be opened to (probed in parallel, bounded by timeout)."""
    if not wanted:
        return []
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        results = list(pool.map(lambda n: _reachable(n, timeout), wanted))
    return [(n, why) for n, why in zip(wanted, results, strict=True) if why is not None]


def offline_message(missing: list[tuple[Need, str]], suite: str) -> str:
    what = "; ".join(f"{n.host}:{n.port} ({why}; needed for {n.why})" for n, why in missing)
    return f"cannot reach {what}. " + OFFLINE_WAY.format(suite=suite)
