"""What a build must reach, and the probe that stops an offline build in seconds."""

import socket
import time

from conftest import FIXTURES
from conftest import make_spec as make

from tfforge.build import network


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
    assert time.monotonic() - start < 10  # refused at once; a hang guard, not a speed target
    message = network.offline_message([(need, why)], "trixie")
    assert message.startswith(f"cannot reach 127.0.0.1:{port} (")
    assert "--source-dir" in message and "make-base-image.sh local/trixie:base trixie" in message
    assert "--base-image local/trixie:base" in message


def test_missing_base_image_advice_is_a_command_that_works():
    """docker import cannot create a digest reference: the advice names a local image."""
    from tfforge.docker import client as engine

    ref = "debian:trixie-slim@sha256:" + "d" * 64
    advice = engine.make_base(ref)
    made = advice.split("`bash scripts/make-base-image.sh ")[1].split("`")[0]
    assert made == "local/trixie:base trixie" and "@sha256" not in made
    assert "--base-image local/trixie:base" in advice
    assert engine.base_suite("debian:bookworm-slim@sha256:" + "8" * 64) == "bookworm"
    assert "make-base-image.sh local/x:base bookworm`" in engine.make_base("local/x:base")
