"""The answer in sentences, in the question's language, from the rows of the named query that ran; and each
row's basis: the source quotes of asserted facts, or "inferred" with its /api/explain link."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from service import names

Row = Mapping[str, Mapping[str, str]]
GK = names.GK

FACETS = {
    "01-frequency": ("召开频次", "meets"),
    "02-participant": ("参与科室", "participants"),
    "03-performed-by": ("承担科室", "carried out by"),
    "04-carries": ("流转的信息", "carries"),
    "05-returns": ("反馈的信息", "returns"),
    "06-formed-for": ("成立缘由", "formed for"),
    "07-working-practice": ("工作方式", "works by"),
    "08-staffed-by": ("人员", "staffed by"),
    "09-runs-on": ("依托", "runs on"),
    "10-tracks-stage": ("追踪环节", "tracks"),
    "11-tracks-in-real-time": ("实时追踪", "tracks in real time"),
    "12-avoids": ("避免", "avoids"),
    "13-purpose": ("目的", "purpose"),
}
ASPECTS = {
    "1-duty-direction": ("{s}的职责方向：{x}。", "{s}'s duty direction: {x}."),
    "2-work-item": ("{s}的具体工作：{x}。", "{s}'s work items: {x}."),
    "3-domain": ("{s}对接的领域：{x}。", "{s} handles these domains: {x}."),
    "4-mechanism": ("{s}参与的协作机制：{x}。", "{s} takes part in {x}."),
    "5-collaborator": ("{s}的协作科室：{x}。", "{s} works with {x}."),
    "6-matter": ("{s}涉及的事项：{x}。", "{s} is involved in {x}."),
    "7-contributes-to": ("{s}服务的目标：{x}。", "{s} contributes to {x}."),
}
STEPS = {
    "1-relay": ("传达", "relayed"),
    "2-shared-and-tracked": ("共享与追踪", "shared and tracked"),
    "3-supervised": ("督办", "supervised"),
    "4-feedback": ("反馈", "results reported back"),
}


def v(row: Row, key: str) -> str:
    """The lexical value of a variable in a row ('' when unbound)."""
    term = row.get(key)
    return term["value"] if term else ""


def _join(items: Sequence[str], lang: str) -> str:
    items = list(dict.fromkeys(i for i in items if i))
    if lang == "zh":
        return "、".join(items)
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _num(row: Row) -> int:
    text = v(row, "notation")
    return int(text) if text.isdigit() else 99


def _sections(rows: Sequence[Row], lang: str, label: str = "sectionLabel") -> str:
    ordered = sorted(rows, key=_num)
    return _join([v(r, label) for r in ordered], lang)


def _say(lang: str, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


def compose(
    query: str, rows: Sequence[Row], lang: str, focus: Mapping[str, str], label: Callable[[str], str]
) -> list[str]:
    """The answer's sentences for the rows of `query` (labels in `lang`); `label(iri)` names any resource."""
    if not rows:
        return [_say(lang, "图谱中没有符合这个问题的记录。", "The graph holds nothing that answers this.")]
    writer = _WRITERS.get(query)
    return writer(rows, lang, focus, label) if writer else []


def _sections_for_domain(rows, lang, focus, label) -> list[str]:
    domain = v(rows[0], "domainLabel")
    sentences = []
    by_section: dict[str, list[Row]] = {}
    for row in sorted(rows, key=_num):
        by_section.setdefault(v(row, "notation"), []).append(row)
    for group in by_section.values():
        row = next((r for r in group if v(r, "match") == "same"), group[0])
        how = v(row, "match")
        section, handled = v(row, "sectionLabel"), v(row, "handledLabel")
        if how == "same":
            sentences.append(
                _say(lang, f"{domain}由{section}负责（直接对接）。", f"{domain} is handled by {section} (directly).")
            )
        elif how == "broader":
            sentences.append(
                _say(
                    lang,
                    f"{domain}由{section}负责（经由上位领域“{handled}”）。",
                    f"{domain} is handled by {section} (through the broader domain {handled}).",
                )
            )
        else:
            sentences.append(
                _say(lang, f"{section}对接其下位领域“{handled}”。", f"{section} handles its narrower domain {handled}.")
            )
    wanted = [n for n in focus.get("sections", "").split(",") if n]
    for number in wanted:
        if number not in by_section:
            name = label(f"section:{number}")
            sentences.append(_say(lang, f"{name}不对接{domain}。", f"{name} does not handle {domain}."))
    return sentences


def _co_handling(rows, lang, focus, label) -> list[str]:
    domains = _join([v(r, "domainLabel") for r in rows if v(r, "origin") == "given"], lang)
    sections = _sections(rows, lang)
    first = _say(
        lang,
        f"推理得出：涉及{domains}的项目，其所涉领域由{sections}对接。",
        f"By inference, the domains of a project touching {domains} are handled by {sections}.",
    )
    reasons = []
    for row in sorted(rows, key=_num):
        implied = v(row, "origin") != "given"
        reasons.append(
            _say(
                lang,
                f"{v(row, 'sectionLabel')}：{v(row, 'domainLabel')}"
                + ("（由项目类别推出）" if implied else "")
                + (f"，经由其对接的“{v(row, 'handledLabel')}”" if v(row, "handled") != v(row, "domain") else "")
                + _assumed(row, lang, label),
                f"{v(row, 'sectionLabel')}: {v(row, 'domainLabel')}"
                + (" (implied by the kind of project)" if implied else "")
                + (
                    f", through {v(row, 'handledLabel')} which it handles"
                    if v(row, "handled") != v(row, "domain")
                    else ""
                )
                + _assumed(row, lang, label),
            )
        )
    return [first, _say(lang, "；".join(reasons) + "。", "; ".join(reasons) + ".")]


def _assumed(row: Row, lang: str, label: Callable[[str], str]) -> str:
    """A note naming the modelling assumption a row rests on, if it rests on one."""
    if not v(row, "assumption"):
        return ""
    name = label(v(row, "assumption"))
    return _say(lang, f"（依赖建模假设：{name}）", f" (rests on a modelling assumption: {name})")


def _project_co_handling(rows, lang, focus, label) -> list[str]:
    project = label(v(rows[0], "project"))
    sentences = [
        _say(
            lang,
            f"推理得出：{project}所涉领域由{_sections(rows, lang)}对接。",
            f"By inference, the domains {project} touches are handled by {_sections(rows, lang)}.",
        )
    ]
    for row in sorted(rows, key=_num):
        if v(row, "assumption"):
            name, because = v(row, "sectionLabel"), label(v(row, "assumption"))
            sentences.append(
                _say(lang, f"{name}依赖建模假设：{because}。", f"{name} rests on a modelling assumption: {because}.")
            )
    return sentences


def _explain(rows, lang, focus, label) -> list[str]:
    wanted = focus.get("section")
    sentences = []
    seen = set()
    for row in sorted(rows, key=_num):
        if wanted and v(row, "notation") != wanted:
            continue
        key = (v(row, "notation"), v(row, "domain"))
        if key in seen:
            continue
        seen.add(key)
        sentences.append(
            _say(
                lang,
                f"{v(row, 'sectionLabel')}参与，因为项目涉及“{v(row, 'domainLabel')}”，"
                f"而它对接“{v(row, 'handledLabel')}”。",
                f"{v(row, 'sectionLabel')} takes part because the project touches {v(row, 'domainLabel')} "
                f"and it handles {v(row, 'handledLabel')}.",
            )
        )
    return sentences or _say(lang, ["该科室不参与此项目。"], ["That section does not take part in this project."])


def _stated(rows, lang, focus, label) -> list[str]:
    """The three layers: named in the source, following from the table, resting on an assumption."""

    def once(chosen: list[Row]) -> list[Row]:
        return list({v(r, "notation"): r for r in sorted(chosen, key=_num)}.values())

    named = once([r for r in rows if v(r, "stated") == "true"])
    table = once([r for r in rows if v(r, "layer") == "follows-from-table"])
    assumed = [r for r in rows if v(r, "layer") == "depends-on-assumption"]
    sentences = [
        _say(lang, f"原文点名的科室：{_sections(named, lang)}。", f"The source names {_sections(named, lang)}.")
    ]
    if table:
        sentences.append(
            _say(
                lang,
                f"由分工表推出：{_sections(table, lang)}。",
                f"The division-of-labour table gives {_sections(table, lang)}.",
            )
        )
    for row in sorted(assumed, key=_num):
        name, domain, because = v(row, "sectionLabel"), v(row, "domainLabel"), label(v(row, "assumption"))
        sentences.append(
            _say(
                lang,
                f"{name}（经由“{domain}”）依赖一项建模假设：{because}。",
                f"{name} (through {domain}) rests on a modelling assumption: {because}.",
            )
        )
    return sentences


def _profile(rows, lang, focus, label) -> list[str]:
    section = v(rows[0], "sectionLabel")
    grouped: dict[str, list[str]] = {}
    for row in rows:
        grouped.setdefault(v(row, "aspect"), []).append(v(row, "itemLabel"))
    sentences = []
    for aspect, (zh, en) in ASPECTS.items():
        if aspect in grouped:
            sentences.append(_say(lang, zh, en).format(s=section, x=_join(grouped[aspect], lang)))
    return sentences


def _collaborators(rows, lang, focus, label) -> list[str]:
    section = label(v(rows[0], "section"))
    by: dict[str, list[Row]] = {}
    for row in sorted(rows, key=_num):
        by.setdefault(v(row, "mechanismLabel") or v(row, "occasionLabel"), []).append(row)
    return [
        _say(
            lang,
            f"经由{how}与{section}协作的科室：{_sections(group, lang, 'collaboratorLabel')}。",
            f"Through {how}, {section} works with {_sections(group, lang, 'collaboratorLabel')}.",
        )
        for how, group in by.items()
    ]


def _value(row: Row) -> str:
    return v(row, "valueLabel") or v(row, "value")


def _mechanisms(rows, lang, focus, label) -> list[str]:
    wanted = focus.get("facet")
    by: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        by.setdefault(v(row, "mechanismLabel"), {}).setdefault(v(row, "facet"), []).append(_value(row))
    sentences = []
    for mechanism, facets in by.items():
        if wanted:
            values = facets.get(wanted)
            if values:
                zh, en = FACETS.get(wanted, (wanted, wanted))
                sentences.append(
                    _say(
                        lang,
                        f"{mechanism}的{zh}：{_join(values, lang)}。",
                        f"{mechanism} — {en}: {_join(values, lang)}.",
                    )
                )
            continue
        parts = [
            _say(
                lang,
                f"{FACETS.get(f, (f, f))[0]}：{_join(vals, lang)}",
                f"{FACETS.get(f, (f, f))[1]}: {_join(vals, lang)}",
            )
            for f, vals in sorted(facets.items())
        ]
        sentences.append(
            _say(lang, f"{mechanism}——" + "；".join(parts) + "。", f"{mechanism} — " + "; ".join(parts) + ".")
        )
    section = focus.get("section")
    if section and wanted == "02-participant":
        name = label(f"section:{section}")
        takes_part = any(name == _value(r) for r in rows if v(r, "facet") == "02-participant")
        sentences.insert(
            0,
            _say(
                lang,
                f"{name}{'参加' if takes_part else '不参加'}。",
                f"{name} {'takes part' if takes_part else 'does not take part'}.",
            ),
        )
    return sentences or _say(lang, ["图谱中没有这方面的记录。"], ["The graph records nothing of that for it."])


def _instruction_flow(rows, lang, focus, label) -> list[str]:
    by: dict[str, list[Row]] = {}
    for row in rows:
        by.setdefault(v(row, "step"), []).append(row)
    sentences = []
    for step, group in sorted(by.items()):
        zh, en = STEPS.get(step, (step, step))
        via = v(group[0], "viaLabel")
        sentences.append(
            _say(
                lang,
                f"{zh}：经由“{via}”，{_sections(group, lang)}。",
                f"{en.capitalize()}: through {via}, by {_sections(group, lang)}.",
            )
        )
    return sentences


def _outcomes(rows, lang, focus, label) -> list[str]:
    wanted = focus.get("outcome")
    sentences = []
    seen = set()
    for row in sorted(rows, key=_num):
        if v(row, "lang") and v(row, "lang") != lang:
            continue
        if (wanted and v(row, "outcome") != wanted) or v(row, "outcome") in seen:
            continue
        seen.add(v(row, "outcome"))
        partner = v(row, "partnerLabel")
        sentences.append(
            _say(
                lang,
                f"{v(row, 'outcomeLabel')}：由{v(row, 'sectionLabel')}推动"
                + (f"，与{partner}协同" if partner else "")
                + "。",
                f"{v(row, 'outcomeLabel')}: delivered through {v(row, 'sectionLabel')}"
                + (f", with the {partner}" if partner else "")
                + ".",
            )
        )
    return sentences


def _provenance(rows, lang, focus, label) -> list[str]:
    quotes = list(dict.fromkeys(v(r, "quote") for r in rows if v(r, "quote")))
    subject = label(v(rows[0], "resource"))
    first = _say(
        lang,
        f"关于“{subject}”的{len(rows)}条断言出自原文的{len(quotes)}处：",
        f"The {len(rows)} asserted facts about {subject} come from {len(quotes)} passages of the source:",
    )
    return [first, *(f"「{q}」" for q in quotes[:5])]


def _tree(rows, lang, focus, label) -> list[str]:
    top = [v(r, "label") for r in rows if v(r, "level") == "0"]
    return [
        _say(
            lang,
            f"共有{len(rows)}个工作领域，其中{len(top)}个顶层领域：{_join(top, lang)}。",
            f"There are {len(rows)} work domains, {len(top)} at the top: {_join(top, lang)}.",
        )
    ]


def _counts(rows, lang, focus, label) -> list[str]:
    wanted = focus.get("section")
    chosen = [r for r in rows if not wanted or v(r, "notation") == wanted]
    sentences = [
        _say(
            lang,
            f"{v(r, 'label')}：对接{v(r, 'domains')}个领域（含下位共{v(r, 'domainsCovered')}个），"
            f"{v(r, 'workItems')}项具体工作。",
            f"{v(r, 'label')}: {v(r, 'domains')} domains ({v(r, 'domainsCovered')} with narrower ones), "
            f"{v(r, 'workItems')} work items.",
        )
        for r in sorted(chosen, key=_num)
    ]
    if not wanted:
        sentences.insert(0, _say(lang, f"共有{len(rows)}个秘书科室。", f"There are {len(rows)} secretarial sections."))
    return sentences


def _search(rows, lang, focus, label) -> list[str]:
    found = list(dict.fromkeys(v(r, "resource") for r in rows))
    names_ = _join([f"{label(iri)} ({iri.rstrip('/').rsplit('/', 1)[-1]})" for iri in found[:8]], lang)
    return [_say(lang, f"找到{len(found)}个资源：{names_}。", f"Found {len(found)} resources: {names_}.")]


_WRITERS: dict[str, Callable[..., list[str]]] = {
    "sections-for-domain": _sections_for_domain,
    "co-handling-sections": _co_handling,
    "project-co-handling": _project_co_handling,
    "explain-co-handling": _explain,
    "stated-vs-inferred": _stated,
    "section-profile": _profile,
    "section-collaborators": _collaborators,
    "collaboration-mechanisms": _mechanisms,
    "instruction-flow": _instruction_flow,
    "public-outcomes": _outcomes,
    "fact-provenance": _provenance,
    "domain-tree": _tree,
    "section-counts": _counts,
    "search": _search,
}

# Per query: the two columns whose pair is the fact a row rests on, and the property when it is known (for the
# /api/explain link of an inferred fact). A row whose pair the source states gets the quotes of that statement.
FACT_COLUMNS: dict[str, tuple[str, str, str | None]] = {
    "sections-for-domain": ("section", "handled", GK + "handlesDomain"),
    "co-handling-sections": ("section", "handled", GK + "handlesDomain"),
    "project-co-handling": ("project", "section", GK + "coHandledBy"),
    "explain-co-handling": ("project", "section", GK + "coHandledBy"),
    "stated-vs-inferred": ("project", "section", GK + "coHandledBy"),
    "section-profile": ("section", "item", None),
    "section-collaborators": ("mechanism", "collaborator", None),
    "collaboration-mechanisms": ("mechanism", "value", None),
    "instruction-flow": ("via", "section", None),
    "public-outcomes": ("outcome", "section", GK + "deliveredBy"),
    "domain-tree": ("domain", "parent", "http://www.w3.org/2004/02/skos/core#broader"),
}


def explain_link(s: str, p: str, o: str) -> str:
    """The /api/explain URL (relative) of a triple of IRIs."""
    return "/api/explain?" + urlencode({"s": s, "p": p, "o": o})


def basis(query: str, rows: Sequence[Row], provenance: Callable[[str], Sequence[Row]]) -> list[dict[str, Any]]:
    """Each row's basis: quotes where the source states its fact ("asserted"), "inferred" + /api/explain link where
    reasoning adds it from the source's facts, "assumption" + the assumption's IRI where a modelling assumption is
    needed (an assumption's graph holds the fact, or the row's own `basis` column says so), "computed" where the
    named query derives it (counts, search)."""
    spec = FACT_COLUMNS.get(query)
    out: list[dict[str, Any]] = []
    for row in rows:
        entry: dict[str, Any]
        if query == "fact-provenance":
            entry = {"kind": "asserted", "quotes": [v(row, "quote")], "claims": [v(row, "claim")]}
        elif query == "explain-co-handling":
            quotes = [q for q in (v(row, "touchQuote"), v(row, "handleQuote")) if q]
            entry = {"kind": "inferred", "explain": v(row, "explanation") or None, "quotes": quotes}
        elif spec is None or not v(row, spec[0]) or not v(row, spec[1]):
            entry = {"kind": "computed"}
        else:
            a, b = v(row, spec[0]), v(row, spec[1])
            facts = [
                r
                for r in provenance(a)
                if {v(r, "subject"), v(r, "object")} == {a, b} and (spec[2] is None or v(r, "predicate") == spec[2])
            ]
            stated = [r for r in facts if v(r, "basis") != "assumption"]
            assumed = [r for r in facts if v(r, "basis") == "assumption"]
            if v(row, "quote"):
                entry = {"kind": "asserted", "quotes": [v(row, "quote")], "claims": []}
            elif stated:
                entry = {
                    "kind": "asserted",
                    "quotes": list(dict.fromkeys(v(r, "quote") for r in stated)),
                    "claims": list(dict.fromkeys(v(r, "claim") for r in stated)),
                }
            elif assumed:
                entry = {"kind": "assumption", "assumption": v(assumed[0], "assumption")}
            elif spec[2] is not None:
                entry = {"kind": "inferred", "explain": explain_link(a, spec[2], b)}
            else:
                entry = {"kind": "computed"}
        if v(row, "basis") == "assumption":  # the query itself found that the row needs an assumption
            whole = spec is not None and spec[2] is not None and v(row, spec[0]) and v(row, spec[1])
            link = entry.get("explain") or (explain_link(v(row, spec[0]), spec[2], v(row, spec[1])) if whole else None)
            entry = {"kind": "assumption", "explain": link or None, "quotes": entry.get("quotes", [])}
        if v(row, "assumption"):
            entry["assumption"] = v(row, "assumption")
        if v(row, "basis"):
            entry["row_basis"] = v(row, "basis")
        out.append(entry)
    return out
