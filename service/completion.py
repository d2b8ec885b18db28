"""What the query editor completes: our prefixes, the ontology's classes and properties, and every labelled resource.

One SPARQL query per data version reads the labels, definitions and types; the index it builds is kept until the
data version changes, so a resource added by an update completes from the next request on, and a completion
request is a scan of a few thousand short strings in memory. The editor's syntax check (`lint`) parses the text
on an empty store without running it. Nothing here imports Flask.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox

from service.errors import GuianError, InvalidParameterError, QuerySyntaxError
from service.sparql.lexer import check_query, without_service

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

_SYNTAX_AT = re.compile(r"error at (\d+):(\d+)")  # pyoxigraph's position, as service.engine reads it
_WORD_BOUNDARY = re.compile(r"(?:^|(?<=[\s\-_/:(（]))[^\s\-_/:(（]")
_WORD_PREFIX = 32  # characters of each word start kept in the sorted index
_LOCAL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*")


def fold(text: str) -> str:
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
    haystack: str = ""  # the keys joined, for a first test
    order: dict[str, tuple[bool, int, str]] = field(default_factory=dict)  # language -> rank among equal matches

    def index(self) -> Entry:
        """Ready for matching: the joined keys and, per language, prefixes first, then the shorter label."""
        self.haystack = "\n".join(self.keys)
        self.order = {
            lang: (self.kind != "prefix", len(self.label(lang) or self.insert), self.insert) for lang in LANGUAGES
        }
        return self

    def label(self, lang: str) -> str:
        """The label in `lang`, else an untagged one, else any."""
        return self.labels.get(lang) or self.labels.get("") or next(iter(self.labels.values()), "")

    def as_json(self, lang: str) -> dict[str, Any]:
        """The JSON item: the label and definition in `lang` first, both languages alongside."""
        label = self.label(lang)
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
        # Every entry's keys in one string (NUL never occurs in folded text): a typed word is looked for with
        # C-speed str.find over the whole index, and only the entries it occurs in are scored.
        self._text = "\0".join(entry.haystack for entry in entries)
        self._starts = list(itertools.accumulate((len(e.haystack) + 1 for e in entries[:-1]), initial=0))
        # Per language, each entry's place among equal matches (prefixes first, then the shorter label).
        self._rank = {lang: [0] * len(entries) for lang in LANGUAGES}
        for lang, rank in self._rank.items():
            for place, i in enumerate(sorted(range(len(entries)), key=lambda i: entries[i].order[lang])):
                rank[i] = place
        # Where a word of a key starts, sorted: the text typed so far finds its key-start and word-start matches
        # (the best ranks) by bisection, without looking at the rest.
        self._words = sorted(
            (key[m.start() : m.start() + _WORD_PREFIX], key, i)
            for i, entry in enumerate(entries)
            for key in entry.keys
            for m in _WORD_BOUNDARY.finditer(key)
        )

    def _at_word_starts(self, query: str, kind: str) -> dict[int, int]:
        """Entry number -> score (0 a whole key, 1 a key's start, 2 a later word's start) of the entries of
        `kind` with a key or a word of a key starting with `query` (at most _WORD_PREFIX characters)."""
        best: dict[int, int] = {}
        for prefix, key, i in itertools.islice(self._words, bisect.bisect_left(self._words, (query,)), None):
            if not prefix.startswith(query):
                break
            if kind in ("any", self.entries[i].kind):
                score = 0 if key == query else 1 if key.startswith(query) else 2
                best[i] = min(score, best.get(i, score))
        return best

    def _containing(self, word: str) -> list[int]:
        """The numbers of the entries one of whose keys contains `word`, in index order."""
        found, text, starts = [], self._text, self._starts
        position = text.find(word)
        while position >= 0:
            i = bisect.bisect_right(starts, position) - 1
            found.append(i)
            position = text.find(word, starts[i + 1]) if i + 1 < len(starts) else -1
        return found

    def _at_word_starts(self, query: str) -> dict[int, int]:
        """Entry number -> score (0 a whole key, 1 a key's start, 2 a later word's start) of the entries with a
        key or a word of a key starting with `query` (at most _WORD_PREFIX characters)."""
        best: dict[int, int] = {}
        words = self._words
        for j in range(bisect.bisect_left(words, (query,)), len(words)):
            prefix, key, i = words[j]
            if not prefix.startswith(query):
                break
            score = 0 if key == query else 1 if key.startswith(query) else 2
            best[i] = min(score, best.get(i, score))
        return best

    def complete(self, typed: str, kind: str = "any", lang: str = "en", limit: int = DEFAULT_LIMIT) -> list[Entry]:
        """The best `limit` entries of `kind` for the typed text (an IRI start, a prefixed name, or a label).

        Ranked by how the text matches one of an entry's keys (all of it, its start, a word's start, anywhere,
        every word somewhere), then prefixes before other names, then the shorter label in `lang`.
        """
        query = fold(typed)
        lang = lang if lang in LANGUAGES else LANGUAGES[0]
        entries = self.entries

        def wanted(i: int) -> bool:
            return kind == "any" or entries[i].kind == kind

        rank = self._rank[lang]

        def top(scored: Iterable[tuple[int, int]]) -> list[Entry]:
            return [entries[i] for _, _, i in heapq.nsmallest(limit, ((n, rank[i], i) for n, i in scored))]

        if query.startswith("<"):
            start = query[1:]
            return top((0, i) for i, e in enumerate(entries) if wanted(i) and e.iri.casefold().startswith(start))
        words = query.split()
        if not words:
            return top((5, i) for i in range(len(entries)) if wanted(i))
        if len(query) > _WORD_PREFIX:  # longer than the word-start index holds: score every candidate
            at_word = re.compile(r"(?:^|[\s\-_/:(（])" + re.escape(query))
            scored = (
                (match_score(entries[i].keys, query, at_word, words), i) for i in self._containing(max(words, key=len))
            )
            return top((score, i) for score, i in scored if score is not None and wanted(i))
        best = {i: score for i, score in self._at_word_starts(query).items() if wanted(i)}
        if len(best) < limit:  # fill up with matches inside a word (3), then with every word somewhere (4)
            for i in self._containing(max(words, key=len)):
                if i in best or not wanted(i):
                    continue
                entry = entries[i]
                if query in entry.haystack:
                    best[i] = 3
                elif len(words) > 1 and any(all(word in key for word in words) for key in entry.keys):
                    best[i] = 4
        return top((score, i) for i, score in best.items())


def match_score(keys: tuple[str, ...], query: str, at_word: re.Pattern[str], words: list[str]) -> int | None:
    """How well the folded typed text matches the best of `keys` (lower is better), or None when none does."""
    if not query:
        return 5
    best: int | None = None
    for key in keys:
        if key == query:
            return 0
        if key.startswith(query):
            score = 1
        elif query in key:
            score = 2 if at_word.search(key) else 3
        elif len(words) > 1 and all(word in key for word in words):
            score = 4
        else:
            continue
        best = score if best is None else min(best, score)
    return best


def build_index(version: str, rows: Iterable[Mapping[str, Any]], prefixes: Mapping[str, str]) -> CompletionIndex:
    """The index of one data version from the rows of INDEX_QUERY (SPARQL JSON bindings) and the prefix table.

    An entry's label in a language is its skos:prefLabel, else its rdfs:label, else a skos:altLabel; every label
    of every language is a key it is found by, with its prefixed name and local name.
    """
    found: dict[str, Entry] = {}
    kinds: dict[str, str] = {}
    ranks: dict[tuple[str, str, str], int] = {}  # (iri, labels|definitions, language) -> rank of the kept text
    names: dict[str, list[str]] = {}
    for row in rows:
        iri, predicate, value = row["x"]["value"], row["p"]["value"], row["v"]
        if predicate == RDF + "type":
            kinds[iri] = "property" if kinds.get(iri) == "property" else _TERM_KINDS[value["value"]]
            continue
        entry = found.get(iri) or found.setdefault(iri, Entry(iri, "resource", prefixed_name(iri, prefixes)))
        lang = (value.get("xml:lang") or "").split("-")[0].lower()
        is_label = predicate in _LABELS
        rank = _LABELS.index(predicate) if is_label else _DEFINITIONS.index(predicate)
        slot = (iri, "labels" if is_label else "definitions", lang)
        if rank < ranks.get(slot, len(_LABELS)):
            ranks[slot] = rank
            (entry.labels if is_label else entry.definitions)[lang] = value["value"]
        if is_label:
            names.setdefault(iri, []).append(fold(value["value"]))
    for iri, kind in kinds.items():
        (found.get(iri) or found.setdefault(iri, Entry(iri, kind, prefixed_name(iri, prefixes)))).kind = kind
    for entry in found.values():
        local = "" if entry.insert.startswith("<") else entry.insert.partition(":")[2]
        keys = [*names.get(entry.iri, ()), fold(entry.insert), fold(local)]
        entry.keys = tuple(dict.fromkeys(key for key in keys if key))
    entries = [
        Entry(namespace, "prefix", f"{name}:", keys=(fold(name + ":"), fold(namespace)))
        for name, namespace in prefixes.items()
    ]
    return CompletionIndex(version, [e.index() for e in entries + sorted(found.values(), key=lambda e: e.iri)])


def prefixed_name(iri: str, prefixes: Mapping[str, str]) -> str:
    """The IRI as prefix:local under the longest of our namespaces that leaves a plain local name, else <iri>."""
    fits = [
        (len(namespace), f"{name}:{iri[len(namespace) :]}")
        for name, namespace in prefixes.items()
        if iri.startswith(namespace) and _LOCAL_NAME.fullmatch(iri[len(namespace) :])
    ]
    return max(fits)[1] if fits else f"<{iri}>"


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
