"""The application factory: settings, snapshot and executor in, a Flask app with every blueprint out."""

from __future__ import annotations

import html
import io
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_etags

from service import errors
from service.config import Settings, load_settings
from service.engine import engine_for
from service.errors import GuianError
from service.executor import QueryExecutor
from service.protocol import PROBLEM_JSON, prefers_html
from service.serve import export_settings
from service.store import Snapshot, load_snapshot, open_store, snapshot_of
from service.views import CACHE_CONTROL, EXTENSION, REQUEST_KEY, QueryRecord, ServiceState
from service.views.api import bp as api_bp
from service.views.explain import bp as explain_bp
from service.views.ops import bp as ops_bp
from service.views.pages import bp as pages_bp
from service.views.sparql import bp as sparql_bp
from service.views.store import bp as store_bp
from service.views.void import bp as void_bp
from service.views.workbench import bp as workbench_bp
from service.writes import Follower, Writer, ephemeral_store_dir, run_build

log = logging.getLogger("guian_kg.app")

BLUEPRINTS = (sparql_bp, store_bp, void_bp, ops_bp, pages_bp, explain_bp, api_bp, workbench_bp)

# Werkzeug's own HTTP errors (routing, body limits) rendered as members of the GuianError family.
_HTTP_ERRORS: dict[int, type[GuianError]] = {
    400: errors.BadRequestError,
    401: errors.UnauthorizedError,
    403: errors.ForbiddenError,
    404: errors.NotFoundError,
    405: errors.MethodNotAllowedError,
    406: errors.NotAcceptableError,
    413: errors.PayloadTooLargeError,
    415: errors.UnsupportedMediaTypeError,
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_URL_BYTES = 16 * 1024  # longer URLs get 414 (granian drops request heads over 64 KiB: service.serve)
BODY_SECONDS = 15.0  # a request body must arrive within this time (408 otherwise)
_SLOW_READERS = threading.BoundedSemaphore(64)  # bodies being read at once, per process
_BODY_READERS = ThreadPoolExecutor(64, thread_name_prefix="guian-kg-body")  # threads start as needed
BODY_ERROR = "guian_kg.body_error"  # WSGI environ: why the body could not be read (raised by _guard_request)
FAST_PATHS = frozenset({"/sparql", "/sparql/"})  # and GET /api/queries/<name>: every path of `answer_query`
NAMED_QUERIES = "/api/queries/"
CORS_READ_HEADERS = (("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", "ETag, X-Request-Id"))
# The reads a cross-origin page may make; Authorization is not among the allowed headers, so
# browsers can never carry the write token across origins.
CORS_METHODS = "GET, HEAD, POST, OPTIONS"
CORS_HEADERS = "Accept, Content-Type, If-None-Match, X-Request-Id"
HTML_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """A new app: settings from `overrides` (flags) > GUIAN_KG_* > defaults, data loaded, executor started.

    Raises:
        ConfigError: invalid settings or data (before anything is served).
    """
    settings = load_settings(overrides)
    app = Flask("service")
    app.url_map.strict_slashes = False  # /sparql/ (the W3C tests' path) is /sparql, never a redirect
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    logging.getLogger("guian_kg").setLevel(settings.log_level.upper())

    if settings.update_token and settings.store_dir is None:
        # Writes always go through a journal; without --store-dir it lives in a temporary folder (lost at exit).
        settings = replace(settings, store_dir=ephemeral_store_dir())
        weakref.finalize(app, shutil.rmtree, settings.store_dir, True)
        log.warning(
            "writes are enabled without --store-dir: they live in %s until the service stops", settings.store_dir
        )
    snapshot = load_snapshot(settings)
    executor = QueryExecutor(settings, engine_for, snapshot)  # forks its query workers: after the server's fork
    state = ServiceState(settings, snapshot, executor)
    if settings.store_dir is not None:
        store = open_store(settings)
        if settings.update_token:
            with store.locked(None):
                store.recover()  # cut a torn tail a crash left, before anything reads or appends
            limits = (settings.query_timeout, settings.query_memory_mb, settings.max_result_rows)
            state.writer = Writer(store, snapshot.inferred_graph, *limits)
            weakref.finalize(app, state.writer.close)
        state.follower = Follower(
            store, partial(_build_newest, settings), partial(_install, state), served=snapshot.version
        )
    app.extensions[EXTENSION] = state

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.before_request(_assign_request_id)
    app.before_request(_guard_request)
    app.before_request(_follow_journal)
    app.after_request(_common_headers)
    app.teardown_request(_release_version)
    app.after_request(_count_request)
    app.register_error_handler(GuianError, render_problem)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.wsgi_app = FastAnswers(app, state)  # type: ignore[method-assign]
    return app


def _build_newest(settings: Settings) -> Snapshot:
    """Materialise the store's newest version in a child process and return its snapshot."""
    env = dict(os.environ)
    export_settings(settings, env)
    return snapshot_of(settings, run_build(env)["version"])


def _install(state: ServiceState, snapshot: Snapshot) -> bool:
    """Serve `snapshot` with a new executor (the old one closes when the requests that use it have ended)."""
    current = state.executor  # outside a request: the one being served
    if current is not None and current.closed:
        return False  # the app was shut down
    state.swap(snapshot, QueryExecutor(state.settings, engine_for, snapshot))
    log.info("now serving data version %s", snapshot.version)
    return True


def _release_version(exc: BaseException | None) -> None:
    state: ServiceState = current_app.extensions[EXTENSION]
    state.release()


def _follow_journal() -> None:
    state: ServiceState = current_app.extensions[EXTENSION]
    state.follow()


def _guard_request() -> Response | None:
    """414 for an over-long URL; the error of a body that did not arrive whole in time (read by `FastAnswers`)."""
    environ = request.environ
    if len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) > MAX_URL_BYTES:
        raise errors.URITooLongError(f"the URL is over {MAX_URL_BYTES} bytes; send the query with POST")
    problem = environ.get(BODY_ERROR)
    if problem is not None:
        raise problem
    return None


def _read_body(environ: dict[str, Any], limit: int) -> bytes | None:
    """Read a request body whole, within BODY_SECONDS, into the environ and return it (None: nothing was read;
    a problem is left under BODY_ERROR).

    The server hands the request over before its body has arrived and its read has no time limit, so the read
    runs on a pool thread while the request's thread waits at most BODY_SECONDS (slow clients get 408).
    """
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    try:
        declared = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None  # Flask answers the malformed header
    if environ["REQUEST_METHOD"] in ("GET", "HEAD", "OPTIONS") or not (declared or chunked) or declared > limit:
        return None  # no body, or one refused by its declared length where it is read (413), without reading it
    if len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) > MAX_URL_BYTES:
        return None  # refused with 414 before its body matters
    if not _SLOW_READERS.acquire(blocking=False):
        environ[BODY_ERROR] = errors.NotReadyError("too many request bodies are arriving slowly; retry later")
        return None
    stream = environ["wsgi.input"]

    def read() -> bytes:
        try:
            return stream.read(limit + 1)
        finally:
            _SLOW_READERS.release()

    try:
        body = _BODY_READERS.submit(read).result(BODY_SECONDS)
    except TimeoutError:
        # The reader stays blocked until the client sends or leaves; _SLOW_READERS caps how many may.
        environ[BODY_ERROR] = errors.RequestTimeoutError(f"the request body did not arrive within {BODY_SECONDS:g} s")
        return None
    except Exception:  # the client went away
        environ[BODY_ERROR] = errors.BadRequestError("the request body could not be read")
        return None
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


class FastAnswers:
    """WSGI middleware in front of Flask: reads request bodies (see `_read_body`), and answers a query request
    (/sparql, a named query) whose exact bytes were answered before on the data version being served, without
    Flask, the engine or a query worker. Its response carries the same headers as Flask's would (tests compare
    them); everything else, and every first time, goes to Flask, which keeps the answer for next time
    (`service.views.answer_query`).
    """

    def __init__(self, app: Flask, state: ServiceState) -> None:
        self.app = app.wsgi_app
        self.state = state
        self.counted: dict[tuple[str, str, int], Any] = {}  # (route, method, status) -> requests counter child

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        state = self.state
        body = _read_body(environ, state.settings.max_request_bytes)
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if path in FAST_PATHS:
            route = "/sparql"
            answerable = method == "GET" or (method == "POST" and body is not None)
        else:
            route = "/api/queries/<name>"
            answerable = method == "GET" and path.startswith(NAMED_QUERIES)
        if not answerable or not state.cache.enabled or BODY_ERROR in environ:
            return self.app(environ, start_response)
        started = time.perf_counter()
        key = (
            method,
            environ.get("SCRIPT_NAME", ""),
            environ["PATH_INFO"],
            environ.get("QUERY_STRING", ""),
            environ.get("CONTENT_TYPE", ""),
            body,
            environ.get("HTTP_ACCEPT", ""),
            environ.get("HTTP_HOST", ""),
            environ.get("wsgi.url_scheme", ""),
        )
        state.follow()
        answer = state.cache.get(key, state.served_version)
        if answer is None:
            environ[REQUEST_KEY] = key
            return self.app(environ, start_response)
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        record = QueryRecord(form=answer.form, rows=answer.rows, cache="hit")
        state.metrics.cache_lookups.labels("hit").inc()
        condition = environ.get("HTTP_IF_NONE_MATCH")
        if condition and parse_etags(condition).contains_weak(answer.etag.strip('"')):
            record.status, record.cache, payload = 304, "revalidated", b""
            headers = [("ETag", answer.etag)]
        else:
            payload = answer.body
            headers = [
                ("Content-Type", answer.content_type),
                ("Content-Length", str(len(payload))),
                ("ETag", answer.etag),
                ("Cache-Control", CACHE_CONTROL),
            ]
        headers += [("Vary", "Accept"), *CORS_READ_HEADERS, ("X-Content-Type-Options", "nosniff")]
        headers.append(("X-Request-Id", request_id))
        start_response("200 OK" if record.status == 200 else "304 Not Modified", headers)
        counter = self.counted.get((route, method, record.status))
        if counter is None:
            counter = self.counted[route, method, record.status] = state.metrics.requests.labels(
                route, method, str(record.status)
            )
        counter.inc()
        state.log_query(answer.query_sha256, record, time.perf_counter() - started, request_id)
        return [payload]


def _assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def _common_headers(response: Response) -> Response:
    for name, value in CORS_READ_HEADERS:
        response.headers[name] = value
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "86400"
    if response.mimetype == "text/html":
        for name, value in HTML_SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    if "request_id" in g:
        response.headers["X-Request-Id"] = g.request_id
    return response


def _count_request(response: Response) -> Response:
    state: ServiceState = current_app.extensions[EXTENSION]
    route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    state.metrics.requests.labels(route, request.method, str(response.status_code)).inc()
    return response


def render_problem(exc: GuianError) -> Response:
    """The error as application/problem+json, or as a small HTML page when the client prefers HTML."""
    problem = exc.problem()
    if prefers_html(request.headers.get("Accept")):
        response = Response(_problem_page(problem), status=exc.status, mimetype="text/html")
    else:
        body = json.dumps(problem, ensure_ascii=False, default=str)
        response = Response(body, status=exc.status, content_type=PROBLEM_JSON)
    response.vary.add("Accept")
    response.headers["Cache-Control"] = "no-store"
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="guian-kg"'
    return response


def _problem_page(problem: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in problem.items()
        if k not in ("title", "detail")
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{problem['status']} {html.escape(problem['title'])}</title></head><body>"
        f"<h1>{html.escape(problem['title'])}</h1><p>{html.escape(str(problem['detail']))}</p>"
        f"<table>{rows}</table></body></html>"
    )


def _http_error(exc: HTTPException) -> Response | HTTPException:
    if exc.code is None or exc.code < 400:
        return exc  # routing redirects are responses, not errors
    error_class = _HTTP_ERRORS.get(exc.code)
    if error_class is not None:
        error = error_class(exc.description or "")
    else:
        error = GuianError(exc.description or "")
        error.status, error.title = exc.code, exc.name
        error.code = re.sub(r"[^a-z0-9]+", "-", exc.name.lower()).strip("-")
    response = render_problem(error)
    for name, value in exc.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value  # e.g. Allow on 405
    return response


def _unexpected_error(exc: Exception) -> Response:
    request_id = g.get("request_id", "-")
    log.error("unexpected error answering %s %s (request %s)", request.method, request.path, request_id, exc_info=exc)
    error = GuianError(f"An unexpected error occurred; quote request id {request_id} when reporting it.")
    return render_problem(error)
