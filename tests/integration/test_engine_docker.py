"""The engine wrapper on a real Docker engine, with tiny hand-written build directories.

Each build here takes seconds: no Bazel, only the local base image. They prove the failure
classes, the per-id lock, and that a timeout or Ctrl-C stops the build inside the engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, need, need_engine, need_tool
from conftest import tree_bytes as snapshot
from wheel_samples import raw_wheel, record_problems

from tfforge.build import dockercmd
from tfforge.docker import cancel
from tfforge.docker import client as docker_client
from tfforge.docker import run as docker_run
from tfforge.docker.client import Client
from tfforge.errors import BuildError, Interrupted
from tfforge.wheel.read import check as check_wheel

pytestmark = pytest.mark.integration
BASE = "local/bookworm:base"


@pytest.fixture(scope="module")
def client() -> Client:
    return need_engine(BASE)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A throwaway project: wheels/ holding one older wheel that must never change."""
    monkeypatch.setenv("TFFORGE_CACHE", str(tmp_path / "cache"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "older-1.0-py3-none-any.whl").write_bytes(b"an older wheel")
    return tmp_path


def build_dir(project: Path, build_stage: str, *, label: str = "avx2") -> Path:
    """builds/<id>/ with a Dockerfile whose `build` stage runs build_stage, and a build.json."""
    build_id = f"0.0.0-test-{uuid.uuid4().hex[:12]}"  # the build-id grammar (tfforge.grammar)
    folder = project / "builds" / build_id
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(
        f"FROM {BASE} AS build\n{build_stage}\nFROM scratch AS export\nCOPY --from=build /dist/ /\n"
    )
    (folder / "build.json").write_text(
        json.dumps({"id": build_id, "derived": {"local_version": label}})
    )
    return folder


def engine_has(token: str) -> bool:
    """Whether any process on this machine (a build step in the engine) mentions token."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            pass
    return False


def test_build_exports_finalized_wheel(client, project):
    folder = build_dir(project, "COPY raw/ /dist/")
    raw_wheel(folder / "raw")
    before = snapshot(project / "wheels")
    result = docker_run.run_build(folder, wheels_dir=project / "wheels", timeout_s=300)
    wheel = Path(result["wheel"])
    assert wheel.parent == project / "wheels"
    assert wheel.name == "tensorflow_cpu-2.21.0+avx2-cp311-cp311-linux_x86_64.whl"
    assert set(snapshot(project / "wheels")) == set(before) | {wheel.name}
    assert record_problems(wheel) == []
    inside = check_wheel(wheel).facts.provenance
    beside = json.loads((folder / "provenance.json").read_text())
    assert inside["id"] == beside["id"] == result["build_id"] == folder.name
    # Inside the wheel: inputs only; what varies per run is beside the build.
    assert inside["base_images"][0]["ref"] == BASE
    assert inside["base_images"][0]["id"].startswith("sha256:")
    assert not {"run", "engine", "durations", "cache", "wheel"} & set(inside)
    run = beside["run"]
    assert run["engine"]["client"] == client.path and run["engine"]["buildkit"] is True
    assert run["durations"]["build_s"] > 0 and "total_s" in run["durations"]
    assert run["argv"] == result["argv"] and run["argv"][0] == client.path
    assert beside["wheel"]["sha256"] == result["sha256"]
    assert "exporting to client" in (folder / "build.log").read_text()
    assert not (folder / dockercmd.EXPORT_STAGE).exists()


def test_failing_step_reports_cause_and_log_tail(client, project):
    folder = build_dir(project, 'RUN echo "kernel.c:3: error: expected ;" >&2 && exit 3')
    before = snapshot(project / "wheels")
    with pytest.raises(BuildError) as exc:
        docker_run.run_build(folder, wheels_dir=project / "wheels", timeout_s=300)
    assert str(exc.value).startswith("build step failed: [build 2/2] RUN echo")
    assert "(exit code 3)" in str(exc.value) and str(folder / "build.log") in str(exc.value)
    assert "kernel.c:3: error: expected ;" in exc.value.detail
    assert exc.value.detail.splitlines()[-1] == f"full log: {folder / 'build.log'}"
    assert snapshot(project / "wheels") == before
    assert (
        not (folder / "provenance.json").exists() and not (folder / dockercmd.EXPORT_STAGE).exists()
    )


def test_missing_base_image_is_named(client, project):
    folder = build_dir(project, "RUN true")
    text = (folder / "Dockerfile").read_text().replace(BASE, "local/tfforge-absent:none")
    (folder / "Dockerfile").write_text(text)
    before = snapshot(project / "wheels")
    with pytest.raises(BuildError) as exc:
        docker_run.run_build(folder, wheels_dir=project / "wheels", timeout_s=300)
    # No registry here (or no such image in one): the pull fails and the fix is named.
    assert str(exc.value).startswith("base image 'local/tfforge-absent:none' is not in the engine")
    assert "`bash scripts/make-base-image.sh local/tfforge-absent:none bookworm`" in str(exc.value)
    assert "`docker pull local/tfforge-absent:none`" in str(exc.value)
    assert snapshot(project / "wheels") == before


def test_export_without_wheel_is_an_error(client, project):
    folder = build_dir(project, "RUN mkdir /dist && echo '{}' > /dist/build.json")
    before = snapshot(project / "wheels")
    with pytest.raises(
        BuildError,
        match=r"export stage holds 0 wheels, expected 1 "
        r"\(found: build.json\)",
    ):
        docker_run.run_build(folder, wheels_dir=project / "wheels", timeout_s=300)
    assert snapshot(project / "wheels") == before


def test_timeout_stops_the_build_in_the_engine(client, project):
    token = f"tfforge-timeout-{uuid.uuid4().hex[:8]}"
    folder = build_dir(project, f"RUN echo {token} && sleep 300")
    before = snapshot(project / "wheels")
    seen: list[cancel.EngineStep] = []  # engine_steps() while the step runs

    def watch() -> None:
        deadline = time.monotonic() + 8
        while not seen and time.monotonic() < deadline:
            seen.extend(s for s in cancel.engine_steps() or [] if token in s.command)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.monotonic()
    with pytest.raises(Interrupted) as exc:
        docker_run.run_build(folder, wheels_dir=project / "wheels", timeout_s=8)
    took = time.monotonic() - start
    watcher.join()
    assert seen, "engine_steps() never listed the running step"
    assert seen[0].pid > 0 and abs(seen[0].started - time.time()) < 60
    print(f"\ntimeout 8s: stopped after {took:.1f}s: {exc.value}")
    assert "timed out after 8s" in str(exc.value)
    assert "cancelled the build in the engine" in str(exc.value)
    assert "no step of it is left running in the engine (1 stopped)" in str(exc.value)
    assert not engine_has(token)
    assert took < 8 + cancel.CLIENT_GRACE_S
    assert snapshot(project / "wheels") == before


def test_ctrl_c_stops_the_build_and_same_id_is_refused_meanwhile(client, project):
    token = f"tfforge-ctrlc-{uuid.uuid4().hex[:8]}"
    folder = build_dir(project, f"RUN echo {token} && sleep 300")
    before = snapshot(project / "wheels")
    script = (
        "import sys\nfrom pathlib import Path\nfrom tfforge.docker import run\n"
        "from tfforge.errors import TfforgeError\n"
        "try:\n"
        f"    run.run_build(Path({str(folder)!r}),\n"
        f"                     wheels_dir=Path({str(project / 'wheels')!r}), timeout_s=300)\n"
        "except TfforgeError as exc:\n"
        "    print('error:', exc, file=sys.stderr)\n"
        "    sys.exit(exc.exit_code)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not engine_has(f"echo {token}") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert engine_has(f"echo {token}"), "the build step never started"
        with pytest.raises(
            BuildError,
            match=rf"build {folder.name} is already running "
            rf"\(pid {proc.pid}\)",
        ):
            docker_run.run_build(folder, wheels_dir=project / "wheels", timeout_s=60)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"\nCtrl-C: {err.strip().splitlines()[-1]}")
    assert proc.returncode == 130
    assert f"error: build {folder.name} interrupted" in err
    assert "no step of it is left running in the engine (1 stopped)" in err
    assert not engine_has(token)
    assert snapshot(project / "wheels") == before


def test_make_base_image_is_idempotent(client):
    """With the image present the script does nothing and says so (CI runs it every time)."""
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "make-base-image.sh"), BASE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{BASE} already exists (sha256:" in proc.stdout
    assert time.monotonic() - start < 10


def test_this_machine_resolves_debian_client():
    """Debian's client comes first when it can run BuildKit builds itself."""
    need(
        os.access(docker_client.DEBIAN_CLIENT, os.X_OK),
        f"{docker_client.DEBIAN_CLIENT} (apt-get install docker.io)",
    )
    client = docker_client.resolve_client()
    assert client.path == docker_client.DEBIAN_CLIENT and client.buildkit


def test_unreachable_engine_is_a_one_line_build_error(monkeypatch):
    need_tool("docker")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    client = docker_client.resolve_client()
    with pytest.raises(BuildError) as exc:
        docker_client.engine_facts(client)
    text = str(exc.value)
    assert "not reachable at unix:///nonexistent/docker.sock" in text and "\n" not in text
    assert "dockerd" in text
