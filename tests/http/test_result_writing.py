"""Found by the W3C suite (tests/w3c): the syntax error wins over 406, the rdflib engine checks the grammar
strictly, XML carries every literal, and a character XML 1.0 cannot carry is a clear 406 — on every engine."""

from __future__ import annotations

import xml.etree.ElementTree as ET

XML = "application/sparql-results+xml"


def test_a_syntax_error_is_400_whatever_the_accept_header(client, assert_problem):
    response = client.get(
        "/sparql", query_string={"query": "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p }"}, headers={"Accept": XML}
    )
    assert_problem(response, 400, "query-syntax")


def test_what_the_grammar_refuses_is_400_on_every_engine(client, assert_problem):
    # rdflib's own parser accepts a plain variable projected beside an aggregate without GROUP BY
    response = client.get("/sparql", query_string={"query": "SELECT ?s (COUNT(*) AS ?n) { ?s ?p ?o }"})
    assert_problem(response, 400, "query-syntax")


def test_xml_results_carry_falsy_typed_literals(client):
    query = "SELECT (0 AS ?zero) (false AS ?no) {}"
    response = client.get("/sparql", query_string={"query": query}, headers={"Accept": XML})
    assert response.status_code == 200
    literals = {
        binding.get("name"): binding[0].text
        for binding in ET.fromstring(response.data).iter("{http://www.w3.org/2005/sparql-results#}binding")
    }
    assert literals == {"zero": "0", "no": "false"}


def test_a_character_xml_cannot_carry_is_a_406_in_xml_and_fine_in_json(client, assert_problem):
    query = 'SELECT ("a\\u0000b" AS ?x) {}'  # a SPARQL escape: the query text itself holds no U+0000
    assert_problem(
        client.get("/sparql", query_string={"query": query}, headers={"Accept": XML}), 406, "not-representable-in-xml"
    )
    response = client.get(
        "/sparql", query_string={"query": query}, headers={"Accept": "application/sparql-results+json"}
    )
    assert response.status_code == 200
    assert response.get_json()["results"]["bindings"][0]["x"]["value"] == "a\x00b"


def test_a_function_no_engine_knows_is_422_not_500(client, assert_problem):
    # a valid query (W3C syntax-query/test_4): pyoxigraph plans it with an error, rdflib would leave ?x unbound
    query = "PREFIX : <http://example.org/> SELECT (:function(1) AS ?x) {}"
    for accept in ("application/sparql-results+json", "text/turtle"):
        response = client.get("/sparql", query_string={"query": query}, headers={"Accept": accept})
        problem = assert_problem(response, 422, "query-unsupported")
        assert problem["function"] == "http://example.org/function"
