"""Host runtimes (capture, snapshots), runtime floors, per-host runtime verdicts and manylinux
tags, checked against real captures of Debian containers, libraries compiled here with the real
gcc, pyelftools as an independent ELF reader and auditwheel's own verdict."""

from __future__ import annotations

import json
import subprocess
import zipfile
from base64 import urlsafe_b64encode
from hashlib import sha256
from pathlib import Path

import conftest
import pytest
from conftest import FIXTURES
from elf_samples import make_wheel
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.utils import parse_wheel_filename

from tfforge.build import floor, render, spec
from tfforge.errors import ConfigError
from tfforge.host import capture, cpu
from tfforge.host import runtime as host_runtime
from tfforge.verify import runtime as verdicts
from tfforge.wheel import edit, manylinux, symvers

HOSTS = FIXTURES / "hosts"
BULLSEYE = HOSTS / "bullseye-host.capture.json"
BOOKWORM = HOSTS / "bookworm-host.capture.json"
HYPO = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# A C library using what TensorFlow's do from glibc: dlopen and stat. Built against this
# machine's glibc (bookworm, 2.36) it needs GLIBC_2.33/2.34.
LOADER_C = r"""
#include <dlfcn.h>
#include <sys/stat.h>
long file_size(const char *p) {
  struct stat st; void *h = dlopen(0, RTLD_NOW);
  if (h) dlclose(h);
  return stat(p, &st) ? -1 : (long)st.st_size;
}
"""
# C++ code needing GCC 11+'s libstdc++ (std::future::wait_for, exception_ptr).
FUTURE_CC = r"""
#include <chrono>
#include <future>
extern "C" long ready(long v) {
  std::promise<long> p; auto f = p.get_future(); p.set_value(v);
  return f.wait_for(std::chrono::seconds(1)) == std::future_status::ready ? f.get() : -1;
}
"""


def build_so(folder: Path, name: str, source: str, cxx: bool = False) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / (f"{name}.cc" if cxx else f"{name}.c")
    src.write_text(source)
    out = folder / f"lib{name}.so"
    cmd = ["g++" if cxx else "gcc", "-O2", "-shared", "-fPIC", "-o", str(out), str(src)]
    subprocess.run(cmd + (["-ldl"] if not cxx else []), check=True, capture_output=True)
    return out.read_bytes()


@pytest.fixture(scope="module")
def fixture_wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("rtwheel")
    return make_wheel(
        tmp,
        tag="cp311-cp311-linux_x86_64",
        files={
            "demo/libloader.so": build_so(tmp, "loader", LOADER_C),
            "demo/libfuture.so": build_so(tmp, "future", FUTURE_CC, cxx=True),
        },
    )


# ---- captures and the data file ---------------------------------------------------------------
@pytest.mark.parametrize("path,suite", [(BULLSEYE, "bullseye"), (BOOKWORM, "bookworm")])
def test_captured_suites_agree_with_runtimes_toml(path, suite):
    """The floors' facts are the ones read in real containers of those suites."""
    host = cpu.load_host(path)
    rt, fl = host.runtime, floor.floors()[suite]
    assert fl.evidence == f"captured: tests/fixtures/hosts/{path.name}"
    assert (rt.glibc, rt.glibcxx, rt.cxxabi, rt.python) == (
        fl.glibc,
        fl.glibcxx,
        fl.cxxabi,
        fl.python,
    )
    assert fl.distribution == rt.distro_name
    assert Path(rt.library("libstdc++.so.6").path).name.startswith("libstdc++.so.6.0.")


def test_capture_reader_agrees_with_pyelftools():
    """The stdlib reader the capture script carries, against pyelftools on this host's libraries."""
    for soname in ("libc.so.6", "libstdc++.so.6", "libgcc_s.so.1"):
        path = capture.loaded_path(soname)
        assert path, soname
        with open(path, "rb") as f:
            elf = ELFFile(f)
            sec = next(s for s in elf.iter_sections() if isinstance(s, GNUVerDefSection))
            names = {
                next(iter(aux)).name
                for vd, aux in sec.iter_versions()
                if not vd["vd_flags"] & 1  # VER_FLG_BASE: the file's own name
            }
        assert set(capture.version_definitions(path)) == names, soname


def test_capture_lists_only_pythons_that_run(tmp_path, monkeypatch):
    """A python3.N name is a hint: a pyenv shim or a broken link for a version that is not
    installed is not a Python the host has; one that runs and says its version is."""
    import sys

    shim = tmp_path / "python3.9"  # what pyenv leaves for a version it does not have
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.9: command not found' >&2\nexit 127\n")
    liar = tmp_path / "python3.7"  # runs, but is another version
    liar.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (tmp_path / "python3.8").symlink_to(tmp_path / "missing")
    for f in (shim, liar):
        f.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(capture, "PY_DIRS", ())
    here = "{}.{}".format(*sys.version_info[:2])
    assert capture.pythons() == [here]
    other = tmp_path / "python3.99"  # runs and reports its own version: listed
    other.write_text("#!/bin/sh\necho 3.99\n")
    other.chmod(0o755)
    assert capture.pythons() == [here, "3.99"]


def test_detect_here_and_raw_cpuinfo_unknown(tmp_path):
    here = cpu.detect_host()
    assert here.runtime is not None and here.runtime.libc == "glibc"
    saved = cpu.load_host(cpu.save_host(here, tmp_path / "me.json"))
    assert saved.runtime == here.runtime  # the snapshot round-trips the runtime
    raw = cpu.load_host(FIXTURES / "cpuinfo" / "haswell-i7-4770.cpuinfo")
    assert raw.runtime is None


runtime_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
real = json.loads(BULLSEYE.read_text())["runtime"]
mutated = st.builds(
    lambda key, value: {**real, key: value},
    st.sampled_from(sorted(real)),
    runtime_docs,
)


@HYPO
@given(doc=st.one_of(runtime_docs, mutated))
def test_hostile_runtime_documents_are_one_config_error(doc):
    try:
        rt = host_runtime.from_dict(doc, "hosts/x.json")
    except ConfigError as exc:
        assert str(exc).startswith("hosts/x.json: ") and "\n" not in str(exc)
    else:
        assert rt.libc in host_runtime.LIBC_KINDS
        rt.summary()


# ---- floors -----------------------------------------------------------------------------------
def test_fleet_floor_is_the_oldest_suite_every_host_loads():
    bull, book = cpu.load_host(BULLSEYE), cpu.load_host(BOOKWORM)
    assert floor.fleet_runtime([book, bull]).floor().name == "bullseye"
    assert floor.fleet_runtime([book]).floor().name == "bookworm"
    raw = cpu.load_host(FIXTURES / "cpuinfo" / "haswell-i7-4770.cpuinfo")
    assert floor.fleet_runtime([raw]).floor() is None
    old = json.loads(BULLSEYE.read_text())
    old["runtime"]["glibc"] = "2.28"
    old_host = cpu._from_json(old, "rhel8.json", "rhel8")
    with pytest.raises(ConfigError, match="rhel8-|bullseye-host|glibc 2.28 < 2.31"):
        floor.fleet_runtime([old_host, book]).floor()


def test_serving_python_names_the_reason():
    bull = cpu.load_host(BULLSEYE).runtime
    assert floor.serving_python(bull, ["3.9", "3.10"])[0] == "3.9"
    py, why = floor.serving_python(bull, ["3.10", "3.11"])
    assert py is None and "3.9" in why and "3.10, 3.11" in why


def make_spec(**opts: object) -> spec.BuildSpec:
    base = {
        "tf_version": "2.20.0",
        "python_version": "3.9",
        "target": "x86-64-v2",
        "base_image": "local/bookworm:base",
        "bazel_provider": "debian",
    }
    return conftest.make_spec(**{**base, **opts})


def test_bullseye_floor_takes_the_sysroot_route():
    s = make_spec(runtime_floor="bullseye")
    doc = render.build_document(s)["derived"]["runtime"]
    assert doc["route"] == "sysroot" and doc["floor"]["glibc"] == "2.31"
    assert "outside the recipe's range 12-13" in doc["why"]
    env = dict(s.configure_env)
    assert env["PYTHON_BIN_PATH"] == "/usr/local/bin/tfforge-python3.9"
    assert env["GCC_HOST_COMPILER_PATH"] == "/usr/local/bin/tfforge-cc"
    text = render.dockerfile(s)
    assert "FROM local/bullseye:base AS sysroot" in text
    assert "-nostdinc++ -isystem /opt/tfforge/sysroot/usr/include/c++/10" in text
    assert "COPY --from=sysroot /etc/tfforge-sysroot.lock /sysroot.lock" in text
    # what render says this build links against, beside the release's own route
    linked = [d for d in s.official_route["differences"] if "this build links against" in d]
    assert linked and "links against a bullseye sysroot (glibc 2.31, GLIBCXX_3.4.28)" in linked[0]


def test_no_floor_and_base_route():
    plain = make_spec(runtime_floor="none")
    assert plain.floor is None and "AS sysroot" not in render.dockerfile(plain)
    base = make_spec(runtime_floor="bookworm", python_version="3.11")
    assert base.floor.route == "base" and "AS sysroot" not in render.dockerfile(base)
    said = " ".join(base.official_route["differences"])
    assert "own glibc and libstdc++, within the bookworm floor (glibc 2.36" in said
    assert "within the" not in " ".join(plain.official_route["differences"])
    # trixie is newer than bookworm: a bookworm image is within it
    assert make_spec(runtime_floor="trixie", python_version="3.11").floor.route == "base"
    with pytest.raises(ConfigError, match="not a known runtime floor"):
        make_spec(runtime_floor="buster")


def test_auto_floor_from_host_snapshots():
    s = make_spec(target="", hosts=[str(BULLSEYE), str(BOOKWORM)], runtime_floor="auto")
    assert s.floor.floor.name == "bullseye" and s.floor.hosts == ("bullseye-host", "bookworm-host")
    raw = make_spec(target="", hosts=[str(FIXTURES / "cpuinfo" / "haswell-i7-4770.cpuinfo")])
    assert raw.floor is None


def test_runtime_floor_is_one_option_with_its_origin(tmp_path):
    """--runtime-floor, TFFORGE_RUNTIME_FLOOR and tfforge.toml's runtime_floor: one option, one
    refusal naming where the value came from, exit 2 and nothing rendered."""
    with pytest.raises(ConfigError, match=r"^--runtime-floor 'buster': not a known") as exc:
        make_spec(runtime_floor="buster")
    assert exc.value.option == "runtime_floor" and exc.value.origin.kind == "flag"
    (tmp_path / "tfforge.toml").write_text('[tfforge]\nruntime_floor = "bullseye"\n')
    proc = conftest.run_cli(
        "render",
        "--target",
        "x86-64-v2",
        "--tf-version",
        "2.20.0",
        "--python-version",
        "3.9",
        "--json",
        cwd=tmp_path,
        env={"TFFORGE_ROOT": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    runtime = json.loads(proc.stdout)["build"]["derived"]["runtime"]
    assert runtime["floor"]["suite"] == "bullseye" and runtime["route"] == "sysroot"
    bad = conftest.run_cli(
        "render",
        "--target",
        "haswell",
        cwd=tmp_path,
        env={"TFFORGE_ROOT": str(tmp_path), "TFFORGE_RUNTIME_FLOOR": "nope"},
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: TFFORGE_RUNTIME_FLOOR 'nope': not a known runtime floor; known: bullseye, "
        "bookworm, trixie (or auto: the --host snapshots', none: the base image's)"
    ]
    assert sorted(p.name for p in (tmp_path / "builds").iterdir()) == [
        Path(json.loads(proc.stdout)["build_dir"]).name
    ]


def test_match_reports_the_runtime_for_the_release_asked_for():
    """match --tf-version (the tf_version option render and build read): the fleet's oldest
    runtime, the floor, one build per Python, and the hosts the release cannot serve."""
    proc = conftest.run_cli("match", str(HOSTS), "--tf-version", "2.20.0", "--json")
    assert proc.returncode == 0, proc.stderr
    rt = json.loads(proc.stdout)["runtime"]
    assert rt["tf_version"] == "2.20.0" and rt["floor"]["suite"] == "bullseye"
    assert rt["oldest_glibc"] == {"value": "2.31", "host": "bullseye-host"}
    assert [(b["python"], b["hosts"]) for b in rt["builds"]] == [
        ("3.9", ["bullseye-host"]),
        ("3.11", ["bookworm-host"]),
    ]
    assert all(b["build_args"][-2:] == ["--runtime-floor", "bullseye"] for b in rt["builds"])
    assert "qemu-haswell" in rt["unknown"] and rt["refused"] == []
    newer = conftest.run_cli("match", str(HOSTS), "--json", env={"TFFORGE_TF_VERSION": "2.21.0"})
    refused = json.loads(newer.stdout)["runtime"]["refused"]
    assert [r["name"] for r in refused] == ["bullseye-host"] and "3.9" in refused[0]["why"]


def test_a_kit_refuses_a_sysroot_build_saying_why(tmp_path):
    """Kits carry the base image's packages, not a sysroot's: capture refuses, writing nothing."""
    from tfforge.kit import capture

    builds = tmp_path / "builds"
    r = render.render(make_spec(runtime_floor="bullseye"), builds)
    (r.path / "provenance.json").write_text("{}")
    (r.path / "apt.lock").write_text("")
    with pytest.raises(ConfigError, match="bullseye sysroot, whose packages a kit does not carry"):
        capture.capture(r.build_id, builds_dir=builds, kits_dir=tmp_path / "kits", timeout_s=60)
    assert not (tmp_path / "kits").exists()


# ---- per-host verdicts -----------------------------------------------------------------------
def test_verdict_names_the_versions_an_old_host_lacks(fixture_wheel):
    tags = parse_wheel_filename(fixture_wheel.name)[3]
    _, verdict_list = verdicts.runtime_check(
        fixture_wheel, tags, [cpu.load_host(BULLSEYE), cpu.load_host(BOOKWORM)]
    )
    bull, book = verdict_list
    assert book.status == verdicts.LOADS and book.reasons == ()  # built here, on bookworm
    why = " ".join(bull.reasons)
    assert bull.status == verdicts.CANNOT
    for version in ("GLIBC_2.34", "GLIBCXX_3.4.29", "CXXABI_1.3.13", "CPython 3.11"):
        assert version in why, why


def test_verdict_unknown_without_runtime(fixture_wheel):
    raw = cpu.load_host(FIXTURES / "cpuinfo" / "haswell-i7-4770.cpuinfo")
    tags = parse_wheel_filename(fixture_wheel.name)[3]
    check, (v,) = verdicts.runtime_check(fixture_wheel, tags, [raw])
    assert v.status == verdicts.UNKNOWN and check.status == "skip"


def test_symvers_reads_every_elf_member_whatever_its_name(fixture_wheel, tmp_path):
    data = zipfile.ZipFile(fixture_wheel).read("demo/libloader.so")
    odd = make_wheel(tmp_path, files={"demo/data.bin": data, "demo/notes.txt": b"x" * 100})
    needs, errors = symvers.wheel_needs(odd)
    assert [n.member for n in needs] == ["demo/data.bin"] and not errors
    assert "GLIBC_2.34" in dict(needs[0].versions)["libc.so.6"]


# ---- manylinux tags ------------------------------------------------------------------------
def test_auditwheel_decides_and_finalize_tags_truthfully(fixture_wheel, tmp_path):
    decision = manylinux.decide(fixture_wheel)
    assert decision.manylinux and decision.glibc is not None
    assert tuple(map(int, decision.glibc.split("."))) >= (2, 34)  # dlopen from glibc 2.34+
    out = tmp_path / "out"
    out.mkdir()
    final = edit.finalize(
        fixture_wheel, out, local_version="x86.64.v2", provenance={}, platforms=decision.tags
    )
    assert manylinux.platform_of(final.name) == decision.tags
    wheel_text = zipfile.ZipFile(final).read("demo-1.0+x86.64.v2.dist-info/WHEEL").decode()
    assert f"Tag: cp311-cp311-{decision.tag}" in wheel_text and "linux_x86_64" not in wheel_text
    assert manylinux.check_agrees(final, decision).tag == decision.tag
    lying = final.with_name(final.name.replace(decision.tag, "manylinux_2_17_x86_64"))
    final.rename(lying)
    with pytest.raises(Exception, match="auditwheel says"):
        manylinux.check_agrees(lying, decision)


def test_a_wheel_without_libraries_keeps_its_tag(tmp_path):
    """auditwheel refuses a wheel with no ELF member; the build keeps the wheel's own tag and
    says why, and the check after finalize agrees."""
    raw = tmp_path / "demo-1.0-cp311-cp311-linux_x86_64.whl"
    files = {
        "demo/__init__.py": b"",
        "demo/kernels.txt": b"not a library",
        "demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
        "demo-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n"
        ),
    }
    rows = [
        f"{name},sha256={urlsafe_b64encode(sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    with zipfile.ZipFile(raw, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("demo-1.0.dist-info/RECORD", "\n".join([*rows, "demo-1.0.dist-info/RECORD,,"]))
    decision = manylinux.decide(raw)
    assert decision.tags == ("linux_x86_64",) and "no ELF library" in decision.why
    out = tmp_path / "out"
    out.mkdir()
    final = edit.finalize(
        raw, out, local_version="x86.64.v3", provenance={}, platforms=decision.tags
    )
    assert manylinux.check_agrees(final, decision).tag == "linux_x86_64"


def test_external_library_gets_linux_tag_said_why():
    doc = {
        "version": 1,
        "pure": False,
        "overall_tag": "linux_x86_64",
        "sym_tag": "manylinux_2_17_x86_64",
        "versioned_symbols": {"libc.so.6": ["GLIBC_2.2.5"]},
        "external_libs": {"libfoo.so.1": None},
    }
    d = manylinux.from_show(doc)
    assert d.tag == "linux_x86_64" and not d.manylinux and "libfoo.so.1" in d.why
    legacy = manylinux.from_show(
        {**doc, "overall_tag": "manylinux_2_17_x86_64", "external_libs": {}}
    )
    assert legacy.tags == ("manylinux_2_17_x86_64", "manylinux2014_x86_64")


platforms = st.lists(
    st.from_regex(r"manylinux_2_[0-9]{1,2}_x86_64", fullmatch=True),
    min_size=1,
    max_size=3,
    unique=True,
)


@HYPO
@given(
    plats=platforms,
    pairs=st.lists(
        st.sampled_from(["cp39-cp39", "cp311-cp311", "py3-none"]), min_size=1, max_size=3
    ),
)
def test_rewritten_wheel_file_has_one_tag_line_per_pair_and_platform(plats, pairs):
    text = "Wheel-Version: 1.0\nGenerator: x\n" + "".join(f"Tag: {p}-linux_x86_64\n" for p in pairs)
    out = edit._rewrite_wheel(text.encode(), tuple(plats)).decode()
    tags = [line[5:] for line in out.splitlines() if line.startswith("Tag: ")]
    assert tags == [f"{p}-{q}" for p in dict.fromkeys(pairs) for q in plats]
    assert out.startswith("Wheel-Version: 1.0\nGenerator: x\n")


def test_capture_script_runs_under_the_oldest_python_here(tmp_path):
    """The script fleet hosts run needs only a Python 3.6 standard library."""
    import glob

    old = sorted(glob.glob("/root/.pyenv/versions/3.6*/bin/python3.6")) or sorted(
        glob.glob("/usr/bin/python3.[6-8]")
    )
    if not old:
        pytest.skip("no Python 3.6-3.8 on this machine")
    proc = subprocess.run(
        [old[0], "-c", host_runtime.capture_script()], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    host = cpu._from_json(json.loads(proc.stdout), "old.json", "old")
    assert host.runtime.glibc == cpu.detect_host().runtime.glibc


def test_verify_reads_the_elf_facts_once_with_the_same_answer(fixture_wheel, tmp_path):
    """The built-with facts and needs verify collects from the scan pass's extracted files are
    exactly what a separate read of the wheel finds (members in the archive's order, an ELF
    under a non-library name included), so verify need not read the wheel three times."""
    from tfforge.verify.wheelscan import ElfFacts, scan_wheel
    from tfforge.wheel import builtwith

    zf = zipfile.ZipFile(fixture_wheel)
    files = {n: zf.read(n) for n in zf.namelist() if ".dist-info/" not in n}
    files["demo/kernels.bin"] = files["demo/libloader.so"]
    files["demo/tiny.so"] = b"\x7fELF" + b"\0" * 20  # an ELF too short to read
    files["demo/broken.so"] = b"\x7fELF\x02\x01" + b"\xff" * 200  # a damaged one
    wheel = make_wheel(tmp_path, tag="cp311-cp311-linux_x86_64", files=files)
    elf = ElfFacts()
    scan_wheel(wheel, jobs=1, use_cache=False, elf_facts=elf)
    assert elf.complete
    assert builtwith.BuiltWith(tuple(elf.builds)) == builtwith.read_wheel(wheel)
    assert (elf.needs, elf.errors) == symvers.wheel_needs(wheel)
    assert {b.member for b in elf.builds} >= {"demo/kernels.bin", "demo/libfuture.so"}
    assert any(b.member == "demo/broken.so" and b.error for b in elf.builds)
