"""The SPARQL 1.1 Service Description and the VoID description of the dataset, as rdflib graphs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pyoxigraph as ox
from rdflib import OWL, RDF, RDFS, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, VOID

from service import names
from service.config import Settings
from service.sparql.formats import FORMATS, Format

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
ENTAILMENT = Namespace("http://www.w3.org/ns/entailment/")
OWL2_RL_PROFILE = URIRef("http://www.w3.org/ns/owl-profile/RL")

# W3C unique format IRIs (https://www.w3.org/ns/formats/) of every format the endpoint can write.
FORMAT_IRIS: dict[str, URIRef] = {
    key: URIRef("http://www.w3.org/ns/formats/" + name)
    for key, name in {
        "json": "SPARQL_Results_JSON",
        "xml": "SPARQL_Results_XML",
        "csv": "SPARQL_Results_CSV",
        "tsv": "SPARQL_Results_TSV",
        "ttl": "Turtle",
        "nt": "N-Triples",
        "jsonld": "JSON-LD",
        "rdfxml": "RDF_XML",
        "trig": "TriG",
        "nq": "N-Quads",
    }.items()
}

# The COUNT queries behind the statistics; each result row maps variable names to lexical values.
STATS_QUERIES: dict[str, str] = {
    "totals": "SELECT (COUNT(*) AS ?triples) (COUNT(DISTINCT ?s) AS ?subjects) "
    "(COUNT(DISTINCT ?o) AS ?objects) WHERE { ?s ?p ?o }",
    "graphs": "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
    "classes": "SELECT ?c (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a ?c FILTER(isIRI(?c)) } GROUP BY ?c",
    "properties": "SELECT ?p (COUNT(*) AS ?n) WHERE { ?s ?p ?o } GROUP BY ?p",
}


@dataclass(frozen=True)
class DatasetStats:
    """VoID statistics of one data version (the union of all graphs, inferred graph included)."""

    triples: int
    distinct_subjects: int
    distinct_objects: int
    graph_triples: tuple[tuple[str, int], ...]
    class_entities: tuple[tuple[str, int], ...]
    property_triples: tuple[tuple[str, int], ...]

    @property
    def classes(self) -> int:
        return len(self.class_entities)

    @property
    def properties(self) -> int:
        return len(self.property_triples)


def compute_stats(select: Callable[[str], Sequence[Mapping[str, str]]]) -> DatasetStats:
    """Statistics from the COUNT queries in STATS_QUERIES, run by `select` (query text -> result rows)."""
    totals = select(STATS_QUERIES["totals"])[0]

    def grouped(name: str, key: str) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((row[key], int(row["n"])) for row in select(STATS_QUERIES[name]) if key in row))

    return DatasetStats(
        triples=int(totals["triples"]),
        distinct_subjects=int(totals["subjects"]),
        distinct_objects=int(totals["objects"]),
        graph_triples=grouped("graphs", "g"),
        class_entities=grouped("classes", "c"),
        property_triples=grouped("properties", "p"),
    )


def dataset_iri(settings: Settings) -> URIRef:
    """The IRI naming the whole dataset in the SD and VoID."""
    return URIRef(settings.base_iri + "dataset")


def _count(value: int) -> Literal:
    return Literal(value, datatype=XSD.integer)


_PREFIXES = ("rdf", "rdfs", "owl", "xsd", "sd", "void", "dcterms", "ent", "formats", "graph")


def _bind_prefixes(graph: Graph, settings: Settings) -> None:
    known = names.prefixes(settings.base_iri)
    for prefix in _PREFIXES:
        graph.bind(prefix, Namespace(known[prefix]), override=True)


def _describe_dataset(
    graph: Graph, node: URIRef, settings: Settings, stats: DatasetStats, endpoint: str, version: str
) -> None:
    """The VoID statements about the dataset as a whole, shared by the SD and the VoID document."""
    graph.add((node, RDF.type, VOID.Dataset))
    graph.add((node, DCTERMS.title, Literal("Gui'an New Area Management Committee office knowledge graph", lang="en")))
    graph.add((node, DCTERMS.title, Literal("贵安新区管委会办公室知识图谱", lang="zh")))
    graph.add((node, DCTERMS.source, URIRef(names.rebase(names.SOURCE_DOCUMENT, settings.base_iri))))
    graph.add((node, OWL.versionInfo, Literal(version)))
    graph.add((node, VOID.sparqlEndpoint, URIRef(endpoint)))
    graph.add((node, VOID.uriSpace, Literal(settings.base_iri + "id/")))
    graph.add((node, VOID.triples, _count(stats.triples)))
    graph.add((node, VOID.classes, _count(stats.classes)))
    graph.add((node, VOID.properties, _count(stats.properties)))
    graph.add((node, VOID.distinctSubjects, _count(stats.distinct_subjects)))
    graph.add((node, VOID.distinctObjects, _count(stats.distinct_objects)))
    for key in ("ttl", "nt", "jsonld", "rdfxml", "trig", "nq"):
        graph.add((node, VOID.feature, FORMAT_IRIS[key]))
    for cls, entities in stats.class_entities:
        partition = BNode()
        graph.add((node, VOID.classPartition, partition))
        graph.add((partition, VOID["class"], URIRef(cls)))
        graph.add((partition, VOID.entities, _count(entities)))
    for prop, triples in stats.property_triples:
        partition = BNode()
        graph.add((node, VOID.propertyPartition, partition))
        graph.add((partition, VOID.property, URIRef(prop)))
        graph.add((partition, VOID.triples, _count(triples)))


def _infer_statement(settings: Settings, inferred_graph: str) -> Literal:
    default = "include" if settings.infer else "leave out"
    return Literal(
        f"Queries {default} the OWL 2 RL closure (named graph <{inferred_graph}>) by default; "
        "a request chooses with infer=true or infer=false. The default graph is the union of all named graphs.",
        lang="en",
    )


def service_description(
    settings: Settings,
    graphs: Sequence[str],
    inferred_graph: str,
    stats: DatasetStats,
    endpoint: str,
    version: str,
) -> Graph:
    """The SPARQL 1.1 Service Description of the endpoint, with the VoID statistics of its default dataset."""
    graph = Graph()
    _bind_prefixes(graph, settings)
    service = BNode("service")
    graph.add((service, RDF.type, SD.Service))
    graph.add((service, SD.endpoint, URIRef(endpoint)))
    graph.add((service, SD.supportedLanguage, SD.SPARQL11Query))
    if settings.update_token:
        graph.add((service, SD.supportedLanguage, SD.SPARQL11Update))
    else:
        graph.add((service, RDFS.comment, Literal("Read-only: updates and Graph Store writes are refused.", lang="en")))
    for fmt in FORMATS:
        graph.add((service, SD.resultFormat, FORMAT_IRIS[fmt.key]))
    graph.add((service, SD.feature, SD.UnionDefaultGraph))
    if settings.service_allow:
        graph.add((service, SD.feature, SD.BasicFederatedQuery))
    if settings.infer:
        graph.add((service, SD.defaultEntailmentRegime, ENTAILMENT["OWL-RDF-Based"]))
        graph.add((service, SD.defaultSupportedEntailmentProfile, OWL2_RL_PROFILE))
    else:
        graph.add((service, SD.defaultEntailmentRegime, ENTAILMENT.Simple))
    graph.add((service, RDFS.comment, _infer_statement(settings, inferred_graph)))

    dataset = dataset_iri(settings)
    graph.add((service, SD.defaultDataset, dataset))
    graph.add((dataset, RDF.type, SD.Dataset))
    _describe_dataset(graph, dataset, settings, stats, endpoint, version)
    default_graph = BNode("default-graph")
    graph.add((dataset, SD.defaultGraph, default_graph))
    graph.add((default_graph, RDF.type, SD.Graph))
    graph.add((default_graph, VOID.triples, _count(stats.triples)))
    counts = dict(stats.graph_triples)
    for name in graphs:
        named, contents = BNode(), BNode()
        graph.add((dataset, SD.namedGraph, named))
        graph.add((named, RDF.type, SD.NamedGraph))
        graph.add((named, SD.name, URIRef(name)))
        graph.add((named, SD.graph, contents))
        graph.add((contents, RDF.type, SD.Graph))
        graph.add((contents, VOID.triples, _count(counts.get(name, 0))))
        if name == inferred_graph:
            graph.add((named, SD.entailmentRegime, ENTAILMENT["OWL-RDF-Based"]))
            graph.add((named, SD.supportedEntailmentProfile, OWL2_RL_PROFILE))
    return graph


def void_description(
    settings: Settings,
    graphs: Sequence[str],
    inferred_graph: str,
    stats: DatasetStats,
    endpoint: str,
    version: str,
) -> Graph:
    """The VoID description of the dataset: statistics, partitions, and one subset per named graph."""
    graph = Graph()
    _bind_prefixes(graph, settings)
    dataset = dataset_iri(settings)
    _describe_dataset(graph, dataset, settings, stats, endpoint, version)
    graph.add((dataset, RDFS.comment, _infer_statement(settings, inferred_graph)))
    counts = dict(stats.graph_triples)
    for name in graphs:
        subset = URIRef(name)
        graph.add((dataset, VOID.subset, subset))
        graph.add((subset, RDF.type, VOID.Dataset))
        graph.add((subset, VOID.triples, _count(counts.get(name, 0))))
        graph.add((subset, VOID.sparqlEndpoint, URIRef(endpoint)))
    return graph


def serialize(graph: Graph, fmt: Format) -> bytes:
    """The graph in an RDF format of the table, written by pyoxigraph (TriG and N-Quads: the default graph)."""
    triples = ox.parse(graph.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES)
    prefixes = {prefix: str(namespace) for prefix, namespace in graph.namespaces() if prefix in _PREFIXES}
    return ox.serialize(triples, format=getattr(ox.RdfFormat, fmt.oxigraph), prefixes=prefixes)
