"""GET/POST /api/ask: the question set, the answer document's shape, refusals, errors, and labels read live."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from askset import questions, score

from service import names

QUESTIONS = questions()
TOKEN = "ask-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def embedded(_shared_apps):
    return _shared_apps["embedded"].test_client()


def ask(client, q: str, **kwargs):
    response = client.get("/api/ask", query_string={"q": q}, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.json


def test_the_question_set_is_what_it_claims():
    langs = Counter("zh" if any("\u4e00" <= c <= "\u9fff" for c in e["q"]) else "en" for e in QUESTIONS)
    assert len(QUESTIONS) >= 150 and abs(langs["zh"] - langs["en"]) <= len(QUESTIONS) * 0.1, langs
    assert sum(e["query"] is None for e in QUESTIONS) >= 20  # unanswerable and out-of-scope ones
    assert len({e["query"] for e in QUESTIONS if e["query"]}) >= 12  # every kind of question the library answers


def test_the_question_set_meets_its_targets(embedded):
    """≥ 95 % of the answerable questions answered correctly, ≤ 2 % of all answered wrongly."""
    outcomes = [(entry, *score(entry, ask(embedded, entry["q"]))) for entry in QUESTIONS]
    answerable = [o for o in outcomes if o[0]["query"] is not None]
    correct = sum(o[1] == "correct" for o in answerable)
    wrong = [o for o in outcomes if o[1] == "wrong"]
    misses = "\n".join(f"{o[1]}: {o[0]['q']} — {o[2]}" for o in outcomes if o[1] != "correct")
    assert correct >= 0.95 * len(answerable), misses
    assert len(wrong) <= 0.02 * len(outcomes), misses


def test_an_answer_carries_query_sparql_results_and_basis(embedded):
    doc = ask(embedded, "哪个科室负责土地管理？")
    assert doc["understood"] is True and doc["language"] == "zh"
    assert doc["query"] == "sections-for-domain"
    assert doc["parameters"] == {"domain": ["land-management"], "lang": ["zh"]}
    assert "sections-for-domain" in doc["interpretation"] and "土地管理" in doc["interpretation"]
    # the exact library text that ran (the parameter is bound as a term, not pasted in)
    library = {q["name"]: q["sparql"] for q in embedded.get("/api/queries").json["queries"]}
    assert doc["sparql"] == library["sections-for-domain"]
    assert doc["bindings"]["domain"] == f"<{names.ID}domain/land-management>"
    assert "秘书六科" in doc["answer"][0]
    # results: the named query's own SPARQL JSON, unchanged
    direct = embedded.get("/api/queries/sections-for-domain?domain=land-management&lang=zh").json
    assert doc["results"] == direct
    # one basis per row; the domain table's row is quoted
    assert len(doc["basis"]) == len(direct["results"]["bindings"])
    assert all(b["kind"] == "asserted" and any("土地管理" in q for q in b["quotes"]) for b in doc["basis"])


def test_inferred_rows_link_to_the_explanation(embedded):
    doc = ask(embedded, "Who did the source say discussed it?")
    assert doc["query"] == "stated-vs-inferred"
    rows = doc["results"]["results"]["bindings"]
    kinds = {"source": "asserted", "inferred": "inferred", "assumption": "assumption"}
    for row, basis in zip(rows, doc["basis"], strict=True):
        assert basis["kind"] == kinds[row["basis"]["value"]], (row, basis)
        if basis["kind"] == "asserted":
            assert "秘书五科" in basis["quotes"][0]
        else:  # inferred, or resting on a named assumption: both link to the explanation
            assert basis["explain"].startswith("/api/explain?")
            assert (basis["kind"] == "assumption") == ("assumption" in basis)
            explained = embedded.get(basis["explain"])
            assert explained.status_code == 200, explained.get_data(as_text=True)
    assert {b["assumption"].rsplit("/", 1)[-1] for b in doc["basis"] if "assumption" in b} == {
        "land-is-land-management",
        "major-industrial-project-is-a-major-project",
    }


def test_standalone_sparql_gives_the_same_rows(embedded):
    doc = ask(embedded, "What does section 5 do?")
    ran = embedded.post("/sparql", data={"query": doc["sparql_standalone"]}).json
    key = lambda rows: sorted(json.dumps(r, sort_keys=True) for r in rows)  # noqa: E731
    assert key(ran["results"]["bindings"]) == key(doc["results"]["results"]["bindings"])


@pytest.mark.parametrize(
    ("q", "reason"),
    [
        ("明天贵阳天气怎么样？", "out-of-scope"),
        ("What is the GDP of Gui'an?", "out-of-scope"),
        ("第十科负责什么", "no-such-section"),
        ("what does section 12 do", "no-such-section"),
        ("hello there", "not-understood"),
    ],
)
def test_unsure_or_out_of_scope_questions_are_declined(embedded, q, reason):
    doc = ask(embedded, q)
    assert doc["understood"] is False and doc["reason"] == reason
    assert "query" not in doc and "results" not in doc
    assert len(doc["suggestions"]) <= 3 and doc["message"]
    for suggestion in doc["suggestions"]:  # what it suggests, it can answer
        assert ask(embedded, suggestion)["understood"] is True, suggestion


def test_post_form_gives_the_same_answer(embedded):
    posted = embedded.post("/api/ask", data={"q": "秘書五科負責什麼"})
    assert posted.status_code == 200
    assert posted.json["query"] == "section-profile" and posted.json["parameters"]["section"] == ["5"]


@pytest.mark.parametrize(
    ("request_args", "status", "code"),
    [
        ({"query_string": ""}, 400, "invalid-parameter"),
        ({"query_string": "q="}, 400, "invalid-parameter"),
        ({"query_string": "q=a&q=b"}, 400, "invalid-parameter"),
        ({"query_string": {"q": "x" * 501}}, 400, "invalid-parameter"),
        ({"query_string": "q=%FF"}, 400, "bad-request"),
    ],
)
def test_bad_questions_are_problems(embedded, assert_problem, request_args, status, code):
    assert_problem(embedded.get("/api/ask", **request_args), status, code)


def test_a_post_that_is_not_a_form_is_refused(embedded, assert_problem):
    response = embedded.post("/api/ask", data=b'{"q": "x"}', content_type="application/json")
    assert_problem(response, 415, "unsupported-media-type")


def test_a_resource_added_by_an_update_is_understood_next(cache_dir):
    from service.web.app import create_app

    app = create_app({"cache_dir": str(cache_dir), "update_token": TOKEN, "query_timeout": 5.0})
    try:
        client = app.test_client()
        question = "哪个科室负责无人机物流？"
        assert ask(client, question)["understood"] is False
        domain, claim = names.ID + "domain/drone-logistics", names.GRAPH + "claim/ask-test"
        update = (
            f"PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\nPREFIX gk: <{names.GK}>\n"
            "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
            f"INSERT DATA {{ GRAPH <{claim}> {{ <{domain}> skos:inScheme <{names.ID}domain-scheme> ; "
            'skos:prefLabel "无人机物流"@zh, "Drone logistics"@en ; '
            'rdfs:label "无人机物流"@zh, "Drone logistics"@en ; '
            f"skos:broader <{names.ID}domain/transport> . "
            f"<{names.ID}section/6> gk:handlesDomain <{domain}> }} }}"
        )
        assert client.post("/update", data={"update": update}, headers=AUTH).status_code == 200
        app.extensions["guian_kg"].follower.catch_up()
        doc = ask(client, question)
        assert doc["understood"] is True and doc["parameters"]["domain"] == ["drone-logistics"]
        assert "秘书六科" in " ".join(doc["answer"])
        assert ask(client, "which section handles drone logistics")["parameters"]["domain"] == ["drone-logistics"]
    finally:
        app.extensions["guian_kg"].executor.close()


def test_a_word_read_by_an_assumption_is_named(embedded):
    """土地 names land management only through a modelling assumption: the answer says which, apart from facts."""
    doc = ask(embedded, "涉及土地、环保与民生的重大产业项目由哪些科室协同办理？")
    assert doc["query"] == "co-handling-sections"
    assert [a.rsplit("/", 1)[-1] for a in doc["assumptions"]] == ["land-is-land-management"]
    assert "建模假设" in doc["answer"][-1]
    plain = ask(embedded, "哪个科室负责土地管理")  # the table's own words: no assumption
    assert plain["assumptions"] == []
