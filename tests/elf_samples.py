"""Small shared libraries compiled with the real gcc, and wheels built around them, for the
ISA-scan and verify tests. Each source exercises one thing the classifier must get right."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from pathlib import Path

# Code every flag set compiles: GCC vector extensions give deterministic SIMD (plain loops are
# not vectorised at -O2 by GCC 12's cheap cost model), and a few scalar idioms map to BMI/LZCNT.
KERNELS = r"""
#include <stddef.h>
typedef float v8sf __attribute__((vector_size(32)));
typedef int v8si __attribute__((vector_size(32)));
v8sf axpy8(v8sf a, v8sf x, v8sf y) { return a * x + y; }          /* FMA with -mfma */
v8si add8(v8si a, v8si b) { return a + b; }                       /* AVX2 vpaddd ymm */
unsigned shifts(unsigned x, unsigned s) { return (x << s) ^ (x >> (s & 7)); } /* BMI2 shlx */
int lz(unsigned x) { return __builtin_clz(x); }                   /* LZCNT with -mlzcnt */
int tz(unsigned x) { return __builtin_ctz(x); }                   /* tzcnt (rep bsf) always */
double u2d(unsigned long x) { return (double)x; }                 /* vcvtusi2sd: AVX-512F */
void scale(float *p, size_t n, float k) { for (size_t i = 0; i < n; i++) p[i] *= k; }
"""

# An AVX-512 function with an ordinary name, called only behind __builtin_cpu_supports.
GUARDED = r"""
#include <stddef.h>
#include <immintrin.h>
__attribute__((target("avx512f"), noinline))
static void add_wide(float *c, const float *a, const float *b, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(c + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    for (; i < n; i++) c[i] = a[i] + b[i];
}
void add(float *c, const float *a, const float *b, size_t n) {
    if (__builtin_cpu_supports("avx512f")) { add_wide(c, a, b, n); return; }
    for (size_t i = 0; i < n; i++) c[i] = a[i] + b[i];
}
"""

# Dispatch through a function pointer chosen once after a CPU check: the AVX2 function is only
# referenced by a LEA in the CPU-check function.
POINTER = r"""
#include <stddef.h>
typedef int v8si __attribute__((vector_size(32)));
__attribute__((target("avx2"), noinline)) static void sum_fast(int *d, const int *s) {
    *(v8si *)d += *(const v8si *)s;
}
__attribute__((noinline)) static void sum_slow(int *d, const int *s) {
    for (int i = 0; i < 8; i++) d[i] += s[i];
}
static void (*impl)(int *, const int *);
__attribute__((noinline)) void pick(void) {
    impl = __builtin_cpu_supports("avx2") ? sum_fast : sum_slow;
}
void sum8(int *d, const int *s) { if (!impl) pick(); impl(d, s); }
"""

# Kernels that say what they are: an ISA-named function and GCC multi-versioning clones.
NAMED = r"""
typedef int v8si __attribute__((vector_size(32)));
__attribute__((target("avx2"))) void add_avx2(v8si *d, const v8si *s) { *d += *s; }
__attribute__((target_clones("avx2", "default"))) int sum(const int *p, int n) {
    int t = 0; for (int i = 0; i < n; i++) t += p[i]; return t;
}
"""

# Code that runs when the library loads: a constructor calling an AVX2 function.
CONSTRUCTOR = r"""
typedef int v8si __attribute__((vector_size(32)));
v8si table;
__attribute__((target("avx2"), noinline)) void fill(v8si *t) { *t = *t + *t; }
__attribute__((constructor)) static void at_load(void) { fill(&table); }
"""

# A library that needs a newer glibc than manylinux_2_17 (reallocarray: GLIBC_2.26).
GLIBC = r"""
#include <stdlib.h>
void *grow(void *p, size_t n) { return reallocarray(p, n, 16); }
"""


def many_functions(n: int = 300) -> str:
    """Source with many AVX2 functions, to test splitting a library into parts."""
    body = ["typedef int v8si __attribute__((vector_size(32)));"]
    for i in range(n):
        body.append(f"v8si f{i}(v8si a, v8si b) {{ return a * b + (v8si){{{i}}}; }}")
    return "\n".join(body)


def compile_so(directory: Path, name: str, source: str, flags: list[str]) -> Path:
    """gcc -shared -fPIC FLAGS; returns the library path."""
    directory.mkdir(parents=True, exist_ok=True)
    src = directory / f"{name}.c"
    src.write_text(source)
    out = directory / f"lib{name}.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", *flags, "-o", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    return out


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    directory: Path,
    *,
    name: str = "demo",
    version: str = "1.0",
    tag: str = "cp311-cp311-linux_x86_64",
    files: dict[str, bytes] | None = None,
    wheel_tag: str | None = None,
    extra: dict[str, bytes] | None = None,
    record_override: dict[str, str] | None = None,
    filename: str | None = None,
    symlinks: dict[str, str] | None = None,
) -> Path:
    """A wheel with a correct RECORD unless told otherwise.

    extra: members added without a RECORD line; record_override: RECORD lines replaced
    (member -> 'hash,size'); symlinks: member -> link target (stored as a Unix symlink).
    """
    dist_info = f"{name}-{version}.dist-info"
    files = dict(files or {f"{name}/__init__.py": b""})
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    ).encode()
    files[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: false\nTag: {wheel_tag or tag}\n"
    ).encode()
    lines = []
    for member, data in files.items():
        line = (record_override or {}).get(member, f"{record_hash(data)},{len(data)}")
        lines.append(f"{member},{line}\n")
    for member, target in (symlinks or {}).items():
        lines.append(f"{member},{record_hash(target.encode())},{len(target)}\n")
    lines.append(f"{dist_info}/RECORD,,\n")
    path = directory / (filename or f"{name}-{version}-{tag}.whl")
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for member, data in {**files, **(extra or {})}.items():
            z.writestr(member, data)
        for member, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(member)
            info.create_system = 3
            info.external_attr = 0o120777 << 16
            z.writestr(info, target)
        z.writestr(f"{dist_info}/RECORD", "".join(lines))
    return path


# Stripped-library shapes (no .symtab): what generalises beyond names.
# A CPU-feature flag kept by the library itself: set by a function executing cpuid, read by
# the caller of the AVX2 kernel (no __cpu_model symbol to find once stripped).
OWN_FLAG = r"""
#include <cpuid.h>
typedef int v8si __attribute__((vector_size(32)));
static int has_avx2;
__attribute__((constructor)) static void probe(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) has_avx2 = (b >> 5) & 1;
}
__attribute__((target("avx2"), noinline)) static void add_avx2(int *d, const int *s) {
    *(v8si *)d += *(const v8si *)s;
}
__attribute__((noinline)) static void add_plain(int *d, const int *s) {
    for (int i = 0; i < 8; i++) d[i] += s[i];
}
void add8(int *d, const int *s) { if (has_avx2) add_avx2(d, s); else add_plain(d, s); }
"""

# A dispatch table of function pointers (static const data), chosen by a CPU-check function,
# as MLAS and XNNPACK hardware configs do: the AVX2 kernel is only reachable through it.
TABLE = r"""
typedef int v8si __attribute__((vector_size(32)));
struct ops { void (*add)(int *, const int *); void (*sub)(int *, const int *); };
__attribute__((target("avx2"), noinline)) static void add_avx2(int *d, const int *s) {
    *(v8si *)d += *(const v8si *)s;
}
__attribute__((target("avx2"), noinline)) static void sub_avx2(int *d, const int *s) {
    *(v8si *)d -= *(const v8si *)s;
}
__attribute__((noinline)) static void add_plain(int *d, const int *s) {
    for (int i = 0; i < 8; i++) d[i] += s[i];
}
__attribute__((noinline)) static void sub_plain(int *d, const int *s) {
    for (int i = 0; i < 8; i++) d[i] -= s[i];
}
static const struct ops avx2_ops = {add_avx2, sub_avx2};
static const struct ops plain_ops = {add_plain, sub_plain};
static const struct ops *volatile ops;
__attribute__((noinline)) void init_ops(void) {
    ops = __builtin_cpu_supports("avx2") ? &avx2_ops : &plain_ops;
}
void add8(int *d, const int *s) { if (!ops) init_ops(); ops->add(d, s); }
void sub8(int *d, const int *s) { if (!ops) init_ops(); ops->sub(d, s); }
"""

# Hand-written assembly without CFI or symbol (stripped): an AVX2 routine whose address a
# CPU-check function takes, a constant table that decodes as 3DNow!, and an AVX routine that
# ordinary code calls directly (that one is required).
ASM = r"""
__asm__(".text\n.p2align 6\n"
        "asm_avx2_kernel:\n  vpaddd %ymm1, %ymm0, %ymm0\n  vpaddd %ymm2, %ymm0, %ymm0\n"
        "  ret\n.p2align 6\n"
        "asm_table:\n  .byte 0x0f,0x0e,0x0f,0x0e,0x0f,0x0e,0x0f,0x0e\n"
        "  .quad 0,0,0,0,0,0,0,0\n.p2align 6\n"
        "asm_avx_always:\n  vxorps %ymm0, %ymm0, %ymm0\n  vzeroupper\n  ret\n");
void asm_avx2_kernel(void);
void asm_avx_always(void);
static void (*volatile kernel)(void);
__attribute__((noinline)) void pick(void) {
    if (__builtin_cpu_supports("avx2")) kernel = asm_avx2_kernel;
}
void run(void) { asm_avx_always(); if (kernel) kernel(); }
"""


def strip(path: Path) -> Path:
    """strip --strip-all: no .symtab, as most wheels ship their libraries."""
    subprocess.run(["strip", "--strip-all", str(path)], check=True, capture_output=True)
    return path


# A Python extension module's shape without Python.h: PyInit_* returns a method table whose
# entries are AVX2 functions. Nothing here checks the CPU, so AVX2 is required, although the
# functions are reached only through the table (and one exported helper through nothing).
EXTENSION = r"""
typedef int v8si __attribute__((vector_size(32)));
struct method { const char *name; void (*fn)(int *, const int *); };
__attribute__((noinline)) static void add(int *d, const int *s) { *(v8si *)d += *(const v8si *)s; }
__attribute__((noinline)) static void sub(int *d, const int *s) { *(v8si *)d -= *(const v8si *)s; }
void helper(int *d, const int *s) { *(v8si *)d *= *(const v8si *)s; }
static struct method methods[] = {{"add", add}, {"sub", sub}, {0, 0}};
void *PyInit_demo(void) { return methods; }
"""


# A writable table whose defaults are AVX2 kernels, read (MOV, not LEA) and called by ordinary
# code; only a CPU-check function rewrites it. Ordinary code may run the defaults before any
# check, so the AVX2 kernels must stay required (a table ordinary code reads is not guarded).
TABLE_READ = r"""
typedef int v8si __attribute__((vector_size(32)));
struct ops { void (*add)(int *, const int *); };
__attribute__((target("avx2"), noinline)) static void add_avx2(int *d, const int *s) {
    *(v8si *)d += *(const v8si *)s;
}
__attribute__((noinline)) static void add_plain(int *d, const int *s) {
    for (int i = 0; i < 8; i++) d[i] += s[i];
}
static struct ops ops = {add_avx2};
__attribute__((noinline)) void init_ops(void) {
    if (!__builtin_cpu_supports("avx2")) { struct ops *volatile p = &ops; p->add = add_plain; }
}
void add8(int *d, const int *s) { ops.add(d, s); }
"""


# Hand-written assembly in OpenSSL's perlasm shape: an entry point reads a capability word that
# a cpuid function filled and jumps (jnz) to a variant; the two AVX2 routines jump to each other.
# No CFI, so only symbols give the functions.
ASM_JUMPS = r"""
#include <cpuid.h>
unsigned cap_word[2] __attribute__((visibility("hidden")));
__attribute__((constructor)) static void probe(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) cap_word[0] = b;
}
__asm__(".text\n"
        ".globl dispatch_sum\n.type dispatch_sum,@function\n.p2align 4\n"
        "dispatch_sum:\n  movl cap_word(%rip), %eax\n  testl $32, %eax\n"
        "  jnz .Lwide_entry\n  xorl %eax, %eax\n  ret\n.size dispatch_sum,.-dispatch_sum\n"
        ".type wide_sum,@function\n.p2align 6\n"
        "wide_sum:\n.Lwide_entry:\n  vpaddd %ymm1, %ymm0, %ymm0\n  testl %edi, %edi\n"
        "  jz .Lwide_done\n  jmp wide_tail\n.Lwide_done:\n  vzeroupper\n  ret\n"
        ".size wide_sum,.-wide_sum\n"
        ".type wide_tail,@function\n.p2align 6\n"
        "wide_tail:\n  vpsubd %ymm1, %ymm0, %ymm0\n  decl %edi\n  jmp .Lwide_entry\n"
        ".size wide_tail,.-wide_tail\n");
"""

# A function pointer picked after a CPU check that points to a wrapper without features (a
# Rust #[target_feature] shim, memchr's searcher_kind_avx2); only the wrapper reaches the
# AVX2 kernel.
POINTER_WRAPPER = r"""
typedef int v8si __attribute__((vector_size(32)));
__attribute__((target("avx2"), noinline)) static void kernel(int *d, const int *s) {
    *(v8si *)d += *(const v8si *)s;
}
__attribute__((noinline)) static void wrapper(int *d, const int *s) { kernel(d, s); }
__attribute__((noinline)) static void plain(int *d, const int *s) {
    for (int i = 0; i < 8; i++) d[i] += s[i];
}
static void (*volatile fn)(int *, const int *);
__attribute__((noinline)) void pick(void) {
    fn = __builtin_cpu_supports("avx2") ? wrapper : plain;
}
void run(int *d, const int *s) { if (!fn) pick(); fn(d, s); }
"""

# An AVX-512 function nothing refers to (kept by `used`, as a linker keeps an assembly
# routine whose C caller was dropped): it never runs.
UNREACHED = r"""
#include <stddef.h>
#include <immintrin.h>
__attribute__((used, target("avx512f"), noinline))
static void orphan(float *c, const float *a) { _mm512_storeu_ps(c, _mm512_loadu_ps(a)); }
int answer(void) { return 42; }
"""

# A capability word with a versioned crate prefix, exported (so code reaches it through its GOT
# entry) and filled by a cpuid function through a pointer: found by its name's end.
VERSIONED_WORD = r"""
#include <cpuid.h>
typedef int v8si __attribute__((vector_size(32)));
unsigned ring_core_0_17_8_OPENSSL_ia32cap_P[4];
__attribute__((noinline)) void ring_core_0_17_8_OPENSSL_cpuid_setup(unsigned *out) {
    unsigned a, b, c, d;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) out[2] = b;
}
__attribute__((target("avx2"), noinline)) static void add_wide(int *d, const int *s) {
    *(v8si *)d += *(const v8si *)s;
}
__attribute__((noinline)) static void add_plain(int *d, const int *s) {
    for (int i = 0; i < 8; i++) d[i] += s[i];
}
void init(void) { ring_core_0_17_8_OPENSSL_cpuid_setup(ring_core_0_17_8_OPENSSL_ia32cap_P); }
void add8(int *d, const int *s) {
    if (ring_core_0_17_8_OPENSSL_ia32cap_P[2] & 32) add_wide(d, s); else add_plain(d, s);
}
"""
