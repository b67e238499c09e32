"""pip installs from the static simple index via file:// and via http with content
negotiation."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading

import pytest
from conftest import invoke
from publish_helpers import fresh_venv, isolated_pip_env, make_wheel, pip_install

from tfforge.publish import index

# ---- integration: pip really installs from the index ---------------------------------------


@pytest.mark.integration
def test_pip_installs_from_the_static_index_via_file_url(tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tfdemo", "1.0.0+avx2.fma", value=7)
    make_wheel(wheels, "tfdemo", "0.5.0", value=5)
    proc = invoke("index", env={"TFFORGE_ROOT": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    python = fresh_venv(tmp_path / "venv")
    env = isolated_pip_env(tmp_path)
    url = (wheels / "simple").as_uri() + "/"
    # ==1.0.0 matches the local version 1.0.0+avx2.fma (PEP 440), which is what gets installed
    res = pip_install(python, env, "--index-url", url, "tfdemo==1.0.0")
    assert res.returncode == 0, res.stdout + res.stderr
    got = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, tfdemo; print(m.version('tfdemo'), tfdemo.VALUE)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert got.stdout.split() == ["1.0.0+avx2.fma", "7"]
    # a project the index does not have is not found elsewhere: pip saw only this index
    res = pip_install(python, env, "--index-url", url, "six")
    assert res.returncode != 0 and "No matching distribution" in res.stderr


class _NegotiatingHandler(http.server.SimpleHTTPRequestHandler):
    """A static server that maps Accept: application/vnd.pypi.simple.v1+json to index.json,
    as the README tells nginx users to do; it logs which files it served."""

    served: list[str] = []

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path) and index.JSON_TYPE in self.headers.get("Accept", ""):
            target = os.path.join(path, "index.json")
            if os.path.isfile(target):
                self.served.append(target)
                with open(target, "rb") as fh:
                    body = fh.read()
                self.send_response(200)
                self.send_header("Content-Type", index.JSON_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                return _BytesFile(body)
        self.served.append(path)
        return super().send_head()

    def log_message(self, *args):
        pass


class _BytesFile:
    def __init__(self, data: bytes):
        self.data = data

    def read(self, *_):
        data, self.data = self.data, b""
        return data

    def close(self):
        pass


@pytest.mark.integration
def test_pip_reads_the_json_form_over_http(tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tfdemo", "1.0.0+avx2.fma", value=9)
    index.build_index(wheels)
    handler = type("H", (_NegotiatingHandler,), {"served": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(wheels), **k)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
        python = fresh_venv(tmp_path / "venv")
        res = pip_install(
            python, isolated_pip_env(tmp_path), "--index-url", url, "tfdemo==1.0.0+avx2.fma"
        )
        assert res.returncode == 0, res.stdout + res.stderr
    finally:
        server.shutdown()
        server.server_close()
    assert str(wheels / "simple" / "tfdemo" / "index.json") in handler.served
    got = subprocess.run(
        [str(python), "-c", "import tfdemo; print(tfdemo.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert got.stdout.strip() == "9"
