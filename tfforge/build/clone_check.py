"""Check a TensorFlow source tree against tfforge's recipe before anything compiles.

Standalone (standard library only): the build image runs it right after the source stage,

    python3 clone_check.py --root SRC --target //pkg:name [--config=NAME ...]
                           [--bazel VERSION] [--wheel-type release]

and it stops the build in seconds, one line per disagreement, when the tree's `.bazelversion`,
wheel target, `--config` names, hermetic C++ toolchain or wheel version type disagree with the
recipe. The unit tests import `problems()` and run it on the releases' own files.
"""

from __future__ import annotations  # the annotations stay text for an image's older Python

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

RECIPE = "tfforge/data/toolchains.toml"
_SECTION = re.compile(
    r"^\s*(build|common|test|run|query|cquery|coverage|fetch|info|sync)"
    r"(?::([A-Za-z0-9_.-]+))?\s+(.*)$"
)


def bazelrc_lines(root: str | Path) -> list[tuple[str | None, str]]:
    """(config or None, options text) for each line of the tree's top .bazelrc."""
    path = Path(root) / ".bazelrc"
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


def _has_target(root: Path, label: str) -> bool:
    pkg, _, name = label[2:].partition(":")
    for build in ("BUILD", "BUILD.bazel"):
        path = Path(root) / pkg / build
        if path.is_file() and re.search(
            r"\bname\s*=\s*\"" + re.escape(name) + '"', path.read_text(errors="replace")
        ):
            return True
    return False


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
    opts = parser.parse_args(argv)
    found = problems(
        opts.root,
        target=opts.target,
        configs=opts.config,
        bazel=opts.bazel,
        wheel_type=opts.wheel_type,
    )
    for line in found:
        print(f"tfforge: the source tree disagrees with the recipe: {line}", file=sys.stderr)
    if found:
        return 1
    print(
        f"tfforge: the source tree matches the recipe (target {opts.target}, configs "
        f"{', '.join(opts.config) or 'none'}, bazel {opts.bazel or 'not pinned here'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
