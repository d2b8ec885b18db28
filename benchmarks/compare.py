"""Checks that the systems give the same answers, as sets, before anything is timed."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import pyoxigraph as ox

from benchmarks.loadgen import Request

XSD = "http://www.w3.org/2001/XMLSchema#"
NUMERIC = {
    XSD + t
    for t in (
        "integer",
        "decimal",
        "double",
        "float",
        "int",
        "long",
        "short",
        "byte",
        "nonNegativeInteger",
        "positiveInteger",
        "negativeInteger",
        "nonPositiveInteger",
        "unsignedInt",
        "unsignedLong",
    )
}


def send(base_url: str, request: Request, timeout: float = 300.0) -> tuple[int, str, bytes]:
    """Send one request as it is; status, content type and body."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        headers = {"User-Agent": "guian-kg-bench"}
        if request.accept:
            headers["Accept"] = request.accept
        if request.method == "POST":
            headers["Content-Type"] = request.content_type or "application/octet-stream"
        connection.request(request.method, request.path, body=request.body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def _term(term: Mapping[str, str]) -> tuple:
    kind = term.get("type")
    if kind == "uri":
        return ("uri", term["value"])
    if kind == "bnode":
        return ("bnode",)
    lang = term.get("xml:lang") or term.get("lang")
    if lang:
        return ("literal", term["value"], "@" + lang.lower())
    datatype = term.get("datatype")
    if datatype in NUMERIC:
        try:
            return ("number", Decimal(term["value"]).normalize())
        except InvalidOperation:
            return ("literal", term["value"], datatype)
    if datatype == XSD + "boolean":
        return ("boolean", term["value"] in ("true", "1"))
    if datatype in (None, XSD + "string"):
        return ("literal", term["value"], "")
    return ("literal", term["value"], datatype)


def _rdf_term(term) -> tuple:
    if isinstance(term, ox.BlankNode):
        return ("bnode",)
    if isinstance(term, ox.Literal):
        if term.language:
            return ("literal", term.value, "@" + term.language.lower())
        if term.datatype.value in NUMERIC:
            try:
                return ("number", Decimal(term.value).normalize())
            except InvalidOperation:
                pass
        return ("literal", term.value, term.datatype.value)
    return ("uri", term.value)


@dataclass(frozen=True)
class Answer:
    """An answer reduced to what must agree: a set of rows, a boolean, or a set of triples (bnodes blurred)."""

    kind: str  # rows | boolean | triples | error
    value: object
    size: int = 0
    detail: str = ""

    def summary(self) -> str:
        if self.kind == "error":
            return f"error: {self.detail[:200]}"
        if self.kind == "boolean":
            return f"boolean {self.value}"
        return f"{self.size} {self.kind}"


def answer_of(status: int, content_type: str, body: bytes) -> Answer:
    """The comparable form of one HTTP answer."""
    if status != 200:
        return Answer("error", status, detail=f"HTTP {status}: {body[:300]!r}")
    media = content_type.split(";")[0].strip().lower()
    try:
        if "json" in media:
            data = json.loads(body)
            if "boolean" in data:
                return Answer("boolean", bool(data["boolean"]))
            rows = Counter(
                frozenset((name, _term(term)) for name, term in binding.items())
                for binding in data["results"]["bindings"]
            )
            return Answer("rows", frozenset(rows), size=len(rows))
        rdf_format = ox.RdfFormat.from_media_type(media) or ox.RdfFormat.N_TRIPLES
        triples = {
            (_rdf_term(t.subject), _rdf_term(t.predicate), _rdf_term(t.object))
            for t in ox.parse(body, format=rdf_format)
        }
        return Answer("triples", frozenset(triples), size=len(triples))
    except (ValueError, KeyError, SyntaxError) as exc:
        return Answer("error", None, detail=f"unreadable {media} answer: {exc}")


def _diff(a: Answer, b: Answer) -> str:
    if a.kind != b.kind or a.kind in ("boolean", "error"):
        return f"{a.summary()} vs {b.summary()}"
    only_a = [x for x in a.value if x not in b.value]  # type: ignore[union-attr]
    only_b = [x for x in b.value if x not in a.value]  # type: ignore[union-attr]
    sample = lambda xs: "; ".join(sorted(str(sorted(x) if isinstance(x, frozenset) else x) for x in xs)[:2])  # noqa: E731
    return (
        f"{a.size} vs {b.size} ({len(only_a)} only in the first: {sample(only_a)[:400]}; "
        f"{len(only_b)} only in the second: {sample(only_b)[:400]})"
    )


@dataclass
class Agreement:
    """Per request: which systems agree with the majority answer, and how the others differ."""

    label: str
    answers: dict[str, Answer]
    agreeing: list[str] = field(default_factory=list)
    differing: dict[str, str] = field(default_factory=dict)

    @property
    def unanimous(self) -> bool:
        return not self.differing


def agree(label: str, answers: dict[str, Answer], reference: Sequence[str] = ()) -> Agreement:
    """Group equal answers; the largest group (ties: the one holding the first of `reference`) is right."""
    groups: dict[tuple, list[str]] = {}
    for system, answer in answers.items():
        key = (answer.kind, answer.value if answer.kind != "error" else id(answer))
        groups.setdefault(key, []).append(system)
    order = {name: i for i, name in enumerate(reference)}
    best = max(groups.values(), key=lambda names: (len(names), -min(order.get(n, 99) for n in names)))
    result = Agreement(label, answers, agreeing=sorted(best))
    if answers[best[0]].kind == "error":
        result.agreeing = []
    for system, answer in answers.items():
        if system not in result.agreeing:
            result.differing[system] = _diff(answer, answers[best[0]]) if result.agreeing else answer.summary()
    return result
