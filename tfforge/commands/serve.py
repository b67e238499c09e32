"""`invoke serve`: pypiserver on wheels/ (loopback) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import shlex
import sys

from tfforge import console, paths, procs
from tfforge.errors import ConfigError, PublishError
from tfforge.options.typed.serve import ServeOptions
from tfforge.publish import serve


def serve_command(opts: ServeOptions) -> int:
    """Run the server in the foreground; returns its exit code (0 after Ctrl-C/SIGTERM)."""
    port = opts.serve_port
    serve.check_port(port, opts.where("serve_port"))
    root = paths.wheels_dir()
    if not root.is_dir():
        raise ConfigError(
            f"no wheels folder at {root}; build a wheel first (invoke build) or "
            "create the folder for uploads"
        )
    pw = serve.load_htpasswd(opts.serve_htpasswd) if opts.serve_htpasswd else None
    argv = serve.pypiserver_argv(root, port, pw)
    console.info("running: " + shlex.join(argv))

    # SIGTERM and SIGHUP stop it the way Ctrl-C does; the child ends with tfforge anyway.
    with procs.stopping_signals():
        proc = serve.start(argv)
        try:
            serve.wait_listening(proc, port)
            base = f"http://{serve.LOOPBACK}:{port}/"
            doc = {
                "url": base + "simple/",
                "upload_url": base,
                "root": str(root),
                "uploads": pw is not None,
                "pid": proc.pid,
            }
            if opts.json:
                console.print_json(doc)
            else:
                mode = f"uploads need a user from {pw}" if pw else "read-only (no --htpasswd)"
                console.say(f"serving {root} at {doc['url']} ({mode})")
                console.say(f"install: pip install --index-url {doc['url']} <project>==<version>")
                if pw:
                    console.say(f"publish: invoke publish --repository {doc['upload_url']}")
                console.say("Ctrl-C stops it" if console.is_tty() else "SIGINT or SIGTERM stops it")
            sys.stdout.flush()
            code = proc.wait()
            if code != 0:
                raise PublishError(f"pypiserver exited with code {code}; see its messages above")
            return code
        except KeyboardInterrupt:
            console.info("stopping pypiserver")
            return 0
        finally:
            serve.stop(proc)
