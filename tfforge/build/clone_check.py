"""Check a TensorFlow source tree against tfforge's recipe before anything compiles.

Standalone (standard library only): the build image runs it right after the source stage,

    python3 clone_check.py --root SRC --target //pkg:name [--config=NAME ...]
                           [--bazel VERSION] [--wheel-type release]
                           [--version X.Y.Z] [--clang-major N] [--clang-arg=FLAG ...]

and it stops the build in seconds, one line per disagreement, when the tree's `.bazelversion`,
wheel target, `--config` names, hermetic C++ toolchain or wheel version type disagree with the
recipe, or when its version file, the clang its release config names, or that config's
compiler and linker flags disagree with what the release's official wheels show
(release_evidence.toml) and the recipe passes. The unit tests import `problems()` and
`release_clang_args()` and run them on the releases' own files.
"""

from __future__ import annotations  # the annotations stay text for an image's older Python

import argparse
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

RECIPE = "tfforge/data/toolchains.toml"
EVIDENCE = "tfforge/data/release_evidence.toml"
# The CPU release configs of a tree's .bazelrc, and the --bazelrc TF's CI passed before it had
# them (2.14: ci/official/bazelrcs/cpu.bazelrc, its plain `build` lines).
RELEASE_CONFIGS = ("release_cpu_linux", "release_cpu_linux_base", "release_cpu_linux_clang_local")
CI_BAZELRC = "ci/official/bazelrcs/cpu.bazelrc"
_LLVM = re.compile(r"/usr/lib/llvm-(\d+)/bin/clang")
_SECTION = re.compile(
    r"^\s*(build|common|test|run|query|cquery|coverage|fetch|info|sync)"
    r"(?::([A-Za-z0-9_.-]+))?\s+(.*)$"
)


def bazelrc_lines(root: str | Path, name: str = ".bazelrc") -> list[tuple[str | None, str]]:
    """(config or None, options text) for each line of the tree's top .bazelrc (or another
    bazelrc file under root)."""
    path = Path(root) / name
    if not path.is_file():
        return []
    out: list[tuple[str | None, str]] = []
    for raw in path.read_text(errors="replace").splitlines():
        match = _SECTION.match(raw)
        if match:
            out.append((match.group(2), match.group(3)))
    return out


def bazel_version(path: str | Path) -> str:
    """The version a .bazelversion names: its first line that is not a comment (as bazelisk)."""
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    return ""


def _sets(options: str, name: str, value: str | None = None) -> bool:
    """Whether the options text sets --repo_env NAME (to value, when given)."""
    pattern = r"--repo_env[= ]\s*" + name + r"=\"?([^\"\s]*)"
    found = re.search(pattern, options)
    return found is not None and (value is None or found.group(1) == value)


def _has_target(root: str | Path, label: str) -> bool:
    pkg, _, name = label[2:].partition(":")
    for build in ("BUILD", "BUILD.bazel"):
        path = Path(root) / pkg / build
        if path.is_file() and re.search(
            r"\bname\s*=\s*\"" + re.escape(name) + '"', path.read_text(errors="replace")
        ):
            return True
    return False


def _flags(options: str) -> list[str]:
    """--copt/--linkopt values of an options text, as --copt=V (target -m flags left out)."""
    try:
        words = shlex.split(options, comments=True)
    except ValueError:
        words = options.split()
    out = []
    for i, word in enumerate(words):
        for kind in ("--copt", "--linkopt"):
            value = None
            if word.startswith(kind + "="):
                value = word[len(kind) + 1 :]
            elif word == kind and i + 1 < len(words):
                value = words[i + 1]
            if value and not (kind == "--copt" and value.startswith("-m")):
                out.append(f"{kind}={value}")
    return out


def _expand(lines: list[tuple[str | None, str]], config: str, seen: set[str]) -> list[str]:
    """The options of a config and the configs it names with --config, in order."""
    out: list[str] = []
    if config in seen or len(seen) > 64:
        return out
    seen.add(config)
    for name, options in lines:
        if name != config:
            continue
        for ref in re.findall(r"--config[= ]\s*([A-Za-z0-9_.-]+)", options):
            out += _expand(lines, ref, seen)
        out.append(options)
    return out


def release_clang_args(root: str | Path) -> list[str] | None:
    """The compiler and linker flags (--copt=, --linkopt=) the tree's CPU release build passes,
    in order, without target -m flags; None when the tree has no release build config."""
    ci = bazelrc_lines(root, CI_BAZELRC)
    if ci:
        options = [o for config, o in ci if config is None]
    else:
        lines = bazelrc_lines(root)
        if not any(config == "release_cpu_linux" for config, _ in lines):
            return None
        options = _expand(lines, "release_cpu_linux", set())
    return list(dict.fromkeys(f for o in options for f in _flags(o)))


def release_clang_majors(root: str | Path) -> list[int]:
    """The clang majors the tree's CPU release configs name (/usr/lib/llvm-N/bin/clang)."""
    lines = bazelrc_lines(root)
    return sorted(
        {int(m) for config, o in lines if config in RELEASE_CONFIGS for m in _LLVM.findall(o)}
    )


def tree_version(root: str | Path) -> str:
    """The version the tree says it is: tensorflow/tf_version.bzl's TF_VERSION, else
    tensorflow/core/public/version.h; '' when neither says."""
    root = Path(root)
    bzl = root / "tensorflow" / "tf_version.bzl"
    if bzl.is_file():
        m = re.search(r'^TF_VERSION\s*=\s*"([^"]+)"', bzl.read_text(errors="replace"), re.M)
        if m:
            return m.group(1)
    header = root / "tensorflow" / "core" / "public" / "version.h"
    if header.is_file():
        text = header.read_text(errors="replace")
        parts = dict(re.findall(r"^#define TF_(MAJOR|MINOR|PATCH)_VERSION (\d+)\s*$", text, re.M))
        suffix = re.search(r'^#define TF_VERSION_SUFFIX "([^"]*)"', text, re.M)
        if set(parts) == {"MAJOR", "MINOR", "PATCH"}:
            return f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}" + (
                suffix.group(1) if suffix else ""
            )
    return ""


def evidence_problems(
    root: str | Path,
    *,
    version: str | None = None,
    clang_major: int | None = None,
    clang_args: Sequence[str] | None = None,
) -> list[str]:
    """Where the tree disagrees with its release's official wheels and the recipe's clang
    route: its version file, the clang its release config names, that config's flags."""
    found = []
    if version is not None:
        have = tree_version(root)
        if have != version:
            found.append(
                f"the tree's version file says {have or 'nothing'}, the release's official "
                f"wheels are {version}; fix git_tag/git_commit in {RECIPE}"
            )
    if clang_major is not None:
        other = [m for m in release_clang_majors(root) if m != clang_major]
        if other:
            found.append(
                f"the tree's release config names clang {other[0]}, the official wheels were "
                f"built with clang {clang_major} ({EVIDENCE}); fix official_compiler_version "
                f"in {RECIPE}"
            )
    tree_args = release_clang_args(root) if clang_args is not None else None
    if clang_args is not None and tree_args is not None:
        missing = [a for a in tree_args if a not in clang_args]
        extra = [a for a in clang_args if a not in tree_args]
        if missing or extra:
            found.append(
                "the tree's release config passes "
                + (", ".join(missing) or "nothing more")
                + " that the recipe's clang_args lack"
                + (f", and not {', '.join(extra)}" if extra else "")
                + f"; fix clang_args in {RECIPE}"
            )
    return found


def problems(
    root: str | Path,
    *,
    target: str | None = None,
    configs: Sequence[str] = (),
    bazel: str | None = None,
    wheel_type: str | None = None,
) -> list[str]:
    """The disagreements between the tree at root and the recipe, one line each."""
    root = Path(root)
    found = []
    if bazel is not None:
        have = root / ".bazelversion"
        text = bazel_version(have) if have.is_file() else ""
        if text != bazel:
            found.append(
                f".bazelversion says {text or 'nothing'}, the recipe pins Bazel {bazel};"
                f" fix `bazel` for this release in {RECIPE}"
            )
    if target is not None and not _has_target(root, target):
        found.append(f"no target {target} in the tree; fix `wheel_target` in {RECIPE}")
    lines = bazelrc_lines(root)
    defined = {config for config, _ in lines if config}
    missing = [c for c in configs if c not in defined]
    if missing:
        found.append(
            f".bazelrc defines no config {', '.join(missing)}; fix the recipe in "
            f"{RECIPE} or drop the --config"
        )
    plain = [opts for config, opts in lines if config is None]
    if any(_sets(o, "USE_HERMETIC_CC_TOOLCHAIN", "1") for o in plain):
        chosen = [o for config, o in lines if config in configs]
        if not any(_sets(o, "USE_HERMETIC_CC_TOOLCHAIN", "0") for o in chosen):
            off = sorted({c for c, o in lines if c and _sets(o, "USE_HERMETIC_CC_TOOLCHAIN", "0")})
            fix = f"--bazel-arg=--config={off[0]}" if off else "a config that sets it to 0"
            found.append(
                "the tree's .bazelrc turns on a hermetic C++ toolchain, so the chosen "
                f"compiler would be ignored; set cc_toolchain in {RECIPE} or pass {fix}"
            )
    if wheel_type is None and any(_sets(o, "ML_WHEEL_TYPE") for o in plain):
        found.append(
            "the tree's .bazelrc sets ML_WHEEL_TYPE (a snapshot makes a .dev0 version);"
            f' set wheel_type = "release" for this release in {RECIPE}'
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--target")
    parser.add_argument("--config", action="append", default=[])
    parser.add_argument("--bazel")
    parser.add_argument("--wheel-type")
    parser.add_argument("--version")
    parser.add_argument("--clang-major", type=int)
    parser.add_argument("--clang-arg", action="append")
    opts = parser.parse_args(argv)
    found = problems(
        opts.root,
        target=opts.target,
        configs=opts.config,
        bazel=opts.bazel,
        wheel_type=opts.wheel_type,
    ) + evidence_problems(
        opts.root,
        version=opts.version,
        clang_major=opts.clang_major,
        clang_args=opts.clang_arg,
    )
    for line in found:
        print(f"tfforge: the source tree disagrees with the recipe: {line}", file=sys.stderr)
    if found:
        return 1
    release = ""
    if opts.version:
        release = f"; the release's wheels: version {opts.version}"
        if opts.clang_major is not None:
            release += f", clang {opts.clang_major}"
        if opts.clang_arg and release_clang_args(opts.root) is not None:
            release += f", {len(opts.clang_arg)} clang flags of its release config"
    print(
        f"tfforge: the source tree matches the recipe (target {opts.target}, configs "
        f"{', '.join(opts.config) or 'none'}, bazel {opts.bazel or 'not pinned here'}){release}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
