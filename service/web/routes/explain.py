"""GET /api/explain?s=&p=&o=: why a triple holds, as JSON (default) or an HTML page."""

from __future__ import annotations

import hashlib
import json

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from service.errors import InvalidParameterError, NotAcceptableError
from service.explain.cache import Explainers
from service.explain.explanation import DEFAULT_MAX_DEPTH, DEFAULT_MAX_NODES, NotEntailedError
from service.explain.search import SEARCH_DEPTH, Explainer
from service.explain.terms import parse_term
from service.sparql.protocol import best_media_type, decode_form
from service.web.answer import not_modified
from service.web.state import state

bp = Blueprint("explain", __name__)

EXPLAINERS_KEY = "guian_kg_explainers"
MAX_NODES_LIMIT = 5000
_OFFERS = ("application/json", "text/html")


@bp.record_once
def _hold_explainers(setup: BlueprintSetupState) -> None:
    setup.app.extensions[EXPLAINERS_KEY] = Explainers()


def explainer() -> Explainer:
    """The app's explainer of the data version it serves, built on first use."""
    return current_app.extensions[EXPLAINERS_KEY].for_snapshot(state().snapshot)


def _bounded_int(params: dict[str, str], name: str, default: int, upper: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= upper:
        raise InvalidParameterError(f"{name} must be a whole number from 1 to {upper}", parameter=name)
    return value


@bp.route("/api/explain", methods=["GET"])
def explain() -> Response:
    """The explanation of one triple: its source quote, or the OWL 2 RL rule and premises down to the quotes.

    Raises:
        InvalidParameterError: a missing or malformed s, p, o, format, max_depth or max_nodes (400).
        NotAcceptableError: an Accept header that allows neither JSON nor HTML (406).
        NotEntailedError: the triple is neither asserted nor entailed (404).
    """
    params = dict(decode_form(request.query_string, "URL query string"))
    snapshot = state().snapshot
    terms = [parse_term(params.get(name), name, snapshot.base_iri) for name in ("s", "p", "o")]
    max_depth = _bounded_int(params, "max_depth", DEFAULT_MAX_DEPTH, SEARCH_DEPTH)
    max_nodes = _bounded_int(params, "max_nodes", DEFAULT_MAX_NODES, MAX_NODES_LIMIT)
    wanted = params.get("format", "").lower()
    if wanted and wanted not in ("json", "html"):
        raise InvalidParameterError(f"unknown format {wanted!r}; one of json, html", parameter="format")
    media_type = {"json": "application/json", "html": "text/html"}.get(wanted) or best_media_type(
        request.headers.get("Accept"), _OFFERS
    )
    if media_type is None:
        raise NotAcceptableError(f"Accept: {request.headers.get('Accept')} matches none of {', '.join(_OFFERS)}")

    key = " ".join([snapshot.version, *(t.n3() for t in terms), str(max_depth), str(max_nodes), media_type])
    etag = "explain-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
    if request.if_none_match.contains(etag):
        return not_modified(etag)
    found = explainer().explain(*terms, max_depth=max_depth, max_nodes=max_nodes)
    if found is None:
        shown = " ".join(t.n3() for t in terms)
        raise NotEntailedError(f"{shown} is neither asserted nor entailed by the OWL 2 RL closure")
    if media_type == "text/html":
        response = Response(found.to_html(), mimetype="text/html")
    else:
        body = json.dumps(found.to_json(), ensure_ascii=False, indent=1)
        response = Response(body, mimetype="application/json")
    response.set_etag(etag)
    response.vary.add("Accept")
    return response
