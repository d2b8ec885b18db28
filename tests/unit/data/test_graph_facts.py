"""Every fact of the source is in the graph as the source states it, with its quote; inferred facts are never asserted.

Expected values come from the source text (its table and passages), never from constants in this file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pytest
from rdflib import Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS, SKOS, XSD

GK = Namespace("https://w3id.org/guian-kg/ontology#")
ORG = Namespace("http://www.w3.org/ns/org#")
PROV = Namespace("http://www.w3.org/ns/prov#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
FREQ = Namespace("http://purl.org/cld/freq/")
ID = "https://w3id.org/guian-kg/id/"
GRAPH = "https://w3id.org/guian-kg/graph/"
CLAIM = GRAPH + "claim/"
ASSUMPTION = GRAPH + "assumption/"
PROVENANCE = URIRef(GRAPH + "provenance")
SOURCE = URIRef(ID + "document/source")
OFFICE = URIRef(ID + "organization/office")


def zh(graph: Graph, node, predicate=RDFS.label) -> set[str]:
    """The @zh values of `predicate` on `node`."""
    return {str(o) for o in graph.objects(node, predicate) if isinstance(o, Literal) and o.language == "zh"}


def en(graph: Graph, node, predicate=RDFS.label) -> set[str]:
    """The @en values of `predicate` on `node`."""
    return {str(o) for o in graph.objects(node, predicate) if isinstance(o, Literal) and o.language == "en"}


def section_by_notation(graph: Graph, number: int) -> URIRef:
    """The one secretarial section with skos:notation str(number)."""
    found = [
        s for s in graph.subjects(SKOS.notation, Literal(str(number))) if (s, RDF.type, GK.SecretarialSection) in graph
    ]
    assert len(found) == 1, (number, found)
    return found[0]


def quote_of(dataset: Dataset, claim: str) -> str:
    """The source quote of a claim graph, from the provenance graph."""
    quotes = list(dataset.graph(PROVENANCE).objects(URIRef(CLAIM + claim), GK.sourceQuote))
    assert len(quotes) == 1, (claim, quotes)
    return str(quotes[0])


def graphs_holding(dataset: Dataset, triple) -> set[str]:
    """The names of the graphs that hold `triple`."""
    return {str(graph.identifier) for graph in dataset.graphs() if triple in graph}


# -- the table --------------------------------------------------------------------------------------------


def test_the_table_has_nine_rows_numbered_one_to_nine(table_rows: list) -> None:
    assert [row.number for row in table_rows] == list(range(1, 10))


def test_nine_sections_under_the_office(union_graph: Graph, table_rows: list) -> None:
    sections = set(union_graph.subjects(RDF.type, GK.SecretarialSection))
    assert len(sections) == len(table_rows)
    for section in sections:
        assert set(union_graph.objects(section, ORG.subOrganizationOf)) == {OFFICE}
        assert (section, ORG.unitOf, None) not in union_graph


@pytest.mark.parametrize("index", range(9))
def test_section_row(index: int, table_rows: list, union_graph: Graph, data_dataset: Dataset) -> None:
    row = table_rows[index]
    g = union_graph
    section = section_by_notation(g, row.number)
    assert str(section) == f"{ID}section/{row.number}"
    assert zh(g, section, SKOS.prefLabel) == {row.section_name}
    assert zh(g, section, RDFS.label) == {row.section_name}
    assert en(g, section, SKOS.prefLabel) == {f"Secretarial Section {row.number}"}
    assert en(g, section, RDFS.label) == {f"Secretarial Section {row.number}"}

    duties = list(g.objects(section, GK.hasDutyDirection))
    assert len(duties) == 1
    duty = duties[0]
    assert (duty, RDF.type, GK.DutyDirection) in g
    assert zh(g, duty) == {row.duty_direction}
    assert len(en(g, duty)) == 1

    # the top domain of the duty direction is handled, labelled like the duty direction, a top concept
    top = g.value(duty, GK.dutyDomain)
    assert top is not None
    assert (section, GK.handlesDomain, top) in g
    assert zh(g, top, SKOS.prefLabel) == {row.duty_direction}
    assert (top, SKOS.topConceptOf, URIRef(ID + "domain-scheme")) in g

    items = list(g.objects(section, GK.hasWorkItem))
    labels = {label: item for item in items for label in zh(g, item)}
    assert sorted(labels) == sorted(row.work_items)
    handled = set(g.objects(section, GK.handlesDomain))
    for text in row.work_items:
        item = labels[text]
        assert (item, RDF.type, GK.WorkItem) in g
        assert len(en(g, item)) == 1, item
        domains = set(g.objects(item, GK.concernsDomain))
        assert domains, item
        assert domains <= handled, (item, domains - handled)
        for domain in domains:
            assert (domain, SKOS.inScheme, URIRef(ID + "domain-scheme")) in g
            broader = set(g.objects(domain, SKOS.broader))
            assert domain == top or broader == {top}, (domain, broader)

    # the row's facts live in the row's claim graph, quoting the row verbatim
    claim = f"section-{row.number}"
    assert quote_of(data_dataset, claim) == row.text
    assert CLAIM + claim in graphs_holding(data_dataset, (section, SKOS.notation, Literal(str(row.number))))


def test_every_work_item_belongs_to_one_section(union_graph: Graph, table_rows: list) -> None:
    items = set(union_graph.subjects(RDF.type, GK.WorkItem))
    assert len(items) == sum(len(row.work_items) for row in table_rows)
    for item in items:
        assert len(list(union_graph.subjects(GK.hasWorkItem, item))) == 1, item


def test_domains_form_one_scheme_with_bilingual_labels(union_graph: Graph) -> None:
    scheme = URIRef(ID + "domain-scheme")
    domains = set(union_graph.subjects(RDF.type, GK.WorkDomain))
    assert domains
    for domain in domains:
        assert (domain, SKOS.inScheme, scheme) in union_graph
        assert len(zh(union_graph, domain, SKOS.prefLabel)) == 1
        assert len(en(union_graph, domain, SKOS.prefLabel)) == 1
    tops = set(union_graph.objects(scheme, SKOS.hasTopConcept))
    assert tops == set(union_graph.subjects(SKOS.topConceptOf, scheme))
    assert tops == set(union_graph.objects(None, GK.dutyDomain))


# -- the organisation -------------------------------------------------------------------------------------


def test_the_new_area_and_its_missions(union_graph: Graph, data_dataset: Dataset, source_text: str) -> None:
    quote = quote_of(data_dataset, "new-area")
    area = URIRef(ID + "area/guian-new-area")
    assert (area, RDF.type, GK.NationalNewArea) in union_graph
    assert "国家级新区" in quote
    missions = set(union_graph.objects(area, GK.hasMission))
    listed = re.search(r"承担着(.+)的重要使命", quote).group(1)
    expected = re.split("、|与", listed)
    assert sorted(label for m in missions for label in zh(union_graph, m)) == sorted(expected)


def test_committee_and_office(union_graph: Graph) -> None:
    committee = URIRef(ID + "organization/management-committee")
    for cls in (GK.ManagementCommittee, ORG.FormalOrganization, URIRef("http://data.europa.eu/m8g/PublicOrganisation")):
        assert (committee, RDF.type, cls) in union_graph
    assert (OFFICE, RDF.type, GK.Office) in union_graph
    assert (OFFICE, ORG.subOrganizationOf, committee) in union_graph
    assert (OFFICE, RDF.type, ORG.FormalOrganization) not in union_graph


def test_office_purpose_functions_and_principles(union_graph: Graph, data_dataset: Dataset) -> None:
    purpose_quote = quote_of(data_dataset, "office-purpose")
    functions = re.search(r"负责不同业务线条的(.+)工作", purpose_quote).group(1)
    expected = re.split("、|与", functions)
    got = [label for f in union_graph.objects(OFFICE, GK.hasFunction) for label in zh(union_graph, f)]
    assert sorted(got) == sorted(expected)
    aim = re.search(r"为(.+?),", purpose_quote).group(1).removeprefix("保障")
    assert any(aim in p for p in zh(union_graph, OFFICE, GK.purpose))

    principles_quote = quote_of(data_dataset, "operating-principles")
    listed = re.search(r"在(.+)的基础上", principles_quote).group(1).split("、")
    got = [label for p in union_graph.objects(OFFICE, GK.followsPrinciple) for label in zh(union_graph, p)]
    assert sorted(got) == sorted(listed)


# -- the collaboration mechanisms -------------------------------------------------------------------------


def test_joint_meeting(union_graph: Graph, data_dataset: Dataset) -> None:
    meeting = URIRef(ID + "mechanism/joint-meeting")
    assert (meeting, RDF.type, GK.JointMeeting) in union_graph
    quote = quote_of(data_dataset, "joint-meeting")
    assert "每周" in quote and "每月" in quote
    assert set(union_graph.objects(meeting, GK.frequency)) == {FREQ.weekly, FREQ.monthly}
    assert zh(union_graph, meeting, GK.purpose) and en(union_graph, meeting, GK.purpose)
    # the source does not say which sections attend: no participant is asserted for the mechanism itself (the
    # sections it names for one discussion are on that discussion, see the worked case)
    assert "所有科室" not in quote and "各科室" not in quote
    assert set(union_graph.objects(meeting, GK.hasParticipant)) == set()


def test_the_three_ways_of_collaborating(union_graph: Graph, data_dataset: Dataset, source_text: str) -> None:
    part = source_text.split("三、")[1].split("四、")[0]
    headings = re.findall(r"^\d\. (.+)$", part, flags=re.MULTILINE)
    ways = set(union_graph.objects(OFFICE, GK.collaborationWay))
    assert len(ways) == len(headings) == 3
    for way in ways:
        assert (way, RDF.type, GK.CollaborationMechanism) in union_graph or any(
            (cls, RDFS.subClassOf, GK.CollaborationMechanism) in union_graph
            for cls in union_graph.objects(way, RDF.type)
        )
        words = zh(union_graph, way) | zh(union_graph, way, SKOS.altLabel) | zh(union_graph, way, SKOS.hiddenLabel)
        assert any(word in heading for word in words for heading in headings), way
    assert CLAIM + "collaboration-ways" in graphs_holding(data_dataset, (OFFICE, GK.collaborationWay, next(iter(ways))))
    # nothing else is a collaboration mechanism (section 2's instruction relay is a task, part 四)
    mechanisms = {
        m
        for cls in [GK.CollaborationMechanism, *union_graph.subjects(RDFS.subClassOf, GK.CollaborationMechanism)]
        for m in union_graph.subjects(RDF.type, cls)
    }
    assert mechanisms == ways


def test_information_flow_platform(union_graph: Graph, data_dataset: Dataset) -> None:
    platform = URIRef(ID + "mechanism/information-flow-platform")
    assert (platform, RDF.type, GK.InformationFlowPlatform) in union_graph
    quote = quote_of(data_dataset, "information-flow-platform")
    shared = re.search(r"共享(.+?)信息", quote).group(1)
    expected = re.split("、|与", shared)
    carried = [label for kind in union_graph.objects(platform, GK.carries) for label in zh(union_graph, kind)]
    assert len(carried) == len(expected)
    for word in expected:
        assert any(label.startswith(word) for label in carried), word
    system = union_graph.value(platform, GK.runsOn)
    assert zh(union_graph, system) <= {re.search(r"通过(内部政务系统)", quote).group(1)}
    stages = re.search(r"从(.+)都能实时追踪", quote).group(1)
    expected_stages = re.split("、|到", stages)
    got = [label for s in union_graph.objects(platform, GK.tracksStage) for label in zh(union_graph, s)]
    assert sorted(got) == sorted(expected_stages)
    assert union_graph.value(platform, GK.tracksInRealTime) == Literal(True)
    avoided = re.search(r"避免(.+)。", quote).group(1).split("与")
    got = [label for p in union_graph.objects(platform, GK.avoids) for label in zh(union_graph, p)]
    assert sorted(got) == sorted(avoided)
    if "所有科室" in quote:
        assert set(union_graph.objects(platform, GK.hasParticipant)) == set(
            union_graph.subjects(RDF.type, GK.SecretarialSection)
        )


def test_task_force(union_graph: Graph, data_dataset: Dataset) -> None:
    task_force = URIRef(ID + "mechanism/task-force")
    assert (task_force, RDF.type, GK.TaskForce) in union_graph
    quote = quote_of(data_dataset, "task-force")
    examples = re.search(r"\(如(.+?)\)", quote).group(1).split("、")
    formed_for = {label for kind in union_graph.objects(task_force, GK.formedFor) for label in zh(union_graph, kind)}
    assert set(examples) <= formed_for
    practices = re.search(r"工作专班,(.+?),提升", quote).group(1).split("、")
    got = {label for p in union_graph.objects(task_force, GK.workingPractice) for label in zh(union_graph, p)}
    assert got == set(practices)
    # staff through org:Membership; the members are people, never organisations
    memberships = set(union_graph.subjects(ORG.organization, task_force))
    assert memberships
    assert (task_force, ORG.hasMember, None) not in union_graph
    for membership in memberships:
        assert (membership, RDF.type, ORG.Membership) in union_graph
        member = union_graph.value(membership, ORG.member)
        assert (member, RDF.type, ORG.Organization) not in union_graph
        assert {FOAF.Group, FOAF.Person} & set(union_graph.objects(member, RDF.type))
        assert union_graph.value(membership, ORG.role) is not None


def test_instruction_relay_is_performed_by_the_section_the_source_names(
    union_graph: Graph, data_dataset: Dataset, chinese_number: Callable[[str], int]
) -> None:
    relay = URIRef(ID + "task/instruction-relay")
    assert (relay, RDF.type, GK.InstructionRelay) in union_graph
    assert (relay, RDF.type, GK.Task) in union_graph
    assert (GK.InstructionRelay, RDFS.subClassOf, GK.CollaborationMechanism) not in union_graph
    quote = quote_of(data_dataset, "instruction-relay")
    assert "领导批示" in quote and "反馈结果" in quote and "最后一公里" in quote
    number = chinese_number(re.match(r"秘书(.)科", quote).group(1))
    assert set(union_graph.objects(relay, GK.performedBy)) == {section_by_notation(union_graph, number)}
    assert "批示" in {label for k in union_graph.objects(relay, GK.carries) for label in zh(union_graph, k)}


def test_section_2_follows_up_key_work(union_graph: Graph, data_dataset: Dataset) -> None:
    quote = quote_of(data_dataset, "key-work-follow-up")
    tasks = set(data_dataset.graph(URIRef(CLAIM + "key-work-follow-up")).subjects(GK.performedBy, None))
    assert len(tasks) == 1
    task = next(iter(tasks))
    assert zh(union_graph, task) <= {label for label in zh(union_graph, task) if label in quote}
    assert "跟踪督办" in next(iter(zh(union_graph, task)))
    assert set(union_graph.objects(task, GK.performedBy)) == {section_by_notation(union_graph, 2)}


def test_behind_the_scenes(union_graph: Graph, data_dataset: Dataset) -> None:
    quote = quote_of(data_dataset, "behind-the-scenes")
    assert "幕后" in quote
    assert zh(union_graph, OFFICE, GK.characterisation) == {quote}
    assert en(union_graph, OFFICE, GK.characterisation)


# -- the worked cases -------------------------------------------------------------------------------------


def test_major_industrial_project_records_the_stated_participants(
    union_graph: Graph, data_dataset: Dataset, chinese_number: Callable[[str], int]
) -> None:
    project = URIRef(ID + "project/major-industrial-project")
    quote = quote_of(data_dataset, "major-industrial-project")
    assert (project, RDF.type, GK.MajorIndustrialProject) in union_graph
    named = re.search(r"秘书(.)科、(.)科与(.)科", quote).groups()
    stated = {section_by_notation(union_graph, chinese_number(n)) for n in named}
    assert set(union_graph.objects(project, GK.statedParticipant)) == stated
    touched = {
        label
        for d in union_graph.objects(project, GK.touchesDomain)
        for label in zh(union_graph, d, SKOS.prefLabel)
        | zh(union_graph, d, SKOS.altLabel)
        | zh(union_graph, d, SKOS.hiddenLabel)
    }
    for word in re.search(r"涉及(.+)时", quote).group(1).replace("与", "、").split("、"):
        assert any(word in label for label in touched), word
    # 土地 reaches a domain only through a named assumption, never through the claim graph
    land = URIRef(ID + "domain/land-management")
    assert graphs_holding(data_dataset, (project, GK.touchesDomain, land)) == {ASSUMPTION + "land-is-land-management"}
    # the text's inconsistency is documented on the resource itself, in both languages
    for lang in (zh, en):
        notes = lang(union_graph, project, SKOS.editorialNote)
        assert len(notes) == 1, notes
    assert "六科" in next(iter(zh(union_graph, project, SKOS.editorialNote)))
    discussion = next(union_graph.subjects(GK.discusses, project))
    assert (discussion, GK.occasionOf, URIRef(ID + "mechanism/joint-meeting")) in union_graph
    assert set(union_graph.objects(discussion, GK.statedParticipant)) == stated


@pytest.mark.parametrize(
    ("claim", "predicate"),
    [
        ("section-5-focus", GK.advancedBy),
        ("section-8-role", GK.coordinatedBy),
        ("outcomes-livelihoods", GK.deliveredBy),
        ("outcomes-urban-construction", GK.deliveredBy),
        ("outcomes-ecology", GK.deliveredBy),
    ],
)
def test_examples_name_their_section(
    claim: str,
    predicate: URIRef,
    union_graph: Graph,
    data_dataset: Dataset,
    chinese_number: Callable[[str], int],
) -> None:
    quote = quote_of(data_dataset, claim)
    section = section_by_notation(union_graph, chinese_number(re.search(r"秘书(.)科", quote).group(1)))
    graph = data_dataset.graph(URIRef(CLAIM + claim))
    matters = set(graph.subjects(predicate, section))
    assert matters
    for matter in matters:
        label = next(iter(zh(union_graph, matter)))
        assert label in quote, label
        assert (matter, GK.touchesDomain, None) in union_graph
    if "环保部门" in quote:
        department = URIRef(ID + "organization/environmental-protection-department")
        assert all((m, GK.inCooperationWith, department) in union_graph for m in matters)
        assert (department, ORG.subOrganizationOf, None) not in union_graph


def test_opinions_are_attributed_never_facts(union_graph: Graph, data_dataset: Dataset) -> None:
    author = URIRef(ID + "agent/todayonhistory-reader")
    assert (author, RDF.type, FOAF.Person) in union_graph
    for cls in (GK.Assessment, GK.OpenQuestion):
        nodes = set(union_graph.subjects(RDF.type, cls))
        assert nodes
        for node in nodes:
            assert (node, PROV.wasAttributedTo, author) in union_graph
    assert len(set(union_graph.subjects(RDF.type, GK.Assessment))) == 2
    for claim in ("assessment-organisational-logic", "assessment-governance-model", "further-thought"):
        for s, _, _ in data_dataset.graph(URIRef(CLAIM + claim)):
            assert {GK.Assessment, GK.OpenQuestion} & set(union_graph.objects(s, RDF.type)), s


# -- provenance -------------------------------------------------------------------------------------------


def test_default_graph_is_empty_and_every_graph_is_a_claim_or_an_assumption(data_dataset: Dataset) -> None:
    assert len(data_dataset.default_graph) == 0
    names = {str(c.identifier) for c in data_dataset.graphs() if len(c)}
    assert names - {str(data_dataset.default_graph.identifier)} <= {str(PROVENANCE)} | {
        n for n in names if n.startswith((CLAIM, ASSUMPTION))
    }


def test_every_claim_graph_is_described_with_a_verbatim_quote(data_dataset: Dataset, source_text: str) -> None:
    prov_graph = data_dataset.graph(PROVENANCE)
    claims = {str(c.identifier) for c in data_dataset.graphs() if str(c.identifier).startswith(CLAIM) and len(c)}
    described = {str(s) for s in prov_graph.subjects(RDF.type, GK.Claim)}
    assert claims == described
    for claim in claims:
        node = URIRef(claim)
        quotes = list(prov_graph.objects(node, GK.sourceQuote))
        assert len(quotes) == 1, claim
        assert quotes[0].language == "zh", claim
        assert str(quotes[0]) in source_text, claim
        parts = list(prov_graph.objects(node, GK.sourcePart))
        assert len(parts) == 1 and str(parts[0]) in source_text, claim
        assert set(prov_graph.objects(node, PROV.wasDerivedFrom)) == {SOURCE}
        assert len(en(prov_graph, node, GK.quoteTranslation)) == 1, claim


def test_provenance_only_describes_claims_assumptions_and_the_source(data_dataset: Dataset) -> None:
    prov_graph = data_dataset.graph(PROVENANCE)
    for subject in set(prov_graph.subjects()):
        assert subject == SOURCE or str(subject).startswith((CLAIM, ASSUMPTION, ID + "assumption/")), subject


def test_every_assumption_graph_names_its_assumption(data_dataset: Dataset, source_text: str) -> None:
    prov_graph = data_dataset.graph(PROVENANCE)
    graphs = {str(c.identifier) for c in data_dataset.graphs() if str(c.identifier).startswith(ASSUMPTION) and len(c)}
    described = {str(s) for s in prov_graph.subjects(RDF.type, GK.AssumptionGraph)}
    assert graphs and graphs == described
    assumptions = set(prov_graph.subjects(RDF.type, GK.ModellingAssumption))
    assert {prov_graph.value(URIRef(g), GK.licensedBy) for g in graphs} == assumptions
    for assumption in assumptions:
        licensed = set(prov_graph.objects(assumption, GK.licenses))
        assert licensed == set(prov_graph.subjects(GK.licensedBy, assumption)), assumption
        assert len(zh(prov_graph, assumption)) == 1 and len(en(prov_graph, assumption)) == 1, assumption
        # a rationale in both languages, the motivating words verbatim, the alternatives considered
        assert len(zh(prov_graph, assumption, GK.rationale)) == 1, assumption
        assert len(en(prov_graph, assumption, GK.rationale)) == 1, assumption
        quotes = zh(prov_graph, assumption, GK.motivatingQuote)
        assert quotes and all(quote in source_text for quote in quotes), assumption
        assert zh(prov_graph, assumption, GK.alternative) and en(prov_graph, assumption, GK.alternative), assumption


def test_source_words_are_labels_with_their_quote(data_dataset: Dataset, source_text: str) -> None:
    """Every Chinese alt/hidden label is the source's own word: in its claim's quote or heading, or in the quotes that
    motivate the assumption whose graph holds it."""
    prov_graph = data_dataset.graph(PROVENANCE)
    checked = 0
    for graph in data_dataset.graphs():
        name = URIRef(graph.identifier)
        if str(name).startswith(CLAIM):
            texts = {str(o) for o in prov_graph.objects(name, GK.sourceQuote)}
            texts |= {str(o) for o in prov_graph.objects(name, GK.sourcePart)}
        elif str(name).startswith(ASSUMPTION):
            texts = {str(o) for o in prov_graph.objects(prov_graph.value(name, GK.licensedBy), GK.motivatingQuote)}
        else:
            continue
        for predicate in (SKOS.altLabel, SKOS.hiddenLabel):
            for _, _, label in graph.triples((None, predicate, None)):
                if label.language == "zh":
                    assert any(str(label) in text for text in texts), (str(name), str(label))
                    checked += 1
    assert checked >= 9


def test_statements_are_verbatim_unless_marked_abridged(union_graph: Graph, source_text: str) -> None:
    for node, _, statement in union_graph.triples((None, GK.statement, None)):
        if statement.language != "zh":
            continue
        if union_graph.value(node, GK.abridged) != Literal(True):
            assert str(statement) in source_text, node


def test_the_source_document_says_what_kind_of_text_it_is(data_dataset: Dataset) -> None:
    prov_graph = data_dataset.graph(PROVENANCE)
    assert len(zh(prov_graph, SOURCE, SKOS.scopeNote)) == 1
    assert "assumption" in next(iter(en(prov_graph, SOURCE, SKOS.scopeNote)))
    # the answer's self-described author wrote the answer, not the page
    assert (SOURCE, DCTERMS.creator, None) not in data_dataset.graph(URIRef(CLAIM + "author"))
    answer = URIRef(ID + "document/answer")
    assert (answer, DCTERMS.isPartOf, SOURCE) in data_dataset.graph(URIRef(CLAIM + "author"))


def test_the_source_document(data_dataset: Dataset, source_text: str) -> None:
    prov_graph = data_dataset.graph(PROVENANCE)
    issued = prov_graph.value(SOURCE, DCTERMS.issued)
    assert issued.datatype == XSD.dateTime
    stamp = re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", source_text).group(0)
    assert issued.toPython() == datetime.fromisoformat(stamp)
    title = prov_graph.value(SOURCE, DCTERMS.title)
    assert title.language == "zh" and str(title) in source_text
    assert str(prov_graph.value(SOURCE, DCTERMS.language)) == "zh"


def test_co_handling_is_never_asserted(data_dataset: Dataset, union_graph: Graph) -> None:
    for predicate in (GK.coHandledBy, GK.coHandles):
        assert not list(data_dataset.quads((None, predicate, None, None))), predicate
        assert (None, predicate, None) not in union_graph


def test_no_section_or_office_is_asserted_a_formal_organization(union_graph: Graph) -> None:
    for node in [OFFICE, *union_graph.subjects(RDF.type, GK.SecretarialSection)]:
        assert (node, RDF.type, ORG.FormalOrganization) not in union_graph


def test_the_repository_copy_of_the_source_is_the_seed(source_path, source_text: str) -> None:
    from service.resources import source_document

    assert source_document().read_text(encoding="utf-8") == source_text
