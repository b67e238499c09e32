"""Round trip of the index emitter: for generated hostile file names and Requires-Python texts,
the stdlib's HTML parser and json read back exactly each wheel's link, text and attribute, and
nothing else (no extra link, attribute or element)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import unquote

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version

from tfforge.publish import index

text = st.text(
    alphabet=st.one_of(st.sampled_from(list("<>&\"' =/#?%+`\n")), st.characters(codec="utf-8")),
    min_size=1,
    max_size=25,
).filter(lambda s: "\x00" not in s)


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict, str]] = []
        self.tags: list[str] = []
        self._open: dict | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self._open, self._text = dict(attrs), ""

    def handle_data(self, data):
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "a" and self._open is not None:
            self.links.append((self._open, self._text))
            self._open = None


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    st.lists(
        st.tuples(text, st.one_of(st.none(), text)),
        min_size=1,
        max_size=4,
        unique_by=lambda t: t[0],
    )
)
def test_index_pages_give_back_each_wheel_exactly(entries):
    wheels = [
        index.IndexedWheel(name, "demo", Version("1.0"), "ab" * 32, 7, rp) for name, rp in entries
    ]
    tree = index.render_index(wheels)
    page = Links()
    page.feed(tree["demo/index.html"])
    got = sorted(
        (
            unquote(a["href"].split("#")[0]),
            a["href"].split("#", 1)[1],
            a.get("data-requires-python"),
            t,
        )
        for a, t in page.links
    )
    want = sorted((f"../../{n}", f"sha256={'ab' * 32}", rp, n) for n, rp in entries)
    assert got == want
    assert all(set(a) <= {"href", "data-requires-python"} for a, _ in page.links)
    assert set(page.tags) <= {"html", "head", "meta", "title", "body", "h1", "a", "br"}
    doc = json.loads(tree["demo/index.json"])
    assert sorted((f["filename"], f.get("requires-python")) for f in doc["files"]) == sorted(
        entries
    )
    assert {unquote(f["url"]) for f in doc["files"]} == {f"../../{n}" for n, _ in entries}


def test_index_deletes_only_folders_its_manifest_describes(tmp_path):
    """A user's `wheels/.simple-mine` (or an old index folder the user added a file to) stays;
    an index folder exactly as tfforge wrote it goes when a new one replaces it."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    mine = wheels / ".simple-mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    index.build_index(wheels)
    first = (wheels / "simple").resolve()
    index.build_index(wheels)
    assert not first.exists()  # ours, unchanged: replaced
    second = (wheels / "simple").resolve()
    (second / "added-by-user.txt").write_text("keep me")
    index.build_index(wheels)
    assert (second / "added-by-user.txt").read_text() == "keep me"
    assert (mine / "notes.txt").read_text() == "mine"
