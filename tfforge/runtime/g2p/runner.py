"""Run the bundled g2p model (g2p.pb) on a word list with the TensorFlow of this interpreter.

Standalone on purpose: it runs inside a wheel's venv, so it imports only numpy and TensorFlow
(2.14 through 2.21), never tfforge. tools/convert_g2p.py imports `translate` from here to build
the frozen graph, so the graph and the Python modes run the same code.

    python runner.py --words FILE [--model g2p.pb] [--mode graph] [--batch 64]
                     [--intra N --inter N] [--warmup K --repeat N]

Modes: eager (ops one by one), graph (tf.function), xla (tf.function(jit_compile=True)),
frozen (the GraphDef in a tf.compat.v1.Session). Greedy decoding runs inside the graph: one
call per batch. Prints one JSON document on stdout; exit 3 when TensorFlow does not import.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any

# What TensorFlow and numpy make (tensors, arrays, GraphDefs, sessions): tensorflow ships no type
# stubs and is never installed where tfforge is type-checked, so these are typed as Any.
TfValue = Any

MODES = ("eager", "graph", "frozen", "xla")
MAX_STEPS = 20  # g2p-en's decoder stops after 20 phonemes
START, END = 2, 3  # phoneme ids of <s> and </s>
EOS = 2  # grapheme id of </s>, appended to every word
NONE = -1  # fills output positions after </s>; never a phoneme id
WEIGHTS = ("enc_table", "enc_w_hh", "enc_b_hh", "dec_table", "dec_w_hh", "dec_b_hh", "fc_w", "fc_b")
HERE = os.path.dirname(os.path.abspath(__file__))


def _gru(tf: ModuleType, x_proj: TfValue, h: TfValue, w_hh: TfValue, b_hh: TfValue) -> TfValue:
    """One GRU step as g2p-en computes it; x_proj = x @ w_ih.T + b_ih, w_hh stored transposed."""
    hidden = w_hh.shape[0]
    hh = tf.matmul(h, w_hh) + b_hh
    x_rz, x_n = tf.split(x_proj, [2 * hidden, hidden], axis=1)
    hh_rz, hh_n = tf.split(hh, [2 * hidden, hidden], axis=1)
    r, z = tf.split(tf.sigmoid(x_rz + hh_rz), 2, axis=1)
    n = tf.tanh(x_n + r * hh_n)
    return (1 - z) * n + z * h


def translate(tf: ModuleType, chars: TfValue, lengths: TfValue, w: dict[str, TfValue]) -> TfValue:
    """Phoneme ids [batch, MAX_STEPS] (NONE after the end) for grapheme ids [batch, time].

    chars holds each word's letters then </s>, padded with 0; lengths counts letters + 1.
    """
    hidden = w["enc_w_hh"].shape[0]
    batch = tf.shape(chars)[0]
    x = tf.gather(w["enc_table"], tf.transpose(chars))  # [time, batch, 3*hidden]

    def encode(t: TfValue, h: TfValue) -> tuple[TfValue, TfValue]:
        h_next = _gru(tf, x[t], h, w["enc_w_hh"], w["enc_b_hh"])
        # Words shorter than the longest in the batch keep their last state.
        return t + 1, tf.where(tf.expand_dims(t < lengths, 1), h_next, h)

    steps = tf.reduce_max(lengths)
    _, h = tf.while_loop(
        lambda t, h: t < steps, encode, (tf.constant(0), tf.zeros(tf.stack([batch, hidden])))
    )

    positions = tf.range(MAX_STEPS)

    def decode(
        i: TfValue, h: TfValue, prev: TfValue, done: TfValue, out: TfValue
    ) -> tuple[TfValue, ...]:
        h = _gru(tf, tf.gather(w["dec_table"], prev), h, w["dec_w_hh"], w["dec_b_hh"])
        pred = tf.argmax(tf.matmul(h, w["fc_w"]) + w["fc_b"], axis=1, output_type=tf.int32)
        done = done | tf.equal(pred, END)
        emitted = tf.where(done, tf.fill(tf.shape(pred), NONE), pred)
        out = tf.where(tf.expand_dims(tf.equal(positions, i), 0), tf.expand_dims(emitted, 1), out)
        return i + 1, h, pred, done, out

    _, _, _, _, out = tf.while_loop(
        lambda i, h, prev, done, out: (i < MAX_STEPS) & tf.logical_not(tf.reduce_all(done)),
        decode,
        (
            tf.constant(0),
            h,
            tf.fill(tf.stack([batch]), START),
            tf.zeros(tf.stack([batch]), tf.bool),
            tf.fill(tf.stack([batch, MAX_STEPS]), NONE),
        ),
    )
    return out


def read_graph(tf: ModuleType, path: str) -> TfValue:
    graph_def = tf.compat.v1.GraphDef()
    with open(path, "rb") as fh:
        graph_def.ParseFromString(fh.read())
    return graph_def


def graph_constants(tf: ModuleType, graph_def: TfValue) -> dict[str, TfValue]:
    """The weights and vocabularies stored as Const nodes in the frozen graph."""
    consts: dict[str, TfValue] = {}
    for node in graph_def.node:
        if node.op == "Const" and (node.name in WEIGHTS or node.name.startswith("vocab/")):
            consts[node.name] = tf.make_ndarray(node.attr["value"].tensor)
    missing = [
        name for name in WEIGHTS + ("vocab/graphemes", "vocab/phonemes") if name not in consts
    ]
    if missing:
        raise SystemExit(f"{len(missing)} constants missing from the model: {missing}")
    return consts


class Model:
    """The g2p model in one execution mode; call it with (chars, lengths) numpy arrays."""

    call: Callable[[TfValue, TfValue], TfValue]  # (chars, lengths) -> phoneme ids

    def __init__(
        self,
        tf: ModuleType,
        path: str,
        mode: str,
        intra: int | None = None,
        inter: int | None = None,
    ) -> None:
        self.graph_def = read_graph(tf, path)
        consts = graph_constants(tf, self.graph_def)
        self.graphemes = [g.decode() for g in consts["vocab/graphemes"]]
        self.index = {g: i for i, g in enumerate(self.graphemes)}
        self.phonemes = [p.decode() for p in consts["vocab/phonemes"]]
        self.mode = mode
        if mode == "frozen":
            config = tf.compat.v1.ConfigProto(
                intra_op_parallelism_threads=intra or 0, inter_op_parallelism_threads=inter or 0
            )
            graph = tf.Graph()
            with graph.as_default():
                tf.graph_util.import_graph_def(self.graph_def, name="")
            self.session = tf.compat.v1.Session(graph=graph, config=config)
            fetch = graph.get_tensor_by_name("phonemes:0")
            feeds = graph.get_tensor_by_name("chars:0"), graph.get_tensor_by_name("lengths:0")
            self.call = lambda c, n: self.session.run(fetch, {feeds[0]: c, feeds[1]: n})
            return
        w = {name: tf.constant(consts[name]) for name in WEIGHTS}

        def run(chars: TfValue, lengths: TfValue) -> TfValue:
            return translate(tf, chars, lengths, w)

        if mode == "eager":
            self.call = lambda c, n: run(tf.constant(c), tf.constant(n)).numpy()
            return
        spec = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))
        # Calling the concrete function skips tf.function's argument matching: ~40 us a call.
        fn = tf.function(run, input_signature=spec, jit_compile=(mode == "xla"))
        concrete = fn.get_concrete_function()
        self.call = lambda c, n: concrete(tf.constant(c), tf.constant(n)).numpy()

    def encode(self, words: list[str], width: int, np: ModuleType) -> tuple[TfValue, TfValue]:
        index = self.index
        unk = index["<unk>"]
        chars = np.zeros((len(words), width), np.int32)
        lengths = np.zeros(len(words), np.int32)
        for row, word in enumerate(words):
            ids = [index.get(ch, unk) for ch in word] + [EOS]
            chars[row, : len(ids)] = ids
            lengths[row] = len(ids)
        return chars, lengths

    def predict(self, batches: list[list[str]], width: int, np: ModuleType) -> list[list[str]]:
        """Phoneme lists for every word, batch by batch (one model call per batch)."""
        result: list[list[str]] = []
        for words in batches:
            ids = self.call(*self.encode(words, width, np))
            for row in ids.tolist():
                end = row.index(NONE) if NONE in row else len(row)
                result.append([self.phonemes[i] for i in row[:end]])
        return result


def set_threads(tf: ModuleType, args: argparse.Namespace) -> None:
    """Apply --intra/--inter (when given) to TensorFlow's thread pools."""
    if args.intra is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    if args.inter is not None:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter)


def peak(args: argparse.Namespace, n: int = 1024, calls: int = 8, repeat: int = 5) -> int:
    """Best float32 GFLOP/s of n x n matmuls under the given threading: this machine's
    achievable FLOP rate as this TensorFlow sees it."""
    import tensorflow as tf

    set_threads(tf, args)
    a = tf.random.stateless_uniform([n, n], seed=[1, 2])
    b = tf.random.stateless_uniform([n, n], seed=[3, 4]) / n  # keeps the chain bounded

    def products(a: TfValue, b: TfValue) -> TfValue:
        for _ in range(calls):  # each product feeds the next: nothing to fold or share
            a = tf.matmul(a, b)
        return tf.reduce_sum(a)

    chain = tf.function(products)

    chain(a, b).numpy()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        chain(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    json.dump(
        {
            "tf_version": tf.__version__,
            "intra": args.intra,
            "inter": args.inter,
            "matmul": [n, n, n],
            "peak_gflops": 2 * n**3 * calls / best / 1e9,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", help="one word per line (or a golden file)")
    parser.add_argument("--model", default=os.path.join(HERE, "g2p.pb"), help="frozen graph")
    parser.add_argument("--mode", choices=MODES, default="graph")
    parser.add_argument("--batch", type=int, default=64, help="words per model call")
    parser.add_argument("--intra", type=int, default=None, help="intra-op threads (TF default)")
    parser.add_argument("--inter", type=int, default=None, help="inter-op threads (TF default)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes over all words")
    parser.add_argument("--repeat", type=int, default=1, help="timed passes over all words")
    parser.add_argument(
        "--peak",
        action="store_true",
        help="instead: measure float32 matmul GFLOP/s (the FLOP bound)",
    )
    args = parser.parse_args(argv)
    if args.peak:
        return peak(args)
    with open(args.words, encoding="utf-8") as fh:
        # One word per line; a golden file's `word<TAB>phonemes` lines and # comments work too.
        words = [
            line.split("\t")[0].strip() for line in fh if line.strip() and not line.startswith("#")
        ]

    started = time.perf_counter()
    try:
        import numpy as np
        import tensorflow as tf
    except BaseException as exc:  # noqa: BLE001 - report why, whatever it is (SIGILL never gets here)
        json.dump(
            {
                "error": "import",
                "message": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            },
            sys.stdout,
        )
        sys.stdout.write("\n")
        return 3
    import_s = time.perf_counter() - started
    set_threads(tf, args)

    started = time.perf_counter()
    model = Model(tf, args.model, args.mode, args.intra, args.inter)
    load_s = time.perf_counter() - started
    # One padded width for every batch: XLA compiles once per batch shape, not per word length.
    width = max(len(w) for w in words) + 1
    batches = [words[i : i + args.batch] for i in range(0, len(words), args.batch)]
    warmup: list[float] = []
    times: list[float] = []
    predictions: list[list[str]] | None = None
    for timed, count in ((False, args.warmup), (True, args.repeat)):
        for _ in range(count):
            started = time.perf_counter()
            predictions = model.predict(batches, width, np)
            (times if timed else warmup).append(time.perf_counter() - started)
    doc = {
        "engine": "tensorflow",
        "tf_version": tf.__version__,
        "numpy": np.__version__,
        "mode": args.mode,
        "batch": args.batch,
        "intra": args.intra,
        "inter": args.inter,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")},
        "words": len(words),
        "import_s": import_s,
        "load_s": load_s,
        "warmup_s": warmup,
        "times_s": times,
        "predictions": predictions,
    }
    json.dump(doc, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
