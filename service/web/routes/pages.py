"""HTML pages: the query page, resource pages (content-negotiated), pictures, ontology and SHACL docs."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, render_template, request

from service import names
from service.engines.base import QueryJob
from service.errors import NotAcceptableError, NotFoundError
from service.pages.labels import LANGUAGES, UI_TEXT, Row, choose_language, claim_iri, prefix_block, resource_iri
from service.pages.ontology import ontology_html, ontology_terms, shapes_overview, shapes_turtle
from service.pages.pictures import Project, network_picture, organisation_picture, projects
from service.pages.resource import FLAGSHIP_QUERY, describe_query, resource_page
from service.sparql.formats import Format, by_media_type
from service.sparql.protocol import RDF_FORMATS, Control, best_media_type, choose_format, decode_form, parse_control
from service.web.answer import not_modified, rdf_response
from service.web.routes.api import library
from service.web.state import state

bp = Blueprint("pages", __name__, template_folder="../templates", static_folder="../static", static_url_path="/static")

HTML = "text/html"
SVG = "image/svg+xml"
LANG_COOKIE = "lang"
EXTENSION_KEY = "guian_kg.pages"
# pyLODE's page carries its own <style> and a JSON-LD data block; it runs no script.
PYLODE_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# A standalone picture: no scripts, no fetches, only its own attributes.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"
# Media types a resource URL answers with: HTML for browsers first, then every RDF format.
RESOURCE_TYPES = (HTML, *(t for f in RDF_FORMATS for t in f.media_types))
LINKED_FORMATS = ("ttl", "jsonld", "nt", "rdfxml")


def _select(query: str, infer: bool = True) -> list[Row]:
    """Run an internal SELECT through the app's executor and return its SPARQL JSON rows."""
    st = state()
    job = QueryJob(query, "json", infer=infer, max_rows=st.settings.max_result_rows)
    return json.loads(st.query(job, st.settings.query_timeout).body)["results"]["bindings"]


def _base() -> str:
    return state().settings.base_iri


def _language() -> str:
    return choose_language(
        request.args.get("lang"), request.cookies.get(LANG_COOKIE), request.headers.get("Accept-Language")
    )


@bp.app_template_global()
def lang_url(code: str) -> str:
    """The current page in another language (its other query parameters kept)."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    return request.path + "?" + urlencode(args, doseq=True)


def _render(template: str, **context: Any) -> str:
    lang = _language()
    return render_template(template, lang=lang, t=UI_TEXT[lang], languages=LANGUAGES, base_iri=_base(), **context)


def _html(body: str) -> Response:
    """An HTML response in the request's language; an explicit ?lang= choice is remembered in a cookie."""
    lang = _language()
    response = Response(body, mimetype=HTML)
    response.vary.update(("Accept", "Accept-Language", "Cookie"))
    response.headers["Content-Language"] = lang
    if request.args.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response


def _page(template: str, **context: Any) -> Response:
    """Render an HTML page in the request's language."""
    return _html(_render(template, **context))


def _negotiate() -> Format | None:
    """The RDF format a request asks for (`format=` first, then Accept), or None for the HTML page.

    Raises:
        InvalidParameterError: an unknown `format=`.
        NotAcceptableError: a `format=` or Accept that neither HTML nor any RDF format satisfies.
    """
    wanted = _control().format
    if wanted:
        return choose_format(RDF_FORMATS, None, wanted)
    accept = request.headers.get("Accept")
    media_type = best_media_type(accept, RESOURCE_TYPES)
    if media_type is None:
        raise NotAcceptableError(f"Accept: {accept} matches none of {', '.join(RESOURCE_TYPES)}")
    return None if media_type == HTML else by_media_type(media_type)


def _construct(query: str, fmt: Format, name: str, infer: bool) -> Response:
    """A CONSTRUCT run through the executor, answered in `fmt` (304 when the client has it; 404 when empty)."""
    st = state()
    etag = f"{st.snapshot.version}-{fmt.key}-{'i' if infer else 'a'}-{name}"
    if request.if_none_match.contains(etag):
        return not_modified(etag)
    outcome = st.query(
        QueryJob(query, fmt.key, infer=infer, max_rows=st.settings.max_result_rows), st.settings.query_timeout
    )
    if not outcome.rows:
        raise NotFoundError(f"the dataset says nothing about {request.path}")
    response = rdf_response(outcome.body, fmt, etag)
    response.headers["Link"] = f'<{request.base_url}>; rel="alternate"; type="text/html"'
    return response


def _examples() -> list[dict[str, Any]]:
    """The named queries as the gallery shows them (metadata, text, REST URL), loaded once per app."""
    cache = current_app.extensions.setdefault(EXTENSION_KEY, {})
    if "examples" not in cache:
        cache["examples"] = [
            {**query.metadata(), "text": query.text, "url": f"/api/queries/{query.name}"} for query in library()
        ]
    return cache["examples"]


@bp.route("/")
def home() -> Response:
    """The query page: editor, example gallery, results, and the organisation at a glance."""
    return _page(
        "home.html",
        prefixes=prefix_block(_base()),
        examples=_examples(),
        flagship=FLAGSHIP_QUERY,
        infer=state().settings.infer,
        organisation=organisation_picture(_select, _language(), _base()),
    )


def _control() -> Control:
    """The request's format=, infer= and timeout=, parsed as every route parses them (once per request)."""
    if "guian_kg_control" not in g:
        g.guian_kg_control = parse_control(decode_form(request.query_string, "URL query string"))
    return g.guian_kg_control


def _resource(iri: str | None) -> Response:
    if iri is None:
        raise NotFoundError(f"no resource at {request.path}")
    fmt = _negotiate()
    if fmt is not None:
        infer = _control().infer
        infer = state().settings.infer if infer is None else infer
        return _construct(describe_query(iri), fmt, hashlib.sha256(iri.encode()).hexdigest()[:12], infer)
    page = resource_page(_select, iri, _language(), _base())
    if page is None:
        raise NotFoundError(f"the dataset says nothing about <{iri}>")
    formats = [(f.key, f.media_type) for f in RDF_FORMATS if f.key in LINKED_FORMATS]
    return _page("resource.html", page=page, formats=formats)


@bp.route("/id/<slug>", defaults={"kind": None})
@bp.route("/id/<kind>/<slug>")
def resource(kind: str | None, slug: str) -> Response:
    """A resource of the dataset: an HTML page, or its statements in Turtle / JSON-LD / N-Triples by Accept."""
    return _resource(resource_iri(_base(), kind, slug))


@bp.route("/graph/claim/<slug>")
def claim(slug: str) -> Response:
    """A claim graph: its source quote and the statements it holds (HTML or RDF by Accept)."""
    return _resource(claim_iri(_base(), slug))


@bp.route("/graph/assumption/<slug>")
def assumption_graph(slug: str) -> Response:
    """An assumption graph: the assumption that licenses it and the statements it holds (HTML or RDF by Accept)."""
    return _resource(claim_iri(_base(), slug, "assumption"))


def _chosen_project(lang: str) -> tuple[list[Project], Project | None]:
    """The projects, and the one `?project=` names (the first by default; none for an empty value)."""
    found = projects(_select, lang, _base())
    wanted = request.args.get("project")
    if wanted is None:
        return found, found[0] if found else None
    return found, next((p for p in found if wanted in (p.slug, p.iri)), None)


@bp.route("/graph")
def graph() -> Response:
    """The pictures: the organisation tree and the collaboration network with a project highlighted."""
    lang = _language()
    found, project = _chosen_project(lang)
    return _page(
        "graph.html",
        organisation=organisation_picture(_select, lang, _base()),
        network=network_picture(_select, lang, _base(), project),
        projects=found,
        project=project,
    )


def _svg(text: str) -> Response:
    response = Response('<?xml version="1.0" encoding="utf-8"?>\n' + text, mimetype=SVG)
    response.vary.update(("Accept-Language", "Cookie"))
    response.headers["Content-Security-Policy"] = SVG_CSP
    return response


@bp.route("/graph/organisation.svg")
def organisation_svg() -> Response:
    """The organisation tree as a standalone SVG image."""
    return _svg(organisation_picture(_select, _language(), _base()))


@bp.route("/graph/network.svg")
def network_svg() -> Response:
    """The collaboration network as a standalone SVG image (`?project=` picks the highlighted project)."""
    lang = _language()
    _, project = _chosen_project(lang)
    return _svg(network_picture(_select, lang, _base(), project)["svg"])


@bp.route("/ontology")
def ontology() -> Response:
    """The ontology: pyLODE documentation for browsers, the OWL ontology in an RDF format by Accept."""
    fmt = _negotiate()
    if fmt is not None:
        graph_iri = names.rebase(names.ONTOLOGY_GRAPH, _base())
        query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{graph_iri}> {{ ?s ?p ?o }} }}"
        return _construct(query, fmt, "ontology", infer=False)
    lang = _language()
    html = ontology_html(_base(), lang)
    if html is None:
        return _page("ontology.html", ontology=ontology_terms(_select, lang, _base()))
    html = html.replace("<html>", f'<html lang="{"zh-Hans" if lang == "zh" else "en"}">', 1)
    response = _html(html.replace("<body>", "<body>" + _render("pylode_bar.html"), 1))
    response.headers["Content-Security-Policy"] = PYLODE_CSP
    return response


@bp.route("/ontology/shapes")
def shapes() -> Response:
    """The SHACL shapes: an HTML overview for browsers, the Turtle file for clients."""
    wants_turtle = _control().format in ("ttl", "turtle")
    if wants_turtle or best_media_type(request.headers.get("Accept"), (HTML, "text/turtle")) == "text/turtle":
        response = Response(shapes_turtle(_base()), content_type="text/turtle; charset=utf-8")
        response.vary.add("Accept")
        return response
    return _page("shapes.html", shapes=shapes_overview(_language(), _base()))
