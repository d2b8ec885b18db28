"""The SPARQL lexer in front of every engine: query forms, SERVICE endpoints, and what must never fool it."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from unittest import mock

import pyoxigraph as ox
import pytest

from service.errors import QuerySyntaxError, ServiceForbiddenError
from service.sparql import lexer
from service.sparql.lexer import check_query, dataset_clause, query_form, service_targets, without_service

EX = "http://example.org/"
QUERIES = Path(__file__).resolve().parents[3] / "queries"
GRAMMAR = re.compile("|".join(lexer.GRAMMAR), re.DOTALL)


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("SELECT * WHERE { ?s ?p ?o }", "select"),
        ("select*{?s ?p ?o}", "select"),
        ("ASK{}", "ask"),
        ("CONSTRUCT WHERE { ?s ?p ?o }", "construct"),
        ("describe <http://example.org/x>", "describe"),
        ("# a comment\nPREFIX ex: <http://example.org/>\nBASE <http://example.org/>\nSELECT ?s {}", "select"),
        ("prefix : <http://example.org/> prefix ex:<http://example.org/x#> ask {}", "ask"),
    ],
)
def test_query_form(text: str, form: str) -> None:
    assert query_form(text) == form


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("", 1, 1),
        ("# only a comment\n", 2, 1),
        ("PREFIX ex: <http://example.org/>\n  WHERE { ?s ?p ?o }", 2, 3),
        ("PREFIX ex <http://example.org/> SELECT * {}", 1, 8),
        ("BASE SELECT * {}", 1, 6),
    ],
)
def test_no_query_form_says_where(text: str, line: int, column: int) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        query_form(text)
    assert (caught.value.extra["line"], caught.value.extra["column"]) == (line, column)


@pytest.mark.parametrize(
    ("text", "keyword", "line", "column"),
    [
        ("INSERT DATA { <a:s> <a:p> <a:o> }", "INSERT", 1, 1),
        ("PREFIX ex: <http://example.org/>\n\n   delete where { ?s ?p ?o }", "delete", 3, 4),
        ("LOAD <http://example.org/data>", "LOAD", 1, 1),
        ("clear all", "clear", 1, 1),
        ("DROP GRAPH <http://example.org/g>", "DROP", 1, 1),
        ("CREATE GRAPH <http://example.org/g>", "CREATE", 1, 1),
        ("ADD <http://example.org/a> TO <http://example.org/b>", "ADD", 1, 1),
        ("MOVE DEFAULT TO <http://example.org/b>", "MOVE", 1, 1),
        ("COPY DEFAULT TO <http://example.org/b>", "COPY", 1, 1),
        ("WITH <http://example.org/g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }", "WITH", 1, 1),
    ],
)
def test_update_is_pointed_at(text: str, keyword: str, line: int, column: int) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        query_form(text)
    assert keyword in caught.value.detail and "Update" in caught.value.detail
    assert (caught.value.extra["line"], caught.value.extra["column"]) == (line, column)


def test_unterminated_string_is_a_syntax_error() -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        service_targets('SELECT * WHERE {\n  ?s ?p "open }')
    assert caught.value.extra["line"] == 2


@pytest.mark.parametrize(
    ("text", "targets"),
    [
        (f"SELECT * WHERE {{ SERVICE <{EX}sparql> {{ ?s ?p ?o }} }}", [f"{EX}sparql"]),
        (f"select * where {{ service silent <{EX}a> {{}} SeRvIcE <{EX}b> {{}} }}", [f"{EX}a", f"{EX}b"]),
        (f"PREFIX ex: <{EX}> SELECT * {{ SERVICE ex:sparql {{}} }}", [f"{EX}sparql"]),
        (f"PREFIX : <{EX}> SELECT * {{ SERVICE :a\\-b {{}} }}", [f"{EX}a-b"]),
        (f"BASE <{EX}> SELECT * {{ SERVICE <sparql> {{}} }}", [f"{EX}sparql"]),
        ("SELECT * { SERVICE <relative> {} }", ["relative"]),
        ("SELECT * { BIND(<http://x/> AS ?e) SERVICE ?e {} }", [None]),
        ("SELECT * { SERVICE <http://example.org/\\u0073parql> {} }", [f"{EX}sparql"]),
        (
            f"SELECT * {{ {{ SELECT * {{ SERVICE <{EX}n> {{}} }} }} FILTER EXISTS {{ SERVICE <{EX}e> {{}} }} }}",
            [f"{EX}n", f"{EX}e"],
        ),
        ("SELECT * { SERVICE ex:unknown {} }", ["ex:unknown"]),
    ],
)
def test_service_targets(text: str, targets: list[str | None]) -> None:
    assert service_targets(text) == targets


@pytest.mark.parametrize(
    "text",
    [
        'SELECT * { ?s ?p "SERVICE <http://evil/> {}" }',
        "SELECT * { ?s ?p 'SERVICE <http://evil/> {}' }",
        'SELECT * { ?s ?p """line\nSERVICE <http://evil/> {}\n""" }',
        "SELECT * { ?s ?p '''it's\n'' SERVICE <http://evil/> {}''' }",
        'SELECT * { ?s ?p "a \\" SERVICE <http://evil/> {}" }',
        "SELECT * { ?s ?p ?o } # SERVICE <http://evil/> {}",
        "SELECT * { ?s <http://example.org/SERVICE> ?o }",
        "SELECT * { ?service ?p ?o . ?s ?p $SERVICE }",
        "PREFIX ex: <http://example.org/> SELECT * { ?s ex:service ex:Service }",
        'SELECT * { ?s ?p "x"@service }',
        "SELECT * { _:service ?p ?o }",
    ],
)
def test_not_fooled_by_strings_comments_iris_names(text: str) -> None:
    assert service_targets(text) == []
    assert check_query(text, ()) == "select"


@pytest.mark.parametrize(
    "text",
    [
        # An escaped '#' or quote in a local name starts neither a comment nor a string.
        "PREFIX ex: <http://example.org/> SELECT * { ?s ex:a\\# ?o SERVICE <http://evil/> {} }",
        "PREFIX ex: <http://example.org/> SELECT * { ?s ex:a\\' ?o SERVICE <http://evil/> {} } #'",
        # pyoxigraph matches keywords without a word boundary (measured: each of these calls the endpoint).
        "SELECT * { ?s ?p trueSERVICE <http://evil/> {} }",
        "SELECT * { SERVICESILENT <http://evil/> {} }",
        "PREFIX : <http://evil/> SELECT * { SERVICE:x {} }",
        "PREFIX ex: <http://evil/> SELECT * { SERVICEex:x {} }",
        "PREFIX ex: <http://evil/> PREFIX SILENTex: <http://example.org/> SELECT * { SERVICE SILENTex:x {} }",
        "SELECT * { ?s ?p 1.SERVICE <http://evil/> {} }",
        "SELECT * { SERVICE#comment\n<http://evil/> {} }",
        "SELECT * {\tSERVICE\t<http://evil/>{}}",
    ],
)
def test_hidden_service_is_found(text: str) -> None:
    assert service_targets(text)
    allow = ("http://example.org/x", "http://example.org/")
    with pytest.raises(ServiceForbiddenError):
        check_query(text, allow)


def test_check_query_allowlist() -> None:
    text = f"PREFIX ex: <{EX}> SELECT * {{ SERVICE ex:sparql {{ ?s ?p ?o }} }}"
    assert check_query(text, (f"{EX}sparql",)) == "select"
    with pytest.raises(ServiceForbiddenError) as caught:
        check_query(text, (f"{EX}other",))
    assert caught.value.extra["endpoint"] == f"{EX}sparql"
    assert f"{EX}sparql" in caught.value.detail
    with pytest.raises(ServiceForbiddenError):
        check_query("SELECT * { VALUES ?e { <http://example.org/sparql> } SERVICE ?e {} }", (f"{EX}sparql",))


def test_check_query_refuses_updates_before_services() -> None:
    with pytest.raises(QuerySyntaxError):
        check_query(f"INSERT {{ ?s ?p ?o }} WHERE {{ SERVICE <{EX}s> {{ ?s ?p ?o }} }}", (f"{EX}s",))


def test_dataset_clause() -> None:
    text = (
        f"PREFIX g: <{EX}graph/> BASE <{EX}base/>\n"
        "SELECT * FROM g:a FROM <b> from named <c> FROM NAMED <file:///etc/passwd> WHERE { ?s ?p ?o }"
    )
    assert dataset_clause(text) == ([f"{EX}graph/a", f"{EX}base/b"], [f"{EX}base/c", "file:///etc/passwd"])
    assert dataset_clause("SELECT * FROM <rel> {}", base_iri=f"{EX}sparql") == ([f"{EX}rel"], [])
    assert dataset_clause("SELECT * { ?s <http://x/from> ?o }") == ([], [])


# -- differential: whatever makes pyoxigraph open a connection, check_query must refuse ---------------------


# Slots of a SERVICE call, each with spellings that lexers get wrong: pyoxigraph decides what is a call.
_BEFORE = ["", ".", "?s ?p true", "?s ?p 1.", "?s ?p <URL>.", "?s ?p x:a\\#", "?s ?p x:a\\'", "?s ?p 'a#'", "# c\n"]
_KEYWORD = [
    "SERVICE",
    "service",
    "SeRvIcE",
    "SERVICE SILENT",
    "SERVICESILENT",
    "SERVICE silent",
    "trueSERVICE",
    "SERVIC",
]
_GAP = ["", " ", "\t", "\n", "#c\n", " #'\n"]
_ENDPOINT = ["<URL>", "<URL/y>", ":", ":y", "x:y", "x:", "SILENTx:y", "<\\u0068ttp://127.0.0.1:PORT/>", "?e", "'<URL>'"]
_AFTER = ["{}", "{ ?s ?p ?o }", "{ ?s ?p ?o } .", "{ } # }"]


def test_differential_against_pyoxigraph(listener: tuple[str, list[bytes]]) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    strategies = pytest.importorskip("hypothesis.strategies")
    url, seen = listener
    store = ox.Store()
    store.add(ox.Quad(ox.NamedNode(EX + "s"), ox.NamedNode(EX + "p"), ox.Literal(True)))
    prologue = f"PREFIX : <{url}> PREFIX x: <{url}> PREFIX SILENTx: <{EX}> "
    reached: list[str] = []

    slots = (_BEFORE, _KEYWORD, _GAP, _ENDPOINT, _GAP, _AFTER)

    @hypothesis.settings(max_examples=400, deadline=None, derandomize=True, database=None)
    @hypothesis.given(strategies.tuples(*(strategies.sampled_from(slot) for slot in slots)))
    def attempt(parts: tuple[str, ...]) -> None:
        call = "".join(parts).replace("URL", url[:-1]).replace("PORT", url.rsplit(":", 1)[1][:-1])
        text = f"{prologue}SELECT * WHERE {{ BIND(<{url}> AS ?e) ?s ?p ?o . {call} }}"
        before = len(seen)
        with contextlib.suppress(Exception):  # syntax errors and dropped connections: most attempts
            list(store.query(text))
        if len(seen) > before:
            reached.append(text)
            with pytest.raises((ServiceForbiddenError, QuerySyntaxError)):
                check_query(text, (EX, EX + "y"))

    attempt()
    assert len(reached) > 20, "too few generated queries reached the listener: the test proves little"


def test_without_service_keeps_positions_and_calls_nobody(listener) -> None:
    url, seen = listener
    text = f"SELECT * WHERE {{\n  SERVICE SILENT <{url}> {{ ?s ?p ?o }}\n  service <{url}> {{ ?a ?b ?c }} }}"
    checked = without_service(text)
    assert len(checked) == len(text)
    assert service_targets(checked) == []
    assert "GRAPH" in checked and "SILENT" not in checked.upper()
    list(ox.Store().query(checked))
    assert seen == []


def _tokens_one_match_at_a_time(text: str) -> tuple:
    """The lexer as it was before it was made fast: one `match` per offset, keywords found by `word` after
    `pname` failed (issue 17): the reference the fast lexer must equal."""
    found, pos = [], 0
    while pos < len(text):
        match = GRAMMAR.match(text, pos)
        assert match is not None
        kind = match.lastgroup
        if kind == "punct" and text[pos] in "'\"":
            line, column = lexer.position(text, pos)
            raise QuerySyntaxError(f"unterminated string (line {line}, column {column})", line=line, column=column)
        if kind not in ("ws", "comment"):
            found.append(lexer.Token(kind, match.group(), pos))
        pos = match.end()
    return tuple(found)


def _outcome(function, *args):
    try:
        return "ok", function(*args)
    except (QuerySyntaxError, ServiceForbiddenError) as exc:
        return type(exc).__name__, exc.detail


FAST_LEXER_TEXTS = [
    *(path.read_text(encoding="utf-8") for path in sorted(QUERIES.glob("*.rq"))),
    "SELECT?x{?x a:b.c:d;e:f,g}",
    "ASK{FILTER(trueSERVICE<u>)}",
    "SELECT * { ex.y:z aé:b SERVICEex:x <u> }",
    "SELECT ?x { ?x <p> 'unterminated }",
    "PREFIX a.b: <http://x/> SELECT * { a.b:c ?p ?o } # from named <g>",
    "SELECT * FROM <g> FROM NAMED <h> WHERE { GRAPH ?g { ?s ?p ?o } }",
    "SELECT * {" + "{" * 300 + "}" * 300 + "}",
    "ASK {" + " ?s <p> ?o ." * 1500 + "}",
]


@pytest.mark.parametrize("text", FAST_LEXER_TEXTS, ids=range(len(FAST_LEXER_TEXTS)))
def test_fast_lexer_and_its_shortcuts_change_nothing(text: str) -> None:
    """tokens() with finditer and the `keyword` alternative, and the checks that skip their walk over the tokens
    (nesting, SERVICE, FROM), answer exactly what the one-token-at-a-time lexer and full walks answer."""
    assert _outcome(lexer.tokens, text) == _outcome(_tokens_one_match_at_a_time, text)
    for function, args in (
        (check_query, (text, ("http://allowed.example/",))),
        (lexer.check_nesting, (text,)),
        (service_targets, (text,)),
        (dataset_clause, (text, "http://base.example/")),
    ):
        with (
            mock.patch.object(lexer, "tokens", _tokens_one_match_at_a_time),
            mock.patch.object(lexer, "_short_and_shallow", lambda text: False),
            mock.patch.object(lexer, "_lacks", lambda word, text: False),
        ):
            reference = _outcome(function, *args)  # the plain lexer, and every walk taken
        assert _outcome(function, *args) == reference


def test_fast_lexer_on_random_texts() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    strategies = pytest.importorskip("hypothesis.strategies")
    alphabet = "SELECTWHERselectwhere{}()[]?$x:ab_<>\"' \n\t#.;,|/!&-+*^@1e5é·\\servicefromnamed"

    @hypothesis.settings(max_examples=1500, deadline=None, derandomize=True, database=None)
    @hypothesis.given(strategies.text(alphabet, max_size=80))
    def check(text: str) -> None:
        assert _outcome(lexer.tokens.__wrapped__, text) == _outcome(_tokens_one_match_at_a_time, text)

    check()
