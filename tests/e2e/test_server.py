"""A real `guian-kg serve` process on loopback, driven by SPARQLWrapper and plain HTTP clients."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from rdflib import Graph
from SPARQLWrapper import CSV, JSON, POST, POSTDIRECTLY, TURTLE, URLENCODED, XML, SPARQLWrapper

from service import names

pytestmark = pytest.mark.e2e

QUERY_TIMEOUT = 2.0
PREFIXES = f"PREFIX gk: <{names.GK}>\n"
SECTIONS = PREFIXES + "SELECT ?s WHERE { ?s a gk:SecretarialSection } ORDER BY ?s"
CONSTRUCT_SECTIONS = PREFIXES + "CONSTRUCT { ?s a gk:SecretarialSection } WHERE { ?s a gk:SecretarialSection }"
CROSS_PRODUCT = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


@pytest.fixture(scope="module")
def server(start_server) -> str:
    """The base URL of a freshly started server (tests/e2e/conftest.py), stopped after the module."""
    return start_server(query_timeout=QUERY_TIMEOUT).base


def _wrapper(server: str, query: str, fmt: str) -> SPARQLWrapper:
    sparql = SPARQLWrapper(server + "/sparql")
    sparql.setQuery(query)
    sparql.setReturnFormat(fmt)
    return sparql


def test_sparqlwrapper_json(server):
    result = _wrapper(server, SECTIONS, JSON).query()
    assert result.response.headers["Content-Type"] == "application/sparql-results+json"
    bindings = result.convert()["results"]["bindings"]
    assert [b["s"]["value"] for b in bindings] == sorted(names.ID + f"section/{n}" for n in range(1, 10))


def test_sparqlwrapper_xml(server):
    document = _wrapper(server, SECTIONS, XML).query().convert()
    assert len(document.getElementsByTagName("result")) == 9


def test_sparqlwrapper_csv(server):
    text = _wrapper(server, SECTIONS, CSV).query().convert().decode("utf-8")
    assert text.splitlines()[0] == "s" and len(text.splitlines()) == 10


def test_sparqlwrapper_construct_turtle(server):
    body = _wrapper(server, CONSTRUCT_SECTIONS, TURTLE).query().convert()
    assert len(Graph().parse(data=body, format="turtle")) == 9


@pytest.mark.parametrize("method", [URLENCODED, POSTDIRECTLY])
def test_sparqlwrapper_post(server, method):
    sparql = _wrapper(server, SECTIONS, JSON)
    sparql.setMethod(POST)
    sparql.setRequestMethod(method)
    assert len(sparql.query().convert()["results"]["bindings"]) == 9


def test_raw_http(server):
    response = requests.post(
        server + "/sparql",
        data=SECTIONS.encode(),
        headers={"Content-Type": "application/sparql-query", "Accept": "text/tab-separated-values"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/tab-separated-values; charset=utf-8"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    description = requests.get(server + "/sparql", timeout=30)
    assert description.headers["Content-Type"] == "text/turtle; charset=utf-8" and description.headers["ETag"]
    bad = requests.get(server + "/sparql", params={"query": "SELECT * {"}, timeout=10)
    assert bad.status_code == 400 and bad.headers["Content-Type"] == "application/problem+json"
    assert bad.json()["code"] == "query-syntax"
    assert "guian_kg_http_requests_total" in requests.get(server + "/metrics", timeout=10).text


def test_pathological_query_times_out_while_others_are_answered(server):
    def slow() -> tuple[int, dict, float]:
        started = time.monotonic()
        response = requests.get(server + "/sparql", params={"query": CROSS_PRODUCT}, timeout=30)
        return response.status_code, response.json(), time.monotonic() - started

    def simple() -> int:
        return requests.get(server + "/sparql", params={"query": SECTIONS}, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        pending = pool.submit(slow)
        time.sleep(0.2)
        statuses = []
        while not pending.done():
            statuses.append(simple())
        status, problem, elapsed = pending.result()
    assert status == 503 and problem["code"] == "query-timeout", problem
    assert elapsed < QUERY_TIMEOUT + 1, elapsed
    assert statuses and set(statuses) == {200}, statuses
    # and the server is still healthy afterwards
    assert requests.get(server + "/readyz", timeout=5).json()["status"] == "ready"
    assert json.loads(requests.get(server + "/sparql", params={"query": "ASK {}"}, timeout=5).text)["boolean"]
