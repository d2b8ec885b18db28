"""Errors as application/problem+json (or an HTML page for browsers)."""

from __future__ import annotations

import html
import json
import logging
import re
from typing import Any

from flask import Response, g, request
from werkzeug.exceptions import HTTPException

from service import errors
from service.errors import GuianError
from service.sparql.protocol import PROBLEM_JSON, prefers_html

log = logging.getLogger("guian_kg.app")


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


def render_problem(exc: GuianError) -> Response:
    """The error as application/problem+json, or as a small HTML page when the client prefers HTML."""
    problem = exc.problem()
    if isinstance(exc, errors.StorageError | errors.ConfigError):
        # Their details name files and carry OS error text: for the log, never for a client.
        request_id = g.get("request_id", "-")
        log.error("%s answering %s %s (request %s): %s", exc.code, request.method, request.path, request_id, exc.detail)
        what = "the store could not be read or written" if exc.code == "storage-error" else "a setting is wrong"
        problem["detail"] = f"{what}; quote request id {request_id} when reporting it (the service log has the cause)"
        problem = {k: v for k, v in problem.items() if k in ("type", "title", "status", "detail", "code")}
    if prefers_html(request.headers.get("Accept")):
        response = Response(_problem_page(problem), status=exc.status, mimetype="text/html")
    else:
        body = json.dumps(problem, ensure_ascii=False, default=str)
        response = Response(body, status=exc.status, content_type=PROBLEM_JSON)
    response.vary.add("Accept")
    response.headers["Cache-Control"] = "no-store"
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="guian-kg"'
    if exc.code == "not-ready":
        response.headers["Retry-After"] = "1"
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


def http_error(exc: HTTPException) -> Response | HTTPException:
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


def unexpected_error(exc: Exception) -> Response:
    request_id = g.get("request_id", "-")
    log.error("unexpected error answering %s %s (request %s)", request.method, request.path, request_id, exc_info=exc)
    error = GuianError(f"An unexpected error occurred; quote request id {request_id} when reporting it.")
    return render_problem(error)
