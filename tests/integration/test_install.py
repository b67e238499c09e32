"""A non-editable install renders: the Dockerfile template and the data files travel inside the
package, and nothing is looked up beside the checkout or in the working directory.

tfforge itself is really installed (`pip install --no-deps`, a built wheel, not editable) into a
fresh venv; its dependencies are the ones this interpreter already has, made visible through a
.pth line, so the test costs seconds instead of a full dependency install.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, need

ARGS = ["render", "--target", "haswell", "--json"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The python of a fresh venv holding a non-editable tfforge."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"  # a copy: an in-tree build would leave build/ and *.egg-info here
    shutil.copytree(ROOT / "tfforge", src / "tfforge", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", src)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True)
    python = tmp / "venv" / "bin" / "python"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--quiet",
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    need(proc.returncode == 0, f"pip could not build and install tfforge: {proc.stderr[-800:]}")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies this interpreter has; a plain path line runs none of their .pth hooks,
    # so the editable tfforge of this checkout stays invisible.
    Path(purelib, "tfforge-test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    shutil.rmtree(src)
    return python


def run(python: Path, tasks_dir: Path, root: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TFFORGE_ROOT": str(root)}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(python), "-m", "invoke", "-r", str(tasks_dir), *ARGS],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def check_rendered(proc: subprocess.CompletedProcess, root: Path) -> None:
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    build = Path(doc["build_dir"])
    assert build.parent == root / "builds"
    text = (build / "Dockerfile").read_text()
    assert text.startswith("# syntax=") or "FROM " in text
    assert "-march=haswell" in text
    assert json.loads((build / "build.json").read_text())["id"] == doc["id"]


def test_installed_package_is_not_the_checkout(installed):
    where = subprocess.run(
        [str(installed), "-c", "import tfforge; print(tfforge.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed.parents[1]), where


def test_installed_package_renders_with_its_own_template_and_data(installed, tmp_path):
    """tasks.py alone beside no tfforge/: every import and resource comes from the install."""
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    shutil.copy(ROOT / "tasks.py", tasks)
    (tmp_path / "elsewhere").mkdir()
    root = tmp_path / "project"
    check_rendered(run(installed, tasks, root, tmp_path / "elsewhere"), root)


def test_invoke_r_checkout_renders_with_root_elsewhere(installed, tmp_path):
    """The README's way, from another folder, with TFFORGE_ROOT pointing away from the checkout."""
    (tmp_path / "elsewhere").mkdir()
    root = tmp_path / "project"
    check_rendered(run(installed, ROOT, root, tmp_path / "elsewhere"), root)


def test_console_script_runs_the_tasks_from_an_empty_folder(installed, tmp_path):
    """The installed `tfforge` script needs no checkout and no tasks.py: its help lists the
    tasks, and detect reads this host (or a given cpuinfo) like `invoke detect` does."""
    script = installed.parent / "tfforge"
    assert script.is_file(), "pip wrote no tfforge console script ([project.scripts])"
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "TFFORGE_ROOT": str(tmp_path / "project")}
    env.pop("PYTHONPATH", None)

    def tfforge(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(script), *args], cwd=empty, env=env, capture_output=True, text=True, timeout=120
        )

    helped = tfforge("--help")
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert helped.stdout.startswith("Usage: tfforge ")
    for task in ("build", "detect", "matrix", "verify"):
        assert f"\n  {task} " in helped.stdout, helped.stdout
    detected = tfforge("detect", "--json", "--no-tf")
    assert detected.returncode == 0, detected.stderr[-2000:]
    assert json.loads(detected.stdout)["host"]["arch"]
    fixture = ROOT / "tests" / "fixtures" / "cpuinfo" / "haswell-i7-4770.cpuinfo"
    other = tfforge("detect", "--json", "--cpuinfo", str(fixture))
    assert json.loads(other.stdout)["recommended"]["target"] == "haswell"
    bad = tfforge("build", "--avx2", "--timeout", "1e300")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: --timeout '1e300'")
    assert sorted(p.name for p in empty.iterdir()) == []
