"""W3C SPARQL 1.1 query evaluation, query syntax and result-format tests, over HTTP, on every target.

Each query goes out with its data as `default-graph-uri`/`named-graph-uri` (graphs named after the data files,
loaded once per server) and `infer=false`; the answer is asked for in JSON (GET), XML (POST form) and, where the
test's expected result is CSV or TSV, in that format (POST `application/sparql-query`); CONSTRUCT answers in
Turtle (GET) and N-Triples (POST form). Every format must give the expected result.
"""

from __future__ import annotations

import re

import pytest
import requests
from rdflib import Graph
from w3c.judge import judge
from w3c.suite import (
    ENGINES,
    EXTENSION_FORMAT,
    QUERY_GROUPS_LEFT_OUT,
    RESULT_MEDIA,
    Case,
    answer_text,
    cases,
    expected_results,
    parse_results,
    path_of,
    query_graphs,
    same_graph,
    same_results,
)

from service.errors import QuerySyntaxError
from service.sparql.lexer import query_form

pytestmark = pytest.mark.w3c

EMPTY = "urn:w3c:empty"  # a graph nobody loads: the empty default graph of a test without data
ORDER_BY = re.compile(r"\bORDER\s+BY\b", re.IGNORECASE)

QUERY_CASES = [
    c
    for c in cases({"QueryEvaluationTest", "CSVResultFormatTest"})
    if c.group not in QUERY_GROUPS_LEFT_OUT and c.result
]
SYNTAX_CASES = cases({"PositiveSyntaxTest11", "NegativeSyntaxTest11"})


def _ids(items: list[Case]) -> list[str]:
    return [c.id for c in items]


def ask(target, text: str, params: list[tuple[str, str]], method: str, accept: str) -> requests.Response:
    """One query by one of the protocol's three request methods."""
    params = [*params, ("infer", "false")] if target.ours else params
    headers = {"Accept": accept}
    if method == "get":
        return requests.get(target.query_url, params=[("query", text), *params], headers=headers, timeout=60)
    if method == "form":
        return requests.post(target.query_url, data=[("query", text), *params], headers=headers, timeout=60)
    headers["Content-Type"] = "application/sparql-query; charset=utf-8"
    return requests.post(target.query_url, params=params, data=text.encode("utf-8"), headers=headers, timeout=60)


def _dataset(case: Case, text: str) -> list[tuple[str, str]]:
    from_default, from_named = query_graphs(text, case.action or "")
    if from_default or from_named:
        return []  # the query names its dataset
    params = [("default-graph-uri", iri) for iri in case.data] or [("default-graph-uri", EMPTY)]
    return params + [("named-graph-uri", name) for name, _ in case.graph_data]


def run_query_case(target, case: Case) -> str | None:
    """Why the case fails on `target`, or None."""
    assert case.action and case.result
    raw = path_of(case.action).read_text(encoding="utf-8")
    text = f"BASE <{case.action}>\n{raw}"
    params = _dataset(case, raw)
    kind, expected = expected_results(case.result)
    if kind == "graph":
        for method, fmt, media in (("get", "turtle", "text/turtle"), ("form", "nt", "application/n-triples")):
            response = ask(target, text, params, method, media)
            if response.status_code != 200:
                return f"{fmt}: {answer_text(response)}"
            try:
                got = Graph().parse(data=response.content, format=fmt)
            except Exception as exc:
                return f"{fmt}: unreadable answer: {exc}"
            problem = same_graph(got, expected)
            if problem:
                return f"{fmt}: {problem}"
        return None
    ordered = bool(ORDER_BY.search(raw))
    wanted = [("get", "json"), ("form", "xml")]
    own = EXTENSION_FORMAT.get("." + case.result.rsplit(".", 1)[-1])
    if own in ("csv", "tsv"):
        wanted = [("direct", own)]  # the test is about this format (expected results carry its limits)
    for method, fmt in wanted:
        response = ask(target, text, params, method, RESULT_MEDIA[fmt])
        if response.status_code != 200:
            return f"{fmt}: {answer_text(response)}"
        try:
            got = parse_results(response.content, fmt)
        except Exception as exc:
            return f"{fmt}: unreadable answer: {exc}"
        problem = same_results(got, expected, ordered)
        if problem:
            return f"{fmt}: {problem}"
    return None


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", QUERY_CASES, ids=_ids(QUERY_CASES))
def test_query_evaluation(servers, engine: str, case: Case) -> None:
    judge(engine, case, run_query_case(servers(engine), case))


def _accept_for(text: str) -> str:
    """A media type the query's form can be answered in (by the project's own lexer: Turtle for CONSTRUCT and
    DESCRIBE, results JSON for SELECT and ASK)."""
    try:
        form = query_form(text)
    except QuerySyntaxError:
        return RESULT_MEDIA["json"]
    return "text/turtle" if form in ("construct", "describe") else RESULT_MEDIA["json"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", SYNTAX_CASES, ids=_ids(SYNTAX_CASES))
def test_query_syntax(servers, engine: str, case: Case) -> None:
    """A positive syntax test is answered (200) in a format of its query form; a negative one is 400, though the
    Accept header asks for results JSON (the syntax error wins over 406 for a CONSTRUCT or DESCRIBE)."""
    assert case.action
    text = path_of(case.action).read_text(encoding="utf-8")
    target = servers(engine)
    accept = _accept_for(text) if case.kind.startswith("Positive") else RESULT_MEDIA["json"]
    response = ask(target, text, [("default-graph-uri", EMPTY)], "form", accept)
    if case.kind.startswith("Positive"):
        problem = None if response.status_code == 200 else answer_text(response)
    else:
        problem = None if response.status_code == 400 else f"{answer_text(response)} (not 400)"
    judge(engine, case, problem)
