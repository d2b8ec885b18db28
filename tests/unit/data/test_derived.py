"""service.data.derived: the service's own SELECTs answered from a version's N-Quads file, kept beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.data.derived import select_on_version

NQUADS = """\
<urn:a> <urn:label> "asserted" <urn:graph/one> .
<urn:a> <urn:label> "inferred" <urn:graph/inferred> .
"""
QUERY = "SELECT ?l WHERE { <urn:a> <urn:label> ?l }"


def _labels(answer: dict) -> set[str]:
    return {row["l"]["value"] for row in answer["results"]["bindings"]}


@pytest.fixture
def version(tmp_path: Path) -> Path:
    path = tmp_path / "v1" / "dataset.nq"
    path.parent.mkdir()
    path.write_text(NQUADS, encoding="utf-8")
    return path


def test_the_default_graph_is_the_union_less_the_left_out_graph(version: Path) -> None:
    assert _labels(select_on_version(version, None, QUERY)) == {"asserted", "inferred"}
    assert _labels(select_on_version(version, "urn:graph/inferred", QUERY)) == {"asserted"}


def test_an_answer_is_kept_beside_the_version(version: Path) -> None:
    first = select_on_version(version, None, QUERY)
    kept = list(version.parent.glob("derived-*.json"))
    assert len(kept) == 1
    kept[0].write_text('{"head": {"vars": ["l"]}, "results": {"bindings": []}}', encoding="utf-8")
    assert select_on_version(version, None, QUERY) != first  # read back, not computed again


def test_only_selects(version: Path) -> None:
    with pytest.raises(ValueError):
        select_on_version(version, None, "ASK { ?s ?p ?o }")
