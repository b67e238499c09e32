"""Tables of function pointers in data, and which code may read them (rules R2, R5, R6)."""

from __future__ import annotations

import numpy as np

from tfforge.elfscan import arrays
from tfforge.elfscan.arrays import Bools, Ints
from tfforge.elfscan.decode import TABLE_BYTES, Streamed
from tfforge.elfscan.library import Library


class Graph:
    """Edges src -> dst grouped by source (compressed rows), for frontier walks."""

    def __init__(self, src: Ints, dst: Ints, n: int):
        order = arrays.stable_order(src)
        self.dst = dst[order]
        self.indptr = np.searchsorted(src[order], np.arange(n + 1))

    def out(self, nodes: Ints) -> Ints:
        """Targets of all edges leaving nodes (repeats kept)."""
        lo = self.indptr[nodes]
        return self.dst[arrays.spans(lo, self.indptr[nodes + 1] - lo)]

    def closure(self, seen: Bools, frontier: Ints) -> Ints:
        """Mark everything reachable from frontier in seen (in place); the newly marked."""
        frontier = arrays.unique(frontier[~seen[frontier]])
        seen[frontier] = True
        found = [frontier]
        while len(frontier):
            nxt = arrays.unique(self.out(frontier))
            frontier = nxt[~seen[nxt]]
            seen[frontier] = True
            found.append(frontier)
        return np.concatenate(found)


class Tables:
    """Relocated pointers and the data objects holding them.

    Objects start at addresses that code refers to (RIP-relative, near a table slot) or that
    a relocated pointer in data points to; a slot belongs to the nearest object start at or
    below it (within TABLE_BYTES). An object is open when it has no reference, when code
    that does not guard (neither a CPU check nor dispatched) refers to it, or when a pointer
    in an open object or outside every object points to it; a function pointer in a slot of
    an object that is not open is not an unknown caller. Openness only grows as fewer
    functions guard, so it is kept up to date by `open_more` instead of recomputed."""

    def __init__(self, lib: Library, s: Streamed, rel_where: Ints, rel_target: Ints):
        self.n = n = len(lib)
        fn = lib.exact(rel_target)
        to_data = lib.in_data(rel_target) & lib.in_data(rel_where)
        ref_fn = (s.data_refs >> 40).astype(np.int64)
        ref_addr = (s.data_refs & ((1 << 40) - 1)).astype(np.uint64)
        self.objects = objects = arrays.unique(np.concatenate([ref_addr, rel_target[to_data]]))
        ref_obj = np.searchsorted(objects, ref_addr).astype(np.int64)

        def owner(where: Ints) -> Ints:
            """Object holding each slot, -1 when none is near."""
            o = np.searchsorted(objects, where, side="right").astype(np.int64) - 1
            oc = np.clip(o, 0, None)
            near = (
                (o >= 0) & (where - objects[oc] < TABLE_BYTES)
                if len(objects)
                else np.zeros(len(where), bool)
            )
            return np.where(near, o, -1)

        m = len(objects)
        self.slot_fn = fn[fn >= 0]
        self.slot_obj = owner(rel_where[fn >= 0])
        link_from = owner(rel_where[to_data])
        link_to = np.searchsorted(objects, rel_target[to_data]).astype(np.int64)
        inner = link_from >= 0
        self.links = Graph(link_from[inner], link_to[inner], m)
        self.readers = Graph(ref_fn, ref_obj, n)  # function -> objects it refers to
        in_obj = self.slot_obj >= 0
        self.slots = Graph(self.slot_obj[in_obj], self.slot_fn[in_obj], m)
        self.seed = np.ones(m, bool)  # open whatever guards: no reference, or linked from
        self.seed[ref_obj] = False  # a pointer outside every object
        self.seed[link_to] = False
        self.seed[link_to[~inner]] = True

    def open_objects(self, guarded: Bools) -> Bools:
        """Mask of open objects when `guarded` functions are the ones that guard."""
        is_open = np.zeros(len(self.objects), bool)
        seeds = np.concatenate(
            [np.flatnonzero(self.seed), self.readers.out(np.flatnonzero(~guarded))]
        )
        self.links.closure(is_open, seeds.astype(np.int64))
        return is_open

    def open_more(self, is_open: Bools, no_longer_guarding: Ints) -> Ints:
        """Objects that became open (marked in is_open) now that these functions do not
        guard any more: the slot functions of each one returned, repeats kept."""
        new = self.links.closure(is_open, self.readers.out(no_longer_guarding))
        return self.slots.out(new)

    def split(self, is_open: Bools) -> tuple[Bools, Ints]:
        """(functions in a slot that is outside every object or in an open object, how many
        slots in objects that are not open hold each function)."""
        in_obj = self.slot_obj >= 0
        ok = in_obj.copy()
        ok[in_obj] = ~is_open[self.slot_obj[in_obj]]
        return arrays.mask(self.slot_fn[~ok], self.n), np.bincount(
            self.slot_fn[ok], minlength=self.n
        )
