"""The clone check against the release's official wheels: the tree's version file, the clang
its CPU release config names and that config's compiler and linker flags, on small trees
written here (the releases' own files: tests/unit/test_recipes_conformance.py)."""

from __future__ import annotations

from pathlib import Path

from tfforge.build import clone_check


# ---- the clone check against the wheels' evidence ------------------------------------------------
def _tree(root: Path, version_file: str, bazelrc: str) -> Path:
    (root / "tensorflow").mkdir(parents=True)
    (root / "tensorflow" / "tf_version.bzl").write_text(version_file)
    (root / ".bazelrc").write_text(bazelrc)
    return root


RELEASE_RC = """\
build:release_linux_base --copt=-Wno-gnu-offsetof-extensions
build:release_linux_base --linkopt="-fuse-ld=lld"
build:release_cpu_linux --config=release_linux_base
build:release_cpu_linux --config=avx_linux
build:avx_linux --copt=-mavx
build:release_cpu_linux_clang_local --repo_env=CC="/usr/lib/llvm-18/bin/clang"
"""
ARGS = ["--copt=-Wno-gnu-offsetof-extensions", "--linkopt=-fuse-ld=lld"]


def test_clone_check_compares_version_clang_and_flags(tmp_path):
    root = _tree(tmp_path / "ok", 'TF_VERSION = "2.99.0"\n', RELEASE_RC)
    assert clone_check.release_clang_args(root) == ARGS  # -mavx is the target: left out
    ok = clone_check.evidence_problems(root, version="2.99.0", clang_major=18, clang_args=ARGS)
    assert ok == []
    bad = clone_check.evidence_problems(
        root, version="2.98.0", clang_major=17, clang_args=[*ARGS[:1], "--linkopt=-lm"]
    )
    assert len(bad) == 3
    assert bad[0].startswith("the tree's version file says 2.99.0, the release's official wheels")
    assert "names clang 18, the official wheels were built with clang 17" in bad[1]
    assert "passes --linkopt=-fuse-ld=lld that the recipe's clang_args lack" in bad[2]
    assert "and not --linkopt=-lm" in bad[2]


def test_clone_check_reads_version_h_when_there_is_no_tf_version_bzl(tmp_path):
    header = tmp_path / "tensorflow" / "core" / "public" / "version.h"
    header.parent.mkdir(parents=True)
    header.write_text(
        "#define TF_MAJOR_VERSION 2\n#define TF_MINOR_VERSION 15\n#define TF_PATCH_VERSION 0\n"
        '#define TF_VERSION_SUFFIX ""\n'
    )
    assert clone_check.tree_version(tmp_path) == "2.15.0"
    assert clone_check.evidence_problems(tmp_path, version="2.15.0") == []
    assert clone_check.tree_version(tmp_path / "nothing") == ""
