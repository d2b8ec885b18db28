"""A fast OWL 2 RL closure that derives exactly what owlrl derives, or says why it cannot.

owlrl, the reference, applies every rule of the profile to every triple, cycle after cycle, until a cycle adds
nothing. This module applies the same rules in owlrl's own reading — its inequality tests, its one-time datatype
rules, its removal of triples with blank-node predicates — but semi-naively: each triple is joined once with what
is already known, over integer-interned terms indexed by predicate, and a rule only ever runs when the vocabulary
that triggers it is present (no owl:hasValue restriction, no cls-hv work).

Left out on purpose: `x owl:sameAs x` for every term x (eq-ref). It changes nothing else unless owl:sameAs itself
is described (given a domain, made a sub-property, put in a chain …); that case, OWL vocabulary whose rules are not
implemented here (keys, cardinalities, AllDifferent, AllDisjoint…), and inconsistent input (owlrl then adds error
messages as fresh blank nodes) raise `Unsupported`, and the caller runs owlrl instead.

One module on purpose: the rule table, the axiom compilers and the semi-naive join loop share the interned
vocabulary and the indexes in their hot path; `tests/unit/data/test_reasoner_equality.py` proves it equal to owlrl.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from owlrl.AxiomaticTriples import OWLRL_Datatypes_Disjointness
from owlrl.DatatypeHandling import AltXSDToPYTHON
from owlrl.OWLRL import OWLRL_Annotation_properties
from owlrl.XsdDatatypes import OWL_Datatype_Subsumptions, OWL_RL_Datatypes
from rdflib import OWL, RDF, RDFS, BNode, Literal

# owlrl rules not implemented here (prp-key, prp-npa, cls-maxc, cls-maxqc, eq-diff2/3, cax-adc, prp-adp): their
# trigger vocabulary anywhere in the closure means owlrl must run.
_UNSUPPORTED = {
    OWL.hasKey: "owl:hasKey (prp-key)",
    OWL.sourceIndividual: "a negative property assertion (prp-npa)",
    OWL.maxCardinality: "owl:maxCardinality (cls-maxc)",
    OWL.maxQualifiedCardinality: "owl:maxQualifiedCardinality (cls-maxqc)",
    OWL.AllDifferent: "owl:AllDifferent (eq-diff2/3)",
    OWL.AllDisjointClasses: "owl:AllDisjointClasses (cax-adc)",
    OWL.AllDisjointProperties: "owl:AllDisjointProperties (prp-adp)",
}

_CARDINALITIES = (OWL.maxCardinality, OWL.maxQualifiedCardinality)

# The vocabulary the rules test for, interned first so that its ids are these constants in every run.
_VOCABULARY = (
    RDF.type,
    RDFS.subClassOf,
    RDFS.subPropertyOf,
    RDFS.domain,
    RDFS.range,
    OWL.equivalentClass,
    OWL.equivalentProperty,
    OWL.inverseOf,
    OWL.propertyChainAxiom,
    OWL.onProperty,
    OWL.hasValue,
    OWL.someValuesFrom,
    OWL.allValuesFrom,
    OWL.intersectionOf,
    OWL.unionOf,
    OWL.oneOf,
    OWL.sameAs,
    OWL.differentFrom,
    OWL.disjointWith,
    OWL.complementOf,
    OWL.propertyDisjointWith,
    RDF.first,
    RDF.rest,
    RDF.nil,
    OWL.Thing,
    OWL.Nothing,
    OWL.Class,
    OWL.ObjectProperty,
    OWL.DatatypeProperty,
    RDF.Property,
    OWL.TransitiveProperty,
    OWL.SymmetricProperty,
    OWL.FunctionalProperty,
    OWL.InverseFunctionalProperty,
    OWL.IrreflexiveProperty,
    OWL.AsymmetricProperty,
    RDFS.Datatype,
    OWL.AnnotationProperty,
    *_UNSUPPORTED,
)
(
    TYPE,
    SCO,
    SPO,
    DOMAIN,
    RANGE,
    EQC,
    EQP,
    INV,
    CHAIN,
    ON_PROPERTY,
    HAS_VALUE,
    SOME_VALUES,
    ALL_VALUES,
    INTERSECTION,
    UNION,
    ONE_OF,
    SAME_AS,
    DIFFERENT,
    DISJOINT,
    COMPLEMENT,
    PROPERTY_DISJOINT,
    FIRST,
    REST,
    NIL,
    THING,
    NOTHING,
    CLASS,
    OBJECT_PROPERTY,
    DATATYPE_PROPERTY,
    RDF_PROPERTY,
    TRANSITIVE,
    SYMMETRIC,
    FUNCTIONAL,
    INVERSE_FUNCTIONAL,
    IRREFLEXIVE,
    ASYMMETRIC,
    DATATYPE,
    ANNOTATION_PROPERTY,
) = range(len(_VOCABULARY) - len(_UNSUPPORTED))
_VOCABULARY_SIZE = len(_VOCABULARY)
_UNSUPPORTED_IDS = {i: _UNSUPPORTED[term] for i, term in enumerate(_VOCABULARY) if term in _UNSUPPORTED}
_UNSUPPORTED_PREDICATE_IDS = {
    i for i, term in enumerate(_VOCABULARY) if term in (OWL.hasKey, OWL.sourceIndividual, *_CARDINALITIES)
}
_RL_DATATYPES = frozenset(OWL_RL_Datatypes)

# Which rules a structural predicate or class brings into play (for the log).
_RULES_OF = {
    SCO: "cax-sco scm-sco scm-eqc2",
    SPO: "prp-spo1 scm-spo scm-eqp2",
    DOMAIN: "prp-dom scm-dom1 scm-dom2",
    RANGE: "prp-rng scm-rng1 scm-rng2",
    EQC: "cax-eqc1 cax-eqc2 scm-eqc1",
    EQP: "prp-eqp1 prp-eqp2 scm-eqp1",
    INV: "prp-inv1 prp-inv2",
    CHAIN: "prp-spo2",
    HAS_VALUE: "cls-hv1 cls-hv2 scm-hv",
    SOME_VALUES: "cls-svf1 cls-svf2 scm-svf1 scm-svf2",
    ALL_VALUES: "cls-avf scm-avf1 scm-avf2",
    INTERSECTION: "cls-int1 cls-int2 scm-int",
    UNION: "cls-uni scm-uni",
    ONE_OF: "cls-oo",
    SAME_AS: "eq-sym eq-trans eq-rep-s eq-rep-p eq-rep-o",
    DIFFERENT: "eq-diff1",
    DISJOINT: "cax-dw",
    COMPLEMENT: "cls-com",
    PROPERTY_DISJOINT: "prp-pdw",
    CLASS: "scm-cls",
    OBJECT_PROPERTY: "scm-op",
    DATATYPE_PROPERTY: "scm-dp",
    TRANSITIVE: "prp-trp",
    SYMMETRIC: "prp-symp",
    FUNCTIONAL: "prp-fp",
    INVERSE_FUNCTIONAL: "prp-ifp",
    IRREFLEXIVE: "prp-irp",
    ASYMMETRIC: "prp-asyp",
}
_EMPTY: frozenset = frozenset()
_MISSING: Any = object()
_NO_RULES: Any = None  # the plan of a class or property that no axiom mentions


class Unsupported(Exception):
    """The input needs owlrl: vocabulary this module does not implement, or an inconsistency owlrl reports."""


@dataclass(frozen=True)
class Derivation:
    """What the closure adds to the asserted triples, as owlrl would (less eq-ref), over interned terms."""

    added: list[tuple[int, int, int]]  # term ids: ≥ 0 index `terms`, < 0 are literals[~id]
    terms: list
    literals: list
    asserted: int
    rules: tuple[str, ...]  # the owlrl rules whose trigger vocabulary occurs (for the log)

    def term(self, i: int) -> Any:
        return self.terms[i] if i >= 0 else self.literals[~i]

    def triples(self) -> Iterator[tuple]:
        """The added triples as rdflib terms."""
        term = self.term
        for s, p, o in self.added:
            yield term(s), term(p), term(o)


def closure(asserted: Iterable[tuple]) -> Derivation:
    """The triples owlrl's OWL 2 RL closure adds to `asserted` (junk included, `x owl:sameAs x` left out).

    Raises:
        Unsupported: when the input uses OWL vocabulary not implemented here or is inconsistent; run owlrl.
    """
    engine = _Engine()
    engine.load(asserted)
    engine.run()
    engine.check_consistency()
    added = engine.added_without_generalised()
    return Derivation(added, engine.terms, engine.literals, engine.asserted_count, engine.rules_in_play())


_VALID: dict = {}  # typed literal → whether its lexical form is valid for its datatype (owlrl's dt-not-type)


def _one_time_triples(implicit: dict, explicit: dict, same_pairs: Iterable[tuple]) -> list[tuple]:
    """owlrl's one-time rules (OWLRL_Semantics.one_time_rules): cls-thing, cls-nothing1, prp-ap, dt-type1,
    dt-type2, dt-not-type, datatype subsumption and disjointness — over the asserted triples' typed literals
    (`implicit`: literal → its OWL 2 RL datatype), the resources they type with a datatype (`explicit`: resource →
    datatypes) and their owl:sameAs pairs.

    Raises:
        Unsupported: for a literal whose lexical form is not valid for its datatype (owlrl reports an error).
    """
    out = [(OWL.Thing, RDF.type, OWL.Class), (OWL.Nothing, RDF.type, OWL.Class)]
    out += [(prop, RDF.type, OWL.AnnotationProperty) for prop in OWLRL_Annotation_properties]
    used = set(implicit.values())
    for literal, datatype in implicit.items():
        out.append((literal, RDF.type, datatype))
        valid = _VALID.get(literal)
        if valid is None:
            try:
                AltXSDToPYTHON.get(datatype, str)(str(literal))
                valid = True
            except ValueError:
                valid = False
            if len(_VALID) < 1_000_000:
                _VALID[literal] = valid
        if not valid:
            raise Unsupported(f"the literal {literal.n3()} is not a valid {datatype} (owlrl reports it)")
    for datatypes in explicit.values():
        used |= datatypes
    for s, o in same_pairs:
        if s in explicit or o in explicit or o in implicit:
            # owlrl's dt rules then depend on the order in which it happens to read the sameAs triples
            raise Unsupported("owl:sameAs on a datatype-typed resource or a typed literal")
    out += [(datatype, RDF.type, RDFS.Datatype) for datatype in OWL_RL_Datatypes]
    out += [(datatype, RDF.type, RDFS.Datatype) for datatypes in explicit.values() for datatype in datatypes]
    for resource, datatypes in [*explicit.items(), *((k, {v}) for k, v in implicit.items())]:
        for datatype in datatypes:
            for broader in OWL_Datatype_Subsumptions.get(datatype, ()):
                out += [(resource, RDF.type, broader), (broader, RDF.type, RDFS.Datatype)]
                used.add(broader)
    out += [t for t in OWLRL_Datatypes_Disjointness if t[0] in used and t[2] in used]
    return out


class _Engine:
    """Integer-interned triples indexed both ways per predicate, and an agenda of triples not yet joined.

    Every fact is joined once, after it is indexed, with every fact indexed before it: whichever premise of a rule
    instance comes last finds the others. Facts about classes and properties no axiom mentions cost one lookup.
    """

    def __init__(self) -> None:
        self.ids: dict = {}
        self.terms: list = []  # id ≥ 0 → IRI or blank node
        self.literals: list = []  # id < 0 → literal ~id
        self.typed_literals: dict = {}  # literal → its datatype, where that is one of OWL 2 RL's (for dt-type2)
        for term in _VOCABULARY:
            self._new(term)
        self.spo: dict[int, dict[int, set[int]]] = {p: {} for p in range(_VOCABULARY_SIZE)}
        self.pos: dict[int, dict[int, set[int]]] = {p: {} for p in range(_VOCABULARY_SIZE)}
        self.agenda: list[tuple[int, int, int]] = []
        self.added: list[tuple[int, int, int]] = []
        self.asserted_count = 0
        self.facts: list[tuple[int, int, int]] = []
        # what the axioms say about one class or property, gathered when first needed; cleared when axioms change
        self.class_plans: dict[int, Any] = {}
        self.property_plans: dict[int, Any] = {}
        self.chains: dict[int, list[tuple[int, tuple[int, ...], int]]] = defaultdict(list)
        self.intersections: dict[int, list[tuple[int, tuple[int, ...]]]] = defaultdict(list)
        self.unions: dict[int, set[int]] = defaultdict(set)
        self.list_members: dict[int, tuple[int, ...]] = {}
        self.characteristics: dict[int, set[int]] = {c: set() for c in _CHARACTERISTICS}
        self.same_as_used = False

    # --- terms and facts ------------------------------------------------------------------------------------

    def _new(self, term) -> int:
        if isinstance(term, Literal):
            self.literals.append(term)
            found = -len(self.literals)
            if term.datatype in _RL_DATATYPES:
                self.typed_literals[term] = term.datatype
        else:
            found = len(self.terms)
            self.terms.append(term)
        self.ids[term] = found
        return found

    def intern(self, term) -> int:
        found = self.ids.get(term)
        return self._new(term) if found is None else found

    def term(self, i: int):
        return self.terms[i] if i >= 0 else self.literals[~i]

    def _insert(self, s: int, p: int, o: int) -> bool:
        """Add a fact to both indexes; False if it was known."""
        by_s = self.spo.get(p)
        if by_s is None:
            by_s = self.spo[p] = {}
            self.pos[p] = {}
        objects = by_s.get(s)
        if objects is None:
            by_s[s] = {o}
        elif o in objects:
            return False
        else:
            objects.add(o)
        by_o = self.pos[p]
        subjects = by_o.get(o)
        if subjects is None:
            by_o[o] = {s}
        else:
            subjects.add(s)
        return True

    def remove(self, s: int, p: int, o: int) -> None:
        """Take a known fact out of both indexes."""
        by_s, by_o = self.spo[p], self.pos[p]
        objects, subjects = by_s[s], by_o[o]
        objects.discard(o)
        subjects.discard(s)
        if not objects:
            del by_s[s]
        if not subjects:
            del by_o[o]

    def emit(self, s: int, p: int, o: int) -> None:
        """A conclusion: queued unless known (owlrl never stores a triple whose predicate is a literal)."""
        if p < 0:
            return
        by_s = self.spo.get(p)
        if by_s is not None and o in by_s.get(s, _EMPTY):
            return
        self.agenda.append((s, p, o))

    def has(self, s: int, p: int, o: int) -> bool:
        by_s = self.spo.get(p)
        return by_s is not None and o in by_s.get(s, _EMPTY)

    def objects(self, s: int, p: int) -> set[int] | frozenset:
        by_s = self.spo.get(p)
        return _EMPTY if by_s is None else by_s.get(s, _EMPTY)

    def subjects(self, p: int, o: int) -> set[int] | frozenset:
        by_o = self.pos.get(p)
        return _EMPTY if by_o is None else by_o.get(o, _EMPTY)

    def pairs(self, p: int) -> Iterator[tuple[int, int]]:
        for s, objects in self.spo.get(p, {}).items():
            for o in objects:
                yield s, o

    # --- loading and the fixpoint ---------------------------------------------------------------------------

    def load(self, asserted: Iterable[tuple]) -> None:
        """Intern and index the asserted triples; queue owlrl's one-time triples (cls-thing, prp-ap, dt-*).

        Raises:
            Unsupported: for a literal in subject position (owlrl's datatype rules only look at objects).
        """
        ids, new, insert, axioms = self.ids, self._new, self._insert, _AXIOMS
        schema, data = [], []
        for s, p, o in asserted:
            si = ids.get(s)
            if si is None:
                si = new(s)
            pi = ids.get(p)
            if pi is None:
                pi = new(p)
            oi = ids.get(o)
            if oi is None:
                oi = new(o)
            if si < 0:
                raise Unsupported("a literal in subject position")
            if insert(si, pi, oi):
                # axioms first: most of the schema is then complete before the data flows through it
                if pi in axioms or (pi == TYPE and 0 <= oi < _VOCABULARY_SIZE):
                    schema.append((si, pi, oi))
                else:
                    data.append((si, pi, oi))
        self.asserted_count = len(schema) + len(data)
        self.facts = schema + data
        for s, p, o in self._one_time():
            self.emit(self.intern(s), self.intern(p), self.intern(o))

    def _one_time(self) -> list[tuple]:
        """owlrl's one-time rules over the asserted triples (see `_one_time_triples`).

        Raises:
            Unsupported: for a literal whose lexical form is not valid for its datatype (owlrl reports an error).
        """
        explicit: dict = defaultdict(set)
        for datatype in OWL_RL_Datatypes:  # resources typed with a datatype (nothing is derived yet)
            for s in self.pos[TYPE].get(self.ids.get(datatype, _MISSING), _EMPTY):
                explicit[self.term(s)].add(datatype)  # no literal subjects: see load()
        same = ((self.term(s), self.term(o)) for s, o in self.pairs(SAME_AS))
        return _one_time_triples(self.typed_literals, explicit, same)

    def run(self) -> None:
        """Join every asserted fact, then every new conclusion, with what is known, until nothing is new.

        Raises:
            Unsupported: when the closure meets vocabulary this module does not implement.
        """
        agenda, insert, added, process = self.agenda, self._insert, self.added, self.process
        facts, self.facts = self.facts, []
        for fact in [None, *facts]:  # None: first the one-time triples queued by load()
            if fact is not None:
                process(*fact)
            while agenda:
                s, p, o = agenda.pop()
                if not insert(s, p, o):
                    continue
                added.append((s, p, o))
                if p in (FIRST, REST):
                    raise Unsupported("the rules derive list structure (rdf:first/rdf:rest)")
                process(s, p, o)

    def process(self, s: int, p: int, o: int) -> None:
        """Fire every rule with a premise this fact matches, the other premises taken from what is known."""
        if s == SAME_AS or o == SAME_AS:
            raise Unsupported("owl:sameAs is itself described (its reflexive triples would then matter)")
        if p == TYPE:
            plan = self.class_plans.get(o, _MISSING)
            if plan is _MISSING:
                plan = self.class_plans[o] = self._class_plan(o)
            if plan is not _NO_RULES:
                self._member(s, plan)
            if 0 <= o < _VOCABULARY_SIZE:
                self._typed_vocabulary(s, o)
        else:
            handler = _AXIOMS.get(p)
            if handler is not None:
                self._axioms_changed()
                handler(self, s, o)
        plan = self.property_plans.get(p, _MISSING)
        if plan is _MISSING:
            plan = self.property_plans[p] = self._property_plan(p)
        if plan is not _NO_RULES:
            self._property(s, p, o, plan)
        if self.same_as_used:
            self._replace(s, p, o)

    def _axioms_changed(self) -> None:
        self.class_plans.clear()
        self.property_plans.clear()

    # --- facts of properties that axioms mention (prp-*, cls-hv2, cls-svf1, cls-avf) --------------------------

    def _property_plan(self, p: int) -> Any:
        """Everything the axioms say about property p, as the joins its facts take part in."""
        spo, pos = self.spo, self.pos
        # the derived triple's predicate q: not p itself (nothing new), never a literal (owlrl refuses those)
        forward = spo[SPO].get(p, _EMPTY) | spo[EQP].get(p, _EMPTY) | pos[EQP].get(p, _EMPTY)
        inverse = spo[INV].get(p, _EMPTY) | pos[INV].get(p, _EMPTY)
        restrictions = pos[ON_PROPERTY].get(p, _EMPTY)
        has_value: dict[int, list[int]] = defaultdict(list)
        for r in restrictions:
            for v in spo[HAS_VALUE].get(r, _EMPTY):
                has_value[v].append(r)
        plan = (
            tuple(spo[DOMAIN].get(p, _EMPTY)),
            tuple(spo[RANGE].get(p, _EMPTY)),
            tuple(q for q in forward if q != p and q >= 0),  # prp-spo1, prp-eqp1/2
            tuple(q for q in inverse if q >= 0),  # prp-inv1/2
            tuple(c for c in _CHARACTERISTICS if p in self.characteristics[c]),
            tuple(self.chains.get(p, ())),
            dict(has_value),
            tuple((r, y) for r in restrictions for y in spo[SOME_VALUES].get(r, _EMPTY)),
            tuple((r, y) for r in restrictions for y in spo[ALL_VALUES].get(r, _EMPTY)),
        )
        return plan if any(plan) else _NO_RULES

    def _property(self, s: int, p: int, o: int, plan: tuple) -> None:
        domains, ranges, forward, inverse, characteristics, chains, has_value, some_values, all_values = plan
        emit = self.emit
        for c in domains:  # prp-dom
            emit(s, TYPE, c)
        for c in ranges:  # prp-rng
            emit(o, TYPE, c)
        for q in forward:
            emit(s, q, o)
        for q in inverse:
            emit(o, q, s)
        if characteristics:
            self._characteristics(s, p, o, characteristics)
        for head, members, i in chains:  # prp-spo2
            self._chain_through(head, members, i, s, o)
        for r in has_value.get(o, ()):  # cls-hv2
            self.emit(s, TYPE, r)
        for r, y in some_values:  # cls-svf1/2, the property's fact last
            if y == THING or self.has(o, TYPE, y):
                self.emit(s, TYPE, r)
        for r, y in all_values:  # cls-avf, the property's fact last
            if self.has(s, TYPE, r):
                self.emit(o, TYPE, y)

    def _characteristics(self, s: int, p: int, o: int, characteristics: tuple[int, ...]) -> None:
        emit = self.emit
        for c in characteristics:
            if c == SYMMETRIC:  # prp-symp
                emit(o, p, s)
            elif c == TRANSITIVE:  # prp-trp, this fact first or second
                for z in self.objects(o, p):
                    emit(s, p, z)
                for x in self.subjects(p, s):
                    emit(x, p, o)
            elif c == FUNCTIONAL:  # prp-fp
                for other in self.objects(s, p):
                    if other != o:
                        emit(o, SAME_AS, other)
                        emit(other, SAME_AS, o)
            elif c == INVERSE_FUNCTIONAL:  # prp-ifp
                for other in self.subjects(p, o):
                    if other != s:
                        emit(s, SAME_AS, other)
                        emit(other, SAME_AS, s)

    def _chain_through(self, head: int, members: tuple[int, ...], i: int, s: int, o: int) -> None:
        """prp-spo2 for every path of the chain through the fact (s members[i] o)."""
        left = {s}
        for m in reversed(members[:i]):
            left = {x for y in left for x in self.subjects(m, y)}
            if not left:
                return
        right = {o}
        for m in members[i + 1 :]:
            right = {z for y in right for z in self.objects(y, m)}
            if not right:
                return
        for x in left:
            for z in right:
                self.emit(x, head, z)

    def _replace(self, s: int, p: int, o: int) -> None:
        """eq-rep-s, eq-rep-p, eq-rep-o with this fact last (the sameAs fact already known)."""
        emit, same = self.emit, self.spo[SAME_AS]
        for other in same.get(s, _EMPTY):
            emit(other, p, o)
        for other in same.get(p, _EMPTY):
            emit(s, other, o)
        for other in self.pos[SAME_AS].get(o, _EMPTY):
            emit(s, p, other)

    # --- members of classes that axioms mention (cax-sco, cax-eqc, cls-hv1, cls-avf, cls-svf, cls-int, cls-uni) --

    def _class_plan(self, c: int) -> Any:
        """Everything the axioms say about class c, as the joins its members take part in."""
        spo, pos = self.spo, self.pos
        supers = (spo[SCO].get(c, _EMPTY) | spo[EQC].get(c, _EMPTY) | pos[EQC].get(c, _EMPTY)) - {c}
        properties = spo[ON_PROPERTY].get(c, _EMPTY)
        plan = (
            tuple(supers),  # cax-sco (leaving out c ⊑ c), cax-eqc1/2
            tuple((p, v) for p in properties for v in spo[HAS_VALUE].get(c, _EMPTY)),  # cls-hv1
            tuple((p, y) for p in properties for y in spo[ALL_VALUES].get(c, _EMPTY)),  # cls-avf
            tuple((r, p) for r in pos[SOME_VALUES].get(c, _EMPTY) for p in spo[ON_PROPERTY].get(r, _EMPTY)),
            tuple(self.intersections.get(c, ())),  # cls-int1
            tuple(m for lst in spo[INTERSECTION].get(c, _EMPTY) for m in self.list_members.get(lst, ())),  # cls-int2
            tuple(self.unions.get(c, ())),  # cls-uni
        )
        return plan if any(plan) else _NO_RULES

    def _member(self, x: int, plan: tuple) -> None:
        supers, has_value, all_values, some_values, intersections, parts, unions = plan
        emit, types = self.emit, self.spo[TYPE][x]
        for d in supers:
            emit(x, TYPE, d)
        for p, v in has_value:
            emit(x, p, v)
        for p, y in all_values:
            for v in self.objects(x, p):
                emit(v, TYPE, y)
        for r, p in some_values:  # cls-svf1, the filler's membership last
            for u in self.subjects(p, x):
                emit(u, TYPE, r)
        for whole, members in intersections:
            if all(m in types for m in members):
                emit(x, TYPE, whole)
        for part in parts:
            emit(x, TYPE, part)
        for whole in unions:
            emit(x, TYPE, whole)

    def _typed_vocabulary(self, x: int, c: int) -> None:
        """x is typed with a class of the OWL vocabulary: scm-cls, scm-op/dp, prp-trp/symp/fp/ifp come into play.

        Raises:
            Unsupported: for a class of vocabulary whose rules are not implemented here.
        """
        emit = self.emit
        if c in _UNSUPPORTED_IDS:
            raise Unsupported(f"the closure uses {_UNSUPPORTED_IDS[c]}")
        if c == CLASS:  # scm-cls
            emit(x, SCO, x)
            emit(x, EQC, x)
            emit(x, SCO, THING)
            emit(NOTHING, SCO, x)
        elif c in (OBJECT_PROPERTY, DATATYPE_PROPERTY, RDF_PROPERTY):  # scm-op, scm-dp
            emit(x, SPO, x)
            emit(x, EQP, x)
        elif c in _CHARACTERISTICS:
            self.characteristics[c].add(x)
            self._axioms_changed()
            for a, b in list(self.pairs(x)):  # the rule over the facts known so far
                self._characteristics(a, x, b, (c,))

    # --- axioms: each joins with every fact it now applies to -----------------------------------------------

    def _sub_class(self, c1: int, c2: int) -> None:
        emit, spo, pos = self.emit, self.spo, self.pos
        if c1 != c2:
            for x in pos[TYPE].get(c1, _EMPTY):  # cax-sco
                emit(x, TYPE, c2)
            for c3 in spo[SCO].get(c2, _EMPTY):  # scm-sco, this fact first
                if c3 != c1:
                    emit(c1, SCO, c3)
            for p in pos[DOMAIN].get(c1, _EMPTY):  # scm-dom1
                emit(p, DOMAIN, c2)
            for p in pos[RANGE].get(c1, _EMPTY):  # scm-rng1
                emit(p, RANGE, c2)
        for c0 in pos[SCO].get(c1, _EMPTY):  # scm-sco, this fact second
            if c0 != c1 and c0 != c2:
                emit(c0, SCO, c2)
        if c1 in spo[SCO].get(c2, _EMPTY):  # scm-eqc2
            emit(c1, EQC, c2)
            emit(c2, EQC, c1)
        for kind in (SOME_VALUES, ALL_VALUES):  # scm-svf1, scm-avf1: restrictions on one property, fillers c1 ⊑ c2
            for r1 in pos[kind].get(c1, _EMPTY):
                for prop in spo[ON_PROPERTY].get(r1, _EMPTY):
                    for r2 in pos[ON_PROPERTY].get(prop, _EMPTY):
                        if c2 in spo[kind].get(r2, _EMPTY):
                            emit(r1, SCO, r2)

    def _equivalent_class(self, c1: int, c2: int) -> None:
        if c1 == c2:
            return
        emit, types = self.emit, self.pos[TYPE]
        for x in types.get(c1, _EMPTY):  # cax-eqc1
            emit(x, TYPE, c2)
        for x in types.get(c2, _EMPTY):  # cax-eqc2
            emit(x, TYPE, c1)
        emit(c1, SCO, c2)  # scm-eqc1
        emit(c2, SCO, c1)

    def _sub_property(self, p1: int, p2: int) -> None:
        emit, spo, pos = self.emit, self.spo, self.pos
        if p1 != p2:
            for x, y in self.pairs(p1):  # prp-spo1
                emit(x, p2, y)
            for p3 in spo[SPO].get(p2, _EMPTY):  # scm-spo, this fact first
                if p3 != p1:
                    emit(p1, SPO, p3)
            if p1 in spo[SPO].get(p2, _EMPTY):  # scm-eqp2
                emit(p1, EQP, p2)
                emit(p2, EQP, p1)
            for c in spo[DOMAIN].get(p2, _EMPTY):  # scm-dom2
                emit(p1, DOMAIN, c)
            for c in spo[RANGE].get(p2, _EMPTY):  # scm-rng2
                emit(p1, RANGE, c)
        for p0 in pos[SPO].get(p1, _EMPTY):  # scm-spo, this fact second
            if p0 != p1 and p0 != p2:
                emit(p0, SPO, p2)
        # scm-hv, scm-svf2, scm-avf2: restrictions c1 on p1 and c2 on p2 with the same value or filler
        for c1 in pos[ON_PROPERTY].get(p1, _EMPTY):
            for kind in (HAS_VALUE, SOME_VALUES, ALL_VALUES):
                for y in spo[kind].get(c1, _EMPTY):
                    for c2 in pos[kind].get(y, _EMPTY):
                        if p2 in spo[ON_PROPERTY].get(c2, _EMPTY):
                            if kind == ALL_VALUES:
                                emit(c2, SCO, c1)
                            else:
                                emit(c1, SCO, c2)

    def _domain(self, p: int, c: int) -> None:
        emit, spo = self.emit, self.spo
        for x in spo.get(p, {}):  # prp-dom
            emit(x, TYPE, c)
        for c2 in spo[SCO].get(c, _EMPTY):  # scm-dom1
            if c2 != c:
                emit(p, DOMAIN, c2)
        for p1 in self.pos[SPO].get(p, _EMPTY):  # scm-dom2
            if p1 != p:
                emit(p1, DOMAIN, c)

    def _range(self, p: int, c: int) -> None:
        emit, spo = self.emit, self.spo
        for y in self.pos.get(p, {}):  # prp-rng
            emit(y, TYPE, c)
        for c2 in spo[SCO].get(c, _EMPTY):  # scm-rng1
            if c2 != c:
                emit(p, RANGE, c2)
        for p1 in self.pos[SPO].get(p, _EMPTY):  # scm-rng2
            if p1 != p:
                emit(p1, RANGE, c)

    def _equivalent_property(self, p1: int, p2: int) -> None:
        if p1 == p2:
            return
        emit = self.emit
        for x, y in self.pairs(p1):  # prp-eqp1
            emit(x, p2, y)
        for x, y in self.pairs(p2):  # prp-eqp2
            emit(x, p1, y)
        emit(p1, SPO, p2)  # scm-eqp1
        emit(p2, SPO, p1)

    def _inverse(self, p1: int, p2: int) -> None:
        emit = self.emit
        for x, y in self.pairs(p1):  # prp-inv1
            emit(y, p2, x)
        for x, y in self.pairs(p2):  # prp-inv2
            emit(y, p1, x)

    def _chain_axiom(self, head: int, lst: int) -> None:
        members = self._list(lst)
        if not members:
            return
        for i, m in enumerate(members):
            self.chains[m].append((head, members, i))
        for s, o in list(self.pairs(members[0])):  # prp-spo2 over the facts known so far
            self._chain_through(head, members, 0, s, o)

    def _on_property(self, r: int, p: int) -> None:
        spo = self.spo
        for v in spo[HAS_VALUE].get(r, _EMPTY):
            self._has_value(r, v)
        for y in spo[SOME_VALUES].get(r, _EMPTY):
            self._some_values(r, y)
        for y in spo[ALL_VALUES].get(r, _EMPTY):
            self._all_values(r, y)

    def _has_value(self, r: int, v: int) -> None:
        emit, spo, pos = self.emit, self.spo, self.pos
        for p in spo[ON_PROPERTY].get(r, _EMPTY):
            for u in pos[TYPE].get(r, _EMPTY):  # cls-hv1
                emit(u, p, v)
            for u in self.subjects(p, v):  # cls-hv2
                emit(u, TYPE, r)
            for other in pos[HAS_VALUE].get(v, _EMPTY):  # scm-hv, both ways round
                for q in spo[ON_PROPERTY].get(other, _EMPTY):
                    if q in spo[SPO].get(p, _EMPTY):
                        emit(r, SCO, other)
                    if p in spo[SPO].get(q, _EMPTY):
                        emit(other, SCO, r)

    def _some_values(self, r: int, y: int) -> None:
        emit, spo, pos = self.emit, self.spo, self.pos
        for p in spo[ON_PROPERTY].get(r, _EMPTY):
            if y == THING:  # cls-svf2
                for u in spo.get(p, {}):
                    emit(u, TYPE, r)
            else:  # cls-svf1
                for v in pos[TYPE].get(y, _EMPTY):
                    for u in self.subjects(p, v):
                        emit(u, TYPE, r)
            self._restriction_pairs(r, y, p, SOME_VALUES)

    def _all_values(self, r: int, y: int) -> None:
        emit, spo, pos = self.emit, self.spo, self.pos
        for p in spo[ON_PROPERTY].get(r, _EMPTY):
            for u in pos[TYPE].get(r, _EMPTY):  # cls-avf
                for v in self.objects(u, p):
                    emit(v, TYPE, y)
            self._restriction_pairs(r, y, p, ALL_VALUES)

    def _restriction_pairs(self, r: int, y: int, p: int, kind: int) -> None:
        """scm-svf1/2 or scm-avf1/2 between restriction r (on p, filler y) and every other one of its kind."""
        emit, spo, pos = self.emit, self.spo, self.pos
        for other in pos[ON_PROPERTY].get(p, _EMPTY):  # scm-svf1/avf1: same property, filler y ⊑ y2 (or y2 ⊑ y)
            for y2 in spo[kind].get(other, _EMPTY):
                if y2 in spo[SCO].get(y, _EMPTY):
                    emit(r, SCO, other)
                if y in spo[SCO].get(y2, _EMPTY):
                    emit(other, SCO, r)
        for other in pos[kind].get(y, _EMPTY):  # scm-svf2/avf2: same filler, property p ⊑ q (or q ⊑ p)
            for q in spo[ON_PROPERTY].get(other, _EMPTY):
                narrower, broader = (r, other) if kind == SOME_VALUES else (other, r)  # avf2 turns it round
                if q in spo[SPO].get(p, _EMPTY):
                    emit(narrower, SCO, broader)
                if p in spo[SPO].get(q, _EMPTY):
                    emit(broader, SCO, narrower)

    def _intersection(self, c: int, lst: int) -> None:
        emit, types = self.emit, self.pos[TYPE]
        members = self._list(lst)
        self.list_members[lst] = members
        for m in members:
            self.intersections[m].append((c, members))
            emit(c, SCO, m)  # scm-int
        if members:  # cls-int1
            for y in types.get(members[0], _EMPTY):
                have = self.objects(y, TYPE)
                if all(m in have for m in members[1:]):
                    emit(y, TYPE, c)
        for y in types.get(c, _EMPTY):  # cls-int2
            for m in members:
                emit(y, TYPE, m)

    def _union(self, c: int, lst: int) -> None:
        emit, types = self.emit, self.pos[TYPE]
        for m in self._list(lst):
            self.unions[m].add(c)
            emit(m, SCO, c)  # scm-uni
            for y in types.get(m, _EMPTY):  # cls-uni
                emit(y, TYPE, c)

    def _one_of(self, c: int, lst: int) -> None:
        for y in self._list(lst):  # cls-oo
            self.emit(y, TYPE, c)

    def _same_as(self, x: int, y: int) -> None:
        if x == y:
            return  # eq-ref's triple: it derives nothing new
        emit, spo, pos = self.emit, self.spo, self.pos
        self.same_as_used = True
        emit(y, SAME_AS, x)  # eq-sym
        for z in spo[SAME_AS].get(y, _EMPTY):  # eq-trans, this fact first
            if z != x:
                emit(x, SAME_AS, z)
        for w in pos[SAME_AS].get(x, _EMPTY):  # eq-trans, this fact second
            if w != y:
                emit(w, SAME_AS, y)
        for p, by_s in spo.items():  # eq-rep-s
            for o in by_s.get(x, _EMPTY):
                emit(y, p, o)
        for s, o in self.pairs(x):  # eq-rep-p
            emit(s, y, o)
        for p, by_o in pos.items():  # eq-rep-o
            for s in by_o.get(y, _EMPTY):
                emit(s, p, x)

    def _list(self, head: int) -> tuple[int, ...]:
        """The members of an rdf:List, read as rdflib's Graph.items reads it (which owlrl uses).

        Raises:
            Unsupported: for a cyclic list or a node with several rdf:first or rdf:rest values.
        """
        members, seen, node = [], {head}, head
        while True:
            firsts, rests = self.objects(node, FIRST), self.objects(node, REST)
            if len(firsts) > 1 or len(rests) > 1:
                raise Unsupported("a list node with several rdf:first or rdf:rest values")
            members.extend(firsts)
            if not rests:
                return tuple(members)
            (node,) = rests
            if node in seen:
                raise Unsupported("a cyclic rdf:List")
            seen.add(node)

    # --- after the fixpoint ---------------------------------------------------------------------------------

    def check_consistency(self) -> None:
        """Raise Unsupported where owlrl would report an inconsistency (it adds its messages as fresh blank nodes).

        Raises:
            Unsupported: naming the first problem found.
        """
        types = self.pos[TYPE]
        if types.get(NOTHING):
            raise Unsupported("something is an owl:Nothing (cls-nothing2)")
        for predicate, rule in ((DISJOINT, "cax-dw"), (COMPLEMENT, "cls-com")):
            for c1, c2 in self.pairs(predicate):
                if types.get(c1, _EMPTY) & types.get(c2, _EMPTY):
                    raise Unsupported(f"an individual of two disjoint classes ({rule})")
        for x, y in self.pairs(DIFFERENT):
            if x == y or y in self.objects(x, SAME_AS) or x in self.objects(y, SAME_AS):
                raise Unsupported("owl:sameAs and owl:differentFrom on the same pair (eq-diff1)")
        for p1, p2 in self.pairs(PROPERTY_DISJOINT):
            if any(self.has(x, p2, y) for x, y in self.pairs(p1)):
                raise Unsupported("disjoint properties share a pair (prp-pdw)")
        for p in types.get(IRREFLEXIVE, _EMPTY):
            if any(x == y for x, y in self.pairs(p)):
                raise Unsupported("an irreflexive property used reflexively (prp-irp)")
        for p in types.get(ASYMMETRIC, _EMPTY):
            if any(self.has(y, p, x) for x, y in self.pairs(p)):
                raise Unsupported("an asymmetric property used both ways (prp-asyp)")

    def added_without_generalised(self) -> list[tuple[int, int, int]]:
        """The derived facts, less those with a blank-node predicate (owlrl's post-processing removes them)."""
        blank = {i for i, term in enumerate(self.terms) if isinstance(term, BNode)}
        return [fact for fact in self.added if fact[1] not in blank] if blank else self.added

    def rules_in_play(self) -> tuple[str, ...]:
        """The owlrl rules whose trigger vocabulary occurs in the closure (for the log)."""
        present = {p for p in _RULES_OF if self.spo.get(p)}
        present |= {c for c in _RULES_OF if self.pos[TYPE].get(c)}
        return tuple(sorted({rule for key in present for rule in _RULES_OF[key].split()}))


_CHARACTERISTICS = (TRANSITIVE, SYMMETRIC, FUNCTIONAL, INVERSE_FUNCTIONAL)


def _unsupported(what: str) -> Callable[[_Engine, int, int], None]:
    def refuse(engine: _Engine, s: int, o: int) -> None:
        raise Unsupported(f"the closure uses {what}")

    return refuse


# The handler of each axiom predicate: it joins a new axiom with every fact known so far.
_AXIOMS: dict[int, Callable[[_Engine, int, int], None]] = {
    SCO: _Engine._sub_class,
    SPO: _Engine._sub_property,
    DOMAIN: _Engine._domain,
    RANGE: _Engine._range,
    EQC: _Engine._equivalent_class,
    EQP: _Engine._equivalent_property,
    INV: _Engine._inverse,
    CHAIN: _Engine._chain_axiom,
    ON_PROPERTY: _Engine._on_property,
    HAS_VALUE: _Engine._has_value,
    SOME_VALUES: _Engine._some_values,
    ALL_VALUES: _Engine._all_values,
    INTERSECTION: _Engine._intersection,
    UNION: _Engine._union,
    ONE_OF: _Engine._one_of,
    SAME_AS: _Engine._same_as,
    **{i: _unsupported(_UNSUPPORTED_IDS[i]) for i in _UNSUPPORTED_PREDICATE_IDS},
}


def _schema(fact: tuple[int, int, int]) -> bool:
    """Whether a fact is an axiom, list structure or a typing that compiles rules (the engine's side structures)."""
    _, p, o = fact
    return p in _AXIOMS or p in (FIRST, REST) or (p == TYPE and o in _SCHEMA_TYPES)


# The classes whose members `_typed_vocabulary` compiles into the engine's side structures, or that need owlrl.
_SCHEMA_TYPES = frozenset(
    {CLASS, OBJECT_PROPERTY, DATATYPE_PROPERTY, RDF_PROPERTY, *_CHARACTERISTICS, *_UNSUPPORTED_IDS}
)


class Incremental:
    """The closure of a set of asserted triples, kept up to date as triples are inserted and deleted.

    Insertions are semi-naive: only the new triples (and what they derive) are joined with what is known.
    Deletions are DRed: over-delete everything with a derivation through a deleted triple (the rules fired with it
    as a premise, joined with the old closure, until nothing more is reached; triples still asserted stop it),
    remove that, then re-derive what still follows: every remaining fact that mentions the subject of an
    over-deleted one is joined again (each OWL 2 RL rule's conclusion has its subject in some premise), then
    semi-naively. A deletion that reaches the schema (an axiom, a list, a typing with OWL vocabulary), an insertion
    of list structure, or a change that removes one of owlrl's one-time triples computes the closure again from the
    asserted triples (`rebuilds` counts it).

    Raises Unsupported where `closure` would; the next change then tries a full run again.
    """

    def __init__(self, asserted: Iterable[tuple] = ()) -> None:
        self.asserted: set[tuple] = set()
        self.rebuilds = 0
        self._literals: dict = defaultdict(int)  # typed literal → asserted triples it occurs in (dt rules)
        self._explicit: dict = defaultdict(int)  # (resource, datatype) → asserted typings with an OWL 2 RL datatype
        self._same: set[tuple] = set()  # asserted owl:sameAs pairs (owlrl's dt rules depend on them)
        self._engine: _Engine | None = None
        self._asserted_ids: set[tuple[int, int, int]] = set()
        self._one_time_ids: set[tuple[int, int, int]] = set()
        self._derived: set[tuple[int, int, int]] = set()  # in the closure, neither asserted nor one-time
        self._touched: set[tuple[int, int, int]] | None = None  # may have entered or left added_ids (None: all)
        self._account(asserted, 1)
        self._rebuild()

    # --- the asserted triples ---------------------------------------------------------------------------------

    def _account(self, triples: Iterable[tuple], sign: int) -> list[tuple]:
        """Add (sign 1) or remove (-1) asserted triples; the ones that were not (or were) asserted."""
        asserted, changed = self.asserted, []
        for triple in triples:
            if (triple in asserted) == (sign > 0):
                continue
            if sign > 0:
                asserted.add(triple)
            else:
                asserted.discard(triple)
            changed.append(triple)
            s, p, o = triple
            for term in (p, o):
                if isinstance(term, Literal) and term.datatype in _RL_DATATYPES:
                    _count(self._literals, term, sign)
            if p == RDF.type and o in _RL_DATATYPES:
                _count(self._explicit, (s, o), sign)
            elif p == OWL.sameAs:
                if sign > 0:
                    self._same.add((s, o))
                else:
                    self._same.discard((s, o))
        return changed

    def _one_time(self, engine: _Engine) -> set[tuple[int, int, int]]:
        explicit: dict = defaultdict(set)
        for s, datatype in self._explicit:
            explicit[s].add(datatype)
        implicit = {literal: literal.datatype for literal in self._literals}
        intern = engine.intern
        return {(intern(s), intern(p), intern(o)) for s, p, o in _one_time_triples(implicit, explicit, self._same)}

    def _rebuild(self) -> None:
        self._engine = None
        self.rebuilds += 1
        engine = _Engine()
        engine.load(self.asserted)
        engine.run()
        engine.check_consistency()
        intern = engine.intern
        self._asserted_ids = {(intern(s), intern(p), intern(o)) for s, p, o in self.asserted}
        self._one_time_ids = self._one_time(engine)
        self._derived = set(engine.added) - self._one_time_ids
        engine.added = []
        self._touched = None  # new ids: anything may have changed
        self._engine = engine

    # --- changes ----------------------------------------------------------------------------------------------

    def insert(self, triples: Iterable[tuple]) -> None:
        """Assert triples and derive what they add.

        Raises:
            Unsupported: when the closure now needs owlrl.
        """
        new = self._account(triples, 1)
        if not new:
            return
        engine = self._engine
        if engine is None:
            self._rebuild()
            return
        self._engine = None  # until this change is complete
        intern = engine.intern
        ids = [(intern(s), intern(p), intern(o)) for s, p, o in new]
        if any(s < 0 for s, _, _ in ids):
            raise Unsupported("a literal in subject position")
        one_time = self._one_time(engine)
        if self._one_time_ids - one_time or any(p in (FIRST, REST) for _, p, _ in ids):
            self._rebuild()  # list structure: the axioms over lists were compiled from the lists as they were
            return
        fresh = []
        self._touch(ids, one_time ^ self._one_time_ids)
        for fact in [*ids, *(one_time - self._one_time_ids)]:
            self._derived.discard(fact)  # a derived triple now asserted: base, not derived
            if engine._insert(*fact):
                fresh.append(fact)
        self._asserted_ids.update(ids)
        self._one_time_ids = one_time
        self._saturate(engine, fresh)
        engine.check_consistency()
        self._engine = engine

    def delete(self, triples: Iterable[tuple]) -> None:
        """Retract asserted triples and what no longer follows (DRed).

        Raises:
            Unsupported: when the closure now needs owlrl.
        """
        gone = self._account(triples, -1)
        if not gone:
            return
        engine = self._engine
        if engine is None:
            self._rebuild()
            return
        self._engine = None
        ids = engine.ids
        gone_ids = {(ids[s], ids[p], ids[o]) for s, p, o in gone}
        self._touch(gone_ids)
        self._asserted_ids -= gone_ids
        one_time = self._one_time(engine)
        if one_time != self._one_time_ids:
            self._rebuild()
            return
        doomed = {f for f in gone_ids if f not in one_time}  # asserted no more, still one-time: stays base
        if any(_schema(f) for f in doomed):
            self._rebuild()
            return
        derived, queue = self._derived, list(doomed)

        def over_delete(s: int, p: int, o: int) -> None:
            fact = (s, p, o)
            if fact in derived and fact not in doomed:
                doomed.add(fact)
                queue.append(fact)

        engine.emit = over_delete  # type: ignore[method-assign]  # the rules' conclusions, known ones included
        try:
            while queue:
                engine.process(*queue.pop())
        finally:
            del engine.emit
        if any(_schema(f) for f in doomed):
            self._rebuild()
            return
        for fact in doomed:
            engine.remove(*fact)
        derived -= doomed
        self._touch(doomed)
        # re-derive: a rule instance that still holds has a remaining premise mentioning its conclusion's subject
        subjects = {s for s, _, _ in doomed}
        seeds = []
        for p, by_s in engine.spo.items():
            for s in subjects & by_s.keys():
                seeds += [(s, p, o) for o in by_s[s]]
            by_o = engine.pos[p]
            for o in subjects & by_o.keys():
                seeds += [(s, p, o) for s in by_o[o] if s not in subjects]
        for x, p, c in doomed:  # cls-oo: its other premise is list structure, which does not fire it
            if p == TYPE:
                for lst in engine.objects(c, ONE_OF):
                    if x in engine._list(lst):
                        engine.emit(x, TYPE, c)
        self._saturate(engine, seeds)
        self._engine = engine

    def _saturate(self, engine: _Engine, facts: list[tuple[int, int, int]]) -> None:
        engine.facts = facts
        engine.run()
        self._derived.update(engine.added)
        self._touch(engine.added)
        engine.added = []

    # --- the closure ------------------------------------------------------------------------------------------

    def _touch(self, *facts: Iterable[tuple[int, int, int]]) -> None:
        if self._touched is not None:
            for some in facts:
                self._touched.update(some)

    def take_touched(self) -> set[tuple[int, int, int]] | None:
        """The interned triples that may have entered or left `added_ids()` since the last call (None: after a full
        run, any may have), and start over."""
        touched, self._touched = self._touched, set()
        return touched

    def adds(self, fact: tuple[int, int, int]) -> bool:
        """Whether the interned triple `fact` is in `added_ids()` (without building that set)."""
        return fact in self._derived or (fact in self._one_time_ids and fact not in self._asserted_ids)

    def added_ids(self) -> tuple[set[tuple[int, int, int]], Callable[[int], Any]]:
        """What the closure adds, as interned triples (blank-node predicates included), and the id → term map.

        The ids of one term stay the same until a full run; the map changes then (compare it to notice).

        Raises:
            Unsupported: when the last change left the closure to owlrl.
        """
        if self._engine is None:
            self._rebuild()
        engine = self._engine
        assert engine is not None
        return self._derived | (self._one_time_ids - self._asserted_ids), engine.term

    def derivation(self) -> Derivation:
        """What the closure adds to the asserted triples, as `closure` would return it.

        Raises:
            Unsupported: when the last change left the closure to owlrl.
        """
        engine = self._engine
        if engine is None:
            self._rebuild()
            engine = self._engine
            assert engine is not None
        blank = {i for i, term in enumerate(engine.terms) if isinstance(term, BNode)}
        added = [f for f in self._derived | (self._one_time_ids - self._asserted_ids) if not blank or f[1] not in blank]
        return Derivation(added, engine.terms, engine.literals, len(self.asserted), engine.rules_in_play())


def _count(counts: dict, key: Any, sign: int) -> None:
    left = counts[key] + sign
    if left > 0:
        counts[key] = left
    else:
        del counts[key]
