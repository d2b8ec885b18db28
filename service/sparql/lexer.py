"""A small SPARQL lexer: the query form, the dataset clause and the SERVICE endpoints of a query text.

It runs in front of every engine, so it must never be fooled by a keyword inside a string, comment or IRI,
and it must see SERVICE wherever pyoxigraph would. pyoxigraph's parser matches keywords without a word
boundary (measured with 0.5.13: `trueSERVICE <u>`, `SERVICE:x`, `SERVICEex:x`, `SERVICESILENT <u>` and
`SERVICE SILENTex:x` all call the endpoint), so any name token that contains "service" counts as a SERVICE,
and any spelling other than the plain one names an endpoint that no allowlist entry can match.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urljoin

from service.errors import QuerySyntaxError, ServiceForbiddenError

FORMS = ("select", "ask", "construct", "describe")
UPDATE_KEYWORDS = ("insert", "delete", "load", "clear", "drop", "create", "add", "move", "copy", "with")
# pyoxigraph recurses over nesting and over chains (measured with 0.5.13): near 2,500 nested brackets, or
# 10,000 `.`/`;`/`||`/`/`/UNION/OPTIONAL/`!` in one pattern, it overflows the stack and the process dies
# (SIGSEGV). rdflib answers RecursionError (a 400) from about 45 nested levels. Real queries stay far below.
MAX_NESTING = 256
MAX_CHAIN = 4000
_CHAIN_PUNCT = frozenset({".", ";", ",", "|", "/", "!", "||", "&&", "-", "+", "*", "^"})
_CHAIN_WORDS = frozenset({"union", "optional", "minus"})

# Character classes of the SPARQL 1.1 grammar (section 19.8).
_BASE = (
    "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_CHARS_U = _BASE + "_"
_CHARS = _CHARS_U + "\\-0-9\u00b7\u0300-\u036f\u203f-\u2040"
_PLX = r"%[0-9A-Fa-f]{2}|\\[_~.\-!$&'()*+,;=/?#@%]"
_PREFIX = rf"[{_BASE}](?:[{_CHARS}.]*[{_CHARS}])?"
_LOCAL = rf"(?:[{_CHARS_U}:0-9]|{_PLX})(?:(?:[{_CHARS}.:]|{_PLX})*(?:[{_CHARS}:]|{_PLX}))?"
_UCHAR = r"\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}"

GRAMMAR = (  # the tokens of the grammar, tried in this order
    r"(?P<ws>[ \t\r\n]+)",
    r"(?P<comment>#[^\r\n]*)",
    r"(?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^\"\\]|\\.|\"(?!\"\"))*\"\"\""
    r"|'(?:[^'\\\r\n]|\\.)*'|\"(?:[^\"\\\r\n]|\\.)*\")",
    rf"(?P<iri><(?:[^<>\"{{}}|^`\\\x00-\x20]|{_UCHAR})*>)",
    rf"(?P<var>[?$][{_CHARS_U}0-9][{_CHARS_U}0-9\u00b7\u0300-\u036f\u203f-\u2040]*)",
    rf"(?P<bnode>_:[{_CHARS_U}0-9](?:[{_CHARS}.]*[{_CHARS}])?)",
    r"(?P<langtag>@[a-zA-Z]+(?:-[a-zA-Z0-9]+)*)",
    r"(?P<number>[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)",
    rf"(?P<pname>(?:{_PREFIX})?:(?:{_LOCAL})?)",
    r"(?P<word>[A-Za-z]+)",
    r"(?P<punct>\^\^|&&|\|\||!=|<=|>=|.)",
)
# A keyword that no prefixed name could continue: the `word` that GRAMMAR finds once `pname` has failed, found
# first (most tokens of a query; the same tokens either way, tests/unit/sparql/test_lexer.py).
KEYWORD = rf"(?P<keyword>[A-Za-z]+(?![{_CHARS}.:]))"
_TOKEN = re.compile("|".join((GRAMMAR[0], KEYWORD, *GRAMMAR[1:])), re.DOTALL)
_UNTERMINATED = re.compile(r"'''|\"\"\"|['\"]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_LOCAL_ESCAPE = re.compile(r"\\(.)")
_UCHAR_RE = re.compile(_UCHAR)


class Token(NamedTuple):
    """One significant token: its kind (a group name of `_TOKEN`), text and offset in the query."""

    kind: str
    text: str
    pos: int


def position(text: str, pos: int) -> tuple[int, int]:
    """The 1-based line and column (in characters) of offset `pos`, as the engines count them."""
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _error(text: str, pos: int, message: str) -> QuerySyntaxError:
    line, column = position(text, pos)
    return QuerySyntaxError(f"{message} (line {line}, column {column})", line=line, column=column)


@lru_cache(maxsize=32)
def tokens(text: str) -> tuple[Token, ...]:
    """The significant tokens of a query (no whitespace or comments).

    Raises:
        QuerySyntaxError: at an unterminated string (everything after it would otherwise be hidden).
    """
    found: list[Token] = []
    append = found.append
    # Every offset starts a token (`.` in punct matches any character), so the matches tile the text.
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "ws" or kind == "comment":
            continue
        if kind == "keyword":
            kind = "word"
        elif kind == "punct" and _UNTERMINATED.match(text, match.start()):
            raise _error(text, match.start(), "unterminated string")
        append(Token(kind, match.group(), match.start()))  # type: ignore[arg-type]
    return tuple(found)


def _iri_value(token: Token) -> str:
    return _UCHAR_RE.sub(lambda m: chr(int(m.group()[2:], 16)), token.text[1:-1])


def _resolve(iri: str, base: str | None) -> str:
    """An IRI made absolute against `base` when it is relative and a base is known."""
    if _SCHEME.match(iri) or not base or not _SCHEME.match(base):
        return iri
    return urljoin(base, iri)


class _Prologue(NamedTuple):
    base: str | None
    prefixes: dict[str, str]
    body: int  # index of the first token after the prologue


def _prologue(text: str, toks: tuple[Token, ...], base_iri: str | None = None) -> _Prologue:
    base, prefixes, i = base_iri, {}, 0
    while i < len(toks) and toks[i].kind == "word" and toks[i].text.lower() in ("base", "prefix"):
        if toks[i].text.lower() == "base":
            if i + 1 >= len(toks) or toks[i + 1].kind != "iri":
                raise _error(text, toks[min(i + 1, len(toks) - 1)].pos, "BASE needs an IRI <...>")
            base = _resolve(_iri_value(toks[i + 1]), base)
            i += 2
        else:
            if (
                i + 2 >= len(toks)
                or toks[i + 1].kind != "pname"
                or not toks[i + 1].text.endswith(":")
                or toks[i + 2].kind != "iri"
            ):
                raise _error(text, toks[min(i + 1, len(toks) - 1)].pos, "PREFIX needs a name ending in ':' and an IRI")
            prefixes[toks[i + 1].text[:-1]] = _resolve(_iri_value(toks[i + 2]), base)
            i += 3
    return _Prologue(base, prefixes, i)


def _short_and_shallow(text: str) -> bool:
    """Whether the text is within both limits of `check_nesting` by its length and brackets alone (every token is
    at least one character, every bracket one of these characters): no walk over its tokens needed."""
    return len(text) <= MAX_CHAIN and text.count("(") + text.count("{") + text.count("[") <= MAX_NESTING


def _lacks(word: str, text: str) -> bool:
    """Whether no token of the text can contain `word` (lower case), because the text does not."""
    return word not in text.lower()


def check_nesting(text: str) -> None:
    """Refuse brackets nested deeper than MAX_NESTING and more than MAX_CHAIN operators, which crash pyoxigraph.

    The triples of INSERT DATA / DELETE DATA blocks are not counted: pyoxigraph reads those iteratively.

    Raises:
        QuerySyntaxError: at the first bracket or operator past a limit.
    """
    toks = tokens(text)
    if _short_and_shallow(text):
        return
    depth = chain = 0
    data_block: int | None = None  # the depth an INSERT DATA / DELETE DATA block opened at
    for i, token in enumerate(toks):
        lowered = token.text.lower()
        if token.kind == "punct" and lowered in ("(", "{", "["):
            if (
                data_block is None
                and lowered == "{"
                and i >= 2
                and toks[i - 1].text.lower() == "data"
                and toks[i - 2].text.lower() in ("insert", "delete")
            ):
                data_block = depth
            depth += 1
            if depth > MAX_NESTING:
                raise _error(text, token.pos, f"brackets are nested more than {MAX_NESTING} levels deep")
        elif token.kind == "punct" and lowered in (")", "}", "]"):
            depth -= 1
            if data_block is not None and depth <= data_block:
                data_block = None
        elif data_block is None and (
            (token.kind == "punct" and lowered in _CHAIN_PUNCT) or (token.kind == "word" and lowered in _CHAIN_WORDS)
        ):
            chain += 1
            if chain > MAX_CHAIN:
                raise _error(text, token.pos, f"the text has more than {MAX_CHAIN} operators and separators")


def query_form(text: str) -> str:
    """The query form: "select", "ask", "construct" or "describe".

    Raises:
        QuerySyntaxError: with `line`/`column` when there is no query form, or pointing at the update keyword
            when the text is a SPARQL Update.
    """
    toks = tokens(text)
    prologue = _prologue(text, toks)
    if prologue.body >= len(toks):
        raise _error(text, len(text), "expected SELECT, ASK, CONSTRUCT or DESCRIBE")
    first = toks[prologue.body]
    word = first.text.lower() if first.kind == "word" else ""
    # Prefix matches, like the engines' keyword matching: `SELECT*` and `ASK{` lex as one word only if glued.
    for form in FORMS:
        if word.startswith(form):
            return form
    for keyword in UPDATE_KEYWORDS:
        if word.startswith(keyword):
            raise _error(
                text, first.pos, f"{first.text} starts a SPARQL Update, not a query: send it to the update endpoint"
            )
    raise _error(text, first.pos, f"expected SELECT, ASK, CONSTRUCT or DESCRIBE, found {first.text[:40]!r}")


def _endpoint(token: Token, prologue: _Prologue) -> str | None:
    if token.kind == "var":
        return None
    if token.kind == "iri":
        return _resolve(_iri_value(token), prologue.base)
    if token.kind == "pname":
        prefix, _, local = token.text.partition(":")
        if prefix in prologue.prefixes:
            return prologue.prefixes[prefix] + _LOCAL_ESCAPE.sub(r"\1", local)
    return token.text  # unresolvable: never equal to an http(s) allowlist entry


def service_targets(text: str) -> list[str | None]:
    """The endpoint of every SERVICE in the query, in order: an IRI, or None for a variable endpoint.

    Raises:
        QuerySyntaxError: at an unterminated string or a malformed prologue.
    """
    toks = tokens(text)
    prologue = _prologue(text, toks)
    if _lacks("service", text):
        return []  # every token that counts as a SERVICE contains the word
    targets: list[str | None] = []
    for i in range(prologue.body, len(toks)):
        token = toks[i]
        if token.kind not in ("word", "pname"):
            continue
        name = token.text.lower()
        where = name.split(":", 1)[0].find("service")
        if where < 0:
            continue
        rest = name[where + len("service") :]
        if rest.startswith("silent"):
            rest = rest[len("silent") :]
        if rest:  # glued spelling (`SERVICE:x`, `SERVICEex:x`): name it as written, so it is never allowed
            targets.append(token.text)
            continue
        j = i + 1
        if j < len(toks) and toks[j].kind in ("word", "pname") and toks[j].text.lower().startswith("silent"):
            if toks[j].text.lower() != "silent":  # `SILENTex:x` is SILENT + ex:x to pyoxigraph
                targets.append(toks[j].text)
                continue
            j += 1
        targets.append(_endpoint(toks[j], prologue) if j < len(toks) else "")
    return targets


def dataset_clause(text: str, base_iri: str | None = None) -> tuple[list[str], list[str]]:
    """The IRIs of the query's FROM and FROM NAMED clauses, made absolute against BASE or `base_iri`.

    Raises:
        QuerySyntaxError: at an unterminated string or a malformed prologue.
    """
    toks = tokens(text)
    prologue = _prologue(text, toks, base_iri)
    default: list[str] = []
    named: list[str] = []
    if _lacks("from", text):
        return default, named
    i = prologue.body
    while i < len(toks):
        if toks[i].kind == "word" and toks[i].text.lower() == "from":
            target = default
            if i + 1 < len(toks) and toks[i + 1].kind == "word" and toks[i + 1].text.lower() == "named":
                target, i = named, i + 1
            if i + 1 < len(toks):
                iri = _endpoint(toks[i + 1], prologue)
                if iri is not None:
                    target.append(iri)
        i += 1
    return default, named


def check_query(text: str, service_allow: tuple[str, ...]) -> str:
    """The query form, once the text is known to be a query whose SERVICE calls all go to allowed endpoints.

    Raises:
        QuerySyntaxError: when the text is not a query (see `query_form`).
        ServiceForbiddenError: naming the first SERVICE endpoint not on `service_allow` (a variable
            endpoint is never allowed).
    """
    form = query_form(text)
    check_nesting(text)
    for target in service_targets(text):
        if target is None:
            raise ServiceForbiddenError("SERVICE with a variable endpoint is not allowed", endpoint=None)
        if target not in service_allow:
            raise ServiceForbiddenError(f"SERVICE <{target}> is not on this server's allowlist", endpoint=target)
    return form


def without_service(text: str) -> str:
    """The query with each `SERVICE [SILENT]` turned into `GRAPH`, padded to the same length.

    For checking a trusted query's syntax and projection on an empty store without calling any endpoint:
    `GRAPH` takes the same VarOrIri + group pattern, and line/column positions stay where they were.
    """
    chars = list(text)
    toks = tokens(text)
    for i, token in enumerate(toks):
        if token.kind == "word" and token.text.lower() == "service":
            chars[token.pos : token.pos + 7] = "GRAPH  "
            following = toks[i + 1] if i + 1 < len(toks) else None
            if following and following.kind == "word" and following.text.lower() == "silent":
                chars[following.pos : following.pos + 6] = " " * 6
    return "".join(chars)


# Where SPARQL parsers say a syntax error is, in the words of each: the first pattern that matches wins.
SYNTAX_POSITIONS = (
    re.compile(r"error at (\d+):(\d+)"),  # pyoxigraph / Oxigraph server
    re.compile(r"line (\d+), column (\d+)", re.IGNORECASE),  # Jena/Fuseki, RDF4J/GraphDB, rdflib
    re.compile(r"line:? (\d+)\D{1,20}col(?:umn)?:? (\d+)", re.IGNORECASE),  # Virtuoso and others
)


def syntax_position(message: str) -> tuple[int, int] | None:
    """The (line, column) a parser's error message names, or None when it names none."""
    for pattern in SYNTAX_POSITIONS:
        where = pattern.search(message)
        if where:
            return int(where[1]), int(where[2])
    return None


def without_position(message: str) -> str:
    """A parser's error message without pyoxigraph's leading "error at L:C:" (for messages that say it again)."""
    return SYNTAX_POSITIONS[0].sub("", message).lstrip(": ")
