"""What every page shares: languages, labels, prefixes, links to resources, UI text in zh and en."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rdflib import BNode, Literal, URIRef

from service import names
from service.sparql.terms import ABSOLUTE_IRI

LANGUAGES = ("en", "zh")
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
SKOS_BROADER = "http://www.w3.org/2004/02/skos/core#broader"

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$")
_KIND = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
# The named graphs that have pages: a claim's (its quote) and an assumption's (what the assumption licenses).
GRAPH_FAMILIES = ("claim", "assumption")
_LANGUAGE_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}|\*)(?:-[A-Za-z0-9]{1,8})*\s*$")


EDITOR_PREFIXES = ("gk", "id", "org", "skos", "prov", "rdfs", "xsd")


def prefix_block(base_iri: str) -> str:
    """The PREFIX declarations the query editor starts with, one per line."""
    known = names.prefixes(base_iri)
    return "".join(f"PREFIX {p}: <{known[p]}>\n" for p in EDITOR_PREFIXES)


def compact(iri: str, base_iri: str) -> str:
    """The IRI as prefix:local when a known namespace covers it (and the rest is a plain name), else the IRI."""
    for prefix, namespace in names.prefixes(base_iri).items():
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
        "legend_cohandler": "co-handling section (inferred; see the lists for what rests on an assumption)",
        "legend_stated": "participant named in the source text",
        "legend_domains": "work domain handled by the section",
        "legend_domain": "domain the project touches",
        "legend_mechanism": "collaboration mechanism",
        "cohandlers": "Co-handled by",
        "stated": "Named in the source",
        "from_table": "Follows from the division-of-labour table",
        "assumed": "Only through a modelling assumption",
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
        "legend_cohandler": "协同办理的科室（推理；哪些依赖假设见右侧列表）",
        "legend_stated": "原文点名的参与科室",
        "legend_domains": "科室对接的工作领域",
        "legend_domain": "项目涉及的领域",
        "legend_mechanism": "协作机制",
        "cohandlers": "协同办理科室",
        "stated": "原文点名",
        "from_table": "由分工表推出",
        "assumed": "仅经由建模假设",
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


def claim_iri(base_iri: str, slug: str, family: str = "claim") -> str | None:
    """The IRI of the claim graph that `/graph/claim/<slug>` names (or, family "assumption", the assumption graph
    `/graph/assumption/<slug>` names), or None for a malformed slug."""
    return f"{base_iri}graph/{family}/{slug}" if _SLUG.match(slug) and family in GRAPH_FAMILIES else None


def local_href(iri: str, base_iri: str) -> str | None:
    """The path of this service's page about `iri` (resources, claims, ontology terms), or None."""
    if iri.startswith(base_iri + "id/"):
        return "/id/" + iri[len(base_iri) + 3 :]
    for family in GRAPH_FAMILIES:
        if iri.startswith(f"{base_iri}graph/{family}/"):
            return iri[len(base_iri) - 1 :]
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
    if not ABSOLUTE_IRI.match(iri):
        raise ValueError(f"not a plain absolute IRI: {iri!r}")
    return f"<{iri}>"


def about(iri: str) -> str:
    """`VALUES ?this { <iri> }`: how page queries name their subject.

    The IRI is built from a path checked against `_KIND`/`_SLUG` (or read from a result) and checked again
    by `nt_iri`, so it is one IRI term; VALUES works alike on every engine, in SELECT and CONSTRUCT.
    """
    return f"VALUES ?this {{ {nt_iri(iri)} }}"


def _values_block(iris: Iterable[str]) -> str:
    return " ".join(nt_iri(iri) for iri in sorted(set(iris)) if ABSOLUTE_IRI.match(iri))


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
            "href": local_href(iri, self.base_iri) or (iri if names.linkable(iri) else None),
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
