"""`invoke verify`: the verdict and its exit codes, on wheels built here around gcc-compiled
libraries, and (integration) on the stock tensorflow-cpu 2.21.0 wheel from PyPI, checked
against host snapshots and confirmed by running it under qemu as older CPUs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import elf_samples as samples
import pytest
from conftest import FIXTURES, invoke, need, need_tool
from conftest import checks_by_name as checks

from tfforge.errors import ConfigError
from tfforge.host import cpu
from tfforge.verify import emulate
from tfforge.wheel import fetch as pypi

HOSTS = FIXTURES / "hosts"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


# ---- pure functions --------------------------------------------------------------------------
# ---- the real stock wheel (integration) ----------------------------------------------------
STOCK = "tensorflow-cpu==2.21.0"


@pytest.fixture(scope="module")
def stock_wheel() -> Path:
    try:
        return pypi.fetch(STOCK)
    except Exception as exc:  # noqa: BLE001 - reported through need()
        need(False, f"cannot fetch {STOCK} from PyPI: {exc}")


@pytest.fixture(scope="module")
def stock(stock_wheel) -> dict:
    """One verify of the stock wheel against five host snapshots. The ISA scan is cached per
    wheel sha256 in the cache dir, so later verifies of this wheel do not scan it again."""
    args = ["verify", str(stock_wheel), "--json", "--jobs", "1", "--python", "3.11"]
    for h in (
        "qemu-nehalem.json",
        "qemu-sandybridge.json",
        "qemu-ivybridge.json",
        "qemu-haswell.json",
        "skylake-sp-8175m.json",
    ):
        args += ["--host", str(HOSTS / h)]
    proc = invoke(*args, timeout=900)
    assert proc.returncode == 1, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.integration
def test_stock_wheel_structure_and_tags(stock):
    c = checks(stock)
    assert c["structure"]["status"] == "pass" and stock["members"] > 10000
    assert c["python"]["status"] == "pass"
    assert c["manylinux"]["status"] == "pass" and "glibc 2.27" in c["manylinux"]["summary"]
    assert c["provenance"]["status"] == "skip" and c["claim"]["status"] == "skip"
    assert len(stock["libraries"]) == 77


@pytest.mark.integration
def test_stock_wheel_baseline_is_avx_class_plus_f16c(stock):
    baseline, dispatched = set(stock["baseline"]), set(stock["dispatched"])
    # What the scan finds: AVX everywhere (TensorFlow builds with -mavx) and F16C in ordinary
    # Eigen::half code; everything newer only in dispatched kernels.
    assert {"avx", "f16c"} <= baseline
    assert baseline <= set(cpu.load_host(HOSTS / "qemu-ivybridge.json").features)
    assert not baseline & {"avx2", "fma", "bmi1", "bmi2", "avx512f", "avx512_vnni", "amx_tile"}
    assert {
        "avx2",
        "fma",
        "avx512f",
        "avx512bw",
        "avx512_vnni",
        "avx512_bf16",
        "avx_vnni",
        "amx_tile",
        "amx_int8",
    } <= dispatched
    cc = next(lib for lib in stock["libraries"] if lib["path"].endswith("libtensorflow_cc.so.2"))
    f16c = next(f for f in cc["features"] if f["name"] == "f16c")
    # F16C: in thousands of ordinary functions, none run at load: no CPU check guards it,
    # but nothing shows it runs unconditionally either (emulation settles it: it traps)
    assert f16c["cls"] == "unguarded" and f16c["ordinary"] > 1000
    assert any("Eigen::half" in x for x in f16c["examples"])
    avx512 = next(f for f in cc["features"] if f["name"] == "avx512f")
    assert avx512["cls"] == "dispatched" and avx512["ordinary"] == 0 and avx512["named"] > 100
    avx = next(f for f in cc["features"] if f["name"] == "avx")
    assert avx["load_time"] > 0 and "runs at load" in avx["reason"] and avx["cls"] == "required"
    assert "avx" in stock["required"] and "f16c" in stock["unguarded"]


@pytest.mark.integration
def test_stock_wheel_against_host_snapshots(stock):
    hosts = {h["name"]: h for h in stock["hosts"]}
    assert hosts["qemu-nehalem"]["missing"][:1] == ["avx"]
    assert hosts["qemu-nehalem"]["answer"] == "cannot run"
    sandy = hosts["qemu-sandybridge"]
    assert (sandy["answer"], sandy["missing"], sandy["unsettled"]) == ("undecided", [], ["f16c"])
    for name in ("qemu-ivybridge", "qemu-haswell", "skylake-sp-8175m"):
        assert hosts[name]["ok"], hosts[name]
    # Haswell lacks AVX-512 (and more), all of it dispatched-only: it passes.
    assert {"avx512f", "avx512_vnni"} <= set(hosts["qemu-haswell"]["missing_dispatched"])


@pytest.mark.integration
def test_stock_wheel_emulated_confirms_the_static_verdict(stock, stock_wheel):
    """Under qemu, SandyBridge (no F16C) dies with SIGILL at the float16 cast: the run settles
    what the scan left undecided; IvyBridge (F16C, no AVX2) runs everything, as it says."""
    need_tool("qemu-x86_64")
    proc = invoke(
        "verify",
        str(stock_wheel),
        "--json",
        "--jobs",
        "1",
        "--python",
        "3.11",
        "--host",
        str(HOSTS / "qemu-ivybridge.json"),
        "--emulate",
        "SandyBridge",
        "--emulate",
        "IvyBridge",
        timeout=1800,
    )
    doc = json.loads(proc.stdout)
    assert doc["scan_cached"] is True  # the stock wheel is scanned once
    em = {e["result"]["model"]: e for e in doc["emulation"]}
    sandy, ivy = em["SandyBridge"], em["IvyBridge"]
    assert sandy["result"]["status"] == "signal" and sandy["result"]["signal"] == "SIGILL"
    assert sandy["result"]["stage"] == "float16 cast"
    assert sandy["static"]["answer"] == "undecided" and sandy["static"]["unsettled"] == ["f16c"]
    assert sandy["settled"] is True and sandy["answer"] == "cannot run"
    assert ivy["result"]["status"] == "pass" and ivy["static"]["answer"] == "runs"
    assert ivy["agrees"] is True
    assert checks(doc)["emulate"]["status"] == "fail" and proc.returncode == 1
    assert checks(doc)["compatibility"]["status"] == "pass"


def test_emulate_needs_a_known_model():
    need_tool("qemu-x86_64")
    assert emulate.check_model("haswell") == "Haswell"
    with pytest.raises(ConfigError, match="no such CPU model"):
        emulate.check_model("Pentium9")


@pytest.mark.integration
def test_isa_level_note_is_what_glibc_enforces(tmp_path):
    """A library linked with -z x86-64-v3: verify reads the note, and glibc refuses to load it
    on a CPU below x86-64-v3 (qemu SandyBridge) with a clear error instead of a SIGILL, while
    Haswell loads it."""
    import subprocess

    need_tool("gcc")
    need_tool("qemu-x86_64")
    from tfforge.elfscan.scan import scan_library

    lib = samples.compile_so(
        tmp_path, "v3", samples.KERNELS, ["-O2", "-march=x86-64-v3", "-Wl,-z,x86-64-v3"]
    )
    assert scan_library(lib).isa_needed == "x86-64-v3"
    code = f"import ctypes; ctypes.CDLL({str(lib)!r}); print('loaded')"
    py = emulate._host_python()
    old = subprocess.run(
        ["qemu-x86_64", "-cpu", "SandyBridge", py, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert old.returncode == 1 and "CPU ISA level is lower than required" in old.stderr
    new = subprocess.run(
        ["qemu-x86_64", "-cpu", "Haswell", py, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert new.returncode == 0 and "loaded" in new.stdout
