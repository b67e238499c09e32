"""An independent hostile pass: attacks of every class in docs/SECURITY.md, run against this
checkout as a careful attacker would, each judged by what actually happened.

    .venv/bin/python tests/hostile_pass.py [--json] [--only WORD]

Outcomes: held, security failure, false pass, hang, loss, traceback. Exit 1 if any attack did
not hold. Commands run as a user runs them (`python -m invoke -r CHECKOUT ...`) in throwaway
project folders; servers it starts listen on loopback ports the kernel picks, and are stopped.
"""

from __future__ import annotations

import argparse
import base64
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import hostile_wheels as hw  # noqa: E402

from tfforge.wheel import read  # noqa: E402

HELD, SECURITY, FALSE_PASS, HANG, LOSS, TRACEBACK = (
    "held", "security failure", "false pass", "hang", "loss", "traceback",
)  # fmt: skip
HASWELL = ROOT / "tests" / "fixtures" / "hosts" / "qemu-haswell.json"
GOOD_ID = "2.21.0-haswell-0123456789ab"


@dataclass
class Result:
    name: str
    kind: str
    outcome: str
    detail: str


ATTACKS: list[tuple[str, str, Callable[[Path], tuple[str, str]]]] = []


def attack(kind: str):
    def register(fn):
        ATTACKS.append((fn.__name__, kind, fn))
        return fn

    return register


# ---- helpers ---------------------------------------------------------------------------------


def cli(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 120):
    full = {**os.environ, "TFFORGE_ROOT": str(cwd), "TFFORGE_CACHE": str(cwd / ".cache")}
    full.update(env or {})
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "invoke", "-r", str(ROOT), *args],
            cwd=cwd,
            env=full,
            capture_output=True,
            text=True,
            timeout=timeout,
            errors="replace",
        )
    except subprocess.TimeoutExpired:
        return None
    return proc


def judged(proc, ok: Callable[[subprocess.CompletedProcess], str | None]) -> tuple[str, str]:
    """HANG/TRACEBACK first; then ok(proc) returns None (held) or (outcome, detail)."""
    if proc is None:
        return HANG, "no answer within the time limit"
    if "Traceback" in proc.stderr or "Traceback" in proc.stdout:
        return TRACEBACK, proc.stderr.strip().splitlines()[-1][:160]
    bad = ok(proc)
    if bad:
        return bad
    return HELD, (proc.stderr.strip().splitlines() or ["rc 0"])[-1][:160]


def refused_one_line(proc, code: int = 2):
    err = proc.stderr.strip()
    if proc.returncode == 0:
        return FALSE_PASS, "accepted"
    if (
        proc.returncode != code
        or err.count("\n") > 0
        and not err.splitlines()[-1].startswith("error:")
    ):
        return TRACEBACK, f"rc {proc.returncode}: {err[-160:]}"
    return None


def wheel_attack(members, **kw) -> Callable[[Path], tuple[str, str]]:
    """A wheel the reader must refuse; a pass is a false pass (or a security failure when the
    wheel really escapes the root on extraction)."""

    def run(tmp: Path) -> tuple[str, str]:
        path = hw.build(tmp, [("demo/__init__.py", "file", b"", 3), *members], **kw)
        try:
            problems = read.structure_problems(path)
        except Exception as exc:  # noqa: BLE001 - any exception is a traceback to record
            return TRACEBACK, f"{type(exc).__name__}: {exc}"[:160]
        if problems:
            return HELD, problems[0][:160]
        if hw.escapes(path):
            return SECURITY, f"passed and escapes: {hw.escapes(path)}"
        return FALSE_PASS, "passed the structure check"

    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project(tmp: Path) -> Path:
    (tmp / "wheels").mkdir(parents=True, exist_ok=True)
    (tmp / "builds").mkdir(parents=True, exist_ok=True)
    return tmp


# ---- A. wheels -------------------------------------------------------------------------------

WHEELS = {
    "symlink_chain": [("demo/q", "symlink", b"..", 3), ("demo/r", "symlink", b"q/../..", 3),
                      ("demo/r/evil.pth", "file", b"x", 3)],
    "symlink_create_system_0": [("demo/up", "symlink", b"../..", 0)],
    "symlink_create_system_11": [("demo/up", "symlink", b"/etc", 11)],
    "symlink_pointing_inside": [("demo/b.py", "symlink", b"__init__.py", 3)],
    "fifo_member": [("demo/pipe", "fifo", b"", 3)],
    "dir_mode_without_slash": [("demo/sub", "dir", b"", 3)],
    "nul_in_name": [("demo/a\x00.py", "file", b"x", 3)],
    "backslash_traversal": [("demo\\..\\..\\evil.py", "file", b"x", 3)],
    "drive_letter": [("C:/evil.py", "file", b"x", 3)],
    "dot_dot_inside": [("demo/../../evil.py", "file", b"x", 3)],
    "dot_part": [("./demo/x.py", "file", b"x", 3)],
    "escape_sequence_name": [("demo/\x1b]0;pwned\x07.py", "file", b"x", 3)],
    "rtl_override_name": [("demo/gnp.\u202eexe.py", "file", b"x", 3)],
    "case_twins": [("demo/a.py", "file", b"1", 3), ("demo/A.py", "file", b"2", 3)],
    "unicode_normal_twins": [("demo/\u00e9.py", "file", b"1", 3),
                             ("demo/e\u0301.py", "file", b"2", 3)],
    "file_and_folder": [("demo/x", "file", b"1", 3), ("demo/x/y.py", "file", b"2", 3)],
    "exact_duplicate": [("demo/m.py", "file", b"good", 3), ("demo/m.py", "file", b"evil", 3)],
}  # fmt: skip
for _name, _members in WHEELS.items():
    ATTACKS.append((f"wheel_{_name}", "wheel", wheel_attack(_members)))


def _record_attack(rows_for: Callable[[list[str]], list[str]]):
    def run(tmp: Path):
        base = [("demo/__init__.py", "file", b"", 3), ("demo/m.py", "file", b"x=1\n", 3)]
        info = {"METADATA": hw.metadata(), "WHEEL": hw.WHEEL}
        true_rows = [f"{n},{hw.record_hash(d)},{len(d)}" for n, _, d, _ in base] + [
            f"{hw.INFO}/{k},{hw.record_hash(v)},{len(v)}" for k, v in info.items()
        ]
        return wheel_attack(base[1:], record_rows=rows_for(true_rows))(tmp)

    return run


RECORDS = {
    "record_without_hash": lambda rows: [rows[0], "demo/m.py,,", *rows[2:]],
    "record_md5": lambda rows: [rows[0], "demo/m.py,md5=" + "A" * 22 + ",4", *rows[2:]],
    "record_negative_size": lambda rows: [rows[0], rows[1].rsplit(",", 1)[0] + ",-4", *rows[2:]],
    "record_5000_digit_size": lambda rows: [rows[0], rows[1].rsplit(",", 1)[0] + "," + "9" * 5000,
                                            *rows[2:]],
    "record_nul_byte": lambda rows: [rows[0], "demo/m.py\x00,x,1", *rows[2:]],
    "record_lists_signature": lambda rows: [*rows, f"{hw.INFO}/RECORD.jws,,"],
    "record_wrong_hash": lambda rows: [rows[0], "demo/m.py," + hw.record_hash(b"other") + ",4",
                                       *rows[2:]],
}  # fmt: skip
for _name, _fn in RECORDS.items():
    ATTACKS.append((_name, "wheel", _record_attack(_fn)))

METAS = {
    "metadata_latin1": hw.metadata(b"caf\xe9"),
    "metadata_two_names": b"Metadata-Version: 2.1\nName: demo\nName: other\nVersion: 1.0\n\n",
    "metadata_300k_headers": hw.metadata().replace(b"\n\n", b"\n") + b"X: y\n" * 300_000 + b"\n",
    "metadata_bad_requires_dist": hw.metadata().replace(b"\n\n", b"\nRequires-Dist: ;;;\n\n"),
    "metadata_summary_two_lines": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
    b"Summary: a\x0bb\n\n",
}
for _name, _meta in METAS.items():
    ATTACKS.append((_name, "wheel", wheel_attack([], meta=_meta)))


@attack("wheel")
def wheel_version_2(tmp: Path):
    return wheel_attack([], extra_info={"WHEEL": hw.WHEEL.replace(b"1.0", b"2.0")})(tmp)


@attack("wheel")
def elf_under_a_plain_name(tmp: Path):
    elf = b"\x7fELF\x02\x01\x01" + b"\0" * 64
    path = hw.build(
        tmp / "w", [("demo/data.bin", "file", elf, 3), ("demo/lib.so.txt", "file", elf, 3)]
    )
    out = tmp / "x"
    out.mkdir()
    handed: list[str] = []
    read.check(path, extract_dir=out, on_library=lambda m, p: handed.append(m))
    if sorted(handed) != ["demo/data.bin", "demo/lib.so.txt"]:
        return FALSE_PASS, f"machine code not handed to the scanner: {handed}"
    return HELD, "both ELF members handed to the ISA scan"


def _provenance_attack(doc_bytes: bytes):
    def run(tmp: Path):
        path = hw.build(tmp / "w", [("demo/__init__.py", "file", b"", 3)],
                        extra_info={read.PROVENANCE: doc_bytes})  # fmt: skip
        try:
            facts = read.check(path).facts
        except Exception as exc:  # noqa: BLE001 - any exception is a traceback to record
            return TRACEBACK, f"{type(exc).__name__}: {exc}"[:160]
        if facts.provenance is not None and "/" in str(facts.provenance.get("id", "")):
            return SECURITY, f"kept id {facts.provenance.get('id')!r}"
        return HELD, facts.provenance_error or "kept a valid document"

    return run


PROVENANCES = {
    "provenance_id_climbs": json.dumps({"id": "../../planted"}).encode(),
    "provenance_id_absolute": json.dumps({"id": "/tmp/planted"}).encode(),
    "provenance_5000_digits": b'{"id": ' + b"9" * 5000 + b"}",
    "provenance_deep": b"[" * 100_000 + b"]" * 100_000,
    "provenance_not_utf8": b'{"id": "\xff"}',
}
for _name, _doc in PROVENANCES.items():
    ATTACKS.append((_name, "wheel", _provenance_attack(_doc)))


def _planted_verify(tmp: Path, fifo: bool) -> tuple[str, str]:
    root = project(tmp / "p")
    sha_wheel = hw.build(tmp / "w", [("demo/__init__.py", "file", b"", 3)],
                         extra_info={read.PROVENANCE: json.dumps(
                             {"id": GOOD_ID if fifo else "../planted", "spec": {},
                              "derived": {}}).encode()})  # fmt: skip
    import hashlib

    sha = hashlib.sha256(sha_wheel.read_bytes()).hexdigest()
    planted = tmp / "p" / "planted" if not fifo else root / "builds" / GOOD_ID
    planted.mkdir(parents=True)
    if fifo:
        os.mkfifo(planted / "rebuild.json")
    else:
        (planted / "rebuild.json").write_text(
            json.dumps({"identical": True, "sha256": {"original": sha}, "vary": {}})
        )
    proc = cli(["verify", str(sha_wheel), "--json", "--jobs", "1", "--host", str(HASWELL)], root,
               timeout=180)  # fmt: skip

    def ok(p):
        try:
            checks = {c["name"]: c for c in json.loads(p.stdout)["checks"]}
        except (ValueError, KeyError):
            return TRACEBACK, f"no JSON report (rc {p.returncode}): {p.stderr[-160:]}"
        if checks.get("reproducible", {}).get("status") == "pass":
            return FALSE_PASS, "reproducible: pass from a planted record"
        return None

    return judged(proc, ok)


@attack("wheel")
def verify_planted_rebuild_record(tmp: Path):
    return _planted_verify(tmp, fifo=False)


@attack("wheel")
def verify_fifo_rebuild_record(tmp: Path):
    return _planted_verify(tmp, fifo=True)


@attack("wheel")
def index_lists_a_hostile_wheel(tmp: Path):
    root = project(tmp)
    hw.build(root / "wheels", WHEELS["symlink_chain"])
    proc = cli(["index", "--json"], root)
    return judged(
        proc,
        lambda p: (FALSE_PASS, "indexed") if json.loads(p.stdout)["wheels"] else None,
    )


@attack("loss")
def index_keeps_a_users_simple_folder(tmp: Path):
    root = project(tmp)
    mine = root / "wheels" / ".simple-mine"
    mine.mkdir()
    (mine / "notes").write_text("mine")
    cli(["index"], root)
    proc = cli(["index"], root)
    return judged(proc, lambda p: None if (mine / "notes").is_file() else (LOSS, "deleted"))


@attack("loss")
def index_keeps_a_users_simple(tmp: Path):
    root = project(tmp)
    (root / "wheels" / "simple").mkdir()
    (root / "wheels" / "simple" / "page.html").write_text("mine")
    proc = cli(["index"], root)
    kept = (root / "wheels" / "simple" / "page.html").is_file()
    return judged(proc, lambda p: refused_one_line(p) or (None if kept else (LOSS, "replaced")))


@attack("wheel")
def publish_refuses_a_hostile_wheel(tmp: Path):
    root = project(tmp)
    path = hw.build(root / "wheels", WHEELS["case_twins"])
    url = f"http://127.0.0.1:{free_port()}/"
    proc = cli(["publish", str(path), "--repository", url], root)
    return judged(proc, lambda p: refused_one_line(p, 1))


# ---- B. snapshots and cpuinfo ----------------------------------------------------------------


def _snapshot(tmp: Path, text: str, cmd: str = "match") -> tuple[str, str]:
    root = project(tmp)
    (root / "hosts").mkdir()
    (root / "hosts" / "h.json").write_text(text, errors="surrogatepass")
    proc = cli([cmd, "hosts/", "--json"] if cmd == "match" else [cmd, "hosts/"], root)
    return judged(proc, lambda p: refused_one_line(p))


SNAPSHOT = '{{"schema": "tfforge-host/1", "flags": ["sse2", "avx2"], {extra}}}'


@attack("input")
def snapshot_5000_digit_count(tmp: Path):
    return _snapshot(tmp, SNAPSHOT.format(extra='"physical_cores": ' + "9" * 5000))


@attack("input")
def snapshot_huge_but_parsable_count(tmp: Path):
    return _snapshot(tmp, SNAPSHOT.format(extra='"logical_cpus": ' + "9" * 4000))


@attack("input")
def snapshot_deep_nesting(tmp: Path):
    return _snapshot(tmp, SNAPSHOT.format(extra='"name": ' + "[" * 50_000 + "]" * 50_000))


@attack("input")
def snapshot_100k_flags(tmp: Path):
    flags = json.dumps([f"f{i}" for i in range(100_000)])
    return _snapshot(tmp, '{"schema": "tfforge-host/1", "flags": ' + flags + "}")


@attack("input")
def snapshot_negative_cpus(tmp: Path):
    return _snapshot(tmp, SNAPSHOT.format(extra='"logical_cpus": -1'))


@attack("input")
def snapshot_fifo(tmp: Path):
    root = project(tmp)
    (root / "hosts").mkdir()
    os.mkfifo(root / "hosts" / "h.json")
    proc = cli(["match", "hosts/h.json"], root, timeout=60)
    return judged(proc, lambda p: refused_one_line(p))


@attack("output")
def matrix_table_with_escape_and_surrogate_names(tmp: Path):
    root = project(tmp)
    (root / "hosts").mkdir()
    doc = json.loads(HASWELL.read_text())
    doc["name"] = "\x1b]0;pwned\x07\x1b[2J\ud800"
    (root / "hosts" / "h.json").write_text(json.dumps(doc))
    proc = cli(["matrix", "hosts/"], root)

    def ok(p):
        if p.returncode != 0:
            return TRACEBACK, p.stderr[-160:]
        if "\x1b" in p.stdout or "\x1b" in p.stderr:
            return SECURITY, "raw escape sequence printed"
        return None

    return judged(proc, ok)


@attack("input")
def cpuinfo_blocks_that_differ(tmp: Path):
    root = project(tmp)
    block = "processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: x\nflags\t\t: {f}\n"
    weak = "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt cx16 lahf_lm"
    strong = weak + " avx avx2 fma bmi1 bmi2 f16c movbe xsave abm avx512f avx512bw avx512cd " \
        "avx512dq avx512vl"  # fmt: skip
    text = "\n".join(block.format(i=i, f=strong if i == 0 else weak) for i in range(4))
    (root / "mixed.cpuinfo").write_text(text)
    proc = cli(["match", "mixed.cpuinfo", "--json"], root)

    def ok(p):
        best = json.loads(p.stdout)["best"]
        if {"avx2", "avx512f"} & set(best["features"]) or best["psabi_level"] != "x86-64-v1":
            return SECURITY, f"target {best['target']} from the first processor entry"
        return None

    return judged(proc, ok)


@attack("input")
def cpuinfo_million_blocks(tmp: Path):
    root = project(tmp)
    (root / "big.cpuinfo").write_text("processor\t: 0\nflags\t\t: sse2\n\n" * 500_000)
    proc = cli(["match", "big.cpuinfo", "--json"], root, timeout=120)
    return judged(proc, lambda p: None if p.returncode in (0, 2) else (TRACEBACK, p.stderr[-160:]))


# ---- C. emitters -----------------------------------------------------------------------------


def _emit(tmp: Path, fmt: str, extra: list[str], env: dict | None = None, root: Path | None = None):
    root = project(root or tmp)
    (root / "hosts").mkdir(exist_ok=True)
    (root / "hosts" / "h.json").write_text(HASWELL.read_text())
    out = root / "out.file"
    proc = cli(["matrix", "hosts/", "--emit", fmt, "--out", str(out), *extra], root, env)
    return proc, out


@attack("emitter")
def github_expression_in_source_dir(tmp: Path):
    src = tmp / "${{ secrets.TFFORGE_REMOTE_HEADER }}"
    src.mkdir(parents=True)
    (src / "configure").write_text("#!/bin/sh\n")
    proc, out = _emit(tmp / "p", "github", ["--source-dir", str(src)])

    def ok(p):
        if (
            out.exists()
            and "secrets.TFFORGE_REMOTE_HEADER }}"
            in out.read_text().split("env:")[-1].split("steps:")[-1]
        ):
            return SECURITY, "expression landed in a run: line"
        return refused_one_line(p)

    return judged(proc, ok)


@attack("emitter")
def github_newline_in_base_image(tmp: Path):
    proc, out = _emit(tmp, "github", ["--base-image", "debian:12\n    - run: curl x|sh"])
    return judged(proc, lambda p: refused_one_line(p))


@attack("emitter")
def gitlab_command_substitution_in_bazel_arg(tmp: Path):
    proc, out = _emit(tmp, "gitlab", ["--bazel-arg", "--copt=$(id)"])
    return judged(proc, lambda p: refused_one_line(p))


@attack("emitter")
def slurm_newline_in_project_folder(tmp: Path):
    root = tmp / "proj\ntouch pwned-x"
    root.mkdir()
    proc, out = _emit(tmp, "slurm", [], root=root)

    def ok(p):
        if out.exists() and any(line.startswith("touch ") for line in out.read_text().splitlines()):
            return SECURITY, "a command line was injected"
        return refused_one_line(p)

    return judged(proc, ok)


@attack("emitter")
def slurm_quote_in_project_folder(tmp: Path):
    root = tmp / "proj'$(touch pwned)'"
    root.mkdir()
    proc, out = _emit(tmp, "slurm", [], root=root)
    return judged(proc, lambda p: refused_one_line(p))


def _cache(tmp: Path, extra: list[str], env: dict | None = None):
    root = project(tmp)
    args = ["cache", "serve", "--port", str(free_port()), "--folder", str(root / "s"), *extra]
    proc = cli(args, root, env, timeout=30)
    conf = root / "s" / "nginx.conf"
    return judged(
        proc,
        lambda p: (SECURITY, "nginx configured") if conf.exists() else refused_one_line(p),
    )


@attack("server")
def cache_bind_injects_a_location(tmp: Path):
    return _cache(tmp, ["--bind", "127.0.0.1:1; } location / { root /etc; } server { listen 1"])


@attack("server")
def cache_bind_all_interfaces_by_environment(tmp: Path):
    return _cache(tmp, [], {"TFFORGE_CACHE_BIND": "0.0.0.0"})


@attack("server")
def cache_bind_ipv6_any(tmp: Path):
    return _cache(tmp, ["--bind", "::"])


@attack("server")
def cache_bind_hostname(tmp: Path):
    return _cache(tmp, ["--bind", "example.org"])


@attack("server")
def cache_folder_with_semicolon(tmp: Path):
    root = project(tmp)
    folder = root / "s; root /etc"
    proc = cli(["cache", "serve", "--port", str(free_port()), "--folder", str(folder)], root,
               timeout=30)  # fmt: skip
    return judged(proc, lambda p: refused_one_line(p))


@attack("server")
def cache_htpasswd_sparse_3gb(tmp: Path):
    root = project(tmp)
    pw = root / "htpasswd"
    with open(pw, "wb") as fh:
        fh.truncate(3 << 30)
    return _cache(tmp, ["--htpasswd", str(pw)])


@attack("server")
def cache_htpasswd_fifo(tmp: Path):
    root = project(tmp)
    os.mkfifo(root / "htpasswd")
    return _cache(tmp, ["--htpasswd", str(root / "htpasswd")])


def _server_ends(tmp: Path, args: list[str], how: int) -> tuple[str, str]:
    root = project(tmp)
    env = {**os.environ, "TFFORGE_ROOT": str(root), "TFFORGE_CACHE": str(root / ".cache")}
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "-r", str(ROOT), *args, "--json"],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lines and lines[-1].startswith("}")):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    try:
        pid = json.loads("".join(lines))["pid"]
    except (ValueError, KeyError):
        proc.kill()
        return TRACEBACK, proc.stderr.read()[-160:]
    proc.send_signal(how)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                break
        except (ProcessLookupError, OSError):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        proc.kill()
        return SECURITY, f"server {pid} outlived tfforge"
    proc.wait(timeout=15)
    return HELD, f"server {pid} ended"


@attack("server")
def nginx_after_sigterm(tmp: Path):
    return _server_ends(tmp, ["cache", "serve", "--port", str(free_port()), "--folder",
                              str(tmp / "s")], signal.SIGTERM)  # fmt: skip


@attack("server")
def nginx_after_sigkill(tmp: Path):
    return _server_ends(tmp, ["cache", "serve", "--port", str(free_port()), "--folder",
                              str(tmp / "s")], signal.SIGKILL)  # fmt: skip


@attack("server")
def pypiserver_after_sighup(tmp: Path):
    return _server_ends(tmp, ["serve", "--port", str(free_port())], signal.SIGHUP)


# ---- D. secrets ------------------------------------------------------------------------------

USER, PASSWORD = "alice", "s3cr3t-P@ss/wörd+1"


def _echo_server(reason: str, body: str, status: int = 401):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status, reason)
            self.send_header("Content-Type", "text/html")
            data = body.encode()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _publish_echo(tmp: Path, reason: str, body: str, status: int = 401):
    root = project(tmp)
    path = hw.build(root / "wheels", [("demo/__init__.py", "file", b"", 3)])
    server = _echo_server(reason, body, status)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        proc = cli(["publish", str(path), "--repository", url], root,
                   {"TWINE_USERNAME": USER, "TWINE_PASSWORD": PASSWORD})  # fmt: skip
    finally:
        server.shutdown()
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    forms = [PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD), basic,
             json.dumps(PASSWORD)[1:-1], json.dumps(PASSWORD, ensure_ascii=False)[1:-1],
             PASSWORD.encode().decode("latin-1")]  # fmt: skip
    return judged(
        proc,
        lambda p: next(
            ((SECURITY, f"printed {f!r}") for f in forms if f in p.stdout + p.stderr), None
        ),
    )


@attack("secret")
def reason_phrase_echoes_password(tmp: Path):
    return _publish_echo(tmp, f"Unauthorized {PASSWORD}", "no")


@attack("secret")
def reason_phrase_echoes_basic_auth(tmp: Path):
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return _publish_echo(tmp, f"Bad Basic {basic}", "no", 403)


@attack("secret")
def body_echoes_json_and_quoted_password(tmp: Path):
    body = json.dumps({"got": PASSWORD}) + " " + quote(PASSWORD, safe="")
    return _publish_echo(tmp, "Server Error", body, 500)


@attack("secret")
def body_echoes_html_escaped_password(tmp: Path):
    import html

    return _publish_echo(tmp, "Teapot", f"<p>{html.escape(PASSWORD)}</p>", 418)


@attack("secret")
def body_that_backtracking_rescans_from_every_tag(tmp: Path):
    return _publish_echo(tmp, "Server Error", "<p>" * 400_000, 500)


@attack("secret")
def token_in_repository_url_query(tmp: Path):
    root = project(tmp)
    path = hw.build(root / "wheels", [("demo/__init__.py", "file", b"", 3)])
    url = f"http://127.0.0.1:{free_port()}/legacy/?token=TOPSECRET99;sig=ALSOSECRET"
    proc = cli(["publish", str(path), "--repository", url], root)
    return judged(
        proc,
        lambda p: (
            (SECURITY, "token printed")
            if "TOPSECRET99" in p.stderr + p.stdout or "ALSOSECRET" in p.stderr + p.stdout
            else None
        ),
    )


@attack("secret")
def remote_header_malformed_is_not_echoed(tmp: Path):
    root = project(tmp)
    proc = cli(["render", "--target", "haswell", "--remote-cache", "http://127.0.0.1:1/c"], root,
               {"TFFORGE_REMOTE_HEADER": "no equals sign HEADERSECRET"})  # fmt: skip
    return judged(
        proc, lambda p: (SECURITY, "printed") if "HEADERSECRET" in p.stderr + p.stdout else None
    )


# ---- E. numbers and structured files ---------------------------------------------------------


@attack("number")
def matrix_timeout_1e300(tmp: Path):
    root = project(tmp)
    (root / "hosts").mkdir()
    (root / "hosts" / "h.json").write_text(HASWELL.read_text())
    proc = cli(["matrix", "hosts/", "--timeout", "1e300"], root)
    return judged(proc, lambda p: refused_one_line(p))


@attack("number")
def verify_python_5000_digits(tmp: Path):
    root = project(tmp)
    path = hw.build(root, [("demo/__init__.py", "file", b"", 3)])
    proc = cli(["verify", str(path), "--python", "3." + "1" * 5000, "--host", str(HASWELL)], root)
    return judged(proc, lambda p: refused_one_line(p))


@attack("number")
def serve_port_5000_digits_in_environment(tmp: Path):
    proc = cli(["serve"], project(tmp), {"TFFORGE_SERVE_PORT": "8" * 5000}, timeout=30)
    return judged(proc, lambda p: refused_one_line(p))


@attack("number")
def toml_deep_nesting(tmp: Path):
    root = project(tmp)
    (root / "tfforge.toml").write_text("[tfforge]\nx = " + "[" * 50_000 + "]" * 50_000 + "\n")
    proc = cli(["match", str(HASWELL)], root)
    return judged(proc, lambda p: refused_one_line(p))


@attack("number")
def toml_5000_digit_value(tmp: Path):
    root = project(tmp)
    (root / "tfforge.toml").write_text("[tfforge]\nserve_port = " + "9" * 5000 + "\n")
    proc = cli(["serve"], root, timeout=30)
    return judged(proc, lambda p: refused_one_line(p))


@attack("input")
def rebuild_id_climbs(tmp: Path):
    root = project(tmp)
    (root / "outside").mkdir()
    (root / "outside" / "build.json").write_text("{}")
    proc = cli(["rebuild", "../outside"], root)
    return judged(proc, lambda p: refused_one_line(p))


# ---- running ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    results: list[Result] = []
    for name, kind, fn in ATTACKS:
        if args.only and args.only not in name:
            continue
        with tempfile.TemporaryDirectory(prefix="tfforge-hostile-") as tmp:
            started = time.monotonic()
            try:
                outcome, detail = fn(Path(tmp))
            except Exception as exc:  # noqa: BLE001 - the pass itself must report, not stop
                outcome, detail = TRACEBACK, f"{type(exc).__name__}: {exc}"[:160]
            results.append(Result(name, kind, outcome, detail))
            if not args.json:
                print(f"{outcome:<17} {time.monotonic() - started:6.1f}s  {kind:<8} {name}: "
                      f"{detail!r}"[:200], flush=True)  # fmt: skip
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    if args.json:
        print(json.dumps({"counts": counts, "results": [r.__dict__ for r in results]}, indent=2))
    else:
        print(
            f"\n{len(results)} attacks: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        )
    return 0 if set(counts) <= {HELD} else 1


if __name__ == "__main__":
    sys.exit(main())
