"""The W3C SPARQL 1.1 test suite: its manifests read into test cases, and results compared as the W3C does.

The suite is a copy of `../shared/w3c-rdf-tests` (the W3C's files with their licence, unchanged) in
`tests/w3c/suite/`, so that a clean checkout runs it; `W3C_RDF_TESTS` points elsewhere. Test IRIs are the
W3C's (`http://www.w3.org/2009/sparql/docs/tests/data-sparql11/<group>/<file>`): the graphs a test's data is
loaded into are named after its data files' IRIs, as the W3C harnesses name them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox
import requests
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection
from rdflib.compare import isomorphic
from rdflib.namespace import RDF, RDFS
from rdflib.query import Result

ROOT = Path(__file__).resolve().parents[2]
SUITE = Path(os.environ.get("W3C_RDF_TESTS", Path(__file__).resolve().parent / "suite"))
SPARQL11 = SUITE / "sparql" / "sparql11"
W3C_BASE = "http://www.w3.org/2009/sparql/docs/tests/data-sparql11/"
# The targets: our two local engines and Oxigraph server, the peer (`W3C_ENGINES` picks some).
ENGINES = tuple(os.environ.get("W3C_ENGINES", "embedded rdflib oxigraph").split())
EXPECTED_FAILURES = Path(__file__).resolve().parent / "expected_failures.json"

MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
QT = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-query#")
UT = Namespace("http://www.w3.org/2009/sparql/tests/test-update#")
RS = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/result-set#")

# Groups whose tests need what the suite does not give over HTTP: an entailment regime (entailment/), remote
# SERVICE endpoints (service/), a harness of prose steps (protocol/, http-rdf-update/: run by test_protocol.py).
QUERY_GROUPS_LEFT_OUT = {"entailment", "service"}


@dataclass(frozen=True)
class Case:
    """One test of a manifest: its id (`group/name`), kind, and the files it names (as W3C IRIs)."""

    id: str
    group: str
    kind: str
    action: str | None = None  # the query or update file
    data: tuple[str, ...] = ()  # default-graph data files
    graph_data: tuple[tuple[str, str], ...] = ()  # (graph name, file) of named graphs
    result: str | None = None
    result_data: tuple[str, ...] = ()
    result_graph_data: tuple[tuple[str, str], ...] = ()
    approved: bool = True
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def path_of(iri: str) -> Path:
    """The local file of a test IRI."""
    return SPARQL11 / iri.removeprefix(W3C_BASE)


def _graph_data(graph: Graph, node) -> tuple[tuple[str, str], ...]:
    found = []
    for item in graph.objects(node, UT.graphData):
        if isinstance(item, URIRef):
            found.append((str(item), str(item)))
        else:
            found.append((str(graph.value(item, RDFS.label)), str(graph.value(item, UT.graph))))
    for item in graph.objects(node, QT.graphData):
        found.append((str(item), str(item)))
    return tuple(sorted(found))


def cases(kinds: set[str] | None = None) -> list[Case]:
    """Every test of the suite's sub-manifests (in manifest order), optionally of some kinds only."""
    found: list[Case] = []
    for manifest in sorted(SPARQL11.glob("*/manifest.ttl")):
        group = manifest.parent.name
        base = f"{W3C_BASE}{group}/"
        graph = Graph().parse(manifest, format="turtle", publicID=base + "manifest.ttl")
        for entries in graph.objects(None, MF.entries):
            for entry in Collection(graph, entries):
                kind = str(graph.value(entry, RDF.type)).rsplit("#", 1)[-1]
                if kinds is not None and kind not in kinds:
                    continue
                action, result = graph.value(entry, MF.action), graph.value(entry, MF.result)
                approval = graph.value(entry, URIRef("http://www.w3.org/2001/sw/DataAccess/tests/test-dawg#approval"))
                name = str(entry).rsplit("#", 1)[-1]
                case = Case(id=f"{group}/{name}", group=group, kind=kind, approved="Approved" in str(approval))
                if isinstance(action, URIRef):
                    case = _with(case, action=str(action))
                elif action is not None:
                    query = graph.value(action, QT.query) or graph.value(action, UT.request)
                    data = [*graph.objects(action, QT.data), *graph.objects(action, UT.data)]
                    case = _with(
                        case,
                        action=str(query) if query else None,
                        data=tuple(sorted(str(d) for d in data)),
                        graph_data=_graph_data(graph, action),
                    )
                if isinstance(result, URIRef):
                    case = _with(case, result=str(result))
                elif result is not None:
                    case = _with(
                        case,
                        result_data=tuple(sorted(str(d) for d in graph.objects(result, UT.data))),
                        result_graph_data=_graph_data(graph, result),
                    )
                found.append(case)
    return found


def _with(case: Case, **changes) -> Case:
    return Case(**{**case.__dict__, **changes})


# --- data ------------------------------------------------------------------------------------------------------

_FORMATS = {".ttl": ox.RdfFormat.TURTLE, ".nt": ox.RdfFormat.N_TRIPLES, ".rdf": ox.RdfFormat.RDF_XML}


def quads_of(iri: str, graph: str | None) -> list[ox.Quad]:
    """The triples of a data file, in `graph` (None: the default graph)."""
    target = ox.NamedNode(graph) if graph else ox.DefaultGraph()
    triples = ox.parse(path=path_of(iri), format=_FORMATS[Path(iri).suffix], base_iri=iri, rename_blank_nodes=True)
    return [ox.Quad(t.subject, t.predicate, t.object, target) for t in triples]


def nquads(quads: list[ox.Quad]) -> bytes:
    return ox.serialize(quads, format=ox.RdfFormat.N_QUADS)


FROM = re.compile(r"\bFROM\s+(NAMED\s+)?<([^>]*)>", re.IGNORECASE)


def query_graphs(text: str, base: str) -> tuple[list[str], list[str]]:
    """The FROM and FROM NAMED graphs of a query, resolved against its file's IRI."""
    default, named = [], []
    for is_named, iri in FROM.findall(text):
        resolved = iri if re.match(r"^[a-z]+:", iri) else base.rsplit("/", 1)[0] + "/" + iri
        (named if is_named else default).append(resolved)
    return default, named


# --- comparing results -----------------------------------------------------------------------------------------

RESULT_MEDIA = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
}
EXTENSION_FORMAT = {".srj": "json", ".srx": "xml", ".csv": "csv", ".tsv": "tsv"}


def parse_results(body: bytes, fmt: str) -> Result:
    """A SPARQL results document (JSON, XML, CSV or TSV) as an rdflib Result."""
    return Result.parse(io.BytesIO(body), format=fmt)


def expected_results(iri: str) -> tuple[str, Result | Graph]:
    """The expected outcome of a query test: ("results", Result) or ("graph", Graph)."""
    path = path_of(iri)
    if path.suffix == ".ttl" or path.suffix == ".rdf":
        graph = Graph().parse(path, format="turtle" if path.suffix == ".ttl" else "xml", publicID=iri)
        if (None, RDF.type, RS.ResultSet) in graph:
            return "results", _rs_result(graph)
        return "graph", graph
    return "results", parse_results(path.read_bytes(), EXTENSION_FORMAT[path.suffix])


def _rs_result(graph: Graph) -> Result:
    """A result set written in the DAWG result-set vocabulary, as a Result."""
    node = graph.value(None, RDF.type, RS.ResultSet)
    boolean = graph.value(node, RS.boolean)
    if boolean is not None:
        result = Result("ASK")
        result.askAnswer = boolean.toPython()
        return result
    result = Result("SELECT")
    result.vars = [Literal(v).toPython() for v in graph.objects(node, RS.resultVariable)]
    rows = []
    for solution in graph.objects(node, RS.solution):
        row = {}
        for binding in graph.objects(solution, RS.binding):
            row[str(graph.value(binding, RS.variable))] = graph.value(binding, RS.value)
        rows.append(row)
    result.bindings = rows
    return result


def results_graph(result: Result, ordered: bool) -> Graph:
    """A result set as an RDF graph (the DAWG result-set vocabulary), so that `isomorphic` compares two result
    sets with blank nodes matched as the W3C does; with `ordered`, each row carries its index."""
    graph = Graph()
    node = BNode()
    graph.add((node, RDF.type, RS.ResultSet))
    if result.type == "ASK":
        graph.add((node, RS.boolean, Literal(bool(result.askAnswer))))
        return graph
    for index, row in enumerate(result.bindings):
        solution = BNode()
        graph.add((node, RS.solution, solution))
        if ordered:
            graph.add((solution, RS["index"], Literal(index)))
        for var, value in row.items():
            if value is None:
                continue
            binding = BNode()
            graph.add((solution, RS.binding, binding))
            graph.add((binding, RS.variable, Literal(str(var))))
            graph.add((binding, RS.value, value))
    return graph


def same_results(actual: Result, expected: Result, ordered: bool) -> str | None:
    """None when the two result sets are equal (blank nodes up to renaming; order only with `ordered`), else why."""
    if actual.type != expected.type:
        return f"a {actual.type} result, not {expected.type}"
    if actual.type == "ASK":
        return None if bool(actual.askAnswer) == bool(expected.askAnswer) else f"ASK gave {actual.askAnswer}"
    if len(actual.bindings) != len(expected.bindings):
        return f"{len(actual.bindings)} rows, not {len(expected.bindings)}"
    if isomorphic(results_graph(actual, ordered), results_graph(expected, ordered)):
        return None
    got = Counter(_row_text(r) for r in actual.bindings)
    want = Counter(_row_text(r) for r in expected.bindings)
    missing, extra = list((want - got).elements())[:3], list((got - want).elements())[:3]
    return f"rows differ: missing {missing}, unexpected {extra}"


def _row_text(row) -> str:
    return " ".join(f"{k}={v.n3()}" for k, v in sorted(row.items(), key=lambda kv: str(kv[0])) if v is not None)


def same_graph(actual: Graph, expected: Graph) -> str | None:
    if isomorphic(actual, expected):
        return None
    return f"graphs differ: {len(actual)} triples, expected {len(expected)}"


PORT = re.compile(r"127\.0\.0\.1:\d+")


def answer_text(response: requests.Response) -> str:
    """A refusal in a few words, the same from run to run: `HTTP 403 read-only-graph: detail` for our
    problem+json, `HTTP 500: text` for Oxigraph server's (ports masked)."""
    text = response.text
    if response.headers.get("Content-Type", "").startswith("application/problem+json"):
        with contextlib.suppress(ValueError):
            problem = response.json()
            text = f"{problem.get('code')}: {problem.get('detail', '')}"
            return PORT.sub("127.0.0.1:PORT", f"HTTP {response.status_code} {text}")[:200]
    return PORT.sub("127.0.0.1:PORT", f"HTTP {response.status_code}: {text.strip()}")[:200]


@dataclass(frozen=True)
class Expected:
    """A listed failure: its named cause (a key of the list's `causes`), that cause's sentence, and the answer
    measured when it was listed."""

    cause: str
    why: str
    measured: str


def expected_failures() -> dict[str, dict[str, Expected]]:
    """Per target: test id -> its expected failure (tests/w3c/expected_failures.json: a `causes` table, one
    sentence per named cause, then per target each test's cause and measured answer).

    Raises:
        ValueError: an entry naming a cause the table does not have, or a cause no entry uses.
    """
    document = json.loads(EXPECTED_FAILURES.read_text(encoding="utf-8"))
    causes: dict[str, str] = document.pop("causes")
    found: dict[str, dict[str, Expected]] = {}
    used: set[str] = set()
    for target, entries in document.items():
        found[target] = {}
        for test, entry in entries.items():
            if entry["cause"] not in causes:
                raise ValueError(f"{target} {test}: no cause {entry['cause']!r} in the causes table")
            used.add(entry["cause"])
            found[target][test] = Expected(entry["cause"], causes[entry["cause"]], entry["measured"])
    if unused := set(causes) - used:
        raise ValueError(f"causes no test points to: {sorted(unused)}")
    return found
