"""build.json: everything that decides a build's bytes, as one canonical JSON document whose
sha256 is the build id. The spec's document is built here from a BuildSpec; the id and the
docker command are added by render (they follow from the document)."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import archspec

from tfforge import __version__, resources
from tfforge.build import toolchains
from tfforge.files import sha256_file
from tfforge.host import isa

if TYPE_CHECKING:
    from tfforge.build.spec import BuildSpec

SCHEMA = "tfforge-build/1"
WHEEL_NAME = "tensorflow_cpu"


def canonical_json(doc: object) -> str:
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


@cache
def template_sha256() -> str:
    """The Dockerfile template decides bytes too, so its digest is part of the build id."""
    return sha256_file(resources.template_path())


def clone_check_source() -> str:
    """The standalone checker the image runs (tfforge/build/clone_check.py, stdlib only)."""
    return Path(__file__).with_name("clone_check.py").read_text()


@cache
def clone_check_sha256() -> str:
    return hashlib.sha256(clone_check_source().encode()).hexdigest()


def _toolchain(s: BuildSpec) -> dict[str, Any]:
    pins = toolchains.pins()
    tc: dict[str, Any] = {
        **s.toolchain.as_dict(),
        "bazel_provider": s.bazel_provider,
        "bazel_version": s.bazel_version,
    }
    if s.bazel_provider == "bazelisk":
        tc["bazelisk"] = {
            "version": pins.bazelisk.version,
            "url": pins.bazelisk.url,
            "sha256": pins.bazelisk.sha256,
        }
    elif s.bazel_provider == "debian":
        tc["debian_package"] = pins.debian_bazel_package
    return tc


def _spec(s: BuildSpec) -> dict[str, Any]:
    t = s.target
    return {
        "tf_version": s.tf_version,
        "python_version": s.python_version,
        "target": t.as_dict(),
        "features_requested": sorted(t.requested, key=isa.sort_key),
        "mkl": s.mkl,
        "compiler": s.compiler,
        "gcc_version": s.gcc_version,
        "clang_version": s.clang_version,
        "base_image": s.base_image,
        "base_image_pinned": s.base_image_pinned,
        "base_image_suite": s.base_image_choice.suite if s.base_image_choice else None,
        "source": s.source.as_dict(),
        "bazel_provider": s.bazel_provider,
        "bazel_args": list(s.bazel_args),
        "remote_cache": s.remote_cache,
        "source_date_epoch": s.source_date_epoch,
        **({"remote_executor": s.remote_executor} if s.remote_executor else {}),
        **({"runtime_floor": s.floor.request} if s.floor else {}),
    }


def _derived(s: BuildSpec) -> dict[str, Any]:
    t = s.target
    return {
        "local_version": s.local_label,
        "version": s.version,
        "wheel_name": WHEEL_NAME,
        "features": sorted(t.features, key=isa.sort_key),
        "implied_features": sorted(t.implied, key=isa.sort_key),
        "target_name": t.name,
        "psabi_level": isa.level_name(isa.psabi_level(t.features)),
        "copts": list(s.copts),
        "host_copts": list(s.copts),
        "cc_opt_flags": s.cc_opt_flags,
        "flags_from": t.flags_from,
        "threading": "OpenMP (oneDNN, --config=mkl; set OMP_NUM_THREADS)"
        if s.mkl
        else "TensorFlow's Eigen thread pool",
        "compiler_packages": list(s.compiler_packages),
        "compiler_required": s.compiler_check[1],
        "compiler_story": s.compiler_story,
        "official_route": s.official_route,
        "isa_note": s.isa_note.as_dict(),
        "repo_env": list(s.repo_env),
        "configs": list(s.configs),
        "apt_packages": list(s.apt_packages),
        **({"runtime": s.floor.as_dict()} if s.floor else {}),
    }


def document(s: BuildSpec) -> dict[str, Any]:
    """build.json without the id and the docker command (those follow from this)."""
    return {
        "schema": SCHEMA,
        "spec": _spec(s),
        "derived": _derived(s),
        "recipe": {
            "evidence": {k: e.as_dict() for k, e in s.toolchain.evidence.items()},
            "evidence_levels": list(toolchains.EVIDENCE_LEVELS),  # strongest first
            "secondary_only": s.toolchain.secondary_only,
            "configure_unset": toolchains.pins().configure_unset,
        },
        "toolchain": _toolchain(s),
        "tools": {
            "tfforge": __version__,
            "archspec": archspec.__version__,
            "dockerfile_template_sha256": template_sha256(),
            "clone_check_sha256": clone_check_sha256(),
        },
        "commands": {
            "workdir": s.src_dir,
            "toolchain_env": dict(s.toolchain_env),
            "configure": {"env": dict(s.configure_env), "argv": ["./configure"]},
            "clone_check": list(s.clone_check_argv),
            "bazel": list(s.bazel_command),
            "collect": list(s.collect_command),
        },
    }


def build_id(s: BuildSpec) -> str:
    """<tf version>-<local label>-<12 hex of sha256 over the canonical document>."""
    digest = hashlib.sha256(canonical_json(document(s)).encode()).hexdigest()
    return f"{s.tf_version}-{s.local_label}-{digest[:12]}"
