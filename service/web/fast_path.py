"""Answers to requests whose exact bytes were answered before, before Flask."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.http import parse_etags

from service.web.answer import REQUEST_KEY
from service.web.bodies import BODY_ERROR
from service.web.headers import REQUEST_ID, answer_headers, read_headers
from service.web.state import QueryRecord, ServiceState

FAST_PATHS = frozenset({"/sparql", "/sparql/"})  # and GET /api/queries/<name>: every path of `answer_query`
NAMED_QUERIES = "/api/queries/"


class FastAnswers:
    """WSGI middleware in front of Flask: reads request bodies (see `BodyReader`), and answers a query request
    (/sparql, a named query) whose exact bytes were answered before on the data version being served, without
    Flask, the engine or a query worker. Its response carries the same headers as Flask's would (tests compare
    them); everything else, and every first time, goes to Flask, which keeps the answer for next time
    (`service.web.answer.answer_query`).
    """

    def __init__(self, app: Flask, state: ServiceState) -> None:
        self.app = app.wsgi_app
        self.state = state
        self.bodies = state.bodies
        self.counted: dict[tuple[str, str, int], Any] = {}  # (route, method, status) -> requests counter child

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        state = self.state
        body = self.bodies.read(environ)
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
        if not state.current():
            return self.app(environ, start_response)  # the app waits for the newest version first
        answer = state.cache.get(key, state.served_version)
        if answer is None:
            environ[REQUEST_KEY] = key
            return self.app(environ, start_response)
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        record = QueryRecord(form=answer.form, rows=answer.rows, cache="hit")
        state.metrics.cache_lookups.labels("hit").inc()
        condition = environ.get("HTTP_IF_NONE_MATCH")
        revalidated = bool(condition) and parse_etags(condition).contains_weak(answer.etag.strip('"'))
        if revalidated:
            record.status, record.cache, payload = 304, "revalidated", b""
        else:
            payload = answer.body
        headers = [*answer_headers(answer, revalidated), *read_headers(request_id)]
        start_response("200 OK" if record.status == 200 else "304 Not Modified", headers)
        counter = self.counted.get((route, method, record.status))
        if counter is None:
            counter = self.counted[route, method, record.status] = state.metrics.requests.labels(
                route, method, str(record.status)
            )
        counter.inc()
        state.log_query(answer.query_sha256, record, time.perf_counter() - started, request_id)
        return [payload]
