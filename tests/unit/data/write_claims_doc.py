"""Write docs/claims-and-assumptions.md from the data: every claim graph, every modelling assumption and what it
licenses. Run after changing graph_data/, then read the diff: `.venv/bin/python tests/unit/data/write_claims_doc.py`.
"""

from __future__ import annotations

from pathlib import Path

from rdflib import OWL, BNode, Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS
from rdflib.term import Node

from service import names
from service.data.sources import asserted_dataset

DOC = Path(__file__).resolve().parents[3] / "docs" / "claims-and-assumptions.md"
GK = Namespace(names.GK)

INTRO = """# Claims and assumptions · 断言与假设

Every statement of the graph is either the source's — a **claim**, in its own named graph with the verbatim
quote it rests on — or a **modelling assumption**, in its own named graph pointing to the
`gk:ModellingAssumption` that licenses it, with a rationale in Chinese and English. Reasoning adds the rest
(the inferred graph), and every named query says which of the three a row rests on.
`tests/unit/data/test_claims_doc.py` keeps these tables in step with `graph_data/`; regenerate them with
`.venv/bin/python tests/unit/data/write_claims_doc.py`.

图谱中的每一条陈述，要么出自原文——即**断言**，各在自己的命名图中并附所依据的逐字原文；要么是**建模假设**，
各在自己的命名图中，指向许可它的 `gk:ModellingAssumption`，并附中英文理由。其余由推理得出（推理图），
每个命名查询都说明其每一行依据的是三者中的哪一种。
"""

OUTRO = """
Each assumption's rationale, the words of the source that motivate it and the alternatives considered are on
its resource (`/id/assumption/<slug>`) and in `graph_data/assumptions.trig`.
每项假设的理由、促成它的原文和考虑过的其他做法见其资源页（`/id/assumption/<slug>`）及 `graph_data/assumptions.trig`。
"""


def curie(term: Node, graph: Graph | None = None) -> str:
    """A term as the document shows it: CURIE, literal with its language, or a restriction in words."""
    if isinstance(term, BNode) and graph is not None:
        return f"[{curie(graph.value(term, OWL.onProperty))} value {curie(graph.value(term, OWL.hasValue))}]"
    if isinstance(term, Literal):
        return f'"{term}"@{term.language}' if term.language else f'"{term}"'
    text = str(term)
    prefixes = names.prefixes()
    best = max((p for p, ns in prefixes.items() if text.startswith(ns)), key=lambda p: len(prefixes[p]), default=None)
    return f"{best}:{text[len(prefixes[best]) :]}" if best else f"<{text}>"


def label(graph: Graph, node: Node, lang: str) -> str:
    """The node's rdfs:label in `lang`."""
    return next((str(o) for o in graph.objects(node, RDFS.label) if getattr(o, "language", None) == lang), "")


def document(dataset: Dataset) -> str:
    """The document's text."""
    prov = dataset.graph(URIRef(names.PROVENANCE_GRAPH))
    claims = sorted(prov.subjects(RDF.type, GK.Claim), key=str)
    lines = [INTRO, f"## Claims · 断言 ({len(claims)})", ""]
    lines += ["| claim graph 断言图 | source part 原文部分 | what it states 内容 | in English |", "|---|---|---|---|"]
    for claim in claims:
        name = str(claim).removeprefix(names.CLAIM_GRAPH_PREFIX)
        part = prov.value(claim, GK.sourcePart)
        lines.append(f"| `claim:{name}` | {part} | {label(prov, claim, 'zh')} | {label(prov, claim, 'en')} |")
    assumptions = sorted(prov.subjects(RDF.type, GK.ModellingAssumption), key=str)
    lines += ["", f"## Modelling assumptions · 建模假设 ({len(assumptions)})", ""]
    lines += [
        "| assumption 假设 | graph 假设图 | what it licenses 许可的三元组 | 假设 | assumption |",
        "|---|---|---|---|---|",
    ]
    for assumption in assumptions:
        for name in sorted(prov.objects(assumption, GK.licenses), key=str):
            graph = dataset.graph(name)
            shown = sorted(
                f"`{curie(s, graph)} {curie(p)} {curie(o, graph)}`" for s, p, o in graph if not isinstance(s, BNode)
            )
            lines.append(
                f"| `{curie(assumption)}` | `{curie(name)}` | {'<br>'.join(shown)} "
                f"| {label(prov, assumption, 'zh')} | {label(prov, assumption, 'en')} |"
            )
    return "\n".join(lines) + "\n" + OUTRO


def main() -> None:
    """Write the document from the shipped data."""
    DOC.write_text(document(asserted_dataset()), encoding="utf-8")


if __name__ == "__main__":
    main()
