"""Building data versions incrementally: each web process keeps the closure of the version it built last.

`snapshots.build_newest` makes a version's N-Quads file under the store's build lock. Given an `IncrementalBuilder`,
it asks the builder for the file's text instead of running the whole closure: the builder reads the journal's
records after the position it is at, applies their deltas to its `rules.Incremental` (semi-naive inserts, DRed
deletes) and writes the asserted lines and the kept inferences. The first build of a process, a checkpoint or
restore that replaced the files, and a position behind the builder's run the closure over the whole data (once).
Where the rule engine says `Unsupported`, the caller builds the version the old way (a child, owlrl).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import pyoxigraph as ox
from rdflib import BNode, Literal, URIRef

from service.data import rules
from service.data.reasoning import worth_keeping
from service.journal.log import Journal
from service.journal.records import Head
from service.sparql.terms import to_rdflib

log = logging.getLogger("guian_kg.reasoning")


def _oxigraph(term: URIRef | BNode | Literal) -> ox.NamedNode | ox.BlankNode | ox.Literal:
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if term.language:
        return ox.Literal(str(term), language=term.language)
    if term.datatype is not None:
        return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
    return ox.Literal(str(term))


@dataclass(frozen=True)
class Delta:
    """What a build changed in a snapshot's store, as N-Quads lines (a line without a graph: the store's default
    graph, the union of the asserted graphs): from the build at position `since` (its chain digest `chain`)."""

    since: int
    chain: str
    remove: tuple[str, ...]
    add: tuple[str, ...]

    @property
    def has_blank_nodes(self) -> bool:
        """Whether a line names a blank node (another build of the same version may label it otherwise)."""
        return any("_:" in line for line in (*self.remove, *self.add))


class IncrementalBuilder:
    """The asserted lines and the closure at one journal position, moved forward by each build."""

    def __init__(self, inferred_graph: str) -> None:
        self.inferred_graph = ox.NamedNode(inferred_graph)
        self._head: Head | None = None
        self._lines: set[str] = set()
        self._holders: dict[tuple, int] = defaultdict(int)  # triple → asserted lines holding it (one per graph)
        self._closure: rules.Incremental | None = None
        self._rendered: dict[tuple, str] = {}  # kept inference (interned) → its N-Quads line
        self._previous: set[tuple[int, int, int]] = set()  # what the closure added at the last build
        self._term: object = None  # the closure's id → term map the above are in
        self._graphs: dict[str, int] = defaultdict(int)  # asserted graph → its lines
        self._changes: dict[str, int] | None = None  # line → +1 added / -1 removed, in an incremental build
        self.delta: Delta | None = None  # the last build's changes (None: it ran over the whole data)
        self._lock = threading.Lock()

    def materialise(self, store: Journal, head: Head) -> list[str]:
        """Build position `head` (its text: `text()`; its changes: `delta`); its asserted graphs.

        Raises:
            rules.Unsupported: when the closure needs owlrl (the builder then starts over next time).
        """
        with self._lock:
            at = self._head
            if self._closure is not None and at is not None and (at.seq, at.chain) == (head.seq, head.chain):
                return sorted(self._graphs)  # built already (by another thread): the same text and delta
            started = time.perf_counter()
            since = self._head
            self._changes = defaultdict(int)
            try:
                incremental = self._advance(store, head)
                how = "incremental" if incremental else "full"
                if not incremental:
                    self._changes = None
                self._follow_closure()
            except rules.Unsupported:
                self._closure, self._head, self._changes = None, None, None
                raise
            changes, self._changes = self._changes, None
            self.delta = None
            if changes is not None and since is not None:
                self.delta = Delta(
                    since.seq,
                    since.chain,
                    tuple(line for line, n in changes.items() if n < 0),
                    tuple(line for line, n in changes.items() if n > 0),
                )
            log.info("version at position %d built (%s) in %.3f s", head.seq, how, time.perf_counter() - started)
            return sorted(self._graphs)

    def _advance(self, store: Journal, head: Head) -> bool:
        """Bring the closure to `head`: True when by the records' deltas, False when over the whole data."""
        if self._closure is not None and self._head is not None and self._head.seq <= head.seq:
            _, records, restarted = store.walk(self._head)
            records = [r for r in records if r.seq <= head.seq]
            if not restarted and (records[-1].seq if records else self._head.seq) == head.seq:
                for record in records:
                    self._apply(record.delete, -1)
                    self._apply(record.insert, 1)
                self._head = head
                return True
        self._changes = None  # over the whole data: no delta
        lines, at = store.lines_at(head.seq)
        self._lines, self._holders, self._closure = set(), defaultdict(int), None
        self._graphs, self._term = defaultdict(int), None
        triples = self._account(lines, 1)
        self._closure = rules.Incremental(triples)
        self._head = at
        return False

    def _account(self, lines, sign: int) -> list[tuple]:
        """Add (1) or remove (-1) asserted lines; the triples that enter (leave) the union of the graphs."""
        lines = [line for line in lines if (line in self._lines) != (sign > 0)]
        if sign > 0:
            self._lines.update(lines)
        else:
            self._lines.difference_update(lines)
        changes = self._changes
        if changes is not None:
            for line in lines:
                changes[line] += sign
        changed, holders = [], self._holders
        if not lines:
            return changed
        graphs = self._graphs
        for quad in ox.parse("\n".join(lines) + "\n", format=ox.RdfFormat.N_QUADS):
            name = quad.graph_name.value
            graphs[name] += sign
            if graphs[name] <= 0:
                del graphs[name]
            triple = (to_rdflib(quad.subject), to_rdflib(quad.predicate), to_rdflib(quad.object))
            holders[triple] += sign
            if holders[triple] == (1 if sign > 0 else 0):
                changed.append(triple)
                if changes is not None:  # the triple enters (leaves) the union: the store's default graph
                    changes[f"{ox.Triple(quad.subject, quad.predicate, quad.object)} ."] += sign
            if holders[triple] <= 0:
                del holders[triple]
        return changed

    def _apply(self, lines: tuple[str, ...], sign: int) -> None:
        triples = self._account(lines, sign)
        if not triples:
            return
        assert self._closure is not None
        if sign > 0:
            self._closure.insert(triples)
        else:
            self._closure.delete(triples)

    def _follow_closure(self) -> None:
        """Bring the rendered inferences up to the closure: only the facts the closure touched since the last build
        are looked at (all of them after a full run)."""
        closure = self._closure
        assert closure is not None
        touched = closure.take_touched()
        if touched is None:
            added, term = closure.added_ids()
            if term != self._term:  # a full run: other ids (also inside the closure's own fallback): no delta
                self._term, self._previous, self._rendered, self._changes = term, set(), {}, None
            gone, new = self._previous - added, added - self._previous
            self._previous = added
        else:  # no full run since the last build: the same ids
            previous, adds = self._previous, closure.adds
            gone = {fact for fact in touched if fact in previous and not adds(fact)}
            new = {fact for fact in touched if fact not in previous and adds(fact)}
            previous -= gone
            previous |= new
        term, rendered, graph, changes = self._term, self._rendered, self.inferred_graph, self._changes
        assert callable(term)
        for fact in gone:
            line = rendered.pop(fact, None)
            if line is not None and changes is not None:
                changes[line[:-1]] -= 1
        for fact in new:
            s, p, o = (term(i) for i in fact)
            if not isinstance(p, BNode) and worth_keeping(s, p, o):  # owlrl drops blank-node predicates
                rendered[fact] = line = f"{ox.Quad(_oxigraph(s), _oxigraph(p), _oxigraph(o), graph)} .\n"
                if changes is not None:
                    changes[line[:-1]] += 1

    def chunks(self) -> tuple[int, Iterator[bytes]]:
        """The N-Quads of the last build (asserted lines, then the kept inferences): how many lines, and the text in
        pieces, made when read (from the lines as they are now: later builds do not change them)."""
        with self._lock:
            lines, inferred = list(self._lines), list(self._rendered.values())

        def pieces() -> Iterator[bytes]:
            for start in range(0, len(lines), 4096):
                yield ("\n".join(lines[start : start + 4096]) + "\n").encode()
            yield "".join(inferred).encode()

        return len(lines) + len(inferred), pieces()
