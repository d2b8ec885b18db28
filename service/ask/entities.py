"""What a question names: sections in every form people write them, and the graph's resources by their labels.

The labels come from the live graph (skos:prefLabel, rdfs:label, skos:altLabel, skos:hiddenLabel), read once per
data version: a resource added by an update is understood from the next request on. Besides the labels
themselves a few keys are derived from them: the slug as words (land management), the parts of a Chinese label
split at 与/和/及 and their two-character heads (民生服务 → 民生), and single English words that occur in the
labels of one domain only (land → Land management: the head word). Derived keys give way to labels, and a key that
names two resources of one kind is ambiguous, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from service import names
from service.ask.normalise import normalise, words
from service.library.vocabulary import Vocabulary, short_name

# Kinds of resource, most specific first (a resource gets the first kind it has).
KINDS = ("section", "domain", "mechanism", "outcome", "project", "project-kind", "resource")

LABELS_QUERY = """
PREFIX gk:   <https://w3id.org/guian-kg/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT DISTINCT ?term ?label ?kind WHERE {
  ?term skos:prefLabel|rdfs:label|skos:altLabel|skos:hiddenLabel ?label .
  FILTER(isIRI(?term) && isLiteral(?label))
  OPTIONAL {
    { ?term a gk:SecretarialSection . BIND("section" AS ?k) }
    UNION { ?term skos:inScheme <https://w3id.org/guian-kg/id/domain-scheme> . BIND("domain" AS ?k) }
    UNION { ?term a/rdfs:subClassOf* gk:CollaborationMechanism . BIND("mechanism" AS ?k) }
    UNION { ?term a gk:PublicOutcome . BIND("outcome" AS ?k) }
    UNION { ?term a/rdfs:subClassOf* gk:Project . BIND("project" AS ?k) }
    UNION { ?term rdfs:subClassOf* gk:Project . BIND("project-kind" AS ?k) }
  }
  BIND(COALESCE(?k, "resource") AS ?kind)
}
"""

# The labels only an assumption's graph gives (土地 for land management): such a word names its resource by that
# assumption. From the few assumption graphs first, so that it stays small on every engine.
ASSUMED_LABELS_QUERY = """
PREFIX gk:   <https://w3id.org/guian-kg/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT DISTINCT ?term ?label ?assumption WHERE {
  ?labelGraph gk:licensedBy ?assumption .
  GRAPH ?labelGraph { ?term skos:prefLabel|rdfs:label|skos:altLabel|skos:hiddenLabel ?label }
  FILTER NOT EXISTS {
    GRAPH ?other { ?term skos:prefLabel|rdfs:label|skos:altLabel|skos:hiddenLabel ?label }
    FILTER NOT EXISTS { ?other gk:licensedBy [] }
  }
}
"""

_ZH_NUMERALS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_EN_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_EN_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5,
    "6th": 6, "7th": 7, "8th": 8, "9th": 9, "10th": 10, "11th": 11, "12th": 12,
}  # fmt: skip
_ZH_NUMBER = "[一二两三四五六七八九十0-9]{1,3}"
# 秘书五科, 第五科, 五科, 5科, and the lists the source writes: 秘书五科、八科与七科 (after normalisation: spaces)
_ZH_SECTION = re.compile(rf"(?:秘书)?第?({_ZH_NUMBER})(?:号)?科(?!技|学|研|目|普)")
_EN_CARDINAL = "|".join(_EN_NUMBERS)
_EN_ORDINAL = "|".join(_EN_ORDINALS)
_EN_SECTION = re.compile(
    rf"\b(?:secretarial\s+)?(?:sections?|sec|no)\s*(\d{{1,3}}|{_EN_CARDINAL})((?:\s*(?:and|or|&)?\s*(?:\d{{1,3}}|{_EN_CARDINAL})\b)*)"
    rf"|\b({_EN_ORDINAL})((?:\s*(?:and|or|&)?\s*(?:{_EN_ORDINAL})\b)*)\s+(?:secretarial\s+)?sections?\b"
    rf"|\bs(\d)\b"
)
_EN_LIST_ITEM = re.compile(rf"\d{{1,3}}|{_EN_CARDINAL}|{_EN_ORDINAL}")
_ZH_SPLIT = re.compile(r"[与和及、]| ")
_ZH_GENERIC = frozenset(
    [
        "科室",
        "秘书",
        "工作",
        "项目",
        "信息",
        "会议",
        "管理",
        "建设",
        "发展",
        "服务",
        "政策",
        "推进",
        "资源",
        "新区",
        "部门",
        "系统",
        "机制",
        "领域",
        "办公",
        "日常",
    ]
)
_EN_STOP = frozenset(
    [
        "and",
        "the",
        "of",
        "for",
        "with",
        "from",
        "into",
        "other",
        "its",
        "their",
        "new",
        "area",
        "work",
        "works",
        "office",
        "section",
        "sections",
        "services",
        "service",
        "affairs",
        "support",
        "development",
        "management",
        "construction",
        "information",
        "policy",
        "industry",
        "platform",
        "system",
        "meeting",
        "project",
        "projects",
        "planning",
        "activities",
        "resources",
        "general",
    ]
)


def _zh_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if text.startswith("十"):
        return 10 + _ZH_NUMERALS.get(text[1:], 0)
    if text.endswith("十"):
        return _ZH_NUMERALS.get(text[0], 0) * 10
    if "十" in text:
        tens, ones = text.split("十", 1)
        return _ZH_NUMERALS.get(tens, 0) * 10 + _ZH_NUMERALS.get(ones, 0)
    return _ZH_NUMERALS.get(text, 0) if len(text) == 1 else 0


def _en_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    return _EN_NUMBERS.get(text) or _EN_ORDINALS.get(text, 0)


def section_numbers(text: str) -> list[tuple[int, int, int]]:
    """(number, start, end) of every section reference in a normalised question, in order."""
    found: list[tuple[int, int, int]] = []
    for match in _ZH_SECTION.finditer(text):
        found.append((_zh_number(match.group(1)), match.start(), match.end()))
    for match in _EN_SECTION.finditer(text):
        head = match.group(1) or match.group(3) or match.group(5)
        rest = match.group(2) or match.group(4) or ""
        for item in [head, *_EN_LIST_ITEM.findall(rest)]:
            found.append((_en_number(item), match.start(), match.end()))
    return sorted(found, key=lambda f: f[1])


def without_sections(text: str) -> str:
    """The normalised question with its section references taken out (what else it says about them)."""
    return " ".join(_EN_SECTION.sub(" ", _ZH_SECTION.sub(" ", text)).split())


@dataclass(frozen=True)
class Entity:
    """A resource a question names: where, by which words, and of which kind."""

    iri: str
    kind: str
    text: str
    start: int
    end: int


@dataclass
class Lexicon:
    """Keys (normalised words) → resources, per kind, for one data version."""

    base_iri: str
    kinds: dict[str, str] = field(default_factory=dict)  # iri -> kind
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # iri -> lang -> preferred label
    keys: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # key -> kind -> iris (labels)
    derived: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # key -> kind -> iris (derived)
    known_words: frozenset[str] = frozenset()
    sections: dict[int, str] = field(default_factory=dict)  # notation -> iri
    assumed: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> iri -> assumption (labels it licenses)

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, dict[str, str]]],
        base_iri: str,
        assumed: Iterable[Mapping[str, dict[str, str]]] = (),
    ) -> Lexicon:
        """The lexicon of the SPARQL JSON bindings of LABELS_QUERY (and of ASSUMED_LABELS_QUERY, `assumed`)."""
        lexicon = cls(base_iri)
        texts: dict[str, list[tuple[str, str]]] = {}
        for row in rows:
            iri, label, kind = row["term"]["value"], row["label"], row["kind"]["value"]
            previous = lexicon.kinds.get(iri)
            if previous is None or KINDS.index(kind) < KINDS.index(previous):
                lexicon.kinds[iri] = kind
            lang = label.get("xml:lang", "")[:2]
            texts.setdefault(iri, []).append((label["value"], lang))
        for row in assumed:
            key = normalise(row["label"]["value"])
            lexicon.assumed.setdefault(key, {})[row["term"]["value"]] = row["assumption"]["value"]
        for iri, labels in texts.items():
            kind = lexicon.kinds[iri]
            for value, lang in labels:
                if lang in ("zh", "en"):
                    lexicon.labels.setdefault(iri, {}).setdefault(lang, value)
                key = normalise(value)
                if len(key) >= 2:
                    lexicon.keys.setdefault(key, {}).setdefault(kind, set()).add(iri)
        lexicon._derive(texts)
        lexicon._number_sections()
        vocabulary = {w for key in lexicon.keys for w in words(key)} | {
            w for key in lexicon.derived for w in words(key)
        }
        lexicon.known_words = frozenset(vocabulary)
        return lexicon

    def _add_derived(self, key: str, kind: str, iri: str) -> None:
        if len(key) >= 2 and key not in self.keys and key not in _ZH_GENERIC:
            self.derived.setdefault(key, {}).setdefault(kind, set()).add(iri)

    def _derive(self, texts: Mapping[str, list[tuple[str, str]]]) -> None:
        single: dict[str, set[str]] = {}
        for iri, labels in texts.items():
            kind = self.kinds[iri]
            if kind not in ("domain", "mechanism", "outcome", "project"):
                continue
            slug = short_name(names.unbase(iri, self.base_iri))
            self._add_derived(slug.replace("-", " "), kind, iri)
            for value, lang in labels:
                text = normalise(value)
                if lang == "zh":
                    for part in _ZH_SPLIT.split(text):
                        # every run of 4+ characters of the label (联席会议 of 科室联席会议), and for domains the
                        # two-character head of a part (民生 of 民生服务)
                        for size in range(4, len(part)):
                            for at in range(len(part) - size + 1):
                                self._add_derived(part[at : at + size], kind, iri)
                        if len(part) >= 2:
                            self._add_derived(part, kind, iri)
                        if len(part) >= 4 and kind == "domain":
                            self._add_derived(part[:2], kind, iri)
                else:
                    tokens = words(text)
                    for size in range(2, len(tokens)):
                        for at in range(len(tokens) - size + 1):
                            phrase = tokens[at : at + size]
                            if phrase[0] not in _EN_STOP and phrase[-1] not in _EN_STOP:
                                self._add_derived(" ".join(phrase), kind, iri)
                if lang != "zh" and kind == "domain":
                    # the head word of the label and of the slug (land of "Land management"), and its plain forms
                    for word in (words(text) or [""])[:1] + slug.split("-")[:1]:
                        if len(word) >= 4 and word not in _EN_STOP:
                            for form in {word, word.removesuffix("s"), word.removesuffix("al")}:
                                single.setdefault(form, set()).add(iri)
        for word, iris in single.items():
            if len(iris) == 1:
                self._add_derived(word, "domain", next(iter(iris)))
        # a derived key that names several resources of its kind is no key at all (labels alone are ambiguous)
        for key in list(self.derived):
            kinds = {kind: iris for kind, iris in self.derived[key].items() if len(iris) == 1}
            if kinds:
                self.derived[key] = kinds
            else:
                del self.derived[key]

    def _number_sections(self) -> None:
        for iri, kind in self.kinds.items():
            if kind == "section":
                tail = iri.rstrip("/").rsplit("/", 1)[-1]
                if tail.isdigit():
                    self.sections[int(tail)] = iri

    def label(self, iri: str, lang: str) -> str:
        """The resource's label in that language (else any, else its short name)."""
        labels = self.labels.get(iri, {})
        return labels.get(lang) or next(iter(labels.values()), None) or short_name(iri)

    def find(self, text: str) -> tuple[list[Entity], list[tuple[str, list[str]]]]:
        """The resources a normalised question names, longest match first, and the ambiguous words.

        Returns:
            (entities in order of appearance, [(words, candidate IRIs)] for words naming several resources).
        """
        taken = [False] * len(text)
        found: list[Entity] = []
        ambiguous: list[tuple[str, list[str]]] = []
        # the kinds questions are about first, then any other labelled resource in the words left over
        # every substring of the question that is a key, longest first (a dictionary look-up each)
        candidates = [
            [
                (at, at + length)
                for length in range(min(max(map(len, table), default=0), len(text)), 1, -1)
                for at in range(len(text) - length + 1)
                if text[at : at + length] in table
            ]
            for table in (self.keys, self.derived)
        ]
        # the kinds questions are about first, then any other labelled resource in the words left over
        for specific in (True, False):
            for table, matches in zip((self.keys, self.derived), candidates, strict=True):
                for at, end in matches:
                    key = text[at:end]
                    kinds = {k: iris for k, iris in table[key].items() if (k != "resource") == specific}
                    if not kinds or any(taken[at:end]) or not _bounded(text, at, end):
                        continue
                    kind = min(kinds, key=KINDS.index)
                    iris = sorted(kinds[kind])
                    for i in range(at, end):
                        taken[i] = True
                    if len(iris) == 1:
                        found.append(Entity(iris[0], kind, key, at, end))
                    elif specific:  # two resources of one kind share this label: ask, never guess
                        ambiguous.append((key, iris))
        found.sort(key=lambda e: e.start)
        return found, ambiguous

    def vocabulary(self) -> Vocabulary:
        """The named-query lookup tables for this version's resources (canonical IRIs, as the library keys them)."""
        lookup_kinds = {"domain", "section", "mechanism", "project", "project-kind"}
        terms: dict[str, dict[str, str]] = {k: {} for k in lookup_kinds}
        keys: dict[str, dict[str, set[str]]] = {k: {} for k in lookup_kinds}
        for iri, kind in self.kinds.items():
            if kind not in lookup_kinds:
                continue
            canonical = names.unbase(iri, self.base_iri)
            terms[kind][short_name(canonical)] = canonical
            for key in (canonical, short_name(canonical)):
                keys[kind].setdefault(" ".join(key.split()).casefold(), set()).add(canonical)
        frozen = {k: {key: tuple(sorted(v)) for key, v in table.items()} for k, table in keys.items()}
        assumed: dict[str, dict[str, str]] = {k: {} for k in lookup_kinds}
        for key, by_iri in self.assumed.items():
            for iri, assumption in by_iri.items():
                if self.kinds.get(iri) in lookup_kinds and len(self.keys.get(key, {}).get(self.kinds[iri], ())) == 1:
                    assumed[self.kinds[iri]][key] = names.unbase(assumption, self.base_iri)
        return Vocabulary(terms, frozen, assumed)


def _bounded(text: str, start: int, end: int) -> bool:
    """Whether a match of Latin words starts and ends at word boundaries (Chinese has none to respect)."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    first, last = text[start], text[end - 1]
    if first.isascii() and first.isalnum() and before.isascii() and before.isalnum():
        return False
    return not (last.isascii() and last.isalnum() and after.isascii() and after.isalnum())
