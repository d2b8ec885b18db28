"""The machine ceiling: a WSGI hello world under granian, driven exactly like the real servers."""

from __future__ import annotations

BODY = b'{"head": {"vars": []}, "results": {"bindings": []}}'


def app(environ, start_response):
    """Answer every request with a tiny SPARQL JSON result, reading (and dropping) the request body."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/sparql-results+json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
