"""Durable, atomic writes shared by every web process: a write-ahead journal of deltas in the store folder.

Layout of a store folder (`--store-dir`; docs/writes.md has the whole design and its measurements):

    MANIFEST                 JSON: store id, base IRI, the checkpoint file, its journal position and chain digest
    checkpoint-<seq>.nq      the asserted quads at position <seq>, one canonical N-Quads line each, sorted
    journal.log              one record per acknowledged write after the checkpoint, appended, fsync'd
    write.lock / build.lock  flock files: writers across processes / reasoning builds across processes

A journal record is `b"GKJ1" | u32 length | u32 crc32(payload) | payload`; the payload is JSON with the
record's position `seq`, its `chain` digest, who/what/when, and the delta: the N-Quads lines it deleted and
inserted. A reader stops at the first record that is short, fails its checksum or breaks the sequence: a torn
tail left by a crash is ignored, and the next writer truncates it under the lock before appending.

Writing (`Writer.apply`), under the exclusive write lock: catch up with the journal, let an evaluator child
process compute the delta of the request against the asserted data at that position (pyoxigraph's update
engine; killed at the time limit), refuse deltas touching the inferred graph, the default graph or the
engines' internal graphs, append the record, fdatasync, and only then acknowledge. A write either has its
whole record in the journal or none of it. The delta is journalled, not the update text, so replaying is
deterministic (NOW(), UUID(), blank nodes) and both engines read the same data.

The data version of position n is `<12 hex of sha256(reasoner, base IRI, chain_n)>-<n>`, chain_n =
sha256(chain_{n-1}, delta_n): content-addressed, so equal histories share a reasoning cache and a restore can
never reuse a version of other data. Position 0 of a store made from the shipped data keeps that data's version.

Reading: every web process stats the journal per request (`Follower.poll`); when it moved, a background thread
has the newest version materialised (a child process runs owlrl, one build at a time per store) and installs it
as a new snapshot + query executor in one swap. Requests see one version each; new versions appear some seconds
after the write is acknowledged.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import logging
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.parsers.expat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from service import errors, formats
from service.errors import (
    BadRequestError,
    ConfigError,
    GuianError,
    InvalidParameterError,
    LoadForbiddenError,
    NotFoundError,
    QueryResourceError,
    QuerySyntaxError,
    RDFSyntaxError,
    ReadOnlyGraphError,
    ServiceForbiddenError,
    StorageError,
    UnsupportedMediaTypeError,
    UpdateFailedError,
    UpdateSyntaxError,
    UpdateTimeoutError,
    UpdateTooLargeError,
    WriteBusyError,
)
from service.query_text import Token, check_nesting, position, service_targets, tokens

log = logging.getLogger("guian_kg.writes")
audit_log = logging.getLogger("guian_kg.audit")

FORMAT = "guian-kg-store/1"
MANIFEST = "MANIFEST"
JOURNAL = "journal.log"
WRITE_LOCK = "write.lock"
BUILD_LOCK = "build.lock"
MAGIC = b"GKJ1"
_HEADER = struct.Struct("!4sII")  # magic, payload length, crc32 of the payload
_FRAME = struct.Struct("!I")
MAX_RECORD_BYTES = 256 * 2**20
COMPACT_RECORDS = 1000  # a checkpoint is written once the journal holds this many records ...
COMPACT_BYTES = 16 * 2**20  # ... or this many bytes
INTERNAL_GRAPH_PREFIX = "urn:x-guian-kg:"  # reserved for the engines' own graphs, never written by clients
EVALUATOR_IDLE_SECONDS = 120.0  # an idle evaluator child exits; the next write starts another
_PR_SET_PDEATHSIG = 1
_OX_ERROR_AT = "error at "
# A JSON-LD document nested this deep takes pyoxigraph seconds (quadratic); deeper ones never end in practice.
MAX_JSONLD_NESTING = 500


# --- what a write asks for and what it did -------------------------------------------------------------


@dataclass(frozen=True)
class WriteOp:
    """One write request: a SPARQL update, or a Graph Store operation on one graph (or on the store)."""

    kind: str  # update | put | post | delete | add (quads into their own graphs)
    text: str = ""  # the update (kind=update)
    base_iri: str | None = None  # resolves relative IRIs of the update or upload
    graph: str | None = None  # the target graph of put/post/delete
    body: bytes = b""  # the uploaded RDF (put/post/add)
    rdf_format: str | None = None  # a key of service.formats.BY_KEY for the upload

    def summary(self) -> dict[str, Any]:
        """What the audit log and the journal record say about the request (never the whole upload)."""
        what: dict[str, Any] = {"op": self.kind}
        if self.graph:
            what["graph"] = self.graph
        if self.kind == "update":
            what["update_sha256"] = hashlib.sha256(self.text.encode()).hexdigest()[:16]
            what["update_start"] = " ".join(self.text.split())[:200]
        if self.body:
            what["body_bytes"] = len(self.body)
            what["format"] = self.rdf_format
        return what


@dataclass(frozen=True)
class Receipt:
    """An acknowledged write: the journal position and data version that hold it, and its size."""

    seq: int
    data_version: str
    deleted: int
    inserted: int
    created: bool = False  # the target graph did not exist before

    @property
    def changed(self) -> bool:
        return bool(self.deleted or self.inserted)


@dataclass(frozen=True)
class Manifest:
    """The store's fixed facts and its current checkpoint."""

    store_id: str
    base_iri: str
    checkpoint: str
    checkpoint_seq: int
    checkpoint_chain: str
    checkpoint_sha256: str
    initial_version: str | None  # data version of position 0 when the store was made from the shipped data
    format: str = FORMAT


@dataclass(frozen=True)
class Record:
    """One journal record: an acknowledged write."""

    seq: int
    chain: str
    time: str
    who: dict
    what: dict
    delete: tuple[str, ...]
    insert: tuple[str, ...]


@dataclass(frozen=True)
class Head:
    """Where the journal ends: the last valid record's position and chain, and the byte offset after it."""

    seq: int
    chain: str
    offset: int
    journal_ino: int
    manifest: Manifest


def chain_digest(previous: str, delete: tuple[str, ...] | list[str], insert: tuple[str, ...] | list[str]) -> str:
    """The chain digest after a delta: it identifies the content, given the content before."""
    digest = hashlib.sha256(previous.encode() + b"\n")
    digest.update(json.dumps([sorted(delete), sorted(insert)], ensure_ascii=False).encode())
    return digest.hexdigest()


def canonical_lines(quads: Any) -> list[str]:
    """Quads as pyoxigraph's N-Quads lines: the one spelling of each quad that journal and checkpoints use."""
    text = ox.serialize(list(quads), format=ox.RdfFormat.N_QUADS).decode("utf-8")
    return [line for line in text.split("\n") if line]


def _parse_lines(lines: Any) -> list[ox.Quad]:
    data = "\n".join(lines).encode("utf-8")
    return list(ox.parse(data, format=ox.RdfFormat.N_QUADS)) if data else []


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# --- journal records -----------------------------------------------------------------------------------


def encode_record(record: Record) -> bytes:
    """The bytes of one framed journal record."""
    payload = json.dumps(asdict(record), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _decode(payload: bytes) -> Record | None:
    try:
        raw = json.loads(payload)
        return Record(
            seq=int(raw["seq"]),
            chain=str(raw["chain"]),
            time=str(raw["time"]),
            who=dict(raw["who"]),
            what=dict(raw["what"]),
            delete=tuple(raw["delete"]),
            insert=tuple(raw["insert"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def iter_records(stream: Any, offset: int = 0) -> Iterator[tuple[Record, int]]:
    """Each valid record from `offset` on, with the offset after it; stops at a torn or corrupt one."""
    stream.seek(offset)
    while True:
        header = stream.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        magic, length, crc = _HEADER.unpack(header)
        if magic != MAGIC or length > MAX_RECORD_BYTES:
            return
        payload = stream.read(length)
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        record = _decode(payload)
        if record is None:
            return
        offset += _HEADER.size + length
        yield record, offset


# --- files ---------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(target: Path, data: bytes) -> None:
    """Write `target` whole or not at all: a temporary file, fsync'd, renamed over it, the folder fsync'd."""
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, target)
    _fsync_dir(target.parent)


@contextlib.contextmanager
def _flock(path: Path, deadline: float | None, what: str) -> Iterator[None]:
    """Hold an exclusive flock on `path`; wait until `deadline` (monotonic), forever when None.

    Raises:
        WriteBusyError: when the lock is not free by the deadline.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if deadline is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            pause = 0.002
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise WriteBusyError(f"{what} stayed busy past the time limit; retry") from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.005)  # one poller per process: threads queue on its lock
        yield
    finally:
        os.close(fd)  # releases the lock


class DurableStore:
    """A store folder: manifest, checkpoint and journal, read by any number of processes, written under a lock."""

    def __init__(self, path: Path, reasoner: str = "", base_version: str | None = None) -> None:
        self.path = Path(path)
        self.reasoner = reasoner  # part of every data version: a new reasoner means new closures
        self.base_version = base_version  # the shipped data's version now (position 0 keeps it while equal)
        self.journal_path = self.path / JOURNAL
        self.manifest_path = self.path / MANIFEST
        self._cursor: Head | None = None
        self._cursor_lock = threading.Lock()

    # -- creation and the manifest -------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        """Whether the folder holds a store (a manifest)."""
        return self.manifest_path.exists()

    def create(self, base_iri: str, lines: list[str], chain: str, initial_version: str | None) -> bool:
        """Make the store from `lines` at position 0, unless another process already made it; True if made here."""
        self.path.mkdir(parents=True, exist_ok=True)
        with _flock(self.path / WRITE_LOCK, None, "the store"):
            if self.exists:
                return False
            manifest = self._write_checkpoint(
                0, chain, lines, store_id=uuid.uuid4().hex, base_iri=base_iri, initial_version=initial_version
            )
            write_atomically(self.journal_path, b"")
            log.info(
                "store %s created at position 0 with %d quads (store id %s)", self.path, len(lines), manifest.store_id
            )
            return True

    def manifest(self) -> Manifest:
        """The current manifest.

        Raises:
            StorageError: when it is missing or unreadable.
        """
        try:
            raw = json.loads(self.manifest_path.read_bytes())
            manifest = Manifest(**raw)
        except (OSError, ValueError, TypeError) as exc:
            raise StorageError(f"the store manifest {self.manifest_path} cannot be read: {exc}") from None
        if manifest.format != FORMAT:
            raise StorageError(f"{self.manifest_path} is a {manifest.format!r} store, not {FORMAT!r}")
        return manifest

    def checkpoint_lines(self, manifest: Manifest) -> list[str]:
        """The lines of the manifest's checkpoint, verified against its digest.

        Raises:
            StorageError: when the checkpoint is missing or damaged.
        """
        try:
            data = (self.path / manifest.checkpoint).read_bytes()
        except OSError as exc:
            raise StorageError(f"checkpoint {manifest.checkpoint} cannot be read: {exc}") from None
        if hashlib.sha256(data).hexdigest() != manifest.checkpoint_sha256:
            raise StorageError(f"checkpoint {manifest.checkpoint} does not match its digest in the manifest")
        return [line for line in data.decode("utf-8").split("\n") if line]

    def _write_checkpoint(self, seq: int, chain: str, lines: Any, **fixed: Any) -> Manifest:
        """Write a checkpoint at `seq` and point the manifest at it (the journal is the caller's business)."""
        data = "".join(line + "\n" for line in sorted(lines)).encode("utf-8")
        name = f"checkpoint-{seq:010d}.nq"
        write_atomically(self.path / name, data)
        if not fixed:
            old = self.manifest()
            fixed = {"store_id": old.store_id, "base_iri": old.base_iri, "initial_version": old.initial_version}
        manifest = Manifest(
            checkpoint=name,
            checkpoint_seq=seq,
            checkpoint_chain=chain,
            checkpoint_sha256=hashlib.sha256(data).hexdigest(),
            **fixed,
        )
        write_atomically(self.manifest_path, json.dumps(asdict(manifest), indent=1).encode())
        return manifest

    # -- versions ------------------------------------------------------------------------------------------

    def version(self, seq: int, chain: str, manifest: Manifest | None = None) -> str:
        """The data version of position `seq` with chain digest `chain`."""
        manifest = manifest or self.manifest()
        if seq == 0 and manifest.initial_version and manifest.initial_version == self.base_version:
            return manifest.initial_version
        digest = hashlib.sha256(f"{self.reasoner}\n{manifest.base_iri}\n{chain}".encode()).hexdigest()
        return f"{digest[:12]}-{seq}"

    # -- reading -------------------------------------------------------------------------------------------

    def _walk(self, start: Head | None) -> tuple[Head, list[Record], bool]:
        """Follow the journal from `start` (None: from the checkpoint) to its last valid record.

        Returns the new head, the records passed, and whether the walk had to begin again at the checkpoint
        (a checkpoint or restore replaced the files since `start`).
        """
        restarted = False
        for _ in range(20):
            if start is None:
                manifest = self.manifest()
                seq, chain, offset = manifest.checkpoint_seq, manifest.checkpoint_chain, 0
            else:
                manifest, seq, chain, offset = start.manifest, start.seq, start.chain, start.offset
            try:
                stream = open(self.journal_path, "rb")  # noqa: SIM115 (closed by the `with` below)
            except FileNotFoundError:
                start, restarted = None, True
                time.sleep(0.01)
                continue
            with stream:
                ino = os.fstat(stream.fileno()).st_ino
                if self.manifest() != manifest or (start is not None and start.journal_ino != ino):
                    start, restarted = None, True
                    continue
                records: list[Record] = []
                broken = False
                for record, end in iter_records(stream, offset):
                    if record.seq <= manifest.checkpoint_seq:
                        offset = end  # written before the checkpoint that now holds it
                        continue
                    if record.seq != seq + 1 or record.chain != chain_digest(chain, record.delete, record.insert):
                        broken = True
                        break
                    records.append(record)
                    seq, chain, offset = record.seq, record.chain, end
                if broken and self.manifest() != manifest:
                    start, restarted = None, True
                    continue
                if broken:
                    log.error("journal %s: the record after position %d breaks the sequence; ignored", self.path, seq)
                return Head(seq, chain, offset, ino, manifest), records, restarted
        raise StorageError("the store kept changing while being read; retry")

    def head(self) -> Head:
        """The last acknowledged position (incremental: only new journal bytes are read)."""
        with self._cursor_lock:
            self._cursor = self._walk(self._cursor)[0]
            return self._cursor

    def lines_at(self, seq: int | None = None) -> tuple[set[str], Head]:
        """The asserted quads (canonical lines) at position `seq` (None: the head), and that position.

        Raises:
            StorageError: when `seq` is not between the checkpoint and the head.
        """
        for attempt in range(5):
            head, records, _ = self._walk(None)
            try:
                lines = set(self.checkpoint_lines(head.manifest))
            except StorageError:
                if attempt == 4:
                    raise
                continue  # a checkpoint replaced the one we were about to read
            if seq is not None and not head.manifest.checkpoint_seq <= seq <= head.seq:
                raise StorageError(f"position {seq} is not in the store (checkpoint {head.manifest.checkpoint_seq})")
            chain = head.manifest.checkpoint_chain
            for record in records:
                if seq is not None and record.seq > seq:
                    break
                lines.difference_update(record.delete)
                lines.update(record.insert)
                chain = record.chain
            if seq is not None and seq != head.seq:
                head = Head(seq, chain, -1, head.journal_ino, head.manifest)
            return lines, head
        raise StorageError("the store kept changing while being read; retry")

    # -- writing (callers hold the write lock) ---------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, deadline: float | None) -> Iterator[None]:
        """Hold the store's write lock (across processes) until the block ends.

        Raises:
            WriteBusyError: when it is not free by `deadline`.
        """
        with _flock(self.path / WRITE_LOCK, deadline, "the store's write lock"):
            yield

    def recover(self) -> Head:
        """The head, after cutting off a torn tail a crashed writer left (hold the write lock)."""
        head = self.head()
        # A writer killed inside a checkpoint leaves a temporary file, or a checkpoint no manifest names.
        for path in self.path.iterdir():
            stale_tmp = path.name.startswith((f".{MANIFEST}.", f".{JOURNAL}.", ".checkpoint-"))
            if stale_tmp or (path.name.startswith("checkpoint-") and path.name != head.manifest.checkpoint):
                with contextlib.suppress(OSError):
                    path.unlink()
        size = os.stat(self.journal_path).st_size
        if size > head.offset:
            with open(self.journal_path, "r+b") as journal:
                journal.truncate(head.offset)
                os.fsync(journal.fileno())
            log.warning(
                "journal %s: cut a torn tail of %d bytes after position %d (an unacknowledged write)",
                self.path,
                size - head.offset,
                head.seq,
            )
        return head

    def append(self, head: Head, record: Record) -> Head:
        """Append `record` after `head` and make it durable (hold the write lock).

        Raises:
            StorageError: when it could not be written and synced; the journal is cut back to `head`.
        """
        data = encode_record(record)
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fdatasync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, head.offset)
                os.fdatasync(fd)
            raise StorageError(f"the journal could not be written: {exc.strerror}") from None
        finally:
            os.close(fd)
        new = Head(record.seq, record.chain, head.offset + len(data), head.journal_ino, head.manifest)
        with self._cursor_lock:
            self._cursor = new
        return new

    def compact(self, head: Head) -> Head:
        """Write a checkpoint at `head` and start an empty journal after it (hold the write lock)."""
        lines, _ = self.lines_at(head.seq)
        self._replace(head.seq, head.chain, lines)
        log.info("store %s: checkpoint at position %d (%d quads)", self.path, head.seq, len(lines))
        return self.head()

    def _replace(self, seq: int, chain: str, lines: Any) -> None:
        old = self.manifest()
        self._write_checkpoint(seq, chain, lines)
        # The manifest now names the new checkpoint; records up to `seq` left in the old journal are skipped.
        write_atomically(self.journal_path, b"")
        if old.checkpoint != f"checkpoint-{seq:010d}.nq":
            with contextlib.suppress(OSError):
                (self.path / old.checkpoint).unlink()
        with self._cursor_lock:
            self._cursor = None

    def should_compact(self, head: Head) -> bool:
        """Whether the journal has grown enough to be worth a checkpoint."""
        return head.seq - head.manifest.checkpoint_seq >= COMPACT_RECORDS or head.offset >= COMPACT_BYTES

    # -- backup and restore ----------------------------------------------------------------------------------

    def backup(self, target: Path) -> Head:
        """Write the asserted data at the head to `target` as N-Quads with a comment header; the head backed up."""
        with self.locked(None):
            lines, head = self.lines_at()
        version = self.version(head.seq, head.chain, head.manifest)
        header = (
            f"# guian-kg backup\n# base_iri: {head.manifest.base_iri}\n# seq: {head.seq}\n"
            f"# data_version: {version}\n# created: {_now()}\n"
        )
        write_atomically(target, (header + "".join(line + "\n" for line in sorted(lines))).encode("utf-8"))
        return head

    def restore(self, source: Path, inferred_graph: str, who: dict) -> tuple[Head, int, int]:
        """Replace the asserted data by a backup's, as one new position; returns it, quads kept and left out.

        Raises:
            RDFSyntaxError: the file is not N-Quads (line/column given).
            BadRequestError: it puts triples in the default graph, or names another base IRI.
        """
        data = source.read_bytes()
        declared = _backup_header(data).get("base_iri")
        try:
            quads = list(ox.parse(data, format=ox.RdfFormat.N_QUADS))
        except SyntaxError as exc:
            raise rdf_syntax_error(exc) from None
        kept = [q for q in quads if not _internal(q.graph_name, inferred_graph)]
        if any(isinstance(q.graph_name, ox.DefaultGraph) for q in kept):
            raise BadRequestError("the backup has triples in the default graph; every fact needs a named graph")
        lines = set(canonical_lines(kept))
        digest = hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
        with self.locked(None):
            manifest = self.manifest()
            if declared and declared != manifest.base_iri:
                raise BadRequestError(f"the backup is of base IRI {declared}, this store's is {manifest.base_iri}")
            head = self.recover()
            seq, chain = head.seq + 1, chain_digest(head.chain, ["restore", digest], [])
            self._replace(seq, chain, lines)
            new = self.head()
        audit_log.info(
            json.dumps(
                {
                    "event": "restore",
                    "who": who,
                    "seq": seq,
                    "data_version": self.version(seq, chain),
                    "quads": len(lines),
                }
            )
        )
        return new, len(lines), len(quads) - len(kept)


def _backup_header(data: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw in data[:4096].split(b"\n"):
        if not raw.startswith(b"# "):
            break
        key, sep, value = raw[2:].decode("utf-8", "replace").partition(": ")
        if sep:
            found[key.strip()] = value.strip()
    return found


def _internal(graph: Any, inferred_graph: str) -> bool:
    return isinstance(graph, ox.NamedNode) and (
        graph.value == inferred_graph or graph.value.startswith(INTERNAL_GRAPH_PREFIX)
    )


# --- checking a request before it reaches pyoxigraph ---------------------------------------------------


def _syntax(exc: QuerySyntaxError) -> UpdateSyntaxError:
    return UpdateSyntaxError(exc.detail, **exc.extra)


def _first_keyword(toks: tuple[Token, ...]) -> Token | None:
    """The first token after the BASE / PREFIX declarations."""
    i = 0
    while i < len(toks) and toks[i].kind == "word" and toks[i].text.lower() in ("base", "prefix"):
        i += 2 if toks[i].text.lower() == "base" else 3
    return toks[i] if i < len(toks) else None


def check_update(text: str, using: tuple[str, ...] = (), using_named: tuple[str, ...] = ()) -> str:
    """The update to evaluate: checked for LOAD, SERVICE and nesting, with the protocol's USING graphs written in.

    Raises:
        UpdateSyntaxError: an unterminated string, a query instead of an update, brackets nested too deep.
        LoadForbiddenError: LOAD (it would fetch a URL).
        ServiceForbiddenError: SERVICE (updates never call other endpoints).
        BadRequestError: using-graph-uri / using-named-graph-uri together with USING or WITH in the text.
    """
    try:
        toks = tokens(text)
        check_nesting(text)
        services = service_targets(text)
    except QuerySyntaxError as exc:
        raise _syntax(exc) from None
    first = _first_keyword(toks)
    if first is not None and first.text.lower().startswith(("select", "ask", "construct", "describe")):
        line, column = position(text, first.pos)
        raise UpdateSyntaxError(
            f"{first.text} starts a query, not an update: send it to /sparql (line {line}, column {column})",
            line=line,
            column=column,
        )
    for token in toks:
        name = token.text.lower()
        # pyoxigraph matches keywords without a word boundary (see service.query_text): any word holding "load"
        # may be a LOAD to it.
        if (token.kind == "word" and "load" in name) or (token.kind == "pname" and "load" in name.split(":")[0]):
            line, column = position(text, token.pos)
            raise LoadForbiddenError(
                f"LOAD is not allowed: upload the data with the Graph Store Protocol (line {line}, column {column})",
                line=line,
                column=column,
            )
    if services:
        raise ServiceForbiddenError("SERVICE is not allowed in updates", endpoint=services[0])
    if not (using or using_named):
        return text
    if any(t.kind == "word" and t.text.lower() in ("using", "with") for t in toks):
        raise BadRequestError(
            "using-graph-uri / using-named-graph-uri cannot be combined with USING or WITH in the update"
        )
    clause = "".join(f" USING <{iri}>" for iri in using) + "".join(f" USING NAMED <{iri}>" for iri in using_named)
    # USING goes before the WHERE of each DELETE/INSERT ... WHERE operation (not DELETE WHERE, which has none).
    cuts: list[int] = []
    depth = 0
    for i, token in enumerate(toks):
        if token.kind == "punct" and token.text in ("{", "(", "["):
            depth += 1
        elif token.kind == "punct" and token.text in ("}", ")", "]"):
            depth -= 1
        elif (
            depth == 0
            and token.kind == "word"
            and token.text.lower() == "where"
            and not (i and toks[i - 1].kind == "word" and toks[i - 1].text.lower() == "delete")
        ):
            cuts.append(token.pos)
    for pos in reversed(cuts):
        text = text[:pos] + clause + " " + text[pos:]
    return text


def check_graph_iri(iri: str) -> None:
    """Refuse a graph name that is not an absolute IRI.

    Raises:
        InvalidParameterError: naming the parameter `graph`.
    """
    try:
        ox.NamedNode(iri)
    except ValueError:
        raise InvalidParameterError(f"graph must be an absolute IRI, got {iri[:200]!r}", parameter="graph") from None


def rdf_syntax_error(exc: SyntaxError) -> RDFSyntaxError:
    """A pyoxigraph parse error as a 400 naming the line and column where it knows them."""
    message = str(exc)
    extra = {}
    if getattr(exc, "lineno", None):
        extra = {"line": exc.lineno, "column": exc.offset or 1}
    return RDFSyntaxError(message[:1000], **extra)


def rdf_format_for(content_type: str | None) -> str:
    """The format key of an upload's Content-Type (any RDF format the service reads).

    Raises:
        UnsupportedMediaTypeError: for anything else.
    """
    fmt = formats.by_media_type(content_type or "")
    if fmt is None or fmt.kind != "graph":
        readable = ", ".join(f.media_type for f in formats.FORMATS if f.kind == "graph")
        raise UnsupportedMediaTypeError(f"upload RDF as one of {readable}, not {content_type or 'no Content-Type'}")
    charset = (content_type or "").lower().partition("charset=")[2].strip().strip('"')
    if charset and charset not in ("utf-8", "utf8", "us-ascii", "ascii"):
        raise UnsupportedMediaTypeError(f"RDF uploads must be UTF-8, not charset={charset}")
    return fmt.key


# --- the evaluator: a child process holding the asserted data in pyoxigraph --------------------------------


def _json_depth_ok(data: bytes) -> None:
    """Refuse JSON nested deeper than MAX_JSONLD_NESTING before pyoxigraph's JSON-LD parser sees it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    if deepest > MAX_JSONLD_NESTING:
        raise RDFSyntaxError(f"the JSON-LD document is nested more than {MAX_JSONLD_NESTING} levels deep")


def parse_upload(body: bytes, rdf_format: str, base_iri: str | None, graphs_allowed: bool) -> list[ox.Quad]:
    """The quads of an uploaded document, blank nodes renamed apart from the store's.

    Raises:
        RDFSyntaxError: malformed RDF (with line/column), a DTD in RDF/XML, JSON-LD nested too deep, named
            graphs in a document sent to one graph.
    """
    fmt = formats.BY_KEY[rdf_format]
    if fmt.key == "rdfxml":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RDFSyntaxError(f"RDF/XML uploads must be UTF-8 (byte {exc.start})") from None
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            # pyoxigraph expands internal entities: 1.2 KB of nested entities became a 300 MB literal in 1.9 s.
            raise RDFSyntaxError("RDF/XML with a DTD (<!DOCTYPE>, <!ENTITY>) is not accepted")
        # pyoxigraph takes a document cut short (unclosed elements at the end) without an error: check first.
        checker = xml.parsers.expat.ParserCreate()
        try:
            checker.Parse(body, True)
        except xml.parsers.expat.ExpatError as exc:
            detail = xml.parsers.expat.errors.messages[exc.code]
            raise RDFSyntaxError(
                f"malformed XML at line {exc.lineno}, column {exc.offset + 1}: {detail}",
                line=exc.lineno,
                column=exc.offset + 1,
            ) from None
    if fmt.key == "jsonld":
        _json_depth_ok(body)
    try:
        return list(
            ox.parse(
                body,
                format=getattr(ox.RdfFormat, fmt.oxigraph),
                base_iri=base_iri,
                rename_blank_nodes=True,
                without_named_graphs=not graphs_allowed,
            )
        )
    except SyntaxError as exc:
        raise rdf_syntax_error(exc) from None
    except ValueError as exc:  # e.g. a base IRI pyoxigraph refuses
        raise RDFSyntaxError(str(exc)[:500]) from None


class Replica:
    """The asserted data at one journal position in a pyoxigraph store, kept current by replaying records."""

    def __init__(self, store: DurableStore) -> None:
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
            head, records, restarted = self.store._walk(self.head)
            if not restarted:
                for record in records:
                    for quad in _parse_lines(record.delete):
                        self.data.remove(quad)
                    self.data.extend(_parse_lines(record.insert))
                self.head = head
        if self.head is None or (self.head.seq, self.head.chain) != (seq, chain):
            lines, self.head = self.store.lines_at()
            self.data = ox.Store()
            self.data.extend(_parse_lines(lines))
            if (self.head.seq, self.head.chain) != (seq, chain):
                raise StorageError(f"the journal does not reach position {seq}")

    def _graph(self, iri: str) -> set[ox.Quad]:
        return set(self.data.quads_for_pattern(None, None, None, ox.NamedNode(iri)))

    def evaluate(self, request: dict, body: bytes, max_changes: int) -> dict:
        """The delta (deleted and inserted lines) of one write against the current data; the data is left as it was."""
        kind = request["kind"]
        created = False
        if kind == "update":
            before = set(self.data)
            try:
                self.data.update(request["text"], base_iri=request.get("base_iri"))
            except SyntaxError as exc:
                message = str(exc)
                extra = {}
                if message.startswith(_OX_ERROR_AT):
                    where = message[len(_OX_ERROR_AT) :].split(":", 2)
                    with contextlib.suppress(ValueError, IndexError):
                        extra = {"line": int(where[0]), "column": int(where[1])}
                raise UpdateSyntaxError(message[:1000], **extra) from None
            except RuntimeError as exc:
                raise UpdateFailedError(str(exc)[:500]) from None
            after = set(self.data)
            deleted, inserted = before - after, after - before
            for quad in inserted:
                self.data.remove(quad)
            self.data.extend(deleted)
            self._drop_empty_graphs()
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

    def _drop_empty_graphs(self) -> None:
        # CREATE GRAPH leaves an empty graph that the journal (quads only) cannot carry: forget it, so that every
        # replica answers the next CREATE/DROP alike.
        for graph in list(self.data.named_graphs()):
            if next(iter(self.data.quads_for_pattern(None, None, None, graph)), None) is None:
                self.data.remove_graph(graph)


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


def _die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def evaluator_main(store_dir: str, parent: int, memory_mb: int) -> None:
    """The evaluator child's loop: one request frame in, one reply frame out, on stdin/stdout.

    It ends on EOF (the web process closed it or died), after EVALUATOR_IDLE_SECONDS idle, and by SIGALRM's
    default action a little after a request's time limit (the web process has given up on it by then). Not
    PR_SET_PDEATHSIG: that fires when the *thread* that started the child ends, and request threads come and go.
    """
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    replica = Replica(DurableStore(Path(store_dir)))
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
            "service.writes",
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


# --- the writer (in each web process) ------------------------------------------------------------------


class Writer:
    """Applies writes to the durable store: serialised across threads and processes, acknowledged once durable."""

    def __init__(
        self, store: DurableStore, inferred_graph: str, timeout: float, memory_mb: int, max_changes: int
    ) -> None:
        self.store = store
        self.inferred_graph = inferred_graph
        self.timeout = timeout
        self.max_changes = max_changes
        self.evaluator = Evaluator(store.path, memory_mb)
        self._lock = threading.Lock()

    def apply(self, op: WriteOp, who: dict) -> Receipt:
        """Evaluate `op` against the latest data and journal its delta; return once it is on disk.

        Raises:
            UpdateSyntaxError, RDFSyntaxError, UpdateFailedError, NotFoundError: a bad request (nothing applied).
            ReadOnlyGraphError: the delta touches the inferred graph, the default graph or an internal graph.
            UpdateTooLargeError: more quads change than `max_changes`.
            UpdateTimeoutError, WriteBusyError: the time limit passed first (nothing applied).
            StorageError: the journal could not be written (nothing applied).
        """
        deadline = time.monotonic() + self.timeout
        if not self._lock.acquire(timeout=self.timeout):
            raise WriteBusyError("other writes kept this process busy past the time limit; retry")
        try:
            with self.store.locked(deadline):
                return self._apply_locked(op, who, deadline)
        finally:
            self._lock.release()

    def _apply_locked(self, op: WriteOp, who: dict, deadline: float) -> Receipt:
        head = self.store.recover()
        request = {
            "kind": op.kind,
            "text": op.text,
            "base_iri": op.base_iri,
            "graph": op.graph,
            "format": op.rdf_format,
            "seq": head.seq,
            "chain": head.chain,
            "max_changes": self.max_changes,
            "timeout": self.timeout,
        }
        reply = self.evaluator.run(request, op.body, deadline)
        if not reply["ok"]:
            raise errors.from_code(reply["code"], reply["detail"], reply.get("extra") or {})
        delete, insert = tuple(reply["delete"]), tuple(reply["insert"])
        self._check_graphs(delete + insert)
        version = self.store.version(head.seq, head.chain, head.manifest)
        if not (delete or insert):
            return Receipt(head.seq, version, 0, 0, created=False)
        record = Record(
            seq=head.seq + 1,
            chain=chain_digest(head.chain, delete, insert),
            time=_now(),
            who=who,
            what=op.summary(),
            delete=delete,
            insert=insert,
        )
        new = self.store.append(head, record)
        if self.store.should_compact(new):
            try:
                self.store.compact(new)
            except (OSError, StorageError):
                log.exception("store %s: checkpoint failed; the journal keeps growing", self.store.path)
        return Receipt(
            record.seq,
            self.store.version(record.seq, record.chain, head.manifest),
            len(delete),
            len(insert),
            created=bool(reply.get("created")),
        )

    def _check_graphs(self, lines: tuple[str, ...]) -> None:
        for quad in _parse_lines(lines):
            graph = quad.graph_name
            if isinstance(graph, ox.DefaultGraph):
                raise ReadOnlyGraphError(
                    "the default graph is the read-only union of the named graphs: write into a named graph "
                    "(GRAPH <…> { … }); every fact needs a claim graph"
                )
            if _internal(graph, self.inferred_graph):
                raise ReadOnlyGraphError(
                    f"<{graph.value}> is computed by reasoning and cannot be written; write the asserted facts",
                    graph=graph.value,
                )

    def close(self) -> None:
        """Stop the evaluator child."""
        self.evaluator.close()


# --- following the journal (in each web process) --------------------------------------------------------


@dataclass
class Follower:
    """Keeps one process's served version up with the journal: a stat per request, one background build at a time.

    `build()` makes (or finds cached) the newest version and returns its snapshot; `install(snapshot)` serves it
    and returns False when the app is gone (the follower then stops).
    """

    store: DurableStore
    build: Callable[[], Any]
    install: Callable[[Any], bool]
    served: str | None = None
    retry_after: float = 5.0
    _seen: tuple | None = None
    _running: bool = False
    _again: bool = False
    _stopped: bool = False
    _failed_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _idle: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    def _key(self) -> tuple | None:
        try:
            journal = os.stat(self.store.journal_path)
            manifest = os.stat(self.store.manifest_path)
        except OSError:
            return None
        return (journal.st_ino, journal.st_size, journal.st_mtime_ns, manifest.st_ino, manifest.st_mtime_ns)

    def poll(self) -> None:
        """Start a background build when the journal moved since the last look (two stats, no lock when not)."""
        key = self._key()
        if key is None or key == self._seen or self._stopped:
            return
        if self._failed_at and time.monotonic() - self._failed_at < self.retry_after:
            return
        with self._lock:
            if key == self._seen:
                return
            self._seen = key
            if self._running:
                self._again = True
                return
            self._running = True
            self._idle.clear()
        threading.Thread(target=self._run, name="guian-kg-follower", daemon=True).start()

    def _run(self) -> None:
        try:
            while True:
                snapshot = self.build()
                if snapshot.version != self.served:
                    if not self.install(snapshot):
                        self._stopped = True
                        return
                    self.served = snapshot.version
                with self._lock:
                    if not self._again:
                        return
                    self._again = False
        except Exception:
            log.exception("building the newest data version failed; serving %s meanwhile", self.served)
            self._failed_at = time.monotonic()
            self._seen = None
        finally:
            with self._lock:
                self._running = False
                self._again = False
            self._idle.set()

    def catch_up(self, timeout: float = 120.0) -> str | None:
        """Build and install the newest version now (after any build in progress); the version then served."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._idle.wait(max(deadline - time.monotonic(), 0))
            head = self.store.head()
            if self.served == self.store.version(head.seq, head.chain, head.manifest) or self._stopped:
                break
            self._failed_at, self._seen = 0.0, None
            self.poll()
            time.sleep(0.01)
        return self.served


def run_build(env: dict[str, str], timeout: float = 600.0) -> dict:
    """Materialise the store's newest version in a child process (`python -m service.writes build`); its summary.

    Raises:
        StorageError: when the child fails.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-m", "service.writes", "build", str(os.getpid())],
            env=env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StorageError("materialising the new data version took too long") from None
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode("utf-8", "replace")[-4000:])
        raise StorageError(f"materialising the new data version failed (exit code {done.returncode})")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def ephemeral_store_dir() -> Path:
    """A fresh temporary store folder (writes without --store-dir live there until the service stops)."""
    return Path(tempfile.mkdtemp(prefix="guian-kg-store-"))


def _main(argv: list[str]) -> int:
    if argv[:1] == ["evaluate"]:
        evaluator_main(argv[1], int(argv[2]), int(argv[3]))
        return 0
    if argv[:1] == ["build"]:
        _die_with_parent(int(argv[1]))
        os.nice(10)  # reasoning takes seconds of CPU: let the web processes answer requests first
        from service.config import load_settings
        from service.store import build_newest

        logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s: %(message)s", stream=sys.stderr)
        print(json.dumps(build_newest(load_settings())))
        return 0
    print("usage: python -m service.writes evaluate DIR PARENT MEMORY_MB | build PARENT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(_main(sys.argv[1:]))
    except ConfigError as exc:
        print(f"guian-kg: {exc.detail}", file=sys.stderr)
        sys.exit(2)
