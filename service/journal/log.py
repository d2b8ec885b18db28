"""The journal of a store folder: manifest, checkpoint and journal; read by any process, written under a lock.

Layout of a store folder (`--store-dir`; docs/writes.md has the whole design and its measurements):

    MANIFEST                 JSON: store id, base IRI, the checkpoint file, its journal position and chain digest
    checkpoint-<seq>.nq      the asserted quads at position <seq>, one canonical N-Quads line each, sorted
    journal.log              one record per acknowledged write after the checkpoint, appended, fsync'd
    write.lock / build.lock  flock files: writers across processes / reasoning builds across processes
    history/<first>-<last>-… what each restore replaced (checkpoint, journal, manifest): `restore --to SEQ` reaches it

The data version of position n is `<12 hex of sha256(reasoner, base IRI, chain_n)>-<n>`, chain_n =
sha256(chain_{n-1}, delta_n): content-addressed, so equal histories share a reasoning cache and a restore can
never reuse a version of other data. Position 0 of a store made from the shipped data keeps that data's version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from service.errors import (
    BadRequestError,
    StorageError,
)
from service.files import flock, fsync_dir, write_atomically
from service.journal.records import (
    FORMAT,
    HISTORY,
    JOURNAL,
    MANIFEST,
    WRITE_LOCK,
    Head,
    Manifest,
    Record,
    canonical_lines,
    chain_digest,
    encode_record,
    iter_records,
    now,
)
from service.sparql.rdf_input import rdf_syntax_error
from service.sparql.update_lint import is_internal_graph

log = logging.getLogger("guian_kg.writes")
audit_log = logging.getLogger("guian_kg.audit")

COMPACT_RECORDS = 1000  # a checkpoint is written once the journal holds this many records ...
COMPACT_BYTES = 16 * 2**20  # ... or this many bytes


class Journal:
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
        with flock(self.path / WRITE_LOCK, None, "the store"):
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

    def walk(self, start: Head | None) -> tuple[Head, list[Record], bool]:
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
            self._cursor = self.walk(self._cursor)[0]
            return self._cursor

    def lines_at(self, seq: int | None = None) -> tuple[set[str], Head]:
        """The asserted quads (canonical lines) at position `seq` (None: the head), and that position.

        Raises:
            StorageError: when `seq` is not between the checkpoint and the head.
        """
        for attempt in range(5):
            head, records, _ = self.walk(None)
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
        with flock(self.path / WRITE_LOCK, deadline, "the store's write lock"):
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
            f"# data_version: {version}\n# created: {now()}\n"
        )
        write_atomically(target, (header + "".join(line + "\n" for line in sorted(lines))).encode("utf-8"))
        return head

    def restore(self, source: Path, inferred_graph: str, who: dict) -> tuple[Head, int, int]:
        """Replace the asserted data by a backup's, as one new position; returns it, quads kept and left out.

        The replaced checkpoint and journal are kept under `history/` (see `restore_to`).

        Raises:
            RDFSyntaxError: the file is not N-Quads (line/column given).
            BadRequestError: it puts triples in the default graph, or names another base IRI.
        """
        data = source.read_bytes()
        declared = backup_header(data).get("base_iri")
        try:
            quads = list(ox.parse(data, format=ox.RdfFormat.N_QUADS))
        except SyntaxError as exc:
            raise rdf_syntax_error(exc) from None
        kept = [q for q in quads if not is_internal_graph(q.graph_name, inferred_graph)]
        if any(isinstance(q.graph_name, ox.DefaultGraph) for q in kept):
            raise BadRequestError("the backup has triples in the default graph; every fact needs a named graph")
        new, count = self._restore_lines(set(canonical_lines(kept)), declared, who)
        return new, count, len(quads) - len(kept)

    def restore_to(self, seq: int, who: dict) -> tuple[Head, int]:
        """Bring back the asserted data of an earlier position `seq`, as one new position; it and its quad count.

        The position is found in the current journal or in the history earlier restores kept.

        Raises:
            StorageError: when no kept journal holds position `seq`.
        """
        if seq < 0:
            raise StorageError(f"position {seq} is not in the store")
        head = self.head()
        if head.manifest.checkpoint_seq <= seq <= head.seq:
            lines, _ = self.lines_at(seq)
        else:
            lines = self._lines_in_history(seq)
        return self._restore_lines(lines, None, {**who, "to": seq})

    def history(self) -> list[tuple[int, int, Path]]:
        """The kept history: (first position, last position, folder) of each journal a restore replaced."""
        kept = []
        for folder in sorted((self.path / HISTORY).glob("*")) if (self.path / HISTORY).is_dir() else []:
            with contextlib.suppress(StorageError, OSError):
                old = Journal(folder, self.reasoner)
                head = old.head()
                kept.append((head.manifest.checkpoint_seq, head.seq, folder))
        return kept

    def _lines_in_history(self, seq: int) -> set[str]:
        for first, last, folder in reversed(self.history()):
            if first <= seq <= last:
                return Journal(folder, self.reasoner).lines_at(seq)[0]
        raise StorageError(f"position {seq} is in no kept journal (the store and its history hold {self._spans()})")

    def _spans(self) -> str:
        head = self.head()
        spans = [(first, last) for first, last, _ in self.history()] + [(head.manifest.checkpoint_seq, head.seq)]
        return ", ".join(f"{first}-{last}" for first, last in spans)

    def _restore_lines(self, lines: set[str], declared: str | None, who: dict) -> tuple[Head, int]:
        digest = hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
        with self.locked(None):
            manifest = self.manifest()
            if declared and declared != manifest.base_iri:
                raise BadRequestError(f"the backup is of base IRI {declared}, this store's is {manifest.base_iri}")
            head = self.recover()
            self._keep_history(head)
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
        return new, len(lines)

    def _keep_history(self, head: Head) -> None:
        """Keep the checkpoint, journal and manifest a restore is about to replace (hard links: no copy)."""
        folder = self.path / HISTORY / f"{head.manifest.checkpoint_seq:010d}-{head.seq:010d}-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True)
        for name in (head.manifest.checkpoint, JOURNAL, MANIFEST):
            os.link(self.path / name, folder / name)
        fsync_dir(folder)
        fsync_dir(folder.parent)
        log.info("store %s: positions %d-%d kept in %s", self.path, head.manifest.checkpoint_seq, head.seq, folder)


def backup_header(data: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw in data[:4096].split(b"\n"):
        if not raw.startswith(b"# "):
            break
        key, sep, value = raw[2:].decode("utf-8", "replace").partition(": ")
        if sep:
            found[key.strip()] = value.strip()
    return found
