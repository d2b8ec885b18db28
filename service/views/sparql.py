"""GET/POST /sparql (SPARQL 1.1 Protocol query, or the Service Description without a query) and POST /update."""

from __future__ import annotations

from flask import Blueprint, Response, request
from rdflib import BNode

from service.describe import service_description
from service.engine import QueryJob
from service.errors import BadRequestError
from service.protocol import (
    FORM_FORMATS,
    SparqlRequest,
    check_content_length,
    choose_format,
    effective_timeout,
    parse_sparql_request,
    read_body,
)
from service.query_text import check_query
from service.views import apply_write, authorize_write, description_response, state
from service.views.api import library
from service.writes import WriteOp, check_update

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
    return _answer(parsed)


def _answer(parsed: SparqlRequest) -> Response:
    st = state()
    settings = st.settings
    text = parsed.query or ""
    with st.observe_query(text) as record:
        record.form = check_query(text, settings.service_allow)
        fmt = choose_format(FORM_FORMATS[record.form], request.headers.get("Accept"), parsed.format)
        job = QueryJob(
            query=text,
            result_format=fmt.key,
            infer=settings.infer if parsed.infer is None else parsed.infer,
            default_graph_uris=parsed.default_graph_uris,
            named_graph_uris=parsed.named_graph_uris,
            base_iri=request.base_url,  # relative IRIs in a query resolve against the endpoint's URL
            max_rows=settings.max_result_rows,
        )
        outcome = st.run(job, effective_timeout(parsed.timeout, settings.query_timeout))
        record.rows = outcome.rows
    response = Response(outcome.body, content_type=fmt.content_type)
    response.vary.add("Accept")
    return response


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
