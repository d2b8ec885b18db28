"""The header policy of every response, in one place (Flask's path and the fast path both use it)."""

from __future__ import annotations

import re
import uuid

from flask import Response, current_app, g, request

from service.runtime.result_cache import Answer
from service.web.state import EXTENSION, ServiceState

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
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


CACHE_CONTROL = "no-cache"  # keep it, but ask again (a 304 is cheap): a write may change it at any time


def answer_headers(answer: Answer, revalidated: bool = False) -> list[tuple[str, str]]:
    """The representation headers of a kept query answer, 200 or 304 (the Flask path and the fast path both)."""
    if revalidated:
        return [("ETag", answer.etag), ("Vary", "Accept")]
    return [
        ("Content-Type", answer.content_type),
        ("Content-Length", str(len(answer.body))),
        ("ETag", answer.etag),
        ("Cache-Control", CACHE_CONTROL),
        ("Vary", "Accept"),
        ("Data-Version", answer.version),
    ]


def read_headers(request_id: str) -> list[tuple[str, str]]:
    """The headers every read response carries (CORS, nosniff, the request id): `common_headers` sets the same."""
    return [*CORS_READ_HEADERS, ("X-Content-Type-Options", "nosniff"), ("X-Request-Id", request_id)]


def assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex


def common_headers(response: Response) -> Response:
    """Every response's policy headers (after the view): CORS for reads, nosniff, HTML security, the request id."""
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
    data = g.get("guian_kg_data")
    if data is not None and data[0] is not None:
        response.headers.setdefault("Data-Version", data[0].version)  # the version that answered
    return response


def count_request(response: Response) -> Response:
    state: ServiceState = current_app.extensions[EXTENSION]
    route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    state.metrics.requests.labels(route, request.method, str(response.status_code)).inc()
    return response
