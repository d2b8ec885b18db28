"""The language work of /api/ask without HTTP: normalisation, section references, labels, patterns."""

from __future__ import annotations

import pytest

from service.ask.entities import Lexicon, section_numbers
from service.ask.normalise import correct, language, normalise
from service.ask.patterns import Refusal, Understanding, understand

ID = "https://w3id.org/guian-kg/id/"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("哪個科室負責土地管理？", "哪个科室负责土地管理"),  # traditional → simplified, punctuation out
        ("ＳＥＣＴＩＯＮ　５！", "section 5"),  # full-width → half-width
        ("Which   section, handles land?", "which section handles land"),
        ("秘書五科、八科與七科", "秘书五科 八科与七科"),
    ],
)
def test_normalise(text, expected):
    assert normalise(text) == expected


def test_language():
    assert language("which section handles 土地") == "zh"
    assert language("which section handles land") == "en"


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("秘书五科负责什么", [5]),
        ("五科和第六科", [5, 6]),
        ("秘书五科 八科与七科", [5, 8, 7]),
        ("第十科", [10]),
        ("十二科", [12]),
        ("section 5", [5]),
        ("sections 5 8 and 7", [5, 8, 7]),
        ("the fifth section", [5]),
        ("section five", [5]),
        ("secretarial section 9", [9]),
        ("the 3rd section", [3]),
        ("科室 科技 学科", []),  # 科 inside other words is no section
    ],
)
def test_section_references_in_every_form(text, numbers):
    assert [n for n, _, _ in section_numbers(text)] == numbers


def _rows(*triples):
    return [
        {"term": {"value": iri}, "label": {"value": label, "xml:lang": lang}, "kind": {"value": kind}}
        for iri, label, lang, kind in triples
    ]


LEXICON = Lexicon.from_rows(
    _rows(
        (ID + "domain/land-management", "土地管理", "zh", "domain"),
        (ID + "domain/land-management", "Land management", "en", "domain"),
        (ID + "domain/livelihoods", "社会事务与民生服务", "zh", "domain"),
        (ID + "domain/livelihoods", "Social affairs and livelihood services", "en", "domain"),
        (ID + "domain/meeting-minutes", "会议纪要", "zh", "domain"),
        (ID + "domain/meeting-services", "会议服务", "zh", "domain"),
        (ID + "mechanism/joint-meeting", "科室联席会议", "zh", "mechanism"),
        (ID + "section/5", "秘书五科", "zh", "section"),
        (ID + "x/a", "重名", "zh", "domain"),
        (ID + "x/b", "重名", "zh", "domain"),
    ),
    "https://w3id.org/guian-kg/",
)


@pytest.mark.parametrize(
    ("text", "iris"),
    [
        ("哪个科室负责土地", [ID + "domain/land-management"]),  # two-character head of a domain label
        ("民生归谁", [ID + "domain/livelihoods"]),  # head of a part of the label
        ("联席会议多久开一次", [ID + "mechanism/joint-meeting"]),  # a run of the label
        ("who handles land", [ID + "domain/land-management"]),  # the English head word
        ("which section handles livelihoods", [ID + "domain/livelihoods"]),
        ("会议怎么开", []),  # 会议 is too generic to name anything
    ],
)
def test_entities_from_labels(text, iris):
    found, ambiguous = LEXICON.find(text)
    assert [e.iri for e in found] == iris and not ambiguous


def test_a_label_of_two_resources_is_ambiguous_not_guessed():
    found, ambiguous = LEXICON.find("重名由谁负责")
    assert found == [] and ambiguous == [("重名", [ID + "x/a", ID + "x/b"])]


def test_typos_are_corrected_against_known_words():
    assert correct("wich section handles lnad managment", LEXICON.known_words | {"which", "section", "handles"}) == (
        "which section handles land management"
    )


def _understand(text, lang="en", numbers=()):
    found, _ = LEXICON.find(normalise(text))
    return understand(normalise(text), lang, found, list(numbers), lambda n: ID + f"section/{n}")


def test_patterns_pick_a_named_query_and_its_parameters():
    assert _understand("who handles land") == Understanding(
        "sections-for-domain", {"domain": ["land-management"], "lang": ["en"]}, {"sections": ""}
    )
    assert _understand("what does section 5 do", numbers=[5]).query == "section-profile"
    assert _understand("who does section 5 work with", numbers=[5]).query == "section-collaborators"
    assert _understand("联席会议多久开一次", "zh").focus == {"facet": "01-frequency"}


@pytest.mark.parametrize(
    ("text", "numbers", "reason"),
    [
        ("what's the weather tomorrow", [], "out-of-scope"),
        ("who is the director", [], "out-of-scope"),
        ("what does section 10 do", [10], "no-such-section"),
        ("lorem ipsum", [], "not-understood"),
    ],
)
def test_refusals(text, numbers, reason):
    result = _understand(text, numbers=numbers)
    assert isinstance(result, Refusal) and result.reason == reason
