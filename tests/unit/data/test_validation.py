"""The asserted data satisfies the SHACL shapes; deliberately broken copies fail with a report naming node and path."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, SKOS

from service.data.validation import validate

GK = Namespace("https://w3id.org/guian-kg/ontology#")
ORG = Namespace("http://www.w3.org/ns/org#")
ID = "https://w3id.org/guian-kg/id/"
CLAIM = "https://w3id.org/guian-kg/graph/claim/"


def test_the_asserted_data_conforms() -> None:
    conforms, report = validate()
    assert conforms, report
    assert report.startswith("Conforms: True")


def test_the_given_graph_is_validated(union_graph: Graph) -> None:
    conforms, report = validate(union_graph)
    assert conforms, report


def _drop_zh_label(g: Graph) -> None:
    section = URIRef(ID + "section/3")
    for label in [o for o in g.objects(section, SKOS.prefLabel) if o.language == "zh"]:
        g.remove((section, SKOS.prefLabel, label))


def _notation_ten(g: Graph) -> None:
    g.set((URIRef(ID + "section/4"), SKOS.notation, Literal("10")))


def _shared_notation(g: Graph) -> None:
    g.set((URIRef(ID + "section/5"), SKOS.notation, Literal("6")))


def _no_domain(g: Graph) -> None:
    g.remove((URIRef(ID + "section/9"), GK.handlesDomain, None))


def _unit_of(g: Graph) -> None:
    g.add((URIRef(ID + "section/1"), ORG.unitOf, URIRef(ID + "organization/office")))


def _outside_scheme(g: Graph) -> None:
    g.remove((URIRef(ID + "domain/housing"), SKOS.inScheme, None))


def _item_without_domain(g: Graph) -> None:
    g.remove((URIRef(ID + "work-item/2-1"), GK.concernsDomain, None))


def _mechanism_without_purpose(g: Graph) -> None:
    g.remove((URIRef(ID + "mechanism/task-force"), GK.purpose, None))


def _claim_without_quote(g: Graph) -> None:
    g.remove((URIRef(CLAIM + "section-1"), GK.sourceQuote, None))


def _claim_with_english_quote(g: Graph) -> None:
    g.add((URIRef(CLAIM + "section-1"), GK.sourceQuote, Literal("a second quote", lang="en")))


def _staff_as_organisation(g: Graph) -> None:
    g.add((URIRef(ID + "staff-group/task-force-backbone-staff"), RDF.type, ORG.Organization))


def _assumption_without_english_rationale(g: Graph) -> None:
    assumption = URIRef(ID + "assumption/land-is-land-management")
    for rationale in [o for o in g.objects(assumption, GK.rationale) if o.language == "en"]:
        g.remove((assumption, GK.rationale, rationale))


def _task_as_mechanism(g: Graph) -> None:
    g.add((URIRef(ID + "task/instruction-relay"), RDF.type, GK.CollaborationMechanism))


BREAKAGES: list[tuple[Callable[[Graph], None], str, str]] = [
    (_drop_zh_label, "id:section/3", "skos:prefLabel"),
    (_notation_ten, "id:section/4", "skos:notation"),
    (_shared_notation, "id:section/5", "skos:notation"),
    (_no_domain, "id:section/9", "gk:handlesDomain"),
    (_unit_of, "id:section/1", "org:unitOf"),
    (_outside_scheme, "id:domain/housing", "skos:inScheme"),
    (_item_without_domain, "id:work-item/2-1", "gk:concernsDomain"),
    (_mechanism_without_purpose, "id:mechanism/task-force", "gk:purpose"),
    (_claim_without_quote, "claim:section-1", "gk:sourceQuote"),
    (_claim_with_english_quote, "claim:section-1", "gk:sourceQuote"),
    (_staff_as_organisation, "id:membership/task-force-backbone-staff", "org:member"),
    (_assumption_without_english_rationale, "id:assumption/land-is-land-management", "gk:rationale"),
    (_task_as_mechanism, "id:task/instruction-relay", "(node)"),
]


@pytest.mark.parametrize(("breakage", "focus", "path"), BREAKAGES, ids=[b[0].__name__.strip("_") for b in BREAKAGES])
def test_a_broken_copy_fails_naming_focus_node_and_path(
    breakage: Callable[[Graph], None], focus: str, path: str, union_copy: Graph
) -> None:
    breakage(union_copy)
    conforms, report = validate(union_copy)
    assert not conforms
    lines = [line for line in report.splitlines() if line.startswith("Violation: ")]
    assert any(f" {focus} {path}: " in line for line in lines), report
