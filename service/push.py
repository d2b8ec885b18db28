"""`guian-kg push`: load every graph of the dataset (ontology, data, provenance, inferred) into a remote store.

The snapshot's N-Quads file is read as a stream (never held whole in memory) and sent in batches of at most
`--batch-size` triples, one keep-alive connection for the whole push. Over SPARQL Update a batch is one `INSERT
DATA` with a `GRAPH` block per graph it holds, so thousands of small graphs (one per claim) travel together; the
graphs a batch is the first to hold are emptied first, in one operation. Over the Graph Store Protocol a batch holds
one graph (the first batch of a graph `PUT`, the rest `POST`): the protocol names one graph per request. A blank
node is scoped to one request either way, so the quads that share blank nodes travel in one batch, across graphs
too (the inferred graph says things about the ontology's blank nodes): over SPARQL Update one request with several
`GRAPH` blocks, over the Graph Store Protocol N-Quads POSTed to the store's dataset (Oxigraph and Fuseki take
that; elsewhere use `--protocol update`). Batches are cut in the file's order (fixed for a data version), the
quads with blank nodes first; each finished one is appended to a progress file next to the snapshot, so
`--resume` after a failure or a kill sends only what is missing. Progress goes to stderr: a bar on a terminal,
elsewhere a line per tenth of the work and at least every 30 seconds, with the rate and the time left.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

import pyoxigraph as ox

from service.config import Settings
from service.data.snapshots import Snapshot, load_snapshot
from service.engines.http import KeepAlive
from service.errors import ConfigError, RemoteServiceError

PROTOCOLS = ("auto", "update", "gsp")
DEFAULT_BATCH_SIZE = 5000
REQUEST_TIMEOUT = 120.0  # seconds for one batch
PROGRESS_EVERY = 30.0  # seconds: the longest wait between two progress lines when stderr is not a terminal
_PROBE = "urn:x-guian-kg:push-probe:"
# A blank node of an N-Triples line `S P O .` is its subject or its object: never look inside literals.
_BLANK_SUBJECT = re.compile(r"^_:(\S+)(?= )")
_BLANK_OBJECT = re.compile(r"(?<=> )_:(\S+)(?= \.$)")
# Path endings of Graph Store Protocol endpoints: Oxigraph, Fuseki, GraphDB/RDF4J, Virtuoso.
_GSP_PATHS = ("/store", "/data", "/rdf-graphs/service", "/sparql-graph-crud", "/sparql-graph-crud-auth")
_PROGRESS_FORMAT = 2  # the progress file: a JSON header line, then one finished batch key a line


@dataclass(frozen=True)
class Batch:
    """Quads to send in one request, as (graph IRI, N-Triples line); `replace`: graphs to empty first."""

    index: int
    quads: tuple[tuple[str, str], ...]
    replace: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.index} {self.quads[0][0]}"

    @property
    def graphs(self) -> list[str]:
        """The graphs of the batch, in order."""
        return list(dict.fromkeys(graph for graph, _ in self.quads))


@dataclass
class Plan:
    """The batches of a snapshot for one protocol and batch size, cut while the N-Quads file is read.

    `shared` (triples that sit in more than one graph) and `graphs` are known once `batches()` has run through.
    """

    nquads: Path
    protocol: str
    batch_size: int
    triples: int
    shared: int = 0
    graphs: int = 0

    def batches(self) -> Iterator[Batch]:
        """The batches, in a stable order: first the quads with blank nodes, those sharing one (directly or
        through others) in the same batch, then the file's other quads as they come. (Blank nodes first: a batch
        re-sent on resume would make new ones, so they go where a resumed push has the least to send again.)"""
        seen_graphs: set[str] = set()
        seen_triples: set[int] = set()
        shared = 0
        current: list[tuple[str, str]] = []
        index = 0

        def cut() -> Batch:
            nonlocal index
            graphs = list(dict.fromkeys(graph for graph, _ in current))
            batch = Batch(index, tuple(current), tuple(g for g in graphs if g not in seen_graphs))
            seen_graphs.update(graphs)
            index += 1
            return batch

        with open(self.nquads, "rb") as lines:  # a first look: only lines that may hold a blank node are parsed
            maybe = b"".join(line for line in lines if b"_:" in line)
        held = [
            (quad.graph_name.value, f"{quad.triple} .")
            for quad in ox.parse(maybe, format=ox.RdfFormat.N_QUADS)
            if isinstance(quad.subject, ox.BlankNode) or isinstance(quad.object, ox.BlankNode)
        ]
        for group in _groups(held):
            if current and (len(current) + len(group) > self.batch_size or self.protocol == "gsp"):
                yield cut()
                current = []
            current.extend(group)
        for quad in ox.parse(path=self.nquads, format=ox.RdfFormat.N_QUADS):
            graph, line = quad.graph_name.value, f"{quad.triple} ."
            digest = hash(line)
            if digest in seen_triples:
                shared += 1
            seen_triples.add(digest)
            if isinstance(quad.subject, ox.BlankNode) or isinstance(quad.object, ox.BlankNode):
                continue
            if current and (len(current) >= self.batch_size or (self.protocol == "gsp" and graph != current[-1][0])):
                yield cut()
                current = []
            current.append((graph, line))
        if current:
            yield cut()
        self.shared, self.graphs = shared, len(seen_graphs)


@dataclass
class PushReport:
    """What one push did."""

    endpoint: str
    protocol: str
    graphs: int = 0
    triples: int = 0
    batches: int = 0
    skipped: int = 0
    sent_triples: int = 0
    shared_triples: int = 0  # triples that sit in more than one graph
    skolemized: int = 0  # blank nodes the store would not share across graphs, sent as skolem IRIs
    seconds: float = 0.0
    sent: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The lines `guian-kg push` prints when it is done."""
        rate = self.sent_triples / self.seconds if self.seconds else 0.0
        lines = [
            f"pushed {self.triples} triples in {self.graphs} graphs to {self.endpoint} ({self.protocol}): "
            f"{self.batches - self.skipped} batches ({self.sent_triples} triples) sent, {self.skipped} already there, "
            f"{self.seconds:.1f} s ({rate:.0f} triples/s)"
        ]
        if self.skolemized:
            lines.append(
                f"note: the store refused {self.skolemized} blank nodes shared across graphs in one INSERT; they "
                "were sent as skolem IRIs (…/.well-known/genid/…), so isBlank() is false for them there"
            )
        if self.shared_triples:
            lines.append(
                f"note: {self.shared_triples} triples sit in more than one graph; a store whose union default "
                "graph is a bag (Oxigraph, Virtuoso) counts them more than once"
            )
        return "\n".join(lines)


def choose_protocol(endpoint: str, protocol: str = "auto") -> str:
    """ "update" or "gsp": as asked, or from the endpoint's path (Graph Store endpoints end in /store, /data…)."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}")
    if protocol != "auto":
        return protocol
    path = urllib.parse.urlsplit(endpoint).path.rstrip("/")
    return "gsp" if path.endswith(_GSP_PATHS) else "update"


def _groups(quads: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The quads (graph, line) grouped so that quads sharing a blank node (directly or through others) are
    together, in a stable order."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for _, line in quads:
        found = _blank_labels(line)
        for other in found[1:]:
            parent[find(other)] = find(found[0])
    together: dict[str, list[tuple[str, str]]] = {}
    for quad in quads:
        together.setdefault(find(_blank_labels(quad[1])[0]), []).append(quad)
    return sorted(together.values(), key=min)


def plan(snapshot: Snapshot, batch_size: int = DEFAULT_BATCH_SIZE, protocol: str = "update") -> Plan:
    """How the snapshot is cut into batches for `protocol` ("update" or "gsp").

    Raises:
        ConfigError: for a batch size below 1.
    """
    if batch_size < 1:
        raise ConfigError("the batch size must be at least 1")
    with open(snapshot.nquads, "rb") as lines:
        triples = sum(1 for line in lines if line.strip())
    return Plan(snapshot.nquads, protocol, batch_size, triples)


class Progress:
    """A progress bar on a terminal; elsewhere a line per tenth of the work and at least every PROGRESS_EVERY s."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.done, self.stream = max(total, 1), 0, stream
        self.tty = stream.isatty()
        self.started = self._last_line = time.monotonic()
        self._last_tenth = -1
        self.sent = 0  # triples sent by this run (not skipped): what the rate is of

    def advance(self, triples: int, note: str, sent: bool) -> None:
        self.done += triples
        self.sent += triples if sent else 0
        share = self.done / self.total
        now = time.monotonic()
        rate = self.sent / (now - self.started) if now > self.started else 0.0
        left = f"{(self.total - self.done) / rate:.0f} s left" if rate and self.done < self.total else "done"
        if self.tty:
            bar = "#" * int(share * 30)
            self.stream.write(
                f"\r[{bar:<30}] {share:6.1%} {self.done}/{self.total} triples {rate:7.0f}/s {left:>10} {note[:30]:<30}"
            )
            if self.done >= self.total:
                self.stream.write("\n")
        elif int(share * 10) != self._last_tenth or now - self._last_line >= PROGRESS_EVERY:
            self._last_tenth, self._last_line = int(share * 10), now
            self.stream.write(f"push: {share:.0%} ({self.done}/{self.total} triples, {rate:.0f} triples/s, {left})\n")
        self.stream.flush()


class _Connection:
    """The push's keep-alive connection to the endpoint (service.engines.http.KeepAlive), with its errors named."""

    def __init__(self, endpoint: str) -> None:
        try:
            self.http = KeepAlive(endpoint, REQUEST_TIMEOUT)
        except ValueError:
            raise ConfigError(f"push needs an http(s) endpoint URL, not {endpoint!r}") from None
        self.shown = self.http.shown
        self.largest = 0  # the most quads an INSERT DATA may hold, once the store refused a larger one (0: any)

    def request(
        self, method: str, body: bytes, content_type: str, params: dict[str, str], missing_ok: bool = False
    ) -> None:
        """Send one request; a 2xx answer (or 404 with `missing_ok`) is success.

        Raises:
            RemoteServiceError: naming the endpoint, when it refuses the request or cannot be reached.
        """
        try:
            status, _, said = self.http.send(method, body, {"Content-Type": content_type}, params)
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteServiceError(f"<{self.shown}> could not be reached: {exc}", endpoint=self.shown) from None
        if 200 <= status < 300 or (missing_ok and status == 404):
            return
        text = " ".join(said[:500].decode("utf-8", "replace").split())
        raise RemoteServiceError(
            f"<{self.shown}> answered HTTP {status}: {text}", endpoint=self.shown, status_code=status
        )

    def close(self) -> None:
        self.http.close()


def _blank_labels(line: str) -> list[str]:
    return [m.group(1) for pattern in (_BLANK_SUBJECT, _BLANK_OBJECT) if (m := pattern.search(line))]


def _skolemize(line: str, genid: str) -> str:
    for pattern in (_BLANK_SUBJECT, _BLANK_OBJECT):
        line = pattern.sub(lambda m: f"<{genid}{m.group(1)}>", line)
    return line


def _emptying(graphs: tuple[str, ...]) -> str:
    """One SPARQL Update operation that empties `graphs` (one operation: Virtuoso 7.2 takes no more a request)."""
    if len(graphs) == 1:
        return f"DROP SILENT GRAPH <{graphs[0]}>"
    listed = " ".join(f"<{g}>" for g in graphs)
    return f"DELETE {{ GRAPH ?g {{ ?s ?p ?o }} }} WHERE {{ VALUES ?g {{ {listed} }} GRAPH ?g {{ ?s ?p ?o }} }}"


def send(connection: _Connection, protocol: str, batch: Batch, genid: str = "") -> int:
    """Send one batch, emptying the graphs it is the first to hold; return how many blank nodes were skolemized.

    Over SPARQL Update, with `genid` given (for a store that cannot share a blank node across graphs in one
    INSERT: see `shares_blank_nodes`), the blank nodes of a batch spanning graphs are sent as skolem IRIs
    `<{genid}label>` (RDF 1.1, 3.5): the joins hold, only isBlank() tells them apart.

    Raises:
        RemoteServiceError: naming the endpoint, when it refuses the batch or cannot be reached.
    """
    graphs = batch.graphs
    skolemized = 0
    if protocol == "update":
        # One operation per request (Virtuoso 7.2 fails requests of several: "string_output_string needs a
        # string output"). INSERT DATA may not hold blank nodes there either ("not allowed in a constant clause"):
        # the quads with blank nodes go in one INSERT … WHERE {}, which makes one fresh node per label over the one
        # empty solution, as INSERT DATA would; the rest, which have none, go in INSERT DATA.
        if batch.replace:
            connection.request("POST", _emptying(batch.replace).encode(), "application/sparql-update", {})
        plain = [(g, line) for g, line in batch.quads if not _blank_labels(line)]
        blank = [(g, line) for g, line in batch.quads if _blank_labels(line)]
        if plain:
            _insert_data(connection, plain)
        # only the blank nodes that sit in two graphs are skolemized; the others stay blank nodes
        crossing = [q for group in _groups(blank) if genid and _spans_graphs(group) for q in group]
        local = [q for q in blank if q not in set(crossing)]
        if crossing:
            skolemized = len({label for _, line in crossing for label in _blank_labels(line)})
            skolem = [(g, _skolemize(line, genid)) for g, line in crossing]
            connection.request("POST", _insert("INSERT DATA {", skolem, "}"), "application/sparql-update", {})
        # a store that cannot share blank nodes across graphs (Virtuoso 7.2) takes no INSERT holding them in two
        # graphs at all: one request per graph then
        by_graph: dict[str, list[tuple[str, str]]] = {}
        for graph, line in local:
            by_graph.setdefault(graph if genid else "", []).append((graph, line))
        for part in by_graph.values():
            connection.request("POST", _insert("INSERT {", part, "} WHERE {}"), "application/sparql-update", {})
    elif len(graphs) == 1:
        body = "\n".join(line for _, line in batch.quads) + "\n"
        method = "PUT" if batch.replace else "POST"
        connection.request(method, body.encode(), "application/n-triples", {"graph": graphs[0]})
    else:  # blank nodes shared across graphs: one N-Quads document for the store's whole dataset
        for graph in batch.replace:
            connection.request("DELETE", b"", "application/n-triples", {"graph": graph}, missing_ok=True)
        body = "".join(f"{line[:-1]} <{graph}> .\n" for graph, line in batch.quads)
        connection.request("POST", body.encode(), "application/n-quads", {})
    return skolemized


def _too_large(exc: RemoteServiceError) -> bool:
    """Whether the store refused a request for its size: HTTP 413, or Virtuoso 7.2's SPARQL compiler running out
    of parser stack ("SP030: … memory exhausted", from about 5,000 lines of INSERT DATA)."""
    return exc.extra.get("status_code") == 413 or ("HTTP 400" in exc.detail and "memory exhausted" in exc.detail)


def _insert_data(connection: _Connection, quads: list[tuple[str, str]]) -> None:
    """INSERT DATA the quads (no blank nodes: sending a triple twice changes nothing); when the store finds the
    request too large, halves of them, and so on, and no more than the largest part it took from then on."""
    start = 0
    while start < len(quads):
        part = quads[start : start + (connection.largest or len(quads))]
        try:
            connection.request("POST", _insert("INSERT DATA {", part, "}"), "application/sparql-update", {})
        except RemoteServiceError as exc:
            if len(part) < 2 or not _too_large(exc):
                raise
            connection.largest = len(part) // 2
            continue
        start += len(part)


def _insert(head: str, quads: list[tuple[str, str]], tail: str) -> bytes:
    by_graph: dict[str, list[str]] = {}
    for graph, line in quads:
        by_graph.setdefault(graph, []).append(line)
    blocks = "".join(f"GRAPH <{graph}> {{\n" + "\n".join(lines) + "\n}\n" for graph, lines in by_graph.items())
    return f"{head}\n{blocks}{tail}\n".encode()


def shares_blank_nodes(connection: _Connection) -> bool:
    """Whether the store takes one blank node in two graphs of one INSERT (Virtuoso 7.2 does not), tried on
    scratch graphs that are dropped again."""
    probe = [(f"{_PROBE}a", "<urn:x:s> <urn:x:p> _:b ."), (f"{_PROBE}b", "_:b <urn:x:p> <urn:x:o> .")]
    try:
        connection.request("POST", _insert("INSERT {", probe, "} WHERE {}"), "application/sparql-update", {})
        return True
    except RemoteServiceError:
        return False
    finally:
        for graph, _ in probe:
            connection.request("POST", f"DROP SILENT GRAPH <{graph}>".encode(), "application/sparql-update", {})


def progress_file(snapshot: Snapshot, endpoint: str) -> Path:
    """Where the batches finished for this data version and endpoint are recorded."""
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:12]
    return snapshot.nquads.parent / f"push-{digest}.json"


def _header(snapshot: Snapshot, chosen: Plan) -> dict[str, object]:
    return {
        "format": _PROGRESS_FORMAT,
        "version": snapshot.version,
        "protocol": chosen.protocol,
        "batch_size": chosen.batch_size,
    }


def _load_progress(path: Path, header: dict[str, object], resume: bool) -> set[str]:
    """The batch keys an earlier push recorded as finished (a line cut short by a kill is not one).

    Raises:
        ConfigError: the record is of another data version, protocol or batch size.
    """
    if not resume or not path.exists():
        return set()
    lines = path.read_text(encoding="utf-8").split("\n")
    try:
        state = json.loads(lines[0])
    except ValueError:
        state = {}
    if state != header:
        raise ConfigError(
            f"the unfinished push recorded in {path} was for data version {state.get('version')} over "
            f"{state.get('protocol')} with --batch-size {state.get('batch_size')}; run without --resume to push "
            "again from the start"
        )
    return set(lines[1:-1])  # every line but the last ends with a newline: only those were written whole


def push(
    settings: Settings,
    endpoint: str,
    *,
    protocol: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    resume: bool = False,
    stream: TextIO | None = None,
) -> PushReport:
    """Load the current snapshot into the store at `endpoint`, batch by batch, reporting progress on `stream`.

    A batch is recorded as finished once the store has answered it; a push killed between the answer and the
    record sends that batch again on `resume` (harmless for triples without blank nodes: a graph is a set).

    Raises:
        ConfigError: a bad protocol, batch size or endpoint, or `resume` over another push's progress.
        RemoteServiceError: the store refused a batch or could not be reached (run again with `resume`).
    """
    started = time.monotonic()
    # push reads the snapshot's N-Quads only: whatever the configured engine, no on-disk store is built for it
    snapshot = load_snapshot(replace(settings, engine="remote"))
    chosen = plan(snapshot, batch_size, choose_protocol(endpoint, protocol))
    record = progress_file(snapshot, endpoint)
    header = _header(snapshot, chosen)
    done = _load_progress(record, header, resume)
    if not resume or not record.exists():
        record.write_text(json.dumps(header, sort_keys=True) + "\n", encoding="utf-8")
    report = PushReport(endpoint, chosen.protocol)
    bar = Progress(chosen.triples, stream or sys.stderr)
    connection = _Connection(endpoint)
    genid: str | None = None  # decided at the first batch that needs it
    try:
        with open(record, "a", encoding="utf-8") as log:
            for batch in chosen.batches():
                report.batches += 1
                report.triples += len(batch.quads)
                if batch.key in done:
                    report.skipped += 1
                else:
                    if genid is None and chosen.protocol == "update" and _crosses(batch):
                        genid = "" if shares_blank_nodes(connection) else snapshot.base_iri + ".well-known/genid/"
                    report.skolemized += send(connection, chosen.protocol, batch, genid or "")
                    log.write(batch.key + "\n")
                    log.flush()
                    report.sent.append(batch.key)
                    report.sent_triples += len(batch.quads)
                bar.advance(len(batch.quads), batch.quads[0][0].rsplit("/", 1)[-1], batch.key not in done)
    finally:
        connection.close()
    report.graphs, report.shared_triples = chosen.graphs, chosen.shared
    report.seconds = time.monotonic() - started
    return report


def _spans_graphs(quads: list[tuple[str, str]]) -> bool:
    return len({graph for graph, _ in quads}) > 1


def _crosses(batch: Batch) -> bool:
    """Whether the batch's quads with blank nodes sit in more than one graph (whether the store takes that in one
    INSERT must then be known)."""
    return _spans_graphs([q for q in batch.quads if _blank_labels(q[1])])
