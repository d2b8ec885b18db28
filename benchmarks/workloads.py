"""The workloads, built from the exported dataset and the named-query library (never copied from a file).

- flagship: the co-handling query (`queries/co-handling-sections.rq` with its defaults: a project touching land
  management, environmental protection and livelihoods), the same request repeated.
- cold: every named query with varied parameters, plus 50 ad-hoc analyst queries generated from families of
  shapes with varied constants, filters, orderings and limits; no two requests identical.
- pages: CONSTRUCT and DESCRIBE of the resource pages (every `…/id/…` resource that is a subject).

A workload is a list of `Query` items, independent of the server: `request_for()` makes the HTTP request of
one item for one system (POST of the query text to its SPARQL endpoint, or ours' REST path for named queries).
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pyoxigraph as ox

from benchmarks.loadgen import Request

GK = "https://w3id.org/guian-kg/ontology#"
ID = "https://w3id.org/guian-kg/id/"
GRAPH = "https://w3id.org/guian-kg/graph/"
INFERRED = GRAPH + "inferred"
FLAGSHIP = "co-handling-sections"
PREFIXES = """PREFIX gk: <https://w3id.org/guian-kg/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX org: <http://www.w3.org/ns/org#>
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
"""
RESULTS_JSON = "application/sparql-results+json"
NTRIPLES = "application/n-triples"


@dataclass(frozen=True)
class Query:
    """One workload item: the SPARQL text every system gets, and for named queries ours' REST path."""

    label: str
    text: str
    form: str  # select | ask | construct | describe
    rest: str | None = None  # "/api/queries/<name>?…" (ours only)
    get: bool = False  # sent as GET ?query=… (else POSTed as an application/sparql-query body)

    @property
    def accept(self) -> str:
        return RESULTS_JSON if self.form in ("select", "ask") else NTRIPLES


def request_for(query: Query, sparql_path: str, *, rest: bool = False) -> Request:
    """The HTTP request of `query` for a system whose SPARQL endpoint is `sparql_path`.

    Queries go as POST with an `application/sparql-query` body: one encoding every system decodes alike
    (rdflib-endpoint decodes form bodies twice, see PITFALLS).
    """
    if rest and query.rest is not None:
        return Request("GET", query.rest, accept=query.accept, label=query.label)
    if query.get:
        return Request(
            "GET", f"{sparql_path}?query={quote(query.text, safe='')}", accept=query.accept, label=query.label
        )
    return Request(
        "POST",
        sparql_path,
        query.text.encode("utf-8"),
        "application/sparql-query",
        query.accept,
        label=query.label,
    )


def query_form(text: str) -> str:
    body = re.sub(r"(?m)^\s*(#.*|PREFIX\s+\S*\s*<[^>]*>|BASE\s*<[^>]*>)\s*$", "", text)
    match = re.search(r"\b(SELECT|ASK|CONSTRUCT|DESCRIBE)\b", body, re.IGNORECASE)
    return match.group(1).lower() if match else "select"


# --- the data the generators draw constants from ---------------------------------------------------------


@dataclass
class Facts:
    """Constants of the dataset: sections, domains and their tops, mechanisms, projects, claims, resources."""

    sections: list[tuple[str, int]]
    domains: list[str]
    tops: list[str]
    broader: dict[str, str]
    handled: list[tuple[str, str]]  # (section, domain)
    mechanisms: list[str]
    projects: list[str]  # anything that touches a domain
    claims: list[str]
    quote_chars: list[str]
    label_words: dict[str, list[str]]  # lang -> substrings of labels
    resources: list[str]  # every …/id/… subject
    classes: list[str]
    properties: list[str]


def _column(store: ox.Store, query: str, *names: str) -> list:
    rows = []
    for solution in store.query(PREFIXES + query, use_default_graph_as_union=True):
        values = [solution[name].value if solution[name] is not None else None for name in names]
        rows.append(values[0] if len(names) == 1 else tuple(values))
    return rows


def load_facts(nquads: Path) -> Facts:
    """Read the constants of the workloads from the exported dataset."""
    store = ox.Store()
    store.load(path=str(nquads), format=ox.RdfFormat.N_QUADS)
    sections = [
        (s, int(n))
        for s, n in _column(store, "SELECT ?s ?n { ?s a gk:SecretarialSection ; skos:notation ?n }", "s", "n")
    ]
    domains = sorted(set(_column(store, "SELECT ?d { ?d skos:inScheme ?scheme ; a skos:Concept }", "d")))
    tops = sorted(set(_column(store, "SELECT ?d { ?d skos:topConceptOf ?scheme }", "d")))
    broader = dict(_column(store, "SELECT ?d ?b { ?d skos:broader ?b }", "d", "b"))
    handled = sorted(set(_column(store, "SELECT ?s ?d { ?s gk:handlesDomain ?d }", "s", "d")))
    mechanisms = sorted(set(_column(store, "SELECT ?m { ?m a/rdfs:subClassOf* gk:CollaborationMechanism }", "m")))
    projects = sorted(set(_column(store, "SELECT ?p { ?p gk:touchesDomain ?d }", "p")))
    claims = sorted(set(_column(store, "SELECT ?c { ?c a gk:Claim }", "c")))
    quotes = _column(store, "SELECT ?q { ?c gk:sourceQuote ?q }", "q")
    chars = sorted({ch for q in quotes for ch in q if "\u4e00" <= ch <= "\u9fff"})
    words: dict[str, list[str]] = {}
    for lang in ("zh", "en"):
        labels = _column(store, f'SELECT ?l {{ ?s rdfs:label ?l FILTER(LANG(?l) = "{lang}") }}', "l")
        found: set[str] = set()
        for label in labels:
            if lang == "en":
                found.update(w.lower() for w in re.findall(r"[A-Za-z]{4,}", label))
            else:
                found.update(
                    label[i : i + 2] for i in range(0, max(len(label) - 1, 0)) if "\u4e00" <= label[i] <= "\u9fff"
                )
        words[lang] = sorted(w for w in found if '"' not in w and "\\" not in w)
    resources = sorted(
        {s for s in _column(store, "SELECT DISTINCT ?s { ?s ?p ?o FILTER(isIRI(?s)) }", "s") if s.startswith(ID)}
    )
    classes = sorted(set(_column(store, "SELECT DISTINCT ?c { ?x a ?c FILTER(isIRI(?c)) }", "c")))
    properties = sorted(set(_column(store, "SELECT DISTINCT ?p { ?s ?p ?o }", "p")))
    return Facts(
        sections=sorted(sections, key=lambda x: x[1]),
        domains=domains,
        tops=tops,
        broader=broader,
        handled=handled,
        mechanisms=mechanisms,
        projects=projects,
        claims=claims,
        quote_chars=chars,
        label_words=words,
        resources=resources,
        classes=classes,
        properties=properties,
    )


# --- named queries ---------------------------------------------------------------------------------------


def inline_bindings(text: str, bindings: Sequence[tuple[str, str]]) -> str:
    """The query with its parameter bindings as a VALUES block opening the outermost group.

    That is how the service binds them (pyoxigraph `substitutions=`: a VALUES join on the outermost group), in
    text any SPARQL 1.1 endpoint runs. Terms come from the library's own resolution (N-Triples syntax).
    """
    if not bindings:
        return text
    match = None
    for candidate in re.finditer(r"\bWHERE\s*\{", text, re.IGNORECASE):
        line_start = text.rfind("\n", 0, candidate.start()) + 1
        if "#" not in text[line_start : candidate.start()]:
            match = candidate
            break
    if match is None:
        raise ValueError("no WHERE { in the query")
    variables = " ".join(f"?{name}" for name, _ in bindings)
    terms = " ".join(term for _, term in bindings)
    block = f"\n  VALUES ({variables}) {{ ({terms}) }}\n"
    return text[: match.end()] + block + text[match.end() :]


def _parameter_values(param, facts: Facts, vocabulary, rng: random.Random) -> list:
    """Values a client might give one parameter (lists for multi-valued ones); None = left out."""
    kind = param.type
    if kind == "language":
        values: list = ["zh", "en"]
    elif kind == "integer":
        low = param.minimum if param.minimum is not None else 0
        high = param.maximum if param.maximum is not None else low + 10
        values = [str(n) for n in range(low, high + 1)]
    elif kind == "iri":
        values = list(facts.resources)
    elif kind == "string":
        values = [*facts.label_words["en"], *facts.label_words["zh"]]
    else:
        values = vocabulary.allowed(kind)
    if param.multiple:
        combos = set()
        for _ in range(200):
            size = rng.randint(1, min(4, len(values)))
            combos.add(tuple(sorted(rng.sample(values, size))))
        values = [list(c) for c in sorted(combos)]
    if not param.required and not param.default:
        values = [None, *values]
    return values


def _strip_comments(text: str) -> str:
    return re.sub(r"(?m)(^|\s)#[^\n]*", r"\1", text)


def named_variants(library, facts: Facts, per_query: int, seed: int = 7) -> list[Query]:
    """Each named query with up to `per_query` distinct parameter assignments (its defaults first)."""
    rng = random.Random(seed)
    queries: list[Query] = []
    for named in library:
        if re.search(r"\bSERVICE\b", _strip_comments(named.text), re.IGNORECASE):
            continue  # federation needs a second endpoint: not part of these workloads
        spaces = [_parameter_values(p, facts, library.vocabulary, rng) for p in named.parameters]
        total = 1
        for space in spaces:
            total *= len(space)
        if total <= per_query * 4:
            combos = list(itertools.product(*spaces))
            rng.shuffle(combos)
        else:
            combos = [tuple(rng.choice(space) for space in spaces) for _ in range(per_query * 4)]
        seen: set[str] = set()
        chosen = 0
        for combo in [(), *combos]:
            params = {p.name: v for p, v in zip(named.parameters, combo, strict=False) if v is not None}
            try:
                prepared = named.prepare(params)
            except Exception:  # e.g. an ambiguous label: a client would get a 400, not a workload item
                continue
            text = inline_bindings(prepared.text, prepared.bindings)
            if text in seen:
                continue
            seen.add(text)
            rest_params = [(k, x) for k, v in params.items() for x in (v if isinstance(v, list) else [v])]
            rest = f"/api/queries/{named.name}" + (f"?{urlencode(rest_params)}" if rest_params else "")
            queries.append(Query(f"named:{named.name}", text, named.form, rest))
            chosen += 1
            if chosen >= per_query:
                break
    return queries


def flagship(library) -> Query:
    """The flagship co-handling query with its default parameters."""
    named = library.get(FLAGSHIP)
    prepared = named.prepare({})
    return Query(
        f"flagship:{FLAGSHIP}",
        inline_bindings(prepared.text, prepared.bindings),
        named.form,
        f"/api/queries/{FLAGSHIP}",
    )


# --- ad-hoc analyst queries -------------------------------------------------------------------------------


def _iri(x: str) -> str:
    return f"<{x}>"


def _lit(x: str) -> str:
    return '"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _order(rng: random.Random, key: str) -> str:
    return f"{rng.choice(['ASC', 'DESC'])}({key})"


def _descendants(facts: Facts, top: str) -> list[str]:
    return [d for d in facts.domains if _ancestors(facts, d)[-1] == top]


def _ancestors(facts: Facts, domain: str) -> list[str]:
    chain = [domain]
    while chain[-1] in facts.broader and len(chain) < 10:
        chain.append(facts.broader[chain[-1]])
    return chain


Family = Callable[[random.Random, Facts], str]


def _f_sections_under_top(rng, f):
    top, lang = rng.choice(f.tops), rng.choice(["zh", "en"])
    return f"""SELECT DISTINCT ?section ?notation ?domain ?label WHERE {{
  ?domain skos:broader* {_iri(top)} ; rdfs:label ?label .
  ?section gk:handlesDomain ?domain ; skos:notation ?notation .
  FILTER(LANG(?label) = {_lit(lang)})
}} ORDER BY {_order(rng, "xsd:integer(?notation)")} STR(?domain)"""


def _f_items_having(rng, f):
    k = rng.randint(0, 5)
    return f"""SELECT ?section (COUNT(DISTINCT ?item) AS ?items) WHERE {{
  ?section a gk:SecretarialSection ; gk:hasWorkItem ?item .
}} GROUP BY ?section HAVING (COUNT(DISTINCT ?item) >= {k}) ORDER BY {_order(rng, "?items")} STR(?section)"""


def _f_label_search(rng, f):
    lang = rng.choice(["zh", "en"])
    word = rng.choice(f.label_words[lang])
    limit = rng.randint(3, 40)
    return f"""SELECT ?s ?label WHERE {{
  ?s rdfs:label ?label .
  FILTER(LANG(?label) = {_lit(lang)} && CONTAINS(LCASE(STR(?label)), {_lit(word)}))
}} ORDER BY {_order(rng, "STR(?label)")} STR(?s) LIMIT {limit}"""


def _f_cohandled_by_sections(rng, f):
    chosen = rng.sample([s for s, _ in f.sections], rng.randint(1, 4))
    values = " ".join(_iri(s) for s in chosen)
    return f"""SELECT ?project ?section ?label WHERE {{
  VALUES ?section {{ {values} }}
  ?project gk:coHandledBy ?section .
  OPTIONAL {{ ?project rdfs:label ?label FILTER(LANG(?label) = {_lit(rng.choice(["zh", "en"]))}) }}
}} ORDER BY STR(?project) STR(?section)"""


def _f_mechanism_participants(rng, f):
    k = rng.randint(0, 6)
    return f"""SELECT ?mechanism (COUNT(DISTINCT ?section) AS ?n) WHERE {{
  ?mechanism gk:hasParticipant ?section .
}} GROUP BY ?mechanism HAVING (COUNT(DISTINCT ?section) > {k}) ORDER BY {_order(rng, "?n")} STR(?mechanism)"""


def _f_quotes_with_char(rng, f):
    char = rng.choice(f.quote_chars)
    limit = rng.randint(1, 15)
    return f"""SELECT ?claim ?quote WHERE {{
  ?claim a gk:Claim ; gk:sourceQuote ?quote .
  FILTER(CONTAINS(STR(?quote), {_lit(char)}))
}} ORDER BY DESC(STRLEN(STR(?quote))) STR(?claim) LIMIT {limit}"""


def _f_ask_handles(rng, f):
    section = rng.choice(f.sections)[0]
    domain = rng.choice(f.domains)
    path = rng.choice(["gk:handlesDomain", "gk:handlesDomain/skos:broader*", "gk:handlesDomain/^skos:broader*"])
    return f"ASK {{ {_iri(section)} {path} {_iri(domain)} }}"


def _f_inferred_types(rng, f):
    namespace = rng.choice(
        [
            GK,
            "http://www.w3.org/ns/org#",
            "http://www.w3.org/2004/02/skos/core#",
            "http://www.w3.org/ns/prov#",
            "http://data.europa.eu/m8g/",
            "http://",
        ]
    )
    limit = rng.randint(3, 30)
    return f"""SELECT ?type (COUNT(?s) AS ?n) WHERE {{
  GRAPH {_iri(INFERRED)} {{ ?s a ?type }}
  FILTER(STRSTARTS(STR(?type), {_lit(namespace)}))
}} GROUP BY ?type ORDER BY DESC(?n) STR(?type) LIMIT {limit}"""


def _f_unhandled_domains(rng, f):
    top = rng.choice(f.tops)
    return f"""SELECT ?domain WHERE {{
  ?domain skos:broader+ {_iri(top)} .
  FILTER NOT EXISTS {{ ?section gk:handlesDomain ?domain }}
}} ORDER BY {_order(rng, "STR(?domain)")}"""


def _f_graph_properties(rng, f):
    graph = rng.choice([*f.claims, GRAPH + "provenance", GRAPH + "ontology", INFERRED])
    return f"""SELECT ?p (COUNT(*) AS ?n) WHERE {{
  GRAPH {_iri(graph)} {{ ?s ?p ?o }}
}} GROUP BY ?p ORDER BY {_order(rng, "?n")} STR(?p)"""


def _f_grandparents(rng, f):
    lang = rng.choice(["zh", "en"])
    path = rng.choice(["skos:broader/skos:broader", "skos:broader/skos:broader?", "skos:broaderTransitive"])
    return f"""SELECT DISTINCT ?domain ?ancestor ?label WHERE {{
  ?domain {path} ?ancestor .
  ?ancestor rdfs:label ?label FILTER(LANG(?label) = {_lit(lang)})
}} ORDER BY STR(?ancestor) STR(?domain)"""


def _f_bilingual_labels(rng, f):
    k = rng.randint(5, 40)
    limit, offset = rng.randint(5, 50), rng.randint(0, 30)
    return f"""SELECT ?x ?zh ?en WHERE {{
  ?x rdfs:label ?zh , ?en .
  FILTER(LANG(?zh) = "zh" && LANG(?en) = "en" && STRLEN(?en) > {k})
}} ORDER BY STRLEN(?en) STR(?x) STR(?zh) STR(?en) LIMIT {limit} OFFSET {offset}"""


def _f_project_domain(rng, f):
    domain = rng.choice(f.domains)
    return f"""SELECT ?project ?section ?stated WHERE {{
  ?project gk:touchesDomain/skos:broader* {_iri(domain)} ; gk:coHandledBy ?section .
  BIND(EXISTS {{ ?project gk:statedParticipant ?section }} AS ?stated)
}} ORDER BY STR(?project) STR(?section)"""


def _f_superclasses(rng, f):
    cls = rng.choice([c for c in f.classes if c.startswith(GK)] or f.classes)
    return f"""SELECT DISTINCT ?super WHERE {{
  {_iri(cls)} rdfs:subClassOf+ ?super .
  FILTER(isIRI(?super))
}} ORDER BY {_order(rng, "STR(?super)")}"""


def _f_minus(rng, f):
    mechanism = rng.choice(f.mechanisms)
    return f"""SELECT ?section ?notation WHERE {{
  {_iri(mechanism)} gk:hasParticipant ?section .
  ?section skos:notation ?notation .
  MINUS {{ ?project gk:statedParticipant ?section }}
}} ORDER BY {_order(rng, "xsd:integer(?notation)")}"""


def _f_union_outcomes(rng, f):
    chosen = rng.sample([s for s, _ in f.sections], rng.randint(2, 6))
    values = " ".join(_iri(s) for s in chosen)
    return f"""SELECT ?section ?what ?kind WHERE {{
  VALUES ?section {{ {values} }}
  {{ ?what gk:deliveredBy ?section . BIND("outcome" AS ?kind) }}
  UNION {{ ?section gk:contributesTo ?what . BIND("goal" AS ?kind) }}
  UNION {{ ?what gk:advancedBy ?section . BIND("matter" AS ?kind) }}
}} ORDER BY ?kind STR(?section) STR(?what)"""


def _f_construct_tree(rng, f):
    top = rng.choice(f.tops)
    lang = rng.choice(["zh", "en"])
    return f"""CONSTRUCT {{ ?d skos:broader ?b ; rdfs:label ?label }} WHERE {{
  ?d skos:broader ?b ; rdfs:label ?label .
  ?b skos:broader* {_iri(top)} .
  FILTER(LANG(?label) = {_lit(lang)})
}}"""


def _f_claims_about(rng, f):
    resource = rng.choice(f.resources)
    return f"""SELECT ?g (COUNT(*) AS ?n) WHERE {{
  GRAPH ?g {{ {{ {_iri(resource)} ?p ?o }} UNION {{ ?s ?p {_iri(resource)} }} }}
}} GROUP BY ?g ORDER BY {_order(rng, "?n")} STR(?g)"""


def _f_regex_labels(rng, f):
    word = rng.choice(f.label_words["en"])[:3]
    return f"""SELECT ?s ?label WHERE {{
  ?s skos:prefLabel ?label .
  FILTER(LANG(?label) = "en" && REGEX(STR(?label), {_lit("^" + word)}, "i"))
}} ORDER BY STR(?label) STR(?s)"""


def _f_stats(rng, f):
    top = rng.choice(f.tops)
    return f"""SELECT (COUNT(DISTINCT ?d) AS ?domains) (COUNT(DISTINCT ?s) AS ?sections)
       (MAX(STRLEN(STR(?l))) AS ?longest)
WHERE {{
  ?d skos:broader* {_iri(top)} ; rdfs:label ?l .
  OPTIONAL {{ ?s gk:handlesDomain ?d }}
}}"""


FAMILIES: tuple[Family, ...] = (
    _f_sections_under_top,
    _f_items_having,
    _f_label_search,
    _f_cohandled_by_sections,
    _f_mechanism_participants,
    _f_quotes_with_char,
    _f_ask_handles,
    _f_inferred_types,
    _f_unhandled_domains,
    _f_graph_properties,
    _f_grandparents,
    _f_bilingual_labels,
    _f_project_domain,
    _f_superclasses,
    _f_minus,
    _f_union_outcomes,
    _f_construct_tree,
    _f_claims_about,
    _f_regex_labels,
    _f_stats,
)


def adhoc(facts: Facts, count: int = 50, seed: int = 11, exclude: set[str] | None = None) -> list[Query]:
    """`count` distinct ad-hoc analyst queries, families taken in turn, constants drawn at random."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    out: list[Query] = []
    attempts = 0
    while len(out) < count and attempts < count * 200:
        family = FAMILIES[attempts % len(FAMILIES)]
        attempts += 1
        text = PREFIXES + family(rng, facts)
        if text in seen:
            continue
        seen.add(text)
        name = family.__name__.removeprefix("_f_")
        out.append(Query(f"adhoc:{name}", text, query_form(text)))
    return out


def cold_mix(library, facts: Facts, *, per_query: int = 20, adhoc_count: int = 50, seed: int = 11) -> list[Query]:
    """Named queries with varied parameters and ad-hoc queries, shuffled; every text distinct."""
    named = named_variants(library, facts, per_query, seed=seed)
    texts = {q.text for q in named}
    mix = named + adhoc(facts, adhoc_count, seed=seed, exclude=texts)
    random.Random(seed).shuffle(mix)
    assert len({q.text for q in mix}) == len(mix)
    return mix


def as_get(queries: Sequence[Query], salt: str = "get") -> list[Query]:
    """The same queries sent by GET, each made a new text for every cache (an unused prefix declared first), so
    that a server that has answered them by POST cannot answer these from memory."""
    return [
        Query(q.label, f"PREFIX {salt}{i}: <urn:guian-kg:bench>\n{q.text}", q.form, get=True)
        for i, q in enumerate(queries)
    ]


def resource_pages(facts: Facts, limit: int | None = None) -> dict[str, list[Query]]:
    """The resource pages as CONSTRUCT (both directions) and as DESCRIBE, one of each per resource."""
    construct, describe = [], []
    for iri in facts.resources[:limit]:
        describe.append(Query("pages:describe", f"DESCRIBE <{iri}>", "describe", rest=_page_path(iri)))
        text = (
            f"CONSTRUCT {{ <{iri}> ?p ?o . ?s ?q <{iri}> }}\nWHERE {{ {{ <{iri}> ?p ?o }} UNION {{ ?s ?q <{iri}> }} }}"
        )
        construct.append(Query("pages:construct", text, "construct"))
    return {"construct": construct, "describe": describe}


def _page_path(iri: str) -> str:
    return "/id/" + iri.removeprefix(ID)
