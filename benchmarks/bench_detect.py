"""Start-up cost of `invoke detect --json`, against invoke's own floor and `archspec cpu`.

Each round runs every command once in a fresh process, in turn (paired runs: a busy moment of
the machine hits all of them alike); the report gives each command's median, min and max, and
the median of the per-round ratios. Target: `invoke detect --json` at most 1.25x
`invoke --list` (invoke's start-up floor, tasks.py included). Where TensorFlow is installed,
detect's probe imports it in a subprocess and that dominates: the ratio is then measured with
--no-tf (the same code path otherwise) and the probed run is shown beside it.
Usage: python benchmarks/bench_detect.py [--runs N]
"""

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.25
INVOKE = [sys.executable, "-m", "invoke", "-r", str(ROOT)]
# The case the target is about (see the module docstring).
DETECT = (
    "invoke detect --json --no-tf"
    if importlib.util.find_spec("tensorflow")
    else "invoke detect --json"
)


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def cases() -> dict[str, list[str]]:
    found = {
        "invoke --list": INVOKE + ["--list"],
        "invoke detect --json": INVOKE + ["detect", "--json"],
    }
    if importlib.util.find_spec("tensorflow") is not None:
        found[DETECT] = INVOKE + ["detect", "--json", "--no-tf"]
    archspec = shutil.which("archspec", path=str(Path(sys.executable).parent)) or shutil.which(
        "archspec"
    )
    if archspec:
        found["archspec cpu"] = [archspec, "cpu"]
    return found


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    commands = cases()
    for cmd in commands.values():
        timed(cmd)  # warm the page cache and the bytecode caches
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            times[name].append(timed(cmd))
    print(f"{'command':32} {'median s':>9} {'min s':>7} {'max s':>7}  (paired runs={args.runs})")
    for name, values in times.items():
        print(f"{name:32} {statistics.median(values):9.3f} {min(values):7.3f} {max(values):7.3f}")
    detect = times[DETECT]

    def ratio(base: str) -> float:
        return statistics.median(d / b for d, b in zip(detect, times[base], strict=True))

    vs_list = ratio("invoke --list")
    print(
        f"{DETECT} / invoke --list: {vs_list:.2f}x (median of paired ratios; "
        f"target <= {TARGET_RATIO}x) {'OK' if vs_list <= TARGET_RATIO else 'OVER TARGET'}"
    )
    if "archspec cpu" in times:
        print(f"{DETECT} / archspec cpu: {ratio('archspec cpu'):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
