"""Classification: per function (rules R1-R5 in RULES), then per feature, with the evidence
for each decision (rule, counts, example functions)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import iced_x86
import numpy as np

from tfforge.elfscan import arrays
from tfforge.elfscan.decode import Streamed
from tfforge.elfscan.library import Library
from tfforge.elfscan.names import Matcher, demangle
from tfforge.elfscan.pointers import Graph, Tables
from tfforge.elfscan.results import FeatureEvidence
from tfforge.elfscan.rules import code_table
from tfforge.host import isa

RULES = (
    "R1 name: functions whose symbol matches a dispatch pattern (verify.toml) or the library's "
    "allow-list (verify_allow.toml) are dispatched kernels",
    "R2 guard: functions that are not exported (a Python extension module exports only "
    "PyInit_*: it is loaded RTLD_LOCAL), whose address is not stored in data, and whose "
    "every reference (call, jump, LEA) comes from CPU-check code (cpuid/xgetbv, reads of "
    "__cpu_model & co. or flags a cpuid function stores, or a direct caller of those) or "
    "from dispatched code, are dispatched; a pointer in a data table counts as a reference "
    "from the code that takes the table's address, and helpers without features pass "
    "dispatched-ness on to their callees when only dispatched code calls them, or a CPU check "
    "jumps to them or takes their address (a function pointer picked after cpuid)",
    "R3 load: features in code reachable by direct calls from .init/.init_array/PyInit_* "
    "(not through dispatched code) are baseline: it runs when the library loads",
    "R4 rest: every other function is ordinary; a feature in any ordinary function is baseline "
    "(no frequency threshold: where code lives decides, not how common it is)",
    "R5 unlabelled: code with neither a symbol nor an unwind (FDE) entry - hand-written "
    "assembly or data in .text - is dispatched unless ordinary code calls, jumps to or takes "
    "the address of it (tables of pointers count as in R2)",
    "R6 unreferenced: code that no call, jump or LEA reaches, no pointer in data points to, "
    "not exported and not run at load never runs (the linker kept it after dropping its "
    "callers): its features are never needed",
    "ignored: instructions in verify.toml [ignore] (tzcnt, endbr64, multi-byte nop, prefetchw, "
    "xgetbv ...) never make a requirement; x86-64 level-1 features (SSE, SSE2) are implicit",
)


@dataclass
class Classes:
    feature_fns: np.ndarray  # functions with requirement features (sorted)
    named: np.ndarray  # bool masks over all functions
    dispatched: np.ndarray
    load: np.ndarray
    checks: int
    roots: int
    hits: dict[str, int]
    unlabelled: np.ndarray  # bool mask: dispatched by R5
    checking: np.ndarray  # bool mask: CPU-check functions (they may guard their own code)
    unreached: np.ndarray  # bool mask: nothing refers to them (R6)


def cpu_checks(
    lib: Library,
    s: Streamed,
    ranges: list[tuple[int, int]],
    call_src: np.ndarray,
    call_dst: np.ndarray,
) -> np.ndarray:
    """Mask of CPU-check functions (see RULES R2)."""
    n = len(lib)
    table = code_table()
    direct = [s.pair_fn[np.isin(s.pair_code, list(table.checks))]]
    reads = s.reads(ranges)
    if len(reads):
        for fn in arrays.unique(lib.of(reads)).tolist():
            if fn < 0:
                continue
            start, data = lib.code_bytes(fn)
            for ins in iced_x86.Decoder(64, data, ip=start):
                if ins.is_ip_rel_memory_operand and any(
                    lo <= ins.ip_rel_memory_address < hi for lo, hi in ranges
                ):
                    direct.append(np.array([fn]))
                    break
    direct_mask = arrays.mask(np.concatenate(direct).astype(np.int64), n)
    checks = direct_mask.copy()
    checks[call_src[direct_mask[call_dst]]] = True  # their direct callers check too
    return checks


def classify(lib: Library, s: Streamed, ranges: list[tuple[int, int]], lib_name: str) -> Classes:
    n = len(lib)
    table = code_table()
    has_feat = np.array([bool(table.features[c]) for c in range(len(table.features))])
    feature_fns = arrays.unique(s.pair_fn[has_feat[s.pair_code]])
    feat_mask = arrays.mask(feature_fns, n)
    call_src, call_dst = np.divmod(s.calls, n)
    jump_src, jump_dst = np.divmod(s.jumps, n)
    lea_src, lea_dst = np.divmod(s.leas, n)
    # control reaches the callee: calls, jumps
    flow_src, flow_dst = np.concatenate([call_src, jump_src]), np.concatenate([call_dst, jump_dst])
    ref_src = np.concatenate([flow_src, lea_src])
    ref_dst = np.concatenate([flow_dst, lea_dst])
    checks = cpu_checks(lib, s, ranges, call_src, call_dst)

    # Unknown callers: exported functions and functions whose address is stored in data.
    rel_where, rel_target = lib.relocations()
    dyn = lib.dynsym
    exported = dyn[((dyn["info"] >> 4) != 0) & ((dyn["other"] & 3) == 0) & (dyn["shndx"] != 0)]
    # A Python extension module (it defines PyInit_*) is loaded with RTLD_LOCAL: no other
    # library binds to its exports, so only PyInit_* itself is called from outside.
    dynamic_mask = arrays.mask(lib.exact(exported["value"]), n)  # anyone may dlsym these
    exported_mask = dynamic_mask
    if len(lib.special["pyinit"]):
        exported_mask = arrays.mask(lib.exact(lib.special["pyinit"]["value"]), n)
    tables = Tables(lib, s, rel_where, rel_target)
    open_to_all, guarded_slots = tables.split(tables.open_objects(np.zeros(n, bool)))
    outside = exported_mask | open_to_all
    referenced = arrays.mask(ref_dst, n)

    # R1: names of feature functions, and of the referrers of those R2 may class. One pass
    # over the string table reads both: the referrers of every unnamed candidate are among
    # those of all candidates, named or not.
    matcher = Matcher(lib_name)
    cand = feat_mask & ~outside & referenced
    referrers = arrays.unique(ref_src[cand[ref_dst]])
    referrers = referrers[~feat_mask[referrers] & ~checks[referrers]]
    label: dict[int, str] = {}  # function -> the pattern its first matching name matches
    for fn, name in lib.names(
        arrays.unique(np.concatenate([feature_fns, referrers])), matcher.maybe
    ):
        if fn not in label:
            p = matcher.match(name)
            if p is not None:
                label[fn] = p.label
    named = np.zeros(n, bool)
    hits: dict[str, int] = {}
    for fn in feature_fns[np.isin(feature_fns, list(label))].tolist():
        named[fn] = True
        hits[label[fn]] = hits.get(label[fn], 0) + 1
    cand &= ~named
    referrers = arrays.unique(ref_src[cand[ref_dst]])
    referrers = referrers[~feat_mask[referrers] & ~checks[referrers]]
    named[referrers[np.isin(referrers, list(label))]] = True

    # R2 + R5: what stays dispatched (see _greatest_fixed_point).
    gap = lib.unlabelled
    dispatched = _greatest_fixed_point(
        _Facts(n, exported_mask, named, checks, gap, feat_mask, referenced),
        tables,
        Graph(ref_src, ref_dst, n),
        Graph(call_src, call_dst, n),
    )
    unlabelled = gap & dispatched & ~named

    # R3: reachable at load, never entering dispatched code.
    roots = lib.exact(lib.init_targets(rel_where, rel_target))
    pyinit = lib.special["pyinit"]
    roots = arrays.unique(np.concatenate([roots, lib.exact(pyinit["value"])]))
    roots = roots[roots >= 0]
    # R6: code nothing reaches (no call, jump or LEA, no pointer in data, not exported, not a
    # load-time entry) never runs: left in by the linker after its callers were dropped.
    in_tables = open_to_all | (guarded_slots > 0)
    unreached = ~referenced & ~in_tables & ~dynamic_mask & ~arrays.mask(roots, n)
    dispatched = dispatched | (unreached & feat_mask)
    load = reachable(roots, flow_src, flow_dst, dispatched, n)
    return Classes(
        feature_fns,
        named,
        dispatched,
        load,
        int(checks.sum()),
        len(roots),
        hits,
        unlabelled,
        checks,
        unreached & ~named,
    )


@dataclass
class _Facts:
    """What the R2/R5 fixed point starts from (bool masks over all functions)."""

    n: int
    exported: np.ndarray
    named: np.ndarray
    checks: np.ndarray
    gap: np.ndarray  # unlabelled code (R5)
    feat: np.ndarray
    referenced: np.ndarray


def _greatest_fixed_point(f: _Facts, tables: Tables, refs: Graph, calls: Graph) -> np.ndarray:
    """R2 + R5 as the greatest fixed point: start from every function that could be
    dispatched and take away each one an ordinary function refers to, until nothing changes
    (so a group of kernels that call each other, entered only after a CPU check, stays
    dispatched). R2: referenced only from CPU checks or dispatched code. Functions without
    features count too when only dispatched code calls them (a static helper or thread body
    between a dispatched entry point and its kernels), or a CPU check jumps to them or takes
    their address; a check merely calling one does not pass that on. A pointer stored in a
    table whose address only CPU-check or dispatched code takes (a dispatch table filled in
    after cpuid) is such a reference too. R5: unlabelled code (no symbol, no unwind entry)
    unless ordinary labelled code calls, jumps to or takes the address of it, or an open
    table points to it.

    Every condition only grows as functions are taken away, so after one full pass only the
    targets of the functions just taken away (and the slots of tables they opened) are
    looked at again: a worklist, not a recomputation per round."""
    n = f.n
    dispatched = ~f.exported | f.named
    guarded = f.checks | dispatched
    is_open = tables.open_objects(guarded)
    in_open, guarded_slots = tables.split(is_open)
    ref_src, ref_dst = np.repeat(np.arange(n), np.diff(refs.indptr)), refs.dst
    call_src = np.repeat(np.arange(n), np.diff(calls.indptr))
    bad = arrays.mask(ref_dst[~guarded[ref_src]], n)  # an ordinary function refers to it
    gap_bad = arrays.mask(ref_dst[~(guarded | f.gap)[ref_src]], n)
    from_check = arrays.mask(calls.dst[(f.checks & ~dispatched)[call_src]], n)

    def keep(fn: np.ndarray) -> np.ndarray:
        open_ = in_open[fn]
        cand = ~f.named[fn] & ~f.exported[fn] & ~open_
        cand &= f.referenced[fn] | (guarded_slots[fn] > 0)
        cand &= ~bad[fn] & (f.feat[fn] | ~from_check[fn])
        gap_ok = f.gap[fn] & ~gap_bad[fn] & ~(open_ & ~f.exported[fn])
        kept: np.ndarray = f.named[fn] | cand | gap_ok
        return kept

    every = np.arange(n)
    removed = every[dispatched & ~keep(every)]
    while len(removed):
        dispatched[removed] = False
        loose = removed[~f.checks[removed]]  # no longer guards what it refers to
        hit = refs.out(loose)
        bad[hit] = True
        gap_bad[refs.out(loose[~f.gap[loose]])] = True
        checking = calls.out(removed[f.checks[removed]])
        from_check[checking] = True
        slots = tables.open_more(is_open, loose)
        in_open[slots] = True
        np.subtract.at(guarded_slots, slots, 1)
        touched = arrays.unique(np.concatenate([hit, checking, slots]))
        touched = touched[dispatched[touched]]
        removed = touched[~keep(touched)]
    out: np.ndarray = dispatched
    return out


def reachable(
    roots: np.ndarray, src: np.ndarray, dst: np.ndarray, blocked: np.ndarray, n: int
) -> np.ndarray:
    """Mask of functions reachable from roots over edges, never entering blocked ones."""
    order = arrays.stable_order(src)
    src, dst = src[order], dst[order]
    indptr = np.searchsorted(src, np.arange(n + 1))
    seen = np.zeros(n, bool)
    frontier = roots[~blocked[roots]]
    seen[frontier] = True
    while len(frontier):
        lo = indptr[frontier]
        nxt = arrays.unique(dst[arrays.spans(lo, indptr[frontier + 1] - lo)])
        nxt = nxt[~seen[nxt] & ~blocked[nxt]]
        seen[nxt] = True
        frontier = nxt
    return seen


def evidence(
    lib: Library, s: Streamed, c: Classes, examples: int, readable: bool = True
) -> list[FeatureEvidence]:
    table = code_table()
    ordinary = ~c.dispatched
    codes = arrays.unique(s.pair_code).tolist()
    by_feature: dict[str, list[int]] = {}
    for code in codes:
        for feat in table.features[code]:
            by_feature.setdefault(feat, []).append(code)
    code_totals = np.bincount(s.pair_code, weights=s.pair_count).astype(np.int64)
    chosen: dict[str, np.ndarray] = {}
    rows: list[FeatureEvidence] = []
    for feat in sorted(by_feature, key=isa.sort_key):
        sel = np.isin(s.pair_code, by_feature[feat])
        fns, inv = np.unique(s.pair_fn[sel], return_inverse=True)
        per_fn = np.bincount(inv, weights=s.pair_count[sel]).astype(np.int64)
        per_code: dict[str, int] = {}
        for code in by_feature[feat]:
            mn = table.mnemonic[code]
            per_code[mn] = per_code.get(mn, 0) + int(code_totals[code])
        o, lt = ordinary[fns], c.load[fns]
        nm, ul, ur = c.named[fns], c.unlabelled[fns], c.unreached[fns]
        gd = c.dispatched[fns] & ~nm & ~ul & ~ur
        ck = o & c.checking[fns]
        # Load-time code that tests the CPU itself may guard its own use: not proof it runs.
        at_load = o & lt & ~ck
        pool = np.flatnonzero(o) if o.any() else np.arange(len(fns))
        order = np.lexsort((-per_fn[pool], -at_load[pool].astype(np.int64)))
        chosen[feat] = fns[pool[order[:examples]]]
        if at_load.any():
            cls = "required"
            reason = (
                f"runs at load (R3): in {int(at_load.sum())} function(s) reachable from "
                f".init_array/PyInit_*; {int(o.sum())} ordinary function(s) in all"
            )
        elif o.any():
            cls = "unguarded"
            reason = (
                f"in {int(o.sum())} ordinary function(s) (R4): not dispatch-named, not reached "
                "only from CPU checks, not run at load"
                + (f"; {int(ck.sum())} of them test the CPU themselves" if ck.any() else "")
            )
        else:
            cls = "dispatched"
            parts = (
                ([f"{int(nm.sum())} dispatch-named/allow-listed (R1)"] if nm.any() else [])
                + ([f"{int(gd.sum())} reached only from CPU-check code (R2)"] if gd.any() else [])
                + ([f"{int(ul.sum())} unlabelled code block(s) (R5)"] if ul.any() else [])
                + ([f"{int(ur.sum())} that nothing refers to (R6)"] if ur.any() else [])
            )
            reason = "only in dispatched functions: " + ", ".join(parts)
        top = sorted(per_code.items(), key=lambda kv: -kv[1])[:3]
        rows.append(
            FeatureEvidence(
                name=feat,
                cls=cls,
                instructions=int(per_fn.sum()),
                ordinary_instructions=int(per_fn[o].sum()),
                functions=len(fns),
                ordinary=int(o.sum()),
                load_time=int((o & lt).sum()),
                named=int(nm.sum()),
                guarded=int(gd.sum()),
                unlabelled=int(ul.sum()),
                checking=int(ck.sum()),
                mnemonics=tuple(top),
                reason=reason,
                examples=(),
            )
        )
    # Names for the examples only: a few reads, one c++filt run.
    wanted = arrays.unique(np.concatenate(list(chosen.values()))) if chosen else np.zeros(0, int)
    first: dict[int, str] = {}
    for fn, name in lib.names(wanted):
        first.setdefault(fn, name)
    shown = demangle(first.values()) if readable else {}
    out = []
    for row in rows:
        ex = tuple(
            shown.get(first[fn], first[fn])
            if fn in first
            else f"<function at {int(lib.starts[fn]):#x}>"
            for fn in chosen[row.name].tolist()
        )
        out.append(dataclasses.replace(row, examples=ex))
    return out
