"""Issue 20's small ones: http(s)-only links, spreadsheet-safe downloads, problem details without paths, absolute
URLs from the public URL, setting errors, IRI-aware graph checks, JSON-LD that yields nothing."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph, URIRef

from service.config import load_settings
from service.errors import ConfigError
from service.names import linkable
from service.pages.labels import Labeller
from service.sparql.formats import spreadsheet_safe
from service.sparql.update_lint import comparable_iri, is_internal_graph

TOKEN = "small-ones-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FORMULAS = 'SELECT ?x WHERE { VALUES ?x { "=HYPERLINK(\\"http://e.example/\\",\\"x\\")" "@SUM(1)" "-2" "plain" } }'


@pytest.mark.parametrize("iri", ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>", "urn:x:y"])
def test_only_http_iris_become_links(iri: str) -> None:
    assert not linkable(iri)
    assert Labeller("en", "https://w3id.org/guian-kg/").link(iri)["href"] is None


def test_http_iris_and_local_pages_are_links() -> None:
    labeller = Labeller("en", "https://w3id.org/guian-kg/")
    assert labeller.link("https://example.org/x")["href"] == "https://example.org/x"
    assert labeller.link("https://w3id.org/guian-kg/id/section/6")["href"] == "/id/section/6"


def test_ui_downloads_are_formula_safe_attachments_and_protocol_csv_stays_exact(make_app) -> None:
    client = make_app().test_client()
    exact = client.get("/sparql", query_string={"query": FORMULAS, "format": "csv"})
    assert exact.status_code == 200
    assert "Content-Disposition" not in exact.headers
    rows = list(csv.reader(io.StringIO(exact.get_data(as_text=True))))
    assert ['=HYPERLINK("http://e.example/","x")'] in rows  # the protocol's CSV: the value as it is
    for key in ("csv", "tsv"):
        download = client.get("/sparql", query_string={"query": FORMULAS, "format": key, "download": "spreadsheet"})
        assert download.status_code == 200
        assert download.headers["Content-Disposition"] == f'attachment; filename="results.{key}"'
        text = download.get_data(as_text=True)
        assert "'=HYPERLINK" in text and "'@SUM" in text
        assert "'-2" not in text  # numbers stay numbers
        assert "\n=" not in text and '\n"=' not in text and "\t=" not in text


def test_spreadsheet_safe_tsv_looks_inside_quoted_literals() -> None:
    body = b'?x\n"=1+1"\n"ok"\n-3\n'
    assert spreadsheet_safe(body, "tsv").decode() == '?x\n"\'=1+1"\n"ok"\n-3\n'


def test_absolute_urls_come_from_the_public_url_not_host(make_app) -> None:
    client = make_app(public_url="https://kg.example.org/base/").test_client()
    headers = {"Host": "evil.example", "Accept": "text/turtle"}
    description = client.get("/sparql", headers=headers)
    graph = Graph().parse(data=description.get_data(as_text=True), format="turtle")
    endpoints = {
        str(o) for o in graph.objects(None, URIRef("http://www.w3.org/ns/sparql-service-description#endpoint"))
    }
    assert endpoints == {"https://kg.example.org/base/sparql"}
    openapi = client.get("/api/openapi.json", headers={"Host": "evil.example"}).get_json()
    assert "evil.example" not in json.dumps(openapi)
    assert any(server["url"].startswith("https://kg.example.org/base") for server in openapi["servers"])
    listing = client.get("/api/queries", headers={"Host": "evil.example"}).get_data(as_text=True)
    assert "evil.example" not in listing and "https://kg.example.org/base/api/queries/" in listing


def test_public_url_defaults_to_the_listening_address(make_app) -> None:
    client = make_app(public_url=None, host="127.0.0.1", port=8123).test_client()
    description = client.get("/sparql", headers={"Host": "evil.example", "Accept": "text/turtle"})
    text = description.get_data(as_text=True)
    assert "evil.example" not in text and "http://127.0.0.1:8123/sparql" in text


def test_storage_problems_show_no_paths(make_app, assert_problem, tmp_path: Path) -> None:
    app = make_app(update_token=TOKEN, store_dir=str(tmp_path / "store"))
    (tmp_path / "store" / "MANIFEST").write_text("not json")
    response = app.test_client().post(
        "/update",
        data=b"INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> 1 } }",
        headers={**AUTH, "Content-Type": "application/sparql-update"},
    )
    problem = assert_problem(response, 503, "storage-error")
    assert str(tmp_path) not in json.dumps(problem)
    assert "MANIFEST" not in problem["detail"] and "Errno" not in problem["detail"]


@pytest.mark.parametrize("name", ["store_dir", "cache_dir"])
def test_a_folder_setting_inside_a_file_is_a_config_error(name: str, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ConfigError, match="is not a folder"):
        load_settings({name: str(afile / "sub")}, environ={})


@pytest.mark.parametrize("iri", ["URN:X-GUIAN-KG:meta", "urn:X-Guian-KG:meta", "urn:x-guian-kg:meta"])
def test_internal_graphs_compare_as_iris(iri: str) -> None:
    assert is_internal_graph(ox.NamedNode(iri), "https://w3id.org/guian-kg/graph/inferred")


def test_inferred_graph_compares_scheme_and_host_case_insensitively() -> None:
    inferred = "https://w3id.org/guian-kg/graph/inferred"
    assert is_internal_graph(ox.NamedNode("HTTPS://W3ID.ORG/guian-kg/graph/inferred"), inferred)
    assert not is_internal_graph(ox.NamedNode("https://w3id.org/guian-kg/graph/INFERRED"), inferred)  # path: exact
    assert comparable_iri("Mailto:X@Y") == "mailto:X@Y"


def test_json_ld_that_yields_nothing_is_a_400(make_app, assert_problem) -> None:
    client = make_app(update_token=TOKEN).test_client()
    bad = json.dumps({"@id": "not an iri", "http://example.org/p": "v"})
    response = client.post(
        "/store",
        query_string={"graph": "urn:x:upload"},
        data=bad,
        headers={**AUTH, "Content-Type": "application/ld+json"},
    )
    problem = assert_problem(response, 400, "rdf-syntax")
    assert "valid absolute IRIs" in problem["detail"]
