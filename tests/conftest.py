"""Shared test helpers.

Integration tests use `need(...)`: outside CI a missing external part (Docker engine, TF wheel,
qemu) skips with the reason; under CI (CI=true) it fails, because CI must exercise the real parts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
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
