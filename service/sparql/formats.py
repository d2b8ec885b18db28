"""Protocol facts as a table: format key <-> media types <-> serialisers of each engine."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    """One result or RDF format: its `format=` key, media types (first is canonical) and serialiser names."""

    key: str
    kind: str  # "results" (SELECT/ASK) or "graph" (CONSTRUCT/DESCRIBE, RDF documents)
    media_types: tuple[str, ...]
    oxigraph: str  # pyoxigraph QueryResultsFormat / RdfFormat attribute name
    rdflib: str  # rdflib serializer / result serializer plugin name
    extension: str
    text: bool = True  # a text/* type that carries charset=utf-8

    @property
    def media_type(self) -> str:
        return self.media_types[0]

    @property
    def content_type(self) -> str:
        """The Content-Type header value (with charset for text types)."""
        return self.media_type + ("; charset=utf-8" if self.media_type.startswith("text/") else "")


FORMATS: tuple[Format, ...] = (
    Format("json", "results", ("application/sparql-results+json", "application/json"), "JSON", "json", "srj"),
    Format("xml", "results", ("application/sparql-results+xml", "application/xml", "text/xml"), "XML", "xml", "srx"),
    Format("csv", "results", ("text/csv",), "CSV", "csv", "csv"),
    Format("tsv", "results", ("text/tab-separated-values",), "TSV", "tsv", "tsv"),
    Format("ttl", "graph", ("text/turtle", "application/x-turtle"), "TURTLE", "turtle", "ttl"),
    Format("nt", "graph", ("application/n-triples", "text/plain"), "N_TRIPLES", "nt", "nt"),
    Format("jsonld", "graph", ("application/ld+json",), "JSON_LD", "json-ld", "jsonld"),
    Format("rdfxml", "graph", ("application/rdf+xml",), "RDF_XML", "xml", "rdf"),
    Format("trig", "graph", ("application/trig",), "TRIG", "trig", "trig"),
    Format("nq", "graph", ("application/n-quads",), "N_QUADS", "nquads", "nq"),
)

BY_KEY: dict[str, Format] = {f.key: f for f in FORMATS}
# Aliases accepted by `format=` (what other endpoints and clients send).
ALIASES: dict[str, str] = {
    "turtle": "ttl",
    "ntriples": "nt",
    "n-triples": "nt",
    "json-ld": "jsonld",
    "rdf": "rdfxml",
    "rdf+xml": "rdfxml",
    "nquads": "nq",
    "n-quads": "nq",
    "srj": "json",
    "srx": "xml",
}
# Which formats can carry each query form's result; the first is the default for `*/*` and no Accept.
# ASK has no standard CSV/TSV form (and the engines disagree on one), so it gets the two standard ones.
FORM_FORMATS: dict[str, tuple[Format, ...]] = {
    "select": tuple(f for f in FORMATS if f.kind == "results"),
    "ask": (BY_KEY["json"], BY_KEY["xml"]),
    "construct": tuple(f for f in FORMATS if f.kind == "graph"),
    "describe": tuple(f for f in FORMATS if f.kind == "graph"),
}
DEFAULT_RESULTS = BY_KEY["json"]
DEFAULT_GRAPH = BY_KEY["ttl"]


def by_media_type(media_type: str) -> Format | None:
    """The format whose media types include `media_type` (parameters ignored), or None."""
    bare = media_type.split(";", 1)[0].strip().lower()
    for fmt in FORMATS:
        if bare in fmt.media_types:
            return fmt
    return None


def by_key(key: str) -> Format | None:
    """The format for a `format=` value (key, alias or media type), or None."""
    lowered = key.strip().lower()
    return BY_KEY.get(ALIASES.get(lowered, lowered)) or by_media_type(lowered)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet cell a formula (OWASP CSV injection)


def _defused(cell: str) -> str:
    body = cell[1:] if cell.startswith('"') else cell  # TSV literals are quoted: look inside the quote
    if not body.startswith(FORMULA_STARTS):
        return cell
    try:
        float(body.rstrip('"'))
        return cell  # a negative or signed number stays a number
    except ValueError:
        pass
    return ('"' + "'" + body) if cell.startswith('"') else "'" + cell


def spreadsheet_safe(body: bytes, key: str) -> bytes:
    """CSV or TSV results with every cell a spreadsheet would run as a formula prefixed by `'`.

    For downloads offered to people (the UI's links); the protocol's text/csv and TSV stay exact to the spec.
    """
    text = body.decode("utf-8")
    if key == "tsv":
        lines = text.split("\n")
        return "\n".join("\t".join(_defused(c) for c in line.split("\t")) for line in lines).encode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows([[_defused(c) for c in row] for row in rows])
    return out.getvalue().encode("utf-8")
