"""The named-query REST API: list, run, negotiation, 400s that name the parameter, OpenAPI, and a fuzzing run."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate

from service.errors import ConfigError
from tests.conftest import assert_problem

SECTION = "https://w3id.org/guian-kg/id/section/"


def _notations(response) -> set[str]:
    return {row["notation"]["value"] for row in response.get_json()["results"]["bindings"]}


def test_list_of_queries_with_metadata(client):
    response = client.get("/api/queries")
    assert response.status_code == 200 and response.mimetype == "application/json"
    queries = {q["name"]: q for q in response.get_json()["queries"]}
    flagship = queries["co-handling-sections"]
    assert flagship["title"]["zh"] and flagship["title"]["en"] and flagship["description"]["en"]
    assert flagship["url"].endswith("/api/queries/co-handling-sections")
    domain = next(p for p in flagship["parameters"] if p["name"] == "domain")
    assert domain["multiple"] and domain["type"] == "domain" and "land-management" in domain["allowed"]
    assert "SELECT" in flagship["sparql"]


def test_the_flagship_for_an_ad_hoc_set_of_domains(client):
    plain = client.get("/api/queries/co-handling-sections?domain=land&domain=environment&domain=livelihoods")
    assert plain.status_code == 200 and plain.mimetype == "application/sparql-results+json"
    assert _notations(plain) == {"6", "7", "8"}
    major = client.get("/api/queries/co-handling-sections?kind=major-industrial-project")
    assert _notations(major) == {"5", "6", "7", "8"}
    # an industrial project as such implies no domain: the source states no such rule
    assert _notations(client.get("/api/queries/co-handling-sections?kind=industrial-project")) == {"6", "7", "8"}
    stored = client.get("/api/queries/project-co-handling")
    assert _notations(stored) == {"5", "6", "7", "8"}
    assert _notations(client.get("/api/queries/project-co-handling?infer=false")) == set()


@pytest.mark.parametrize(
    "words",
    [("土地", "环保", "民生"), ("land", "environmental protection", "people's livelihoods")],
    ids=["zh", "en"],
)
def test_the_flagship_in_the_source_s_own_words(client, source_words_query, words):
    """The worked example's words (土地、环保与民生) and their English resolve; the section a row needs an assumption
    for says so and names it."""
    response = client.get(source_words_query(words, kind="major-industrial-project"))
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = response.get_json()["results"]["bindings"]
    assert {row["notation"]["value"] for row in rows} == {"5", "6", "7", "8"}
    for row in rows:
        assert row["basis"]["value"] in ("inferred", "assumption")
        assert (row["basis"]["value"] == "assumption") == ("assumption" in row)
    assumed = {row["notation"]["value"]: row["assumption"]["value"] for row in rows if "assumption" in row}
    assert set(assumed) == {"5"} and assumed["5"].endswith("/assumption/major-industrial-project-is-a-major-project")
    # 土地 / land names land management only by an assumption: the response says which (a Link per assumption)
    links = response.headers.getlist("Link")
    assert [link.split(";")[0].strip("<>").rsplit("/", 1)[-1] for link in links] == ["land-is-land-management"]
    # the domain's own short name needs no assumption
    plain = client.get(source_words_query(("land-management", "environmental-protection", "livelihoods")))
    assert plain.status_code == 200 and not plain.headers.getlist("Link")


def test_an_ambiguous_word_is_400_listing_its_candidates(client):
    problem = assert_problem(client.get("/api/queries/co-handling-sections?domain=inf"), 400, "invalid-parameter")
    assert problem["parameter"] == "domain"
    assert sorted(problem["candidates"]) == ["information-reporting", "infrastructure"]
    assert set(problem["candidates"]) <= set(problem["allowed"])


@pytest.fixture
def source_words_query():
    def build(words, **params) -> str:
        pairs = [("domain", word) for word in words] + list(params.items())
        return "/api/queries/co-handling-sections?" + urlencode(pairs)

    return build


def test_labels_in_chinese_select_the_domain(client):
    url = "/api/queries/sections-for-domain?domain=" + quote("碳达峰碳中和") + "&lang=zh"
    rows = client.get(url).get_json()["results"]["bindings"]
    assert {row["section"]["value"] for row in rows} == {SECTION + "8"}
    assert {row["sectionLabel"]["value"] for row in rows} == {"秘书八科"}


@pytest.mark.parametrize(
    ("accept", "fmt", "media_type"),
    [
        (None, None, "application/sparql-results+json"),
        ("text/csv", None, "text/csv"),
        ("text/tab-separated-values", None, "text/tab-separated-values"),
        ("application/sparql-results+xml", None, "application/sparql-results+xml"),
        ("text/csv", "json", "application/sparql-results+json"),
        (None, "tsv", "text/tab-separated-values"),
    ],
)
def test_results_are_negotiated_like_sparql(client, accept, fmt, media_type):
    url = "/api/queries/section-counts" + (f"?format={fmt}" if fmt else "")
    response = client.get(url, headers={"Accept": accept} if accept else {})
    assert response.status_code == 200
    assert response.mimetype == media_type
    assert "Accept" in response.headers.get("Vary", "")


def test_csv_rows(client):
    response = client.get("/api/queries/section-counts?format=csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["notation"] for row in rows] == [str(n) for n in range(1, 10)]


def test_head_has_the_headers_and_no_body(client):
    response = client.head("/api/queries/section-counts")
    assert response.status_code == 200 and response.mimetype == "application/sparql-results+json"
    assert response.get_data() == b""


def test_an_unacceptable_type_is_406(client):
    assert_problem(client.get("/api/queries/section-counts", headers={"Accept": "image/png"}), 406, "not-acceptable")
    assert_problem(client.get("/api/queries/section-counts?format=ttl"), 406, "not-acceptable")


@pytest.mark.parametrize(
    ("url", "parameter", "allowed"),
    [
        ("/api/queries/sections-for-domain?domain=nowhere", "domain", "land-management"),
        ("/api/queries/co-handling-sections?domain=education&domain=nowhere", "domain", "education"),
        ("/api/queries/section-profile?section=10", "section", "9"),
        ("/api/queries/section-profile?lang=fr", "lang", "zh"),
        ("/api/queries/section-profile?colour=red", "colour", "section"),
        ("/api/queries/section-profile?section=1&section=2", "section", "1"),
        ("/api/queries/domain-tree?depth=99", "depth", None),
        ("/api/queries/fact-provenance?resource=javascript:alert(1)", "resource", None),
        ("/api/queries/search", "text", None),
    ],
)
def test_bad_values_are_400_naming_the_parameter(client, url, parameter, allowed):
    problem = assert_problem(client.get(url), 400, "invalid-parameter")
    assert problem["parameter"] == parameter
    assert parameter in problem["detail"]
    assert isinstance(problem["allowed"], list)
    if allowed is not None:
        assert allowed in problem["allowed"]


def test_protocol_parameters_are_checked(client):
    assert_problem(client.get("/api/queries/section-counts?infer=maybe"), 400, "invalid-parameter")
    assert_problem(client.get("/api/queries/section-counts?timeout=-1"), 400, "invalid-parameter")
    assert_problem(client.get("/api/queries/section-counts?format=json&format=csv"), 400, "bad-request")
    assert_problem(client.get("/api/queries/section-counts?format=pdf"), 400, "invalid-parameter")
    assert client.get("/api/queries/section-counts?timeout=5").status_code == 200


def test_an_unknown_query_is_404(client):
    problem = assert_problem(client.get("/api/queries/no-such-query"), 404, "not-found")
    assert "co-handling-sections" in problem["allowed"]


@pytest.mark.parametrize(
    "payload",
    ['"} ; DROP ALL ; #', "x> ; DROP GRAPH <urn:g> ; <y", "} } SERVICE <http://127.0.0.1:1/> { ?s ?p ?o } #\n"],
)
def test_payloads_change_nothing_but_the_bound_value(client, payload):
    response = client.get("/api/queries/search?text=" + quote(payload))
    assert response.status_code == 200
    assert response.get_json()["results"]["bindings"] == []
    for url in ("/api/queries/sections-for-domain?domain=", "/api/queries/section-profile?section="):
        assert_problem(client.get(url + quote(payload)), 400, "invalid-parameter")
    counts = client.get("/api/queries/section-counts").get_json()["results"]["bindings"]
    assert len(counts) == 9  # the data is as before


def test_openapi_document_is_valid_and_types_the_parameters(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    names = {path.rsplit("/", 1)[-1] for path in document["paths"] if path.startswith("/api/queries/")}
    listed = {q["name"] for q in client.get("/api/queries").get_json()["queries"]}
    assert names == listed
    operation = document["paths"]["/api/queries/co-handling-sections"]["get"]
    params = {p.get("name"): p for p in operation["parameters"]}
    assert params["domain"]["schema"]["type"] == "array" and params["domain"]["explode"] is True
    assert params["lang"]["schema"]["enum"] == ["zh", "en"]
    tree = {p.get("name"): p for p in document["paths"]["/api/queries/domain-tree"]["get"]["parameters"]}
    assert tree["depth"]["schema"] == {"type": "integer", "minimum": 0, "maximum": 10, "default": 3}
    assert len({op["get"]["operationId"] for op in document["paths"].values()}) == len(document["paths"])
    json.dumps(document)


def test_a_broken_query_file_stops_the_app_naming_file_and_line(make_app, engine, tmp_path, monkeypatch):
    if engine != "embedded":
        pytest.skip("loading the library does not depend on the engine")
    broken = tmp_path / "broken.rq"
    broken.write_text(
        "#+ title.en: T\n#+ title.zh: 题\n#+ description.en: D\n#+ description.zh: 述\n"
        "SELECT * WHERE {\n  ?s ?p ?o .\n  FILTER(?s = )\n}\n",
        encoding="utf-8",
    )
    monkeypatch.setattr("service.library.queries.queries_dir", lambda: tmp_path)
    with pytest.raises(ConfigError) as caught:
        make_app()
    assert f"{broken}:7" in caught.value.detail


def test_a_deployment_base_iri_reaches_the_named_queries(make_app, engine):
    if engine != "embedded":
        pytest.skip("rebasing is the library's, not the engine's")
    base = "https://kg.example.org/"
    client = make_app(base_iri=base).test_client()
    rows = client.get("/api/queries/stated-vs-inferred?project=major-industrial-project").get_json()
    statuses = {row["section"]["value"]: row["status"]["value"] for row in rows["results"]["bindings"]}
    assert statuses[base + "id/section/6"] == "inferred-only" and len(statuses) == 4
    plain = client.get("/api/queries/co-handling-sections?domain=" + quote(base + "id/domain/education"))
    assert {row["section"]["value"] for row in plain.get_json()["results"]["bindings"]} == {base + "id/section/7"}


# --- the examples of queries/README.md print what the README shows ---------------------------------------------

README = Path(__file__).resolve().parents[2] / "queries" / "README.md"
_CURL = re.compile(r"^\$ curl -s '(?:http://127\.0\.0\.1:8000)(/[^']*)'$")


def readme_examples() -> list[tuple[str, str]]:
    """(path and query string, expected output) of every curl command in a console block of the README."""
    examples, current, in_block = [], None, False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if in_block and current:
                examples.append((current[0], "\n".join(current[1])))
            in_block, current = line.strip() == "```console" and not in_block, None
        elif in_block and (match := _CURL.match(line)):
            current = (match.group(1), [])
        elif in_block and current:
            current[1].append(line)
    return examples


def test_the_readme_has_examples():
    assert len(readme_examples()) >= 1


@pytest.mark.parametrize(("url", "expected"), readme_examples())
def test_readme_example(client, url, expected):
    response = client.get(url)
    assert response.status_code == 200
    assert response.get_data(as_text=True).replace("\r\n", "\n").strip() == expected.strip()


# --- fuzzing from the OpenAPI document: never a 5xx ------------------------------------------------------------


def test_fuzz_the_api_from_its_openapi_document(_shared_apps):
    """Schemathesis generates valid and invalid requests for every operation: ~100 in all, and no 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import given
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", _shared_apps["embedded"])
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    calls = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if "federated" in operation.path:
            continue  # needs a second endpoint: tests/e2e/test_federation.py
        modes = [(GenerationMode.POSITIVE, 4)]
        if list(operation.iter_parameters()):  # nothing to get wrong in a request without parameters
            modes.append((GenerationMode.NEGATIVE, 2))
        for mode, examples in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case) -> None:
                response = case.call()
                calls.append((case.path, response.status_code))
                case.validate_response(response, checks=checks)

            run()
    assert 40 <= len(calls) <= 150, len(calls)
    assert all(status < 500 for _, status in calls)
    assert any(status == 200 for _, status in calls) and any(status == 400 for _, status in calls)
