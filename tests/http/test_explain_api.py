"""GET /api/explain: JSON by default, HTML for browsers, 404 not-entailed, 400 invalid-parameter."""

from __future__ import annotations

import pytest

from service import names
from service.resources import source_document
from service.web.routes.explain import EXPLAINERS_KEY
from service.web.state import EXTENSION

PROJECT = names.ID + "project/major-industrial-project"
FLAGSHIP = {"s": f"<{PROJECT}>", "p": "gk:coHandledBy", "o": "id:section/6"}


@pytest.fixture(params=["embedded"])
def engine(request: pytest.FixtureRequest) -> str:
    """Explanations do not go through a query engine: one engine is enough here."""
    return request.param


def test_json_by_default(client):
    response = client.get("/api/explain", query_string=FLAGSHIP)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "inferred"
    assert body["rule"]["id"] == "prp-spo2"
    assert body["triple"]["o"] == f"<{names.ID}section/6>"
    assert body["triple"]["labels"]["o"] == "Secretarial Section 6"
    source = source_document().read_text(encoding="utf-8")
    quotes = [src["quote"] for premise in body["premises"] for src in premise["sources"] if src["quote"]]
    quotes += [src["quote"] for p in body["premises"] for q in p["premises"] for src in q["sources"] if src["quote"]]
    assert len(quotes) >= 1 and all(q in source for q in quotes)
    # the other premise is not the source's: the assumption that reads 土地 as land management, named apart
    assumed = [src for premise in body["premises"] for src in premise["sources"] if src["kind"] == "assumption"]
    assert [src["assumption"] for src in assumed] == [f"{names.ID}assumption/land-is-land-management"]
    assert assumed[0]["quote"] is None and assumed[0]["rationale"]
    assert [a["assumption"] for a in body["assumptions"]] == [assumed[0]["assumption"]]
    assert "names only" in body["note"]
    assert {n["triple"]["o"] for n in body["stated"]} == {f"<{names.ID}section/{n}>" for n in (5, 7, 8)}


def test_html_for_browsers_and_format_html(client):
    for kwargs in (
        {"headers": {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}},
        {"query_string": {**FLAGSHIP, "format": "html"}, "headers": {"Accept": "application/json"}},
    ):
        response = client.get("/api/explain", **({"query_string": FLAGSHIP} | kwargs))
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        page = response.get_data(as_text=True)
        assert "Secretarial Section 6" in page and "土地管理" in page and "prp-spo2" in page
        assert page.count("/api/explain?s=") >= 5  # every node links to its own explanation
        assert "names only" in page


def test_asserted_triple_with_a_literal_object(client):
    response = client.get("/api/explain", query_string={"s": "section/6", "p": "rdfs:label", "o": '"秘书六科"@zh'})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "asserted" and body["rule"] is None
    assert body["sources"][0]["graph"].startswith(names.CLAIM_GRAPH_PREFIX)


def test_not_entailed_is_404(client, assert_problem):
    response = client.get("/api/explain", query_string={**FLAGSHIP, "o": "id:section/1"})
    problem = assert_problem(response, 404, "not-entailed")
    assert "section/1" in problem["detail"]


@pytest.mark.parametrize(
    "query",
    [
        {"p": "gk:coHandledBy", "o": "id:section/6"},
        {**FLAGSHIP, "s": "<not an iri>"},
        {**FLAGSHIP, "s": '"a literal"'},
        {**FLAGSHIP, "p": "nope:coHandledBy"},
        {**FLAGSHIP, "o": '"unterminated'},
        {**FLAGSHIP, "format": "xml"},
        {**FLAGSHIP, "max_depth": "0"},
        {**FLAGSHIP, "max_nodes": "many"},
    ],
)
def test_bad_parameters_are_400(client, assert_problem, query):
    assert_problem(client.get("/api/explain", query_string=query), 400, "invalid-parameter")


def test_unacceptable_accept_is_406(client, assert_problem):
    response = client.get("/api/explain", query_string=FLAGSHIP, headers={"Accept": "image/png"})
    assert_problem(response, 406, "not-acceptable")


def test_bounds_reach_the_client(client):
    body = client.get("/api/explain", query_string={**FLAGSHIP, "max_depth": "1"}).get_json()
    cut = [p for p in body["premises"] if p["truncated"]]
    assert cut and all(p["limit"] == "max-depth" for p in cut)


def test_etag_and_not_modified(client):
    first = client.get("/api/explain", query_string=FLAGSHIP)
    etag = first.headers["ETag"]
    again = client.get("/api/explain", query_string=FLAGSHIP, headers={"If-None-Match": etag})
    assert again.status_code == 304
    html = client.get("/api/explain", query_string={**FLAGSHIP, "format": "html"})
    assert html.headers["ETag"] != etag


def test_explainer_is_built_once_and_kept_on_the_app(app, client):
    client.get("/api/explain", query_string=FLAGSHIP)
    explainers, snapshot = app.extensions[EXPLAINERS_KEY], app.extensions[EXTENSION].snapshot
    held = explainers.for_snapshot(snapshot)
    client.get("/api/explain", query_string={**FLAGSHIP, "o": "id:section/5"})
    assert app.extensions[EXPLAINERS_KEY] is explainers and explainers.for_snapshot(snapshot) is held
