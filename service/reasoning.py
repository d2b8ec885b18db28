"""OWL 2 RL closure with owlrl, filtered down to the inferences worth keeping."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import owlrl
from rdflib import OWL, RDF, RDFS, XSD, BNode, Graph, Literal, URIRef

log = logging.getLogger("guian_kg.reasoning")

# Bump when the reasoning or filtering changes: it is part of the data version, so caches refresh.
REASONER_VERSION = f"owlrl-{owlrl.__version__}-filter-2"

_BUILTIN = (str(RDF), str(RDFS), str(OWL), str(XSD))
_TRIVIAL_TYPES = {OWL.Thing, RDFS.Resource}
_REFLEXIVE = {OWL.sameAs, RDFS.subClassOf, RDFS.subPropertyOf, OWL.equivalentClass, OWL.equivalentProperty}


@dataclass(frozen=True)
class Closure:
    """What reasoning added: the kept triples, and counts for the report."""

    inferred: Graph
    asserted_triples: int
    closure_triples: int
    dropped_junk: int
    seconds: float


def worth_keeping(s, p, o) -> bool:
    """False for the closure's junk: literal subjects, x≡x, axioms about the built-in vocabularies, ⊤ types."""
    if isinstance(s, Literal):
        return False
    if p in _REFLEXIVE and s == o:
        return False
    if isinstance(s, URIRef) and str(s).startswith(_BUILTIN):
        return False
    if p == RDF.type and (o in _TRIVIAL_TYPES or isinstance(o, BNode)):
        return False  # ⊤, and memberships of anonymous class expressions (restrictions) of the ontology
    if p == RDFS.subClassOf and o == OWL.Thing:
        return False
    if p == RDF.type and isinstance(o, URIRef) and str(o).startswith(str(XSD)):
        return False  # datatype memberships of literals' values, never useful to clients
    return not (p in (RDFS.subClassOf, OWL.equivalentClass) and s == OWL.Nothing)


def full_closure(asserted: Iterable[tuple]) -> Graph:
    """The whole OWL 2 RL closure of `asserted`, junk included (the explainer needs every premise)."""
    work = Graph()
    for triple in asserted:
        work.add(triple)
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics, axiomatic_triples=False, datatype_axioms=False).expand(work)
    return work


def materialise(asserted: Graph) -> Closure:
    """Run the OWL 2 RL closure over `asserted` (left untouched) and return what it adds that is worth keeping."""
    started = time.perf_counter()
    work = full_closure(asserted)
    inferred = Graph()
    dropped = 0
    for triple in work:
        if triple in asserted:
            continue
        if worth_keeping(*triple):
            inferred.add(triple)
        else:
            dropped += 1
    seconds = time.perf_counter() - started
    log.info(
        "OWL 2 RL closure: %d asserted, +%d kept, %d junk dropped, %.2f s",
        len(asserted),
        len(inferred),
        dropped,
        seconds,
    )
    return Closure(inferred, len(asserted), len(work), dropped, seconds)
