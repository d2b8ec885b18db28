"""The pictures: the organisation as a tree and the collaboration network, from the served data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from service import names
from service.pages.labels import (
    LANGUAGES,
    SKOS_BROADER,
    SKOS_NOTATION,
    UI_TEXT,
    Labeller,
    Select,
    about,
    fetch_labels,
    local_href,
    pick_label,
)
from service.pages.svg import Edge, Node, network_svg, tree_svg

# --- pictures ------------------------------------------------------------------------------------------------


def _gk(base_iri: str) -> str:
    return names.rebase(names.GK, base_iri)


def _notation_key(notation: str | None, label: str) -> tuple[int, float, str]:
    if notation and re.fullmatch(r"\d+(\.\d+)?", notation):
        return (0, float(notation), label)
    return (1, 0.0, label)


def _other_language_label(labeller: Labeller, iri: str) -> str:
    """The label of `iri` in the language the page is not in (shown small, beside the main one)."""
    other = next(code for code in LANGUAGES if code != labeller.lang)
    return pick_label([lbl for lbl in labeller.labels.get(iri, []) if lbl[1].startswith(other)], other) or ""


def organisation_picture(select: Select, lang: str, base_iri: str) -> str:
    """SVG of the organisation as a tree: every unit under the one it is a sub-organisation of (asserted)."""
    gk = _gk(base_iri)
    rows = select(
        "SELECT ?x ?parent ?notation ?duty ?section WHERE { ?x <http://www.w3.org/ns/org#subOrganizationOf> ?parent "
        "OPTIONAL { ?x <http://www.w3.org/2004/02/skos/core#notation> ?notation } "
        f"OPTIONAL {{ ?x <{gk}hasDutyDirection> ?duty }} "
        f"BIND(EXISTS {{ ?x a <{gk}SecretarialSection> }} AS ?section) }}",
        False,
    )
    parent: dict[str, str] = {}
    notation: dict[str, str] = {}
    duty: dict[str, str] = {}
    sections: set[str] = set()
    for row in rows:
        x = row["x"]["value"]
        parent[x] = row["parent"]["value"]
        if "notation" in row:
            notation[x] = row["notation"]["value"]
        if "duty" in row:
            duty[x] = row["duty"]["value"]
        if row.get("section", {}).get("value") in ("true", "1"):
            sections.add(x)
    everyone = set(parent) | set(parent.values())
    labeller = Labeller(lang, base_iri, fetch_labels(select, everyone | set(duty.values())))
    roots = everyone - set(parent)

    def node(iri: str) -> Node:
        kind = "section" if iri in sections else "committee" if iri in roots else "unit"
        return Node(
            key=iri,
            label=labeller.name(iri),
            kind=kind,
            href=local_href(iri, base_iri),
            sublabel=_other_language_label(labeller, iri),
            note=labeller.name(duty[iri]) if iri in duty else "",
        )

    ordered = sorted(everyone, key=lambda i: _notation_key(notation.get(i), labeller.name(i)))
    title = UI_TEXT[lang]["organisation"]
    description = ", ".join(labeller.name(i) for i in ordered if i in sections)
    return tree_svg([node(i) for i in ordered], parent, title, description)


@dataclass(frozen=True)
class Project:
    """A project or matter that can be highlighted in the network picture."""

    iri: str
    slug: str
    label: str


def projects(select: Select, lang: str, base_iri: str) -> list[Project]:
    """The projects that touch domains, labelled in `lang`: the one most sections co-handle first, then by label."""
    gk = _gk(base_iri)
    rows = select(
        f"SELECT ?p (COUNT(DISTINCT ?s) AS ?n) WHERE {{ ?p <{gk}touchesDomain> ?d "
        f"OPTIONAL {{ ?p <{gk}coHandledBy> ?s }} FILTER(isIRI(?p)) }} GROUP BY ?p",
        True,
    )
    counts = {row["p"]["value"]: int(row["n"]["value"]) for row in rows}
    labeller = Labeller(lang, base_iri, fetch_labels(select, counts))
    found = [Project(iri, iri.rsplit("/", 1)[-1], labeller.name(iri)) for iri in counts]
    found.sort(key=lambda p: (p.label, p.iri))
    if found:
        first = max(found, key=lambda p: counts[p.iri])
        found = [first, *(p for p in found if p is not first)]
    return found


def network_picture(select: Select, lang: str, base_iri: str, project: Project | None) -> dict[str, Any]:
    """SVG of the collaboration network (sections on a circle, their domains around it, mechanisms inside),
    with a project's co-handling sections and touched domains highlighted; plus the lists shown beside it."""
    gk = _gk(base_iri)
    rows = select(
        f"SELECT ?s ?notation ?d ?m WHERE {{ ?s a <{gk}SecretarialSection> "
        f"OPTIONAL {{ ?s <{SKOS_NOTATION}> ?notation }} {{ ?s <{gk}handlesDomain> ?d }} "
        f"UNION {{ ?m <{gk}hasParticipant> ?s . ?m a <{gk}CollaborationMechanism> }} }}",
        True,
    )
    notation: dict[str, str] = {}
    domains: dict[str, list[str]] = {}
    mechanisms: dict[str, list[str]] = {}
    for row in rows:
        s = row["s"]["value"]
        domains.setdefault(s, [])
        if "notation" in row:
            notation[s] = row["notation"]["value"]
        if "d" in row and row["d"]["value"] not in domains[s]:
            domains[s].append(row["d"]["value"])
        if "m" in row:
            mechanisms.setdefault(row["m"]["value"], [])
            if s not in mechanisms[row["m"]["value"]]:
                mechanisms[row["m"]["value"]].append(s)

    cohandlers: set[str] = set()
    stated: set[str] = set()
    touched: set[str] = set()
    from_table: set[str] = set()
    if project is not None:
        for row in select(
            f"SELECT ?rel ?x WHERE {{ VALUES ?rel {{ <{gk}coHandledBy> <{gk}statedParticipant> <{gk}touchesDomain> }} "
            f"{about(project.iri)} ?this ?rel ?x }}",
            True,
        ):
            target = {"coHandledBy": cohandlers, "statedParticipant": stated, "touchesDomain": touched}
            target[row["rel"]["value"][len(gk) :]].add(row["x"]["value"])
        # the sections the table gives from what a claim says the project touches, with no assumption on the way
        for row in select(
            f"SELECT DISTINCT ?s WHERE {{ ?this <{gk}touchesDomain> ?d . ?d <{SKOS_BROADER}>* ?h . "
            f"?s <{gk}handlesDomain> ?h "
            f"FILTER EXISTS {{ GRAPH ?c {{ ?this <{gk}touchesDomain> ?d }} FILTER EXISTS {{ ?c a <{gk}Claim> }} }} "
            f"FILTER NOT EXISTS {{ ?d <{SKOS_BROADER}>* ?f . ?f <{SKOS_BROADER}> ?t . ?t <{SKOS_BROADER}>* ?h "
            f"GRAPH ?g {{ ?f <{SKOS_BROADER}> ?t }} FILTER EXISTS {{ ?g a <{gk}AssumptionGraph> }} }} "
            f"{about(project.iri)} }}",
            True,
        ):
            from_table.add(row["s"]["value"])

    everything = set(domains) | {d for ds in domains.values() for d in ds} | set(mechanisms) | touched
    labeller = Labeller(lang, base_iri, fetch_labels(select, everything))
    ring_order = sorted(domains, key=lambda s: _notation_key(notation.get(s), labeller.name(s)))

    ring = [
        Node(
            key=s,
            label=notation.get(s, "") or labeller.name(s),
            kind="section",
            href=local_href(s, base_iri),
            sublabel=labeller.name(s),
            note=_other_language_label(labeller, s),
            highlight=s in cohandlers,
            marks=("stated",) if s in stated else (),
        )
        for s in ring_order
    ]
    hubs = [
        Node(m, labeller.name(m), "mechanism", local_href(m, base_iri), note=", ".join(labeller.name(s) for s in ms))
        for m, ms in sorted(mechanisms.items(), key=lambda kv: labeller.name(kv[0]))
    ]
    outer = {
        s: [
            Node(d, labeller.name(d), "domain", local_href(d, base_iri), highlight=d in touched)
            for d in sorted(domains[s], key=labeller.name)
        ]
        for s in ring_order
    }
    edges = [Edge(s, d, "handles", f"{labeller.name(s)} → {labeller.name(d)}") for s in ring_order for d in domains[s]]
    edges += [
        Edge(m, s, "participates", f"{labeller.name(m)} — {labeller.name(s)}")
        for m, ms in mechanisms.items()
        for s in ms
    ]
    focus = None
    if project is not None:
        focus = Node(project.iri, project.label, "project", local_href(project.iri, base_iri))
        edges += [
            Edge(project.iri, s, "cohandled", f"{project.label} → {labeller.name(s)}", highlight=True)
            for s in ring_order
            if s in cohandlers
        ]
        edges += [
            Edge(project.iri, s, "stated", f"{project.label} ⇢ {labeller.name(s)}")
            for s in ring_order
            if s in stated and s not in cohandlers
        ]
    title = UI_TEXT[lang]["network"] + (f" — {project.label}" if project else "")
    description = ", ".join(labeller.name(s) for s in ring_order)
    return {
        "svg": network_svg(ring, hubs, outer, edges, focus, title, description),
        "cohandlers": [labeller.link(s) for s in ring_order if s in cohandlers],
        "stated": [labeller.link(s) for s in ring_order if s in stated],
        "from_table": [labeller.link(s) for s in ring_order if s in cohandlers & from_table],
        "assumed": [labeller.link(s) for s in ring_order if s in cohandlers - from_table],
        "touched": [labeller.link(d) for d in sorted(touched, key=labeller.name)],
    }
