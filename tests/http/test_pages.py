"""The HTML pages over the Flask test client: query page, resource pages and their RDF, pictures, docs."""

from __future__ import annotations

import json
import re
import socket
import sys
import xml.etree.ElementTree as ET

import pytest
from rdflib import Graph, URIRef

from service import names
from service.pages import svg
from service.pages.labels import LANGUAGES, UI_TEXT, accept_language, choose_language, local_href, resource_iri
from service.pages.ontology import ontology_html, pylode_html
from service.pages.resource import FLAGSHIP_QUERY

SECTION_6 = URIRef(names.ID + "section/6")
SVG_NS = "{http://www.w3.org/2000/svg}"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
HTML_PAGES = ["/", "/id/section/6", "/graph/claim/section-6", "/graph", "/ontology", "/ontology/shapes"]


def _html(client, path: str, **headers: str) -> str:
    response = client.get(path, headers={**HTML, **headers})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def _h1(page: str) -> str:
    return re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S).group(1).strip()


# --- core helpers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR, zh-TW;q=0.5, en;q=0.4", "zh"),
        ("en;q=0.2, zh;q=0.8", "zh"),
        ("zh;q=0, en", "en"),
        ("de", None),
        ("", None),
        ("*", "en"),
    ],
)
def test_accept_language(header: str, expected: str | None) -> None:
    assert accept_language(header) == expected


def test_language_choice_order() -> None:
    assert choose_language("zh", "en", "en") == "zh"
    assert choose_language(None, "zh", "en") == "zh"
    assert choose_language("xx", None, "zh-Hans") == "zh"
    assert choose_language(None, None, None) == "en"


@pytest.mark.parametrize(
    ("kind", "slug"), [("section", "6 7"), ("section", "../x"), ("Section", "6"), ("section", ""), ("a", "<x>")]
)
def test_malformed_paths_name_nothing(kind: str, slug: str) -> None:
    assert resource_iri(names.DEFAULT_BASE, kind, slug) is None


def test_every_ui_text_exists_in_both_languages() -> None:
    assert set(UI_TEXT["en"]) == set(UI_TEXT["zh"])
    assert set(UI_TEXT) == set(LANGUAGES)


def test_local_links() -> None:
    base = "https://example.org/kg/"
    assert local_href(base + "id/section/6", base) == "/id/section/6"
    assert local_href(base + "graph/claim/x", base) == "/graph/claim/x"
    assert local_href(base + "ontology#coHandledBy", base) == "/ontology#coHandledBy"
    assert local_href("http://www.w3.org/ns/org#Organization", base) is None


def test_every_resource_of_the_dataset_has_a_page(client) -> None:
    """Every `…/id/…` subject dereferences, as HTML and as RDF (the links the pages draw never 404)."""
    rows = client.get(
        "/sparql",
        query_string={"query": f"SELECT DISTINCT ?s WHERE {{ ?s ?p ?o FILTER(STRSTARTS(STR(?s), '{names.ID}')) }}"},
        headers={"Accept": "application/sparql-results+json"},
    ).get_json()["results"]["bindings"]
    subjects = [row["s"]["value"] for row in rows]
    assert names.ID + "domain-scheme" in subjects  # one path segment: /id/<slug>
    assert len(subjects) > 100
    for iri in subjects:
        path = local_href(iri, names.DEFAULT_BASE)
        assert path is not None, iri
        turtle = client.get(path, headers={"Accept": "text/turtle"})
        assert turtle.status_code == 200, (path, turtle.status_code)
        graph = Graph().parse(data=turtle.get_data(as_text=True), format="turtle")
        assert URIRef(iri) in set(graph.subjects()), path
    assert client.get(local_href(names.ID + "domain-scheme", names.DEFAULT_BASE)).status_code == 200


def test_text_wrapping_fits_and_keeps_words() -> None:
    assert svg.wrap("Secretarial Section 6", 112, 13, 2) == ["Secretarial", "Section 6"]
    lines = svg.wrap("Government-affairs inspection and supervision", 112, 10, 2)
    assert len(lines) == 2 and lines[-1].endswith("…")
    assert all(svg.text_width(line, 10) <= 112 for line in lines)
    assert svg.wrap("秘书六科", 40, 10, 2) == ["秘书六科"]


# --- query page ----------------------------------------------------------------------------------------------


def test_home_offers_editor_examples_and_no_external_resources(client) -> None:
    page = _html(client, "/")
    assert 'id="query"' in page and "PREFIX gk: &lt;https://w3id.org/guian-kg/ontology#&gt;" in page
    examples = json.loads(
        re.search(r'<script type="application/json" id="examples-data">(.*?)</script>', page).group(1)
    )
    assert FLAGSHIP_QUERY in {e["name"] for e in examples}
    assert all(e["text"].strip() and e["url"] == f"/api/queries/{e['name']}" for e in examples)
    # Every script, stylesheet and image comes from this server.
    for attr in re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', page):
        assert attr.startswith("/"), attr
    assert page.count('data-kind="section"') == 9  # the organisation at a glance


def test_static_files_are_served_and_load_nothing_from_elsewhere(client) -> None:
    for name, media_type in (
        ("editor.bundle.js", "text/javascript"),
        ("query.js", "text/javascript"),
        ("style.css", "text/css"),
    ):
        with client.get(f"/static/{name}") as response:
            assert response.status_code == 200
            assert response.mimetype == media_type
            text = response.get_data(as_text=True)
        assert not re.search(r"fetch\(\s*[\"'`]https?:|import\s|@import|url\(\s*[\"']?https?:", text), name


@pytest.mark.parametrize("path", HTML_PAGES)
def test_html_pages_have_a_strict_csp(client, path: str) -> None:
    response = client.get(path, headers=HTML)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "http:" not in csp and "https:" not in csp and "*" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "'unsafe-eval'" not in csp and "script-src 'unsafe-inline'" not in csp


# --- resource pages ------------------------------------------------------------------------------------------


def test_section_page_in_english_and_chinese(client) -> None:
    english = _html(client, "/id/section/6", **{"Accept-Language": "en-US,en;q=0.9"})
    assert _h1(english) == "Secretarial Section 6"
    assert '<dd lang="zh">秘书六科</dd>' in english and '<dd lang="en">Secretarial Section 6</dd>' in english
    chinese = _html(client, "/id/section/6", **{"Accept-Language": "zh-CN,zh;q=0.9"})
    assert _h1(chinese) == "秘书六科"
    assert '<html lang="zh-Hans">' in chinese


def test_language_switch_is_remembered(client) -> None:
    response = client.get("/id/section/6?lang=zh", headers=HTML)
    assert "lang=zh" in response.headers["Set-Cookie"]
    assert _h1(_html(client, "/id/section/7", **{"Accept-Language": "en"})) == "秘书七科"
    client.delete_cookie("lang")


def test_statements_are_linked_inferred_marked_and_quoted(client) -> None:
    page = _html(client, "/id/section/6", **{"Accept-Language": "en"})
    # A linked value: the office this section belongs to.
    assert 'href="/id/organization/office"' in page
    # Inferred: the section co-handles the worked example (never asserted), with a link to the explanation.
    row = re.search(r'<tr class="inferred">(?:(?!</tr>).)*?/id/project/major-industrial-project.*?</tr>', page, re.S)
    assert row and "badge inferred" in row.group(0) and "/api/explain?" in row.group(0)
    # Asserted: cited to its claim, whose verbatim quote is on the page.
    assert re.search(r'<tr class="asserted">(?:(?!</tr>).)*?class="cite" href="#source-1"', page, re.S)
    quote = re.search(r'<li id="source-1"[^>]*>\s*<blockquote lang="zh"[^>]*>(.*?)</blockquote>', page, re.S).group(1)
    assert "城乡建设与基础设施" in quote
    assert 'href="/graph/claim/section-6"' in page


def test_stated_and_inferred_participants_are_told_apart(client) -> None:
    page = _html(client, "/id/project/major-industrial-project", **{"Accept-Language": "en"})
    stated = re.search(r"gk:statedParticipant.*?</tbody>", page, re.S).group(0)
    assert {"5", "7", "8"} == set(re.findall(r'href="/id/section/(\d)"', stated))
    assert 'class="inferred"' not in stated
    co_handled = re.search(r"gk:coHandledBy.*?</tbody>", page, re.S).group(0)
    assert {"5", "6", "7", "8"} == set(re.findall(r'href="/id/section/(\d)"', co_handled))
    assert 'class="asserted"' not in co_handled


def test_claim_page_shows_quote_and_contents(client) -> None:
    page = _html(client, "/graph/claim/section-6", **{"Accept-Language": "en"})
    assert "城乡建设与基础设施" in page  # gk:sourceQuote of the claim
    assert "Statements in this claim" in page
    assert 'href="/id/section/6"' in page


@pytest.mark.parametrize(
    ("accept", "media_type", "fmt"),
    [
        ("text/turtle", "text/turtle", "turtle"),
        ("application/ld+json", "application/ld+json", "json-ld"),
        ("application/n-triples", "application/n-triples", "nt"),
        ("application/rdf+xml;q=0.9, text/html;q=0.5", "application/rdf+xml", "xml"),
    ],
)
def test_resource_content_negotiation(client, accept: str, media_type: str, fmt: str) -> None:
    response = client.get("/id/section/6", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.mimetype == media_type
    assert "Accept" in response.headers["Vary"]
    graph = Graph().parse(data=response.get_data(as_text=True), format=fmt)
    assert (SECTION_6, URIRef(names.GK + "handlesDomain"), URIRef(names.ID + "domain/land-management")) in graph
    assert (SECTION_6, URIRef(names.GK + "coHandles"), URIRef(names.ID + "project/major-industrial-project")) in graph


def test_resource_format_parameter_and_infer_false(client) -> None:
    response = client.get("/id/section/6?format=ttl&infer=false", headers=HTML)
    assert response.mimetype == "text/turtle"
    graph = Graph().parse(data=response.get_data(as_text=True), format="turtle")
    assert (SECTION_6, URIRef(names.GK + "coHandles"), None) not in graph
    assert (SECTION_6, URIRef(names.GK + "handlesDomain"), None) in graph


def test_resource_errors(client, assert_problem) -> None:
    assert_problem(client.get("/id/section/99", headers={"Accept": "text/turtle"}), 404, "not-found")
    assert_problem(client.get("/id/section/99"), 404, "not-found")
    assert_problem(client.get("/id/section/a%20b"), 404, "not-found")
    assert_problem(client.get("/id/section/6", headers={"Accept": "image/png"}), 406, "not-acceptable")
    assert_problem(client.get("/id/section/6?format=nonsense"), 400, "invalid-parameter")
    assert client.get("/id/section/99", headers=HTML).mimetype == "text/html"


# --- pictures ------------------------------------------------------------------------------------------------


def _svg_sections(text: str) -> list[str]:
    root = ET.fromstring(text.encode("utf-8"))
    return [el.get("data-key") for el in root.iter() if el.get("data-kind") == "section"]


def test_pictures_page_draws_nine_sections_twice(client) -> None:
    page = _html(client, "/graph?project=major-industrial-project", **{"Accept-Language": "en"})
    pictures = re.findall(r"<svg .*?</svg>", page, re.S)
    assert len(pictures) == 2
    for picture in pictures:
        assert sorted(_svg_sections(picture)) == sorted(names.ID + f"section/{n}" for n in range(1, 10))
    highlighted = set(
        re.findall(r'class="node section highlight[^"]*" data-kind="section" data-key="[^"]*/(\d)"', page)
    )
    assert highlighted == {"5", "6", "7", "8"}
    # beside the picture, the three layers apart: named in the source, from the table, only through an assumption
    layers = {
        key: set(re.findall(r"/id/section/(\d)", re.search(rf'<dd id="{key}">(.*?)</dd>', page, re.S).group(1)))
        for key in ("stated", "from-table", "assumed")
    }
    assert layers == {"stated": {"5", "7", "8"}, "from-table": {"7", "8"}, "assumed": {"5", "6"}}


def test_standalone_svgs_are_valid_and_deterministic(client) -> None:
    for path in ("/graph/organisation.svg", "/graph/network.svg?project=major-industrial-project"):
        first, second = client.get(path), client.get(path)
        assert first.mimetype == "image/svg+xml"
        assert first.data == second.data
        assert len(_svg_sections(first.get_data(as_text=True))) == 9
        assert "script" not in first.get_data(as_text=True)


def test_network_without_project_highlights_nothing(client) -> None:
    text = client.get("/graph/network.svg?project=").get_data(as_text=True)
    assert "highlight" not in text


# --- ontology and shapes -------------------------------------------------------------------------------------


def test_ontology_docs_and_rdf(client) -> None:
    page = _html(client, "/ontology", **{"Accept-Language": "en"})
    assert 'id="SecretarialSection"' in page
    assert "gk-bar" in page  # our navigation on top of pyLODE's page
    response = client.get("/ontology", headers={"Accept": "text/turtle"})
    assert response.mimetype == "text/turtle"
    graph = Graph().parse(data=response.get_data(as_text=True), format="turtle")
    assert (URIRef(names.GK + "coHandledBy"), None, None) in graph


def test_pylode_reaches_no_network(monkeypatch) -> None:
    pytest.importorskip("pylode")

    def refuse(*args, **kwargs):
        raise AssertionError(f"pyLODE tried to reach the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    pylode_html.cache_clear()
    try:
        html = ontology_html(names.DEFAULT_BASE, "zh")
    finally:
        pylode_html.cache_clear()
    assert html is not None and 'id="coHandledBy"' in html


def test_resource_rdf_is_cached_by_etag(client) -> None:
    first = client.get("/id/section/6", headers={"Accept": "text/turtle"})
    again = client.get("/id/section/6", headers={"Accept": "text/turtle", "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    other = client.get("/id/section/6?infer=false", headers={"Accept": "text/turtle"})
    assert other.headers["ETag"] != first.headers["ETag"]


def test_ontology_docs_without_pylode(client, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pylode", None)  # import fails as if it were not installed
    pylode_html.cache_clear()
    try:
        page = _html(client, "/ontology?lang=zh")
    finally:
        pylode_html.cache_clear()
        client.delete_cookie("lang")
    assert 'id="SecretarialSection"' in page
    assert "秘书科室" in page


def test_shapes_page_and_turtle(client) -> None:
    page = _html(client, "/ontology/shapes", **{"Accept-Language": "en"})
    assert "gks:SectionShape" in page
    response = client.get("/ontology/shapes", headers={"Accept": "text/turtle"})
    assert response.mimetype == "text/turtle"
    assert len(Graph().parse(data=response.get_data(as_text=True), format="turtle")) > 50


@pytest.mark.parametrize("value", ["bogus", "FALSEY", ""])
def test_resource_infer_is_parsed_as_on_sparql(client, assert_problem, value) -> None:
    response = client.get(f"/id/section/6?infer={value}", headers={"Accept": "text/turtle"})
    assert_problem(response, 400, "invalid-parameter")


def test_resource_infer_spellings_of_false_all_leave_inferences_out(client) -> None:
    bodies = {
        value: client.get(f"/id/section/6?infer={value}", headers={"Accept": "application/n-triples"}).data
        for value in ("false", "0", "no", "FALSE")
    }
    assert len(set(bodies.values())) == 1
    assert bodies["false"] != client.get("/id/section/6", headers={"Accept": "application/n-triples"}).data


def test_repeated_control_parameters_are_refused_on_every_route(client, assert_problem) -> None:
    for url in (
        "/store?default&format=ttl&format=nt",
        "/store?default&infer=true&infer=false",
        "/id/section/6?format=ttl&format=nt",
        "/.well-known/void?format=ttl&format=nt",
        "/api/queries/section-counts?infer=true&infer=false",
    ):
        assert_problem(client.get(url), 400, "bad-request")


def test_an_assumption_and_its_graph_have_pages(client) -> None:
    page = _html(client, "/id/assumption/land-is-land-management", **{"Accept-Language": "en"})
    assert "土地" in page and "rationale" in page  # the assumption's rationale and the word it maps
    assert "/graph/assumption/land-is-land-management" in page  # linked to the graph of what it licenses
    graph = _html(client, "/graph/assumption/land-is-land-management", **{"Accept-Language": "en"})
    assert "/id/project/major-industrial-project" in graph and "/id/domain/land-management" in graph
    assert client.get("/graph/assumption/no-such-assumption", headers={"Accept": "text/html"}).status_code == 404
