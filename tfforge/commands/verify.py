"""The `verify` command: settings -> tfforge.verify.verdict.verify -> tables or --json."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from tfforge import console, paths
from tfforge.errors import Undecided, VerifyError
from tfforge.host import cpu, isa
from tfforge.options.typed.verify import VerifyOptions
from tfforge.verify.answers import CANNOT, RUNS
from tfforge.verify.verdict import VerifyReport, feature_rows, verify
from tfforge.verify.wheelcheck import FAIL, PASS, SKIP, UNDECIDED
from tfforge.verify.wheelscan import bounded_jobs, default_jobs


def verify_command(opts: VerifyOptions) -> VerifyReport:
    from tfforge.runtime import venvs

    n_jobs = bounded_jobs(opts.verify_jobs) if opts.verify_jobs else default_jobs()
    if opts.verify_jobs > n_jobs:
        console.info(
            f"{opts.where('verify_jobs')} {opts.verify_jobs}: using {n_jobs} "
            f"(bounded by {os.cpu_count()} CPUs and the memory available, ~450 MB "
            "per worker)"
        )
    path = venvs.wheel_from_spec(opts.verify_wheel)
    hosts = list(opts.verify_hosts)
    profiles = cpu.load_hosts(hosts, option="--host") if hosts else [cpu.detect_host()]
    python = opts.verify_python or f"{sys.version_info.major}.{sys.version_info.minor}"
    with console.Progress(f"verifying {path.name}", unit="bytes") as bar:
        report = verify(
            path,
            status=bar.note,
            progress=bar.update,
            hosts=profiles,
            python=python,
            emulate_models=list(opts.emulate),
            jobs=n_jobs,
            examples=opts.verify_examples,
            use_cache=not opts.no_cache,
            emulate_timeout=opts.emulate_timeout,
            builds_dir=paths.builds_dir(),
        )
    if opts.json:
        console.print_json(report.to_dict())
    else:
        show(report)
    if report.failed:
        names = ", ".join(c.name for c in report.failed)
        raise VerifyError(
            f"{Path(report.wheel).name}: {len(report.failed)} check(s) failed "
            f"({names}); see the report"
        )
    if report.undecided:
        open_hosts = ", ".join(h.name for h in report.hosts if h.undecided)
        raise Undecided(
            f"{Path(report.wheel).name}: undecided for {open_hosts}: ordinary code uses features "
            "they lack and no CPU check is shown to guard it; --emulate MODEL settles it"
        )
    return report


# ---- the readable report -------------------------------------------------------------------
_STYLE = {
    PASS: "[green]pass[/]",
    FAIL: "[bold red]FAIL[/]",
    SKIP: "[dim]skip[/]",
    UNDECIDED: "[bold yellow]undecided[/]",
}
_ANSWER = {RUNS: "[green]runs[/]", CANNOT: "[bold red]cannot run[/]", UNDECIDED: _STYLE[UNDECIDED]}
_CLASS = {
    "required": "[bold]required[/]",
    "unguarded": "[yellow]unguarded[/]",
    "dispatched": "[dim]dispatched[/]",
}


def short_name(name: str, limit: int = 72) -> str:
    """A demangled C++ name cut for a table: no parameter list, inner template args elided."""
    depth, out = 0, []
    for i, ch in enumerate(name):
        if (
            ch == "("
            and depth == 0
            and i > 0
            and not name.startswith("(anonymous", i)
            and not name.endswith("decltype", 0, i)
        ):
            break
        if ch == "<":
            depth += 1
            if depth == 2:
                out.append("...")
        if depth <= 1:
            out.append(ch)
        if ch == ">":
            depth = max(depth - 1, 0)
            if depth == 1:
                out.append(">")
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _few(names: Iterable[str], keep: int = 3) -> str:
    names = list(names)
    if not names:
        return "-"
    more = f" +{len(names) - keep} more" if len(names) > keep else ""
    return ", ".join(names[:keep]) + more


def show(r: VerifyReport) -> None:
    from rich.table import Table

    escape = console.safe  # every name here came from the wheel or a host file

    out = console.out
    out.print(
        f"[bold]{escape(Path(r.wheel).name)}[/]  {r.size / 1e6:.1f} MB, "
        f"{r.members} members, "
        f"sha256 {r.sha256[:16]}, verified in {r.seconds:.1f} s"
        + (" (ISA scan from cache)" if r.scan_cached else "")
    )
    t = Table(title="Checks", title_justify="left")
    t.add_column("check")
    t.add_column("result")
    t.add_column("what was measured", overflow="fold")
    for c in r.checks:
        t.add_row(c.name, _STYLE[c.status], escape(c.summary))
        for d in c.details[1:6] if c.status in (FAIL, UNDECIDED) else ():
            t.add_row("", "", f"[dim]{escape(d)}[/]")
    out.print(t)

    if r.libraries:
        t = Table(
            title=f"x86 extensions used by {len(r.libraries)} ELF libraries (required = runs "
            "at load; unguarded = ordinary code, no CPU check shown; dispatched = only behind "
            "CPU checks)",
            title_justify="left",
        )
        for col in (
            "feature",
            "class",
            "why",
            "instr",
            "ordinary fns",
            "dispatched fns",
            "example (most uses)",
        ):
            t.add_column(
                col, overflow="fold", justify="right" if col.endswith(("fns", "instr")) else "left"
            )
        rows = feature_rows(r)
        for row in rows:
            cls = _CLASS.get(row["class"], row["class"])
            t.add_row(
                row["title"],
                cls,
                escape(row["why"]),
                f"{row['instructions']:,}",
                f"{row['ordinary']:,}",
                f"{row['dispatched_fns']:,}",
                escape(short_name(row["example"], 60)),
            )
        out.print(t)
        for row in rows:
            if row["class"] != "dispatched":
                out.print(f"  [bold]{row['title']}[/] {escape(row['evidence'])}", highlight=False)

    t = Table(title="Hosts", title_justify="left")
    for col in (
        "host",
        "model",
        "answer",
        "lacks (required)",
        "lacks (unguarded)",
        "lacks (dispatched, fine)",
    ):
        t.add_column(col, overflow="fold")
    for h in r.hosts:
        t.add_row(
            escape(h.name),
            escape(h.model),
            _ANSWER[h.answer] + (f" (settled under {h.settled_by})" if h.settled_by else ""),
            ", ".join(h.missing) or "-",
            ", ".join(h.unsettled) or "-",
            _few(h.missing_dispatched),
        )
    out.print(t)

    if r.runtime:
        t = Table(title="Host runtimes (glibc, libstdc++, Python)", title_justify="left")
        for col in ("host", "result", "runtime", "why not / not checked"):
            t.add_column(col, overflow="fold")
        style = {"loads": _STYLE[PASS], "cannot load": "[bold red]cannot load[/]"}
        for v in r.runtime:
            why = list(v.reasons) or list(v.notes[:3])
            t.add_row(
                escape(v.host),
                style.get(v.status, "[dim]unknown[/]"),
                escape(v.runtime),
                escape("; ".join(why) or "-"),
            )
        out.print(t)

    if r.emulation:
        t = Table(title=f"Emulated runs (qemu-x86_64): {escape(r.probe)}", title_justify="left")
        for col in ("model", "result", "stage", "where", "seconds", "static answer", "so"):
            t.add_column(col, overflow="fold")
        for e in r.emulation:
            res = e.result
            static = e.static.answer + (
                " (lacks " + ", ".join(e.static.missing or e.static.unsettled) + ")"
                if e.static.answer != RUNS
                else ""
            )
            if e.unexecutable:
                so = "not confirmable (qemu cannot execute " + ", ".join(e.unexecutable) + ")"
            elif not e.witness:
                so = "shows nothing (fails on this host too)"
            elif not e.confirmable:
                so = "shows nothing (timed out)"
            elif e.settled:
                so = "settled: " + _ANSWER[e.answer]
            else:
                so = "agrees" if e.agrees else "[bold red]DISAGREES[/]"
            t.add_row(
                res.model,
                _STYLE[PASS]
                if res.status == "pass"
                else f"[bold red]{res.signal or res.status}[/]",
                res.stage or "-",
                escape(res.where or "-"),
                f"{res.seconds:.0f}",
                static,
                so,
            )
        out.print(t)

    libs = sorted(r.libraries, key=lambda s: -s.code_bytes)
    if libs:
        t = Table(title="Largest libraries", title_justify="left")
        for col in (
            "library",
            "code MB",
            "decoded MB",
            "functions",
            "required / unguarded",
            "dispatched",
            "ISA note",
            "scan s",
        ):
            t.add_column(
                col,
                overflow="fold",
                justify="right"
                if col in ("code MB", "decoded MB", "functions", "scan s")
                else "left",
            )
        for s in libs[:8]:
            t.add_row(
                escape(s.path),
                f"{s.code_bytes / 1e6:.1f}",
                f"{s.decoded_bytes / 1e6:.1f}",
                f"{s.functions:,}",
                ", ".join(sorted(s.required, key=isa.sort_key))
                + " / "
                + ", ".join(sorted(s.unguarded, key=isa.sort_key)),
                _few(sorted(s.dispatched, key=isa.sort_key)),
                s.isa_needed or "-",
                f"{s.seconds:.1f}",
            )
        if len(libs) > 8:
            t.caption = f"{len(libs) - 8} smaller libraries in --json"
        out.print(t)
        hits: dict[str, int] = {}
        for s in r.libraries:
            for label, n in s.pattern_hits:
                hits[label] = hits.get(label, 0) + n
        out.print("[dim]How features are classed (per library, per function):[/]")
        for rule in r.rules:
            out.print(f"[dim]  {escape(rule)}[/]")
        if hits:
            out.print(
                f"[dim]  dispatch patterns that matched: "
                f"{sum(hits.values())} functions via {len(hits)} pattern(s); "
                "per-library list in --json (pattern_hits)[/]"
            )
