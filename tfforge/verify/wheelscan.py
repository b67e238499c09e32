"""The ISA scans of one wheel's libraries: extracted while the wheel is checked, scanned in a
pool of worker processes (big libraries split into parts), and cached per wheel sha256 and
scanner version in cache_dir('verify')."""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfforge import resources
from tfforge.elfscan import scan as elfscan
from tfforge.elfscan.decode import split_points
from tfforge.elfscan.names import demangle
from tfforge.elfscan.results import LibraryScan
from tfforge.elfscan.rules import code_table, rules
from tfforge.errors import ConfigError, InternalError
from tfforge.files import sha256_file, write_json_atomic
from tfforge.host import isa
from tfforge.paths import cache_dir
from tfforge.wheel import builtwith, symvers
from tfforge.wheel import read as wheel


def scanner_key(examples: int) -> str:
    """Changes whenever a scan could give another answer: scanner code, rules, decoder."""
    from importlib.metadata import version

    h = hashlib.sha256()
    for module in sorted(Path(elfscan.__file__).parent.glob("*.py")):
        h.update(module.read_bytes())
    for name in ("verify.toml", "verify_allow.toml", "isa.toml"):
        h.update(resources.read_bytes(resources.DATA, name))
    h.update(f"iced-x86 {version('iced-x86')}; examples {examples}".encode())
    return h.hexdigest()[:16]


# Libraries with more code than this are decoded in parts by several workers (jobs > 1):
# libtensorflow_cc alone is four fifths of a TensorFlow wheel's code.
SPLIT_BYTES = 64 << 20
# --jobs 0: one scan process per CPU, at most this many (default_jobs).
MAX_DEFAULT_JOBS = 2


def _scan_worker(path: str, member: str, examples: int) -> LibraryScan:
    """Runs in a worker process (module level so it pickles). Examples stay mangled:
    readable() demangles every library's in one c++filt run."""
    return elfscan.scan_library(Path(path), display_name=member, examples=examples, readable=False)


def _warm_up() -> None:
    """The first job: the worker starts and loads the decoder tables while this process is
    still opening the wheel (a spawned process takes about half a second to start)."""
    code_table()
    rules()


def readable(scans: list[LibraryScan]) -> list[LibraryScan]:
    """The scans with demangled example names (one c++filt process for the whole wheel)."""
    shown = demangle(x for s in scans for f in s.features for x in f.examples)
    return [
        dataclasses.replace(
            s,
            features=tuple(
                dataclasses.replace(f, examples=tuple(shown.get(x, x) for x in f.examples))
                for f in s.features
            ),
        )
        for s in scans
    ]


def _worker_died(member: str) -> InternalError:
    return InternalError(
        f"a scan worker died while scanning {member} (killed for memory?); "
        "nothing was cached: run verify again with --jobs 1 (one library in memory at a time)"
    )


@dataclass
class ElfFacts:
    """How each ELF member was built and which symbol versions it needs, read from the files
    the scan pass extracts (so verify reads the wheel once). `complete` once every ELF member of
    an undamaged wheel was read; otherwise the callers read the wheel again."""

    builds: list[builtwith.ElfBuild] = field(default_factory=list)
    needs: list[symvers.ElfNeeds] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    complete: bool = False

    def take(self, member: str, path: Path) -> None:
        if path.stat().st_size < 64:  # too short for an ELF header: builtwith skips it too
            return
        with open(path, "rb") as fh:
            self.builds.append(builtwith.read_elf(fh, member))
        try:
            self.needs.append(symvers.read_needs(path, member))
        except ValueError as exc:
            self.errors.append(str(exc))

    def in_archive_order(self, names: list[str]) -> None:
        """Members in the archive's order, as a separate read lists them."""
        at = {n: i for i, n in enumerate(names)}
        self.builds.sort(key=lambda b: at.get(b.member, len(at)))
        self.needs.sort(key=lambda n: at.get(n.member, len(at)))
        self.complete = True


@dataclass(frozen=True)
class _Job:
    kind: str  # whole | part | finish
    member: str
    path: Path
    t0: float
    part: int = 0


class _Scanner:
    """Scans libraries as the wheel reader hands them over, in `jobs` worker processes (the
    reading, decompressing and hashing go on in this process meanwhile, with no GIL shared
    with the scan); with jobs > 1 a big library is split into parts decoded in parallel and
    then classified by one more job."""

    def __init__(
        self,
        jobs: int,
        examples: int,
        status: Callable[[str], None],
        elf_facts: ElfFacts | None = None,
    ):
        self.jobs, self.examples, self.status = jobs, examples, status
        self.elf_facts = elf_facts
        self.scans: list[LibraryScan] = []
        self.errors: list[str] = []
        self.pool = futures.ProcessPoolExecutor(
            max_workers=max(jobs, 1), mp_context=multiprocessing.get_context("spawn")
        )
        self.pending: dict[futures.Future[Any], _Job] = {}
        self.parts: dict[str, list[str | None]] = {}
        for _ in range(max(jobs, 1)):
            self.pool.submit(_warm_up)

    def add(self, member: str, path: Path) -> None:
        pool = self.pool
        t0 = time.perf_counter()
        try:
            bounds = (
                split_points(path, self.jobs, min_bytes=SPLIT_BYTES)
                if self.jobs > 1
                else [(0, 1 << 64)]
            )
        except ConfigError as exc:
            self._take(member, path)
            self._failed(member, path, exc)
            return
        if len(bounds) == 1:
            fut = pool.submit(_scan_worker, str(path), member, self.examples)
            self.pending[fut] = _Job("whole", member, path, t0)
        else:
            self.parts[member] = [None] * len(bounds)
            for i, (lo, hi) in enumerate(bounds):
                part = pool.submit(
                    elfscan.stream_part, str(path), lo, hi, out=f"{path}.part{i}.npz"
                )
                self.pending[part] = _Job("part", member, path, t0, i)
        self._take(member, path)  # after the submit: here, while the workers scan
        self.poll(block=False)

    def _take(self, member: str, path: Path) -> None:
        if self.elf_facts is not None:
            self.elf_facts.take(member, path)

    def poll(self, block: bool) -> None:
        while self.pending:
            done, _ = futures.wait(
                list(self.pending),
                timeout=None if block else 0,
                return_when=futures.FIRST_COMPLETED,
            )
            if not done:
                return
            for fut in done:
                job = self.pending.pop(fut)
                member, path = job.member, job.path
                if isinstance(fut.exception(), BrokenProcessPool):
                    raise _worker_died(member)
                if job.kind != "part":
                    self._done(member, path, fut.result, job.t0)
                    continue
                try:
                    self.parts[member][job.part] = str(fut.result())
                except ConfigError as exc:
                    self.parts.pop(member, None)
                    self._failed(member, path, exc)
                    continue
                if member in self.parts:
                    done_parts = [p for p in self.parts[member] if p is not None]
                    if len(done_parts) < len(self.parts[member]):
                        continue
                    del self.parts[member]
                    nxt = self.pool.submit(
                        elfscan.finish,
                        str(path),
                        done_parts,
                        display_name=member,
                        examples=self.examples,
                        readable=False,
                    )
                    self.pending[nxt] = _Job("finish", member, path, job.t0)

    def _done(self, member: str, path: Path, result: Callable[[], LibraryScan], t0: float) -> None:
        try:
            scan = result()
        except ConfigError as exc:  # e.g. an aarch64 library inside an x86_64 wheel
            self._failed(member, path, exc)
            return
        except BrokenProcessPool:
            raise _worker_died(member) from None
        self.scans.append(scan)
        self._remove(path)
        if scan.code_bytes >= 1 << 20:  # small libraries: only in the summary line
            self.status(
                f"scanned {member}: {scan.code_bytes / 1e6:.1f} MB code in "
                f"{time.perf_counter() - t0:.1f} s; baseline "
                f"{', '.join(sorted(scan.baseline, key=isa.sort_key)) or 'none'}"
            )

    def _failed(self, member: str, path: Path, exc: Exception) -> None:
        self.errors.append(f"{member}: {exc}")
        self.status(f"could not scan {member}: {exc}")
        self._remove(path)

    @staticmethod
    def _remove(path: Path) -> None:
        path.unlink(missing_ok=True)
        for part in path.parent.glob(f"{path.name}.part*.npz"):
            part.unlink(missing_ok=True)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _read_and_scan(
    wheel_path: Path,
    scanner: _Scanner,
    progress: Callable[[int, int], None] | None,
    meanwhile: Callable[[wheel.WheelCheck], None],
) -> tuple[wheel.WheelCheck, list[LibraryScan], list[str]]:
    """One pass over the wheel: check every member, extract the ELF libraries and scan each as
    soon as it is complete (in `scanner`'s workers); `meanwhile` runs once the reading is done,
    while the workers still scan."""
    with tempfile.TemporaryDirectory(prefix="verify-", dir=cache_dir("tmp")) as tmp:
        checked = wheel.check(
            wheel_path,
            extract_dir=Path(tmp),
            on_library=scanner.add,
            progress=progress,
            smallest_first=scanner.jobs <= 1,
        )
        meanwhile(checked)
        scanner.poll(block=True)
    return checked, readable(scanner.scans), scanner.errors


# A wheel at least this big takes longer to hash (for the cache lookup) than a scan worker takes
# to start, so the workers are started first; smaller ones start them only on a cache miss.
PRESTART_BYTES = 64 << 20


def scan_wheel(
    wheel_path: Path,
    *,
    jobs: int = 1,
    examples: int = elfscan.EXAMPLES,
    use_cache: bool = True,
    status: Callable[[str], None] = lambda _m: None,
    progress: Callable[[int, int], None] | None = None,
    elf_facts: ElfFacts | None = None,
) -> tuple[wheel.WheelCheck, list[LibraryScan], list[str], str, bool]:
    """(structure check, library scans, scan errors, sha256, from cache?).

    elf_facts: filled with every ELF member's build facts and needs when the wheel is scanned
    (not from the cache) and undamaged.

    Scans are cached per wheel sha256 and scanner version in cache_dir('verify'); the
    structure check always runs (it is what proves the bytes are the ones hashed). Without the
    cache the wheel is hashed after the reading, while the workers still scan.
    """
    scanner, sha = None, ""
    if not use_cache or wheel_path.stat().st_size >= PRESTART_BYTES:
        scanner = _Scanner(jobs, examples, status, elf_facts)  # starts while the hash runs
    try:
        if use_cache:
            sha = sha256_file(wheel_path)
            found = _cached(wheel_path, sha, examples, status, progress)
            if found is not None:
                return found
        scanner = scanner or _Scanner(jobs, examples, status, elf_facts)
        t0 = time.perf_counter()

        def meanwhile(checked: wheel.WheelCheck) -> None:
            """What needs the whole wheel read but not its scans."""
            nonlocal sha
            if not sha:
                sha = sha256_file(wheel_path)
            if elf_facts is not None and not checked.problems:
                with zipfile.ZipFile(wheel_path) as z:
                    elf_facts.in_archive_order(z.namelist())

        checked, scans, errors = _read_and_scan(wheel_path, scanner, progress, meanwhile)
    finally:
        if scanner is not None:
            scanner.close()
    status(
        f"read {checked.facts.members} members and scanned {len(scans)} ELF libraries "
        f"({sum(s.code_bytes for s in scans) / 1e6:.1f} MB code) in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    scans.sort(key=lambda s: s.path)
    # Only a scan that read every member and every library is kept: a later run must never
    # trust one that a fault (a full disk, a damaged member) left short.
    if not errors and not checked.problems:
        write_json_atomic(
            _cache_path(sha, examples),
            {
                "wheel": wheel_path.name,
                "sha256": sha,
                "complete": True,
                "libraries": [s.to_dict() for s in scans],
                "errors": [],
            },
        )
    return checked, scans, errors, sha, False


def _cache_path(sha: str, examples: int) -> Path:
    return cache_dir("verify") / f"{sha}-{scanner_key(examples)}.json"


def _cached(
    wheel_path: Path,
    sha: str,
    examples: int,
    status: Callable[[str], None],
    progress: Callable[[int, int], None] | None,
) -> tuple[wheel.WheelCheck, list[LibraryScan], list[str], str, bool] | None:
    """scan_wheel's answer from the cache, or None (an unreadable entry is removed)."""
    cached = _cache_path(sha, examples)
    if not cached.is_file():
        return None
    try:
        doc = json.loads(cached.read_text())
        if doc.get("complete") is not True:
            raise ValueError("not a complete scan")
        scans = [LibraryScan.from_dict(d) for d in doc["libraries"]]
    except (ValueError, KeyError, TypeError):
        cached.unlink(missing_ok=True)  # unreadable cache: scan again
        return None
    status(f"using the cached ISA scan of this wheel ({cached})")
    return (
        wheel.check(wheel_path, progress=progress),
        scans,
        list(doc.get("errors", [])),
        sha,
        True,
    )


WORKER_BYTES = 450 << 20  # the most one scan worker was measured to hold (a TensorFlow wheel)


def _available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), in bytes; None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def bounded_jobs(requested: int) -> int:
    """--jobs N as run: at most one worker per CPU and per WORKER_BYTES of available memory."""
    memory = _available_memory()
    by_memory = max(memory // WORKER_BYTES, 1) if memory is not None else requested
    return max(1, min(requested, os.cpu_count() or 1, by_memory))


def default_jobs() -> int:
    """What --jobs 0 (the verify_jobs default) means: one scan process per CPU, at most
    MAX_DEFAULT_JOBS (each worker adds ~200-450 MB)."""
    return bounded_jobs(MAX_DEFAULT_JOBS)
