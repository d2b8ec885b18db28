"""OWL 2 RL closure, filtered down to the inferences worth keeping.

Two reasoners give the same result: `rl` (service.data.rules, the default: owlrl's rules run semi-naively, seconds where
owlrl takes minutes) and `owlrl`, the reference. Where `rl` cannot promise owlrl's result (vocabulary it does not
implement, an inconsistency) it says why in the log and runs owlrl instead.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

import owlrl
from rdflib import OWL, RDF, RDFS, XSD, BNode, Graph, Literal, URIRef

from service.data import rules

log = logging.getLogger("guian_kg.reasoning")

REASONERS = ("rl", "owlrl")
# Bump when the reasoning or filtering changes: it is part of the data version, so caches refresh.
REASONER_VERSION = f"owlrl-{owlrl.__version__}-filter-2"
RULES_VERSION = "rl-1"  # bump when service.rules changes what it computes (it must still equal owlrl's)

_BUILTIN = (str(RDF), str(RDFS), str(OWL), str(XSD))
_TRIVIAL_TYPES = {OWL.Thing, RDFS.Resource}
_REFLEXIVE = {OWL.sameAs, RDFS.subClassOf, RDFS.subPropertyOf, OWL.equivalentClass, OWL.equivalentProperty}


@dataclass(frozen=True)
class Closure:
    """What reasoning added: the kept triples, and counts for the report."""

    triples: list[tuple] = field(repr=False)  # the kept inferences, each once
    asserted_triples: int
    closure_triples: int  # asserted + everything the reasoner derived (rl leaves out owlrl's `x owl:sameAs x`)
    dropped_junk: int
    seconds: float
    reasoner: str  # the one that ran: "rl", or "owlrl" (chosen, or where rl fell back to it)

    @cached_property
    def inferred(self) -> Graph:
        """The kept inferences as an rdflib Graph (built on first use: most callers only iterate `triples`)."""
        graph = Graph()
        for triple in self.triples:
            graph.add(triple)
        return graph


def reasoner_version(reasoner: str = "rl") -> str:
    """The reasoner's part of the data version: which reasoner runs, and the owlrl and filter it equals."""
    return REASONER_VERSION if reasoner == "owlrl" else f"{RULES_VERSION}-{REASONER_VERSION}"


def worth_keeping(s, p, o) -> bool:
    """False for the closure's junk: literal subjects, x≡x, axioms about the built-in vocabularies, ⊤ types."""
    return _subject_worth_keeping(s) and _statement_worth_keeping(p, o, s == o)


def _subject_worth_keeping(s) -> bool:
    """Nothing about literals, nor about the built-in vocabularies (this also covers owl:Nothing ⊑ x)."""
    return not isinstance(s, Literal) and not (isinstance(s, URIRef) and str(s).startswith(_BUILTIN))


def _statement_worth_keeping(p, o, reflexive: bool) -> bool:
    if reflexive and p in _REFLEXIVE:
        return False
    if p == RDF.type:
        # not ⊤, not memberships of anonymous class expressions (the ontology's restrictions), not datatypes
        return not (o in _TRIVIAL_TYPES or isinstance(o, BNode) or (isinstance(o, URIRef) and o.startswith(str(XSD))))
    return not (p == RDFS.subClassOf and o == OWL.Thing)


def full_closure(asserted: Iterable[tuple]) -> Graph:
    """The whole OWL 2 RL closure of `asserted`, junk included (the explainer needs every premise)."""
    work = Graph()
    for triple in asserted:
        work.add(triple)
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics, axiomatic_triples=False, datatype_axioms=False).expand(work)
    return work


def materialise(asserted: Iterable[tuple], reasoner: str = "rl") -> Closure:
    """Run the OWL 2 RL closure over `asserted` (left untouched) and return what it adds that is worth keeping.

    Raises:
        ValueError: for a reasoner not in REASONERS.
    """
    if reasoner not in REASONERS:
        raise ValueError(f"unknown reasoner {reasoner!r}; one of {', '.join(REASONERS)}")
    started = time.perf_counter()
    ran = reasoner
    with _collector_paused():
        if not isinstance(asserted, Collection):
            asserted = list(asserted)  # owlrl may have to read it again
        if reasoner == "rl":
            try:
                derivation = rules.closure(asserted)
                kept = _kept(derivation)
                derived = len(derivation.added)
                counts = (derivation.asserted, derivation.asserted + derived, derived - len(kept))
            except rules.Unsupported as exc:
                log.warning("the rl reasoner cannot promise owlrl's result here (%s): running owlrl", exc)
                ran = "owlrl"
    if ran == "owlrl":
        kept, counts = _owlrl_kept(asserted)
    seconds = time.perf_counter() - started
    log.info(
        "OWL 2 RL closure (%s): %d asserted, +%d kept, %d junk dropped, %.2f s%s",
        ran,
        counts[0],
        len(kept),
        counts[2],
        seconds,
        f"; rules in play: {' '.join(derivation.rules)}" if ran == "rl" else "",
    )
    return Closure(kept, *counts, seconds, ran)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The rule engine allocates millions of long-lived tuples and sets, none of them in a cycle: Python's cyclic
    collector would only rescan them again and again as they grow (a third of the time at a million triples)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _kept(derivation: rules.Derivation) -> list[tuple]:
    """The derived triples worth keeping, the filter's verdicts remembered per subject and per (p, o) pair."""
    terms, term = derivation.terms, derivation.term
    subjects: dict[int, bool] = {}
    statements: dict[int, dict[int, bool]] = defaultdict(dict)  # p → o → verdict, for s ≠ o
    kept = []
    for s, p, o in derivation.added:
        verdict = subjects.get(s)
        if verdict is None:
            verdict = subjects[s] = _subject_worth_keeping(term(s))
        if not verdict:
            continue  # literal subjects among them: below, s is a node id ≥ 0
        if s == o:
            verdict = _statement_worth_keeping(terms[p], terms[s], True)
        else:
            by_o = statements[p]
            verdict = by_o.get(o)
            if verdict is None:
                verdict = by_o[o] = _statement_worth_keeping(terms[p], term(o), False)
        if verdict:
            kept.append((terms[s], terms[p], term(o)))
    return kept


def _owlrl_kept(asserted: Collection[tuple]) -> tuple[list[tuple], tuple[int, int, int]]:
    """owlrl's closure, filtered: the kept triples and (asserted, closure, junk) counts."""
    given = asserted if isinstance(asserted, Graph) else set(asserted)
    work = full_closure(given)
    kept, dropped = [], 0
    for triple in work:
        if triple in given:
            continue
        if worth_keeping(*triple):
            kept.append(triple)
        else:
            dropped += 1
    return kept, (len(given), len(work), dropped)
