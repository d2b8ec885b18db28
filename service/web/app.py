"""The application factory: settings, snapshot, executor, journal, routes."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any, NamedTuple

from flask import Flask, current_app, request
from werkzeug.exceptions import HTTPException

from service import names
from service.config import Settings, export_settings, load_settings
from service.data import rules
from service.data.builder import Delta, IncrementalBuilder
from service.data.snapshots import Snapshot, build_newest, load_snapshot, nquads_of, open_journal, snapshot_of
from service.data.sources import shipped_graphs
from service.engines.factory import engine_for
from service.engines.remote_store import RemoteStore
from service.errors import ConfigError, GuianError
from service.journal.follower import Follower
from service.journal.log import Journal
from service.journal.protection import SourceGraphs
from service.journal.writer import Writer, ephemeral_store_dir, run_build
from service.runtime.executor import QueryExecutor
from service.runtime.mirror import RemoteMirror, lines_in_graph
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

NO_WAIT = frozenset({"ops.healthz", "ops.readyz", "ops.metrics", "static"})


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

    remote = settings.engine == "remote"
    if (settings.update_token or remote) and settings.store_dir is None:
        # Writes always go through a journal, and the remote engine keeps its mirror in one; without --store-dir
        # it lives in a temporary folder (lost at exit).
        settings = replace(settings, store_dir=ephemeral_store_dir())
        weakref.finalize(app, shutil.rmtree, settings.store_dir, True)
        if settings.update_token:
            log.warning(
                "writes are enabled without --store-dir: they live in %s until the service stops", settings.store_dir
            )
    mirror = _mirror(settings) if remote else None
    snapshot = load_snapshot(settings)
    executor = QueryExecutor(settings, engine_for, snapshot)  # forks its query workers: after the server's fork
    state = ServiceState(settings, snapshot, executor)
    if settings.store_dir is not None:
        store = open_journal(settings)
        if settings.update_token:
            with store.locked(None):
                store.recover()  # cut a torn tail a crash left, before anything reads or appends
            limits = (settings.query_timeout, settings.query_memory_mb, settings.max_result_rows)
            source = SourceGraphs(() if settings.source_writes else shipped_graphs(settings.base_iri, settings.data))
            state.writer = Writer(store, snapshot.inferred_graph, *limits, source=source, downstream=mirror)
            weakref.finalize(app, state.writer.close)
        builder = IncrementalBuilder(snapshot.inferred_graph) if settings.reasoner == "rl" else None
        state.follower = Follower(
            store, partial(_build_newest, settings, builder), partial(_install, state), served=snapshot.version
        )
        if builder is not None and (settings.update_token or mirror is not None):
            # The builder's first build runs the closure over the whole data: here, in the background, rather than
            # in the first read after the first write.
            threading.Thread(target=_warm, args=(builder, store), name="guian-kg-builder-warm", daemon=True).start()
    if mirror is not None:
        assert state.follower is not None
        state.mirror = mirror
        mirror.build_head = partial(_build_head, state.follower)
        mirror.inferred_lines = partial(_inferred_lines, settings)
        mirror.sync(full=True)  # the store's inferred graph made ours (the first process to start does it)
        mirror.watch()
        weakref.finalize(app, mirror.stop)
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


class _Built(NamedTuple):
    """A version built for serving; the delta that leads to it from the version before, (that version, Delta), or
    None; and what writes its N-Quads file when that was left for after serving it (None: written)."""

    snapshot: Snapshot
    delta: tuple[str, Delta] | None = None
    finish: Callable[[], None] | None = None

    @property
    def version(self) -> str:
        return self.snapshot.version


def _build_newest(settings: Settings, builder: IncrementalBuilder | None) -> _Built:
    """Materialise the store's newest version: here, from this process's previous closure (incremental
    reasoning), or in a child process (the whole closure; owlrl where the rule engine cannot)."""
    if builder is not None:
        try:
            summary = build_newest(settings, builder, defer=True)
            return _Built(snapshot_of(settings, summary["version"]), summary.get("delta"), summary.get("finish"))
        except rules.Unsupported as exc:
            log.warning("the rule engine cannot maintain this closure (%s): building in a child process", exc)
    env = dict(os.environ)
    export_settings(settings, env)
    return _Built(snapshot_of(settings, run_build(env)["version"]))


def _install(state: ServiceState, built: _Built) -> bool:
    """Serve a new version with a new executor (the old one closes when the requests that use it have ended): the
    old executor's zygote moved forward by the delta when there is one (its file is written meanwhile), else one
    that loads the file."""
    current = state.executor  # outside a request: the one being served
    if current is not None and current.closed:
        return False  # the app was shut down
    executor = None
    if current is not None and built.delta is not None and built.delta[0] == current.snapshot.version:
        executor = QueryExecutor.moved_from(current, built.snapshot, *built.delta)
    if built.finish is not None:
        if executor is None:
            built.finish()  # a whole load reads the file
        else:
            threading.Thread(target=_finish, args=(built,), name="guian-kg-version-file", daemon=True).start()
    moved = executor is not None
    if executor is None:
        executor = QueryExecutor(state.settings, engine_for, built.snapshot)
    state.swap(built.snapshot, executor)
    log.info("now serving data version %s (%s)", built.version, "moved by its delta" if moved else "loaded")
    return True


def _mirror(settings: Settings) -> RemoteMirror:
    """The mirror of the remote store in the store folder, made equal to the store's graphs now.

    Our graphs are those named under the deployment's graph namespace and those of the source data; the store's
    own (Virtuoso's system graphs) are left alone.

    Raises:
        ConfigError: when the store cannot be read.
    """
    assert settings.remote_query is not None
    journal = open_journal(settings)
    namespace = names.rebase(names.GRAPH, settings.base_iri)
    source = shipped_graphs(settings.base_iri, settings.data)
    remote = RemoteStore(
        settings.remote_query,
        settings.remote_update,
        names.rebase(names.INFERRED_GRAPH, settings.base_iri),
        lambda iri: iri.startswith(namespace) or iri in source,
        timeout=max(settings.query_timeout * 10, 300.0),
    )
    mirror = RemoteMirror(remote, journal, settings.remote_poll, settings.remote_recheck)
    try:
        mirror.adopt()
    except GuianError as exc:
        raise ConfigError(f"the remote store <{settings.remote_query}> cannot be read: {exc.detail}") from None
    return mirror


def _build_head(follower: Follower) -> tuple[str, tuple[str, Delta] | None]:
    """Build the journal's head in this process now (the mirror needs its delta before acknowledging a write);
    it is installed in the background."""
    built = follower.build()
    follower.offer(built)
    return built.version, built.delta


def _inferred_lines(settings: Settings, version: str) -> set[str]:
    """The inferred graph's lines of a version built in the cache (waiting while its file is written)."""
    snapshot = snapshot_of(settings, version)
    with open(nquads_of(snapshot), encoding="utf-8") as nquads:
        return lines_in_graph((line.rstrip("\n") for line in nquads), snapshot.inferred_graph)


def _warm(builder: IncrementalBuilder, store: Journal) -> None:
    try:
        builder.materialise(store, store.head())
    except Exception:  # the follower's next build runs the whole closure again
        log.exception("preparing the incremental closure failed")


def _finish(built: _Built) -> None:
    assert built.finish is not None
    try:
        built.finish()
    except OSError:
        log.exception("writing the file of data version %s failed", built.version)


def _release_version(exc: BaseException | None) -> None:
    state: ServiceState = current_app.extensions[EXTENSION]
    state.release()


def _store_write() -> bool:
    return request.endpoint == "store.graph_store" and request.method in ("PUT", "POST", "DELETE")


def _follow_journal() -> None:
    if request.endpoint in NO_WAIT or request.endpoint == "sparql.update" or _store_write():
        return  # liveness, readiness and metrics answer at once; a write is evaluated at the journal's head
    state: ServiceState = current_app.extensions[EXTENSION]
    state.follow()
