"""SPARQL Update checked before any engine sees it: syntax positions, forbidden operations, graph IRIs."""

from __future__ import annotations

from typing import Any

import pyoxigraph as ox
from pyparsing import ParseException
from rdflib.plugins.sparql.parser import parseUpdate

from service.errors import (
    BadRequestError,
    InvalidParameterError,
    LoadForbiddenError,
    QuerySyntaxError,
    ServiceForbiddenError,
    UpdateSyntaxError,
)
from service.sparql.lexer import Token, check_nesting, position, service_targets, tokens

INTERNAL_GRAPH_PREFIX = "urn:x-guian-kg:"  # reserved for the engines' own graphs, never written by clients


def comparable_iri(iri: str) -> str:
    """`iri` with its case-insensitive parts lower-cased: the scheme; a URN's namespace id (RFC 8141); an
    http(s) IRI's host (RFC 3986 §6.2.2.1). `URN:X-GUIAN-KG:meta` and `urn:x-guian-kg:meta` name one graph."""
    scheme, colon, rest = iri.partition(":")
    if not colon:
        return iri
    scheme = scheme.lower()
    if scheme == "urn":
        nid, colon, nss = rest.partition(":")
        return f"urn:{nid.lower()}{colon}{nss}"
    if scheme in ("http", "https") and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        return f"{scheme}://{authority.lower()}{slash}{path}"
    return f"{scheme}:{rest}"


def is_internal_graph(graph: Any, inferred_graph: str) -> bool:
    """Whether `graph` is the inferred graph or one of the engines' own (compared as IRIs, not as strings)."""
    if not isinstance(graph, ox.NamedNode):
        return False
    value = comparable_iri(graph.value)
    return value == comparable_iri(inferred_graph) or value.startswith(INTERNAL_GRAPH_PREFIX)


# --- checking a request before it reaches pyoxigraph ---------------------------------------------------


def _syntax(exc: QuerySyntaxError) -> UpdateSyntaxError:
    return UpdateSyntaxError(exc.detail, **exc.extra)


def _first_keyword(toks: tuple[Token, ...]) -> Token | None:
    """The first token after the BASE / PREFIX declarations."""
    i = 0
    while i < len(toks) and toks[i].kind == "word" and toks[i].text.lower() in ("base", "prefix"):
        i += 2 if toks[i].text.lower() == "base" else 3
    return toks[i] if i < len(toks) else None


def check_update(text: str, using: tuple[str, ...] = (), using_named: tuple[str, ...] = ()) -> str:
    """The update to evaluate: checked for LOAD, SERVICE and nesting, with the protocol's USING graphs written in.

    Raises:
        UpdateSyntaxError: an unterminated string, a query instead of an update, brackets nested too deep; with a
            LOAD, any update the grammar refuses (a syntax error wins over the 403).
        LoadForbiddenError: LOAD (it would fetch a URL).
        ServiceForbiddenError: SERVICE (updates never call other endpoints).
        BadRequestError: using-graph-uri / using-named-graph-uri together with USING or WITH in the text.
    """
    try:
        toks = tokens(text)
        check_nesting(text)
        services = service_targets(text)
    except QuerySyntaxError as exc:
        raise _syntax(exc) from None
    first = _first_keyword(toks)
    if first is not None and first.text.lower().startswith(("select", "ask", "construct", "describe")):
        line, column = position(text, first.pos)
        raise UpdateSyntaxError(
            f"{first.text} starts a query, not an update: send it to /sparql (line {line}, column {column})",
            line=line,
            column=column,
        )
    for token in toks:
        name = token.text.lower()
        # pyoxigraph matches keywords without a word boundary (see service.query_text): any word holding "load"
        # may be a LOAD to it.
        if (token.kind == "word" and "load" in name) or (token.kind == "pname" and "load" in name.split(":")[0]):
            _check_grammar(text)  # an update the grammar refuses is 400 update-syntax, before the policy's 403
            line, column = position(text, token.pos)
            raise LoadForbiddenError(
                f"LOAD is not allowed: upload the data with the Graph Store Protocol (line {line}, column {column})",
                line=line,
                column=column,
            )
    if services:
        raise ServiceForbiddenError("SERVICE is not allowed in updates", endpoint=services[0])
    if not (using or using_named):
        return text
    if any(t.kind == "word" and t.text.lower() in ("using", "with") for t in toks):
        raise BadRequestError(
            "using-graph-uri / using-named-graph-uri cannot be combined with USING or WITH in the update"
        )
    clause = "".join(f" USING <{iri}>" for iri in using) + "".join(f" USING NAMED <{iri}>" for iri in using_named)
    # USING goes before the WHERE of each DELETE/INSERT ... WHERE operation (not DELETE WHERE, which has none).
    cuts: list[int] = []
    depth = 0
    for i, token in enumerate(toks):
        if token.kind == "punct" and token.text in ("{", "(", "["):
            depth += 1
        elif token.kind == "punct" and token.text in ("}", ")", "]"):
            depth -= 1
        elif (
            depth == 0
            and token.kind == "word"
            and token.text.lower() == "where"
            and not (i and toks[i - 1].kind == "word" and toks[i - 1].text.lower() == "delete")
        ):
            cuts.append(token.pos)
    for pos in reversed(cuts):
        text = text[:pos] + clause + " " + text[pos:]
    return text


def _check_grammar(text: str) -> None:
    """Refuse an update the SPARQL 1.1 grammar refuses (by rdflib's parser: pyoxigraph only parses an update by
    running it, and a LOAD must never run).

    Raises:
        UpdateSyntaxError: with the parser's `line`/`column`.
    """
    try:
        parseUpdate(text)
    except ParseException as exc:
        raise UpdateSyntaxError(
            f"{exc.msg} (line {exc.lineno}, column {exc.col})", line=exc.lineno, column=exc.col
        ) from None
    except RecursionError:
        raise UpdateSyntaxError("the update is nested too deeply to parse") from None


def check_graph_iri(iri: str) -> None:
    """Refuse a graph name that is not an absolute IRI.

    Raises:
        InvalidParameterError: naming the parameter `graph`.
    """
    try:
        ox.NamedNode(iri)
    except ValueError:
        raise InvalidParameterError(f"graph must be an absolute IRI, got {iri[:200]!r}", parameter="graph") from None
