"""What every blueprint shares: the per-app service state (settings, snapshot, executor, metrics) and write auth."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from flask import Response, current_app, g, has_request_context, request, url_for
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from rdflib import Graph

from service.config import Settings
from service.describe import DatasetStats, compute_stats, serialize
from service.engine import QueryJob, QueryOutcome
from service.errors import (
    GuianError,
    NotImplementedYetError,
    NotReadyError,
    QueryTimeoutError,
    ReadOnlyError,
    UnauthorizedError,
)
from service.executor import QueryExecutor
from service.formats import BY_KEY, Format
from service.protocol import FORM_FORMATS, RDF_FORMATS, choose_format, effective_timeout
from service.query_text import check_query
from service.result_cache import Answer, ResultCache, etag_of, job_identity
from service.store import Snapshot
from service.writes import Follower, WriteOp, Writer

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


@dataclass
class QueryRecord:
    """What one query did, filled in while it runs and logged as one JSON line when it ends."""

    form: str | None = None
    rows: int = 0
    status: int = 200
    cache: str | None = None  # hit | miss | None (not cacheable, or the cache is off)


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
        self.metrics = Metrics()
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
        """Notice a newer journal position (a stat) and have it built in the background."""
        if self.follower is not None:
            self.follower.poll()

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
        record = QueryRecord()
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
            digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:12]
            self.log_query(digest, record, time.perf_counter() - started, g.get("request_id"))

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
            digest = hashlib.sha256(job.query.encode("utf-8", "replace")).hexdigest()[:12]
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


def answer_query(
    text: str,
    requested_format: str | None,
    infer: bool | None,
    timeout: float | None,
    **job_options: Any,
) -> Response:
    """Run a client's query (from /sparql or a named query) and answer it, negotiated, with an ETag if it is kept.

    A repeated deterministic query is answered from the result cache of its data version; a client that already
    holds that answer (If-None-Match) gets 304 without the query running. `job_options` are QueryJob fields
    (graphs, base IRI, bindings).
    """
    st = state()
    settings = st.settings
    with st.observe_query(text) as record:
        record.form = check_query(text, settings.service_allow)
        fmt = choose_format(FORM_FORMATS[record.form], request.headers.get("Accept"), requested_format)
        job = QueryJob(
            query=text,
            result_format=fmt.key,
            infer=settings.infer if infer is None else infer,
            max_rows=settings.max_result_rows,
            **job_options,
        )
        limit = effective_timeout(timeout, settings.query_timeout)
        key = st.cache_identity(job)
        if key is None:
            outcome = st.run(job, limit)
            record.rows = outcome.rows
            response = Response(outcome.body, content_type=fmt.content_type)
            response.headers["Cache-Control"] = "no-store"  # its answer may differ next time
            response.vary.add("Accept")
            return response
        if request.if_none_match.contains_weak(key[1].strip('"')):
            record.status, record.cache = 304, "revalidated"
            return not_modified(key[1].strip('"'))
        answer = st.run_cached(job, limit, key, record)
        record.rows = answer.rows
        request_key = request.environ.get(REQUEST_KEY)
        if request_key is not None:
            st.cache.put(request_key, answer)  # the same bytes again: answered before Flask (service.app)
    return cached_response(answer)


REQUEST_KEY = "guian_kg.request_key"  # WSGI environ: the exact bytes of a request that may be answered from cache
CACHE_CONTROL = "no-cache"  # keep it, but ask again (a 304 is cheap): a write may change it at any time


def cached_response(answer: Answer) -> Response:
    """A 200 response carrying a kept answer with its ETag."""
    response = Response(answer.body, content_type=answer.content_type)
    response.headers["ETag"] = answer.etag
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.vary.add("Accept")
    return response


def require_write_token(settings: Settings, authorization: str | None) -> None:
    """Let a write through only with the configured bearer token.

    Raises:
        ReadOnlyError: no update token is configured (the service is read-only).
        UnauthorizedError: a token is configured but the request's is missing or wrong.
    """
    if not settings.update_token:
        raise ReadOnlyError("this service is read-only: no update token is configured")
    scheme, _, presented = (authorization or "").partition(" ")
    # Digests of equal length: the comparison takes the same time whatever the presented token's length.
    expected = hashlib.sha256(settings.update_token.encode("utf-8")).digest()
    given = hashlib.sha256(presented.strip().encode("utf-8", "replace")).digest()
    if not hmac.compare_digest(given, expected) or scheme.lower() != "bearer":
        raise UnauthorizedError("send the update token as 'Authorization: Bearer <token>'")


def _who() -> dict[str, Any]:
    """Who sent the current request, as far as the audit log can tell (one token is shared by all writers)."""
    return {
        "remote": request.remote_addr,
        "request_id": g.get("request_id"),
        "agent": request.headers.get("User-Agent", "")[:120],
    }


def authorize_write() -> None:
    """Let the current request write only with the token (see `require_write_token`); refusals are audited."""
    try:
        require_write_token(state().settings, request.headers.get("Authorization"))
        if state().settings.engine == "remote":
            # Our journal would never reach the remote store: write to the store itself (its --remote-update).
            raise NotImplementedYetError("writes are not supported on the remote engine; update the remote store")
    except GuianError as exc:
        audit_log.info(json.dumps({"event": "write-refused", "who": _who(), "status": exc.status, "code": exc.code}))
        raise


def apply_write(op: WriteOp) -> Response:
    """Apply a write for the current request and answer with its receipt; one audit line whatever happens.

    Raises:
        GuianError: whatever the writer raised (nothing was applied).
    """
    st = state()
    if st.writer is None:
        raise ReadOnlyError("this service is read-only: no update token is configured")
    who = _who()
    line: dict[str, Any] = {"event": "write", "who": who, **op.summary()}
    try:
        receipt = st.writer.apply(op, who)
    except GuianError as exc:
        audit_log.info(json.dumps({**line, "status": exc.status, "code": exc.code}, ensure_ascii=False))
        raise
    except Exception:
        audit_log.info(json.dumps({**line, "status": 500}, ensure_ascii=False))
        raise
    status = 201 if receipt.created else 200
    result = {
        "seq": receipt.seq,
        "data_version": receipt.data_version,
        "deleted": receipt.deleted,
        "inserted": receipt.inserted,
        "changed": receipt.changed,
    }
    audit_log.info(json.dumps({**line, "status": status, **result}, ensure_ascii=False))
    st.follow()
    response = Response(json.dumps(result), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def rdf_response(body: bytes, fmt: Format, etag: str) -> Response:
    """A negotiated response labelled with its real media type and a strong ETag."""
    response = Response(body, content_type=fmt.content_type)
    response.set_etag(etag)
    response.vary.add("Accept")
    return response


def not_modified(etag: str) -> Response:
    """304 for a client whose If-None-Match already holds this representation."""
    response = Response(status=304)
    response.set_etag(etag)
    response.vary.add("Accept")
    return response


def description_response(
    kind: str, build: Callable[..., Graph], requested_format: str | None, extend: Callable[[Graph], None] | None = None
) -> Response:
    """The service description or VoID (`build`) of the current data version, negotiated, with a per-format ETag."""
    st = state()
    snapshot = st.snapshot
    fmt = choose_format(RDF_FORMATS, request.headers.get("Accept"), requested_format)
    etag = f"{snapshot.version}-{kind}-{fmt.key}"
    if request.if_none_match.contains(etag):
        return not_modified(etag)
    graph = build(
        st.settings,
        snapshot.graphs,
        snapshot.inferred_graph,
        st.stats(),
        endpoint=url_for("sparql.sparql", _external=True),
        version=snapshot.version,
    )
    if extend is not None:
        extend(graph)
    return rdf_response(serialize(graph, fmt), fmt, etag)
