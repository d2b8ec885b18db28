"""Federation both ways, with real and independent clients on loopback.

Being federated into: SPARQLWrapper and rdflib (SPARQLStore, and rdflib's own SERVICE client), an Oxigraph server
and Comunica query our /sparql, through a recording proxy that shows what each of them really sent (method, media
types, the bind-join shapes) and what it was answered.

Federating out: our server (embedded and rdflib engines) runs SERVICE to an allow-listed Oxigraph server holding
tests/e2e/peers/partner.ttl (queries/federated-partner-projects.rq against its golden result), and to endpoints
that fail in every way a remote endpoint does.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.plugins.sparql import CUSTOM_EVALS
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import GET, JSON, POST, POSTDIRECTLY, TURTLE, URLENCODED, XML, SPARQLWrapper

from service import names

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PARTNER_DATA = Path(__file__).resolve().parent / "peers" / "partner.ttl"
FEDERATED_QUERY = ROOT / "queries" / "federated-partner-projects.rq"
GOLDEN = ROOT / "tests" / "golden" / "federated-partner-projects.srj"
WRITTEN_ENDPOINT = "http://127.0.0.1:7878/query"  # the address the .rq file names (Oxigraph's default)
SERVICE_TIMEOUT = 1.0
RESULTS_TYPES = {"application/sparql-results+json", "application/sparql-results+xml"}

GK, ID = names.GK, names.ID
SECTION = ID + "section/"
REG = "https://example.org/project-register/"
PREFIXES = (
    f"PREFIX gk: <{GK}>\nPREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
    "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\nPREFIX dcterms: <http://purl.org/dc/terms/>\n"
    "PREFIX owl: <http://www.w3.org/2002/07/owl#>\nPREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>\n"
    f"PREFIX reg: <{REG}>\nPREFIX foaf: <http://xmlns.com/foaf/0.1/>\n"
)
# The partner's projects and the section handling each one's domain directly (see partner.ttl; big-data industry
# is handled only through its broader industrial development, and tourism by no section).
PROJECT_SECTIONS = {
    (REG + "metro-line-2", SECTION + "6"),
    (REG + "river-restoration", SECTION + "8"),
    (REG + "school-expansion", SECTION + "7"),
    (REG + "land-survey", SECTION + "6"),
}
# One bind join in the shapes federators send it: the same four rows each time.
BIND_JOINS = {
    "values": "SELECT ?s ?label WHERE { VALUES ?s { <%s1> <%s6> } ?s skos:prefLabel ?label }",
    "filter-union": "SELECT ?s ?label WHERE { { ?s skos:prefLabel ?label FILTER(?s = <%s1>) } "
    "UNION { ?s skos:prefLabel ?label FILTER(?s = <%s6>) } }",
    "filter-or": "SELECT ?s ?label WHERE { ?s skos:prefLabel ?label FILTER(?s = <%s1> || ?s = <%s6>) }",
}
FEDX_UNION = (
    "SELECT ?label_0 ?label_1 WHERE { { <%s1> skos:prefLabel ?label_0 } UNION { <%s6> skos:prefLabel ?label_1 } }"
)
EXPECTED_LABELS = {
    (SECTION + "1", "秘书一科"),
    (SECTION + "1", "Secretarial Section 1"),
    (SECTION + "6", "秘书六科"),
    (SECTION + "6", "Secretarial Section 6"),
}
PROPERTY_CHAINS = (
    PREFIXES + "SELECT ?chain ?first WHERE { gk:coHandledBy owl:propertyChainAxiom ?chain . ?chain rdf:first ?first }"
)


def bind_join(shape: str) -> str:
    """A bind-join query of BIND_JOINS with the section IRIs filled in."""
    return PREFIXES + BIND_JOINS[shape].replace("%s", SECTION)


def pairs(bindings: list[dict[str, Any]], *keys: str) -> set[tuple[str, ...]]:
    """The rows of SPARQL JSON (or Comunica) bindings as tuples of values."""
    return {tuple(row[k]["value"] for k in keys) for row in bindings}


# --- the peers -----------------------------------------------------------------------------------------------


class _Faulty(BaseHTTPRequestHandler):
    """An endpoint that fails the way remote endpoints do; `hits` counts requests per path."""

    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.hits[path] = self.hits.get(path, 0) + 1
        if path == "/slow":
            time.sleep(SERVICE_TIMEOUT + 2)
            with contextlib.suppress(OSError):  # the caller gave up long ago
                self._send(200, "application/sparql-results+json", b'{"head":{"vars":[]},"results":{"bindings":[]}}')
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/redirect-target")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/html":
            self._send(200, "text/html", b"<html><body>Welcome to our SPARQL page</body></html>")
        elif path == "/cut":
            self._send(200, "application/sparql-results+json", b'{"head":{"vars":["s"]},"results":{"bindings":[{"s":')
        else:
            self._send(500, "text/plain", b"internal failure")

    do_POST = do_GET

    def _send(self, status: int, media_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def faulty() -> Iterator[str]:
    """The base URL of an endpoint that is slow, redirects, answers HTML, cuts its answer off, or fails."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Faulty)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def peer(start_oxigraph):
    """An Oxigraph server holding the partner's project register in its default graph."""
    return start_oxigraph(data=PARTNER_DATA)


@pytest.fixture(scope="module")
def peer_seen(start_recorder, peer):
    """The recording proxy in front of the peer: our SERVICE calls go through it."""
    return start_recorder(peer.base)


@pytest.fixture(scope="module")
def allowed(peer_seen, faulty, free_port) -> dict[str, str]:
    """The endpoints our federating servers may call, by role."""
    return {
        "peer": peer_seen.url("/query"),
        "slow": faulty + "/slow",
        "redirect": faulty + "/redirect",
        "html": faulty + "/html",
        "cut": faulty + "/cut",
        "error": faulty + "/error",
        "refused": f"http://127.0.0.1:{free_port()}/sparql",
    }


@pytest.fixture(scope="module")
def into(start_server, start_recorder):
    """Our server (embedded engine, nothing allow-listed) behind a recording proxy: what clients federate into.

    The server's public URL is the proxy's, as an operator sets it behind a proxy (absolute URLs never come from
    the Host header)."""
    recorder = start_recorder("http://127.0.0.1:9")  # its target is set once the server runs
    recorder.target = start_server(public_url=recorder.base + "/").base
    return recorder


@pytest.fixture(scope="module", params=["embedded", "rdflib"])
def federating(request, start_server, allowed):
    """Our server on each engine, allowed to call every endpoint of `allowed`, with a short SERVICE time limit."""
    return start_server(engine=request.param, service_allow=tuple(allowed.values()), service_timeout=SERVICE_TIMEOUT)


def assert_labelled(recorder) -> None:
    """Every answer to a query carried its real media type: SPARQL results or RDF, never HTML or plain JSON."""
    for seen in recorder.queries():
        if seen.status == 200:
            media_type = seen.response_type.split(";")[0]
            assert media_type in RESULTS_TYPES | {"text/turtle", "application/n-triples"}, seen
        else:
            assert seen.response_type == "application/problem+json", seen


# --- being federated into: SPARQLWrapper ----------------------------------------------------------------------


def _wrapper(url: str, query: str, fmt: str, how: str) -> SPARQLWrapper:
    sparql = SPARQLWrapper(url)
    sparql.setQuery(query)
    sparql.setReturnFormat(fmt)
    if how == "GET":
        sparql.setMethod(GET)
    else:
        sparql.setMethod(POST)
        sparql.setRequestMethod(URLENCODED if how == "POST form" else POSTDIRECTLY)
    return sparql


@pytest.mark.parametrize("how", ["GET", "POST form", "POST direct"])
@pytest.mark.parametrize("shape", [*BIND_JOINS, "fedx-union"])
def test_sparqlwrapper_bind_joins(into, shape, how):
    query = PREFIXES + FEDX_UNION.replace("%s", SECTION) if shape == "fedx-union" else bind_join(shape)
    started = time.monotonic()
    result = _wrapper(into.url("/sparql"), query, JSON, how).query()
    elapsed = time.monotonic() - started
    assert result.response.headers["Content-Type"] == "application/sparql-results+json"
    bindings = result.convert()["results"]["bindings"]
    if shape == "fedx-union":  # FedX renames the variable per input row: ?label_0 is <…/1>'s, ?label_1 <…/6>'s
        rows = {
            (SECTION + ("1" if "label_0" in b else "6"), (b.get("label_0") or b["label_1"])["value"]) for b in bindings
        }
    else:
        rows = pairs(bindings, "s", "label")
    assert rows == EXPECTED_LABELS
    assert elapsed < 2, elapsed
    sent = into.queries()[-1]
    assert sent.method == how.split()[0]
    if how == "POST form":
        assert sent.content_type.startswith("application/x-www-form-urlencoded")
    elif how == "POST direct":
        assert sent.content_type.startswith("application/sparql-query")
    assert_labelled(into)


def test_sparqlwrapper_blank_nodes_in_every_format(into):
    bindings = _wrapper(into.url("/sparql"), PROPERTY_CHAINS, JSON, "GET").query().convert()["results"]["bindings"]
    assert len(bindings) == 2 and {b["chain"]["type"] for b in bindings} == {"bnode"}
    assert len({b["chain"]["value"] for b in bindings}) == 2  # two chains, two blank nodes
    assert {b["first"]["value"] for b in bindings} == {GK + "touchesDomain"}
    document = _wrapper(into.url("/sparql"), PROPERTY_CHAINS, XML, "POST form").query().convert()
    assert len(document.getElementsByTagName("bnode")) == 2
    construct = PREFIXES + (
        "CONSTRUCT { gk:coHandledBy owl:propertyChainAxiom ?chain . ?chain rdf:first ?first ; rdf:rest ?rest } "
        "WHERE { gk:coHandledBy owl:propertyChainAxiom ?chain . ?chain rdf:first ?first ; rdf:rest ?rest }"
    )
    graph = Graph().parse(
        data=_wrapper(into.url("/sparql"), construct, TURTLE, "GET").query().convert(), format="turtle"
    )
    chains = set(graph.objects(URIRef(GK + "coHandledBy"), URIRef("http://www.w3.org/2002/07/owl#propertyChainAxiom")))
    assert len(chains) == 2 and all(isinstance(c, BNode) for c in chains)
    assert_labelled(into)


# --- being federated into: rdflib --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "POST_FORM"])
@pytest.mark.parametrize("answer", ["xml", "json"])
def test_rdflib_sparqlstore(into, method, answer):
    graph = Graph(store=SPARQLStore(query_endpoint=into.url("/sparql"), method=method, returnFormat=answer))
    labels = set(graph.objects(URIRef(SECTION + "6"), URIRef("http://www.w3.org/2004/02/skos/core#prefLabel")))
    assert labels == {Literal("秘书六科", lang="zh"), Literal("Secretarial Section 6", lang="en")}
    rows = {(str(r[0]), str(r[1])) for r in graph.query(bind_join("values"))}
    assert rows == EXPECTED_LABELS
    chains = list(graph.query(PROPERTY_CHAINS))
    assert len(chains) == 2 and all(isinstance(row[0], BNode) for row in chains)
    assert {s.method for s in into.queries()[-3:]} == {"GET" if method == "GET" else "POST"}
    assert_labelled(into)


def test_rdflib_service_client_into_us(into, monkeypatch):
    # rdflib's own SERVICE client, not the evaluator our engines install in this process when a unit test ran
    # SERVICE through them. rdflib 7.6 prefixes every namespace it knows (some 30 PREFIX lines), so its request
    # is always over its 600-character GET limit: a POSTed form, with the bound variables as VALUES.
    monkeypatch.delitem(CUSTOM_EVALS, "guian-kg-service", raising=False)
    local = Graph().parse(PARTNER_DATA, format="turtle")
    into.seen.clear()
    query = PREFIXES + (
        "SELECT ?project ?section WHERE { ?project a reg:RegisteredProject ; dcterms:subject ?domain . "
        f"SERVICE <{into.url('/sparql')}> {{ ?section gk:handlesDomain ?domain ; a gk:SecretarialSection }} }}"
    )
    assert {(str(r[0]), str(r[1])) for r in local.query(query)} == PROJECT_SECTIONS
    sent = into.queries()
    assert len(sent) == 6  # one call per row of the local side
    assert all(s.method == "POST" and s.content_type.startswith("application/x-www-form-urlencoded") for s in sent)
    assert all("VALUES" in s.query for s in sent)
    assert_labelled(into)


# --- being federated into: Oxigraph server ---------------------------------------------------------------------


def _peer_select(peer, query: str) -> list[dict[str, Any]]:
    response = requests.post(
        peer.query, data={"query": query}, headers={"Accept": "application/sparql-results+json"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]["bindings"]


def test_oxigraph_server_services_into_us(peer, into):
    into.seen.clear()
    query = PREFIXES + (
        "SELECT ?project ?section WHERE { ?project a reg:RegisteredProject ; dcterms:subject ?domain . "
        f"SERVICE <{into.url('/sparql')}> {{ ?section gk:handlesDomain ?domain ; a gk:SecretarialSection }} }}"
    )
    assert pairs(_peer_select(peer, query), "project", "section") == PROJECT_SECTIONS
    (sent,) = into.queries()  # Oxigraph ships the bare pattern once and joins at home
    assert sent.method == "POST" and sent.content_type.startswith("application/sparql-query")
    assert "application/sparql-results+json" in sent.accept
    assert sent.response_type == "application/sparql-results+json"
    blank = (
        PREFIXES
        + f"SELECT ?chain ?first WHERE {{ SERVICE <{into.url('/sparql')}> {{ {PROPERTY_CHAINS.split('{', 1)[1]} }}"
    )
    rows = _peer_select(peer, blank)
    assert len(rows) == 2 and {r["chain"]["type"] for r in rows} == {"bnode"}
    silent = PREFIXES + (
        "SELECT ?project ?section WHERE { ?project a reg:RegisteredProject . "
        f"SERVICE SILENT <{into.url('/no-such-endpoint')}> {{ ?section a gk:SecretarialSection }} }}"
    )
    rows = _peer_select(peer, silent)
    assert len(rows) == 6 and not any("section" in r for r in rows)
    assert_labelled(into)


# --- being federated into: Comunica --------------------------------------------------------------------------


def test_comunica(comunica, into, peer):
    into.seen.clear()
    federation = PREFIXES + (
        "SELECT ?project ?section WHERE { ?project a reg:RegisteredProject ; dcterms:subject ?domain . "
        "?section gk:handlesDomain ?domain ; a gk:SecretarialSection . }"
    )
    service = PREFIXES + (
        "SELECT ?project ?section WHERE { ?project a reg:RegisteredProject ; dcterms:subject ?domain . "
        f"SERVICE <{into.url('/sparql')}> {{ ?section gk:handlesDomain ?domain ; a gk:SecretarialSection }} }}"
    )
    padding = " && ".join(f'?label != "not a label {n}"' for n in range(40))
    long = bind_join("values").replace("?s skos:prefLabel ?label }", f"?s skos:prefLabel ?label FILTER({padding}) }}")
    ours = {"value": into.url("/sparql")}  # no type: Comunica finds our endpoint from the service description
    results = comunica(
        [
            {"name": "federation", "query": federation, "sources": [ours, {"type": "sparql", "value": peer.query}]},
            {"name": "service", "query": service, "sources": [{"turtle": str(PARTNER_DATA)}]},
            {"name": "blank nodes", "query": PROPERTY_CHAINS, "sources": [ours]},
            {"name": "long", "query": long, "sources": [ours]},
        ]
    )
    assert pairs(results["federation"], "project", "section") == PROJECT_SECTIONS
    assert pairs(results["service"], "project", "section") == PROJECT_SECTIONS
    chains = results["blank nodes"]
    assert len(chains) == 2 and {r["chain"]["type"] for r in chains} == {"bnode"}
    assert pairs(results["long"], "s", "label") == EXPECTED_LABELS
    description = [s for s in into.seen if s.method == "GET" and not s.query]
    assert description and description[0].status == 200
    assert description[0].response_type.split(";")[0] in ("application/n-quads", "application/trig", "text/turtle")
    sent = into.queries()
    assert any("VALUES" in s.query for s in sent), "Comunica never bind-joined through VALUES"
    assert {s.method for s in sent} == {"GET", "POST"}, "the long query should have been POSTed"
    assert all("application/sparql-results+json" in s.accept for s in sent if s.query)
    assert_labelled(into)


# --- media types and discovery ---------------------------------------------------------------------------------

CLIENT_ACCEPTS = {
    "Virtuoso SERVICE": ("application/sparql-results+xml", "application/sparql-results+xml"),
    "QLever SERVICE": ("application/sparql-results+json", "application/sparql-results+json"),
    "Jena ARQ": (
        "application/sparql-results+json, application/sparql-results+xml;q=0.9, text/tab-separated-values;q=0.7, "
        "text/csv;q=0.5, application/json;q=0.2, application/xml;q=0.2, */*;q=0.1",
        "application/sparql-results+json",
    ),
    "RDF4J / GraphDB": (
        "application/sparql-results+xml, application/sparql-results+json;q=0.8, text/csv;q=0.7, */*;q=0.1",
        "application/sparql-results+xml",
    ),
    "Comunica": ("application/sparql-results+json;q=1.0,application/sparql-results+xml;q=0.7", None),
    "Oxigraph SERVICE": ("application/sparql-results+json, application/sparql-results+xml", None),
    "SPARQLWrapper JSON": (
        "application/sparql-results+json,application/json,text/javascript,application/javascript",
        None,
    ),
    "plain JSON only": ("application/json", None),
    "old Java clients": ("*", None),
    "anything": ("*/*", None),
    "no Accept": (None, None),
}


@pytest.mark.parametrize("client", CLIENT_ACCEPTS)
@pytest.mark.parametrize(
    "form", ["SELECT ?s WHERE { ?s a gk:SecretarialSection }", "ASK { ?s a gk:SecretarialSection }"]
)
def test_answers_carry_the_media_type_each_client_expects(into, client, form):
    accept, expected = CLIENT_ACCEPTS[client]
    headers = {"Accept": accept} if accept is not None else {}
    response = requests.get(into.url("/sparql"), params={"query": PREFIXES + form}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == (expected or "application/sparql-results+json")


def test_void_and_service_description_for_planners(into):
    response = requests.get(into.url("/.well-known/void"), headers={"Accept": "text/turtle"}, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/turtle")
    void = Graph().parse(data=response.text, format="turtle")
    void_ns = "http://rdfs.org/ns/void#"
    dataset = next(void.subjects(URIRef(void_ns + "subset"), None))
    assert void.value(dataset, URIRef(void_ns + "sparqlEndpoint")) == URIRef(into.url("/sparql"))  # as reached
    assert int(void.value(dataset, URIRef(void_ns + "triples"))) > 1000
    partitions = {
        void.value(p, URIRef(void_ns + "class")): p for p in void.objects(dataset, URIRef(void_ns + "classPartition"))
    }
    assert int(void.value(partitions[URIRef(GK + "SecretarialSection")], URIRef(void_ns + "entities"))) == 9
    assert any(void.objects(dataset, URIRef(void_ns + "propertyPartition")))
    # the service description in the format Comunica asks for first, with the same statistics
    response = requests.get(
        into.url("/sparql"), headers={"Accept": "application/n-quads,text/turtle;q=0.6"}, timeout=30
    )
    assert response.headers["Content-Type"] == "application/n-quads"
    sd = Graph().parse(data=response.text, format="nt")
    sd_ns = "http://www.w3.org/ns/sparql-service-description#"
    service = sd.value(predicate=URIRef(sd_ns + "endpoint"), object=URIRef(into.url("/sparql")))
    default = sd.value(service, URIRef(sd_ns + "defaultDataset"))
    assert int(sd.value(default, URIRef(void_ns + "triples"))) == int(void.value(dataset, URIRef(void_ns + "triples")))


# --- federating out ---------------------------------------------------------------------------------------------


def run(server, query: str, **params: str) -> requests.Response:
    """GET /sparql on one of our servers."""
    return requests.get(server.sparql, params={"query": query, **params}, timeout=30)


def _canonical(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


def test_federated_named_query_matches_its_golden_result(federating, allowed, peer_seen):
    text = FEDERATED_QUERY.read_text(encoding="utf-8")
    assert WRITTEN_ENDPOINT in text
    peer_seen.seen.clear()
    response = run(federating, text.replace(WRITTEN_ENDPOINT, allowed["peer"]))
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/sparql-results+json"
    rows = response.json()["results"]["bindings"]
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["results"]["bindings"]
    assert sorted(map(_canonical, rows)) == sorted(map(_canonical, golden))
    order = [(r["project"]["value"], int(r["notation"]["value"]), r["via"]["value"]) for r in rows]
    assert order == sorted(order)
    # a bind join: every call carried the domains found here as VALUES
    calls = peer_seen.queries()
    assert calls and all("VALUES (?domain)" in c.query for c in calls), [c.query[:300] for c in calls]
    assert all(c.status == 200 for c in calls)


def test_two_service_blocks_and_remote_blank_nodes(federating, allowed):
    peer = allowed["peer"]
    query = PREFIXES + (
        f"SELECT ?project ?label ?contact ?name WHERE {{ SERVICE <{peer}> {{ ?project a reg:RegisteredProject }} "
        f"SERVICE <{peer}> {{ ?project rdfs:label ?label FILTER(LANG(?label) = 'en') }} "
        f"OPTIONAL {{ SERVICE <{peer}> {{ ?project reg:contact ?contact . ?contact foaf:name ?name }} }} }}"
    )
    response = run(federating, query)
    assert response.status_code == 200, response.text
    rows = response.json()["results"]["bindings"]
    assert len(rows) == 6
    with_contact = [r for r in rows if "contact" in r]
    assert len(with_contact) == 1 and with_contact[0]["contact"]["type"] == "bnode"
    assert with_contact[0]["name"]["value"] == "Metro line 2 project office"


def test_service_to_an_endpoint_not_allowed_is_403_without_traffic(federating, listener, assert_problem_json):
    url, seen = listener
    response = run(federating, f"SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}")
    problem = assert_problem_json(response, 403, "service-forbidden")
    assert problem["endpoint"] == url
    assert seen == []


@pytest.mark.parametrize("role", ["error", "html", "cut", "redirect", "refused"])
def test_service_failure_is_502_naming_the_endpoint(federating, allowed, role, assert_problem_json):
    endpoint = allowed[role]
    hits_before = dict(_Faulty.hits)
    query = PREFIXES + f"SELECT ?s ?x WHERE {{ ?s a gk:SecretarialSection SERVICE <{endpoint}> {{ ?s ?p ?x }} }}"
    problem = assert_problem_json(run(federating, query), 502, "service-error")
    assert problem["endpoint"] == endpoint and endpoint in problem["detail"]
    if role == "redirect":
        assert "redirect" in problem["detail"]
        assert _Faulty.hits.get("/redirect-target", 0) == hits_before.get("/redirect-target", 0), "followed a redirect"


def test_service_has_its_own_time_limit(federating, allowed, assert_problem_json):
    started = time.monotonic()
    query = PREFIXES + f"SELECT ?s ?x WHERE {{ ?s a gk:SecretarialSection SERVICE <{allowed['slow']}> {{ ?s ?p ?x }} }}"
    problem = assert_problem_json(run(federating, query), 502, "service-error")
    elapsed = time.monotonic() - started
    assert problem["endpoint"] == allowed["slow"] and problem.get("reason") == "timeout"
    assert elapsed < SERVICE_TIMEOUT + 1.5, elapsed


@pytest.mark.parametrize("role", ["error", "slow", "refused", "html"])
def test_service_silent_yields_the_empty_solution(federating, allowed, role):
    query = PREFIXES + (
        f"SELECT ?s ?x WHERE {{ ?s a gk:SecretarialSection SERVICE SILENT <{allowed[role]}> {{ ?s ?p ?x }} }}"
    )
    response = run(federating, query)
    assert response.status_code == 200, response.text
    rows = response.json()["results"]["bindings"]
    assert len(rows) == 9 and not any("x" in r for r in rows)


@pytest.fixture(name="assert_problem_json")
def _assert_problem_json(assert_problem) -> Callable[..., dict[str, Any]]:
    """tests/conftest.py's assert_problem, for `requests` responses."""

    class Adapted:
        def __init__(self, response: requests.Response) -> None:
            self.status_code = response.status_code
            self.mimetype = response.headers.get("Content-Type", "").split(";")[0]
            self.headers = response.headers
            self._text = response.text

        def get_data(self, as_text: bool = False) -> str:
            return self._text

    return lambda response, status, code: assert_problem(Adapted(response), status, code)
