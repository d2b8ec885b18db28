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
"""

from __future__ import annotations

import fcntl
import html
import logging
import os
import pickle
import sys
import tempfile
import textwrap
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyoxigraph as ox
from owlrl.AxiomaticTriples import OWLRL_Datatypes_Disjointness
from owlrl.XsdDatatypes import OWL_RL_Datatypes
from rdflib import OWL, RDF, RDFS, XSD, BNode, Dataset, Literal, URIRef
from rdflib.term import Node

from service import names
from service.config import Settings
from service.engine import _to_rdflib
from service.errors import InvalidParameterError, NotFoundError
from service.reasoning import REASONER_VERSION, full_closure
from service.store import Snapshot, load_snapshot

log = logging.getLogger("guian_kg.explain")

Triple = tuple[Node, Node, Node]
Quad = tuple[Node, Node, Node, str | None]

SPEC = "https://www.w3.org/TR/owl2-profiles/#Reasoning_in_OWL_2_RL_and_RDF_Graphs_using_Rules"
SKOS = "http://www.w3.org/2004/02/skos/core#"
PROV = "http://www.w3.org/ns/prov#"
SKOS_PREF_LABEL = URIRef(SKOS + "prefLabel")
PROV_DERIVED = URIRef(PROV + "wasDerivedFrom")

DEFAULT_MAX_DEPTH = 12
DEFAULT_MAX_NODES = 200
MAX_ALTERNATIVES = 5
MAX_STATED = 20
# The search looks deeper than it shows: nodes below max_depth are known entailed, only not expanded.
SEARCH_DEPTH = 48
SEARCH_BUDGET = 500_000  # rule instances tried per explanation, against pathological data

# Bump when the cached explainer's pickled state changes shape.
CACHE_VERSION = "1"

# Rule id -> short name (OWL 2 Profiles, Tables 4-9; dt-*/prp-ap/cls-thing as owlrl names them).
RULES: dict[str, str] = {
    "prp-spo1": "sub-property",
    "prp-spo2": "property chain",
    "prp-inv1": "inverse property",
    "prp-inv2": "inverse property",
    "prp-trp": "transitive property",
    "prp-symp": "symmetric property",
    "prp-dom": "property domain",
    "prp-rng": "property range",
    "prp-eqp1": "equivalent property",
    "prp-eqp2": "equivalent property",
    "prp-fp": "functional property",
    "prp-ifp": "inverse-functional property",
    "prp-ap": "annotation property",
    "cax-sco": "sub-class",
    "cax-eqc1": "equivalent class",
    "cax-eqc2": "equivalent class",
    "cls-hv1": "has-value restriction",
    "cls-hv2": "has-value restriction",
    "cls-int1": "intersection",
    "cls-int2": "intersection",
    "cls-uni": "union",
    "cls-svf1": "some-values-from restriction",
    "cls-svf2": "some-values-from restriction",
    "cls-avf": "all-values-from restriction",
    "cls-oo": "enumeration",
    "cls-thing": "owl:Thing is a class",
    "cls-nothing1": "owl:Nothing is a class",
    "scm-cls": "every class is its own sub-class",
    "scm-sco": "sub-class hierarchy",
    "scm-eqc1": "equivalent classes are sub-classes",
    "scm-eqc2": "mutual sub-classes are equivalent",
    "scm-op": "every object property is its own sub-property",
    "scm-dp": "every datatype property is its own sub-property",
    "scm-spo": "sub-property hierarchy",
    "scm-eqp1": "equivalent properties are sub-properties",
    "scm-eqp2": "mutual sub-properties are equivalent",
    "scm-dom1": "domain of a sub-class",
    "scm-dom2": "domain of a super-property",
    "scm-rng1": "range of a sub-class",
    "scm-rng2": "range of a super-property",
    "scm-hv": "has-value restrictions on sub-properties",
    "scm-svf1": "some-values-from on sub-classes",
    "scm-svf2": "some-values-from on sub-properties",
    "scm-avf1": "all-values-from on sub-classes",
    "scm-avf2": "all-values-from on sub-properties",
    "scm-int": "intersection members are super-classes",
    "scm-uni": "union members are sub-classes",
    "eq-ref": "everything is the same as itself",
    "eq-sym": "sameAs is symmetric",
    "eq-trans": "sameAs is transitive",
    "eq-rep-s": "replace the subject by a same individual",
    "eq-rep-p": "replace the property by a same property",
    "eq-rep-o": "replace the object by a same individual",
    "dt-type1": "datatypes of OWL 2 RL",
    "owlrl-dt": "owlrl's disjointness of datatypes (no OWL 2 RL rule)",
}

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

_CURIE_FIXED = {
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "owl": str(OWL),
    "xsd": str(XSD),
    "skos": SKOS,
    "prov": PROV,
    "org": "http://www.w3.org/ns/org#",
    "dcterms": "http://purl.org/dc/terms/",
    "cv": "http://data.europa.eu/m8g/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "freq": "http://purl.org/cld/freq/",
}


class NotEntailedError(NotFoundError):
    """The triple is neither asserted nor entailed by OWL 2 RL, so there is nothing to explain."""

    code, title = "not-entailed", "Not entailed"


def prefixes(base_iri: str = names.DEFAULT_BASE) -> dict[str, str]:
    """The CURIE prefixes explanations read and write, for a deployment's base IRI."""
    return {
        "gk": names.rebase(names.GK, base_iri),
        "id": names.rebase(names.ID, base_iri),
        "g": names.rebase(names.GRAPH, base_iri),
        **_CURIE_FIXED,
    }


def parse_term(text: str | None, position: str, base_iri: str = names.DEFAULT_BASE) -> Node:
    """One RDF term from its written form (see the module docstring for the shortcuts).

    Raises:
        InvalidParameterError: when the text is missing or names no term.
    """
    text = (text or "").strip()
    if not text:
        raise InvalidParameterError(f"parameter {position!r} is required", parameter=position)
    table = prefixes(base_iri)
    prefix, colon, local = text.partition(":")
    if text == "a":
        written = f"<{RDF.type}>"
    elif text.startswith(("<", '"', "_:")):
        written = text
    elif text.startswith(("http://", "https://", "urn:")):
        written = f"<{text}>"
    elif colon and prefix in table:
        written = f"<{table[prefix]}{local}>"
    elif not colon and "/" in text:
        written = f"<{table['id']}{text}>"
    elif not colon:
        written = f"<{table['gk']}{text}>"
    else:
        raise InvalidParameterError(
            f"parameter {position!r}: unknown prefix in {text!r} (known: {', '.join(table)})", parameter=position
        )
    term = _read_term(written)
    if term is None or (isinstance(term, Literal) and position != "o"):
        raise InvalidParameterError(
            f"parameter {position!r}: {text!r} is not an RDF term here (write <IRI>, a CURIE like gk:coHandledBy, "
            'section/6, or, as the object, an N-Triples literal like "土地管理"@zh)',
            parameter=position,
        )
    return term


def _read_term(written: str) -> Node | None:
    """A term in N-Triples syntax, checked by a real N-Triples parser (IRIs absolute, literals well-formed)."""
    if "\n" in written or "\r" in written:
        return None
    try:
        quads = list(ox.parse(f"<urn:x:s> <urn:x:p> {written} .", format=ox.RdfFormat.N_TRIPLES))
    except SyntaxError:
        return None
    return _to_rdflib(quads[0].object) if len(quads) == 1 else None


def read_quads(path: Path | None = None, data: str | None = None, fmt: str = "nquads") -> Iterator[Quad]:
    """Quads of an N-Quads or TriG file or text as rdflib terms (graph None for the default graph).

    pyoxigraph reads them: fast, strict, and free of rdflib 7.6's deprecated Dataset parsing path.
    """
    formats = {"nquads": ox.RdfFormat.N_QUADS, "trig": ox.RdfFormat.TRIG}
    source = {"path": path} if path is not None else {"input": data}
    for quad in ox.parse(format=formats[fmt], **source):
        graph = None if isinstance(quad.graph_name, ox.DefaultGraph) else str(quad.graph_name.value)
        yield _to_rdflib(quad.subject), _to_rdflib(quad.predicate), _to_rdflib(quad.object), graph


def explain_link(s: Node, p: Node, o: Node, html_view: bool = True) -> str:
    """The relative URL of a triple's explanation (what resource pages link every inferred statement to)."""
    query = {"s": s.n3(), "p": p.n3(), "o": o.n3()}
    if html_view:
        query["format"] = "html"
    return "/api/explain?" + urlencode(query)


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
# Explanations (the public result)


@dataclass(frozen=True)
class Source:
    """Where an asserted triple comes from: its graph, the source document, the quote and its heading."""

    kind: str  # "claim" (a claim graph with provenance) | "axiom" (the ontology) | "graph" (another graph)
    graph: str
    document: str | None = None
    quote: str | None = None
    part: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The source as JSON."""
        return {
            "kind": self.kind,
            "graph": self.graph,
            "document": self.document,
            "quote": self.quote,
            "part": self.part,
        }


@dataclass(frozen=True)
class Rule:
    """The OWL 2 RL rule of one inference step, and the ontology axiom it applies (in CURIE form)."""

    id: str
    axiom: str | None = None

    @property
    def name(self) -> str:
        return RULES[self.id]

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {"id": self.id, "name": self.name, "axiom": self.axiom, "spec": SPEC}


@dataclass
class Explanation:
    """One node of an explanation tree: the triple, how it holds, and (if inferred) its premises' explanations."""

    triple: Triple
    status: str  # "asserted" | "inferred" | "axiom"
    labels: dict[str, str]
    text: str
    rule: Rule | None = None
    premises: list[Explanation] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    truncated: bool = False
    limit: str | None = None  # why truncated: "max-depth" | "max-nodes" | "search-limit"
    height: int = 0
    # Root only: other derivations (shortest first) and what the source itself says about the subject.
    alternatives: list[Explanation] = field(default_factory=list)
    stated: list[Explanation] = field(default_factory=list)
    summary: str = ""
    note: str = ""
    nodes: int = 1

    def walk(self) -> Iterator[Explanation]:
        """This node and every node below it (premises only, not alternatives), depth first."""
        yield self
        for premise in self.premises:
            yield from premise.walk()

    def leaves(self) -> list[Explanation]:
        """The nodes without premises."""
        return [n for n in self.walk() if not n.premises]

    def to_json(self, root: bool = True) -> dict[str, Any]:
        """Stable JSON: triple (N-Triples + labels), status, rule, premises, sources, truncated."""
        s, p, o = self.triple
        body: dict[str, Any] = {
            "triple": {"s": s.n3(), "p": p.n3(), "o": o.n3(), "labels": self.labels},
            "text": self.text,
            "status": self.status,
            "rule": self.rule.to_json() if self.rule else None,
            "premises": [premise.to_json(root=False) for premise in self.premises],
            "sources": [source.to_json() for source in self.sources],
            "truncated": self.truncated,
            "height": self.height,
        }
        if self.truncated:
            body["limit"] = self.limit
        if root:
            body["nodes"] = self.nodes
            body["alternatives"] = [alt.to_json(root=False) for alt in self.alternatives]
            body["stated"] = [node.to_json(root=False) for node in self.stated]
            body["summary"] = self.summary
            body["note"] = self.note or None
            body["explain"] = explain_link(s, p, o, html_view=False)
        return body

    def to_text(self) -> str:
        """A terminal tree, one readable sentence per node, quotes under the asserted ones."""
        lines = [f"Why: {self.text}", ""]
        if self.summary:
            lines += [*textwrap.wrap(self.summary, 110), ""]
        lines.append(f"{self.text}  [{_badge(self)}]")
        _text_details(self, "    " if not _shown_premises(self) else "│   ", lines)
        shown = _shown_premises(self)
        for i, premise in enumerate(shown):
            _text_tree(premise, "", i == len(shown) - 1, lines)
        if self.alternatives:
            lines += ["", "Other derivations (shortest first):"]
            for alt in self.alternatives:
                because = "; ".join(p.text for p in _shown_premises(alt))
                lines.append(f"  - {alt.rule.id if alt.rule else '?'} ({alt.height} steps): {because}")
        if self.stated:
            lines += ["", "What the source itself states:"]
            for node in self.stated:
                lines.append(f"  - {node.text}")
                for source in node.sources:
                    if source.quote:
                        lines.append(f"      “{source.quote}”{_part(source)}")
        if self.note:
            lines += ["", *textwrap.wrap(self.note, 110)]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """A self-contained HTML page: the tree as nested lists, quotes as blockquotes."""
        parts = [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>Why: {html.escape(self.text)}</title>",
            "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
            "ul{list-style:none;border-left:2px solid #ccd;margin:.2rem 0 .2rem .6rem;padding-left:1rem}"
            ".badge{font-size:.8em;padding:0 .4em;border-radius:.3em;background:#eef;margin-left:.5em}"
            ".asserted{background:#e6f4e6}.axiom{background:#f4efe0}.inferred{background:#e8eefc}"
            ".truncated{background:#fde8e8}blockquote{margin:.2rem 0 .2rem 1rem;color:#333;font-style:normal}"
            "small{color:#666}code{font-size:.85em}</style></head><body>",
            f"<h1>Why does this hold?</h1><p><code>{html.escape(' '.join(t.n3() for t in self.triple))} .</code></p>",
            f"<p>{html.escape(self.summary)}</p>" if self.summary else "",
            "<ul>",
        ]
        _html_node(self, parts)
        parts.append("</ul>")
        if self.alternatives:
            parts.append("<h2>Other derivations</h2><ul>")
            for alt in self.alternatives:
                _html_node(alt, parts)
            parts.append("</ul>")
        if self.stated:
            parts.append("<h2>What the source itself states</h2><ul>")
            for node in self.stated:
                _html_node(node, parts)
            parts.append("</ul>")
        if self.note:
            parts.append(f"<p><strong>{html.escape(self.note)}</strong></p>")
        s, p, o = self.triple
        json_link = html.escape(explain_link(s, p, o, html_view=False))
        parts.append(
            f"<p><small><a href='{json_link}'>JSON</a> · rules as named in "
            f"<a href='{SPEC}'>OWL 2 RL</a></small></p></body></html>"
        )
        return "".join(parts)


def _badge(node: Explanation) -> str:
    if node.status == "inferred" and node.rule:
        badge = f"{node.rule.id}: {node.rule.name}"
    else:
        badge = "ontology axiom" if node.status == "axiom" else node.status
    if node.truncated:
        badge += f"; not expanded: {node.limit}"
    return badge


def _part(source: Source) -> str:
    return f" — {source.part}" if source.part else ""


def _text_details(node: Explanation, indent: str, lines: list[str]) -> None:
    if node.rule and node.rule.axiom:
        folded = _shown_premises(node) is not node.premises
        lines.append(f"{indent}by {node.rule.axiom}" + ("  (ontology axiom)" if folded else ""))
    for source in node.sources:
        if source.quote:
            lines.append(f"{indent}“{source.quote}”{_part(source)}")
            lines.append(f"{indent}  <{source.graph}> from <{source.document}>")
        elif source.kind == "axiom":
            lines.append(f"{indent}(ontology axiom in <{source.graph}>)")
        else:
            lines.append(f"{indent}(asserted in <{source.graph}>)")


def _shown_premises(node: Explanation) -> list[Explanation]:
    """The premises a reader sees: the ontology axiom a rule applies is already on the rule's line."""
    if not (node.rule and node.rule.axiom and node.premises and node.premises[0].status == "axiom"):
        return node.premises
    subject = node.premises[0].triple[0]
    return [
        premise
        for premise in node.premises[1:]
        if not (premise.status == "axiom" and isinstance(subject, BNode) and premise.triple[0] == subject)
    ]


def _text_tree(node: Explanation, prefix: str, last: bool, lines: list[str]) -> None:
    lines.append(f"{prefix}{'└── ' if last else '├── '}{node.text}  [{_badge(node)}]")
    child = prefix + ("    " if last else "│   ")
    shown = _shown_premises(node)
    _text_details(node, child + ("│   " if shown else "    "), lines)
    for i, premise in enumerate(shown):
        _text_tree(premise, child, i == len(shown) - 1, lines)


def _html_node(node: Explanation, parts: list[str]) -> None:
    css = "truncated" if node.truncated else node.status
    s, p, o = node.triple
    link = html.escape(explain_link(s, p, o))
    parts.append(
        f"<li><a href='{link}'>{html.escape(node.text)}</a><span class='badge {css}'>{html.escape(_badge(node))}</span>"
    )
    shown = _shown_premises(node)
    if node.rule and node.rule.axiom:
        folded = " (ontology axiom)" if shown is not node.premises else ""
        parts.append(f"<br><small>by <code>{html.escape(node.rule.axiom)}</code>{folded}</small>")
    for source in node.sources:
        if source.quote:
            parts.append(
                f"<blockquote lang='zh'>“{html.escape(source.quote)}”"
                f"<small>{html.escape(_part(source))} · <a href='{html.escape(source.graph)}'>claim</a>"
                f" · <a href='{html.escape(source.document or '')}'>source</a></small></blockquote>"
            )
        else:
            kind = "ontology axiom" if source.kind == "axiom" else "asserted"
            parts.append(f"<br><small>{kind} in <code>{html.escape(source.graph)}</code></small>")
    if shown:
        parts.append("<ul>")
        for premise in shown:
            _html_node(premise, parts)
        parts.append("</ul>")
    parts.append("</li>")


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
            quads: Iterable[Quad] = read_quads(path=source.nquads)
            self.base_iri, inferred_graph = source.base_iri, source.inferred_graph
        else:
            if isinstance(source, Dataset):
                quads = ((s, p, o, str(g)) for s, p, o, g in source.quads((None, None, None, None)))
            else:
                quads = source
            self.base_iri = base_iri or names.DEFAULT_BASE
            inferred_graph = names.rebase(names.INFERRED_GRAPH, self.base_iri)
        self.ontology_graph = names.rebase(names.ONTOLOGY_GRAPH, self.base_iri)
        self.gk = prefixes(self.base_iri)["gk"]
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
            for prefix, namespace in prefixes(self.base_iri).items():
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
    """The whole OWL 2 RL closure, as service.reasoning computes it but before its junk filter."""
    work = full_closure(asserted)
    # Literal subjects (eq-ref, dt-type2 on literals) are never premises of anything worth explaining.
    return {t for t in work if not isinstance(t[0], Literal)}


# --------------------------------------------------------------------------------------------------------------
# One explainer per data version


_EXPLAINERS: dict[tuple[str, str], Explainer] = {}
_EXPLAINERS_LOCK = threading.Lock()


def explainer_for(snapshot: Any) -> Explainer:
    """The explainer of a snapshot, built once per data version (in memory, and pickled beside the snapshot)."""
    key = (snapshot.version, snapshot.base_iri)
    with _EXPLAINERS_LOCK:
        if key not in _EXPLAINERS:
            _EXPLAINERS.clear()  # one data version at a time
            _EXPLAINERS[key] = _load_or_build(snapshot)
        return _EXPLAINERS[key]


def _load_or_build(snapshot: Any) -> Explainer:
    """Read the pickled explainer of this data version, or build and pickle it (once, across processes)."""
    folder = Path(snapshot.nquads).parent
    cache = folder / f"explainer-{CACHE_VERSION}-{REASONER_VERSION}.pickle"
    with open(folder / ".explain-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.exists():
            try:
                with open(cache, "rb") as f:
                    explainer = pickle.load(f)  # our own cache file, written below
                if isinstance(explainer, Explainer):
                    return explainer
            except Exception as exc:  # a stale or torn cache is rebuilt, never fatal
                log.warning("explainer cache %s unreadable (%s): rebuilding", cache, exc)
        explainer = Explainer(snapshot)
        with tempfile.NamedTemporaryFile("wb", dir=folder, delete=False) as tmp:
            pickle.dump(explainer, tmp, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp.name, cache)
        return explainer


def explain_cli(s: str, p: str, o: str, settings: Settings) -> int:
    """`guian-kg explain S P O`: print the explanation tree; exit 1 when the triple is not entailed."""
    snapshot = load_snapshot(settings)
    terms = [parse_term(text, pos, settings.base_iri) for text, pos in ((s, "s"), (p, "p"), (o, "o"))]
    explainer = explainer_for(snapshot)
    explanation = explainer.explain(*terms)
    if explanation is None:
        shown = " ".join(explainer.curie(t) for t in terms)
        print(f"guian-kg: not entailed: {shown} is neither asserted nor inferred by OWL 2 RL", file=sys.stderr)
        return 1
    sys.stdout.write(explanation.to_text())
    return 0
