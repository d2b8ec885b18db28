"""The application factory: settings, snapshot, executor, journal, routes."""

from __future__ import annotations

import logging
import os
import shutil
import weakref
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from flask import Flask, current_app
from werkzeug.exceptions import HTTPException

from service.config import Settings, export_settings, load_settings
from service.data.snapshots import Snapshot, load_snapshot, open_journal, snapshot_of
from service.data.sources import shipped_graphs
from service.engines.factory import engine_for
from service.errors import GuianError
from service.journal.follower import Follower
from service.journal.protection import SourceGraphs
from service.journal.writer import Writer, ephemeral_store_dir, run_build
from service.runtime.executor import QueryExecutor
from service.web.bodies import guard_request
from service.web.fast_path import FastAnswers
from service.web.headers import assign_request_id, common_headers, count_request
from service.web.origin import PublicOrigin, public_url
from service.web.problems import http_error, render_problem, unexpected_error
from service.web.routes.api import bp as api_bp
from service.web.routes.ask import bp as ask_bp
from service.web.routes.explain import bp as explain_bp
from service.web.routes.graph_store import bp as store_bp
from service.web.routes.ops import bp as ops_bp
from service.web.routes.pages import bp as pages_bp
from service.web.routes.sparql import bp as sparql_bp
from service.web.routes.void import bp as void_bp
from service.web.routes.workbench import bp as workbench_bp
from service.web.state import EXTENSION, ServiceState

log = logging.getLogger("guian_kg.app")


BLUEPRINTS = (sparql_bp, store_bp, void_bp, ops_bp, pages_bp, explain_bp, api_bp, workbench_bp, ask_bp)


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """A new app: settings from `overrides` (flags) > GUIAN_KG_* > defaults, data loaded, executor started.

    Raises:
        ConfigError: invalid settings or data (before anything is served).
    """
    settings = load_settings(overrides)
    app = Flask("service.web")
    app.url_map.strict_slashes = False  # /sparql/ (the W3C tests' path) is /sparql, never a redirect
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    logging.getLogger("guian_kg").setLevel(settings.log_level.upper())

    if settings.update_token and settings.store_dir is None:
        # Writes always go through a journal; without --store-dir it lives in a temporary folder (lost at exit).
        settings = replace(settings, store_dir=ephemeral_store_dir())
        weakref.finalize(app, shutil.rmtree, settings.store_dir, True)
        log.warning(
            "writes are enabled without --store-dir: they live in %s until the service stops", settings.store_dir
        )
    snapshot = load_snapshot(settings)
    executor = QueryExecutor(settings, engine_for, snapshot)  # forks its query workers: after the server's fork
    state = ServiceState(settings, snapshot, executor)
    if settings.store_dir is not None:
        store = open_journal(settings)
        if settings.update_token:
            with store.locked(None):
                store.recover()  # cut a torn tail a crash left, before anything reads or appends
            limits = (settings.query_timeout, settings.query_memory_mb, settings.max_result_rows)
            source = SourceGraphs(() if settings.source_writes else shipped_graphs(settings.base_iri))
            state.writer = Writer(store, snapshot.inferred_graph, *limits, source=source)
            weakref.finalize(app, state.writer.close)
        state.follower = Follower(
            store, partial(_build_newest, settings), partial(_install, state), served=snapshot.version
        )
    app.extensions[EXTENSION] = state

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.before_request(assign_request_id)
    app.before_request(guard_request)
    app.before_request(_follow_journal)
    app.after_request(common_headers)
    app.teardown_request(_release_version)
    app.after_request(count_request)
    app.register_error_handler(GuianError, render_problem)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
    app.wsgi_app = PublicOrigin(FastAnswers(app, state), public_url(settings))  # type: ignore[method-assign]
    return app


def behind_guard(app: Flask) -> Flask:
    """Mark `app` as served behind the connection guard (`guian-kg serve`), which hands every request over with
    its body whole and enforces the body deadline itself: bodies are then read in the request's own thread."""
    app.extensions[EXTENSION].bodies.whole = True
    return app


def _build_newest(settings: Settings) -> Snapshot:
    """Materialise the store's newest version in a child process and return its snapshot."""
    env = dict(os.environ)
    export_settings(settings, env)
    return snapshot_of(settings, run_build(env)["version"])


def _install(state: ServiceState, snapshot: Snapshot) -> bool:
    """Serve `snapshot` with a new executor (the old one closes when the requests that use it have ended)."""
    current = state.executor  # outside a request: the one being served
    if current is not None and current.closed:
        return False  # the app was shut down
    state.swap(snapshot, QueryExecutor(state.settings, engine_for, snapshot))
    log.info("now serving data version %s", snapshot.version)
    return True


def _release_version(exc: BaseException | None) -> None:
    state: ServiceState = current_app.extensions[EXTENSION]
    state.release()


def _follow_journal() -> None:
    state: ServiceState = current_app.extensions[EXTENSION]
    state.follow()
