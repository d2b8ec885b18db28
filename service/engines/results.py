"""Writing query results in the requested format, counting rows without re-parsing them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyoxigraph as ox

from service.sparql import formats

if TYPE_CHECKING:
    pass
from service.engines.base import too_large

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


def serialise_solutions(solutions: ox.QuerySolutions, fmt: formats.Format, max_rows: int) -> tuple[bytes, int]:
    # pyoxigraph cannot build QuerySolutions from a list, so count rows on its TSV (one row per line, terms
    # in N-Triples syntax: lossless), then re-serialise that into the requested format.
    sink = RowCounter(max_rows)
    solutions.serialize(sink, ox.QueryResultsFormat.TSV)
    if fmt.key == "tsv":
        return bytes(sink.data), sink.rows
    parsed = ox.parse_query_results(bytes(sink.data), ox.QueryResultsFormat.TSV)
    return parsed.serialize(format=getattr(ox.QueryResultsFormat, fmt.oxigraph)), sink.rows


def serialise_triples(triples: Iterable[ox.Triple], fmt: formats.Format, max_rows: int) -> tuple[bytes, int]:
    unique: dict[ox.Triple, None] = {}
    for triple in triples:
        unique[triple] = None
        if len(unique) > max_rows:
            raise too_large(max_rows)
    rdf_format = getattr(ox.RdfFormat, AS_TRIPLES.get(fmt.key, fmt).oxigraph)
    return ox.serialize(unique, format=rdf_format), len(unique)
