"""`invoke publish`: check wheels, then upload them with twine; nothing is written locally."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from tfforge import console
from tfforge.files import JsonDoc
from tfforge.options.typed.publish import PublishOptions
from tfforge.publish import upload
from tfforge.text import is_loopback, mask_url


def publish_command(opts: PublishOptions, *, environ: Mapping[str, str] | None = None) -> JsonDoc:
    url = upload.repository_url(opts.publish_repository or "", opts.where("publish_repository"))
    paths = upload.resolve_wheels([opts.publish_wheels, *opts.publish_more_wheels])
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
        skip_existing=opts.skip_existing,
        timeout_s=opts.publish_timeout,
        show_progress=not opts.json and console.is_tty(),
    )
    doc = {"repository": mask_url(url), "wheels": results}
    if opts.json:
        console.print_json(doc)
    else:
        for r in results:
            console.say(
                f"{r['status']:<9} {r['file']}  sha256={r['sha256']}  "
                f"{upload.size_text(r['size'])}  {r['seconds']:.1f}s"
            )
    return doc
