"""What the HTML pages show, assembled from SPARQL results: labels by language, statements, provenance, pictures."""

from __future__ import annotations

import functools
import logging
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib import RDF, RDFS, BNode, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection

from service import names
from service.explain import explain_link
from service.resources import ontology_dir
from service.svg import Edge, Node, network_svg, tree_svg

log = logging.getLogger("guian_kg.pages")

LANGUAGES = ("en", "zh")
# The named query the home page offers first: which sections co-handle the worked-example project.
FLAGSHIP_QUERY = "project-co-handling"
DEFAULT_LANGUAGE = "en"

# A SPARQL JSON term ({"type", "value", "xml:lang"?, "datatype"?}) and a result row.
Term = Mapping[str, str]
Row = Mapping[str, Term]
# Runs a SELECT: (query text, include the inferred graph) -> result rows.
Select = Callable[[str, bool], list[Row]]

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
SKOS_PREF_LABEL = "http://www.w3.org/2004/02/skos/core#prefLabel"
SKOS_NOTATION = "http://www.w3.org/2004/02/skos/core#notation"
# Shown first, in this order; every other property follows by label.
LEADING_PROPERTIES = (
    RDF_TYPE,
    SKOS_PREF_LABEL,
    RDFS_LABEL,
    "http://www.w3.org/2004/02/skos/core#altLabel",
    SKOS_NOTATION,
)

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$")
_KIND = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_SAFE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]*$")
_LANGUAGE_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}|\*)(?:-[A-Za-z0-9]{1,8})*\s*$")


def prefixes(base_iri: str) -> dict[str, str]:
    """Prefix -> namespace of the vocabularies the data uses (for the editor and for compact names)."""
    return {
        "gk": names.rebase(names.GK, base_iri),
        "id": names.rebase(names.ID, base_iri),
        "graph": names.rebase(names.GRAPH, base_iri),
        "org": "http://www.w3.org/ns/org#",
        "skos": "http://www.w3.org/2004/02/skos/core#",
        "prov": "http://www.w3.org/ns/prov#",
        "dcterms": "http://purl.org/dc/terms/",
        "cv": "http://data.europa.eu/m8g/",
        "foaf": "http://xmlns.com/foaf/0.1/",
        "freq": "http://purl.org/cld/freq/",
        "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
        "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
        "owl": "http://www.w3.org/2002/07/owl#",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "sh": "http://www.w3.org/ns/shacl#",
        "gks": names.rebase(names.DEFAULT_BASE + "shapes#", base_iri),
    }


EDITOR_PREFIXES = ("gk", "id", "org", "skos", "prov", "rdfs", "xsd")


def prefix_block(base_iri: str) -> str:
    """The PREFIX declarations the query editor starts with, one per line."""
    known = prefixes(base_iri)
    return "".join(f"PREFIX {p}: <{known[p]}>\n" for p in EDITOR_PREFIXES)


def compact(iri: str, base_iri: str) -> str:
    """The IRI as prefix:local when a known namespace covers it (and the rest is a plain name), else the IRI."""
    for prefix, namespace in prefixes(base_iri).items():
        if iri.startswith(namespace) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*", iri[len(namespace) :]):
            return f"{prefix}:{iri[len(namespace) :]}"
    return iri


# --- language ------------------------------------------------------------------------------------------------


def accept_language(header: str | None) -> str | None:
    """The one of LANGUAGES an Accept-Language header prefers (q-values honoured), or None."""
    best: tuple[float, int, str] | None = None
    for position, item in enumerate((header or "").split(",")):
        tag, *params = item.split(";")
        if not _LANGUAGE_RANGE.match(tag):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().split("-")[0].lower()
        if q <= 0 or primary not in (*LANGUAGES, "*"):
            continue
        chosen = DEFAULT_LANGUAGE if primary == "*" else primary
        key = (q, -position, chosen)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


def choose_language(explicit: str | None, remembered: str | None, header: str | None) -> str:
    """The page language: `?lang=`, else the remembered choice (cookie), else Accept-Language, else English."""
    for choice in (explicit, remembered):
        if choice in LANGUAGES:
            return choice
    return accept_language(header) or DEFAULT_LANGUAGE


def pick_label(labels: Iterable[tuple[str, str]], lang: str) -> str | None:
    """The label in `lang`, else one without a language, else one in any language (stable choice)."""
    candidates = sorted(set(labels))
    for wanted in (lang, ""):
        for value, tag in candidates:
            if tag.split("-")[0].lower() == wanted:
                return value
    return candidates[0][0] if candidates else None


UI_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "site": "Gui'an New Area office knowledge graph",
        "nav_query": "Query",
        "nav_graph": "Pictures",
        "nav_ontology": "Ontology",
        "nav_shapes": "SHACL shapes",
        "endpoint": "SPARQL endpoint (service description)",
        "api": "Named-query API",
        "language": "Language",
        "skip": "Skip to content",
        "editor": "SPARQL query",
        "run": "Run",
        "run_hint": "Ctrl+Enter runs the query",
        "infer": "Include inferred statements (OWL 2 RL reasoning)",
        "examples": "Examples",
        "example": "Example query",
        "choose_example": "— choose an example —",
        "parameters": "Parameters",
        "run_example": "Run example",
        "results": "Results",
        "download": "Download",
        "no_results": "No results.",
        "rows": "rows",
        "running": "Running…",
        "organisation": "The organisation",
        "network": "Collaboration network",
        "project": "Project",
        "no_project": "(none)",
        "show": "Show",
        "properties": "Statements",
        "incoming": "Referred to by",
        "contents": "Statements in this claim",
        "property": "Property",
        "value": "Value",
        "subject": "Subject",
        "source": "Source",
        "inferred": "inferred",
        "inferred_note": "derived by OWL 2 RL reasoning, not stated in the source",
        "asserted_in": "stated in",
        "quote": "Source quote",
        "explain": "why?",
        "formats": "Also as",
        "labels": "Labels",
        "legend": "Legend",
        "legend_section": "secretarial section (number)",
        "legend_cohandler": "co-handling section (inferred)",
        "legend_stated": "participant named in the source text",
        "legend_domains": "work domain handled by the section",
        "legend_domain": "domain the project touches",
        "legend_mechanism": "collaboration mechanism",
        "cohandlers": "Co-handled by",
        "stated": "Named in the source",
        "ontology_docs": "Ontology documentation",
        "shapes": "SHACL shapes",
        "shape": "Shape",
        "target": "Target",
        "path": "Path",
        "constraints": "Constraints",
        "error_at": "Line {line}, column {column}",
        "share": "Share link",
        "share_label": "Link to this query",
        "history": "History",
        "clear_history": "Clear history",
        "open_in_editor": "Open in editor",
    },
    "zh": {
        "site": "贵安新区管委会办公室知识图谱",
        "nav_query": "查询",
        "nav_graph": "图示",
        "nav_ontology": "本体",
        "nav_shapes": "SHACL 约束",
        "endpoint": "SPARQL 端点（服务描述）",
        "api": "命名查询接口",
        "language": "语言",
        "skip": "跳到正文",
        "editor": "SPARQL 查询",
        "run": "运行",
        "run_hint": "按 Ctrl+Enter 运行查询",
        "infer": "包含推理得出的陈述（OWL 2 RL）",
        "examples": "示例",
        "example": "示例查询",
        "choose_example": "— 选择示例 —",
        "parameters": "参数",
        "run_example": "运行示例",
        "results": "结果",
        "download": "下载",
        "no_results": "没有结果。",
        "rows": "行",
        "running": "正在运行…",
        "organisation": "组织结构",
        "network": "协作网络",
        "project": "项目",
        "no_project": "（无）",
        "show": "显示",
        "properties": "陈述",
        "incoming": "被引用",
        "contents": "本条来源陈述包含的三元组",
        "property": "属性",
        "value": "值",
        "subject": "主体",
        "source": "来源",
        "inferred": "推理",
        "inferred_note": "由 OWL 2 RL 推理得出，原文未直接陈述",
        "asserted_in": "出自",
        "quote": "原文引述",
        "explain": "为什么？",
        "formats": "其他格式",
        "labels": "名称",
        "legend": "图例",
        "legend_section": "秘书科室（编号）",
        "legend_cohandler": "协同办理的科室（推理）",
        "legend_stated": "原文点名的参与科室",
        "legend_domains": "科室对接的工作领域",
        "legend_domain": "项目涉及的领域",
        "legend_mechanism": "协作机制",
        "cohandlers": "协同办理科室",
        "stated": "原文点名",
        "ontology_docs": "本体文档",
        "shapes": "SHACL 约束",
        "shape": "约束",
        "target": "目标",
        "path": "路径",
        "constraints": "条件",
        "error_at": "第 {line} 行，第 {column} 列",
        "share": "分享链接",
        "share_label": "本查询的链接",
        "history": "历史记录",
        "clear_history": "清除历史记录",
        "open_in_editor": "在编辑器中打开",
    },
}


# --- addresses -----------------------------------------------------------------------------------------------


def resource_iri(base_iri: str, kind: str | None, slug: str) -> str | None:
    """The IRI that `/id/<kind>/<slug>` (or `/id/<slug>`, kind None) names, or None when the path cannot name one."""
    if not _SLUG.match(slug):
        return None
    if kind is None:
        return f"{base_iri}id/{slug}"  # e.g. the domain scheme, …/id/domain-scheme
    return f"{base_iri}id/{kind}/{slug}" if _KIND.match(kind) else None


def claim_iri(base_iri: str, slug: str) -> str | None:
    """The IRI of the claim graph that `/graph/claim/<slug>` names, or None for a malformed slug."""
    return f"{base_iri}graph/claim/{slug}" if _SLUG.match(slug) else None


def local_href(iri: str, base_iri: str) -> str | None:
    """The path of this service's page about `iri` (resources, claims, ontology terms), or None."""
    if iri.startswith(base_iri + "id/"):
        return "/id/" + iri[len(base_iri) + 3 :]
    if iri.startswith(base_iri + "graph/claim/"):
        return "/graph/claim/" + iri[len(base_iri) + 12 :]
    ontology = names.rebase(names.GK, base_iri)
    if iri.startswith(ontology):
        return "/ontology#" + iri[len(ontology) :]
    if iri == ontology.rstrip("#"):
        return "/ontology"
    return None


def nt_iri(iri: str) -> str:
    """The IRI as an N-Triples term.

    Raises:
        ValueError: when it is not a plain absolute IRI (it would not survive inside `<…>`).
    """
    if not _SAFE_IRI.match(iri):
        raise ValueError(f"not a plain absolute IRI: {iri!r}")
    return f"<{iri}>"


def about(iri: str) -> str:
    """`VALUES ?this { <iri> }`: how page queries name their subject.

    The IRI is built from a path checked against `_KIND`/`_SLUG` (or read from a result) and checked again
    by `nt_iri`, so it is one IRI term; VALUES works alike on every engine, in SELECT and CONSTRUCT.
    """
    return f"VALUES ?this {{ {nt_iri(iri)} }}"


def _values_block(iris: Iterable[str]) -> str:
    return " ".join(nt_iri(iri) for iri in sorted(set(iris)) if _SAFE_IRI.match(iri))


def rdf_term(term: Term) -> URIRef | Literal | BNode:
    """A SPARQL JSON term as an rdflib term."""
    if term["type"] == "uri":
        return URIRef(term["value"])
    if term["type"] == "bnode":
        return BNode(term["value"])
    datatype = term.get("datatype")
    return Literal(term["value"], lang=term.get("xml:lang"), datatype=URIRef(datatype) if datatype else None)


# --- labels --------------------------------------------------------------------------------------------------


def fetch_labels(select: Select, iris: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """(value, language) of every skos:prefLabel / rdfs:label of the given IRIs, by IRI."""
    labels: dict[str, list[tuple[str, str]]] = {}
    block = _values_block(iris)
    if not block:
        return labels
    query = (
        "SELECT ?x ?label WHERE { VALUES ?x { " + block + " } "
        f"?x <{SKOS_PREF_LABEL}>|<{RDFS_LABEL}> ?label FILTER(isLiteral(?label)) }}"
    )
    for row in select(query, False):
        labels.setdefault(row["x"]["value"], []).append((row["label"]["value"], row["label"].get("xml:lang", "")))
    return labels


@dataclass
class Labeller:
    """Turns IRIs into display names in one language, from labels fetched in one query."""

    lang: str
    base_iri: str
    labels: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def name(self, iri: str) -> str:
        """The label in the page's language, else the compact IRI."""
        return pick_label(self.labels.get(iri, ()), self.lang) or compact(iri, self.base_iri)

    def link(self, iri: str) -> dict[str, Any]:
        """A linked value: display text, the page to open, the IRI itself."""
        return {
            "kind": "iri",
            "iri": iri,
            "text": self.name(iri),
            "compact": compact(iri, self.base_iri),
            "href": local_href(iri, self.base_iri) or iri,
            "local": local_href(iri, self.base_iri) is not None,
        }

    def value(self, term: Term) -> dict[str, Any]:
        """A SPARQL JSON term as something a template can show (IRIs linked, literals with language/datatype)."""
        if term["type"] == "uri":
            return self.link(term["value"])
        if term["type"] == "bnode":
            return {"kind": "bnode", "text": "_:" + term["value"]}
        datatype = term.get("datatype")
        return {
            "kind": "literal",
            "text": term["value"],
            "lang": term.get("xml:lang", ""),
            "datatype": compact(datatype, self.base_iri) if datatype else "",
        }


# --- resource pages ------------------------------------------------------------------------------------------


def _statements_query(base_iri: str) -> str:
    gk = names.rebase(names.GK, base_iri)
    provenance = names.rebase(names.PROVENANCE_GRAPH, base_iri)
    return (
        "SELECT ?p ?o ?g ?quote ?part WHERE { {about} GRAPH ?g { ?this ?p ?o } "
        f"OPTIONAL {{ GRAPH <{provenance}> {{ ?g <{gk}sourceQuote> ?quote "
        f"OPTIONAL {{ ?g <{gk}sourcePart> ?part }} }} }} }}"
    )


INCOMING_QUERY = "SELECT DISTINCT ?s ?p ?g WHERE { {about} GRAPH ?g { ?s ?p ?this } FILTER(isIRI(?s)) } LIMIT 500"
CONTENTS_QUERY = "SELECT ?s ?p ?o WHERE { {about} GRAPH ?this { ?s ?p ?o } } LIMIT 2000"
# The RDF view of a resource: what it says, and what a claim graph contains.
DESCRIBE_QUERY = (
    "CONSTRUCT { ?this ?p ?o . ?s ?q ?v } WHERE { {about} { ?this ?p ?o } UNION { GRAPH ?this { ?s ?q ?v } } }"
)


def _bind(template: str, iri: str) -> str:
    return template.replace("{about}", about(iri))


def describe_query(iri: str) -> str:
    """The CONSTRUCT query behind a resource's RDF representations."""
    return _bind(DESCRIBE_QUERY, iri)


def _property_order(iri: str, label: str) -> tuple[int, str]:
    return (LEADING_PROPERTIES.index(iri), "") if iri in LEADING_PROPERTIES else (len(LEADING_PROPERTIES), label)


def resource_page(select: Select, iri: str, lang: str, base_iri: str) -> dict[str, Any] | None:
    """Everything a resource page shows, or None when the dataset says nothing about `iri`.

    A statement found only in the inferred graph is marked inferred; an asserted one carries the claim
    graph(s) it is stated in and their source quotes (from the provenance graph).
    """
    inferred_graph = names.rebase(names.INFERRED_GRAPH, base_iri)
    statements = select(_bind(_statements_query(base_iri), iri), True)
    incoming = select(_bind(INCOMING_QUERY, iri), True)
    contents = select(_bind(CONTENTS_QUERY, iri), False)
    if not (statements or incoming or contents):
        return None

    wanted = {iri}
    for row in statements:
        wanted.update((row["p"]["value"], row["g"]["value"]))
        if row["o"]["type"] == "uri":
            wanted.add(row["o"]["value"])
    for row in incoming:
        wanted.update((row["s"]["value"], row["p"]["value"]))
    for row in contents:
        wanted.update(t["value"] for t in row.values() if t["type"] == "uri")
    labeller = Labeller(lang, base_iri, fetch_labels(select, wanted))

    # One entry per (property, value): the graphs it is in and the quotes of those graphs.
    grouped: dict[tuple[str, tuple], dict[str, Any]] = {}
    for row in statements:
        p, o, graph = row["p"]["value"], row["o"], row["g"]["value"]
        key = (p, tuple(sorted(o.items())))
        entry = grouped.setdefault(key, {"property": p, "term": o, "graphs": set(), "sources": {}})
        entry["graphs"].add(graph)
        if graph != inferred_graph and "quote" in row:
            source = entry["sources"].setdefault(
                graph, {"claim": labeller.link(graph), "quote": row["quote"]["value"], "part": ""}
            )
            if "part" in row:
                source["part"] = row["part"]["value"]

    # Each claim graph is listed once under the page, with its quote; statements cite it by number.
    sources: dict[str, dict[str, Any]] = {}
    for entry in sorted(grouped.values(), key=lambda e: _property_order(e["property"], "")):
        for graph in sorted(entry["sources"]):
            sources.setdefault(graph, {**entry["sources"][graph], "number": len(sources) + 1})

    properties: dict[str, dict[str, Any]] = {}
    for entry in grouped.values():
        p = entry["property"]
        prop = properties.setdefault(p, {**labeller.link(p), "values": []})
        asserted_in = sorted(g for g in entry["graphs"] if g != inferred_graph)
        prop["values"].append(
            {
                **labeller.value(entry["term"]),
                "inferred": not asserted_in,
                "graphs": [labeller.link(g) for g in asserted_in],
                "sources": [sources[g] for g in sorted(entry["sources"])],
                "explain": explain_link(URIRef(iri), URIRef(p), rdf_term(entry["term"])) if not asserted_in else "",
            }
        )
    for prop in properties.values():
        prop["values"].sort(key=lambda v: (v["inferred"], v.get("lang", "") != lang, v["text"]))
        prop["inferred"] = all(v["inferred"] for v in prop["values"])

    own_labels = labeller.labels.get(iri, [])
    return {
        "iri": iri,
        "compact": compact(iri, base_iri),
        "title": labeller.name(iri),
        "labels": {
            code: pick_label([lbl for lbl in own_labels if lbl[1].startswith(code)], code) for code in LANGUAGES
        },
        "types": [labeller.link(row["o"]["value"]) for row in statements if row["p"]["value"] == RDF_TYPE],
        "properties": sorted(properties.values(), key=lambda p: _property_order(p["iri"], p["text"])),
        "incoming": sorted(
            (
                {
                    "subject": labeller.link(row["s"]["value"]),
                    "property": labeller.link(row["p"]["value"]),
                    "inferred": row["g"]["value"] == inferred_graph,
                }
                for row in incoming
            ),
            key=lambda r: (r["property"]["text"], r["subject"]["text"], r["inferred"]),
        ),
        "contents": sorted(
            (
                {
                    "subject": labeller.value(row["s"]),
                    "property": labeller.link(row["p"]["value"]),
                    "object": labeller.value(row["o"]),
                }
                for row in contents
            ),
            key=lambda r: (
                r["subject"]["text"],
                _property_order(r["property"]["iri"], r["property"]["text"]),
                r["object"]["text"],
            ),
        ),
        "sources": list(sources.values()),
    }


# --- pictures ------------------------------------------------------------------------------------------------


def _gk(base_iri: str) -> str:
    return names.rebase(names.GK, base_iri)


def _notation_key(notation: str | None, label: str) -> tuple[int, float, str]:
    if notation and re.fullmatch(r"\d+(\.\d+)?", notation):
        return (0, float(notation), label)
    return (1, 0.0, label)


def _other_language_label(labeller: Labeller, iri: str) -> str:
    """The label of `iri` in the language the page is not in (shown small, beside the main one)."""
    other = next(code for code in LANGUAGES if code != labeller.lang)
    return pick_label([lbl for lbl in labeller.labels.get(iri, []) if lbl[1].startswith(other)], other) or ""


def organisation_picture(select: Select, lang: str, base_iri: str) -> str:
    """SVG of the organisation as a tree: every unit under the one it is a sub-organisation of (asserted)."""
    gk = _gk(base_iri)
    rows = select(
        "SELECT ?x ?parent ?notation ?duty ?section WHERE { ?x <http://www.w3.org/ns/org#subOrganizationOf> ?parent "
        "OPTIONAL { ?x <http://www.w3.org/2004/02/skos/core#notation> ?notation } "
        f"OPTIONAL {{ ?x <{gk}hasDutyDirection> ?duty }} "
        f"BIND(EXISTS {{ ?x a <{gk}SecretarialSection> }} AS ?section) }}",
        False,
    )
    parent: dict[str, str] = {}
    notation: dict[str, str] = {}
    duty: dict[str, str] = {}
    sections: set[str] = set()
    for row in rows:
        x = row["x"]["value"]
        parent[x] = row["parent"]["value"]
        if "notation" in row:
            notation[x] = row["notation"]["value"]
        if "duty" in row:
            duty[x] = row["duty"]["value"]
        if row.get("section", {}).get("value") in ("true", "1"):
            sections.add(x)
    everyone = set(parent) | set(parent.values())
    labeller = Labeller(lang, base_iri, fetch_labels(select, everyone | set(duty.values())))
    roots = everyone - set(parent)

    def node(iri: str) -> Node:
        kind = "section" if iri in sections else "committee" if iri in roots else "unit"
        return Node(
            key=iri,
            label=labeller.name(iri),
            kind=kind,
            href=local_href(iri, base_iri),
            sublabel=_other_language_label(labeller, iri),
            note=labeller.name(duty[iri]) if iri in duty else "",
        )

    ordered = sorted(everyone, key=lambda i: _notation_key(notation.get(i), labeller.name(i)))
    title = UI_TEXT[lang]["organisation"]
    description = ", ".join(labeller.name(i) for i in ordered if i in sections)
    return tree_svg([node(i) for i in ordered], parent, title, description)


@dataclass(frozen=True)
class Project:
    """A project or matter that can be highlighted in the network picture."""

    iri: str
    slug: str
    label: str


def projects(select: Select, lang: str, base_iri: str) -> list[Project]:
    """The projects that touch domains, labelled in `lang`: the one most sections co-handle first, then by label."""
    gk = _gk(base_iri)
    rows = select(
        f"SELECT ?p (COUNT(DISTINCT ?s) AS ?n) WHERE {{ ?p <{gk}touchesDomain> ?d "
        f"OPTIONAL {{ ?p <{gk}coHandledBy> ?s }} FILTER(isIRI(?p)) }} GROUP BY ?p",
        True,
    )
    counts = {row["p"]["value"]: int(row["n"]["value"]) for row in rows}
    labeller = Labeller(lang, base_iri, fetch_labels(select, counts))
    found = [Project(iri, iri.rsplit("/", 1)[-1], labeller.name(iri)) for iri in counts]
    found.sort(key=lambda p: (p.label, p.iri))
    if found:
        first = max(found, key=lambda p: counts[p.iri])
        found = [first, *(p for p in found if p is not first)]
    return found


def network_picture(select: Select, lang: str, base_iri: str, project: Project | None) -> dict[str, Any]:
    """SVG of the collaboration network (sections on a circle, their domains around it, mechanisms inside),
    with a project's co-handling sections and touched domains highlighted; plus the lists shown beside it."""
    gk = _gk(base_iri)
    rows = select(
        f"SELECT ?s ?notation ?d ?m WHERE {{ ?s a <{gk}SecretarialSection> "
        f"OPTIONAL {{ ?s <{SKOS_NOTATION}> ?notation }} {{ ?s <{gk}handlesDomain> ?d }} "
        f"UNION {{ ?m <{gk}hasParticipant> ?s . ?m a <{gk}CollaborationMechanism> }} }}",
        True,
    )
    notation: dict[str, str] = {}
    domains: dict[str, list[str]] = {}
    mechanisms: dict[str, list[str]] = {}
    for row in rows:
        s = row["s"]["value"]
        domains.setdefault(s, [])
        if "notation" in row:
            notation[s] = row["notation"]["value"]
        if "d" in row and row["d"]["value"] not in domains[s]:
            domains[s].append(row["d"]["value"])
        if "m" in row:
            mechanisms.setdefault(row["m"]["value"], [])
            if s not in mechanisms[row["m"]["value"]]:
                mechanisms[row["m"]["value"]].append(s)

    cohandlers: set[str] = set()
    stated: set[str] = set()
    touched: set[str] = set()
    if project is not None:
        for row in select(
            f"SELECT ?rel ?x WHERE {{ VALUES ?rel {{ <{gk}coHandledBy> <{gk}statedParticipant> <{gk}touchesDomain> }} "
            f"{about(project.iri)} ?this ?rel ?x }}",
            True,
        ):
            target = {"coHandledBy": cohandlers, "statedParticipant": stated, "touchesDomain": touched}
            target[row["rel"]["value"][len(gk) :]].add(row["x"]["value"])

    everything = set(domains) | {d for ds in domains.values() for d in ds} | set(mechanisms) | touched
    labeller = Labeller(lang, base_iri, fetch_labels(select, everything))
    ring_order = sorted(domains, key=lambda s: _notation_key(notation.get(s), labeller.name(s)))

    ring = [
        Node(
            key=s,
            label=notation.get(s, "") or labeller.name(s),
            kind="section",
            href=local_href(s, base_iri),
            sublabel=labeller.name(s),
            note=_other_language_label(labeller, s),
            highlight=s in cohandlers,
            marks=("stated",) if s in stated else (),
        )
        for s in ring_order
    ]
    hubs = [
        Node(m, labeller.name(m), "mechanism", local_href(m, base_iri), note=", ".join(labeller.name(s) for s in ms))
        for m, ms in sorted(mechanisms.items(), key=lambda kv: labeller.name(kv[0]))
    ]
    outer = {
        s: [
            Node(d, labeller.name(d), "domain", local_href(d, base_iri), highlight=d in touched)
            for d in sorted(domains[s], key=labeller.name)
        ]
        for s in ring_order
    }
    edges = [Edge(s, d, "handles", f"{labeller.name(s)} → {labeller.name(d)}") for s in ring_order for d in domains[s]]
    edges += [
        Edge(m, s, "participates", f"{labeller.name(m)} — {labeller.name(s)}")
        for m, ms in mechanisms.items()
        for s in ms
    ]
    focus = None
    if project is not None:
        focus = Node(project.iri, project.label, "project", local_href(project.iri, base_iri))
        edges += [
            Edge(project.iri, s, "cohandled", f"{project.label} → {labeller.name(s)}", highlight=True)
            for s in ring_order
            if s in cohandlers
        ]
        edges += [
            Edge(project.iri, s, "stated", f"{project.label} ⇢ {labeller.name(s)}")
            for s in ring_order
            if s in stated and s not in cohandlers
        ]
    title = UI_TEXT[lang]["network"] + (f" — {project.label}" if project else "")
    description = ", ".join(labeller.name(s) for s in ring_order)
    return {
        "svg": network_svg(ring, hubs, outer, edges, focus, title, description),
        "cohandlers": [labeller.link(s) for s in ring_order if s in cohandlers],
        "stated": [labeller.link(s) for s in ring_order if s in stated],
        "touched": [labeller.link(d) for d in sorted(touched, key=labeller.name)],
    }


# --- ontology and shapes documentation -----------------------------------------------------------------------

ONTOLOGY_FILE = "guian-kg.ttl"
SHAPES_FILE = "shapes.ttl"
SHACL = "http://www.w3.org/ns/shacl#"


def _rebased_text(name: str, base_iri: str) -> str:
    text = (ontology_dir() / name).read_text(encoding="utf-8")
    return text if base_iri == names.DEFAULT_BASE else text.replace(names.DEFAULT_BASE, base_iri)


def one_language(graph: Graph, lang: str) -> Graph:
    """A copy of `graph` where a subject's texts in `lang` replace its texts of that property in other languages."""
    has_lang = {(s, p) for s, p, o in graph if isinstance(o, Literal) and (o.language or "").startswith(lang)}
    kept = Graph()
    for prefix, namespace in graph.namespaces():
        kept.bind(prefix, namespace)
    for s, p, o in graph:
        if isinstance(o, Literal) and o.language and (s, p) in has_lang and not o.language.startswith(lang):
            continue
        kept.add((s, p, o))
    return kept


@functools.lru_cache(maxsize=8)
def _pylode_html(stamp: tuple[str, float, str, str]) -> str | None:
    """pyLODE's documentation of the ontology file (rebased, one language), or None when pyLODE is missing or fails."""
    path, _, base_iri, lang = stamp
    try:
        from pylode import OntPub
    except ImportError:
        log.info("pyLODE is not installed: /ontology uses the built-in documentation page")
        return None
    try:
        graph = Graph().parse(data=_rebased_text(Path(path).name, base_iri), format="turtle")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # pyLODE 3.3 reads its CSS without closing the file
            publication = OntPub(ontology=one_language(graph, lang))
            # Our terms are anchored by local name in every language, as resource pages link them (/ontology#X);
            # pyLODE would otherwise derive anchors from the (language-dependent) labels.
            namespace = names.rebase(names.GK, base_iri)
            publication.fids.update(
                {str(s): str(s)[len(namespace) :] for s in set(graph.subjects()) if str(s).startswith(namespace)}
            )
            return publication.make_html()
    except Exception:  # pyLODE is a convenience: any failure of it falls back to our own page
        log.exception("pyLODE failed: /ontology uses the built-in documentation page")
        return None


def ontology_html(base_iri: str, lang: str) -> str | None:
    """pyLODE's HTML documentation of the ontology in `lang`, made once per file version, base IRI and language."""
    path = ontology_dir() / ONTOLOGY_FILE
    return _pylode_html((str(path), path.stat().st_mtime, base_iri, lang))


def ontology_terms(select: Select, lang: str, base_iri: str) -> dict[str, Any]:
    """The ontology's classes and properties with labels, comments, super-terms, domains and ranges."""
    graph = names.rebase(names.ONTOLOGY_GRAPH, base_iri)
    rows = select(
        "SELECT ?term ?kind ?rel ?value WHERE { GRAPH <" + graph + "> { "
        "?term a ?kind FILTER(?kind IN (<http://www.w3.org/2002/07/owl#Class>, "
        "<http://www.w3.org/2002/07/owl#ObjectProperty>, <http://www.w3.org/2002/07/owl#DatatypeProperty>, "
        "<http://www.w3.org/2002/07/owl#AnnotationProperty>) && isIRI(?term)) "
        "OPTIONAL { ?term ?rel ?value FILTER(?rel IN (<http://www.w3.org/2000/01/rdf-schema#comment>, "
        "<http://www.w3.org/2004/02/skos/core#definition>, <http://www.w3.org/2000/01/rdf-schema#subClassOf>, "
        "<http://www.w3.org/2000/01/rdf-schema#subPropertyOf>, <http://www.w3.org/2000/01/rdf-schema#domain>, "
        "<http://www.w3.org/2000/01/rdf-schema#range>, <http://www.w3.org/2002/07/owl#inverseOf>)) } } }",
        False,
    )
    terms: dict[str, dict[str, Any]] = {}
    iris: set[str] = set()
    for row in rows:
        term = row["term"]["value"]
        entry = terms.setdefault(term, {"kind": row["kind"]["value"].rsplit("#", 1)[-1], "relations": {}, "text": []})
        iris.add(term)
        if "rel" not in row:
            continue
        rel, value = row["rel"]["value"], row["value"]
        if value["type"] == "literal":
            entry["text"].append((value["value"], value.get("xml:lang", "")))
        elif value["type"] == "uri":
            entry["relations"].setdefault(rel.rsplit("#", 1)[-1], set()).add(value["value"])
            iris.add(value["value"])
    labeller = Labeller(lang, base_iri, fetch_labels(select, iris))
    sections: dict[str, list[dict[str, Any]]] = {}
    for term, entry in terms.items():
        sections.setdefault(entry["kind"], []).append(
            {
                **labeller.link(term),
                "anchor": term.rsplit("#", 1)[-1] if "#" in term else compact(term, base_iri),
                "comment": pick_label(entry["text"], lang) or "",
                "relations": [
                    (rel, [labeller.link(v) for v in sorted(values)])
                    for rel, values in sorted(entry["relations"].items())
                ],
            }
        )
    for entries in sections.values():
        entries.sort(key=lambda e: e["compact"])
    order = ("Class", "ObjectProperty", "DatatypeProperty", "AnnotationProperty")
    return {"sections": [(kind, sections[kind]) for kind in order if kind in sections]}


def shapes_turtle(base_iri: str) -> str:
    """The SHACL shapes file as Turtle, rebased onto the deployment's IRIs."""
    return _rebased_text(SHAPES_FILE, base_iri)


def _shape_value(graph: Graph, node: Any, labeller: Labeller) -> dict[str, Any]:
    if isinstance(node, URIRef):
        return labeller.link(str(node))
    if isinstance(node, Literal):
        return {"kind": "literal", "text": str(node), "lang": node.language or "", "datatype": ""}
    items = list(Collection(graph, node)) if (node, RDF.first, None) in graph else None
    if items is not None:
        return {"kind": "list", "items": [_shape_value(graph, item, labeller) for item in items]}
    return {
        "kind": "node",
        "constraints": [
            (compact(str(p), labeller.base_iri), _shape_value(graph, o, labeller))
            for p, o in sorted(graph.predicate_objects(node))
        ],
    }


@functools.lru_cache(maxsize=8)
def _shapes_graph(stamp: tuple[str, float, str]) -> Graph:
    path, _, base_iri = stamp
    return Graph().parse(data=_rebased_text(Path(path).name, base_iri), format="turtle")


def shapes_overview(lang: str, base_iri: str) -> list[dict[str, Any]]:
    """Every SHACL node shape: its targets, and each property shape's path, constraints and message."""
    path = ontology_dir() / SHAPES_FILE
    graph = _shapes_graph((str(path), path.stat().st_mtime, base_iri))
    sh = Namespace(SHACL)
    labels: dict[str, list[tuple[str, str]]] = {}
    for s, o in graph.subject_objects(RDFS.label):
        labels.setdefault(str(s), []).append((str(o), getattr(o, "language", "") or ""))
    labeller = Labeller(lang, base_iri, labels)
    skipped = {sh.path, sh.message, RDF.type, sh.name, sh.description}
    overview = []
    for shape in sorted(set(graph.subjects(RDF.type, sh.NodeShape)), key=str):
        targets = [
            (compact(str(p), base_iri), labeller.link(str(o)))
            for p, o in sorted(graph.predicate_objects(shape))
            if str(p).startswith(SHACL + "target") and isinstance(o, URIRef)
        ]
        properties = []
        for prop in sorted(graph.objects(shape, sh.property), key=str):
            path_node = graph.value(prop, sh.path)
            properties.append(
                {
                    "path": _shape_value(graph, path_node, labeller) if path_node is not None else None,
                    "constraints": [
                        (compact(str(p), base_iri), _shape_value(graph, o, labeller))
                        for p, o in sorted(graph.predicate_objects(prop))
                        if p not in skipped
                    ],
                    "message": pick_label(
                        [(str(m), getattr(m, "language", "") or "") for m in graph.objects(prop, sh.message)], lang
                    )
                    or "",
                }
            )
        node_constraints = [
            (compact(str(p), base_iri), _shape_value(graph, o, labeller))
            for p, o in sorted(graph.predicate_objects(shape))
            if p not in skipped and p != sh.property and not str(p).startswith(SHACL + "target")
        ]
        overview.append(
            {
                **labeller.link(str(shape)),
                "anchor": compact(str(shape), base_iri).replace(":", "-"),
                "targets": targets,
                "constraints": node_constraints,
                "properties": properties,
            }
        )
    return overview
