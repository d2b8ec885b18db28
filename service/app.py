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
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from service import errors
from service.config import Settings, load_settings
from service.engine import engine_for
from service.errors import GuianError
from service.executor import QueryExecutor
from service.protocol import PROBLEM_JSON, prefers_html
from service.serve import export_settings
from service.store import Snapshot, load_snapshot, open_store, snapshot_of
from service.views import EXTENSION, ServiceState
from service.views.api import bp as api_bp
from service.views.explain import bp as explain_bp
from service.views.ops import bp as ops_bp
from service.views.pages import bp as pages_bp
from service.views.sparql import bp as sparql_bp
from service.views.store import bp as store_bp
from service.views.void import bp as void_bp
from service.writes import Follower, Writer, ephemeral_store_dir, run_build

log = logging.getLogger("guian_kg.app")

BLUEPRINTS = (sparql_bp, store_bp, void_bp, ops_bp, pages_bp, explain_bp, api_bp)

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
    """414 for an over-long URL; a request body read whole within BODY_SECONDS (slow clients get 408)."""
    environ = request.environ
    if len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) > MAX_URL_BYTES:
        raise errors.URITooLongError(f"the URL is over {MAX_URL_BYTES} bytes; send the query with POST")
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if request.method in ("GET", "HEAD", "OPTIONS") or not (request.content_length or chunked):
        return None
    limit = current_app.extensions[EXTENSION].settings.max_request_bytes
    if request.content_length and request.content_length > limit:
        return None  # refused by its declared length where it is read (413), without reading it
    if not _SLOW_READERS.acquire(blocking=False):
        raise errors.NotReadyError("too many request bodies are arriving slowly; retry later")
    stream, box, done = environ["wsgi.input"], {}, threading.Event()

    def read() -> None:
        try:
            box["body"] = stream.read(limit + 1)
        except Exception as exc:  # the client went away
            box["error"] = exc
        finally:
            _SLOW_READERS.release()
            done.set()

    threading.Thread(target=read, name="guian-kg-body", daemon=True).start()
    if not done.wait(BODY_SECONDS):
        # The reader stays blocked until the client sends or leaves; _SLOW_READERS caps how many may.
        raise errors.RequestTimeoutError(f"the request body did not arrive within {BODY_SECONDS:g} s")
    if "error" in box:
        raise errors.BadRequestError("the request body could not be read")
    environ["wsgi.input"] = io.BytesIO(box["body"])
    environ["CONTENT_LENGTH"] = str(len(box["body"]))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return None


def _assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def _common_headers(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = "ETag, X-Request-Id"
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
