"""verify against reality on real PyPI wheels nobody here built (tfforge/data/corpus.toml):
each wheel's static verdict for this host must match whether its probe really runs here, and
under qemu the runs on the models just below and at its baseline must go as predicted.
Intel's AVX-512 wheel must verify on AVX-512 host snapshots and not on Haswell."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, need, need_tool

from tfforge.host import cpu
from tfforge.verify import answers, corpus
from tfforge.verify.wheelscan import scan_wheel
from tfforge.wheel import fetch as pypi

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import corpus_table

INTEL = "intel-tensorflow-avx512==2.14.0"


def _fetch(pin: str) -> Path:
    try:
        return pypi.fetch(pin)
    except Exception as exc:  # noqa: BLE001 - reported through need()
        need(False, f"cannot fetch {pin} from PyPI: {exc}")


@pytest.fixture(scope="module")
def rows() -> list[corpus.CorpusRow]:
    need_tool("qemu-x86_64")
    host = cpu.detect_host()
    out = []
    for pin in corpus.corpus()[0]:
        out.append(corpus.check(_fetch(pin), pin, host=host, jobs=2, timeout=900))
    print("\n" + corpus_table.markdown(out, host))
    return out


@pytest.mark.integration
def test_corpus_has_the_wheels_the_issue_names():
    pins = corpus.corpus()[0]
    assert {
        "tensorflow-cpu==2.14.1",
        "tensorflow-cpu==2.16.1",
        "tensorflow-cpu==2.21.0",
        INTEL,
    } <= set(pins)
    assert len([p for p in pins if "tensorflow" not in p]) >= 2


@pytest.mark.integration
def test_static_verdict_agrees_with_real_runs(rows):
    bad = [(r.pin, run) for r in rows for run in r.runs if run.agrees is False]
    table = corpus_table.markdown(rows, cpu.detect_host())
    assert not bad, f"verify disagrees with reality:\n{table}"
    for r in rows:
        here = r.runs[0]
        assert here.where == "this host" and here.agrees is True, table
        # at least one emulated run that really confirmed or settled the answer (qemu could
        # execute what the real CPU would)
        assert any(run.agrees is True or run.settled for run in r.runs[1:]), table
        for run in r.runs[1:]:
            if run.settled:  # settled by a run: it says what really happened
                assert run.settled == ("runs" if run.ran else "cannot run"), table


@pytest.mark.integration
def test_avx512_wheel_is_not_confirmable_under_qemu(rows):
    intel = next(r for r in rows if r.pin == INTEL)
    assert {"avx512f", "avx512bw"} <= set(intel.baseline)
    assert not {"xop", "rtm"} & set(intel.baseline)  # dispatched, not required
    runs = {r.where: r for r in intel.runs}
    skylake = runs["qemu Skylake-Client"]  # lacks AVX-512: traps
    assert skylake.agrees is True or skylake.settled == "cannot run"
    beyond = runs["qemu Icelake-Server"]
    assert beyond.agrees is None and "avx512f" in beyond.detail


@pytest.mark.integration
def test_avx512_wheel_on_host_snapshots():
    n = answers.needs(scan_wheel(_fetch(INTEL), jobs=2)[1])
    hosts = [
        cpu.load_host(FIXTURES / "hosts" / "skylake-sp-8175m.json"),
        cpu.load_host(FIXTURES / "cpuinfo" / "zen4-epyc-9r14.cpuinfo"),
        cpu.load_host(FIXTURES / "hosts" / "qemu-haswell.json"),
    ]
    v = {h.name: h for h in answers.host_verdicts(hosts, n)}
    assert v["skylake-sp-8175m"].ok and v["zen4-epyc-9r14"].ok
    haswell = v["qemu-haswell"]
    assert not haswell.ok and "avx512f" in haswell.missing + haswell.unsettled
