"""W3C SPARQL 1.1 service description tests: a GET on the query endpoint without a query returns RDF holding an
`sd:Service` whose `sd:endpoint` is that endpoint, with the properties the schema requires."""

from __future__ import annotations

import pytest
import requests
from rdflib import RDF, Graph, Namespace, URIRef
from w3c.judge import judge
from w3c.suite import ENGINES, Case, cases

pytestmark = pytest.mark.w3c

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
SD_CASES = cases({"ServiceDescriptionTest"})


def _problem(target, case: Case) -> str | None:
    response = requests.get(target.query_url, headers={"Accept": "text/turtle"}, timeout=30)
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        graph = Graph().parse(data=response.content, format="turtle", publicID=target.query_url)
    except Exception as exc:
        return f"not RDF: {exc}"
    services = set(graph.subjects(RDF.type, SD.Service))
    if case.id.endswith("returns-rdf"):
        return None if len(graph) else "an empty description"
    if case.id.endswith("has-endpoint-triple"):
        found = any((s, SD.endpoint, URIRef(target.query_url)) in graph for s in services)
        return None if found else f"no sd:Service with sd:endpoint <{target.query_url}>"
    for service in services:
        if (service, SD.supportedLanguage, None) in graph and (service, SD.endpoint, None) in graph:
            return None
    return "no sd:Service with sd:endpoint and sd:supportedLanguage"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", SD_CASES, ids=[c.id for c in SD_CASES])
def test_service_description(servers, engine: str, case: Case) -> None:
    judge(engine, case, _problem(servers(engine), case))
