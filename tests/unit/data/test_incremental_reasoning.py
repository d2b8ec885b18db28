"""The incremental closure (service.data.rules.Incremental) always equals the full `rl` closure.

Random sequences of inserts and deletes — of real triples, of generated organisations' triples (benchmarks/orggen.py)
and of schema changes (sub-classes, sub-properties, inverses, transitivity, domains, ranges) — are applied, and after
every step the maintained closure is compared with `rules.closure` over the same asserted triples, which
test_reasoner_equality.py proves equal to owlrl's. KG_INCREMENTAL_EXAMPLES sets the number of sequences.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import OWL, RDF, RDFS, Dataset, Graph, Literal, Namespace, URIRef

from benchmarks.orggen import generate
from service.data import rules
from service.data.sources import asserted_dataset, union_graph
from service.resources import source_document

EXAMPLES = int(os.environ.get("KG_INCREMENTAL_EXAMPLES", "12"))
EX = Namespace("http://example.org/")
GK = Namespace("https://w3id.org/guian-kg/ontology#")
SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")


def _real() -> list[tuple]:
    return sorted(union_graph(asserted_dataset()))


REAL = _real()


def _generated() -> list[tuple]:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"incremental-orggen-{os.getpid()}.trig"
    generate(1500, path, source_document(), seed=11, projects=6)
    graph = Graph()
    for s, p, o, _ in Dataset().parse(path, format="trig").quads():
        graph.add((s, p, o))
    path.unlink()
    return sorted(graph)


def _schema_changes(pool: list[tuple]) -> list[tuple]:
    """Axioms to add and remove: between the classes and properties the data uses, and a few of OWL's."""
    classes = sorted({o for _, p, o in pool if p == RDF.type and isinstance(o, URIRef)})[:12]
    properties = sorted({p for _, p, o in pool if not p.startswith(str(RDF)) and not isinstance(o, Literal)})[:12]
    out = []
    for i, c in enumerate(classes):
        out.append((c, RDFS.subClassOf, classes[(i * 5 + 1) % len(classes)]))
        out.append((c, OWL.equivalentClass, EX[f"Same{i}"]))
    for i, p in enumerate(properties):
        q = properties[(i * 7 + 3) % len(properties)]
        out += [
            (p, RDFS.subPropertyOf, q),
            (p, OWL.inverseOf, EX[f"inverse{i}"]),
            (p, RDF.type, OWL.TransitiveProperty),
            (p, RDF.type, OWL.SymmetricProperty),
            (p, RDFS.domain, classes[i % len(classes)]),
            (p, RDFS.range, classes[(i + 3) % len(classes)]),
        ]
    return out


def _full(asserted: set) -> set | None:
    try:
        return set(rules.closure(asserted).triples())
    except rules.Unsupported:
        return None


def _maintained(closure: rules.Incremental) -> set | None:
    try:
        return set(closure.derivation().triples())
    except rules.Unsupported:
        return None


def _added(closure: rules.Incremental) -> tuple[set, object] | None:
    try:
        return closure.added_ids()
    except rules.Unsupported:
        return None


def _check_touched(closure: rules.Incremental, before: tuple[set, object] | None) -> None:
    """What entered or left the closure's additions since the last look is among the facts it says it touched
    (unless it ran over the whole data: None), and `adds` agrees with `added_ids`."""
    touched = closure.take_touched()
    now = _added(closure)
    if touched is None or before is None or now is None or now[1] != before[1]:
        return  # a full run: new ids, the caller compares everything
    assert (before[0] ^ now[0]) <= touched
    assert all(closure.adds(fact) == (fact in now[0]) for fact in touched)


def _check(pool: list[tuple], extra: list[tuple], data: st.DataObject) -> None:
    held_out = data.draw(st.sets(st.sampled_from(pool), max_size=30), label="held out at the start")
    asserted = set(pool) - held_out
    closure = rules.Incremental(asserted)
    assert _maintained(closure) == _full(asserted)
    candidates = sorted(held_out) + extra or list(pool)
    closure.take_touched()
    before = _added(closure)
    for _ in range(data.draw(st.integers(1, 8), label="steps")):
        if not asserted or (candidates and data.draw(st.booleans(), label="insert?")):
            batch = data.draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=4), label="insert")
            asserted |= set(batch)
            with contextlib.suppress(rules.Unsupported):  # then the full closure needs owlrl too: compared below
                closure.insert(batch)
        else:
            batch = data.draw(st.lists(st.sampled_from(sorted(asserted)), min_size=1, max_size=4), label="delete")
            asserted -= set(batch)
            with contextlib.suppress(rules.Unsupported):
                closure.delete(batch)
        assert closure.asserted == asserted
        assert _maintained(closure) == _full(asserted)
        _check_touched(closure, before)
        before = _added(closure)


COMMON = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@COMMON
@given(st.data())
def test_real_data_inserts_and_deletes(data):
    _check(REAL, _schema_changes(REAL), data)


@pytest.fixture(scope="module")
def generated() -> list[tuple]:
    return _generated()


@settings(parent=COMMON, max_examples=max(EXAMPLES // 3, 3))
@given(data=st.data())
def test_generated_organisation_inserts_and_deletes(generated, data):
    pool = sorted(set(REAL) | set(generated))
    _check(pool, _schema_changes(generated), data)


SMALL = [
    (EX.a, EX.p, EX.b),
    (EX.b, EX.p, EX.c),
    (EX.c, EX.p, EX.a),
    (EX.a, RDF.type, EX.A),
    (EX.b, EX.q, EX.a),
    (EX.p, RDF.type, OWL.TransitiveProperty),
    (EX.p, OWL.inverseOf, EX.q),
    (EX.p, RDFS.domain, EX.A),
    (EX.p, RDFS.range, EX.B),
    (EX.A, RDFS.subClassOf, EX.B),
    (EX.B, RDFS.subClassOf, EX.A),
    (EX.q, RDFS.subPropertyOf, EX.r),
    (EX.r, RDFS.subPropertyOf, EX.p),
    (EX.c, EX.r, EX.d),
    (EX.d, EX.age, Literal(3)),
    (EX.d, EX.age, Literal("2020-01-01", datatype=URIRef("http://www.w3.org/2001/XMLSchema#date"))),
    (EX.chain, OWL.propertyChainAxiom, EX.list1),
    (EX.list1, RDF.first, EX.p),
    (EX.list1, RDF.rest, EX.list2),
    (EX.list2, RDF.first, EX.q),
    (EX.list2, RDF.rest, RDF.nil),
]


@settings(parent=COMMON, max_examples=EXAMPLES * 8)
@given(data=st.data())
def test_small_cyclic_cases(data):
    """Cycles, mutual sub-classes and sub-properties, chains and typed literals, where DRed's re-derivation is hard."""
    _check(SMALL, [], data)


def test_a_data_delete_does_not_rebuild():
    """A one-triple data insert and delete run incrementally (no full run), on the real data."""
    asserted = set(REAL)
    closure = rules.Incremental(asserted)
    project = URIRef("https://w3id.org/guian-kg/id/project/major-industrial-project")
    new = URIRef("https://w3id.org/guian-kg/id/project/a-new-one")
    touches = [(s, p, o) for s, p, o in REAL if s == project and p == GK.touchesDomain]
    assert touches
    triple = (new, GK.touchesDomain, touches[0][2])
    closure.insert([triple])
    closure.delete([triple])
    closure.delete([touches[0]])
    assert closure.rebuilds == 1
    assert _maintained(closure) == _full(asserted - {touches[0]})
