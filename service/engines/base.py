"""One query interface for every engine: the job handed over, the outcome, the dataset rules shared by all."""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyoxigraph as ox

from service.data.snapshots import Snapshot
from service.errors import (
    GuianError,
    InvalidParameterError,
    NotAcceptableError,
    RemoteServiceError,
    ResultTooLargeError,
)
from service.sparql import formats
from service.sparql.lexer import dataset_clause, service_targets
from service.sparql.terms import is_iri, named_node, parse_term

# ---------------------------------------------------------------------------------------------------------
# Shared by the embedded and rdflib engines.

log = logging.getLogger("guian_kg.engine")


@dataclass(frozen=True)
class QueryJob:
    """A query as the protocol layer hands it to an engine: text, options and the result format to write."""

    query: str
    result_format: str  # a key of service.sparql.formats.BY_KEY: json xml csv tsv ttl nt jsonld rdfxml trig nq
    infer: bool = True
    default_graph_uris: tuple[str, ...] = ()
    named_graph_uris: tuple[str, ...] = ()
    base_iri: str | None = None
    # Named-query parameters: variable name -> term in N-Triples syntax, bound as RDF terms (never pasted).
    bindings: tuple[tuple[str, str], ...] = ()
    max_rows: int = 100_000
    # The query form, when the caller already ran sparql.lexer.check_query on the text with the engine's own
    # allowlist (the web process does, once per request); None: the engine checks it.
    form: str | None = None
    # The query's FROM and FROM NAMED IRIs (sparql.lexer.dataset_clause against `base_iri`), when the caller
    # already read them (the executor does, in the web process, so a query worker never lexes the text); None:
    # the engine reads them.
    query_from: tuple[tuple[str, ...], tuple[str, ...]] | None = None


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

    def after_fork(self) -> None:  # noqa: B027 (a hook most engines leave empty)
        """Get ready to answer in a freshly forked query worker (open per-process resources); nothing by default."""

    def apply(self, snapshot: Snapshot, remove: tuple[str, ...], add: tuple[str, ...]) -> bool:
        """Move the loaded data to `snapshot` by N-Quads lines taken out and put in (a line without a graph is the
        store's default graph); False when this engine cannot (the caller then loads `snapshot` whole)."""
        return False


OX_UNPROJECTED = re.compile(r"does not contains? variable \?(\S+) in its SELECT projection")


@dataclass(frozen=True)
class QueryDataset:
    """The RDF dataset one query runs over: default-graph members (None = the store's default graph)."""

    default: tuple[str | None, ...]
    named: tuple[str, ...]
    union: bool = False  # the default graph is the union of everything (asserted, or also inferred)


def query_dataset(job: QueryJob, snapshot: Snapshot, clause: tuple[Sequence[str], Sequence[str]]) -> QueryDataset:
    """The dataset of a job: protocol graphs beat the query's FROM, which beats the union of all graphs.

    `infer=False` takes the inferred graph out of it, whichever way it was named.
    """
    keep = (lambda iri: iri != snapshot.inferred_graph) if not job.infer else (lambda iri: True)
    if job.default_graph_uris or job.named_graph_uris:
        default, named = job.default_graph_uris, job.named_graph_uris
        for iri in (*default, *named):
            named_node(iri)  # a client's bad IRI is a 400, never an engine error
    elif clause[0] or clause[1]:
        # A malformed FROM is left to the engine's parser, which reports it with its position.
        default, named = tuple(filter(is_iri, clause[0])), tuple(filter(is_iri, clause[1]))
    else:
        graphs = snapshot.graphs if job.infer else snapshot.asserted_graphs
        return QueryDataset((None, *graphs), graphs, union=True)
    return QueryDataset(tuple(g for g in default if keep(g)), tuple(g for g in named if keep(g)))


def query_from(job: QueryJob) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The FROM and FROM NAMED IRIs of a job's query: as the caller read them, or read now.

    Raises:
        QuerySyntaxError: at an unterminated string or a malformed prologue.
    """
    if job.query_from is not None:
        return job.query_from
    default, named = dataset_clause(job.query, job.base_iri)
    return tuple(default), tuple(named)


def substitutions(job: QueryJob) -> dict[ox.Variable, ox.NamedNode | ox.BlankNode | ox.Literal]:
    subs = {}
    for name, term in job.bindings:
        try:
            variable = ox.Variable(name.lstrip("?$"))
        except ValueError:
            raise InvalidParameterError(f"not a variable name: {name[:100]!r}") from None
        subs[variable] = parse_term(term)
    return subs


def result_format(job: QueryJob, form: str) -> formats.Format:
    fmt = formats.by_key(job.result_format)
    if fmt is None:
        raise InvalidParameterError(f"unknown result format {job.result_format[:50]!r}")
    if fmt not in formats.FORM_FORMATS[form]:
        raise NotAcceptableError(f"a {form.upper()} result cannot be written as {fmt.key}")
    return fmt


def too_large(max_rows: int) -> ResultTooLargeError:
    return ResultTooLargeError(f"the result has more than {max_rows} rows; add a LIMIT", max_rows=max_rows)


def engine_failure(exc: Exception, job: QueryJob) -> GuianError:
    """A safe client error for an unexpected engine exception, which is logged with the query."""
    log.error("query failed: %r\n%s", exc, job.query[:2000], exc_info=exc)
    if isinstance(exc, OSError) and service_targets(job.query):
        return RemoteServiceError("a SERVICE endpoint could not be queried")
    return GuianError("the query engine failed on this query")
