"""Property tests of the structured inputs tfforge reads besides tfforge.toml: host snapshots,
cpuinfo texts, records read back (rebuild.json through verify's reproducible check). Whatever
the input, the answer is a value or one ConfigError line naming the file; never a traceback,
never a path outside builds/, never a wait on a FIFO.

Found cases they cover: 5,000-digit values and deep nesting in snapshots (tracebacks), a
cpuinfo whose processor entries differ getting the first entry's flags, a tfforge.json id that
climbs out of builds/ making verify report `reproducible: pass` from a planted record.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tfforge.docker import rebuild
from tfforge.errors import ConfigError
from tfforge.files import parse_json, read_json_record
from tfforge.host import cpu

SETTINGS = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**4300, max_value=10**4400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
)
json_values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4)
)
FIELDS = ["schema", "name", "vendor", "model_name", "arch", "flags", "features",
          "physical_cores", "logical_cpus"]  # fmt: skip


def _one_line_error(exc: ConfigError, where: str) -> None:
    assert "\n" not in str(exc)
    assert where in str(exc)
    assert len(str(exc)) < 600


def _snapshot_text(doc: dict) -> str:
    """JSON text of doc, integers of any length included (written with the digit limit off)."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps(doc)
    finally:
        sys.set_int_max_str_digits(limit)


@SETTINGS
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=9))
@example({"schema": "tfforge-host/1", "flags": ["avx2"], "physical_cores": 10**5000})
@example({"schema": "tfforge-host/1", "flags": ["sse2"], "name": "\ud800\x1b[2J"})
def test_a_snapshot_is_a_host_or_one_error_line(doc):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.json"
        path.write_text(_snapshot_text(doc))
        try:
            host = cpu.load_host(path)
        except ConfigError as exc:
            _one_line_error(exc, str(path))
            return
    assert host.physical_cores is None or 0 <= host.physical_cores <= cpu.MAX_COUNT
    assert len(host.name) <= cpu.MAX_TEXT and len(host.model_name) <= cpu.MAX_TEXT


@SETTINGS
@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["[", '{"a":']))
@example(100_000, "[")
def test_deep_nesting_is_one_error_line(depth, opener):
    closer = "]" if opener == "[" else "}"
    text = opener * depth + "1" + closer * depth
    try:
        parse_json(text, "deep.json")
    except ConfigError as exc:
        _one_line_error(exc, "deep.json")


FLAGS = ["fpu", "sse2", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "bmi2"]


@SETTINGS
@given(st.lists(st.sets(st.sampled_from(FLAGS), min_size=1), min_size=1, max_size=6))
@example([{"fpu", "sse2", "avx2", "avx512f"}, {"fpu", "sse2", "avx2"}])
def test_cpuinfo_gets_only_the_flags_every_processor_has(blocks):
    text = "\n\n".join(
        f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: x\nflags\t\t: "
        + " ".join(sorted(flags))
        for i, flags in enumerate(blocks)
    )
    try:
        host = cpu.parse_cpuinfo(text, name="h", source="h.cpuinfo")
    except ConfigError as exc:
        _one_line_error(exc, "h.cpuinfo")
        assert not frozenset.intersection(*map(frozenset, blocks))
        return
    assert set(host.flags_raw) == set.intersection(*blocks)


ids = st.one_of(
    st.text(alphabet=st.sampled_from("0123456789abcdef.-/_x"), max_size=40),
    st.sampled_from(["../planted", "../../tmp/planted", "/tmp/planted", "..", "."]),
    st.integers(),
)


@SETTINGS
@given(ids)
@example("../planted")
def test_verify_reads_rebuild_records_only_inside_builds(build_id):
    """A record planted outside builds/ (or a FIFO in its place) is never read or waited on."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        builds = root / "project" / "builds"
        builds.mkdir(parents=True)
        sha = "a" * 64
        record = {"identical": True, "sha256": {"original": sha}, "vary": {}}
        for place in (root / "planted", root / "project" / "planted", Path(tmp) / "tmp"):
            place.mkdir(parents=True, exist_ok=True)
            (place / rebuild.RECORD).write_text(json.dumps(record))
        said = rebuild.status({"id": build_id}, sha, builds)
    if said["rebuild"] == "identical":
        assert (builds / str(build_id)).resolve().parent == builds.resolve()


def test_a_fifo_in_place_of_a_record_is_refused_not_waited_on(tmp_path):
    builds = tmp_path / "builds"
    folder = builds / "2.21.0-haswell-0123456789ab"
    folder.mkdir(parents=True)
    os.mkfifo(folder / rebuild.RECORD)
    said = rebuild.status({"id": folder.name}, "a" * 64, builds)
    assert said["rebuild"] == "none"
    assert "not a regular file" in said["summary"]


def test_records_read_back_are_json_objects(tmp_path):
    path = tmp_path / "build.json"
    for text, needle in (("[1]", "not a JSON object"), ("9" * 5000, "not usable JSON"),
                         ("[" * 100000, "nested too deeply")):  # fmt: skip
        path.write_text(text)
        try:
            read_json_record(path)
        except ConfigError as exc:
            _one_line_error(exc, str(path))
            assert needle in str(exc)
        else:
            raise AssertionError(text[:20])


toml_values = st.one_of(
    st.integers(min_value=4301, max_value=6000).map(lambda n: "9" * n),
    st.integers(min_value=1, max_value=5000).map(lambda n: "[" * n + "1" + "]" * n),
    st.integers(min_value=1, max_value=3000).map(lambda n: "{a=" * n + "1" + "}" * n),
    st.text(max_size=40).map(json.dumps),
)


@SETTINGS
@given(st.sampled_from(["serve_port", "publish_timeout", "tf_version", "unknown_key"]), toml_values)
@example("serve_port", "9" * 5000)
def test_tfforge_toml_is_settings_or_one_error_line(key, value):
    """The same failure set for tfforge.toml, read by the options layer (settings.py)."""
    from tfforge import settings

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tfforge.toml"
        path.write_text(f"[tfforge]\n{key} = {value}\n")
        try:
            settings.read_config_file(path)
        except ConfigError as exc:
            _one_line_error(exc, "tfforge.toml")
