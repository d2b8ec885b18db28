"""GET/POST /api/ask?q=…: a question in Chinese or English answered from the named-query library (JSON)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, request

from service.ask import Asker, Runner
from service.data.derived import select_on_version
from service.data.snapshots import Snapshot, nquads_of
from service.engines.base import QueryJob
from service.errors import InvalidParameterError, NotReadyError, UnsupportedMediaTypeError
from service.sparql.protocol import decode_form
from service.web.routes.api import library
from service.web.state import state

bp = Blueprint("ask", __name__)

EXTENSION = "guian_kg.asker"
_LOCK = threading.Lock()


def asker() -> Asker:
    """The app's asker (one lexicon per data version), built on first use."""
    with _LOCK:
        held = current_app.extensions.get(EXTENSION)
        if held is None:
            held = Asker(library(), state().settings.base_iri)
            current_app.extensions[EXTENSION] = held
    return held


def run_library_query(text: str, bindings: tuple[tuple[str, str], ...]) -> Mapping[str, Any]:
    """Run a library query's text and bindings on the pinned data version (through the result cache)."""
    st = state()
    settings = st.settings
    job = QueryJob(text, "json", infer=settings.infer, max_rows=settings.max_result_rows, bindings=bindings)
    return json.loads(st.query(job, settings.query_timeout).body)


def _labels_runner(snapshot: Snapshot) -> Runner | None:
    """On the remote engine, the lexicon's queries answered from the version's own quads (the mirror's copy of the
    store) rather than by the store, whose dialect must not change what a question's words mean."""
    st = state()
    if st.engine_name != "remote":
        return None
    nquads, leave_out = nquads_of(snapshot), None if st.settings.infer else snapshot.inferred_graph
    return lambda text, bindings: select_on_version(nquads, leave_out, text)


def _question() -> str:
    """The q parameter of the URL (GET) or of the URL-encoded form (POST), given once."""
    pairs = list(decode_form(request.query_string, "URL query string"))
    if request.method == "POST":
        if request.mimetype not in ("application/x-www-form-urlencoded", ""):
            raise UnsupportedMediaTypeError("POST /api/ask takes a form (application/x-www-form-urlencoded) with q=")
        pairs += list(decode_form(request.get_data(cache=False), "form body"))
    values = [value for key, value in pairs if key == "q"]
    if len(values) != 1:
        raise InvalidParameterError("give the question once, as q=", parameter="q")
    return values[0]


@bp.route("/api/ask", methods=["GET", "POST"])
def ask() -> Response:
    """The answer to q: the named query it maps to, its parameters and SPARQL, sentences, results and basis.

    Raises:
        InvalidParameterError: q missing, given twice, empty or too long (400).
        BadRequestError: a POST body that is not a form (400).
    """
    question = _question()
    snapshot = state().snapshot
    if snapshot is None:
        raise NotReadyError("the data snapshot is not loaded")
    document = asker().ask(question, run_library_query, snapshot.version, labels=_labels_runner(snapshot))
    response = Response(json.dumps(document, ensure_ascii=False), content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
