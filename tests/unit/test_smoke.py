"""smoke: failure explanations, golden comparison, bad input (unit tests, no TensorFlow)."""

from __future__ import annotations

import signal
import subprocess
import zipfile

import pytest
from conftest import ROOT, invoke, options_for

from tfforge.commands import smoke as smoke_cmd
from tfforge.errors import ConfigError, VerifyError
from tfforge.runtime import probe, smoke


def _proc(returncode: int, stderr: str = "") -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(["python"], returncode, "", stderr)


def test_sigill_is_reported_as_a_missing_cpu_feature():
    text = probe.explain_failure(_proc(-signal.SIGILL), None)
    assert "SIGILL" in text and "CPU feature" in text
    text = probe.explain_failure(_proc(132, "bash: line 1: 42 Illegal instruction"), None)
    assert "SIGILL" in text


def test_cpu_feature_guard_abort_names_the_feature():
    log = (
        "2024-01-01 F tensorflow/core/platform/cpu_feature_guard.cc:37] The TensorFlow "
        "library was compiled to use AVX512F instructions, but these aren't available on "
        "your machine.\nAborted (core dumped)"
    )
    text = probe.explain_failure(_proc(-signal.SIGABRT, log), None)
    assert "AVX512F" in text and "missing CPU feature" in text


def test_other_import_failures_show_the_cause():
    doc = {
        "error": "import",
        "message": "AttributeError: _ARRAY_API not found",
        "traceback": "Traceback ...\nAttributeError: _ARRAY_API not found",
    }
    assert probe.explain_failure(_proc(3), doc) == "AttributeError: _ARRAY_API not found"
    tb = "Traceback (most recent call last):\n  File x\nImportError: libfoo.so: cannot open"
    assert probe.explain_failure(_proc(1, tb), None) == "ImportError: libfoo.so: cannot open"
    assert "SIGKILL" in probe.explain_failure(_proc(-signal.SIGKILL), None)


def test_compare_lists_differing_words_in_order():
    golden = [("cat", ["K", "AE1", "T"]), ("dog", ["D", "AO1", "G"]), ("emu", ["IY1", "M"])]
    got = [["K", "AE1", "T"], ["D", "AA1", "G"], ["IY1"]]
    diff = smoke.compare(golden, got)
    assert [m.word for m in diff] == ["dog", "emu"]
    assert diff[0].expected == ("D", "AO1", "G") and diff[0].got == ("D", "AA1", "G")


@pytest.mark.parametrize("count", [0, 2, 4])
def test_compare_refuses_predictions_that_do_not_line_up(count):
    """A runner that dropped or added a word is a failure, not a shorter list of mismatches."""
    golden = [("cat", ["K", "AE1", "T"]), ("dog", ["D", "AO1", "G"]), ("emu", ["IY1", "M"])]
    got = ([["K", "AE1", "T"]] * 4)[:count]
    with pytest.raises(VerifyError, match=f"returned {count} predictions for 3 words"):
        smoke.compare(golden, got)


def test_bad_options_are_config_errors(tmp_path):
    pin = "tensorflow-cpu==2.21.0"
    with pytest.raises(ConfigError, match="--mode 'fast': must be one of eager, graph"):
        options_for("smoke", wheel=pin, mode="fast")
    with pytest.raises(ConfigError, match="--batch 'x': not a whole number"):
        options_for("smoke", wheel=pin, batch="x")
    with pytest.raises(ConfigError, match="golden file .* not found"):
        smoke_cmd.smoke_command(options_for("smoke", wheel=pin, golden=str(tmp_path / "none.txt")))


def test_wheel_for_another_python_fails_in_one_line_without_a_venv(tmp_path):
    wheel = tmp_path / "tensorflow_cpu-2.21.0-cp312-cp312-manylinux_2_27_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("tensorflow_cpu-2.21.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    cache = tmp_path / "cache"
    proc = invoke("smoke", str(wheel), env={"TFFORGE_CACHE": str(cache)})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "error: tensorflow_cpu-2.21.0-cp312-cp312-manylinux_2_27_x86_64"
        ".whl is not installable on this interpreter (CPython 3."
    )
    assert "cp312" in lines[0]
    assert not (cache / "venvs").exists() or not any((cache / "venvs").iterdir())


def test_missing_wheel_file_is_a_config_error(tmp_path):
    proc = invoke("smoke", str(tmp_path / "nope.whl"), env={"TFFORGE_CACHE": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: wheel {str(tmp_path / 'nope.whl')!r} not found (looked in . and "
        f"{ROOT / 'wheels'}); pass an existing .whl or a PyPI pin like tensorflow-cpu==2.21.0"
    ]
