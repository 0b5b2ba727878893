"""The repository's own documents hold what the code cites: every ``docs/methods.md §n`` in the
package and its configs names a section that exists, and nothing cites a document a user of the
package cannot open."""

from __future__ import annotations

import re

from tests.conftest import ROOT

CITED = re.compile(r"docs/methods\.md ((?:§\d+(?:, )?)+)")


def _sources() -> list:
    files = [*(ROOT / "src" / "lossevo").rglob("*.py"), *(ROOT / "conf").rglob("*.yaml")]
    return [f for f in files if "__pycache__" not in f.parts]


def test_every_citation_of_methods_md_names_one_of_its_sections() -> None:
    methods = (ROOT / "docs" / "methods.md").read_text()
    sections = {int(n) for n in re.findall(r"^## §(\d+) ", methods, flags=re.M)}
    assert sections == set(range(1, max(sections) + 1))
    cited: dict[int, list[str]] = {}
    for f in _sources():
        for match in CITED.finditer(f.read_text()):
            for n in re.findall(r"§(\d+)", match.group(1)):
                cited.setdefault(int(n), []).append(f.name)
    assert len(cited) >= 8, "the code cites most sections"
    assert set(cited) <= sections, {n: cited[n] for n in set(cited) - sections}


def test_nothing_cites_a_document_outside_the_repository() -> None:
    outside = re.compile(r"REFERENCE §|REFERENCE\)|DESIGN\.md|seed 00\d|shared/")
    offenders = [
        f"{f.relative_to(ROOT)}:{i}"
        for f in _sources()
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if outside.search(line)
    ]
    assert _sources() and not offenders, offenders
