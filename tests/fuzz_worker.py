"""Seeded mutation fuzzing of the parsers that read hostile input: the ELF reader (elfscan) and
the host snapshot / cpuinfo parser (host.cpu + the detect report).

Run as `python tests/fuzz_worker.py KIND SEED SECONDS SAMPLES...` (tests/unit/test_fuzz.py does,
under a memory limit). Every case must end normally or with a TfforgeError, within
CASE_SECONDS; anything else (another exception, a hang, MemoryError) is printed as a failure
with the seed and case number that reproduce it. Prints one JSON document.
"""

from __future__ import annotations

import json
import random
import signal
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

CASE_SECONDS = 20.0  # a hang guard per case (typical cases take milliseconds)
EXTREMES = (
    0,
    1,
    7,
    8,
    63,
    64,
    255,
    4096,
    0x7FFFFFFF,
    0xFFFFFFFF,
    1 << 32,
    1 << 62,
    1 << 63,
    (1 << 64) - 1,
    (1 << 64) - 8,
)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


# ---- ELF mutations -------------------------------------------------------------------------
def _u(data: bytes, fmt: str, at: int) -> int:
    return struct.unpack_from(fmt, data, at)[0] if at + struct.calcsize(fmt) <= len(data) else 0


def mutate_elf(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    shoff, shnum = _u(data, "<Q", 0x28), _u(data, "<H", 0x3C)
    how = rng.choice(
        ("section-field", "section-field", "header-field", "flip", "truncate", "table-bytes")
    )
    if how == "section-field" and shnum and shoff + 64 * shnum <= len(data):
        i = rng.randrange(shnum)
        field, fmt = rng.choice(
            (
                (0, "<I"),
                (4, "<I"),
                (8, "<Q"),
                (16, "<Q"),
                (24, "<Q"),
                (32, "<Q"),
                (40, "<I"),
                (44, "<I"),
                (56, "<Q"),
            )
        )
        limit = (1 << (8 * struct.calcsize(fmt))) - 1
        value = rng.choice(EXTREMES + (len(data), len(data) - 1, rng.getrandbits(32)))
        struct.pack_into(fmt, out, shoff + 64 * i + field, min(value, limit))
        return bytes(out), f"section {i} field +{field} = {min(value, limit)}"
    if how == "header-field":
        field, fmt = rng.choice(
            (
                (0x18, "<Q"),
                (0x20, "<Q"),
                (0x28, "<Q"),
                (0x36, "<H"),
                (0x38, "<H"),
                (0x3A, "<H"),
                (0x3C, "<H"),
                (0x3E, "<H"),
            )
        )
        limit = (1 << (8 * struct.calcsize(fmt))) - 1
        value = min(rng.choice(EXTREMES + (rng.getrandbits(16),)), limit)
        struct.pack_into(fmt, out, field, value)
        return bytes(out), f"header +{field:#x} = {value}"
    if how == "truncate":
        n = rng.randrange(len(data))
        return bytes(out[:n]), f"truncated to {n}"
    if how == "table-bytes" and shnum and shoff + 64 * shnum <= len(data):
        # overwrite bytes inside one section's data (symbols, .eh_frame_hdr, relocations)
        i = rng.randrange(shnum)
        off, size = _u(data, "<Q", shoff + 64 * i + 24), _u(data, "<Q", shoff + 64 * i + 32)
        if size and off + size <= len(data):
            for _ in range(rng.randint(1, 32)):
                at = off + rng.randrange(size)
                out[at] = rng.randrange(256)
            return bytes(out), f"bytes in section {i}"
    for _ in range(rng.randint(1, 64)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out), "random bytes"


def check_elf(path: Path) -> None:
    from tfforge.elfscan import scan
    from tfforge.elfscan.decode import split_points

    split_points(path, 2, min_bytes=0)
    scan.scan_library(path)


# ---- snapshot / cpuinfo mutations ----------------------------------------------------------
def _json_mutation(doc, rng: random.Random):
    values = (
        [],
        {},
        None,
        True,
        -1,
        1e308,
        "x" * 1000,
        "\x1b[2J[/]",
        ["x"],
        [[["avx"]]],
        {"a": [1]},
        "avx512f",
        2**70,
    )
    if isinstance(doc, dict) and doc and rng.random() < 0.8:
        key = rng.choice(list(doc))
        if rng.random() < 0.5:
            doc[key] = _json_mutation(doc[key], rng)
        else:
            doc[key] = rng.choice(values)
        return doc
    if isinstance(doc, list) and doc and rng.random() < 0.7:
        doc[rng.randrange(len(doc))] = rng.choice(values)
        return doc
    return rng.choice(values)


def mutate_text(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    text = data.decode()
    if text.lstrip().startswith("{") and rng.random() < 0.7:
        doc = json.loads(text)
        for _ in range(rng.randint(1, 3)):
            doc = _json_mutation(doc, rng)
        return json.dumps(doc).encode(), "json value"
    lines = text.splitlines()
    how = rng.choice(("line", "line", "flip", "drop", "nest"))
    if how == "line" and lines:
        i = rng.randrange(len(lines))
        key = lines[i].partition(":")[0]
        lines[i] = f"{key}: " + rng.choice(
            ("", "x" * 10000, "\x1b]0;t\x07[bold]", "avx2 " * 500, "\xff\ufeff", ": : :")
        )
        return "\n".join(lines).encode("utf-8", "surrogateescape"), f"line {i}"
    if how == "drop" and lines:
        i = rng.randrange(len(lines))
        return "\n".join(lines[:i] + lines[i + 1 :]).encode(), f"drop line {i}"
    if how == "nest":
        return ("{" + '"a":' * 0 + "[" * rng.randint(1, 100000)).encode(), "nesting"
    out = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out), "random bytes"


def check_text(path: Path) -> None:
    from tfforge.commands import detect, match
    from tfforge.host import cpu

    host = cpu.load_host(path)
    detect.host_report(host, "12.2.0")
    match.match_report([host], "12.2.0")


# ---- the loop ------------------------------------------------------------------------------
def main(kind: str, seed: int, seconds: float, samples: list[str]) -> dict:
    from tfforge.errors import TfforgeError

    mutate, check = (mutate_elf, check_elf) if kind == "elf" else (mutate_text, check_text)
    originals = [Path(s).read_bytes() for s in samples]
    rng = random.Random(seed)
    signal.signal(signal.SIGALRM, _alarm)
    failures, cases, parsed, deadline = [], 0, 0, time.monotonic() + seconds
    with tempfile.TemporaryDirectory(prefix="tfforge-fuzz-") as tmp:
        while time.monotonic() < deadline:
            base = rng.randrange(len(originals))
            data, how = mutate(originals[base], rng)
            path = Path(tmp, f"case{cases}{Path(samples[base]).suffix}")
            path.write_bytes(data)
            signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
            try:
                check(path)
                parsed += 1
            except TfforgeError:
                pass
            except Hang:
                failures.append({"case": cases, "how": how, "error": "hang"})
            except BaseException as exc:  # every other ending is the finding
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures.append(
                    {
                        "case": cases,
                        "how": how,
                        "sample": samples[base],
                        "error": f"{type(exc).__name__}: {exc}"[:300],
                        "where": traceback.format_exc().splitlines()[-3][:200],
                    }
                )
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            path.unlink(missing_ok=True)
            cases += 1
    return {"kind": kind, "seed": seed, "cases": cases, "parsed": parsed, "failures": failures}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:])))
