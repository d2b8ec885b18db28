"""The shared dataset: one claim graph per fact, reasoning cached per data version, base IRI rewriting."""

from rdflib import Dataset

from service import names
from service.config import load_settings
from service.data.snapshots import load_snapshot
from service.data.sources import asserted_dataset, data_version, reason


def _settings(tmp_path, **overrides):
    return load_settings({"cache_dir": str(tmp_path), **overrides}, environ={})


def test_snapshot_holds_asserted_and_inferred_graphs(tmp_path):
    snapshot = load_snapshot(_settings(tmp_path))
    assert names.ONTOLOGY_GRAPH in snapshot.graphs
    assert names.PROVENANCE_GRAPH in snapshot.graphs
    assert snapshot.inferred_graph == names.INFERRED_GRAPH
    assert any(g.startswith(names.CLAIM_GRAPH_PREFIX) for g in snapshot.graphs)
    dataset = Dataset()
    dataset.parse(snapshot.nquads, format="nquads")
    assert len(dataset.graph(names.INFERRED_GRAPH)) > 0
    assert len(dataset.default_graph) == 0


def test_reasoning_runs_once_per_data_version(tmp_path, monkeypatch):
    first = load_snapshot(_settings(tmp_path))

    def must_not_reason(*_):
        raise AssertionError("reasoned again although the data version was cached")

    monkeypatch.setattr("service.data.snapshots.reason", must_not_reason)
    second = load_snapshot(_settings(tmp_path))
    assert second.version == first.version
    assert second.nquads.read_bytes() == first.nquads.read_bytes()


def test_data_version_follows_inputs_and_base():
    assert data_version() == data_version()
    assert data_version("https://example.org/kg/") != data_version()


def test_base_iri_rewrites_every_project_iri(tmp_path):
    base = "https://example.org/kg/"
    snapshot = load_snapshot(_settings(tmp_path, base_iri=base))
    text = snapshot.nquads.read_text(encoding="utf-8")
    assert names.DEFAULT_BASE not in text
    assert f"<{base}id/section/6>" in text
    assert snapshot.inferred_graph == base + "graph/inferred"
    assert all(g.startswith(base) for g in snapshot.graphs)


def test_inferred_graph_has_no_junk():
    closure = reason(asserted_dataset())
    assert closure.dropped_junk > 0
    for s, p, o in closure.inferred:
        assert not (str(p).endswith("#sameAs") and s == o)
        assert not str(s).startswith(("http://www.w3.org/2002/07/owl#", "http://www.w3.org/2000/01/rdf-schema#"))
