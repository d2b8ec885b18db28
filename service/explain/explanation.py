"""What an explanation is, and how it reads: JSON, text and HTML."""

from __future__ import annotations

import html
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from rdflib import BNode, URIRef
from rdflib.term import Node

from service import names
from service.errors import NotFoundError

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


class NotEntailedError(NotFoundError):
    """The triple is neither asserted nor entailed by OWL 2 RL, so there is nothing to explain."""

    code, title = "not-entailed", "Not entailed"


def explain_link(s: Node, p: Node, o: Node, html_view: bool = True) -> str:
    """The relative URL of a triple's explanation (what resource pages link every inferred statement to)."""
    query = {"s": s.n3(), "p": p.n3(), "o": o.n3()}
    if html_view:
        query["format"] = "html"
    return "/api/explain?" + urlencode(query)


# --------------------------------------------------------------------------------------------------------------
# Explanations (the public result)


@dataclass(frozen=True)
class Source:
    """Where an asserted triple comes from: its graph, the source document, the quote and its heading; or, for a
    triple a modelling assumption licenses, the assumption, its label and its rationale (never a quote)."""

    kind: str  # "claim" (a claim graph) | "assumption" (an assumption's graph) | "axiom" (the ontology) | "graph"
    graph: str
    document: str | None = None
    quote: str | None = None
    part: str | None = None
    assumption: str | None = None
    label: str | None = None
    rationale: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The source as JSON."""
        body: dict[str, Any] = {
            "kind": self.kind,
            "graph": self.graph,
            "document": self.document,
            "quote": self.quote,
            "part": self.part,
        }
        if self.kind == "assumption":
            body.update(assumption=self.assumption, label=self.label, rationale=self.rationale)
        return body


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
    status: str  # "asserted" | "assumption" (only in assumption graphs) | "inferred" | "axiom"
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

    def assumptions(self) -> list[Source]:
        """The modelling assumptions this derivation rests on, each once, in the order met."""
        found: dict[str, Source] = {}
        for node in self.walk():
            for source in node.sources:
                if source.kind == "assumption" and source.assumption:
                    found.setdefault(source.assumption, source)
        return list(found.values())

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
            body["assumptions"] = [
                {"assumption": a.assumption, "graph": a.graph, "label": a.label, "rationale": a.rationale}
                for a in self.assumptions()
            ]
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
        if self.assumptions():
            lines += ["", "Modelling assumptions this derivation rests on (not the source's words):"]
            for source in self.assumptions():
                lines.append(f"  - {source.label} <{source.assumption}>")
                lines += textwrap.wrap(source.rationale or "", 106, initial_indent="      ", subsequent_indent="      ")
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
            ".asserted{background:#e6f4e6}.axiom{background:#f4efe0}.inferred{background:#e8eefc}.assumption{background:#fdf0d8}"
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
        if self.assumptions():
            parts.append("<h2>Modelling assumptions this derivation rests on</h2><ul>")
            for source in self.assumptions():
                parts.append(
                    f"<li class='assumption'>{_html_link(source.assumption, source.label or source.assumption or '')}"
                    f"<br><small>{html.escape(source.rationale or '')}</small></li>"
                )
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
        elif source.kind == "assumption":
            lines.append(f"{indent}modelling assumption, not the source: {source.label} <{source.assumption}>")
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


def _html_link(iri: str | None, text: str) -> str:
    """A link to `iri` if it is http(s); else the text alone (a `javascript:` IRI from the data is no link)."""
    if not names.linkable(iri):
        return html.escape(text)
    return f"<a href='{html.escape(iri or '')}' rel='noreferrer'>{html.escape(text)}</a>"


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
                f"<small>{html.escape(_part(source))} · {_html_link(source.graph, 'claim')}"
                f" · {_html_link(source.document, 'source')}</small></blockquote>"
            )
        elif source.kind == "assumption":
            parts.append(
                f"<br><small class='assumption'>modelling assumption, not the source: "
                f"{_html_link(source.assumption, source.label or source.assumption or '')}</small>"
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
