"""Rendering builds/<id>/: golden Dockerfiles, facts parsed out of them, atomic and repeatable
writes, and the render/build tasks as a user runs them.

Regenerate the golden files after an intended template change with
    TFFORGE_REGEN_GOLDEN=1 python -m pytest tests/unit/test_render.py -k golden
and review the diff before committing it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, tree_bytes
from conftest import make_spec as make

from tfforge.build import dockercmd, document, render, spec, toolchains
from tfforge.errors import BuildError
from tfforge.host import isa

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
REGEN = os.environ.get("TFFORGE_REGEN_GOLDEN") == "1"
FIXTURE_ARGS = [
    "--override_repository=rules_cc=/home/builder/src/third_party/rules_cc",
    "--override_repository=rules_java=/home/builder/src/third_party/rules_java",
]


def small_tree(root: Path) -> Path:
    """A fixed little source tree (same bytes every time, so its golden file is stable)."""
    (root / "tensorflow" / "tools" / "pip_package").mkdir(parents=True)
    (root / "configure").write_text('#!/bin/sh\nexec python3 configure.py "$@"\n')
    os.chmod(root / "configure", 0o755)
    (root / "configure.py").write_text("print('configured')\n")
    os.chmod(root / "configure.py", 0o644)
    (root / "tensorflow" / "tools" / "pip_package" / "BUILD").write_text("# wheel target\n")
    os.chmod(root / "tensorflow" / "tools" / "pip_package" / "BUILD", 0o644)
    (root / ".bazelrc").write_text("build:mkl --define=build_with_mkl=true\n")
    os.chmod(root / ".bazelrc", 0o644)
    return root


def golden_specs(tmp: Path) -> dict[str, spec.BuildSpec]:
    return {
        "tf2.21-haswell-git": make(target="haswell"),
        "tf2.15-avx2-fma-mkl-build-pip-package": make(
            tf_version="2.15.0",
            python_version="3.10",
            target="",
            features=["avx2", "fma"],
            mkl=True,
        ),
        "tf2.21-local-source-debian-bazel": make(
            target="",
            features=["avx2", "fma"],
            mkl=True,
            base_image="local/bookworm:base",
            bazel_provider="debian",
            source_dir=str(small_tree(tmp / "tfws")),
            bazel_args=FIXTURE_ARGS,
        ),
        "tf2.19-clang-x86-64-v3-image-bazel": make(
            tf_version="2.19.0",
            compiler="clang",
            target="x86-64-v3",
            bazel_provider="image",
            remote_cache="grpcs://cache.example.com:9092",
        ),
    }


# ---- a small Dockerfile parser, to assert facts instead of matching text ---------------------
def parse_dockerfile(text: str) -> list[dict]:
    """Stages in order: {'name', 'base', 'ins': [(INSTRUCTION, args)]}; continuations joined."""
    logical, cur = [], ""
    for raw in text.splitlines():
        if not cur and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.rstrip().endswith("\\"):
            cur += raw.rstrip()[:-1] + " "
            continue
        logical.append(re.sub(r"\s+", " ", (cur + raw).strip()))
        cur = ""
    assert not cur, "dangling line continuation"
    stages: list[dict] = []
    for line in logical:
        instr, _, args = line.partition(" ")
        if instr == "FROM":
            base, _, name = args.partition(" AS ")
            stages.append({"name": name, "base": base, "ins": []})
        else:
            assert stages, f"{instr} before FROM"
            stages[-1]["ins"].append((instr, args))
    return stages


def stage(stages: list[dict], name: str) -> dict:
    return next(s for s in stages if s["name"] == name)


def env_of(st: dict) -> dict[str, str]:
    env = {}
    for instr, args in st["ins"]:
        if instr == "ENV":
            for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', args):
                env[k] = v.strip('"')
    return env


def runs(st: dict) -> list[str]:
    return [a for i, a in st["ins"] if i == "RUN"]


# ---- golden files ---------------------------------------------------------------------------
def test_golden_dockerfiles(tmp_path):
    GOLDEN.mkdir(exist_ok=True)
    for name, s in golden_specs(tmp_path).items():
        text = render.dockerfile(s)
        path = GOLDEN / f"{name}.Dockerfile"
        if REGEN:
            path.write_text(text)
        assert path.exists(), f"missing {path}; run with TFFORGE_REGEN_GOLDEN=1"
        assert text == path.read_text(), f"{name}: differs from {path} (see module docstring)"


def test_golden_build_json():
    s = make(target="haswell")
    text = document.canonical_json(render.build_document(s))
    path = GOLDEN / "tf2.21-haswell-git.build.json"
    if REGEN:
        path.write_text(text)
    assert text == path.read_text()


# ---- facts parsed out of rendered Dockerfiles ----------------------------------------------
def test_stages_are_named_and_chained(tmp_path):
    for s in golden_specs(tmp_path).values():
        st = parse_dockerfile(render.dockerfile(s))
        assert [x["name"] for x in st] == [
            "toolchain",
            "source",
            "build",
            "export",
            "kitdebs",
            "kitfetch",
            "kitexport",
        ]
        # the capture stages: Debian packages from the base image, Bazel's downloads from the
        # source stage with the build's own command plus --nobuild and a fresh repository cache
        assert (st[4]["base"], st[5]["base"], st[6]["base"]) == (s.base_image, "source", "scratch")
        fetch = " ".join(runs(st[5])[-1].split())
        words = [w for w in s.bazel_command if w not in s.remote_flags]
        assert (
            f"bazel build --nobuild --repository_cache={render.KIT_OUT}/repository_cache "
            + " ".join(words[2:])
        ) in fetch
        assert st[0]["base"] == s.base_image
        assert (st[1]["base"], st[2]["base"], st[3]["base"]) == ("toolchain", "source", "scratch")
        # the export stage holds only the wheel(s) and build.json, copied out of /dist
        assert st[3]["ins"] == [
            ("COPY", "--from=build /dist/ /"),
            ("COPY", "--from=toolchain /etc/tfforge-apt.lock /apt.lock"),
        ]
        assert ("COPY", "build.json /dist/build.json") in st[2]["ins"]


@pytest.mark.parametrize("tf_version", toolchains.known_versions())
def test_bazel_version_per_tensorflow_version(tf_version):
    tc = toolchains.toolchain(tf_version)
    s = make(tf_version=tf_version, python_version=tc.pythons[-1])
    text = render.dockerfile(s)
    st = parse_dockerfile(text)
    env = env_of(stage(st, "toolchain"))
    assert env["USE_BAZEL_VERSION"] == tc.bazel
    assert env["BAZELISK_VERIFY_SHA256"] == tc.bazel_sha256
    pins = toolchains.pins()
    install = [r for r in runs(stage(st, "toolchain")) if pins.bazelisk.url in r]
    assert install and "sha256sum -c -" in install[0]
    # sha256sum's check format is "<hash><two spaces><file>" (the parser collapses spaces)
    assert f'echo "{pins.bazelisk.sha256}  /usr/local/bin/bazel" | sha256sum -c -' in text
    build_run = [r for r in runs(stage(st, "build")) if "bazel build" in r][0]
    assert build_run.split(" \\\n")[0] and f" {tc.wheel_target} " in build_run.replace("\n", " ")
    for name in tc.python_env:
        assert f"--repo_env={name}={tc.pythons[-1]}" in build_run
    installed = [r for r in runs(stage(st, "toolchain")) if "apt-get install" in r][0]
    for pkg in tc.packages:
        assert f" {pkg} " in installed, (tf_version, pkg)
    clone = runs(stage(st, "source"))[0]
    assert f"--branch {tc.git_tag} " in clone and f'"$got" != "{tc.git_commit}"' in clone


@pytest.mark.parametrize("mkl", [False, True])
def test_config_mkl_iff_asked(mkl):
    st = parse_dockerfile(render.dockerfile(make(mkl=mkl)))
    build_run = [r for r in runs(stage(st, "build")) if "bazel build" in r][0]
    assert ("--config=mkl" in build_run) is mkl
    assert "--config=opt" in build_run


@pytest.mark.parametrize(
    "kw", [dict(target="haswell"), dict(target="", features=["avx512f"]), dict(target="x86-64-v2")]
)
def test_copts_reach_configure_and_bazel(kw):
    s = make(**kw)
    st = parse_dockerfile(render.dockerfile(s))
    build = stage(st, "build")
    assert env_of(build)["CC_OPT_FLAGS"] == " ".join((*s.copts, "-Wno-sign-compare"))
    build_run = [r for r in runs(build) if "bazel build" in r][0]
    for flag in s.copts:
        assert f"--copt={flag} " in build_run
    assert runs(build)[0] == "./configure < /dev/null"


def test_builds_run_as_a_non_root_user_with_an_owned_cache():
    s = make()
    st = parse_dockerfile(render.dockerfile(s))
    pins = toolchains.pins()
    users = [(x["name"], a) for x in st for i, a in x["ins"] if i == "USER"]
    assert users == [("toolchain", pins.image.user)]  # set once, inherited by source and build
    assert pins.image.user != "root" and pins.image.uid != 0
    create = [r for r in runs(stage(st, "toolchain")) if "useradd" in r][0]
    assert f"--uid {pins.image.uid}" in create
    mount = [r for r in runs(stage(st, "build")) if r.startswith("--mount=")][0]
    opts = dict(kv.split("=", 1) for kv in mount.split()[0].removeprefix("--mount=").split(","))
    assert opts["type"] == "cache" and opts["target"] == s.bazel_cache
    assert opts["uid"] == opts["gid"] == str(pins.image.uid)
    assert f"--disk_cache={s.bazel_cache}/disk" in mount


def test_pinned_digests_and_no_frontend_image():
    text = render.dockerfile(make())
    assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I)  # no frontend pull offline
    st = parse_dockerfile(text)
    assert re.fullmatch(r"\S+@sha256:[0-9a-f]{64}", st[0]["base"])
    assert "SOURCE_DATE_EPOCH" in env_of(stage(st, "build"))


def test_compiler_version_check_fails_clearly():
    s = make(gcc_version="12.4.0")
    check = [
        r
        for r in runs(stage(parse_dockerfile(render.dockerfile(s)), "toolchain"))
        if "-dumpfullversion" in r
    ][0]
    assert 'have="$(gcc-12 -dumpfullversion)"' in check
    assert 'dpkg --compare-versions "$have" ge "12.4.0"' in check
    assert "exit 1" in check and "older than the required 12.4.0" in check
    assert "use --gcc-version $have" in check


def test_local_source_is_copied_not_cloned(tmp_path):
    s = make(source_dir=str(small_tree(tmp_path / "src")))
    src_stage = stage(parse_dockerfile(render.dockerfile(s)), "source")
    assert src_stage["ins"][0] == ("COPY", "--chown=builder:builder src/ /home/builder/src/")
    # then the tree is checked against the recipe before anything compiles
    assert src_stage["ins"][1] == ("COPY", f"clone_check.py {spec.CLONE_CHECK}")
    assert src_stage["ins"][2] == ("RUN", " ".join(s.clone_check_argv))


def test_the_build_steps_really_run_in_sh(tmp_path):
    """The RUN lines are POSIX sh: every one parses with `sh -n` (syntax check, runs nothing)."""
    import shutil
    import subprocess

    sh = shutil.which("sh")
    assert sh, "POSIX sh is not on PATH"
    for s in golden_specs(tmp_path).values():
        for st in parse_dockerfile(render.dockerfile(s)):
            for r in runs(st):
                cmd = r
                while cmd.startswith("--mount="):  # a step may mount caches and secrets
                    cmd = cmd.split(" ", 1)[1]
                proc = subprocess.run([sh, "-n", "-c", cmd], capture_output=True, text=True)
                assert proc.returncode == 0, (cmd, proc.stderr)


# ---- writing builds/<id>/ -----------------------------------------------------------------
def test_render_writes_and_rerender_is_a_noop(tmp_path):
    builds = tmp_path / "builds"
    s = make(target="", features=["avx2", "fma"], mkl=True)
    first = render.render(s, builds)
    assert first.created and first.path == builds / s.build_id
    assert sorted(p.name for p in first.path.iterdir()) == [
        ".dockerignore",
        "Dockerfile",
        "apt-pins",
        "build.json",
        "clone_check.py",
        "kit",
    ]
    assert list((first.path / "kit").iterdir()) == []  # filled only in a kit build's copy
    assert (first.path / "apt-pins").read_bytes() == b""  # pins only in a rebuild's copy
    stamp = {p.name: p.stat().st_mtime_ns for p in first.path.iterdir()}
    again = render.render(make(target="", features=["fma", "avx2"], mkl=True), builds)
    assert not again.created and again.build_id == first.build_id
    assert {p.name: p.stat().st_mtime_ns for p in first.path.iterdir()} == stamp
    assert [p.name for p in builds.iterdir()] == [s.build_id]  # no temporary folders left


def test_build_json_contract(tmp_path):
    s = make(target="", features=["avx2", "fma"], mkl=True)
    r = render.render(s, tmp_path / "builds")
    raw = (r.path / "build.json").read_text()
    doc = json.loads(raw)
    assert raw == json.dumps(doc, sort_keys=True, indent=2) + "\n"  # sorted, canonical
    assert doc["id"] == r.path.name == s.build_id
    assert doc["derived"]["local_version"] == "avx2.fma.mkl"
    assert doc["derived"]["features"] == sorted(s.target.features, key=isa.sort_key)
    assert doc["derived"]["copts"] == list(s.copts)
    assert doc["commands"]["bazel"] == list(s.bazel_command)
    assert doc["commands"]["docker"]["argv"] == dockercmd.docker_argv(
        "/usr/bin/docker", f"builds/{s.build_id}"
    )
    assert doc["recipe"]["evidence"]["bazel"]["level"] == "nearby-master"
    assert doc["derived"]["isa_note"]["stamped"] is False  # avx2+fma is no psABI level
    assert doc["commands"]["clone_check"] == list(s.clone_check_argv)
    assert doc["commands"]["docker"]["env"] == {"DOCKER_BUILDKIT": "1"}
    assert doc["toolchain"]["bazel"] == "7.4.1" and doc["spec"]["mkl"] is True
    for key in ("spec", "derived", "toolchain", "tools", "commands"):
        assert key in doc


def test_existing_but_different_rendering_is_left_alone(tmp_path):
    builds = tmp_path / "builds"
    r = render.render(make(), builds)
    (r.path / "Dockerfile").write_text("FROM hand-edited\n")
    before = tree_bytes(builds)
    with pytest.raises(BuildError, match="exists but differs"):
        render.render(make(), builds)
    assert tree_bytes(builds) == before


def test_failed_render_leaves_nothing(tmp_path, monkeypatch):
    builds = tmp_path / "builds"
    builds.mkdir()
    s = make(source_dir=str(small_tree(tmp_path / "src")))

    def boom(spec_, dest):
        dest.mkdir()
        (dest / "half-written").write_text("x")
        raise BuildError("disk full")

    monkeypatch.setattr(render, "_copy_source", boom)
    with pytest.raises(BuildError, match="disk full"):
        render.render(s, builds)
    assert list(builds.iterdir()) == []


def test_source_changed_while_copying_is_refused(tmp_path):
    builds = tmp_path / "builds"
    src = small_tree(tmp_path / "src")
    s = make(source_dir=str(src))
    (src / "configure.py").write_text("print('edited after hashing')\n")
    with pytest.raises(BuildError, match="changed while it was being copied"):
        render.render(s, builds)
    assert list(builds.iterdir()) == []


def test_local_source_is_copied_exactly(tmp_path):
    src = small_tree(tmp_path / "src")
    os.symlink("configure.py", src / "configure_link.py")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref\n")
    r = render.render(make(source_dir=str(src)), tmp_path / "builds")
    out = r.path / "src"
    assert (out / "configure").read_bytes() == (src / "configure").read_bytes()
    assert (out / "configure").stat().st_mode & 0o777 == 0o755
    assert (out / "configure.py").stat().st_mode & 0o777 == 0o644
    assert (out / ".bazelrc").exists()
    assert os.readlink(out / "configure_link.py") == "configure.py"
    assert not (out / ".git").exists()


def test_same_spec_same_bytes_in_two_places(tmp_path):
    a = render.render(make(mkl=True), tmp_path / "one")
    b = render.render(make(mkl=True), tmp_path / "two")
    assert a.build_id == b.build_id
    assert tree_bytes(a.path) == tree_bytes(b.path)


# ---- the tasks, as a user runs them -------------------------------------------------------
def _cli(tmp_path: Path, *args: str):
    return run_cli(*args, cwd=tmp_path, env={"TFFORGE_ROOT": str(tmp_path)})


def test_cli_render_twice_same_id_and_bytes(tmp_path):
    first = _cli(tmp_path, "render", "--avx2", "--fma", "--mkl", "--json")
    assert first.returncode == 0, first.stderr
    doc1 = json.loads(first.stdout)
    assert doc1["created"] is True and doc1["build"]["derived"]["local_version"] == "avx2.fma.mkl"
    assert "implied features added" in first.stderr
    files1 = tree_bytes(tmp_path / "builds")
    second = _cli(tmp_path, "render", "--fma", "--avx2", "--mkl", "--json")
    assert second.returncode == 0, second.stderr
    doc2 = json.loads(second.stdout)
    assert doc2["id"] == doc1["id"] and doc2["created"] is False
    assert tree_bytes(tmp_path / "builds") == files1
    text = _cli(tmp_path, "render", "--avx2", "--fma", "--mkl")
    assert text.returncode == 0 and "unchanged (already rendered)" in text.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (
            ["render", "--tf-version", "9.9", "--target", "haswell"],
            "TensorFlow '9.9' is not pinned",
        ),
        (["render", "--avx2", "--bazel-arg", "--copt=$(id)"], "--bazel-arg"),
        (["render", "--target", "haswell", "--mkl", "--gcc-version", "5.4.0"], "--mkl needs GCC"),
        (["render", "--target", "haswell", "--base-image", "debian\nRUN id"], "--base-image"),
        (["build", "--dry-run", "--feature", "avx1024"], "unknown ISA feature 'avx1024'"),
        (["build", "--dry-run", "--target", "haswell", "--timeout", "0"], "--timeout"),
    ],
)
def test_cli_bad_input_exit_2_one_line_nothing_written(tmp_path, args, needle):
    ok = _cli(tmp_path, "render", "--target", "x86-64-v2")
    assert ok.returncode == 0, ok.stderr
    before = tree_bytes(tmp_path / "builds")
    proc = _cli(tmp_path, *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert tree_bytes(tmp_path / "builds") == before
    assert not (tmp_path / "wheels").exists()


def test_cli_build_dry_run_prints_the_plan(tmp_path):
    proc = _cli(tmp_path, "build", "--dry-run", "--target", "haswell")
    assert proc.returncode == 0, proc.stderr
    [build_dir] = (tmp_path / "builds").iterdir()
    out = proc.stdout
    assert f"Dockerfile: {build_dir / 'Dockerfile'}" in out
    # The argv tfforge.build.dockercmd.docker_argv makes, which run_build executes (the e2e test
    # compares it with the argv a real build ran).
    assert (
        f"docker:     DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain --target "
        f"export --output type=local,dest={build_dir}/.export {build_dir}"
    ) in out
    bazel_line = next(line for line in out.splitlines() if line.startswith("bazel:"))
    assert (
        "bazel build --config=opt --config=clang_local --copt=-march=haswell --copt=-mtune=haswell"
    ) in bazel_line
    recipe = next(line for line in out.splitlines() if line.startswith("recipe:"))
    assert recipe.startswith("recipe:     official clang 18.1.8 [release-artifact]; ")
    assert "; bazel 7.4.1 [nearby-master];" in recipe
    assert bazel_line.endswith("//tensorflow/tools/pip_package:wheel")
    assert not (tmp_path / "wheels").exists()

    js = _cli(tmp_path, "build", "--dry-run", "--target", "haswell", "--json")
    assert js.returncode == 0, js.stderr
    plan = json.loads(js.stdout)
    assert plan["dry_run"] is True and plan["created"] is False
    assert plan["build_dir"] == str(build_dir)
    assert plan["bazel_command"][-1] == "//tensorflow/tools/pip_package:wheel"
    assert plan["docker_env"] == {"DOCKER_BUILDKIT": "1"}


def test_tasks_document_every_flag():
    proc = run_cli("--help", "build", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    for flag in ("--dry-run", "--timeout", "--avx512-vnni", "--bazel-arg", "--host", "--json"):
        assert flag in proc.stdout


def test_cli_host_target_and_archspec_reasons_survive_the_console(tmp_path):
    host = ROOT / "tests" / "fixtures" / "cpuinfo" / "zen4-epyc-9r14.cpuinfo"
    # GCC 12.2 spells Zen 4 with znver3 flags (archspec); the host target keeps its name
    proc = _cli(tmp_path, "render", "--host", str(host), "--gcc-version", "12.2.0")
    assert proc.returncode == 0, proc.stderr
    assert "target:  host zen4-epyc-9r14 -> zen4" in proc.stdout
    # archspec's reason has "[...]" in it: printed as text, not eaten as console markup
    zen5 = _cli(tmp_path, "render", "--target", "zen5", "--gcc-version", "12.2.0")
    assert zen5.returncode == 2
    assert "[supported compiler versions are" in " ".join(zen5.stderr.split())


def test_build_hands_the_rendered_folder_to_the_engine(tmp_path, monkeypatch):
    """build hands the folder to run.run_build(build_dir, wheels_dir=..., timeout_s=...)."""
    from tfforge import settings
    from tfforge.commands import build
    from tfforge.docker import client as docker_client
    from tfforge.docker import run as docker_run

    calls = []

    def fake_run_build(
        build_dir,
        *,
        wheels_dir,
        timeout_s,
        docker=None,
        watcher=None,
        network=None,
        secrets=None,
        secret_values=None,
        build_args=None,
    ):
        assert build_args is None  # no mirror: nothing for the template's run-time switches
        assert docker == "/checked/docker"  # the client checked before rendering is the one used
        calls.append((build_dir, wheels_dir, timeout_s))
        return {
            "wheel": str(wheels_dir / "x.whl"),
            "build_id": build_dir.name,
            "durations": {"total_s": 1.0},
            "engine": {},
        }

    monkeypatch.setattr(docker_run, "run_build", fake_run_build)
    monkeypatch.setattr(
        docker_client,
        "resolve_client",
        lambda configured="": docker_client.Client("/checked/docker", "20.10.24", True),
    )
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    monkeypatch.setenv("TFFORGE_BUILD_TIMEOUT", "99")
    # a local tree and Debian's Bazel: nothing to reach on the network (this machine is offline)
    local = {
        "target": "haswell",
        "source_dir": str(small_tree(tmp_path / "src")),
        "bazel_provider": "debian",
    }
    out = build.build_command(settings.resolve("build", {**local, "json": True}))
    [(build_dir, wheels_dir, timeout_s)] = calls
    assert build_dir == tmp_path / "builds" / out["id"] and (build_dir / "Dockerfile").is_file()
    assert wheels_dir == tmp_path / "wheels" and timeout_s == 99.0  # TFFORGE_* environment
    assert out["dry_run"] is False and out["wheel"].endswith("x.whl")
    build.build_command(settings.resolve("build", {**local, "timeout": "120", "json": True}))
    assert calls[-1][2] == 120.0  # the command line wins over the environment


@pytest.mark.parametrize("tf_version", toolchains.known_versions())
def test_every_release_renders_with_its_evidence_shown(tf_version, tmp_path, monkeypatch, capsys):
    from tfforge import settings
    from tfforge.commands import build

    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    tc = toolchains.toolchain(tf_version)
    given = {"tf_version": tf_version, "python_version": tc.pythons[-1], "target": "x86-64-v3"}
    build.render_command(settings.resolve("render", given))
    out = capsys.readouterr().out
    recipe = next(line for line in out.splitlines() if line.strip().startswith("recipe:"))
    assert f"bazel {tc.bazel} [{tc.evidence['bazel'].level}]" in recipe
    assert f"gcc range [{tc.evidence['gcc'].level}]" in recipe
    assert recipe.endswith("(secondary evidence only)") is tc.secondary_only
    doc = json.loads(next((tmp_path / "builds").iterdir()).joinpath("build.json").read_text())
    assert doc["recipe"]["evidence"] == {k: e.as_dict() for k, e in tc.evidence.items()}
