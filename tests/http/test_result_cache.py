"""The result cache: a repeated query is answered from the answers of its data version, exactly as if it ran.

Correctness, not speed: a cached answer equals a fresh one (body and headers), is keyed by everything that can
change it (query, format, infer, graphs, parameters), revalidates with ETag/304, is never kept for queries whose
answer changes between runs, and is never served once a write made a new data version.
"""

from __future__ import annotations

import json
import logging

import pytest

from service import names
from service.runtime.result_cache import Answer, ResultCache
from service.web.state import EXTENSION, ServiceState

CO_HANDLERS = (
    f"PREFIX gk: <{names.GK}>\n"
    f"SELECT ?project ?section WHERE {{ ?project gk:coHandledBy ?section }} ORDER BY ?project ?section"
)
# The same query, laid out differently and commented: the same answer, the same cache entry.
CO_HANDLERS_REFORMATTED = (
    f"# which sections co-handle what\nPREFIX gk:   <{names.GK}>\n\n"
    f"SELECT ?project ?section\nWHERE {{\n  ?project gk:coHandledBy ?section # inferred\n}}\n"
    f"ORDER BY ?project ?section"
)
JSON = {"Accept": "application/sparql-results+json"}
SPARQL_QUERY = "application/sparql-query"
TOKEN = "cache-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Headers that differ between any two responses, cached or not.
PER_REQUEST = {"X-Request-Id", "Date", "Server"}


def state(app) -> ServiceState:
    return app.extensions[EXTENSION]


def _lookups(app, result: str) -> float:
    metrics = state(app).metrics
    return metrics.registry.get_sample_value("guian_kg_result_cache_lookups_total", {"result": result}) or 0.0


def _headers(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in PER_REQUEST}


def _rows(response) -> list[dict]:
    return json.loads(response.get_data())["results"]["bindings"]


@pytest.fixture
def fresh(make_app):
    """An app of the parametrised engine with an empty cache of its own."""
    return make_app()


@pytest.mark.parametrize("method", ["GET", "POST-form", "POST-direct"])
def test_repeat_is_answered_from_cache_with_identical_response(fresh, method, monkeypatch):
    client = fresh.test_client()

    def ask():
        if method == "GET":
            return client.get("/sparql", query_string={"query": CO_HANDLERS}, headers=JSON)
        if method == "POST-form":
            return client.post("/sparql", data={"query": CO_HANDLERS}, headers=JSON)
        return client.post("/sparql", data=CO_HANDLERS.encode(), content_type=SPARQL_QUERY, headers=JSON)

    first = ask()
    assert first.status_code == 200
    assert _rows(first), "the flagship relation has inferred rows"
    assert (_lookups(fresh, "miss"), _lookups(fresh, "hit")) == (1, 0)
    # The second one never reaches the view: the middleware answers it from the request's exact bytes.
    monkeypatch.setattr(state(fresh), "cache_identity", lambda job: pytest.fail("the view ran"))
    second = ask()
    assert _lookups(fresh, "hit") == 1
    assert second.status_code == 200
    assert second.get_data() == first.get_data()
    assert _headers(second) == _headers(first)
    assert first.headers["ETag"].startswith(f'"{state(fresh).served_version}-')
    assert first.headers["Cache-Control"] == "no-cache"
    assert second.headers["X-Request-Id"] != first.headers["X-Request-Id"]


def test_normalised_query_shares_the_answer_across_layout_and_methods(fresh):
    client = fresh.test_client()
    first = client.get("/sparql", query_string={"query": CO_HANDLERS}, headers=JSON)
    other = client.post("/sparql", data=CO_HANDLERS_REFORMATTED.encode(), content_type=SPARQL_QUERY, headers=JSON)
    assert (_lookups(fresh, "miss"), _lookups(fresh, "hit")) == (1, 1)
    assert other.headers["ETag"] == first.headers["ETag"]
    assert other.get_data() == first.get_data()


def test_everything_that_changes_the_answer_is_in_the_key(fresh):
    client = fresh.test_client()
    inferred = client.get("/sparql", query_string={"query": CO_HANDLERS}, headers=JSON)
    asserted = client.get("/sparql", query_string={"query": CO_HANDLERS, "infer": "false"}, headers=JSON)
    assert _rows(inferred) and _rows(asserted) == []  # co-handling is only ever inferred
    as_csv = client.get("/sparql", query_string={"query": CO_HANDLERS}, headers={"Accept": "text/csv"})
    assert as_csv.mimetype == "text/csv"
    assert as_csv.get_data(as_text=True).splitlines()[0] == "project,section"
    one_graph = client.get(
        "/sparql",
        query_string={"query": CO_HANDLERS, "default-graph-uri": names.ONTOLOGY_GRAPH},
        headers=JSON,
    )
    assert _rows(one_graph) == []
    etags = {r.headers["ETag"] for r in (inferred, asserted, as_csv, one_graph)}
    assert len(etags) == 4
    assert _lookups(fresh, "hit") == 0
    again = client.get("/sparql", query_string={"query": CO_HANDLERS, "infer": "false"}, headers=JSON)
    assert _rows(again) == [] and _lookups(fresh, "hit") == 1


def test_etag_revalidates_with_304_without_running(fresh):
    client = fresh.test_client()
    first = client.get("/sparql", query_string={"query": CO_HANDLERS}, headers=JSON)
    etag = first.headers["ETag"]
    misses = _lookups(fresh, "miss")
    # Through the middleware (the same bytes as before) and through Flask (a reformatted query, same answer).
    for query in (CO_HANDLERS, CO_HANDLERS_REFORMATTED):
        for condition in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            response = client.get(
                "/sparql", query_string={"query": query}, headers={**JSON, "If-None-Match": condition}
            )
            assert response.status_code == 304, (query[:20], condition)
            assert response.headers["ETag"] == etag
            assert response.get_data() == b""
    assert _lookups(fresh, "miss") == misses  # no query ran
    stale = client.get("/sparql", query_string={"query": CO_HANDLERS}, headers={**JSON, "If-None-Match": '"old"'})
    assert stale.status_code == 200 and stale.get_data() == first.get_data()


def test_named_queries_share_the_cache_and_etags(fresh, monkeypatch):
    client = fresh.test_client()
    first = client.get("/api/queries/co-handling-sections", headers=JSON)
    assert first.status_code == 200 and _rows(first)
    with monkeypatch.context() as patched:
        patched.setattr(state(fresh), "cache_identity", lambda job: pytest.fail("the view ran"))
        second = client.get("/api/queries/co-handling-sections", headers=JSON)
    assert second.get_data() == first.get_data()
    assert _headers(second) == _headers(first)
    assert _lookups(fresh, "hit") == 1
    revalidated = client.get(
        "/api/queries/co-handling-sections", headers={**JSON, "If-None-Match": first.headers["ETag"]}
    )
    assert revalidated.status_code == 304
    other = client.get("/api/queries/co-handling-sections?domain=education", headers=JSON)
    assert other.headers["ETag"] != first.headers["ETag"] and other.get_data() != first.get_data()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT (STRUUID() AS ?id) WHERE {}",
        "SELECT (RAND() AS ?r) WHERE {}",
        "SELECT (NOW() AS ?t) WHERE {}",
        "SELECT (BNODE() AS ?b) WHERE {}",
        "SELECT (uuid() AS ?u) WHERE {}",
    ],
)
def test_answers_that_change_between_runs_are_never_kept(fresh, query):
    client = fresh.test_client()
    answers = [client.get("/sparql", query_string={"query": query}, headers=JSON) for _ in range(2)]
    for response in answers:
        assert response.status_code == 200
        assert "ETag" not in response.headers
        assert response.headers["Cache-Control"] == "no-store"
    assert _lookups(fresh, "hit") == _lookups(fresh, "miss") == 0
    if "STRUUID" in query or "uuid" in query:
        assert answers[0].get_data() != answers[1].get_data()  # proof they both ran


def test_errors_are_never_kept(fresh, assert_problem):
    client = fresh.test_client()
    broken = "SELECT * WHERE { ?s ?p }"
    for _ in range(2):
        assert_problem(client.get("/sparql", query_string={"query": broken}), 400, "query-syntax")
    assert len(state(fresh).cache) == 0


def test_cache_off_runs_every_query(make_app):
    app = make_app(result_cache_mb=0)
    client = app.test_client()
    for _ in range(2):
        response = client.get("/sparql", query_string={"query": CO_HANDLERS}, headers=JSON)
        assert response.status_code == 200 and _rows(response)
        assert "ETag" not in response.headers
    assert _lookups(app, "hit") == _lookups(app, "miss") == 0


def test_hits_are_logged_and_counted(fresh, caplog):
    client = fresh.test_client()
    with caplog.at_level(logging.INFO, logger="guian_kg.query"):
        for _ in range(3):
            client.get("/sparql", query_string={"query": CO_HANDLERS}, headers={**JSON, "X-Request-Id": "abc-1"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "guian_kg.query"]
    assert [line["cache"] for line in lines] == ["miss", "hit", "hit"]
    assert {line["request_id"] for line in lines} == {"abc-1"}
    assert len({line["query_sha256"] for line in lines}) == 1
    assert all(line["status"] == 200 and line["form"] == "select" and line["rows"] > 0 for line in lines)
    metrics = state(fresh).metrics.registry
    assert metrics.get_sample_value(
        "guian_kg_http_requests_total", {"route": "/sparql", "method": "GET", "status": "200"}
    ) == pytest.approx(3)


def test_a_write_makes_every_cached_answer_stale(make_app):
    app = make_app(update_token=TOKEN, query_timeout=5.0)
    client = app.test_client()
    project = names.ID + "project/cache-test"
    query = f"SELECT ?section WHERE {{ <{project}> <{names.GK}coHandledBy> ?section }}"
    before = client.post("/sparql", data=query.encode(), content_type=SPARQL_QUERY, headers=JSON)
    assert _rows(before) == []
    again = client.post("/sparql", data=query.encode(), content_type=SPARQL_QUERY, headers=JSON)
    assert _lookups(app, "hit") == 1 and again.get_data() == before.get_data()
    insert = (
        f"INSERT DATA {{ GRAPH <{names.GRAPH}claim/cache-test> {{ <{project}> a <{names.GK}Project> ; "
        f"<{names.GK}touchesDomain> <{names.ID}domain/land-management> }} }}"
    )
    written = client.post("/update", data=insert.encode(), content_type="application/sparql-update", headers=AUTH)
    assert written.status_code == 200, written.get_data()
    version = json.loads(written.get_data())["data_version"]
    after = client.post("/sparql", data=query.encode(), content_type=SPARQL_QUERY, headers=JSON)  # no wait asked
    assert after.headers["Data-Version"] == version
    assert _rows(after), "the new project's co-handling sections are inferred"
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.headers["ETag"].startswith(f'"{version}-')
    stale = client.post(
        "/sparql",
        data=query.encode(),
        content_type=SPARQL_QUERY,
        headers={**JSON, "If-None-Match": before.headers["ETag"]},
    )
    assert stale.status_code == 200 and _rows(stale) == _rows(after)


def _answer(version: str, body: bytes) -> Answer:
    return Answer(version, f'"{version}-x"', "text/plain", body, "select", 1, "sha")


def test_lru_is_bounded_by_bytes_and_keeps_one_version():
    cache = ResultCache(8 * 2048, "v1")
    for i in range(40):
        cache.put(i, _answer("v1", b"x" * 1000))
    assert cache.bytes <= cache.max_bytes
    assert cache.get(39, "v1") is not None and cache.get(0, "v1") is None  # oldest evicted first
    cache.get(30, "v1")  # recently used: survives the next insertions
    for i in range(40, 45):
        cache.put(i, _answer("v1", b"x" * 1000))
    assert cache.get(30, "v1") is not None
    assert cache.get(39, "v2") is None  # never an answer of another version
    cache.put("big", _answer("v1", b"x" * (cache.max_bytes // 4)))
    assert cache.get("big", "v1") is None  # too large to keep
    cache.clear("v2")
    assert len(cache) == 0
    cache.put("late", _answer("v1", b"y"))  # computed on the old version after the swap: dropped
    assert cache.get("late", "v1") is None and len(cache) == 0
    cache.put("new", _answer("v2", b"z"))
    assert cache.get("new", "v2") is not None


def test_resource_pages_reuse_the_answers_of_their_queries(fresh):
    client = fresh.test_client()
    for accept in ("text/turtle", "text/html"):
        first = client.get("/id/section/6", headers={"Accept": accept})
        hits = _lookups(fresh, "hit")
        second = client.get("/id/section/6", headers={"Accept": accept})
        assert first.status_code == second.status_code == 200
        assert second.get_data() == first.get_data()
        assert _lookups(fresh, "hit") > hits, accept
