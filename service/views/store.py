"""/store: SPARQL 1.1 Graph Store Protocol. GET/HEAD read a graph; PUT/POST/DELETE need the write token."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, request

from service.engine import QueryJob
from service.errors import BadRequestError, NotFoundError, NotImplementedYetError
from service.protocol import RDF_FORMATS, choose_format, decode_form, parse_infer
from service.views import not_modified, rdf_response, require_write_token, state

bp = Blueprint("store", __name__)


@bp.route("/store", methods=["GET", "PUT", "POST", "DELETE"])
def graph_store() -> Response:
    """GET ?graph=<iri> or ?default: the graph in a negotiated RDF format; writes are refused for now.

    Raises:
        ReadOnlyError, UnauthorizedError: a write without the configured token.
        BadRequestError: neither or both of graph= and default, or graph= given twice.
        NotFoundError: a graph the dataset does not hold.
    """
    st = state()
    if request.method in ("PUT", "POST", "DELETE"):
        require_write_token(st.settings, request.headers.get("Authorization"))
        raise NotImplementedYetError("Graph Store writes are not implemented yet; the dataset is read-only for now")

    params = decode_form(request.query_string, "URL query string")
    graphs = [value for name, value in params if name == "graph"]
    default = any(name == "default" for name, _ in params)
    if len(graphs) > 1 or (graphs and default) or not (graphs or default):
        raise BadRequestError("name exactly one graph: ?graph=<IRI> or ?default")
    formats = [value for name, value in params if name == "format"]
    fmt = choose_format(RDF_FORMATS, request.headers.get("Accept"), formats[-1] if formats else None)
    infer_values = [value for name, value in params if name == "infer"]
    infer = parse_infer(infer_values[-1] if infer_values else None)

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
