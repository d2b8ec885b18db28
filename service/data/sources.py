"""The asserted inputs: the ontology and the shipped data, read as one dataset, and their data version."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
from rdflib import Dataset, Graph, URIRef

from service import names
from service.data.reasoning import Closure, materialise, reasoner_version
from service.errors import ConfigError
from service.resources import graph_data_dir, ontology_file
from service.sparql import formats

# File name endings of the RDF formats `--data` reads (the formats table's, and RDF/XML's usual others).
DATA_SUFFIXES: dict[str, str] = {
    **{"." + f.extension: f.oxigraph for f in formats.FORMATS if f.kind == "graph"},
    ".turtle": "TURTLE",
    ".n3": "N3",
    ".owl": "RDF_XML",
    ".xml": "RDF_XML",
    ".json": "JSON_LD",
}

Data = tuple[Path, ...] | None  # `settings.data`: the files and folders to serve, or None for the shipped data


def source_files(data: Data = None) -> list[Path]:
    """The asserted inputs, in a stable order: without `data` the ontology, then every graph_data TriG file; with
    it, every RDF file named or found (recursively) in its folders.

    Raises:
        ConfigError: when a file named in `data` is not in a format we read.
    """
    if data is None:
        return [ontology_file(), *sorted(graph_data_dir().glob("*.trig"))]
    found: list[Path] = []
    for path in data:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES))
        elif path.suffix.lower() in DATA_SUFFIXES:
            found.append(path)
        else:
            readable = ", ".join(sorted(DATA_SUFFIXES))
            raise ConfigError(f"--data {path}: not a file of a format we read (file names ending {readable})")
    return sorted(set(found), key=found.index)


def file_graph(path: Path) -> str:
    """The graph the triples of a triples-only data file (Turtle, N-Triples, RDF/XML…) are served in."""
    return path.resolve().as_uri()


def source_quads(data: Data = None) -> Iterator[ox.Quad]:
    """The quads of the asserted inputs: the ontology in its own graph, a dataset file's graphs as written, a
    triples file's triples (and a dataset file's default graph) in the graph named after the file.

    Raises:
        ConfigError: when a file cannot be read or parsed.
    """
    for index, path in enumerate(source_files(data)):
        if data is None:
            fmt, graph = (ox.RdfFormat.TURTLE, names.ONTOLOGY_GRAPH) if index == 0 else (ox.RdfFormat.TRIG, None)
        else:
            fmt, graph = getattr(ox.RdfFormat, DATA_SUFFIXES[path.suffix.lower()]), file_graph(path)
        try:
            for quad in ox.parse(path=path, format=fmt, base_iri=path.resolve().as_uri(), rename_blank_nodes=True):
                if isinstance(quad.graph_name, ox.DefaultGraph) and graph is not None:
                    quad = ox.Quad(quad.subject, quad.predicate, quad.object, ox.NamedNode(graph))
                yield quad
        except (OSError, SyntaxError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None


def data_version(base_iri: str = names.DEFAULT_BASE, reasoner: str = "rl", data: Data = None) -> str:
    """A digest of the inputs, the reasoner and the base IRI: equal versions mean equal datasets."""
    digest = hashlib.sha256(f"{reasoner_version(reasoner)}\n{base_iri}\n".encode())
    for path in source_files(data):
        name = path.name if data is None else file_graph(path)  # user data: its graphs are named after the files
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def asserted_dataset(data: Data = None) -> Dataset:
    """The asserted graphs: the ontology in its own graph, each TriG file's graphs as written (with `data`: see
    `source_quads`).

    Raises:
        ConfigError: when a shipped data file puts triples in the default graph (every fact needs its claim graph).
    """
    dataset = Dataset()
    if data is not None:
        text = ox.serialize(source_quads(data), format=ox.RdfFormat.N_QUADS)
        dataset.parse(data=text.decode("utf-8"), format="nquads")
        return dataset
    ontology = dataset.graph(URIRef(names.ONTOLOGY_GRAPH))
    ontology.parse(data=(ontology_file()).read_text(encoding="utf-8"), format="turtle")
    for path in source_files()[1:]:
        dataset.parse(data=path.read_text(encoding="utf-8"), format="trig", publicID=path.as_uri())
    if len(dataset.default_graph):
        raise ConfigError(f"{len(dataset.default_graph)} triples sit outside any named graph in graph_data/")
    return dataset


def shipped_graphs(base_iri: str = names.DEFAULT_BASE, data: Data = None) -> frozenset[str]:
    """The IRIs of the graphs the served source data comes in (the ontology graph and every graph of graph_data/,
    or those of `data`), as the deployment with `base_iri` names them."""
    found = {names.ONTOLOGY_GRAPH} if data is None else set()
    for quad in source_quads(data):
        if isinstance(quad.graph_name, ox.NamedNode):
            found.add(quad.graph_name.value)
    return frozenset(names.rebase(graph, base_iri) for graph in found)


def union_graph(dataset: Dataset) -> Graph:
    """All triples of a dataset's named graphs in one plain graph (what the reasoner works on)."""
    union = Graph()
    for s, p, o, _ in dataset.quads((None, None, None, None)):
        union.add((s, p, o))
    return union


def reason(dataset: Dataset, reasoner: str = "rl") -> Closure:
    """The OWL 2 RL closure of the asserted dataset (not cached: see `load_snapshot`)."""
    return materialise((triple for graph in dataset.graphs() for triple in graph), reasoner)
