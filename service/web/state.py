"""What a web process holds: the served snapshot and executor, the result cache, metrics, the query log."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from flask import current_app, g, has_request_context
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.config import Settings
from service.data.snapshots import Snapshot
from service.describe import DatasetStats, compute_stats
from service.engines.base import QueryJob, QueryOutcome
from service.errors import (
    GuianError,
    NotReadyError,
    QueryTimeoutError,
)
from service.journal.follower import Follower
from service.journal.writer import Writer
from service.runtime.executor import QueryExecutor
from service.runtime.mirror import RemoteMirror
from service.runtime.result_cache import Answer, ResultCache, etag_of, job_identity
from service.sparql.formats import BY_KEY
from service.web.bodies import BodyReader

EXTENSION = "guian_kg"
query_log = logging.getLogger("guian_kg.query")
audit_log = logging.getLogger("guian_kg.audit")


class Metrics:
    """Prometheus metrics of one app, in its own registry so that many apps (tests) never clash."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "guian_kg_http_requests",
            "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.query_seconds = Histogram(
            "guian_kg_query_duration_seconds",
            "Time to answer a SPARQL query, by engine and query form.",
            ["engine", "form"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.query_timeouts = Counter(
            "guian_kg_query_timeouts", "Queries stopped at their time limit.", ["engine"], registry=self.registry
        )
        self.in_flight = Gauge("guian_kg_queries_in_flight", "Queries running now.", registry=self.registry)
        self.cache_lookups = Counter(
            "guian_kg_result_cache_lookups",
            "Look-ups of repeated queries' answers, by result (hit, miss).",
            ["result"],
            registry=self.registry,
        )


def query_digest(text: str) -> str:
    """The short sha256 of a query's text that the query log and kept answers carry."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:12]


@dataclass
class QueryRecord:
    """What one query did, filled in while it runs and logged as one JSON line when it ends."""

    form: str | None = None
    rows: int = 0
    status: int = 200
    cache: str | None = None  # hit | miss | None (not cacheable, or the cache is off)
    query_sha256: str = ""  # of the query text (12 hex), for the log line and a kept answer


# How long a request waits for this process to serve the newest acknowledged write before answering 503.
CATCH_UP_SECONDS = 30.0


class ServiceState:
    """Everything a request needs: settings, the data snapshot, the query executor, metrics, the writer.

    The snapshot and the executor are replaced together (`swap`) when a new data version is built; a request
    keeps the pair it first looked at, so one response never mixes two versions.
    """

    def __init__(
        self,
        settings: Settings,
        snapshot: Snapshot | None = None,
        executor: QueryExecutor | None = None,
        writer: Writer | None = None,
        follower: Follower | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.follower = follower
        self.mirror: RemoteMirror | None = None  # engine=remote: the store's mirror (service.runtime.mirror)
        self.metrics = Metrics()
        self.bodies = BodyReader(settings.body_seconds, settings.max_request_bytes)  # POST bodies, with a deadline
        self._data: tuple[Snapshot | None, QueryExecutor | None] = (snapshot, executor)
        # The remote store can change without us: its answers are never kept.
        cache_bytes = 0 if settings.engine == "remote" else settings.result_cache_mb * 2**20
        self.cache = ResultCache(cache_bytes, snapshot.version if snapshot is not None else None)
        self._stats: dict[str, DatasetStats] = {}
        self._stats_lock = threading.Lock()
        self._users: dict[QueryExecutor, int] = {}  # requests pinned to each executor
        self._retired: list[QueryExecutor] = []  # swapped out, closed when their last request ends
        self._pin_lock = threading.Lock()  # held for a few instructions, never across a query

    def _pinned(self) -> tuple[Snapshot | None, QueryExecutor | None]:
        if not has_request_context():
            return self._data
        if "guian_kg_data" not in g:
            with self._pin_lock:
                data = self._data
                if data[1] is not None:
                    self._users[data[1]] = self._users.get(data[1], 0) + 1
            g.guian_kg_data = data
        return g.guian_kg_data

    def release(self) -> None:
        """End the current request's use of its executor; close it if it was swapped out and this was the last."""
        data = g.pop("guian_kg_data", None)
        executor = data[1] if data is not None else None
        if executor is None:
            return
        with self._pin_lock:
            left = self._users.get(executor, 1) - 1
            if left:
                self._users[executor] = left
                return
            self._users.pop(executor, None)
            if executor not in self._retired:
                return
            self._retired.remove(executor)
        executor.close()

    @property
    def snapshot(self) -> Snapshot | None:
        return self._pinned()[0]

    @snapshot.setter
    def snapshot(self, value: Snapshot | None) -> None:
        self._data = (value, self._data[1])
        self.cache.clear(value.version if value is not None else None)

    @property
    def served_version(self) -> str | None:
        """The data version new requests get (whatever the current request is pinned to)."""
        snapshot = self._data[0]
        return snapshot.version if snapshot is not None else None

    @property
    def executor(self) -> QueryExecutor | None:
        return self._pinned()[1]

    @executor.setter
    def executor(self, value: QueryExecutor | None) -> None:
        self._data = (self._data[0], value)

    def swap(self, snapshot: Snapshot, executor: QueryExecutor) -> None:
        """Serve a new data version from the next request on; the old executor closes once its requests end."""
        with self._pin_lock:
            old = self._data[1]
            self._data = (snapshot, executor)  # one assignment: no request can see half of it
            self.cache.clear(snapshot.version)  # answers of the old version are never served again
            if old is not None and self._users.get(old):
                self._retired.append(old)
                old = None
        with self._stats_lock:
            self._stats = {k: v for k, v in self._stats.items() if k == snapshot.version}
        if old is not None:
            old.close()

    def follow(self) -> None:
        """Serve every write acknowledged before this request (read-your-writes, monotonic reads).

        Two stats when nothing moved; else wait until this process serves a version holding the journal's newest
        position (built and installed by the follower).

        Raises:
            NotReadyError: (503, Retry-After) when that version is not served within CATCH_UP_SECONDS.
        """
        if self.follower is not None and not self.follower.wait_current(CATCH_UP_SECONDS):
            raise NotReadyError(
                f"the newest acknowledged data version is not served yet (serving {self.follower.served})"
            )

    def current(self, wait: float = 0.0) -> bool:
        """Whether this process serves every acknowledged write, waiting at most `wait` seconds for it (a build
        starts when it does not)."""
        if self.follower is None or self.follower.current():
            return True
        if wait > 0:
            return self.follower.wait_current(wait)
        self.follower.poll()
        return False

    @property
    def ready(self) -> bool:
        """Whether the snapshot and the executor are loaded."""
        snapshot, executor = self._pinned()
        return snapshot is not None and executor is not None

    @property
    def engine_name(self) -> str:
        return getattr(self.executor, "engine_name", self.settings.engine)

    @contextmanager
    def observe_query(self, text: str) -> Iterator[QueryRecord]:
        """Time a client's query, count it in the metrics and log one JSON line about it, however it ends."""
        record = QueryRecord(query_sha256=query_digest(text))
        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            yield record
        except GuianError as exc:
            record.status = exc.status
            if isinstance(exc, QueryTimeoutError):
                self.metrics.query_timeouts.labels(self.engine_name).inc()
            raise
        except BaseException:
            record.status = 500
            raise
        finally:
            self.metrics.in_flight.dec()
            self.log_query(record.query_sha256, record, time.perf_counter() - started, g.get("request_id"))

    def log_query(self, query_sha256: str, record: QueryRecord, elapsed: float, request_id: str | None) -> None:
        """Time a finished query in the metrics and write its one JSON line to the query log."""
        if record.form is not None:
            self.metrics.query_seconds.labels(self.engine_name, record.form).observe(elapsed)
        if not query_log.isEnabledFor(logging.INFO):
            return
        line = {
            "event": "query",
            "query_sha256": query_sha256,
            "form": record.form,
            "duration_ms": round(elapsed * 1000, 2),
            "rows": record.rows,
            "status": record.status,
            "engine": self.engine_name,
            "cache": record.cache,
            "request_id": request_id,
        }
        query_log.info(json.dumps(line))

    def run(self, job: QueryJob, timeout: float) -> QueryOutcome:
        """Run a job on the executor (raises GuianError subclasses: syntax, timeout, limits, SERVICE)."""
        if self.executor is None:
            raise NotReadyError("the query executor is not loaded")
        return self.executor.run(job, timeout)

    def cache_identity(self, job: QueryJob) -> tuple[bytes, str] | None:
        """The cache key and ETag of a job's answer on the pinned data version, or None when it is not kept."""
        snapshot = self.snapshot
        if not self.cache.enabled or snapshot is None:
            return None
        identity = job_identity(job)
        if identity is None:
            return None
        return identity, etag_of(snapshot.version, identity)

    def run_cached(
        self, job: QueryJob, timeout: float, key: tuple[bytes, str], record: QueryRecord | None = None
    ) -> Answer:
        """The answer of a cacheable job: the kept one of this data version, or a new one (then kept)."""
        identity, etag = key
        version = self.snapshot.version  # type: ignore[union-attr]  # cache_identity checked it
        answer = self.cache.get(identity, version)
        result = "miss" if answer is None else "hit"
        self.metrics.cache_lookups.labels(result).inc()
        if record is not None:
            record.cache = result
        if answer is None:
            outcome = self.run(job, timeout)
            digest = record.query_sha256 if record is not None else query_digest(job.query)
            content_type = BY_KEY[job.result_format].content_type
            answer = Answer(version, etag, content_type, outcome.body, outcome.form, outcome.rows, digest)
            self.cache.put(identity, answer)
        return answer

    def query(self, job: QueryJob, timeout: float) -> QueryOutcome:
        """Run the service's own query (pages, statistics) through the result cache when it can be kept."""
        key = self.cache_identity(job)
        if key is None:
            return self.run(job, timeout)
        answer = self.run_cached(job, timeout, key)
        return QueryOutcome(answer.form, BY_KEY[job.result_format].media_type, answer.body, answer.rows)

    def select_rows(self, query: str) -> list[dict[str, str]]:
        """The rows of an internal SELECT as variable -> lexical value (used for statistics)."""
        job = QueryJob(query, "json", infer=True, max_rows=self.settings.max_result_rows)
        body = json.loads(self.run(job, self.settings.query_timeout).body)
        return [{k: v["value"] for k, v in row.items()} for row in body["results"]["bindings"]]

    def stats(self) -> DatasetStats:
        """The dataset statistics, computed once per data version and engine and cached next to the snapshot."""
        snapshot = self.snapshot
        if snapshot is None:
            raise NotReadyError("the data snapshot is not loaded")
        with self._stats_lock:
            if snapshot.version not in self._stats:
                self._stats[snapshot.version] = self._cached_stats(snapshot)
            return self._stats[snapshot.version]

    def _cached_stats(self, snapshot: Snapshot) -> DatasetStats:
        path = snapshot.nquads.parent / f"stats-{self.engine_name}.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return DatasetStats(**{k: tuple(map(tuple, v)) if isinstance(v, list) else v for k, v in raw.items()})
        except (OSError, ValueError, TypeError):
            pass
        stats = compute_stats(self.select_rows)
        with contextlib.suppress(OSError):  # a cache folder pruned under an idle process: keep the stats in memory
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False) as tmp:
                json.dump(asdict(stats), tmp)
            os.replace(tmp.name, path)
        return stats


def state() -> ServiceState:
    """The service state of the current app."""
    return current_app.extensions[EXTENSION]
