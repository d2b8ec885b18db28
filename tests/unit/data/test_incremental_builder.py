"""The incremental version build (service.data.builder) writes what the full build writes, position after position."""

from __future__ import annotations

import pyoxigraph as ox

from service import names
from service.config import load_settings
from service.data.builder import IncrementalBuilder
from service.data.snapshots import STORE_GRAPHS, build_newest, open_journal
from service.journal.records import Record, chain_digest

GK, ID, GRAPH = names.GK, names.ID, names.GRAPH
PROJECT_LINE = f"<{ID}project/built-incrementally> <{GK}touchesDomain> <{ID}domain/land-management>"
TYPE_LINE = f"<{ID}project/built-incrementally> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{GK}Project>"


def _quads(text: str) -> tuple[set[str], int]:
    """The lines without blank nodes, and how many have one (the full build relabels inferred blank nodes)."""
    lines = [str(q) for q in ox.parse(text, format=ox.RdfFormat.N_QUADS)]
    return {line for line in lines if "_:" not in line}, sum("_:" in line for line in lines)


def _append(store, delete: tuple[str, ...], insert: tuple[str, ...]):
    with store.locked(None):
        head = store.head()
        record = Record(head.seq + 1, chain_digest(head.chain, delete, insert), "t", {}, {}, delete, insert)
        return store.append(head, record)


def _built(settings, builder=None) -> tuple[tuple[set[str], int], str]:
    """The newest version's dataset (as `_quads`) and graph list, built with or without the builder."""
    folder = settings.reasoning_cache / build_newest(settings, builder)["version"]
    return _quads((folder / "dataset.nq").read_text()), (folder / STORE_GRAPHS).read_text()


def test_each_position_equals_the_full_build(tmp_path):
    settings = load_settings({"store_dir": tmp_path / "store", "cache_dir": tmp_path / "cache"})
    full = load_settings({"store_dir": tmp_path / "store", "cache_dir": tmp_path / "full-cache"})
    store = open_journal(settings)
    builder = IncrementalBuilder(names.rebase(names.INFERRED_GRAPH, settings.base_iri))
    shipped, _ = store.lines_at()
    broader = sorted(line for line in shipped if "skos/core#broader>" in line)[0]
    claim, other = f"<{GRAPH}claim/built-1>", f"<{GRAPH}claim/built-2>"
    steps = [
        ((), (f"{PROJECT_LINE} {claim} .", f"{TYPE_LINE} {claim} .")),  # a new project: chains fire
        ((), (f"{PROJECT_LINE} {other} .",)),  # the same triple in a second graph
        ((f"{PROJECT_LINE} {claim} .",), ()),  # out of one graph: still asserted, still inferred
        ((f"{PROJECT_LINE} {other} .",), ()),  # out of both: its inferences go (DRed)
        ((broader,), ()),  # a shipped skos:broader: co-handling through it goes
        ((), (broader,)),  # and back
    ]
    _append(store, (), (f"<{ID}x> <{GK}y> <{ID}z> {claim} .",))  # position 0's version is the shipped one's
    assert _built(settings, builder) == _built(full)
    for delete, insert in steps:
        _append(store, delete, insert)
        assert _built(settings, builder) == _built(full)
    dataset = next((settings.reasoning_cache).glob(f"*-{store.head().seq}")) / "dataset.nq"
    assert f"<{ID}project/built-incrementally> <{GK}coHandledBy>" not in dataset.read_text()  # deleted
    assert (
        f"<{ID}project/built-incrementally> <{GK}coHandledBy>"
        in (next(settings.reasoning_cache.glob(f"*-{store.head().seq - 3}")) / "dataset.nq").read_text()
    )


def test_build_newest_with_a_builder_caches_the_version(tmp_path):
    settings = load_settings({"store_dir": tmp_path / "store", "cache_dir": tmp_path / "cache"})
    store = open_journal(settings)
    builder = IncrementalBuilder(names.rebase(names.INFERRED_GRAPH, settings.base_iri))
    head = _append(store, (), (f"{PROJECT_LINE} <{GRAPH}claim/built-1> .",))
    summary = build_newest(settings, builder)
    assert summary["seq"] == head.seq
    dataset = (settings.reasoning_cache / summary["version"] / "dataset.nq").read_text()
    assert f"<{ID}project/built-incrementally> <{GK}coHandledBy> <{ID}section/6>" in dataset
