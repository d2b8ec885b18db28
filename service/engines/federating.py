"""The embedded engine with allow-listed SERVICE: pyoxigraph's data seen through rdflib's evaluator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef, Variable
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from rdflib.store import Store

from service.data.snapshots import Snapshot
from service.engines.base import QueryJob, QueryOutcome
from service.engines.embedded import EmbeddedEngine
from service.engines.reference import RdflibEngine
from service.sparql.lexer import service_targets
from service.sparql.terms import to_oxigraph, to_rdflib

# --- the embedded engine's SERVICE path ----------------------------------------------------------------------


class OxigraphView(Store):
    """A read-only rdflib store over an embedded engine's pyoxigraph store, so rdflib's evaluator can run on it.

    Pattern lookups with no graph (`context=None`) read the union of every graph, one triple once: the store's
    default graph (the asserted union) and the inferred graph, which are disjoint (service.data.oxstores). The graphs
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
        identifier = DATASET_DEFAULT_GRAPH_ID if isinstance(name, ox.DefaultGraph) else to_rdflib(name)
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
                        (to_rdflib(found.subject), to_rdflib(found.predicate), to_rdflib(found.object)),
                        (self._contexts_of(found)),
                    )
            return
        identifier = context.identifier
        if identifier == DATASET_DEFAULT_GRAPH_ID:
            return  # the dataset has no default graph of its own (the store's is the internal union)
        graph = to_oxigraph(identifier)
        for quad in self._ox.quads_for_pattern(*pattern, graph):
            yield (to_rdflib(quad.subject), to_rdflib(quad.predicate), to_rdflib(quad.object)), iter((context,))

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
