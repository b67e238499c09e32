"""The scrubber against secrets in random encodings, through the real output paths.

The encodings are computed here with the standard library, independently of tfforge.text:
raw, percent-quoted with and without safe characters (and `+` for spaces, and lower-case hex),
JSON-escaped, HTML-escaped, base64 (standard and URL-safe, padded or not) of the secret and of
`user:secret`. Found case: a 401 reason phrase printed the raw TWINE_PASSWORD.
"""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tfforge import console, text
from tfforge.publish import upload

SETTINGS = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def b64(raw: bytes, urlsafe: bool, pad: bool) -> str:
    out = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return out if pad else out.rstrip("=")


ENCODINGS = {
    "raw": lambda s, u: s,
    "quote": lambda s, u: quote(s),
    "quote-nosafe": lambda s, u: quote(s, safe=""),
    "quote-plus": lambda s, u: quote_plus(s),
    "quote-lower": lambda s, u: re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), quote(s, safe="")),
    "json": lambda s, u: json.dumps(s)[1:-1],
    "json-utf8": lambda s, u: json.dumps(s, ensure_ascii=False)[1:-1],
    "html": lambda s, u: html.escape(s),
    "b64": lambda s, u: b64(s.encode(), False, True),
    "b64-url-nopad": lambda s, u: b64(s.encode(), True, False),
    "basic": lambda s, u: b64(f"{u}:{s}".encode(), False, True),
    "basic-url-nopad": lambda s, u: b64(f"{u}:{s}".encode(), True, False),
}
secrets = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=4, max_size=24
)
users = st.text(
    alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8
)
around = st.text(max_size=20)


@SETTINGS
@given(secrets, users, st.sampled_from(sorted(ENCODINGS)), around, around)
@example("hunter2!", "alice", "raw", "401 Unauthorized for ", "")
@example("p@ss w/rd&", "bob", "basic", "Authorization: Basic ", "\r\n")
def test_no_encoding_of_a_registered_secret_survives_scrub(secret, user, kind, before, after):
    text.forget_secrets()
    text.add_secret(secret, user=user)
    form = ENCODINGS[kind](secret, user)
    shown = text.scrub(before + form + after)
    assert form not in shown
    assert secret not in shown


@SETTINGS
@given(secret=secrets, user=users, kind=st.sampled_from(sorted(ENCODINGS)))
def test_console_lines_and_json_never_show_a_secret(capsys, secret, user, kind):
    text.forget_secrets()
    text.secrets_from_environ({"TWINE_PASSWORD": secret, "TWINE_USERNAME": user})
    form = ENCODINGS[kind](secret, user)
    console.say(f"server said: {form}")
    console.info(f"detail {form}")
    console.print_json({"echo": form})
    out, err = capsys.readouterr()
    for seen in (out, err):
        assert form not in seen
        assert json.dumps(form)[1:-1] not in seen


@pytest.mark.parametrize("kind", sorted(ENCODINGS))
def test_a_server_reason_phrase_echoing_the_password_is_scrubbed(kind):
    secret, user = "s3cr3t-P@ss/word", "alice"
    creds = upload.Credentials(user, secret)
    resp = requests.Response()
    resp.status_code = 401
    resp.reason = f"Unauthorized ({ENCODINGS[kind](secret, user)})"
    resp._content = f"<p>bad credentials {ENCODINGS[kind](secret, user)}</p>".encode()
    err = upload.explain(requests.HTTPError(response=resp), "x.whl", "http://h/", creds, [])
    assert ENCODINGS[kind](secret, user) not in str(err)
    assert secret not in str(err)


TOKENS = ["token", "access_token", "X-Amz-Signature", "sig", "password", "api_key", "auth"]


@settings(max_examples=100, derandomize=True, deadline=None)
@given(
    st.sampled_from(TOKENS),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=6, max_size=20),
    st.sampled_from(["?{k}={v}", "?a=1&{k}={v}", "#{k}={v}", ";{k}={v}", "?x=1;{k}={v}"]),
)
def test_token_parameters_in_urls_are_masked(key, value, shape):
    url = "https://index.example/simple/" + shape.format(k=key, v=value)
    shown = text.mask_url(url)
    assert value not in shown
    assert key in shown


def test_credentials_in_the_authority_are_masked():
    assert text.mask_url("https://u:p4ss@h/x?token=abc") == "https://***@h/x?token=***"


PLACES = [
    "{s}://u:{v}@h/x",  # credentials in the authority
    "http://u:{v}@h/x@y",  # and an '@' later
    "u:{v}@{s}://h/x",  # credentials before the scheme: no scheme to keep
    "{v}@http://h",
    "http//u:{v}@h/",  # a mistyped scheme
    "{s}://h/x?{k}={v}",  # a token-like parameter
    "{s}://h/x#{k}={v}",
    "{s}://h/x;{k}={v}",
    "{s}://u:{v}@h:99999/x",  # and a URL that does not parse
    "{s}://u:{v} x@h/",
]


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    st.sampled_from(PLACES),
    st.sampled_from(["http", "https", "grpc", "ftp", "x+y", "1a", ""]),
    st.sampled_from(TOKENS),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=6, max_size=20),
)
def test_a_refused_url_never_shows_its_credentials(place, scheme, key, value):
    from tfforge.build import inputs
    from tfforge.errors import ConfigError
    from tfforge.kit import mirror

    text.forget_secrets()
    url = place.format(s=scheme, k=key, v=value)
    for check in (mirror.check, inputs.check_cache_url, upload.repository_url):
        try:
            check(url)
        except ConfigError as err:
            assert value not in str(err), str(err)
        else:  # only the index URL may carry a query; it is shown through mask_url
            assert check is upload.repository_url and "@" not in url
            assert value not in text.mask_url(url)


FRAGMENTS = ["<", ">", "</", "<p", "<p>", "<title ", "<pre>", "<x", "x", " ", "\n", "&lt;"]


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=1 << 18),
    st.text(alphabet="abcdefghij ", min_size=1, max_size=30).filter(str.strip),
)
@example(["<p>"], 1 << 18, "401")
def test_a_server_body_of_any_shape_and_size_is_one_short_line_without_a_hang(
    pattern, repeat, title
):
    """An index's error body is outside input: a shape a backtracking pattern rescans from
    every '<' (1 MiB of '<p>' took hours) must take a bounded look at each character."""
    import signal

    body = "".join(pattern) * (repeat // len(pattern))
    page = f"<html><title>{title}</title>{body}"

    def hang(*_a):
        raise TimeoutError(f"{len(body)} characters of {pattern!r} still being read")

    old = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, 30)  # a hang detector, not a speed target
    try:
        shown = upload._body_text(body)
        titled = upload._body_text(page)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(shown) <= 160 and "\n" not in shown
    assert titled.startswith(" ".join(title.split()))
