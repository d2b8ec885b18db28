"""The named-query library as a REST API: GET /api/queries, GET/HEAD /api/queries/<name>, GET /api/openapi.json.

The library is loaded when the blueprint is registered (a broken `.rq` stops `create_app` with the file and
line); a named query runs through the app's query executor exactly as a /sparql query does, with the same
negotiation, `format=`, `infer=` and `timeout=`; its parameters are bound as RDF terms by
`service.library`.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask.blueprints import BlueprintSetupState

from service import completion
from service.ask.openapi import with_ask
from service.data.snapshots import nquads_of
from service.errors import BadRequestError
from service.library.openapi import openapi_document
from service.library.queries import RESERVED, Library, served_library
from service.library.vocabulary import vocabulary_of_version
from service.sparql.protocol import CONTROL, decode_form, parse_control
from service.web.answer import answer_query
from service.web.state import EXTENSION

bp = Blueprint("api", __name__)

LIBRARY_KEY = "guian_kg.library"
# The protocol's own parameters on a named-query URL (the others are the query's).


@bp.record_once
def _load_library(setup: BlueprintSetupState) -> None:
    """Load and check every named query as the app is created (ConfigError stops the app)."""
    settings = setup.app.extensions[EXTENSION].settings
    setup.app.extensions[LIBRARY_KEY] = served_library(settings)


def library() -> Library:
    """The named-query library of the current app."""
    return current_app.extensions[LIBRARY_KEY]


@bp.route("/api/queries", methods=["GET"])
def list_queries() -> Response:
    """Every named query with its titles, descriptions, parameters, result variables and REST URL."""
    queries = [
        {
            **query.metadata(),
            "url": url_for("api.run_query", name=query.name, _external=True),
            "sparql": query.text,
            "editor": url_for("pages.home", example=query.name, _external=True),  # "open in editor"
        }
        for query in library()
    ]
    return jsonify(queries=queries)


@bp.route("/api/openapi.json", methods=["GET"])
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API: one operation per named query, /api/ask and the editor's."""
    document = openapi_document(library(), request.url_root)
    document["paths"].update(completion.openapi_paths())  # the editor's endpoints (service.web.routes.workbench)
    return jsonify(with_ask(document))


@bp.route("/api/queries/<name>", methods=["GET"])
def run_query(name: str) -> Response:
    """Run a named query with the URL's parameters; the result is negotiated like /sparql's.

    Raises:
        NotFoundError: no such query.
        InvalidParameterError: an unknown parameter or value (the problem names it and lists the allowed ones).
        BadRequestError: a protocol parameter given twice.
    """
    query = library().get(name)
    st = current_app.extensions[EXTENSION]
    snapshot = st.snapshot
    if st.settings.store_dir is not None and snapshot is not None:
        # a writable store: the values a parameter accepts are those of the version that answers
        query = replace(query, vocabulary=vocabulary_of_version(nquads_of(snapshot), snapshot.inferred_graph))
    pairs = decode_form(request.query_string, "URL query string")
    control = parse_control(pairs)
    params: dict[str, list[str]] = {}
    for key, value in pairs:
        if key in CONTROL:
            continue
        if key in RESERVED:
            raise BadRequestError(f"{key}= is not a parameter of a named query")
        params.setdefault(key, []).append(value)
    prepared = query.prepare(params)
    return answer_query(prepared.text, control.format, control.infer, control.timeout, bindings=prepared.bindings)
