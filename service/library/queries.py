"""The named-query library: `queries/*.rq` with `#+` metadata, checked at load, bound as RDF terms.

The values parameters accept come from `service.library.vocabulary`; the OpenAPI document from
`service.library.openapi`.

Each file is plain SPARQL; its leading comment lines carry the metadata (syntax in `queries/README.md`):

    #+ title.en: Which sections handle a domain
    #+ param: domain type=domain default=education
    #+ param.domain.en: The domain, as IRI, slug or zh/en label

How parameter values reach a query without ever becoming query text:

- A single-valued parameter is resolved to one RDF term and handed to the engine as a binding
  (`QueryJob.bindings`: variable name -> N-Triples term), which pyoxigraph applies as `substitutions=` and
  rdflib as `initBindings`. The query text is not touched. Graph-backed types (domain, section, …) resolve
  only to IRIs found in the graph; a string becomes one escaped literal; an IRI must be absolute http(s).
- A multi-valued parameter (`multiple=true`, e.g. the domains of an ad-hoc project) cannot be one binding:
  pyoxigraph binds one term per variable, and running once per value would lose what the rows share. Its
  query holds exactly one `VALUES ?name { … }` block listing the default (so the file runs as-is; checked
  against `default=` at load). Given values replace that block with IRIs taken from the library's vocabulary,
  i.e. from the graph itself, each re-checked against a strict IRI pattern. The client's text is only a
  lookup key and never reaches the query; only graph-backed types may be multiple.

What the engines agree on, measured (pyoxigraph 0.5.13, rdflib 7.6): pyoxigraph binds only projected
variables, sees a bound variable in triple patterns and in the outermost group's FILTERs, not in a BIND of a
UNION branch or a subquery, and leaves BOUND(?param) false. So a parameter's variable is projected and occurs
in a triple pattern, a VALUES or an outermost FILTER; "unbound means all" is `COALESCE(test, true)`. An
optional parameter left out stays unbound. `load_library` parses every query with its default bindings
against an empty store (never iterating, so a SERVICE is never called), so a broken file stops the service
naming its file and line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from pyparsing import ParseException
from rdflib import RDF, RDFS, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, SH
from rdflib.plugins.sparql.parser import parseQuery
from rdflib.term import Node

from service import names
from service.config import Settings
from service.errors import ConfigError, InvalidParameterError, NotFoundError
from service.library.vocabulary import LANGUAGES, LOOKUPS, PARAM_TYPES, XSD_INTEGER, Lookup, Vocabulary, load_vocabulary
from service.resources import queries_dir
from service.sparql.lexer import syntax_position, without_position, without_service
from service.sparql.terms import parse_term

# Request parameters of the protocol itself (see service.sparql.protocol); a named query may not use these names.
RESERVED = frozenset({"format", "output", "infer", "timeout", "query", "update"})
MAX_VALUES = 50  # values of one multi-valued parameter
MAX_STRING = 1000  # characters of a string parameter unless `max-length=` says otherwise

_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# An absolute http(s) IRI without the characters N-Triples forbids inside <…> (and no whitespace or controls).
_HTTP_IRI = re.compile(r"^https?://[^\x00-\x20<>\"{}|\\^`\x7f]+$")
_INTEGER = re.compile(r"^[+-]?[0-9]{1,15}$")
_ORDER_BY = re.compile(r"\bORDER\s+BY\b", re.IGNORECASE)
_PARAM_KEYS = frozenset({"type", "default", "multiple", "required", "allowed", "min", "max", "max-length"})
_TEXT_KEYS = ("title", "description")


@dataclass(frozen=True)
class Parameter:
    """One declared parameter of a named query."""

    name: str
    type: str
    default: tuple[str, ...] = ()
    multiple: bool = False
    required: bool = False
    allowed: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = MAX_STRING
    description: Mapping[str, str] = field(default_factory=dict)
    line: int = 0

    @property
    def lookup(self) -> Lookup | None:
        return LOOKUPS.get(self.type)

    def metadata(self, vocabulary: Vocabulary) -> dict[str, Any]:
        """The parameter as the REST API lists it."""
        info: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiple": self.multiple,
            "required": self.required,
            "description": dict(self.description),
        }
        if self.default:
            info["default"] = list(self.default) if self.multiple else self.default[0]
        allowed = self.allowed_values(vocabulary)
        if allowed:
            info["allowed"] = allowed
        if self.minimum is not None:
            info["minimum"] = self.minimum
        if self.maximum is not None:
            info["maximum"] = self.maximum
        return info

    def allowed_values(self, vocabulary: Vocabulary) -> list[str]:
        """The values a client may give, where a list exists (canonical short names for lookup types)."""
        if self.allowed:
            return list(self.allowed)
        if self.type == "language":
            return list(LANGUAGES)
        if self.lookup is not None:
            return vocabulary.allowed(self.type)
        return []

    def resolve(self, value: str, vocabulary: Vocabulary, base_iri: str) -> str:
        """The N-Triples term for one value given by a client.

        Raises:
            InvalidParameterError: the value is not one this parameter accepts (detail, `parameter`, `allowed`).
        """
        if not isinstance(value, str):
            raise self.invalid(f"{self.name} must be text", vocabulary)
        if self.type == "string":  # bound exactly as given: a string is data, never a key
            if len(value) > self.max_length:
                raise self.invalid(f"{self.name} is longer than {self.max_length} characters", vocabulary)
            if self.allowed and value not in self.allowed:
                raise self.invalid(f"{self.name}={value!r} is not allowed", vocabulary)
            return nt_literal(value)
        value = value.strip()
        if self.allowed and value not in self.allowed:
            raise self.invalid(f"{self.name}={value!r} is not allowed", vocabulary)
        if self.type == "iri":
            if not _HTTP_IRI.match(value):
                raise self.invalid(f"{self.name} must be an absolute http(s) IRI, got {value!r}", vocabulary)
            return f"<{names.rebase(value, base_iri)}>"  # the project's canonical IRIs name this deployment's
        if self.type == "language":
            if value.lower() not in LANGUAGES:
                raise self.invalid(f"{self.name}={value!r} is not a supported language", vocabulary)
            return nt_literal(value.lower())
        if self.type == "integer":
            if not _INTEGER.match(value):
                raise self.invalid(f"{self.name} must be a whole number, got {value!r}", vocabulary)
            number = int(value)
            if (self.minimum is not None and number < self.minimum) or (
                self.maximum is not None and number > self.maximum
            ):
                raise self.invalid(
                    f"{self.name}={number} is outside {self.minimum if self.minimum is not None else '-∞'}"
                    f"..{self.maximum if self.maximum is not None else '∞'}",
                    vocabulary,
                )
            return f'"{number}"^^<{XSD_INTEGER}>'
        return f"<{self.resolve_iri(value, vocabulary, base_iri)}>"

    def resolve_iri(self, value: str, vocabulary: Vocabulary, base_iri: str) -> str:
        """The deployment IRI of the graph resource a lookup-type value names.

        Raises:
            InvalidParameterError: unknown or ambiguous value (with the allowed short names).
        """
        found = vocabulary.candidates(self.type, names.unbase(value.strip(), base_iri))
        if len(found) > 1:
            options = ", ".join(vocabulary.label_of(self.type, iri) for iri in found)
            raise self.invalid(f"{self.name}={value!r} is ambiguous: it may mean {options}", vocabulary)
        if not found:
            raise self.invalid(f"unknown {self.type} {value!r} for parameter {self.name}", vocabulary)
        iri = names.rebase(found[0], base_iri)
        if not _HTTP_IRI.match(iri):  # defence in depth: only clean IRIs from the graph reach a query
            raise self.invalid(f"{self.name}={value!r} names a resource with an unusable IRI", vocabulary)
        return iri

    def sample(self, vocabulary: Vocabulary) -> str:
        """A value this parameter accepts (its default, else a typical one): used to check the query at load."""
        if self.default:
            return self.default[0]
        allowed = self.allowed_values(vocabulary)
        if allowed:
            return allowed[0]
        if self.type == "integer":
            return str(self.minimum if self.minimum is not None else min(0, self.maximum or 0))
        return "https://example.org/sample" if self.type == "iri" else "sample"

    def invalid(self, detail: str, vocabulary: Vocabulary) -> InvalidParameterError:
        """The 400 error for a bad value: names this parameter and lists its allowed values."""
        return InvalidParameterError(detail, parameter=self.name, allowed=self.allowed_values(vocabulary))


def nt_literal(text: str) -> str:
    """A plain (xsd:string) literal in N-Triples syntax, every character that could end it escaped."""
    escaped = []
    for char in text:
        if char == "\\":
            escaped.append("\\\\")
        elif char == '"':
            escaped.append('\\"')
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\r":
            escaped.append("\\r")
        elif 0xD800 <= ord(char) <= 0xDFFF:  # a lone surrogate is no character: UTF-8 cannot carry it
            escaped.append("\\uFFFD")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


@dataclass(frozen=True)
class PreparedQuery:
    """A named query ready for an engine: its text and its parameter bindings (variable, N-Triples term)."""

    text: str
    bindings: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class NamedQuery:
    """One `.rq` file: text (rebased onto the deployment's IRIs), metadata, and what running it yields."""

    name: str
    path: Path
    text: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    parameters: tuple[Parameter, ...]
    form: str
    variables: tuple[str, ...]
    ordered: bool
    vocabulary: Vocabulary = field(repr=False)
    base_iri: str = names.DEFAULT_BASE

    def parameter(self, name: str) -> Parameter | None:
        """The declared parameter of that name, or None."""
        return next((p for p in self.parameters if p.name == name), None)

    def prepare(self, params: Mapping[str, str | Sequence[str]] | None = None) -> PreparedQuery:
        """Text and bindings for these parameter values (defaults for the missing ones).

        Raises:
            InvalidParameterError: an unknown parameter, a missing required one, a repeated single-valued
                one, or a value the parameter does not accept.
        """
        given = {k: [v] if isinstance(v, str) else list(v) for k, v in (params or {}).items()}
        declared = [p.name for p in self.parameters]
        for key in given:
            if key not in declared:
                detail = f"{self.name} has no parameter {key!r}" + (
                    f"; its parameters are {', '.join(declared)}" if declared else "; it takes no parameters"
                )
                raise InvalidParameterError(detail, parameter=key, allowed=declared)
        text = self.text
        bindings: list[tuple[str, str]] = []
        for param in self.parameters:
            values = [v for v in given.get(param.name, []) if not (isinstance(v, str) and v.strip() == "")]
            if param.multiple and not values:
                continue  # the file's own VALUES block holds the default (checked against it at load)
            if not values:
                values = list(param.default)
            if not values:
                if param.required:
                    raise param.invalid(f"{self.name} needs the parameter {param.name}", self.vocabulary)
                continue
            if param.multiple:
                if len(values) > MAX_VALUES:
                    raise param.invalid(f"{param.name} takes at most {MAX_VALUES} values", self.vocabulary)
                iris = list(dict.fromkeys(param.resolve_iri(v, self.vocabulary, self.base_iri) for v in values))
                text = _replace_values(text, param.name, iris)
            else:
                if len(values) > 1:
                    raise param.invalid(f"{param.name} takes one value, got {len(values)}", self.vocabulary)
                bindings.append((param.name, param.resolve(values[0], self.vocabulary, self.base_iri)))
        return PreparedQuery(text, tuple(bindings))

    def bind(self, params: Mapping[str, str | Sequence[str]] | None = None) -> tuple[tuple[str, str], ...]:
        """The bindings alone, for callers that run `self.text` (the file with its default VALUES blocks).

        Raises:
            InvalidParameterError: as `prepare`, and when a multi-valued parameter is given values other
                than its default (those change the text: use `prepare`).
        """
        prepared = self.prepare(params)
        if prepared.text != self.text:
            raise InvalidParameterError(
                "this query takes several values in one parameter; run prepare(params).text with its bindings",
                parameter=next(p.name for p in self.parameters if p.multiple),
            )
        return prepared.bindings

    def metadata(self) -> dict[str, Any]:
        """The query as the REST API lists it."""
        return {
            "name": self.name,
            "title": dict(self.title),
            "description": dict(self.description),
            "form": self.form,
            "variables": list(self.variables),
            "ordered": self.ordered,
            "parameters": [p.metadata(self.vocabulary) for p in self.parameters],
        }


def _values_block(name: str) -> re.Pattern[str]:
    return re.compile(r"VALUES\s+[?$]" + re.escape(name) + r"\s*\{[^{}]*\}", re.IGNORECASE)


def _replace_values(text: str, name: str, iris: Sequence[str]) -> str:
    for iri in iris:
        if not _HTTP_IRI.match(iri):
            raise InvalidParameterError(f"refusing to bind {name} to an unusable IRI", parameter=name)
    block = f"VALUES ?{name} {{ " + " ".join(f"<{iri}>" for iri in iris) + " }"
    return _values_block(name).sub(lambda _: block, text, count=1)


@dataclass
class _Header:
    title: dict[str, str] = field(default_factory=dict)
    description: dict[str, str] = field(default_factory=dict)
    params: list[dict[str, Any]] = field(default_factory=list)


def _fail(path: Path, line: int, message: str, column: int | None = None) -> ConfigError:
    where = f"{path}:{line}" + (f":{column}" if column else "")
    return ConfigError(f"{where}: {message}", file=str(path), line=line)


def _join(text: str, line: str, lang: str) -> str:
    """Continue a text with its next header line: Chinese runs on, English takes a space."""
    return f"{text}{'' if lang == 'zh' else ' '}{line}" if text else line


def _parse_header(path: Path, text: str) -> _Header:
    header = _Header()
    in_header = True
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("#+"):
            if stripped and not stripped.startswith("#"):
                in_header = False
            continue
        if not in_header:
            raise _fail(path, number, "#+ metadata must come before the query (at the top of the file)")
        key, sep, value = stripped[2:].partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise _fail(path, number, f"expected '#+ key: value', got {stripped!r}")
        parts = key.split(".")
        if parts[0] in _TEXT_KEYS and len(parts) == 2 and parts[1] in LANGUAGES:
            target = getattr(header, parts[0])
            target[parts[1]] = _join(target.get(parts[1], ""), value, parts[1])
        elif key == "param":
            header.params.append(_parse_param_line(path, number, value))
        elif parts[0] == "param" and len(parts) == 3 and parts[2] in LANGUAGES:
            param = next((p for p in header.params if p["name"] == parts[1]), None)
            if param is None:
                raise _fail(path, number, f"description of undeclared parameter {parts[1]!r}")
            param["description"][parts[2]] = _join(param["description"].get(parts[2], ""), value, parts[2])
        else:
            raise _fail(path, number, f"unknown metadata key {key!r}")
    for what in _TEXT_KEYS:
        missing = [lang for lang in LANGUAGES if lang not in getattr(header, what)]
        if missing:
            raise _fail(path, 1, f"missing '#+ {what}.{missing[0]}:' line")
    return header


def _parse_param_line(path: Path, number: int, value: str) -> dict[str, Any]:
    try:
        name, *options = shlex.split(value)
    except ValueError as exc:
        raise _fail(path, number, f"cannot read parameter declaration: {exc}") from None
    if not _VARIABLE.match(name) or name in RESERVED:
        raise _fail(path, number, f"parameter name {name!r} must be a SPARQL variable name and not {sorted(RESERVED)}")
    declared: dict[str, Any] = {"name": name, "line": number, "description": {}}
    for option in options:
        key, sep, val = option.partition("=")
        if not sep or key not in _PARAM_KEYS:
            raise _fail(path, number, f"unknown parameter option {option!r}; use key=value with {sorted(_PARAM_KEYS)}")
        declared[key] = val
    kind = declared.get("type")
    if kind not in PARAM_TYPES:
        raise _fail(path, number, f"parameter {name} needs type= one of {', '.join(PARAM_TYPES)}")
    return declared


def _flag(path: Path, number: int, declared: dict[str, Any], key: str) -> bool:
    value = declared.get(key, "false")
    if value not in ("true", "false"):
        raise _fail(path, number, f"{key}= must be true or false")
    return value == "true"


def _number(path: Path, number: int, declared: dict[str, Any], key: str) -> int | None:
    if key not in declared:
        return None
    if not _INTEGER.match(declared[key]):
        raise _fail(path, number, f"{key}= must be a whole number")
    return int(declared[key])


def _build_parameter(path: Path, declared: dict[str, Any]) -> Parameter:
    number = declared["line"]
    multiple = _flag(path, number, declared, "multiple")
    if multiple and declared["type"] not in LOOKUPS:
        raise _fail(path, number, f"only graph-backed types ({', '.join(LOOKUPS)}) may be multiple=true")
    default = tuple(v for v in declared.get("default", "").split(",") if v) if "default" in declared else ()
    if len(default) > 1 and not multiple:
        raise _fail(path, number, "a single-valued parameter has one default")
    required = _flag(path, number, declared, "required")
    if required and default:
        raise _fail(path, number, "a required parameter has no default")
    max_length = _number(path, number, declared, "max-length")
    return Parameter(
        name=declared["name"],
        type=declared["type"],
        default=default,
        multiple=multiple,
        required=required,
        allowed=tuple(v for v in declared.get("allowed", "").split(",") if v),
        minimum=_number(path, number, declared, "min"),
        maximum=_number(path, number, declared, "max"),
        max_length=max_length if max_length is not None else MAX_STRING,
        description=declared["description"],
        line=number,
    )


_PROLOGUE = re.compile(r"^\s*(?:PREFIX\s+[^\s:]*:\s*<[^>]*>|BASE\s*<[^>]*>)", re.IGNORECASE | re.MULTILINE)


def _check_values_block(path: Path, raw: str, param: Parameter, vocabulary: Vocabulary) -> None:
    """A multi-valued parameter's one VALUES block lists exactly the IRIs its `default=` names."""
    blocks = _values_block(param.name).findall(raw)
    if len(blocks) != 1:
        raise _fail(path, param.line, f"multi-valued {param.name} needs exactly one 'VALUES ?{param.name} {{…}}'")
    prologue = "\n".join(m.group(0).strip() for m in _PROLOGUE.finditer(raw))
    try:
        rows = ox.Store().query(f"{prologue}\nSELECT ?{param.name} WHERE {{ {blocks[0]} }}")
        listed = [row[0].value if row[0] is not None else "UNDEF" for row in rows]
    except SyntaxError as exc:
        raise _fail(path, param.line, f"VALUES ?{param.name}: {exc}") from None
    try:
        default = [param.resolve_iri(value, vocabulary, names.DEFAULT_BASE) for value in param.default]
    except InvalidParameterError as exc:
        raise _fail(path, param.line, f"default: {exc.detail}") from None
    if listed != default:
        raise _fail(path, param.line, f"VALUES ?{param.name} lists {listed}, not the default {default}")


def _error_position(text: str, message: str) -> tuple[int, int] | None:
    """Where a syntax error is: rdflib's parser names the statement that fails, where pyoxigraph's often names
    the furthest point it tried (the end of the file); pyoxigraph's position is the fallback."""
    try:
        parseQuery(text)
    except ParseException as exc:
        return exc.lineno, exc.col
    except Exception:  # any other complaint of rdflib's says nothing about the position
        pass
    return syntax_position(message)


def _check_run(path: Path, text: str, bindings: Sequence[tuple[str, str]], line: int = 0) -> ox.QuerySolutions:
    """Run on an empty store: syntax, and every bound variable projected (pyoxigraph substitutions need it)."""
    try:
        substitutions = {ox.Variable(var): parse_term(term) for var, term in bindings}
        # An empty store would still call a SERVICE endpoint: check the same query with GRAPH in its place.
        return ox.Store().query(without_service(text), substitutions=substitutions)
    except SyntaxError as exc:
        line, column = _error_position(text, str(exc)) or (line or 1, None)
        raise _fail(path, line, "SPARQL syntax error: " + without_position(str(exc)), column) from None
    except (RuntimeError, ValueError, InvalidParameterError) as exc:
        raise _fail(path, line or 1, f"cannot bind parameters: {exc}") from None


def load_query(path: Path, vocabulary: Vocabulary, base_iri: str = names.DEFAULT_BASE) -> NamedQuery:
    """Read, check and describe one `.rq` file.

    Raises:
        ConfigError: naming the file and line of a metadata, syntax or binding problem.
    """
    name = path.stem
    if not _NAME.match(name):
        raise _fail(path, 1, f"query names are kebab-case ([a-z0-9-]), not {name!r}")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, 1, f"cannot read: {exc}") from None
    header = _parse_header(path, raw)
    parameters = tuple(_build_parameter(path, declared) for declared in header.params)
    seen: set[str] = set()
    for param in parameters:
        if param.name in seen:
            raise _fail(path, param.line, f"parameter {param.name} is declared twice")
        seen.add(param.name)
        if not re.search(r"[?$]" + re.escape(param.name) + r"\b", raw):
            raise _fail(path, param.line, f"parameter {param.name} is not used as ?{param.name} in the query")
        if param.multiple:
            _check_values_block(path, raw, param, vocabulary)
    first = _check_run(path, raw, ())  # the file as written: line numbers are the file's own
    text = raw.replace("<" + names.DEFAULT_BASE, "<" + base_iri) if base_iri != names.DEFAULT_BASE else raw
    query = NamedQuery(
        name=name,
        path=path,
        text=text,
        title=header.title,
        description=header.description,
        parameters=parameters,
        form="select",
        variables=(),
        ordered=bool(_ORDER_BY.search(_strip_comments(raw))),
        vocabulary=vocabulary,
        base_iri=base_iri,
    )
    for param in parameters:
        try:
            for value in param.default:
                param.resolve(value, vocabulary, base_iri)
        except InvalidParameterError as exc:
            raise _fail(path, param.line, f"default: {exc.detail}") from None
    try:
        prepared = query.prepare({p.name: p.sample(vocabulary) for p in parameters if p.required})
    except InvalidParameterError as exc:
        raise _fail(path, 1, exc.detail) from None
    bound_line = parameters[0].line if parameters else 0
    result = _check_run(path, prepared.text, prepared.bindings, bound_line) if prepared.bindings else first
    form, variables = _form_of(result)
    if parameters and form != "select":
        raise _fail(path, bound_line, "a query with parameters must be a SELECT (engines bind through its projection)")
    return replace(query, form=form, variables=variables)


def _form_of(result: Any) -> tuple[str, tuple[str, ...]]:
    if isinstance(result, ox.QuerySolutions):
        return "select", tuple(v.value for v in result.variables)
    if isinstance(result, ox.QueryBoolean):
        return "ask", ()
    return "construct", ()


def _strip_comments(text: str) -> str:
    # Good enough for our own files: '#' inside IRIs is kept by requiring whitespace or line start before it.
    return re.sub(r"(^|\s)#[^\n]*", r"\1", text)


# SHACL-AF's classes and properties for a SPARQL query of each form, used in the service description.
_SHACL_FORMS = {
    "select": (SH.SPARQLSelectExecutable, SH.select),
    "ask": (SH.SPARQLAskExecutable, SH.ask),
    "construct": (SH.SPARQLConstructExecutable, SH.construct),
}


class Library:
    """Every named query of a folder, checked, by name."""

    def __init__(self, queries: Sequence[NamedQuery], vocabulary: Vocabulary, base_iri: str) -> None:
        self._queries = {q.name: q for q in sorted(queries, key=lambda q: q.name)}
        self.vocabulary = vocabulary
        self.base_iri = base_iri

    def get(self, name: str) -> NamedQuery:
        """The query of that name.

        Raises:
            NotFoundError: no such query (the detail lists the names).
        """
        try:
            return self._queries[name]
        except KeyError:
            raise NotFoundError(
                f"no named query {name!r}; see /api/queries", parameter="name", allowed=self.names()
            ) from None

    def names(self) -> list[str]:
        """The query names, sorted."""
        return list(self._queries)

    def __iter__(self) -> Iterator[NamedQuery]:
        return iter(self._queries.values())

    def __len__(self) -> int:
        return len(self._queries)

    def describe(self, graph: Graph, service: Node, base_url: str) -> None:
        """Add the named queries to a SPARQL service description: each one a `sh:SPARQLSelectExecutable`
        (its text in `sh:select`, titles as labels) that `service` has as a part, with the OpenAPI document."""
        root = base_url.rstrip("/")
        graph.bind("sh", SH)
        graph.add((service, RDFS.seeAlso, URIRef(root + "/api/openapi.json")))
        for query in self:
            node = URIRef(f"{root}/api/queries/{query.name}")
            graph.add((service, DCTERMS.hasPart, node))
            kind, text = _SHACL_FORMS.get(query.form, (SH.SPARQLConstructExecutable, SH.construct))
            graph.add((node, RDF.type, kind))
            graph.add((node, DCTERMS.identifier, Literal(query.name)))
            for lang in LANGUAGES:
                graph.add((node, RDFS.label, Literal(query.title[lang], lang=lang)))
                graph.add((node, RDFS.comment, Literal(query.description[lang], lang=lang)))
            graph.add((node, text, Literal(query.text)))


def load_library(
    path: Path | None = None,
    *,
    base_iri: str = names.DEFAULT_BASE,
    vocabulary: Vocabulary | None = None,
    checked_with: Vocabulary | None = None,
) -> Library:
    """Load and check every `*.rq` of `path` (default: the project's `queries/`).

    `vocabulary` gives the values parameters accept (the served data's); the files' own defaults are checked
    against `checked_with` when given (the shipped data's, which the files are written for).

    Raises:
        ConfigError: a file that cannot be read, parsed or bound (naming file and line), or no queries at all.
    """
    folder = path or queries_dir()
    files = sorted(folder.glob("*.rq"))
    if not files:
        raise ConfigError(f"no named queries (*.rq) in {folder}")
    vocabulary = vocabulary or load_vocabulary()
    queries = [load_query(file, checked_with or vocabulary, base_iri) for file in files]
    return Library([replace(query, vocabulary=vocabulary) for query in queries], vocabulary, base_iri)


def served_library(settings: Settings) -> Library:
    """The named queries over the data `settings` serve: their parameters take the served data's values (the
    files' defaults are checked against the shipped data, which they are written for)."""
    vocabulary = load_vocabulary(settings.reasoning_cache, settings.data)
    shipped = load_vocabulary(settings.reasoning_cache) if settings.data is not None else None
    return load_library(base_iri=settings.base_iri, vocabulary=vocabulary, checked_with=shipped)
