"""Convert g2p-en 2.1.0's trained weights into the frozen TensorFlow graph tfforge ships.

    python tools/convert_g2p.py            # (re)write tfforge/runtime/g2p/: g2p.pb, MODEL.json,
                                           # LICENSE
    python tools/convert_g2p.py --check    # regenerate in a temp dir; exit 1 unless identical

The conversion runs in an isolated venv holding a pinned TensorFlow and g2p-en==2.1.0 (both from
PyPI), so the output is byte-identical on every run. The weights are loaded by g2p-en's own
loader (G2p.load_variables); the graph is tfforge/runtime/g2p/runner.py's `translate`, so the frozen
graph and the runner's Python modes run the same code. What the conversion changes, and why:
  * x @ w_ih.T + b_ih depends only on the input symbol, so it becomes a lookup table per
    symbol (enc_table [graphemes, 3H], dec_table [phonemes, 3H]), computed in float64 and
    rounded once to float32, so no BLAS kernel choice can change a bit of the artifact;
  * matrices used as h @ W are stored transposed;
  * the grapheme and phoneme vocabularies are stored as string constants (vocab/...).
The graph is made with the oldest TensorFlow tfforge supports (2.14): GraphDefs load forward
(2.14's graph runs on 2.21), not necessarily backward.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
G2P_DIR = ROOT / "tfforge" / "runtime" / "g2p"
CONVERTER_TF = "tensorflow-cpu==2.14.1"
OUTPUTS = ("g2p.pb", "MODEL.json", "LICENSE.g2p-en")


def convert(out_dir: Path) -> None:
    """Runs inside the converter venv (TensorFlow + g2p-en)."""
    from importlib.metadata import files

    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, str(G2P_DIR))
    import reference
    import runner

    g2p, g2p_version = reference.load_g2p()

    def table(emb, w_ih, b_ih):
        exact = emb.astype(np.float64) @ w_ih.astype(np.float64).T + b_ih.astype(np.float64)
        return exact.astype(np.float32)

    weights = {
        "enc_table": table(g2p.enc_emb, g2p.enc_w_ih, g2p.enc_b_ih),
        "enc_w_hh": np.ascontiguousarray(g2p.enc_w_hh.T),
        "enc_b_hh": g2p.enc_b_hh,
        "dec_table": table(g2p.dec_emb, g2p.dec_w_ih, g2p.dec_b_ih),
        "dec_w_hh": np.ascontiguousarray(g2p.dec_w_hh.T),
        "dec_b_hh": g2p.dec_b_hh,
        "fc_w": np.ascontiguousarray(g2p.fc_w.T),
        "fc_b": g2p.fc_b,
    }
    assert set(weights) == set(runner.WEIGHTS)

    spec = (
        tf.TensorSpec([None, None], tf.int32, name="chars"),
        tf.TensorSpec([None], tf.int32, name="lengths"),
    )

    @tf.function(input_signature=spec)
    def model(chars, lengths):
        consts = {k: tf.constant(v.astype(np.float32), name=k) for k, v in weights.items()}
        return tf.identity(runner.translate(tf, chars, lengths, consts), name="phonemes")

    graph_def = model.get_concrete_function().graph.as_graph_def()
    for name, symbols in (("vocab/graphemes", g2p.graphemes), ("vocab/phonemes", g2p.phonemes)):
        node = graph_def.node.add()
        node.name, node.op = name, "Const"
        node.attr["dtype"].type = tf.string.as_datatype_enum
        node.attr["value"].tensor.CopyFrom(
            tf.make_tensor_proto(np.array([s.encode() for s in symbols], dtype=object))
        )
    pb = graph_def.SerializeToString(deterministic=True)
    (out_dir / "g2p.pb").write_bytes(pb)

    dist_files = {str(f): f for f in files("g2p-en")}
    license_file = next(f for name, f in dist_files.items() if name.endswith("LICENSE.txt"))
    (out_dir / "LICENSE.g2p-en").write_text(license_file.read_text())
    npz = next(f for name, f in dist_files.items() if name.endswith("checkpoint20.npz"))
    manifest = {
        "model": "g2p-en GRU encoder-decoder, greedy decoding in the graph",
        "source": {
            "package": f"g2p-en=={g2p_version}",
            "license": "Apache-2.0",
            "weights": "g2p_en/checkpoint20.npz",
            "weights_sha256": hashlib.sha256(Path(npz.locate()).read_bytes()).hexdigest(),
        },
        "converted_with": {
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
            "script": "tools/convert_g2p.py",
        },
        "g2p.pb": {"sha256": hashlib.sha256(pb).hexdigest(), "bytes": len(pb)},
        "inputs": {
            "chars": "int32 [batch, time]: grapheme ids of each word, then </s> (2), padded with 0",
            "lengths": "int32 [batch]: letters + 1",
        },
        "outputs": {
            "phonemes": f"int32 [batch, {runner.MAX_STEPS}]: phoneme ids, "
            f"{runner.NONE} after the end"
        },
        "weights": {k: list(v.shape) for k, v in weights.items()},
        "graphemes": list(g2p.graphemes),
        "phonemes": list(g2p.phonemes),
    }
    (out_dir / "MODEL.json").write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temp dir and compare with tfforge/runtime/g2p/",
    )
    parser.add_argument("--tf", default=CONVERTER_TF, help="TensorFlow pin for the conversion")
    parser.add_argument("--inside", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        convert(Path(args.inside))
        return 0

    sys.path.insert(0, str(ROOT))
    from tfforge.runtime import g2p, venvs
    from tfforge.wheel import fetch as pypi

    # g2p-en and numpy pinned as for the golden data (tfforge.runtime.g2p.REFERENCE_REQUIREMENTS).
    python = venvs.venv_python(pypi.fetch(args.tf), requirements=g2p.REFERENCE_REQUIREMENTS)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) if args.check else G2P_DIR
        subprocess.run([str(python), __file__, "--inside", str(out)], check=True)
        if args.check:
            differ = [
                n
                for n in OUTPUTS
                if not (G2P_DIR / n).exists()
                or not filecmp.cmp(out / n, G2P_DIR / n, shallow=False)
            ]
            if differ:
                print(f"differs from the committed artifact: {', '.join(differ)}")
                return 1
            print("identical: " + ", ".join(OUTPUTS))
            return 0
    print(f"wrote {', '.join(str(G2P_DIR / n) for n in OUTPUTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
