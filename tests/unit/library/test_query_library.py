"""The named-query library: metadata, checks at load, binding of parameter values, and injection payloads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib.plugins.sparql import prepareQuery

from service import names
from service.errors import ConfigError, InvalidParameterError, NotFoundError
from service.library.queries import Library, NamedQuery, load_library, load_query, nt_literal
from service.library.vocabulary import LANGUAGES, PARAM_TYPES, Vocabulary, load_vocabulary
from service.resources import queries_dir

ID = names.ID
DOMAIN = ID + "domain/"
SECTION = ID + "section/"

# What clients send to break out of a term: quotes, braces, comments, newlines, IRI ends, statement ends.
PAYLOADS = [
    '"} ; DROP ALL ; #',
    "'} UNION { ?s ?p ?o } #",
    "x> ; DROP GRAPH <urn:g> ; <y",
    "} } SERVICE <http://127.0.0.1:1/> { ?s ?p ?o } #",
    "line one\nline two\r\n# comment",
    '\\" } ?s ?p ?o #',
    "\u0000\u001f\u2028 control characters",
    "land-management> ; DROP ALL",
    "https://w3id.org/guian-kg/id/section/6> } ; DROP ALL ; #",
]


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return load_vocabulary()


@pytest.fixture(scope="module")
def library(vocabulary: Vocabulary) -> Library:
    return load_library(vocabulary=vocabulary)


def write_query(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.rq"
    path.write_text(text, encoding="utf-8")
    return path


HEADER = """#+ title.en: T
#+ title.zh: 题
#+ description.en: D
#+ description.zh: 述
"""


# --- the library as shipped -----------------------------------------------------------------------------------


def test_every_query_loads_with_bilingual_metadata(library: Library):
    assert len(library) >= 12
    for query in library:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", query.name)
        for lang in LANGUAGES:
            assert query.title.get(lang) and query.description.get(lang), (query.name, lang)
        for param in query.parameters:
            assert param.type in PARAM_TYPES
            assert all(param.description.get(lang) for lang in LANGUAGES), (query.name, param.name)
        assert query.form == "select"
        for param in query.parameters:
            assert param.name in query.variables, f"{query.name}: ?{param.name} must be projected"


def test_the_issue_questions_are_all_there(library: Library):
    for name in (
        "co-handling-sections",
        "project-co-handling",
        "section-profile",
        "sections-for-domain",
        "section-collaborators",
        "collaboration-mechanisms",
        "instruction-flow",
        "public-outcomes",
        "fact-provenance",
        "domain-tree",
        "section-counts",
        "stated-vs-inferred",
    ):
        assert library.get(name).name == name


def test_every_query_also_parses_in_rdflib(library: Library):
    for query in library:
        prepared = query.prepare({p.name: p.sample(query.vocabulary) for p in query.parameters if p.required})
        prepareQuery(prepared.text)


def test_the_flagship_takes_several_domains_and_a_project_kind(library: Library):
    query = library.get("co-handling-sections")
    domain = query.parameter("domain")
    assert domain is not None and domain.multiple and domain.type == "domain"
    assert domain.default == ("land-management", "environmental-protection", "livelihoods")
    assert query.parameter("kind").type == "project-kind"


def test_unknown_query_is_not_found_and_lists_the_names(library: Library):
    with pytest.raises(NotFoundError) as caught:
        library.get("no-such-query")
    assert "co-handling-sections" in caught.value.extra["allowed"]


def test_metadata_lists_parameters_with_allowed_values(library: Library):
    info = library.get("sections-for-domain").metadata()
    domain = next(p for p in info["parameters"] if p["name"] == "domain")
    assert domain["type"] == "domain" and domain["default"] == "education"
    assert "land-management" in domain["allowed"] and "carbon-peak-neutrality" in domain["allowed"]
    lang = next(p for p in info["parameters"] if p["name"] == "lang")
    assert lang["allowed"] == ["zh", "en"]
    json.dumps(info, ensure_ascii=False)  # the API serialises it as is


def test_ordered_is_read_from_order_by(library: Library):
    assert library.get("section-counts").ordered
    assert library.get("co-handling-sections").ordered


# --- resolving values to RDF terms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        DOMAIN + "carbon-peak-neutrality",
        "carbon-peak-neutrality",
        "碳达峰碳中和",
        "Carbon peaking and carbon neutrality",
        "  carbon PEAKING and   carbon neutrality ",
        "carbon-peak",  # a unique prefix of a slug
    ],
)
def test_a_domain_may_be_an_iri_a_slug_or_a_label(library: Library, value: str):
    prepared = library.get("sections-for-domain").prepare({"domain": value})
    assert ("domain", f"<{DOMAIN}carbon-peak-neutrality>") in prepared.bindings


@pytest.mark.parametrize("value", ["6", SECTION + "6", "秘书六科", "Secretarial Section 6", "secretarial section 6"])
def test_a_section_may_be_a_number_an_iri_or_a_label(library: Library, value: str):
    prepared = library.get("section-profile").prepare({"section": value})
    assert ("section", f"<{SECTION}6>") in prepared.bindings


def test_languages_integers_and_defaults_bind_as_literals(library: Library):
    prepared = library.get("domain-tree").prepare({"lang": "ZH", "depth": "2"})
    assert dict(prepared.bindings) == {"depth": '"2"^^<http://www.w3.org/2001/XMLSchema#integer>', "lang": '"zh"'}
    defaults = dict(library.get("domain-tree").prepare({}).bindings)
    assert defaults["lang"] == '"en"' and defaults["depth"].startswith('"3"')


def test_an_optional_parameter_left_out_stays_unbound(library: Library):
    prepared = library.get("public-outcomes").prepare({})
    assert "section" not in dict(prepared.bindings)


def test_several_domains_become_a_values_block_of_graph_iris(library: Library):
    query = library.get("co-handling-sections")
    prepared = query.prepare({"domain": ["土地管理", "environment", DOMAIN + "livelihoods", "土地管理"]})
    block = re.search(r"VALUES \?domain \{([^}]*)\}", prepared.text).group(1).split()
    assert block == [f"<{DOMAIN}land-management>", f"<{DOMAIN}environmental-protection>", f"<{DOMAIN}livelihoods>"]
    assert prepared.text.replace(re.search(r"VALUES \?domain \{[^}]*\}", prepared.text).group(0), "") == (
        query.text.replace(re.search(r"VALUES \?domain \{[^}]*\}", query.text).group(0), "")
    )
    assert "domain" not in dict(prepared.bindings)


def test_bind_keeps_the_cli_contract_and_refuses_what_changes_the_text(library: Library):
    assert dict(library.get("section-profile").bind({"section": "3"}))["section"] == f"<{SECTION}3>"
    assert library.get("co-handling-sections").bind({})  # defaults: the text as written
    with pytest.raises(InvalidParameterError):
        library.get("co-handling-sections").bind({"domain": ["education"]})


@pytest.mark.parametrize(
    ("name", "params", "parameter"),
    [
        ("sections-for-domain", {"domain": "no-such-domain"}, "domain"),
        ("sections-for-domain", {"domain": "e"}, "domain"),  # too short to be a prefix
        ("section-profile", {"section": "10"}, "section"),
        ("section-profile", {"section": "秘书十科"}, "section"),
        ("section-profile", {"lang": "fr"}, "lang"),
        ("domain-tree", {"depth": "eleven"}, "depth"),
        ("domain-tree", {"depth": "11"}, "depth"),
        ("domain-tree", {"depth": "-1"}, "depth"),
        ("fact-provenance", {"resource": "section/6"}, "resource"),
        ("fact-provenance", {"resource": "file:///etc/passwd"}, "resource"),
        ("fact-provenance", {"resource": "https://example.org/a b"}, "resource"),
        ("search", {}, "text"),
        ("search", {"text": "x" * 201}, "text"),
        ("section-profile", {"section": ["1", "2"]}, "section"),
        ("section-profile", {"sectoin": "1"}, "sectoin"),
        ("co-handling-sections", {"domain": ["education"] * 51}, "domain"),
    ],
)
def test_bad_values_name_the_parameter_and_list_the_allowed_ones(library: Library, name, params, parameter):
    with pytest.raises(InvalidParameterError) as caught:
        library.get(name).prepare(params)
    error = caught.value
    assert error.status == 400 and error.code == "invalid-parameter"
    assert error.extra["parameter"] == parameter
    assert parameter in error.detail
    assert isinstance(error.extra["allowed"], list)


def test_unknown_values_list_every_allowed_short_name(library: Library):
    with pytest.raises(InvalidParameterError) as caught:
        library.get("co-handling-sections").prepare({"domain": ["education", "no-such-domain"]})
    allowed = caught.value.extra["allowed"]
    assert {"land-management", "environmental-protection", "livelihoods", "education"} <= set(allowed)
    with pytest.raises(InvalidParameterError) as caught:
        library.get("section-profile").prepare({"section": "0"})
    assert caught.value.extra["allowed"] == [str(n) for n in range(1, 10)]
    with pytest.raises(InvalidParameterError) as caught:
        library.get("co-handling-sections").prepare({"kind": "factory"})
    assert {"project", "industrial-project", "major-industrial-project"} <= set(caught.value.extra["allowed"])


def test_an_ambiguous_prefix_is_refused_with_the_candidates(library: Library):
    with pytest.raises(InvalidParameterError) as caught:
        library.get("sections-for-domain").prepare({"domain": "meeting"})  # meeting-minutes, meeting-services
    assert "meeting-minutes" in caught.value.detail and "meeting-services" in caught.value.detail


# --- injection: a payload changes nothing but the bound value ---------------------------------------------------


def _literal_value(term: str) -> str:
    """The lexical form of an N-Triples literal, parsed by a real parser."""
    triple = next(iter(ox.parse(f"<urn:s> <urn:p> {term} .".encode(), ox.RdfFormat.N_TRIPLES)))
    return triple.object.value


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_string_payload_is_one_literal_and_the_text_is_untouched(library: Library, payload: str):
    query = library.get("search")
    prepared = query.prepare({"text": payload})
    assert prepared.text == query.text
    (name, term), *rest = prepared.bindings
    assert name == "text" and not rest
    assert _literal_value(term) == payload  # exactly the value, nothing more


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize(
    ("name", "parameter"),
    [
        ("sections-for-domain", "domain"),
        ("section-profile", "section"),
        ("section-profile", "lang"),
        ("fact-provenance", "resource"),
        ("co-handling-sections", "domain"),
        ("co-handling-sections", "kind"),
        ("domain-tree", "depth"),
    ],
)
def test_payloads_in_typed_parameters_are_refused(library: Library, payload: str, name: str, parameter: str):
    with pytest.raises(InvalidParameterError) as caught:
        library.get(name).prepare({parameter: payload})
    assert caught.value.extra["parameter"] == parameter


def test_string_payloads_run_as_values_on_the_embedded_engine(library: Library, cache_dir):
    from service.config import load_settings
    from service.data.snapshots import load_snapshot
    from service.engines.base import QueryJob
    from service.engines.factory import engine_for

    settings = load_settings({"cache_dir": str(cache_dir), "engine": "embedded"}, environ={})
    engine = engine_for(settings, load_snapshot(settings))
    query = library.get("search")
    for payload in PAYLOADS:
        prepared = query.prepare({"text": payload})
        body = json.loads(engine.execute(QueryJob(prepared.text, "json", bindings=prepared.bindings)).body)
        assert body["results"]["bindings"] == [], payload
    prepared = query.prepare({"text": "秘书六"})
    body = json.loads(engine.execute(QueryJob(prepared.text, "json", bindings=prepared.bindings)).body)
    assert SECTION + "6" in {row["resource"]["value"] for row in body["results"]["bindings"]}
    assert {row["text"]["value"] for row in body["results"]["bindings"]} == {"秘书六"}


def test_nt_literal_escapes_every_character_that_could_end_it():
    for text in ['"', "\\", "\n", "\r", 'a"b\\c\nd', "\u0000"]:
        assert _literal_value(nt_literal(text)) == text


# --- a deployment's own base IRI -----------------------------------------------------------------------------


def test_queries_and_values_follow_the_deployment_base_iri(vocabulary: Vocabulary):
    base = "https://kg.example.org/"
    library = load_library(base_iri=base, vocabulary=vocabulary)
    query = library.get("co-handling-sections")
    assert names.DEFAULT_BASE not in query.text and f"<{base}id/domain/>" in query.text
    prepared = query.prepare({"domain": [f"{base}id/domain/education", DOMAIN + "transport"]})
    assert f"<{base}id/domain/education> <{base}id/domain/transport>" in prepared.text
    resource = library.get("fact-provenance").prepare({}).bindings
    assert resource == (("resource", f"<{base}id/project/major-industrial-project>"),)


# --- a broken file stops the library, naming the file and the line ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (HEADER + "SELECT ?x WHERE {\n  ?x ?p \n}\n", 6, "syntax error"),
        (HEADER + "SELECT * WHERE {\n  ?s ?p ?o .\n  FILTER(?s = )\n}\n", 7, "syntax error"),
        (HEADER + "#+ param: x type=color\nSELECT ?x WHERE { ?x ?p ?o }\n", 5, "type="),
        (HEADER + "#+ param: x type=string required=maybe\nSELECT ?x WHERE { ?x ?p ?o }\n", 5, "required"),
        (HEADER + "#+ param: y type=string\nSELECT ?x WHERE { ?x ?p ?o }\n", 5, "not used"),
        (HEADER + "#+ param: lang type=language default=en\nSELECT ?x WHERE { ?x ?p ?lang }\n", 5, "projection"),
        (HEADER + "#+ param: d type=domain default=nowhere\nSELECT ?d WHERE { ?d ?p ?o }\n", 5, "unknown domain"),
        (
            HEADER + "#+ param: d type=domain multiple=true default=education\nSELECT ?d WHERE { ?d ?p ?o }\n",
            5,
            "VALUES",
        ),
        (
            HEADER + "#+ param: d type=domain multiple=true default=education\n"
            "SELECT ?d WHERE { VALUES ?d { <urn:x> } }\n",
            5,
            "not the default",
        ),
        (HEADER + "#+ param: s type=string multiple=true\nSELECT ?s WHERE { VALUES ?s { 1 } }\n", 5, "multiple"),
        (HEADER + "#+ param: format type=string\nSELECT ?format WHERE { ?format ?p ?o }\n", 5, "variable name"),
        (HEADER + "#+ colour: red\nSELECT * WHERE { ?s ?p ?o }\n", 5, "unknown metadata"),
        (HEADER + "SELECT * WHERE { ?s ?p ?o }\n#+ title.en: late\n", 6, "top of the file"),
        ("#+ title.en: only english\nSELECT * WHERE { ?s ?p ?o }\n", 1, "title.zh"),
    ],
)
def test_a_broken_file_names_its_file_and_line(tmp_path: Path, vocabulary: Vocabulary, body: str, line: int, words):
    write_query(tmp_path, "good", HEADER + "SELECT * WHERE { ?s ?p ?o }\n")
    path = write_query(tmp_path, "broken", body)
    with pytest.raises(ConfigError) as caught:
        load_library(tmp_path, vocabulary=vocabulary)
    assert f"{path}:{line}" in caught.value.detail, caught.value.detail
    assert words in caught.value.detail
    assert caught.value.extra["line"] == line


def test_an_empty_folder_is_an_error(tmp_path: Path, vocabulary: Vocabulary):
    with pytest.raises(ConfigError):
        load_library(tmp_path, vocabulary=vocabulary)


def test_a_file_of_my_own_with_every_kind_of_parameter(tmp_path: Path, vocabulary: Vocabulary):
    path = write_query(
        tmp_path,
        "every-kind",
        HEADER
        + "#+ description.en: continued\n"
        + "#+ param: d type=domain multiple=true default=education,transport\n"
        + "#+ param.d.en: Domains\n#+ param.d.zh: 领域\n"
        + '#+ param: t type=string default="two words" max-length=20\n'
        + "#+ param: i type=iri required=true\n"
        + "#+ param: n type=integer default=2 min=1 max=5\n"
        + "#+ param: c type=string allowed=red,green default=red\n"
        + "# a plain comment\n\n"
        + f"PREFIX domain: <{DOMAIN}>\n"
        + "SELECT ?d ?t ?i ?n ?c WHERE {\n"
        + "  VALUES ?d { domain:education domain:transport }\n"
        + "  ?i ?p ?t FILTER(?n > 0 && ?c != '')\n}\n",
    )
    query = load_query(path, vocabulary)
    assert isinstance(query, NamedQuery)
    assert query.description["en"] == "D continued"
    d, t, i, n, c = query.parameters
    assert d.multiple and d.default == ("education", "transport") and d.description == {"en": "Domains", "zh": "领域"}
    assert t.default == ("two words",) and t.max_length == 20
    assert i.required and i.type == "iri"
    assert (n.minimum, n.maximum) == (1, 5)
    assert c.allowed == ("red", "green")
    with pytest.raises(InvalidParameterError):
        query.prepare({"i": "https://example.org/x", "c": "blue"})
    prepared = query.prepare({"i": "https://example.org/x"})
    assert prepared.text == query.text  # the default is the file's own VALUES block
    given = query.prepare({"i": "https://example.org/x", "d": ["交通", "education"]})
    assert f"VALUES ?d {{ <{DOMAIN}transport> <{DOMAIN}education> }}" in given.text
    assert dict(prepared.bindings)["t"] == '"two words"'
    assert not query.ordered and query.variables == ("d", "t", "i", "n", "c")


def test_chinese_lines_run_on_and_english_ones_take_a_space(library: Library):
    query = library.get("co-handling-sections")
    assert "  " not in query.description["en"] and " " not in query.description["zh"].replace("gk:", "")[:40]
    assert "科室对接所涉领域" in query.description["zh"]


def test_the_service_description_lists_the_named_queries(library: Library):
    from rdflib import RDF, BNode, Graph, URIRef
    from rdflib.namespace import DCTERMS, SH

    graph, service = Graph(), BNode()
    library.describe(graph, service, "http://127.0.0.1:8000/")
    parts = set(graph.objects(service, DCTERMS.hasPart))
    assert URIRef("http://127.0.0.1:8000/api/queries/co-handling-sections") in parts
    assert len(parts) == len(library)
    assert all((part, RDF.type, SH.SPARQLSelectExecutable) in graph for part in parts)
    assert all(graph.value(part, SH.select) for part in parts)


def test_the_shipped_folder_is_the_default(library: Library):
    assert {p.stem for p in queries_dir().glob("*.rq")} == set(library.names())
