"""A new data version served by its delta: the builder's delta moves the previous version's store to exactly the
new version's store, and an executor moved forward by it answers the new version while the old executor keeps
answering the old one (issue 14)."""

from __future__ import annotations

import json

import pyoxigraph as ox
import pytest

from service import names
from service.config import load_settings
from service.data.builder import IncrementalBuilder
from service.data.oxstores import memory_store
from service.data.snapshots import build_newest, open_journal, snapshot_of
from service.engines.base import QueryJob
from service.engines.embedded import EmbeddedEngine
from service.engines.factory import engine_for
from service.journal.records import Record, chain_digest
from service.runtime.executor import QueryExecutor

GK, ID, GRAPH = names.GK, names.ID, names.GRAPH
PROJECT = f"<{ID}project/moved-by-delta>"
TOUCHES = f"{PROJECT} <{GK}touchesDomain> <{ID}domain/land-management>"
ASK = f"ASK {{ {PROJECT} <{GK}coHandledBy> <{ID}section/6> }}"


def _append(store, delete: tuple[str, ...], insert: tuple[str, ...]) -> None:
    with store.locked(None):
        head = store.head()
        store.append(head, Record(head.seq + 1, chain_digest(head.chain, delete, insert), "t", {}, {}, delete, insert))


def _without_blank_nodes(store: ox.Store) -> set[ox.Quad]:
    return {q for q in store if not any(isinstance(t, ox.BlankNode) for t in (q.subject, q.object))}


@pytest.fixture
def journal(tmp_path):
    settings = load_settings({"store_dir": tmp_path / "store", "cache_dir": tmp_path / "cache", "query_workers": 1})
    store = open_journal(settings)
    builder = IncrementalBuilder(names.rebase(names.INFERRED_GRAPH, settings.base_iri))
    return settings, store, builder


def _version(settings, builder) -> tuple:
    summary = build_newest(settings, builder)
    return snapshot_of(settings, summary["version"]), summary.get("delta")


def test_each_delta_moves_the_store_to_the_next_version(journal):
    settings, store, builder = journal
    shipped, _ = store.lines_at()
    broader = sorted(line for line in shipped if "skos/core#broader>" in line)[0]
    claim, other = f"<{GRAPH}claim/delta-1>", f"<{GRAPH}claim/delta-2>"
    steps = [
        (
            (),
            (
                f"{TOUCHES} {claim} .",
                f"{PROJECT} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{GK}Project> {claim} .",
            ),
        ),  # inferences appear
        ((), (f"{TOUCHES} {other} .",)),  # the same triple in a second graph: the union does not change
        ((f"{TOUCHES} {claim} .",), ()),  # out of one graph: still asserted
        ((f"{TOUCHES} {other} .",), ()),  # out of both: the union and the inferences lose it; graph `other` empties
        ((broader,), ()),  # a shipped skos:broader: inferences through it go
        ((), (broader,)),
    ]
    previous, _ = _version(settings, builder)
    moved = 0
    for delete, insert in steps:
        _append(store, delete, insert)
        rebuilds = builder._closure.rebuilds
        snapshot, delta = _version(settings, builder)
        if delta is None:  # the closure ran over the whole data (a schema triple went): the version is loaded
            assert builder._closure.rebuilds > rebuilds
            previous = snapshot
            continue
        moved += 1
        assert delta[0] == previous.version
        assert delta[1].remove or delta[1].add
        engine = EmbeddedEngine(previous)
        assert engine.apply(snapshot, delta[1].remove, delta[1].add)
        expected = memory_store(snapshot.nquads, snapshot.inferred_graph)
        assert _without_blank_nodes(engine.store) == _without_blank_nodes(expected)
        assert set(engine.store.named_graphs()) == set(expected.named_graphs())
        previous = snapshot
    assert moved >= 4


def _ask(executor: QueryExecutor) -> bool:
    outcome = executor.run(QueryJob(ASK, result_format="json"), 30)
    return json.loads(outcome.body)["boolean"]


def test_an_executor_moved_forward_answers_the_new_version_and_the_old_one_the_old(journal):
    settings, store, builder = journal
    old, _ = _version(settings, builder)
    _append(store, (), (f"{TOUCHES} <{GRAPH}claim/delta-1> .",))
    new, delta = _version(settings, builder)
    with QueryExecutor(settings, engine_for, old) as before:
        assert _ask(before) is False
        after = QueryExecutor.moved_from(before, new, *delta)
        assert after is not None
        with after:
            assert after.zygote_pid == before.zygote_pid  # moved, not loaded again
            assert _ask(after) is True
            assert _ask(before) is False  # its workers were forked before the move
            for pid in before.worker_pids:  # a worker of the old version dies: its replacement is of the old version
                before._replace(next(w for w in before._workers.values() if w.pid == pid))
            assert _ask(before) is False
            assert before.zygote_pid != after.zygote_pid
            assert _ask(after) is True
    # the delta of a version that is not the zygote's is refused
    with QueryExecutor(settings, engine_for, new) as current:
        assert QueryExecutor.moved_from(current, new, *delta) is None
