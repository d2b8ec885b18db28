"""What the mirror reads from and sends to a remote store: labels, blank-node detection, update text, probes."""

from __future__ import annotations

import json

import pyoxigraph as ox
import pytest

from service.engines import remote_store
from service.engines.remote_store import Probe, RemoteStore, blank_label, has_blank_node, relabel_blank_nodes
from service.errors import RemoteServiceError


def test_blank_labels_are_made_valid_and_stay_the_same() -> None:
    assert blank_label("b0") == "b0"
    made = blank_label("nodeID://b10007")
    assert made == blank_label("nodeID://b10007") != blank_label("nodeID://b10008")
    ox.BlankNode(made)  # valid: pyoxigraph takes it


def test_results_with_virtuoso_labels_become_parseable() -> None:
    body = {"head": {"vars": ["s"]}, "results": {"bindings": [{"s": {"type": "bnode", "value": "nodeID://b1"}}]}}
    raw = json.dumps(body).encode()
    with pytest.raises(SyntaxError):
        list(ox.parse_query_results(raw, ox.QueryResultsFormat.JSON))
    fixed = relabel_blank_nodes(raw, "application/sparql-results+json")
    [row] = list(ox.parse_query_results(fixed, ox.QueryResultsFormat.JSON))
    assert row["s"] == ox.BlankNode(blank_label("nodeID://b1"))
    xml = b"<sparql><results><result><binding name='s'><bnode>nodeID://b1</bnode></binding></result></results></sparql>"
    assert blank_label("nodeID://b1").encode() in relabel_blank_nodes(xml, "application/sparql-results+xml")
    assert relabel_blank_nodes(b"not json", "application/sparql-results+json") == b"not json"


@pytest.mark.parametrize(
    ("line", "blank"),
    [
        ("_:b1 <urn:p> <urn:o> <urn:g> .", True),
        ("<urn:s> <urn:p> _:b1 <urn:g> .", True),
        ('<urn:s> <urn:p> "a _:b1 in text" <urn:g> .', False),
        ("<urn:s> <urn:p> <urn:o> <urn:g> .", False),
    ],
)
def test_blank_nodes_are_found_outside_literals_only(line: str, blank: bool) -> None:
    assert has_blank_node(line) is blank


def test_probes_round_trip_through_json() -> None:
    probe = Probe((("urn:g", 3, 17), ("urn:h", 1, 0)))
    assert Probe.from_json(json.loads(json.dumps(probe.as_json()))) == probe


class _Recorder(RemoteStore):
    """A store that records the update requests it would send."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9/query", "http://127.0.0.1:9/update", "urn:inferred", lambda g: True)
        self.sent: list[str] = []

    def _update(self, text: str) -> None:
        self.sent.append(text)


def test_a_change_is_one_operation_that_a_store_can_run() -> None:
    store = _Recorder()
    store.change(
        ['<urn:s> <urn:p> "x" <urn:g> .'],
        [
            "<urn:s> <urn:p> <urn:o> <urn:h> .",
            '<urn:s> <urn:q> "1"^^<http://www.w3.org/2001/XMLSchema#integer> <urn:h> .',
        ],
    )
    [text] = store.sent
    # what the store receives is a SPARQL update: pyoxigraph runs it on a store holding the removed quad
    target = ox.Store()
    target.add(ox.Quad(ox.NamedNode("urn:s"), ox.NamedNode("urn:p"), ox.Literal("x"), ox.NamedNode("urn:g")))
    target.update(text)
    assert {(q.predicate.value, q.graph_name.value) for q in target} == {("urn:p", "urn:h"), ("urn:q", "urn:h")}
    assert text.count("WHERE") == 1 and ";" not in text  # one operation (Virtuoso 7.2 fails on several)


def test_graphs_with_blank_nodes_are_replaced_whole() -> None:
    store = _Recorder()
    store.change([], [], {"urn:g": ["_:a <urn:p> _:b <urn:g> .", "_:b <urn:p> <urn:o> <urn:g> ."]})
    drop, insert = store.sent
    assert drop == "DROP SILENT GRAPH <urn:g>"
    target = ox.Store()
    target.update(insert)
    assert len(target) == 2 and len({q.object for q in target if isinstance(q.object, ox.BlankNode)}) == 1


def test_without_an_update_endpoint_a_change_is_refused() -> None:
    store = RemoteStore("http://127.0.0.1:9/query", None, "urn:inferred", lambda g: True)
    with pytest.raises(RemoteServiceError, match="--remote-update"):
        store.change([], ["<urn:s> <urn:p> <urn:o> <urn:g> ."])


def test_an_unreachable_store_is_a_remote_service_error() -> None:
    store = RemoteStore("http://127.0.0.1:9/query", None, "urn:inferred", lambda g: True, timeout=2)
    with pytest.raises(RemoteServiceError, match="could not be reached"):
        store.probe()


def _probe_of(store: ox.Store) -> Probe:
    """The probe a store answers, run by pyoxigraph itself."""
    rows = [(s["g"].value, int(s["n"].value), int(s["len"].value)) for s in store.query(remote_store.PROBE)]
    return Probe(tuple(sorted(rows)))


def test_the_probe_after_a_change_is_computed_as_the_store_answers_it() -> None:
    store = ox.Store()
    lines = [
        '<urn:s> <urn:p> "土地管理"@zh <urn:g> .',
        "<urn:s> <urn:q> <urn:o> <urn:g> .",
        "_:b <urn:p> _:c <urn:h> .",
        '<urn:s> <urn:p> "1"^^<http://www.w3.org/2001/XMLSchema#integer> <urn:h> .',
    ]
    store.load("\n".join(lines) + "\n", format=ox.RdfFormat.N_QUADS)
    before = _probe_of(store)
    remove = ["<urn:s> <urn:q> <urn:o> <urn:g> ."]
    add = ['<urn:t> <urn:p> "环保与民生"@zh <urn:g> .', "<urn:t> <urn:p> _:d <urn:k> ."]
    store.update("DELETE DATA { GRAPH <urn:g> { <urn:s> <urn:q> <urn:o> } }")
    store.load("\n".join(add) + "\n", format=ox.RdfFormat.N_QUADS)
    assert before.after(remove, add) == _probe_of(store)
    assert before.after(remove, add) != before
    emptied = before.after([lines[2], lines[3]], [])
    assert "urn:h" not in {g for g, _, _ in emptied.graphs}  # a graph emptied is no longer listed, as by the store
