"""A generator of larger organisations in our vocabulary, written as TriG while it goes (no rdflib objects).

Each generated organisation mirrors the real one: a management committee with an office, nine secretarial sections
with duty directions, work items and the domains they handle, a domain scheme of its own (9 top concepts, each
`skos:broader` the real top concept of the same duty direction, with narrower and narrowest domains below), a joint
meeting, projects (some industrial or major industrial, so the hasValue axiom applies) touching the organisation's
domains with stated participants, and one claim graph per fact group, described in `graph:provenance` with a
quote taken verbatim from the source document. Each organisation has its own scheme, so co-handling grows with the
number of organisations, not with its square.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

GK = "https://w3id.org/guian-kg/ontology#"
ID = "https://w3id.org/guian-kg/id/"
GRAPH = "https://w3id.org/guian-kg/graph/"
REAL_TOPS = (
    "general-coordination",
    "supervision",
    "administration",
    "policy-research",
    "development-and-industry",
    "urban-rural-construction",
    "livelihoods",
    "ecology-environment",
    "external-liaison",
)
ZH_DIGITS = "一二三四五六七八九"
PREFIXES = """@prefix gk: <https://w3id.org/guian-kg/ontology#> .
@prefix id: <https://w3id.org/guian-kg/id/> .
@prefix g: <https://w3id.org/guian-kg/graph/> .
@prefix org: <http://www.w3.org/ns/org#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix prov: <http://www.w3.org/ns/prov#> .
@prefix cv: <http://data.europa.eu/m8g/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix freq: <http://purl.org/cld/freq/> .

"""


def _lit(text: str, lang: str | None = None) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"' + (f"@{lang}" if lang else "")


class _Block:
    """One graph block being written; counts its triples."""

    def __init__(self, graph: str) -> None:
        self.graph = graph
        self.lines: list[str] = []
        self.triples = 0

    def add(self, subject: str, *pairs: tuple[str, list[str]]) -> None:
        parts = []
        for predicate, objects in pairs:
            if objects:
                parts.append(f"{predicate} {' , '.join(objects)}")
                self.triples += len(objects)
        self.lines.append(f"  {subject} " + " ;\n    ".join(parts) + " .")

    def text(self) -> str:
        return f"{self.graph} {{\n" + "\n".join(self.lines) + "\n}\n"


def _organisation(k: int, rng: random.Random, quotes: list[str], projects: int) -> Iterator[_Block]:
    """The blocks of organisation k: claim graphs and then its provenance block."""
    claims: list[tuple[str, str]] = []
    sid = f"s{k}"

    def claim(name: str, part: str) -> _Block:
        iri = f"<{GRAPH}claim/{sid}-{name}>"
        claims.append((iri, part))
        return _Block(iri)

    committee = f"<{ID}organization/{sid}-committee>"
    office = f"<{ID}organization/{sid}-office>"
    block = claim("structure", "机构设置")
    block.add(
        committee,
        ("a", ["cv:PublicOrganisation", "org:FormalOrganization", "gk:ManagementCommittee"]),
        ("rdfs:label", [_lit(f"第{k}新区管委会", "zh"), _lit(f"Management committee {k}", "en")]),
    )
    block.add(
        office,
        ("a", ["gk:Office"]),
        ("org:subOrganizationOf", [committee]),
        ("rdfs:label", [_lit(f"第{k}管委会办公室", "zh"), _lit(f"Office of committee {k}", "en")]),
    )
    yield block

    scheme = f"<{ID}domain-scheme/{sid}>"
    domains: list[list[str]] = []  # per top: [top, mids..., leaves...]
    for t, real_top in enumerate(REAL_TOPS, start=1):
        block = claim(f"domains-{t}", "二、各科室具体对接领域")
        top = f"<{ID}domain/{sid}-{t}>"
        members = [top]
        block.add(
            top,
            ("a", ["gk:WorkDomain", "skos:Concept"]),
            ("skos:inScheme", [scheme]),
            ("skos:topConceptOf", [scheme]),
            ("skos:broader", [f"<{ID}domain/{real_top}>"]),
            ("skos:prefLabel", [_lit(f"{k}号领域{t}", "zh"), _lit(f"Domain {k}.{t}", "en")]),
            ("rdfs:label", [_lit(f"{k}号领域{t}", "zh"), _lit(f"Domain {k}.{t}", "en")]),
        )
        for m in range(1, 4):
            mid = f"<{ID}domain/{sid}-{t}-{m}>"
            members.append(mid)
            block.add(
                mid,
                ("a", ["gk:WorkDomain", "skos:Concept"]),
                ("skos:inScheme", [scheme]),
                ("skos:broader", [top]),
                ("rdfs:label", [_lit(f"{k}号领域{t}.{m}", "zh"), _lit(f"Domain {k}.{t}.{m}", "en")]),
            )
            for leaf_no in range(1, 3):
                leaf = f"<{ID}domain/{sid}-{t}-{m}-{leaf_no}>"
                members.append(leaf)
                block.add(
                    leaf,
                    ("a", ["gk:WorkDomain", "skos:Concept"]),
                    ("skos:inScheme", [scheme]),
                    ("skos:broader", [mid]),
                    (
                        "rdfs:label",
                        [_lit(f"{k}号领域{t}.{m}.{leaf_no}", "zh"), _lit(f"Domain {k}.{t}.{m}.{leaf_no}", "en")],
                    ),
                )
        domains.append(members)
        yield block
    block = claim("scheme", "二、各科室具体对接领域")
    block.add(
        scheme,
        ("a", ["skos:ConceptScheme"]),
        ("rdfs:label", [_lit(f"第{k}办公室对接领域", "zh"), _lit(f"Work domains of office {k}", "en")]),
        ("skos:hasTopConcept", [d[0] for d in domains]),
    )
    yield block

    sections = []
    for n in range(1, 10):
        section = f"<{ID}section/{sid}-{n}>"
        sections.append(section)
        duty = f"<{ID}duty/{sid}-{n}>"
        block = claim(f"section-{n}", "二、各科室具体对接领域")
        handled = [domains[n - 1][0], *rng.sample(domains[n - 1][1:], 2), rng.choice(rng.choice(domains)[1:])]
        items = [f"<{ID}work-item/{sid}-{n}-{i}>" for i in range(1, 4)]
        zh, en = f"第{k}办公室秘书{ZH_DIGITS[n - 1]}科", f"Office {k} Secretarial Section {n}"
        block.add(
            section,
            ("a", ["gk:SecretarialSection"]),
            ("skos:notation", [_lit(str(n))]),
            ("skos:prefLabel", [_lit(zh, "zh"), _lit(en, "en")]),
            ("rdfs:label", [_lit(zh, "zh"), _lit(en, "en")]),
            ("org:subOrganizationOf", [office]),
            ("gk:hasDutyDirection", [duty]),
            ("gk:hasWorkItem", items),
            ("gk:handlesDomain", list(dict.fromkeys(handled))),
        )
        block.add(
            duty,
            ("a", ["gk:DutyDirection"]),
            ("rdfs:label", [_lit(f"{zh}职责", "zh"), _lit(f"Duties of {en}", "en")]),
            ("gk:dutyDomain", [domains[n - 1][0]]),
        )
        for i, item in enumerate(items, start=1):
            block.add(
                item,
                ("a", ["gk:WorkItem"]),
                ("skos:notation", [_lit(f"{n}-{i}")]),
                ("rdfs:label", [_lit(f"{zh}工作{i}", "zh"), _lit(f"Work item {i} of {en}", "en")]),
                ("gk:concernsDomain", [rng.choice(domains[n - 1])]),
            )
        yield block

    block = claim("joint-meeting", "三、协作机制")
    meeting = f"<{ID}mechanism/{sid}-joint-meeting>"
    block.add(
        meeting,
        ("a", ["gk:JointMeeting"]),
        ("rdfs:label", [_lit(f"第{k}办公室联席会议", "zh"), _lit(f"Joint meeting of office {k}", "en")]),
        ("gk:frequency", ["freq:weekly"]),
        ("gk:hasParticipant", sections),
    )
    yield block

    for j in range(1, projects + 1):
        roll = rng.random()
        kind = "gk:MajorIndustrialProject" if roll < 0.05 else "gk:IndustrialProject" if roll < 0.3 else "gk:Project"
        project = f"<{ID}project/{sid}-{j}>"
        block = claim(f"project-{j}", "三、协作机制")
        touched = {rng.choice(rng.choice(domains)) for _ in range(rng.randint(2, 3))}
        block.add(
            project,
            ("a", [kind]),
            ("rdfs:label", [_lit(f"第{k}办公室项目{j}", "zh"), _lit(f"Project {j} of office {k}", "en")]),
            ("gk:touchesDomain", sorted(touched)),
            ("gk:statedParticipant", rng.sample(sections, rng.randint(1, 3))),
        )
        yield block

    provenance = _Block(f"<{GRAPH}provenance>")
    for iri, part in claims:
        provenance.add(
            iri,
            ("a", ["gk:Claim", "prov:Entity"]),
            ("prov:wasDerivedFrom", [f"<{ID}document/source>"]),
            ("gk:sourceQuote", [_lit(rng.choice(quotes), "zh")]),
            ("gk:sourcePart", [_lit(part, "zh")]),
        )
    yield provenance


def source_quotes(source: Path, count: int = 400, seed: int = 3) -> list[str]:
    """Verbatim substrings of the source document, 8 to 40 characters long."""
    text = source.read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if len(line.strip()) >= 8]
    rng = random.Random(seed)
    quotes = []
    for _ in range(count):
        line = rng.choice(lines)
        start = rng.randrange(0, max(1, len(line) - 8))
        quotes.append(line[start : start + rng.randint(8, 40)])
    return quotes


def generate(target_triples: int, output: Path, source: Path, seed: int = 1, projects: int = 20) -> dict:
    """Write organisations to `output` (TriG) until `target_triples` triples are written; return counts."""
    rng = random.Random(seed)
    quotes = source_quotes(source)
    written = organisations = 0
    with open(output, "w", encoding="utf-8") as out:
        out.write(PREFIXES)
        while written < target_triples:
            organisations += 1
            for block in _organisation(organisations, rng, quotes, projects):
                out.write(block.text())
                written += block.triples
    return {"triples": written, "organisations": organisations, "bytes": output.stat().st_size}
