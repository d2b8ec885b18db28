"""`guian-kg push` without a real store: how a snapshot is cut into batches, what is sent for each protocol over
one connection, and how a push that failed or was killed half-way resumes (tests/e2e/test_remote_engine.py pushes
to Oxigraph server and Virtuoso)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyoxigraph as ox
import pytest

from service.config import load_settings
from service.data.snapshots import Snapshot, load_snapshot
from service.errors import ConfigError, RemoteServiceError
from service.push import Progress, plan, progress_file, push

G = "https://example.org/graph/"
E = "https://example.org/e/"


def write_snapshot(folder: Path, graphs: int = 6, per_graph: int = 5) -> Snapshot:
    """A snapshot of small graphs, plus blank nodes shared by two graphs (as the inferred graph shares the
    ontology's) and a triple that sits in two graphs."""
    lines = [
        f"<{E}s{g}-{i}> <{E}p> <{E}o{i}> <{G}{g}> ." for g in range(graphs) for i in range(per_graph)
    ]  # fmt: skip
    lines += [
        f"_:list <{E}first> <{E}a> <{G}0> .",
        f"_:list <{E}rest> _:tail <{G}0> .",
        f"_:tail <{E}first> <{E}b> <{G}0> .",
        f"<{E}c> <{E}about> _:tail <{G}inferred> .",
        f"<{E}s0-0> <{E}p> <{E}o0> <{G}inferred> .",
    ]
    nquads = folder / "dataset.nq"
    nquads.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Snapshot("v1", nquads, (), f"{G}inferred", "https://example.org/")


def blank_labels(batch) -> set[str]:
    return {word for _, line in batch.quads for word in line.split() if word.startswith("_:")}


def test_update_batches_mix_small_graphs_and_keep_blank_nodes_together(tmp_path):
    snapshot = write_snapshot(tmp_path)
    cut = plan(snapshot, 7, "update")
    batches = list(cut.batches())
    assert cut.triples == 35 and sum(len(b.quads) for b in batches) == 35
    assert cut.graphs == 7 and cut.shared == 1  # 6 graphs and the inferred one; one triple in two graphs
    assert all(len(b.quads) <= 7 for b in batches)
    assert any(len(b.graphs) > 1 for b in batches[:-1])  # several claim-sized graphs travel in one request
    with_blanks = [b for b in batches if blank_labels(b)]
    assert len(with_blanks) == 1 and blank_labels(with_blanks[0]) == {"_:list", "_:tail"}
    assert {g for g, line in with_blanks[0].quads if "_:" in line} == {f"{G}0", f"{G}inferred"}
    # each graph is emptied once, by the first batch that holds it
    emptied = [g for b in batches for g in b.replace]
    assert sorted(emptied) == sorted({g for b in batches for g in b.graphs})
    assert [b.key for b in batches] == [b.key for b in plan(snapshot, 7, "update").batches()]  # a stable order


def test_graph_store_batches_hold_one_graph_but_for_shared_blank_nodes(tmp_path):
    batches = list(plan(write_snapshot(tmp_path), 3, "gsp").batches())
    crossing = [b for b in batches if len(b.graphs) > 1]
    assert len(crossing) == 1 and blank_labels(crossing[0]) == {"_:list", "_:tail"}
    assert all(len(b.quads) <= 3 for b in batches if b not in crossing)
    with pytest.raises(ConfigError):
        plan(write_snapshot(tmp_path), 0)


def test_progress_lines_when_stderr_is_not_a_terminal(monkeypatch):
    clock = iter([0.0, 1.0, 2.0, 40.0, 41.0])
    monkeypatch.setattr("service.push.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    bar = Progress(1000, out)
    bar.advance(10, "g", sent=True)  # 1 %: the first line
    bar.advance(10, "g", sent=True)  # 2 %: nothing new to say
    bar.advance(10, "g", sent=True)  # 3 %, but 30 s since the last line
    bar.advance(970, "g", sent=True)
    lines = out.getvalue().splitlines()
    assert lines[0] == "push: 1% (10/1000 triples, 10 triples/s, 99 s left)"
    assert len(lines) == 3 and lines[1].startswith("push: 3% (30/1000")
    assert lines[-1] == "push: 100% (1000/1000 triples, 24 triples/s, done)"


class Store:
    """A loopback HTTP server that records requests and fails the `fail_at`-th one with a 500."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes, int]] = []  # method, path, body, client port
        self.fail_at: int | None = None
        self.max_lines: int | None = None  # longer requests are refused as Virtuoso 7.2 refuses them
        self.refused = 0
        store = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                store.requests.append((self.command, self.path, body, self.client_address[1]))
                said = b""
                if store.max_lines is not None and body.count(b"\n") > store.max_lines:
                    said = b"Virtuoso 37000 Error SP030: SPARQL compiler, line 4993: memory exhausted"
                    store.requests.pop()
                    store.refused += 1
                status = 500 if len(store.requests) == store.fail_at else 400 if said else 204
                self.send_response(status)
                self.send_header("Content-Length", str(len(said)))
                self.end_headers()
                self.wfile.write(said)

            do_POST = do_PUT = do_DELETE = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def inserted(self) -> list[str]:
        """The triple lines of every INSERT DATA sent."""
        found = []
        for _, _, body, _ in self.requests:
            text = body.decode()
            if text.startswith("INSERT DATA"):
                found += [line for line in text.splitlines() if line.endswith(" .")]
        return found


@pytest.fixture
def store() -> Iterator[Store]:
    running = Store()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def settings(tmp_path):
    data = tmp_path / "data.trig"
    claims = "\n".join(f"<{E}claim{i}> {{ <{E}s{i}> <{E}p> <{E}o{i}> . <{E}s{i}> <{E}q> {i} . }}" for i in range(30))
    data.write_text(claims + "\n", encoding="utf-8")
    return load_settings({"data": str(data), "cache_dir": str(tmp_path / "cache")}, environ={})


def test_push_over_update_uses_one_connection_and_resumes_after_a_failure(store, settings):
    endpoint = store.url + "/update"
    snapshot = load_snapshot(settings)
    total = sum(1 for _ in ox.parse(path=snapshot.nquads, format=ox.RdfFormat.N_QUADS))
    store.fail_at = 5
    with pytest.raises(RemoteServiceError, match="HTTP 500"):
        push(settings, endpoint, batch_size=8, stream=io.StringIO())
    assert len({port for *_, port in store.requests}) == 1  # keep-alive: one connection for every request
    record = progress_file(snapshot, endpoint)
    header, *done = record.read_text().splitlines()
    assert json.loads(header)["protocol"] == "update" and done  # what was answered before the failure is recorded
    sent_before = set(store.inserted())
    store.fail_at, store.requests = None, []
    report = push(settings, endpoint, batch_size=8, resume=True, stream=io.StringIO())
    assert report.skipped == len(done) and report.triples == total
    sent_after = set(store.inserted())
    assert not sent_before & sent_after  # nothing sent twice
    assert len(sent_before | sent_after) == total
    with pytest.raises(ConfigError, match="without --resume"):
        push(settings, endpoint, batch_size=9, resume=True, stream=io.StringIO())
    with pytest.raises(ConfigError, match="without --resume"):
        push(settings, endpoint, protocol="gsp", batch_size=8, resume=True, stream=io.StringIO())


def test_a_record_cut_short_by_a_kill_sends_that_batch_again(store, settings):
    endpoint = store.url + "/update"
    first = push(settings, endpoint, batch_size=8, stream=io.StringIO())
    record = progress_file(load_snapshot(settings), endpoint)
    header, *done = record.read_text().splitlines()
    assert len(done) == first.batches
    record.write_text("\n".join([header, *done[:2], done[2][:3]]))  # killed while writing the third key
    store.requests = []
    again = push(settings, endpoint, batch_size=8, resume=True, stream=io.StringIO())
    assert again.skipped == 2 and again.batches - again.skipped == len(done) - 2
    assert again.sent[0] == done[2]


def test_push_over_the_graph_store_protocol_puts_then_posts(store, settings):
    report = push(settings, store.url + "/store", batch_size=1, stream=io.StringIO())
    assert report.protocol == "gsp"
    methods: dict[str, list[str]] = {}
    for method, path, _, _ in store.requests:
        methods.setdefault(path, []).append(method)
    # each graph: PUT first (replacing what the store held), then POST
    assert methods and all(m[0] == "PUT" and set(m[1:]) <= {"POST"} for m in methods.values())
    assert sum(len(m) for m in methods.values()) == report.triples


def test_a_request_the_store_finds_too_large_is_sent_in_halves(store, settings):
    store.max_lines = 12
    report = push(settings, store.url + "/sparql", batch_size=40, stream=io.StringIO())
    inserted = store.inserted()
    assert len(inserted) == len(set(inserted)) == report.triples  # every triple once
    assert all(body.count(b"\n") <= 12 for _, _, body, _ in store.requests)
    assert 0 < store.refused <= 5  # the halvings of the first batch (40 → 2): later ones go in parts it takes
