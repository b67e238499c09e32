"""`invoke publish`: check wheels, then upload them with twine; nothing is written locally."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from tfforge import console, settings
from tfforge.publish import upload
from tfforge.text import is_loopback, mask_url


def publish_command(
    wheels: list[str],
    *,
    repository: str | None = None,
    skip_existing: bool = False,
    timeout: float | None = None,
    as_json: bool = False,
    environ: Mapping[str, str] | None = None,
) -> dict:
    opts = settings.load(
        {"publish_repository": repository, "publish_timeout": timeout}, prefix="publish_"
    )
    url = upload.repository_url(opts.publish_repository, opts.origin("publish_repository"))
    timeout_s = settings.positive(opts, "publish_timeout", 0)
    paths = upload.resolve_wheels(wheels)
    upload.check_wheels(paths)
    creds = upload.Credentials.from_environ(os.environ if environ is None else environ)
    host = urlsplit(url).hostname or ""
    if urlsplit(url).scheme == "http" and not is_loopback(host):
        console.warn(
            f"{host} is reached over plain http: the password travels unencrypted; use https"
        )
    results = upload.publish(
        paths,
        url,
        creds,
        skip_existing=skip_existing,
        timeout_s=timeout_s,
        show_progress=not as_json and console.is_tty(),
    )
    doc = {"repository": mask_url(url), "wheels": results}
    if as_json:
        console.print_json(doc)
    else:
        for r in results:
            console.say(
                f"{r['status']:<9} {r['file']}  sha256={r['sha256']}  "
                f"{upload.size_text(r['size'])}  {r['seconds']:.1f}s"
            )
    return doc
