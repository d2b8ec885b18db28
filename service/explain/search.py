"""Why a triple holds: its source quote, or the OWL 2 RL rule and premises down to the quotes.

owlrl records no derivations, so explanations are rebuilt backwards: for a target triple, every rule instance
whose conclusion it is and whose premises all lie in the (unfiltered) OWL 2 RL closure is a candidate, and the
premises are explained the same way. Iterative deepening over the derivation height finds the shortest
derivation first (ties: fewest nodes); a strictly falling height bound makes cycles (inverse pairs, symmetric
and transitive loops) terminate. Rules are named as in OWL 2 Profiles §4.3 (prp-spo2, cax-sco, scm-sco, …).

Terms on the command line and in `?s=&p=&o=` may be written as:
`<IRI>` or a bare `http(s)://…` IRI; a CURIE with a known prefix (`gk:coHandledBy`, `id:section/6`,
`skos:broader`, `rdf:type`, …); `a` for rdf:type; `kind/slug` for `id:kind/slug` (`section/6`,
`project/major-industrial-project`); a bare name for `gk:name` (`coHandledBy`); a literal in N-Triples
syntax (`"秘书六科"@zh`); `_:label` for a blank node of the loaded dataset.

One module on purpose: the Explainer, its rule instances (property, class, equality and schema rules) and the
search over them share the closure index and the RDF lists of the ontology; split, each part would take the
explainer apart again. What an explanation is and how it reads lives in `service.explain.explanation`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from owlrl.AxiomaticTriples import OWLRL_Datatypes_Disjointness
from owlrl.XsdDatatypes import OWL_RL_Datatypes
from rdflib import OWL, RDF, RDFS, XSD, BNode, Dataset, Literal, URIRef
from rdflib.term import Node

from service import names
from service.data import rules
from service.data.reasoning import full_closure
from service.data.snapshots import Snapshot, nquads_of
from service.explain.explanation import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_NODES,
    MAX_ALTERNATIVES,
    MAX_STATED,
    PROV_DERIVED,
    SKOS_PREF_LABEL,
    Explanation,
    Quad,
    Rule,
    Source,
    Triple,
)
from service.explain.terms import read_quads

log = logging.getLogger("guian_kg.explain")

# The search looks deeper than it shows: nodes below max_depth are known entailed, only not expanded.
SEARCH_DEPTH = 48
SEARCH_BUDGET = 500_000  # rule instances tried per explanation, against pathological data

# owlrl's one-time rules: conclusions without premises.
_ANNOTATION_PROPERTIES = {
    RDFS.label,
    RDFS.comment,
    RDFS.seeAlso,
    RDFS.isDefinedBy,
    OWL.deprecated,
    OWL.versionInfo,
    OWL.priorVersion,
    OWL.backwardCompatibleWith,
    OWL.incompatibleWith,
}
_PROPERTY_TYPES = {OWL.ObjectProperty: "scm-op", OWL.DatatypeProperty: "scm-dp", RDF.Property: "scm-op"}
_BUILTIN = (str(RDF), str(RDFS), str(OWL), str(XSD))
_DATATYPE_DISJOINTNESS = set(OWLRL_Datatypes_Disjointness)
_LIST_PROPERTIES = (OWL.propertyChainAxiom, OWL.intersectionOf, OWL.unionOf, OWL.oneOf)


# --------------------------------------------------------------------------------------------------------------
# The closure, indexed for backward rule matching


class _Index:
    """A triple set with the lookups backward rule matching needs."""

    def __init__(self, triples: Iterable[Triple]) -> None:
        self.triples: set[Triple] = set()
        self.sp: dict[tuple[Node, Node], set[Node]] = defaultdict(set)
        self.po: dict[tuple[Node, Node], set[Node]] = defaultdict(set)
        self.mentions: dict[Node, list[Triple]] = defaultdict(list)  # a few triples naming each term
        for t in triples:
            self.add(t)

    def add(self, t: Triple) -> None:
        if t in self.triples:
            return
        s, p, o = t
        self.triples.add(t)
        self.sp[(s, p)].add(o)
        self.po[(p, o)].add(s)
        for term in {s, p, o}:
            if len(self.mentions[term]) < 2:
                self.mentions[term].append(t)

    def __contains__(self, t: object) -> bool:
        return t in self.triples

    def __len__(self) -> int:
        return len(self.triples)

    def objects(self, s: Node, p: Node) -> set[Node]:
        return self.sp.get((s, p), set())

    def subjects(self, p: Node, o: Node) -> set[Node]:
        return self.po.get((p, o), set())

    def one(self, s: Node, p: Node) -> Node | None:
        found = self.sp.get((s, p))
        return next(iter(found)) if found else None


def _sorted(nodes: Iterable[Node]) -> list[Node]:
    """Nodes in a stable order, so equal-cost derivations come out the same way every time."""
    return sorted(nodes, key=lambda n: (type(n).__name__, str(n)))


# --------------------------------------------------------------------------------------------------------------
# The search


@dataclass(frozen=True)
class _Proof:
    """A derivation found by the search: conclusion, rule, premise proofs, height and size."""

    triple: Triple
    rule: str | None
    premises: tuple[_Proof, ...] = ()
    height: int = 0
    size: int = 1

    @property
    def cost(self) -> tuple[int, int]:
        return (self.height, self.size)


class _BudgetSpent(Exception):
    """The search tried more rule instances than SEARCH_BUDGET allows."""


class _Search:
    """One explanation's memoised, height-bounded backward search."""

    def __init__(self, explainer: Explainer) -> None:
        self.explainer = explainer
        self.memo: dict[tuple[Triple, int], _Proof | None] = {}
        self.budget = SEARCH_BUDGET

    def best(self, t: Triple, depth: int) -> _Proof | None:
        """The shortest (then smallest) derivation of `t` at most `depth` rule steps high."""
        key = (t, depth)
        if key in self.memo:
            return self.memo[key]
        found: _Proof | None = None
        if t in self.explainer.asserted:
            found = _Proof(t, None)
        elif depth > 0:
            for rule, premises in self.explainer.instances(t):
                self.budget -= 1
                if self.budget < 0:
                    raise _BudgetSpent
                proof = self.prove(t, rule, premises, depth)
                if proof and (found is None or proof.cost < found.cost):
                    found = proof
                    if found.cost == (1, 1):
                        break  # a rule without premises: nothing is shorter
        self.memo[key] = found
        return found

    def prove(self, t: Triple, rule: str, premises: tuple[Triple, ...], depth: int) -> _Proof | None:
        """The rule instance as a proof, if every premise has one within `depth - 1` steps."""
        subs = []
        for premise in premises:
            sub = self.best(premise, depth - 1)
            if sub is None:
                return None
            subs.append(sub)
        height = 1 + max((s.height for s in subs), default=0)
        return _Proof(t, rule, tuple(subs), height, 1 + sum(s.size for s in subs))

    def shortest(self, t: Triple, limit: int) -> _Proof | None:
        """Iterative deepening: the first height at which `t` has a derivation."""
        for depth in range(limit + 1):
            found = self.best(t, depth)
            if found is not None:
                return found
        return None


# --------------------------------------------------------------------------------------------------------------
# The explainer


class Explainer:
    """Explanations over one data version: the asserted graphs, their provenance and the full OWL 2 RL closure."""

    def __init__(self, source: Snapshot | Dataset | Iterable[Quad], base_iri: str | None = None) -> None:
        """Build from a Snapshot (its N-Quads file), an rdflib Dataset, or quads (tests, tools)."""
        started = time.perf_counter()
        if isinstance(source, Snapshot):
            quads: Iterable[Quad] = read_quads(path=nquads_of(source))
            self.base_iri, inferred_graph = source.base_iri, source.inferred_graph
        else:
            if isinstance(source, Dataset):
                quads = ((s, p, o, str(g)) for s, p, o, g in source.quads((None, None, None, None)))
            else:
                quads = source
            self.base_iri = base_iri or names.DEFAULT_BASE
            inferred_graph = names.rebase(names.INFERRED_GRAPH, self.base_iri)
        self.ontology_graph = names.rebase(names.ONTOLOGY_GRAPH, self.base_iri)
        self.gk = names.prefixes(self.base_iri)["gk"]
        self.graphs_of: dict[Triple, list[str]] = defaultdict(list)
        kept_inferred: set[Triple] = set()
        for s, p, o, graph in quads:
            if graph == inferred_graph:
                kept_inferred.add((s, p, o))
            elif str(graph) not in self.graphs_of[(s, p, o)]:
                self.graphs_of[(s, p, o)].append(str(graph))
        self.asserted: set[Triple] = set(self.graphs_of)
        self.closure = _Index(_closure(self.asserted))
        missing = kept_inferred - self.closure.triples
        if missing:
            log.warning("%d triples of the inferred graph are not in the explainer's closure", len(missing))
        self.inferred: set[Triple] = self.closure.triples - self.asserted
        self._sources = self._provenance()
        self._lists = self._rdf_lists()
        self.seconds = time.perf_counter() - started
        log.info(
            "explainer: %d asserted, %d in the closure, %.2f s", len(self.asserted), len(self.closure), self.seconds
        )

    # ---- provenance and labels ----

    def _provenance(self) -> dict[str, list[Source]]:
        """Each claim graph's sources: document, quote and part, from the provenance graph."""
        quote, part = URIRef(self.gk + "sourceQuote"), URIRef(self.gk + "sourcePart")
        sources: dict[str, list[Source]] = {}
        graphs = {g for gs in self.graphs_of.values() for g in gs}
        for graph in graphs:
            node = URIRef(graph)
            document = self.closure.one(node, PROV_DERIVED)
            quotes = _sorted(self.closure.objects(node, quote))
            parts = _sorted(self.closure.objects(node, part))
            if graph == self.ontology_graph:
                sources[graph] = [Source("axiom", graph, _ontology_iri(self, graph))]
            elif quotes:
                sources[graph] = [
                    Source(
                        "claim", graph, str(document) if document else None, str(q), str(parts[0]) if parts else None
                    )
                    for q in quotes
                ]
            else:
                sources[graph] = [Source("graph", graph, str(document) if document else None)]
        return sources

    def label(self, term: Node, lang: str = "en") -> str:
        """A readable name: prefLabel/label in `lang`, else in any language, else the CURIE."""
        if isinstance(term, Literal):
            return f"“{term}”" + (f"@{term.language}" if term.language else "")
        if isinstance(term, BNode):
            return self._describe_bnode(term)
        best: dict[int, str] = {}
        for rank, prop in enumerate((SKOS_PREF_LABEL, RDFS.label)):
            for value in _sorted(self.closure.objects(term, prop)):
                if isinstance(value, Literal):
                    score = 0 if value.language == lang else (2 if value.language else 1)
                    best.setdefault(score * 2 + rank, str(value))
        return best[min(best)] if best else self.curie(term)

    def curie(self, term: Node) -> str:
        """The term in CURIE form when a known prefix fits, else in N-Triples form."""
        if isinstance(term, URIRef):
            text = str(term)
            for prefix, namespace in names.prefixes(self.base_iri).items():
                if text.startswith(namespace) and len(text) > len(namespace):
                    return f"{prefix}:{text[len(namespace) :]}"
        return term.n3()

    def _describe_bnode(self, node: BNode, precise: bool = False) -> str:
        """Restrictions and lists read as what they mean, not as blank node ids."""
        name = self.curie if precise else self.label
        if node in self._lists:
            return "(" + " ∘ ".join(self.curie(m) for m in self._lists[node]) + ")"
        on = self.closure.one(node, OWL.onProperty)
        for kind, precise_form, plain_form in (
            (OWL.hasValue, "[{p} value {v}]", "something that {p} {v}"),
            (OWL.someValuesFrom, "[{p} some {v}]", "something that {p} some {v}"),
            (OWL.allValuesFrom, "[{p} only {v}]", "something whose every {p} is a {v}"),
        ):
            value = self.closure.one(node, kind)
            if on is not None and value is not None:
                return (precise_form if precise else plain_form).format(p=name(on), v=name(value))
        return node.n3()

    def _rdf_lists(self) -> dict[Node, list[Node]]:
        """The rdf:List members of every list the rules read (chains, intersections, unions, enumerations)."""
        lists: dict[Node, list[Node]] = {}
        for t in self.closure.triples:
            if t[1] in _LIST_PROPERTIES and t[2] not in lists:
                members, node, seen = [], t[2], set()
                while node != RDF.nil and node not in seen:
                    seen.add(node)
                    first = self.closure.one(node, RDF.first)
                    if first is None:
                        break
                    members.append(first)
                    node = self.closure.one(node, RDF.rest) or RDF.nil
                lists[t[2]] = members
        return lists

    def sentence(self, t: Triple) -> str:
        """A readable sentence for one triple, using @en labels."""
        s, p, o = t
        subject, obj = self.label(s), self.label(o)
        if p == RDF.type:
            return {
                OWL.TransitiveProperty: f"{subject} is transitive",
                OWL.SymmetricProperty: f"{subject} is symmetric",
                OWL.Class: f"{subject} is a class",
                OWL.ObjectProperty: f"{subject} is an object property",
            }.get(o, f"{subject} is {_article(o, obj)}")
        if p == RDFS.subClassOf:
            return f"every {subject} is {_article(o, obj)}"
        if p == RDFS.subPropertyOf:
            return f"{self.curie(s)} implies {self.curie(o)}"
        if p == OWL.inverseOf:
            return f"{self.curie(s)} is the inverse of {self.curie(o)}"
        if p == OWL.propertyChainAxiom:
            return f"{self.curie(s)} is the chain {obj}"
        if p == RDFS.domain:
            return f"whatever has {self.curie(s)} is a {obj}"
        if p == RDFS.range:
            return f"every value of {self.curie(s)} is a {obj}"
        if p == OWL.equivalentClass:
            return f"{subject} is the same class as {obj}"
        if p == OWL.equivalentProperty:
            return f"{self.curie(s)} is the same property as {self.curie(o)}"
        if p == OWL.sameAs:
            return f"{subject} is the same as {obj}"
        return f"{subject} {self.label(p)} {obj}"

    def axiom_text(self, t: Triple) -> str:
        """A schema triple in compact CURIE form, lists and restrictions spelled out."""
        s, p, o = t
        if p == OWL.propertyChainAxiom:
            return f"{self.curie(s)} ⊒ " + " ∘ ".join(self.curie(m) for m in self._lists.get(o, []))
        if p in (OWL.hasValue, OWL.onProperty, OWL.someValuesFrom, OWL.allValuesFrom) and isinstance(s, BNode):
            return self._describe_bnode(s, precise=True)

        def render(term: Node) -> str:
            return self._describe_bnode(term, precise=True) if isinstance(term, BNode) else self.curie(term)

        return f"{render(s)} {self.curie(p)} {render(o)}"

    # ---- backward rules ----

    def instances(self, t: Triple) -> Iterator[tuple[str, tuple[Triple, ...]]]:
        """Every OWL 2 RL rule instance that concludes `t` with all premises in the closure."""
        C = self.closure
        s, p, o = t

        def ok(*premises: Triple) -> bool:
            return all(q in C and q != t for q in premises)

        # Conclusions without premises (owlrl's one-time rules).
        if p == RDF.type:
            if o == OWL.Class and s in (OWL.Thing, OWL.Nothing):
                yield ("cls-thing" if s == OWL.Thing else "cls-nothing1"), ()
            if o == OWL.AnnotationProperty and s in _ANNOTATION_PROPERTIES:
                yield "prp-ap", ()
            if o == RDFS.Datatype and s in OWL_RL_Datatypes:
                yield "dt-type1", ()
        if p == OWL.disjointWith and (s, p, o) in _DATATYPE_DISJOINTNESS:
            yield "owlrl-dt", ()
        # Property axioms (Table 5) for any property.
        for p1 in _sorted(C.subjects(RDFS.subPropertyOf, p)):
            if p1 != p and ok((p1, RDFS.subPropertyOf, p), (s, p1, o)):
                yield "prp-spo1", ((p1, RDFS.subPropertyOf, p), (s, p1, o))
        for chain in _sorted(C.objects(p, OWL.propertyChainAxiom)):
            for path in self._chain_paths(s, self._lists.get(chain, []), o):
                if ok(*path):
                    yield "prp-spo2", ((p, OWL.propertyChainAxiom, chain), *path)
        for p1 in _sorted(C.subjects(OWL.inverseOf, p)):
            if ok((p1, OWL.inverseOf, p), (o, p1, s)):
                yield "prp-inv1", ((p1, OWL.inverseOf, p), (o, p1, s))
        for p2 in _sorted(C.objects(p, OWL.inverseOf)):
            if ok((p, OWL.inverseOf, p2), (o, p2, s)):
                yield "prp-inv2", ((p, OWL.inverseOf, p2), (o, p2, s))
        if (p, RDF.type, OWL.SymmetricProperty) in C and ok((o, p, s)):
            yield "prp-symp", ((p, RDF.type, OWL.SymmetricProperty), (o, p, s))
        if (p, RDF.type, OWL.TransitiveProperty) in C:
            for y in _sorted(C.objects(s, p) & C.subjects(p, o)):
                if ok((s, p, y), (y, p, o)):
                    yield "prp-trp", ((p, RDF.type, OWL.TransitiveProperty), (s, p, y), (y, p, o))
        for p1 in _sorted(C.subjects(OWL.equivalentProperty, p)):
            if p1 != p and ok((s, p1, o)):
                yield "prp-eqp1", ((p1, OWL.equivalentProperty, p), (s, p1, o))
        for p2 in _sorted(C.objects(p, OWL.equivalentProperty)):
            if p2 != p and ok((s, p2, o)):
                yield "prp-eqp2", ((p, OWL.equivalentProperty, p2), (s, p2, o))
        for x in _sorted(C.subjects(OWL.hasValue, o)):
            if (x, OWL.onProperty, p) in C and ok((s, RDF.type, x)):
                yield "cls-hv1", ((x, OWL.hasValue, o), (x, OWL.onProperty, p), (s, RDF.type, x))
        yield from self._equality_rules(t)
        if p == RDF.type:
            yield from self._type_rules(t)
        elif p in _SCHEMA_RULES:
            yield from _SCHEMA_RULES[p](self, t)

    def _chain_paths(self, s: Node, chain: list[Node], o: Node) -> Iterator[tuple[Triple, ...]]:
        """Every path s -p1-> x1 … -pn-> o through the closure along a property chain."""
        if not chain:
            return
        C = self.closure
        *head, last = chain

        def walk(node: Node, steps: list[Node], path: tuple[Triple, ...]) -> Iterator[tuple[Triple, ...]]:
            if not steps:
                if (node, last, o) in C:
                    yield (*path, (node, last, o))
                return
            for nxt in _sorted(C.objects(node, steps[0])):
                yield from walk(nxt, steps[1:], (*path, (node, steps[0], nxt)))

        yield from walk(s, head, ())

    def _equality_rules(self, t: Triple) -> Iterator[tuple[str, tuple[Triple, ...]]]:
        """eq-ref, eq-sym, eq-trans, eq-rep-s/p/o, and the sameAs that prp-fp/prp-ifp conclude."""
        C = self.closure
        s, p, o = t
        if p == OWL.sameAs:
            if s == o:
                for witness in C.mentions.get(s, []):
                    if witness != t:
                        yield "eq-ref", (witness,)
                        break
                return
            if (o, OWL.sameAs, s) in C:
                yield "eq-sym", ((o, OWL.sameAs, s),)
            for y in _sorted(C.objects(s, OWL.sameAs) & C.subjects(OWL.sameAs, o)):
                if y not in (s, o):
                    yield "eq-trans", ((s, OWL.sameAs, y), (y, OWL.sameAs, o))
            for q in _sorted(C.subjects(RDF.type, OWL.FunctionalProperty)):
                for x in _sorted(C.subjects(q, s) & C.subjects(q, o)):
                    yield "prp-fp", ((q, RDF.type, OWL.FunctionalProperty), (x, q, s), (x, q, o))
            for q in _sorted(C.subjects(RDF.type, OWL.InverseFunctionalProperty)):
                for y in _sorted(C.objects(s, q) & C.objects(o, q)):
                    yield "prp-ifp", ((q, RDF.type, OWL.InverseFunctionalProperty), (s, q, y), (o, q, y))
        for rule, position in (("eq-rep-s", 0), ("eq-rep-p", 1), ("eq-rep-o", 2)):
            for other in _sorted(C.subjects(OWL.sameAs, t[position])):
                if other != t[position]:
                    replaced = tuple(other if i == position else t[i] for i in range(3))
                    if replaced in C and replaced != t:
                        yield rule, ((other, OWL.sameAs, t[position]), replaced)  # type: ignore[misc]

    def _type_rules(self, t: Triple) -> Iterator[tuple[str, tuple[Triple, ...]]]:
        """Rules concluding x rdf:type c: cax-sco, cax-eqc1/2, prp-dom/rng, cls-hv2/int/uni/svf/avf/oo."""
        C = self.closure
        x, _, c = t
        for c1 in _sorted(C.subjects(RDFS.subClassOf, c)):
            if c1 != c and (x, RDF.type, c1) in C:
                yield "cax-sco", ((c1, RDFS.subClassOf, c), (x, RDF.type, c1))
        for c1 in _sorted(C.subjects(OWL.equivalentClass, c)):
            if c1 != c and (x, RDF.type, c1) in C:
                yield "cax-eqc1", ((c1, OWL.equivalentClass, c), (x, RDF.type, c1))
        for c2 in _sorted(C.objects(c, OWL.equivalentClass)):
            if c2 != c and (x, RDF.type, c2) in C:
                yield "cax-eqc2", ((c, OWL.equivalentClass, c2), (x, RDF.type, c2))
        for prop in _sorted(C.subjects(RDFS.domain, c)):
            for y in _sorted(C.objects(x, prop)):
                yield "prp-dom", ((prop, RDFS.domain, c), (x, prop, y))
        for prop in _sorted(C.subjects(RDFS.range, c)):
            for y in _sorted(C.subjects(prop, x)):
                yield "prp-rng", ((prop, RDFS.range, c), (y, prop, x))
        for value in _sorted(C.objects(c, OWL.hasValue)):
            for prop in _sorted(C.objects(c, OWL.onProperty)):
                if (x, prop, value) in C:
                    yield "cls-hv2", ((c, OWL.hasValue, value), (c, OWL.onProperty, prop), (x, prop, value))
        for head in _sorted(C.objects(c, OWL.intersectionOf)):
            members = self._lists.get(head, [])
            if members and all((x, RDF.type, m) in C for m in members):
                yield "cls-int1", ((c, OWL.intersectionOf, head), *((x, RDF.type, m) for m in members))
        for head in _sorted(C.objects(c, OWL.unionOf)):
            for member in self._lists.get(head, []):
                if (x, RDF.type, member) in C:
                    yield "cls-uni", ((c, OWL.unionOf, head), (x, RDF.type, member))
        for head in _sorted(C.objects(c, OWL.oneOf)):
            if x in self._lists.get(head, []):
                yield "cls-oo", ((c, OWL.oneOf, head),)
        for head, members in self._lists.items():
            if c in members:
                for whole in _sorted(C.subjects(OWL.intersectionOf, head)):
                    if (x, RDF.type, whole) in C:
                        yield "cls-int2", ((whole, OWL.intersectionOf, head), (x, RDF.type, whole))
        for prop in _sorted(C.objects(c, OWL.onProperty)):
            for y in _sorted(C.objects(c, OWL.someValuesFrom)):
                for v in _sorted(C.objects(x, prop)):
                    if y == OWL.Thing:
                        yield "cls-svf2", ((c, OWL.someValuesFrom, y), (c, OWL.onProperty, prop), (x, prop, v))
                    elif (v, RDF.type, y) in C:
                        yield (
                            "cls-svf1",
                            ((c, OWL.someValuesFrom, y), (c, OWL.onProperty, prop), (x, prop, v), (v, RDF.type, y)),
                        )
        for r in _sorted(C.subjects(OWL.allValuesFrom, c)):
            for prop in _sorted(C.objects(r, OWL.onProperty)):
                for u in _sorted(C.subjects(prop, x)):
                    if (u, RDF.type, r) in C:
                        yield (
                            "cls-avf",
                            ((r, OWL.allValuesFrom, c), (r, OWL.onProperty, prop), (u, RDF.type, r), (u, prop, x)),
                        )

    # ---- the public entry points ----

    def explain(
        self, s: Node, p: Node, o: Node, max_depth: int = DEFAULT_MAX_DEPTH, max_nodes: int = DEFAULT_MAX_NODES
    ) -> Explanation | None:
        """The explanation of (s p o), shortest derivation first; None when the triple is not entailed.

        `max_depth` (rule steps shown below the root) and `max_nodes` (nodes of the tree) bound what is shown;
        nodes cut by them carry `truncated` and `limit`. The search itself looks up to SEARCH_DEPTH steps deep.
        """
        t = (s, p, o)
        if t not in self.closure:
            return None
        search = _Search(self)
        try:
            proof = search.shortest(t, max(SEARCH_DEPTH, max_depth))
        except _BudgetSpent:
            proof = None
        if proof is None:
            root = self._node(_Proof(t, None))
            root.status, root.truncated, root.limit = "inferred", True, "search-limit"
            root.summary = f"{root.text}: entailed, but no derivation was found within the search limit."
            return root
        budget = [max(1, max_nodes)]
        root = self._build(proof, max_depth, budget)
        root.nodes = max(1, max_nodes) - budget[0]
        try:
            root.alternatives = self._alternatives(search, proof)
        except _BudgetSpent:
            root.alternatives = []
        root.stated = self._stated(root)
        root.summary = self._summary(root)
        root.note = self._note(root)
        return root

    def _summary(self, root: Explanation) -> str:
        """One paragraph: the conclusion because of the asserted facts, by the ontology axioms used."""
        if root.status != "inferred":
            where = "the ontology" if root.status == "axiom" else "the source"
            return f"{root.text}: stated by {where}."
        facts: list[str] = []
        axioms: list[str] = []
        cut = False
        for node in root.walk():
            cut = cut or node.truncated
            if node.premises or node.status == "inferred" or isinstance(node.triple[0], BNode):
                continue  # a restriction's or list's own triples are read through the axiom that uses it
            if node.status == "axiom":
                text = node.text
                bucket = axioms
            else:
                quotes = [f"“{src.quote}”" for src in node.sources if src.quote]
                text = node.text + (f" ({'; '.join(quotes)})" if quotes else "")
                bucket = facts
            if text not in bucket:
                bucket.append(text)
        text = f"{root.text} because " + _and(facts) if facts else root.text
        if axioms:
            text += ("; and " if facts else " because ") + _and(axioms) + " (ontology axioms)"
        return text + (" … (deeper steps not expanded)." if cut else ".")

    def _note(self, root: Explanation) -> str:
        """Says so when the source itself names other things than the one this inference adds."""
        s, _, o = root.triple
        for fixed, added in ((s, o), (o, s)):
            named = [node.triple[2] for node in root.stated if node.triple[0] == fixed]
            if named and added not in named:
                props = _and(sorted({self.label(node.triple[1]) for node in root.stated if node.triple[0] == fixed}))
                return (
                    f"The source itself names only {_and([self.label(x) for x in named])} for {self.label(fixed)} "
                    f"({props}); {self.label(added)} is not among them: it follows by reasoning from the facts above."
                )
        return ""

    def _node(self, proof: _Proof) -> Explanation:
        """One explanation node, premises not yet attached."""
        t = proof.triple
        s, p, o = t
        sources: list[Source] = []
        axiom = None
        if proof.rule is None:
            graphs = self.graphs_of.get(t, [])
            sources = [src for g in graphs for src in self._sources.get(g, [])]
            status = "axiom" if graphs and all(g == self.ontology_graph for g in graphs) else "asserted"
        else:
            status = "inferred"
            first = proof.premises[0].triple if proof.premises else None
            if first is not None and first[1] in _AXIOM_PREDICATES and not proof.rule.startswith(("scm-", "eq-")):
                axiom = self.axiom_text(first)
        return Explanation(
            triple=t,
            status=status,
            labels={"s": self.label(s), "p": self.label(p), "o": self.label(o)},
            text=self.sentence(t),
            rule=Rule(proof.rule, axiom) if proof.rule else None,
            sources=sources,
            height=proof.height,
        )

    def _build(self, proof: _Proof, max_depth: int, budget: list[int]) -> Explanation:
        """The proof as explanation nodes, breadth first, so the node budget cuts the deepest parts."""
        budget[0] -= 1
        root = self._node(proof)
        frontier: list[tuple[Explanation, _Proof, int]] = [(root, proof, 0)]
        while frontier:
            following = []
            for node, found, depth in frontier:
                if not found.premises:
                    continue
                if depth >= max_depth or budget[0] < len(found.premises):
                    node.truncated, node.limit = True, "max-depth" if depth >= max_depth else "max-nodes"
                    continue
                budget[0] -= len(found.premises)
                for sub in found.premises:
                    child = self._node(sub)
                    node.premises.append(child)
                    following.append((child, sub, depth + 1))
            frontier = following
        return root

    def _alternatives(self, search: _Search, chosen: _Proof) -> list[Explanation]:
        """Other rule instances that conclude the root, shortest first, each shown with its premises."""
        found = []
        for rule, premises in self.instances(chosen.triple):
            if chosen.rule == rule and tuple(p.triple for p in chosen.premises) == premises:
                continue
            for depth in range(1, SEARCH_DEPTH + 1):
                proof = search.prove(chosen.triple, rule, premises, depth)
                if proof is not None:
                    if not any(_uses(sub, chosen.triple) for sub in proof.premises):  # no circular ones
                        found.append(proof)
                    break
        found.sort(key=lambda proof: proof.cost)
        seen = {self._facts(chosen)}
        distinct = []
        for proof in found:
            if self._facts(proof) not in seen:  # e.g. prp-inv1 and prp-inv2 over the same fact
                seen.add(self._facts(proof))
                distinct.append(proof)
        return [self._build(proof, 1, [1 + len(proof.premises)]) for proof in distinct[:MAX_ALTERNATIVES]]

    def _facts(self, proof: _Proof) -> frozenset[Triple]:
        """The premises of one step that are not ontology axioms."""
        return frozenset(p.triple for p in proof.premises if self.graphs_of.get(p.triple) != [self.ontology_graph])

    def _stated(self, root: Explanation) -> list[Explanation]:
        """What the source itself links one end of an inferred triple to, among things of the other end's kind.

        For `project coHandledBy section/6` these are the sections the source names for the project
        (gk:statedParticipant 5, 8, 7). Properties that the derivation itself rests on are left out.
        """
        s, p, o = root.triple
        if root.status != "inferred" or str(p).startswith(_BUILTIN) or not isinstance(o, URIRef):
            return []
        used = {node.triple[1] for node in root.walk() if not node.premises}
        stated = []
        for fixed, other in ((s, o), (o, s)):
            kinds = {c for (x, _, c) in self._asserted_types(other)}
            for q, x in self._asserted_about(fixed):
                if q not in used and q != p and kinds & {c for (_, _, c) in self._asserted_types(x)}:
                    stated.append(self._node(_Proof((fixed, q, x), None)))
        return stated[:MAX_STATED]

    def _asserted_types(self, term: Node) -> list[Triple]:
        return [
            (term, RDF.type, c)
            for c in _sorted(self.closure.objects(term, RDF.type))
            if (term, RDF.type, c) in self.asserted
        ]

    def _asserted_about(self, term: Node) -> list[tuple[Node, Node]]:
        """(property, value) of the asserted triples with this subject, not types, schema or literals."""
        return sorted(
            (
                (t[1], t[2])
                for t in self.asserted
                if t[0] == term and not str(t[1]).startswith(_BUILTIN) and isinstance(t[2], URIRef)
            ),
            key=lambda pair: (str(pair[0]), str(pair[1])),
        )


def _uses(proof: _Proof, t: Triple) -> bool:
    """Whether a derivation rests on `t` anywhere."""
    return proof.triple == t or any(_uses(sub, t) for sub in proof.premises)


def _article(term: Node, label: str) -> str:
    """'a class', 'an organisation', and a restriction's description as it is."""
    if isinstance(term, BNode):
        return label
    return ("an " if label[:1].lower() in "aeiou" else "a ") + label


def _and(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _schema_sco(self: Explainer, t: Triple) -> Iterator[tuple[str, tuple[Triple, ...]]]:
    C = self.closure
    c1, _, c2 = t
    if (c1 == c2 or c2 == OWL.Thing) and (c1, RDF.type, OWL.Class) in C:
        yield "scm-cls", ((c1, RDF.type, OWL.Class),)
    if c1 == OWL.Nothing and (c2, RDF.type, OWL.Class) in C:
        yield "scm-cls", ((c2, RDF.type, OWL.Class),)
    for c3 in _sorted(C.objects(c1, RDFS.subClassOf) & C.subjects(RDFS.subClassOf, c2)):
        if c3 not in (c1, c2):
            yield "scm-sco", ((c1, RDFS.subClassOf, c3), (c3, RDFS.subClassOf, c2))
    if c1 != c2 and (c1, OWL.equivalentClass, c2) in C:
        yield "scm-eqc1", ((c1, OWL.equivalentClass, c2),)
    if c1 != c2 and (c2, OWL.equivalentClass, c1) in C:
        yield "scm-eqc1", ((c2, OWL.equivalentClass, c1),)
    for head in _sorted(C.objects(c1, OWL.intersectionOf)):
        if c2 in self._lists.get(head, []):
            yield "scm-int", ((c1, OWL.intersectionOf, head),)
    for head in _sorted(C.objects(c2, OWL.unionOf)):
        if c1 in self._lists.get(head, []):
            yield "scm-uni", ((c2, OWL.unionOf, head),)
    for value in _sorted(C.objects(c1, OWL.hasValue)):
        for p1 in _sorted(C.objects(c1, OWL.onProperty)):
            for p2 in _sorted(C.objects(c2, OWL.onProperty)):
                if (c2, OWL.hasValue, value) in C and (p1, RDFS.subPropertyOf, p2) in C:
                    yield (
                        "scm-hv",
                        (
                            (c1, OWL.hasValue, value),
                            (c1, OWL.onProperty, p1),
                            (c2, OWL.hasValue, value),
                            (c2, OWL.onProperty, p2),
                            (p1, RDFS.subPropertyOf, p2),
                        ),
                    )
    for kind, by_filler, by_property in (
        (OWL.someValuesFrom, "scm-svf1", "scm-svf2"),
        (OWL.allValuesFrom, "scm-avf1", "scm-avf2"),
    ):
        for y1 in _sorted(C.objects(c1, kind)):
            for y2 in _sorted(C.objects(c2, kind)):
                for p1 in _sorted(C.objects(c1, OWL.onProperty)):
                    for p2 in _sorted(C.objects(c2, OWL.onProperty)):
                        both = ((c1, kind, y1), (c1, OWL.onProperty, p1), (c2, kind, y2), (c2, OWL.onProperty, p2))
                        if p1 == p2 and (y1, RDFS.subClassOf, y2) in C:
                            yield by_filler, (*both, (y1, RDFS.subClassOf, y2))
                        # svf2: a narrower property gives a narrower class; avf2: a wider one does.
                        narrower = (
                            (p1, RDFS.subPropertyOf, p2) if kind == OWL.someValuesFrom else (p2, RDFS.subPropertyOf, p1)
                        )
                        if y1 == y2 and p1 != p2 and narrower in C:
                            yield by_property, (*both, narrower)


def _schema_eqc(self: Explainer, t: Triple) -> Iterator[tuple[str, tuple[Triple, ...]]]:
    C = self.closure
    c1, _, c2 = t
    if c1 == c2 and (c1, RDF.type, OWL.Class) in C:
        yield "scm-cls", ((c1, RDF.type, OWL.Class),)
    if (c1, RDFS.subClassOf, c2) in C and (c2, RDFS.subClassOf, c1) in C:
        yield "scm-eqc2", ((c1, RDFS.subClassOf, c2), (c2, RDFS.subClassOf, c1))


def _schema_spo(self: Explainer, t: Triple) -> Iterator[tuple[str, tuple[Triple, ...]]]:
    C = self.closure
    p1, _, p2 = t
    if p1 == p2:
        for kind, rule in _PROPERTY_TYPES.items():
            if (p1, RDF.type, kind) in C:
                yield rule, ((p1, RDF.type, kind),)
    for p3 in _sorted(C.objects(p1, RDFS.subPropertyOf) & C.subjects(RDFS.subPropertyOf, p2)):
        if p3 not in (p1, p2):
            yield "scm-spo", ((p1, RDFS.subPropertyOf, p3), (p3, RDFS.subPropertyOf, p2))
    if p1 != p2 and (p1, OWL.equivalentProperty, p2) in C:
        yield "scm-eqp1", ((p1, OWL.equivalentProperty, p2),)
    if p1 != p2 and (p2, OWL.equivalentProperty, p1) in C:
        yield "scm-eqp1", ((p2, OWL.equivalentProperty, p1),)


def _schema_eqp(self: Explainer, t: Triple) -> Iterator[tuple[str, tuple[Triple, ...]]]:
    C = self.closure
    p1, _, p2 = t
    if p1 == p2:
        for kind, rule in _PROPERTY_TYPES.items():
            if (p1, RDF.type, kind) in C:
                yield rule, ((p1, RDF.type, kind),)
    if (p1, RDFS.subPropertyOf, p2) in C and (p2, RDFS.subPropertyOf, p1) in C:
        yield "scm-eqp2", ((p1, RDFS.subPropertyOf, p2), (p2, RDFS.subPropertyOf, p1))


def _schema_domain_range(self: Explainer, t: Triple) -> Iterator[tuple[str, tuple[Triple, ...]]]:
    C = self.closure
    prop, kind, c = t
    rule1, rule2 = ("scm-dom1", "scm-dom2") if kind == RDFS.domain else ("scm-rng1", "scm-rng2")
    for c1 in _sorted(C.subjects(RDFS.subClassOf, c)):
        if c1 != c and (prop, kind, c1) in C:
            yield rule1, ((prop, kind, c1), (c1, RDFS.subClassOf, c))
    for p2 in _sorted(C.objects(prop, RDFS.subPropertyOf)):
        if p2 != prop and (p2, kind, c) in C:
            yield rule2, ((p2, kind, c), (prop, RDFS.subPropertyOf, p2))


_SCHEMA_RULES = {
    RDFS.subClassOf: _schema_sco,
    OWL.equivalentClass: _schema_eqc,
    RDFS.subPropertyOf: _schema_spo,
    OWL.equivalentProperty: _schema_eqp,
    RDFS.domain: _schema_domain_range,
    RDFS.range: _schema_domain_range,
}
# Premise predicates that make a rule's first premise "the ontology axiom it applies".
_AXIOM_PREDICATES = {
    RDFS.subClassOf,
    RDFS.subPropertyOf,
    RDFS.domain,
    RDFS.range,
    OWL.inverseOf,
    OWL.propertyChainAxiom,
    OWL.equivalentClass,
    OWL.equivalentProperty,
    OWL.hasValue,
    OWL.someValuesFrom,
    OWL.allValuesFrom,
    OWL.intersectionOf,
    OWL.unionOf,
    OWL.oneOf,
    RDF.type,
}


def _ontology_iri(explainer: Explainer, graph: str) -> str | None:
    """The owl:Ontology declared in the ontology graph, as the 'document' of axioms."""
    for s in explainer.closure.subjects(RDF.type, OWL.Ontology):
        if isinstance(s, URIRef) and graph in explainer.graphs_of.get((s, RDF.type, OWL.Ontology), []):
            return str(s)
    return None


def _closure(asserted: set[Triple]) -> set[Triple]:
    """The whole OWL 2 RL closure, as service.data.reasoning computes it but before its junk filter."""
    try:  # the rule engine (no owlrl inside a request), plus owlrl's `x owl:sameAs x` (eq-ref) it leaves out
        work = set(asserted) | set(rules.closure(asserted).triples())
        work |= {(term, OWL.sameAs, term) for triple in list(work) for term in triple}
    except rules.Unsupported:  # vocabulary rl does not implement: the reference
        work = set(full_closure(asserted))
    # Literal subjects (eq-ref, dt-type2 on literals) are never premises of anything worth explaining.
    return {t for t in work if not isinstance(t[0], Literal)}
