"""docs/claims-and-assumptions.md lists every claim graph and every modelling assumption, with what each assumption
licenses: no claim graph without its row, no row without its graph (regenerate the tables when the data changes)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from rdflib import BNode, Dataset, Literal, URIRef
from rdflib.namespace import RDF

from service import names

DOC = Path(__file__).resolve().parents[3] / "docs" / "claims-and-assumptions.md"
GK = names.GK
PROVENANCE = URIRef(names.PROVENANCE_GRAPH)


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def _curie(term) -> str:
    if isinstance(term, Literal):
        return f'"{term}"@{term.language}' if term.language else f'"{term}"'
    text = str(term)
    prefixes = names.prefixes()
    best = max((p for p, ns in prefixes.items() if text.startswith(ns)), key=lambda p: len(prefixes[p]))
    return f"{best}:{text[len(prefixes[best]) :]}"


def test_every_claim_graph_has_a_row_and_every_row_its_graph(data_dataset: Dataset) -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `claim:([a-z0-9-]+)` \| (.+?) \|", _section(text, "## Claims"), flags=re.MULTILINE)
    documented = {name for name, _ in rows}
    graphs = {
        str(g.identifier).removeprefix(names.CLAIM_GRAPH_PREFIX)
        for g in data_dataset.graphs()
        if str(g.identifier).startswith(names.CLAIM_GRAPH_PREFIX) and len(g)
    }
    assert documented == graphs
    assert len(rows) == len(documented)  # one row each
    provenance = data_dataset.graph(PROVENANCE)
    for name, part in rows:  # the part a row names is the claim's own
        assert str(provenance.value(URIRef(names.CLAIM_GRAPH_PREFIX + name), URIRef(GK + "sourcePart"))) == part


def test_every_assumption_has_a_row_with_what_it_licenses(data_dataset: Dataset) -> None:
    text = _section(DOC.read_text(encoding="utf-8"), "## Modelling assumptions")
    rows = {
        slug: (graph, licensed)
        for slug, graph, licensed in re.findall(
            r"^\| `id:assumption/([a-z0-9-]+)` \| `graph:([a-z0-9/-]+)` \| (.+?) \|", text, flags=re.MULTILINE
        )
    }
    provenance = data_dataset.graph(PROVENANCE)
    assumptions = set(provenance.subjects(RDF.type, URIRef(GK + "ModellingAssumption")))
    assert {str(a).removeprefix(names.ID + "assumption/") for a in assumptions} == set(rows)
    for assumption in assumptions:
        graph_name, licensed = rows[str(assumption).removeprefix(names.ID + "assumption/")]
        graph = URIRef(names.GRAPH + graph_name)
        assert (graph, URIRef(GK + "licensedBy"), assumption) in provenance
        triples = [t for t in data_dataset.graph(graph) if not isinstance(t[0], BNode)]
        assert triples
        for s, p, o in triples:
            shown = f"{_curie(s)} {_curie(p)} " + ("[" if isinstance(o, BNode) else _curie(o))
            assert shown in licensed, (graph_name, shown)


def test_the_document_is_what_the_data_writes(data_dataset: Dataset) -> None:
    spec = importlib.util.spec_from_file_location("write_claims_doc", Path(__file__).with_name("write_claims_doc.py"))
    assert spec is not None and spec.loader is not None
    writer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(writer)
    assert DOC.read_text(encoding="utf-8") == writer.document(data_dataset), "run tests/unit/data/write_claims_doc.py"
