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
    help={
        "hosts": "host files: a folder (e.g. hosts/), a glob, or a comma-separated list of "
                 "snapshots (.json from detect --save) and raw /proc/cpuinfo copies",
        "json": "print one JSON document instead of a table",
        "gcc_version": "GCC version the recommended flags are for (default from config)",
        "require": "comma-separated features the target must have (e.g. avx512_vnni); "
                   "fails listing the hosts that lack them",
        "debug": "show a traceback on errors",
    }
)
def match(c, hosts, json=False, gcc_version=None, require=None, debug=False):
    """The best build target every host in a fleet can run, and why others are refused."""
    from tfforge import report
    run(report.match_command, hosts, as_json=json, gcc_version=gcc_version, require=require,
        debug=debug)


# ---- render / build (issues 3, 4) ---------------------------------------------------------
# (tasks for issues 3 and 4 go here)


# ---- verify (issue 5) ---------------------------------------------------------------------
# (tasks for issue 5 go here)


# ---- smoke / bench (issue 6) --------------------------------------------------------------
# (tasks for issue 6 go here)


# ---- index / serve / publish (issue 7) ----------------------------------------------------
# (tasks for issue 7 go here)
@task(
    help={
        "json": "print one JSON document (index path, file:// URL, wheels with sha256)",
        "debug": "show a traceback on errors",
    }
)
def index(c, json=False, debug=False):
    """Write the static PEP 503 + PEP 691 simple index of wheels/ into wheels/simple/."""
    from tfforge import index as index_mod
    run(index_mod.index_command, as_json=json, debug=debug)


@task(
    help={
        "port": "TCP port on 127.0.0.1 (default from config: 8080)",
        "htpasswd": "Apache htpasswd file whose users may upload; without it the index is "
                    "read-only",
        "json": "print one JSON document (URLs, pid) once the server listens",
        "debug": "show a traceback on errors",
    }
)
def serve(c, port=None, htpasswd=None, json=False, debug=False):
    """Serve wheels/ with pypiserver on 127.0.0.1 until Ctrl-C (a team's quick private index)."""
    from tfforge import index as index_mod
    run(index_mod.serve_command, port=int(port) if port is not None else None,
        htpasswd=htpasswd, as_json=json, debug=debug)


@task(
    iterable=["wheel"],
    help={
        "wheels": "wheel file, glob or comma-separated list (default: every wheel in wheels/)",
        "wheel": "another wheel file or glob; repeat for more",
        "repository": "upload URL of the index, e.g. http://127.0.0.1:8080/ "
                      "(default from config: publish_repository)",
        "skip_existing": "leave wheels the index already has instead of failing",
        "timeout": "seconds one upload may take (default from config: 3600)",
        "json": "print one JSON document with each wheel's sha256 and status",
        "debug": "show a traceback on errors",
    }
)
def publish(c, wheels=None, wheel=None, repository=None, skip_existing=False, timeout=None,
            json=False, debug=False):
    """Check wheels (structure, hashes) and upload them with twine.

    Credentials: TWINE_USERNAME and TWINE_PASSWORD, or keyring; never a flag."""
    from tfforge import publish as publish_mod
    run(publish_mod.publish_command, [wheels or "", *(wheel or [])], repository=repository,
        skip_existing=skip_existing, timeout=timeout, as_json=json, debug=debug)
