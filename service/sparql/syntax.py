"""The strict syntax check: pyoxigraph's SPARQL 1.1 parser, for paths that must not accept what it refuses."""

from __future__ import annotations

import pyoxigraph as ox

from service.errors import QuerySyntaxError
from service.sparql.lexer import syntax_position, without_service


def check_syntax(text: str, base_iri: str | None = None) -> None:
    """Refuse a query the SPARQL 1.1 grammar refuses (rdflib's parser accepts some: aggregates projected with
    plain variables, `GROUP BY` misuse, bad `VALUES` rows…), naming where when the parser says.

    The query runs against an empty store, with SERVICE turned into GRAPH (no endpoint is called); solutions and
    triples are produced lazily, so only an ASK is evaluated, over nothing.

    Raises:
        QuerySyntaxError: with `line`/`column` extras when known.
    """
    try:
        ox.Store().query(without_service(text), base_iri=base_iri)
    except SyntaxError as exc:
        where = syntax_position(str(exc))
        extra = {"line": where[0], "column": where[1]} if where else {}
        raise QuerySyntaxError(str(exc)[:1000], **extra) from None
    except (RuntimeError, ValueError):
        pass  # not a syntax problem: the engine that runs the query reports it
