"""The cost of checking tfforge/data/release_evidence.toml against all eight releases' wheels.

Runs `tools/release_evidence.py --check --release X` for every pinned release, one process each,
and prints per release: the wheel read and its size, whether it was already in the tfforge cache,
the seconds the check took, and its verdict; then the totals. The first run downloads every
wheel not yet cached (about 1.9 GB for the eight releases); later runs only read the index and
the cached wheels. CI checks the two releases whose wheels the verify corpus already fetches
(tests/integration/test_release_evidence_real.py); this covers the rest.
Usage: python benchmarks/bench_release_evidence.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfforge.build import evidence, toolchains
from tfforge.wheel import fetch

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    rows = []
    failed = 0
    t_all = time.perf_counter()
    recorded = evidence.load()
    for version in toolchains.known_versions():
        ev = recorded[version]
        cached = fetch.cached_wheel(f"{ev.project}=={version}", python_version="3.11")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "release_evidence.py"), "--check"]
            + ["--release", version],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t0
        path = fetch.cached_wheel(f"{ev.project}=={version}", python_version="3.11")
        size = path.stat().st_size / 1e6 if path else 0.0
        verdict = "matches" if proc.returncode == 0 else f"exit {proc.returncode}"
        failed += proc.returncode != 0
        rows.append((version, ev.wheel.name, size, cached is not None, seconds, verdict))
        if proc.returncode:
            sys.stderr.write(proc.stderr[-2000:])
    total = time.perf_counter() - t_all
    print("| release | wheel read | MB | cached before | seconds | --check |")
    print("|---|---|---|---|---|---|")
    for version, name, size, was_cached, seconds, verdict in rows:
        print(
            f"| {version} | `{name}` | {size:.0f} | {'yes' if was_cached else 'no'} "
            f"| {seconds:.1f} | {verdict} |"
        )
    downloaded = sum(r[2] for r in rows if not r[3])
    print(
        f"\n{len(rows)} releases in {total:.1f} s; downloaded {downloaded:.0f} MB this run; "
        f"{sum(r[2] for r in rows):.0f} MB of wheels in the cache; {failed} out of date"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
