"""Host detection, snapshots and fleet matching over real /proc/cpuinfo texts of 8+ CPUs."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, invoke

from tfforge.commands import detect as report
from tfforge.commands import match as match_cmd
from tfforge.errors import ConfigError
from tfforge.host import cpu, fleet, isa

CPUS = FIXTURES / "cpuinfo"
GCC = "12.2.0"


# The reference fixture per CPU family (tests/fixtures/cpuinfo/SOURCES.md says where each is from).
FILES = {
    "atom": "atom-c2750",
    "sandybridge": "sandybridge-e5-2670",
    "haswell": "haswell-i7-4770",
    "haswell-ec2": "haswell-e5-2676v3",
    "skylake-sp": "skylake-sp-8175m",
    "icelake": "icelake-gold-6326",
    "icelake-masked": "icelake-8370c-azure-masked",
    "sapphirerapids": "sapphirerapids-8480c",
    "spr-noamx": "sapphirerapids-silver4510-vm-noamx",
    "zen2": "zen2-epyc-7742",
    "zen4": "zen4-epyc-9r14",
    "aarch64": "aarch64-neoverse-n1",
}


def path_of(key: str) -> Path:
    return CPUS / f"{FILES[key]}.cpuinfo"


def host(key: str) -> cpu.HostProfile:
    return cpu.load_host(path_of(key))


# (fixture, archspec microarchitecture, psABI level, recommended target for GCC 12.2)
EXPECTED = [
    ("atom", "westmere", 2, "westmere"),
    ("sandybridge", "sandybridge", 2, "sandybridge"),
    ("haswell", "haswell", 3, "haswell"),
    ("skylake-sp", "skylake_avx512", 4, "skylake_avx512"),
    ("icelake", "icelake", 4, "icelake"),
    ("sapphirerapids", "sapphirerapids", 4, "sapphirerapids"),
    # A Zen 2 guest whose hypervisor hides CLZERO: archspec (rightly) cannot call it zen2.
    ("zen2", "x86_64_v3", 3, "x86_64_v3"),
    ("zen4", "zen4", 4, "zen4"),
]


@pytest.mark.parametrize("stem,uarch,level,recommended", EXPECTED)
def test_microarchitecture_level_and_recommendation(stem, uarch, level, recommended):
    h = host(stem)
    doc = report.host_report(h, GCC)
    assert doc["microarchitecture"] == uarch
    assert doc["psabi_level"] == isa.level_name(level)
    assert doc["recommended"]["target"] == recommended
    flags = doc["recommended"]["flags"]
    assert flags.startswith("-march=")
    # The explicit --copt list names only features the host really has.
    for copt in doc["recommended"]["copts"]:
        feat = next(f.name for f in isa.features().values() if f"--copt={f.gcc_flag}" == copt)
        assert feat in h.features, (copt, stem)


def test_feature_presence_matches_the_cpu_generation():
    assert "avx" not in host("atom").features
    assert {"avx"} <= host("sandybridge").features and not {"f16c", "avx2"} & host(
        "sandybridge"
    ).features
    assert {"avx2", "fma", "bmi2"} <= host("haswell").features
    sk = host("skylake-sp").features
    assert {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= sk
    assert "avx512_vnni" not in sk
    assert "avx512_vnni" in host("icelake").features and "amx_tile" not in host("icelake").features
    assert {"amx_tile", "amx_int8", "amx_bf16", "avx512_fp16", "avx512_bf16"} <= host(
        "sapphirerapids"
    ).features
    assert "avx512f" not in host("zen2").features
    assert {"avx512f", "avx512_bf16"} <= host("zen4").features


def test_zen4_flags_follow_the_gcc_version():
    # GCC 12.2 has no -march=znver4: archspec gives znver3 plus the AVX-512 flags; 13+ znver4.
    flags = report.host_report(host("zen4"), "12.2.0")["recommended"]["flags"]
    assert flags.startswith("-march=znver3") and "-mavx512f" in flags
    assert report.host_report(host("zen4"), "13.2.0")["recommended"]["flags"].startswith(
        "-march=znver4"
    )
    # GCC 9.4 cannot target zen4 at all: refused with archspec's reason, next best chosen.
    doc = report.host_report(host("zen4"), "9.4.0")
    assert doc["recommended"]["target"] == "x86_64_v4"
    assert any(r.startswith("zen4:") and "gcc@9.4" in r for r in doc["recommended"]["refused"])


def test_old_gcc_refuses_new_march_and_steps_down():
    t = fleet.best_target([host("sapphirerapids")], "9.4.0")
    assert t.name == "icelake" and "-march=icelake-client" in t.flags
    assert any(s.startswith("sapphirerapids:") for s in t.skipped)


def test_topology_from_processor_blocks():
    sb = host("sandybridge")
    assert sb.logical_cpus >= 2 and sb.physical_cores >= 1
    sk = host("skylake-sp")
    assert sk.logical_cpus == 2 and sk.physical_cores == 1  # two hyperthreads of one core
    hw = host("haswell")
    assert hw.logical_cpus == 8 and hw.physical_cores == 4


def test_masked_guests_are_judged_by_flags_not_model_name():
    # An Ice Lake whose hypervisor hides VNNI/VBMI looks like Skylake-SP; an SPR guest without
    # AMX is no sapphirerapids target.
    masked = host("icelake-masked")
    assert report.host_report(masked, GCC)["microarchitecture"] == "x86_64_v4"
    assert "avx512_vnni" in fleet.why_not(fleet.target("icelake", GCC), masked)
    assert fleet.why_not(fleet.target("sapphirerapids", GCC), host("spr-noamx")) == (
        "missing amx_tile, amx_int8, amx_bf16"
    )
    assert fleet.best_target([host("spr-noamx")], GCC).name == "icelake"


@pytest.mark.parametrize(
    "stems,best",
    [
        (["haswell", "skylake-sp", "sapphirerapids"], "haswell"),
        (["skylake-sp", "sapphirerapids"], "skylake_avx512"),
        (["icelake", "sapphirerapids"], "icelake"),
        (["sandybridge", "haswell"], "sandybridge"),
        (["sapphirerapids", "zen4"], "x86_64_v4"),  # mixed vendors: generic targets only
        (["atom", "sandybridge", "zen2"], "x86_64_v2"),
        (["haswell", "zen2"], "x86_64_v3"),
    ],
)
def test_fleet_best_common_target(stems, best):
    hosts = [host(s) for s in stems]
    t = fleet.best_target(hosts, GCC)
    assert t.name == best
    assert all(fleet.runs_on(t, h) for h in hosts)
    assert t.features <= fleet.common_features(hosts)


def test_match_table_explains_refusals():
    hosts = [host(s) for s in ("haswell", "skylake-sp", "zen2")]
    doc = match_cmd.match_report(hosts, GCC)
    rows = {r["name"]: r for r in doc["candidates"]}
    assert doc["best"]["name"] == "x86_64_v3"
    assert sorted(rows["x86_64_v4"]["runs_on"]) == sorted([hosts[1].name])
    assert "avx512f" in rows["x86_64_v4"]["missing"][hosts[0].name]
    assert "vendor" in rows["haswell"]["missing"][hosts[2].name]
    assert rows["zen2"]["missing"][hosts[2].name] == "missing clzero"


def test_snapshot_roundtrip(tmp_path):
    h = host("icelake")
    saved = cpu.save_host(h, tmp_path / "hosts" / "ice.json")
    back = cpu.load_host(saved)
    assert back.features == h.features and back.vendor == h.vendor
    assert back.model_name == h.model_name and back.physical_cores == h.physical_cores


def test_aarch64_is_stated_not_crashed():
    path = path_of("aarch64")
    doc = report.host_report(cpu.load_host(path), GCC)
    assert doc["x86"] is False and "do not apply" in doc["note"]
    with pytest.raises(ConfigError, match="x86 ISA targets do not apply"):
        fleet.best_target([cpu.load_host(path)], GCC)


def test_this_host_matches_proc_cpuinfo():
    here = cpu.detect_host()
    text = Path("/proc/cpuinfo").read_text()
    if here.is_x86:
        assert here.features == cpu.parse_cpuinfo(text, name="x", source="p").features
        assert here.logical_cpus >= 1


# ---- the command line -------------------------------------------------------------------


def one_line_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_cli_detect_json_and_save(tmp_path):
    src = path_of("haswell")
    out = tmp_path / "hosts" / "web-1.json"
    proc = invoke("detect", "--json", "--cpuinfo", str(src), "--save", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["microarchitecture"] == "haswell" and doc["saved"] == str(out)
    assert json.loads(out.read_text())["schema"] == cpu.SCHEMA


def test_cli_detect_this_host():
    proc = invoke("detect", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["host"]["logical_cpus"] >= 1 and "tensorflow" in doc
    if doc["x86"]:
        assert doc["psabi_level"].startswith("x86-64-v")


def test_cli_match_folder_table_and_json(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.mkdir()
    for stem in ("haswell", "skylake-sp"):
        src = path_of(stem)
        shutil.copy(src, hosts / f"{stem}.cpuinfo")
    proc = invoke("match", str(hosts), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "best common target: haswell" in proc.stdout
    proc = invoke("match", "--json", f"{hosts}/*.cpuinfo", cwd=tmp_path)
    assert json.loads(proc.stdout)["best"]["name"] == "haswell"


def test_cli_match_require(tmp_path):
    a, b = (str(path_of(s)) for s in ("icelake", "skylake-sp"))
    proc = invoke("match", f"{a},{b}", "--require", "avx512_vnni", cwd=tmp_path)
    assert proc.returncode == 1 and "lacks avx512_vnni" in proc.stderr
    proc = invoke("match", a, "--require", "avx512vnni", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    one_line_error(
        invoke("match", a, "--require", "avx9000", cwd=tmp_path),
        "unknown ISA feature 'avx9000'",
        "valid:",
        "avx512_vnni",
    )


def test_cli_bad_inputs(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    one_line_error(invoke("match", str(empty), cwd=tmp_path), str(empty), "empty")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "tfforge-host/1", "flags": ["avx"')
    one_line_error(invoke("match", str(bad), cwd=tmp_path), str(bad), "malformed JSON")
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    one_line_error(invoke("match", str(other), cwd=tmp_path), str(other), "not a tfforge host")
    badfeat = tmp_path / "feat.json"
    badfeat.write_text(
        json.dumps({"schema": cpu.SCHEMA, "flags": ["avx"], "features": ["avx", "hyperdrive"]})
    )
    one_line_error(invoke("match", str(badfeat), cwd=tmp_path), "'hyperdrive'", "valid:")
    noflags = tmp_path / "noflags.cpuinfo"
    noflags.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: X\n")
    one_line_error(invoke("detect", "--cpuinfo", str(noflags), cwd=tmp_path), "no 'flags' line")
    mixed = tmp_path / "mixed.cpuinfo"
    mixed.write_text(path_of("sandybridge").read_text() + "\n\n" + path_of("zen2").read_text())
    one_line_error(invoke("detect", "--cpuinfo", str(mixed), cwd=tmp_path), "several vendors")
    hw = str(path_of("haswell"))
    one_line_error(invoke("match", f"{hw},{hw}", cwd=tmp_path), "duplicated host")
    one_line_error(invoke("match", str(tmp_path / "nope.json"), cwd=tmp_path), "no such file")
    arm = str(path_of("aarch64"))
    one_line_error(invoke("match", f"{hw},{arm}", cwd=tmp_path), "x86 ISA targets do not apply")
    one_line_error(
        invoke("detect", "--save", str(tmp_path / "x.txt"), "--no-tf", cwd=tmp_path),
        "use a name ending in .json",
    )
    assert not (tmp_path / "x.txt").exists()
