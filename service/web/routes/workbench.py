"""What the query editor asks while you type: GET /api/complete (names to complete) and /api/lint (syntax check).

Completion reads the index of the data version this request is pinned to (`service.completion`), built by one
internal query the first time that version is asked about; the lint parses the text without running it.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from service import completion, names
from service.engines.base import QueryJob
from service.errors import InvalidParameterError, NotReadyError
from service.sparql.protocol import decode_form
from service.web.state import EXTENSION, state

bp = Blueprint("workbench", __name__)

COMPLETIONS_KEY = "guian_kg.completions"


@bp.record_once
def _start(setup: BlueprintSetupState) -> None:
    settings = setup.app.extensions[EXTENSION].settings
    setup.app.extensions[COMPLETIONS_KEY] = completion.Completions(names.prefixes(settings.base_iri))


def _json(body: object) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), content_type="application/json")
    response.headers["Cache-Control"] = "no-store"  # the next data version may answer differently
    return response


def _rows(query: str) -> list[dict]:
    """The SPARQL JSON rows of an internal SELECT over the asserted graphs of the pinned data version."""
    st = state()
    job = QueryJob(query, "json", infer=False, max_rows=st.settings.max_result_rows)
    return json.loads(st.run(job, st.settings.query_timeout).body)["results"]["bindings"]


@bp.route("/api/complete", methods=["GET"])
def complete() -> Response:
    """Completions for the text before the caret: `prefix=` (the typed text), `kind=`, `lang=`, `limit=`.

    Raises:
        InvalidParameterError: an unknown kind or language, a bad limit, over-long text.
    """
    typed, kind, lang, limit = completion.parse_request(request.args)
    snapshot = state().snapshot
    if snapshot is None:
        raise NotReadyError("the data snapshot is not loaded")
    index = current_app.extensions[COMPLETIONS_KEY].index(snapshot.version, _rows)
    items = [entry.as_json(lang) for entry in index.complete(typed, kind, lang, limit)]
    return _json({"data_version": index.version, "prefix": typed, "kind": kind, "items": items})


@bp.route("/api/lint", methods=["GET", "POST"])
def lint() -> Response:
    """The query's syntax problem, if any, without running it: `{"ok": true, "form"}` or `{"ok": false, "problem"}`.

    Raises:
        InvalidParameterError: no `query` parameter.
    """
    if request.method == "POST" and request.mimetype == "application/sparql-query":
        text = request.get_data(as_text=True)
    else:
        pairs = decode_form(request.get_data() if request.method == "POST" else request.query_string)
        found = [value for key, value in pairs if key == "query"]
        if len(found) != 1:
            raise InvalidParameterError("give the query text once, as query=", parameter="query")
        text = found[0]
    settings = state().settings
    return _json(completion.lint(text, settings.service_allow, settings.base_iri))
