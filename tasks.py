"""tfforge tasks: each parses flags, calls one function in tfforge/, prints the result.

Run `invoke --list` for the tasks and `invoke --help TASK` for their flags.
"""

from invoke import task

from tfforge.cli import run


# ---- detect / match (issue 2) -------------------------------------------------------------
@task(
    help={
        "json": "print one JSON document instead of tables",
        "save": "write a host snapshot to this path (e.g. hosts/web-1.json)",
        "cpuinfo": "analyse a saved /proc/cpuinfo text from another machine instead of this host",
        "gcc_version": "GCC version the recommended flags are for (default from config)",
        "no_tf": "skip probing the installed TensorFlow",
        "debug": "show a traceback on errors",
    }
)
def detect(c, json=False, save=None, cpuinfo=None, gcc_version=None, no_tf=False, debug=False):
    """What this CPU supports, what the installed TensorFlow uses, and the build target for it."""
    from tfforge import report
    run(report.detect_command, as_json=json, save=save, cpuinfo=cpuinfo,
        gcc_version=gcc_version, probe_tf=not no_tf, debug=debug)


@task(
    iterable=["hosts"],
    help={
        "hosts": "host snapshot (.json from detect --save) or raw cpuinfo file; repeat, or "
                 "pass files as positional arguments",
        "json": "print one JSON document instead of a table",
        "gcc_version": "GCC version the recommended flags are for (default from config)",
        "debug": "show a traceback on errors",
    }
)
def match(c, hosts=None, json=False, gcc_version=None, debug=False):
    """The best build target every host in a fleet can run, and why others are refused."""
    from tfforge import report
    run(report.match_command, list(hosts or []), as_json=json, gcc_version=gcc_version,
        debug=debug)


# ---- render / build (issues 3, 4) ---------------------------------------------------------
# (tasks for issues 3 and 4 go here)


# ---- verify (issue 5) ---------------------------------------------------------------------
# (tasks for issue 5 go here)


# ---- smoke / bench (issue 6) --------------------------------------------------------------
# (tasks for issue 6 go here)


# ---- index / serve / publish (issue 7) ----------------------------------------------------
# (tasks for issue 7 go here)
