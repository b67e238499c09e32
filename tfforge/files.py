"""Small file helpers every module shares: streaming sha256 and atomic JSON writes."""

from __future__ import annotations

import json
import os
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed (wheels can be hundreds of MB)."""
    import hashlib  # loads OpenSSL (~5-9 ms): only for commands that hash (not detect)

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def write_json_atomic(path: Path, doc: object) -> Path:
    """Write sorted, indented JSON beside the target, then rename it into place.

    The temporary name carries the process id: two processes writing the same file (a shared
    cache) never write into each other's temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
