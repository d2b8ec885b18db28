"""The header policy of every response, in one place (Flask's path and the fast path both use it)."""

from __future__ import annotations

import re
import uuid

from flask import Response, current_app, g, request

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


def assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex


def common_headers(response: Response) -> Response:
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


def count_request(response: Response) -> Response:
    state: ServiceState = current_app.extensions[EXTENSION]
    route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    state.metrics.requests.labels(route, request.method, str(response.status_code)).inc()
    return response
