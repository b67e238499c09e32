"""Issue 14, class 4: every offset and size read from an ELF file is checked against the file;
a local I/O error is an error exit and an incomplete scan is never cached; jobs are bounded."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import elf_samples as samples
import pytest
from conftest import FIXTURES, ROOT, need_tool
from faults import invoke_disk_full
from invoke.exceptions import Exit

from tfforge.commands import runner as cli
from tfforge.elfscan import scan as elfscan
from tfforge.errors import ConfigError
from tfforge.verify import wheelscan

HASWELL = FIXTURES / "cpuinfo" / "haswell-i7-4770.cpuinfo"
TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> Path:
    need_tool("gcc")
    return samples.compile_so(
        tmp_path_factory.mktemp("blib"), "k", samples.KERNELS, ["-O2", "-mavx2"]
    )


def section_header_offset(data: bytes, index: int) -> int:
    e_shoff = struct.unpack_from("<Q", data, 0x28)[0]
    return e_shoff + 64 * index


def with_field(data: bytes, index: int, field_at: int, value: int) -> bytes:
    """data with a 64-bit field of section header `index` set (offset at 24, size at 32)."""
    out = bytearray(data)
    struct.pack_into("<Q", out, section_header_offset(data, index) + field_at, value)
    return bytes(out)


def text_index(data: bytes) -> int:
    count, strndx = struct.unpack_from("<HH", data, 0x3C)
    shstr_off = struct.unpack_from("<Q", data, section_header_offset(data, strndx) + 24)[0]
    for i in range(count):
        name = struct.unpack_from("<I", data, section_header_offset(data, i))[0]
        if data[shstr_off + name :].startswith(b".text\0"):
            return i
    raise AssertionError("no .text")


@pytest.mark.parametrize(
    "field_at, value", [(32, 1 << 62), (32, (1 << 64) - 1), (24, 1 << 63), (16, (1 << 64) - 16)]
)
def test_a_huge_section_size_or_offset_fails_fast(tmp_path, lib, field_at, value):
    data = lib.read_bytes()
    bad = tmp_path / "libbad.so"
    bad.write_bytes(with_field(data, text_index(data), field_at, value))
    t0 = time.process_time()  # CPU time: a hang guard that a loaded machine does not trip
    with pytest.raises(ConfigError, match="damaged ELF file"):
        elfscan.scan_library(bad)
    assert time.process_time() - t0 < 2  # the old reader spent minutes reading the huge size


def verify_wheel(tmp: Path, lib: Path) -> Path:
    return samples.make_wheel(
        tmp / "raw",
        tag=f"{TAG}-{TAG}-linux_x86_64",
        files={"demo/__init__.py": b"", "demo/libk.so": lib.read_bytes()},
    )


def test_a_full_cache_disk_is_an_error_and_nothing_is_cached(tmp_path, lib):
    whl = verify_wheel(tmp_path, lib)
    env = {**os.environ, "TFFORGE_CACHE": str(tmp_path / "cache")}
    args = ["verify", str(whl), "--json", "--jobs", "1", "--host", str(HASWELL)]
    full = invoke_disk_full(4096, *args, cwd=tmp_path, env=env)
    assert full.returncode == 2, full.stderr[-2000:]
    assert "Traceback" not in full.stderr and "cannot be written" in full.stderr
    assert list((tmp_path / "cache" / "verify").glob("*.json")) == []
    again = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(ROOT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    doc = json.loads(again.stdout)
    isa_check = next(c for c in doc["checks"] if c["name"] == "isa")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 ELF librar" in isa_check["summary"], isa_check  # scanned, not a cached 0
    assert len(list((tmp_path / "cache" / "verify").glob("*.json"))) == 1


def test_jobs_are_bounded_by_cores_and_memory():
    assert 1 <= wheelscan.bounded_jobs(99999) <= (os.cpu_count() or 1)
    assert wheelscan.bounded_jobs(1) == 1


@pytest.mark.parametrize("flag, value", [("--examples", "-1"), ("--jobs", "-2")])
def test_negative_counts_are_refused(flag, value):
    with pytest.raises(Exit) as info:
        cli.run_task("verify", {"wheel": "x.whl", "json": True, flag.lstrip("-"): value})
    assert info.value.code == 2 and flag in str(info.value.message)


@pytest.mark.parametrize(
    "derived", [{"features": 5}, {"features": "avx2", "copts": [1]}, {"copts": {"a": 1}}]
)
def test_a_build_record_with_wrong_types_fails_provenance_not_verify(tmp_path, lib, derived):
    from tfforge.wheel import edit as wheel_edit

    raw = verify_wheel(tmp_path, lib)
    (tmp_path / "w").mkdir()
    record = {
        "id": "1.0-avx2-0123456789ab",
        "spec": {"tf_version": "1.0", "python_version": "3.11"},
        "derived": {"local_version": "avx2", "version": "1.0+avx2", **derived},
    }
    whl = wheel_edit.finalize(raw, tmp_path / "w", local_version="avx2", provenance=record)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "invoke",
            "-r",
            str(ROOT),
            "verify",
            str(whl),
            "--json",
            "--jobs",
            "1",
            "--host",
            str(HASWELL),
        ],
        env={**os.environ, "TFFORGE_CACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    prov = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "provenance")
    assert prov["status"] == "fail" and "not a list of names" in prov["summary"], prov
