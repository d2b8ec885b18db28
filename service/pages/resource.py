"""A resource's page: its statements, asserted (with quotes) and inferred (with explanations), in zh or en."""

from __future__ import annotations

from typing import Any

from rdflib import URIRef

from service import names
from service.explain.explanation import explain_link
from service.pages.labels import (
    LANGUAGES,
    RDF_TYPE,
    RDFS_LABEL,
    SKOS_NOTATION,
    SKOS_PREF_LABEL,
    Labeller,
    Select,
    about,
    compact,
    fetch_labels,
    pick_label,
    rdf_term,
)

# The named query the home page offers first: which sections co-handle the worked-example project.
FLAGSHIP_QUERY = "project-co-handling"
# Shown first, in this order; every other property follows by label.
LEADING_PROPERTIES = (
    RDF_TYPE,
    SKOS_PREF_LABEL,
    RDFS_LABEL,
    "http://www.w3.org/2004/02/skos/core#altLabel",
    SKOS_NOTATION,
)


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


def _term_key(term: dict[str, str]) -> tuple[str, ...]:
    """A SPARQL JSON term as a sort key."""
    return tuple(term.get(k, "") for k in ("type", "value", "xml:lang", "datatype"))


def _shown_key(shown: dict[str, Any]) -> tuple[str, ...]:
    """A shown value as a sort key after its text (two IRIs may share a label; a literal has a language and type)."""
    return tuple(str(shown.get(k, "")) for k in ("kind", "iri", "lang", "datatype"))


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
    # (in the order the page shows them, never in the order a store happened to answer: the same page on every engine)
    for entry in sorted(grouped.values(), key=lambda e: (_property_order(e["property"], ""), _term_key(e["term"]))):
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
        prop["values"].sort(key=lambda v: (v["inferred"], v.get("lang", "") != lang, v["text"], _shown_key(v)))
        prop["inferred"] = all(v["inferred"] for v in prop["values"])

    own_labels = labeller.labels.get(iri, [])
    return {
        "iri": iri,
        "compact": compact(iri, base_iri),
        "title": labeller.name(iri),
        "labels": {
            code: pick_label([lbl for lbl in own_labels if lbl[1].startswith(code)], code) for code in LANGUAGES
        },
        "types": sorted(
            (labeller.link(t) for t in {row["o"]["value"] for row in statements if row["p"]["value"] == RDF_TYPE}),
            key=lambda t: (t["text"], t["iri"]),
        ),
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
            key=lambda r: (r["property"]["text"], r["subject"]["text"], r["inferred"], r["subject"]["iri"]),
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
                _shown_key(r["object"]),
            ),
        ),
        "sources": list(sources.values()),
    }
