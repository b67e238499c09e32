"""The typed options of publish. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass

from tfforge.options.base import Options


@dataclass(frozen=True, kw_only=True)
class PublishOptions(Options):
    """Check wheels (structure, hashes) and upload them with twine (credentials: TWINE_* or
    keyring).
    """

    # wheel file, glob (quoted, e.g. 'wheels/*.whl') or comma-separated list
    publish_wheels: str
    # another wheel file or glob; repeat for more
    publish_more_wheels: tuple[str, ...] = ()
    # upload URL of the index, e.g. http://127.0.0.1:8080/; credentials come from TWINE_USERNAME and
    # TWINE_PASSWORD, or keyring, never a flag
    publish_repository: str | None = None
    # leave wheels the index already has instead of failing
    skip_existing: bool = False
    # seconds one wheel's upload may take
    publish_timeout: float = 3600.0
    # print one JSON document (for machines) instead of the report
    json: bool = False
    # show a traceback on errors
    debug: bool = False
