"""Publishing: credentials handling, input checks, and an end-to-end run against a real pypiserver
(started with `invoke serve`, htpasswd authentication) that pip then installs from."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import requests

from conftest import ROOT, invoke, need
from publish_helpers import fresh_venv, isolated_pip_env, make_wheel, pip_install
from tfforge.publish import upload as publish
from tfforge.errors import ConfigError, PublishError

USER, PASSWORD = "ci-publisher", "pw-Zq8#tfforge-secret"


def _tree(root: Path) -> dict[str, str]:
    """Every file under root with its sha256: 'nothing changed locally' is equality of these."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_error(proc: subprocess.CompletedProcess, code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stdout == "", (proc.stdout, proc.stderr)
    return errors[0]


def _no_secrets(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and USER not in text


def _env(root: Path, user: str | None = USER, password: str | None = PASSWORD) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    # keyring off, so a developer's stored passwords cannot make these runs pass or fail
    env.update(TFFORGE_ROOT=str(root), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    if user is not None:
        env["TWINE_USERNAME"] = user
    if password is not None:
        env["TWINE_PASSWORD"] = password
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- unit ----------------------------------------------------------------------------------

def test_credentials_are_scrubbed_and_hidden_from_repr():
    creds = publish.Credentials("alice", "hunter22")
    basic = "YWxpY2U6aHVudGVyMjI="  # base64 of alice:hunter22, as in a Basic auth header
    text = f"user alice pass hunter22 header Basic {basic}"
    assert publish.Credentials.scrub(creds, text) == "user *** pass *** header Basic ***"
    assert "hunter22" not in repr(creds) and "alice" not in repr(creds)
    assert publish.Credentials.from_environ({"TWINE_USERNAME": "a", "TWINE_PASSWORD": ""}) == \
        publish.Credentials("a", None)


@pytest.mark.parametrize("url, message", [
    (None, "no index to upload to"),
    ("ftp://host/", "is not an http(s) URL"),
    ("127.0.0.1:8080", "is not an http(s) URL"),
    ("https://bob:secret@index.example/", "credentials in the URL"),
])
def test_bad_repository_urls(url, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        publish.repository_url(url)
    assert "secret" not in str(exc.value)


def test_wheel_arguments_accept_paths_globs_and_comma_lists(tmp_path):
    a = make_wheel(tmp_path / "a", "one", "1.0")
    b = make_wheel(tmp_path / "b", "two", "2.0")
    c = make_wheel(tmp_path / "b", "three", "3.0")
    assert publish.resolve_wheels([f"{a},{tmp_path}/b/t*.whl"]) == [a, c, b]
    assert publish.resolve_wheels([str(a), str(a)]) == [a]
    with pytest.raises(ConfigError, match="does not exist"):
        publish.resolve_wheels([str(tmp_path / "missing.whl")])
    with pytest.raises(ConfigError, match="no file matches"):
        publish.resolve_wheels([str(tmp_path / "*.zip")])
    with pytest.raises(ConfigError, match="no wheel named"):
        publish.resolve_wheels(["", " , "])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="is not a wheel"):
        publish.resolve_wheels([str(tmp_path / "notes.txt")])
    twin = make_wheel(tmp_path / "c", "one", "1.0", value=2)
    with pytest.raises(ConfigError, match="both named"):
        publish.resolve_wheels([str(a), str(twin)])


def _http_error(status: int, reason: str, body: str) -> requests.HTTPError:
    resp = requests.Response()
    resp.status_code, resp.reason, resp._content = status, reason, body.encode()
    resp.url = "http://127.0.0.1:1/"
    return requests.HTTPError(f"{status} {reason}", response=resp)


def test_failures_are_explained_in_one_line_without_secrets():
    creds = publish.Credentials("alice", "hunter22")
    url = "http://127.0.0.1:1/"

    def line(exc, done=()):
        err = publish.explain(exc, "x.whl", url, creds, list(done))
        assert "\n" not in str(err) and "hunter22" not in str(err) and "alice" not in str(err)
        return err

    err = line(_http_error(400, "Bad Request", "Package 'x.whl' already exists!"), ["a.whl"])
    assert isinstance(err, PublishError) and "already exists" in str(err)
    assert "--skip-existing" in str(err) and "uploaded before it: a.whl" in str(err)
    assert "already exists" in str(line(_http_error(409, "Conflict", "")))
    assert "refused the credentials" in str(line(_http_error(403, "Forbidden", "")))
    assert "refused the credentials" in str(line(_http_error(401, "Unauthorized", "")))
    err = line(_http_error(500, "Internal Server Error", "trace: password=hunter22\nmore"))
    assert "HTTP 500" in str(err) and "***" in str(err)
    err = line(_http_error(502, "Bad Gateway", "<html><head><title>502 Bad Gateway</title>"
                                               "</head><body><h1>upstream down</h1></body></html>"))
    assert str(err).endswith("502 Bad Gateway upstream down")
    assert "not an upload URL" in str(line(_http_error(405, "Method Not Allowed", "<html>")))
    refused = requests.ConnectionError("HTTPConnectionPool: Max retries exceeded (Caused by "
                                       "NewConnectionError('[Errno 111] Connection refused'))")
    assert "is the index running" in str(line(refused))
    cut = requests.ConnectionError("('Connection aborted.', RemoteDisconnected('Remote end "
                                   "closed connection without response'))")
    assert "closed the connection" in str(line(cut))
    from twine.exceptions import NonInteractive
    err = line(NonInteractive("Credential not found for password."))
    assert isinstance(err, ConfigError) and "TWINE_PASSWORD" in str(err)


def test_publish_has_no_credential_flags():
    proc = invoke("--help", "publish")
    assert proc.returncode == 0
    assert "--password" not in proc.stdout and "--user" not in proc.stdout
    assert "TWINE_PASSWORD" in proc.stdout


# ---- integration: a real pypiserver with htpasswd ------------------------------------------

@pytest.fixture(scope="module")
def index_server(tmp_path_factory):
    """`invoke serve` on a free loopback port with an htpasswd file; stopped with SIGTERM."""
    need(importlib.util.find_spec("pypiserver") is not None, "pypiserver is not installed")
    need(importlib.util.find_spec("passlib") is not None, "passlib is not installed")
    from passlib.apache import HtpasswdFile
    root = tmp_path_factory.mktemp("server")
    (root / "wheels").mkdir()
    htpasswd = root / "htpasswd"
    users = HtpasswdFile(str(htpasswd), new=True)
    users.set_password(USER, PASSWORD)
    users.save()
    port = _free_port()
    log = open(root / "serve.log", "w")
    stdout_path = root / "serve.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "-r", str(ROOT), "serve", "--port", str(port),
         "--htpasswd", str(htpasswd), "--json"],
        cwd=ROOT, env=_env(root, None, None), stdout=open(stdout_path, "w"), stderr=log,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        doc = None
        while doc is None:
            assert proc.poll() is None, (root / "serve.log").read_text()
            assert time.monotonic() < deadline, "invoke serve did not report readiness"
            try:
                doc = json.loads(stdout_path.read_text())
            except ValueError:
                time.sleep(0.2)
        with urllib.request.urlopen(doc["url"], timeout=10) as resp:
            assert resp.status == 200
        yield {"root": root, "wheels": root / "wheels", "port": port, **doc}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        log.close()
        # serve stopped its pypiserver child too: nothing listens any more
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert code == 0, (root / "serve.log").read_text()


@pytest.mark.integration
def test_publish_conflict_credentials_and_pip_install_with_hashes(index_server, tmp_path):
    project = tmp_path / "project"
    wheel = make_wheel(project / "wheels", "tfdemo", "1.0.0+avx2.fma", value=11)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    url = index_server["upload_url"]
    before = _tree(project)

    # first upload
    proc = invoke("publish", str(wheel), "--repository", url, "--json", env=_env(project))
    assert proc.returncode == 0, proc.stderr
    _no_secrets(proc.stdout, proc.stderr)
    doc = json.loads(proc.stdout)
    assert doc["wheels"] == [{"file": wheel.name, "sha256": sha, "size": wheel.stat().st_size,
                              "status": "uploaded", "seconds": doc["wheels"][0]["seconds"]}]
    served = index_server["wheels"] / wheel.name
    assert hashlib.sha256(served.read_bytes()).hexdigest() == sha

    # re-upload: a conflict, one line, nothing replaced
    proc = invoke("publish", str(wheel), "--repository", url, env=_env(project))
    assert "already exists" in _one_line_error(proc, 1)
    _no_secrets(proc.stdout, proc.stderr)
    proc = invoke("publish", str(wheel), "--repository", url, "--skip-existing", "--json",
                  env=_env(project))
    assert proc.returncode == 0 and json.loads(proc.stdout)["wheels"][0]["status"] == "skipped"

    # wrong password, and no credentials at all
    other = make_wheel(tmp_path / "other", "tfdemo", "1.0.1+avx2.fma")
    proc = invoke("publish", str(other), "--repository", url,
                  env=_env(project, password="not-" + PASSWORD))
    assert "refused the credentials" in _one_line_error(proc, 1)
    _no_secrets(proc.stdout, proc.stderr)
    assert "not-" + PASSWORD not in proc.stderr
    proc = invoke("publish", str(other), "--repository", url, env=_env(project, None, None))
    assert "TWINE_PASSWORD" in _one_line_error(proc, 2)
    assert not (index_server["wheels"] / other.name).exists()
    assert _tree(project) == before

    # pip, isolated from this machine's config, installs it with --require-hashes
    env = isolated_pip_env(tmp_path)
    python = fresh_venv(tmp_path / "venv")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"tfdemo==1.0.0+avx2.fma --hash=sha256:{sha}\n")
    res = pip_install(python, env, "--index-url", index_server["url"], "--require-hashes",
                      "-r", str(reqs))
    assert res.returncode == 0, res.stdout + res.stderr
    got = subprocess.run([str(python), "-c", "import importlib.metadata as m, tfdemo; "
                          "print(m.version('tfdemo'), tfdemo.VALUE)"],
                         capture_output=True, text=True, check=True)
    assert got.stdout.split() == ["1.0.0+avx2.fma", "11"]
    # a wrong hash is refused: pip really checks the downloaded bytes
    reqs.write_text(f"tfdemo==1.0.0+avx2.fma --hash=sha256:{'0' * 64}\n")
    res = pip_install(fresh_venv(tmp_path / "venv2"), env, "--index-url", index_server["url"],
                      "--require-hashes", "-r", str(reqs))
    assert res.returncode != 0 and "DO NOT MATCH THE HASHES" in res.stderr
    # PEP 440: the public pin ==1.0.0 selects the local version 1.0.0+avx2.fma
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps",
                          "--index-url", index_server["url"], "tfdemo==1.0.0"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "Would install tfdemo-1.0.0+avx2.fma" in res.stdout


@pytest.mark.integration
def test_a_wheel_failing_verification_is_not_uploaded(index_server, tmp_path):
    project = tmp_path / "project"
    good = make_wheel(project / "wheels", "tfgood", "1.0")
    bad = make_wheel(project / "wheels", "tfbad", "1.0", corrupt_record=True)
    before = _tree(project)
    proc = invoke("publish", f"{good},{bad}", "--repository", index_server["upload_url"],
                  env=_env(project))
    line = _one_line_error(proc, 1)
    assert "refusing to publish tfbad-1.0-py3-none-any.whl" in line
    assert "nothing was uploaded" in line
    # the good wheel was not uploaded either: checks run before any upload
    assert not (index_server["wheels"] / good.name).exists()
    assert not (index_server["wheels"] / bad.name).exists()
    assert _tree(project) == before


@pytest.mark.integration
def test_server_down_is_one_line(tmp_path):
    project = tmp_path / "project"
    wheel = make_wheel(project / "wheels", "tfdemo", "1.0")
    before = _tree(project)
    proc = invoke("publish", str(wheel), "--repository", f"http://127.0.0.1:{_free_port()}/",
                  env=_env(project))
    assert "connection refused" in _one_line_error(proc, 1)
    _no_secrets(proc.stdout, proc.stderr)
    assert _tree(project) == before


class _FaultServer:
    """A loopback TCP server that breaks uploads: 'drop' reads part of the request and closes
    the connection, 'stall' accepts and never reads nor answers."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.accepted = threading.Event()
        self.received = 0
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        self.accepted.set()
        if self.mode == "drop":
            while self.received < 256 * 1024:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                self.received += len(chunk)
            conn.close()

    def close(self):
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.mark.integration
def test_upload_cut_off_by_the_server(tmp_path):
    project = tmp_path / "project"
    wheel = make_wheel(project / "wheels", "tfdemo", "1.0", payload_bytes=4 * 1024 * 1024)
    before = _tree(project)
    server = _FaultServer("drop")
    try:
        proc = invoke("publish", str(wheel), "--repository", server.url, env=_env(project))
    finally:
        server.close()
    assert server.received > 0  # the upload had started
    line = _one_line_error(proc, 1)
    assert "closed the connection during the upload" in line
    _no_secrets(proc.stdout, proc.stderr)
    assert _tree(project) == before


@pytest.mark.integration
def test_interrupted_upload_exits_130_and_timeout_exits_1(tmp_path):
    project = tmp_path / "project"
    wheel = make_wheel(project / "wheels", "tfdemo", "1.0", payload_bytes=8 * 1024 * 1024)
    before = _tree(project)

    server = _FaultServer("stall")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "invoke", "-r", str(ROOT), "publish", str(wheel),
             "--repository", server.url], cwd=ROOT, env=_env(project),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert server.accepted.wait(60), "publish never connected"
        time.sleep(0.5)  # the upload is now blocked mid-body
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        server.close()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert "interrupted" in _one_line_error(result, 130)
    _no_secrets(stdout, stderr)
    assert _tree(project) == before

    server = _FaultServer("stall")
    try:
        started = time.monotonic()
        proc = invoke("publish", str(wheel), "--repository", server.url, "--timeout", "3",
                      env=_env(project))
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert "did not finish within 3s" in _one_line_error(proc, 1)
    assert elapsed < 30
    assert _tree(project) == before
