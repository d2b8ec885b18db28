"""SHACL validation of the asserted data (ontology + graph_data) against ontology/shapes.ttl, without inference."""

from __future__ import annotations

import warnings
from pathlib import Path

from pyshacl import validate as shacl_validate
from rdflib import Dataset, Graph, Namespace, URIRef
from rdflib.namespace import RDF
from rdflib.term import Node

from service.resources import graph_data_dir, ontology_file, shapes_file

SH = Namespace("http://www.w3.org/ns/shacl#")
_PREFIXES = {
    "gk": "https://w3id.org/guian-kg/ontology#",
    "id": "https://w3id.org/guian-kg/id/",
    "claim": "https://w3id.org/guian-kg/graph/claim/",
    "org": "http://www.w3.org/ns/org#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "prov": "http://www.w3.org/ns/prov#",
    "dcterms": "http://purl.org/dc/terms/",
}


def _read(path: Path) -> str:
    """The text of a file (rdflib leaves files it opens itself unclosed: a ResourceWarning)."""
    return path.read_text(encoding="utf-8")


def data_dataset() -> Dataset:
    """Every graph_data TriG file in one dataset, graphs as written (without the ontology)."""
    dataset = Dataset()
    for path in sorted(Path(graph_data_dir()).glob("*.trig")):
        with warnings.catch_warnings():  # rdflib 7.6's TriG parsing uses its own deprecated API
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset.parse(data=_read(path), format="trig")
    return dataset


def asserted_union() -> Graph:
    """The ontology and every graph_data TriG file as one plain graph (the asserted triples, no inference)."""
    union = Graph()
    union.parse(data=_read(ontology_file()), format="turtle")
    for s, p, o, _ in data_dataset().quads((None, None, None, None)):
        union.add((s, p, o))
    return union


def shapes_graph() -> Graph:
    """The SHACL shapes of ontology/shapes.ttl."""
    return Graph().parse(data=_read(shapes_file()), format="turtle")


def _name(graph: Graph, node: Node | None) -> str:
    """A short readable name for a node of the report: a prefixed name where one fits."""
    if node is None:
        return "(node)"
    if isinstance(node, URIRef):
        for prefix, namespace in _PREFIXES.items():
            if str(node).startswith(namespace):
                return f"{prefix}:{str(node)[len(namespace) :]}"
        return f"<{node}>"
    path = graph.value(node, SH.inversePath)
    return f"^{_name(graph, path)}" if path is not None else node.n3()


def _readable(results: Graph, conforms: bool) -> str:
    """One line per result (severity, focus node, path, message, value), sorted; a summary line first."""
    lines = []
    for result in results.subjects(RDF.type, SH.ValidationResult):
        severity = results.value(result, SH.resultSeverity)
        focus = results.value(result, SH.focusNode)
        path = results.value(result, SH.resultPath)
        value = results.value(result, SH.value)
        messages = sorted(str(m) for m in results.objects(result, SH.resultMessage)) or ["(no message)"]
        line = f"{_name(results, severity).rsplit('#', 1)[-1].rstrip('>')}: {_name(results, focus)}"
        line += f" {_name(results, path)}: {'; '.join(messages)}"
        if value is not None and value != focus:
            line += f" (value {value.n3() if not isinstance(value, URIRef) else _name(results, value)})"
        lines.append(line)
    lines = sorted(set(lines))
    summary = "Conforms: True" if conforms else f"Conforms: False ({len(lines)} results)"
    return "\n".join([summary, *lines])


def validate(data_graph: Graph | None = None) -> tuple[bool, str]:
    """Validate `data_graph` (default: the asserted union) against the shapes; return (conforms, report)."""
    data = asserted_union() if data_graph is None else data_graph
    conforms, results, _text = shacl_validate(
        data,
        shacl_graph=shapes_graph(),
        inference="none",
        abort_on_first=False,
        allow_warnings=False,
        meta_shacl=False,
    )
    return bool(conforms), _readable(results, bool(conforms))
