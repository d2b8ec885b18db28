"""The remote store as the source of truth (`--engine remote`), on Oxigraph server and on Debian's Virtuoso.

A write through us reaches the store with the inferences it changes, and the next request sees it everywhere (a
SPARQL query, the resource page, the explanation, the named query's vocabulary); a write made in the store
behind our back is taken in by the probe, reasoned over, and its inferences written back to the store; deletes
retract; a write the store refuses is undone and answered 502.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from service import names
from tests.e2e.test_remote_engine import push

pytestmark = pytest.mark.e2e

TOKEN = {"Authorization": "Bearer remote-s3cret"}
CO_HANDLED = f"<{names.GK}coHandledBy>"
LAND = f"<{names.ID}domain/land-management>"
SECTION_6 = f"{names.ID}section/6"  # the section whose domain is land management (土地管理)
FOLLOW_S = 60.0  # how long a test waits for a change behind our back (the probe runs every 0.2 s here)


@dataclass
class Store:
    """A running remote store loaded by `guian-kg push`: where to query it and where to update it."""

    name: str
    query: str
    update: str


@pytest.fixture(scope="module", params=["oxigraph", "virtuoso"])
def store(request: pytest.FixtureRequest, e2e_cache: Path) -> Store:
    if request.param == "oxigraph":
        peer = request.getfixturevalue("start_oxigraph")(union_default_graph=True)
        found = Store("oxigraph", peer.query, peer.update)
    else:
        peer = request.getfixturevalue("virtuoso")
        found = Store("virtuoso", peer.sparql, peer.sparql)
    done = push(found.update, e2e_cache, "--batch-size=1000")
    assert done.returncode == 0, done.stderr
    return found


@pytest.fixture(scope="module")
def make_remote_app(store: Store, e2e_cache: Path) -> Iterator[Callable[..., Flask]]:
    from service.web.app import create_app

    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        settings = {
            "engine": "remote",
            "remote_query": store.query,
            "remote_update": store.update,
            "update_token": TOKEN["Authorization"].split()[1],
            "remote_poll": "0.2",
            "cache_dir": str(e2e_cache),
            "public_url": "http://localhost/",
            **overrides,
        }
        app = create_app(settings)
        built.append(app)
        return app

    yield build
    for app in built:
        state = app.extensions["guian_kg"]
        state.mirror.stop()
        state.executor.close()


@pytest.fixture(scope="module")
def app(make_remote_app: Callable[..., Flask]) -> Flask:
    return make_remote_app()


def direct(store: Store, query: str) -> list[dict]:
    """A SELECT sent to the store itself (what any other client of the store sees; name the graphs in it)."""
    answer = requests.post(
        store.query, data={"query": query}, headers={"Accept": "application/sparql-results+json"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]["bindings"]


def behind_our_back(store: Store, update: str) -> None:
    answer = requests.post(
        store.update, data=update.encode(), headers={"Content-Type": "application/sparql-update"}, timeout=30
    )
    assert answer.status_code in (200, 204), answer.text


def project(slug: str, graph: str, verb: str = "INSERT") -> str:
    return (
        f"{verb} DATA {{ GRAPH <{graph}> {{ <{names.ID}project/{slug}> a <{names.GK}Project> ; "
        f'<{names.GK}touchesDomain> {LAND} ; <http://www.w3.org/2000/01/rdf-schema#label> "{slug}"@en . }} }}'
    )


def co_handlers(client: Any, slug: str) -> set[str]:
    query = f"SELECT ?s WHERE {{ <{names.ID}project/{slug}> {CO_HANDLED} ?s }}"
    answer = client.get("/sparql", query_string={"query": query})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {row["s"]["value"] for row in answer.json["results"]["bindings"]}


def stored_co_handlers(store: Store, slug: str) -> set[str]:
    query = f"SELECT ?s WHERE {{ GRAPH <{names.INFERRED_GRAPH}> {{ <{names.ID}project/{slug}> {CO_HANDLED} ?s }} }}"
    return {row["s"]["value"] for row in direct(store, query)}


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + FOLLOW_S
    while not check():
        assert time.monotonic() < deadline, f"not within {FOLLOW_S} s: {what}"
        time.sleep(0.1)


def test_a_write_through_us_is_reasoned_and_served_at_once(app: Flask, store: Store) -> None:
    client = app.test_client()
    slug, graph = f"p-{uuid.uuid4().hex[:8]}", f"{names.GRAPH}curated/{uuid.uuid4().hex[:8]}"
    written = client.post("/update", data={"update": project(slug, graph)}, headers=TOKEN)
    assert written.status_code == 200, written.get_data(as_text=True)
    assert written.json["inserted"] == 3
    # the next request, on every surface
    assert SECTION_6 in co_handlers(client, slug)
    assert SECTION_6 in stored_co_handlers(store, slug)  # the store itself holds the inference
    page = client.get(f"/id/project/{slug}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and slug in page.get_data(as_text=True)
    explained = client.get(
        "/api/explain",
        query_string={"s": f"<{names.ID}project/{slug}>", "p": CO_HANDLED, "o": f"<{SECTION_6}>", "format": "json"},
    )
    assert explained.status_code == 200, explained.get_data(as_text=True)
    named = client.get("/api/queries/project-co-handling", query_string={"project": slug})
    assert named.status_code == 200, named.get_data(as_text=True)
    assert SECTION_6 in {row["section"]["value"] for row in named.json["results"]["bindings"]}
    # a delete through us retracts it, in the store too
    deleted = client.post("/update", data={"update": project(slug, graph, "DELETE")}, headers=TOKEN)
    assert deleted.status_code == 200 and deleted.json["deleted"] == 3
    assert co_handlers(client, slug) == set()
    assert stored_co_handlers(store, slug) == set()
    assert client.get(f"/id/project/{slug}", headers={"Accept": "text/html"}).status_code == 404


def test_a_write_behind_our_back_is_taken_in(app: Flask, store: Store) -> None:
    client = app.test_client()
    slug, graph = f"b-{uuid.uuid4().hex[:8]}", f"{names.GRAPH}curated/{uuid.uuid4().hex[:8]}"
    behind_our_back(store, project(slug, graph))
    eventually(lambda: SECTION_6 in co_handlers(client, slug), "the inference through us")
    assert SECTION_6 in stored_co_handlers(store, slug)  # we wrote the inference into the store
    assert client.get(f"/id/project/{slug}", headers={"Accept": "text/html"}).status_code == 200
    named = client.get("/api/queries/project-co-handling", query_string={"project": slug})
    assert named.status_code == 200, named.get_data(as_text=True)
    behind_our_back(store, project(slug, graph, "DELETE"))
    eventually(lambda: co_handlers(client, slug) == set(), "the retraction through us")
    assert stored_co_handlers(store, slug) == set()
    assert client.get(f"/id/project/{slug}", headers={"Accept": "text/html"}).status_code == 404


def test_a_second_instance_sees_the_first_ones_writes(app: Flask, make_remote_app, store: Store, tmp_path) -> None:
    """Two deployments over one store, each with its own mirror: a write through one reaches the other."""
    other = make_remote_app(store_dir=str(tmp_path / "other")).test_client()
    slug, graph = f"o-{uuid.uuid4().hex[:8]}", f"{names.GRAPH}curated/{uuid.uuid4().hex[:8]}"
    assert app.test_client().post("/update", data={"update": project(slug, graph)}, headers=TOKEN).status_code == 200
    eventually(lambda: SECTION_6 in co_handlers(other, slug), "the other instance's inference")
    assert other.post("/update", data={"update": project(slug, graph, "DELETE")}, headers=TOKEN).status_code == 200
    eventually(lambda: co_handlers(app.test_client(), slug) == set(), "the first instance's retraction")


def test_a_write_the_store_refuses_is_undone(make_remote_app, store: Store, tmp_path) -> None:
    refusing = store.query.rsplit("/", 1)[0] + "/no-such-endpoint"
    app = make_remote_app(store_dir=str(tmp_path / "refused"), remote_update=refusing, remote_poll="0")
    client = app.test_client()
    slug, graph = f"r-{uuid.uuid4().hex[:8]}", f"{names.GRAPH}curated/{uuid.uuid4().hex[:8]}"
    refused = client.post("/update", data={"update": project(slug, graph)}, headers=TOKEN)
    assert refused.status_code == 502 and refused.json["code"] == "service-error", refused.get_data(as_text=True)
    assert co_handlers(client, slug) == set()
    assert client.get(f"/id/project/{slug}", headers={"Accept": "text/html"}).status_code == 404
    assert stored_co_handlers(store, slug) == set()
    lines, _ = app.extensions["guian_kg"].mirror.journal.lines_at()
    assert not any(slug in line for line in lines)  # the journal holds what the store holds: not the write


def test_blank_nodes_written_through_us_stay_joined(app: Flask, store: Store) -> None:
    """A DELETE cannot name a blank node and an INSERT makes new ones: such graphs are replaced whole, then read
    back, so the mirror holds the store's own labels and a later delete finds them."""
    client = app.test_client()
    graph = f"{names.GRAPH}curated/{uuid.uuid4().hex[:8]}"
    note = f"note-{uuid.uuid4().hex[:8]}"
    subject = f"<{names.ID}project/major-industrial-project>"
    insert = (
        f"INSERT DATA {{ GRAPH <{graph}> {{ {subject} <{names.GK}note> _:n . "
        f'_:n <http://www.w3.org/2000/01/rdf-schema#label> "{note}" . }} }}'
    )
    assert client.post("/update", data={"update": insert}, headers=TOKEN).status_code == 200
    joined = (
        f"SELECT ?n WHERE {{ GRAPH <{graph}> {{ {subject} <{names.GK}note> ?n . "
        f'?n <http://www.w3.org/2000/01/rdf-schema#label> "{note}" }} }}'
    )
    answer = client.get("/sparql", query_string={"query": joined})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    rows = answer.json["results"]["bindings"]
    assert len(rows) == 1 and rows[0]["n"]["type"] == "bnode"
    assert len(direct(store, joined)) == 1
    delete = (
        f"DELETE WHERE {{ GRAPH <{graph}> {{ {subject} <{names.GK}note> ?n . "
        f"?n <http://www.w3.org/2000/01/rdf-schema#label> ?label }} }}"
    )
    removed = client.post("/update", data={"update": delete}, headers=TOKEN)
    assert removed.status_code == 200 and removed.json["deleted"] == 2, removed.get_data(as_text=True)
    count = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
    assert int(direct(store, count)[0]["n"]["value"]) == 0
    assert client.get("/sparql", query_string={"query": joined}).json["results"]["bindings"] == []


def test_the_store_never_holds_a_write_without_its_inferences(app: Flask, store: Store) -> None:
    """A write and the inferences it changes go to the store in one update request (one operation): a client
    reading the store meanwhile sees both or neither (Oxigraph: one transaction; Virtuoso: one statement)."""
    client = app.test_client()
    slug, graph = f"a-{uuid.uuid4().hex[:8]}", f"{names.GRAPH}curated/{uuid.uuid4().hex[:8]}"
    both = (
        f"SELECT ?d ?s WHERE {{ OPTIONAL {{ GRAPH <{graph}> {{ <{names.ID}project/{slug}> "
        f"<{names.GK}touchesDomain> ?d }} }} OPTIONAL {{ GRAPH <{names.INFERRED_GRAPH}> "
        f"{{ <{names.ID}project/{slug}> {CO_HANDLED} ?s }} }} }}"
    )
    seen: list[tuple[bool, bool]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            for row in direct(store, both) or [{}]:
                seen.append(("d" in row, "s" in row))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(5):
            for verb in ("INSERT", "DELETE"):
                answer = client.post("/update", data={"update": project(slug, graph, verb)}, headers=TOKEN)
                assert answer.status_code == 200, answer.get_data(as_text=True)
    finally:
        done.set()
        reader.join(30)
    assert seen
    assert all(asserted == inferred for asserted, inferred in seen), [s for s in seen if s[0] != s[1]][:5]
