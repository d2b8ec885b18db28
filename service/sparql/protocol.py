"""SPARQL 1.1 Protocol request parsing and content negotiation, as pure functions over bytes and headers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote_to_bytes

from service.errors import (
    BadRequestError,
    InvalidParameterError,
    NotAcceptableError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from service.sparql.formats import BY_KEY, FORM_FORMATS, Format, by_key
from service.sparql.terms import ABSOLUTE_IRI

FORM = "application/x-www-form-urlencoded"
SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"
PROBLEM_JSON = "application/problem+json"

RDF_FORMATS: tuple[Format, ...] = FORM_FORMATS["construct"]

_UTF8 = {"utf-8", "utf8", "us-ascii", "ascii"}
_MAX_FIELDS = 1000


@dataclass(frozen=True)
class SparqlRequest:
    """What a SPARQL 1.1 Protocol request asks for, decoded once and checked."""

    query: str | None = None
    update: str | None = None
    default_graph_uris: tuple[str, ...] = ()
    named_graph_uris: tuple[str, ...] = ()
    using_graph_uris: tuple[str, ...] = ()
    using_named_graph_uris: tuple[str, ...] = ()
    infer: bool | None = None
    timeout: float | None = None
    format: str | None = None


@dataclass(frozen=True)
class Control:
    """The protocol's own parameters, which any read route takes: `format=` (or `output=`), `infer=`, `timeout=`."""

    infer: bool | None = None
    timeout: float | None = None
    format: str | None = None


CONTROL = ("format", "output", "infer", "timeout", "download")
DOWNLOAD = (
    "spreadsheet"  # download=spreadsheet: a CSV/TSV attachment made safe for spreadsheets (formats.spreadsheet_safe)
)


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header."""

    type: str
    subtype: str
    params: tuple[tuple[str, str], ...]
    q: float

    @property
    def specificity(self) -> int:
        """How precise the range is: */* < type/* < type/subtype < type/subtype;params."""
        if self.type == "*":
            return 0
        if self.subtype == "*":
            return 1
        return 2 + len(self.params)

    def matches(self, media_type: str) -> bool:
        """Whether this range covers `media_type` (a bare type/subtype)."""
        kind, _, sub = media_type.partition("/")
        return self.type in ("*", kind) and self.subtype in ("*", sub)


def split_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """The bare lower-case media type of a Content-Type header and its parameters."""
    if not value:
        return "", {}
    bare, *rest = value.split(";")
    params: dict[str, str] = {}
    for item in rest:
        name, sep, val = item.partition("=")
        if sep:
            params[name.strip().lower()] = val.strip().strip('"')
    return bare.strip().lower(), params


def check_content_length(content_length: int | None, limit: int) -> None:
    """Refuse a body by its declared Content-Length, before reading any of it.

    Raises:
        PayloadTooLargeError: when the declared length is over `limit` bytes.
    """
    if content_length is not None and content_length > limit:
        raise PayloadTooLargeError(f"request body of {content_length} bytes is over the {limit}-byte limit")


def read_body(stream: BinaryIO, limit: int) -> bytes:
    """At most `limit` bytes of a request body (call `check_content_length` first).

    Raises:
        PayloadTooLargeError: when the body turns out longer than `limit` bytes.
    """
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLargeError(f"request body is over the {limit}-byte limit")
    return body


def decode_text(raw: bytes, what: str) -> str:
    """UTF-8 text of a request part (a leading byte-order mark dropped).

    Raises:
        BadRequestError: when the bytes are not UTF-8.
    """
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"{what} is not valid UTF-8 (byte {exc.start})") from None


def decode_form(raw: bytes, what: str = "form body") -> list[tuple[str, str]]:
    """Name/value pairs of an application/x-www-form-urlencoded string, percent-decoded exactly once.

    Raises:
        BadRequestError: when a decoded name or value is not UTF-8 or there are too many fields.
    """
    pairs: list[tuple[str, str]] = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append(
            (
                decode_text(unquote_to_bytes(name.replace(b"+", b" ")), what),
                decode_text(unquote_to_bytes(value.replace(b"+", b" ")), what),
            )
        )
        if len(pairs) > _MAX_FIELDS:
            raise BadRequestError(f"{what} has more than {_MAX_FIELDS} fields")
    return pairs


def _check_charset(params: dict[str, str], media_type: str) -> None:
    charset = params.get("charset", "utf-8").lower()
    if charset not in _UTF8:
        raise UnsupportedMediaTypeError(f"{media_type} must be UTF-8, not charset={charset}")


def _iris(values: list[str], name: str) -> tuple[str, ...]:
    for value in values:
        if not ABSOLUTE_IRI.match(value):
            raise InvalidParameterError(f"{name} must be an absolute IRI, got {value!r}", parameter=name)
    return tuple(values)


def parse_infer(value: str | None) -> bool | None:
    """The `infer=` parameter as a boolean, or None when absent.

    Raises:
        InvalidParameterError: for anything but true/false.
    """
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise InvalidParameterError(f"infer must be true or false, got {value!r}", parameter="infer")


def parse_timeout(value: str | None) -> float | None:
    """The `timeout=` parameter in seconds, or None when absent.

    Raises:
        InvalidParameterError: unless it is a positive finite number.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidParameterError(f"timeout must be a positive number of seconds, got {value!r}", parameter="timeout")
    return seconds


def parse_control(params: Sequence[tuple[str, str]]) -> Control:
    """The control parameters among a request's decoded parameters, each given at most once (others ignored).

    Raises:
        BadRequestError: a control parameter given more than once.
        InvalidParameterError: a bad infer= or timeout=.
    """
    values: dict[str, list[str]] = {}
    for name, value in params:
        if name in CONTROL:
            values.setdefault(name, []).append(value)
    for name, given in values.items():
        if len(given) > 1:
            raise BadRequestError(f"the {name} parameter is given {len(given)} times; give it once")
    return Control(
        infer=parse_infer(values.get("infer", [None])[0]),
        timeout=parse_timeout(values.get("timeout", [None])[0]),
        format=(values.get("format") or values.get("output") or [None])[0],
    )


def parse_sparql_request(
    method: str,
    query_string: bytes,
    content_type: str | None,
    body: bytes,
    max_bytes: int,
) -> SparqlRequest:
    """Decode a query or update request: GET ?query=, POST form, POST direct, or POST with the query in the URL.

    Raises:
        UnsupportedMediaTypeError: a POST body in another media type or charset than the protocol's.
        BadRequestError: repeated or conflicting parameters, non-UTF-8 text, GET with an update.
        InvalidParameterError: a bad infer=, timeout= or graph IRI.
        PayloadTooLargeError: query or update text over `max_bytes`.
    """
    params = decode_form(query_string, "URL query string")
    url_keys = {name for name, _ in params}
    direct: tuple[str, str] | None = None
    if method == "POST":
        media_type, ct_params = split_content_type(content_type)
        if media_type == FORM:
            _check_charset(ct_params, media_type)
            params += decode_form(body)
        elif media_type in (SPARQL_QUERY, SPARQL_UPDATE):
            _check_charset(ct_params, media_type)
            name = "query" if media_type == SPARQL_QUERY else "update"
            if name in url_keys:
                raise BadRequestError(f"{name} is both in the URL and in the {media_type} body")
            direct = (name, decode_text(body, f"{media_type} body"))
        elif body:
            shown = media_type or "no Content-Type"
            raise UnsupportedMediaTypeError(
                f"POST a query as {FORM} or {SPARQL_QUERY} (an update as {SPARQL_UPDATE}), not {shown}"
            )
        # An empty body with the query in the URL is how Blazegraph and some federators POST.
    if direct is not None:
        params.append(direct)

    values: dict[str, list[str]] = {}
    for name, value in params:
        values.setdefault(name, []).append(value)
    for name in ("query", "update"):
        if len(values.get(name, ())) > 1:
            raise BadRequestError(f"the {name} parameter is given {len(values[name])} times; give it once")
    control = parse_control(params)
    query = values.get("query", [None])[0]
    update = values.get("update", [None])[0]
    if query is not None and update is not None:
        raise BadRequestError("a request carries either a query or an update, not both")
    if update is not None and method != "POST":
        raise BadRequestError("an update must be sent with POST")
    for text, name in ((query, "query"), (update, "update")):
        if text is not None and len(text.encode("utf-8")) > max_bytes:
            raise PayloadTooLargeError(f"the {name} is over the {max_bytes}-byte limit")
    return SparqlRequest(
        query=query,
        update=update,
        default_graph_uris=_iris(values.get("default-graph-uri", []), "default-graph-uri"),
        named_graph_uris=_iris(values.get("named-graph-uri", []), "named-graph-uri"),
        using_graph_uris=_iris(values.get("using-graph-uri", []), "using-graph-uri"),
        using_named_graph_uris=_iris(values.get("using-named-graph-uri", []), "using-named-graph-uri"),
        infer=control.infer,
        timeout=control.timeout,
        format=control.format,
    )


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header; malformed entries are skipped."""
    ranges: list[MediaRange] = []
    for item in (header or "").split(","):
        kind, *rest = item.split(";")
        kind = kind.strip().lower()
        if kind == "*":  # old Java clients send a bare "*"
            kind = "*/*"
        main, slash, sub = kind.partition("/")
        if not (slash and main and sub) or (main == "*" and sub != "*"):
            continue
        q = 1.0
        params: list[tuple[str, str]] = []
        for param in rest:
            name, _, value = param.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"')
            if name == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 1.0  # lenient, like most servers: a garbled q does not exclude
                if not math.isfinite(q):
                    q = 0.0
            elif name:
                params.append((name, value))
        ranges.append(MediaRange(main, sub, tuple(params), q))
    return ranges


def _quality(media_type: str, ranges: list[MediaRange]) -> tuple[int, float] | None:
    """(specificity, q) of the most specific range covering `media_type`; None when none does."""
    best: tuple[int, float] | None = None
    for media_range in ranges:
        if media_range.matches(media_type):
            key = (media_range.specificity, media_range.q)
            if best is None or key > best:
                best = key
    return best


def _preferred(accept: str | None, offers: Sequence[Sequence[str]]) -> int | None:
    """The index of the offer (its media types, the canonical one first) that an Accept header prefers.

    Ranked by q-value, then specificity, then a canonical name over an alias, then offer order. No Accept, an
    empty one, or one with no valid entry means the first offer. An offer whose most specific matching range
    has q=0 is never chosen (an explicit `q=0` on one name is not undone by `*/*` matching an alias). None when
    nothing is acceptable.
    """
    ranges = parse_accept(accept)
    if not ranges:
        return 0 if offers else None
    best: int | None = None
    best_key: tuple = ()
    for index, media_types in enumerate(offers):
        matches = [(m, i) for i, t in enumerate(media_types) if (m := _quality(t, ranges)) is not None]
        if not matches:
            continue
        top_specificity = max(m[0] for m, _ in matches)
        q, canonical = max((m[1], i == 0) for m, i in matches if m[0] == top_specificity)
        if q <= 0:
            continue
        key = (q, top_specificity, canonical, -index)
        if best is None or key > best_key:
            best, best_key = index, key
    return best


def negotiate(accept: str | None, offers: Sequence[Format]) -> Format | None:
    """The format a client's Accept header prefers among `offers` (see `_preferred`); None when none is acceptable."""
    index = _preferred(accept, [fmt.media_types for fmt in offers])
    return None if index is None else offers[index]


def best_media_type(accept: str | None, offers: Sequence[str]) -> str | None:
    """The media type (from `offers`, in order of preference) that a client's Accept header prefers."""
    index = _preferred(accept, [(offer,) for offer in offers])
    return None if index is None else offers[index]


def choose_format(offers: Sequence[Format], accept: str | None, format_param: str | None = None) -> Format:
    """The response format: `format=` when given, else the negotiated one.

    Raises:
        InvalidParameterError: an unknown `format=` value.
        NotAcceptableError: `format=` or Accept names nothing these offers can produce.
    """
    keys = ", ".join(f.key for f in offers)
    if format_param:
        fmt = by_key(format_param)
        if fmt is None:
            raise InvalidParameterError(
                f"unknown format {format_param!r}; one of {', '.join(BY_KEY)}", parameter="format"
            )
        if fmt not in offers:
            raise NotAcceptableError(f"format={fmt.key} cannot carry this result; use one of {keys}")
        return fmt
    fmt = negotiate(accept, offers)
    if fmt is None:
        types = ", ".join(f.media_type for f in offers)
        raise NotAcceptableError(f"Accept: {accept} matches none of {types}")
    return fmt


def prefers_html(accept: str | None) -> bool:
    """Whether a client would rather read an HTML page than problem+json (browsers)."""
    return best_media_type(accept, (PROBLEM_JSON, "application/json", "text/html")) == "text/html"
