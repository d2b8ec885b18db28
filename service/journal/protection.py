"""The source is read-only: the graphs the shipped data comes in may change only where the operator opts in.

The shipped data (graph_data/, ontology/) lives in the ontology graph, the provenance graph, the assumptions
graphs and one graph per claim; a write whose delta touches any of them is refused (`source-read-only`) unless
the service runs with `--source-writes` (GUIAN_KG_SOURCE_WRITES=true). Curators write their own claims into
graphs of their own, e.g. `<base>graph/curated/<name>` — any graph IRI outside the families below.
"""

from __future__ import annotations

from service import names

SOURCE_GRAPHS = (names.ONTOLOGY_GRAPH, names.PROVENANCE_GRAPH, names.GRAPH + "assumptions")
SOURCE_GRAPH_FAMILIES = (names.CLAIM_GRAPH_PREFIX, names.GRAPH + "assumption/")
CURATED_GRAPH_PREFIX = names.GRAPH + "curated/"


def is_source_graph(iri: str, base_iri: str) -> bool:
    """Whether `iri` names a graph of the shipped data (under the deployment's base IRI)."""
    if iri in (names.rebase(graph, base_iri) for graph in SOURCE_GRAPHS):
        return True
    return iri.startswith(tuple(names.rebase(family, base_iri) for family in SOURCE_GRAPH_FAMILIES))
