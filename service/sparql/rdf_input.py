"""RDF payloads from clients (Graph Store uploads): media type, safe parsing, errors with positions."""

from __future__ import annotations

import json
import xml.parsers.expat
from typing import Any

import pyoxigraph as ox

from service.errors import (
    RDFSyntaxError,
    UnsupportedMediaTypeError,
)
from service.sparql import formats

# A JSON-LD document nested this deep takes pyoxigraph seconds (quadratic); deeper ones never end in practice.
MAX_JSONLD_NESTING = 500


def rdf_syntax_error(exc: SyntaxError) -> RDFSyntaxError:
    """A pyoxigraph parse error as a 400 naming the line and column where it knows them."""
    message = str(exc)
    extra = {}
    if getattr(exc, "lineno", None):
        extra = {"line": exc.lineno, "column": exc.offset or 1}
    return RDFSyntaxError(message[:1000], **extra)


def rdf_format_for(content_type: str | None) -> str:
    """The format key of an upload's Content-Type (any RDF format the service reads).

    Raises:
        UnsupportedMediaTypeError: for anything else.
    """
    fmt = formats.by_media_type(content_type or "")
    if fmt is None or fmt.kind != "graph":
        readable = ", ".join(f.media_type for f in formats.FORMATS if f.kind == "graph")
        raise UnsupportedMediaTypeError(f"upload RDF as one of {readable}, not {content_type or 'no Content-Type'}")
    charset = (content_type or "").lower().partition("charset=")[2].strip().strip('"')
    if charset and charset not in ("utf-8", "utf8", "us-ascii", "ascii"):
        raise UnsupportedMediaTypeError(f"RDF uploads must be UTF-8, not charset={charset}")
    return fmt.key


# --- the evaluator: a child process holding the asserted data in pyoxigraph --------------------------------


def _json_depth_ok(data: bytes) -> None:
    """Refuse JSON nested deeper than MAX_JSONLD_NESTING before pyoxigraph's JSON-LD parser sees it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    if deepest > MAX_JSONLD_NESTING:
        raise RDFSyntaxError(f"the JSON-LD document is nested more than {MAX_JSONLD_NESTING} levels deep")


def parse_upload(body: bytes, rdf_format: str, base_iri: str | None, graphs_allowed: bool) -> list[ox.Quad]:
    """The quads of an uploaded document, blank nodes renamed apart from the store's.

    Raises:
        RDFSyntaxError: malformed RDF (with line/column), a DTD in RDF/XML, JSON-LD nested too deep, named
            graphs in a document sent to one graph.
    """
    fmt = formats.BY_KEY[rdf_format]
    if fmt.key == "rdfxml":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RDFSyntaxError(f"RDF/XML uploads must be UTF-8 (byte {exc.start})") from None
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            # pyoxigraph expands internal entities: 1.2 KB of nested entities became a 300 MB literal in 1.9 s.
            raise RDFSyntaxError("RDF/XML with a DTD (<!DOCTYPE>, <!ENTITY>) is not accepted")
        # pyoxigraph takes a document cut short (unclosed elements at the end) without an error: check first.
        checker = xml.parsers.expat.ParserCreate()
        try:
            checker.Parse(body, True)
        except xml.parsers.expat.ExpatError as exc:
            detail = xml.parsers.expat.errors.messages[exc.code]
            raise RDFSyntaxError(
                f"malformed XML at line {exc.lineno}, column {exc.offset + 1}: {detail}",
                line=exc.lineno,
                column=exc.offset + 1,
            ) from None
    if fmt.key == "jsonld":
        _json_depth_ok(body)
    try:
        quads = list(
            ox.parse(
                body,
                format=getattr(ox.RdfFormat, fmt.oxigraph),
                base_iri=base_iri,
                rename_blank_nodes=True,
                without_named_graphs=not graphs_allowed,
            )
        )
    except SyntaxError as exc:
        raise rdf_syntax_error(exc) from None
    except ValueError as exc:  # e.g. a base IRI pyoxigraph refuses
        raise RDFSyntaxError(str(exc)[:500]) from None
    if not quads and fmt.key == "jsonld" and _has_data(json.loads(body)):
        # JSON-LD drops what has no valid IRI silently: a document with data that yields nothing is a mistake.
        raise RDFSyntaxError(
            "the JSON-LD document has data but yields no triples: its identifiers (@id, @type, property names) "
            "are not valid absolute IRIs"
        )
    return quads


def _has_data(node: Any) -> bool:
    """Whether a JSON-LD value holds anything but context: a property, or a non-empty @graph."""
    if isinstance(node, list):
        return any(_has_data(item) for item in node)
    if isinstance(node, dict):
        if any(not key.startswith("@") for key in node):
            return True
        return any(_has_data(node[key]) for key in ("@graph", "@included", "@set", "@list") if key in node)
    return False
