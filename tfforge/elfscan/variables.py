"""CPU-feature variables: where a library keeps what it learnt from cpuid, so code reading them
is CPU-check code (rule R2). Found by name (verify.toml [cpu_checks] variables, matched inside
longer names: a Rust crate's versioned prefix, a mangled Rust/C++ path), by what the code does
(what cpuid-executing functions store to or hand out the address of in writable data: how
stripped libraries keep their flags), and through pointers: GOT slots and pointer variables
that hold such a variable's address, in this library or (imported) from another.
"""

from __future__ import annotations

import iced_x86

from tfforge.elfscan import arrays
from tfforge.elfscan.arrays import Ints
from tfforge.elfscan.tables import Library

_VARIABLE_BYTES = 16  # a stored-to address stands for this many bytes (e.g. __cpu_model)


def variable_ranges(lib: Library, cpuid_fns: Ints) -> list[tuple[int, int]]:
    """Address ranges of CPU-feature variables: named ones, imported ones' GOT slots, and
    what the cpuid-executing functions (`cpuid_fns`, from the decode) store to or take the
    address of in writable data."""
    found = lib.special["variables"]
    named = {
        (int(v), int(v) + min(max(int(sz), 1), 1 << 16))
        for v, sz in zip(found["value"], found["size"], strict=True)
    }
    ranges = named | set(cpuid_variables(lib, cpuid_fns)) | set(lib.imported_variable_slots())
    return sorted(ranges | set(lib.pointer_slots(sorted(ranges))))


def cpuid_variables(lib: Library, fns: Ints) -> list[tuple[int, int]]:
    """Writable data that functions executing cpuid store to or take the address of."""
    writable = [
        (s.addr, s.addr + s.size) for s in lib.sections if s.flags & 0x3 == 0x3 and s.addr
    ]  # SHF_WRITE | SHF_ALLOC
    if not len(fns) or not writable:
        return []
    out = set()
    lea = iced_x86.Code.LEA_R64_M
    memory = iced_x86.OpKind.MEMORY
    for fn in arrays.unique(fns).tolist():
        start, data = lib.code_bytes(fn)
        for ins in iced_x86.Decoder(64, data, ip=start):
            if ins.is_ip_rel_memory_operand and (ins.code == lea or ins.op0_kind == memory):
                a = ins.ip_rel_memory_address
                if any(lo <= a < hi for lo, hi in writable):
                    out.add((a, a + _VARIABLE_BYTES))
    return sorted(out)
