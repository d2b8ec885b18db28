"""Where the packaged ontology, data and named queries live (repository checkout or installed wheel)."""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).resolve().parent / "_data"
_CHECKOUT = Path(__file__).resolve().parent.parent


def _root() -> Path:
    """The folder holding `ontology/`, `graph_data/` and `queries/`: the wheel's copy, else the checkout."""
    return _PACKAGED if (_PACKAGED / "ontology").is_dir() else _CHECKOUT


def ontology_dir() -> Path:
    """The folder of the OWL ontology and SHACL shapes."""
    return _root() / "ontology"


def graph_data_dir() -> Path:
    """The folder of the instance data (TriG)."""
    return _root() / "graph_data"


def ontology_file() -> Path:
    """The OWL ontology (Turtle)."""
    return ontology_dir() / "guian-kg.ttl"


def shapes_file() -> Path:
    """The SHACL shapes (Turtle)."""
    return ontology_dir() / "shapes.ttl"


def queries_dir() -> Path:
    """The folder of the named SPARQL queries (`.rq`)."""
    return _root() / "queries"


def source_document() -> Path:
    """The source document every fact is derived from."""
    return graph_data_dir() / "source" / "000_6a03369a891ee188.txt"
