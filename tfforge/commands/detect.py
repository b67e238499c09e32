"""`invoke detect`: this host's CPU, the installed TensorFlow and the build target for it.

The command builds a plain dict (the --json output) and renders the same dict as tables; rich
is imported only for the tables.
"""

from __future__ import annotations

import importlib.util
import sys

from tfforge import console
from tfforge.errors import TfforgeError
from tfforge.files import JsonDoc
from tfforge.host import cpu, fleet, isa
from tfforge.host import runtime as host_runtime
from tfforge.options.typed.detect import DetectOptions
from tfforge.runtime import probe

# The official x86 wheel baseline: TensorFlow's `avx_linux` config compiles with -mavx only.
STOCK_BASELINE = isa.closure(["avx"])


def tensorflow_report(timeout: float) -> JsonDoc:
    """The installed TensorFlow as tfprobe.py sees it in a subprocess (detect stays fast), or
    why it cannot say."""
    if importlib.util.find_spec("tensorflow") is None:
        return {"installed": False, "reason": "not installed in this environment"}
    try:
        doc = probe.probe_tensorflow(probe.current(), None, timeout)
    except TfforgeError as exc:
        return {"installed": None, "reason": str(exc)}
    # TensorFlow names features its own way (AVX512_VNNI); add tfforge's canonical names.
    doc["unused_features"] = sorted(
        {isa.lookup(n) or n.lower() for n in doc.get("unused_cpu_features", [])}, key=isa.sort_key
    )
    return doc


def host_report(host: cpu.HostProfile, gcc_version: str) -> JsonDoc:
    """Everything detect says about one host except the TensorFlow probe."""
    skip = ("flags", "schema", "runtime")
    doc: JsonDoc = {"host": {k: v for k, v in host.to_dict().items() if k not in skip}}
    doc["host"]["source"] = host.source
    doc["runtime"] = runtime_report(host)
    if not host.is_x86:
        doc["x86"] = False
        doc["note"] = (
            f"{host.arch} host: x86 ISA targets (AVX, AVX-512, psABI levels) do not "
            "apply; tfforge builds and verifies x86_64 wheels"
        )
        return doc
    present = host.features
    uarch, best = fleet.microarchitecture(host), fleet.best_target([host], gcc_version)
    level = isa.psabi_level(present)
    doc.update(
        {
            "x86": True,
            "microarchitecture": uarch,
            "psabi_level": isa.level_name(level),
            "features": {
                "present": isa.tf_relevant(present),
                "absent": isa.tf_relevant(set(isa.tf_features()) - present),
            },
            "recommended": {
                "target": best.name,
                "gcc_version": gcc_version,
                "flags": best.flags,
                "copts": [f"--copt={f}" for f in best.copts(gcc_version)],
                "refused": list(best.skipped),
            },
            "gain": {
                "stock_baseline": isa.tf_relevant(STOCK_BASELINE),
                "would_add": isa.tf_relevant(present - STOCK_BASELINE),
            },
        }
    )
    return doc


def runtime_report(host: cpu.HostProfile) -> JsonDoc:
    """The host's runtime as detect shows it, or why it is unknown."""
    if host.runtime is None:
        return {
            "known": False,
            "reason": f"{host.source} records no runtime (a raw /proc/cpuinfo copy or an older "
            "snapshot): glibc, libstdc++ and Python are unknown; capture the host with the "
            "script `invoke detect --capture-script` prints",
        }
    return {"known": True, **host.runtime.to_dict(), "summary": host.runtime.summary()}


def detect_command(opts: DetectOptions) -> JsonDoc:
    if opts.capture_script:
        text = host_runtime.capture_script()
        if opts.json:
            console.print_json({"capture_script": text})
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
        return {"capture_script": text}
    host = cpu.load_host(opts.cpuinfo) if opts.cpuinfo else cpu.detect_host()
    doc = host_report(host, opts.match_gcc_version)
    if opts.cpuinfo:
        doc["tensorflow"] = {"installed": None, "reason": f"not probed: analysing {opts.cpuinfo}"}
    elif not opts.no_tf:
        doc["tensorflow"] = tensorflow_report(opts.tf_probe_timeout)
    else:
        doc["tensorflow"] = {"installed": None, "reason": "not probed (--no-tf)"}
    if opts.save:
        doc["saved"] = str(cpu.save_host(host, opts.save))
    if opts.json:
        console.print_json(doc)
    else:
        _show_detect(doc)
    return doc


def _show_detect(doc: JsonDoc) -> None:
    from rich.table import Table

    out, h = console.out, {k: "?" if v is None else console.safe(v) for k, v in doc["host"].items()}
    out.print(
        f"[bold]{h['name']}[/]: {h['model_name']} ({h['vendor']}, {h['arch']}), "
        f"{h['physical_cores'] or '?'} physical cores, "
        f"{h['logical_cpus'] or '?'} logical CPUs"
    )
    if not doc["x86"]:
        out.print(console.safe(doc["note"]))
    else:
        out.print(
            f"microarchitecture [bold]{doc['microarchitecture']}[/], psABI level "
            f"[bold]{doc['psabi_level']}[/]"
        )
        t = Table(title="TensorFlow-relevant ISA features", show_lines=False)
        t.add_column("feature")
        t.add_column("here")
        t.add_column("stock wheel baseline")
        for name in isa.tf_features():
            here = name in doc["features"]["present"]
            stock = name in doc["gain"]["stock_baseline"]
            t.add_row(
                isa.title(name), "[green]yes[/]" if here else "[red]no[/]", "yes" if stock else "-"
            )
        out.print(t)
        rec = doc["recommended"]
        out.print(
            f"recommended target for GCC {rec['gcc_version']}: [bold]{rec['target']}[/]  "
            f"{rec['flags']}"
        )
        out.print("  explicit: " + " ".join(rec["copts"]))
        for why in rec["refused"]:
            out.print(f"  [yellow]refused[/] {console.safe(why)}")
        gain = doc["gain"]["would_add"]
        added = ", ".join(isa.title(f) for f in gain) if gain else "nothing over the stock wheel"
        out.print("a build for this host would add: " + added)
    rt = doc["runtime"]
    if rt["known"]:
        out.print(console.safe(f"runtime: {rt['summary']}"))
    else:
        out.print(f"[yellow]runtime unknown[/]: {console.safe(rt['reason'])}")
    tf = doc["tensorflow"]
    if tf.get("installed"):
        unused = ", ".join(tf.get("unused_cpu_features") or []) or "none reported"
        out.print(
            console.safe(
                f"TensorFlow {tf['version']} (oneDNN "
                f"{'on' if tf.get('onednn_on') else 'off'}, MKL build "
                f"{tf.get('mkl_enabled')}); features it does not use: {unused}"
            )
        )
    else:
        out.print(console.safe(f"TensorFlow: {tf.get('reason', 'not installed')}"))
    if doc.get("saved"):
        out.print(console.safe(f"snapshot saved to {doc['saved']}"))
