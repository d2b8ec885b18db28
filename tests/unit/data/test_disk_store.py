"""The embedded engine's on-disk store: the same answers as in memory, built atomically, opened after the fork in
every query worker (a replacement too), never shared with the zygote, and never pruned while a process serves it."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from processes import gone

from service.config import load_settings
from service.data.oxstores import build_disk_store, disk_store
from service.data.snapshots import DISK_STORE, QUAD_COUNT, STORE_GRAPHS, Snapshot, hold, load_snapshot, prune_cache
from service.engines.base import QueryJob
from service.engines.embedded import EmbeddedEngine
from service.engines.factory import engine_for
from service.errors import ConfigError, NotReadyError, QueryResourceError, QueryTimeoutError
from service.library.vocabulary import load_vocabulary, vocabulary_of
from service.runtime.executor import QueryExecutor

EX = "http://example.org/"
INFERRED = f"{EX}graph/inferred"
# A blank node in two claim graphs, a triple asserted twice, and an inferred graph.
QUADS = f"""\
_:b <{EX}p> <{EX}o1> <{EX}graph/a> .
_:b <{EX}q> "x" <{EX}graph/b> .
<{EX}s> <{EX}p> <{EX}o1> <{EX}graph/a> .
<{EX}s> <{EX}p> <{EX}o1> <{EX}graph/b> .
<{EX}s> <{EX}r> "a <literal> with \\" and <{EX}g> ." <{EX}graph/b> .
<{EX}s> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{EX}Thing> <{INFERRED}> .
"""
GRAPHS = (f"{EX}graph/a", f"{EX}graph/b", INFERRED)
CROSS_4 = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f . ?g ?t ?h }"


def _snapshot(folder: Path, text: str = QUADS, on_disk: bool = True) -> Snapshot:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.nq").write_text(text, encoding="utf-8")
    snapshot = Snapshot(folder.name, folder / "dataset.nq", GRAPHS, INFERRED, EX)
    if not on_disk:
        return snapshot
    target = disk_store(snapshot.nquads, INFERRED, folder / DISK_STORE)
    return Snapshot(folder.name, snapshot.nquads, GRAPHS, INFERRED, EX, disk_store=target)


def _rows(outcome) -> Counter:
    """The answer of a SELECT or ASK as a multiset of rows (each a sorted tuple of variable, value)."""
    body = json.loads(outcome.body)
    if "boolean" in body:
        return Counter([body["boolean"]])
    return Counter(tuple(sorted((k, v["value"]) for k, v in row.items())) for row in body["results"]["bindings"])


def _values(outcome) -> list[str]:
    """Every value of every row, sorted (an ASK's answer as "true" or "false")."""
    body = json.loads(outcome.body)
    if "boolean" in body:
        return [str(body["boolean"]).lower()]
    return sorted(value for row in _rows(outcome).elements() for _, value in row)


def test_a_small_dataset_answers_alike_in_memory_and_on_disk(tmp_path: Path) -> None:
    memory = EmbeddedEngine(_snapshot(tmp_path / "v", on_disk=False))
    disk = EmbeddedEngine(_snapshot(tmp_path / "v"))
    assert memory.snapshot.disk_store is None and disk.snapshot.disk_store is not None
    expected = {
        "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }": ["5"],  # a set: the triple asserted in two graphs counts once
        "SELECT (COUNT(DISTINCT ?b) AS ?n) { ?b ?p ?o FILTER(isBlank(?b)) }": ["1"],  # one blank node in 2 graphs
        f"SELECT ?x {{ ?b <{EX}p> <{EX}o1> . GRAPH <{EX}graph/b> {{ ?b <{EX}q> ?x }} }}": ["x"],
        "SELECT ?g (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g": ["1", "2", "3", *GRAPHS],
        f"ASK {{ <{EX}s> a <{EX}Thing> }}": ["true"],
        f'SELECT ?o {{ ?s <{EX}r> ?o FILTER(CONTAINS(?o, "<{EX}g>")) }}': [f'a <literal> with " and <{EX}g> .'],
        "SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } FILTER(!BOUND(?g)) }": ["0"],  # no internal graphs
    }
    for query, values in expected.items():
        for engine in (memory, disk):
            assert _values(engine.execute(QueryJob(query, "json"))) == sorted(values), (engine, query)
    no_inferences = {
        "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }": ["4"],
        "SELECT DISTINCT ?g { GRAPH ?g { ?s ?p ?o } }": list(GRAPHS[:2]),
        f"ASK {{ <{EX}s> a <{EX}Thing> }}": ["false"],
    }
    for query, values in no_inferences.items():
        for engine in (memory, disk):
            outcome = engine.execute(QueryJob(query, "json", infer=False))
            assert _values(outcome) == sorted(values), (engine, query)
    named = QueryJob("SELECT (COUNT(*) AS ?n) { ?s ?p ?o }", "json", default_graph_uris=(f"{EX}graph/b",))
    assert _values(memory.execute(named)) == _values(disk.execute(named)) == ["3"]


def test_the_real_data_answers_alike_in_memory_on_disk_and_in_rdflib(cache_dir: Path) -> None:
    engines = []
    for overrides in ({"engine": "embedded"}, {"engine": "embedded", "memory_max_quads": "0"}, {"engine": "rdflib"}):
        settings = load_settings({"cache_dir": str(cache_dir), **overrides}, environ={})
        engines.append(engine_for(settings, load_snapshot(settings)))
    assert engines[1].snapshot.disk_store is not None and engines[0].snapshot.disk_store is None
    queries = [
        "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }",
        "SELECT (COUNT(DISTINCT ?s) AS ?n) { ?s a ?class }",
        "SELECT ?g (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
        "SELECT ?p (COUNT(*) AS ?n) { ?s ?p ?o FILTER(isIRI(?o)) } GROUP BY ?p",
    ]
    for query in queries:
        for infer in (True, False):
            job = QueryJob(query, "json", infer=infer)
            memory, disk, reference = (_rows(engine.execute(job)) for engine in engines)
            assert memory == disk == reference, (query, infer)


def test_a_torn_or_failed_build_is_never_opened(tmp_path: Path) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "dataset.nq").write_text(QUADS, encoding="utf-8")
    target = folder / DISK_STORE
    crashed = folder / f"{DISK_STORE}.tmp-99999"  # a build killed halfway
    crashed.mkdir()
    (crashed / "CURRENT").write_text("MANIFEST-000001\n")
    broken = tmp_path / "broken.nq"
    broken.write_text(f"<{EX}s> <{EX}p> <{EX}o> .\n", encoding="utf-8")  # a triple outside any named graph
    with pytest.raises(ConfigError, match="on-disk store"):
        disk_store(broken, INFERRED, target)
    assert not target.exists()
    assert not list(folder.glob(f"{DISK_STORE}.*.nq")) and not crashed.exists()
    assert disk_store(folder / "dataset.nq", INFERRED, target) == target
    assert sorted(p.name for p in folder.iterdir()) == ["dataset.nq", "oxigraph", "oxigraph.lock"]
    snapshot = Snapshot("v", folder / "dataset.nq", GRAPHS, INFERRED, EX, disk_store=target)
    assert len(list(EmbeddedEngine(snapshot).store)) == 10  # 6 quads + the 4 asserted triples, once each


def test_the_overlap_of_inferred_and_asserted_is_left_out_of_the_inferred_graph(tmp_path: Path) -> None:
    target = tmp_path / "db"
    repeated = QUADS + f"<{EX}s> <{EX}p> <{EX}o1> <{INFERRED}> .\n"
    (tmp_path / "dataset.nq").write_text(repeated, encoding="utf-8")
    build_disk_store(tmp_path / "dataset.nq", INFERRED, target)
    snapshot = Snapshot("v", tmp_path / "dataset.nq", GRAPHS, INFERRED, EX, disk_store=target)
    for engine in (EmbeddedEngine(snapshot), EmbeddedEngine(Snapshot("v", snapshot.nquads, GRAPHS, INFERRED, EX))):
        assert _rows(engine.execute(QueryJob("SELECT (COUNT(*) AS ?n) { ?s ?p ?o }", "json"))) == Counter(
            [(("n", "5"),)]
        )


def _fds_into(pid: int, folder: Path) -> int:
    """How many files under `folder` process `pid` has open (RocksDB keeps its table files open)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(folder))
        except OSError:
            continue
    return count


def test_every_query_worker_opens_the_store_itself_and_so_do_replacements(tmp_path: Path) -> None:
    # 300 triples: a 4-way cross product of them runs until it is killed
    lines = [f"<{EX}s{i}> <{EX}next> <{EX}s{(i + 1) % 300}> <{EX}graph/{'ab'[i % 2]}> ." for i in range(300)]
    snapshot = _snapshot(tmp_path / "v", "\n".join(lines) + "\n")
    settings = load_settings({"query_workers": "2"}, environ={})
    count = QueryJob("SELECT (COUNT(*) AS ?n) { ?s ?p ?o }", "json")
    with QueryExecutor(settings, engine_for, snapshot) as pool:
        assert _fds_into(pool.zygote_pid, snapshot.disk_store) == 0  # the zygote never opens it
        assert all(_fds_into(pid, snapshot.disk_store) for pid in pool.worker_pids)
        first = set(pool.worker_pids)
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        failures = 0
        for _ in range(6):
            try:
                assert _values(pool.run(count, 5)) == ["300"]
            except QueryResourceError:
                failures += 1  # a killed worker's query: it is replaced
        assert failures <= 2
        with pytest.raises(QueryTimeoutError):
            pool.run(QueryJob(CROSS_4, "json"), 0.5)  # killed at its deadline, and replaced
        replacements = set(pool.worker_pids) - first
        assert replacements and all(_fds_into(pid, snapshot.disk_store) for pid in replacements)
        for _ in range(4):
            assert _values(pool.run(count, 5)) == ["300"]


def test_a_store_that_cannot_be_opened_stops_the_executor_at_start(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path / "v", on_disk=False)
    empty = tmp_path / "not-a-store"
    empty.mkdir()
    broken = Snapshot("v", snapshot.nquads, GRAPHS, INFERRED, EX, disk_store=empty)
    with pytest.raises(ConfigError, match="cannot be opened"):
        QueryExecutor(load_settings({"query_workers": "1"}, environ={}), engine_for, broken)


def test_pruning_never_removes_a_version_in_use(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    served, idle, newest = (_snapshot(cache / name) for name in ("aaaaaaaaaaaa-1", "bbbbbbbbbbbb-2", "cccccccccccc-3"))
    for snapshot in (served, idle, newest):
        (snapshot.nquads.parent / STORE_GRAPHS).write_text("\n".join(GRAPHS) + "\n")
        os.utime(snapshot.nquads, (1, 1))  # older than PRUNE_SECONDS
    settings = load_settings({"query_workers": "1"}, environ={})
    with QueryExecutor(settings, engine_for, served) as pool:
        prune_cache(cache, keep=newest.nquads.parent)
        assert sorted(p.name for p in cache.iterdir()) == ["aaaaaaaaaaaa-1", "cccccccccccc-3"]
        assert pool.run(QueryJob("ASK { ?s ?p ?o }", "json"), 5).rows == 1
        with pytest.raises(NotReadyError):
            hold(idle)  # a pruned version cannot be served again
        processes = [pool.zygote_pid, *pool.worker_pids]
    assert all(gone(pid) for pid in processes)  # (killed processes let go of their files as they exit)
    prune_cache(cache, keep=newest.nquads.parent)  # nobody serves it any more
    assert sorted(p.name for p in cache.iterdir()) == ["cccccccccccc-3"]


def test_the_vocabulary_is_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = load_vocabulary(tmp_path)
    assert [p.name.startswith("vocabulary-") for p in tmp_path.iterdir()] == [True]
    vocabulary_of.cache_clear()

    def must_not_build(*_):
        raise AssertionError("built again although it is cached")

    monkeypatch.setattr("service.library.vocabulary.build_vocabulary", must_not_build)
    try:
        assert load_vocabulary(tmp_path) == built
    finally:
        vocabulary_of.cache_clear()


def test_a_snapshot_over_the_limit_is_served_from_disk(cache_dir: Path) -> None:
    def snapshot(**overrides: str) -> Snapshot:
        return load_snapshot(load_settings({"cache_dir": str(cache_dir), **overrides}, environ={}))

    assert snapshot().disk_store is None  # the real data is small
    large = snapshot(memory_max_quads="100")
    assert large.disk_store == large.nquads.parent / DISK_STORE
    quads = int((large.nquads.parent / QUAD_COUNT).read_text())
    with large.nquads.open(encoding="utf-8") as lines:
        assert quads == sum(1 for line in lines if line.strip())
    assert snapshot(memory_max_quads=str(quads)).disk_store is None
    assert snapshot(memory_max_quads="100", engine="rdflib").disk_store is None
