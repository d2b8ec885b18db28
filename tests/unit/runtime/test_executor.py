"""The worker pool: time limits that hold, runaway and crashed workers replaced, others kept answering."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import gone

from service.config import Settings, load_settings
from service.data.snapshots import Snapshot
from service.engines.base import QueryJob
from service.engines.embedded import EmbeddedEngine
from service.engines.factory import engine_for
from service.errors import (
    GuianError,
    NotReadyError,
    QueryResourceError,
    QuerySyntaxError,
    QueryTimeoutError,
    ResultTooLargeError,
    ServiceForbiddenError,
)
from service.runtime.executor import QueryExecutor

EX = "http://example.org/"
REPO = Path(__file__).resolve().parents[3]
SIMPLE = f"SELECT ?o WHERE {{ <{EX}s1> <{EX}next> ?o }}"
# 300 triples make a 4-way cross product of 8.1e9 rows: no engine finishes it in a test's lifetime.
CROSS_4 = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f . ?g ?t ?h }"
CROSS_3 = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f }"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    path = tmp_path_factory.mktemp("executor") / "dataset.nq"
    lines = [f"<{EX}s{i}> <{EX}next> <{EX}s{(i + 1) % 300}> <{EX}graph/{i % 3}> ." for i in range(300)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    graphs = tuple(f"{EX}graph/{i}" for i in range(3))
    return Snapshot("test", path, graphs, graphs[-1], EX)


def settings(**overrides: str) -> Settings:
    return load_settings({"query_workers": "2", **overrides}, environ={})


@pytest.fixture
def executor(snapshot: Snapshot) -> Iterator[QueryExecutor]:
    with QueryExecutor(settings(), engine_for, snapshot) as pool:
        yield pool


def test_answers_like_the_engine(executor: QueryExecutor, snapshot: Snapshot) -> None:
    outcome = executor.run(QueryJob(SIMPLE, "json"), 5)
    assert outcome == EmbeddedEngine(snapshot).execute(QueryJob(SIMPLE, "json"))
    assert json.loads(outcome.body)["results"]["bindings"][0]["o"]["value"] == f"{EX}s2"
    assert executor.engine_name == "embedded"
    assert executor.snapshot == snapshot
    assert len(executor.worker_pids) == 2


def test_errors_keep_their_code_and_extras(executor: QueryExecutor) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        executor.run(QueryJob("SELECT * WHERE {\n ?s ?p ", "json"), 5)
    assert caught.value.extra["line"] == 2
    with pytest.raises(ResultTooLargeError) as too_large:
        executor.run(QueryJob("SELECT * { ?s ?p ?o }", "json", max_rows=10), 5)
    assert too_large.value.extra["max_rows"] == 10
    assert executor.run(QueryJob(SIMPLE, "csv"), 5).rows == 1  # the worker is still fine


def test_runaway_query_is_killed_at_its_deadline_while_others_are_answered(executor: QueryExecutor) -> None:
    before = set(executor.worker_pids)
    outcome: dict[str, object] = {}

    def runaway() -> None:
        started = time.monotonic()
        try:
            executor.run(QueryJob(CROSS_4, "json"), 1.5)
        except GuianError as exc:
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=runaway)
    thread.start()
    answered = 0
    while thread.is_alive():
        executor.run(QueryJob(SIMPLE, "json"), 5)
        answered += 1
    thread.join()
    assert isinstance(outcome["error"], QueryTimeoutError)
    assert outcome["error"].status == 503 and outcome["error"].code == "query-timeout"
    assert outcome["error"].extra["timeout"] == 1.5
    assert outcome["elapsed"] >= 1.5  # type: ignore[operator]  (never stopped before its deadline)
    assert answered >= 3  # other queries were answered while it ran
    after = set(executor.worker_pids)
    killed, added = before - after, after - before
    assert len(killed) == 1 and len(added) == 1 and len(after) == 2
    assert gone(killed.pop())
    assert executor.run(QueryJob(SIMPLE, "json"), 5).rows == 1


def test_rdflib_runaway_stops_at_the_server_limit(snapshot: Snapshot) -> None:
    with QueryExecutor(settings(engine="rdflib", query_timeout="1"), engine_for, snapshot) as pool:
        assert pool.engine_name == "rdflib"
        with pytest.raises(QueryTimeoutError) as excinfo:
            pool.run(QueryJob(CROSS_3, "json"), 30)  # a client's timeout never raises the server's
        assert excinfo.value.extra["timeout"] == 1.0
        assert pool.run(QueryJob(SIMPLE, "json"), 5).rows == 1


def test_waiting_for_a_free_worker_counts_against_the_deadline(snapshot: Snapshot) -> None:
    with QueryExecutor(settings(query_workers="1"), engine_for, snapshot) as pool:
        errors: list[Exception] = []

        def runaway() -> None:
            try:
                pool.run(QueryJob(CROSS_4, "json"), 1.2)
            except GuianError as exc:
                errors.append(exc)

        thread = threading.Thread(target=runaway)
        thread.start()
        time.sleep(0.2)
        with pytest.raises(QueryTimeoutError, match="no query worker became free"):
            pool.run(QueryJob(SIMPLE, "json"), 0.3)
        thread.join()
        assert [type(e) for e in errors] == [QueryTimeoutError]
        assert pool.run(QueryJob(SIMPLE, "json"), 5).rows == 1


def test_service_is_refused_before_any_worker(snapshot: Snapshot, listener: tuple[str, list[bytes]]) -> None:
    url, seen = listener
    with QueryExecutor(settings(service_allow=f"{EX}sparql"), engine_for, snapshot) as pool:
        for query in (
            f"SELECT * {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
            f"select * {{ service silent <{url}> {{ ?s ?p ?o }} }}",
            f"SELECT * {{ BIND(<{url}> AS ?e) SERVICE ?e {{ ?s ?p ?o }} }}",
        ):
            with pytest.raises(ServiceForbiddenError):
                pool.run(QueryJob(query, "json"), 5)
    assert seen == []


def test_pool_survives_workers_that_die(executor: QueryExecutor) -> None:
    for pid in executor.worker_pids:
        os.kill(pid, signal.SIGKILL)
    failures = 0
    for _ in range(5):
        try:
            assert executor.run(QueryJob(SIMPLE, "json"), 5).rows == 1
        except QueryResourceError:
            failures += 1
    assert failures <= 2
    assert len(executor.worker_pids) == 2


def test_out_of_memory_is_a_resource_error(snapshot: Snapshot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUST_BACKTRACE", "0")  # symbolising the abort's backtrace takes seconds
    # pyoxigraph aborts the process when an allocation fails under RLIMIT_AS (no MemoryError). The cap sits a
    # little above what the worker inherits from this (pytest) process, so the sort hits it within a second.
    with open("/proc/self/statm") as statm:
        mapped_mb = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE") // 2**20
    with QueryExecutor(settings(query_memory_mb=str(mapped_mb + 160)), engine_for, snapshot) as pool:
        ordered = "SELECT * WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f } ORDER BY ?a ?c ?e"
        with pytest.raises(QueryResourceError):
            pool.run(QueryJob(ordered, "json"), 20)
        assert pool.run(QueryJob(SIMPLE, "json"), 5).rows == 1
        assert len(pool.worker_pids) == 2


def test_close_kills_everything(snapshot: Snapshot) -> None:
    pool = QueryExecutor(settings(), engine_for, snapshot)
    processes = [pool.zygote_pid, *pool.worker_pids]
    pool.close()
    assert all(gone(pid) for pid in processes)
    with pytest.raises(NotReadyError):
        pool.run(QueryJob(SIMPLE, "json"), 5)
    pool.close()  # twice is fine


def test_workers_exit_when_the_web_process_dies(snapshot: Snapshot) -> None:
    script = (
        "import os, signal\n"
        "from pathlib import Path\n"
        "from service.config import load_settings\n"
        "from service.engines.factory import engine_for\n"
        "from service.runtime.executor import QueryExecutor\n"
        "from service.data.snapshots import Snapshot\n"
        f"graphs = {snapshot.graphs!r}\n"
        f"snapshot = Snapshot('t', Path({str(snapshot.nquads)!r}), graphs, {snapshot.inferred_graph!r}, '')\n"
        "pool = QueryExecutor(load_settings({'query_workers': '2'}, environ={}), engine_for, snapshot)\n"
        "print(pool.zygote_pid, *pool.worker_pids, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == -signal.SIGKILL, done.stderr
    processes = [int(pid) for pid in done.stdout.split()]
    assert len(processes) == 3
    assert all(gone(pid) for pid in processes)
