"""`--data`: serving RDF files and folders of the user's choosing instead of the shipped data."""

from __future__ import annotations

import pyoxigraph as ox
import pytest
from rdflib import URIRef

from service.config import load_settings
from service.data.sources import asserted_dataset, data_version, file_graph, shipped_graphs, source_files
from service.errors import ConfigError

TURTLE = "@prefix ex: <http://example.org/> .\nex:a ex:p ex:b .\n"
TRIG = "@prefix ex: <http://example.org/> .\nex:g { ex:c ex:p ex:d . }\nex:e ex:p ex:f .\n"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "nested").mkdir()
    (tmp_path / "a.ttl").write_text(TURTLE, encoding="utf-8")
    (tmp_path / "nested" / "b.trig").write_text(TRIG, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not RDF", encoding="utf-8")
    return tmp_path


def test_a_folder_gives_its_rdf_files_recursively(folder):
    assert source_files((folder,)) == [folder / "a.ttl", folder / "nested" / "b.trig"]


def test_triples_go_to_a_graph_named_after_their_file_and_named_graphs_stay(folder):
    dataset = asserted_dataset((folder,))
    quads = {(str(s), str(o), str(g)) for s, _, o, g in dataset.quads((None, None, None, None))}
    assert quads == {
        ("http://example.org/a", "http://example.org/b", file_graph(folder / "a.ttl")),
        ("http://example.org/c", "http://example.org/d", "http://example.org/g"),
        ("http://example.org/e", "http://example.org/f", file_graph(folder / "nested" / "b.trig")),
    }
    assert len(dataset.default_graph) == 0
    assert URIRef("https://w3id.org/guian-kg/graph/ontology") not in {g.identifier for g in dataset.graphs()}


def test_an_empty_folder_is_an_empty_dataset(tmp_path):
    assert len(asserted_dataset((tmp_path,))) == 0
    assert shipped_graphs(data=(tmp_path,)) == frozenset()


def test_the_data_version_follows_the_files(folder):
    before = data_version(data=(folder,))
    assert before != data_version()
    (folder / "a.ttl").write_text(TURTLE + "ex:a ex:p ex:z .\n", encoding="utf-8")
    assert data_version(data=(folder,)) != before


def test_a_file_in_another_format_is_a_config_error(folder):
    with pytest.raises(ConfigError, match="not a file of a format we read"):
        source_files((folder / "notes.txt",))


def test_a_file_that_does_not_parse_is_a_config_error(tmp_path):
    (tmp_path / "bad.ttl").write_text("this is not turtle", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.ttl"):
        asserted_dataset((tmp_path,))


def test_the_setting_takes_several_paths_and_checks_they_exist(folder, tmp_path):
    settings = load_settings(environ={"GUIAN_KG_DATA": f"{folder / 'a.ttl'}:{folder / 'nested'}"})
    assert settings.data == (folder / "a.ttl", folder / "nested")
    assert load_settings(environ={}).data is None
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"data": str(tmp_path / "missing.ttl")})


def test_rdf_xml_and_n_triples_are_read(tmp_path):
    (tmp_path / "a.nt").write_text("<http://example.org/a> <http://example.org/p> <http://example.org/b> .\n")
    triple = ox.Triple(ox.NamedNode("http://example.org/x"), ox.NamedNode("http://example.org/p"), ox.Literal("1"))
    (tmp_path / "b.rdf").write_bytes(ox.serialize([triple], format=ox.RdfFormat.RDF_XML))
    assert len(asserted_dataset((tmp_path,))) == 2
