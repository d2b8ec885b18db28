"""The engine over a remote SPARQL 1.1 store (`--engine remote`, on a kept-alive HTTP connection per process).

Queries are sent as the store's protocol expects; named-query parameters are written as VALUES rows from parsed
RDF terms (never from the client's text); the store's errors are mapped onto our problem codes (a syntax error
keeps its line and column). SERVICE evaluation shared by the local engines lives in `service.engines.service_calls`.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
import urllib.parse
from collections.abc import Sequence
from http.client import HTTPException
from pathlib import Path
from typing import IO, Any

import pyoxigraph as ox

from service import names
from service.config import Settings
from service.data.snapshots import Snapshot
from service.engines.base import Engine, QueryJob, QueryOutcome, query_dataset, query_from, result_format, substitutions
from service.engines.http import (
    GRAPH_ACCEPT,
    JSON,
    RESULT_FORMATS,
    RESULTS_ACCEPT,
    KeepAlive,
    parse_solutions,
    snippet,
)
from service.engines.remote_store import relabel_blank_nodes
from service.engines.results import serialise_solutions, serialise_triples
from service.errors import (
    ConfigError,
    GuianError,
    InvalidParameterError,
    QuerySyntaxError,
    QueryTimeoutError,
    RemoteServiceError,
)
from service.sparql.lexer import check_query, syntax_position, tokens

log = logging.getLogger("guian_kg.remote")

_EMPTY_GRAPH = "urn:x-guian-kg:empty"  # names no graph: an empty default graph or no named graphs
GRAPH_FORMATS: dict[str, ox.RdfFormat] = {
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "text/plain": ox.RdfFormat.N_TRIPLES,
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/x-turtle": ox.RdfFormat.TURTLE,
    "application/n-quads": ox.RdfFormat.N_QUADS,
    "application/trig": ox.RdfFormat.TRIG,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
}


# --- the remote engine -------------------------------------------------------------------------------------


def _relative_iris(text: str) -> bool:
    return any(t.kind == "iri" and not re.match(r"<[A-Za-z][A-Za-z0-9+.\-]*:", t.text) for t in tokens(text))


def _where_group(text: str) -> int:
    """The offset just inside the opening brace of the query's WHERE group."""
    depth, parens, after_where = 0, 0, False
    toks = tokens(text)
    has_where = any(t.kind == "word" and t.text.lower() == "where" for t in toks)
    for token in toks:
        if token.kind == "word" and token.text.lower() == "where" and depth == 0 and parens == 0:
            after_where = True
        elif token.kind == "punct" and token.text in "()":
            parens += 1 if token.text == "(" else -1
        elif token.kind == "punct" and token.text in "{}":
            if token.text == "{" and depth == 0 and parens == 0 and (after_where or not has_where):
                return token.pos + 1
            depth += 1 if token.text == "{" else -1
    raise QuerySyntaxError("the query has no WHERE group to bind parameters in")


_CLAUSE_ENDS = frozenset(("having", "limit", "offset", "values", "select", "where", "order", "group"))


def bind_parameters(text: str, job: QueryJob) -> str:
    """The query with its named-query parameters bound as pyoxigraph binds them (substitution, SEP-0007).

    Inside the query's groups each parameter variable is replaced by its term, except where SPARQL needs a
    variable (VALUES variable lists, `AS ?v`); a subquery projecting it projects `(term AS ?v)`, so that its
    column stays bound (Virtuoso 7.2 joins an unbound column with nothing), and GROUP BY or ORDER BY take
    `(term)`; a VALUES row leading the WHERE group
    keeps it bound in the results. The terms are written from parsed RDF terms, never from the client's text.

    Raises:
        InvalidParameterError: a parameter bound to a blank node (a query cannot name one).
    """
    bound = {v.value: t for v, t in substitutions(job).items()}
    if not bound:
        return text
    for name, term in bound.items():
        if isinstance(term, ox.BlankNode):
            raise InvalidParameterError(f"cannot bind ?{name} to a blank node", variable=name)
    pieces, last, depth, keep = [], 0, 0, None  # keep: a variable list runs until this punctuation
    # projecting: in a subquery's SELECT clause; ordering: in a GROUP BY or ORDER BY clause
    previous, projecting, ordering, parens = "", False, False, 0
    for token in tokens(text):
        word = token.text.lower() if token.kind == "word" else ""
        if word in _CLAUSE_ENDS:
            ordering = False
        if word in ("values", "select"):
            keep = "{"
            projecting, parens = depth > 0 and word == "select", 0
        elif word == "by":
            ordering = True
        elif token.kind == "punct" and token.text in "()":
            parens += 1 if token.text == "(" else -1
        elif token.kind == "punct" and token.text in "{}":
            depth += 1 if token.text == "{" else -1
            ordering = False
            if token.text == keep:
                keep = None
        elif word == "where" and keep == "{":
            keep = None
        elif token.kind == "var" and depth > 0 and previous != "as" and (keep is None or projecting):
            term = bound.get(token.text[1:])
            if term is not None:
                written = str(term)
                if keep is not None and not parens:
                    written = f"({term} AS {token.text})"
                elif ordering and not parens:
                    written = f"({term})"  # GROUP BY and ORDER BY take a term only as an expression
                pieces += [text[last : token.pos], written]
                last = token.pos + len(token.text)
        previous = token.text.lower()
    text = "".join(pieces) + text[last:]
    variables = " ".join(f"?{name}" for name in bound)
    terms = " ".join(str(t) for t in bound.values())
    at = _where_group(text)
    return f"{text[:at]} VALUES ({variables}) {{ ({terms}) }} {text[at:]}"


# An xsd:boolean term object of a SPARQL JSON result, as Virtuoso 7 writes it: "1"/"0" (keys in any order; a quote
# inside a JSON string is escaped, so this matches term objects only).
_DIGIT_BOOLEAN = re.compile(rb'\{[^{}]*"datatype"\s*:\s*"http://www\.w3\.org/2001/XMLSchema#boolean"[^{}]*\}')
_DIGIT_VALUE = re.compile(rb'("value"\s*:\s*)"([01])"')
_CANONICAL_BOOLEAN = {b"1": b'"true"', b"0": b'"false"'}


def canonical_booleans(body: bytes) -> bytes:
    """A SPARQL JSON result with every xsd:boolean written "1"/"0" (Virtuoso 7) in the canonical "true"/"false".

    The same values (XSD's two lexical forms of each boolean), so that every engine answers the same terms.
    """
    return _DIGIT_BOOLEAN.sub(lambda term: _DIGIT_VALUE.sub(lambda v: v[1] + _CANONICAL_BOOLEAN[v[2]], term[0]), body)


class _Answer:
    """A store's 200 answer, read whole: its headers and body (what `execute` reads it as)."""

    def __init__(self, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.headers = headers
        self._body = io.BytesIO(body)

    def read(self, size: int = -1) -> bytes:
        return self._body.read(size)

    def __enter__(self) -> _Answer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._body.close()


# Virtuoso answers with one response header per default-graph-uri it was given (our graphs are listed so, see
# RemoteEngine): with some fifty graphs that passes http.client's limit of 100 header lines ("got more than 100
# headers"). A dataset's graphs are ours and bounded by what `guian-kg push` loaded.
http.client._MAXHEADERS = max(http.client._MAXHEADERS, 1000)


class RemoteEngine(Engine):
    """Any SPARQL 1.1 store as the query engine, on a kept-alive connection: our protocol, dataset, limits and errors.

    The store holds what `guian-kg push` loaded. The default graph is the union of our graphs, or of the asserted
    ones with infer=false: the store's own default graph when it holds exactly our graphs' triples (Oxigraph
    `--union-default-graph`, Fuseki `unionDefaultGraph`), else our graphs listed as `default-graph-uri` (Virtuoso,
    whose default graph also holds its system graphs). Results are re-serialised in our formats under our row
    limit; named-query parameters are substituted as pyoxigraph does; SERVICE runs on the store.
    """

    name = "remote"

    def __init__(self, settings: Settings, snapshot: Snapshot | None = None) -> None:
        """Connect: list the store's graphs (ours, given a snapshot) and whether its default graph is their union.

        Raises:
            ConfigError: without a query URL, or when the store cannot be queried.
        """
        if not settings.remote_query:
            raise ConfigError("engine=remote needs --remote-query URL (GUIAN_KG_REMOTE_QUERY)")
        self.endpoint: str = settings.remote_query
        try:
            self._http = KeepAlive(settings.remote_query, settings.query_timeout + 6.0)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.service_allow: tuple[str, ...] = settings.service_allow
        self.timeout = settings.query_timeout + 5.0  # the executor stops us at the query's own deadline first
        inferred = names.rebase(names.INFERRED_GRAPH, settings.base_iri)
        try:
            # The snapshot's graphs are those the store holds (service.runtime.mirror keeps the snapshot its mirror)
            graphs = list(snapshot.graphs) if snapshot is not None else self._graph_list()
            self.union_default = self._union_default(graphs)
            self.digit_booleans = self._digit_booleans()
        except GuianError as exc:
            raise ConfigError(f"the remote store <{self.endpoint}> cannot be queried: {exc.detail}") from None
        # query_dataset() works on a snapshot's graph list: the store's, here
        self._dataset = Snapshot("remote", Path(), tuple(graphs), inferred, settings.base_iri)

    def graph_names(self) -> list[str]:
        """The IRIs of the named graphs the remote store holds."""
        return list(self._dataset.graphs)

    def apply(self, snapshot: Snapshot, remove: tuple[str, ...], add: tuple[str, ...]) -> bool:
        """Serve `snapshot`: the store already holds it (the mirror sent the delta); only the graph list moves."""
        graphs, inferred = tuple(snapshot.graphs), self._dataset.inferred_graph
        self._dataset = Snapshot("remote", Path(), graphs, inferred, snapshot.base_iri)
        return True

    # -- talking to the store -----------------------------------------------------------------------------

    def _send(
        self, query: str, accept: str, default: Sequence[str] = (), named: Sequence[str] = (), form: str = "select"
    ) -> _Answer:
        """POST the query as a form (what every SPARQL 1.1 store reads) on this process's kept-alive connection."""
        fields = [("query", query), *(("default-graph-uri", g) for g in default)]
        fields += [("named-graph-uri", g) for g in named]
        body = urllib.parse.urlencode(fields).encode()
        headers = {"Accept": accept, "Content-Type": "application/x-www-form-urlencoded"}
        try:
            status, message, said = self._http.send("POST", body, headers)
        except (TimeoutError, OSError, HTTPException) as exc:
            if isinstance(exc, TimeoutError):
                raise QueryTimeoutError(f"the remote store <{self.endpoint}> did not answer in time") from None
            raise RemoteServiceError(
                f"the remote store <{self.endpoint}> could not be reached: {exc}", endpoint=self.endpoint
            ) from None
        if status != 200:
            raise self._http_error(status, snippet(said, 1000))
        return _Answer(message, said)

    def _http_error(self, status: int, said: str) -> GuianError:
        if status == 400:
            where = syntax_position(said)
            if where:
                return QuerySyntaxError(said, line=where[0], column=where[1])
            return QuerySyntaxError(said or "the remote store refused the query as malformed")
        if status == 414:
            return QuerySyntaxError("the query is too long for the remote store")
        log.warning("remote store <%s> answered HTTP %d: %s", self.endpoint, status, said)
        return RemoteServiceError(
            f"the remote store <{self.endpoint}> answered HTTP {status}", endpoint=self.endpoint, status_code=status
        )

    def _select(self, query: str, default: Sequence[str] = ()) -> list[dict[str, Any]]:
        response = self._send(query, RESULTS_ACCEPT, default)
        with response:
            solutions = parse_solutions(self.endpoint, response.headers.get_content_type(), response.read())
        return [{v.value: s[v] for v in solutions.variables if s[v] is not None} for s in solutions]

    def _graph_list(self) -> list[str]:
        rows = self._select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
        return sorted(row["g"].value for row in rows if isinstance(row.get("g"), ox.NamedNode))

    def _union_default(self, graphs: Sequence[str]) -> bool:
        """Whether the store's default graph is exactly the union of our graphs (same number of triples)."""
        if not graphs:
            return True  # an empty store: nothing to tell by
        listed = " ".join(f"<{g}>" for g in graphs)
        ours = self._select(f"SELECT (COUNT(*) AS ?n) WHERE {{ VALUES ?g {{ {listed} }} GRAPH ?g {{ ?s ?p ?o }} }}")
        default = self._select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
        return int(ours[0]["n"].value) == int(default[0]["n"].value)

    def _digit_booleans(self) -> bool:
        """Whether the store writes xsd:boolean values as "1"/"0" (Virtuoso 7) rather than "true"/"false"."""
        rows = self._select('SELECT ?b WHERE { BIND(<http://www.w3.org/2001/XMLSchema#boolean>("true") AS ?b) }')
        term = rows[0].get("b") if rows else None
        return isinstance(term, ox.Literal) and term.value == "1"

    # -- the Engine interface -------------------------------------------------------------------------------

    def _graph_params(self, job: QueryJob) -> tuple[list[str], list[str]]:
        dataset = query_dataset(job, self._dataset, query_from(job))
        if dataset.union and job.infer and self.union_default:
            return [], []  # the store's own dataset
        default = [g for g in dataset.default if g is not None]
        return default or [_EMPTY_GRAPH], list(dataset.named) or [_EMPTY_GRAPH]

    def execute(self, job: QueryJob) -> QueryOutcome:
        """Send one query to the remote store and re-serialise its answer in `job.result_format`.

        Raises:
            QuerySyntaxError: the store refused the query (HTTP 400), with `line`/`column` when it said where.
            ServiceForbiddenError: a SERVICE endpoint not on the allowlist (nothing is sent).
            ResultTooLargeError: past `job.max_rows` rows or triples.
            QueryTimeoutError: the store did not answer in time.
            RemoteServiceError: the store could not be reached, failed, or answered something unreadable.
        """
        form = job.form or check_query(job.query, self.service_allow)
        fmt = result_format(job, form)
        default, named = self._graph_params(job)
        text, shift = job.query, 0
        if job.base_iri and _relative_iris(text):
            prefix = f"BASE <{job.base_iri}> "
            text, shift = prefix + text, len(prefix)  # on line 1: columns there move by its length
        text = bind_parameters(text, job)
        accept = RESULTS_ACCEPT if form in ("select", "ask") else GRAPH_ACCEPT
        try:
            response = self._send(text, accept, default, named, form)
        except QuerySyntaxError as exc:
            if shift and exc.extra.get("line") == 1:
                exc.extra["column"] = max(1, exc.extra["column"] - shift)
            raise
        with response:
            media_type = response.headers.get_content_type()
            try:
                if form in ("select", "ask"):
                    body, rows = self._results(response, media_type, fmt, job.max_rows, form)
                else:
                    body, rows = self._triples(response, media_type, fmt, job.max_rows)
            except SyntaxError as exc:
                raise RemoteServiceError(
                    f"the remote store <{self.endpoint}> sent a malformed answer: {exc}", endpoint=self.endpoint
                ) from None
        return QueryOutcome(form, fmt.media_type, body, rows)

    def _results(self, response: IO[bytes], media_type: str, fmt: Any, max_rows: int, form: str) -> tuple[bytes, int]:
        source = RESULT_FORMATS.get(media_type)
        if source is None:
            detail = f"the remote store answered {media_type}, not SPARQL results"
            raise RemoteServiceError(detail, endpoint=self.endpoint)
        body = response.read()
        if b"bnode" in body:  # Virtuoso's labels (`nodeID://b10007`) are not valid ones: made valid, stably
            body = relabel_blank_nodes(body, media_type)
        if self.digit_booleans and source == JSON:
            body = canonical_booleans(body)
        result = ox.parse_query_results(body, source)
        if form == "ask" and isinstance(result, ox.QuerySolutions):  # Virtuoso 7: a row of ?__ASK_RETVAL when true
            result = ox.parse_query_results(json.dumps({"head": {}, "boolean": any(True for _ in result)}), JSON)
        if isinstance(result, ox.QueryBoolean):
            return result.serialize(format=getattr(ox.QueryResultsFormat, fmt.oxigraph)), 1
        return serialise_solutions(result, fmt, max_rows)

    def _triples(self, response: IO[bytes], media_type: str, fmt: Any, max_rows: int) -> tuple[bytes, int]:
        source = GRAPH_FORMATS.get(media_type)
        if source is None:
            raise RemoteServiceError(f"the remote store answered {media_type}, not RDF", endpoint=self.endpoint)
        return serialise_triples((quad.triple for quad in ox.parse(response, source)), fmt, max_rows)
