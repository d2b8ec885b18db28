"""`guian-kg push`: load every graph of the dataset (ontology, data, provenance, inferred) into a remote store.

The snapshot's quads are sent graph by graph in batches, either as SPARQL Update (`INSERT DATA`; the first batch
holding a graph starts with `DROP SILENT GRAPH`) or through the Graph Store Protocol (the first batch of a graph
`PUT`, the rest `POST`). A blank node is scoped to one request either way, so all the quads that share blank
nodes travel in the same batch, across graphs too (the inferred graph says things about the ontology's blank
nodes): such a batch is one `INSERT DATA` with several `GRAPH` blocks, or, over the Graph Store Protocol, N-Quads
POSTed to the store's dataset (Oxigraph and Fuseki take that; elsewhere use `--protocol update`). Batches are cut
in a stable order; each finished one is recorded in a progress file next to the snapshot, so `--resume` after a
failure sends only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pyoxigraph as ox

from service.config import Settings
from service.data.snapshots import Snapshot, load_snapshot
from service.engines.http import OPENER, USER_AGENT, with_credentials
from service.errors import ConfigError, RemoteServiceError

PROTOCOLS = ("auto", "update", "gsp")
DEFAULT_BATCH_SIZE = 5000
REQUEST_TIMEOUT = 120.0  # seconds for one batch
# Path endings of Graph Store Protocol endpoints: Oxigraph, Fuseki, GraphDB/RDF4J, Virtuoso.
_PROBE = "urn:x-guian-kg:push-probe:"
# A blank node of an N-Triples line `S P O .` is its subject or its object: never look inside literals.
_BLANK_SUBJECT = re.compile(r"^_:(\S+)(?= )")
_BLANK_OBJECT = re.compile(r"(?<=> )_:(\S+)(?= \.$)")
_GSP_PATHS = ("/store", "/data", "/rdf-graphs/service", "/sparql-graph-crud", "/sparql-graph-crud-auth")


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
class PushReport:
    """What one push did."""

    endpoint: str
    protocol: str
    graphs: int = 0
    triples: int = 0
    batches: int = 0
    skipped: int = 0
    shared_triples: int = 0  # triples that sit in more than one graph
    skolemized: int = 0  # blank nodes the store would not share across graphs, sent as skolem IRIs
    seconds: float = 0.0
    sent: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The lines `guian-kg push` prints when it is done."""
        lines = [
            f"pushed {self.triples} triples in {self.graphs} graphs to {self.endpoint} ({self.protocol}): "
            f"{self.batches - self.skipped} batches sent, {self.skipped} already there, {self.seconds:.1f} s"
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


def _groups(quads: list[ox.Quad]) -> list[list[ox.Quad]]:
    """The quads grouped so that quads sharing a blank node (directly or through others) are together."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def blanks(quad: ox.Quad) -> list[str]:
        return [t.value for t in (quad.subject, quad.object) if isinstance(t, ox.BlankNode)]

    for quad in quads:
        found = blanks(quad)
        for other in found[1:]:
            parent[find(other)] = find(found[0])
    together: dict[str, list[ox.Quad]] = {}
    alone: list[list[ox.Quad]] = []
    for quad in quads:
        found = blanks(quad)
        if found:
            together.setdefault(find(found[0]), []).append(quad)
        else:
            alone.append([quad])
    return sorted([*alone, *together.values()], key=lambda group: min((q.graph_name.value, str(q)) for q in group))


def plan(snapshot: Snapshot, batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[list[Batch], int]:
    """The batches of the snapshot, in a stable order, and how many triples sit in more than one graph.

    Raises:
        ConfigError: for a batch size below 1.
    """
    if batch_size < 1:
        raise ConfigError("the batch size must be at least 1")
    quads = list(ox.parse(path=snapshot.nquads, format=ox.RdfFormat.N_QUADS))
    shared = sum(1 for count in Counter(q.triple for q in quads).values() if count > 1)
    batches: list[Batch] = []
    current: list[tuple[str, str]] = []
    first_graph = ""
    seen: set[str] = set()

    def close() -> None:
        graphs = list(dict.fromkeys(graph for graph, _ in current))
        batches.append(Batch(len(batches), tuple(current), tuple(g for g in graphs if g not in seen)))
        seen.update(graphs)

    for group in _groups(quads):
        graph = group[0].graph_name.value  # batches follow the graphs' order; a group goes with its first graph
        if current and (len(current) + len(group) > batch_size or graph != first_graph):
            close()
            current = []
        if not current:
            first_graph = graph
        current.extend((q.graph_name.value, f"{q.triple} .") for q in group)
    if current:
        close()
    return batches, shared


class _Progress:
    """A progress bar on a terminal; elsewhere a line per tenth of the work."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.done, self.stream = max(total, 1), 0, stream
        self.tty = stream.isatty()
        self._last_tenth = -1

    def advance(self, triples: int, note: str) -> None:
        self.done += triples
        share = self.done / self.total
        if self.tty:
            bar = "#" * int(share * 30)
            self.stream.write(f"\r[{bar:<30}] {share:6.1%} {self.done}/{self.total} triples {note[:40]:<40}")
            if self.done >= self.total:
                self.stream.write("\n")
        elif int(share * 10) != self._last_tenth:
            self._last_tenth = int(share * 10)
            self.stream.write(f"push: {share:.0%} ({self.done}/{self.total} triples)\n")
        self.stream.flush()


def _request(
    endpoint: str, method: str, body: bytes, content_type: str, params: dict[str, str], missing_ok: bool = False
) -> None:
    # credentials in the URL (http://user:password@host/…) become a header; no redirect is ever followed
    shown, headers = with_credentials(endpoint, {"Content-Type": content_type, "User-Agent": USER_AGENT})
    url = shown
    if params:
        url += ("&" if urllib.parse.urlsplit(shown).query else "?") + urllib.parse.urlencode(params)
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with OPENER.open(request, timeout=REQUEST_TIMEOUT) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if missing_ok and exc.code == 404:
            return
        said = " ".join(exc.read(500).decode("utf-8", "replace").split())
        raise RemoteServiceError(f"<{shown}> answered HTTP {exc.code}: {said}", endpoint=shown) from None
    except (urllib.error.URLError, OSError) as exc:
        raise RemoteServiceError(
            f"<{shown}> could not be reached: {getattr(exc, 'reason', exc)}", endpoint=shown
        ) from None


def _blank_labels(line: str) -> list[str]:
    return [m.group(1) for pattern in (_BLANK_SUBJECT, _BLANK_OBJECT) if (m := pattern.search(line))]


def _skolemize(line: str, genid: str) -> str:
    for pattern in (_BLANK_SUBJECT, _BLANK_OBJECT):
        line = pattern.sub(lambda m: f"<{genid}{m.group(1)}>", line)
    return line


def send(endpoint: str, protocol: str, batch: Batch, genid: str = "") -> int:
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
        for operation in [f"DROP SILENT GRAPH <{g}>" for g in batch.replace]:
            _request(endpoint, "POST", operation.encode(), "application/sparql-update", {})
        plain = [(g, line) for g, line in batch.quads if not _blank_labels(line)]
        blank = [(g, line) for g, line in batch.quads if _blank_labels(line)]
        if plain:
            _request(endpoint, "POST", _insert("INSERT DATA {", plain, "}"), "application/sparql-update", {})
        if blank and genid and len({g for g, _ in blank}) > 1:
            labels = {label for _, line in blank for label in _blank_labels(line)}
            blank, skolemized = [(g, _skolemize(line, genid)) for g, line in blank], len(labels)
            _request(endpoint, "POST", _insert("INSERT DATA {", blank, "}"), "application/sparql-update", {})
        elif blank:
            _request(endpoint, "POST", _insert("INSERT {", blank, "} WHERE {}"), "application/sparql-update", {})
    elif len(graphs) == 1:
        body = "\n".join(line for _, line in batch.quads) + "\n"
        method = "PUT" if batch.replace else "POST"
        _request(endpoint, method, body.encode(), "application/n-triples", {"graph": graphs[0]})
    else:  # blank nodes shared across graphs: one N-Quads document for the store's whole dataset
        for graph in batch.replace:
            _request(endpoint, "DELETE", b"", "application/n-triples", {"graph": graph}, missing_ok=True)
        body = "".join(f"{line[:-1]} <{graph}> .\n" for graph, line in batch.quads)
        _request(endpoint, "POST", body.encode(), "application/n-quads", {})
    return skolemized


def _insert(head: str, quads: list[tuple[str, str]], tail: str) -> bytes:
    blocks = "".join(
        f"GRAPH <{graph}> {{\n" + "\n".join(line for g, line in quads if g == graph) + "\n}\n"
        for graph in dict.fromkeys(g for g, _ in quads)
    )
    return f"{head}\n{blocks}{tail}\n".encode()


def shares_blank_nodes(endpoint: str) -> bool:
    """Whether the store takes one blank node in two graphs of one INSERT (Virtuoso 7.2 does not), tried on
    scratch graphs that are dropped again."""
    probe = [(f"{_PROBE}a", "<urn:x:s> <urn:x:p> _:b ."), (f"{_PROBE}b", "_:b <urn:x:p> <urn:x:o> .")]
    try:
        _request(endpoint, "POST", _insert("INSERT {", probe, "} WHERE {}"), "application/sparql-update", {})
        return True
    except RemoteServiceError:
        return False
    finally:
        for graph, _ in probe:
            _request(endpoint, "POST", f"DROP SILENT GRAPH <{graph}>".encode(), "application/sparql-update", {})


def progress_file(snapshot: Snapshot, endpoint: str) -> Path:
    """Where the batches finished for this data version and endpoint are recorded."""
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:12]
    return snapshot.nquads.parent / f"push-{digest}.json"


def _load_progress(path: Path, snapshot: Snapshot, batch_size: int, resume: bool) -> set[str]:
    if not resume or not path.exists():
        return set()
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("version") != snapshot.version or state.get("batch_size") != batch_size:
        raise ConfigError(
            f"the unfinished push recorded in {path} was for data version {state.get('version')} with "
            f"--batch-size {state.get('batch_size')}; run without --resume to push again from the start"
        )
    return set(state.get("done", []))


def _save_progress(path: Path, snapshot: Snapshot, batch_size: int, done: Iterable[str]) -> None:
    state = {"version": snapshot.version, "batch_size": batch_size, "done": sorted(done)}
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False) as tmp:
        json.dump(state, tmp)
    os.replace(tmp.name, path)


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

    Raises:
        ConfigError: a bad protocol or batch size, or `resume` over another data version's progress.
        RemoteServiceError: the store refused a batch or could not be reached (run again with `resume`).
    """
    started = time.monotonic()
    snapshot = load_snapshot(settings)
    chosen = choose_protocol(endpoint, protocol)
    batches, shared = plan(snapshot, batch_size)
    record = progress_file(snapshot, endpoint)
    done = _load_progress(record, snapshot, batch_size, resume)
    report = PushReport(endpoint, chosen, graphs=len({g for b in batches for g in b.graphs}), batches=len(batches))
    report.triples, report.shared_triples = sum(len(b.quads) for b in batches), shared
    bar = _Progress(report.triples, stream or sys.stderr)
    crossing = any(len({g for g, line in b.quads if _blank_labels(line)}) > 1 for b in batches if b.key not in done)
    genid = ""
    if chosen == "update" and crossing and not shares_blank_nodes(endpoint):
        genid = snapshot.base_iri + ".well-known/genid/"
    for batch in batches:
        if batch.key in done:
            report.skipped += 1
        else:
            report.skolemized += send(endpoint, chosen, batch, genid)
            done.add(batch.key)
            report.sent.append(batch.key)
            _save_progress(record, snapshot, batch_size, done)
        bar.advance(len(batch.quads), batch.quads[0][0].rsplit("/", 1)[-1])
    report.seconds = time.monotonic() - started
    return report
