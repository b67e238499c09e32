"""`invoke match`: the best build target every host of a fleet can run, and why others are refused.

The command builds a plain dict (the --json output) and renders the same dict as a table.
"""

from __future__ import annotations

from tfforge import console
from tfforge.errors import TfforgeError
from tfforge.files import JsonDoc
from tfforge.host import cpu, fleet, isa
from tfforge.options.typed.match import MatchOptions


def runtime_report(hosts: list[cpu.HostProfile], tf_version: str) -> JsonDoc:
    """The fleet's oldest runtime, its floor, each host's Python for the release, the builds."""
    from tfforge.build import floor, toolchains

    tc = toolchains.toolchain(tf_version)
    return floor.fleet_plan(hosts, tc.tf_version, tc.pythons)


def match_report(
    hosts: list[cpu.HostProfile],
    gcc_version: str,
    require: frozenset[str] = frozenset(),
    tf_version: str | None = None,
) -> JsonDoc:
    fleet.check_fleet(hosts)
    best = fleet.best_target(hosts, gcc_version)
    rows = []
    for name in fleet.candidate_names():
        t = fleet.target(name, gcc_version)
        missing = {h.name: fleet.why_not(t, h) for h in hosts}
        rows.append(
            {
                "target": t.display,
                "name": t.name,
                "flags": t.flags,
                "refused": t.refused,
                "runs_on": [h for h, why in missing.items() if why is None],
                "missing": {h: why for h, why in missing.items() if why},
            }
        )
    lacking = {
        h.name: sorted(require - h.features, key=isa.sort_key)
        for h in hosts
        if require - h.features
    }
    return {
        "hosts": [
            {
                "name": h.name,
                "source": h.source,
                "vendor": h.vendor,
                "model_name": h.model_name,
                "microarchitecture": fleet.microarchitecture(h),
                "psabi_level": isa.level_name(isa.psabi_level(h.features)),
            }
            for h in hosts
        ],
        "best": {
            "target": best.display,
            "name": best.name,
            "flags": best.flags,
            "copts": [f"--copt={f}" for f in best.copts(gcc_version)],
            "features": sorted(best.features, key=isa.sort_key),
            "psabi_level": isa.level_name(best.level),
            "refused": list(best.skipped),
        },
        "common_features": isa.tf_relevant(fleet.common_features(hosts)),
        "gcc_version": gcc_version,
        "require": sorted(require, key=isa.sort_key),
        "require_missing": lacking,
        "candidates": rows,
        **({"runtime": runtime_report(hosts, tf_version)} if tf_version else {}),
    }


def match_command(opts: MatchOptions) -> JsonDoc:
    where = opts.where("require")
    wanted = frozenset(isa.canonical(n, source=where) for n in opts.require)
    profiles = cpu.load_hosts(opts.fleet)
    doc = match_report(
        profiles,
        opts.match_gcc_version,
        isa.closure(wanted) if wanted else wanted,
        opts.spec.tf_version.strip(),
    )
    if opts.json:
        console.print_json(doc)
    else:
        _show_match(doc)
    if doc["require_missing"]:
        who = "; ".join(f"{h} lacks {', '.join(m)}" for h, m in doc["require_missing"].items())
        raise TfforgeError(f"{where} {','.join(opts.require)}: not every host has it ({who})")
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


def _show_match(doc: JsonDoc) -> None:
    from rich.table import Table

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
        t.add_row(
            r["target"],
            f"[{style}]{runs}[/]" if style else runs,
            why,
            r["flags"] or f"[red]refused[/]: {console.safe(r['refused'])}",
        )
    out.print(t)
    b = doc["best"]
    out.print(f"best common target: [bold]{b['target']}[/] ({b['psabi_level']})  {b['flags']}")
    out.print("  explicit: " + " ".join(b["copts"]))
    for why in b["refused"]:
        out.print(f"  [yellow]refused[/] {console.safe(why)}")
    out.print("features every host has: " + ", ".join(isa.title(f) for f in doc["common_features"]))
    if "runtime" in doc:
        _show_runtime(doc["runtime"])


def _show_runtime(rt: JsonDoc) -> None:
    out = console.out
    for key, label in (("glibc", "glibc"), ("glibcxx", "libstdc++"), ("cxxabi", "C++ ABI")):
        old = rt[f"oldest_{key}"]
        if old:
            shown = f"{label} {old['value']} ({old['host']})"
            out.print(console.safe(f"oldest {shown}"))
    if rt["unknown"]:
        out.print(
            "[yellow]runtime unknown[/] for "
            + console.safe(", ".join(rt["unknown"]))
            + " (raw cpuinfo or older snapshots: capture them with `invoke detect "
            "--capture-script`)"
        )
    if rt.get("floor"):
        f = rt["floor"]
        out.print(
            console.safe(
                f"runtime floor: {f['suite']} (glibc {f['glibc']}, {f['glibcxx']}): every "
                "build below targets it"
            )
        )
    elif rt.get("floor_refused"):
        out.print(f"[red]no runtime floor[/]: {console.safe(rt['floor_refused'])}")
    for h in rt["hosts"]:
        py = h["python"] or ("[yellow]unknown[/]" if h["runtime"] is None else "[red]none[/]")
        out.print(f"  {console.safe(h['name'])}: Python {py} ({console.safe(h['why'])})")
    for b in rt["builds"]:
        out.print(
            console.safe(
                f"build for Python {b['python']} ({', '.join(b['hosts'])}): "
                f"invoke build {' '.join(b['build_args'])} ..."
            )
        )
    for r in rt["refused"]:
        out.print(
            f"[red]TensorFlow {console.safe(rt['tf_version'])} cannot serve[/] "
            f"{console.safe(r['name'])}: {console.safe(r['why'])}"
        )
