"""SERVICE evaluated by us, inside rdflib's algebra evaluation: allow-listed endpoints as bind joins.

SERVICE. Neither engine's own client is fit to call out (PITFALLS, and measured with pyoxigraph 0.5.13): rdflib's
has no timeout and follows redirects to any host; pyoxigraph's has no timeout and no Python switch, and it ships
the bare inner pattern (`SELECT * WHERE { … }`) without the bindings the outer query already has, so every call
downloads everything the pattern matches remotely. Both engines therefore evaluate SERVICE here, inside rdflib's
algebra evaluation (`CUSTOM_EVALS`): the rdflib engine directly, the embedded engine by running its SERVICE queries
through rdflib's evaluator over a read-only view of its own pyoxigraph store (`FederatingEmbeddedEngine`).

A SERVICE call here:
- goes only to an endpoint on the allowlist (checked again, after `sparql.lexer.check_query` checked the text);
- is a *bind join*: the solutions found so far are sent along as one `VALUES` block per batch of rows (grouped by
  which of the pattern's variables they bind; never a blank node, which means nothing to another endpoint), and
  the answers are joined back locally; a left side with no rows makes no call at all;
- has its own time limit (`service_timeout`), never follows a redirect, reads at most MAX_ANSWER_BYTES, accepts
  only SPARQL results media types, and relabels the remote blank nodes so they never meet ours;
- fails as RemoteServiceError (502, `service-error`, naming the endpoint), or, under SERVICE SILENT, yields the one
  empty solution (the rows found so far pass through unchanged).
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import rdflib.plugins.sparql
from pyparsing import ParseResults
from rdflib import Literal, URIRef, Variable
from rdflib.plugins.sparql import CUSTOM_EVALS
from rdflib.plugins.sparql.evaluate import evalPart
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.plugins.sparql.sparql import FrozenBindings, QueryContext
from rdflib.term import Node

from service.engines.http import fetch_results, parse_solutions
from service.errors import (
    GuianError,
    RemoteServiceError,
    ServiceForbiddenError,
)
from service.sparql.lexer import tokens
from service.sparql.terms import from_oxigraph, to_oxigraph

log = logging.getLogger("guian_kg.remote")

BATCH_ROWS = 100  # distinct VALUES rows in one SERVICE call


# --- SERVICE inside rdflib's evaluation -------------------------------------------------------------------

Row = dict[Variable, Node]


@dataclass
class _Federation:
    """The SERVICE policy of the query being evaluated, and its answers so far (a query may repeat a call)."""

    allow: frozenset[str]
    timeout: float
    answers: dict[tuple[str, str], list[Row] | None] = field(default_factory=dict)

    def call(self, endpoint: str, query: str, variables: frozenset[Variable], silent: bool) -> list[Row] | None:
        """The rows `endpoint` answers, or None when a SILENT call failed."""
        key = (endpoint, query)
        if key not in self.answers:
            try:
                solutions = parse_solutions(endpoint, *fetch_results(endpoint, query, self.timeout))
                bnodes = f"s{uuid.uuid4().hex[:12]}x"
                wanted = [v for v in solutions.variables if Variable(v.value) in variables]
                try:  # pyoxigraph parses lazily: a cut-off answer fails here
                    self.answers[key] = [
                        {Variable(v.value): from_oxigraph(s[v], bnodes) for v in wanted if s[v] is not None}
                        for s in solutions
                    ]
                except SyntaxError as exc:
                    detail = f"SERVICE <{endpoint}> sent malformed results: {exc}"
                    raise RemoteServiceError(detail, endpoint=endpoint) from None
            except RemoteServiceError as exc:
                if not silent:
                    raise
                log.info("SERVICE SILENT <%s> failed, continuing without it: %s", endpoint, exc.detail)
                self.answers[key] = None
        return self.answers[key]


_FEDERATION: contextvars.ContextVar[_Federation | None] = contextvars.ContextVar("guian_kg_federation", default=None)


def configure_rdflib() -> None:
    """The process-wide switches of rdflib's SPARQL evaluator, set here and nowhere else (idempotent).

    - FROM / FROM NAMED / LOAD never fetch a URL or read a file (`SPARQL_LOAD_GRAPHS`; PITFALLS);
    - SERVICE is evaluated by `_evaluate` (our client, the allowlist of the query's context), never by rdflib's
      own client, which has no timeout and follows redirects to any host.
    """
    rdflib.plugins.sparql.SPARQL_LOAD_GRAPHS = False
    CUSTOM_EVALS["guian-kg-service"] = _evaluate


def use_service(allow: Sequence[str], timeout: float) -> None:
    """Let rdflib evaluation in this context run SERVICE to the `allow`-listed endpoints, with our client."""
    _FEDERATION.set(_Federation(frozenset(allow), timeout))


def _evaluate(ctx: QueryContext, part: CompValue) -> Iterator[FrozenBindings]:
    if part.name == "ServiceGraphPattern":
        return _service_join(ctx, part, [ctx.solution()])
    if part.name == "Join" and getattr(part.p2, "name", None) == "ServiceGraphPattern":
        return _service_join(ctx, part.p2, evalPart(ctx, part.p1))
    raise NotImplementedError  # rdflib evaluates every other part itself


def _service_spans(text: str) -> list[str]:
    """The text of every SERVICE clause of a query, from the keyword to its closing brace, in textual order."""
    toks = tokens(text)
    spans = []
    for i, token in enumerate(toks):
        if token.kind != "word" or token.text.lower() != "service":
            continue
        depth, j = 0, i + 1
        while j < len(toks) and not (toks[j].kind == "punct" and toks[j].text == "{"):
            j += 1
        for k in range(j, len(toks)):
            if toks[k].kind == "punct" and toks[k].text in "{}":
                depth += 1 if toks[k].text == "{" else -1
                if depth == 0:
                    spans.append(text[token.pos : toks[k].pos + 1])
                    break
    return spans


def _in_order(tree: Any, found: list[CompValue]) -> list[CompValue]:
    if isinstance(tree, CompValue):
        if tree.name == "ServiceGraphPattern":
            found.append(tree)
        for value in tree.values():
            _in_order(value, found)
    elif isinstance(tree, list | tuple | ParseResults):
        for value in tree:
            _in_order(value, found)
    return found


def restore_service_text(parsed: Any, text: str) -> None:
    """Give each SERVICE of rdflib's parse tree its own text (rdflib#3069: all get the first one's).

    Raises:
        GuianError: when the parse tree and the text disagree on the SERVICE clauses.
    """
    nodes, spans = _in_order(parsed, []), _service_spans(text)
    if len(nodes) != len(spans):
        raise GuianError("the SERVICE clauses of this query could not be read back")
    for node, span in zip(nodes, spans, strict=True):
        node["service_string"] = span


def _inner_text(ctx: QueryContext, service: CompValue) -> tuple[str, str]:
    """The SERVICE's group pattern as written, and the BASE/PREFIX lines it needs."""
    text = str(service.service_string or "")  # CompValue attributes are None when absent
    toks = tokens(text)
    start = next((t.pos for t in toks if t.kind == "punct" and t.text == "{"), None)
    if start is None:
        raise GuianError("the SERVICE pattern could not be read back")
    inner = text[start:]
    prologue = ctx.prologue
    header = []
    if prologue is not None:
        if prologue.base:
            header.append(f"BASE <{prologue.base}>")
        declared = dict(prologue.namespace_manager.namespaces())
        used = {t.text.split(":", 1)[0] for t in tokens(inner) if t.kind == "pname"}
        header += [f"PREFIX {p}: <{declared[p]}>" for p in sorted(used) if p in declared]
    return inner, "".join(line + "\n" for line in header)


def _service_query(header: str, inner: str, variables: tuple[Variable, ...], values: Iterable[tuple[Node, ...]]) -> str:
    block = ""
    if variables:
        rows = "\n".join("(" + " ".join(str(to_oxigraph(t)) for t in row) + ")" for row in values)
        block = "VALUES (" + " ".join("?" + v for v in variables) + ") {\n" + rows + "\n}\n"
    return f"{header}SELECT * WHERE {{\n{block}{inner}\n}}"


def _compatible(row: FrozenBindings, answer: Row) -> bool:
    return all(row.get(v) in (None, value) for v, value in answer.items())


def _service_join(ctx: QueryContext, service: CompValue, left: Iterable[FrozenBindings]) -> Iterator[FrozenBindings]:
    """Join `left` with the SERVICE pattern's answers: one call per batch of rows and set of bound variables.

    Raises:
        ServiceForbiddenError: an endpoint not on the allowlist (or no policy set for this evaluation).
        RemoteServiceError: the endpoint failed and the SERVICE is not SILENT.
    """
    federation = _FEDERATION.get()
    endpoint = str(service.term)
    if federation is None or not isinstance(service.term, URIRef) or endpoint not in federation.allow:
        raise ServiceForbiddenError(f"SERVICE <{endpoint}> is not on this server's allowlist", endpoint=endpoint)
    inner, header = _inner_text(ctx, service)
    pattern_vars = frozenset(service._vars or ())
    silent = bool(service.silent)
    left_rows = iter(left)
    while batch := list(itertools.islice(left_rows, BATCH_ROWS)):
        groups: dict[tuple[Variable, ...], list[FrozenBindings]] = {}
        for row in batch:
            # Blank nodes are never sent: ours mean nothing remotely, and theirs come back relabelled.
            bound = tuple(sorted(v for v in pattern_vars if isinstance(row.get(v), URIRef | Literal)))
            groups.setdefault(bound, []).append(row)
        for variables, rows in groups.items():
            values = dict.fromkeys(tuple(row[v] for v in variables) for row in rows)
            answers = federation.call(endpoint, _service_query(header, inner, variables, values), pattern_vars, silent)
            if answers is None:  # SILENT failure: the one empty solution, compatible with every row
                yield from rows
                continue
            index: dict[tuple[Node | None, ...], list[Row]] = {}
            for answer in answers:
                index.setdefault(tuple(answer.get(v) for v in variables), []).append(answer)
            for row in rows:
                for answer in index.get(tuple(row[v] for v in variables), ()):
                    if _compatible(row, answer):
                        yield row.merge(answer)
