"""What the editor asks while you type: /api/complete (names of this graph) and /api/lint (syntax, not run)."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from service import names

TOKEN = "workbench-token"
GK = "https://w3id.org/guian-kg/ontology#"


def complete(client, **params):
    response = client.get("/api/complete", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.json


def iris(body) -> list[str]:
    return [item["iri"] for item in body["items"]]


def test_a_section_completes_by_its_chinese_label(client):
    body = complete(client, prefix="秘书六科", lang="zh")
    first = body["items"][0]
    assert first["iri"] == names.ID + "section/6"
    assert first["insert"] == "id:section/6"
    assert first["label"] == "秘书六科"
    assert first["labels"]["en"] == "Secretarial Section 6"
    assert body["data_version"]


def test_english_words_find_a_domain_and_its_label_is_in_the_asked_language(client):
    body = complete(client, prefix="land manage", lang="en")
    assert names.ID + "domain/land-management" in iris(body)[:3]
    item = body["items"][iris(body).index(names.ID + "domain/land-management")]
    assert item["label"].lower().startswith("land")
    assert complete(client, prefix="LAND MANAGE")["items"][0]["iri"] == iris(body)[0]  # case does not matter


def test_properties_and_classes_carry_both_labels_and_a_definition(client):
    prop = complete(client, prefix="gk:handles", kind="property")
    assert prop["items"][0]["iri"] == GK + "handlesDomain"
    assert prop["items"][0]["insert"] == "gk:handlesDomain"
    assert set(prop["items"][0]["labels"]) == {"en", "zh"}
    assert all(item["kind"] == "property" for item in prop["items"])
    klass = complete(client, prefix="SecretarialSection", kind="class", lang="zh")
    top = klass["items"][0]
    assert top["iri"] == GK + "SecretarialSection"
    assert top["definition"] and top["definitions"]  # hover text
    assert top["label"] == top["labels"]["zh"]


def test_prefixes_complete_and_an_iri_start_completes(client):
    body = complete(client, prefix="sk", kind="prefix")
    assert [item["insert"] for item in body["items"]] == ["skos:"]
    assert body["items"][0]["iri"] == "http://www.w3.org/2004/02/skos/core#"
    typed = complete(client, prefix="<" + names.ID + "section/")
    assert iris(typed) and all(i.startswith(names.ID + "section/") for i in iris(typed))
    assert len(complete(client, prefix="", limit=5)["items"]) == 5


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"kind": "nonsense"}, "kind"), ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"lang": "fr"}, "lang")],
)
def test_bad_completion_requests_are_problems(client, assert_problem, params, parameter):
    problem = assert_problem(client.get("/api/complete", query_string=params), 400, "invalid-parameter")
    assert problem["parameter"] == parameter
    assert_problem(client.get("/api/complete", query_string={"prefix": "x" * 500}), 400, "invalid-parameter")


def test_lint_reports_line_and_column_without_running(client, assert_problem):
    bad = client.post("/api/lint", data={"query": "SELECT ?s WHERE {\n  ?s ?p ?o .\n  FILTR(?o)\n}\n"})
    assert bad.status_code == 200
    problem = bad.json["problem"]
    assert bad.json["ok"] is False and problem["code"] == "query-syntax" and problem["line"] == 3
    assert problem["column"] >= 1
    good = client.get("/api/lint", query_string={"query": "ASK { ?s ?p ?o }"})
    assert good.json == {"ok": True, "form": "ask"}
    update = client.post(
        "/api/lint", data="INSERT DATA { <urn:a> <urn:b> <urn:c> }", content_type="application/sparql-query"
    )
    assert update.json["ok"] is False and update.json["problem"]["line"] == 1
    assert_problem(client.get("/api/lint"), 400, "invalid-parameter")


def test_lint_never_calls_a_service(client, listener):
    url, seen = listener
    body = client.post("/api/lint", data={"query": f"SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}"}).json
    assert body["ok"] is False and body["problem"]["code"] == "service-forbidden"
    assert seen == []


def test_a_resource_written_by_an_update_completes_once_its_version_is_served(make_app):
    app = make_app(update_token=TOKEN, query_timeout=5.0)
    client = app.test_client()
    before = complete(client, prefix="智慧停车试点")
    assert before["items"] == []
    written = client.post(
        "/update",
        data={
            "update": "INSERT DATA { GRAPH <https://w3id.org/guian-kg/graph/test> { "
            "<https://w3id.org/guian-kg/id/project/smart-parking> "
            '<http://www.w3.org/2000/01/rdf-schema#label> "智慧停车试点项目"@zh, "Smart parking pilot"@en } }'
        },
        headers={"Authorization": "Bearer " + TOKEN},
    )
    assert written.status_code == 200, written.get_data(as_text=True)
    app.extensions["guian_kg"].follower.catch_up()
    after = complete(client, prefix="智慧停车试点")
    assert after["data_version"] == written.json["data_version"] != before["data_version"]
    assert iris(after) == ["https://w3id.org/guian-kg/id/project/smart-parking"]
    assert after["items"][0]["insert"] == "id:project/smart-parking"


def test_every_named_query_links_to_the_editor(client):
    queries = client.get("/api/queries").json["queries"]
    assert queries and all(q["editor"].endswith(f"/?example={q['name']}") for q in queries)
    home = client.get(queries[0]["editor"], headers={"Accept": "text/html"})
    assert home.status_code == 200 and b"editor.bundle.js" in home.data


def test_a_resource_page_opens_its_statements_in_the_editor(client):
    page = client.get("/id/section/6?lang=en", headers={"Accept": "text/html"}).get_data(as_text=True)
    link = re.search(r'<a class="open-in-editor" href="([^"]+)">Open in editor</a>', page)
    assert link, "no open-in-editor link"
    fragment = parse_qs(urlsplit(html.unescape(link[1])).fragment)
    assert fragment["query"] == [f"SELECT ?property ?value WHERE {{\n  <{names.ID}section/6> ?property ?value\n}}\n"]
    assert fragment["infer"] == ["true"]
