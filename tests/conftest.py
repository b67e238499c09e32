"""Shared test helpers.

Integration tests use `need(...)`: outside CI a missing external part (Docker engine, TF wheel,
qemu) skips with the reason; under CI (CI=true) it fails, because CI must exercise the real parts.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SRC = "/home/builder/src"  # where the template copies a local source inside the image
# The fixture workspaces build with their own rules_cc and rules_java (no Bazel registry here).
FIXTURE_RULES = (
    f"--bazel-arg=--override_repository=rules_cc={SRC}/third_party/rules_cc",
    f"--bazel-arg=--override_repository=rules_java={SRC}/third_party/rules_java",
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(ok: bool, reason: str) -> None:
    """Skip outside CI, fail under CI, when a real part the test claims is missing."""
    if not ok:
        if IN_CI:
            pytest.fail(f"required under CI: {reason}")
        pytest.skip(reason)


def need_tool(name: str) -> str:
    path = shutil.which(name)
    need(path is not None, f"{name} is not installed")
    return path


BASE_IMAGE = "local/bookworm:base"  # made by scripts/make-base-image.sh


def need_engine(image: str = BASE_IMAGE):
    """The docker client when an engine holding `image` answers; `need` fails/skips otherwise."""
    from tfforge.docker import client as engine
    from tfforge.errors import TfforgeError

    try:
        client = engine.resolve_client()
        engine.engine_facts(client)
        engine.image_facts(client, [image])
    except TfforgeError as exc:
        need(False, f"Docker engine with {image} (bash scripts/make-base-image.sh): {exc}")
    return client


def invoke(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run `invoke ARGS` the way a user does, from the project root (or cwd)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(ROOT), *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(autouse=True)
def _no_secrets_across_tests():
    """The output layer's secrets belong to one run: each test starts and ends without any."""
    from tfforge import text

    text.forget_secrets()
    yield
    text.forget_secrets()


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> CliResult:
    """Run `tfforge ARGS` in this process, as the console script does (the unit tier's way:
    no interpreter start-up; `invoke(...)` runs a real process). The environment and working
    folder are restored afterwards."""
    from tfforge.cli import program

    out, err, code = io.StringIO(), io.StringIO(), 0
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(env or {})
    os.chdir(cwd or ROOT)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                program().run(["tfforge", *args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
    return CliResult(code, out.getvalue(), err.getvalue())


def options_for(command: str, **given: Any):
    """Task `command`'s typed options for these flags (as invoke passes them: text, bools,
    lists), from the real cascade: the project's tfforge.toml and the environment count."""
    from tfforge import settings

    return settings.resolve(command, given)


# ---- build specs as the tests ask for them ---------------------------------------------------
# The tests' GCC: bookworm's, fixed so that build ids and golden files do not follow the
# release recipe's default.
TEST_GCC = "12.2.0"


def spec_options(command: str = "render", **kw: Any):
    """The spec options of `invoke render` with these flags, through the real cascade and
    parser (no tfforge.toml, no TFFORGE_* but what `kw` sets). Keys are flags (gcc_version,
    feature, host, bazel_arg) or option names (features, hosts, bazel_args, build_gcc_version);
    a spec option without a flag (source_date_epoch) is set as its TFFORGE_* variable."""
    from tfforge import settings
    from tfforge.options import declared

    cmd = declared.command(command)
    flags = {p.flag for p in cmd.params}
    given: dict[str, Any] = {}
    environ: dict[str, str] = {}
    for key, value in {"target": "haswell", "gcc_version": TEST_GCC, **kw}.items():
        flag = key if key in flags else declared.flag_of(cmd, key)
        if flag is not None:
            given[flag] = list(value) if isinstance(value, tuple) else value
        else:
            environ[declared.option(key).env] = str(value)
    # tests/fixtures holds no tfforge.toml
    return settings.resolve(command, given, root=FIXTURES, environ=environ).spec


def make_spec(**kw: Any):
    """A BuildSpec from `spec_options(**kw)` (default: --target haswell --gcc-version 12.2.0)."""
    from tfforge.build import request

    return request.make(spec_options(**kw))


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every path under folder with its bytes (a link: its target; a folder: b""), to compare a
    tree before and after."""
    if not folder.exists():
        return {}
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = os.readlink(p).encode()
        elif p.is_file():
            out[str(p.relative_to(folder))] = p.read_bytes()
        else:
            out[str(p.relative_to(folder))] = b""
    return out


def checks_by_name(doc: dict) -> dict[str, dict]:
    """A verify --json document's checks by name."""
    return {c["name"]: c for c in doc["checks"]}


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def pytest_collection_modifyitems(config, items):
    """The tree is the tier: tests/integration/ is marked `integration`; tests/unit/ may not be."""
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier == "integration":
            item.add_marker(pytest.mark.integration)
        elif item.get_closest_marker("integration"):
            raise pytest.UsageError(f"{item.nodeid}: integration tests live in tests/integration/")
