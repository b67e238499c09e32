"""Emulated runs beside verify's static answers: the wheel's probe on this host (the witness)
and under each qemu model, each run confirming, contradicting or settling the static answer
for that model, and the hosts whose answer such a run settles."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from tfforge.errors import ConfigError, InternalError, TfforgeError
from tfforge.host import cpu
from tfforge.verify import emulate, modules
from tfforge.verify.answers import (
    CANNOT,
    RUNS,
    UNDECIDED,
    EmulationVerdict,
    HostVerdict,
    WheelNeeds,
    host_has,
    host_verdict,
    judge_run,
    same_answer_as,
)
from tfforge.verify.wheelcheck import FAIL, PASS, SKIP, Check
from tfforge.wheel import read as wheel


def settle(
    hosts: list[cpu.HostProfile],
    verdicts: list[HostVerdict],
    ems: list[EmulationVerdict],
    n: WheelNeeds,
) -> list[HostVerdict]:
    """Undecided hosts settled by an emulated run under a model that has and lacks the same
    features among those ordinary code uses."""
    out = []
    for host, v in zip(hosts, verdicts, strict=True):
        run = next(
            (
                e
                for e in ems
                if v.answer == UNDECIDED and e.confirmable and same_answer_as(n, host, e.offered)
            ),
            None,
        )
        out.append(
            dataclasses.replace(v, answer=run.answer, settled_by=run.result.model) if run else v
        )
    return out


def run_emulations(
    wheel_path: Path,
    facts: wheel.WheelFacts,
    models: list[str],
    n: WheelNeeds,
    *,
    timeout: float,
    status: Callable[[str], None],
) -> tuple[list[EmulationVerdict], str]:
    """The wheel's probe on this host (the witness), then under each qemu model."""
    from tfforge.runtime import venvs

    probe = modules.probe_for(wheel_path, facts)
    script, what = probe.script, probe.what
    status(f"installing {facts.filename} into its venv for emulation (cached by sha256)")
    try:
        py = venvs.venv_python(wheel_path)
    except ConfigError:
        raise
    except TfforgeError as exc:
        raise InternalError(
            f"--emulate could not install the wheel, so nothing ran: {exc}"
        ) from exc
    status(f"running {what} on this host first (the witness)")
    native = emulate.run_probe([], py, "this host", script=script, timeout=timeout)
    witness = native.status == "pass"
    if not witness:
        status(f"{what} fails on this host too ({native.status}): runs under qemu show nothing")
    out = []
    for model in models:
        offered = host_has(emulate.model_host(model))
        static = host_verdict(emulate.model_host(model), n)
        lost = emulate.unexecutable(model, n.baseline, offered)
        status(f"running {what} under qemu-x86_64 -cpu {model} ...")
        res = emulate.run(py, model, script=script, timeout=timeout)
        out.append(judge_run(res, static, offered, lost, witness, workload=probe.workload))
        status(
            f"qemu {model}: {res.status}{' ' + res.signal if res.signal else ''} "
            f"after {res.seconds:.0f} s"
        )
    return out, what


def emulation_check(ems: list[EmulationVerdict], probe: str) -> Check:
    """The emulated runs: each compared with the model's static answer, or settling it."""
    details = []
    for e in ems:
        r = e.result
        what = {
            "pass": "passed",
            "signal": f"killed by {r.signal}",
            "failed": "failed",
            "timeout": "timed out",
        }[r.status]
        at = f" at stage '{r.stage}'" if r.stage and r.status != "pass" else ""
        where = f" ({r.where})" if r.where else ""
        static = e.static.answer + (
            f" (lacks {', '.join(e.static.missing or e.static.unsettled)})"
            if e.static.answer != RUNS
            else ""
        )
        if e.unexecutable:
            said = (
                f"not confirmable under qemu: the real CPU has {', '.join(e.unexecutable)}, "
                "which qemu-user cannot execute"
            )
        elif not e.witness:
            said = "shows nothing: the probe fails on this host too"
        elif not e.confirmable and r.status == "pass":
            said = (
                "shows nothing: only the import ran (no workload is known for this wheel), and "
                "code it runs later may need what the model lacks; the answer stays undecided"
            )
        elif not e.confirmable:
            said = "shows nothing: timed out"
        elif e.settled:
            said = f"settles the static answer '{static}': {e.answer}"
        else:
            said = f"static answer '{static}'" + (" agrees" if e.agrees else " - DISAGREES")
        details.append(f"{r.model}: {probe} {what}{at}{where} in {r.seconds:.0f} s; {said}")
    judged = [e for e in ems if e.confirmable]
    disagree = [e for e in judged if e.agrees is False]
    cannot = [e for e in judged if e.answer == CANNOT]

    def first(e: EmulationVerdict) -> tuple[str, ...]:  # the summary's run first
        i = ems.index(e)
        return (details[i], *details[:i], *details[i + 1 :])

    if disagree:
        return Check(
            "emulate",
            FAIL,
            "an emulated run and the static answer disagree: " + details[ems.index(disagree[0])],
            first(disagree[0]),
        )
    if cannot:
        return Check("emulate", FAIL, details[ems.index(cannot[0])], first(cannot[0]))
    if not judged:
        return Check("emulate", SKIP, "; ".join(details), tuple(details))
    return Check("emulate", PASS, "; ".join(details), tuple(details))
