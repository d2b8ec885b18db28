"""Both engines on the same small dataset: forms, formats, dataset selection, bindings, limits, errors, safety."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyoxigraph as ox
import pytest

from service.config import load_settings
from service.data.snapshots import Snapshot
from service.engines.base import Engine, QueryJob
from service.engines.embedded import EmbeddedEngine
from service.engines.factory import engine_for
from service.engines.reference import RdflibEngine
from service.errors import (
    ConfigError,
    InvalidParameterError,
    NotAcceptableError,
    QuerySyntaxError,
    RemoteServiceError,
    ResultTooLargeError,
    ServiceForbiddenError,
)
from service.sparql.formats import FORMATS, Format

EX = "http://example.org/"
G = EX + "graph/"
PREFIXES = f"PREFIX ex: <{EX}> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"

# The same notation sits in two graphs: the union default graph must still hold it once.
NQUADS = f"""
<{EX}s1> <{RDF_TYPE}> <{EX}Section> <{G}a> .
<{EX}s1> <http://www.w3.org/2000/01/rdf-schema#label> "一科"@zh <{G}a> .
<{EX}s1> <http://www.w3.org/2000/01/rdf-schema#label> "Section one"@en <{G}a> .
<{EX}s1> <{EX}notation> "1" <{G}a> .
<{EX}s1> <{EX}notation> "1" <{G}b> .
<{EX}s1> <{EX}partOf> <{EX}office> <{G}a> .
<{EX}s2> <{RDF_TYPE}> <{EX}Section> <{G}b> .
<{EX}s2> <{EX}size> "12"^^<{XSD}integer> <{G}b> .
<{EX}s2> <{EX}partOf> <{EX}office> <{G}b> .
<{EX}office> <{EX}note> _:n <{G}b> .
_:n <{EX}text> "a \\"quoted\\" note\\nsecond line\\ttab" <{G}b> .
<{EX}p1> <{EX}coHandledBy> <{EX}s1> <{G}inferred> .
<{EX}p1> <{EX}coHandledBy> <{EX}s2> <{G}inferred> .
<{EX}s1> <{RDF_TYPE}> <{EX}Unit> <{G}inferred> .
"""


def make_snapshot(folder: Path) -> Snapshot:
    """A snapshot over the module's N-Quads (graphs a, b and the inferred graph)."""
    path = folder / "dataset.nq"
    path.write_text(NQUADS, encoding="utf-8")
    return Snapshot("test", path, (G + "a", G + "b", G + "inferred"), G + "inferred", EX)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    return make_snapshot(tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="module")
def engines(snapshot: Snapshot) -> dict[str, Engine]:
    return {"embedded": EmbeddedEngine(snapshot), "rdflib": RdflibEngine(snapshot)}


@pytest.fixture(params=["embedded", "rdflib"])
def engine(request: pytest.FixtureRequest, engines: dict[str, Engine]) -> Engine:
    return engines[request.param]


def _key(term: dict | None) -> str | None:
    """A comparable form of a SPARQL JSON term (blank node labels differ between engines)."""
    if term is None:
        return None
    if term["type"] == "uri":
        return f"<{term['value']}>"
    if term["type"] == "bnode":
        return "_:"
    if "xml:lang" in term:
        return f'"{term["value"]}"@{term["xml:lang"]}'
    datatype = term.get("datatype", XSD + "string")
    return f'"{term["value"]}"' + ("" if datatype == XSD + "string" else f"^^<{datatype}>")


def rows(engine: Engine, query: str, **options: object) -> list[tuple[str | None, ...]]:
    """SELECT rows as tuples of comparable terms, in the order of the head's variables."""
    body = json.loads(engine.execute(QueryJob(PREFIXES + query, "json", **options)).body)  # type: ignore[arg-type]
    names = body["head"]["vars"]
    return [tuple(_key(row.get(name)) for name in names) for row in body["results"]["bindings"]]


def solutions(engine: Engine, query: str, **options: object) -> list[tuple[tuple[str, str | None], ...]]:
    """SELECT rows as sorted (variable, term) pairs, sorted: `SELECT *` column order is engine-specific."""
    body = json.loads(engine.execute(QueryJob(PREFIXES + query, "json", **options)).body)  # type: ignore[arg-type]
    found = [
        tuple(sorted((name, _key(row.get(name))) for name in body["head"]["vars"]))
        for row in body["results"]["bindings"]
    ]
    return sorted(found, key=str)


def triples(engine: Engine, query: str, **options: object) -> set[tuple[str, ...]]:
    """CONSTRUCT/DESCRIBE triples as N-Triples terms, blank nodes as `_:`."""
    body = engine.execute(QueryJob(PREFIXES + query, "nt", **options)).body  # type: ignore[arg-type]
    return {
        tuple("_:" if isinstance(t, ox.BlankNode) else str(t) for t in (tr.subject, tr.predicate, tr.object))
        for tr in ox.parse(body, format=ox.RdfFormat.N_TRIPLES)
    }


# -- forms and formats --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "form", "fmt", "media_type"),
    [
        ("SELECT * { ?s ?p ?o }", "select", "json", "application/sparql-results+json"),
        ("ASK { ?s ?p ?o }", "ask", "xml", "application/sparql-results+xml"),
        ("CONSTRUCT WHERE { ?s ex:partOf ?o }", "construct", "ttl", "text/turtle"),
        ("DESCRIBE ex:s2", "describe", "nt", "application/n-triples"),
    ],
)
def test_forms(engine: Engine, query: str, form: str, fmt: str, media_type: str) -> None:
    outcome = engine.execute(QueryJob(PREFIXES + query, fmt))
    assert (outcome.form, outcome.media_type) == (form, media_type)
    assert outcome.body


SELECT_3 = "SELECT ?s ?label ?size { ?s a ex:Section OPTIONAL { ?s ex:size ?size } OPTIONAL { ?s rdfs:label ?label } }"


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.kind == "results"], ids=lambda f: f.key)
def test_results_formats_parse_back(engine: Engine, fmt: Format) -> None:
    outcome = engine.execute(QueryJob(PREFIXES + SELECT_3, fmt.key, infer=False))
    assert outcome.media_type == fmt.media_type and outcome.rows == 3
    if fmt.key == "csv":
        table = list(csv.reader(io.StringIO(outcome.body.decode("utf-8"))))
        assert table[0] == ["s", "label", "size"] and len(table) == 4
        assert any("一科" in cell for row in table for cell in row)
    else:
        parsed = ox.parse_query_results(outcome.body, getattr(ox.QueryResultsFormat, fmt.oxigraph))
        assert [v.value for v in parsed.variables] == ["s", "label", "size"]
        assert {str(row["label"]) for row in parsed if row["label"] is not None} == {'"一科"@zh', '"Section one"@en'}
    if fmt.key in ("json", "xml"):
        answer = engine.execute(QueryJob("ASK { ?s ?p ?o }", fmt.key))
        assert bool(ox.parse_query_results(answer.body, getattr(ox.QueryResultsFormat, fmt.oxigraph)))


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.kind == "graph"], ids=lambda f: f.key)
def test_graph_formats_parse_back(engine: Engine, fmt: Format) -> None:
    query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{G}b> {{ ?s ?p ?o }} }}"
    outcome = engine.execute(QueryJob(query, fmt.key))
    assert outcome.media_type == fmt.media_type and outcome.rows == 6
    parsed = list(ox.parse(outcome.body, format=getattr(ox.RdfFormat, fmt.oxigraph)))
    assert len(parsed) == 6
    assert ox.Literal('a "quoted" note\nsecond line\ttab') in {t.object for t in parsed}


def test_format_must_fit_the_form(engine: Engine) -> None:
    with pytest.raises(NotAcceptableError):
        engine.execute(QueryJob("SELECT * {}", "ttl"))
    with pytest.raises(NotAcceptableError):
        engine.execute(QueryJob("CONSTRUCT WHERE { ?s ?p ?o }", "json"))
    with pytest.raises(InvalidParameterError):
        engine.execute(QueryJob("SELECT * {}", "yaml"))


# -- the dataset ---------------------------------------------------------------------------------------------


def test_default_graph_is_the_union_as_a_set(engine: Engine) -> None:
    assert rows(engine, "SELECT (COUNT(*) AS ?n) { ex:s1 ex:notation ?v }") == [(f'"1"^^<{XSD}integer>',)]
    assert rows(engine, "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }") == [(f'"13"^^<{XSD}integer>',)]


def test_infer_toggle(engine: Engine) -> None:
    count = "SELECT (COUNT(*) AS ?n) { ?p ex:coHandledBy ?s }"
    assert rows(engine, count) == [(f'"2"^^<{XSD}integer>',)]
    assert rows(engine, count, infer=False) == [(f'"0"^^<{XSD}integer>',)]
    graphs = "SELECT DISTINCT ?g { GRAPH ?g { ?s ?p ?o } }"
    assert set(rows(engine, graphs)) == {(f"<{G}a>",), (f"<{G}b>",), (f"<{G}inferred>",)}
    assert set(rows(engine, graphs, infer=False)) == {(f"<{G}a>",), (f"<{G}b>",)}
    # infer=false leaves the inferred graph out however it is named
    named = f"SELECT * FROM <{G}inferred> {{ ?p ex:coHandledBy ?s }}"
    assert len(rows(engine, named)) == 2 and rows(engine, named, infer=False) == []
    assert rows(engine, "SELECT * { ?p ex:coHandledBy ?s }", default_graph_uris=(G + "inferred",), infer=False) == []


def test_from_and_from_named(engine: Engine) -> None:
    assert rows(engine, f"SELECT ?s FROM <{G}b> {{ ?s a ex:Section }}") == [(f"<{EX}s2>",)]
    query = f"SELECT ?g ?s FROM NAMED <{G}a> {{ {{ ?s a ex:Section }} UNION {{ GRAPH ?g {{ ?s a ex:Section }} }} }}"
    assert rows(engine, query) == [(f"<{G}a>", f"<{EX}s1>")]  # FROM NAMED only: the default graph is empty


def test_protocol_dataset_overrides_the_query(engine: Engine) -> None:
    query = f"SELECT ?s FROM <{G}a> {{ ?s a ex:Section }}"
    assert rows(engine, query, default_graph_uris=(G + "b",)) == [(f"<{EX}s2>",)]
    both = "SELECT ?s { ?s a ex:Section }"
    assert set(rows(engine, both, default_graph_uris=(G + "a", G + "b"))) == {(f"<{EX}s1>",), (f"<{EX}s2>",)}
    graphs = "SELECT DISTINCT ?g { GRAPH ?g { ?s ?p ?o } }"
    assert rows(engine, graphs, named_graph_uris=(G + "b", EX + "nowhere")) == [(f"<{G}b>",)]
    assert rows(engine, both, named_graph_uris=(G + "b",)) == []  # no default-graph-uri: empty default graph
    with pytest.raises(InvalidParameterError):
        engine.execute(QueryJob(PREFIXES + both, "json", default_graph_uris=("not an iri",)))


def test_from_never_reads_files_or_urls(engine: Engine, listener: tuple[str, list[bytes]], tmp_path: Path) -> None:
    url, seen = listener
    secret = tmp_path / "secret.ttl"
    secret.write_text("<http://secret/s> <http://secret/p> 'TOP-SECRET-MARKER' .\n", encoding="utf-8")
    local = secret.as_uri()
    pattern = "{ { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"
    queries = [
        (f"SELECT * FROM <{local}> FROM NAMED <{url}data> WHERE {pattern}", {}),
        (f"SELECT * FROM <{url}data> FROM NAMED <{local}> WHERE {pattern}", {}),
        (f"SELECT * WHERE {pattern}", {"default_graph_uris": (local, url), "named_graph_uris": (url + "n", local)}),
    ]
    for query, options in queries:
        outcome = engine.execute(QueryJob(query, "json", **options))  # type: ignore[arg-type]
        assert outcome.rows == 0
        assert b"TOP-SECRET-MARKER" not in outcome.body
    assert seen == []


def test_service_is_refused_without_a_connection(snapshot: Snapshot, listener: tuple[str, list[bytes]]) -> None:
    url, seen = listener
    query = f"SELECT * {{ SERVICE <{url}> {{ ?s ?p ?o }} }}"
    for engine in (EmbeddedEngine(snapshot), RdflibEngine(snapshot)):
        with pytest.raises(ServiceForbiddenError):
            engine.execute(QueryJob(query, "json"))
    assert seen == []
    # allow-listed: service.engines.service_calls calls it (bind join, service_timeout, no redirects);
    # the listener drops it
    with pytest.raises(RemoteServiceError) as failed:
        RdflibEngine(snapshot, service_allow=(url,)).execute(QueryJob(query, "json"))
    assert failed.value.extra["endpoint"] == url and seen


def test_relative_iris_resolve_against_base_iri(engine: Engine) -> None:
    assert rows(engine, "SELECT ?x { BIND(<s1> AS ?x) }", base_iri=EX) == [(f"<{EX}s1>",)]


# -- bindings ------------------------------------------------------------------------------------------------


def test_bindings_are_rdf_terms(engine: Engine) -> None:
    query = "SELECT ?s ?size { ?s ex:size ?size }"
    assert rows(engine, query, bindings=(("s", f"<{EX}s2>"),)) == [(f"<{EX}s2>", f'"12"^^<{XSD}integer>')]
    assert rows(engine, query, bindings=(("s", f"<{EX}s1>"),)) == []
    by_label = "SELECT ?s ?label { ?s rdfs:label ?label }"
    assert rows(engine, by_label, bindings=(("label", '"一科"@zh'),)) == [(f"<{EX}s1>", '"一科"@zh')]
    assert rows(engine, by_label, bindings=(("label", '"一科"'),)) == []


@pytest.mark.parametrize(
    "term",
    [
        f"<{EX}s1> . <{EX}x> <{EX}y> <{EX}z>",
        '"x" } ; DROP ALL ; SELECT * { "',
        "?s",
        "",
        f"<{EX}s1> <{EX}s2>",
    ],
)
def test_binding_that_is_not_one_term_is_refused(engine: Engine, term: str) -> None:
    with pytest.raises(InvalidParameterError):
        engine.execute(QueryJob("SELECT ?s { ?s ?p ?o }", "json", bindings=(("s", term),)))


# -- limits and errors ---------------------------------------------------------------------------------------


def test_row_limit_is_an_error_never_a_truncation(engine: Engine) -> None:
    select = PREFIXES + "SELECT ?s ?p ?o { ?s ?p ?o }"
    assert engine.execute(QueryJob(select, "json", max_rows=13)).rows == 13
    for fmt in ("json", "tsv", "csv"):
        with pytest.raises(ResultTooLargeError):
            engine.execute(QueryJob(select, fmt, max_rows=12))
    construct = PREFIXES + "CONSTRUCT WHERE { ?s ?p ?o }"
    assert engine.execute(QueryJob(construct, "ttl", max_rows=13)).rows == 13
    with pytest.raises(ResultTooLargeError):
        engine.execute(QueryJob(construct, "ttl", max_rows=12))


@pytest.mark.parametrize(
    ("query", "line"),
    [
        ("SELECT * WHERE {\n  ?s ?p ?o .\n  FILTER(?o = ) }", 3),
        ("SELECT * WHERE {\n  ?s undeclared:p ?o }", 2),
        ("SELECT * WHERE { ?s ?p ?o ", 1),
    ],
)
def test_syntax_error_says_where(engine: Engine, query: str, line: int) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        engine.execute(QueryJob(query, "json"))
    assert caught.value.extra["line"] == line
    assert isinstance(caught.value.extra["column"], int) and caught.value.extra["column"] >= 1


def test_engine_for(snapshot: Snapshot) -> None:
    assert isinstance(engine_for(load_settings({"engine": "rdflib"}, environ={}), snapshot), RdflibEngine)
    assert isinstance(engine_for(load_settings({}, environ={}), snapshot), EmbeddedEngine)
    remote = load_settings({"engine": "remote", "remote_query": "http://127.0.0.1:9/sparql"}, environ={})
    with pytest.raises(ConfigError):
        engine_for(remote, snapshot)


# -- the reference engine and the embedded one agree ---------------------------------------------------------

AGREEING_SELECTS = [
    "SELECT * { ?s ?p ?o }",
    "SELECT ?s (COUNT(?p) AS ?n) { ?s ?p ?o } GROUP BY ?s",
    "SELECT ?s ?label { ?s a ex:Section OPTIONAL { ?s rdfs:label ?label FILTER(lang(?label) = 'en') } }",
    "SELECT ?g (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
    "SELECT ?s { ?s ex:partOf/^ex:partOf ?other FILTER(?s != ?other) }",
    "SELECT ?x ?t { ?x ex:note/ex:text ?t }",
    "SELECT ?s { ?s ex:size ?n FILTER(?n > 10) }",
    "SELECT DISTINCT ?type { ?s a ?type } ORDER BY ?type",
    "SELECT ?s ?v { VALUES ?v { '1' 1 } ?s ex:notation ?v }",
    "SELECT (SUM(?n) AS ?total) (GROUP_CONCAT(STR(?s); separator='|') AS ?all) { ?s ex:size ?n }",
    "SELECT ?s { ?s a ex:Section MINUS { ?s ex:size ?any } }",
    "SELECT ?p ?s { ?p ex:coHandledBy ?s FILTER NOT EXISTS { ?s ex:size ?n } }",
]


@pytest.mark.parametrize("query", AGREEING_SELECTS)
@pytest.mark.parametrize("infer", [True, False])
def test_engines_agree_on_selects(engines: dict[str, Engine], query: str, infer: bool) -> None:
    assert solutions(engines["embedded"], query, infer=infer) == solutions(engines["rdflib"], query, infer=infer)


@pytest.mark.parametrize(
    "query",
    [
        "CONSTRUCT { ?s ex:inUnit ?o } WHERE { ?s ex:partOf ?o }",
        "CONSTRUCT WHERE { ?s ?p ?o }",
        f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{G}b> {{ ?s ?p ?o }} }}",
        "DESCRIBE ex:s2",
    ],
)
def test_engines_agree_on_graphs(engines: dict[str, Engine], query: str) -> None:
    assert triples(engines["embedded"], query) == triples(engines["rdflib"], query)


@pytest.mark.parametrize("query", ["ASK { ex:s1 a ex:Unit }", "ASK { ex:s1 a ex:Office }"])
@pytest.mark.parametrize("infer", [True, False])
def test_engines_agree_on_asks(engines: dict[str, Engine], query: str, infer: bool) -> None:
    answers = {
        json.loads(engine.execute(QueryJob(PREFIXES + query, "json", infer=infer)).body)["boolean"]
        for engine in engines.values()
    }
    assert len(answers) == 1


BIND_DATA = """
<urn:a> <urn:p> <urn:b> .
<urn:a> <urn:p> <urn:c> .
<urn:d> <urn:p> <urn:e> .
"""


@pytest.mark.parametrize(
    "query",
    [
        "SELECT ?s ?o WHERE { ?s <urn:p> ?o }",
        # a subquery projecting the parameter: Virtuoso joins an unbound column with nothing, so it stays bound
        "SELECT ?s ?o WHERE { { SELECT ?s ?o WHERE { ?s <urn:p> ?o } } }",
        "SELECT ?s ?n WHERE { { SELECT ?s (COUNT(?o) AS ?n) WHERE { ?s <urn:p> ?o } GROUP BY ?s ORDER BY ?s } }",
        "SELECT ?s ?t WHERE { { SELECT ?s (STR(?s) AS ?t) WHERE { ?s <urn:p> ?o } } } ORDER BY ?s",
    ],
)
def test_remote_parameter_binding_answers_as_substitution(query: str) -> None:
    """The remote engine writes a named query's parameters into its text; the query it sends answers on any SPARQL
    1.1 engine what pyoxigraph's own substitution answers, and a subquery's projected parameter column is bound."""
    from service.engines.remote import bind_parameters

    store = ox.Store()
    store.load(BIND_DATA.encode(), format=ox.RdfFormat.N_TRIPLES)
    job = QueryJob(query, "json", bindings=(("s", "<urn:a>"),))
    sent = bind_parameters(query, job)

    def rows(results: ox.QuerySolutions) -> list[tuple[str | None, ...]]:
        names = [v.value for v in results.variables]
        return sorted(tuple(None if s[n] is None else str(s[n]) for n in names) for s in results)

    expected = rows(store.query(query, substitutions={ox.Variable("s"): ox.NamedNode("urn:a")}))
    assert rows(store.query(sent)) == expected and expected
    inner = sent[sent.index("{", sent.index("{") + 1) :]
    if "SELECT" in inner:
        assert "(<urn:a> AS ?s)" in inner  # the subquery's column, bound
