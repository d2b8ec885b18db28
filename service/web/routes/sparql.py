"""GET/POST /sparql (SPARQL 1.1 Protocol query, or the Service Description without a query) and POST /update."""

from __future__ import annotations

from flask import Blueprint, Response, request
from rdflib import BNode

from service.describe import service_description
from service.errors import BadRequestError
from service.journal.records import WriteOp
from service.sparql.protocol import SparqlRequest, check_content_length, parse_sparql_request, read_body
from service.sparql.update_lint import check_update
from service.web.answer import answer_query, description_response
from service.web.auth import apply_write, authorize_write
from service.web.routes.api import library
from service.web.state import state

bp = Blueprint("sparql", __name__)


def _parse_request() -> SparqlRequest:
    limit = state().settings.max_request_bytes
    body = b""
    if request.method == "POST":
        check_content_length(request.content_length, limit)
        body = read_body(request.stream, limit)
    return parse_sparql_request(request.method, request.query_string, request.content_type, body, limit)


@bp.route("/sparql", methods=["GET", "POST"])
def sparql() -> Response:
    """Answer a query; without one (GET), describe the service."""
    parsed = _parse_request()
    if parsed.update is not None:
        return _update(parsed)
    if parsed.query is None:
        if request.method == "POST":
            raise BadRequestError("no query: send it as query=… (form) or as an application/sparql-query body")
        return _service_description(parsed)
    return _answer_sparql(parsed)


def _answer_sparql(parsed: SparqlRequest) -> Response:
    return answer_query(
        parsed.query or "",
        parsed.format,
        parsed.infer,
        parsed.timeout,
        default_graph_uris=parsed.default_graph_uris,
        named_graph_uris=parsed.named_graph_uris,
        base_iri=request.base_url,  # relative IRIs in a query resolve against the endpoint's URL
    )


def _service_description(parsed: SparqlRequest) -> Response:
    return description_response(
        "sd",
        service_description,
        parsed.format,
        extend=lambda graph: library().describe(graph, BNode("service"), request.url_root),
    )


def _update(parsed: SparqlRequest) -> Response:
    """Apply a SPARQL 1.1 Update (checked for LOAD, SERVICE and nesting; USING graphs written in)."""
    authorize_write()
    text = check_update(parsed.update or "", parsed.using_graph_uris, parsed.using_named_graph_uris)
    return apply_write(WriteOp("update", text=text, base_iri=request.base_url))


@bp.route("/update", methods=["POST"])
def update() -> Response:
    """SPARQL 1.1 Update: refused unless the bearer token is configured and presented."""
    authorize_write()
    parsed = _parse_request()
    if parsed.update is None:
        raise BadRequestError("no update: send it as update=… (form) or as an application/sparql-update body")
    return _update(parsed)
