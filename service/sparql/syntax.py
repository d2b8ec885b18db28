"""The strict syntax check: pyoxigraph's SPARQL 1.1 parser, for paths that must not accept what it refuses."""

from __future__ import annotations

import re

import pyoxigraph as ox

from service.errors import QuerySyntaxError, QueryUnsupportedError
from service.sparql.lexer import syntax_position, without_service

# pyoxigraph's refusal, as it plans a query, of a function it does not know (a valid query: not a syntax error)
UNKNOWN_FUNCTION = re.compile(r"The custom function <([^>]*)> is not supported")


def unknown_function(exc: Exception) -> QueryUnsupportedError | None:
    """The 422 for a query calling a function the engines do not know (from pyoxigraph's error), else None."""
    found = UNKNOWN_FUNCTION.search(str(exc))
    if found is None:
        return None
    return QueryUnsupportedError(f"the function <{found[1]}> is not known to this service", function=found[1])


def check_syntax(text: str, base_iri: str | None = None) -> None:
    """Refuse a query the SPARQL 1.1 grammar refuses (rdflib's parser accepts some: aggregates projected with
    plain variables, `GROUP BY` misuse, bad `VALUES` rows…), naming where when the parser says, and a query
    calling a function no engine here knows (as the embedded engine does).

    The query runs against an empty store, with SERVICE turned into GRAPH (no endpoint is called); solutions and
    triples are produced lazily, so only an ASK is evaluated, over nothing.

    Raises:
        QuerySyntaxError: with `line`/`column` extras when known.
        QueryUnsupportedError: a call to a function pyoxigraph does not know (with the `function` extra).
    """
    try:
        ox.Store().query(without_service(text), base_iri=base_iri)
    except SyntaxError as exc:
        where = syntax_position(str(exc))
        extra = {"line": where[0], "column": where[1]} if where else {}
        raise QuerySyntaxError(str(exc)[:1000], **extra) from None
    except (RuntimeError, ValueError) as exc:
        refusal = unknown_function(exc)
        if refusal is not None:
            raise refusal from None
        # anything else is not a syntax problem: the engine that runs the query reports it
