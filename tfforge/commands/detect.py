"""`invoke detect` and `invoke match`: gather facts into one document, then show it.

Each command builds a plain dict (the --json output) and renders the same dict as tables.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from rich.table import Table

from tfforge import settings, console
from tfforge.host import cpu
from tfforge.host import fleet
from tfforge.host import isa
from tfforge.errors import TfforgeError

# The official x86 wheel baseline: TensorFlow's `avx_linux` config compiles with -mavx only.
STOCK_BASELINE = isa.closure(["avx"])
PROBE = Path(__file__).resolve().parents[1] / "runtime" / "tfprobe.py"


def probe_tensorflow(python: str = sys.executable, timeout: float = 60) -> dict:
    """The installed TensorFlow as seen by tfprobe.py in a subprocess (detect stays fast)."""
    if python == sys.executable and importlib.util.find_spec("tensorflow") is None:
        return {"installed": False, "reason": "not installed in this environment"}
    try:
        proc = subprocess.run([python, str(PROBE)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"installed": None, "reason": f"import tensorflow took over {timeout:g} s"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return {"installed": None, "reason": f"import failed: {tail}"}
    try:
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"installed": None, "reason": "the TensorFlow probe printed no JSON document"}
    # TensorFlow names features its own way (AVX512_VNNI); add tfforge's canonical names.
    doc["unused_features"] = sorted({isa.lookup(n) or n.lower()
                                     for n in doc.get("unused_cpu_features", [])},
                                    key=isa.sort_key)
    return doc


def _tf_names(features) -> list[str]:
    return sorted((f for f in features if isa.features()[f].tf), key=isa.sort_key)


def host_report(host: cpu.HostProfile, gcc_version: str) -> dict:
    """Everything detect says about one host except the TensorFlow probe."""
    doc = {"host": {k: v for k, v in host.to_snapshot().items() if k not in ("flags", "schema")}}
    doc["host"]["source"] = host.source
    if not host.is_x86:
        doc["x86"] = False
        doc["note"] = (f"{host.arch} host: x86 ISA targets (AVX, AVX-512, psABI levels) do not "
                       "apply; tfforge builds and verifies x86_64 wheels")
        return doc
    present = host.features
    uarch, best = fleet.microarchitecture(host), fleet.best_target([host], gcc_version)
    level = isa.psabi_level(present)
    doc.update({
        "x86": True,
        "microarchitecture": uarch,
        "psabi_level": isa.level_name(level),
        "features": {"present": _tf_names(present),
                     "absent": _tf_names(set(isa.tf_features()) - present)},
        "recommended": {"target": best.name, "gcc_version": gcc_version, "flags": best.flags,
                        "copts": [f"--copt={f}" for f in best.copts(gcc_version)],
                        "refused": list(best.skipped)},
        "gain": {"stock_baseline": _tf_names(STOCK_BASELINE),
                 "would_add": _tf_names(present - STOCK_BASELINE)},
    })
    return doc


def detect_command(*, as_json: bool, save: str | None, cpuinfo: str | None,
                   gcc_version: str | None, probe_tf: bool) -> dict:
    opts = settings.load({"gcc_version": gcc_version})
    gcc = settings.version(opts, "gcc_version")
    host = cpu.load_host(cpuinfo) if cpuinfo else cpu.detect_host()
    doc = host_report(host, gcc)
    if cpuinfo:
        doc["tensorflow"] = {"installed": None, "reason": f"not probed: analysing {cpuinfo}"}
    elif probe_tf:
        doc["tensorflow"] = probe_tensorflow(timeout=float(opts["tf_probe_timeout"]))
    else:
        doc["tensorflow"] = {"installed": None, "reason": "not probed (--no-tf)"}
    if save:
        doc["saved"] = str(cpu.save_host(host, save))
    if as_json:
        console.print_json(doc)
    else:
        _show_detect(doc)
    return doc


def _show_detect(doc: dict) -> None:
    out, h = console.out, {k: console.safe(v) for k, v in doc["host"].items()}
    out.print(f"[bold]{h['name']}[/]: {h['model_name']} ({h['vendor']}, {h['arch']}), "
              f"{h['physical_cores'] or '?'} physical cores, {h['logical_cpus'] or '?'} logical CPUs")
    if not doc["x86"]:
        out.print(console.safe(doc["note"]))
    else:
        out.print(f"microarchitecture [bold]{doc['microarchitecture']}[/], psABI level "
                  f"[bold]{doc['psabi_level']}[/]")
        t = Table(title="TensorFlow-relevant ISA features", show_lines=False)
        t.add_column("feature")
        t.add_column("here")
        t.add_column("stock wheel baseline")
        for name in isa.tf_features():
            here = name in doc["features"]["present"]
            stock = name in doc["gain"]["stock_baseline"]
            t.add_row(isa.title(name), "[green]yes[/]" if here else "[red]no[/]",
                      "yes" if stock else "-")
        out.print(t)
        rec = doc["recommended"]
        out.print(f"recommended target for GCC {rec['gcc_version']}: [bold]{rec['target']}[/]  "
                  f"{rec['flags']}")
        out.print("  explicit: " + " ".join(rec["copts"]))
        for why in rec["refused"]:
            out.print(f"  [yellow]refused[/] {console.safe(why)}")
        gain = doc["gain"]["would_add"]
        out.print("a build for this host would add: " +
                  (", ".join(isa.title(f) for f in gain) if gain else "nothing over the stock wheel"))
    tf = doc["tensorflow"]
    if tf.get("installed"):
        unused = ", ".join(tf.get("unused_cpu_features") or []) or "none reported"
        out.print(console.safe(f"TensorFlow {tf['version']} (oneDNN "
                               f"{'on' if tf.get('onednn_on') else 'off'}, MKL build "
                               f"{tf.get('mkl_enabled')}); features it does not use: {unused}"))
    else:
        out.print(console.safe(f"TensorFlow: {tf.get('reason', 'not installed')}"))
    if doc.get("saved"):
        out.print(console.safe(f"snapshot saved to {doc['saved']}"))


def match_report(hosts: list[cpu.HostProfile], gcc_version: str,
                 require: frozenset[str] = frozenset()) -> dict:
    fleet.check_fleet(hosts)
    best = fleet.best_target(hosts, gcc_version)
    rows = []
    for name in fleet.candidate_names():
        t = fleet.target(name, gcc_version)
        missing = {h.name: fleet.why_not(t, h) for h in hosts}
        rows.append({"target": t.display, "name": t.name, "flags": t.flags, "refused": t.refused,
                     "runs_on": [h for h, why in missing.items() if why is None],
                     "missing": {h: why for h, why in missing.items() if why}})
    lacking = {h.name: sorted(require - h.features, key=isa.sort_key) for h in hosts
               if require - h.features}
    return {
        "hosts": [{"name": h.name, "source": h.source, "vendor": h.vendor,
                   "model_name": h.model_name,
                   "microarchitecture": fleet.microarchitecture(h),
                   "psabi_level": isa.level_name(isa.psabi_level(h.features))} for h in hosts],
        "best": {"target": best.display, "name": best.name, "flags": best.flags,
                 "copts": [f"--copt={f}" for f in best.copts(gcc_version)],
                 "features": sorted(best.features, key=isa.sort_key),
                 "psabi_level": isa.level_name(best.level), "refused": list(best.skipped)},
        "common_features": _tf_names(fleet.common_features(hosts)),
        "gcc_version": gcc_version,
        "require": sorted(require, key=isa.sort_key),
        "require_missing": lacking,
        "candidates": rows,
    }


def match_command(hosts: str | list[str], *, as_json: bool, gcc_version: str | None,
                  require: str | None = None) -> dict:
    opts = settings.load({"gcc_version": gcc_version})
    wanted = frozenset(isa.canonical(n, source="--require")
                       for n in (require or "").split(",") if n.strip())
    gcc = settings.version(opts, "gcc_version")
    profiles = cpu.load_hosts(hosts)
    doc = match_report(profiles, gcc, isa.closure(wanted) if wanted else wanted)
    if as_json:
        console.print_json(doc)
    else:
        _show_match(doc)
    if doc["require_missing"]:
        who = "; ".join(f"{h} lacks {', '.join(m)}" for h, m in doc["require_missing"].items())
        raise TfforgeError(f"--require {require}: not every host has it ({who})")
    return doc


def _short(why: str, keep: int = 4) -> str:
    """A table-sized reason; --json keeps the whole one."""
    if why.startswith("missing "):
        names = why.removeprefix("missing ").split(", ")
        more = f" +{len(names) - keep} more" if len(names) > keep else ""
        return "lacks " + ", ".join(names[:keep]) + more
    if "targets vendor" in why:
        return "other vendor"
    return why


def _show_match(doc: dict) -> None:
    out = console.out
    t = Table(title=f"Targets for {len(doc['hosts'])} hosts (GCC {doc['gcc_version']})")
    t.add_column("target")
    t.add_column("runs on")
    t.add_column("cannot run it (why)")
    t.add_column("GCC flags")
    total = len(doc["hosts"])
    for r in doc["candidates"]:
        runs = f"{len(r['runs_on'])}/{total}"
        style = "green" if len(r["runs_on"]) == total else ""
        why = console.safe("; ".join(f"{h}: {_short(m)}" for h, m in r["missing"].items()))
        t.add_row(r["target"], f"[{style}]{runs}[/]" if style else runs, why,
                  r["flags"] or f"[red]refused[/]: {console.safe(r['refused'])}")
    out.print(t)
    b = doc["best"]
    out.print(f"best common target: [bold]{b['target']}[/] ({b['psabi_level']})  {b['flags']}")
    out.print("  explicit: " + " ".join(b["copts"]))
    for why in b["refused"]:
        out.print(f"  [yellow]refused[/] {console.safe(why)}")
    out.print("features every host has: " + ", ".join(isa.title(f) for f in doc["common_features"]))
