"""Writes over HTTP: SPARQL 1.1 Update at /update, the Graph Store Protocol at /store, on both engines.

Every write goes to the app's journal (a temporary store folder when no --store-dir is given); the next request
waits until the process serves the version holding it (read-your-writes), so tests read their writes back at once.
"""

from __future__ import annotations

import json
import logging
import threading
from urllib.parse import quote

import pytest
from rdflib import Graph

from service import names
from service.data.snapshots import Snapshot

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UPDATE = "application/sparql-update"
GK = names.GK
PROJECT = names.ID + "project/written-by-a-test"
CLAIM = names.GRAPH + "claim/written-by-a-test"
INSERT_PROJECT = (
    f"PREFIX gk: <{GK}>\nINSERT DATA {{ GRAPH <{CLAIM}> {{ <{PROJECT}> a gk:Project ; "
    f"gk:touchesDomain <{names.ID}domain/land-management> }} }}"
)
CO_HANDLERS = f"SELECT ?s WHERE {{ <{PROJECT}> <{GK}coHandledBy> ?s }}"
TURTLE = b"@prefix ex: <http://example.org/> .\nex:a ex:p ex:b ; ex:q 1 .\n"
# The same two triples in every RDF format the service reads (quad formats: in the default graph of the document).
UPLOADS = {
    "text/turtle": TURTLE,
    "application/n-triples": b"<http://example.org/a> <http://example.org/p> <http://example.org/b> .\n"
    b'<http://example.org/a> <http://example.org/q> "1"^^<http://www.w3.org/2001/XMLSchema#integer> .\n',
    "application/ld+json": b'{"@id": "http://example.org/a", "http://example.org/p": {"@id": "http://example.org/b"},'
    b' "http://example.org/q": 1}',
    "application/rdf+xml": b'<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
    b' xmlns:ex="http://example.org/"><rdf:Description rdf:about="http://example.org/a">'
    b'<ex:p rdf:resource="http://example.org/b"/><ex:q rdf:datatype="http://www.w3.org/2001/XMLSchema#integer">1'
    b"</ex:q></rdf:Description></rdf:RDF>",
    "application/trig": TURTLE,
    "application/n-quads": b"<http://example.org/a> <http://example.org/p> <http://example.org/b> .\n"
    b'<http://example.org/a> <http://example.org/q> "1"^^<http://www.w3.org/2001/XMLSchema#integer> .\n',
}
# Malformed documents, and the line the error names.
BROKEN = {
    "text/turtle": (b"@prefix ex: <http://example.org/> .\nex:a ex:p .\n", 2),
    "application/n-triples": (b"<http://example.org/a> <http://example.org/p> <b> .\n", 1),
    "application/ld+json": (b'{"@id": "http://example.org/a", "http://example.org/p": [1, 2,}', 1),
    "application/rdf+xml": (
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n<rdf:Description>',
        2,
    ),
    "application/trig": (b"<http://example.org/a> <http://example.org/p> {", 1),
    "application/n-quads": (b"<http://example.org/a> <http://example.org/p> <http://example.org/b> <g> .\n", 1),
}


@pytest.fixture
def writable_each(make_app):
    """An app of each engine in turn that accepts writes with TOKEN (its journal in a temporary folder)."""
    return make_app(update_token=TOKEN, query_timeout=5.0)


@pytest.fixture
def embedded_app(cache_dir):
    """Factory of embedded-engine apps that accept writes (writing is the same whichever engine reads)."""
    from service.web.app import create_app

    built = []

    def build(**overrides):
        built.append(
            create_app({"cache_dir": str(cache_dir), "update_token": TOKEN, "query_timeout": 5.0, **overrides})
        )
        return built[-1]

    yield build
    for app in built:
        app.extensions["guian_kg"].executor.close()


@pytest.fixture
def writable(embedded_app):
    """An embedded-engine app that accepts writes with TOKEN."""
    return embedded_app()


def state(app):
    return app.extensions["guian_kg"]


def update(client, text: str, **params):
    return client.post("/update", data={"update": text, **params}, headers=AUTH)


def head_seq(app) -> int:
    return state(app).writer.store.head().seq


def select(client, query: str, **params) -> list[str]:
    response = client.get("/sparql", query_string={"query": query, **params})
    assert response.status_code == 200, response.get_data(as_text=True)
    return sorted(b[v]["value"] for b in response.json["results"]["bindings"] for v in b)


# --- writes become visible, with their inferences and a new version -------------------------------------------


def test_writes_become_visible_with_reasoning_and_a_new_version(writable_each):
    writable = writable_each
    client = writable.test_client()
    before = client.get("/sparql", headers={"Accept": "text/turtle"})
    old_version = state(writable).snapshot.version

    written = update(client, INSERT_PROJECT)
    assert written.status_code == 200 and written.json["inserted"] == 2 and written.json["seq"] == 1
    put = client.put(
        "/store", query_string={"graph": "http://example.org/g"}, data=TURTLE, headers=AUTH, content_type="text/turtle"
    )
    assert put.status_code == 201 and put.json["seq"] == 2
    assert put.headers["Data-Version"] == put.json["data_version"] != old_version
    # read-your-writes: the very next request sees the write and what it entails (it waits for the version)
    read = client.get("/sparql", query_string={"query": CO_HANDLERS})
    assert read.headers["Data-Version"] == put.json["data_version"]
    served = put.json["data_version"]
    assert client.get("/readyz").json["data_version"] == served
    # the closure follows the asserted data: land management is section 6's
    assert select(client, CO_HANDLERS) == [names.ID + "section/6"]
    assert select(client, CO_HANDLERS, infer="false") == []
    graph = client.get("/store", query_string={"graph": "http://example.org/g"}, headers={"Accept": "text/turtle"})
    assert len(Graph().parse(data=graph.data, format="turtle")) == 2
    # the ETag and the service description follow the version; a client's old ETag no longer matches
    after = client.get("/sparql", headers={"Accept": "text/turtle", "If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert served.encode() in after.data
    assert b"SPARQL11Update" in after.data


def test_a_dataset_served_from_disk_is_swapped_for_the_new_versions_store(embedded_app):
    app = embedded_app(memory_max_quads=0)  # every version on disk: its store built with the version
    client = app.test_client()
    old, old_executor = state(app).snapshot, state(app).executor
    assert old.disk_store is not None
    written = update(client, INSERT_PROJECT)
    assert written.status_code == 200
    assert select(client, CO_HANDLERS) == [names.ID + "section/6"]  # the next request: the new version
    served, new = written.json["data_version"], state(app).snapshot
    assert served == new.version != old.version
    assert new.disk_store is not None and new.disk_store.parent.name == new.version
    assert select(client, CO_HANDLERS) == [names.ID + "section/6"]
    assert select(client, CO_HANDLERS, infer="false") == []
    assert old_executor.closed


def test_a_request_keeps_the_version_it_started_with_and_the_old_executor_drains(writable_each):
    from service.engines.factory import engine_for
    from service.runtime.executor import QueryExecutor

    st = state(writable_each)
    with writable_each.test_request_context("/sparql"):
        snapshot, executor = st.snapshot, st.executor
        other = Snapshot("other-version", snapshot.nquads, snapshot.graphs, snapshot.inferred_graph, snapshot.base_iri)
        st.swap(other, QueryExecutor(st.settings, engine_for, snapshot))
        assert st.snapshot is snapshot and st.executor is executor  # pinned for this request
        assert not executor.closed  # still in use by this request
        st.release()  # the request ends
    assert executor.closed and st.snapshot is other


# --- the protocols ---------------------------------------------------------------------------------------


def test_update_in_every_protocol_form(writable):
    client = writable.test_client()
    g = "http://example.org/forms"
    assert update(client, f"INSERT DATA {{ GRAPH <{g}> {{ <urn:a> <urn:p> 1 }} }}").json["seq"] == 1
    direct = client.post(
        "/update", data=f"INSERT DATA {{ GRAPH <{g}> {{ <urn:a> <urn:p> 2 }} }}", headers=AUTH, content_type=UPDATE
    )
    assert direct.status_code == 200 and direct.json["seq"] == 2
    via_sparql = client.post(
        "/sparql", data={"update": f"DELETE DATA {{ GRAPH <{g}> {{ <urn:a> <urn:p> 1 }} }}"}, headers=AUTH
    )
    assert via_sparql.status_code == 200 and via_sparql.json["deleted"] == 1
    nothing = update(client, f"DELETE DATA {{ GRAPH <{g}> {{ <urn:a> <urn:p> 1 }} }}")
    assert nothing.json == {**nothing.json, "seq": 3, "changed": False}  # no change, no new version


def test_using_graph_uri_sets_the_where_dataset(writable):
    client = writable.test_client()
    source, target = "http://example.org/source", "http://example.org/target"
    update(client, f"INSERT DATA {{ GRAPH <{source}> {{ <urn:d> a <urn:Document> }} }}")
    text = f"INSERT {{ GRAPH <{target}> {{ ?s a <urn:Resource> }} }} WHERE {{ ?s a <urn:Document> }}"
    assert update(client, text).json["changed"] is False  # the default graph of an update's WHERE is empty
    assert update(client, text, **{"using-graph-uri": source}).json["inserted"] == 1


def test_graph_store_statuses(writable, assert_problem):
    client = writable.test_client()
    g = {"graph": "http://example.org/gsp"}
    assert (
        client.put("/store", query_string=g, data=TURTLE, headers=AUTH, content_type="text/turtle").status_code == 201
    )
    replaced = client.put(
        "/store", query_string=g, data=b"<urn:x> <urn:y> <urn:z> .", headers=AUTH, content_type="text/turtle"
    )
    assert replaced.status_code == 200 and (replaced.json["deleted"], replaced.json["inserted"]) == (2, 1)
    merged = client.post("/store", query_string=g, data=TURTLE, headers=AUTH, content_type="text/turtle")
    assert merged.status_code == 200 and merged.json["inserted"] == 2
    assert client.delete("/store", query_string=g, headers=AUTH).json["deleted"] == 3
    assert_problem(client.delete("/store", query_string=g, headers=AUTH), 404, "not-found")
    minted = client.post("/store", data=TURTLE, headers=AUTH, content_type="text/turtle")
    assert minted.status_code == 201 and "graph=" in minted.headers["Location"]
    quads = b"<urn:a> <urn:p> <urn:o> <http://example.org/q1> .\n<urn:a> <urn:p> <urn:o> <http://example.org/q2> .\n"
    added = client.post("/store", data=quads, headers=AUTH, content_type="application/n-quads")
    assert added.status_code == 200 and added.json["inserted"] == 2
    for method in ("PUT", "POST", "DELETE"):
        response = client.open("/store?default", method=method, data=TURTLE, headers=AUTH, content_type="text/turtle")
        assert_problem(response, 403, "read-only-graph")
    inferred = {"graph": names.INFERRED_GRAPH}
    assert_problem(
        client.put("/store", query_string=inferred, data=TURTLE, headers=AUTH, content_type="text/turtle"),
        403,
        "read-only-graph",
    )
    assert_problem(client.delete("/store", headers=AUTH), 400, "bad-request")
    assert_problem(
        client.put(
            "/store", query_string={"graph": "not an iri"}, data=TURTLE, headers=AUTH, content_type="text/turtle"
        ),
        400,
        "invalid-parameter",
    )


@pytest.mark.parametrize("media_type", list(UPLOADS))
def test_every_rdf_format_uploads(writable, media_type):
    response = writable.test_client().put(
        "/store",
        query_string={"graph": "http://example.org/upload"},
        data=UPLOADS[media_type],
        headers=AUTH,
        content_type=media_type,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["inserted"] == 2


@pytest.mark.parametrize("media_type", list(BROKEN))
def test_malformed_rdf_is_400_with_its_position_and_changes_nothing(writable, assert_problem, media_type):
    body, line = BROKEN[media_type]
    client = writable.test_client()
    response = client.put(
        "/store", query_string={"graph": "http://example.org/broken"}, data=body, headers=AUTH, content_type=media_type
    )
    problem = assert_problem(response, 400, "rdf-syntax")
    assert problem["line"] == line and problem["column"] >= 1
    assert head_seq(writable) == 0


def test_upload_limits_and_media_types(embedded_app, assert_problem):
    app = embedded_app(max_request_bytes=2000)
    client = app.test_client()
    g = {"graph": "http://example.org/limits"}
    big = b"<urn:a> <urn:p> <urn:o> .\n" * 100
    assert_problem(
        client.put("/store", query_string=g, data=big, headers=AUTH, content_type="text/turtle"),
        413,
        "payload-too-large",
    )
    assert_problem(client.post("/update", data={"update": "#" * 3000}, headers=AUTH), 413, "payload-too-large")
    for media_type in ("text/html", "application/json", "text/turtle; charset=utf-16", None):
        response = client.put("/store", query_string=g, data=TURTLE, headers=AUTH, content_type=media_type)
        assert_problem(response, 415, "unsupported-media-type")
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>'
    )
    assert_problem(
        client.put("/store", query_string=g, data=bomb, headers=AUTH, content_type="application/rdf+xml"),
        400,
        "rdf-syntax",
    )
    assert head_seq(app) == 0


def test_refused_updates(writable, assert_problem, listener):
    url, seen = listener
    client = writable.test_client()
    problem = assert_problem(
        update(client, f"LOAD <{url}data.ttl> INTO GRAPH <http://example.org/x>"), 403, "load-forbidden"
    )
    assert problem["line"] == 1
    # the grammar's refusal wins over LOAD's (W3C syntax-update-bad-01, -07: no IRI, no separator)
    assert_problem(update(client, "LOAD ;"), 400, "update-syntax")
    bad = assert_problem(update(client, f"CREATE GRAPH <urn:g>\nLOAD <{url}> INTO GRAPH <urn:g>"), 400, "update-syntax")
    assert bad["line"] == 2
    assert_problem(
        update(client, f"INSERT {{ GRAPH <urn:g> {{ ?s ?p ?o }} }} WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}"),
        403,
        "service-forbidden",
    )
    assert seen == []  # nothing was fetched
    assert_problem(update(client, "INSERT DATA { <urn:a> <urn:b> <urn:c> }"), 403, "read-only-graph")
    assert_problem(
        update(client, f"INSERT DATA {{ GRAPH <{names.INFERRED_GRAPH}> {{ <urn:a> <urn:b> <urn:c> }} }}"),
        403,
        "read-only-graph",
    )
    syntax = assert_problem(
        update(client, "INSERT DATA {\n GRAPH <urn:g> { <urn:a> <urn:b> }\n}"), 400, "update-syntax"
    )
    assert (syntax["line"], syntax["column"]) == (2, 34)
    assert_problem(update(client, "SELECT * WHERE { ?s ?p ?o }"), 400, "update-syntax")
    assert_problem(update(client, "DROP GRAPH <http://example.org/none>"), 400, "update-failed")
    conflict = "WITH <urn:g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }"
    assert_problem(update(client, conflict, **{"using-graph-uri": "urn:g1"}), 400, "bad-request")
    assert head_seq(writable) == 0


# --- who may write -------------------------------------------------------------------------------------------


def test_writes_need_the_token(writable, client, assert_problem):
    assert_problem(client.post("/update", data={"update": "CLEAR ALL"}), 403, "read-only")
    assert_problem(client.put("/store?graph=urn:g", data=TURTLE, content_type="text/turtle"), 403, "read-only")
    description = client.get("/sparql", headers={"Accept": "text/turtle"}).data
    assert b"SPARQL11Update" not in description and b"Read-only" in description
    tokenless = writable.test_client()
    for headers in (
        {},
        {"Authorization": "Bearer " + TOKEN[:-1]},
        {"Authorization": TOKEN},
        {"Authorization": "Basic " + TOKEN},
    ):
        response = tokenless.post("/update", data={"update": "CLEAR ALL"}, headers=headers)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(tokenless.post(f"/update?access_token={TOKEN}", data={"update": "CLEAR ALL"}), 401, "unauthorized")
    assert head_seq(writable) == 0


def test_cors_never_carries_credentials(writable):
    client = writable.test_client()
    preflight = client.open(
        "/update",
        method="OPTIONS",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert "authorization" not in preflight.headers.get("Access-Control-Allow-Headers", "").lower()
    assert "PUT" not in preflight.headers.get("Access-Control-Allow-Methods", "")
    for response in (preflight, update(client, "CLEAR SILENT GRAPH <urn:none>"), client.get("/sparql")):
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_every_write_is_audited(writable, caplog):
    client = writable.test_client()
    with caplog.at_level(logging.INFO, logger="guian_kg.audit"):
        done = update(client, "INSERT DATA { GRAPH <http://example.org/audit> { <urn:a> <urn:b> 1 } }")
        client.post("/update", data={"update": "CLEAR ALL"}, headers={"Authorization": "Bearer nope"})
        update(client, "INSERT DATA { <urn:a> <urn:b> 1 }")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "guian_kg.audit"]
    assert [(line["event"], line["status"]) for line in lines] == [
        ("write", 200),
        ("write-refused", 401),
        ("write", 403),
    ]
    first = lines[0]
    assert first["op"] == "update" and first["seq"] == 1 and first["data_version"] == done.json["data_version"]
    assert first["who"]["remote"] == "127.0.0.1" and first["who"]["request_id"]
    assert TOKEN not in json.dumps(lines)


# --- request limits ---------------------------------------------------------------------------------------


def test_long_urls_are_414(client, assert_problem):
    assert_problem(client.get("/sparql", query_string={"query": "ASK {}" + " " * 20000}), 414, "uri-too-long")


def test_a_slow_request_body_is_408(embedded_app, assert_problem):
    writable = embedded_app(body_seconds=0.3)
    released = threading.Event()

    class Trickle:
        """A 100-byte body that never arrives (werkzeug measures it by seeking)."""

        position = 0

        def read(self, size: int = -1) -> bytes:
            released.wait(5)
            return b""

        def tell(self) -> int:
            return self.position

        def seek(self, offset: int, whence: int = 0) -> int:
            self.position = 100 if whence == 2 else offset
            return self.position

    response = writable.test_client().post("/update", input_stream=Trickle(), content_type=UPDATE, headers=AUTH)
    released.set()
    problem = assert_problem(response, 408, "request-timeout")
    assert "0.3 s" in problem["detail"]


def test_queries_nested_too_deep_are_400(client, assert_problem):
    deep = "SELECT * WHERE " + "{" * 3000 + "}" * 3000
    assert_problem(client.post("/sparql", data=deep, content_type="application/sparql-query"), 400, "query-syntax")
    chain = "SELECT * WHERE { " + " . ".join(["?s ?p ?o"] * 5000) + " }"
    assert_problem(client.post("/sparql", data=chain, content_type="application/sparql-query"), 400, "query-syntax")
    path = quote("SELECT * WHERE { ?s " + "/".join(["<urn:p>"] * 5000) + " ?o }")
    assert_problem(
        client.post("/sparql", data="query=" + path, content_type="application/x-www-form-urlencoded"),
        400,
        "query-syntax",
    )


def test_a_bulk_upload_is_one_version_and_readable_at_once(embedded_app):
    """20,000 triples by one Graph Store PUT (a body limit raised for it): one journal position, one version, all
    of them in the next read."""
    writable = embedded_app(max_request_bytes=8 * 2**20)
    client = writable.test_client()
    body = "".join(f'<http://example.org/bulk/{i}> <http://example.org/p> "{i}" .\n' for i in range(20_000))
    put = client.put(
        "/store",
        query_string={"graph": "http://example.org/bulk"},
        data=body.encode(),
        headers=AUTH,
        content_type="application/n-triples",
    )
    assert put.status_code == 201, put.get_data(as_text=True)
    assert put.json["seq"] == head_seq(writable) == 1 and put.json["inserted"] == 20_000
    count = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <http://example.org/bulk> { ?s ?p ?o } }"
    read = client.get("/sparql", query_string={"query": count})
    assert read.headers["Data-Version"] == put.json["data_version"]
    assert read.json["results"]["bindings"][0]["n"]["value"] == "20000"
