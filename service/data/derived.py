"""The service's own SELECTs answered from a data version's own quads, whatever engine serves the queries.

What the service derives from the data (the question answering's lexicon) must not depend on the dialect of the
store that answers analysts' queries: on the remote engine these queries run here, on the version's N-Quads file
(the mirror's copy of the store), not on the store. Each answer is kept as SPARQL JSON beside the file, so that
every process of the service reads it once per version and the first one computes it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from service.files import write_atomically


def version_store(nquads: Path, leave_out: str | None) -> ox.Store:
    """A version's quads in memory, less the graph `leave_out` (e.g. the inferred graph)."""
    store = ox.Store()
    left = ox.NamedNode(leave_out) if leave_out else None
    store.extend(q for q in ox.parse(path=nquads, format=ox.RdfFormat.N_QUADS) if q.graph_name != left)
    return store


_store = functools.lru_cache(maxsize=1)(version_store)  # the newest version only: a copy of the data in memory


def select_on_version(nquads: Path, leave_out: str | None, query: str) -> dict[str, Any]:
    """The SPARQL JSON results of a SELECT over a version's quads, its default graph the union of its graphs.

    Kept as `derived-<digest>.json` beside the N-Quads file (a version never changes).
    """
    digest = hashlib.sha256(f"{leave_out}\x1f{query}".encode()).hexdigest()[:16]
    kept = nquads.parent / f"derived-{digest}.json"
    with contextlib.suppress(OSError, ValueError):
        return json.loads(kept.read_bytes())
    solutions = _store(nquads, leave_out).query(query, use_default_graph_as_union=True)
    if not isinstance(solutions, ox.QuerySolutions):
        raise ValueError("select_on_version runs SELECT queries only")
    answer = json.loads(solutions.serialize(format=ox.QueryResultsFormat.JSON))
    with contextlib.suppress(OSError):  # a read-only cache: computed again next time
        write_atomically(kept, json.dumps(answer, ensure_ascii=False).encode())
    return answer
