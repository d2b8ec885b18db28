"""Explanations: every inferred co-handling down to verbatim source quotes, agreement with owlrl, cycles, bounds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from rdflib import OWL, RDF, RDFS, BNode, Literal, URIRef

from service import names
from service.cli import main as cli_main
from service.config import load_settings
from service.data.snapshots import load_snapshot
from service.data.sources import asserted_dataset, reason, union_graph
from service.engines.base import QueryJob
from service.engines.factory import engine_for
from service.errors import InvalidParameterError
from service.explain.cache import Explainers
from service.explain.explanation import RULES
from service.explain.search import Explainer
from service.explain.terms import parse_term, read_quads
from service.library.queries import load_query
from service.library.vocabulary import load_vocabulary
from service.resources import queries_dir, source_document

GK = names.GK
ID = names.ID
PROJECT = URIRef(ID + "project/major-industrial-project")
CO_HANDLED_BY = URIRef(GK + "coHandledBy")
CO_HANDLES = URIRef(GK + "coHandles")


def section(n: int) -> URIRef:
    return URIRef(f"{ID}section/{n}")


# ---------------------------------------------------------------------------------------------------------------
# The real data


@pytest.fixture(scope="module")
def settings(cache_dir: Path):
    return load_settings({"cache_dir": str(cache_dir)}, environ={})


@pytest.fixture(scope="module")
def explainer(settings) -> Explainer:
    return Explainers().for_snapshot(load_snapshot(settings))


@pytest.fixture(scope="module")
def source_text() -> str:
    return source_document().read_text(encoding="utf-8")


def _check_grounded(explanation, source_text: str) -> None:
    """Every leaf is asserted (with a quote found verbatim in the source), an ontology axiom or a named modelling
    assumption (no quote: the assumption, its label and its rationale; the root lists it); nothing cut."""
    assert not any(node.truncated for node in explanation.walk())
    named = {a.assumption for a in explanation.assumptions()}
    for leaf in explanation.leaves():
        assert leaf.status in ("asserted", "axiom", "assumption"), (leaf.text, leaf.status)
        assert leaf.sources, leaf.text
        if leaf.status == "assumption":
            for src in leaf.sources:
                assert src.kind == "assumption" and not src.quote, leaf.text
                assert src.assumption in named and src.label and src.rationale, leaf.text
                assert src.graph.startswith(names.ASSUMPTION_GRAPH_PREFIX), src.graph
            assert "modelling assumption" in explanation.summary
        elif leaf.status == "axiom":
            assert all(src.kind == "axiom" and src.graph == names.ONTOLOGY_GRAPH for src in leaf.sources)
        else:
            quotes = [src.quote for src in leaf.sources if src.quote]
            assert quotes, f"asserted leaf without a quote: {leaf.text}"
            for quote in quotes:
                assert quote in source_text, f"quote not verbatim in the source: {quote!r}"
            assert all(src.document == names.SOURCE_DOCUMENT for src in leaf.sources if src.quote)
            assert all(src.graph.startswith(names.CLAIM_GRAPH_PREFIX) for src in leaf.sources if src.quote)


def test_every_inferred_co_handling_is_explained_down_to_verbatim_quotes(explainer, source_text):
    inferred = sorted(t for t in explainer.inferred if t[1] == CO_HANDLED_BY)
    assert len(inferred) >= 4  # at least the worked example's 5, 6, 7, 8
    assert not [t for t in explainer.asserted if t[1] == CO_HANDLED_BY], "co-handling must never be asserted"
    for triple in inferred:
        explanation = explainer.explain(*triple)
        assert explanation is not None and explanation.status == "inferred", triple
        _check_grounded(explanation, source_text)
        rules = {node.rule.id for node in explanation.walk() if node.rule}
        assert "prp-spo2" in rules, (triple, rules)  # the property chain is always the last step somewhere


def test_the_inverse_co_handles_is_explained_too(explainer, source_text):
    for triple in sorted(t for t in explainer.inferred if t[1] == CO_HANDLES):
        explanation = explainer.explain(*triple)
        assert explanation.rule.id in ("prp-inv1", "prp-inv2")
        _check_grounded(explanation, source_text)


def test_flagship_section_6_reads_naturally_and_names_what_the_source_says(explainer, source_text):
    explanation = explainer.explain(PROJECT, CO_HANDLED_BY, section(6))
    assert explanation.rule.id == "prp-spo2"
    assert explanation.rule.axiom == "gk:coHandledBy ⊒ gk:touchesDomain ∘ gk:domainHandledBy"
    leaves = {leaf.triple for leaf in explanation.leaves()}
    land = URIRef(ID + "domain/land-management")
    assert (PROJECT, URIRef(GK + "touchesDomain"), land) in leaves
    assert (section(6), URIRef(GK + "handlesDomain"), land) in leaves
    _check_grounded(explanation, source_text)
    # The source names 5, 8 and 7 for the project, not 6: the explanation says so, with the quote.
    stated = {node.triple[2] for node in explanation.stated}
    assert stated == {section(5), section(7), section(8)}
    assert all(node.sources[0].quote in source_text for node in explanation.stated)
    assert "names only" in explanation.note and "Secretarial Section 6 is not among them" in explanation.note
    for n in (5, 7, 8):
        assert f"Secretarial Section {n}" in explanation.note
    text = explanation.to_text()
    assert "Secretarial Section 6 handles domain Land management" in text
    assert "touches domain Land management" in text
    assert "土地管理" in text and "涉及土地、环保与民生" in text
    assert "gk:touchesDomain ∘ gk:domainHandledBy" in text
    summary = explanation.summary
    assert summary.index("because") < summary.index("touches domain Land management")
    assert "(ontology axioms)" in summary


def test_flagship_from_the_section_side(explainer):
    explanation = explainer.explain(section(6), CO_HANDLES, PROJECT)
    assert explanation.text == "Secretarial Section 6 co-handles Major industrial project (worked example)"
    assert explanation.premises[-1].triple == (PROJECT, CO_HANDLED_BY, section(6))
    assert "names only" in explanation.note


def test_a_section_the_source_names_gets_no_note(explainer):
    explanation = explainer.explain(PROJECT, CO_HANDLED_BY, section(5))
    assert explanation.note == ""
    assert section(5) in {node.triple[2] for node in explanation.stated}


def test_shortest_derivation_first(explainer):
    explanation = explainer.explain(PROJECT, CO_HANDLED_BY, section(6))
    # direct chain (land management) beats the chain through skos:broaderTransitive (urban-rural construction)
    assert len(explanation.premises) == 3
    heights = [alt.height for alt in explanation.alternatives]
    assert heights == sorted(heights) and all(h >= explanation.height for h in heights)
    through_broader = [alt for alt in explanation.alternatives if len(alt.premises) == 4]
    assert through_broader, "the derivation through the broader domain is offered as an alternative"


def test_not_entailed_is_none(explainer):
    assert explainer.explain(PROJECT, CO_HANDLED_BY, section(1)) is None
    assert explainer.explain(PROJECT, CO_HANDLED_BY, Literal("6")) is None


def test_asserted_triple_is_its_own_explanation(explainer, source_text):
    triple = (section(6), URIRef(GK + "handlesDomain"), URIRef(ID + "domain/land-management"))
    explanation = explainer.explain(*triple)
    assert explanation.status == "asserted" and explanation.rule is None and not explanation.premises
    assert explanation.sources[0].kind == "claim"
    assert explanation.sources[0].quote in source_text
    assert explanation.sources[0].part


def test_axioms_are_leaves_in_the_ontology_graph(explainer):
    explanation = explainer.explain(CO_HANDLES, OWL.inverseOf, CO_HANDLED_BY)
    assert explanation.status == "axiom"
    assert explanation.sources[0].graph == names.ONTOLOGY_GRAPH


def _ground(triples) -> set:
    return {t for t in triples if not any(isinstance(term, BNode) for term in t)}


def test_explanations_agree_with_the_reasoner(explainer):
    """Every kept inference of the reference reasoner is explained; every explained node is in the closure."""
    dataset = asserted_dataset()
    kept = reason(dataset).inferred
    # blank nodes are renamed by every parse: compare the ground triples, and the counts
    assert _ground(union_graph(dataset)) == _ground(explainer.asserted)
    assert len(union_graph(dataset)) == len(explainer.asserted)
    assert _ground(kept) <= explainer.closure.triples
    assert len(kept) <= len(explainer.inferred)
    asserted = explainer.asserted
    used = set()
    for triple in sorted(explainer.closure.triples, key=str):  # all kinds, junk included
        explanation = explainer.explain(*triple)
        assert explanation is not None, triple
        assert not explanation.truncated, (triple, explanation.limit)
        for node in explanation.walk():
            assert node.triple in explainer.closure
            assert (node.status == "inferred") == (node.triple not in asserted)
            assert not node.truncated, (triple, node.triple)
            if node.rule:
                used.add(node.rule.id)
    # the rules our ontology uses, named as the OWL 2 RL spec does
    assert {"prp-spo2", "prp-inv1", "prp-spo1", "prp-trp", "prp-dom", "cax-sco", "cls-hv1", "scm-sco"} <= used
    assert used <= set(RULES)


def test_json_is_stable_and_complete(explainer):
    body = explainer.explain(PROJECT, CO_HANDLED_BY, section(6)).to_json()
    assert json.loads(json.dumps(body, ensure_ascii=False)) == body
    assert body["triple"] == {
        "s": f"<{PROJECT}>",
        "p": f"<{CO_HANDLED_BY}>",
        "o": f"<{section(6)}>",
        "labels": {
            "s": "Major industrial project (worked example)",
            "p": "co-handled by",
            "o": "Secretarial Section 6",
        },
    }
    assert body["status"] == "inferred"
    assert body["rule"]["id"] == "prp-spo2" and body["rule"]["name"] == "property chain"
    assert body["truncated"] is False
    by_status = {premise["status"]: premise for premise in body["premises"]}
    # the touched domain is the land assumption's: its source names the assumption, never a quote
    assumed = by_status["assumption"]
    assert set(assumed["sources"][0]) == {
        "kind",
        "graph",
        "document",
        "quote",
        "part",
        "assumption",
        "label",
        "rationale",
    }
    assert assumed["sources"][0]["quote"] is None and assumed["sources"][0]["kind"] == "assumption"
    assert [a["assumption"] for a in body["assumptions"]] == [assumed["sources"][0]["assumption"]]
    leaf = by_status["inferred"]["premises"][-1]
    assert leaf["status"] == "asserted"
    assert set(leaf["sources"][0]) == {"kind", "graph", "document", "quote", "part"}
    assert body["explain"].startswith("/api/explain?s=")
    assert explainer.explain(PROJECT, CO_HANDLED_BY, section(6)).to_json() == body


def test_explainer_is_built_once_per_data_version(settings):
    snapshot = load_snapshot(settings)
    held = Explainers()
    first = held.for_snapshot(snapshot)
    assert held.for_snapshot(snapshot) is first
    again = Explainers().for_snapshot(snapshot)  # a new process: read back from the pickle beside the snapshot
    assert again is not first and again.closure.triples == first.closure.triples
    assert (
        again.explain(PROJECT, CO_HANDLED_BY, section(6)).to_json()
        == first.explain(PROJECT, CO_HANDLED_BY, section(6)).to_json()
    )


def _cli(*args):
    *words, settings = args
    return [*words, "--cache-dir", str(settings.cache_dir)]


def test_cli_prints_the_tree(settings, capsys):
    code = cli_main(_cli("explain", "project/major-industrial-project", "gk:coHandledBy", "id:section/6", settings))
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("Why: Major industrial project (worked example) co-handled by Secretarial Section 6")
    assert "└── " in out and "prp-spo2" in out and "秘书六科" in out


def test_cli_says_when_not_entailed(settings, capsys):
    code = cli_main(_cli("explain", "project/major-industrial-project", "coHandledBy", "section/1", settings))
    assert code == 1
    assert "not entailed" in capsys.readouterr().err


def test_named_query_is_the_explanation_as_a_table(settings, explainer, source_text):
    """queries/explain-co-handling.rq gives, per inferred co-handling section, the domains and both quotes."""
    snapshot = load_snapshot(settings)
    named = load_query(queries_dir() / "explain-co-handling.rq", load_vocabulary(), snapshot.base_iri)
    outcome = engine_for(settings, snapshot).execute(QueryJob(named.text, "json", bindings=named.bind({})))
    rows = json.loads(outcome.body)["results"]["bindings"]
    sections = {row["section"]["value"] for row in rows}
    inferred = {str(o) for (s, p, o) in explainer.inferred if s == PROJECT and p == CO_HANDLED_BY}
    assert sections == inferred and str(section(6)) in sections
    for row in rows:
        assert row["handleQuote"]["value"] in source_text
        assert row["touch"]["value"] in (("stated",) if "touchQuote" in row else ("inferred", "assumption"))
        # a derivation that needs an assumption names it; one that does not, does not
        assert (row["basis"]["value"] == "assumption") == ("assumption" in row)
        if row["touch"]["value"] == "assumption":
            assert row["basis"]["value"] == "assumption"
        if "touchQuote" in row:
            assert row["touchQuote"]["value"] in source_text
        assert row["explanation"]["value"].startswith("/api/explain?s=")
    six = [row for row in rows if row["section"]["value"] == str(section(6))]
    assert {row["domain"]["value"].rsplit("/", 1)[1] for row in six} == {"land-management"}
    assert {row["stated"]["value"] for row in six} == {"false"}
    assert {row["assumption"]["value"].rsplit("/", 1)[1] for row in six} == {"land-is-land-management"}
    table = {row["notation"]["value"] for row in rows if row["basis"]["value"] == "inferred"}
    assert table == {"7", "8"}  # what the division-of-labour table alone gives for 土地、环保与民生 without 土地


# ---------------------------------------------------------------------------------------------------------------
# Terms


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("gk:coHandledBy", "p", URIRef(GK + "coHandledBy")),
        ("coHandledBy", "p", URIRef(GK + "coHandledBy")),
        ("a", "p", RDF.type),
        ("id:section/6", "s", URIRef(ID + "section/6")),
        ("section/6", "o", URIRef(ID + "section/6")),
        (f"<{ID}section/6>", "o", URIRef(ID + "section/6")),
        (f"{ID}section/6", "o", URIRef(ID + "section/6")),
        ("skos:broader", "p", URIRef("http://www.w3.org/2004/02/skos/core#broader")),
        ('"土地管理"@zh', "o", Literal("土地管理", lang="zh")),
    ],
)
def test_terms_are_read_in_every_documented_form(text, position, expected):
    assert parse_term(text, position) == expected


def test_terms_follow_the_base_iri():
    assert parse_term("id:section/6", "s", "https://example.org/kg/") == URIRef("https://example.org/kg/id/section/6")


@pytest.mark.parametrize(
    ("text", "position"),
    [("", "s"), (None, "p"), ("<has space>", "s"), ("nope:thing", "p"), ('"lit"', "s"), ("a b", "o"), ('"x', "o")],
)
def test_bad_terms_are_invalid_parameters(text, position):
    with pytest.raises(InvalidParameterError):
        parse_term(text, position)


# ---------------------------------------------------------------------------------------------------------------
# A small synthetic graph: every rule, cycles, bounds

EX = "https://example.org/"
SYNTHETIC = """
@prefix ex: <https://example.org/> .
@prefix g: <https://w3id.org/guian-kg/graph/> .
@prefix claim: <https://w3id.org/guian-kg/graph/claim/> .
@prefix gk: <https://w3id.org/guian-kg/ontology#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix prov: <http://www.w3.org/ns/prov#> .

g:ontology {
  ex:p1 rdfs:subPropertyOf ex:p2 .
  ex:q owl:inverseOf ex:qi .
  ex:t a owl:TransitiveProperty .
  ex:sy a owl:SymmetricProperty , owl:TransitiveProperty .
  ex:d rdfs:domain ex:D .
  ex:r rdfs:range ex:R .
  ex:C1 rdfs:subClassOf ex:C2 . ex:C2 rdfs:subClassOf ex:C3 .
  ex:E1 owl:equivalentClass ex:E2 .
  ex:H rdfs:subClassOf [ a owl:Restriction ; owl:onProperty ex:hp ; owl:hasValue ex:v ] .
  ex:HV a owl:Restriction ; owl:onProperty ex:hp2 ; owl:hasValue ex:v .
  ex:ch owl:propertyChainAxiom ( ex:c1 ex:c2 ) .
  ex:sp1 rdfs:subPropertyOf ex:sp2 . ex:sp2 rdfs:subPropertyOf ex:sp3 .
  ex:ep1 owl:equivalentProperty ex:ep2 .
  ex:f a owl:FunctionalProperty .
  ex:long a owl:TransitiveProperty .
}
claim:facts {
  ex:a ex:p1 ex:b .  ex:a ex:q ex:b .  ex:c ex:qi ex:e .
  ex:a ex:t ex:b .  ex:b ex:t ex:c .
  ex:a ex:sy ex:b .  ex:b ex:sy ex:c .
  ex:a ex:d ex:x .  ex:x ex:r ex:e .
  ex:i a ex:C1 .  ex:j a ex:E1 .  ex:k a ex:E2 .  ex:h a ex:H .  ex:m ex:hp2 ex:v .
  ex:a ex:c1 ex:b .  ex:b ex:c2 ex:c .
  ex:a ex:ep1 ex:b .
  ex:a ex:f ex:y1 .  ex:a ex:f ex:y2 .  ex:y1 ex:colour ex:red .
}
g:provenance {
  claim:facts prov:wasDerivedFrom <https://w3id.org/guian-kg/id/document/source> ;
      gk:sourceQuote "synthetic"@zh ; gk:sourcePart "test"@zh .
}
"""


def _synthetic(extra: str = "") -> Explainer:
    return Explainer(read_quads(data=SYNTHETIC + extra, fmt="trig"))


@pytest.fixture(scope="module")
def synthetic() -> Explainer:
    return _synthetic()


def ex(name: str) -> URIRef:
    return URIRef(EX + name)


@pytest.mark.parametrize(
    ("s", "p", "o", "rule"),
    [
        ("a", "p2", "b", "prp-spo1"),
        ("b", "qi", "a", "prp-inv1"),
        ("e", "q", "c", "prp-inv2"),
        ("a", "t", "c", "prp-trp"),
        ("b", "sy", "a", "prp-symp"),
        ("a", RDF.type, "D", "prp-dom"),
        ("e", RDF.type, "R", "prp-rng"),
        ("i", RDF.type, "C2", "cax-sco"),
        ("j", RDF.type, "E2", "cax-eqc1"),
        ("k", RDF.type, "E1", "cax-eqc2"),
        ("h", "hp", "v", "cls-hv1"),
        ("m", RDF.type, "HV", "cls-hv2"),
        ("a", "ch", "c", "prp-spo2"),
        ("C1", RDFS.subClassOf, "C3", "scm-sco"),
        ("sp1", RDFS.subPropertyOf, "sp3", "scm-spo"),
        ("a", "ep2", "b", "prp-eqp1"),
        ("y1", OWL.sameAs, "y2", "prp-fp"),
        ("E1", RDFS.subClassOf, "E2", "scm-eqc1"),
        ("y2", "colour", "red", "eq-rep-s"),
    ],
)
def test_each_rule_is_found_and_named(synthetic, s, p, o, rule):
    terms = [t if isinstance(t, URIRef) else ex(t) for t in (s, p, o)]
    explanation = synthetic.explain(*terms)
    assert explanation is not None and explanation.rule is not None, terms
    assert explanation.rule.id == rule
    for leaf in explanation.leaves():
        assert leaf.status in ("asserted", "axiom")
    for node in explanation.walk():
        assert node.triple in synthetic.closure


def test_synthetic_asserted_leaves_carry_their_claim(synthetic):
    explanation = synthetic.explain(ex("a"), ex("p2"), ex("b"))
    fact = explanation.premises[1]
    assert fact.status == "asserted"
    assert fact.sources[0].graph == names.CLAIM_GRAPH_PREFIX + "facts"
    assert fact.sources[0].quote == "synthetic" and fact.sources[0].part == "test"
    assert fact.sources[0].document == names.SOURCE_DOCUMENT


def test_cycles_terminate_with_the_shortest_derivation(synthetic):
    # sy is symmetric and transitive: a sy a follows in one step from a sy b, b sy a — which needs symmetry first
    explanation = synthetic.explain(ex("a"), ex("sy"), ex("a"))
    assert explanation.rule.id == "prp-trp"
    assert explanation.height == 2
    for node in explanation.walk():  # no node is its own ancestor
        for below in node.premises:
            assert node.triple not in {n.triple for n in below.walk()}
    # inverse pairs point at each other: the explanation still bottoms out in the asserted fact
    inverse = synthetic.explain(ex("b"), ex("qi"), ex("a"))
    assert [leaf.status for leaf in inverse.leaves()] == ["axiom", "asserted"]
    for alt in inverse.alternatives:
        assert (ex("b"), ex("qi"), ex("a")) not in {n.triple for n in alt.walk() if n is not alt}


CHAIN = 20  # a path of 20 asserted steps: its shortest derivation is ceil(log2 20) = 5 rule steps high


def _chain(n: int) -> str:
    facts = " ".join(f"ex:n{i} ex:long ex:n{i + 1} ." for i in range(n))
    return "claim:chain { " + facts + " }\n"


@pytest.fixture(scope="module")
def chain() -> Explainer:
    return _synthetic(_chain(CHAIN))


def test_depth_and_node_bounds_are_signalled(chain):
    explainer = chain
    target = (ex("n0"), ex("long"), ex(f"n{CHAIN}"))
    full = explainer.explain(*target)
    assert full.height == math.ceil(math.log2(CHAIN))  # binary splits: the shortest derivation of a 40-step path
    assert not any(node.truncated for node in full.walk())
    assert all(leaf.status in ("asserted", "axiom") for leaf in full.leaves())

    shallow = explainer.explain(*target, max_depth=2)
    cut = [node for node in shallow.walk() if node.truncated]
    assert cut and {node.limit for node in cut} == {"max-depth"}
    assert all(node.status == "inferred" and not node.premises for node in cut)
    assert shallow.to_json()["premises"][1]["premises"][1]["truncated"] is True
    assert "not expanded: max-depth" in shallow.to_text()

    small = explainer.explain(*target, max_nodes=5)
    assert small.nodes <= 5
    assert sum(1 for _ in small.walk()) <= 5
    assert {node.limit for node in small.walk() if node.truncated} == {"max-nodes"}
    assert "deeper steps not expanded" in small.summary


def test_search_budget_is_signalled(chain, monkeypatch):
    monkeypatch.setattr("service.explain.search.SEARCH_BUDGET", 3)
    explanation = chain.explain(ex("n0"), ex("long"), ex(f"n{CHAIN}"))
    assert explanation.truncated and explanation.limit == "search-limit"
    assert explanation.to_json()["limit"] == "search-limit"


def test_html_view_links_every_node(synthetic):
    page = synthetic.explain(ex("a"), ex("ch"), ex("c")).to_html()
    assert page.startswith("<!doctype html>")
    assert page.count("/api/explain?s=") >= 4
    assert "prp-spo2" in page


@pytest.mark.parametrize(
    ("section", "assumption"),
    [("6", "land-is-land-management"), ("5", "major-industrial-project-is-a-major-project"), ("7", None)],
)
def test_the_flagship_names_the_assumption_it_rests_on(explainer, section: str, assumption: str | None):
    project = URIRef(names.DEFAULT_BASE + "id/project/major-industrial-project")
    explanation = explainer.explain(project, CO_HANDLED_BY, URIRef(names.DEFAULT_BASE + f"id/section/{section}"))
    used = [a.assumption.rsplit("/", 1)[-1] for a in explanation.assumptions()]
    assert used == ([assumption] if assumption else [])
    body = explanation.to_json()
    assert [a["assumption"].rsplit("/", 1)[-1] for a in body["assumptions"]] == used
    if assumption:
        assert assumption in explanation.to_text() and assumption in explanation.to_html()
        assert body["assumptions"][0]["rationale"]
