"""The static simple index (PEP 503 HTML + PEP 691 JSON), its atomic rebuild, and the index and
serve tasks' bad input (pip installing from it: tests/integration/test_index_real.py)."""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
from pathlib import Path

import pytest
from conftest import invoke
from publish_helpers import make_wheel

from tfforge.errors import ConfigError
from tfforge.publish import index, serve


def _snapshot(folder: Path) -> dict[str, str]:
    """Every wheel in folder with its sha256: what 'left exactly as it was' means."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.whl"))
    }


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.anchors: list[dict] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.anchors.append(attrs)
        if tag == "meta" and "name" in attrs:
            self.meta[attrs["name"]] = attrs["content"]


def _parse(text: str) -> _Links:
    parser = _Links()
    parser.feed(text)
    return parser


# ---- unit ----------------------------------------------------------------------------------


def test_pages_have_normalized_names_hashes_and_escaped_requires_python(tmp_path):
    wheels = tmp_path / "wheels"
    a = make_wheel(wheels, "Tf_Demo.Pkg", "1.0.0+avx2.fma", requires_python=">=3.8, <4")
    make_wheel(wheels, "Tf_Demo.Pkg", "0.9", requires_python=None)
    found, skipped = index.scan_wheels(wheels)
    assert skipped == []
    tree = index.render_index(found)

    assert sorted(tree) == [
        "index.html",
        "index.json",
        "tf-demo-pkg/index.html",
        "tf-demo-pkg/index.json",
    ]
    root = _parse(tree["index.html"])
    assert [x["href"] for x in root.anchors] == ["tf-demo-pkg/"]
    assert root.meta["pypi:repository-version"] == index.API_VERSION

    page_text = tree["tf-demo-pkg/index.html"]
    assert 'data-requires-python="&gt;=3.8, &lt;4"' in page_text  # escaped in the markup
    page = _parse(page_text)
    # sorted by version: 0.9 first; the '+' of the local label is quoted as %2B
    assert [x["href"].split("#")[0] for x in page.anchors] == [
        "../../Tf_Demo.Pkg-0.9-py3-none-any.whl",
        "../../Tf_Demo.Pkg-1.0.0%2Bavx2.fma-py3-none-any.whl",
    ]
    sha = hashlib.sha256(a.read_bytes()).hexdigest()
    assert page.anchors[1]["href"].endswith(f"#sha256={sha}")
    assert page.anchors[1]["data-requires-python"] == ">=3.8, <4"  # what pip reads back
    assert "data-requires-python" not in page.anchors[0]


def test_json_form_follows_pep_691_and_700(tmp_path):
    wheels = tmp_path / "wheels"
    a = make_wheel(wheels, "tfdemo", "1.0.0+avx2.fma")
    tree = index.render_index(index.scan_wheels(wheels)[0])
    root = json.loads(tree["index.json"])
    assert root == {"meta": {"api-version": "1.1"}, "projects": [{"name": "tfdemo"}]}
    project = json.loads(tree["tfdemo/index.json"])
    assert project["name"] == "tfdemo" and project["versions"] == ["1.0.0+avx2.fma"]
    (entry,) = project["files"]
    assert entry == {
        "filename": a.name,
        "url": "../../tfdemo-1.0.0%2Bavx2.fma-py3-none-any.whl",
        "hashes": {"sha256": hashlib.sha256(a.read_bytes()).hexdigest()},
        "size": a.stat().st_size,
        "requires-python": ">=3.8, <4",
    }


def test_same_wheels_give_identical_bytes(tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tfdemo", "1.0.0+avx2.fma")
    make_wheel(wheels, "other", "3.1")
    first = index.render_index(index.scan_wheels(wheels)[0])
    second = index.render_index(list(reversed(index.scan_wheels(wheels)[0])))
    assert first == second


def test_unreadable_wheels_are_skipped_with_the_reason(tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tfdemo", "1.0.0")
    (wheels / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    (wheels / "no_version.whl").write_bytes(b"")
    found, skipped = index.scan_wheels(wheels)
    assert [w.filename for w in found] == ["tfdemo-1.0.0-py3-none-any.whl"]
    reasons = {s.filename: s.reason for s in skipped}
    assert "zip" in reasons["broken-1.0-py3-none-any.whl"]
    assert "file name" in reasons["no_version.whl"]


def test_rebuild_swaps_the_whole_index_and_leaves_wheels_alone(tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tfdemo", "1.0.0+avx2.fma")
    before = _snapshot(wheels)
    index.build_index(wheels)
    link = wheels / "simple"
    first_target = os.readlink(link)
    assert link.is_symlink() and (link / "tfdemo" / "index.html").is_file()

    make_wheel(wheels, "newpkg", "2.0")
    result = index.build_index(wheels)
    assert os.readlink(link) != first_target
    assert not (wheels / first_target).exists()  # the old tree is gone, no stale copies
    assert sorted(result["projects"]) == ["newpkg", "tfdemo"]
    assert (link / "newpkg" / "index.json").is_file()
    hidden = [p.name for p in wheels.iterdir() if p.name.startswith(".")]
    assert hidden == [os.readlink(link)]
    assert {k: v for k, v in _snapshot(wheels).items() if k in before} == before
    # readable by a static server running as another user
    assert (wheels / os.readlink(link)).stat().st_mode & 0o755 == 0o755
    assert (link / "index.html").stat().st_mode & 0o644 == 0o644


def test_failed_rebuild_keeps_the_previous_index(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tfdemo", "1.0.0")
    index.build_index(wheels)
    target = os.readlink(wheels / "simple")
    old_page = (wheels / "simple" / "tfdemo" / "index.html").read_text()
    make_wheel(wheels, "newpkg", "2.0")

    real_write = Path.write_text
    calls = []

    def failing_write(self, *args, **kwargs):
        calls.append(self)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", failing_write)
    with pytest.raises(ConfigError, match="cannot be written .No space left on device"):
        index.build_index(wheels)
    monkeypatch.undo()
    assert os.readlink(wheels / "simple") == target
    assert (wheels / "simple" / "tfdemo" / "index.html").read_text() == old_page
    assert [p.name for p in wheels.iterdir() if p.name.startswith(".")] == [target]


def test_a_simple_folder_tfforge_did_not_write_is_kept_and_refused(tmp_path):
    """Issue 14: a user's own wheels/simple/ (hand-written pages) is never deleted."""
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tfdemo", "1.0.0")
    (wheels / "simple" / "mine").mkdir(parents=True)
    (wheels / "simple" / "mine" / "index.html").write_text("hand-written\n")
    for _ in range(2):  # a second run must not clean it up either
        with pytest.raises(ConfigError, match="not written by `invoke index`.*move it away"):
            index.build_index(wheels)
    assert (wheels / "simple" / "mine" / "index.html").read_text() == "hand-written\n"
    assert [p.name for p in wheels.iterdir() if p.name.startswith(".")] == []
    (wheels / "simple").rename(wheels / "simple.mine")
    index.build_index(wheels)
    assert (wheels / "simple").is_symlink()
    (wheels / "simple").unlink()
    (wheels / "simple").symlink_to(wheels / "simple.mine")  # a link of the user's
    with pytest.raises(ConfigError, match="not written by"):
        index.build_index(wheels)
    assert (wheels / "simple.mine" / "mine" / "index.html").is_file()


def test_missing_wheels_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no wheels folder"):
        index.build_index(tmp_path / "nope")


def test_pypiserver_command_is_loopback_only_and_read_only_without_htpasswd(tmp_path):
    argv = serve.pypiserver_argv(tmp_path, 9000, None)
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert "--disable-fallback" in argv and "--passwords" not in argv
    assert argv[-1] == str(tmp_path)
    pw = tmp_path / "htpasswd"
    argv = serve.pypiserver_argv(tmp_path, 9000, pw)
    assert argv[argv.index("--passwords") + 1] == str(pw)
    assert argv[argv.index("--authenticate") + 1] == "update"
    assert "--overwrite" not in argv


def test_index_task_json_and_bad_input(tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tfdemo", "1.0.0+avx2.fma")
    proc = invoke("index", "--json", env={"TFFORGE_ROOT": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["projects"] == {"tfdemo": ["tfdemo-1.0.0+avx2.fma-py3-none-any.whl"]}
    assert doc["url"] == (wheels / "simple").as_uri() + "/"

    proc = invoke("index", env={"TFFORGE_ROOT": str(tmp_path / "empty")})
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no wheels folder" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "99999"], "--port '99999': must be 1 to 65535: a TCP port"),
        (["--port", "http"], "--port 'http': not a whole number"),
        (["--htpasswd", "/nonexistent/htpasswd"], "does not exist"),
    ],
)
def test_serve_rejects_bad_input_in_one_line(tmp_path, args, message):
    (tmp_path / "wheels").mkdir()
    proc = invoke("serve", *args, env={"TFFORGE_ROOT": str(tmp_path)}, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr


def test_serve_refuses_a_port_in_use(tmp_path):
    import socket

    (tmp_path / "wheels").mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = invoke("serve", "--port", str(port), env={"TFFORGE_ROOT": str(tmp_path)}, timeout=60)
    assert proc.returncode == 2 and "in use" in proc.stderr
