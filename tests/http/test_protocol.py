"""The HTTP contract of /sparql, /update, /store, /.well-known/void and the ops endpoints, on both engines."""

from __future__ import annotations

import csv
import io
import json
import logging
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlencode

import pytest
from rdflib import Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, VOID
from werkzeug.test import EnvironBuilder, run_wsgi_app

from service import names
from service.sparql.formats import BY_KEY, FORMATS
from service.sparql.protocol import FORM_FORMATS, negotiate

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
GK = names.GK
SECTION = names.ID + "section/"
PROJECT = names.ID + "project/major-industrial-project"
PREFIXES = f"PREFIX gk: <{GK}>\nPREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
SECTIONS = PREFIXES + "SELECT ?s WHERE { ?s a gk:SecretarialSection } ORDER BY ?s"
CONSTRUCT_SECTIONS = PREFIXES + "CONSTRUCT { ?s a gk:SecretarialSection } WHERE { ?s a gk:SecretarialSection }"
CO_HANDLED = f"ASK {{ <{PROJECT}> <{GK}coHandledBy> <{SECTION}6> }}"
# A three-way cross product over the whole dataset: far beyond any time limit on either engine.
CROSS_PRODUCT = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
FORM = "application/x-www-form-urlencoded"
DIRECT = "application/sparql-query"


def rows(body: bytes, key: str) -> list:
    """The result rows of a SELECT body in a results format (parsed, so a malformed body fails)."""
    if key == "json":
        return json.loads(body)["results"]["bindings"]
    if key == "xml":
        return ET.fromstring(body).findall(".//{http://www.w3.org/2005/sparql-results#}result")
    if key == "csv":
        return list(csv.reader(io.StringIO(body.decode("utf-8"))))[1:]
    if key == "tsv":
        return [line.split("\t") for line in body.decode("utf-8").splitlines()[1:] if line]
    raise AssertionError(key)


def triples(body: bytes, key: str) -> Dataset:
    """An RDF body in a graph format, parsed with rdflib (quads land in a Dataset)."""
    dataset = Dataset()
    dataset.parse(data=body, format=BY_KEY[key].rdflib)
    return dataset


def ask(response) -> bool:
    assert response.status_code == 200, response.get_data(as_text=True)
    return json.loads(response.data)["boolean"]


def get(client, query: str, **params):
    return client.get("/sparql", query_string={"query": query, **params})


# --- the three ways to send a query, and the ones federators use ---------------------------------------


def test_get_query_answers_json_by_default(client):
    response = get(client, SECTIONS)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/sparql-results+json"
    assert [b["s"]["value"] for b in rows(response.data, "json")] == sorted(SECTION + str(n) for n in range(1, 10))


def test_post_form(client):
    response = client.post("/sparql", data={"query": SECTIONS})
    assert response.status_code == 200
    assert len(rows(response.data, "json")) == 9


@pytest.mark.parametrize("charset", ["UTF-8", "utf-8", '"utf-8"'])
def test_post_form_with_charset_suffix(client, charset):
    body = urlencode({"query": PREFIXES + 'SELECT ?s WHERE { ?s skos:prefLabel "秘书六科"@zh }'})
    response = client.post("/sparql", data=body, content_type=f"{FORM}; charset={charset}")
    assert [b["s"]["value"] for b in rows(response.data, "json")] == [SECTION + "6"]


def test_post_direct(client):
    response = client.post("/sparql", data=SECTIONS.encode(), content_type=f"{DIRECT}; charset=utf-8")
    assert response.status_code == 200
    assert len(rows(response.data, "json")) == 9


@pytest.mark.parametrize("content_type", [FORM, None, "text/plain"])
def test_post_with_query_in_url_and_empty_body(client, content_type):
    """Blazegraph and some federators POST with the query in the URL and nothing in the body."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/sparql?" + urlencode({"query": SECTIONS}), headers=headers)
    assert response.status_code == 200
    assert len(rows(response.data, "json")) == 9


@pytest.mark.parametrize("how", ["get", "form", "direct"])
def test_query_text_is_percent_decoded_exactly_once(client, how):
    literal = "50%41 off + 贵安"
    query = f'SELECT ?x WHERE {{ BIND("{literal}" AS ?x) }}'
    if how == "get":
        response = get(client, query)
    elif how == "form":
        response = client.post("/sparql", data="query=" + quote(query, safe=""), content_type=FORM)
    else:
        response = client.post("/sparql", data=query.encode(), content_type=DIRECT)
    assert rows(response.data, "json")[0]["x"]["value"] == literal


def test_trailing_slash_is_the_same_endpoint(client):
    response = client.get("/sparql/", query_string={"query": "ASK {}"})
    assert response.status_code == 200 and ask(response) is True


# --- dataset parameters ----------------------------------------------------------------------------------


def test_default_graph_uri_limits_the_default_graph(client):
    graph = names.GRAPH + "claim/section-6"
    query = PREFIXES + "SELECT DISTINCT ?s WHERE { ?s a gk:SecretarialSection }"
    response = client.get("/sparql", query_string={"query": query, "default-graph-uri": graph})
    assert {b["s"]["value"] for b in rows(response.data, "json")} == {SECTION + "6"}


def test_repeated_default_graph_uris_merge(client):
    graphs = [names.GRAPH + "claim/section-6", names.GRAPH + "claim/section-7"]
    query = PREFIXES + "SELECT DISTINCT ?s WHERE { ?s a gk:SecretarialSection }"
    response = client.get("/sparql", query_string=[("query", query)] + [("default-graph-uri", g) for g in graphs])
    assert {b["s"]["value"] for b in rows(response.data, "json")} == {SECTION + "6", SECTION + "7"}


def test_named_graph_uris_limit_graph_patterns(client):
    graphs = [names.GRAPH + "claim/section-6", names.GRAPH + "claim/section-7"]
    query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
    body = urlencode([("query", query)] + [("named-graph-uri", g) for g in graphs])
    response = client.post("/sparql", data=body, content_type=FORM)
    assert {b["g"]["value"] for b in rows(response.data, "json")} == set(graphs)


@pytest.mark.parametrize("value", ["not an iri", "relative/path", "<http://x>"])
def test_bad_graph_iri_is_400(client, assert_problem, value):
    response = client.get("/sparql", query_string={"query": "ASK {}", "default-graph-uri": value})
    assert_problem(response, 400, "invalid-parameter")


# --- formats: all ten, exact Content-Type, parseable bodies ----------------------------------------------


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.kind == "results"], ids=lambda f: f.key)
def test_select_in_every_results_format(client, fmt):
    for response in (
        client.get("/sparql", query_string={"query": SECTIONS}, headers={"Accept": fmt.media_type}),
        client.get("/sparql", query_string={"query": SECTIONS, "format": fmt.key}),
    ):
        assert response.status_code == 200
        assert response.headers["Content-Type"] == fmt.content_type
        assert len(rows(response.data, fmt.key)) == 9


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.kind == "graph"], ids=lambda f: f.key)
def test_construct_in_every_rdf_format(client, fmt):
    for response in (
        client.get("/sparql", query_string={"query": CONSTRUCT_SECTIONS}, headers={"Accept": fmt.media_type}),
        client.get("/sparql", query_string={"query": CONSTRUCT_SECTIONS, "format": fmt.key}),
    ):
        assert response.status_code == 200
        assert response.headers["Content-Type"] == fmt.content_type
        assert len(triples(response.data, fmt.key)) == 9


@pytest.mark.parametrize("key", ["json", "xml"])
def test_ask_formats(client, key):
    response = client.get("/sparql", query_string={"query": "ASK {}"}, headers={"Accept": BY_KEY[key].media_type})
    assert response.headers["Content-Type"] == BY_KEY[key].content_type
    if key == "json":
        assert json.loads(response.data)["boolean"] is True
    else:
        assert ET.fromstring(response.data).find("{http://www.w3.org/2005/sparql-results#}boolean").text == "true"


def test_describe_defaults_to_turtle(client):
    response = client.get("/sparql", query_string={"query": f"DESCRIBE <{SECTION}6>"})
    assert response.headers["Content-Type"] == "text/turtle; charset=utf-8"
    assert (URIRef(SECTION + "6"), None, None) in triples(response.data, "ttl")


# --- negotiation ----------------------------------------------------------------------------------------

NEGOTIATION = [
    # (form, Accept, expected format key)
    ("select", None, "json"),
    ("select", "", "json"),
    ("select", "*/*", "json"),
    ("select", "application/json", "json"),
    ("select", "application/sparql-results+xml;q=0.5, text/csv", "csv"),
    ("select", "text/*;q=0.2, text/csv;q=0, */*;q=0.1", "tsv"),
    ("select", "text/*", "csv"),
    ("select", "application/sparql-results+json;q=0, */*", "xml"),
    ("select", "application/sparql-results+json;q=0.9, application/sparql-results+xml", "xml"),
    ("select", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "xml"),
    ("select", "*/*;q=0.1, text/tab-separated-values;q=0.1", "tsv"),
    ("ask", "text/csv, */*;q=0.5", "json"),
    ("construct", None, "ttl"),
    ("construct", "*/*", "ttl"),
    ("construct", "application/ld+json", "jsonld"),
    ("construct", "text/plain", "nt"),
    ("construct", "application/rdf+xml;q=0.9, application/n-triples", "nt"),
    ("construct", "text/turtle;q=0, */*", "nt"),
    ("construct", "application/n-quads, application/trig;q=0.8", "nq"),
    ("describe", "application/*", "nt"),
]


@pytest.mark.parametrize(("form", "accept", "expected"), NEGOTIATION)
def test_negotiation_table(form, accept, expected):
    assert negotiate(accept, FORM_FORMATS[form]).key == expected


@pytest.mark.parametrize(("form", "accept", "expected"), [n for n in NEGOTIATION if n[0] in ("select", "construct")])
def test_negotiation_over_http(client, form, accept, expected):
    query = SECTIONS if form == "select" else CONSTRUCT_SECTIONS
    headers = {"Accept": accept} if accept is not None else {}
    response = client.get("/sparql", query_string={"query": query}, headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == BY_KEY[expected].content_type
    assert "Accept" in response.headers["Vary"]


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        (SECTIONS, "text/turtle"),
        (
            SECTIONS,
            "application/sparql-results+json;q=0, application/json;q=0, application/sparql-results+xml;q=0, "
            "application/xml;q=0, text/*;q=0",
        ),
        (CONSTRUCT_SECTIONS, "application/sparql-results+json"),
        ("ASK {}", "text/csv"),
        (SECTIONS, "image/png"),
    ],
)
def test_nothing_acceptable_is_406(client, assert_problem, query, accept):
    response = client.get("/sparql", query_string={"query": query}, headers={"Accept": accept})
    assert_problem(response, 406, "not-acceptable")


def test_format_parameter_beats_accept_and_is_checked(client, assert_problem):
    response = get(client, SECTIONS, format="csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert_problem(get(client, SECTIONS, format="ttl"), 406, "not-acceptable")
    assert_problem(get(client, SECTIONS, format="docx"), 400, "invalid-parameter")


# --- errors: 400, 405, 413, 415 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"ASK {}"),
        ("application/json", b'{"query": "ASK {}"}'),
        (None, b"query=ASK%20%7B%7D"),
        (None, b"ASK {}"),
        (f"{DIRECT}; charset=UTF-16", "ASK {}".encode("utf-16")),
        (f"{FORM}; charset=ISO-8859-1", b"query=ASK%20%7B%7D"),
    ],
)
def test_wrong_media_type_is_415(client, assert_problem, content_type, body):
    headers = {"Content-Type": content_type} if content_type else {}
    assert_problem(client.post("/sparql", data=body, headers=headers), 415, "unsupported-media-type")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(client, assert_problem, method):
    response = client.open("/sparql?query=ASK%20%7B%7D", method=method)
    assert_problem(response, 405, "method-not-allowed")
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    "request_args",
    [
        {"query_string": [("query", "ASK {}"), ("query", "SELECT * {}")]},
        {"query_string": {"query": "ASK {}", "update": "CLEAR ALL"}},
        {"query_string": {"update": "CLEAR ALL"}},
        {"query_string": {"query": "ASK {}", "infer": "maybe"}},
        {"query_string": [("query", "ASK {}"), ("infer", "true"), ("infer", "false")]},
    ],
)
def test_bad_get_is_400(client, assert_problem, request_args):
    response = client.get("/sparql", **request_args)
    code = "invalid-parameter" if "maybe" in str(request_args) else "bad-request"
    assert_problem(response, 400, code)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "", "1e999"])
def test_bad_timeout_is_400(client, assert_problem, value):
    assert_problem(get(client, "ASK {}", timeout=value), 400, "invalid-parameter")


def test_query_in_url_and_in_direct_body_is_400(client, assert_problem):
    response = client.post("/sparql?query=ASK%20%7B%7D", data=b"ASK {}", content_type=DIRECT)
    assert_problem(response, 400, "bad-request")


def test_query_in_url_and_in_form_is_400(client, assert_problem):
    response = client.post("/sparql?query=ASK%20%7B%7D", data={"query": "ASK {}"})
    assert_problem(response, 400, "bad-request")


def test_post_without_query_is_400(client, assert_problem):
    assert_problem(client.post("/sparql", data={"infer": "true"}), 400, "bad-request")


def test_non_utf8_is_400(client, assert_problem):
    assert_problem(client.post("/sparql", data=b"ASK {\xff}", content_type=DIRECT), 400, "bad-request")
    assert_problem(client.get("/sparql?query=ASK%20%7B%FF%7D"), 400, "bad-request")


def test_body_over_the_limit_is_413(make_app, assert_problem):
    client = make_app(max_request_bytes=300).test_client()
    big = "ASK {}" + " " * 400
    assert_problem(client.post("/sparql", data=big.encode(), content_type=DIRECT), 413, "payload-too-large")
    assert_problem(client.post("/sparql", data={"query": big}), 413, "payload-too-large")
    assert_problem(client.get("/sparql", query_string={"query": big}), 413, "payload-too-large")
    assert client.post("/sparql", data=b"ASK {}", content_type=DIRECT).status_code == 200


def test_content_length_is_checked_before_the_body_is_read(make_app, assert_problem):
    class Unreadable(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            raise AssertionError("the body was read although Content-Length was over the limit")

    app = make_app(max_request_bytes=1000)
    environ = EnvironBuilder("/sparql", method="POST", content_type=DIRECT).get_environ()
    environ["wsgi.input"] = Unreadable()
    environ["CONTENT_LENGTH"] = str(10**9)
    body, status, headers = run_wsgi_app(app.wsgi_app, environ, buffered=True)
    response = app.response_class(body, status=status, headers=headers)
    assert_problem(response, 413, "payload-too-large")


def test_syntax_error_says_where(client, assert_problem):
    problem = assert_problem(get(client, "SELECT * WHERE {\n  ?s ?p ?o .\n  FILTER(\n}"), 400, "query-syntax")
    assert isinstance(problem["line"], int) and isinstance(problem["column"], int)
    assert problem["line"] >= 3


def test_service_to_a_non_allowed_endpoint_is_403(client, assert_problem):
    query = "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }"
    assert_problem(get(client, query), 403, "service-forbidden")


# --- HEAD, OPTIONS, CORS, security headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/sparql?query=ASK%20%7B%7D",
        "/sparql",
        "/.well-known/void",
        f"/store?graph={quote(names.ONTOLOGY_GRAPH, safe='')}",
        "/store?default",
        "/healthz",
        "/readyz",
        "/metrics",
    ],
)
def test_head_works_wherever_get_does(client, url):
    got = client.get(url)
    head = client.head(url)
    assert got.status_code == head.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
    assert got.headers.get("ETag") == head.headers.get("ETag")


def test_cors_is_open_for_reads(client):
    response = client.get("/sparql", query_string={"query": "ASK {}"}, headers={"Origin": "https://example.org"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_cors_preflight(client):
    response = client.options(
        "/sparql",
        headers={
            "Origin": "https://example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" not in response.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_errors_are_problems_and_html_for_browsers(client, assert_problem):
    assert_problem(client.get("/no/such/page"), 404, "not-found")
    page = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Content-Security-Policy" in page.headers
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_html_error_page_escapes_what_the_client_sent(client):
    page = client.get("/sparql", query_string={"query": "<script>alert(1)</script>"}, headers={"Accept": "text/html"})
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "<script>" not in page.get_data(as_text=True)


def test_unexpected_exception_is_a_500_problem_without_its_text(make_app, assert_problem, caplog):
    app = make_app()

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR, logger="guian_kg.app"):
        response = app.test_client().get("/boom", headers={"X-Request-Id": "req-42"})
    problem = assert_problem(response, 500, "internal-error")
    assert "secret internals" not in response.get_data(as_text=True)
    assert "req-42" in problem["detail"] and response.headers["X-Request-Id"] == "req-42"
    assert any("req-42" in r.getMessage() for r in caplog.records)


# --- Service Description and VoID -----------------------------------------------------------------------

SD_FORMATS = ["ttl", "jsonld", "rdfxml", "nt"]


def _graph(response, key: str) -> Graph:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == BY_KEY[key].content_type
    graph = Graph()
    graph.parse(data=response.data, format=BY_KEY[key].rdflib)
    return graph


@pytest.mark.parametrize("key", SD_FORMATS)
def test_service_description(app, client, key):
    graph = _graph(client.get("/sparql", headers={"Accept": BY_KEY[key].media_type}), key)
    service = graph.value(predicate=RDF.type, object=SD.Service)
    assert graph.value(service, SD.endpoint) == URIRef("http://localhost/sparql")
    assert (service, SD.supportedLanguage, SD.SPARQL11Query) in graph
    assert len(set(graph.objects(service, SD.resultFormat))) == len(FORMATS)
    assert (service, SD.feature, SD.UnionDefaultGraph) in graph
    assert (service, SD.feature, SD.BasicFederatedQuery) not in graph
    assert graph.value(service, SD.defaultEntailmentRegime) == URIRef("http://www.w3.org/ns/entailment/OWL-RDF-Based")
    dataset = graph.value(service, SD.defaultDataset)
    snapshot = app.extensions["guian_kg"].snapshot
    named = {graph.value(n, SD.name) for n in graph.objects(dataset, SD.namedGraph)}
    assert named == {URIRef(g) for g in snapshot.graphs}
    for item in (VOID.triples, VOID.classes, VOID.properties, VOID.distinctSubjects, VOID.distinctObjects):
        assert int(graph.value(dataset, item)) > 0, item
    assert str(graph.value(dataset, URIRef("http://www.w3.org/2002/07/owl#versionInfo"))) == snapshot.version


def test_service_description_without_accept_is_turtle_with_strong_etag(app, client):
    response = client.get("/sparql")
    assert response.headers["Content-Type"] == "text/turtle; charset=utf-8"
    etag, weak = response.get_etag()
    assert not weak and app.extensions["guian_kg"].snapshot.version in etag
    again = client.get("/sparql", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    other = client.get("/sparql", headers={"Accept": "application/ld+json"})
    assert other.get_etag()[0] != etag  # one strong ETag per representation


def test_service_description_lists_federation_only_when_allowed(make_app):
    client = make_app(service_allow="https://query.wikidata.org/sparql").test_client()
    graph = _graph(client.get("/sparql"), "ttl")
    assert (None, SD.feature, SD.BasicFederatedQuery) in graph


def test_statistics_are_computed_once(make_app, monkeypatch, tmp_path):
    app = make_app(cache_dir=str(tmp_path))  # a fresh cache: no statistics on disk yet
    state = app.extensions["guian_kg"]
    calls = []
    original = state.select_rows
    monkeypatch.setattr(state, "select_rows", lambda q: calls.append(q) or original(q))
    client = app.test_client()
    assert client.get("/sparql").status_code == 200
    first = len(calls)
    assert first >= 4 and all("COUNT" in q for q in calls)
    assert client.get("/.well-known/void").status_code == 200
    assert client.get("/sparql", headers={"Accept": "application/n-triples"}).status_code == 200
    assert len(calls) == first


@pytest.mark.parametrize("key", SD_FORMATS)
def test_void_description(app, client, key):
    graph = _graph(client.get("/.well-known/void", headers={"Accept": BY_KEY[key].media_type}), key)
    snapshot = app.extensions["guian_kg"].snapshot
    dataset = next(graph.subjects(VOID.subset, None))
    assert {str(s) for s in graph.objects(dataset, VOID.subset)} == set(snapshot.graphs)
    assert int(graph.value(URIRef(snapshot.inferred_graph), VOID.triples)) > 0
    assert graph.value(dataset, VOID.sparqlEndpoint) == URIRef("http://localhost/sparql")
    assert any(graph.objects(dataset, VOID.propertyPartition))


# --- reasoning and limits ---------------------------------------------------------------------------------


def test_infer_false_removes_inferred_triples(client):
    assert ask(get(client, CO_HANDLED)) is True
    assert ask(get(client, CO_HANDLED, infer="false")) is False
    assert ask(get(client, CO_HANDLED, infer="true")) is True
    graph = f"ASK {{ GRAPH <{names.INFERRED_GRAPH}> {{ ?s ?p ?o }} }}"
    assert ask(get(client, graph, infer="false")) is False


def test_infer_default_follows_the_setting(make_app):
    client = make_app(infer=False).test_client()
    assert ask(get(client, CO_HANDLED)) is False
    assert ask(get(client, CO_HANDLED, infer="true")) is True


def test_timeout_parameter_only_lowers_the_limit(make_app, assert_problem):
    client = make_app(query_timeout=1.0).test_client()
    problem = assert_problem(get(client, CROSS_PRODUCT, timeout="60"), 503, "query-timeout")
    assert problem["timeout"] == 1.0


def test_timeout_parameter_lowers_the_limit(make_app, assert_problem):
    client = make_app(query_timeout=30.0).test_client()
    problem = assert_problem(get(client, CROSS_PRODUCT, timeout="0.5"), 503, "query-timeout")
    assert problem["timeout"] == 0.5
    assert ask(get(client, "ASK {}", timeout="0.5")) is True


def test_relative_iris_resolve_against_the_endpoint(client):
    response = client.post("/sparql", data=b"CONSTRUCT { <s> <p> 1 } WHERE {}", content_type=DIRECT)
    graph = triples(response.data, "ttl")
    assert (URIRef("http://localhost/s"), URIRef("http://localhost/p"), Literal(1)) in graph


# --- /update and /store -----------------------------------------------------------------------------------


def test_update_is_refused_when_read_only(client, assert_problem):
    assert_problem(client.post("/update", data={"update": "CLEAR ALL"}), 403, "read-only")
    assert_problem(client.post("/sparql", data={"update": "CLEAR ALL"}), 403, "read-only")
    assert_problem(
        client.post("/update", data=b"CLEAR ALL", content_type="application/sparql-update"), 403, "read-only"
    )
    assert_problem(client.get("/update"), 405, "method-not-allowed")


def test_update_needs_the_token(make_app, assert_problem, engine):
    client = make_app(update_token="s3cret").test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0"}):
        response = client.post("/update", data={"update": "CLEAR ALL"}, headers=headers)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    ok = {"Authorization": "Bearer s3cret"}
    cleared = client.post("/update", data={"update": "CLEAR SILENT GRAPH <urn:x:none>"}, headers=ok)
    assert cleared.json["changed"] is False
    assert_problem(client.post("/store?default", data=b"", headers=ok), 403, "read-only-graph")


def test_store_reads_a_named_graph(client):
    graph = names.GRAPH + "claim/section-6"
    response = client.get("/store", query_string={"graph": graph}, headers={"Accept": "application/n-triples"})
    assert response.headers["Content-Type"] == "application/n-triples"
    assert (URIRef(SECTION + "6"), RDF.type, URIRef(GK + "SecretarialSection")) in triples(response.data, "nt")


def test_store_reads_the_default_graph(client):
    response = client.get("/store?default")
    assert response.headers["Content-Type"] == "text/turtle; charset=utf-8"
    assert len(triples(response.data, "ttl")) > 100


def test_store_errors(client, assert_problem):
    assert_problem(client.get("/store", query_string={"graph": "http://example.org/nope"}), 404, "not-found")
    assert_problem(client.get("/store"), 400, "bad-request")
    assert_problem(
        client.get("/store", query_string={"graph": names.ONTOLOGY_GRAPH, "default": ""}), 400, "bad-request"
    )
    for method in ("PUT", "POST", "DELETE"):
        assert_problem(client.open("/store?default", method=method, data=b""), 403, "read-only")


# --- operations -------------------------------------------------------------------------------------------


def test_health_and_readiness(app, client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["data_version"] == app.extensions["guian_kg"].snapshot.version


def test_not_ready_is_503(make_app, assert_problem):
    app = make_app()
    app.extensions["guian_kg"].executor, executor = None, app.extensions["guian_kg"].executor
    try:
        assert_problem(app.test_client().get("/readyz"), 503, "not-ready")
    finally:
        app.extensions["guian_kg"].executor = executor


def test_metrics(make_app):
    client = make_app(query_timeout=0.5).test_client()
    get(client, SECTIONS)
    get(client, CROSS_PRODUCT)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'guian_kg_http_requests_total{method="GET",route="/sparql",status="200"}' in text
    assert 'guian_kg_http_requests_total{method="GET",route="/sparql",status="503"}' in text
    assert "guian_kg_query_duration_seconds_bucket{" in text and 'form="select"' in text
    assert "guian_kg_query_timeouts_total{" in text
    assert "guian_kg_queries_in_flight 0.0" in text


def test_one_json_log_line_per_query(client, caplog):
    with caplog.at_level(logging.INFO, logger="guian_kg.query"):
        get(client, SECTIONS)
        get(client, "SELECT * WHERE {")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "guian_kg.query"]
    assert len(lines) == 2
    ok, bad = lines
    assert set(ok) >= {"query_sha256", "form", "duration_ms", "rows", "status", "engine"}
    assert len(ok["query_sha256"]) == 12 and ok["form"] == "select" and ok["rows"] == 9 and ok["status"] == 200
    assert bad["status"] == 400 and bad["rows"] == 0
