"""The `matrix` and `cache` commands: a fleet's build matrix, handed to an existing engine.

`matrix` plans (tfforge.build.matrix), checks every cell's build spec (so a bad shared option
fails before anything is written), then prints the plan, writes a CI file or Slurm script
(tfforge.build.emit), or runs the array on Slurm and collects it (tfforge.cluster.slurm).
`cache serve` runs an nginx WebDAV Bazel cache (tfforge.cluster.cache) until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from tfforge import console, paths, settings
from tfforge.build import emit, matrix
from tfforge.commands.build import make_spec, timeout_seconds
from tfforge.errors import BuildError, ConfigError
from tfforge.files import io_error, write_atomic, write_json_atomic
from tfforge.host import cpu, isa
from tfforge.text import clip, plain

# The build options every cell shares, and how `invoke build` spells them.
SHARED = {
    "base_image": "--base-image",
    "source_dir": "--source-dir",
    "bazel_provider": "--bazel-provider",
    "compiler": "--compiler",
    "gcc_version": "--gcc-version",
    "remote_cache": "--remote-cache",
    "remote_executor": "--remote-executor",
}
DEFAULT_OUT = {
    "github": "matrix/tfforge.github.yml",
    "gitlab": "matrix/tfforge.gitlab-ci.yml",
    "slurm": "matrix/tfforge.sbatch",
}


def shared_flags(shared: Mapping[str, Any]) -> tuple[str, ...]:
    """The `invoke build` flags for the shared options that were given."""
    flags: list[str] = []
    for key, flag in SHARED.items():
        if shared.get(key):
            value = str(Path(shared[key]).resolve()) if key == "source_dir" else str(shared[key])
            flags += [flag, value]
    if shared.get("mkl"):
        flags.append("--mkl")
    flags += [f"--bazel-arg={a}" for a in shared.get("bazel_args") or []]
    return tuple(flags)


def make_plan(
    hosts: str,
    *,
    tf_versions: str | None,
    python_versions: str | None,
    one: bool,
    shared: Mapping[str, Any],
) -> tuple[matrix.Plan, dict[str, str]]:
    """The plan and each cell's build id (every cell's spec is validated here)."""
    opts = settings.load({"gcc_version": shared.get("gcc_version")}, cwd=paths.project_root())
    profiles = cpu.load_hosts(hosts, option="HOSTS")
    p = matrix.plan(
        profiles,
        gcc_version=str(opts.gcc_version),
        tf_versions=matrix.split_list(tf_versions, str(opts.tf_version)),
        python_versions=matrix.split_list(python_versions, str(opts.python_version)),
        one=one,
    )
    ids = {}
    for c in p.cells:
        cli = {k: v for k, v in shared.items() if v not in (None, False, [], ())}
        cli.update(target=c.display, tf_version=c.tf_version, python_version=c.python_version)
        ids[c.cell] = make_spec(cli).build_id
    return p, ids


def _doc(p: matrix.Plan, ids: dict[str, str], flags: tuple[str, ...]) -> dict:
    doc = p.as_dict()
    for cell in doc["cells"]:
        cell["build_id"] = ids[cell["cell"]]
        cell["command"] = ["invoke", "build", *cell["build_args"], *flags]
    return doc


def _show_plan(doc: dict) -> None:
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


def matrix_command(
    hosts: str,
    *,
    tf_versions: str | None = None,
    python_versions: str | None = None,
    one: bool = False,
    shared: Mapping[str, Any],
    emit_format: str | None = None,
    out: str | None = None,
    run: str | None = None,
    dry_run: bool = False,
    concurrent: int | None = None,
    timeout: float | None = None,
    as_json: bool = False,
) -> dict:
    """`invoke matrix HOSTS`: plan, and optionally emit a CI file/Slurm script or run on Slurm."""
    if emit_format and emit_format not in emit.FORMATS:
        raise ConfigError(f"--emit {emit_format!r}: must be one of {', '.join(emit.FORMATS)}")
    if run and run != "slurm":
        raise ConfigError(
            f"--run {run!r}: only 'slurm' runs a matrix (GitHub and GitLab run "
            "the file --emit writes)"
        )
    opts = settings.load(
        {"matrix_concurrent": concurrent}, cwd=paths.project_root(), prefix="matrix_"
    )
    conc = int(settings.positive(opts, "matrix_concurrent"))
    timeout_s = timeout_seconds(timeout)  # --timeout, else the build_timeout setting
    p, ids = make_plan(
        hosts, tf_versions=tf_versions, python_versions=python_versions, one=one, shared=shared
    )
    flags = shared_flags(shared) + (("--timeout", f"{timeout_s:g}") if timeout is not None else ())
    doc = _doc(p, ids, flags)
    if dry_run or not (emit_format or run):
        if as_json:
            console.print_json({**doc, "dry_run": dry_run})
        else:
            _show_plan(doc)
        return doc
    if emit_format:
        path = Path(out or paths.project_root() / DEFAULT_OUT[emit_format])
        if emit_format == "github":
            text = emit.github(p, flags, max_parallel=conc)
        elif emit_format == "gitlab":
            text = emit.gitlab(p, flags)
        else:
            text = _slurm_script(p, flags, paths.builds_dir() / "matrix" / "results", conc)
        _write(path, text, 0o755 if emit_format == "slurm" else 0o644)
        doc["emitted"] = {"format": emit_format, "path": str(path)}
        if not run:
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
    doc: dict,
    flags: tuple[str, ...],
    concurrent: int,
    build_timeout: float,
    as_json: bool,
) -> dict:
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

    def report(elapsed: float, now: list) -> None:
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


def cache_command(
    action: str,
    *,
    port: int | None = None,
    bind: str | None = None,
    htpasswd: str | None = None,
    folder: str | None = None,
    allow_remote: bool | None = None,
    as_json: bool = False,
) -> dict:
    """`invoke cache serve`: an nginx WebDAV Bazel HTTP cache until Ctrl-C, SIGTERM or SIGHUP."""
    from tfforge import procs
    from tfforge.cluster import cache
    from tfforge.publish.serve import load_htpasswd

    if action != "serve":
        raise ConfigError(f"invoke cache {clip(plain(action))!r}: the only action is 'serve'")
    opts = settings.load(
        {"cache_port": port, "cache_bind": bind, "cache_allow_remote": allow_remote},
        cwd=paths.project_root(),
        prefix="cache_",
    )
    address = cache.listen_address(str(opts.cache_bind), opts.origin("cache_bind"))
    cache.check_port(opts.cache_port, opts.origin("cache_port"))
    pw = load_htpasswd(Path(htpasswd).expanduser()) if htpasswd else None
    cache.check_exposure(address, pw, bool(opts.cache_allow_remote), opts.origin("cache_bind"))
    state = Path(folder) if folder else paths.cache_dir("bazel-remote-cache")
    with procs.stopping_signals():
        server = cache.start(
            state,
            port=int(opts.cache_port),
            bind=str(address),
            htpasswd=pw,
            allow_remote=bool(opts.cache_allow_remote),
        )
        try:
            doc = {
                "url": server.url,
                "pid": server.pid,
                "store": str(server.store),
                "config": str(server.config),
                "auth": pw is not None,
            }
            if as_json:
                console.print_json(doc)
            else:
                console.say(
                    f"Bazel HTTP cache at {server.url} (nginx pid {server.pid}, store "
                    f"{server.store}); build with: invoke build --remote-cache {server.url} ..."
                )
                if address.is_loopback:
                    console.say(
                        "loopback only: builds on this machine reach it (tfforge runs them "
                        "with --network=host); to share it see README 'A team's build matrix'"
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
