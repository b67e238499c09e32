"""Reading wheels: crafted bad wheels each fail with their own reason."""

from __future__ import annotations

import zipfile
from pathlib import Path

import elf_samples as samples
import pytest

from tfforge.errors import ConfigError
from tfforge.wheel import read as wheel


def test_sound_wheel_has_no_problems(tmp_path):
    w = samples.make_wheel(
        tmp_path, files={"demo/__init__.py": b"x = 1\n", "demo/data.bin": bytes(range(256)) * 100}
    )
    assert wheel.structure_problems(w) == []
    c = wheel.check(w)
    assert c.facts.name == "demo" and str(c.facts.version) == "1.0"
    assert c.facts.dist_info == "demo-1.0.dist-info" and c.facts.members == 5
    assert c.facts.wheel_tags == {"cp311-cp311-linux_x86_64"}


def test_wrong_record_hash(tmp_path):
    w = samples.make_wheel(
        tmp_path,
        files={"demo/__init__.py": b"x = 1\n"},
        record_override={"demo/__init__.py": f"{samples.record_hash(b'y')},6"},
    )
    problems = wheel.structure_problems(w)
    assert len(problems) == 1
    assert problems[0].startswith("RECORD hash mismatch for demo/__init__.py")


def test_wrong_record_size(tmp_path):
    data = b"x = 1\n"
    w = samples.make_wheel(
        tmp_path,
        files={"demo/__init__.py": data},
        record_override={"demo/__init__.py": f"{samples.record_hash(data)},99"},
    )
    assert wheel.structure_problems(w) == [
        "RECORD size mismatch for demo/__init__.py (RECORD 99, file 6)"
    ]


def test_unusable_record_hash_and_size_are_problems_not_crashes(tmp_path):
    # shake_* digests have no fixed length; a size must be a byte count
    w = samples.make_wheel(
        tmp_path,
        files={"demo/__init__.py": b"x = 1\n"},
        record_override={"demo/__init__.py": "shake_128=abc,6"},
    )
    assert any(
        "RECORD uses hash 'shake_128' for demo/__init__.py" in p
        for p in wheel.structure_problems(w)
    )
    data = b"x = 1\n"
    w = samples.make_wheel(
        tmp_path / "b",
        files={"demo/__init__.py": data},
        record_override={"demo/__init__.py": f"{samples.record_hash(data)},six"},
    )
    assert "RECORD size 'six' of demo/__init__.py is not a byte count" in wheel.structure_problems(
        w
    )


def test_path_traversal_member(tmp_path):
    w = samples.make_wheel(
        tmp_path, files={"demo/__init__.py": b"", "demo/../../evil.pth": b"import os\n"}
    )
    problems = wheel.structure_problems(w)
    assert "unsafe member path 'demo/../../evil.pth': '..' in path" in problems


def test_absolute_member_and_symlink_outside(tmp_path):
    w = samples.make_wheel(
        tmp_path,
        files={"demo/__init__.py": b"", "/etc/evil": b"x"},
        symlinks={"demo/link": "../../../etc/passwd"},
    )
    problems = wheel.structure_problems(w)
    assert "unsafe member path '/etc/evil': absolute path" in problems
    assert any(p.startswith("unsafe member path 'demo/link': a symlink") for p in problems)


def test_a_symlink_is_refused_even_when_it_points_inside(tmp_path):
    """A link inside the wheel is one step of a chain (q -> .., r -> q/../..) that climbs out;
    installers write links as files at best, so no link is a member."""
    w = samples.make_wheel(
        tmp_path, files={"demo/__init__.py": b"", "demo/a.py": b""}, symlinks={"demo/b.py": "a.py"}
    )
    assert any("'demo/b.py': a symlink" in p for p in wheel.structure_problems(w))


def test_truncated_zip_is_unusable_input(tmp_path):
    w = samples.make_wheel(tmp_path, files={"demo/__init__.py": b"x" * 5000})
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="truncated or damaged zip"):
        wheel.structure_problems(w)


def test_corrupt_member_data_is_a_problem(tmp_path):
    payload = bytes(range(256)) * 400
    w = samples.make_wheel(tmp_path, files={"demo/blob.bin": payload})
    data = bytearray(w.read_bytes())
    with zipfile.ZipFile(w) as z:
        info = z.getinfo("demo/blob.bin")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 10, start + 40):
        data[i] ^= 0xFF  # damage the deflate stream
    w.write_bytes(bytes(data))
    problems = wheel.structure_problems(w)
    assert any(p.startswith("member demo/blob.bin cannot be read") for p in problems)


def test_mismatched_filename_tags(tmp_path):
    w = samples.make_wheel(
        tmp_path,
        tag="cp312-cp312-manylinux_2_17_x86_64",
        wheel_tag="cp311-cp311-manylinux_2_17_x86_64",
    )
    assert wheel.structure_problems(w) == [
        "file name tags (cp312-cp312-manylinux_2_17_x86_64) differ from WHEEL Tag lines "
        "(cp311-cp311-manylinux_2_17_x86_64)"
    ]


def test_metadata_version_and_dist_info_must_match_file_name(tmp_path):
    w = samples.make_wheel(
        tmp_path, version="1.0", filename="demo-2.0-cp311-cp311-linux_x86_64.whl"
    )
    problems = wheel.structure_problems(w)
    assert "demo-1.0.dist-info does not match the file name's demo 2.0" in problems
    assert "METADATA Version 1.0 differs from the file name's 2.0" in problems


def test_record_must_list_every_member(tmp_path):
    w = samples.make_wheel(tmp_path, extra={"demo/sneaky.py": b"print('hi')\n"})
    assert wheel.structure_problems(w) == ["1 member(s) not in RECORD: demo/sneaky.py"]


def test_not_a_wheel_at_all(tmp_path):
    txt = tmp_path / "demo-1.0-py3-none-any.whl"
    txt.write_text("hello")
    with pytest.raises(ConfigError, match="not a zip archive"):
        wheel.structure_problems(txt)
    with pytest.raises(ConfigError, match="is not a wheel file name"):
        wheel.structure_problems(Path(__file__))
    with pytest.raises(ConfigError, match="does not exist"):
        wheel.structure_problems(tmp_path / "nope-1.0-py3-none-any.whl")


def test_missing_metadata_files(tmp_path):
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("demo/__init__.py", "")
    assert wheel.structure_problems(path) == ["expected one .dist-info folder, found 0"]


def test_extraction_hands_over_elf_libraries_largest_first(tmp_path):
    small = b"\x7fELF" + b"\0" * 100
    big = b"\x7fELF" + b"\1" * 5000
    w = samples.make_wheel(
        tmp_path / "w",
        files={
            "demo/__init__.py": b"",
            "demo/libsmall.so": small,
            "demo/libbig.so.2": big,
            "demo/notelf.so": b"text, not ELF",
        },
    )
    seen = []
    out = tmp_path / "x"
    out.mkdir()
    c = wheel.check(w, extract_dir=out, on_library=lambda m, p: seen.append((m, p.read_bytes())))
    assert not c.problems
    assert [m for m, _ in seen] == ["demo/libbig.so.2", "demo/libsmall.so"]
    assert seen[0][1] == big
    assert len(list(out.iterdir())) == 2  # the non-ELF .so was not kept
