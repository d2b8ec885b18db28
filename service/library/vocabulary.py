"""The values named-query parameters accept: resources of the served data by IRI, short name or label."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from service.data.derived import version_store
from service.data.oxstores import release_memory
from service.data.sources import Data, source_files, source_quads
from service.errors import ConfigError
from service.files import write_atomically

XSD_INTEGER = "http://www.w3.org/2001/XMLSchema#integer"
LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class Lookup:
    """A parameter type whose values are resources of the graph, found by IRI, short name or zh/en label."""

    type: str
    pattern: str  # a SPARQL group pattern binding ?term
    help: str


# Types resolved against the graph; the short name is the last IRI segment (CamelCase class names in kebab-case).
LOOKUPS: dict[str, Lookup] = {
    lookup.type: lookup
    for lookup in (
        Lookup(
            "domain",
            "?term skos:inScheme <https://w3id.org/guian-kg/id/domain-scheme> .",
            "a work domain: IRI, slug (land-management), zh/en label (土地管理, Land management), a word of the source"
            " (土地, 环保, 民生) or unique slug prefix",
        ),
        Lookup("section", "?term a gk:SecretarialSection .", "a section: number 1-9, IRI or label (秘书六科, 六科)"),
        Lookup("project", "?term a/rdfs:subClassOf* gk:Project .", "a project: IRI, slug or label"),
        Lookup(
            "project-kind",
            "?term rdfs:subClassOf* gk:Project . FILTER(isIRI(?term))",
            "a kind of project: class IRI, kebab-case name (industrial-project) or label",
        ),
        Lookup(
            "mechanism",
            "?term a/rdfs:subClassOf* gk:CollaborationMechanism .",
            "a collaboration mechanism: IRI, slug (joint-meeting) or label",
        ),
    )
}
SCALAR_TYPES = ("iri", "language", "integer", "string")
PARAM_TYPES = (*SCALAR_TYPES, *LOOKUPS)

_VOCABULARY_QUERY = """
PREFIX gk: <https://w3id.org/guian-kg/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT DISTINCT ?term ?label ?assumption WHERE {
  %s
  OPTIONAL { ?term skos:prefLabel|rdfs:label|skos:altLabel|skos:hiddenLabel ?label FILTER(isLiteral(?label)) }
  # a label only an assumption's graph gives (土地 for land management): the word means the term by that assumption
  OPTIONAL {
    GRAPH ?labelGraph { ?term skos:prefLabel|rdfs:label|skos:altLabel|skos:hiddenLabel ?label }
    ?labelGraph gk:licensedBy ?assumption .
    FILTER NOT EXISTS {
      GRAPH ?other { ?term skos:prefLabel|rdfs:label|skos:altLabel|skos:hiddenLabel ?label }
      FILTER NOT EXISTS { ?other gk:licensedBy [] }
    }
  }
}
"""


def normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def short_name(iri: str) -> str:
    """The short name of a resource: its last IRI segment, CamelCase turned kebab-case."""
    segment = re.split(r"[/#]", iri.rstrip("/"))[-1]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", segment).lower()


@dataclass(frozen=True)
class Vocabulary:
    """The resources each lookup type may name, keyed by canonical IRI, short name and normalised label."""

    terms: Mapping[str, Mapping[str, str]]  # type -> short name -> canonical IRI
    keys: Mapping[str, Mapping[str, tuple[str, ...]]]  # type -> normalised key -> canonical IRIs
    # type -> normalised key -> the modelling assumption by which the key names its one IRI (a label that only an
    # assumption's graph gives, such as 土地 for land management)
    assumed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def allowed(self, kind: str) -> list[str]:
        """The short names of a lookup type, in a stable order (numbers numerically)."""
        return sorted(self.terms.get(kind, {}), key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))

    def label_of(self, kind: str, iri: str) -> str:
        """The short name of a canonical IRI of that type."""
        return next((s for s, t in self.terms.get(kind, {}).items() if t == iri), iri)

    def candidates(self, kind: str, value: str) -> tuple[str, ...]:
        """The canonical IRIs `value` may mean: exact key first, else slugs it is a prefix of."""
        found = self.keys.get(kind, {}).get(normalise(value))
        if found:
            return found
        prefix = normalise(value)
        if len(prefix) < 3 or " " in prefix:
            return ()
        return tuple(sorted({iri for short, iri in self.terms.get(kind, {}).items() if short.startswith(prefix)}))

    def assumption_for(self, kind: str, value: str) -> str | None:
        """The modelling assumption by which `value` names a resource of that type, if it names one only so."""
        return self.assumed.get(kind, {}).get(normalise(value))

    def to_json(self) -> dict[str, Any]:
        """The tables as JSON values (see `from_json`)."""
        return {"terms": self.terms, "keys": self.keys, "assumed": self.assumed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vocabulary:
        """The vocabulary `to_json` wrote."""
        keys = {kind: {key: tuple(iris) for key, iris in table.items()} for kind, table in data["keys"].items()}
        return cls(data["terms"], keys, data["assumed"])


def build_vocabulary(store: ox.Store) -> Vocabulary:
    """The lookup tables of every lookup type, from a store holding the asserted data (union default graph)."""
    terms: dict[str, dict[str, str]] = {}
    keys: dict[str, dict[str, tuple[str, ...]]] = {}
    assumed: dict[str, dict[str, str]] = {}
    for kind, lookup in LOOKUPS.items():
        by_short: dict[str, str] = {}
        by_key: dict[str, set[str]] = {}
        by_assumption: dict[str, str] = {}
        for row in store.query(_VOCABULARY_QUERY % lookup.pattern, use_default_graph_as_union=True):
            term = row["term"]
            if not isinstance(term, ox.NamedNode):
                continue
            iri = term.value
            by_short[short_name(iri)] = iri
            for key in (iri, short_name(iri)):
                by_key.setdefault(normalise(key), set()).add(iri)
            if row["label"] is not None:
                by_key.setdefault(normalise(row["label"].value), set()).add(iri)
                if row["assumption"] is not None:
                    by_assumption[normalise(row["label"].value)] = row["assumption"].value
        terms[kind] = by_short
        keys[kind] = {key: tuple(sorted(iris)) for key, iris in by_key.items()}
        # only where the key names one resource, and is not also its short name or IRI
        plain = {normalise(k) for short, iri in by_short.items() for k in (short, iri)}
        assumed[kind] = {
            key: a for key, a in by_assumption.items() if len(keys[kind].get(key, ())) == 1 and key not in plain
        }
    return Vocabulary(terms, keys, assumed)


@functools.lru_cache(maxsize=4)
def vocabulary_of(files: tuple[tuple[str, float, int], ...], cache_dir: Path | None, data: Data = None) -> Vocabulary:
    cached = None
    if cache_dir is not None:
        digest = hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]
        cached = cache_dir / f"vocabulary-{digest}.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return Vocabulary.from_json(json.loads(cached.read_bytes()))
    store = ox.Store()
    store.extend(source_quads(data))
    vocabulary = build_vocabulary(store)
    del store
    release_memory()  # a server builds this before forking its workers: they should not inherit the garbage
    if cached is not None:
        with contextlib.suppress(OSError):  # a read-only cache: build it again next time
            cache_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=cache_dir, delete=False) as tmp:
                json.dump(vocabulary.to_json(), tmp, ensure_ascii=False)
            os.replace(tmp.name, cached)
    return vocabulary


def load_vocabulary(cache_dir: Path | None = None, data: Data = None) -> Vocabulary:
    """The vocabulary of the asserted data files, built once per version of those files (per process, and in
    `cache_dir` as JSON when given: parsing a large dataset's files takes seconds).

    Raises:
        ConfigError: when a data file cannot be read or parsed.
    """
    try:
        stamp = tuple((str(p), p.stat().st_mtime, p.stat().st_size) for p in source_files(data))
        return vocabulary_of(stamp, cache_dir, data)
    except (OSError, SyntaxError) as exc:
        raise ConfigError(f"cannot build the named-query vocabulary from the data files: {exc}") from None


@functools.lru_cache(maxsize=4)
def vocabulary_of_version(nquads: Path, inferred_graph: str) -> Vocabulary:
    """The vocabulary of one data version's asserted quads (its N-Quads file less the inferred graph).

    Kept as JSON beside the file (every process of the service reads it once per version, the first builds it).
    """
    cached = nquads.parent / "vocabulary.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return Vocabulary.from_json(json.loads(cached.read_bytes()))
    vocabulary = build_vocabulary(version_store(nquads, inferred_graph))
    with contextlib.suppress(OSError):  # a read-only cache: build it again next time
        write_atomically(cached, json.dumps(vocabulary.to_json(), ensure_ascii=False).encode())
    return vocabulary
