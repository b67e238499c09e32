"""Streamed iced-x86 decoding of a library's executable sections.

iced-x86 decodes only SHF_EXECINSTR sections, read with pread in bounded chunks. The decode
loop looks each instruction's iced Code up in one flat table and keeps only the few it needs
later (extension instructions, direct calls and jumps, RIP-relative LEAs) as packed integers;
after each chunk numpy attributes those to functions and the chunk is dropped. No list of
decoded instructions ever exists.
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
from tfforge.elfscan.rules import CALL, FEATURE, JMP, code_table
from tfforge.elfscan.tables import CHUNK, Library, eh_frame_hdr_starts, exec_sections, open_elf

TABLE_BYTES = 1024  # a table slot belongs to a data object starting this near below
_SHIFT = 13  # a kept instruction is packed as address << 13 | iced Code (< 8192)


def variable_ranges(lib: Library) -> list[tuple[int, int]]:
    """Address ranges of CPU-feature variables: the named ones (verify.toml) found in the
    symbol tables, the GOT slots of such variables imported from another library, and what
    cpuid-executing code stores to or takes the address of in writable data (how stripped
    libraries keep their feature flags)."""
    found = lib.special["variables"]
    named = {(int(v), int(v) + max(int(sz), 1)) for v, sz in zip(found["value"], found["size"])}
    return sorted(named | set(cpuid_variables(lib)) | set(lib.imported_variable_slots()))


_CPUID = b"\x0f\xa2"
_VARIABLE_BYTES = 16  # a stored-to address stands for this many bytes (e.g. __cpu_model)


def cpuid_variables(lib: Library) -> list[tuple[int, int]]:
    """Writable data that functions executing cpuid store to or take the address of."""
    writable = [
        (s.addr, s.addr + s.size) for s in lib.sections if s.flags & 0x3 == 0x3 and s.addr
    ]  # SHF_WRITE | SHF_ALLOC
    hits = []
    for sec in lib.exec_secs:
        pos = 0
        while pos < sec.size:
            want = min(CHUNK, sec.size - pos)
            data = os.pread(lib.fd, min(want + 1, sec.size - pos), sec.offset + pos)
            at = data.find(_CPUID)
            while 0 <= at < want:
                hits.append(sec.addr + pos + at)
                at = data.find(_CPUID, at + 1)
            pos += want
    if not hits or not writable:
        return []
    fns = arrays.unique(lib.of(np.array(hits, np.uint64)))
    out = set()
    cpuid = iced_x86.Code.CPUID
    for fn in fns[fns >= 0].tolist():
        start, data = lib.code_bytes(fn)
        targets, seen_cpuid = [], False
        for ins in iced_x86.Decoder(64, data, ip=start):
            seen_cpuid |= ins.code == cpuid
            if ins.is_ip_rel_memory_operand and (
                ins.code == iced_x86.Code.LEA_R64_M or ins.op0_kind == iced_x86.OpKind.MEMORY
            ):
                targets.append(ins.ip_rel_memory_address)
        if seen_cpuid:
            out.update(
                (a, a + _VARIABLE_BYTES)
                for a in targets
                if any(lo <= a < hi for lo, hi in writable)
            )
    return sorted(out)


def merge(parts: list[Streamed]) -> Streamed:
    if len(parts) == 1:
        return parts[0]
    keys, inv = np.unique(
        np.concatenate([p.pair_fn * 8192 + p.pair_code for p in parts]), return_inverse=True
    )
    counts = np.bincount(
        inv, weights=np.concatenate([p.pair_count for p in parts]), minlength=len(keys)
    ).astype(np.int64)
    return Streamed(
        sum(p.instructions for p in parts),
        keys // 8192,
        keys % 8192,
        counts,
        arrays.unique(np.concatenate([p.calls for p in parts])),
        arrays.unique(np.concatenate([p.leas for p in parts])),
        np.concatenate([p.variable_reads for p in parts]),
        arrays.unique(np.concatenate([p.data_refs for p in parts])),
        max(p.seconds for p in parts),
    )


def split_points(path: Path | str, parts: int, *, min_bytes: int = 0) -> list[tuple[int, int]]:
    """Address ranges that split a library's code into `parts` pieces of similar size, cut
    at function starts (from .eh_frame_hdr), so each piece decodes from an instruction
    boundary. One range covering everything when the library cannot be split, or has no
    more than `min_bytes` of code (code_bytes)."""
    path = Path(path)
    with open(path, "rb") as f:
        sections = open_elf(path, f)[1]
        execs = exec_sections(sections)
        total = sum(s.size for s in execs)
        if parts < 2 or not execs or total <= min_bytes:
            return [(0, 1 << 64)]
        starts = np.sort(eh_frame_hdr_starts(f.fileno(), sections))
    # Cumulative code bytes at each address, over the executable sections in address order.
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
    return list(zip(bounds[:-1], bounds[1:]))


@dataclass
class Streamed:
    instructions: int
    pair_fn: np.ndarray  # per (function, code) with kept instructions:
    pair_code: np.ndarray  #   the function, the iced Code
    pair_count: np.ndarray  #   and how many
    calls: np.ndarray  # (caller, callee) edges, direct calls and tail jumps
    leas: np.ndarray  # (referrer, function) edges from RIP-relative LEAs
    variable_reads: np.ndarray  # addresses that may read a CPU-feature variable
    data_refs: np.ndarray  # referrer << 40 | address: references near table slots
    seconds: float = 0.0

    def save(self, path: Path) -> Path:
        """Write to an .npz file: parts travel between processes as files, not pickles
        held by the coordinating process."""
        np.savez(
            path,
            instructions=self.instructions,
            pair_fn=self.pair_fn,
            pair_code=self.pair_code,
            pair_count=self.pair_count,
            calls=self.calls,
            leas=self.leas,
            variable_reads=self.variable_reads,
            data_refs=self.data_refs,
            seconds=self.seconds,
        )
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> Streamed:
        with np.load(path) as z:
            return cls(
                int(z["instructions"]),
                z["pair_fn"],
                z["pair_code"],
                z["pair_count"],
                z["calls"],
                z["leas"],
                z["variable_reads"],
                z["data_refs"],
                float(z["seconds"]),
            )


class Collector:
    """Per-chunk records -> per-(function, code) counts and reference edges, chunk by chunk."""

    def __init__(self, lib: Library, ranges: list[tuple[int, int]]):
        self.lib = lib
        self.ranges = ranges
        self.keys: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.calls: list[np.ndarray] = []
        self.leas: list[np.ndarray] = []
        self.reads: list[np.ndarray] = []
        self.data_refs: list[np.ndarray] = []

    def _edges(self, ips: array, targets: array, exact: bool) -> np.ndarray:
        ip = np.frombuffer(ips, np.uint64)
        tgt = self.lib.through_plt(np.frombuffer(targets, np.uint64))
        keep = self.lib.in_code(tgt)
        src = self.lib.of(ip[keep])
        dst = self.lib.exact(tgt[keep]) if exact else self.lib.of(tgt[keep])
        ok = (src >= 0) & (dst >= 0) & (src != dst)
        return arrays.unique(src[ok] * len(self.lib) + dst[ok])

    def _table_refs(self, at: np.ndarray, target: np.ndarray, base: int) -> None:
        """Which function refers (any RIP-relative operand: LEA, MOV, CMP ...) to data at or
        below a table slot (within TABLE_BYTES): who may read or hand out a table of
        function pointers. From the ModRM byte pattern, like _variable_reads; a stray match
        only adds a reader, which keeps the table's pointers ordinary."""
        slots = self.lib.table_slots
        if not len(slots) or not len(at):
            return
        i = np.searchsorted(slots, target.astype(np.uint64))
        near = i < len(slots)
        near[near] = (slots[i[near]].astype(np.int64) - target[near]) < TABLE_BYTES
        near &= target >= 0
        src = self.lib.of((at[near] + base).astype(np.uint64))
        ok = src >= 0
        self.data_refs.append(arrays.unique(src[ok] << 40 | target[near][ok]))

    def chunk(
        self,
        data: bytes,
        base: int,
        kept: array,
        call_ip: array,
        call_to: array,
        jump_ip: array,
        jump_to: array,
        lea_ip: array,
        lea_to: array,
    ) -> None:
        if len(kept):
            packed = np.frombuffer(kept, np.int64)
            fn = self.lib.of((packed >> _SHIFT).astype(np.uint64))
            ok = fn >= 0
            key, cnt = np.unique(fn[ok] * 8192 + (packed[ok] & 8191), return_counts=True)
            self.keys.append(key)
            self.counts.append(cnt)
        self.calls.append(self._edges(call_ip, call_to, exact=False))
        self.calls.append(self._edges(jump_ip, jump_to, exact=True))
        self.leas.append(self._edges(lea_ip, lea_to, exact=True))
        self._rip_relative(data, base)

    def _rip_relative(self, data: bytes, base: int) -> None:
        """Possible RIP-relative operands in the chunk, for the CPU-feature variables and
        the dispatch tables.

        Their users are ordinary mov/test/cmp/lea instructions, far too common to inspect in
        the decode loop. Instead numpy looks at every ModRM-shaped byte (mod=00, rm=101: the
        RIP-relative form) and the 4-byte displacement after it (target = displacement end +
        disp, up to 4 immediate bytes later).
        """
        b = np.frombuffer(data, np.uint8)
        if len(b) < 6:
            return
        at = np.flatnonzero((b[:-4] & 0xC7) == 0x05) + 1
        disp = (
            b[at].astype(np.int64)
            | b[at + 1].astype(np.int64) << 8
            | b[at + 2].astype(np.int64) << 16
            | b[at + 3].astype(np.int64) << 24
        )
        target = (disp ^ 0x80000000) - 0x80000000 + at + (base + 4)
        self._variable_reads(at, target, base)
        self._table_refs(at, target, base)

    def _variable_reads(self, at: np.ndarray, target: np.ndarray, base: int) -> None:
        """Addresses that may read a CPU-feature variable; the few candidates are confirmed
        by decoding their function afterwards."""
        for lo, hi in self.ranges:
            hit = at[(target >= lo - 4) & (target < hi)]
            if len(hit):
                self.reads.append((hit + base).astype(np.uint64))

    def result(self, instructions: int) -> Streamed:
        def cat(parts: list[np.ndarray], dtype) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype)

        keys = cat(self.keys, np.int64)
        ukeys, inv = np.unique(keys, return_inverse=True)
        counts = np.bincount(inv, weights=cat(self.counts, np.int64), minlength=len(ukeys)).astype(
            np.int64
        )
        return Streamed(
            instructions,
            ukeys // 8192,
            ukeys % 8192,
            counts,
            arrays.unique(cat(self.calls, np.int64)),
            arrays.unique(cat(self.leas, np.int64)),
            cat(self.reads, np.uint64),
            arrays.unique(cat(self.data_refs, np.int64)),
        )


def stream(
    lib: Library,
    ranges: list[tuple[int, int]],
    progress: Callable[[int], None] | None,
    lo: int = 0,
    hi: int = 1 << 64,
) -> Streamed:
    """Decode the executable sections (the part in [lo, hi)) in bounded chunks; redo
    instructions cut at chunk edges."""
    hot = code_table().hot
    no_more = iced_x86.DecoderError.NO_MORE_BYTES
    feature, call, jump, shift = FEATURE, CALL, JMP, _SHIFT  # locals: faster in the loop
    col = Collector(lib, ranges)
    total = 0
    for sec in lib.exec_secs:
        pos = max(lo - sec.addr, 0)
        end = min(hi - sec.addr, sec.size)
        while pos < end:
            want = min(CHUNK, end - pos)
            data = os.pread(lib.fd, want, sec.offset + pos)
            base = sec.addr + pos
            kept = array("q")
            call_ip, call_to, jump_ip, jump_to, lea_ip, lea_to = (array("Q") for _ in range(6))
            keep, c_ip, c_to, j_ip, j_to, l_ip, l_to = (
                kept.append,
                call_ip.append,
                call_to.append,
                jump_ip.append,
                jump_to.append,
                lea_ip.append,
                lea_to.append,
            )
            decoder = iced_x86.Decoder(64, data, ip=base)
            n, ins = -1, None
            # The hot loop: one table lookup per instruction; only the rare kept ones do more.
            for n, ins in enumerate(decoder):
                code = ins.code
                kind = hot[code]
                if kind:
                    if kind == feature:
                        keep(ins.ip << shift | code)
                    elif kind == call:
                        c_ip(ins.ip)
                        c_to(ins.near_branch64)
                    elif kind == jump:
                        j_ip(ins.ip)
                        j_to(ins.near_branch64)
                    elif ins.is_ip_rel_memory_operand:
                        l_ip(ins.ip)
                        l_to(ins.ip_rel_memory_address)
            consumed = want
            if ins is not None and decoder.last_error == no_more and pos + want < end:
                n -= 1  # cut by the chunk edge: decode it again next time
                consumed = ins.ip - base  # (it was not kept: an invalid Code is never hot)
            total += n + 1
            col.chunk(
                data[:consumed], base, kept, call_ip, call_to, jump_ip, jump_to, lea_ip, lea_to
            )
            pos += consumed
            if progress is not None:
                progress(consumed)
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
