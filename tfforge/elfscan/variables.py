"""CPU-feature variables: where a library keeps what it learnt from cpuid, so code reading them
is CPU-check code (rule R2). Found by name (verify.toml [cpu_checks] variables, matched inside
longer names: a Rust crate's versioned prefix, a mangled Rust/C++ path), by what the code does
(what cpuid-executing functions store to or hand out the address of in writable data: how
stripped libraries keep their flags), and through pointers: GOT slots and pointer variables
that hold such a variable's address, in this library or (imported) from another.
"""

from __future__ import annotations

import iced_x86
import numpy as np

from tfforge.elfscan import arrays
from tfforge.elfscan.arrays import Ints
from tfforge.elfscan.library import Library

_VARIABLE_BYTES = 16  # a stored-to address stands for this many bytes (e.g. __cpu_model)


def variable_ranges(
    lib: Library, cpuid_fns: Ints, calls: Ints | None = None
) -> list[tuple[int, int]]:
    """Address ranges of CPU-feature variables: named ones, imported ones' GOT slots, what the
    cpuid-executing functions (`cpuid_fns`, from the decode) store to or take the address of
    in writable data, what their direct callers store right after calling them (`calls`:
    caller * n + callee edges), and the slots that point to any of these."""
    found = lib.special["variables"]
    named = {
        (int(v), int(v) + min(max(int(sz), 1), 1 << 16))
        for v, sz in zip(found["value"], found["size"], strict=True)
    }
    fns = arrays.unique(cpuid_fns)
    callers = np.zeros(0, np.int64)
    if calls is not None and len(fns) and len(calls):
        n = len(lib)
        callers = arrays.unique(calls[np.isin(calls % n, fns)] // n)
        callers = callers[~np.isin(callers, fns)]
    ranges = named | set(cpuid_variables(lib, fns, callers)) | set(lib.imported_variable_slots())
    return sorted(ranges | set(lib.pointer_slots(sorted(ranges))))


def cpuid_variables(lib: Library, fns: Ints, callers: Ints | None = None) -> list[tuple[int, int]]:
    """Writable data that functions executing cpuid store to or take the address of, and
    that their callers store to right after calling one of them (before any other call or a
    return): how a library keeps the result (ring's Rust static beside OpenSSL's word, a
    SIMD level)."""
    writable = [
        (s.addr, s.addr + s.size) for s in lib.sections if s.flags & 0x3 == 0x3 and s.addr
    ]  # SHF_WRITE | SHF_ALLOC
    if not len(fns) or not writable:
        return []
    out: set[tuple[int, int]] = set()

    def keep(ins: iced_x86.Instruction) -> None:
        if ins.is_ip_rel_memory_operand and (ins.code == lea or ins.op0_kind == memory):
            a = ins.ip_rel_memory_address
            if any(lo <= a < hi for lo, hi in writable):
                out.add((a, a + _VARIABLE_BYTES))

    lea = iced_x86.Code.LEA_R64_M
    memory = iced_x86.OpKind.MEMORY
    for fn in arrays.unique(fns).tolist():
        start, data = lib.code_bytes(fn)
        for ins in iced_x86.Decoder(64, data, ip=start):
            keep(ins)
    if callers is not None and len(callers):
        targets = {int(a) for a in lib.starts[fns]}
        entries, reach = lib.plt  # calls through this library's PLT
        reached = np.isin(reach, np.fromiter(targets, np.uint64, len(targets)))
        targets |= set(entries[reached].tolist())
        call_kind, ret_kind = iced_x86.FlowControl.CALL, iced_x86.FlowControl.RETURN
        for fn in callers.tolist():
            start, data = lib.code_bytes(fn)
            after = False
            for ins in iced_x86.Decoder(64, data, ip=start):
                flow = ins.flow_control
                if flow == call_kind:
                    after = ins.near_branch64 in targets
                elif flow == ret_kind:
                    after = False
                elif after:
                    keep(ins)
    return sorted(out)
