"""The strict syntax check (service.sparql.syntax): what the grammar refuses is a syntax error, a function no
engine knows is a 422, anything else is left to the engine that runs the query."""

from __future__ import annotations

import pytest

from service.errors import QuerySyntaxError, QueryUnsupportedError
from service.sparql.syntax import check_syntax, unknown_function


def test_the_grammar_refuses_a_plain_variable_beside_an_aggregate():
    with pytest.raises(QuerySyntaxError):
        check_syntax("SELECT ?s (COUNT(*) AS ?n) { ?s ?p ?o }")


def test_an_unknown_function_is_unsupported_and_names_the_function():
    with pytest.raises(QueryUnsupportedError) as raised:
        check_syntax("PREFIX : <http://example.org/> SELECT (:f(1) AS ?x) {}")
    assert raised.value.status == 422
    assert raised.value.extra == {"function": "http://example.org/f"}


def test_a_known_function_and_other_errors_pass():
    check_syntax("SELECT (STRLEN('abc') AS ?n) {}")
    assert unknown_function(RuntimeError("The graph <http://example.org/g> does not exist")) is None
