"""Running a build matrix on an existing Slurm cluster: sbatch an array, follow it, collect it.

Assumes shared storage: the project folder (builds/, wheels/, the venv) is the same path on every
node, as on an NFS or Lustre home, and every node runs a Docker engine holding the base image.
Each array task runs one cell's `invoke build --json` with TFFORGE_ROOT set to the project, so
its wheel and build.log land in wheels/ and builds/<id>/ directly; the task also writes
`<results>/<cell>.json` (the build's result) and `<cell>.done` (node, exit code, seconds).
Following uses squeue (and `scontrol show job` for tasks that have left the queue); sacct needs
Slurm's accounting daemon, which small clusters often lack.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from tfforge.build import remote
from tfforge.errors import BuildError, ConfigError
from tfforge.files import read_json_record

POLL_S = 2.0


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ConfigError(
            f"{argv[0]} not found: this needs a Slurm client (apt-get install -y "
            "slurm-client) configured for your cluster (SLURM_CONF)"
        ) from None
    except subprocess.TimeoutExpired:
        raise BuildError(
            f"`{' '.join(argv[:2])}` did not answer within {timeout:g}s; is "
            "slurmctld up (scontrol ping)?"
        ) from None


def submit(script: Path) -> str:
    """Submit the array script; the job id."""
    proc = _run(["sbatch", "--parsable", str(script)])
    if proc.returncode != 0:
        why = " ".join(
            ln.removeprefix("sbatch: ").strip()
            for ln in proc.stderr.splitlines()
            if "retrying" not in ln
        )
        raise BuildError(
            f"sbatch refused {script.name}: {why[:300]}; check the Slurm "
            "client configuration (SLURM_CONF, `scontrol ping`)"
        )
    return proc.stdout.strip().split(";")[0]


def queued(job_id: str) -> dict[int, tuple[str, str]]:
    """{array task index: (state, node or reason)} of the tasks squeue still lists."""
    proc = _run(["squeue", "-h", "-r", "-j", job_id, "-o", "%K|%T|%R"])
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return {}
        raise BuildError(f"squeue failed: {proc.stderr.strip()[:300]}")
    found: dict[int, tuple[str, str]] = {}
    for line in proc.stdout.splitlines():
        index, state, where = (line.split("|") + ["", ""])[:3]
        if index.strip().isdigit():
            found[int(index)] = (state.strip(), where.strip())
    return found


def cancel(job_id: str) -> None:
    _run(["scancel", job_id])


@dataclass(frozen=True)
class CellState:
    cell: str
    state: str  # PENDING, RUNNING, COMPLETED, FAILED ...
    node: str


def states(job_id: str, cells: list[str], results: Path) -> list[CellState]:
    """Each cell's state: squeue while queued, its .done file once the task has finished."""
    live = queued(job_id)
    out = []
    for i, cell in enumerate(cells):
        done = results / f"{cell}.done"
        if done.is_file():
            doc = _done(done)
            out.append(
                CellState(cell, "COMPLETED" if doc["rc"] == 0 else "FAILED", str(doc["node"]))
            )
        elif i in live:
            out.append(CellState(cell, *live[i]))
        else:  # left the queue without a .done: killed, or the script itself failed
            out.append(CellState(cell, _scontrol_state(job_id, i), ""))
    return out


def _scontrol_state(job_id: str, index: int) -> str:
    proc = _run(["scontrol", "-o", "show", "job", f"{job_id}_{index}"])
    found = re.search(r"JobState=(\S+)", proc.stdout)
    state = found.group(1) if found else "UNKNOWN"
    return "FAILED" if state == "COMPLETED" else state  # completed but no .done: broken task


FINAL = (
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
)


def follow(
    job_id: str,
    cells: list[str],
    results: Path,
    *,
    timeout_s: float,
    report: Callable[[float, list[CellState]], None],
    poll_s: float = POLL_S,
) -> list[CellState]:
    """Poll until every cell is final; report(elapsed, states) on each change."""
    start = time.monotonic()
    last: tuple[tuple[str, str], ...] = ()
    while True:
        now = states(job_id, cells, results)
        key = tuple((s.state, s.node) for s in now)
        if key != last:
            report(time.monotonic() - start, now)
            last = key
        if all(s.state in FINAL for s in now):
            return now
        if time.monotonic() - start > timeout_s:
            cancel(job_id)
            raise BuildError(
                f"Slurm job {job_id} still running after {timeout_s:g}s; cancelled "
                f"it (scancel {job_id}); results so far in {results}"
            )
        time.sleep(poll_s)


class CellRow(TypedDict):
    """One cell of a finished array (collect)."""

    cell: str
    node: str
    seconds: float | None
    rc: int | None
    wheel: str | None
    build_id: str | None
    log: str | None
    remote_cache_hits: int | None
    error: str | None
    start: NotRequired[float | None]  # epoch seconds, from the task's .done file
    end: NotRequired[float | None]


def collect(cells: list[str], results: Path) -> list[CellRow]:
    """One summary row per cell: node, seconds, exit code, wheel, build log, cache hits."""
    rows: list[CellRow] = []
    for cell in cells:
        row: CellRow = {
            "cell": cell,
            "node": "",
            "seconds": None,
            "rc": None,
            "wheel": None,
            "build_id": None,
            "log": None,
            "remote_cache_hits": None,
            "error": None,
        }
        done = results / f"{cell}.done"
        if done.is_file():
            doc = _done(done)
            row["node"], row["seconds"], row["rc"] = doc["node"], doc["seconds"], doc["rc"]
            row["start"], row["end"] = doc.get("start"), doc.get("end")
        result = results / f"{cell}.json"
        text = result.read_text() if result.is_file() else ""
        if row["rc"] == 0 and text.strip():
            doc = read_json_record(result)
            row["wheel"], row["build_id"], row["log"] = (
                doc.get("wheel"),
                doc.get("build_id"),
                doc.get("log"),
            )
            wheel, log = row["wheel"], row["log"]
            if wheel and not Path(wheel).is_file():
                row["rc"] = 1
                row["error"] = (
                    f"{wheel} is not visible here (is the project folder on storage shared "
                    "by every node?)"
                )
            if log and Path(log).is_file():
                facts = remote.log_facts(Path(log).read_text(errors="replace"))
                row["remote_cache_hits"] = facts.remote_cache_hits
        else:
            row["error"] = _last_error(results / f"{cell}.out") or "no result"
            row["rc"] = row["rc"] if row["rc"] not in (None, 0) else 1
        rows.append(row)
    return rows


def _done(path: Path) -> dict[str, Any]:
    """A task's .done record (written by the sbatch script), through the one input layer:
    rc, start, end and seconds must be whole numbers, node text."""
    doc = read_json_record(path, limit=1 << 16)
    ints = ("rc", "start", "end", "seconds")
    if not all(isinstance(doc.get(k), int) and not isinstance(doc.get(k), bool) for k in ints):
        raise ConfigError(f"{path}: rc/start/end/seconds are not whole numbers; rerun the cell")
    if not isinstance(doc.get("node"), str):
        raise ConfigError(f"{path}: no node name; rerun the cell")
    return doc


def _last_error(path: Path) -> str | None:
    if not path.is_file():
        return None
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    return (errors or lines)[-1] if errors or lines else None
