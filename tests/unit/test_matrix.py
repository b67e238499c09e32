"""The build matrix (plan, emitted CI files and Slurm script) and the remote cache plumbing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from conftest import make_spec as make
from conftest import run_cli

from tfforge.build import dockercmd, emit, matrix, remote, render
from tfforge.errors import ConfigError
from tfforge.host import cpu

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HOSTS = FIXTURES / "hosts"
GCC = "12.2.0"


def plan(**kw) -> matrix.Plan:
    args = {"gcc_version": GCC, "tf_versions": ("2.21.0",), "python_versions": ("3.11",)}
    return matrix.plan(cpu.load_hosts(str(HOSTS)), **{**args, **kw})


def test_one_build_per_distinct_best_target_serving_every_host_once():
    p = plan()
    hosts = cpu.load_hosts(str(HOSTS))
    served = [h.name for c in p.cells for h in c.hosts]
    assert sorted(served) == sorted(h.name for h in hosts)  # every host, exactly once
    targets = [c.target for c in p.cells]
    assert len(set(targets)) == len(targets)
    # each host's cell target is that host's own best target
    from tfforge.host import fleet

    by_host = {h.name: c.target for c in p.cells for h in c.hosts}
    for h in hosts:
        assert by_host[h.name] == fleet.best_target([h], GCC).name
    assert p.common == "x86-64-v2"
    sky = next(c for c in p.cells if c.target == "skylake_avx512")
    assert "avx512f" in sky.hosts[0].gains[:5]  # headline features first
    assert next(c for c in p.cells if c.target == "nehalem").hosts[0].gains == ()


def test_one_gives_the_common_target_for_all_hosts():
    p = plan(one=True)
    assert [c.display for c in p.cells] == ["x86-64-v2"]
    assert len(p.cells[0].hosts) == len(list(HOSTS.glob("*.json")))


def test_cells_cross_tf_and_python_lists():
    p = plan(tf_versions=("2.20.0", "2.21.0"), python_versions=("3.11", "3.12"))
    groups = len(plan().cells)
    assert len(p.cells) == groups * 4
    assert len({c.cell for c in p.cells}) == len(p.cells)
    assert {(c.tf_version, c.python_version) for c in p.cells} == {
        ("2.20.0", "3.11"),
        ("2.20.0", "3.12"),
        ("2.21.0", "3.11"),
        ("2.21.0", "3.12"),
    }


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"tf_versions": ("9.9.9",)}, "is not pinned"),
        ({"python_versions": ("3.99",)}, "not supported by TensorFlow"),
        ({"python_versions": ("three",)}, "expected versions such as"),
    ],
)
def test_bad_versions_are_config_errors(kw, needle):
    with pytest.raises(ConfigError, match=needle):
        plan(**kw)


def test_split_list():
    assert matrix.split_list("2.20.0, 2.21.0,2.20.0", "x") == ("2.20.0", "2.21.0")
    assert matrix.split_list(None, "3.11") == ("3.11",)


SHARED = (
    "--base-image",
    "local/bookworm:base",
    "--bazel-provider",
    "debian",
    "--remote-cache",
    "http://cache.internal:9090/cache",
)


def test_github_workflow_is_yaml_matching_the_plan():
    p = plan(python_versions=("3.11", "3.12"))
    doc = yaml.safe_load(emit.github(p, SHARED, max_parallel=2))
    job = doc["jobs"]["build"]
    assert "workflow_dispatch" in doc["on"]
    assert job["strategy"]["fail-fast"] is False and job["strategy"]["max-parallel"] == 2
    include = job["strategy"]["matrix"]["include"]
    assert [(i["cell"], i["target"], i["tf_version"], i["python_version"]) for i in include] == [
        (c.cell, c.display, c.tf_version, c.python_version) for c in p.cells
    ]
    run = next(s["run"] for s in job["steps"] if s.get("name") == "build")
    assert "invoke build --target ${{ matrix.target }}" in run
    assert "--remote-cache http://cache.internal:9090/cache" in run
    assert job["env"]["TFFORGE_REMOTE_HEADER"] == "${{ secrets.TFFORGE_REMOTE_HEADER }}"


def test_gitlab_job_is_yaml_matching_the_plan():
    p = plan()
    doc = yaml.safe_load(emit.gitlab(p, SHARED))
    job = doc["tfforge-build"]
    cells = job["parallel"]["matrix"]
    assert [(m["CELL"], m["TARGET"], m["TF_VERSION"], m["PYTHON_VERSION"]) for m in cells] == [
        (c.cell, c.display, c.tf_version, c.python_version) for c in p.cells
    ]
    assert all(len(v) == 4 and all(isinstance(x, str) for x in v.values()) for v in cells)
    assert any('invoke build --target "$TARGET"' in line for line in job["script"])
    assert "wheels/*.whl" in job["artifacts"]["paths"]


def test_slurm_script_runs_each_cell_once(tmp_path):
    p = plan()
    text = emit.slurm(
        p,
        SHARED,
        project="/shared/proj",
        python="/shared/proj/.venv/bin/python",
        results="/shared/proj/builds/matrix/r1",
        concurrent=2,
    )
    assert f"#SBATCH --array=0-{len(p.cells) - 1}%2" in text
    for i, c in enumerate(p.cells):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{i})"))
        assert f"cell={c.cell}" in line and f"--target {c.display}" in line
        assert "--remote-cache http://cache.internal:9090/cache" in line
    script = tmp_path / "m.sbatch"
    script.write_text(text)
    import subprocess

    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


# ---- remote cache plumbing ------------------------------------------------------------------
def test_loopback_cache_builds_with_host_network_and_probes_first():
    s = make(remote_cache="http://127.0.0.1:9090/cache")
    assert s.docker_network == "host" and s.remote_endpoint == ("127.0.0.1", 9090)
    doc = render.build_document(s)
    assert "--network=host" in doc["commands"]["docker"]["argv"]
    text = render.dockerfile(s)
    assert "--mount=type=secret,id=tfforge_remote_header" in text
    assert 'tfforge_remote="--remote_cache=http://127.0.0.1:9090/cache"' in text
    assert "127.0.0.1 9090" in text and "building locally without it" in text
    bazel = text.split(" bazel build \\\n", 1)[1]
    assert "--remote_cache=http" not in bazel and "$tfforge_remote" in bazel  # probed flags only
    assert make(remote_cache="https://cache.example.com/x").docker_network is None


def test_remote_executor_is_grpc_only_and_warned_untested():
    s = make(remote_executor="grpcs://rbe.example.com:443")
    assert "--remote_executor=grpcs://rbe.example.com:443" in s.bazel_command
    assert any("untested" in w for w in s.warnings)
    with pytest.raises(ConfigError, match="speaks gRPC"):
        make(remote_executor="https://rbe.example.com")


def test_credentials_from_environment_never_in_build_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TFFORGE_CACHE", str(tmp_path / "cache"))
    token = "Authorization=Bearer s3cr3t-token-42"
    secrets = remote.credentials({remote.HEADER_ENV: token})
    assert secrets == {render.SECRET_HEADER: token}
    files = remote.secret_files("2.21.0-x-abc", secrets)
    argv = dockercmd.docker_argv("/usr/bin/docker", tmp_path / "b", secrets=files)
    src = Path(argv[argv.index("--secret") + 1].split("src=", 1)[1])
    assert not src.exists()  # the dry run prints the argv; the file exists only during the build
    with remote.written(secrets, files):
        assert src.read_text() == token and oct(src.stat().st_mode & 0o777) == "0o600"
        assert oct(src.parent.stat().st_mode & 0o777) == "0o700"
        assert not str(src).startswith(str(Path.cwd()))
    assert not src.exists()
    s = make(remote_cache="https://cache.example.com/x")
    owned, _ = render.files(s)
    assert all(b"s3cr3t" not in data for data in owned.values())


def test_bad_credentials_are_refused_without_echoing_them(tmp_path):
    with pytest.raises(ConfigError) as info:
        remote.credentials({remote.HEADER_ENV: "no-equals-sign s3cr3t"})
    assert "s3cr3t" not in str(info.value)
    with pytest.raises(ConfigError, match="TFFORGE_REMOTE_NETRC_FILE"):
        remote.credentials({remote.NETRC_FILE_ENV: str(tmp_path / "missing")})


def test_log_facts_reads_bazels_summary():
    log = (
        "#14 31.2 INFO: Elapsed time: 3.1s, Critical Path: 1.2s\n"
        "#14 31.2 INFO: 9 processes: 5 remote cache hit, 4 internal.\n"
    )
    facts = remote.log_facts(log)
    assert facts.processes == 9 and facts.remote_cache_hits == 5
    assert facts.cacheable == 5 and facts.as_dict()["summary"] == "5 remote cache hit, 4 internal"
    echoed = (
        '#15 [build 3/4] RUN ... echo "tfforge: warning: remote cache 1.2.3.4:5 is not '
        'reachable from the build; building locally without it"\n'
    )
    assert remote.log_facts(echoed).unreachable is None  # the RUN line is not the warning
    cold = remote.log_facts(
        "#14 INFO: 9 processes: 4 internal, 5 processwrapper-sandbox.\n"
        "#14 0.1 tfforge: warning: remote cache 127.0.0.1:1 is not reachable "
        "from the build; building locally without it\n"
    )
    assert cold.remote_cache_hits == 0
    assert (cold.unreachable or "").startswith("remote cache 127.0.0.1:1 is not reachable")


def test_nginx_config_serves_webdav_put(tmp_path):
    from tfforge.cluster import cache

    text = cache.nginx_config(
        state=tmp_path, store=tmp_path / "s", bind="127.0.0.1", port=9, htpasswd=tmp_path / "h"
    )
    assert "dav_methods PUT;" in text and "create_full_put_path on;" in text
    assert "listen 127.0.0.1:9;" in text and f"auth_basic_user_file {tmp_path / 'h'};" in text
    assert re.search(r"client_max_body_size 0;", text)
    assert os.fspath(tmp_path / "s") in text


# ---- the command ------------------------------------------------------------------------------
def test_invoke_matrix_emits_files_matching_its_json_plan(tmp_path):
    env = {"TFFORGE_ROOT": str(tmp_path)}
    plan_doc = run_cli("matrix", str(HOSTS), "--python-version", "3.11,3.12", "--json", env=env)
    assert plan_doc.returncode == 0, plan_doc.stderr
    cells = json.loads(plan_doc.stdout)["cells"]
    want = [(c["cell"], c["target"], c["tf_version"], c["python_version"]) for c in cells]
    assert all(re.fullmatch(r"2\.21\.0-\S+-[0-9a-f]{12}", c["build_id"]) for c in cells)
    for fmt in ("github", "gitlab"):
        proc = run_cli(
            "matrix", str(HOSTS), "--python-version", "3.11,3.12", "--emit", fmt, env=env
        )
        assert proc.returncode == 0, proc.stderr
        path = tmp_path / emit_default(fmt)
        doc = yaml.safe_load(path.read_text())
        if fmt == "github":
            got = [
                (i["cell"], i["target"], i["tf_version"], i["python_version"])
                for i in doc["jobs"]["build"]["strategy"]["matrix"]["include"]
            ]
        else:
            got = [
                (m["CELL"], m["TARGET"], m["TF_VERSION"], m["PYTHON_VERSION"])
                for m in doc["tfforge-build"]["parallel"]["matrix"]
            ]
        assert got == want
    assert not (tmp_path / "builds").exists()  # planning and emitting build nothing


def emit_default(fmt: str) -> str:
    from tfforge.commands.matrix import DEFAULT_OUT

    return DEFAULT_OUT[fmt]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--emit", "jenkins"], "--emit 'jenkins': must be one of github, gitlab, slurm"),
        (["--run", "github"], "--run 'github': must be one of slurm"),
        (["--tf-version", "9.9.9"], "TensorFlow '9.9.9' is not pinned"),
        (["--base-image", "not an image"], "--base-image 'not an image'"),
    ],
)
def test_invoke_matrix_bad_input_is_one_error_line_exit_2(tmp_path, args, needle):
    proc = run_cli("matrix", str(HOSTS), *args, env={"TFFORGE_ROOT": str(tmp_path)})
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_bad_timeout_and_concurrency_name_their_flag(tmp_path):
    hosts = str(HOSTS / "qemu-haswell.json")
    env = {"TFFORGE_ROOT": str(tmp_path)}
    proc = run_cli("matrix", hosts, "--timeout", "-5", "--dry-run", env=env)
    assert proc.returncode == 2 and "--timeout '-5': must be 1 to 604800" in proc.stderr
    proc = run_cli("matrix", hosts, "--concurrent", "0", "--dry-run", env=env)
    assert proc.returncode == 2 and "--concurrent '0': must be 1 to 256" in proc.stderr
    env["TFFORGE_MATRIX_CONCURRENT"] = "0"
    proc = run_cli("matrix", hosts, "--dry-run", env=env)
    assert "TFFORGE_MATRIX_CONCURRENT '0': must be 1 to 256" in proc.stderr


def test_cells_build_with_the_shared_options_and_plan_with_the_build_gcc(tmp_path):
    """The shared flags reach every cell's spec and command line; the plan's GCC is the
    build's --gcc-version when given, else match_gcc_version."""
    from tfforge import settings
    from tfforge.commands import matrix as matrix_cmd

    given = {"hosts": str(HOSTS), "bazel_provider": "debian", "mkl": True, "gcc_version": "12.2.0"}
    opts = settings.resolve("matrix", given, root=tmp_path, environ={})
    p, ids = matrix_cmd.make_plan(opts)
    cell = p.cells[0]
    # the fixtures hold a captured bullseye host: every cell builds for that runtime floor
    assert p.runtime_floor == cell.runtime_floor == "bullseye"
    shared = {"bazel_provider": "debian", "mkl": True, "gcc_version": "12.2.0"}
    s = make(target=cell.display, runtime_floor="bullseye", **shared)
    assert ids[cell.cell] == s.build_id
    flags = matrix_cmd.shared_flags(opts.spec)
    assert flags == ("--bazel-provider", "debian", "--gcc-version", "12.2.0", "--mkl")
    assert matrix_cmd.floor_flags(opts.spec, p) == ("--runtime-floor", "bullseye")
    # --runtime-floor none: no floor, and said so on every cell's command line
    plain = settings.resolve(
        "matrix", {**given, "runtime_floor": "none"}, root=tmp_path, environ={}
    )
    p2, ids2 = matrix_cmd.make_plan(plain)
    assert p2.runtime_floor is None and p2.cells[0].cell == cell.cell
    assert ids2[cell.cell] == make(target=cell.display, runtime_floor="none", **shared).build_id
    assert ids2[cell.cell] != ids[cell.cell]
    assert matrix_cmd.floor_flags(plain.spec, p2) == ("--runtime-floor", "none")
    env = {"TFFORGE_MATCH_GCC_VERSION": "9.4.0"}
    older = settings.resolve("matrix", {"hosts": str(HOSTS)}, root=tmp_path, environ=env)
    assert matrix_cmd.make_plan(older)[0].gcc_version == "9.4.0"
    assert matrix_cmd.shared_flags(older.spec) == ()
