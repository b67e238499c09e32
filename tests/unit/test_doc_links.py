"""Every relative link in README.md and docs/ points at a file that exists, and every #anchor at
a heading of that file (GitHub's rule for heading ids)."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT
from doc_helpers import doc_files

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation but '-' and '_' dropped, spaces to '-',
    a repeated id numbered -1, -2 ..."""
    seen: dict[str, int] = {}
    out, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        fenced ^= line.lstrip().startswith("```")
        heading = None if fenced else re.match(r"#{1,6}\s+(.*)", line)
        if not heading:
            continue
        text = heading.group(1).replace("`", "").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links():
    for path in doc_files(ROOT):
        for target in LINK.findall(prose(path.read_text(encoding="utf-8"))):
            if not re.match(r"[a-z]+:", target):
                yield path, target


def test_every_relative_link_resolves():
    problems = []
    for path, target in links():
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
        elif anchor and (not dest.is_file() or anchor not in anchors(dest)):
            problems.append(f"{where}: no such heading")
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_documentation_links_its_parts():
    """The check above has something to check: the README links into every docs/ folder."""
    targets = {t for p, t in links() if p.name == "README.md" and p.parent == ROOT}
    for part in ("docs/tutorial.md", "docs/how-to/", "docs/reference/", "docs/explanation/"):
        assert any(t.startswith(part) for t in targets), part
    assert "docs/ARCHITECTURE.md" in targets and "CHANGELOG.md" in targets


def test_every_integration_test_file_says_what_it_proves():
    """docs/reference/tests.md has a row for each file of the integration tier."""
    from conftest import ROOT

    table = (ROOT / "docs" / "reference" / "tests.md").read_text()
    files = sorted(p.name for p in (ROOT / "tests" / "integration").glob("test_*.py"))
    assert files, "no integration tests found: the check would prove nothing"
    missing = [f for f in files if f"`{f}`" not in table]
    assert not missing, f"docs/reference/tests.md lacks rows for {missing}"
