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
SOURCE_DOCUMENT = ID + "document/source"


def rebase(iri: str, base: str) -> str:
    """The IRI as a deployment with another base IRI names it."""
    return base + iri[len(DEFAULT_BASE) :] if iri.startswith(DEFAULT_BASE) else iri


def unbase(iri: str, base: str) -> str:
    """The canonical IRI of a deployment's IRI (inverse of `rebase`)."""
    return DEFAULT_BASE + iri[len(base) :] if iri.startswith(base) else iri
