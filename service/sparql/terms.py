"""RDF terms as clients write them: one parser of IRIs and N-Triples terms, and the pyoxigraph/rdflib term bridge."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pyoxigraph as ox
from rdflib import XSD, BNode, Literal, URIRef
from rdflib.term import Node

from service.errors import (
    InvalidParameterError,
)

if TYPE_CHECKING:
    pass


# An absolute IRI as RFC 3987 allows it in SPARQL and N-Triples: a scheme, then no space or forbidden character.
ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]*$")


def is_iri(text: str) -> bool:
    try:
        ox.NamedNode(text)
    except ValueError:
        return False
    return True


def named_node(iri: str) -> ox.NamedNode:
    try:
        return ox.NamedNode(iri)
    except ValueError:
        raise InvalidParameterError(f"not an absolute IRI: {iri[:200]!r}") from None


def parse_term(text: str) -> ox.NamedNode | ox.BlankNode | ox.Literal:
    """An RDF term written in N-Triples syntax (`<iri>`, `"lit"@en`, `"1"^^<dt>`, `_:b`).

    Raises:
        InvalidParameterError: when the text is not exactly one term.
    """
    try:
        triples = list(ox.parse(f"<urn:x:s> <urn:x:p> {text} .", format=ox.RdfFormat.N_TRIPLES))
    except SyntaxError:
        triples = []
    if len(triples) != 1:  # more than one triple means the text tried to add statements
        raise InvalidParameterError(f"not one RDF term in N-Triples syntax: {text[:200]!r}")
    return triples[0].object


def to_rdflib(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> Node:
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if term.language:
        return Literal(term.value, lang=term.language)
    # rdflib keeps plain literals untyped: "x" and "x"^^xsd:string would be two different terms to it.
    datatype = None if term.datatype.value == str(XSD.string) else URIRef(term.datatype.value)
    return Literal(term.value, datatype=datatype)


# --- terms ------------------------------------------------------------------------------------------------


def to_oxigraph(term: Node) -> ox.NamedNode | ox.BlankNode | ox.Literal:
    """The pyoxigraph term of an rdflib IRI, blank node or literal (plain literals become xsd:string)."""
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, Literal):
        if term.language:
            return ox.Literal(str(term), language=term.language)
        if term.datatype:
            return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
        return ox.Literal(str(term))
    raise TypeError(f"not an RDF term: {term!r}")


def from_oxigraph(term: Any, bnodes: str) -> Node:
    if isinstance(term, ox.BlankNode):
        return BNode(bnodes + term.value)
    return to_rdflib(term)
