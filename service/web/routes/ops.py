"""Operations: /healthz (alive), /readyz (serving the newest acknowledged version), /metrics (Prometheus text)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.errors import NotReadyError
from service.web.state import state

bp = Blueprint("ops", __name__)
# How long /readyz waits for this process to serve a write acknowledged a moment ago (a probe's timeout is longer).
READY_WAIT_SECONDS = 2.0


@bp.route("/healthz", methods=["GET"])
def healthz() -> Response:
    """The process is alive and answering."""
    response = jsonify(status="ok")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/readyz", methods=["GET"])
def readyz() -> Response:
    """200 once the data snapshot and the query executor are loaded and serve every acknowledged write; else 503.

    Raises:
        NotReadyError: while the snapshot or the executor is missing, or the journal holds a newer position.
    """
    st = state()
    # before anything pins this request's version: a write a moment ago, the probe waits for its version
    if not st.current(wait=READY_WAIT_SECONDS):
        raise NotReadyError(f"serving data version {st.served_version}; the journal holds newer acknowledged writes")
    if not st.ready:
        raise NotReadyError("the data snapshot or the query executor is not loaded yet")
    response = jsonify(status="ready", data_version=st.snapshot.version, engine=st.engine_name)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/metrics", methods=["GET"])
def metrics() -> Response:
    """The app's Prometheus metrics in the text exposition format."""
    return Response(generate_latest(state().metrics.registry), content_type=CONTENT_TYPE_LATEST)
