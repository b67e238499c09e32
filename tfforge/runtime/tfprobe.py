"""Standalone probe of an installed TensorFlow; prints one JSON document on stdout.

Run it with any Python that has TensorFlow (`python tfprobe.py`): it imports only TensorFlow and
the standard library, so it works inside a wheel's venv. TensorFlow's C++ log (which names the
CPU features the binary does not use: "rebuild TensorFlow with the appropriate compiler flags")
goes to file descriptor 2, so the probe captures fd 2 while TensorFlow loads and runs one op.
"""

import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

T = TypeVar("T")

_UNUSED = re.compile(r"To enable the following instructions: ([A-Z0-9_ ]+?)[,.]? in ")
_MISSING = re.compile(r"instructions, but these are not available on your machine: ([A-Z0-9_ ]+)")


def _capture_fd2(fn: Callable[[], T]) -> tuple[T, str]:
    """Run fn with fd 2 redirected to a temp file; return (result, captured text)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            result = fn()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return result, tmp.read().decode("utf-8", "replace")


def _load() -> ModuleType:
    import tensorflow as tf

    tf.constant([1.0, 2.0]) * 2.0  # the unused-features notice is logged on first op
    module: ModuleType = tf  # tensorflow ships no stubs: typed as a module here
    return module


def probe() -> dict[str, object]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
    try:
        tf, log = _capture_fd2(_load)
    except ImportError as exc:
        return {"installed": False, "error": f"{exc.__class__.__name__}: {exc}"}
    doc: dict[str, object] = {
        "installed": True,
        "version": tf.__version__,
        "python": sys.version.split()[0],
        "path": os.path.dirname(tf.__file__ or ""),
    }
    try:
        info = dict(tf.sysconfig.get_build_info())
        doc["build_info"] = {
            k: v if isinstance(v, (str, int, float, bool)) else str(v) for k, v in info.items()
        }
    except Exception as exc:  # noqa: BLE001 - old or unusual builds: reported, the probe goes on
        doc["build_info"] = {"error": str(exc)}
    try:
        from tensorflow.python.util import _pywrap_util_port as port

        doc["mkl_enabled"] = bool(port.IsMklEnabled())
    except Exception:  # noqa: BLE001 - a private module: absent or changed means "unknown"
        doc["mkl_enabled"] = None
    onednn_env = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    doc["onednn_env"] = onednn_env
    doc["onednn_on"] = ("oneDNN custom operations are on" in log) or doc["mkl_enabled"] is True
    m = _UNUSED.search(log)
    doc["unused_cpu_features"] = m.group(1).split() if m else []
    m = _MISSING.search(log)
    doc["missing_cpu_features"] = m.group(1).split() if m else []
    doc["log"] = [line for line in log.splitlines() if line.strip()][-20:]
    return doc


if __name__ == "__main__":
    print(json.dumps(probe(), sort_keys=True))
