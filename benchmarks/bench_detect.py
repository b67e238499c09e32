"""Wall time of `invoke detect --json` (target: under 0.5 s on the team machine).

Runs the real command line several times in fresh processes and prints the median, min and max,
beside py-cpuinfo's full get_cpu_info() (which adds its ~1 s CPUID probe) measured in the same run.
Usage: python benchmarks/bench_detect.py [--runs N]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    cases = {
        "invoke detect --json": [sys.executable, "-m", "invoke", "detect", "--json"],
        "invoke detect --json --no-tf": [sys.executable, "-m", "invoke", "detect", "--json",
                                         "--no-tf"],
        "py-cpuinfo get_cpu_info() (CPUID path)": [
            sys.executable, "-c", "import cpuinfo; cpuinfo.get_cpu_info()"],
    }
    print(f"{'command':42} {'median s':>9} {'min s':>7} {'max s':>7}  (runs={args.runs})")
    for name, cmd in cases.items():
        timed(cmd)  # warm the page cache
        times = [timed(cmd) for _ in range(args.runs)]
        print(f"{name:42} {statistics.median(times):9.3f} {min(times):7.3f} {max(times):7.3f}")
    print("target: invoke detect --json under 0.5 s (TensorFlow not installed in this env; when it "
          "is, detect adds the import probe's time)")


if __name__ == "__main__":
    main()
