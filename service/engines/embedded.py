"""The embedded engine: pyoxigraph over a snapshot's store (the default)."""

from __future__ import annotations

import os
from typing import Any

import pyoxigraph as ox

from service.data.oxstores import memory_store, release_memory
from service.data.snapshots import Snapshot
from service.engines.base import (
    OX_UNPROJECTED,
    Engine,
    QueryJob,
    QueryOutcome,
    engine_failure,
    query_dataset,
    query_from,
    result_format,
    substitutions,
)
from service.engines.results import serialise_solutions, serialise_triples
from service.errors import (
    ConfigError,
    GuianError,
    InvalidParameterError,
    QuerySyntaxError,
)
from service.sparql.lexer import check_query, syntax_position
from service.sparql.syntax import unknown_function
from service.sparql.terms import named_node


class EmbeddedEngine(Engine):
    """pyoxigraph (the default engine): an in-memory store loaded from the snapshot's N-Quads, or for a snapshot
    with an on-disk store (`Snapshot.disk_store`) that store, opened read-only in each process that queries."""

    name = "embedded"

    def __init__(self, snapshot: Snapshot, service_allow: tuple[str, ...] = ()) -> None:
        self.snapshot = snapshot
        self.service_allow = service_allow
        self._inferred = named_node(snapshot.inferred_graph)
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

    def apply(self, snapshot: Snapshot, remove: tuple[str, ...], add: tuple[str, ...]) -> bool:
        """Move the in-memory store to `snapshot` by a delta (see Engine.apply); an on-disk store cannot."""
        if self.snapshot.disk_store is not None or snapshot.disk_store is not None or self._store is None:
            return False
        store = self._store
        removed = list(ox.parse("\n".join(remove) + "\n", format=ox.RdfFormat.N_QUADS)) if remove else []
        for quad in removed:
            store.remove(quad)
        if add:
            store.extend(ox.parse("\n".join(add) + "\n", format=ox.RdfFormat.N_QUADS))
        kept = set(snapshot.graphs)
        for graph in {quad.graph_name for quad in removed}:
            if isinstance(graph, ox.NamedNode) and graph.value not in kept:
                store.remove_graph(graph)  # emptied: the store's named graphs are exactly the snapshot's graphs
        self.snapshot = snapshot
        self._inferred = named_node(snapshot.inferred_graph)
        self._asserted = [ox.NamedNode(g) for g in snapshot.asserted_graphs]
        return True

    def graph_names(self) -> list[str]:
        """The IRIs of the dataset's named graphs."""
        return list(self.snapshot.graphs)

    def execute(self, job: QueryJob) -> QueryOutcome:
        """Run one query on pyoxigraph and serialise its result in `job.result_format`.

        Raises:
            QuerySyntaxError: with `line`/`column` extras.
            ServiceForbiddenError: for a SERVICE endpoint not on the allowlist.
            QueryUnsupportedError: a call to a function pyoxigraph does not know (422, not an engine failure).
            ResultTooLargeError: past `job.max_rows` rows or triples.
            GuianError: any other failure, with a safe message (the cause is logged).
        """
        form = job.form or check_query(job.query, self.service_allow)
        fmt = result_format(job, form)
        dataset = query_dataset(job, self.snapshot, query_from(job))
        options: dict[str, Any] = {"base_iri": job.base_iri, "substitutions": substitutions(job)}
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
                body, rows = serialise_solutions(result, fmt, job.max_rows)
            else:
                body, rows = serialise_triples(result, fmt, job.max_rows)
        except GuianError:
            raise
        except RuntimeError as exc:
            refusal = unknown_function(exc)
            if refusal is not None:
                raise refusal from None
            unprojected = OX_UNPROJECTED.search(str(exc))
            if not unprojected:
                raise engine_failure(exc, job) from None
            raise InvalidParameterError(
                f"cannot bind ?{unprojected[1]}: the query does not SELECT it", variable=unprojected[1]
            ) from None
        except SyntaxError as exc:
            where = syntax_position(str(exc))
            extra = {"line": where[0], "column": where[1]} if where else {}
            raise QuerySyntaxError(str(exc), **extra) from None
        except MemoryError:
            raise  # the worker reports it and retires
        except Exception as exc:
            raise engine_failure(exc, job) from None
        return QueryOutcome(form, fmt.media_type, body, rows)
