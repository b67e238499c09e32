"""Options: one written order of precedence (defaults -> tfforge.toml -> TFFORGE_* -> command
line), typed results, and one error naming the exact origin for every bad value.

The property tests feed every declared option generated hostile values through the three ways
in (a TFFORGE_* variable, a tfforge.toml key, a command-line flag): the result is the option's
typed value or one ConfigError naming where the value came from, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from enum import StrEnum
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tfforge import settings
from tfforge.errors import ConfigError, Origin
from tfforge.options import declared, generate, parse
from tfforge.options.declared import Option

OPTIONS = list(declared.declarations().options.values())
SETTABLE = [o for o in OPTIONS if o.config]
PROPERTY = hsettings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def resolve(command: str, given: dict | None = None, *, root: Path, env: dict | None = None):
    return settings.resolve(command, given or {}, root=root, environ=env or {})


# ---- precedence and origins ------------------------------------------------------------------
def test_precedence_and_where_each_value_came_from(tmp_path):
    opts = resolve("detect", root=tmp_path)
    assert opts.match_gcc_version == "12.2.0" and opts.origin("match_gcc_version").kind == "default"
    (tmp_path / "tfforge.toml").write_text('[tfforge]\nmatch_gcc_version = "11.4.0"\n')
    opts = resolve("detect", root=tmp_path)
    assert opts.match_gcc_version == "11.4.0"
    assert opts.origin("match_gcc_version") == Origin(
        "file", "tfforge.toml key 'match_gcc_version'"
    )
    env = {"TFFORGE_MATCH_GCC_VERSION": "10.5.0", "TFFORGE_TF_PROBE_TIMEOUT": "5"}
    opts = resolve("detect", root=tmp_path, env=env)
    assert (opts.match_gcc_version, opts.tf_probe_timeout) == ("10.5.0", 5.0)
    assert opts.origin("match_gcc_version") == Origin("env", "TFFORGE_MATCH_GCC_VERSION")
    opts = resolve("detect", {"gcc_version": "9.4.0", "cpuinfo": None}, root=tmp_path, env=env)
    assert opts.match_gcc_version == "9.4.0" and opts.tf_probe_timeout == 5.0
    assert opts.where("match_gcc_version") == "--gcc-version" and opts.given("match_gcc_version")
    assert opts.cpuinfo is None and not opts.given("cpuinfo")


def test_gcc_version_is_two_options_with_one_flag_spelling(tmp_path):
    """detect/match --gcc-version: the GCC targets are recommended for (default 12.2.0);
    render/build/matrix --gcc-version: the GCC the image installs (default: the recipe's)."""
    detect = resolve("detect", {"gcc_version": "13.2.0"}, root=tmp_path)
    assert detect.match_gcc_version == "13.2.0"
    build = resolve("build", {"gcc_version": "12.2.0", "mkl": True, "avx2": True}, root=tmp_path)
    assert build.spec.build_gcc_version == "12.2.0"
    assert build.spec.mkl and build.spec.features == ("avx2",)
    assert resolve("render", root=tmp_path).spec.build_gcc_version is None
    env = {"TFFORGE_BUILD_GCC_VERSION": "13.3.0"}
    assert resolve("detect", root=tmp_path, env=env).match_gcc_version == "12.2.0"
    assert resolve("render", root=tmp_path, env=env).spec.build_gcc_version == "13.3.0"
    with pytest.raises(ConfigError, match="TFFORGE_GCC_VERSION: it is two options now"):
        resolve("render", root=tmp_path, env={"TFFORGE_GCC_VERSION": "12.2.0"})
    (tmp_path / "tfforge.toml").write_text('[tfforge]\ngcc_version = "12.2.0"\n')
    with pytest.raises(ConfigError, match="key 'gcc_version'.*build_gcc_version.*rename it"):
        resolve("detect", root=tmp_path)


def test_feature_flags_and_repeated_flags_become_one_list(tmp_path):
    opts = resolve(
        "render", {"sse4_2": True, "avx2": True, "feature": ["sha_ni"], "host": []}, root=tmp_path
    )
    assert opts.spec.features == ("sse4_2", "avx2", "sha_ni")
    assert opts.spec.hosts == () and opts.spec.origin("features").where == "--feature"


def test_matrix_reads_the_spec_group_whole_with_flags_only_where_declared(tmp_path):
    (tmp_path / "tfforge.toml").write_text('[tfforge]\nclang_version = "18.1.3"\n')
    opts = resolve("matrix", {"hosts": "hosts/", "tf_version": "2.20.0,2.21.0"}, root=tmp_path)
    assert opts.matrix_tf_versions == ("2.20.0", "2.21.0")
    assert opts.spec.tf_version == "2.21.0" and opts.spec.clang_version == "18.1.3"
    with pytest.raises(TypeError, match="no flags"):
        resolve("matrix", {"hosts": "h", "clang_version": "18"}, root=tmp_path)


# ---- bad configuration files and variables ---------------------------------------------------
def test_unknown_key_bad_toml_and_deep_nesting(tmp_path):
    cfg = tmp_path / "tfforge.toml"
    cfg.write_text("[tfforge]\nsmoke_batc = 3\n")
    with pytest.raises(
        ConfigError, match="unknown option 'smoke_batc' \\(did you mean 'smoke_batch'"
    ):
        resolve("smoke", {"wheel": "w"}, root=tmp_path)
    cfg.write_text("[tfforge\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve("detect", root=tmp_path)
    cfg.write_text("[tfforge]\ntarget = " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        resolve("detect", root=tmp_path)
    cfg.write_text('[tfforge]\ntarget = [["haswell"]]\n')
    with pytest.raises(
        ConfigError, match="tfforge.toml key 'target' a list of 1: must be a string"
    ):
        resolve("detect", root=tmp_path)  # the whole file is checked, not only detect's options


@pytest.mark.parametrize("text", ["--5", "-+5", "5x", "", "٣", "1" * 4300, "0x10", "1_000"])
def test_a_malformed_whole_number_is_one_config_error(tmp_path, text):
    with pytest.raises(ConfigError, match="^TFFORGE_SMOKE_BATCH .*: not a whole number") as exc:
        resolve("smoke", {"wheel": "w"}, root=tmp_path, env={"TFFORGE_SMOKE_BATCH": text})
    assert exc.value.option == "smoke_batch" and len(str(exc.value)) < 200


@pytest.mark.parametrize("text", ["1e300", "nan", "inf", "-inf", "0", "1e999", "604801"])
def test_timeouts_are_finite_and_bounded(tmp_path, text):
    with pytest.raises(ConfigError) as exc:
        resolve("build", {"timeout": text}, root=tmp_path)
    assert str(exc.value).startswith(f"--timeout {text!r}: ")
    assert exc.value.origin == Origin("flag", "--timeout")


def test_numbers_in_range_are_typed(tmp_path):
    opts = resolve("build", {"timeout": "1.5e3"}, root=tmp_path, env={"TFFORGE_DEBUG": "yes"})
    assert opts.build_timeout == 1500.0 and opts.debug is True
    (tmp_path / "tfforge.toml").write_text("[tfforge]\nserve_port = 65535\n")
    assert resolve("serve", root=tmp_path).serve_port == 65535


def test_tfforge_toml_is_read_from_the_project_root(tmp_path, monkeypatch):
    """TFFORGE_ROOT names the project: its tfforge.toml counts, not the working directory's."""
    (tmp_path / "tfforge.toml").write_text("[tfforge]\nserve_port = 9999\n")
    monkeypatch.setenv("TFFORGE_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)
    assert settings.resolve("serve", {}, environ={}).serve_port == 9999


def test_every_task_resolves_to_its_generated_class_with_the_declared_defaults(tmp_path):
    for name, cmd in declared.declarations().commands.items():
        given = {p.flag: "x" for p in cmd.params if declared.option(p.option).positional}
        if name == "cache":
            given["action"] = "serve"
        opts = resolve(name, given, root=tmp_path)
        cls = declared.options_class(name)
        assert type(opts) is cls and cls.__module__ == f"tfforge.options.typed.{name}"
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
        for f in dataclasses.fields(cls):
            assert f.kw_only, (name, f.name)
        for opt in declared.received(cmd):
            value = getattr(opts.spec if opt.group else opts, opt.name)
            if not opt.positional:
                assert value == parse.default(opt), (name, opt.name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            opts.json = True  # type: ignore[misc]


def test_the_typed_modules_are_generated_from_the_current_declarations():
    """tfforge/options/typed/ is what `python -m tfforge.options.generate` writes now."""
    assert generate.stale() == []
    assert set(generate.sources()) == {p.name for p in generate.TARGET.glob("*.py")}


def test_the_refusals_docs_options_md_shows_are_the_real_ones(tmp_path):
    """docs/explanation/options.md quotes three error lines: each is what tfforge prints."""
    doc = Path(__file__).resolve().parents[2] / "docs" / "explanation" / "options.md"
    text = doc.read_text()
    with pytest.raises(ConfigError) as flag:
        resolve("build", {"timeout": "1e300"}, root=tmp_path)
    with pytest.raises(ConfigError) as env:
        resolve("smoke", {"wheel": "w"}, root=tmp_path, env={"TFFORGE_SMOKE_BATCH": "x"})
    (tmp_path / "tfforge.toml").write_text('[tfforge]\ncompiler = "icc"\n')
    with pytest.raises(ConfigError) as toml:
        resolve("render", root=tmp_path)
    for exc in (flag, env, toml):
        assert f"error: {exc.value}\n" in text


# ---- property tests: every option, every way in ------------------------------------------------
def check_typed(opt: Option, value: object) -> None:
    """`value` is a proper value of `opt`'s declared type."""
    if value is None:
        assert opt.optional, opt.name
        return
    kind = opt.type
    if kind == "bool":
        assert isinstance(value, bool)
    elif kind in ("int", "float"):
        assert isinstance(value, int if kind == "int" else float) and not isinstance(value, bool)
        assert opt.range and math.isfinite(value) and opt.range.min <= value <= opt.range.max
    elif kind == "list":
        assert isinstance(value, tuple) and all(isinstance(i, str) for i in value)
    elif kind == "path":
        assert isinstance(value, Path)
    elif kind == "choice":
        assert isinstance(value, StrEnum) and value.value in opt.choices
    elif kind == "version":
        assert isinstance(value, str) and re.fullmatch(r"[0-9]{1,2}(\.[0-9]{1,2}){0,2}", value)
    else:
        assert isinstance(value, str)


def check_refusal(exc: ConfigError, opt: Option, origin: Origin) -> None:
    assert exc.option == opt.name and exc.origin == origin
    message = str(exc)
    assert message.startswith(f"{origin} ") and "\n" not in message
    assert len(message) < 400, message  # echoed values are cut


HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789+-.eE_xn ", max_size=30),
    st.sampled_from(["nan", "inf", "-inf", "1e300", "1e-300", "٣", "１２", "true", "off", ""]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.integers(min_value=4000, max_value=5000).map(lambda n: "9" * n),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(max_codepoint=0x9F), min_size=1, max_size=20),
    st.just("x" * 5000),
)


@PROPERTY
@given(opt=st.sampled_from(SETTABLE), text=HOSTILE_TEXT)
def test_any_text_from_the_environment_is_typed_or_one_error(opt, text):
    origin = Origin("env", opt.env)
    try:
        value = parse.value(opt, text, origin)
    except ConfigError as exc:
        check_refusal(exc, opt, origin)
    else:
        check_typed(opt, value)


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes (which TOML reads too), and DEL escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_text(value: object) -> str:
    """A TOML literal for a test value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_string(k)} = {toml_text(v)}" for k, v in value.items()) + "}"


TOML_SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
    st.sampled_from(["12.2.0", "gcc", "graph", "bazelisk", "2.21.0", "a,b", "1e300"]),
)
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=3), inner, max_size=3),
    ),
    max_leaves=8,
)


@PROPERTY
@given(opt=st.sampled_from(SETTABLE), value=TOML_VALUES)
def test_any_tfforge_toml_value_is_typed_or_one_error(tmp_path, opt, value):
    (tmp_path / "tfforge.toml").write_text(f"[tfforge]\n{opt.name} = {toml_text(value)}\n")
    origin = Origin("file", f"tfforge.toml key '{opt.name}'")
    try:
        table = settings.read_config_file(tmp_path / "tfforge.toml")
    except ConfigError as exc:
        check_refusal(exc, opt, origin)
    else:
        check_typed(opt, parse.value(opt, table[opt.name], origin))


FLAGGED = [
    (cmd.name, p)
    for cmd in declared.declarations().commands.values()
    for p in cmd.params
    if p.feature is None
]


@PROPERTY
@given(where=st.sampled_from(FLAGGED), text=HOSTILE_TEXT)
def test_any_command_line_value_is_typed_or_one_error(tmp_path, where, text):
    name, param = where
    opt = declared.option(param.option)
    value: object = [text] if opt.repeat else (text or "x") if opt.positional else text
    if opt.type == "bool":
        value = True  # invoke gives a boolean flag no text
    given = {param.flag: value}
    for p in declared.command(name).params:  # every other positional, valid
        if declared.option(p.option).positional and p.flag not in given:
            given[p.flag] = "serve" if p.option == "cache_action" else "x"
    try:
        opts = settings.resolve(name, given, root=tmp_path, environ={})
    except ConfigError as exc:
        check_refusal(exc, opt, Origin("flag", opt.cli))
    else:
        check_typed(opt, getattr(opts.spec if opt.group else opts, opt.name))
