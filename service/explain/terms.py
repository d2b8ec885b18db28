"""Terms as people write them for explanations: CURIEs, short resource paths, N-Triples; quads as rdflib terms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
from rdflib import RDF, Literal
from rdflib.term import Node

from service import names
from service.errors import InvalidParameterError
from service.explain.explanation import Quad
from service.sparql.terms import to_rdflib


def parse_term(text: str | None, position: str, base_iri: str = names.DEFAULT_BASE) -> Node:
    """One RDF term from its written form (see the module docstring for the shortcuts).

    Raises:
        InvalidParameterError: when the text is missing or names no term.
    """
    text = (text or "").strip()
    if not text:
        raise InvalidParameterError(f"parameter {position!r} is required", parameter=position)
    table = names.prefixes(base_iri)
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
    return to_rdflib(quads[0].object) if len(quads) == 1 else None


def read_quads(path: Path | None = None, data: str | None = None, fmt: str = "nquads") -> Iterator[Quad]:
    """Quads of an N-Quads or TriG file or text as rdflib terms (graph None for the default graph).

    pyoxigraph reads them: fast, strict, and free of rdflib 7.6's deprecated Dataset parsing path.
    """
    formats = {"nquads": ox.RdfFormat.N_QUADS, "trig": ox.RdfFormat.TRIG}
    source = {"path": path} if path is not None else {"input": data}
    for quad in ox.parse(format=formats[fmt], **source):
        graph = None if isinstance(quad.graph_name, ox.DefaultGraph) else str(quad.graph_name.value)
        yield to_rdflib(quad.subject), to_rdflib(quad.predicate), to_rdflib(quad.object), graph
