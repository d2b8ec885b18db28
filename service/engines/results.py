"""Writing query results in the requested format, counting rows without re-parsing them."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyoxigraph as ox

from service.engines.base import too_large
from service.errors import NotXMLRepresentableError
from service.sparql import formats

# Characters XML 1.0 cannot carry at all (not even as character references), as the writers emit them: raw, in
# UTF-8. A result holding one is refused in XML formats rather than sent as a document no XML parser reads.
_NOT_XML_CHARS = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|\xef\xbf[\xbe\xbf]")
XML_KEYS = frozenset({"xml", "rdfxml"})

# A CONSTRUCT/DESCRIBE result is one default graph: as N-Quads it is its N-Triples, as TriG its Turtle
# (rdflib 7.6's own dataset serialisers warn on deprecated internals).
AS_TRIPLES = {"nq": formats.BY_KEY["nt"], "trig": formats.BY_KEY["ttl"]}


class RowCounter:
    """A write-only byte sink for SPARQL TSV results that stops the writer past `max_rows` rows."""

    def __init__(self, max_rows: int) -> None:
        self.data = bytearray()
        self.lines = 0  # the header line, then one line per row
        self.max_rows = max_rows

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        self.lines += chunk.count(b"\n")
        if self.lines > self.max_rows + 1:
            raise too_large(self.max_rows)
        return len(chunk)

    def flush(self) -> None:
        pass

    @property
    def rows(self) -> int:
        return max(self.lines - 1, 0)


def xml_checked(body: bytes, fmt: formats.Format) -> bytes:
    """The serialised result, unless it is XML holding a character XML 1.0 cannot carry.

    Raises:
        NotXMLRepresentableError: 406, naming the formats that carry it.
    """
    if fmt.key in XML_KEYS and _NOT_XML_CHARS.search(body):
        raise NotXMLRepresentableError(
            "the result holds a character XML 1.0 cannot carry (a control character other than tab, line feed "
            "and carriage return, such as U+0000, or U+FFFE/U+FFFF): ask for JSON, CSV, TSV, Turtle or N-Triples"
        )
    return body


def results_from_json(body: bytes, fmt: formats.Format) -> bytes:
    """SPARQL JSON results written in `fmt` by pyoxigraph's writers (the one path for every engine's XML, CSV
    and TSV: rdflib's XML writer drops falsy typed literals such as `0` and `false`)."""
    if fmt.key == "json":
        return body
    parsed = ox.parse_query_results(body, ox.QueryResultsFormat.JSON)
    return xml_checked(parsed.serialize(format=getattr(ox.QueryResultsFormat, fmt.oxigraph)), fmt)


def serialise_solutions(solutions: ox.QuerySolutions, fmt: formats.Format, max_rows: int) -> tuple[bytes, int]:
    """Solutions written in `fmt`, and how many rows they are.

    Raises:
        ResultTooLargeError: past `max_rows` rows.
    """
    count = ROW_COUNTS.get(fmt.key)
    if count is None:
        # No safe way to count rows on the bytes (CSV quotes newlines): count on the TSV (one row per line, terms
        # in N-Triples syntax: lossless), stopping past the limit, then re-serialise that.
        sink = RowCounter(max_rows)
        solutions.serialize(sink, ox.QueryResultsFormat.TSV)
        parsed = ox.parse_query_results(bytes(sink.data), ox.QueryResultsFormat.TSV)
        return xml_checked(parsed.serialize(format=getattr(ox.QueryResultsFormat, fmt.oxigraph)), fmt), sink.rows
    body = xml_checked(solutions.serialize(format=getattr(ox.QueryResultsFormat, fmt.oxigraph)), fmt)
    rows = count(body)
    if rows > max_rows:
        raise too_large(max_rows)  # the worker's memory limit bounds what is written before this check
    return body, rows


# Strings of a JSON text (every quote inside one is escaped): what is left is structure only.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def _json_rows(body: bytes) -> int:
    # The bindings array is the only array of objects in a SPARQL JSON result: past the strings, each row but
    # the first follows a comma, the first an opening bracket.
    structure = _JSON_STRING.sub(b"", body)
    return structure.count(b",{") + (b"[{" in structure)


ROW_COUNTS = {
    "json": _json_rows,
    "xml": lambda body: body.count(b"<result>"),  # `<` in a value is written &lt;
    "tsv": lambda body: max(body.count(b"\n") - 1, 0),  # a header line, then one line per row (newlines escaped)
}


def serialise_triples(triples: Iterable[ox.Triple], fmt: formats.Format, max_rows: int) -> tuple[bytes, int]:
    unique: dict[ox.Triple, None] = {}
    for triple in triples:
        unique[triple] = None
        if len(unique) > max_rows:
            raise too_large(max_rows)
    rdf_format = getattr(ox.RdfFormat, AS_TRIPLES.get(fmt.key, fmt).oxigraph)
    return xml_checked(ox.serialize(unique, format=rdf_format), fmt), len(unique)
