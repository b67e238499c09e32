"""Issue 14, class 3: secrets never shown; input text shown as plain, escaped text."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES, invoke
from invoke.exceptions import Exit

from tfforge import console
from tfforge.commands import runner as cli
from tfforge.publish import upload
from tfforge.text import plain

SECRET = "s3cr&t/p@ss w0rd"


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://user:{SECRET}@host/",
        f"http://user:{SECRET}@127.0.0.1:abc/",
        f"user:{SECRET}@host",
        f"https://token:{SECRET}@[::1/",
    ],
)
def test_repository_credentials_are_masked_before_any_other_check(url):
    with pytest.raises(Exit) as info:
        cli.run_task("publish", {"wheels": "x.whl", "repository": url})
    message = str(info.value.message)
    assert info.value.code == 2 and "credentials" in message
    for part in ("s3cr", "p@ss", "w0rd"):
        assert part not in message, message


def test_scrub_covers_the_forms_a_server_echoes():
    creds = upload.Credentials("alice", SECRET)
    page = (
        "<p>bad password s3cr&amp;t/p@ss w0rd</p> url=s3cr%26t%2Fp%40ss%20w0rd "
        "form=s3cr%26t%2Fp%40ss+w0rd raw=" + SECRET
    )
    shown = creds.scrub(page)
    for part in ("s3cr", "w0rd"):
        assert part not in shown, shown


def test_plain_escapes_control_characters_and_undecodable_bytes():
    assert plain("a\x1b[31mred\x07") == "a\\x1b[31mred\\x07"
    assert plain("caf\udce9 \u202e") == "caf\\xe9 \\u202e"
    assert plain("ok é 中 [/]") == "ok é 中 [/]"


def test_console_lines_never_interpret_markup_or_escapes(capsys):
    console.warn("member [/] \x1b]0;pwned\x07 [bold]x")
    console.say("name [/] \x1b[2J")
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err.replace("\x1b[33m", "")
    assert "[/]" in captured.out and "[/]" in captured.err and "[bold]x" in captured.err


def test_hostile_cpuinfo_model_and_snapshot_names_are_shown_escaped(tmp_path):
    text = (FIXTURES / "cpuinfo" / "haswell-i7-4770.cpuinfo").read_text()
    evil = text.replace("model name\t: ", "model name\t: [/]\x1b]0;pwned\x07[bold red]", 1)
    (tmp_path / "evil.cpuinfo").write_text(evil)
    snap = {"schema": "tfforge-host/1", "name": "web[/]\x1b[2J", "flags": ["sse", "sse2"]}
    (tmp_path / "evil.json").write_text(json.dumps(snap))
    for args in (
        ("detect", "--no-tf", "--cpuinfo", str(tmp_path / "evil.cpuinfo")),
        ("detect", "--no-tf", "--cpuinfo", str(tmp_path / "evil.json")),
        ("match", f"{tmp_path / 'evil.json'},{tmp_path / 'evil.cpuinfo'}"),
    ):
        proc = invoke(*args, cwd=tmp_path, timeout=60)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
        assert "[/]" in proc.stdout, proc.stdout  # shown as text, not read as markup
