"""tfforge.venvs: one cached venv per wheel sha256, numpy pins, no broken venv left behind.

Uses a tiny wheel built here (no network): venv creation and pip install are real.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

from tfforge import files
from tfforge.errors import ConfigError, TfforgeError
from tfforge.runtime import venvs


def make_wheel(folder: Path, value: int = 42, name: str = "demo_pkg") -> Path:
    files = {
        f"{name}/__init__.py": f"VALUE = {value}\n",
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{name}-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{name}-1.0.dist-info/RECORD,,")
    files[f"{name}-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TFFORGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_second_call_reuses_the_venv_without_reinstalling(tmp_path, cache):
    wheel = make_wheel(tmp_path)
    python = venvs.venv_python(wheel)
    out = subprocess.run(
        [str(python), "-c", "import demo_pkg; print(demo_pkg.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "42"
    record = python.parent.parent / venvs.RECORD
    stamp = record.stat().st_mtime_ns
    log = cache / "venvs" / f"{python.parent.parent.name}.log"
    assert log.read_text().count(" -m venv ") == 1

    again = venvs.venv_python(wheel)
    assert again == python
    assert record.stat().st_mtime_ns == stamp
    assert log.read_text().count(" -m venv ") == 1  # no second install
    assert python.parent.parent.name.startswith("demo-pkg-1.0-" + files.sha256_file(wheel)[:12])


def test_a_different_wheel_gets_a_different_venv(tmp_path, cache):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = venvs.venv_python(make_wheel(tmp_path / "a"))
    second = venvs.venv_python(make_wheel(tmp_path / "b", value=7))  # same name, other bytes
    assert first != second
    out = subprocess.run(
        [str(second), "-c", "import demo_pkg; print(demo_pkg.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "7"


def test_failed_install_leaves_no_cached_venv(tmp_path, cache):
    broken = tmp_path / "demo_pkg-1.0-py3-none-any.whl"
    broken.write_bytes(b"this is not a zip file")
    with pytest.raises(TfforgeError, match="not a zip archive"):
        venvs.venv_python(broken)
    leftovers = [p for p in (cache / "venvs").iterdir() if p.is_dir()]
    assert leftovers == []


def test_incomplete_venv_is_rebuilt(tmp_path, cache):
    wheel = make_wheel(tmp_path)
    plan = venvs.plan(wheel)
    half = cache / "venvs" / plan.name
    (half / "bin").mkdir(parents=True)
    (half / "bin" / "python").write_text("not a python")  # a crash mid-install left this
    python = venvs.venv_python(wheel)
    assert python == half / "bin" / "python"
    assert (half / venvs.RECORD).is_file()
    subprocess.run([str(python), "-c", "import demo_pkg"], check=True)


@pytest.mark.parametrize(
    "project, version, pins",
    [
        ("intel-tensorflow-avx512", "2.14.0", ("numpy<2",)),
        ("tensorflow_cpu", "2.14.1", ("numpy<2",)),
        ("tensorflow", "2.15.0", ("numpy<2",)),
        ("tensorflow", "2.14.0+avx2.fma.mkl", ("numpy<2",)),
        ("tensorflow-cpu", "2.17.1", ("numpy<2",)),
        ("tensorflow-cpu", "2.18.0", ()),
        ("tensorflow-cpu", "2.21.0", ()),
        ("numpy", "1.26.4", ()),
    ],
)
def test_numpy_pin_for_tensorflow_before_2_18(project, version, pins):
    rules = venvs.matching_rules(project, Version(version))
    assert tuple(pin for rule in rules for pin in rule.pins) == pins


def test_plan_carries_the_pin_and_refuses_foreign_wheels(tmp_path):
    wheel = tmp_path / "intel_tensorflow_avx512-2.14.0-py3-none-any.whl"
    wheel.write_bytes(b"x")
    assert venvs.plan(wheel).constraints == ("numpy<2",)
    foreign = tmp_path / "tensorflow-2.14.0-cp39-cp39-win_amd64.whl"
    foreign.write_bytes(b"x")
    with pytest.raises(ConfigError, match="not installable on this interpreter"):
        venvs.plan(foreign)
    odd = tmp_path / "x.whl"
    odd.write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a wheel file name"):
        venvs.plan(odd)


def test_wheel_specs(tmp_path, monkeypatch):
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    (tmp_path / "wheels").mkdir()
    local = make_wheel(tmp_path / "wheels")
    assert venvs.wheel_from_spec(local.name) == local.resolve()
    assert venvs.wheel_from_spec(str(local)) == local.resolve()
    with pytest.raises(ConfigError, match="not found"):
        venvs.wheel_from_spec("missing-1.0-py3-none-any.whl")
    with pytest.raises(ConfigError, match="neither a wheel file nor a pinned requirement"):
        venvs.wheel_from_spec("tensorflow-cpu")
