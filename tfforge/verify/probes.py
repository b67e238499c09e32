"""The short programs that prove a wheel runs: an import plus a few operations, per project.

Each prints `TFFORGE-STAGE name` before a step (so a crash says how far it got) and exits 0 when
every result is right. Used under qemu (verify --emulate) and natively (the corpus ground truth).
"""

from __future__ import annotations

import json
import re
import textwrap
import unicodedata
from collections.abc import Iterable

_HEAD = r"""
import json, sys
def stage(name):
    print("TFFORGE-STAGE", name, flush=True)
"""

TENSORFLOW = (
    _HEAD
    + r"""
stage("import numpy")
import numpy as np
stage("import tensorflow")
import tensorflow as tf
stage("matmul")
x = tf.constant([[1.0, 2.0], [3.0, 4.0]])
y = tf.matmul(x, x)
stage("relu + reduce_sum")
r = float(tf.reduce_sum(tf.nn.relu(y - 10.0)))
stage("conv2d")
c = float(tf.reduce_sum(tf.nn.conv2d(tf.ones([1, 4, 4, 1]), tf.ones([2, 2, 1, 1]), 1, "VALID")))
stage("float16 cast")
h = tf.cast(y, tf.float16)
back = float(tf.reduce_sum(tf.cast(h, tf.float32)))
stage("done")
ok = back == 54.0 and r == 17.0 and c == 36.0
print("TFFORGE-RESULT", json.dumps({"version": tf.__version__, "sum": back, "relu": r,
                                    "conv": c, "ok": ok}), flush=True)
sys.exit(0 if ok else 3)
"""
)

NUMPY = (
    _HEAD
    + r"""
stage("import numpy")
import numpy as np
stage("matmul")
a = np.arange(64, dtype=np.float64).reshape(8, 8)
m = float((a @ a).sum())
stage("sort + ufuncs")
s = np.sort(np.arange(1000, dtype=np.float32)[::-1])
u = float(np.exp(np.zeros(16, np.float32)).sum() + np.sqrt(np.full(4, 4.0)).sum())
stage("float16")
h = float(np.arange(8, dtype=np.float16).sum())
stage("done")
ok = m == 529536.0 and s[0] == 0 and s[-1] == 999 and u == 24.0 and h == 28.0
print("TFFORGE-RESULT", json.dumps({"version": np.__version__, "ok": ok}), flush=True)
sys.exit(0 if ok else 3)
"""
)

ONNXRUNTIME = (
    _HEAD
    + r"""
stage("import numpy")
import numpy as np
stage("import onnxruntime")
import onnxruntime as ort
stage("session")
# A one-node MatMul model, serialized by hand (protobuf wire format) so that the probe needs
# no onnx package: ModelProto{ir_version 7, opset 13, graph{node MatMul(X, W) -> Y}}.
def field(num, wire, payload):
    key = bytes([num << 3 | wire])
    if wire == 0:
        out = b""
        while True:
            b = payload & 0x7F
            payload >>= 7
            out += bytes([b | (0x80 if payload else 0)])
            if not payload:
                return key + out
    n = len(payload)
    if n < 128:
        return key + bytes([n]) + payload
    return key + bytes([n & 0x7F | 0x80, n >> 7]) + payload
def vinfo(name):
    dims = field(1, 2, field(1, 0, 2)) + field(1, 2, field(1, 0, 2))
    tensor = field(1, 0, 1) + field(2, 2, dims)          # elem_type FLOAT, shape [2, 2]
    return field(1, 2, name.encode()) + field(2, 2, field(1, 2, tensor))
node = field(1, 2, b"X") + field(1, 2, b"W") + field(2, 2, b"Y") + field(4, 2, b"MatMul")
graph = field(1, 2, node) + field(2, 2, b"g") + field(11, 2, vinfo("X")) + \
    field(11, 2, vinfo("W")) + field(12, 2, vinfo("Y"))
model = field(1, 0, 7) + field(7, 2, graph) + field(8, 2, field(2, 0, 13))
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
stage("matmul")
x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
y = sess.run(None, {"X": x, "W": x})[0]
stage("done")
ok = float(y.sum()) == 54.0
print("TFFORGE-RESULT", json.dumps({"version": ort.__version__, "ok": ok}), flush=True)
sys.exit(0 if ok else 3)
"""
)

_BY_PROJECT = {
    "numpy": (NUMPY, "import numpy + matmul, sort, ufuncs, float16"),
    "onnxruntime": (ONNXRUNTIME, "import onnxruntime + a one-node MatMul session"),
}


def valid_module(name: str) -> bool:
    """A dotted Python module name (what a probe may `import`): never code."""
    return bool(name) and all(part.isidentifier() for part in name.split("."))


# A module imported from anywhere but the venv's site-packages (the standard library, the
# interpreter itself) is not the wheel's code: running it would prove nothing about the wheel.
_FROM_SITE = r"""
import os, sysconfig
def from_site(name):
    mod = sys.modules[name]
    where = getattr(mod, "__file__", None) or next(iter(getattr(mod, "__path__", None) or []), None)
    roots = {os.path.realpath(sysconfig.get_path(k)) for k in ("purelib", "platlib")}
    if not where or not any(os.path.realpath(where).startswith(r + os.sep) for r in roots):
        doc = {"ok": False, "module": name, "not_installed_by_the_wheel": str(where)}
        print("TFFORGE-RESULT", json.dumps(doc), flush=True)
        sys.exit(5)
"""


def _imports(modules: Iterable[str]) -> str:
    lines = [_FROM_SITE]
    for m in modules:
        if not valid_module(m):
            raise ValueError(f"not a module name: {m!r}")
        key = unicodedata.normalize("NFKC", m)  # the name `import` binds (PEP 3131)
        lines.append(f"stage({json.dumps('import ' + m)})\nimport {m}\nfrom_site({key!r})\n")
    return "".join(lines)


def import_probe(modules: Iterable[str]) -> str:
    """A probe that imports each module (a wheel's top-level packages) and nothing more."""
    return (
        _HEAD
        + _imports(modules)
        + 'stage("done")\nprint("TFFORGE-RESULT", json.dumps({"ok": True}), flush=True)\n'
    )


def workload_probe(module: str, workload: str) -> str:
    """A probe that imports `module`, then runs `workload` (Python; an exception fails it)."""
    return (
        _HEAD
        + _imports([module])
        + 'stage("workload")\n'
        + textwrap.dedent(workload).strip()
        + '\nstage("done")\nprint("TFFORGE-RESULT", json.dumps({"ok": True}), flush=True)\n'
    )


def for_project(project: str) -> tuple[str, str] | None:
    """(probe, what it runs) for a project with a probe of its own: TensorFlow's for any
    TensorFlow distribution, numpy's, onnxruntime's; None for others."""
    name = re.sub(r"[-_.]+", "-", project).lower()
    if "tensorflow" in name:
        return TENSORFLOW, "import tensorflow + matmul, relu, conv2d, float16 cast"
    return _BY_PROJECT.get(name)
