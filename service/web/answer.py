"""The one path from a query to a response: cache, executor, headers (shared by /sparql, named queries and pages)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request, url_for
from rdflib import Graph

from service.describe import serialize
from service.engines.base import QueryJob
from service.errors import NotAcceptableError
from service.runtime.result_cache import Answer
from service.sparql.formats import Format, spreadsheet_safe
from service.sparql.lexer import check_query
from service.sparql.protocol import DOWNLOAD, FORM_FORMATS, RDF_FORMATS, choose_format
from service.sparql.syntax import check_syntax
from service.web.headers import answer_headers
from service.web.state import state


def answer_query(
    text: str,
    requested_format: str | None,
    infer: bool | None,
    timeout: float | None,
    **job_options: Any,
) -> Response:
    """Run a client's query (from /sparql or a named query) and answer it, negotiated, with an ETag if it is kept.

    A repeated deterministic query is answered from the result cache of its data version; a client that already
    holds that answer (If-None-Match) gets 304 without the query running. `job_options` are QueryJob fields
    (graphs, base IRI, bindings).
    """
    st = state()
    settings = st.settings
    with st.observe_query(text) as record:
        record.form = check_query(text, settings.service_allow)
        try:
            fmt = choose_format(FORM_FORMATS[record.form], request.headers.get("Accept"), requested_format)
        except NotAcceptableError:
            check_syntax(text, job_options.get("base_iri"))  # a syntax error (400) wins over the format (406)
            raise
        job = QueryJob(
            query=text,
            result_format=fmt.key,
            infer=settings.infer if infer is None else infer,
            max_rows=settings.max_result_rows,
            form=record.form,
            **job_options,
        )
        limit = settings.query_timeout if timeout is None else timeout  # the executor clamps it to the limit
        if request.args.get("download") == DOWNLOAD and fmt.key in ("csv", "tsv"):
            outcome = st.run(job, limit)
            record.rows = outcome.rows
            return spreadsheet_download(outcome.body, fmt)
        key = st.cache_identity(job)
        if key is None:
            outcome = st.run(job, limit)
            record.rows = outcome.rows
            response = Response(outcome.body, content_type=fmt.content_type)
            response.headers["Cache-Control"] = "no-store"  # its answer may differ next time
            response.vary.add("Accept")
            return response
        if request.if_none_match.contains_weak(key[1].strip('"')):
            record.status, record.cache = 304, "revalidated"
            return not_modified(key[1].strip('"'))
        answer = st.run_cached(job, limit, key, record)
        record.rows = answer.rows
        request_key = request.environ.get(REQUEST_KEY)
        if request_key is not None:
            st.cache.put(request_key, answer)  # the same bytes again: answered before Flask (service.web.fast_path)
    return cached_response(answer)


def spreadsheet_download(body: bytes, fmt: Format) -> Response:
    """Results as a file for a spreadsheet: formula-safe cells, an attachment (the UI's CSV/TSV links)."""
    response = Response(spreadsheet_safe(body, fmt.key), content_type=fmt.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="results.{fmt.key}"'
    response.headers["Cache-Control"] = "no-store"
    return response


REQUEST_KEY = "guian_kg.request_key"  # WSGI environ: the exact bytes of a request that may be answered from cache


def cached_response(answer: Answer) -> Response:
    """A 200 response carrying a kept answer with its ETag."""
    return Response(answer.body, headers=answer_headers(answer))


def rdf_response(body: bytes, fmt: Format, etag: str) -> Response:
    """A negotiated response labelled with its real media type and a strong ETag."""
    response = Response(body, content_type=fmt.content_type)
    response.set_etag(etag)
    response.vary.add("Accept")
    return response


def not_modified(etag: str) -> Response:
    """304 for a client whose If-None-Match already holds this representation."""
    response = Response(status=304)
    response.set_etag(etag)
    response.vary.add("Accept")
    return response


def description_response(
    kind: str, build: Callable[..., Graph], requested_format: str | None, extend: Callable[[Graph], None] | None = None
) -> Response:
    """The service description or VoID (`build`) of the current data version, negotiated, with a per-format ETag."""
    st = state()
    snapshot = st.snapshot
    fmt = choose_format(RDF_FORMATS, request.headers.get("Accept"), requested_format)
    etag = f"{snapshot.version}-{kind}-{fmt.key}"
    if request.if_none_match.contains(etag):
        return not_modified(etag)
    graph = build(
        st.settings,
        snapshot.graphs,
        snapshot.inferred_graph,
        st.stats(),
        endpoint=url_for("sparql.sparql", _external=True),
        version=snapshot.version,
    )
    if extend is not None:
        extend(graph)
    return rdf_response(serialize(graph, fmt), fmt, etag)
