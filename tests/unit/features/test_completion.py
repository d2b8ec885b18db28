"""The completion index: which names a typed text finds, in which order, and which label and definition it shows."""

from __future__ import annotations

import re

import pytest

from service.completion import INDEX_QUERY, RDF, RDFS, SKOS, Entry, build_index, fold, lint, match_score, prefixed_name
from service.names import prefixes

BASE = "https://w3id.org/guian-kg/"
PREFIXES = prefixes(BASE)
GK = PREFIXES["gk"]
ID = PREFIXES["id"]


def row(iri: str, predicate: str, value: str, lang: str | None = None, iri_value: bool = False) -> dict:
    term = {"type": "uri" if iri_value else "literal", "value": value}
    if lang:
        term["xml:lang"] = lang
    return {"x": {"type": "uri", "value": iri}, "p": {"type": "uri", "value": predicate}, "v": term}


ROWS = [
    row(ID + "section/6", SKOS + "prefLabel", "秘书六科", "zh"),
    row(ID + "section/6", SKOS + "prefLabel", "Secretarial Section 6", "en"),
    row(ID + "section/6", RDFS + "label", "Section six (rdfs)", "en"),
    row(ID + "section/6", SKOS + "altLabel", "Sixth section", "en"),
    row(ID + "domain/land-management", SKOS + "prefLabel", "Land management", "en"),
    row(ID + "domain/land-management", SKOS + "prefLabel", "土地管理", "zh"),
    row(ID + "domain/land-management", SKOS + "definition", "Land use, planning, permits.", "en"),
    row(GK + "handlesDomain", RDF + "type", "http://www.w3.org/2002/07/owl#ObjectProperty", iri_value=True),
    row(GK + "handlesDomain", RDFS + "label", "handles domain", "en"),
    row(GK + "handlesDomain", RDFS + "label", "对接领域", "zh"),
    row(GK + "SecretarialSection", RDF + "type", "http://www.w3.org/2002/07/owl#Class", iri_value=True),
    row(GK + "SecretarialSection", RDFS + "label", "Secretarial section", "en"),
    row(GK + "SecretarialSection", SKOS + "definition", "一个秘书科室。", "zh"),
    row("urn:x:elsewhere", RDFS + "label", "Outside our namespaces"),
]


@pytest.fixture(scope="module")
def index():
    return build_index("v1", ROWS, PREFIXES)


def inserts(entries) -> list[str]:
    return [entry.insert for entry in entries]


def test_labels_prefer_skos_preflabel_then_rdfs_label_and_every_label_finds_it(index):
    (section,) = [e for e in index.entries if e.iri == ID + "section/6"]
    assert section.labels == {"zh": "秘书六科", "en": "Secretarial Section 6"}
    for typed in ("秘书六科", "六科", "section six", "sixth", "id:section/6"):
        assert ID + "section/6" in [e.iri for e in index.complete(typed)], typed


def test_kinds_definitions_and_what_goes_into_the_query(index):
    (prop,) = index.complete("gk:handles", kind="property")
    assert prop.insert == "gk:handlesDomain" and prop.kind == "property"
    assert prop.as_json("zh")["label"] == "对接领域"
    (klass,) = index.complete("secretarial", kind="class")
    assert klass.as_json("en")["definition"] == "一个秘书科室。"  # the only definition there is
    assert inserts(index.complete("outside")) == ["<urn:x:elsewhere>"]
    assert inserts(index.complete("sk", kind="prefix")) == ["skos:"]
    assert index.complete("secretarial", kind="property") == []


def test_ranking_whole_then_start_then_word_start_then_inside(index):
    assert inserts(index.complete("land management"))[0] == "id:domain/land-management"
    # "section" starts a key of the class and of section 6's English labels; the shorter label first.
    found = inserts(index.complete("section", lang="en"))
    assert {"id:section/6", "gk:SecretarialSection"} <= set(found)
    assert inserts(index.complete("manage")) == ["id:domain/land-management"]  # a later word's start
    assert inserts(index.complete("anagement")) == ["id:domain/land-management"]  # inside a word
    assert inserts(index.complete("land manage")) == ["id:domain/land-management"]
    assert inserts(index.complete("<" + ID + "domain/")) == ["id:domain/land-management"]


def test_insert_uses_the_longest_namespace_with_a_plain_local_name() -> None:
    assert prefixed_name(GK + "handlesDomain", PREFIXES) == "gk:handlesDomain"
    assert prefixed_name(ID + "section/6", PREFIXES) == "id:section/6"
    assert prefixed_name(ID + "odd name", PREFIXES) == "<" + ID + "odd name>"


def test_the_fast_paths_rank_exactly_like_scoring_every_entry() -> None:
    """A bigger index: the word-start bisection and the substring scan agree with scoring every entry."""
    rows = []
    for i in range(400):
        iri = f"{ID}thing/{i}"
        rows.append(row(iri, SKOS + "prefLabel", f"事项{i} 秘书处理 land-{i % 7}", "zh"))
        rows.append(row(iri, SKOS + "prefLabel", f"Matter number {i} landing {'management' if i % 3 else 'x'}", "en"))
    big = build_index("v2", rows + ROWS, PREFIXES)
    for typed in ("land", "landing", "management", "matter number 1", "处理", "秘书", "事项3", "number 12", "ing", "a"):
        query = fold(typed)
        at_word = re.compile(r"(?:^|[\s\-_/:(（])" + re.escape(query))
        scored = [(match_score(e.keys, query, at_word, query.split()), e) for e in big.entries]
        ranked = sorted(((s, e) for s, e in scored if s is not None), key=lambda item: (item[0], *item[1].order["en"]))
        assert inserts(big.complete(typed, lang="en")) == [e.insert for _, e in ranked[:20]], typed


def test_the_index_query_is_valid_sparql() -> None:
    assert lint(INDEX_QUERY, (), BASE) == {"ok": True, "form": "select"}


def test_an_entry_without_labels_is_found_by_its_name() -> None:
    index = build_index("v", [row(GK + "bare", RDF + "type", RDF + "Property", iri_value=True)], PREFIXES)
    (entry,) = index.complete("bare")
    assert isinstance(entry, Entry) and entry.kind == "property" and entry.as_json("en")["label"] == ""
