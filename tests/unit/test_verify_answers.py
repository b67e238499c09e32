"""verify's three answers and exit codes through the command, on wheels built here around
gcc-compiled libraries: 0 runs, 1 cannot run, 3 undecided, 4 an internal error (never 1); ELF
members found by content whatever their names; ISA variant libraries; the modules --emulate
imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import elf_samples as samples
import pytest
from conftest import FIXTURES, invoke, need_tool
from hypothesis import given, settings
from hypothesis import strategies as st
from invoke.exceptions import Exit

from tfforge.commands import runner
from tfforge.errors import ConfigError
from tfforge.verify import answers, modules, probes

HOSTS = FIXTURES / "hosts"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


@pytest.fixture(scope="module")
def libs(tmp_path_factory) -> dict[str, Path]:
    need_tool("gcc")
    d = tmp_path_factory.mktemp("alibs")
    return {
        "skx": samples.compile_so(d, "skx", samples.KERNELS, ["-O2", "-march=skylake-avx512"]),
        "ctor": samples.compile_so(d, "ctor", samples.CONSTRUCTOR, ["-O2"]),
        "guarded": samples.compile_so(d, "guarded", samples.GUARDED, ["-O2"]),
    }


def verify_json(tmp: Path, whl: Path, host: str) -> tuple[int, dict | None, str]:
    proc = invoke(
        "verify",
        str(whl),
        "--json",
        "--jobs",
        "1",
        "--python",
        PY,
        "--host",
        str(HOSTS / host),
        env={"TFFORGE_CACHE": str(tmp / "cache")},
    )
    doc = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
    return proc.returncode, doc, proc.stderr


def wheel_with(tmp: Path, files: dict[str, bytes]) -> Path:
    return samples.make_wheel(
        tmp, tag=f"{TAG}-{TAG}-linux_x86_64", files={"demo/__init__.py": b"", **files}
    )


def test_the_three_answers_and_their_exit_codes(tmp_path, libs):
    # ordinary AVX-512 code, not run at load: undecided for Haswell (exit 3), and it says why
    code, doc, err = verify_json(
        tmp_path / "u",
        wheel_with(tmp_path / "u", {"demo/libk.so": libs["skx"].read_bytes()}),
        "qemu-haswell.json",
    )
    assert code == 3, err
    assert doc["exit_code"] == 3 and doc["hosts"][0]["answer"] == "undecided"
    assert "avx512f" in doc["hosts"][0]["unsettled"] and "avx512f" in doc["unguarded"]
    assert err.strip().splitlines()[-1].startswith("error: ") and "--emulate" in err
    # a constructor runs AVX2 code when the library loads: Nehalem cannot run it (exit 1)
    code, doc, _ = verify_json(
        tmp_path / "c",
        wheel_with(tmp_path / "c", {"demo/libc.so": libs["ctor"].read_bytes()}),
        "qemu-nehalem.json",
    )
    assert code == 1 and doc["hosts"][0]["answer"] == "cannot run"
    assert doc["hosts"][0]["missing"] == ["avx", "avx2"] and "avx2" in doc["required"]
    # AVX-512 only behind __builtin_cpu_supports: Nehalem runs it (exit 0)
    code, doc, _ = verify_json(
        tmp_path / "g",
        wheel_with(tmp_path / "g", {"demo/libg.so": libs["guarded"].read_bytes()}),
        "qemu-nehalem.json",
    )
    assert code == 0 and doc["hosts"][0]["answer"] == "runs"


def test_elf_members_are_found_by_content_whatever_their_names(tmp_path, libs):
    # an AVX-512 library shipped as kernels.bin used to be skipped (it ran on nothing here)
    whl = wheel_with(
        tmp_path,
        {"demo/kernels.bin": libs["skx"].read_bytes(), "demo/notes.bin": b"\x7fEL not quite"},
    )
    code, doc, err = verify_json(tmp_path, whl, "qemu-haswell.json")
    assert code == 3, err
    assert [lib["path"] for lib in doc["libraries"]] == ["demo/kernels.bin"]
    assert "avx512f" in doc["unguarded"]


def test_a_crash_is_an_internal_error_never_a_verdict():
    def crash() -> None:
        raise OverflowError("Python int too large to convert to C ssize_t")

    with pytest.raises(Exit) as info:
        runner.run(crash)
    assert info.value.code == 4
    line = str(info.value.message)
    assert line.startswith("error: internal error at ") and "OverflowError" in line
    assert "\n" not in line and "not a verdict" in line
    with pytest.raises(Exit) as bad:
        runner.run(lambda: (_ for _ in ()).throw(ConfigError("x.whl: bad")))
    assert bad.value.code == 2


def test_variant_libraries_beside_their_sibling():
    paths = [
        "rapidfuzz/fuzz_cpp.cpython-311-x86_64-linux-gnu.so",
        "rapidfuzz/fuzz_cpp_avx2.cpython-311-x86_64-linux-gnu.so",
        "pkg.libs/libfoo-0a1b2c3d.so.1",
        "pkg.libs/libfoo_avx512-9f8e7d6c.so.1",
        "other/kernels_avx2.so",  # no sibling: an ordinary library
    ]
    assert answers.variant_libraries(paths) == {
        "rapidfuzz/fuzz_cpp_avx2.cpython-311-x86_64-linux-gnu.so",
        "pkg.libs/libfoo_avx512-9f8e7d6c.so.1",
    }


def test_emulate_imports_modules_not_the_distribution_name(tmp_path):
    lts = samples.make_wheel(
        tmp_path / "a",
        name="polars_lts_cpu",
        files={"polars/__init__.py": b"", "polars/x.abi3.so": b"\x7fELF"},
    )
    assert modules.top_level_modules(lts) == ("polars",)
    listed = samples.make_wheel(
        tmp_path / "b",
        name="opencv_python_headless",
        files={
            "cv2/__init__.py": b"",
            "opencv_python_headless-1.0.dist-info/top_level.txt": b"cv2\n",
        },
    )
    assert modules.top_level_modules(listed) == ("cv2",)
    root_module = samples.make_wheel(
        tmp_path / "c",
        name="simsimd",
        files={f"simsimd.cpython-{TAG[2:]}-x86_64-linux-gnu.so": b"", "simsimd.libs/x.so": b""},
    )
    assert modules.top_level_modules(root_module) == ("simsimd",)
    data = samples.make_wheel(
        tmp_path / "d",
        name="purelib_pkg",
        files={"purelib_pkg-1.0.data/purelib/pkg/__init__.py": b""},
    )
    assert modules.top_level_modules(data) == ("pkg",)
    empty = samples.make_wheel(tmp_path / "e", files={"README.txt": b""})
    with pytest.raises(ConfigError, match="no importable top-level module"):
        modules.top_level_modules(empty)


def test_top_level_txt_is_read_and_hostile_lines_are_not_code(tmp_path):
    whl = samples.make_wheel(
        tmp_path,
        name="demo",
        files={
            "demo/__init__.py": b"",
            "demo-1.0.dist-info/top_level.txt": b"demo\nos; import shutil\n_private\ntests\n",
        },
    )
    assert modules.top_level_modules(whl) == ("demo",)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(
        st.sampled_from(["json", "os", "sys", "demo", "stub", "other", "demo.sub", "tests"])
        | st.text(max_size=12),
        max_size=6,
    )
)
def test_emulate_imports_what_the_wheel_ships_whatever_top_level_txt_says(lines):
    """top_level.txt is the wheel's word: naming the standard library (`json`) would make the
    emulated run import something else, and leaving a package out would not run it. The probe
    imports every top-level package and module the wheel ships, and nothing else."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        whl = samples.make_wheel(
            Path(tmp),
            name="demo",
            files={
                "demo/__init__.py": b"",
                "stub.py": b"",
                "demo-1.0.dist-info/top_level.txt": "\n".join(lines).encode("utf-8", "replace"),
            },
        )
        got = modules.top_level_modules(whl)
    assert {"demo", "stub"} <= set(got)
    assert all(m.split(".")[0] in ("demo", "stub") for m in got), got


def test_an_import_probe_refuses_a_module_from_outside_site_packages(tmp_path):
    """The standard library's json is not the wheel's: the probe exits non-zero saying so;
    a module from site-packages (packaging, installed in this venv) passes."""
    stdlib = subprocess.run(
        [sys.executable, "-c", probes.import_probe(["json"])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert stdlib.returncode == 5 and '"not_installed_by_the_wheel"' in stdlib.stdout
    installed = subprocess.run(
        [sys.executable, "-c", probes.import_probe(["packaging"])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
