"""The remote store as a dataset we read whole, probe cheaply and change by deltas (`--engine remote`).

`service.runtime.mirror` keeps a local copy of what the store holds (the source of truth) and the inferred graph
the store serves; this module is how it talks to the store:

- `probe()`: per graph, the triple count and the summed length of the objects' lexical forms, in one GROUP BY
  query: a change behind our back that adds, removes or rewrites triples almost always moves one of them.
- `read()`: the quads of our graphs (or of the inferred graph) as canonical N-Quads lines, in one SELECT. Blank
  nodes keep the store's own labels, which stay put between reads (Oxigraph's ids, Virtuoso's `nodeID://…`, made
  valid labels here), so a read compares with the previous one line by line.
- `change()`: one SPARQL Update request that deletes and inserts ground quads (`DELETE {…} INSERT {…} WHERE {}`:
  one operation, which Virtuoso 7.2 also takes; Oxigraph runs a request in one transaction). Quads with blank
  nodes cannot be named in a DELETE: the graphs holding them are replaced instead (`DROP SILENT GRAPH` and an
  `INSERT {…} WHERE {}` of the graphs' new lines, which keeps shared labels joined).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

import pyoxigraph as ox

from service.engines.http import OPENER, USER_AGENT, snippet, with_credentials
from service.errors import RemoteServiceError

log = logging.getLogger("guian_kg.remote")

PROBE = (
    "SELECT ?g (COUNT(*) AS ?n) (SUM(IF(isBlank(?o), 0, STRLEN(STR(?o)))) AS ?len) "
    "WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"
)
READ = "SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }"
_LABEL = re.compile(r"^[A-Za-z0-9_]+$")
_BLANK = re.compile(r"(?:^|\s)_:")
_XML_BNODE = re.compile(rb"<bnode>([^<]*)</bnode>")


@dataclass(frozen=True)
class Probe:
    """What a probe saw: graph IRI → (triples, summed object length), for our graphs and the inferred one."""

    graphs: tuple[tuple[str, int, int], ...]

    def as_json(self) -> list:
        return [list(row) for row in self.graphs]

    @classmethod
    def from_json(cls, rows: Iterable[list]) -> Probe:
        return cls(tuple((str(g), int(n), int(size)) for g, n, size in rows))

    def after(self, remove: Iterable[str], add: Iterable[str]) -> Probe:
        """The probe the store answers once these N-Quads lines (which it held, and did not) are taken out and
        put in: counts are exact; lengths are Python's (a store that counts otherwise probes differently once,
        and is then read and compared whole)."""
        rows = {g: [n, size] for g, n, size in self.graphs}
        for sign, lines in ((-1, remove), (1, add)):
            text = "\n".join(lines)
            for quad in ox.parse(text + "\n", format=ox.RdfFormat.N_QUADS) if text else ():
                row = rows.setdefault(quad.graph_name.value, [0, 0])
                row[0] += sign
                obj = quad.object
                row[1] += sign * (0 if isinstance(obj, ox.BlankNode) else len(obj.value))
        return Probe(tuple(sorted((g, n, size) for g, (n, size) in rows.items() if n > 0)))


def blank_label(value: str) -> str:
    """A store's blank node label as a valid one: Virtuoso labels its blank nodes `nodeID://b10007`, a stable
    label that N-Quads and pyoxigraph cannot spell as is (the same label always gives the same one)."""
    return value if _LABEL.match(value) else "b" + hashlib.sha1(value.encode()).hexdigest()[:24]


def relabel_blank_nodes(results: bytes, media_type: str) -> bytes:
    """SPARQL JSON or XML results with every blank node label made valid (`blank_label`); others as they are."""
    if media_type.endswith("xml"):
        return _XML_BNODE.sub(lambda m: b"<bnode>" + blank_label(m.group(1).decode()).encode() + b"</bnode>", results)
    if not media_type.endswith("json"):
        return results
    try:
        parsed = json.loads(results)
    except ValueError:
        return results  # the parser says what is wrong with it
    for row in parsed.get("results", {}).get("bindings", []):
        for term in row.values():
            if term.get("type") == "bnode":
                term["value"] = blank_label(term["value"])
    return json.dumps(parsed).encode()


def has_blank_node(line: str) -> bool:
    """Whether an N-Quads line names a blank node (never inside a literal: labels follow a space or start it)."""
    return "_:" in line and bool(_BLANK.search(line.split('"', 1)[0] if '"' in line else line))


class RemoteStore:
    """The store behind `--remote-query` / `--remote-update`, as the mirror uses it.

    `ours(iri)` tells our graphs from the store's own (Virtuoso keeps system graphs next to ours).
    """

    def __init__(
        self,
        query_url: str,
        update_url: str | None,
        inferred_graph: str,
        ours: Callable[[str], bool],
        timeout: float = 300.0,
    ) -> None:
        self.query_url = query_url
        self.update_url = update_url
        self.inferred_graph = inferred_graph
        self.ours = ours
        self.timeout = timeout

    # -- reading --------------------------------------------------------------------------------------------

    def _post(self, url: str, data: dict[str, str] | bytes, headers: dict[str, str]) -> bytes:
        shown, headers = with_credentials(url, {"User-Agent": USER_AGENT, **headers})
        body = data if isinstance(data, bytes) else urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(shown, data=body, method="POST", headers=headers)
        try:
            with OPENER.open(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            said = snippet(exc.read(2000), 1000)
            raise RemoteServiceError(
                f"the remote store <{shown}> answered HTTP {exc.code}: {said}", endpoint=shown, status_code=exc.code
            ) from None
        except (TimeoutError, urllib.error.URLError, OSError, HTTPException) as exc:
            raise RemoteServiceError(
                f"the remote store <{shown}> could not be reached: {getattr(exc, 'reason', exc)}", endpoint=shown
            ) from None

    def _bindings(self, query: str) -> list[dict[str, Any]]:
        raw = self._post(
            self.query_url,
            {"query": query},
            {"Accept": "application/sparql-results+json", "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            return json.loads(raw)["results"]["bindings"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RemoteServiceError(
                f"the remote store <{self.query_url}> sent malformed results: {exc}", endpoint=self.query_url
            ) from None

    def probe(self) -> Probe:
        """Triple count and summed object length per graph (ours and the inferred one), sorted by graph."""
        rows = []
        for row in self._bindings(PROBE):
            graph = row.get("g", {}).get("value", "")
            if row.get("g", {}).get("type") == "uri" and (graph == self.inferred_graph or self.ours(graph)):
                size = row.get("len", {}).get("value", "0")
                rows.append((graph, int(row["n"]["value"]), int(float(size or 0))))
        return Probe(tuple(sorted(rows)))

    def read(self, inferred_only: bool = False, graphs: Sequence[str] | None = None) -> tuple[set[str], set[str]]:
        """The store's quads as canonical N-Quads lines: (our asserted graphs', the inferred graph's); with
        `inferred_only`, the first set is empty; with `graphs`, only those graphs are read.

        Raises:
            RemoteServiceError: the store could not be read, or sent something that is not SPARQL JSON results.
        """
        if inferred_only:
            graphs = [self.inferred_graph]
        listed = " ".join(f"<{g}>" for g in graphs or ())
        query = READ.replace("GRAPH ?g", f"VALUES ?g {{ {listed} }} GRAPH ?g") if graphs is not None else READ
        accept = {"Accept": "application/sparql-results+json", "Content-Type": "application/x-www-form-urlencoded"}
        body = self._post(self.query_url, {"query": query}, accept)
        if b"nodeID://" in body:
            body = relabel_blank_nodes(body, "application/sparql-results+json")
        asserted: list[ox.Quad] = []
        inferred: list[ox.Quad] = []
        inferred_graph, ours = ox.NamedNode(self.inferred_graph), self.ours
        g, s, p, o = (ox.Variable(name) for name in "gspo")
        try:  # parsed by pyoxigraph: a whole store is read at start and after every change behind our back
            for row in ox.parse_query_results(body, ox.QueryResultsFormat.JSON):
                graph = row[g]
                if graph == inferred_graph:
                    inferred.append(ox.Quad(row[s], row[p], row[o], graph))
                elif isinstance(graph, ox.NamedNode) and ours(graph.value):
                    asserted.append(ox.Quad(row[s], row[p], row[o], graph))
        except (SyntaxError, ValueError, TypeError) as exc:
            raise RemoteServiceError(
                f"the remote store <{self.query_url}> sent malformed results: {exc}", endpoint=self.query_url
            ) from None
        return _lines(asserted), _lines(inferred)

    # -- changing -------------------------------------------------------------------------------------------

    def change(self, remove: Iterable[str], add: Iterable[str], replace: dict[str, list[str]] | None = None) -> None:
        """Delete and insert N-Quads lines (each in a named graph) in one update request; `replace`: graphs to
        empty and fill with these lines first (their own request, before).

        Raises:
            RemoteServiceError: no update endpoint, or the store refused the update or could not be reached.
        """
        if not self.update_url:
            raise RemoteServiceError("the remote store has no update endpoint: serve with --remote-update URL")
        if replace:
            drops = " ;\n".join(f"DROP SILENT GRAPH <{g}>" for g in replace)
            lines = [line for graph_lines in replace.values() for line in graph_lines]
            self._update(drops)
            if lines:
                self._update(f"INSERT {{\n{_blocks(lines)}}} WHERE {{}}")
        remove, add = list(remove), list(add)
        if remove or add:
            self._update(f"DELETE {{\n{_blocks(remove)}}}\nINSERT {{\n{_blocks(add)}}}\nWHERE {{}}")

    def _update(self, text: str) -> None:
        assert self.update_url is not None
        self._post(self.update_url, text.encode("utf-8"), {"Content-Type": "application/sparql-update"})


def _lines(quads: list[ox.Quad]) -> set[str]:
    if not quads:
        return set()
    text = ox.serialize(quads, format=ox.RdfFormat.N_QUADS).decode("utf-8")
    return {line for line in text.split("\n") if line}


def _blocks(lines: Iterable[str]) -> str:
    """N-Quads lines as `GRAPH <g> { triples }` blocks of an update template."""
    by_graph: dict[str, list[str]] = defaultdict(list)
    for quad in ox.parse("\n".join(lines) + "\n", format=ox.RdfFormat.N_QUADS):
        triple = ox.Triple(quad.subject, quad.predicate, quad.object)
        by_graph[quad.graph_name.value].append(f"{triple} .")
    return "".join(f"GRAPH <{g}> {{\n" + "\n".join(ts) + "\n}\n" for g, ts in by_graph.items())
