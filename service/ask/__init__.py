"""Questions in plain words (Chinese or English) answered from the named-query library.

`Asker.ask(question, run, version)` understands a question (service.ask.normalise, .entities, .patterns), runs
the one named query it maps to through `run` — the library's own text and RDF-term bindings, never SPARQL
assembled from the question — and writes the answer (service.ask.answer). Deterministic and offline. No Flask
here: the web layer (service.web.routes.ask) and the command line (`guian-kg ask`) each pass their own `run`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from service import names
from service.ask import answer as writer
from service.ask import patterns
from service.ask.entities import ASSUMED_LABELS_QUERY, LABELS_QUERY, Lexicon, section_numbers
from service.ask.normalise import correct, language, normalise
from service.ask.patterns import OUT_OF_SCOPE, Refusal, Understanding, understand
from service.errors import InvalidParameterError
from service.library.queries import Library, PreparedQuery
from service.library.vocabulary import Vocabulary

MAX_QUESTION = 500  # characters
MAX_KEPT_FACTS = 512  # resources whose provenance rows are kept per data version
# run(text, bindings) -> SPARQL 1.1 JSON results (a dict), as the query executor writes them
Runner = Callable[[str, tuple[tuple[str, str], ...]], Mapping[str, Any]]
_CUE_WORDS = frozenset(  # the English words the question patterns look for, so that typos of them are fixed too
    word
    for cue in vars(patterns).values()
    if isinstance(cue, re.Pattern)
    for word in re.findall(r"[a-z]{4,}", cue.pattern)
)
SUGGESTIONS = {
    "zh": ("哪个科室负责土地管理？", "秘书五科负责什么？", "科室联席会议多久召开一次？"),
    "en": (
        "Which section handles land management?",
        "What does section 5 do?",
        "How often does the joint meeting meet?",
    ),
}
REFUSALS = {
    "out-of-scope": (
        "抱歉，这个问题超出了本图谱的范围：它只记录贵安新区管委会办公室九个秘书科室的职责领域、协作机制及其原文出处。",
        "Sorry, that is outside this graph: it holds only the nine secretarial sections of the Gui'an New Area "
        "Management Committee office, their work domains, how they collaborate, and the source passages.",
    ),
    "no-such-section": (
        "办公室只有九个秘书科室（秘书一科至秘书九科），没有您所说的科室。",
        "The office has nine secretarial sections (1 to 9); there is no such section.",
    ),
    "ambiguous": (
        "这个问题中的说法可能指多个对象，请说得更具体一些：",
        "Some words could mean several things; please be more specific:",
    ),
    "not-understood": (
        "抱歉，我没能理解这个问题。可以这样问：",
        "Sorry, I did not understand that question. You could ask:",
    ),
    "needs-partner-endpoint": (
        "合作方项目的联邦查询需要另一个SPARQL端点，无法在此直接回答。",
        "Partner projects need a second SPARQL endpoint (a federated query); that is not answered here.",
    ),
    "no-answer": ("图谱无法用这些参数回答这个问题：", "The graph cannot answer that with these values:"),
}


class Asker:
    """Answers questions from one named-query library; keeps one lexicon per data version."""

    def __init__(self, library: Library, base_iri: str = names.DEFAULT_BASE) -> None:
        self.library = library
        self.base_iri = base_iri
        self._lexicons: dict[str, tuple[Lexicon, Vocabulary]] = {}
        self._facts: dict[tuple[str, str], Sequence[Mapping[str, Any]]] = {}
        self._lock = threading.Lock()

    def lexicon(self, run: Runner, version: str) -> tuple[Lexicon, Vocabulary]:
        """The lexicon of a data version (read from the graph's labels on first use, then kept); `run` answers its
        two queries (on the remote engine the web layer runs them on the version's own quads: the lexicon never
        depends on a store's dialect)."""
        with self._lock:
            held = self._lexicons.get(version)
        if held is not None:
            return held
        rows, assumed = (
            run(query.replace("<" + names.DEFAULT_BASE, "<" + self.base_iri), ())["results"]["bindings"]
            for query in (LABELS_QUERY, ASSUMED_LABELS_QUERY)
        )
        lexicon = Lexicon.from_rows(rows, self.base_iri, assumed)
        held = (lexicon, lexicon.vocabulary())
        with self._lock:
            self._lexicons = {version: held}  # only the served version is worth keeping
        return held

    def _provenance(self, resource: str, run: Runner, version: str) -> Sequence[Mapping[str, Any]]:
        """The fact-provenance rows of a resource on a data version (kept: every answer about it shows them)."""
        key = (version, resource)
        with self._lock:
            rows = self._facts.get(key)
        if rows is None:
            fact = self.library.get("fact-provenance").prepare({"resource": resource})
            rows = run(fact.text, fact.bindings)["results"]["bindings"]
            with self._lock:
                if len(self._facts) >= MAX_KEPT_FACTS or any(v != version for v, _ in self._facts):
                    self._facts.clear()
                self._facts[key] = rows
        return rows

    def ask(self, question: str, run: Runner, version: str, labels: Runner | None = None) -> dict[str, Any]:
        """The answer document of a question (see the README, "Ask in words"); `labels` runs the lexicon's queries
        when `run` should not.

        Raises:
            InvalidParameterError: an empty question or one over MAX_QUESTION characters.
        """
        if not isinstance(question, str) or not question.strip():
            raise InvalidParameterError("q= needs a question, e.g. q=哪个科室负责土地管理", parameter="q")
        if len(question) > MAX_QUESTION:
            raise InvalidParameterError(f"a question has at most {MAX_QUESTION} characters", parameter="q")
        lexicon, vocabulary = self.lexicon(labels or run, version)
        lang = language(question)
        text = normalise(question)
        if lang == "en":
            text = correct(text, lexicon.known_words | _CUE_WORDS)
        entities, ambiguous = lexicon.find(text)
        numbers = [n for n, _, _ in section_numbers(text)]
        recognised = {
            "text": text,
            "entities": [
                {"iri": e.iri, "kind": e.kind, "words": e.text, "label": lexicon.label(e.iri, lang)} for e in entities
            ],
            "sections": list(dict.fromkeys(numbers)),
        }
        base = {"question": question, "language": lang}
        if ambiguous and not OUT_OF_SCOPE.search(text):
            options = [
                {"words": key, "candidates": [{"iri": i, "label": lexicon.label(i, lang)} for i in iris]}
                for key, iris in ambiguous
            ]
            return self._decline(base, lang, Refusal("ambiguous", {"ambiguous": options}), recognised, lexicon)
        result = understand(text, lang, entities, numbers, lambda n: lexicon.sections.get(n))
        if isinstance(result, Refusal):
            return self._decline(base, lang, result, recognised, lexicon)
        query = replace(self.library.get(result.query), vocabulary=vocabulary)
        for param in query.parameters:  # show what runs: a single-valued parameter left out takes its default
            if param.name not in result.parameters and param.default and not param.multiple:
                result.parameters[param.name] = list(param.default)
        try:
            prepared = query.prepare(result.parameters)
        except InvalidParameterError as exc:
            return self._decline(base, lang, Refusal("no-answer", {"problem": exc.detail}), recognised, lexicon)
        results = run(prepared.text, prepared.bindings)
        rows = results.get("results", {}).get("bindings", [])
        # the sentences use the rows in the question's language (public-outcomes lists both)
        shown = [r for r in rows if r.get("lang", {}).get("value", lang) == lang]

        def label(iri: str) -> str:
            if iri.startswith("section:"):
                iri = lexicon.sections.get(int(iri[8:]), iri)
            return lexicon.label(iri, lang)

        def provenance(resource: str) -> Sequence[Mapping[str, Any]]:
            return self._provenance(resource, run, version)

        # the modelling assumptions by which a word of the question names its resource (土地 → land management)
        assumed = list(
            dict.fromkeys(
                [*prepared.assumptions]
                + [
                    names.rebase(a, lexicon.base_iri)
                    for e in entities
                    if (a := vocabulary.assumption_for(e.kind, e.text)) is not None
                ]
            )
        )
        answer = writer.compose(result.query, shown, lang, result.focus, label)
        answer += [
            f"问题中的词依据一项建模假设理解：{label(a)}。"
            if lang == "zh"
            else f"A word of the question is read by a modelling assumption: {label(a)}."
            for a in assumed
        ]
        return {
            **base,
            "understood": True,
            "query": result.query,
            "parameters": result.parameters,
            "interpretation": self._interpretation(result, lang, label),
            "sparql": prepared.text,
            "bindings": dict(prepared.bindings),
            "sparql_standalone": standalone(prepared),
            "answer": answer,
            "results": results,
            "basis": writer.basis(result.query, rows, provenance),
            "assumptions": assumed,
            "recognised": recognised,
        }

    def _interpretation(self, result: Understanding, lang: str, label: Callable[[str], str]) -> str:
        query = self.library.get(result.query)
        shown = []
        for name, values in result.parameters.items():
            if name == "lang":
                continue
            param = query.parameter(name)
            if param is not None and param.lookup is not None:
                values = [label(_iri_of(param.type, value, self.base_iri)) for value in values]
            else:
                values = [label(value) if value.startswith("http") else value for value in values]
            shown.append(f"{name} = {', '.join(values)}" if lang == "en" else f"{name}＝{'、'.join(values)}")
        title = query.title.get(lang) or query.title.get("en", query.name)
        if lang == "zh":
            return (
                f"问题被理解为命名查询“{title}”（{result.query}）"
                + (f"，参数：{'；'.join(shown)}" if shown else "")
                + "。"
            )
        return (
            f"Understood as the named query “{title}” ({result.query})"
            + (f" with {'; '.join(shown)}" if shown else "")
            + "."
        )

    def _decline(
        self, base: dict[str, Any], lang: str, refusal: Refusal, recognised: dict[str, Any], lexicon: Lexicon
    ) -> dict[str, Any]:
        zh, en = REFUSALS[refusal.reason]
        message = zh if lang == "zh" else en
        return {
            **base,
            "understood": False,
            "reason": refusal.reason,
            "message": message,
            "recognised": recognised,
            **({"detail": refusal.detail} if refusal.detail else {}),
            "suggestions": [] if refusal.reason == "out-of-scope" else suggestions(recognised, lang, lexicon),
        }


def _iri_of(kind: str, value: str, base_iri: str) -> str:
    if value.startswith("http"):
        return value
    if kind == "section":
        return f"section:{value}"
    folder = {"project-kind": None}.get(kind, kind)
    return f"{base_iri}id/{folder}/{value}" if folder else value


def suggestions(recognised: Mapping[str, Any], lang: str, lexicon: Lexicon) -> list[str]:
    """Up to three questions the service can answer, built around what the question named."""
    out: list[str] = []
    for entity in recognised.get("entities", []):
        name = entity["label"]
        if entity["kind"] == "domain":
            out.append(f"哪个科室负责{name}？" if lang == "zh" else f"Which section handles {name}?")
        elif entity["kind"] == "mechanism":
            out.append(f"{name}的目的是什么？" if lang == "zh" else f"What is the purpose of the {name}?")
        elif entity["kind"] == "outcome":
            out.append(f"{name}由哪个科室推动？" if lang == "zh" else f"Which section is behind {name}?")
    for number in recognised.get("sections", []):
        if 1 <= number <= 9:
            out.append(
                f"秘书{'一二三四五六七八九'[number - 1]}科负责什么？"
                if lang == "zh"
                else f"What does section {number} do?"
            )
    out.extend(SUGGESTIONS[lang])
    return list(dict.fromkeys(out))[:3]


def standalone(prepared: PreparedQuery) -> str:
    """The prepared text with its bindings written as a VALUES block opening the outermost WHERE group: the same
    rows from any SPARQL editor or endpoint (the values are the library's RDF terms, never the question's words)."""
    if not prepared.bindings:
        return prepared.text
    names_ = " ".join(f"?{name}" for name, _ in prepared.bindings)
    terms = " ".join(term for _, term in prepared.bindings)
    block = f"\n  VALUES ({names_}) {{ ({terms}) }}"
    lines = prepared.text.split("\n")
    for index, line in enumerate(lines):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        match = re.search(r"\bWHERE\s*\{", code, re.IGNORECASE)
        if match:
            lines[index] = line[: match.end()] + block + line[match.end() :]
            return "\n".join(lines)
    raise ValueError("a named query without a WHERE group")  # pragma: no cover - every library query has one
