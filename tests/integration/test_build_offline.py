"""On a machine without GitHub and Bazel's mirrors, `invoke build` (default path) stops in
seconds naming what it could not reach and the offline way, and leaves wheels/ alone.

The build runs in a network namespace with no network (`unshare -n`), so the test means the
same on a machine that does reach GitHub."""

import os
import subprocess
import sys
import time

from conftest import ROOT, need_tool


def test_default_build_fails_fast_offline(tmp_path):
    unshare = need_tool("unshare")
    start = time.monotonic()
    proc = subprocess.run(
        [
            unshare,
            "-n",
            sys.executable,
            "-m",
            "invoke",
            "-r",
            str(ROOT),
            "build",
            "--target",
            "haswell",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TFFORGE_ROOT": str(tmp_path)},
    )
    seconds = time.monotonic() - start
    print(f"\n{proc.stderr.strip()}\n(after {seconds:.1f} s)")
    assert proc.returncode == 1, proc.stderr[-2000:]
    [line] = proc.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: cannot reach github.com:443 (")
    assert (
        "--source-dir" in line
        and "bash scripts/make-base-image.sh local/trixie:base trixie" in line
    )
    assert not (tmp_path / "wheels").exists()
    assert seconds < 60  # a hang guard (the probes time out in seconds), not a speed target
