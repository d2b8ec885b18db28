"""Builds the dataset every part shares: ontology + data + provenance graphs, and the cached inferred graph."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rdflib import Dataset, Graph, URIRef

from service import names
from service.config import Settings
from service.errors import ConfigError
from service.reasoning import REASONER_VERSION, Closure, materialise
from service.resources import graph_data_dir, ontology_dir

log = logging.getLogger("guian_kg.store")

ONTOLOGY_FILE = "guian-kg.ttl"


@dataclass(frozen=True)
class Snapshot:
    """One data version, materialised: the whole dataset (asserted + inferred) as an N-Quads file."""

    version: str
    nquads: Path
    graphs: tuple[str, ...]
    inferred_graph: str
    base_iri: str

    @property
    def asserted_graphs(self) -> tuple[str, ...]:
        return tuple(g for g in self.graphs if g != self.inferred_graph)


def source_files() -> list[Path]:
    """The asserted inputs, in a stable order: the ontology, then every graph_data TriG file."""
    ontology = ontology_dir() / ONTOLOGY_FILE
    return [ontology, *sorted(graph_data_dir().glob("*.trig"))]


def data_version(base_iri: str = names.DEFAULT_BASE) -> str:
    """A digest of the inputs, the reasoner and the base IRI: equal versions mean equal datasets."""
    digest = hashlib.sha256(f"{REASONER_VERSION}\n{base_iri}\n".encode())
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
    ontology.parse(data=(ontology_dir() / ONTOLOGY_FILE).read_text(encoding="utf-8"), format="turtle")
    for path in source_files()[1:]:
        dataset.parse(data=path.read_text(encoding="utf-8"), format="trig", publicID=path.as_uri())
    if len(dataset.default_graph):
        raise ConfigError(f"{len(dataset.default_graph)} triples sit outside any named graph in graph_data/")
    return dataset


def union_graph(dataset: Dataset) -> Graph:
    """All triples of a dataset's named graphs in one plain graph (what the reasoner works on)."""
    union = Graph()
    for s, p, o, _ in dataset.quads((None, None, None, None)):
        union.add((s, p, o))
    return union


def reason(dataset: Dataset) -> Closure:
    """The OWL 2 RL closure of the asserted dataset (not cached: see `load_snapshot`)."""
    return materialise(union_graph(dataset))


def _write_nquads(dataset: Dataset, inferred: Graph, target: Path, base_iri: str) -> None:
    """Write asserted + inferred quads to `target` atomically, rebased onto the deployment's base IRI."""
    full = Dataset()
    for quad in dataset.quads((None, None, None, None)):
        full.add(quad)
    inferred_graph = full.graph(URIRef(names.INFERRED_GRAPH))
    for triple in inferred:
        inferred_graph.add(triple)
    text = full.serialize(format="nquads")
    if base_iri != names.DEFAULT_BASE:
        text = text.replace("<" + names.DEFAULT_BASE, "<" + base_iri)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent, delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, target)


def load_snapshot(settings: Settings) -> Snapshot:
    """The current data version, reasoning once per version and caching the result on disk."""
    base = settings.base_iri
    version = data_version(base)
    folder = settings.reasoning_cache / version
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "dataset.nq"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several server workers may start at once: reason only once
        dataset = None
        if not target.exists():
            dataset = asserted_dataset()
            closure = reason(dataset)
            _write_nquads(dataset, closure.inferred, target, base)
            log.info("data version %s cached at %s", version, target)
        graph_names = folder / "graphs.txt"
        if not graph_names.exists():
            dataset = dataset or asserted_dataset()
            listed = sorted({str(c.identifier) for c in dataset.graphs() if isinstance(c.identifier, URIRef)})
            listed = [g for g in listed if g != str(dataset.default_graph.identifier)]
            graph_names.write_text("\n".join([*listed, names.INFERRED_GRAPH]) + "\n", encoding="utf-8")
    graphs = tuple(names.rebase(g, base) for g in graph_names.read_text(encoding="utf-8").split())
    return Snapshot(version, target, graphs, names.rebase(names.INFERRED_GRAPH, base), base)
