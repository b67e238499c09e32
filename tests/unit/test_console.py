"""console.Progress, the one step display of build, verify and bench (plain output: not a tty)."""

from __future__ import annotations

import re

from tfforge import console


def test_open_ended_steps_are_timed_lines_and_silence_gets_a_heartbeat(capsys):
    with console.Progress("build x", heartbeat_s=0.0) as bar:
        bar.step("[build 1/3] RUN apt-get install -y gcc")
        bar.tick()
        bar.note("a note")
    err = capsys.readouterr()
    assert err.out == ""
    lines = err.err.splitlines()
    assert re.fullmatch(r"\[ *\d+\.\ds\] \[build 1/3\] RUN apt-get install -y gcc", lines[0])
    assert re.fullmatch(r"\[ *\d+\.\ds\] still running: \[build 1/3\] RUN apt-get .*", lines[1])
    assert lines[2] == "a note"
    assert len(lines) == 3


def test_counted_steps_print_their_result_lines_with_the_count(capsys):
    with console.Progress("bench", total=2) as bar:
        bar.step("config a")  # the live line only: plain output waits for the result
        bar.done("a: 10 words/s")
        bar.update(5, 10)  # amounts are shown live only
        bar.step("config b")
        bar.done("b: failed")
    assert capsys.readouterr().err.splitlines() == ["[1/2] a: 10 words/s", "[2/2] b: failed"]


def test_heartbeat_waits_for_silence(capsys):
    bar = console.Progress("build y", heartbeat_s=3600)
    bar.step("compile")
    bar.tick()
    bar.close()
    bar.close()  # idempotent
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_long_step_names_are_cut_to_one_line():
    assert console._fit("a  b\nc", 10) == "a b c"
    assert console._fit("x" * 200, 20) == "x" * 17 + "..."


def test_the_runner_shows_domain_status_logs_on_stderr(capsys):
    import logging

    from tfforge.commands.runner import run

    def command():
        logging.getLogger("tfforge.runtime.venvs").info("creating venv x")
        logging.getLogger("tfforge.publish.upload").warning("already there")
        logging.getLogger("elsewhere").warning("not ours")
        return 7

    assert run(command) == 7
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == ["creating venv x", "warning: already there"]
