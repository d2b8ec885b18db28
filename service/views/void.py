"""GET /.well-known/void: the VoID description of the dataset (Turtle by default, negotiated)."""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for

from service.describe import serialize, void_description
from service.protocol import RDF_FORMATS, choose_format, decode_form
from service.views import not_modified, rdf_response, state

bp = Blueprint("void", __name__)


@bp.route("/.well-known/void", methods=["GET"])
def void() -> Response:
    """The dataset's VoID description: statistics, partitions, one subset per named graph."""
    st = state()
    snapshot = st.snapshot
    params = dict(decode_form(request.query_string, "URL query string"))
    fmt = choose_format(RDF_FORMATS, request.headers.get("Accept"), params.get("format"))
    etag = f"{snapshot.version}-void-{fmt.key}"
    if request.if_none_match.contains(etag):
        return not_modified(etag)
    graph = void_description(
        st.settings,
        snapshot.graphs,
        snapshot.inferred_graph,
        st.stats(),
        endpoint=url_for("sparql.sparql", _external=True),
        version=snapshot.version,
    )
    return rdf_response(serialize(graph, fmt), fmt, etag)
