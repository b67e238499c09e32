"""On a machine without GitHub and Bazel's mirrors, `invoke build` (default path) stops in
seconds naming what it could not reach and the offline way, and leaves wheels/ alone."""

import time

import pytest
from conftest import invoke

from tfforge import settings
from tfforge.build import network, spec

pytestmark = pytest.mark.integration


def test_default_build_fails_fast_offline(tmp_path):
    default = spec.make({**settings.defaults(), "target": "haswell", "gcc_version": ""})
    if not network.unreachable(network.needs(default)):
        pytest.skip("this machine reaches GitHub and Bazel's hosts: the offline path does not "
                    "apply (the default build would really start)")
    start = time.monotonic()
    proc = invoke("build", "--target", "haswell", env={"TFFORGE_ROOT": str(tmp_path)},
                  timeout=120)
    seconds = time.monotonic() - start
    print(f"\n{proc.stderr.strip()}\n(after {seconds:.1f} s)")
    assert proc.returncode == 1 and seconds < 30
    [line] = proc.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: cannot reach github.com:443 (")
    assert "--source-dir" in line and "bash scripts/make-base-image.sh local/trixie:base trixie" in line
    assert not (tmp_path / "wheels").exists()
