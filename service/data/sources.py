"""The asserted inputs: the ontology and the shipped data, read as one dataset, and their data version."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyoxigraph as ox
from rdflib import Dataset, Graph, URIRef

from service import names
from service.data.reasoning import Closure, materialise, reasoner_version
from service.errors import ConfigError
from service.resources import graph_data_dir, ontology_file


def source_files() -> list[Path]:
    """The asserted inputs, in a stable order: the ontology, then every graph_data TriG file."""
    ontology = ontology_file()
    return [ontology, *sorted(graph_data_dir().glob("*.trig"))]


def data_version(base_iri: str = names.DEFAULT_BASE, reasoner: str = "rl") -> str:
    """A digest of the inputs, the reasoner and the base IRI: equal versions mean equal datasets."""
    digest = hashlib.sha256(f"{reasoner_version(reasoner)}\n{base_iri}\n".encode())
    for path in source_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def asserted_dataset() -> Dataset:
    """The asserted graphs: the ontology in its own graph, each TriG file's graphs as written.

    Raises:
        ConfigError: when a data file puts triples in the default graph (every fact needs its claim graph).
    """
    dataset = Dataset()
    ontology = dataset.graph(URIRef(names.ONTOLOGY_GRAPH))
    ontology.parse(data=(ontology_file()).read_text(encoding="utf-8"), format="turtle")
    for path in source_files()[1:]:
        dataset.parse(data=path.read_text(encoding="utf-8"), format="trig", publicID=path.as_uri())
    if len(dataset.default_graph):
        raise ConfigError(f"{len(dataset.default_graph)} triples sit outside any named graph in graph_data/")
    return dataset


def shipped_graphs(base_iri: str = names.DEFAULT_BASE) -> frozenset[str]:
    """The IRIs of the graphs the shipped data comes in (the ontology graph and every graph of graph_data/), as
    the deployment with `base_iri` names them."""
    found = {names.ONTOLOGY_GRAPH}
    for path in source_files()[1:]:
        for quad in ox.parse(path=path, format=ox.RdfFormat.TRIG):
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
