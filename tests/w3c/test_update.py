"""W3C SPARQL 1.1 update evaluation and update syntax tests, through `/update` of a server with a durable store
(journal on): each evaluation test resets the dataset and loads its data by one update, runs the test's update,
then reads the whole dataset back (`infer=false`) and compares it with the expected one (blank nodes matched).
"""

from __future__ import annotations

import io

import pytest
import requests
from rdflib import RDF, BNode, Graph, URIRef, Variable
from rdflib.compare import isomorphic
from rdflib.query import Result
from w3c.judge import judge
from w3c.suite import ENGINES, Case, answer_text, cases, path_of, quads_of

pytestmark = pytest.mark.w3c

DEFAULT = URIRef("urn:w3c:default-graph")  # stands for the default graph in the compared datasets
GRAPH = URIRef("urn:w3c:graph")
UPDATE_CASES = cases({"UpdateEvaluationTest"})
SYNTAX_CASES = cases({"PositiveUpdateSyntaxTest11", "NegativeUpdateSyntaxTest11"})
READ_BACK = "SELECT ?g ?s ?p ?o { GRAPH ?g { ?s ?p ?o } }"
READ_BACK_DEFAULT = "SELECT ?s ?p ?o { ?s ?p ?o }"


def send_update(target, text: str) -> requests.Response:
    response = requests.post(
        target.update_url,
        data=text.encode("utf-8"),
        headers={"Content-Type": "application/sparql-update; charset=utf-8", **target.write_headers},
        timeout=60,
    )
    target.settle(response)
    return response


def _reset_text(case: Case) -> str:
    """DROP ALL, then the test's data in one INSERT DATA (N-Triples terms: blank nodes as written)."""
    lines = []
    for iri in case.data:
        lines += [str(q.triple) + " ." for q in quads_of(iri, None)]
    for name, iri in case.graph_data:
        lines.append(f"GRAPH <{name}> {{ " + " ".join(str(q.triple) + " ." for q in quads_of(iri, None)) + " }")
    return "DROP ALL" + (" ;\nINSERT DATA {\n" + "\n".join(lines) + "\n}" if lines else "")


def _dataset_graph(quads) -> Graph:
    """A dataset as one graph (each quad a node with its four parts), so that `isomorphic` matches blank nodes
    across the graphs of a dataset as the W3C's dataset comparison does."""
    graph = Graph()
    for s, p, o, g in quads:
        node = BNode()
        graph.add((node, RDF.subject, s))
        graph.add((node, RDF.predicate, p))
        graph.add((node, RDF.object, o))
        graph.add((node, GRAPH, g))
    return graph


def _expected(case: Case) -> Graph:
    quads = []
    for iri in case.result_data:
        quads += [(*_terms(q.triple), DEFAULT) for q in quads_of(iri, None)]
    for name, iri in case.result_graph_data:
        quads += [(*_terms(q.triple), URIRef(name)) for q in quads_of(iri, None)]
    return _dataset_graph(quads)


def _terms(triple) -> tuple:
    nt = str(triple) + " ."
    return next(iter(Graph().parse(data=nt, format="nt")))


def _actual(target) -> Graph:
    params = {"infer": "false"} if target.ours else {}
    quads = []
    for text, named in ((READ_BACK, True), (READ_BACK_DEFAULT, False)):
        if not named and target.ours:
            continue  # our default graph is the union of the named graphs, not a graph of its own
        response = requests.post(
            target.query_url,
            data={"query": text, **params},
            headers={"Accept": "application/sparql-results+json"},
            timeout=60,
        )
        response.raise_for_status()
        for row in Result.parse(io.BytesIO(response.content), format="json").bindings:
            graph = row.get(_var("g")) if named else DEFAULT
            quads.append((row[_var("s")], row[_var("p")], row[_var("o")], graph))
    return _dataset_graph(quads)


def _var(name: str) -> Variable:
    return Variable(name)


def run_update_case(target, case: Case) -> str | None:
    reset = send_update(target, _reset_text(case))
    if reset.status_code >= 300:
        return f"loading the test data: {answer_text(reset)}"
    assert case.action
    text = f"BASE <{case.action}>\n" + path_of(case.action).read_text(encoding="utf-8")
    response = send_update(target, text)
    if response.status_code >= 300:
        return f"the update: {answer_text(response)}"
    actual, expected = _actual(target), _expected(case)
    if isomorphic(actual, expected):
        return None
    return f"dataset after the update differs: {len(actual) // 4} quads, expected {len(expected) // 4}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", UPDATE_CASES, ids=[c.id for c in UPDATE_CASES])
def test_update_evaluation(update_servers, engine: str, case: Case) -> None:
    judge(engine, case, run_update_case(update_servers(engine), case))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", SYNTAX_CASES, ids=[c.id for c in SYNTAX_CASES])
def test_update_syntax(update_servers, engine: str, case: Case) -> None:
    """A positive syntax test is not refused as a syntax error (it may be refused by policy: LOAD, writes into the
    default graph); a negative one is 400."""
    assert case.action
    response = send_update(update_servers(engine), path_of(case.action).read_text(encoding="utf-8"))
    if case.kind.startswith("Positive"):
        bad = response.status_code == 400 or response.status_code >= 500
        problem = answer_text(response) if bad else None
    else:
        problem = None if response.status_code == 400 else f"{answer_text(response)} (not 400)"
    judge(engine, case, problem)
