"""Figures for builds beyond one machine (remote cache, Slurm matrix), medians in one run:

  remote cache   the tfws fixture built on daemon d1 (cold: new sources, empty cache for them),
                 then the same request on daemon d2 (warm: the cache d1 filled); Bazel step
                 seconds, whole-build seconds, remote cache hits / cacheable actions
  slurm          a 3-cell matrix (`invoke matrix --run slurm`) with 1 vs 2 concurrent array
                 tasks: wall seconds

Run as root on a machine set up by scripts/setup.sh:
    .venv/bin/python benchmarks/bench_matrix.py [--reps 3] [--json out.json] [--fixture deps]

--fixture deps builds tfws with the tfws_deps overlay (abseil and Eigen compiled for each
target, their archives served by a loopback mirror, `--mirror`): the figures then measure
compilation rather than fixed costs.
It starts two extra Docker daemons, an nginx cache on loopback and a Slurm cluster, and stops
each by its pid at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import cluster_helpers as ch
import kit_helpers as kh

from tfforge import settings
from tfforge.build import render, request
from tfforge.cluster import cache
from tfforge.options.typed.render import RenderOptions


def invoke(
    *args: str, env: dict, timeout: float = 1800
) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(ROOT), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise SystemExit(f"invoke {' '.join(args[:2])} failed:\n{proc.stderr[-3000:]}")
    return proc, time.monotonic() - start


def new_actions() -> str:
    """A define on every compile: each run's actions (the dependencies' too) are new to every
    cache, so no run is served by the engine's Bazel disk cache from an earlier one; the two
    daemons of one cache rep share it, so only the remote cache connects them."""
    return f"--bazel-arg=--copt=-DTFFORGE_BENCH_RUN={uuid.uuid4().hex}"


def cache_runs(tmp: Path, reps: int, overlay: str = "", via: str = "") -> list[dict]:
    flags = {
        "tf_version": "2.21.0",
        "python_version": "3.11",
        "target": "x86-64-v2",
        "gcc_version": "12.2.0",
        "base_image": ch.BASE,
        "bazel_provider": "debian",
    }
    s = request.make(settings.options(RenderOptions, "render", flags, environ={}).spec)
    image = ch.toolchain_image(render.context(s, render.build_document(s))["apt_packages"])
    daemons = [ch.start_daemon(n, tmp, 201 + i) for i, n in enumerate(("tfforge-d1", "tfforge-d2"))]
    server = None
    rows = []
    try:
        ch.copy_image(image, daemons, tmp)
        server = cache.start(tmp / "cache", port=ch.free_port())
        for rep in range(reps):
            src = ch.fresh_source(tmp / f"src-{rep}", overlay)
            run_flag = new_actions()
            for role, d in (("cold", daemons[0]), ("warm", daemons[1])):
                project = tmp / f"p-{rep}-{role}"
                proc, wall = invoke(
                    "build",
                    "--source-dir",
                    str(src),
                    "--base-image",
                    image,
                    *ch.FIXTURE_ARGS,
                    run_flag,
                    "--target",
                    "x86-64-v2",
                    "--remote-cache",
                    server.url,
                    *(("--mirror", via) if via else ()),
                    "--json",
                    env={
                        "DOCKER_HOST": d.host,
                        "TFFORGE_ROOT": str(project),
                        "TFFORGE_CACHE": str(tmp / "tfcache"),
                    },
                )
                doc = json.loads(proc.stdout)
                rows.append(
                    {
                        "rep": rep,
                        "role": role,
                        "wall_s": round(wall, 2),
                        "bazel_step_s": doc["durations"]["stages_s"].get("build", 0.0),
                        "build_s": doc["durations"]["build_s"],
                        "total_s": doc["durations"]["total_s"],
                        "hits": doc["remote"]["remote_cache_hits"],
                        "cacheable": doc["remote"]["cacheable"],
                    }
                )
                print(f"  cache rep {rep} {role}: {rows[-1]}", file=sys.stderr)
    finally:
        if server:
            cache.stop(server.pid)
        ch.stop_daemons(daemons)
    return rows


def slurm_runs(tmp: Path, reps: int, overlay: str = "", via: str = "") -> list[dict]:
    state = tmp / "slurm"
    up = subprocess.run(
        ["bash", str(ROOT / "scripts/slurm-up.sh"), str(state)], capture_output=True, text=True
    )
    if up.returncode != 0:
        raise SystemExit(up.stderr)
    hosts = tmp / "hosts"
    hosts.mkdir()
    for n in ("qemu-nehalem", "qemu-sandybridge", "qemu-haswell"):
        shutil.copy(ch.FIXTURES / "hosts" / f"{n}.json", hosts)
    rows = []
    try:
        for rep in range(reps):
            for conc in (1, 2):
                src = ch.fresh_source(tmp / f"msrc-{rep}-{conc}", overlay)
                _, wall = invoke(
                    "matrix",
                    str(hosts),
                    "--run",
                    "slurm",
                    "--source-dir",
                    str(src),
                    "--base-image",
                    ch.BASE,
                    *ch.FIXTURE_ARGS,
                    new_actions(),
                    "--concurrent",
                    str(conc),
                    "--json",
                    env={
                        **({"TFFORGE_MIRROR": via} if via else {}),
                        "SLURM_CONF": str(state / "slurm.conf"),
                        "TFFORGE_ROOT": str(tmp / f"mp-{rep}-{conc}"),
                        "TFFORGE_CACHE": str(tmp / "tfcache"),
                    },
                )
                rows.append({"rep": rep, "concurrent": conc, "wall_s": round(wall, 2)})
                print(f"  slurm rep {rep}: {rows[-1]}", file=sys.stderr)
    finally:
        subprocess.run(["bash", str(ROOT / "scripts/slurm-down.sh"), str(state)])
    return rows


def median(rows: list[dict], key: str, **where) -> float:
    return statistics.median(r[key] for r in rows if all(r[k] == v for k, v in where.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", help="also write the raw rows and medians here")
    ap.add_argument("--fixture", choices=("tfws", "deps"), default="tfws")
    ap.add_argument("--skip-slurm", action="store_true", help="only the remote-cache figures")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tfforge-bench-matrix-"))
    overlay = "tfws_deps" if args.fixture == "deps" else ""
    try:
        with contextlib.ExitStack() as stack:
            via = ""
            if overlay:
                from tfforge import paths

                folder = kh.fetch_sources(paths.cache_dir("kit-sources"))
                via, _ = stack.enter_context(kh.serve(folder))
            c_rows = cache_runs(tmp, args.reps, overlay, via)
            s_rows = [] if args.skip_slurm else slurm_runs(tmp, args.reps, overlay, via)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cold_bazel, warm_bazel = (median(c_rows, "bazel_step_s", role=r) for r in ("cold", "warm"))
    cold_build, warm_build = (median(c_rows, "build_s", role=r) for r in ("cold", "warm"))
    hit_ratio = median(
        [{**r, "ratio": r["hits"] / r["cacheable"]} for r in c_rows if r["cacheable"]],
        "ratio",
        role="warm",
    )
    one, two = (median(s_rows, "wall_s", concurrent=c) for c in (1, 2)) if s_rows else (0.0, 0.0)
    cold_total, warm_total = (median(c_rows, "total_s", role=r) for r in ("cold", "warm"))
    summary = {
        "reps": args.reps,
        "cpus": os.cpu_count(),
        "cold_bazel_step_s": cold_bazel,
        "warm_bazel_step_s": warm_bazel,
        "cold_build_s": cold_build,
        "warm_build_s": warm_build,
        "warm_hit_ratio": round(hit_ratio, 3),
        "matrix_wall_s_1": one,
        "matrix_wall_s_2": two,
        "matrix_speedup": round(one / two, 2) if two else None,
        "fixture": args.fixture,
        "cold_total_s": cold_total,
        "warm_total_s": warm_total,
    }
    print(
        f"| figure (median of {args.reps}) | value |\n|---|---|\n"
        f"| fixture Bazel step, cold (d1, empty cache) | {cold_bazel:.1f} s |\n"
        f"| fixture Bazel step, warm (d2, cache filled by d1) | {warm_bazel:.1f} s |\n"
        f"| whole build (toolchain cached), cold / warm | {cold_build:.1f} s / "
        f"{warm_build:.1f} s |\n"
        f"| remote cache hits / cacheable actions, warm | {hit_ratio:.0%} |\n"
        f"| 3-cell Slurm matrix wall time, 1 task at a time | {one:.1f} s |\n"
        f"| 3-cell Slurm matrix wall time, 2 tasks at a time | {two:.1f} s "
        f"({one / two if two else 0:.2f}x) |\n"
        f"| `invoke build` total, cold / warm | {cold_total:.1f} s / {warm_total:.1f} s |"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"summary": summary, "cache": c_rows, "slurm": s_rows}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
