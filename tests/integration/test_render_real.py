"""The toolchain stage of a rendered build on the real Docker engine: the compiler check."""

from __future__ import annotations

import os

import pytest
from conftest import ROOT, need
from conftest import make_spec as make

from tfforge.build import render


@pytest.mark.integration
def test_toolchain_stage_on_the_engine_checks_the_compiler(tmp_path):
    """The real engine runs the toolchain stage: GCC 12.2.0 passes, asking for 12.9.0 fails
    with the one clear line (Debian 12's gcc-12 is 12.2.0)."""
    import subprocess

    docker = "/usr/bin/docker"  # Debian's 20.10 client runs BuildKit itself (docker-offline.md)
    need(os.path.exists(docker), f"{docker} (docker.io) is not installed")
    info = subprocess.run(
        [docker, "image", "inspect", "local/bookworm:base"], capture_output=True, text=True
    )
    need(info.returncode == 0, "no local/bookworm:base image (scripts/make-base-image.sh)")
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    results = {}
    for gcc in ("12.2.0", "12.9.0"):
        s = make(
            gcc_version=gcc,
            base_image="local/bookworm:base",
            bazel_provider="debian",
            source_dir=str(ROOT / "tests" / "fixtures" / "tfws"),
        )
        r = render.render(s, tmp_path / "builds")
        iid = tmp_path / f"iid-{gcc}"
        try:
            results[gcc] = subprocess.run(
                [
                    docker,
                    "build",
                    "--progress=plain",
                    "--target",
                    "toolchain",
                    "--iidfile",
                    str(iid),
                    str(r.path),
                ],
                capture_output=True,
                text=True,
                env=env,
                timeout=900,
            )
        finally:
            # the untagged toolchain image is not needed (BuildKit keeps its own cache)
            if iid.exists():
                image = iid.read_text().strip()
                tags = subprocess.run(
                    [docker, "image", "inspect", "--format", "{{len .RepoTags}}", image],
                    capture_output=True,
                    text=True,
                ).stdout.strip()
                if tags == "0":
                    subprocess.run([docker, "image", "rm", image], capture_output=True)
    ok, old = results["12.2.0"], results["12.9.0"]
    # A passing step may be CACHED (then it printed nothing); a failing one never is.
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert old.returncode != 0
    assert (
        "tfforge: gcc-12 is 12.2.0, older than the required 12.9.0; use --gcc-version "
        "12.2.0 or a base image with a newer compiler"
    ) in old.stderr
