"""What a build must reach, and the probe that stops an offline build in seconds."""

import socket
import time

from tfforge import settings
from tfforge.build import network, spec

from conftest import FIXTURES


def make(**kw) -> spec.BuildSpec:
    return spec.make({**settings.defaults(), "target": "haswell", **kw})


def test_default_path_needs_github_and_bazels_hosts():
    hosts = {n.host: n.why for n in network.needs(make())}
    assert set(hosts) == {"github.com", "mirror.bazel.build", "releases.bazel.build"}
    assert hosts["github.com"] == "cloning v2.21.0 and downloading bazelisk"


def test_local_tree_with_debian_bazel_needs_nothing():
    s = make(source_dir=str(FIXTURES / "tfws"), bazel_provider="debian")
    assert network.needs(s) == []
    assert network.unreachable([]) == []


def test_a_closed_port_is_reported_fast_with_the_reason():
    with socket.socket() as sock:  # a port nobody listens on: bind, then close it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    need = network.Need("127.0.0.1", port, "testing")
    start = time.monotonic()
    [(got, why)] = network.unreachable([need], timeout=2)
    assert got == need and "refused" in why.lower()
    assert time.monotonic() - start < 2
    message = network.offline_message([(need, why)], "trixie")
    assert message.startswith(f"cannot reach 127.0.0.1:{port} (")
    assert "--source-dir" in message and "make-base-image.sh local/trixie:base trixie" in message
    assert "--base-image local/trixie:base" in message
