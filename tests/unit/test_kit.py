"""Kits: the content-addressed store, kit.json as outside input, `kit check` (missing, corrupt,
extra), .deb control reading and the flat repository, the repository-rule query, mirrors,
source tars; and what the rendered Dockerfile does for kits."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import FIXTURES
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tfforge.errors import ConfigError
from tfforge.kit import debs, external, layout, manifest, mirror, sources
from tfforge.kit.manifest import Entry, Manifest
from tfforge.kit.store import Store

FAST = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- store ---------------------------------------------------------------------------------
def test_store_keeps_each_content_once_and_checks_expectations(tmp_path):
    store = Store(tmp_path)
    (tmp_path / "a").write_bytes(b"same")
    (tmp_path / "b").write_bytes(b"same")
    first, second = store.put(tmp_path / "a"), store.put(tmp_path / "b")
    assert first.sha256 == second.sha256 == sha(b"same")
    assert (first.added, second.added) == (True, False)
    assert store.names() == {sha(b"same")}
    assert store.path(first.sha256).read_bytes() == b"same"
    with pytest.raises(ConfigError, match="expected"):
        store.put(tmp_path / "a", expect="0" * 64)
    assert store.names() == {sha(b"same")}  # nothing half-written, no temporary left
    assert [p.name for p in store.root.iterdir()] == [sha(b"same")]
    with pytest.raises(ConfigError):
        store.path("../../etc/passwd")


# ---- kit.json ------------------------------------------------------------------------------
def make_kit(root: Path, files: dict[str, bytes], build_id: str = "2.21.0-avx2.fma-0123456789ab"):
    """A real kit: files in the store, kit.json listing them."""
    store = Store(root)
    entries = []
    for path, data in files.items():
        got = store.put_bytes(data)
        entries.append(Entry(path, got.sha256, got.size, "build", f"test {path}"))
    kit = root / build_id
    kit.mkdir(parents=True)
    (kit / manifest.MANIFEST).write_text(json.dumps(Manifest(build_id, tuple(entries)).as_dict()))
    return kit


def test_check_names_missing_corrupt_and_extra_files(tmp_path):
    kit = make_kit(tmp_path, {"Dockerfile": b"FROM x\n", "build.json": b"{}\n", "apt.lock": b""})
    good = manifest.check(kit)
    assert good.can_build and not good.missing and not good.corrupt and not good.extra
    store = Store(tmp_path)
    (store.path(sha(b"{}\n"))).chmod(0o644)
    store.path(sha(b"{}\n")).write_bytes(b"{tampered}\n")
    store.path(sha(b"")).unlink()
    (kit / "stray.txt").write_text("x")
    (store.root / ("f" * 64)).write_bytes(b"orphan")
    checked = manifest.check(kit)
    assert not checked.can_build
    assert [e.path for e, got in checked.corrupt] == ["build.json"]
    assert checked.corrupt[0][1] == sha(b"{tampered}\n")
    assert [e.path for e in checked.missing] == ["apt.lock"]
    assert checked.missing[0].asked_by == "test apt.lock"
    assert str(kit / "stray.txt") in checked.extra
    assert str(store.path("f" * 64)) in checked.extra


def test_files_another_kit_lists_are_not_extra(tmp_path):
    make_kit(tmp_path, {"Dockerfile": b"one\n"}, "a-1")
    other = make_kit(tmp_path, {"Dockerfile": b"two\n"}, "b-2")
    assert manifest.check(other).extra == ()


ENTRY = st.fixed_dictionaries(
    {
        "path": st.sampled_from(["Dockerfile", "build.json", "apt.lock", "src.tar"])
        | st.lists(
            st.text("abcz09_", min_size=1, max_size=6).map(lambda s: s + ".-+"[len(s) % 3]),
            min_size=1,
            max_size=4,
        ).map(lambda parts: "kit/" + "/".join(parts)),
        "sha256": st.binary(min_size=32, max_size=32).map(bytes.hex),
        "size": st.integers(0, 1 << 40),
        "kind": st.sampled_from(sorted(manifest.KINDS)),
        "asked_by": st.text(max_size=50),
        "name": st.text(max_size=20),
        "urls": st.lists(st.text(max_size=30), max_size=3),
    }
)


def _no_file_is_a_folder(entries: list[dict]) -> bool:
    paths = {e["path"] for e in entries}
    return not any(p.startswith(q + "/") for p in paths for q in paths)


@FAST
@given(
    st.lists(ENTRY, min_size=1, max_size=8, unique_by=lambda e: e["path"]).filter(
        _no_file_is_a_folder
    )
)
def test_manifest_round_trips(entries):
    doc = {"schema": manifest.SCHEMA, "build_id": "2.21.0-x-abc", "files": entries}
    parsed = manifest.parse(json.loads(json.dumps(doc)), "kit.json")
    again = manifest.parse(json.loads(json.dumps(parsed.as_dict())), "kit.json")
    assert again == parsed
    assert [e.path for e in parsed.files] == [e["path"] for e in entries]


HOSTILE_PATH = st.one_of(
    st.text(max_size=40),
    st.builds(lambda a, b: f"{a}/../{b}", st.text(max_size=8), st.text(max_size=8)),
    st.builds(lambda a: "/" + a, st.text(max_size=12)),
    st.builds(lambda a: "kit/" + a, st.text(max_size=20)),
    st.sampled_from(["", ".", "..", "kit/..", "kit/./x", "kit//x", "kit/x/", "src/a", "C:/x"]),
)


@FAST
@given(HOSTILE_PATH)
def test_hostile_paths_are_refused_or_stay_inside(path):
    try:
        ok = manifest.check_path(path, "kit.json: files[0]")
    except ConfigError as exc:
        assert str(exc).startswith("kit.json: files[0]: path ")
        return
    parts = ok.split("/")
    assert not ok.startswith("/") and ".." not in parts and "." not in parts and "" not in parts
    assert ok in manifest.BUILD_FILES or ok in ("src.tar", "base-image.tar") or parts[0] == "kit"


@FAST
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
        max_leaves=12,
    )
)
def test_any_json_is_a_manifest_or_one_config_error(doc):
    try:
        manifest.parse(doc, "kit.json")
    except ConfigError as exc:
        assert str(exc).startswith("kit.json")


def test_load_refuses_a_folder_without_a_kit(tmp_path):
    with pytest.raises(ConfigError, match="no kit here"):
        manifest.load(tmp_path)
    (tmp_path / "kit.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        manifest.load(tmp_path / "kit.json")


# ---- Debian packages -----------------------------------------------------------------------
def build_deb(tmp_path: Path, name: str = "tfforge-kit-test", version: str = "1:2.0-3") -> Path:
    """A real .deb made by dpkg-deb (not by tfforge)."""
    dpkg = shutil.which("dpkg-deb")
    if dpkg is None:
        pytest.skip("dpkg-deb is not installed")
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/share/doc").mkdir(parents=True)
    (root / "usr/share/doc/readme").write_text("hello\n")
    (root / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@e.org>\n"
        "Description: test package\n two lines\n"
    )
    out = tmp_path / f"{name}.deb"
    subprocess.run([dpkg, "--build", "-Zxz", str(root), str(out)], check=True, capture_output=True)
    return out


def test_control_of_a_real_deb_and_its_flat_repository(tmp_path):
    deb = build_deb(tmp_path)
    fields = debs.read(deb)
    assert fields["Package"] == "tfforge-kit-test" and fields["Version"] == "1:2.0-3"
    assert fields["Description"] == "test package\n two lines"
    data = deb.read_bytes()
    index = debs.packages_index([(deb.name, debs.control_text(data), len(data), sha(data))])
    assert f"Filename: ./{deb.name}\nSize: {len(data)}\nSHA256: {sha(data)}\n" in index
    assert index.startswith("Package: tfforge-kit-test\n")
    files = debs.apt_files("/tmp/tfforge-kit/debs")
    assert files["sources.list"] == "deb [trusted=yes] file:/tmp/tfforge-kit/debs ./\n"
    assert 'Dir::Etc::SourceList "/tmp/tfforge-kit/debs/sources.list";' in files["apt.conf"]


@FAST
@given(st.data())
def test_damaged_debs_are_one_config_error(tmp_path, data):
    real = getattr(test_damaged_debs_are_one_config_error, "_deb", None)
    if real is None:
        real = build_deb(tmp_path).read_bytes()
        test_damaged_debs_are_one_config_error._deb = real
    cut = data.draw(st.integers(0, len(real)))
    flip = data.draw(st.integers(0, len(real) - 1))
    blob = bytearray(real[:cut] if data.draw(st.booleans()) else real)
    if blob and flip < len(blob):
        blob[flip] ^= data.draw(st.integers(1, 255))
    try:
        text = debs.control_text(bytes(blob), "x.deb")
    except ConfigError as exc:
        assert str(exc).startswith("x.deb: ")
        return
    assert isinstance(text, str)


# ---- repository rules ----------------------------------------------------------------------
QUERY = """<?xml version="1.1" encoding="UTF-8" standalone="no"?>
<query version="2">
    <rule class="http_archive" location="/home/builder/src/tensorflow/workspace2.bzl:33:17"
          name="//external:com_google_absl">
        <string name="name" value="com_google_absl"/>
        <string name="generator_function" value="tf_workspace2"/>
        <string name="generator_location"/>
        <list name="urls">
            <string value="https://deb.debian.org/debian/pool/main/a/abseil/abseil.tar.gz"/>
        </list>
        <string name="sha256"
                value="abfe2897f3a30edaa74bc34365afe3c2a3cd012091a97dc7e008f7016adcd5fe"/>
    </rule>
    <rule class="http_file" location="/DEFAULT.WORKSPACE.SUFFIX:1:1" name="//external:f">
        <string name="name" value="f"/>
        <string name="integrity" value="sha256-LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564="/>
    </rule>
    <rule class="local_repository" location="/x:1:1" name="//external:local">
        <string name="name" value="local"/>
    </rule>
</query>
"""


def test_query_names_the_rule_behind_each_sha256():
    found = external.askers(QUERY, ("/home/builder/src",))
    [absl] = found["abfe2897f3a30edaa74bc34365afe3c2a3cd012091a97dc7e008f7016adcd5fe"]
    assert absl.describe() == (
        "@com_google_absl (http_archive via tf_workspace2() at tensorflow/workspace2.bzl:33:17)"
    )
    assert absl.urls == ("https://deb.debian.org/debian/pool/main/a/abseil/abseil.tar.gz",)
    assert [a.name for a in found[sha(b"foo")]] == ["f"]  # the SRI integrity, decoded
    assert len(found) == 2


@FAST
@given(st.text(max_size=300))
def test_query_output_that_is_not_xml_is_one_config_error(text):
    try:
        found = external.askers(text)
    except ConfigError:
        return
    assert isinstance(found, dict)


def test_query_with_entities_is_refused():
    bomb = '<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "aaaa">]><query>&a;</query>'
    with pytest.raises(ConfigError, match="DTD or entities"):
        external.askers(bomb)


# ---- mirrors -------------------------------------------------------------------------------
def test_mirror_layout_network_and_probes():
    assert mirror.check("http://127.0.0.1:8081/") == "http://127.0.0.1:8081"
    assert (
        mirror.via("https://github.com/a/b.tar.gz", "http://m:1")
        == "http://m:1/github.com/a/b.tar.gz"
    )
    assert mirror.via("https://x/y", "") == "https://x/y"
    assert mirror.network("http://127.0.0.1:8081") == "host"
    assert mirror.network("https://mirror.example.org") is None
    assert mirror.probes("http://127.0.0.1:8081", ["https://a/x"]) == ["127.0.0.1:8081"]
    assert mirror.probes("", ["https://a/x", "https://a/y", "http://b:81/z"]) == ["a:443", "b:81"]
    for bad in ("ftp://x", "http://u:p@x/", "http://x/?q=1", "http:// x", "x", "http://x/a b"):
        with pytest.raises(ConfigError, match="^--mirror "):
            mirror.check(bad)


@FAST
@given(st.text(max_size=60))
def test_any_mirror_text_is_a_checked_url_or_one_error(text):
    try:
        url = mirror.check(text)
    except ConfigError as exc:
        assert str(exc).startswith("--mirror ")
        return
    assert url.startswith(("http://", "https://")) and " " not in url and "@" not in url


# ---- sources -------------------------------------------------------------------------------
def test_source_tar_is_byte_stable_and_unpacks_the_same_tree(tmp_path):
    tree = tmp_path / "t"
    (tree / "a/b").mkdir(parents=True)
    (tree / "a/b/x.c").write_text("int x;\n")
    (tree / "run.sh").write_text("#!/bin/sh\n")
    (tree / "run.sh").chmod(0o755)
    (tree / "link").symlink_to("a/b/x.c")
    one, two = tmp_path / "1.tar", tmp_path / "2.tar"
    sources.tar_folder(tree, one)
    (tree / "a/b/x.c").touch()  # another mtime: the same bytes
    sources.tar_folder(tree, two)
    assert one.read_bytes() == two.read_bytes()
    out = tmp_path / "out"
    sources.unpack(one, out)
    assert (out / "a/b/x.c").read_text() == "int x;\n"
    assert (out / "run.sh").stat().st_mode & 0o111
    assert (out / "link").is_symlink() and (out / "link").read_text() == "int x;\n"


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buf.getvalue()


@FAST
@given(
    st.sampled_from(["../x", "/etc/x", "a/../../x", "ok/../../../y"])
    | st.text(min_size=1, max_size=20),
    st.sampled_from([tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]),
    st.sampled_from(["../../outside", "/etc/passwd", "inside"]),
)
def test_unpack_never_writes_outside_the_source(tmp_path_factory, name, kind, link):
    tmp = tmp_path_factory.mktemp("u")
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    archive = tmp / "s.tar"
    try:
        archive.write_bytes(_tar_with(info, b"x"))
    except (ValueError, UnicodeEncodeError, tarfile.TarError):
        return
    dest = tmp / "dest"
    with contextlib.suppress(ConfigError, OSError, tarfile.TarError):
        sources.unpack(archive, dest)
    outside = [p for p in tmp.rglob("*") if p not in (archive,) and not p.is_relative_to(dest)]
    assert outside == []
    for p in dest.rglob("*"):
        if p.is_symlink():
            assert p.resolve().is_relative_to(dest.resolve())


_PARTS = st.sampled_from(["a", "b", "y", ".", ".."])
_MEMBER = st.tuples(
    st.lists(st.sampled_from(["a", "b", "y"]), min_size=1, max_size=3).map("/".join),
    st.sampled_from([tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE]),
    st.lists(_PARTS, min_size=1, max_size=6).map("/".join),
)


@settings(FAST, max_examples=300)
@given(st.lists(_MEMBER, min_size=1, max_size=6))
@example(
    [("a", tarfile.SYMTYPE, "y/y/../.."), ("y", tarfile.SYMTYPE, "."), ("a/b", tarfile.REGTYPE, "")]
)
def test_no_chain_of_members_reaches_outside_the_source(tmp_path_factory, members):
    """Several members, each harmless alone (a link into a folder not there yet, a link to
    '.', a file under a link), must not combine into a write outside the source or a link
    that resolves outside it once the tree is complete."""
    tmp = tmp_path_factory.mktemp("chain")
    dest = tmp / "a" / "b" / "c" / "src"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link if kind == tarfile.SYMTYPE else ""
            info.size = 1 if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(b"x") if kind == tarfile.REGTYPE else None)
    archive = tmp / "s.tar"
    archive.write_bytes(buf.getvalue())
    with contextlib.suppress(ConfigError, OSError):
        sources.unpack(archive, dest)
    outside = [p for p in tmp.rglob("*") if p != archive and not p.is_relative_to(dest)]
    assert sorted(outside) == sorted([tmp / "a", tmp / "a/b", tmp / "a/b/c"])
    for p in dest.rglob("*"):
        if p.is_symlink():  # realpath: a loop of links resolves nowhere, not outside
            assert Path(os.path.realpath(p)).is_relative_to(dest.resolve()), (p, p.readlink())


def test_links_that_climb_after_a_name_are_refused_and_plain_ones_kept(tmp_path):
    """x -> y/y/../.. is inside while y is missing, outside once y -> '.' lands."""
    assert sources.link_problem("x", "y/y/../..") == "has '..' after a name"
    assert sources.link_problem("x", "../up") == "climbs above the source"
    assert sources.link_problem("a/b/x", "../../c/d.h") is None
    assert sources.link_problem("a/x", "/etc/passwd") == "is empty or absolute"


_KIT_PATH = st.sampled_from(
    ["kit/a", "kit/a/b", "kit/debs/Packages", "kit/debs/apt.conf", "kit/debs/sources.list",
     "kit/debs/sources.list.d/x", "kit/debs/x.deb", "kit/c"]
)  # fmt: skip


@settings(FAST, max_examples=80)
@given(st.lists(st.tuples(_KIT_PATH, st.booleans(), st.binary(max_size=4)), max_size=5))
def test_laying_out_a_kit_never_writes_outside_it_or_into_its_store(tmp_path_factory, extra):
    """Manifest paths that are files lay_out writes itself, a file that is also a folder, store
    entries that are symlinks to a file of the machine: checking and laying out a kit is one
    ConfigError or a build folder, and neither the outside file nor a stored file changes."""
    tmp = tmp_path_factory.mktemp("lay")
    victim = tmp / "victim.txt"
    victim.write_bytes(b"precious")
    store = Store(tmp / "kits")
    files = []
    for path, via_link, data in [(n, False, n.encode()) for n in manifest.BUILD_FILES] + extra:
        sha = hashlib.sha256(victim.read_bytes() if via_link else data).hexdigest()
        target = store.root / sha
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            if via_link:
                target.symlink_to(victim)
            else:
                target.write_bytes(data)
        size = len(victim.read_bytes() if via_link else data)
        files.append({"path": path, "sha256": sha, "size": size, "kind": "bazel"})
    (tmp / "kits/k1").mkdir(parents=True)
    (tmp / "kits/k1/kit.json").write_text(
        json.dumps({"schema": manifest.SCHEMA, "build_id": "k1", "files": files})
    )
    with contextlib.suppress(ConfigError):
        checked = manifest.check(tmp / "kits/k1")
        if checked.can_build:
            layout.lay_out(checked.manifest, store, tmp / "work")
    assert victim.read_bytes() == b"precious"
    for stored in store.root.iterdir():
        if not stored.is_symlink():
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == stored.name


def test_git_source_is_the_pinned_commit_with_its_history(tmp_path):
    """A real git repository (file://): the tag's commit is cloned and tarred with .git; a
    tag that moved to another commit is refused."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()

    def run(*args: str) -> str:
        env = {
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@e.org",
            "HOME": str(tmp_path),
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@e.org",
            "PATH": "/usr/bin:/bin",
        }
        return subprocess.run(
            [git, "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
        ).stdout.strip()

    run("init", "-q")
    (repo / "WORKSPACE").write_text("workspace(name = 'x')\n")
    run("add", ".")
    run("commit", "-qm", "one")
    run("tag", "v1")
    commit = run("rev-parse", "HEAD")
    out = tmp_path / "src.tar"
    sources.git_clone_tar(f"file://{repo}", "v1", commit, out)
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert "WORKSPACE" in names and ".git/HEAD" in names
    unpacked = tmp_path / "u"
    sources.unpack(out, unpacked)
    head = subprocess.run(
        [git, "-C", str(unpacked), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert head == commit
    from tfforge.errors import BuildError

    with pytest.raises(BuildError, match="expected 0{40}"):
        sources.git_clone_tar(f"file://{repo}", "v1", "0" * 40, tmp_path / "x.tar")


def test_lay_out_places_the_kit_as_the_build_context(tmp_path):
    """A kit with build files, a local source and a real .deb laid out as a build folder:
    apt-pins from apt.lock, src/ unpacked, the flat repository apt reads."""
    from tfforge.kit import layout

    deb = build_deb(tmp_path)
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "a.c").write_text("int a;\n")
    sources.tar_folder(tree, tmp_path / "src.tar")
    kits = tmp_path / "kits"
    store = Store(kits)
    entries = []
    for path, data in {
        "Dockerfile": b"FROM x\n",
        "build.json": b"{}\n",
        "clone_check.py": b"",
        ".dockerignore": b"*\n",
        "apt.lock": b"# archive-date: 20250101T000000Z\nzip=3.0-13\n",
        "src.tar": (tmp_path / "src.tar").read_bytes(),
        f"kit/debs/{deb.name}": deb.read_bytes(),
    }.items():
        got = store.put_bytes(data)
        kind = "deb" if path.endswith(".deb") else "build"
        entries.append(Entry(path, got.sha256, got.size, kind, "test"))
    kit = Manifest("b-1", tuple(entries), capture={"probes": ["127.0.0.1:9"]})
    folder = layout.lay_out(kit, store, tmp_path / "work")
    assert (folder / "apt-pins").read_bytes() == (folder / "apt.lock").read_bytes()
    assert (folder / "src" / "pkg" / "a.c").read_text() == "int a;\n"
    repo = folder / "kit" / "debs"
    assert f"Filename: ./{deb.name}\n" in (repo / "Packages").read_text()
    assert (
        repo / "sources.list"
    ).read_text() == "deb [trusted=yes] file:/tmp/tfforge-kit/debs ./\n"
    assert (repo / "sources.list.d").is_dir() and (repo / deb.name).read_bytes() == deb.read_bytes()
    assert layout.build_args(kit) == {"TFFORGE_KIT": "1", "TFFORGE_KIT_PROBES": "127.0.0.1:9"}
    bad = Manifest("b-1", tuple(entries), capture={"probes": ["$(reboot):1"]})
    with pytest.raises(ConfigError, match="capture.probes"):
        layout.build_args(bad)


# ---- requirements locks ----------------------------------------------------------------------
LOCK = """# This file is autogenerated by pip-compile with Python 3.11
absl-py==2.1.0 \\
    --hash=sha256:526a04eadab8b4ee719ce68f204172ead1027549089702d99b9059f129ff1308 \\
    --hash=sha256:7820790efbb316739cde8b4e19357243fc3608a152024288513dd968d7d959ff
    # via -r requirements.in
--index-url https://pypi.org/simple
numpy==1.26.4 ; python_version >= "3.9" \\
    --hash=sha256:03a8c78d01d9781b28a6989f6fa1bb2c4f2d51201cf99d3dd875df6fbd96b23b
"""


def test_lock_is_read_as_pip_reads_it():
    from tfforge.kit import pypi

    found = pypi.parse_lock(LOCK, "requirements_lock_3_11.txt")
    assert [r.pin for r in found] == ["absl-py==2.1.0", "numpy==1.26.4"]
    assert len(found[0].hashes) == 2 and found[1].hashes[0].startswith("03a8c78d")
    assert pypi.lock_name("3.11") == "requirements_lock_3_11.txt"
    with pytest.raises(ConfigError, match="has no --hash"):
        pypi.parse_lock("six==1.16.0\n", "lock")
    with pytest.raises(ConfigError, match="not a name==version"):
        pypi.parse_lock("six>=1\n", "lock")


@FAST
@given(st.text(max_size=200))
def test_any_lock_text_is_requirements_or_one_error(text):
    from tfforge.kit import pypi

    try:
        found = pypi.parse_lock(text, "lock")
    except ConfigError as exc:
        assert str(exc).startswith("lock: ")
        return
    assert all(r.hashes and "==" in r.pin for r in found)


def test_cli_refuses_what_a_kit_build_cannot_take(tmp_path):
    """One error line, exit 2, nothing written: spec flags with --kit, a folder with no kit,
    `kit check` without the kit, a mirror that is not http(s)."""
    from conftest import invoke

    env = {"TFFORGE_ROOT": str(tmp_path)}
    cases = [
        (("build", "--kit", str(tmp_path), "--avx2", "--host", "h.json"),
         "error: --kit builds the kit's own build with no network; drop --feature, --host"),
        (("build", "--kit", str(tmp_path)), f"error: {tmp_path / 'kit.json'}: no kit here"),
        (("kit", "check"), "error: kit check needs the kit: `invoke kit check --kit KITS/"),
        (("kit", "nope"), f"error: no build 'nope' in {tmp_path / 'builds'}"),
        (("build", "--avx2", "--mirror", "ftp://m", "--dry-run"),
         "error: --mirror 'ftp://m': the scheme must be http or https"),
    ]  # fmt: skip
    for args, start in cases:
        proc = invoke(*args, env=env)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and lines[-1].startswith(start), (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_deps_overlay_keeps_every_target_of_the_files_it_replaces():
    """tfws_deps is copied over tfws: a BUILD file it replaces must still declare every target
    the base fixture's one declares, or the composed workspace stops building."""
    import re

    name = re.compile(r'^\s*name\s*=\s*"([^"]+)"', re.M)
    overlay = FIXTURES / "tfws_deps"
    replaced = [
        p for p in overlay.rglob("BUILD") if (FIXTURES / "tfws" / p.relative_to(overlay)).is_file()
    ]
    assert replaced, "the overlay replaces no BUILD file: the check would prove nothing"
    for p in replaced:
        base = FIXTURES / "tfws" / p.relative_to(overlay)
        lost = set(name.findall(base.read_text())) - set(name.findall(p.read_text()))
        assert not lost, f"{p.relative_to(FIXTURES)} drops {sorted(lost)} of {base.name}"
