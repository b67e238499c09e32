"""Streamed iced-x86 decoding of a library's functions.

Each function body (tables.Library: symbols, unwind entries, unlabelled blocks) is decoded on
its own from a bounded pread chunk, so every kept fact is already attributed to its function:
the loop looks each instruction's iced Code up in one flat table and keeps only the Codes of
extension instructions (no getter at all), the targets of direct calls and of the jumps
(unconditional and long conditional) that leave their function, and per function how many of
each it kept. After each chunk numpy turns those into per-(function, code) counts and
reference edges, finds RIP-relative operands (LEAs ...) in the chunk's bytes, and the chunk is
dropped: no list of decoded instructions ever exists. Bytes outside every function (alignment
padding) are not decoded.
"""

from __future__ import annotations

import os
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import iced_x86
import numpy as np

from tfforge.elfscan import arrays
from tfforge.elfscan.arrays import Ints, UInts
from tfforge.elfscan.library import Library
from tfforge.elfscan.rules import CALL, FEATURE, code_table
from tfforge.elfscan.tables import (
    ADDRESS_LIMIT,
    CHUNK,
    eh_frame_hdr_starts,
    exec_sections,
    open_elf,
)

TABLE_BYTES = 1024  # a table slot belongs to a data object starting this near below
_SHIFT = 13  # a kept instruction is packed as function << 13 | iced Code (< 8192)
# Code bytes per decoded chunk: the per-chunk numpy work stays in the CPU's caches.
DECODE_CHUNK = 2 << 20
_JUMP_BIT = 1 << 62  # a kept reference's kind, in a bit an address (< 2**47) never uses
_TARGET = (1 << 62) - 1


@dataclass
class Streamed:
    decoded_bytes: int  # function bodies decoded
    pair_fn: Ints  # per (function, code) with kept instructions:
    pair_code: Ints  #   the function, the iced Code
    pair_count: Ints  #   and how many
    calls: Ints  # caller * n + callee: direct calls
    jumps: Ints  # from * n + to: jumps into another function (tail calls, asm dispatch)
    leas: Ints  # referrer * n + function: RIP-relative LEAs of a function's start (bytes)
    wref_at: UInts  # possible RIP-relative operands (their displacement's address) ...
    wref_to: UInts  # ... that reach writable data, and the address they reach
    data_refs: Ints  # referrer << 40 | address: references near table slots
    seconds: float = 0.0

    def reads(self, ranges: list[tuple[int, int]]) -> UInts:
        """Addresses that may read a CPU-feature variable (one of the ranges); the few
        candidates are confirmed by decoding their function."""
        hit = np.zeros(len(self.wref_to), bool)
        for lo, hi in ranges:
            hit |= (self.wref_to >= np.uint64(max(lo - 4, 0))) & (self.wref_to < np.uint64(hi))
        return self.wref_at[hit]

    def save(self, path: Path) -> Path:
        """Write to an .npz file: parts travel between processes as files, not pickles."""
        np.savez(
            path,
            decoded_bytes=self.decoded_bytes,
            pair_fn=self.pair_fn,
            pair_code=self.pair_code,
            pair_count=self.pair_count,
            calls=self.calls,
            jumps=self.jumps,
            leas=self.leas,
            wref_at=self.wref_at,
            wref_to=self.wref_to,
            data_refs=self.data_refs,
            seconds=self.seconds,
        )
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> Streamed:
        with np.load(path) as z:
            return cls(
                int(z["decoded_bytes"]),
                z["pair_fn"],
                z["pair_code"],
                z["pair_count"],
                z["calls"],
                z["jumps"],
                z["leas"],
                z["wref_at"],
                z["wref_to"],
                z["data_refs"],
                float(z["seconds"]),
            )


def merge(parts: list[Streamed]) -> Streamed:
    if len(parts) == 1:
        return parts[0]
    keys, counts = arrays.unique_sums(
        np.concatenate([p.pair_fn * 8192 + p.pair_code for p in parts]),
        np.concatenate([p.pair_count for p in parts]),
    )
    return Streamed(
        sum(p.decoded_bytes for p in parts),
        keys // 8192,
        keys % 8192,
        counts,
        arrays.unique(np.concatenate([p.calls for p in parts])),
        arrays.unique(np.concatenate([p.jumps for p in parts])),
        arrays.unique(np.concatenate([p.leas for p in parts])),
        np.concatenate([p.wref_at for p in parts]),
        np.concatenate([p.wref_to for p in parts]),
        arrays.unique(np.concatenate([p.data_refs for p in parts])),
        max(p.seconds for p in parts),
    )


def split_points(path: Path | str, parts: int, *, min_bytes: int = 0) -> list[tuple[int, int]]:
    """Address ranges that split a library's code into `parts` pieces of similar size, cut
    at function starts (from .eh_frame_hdr). One range covering everything when the library
    cannot be split, or has no more than `min_bytes` of code (code_bytes)."""
    path = Path(path)
    with open(path, "rb") as f:
        sections = open_elf(path, f)[1]
        execs = exec_sections(sections)
        total = sum(s.size for s in execs)
        if parts < 2 or not execs or total <= min_bytes:
            return [(0, 1 << 64)]
        starts = np.sort(eh_frame_hdr_starts(f.fileno(), sections))
    execs.sort(key=lambda s: s.addr)
    cuts = []
    for i in range(1, parts):
        goal, acc = total * i // parts, 0
        for sec in execs:
            if acc + sec.size > goal:
                addr = sec.addr + goal - acc
                j = np.searchsorted(starts, addr)
                if j < len(starts) and starts[j] < sec.addr + sec.size:
                    cuts.append(int(starts[j]))
                break
            acc += sec.size
    bounds = [0, *sorted(set(cuts)), 1 << 64]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


class Collector:
    """Per-chunk records -> per-(function, code) counts and reference edges, chunk by chunk."""

    def __init__(self, lib: Library):
        self.lib = lib
        self.n = len(lib)
        self.keys: list[Ints] = []
        self.counts: list[Ints] = []
        self.calls: list[Ints] = []
        self.jumps: list[Ints] = []
        self.leas: list[Ints] = []
        self.wref_at: list[UInts] = []
        self.wref_to: list[UInts] = []
        self.data_refs: list[Ints] = []
        writable = sorted(
            (s.addr, s.addr + s.size) for s in lib.sections if s.flags & 0x3 == 0x3 and s.addr
        )  # SHF_WRITE | SHF_ALLOC, .bss too: where CPU-feature flags can live
        self.w_lo = np.array([w[0] for w in writable], np.int64)
        self.w_hi = np.array([w[1] for w in writable], np.int64)

    def chunk(self, data: bytes, base: int, kept: Ints, refs: array[int], src: Ints) -> None:
        """One chunk's records: kept (function << 13 | code), refs (jump bit | target) and
        the function each ref came from."""
        lib = self.lib
        if len(kept):
            key, cnt = arrays.unique_counts(kept)
            self.keys.append(key)
            self.counts.append(cnt)
        if len(refs):
            raw = np.frombuffer(refs, np.uint64)
            target = raw & np.uint64(_TARGET)
            # Jumps inside their function are dropped in the loop; calls to the function
            # itself (recursion) here, with the rest that stay inside it.
            out = (target < lib.starts[src]) | (target >= lib.ends[src])
            out &= (target >= lib.code_lo) & (target < lib.code_hi)
            raw, target, src = raw[out], lib.through_plt(target[out]), src[out]
            dst = lib.of(target)  # calls and jumps reach the function holding the target
            ok = lib.in_code(target) & (dst >= 0) & (dst != src)
            jump = (raw & np.uint64(_JUMP_BIT)) != 0
            edge = src * self.n + dst
            self.calls.append(arrays.unique(edge[ok & ~jump]))
            self.jumps.append(arrays.unique(edge[ok & jump]))
        self._rip_relative(data, base)

    def _rip_relative(self, data: bytes, base: int) -> None:
        """RIP-relative operands in the chunk: LEAs of a function's address, references to
        writable data (where CPU-feature variables are, known after the decode) and to
        tables of function pointers.

        Their instructions are ordinary mov/test/cmp/lea, far too common to inspect in the
        decode loop. Instead numpy looks at every ModRM-shaped byte (mod=00, rm=101: the
        RIP-relative form) and the 4-byte displacement after it (target = displacement end +
        disp, up to 4 immediate bytes later). A LEA is REX.W 8D before it; one found in the
        middle of another instruction would also have to reach exactly a function start to
        count, which a random displacement does about once in ten thousand tries.
        """
        if len(data) < 8:
            return
        b = np.frombuffer(data, np.uint8)
        words = np.ndarray((len(data) - 3,), "<i4", data, 0, (1,))  # every 4-byte word
        at = np.flatnonzero((b[2:-4] & 0xC7) == 0x05) + 3  # displacement offsets
        target = words[at].astype(np.int64) + at + (base + 4)
        lea = (b[at - 2] == 0x8D) & ((b[at - 3] & 0xFB) == 0x48)
        if lea.any():
            la, lt = at[lea], target[lea].astype(np.uint64)
            src = self.lib.of((la + base).astype(np.uint64))
            dst = self.lib.exact(lt)
            ok = (src >= 0) & (dst >= 0) & (src != dst)
            self.leas.append(arrays.unique(src[ok] * self.n + dst[ok]))
        if len(self.w_lo):
            i = np.searchsorted(self.w_lo, target, side="right") - 1
            w = (i >= 0) & (target < self.w_hi[np.clip(i, 0, None)])
            self.wref_at.append((at[w] + base).astype(np.uint64))
            self.wref_to.append(target[w].astype(np.uint64))
        self._table_refs(at, target, base)

    def _table_refs(self, at: Ints, target: Ints, base: int) -> None:
        """Which function refers (any RIP-relative operand: LEA, MOV, CMP ...) to data at or
        below a table slot (within TABLE_BYTES): who may read or hand out a table of
        function pointers. A stray match only adds a reader, which keeps the table's
        pointers ordinary."""
        slots = self.lib.table_slots
        if not len(slots) or not len(at):
            return
        near = (target >= 0) & (target <= int(slots[-1]))
        near &= target > int(slots[0]) - TABLE_BYTES
        at, target = at[near], target[near]
        i = np.searchsorted(slots, target.astype(np.uint64))
        near = i < len(slots)
        near[near] = (slots[i[near]].astype(np.int64) - target[near]) < TABLE_BYTES
        near &= target >= 0
        src = self.lib.of((at[near] + base).astype(np.uint64))
        ok = src >= 0
        self.data_refs.append(arrays.unique(src[ok] << 40 | target[near][ok]))

    def result(self, decoded_bytes: int) -> Streamed:
        def cat(parts: list[Ints]) -> Ints:
            return np.concatenate(parts) if parts else np.zeros(0, np.int64)

        def ucat(parts: list[UInts]) -> UInts:
            return np.concatenate(parts) if parts else np.zeros(0, np.uint64)

        ukeys, counts = arrays.unique_sums(cat(self.keys), cat(self.counts))
        return Streamed(
            decoded_bytes,
            ukeys // 8192,
            ukeys % 8192,
            counts,
            arrays.unique(cat(self.calls)),
            arrays.unique(cat(self.jumps)),
            arrays.unique(cat(self.leas)),
            ucat(self.wref_at),
            ucat(self.wref_to),
            arrays.unique(cat(self.data_refs)),
        )


def _chunks(lib: Library, lo: int, hi: int) -> list[tuple[int, int, int, int]]:
    """(first function, last + 1, read from, read to) per chunk: consecutive functions of one
    executable section starting in [lo, hi), about CHUNK bytes, never a function cut in two."""
    out = []
    starts = lib.starts
    first = int(np.searchsorted(starts, np.uint64(min(lo, ADDRESS_LIMIT))))
    last = int(np.searchsorted(starts, np.uint64(min(hi, ADDRESS_LIMIT))))
    sec_hi = lib.hi  # exec sections in address order, not overlapping; starts lie inside
    i = first
    while i < last:
        start = int(starts[i])
        end_sec = int(sec_hi[int(np.searchsorted(sec_hi, np.uint64(start), side="right"))])
        j = int(np.searchsorted(starts, np.uint64(min(start + DECODE_CHUNK, end_sec))))
        j = min(max(j, i + 1), last)
        read_to = max(min(int(lib.ends[j - 1]), end_sec), start)
        out.append((i, j, start, read_to))
        i = j
    return out


def stream(
    lib: Library,
    progress: Callable[[int], None] | None = None,
    lo: int = 0,
    hi: int = 1 << 64,
) -> Streamed:
    """Decode every function starting in [lo, hi), chunk by chunk."""
    hot = code_table().hot
    feature, call = FEATURE, CALL  # locals: faster in the loop
    jump_bit = _JUMP_BIT
    decoder, options = iced_x86.Decoder, iced_x86.DecoderOptions.NONE
    col = Collector(lib)
    total = 0
    starts = lib.starts
    ends = lib.ends
    secs = sorted(lib.exec_secs, key=lambda x: x.addr)
    sec_lo = np.array([x.addr for x in secs], np.uint64)
    for first, last, read_lo, read_hi in _chunks(lib, lo, hi):
        sec = secs[int(np.searchsorted(sec_lo, np.uint64(read_lo), "right")) - 1]
        data = os.pread(lib.fd, read_hi - read_lo, sec.offset + read_lo - sec.addr)
        kept: array[int] = array("q")  # iced Codes
        refs: array[int] = array("Q")
        marks: array[int] = array("q")  # per function: how many refs, kept so far
        keep, ref, mark = kept.append, refs.append, marks.append
        fn_starts = starts[first:last].tolist()
        fn_ends = np.minimum(ends[first:last], np.uint64(read_hi)).tolist()
        for s, e in zip(fn_starts, fn_ends, strict=True):
            # The hot loop: one table lookup per instruction; only the rare kept ones do more.
            # (Decoder's options and ip are passed by position: keywords cost 0.2 us a call.)
            for ins in decoder(64, data[s - read_lo : e - read_lo], options, s):
                code = ins.code
                kind = hot[code]
                if kind:
                    if kind == feature:
                        keep(code)
                    elif kind == call:
                        ref(ins.near_branch64)
                    else:  # a jump: kept only when it leaves the function (1 in 40 do)
                        to = ins.near_branch64
                        if to < s or to >= e:
                            ref(to | jump_bit)
            mark(len(refs))
            mark(len(kept))
        total += sum(fn_ends) - sum(fn_starts)
        ends_at: Ints = np.frombuffer(marks, np.int64).reshape(-1, 2)
        fns = np.arange(first, last, dtype=np.int64)
        src = np.repeat(fns, np.diff(ends_at[:, 0], prepend=0))
        owner = np.repeat(fns, np.diff(ends_at[:, 1], prepend=0))
        col.chunk(data, read_lo, owner << _SHIFT | np.frombuffer(kept, np.int64), refs, src)
        if progress is not None:
            progress(read_hi - read_lo)
    return col.result(total)


def plain_decode_count(path: Path | str) -> tuple[int, float]:
    """(instructions, seconds) of a bare decode-and-count pass over the same bytes: the
    benchmark's yardstick (the loop tfforge would run if it only counted)."""
    t0 = time.perf_counter()
    path = Path(path)
    counts = [0] * len(code_table().hot)
    no_more = iced_x86.DecoderError.NO_MORE_BYTES
    with open(path, "rb") as f:
        for sec in exec_sections(open_elf(path, f)[1]):
            pos = 0
            while pos < sec.size:
                want = min(CHUNK, sec.size - pos)
                decoder = iced_x86.Decoder(
                    64, os.pread(f.fileno(), want, sec.offset + pos), ip=sec.addr + pos
                )
                ins = None
                for ins in decoder:
                    counts[ins.code] += 1
                if ins is not None and decoder.last_error == no_more and pos + want < sec.size:
                    counts[ins.code] -= 1
                    pos = ins.ip - sec.addr
                else:
                    pos += want
    return sum(counts), time.perf_counter() - t0
