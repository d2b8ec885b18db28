"""From a normalised question and what it names to one named query and its parameters — or to a refusal.

Each rule is a few cue words per language plus the kinds of resource the question must name; the first rule that
fits wins, in an order that puts the specific questions (where does this come from, what did the source say)
before the general ones (what does section N do). No rule builds SPARQL: a rule only picks a named query and
fills its declared parameters with resources of the graph.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from service.ask.entities import Entity, without_sections
from service.library.vocabulary import short_name

MAX_SECTION = 9


@dataclass
class Understanding:
    """What a question was understood to ask: a named query, its parameters and what to dwell on."""

    query: str
    parameters: dict[str, list[str]]
    focus: dict[str, str] = field(default_factory=dict)  # e.g. {"facet": "01-frequency"}, {"section": "…/5"}


@dataclass
class Refusal:
    """Why a question is not answered: out of scope, ambiguous, or not understood."""

    reason: str  # out-of-scope | no-such-section | ambiguous | not-understood | needs-partner-endpoint
    detail: dict[str, object] = field(default_factory=dict)


def _cue(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(patterns))


# Cue words, normalised (simplified Chinese, lower case, punctuation as spaces).
OUT_OF_SCOPE = _cue(
    r"天气|气温|下雨|温度|gdp|生产总值|人口|股票|股价|房价|工资|薪|电话|地址|邮箱|年龄|生日|姓名|名字|叫什么|"
    r"主任是|科长|局长|书记|市长|谁是|是谁",
    r"\b(weather|temperature|rain|gdp|gross domestic|population|stock|salary|salaries|phone|address|email|"
    r"age|birthday|director|mayor|chief|minister|secretary general|staff names?|who is|whose name|names? of)\b",
)
PROVENANCE = _cue(
    r"出处|来源|出自|依据|原文怎么|原文哪|哪里说|根据什么|从哪",
    r"\b(where does .* come from|where do .* come from|comes? from|source for|source of|provenance|evidence|"
    r"quote|quoted|cited|citation|where is .* stated|where .* (said|says|stated)|based on what)\b",
)
STATED = _cue(
    r"原文.*(说|点名|提到|写|列|讲).*(科室|哪些|谁)|原文所述|联合讨论|谁讨论|讨论了|讨论|点名",
    r"\b(source (say|says|said|name|names|named|mention|mentions|list)|discuss|discussed|discussion|"
    r"named by the (source|text)|stated (vs|versus|and) inferred|inferred (vs|versus|and) stated)\b",
)
WHY = _cue(r"为什么|为何|凭什么|怎么会|理由|原因", r"\b(why|reason|reasons|explain|how come)\b")
INSTRUCTION = _cue(r"批示", r"\binstructions?\b")
FLOW = _cue(
    r"传达|流转|反馈|转达|怎么|如何|流程|路径|谁|哪个科|经过|处理",
    r"\b(relay|relayed|relays|pass|passed|flow|flows|travel|travels|feedback|how|path|route|who|handled|"
    r"reported back|go|goes)\b",
)
FORMED = _cue(
    r"成立|组建|设立|什么时候|何时|什么情况|为了什么|用于",
    r"\b(formed|form|set up|created|create|established|when|for what|what for|what are .* for)\b",
)
FACETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "01-frequency",
        _cue(
            r"多久|频率|频次|多长时间|几次|周期|每周|每月|多常|何时开|什么时候开",
            r"\b(how often|frequency|frequently|when does|when do|how regularly|meet|meets|held)\b",
        ),
    ),
    (
        "02-participant",
        _cue(
            r"参加|参与|出席|成员|哪些科室",
            r"\b(who takes part|take part|takes part|attend|attends|participants?|participate|participates|"
            r"members?|which sections|who)\b",
        ),
    ),
    (
        "04-carries",
        _cue(
            r"流转什么|传递什么|共享什么|什么信息|哪些信息",
            r"\b(what flows|what information|carry|carries|share|shared|what passes)\b",
        ),
    ),
    (
        "13-purpose",
        _cue(
            r"目的|作用|为什么|干什么|用来|意义|做什么",
            r"\b(purpose|why|what for|aim|goal|what is it for|what does .* do)\b",
        ),
    ),
)
MECHANISMS = _cue(
    r"协作机制|机制|怎么协作|如何协作|协作方式",
    r"\b(mechanisms?|ways? of (working|collaborat\w*)|how do .* collaborate)\b",
)
OUTCOMES = _cue(
    r"成果|惠民|惠及|老百姓|市民|群众|公众|落地",
    r"\b(outcomes?|results? for (the )?(public|citizens)|public|citizens|residents|benefit|benefits|behind)\b",
)
TREE = _cue(
    r"领域分类|领域体系|分类树|有哪些(工作)?领域|哪些工作领域|所有(工作)?领域|全部领域|领域列表|领域清单",
    r"\b(domain tree|taxonomy|all (the )?(work )?domains|list (of )?(the )?(work )?domains|what (work )?domains|"
    r"which (work )?domains (are there|exist)|domains are there|hierarchy of domains|domain hierarchy)\b",
)
COUNTS = _cue(
    r"多少|几个|数量|最多|最少|有哪些科室|所有科室|哪些科室组成|列出.*科室|几科|科室有哪些|全部科室|九个科",
    r"\b(how many|number of|most|fewest|least|count|counts|list (all )?(the )?sections|all (the )?sections|"
    r"what sections|which sections are there|sections are there)\b",
)
COLLABORATE = _cue(
    r"协作|合作|配合|协同|一起|共同|联系|打交道",
    r"\b(collaborat\w*|work with|works with|working with|cooperat\w*|co-operat\w*|partners?|together|"
    r"liaise|coordinate with)\b",
)
PROFILE = _cue(
    r"负责什么|做什么|干什么|职责|职能|管什么|哪些工作|什么工作|工作内容|概况|情况|介绍|分管|主要|负责哪些|管哪些|对接哪些|对接什么",
    r"\b(what does|what do|duties|duty|responsib\w*|about|profile|role|tasks?|overview|describe|what is .* for|"
    r"in charge of what|handle what|deal with)\b",
)
PROJECT = _cue(r"项目|事项|工程", r"\b(project|projects|matter|undertaking|initiative|scheme)\b")
HANDLE = _cue(
    r"负责|对接|管|主管|分管|办理|协同|处理|归|牵头|参与|联合|哪个科|哪些科|谁",
    r"\b(handle|handles|handled|handling|co-handle|co-handles|responsible|in charge|deal|deals|manage|manages|"
    r"covers?|looks after|owns?|which section|which sections|who|involved|take part)\b",
)
SEARCH = _cue(r"查找|搜索|搜一下|找一下|检索|查一下", r"\b(find|search|look up|lookup)\b")
INDUSTRIAL = _cue(r"产业项目", r"\bindustrial projects?\b")
MAJOR = _cue(r"重大产业项目|重大项目", r"\bmajor (industrial )?projects?\b")
PARTNER = _cue(r"合作方|联邦|外部登记", r"\b(partner projects?|federat\w*|project register)\b")


def _sections(numbers: list[int]) -> list[str]:
    return [str(n) for n in dict.fromkeys(numbers)]


def _slug(iri: str) -> str:
    return iri.rstrip("/").rsplit("/", 1)[-1]


def understand(
    text: str, lang: str, entities: list[Entity], numbers: list[int], section_iri: Callable[[int], str | None]
) -> Understanding | Refusal:
    """The named query a normalised question asks, with its parameters, or why it is not answered."""
    by_kind: dict[str, list[Entity]] = {}
    for entity in entities:
        if entity.iri not in {e.iri for e in by_kind.get(entity.kind, [])}:
            by_kind.setdefault(entity.kind, []).append(entity)
    domains = by_kind.get("domain", [])
    mechanisms = by_kind.get("mechanism", [])
    outcomes = by_kind.get("outcome", [])
    projects = by_kind.get("project", [])
    numbers = numbers + [int(_slug(e.iri)) for e in by_kind.get("section", []) if _slug(e.iri).isdigit()]
    bad = [n for n in numbers if not 1 <= n <= MAX_SECTION]
    if bad:
        return Refusal("no-such-section", {"sections": bad})
    sections = _sections(numbers)
    if OUT_OF_SCOPE.search(text) and not (domains or mechanisms or outcomes):
        return Refusal("out-of-scope")
    if PARTNER.search(text):
        return Refusal("needs-partner-endpoint")
    language = {"lang": [lang]}
    project = [_slug(projects[0].iri)] if projects else []

    if STATED.search(text) and (projects or PROJECT.search(text) or "source" in text or "原文" in text):
        return Understanding("stated-vs-inferred", {"project": project, **language} if project else language)
    if PROVENANCE.search(text):
        others = domains or mechanisms or outcomes or projects or by_kind.get("resource", [])
        if sections and section_iri(int(sections[0])) and not (domains or mechanisms or outcomes):
            return Understanding("fact-provenance", {"resource": [section_iri(int(sections[0]))]})
        if others:
            return Understanding("fact-provenance", {"resource": [others[0].iri]})
    if WHY.search(text) and (projects or PROJECT.search(text)) and (sections or HANDLE.search(text)) and not domains:
        focus = {"section": sections[0]} if sections else {}
        return Understanding("explain-co-handling", {"project": project, **language} if project else language, focus)
    if INSTRUCTION.search(text) and FLOW.search(text) and not sections[1:] and not domains[1:]:
        return Understanding("instruction-flow", language)
    task_force = [m for m in mechanisms if _slug(m.iri) == "task-force"]
    if task_force and FORMED.search(text):
        return Understanding(
            "collaboration-mechanisms", {"mechanism": ["task-force"], **language}, {"facet": "06-formed-for"}
        )
    if mechanisms and not domains:
        facet = next((name for name, cue in FACETS if cue.search(text)), "")
        focus = {"facet": facet} if facet else {}
        if sections:
            focus["section"] = sections[0]
        return Understanding("collaboration-mechanisms", {"mechanism": [_slug(mechanisms[0].iri)], **language}, focus)
    if MECHANISMS.search(text) and not (domains or sections or outcomes):
        return Understanding("collaboration-mechanisms", language)
    if outcomes or (OUTCOMES.search(text) and not domains and not (projects and HANDLE.search(text))):
        focus = {"outcome": outcomes[0].iri} if outcomes else {}
        params = {"section": sections[:1], **language} if sections and not outcomes else language
        return Understanding("public-outcomes", params, focus)
    if TREE.search(text) and not sections and not domains:
        return Understanding("domain-tree", language)
    if (
        SEARCH.search(text)
        and not sections
        and (domains or mechanisms or outcomes or projects or by_kind.get("resource"))
    ):
        target = (domains or mechanisms or outcomes or projects or by_kind["resource"])[0]
        return Understanding("search", {"text": [target.text]})
    if COUNTS.search(text) and not domains and (not sections or re.search(r"多少|几个|数量|how many|number of", text)):
        return Understanding("section-counts", language, {"section": sections[0]} if sections else {})
    # "project" said of the question, not inside a domain's own name (重大项目推进 is a domain, not a project)
    outside = "".join(" " if any(d.start <= i < d.end for d in domains) else c for i, c in enumerate(text))
    if len(domains) >= 2 or (
        domains and (INDUSTRIAL.search(text) or (PROJECT.search(outside) and HANDLE.search(text)))
    ):
        params: dict[str, list[str]] = {"domain": [_slug(d.iri) for d in domains]}
        kinds = by_kind.get("project-kind", [])
        if MAJOR.search(text) and INDUSTRIAL.search(text):
            params["kind"] = ["major-industrial-project"]
        elif kinds and short_name(kinds[0].iri) != "project":
            params["kind"] = [short_name(kinds[0].iri)]
        elif INDUSTRIAL.search(text):
            params["kind"] = ["industrial-project"]
        return Understanding("co-handling-sections", {**params, **language}, {"sections": ",".join(sections)})
    if domains:
        return Understanding(
            "sections-for-domain", {"domain": [_slug(domains[0].iri)], **language}, {"sections": ",".join(sections)}
        )
    kinds_named = [k for k in by_kind.get("project-kind", []) if short_name(k.iri) != "project"]
    if (projects or (kinds_named and HANDLE.search(text))) and not sections:
        # a kind of project said alone (重大产业项目) means the graph's example of it: the query's default project
        return Understanding("project-co-handling", {"project": project, **language} if project else language)
    if sections and COLLABORATE.search(text):
        return Understanding("section-collaborators", {"section": sections[:1], **language})
    # a section named with a word about its work, or (almost) alone: 秘书三科, "Section 4", "the 5th section"; anything
    # else said of it (秘书五科食堂菜单) is not guessed at
    rest = without_sections(text)
    alone = len(rest.replace(" ", "")) <= 1 if lang == "zh" else not set(rest.split()) - {"the", "a", "me", "please"}
    if len(sections) == 1 and (PROFILE.search(text) or HANDLE.search(text) or alone):
        return Understanding("section-profile", {"section": sections, **language})
    return Refusal("not-understood")
