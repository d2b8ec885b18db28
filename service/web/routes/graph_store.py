"""/store: SPARQL 1.1 Graph Store Protocol. GET/HEAD read a graph; PUT/POST/DELETE need the write token."""

from __future__ import annotations

import hashlib
import uuid

from flask import Blueprint, Response, request, url_for

from service.engines.base import QueryJob
from service.errors import BadRequestError, NotFoundError, ReadOnlyGraphError
from service.journal.records import WriteOp
from service.sparql.protocol import (
    RDF_FORMATS,
    check_content_length,
    choose_format,
    decode_form,
    parse_control,
    read_body,
)
from service.sparql.rdf_input import rdf_format_for
from service.sparql.update_lint import check_graph_iri
from service.web.answer import not_modified, rdf_response
from service.web.auth import apply_write, authorize_write
from service.web.state import state

bp = Blueprint("store", __name__)


@bp.route("/store", methods=["GET", "PUT", "POST", "DELETE"])
def graph_store() -> Response:
    """GET ?graph=<iri> or ?default: the graph in a negotiated RDF format; PUT/POST/DELETE change one graph.

    Raises:
        ReadOnlyError, UnauthorizedError: a write without the configured token.
        BadRequestError: neither or both of graph= and default, or graph= given twice.
        NotFoundError: a graph the dataset does not hold.
    """
    st = state()
    if request.method in ("PUT", "POST", "DELETE"):
        return _write()

    params = decode_form(request.query_string, "URL query string")
    graphs, default = _target(params)
    if not (graphs or default):
        raise BadRequestError("name exactly one graph: ?graph=<IRI> or ?default")
    control = parse_control(params)
    fmt = choose_format(RDF_FORMATS, request.headers.get("Accept"), control.format)
    infer = control.infer

    snapshot = st.snapshot
    if graphs:
        name = graphs[0]
        if name not in snapshot.graphs:
            raise NotFoundError(f"the dataset has no graph <{name}>", graph=name)
        # Only IRIs from the snapshot's own list reach the query text, so nothing a client sends is pasted in.
        query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{name}> {{ ?s ?p ?o }} }}"
        infer = True  # a named graph (the inferred one included) reads as it is
        tag = name
    else:
        query = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"
        infer = st.settings.infer if infer is None else infer
        tag = f"default-{infer}"
    etag = f"{snapshot.version}-store-{hashlib.sha256(tag.encode()).hexdigest()[:12]}-{fmt.key}"
    if request.if_none_match.contains(etag):
        return not_modified(etag)
    with st.observe_query(query) as record:
        record.form = "construct"
        job = QueryJob(query, fmt.key, infer=infer, max_rows=st.settings.max_result_rows)
        outcome = st.run(job, st.settings.query_timeout)
        record.rows = outcome.rows
    return rdf_response(outcome.body, fmt, etag)


def _target(params: list[tuple[str, str]]) -> tuple[list[str], bool]:
    graphs = [value for name, value in params if name == "graph"]
    default = any(name == "default" for name, _ in params)
    if len(graphs) > 1 or (graphs and default):
        raise BadRequestError("name exactly one graph: ?graph=<IRI> or ?default")
    return graphs, default


def _write() -> Response:
    """PUT (replace), POST (merge) or DELETE one graph; POST without a graph adds a TriG/N-Quads document's
    quads to their graphs, or stores a triples document in a new graph (201 + Location).

    Raises:
        ReadOnlyGraphError: the default graph (the union of all graphs) or the inferred graph.
        UnsupportedMediaTypeError, RDFSyntaxError, PayloadTooLargeError: a bad upload (nothing applied).
        NotFoundError: DELETE of a graph the dataset does not hold.
    """
    authorize_write()
    settings = state().settings
    graphs, default = _target(decode_form(request.query_string, "URL query string"))
    if default:
        raise ReadOnlyGraphError(
            "the default graph is the read-only union of the named graphs: write to ?graph=<IRI> instead"
        )
    graph = graphs[0] if graphs else None
    if graph is not None:
        check_graph_iri(graph)
    if request.method == "DELETE":
        if graph is None:
            raise BadRequestError("name the graph to delete: ?graph=<IRI>")
        return apply_write(WriteOp("delete", graph=graph))
    check_content_length(request.content_length, settings.max_request_bytes)
    body = read_body(request.stream, settings.max_request_bytes)
    rdf_format = rdf_format_for(request.content_type)
    if graph is not None:
        return apply_write(
            WriteOp(request.method.lower(), graph=graph, body=body, rdf_format=rdf_format, base_iri=graph)
        )
    if request.method == "PUT":
        raise BadRequestError("name the graph to replace: ?graph=<IRI>")
    if rdf_format in ("trig", "nq"):
        return apply_write(WriteOp("add", body=body, rdf_format=rdf_format, base_iri=request.base_url))
    minted = f"{settings.base_iri}graph/upload/{uuid.uuid4()}"
    response = apply_write(WriteOp("post", graph=minted, body=body, rdf_format=rdf_format, base_iri=minted))
    response.headers["Location"] = url_for("store.graph_store", graph=minted, _external=True)
    return response
