"""The rl reasoner (service.data.rules) stores exactly what owlrl + the junk filter stores.

Proved on the real data, on a generated sample of organisations (benchmarks/orggen.py, seeded), rule by rule on
small cases, on seeded random ontologies mixing every construct, and where rl must hand over to owlrl.
"""

from __future__ import annotations

import logging
import random

import pytest
from rdflib import OWL, RDF, RDFS, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection

from benchmarks.orggen import generate
from service.config import load_settings
from service.data.reasoning import REASONERS, materialise, reasoner_version
from service.data.snapshots import load_snapshot
from service.data.sources import asserted_dataset, data_version, reason, union_graph
from service.resources import source_document

EX = Namespace("http://example.org/")
GK = Namespace("https://w3id.org/guian-kg/ontology#")
SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
PREFIXES = """
@prefix ex: <http://example.org/> .
@prefix gk: <https://w3id.org/guian-kg/ontology#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""


def _both(asserted) -> tuple[set, set, str]:
    """The kept inferences of rl and of owlrl, and which reasoner rl's run ended up using."""
    triples = list(asserted)
    fast, reference = materialise(triples, "rl"), materialise(triples, "owlrl")
    assert len(set(fast.triples)) == len(fast.triples)  # each kept triple once
    return set(fast.triples), set(reference.triples), fast.reasoner


def _graph(turtle: str) -> Graph:
    return Graph().parse(data=PREFIXES + turtle, format="turtle")


def _ground(triples: set) -> set:
    return {t for t in triples if not any(isinstance(term, BNode) for term in t)}


# --- the real data and a generated sample -------------------------------------------------------------------


def test_real_data_closure_equals_owlrl():
    fast, reference, ran = _both(union_graph(asserted_dataset()))
    assert ran == "rl"
    assert fast == reference
    assert len(fast) > 500
    # the flagship inferences are among them, including what the has-value restriction of an assumption graph adds
    project = URIRef("https://w3id.org/guian-kg/id/project/major-industrial-project")
    assert (project, GK.coHandledBy, URIRef("https://w3id.org/guian-kg/id/section/6")) in fast
    assert (project, GK.touchesDomain, URIRef("https://w3id.org/guian-kg/id/domain/major-projects")) in fast
    assert (project, GK.coHandledBy, URIRef("https://w3id.org/guian-kg/id/section/5")) in fast


@pytest.fixture(scope="module")
def generated_sample(tmp_path_factory: pytest.TempPathFactory):
    """The real dataset plus three generated organisations (seeded: the same triples every run)."""
    path = tmp_path_factory.mktemp("orggen") / "generated.trig"
    counts = generate(3000, path, source_document(), seed=7, projects=12)
    assert counts["organisations"] == 3
    dataset = asserted_dataset()
    real = len(union_graph(dataset))
    dataset.parse(path, format="trig")
    return dataset, real + counts["triples"]


def test_generated_sample_closure_equals_owlrl(generated_sample):
    """The service's own path (reason) with each reasoner, on about 5,500 triples."""
    dataset, written = generated_sample
    fast, reference = reason(dataset), reason(dataset, "owlrl")
    assert (fast.reasoner, reference.reasoner) == ("rl", "owlrl")
    assert fast.asserted_triples == reference.asserted_triples >= written - 100  # few generated triples repeat
    assert set(fast.triples) == set(reference.triples) == set(fast.inferred)
    assert len(fast.triples) == len(set(fast.triples)) > 3000
    kinds = {p for s, p, o in fast.triples if "/id/project/s3-" in s}
    assert {GK.coHandledBy, RDF.type, GK.touchesDomain} <= kinds, "chains and hasValue reach the generated projects"


# --- rule by rule ----------------------------------------------------------------------------------------------

RULE_CASES = {
    "property chain through skos:broaderTransitive (prp-spo2, prp-trp, prp-inv, prp-spo1)": (
        """
        skos:broader rdfs:subPropertyOf skos:broaderTransitive .
        skos:broaderTransitive a owl:ObjectProperty , owl:TransitiveProperty .
        gk:handlesDomain owl:inverseOf gk:domainHandledBy .
        gk:coHandledBy owl:propertyChainAxiom ( gk:touchesDomain gk:domainHandledBy ) ,
            ( gk:touchesDomain skos:broaderTransitive gk:domainHandledBy ) ;
            owl:inverseOf gk:coHandles .
        ex:leaf skos:broader ex:mid . ex:mid skos:broader ex:top .
        ex:project gk:touchesDomain ex:leaf , ex:other .
        ex:s6 gk:handlesDomain ex:top . ex:s7 gk:handlesDomain ex:other .
        """,
        [
            (EX.project, GK.coHandledBy, EX.s6),
            (EX.project, GK.coHandledBy, EX.s7),
            (EX.s6, GK.coHandles, EX.project),
            (EX.leaf, SKOS.broaderTransitive, EX.top),
        ],
    ),
    "hasValue (cls-hv1, cls-hv2, scm-hv)": (
        """
        ex:Industrial rdfs:subClassOf [ a owl:Restriction ; owl:onProperty ex:touches ; owl:hasValue ex:industry ] .
        ex:Major rdfs:subClassOf ex:Industrial .
        ex:Tagged owl:equivalentClass [ a owl:Restriction ; owl:onProperty ex:touchesDirectly ;
            owl:hasValue ex:industry ] .
        ex:touchesDirectly rdfs:subPropertyOf ex:touches .
        ex:x a ex:Major . ex:y ex:touchesDirectly ex:industry .
        """,
        [(EX.x, EX.touches, EX.industry), (EX.y, RDF.type, EX.Tagged), (EX.y, EX.touches, EX.industry)],
    ),
    "inverse (prp-inv1, prp-inv2)": (
        """
        ex:p owl:inverseOf ex:q .
        ex:a ex:p ex:b . ex:c ex:q ex:d . ex:a ex:p "a literal" .
        """,
        [(EX.b, EX.q, EX.a), (EX.d, EX.p, EX.c)],
    ),
    "transitive (prp-trp)": (
        """
        ex:p a owl:TransitiveProperty .
        ex:a ex:p ex:b . ex:b ex:p ex:c . ex:c ex:p ex:d . ex:d ex:p ex:a .
        """,
        [(EX.a, EX.p, EX.d), (EX.a, EX.p, EX.a), (EX.c, EX.p, EX.b)],
    ),
    "subproperty (prp-spo1, scm-spo, scm-eqp2)": (
        """
        ex:p1 rdfs:subPropertyOf ex:p2 . ex:p2 rdfs:subPropertyOf ex:p3 . ex:p3 rdfs:subPropertyOf ex:p2 .
        ex:p1 a owl:ObjectProperty .
        ex:a ex:p1 ex:b .
        """,
        [(EX.a, EX.p3, EX.b), (EX.p1, RDFS.subPropertyOf, EX.p3), (EX.p2, OWL.equivalentProperty, EX.p3)],
    ),
    "domain and range (prp-dom, prp-rng, scm-dom1/2, scm-rng1/2)": (
        """
        ex:C a owl:Class ; rdfs:subClassOf ex:D . ex:D a owl:Class .
        ex:p rdfs:domain ex:C ; rdfs:range ex:E . ex:q rdfs:subPropertyOf ex:p .
        ex:a ex:q ex:b .
        """,
        [
            (EX.a, RDF.type, EX.D),
            (EX.b, RDF.type, EX.E),
            (EX.q, RDFS.domain, EX.D),
            (EX.q, RDFS.range, EX.E),
            (EX.p, RDFS.domain, OWL.Thing),
        ],
    ),
    "equivalent classes and properties (cax-eqc, scm-eqc, prp-eqp, scm-eqp)": (
        """
        ex:C owl:equivalentClass ex:D . ex:p owl:equivalentProperty ex:q .
        ex:a a ex:C . ex:b a ex:D . ex:a ex:p ex:b . ex:b ex:q ex:a .
        """,
        [
            (EX.a, RDF.type, EX.D),
            (EX.b, RDF.type, EX.C),
            (EX.C, RDFS.subClassOf, EX.D),
            (EX.a, EX.q, EX.b),
            (EX.b, EX.p, EX.a),
        ],
    ),
    "symmetric (prp-symp)": ("ex:p a owl:SymmetricProperty . ex:a ex:p ex:b .", [(EX.b, EX.p, EX.a)]),
    "sameAs (eq-sym, eq-trans, eq-rep-s/p/o)": (
        """
        ex:a owl:sameAs ex:b . ex:b owl:sameAs ex:c . ex:p owl:sameAs ex:q .
        ex:a ex:p ex:d . ex:e ex:r ex:c .
        """,
        [(EX.c, OWL.sameAs, EX.a), (EX.c, EX.q, EX.d), (EX.e, EX.r, EX.a), (EX.b, EX.p, EX.d)],
    ),
    "functional and inverse-functional properties (prp-fp, prp-ifp)": (
        """
        ex:p a owl:FunctionalProperty . ex:q a owl:InverseFunctionalProperty .
        ex:a ex:p ex:b , ex:c . ex:d ex:q ex:e . ex:f ex:q ex:e . ex:b ex:s ex:g .
        """,
        [(EX.b, OWL.sameAs, EX.c), (EX.d, OWL.sameAs, EX.f), (EX.c, EX.s, EX.g)],
    ),
    "some and all values from (cls-svf1/2, cls-avf, scm-svf, scm-avf)": (
        """
        ex:Parent owl:equivalentClass [ a owl:Restriction ; owl:onProperty ex:hasChild ; owl:someValuesFrom ex:P ] .
        ex:Busy owl:equivalentClass [ a owl:Restriction ; owl:onProperty ex:does ; owl:someValuesFrom owl:Thing ] .
        ex:Strict rdfs:subClassOf [ a owl:Restriction ; owl:onProperty ex:allows ; owl:allValuesFrom ex:Safe ] .
        ex:Q rdfs:subClassOf ex:P .
        ex:a ex:hasChild ex:b . ex:b a ex:Q . ex:c ex:does ex:d . ex:e a ex:Strict ; ex:allows ex:f .
        """,
        [(EX.a, RDF.type, EX.Parent), (EX.c, RDF.type, EX.Busy), (EX.f, RDF.type, EX.Safe)],
    ),
    "intersection, union, one of (cls-int1/2, cls-uni, cls-oo, scm-int, scm-uni)": (
        """
        ex:Both owl:intersectionOf ( ex:A ex:B ) . ex:Either owl:unionOf ( ex:A ex:C ) .
        ex:Few owl:oneOf ( ex:x ex:y ) .
        ex:a a ex:A , ex:B . ex:c a ex:C . ex:d a ex:Both .
        """,
        [
            (EX.a, RDF.type, EX.Both),
            (EX.c, RDF.type, EX.Either),
            (EX.d, RDF.type, EX.A),
            (EX.x, RDF.type, EX.Few),
            (EX.Both, RDFS.subClassOf, EX.B),
            (EX.C, RDFS.subClassOf, EX.Either),
        ],
    ),
    "datatypes (dt-type1/2, datatype subsumption and disjointness)": (
        """
        ex:flag a owl:DatatypeProperty ; rdfs:range xsd:boolean .
        ex:m ex:flag "true"^^xsd:boolean ; ex:count "3"^^xsd:int ; ex:label "x"@en , "y" .
        ex:n a xsd:int .
        """,
        [],
    ),
    "a chain through an inverse expression (generalised triples, removed at the end)": (
        """
        ex:sibling owl:propertyChainAxiom ( [ owl:inverseOf ex:child ] ex:child ) .
        ex:mum ex:child ex:a , ex:b .
        """,
        [(EX.a, EX.sibling, EX.b), (EX.a, EX.sibling, EX.a)],
    ),
    "disjoint classes, not violated (cax-dw)": (
        "ex:A owl:disjointWith ex:B . ex:C rdfs:subClassOf ex:A . ex:a a ex:C . ex:b a ex:B .",
        [(EX.a, RDF.type, EX.A)],
    ),
}


@pytest.mark.parametrize("case", RULE_CASES, ids=list(RULE_CASES))
def test_each_rule_equals_owlrl(case):
    turtle, expected = RULE_CASES[case]
    fast, reference, ran = _both(_graph(turtle))
    assert ran == "rl"
    assert fast == reference
    assert set(expected) <= fast


def test_kept_blank_nodes_are_the_inputs_own():
    """A restriction's blank node reaches the inferred graph as the very node of the asserted graph."""
    asserted = _graph("ex:A rdfs:subClassOf [ owl:onProperty ex:p ; owl:hasValue ex:v ] . ex:B rdfs:subClassOf ex:A .")
    (restriction,) = asserted.subjects(OWL.onProperty, EX.p)
    fast, reference, _ = _both(asserted)
    assert (EX.B, RDFS.subClassOf, restriction) in fast & reference


# --- seeded random ontologies mixing every construct -------------------------------------------------------------


def _random_ontology(rng: random.Random) -> Graph:
    """A small graph of random axioms and facts over five classes, properties and individuals."""
    graph = Graph()
    individuals = [EX[f"i{k}"] for k in range(5)]
    classes = [EX[f"C{k}"] for k in range(5)] + [OWL.Thing]
    properties = [EX[f"p{k}"] for k in range(5)]
    literals = [Literal("1", datatype=XSD.int), Literal("x", lang="en"), Literal("true", datatype=XSD.boolean)]
    kinds = [OWL.TransitiveProperty, OWL.SymmetricProperty, OWL.FunctionalProperty, OWL.ObjectProperty]

    def listed(items: list) -> BNode:
        head = BNode()
        Collection(graph, head, items)
        return head

    for _ in range(rng.randint(3, 25)):
        c1, c2, p1, p2 = rng.choice(classes), rng.choice(classes), rng.choice(properties), rng.choice(properties)
        a, b = rng.choice(individuals), rng.choice(individuals)
        choice = rng.randrange(20)
        if choice < 8:
            axiom = [RDFS.subClassOf, OWL.equivalentClass, RDFS.domain, RDFS.range][choice // 2]
            graph.add((p1 if axiom in (RDFS.domain, RDFS.range) else c1, axiom, c2))
        elif choice == 8:
            graph.add((p1, rng.choice([RDFS.subPropertyOf, OWL.equivalentProperty, OWL.inverseOf]), p2))
        elif choice == 9:
            graph.add((p1, RDF.type, rng.choice(kinds)))
        elif choice == 10:
            restriction = BNode()
            graph.add((restriction, OWL.onProperty, p1))
            filler = rng.choice([OWL.hasValue, OWL.someValuesFrom, OWL.allValuesFrom])
            graph.add((restriction, filler, a if filler == OWL.hasValue else c2))
            graph.add((c1, rng.choice([RDFS.subClassOf, OWL.equivalentClass]), restriction))
        elif choice == 11:
            graph.add((p1, OWL.propertyChainAxiom, listed([rng.choice(properties) for _ in range(rng.randint(1, 3))])))
        elif choice == 12:
            members = listed([rng.choice(classes) for _ in range(rng.randint(1, 3))])
            graph.add((c1, rng.choice([OWL.intersectionOf, OWL.unionOf]), members))
        elif choice == 13:
            graph.add((a, rng.choice([OWL.sameAs, RDF.type]), b if rng.random() < 0.5 else XSD.int))
        elif choice < 17:
            graph.add((a, p1, rng.choice([b, b, *literals])))
        else:
            graph.add((a, RDF.type, c1))
    return graph


@pytest.mark.parametrize("seed", range(40))
def test_random_ontologies_equal_owlrl(seed):
    fast, reference, ran = _both(_random_ontology(random.Random(seed)))
    assert fast == reference, (ran, fast ^ reference)


# --- where rl hands over to owlrl ----------------------------------------------------------------------------------

FALLBACK_CASES = {
    "max cardinality (cls-maxc2)": (
        """
        ex:Single rdfs:subClassOf [ a owl:Restriction ; owl:onProperty ex:spouse ; owl:maxCardinality 1 ] .
        ex:a a ex:Single ; ex:spouse ex:b , ex:c . ex:b ex:p ex:d .
        """,
        "owl:maxCardinality",
    ),
    "keys (prp-key)": (
        "ex:C owl:hasKey ( ex:id ) . ex:a a ex:C ; ex:id ex:k . ex:b a ex:C ; ex:id ex:k .",
        "owl:hasKey",
    ),
    "owl:sameAs described itself": (
        "owl:sameAs rdfs:domain ex:Thing . ex:a ex:p ex:b .",
        "owl:sameAs is itself described",
    ),
    "an inconsistency (cax-dw)": (
        "ex:A owl:disjointWith ex:B . ex:a a ex:A , ex:B .",
        "disjoint classes",
    ),
}


@pytest.mark.parametrize("case", FALLBACK_CASES, ids=list(FALLBACK_CASES))
def test_falls_back_to_owlrl_and_says_why(case, caplog):
    turtle, why = FALLBACK_CASES[case]
    with caplog.at_level(logging.WARNING, logger="guian_kg.reasoning"):
        fast, reference, ran = _both(_graph(turtle))
    assert ran == "owlrl"
    assert any(why in record.getMessage() and "running owlrl" in record.getMessage() for record in caplog.records)
    # owlrl reports an inconsistency as triples about fresh blank nodes: equal up to those
    assert _ground(fast) == _ground(reference) and len(fast) == len(reference)
    if case != "an inconsistency (cax-dw)":
        assert fast == reference


def test_fallback_finds_what_only_owlrl_rules_find():
    fast, _, _ = _both(_graph(FALLBACK_CASES["max cardinality (cls-maxc2)"][0]))
    assert (EX.b, OWL.sameAs, EX.c) in fast and (EX.c, EX.p, EX.d) in fast


# --- the choice of reasoner is part of the data version ------------------------------------------------------------


def test_reasoner_is_part_of_the_data_version():
    assert REASONERS == ("rl", "owlrl")
    assert reasoner_version("rl") != reasoner_version("owlrl")
    assert data_version(reasoner="rl") != data_version(reasoner="owlrl")
    assert data_version() == data_version(reasoner="rl")


def test_snapshots_of_either_reasoner_hold_the_same_quads(tmp_path):
    """The setting reaches the cached dataset: its own data version, the same N-Quads (blank nodes renamed)."""
    built = {
        reasoner: load_snapshot(load_settings({"cache_dir": str(tmp_path), "reasoner": reasoner}, environ={}))
        for reasoner in REASONERS
    }
    assert built["rl"].version != built["owlrl"].version
    lines = {r: sorted(snapshot.nquads.read_text(encoding="utf-8").splitlines()) for r, snapshot in built.items()}
    assert [line for line in lines["rl"] if "_:" not in line] == [line for line in lines["owlrl"] if "_:" not in line]
    assert len(lines["rl"]) == len(lines["owlrl"])


def test_unknown_reasoner_is_refused():
    with pytest.raises(ValueError, match="unknown reasoner"):
        materialise([], "pellet")
