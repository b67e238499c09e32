"""`invoke verify`: the verdict and its exit codes, on wheels built here around gcc-compiled
libraries, and (integration) on the stock tensorflow-cpu 2.21.0 wheel from PyPI, checked
against host snapshots and confirmed by running it under qemu as older CPUs."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import elf_samples as samples
import pytest
from conftest import FIXTURES, invoke, need_tool
from conftest import checks_by_name as checks

from tfforge.commands import verify as verify_cmd
from tfforge.host import cpu, isa
from tfforge.verify import answers, settling, wheelcheck
from tfforge.wheel import edit as wheel_edit

HOSTS = FIXTURES / "hosts"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


# ---- pure functions --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "label,claimed,other",
    [
        ("avx2.fma", {"avx2", "fma"}, []),
        ("avx2.fma.mkl", {"avx2", "fma"}, ["mkl"]),
        ("avx512.vnni", {"avx512_vnni"}, []),  # PEP 440 turned avx512_vnni into this
        ("x86.64.v3", {"avx2", "fma"}, []),  # psABI level: its vector features
        ("haswell", {"avx2", "fma"}, []),  # archspec target
        ("skylake.avx512", {"avx512f"}, []),
        ("generic.mkl", set(), ["generic", "mkl"]),
    ],
)
def test_claimed_features(label, claimed, other):
    assert wheelcheck.claimed_features(label) == (frozenset(claimed), other)


def test_manylinux_promise():
    from packaging.tags import parse_tag

    tags = lambda s: set(parse_tag(s))  # noqa: E731
    assert wheelcheck.manylinux_glibc(tags("cp311-cp311-manylinux_2_27_x86_64")) == (2, 27)
    assert wheelcheck.manylinux_glibc(tags("cp311-cp311-manylinux2014_x86_64")) == (2, 17)
    assert wheelcheck.manylinux_glibc(
        tags("cp311-cp311-manylinux_2_17_x86_64.manylinux_2_28_x86_64")
    ) == (2, 17)
    assert wheelcheck.manylinux_glibc(tags("cp311-cp311-linux_x86_64")) is None


def test_three_answers_from_the_classes():
    sandy = cpu.load_host(HOSTS / "qemu-sandybridge.json")
    ivy = cpu.load_host(HOSTS / "qemu-ivybridge.json")
    haswell = cpu.load_host(HOSTS / "qemu-haswell.json")
    nehalem = cpu.load_host(HOSTS / "qemu-nehalem.json")
    n = answers.WheelNeeds(
        required=frozenset({"avx"}),
        unguarded=frozenset({"f16c"}),
        dispatched=frozenset({"avx2", "avx512f"}),
    )
    v = {h.name: h for h in answers.host_verdicts([nehalem, sandy, ivy, haswell], n)}
    assert (v["qemu-nehalem"].answer, v["qemu-nehalem"].missing) == ("cannot run", ("avx",))
    assert (v["qemu-sandybridge"].answer, v["qemu-sandybridge"].unsettled) == (
        "undecided",
        ("f16c",),
    )
    assert v["qemu-ivybridge"].answer == "runs" and v["qemu-ivybridge"].missing_dispatched == (
        "avx2",
        "avx512f",
    )
    assert v["qemu-haswell"].ok and v["qemu-haswell"].missing_dispatched == ("avx512f",)


def test_flags_outside_the_build_vocabulary_count_for_a_host():
    # rtm and 3dnowprefetch are kernel flags isa.toml does not name: a host listing them has
    # them (they used to be iced:RTM / iced:PREFETCHW, which no host could satisfy)
    host = cpu.parse_cpuinfo(
        "processor : 0\nvendor_id : GenuineIntel\nflags : fpu sse sse2 avx rtm 3dnowprefetch\n",
        name="h",
        source="t",
    )
    n = answers.WheelNeeds(frozenset(), frozenset({"rtm", "3dnowprefetch"}), frozenset())
    assert answers.host_verdict(host, n).answer == "runs"


def test_short_name():
    long = (
        "void tensorflow::functor::ApplyAdamNonCuda<Eigen::ThreadPoolDevice, Eigen::half>"
        "::operator()(Eigen::ThreadPoolDevice const&, Eigen::TensorMap<Eigen::Tensor<"
        "Eigen::half, 1, 1, long>, 16, Eigen::MakePointer>) const"
    )
    assert verify_cmd.short_name(long, 200) == (
        "void tensorflow::functor::ApplyAdamNonCuda<Eigen::ThreadPoolDevice, Eigen::half>::operator"
    )


# ---- the command on small wheels ---------------------------------------------------------------
@pytest.fixture(scope="module")
def libs(tmp_path_factory) -> dict[str, Path]:
    need_tool("gcc")
    d = tmp_path_factory.mktemp("vlibs")
    return {
        "O2": samples.compile_so(d, "o2", samples.KERNELS, ["-O2"]),
        "avx2fma": samples.compile_so(d, "avx2fma", samples.KERNELS, ["-O2", "-mavx2", "-mfma"]),
        "guarded": samples.compile_so(d, "guarded", samples.GUARDED, ["-O2"]),
        "glibc": samples.compile_so(d, "glibc", samples.GLIBC, ["-O2"]),
    }


def gcc_version() -> str:
    import subprocess

    return subprocess.run(
        ["gcc", "-dumpfullversion"], capture_output=True, text=True, check=True
    ).stdout.strip()


def provenance(label: str, features: list[str]) -> dict:
    return {
        "id": f"1.0-{label}-0123456789ab",
        "schema": "tfforge-build/1",
        "spec": {
            "tf_version": "1.0",
            "python_version": PY,
            "compiler": "gcc",
            "gcc_version": gcc_version(),
        },
        "derived": {
            "local_version": label,
            "version": f"1.0+{label}",
            "features": features,
            "copts": ["-mavx2", "-mfma"],
        },
    }


def tfforge_wheel(
    tmp: Path, lib: Path, label: str = "avx2.fma", record: dict | None = None
) -> Path:
    """A wheel finalized the way the build engine does it (tfforge.wheel_edit)."""
    raw = samples.make_wheel(
        tmp / "raw",
        tag=f"{TAG}-{TAG}-linux_x86_64",
        files={"demo/__init__.py": b"", "demo/libk.so": lib.read_bytes()},
    )
    out = tmp / "wheels"
    out.mkdir(exist_ok=True)
    return wheel_edit.finalize(
        raw,
        out,
        local_version=label,
        provenance=record
        or provenance(label, sorted(isa.closure(["avx2", "fma"]), key=isa.sort_key)),
    )


def run_verify(
    tmp: Path, whl: Path, *hosts: str, extra: tuple[str, ...] = (), python=PY, jobs: int = 1
):
    args = ["verify", str(whl), "--json", "--jobs", str(jobs), "--python", python]
    for h in hosts:
        args += ["--host", str(HOSTS / h)]
    proc = invoke(*args, *extra, env={"TFFORGE_CACHE": str(tmp / "cache")})
    doc = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
    return proc, doc


def test_tfforge_avx2_wheel_passes_on_haswell(tmp_path, libs):
    whl = tfforge_wheel(tmp_path, libs["avx2fma"])
    proc, doc = run_verify(tmp_path, whl, "qemu-haswell.json")
    assert proc.returncode == 0, proc.stderr
    c = checks(doc)
    assert {k: v["status"] for k, v in c.items()} == {
        "structure": "pass",
        "python": "pass",
        "manylinux": "skip",
        "provenance": "pass",
        "isa": "pass",
        "isa-note": "skip",
        "compatibility": "pass",
        "claim": "pass",
        "reproducible": "skip",
        "built-with": "pass",
        "runtime": "skip",  # the qemu-haswell snapshot records no runtime
    }
    assert c["built-with"]["summary"].startswith(f"built with GCC {gcc_version()} (")
    assert c["reproducible"]["summary"].startswith(
        "provenance is inputs-only; no rebuild recorded (run `invoke rebuild 1.0-avx2.fma-"
    )
    assert {"avx", "avx2", "fma"} <= set(doc["baseline"])
    assert "avx2 in 1 ordinary functions" in c["claim"]["summary"]
    lib = doc["libraries"][0]
    assert lib["path"] == "demo/libk.so"
    assert {f["name"]: f["examples"][0] for f in lib["features"]}["avx2"] == "add8"


def test_same_wheel_fails_on_sandybridge_naming_what_is_missing(tmp_path, libs):
    whl = tfforge_wheel(tmp_path, libs["avx2fma"])
    # two scan processes: the worker-pool path gives the same verdict
    proc, doc = run_verify(tmp_path, whl, "qemu-haswell.json", "qemu-sandybridge.json", jobs=2)
    assert proc.returncode == 1
    host = {h["name"]: h for h in doc["hosts"]}
    assert host["qemu-haswell"]["ok"] is True
    assert host["qemu-sandybridge"]["ok"] is False
    assert host["qemu-sandybridge"]["missing"] == ["fma", "avx2"]
    assert checks(doc)["compatibility"]["status"] == "fail"
    assert "compatibility" in proc.stderr and proc.stderr.count("\n") >= 1


def test_label_claims_avx2_but_code_has_none(tmp_path, libs):
    whl = tfforge_wheel(tmp_path, libs["O2"])
    proc, doc = run_verify(tmp_path, whl, "qemu-haswell.json")
    assert proc.returncode == 1
    claim = checks(doc)["claim"]
    assert claim["status"] == "fail"
    assert claim["summary"].startswith("label +avx2.fma claims fma, avx2 but no ordinary code")


def test_provenance_must_agree_with_the_label(tmp_path, libs):
    record = provenance("avx512f", ["avx512f"])  # says another build
    whl = tfforge_wheel(tmp_path, libs["avx2fma"], record=record)
    proc, doc = run_verify(tmp_path, whl, "qemu-haswell.json")
    assert proc.returncode == 1
    prov = checks(doc)["provenance"]
    assert prov["status"] == "fail"
    assert "local version 'avx512f', the wheel has 'avx2.fma'" in prov["summary"]


def test_dispatched_avx512_never_fails_a_host(tmp_path, libs):
    whl = samples.make_wheel(
        tmp_path,
        tag=f"{TAG}-{TAG}-linux_x86_64",
        files={"demo/__init__.py": b"", "demo/libg.so": libs["guarded"].read_bytes()},
    )
    proc, doc = run_verify(tmp_path, whl, "qemu-nehalem.json")
    assert proc.returncode == 0, proc.stderr
    assert doc["baseline"] == [] and "avx512f" in doc["dispatched"]
    assert doc["hosts"][0]["missing_dispatched"] == ["avx", "avx512f"]


def test_manylinux_tag_vs_glibc_symbol_versions(tmp_path, libs):
    whl = samples.make_wheel(
        tmp_path,
        tag=f"{TAG}-{TAG}-manylinux_2_17_x86_64",
        files={"demo/__init__.py": b"", "demo/libgrow.so": libs["glibc"].read_bytes()},
    )
    proc, doc = run_verify(tmp_path, whl, "qemu-nehalem.json")
    assert proc.returncode == 1
    m = checks(doc)["manylinux"]
    assert m["status"] == "fail"
    assert m["summary"] == ("tag promises glibc 2.17 but glibc 2.26 (demo/libgrow.so) is needed")


def test_python_tag_vs_interpreter(tmp_path, libs):
    whl = samples.make_wheel(tmp_path, tag="cp312-cp312-linux_x86_64")
    proc, doc = run_verify(tmp_path, whl, "qemu-nehalem.json")
    assert proc.returncode == 1 and checks(doc)["python"]["status"] == "fail"
    assert f"do not install on Python {PY}" in checks(doc)["python"]["summary"]
    proc, doc = run_verify(tmp_path, whl, "qemu-nehalem.json", python="3.12")
    assert checks(doc)["python"]["status"] == "pass"


def test_crafted_bad_wheels_through_the_command(tmp_path):
    bad_hash = samples.make_wheel(
        tmp_path / "h",
        files={"demo/__init__.py": b"x = 1\n"},
        record_override={"demo/__init__.py": "sha256=AAAA,6"},
    )
    proc, doc = run_verify(tmp_path, bad_hash, "qemu-nehalem.json")
    assert proc.returncode == 1
    assert checks(doc)["structure"]["summary"].startswith(
        "1 problem(s): RECORD hash mismatch for demo/__init__.py"
    )

    traversal = samples.make_wheel(tmp_path / "t", files={"../evil.py": b""})
    proc, doc = run_verify(tmp_path, traversal, "qemu-nehalem.json")
    assert proc.returncode == 1
    assert "unsafe member path '../evil.py'" in checks(doc)["structure"]["summary"]

    tags = samples.make_wheel(
        tmp_path / "g", tag=f"{TAG}-{TAG}-linux_x86_64", wheel_tag="cp27-cp27mu-linux_x86_64"
    )
    proc, doc = run_verify(tmp_path, tags, "qemu-nehalem.json")
    assert proc.returncode == 1
    assert "differ from WHEEL Tag lines" in checks(doc)["structure"]["summary"]

    truncated = samples.make_wheel(tmp_path / "c", files={"demo/x.py": b"y" * 4000})
    truncated.write_bytes(truncated.read_bytes()[:300])
    proc, doc = run_verify(tmp_path, truncated, "qemu-nehalem.json")
    assert proc.returncode == 2 and doc is None
    assert "truncated or damaged zip" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error:")


def test_unusable_inputs_exit_2(tmp_path):
    proc, _ = run_verify(tmp_path, tmp_path / "missing-1.0-py3-none-any.whl")
    assert proc.returncode == 2 and "not found" in proc.stderr
    whl = samples.make_wheel(tmp_path)
    proc, _ = run_verify(tmp_path, whl, "does-not-exist.json")
    assert proc.returncode == 2 and "does-not-exist.json" in proc.stderr
    need_tool("qemu-x86_64")
    proc, _ = run_verify(tmp_path, whl, "qemu-nehalem.json", extra=("--emulate", "SandyBrige"))
    assert proc.returncode == 2 and "did you mean SandyBridge" in proc.stderr


def test_rich_report_names_the_evidence(tmp_path, libs):
    whl = tfforge_wheel(tmp_path, libs["avx2fma"])
    proc = invoke(
        "verify",
        str(whl),
        "--jobs",
        "1",
        "--python",
        PY,
        "--host",
        str(HOSTS / "qemu-sandybridge.json"),
        env={"TFFORGE_CACHE": str(tmp_path / "cache"), "COLUMNS": "160"},
    )
    assert proc.returncode == 1
    out = proc.stdout
    for text in (
        "Checks",
        "compatibility",
        "FAIL",
        "AVX2",
        "baseline",
        "add8",
        "qemu-sandybridge",
        "R4 rest",
    ):
        assert text in out, text


# ---- emulation limits and the corpus's model choice (pure) ---------------------------------
def _offered(name: str) -> frozenset[str]:
    return cpu.load_host(HOSTS / f"qemu-{name}.json").features


def test_emulation_names_what_qemu_cannot_execute():
    from tfforge.verify import emulate

    haswell = _offered("haswell")
    # A real Ice Lake has AVX-512; qemu's Icelake-Server model does not execute it.
    assert emulate.unexecutable("Icelake-Server", {"avx512f", "avx2"}, haswell) == ("avx512f",)
    assert emulate.unexecutable("Icelake-Server-v4", {"avx512f"}, haswell) == ("avx512f",)
    # A real Haswell lacks AVX-512 too: a trap there confirms the verdict.
    assert emulate.unexecutable("Haswell", {"avx512f"}, haswell) == ()
    assert emulate.model_env("Nehalem") == {"OPENBLAS_CORETYPE": "NEHALEM"}


def _static(answer: str, missing=(), unsettled=()) -> answers.HostVerdict:
    return answers.HostVerdict("m", "m", "t", answer, tuple(missing), tuple(unsettled), ())


def _run(model: str, status: str, signal: str | None = None):
    from tfforge.verify import emulate

    return emulate.EmulationResult(model, status, signal, "done", None, 9.0, "")


def test_unconfirmable_emulation_is_never_a_confirmation():
    none = frozenset()
    beyond = answers.judge_run(
        _run("Icelake-Server", "signal", "SIGILL"),
        _static("cannot run", ["avx512f"]),
        none,
        ("avx512f",),
        True,
    )
    assert not beyond.confirmable and beyond.agrees is None
    check = settling.emulation_check([beyond], "import x")
    assert check.status == "skip" and "not confirmable under qemu" in check.summary
    ok = answers.judge_run(_run("Haswell", "pass"), _static("runs"), none, (), True)
    assert ok.agrees is True and settling.emulation_check([beyond, ok], "import x").status == "pass"
    false_pass = answers.judge_run(
        _run("Haswell", "signal", "SIGILL"), _static("runs"), none, (), True
    )
    assert false_pass.agrees is False
    assert settling.emulation_check([false_pass], "import x").status == "fail"
    # the probe fails on this host too: the run under qemu shows nothing about the CPU
    blind = answers.judge_run(_run("Haswell", "failed"), _static("runs"), none, (), False)
    assert not blind.confirmable


def test_emulation_settles_an_undecided_answer():
    none = frozenset()
    trap = answers.judge_run(
        _run("SandyBridge", "signal", "SIGILL"),
        _static("undecided", unsettled=["f16c"]),
        none,
        (),
        True,
    )
    assert trap.settled and trap.answer == "cannot run" and trap.agrees is None
    ran = answers.judge_run(
        _run("SandyBridge", "pass"), _static("undecided", unsettled=["f16c"]), none, (), True
    )
    assert ran.settled and ran.answer == "runs"
    assert settling.emulation_check([trap], "import x").status == "fail"
    assert settling.emulation_check([ran], "import x").status == "pass"
    # a host is settled by a model that has and lacks the same relevant features
    sandy = cpu.load_host(HOSTS / "qemu-sandybridge.json")
    haswell = cpu.load_host(HOSTS / "qemu-haswell.json")
    n = answers.WheelNeeds(frozenset({"avx"}), frozenset({"f16c"}), frozenset({"avx512f"}))
    hv = answers.host_verdicts([sandy, haswell], n)
    ran = dataclasses.replace(ran, offered=answers.host_has(sandy))
    settled = settling.settle([sandy, haswell], hv, [ran], n)
    assert settled[0].answer == "runs" and settled[0].settled_by == "SandyBridge"
    assert settled[1] == hv[1]


def test_a_passing_import_alone_settles_no_undecided_answer():
    """With no workload known, only the import runs: a pass cannot show that the unguarded
    code found runs only after a check, so undecided stays undecided; a crash in the import
    still settles it, and a pass still contradicts a static "cannot run" (load-time code)."""
    none = frozenset()
    undecided = _static("undecided", unsettled=["f16c"])
    quiet = answers.judge_run(
        _run("SandyBridge", "pass"), undecided, none, (), True, workload=False
    )
    assert not quiet.confirmable and not quiet.settled
    check = settling.emulation_check([quiet], "import x")
    assert check.status == "skip" and "only the import ran" in check.summary
    trap = answers.judge_run(
        _run("SandyBridge", "signal", "SIGILL"), undecided, none, (), True, workload=False
    )
    assert trap.settled and trap.answer == "cannot run"
    loads = answers.judge_run(
        _run("SandyBridge", "pass"), _static("cannot run", ["avx"]), none, (), True, workload=False
    )
    assert loads.agrees is False


def test_corpus_runs_just_below_and_at_the_baseline():
    from tfforge.verify import corpus

    ladder, beyond = ["Nehalem", "SandyBridge", "IvyBridge", "Haswell"], "Icelake-Server"
    offered = {m: _offered(m.lower()) for m in ladder}
    assert corpus.pick_models(frozenset({"avx", "f16c"}), offered, ladder, beyond) == [
        "SandyBridge",
        "IvyBridge",
    ]
    assert corpus.pick_models(frozenset({"pni"}), offered, ladder, beyond) == ["Nehalem"]
    assert corpus.pick_models(frozenset({"avx512f"}), offered, ladder, beyond) == [
        "Haswell",
        "Icelake-Server",
    ]
    pins = corpus.corpus()[0]
    assert "intel-tensorflow-avx512==2.14.0" in pins and len(pins) >= 6


def test_probes_exist_per_project():
    from tfforge.verify import probes

    assert probes.for_project("intel-tensorflow-avx512")[0] == probes.TENSORFLOW
    assert probes.for_project("onnxruntime")[0] == probes.ONNXRUNTIME
    assert probes.for_project("foo-bar") is None  # a distribution name is not a module name
    assert "import foo_bar\n" in probes.import_probe(["foo_bar"])
    with pytest.raises(ValueError):
        probes.import_probe(["os; import shutil"])
