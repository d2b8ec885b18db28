"""The evaluator child: computes a write's delta against the asserted data at a journal position.

A replica of the asserted data is kept in a child process (pyoxigraph's update engine), fed the journal, and asked
for the delta of each request; the parent kills it at the write's time limit. Framing over its pipes: a u32 length,
a JSON header, then the body.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pyoxigraph as ox

from service.errors import (
    GuianError,
    NotFoundError,
    QueryResourceError,
    QuerySyntaxError,
    StorageError,
    UpdateFailedError,
    UpdateSyntaxError,
    UpdateTimeoutError,
    UpdateTooLargeError,
)
from service.journal.log import Journal
from service.journal.records import Head, canonical_lines, parse_lines
from service.sparql.lexer import syntax_position, tokens
from service.sparql.rdf_input import parse_upload

log = logging.getLogger("guian_kg.writes")

_FRAME = struct.Struct("!I")
EVALUATOR_IDLE_SECONDS = 120.0  # an idle evaluator child exits; the next write starts another


class Replica:
    """The asserted data at one journal position in a pyoxigraph store, kept current by replaying records."""

    def __init__(self, store: Journal) -> None:
        self.store = store
        self.data = ox.Store()
        self.head: Head | None = None

    def catch_up(self, seq: int, chain: str) -> None:
        """Move to position `seq` (whose chain digest must be `chain`).

        Raises:
            StorageError: when the journal does not reach that position.
        """
        if self.head is not None and (self.head.seq, self.head.chain) == (seq, chain):
            return
        if self.head is not None and self.head.seq < seq:
            head, records, restarted = self.store.walk(self.head)
            if not restarted:
                for record in records:
                    for quad in parse_lines(record.delete):
                        self.data.remove(quad)
                    self.data.extend(parse_lines(record.insert))
                self.head = head
        if self.head is None or (self.head.seq, self.head.chain) != (seq, chain):
            lines, self.head = self.store.lines_at()
            self.data = ox.Store()
            self.data.extend(parse_lines(lines))
            if (self.head.seq, self.head.chain) != (seq, chain):
                raise StorageError(f"the journal does not reach position {seq}")

    def _graph(self, iri: str) -> set[ox.Quad]:
        return set(self.data.quads_for_pattern(None, None, None, ox.NamedNode(iri)))

    def evaluate(self, request: dict, body: bytes, max_changes: int) -> dict:
        """The delta (deleted and inserted lines) of one write against the current data; the data is left as it was."""
        kind = request["kind"]
        created = False
        if kind == "update":
            text, base_iri = request["text"], request.get("base_iri")
            mentioned = _data_quads(text, base_iri)
            if mentioned is not None:  # only INSERT DATA / DELETE DATA: only the quads they name can change
                present = {quad for quad in mentioned if quad in self.data}
                self._update(text, base_iri)
                now = {quad for quad in mentioned if quad in self.data}
                deleted, inserted = present - now, now - present
            else:  # any other update: compare the whole data before and after
                before = set(self.data)
                self._update(text, base_iri)
                after = set(self.data)
                deleted, inserted = before - after, after - before
            for quad in inserted:
                self.data.remove(quad)
            self.data.extend(deleted)
            self._drop_empty_graphs({quad.graph_name for quad in mentioned} if mentioned is not None else None)
        else:
            graph = request.get("graph")
            old = self._graph(graph) if graph else set()
            created = bool(graph) and not old
            if kind == "delete":
                if not old:
                    raise NotFoundError(f"the dataset has no graph <{graph}>", graph=graph)
                deleted, inserted = old, set()
            else:
                quads = parse_upload(body, request["format"], request.get("base_iri"), graphs_allowed=kind == "add")
                if kind == "add":
                    new = set(quads)
                    deleted, inserted = set(), {q for q in new if q not in self.data}
                    created = False
                else:
                    target = ox.NamedNode(graph)
                    new = {ox.Quad(q.subject, q.predicate, q.object, target) for q in quads}
                    deleted = old - new if kind == "put" else set()
                    inserted = new - old
        if len(deleted) + len(inserted) > max_changes:
            raise UpdateTooLargeError(
                f"the write changes {len(deleted) + len(inserted)} quads, more than the {max_changes} allowed at once"
            )
        return {"delete": canonical_lines(deleted), "insert": canonical_lines(inserted), "created": created}

    def _update(self, text: str, base_iri: str | None) -> None:
        try:
            self.data.update(text, base_iri=base_iri)
        except SyntaxError as exc:
            message = str(exc)
            where = syntax_position(message)
            extra = {"line": where[0], "column": where[1]} if where else {}
            raise UpdateSyntaxError(message[:1000], **extra) from None
        except RuntimeError as exc:
            raise UpdateFailedError(str(exc)[:500]) from None

    def _drop_empty_graphs(self, candidates: set | None = None) -> None:
        # CREATE GRAPH (or an insert taken back) leaves an empty graph that the journal (quads only) cannot carry:
        # forget it, so that every replica answers the next CREATE/DROP alike. `candidates`: the only graphs that
        # may have become empty (None: any).
        graphs = list(self.data.named_graphs()) if candidates is None else candidates
        for graph in graphs:
            if isinstance(graph, ox.DefaultGraph):
                continue
            if next(iter(self.data.quads_for_pattern(None, None, None, graph)), None) is None:
                self.data.remove_graph(graph)


_DATA_WORDS = frozenset(("base", "prefix", "insert", "delete", "data"))


def _data_quads(text: str, base_iri: str | None) -> set[ox.Quad] | None:
    """Every quad an update made only of INSERT DATA / DELETE DATA operations names; None for any other update
    (or one naming a blank node, which a second evaluation would name afresh).

    The operations are found by the lexer (keywords outside braces); their quads by evaluating the same text with
    each DELETE turned into INSERT (same length, so positions hold) over an empty store.
    """
    try:
        toks = tokens(text)
    except QuerySyntaxError:
        return None
    depth, words, deletes = 0, [], []
    for token in toks:
        if token.kind == "punct" and token.text in ("{", "(", "["):
            depth += 1
        elif token.kind == "punct" and token.text in ("}", ")", "]"):
            depth -= 1
        elif depth == 0 and token.kind == "word":
            word = token.text.lower()
            if word not in _DATA_WORDS:
                return None
            words.append(word)
            if word == "delete":
                deletes.append(token.pos)
    operations = [w for w in words if w not in ("base", "prefix")]
    if not operations or operations[1::2] != ["data"] * (len(operations) // 2) or len(operations) % 2:
        return None
    if any(w not in ("insert", "delete") for w in operations[::2]):
        return None
    for pos in deletes:
        text = text[:pos] + "INSERT" + text[pos + 6 :]
    scratch = ox.Store()
    try:
        scratch.update(text, base_iri=base_iri)
    except (SyntaxError, RuntimeError):
        return None  # the real evaluation gives the error
    quads = set(scratch)
    if any(_has_blank_node(quad) for quad in quads):
        return None
    return quads


def _has_blank_node(quad: ox.Quad | ox.Triple) -> bool:
    return any(
        isinstance(term, ox.BlankNode) or (isinstance(term, ox.Triple) and _has_blank_node(term))
        for term in (quad.subject, quad.predicate, quad.object)
    )


def _write_frame(fd: int, header: dict, body: bytes = b"") -> None:
    raw = json.dumps(header, ensure_ascii=False, default=str).encode("utf-8")
    data = _FRAME.pack(len(raw)) + raw + _FRAME.pack(len(body)) + body
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(size - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int, deadline: float | None) -> tuple[dict, bytes]:
    (size,) = _FRAME.unpack(_read_exact(fd, _FRAME.size, deadline))
    header = json.loads(_read_exact(fd, size, deadline))
    (size,) = _FRAME.unpack(_read_exact(fd, _FRAME.size, deadline))
    return header, _read_exact(fd, size, deadline)


def evaluator_main(store_dir: str, parent: int, memory_mb: int) -> None:
    """The evaluator child's loop: one request frame in, one reply frame out, on stdin/stdout.

    It ends on EOF (the web process closed it or died), after EVALUATOR_IDLE_SECONDS idle, and by SIGALRM's
    default action a little after a request's time limit (the web process has given up on it by then). Not
    PR_SET_PDEATHSIG: that fires when the *thread* that started the child ends, and request threads come and go.
    """
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    replica = Replica(Journal(Path(store_dir)))
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    idle_since = time.monotonic()
    while True:
        if not select.select([stdin], [], [], 5.0)[0]:
            if os.getppid() != parent or time.monotonic() - idle_since > EVALUATOR_IDLE_SECONDS:
                return  # orphaned, or idle: the next write starts a fresh child
            continue
        try:
            request, body = _read_frame(stdin, None)
        except (EOFError, OSError):
            return
        signal.alarm(int(request.get("timeout", 60)) + 5)
        try:
            replica.catch_up(request["seq"], request["chain"])
            reply = {"ok": True, **replica.evaluate(request, body, request["max_changes"])}
        except GuianError as exc:
            reply = {"ok": False, "code": exc.code, "detail": exc.detail, "extra": exc.extra}
        except MemoryError:
            replica.head = None  # the store may be half-changed: reload before the next request
            reply = {
                "ok": False,
                "code": QueryResourceError.code,
                "detail": "the write needed more memory than allowed",
            }
        except Exception:
            log.exception("the update evaluator failed")
            replica.head = None
            reply = {"ok": False, "code": GuianError.code, "detail": "the update engine failed on this write"}
        signal.alarm(0)
        _write_frame(stdout, reply)
        idle_since = time.monotonic()


class Evaluator:
    """The web process's end of its evaluator child: started on the first write, killed at a write's time limit."""

    def __init__(self, store_dir: Path, memory_mb: int) -> None:
        self.store_dir = store_dir
        self.memory_mb = memory_mb
        self._process: subprocess.Popen | None = None
        self._used = 0.0

    def _start(self) -> subprocess.Popen:
        # fork+exec of a fresh interpreter: safe from a threaded web process, unlike a bare fork.
        command = [
            sys.executable,
            "-m",
            "service.children",
            "evaluate",
            str(self.store_dir),
            str(os.getpid()),
            str(self.memory_mb),
        ]
        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)

    def run(self, request: dict, body: bytes, deadline: float) -> dict:
        """The child's reply to one request.

        Raises:
            UpdateTimeoutError: past `deadline` (the child is killed; the next write starts another).
            QueryResourceError: the child died (memory) while working on it.
        """
        if time.monotonic() - self._used > EVALUATOR_IDLE_SECONDS / 2:
            self.close()  # it may be about to leave on idle, taking the request with it
        if self._process is None or self._process.poll() is not None:
            self._process = self._start()
        self._used = time.monotonic()
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        try:
            _write_frame(process.stdin.fileno(), request, body)
            reply, _ = _read_frame(process.stdout.fileno(), deadline)
        except TimeoutError:
            self.close()
            raise UpdateTimeoutError("the write ran longer than the time limit; nothing was changed") from None
        except (EOFError, OSError):
            self.close()
            raise QueryResourceError(
                "the update engine stopped while working on this write; nothing was changed"
            ) from None
        return reply

    def close(self) -> None:
        """Stop the child (if any)."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()  # not yet waited for: the pid is still ours
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
