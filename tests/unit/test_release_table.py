"""docs/reference/releases.md: the per-release table is generated from tfforge/data/toolchains.toml,
up to date, and shows the evidence level of every fact that decides a build."""

import subprocess
import sys

from conftest import ROOT

from tfforge.build import toolchains


def test_readme_release_table_is_current_and_lists_every_release():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "release_table.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    readme = (ROOT / "docs" / "reference" / "releases.md").read_text()
    table = readme.split("<!-- release-table:start")[1].split("<!-- release-table:end")[0]
    codes = {"release-artifact": "A", "release-file": "F", "nearby-master": "M", "secondary": "S"}
    # the facts of the columns after TF; every deciding fact has one (the supported clang
    # majors are the official compiler's)
    columns = [
        "official_compiler",
        "clang_args",
        "pythons",
        "glibc",
        "git_commit",
        "bazel",
        "wheel_target",
        "python_env",
        "wheel_type",
        "gcc",
        "cc_toolchain",
        "packages",
    ]
    assert set(columns) == set(toolchains.DECIDING) - {"clang"}
    for version in toolchains.known_versions():
        tc = toolchains.toolchain(version)
        [row] = [r for r in table.splitlines() if r.startswith(f"| {version} |")]
        official = f"{tc.official_compiler} {tc.official_compiler_version}"
        assert row.startswith(f"| {version} | {official} (A) |"), row
        shown = [cell.strip().rsplit("(", 1)[1].rstrip(")") for cell in row.split("|")[2:-1]]
        assert shown == [codes[tc.evidence[f].level] for f in columns], row
