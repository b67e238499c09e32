"""The `matrix` and `cache` commands: a fleet's build matrix, handed to an existing engine.

`matrix` plans (tfforge.build.matrix), checks every cell's build spec (so a bad shared option
fails before anything is written), then prints the plan, writes a CI file or Slurm script
(tfforge.build.emit), or runs the array on Slurm and collects it (tfforge.cluster.slurm).
`cache serve` runs an nginx WebDAV Bazel cache (tfforge.cluster.cache) until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import time
from pathlib import Path

from rich.table import Table

from tfforge import console, paths
from tfforge.build import emit, matrix, request
from tfforge.errors import BuildError, Origin
from tfforge.files import JsonDoc, io_error, write_atomic, write_json_atomic
from tfforge.host import cpu, isa
from tfforge.options.typed.cache import CacheOptions
from tfforge.options.typed.enums import EmitFormat
from tfforge.options.typed.matrix import MatrixOptions
from tfforge.options.typed.spec import SpecOptions

# The build options every cell shares (flags of `invoke build` as matrix takes them).
SHARED = (
    "base_image",
    "source_dir",
    "bazel_provider",
    "compiler",
    "build_gcc_version",
    "remote_cache",
    "remote_executor",
)
DEFAULT_OUT = {
    EmitFormat.GITHUB: "matrix/tfforge.github.yml",
    EmitFormat.GITLAB: "matrix/tfforge.gitlab-ci.yml",
    EmitFormat.SLURM: "matrix/tfforge.sbatch",
}


def shared_flags(opts: SpecOptions) -> tuple[str, ...]:
    """The `invoke build` flags for the shared options given on the matrix command line."""
    from tfforge.options import declared

    flags: list[str] = []
    for name in SHARED:
        value = getattr(opts, name)
        if opts.given(name) and value:
            shown = str(Path(value).resolve()) if name == "source_dir" else str(value)
            flags += [declared.option(name).cli, shown]
    if opts.given("mkl") and opts.mkl:
        flags.append("--mkl")
    if opts.given("bazel_args"):
        flags += [f"--bazel-arg={a}" for a in opts.bazel_args]
    return tuple(flags)


def floor_flags(opts: SpecOptions, p: matrix.Plan) -> tuple[str, ...]:
    """`--runtime-floor` for every cell: the plan's floor, or `none` when the plan has none and
    the option was set (so a cell's build does not read another floor from tfforge.toml)."""
    if p.runtime_floor:
        return ("--runtime-floor", p.runtime_floor)
    return ("--runtime-floor", "none") if opts.is_set("runtime_floor") else ()


def cell_spec(opts: MatrixOptions, cell: matrix.Cell) -> SpecOptions:
    """The spec options of one cell: the shared ones with the cell's target, versions and the
    plan's runtime floor."""
    base = opts.spec
    origins = {
        **base.origins,
        "target": Origin("default", f"cell {cell.cell}: --target {cell.display}"),
        "tf_version": opts.origin("matrix_tf_versions")
        if opts.matrix_tf_versions
        else base.origin("tf_version"),
        "python_version": opts.origin("matrix_python_versions")
        if opts.matrix_python_versions
        else base.origin("python_version"),
    }
    return dataclasses.replace(
        base,
        target=cell.display,
        hosts=(),
        features=(),
        tf_version=cell.tf_version,
        python_version=cell.python_version,
        runtime_floor=cell.runtime_floor or "none",
        origins=origins,
    )


def make_plan(opts: MatrixOptions) -> tuple[matrix.Plan, dict[str, str]]:
    """The plan and each cell's build id (every cell's spec is validated here)."""
    profiles = cpu.load_hosts(opts.fleet, option=opts.where("fleet"))
    p = matrix.plan(
        profiles,
        gcc_version=opts.spec.build_gcc_version or opts.match_gcc_version,
        tf_versions=matrix.split_list(opts.matrix_tf_versions, opts.spec.tf_version),
        python_versions=matrix.split_list(opts.matrix_python_versions, opts.spec.python_version),
        one=opts.one,
        runtime_floor=opts.spec.runtime_floor,
        floor_source=opts.spec.where("runtime_floor"),
    )
    ids = {c.cell: request.make(cell_spec(opts, c)).build_id for c in p.cells}
    return p, ids


def _doc(p: matrix.Plan, ids: dict[str, str], flags: tuple[str, ...]) -> JsonDoc:
    doc = p.as_dict()
    for cell in doc["cells"]:
        cell["build_id"] = ids[cell["cell"]]
        cell["command"] = ["invoke", "build", *cell["build_args"], *flags]
    return doc


def _show_plan(doc: JsonDoc) -> None:
    t = Table(
        title=f"Build matrix: {len(doc['cells'])} builds "
        f"(common target {doc['common_target']}, GCC {doc['gcc_version']})"
    )
    for col in ("cell", "build id", "target", "serves", "gains over the common target"):
        t.add_column(col, overflow="fold")
    for c in doc["cells"]:
        names = c["hosts"][0]["gains"] if c["hosts"] else []
        gains = (
            ", ".join(isa.title(g) for g in names[:6])
            + (f" +{len(names) - 6} more" if len(names) > 6 else "")
        ) or "-"
        # Host names come from snapshot files: shown escaped (no terminal sequences, no
        # lone surrogates reaching the encoder).
        t.add_row(
            c["cell"],
            c["build_id"],
            c["target"],
            ", ".join(console.safe(h["name"]) for h in c["hosts"]),
            gains,
        )
    console.out.print(t)
    floor = doc.get("runtime_floor")
    console.out.print(
        f"runtime floor: [bold]{console.safe(floor)}[/] (every cell)"
        if floor
        else "[yellow]no runtime floor[/]: the wheels need whatever the build image links against"
    )
    for rt in doc.get("runtime", []):
        for r in rt["refused"]:
            console.out.print(
                f"[red]TensorFlow {console.safe(rt['tf_version'])} cannot serve[/] "
                f"{console.safe(r['name'])}: {console.safe(r['why'])}"
            )


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    """Atomically (files.write_atomic: a full disk leaves nothing and names the path)."""
    write_atomic(path, text.encode())
    try:
        path.chmod(mode)
    except OSError as exc:
        raise io_error(path, exc, "cannot be made executable") from None
    return path


def _slurm_script(p: matrix.Plan, flags: tuple[str, ...], results: Path, concurrent: int) -> str:
    checkout = Path(__file__).resolve().parents[2]  # tasks.py of a source checkout
    tasks = checkout if (checkout / "tasks.py").is_file() else paths.project_root()
    return emit.slurm(
        p,
        flags,
        project=str(paths.project_root()),
        python=sys.executable,
        results=str(results),
        tasks=str(tasks),
        concurrent=concurrent,
    )


def matrix_command(opts: MatrixOptions) -> JsonDoc:
    """`invoke matrix HOSTS`: plan, and optionally emit a CI file/Slurm script or run on Slurm."""
    conc = opts.matrix_concurrent
    timeout_s = opts.build_timeout
    emit_format, dry_run, as_json = opts.emit, opts.dry_run, opts.json
    p, ids = make_plan(opts)
    given_timeout = ("--timeout", f"{timeout_s:g}") if opts.given("build_timeout") else ()
    flags = shared_flags(opts.spec) + floor_flags(opts.spec, p) + given_timeout
    doc = _doc(p, ids, flags)
    if dry_run or not (emit_format or opts.matrix_run):
        if as_json:
            console.print_json({**doc, "dry_run": dry_run})
        else:
            _show_plan(doc)
        return doc
    if emit_format:
        path = opts.matrix_out or paths.project_root() / DEFAULT_OUT[emit_format]
        if emit_format == EmitFormat.GITHUB:
            text = emit.github(p, flags, max_parallel=conc)
        elif emit_format == EmitFormat.GITLAB:
            text = emit.gitlab(p, flags)
        else:
            text = _slurm_script(p, flags, paths.builds_dir() / "matrix" / "results", conc)
        _write(path, text, 0o755 if emit_format == EmitFormat.SLURM else 0o644)
        doc["emitted"] = {"format": str(emit_format), "path": str(path)}
        if not opts.matrix_run:
            if as_json:
                console.print_json(doc)
            else:
                _show_plan(doc)
                console.say(
                    f"wrote {path} ({emit_format}); "
                    + {
                        "github": "commit it under .github/workflows/",
                        "gitlab": "include it from .gitlab-ci.yml",
                        "slurm": f"submit it: sbatch {path}",
                    }[emit_format]
                )
            return doc
    return _run_slurm(p, doc, flags, conc, timeout_s, as_json)


def _run_slurm(
    p: matrix.Plan,
    doc: JsonDoc,
    flags: tuple[str, ...],
    concurrent: int,
    build_timeout: float,
    as_json: bool,
) -> JsonDoc:
    from tfforge.cluster import slurm

    results = paths.builds_dir() / "matrix" / time.strftime("run-%Y%m%d-%H%M%S")
    results.mkdir(parents=True, exist_ok=False)
    script = _write(results / "matrix.sbatch", _slurm_script(p, flags, results, concurrent), 0o755)
    cells = [c.cell for c in p.cells]
    try:
        job = slurm.submit(script)
    except Exception:
        shutil.rmtree(results, ignore_errors=True)  # nothing half-written in builds/
        with contextlib.suppress(OSError):
            results.parent.rmdir()
        raise
    console.info(
        f"submitted Slurm array job {job}: {len(cells)} cells, {concurrent} at a time; "
        f"results in {results}"
    )

    def report(elapsed: float, now: list[slurm.CellState]) -> None:
        counts: dict[str, int] = {}
        for s in now:
            counts[s.state] = counts.get(s.state, 0) + 1
        where = ", ".join(f"{s.cell}@{s.node}" for s in now if s.state == "RUNNING")
        console.info(
            f"[{elapsed:7.1f}s] job {job}: "
            + ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items()))
            + (f" (running: {where})" if where else "")
        )

    # Cells run one after another in the worst case: give the whole array that much time.
    slurm.follow(job, cells, results, timeout_s=build_timeout * len(cells), report=report)
    rows = slurm.collect(cells, results)
    failed = [r for r in rows if r["rc"] != 0]
    summary = {
        **doc,
        "slurm": {
            "job_id": job,
            "results": str(results),
            "script": str(script),
            "concurrent": concurrent,
        },
        "rows": rows,
        "failed": len(failed),
    }
    write_json_atomic(results / "summary.json", summary)
    if as_json:
        console.print_json(summary)
    else:
        t = Table(title=f"Slurm job {job}: {len(rows) - len(failed)}/{len(rows)} cells built")
        for col in ("cell", "node", "time", "cache hits", "wheel"):
            t.add_column(col)
        for r in rows:
            t.add_row(
                r["cell"],
                r["node"] or "?",
                f"{r['seconds']}s" if r["seconds"] is not None else "?",
                "-" if r["remote_cache_hits"] is None else str(r["remote_cache_hits"]),
                Path(r["wheel"]).name if r["wheel"] else f"FAILED: {r['error']}",
            )
        console.out.print(t)
    if failed:
        raise BuildError(
            f"{len(failed)} of {len(rows)} cells failed ("
            + ", ".join(r["cell"] for r in failed)
            + f"); logs in {results}"
        )
    return summary


def cache_command(opts: CacheOptions) -> JsonDoc:
    """`invoke cache serve` (the only action): an nginx WebDAV Bazel HTTP cache until Ctrl-C,
    SIGTERM or SIGHUP. Off loopback only with --allow-remote and --htpasswd."""
    from tfforge import procs
    from tfforge.cluster import cache
    from tfforge.publish.serve import load_htpasswd

    address = cache.listen_address(opts.cache_bind, opts.where("cache_bind"))
    cache.check_port(opts.cache_port, opts.where("cache_port"))
    pw = load_htpasswd(opts.cache_htpasswd) if opts.cache_htpasswd else None
    cache.check_exposure(address, pw, opts.cache_allow_remote, opts.where("cache_bind"))
    state = opts.cache_folder or paths.cache_dir("bazel-remote-cache")
    with procs.stopping_signals():
        server = cache.start(
            state,
            port=opts.cache_port,
            bind=str(address),
            htpasswd=pw,
            allow_remote=opts.cache_allow_remote,
        )
        doc: JsonDoc = {
            "url": server.url,
            "pid": server.pid,
            "store": str(server.store),
            "config": str(server.config),
            "auth": pw is not None,
        }
        try:
            if opts.json:
                console.print_json(doc)
            else:
                console.say(
                    f"Bazel HTTP cache at {server.url} (nginx pid {server.pid}, store "
                    f"{server.store}); build with: invoke build --remote-cache {server.url} ..."
                )
                if address.is_loopback:
                    console.say(
                        "loopback only: builds on this machine reach it (tfforge runs them "
                        "with --network=host); to share it see "
                        "docs/how-to/share-a-bazel-cache.md"
                    )
                else:
                    console.warn(
                        f"the cache listens on {address}, reachable from other machines; "
                        f"writes need a user from {pw}; put TLS in front of it"
                    )
                console.say("Ctrl-C stops it")
            sys.stdout.flush()
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            cache.stop(server.pid)
    return doc
