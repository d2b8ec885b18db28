"""One query interface, three engines: embedded (pyoxigraph), rdflib (reference) and remote (SPARQL endpoint)."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import itertools
import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any

import pyoxigraph as ox
import rdflib.plugins.sparql
from pyparsing import ParseException
from rdflib import XSD, BNode, Dataset, Graph, Literal, URIRef, Variable
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from rdflib.paths import Path
from rdflib.plugins.sparql.algebra import StopTraversal, translateQuery, traverse
from rdflib.plugins.sparql.evaluate import evalPart
from rdflib.plugins.sparql.parser import parseQuery
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.plugins.sparql.processor import SPARQLResult
from rdflib.plugins.sparql.sparql import Query, QueryContext
from rdflib.store import Store
from rdflib.term import Node

from service import formats
from service.errors import (
    ConfigError,
    GuianError,
    InvalidParameterError,
    NotAcceptableError,
    QuerySyntaxError,
    RemoteServiceError,
    ResultTooLargeError,
)
from service.query_text import check_query, dataset_clause, position, service_targets, tokens

if TYPE_CHECKING:
    from service.config import Settings
    from service.store import Snapshot


@dataclass(frozen=True)
class QueryJob:
    """A query as the protocol layer hands it to an engine: text, options and the result format to write."""

    query: str
    result_format: str  # a key of service.formats.BY_KEY: json xml csv tsv ttl nt jsonld rdfxml trig nq
    infer: bool = True
    default_graph_uris: tuple[str, ...] = ()
    named_graph_uris: tuple[str, ...] = ()
    base_iri: str | None = None
    # Named-query parameters: variable name -> term in N-Triples syntax, bound as RDF terms (never pasted).
    bindings: tuple[tuple[str, str], ...] = ()
    max_rows: int = 100_000


@dataclass(frozen=True)
class QueryOutcome:
    """A finished query: its form, the serialised body in the job's format, and how many rows/triples it had."""

    form: str  # select | ask | construct | describe
    media_type: str
    body: bytes
    rows: int = 0
    extra: dict = field(default_factory=dict)


class Engine(ABC):
    """A loaded dataset that answers SPARQL. Implementations raise service.errors.GuianError subclasses."""

    name: str = "abstract"

    @abstractmethod
    def execute(self, job: QueryJob) -> QueryOutcome:
        """Run one query and serialise its result in `job.result_format`."""

    @abstractmethod
    def graph_names(self) -> list[str]:
        """The IRIs of the dataset's named graphs."""

    def after_fork(self) -> None:  # noqa: B027 (a hook most engines leave empty)
        """Get ready to answer in a freshly forked query worker (open per-process resources); nothing by default."""


# ---------------------------------------------------------------------------------------------------------
# Shared by the embedded and rdflib engines.

log = logging.getLogger("guian_kg.engine")

_OX_SYNTAX = re.compile(r"error at (\d+):(\d+)")
_OX_UNPROJECTED = re.compile(r"does not contains? variable \?(\S+) in its SELECT projection")
# A CONSTRUCT/DESCRIBE result is one default graph: as N-Quads it is its N-Triples, as TriG its Turtle
# (rdflib 7.6's own dataset serialisers warn on deprecated internals).
_AS_TRIPLES = {"nq": formats.BY_KEY["nt"], "trig": formats.BY_KEY["ttl"]}


@dataclass(frozen=True)
class QueryDataset:
    """The RDF dataset one query runs over: default-graph members (None = the store's default graph)."""

    default: tuple[str | None, ...]
    named: tuple[str, ...]
    union: bool = False  # the default graph is the union of everything (asserted, or also inferred)


def query_dataset(job: QueryJob, snapshot: Snapshot, query_from: tuple[list[str], list[str]]) -> QueryDataset:
    """The dataset of a job: protocol graphs beat the query's FROM, which beats the union of all graphs.

    `infer=False` takes the inferred graph out of it, whichever way it was named.
    """
    keep = (lambda iri: iri != snapshot.inferred_graph) if not job.infer else (lambda iri: True)
    if job.default_graph_uris or job.named_graph_uris:
        default, named = job.default_graph_uris, job.named_graph_uris
        for iri in (*default, *named):
            _named_node(iri)  # a client's bad IRI is a 400, never an engine error
    elif query_from[0] or query_from[1]:
        # A malformed FROM is left to the engine's parser, which reports it with its position.
        default, named = tuple(filter(_is_iri, query_from[0])), tuple(filter(_is_iri, query_from[1]))
    else:
        graphs = snapshot.graphs if job.infer else snapshot.asserted_graphs
        return QueryDataset((None, *graphs), graphs, union=True)
    return QueryDataset(tuple(g for g in default if keep(g)), tuple(g for g in named if keep(g)))


def _is_iri(text: str) -> bool:
    try:
        ox.NamedNode(text)
    except ValueError:
        return False
    return True


def _named_node(iri: str) -> ox.NamedNode:
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


def _substitutions(job: QueryJob) -> dict[ox.Variable, ox.NamedNode | ox.BlankNode | ox.Literal]:
    subs = {}
    for name, term in job.bindings:
        try:
            variable = ox.Variable(name.lstrip("?$"))
        except ValueError:
            raise InvalidParameterError(f"not a variable name: {name[:100]!r}") from None
        subs[variable] = parse_term(term)
    return subs


def _result_format(job: QueryJob, form: str) -> formats.Format:
    fmt = formats.by_key(job.result_format)
    if fmt is None:
        raise InvalidParameterError(f"unknown result format {job.result_format[:50]!r}")
    if fmt not in formats.FORM_FORMATS[form]:
        raise NotAcceptableError(f"a {form.upper()} result cannot be written as {fmt.key}")
    return fmt


def _too_large(max_rows: int) -> ResultTooLargeError:
    return ResultTooLargeError(f"the result has more than {max_rows} rows; add a LIMIT", max_rows=max_rows)


def _failed(exc: Exception, job: QueryJob) -> GuianError:
    """A safe client error for an unexpected engine exception, which is logged with the query."""
    log.error("query failed: %r\n%s", exc, job.query[:2000], exc_info=exc)
    if isinstance(exc, OSError) and service_targets(job.query):
        return RemoteServiceError("a SERVICE endpoint could not be queried")
    return GuianError("the query engine failed on this query")


class _RowCounter:
    """A write-only byte sink for SPARQL TSV results that stops the writer past `max_rows` rows."""

    def __init__(self, max_rows: int) -> None:
        self.data = bytearray()
        self.lines = 0  # the header line, then one line per row
        self.max_rows = max_rows

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        self.lines += chunk.count(b"\n")
        if self.lines > self.max_rows + 1:
            raise _too_large(self.max_rows)
        return len(chunk)

    def flush(self) -> None:
        pass

    @property
    def rows(self) -> int:
        return max(self.lines - 1, 0)


def _serialise_solutions(solutions: ox.QuerySolutions, fmt: formats.Format, max_rows: int) -> tuple[bytes, int]:
    # pyoxigraph cannot build QuerySolutions from a list, so count rows on its TSV (one row per line, terms
    # in N-Triples syntax: lossless), then re-serialise that into the requested format.
    sink = _RowCounter(max_rows)
    solutions.serialize(sink, ox.QueryResultsFormat.TSV)
    if fmt.key == "tsv":
        return bytes(sink.data), sink.rows
    parsed = ox.parse_query_results(bytes(sink.data), ox.QueryResultsFormat.TSV)
    return parsed.serialize(format=getattr(ox.QueryResultsFormat, fmt.oxigraph)), sink.rows


def _serialise_triples(triples: Iterable[ox.Triple], fmt: formats.Format, max_rows: int) -> tuple[bytes, int]:
    unique: dict[ox.Triple, None] = {}
    for triple in triples:
        unique[triple] = None
        if len(unique) > max_rows:
            raise _too_large(max_rows)
    rdf_format = getattr(ox.RdfFormat, _AS_TRIPLES.get(fmt.key, fmt).oxigraph)
    return ox.serialize(unique, format=rdf_format), len(unique)


# --- the embedded engine's stores ------------------------------------------------------------------------
#
# Both hold every quad of the snapshot in its named graph, plus the set union of the asserted graphs as the store's
# own default graph: pyoxigraph's union default graph is a bag, so a triple asserted in two claim graphs would count
# twice (COUNT, SUM, duplicate rows); rdflib's union is a set. A query's default graph is then that union, and with
# inferences the inferred graph beside it (the two are disjoint: see _keep_disjoint). The store's named graphs are
# exactly the snapshot's graphs, so a query over all of them passes no list.


def _keep_disjoint(store: ox.Store, inferred: ox.NamedNode) -> None:
    """Take out of the inferred graph any triple that is also asserted (reasoning keeps none; this makes sure)."""
    if store.query(f"ASK {{ GRAPH {inferred} {{ ?s ?p ?o }} ?s ?p ?o }}"):
        log.warning("the inferred graph repeats asserted triples: leaving them out of it")
        pattern = f"GRAPH {inferred} {{ ?s ?p ?o }}"
        store.update(f"DELETE {{ {pattern} }} WHERE {{ {pattern} ?s ?p ?o }}")


def memory_store(nquads: FilePath, inferred_graph: str) -> ox.Store:
    """The snapshot's N-Quads in an in-memory store, with the asserted union as its default graph."""
    inferred = ox.NamedNode(inferred_graph)
    store = ox.Store()
    store.bulk_load(path=nquads, format=ox.RdfFormat.N_QUADS)
    store.update(f"INSERT {{ ?s ?p ?o }} WHERE {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(?g != {inferred}) }}")
    _keep_disjoint(store, inferred)
    return store


def build_disk_store(nquads: FilePath, inferred_graph: str, target: FilePath) -> None:
    """Write the snapshot's N-Quads as an on-disk (RocksDB) store at `target`, laid out as `memory_store`'s.

    One bulk load of one file: the quads, then each asserted one again without its graph (the default graph).
    Blank node labels are scoped to a file, so both copies of a quad keep the same blank nodes.
    """
    inferred = ox.NamedNode(inferred_graph)
    combined = target.with_name(target.name + ".load.nq")
    ending = f" {inferred} .\n"
    with open(nquads, "rb") as source, open(combined, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 22)
    with open(nquads, encoding="utf-8") as source, open(combined, "a", encoding="utf-8") as out:
        for line in source:
            if line.endswith(ending) or line.isspace():
                continue
            if not line.endswith("> .\n"):  # every quad of a snapshot is in a named graph, the IRI last
                raise ConfigError(f"not a quad of a named graph in {nquads}: {line[:200]!r}")
            out.write(line[: line.rindex(" <")] + " .\n")
    try:
        store = ox.Store(str(target))
        store.bulk_load(path=combined, format=ox.RdfFormat.N_QUADS)
        _keep_disjoint(store, inferred)
        store.flush()
    finally:
        combined.unlink(missing_ok=True)


def disk_store(nquads: FilePath, inferred_graph: str, target: FilePath) -> FilePath:
    """The on-disk store of a snapshot at `target`, built once (in a child process) if it is not there yet.

    It is built beside `target` and renamed into place once the child that wrote it has exited, so `target` is
    never a partial store; a failed build leaves a temporary folder that the next build removes.

    Raises:
        ConfigError: when the build fails.
    """
    if (target / "CURRENT").is_file():
        return target
    with open(target.with_name(target.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # server workers may start at once: build only once
        if (target / "CURRENT").is_file():
            return target
        for stale in target.parent.glob(target.name + ".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        building = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        # A child builds it: RocksDB's background threads do not survive a fork, so a process that forks query
        # workers (a server, its zygotes) never opens RocksDB itself; and once the child has exited, the store is
        # closed and flushed for sure.
        done = subprocess.run(
            [sys.executable, "-m", "service.engine", "build-disk-store", str(nquads), inferred_graph, str(building)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0 or not (building / "CURRENT").is_file():
            shutil.rmtree(building, ignore_errors=True)
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise ConfigError(f"building the on-disk store of {nquads.parent.name} failed: {detail[0][:500]}")
        os.rename(building, target)
        _fsync_dir(target.parent)
        log.info("on-disk store of %s built at %s", nquads.parent.name, target)
    return target


def _fsync_dir(path: FilePath) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def release_memory() -> None:
    """Give the heap pages freed by a dropped store back to the system (glibc keeps them otherwise)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class EmbeddedEngine(Engine):
    """pyoxigraph (the default engine): an in-memory store loaded from the snapshot's N-Quads, or for a snapshot
    with an on-disk store (`Snapshot.disk_store`) that store, opened read-only in each process that queries."""

    name = "embedded"

    def __init__(self, snapshot: Snapshot, service_allow: tuple[str, ...] = ()) -> None:
        self.snapshot = snapshot
        self.service_allow = service_allow
        self._inferred = _named_node(snapshot.inferred_graph)
        self._asserted = [ox.NamedNode(g) for g in snapshot.asserted_graphs]
        self._store: ox.Store | None = None
        self._opened_in = 0  # the process that opened the on-disk store (never shared across fork)
        if snapshot.disk_store is None:
            # Loaded once, in the zygote; the query workers it forks share it copy-on-write.
            self._store = memory_store(snapshot.nquads, snapshot.inferred_graph)
            release_memory()  # what loading left behind, before the workers inherit it

    @property
    def store(self) -> ox.Store:
        """The pyoxigraph store (an on-disk one is opened on first use in each process)."""
        if self.snapshot.disk_store is not None and self._opened_in != os.getpid():
            self._store = ox.Store.read_only(str(self.snapshot.disk_store))
            self._opened_in = os.getpid()
        assert self._store is not None
        return self._store

    def after_fork(self) -> None:
        """Open the on-disk store in this query worker, so that a store that cannot be opened fails here."""
        try:
            self.store  # noqa: B018
        except OSError as exc:
            raise ConfigError(f"the on-disk store cannot be opened: {exc}") from None

    def graph_names(self) -> list[str]:
        """The IRIs of the dataset's named graphs."""
        return list(self.snapshot.graphs)

    def execute(self, job: QueryJob) -> QueryOutcome:
        """Run one query on pyoxigraph and serialise its result in `job.result_format`.

        Raises:
            QuerySyntaxError: with `line`/`column` extras.
            ServiceForbiddenError: for a SERVICE endpoint not on the allowlist.
            ResultTooLargeError: past `job.max_rows` rows or triples.
            GuianError: any other failure, with a safe message (the cause is logged).
        """
        form = check_query(job.query, self.service_allow)
        fmt = _result_format(job, form)
        dataset = query_dataset(job, self.snapshot, dataset_clause(job.query, job.base_iri))
        options: dict[str, Any] = {"base_iri": job.base_iri, "substitutions": _substitutions(job)}
        if dataset.union:  # the asserted union (+ the inferred graph); every named graph but, without, that one
            options["default_graph"] = [ox.DefaultGraph(), self._inferred] if job.infer else [ox.DefaultGraph()]
            options["named_graphs"] = None if job.infer else self._asserted
        else:
            options["default_graph"] = [ox.DefaultGraph() if g is None else ox.NamedNode(g) for g in dataset.default]
            options["named_graphs"] = [ox.NamedNode(g) for g in dataset.named]
        try:
            result = self.store.query(job.query, **options)
            if isinstance(result, ox.QueryBoolean):
                body, rows = result.serialize(format=getattr(ox.QueryResultsFormat, fmt.oxigraph)), 1
            elif isinstance(result, ox.QuerySolutions):
                body, rows = _serialise_solutions(result, fmt, job.max_rows)
            else:
                body, rows = _serialise_triples(result, fmt, job.max_rows)
        except GuianError:
            raise
        except RuntimeError as exc:
            unprojected = _OX_UNPROJECTED.search(str(exc))
            if not unprojected:
                raise _failed(exc, job) from None
            raise InvalidParameterError(
                f"cannot bind ?{unprojected[1]}: the query does not SELECT it", variable=unprojected[1]
            ) from None
        except SyntaxError as exc:
            where = _OX_SYNTAX.search(str(exc))
            extra = {"line": int(where[1]), "column": int(where[2])} if where else {}
            raise QuerySyntaxError(str(exc), **extra) from None
        except MemoryError:
            raise  # the worker reports it and retires
        except Exception as exc:
            raise _failed(exc, job) from None
        return QueryOutcome(form, fmt.media_type, body, rows)


class _UnionGraph(Graph):
    """A read-only default graph: the set union of some graphs of a store, one index lookup per pattern."""

    def __init__(self, store: Store, members: frozenset[Node] | None) -> None:
        super().__init__(store=store, identifier=URIRef("urn:x-guian-kg:default-graph"))
        self._members = members  # None: every graph

    def triples(self, triple: Any) -> Iterator[Any]:  # type: ignore[override]
        s, p, o = triple
        if isinstance(p, Path):
            for ps, po in p.eval(self, s, o):
                yield ps, p, po
            return
        for found, contexts in self.store.triples((s, p, o), context=None):
            if self._members is None or any(c.identifier in self._members for c in contexts):
                yield found

    def __len__(self) -> int:
        return sum(1 for _ in self.triples((None, None, None)))

    def add(self, triple: Any) -> Any:  # type: ignore[override]
        raise TypeError("read-only graph")

    def remove(self, triple: Any) -> Any:  # type: ignore[override]
        raise TypeError("read-only graph")


class _NamedGraphs(Dataset):
    """What rdflib's GRAPH evaluation asks of a dataset, over the query's named graphs only."""

    def __init__(self, store: Store, members: tuple[URIRef, ...]) -> None:
        super().__init__(store=store)
        self._members = members

    @property
    def default_context(self) -> Graph:  # type: ignore[override]
        return self._default_context  # the inherited property warns on every GRAPH ?g

    def contexts(self, triple: Any = None) -> Iterator[Graph]:  # type: ignore[override]
        for iri in self._members:
            yield Graph(store=self.store, identifier=iri)

    def get_context(self, identifier: Any, quoted: bool = False, base: str | None = None) -> Graph:
        if identifier in self._members:
            return Graph(store=self.store, identifier=identifier)
        return Graph()  # not in the dataset: empty, never fetched


def _has_service(algebra: CompValue) -> bool:
    def visit(node: Any) -> None:
        if isinstance(node, CompValue) and node.name == "ServiceGraphPattern":
            raise StopTraversal(True)

    return bool(traverse(algebra, visitPre=visit, complete=False))


def _to_rdflib(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> Node:
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if term.language:
        return Literal(term.value, lang=term.language)
    # rdflib keeps plain literals untyped: "x" and "x"^^xsd:string would be two different terms to it.
    datatype = None if term.datatype.value == str(XSD.string) else URIRef(term.datatype.value)
    return Literal(term.value, datatype=datatype)


class RdflibEngine(Engine):
    """rdflib Dataset loaded from the snapshot's N-Quads: the reference engine.

    rdflib's own SERVICE client has no timeout and follows redirects to any host (PITFALLS): an allow-listed
    SERVICE is evaluated by service.remote instead (bind join, `service_timeout`, no redirects).
    """

    name = "rdflib"

    def __init__(
        self,
        snapshot: Snapshot,
        service_allow: tuple[str, ...] = (),
        service_timeout: float = 5.0,
        store: Store | None = None,
    ) -> None:
        """Load the snapshot, or query `store` instead (the embedded engine's data, for its SERVICE queries)."""
        # This engine evaluates the dataset clause itself (never rdflib's evalQuery), so FROM cannot load
        # anything; the switch also covers any other rdflib code path in this process.
        rdflib.plugins.sparql.SPARQL_LOAD_GRAPHS = False
        self.snapshot = snapshot
        self.service_allow = service_allow
        self.service_timeout = service_timeout
        if store is not None:
            self._store = store
            self._existing = frozenset(URIRef(g) for g in snapshot.graphs)
            return
        self._dataset = Dataset()
        with warnings.catch_warnings():  # rdflib 7.6's own Dataset.parse uses its deprecated default_context
            warnings.filterwarnings("ignore", "Dataset.default_context is deprecated", DeprecationWarning)
            self._dataset.parse(snapshot.nquads, format="nquads")
        self._store = self._dataset.store
        self._existing = frozenset(g.identifier for g in self._dataset.graphs())

    def graph_names(self) -> list[str]:
        """The IRIs of the dataset's named graphs."""
        return list(self.snapshot.graphs)

    def _prepare(self, job: QueryJob) -> Query:
        try:
            parsed = parseQuery(job.query)
            if service_targets(job.query):
                from service.remote import restore_service_text  # (service.remote imports this module)

                restore_service_text(parsed, job.query)
            return translateQuery(parsed, base=job.base_iri, initNs={})
        except ParseException as exc:
            raise QuerySyntaxError(
                f"{exc.msg} (line {exc.lineno}, column {exc.col})", line=exc.lineno, column=exc.col
            ) from None
        except Exception as exc:
            unknown = re.match(r"Unknown namespace prefix : (\S*)", str(exc))
            if unknown:
                for token in tokens(job.query):
                    if token.kind == "pname" and token.text.split(":", 1)[0] == unknown[1]:
                        line, column = position(job.query, token.pos)
                        raise QuerySyntaxError(
                            f"undeclared prefix {unknown[1]}: (line {line}, column {column})", line=line, column=column
                        ) from None
            log.info("rdflib could not translate a query: %r", exc)
            raise QuerySyntaxError("the query could not be compiled") from None

    def execute(self, job: QueryJob) -> QueryOutcome:
        """Run one query on rdflib and serialise its result in `job.result_format`.

        Raises:
            QuerySyntaxError: with `line`/`column` extras.
            ServiceForbiddenError: for a SERVICE endpoint not on the allowlist.
            RemoteServiceError: an allow-listed SERVICE endpoint failed (not under SERVICE SILENT).
            ResultTooLargeError: past `job.max_rows` rows or triples.
            GuianError: any other failure, with a safe message (the cause is logged).
        """
        form = check_query(job.query, self.service_allow)
        fmt = _result_format(job, form)
        query = self._prepare(job)
        if _has_service(query.algebra):
            from service.remote import use_service  # (service.remote imports this module)

            use_service(self.service_allow, self.service_timeout)
        clause = query.algebra.datasetClause or []
        query_from = ([str(d.default) for d in clause if d.default], [str(d.named) for d in clause if d.named])
        dataset = query_dataset(job, self.snapshot, query_from)
        members = None
        if not (dataset.union and job.infer):
            members = frozenset(DATASET_DEFAULT_GRAPH_ID if g is None else URIRef(g) for g in dataset.default)
        named = tuple(URIRef(g) for g in dataset.named if URIRef(g) in self._existing)
        bindings = {Variable(v.value): _to_rdflib(t) for v, t in _substitutions(job).items()}
        try:
            ctx = QueryContext(_NamedGraphs(self._store, named), initBindings=bindings)
            ctx.graph = _UnionGraph(self._store, members)
            ctx.prologue = query.prologue
            res = dict(evalPart(ctx, query.algebra))
            if form == "select":
                rows = list(itertools.islice(res["bindings"], job.max_rows + 1))
                if len(rows) > job.max_rows:
                    raise _too_large(job.max_rows)
                result, count = SPARQLResult({**res, "bindings": rows}), len(rows)
            elif form == "ask":
                result, count = SPARQLResult(res), 1
            else:
                graph = res["graph"]
                if len(graph) > job.max_rows:
                    raise _too_large(job.max_rows)
                return QueryOutcome(form, fmt.media_type, self._serialise_graph(graph, fmt), len(graph))
            if fmt.key in ("json", "xml") or (fmt.key == "csv" and form == "select"):
                body = result.serialize(format=fmt.rdflib)
            else:  # rdflib has no TSV writer (nor CSV for ASK): write the JSON as pyoxigraph does
                parsed = ox.parse_query_results(result.serialize(format="json"), ox.QueryResultsFormat.JSON)
                body = parsed.serialize(format=getattr(ox.QueryResultsFormat, fmt.oxigraph))
        except GuianError:
            raise
        except MemoryError:
            raise  # the worker reports it and retires
        except Exception as exc:
            raise _failed(exc, job) from None
        return QueryOutcome(form, fmt.media_type, body, count)

    @staticmethod
    def _serialise_graph(graph: Graph, fmt: formats.Format) -> bytes:
        return graph.serialize(format=_AS_TRIPLES.get(fmt.key, fmt).rdflib, encoding="utf-8")


def engine_for(settings: Settings, snapshot: Snapshot) -> Engine:
    """The engine `settings.engine` names, loaded with the snapshot (remote: connected to the store).

    Raises:
        ConfigError: an unknown engine, or a remote store that cannot be queried.
    """
    if settings.engine == "embedded":
        if settings.service_allow:  # pyoxigraph cannot be told how to call SERVICE: see service.remote
            from service.remote import FederatingEmbeddedEngine

            return FederatingEmbeddedEngine(snapshot, settings.service_allow, settings.service_timeout)
        return EmbeddedEngine(snapshot, settings.service_allow)
    if settings.engine == "rdflib":
        return RdflibEngine(snapshot, settings.service_allow, settings.service_timeout)
    if settings.engine == "remote":
        from service.remote import RemoteEngine

        return RemoteEngine(settings, snapshot)
    raise ConfigError(f"unknown engine {settings.engine!r}")


def _main(argv: list[str]) -> int:
    if argv[:1] == ["build-disk-store"] and len(argv) == 4:
        build_disk_store(FilePath(argv[1]), argv[2], FilePath(argv[3]))
        return 0
    print("usage: python -m service.engine build-disk-store NQUADS INFERRED_GRAPH TARGET", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
