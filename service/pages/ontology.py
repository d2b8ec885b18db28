"""The ontology's documentation (pyLODE) and the SHACL shapes overview."""

from __future__ import annotations

import functools
import logging
import warnings
from pathlib import Path
from typing import Any

from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection

from service import names
from service.pages.labels import Labeller, Select, compact, fetch_labels, pick_label
from service.resources import ontology_dir, ontology_file, shapes_file

log = logging.getLogger("guian_kg.pages")


# --- ontology and shapes documentation -----------------------------------------------------------------------

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
def pylode_html(stamp: tuple[str, float, str, str]) -> str | None:
    """pyLODE's documentation of the ontology file (rebased, one language), or None when pyLODE is missing or fails."""
    path, _, base_iri, lang = stamp
    try:
        from pylode import OntPub  # noqa: PLC0415 (optional and heavy: imported for the first /ontology page)
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
    path = ontology_file()
    return pylode_html((str(path), path.stat().st_mtime, base_iri, lang))


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
    return _rebased_text(shapes_file().name, base_iri)


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
    path = shapes_file()
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
