"""docs/reference/releases.md: the per-release table is generated from toolchains.toml, current."""

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
    for version in toolchains.known_versions():
        tc = toolchains.toolchain(version)
        assert f"| {version} | {tc.bazel} |" in table
