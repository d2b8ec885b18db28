"""The durable store: journal framing, torn tails, recovery, checkpoints, versions, checks, the writer."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from service.errors import (
    BadRequestError,
    LoadForbiddenError,
    NotFoundError,
    RDFSyntaxError,
    ReadOnlyGraphError,
    ServiceForbiddenError,
    StorageError,
    UpdateFailedError,
    UpdateSyntaxError,
    UpdateTimeoutError,
    UpdateTooLargeError,
)
from service.files import write_atomically
from service.journal.log import Journal
from service.journal.records import JOURNAL, MAGIC, Head, Record, WriteOp, chain_digest, iter_records
from service.journal.writer import Writer
from service.sparql.rdf_input import parse_upload
from service.sparql.update_lint import check_update

INFERRED = "https://w3id.org/guian-kg/graph/inferred"
BASE_LINES = ["<urn:s> <urn:p> <urn:o> <urn:g0> .", '<urn:s> <urn:label> "start"@en <urn:g0> .']
WHO = {"test": True}
COUNTER = "INSERT DATA { GRAPH <urn:c> { <urn:counter> <urn:value> 0 } }"
INCREMENT = (
    "DELETE { GRAPH <urn:c> { <urn:counter> <urn:value> ?old } } "
    "INSERT { GRAPH <urn:c> { <urn:counter> <urn:value> ?new } }"
    " WHERE { GRAPH <urn:c> { <urn:counter> <urn:value> ?old } BIND(?old + 1 AS ?new) }"
)


def make_store(path: Path) -> Journal:
    store = Journal(path, reasoner="test-reasoner", base_version="v0base")
    assert store.create("https://w3id.org/guian-kg/", BASE_LINES, chain="v0base", initial_version="v0base")
    return store


def append(store: Journal, delete: list[str], insert: list[str]) -> Head:
    with store.locked(None):
        head = store.recover()
        record = Record(
            head.seq + 1, chain_digest(head.chain, delete, insert), "t", WHO, {}, tuple(delete), tuple(insert)
        )
        return store.append(head, record)


@pytest.fixture
def store(tmp_path: Path) -> Journal:
    return make_store(tmp_path / "store")


@pytest.fixture
def writer(store: Journal):
    made = Writer(store, INFERRED, timeout=10.0, memory_mb=2048, max_changes=1000)
    yield made
    made.close()


def line(n: int) -> str:
    return f'<urn:item:{n}> <urn:n> "{n}"^^<http://www.w3.org/2001/XMLSchema#integer> <urn:g1> .'


# --- journal and recovery -------------------------------------------------------------------------------


def test_a_new_store_is_at_position_zero_with_the_shipped_version(store: Journal) -> None:
    head = store.head()
    assert (head.seq, head.chain) == (0, "v0base")
    assert store.version(0, head.chain) == "v0base"
    lines, _ = store.lines_at()
    assert lines == set(BASE_LINES)
    assert not store.create("https://w3id.org/guian-kg/", [], "c", None)  # a second create does nothing


def test_records_are_replayed_in_order(store: Journal) -> None:
    append(store, [], [line(1), line(2)])
    append(store, [line(1)], [line(3)])
    lines, head = store.lines_at()
    assert head.seq == 2
    assert lines == {*BASE_LINES, line(2), line(3)}
    assert store.lines_at(1)[0] == {*BASE_LINES, line(1), line(2)}
    with pytest.raises(StorageError):
        store.lines_at(5)


def test_versions_are_content_addressed(tmp_path: Path) -> None:
    one, two = make_store(tmp_path / "a"), make_store(tmp_path / "b")
    for store in (one, two):
        append(store, [], [line(1)])
    heads = one.head(), two.head()
    assert heads[0].chain == heads[1].chain  # equal histories, equal content: one cached closure serves both
    assert one.version(1, heads[0].chain).endswith("-1")
    append(one, [], [line(2)])
    append(two, [], [line(3)])
    assert one.head().chain != two.head().chain
    assert one.version(2, one.head().chain) != two.version(2, two.head().chain)
    # another reasoner makes other closures: the same history gets another version
    other = Journal(one.path, reasoner="other", base_version="v0base")
    assert other.version(2, one.head().chain) != one.version(2, one.head().chain)


def test_a_torn_tail_is_ignored_at_every_cut_and_cut_off_by_the_next_writer(store: Journal) -> None:
    append(store, [], [line(1)])
    good = os.path.getsize(store.journal_path)
    append(store, [], [line(2), line(3)])
    full = store.journal_path.read_bytes()
    for cut in range(good, len(full)):
        store.journal_path.write_bytes(full[:cut])
        fresh = Journal(store.path, "test-reasoner", "v0base")
        lines, head = fresh.lines_at()
        assert head.seq == 1 and line(2) not in lines and line(3) not in lines, cut
    store.journal_path.write_bytes(full[: good + 7])
    fresh = Journal(store.path, "test-reasoner", "v0base")
    append(fresh, [], [line(4)])  # recovery cuts the torn bytes before appending
    assert os.path.getsize(store.journal_path) > good
    lines, head = Journal(store.path).lines_at()
    assert head.seq == 2 and line(4) in lines and line(2) not in lines


def test_a_corrupt_record_ends_the_journal(store: Journal) -> None:
    append(store, [], [line(1)])
    append(store, [], [line(2)])
    data = bytearray(store.journal_path.read_bytes())
    data[-5] ^= 0xFF  # a bit flip inside the last payload: the checksum no longer matches
    store.journal_path.write_bytes(bytes(data))
    lines, head = Journal(store.path).lines_at()
    assert head.seq == 1 and line(1) in lines and line(2) not in lines


def test_the_head_follows_other_processes_incrementally(store: Journal) -> None:
    reader = Journal(store.path, "test-reasoner", "v0base")
    assert reader.head().seq == 0
    append(store, [], [line(1)])
    first = reader.head()
    append(store, [], [line(2)])
    second = reader.head()
    assert (first.seq, second.seq) == (1, 2) and second.offset > first.offset


# --- checkpoints, backup, restore -------------------------------------------------------------------------


def test_a_checkpoint_keeps_the_content_and_the_version(store: Journal) -> None:
    for n in range(1, 6):
        append(store, [], [line(n)])
    before, head = store.lines_at()
    reader = Journal(store.path, "test-reasoner", "v0base")
    reader.head()
    with store.locked(None):
        store.compact(store.recover())
    after, new = store.lines_at()
    assert after == before and (new.seq, new.chain) == (head.seq, head.chain)
    assert os.path.getsize(store.journal_path) == 0
    assert sorted(p.name for p in store.path.glob("checkpoint-*")) == ["checkpoint-0000000005.nq"]
    assert reader.head().seq == 5  # a reader that knew the old journal notices the new files
    append(store, [line(1)], [line(6)])
    assert reader.head().seq == 6


def test_a_crash_between_checkpoint_and_new_journal_loses_nothing(store: Journal, monkeypatch) -> None:
    for n in range(1, 4):
        append(store, [], [line(n)])
    before, _ = store.lines_at()
    real = write_atomically

    def crash_on_journal(target: Path, data: bytes) -> None:
        if target.name == JOURNAL:
            raise OSError("killed")
        real(target, data)

    monkeypatch.setattr("service.journal.log.write_atomically", crash_on_journal)
    with store.locked(None), pytest.raises(OSError):
        store.compact(store.recover())
    monkeypatch.undo()
    # The manifest names the new checkpoint; the old journal's records are all at or before it.
    fresh = Journal(store.path)
    lines, head = fresh.lines_at()
    assert lines == before and head.seq == 3
    (store.path / ".journal.log.x1y2").write_bytes(b"left by a kill")
    append(fresh, [], [line(9)])
    assert Journal(store.path).lines_at()[0] == before | {line(9)}
    assert sorted(p.name for p in store.path.glob("*checkpoint*")) == ["checkpoint-0000000003.nq"]
    assert not list(store.path.glob(".journal.log.*"))


def test_backup_and_restore(store: Journal, tmp_path: Path) -> None:
    append(store, [], [line(1)])
    backup = tmp_path / "backup.nq"
    head = store.backup(backup)
    assert head.seq == 1 and backup.read_text().startswith("# guian-kg backup")
    append(store, [line(1)], [line(2)])
    new, kept, dropped = store.restore(backup, INFERRED, WHO)
    assert (new.seq, kept, dropped) == (3, len(BASE_LINES) + 1, 0)  # a restore is a new position, never a rewind
    assert store.lines_at()[0] == {*BASE_LINES, line(1)}
    assert store.version(3, new.chain) != store.version(1, head.chain)


def test_restore_refuses_bad_files(store: Journal, tmp_path: Path) -> None:
    bad = tmp_path / "bad.nq"
    bad.write_text("<urn:a> <urn:b> .\n")
    with pytest.raises(RDFSyntaxError) as caught:
        store.restore(bad, INFERRED, WHO)
    assert caught.value.extra["line"] == 1
    bad.write_text("<urn:a> <urn:b> <urn:c> .\n")
    with pytest.raises(BadRequestError, match="default graph"):
        store.restore(bad, INFERRED, WHO)
    bad.write_text("# base_iri: https://example.org/\n<urn:a> <urn:b> <urn:c> <urn:g> .\n")
    with pytest.raises(BadRequestError, match="base IRI"):
        store.restore(bad, INFERRED, WHO)
    assert store.head().seq == 0


# --- checks before pyoxigraph ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("LOAD <http://127.0.0.1:9/x>", LoadForbiddenError),
        ("load <http://127.0.0.1:9/x> INTO GRAPH <urn:g>", LoadForbiddenError),
        # pyoxigraph would run `LOADSILENT` as LOAD SILENT; the grammar has no such keyword: a syntax error first
        ("INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> 1 } } ; LOADSILENT <http://127.0.0.1:9/x>", UpdateSyntaxError),
        ("CLEAR ALL;LOAD<http://127.0.0.1:9/x>", LoadForbiddenError),
        ("LOAD ;", UpdateSyntaxError),  # W3C syntax-update-bad-01: the grammar's 400 wins over LOAD's 403
    ],
)
def test_load_is_refused(text: str, refusal: type[Exception]) -> None:
    with pytest.raises(refusal):
        check_update(text)


def test_load_inside_strings_and_iris_is_not_a_load() -> None:
    text = 'INSERT DATA { GRAPH <urn:load> { <urn:download> <urn:p> "LOAD <http://x/>" } } # LOAD <http://x/>'
    assert check_update(text) == text


def test_service_and_queries_are_refused_in_updates() -> None:
    with pytest.raises(ServiceForbiddenError):
        check_update("INSERT { GRAPH <urn:g> { ?s ?p ?o } } WHERE { SERVICE <http://127.0.0.1:9/> { ?s ?p ?o } }")
    with pytest.raises(UpdateSyntaxError, match="starts a query") as caught:
        check_update("PREFIX ex: <urn:ex:>\nSELECT * WHERE { ?s ?p ?o }")
    assert caught.value.extra == {"line": 2, "column": 1}
    subquery = (
        "INSERT { GRAPH <urn:g> { <urn:n> <urn:v> ?n } } WHERE { { SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o } } }"
    )
    assert check_update(subquery) == subquery
    with pytest.raises(UpdateSyntaxError, match="nested"):
        check_update("INSERT { GRAPH <urn:g> { ?s ?p ?o } } WHERE " + "{" * 300 + "}" * 300)
    with pytest.raises(UpdateSyntaxError, match="unterminated"):
        check_update('INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> "x } }')


def test_using_graphs_are_written_into_each_where() -> None:
    text = (
        "INSERT { GRAPH <urn:t> { ?s a <urn:C> } } WHERE { ?s a <urn:D> } ; "
        "DELETE WHERE { GRAPH <urn:t> { ?s ?p ?o } } ; DELETE { GRAPH <urn:t> { ?s ?p ?o } } WHERE { ?s ?p ?o }"
    )
    rewritten = check_update(text, using=("urn:g1",), using_named=("urn:g2",))
    assert rewritten.count("USING <urn:g1> USING NAMED <urn:g2>") == 2
    assert "DELETE WHERE {" in rewritten
    with pytest.raises(BadRequestError, match="USING or WITH"):
        check_update("WITH <urn:g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }", using=("urn:g1",))


def test_uploads_refuse_entities_and_deep_json_ld() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:e="urn:e#">'
        b'<rdf:Description rdf:about="urn:x"><e:p>&b;</e:p></rdf:Description></rdf:RDF>'
    )
    with pytest.raises(RDFSyntaxError, match="DTD"):
        parse_upload(bomb, "rdfxml", None, graphs_allowed=False)
    deep = b'{"@id": "urn:a", "urn:p": ' * 600 + b"1" + b"}" * 600
    with pytest.raises(RDFSyntaxError, match="nested"):
        parse_upload(deep, "jsonld", None, graphs_allowed=False)
    with pytest.raises(RDFSyntaxError, match=r"[Cc]ontext"):
        parse_upload(b'{"@context": "http://127.0.0.1:9/ctx", "@id": "urn:a"}', "jsonld", None, graphs_allowed=False)
    with pytest.raises(RDFSyntaxError) as caught:
        parse_upload(b"<urn:a> <urn:b> <urn:c> .\n<urn:a> <urn:b> .", "nt", None, graphs_allowed=False)
    assert caught.value.extra["line"] == 2
    with pytest.raises(RDFSyntaxError):
        parse_upload(b"GRAPH <urn:g> { <urn:a> <urn:b> <urn:c> }", "trig", None, graphs_allowed=False)


def test_uploaded_blank_nodes_are_renamed_apart() -> None:
    one = parse_upload(b"_:b0 <urn:p> 1 .", "ttl", None, graphs_allowed=False)
    two = parse_upload(b"_:b0 <urn:p> 1 .", "ttl", None, graphs_allowed=False)
    assert one[0].subject != two[0].subject


# --- the writer ---------------------------------------------------------------------------------------------


def test_writes_are_acknowledged_once_in_the_journal(store: Journal, writer: Writer) -> None:
    receipt = writer.apply(WriteOp("update", text="INSERT DATA { GRAPH <urn:g1> { <urn:a> <urn:b> 1, 2 } }"), WHO)
    assert (receipt.seq, receipt.inserted, receipt.deleted) == (1, 2, 0)
    assert receipt.data_version == store.version(1, store.head().chain)
    again = writer.apply(WriteOp("update", text="INSERT DATA { GRAPH <urn:g1> { <urn:a> <urn:b> 1 } }"), WHO)
    assert (again.seq, again.changed) == (1, False)  # nothing changed: no record, same version
    with open(store.journal_path, "rb") as journal:
        records = [r for r, _ in iter_records(journal)]
    assert [r.seq for r in records] == [1] and records[0].who == WHO and records[0].what["op"] == "update"


def test_a_failing_write_changes_nothing(store: Journal, writer: Writer) -> None:
    bad = [
        (WriteOp("update", text="INSERT DATA { <urn:a> <urn:b> <urn:c> }"), ReadOnlyGraphError),
        (
            WriteOp("update", text=f"INSERT DATA {{ GRAPH <{INFERRED}> {{ <urn:a> <urn:b> <urn:c> }} }}"),
            ReadOnlyGraphError,
        ),
        (
            WriteOp("update", text="INSERT DATA { GRAPH <urn:x-guian-kg:union:all> { <urn:a> <urn:b> 1 } }"),
            ReadOnlyGraphError,
        ),
        (WriteOp("update", text="INSERT DATA { GRAPH <urn:g> { <urn:a> } }"), UpdateSyntaxError),
        # the first operation would apply, the second fails: the request is all or nothing
        (
            WriteOp("update", text="INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> 1 } } ; DROP GRAPH <urn:none>"),
            UpdateFailedError,
        ),
        (WriteOp("put", graph="urn:g", body=b"<urn:a> <urn:b> .", rdf_format="ttl"), RDFSyntaxError),
        (WriteOp("delete", graph="urn:none"), NotFoundError),
        (WriteOp("update", text="INSERT { GRAPH <urn:g> { ?s <urn:copy> ?o } } WHERE { GRAPH ?g { ?s ?p ?o } }"), None),
    ]
    writer.max_changes = 1
    for op, error in bad:
        with pytest.raises(error or UpdateTooLargeError):
            writer.apply(op, WHO)
    assert store.head().seq == 0 and os.path.getsize(store.journal_path) == 0
    assert store.lines_at()[0] == set(BASE_LINES)


def test_syntax_errors_name_line_and_column(writer: Writer) -> None:
    with pytest.raises(UpdateSyntaxError) as caught:
        writer.apply(WriteOp("update", text="INSERT DATA {\n  GRAPH <urn:g> { <urn:a> <urn:b> }\n}"), WHO)
    assert caught.value.extra == {"line": 2, "column": 35}


def test_graph_store_operations(store: Journal, writer: Writer) -> None:
    put = writer.apply(
        WriteOp("put", graph="urn:g2", body=b"<a> <urn:p> 1, 2 .", rdf_format="ttl", base_iri="urn:g2/"), WHO
    )
    assert (put.created, put.inserted) == (True, 2)
    replaced = writer.apply(WriteOp("put", graph="urn:g2", body=b'<urn:a> <urn:p> "3" .', rdf_format="nt"), WHO)
    assert (replaced.created, replaced.deleted, replaced.inserted) == (False, 2, 1)
    merged = writer.apply(
        WriteOp("post", graph="urn:g2", body=b'{"@id": "urn:b", "urn:p": 4}', rdf_format="jsonld"), WHO
    )
    assert (merged.deleted, merged.inserted) == (0, 1)
    quads = b'<urn:a> <urn:p> "5" <urn:g3> .\n<urn:a> <urn:p> "6" <urn:g4> .\n'
    assert writer.apply(WriteOp("add", body=quads, rdf_format="nq"), WHO).inserted == 2
    with pytest.raises(ReadOnlyGraphError):
        writer.apply(WriteOp("add", body=b'<urn:a> <urn:p> "7" .', rdf_format="nq"), WHO)
    gone = writer.apply(WriteOp("delete", graph="urn:g2"), WHO)
    assert gone.deleted == 2
    lines = store.lines_at()[0]
    assert not any("<urn:g2>" in x for x in lines) and sum("<urn:g3>" in x or "<urn:g4>" in x for x in lines) == 2


def test_create_and_drop_behave_alike_in_every_replica(store: Journal, writer: Writer) -> None:
    writer.apply(WriteOp("update", text="CREATE GRAPH <urn:empty>"), WHO)
    writer.apply(WriteOp("update", text="CREATE GRAPH <urn:empty>"), WHO)  # empty graphs are not kept
    writer.evaluator.close()  # a fresh child must answer the same
    with pytest.raises(UpdateFailedError):
        writer.apply(WriteOp("update", text="DROP GRAPH <urn:empty>"), WHO)


def test_a_write_past_the_time_limit_is_stopped_and_the_next_one_works(store: Journal, writer: Writer) -> None:
    body = b"".join(b'<urn:s%d> <urn:p> "%d" .\n' % (i, i) for i in range(60))
    writer.apply(WriteOp("put", graph="urn:big", body=body, rdf_format="nt"), WHO)
    writer.timeout = 1.0
    slow = (
        "INSERT { GRAPH <urn:n> { <urn:n> <urn:v> ?n } } WHERE { SELECT (COUNT(*) AS ?n) "
        "WHERE { GRAPH ?a { ?s1 ?p1 ?o1 } GRAPH ?b { ?s2 ?p2 ?o2 } "
        "GRAPH ?c { ?s3 ?p3 ?o3 } GRAPH ?d { ?s4 ?p4 ?o4 } } }"
    )
    with pytest.raises(UpdateTimeoutError):
        writer.apply(WriteOp("update", text=slow), WHO)
    writer.timeout = 10.0
    assert writer.apply(WriteOp("update", text="INSERT DATA { GRAPH <urn:g1> { <urn:a> <urn:b> 9 } }"), WHO).seq == 2


def test_concurrent_writers_lose_no_update(store: Journal, tmp_path: Path) -> None:
    first = Writer(store, INFERRED, 30.0, 2048, 1000)
    first.apply(WriteOp("update", text=COUNTER), WHO)
    # Two writers on one folder stand for two web processes: they share only the files.
    writers = [first, Writer(Journal(store.path, "test-reasoner", "v0base"), INFERRED, 30.0, 2048, 1000)]
    failures: list[BaseException] = []

    def increment(writer: Writer) -> None:
        try:
            for _ in range(15):
                writer.apply(WriteOp("update", text=INCREMENT), WHO)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=increment, args=(writers[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.close()
    assert not failures
    lines, head = store.lines_at()
    assert head.seq == 61
    assert '<urn:counter> <urn:value> "60"^^<http://www.w3.org/2001/XMLSchema#integer> <urn:c> .' in lines


def test_journal_records_are_json_with_the_delta(store: Journal, writer: Writer) -> None:
    writer.apply(WriteOp("update", text='INSERT DATA { GRAPH <urn:g1> { <urn:a> <urn:b> "é\\n" } }'), WHO)
    data = store.journal_path.read_bytes()
    assert data[:4] == MAGIC
    payload = json.loads(data[12:])
    assert payload["insert"] == ['<urn:a> <urn:b> "é\\n" <urn:g1> .'] and payload["delete"] == []


def test_backup_and_restore_commands(tmp_path: Path, cache_dir: Path, capsys) -> None:
    from service.cli import main

    flags = [f"--store-dir={tmp_path / 'store'}", f"--cache-dir={cache_dir}"]
    assert main(["backup", "--output", str(tmp_path / "backup.nq"), *flags]) == 0
    assert main(["restore", str(tmp_path / "backup.nq"), *flags]) == 0
    out = capsys.readouterr().out
    assert "backed up journal position 0" in out and "as journal position 1" in out
    assert main(["backup", f"--cache-dir={cache_dir}"]) == 2  # without a store folder


def test_old_store_versions_are_pruned_from_the_cache(tmp_path: Path) -> None:
    from service.data.snapshots import STORE_GRAPHS, prune_cache

    old, new, shipped = (tmp_path / name for name in ("aaaaaaaaaaaa-1", "bbbbbbbbbbbb-2", "cdf90d5d3d840dfe"))
    for folder in (old, new, shipped):
        folder.mkdir()
        (folder / "dataset.nq").write_text("")
    for folder in (old, new):
        (folder / STORE_GRAPHS).write_text("")
    os.utime(old / "dataset.nq", (1, 1))
    os.utime(shipped / "dataset.nq", (1, 1))
    prune_cache(tmp_path, keep=new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bbbbbbbbbbbb-2", "cdf90d5d3d840dfe"]
