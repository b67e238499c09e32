"""Publishing: credentials handling, input checks and one-line failures (the real pypiserver
runs: tests/integration/test_publish_real.py)."""

from __future__ import annotations

import pytest
import requests
from conftest import invoke
from publish_helpers import make_wheel

from tfforge.errors import ConfigError, PublishError
from tfforge.publish import upload as publish

# ---- unit ----------------------------------------------------------------------------------


def test_credentials_are_scrubbed_and_hidden_from_repr():
    creds = publish.Credentials("alice", "hunter22")
    basic = "YWxpY2U6aHVudGVyMjI="  # base64 of alice:hunter22, as in a Basic auth header
    text = f"user alice pass hunter22 header Basic {basic}"
    assert publish.Credentials.scrub(creds, text) == "user *** pass *** header Basic ***"
    assert "hunter22" not in repr(creds) and "alice" not in repr(creds)
    assert publish.Credentials.from_environ(
        {"TWINE_USERNAME": "a", "TWINE_PASSWORD": ""}
    ) == publish.Credentials("a", None)


@pytest.mark.parametrize(
    "url, message",
    [
        (None, "no index to upload to"),
        ("ftp://host/", "is not an http(s) URL"),
        ("127.0.0.1:8080", "is not an http(s) URL"),
        ("https://bob:secret@index.example/", "credentials in the URL"),
    ],
)
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
    err = line(
        _http_error(
            502,
            "Bad Gateway",
            "<html><head><title>502 Bad Gateway</title>"
            "</head><body><h1>upstream down</h1></body></html>",
        )
    )
    assert str(err).endswith("502 Bad Gateway upstream down")
    assert "not an upload URL" in str(line(_http_error(405, "Method Not Allowed", "<html>")))
    refused = requests.ConnectionError(
        "HTTPConnectionPool: Max retries exceeded (Caused by "
        "NewConnectionError('[Errno 111] Connection refused'))"
    )
    assert "is the index running" in str(line(refused))
    cut = requests.ConnectionError(
        "('Connection aborted.', RemoteDisconnected('Remote end "
        "closed connection without response'))"
    )
    assert "closed the connection" in str(line(cut))
    from twine.exceptions import NonInteractive

    err = line(NonInteractive("Credential not found for password."))
    assert isinstance(err, ConfigError) and "TWINE_PASSWORD" in str(err)


def test_publish_has_no_credential_flags():
    proc = invoke("--help", "publish")
    assert proc.returncode == 0
    assert "--password" not in proc.stdout and "--user" not in proc.stdout
    assert "TWINE_PASSWORD" in proc.stdout
