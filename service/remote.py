"""Federation: the SERVICE evaluation both local engines share, and the engine over a remote SPARQL 1.1 store.

SERVICE. Neither engine's own client is fit to call out (PITFALLS, and measured with pyoxigraph 0.5.13): rdflib's
has no timeout and follows redirects to any host; pyoxigraph's has no timeout and no Python switch, and it ships
the bare inner pattern (`SELECT * WHERE { … }`) without the bindings the outer query already has, so every call
downloads everything the pattern matches remotely. Both engines therefore evaluate SERVICE here, inside rdflib's
algebra evaluation (`CUSTOM_EVALS`): the rdflib engine directly, the embedded engine by running its SERVICE queries
through rdflib's evaluator over a read-only view of its own pyoxigraph store (`FederatingEmbeddedEngine`).

A SERVICE call here:
- goes only to an endpoint on the allowlist (checked again, after `query_text.check_query` checked the text);
- is a *bind join*: the solutions found so far are sent along as one `VALUES` block per batch of rows (grouped by
  which of the pattern's variables they bind; never a blank node, which means nothing to another endpoint), and
  the answers are joined back locally; a left side with no rows makes no call at all;
- has its own time limit (`service_timeout`), never follows a redirect, reads at most MAX_ANSWER_BYTES, accepts
  only SPARQL results media types, and relabels the remote blank nodes so they never meet ours;
- fails as RemoteServiceError (502, `service-error`, naming the endpoint), or, under SERVICE SILENT, yields the one
  empty solution (the rows found so far pass through unchanged).
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import itertools
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import IO, Any

import pyoxigraph as ox
from pyparsing import ParseResults
from rdflib import BNode, Graph, Literal, URIRef, Variable
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from rdflib.plugins.sparql import CUSTOM_EVALS
from rdflib.plugins.sparql.evaluate import evalPart
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.plugins.sparql.sparql import FrozenBindings, QueryContext
from rdflib.store import Store
from rdflib.term import Node
from SPARQLWrapper import POST, URLENCODED, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import SPARQLWrapperException

from service import __version__, names
from service.config import Settings
from service.engine import (
    EmbeddedEngine,
    Engine,
    QueryJob,
    QueryOutcome,
    RdflibEngine,
    _result_format,
    _serialise_solutions,
    _serialise_triples,
    _substitutions,
    _to_rdflib,
    query_dataset,
)
from service.errors import (
    ConfigError,
    GuianError,
    InvalidParameterError,
    QuerySyntaxError,
    QueryTimeoutError,
    RemoteServiceError,
    ServiceForbiddenError,
)
from service.query_text import check_query, dataset_clause, service_targets, tokens
from service.store import Snapshot

log = logging.getLogger("guian_kg.remote")

USER_AGENT = f"guian-kg/{__version__}"
RESULTS_ACCEPT = (
    "application/sparql-results+json, application/sparql-results+xml;q=0.9, text/tab-separated-values;q=0.8"
)
GRAPH_ACCEPT = "application/n-triples, text/turtle;q=0.9, application/n-quads;q=0.8, application/rdf+xml;q=0.5"
MAX_ANSWER_BYTES = 64 * 2**20  # one SERVICE answer
BATCH_ROWS = 100  # distinct VALUES rows in one SERVICE call
_GET_LIMIT = 2000  # longer SERVICE requests are POSTed as a form
_FORM = "application/x-www-form-urlencoded"
JSON = ox.QueryResultsFormat.JSON
_EMPTY_GRAPH = "urn:x-guian-kg:empty"  # names no graph: an empty default graph or no named graphs

RESULT_FORMATS: dict[str, ox.QueryResultsFormat] = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "application/xml": ox.QueryResultsFormat.XML,
    "text/xml": ox.QueryResultsFormat.XML,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
    "text/csv": ox.QueryResultsFormat.CSV,
}
GRAPH_FORMATS: dict[str, ox.RdfFormat] = {
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "text/plain": ox.RdfFormat.N_TRIPLES,
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/x-turtle": ox.RdfFormat.TURTLE,
    "application/n-quads": ox.RdfFormat.N_QUADS,
    "application/trig": ox.RdfFormat.TRIG,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
}


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


def _from_oxigraph(term: Any, bnodes: str) -> Node:
    if isinstance(term, ox.BlankNode):
        return BNode(bnodes + term.value)
    return _to_rdflib(term)


# --- HTTP ---------------------------------------------------------------------------------------------------


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the 3xx error it is: the allowlist names endpoints, not where they point."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


_OPENER = urllib.request.build_opener(_RefuseRedirects)


def _snippet(raw: bytes, limit: int = 300) -> str:
    text = " ".join(raw.decode("utf-8", "replace").split())
    return text[:limit] + ("…" if len(text) > limit else "")


def _read(response: IO[bytes], deadline: float, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := response.read(65536):
        size += len(chunk)
        if size > limit:
            raise ValueError(f"answered more than {limit // 2**20} MiB")
        if time.monotonic() > deadline:
            raise TimeoutError
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_results(endpoint: str, query: str, timeout: float) -> tuple[str, bytes]:
    """The media type and body of a SELECT's answer from `endpoint`, within about `timeout` seconds.

    GET while the URL stays short, else a POSTed form (what every SPARQL 1.1 endpoint accepts); no redirects.

    Raises:
        RemoteServiceError: naming the endpoint, for a failure to connect, a time-out, a non-200 answer, or an
            answer too large.
    """
    deadline = time.monotonic() + timeout
    params = urllib.parse.urlencode({"query": query})
    headers = {"Accept": RESULTS_ACCEPT, "User-Agent": USER_AGENT}
    if len(endpoint) + len(params) < _GET_LIMIT:
        url = endpoint + ("&" if "?" in endpoint else "?") + params
        request = urllib.request.Request(url, headers=headers)
    else:
        request = urllib.request.Request(endpoint, data=params.encode(), headers={**headers, "Content-Type": _FORM})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.headers.get_content_type(), _read(response, deadline, MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        where = f" (redirect to {exc.headers.get('Location')!r} not followed)" if 300 <= exc.code < 400 else ""
        said = _snippet(exc.read(2000)) if exc.code >= 400 else ""
        reason = f"answered HTTP {exc.code}{where}" + (f": {said}" if said else "")
        raise RemoteServiceError(f"SERVICE <{endpoint}> {reason}", endpoint=endpoint, status_code=exc.code) from None
    except (TimeoutError, urllib.error.URLError) as exc:
        if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
            detail = f"SERVICE <{endpoint}> did not answer within the {timeout:g} s SERVICE time limit"
            raise RemoteServiceError(detail, endpoint=endpoint, reason="timeout") from None
        raise RemoteServiceError(
            f"SERVICE <{endpoint}> could not be reached: {getattr(exc, 'reason', exc)}", endpoint=endpoint
        ) from None
    except (OSError, HTTPException, ValueError) as exc:
        raise RemoteServiceError(f"SERVICE <{endpoint}> failed: {exc}", endpoint=endpoint) from None


def parse_solutions(endpoint: str, media_type: str, body: bytes) -> ox.QuerySolutions:
    """A SELECT answer in any SPARQL results format.

    Raises:
        RemoteServiceError: naming the endpoint, for another media type (an HTML page, plain JSON…) or a body
            that is not what its media type says (e.g. cut off by an error after the headers).
    """
    fmt = RESULT_FORMATS.get(media_type)
    if fmt is None:
        raise RemoteServiceError(
            f"SERVICE <{endpoint}> answered {media_type or 'without a media type'}, not SPARQL results",
            endpoint=endpoint,
        )
    try:
        parsed = ox.parse_query_results(body, fmt)
    except SyntaxError as exc:
        raise RemoteServiceError(f"SERVICE <{endpoint}> sent malformed results: {exc}", endpoint=endpoint) from None
    if not isinstance(parsed, ox.QuerySolutions):
        raise RemoteServiceError(f"SERVICE <{endpoint}> answered a boolean, not solutions", endpoint=endpoint)
    return parsed


# --- SERVICE inside rdflib's evaluation -------------------------------------------------------------------

Row = dict[Variable, Node]


@dataclass
class _Federation:
    """The SERVICE policy of the query being evaluated, and its answers so far (a query may repeat a call)."""

    allow: frozenset[str]
    timeout: float
    answers: dict[tuple[str, str], list[Row] | None] = field(default_factory=dict)

    def call(self, endpoint: str, query: str, variables: frozenset[Variable], silent: bool) -> list[Row] | None:
        """The rows `endpoint` answers, or None when a SILENT call failed."""
        key = (endpoint, query)
        if key not in self.answers:
            try:
                solutions = parse_solutions(endpoint, *fetch_results(endpoint, query, self.timeout))
                bnodes = f"s{uuid.uuid4().hex[:12]}x"
                wanted = [v for v in solutions.variables if Variable(v.value) in variables]
                try:  # pyoxigraph parses lazily: a cut-off answer fails here
                    self.answers[key] = [
                        {Variable(v.value): _from_oxigraph(s[v], bnodes) for v in wanted if s[v] is not None}
                        for s in solutions
                    ]
                except SyntaxError as exc:
                    detail = f"SERVICE <{endpoint}> sent malformed results: {exc}"
                    raise RemoteServiceError(detail, endpoint=endpoint) from None
            except RemoteServiceError as exc:
                if not silent:
                    raise
                log.info("SERVICE SILENT <%s> failed, continuing without it: %s", endpoint, exc.detail)
                self.answers[key] = None
        return self.answers[key]


_FEDERATION: contextvars.ContextVar[_Federation | None] = contextvars.ContextVar("guian_kg_federation", default=None)


def use_service(allow: Sequence[str], timeout: float) -> None:
    """Let rdflib evaluation in this context run SERVICE to the `allow`-listed endpoints, with our client."""
    CUSTOM_EVALS["guian-kg-service"] = _evaluate
    _FEDERATION.set(_Federation(frozenset(allow), timeout))


def _evaluate(ctx: QueryContext, part: CompValue) -> Iterator[FrozenBindings]:
    if part.name == "ServiceGraphPattern":
        return _service_join(ctx, part, [ctx.solution()])
    if part.name == "Join" and getattr(part.p2, "name", None) == "ServiceGraphPattern":
        return _service_join(ctx, part.p2, evalPart(ctx, part.p1))
    raise NotImplementedError  # rdflib evaluates every other part itself


def _service_spans(text: str) -> list[str]:
    """The text of every SERVICE clause of a query, from the keyword to its closing brace, in textual order."""
    toks = tokens(text)
    spans = []
    for i, token in enumerate(toks):
        if token.kind != "word" or token.text.lower() != "service":
            continue
        depth, j = 0, i + 1
        while j < len(toks) and not (toks[j].kind == "punct" and toks[j].text == "{"):
            j += 1
        for k in range(j, len(toks)):
            if toks[k].kind == "punct" and toks[k].text in "{}":
                depth += 1 if toks[k].text == "{" else -1
                if depth == 0:
                    spans.append(text[token.pos : toks[k].pos + 1])
                    break
    return spans


def _in_order(tree: Any, found: list[CompValue]) -> list[CompValue]:
    if isinstance(tree, CompValue):
        if tree.name == "ServiceGraphPattern":
            found.append(tree)
        for value in tree.values():
            _in_order(value, found)
    elif isinstance(tree, list | tuple | ParseResults):
        for value in tree:
            _in_order(value, found)
    return found


def restore_service_text(parsed: Any, text: str) -> None:
    """Give each SERVICE of rdflib's parse tree its own text (rdflib#3069: all get the first one's).

    Raises:
        GuianError: when the parse tree and the text disagree on the SERVICE clauses.
    """
    nodes, spans = _in_order(parsed, []), _service_spans(text)
    if len(nodes) != len(spans):
        raise GuianError("the SERVICE clauses of this query could not be read back")
    for node, span in zip(nodes, spans, strict=True):
        node["service_string"] = span


def _inner_text(ctx: QueryContext, service: CompValue) -> tuple[str, str]:
    """The SERVICE's group pattern as written, and the BASE/PREFIX lines it needs."""
    text = str(service.service_string or "")  # CompValue attributes are None when absent
    toks = tokens(text)
    start = next((t.pos for t in toks if t.kind == "punct" and t.text == "{"), None)
    if start is None:
        raise GuianError("the SERVICE pattern could not be read back")
    inner = text[start:]
    prologue = ctx.prologue
    header = []
    if prologue is not None:
        if prologue.base:
            header.append(f"BASE <{prologue.base}>")
        declared = dict(prologue.namespace_manager.namespaces())
        used = {t.text.split(":", 1)[0] for t in tokens(inner) if t.kind == "pname"}
        header += [f"PREFIX {p}: <{declared[p]}>" for p in sorted(used) if p in declared]
    return inner, "".join(line + "\n" for line in header)


def _service_query(header: str, inner: str, variables: tuple[Variable, ...], values: Iterable[tuple[Node, ...]]) -> str:
    block = ""
    if variables:
        rows = "\n".join("(" + " ".join(str(to_oxigraph(t)) for t in row) + ")" for row in values)
        block = "VALUES (" + " ".join("?" + v for v in variables) + ") {\n" + rows + "\n}\n"
    return f"{header}SELECT * WHERE {{\n{block}{inner}\n}}"


def _compatible(row: FrozenBindings, answer: Row) -> bool:
    return all(row.get(v) in (None, value) for v, value in answer.items())


def _service_join(ctx: QueryContext, service: CompValue, left: Iterable[FrozenBindings]) -> Iterator[FrozenBindings]:
    """Join `left` with the SERVICE pattern's answers: one call per batch of rows and set of bound variables.

    Raises:
        ServiceForbiddenError: an endpoint not on the allowlist (or no policy set for this evaluation).
        RemoteServiceError: the endpoint failed and the SERVICE is not SILENT.
    """
    federation = _FEDERATION.get()
    endpoint = str(service.term)
    if federation is None or not isinstance(service.term, URIRef) or endpoint not in federation.allow:
        raise ServiceForbiddenError(f"SERVICE <{endpoint}> is not on this server's allowlist", endpoint=endpoint)
    inner, header = _inner_text(ctx, service)
    pattern_vars = frozenset(service._vars or ())
    silent = bool(service.silent)
    left_rows = iter(left)
    while batch := list(itertools.islice(left_rows, BATCH_ROWS)):
        groups: dict[tuple[Variable, ...], list[FrozenBindings]] = {}
        for row in batch:
            # Blank nodes are never sent: ours mean nothing remotely, and theirs come back relabelled.
            bound = tuple(sorted(v for v in pattern_vars if isinstance(row.get(v), URIRef | Literal)))
            groups.setdefault(bound, []).append(row)
        for variables, rows in groups.items():
            values = dict.fromkeys(tuple(row[v] for v in variables) for row in rows)
            answers = federation.call(endpoint, _service_query(header, inner, variables, values), pattern_vars, silent)
            if answers is None:  # SILENT failure: the one empty solution, compatible with every row
                yield from rows
                continue
            index: dict[tuple[Node | None, ...], list[Row]] = {}
            for answer in answers:
                index.setdefault(tuple(answer.get(v) for v in variables), []).append(answer)
            for row in rows:
                for answer in index.get(tuple(row[v] for v in variables), ()):
                    if _compatible(row, answer):
                        yield row.merge(answer)


# --- the embedded engine's SERVICE path ----------------------------------------------------------------------


class OxigraphView(Store):
    """A read-only rdflib store over an embedded engine's pyoxigraph store, so rdflib's evaluator can run on it.

    Pattern lookups with no graph (`context=None`) read the union of every graph, one triple once: the store's
    default graph (the asserted union) and the inferred graph, which are disjoint (see service.engine). The graphs
    each triple sits in are listed lazily: its named graphs (the default graph is that internal union).
    """

    context_aware = True
    graph_aware = True

    def __init__(self, store: ox.Store, inferred: str) -> None:
        super().__init__()
        self._ox = store
        self._union = (ox.DefaultGraph(), ox.NamedNode(inferred))

    @staticmethod
    def _pattern(triple: Any) -> tuple[Any, Any, Any] | None:
        s, p, o = (None if t is None or isinstance(t, Variable) else t for t in triple)
        if isinstance(s, Literal) or (p is not None and not isinstance(p, URIRef)):
            return None  # can match nothing (pyoxigraph would refuse the pattern)
        return tuple(None if t is None else to_oxigraph(t) for t in (s, p, o))  # type: ignore[return-value]

    def _graph(self, name: Any) -> Graph:
        identifier = DATASET_DEFAULT_GRAPH_ID if isinstance(name, ox.DefaultGraph) else _to_rdflib(name)
        return Graph(store=self, identifier=identifier)

    def _contexts_of(self, triple: ox.Triple) -> Iterator[Graph]:
        for quad in self._ox.quads_for_pattern(triple.subject, triple.predicate, triple.object):
            if not isinstance(quad.graph_name, ox.DefaultGraph):
                yield self._graph(quad.graph_name)

    def triples(self, triple_pattern: Any, context: Any = None) -> Iterator[Any]:  # type: ignore[override]
        pattern = self._pattern(triple_pattern)
        if pattern is None:
            return
        if context is None:
            for union in self._union:
                for quad in self._ox.quads_for_pattern(*pattern, union):
                    found = quad.triple
                    yield (
                        (_to_rdflib(found.subject), _to_rdflib(found.predicate), _to_rdflib(found.object)),
                        (self._contexts_of(found)),
                    )
            return
        identifier = context.identifier
        if identifier == DATASET_DEFAULT_GRAPH_ID:
            return  # the dataset has no default graph of its own (the store's is the internal union)
        graph = to_oxigraph(identifier)
        for quad in self._ox.quads_for_pattern(*pattern, graph):
            yield (_to_rdflib(quad.subject), _to_rdflib(quad.predicate), _to_rdflib(quad.object)), iter((context,))

    def __len__(self, context: Any = None) -> int:  # type: ignore[override]
        return sum(1 for _ in self.triples((None, None, None), context))

    def contexts(self, triple: Any = None) -> Iterator[Graph]:  # type: ignore[override]
        for name in self._ox.named_graphs():
            yield self._graph(name)

    def add(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("read-only store")

    def remove(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("read-only store")


class FederatingEmbeddedEngine(EmbeddedEngine):
    """The embedded engine; its queries with SERVICE run through rdflib's evaluator over the same pyoxigraph store.

    pyoxigraph cannot be told how to call SERVICE (see the module docstring), and the two evaluators agree on
    everything else (the conformance tests run on both), so the user sees one engine.
    """

    def __init__(self, snapshot: Snapshot, service_allow: tuple[str, ...] = (), service_timeout: float = 5.0) -> None:
        super().__init__(snapshot, service_allow)
        self.service_timeout = service_timeout
        self._federated: tuple[ox.Store, RdflibEngine] | None = None

    def execute(self, job: QueryJob) -> QueryOutcome:
        """Run one query: on pyoxigraph, or through rdflib's evaluator when it has a SERVICE."""
        if not service_targets(job.query):
            return super().execute(job)
        store = self.store  # (an on-disk store is opened per process: the view follows it)
        if self._federated is None or self._federated[0] is not store:
            view = OxigraphView(store, self.snapshot.inferred_graph)
            engine = RdflibEngine(self.snapshot, self.service_allow, self.service_timeout, store=view)
            self._federated = (store, engine)
        return self._federated[1].execute(job)


# --- the remote engine -------------------------------------------------------------------------------------

_SYNTAX_POSITIONS = (
    re.compile(r"error at (\d+):(\d+)"),  # Oxigraph
    re.compile(r"line (\d+), column (\d+)", re.IGNORECASE),  # Jena/Fuseki, RDF4J/GraphDB, rdflib
    re.compile(r"line:? (\d+)\D{1,20}col(?:umn)?:? (\d+)", re.IGNORECASE),
)


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


def _bind_parameters(text: str, job: QueryJob) -> str:
    """The query with its named-query parameters bound as pyoxigraph binds them (substitution, SEP-0007).

    Inside the query's groups each parameter variable is replaced by its term, except where SPARQL needs a
    variable (VALUES variable lists, `AS ?v`, a subquery's projection); a VALUES row leading the WHERE group
    keeps it bound in the results. The terms are written from parsed RDF terms, never from the client's text.

    Raises:
        InvalidParameterError: a parameter bound to a blank node (a query cannot name one).
    """
    substitutions = {v.value: t for v, t in _substitutions(job).items()}
    if not substitutions:
        return text
    for name, term in substitutions.items():
        if isinstance(term, ox.BlankNode):
            raise InvalidParameterError(f"cannot bind ?{name} to a blank node", variable=name)
    pieces, last, depth, keep = [], 0, 0, None  # keep: a variable list runs until this punctuation
    previous = ""
    for token in tokens(text):
        if token.kind == "word" and token.text.lower() in ("values", "select"):
            keep = "{"
        elif token.kind == "punct" and token.text in "{}":
            depth += 1 if token.text == "{" else -1
            if token.text == keep:
                keep = None
        elif token.kind == "word" and token.text.lower() == "where" and keep == "{":
            keep = None
        elif token.kind == "var" and depth > 0 and keep is None and previous != "as":
            term = substitutions.get(token.text[1:])
            if term is not None:
                pieces += [text[last : token.pos], str(term)]
                last = token.pos + len(token.text)
        previous = token.text.lower()
    text = "".join(pieces) + text[last:]
    variables = " ".join(f"?{name}" for name in substitutions)
    terms = " ".join(str(t) for t in substitutions.values())
    at = _where_group(text)
    return f"{text[:at]} VALUES ({variables}) {{ ({terms}) }} {text[at:]}"


def _wrapper_said(exc: SPARQLWrapperException) -> str:
    """What the store answered, which SPARQLWrapper keeps only as the repr of the body in its message."""
    _, found, raw = str(exc).partition("\n\nResponse:\n")
    with contextlib.suppress(ValueError, SyntaxError):
        body = ast.literal_eval(raw) if found else b""
        return _snippet(body, 1000) if isinstance(body, bytes) else ""
    return ""


class RemoteEngine(Engine):
    """Any SPARQL 1.1 store as the query engine, through SPARQLWrapper: our protocol, dataset, limits and errors.

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
        self.service_allow: tuple[str, ...] = settings.service_allow
        self.timeout = settings.query_timeout + 5.0  # the executor stops us at the query's own deadline first
        inferred = names.rebase(names.INFERRED_GRAPH, settings.base_iri)
        try:
            graphs = self._graph_list()
            if snapshot is not None:  # ours only: a store also holds its own graphs (Virtuoso's system graphs)
                missing = set(snapshot.graphs) - set(graphs)
                if missing:
                    log.warning("the remote store lacks %d of the dataset's graphs: run guian-kg push", len(missing))
                graphs = [g for g in graphs if g in set(snapshot.graphs)]
            self.union_default = self._union_default(graphs)
        except GuianError as exc:
            raise ConfigError(f"the remote store <{self.endpoint}> cannot be queried: {exc.detail}") from None
        # query_dataset() works on a snapshot's graph list: the store's, here
        self._dataset = Snapshot("remote", Path(), tuple(graphs), inferred, settings.base_iri)

    def graph_names(self) -> list[str]:
        """The IRIs of the named graphs the remote store holds."""
        return list(self._dataset.graphs)

    # -- talking to the store -----------------------------------------------------------------------------

    def _send(
        self, query: str, accept: str, default: Sequence[str] = (), named: Sequence[str] = (), form: str = "select"
    ) -> Any:
        wrapper = SPARQLWrapper(self.endpoint, agent=USER_AGENT)
        with warnings.catch_warnings():  # SPARQLWrapper warns about query forms its regex does not know
            warnings.simplefilter("ignore", RuntimeWarning)
            wrapper.setQuery(query)
        # Its regex takes the first keyword anywhere, comments included ("adds" -> ADD, an update): we know better.
        wrapper.queryType = form.upper()
        wrapper.setMethod(POST)
        wrapper.setRequestMethod(URLENCODED)  # a form body: every SPARQL 1.1 store reads it
        wrapper.setOnlyConneg(True)  # no format=/output= parameters: some stores refuse unknown ones
        wrapper.setTimeout(int(self.timeout + 1))
        wrapper.addCustomHttpHeader("Accept", accept)
        for iri in default:
            wrapper.addDefaultGraph(iri)
        for iri in named:
            wrapper.addNamedGraph(iri)
        try:
            return wrapper.query().response
        except SPARQLWrapperException as exc:
            said = _wrapper_said(exc)
            status = {"QueryBadFormed": 400, "Unauthorized": 401, "EndPointNotFound": 404, "URITooLong": 414}
            raise self._http_error(status.get(type(exc).__name__, 500), said) from None
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc.code, _snippet(exc.read(1000), 1000)) from None
        except (TimeoutError, urllib.error.URLError, OSError, HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
                raise QueryTimeoutError(f"the remote store <{self.endpoint}> did not answer in time") from None
            raise RemoteServiceError(
                f"the remote store <{self.endpoint}> could not be reached: {reason}", endpoint=self.endpoint
            ) from None

    def _http_error(self, status: int, said: str) -> GuianError:
        if status == 400:
            for pattern in _SYNTAX_POSITIONS:
                where = pattern.search(said)
                if where:
                    return QuerySyntaxError(said, line=int(where[1]), column=int(where[2]))
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

    # -- the Engine interface -------------------------------------------------------------------------------

    def _graph_params(self, job: QueryJob) -> tuple[list[str], list[str]]:
        dataset = query_dataset(job, self._dataset, dataset_clause(job.query, job.base_iri))
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
        form = check_query(job.query, self.service_allow)
        fmt = _result_format(job, form)
        default, named = self._graph_params(job)
        text, shift = job.query, 0
        if job.base_iri and _relative_iris(text):
            prefix = f"BASE <{job.base_iri}> "
            text, shift = prefix + text, len(prefix)  # on line 1: columns there move by its length
        text = _bind_parameters(text, job)
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
        result = ox.parse_query_results(response, source)
        if form == "ask" and isinstance(result, ox.QuerySolutions):  # Virtuoso 7: a row of ?__ASK_RETVAL when true
            result = ox.parse_query_results(json.dumps({"head": {}, "boolean": any(True for _ in result)}), JSON)
        if isinstance(result, ox.QueryBoolean):
            return result.serialize(format=getattr(ox.QueryResultsFormat, fmt.oxigraph)), 1
        return _serialise_solutions(result, fmt, max_rows)

    def _triples(self, response: IO[bytes], media_type: str, fmt: Any, max_rows: int) -> tuple[bytes, int]:
        source = GRAPH_FORMATS.get(media_type)
        if source is None:
            raise RemoteServiceError(f"the remote store answered {media_type}, not RDF", endpoint=self.endpoint)
        return _serialise_triples((quad.triple for quad in ox.parse(response, source)), fmt, max_rows)
