"""One query interface, three engines: embedded (pyoxigraph), rdflib (reference) and remote (SPARQL endpoint)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class QueryJob:
    """A query as the protocol layer hands it to an engine: text, options and the result format to write."""

    query: str
    result_format: str  # a key of service.protocol formats: json xml csv tsv ttl nt jsonld rdfxml trig nq
    infer: bool = True
    default_graph_uris: tuple[str, ...] = ()
    named_graph_uris: tuple[str, ...] = ()
    base_iri: str | None = None
    # Named-query parameters: variable name -> term in N-Triples syntax, bound as RDF terms (never pasted).
    bindings: tuple[tuple[str, str], ...] = ()
    max_rows: int = 100_000


@dataclass(frozen=True)
class QueryOutcome:
    """A finished query: its form, the serialised body in the job's format, and how many rows/triples it had."""

    form: str  # select | ask | construct | describe
    media_type: str
    body: bytes
    rows: int = 0
    extra: dict = field(default_factory=dict)


class Engine(ABC):
    """A loaded dataset that answers SPARQL. Implementations raise service.errors.GuianError subclasses."""

    name: str = "abstract"

    @abstractmethod
    def execute(self, job: QueryJob) -> QueryOutcome:
        """Run one query and serialise its result in `job.result_format`."""

    @abstractmethod
    def graph_names(self) -> list[str]:
        """The IRIs of the dataset's named graphs."""
