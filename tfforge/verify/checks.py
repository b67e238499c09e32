"""`invoke verify`: the verdict on one wheel, with the evidence for it.

Checks: structure (tfforge.wheel), Python tag vs interpreter, manylinux tag vs the glibc symbol
versions the libraries need, provenance (tfforge.json), ISA needs per library (tfforge.elfscan:
baseline vs dispatched), compatibility with this host / snapshots / a fleet, the claim of the
local version label, and optionally an emulated run (tfforge.emulate).
Exit: 0 all pass, 1 a check failed (VerifyError), 2 unusable input (ConfigError).
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from tfforge import resources
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import archspec.cpu
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from tfforge import console, paths, settings
from tfforge.host import cpu
from tfforge.elfscan import scan as elfscan
from tfforge.verify import emulate
from tfforge.host import isa
from tfforge.wheel import read as wheel
from tfforge.errors import ConfigError, VerifyError
from tfforge.files import sha256_file, write_json_atomic
from tfforge.paths import cache_dir

PASS, FAIL, SKIP = "pass", "fail", "skip"
# Legacy manylinux names and the glibc each promises (PEP 600 aliases).
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
EXT_SUFFIX = re.compile(r"\.cpython-(\d)(\d+)[a-z]*-x86_64-linux-gnu\.so$")


@dataclass(frozen=True)
class Check:
    name: str
    status: str                      # pass | fail | skip
    summary: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostVerdict:
    name: str
    model: str
    source: str
    ok: bool
    missing: tuple[str, ...]             # baseline features the host lacks: why it fails
    missing_dispatched: tuple[str, ...]  # dispatched ones it lacks: never a failure


@dataclass(frozen=True)
class EmulationVerdict:
    result: emulate.EmulationResult
    predicted_missing: tuple[str, ...]   # baseline features the model lacks
    agrees: bool                         # the run went as the static verdict predicts


@dataclass(frozen=True)
class VerifyReport:
    wheel: str
    sha256: str
    name: str
    version: str
    tags: tuple[str, ...]
    size: int
    members: int
    checks: tuple[Check, ...]
    libraries: tuple[elfscan.LibraryScan, ...]
    baseline: tuple[str, ...]            # union over libraries: what the wheel requires
    dispatched: tuple[str, ...]          # used only behind run-time checks everywhere
    hosts: tuple[HostVerdict, ...]
    emulation: tuple[EmulationVerdict, ...]
    scan_cached: bool
    seconds: float
    timings: tuple[tuple[str, float], ...] = ()
    rules: tuple[str, ...] = field(default=elfscan.RULES)

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["libraries"] = [lib.to_dict() for lib in self.libraries]
        d["ok"] = self.ok
        d["exit_code"] = 0 if self.ok else 1
        return d


# ---- the library scans, in parallel and cached ----------------------------------------------
def scanner_key(examples: int) -> str:
    """Changes whenever a scan could give another answer: scanner code, rules, decoder."""
    from importlib.metadata import version
    h = hashlib.sha256(Path(elfscan.__file__).read_bytes())
    for name in ("verify.toml", "verify_allow.toml", "isa.toml"):
        h.update(resources.read_bytes(resources.DATA, name))
    h.update(f"iced-x86 {version('iced-x86')}; examples {examples}".encode())
    return h.hexdigest()[:16]


# Libraries with more code than this are decoded in parts by several workers (jobs > 1):
# libtensorflow_cc alone is four fifths of a TensorFlow wheel's code.
SPLIT_BYTES = 64 << 20
# --jobs 0: one scan process per CPU, at most this many (default_jobs).
MAX_DEFAULT_JOBS = 2


def _scan_worker(path: str, member: str, examples: int) -> elfscan.LibraryScan:
    """Runs in a worker process (module level so it pickles). Examples stay mangled:
    readable() demangles every library's in one c++filt run."""
    return elfscan.scan_library(Path(path), display_name=member, examples=examples,
                                readable=False)


def readable(scans: list[elfscan.LibraryScan]) -> list[elfscan.LibraryScan]:
    """The scans with demangled example names (one c++filt process for the whole wheel)."""
    shown = elfscan.demangle(x for s in scans for f in s.features for x in f.examples)
    return [dataclasses.replace(s, features=tuple(
        dataclasses.replace(f, examples=tuple(shown.get(x, x) for x in f.examples))
        for f in s.features)) for s in scans]


class _Scanner:
    """Scans libraries as the wheel reader hands them over: in this process (jobs=1) or in a
    pool of worker processes, a big library split into parts decoded in parallel and then
    classified by one more job."""

    def __init__(self, jobs: int, examples: int, status: Callable[[str], None]):
        self.jobs, self.examples, self.status = jobs, examples, status
        self.scans: list[elfscan.LibraryScan] = []
        self.errors: list[str] = []
        self.pool = (futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
            if jobs > 1 else None)
        self.pending: dict[futures.Future, tuple] = {}
        self.parts: dict[str, list] = {}

    def add(self, member: str, path: Path) -> None:
        if self.pool is None:
            t0 = time.perf_counter()
            self._done(member, path, lambda: _scan_worker(str(path), member, self.examples), t0)
            return
        t0 = time.perf_counter()
        try:
            bounds = elfscan.split_points(path, self.jobs, min_bytes=SPLIT_BYTES)
        except ConfigError as exc:
            self._failed(member, path, exc)
            return
        if len(bounds) == 1:
            fut = self.pool.submit(_scan_worker, str(path), member, self.examples)
            self.pending[fut] = ("whole", member, path, t0)
        else:
            self.parts[member] = [None] * len(bounds)
            for i, (lo, hi) in enumerate(bounds):
                fut = self.pool.submit(elfscan.stream_part, str(path), lo, hi,
                                       out=f"{path}.part{i}.npz")
                self.pending[fut] = ("part", member, path, t0, i)
        self.poll(block=False)

    def poll(self, block: bool) -> None:
        while self.pending:
            done, _ = futures.wait(list(self.pending), timeout=None if block else 0,
                                   return_when=futures.FIRST_COMPLETED)
            if not done:
                return
            for fut in done:
                kind, member, path, t0, *rest = self.pending.pop(fut)
                if kind != "part":
                    self._done(member, path, fut.result, t0)
                    continue
                try:
                    self.parts[member][rest[0]] = fut.result()
                except ConfigError as exc:
                    self.parts.pop(member, None)
                    self._failed(member, path, exc)
                    continue
                if member in self.parts and all(p is not None for p in self.parts[member]):
                    parts = [str(p) for p in self.parts.pop(member)]
                    nxt = self.pool.submit(elfscan.finish, str(path), parts,
                                           display_name=member, examples=self.examples,
                                           readable=False)
                    self.pending[nxt] = ("finish", member, path, t0)

    def _done(self, member: str, path: Path, result: Callable[[], elfscan.LibraryScan],
              t0: float) -> None:
        try:
            scan = result()
        except ConfigError as exc:      # e.g. an aarch64 library inside an x86_64 wheel
            self._failed(member, path, exc)
            return
        self.scans.append(scan)
        self._remove(path)
        if scan.code_bytes >= 1 << 20:          # small libraries: only in the summary line
            self.status(f"scanned {member}: {scan.code_bytes / 1e6:.1f} MB code, "
                        f"{scan.instructions / 1e6:.2f} M instructions in "
                        f"{time.perf_counter() - t0:.1f} s; baseline "
                        f"{', '.join(sorted(scan.baseline, key=isa.sort_key)) or 'none'}")

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
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _read_and_scan(wheel_path: Path, *, jobs: int, examples: int,
                   status: Callable[[str], None], progress: Callable[[int, int], None] | None
                   ) -> tuple[wheel.WheelCheck, list[elfscan.LibraryScan], list[str]]:
    """One pass over the wheel: check every member, extract the ELF libraries (largest first)
    and scan each as soon as it is complete."""
    with tempfile.TemporaryDirectory(prefix="verify-", dir=cache_dir("tmp")) as tmp:
        scanner = _Scanner(jobs, examples, status)
        try:
            checked = wheel.check(wheel_path, extract_dir=Path(tmp), on_library=scanner.add,
                                  progress=progress)
            scanner.poll(block=True)
        finally:
            scanner.close()
    return checked, readable(scanner.scans), scanner.errors


def scan_wheel(wheel_path: Path, *, jobs: int = 1, examples: int = elfscan.EXAMPLES,
               use_cache: bool = True, status: Callable[[str], None] = lambda _m: None,
               progress: Callable[[int, int], None] | None = None
               ) -> tuple[wheel.WheelCheck, list[elfscan.LibraryScan], list[str], str, bool]:
    """(structure check, library scans, scan errors, sha256, from cache?).

    Scans are cached per wheel sha256 and scanner version in cache_dir('verify'); the
    structure check always runs (it is what proves the bytes are the ones hashed).
    """
    sha = sha256_file(wheel_path)
    cached = cache_dir("verify") / f"{sha}-{scanner_key(examples)}.json"
    if use_cache and cached.is_file():
        try:
            doc = json.loads(cached.read_text())
            scans = [elfscan.LibraryScan.from_dict(d) for d in doc["libraries"]]
            status(f"using the cached ISA scan of this wheel ({cached})")
            return (wheel.check(wheel_path, progress=progress), scans,
                    list(doc.get("errors", [])), sha, True)
        except (ValueError, KeyError, TypeError):
            cached.unlink(missing_ok=True)      # unreadable cache: scan again
    t0 = time.perf_counter()
    checked, scans, errors = _read_and_scan(wheel_path, jobs=jobs, examples=examples,
                                            status=status, progress=progress)
    status(f"read {checked.facts.members} members and scanned {len(scans)} ELF libraries "
           f"({sum(s.code_bytes for s in scans) / 1e6:.1f} MB code, "
           f"{sum(s.instructions for s in scans) / 1e6:.1f} M instructions) in "
           f"{time.perf_counter() - t0:.1f} s")
    scans.sort(key=lambda s: s.path)
    write_json_atomic(cached, {"wheel": wheel_path.name, "sha256": sha,
                               "libraries": [s.to_dict() for s in scans], "errors": errors})
    return checked, scans, errors, sha, False


# ---- individual checks ---------------------------------------------------------------------
def structure_check(c: wheel.WheelCheck) -> Check:
    f = c.facts
    if c.problems:
        return Check("structure", FAIL, f"{len(c.problems)} problem(s): {c.problems[0]}",
                     c.problems)
    return Check("structure", PASS,
                 f"{f.members} members, RECORD sha256 and sizes match, WHEEL/METADATA agree "
                 f"with the file name ({f.name} {f.version})")


def python_check(facts: wheel.WheelFacts, python: str, members: Iterable[str]) -> Check:
    """Can the target interpreter install the wheel, and do extension suffixes agree?"""
    m = re.fullmatch(r"(\d)\.(\d+)", python.strip())
    if not m:
        raise ConfigError(f"--python {python!r}: give a version like 3.11")
    version = (int(m[1]), int(m[2]))
    platforms = sorted({t.platform for t in facts.tags})
    ok_tags = set(cpython_tags(version, platforms=platforms)) | \
        set(compatible_tags(version, platforms=platforms))
    details = []
    cp = {t.interpreter for t in facts.tags if t.interpreter.startswith("cp")}
    for member in members:
        s = EXT_SUFFIX.search(member)
        if s and cp and f"cp{s[1]}{s[2]}" not in cp:
            details.append(f"{member} is built for CPython {s[1]}.{s[2]}, the wheel is tagged "
                           f"{', '.join(sorted(cp))}")
    tags = ", ".join(sorted(str(t) for t in facts.tags))
    if not facts.tags & ok_tags:
        return Check("python", FAIL, f"tags {tags} do not install on Python {python} "
                     "(build for it, or verify with --python matching the wheel)", tuple(details))
    if details:
        return Check("python", FAIL, f"extension modules disagree with the tag: {details[0]}",
                     tuple(details))
    rp = f"; Requires-Python {facts.requires_python}" if facts.requires_python else ""
    return Check("python", PASS, f"{tags} installs on Python {python}{rp}")


def manylinux_glibc(tags: Iterable[Tag]) -> tuple[int, int] | None:
    """The glibc the wheel's manylinux tags promise (the lowest when several), or None."""
    promised = []
    for t in tags:
        m = re.fullmatch(r"manylinux_(\d+)_(\d+)_\w+", t.platform)
        if m:
            promised.append((int(m[1]), int(m[2])))
        for legacy, v in LEGACY_MANYLINUX.items():
            if t.platform.startswith(legacy + "_"):
                promised.append(v)
    return min(promised) if promised else None


def glibc_check(facts: wheel.WheelFacts, scans: list[elfscan.LibraryScan]) -> Check:
    needs = [(tuple(map(int, s.glibc.split("."))), s.path) for s in scans if s.glibc]
    need, who = max(needs) if needs else ((0, 0), None)
    need_text = f"glibc {need[0]}.{need[1]} ({who})" if who else "no GLIBC symbol versions"
    promised = manylinux_glibc(facts.tags)
    if promised is None:
        plats = ", ".join(sorted({t.platform for t in facts.tags}))
        return Check("manylinux", SKIP, f"platform {plats} makes no glibc promise; the "
                     f"libraries need {need_text}")
    if need > promised:
        over = sorted(p for v, p in needs if v > promised)
        return Check("manylinux", FAIL,
                     f"tag promises glibc {promised[0]}.{promised[1]} but {need_text} is needed",
                     tuple(f"{p} needs a newer glibc" for p in over))
    return Check("manylinux", PASS, f"tag promises glibc {promised[0]}.{promised[1]}; the "
                 f"libraries need at most {need_text}")


def _label_tokens(label: str) -> list[str]:
    """Label tokens, re-joining what PEP 440 split ('avx512.vnni' -> 'avx512_vnni')."""
    parts, out, i = label.split("."), [], 0
    while i < len(parts):
        for k in (3, 2, 1):
            joined = "_".join(parts[i:i + k])
            if k == 1 or isa.lookup(joined) or isa.parse_level(joined) or \
                    joined in archspec.cpu.TARGETS:
                out.append(joined)
                i += k
                break
    return out


def _characteristic(features: frozenset[str]) -> frozenset[str]:
    """The vector features a build for this target shows in ordinary code."""
    for tier in (("avx512f",), ("avx2", "fma"), ("avx",), ("sse4_2",)):
        if tier[0] in features:
            return frozenset(f for f in tier if f in features)
    return frozenset()


def claimed_features(label: str) -> tuple[frozenset[str], list[str]]:
    """(features the label claims, label words that are not ISA claims)."""
    claimed, other = set(), []
    for token in _label_tokens(label):
        feat = isa.lookup(token)
        level = isa.parse_level(token)
        if feat:
            claimed.add(feat)
        elif level:
            claimed |= _characteristic(isa.level_features(level))
        elif token in archspec.cpu.TARGETS and archspec.cpu.TARGETS[token].family.name == "x86_64":
            claimed |= _characteristic(isa.normalize(archspec.cpu.TARGETS[token].features))
        else:
            other.append(token)
    return frozenset(claimed), other


def claim_check(facts: wheel.WheelFacts, baseline: frozenset[str],
                scans: list[elfscan.LibraryScan],
                claim: tuple[frozenset[str], list[str]]) -> Check:
    """claim: claimed_features(facts.local_label), computed once by the caller."""
    label = facts.local_label
    if not label:
        return Check("claim", SKIP, "no local version label, so no ISA claim to check")
    claimed, other = claim
    if not claimed:
        return Check("claim", SKIP, f"label +{label} names no ISA feature"
                     + (f" ({', '.join(other)})" if other else ""))
    missing = sorted(claimed - baseline, key=isa.sort_key)
    ordinary = {f: sum(e.ordinary for s in scans if (e := s.feature(f))) for f in claimed}
    shown = ", ".join(f"{f} in {ordinary[f]} ordinary functions"
                      for f in sorted(claimed, key=isa.sort_key))
    if missing:
        return Check("claim", FAIL,
                     f"label +{label} claims {', '.join(missing)} but no ordinary code uses "
                     f"{'it' if len(missing) == 1 else 'them'} ({shown})")
    return Check("claim", PASS, f"label +{label}: {shown}")


def provenance_check(facts: wheel.WheelFacts, claimed: frozenset[str]) -> Check:
    if facts.provenance_error:
        return Check("provenance", FAIL, facts.provenance_error)
    doc = facts.provenance
    if doc is None:
        return Check("provenance", SKIP, f"no .dist-info/{wheel.PROVENANCE}: not built by "
                     "tfforge")
    problems = []
    derived = doc.get("derived") if isinstance(doc.get("derived"), dict) else {}
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    if not derived or not spec:
        problems.append(f"{wheel.PROVENANCE} lacks the 'spec'/'derived' build record")
    label = facts.local_label or ""
    recorded = str(derived.get("local_version", ""))
    if derived and recorded != label:
        problems.append(f"build record says local version {recorded!r}, the wheel has "
                        f"{label!r}")
    try:
        if derived.get("version") and Version(str(derived["version"])) != facts.version:
            problems.append(f"build record version {derived['version']} != wheel "
                            f"{facts.version}")
    except InvalidVersion:
        problems.append(f"build record version {derived['version']!r} is not PEP 440")
    if spec.get("tf_version") and spec["tf_version"] != facts.version.public:
        problems.append(f"built from TensorFlow {spec['tf_version']}, the wheel is "
                        f"{facts.version.public}")
    py = str(spec.get("python_version", ""))
    if py and not any(t.interpreter == "cp" + py.replace(".", "") for t in facts.tags):
        problems.append(f"built for Python {py}, the wheel is tagged "
                        f"{', '.join(sorted({t.interpreter for t in facts.tags}))}")
    built_for = frozenset(isa.lookup(f) or f for f in derived.get("features", []))
    if derived and claimed - built_for:
        problems.append(f"label claims {', '.join(sorted(claimed - built_for))} but the build "
                        f"targeted only {', '.join(sorted(built_for, key=isa.sort_key))}")
    if problems:
        return Check("provenance", FAIL, problems[0], tuple(problems))
    extra = f", build {doc.get('id')}" if doc.get("id") else ""
    copts = " ".join(derived.get("copts", [])) or "no extra flags"
    return Check("provenance", PASS, f"tfforge build record matches +{label}{extra} "
                 f"(copts: {copts})")


def reproducible_check(facts: wheel.WheelFacts, sha256: str, builds_dir: Path | None) -> Check:
    """Whether the provenance holds inputs only and a rebuild of its id gave this very wheel."""
    from tfforge.docker.rebuild import status

    if not facts.provenance or builds_dir is None:
        return Check("reproducible", SKIP, "no tfforge provenance" if not facts.provenance
                     else "no builds/ folder given")
    said = status(facts.provenance, sha256, builds_dir)
    state = {"identical": PASS if said["inputs_only"] else SKIP, "differs": FAIL}.get(
        said["rebuild"], SKIP)
    return Check("reproducible", state, said["summary"])


def host_verdicts(hosts: list[cpu.HostProfile], baseline: frozenset[str],
                  dispatched: frozenset[str]) -> list[HostVerdict]:
    out = []
    for h in hosts:
        if not h.is_x86:
            out.append(HostVerdict(h.name, h.model_name, h.source, False, ("x86_64",), ()))
            continue
        have = h.features
        miss = tuple(sorted(baseline - have, key=isa.sort_key))
        extra = tuple(sorted(dispatched - have, key=isa.sort_key))
        out.append(HostVerdict(h.name, h.model_name, h.source, not miss, miss, extra))
    return out


def compatibility_check(verdicts: list[HostVerdict]) -> Check:
    bad = [v for v in verdicts if not v.ok]
    details = tuple(f"{v.name}: missing {', '.join(v.missing)}" for v in bad)
    if bad:
        return Check("compatibility", FAIL,
                     f"{len(bad)} of {len(verdicts)} host(s) lack baseline features: "
                     f"{details[0]}", details)
    names = ", ".join(v.name for v in verdicts)
    return Check("compatibility", PASS, f"every host has every baseline feature ({names})")


# ---- the whole verdict ---------------------------------------------------------------------
def union(scans: list[elfscan.LibraryScan]) -> tuple[frozenset[str], frozenset[str]]:
    baseline = frozenset().union(*(s.baseline for s in scans))
    dispatched = frozenset().union(*(s.dispatched for s in scans)) - baseline
    return baseline, dispatched


def verify(wheel_path: Path, *, hosts: list[cpu.HostProfile], python: str,
           emulate_models: Iterable[str] = (), jobs: int = 1,
           examples: int = elfscan.EXAMPLES, use_cache: bool = True,
           emulate_timeout: float = 900.0,
           status: Callable[[str], None] = lambda _m: None,
           progress: Callable[[int, int], None] | None = None,
           builds_dir: Path | None = None) -> VerifyReport:
    """Everything verify measures about one wheel (no printing)."""
    t0 = time.perf_counter()
    models = [emulate.check_model(m) for m in emulate_models]   # bad input fails early
    _check_platform(wheel_path)
    timings = []
    checked, scans, errors, sha, cached = scan_wheel(
        wheel_path, jobs=jobs, examples=examples, use_cache=use_cache, status=status,
        progress=progress)
    timings.append(("read + scan", time.perf_counter() - t0))
    facts = checked.facts
    baseline, dispatched = union(scans)
    claim = claimed_features(facts.local_label) if facts.local_label else (frozenset(), [])
    members = [s.path for s in scans]

    isa_summary = (f"{len(scans)} ELF libraries; requires "
                   f"{', '.join(sorted(baseline, key=isa.sort_key)) or 'nothing beyond x86-64'}"
                   f"; dispatched only: "
                   f"{', '.join(sorted(dispatched, key=isa.sort_key)) or 'none'}")
    isa_check = Check("isa", FAIL if errors else PASS,
                      (f"{len(errors)} librar(ies) could not be scanned: {errors[0]}"
                       if errors else isa_summary), tuple(errors))
    verdicts = host_verdicts(hosts, baseline, dispatched)
    checks = [structure_check(checked), python_check(facts, python, members),
              glibc_check(facts, scans), provenance_check(facts, claim[0]), isa_check,
              compatibility_check(verdicts), claim_check(facts, baseline, scans, claim)]
    if facts.provenance:
        checks.append(reproducible_check(facts, sha, builds_dir))

    emulations = []
    if models:
        from tfforge.runtime import venvs
        t1 = time.perf_counter()
        status(f"installing {facts.filename} into its venv for emulation (cached by sha256)")
        py = venvs.venv_python(wheel_path)
        for model in models:
            status(f"running TensorFlow under qemu-x86_64 -cpu {model} ...")
            res = emulate.run(py, model, timeout=emulate_timeout)
            # What the static verdict predicts will trap: the model as a host.
            missing = host_verdicts([emulate.model_host(model)], baseline, frozenset())[0].missing
            # A predicted trap may not be reached by the few ops run; an unpredicted one
            # means the static scan missed a requirement.
            agrees = res.status == "pass" or (res.status == "signal" and bool(missing))
            emulations.append(EmulationVerdict(res, missing, agrees))
            status(f"qemu {model}: {res.status}{' ' + res.signal if res.signal else ''} "
                   f"after {res.seconds:.0f} s")
        checks.append(_emulation_check(emulations))
        timings.append(("emulation", time.perf_counter() - t1))

    return VerifyReport(
        wheel=str(wheel_path), sha256=sha, name=facts.name, version=str(facts.version),
        tags=tuple(sorted(str(t) for t in facts.tags)), size=facts.size, members=facts.members,
        checks=tuple(checks), libraries=tuple(scans),
        baseline=tuple(sorted(baseline, key=isa.sort_key)),
        dispatched=tuple(sorted(dispatched, key=isa.sort_key)), hosts=tuple(verdicts),
        emulation=tuple(emulations), scan_cached=cached,
        seconds=round(time.perf_counter() - t0, 2),
        timings=tuple((k, round(v, 2)) for k, v in timings))


def _check_platform(wheel_path: Path) -> None:
    try:
        tags = parse_wheel_filename(wheel_path.name)[3]
    except InvalidWheelFilename:
        return                              # wheel.check says what is wrong with the name
    if not any(t.platform.endswith("x86_64") or t.platform == "any" for t in tags):
        raise ConfigError(f"{wheel_path.name}: platform "
                          f"{', '.join(sorted({t.platform for t in tags}))}; tfforge verifies "
                          "x86_64 (and pure-Python) wheels only")


def _emulation_check(ems: list[EmulationVerdict]) -> Check:
    details = []
    for e in ems:
        r = e.result
        pred = (f"static verdict predicts a trap (lacks {', '.join(e.predicted_missing)})"
                if e.predicted_missing else "static verdict predicts it runs")
        what = {"pass": "import + ops passed", "signal": f"killed by {r.signal}",
                "failed": "probe failed", "timeout": "timed out"}[r.status]
        at = f" at stage '{r.stage}'" if r.stage and r.status != "pass" else ""
        where = f" ({r.where})" if r.where else ""
        details.append(f"{r.model}: {what}{at}{where} in {r.seconds:.0f} s; {pred}"
                       + ("" if e.agrees else " - DISAGREES"))
    failed = [e for e in ems if e.result.status != "pass"]
    disagree = [e for e in ems if not e.agrees]
    if disagree:
        return Check("emulate", FAIL, "static verdict missed a requirement: " +
                     details[ems.index(disagree[0])], tuple(details))
    if failed:
        return Check("emulate", FAIL, details[ems.index(failed[0])], tuple(details))
    return Check("emulate", PASS, "; ".join(details), tuple(details))


# ---- the command ---------------------------------------------------------------------------
def verify_command(wheel_spec: str, *, hosts: list[str], python: str | None,
                   emulate: list[str], as_json: bool, jobs: int | None, no_cache: bool,
                   examples: int | None) -> VerifyReport:
    from tfforge.runtime import venvs
    opts = settings.load({"verify_jobs": jobs, "verify_examples": examples}, prefix="verify_")
    n_jobs, n_examples = _count("--jobs", opts["verify_jobs"]), \
        _count("--examples", opts["verify_examples"])
    if n_jobs < 0:
        raise ConfigError(f"--jobs {n_jobs}: give a positive number (0 = one per CPU, "
                          f"at most {MAX_DEFAULT_JOBS})")
    n_jobs = n_jobs or default_jobs()
    path = venvs.wheel_from_spec(wheel_spec)
    profiles = cpu.load_hosts(hosts, option="--host") if hosts else [cpu.detect_host()]
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    kwargs = dict(hosts=profiles, python=python, emulate_models=emulate, jobs=n_jobs,
                  examples=n_examples, use_cache=not no_cache,
                  emulate_timeout=float(opts["emulate_timeout"]),
                  builds_dir=paths.builds_dir())
    if console.err.is_terminal:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                      TimeElapsedColumn(), console=console.err, transient=True) as bar:
            task = bar.add_task(f"verifying {path.name}", total=None)
            report = verify(path, status=lambda m: bar.console.print(m, markup=False),
                            progress=lambda done, total: bar.update(task, completed=done,
                                                                    total=total), **kwargs)
    else:
        report = verify(path, status=console.info, **kwargs)
    if as_json:
        console.print_json(report.to_dict())
    else:
        show(report)
    if not report.ok:
        names = ", ".join(c.name for c in report.failed)
        raise VerifyError(f"{Path(report.wheel).name}: {len(report.failed)} check(s) failed "
                          f"({names}); see the report")
    return report


def default_jobs() -> int:
    """What --jobs 0 (the verify_jobs default) means: one scan process per CPU, at most
    MAX_DEFAULT_JOBS (each worker adds ~200-450 MB)."""
    return min(os.cpu_count() or 1, MAX_DEFAULT_JOBS)


def _count(flag: str, value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} {value!r}: give a whole number")


# ---- the readable report -------------------------------------------------------------------
_STYLE = {PASS: "[green]pass[/]", FAIL: "[bold red]FAIL[/]", SKIP: "[dim]skip[/]"}


def short_name(name: str, limit: int = 72) -> str:
    """A demangled C++ name cut for a table: no parameter list, inner template args elided."""
    depth, out = 0, []
    for i, ch in enumerate(name):
        if ch == "(" and depth == 0 and i > 0 and not name.startswith("(anonymous", i) \
                and not name.endswith("decltype", 0, i):
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
    return text if len(text) <= limit else text[:limit - 3] + "..."


def feature_rows(r: VerifyReport) -> list[dict]:
    """One row per feature over all libraries, with the strongest evidence for its class."""
    rows = []
    for feat in (*r.baseline, *r.dispatched):
        per = [(s, e) for s in r.libraries if (e := s.feature(feat))]
        base = [(s, e) for s, e in per if e.cls == "baseline"]
        pick_s, pick_e = max(base or per, key=lambda se: (se[1].ordinary, se[1].functions))
        rows.append({
            "feature": feat, "title": isa.title(feat) if feat in isa.features() else feat,
            "class": "baseline" if base else "dispatched",
            "libraries": len(per), "baseline_in": len(base),
            "instructions": sum(e.instructions for _, e in per),
            "ordinary": sum(e.ordinary for _, e in per),
            "dispatched_fns": sum(e.named + e.guarded for _, e in per),
            "why": _why(pick_e), "library": pick_s.path,
            "evidence": f"{PurePosixPath(pick_s.path).name}: {pick_e.reason}",
            "example": pick_e.examples[0] if pick_e.examples else ""})
    return rows


def _why(e: elfscan.FeatureEvidence) -> str:
    if e.cls == "baseline":
        return "runs at load (R3)" if e.load_time else "ordinary code (R4)"
    parts = (["named (R1)"] if e.named else []) + (["CPU-checked (R2)"] if e.guarded else [])
    return " + ".join(parts)


def _few(names, keep: int = 3) -> str:
    names = list(names)
    if not names:
        return "-"
    more = f" +{len(names) - keep} more" if len(names) > keep else ""
    return ", ".join(names[:keep]) + more


def show(r: VerifyReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console.out
    out.print(f"[bold]{Path(r.wheel).name}[/]  {r.size / 1e6:.1f} MB, {r.members} members, "
              f"sha256 {r.sha256[:16]}, verified in {r.seconds:.1f} s"
              + (" (ISA scan from cache)" if r.scan_cached else ""))
    t = Table(title="Checks", title_justify="left")
    t.add_column("check")
    t.add_column("result")
    t.add_column("what was measured", overflow="fold")
    for c in r.checks:
        t.add_row(c.name, _STYLE[c.status], escape(c.summary))
        for d in c.details[1:6] if c.status == FAIL else ():
            t.add_row("", "", f"[dim]{escape(d)}[/]")
    out.print(t)

    if r.libraries:
        t = Table(title=f"x86 extensions used by {len(r.libraries)} ELF libraries "
                  "(baseline = required to run; dispatched = only behind run-time CPU checks)",
                  title_justify="left")
        for col in ("feature", "class", "why", "instr", "ordinary fns", "dispatched fns",
                    "example (most uses)"):
            t.add_column(col, overflow="fold",
                         justify="right" if col.endswith(("fns", "instr")) else "left")
        rows = feature_rows(r)
        for row in rows:
            cls = "[bold]baseline[/]" if row["class"] == "baseline" else "[dim]dispatched[/]"
            t.add_row(row["title"], cls, row["why"], f"{row['instructions']:,}",
                      f"{row['ordinary']:,}", f"{row['dispatched_fns']:,}",
                      escape(short_name(row["example"], 60)))
        out.print(t)
        for row in rows:
            if row["class"] == "baseline":
                out.print(f"  [bold]{row['title']}[/] {escape(row['evidence'])}",
                          highlight=False)

    t = Table(title="Hosts", title_justify="left")
    for col in ("host", "model", "result", "missing baseline", "lacks (dispatched, fine)"):
        t.add_column(col, overflow="fold")
    for h in r.hosts:
        t.add_row(h.name, h.model, _STYLE[PASS if h.ok else FAIL], ", ".join(h.missing) or "-",
                  _few(h.missing_dispatched))
    out.print(t)

    if r.emulation:
        t = Table(title="Emulated runs (qemu-x86_64)", title_justify="left")
        for col in ("model", "result", "stage", "where", "seconds", "static verdict"):
            t.add_column(col, overflow="fold")
        for e in r.emulation:
            res = e.result
            verdict = ("lacks " + ", ".join(e.predicted_missing)) if e.predicted_missing \
                else "has every baseline feature"
            t.add_row(res.model, _STYLE[PASS] if res.status == "pass" else
                      f"[bold red]{res.signal or res.status}[/]", res.stage or "-",
                      res.where or "-", f"{res.seconds:.0f}",
                      verdict + ("" if e.agrees else " [bold red](disagrees)[/]"))
        out.print(t)

    libs = sorted(r.libraries, key=lambda s: -s.code_bytes)
    if libs:
        t = Table(title="Largest libraries", title_justify="left")
        for col in ("library", "code MB", "M instr", "functions", "baseline", "dispatched",
                    "scan s"):
            t.add_column(col, overflow="fold",
                         justify="right" if col in ("code MB", "M instr", "functions",
                                                    "scan s") else "left")
        for s in libs[:8]:
            t.add_row(s.path, f"{s.code_bytes / 1e6:.1f}", f"{s.instructions / 1e6:.2f}",
                      f"{s.functions:,}", ", ".join(sorted(s.baseline, key=isa.sort_key)),
                      _few(sorted(s.dispatched, key=isa.sort_key)), f"{s.seconds:.1f}")
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
            out.print(f"[dim]  dispatch patterns that matched: "
                      f"{sum(hits.values())} functions via {len(hits)} pattern(s); "
                      "per-library list in --json (pattern_hits)[/]")
