"""The project's fixed IRIs (see ontology/MODEL.md); the default base is rewritten by GUIAN_KG_BASE_IRI."""

from __future__ import annotations

DEFAULT_BASE = "https://w3id.org/guian-kg/"
GK = DEFAULT_BASE + "ontology#"
ID = DEFAULT_BASE + "id/"
GRAPH = DEFAULT_BASE + "graph/"

ONTOLOGY_GRAPH = GRAPH + "ontology"
PROVENANCE_GRAPH = GRAPH + "provenance"
INFERRED_GRAPH = GRAPH + "inferred"
CLAIM_GRAPH_PREFIX = GRAPH + "claim/"
ASSUMPTION_GRAPH_PREFIX = GRAPH + "assumption/"  # one graph per modelling assumption (what it licenses)
SOURCE_DOCUMENT = ID + "document/source"
SHAPES = DEFAULT_BASE + "shapes#"

# The one prefix table: pages, the editor, explanations, the service description and Turtle output all use it.
# Our own namespaces come first (they follow the deployment's base IRI); then the vocabularies the data reuses.
STANDARD_PREFIXES = {
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
    "sd": "http://www.w3.org/ns/sparql-service-description#",
    "void": "http://rdfs.org/ns/void#",
    "ent": "http://www.w3.org/ns/entailment/",
    "formats": "http://www.w3.org/ns/formats/",
}


def prefixes(base_iri: str = DEFAULT_BASE) -> dict[str, str]:
    """Prefix -> namespace, for a deployment's base IRI."""
    own = {"gk": GK, "id": ID, "graph": GRAPH, "gks": SHAPES}
    return {**{prefix: rebase(iri, base_iri) for prefix, iri in own.items()}, **STANDARD_PREFIXES}


def rebase(iri: str, base: str) -> str:
    """The IRI as a deployment with another base IRI names it."""
    return base + iri[len(DEFAULT_BASE) :] if iri.startswith(DEFAULT_BASE) else iri


def unbase(iri: str, base: str) -> str:
    """The canonical IRI of a deployment's IRI (inverse of `rebase`)."""
    return DEFAULT_BASE + iri[len(base) :] if iri.startswith(base) else iri


def linkable(iri: str | None) -> bool:
    """Whether an IRI from the data may become a link (`href`): http(s) only; `javascript:`, `data:` and every
    other scheme are shown as text."""
    return bool(iri) and iri.split(":", 1)[0].strip().lower() in ("http", "https") and "://" in iri
