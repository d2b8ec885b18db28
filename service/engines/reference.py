"""The rdflib engine: pure rdflib over a snapshot, the reference implementation."""

from __future__ import annotations

import itertools
import logging
import re
import warnings
from collections.abc import Iterator
from typing import Any

from pyparsing import ParseException
from rdflib import Dataset, Graph, URIRef, Variable
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

from service.data.snapshots import Snapshot
from service.engines.base import (
    Engine,
    QueryJob,
    QueryOutcome,
    engine_failure,
    query_dataset,
    result_format,
    substitutions,
    too_large,
)
from service.engines.results import AS_TRIPLES, results_from_json, xml_checked
from service.engines.service_calls import configure_rdflib, restore_service_text, use_service
from service.errors import GuianError, QuerySyntaxError, QueryUnsupportedError, RemoteServiceError
from service.sparql import formats
from service.sparql.lexer import check_query, position, service_targets, tokens
from service.sparql.syntax import check_syntax
from service.sparql.terms import to_rdflib

# ---------------------------------------------------------------------------------------------------------
# Shared by the embedded and rdflib engines.

log = logging.getLogger("guian_kg.engine")


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


class RdflibEngine(Engine):
    """rdflib Dataset loaded from the snapshot's N-Quads: the reference engine.

    rdflib's own SERVICE client has no timeout and follows redirects to any host (PITFALLS): an allow-listed
    SERVICE is evaluated by service.engines.service_calls instead (bind join, `service_timeout`, no redirects).
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
        # anything; the switches also cover any other rdflib code path in this process.
        configure_rdflib()
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
        check_syntax(job.query, job.base_iri)  # rdflib's parser accepts queries the grammar refuses
        try:
            parsed = parseQuery(job.query)
            if service_targets(job.query):
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
        form = job.form or check_query(job.query, self.service_allow)
        fmt = result_format(job, form)
        query = self._prepare(job)
        if _has_service(query.algebra):
            use_service(self.service_allow, self.service_timeout)
        clause = query.algebra.datasetClause or []
        query_from = ([str(d.default) for d in clause if d.default], [str(d.named) for d in clause if d.named])
        dataset = query_dataset(job, self.snapshot, query_from)
        members = None
        if not (dataset.union and job.infer):
            members = frozenset(DATASET_DEFAULT_GRAPH_ID if g is None else URIRef(g) for g in dataset.default)
        named = tuple(URIRef(g) for g in dataset.named if URIRef(g) in self._existing)
        bindings = {Variable(v.value): to_rdflib(t) for v, t in substitutions(job).items()}
        try:
            ctx = QueryContext(_NamedGraphs(self._store, named), initBindings=bindings)
            ctx.graph = _UnionGraph(self._store, members)
            ctx.prologue = query.prologue
            res = dict(evalPart(ctx, query.algebra))
            if form == "select":
                rows = list(itertools.islice(res["bindings"], job.max_rows + 1))
                if len(rows) > job.max_rows:
                    raise too_large(job.max_rows)
                result, count = SPARQLResult({**res, "bindings": rows}), len(rows)
            elif form == "ask":
                result, count = SPARQLResult(res), 1
            else:
                graph = res["graph"]
                if len(graph) > job.max_rows:
                    raise too_large(job.max_rows)
                return QueryOutcome(form, fmt.media_type, self._serialise_graph(graph, fmt), len(graph))
            body = results_from_json(result.serialize(format="json"), fmt)
        except GuianError:
            raise
        except MemoryError:
            raise  # the worker reports it and retires
        except Exception as exc:
            failure = engine_failure(exc, job)  # logged with the query
            if isinstance(failure, RemoteServiceError):
                raise failure from None
            # A valid query (the strict parser took it) that rdflib cannot evaluate: its limit, not the client's
            # fault nor an outage; the embedded engine answers it.
            raise QueryUnsupportedError(
                "the rdflib engine cannot evaluate this query (a limitation of rdflib); the embedded engine can"
            ) from None
        return QueryOutcome(form, fmt.media_type, body, count)

    @staticmethod
    def _serialise_graph(graph: Graph, fmt: formats.Format) -> bytes:
        return xml_checked(graph.serialize(format=AS_TRIPLES.get(fmt.key, fmt).rdflib, encoding="utf-8"), fmt)
