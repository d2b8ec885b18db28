"""The source is read-only: the graphs the shipped data comes in may change only where the operator opts in.

The shipped data (graph_data/, ontology/) lives in the ontology graph, the provenance graph, the assumptions
graphs and one graph per claim (service.data.sources.shipped_graphs lists them); a write whose delta touches any
of them is refused (`source-read-only`) unless the service runs with `--source-writes`
(GUIAN_KG_SOURCE_WRITES=true). Curators write their own claims into graphs of their own, e.g.
`<base>graph/curated/<name>` or a new `<base>graph/claim/<name>`.
"""

from __future__ import annotations

from collections.abc import Iterable

from service import names
from service.sparql.update_lint import comparable_iri

CURATED_GRAPH_PREFIX = names.GRAPH + "curated/"


class SourceGraphs:
    """The graph IRIs of the shipped data, compared as IRIs (scheme and host case-insensitively)."""

    def __init__(self, graphs: Iterable[str]) -> None:
        self._graphs = frozenset(comparable_iri(graph) for graph in graphs)

    def __contains__(self, iri: object) -> bool:
        return isinstance(iri, str) and comparable_iri(iri) in self._graphs

    def __bool__(self) -> bool:
        return bool(self._graphs)
