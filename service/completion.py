"""What the query editor completes: our prefixes, the ontology's classes and properties, and every labelled resource.

One SPARQL query per data version reads the labels, definitions and types; the index it builds is kept until the
data version changes, so a resource added by an update completes from the next request on, and a completion
request is a scan of a few thousand short strings in memory. The editor's syntax check (`lint`) parses the text
on an empty store without running it. Nothing here imports Flask.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox

from service.errors import GuianError, InvalidParameterError, QuerySyntaxError
from service.query_text import check_query, without_service

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"

KINDS = ("any", "prefix", "class", "property", "resource")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_TEXT = 200  # characters of typed text worth matching
LANGUAGES = ("en", "zh")

# Types that make a resource a class or a property in the editor's eyes.
_TERM_KINDS = {
    OWL + "Class": "class",
    RDFS + "Class": "class",
    RDF + "Property": "property",
    OWL + "ObjectProperty": "property",
    OWL + "DatatypeProperty": "property",
    OWL + "AnnotationProperty": "property",
    OWL + "TransitiveProperty": "property",
    OWL + "SymmetricProperty": "property",
}
_LABELS = (SKOS + "prefLabel", RDFS + "label", SKOS + "altLabel")
_DEFINITIONS = (SKOS + "definition", RDFS + "comment")

# The asserted graphs only: what reasoning adds is types and links, never a name or a definition.
INDEX_QUERY = (
    "SELECT ?x ?p ?v WHERE { VALUES ?p { "
    + " ".join(f"<{p}>" for p in (RDF + "type", *_LABELS, *_DEFINITIONS))
    + " } ?x ?p ?v FILTER(isIRI(?x) && (?p != <"
    + RDF
    + "type> || ?v IN ("
    + ", ".join(f"<{t}>" for t in _TERM_KINDS)
    + "))) }"
)

_WORD_START = re.compile(r"(?:^|[\s\-_/:(（])(\S)")
_SYNTAX_AT = re.compile(r"error at (\d+):(\d+)")  # pyoxigraph's position, as service.engine reads it
_LOCAL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*")


def _fold(text: str) -> str:
    """Text as matched: NFKC (full-width forms are plain), lower case, runs of spaces as one."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass
class Entry:
    """One thing the editor can complete to."""

    iri: str
    kind: str  # prefix | class | property | resource
    insert: str  # what goes into the query: prefix:local, <iri>, or `prefix:` for a prefix
    labels: dict[str, str] = field(default_factory=dict)  # language -> label ("" for an untagged one)
    definitions: dict[str, str] = field(default_factory=dict)
    keys: tuple[str, ...] = ()  # folded strings matched against the typed text

    def as_json(self, lang: str) -> dict[str, Any]:
        """The JSON item: the label and definition in `lang` first, both languages alongside."""
        label = self.labels.get(lang) or self.labels.get("") or next(iter(self.labels.values()), "")
        definition = self.definitions.get(lang) or self.definitions.get("") or next(iter(self.definitions.values()), "")
        return {
            "iri": self.iri,
            "kind": self.kind,
            "insert": self.insert,
            "label": label,
            "labels": {k: v for k, v in self.labels.items() if k},
            "definition": definition,
            "definitions": {k: v for k, v in self.definitions.items() if k},
        }


class CompletionIndex:
    """The completable names of one data version."""

    def __init__(self, version: str, entries: list[Entry]) -> None:
        self.version = version
        self.entries = entries

    def complete(self, typed: str, kind: str = "any", lang: str = "en", limit: int = DEFAULT_LIMIT) -> list[Entry]:
        """The best `limit` entries for the typed text: prefix-name and IRI starts, then label matches.

        Ranked by how the text matches (the whole label or name, its start, a word's start, anywhere), then by
        kind (what `kind` asks for first), then by the shorter label.
        """
        query = _fold(typed)
        iri_typed = query.startswith("<")
        if iri_typed:
            query = query[1:]
        words = query.split()
        ranked: list[tuple[int, int, int, str, Entry]] = []
        for entry in self.entries:
            if kind != "any" and entry.kind != kind:
                continue
            score = _score(entry, query, words, iri_typed)
            if score is None:
                continue
            label = entry.labels.get(lang) or entry.insert
            ranked.append((score, 0 if entry.kind == "prefix" else 1, len(label), entry.insert, entry))
        ranked.sort(key=lambda item: item[:4])
        return [item[4] for item in ranked[:limit]]


def _score(entry: Entry, query: str, words: list[str], iri_typed: bool) -> int | None:
    """How well the folded typed text matches the entry (lower is better), or None when it does not."""
    if not query:
        return 5
    if iri_typed:
        return 0 if entry.iri.casefold().startswith(query) else None
    best: int | None = None
    for key in entry.keys:
        if key == query:
            return 0
        if key.startswith(query):
            score = 1
        elif query in key:
            score = 2 if any(m.start(1) == key.find(query) for m in _WORD_START.finditer(key)) else 3
        elif len(words) > 1 and all(w in key for w in words):
            score = 4
        else:
            continue
        if best is None or score < best:
            best = score
    return best


def build_index(version: str, rows: Iterable[Mapping[str, Any]], prefixes: Mapping[str, str]) -> CompletionIndex:
    """The index of one data version from the rows of INDEX_QUERY (SPARQL JSON bindings) and the prefix table."""
    entries: list[Entry] = [
        Entry(namespace, "prefix", f"{name}:", keys=(_fold(name + ":"), _fold(namespace)))
        for name, namespace in prefixes.items()
    ]
    found: dict[str, Entry] = {}
    kinds: dict[str, str] = {}
    for row in rows:
        iri, predicate, value = row["x"]["value"], row["p"]["value"], row["v"]
        if predicate == RDF + "type":
            kind = _TERM_KINDS[value["value"]]
            kinds[iri] = "property" if kinds.get(iri) == "property" else kind
            continue
        entry = found.get(iri)
        if entry is None:
            entry = found[iri] = Entry(iri, "resource", _insert(iri, prefixes))
        lang = (value.get("xml:lang") or "").split("-")[0].lower()
        target = entry.labels if predicate in _LABELS else entry.definitions
        # skos:prefLabel before rdfs:label before skos:altLabel: the first kept wins.
        if lang not in target or (predicate in _LABELS and _LABELS.index(predicate) == 0):
            target[lang] = value["value"]
        if predicate in _LABELS:
            entry.keys += (_fold(value["value"]),)
    for iri, kind in kinds.items():
        entry = found.get(iri)
        if entry is None:
            entry = found[iri] = Entry(iri, kind, _insert(iri, prefixes))
        entry.kind = kind
    for entry in found.values():
        local = entry.insert.partition(":")[2] if not entry.insert.startswith("<") else ""
        entry.keys = tuple(dict.fromkeys((*entry.keys, _fold(entry.insert), _fold(local)) if local else entry.keys))
        entry.keys += (_fold(entry.iri),) if not entry.keys else ()
    entries.extend(sorted(found.values(), key=lambda e: e.iri))
    return CompletionIndex(version, entries)


def _insert(iri: str, prefixes: Mapping[str, str]) -> str:
    """The IRI as prefix:local when one of our prefixes covers it with a plain local name, else <iri>."""
    best = ""
    for name, namespace in prefixes.items():
        if iri.startswith(namespace) and _LOCAL_NAME.fullmatch(iri[len(namespace) :]) and len(namespace) > len(best):
            best = namespace
            found = f"{name}:{iri[len(namespace) :]}"
    return found if best else f"<{iri}>"


class Completions:
    """The index of the data version being served, built on first use after each change (one at a time)."""

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        self.prefixes = dict(prefixes)
        self._index: CompletionIndex | None = None
        self._lock = threading.Lock()

    def index(self, version: str, select: Callable[[str], list[Mapping[str, Any]]]) -> CompletionIndex:
        """The index of `version`; `select` runs INDEX_QUERY on that version when it is not built yet."""
        current = self._index
        if current is not None and current.version == version:
            return current
        with self._lock:
            current = self._index
            if current is None or current.version != version:
                current = build_index(version, select(INDEX_QUERY), self.prefixes)
                self._index = current
            return current


def parse_request(args: Mapping[str, str]) -> tuple[str, str, str, int]:
    """The typed text, kind, language and limit of a completion request.

    Raises:
        InvalidParameterError: an unknown kind or language, a limit that is not 1…MAX_LIMIT, over-long text.
    """
    typed = args.get("prefix", "")
    if len(typed) > MAX_TEXT:
        raise InvalidParameterError(f"prefix= is over {MAX_TEXT} characters", parameter="prefix")
    kind = args.get("kind", "any")
    if kind not in KINDS:
        raise InvalidParameterError(f"kind= must be one of {', '.join(KINDS)}", parameter="kind", allowed=list(KINDS))
    lang = args.get("lang", "en")
    if lang not in LANGUAGES:
        raise InvalidParameterError("lang= must be en or zh", parameter="lang", allowed=list(LANGUAGES))
    raw = args.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidParameterError(f"limit= must be an integer from 1 to {MAX_LIMIT}", parameter="limit")
    return typed, kind, lang, int(raw)


def lint(text: str, service_allow: tuple[str, ...], base_iri: str) -> dict[str, Any]:
    """The query's problems without running it: `{"ok": True, "form": …}` or `{"ok": False, "problem": {…}}`.

    The text is parsed by pyoxigraph on an empty store (SERVICE read as GRAPH, so nothing is called) and never
    evaluated; the problem is the one /sparql would answer with (code, detail, line and column when known).
    """
    try:
        form = check_query(text, service_allow)
        ox.Store().query(without_service(text), base_iri=base_iri)  # parsed here; the lazy result is never read
    except GuianError as exc:
        return {"ok": False, "problem": exc.problem()}
    except SyntaxError as exc:
        where = _SYNTAX_AT.search(str(exc))
        extra = {"line": int(where[1]), "column": int(where[2])} if where else {}
        return {"ok": False, "problem": QuerySyntaxError(str(exc), **extra).problem()}
    except (RuntimeError, ValueError) as exc:  # parsed, but refused before any row (e.g. an unknown function)
        return {"ok": False, "problem": QuerySyntaxError(str(exc)).problem()}
    return {"ok": True, "form": form}


# --- OpenAPI ---------------------------------------------------------------------------------------------------

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_TEXTS = {"type": "object", "additionalProperties": {"type": "string"}}
_ITEM = {
    "type": "object",
    "required": ["iri", "kind", "insert", "label", "labels", "definition", "definitions"],
    "properties": {
        "iri": {"type": "string"},
        "kind": {"enum": list(KINDS[1:])},
        "insert": {"type": "string", "description": "What goes into the query: prefix:local, <iri> or prefix:"},
        "label": {"type": "string", "description": "The label in the asked language where there is one"},
        "labels": _TEXTS,
        "definition": {"type": "string"},
        "definitions": _TEXTS,
    },
}


def _string_parameter(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI 3.1 path items of /api/complete and /api/lint (added to the named-query API's document)."""
    bad = {"description": "A bad parameter", "content": {"application/problem+json": {"schema": _PROBLEM_REF}}}
    return {
        "/api/complete": {
            "get": {
                "operationId": "complete",
                "summary": "What the query editor completes: prefixes, classes, properties, resources by label",
                "tags": ["editor"],
                "parameters": [
                    _string_parameter(
                        "prefix", "The text before the caret: a label (zh/en), prefix:local or <iri", maxLength=MAX_TEXT
                    ),
                    _string_parameter("kind", "Only names of this kind", enum=list(KINDS)),
                    _string_parameter("lang", "The language of `label` and `definition`", enum=list(LANGUAGES)),
                    {
                        **_string_parameter("limit", "At most this many items"),
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The best matches, best first, from the data version being served",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["data_version", "prefix", "kind", "items"],
                                    "properties": {
                                        "data_version": {"type": "string"},
                                        "prefix": {"type": "string"},
                                        "kind": {"enum": list(KINDS)},
                                        "items": {"type": "array", "items": _ITEM},
                                    },
                                }
                            }
                        },
                    },
                    "400": bad,
                },
            }
        },
        "/api/lint": {
            "get": {
                "operationId": "lint",
                "summary": "The syntax problem of a query, if any, without running it (POST a form or the query too)",
                "tags": ["editor"],
                "parameters": [{**_string_parameter("query", "The query text"), "required": True}],
                "responses": {
                    "200": {
                        "description": "ok with the query form, or the problem /sparql would answer with",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["ok"],
                                    "properties": {
                                        "ok": {"type": "boolean"},
                                        "form": {"type": "string"},
                                        "problem": _PROBLEM_REF,
                                    },
                                }
                            }
                        },
                    },
                    "400": bad,
                },
            }
        },
    }
