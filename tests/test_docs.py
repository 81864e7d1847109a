"""The documentation stays inside the repository and its links resolve."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def links(doc: Path) -> list[str]:
    """Relative Markdown link targets of a document (anchors dropped, web links skipped)."""
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text())
    return [t for t in targets if not re.match(r"\w+:", t)]


def test_no_document_points_outside_the_repository():
    for doc in DOCS:
        assert "../shared" not in doc.read_text(), doc
        for target in links(doc):
            assert (doc.parent / target).resolve().is_relative_to(ROOT), f"{doc.name} links outside: {target}"


def test_every_relative_link_resolves():
    missing = [f"{doc.relative_to(ROOT)} -> {target}" for doc in DOCS for target in links(doc)
               if not (doc.parent / target).exists()]
    assert missing == []


def test_the_docs_index_lists_every_document():
    index = (ROOT / "docs" / "README.md").read_text()
    names = {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"}
    assert [name for name in sorted(names) if f"({name})" not in index] == []
