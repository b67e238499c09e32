"""Conformance: each rendered build agrees with the TensorFlow release's own build files.

Reads ../shared/tf-interface/ (the releases' .bazelrc and .bazelversion, plus facts.json: what
their configure.py, BUILD files, packaging and Starlark read). CI has it beside the clone;
under CI=true a missing folder fails, elsewhere it skips. For every release folder there and
every compiler major its recipe supports (and a base image ships), it renders the build and
checks (a) configure's inputs and what configure writes from them, (b) every --config exists,
(c) the target exists, (d) every tool packaging calls is installed, (e) Bazel equals
.bazelversion, (f) every --repo_env is one the release reads and its result-changing .bazelrc
defaults are overridden or recorded, (g) the recipe's clang flags are the ones the release's
CPU release config passes, and the clone check finds the tree agreeing with the release's
official wheels (release_evidence.toml: the clang major its release config names). Releases
with only secondary evidence for their build files are listed.
"""

from __future__ import annotations

import json
import re
import shlex
import warnings
from pathlib import Path

import pytest
from conftest import ROOT, make_spec, need

from tfforge.build import clone_check, evidence, render, toolchains

INTERFACE = ROOT.parent / "shared" / "tf-interface"
# What a packaging step calls -> the apt packages that provide it in the image.
TOOL_PACKAGES = {
    "patchelf": {"patchelf"},
    "rsync": {"rsync"},
    "python": {"python3", "python3-setuptools", "python3-wheel"},
}
RESULT_DEFAULTS = ("ML_WHEEL_TYPE", "USE_HERMETIC_CC_TOOLCHAIN")
# Calls facts.json lists that the release's packaging script makes on Windows only: 2.14's and
# 2.15's build_pip_package.sh copy the runfiles with rsync in their is_windows branch (cp -LR on
# Linux).
WINDOWS_ONLY = {("2.14.0", "rsync"), ("2.15.0", "rsync")}


def folders() -> list[str]:
    if not INTERFACE.is_dir():
        return ["(missing)"]
    return sorted(p.name for p in INTERFACE.iterdir() if p.is_dir())


def release_of(folder: str) -> str:
    """'2.14.0' -> 2.14.0; '2.16-master' -> the recipe of 2.16 (2.16.1)."""
    if folder in toolchains.known_versions():
        return folder
    minor = folder.removesuffix("-master")
    [version] = [v for v in toolchains.known_versions() if v.rsplit(".", 1)[0] == minor]
    return version


def choices(tc: toolchains.Toolchain) -> list[tuple[str, str]]:
    """(compiler, version) for every supported major a base image ships."""
    out = []
    for major in range(tc.gcc[0], tc.gcc[1] + 1):
        image = toolchains.base_image_for("gcc", major)
        if image:
            out.append(("gcc", image.gcc[str(major)]))
    for major in range(tc.clang[0], tc.clang[1] + 1):
        if toolchains.base_image_for("clang", major):
            out.append(
                (
                    "clang",
                    tc.official_compiler_version
                    if tc.official_compiler_version.startswith(f"{major}.")
                    else f"{major}.1.0",
                )
            )
    return out


def repo_env_set_in(options: str) -> list[tuple[str, str]]:
    return re.findall(r"--repo_env[= ]\s*([A-Z_]+)=\"?([^\"\s]*)", options)


@pytest.fixture(scope="module")
def facts() -> dict:
    need(INTERFACE.is_dir(), f"{INTERFACE} (TensorFlow's release files; CI has ../shared)")
    return json.loads((INTERFACE / "facts.json").read_text())


@pytest.mark.parametrize("folder", folders())
def test_rendered_builds_conform_to_the_release_files(folder, facts, tmp_path):
    fx = facts[folder]
    root = INTERFACE / folder
    version = release_of(folder)
    tc = toolchains.toolchain(version)
    lines = clone_check.bazelrc_lines(root)
    defined = {config for config, _ in lines if config}
    plain = [opts for config, opts in lines if config is None]
    read = {r.split()[0] for r in fx["repo_env_read_by_starlark"]}
    read |= {name for opts in (o for _, o in lines) for name, _ in repo_env_set_in(opts)}
    python = fx["default_python"] if fx["default_python"] in tc.pythons else tc.pythons[-1]
    rendered = []
    for compiler, cversion in choices(tc):
        key = "gcc_version" if compiler == "gcc" else "clang_version"
        s = make_spec(
            tf_version=version,
            python_version=python,
            target="haswell",
            mkl=True,
            compiler=compiler,
            **{key: cversion},
        )
        owned, doc = render.files(s)
        dockerfile = owned["Dockerfile"].decode()
        cmd = list(s.bazel_command)
        why = f"{folder} {compiler} {cversion}"

        # (a) configure gets every input it reads; what it writes carries flags and compiler
        env = dict(s.configure_env)
        conditional = {
            "CLANG_COMPILER_PATH": env["TF_NEED_CLANG"] == "0",  # read only with 1
            "GCC_HOST_COMPILER_PATH": env["TF_NEED_CUDA"] == "0",
        }  # CUDA only
        for name in fx["configure.py"]["reads_env_relevant"]:
            assert (
                name in env or name in toolchains.pins().configure_unset or conditional.get(name)
            ), f"{why}: configure reads {name}, not answered"
            if name in env:
                assert f'{name}="{env[name]}"' in dockerfile, (why, name)
        written = []
        for word in shlex.split(env["CC_OPT_FLAGS"]):
            written += [f"build:opt --copt={word}", f"build:opt --host_copt={word}"]
        for flag in s.target.flags:
            assert (
                f"build:opt --copt={flag}" in written and f"build:opt --host_copt={flag}" in written
            ), why
        major = cversion.split(".")[0]
        if compiler == "clang":
            assert env["TF_NEED_CLANG"] == "1"
            # configure writes build --repo_env=CC=<CLANG_COMPILER_PATH>
            assert env["CLANG_COMPILER_PATH"] == f"/usr/lib/llvm-{major}/bin/clang", why
            assert f"clang-{major}" in s.apt_packages
        else:
            assert env["TF_NEED_CLANG"] == "0"
            # TF_NEED_CLANG=0: Bazel's C++ autoconfiguration takes CC from the environment
            assert dict(s.toolchain_env)["CC"] == f"/usr/bin/gcc-{major}", why
            assert f"gcc-{major}" in s.apt_packages and f"CC=/usr/bin/gcc-{major}" in dockerfile

        # (b) every --config exists in the release's .bazelrc (opt is written by configure)
        for arg in cmd:
            if arg.startswith("--config="):
                name = arg.split("=", 1)[1]
                assert name == "opt" or name in defined, f"{why}: no config {name}"

        # (c) the target is one of the release's wheel targets
        pkg, _, name = s.bazel_target.partition(":")
        assert name in fx["pip_package_targets"].get(pkg, []), f"{why}: {s.bazel_target}"

        # (d) every tool the packaging step calls is installed by the image
        # (the ordinary install line; a rebuild installs apt.lock's exact versions instead)
        install = next(
            line
            for line in dockerfile.splitlines()
            if "apt-get install" in line and "tfforge-pins" not in line
        )
        for call in fx["packaging_calls"]:
            if (folder, call.split()[0]) in WINDOWS_ONLY:
                assert call.split()[0] not in s.apt_packages, f"{why}: {call} is Windows-only"
                continue
            for pkg_name in TOOL_PACKAGES[call.split()[0]]:
                if pkg_name in ("python3-setuptools", "python3-wheel") and "setup.py" not in call:
                    continue
                assert f" {pkg_name} " in f"{install} ", f"{why}: {call} needs {pkg_name}"

        # (e) the pinned Bazel is the release's .bazelversion
        assert (
            tc.bazel == clone_check.bazel_version(root / ".bazelversion") == fx["bazelversion"]
        ), why

        # (f) every --repo_env is one the release reads; result-changing defaults handled
        passed = {
            a.split("=", 2)[1]: a.split("=", 2)[2] for a in cmd if a.startswith("--repo_env=")
        }
        assert set(passed) <= read, f"{why}: not read by the release: {set(passed) - read}"
        for opts in plain:
            for name, value in repo_env_set_in(opts):
                if name == "ML_WHEEL_TYPE":
                    assert passed.get(name) == "release", f"{why}: {name}={value} not overridden"
                if name == "USE_HERMETIC_CC_TOOLCHAIN" and value == "1":
                    off = tc.local_cc_config
                    assert off and f"--config={off}" in cmd, f"{why}: hermetic clang left on"
                    assert doc["derived"]["compiler_story"].endswith(f"--config={off}")
        # the clone check the image runs agrees (the target's BUILD file is not kept here)
        assert (
            clone_check.problems(
                root,
                configs=[c for c in s.configs if c != "opt"],
                bazel=tc.bazel,
                wheel_type=tc.wheel_type or None,
            )
            == []
        ), why
        # (g) clang builds pass the flags the release's own CPU release config passes
        if compiler == "clang":
            assert s.extra_args == tc.clang_args, why
            assert all(f in cmd for f in tc.clang_args), why
        rendered.append(f"{compiler} {cversion}")
    assert rendered, f"{folder}: no compiler choice rendered"
    # (g) the recipe's clang flags are exactly the release config's (read from its files)
    assert tuple(clone_check.release_clang_args(root) or ()) == tc.clang_args, folder
    assert tc.evidence["clang_args"].level in ("release-file", "nearby-master"), folder
    ev = evidence.load()[version]
    assert (
        clone_check.evidence_problems(
            root,
            clang_major=int(ev.wheel.compiler_version.split(".")[0]),
            clang_args=list(tc.clang_args),
        )
        == []
    ), folder
    print(
        f"\n{folder} -> {version}: rendered {', '.join(rendered)}; evidence "
        + ", ".join(sorted({e.level for e in tc.evidence.values()}))
    )


def test_releases_with_secondary_evidence_only_are_listed(facts):
    only = [v for v in toolchains.known_versions() if toolchains.toolchain(v).secondary_only]
    line = (
        "releases whose build-file facts rest on secondary evidence only (no release file or "
        f"nearby master read; their wheels show compiler, Pythons, glibc, commit): "
        f"{', '.join(only) or 'none'}"
    )
    print("\n" + line)
    warnings.warn(line, stacklevel=2)
    # every release not covered by a folder in tf-interface is one of them, and vice versa
    covered = {release_of(f) for f in folders()}
    assert covered, f"{INTERFACE} holds no release folder"
    assert set(only) == set(toolchains.known_versions()) - covered


def test_clone_check_runs_standalone_on_a_release_folder(facts):
    """The same file the image runs, as a script: exit 0 on the 2.21 master tree with the
    recipe's args, exit 1 naming the config when one is missing."""
    import subprocess
    import sys

    script = Path(clone_check.__file__)
    root = INTERFACE / "2.21-master"
    ok = subprocess.run(
        [
            sys.executable,
            str(script),
            "--root",
            str(root),
            "--config=clang_local",
            "--config=mkl",
            "--bazel",
            "7.4.1",
            "--wheel-type",
            "release",
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [sys.executable, str(script), "--root", str(root), "--config=mkl", "--bazel", "7.7.0"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "recipe pins Bazel 7.7.0" in bad.stderr and "hermetic C++ toolchain" in bad.stderr
    assert "ML_WHEEL_TYPE" in bad.stderr
