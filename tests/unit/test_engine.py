"""Unit tests of the engine wrapper and wheel finalization (no Docker engine needed).

Client resolution runs real (tiny, generated) executables; log parsing uses text captured from
Docker 20.10's plain BuildKit progress; wheel_edit round trips re-read every RECORD hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename
from wheel_samples import raw_wheel, record_problems

from tfforge.docker import cancel, progress
from tfforge.docker import client as docker_client
from tfforge.docker import run as docker_run
from tfforge.errors import BuildError, ConfigError
from tfforge.wheel import edit as wheel_edit
from tfforge.wheel import read as wheel

# ---- client resolution -----------------------------------------------------------------------


def fake_client(folder: Path, version: str, buildx: bool) -> Path:
    """An executable that answers `version --format ...` and `buildx version` like docker."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "docker"
    path.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = version ]; then echo "{version}"; exit 0; fi\n'
        f'if [ "$1" = buildx ]; then exit {0 if buildx else 1}; fi\n'
        "exit 2\n"
    )
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    "version, buildx, ok",
    [
        ("20.10.24+dfsg1", False, True),  # Debian bookworm's client runs BuildKit itself
        ("28.2.2", False, False),  # docker-ce client without the buildx plugin
        ("28.2.2", True, True),
        ("22.06.0-beta.0", False, True),
    ],
)
def test_client_can_buildkit(version, buildx, ok):
    assert docker_client.client_can_buildkit(version, buildx) is ok


def test_probe_prefers_a_client_that_can_build(tmp_path):
    new = fake_client(tmp_path / "local", "28.2.2", buildx=False)
    old = fake_client(tmp_path / "usr", "20.10.24+dfsg1", buildx=False)
    clients = [docker_client.probe_client(str(new)), docker_client.probe_client(str(old))]
    assert clients[0].buildkit is False and "buildx" in clients[0].note
    chosen = docker_client.choose_client(clients)
    assert chosen.path == str(old) and chosen.version == "20.10.24+dfsg1"


def test_probe_accepts_new_client_with_buildx(tmp_path):
    client = docker_client.probe_client(str(fake_client(tmp_path, "27.0.1", buildx=True)))
    assert client.buildkit and client.version == "27.0.1"


def test_choose_client_names_every_refused_one(tmp_path):
    new = docker_client.probe_client(str(fake_client(tmp_path / "a", "28.2.2", buildx=False)))
    with pytest.raises(BuildError) as exc:
        docker_client.choose_client([new])
    text = str(exc.value)
    assert str(tmp_path / "a" / "docker") in text and "28.2.2" in text
    assert "apt-get install -y docker.io" in text
    with pytest.raises(BuildError, match="no docker client found"):
        docker_client.choose_client([])


def test_candidates_put_debian_client_first_and_dedupe(tmp_path):
    first = fake_client(tmp_path / "bin1", "28.2.2", buildx=False)
    (tmp_path / "bin2").mkdir()
    (tmp_path / "bin2" / "docker").symlink_to(first)  # same binary twice on PATH
    found = docker_client.candidate_paths(
        "", search_path=f"{tmp_path / 'bin1'}:{tmp_path / 'bin2'}"
    )
    expected_first = (
        [docker_client.DEBIAN_CLIENT] if os.access(docker_client.DEBIAN_CLIENT, os.X_OK) else []
    )
    assert found == expected_first + [str(first)]
    assert docker_client.candidate_paths("/opt/docker") == ["/opt/docker"]


def test_configured_client_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="TFFORGE_DOCKER"):
        docker_client.resolve_client(str(tmp_path / "no-docker"))


# ---- engine errors ---------------------------------------------------------------------------


def test_engine_error_says_how_to_start():
    text = docker_client.engine_error(
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
        " Is the docker daemon running?\n"
    )
    assert "not reachable at unix:///var/run/docker.sock" in text
    assert "dockerd" in text and "systemctl start docker" in text
    denied = docker_client.engine_error(
        "Got permission denied while trying to connect to the Docker "
        "daemon socket at unix:///var/run/docker.sock"
    )
    assert "docker group" in denied and "\n" not in denied


# ---- Dockerfile base images ------------------------------------------------------------------


def test_dockerfile_images_skips_stages_and_scratch():
    text = """# comment FROM nothing
ARG BASE=local/bookworm:base
FROM ${BASE} AS toolchain
RUN true
FROM toolchain AS source
FROM --platform=linux/amd64 debian:bookworm-slim@sha256:%s AS other
FROM source AS build
FROM scratch AS export
COPY --from=build /dist/ /
""" % ("a" * 64)
    assert docker_client.dockerfile_images(text) == [
        "local/bookworm:base",
        "debian:bookworm-slim@sha256:" + "a" * 64,
    ]


# ---- BuildKit plain progress -----------------------------------------------------------------

FAILED_STEP_LOG = """#1 [internal] load build definition from Dockerfile
#1 sha256:8500226833712870a4c79aa1dde13af2dd02c11480ef06139b8db2400315c88d
#1 transferring dockerfile: 198B done
#1 DONE 0.0s

#3 [internal] load metadata for docker.io/local/bookworm:base
#3 DONE 0.0s

#4 [build 1/2] FROM docker.io/local/bookworm:base
#4 CACHED

#5 [build 2/2] RUN echo compiling && echo "x.c:3: error: expected ;" >&2 && exit 3
#5 sha256:981863b10e42a916b5bed51ca028a649bbff41fd17b836fb82e5b781e35e341d
#5 0.278 compiling
#5 0.278 x.c:3: error: expected ;
#5 ERROR: executor failed running [/bin/sh -c echo compiling && echo "x.c:3: error: expected ;" >&2 && exit 3]: exit code: 3
------
 > [build 2/2] RUN echo compiling && echo "x.c:3: error: expected ;" >&2 && exit 3:
------
executor failed running [/bin/sh -c echo compiling && echo "x.c:3: error: expected ;" >&2 && exit 3]: exit code: 3
""".splitlines()

MISSING_BASE_LOG = """#3 [internal] load metadata for docker.io/local/nosuch:base
#3 sha256:ffc375f29212f6c0b8b3d4959c24d5f5da77ee1b318f747cf3bfb3679069d0dd
#3 ERROR: failed to do request: Head "https://registry-1.docker.io/v2/local/nosuch/manifests/base": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host
------
 > [internal] load metadata for docker.io/local/nosuch:base:
------
failed to solve with frontend dockerfile.v0: failed to create LLB definition: failed to do request: Head "https://registry-1.docker.io/v2/local/nosuch/manifests/base": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host
""".splitlines()


def parse(lines):
    steps = progress.StepLog()
    started = [name for name in map(steps.feed, lines) if name]
    return steps, started


def test_steplog_follows_steps_and_stage_times():
    lines = FAILED_STEP_LOG[:11] + [
        "#6 [build 3/3] RUN make",
        "#6 1.5 cc -O2 x.c",
        "#6 DONE 12.5s",
        "#7 exporting to client",
        "#7 DONE 0.1s",
    ]
    steps, started = parse(lines)
    assert started == [
        "[internal] load build definition from Dockerfile",
        "[internal] load metadata for docker.io/local/bookworm:base",
        "[build 1/2] FROM docker.io/local/bookworm:base",
        "[build 3/3] RUN make",
        "exporting to client",
    ]
    assert steps.current == "exporting to client"
    assert steps.cached == 1 and steps.ran == 4
    assert steps.stage_seconds == {"internal": 0.0, "build": 12.5, "export": 0.1}


def test_running_run_steps_are_matched_to_step_containers():
    steps, _ = parse(
        [
            "#5 [build 3/4] RUN --mount=type=cache,target=/c,sharing=locked "
            "bazel build   --config=opt //t:wheel",
            "#6 [build 1/2] WORKDIR /src",
            "#6 DONE 0.0s",
            "#7 [toolchain 2/3] RUN apt-get update",
            "#7 CACHED",
        ]
    )
    assert steps.running_commands() == ["bazel build   --config=opt //t:wheel"]
    ours = cancel.EngineStep(1, 0.0, "b1", "/bin/sh -c bazel build --config=opt //t:wheel")
    other = cancel.EngineStep(2, 0.0, "b2", "/bin/sh -c make -j2")
    assert cancel._same_command(ours, steps.running_commands())
    assert not cancel._same_command(other, steps.running_commands())
    assert (
        progress.step_title("[build 3/4] RUN --mount=a --network=none make")
        == "[build 3/4] RUN make"
    )


def test_step_titles_hide_the_rebuild_setup():
    """The bazel step as the rendered template writes it, and as BuildKit shows it in a rebuild."""
    from conftest import make_spec

    from tfforge.build import render

    text = render.dockerfile(make_spec(target="haswell"))
    step = next(
        line
        for line in text.replace("\\\n", " ").splitlines()
        if line.startswith("RUN --mount") and "bazel build" in line
    )
    plain = progress.step_title("[build 3/4] " + " ".join(step.split()))
    assert plain.startswith(
        "[build 3/4] RUN bazel build --config=opt --config=clang_local --copt=-march=haswell"
    )
    shown = (
        '[build 3/4] RUN --mount=type=cache,target=/c umask "0002"  && if [ -n "1" ]; then '
        'echo "startup --output_user_root=/tmp/tfforge-fresh" > "/home/b/.bazelrc"; fi  && '
        "taskset -c 0-$((TFFORGE_CPUS - 1)) bazel build --config=opt //t:wheel"
    )
    assert progress.step_title(shown) == "[build 3/4] RUN bazel build --config=opt //t:wheel"


def test_failed_step_is_named_with_exit_code_and_log_tail(tmp_path):
    log = tmp_path / "build.log"
    lines = [f"#5 {i}.0 noise line {i}" for i in range(50)] + FAILED_STEP_LOG
    steps, _ = parse(lines)
    error = progress.classify_failure(lines, 1, steps, log)
    message = str(error)
    assert message.startswith("build step failed: [build 2/2] RUN echo compiling")
    assert "(exit code 3)" in message and str(log) in message and "\n" not in message
    detail = error.detail.splitlines()
    assert len(detail) == progress.TAIL_LINES + 1 and detail[-1] == f"full log: {log}"
    assert "x.c:3: error: expected ;" in error.detail
    assert "noise line 0" not in error.detail


def test_a_template_check_explains_the_failure_itself(tmp_path):
    lines = [
        '#7 [toolchain 3/7] RUN apt-get update && echo "tfforge: $x" >&2',
        "#7 2.1 E: Version '9.9' for 'zip' was not found",
        "#7 2.2 tfforge: the Debian archive no longer has the locked package version(s) "
        "zip=9.9; see https://snapshot.debian.org/archive/debian/20250101T000000Z/",
        "#7 ERROR: executor failed running [/bin/sh -c apt-get update]: exit code: 1",
    ]
    steps, _ = parse(lines)
    error = progress.classify_failure(lines, 1, steps, tmp_path / "build.log")
    assert str(error).startswith(
        "the Debian archive no longer has the locked package "
        "version(s) zip=9.9; see https://snapshot.debian.org/"
    )
    assert "[toolchain 3/7] RUN apt-get update" in str(error) and "\n" not in str(error)


def test_missing_base_image_says_how_to_make_it(tmp_path):
    steps, _ = parse(MISSING_BASE_LOG)
    error = progress.classify_failure(MISSING_BASE_LOG, 1, steps, tmp_path / "build.log")
    assert "base image 'local/nosuch:base'" in str(error)
    assert "bash scripts/make-base-image.sh" in str(error) and "docker pull" in str(error)


def test_unknown_failure_keeps_exit_status(tmp_path):
    error = progress.classify_failure(["something odd"], 17, progress.StepLog(), tmp_path / "b.log")
    assert "exit 17" in str(error) and "something odd" in error.detail


def test_tail_keeps_last_lines():
    assert progress.tail([f"{i}\n" for i in range(100)], 3) == ["97", "98", "99"]


# ---- per-id lock -----------------------------------------------------------------------------


def test_same_id_refused_other_ids_independent(tmp_path, monkeypatch):
    monkeypatch.setenv("TFFORGE_CACHE", str(tmp_path))
    with docker_run.build_lock("2.21.0-avx2-aaaa"):
        with (
            pytest.raises(BuildError, match=rf"already running \(pid {os.getpid()}\)"),
            docker_run.build_lock("2.21.0-avx2-aaaa"),
        ):
            pass
        with docker_run.build_lock("2.21.0-mkl-bbbb"):
            pass
    with docker_run.build_lock("2.21.0-avx2-aaaa"):  # released after the first build
        pass


def test_run_build_refuses_unrendered_dir(tmp_path):
    wheels = tmp_path / "wheels"
    with pytest.raises(ConfigError, match="invoke render"):
        docker_run.run_build(tmp_path, wheels_dir=wheels, timeout_s=10)
    (tmp_path / "Dockerfile").write_text("FROM scratch AS export\n")
    (tmp_path / "build.json").write_text(json.dumps({"id": "2.21.0-x-0123456789ab"}))
    with pytest.raises(ConfigError, match="timeout"):
        docker_run.run_build(tmp_path, wheels_dir=wheels, timeout_s=0)
    assert not wheels.exists()


# ---- wheel_edit ------------------------------------------------------------------------------


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_finalize_sets_label_provenance_and_record(tmp_path):
    raw = raw_wheel(tmp_path / "raw")
    provenance = {
        "id": "2.21.0-avx2.fma-0123456789ab",
        "derived": {"local_version": "avx2.fma"},
        "engine": {"server_version": "20.10.24"},
        "durations": {"build_s": 1.5},
    }
    out = wheel_edit.finalize(raw, tmp_path, local_version="avx2.fma", provenance=provenance)
    assert out.name == "tensorflow_cpu-2.21.0+avx2.fma-cp311-cp311-linux_x86_64.whl"
    name, version, _, tags = parse_wheel_filename(out.name)
    assert str(version) == "2.21.0+avx2.fma" and {str(t) for t in tags} == {
        "cp311-cp311-linux_x86_64"
    }
    assert record_problems(out) == []
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        info = "tensorflow_cpu-2.21.0+avx2.fma.dist-info"
        assert f"{info}/METADATA" in names and f"{info}/RECORD" == names[-1]
        assert "tensorflow_cpu-2.21.0+avx2.fma.data/scripts/tfws-info" in names
        assert not any("-2.21.0.dist-info" in n or "-2.21.0.data" in n for n in names)
        metadata = archive.read(f"{info}/METADATA").decode()
        assert "\nVersion: 2.21.0+avx2.fma\n" in metadata
        assert "Version: 9.9 (body text" in metadata  # only the header changes
        assert json.loads(archive.read(f"{info}/tfforge.json")) == provenance
        so = archive.getinfo("tensorflow/python/_pywrap_tfws.so")
        assert (so.external_attr >> 16) & 0o777 == 0o755 and so.date_time == wheel_edit.ZIP_DATE
        assert archive.read("tensorflow/python/_pywrap_tfws.so") == bytes(range(256)) * 64
    assert wheel.check(out).facts.provenance == provenance
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, "raw"])  # no temp


def test_finalize_is_deterministic(tmp_path):
    raw = raw_wheel(tmp_path / "raw")
    outs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        outs.append(
            wheel_edit.finalize(raw, tmp_path / name, local_version="mkl", provenance={"id": "x"})
        )
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_finalize_keeps_existing_local_label_and_empty_label(tmp_path):
    raw = raw_wheel(tmp_path / "raw", version="2.19.0+custom")
    out = wheel_edit.finalize(raw, tmp_path, local_version="avx2", provenance={})
    assert out.name.startswith("tensorflow_cpu-2.19.0+custom.avx2-")
    plain = raw_wheel(tmp_path / "plain")
    same = wheel_edit.finalize(plain, tmp_path, local_version="", provenance={})
    assert same.name == plain.name and record_problems(same) == []


def test_finalize_rejects_corrupt_export_and_bad_label(tmp_path):
    raw = raw_wheel(tmp_path / "raw", tamper="tensorflow/python/_pywrap_tfws.so")
    with pytest.raises(BuildError, match="_pywrap_tfws.so does not match its RECORD"):
        wheel_edit.finalize(raw, tmp_path, local_version="avx2", provenance={})
    good = raw_wheel(tmp_path / "good")
    with pytest.raises(ConfigError, match="local version label 'avx2 fma'"):
        wheel_edit.finalize(good, tmp_path, local_version="avx2 fma", provenance={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good", "raw"]
