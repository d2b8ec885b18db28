"""The journal's records: what a write asks for, what it changed, and its on-disk framing.

A journal record is `b"GKJ1" | u32 length | u32 crc32(payload) | payload`; the payload is JSON with the
record's position `seq`, its `chain` digest, who/what/when, and the delta: the N-Quads lines it deleted and
inserted. A reader stops at the first record that is short, fails its checksum or breaks the sequence: a torn
tail left by a crash is ignored, and the next writer truncates it under the lock before appending.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pyoxigraph as ox

FORMAT = "guian-kg-store/1"
MANIFEST = "MANIFEST"
JOURNAL = "journal.log"
WRITE_LOCK = "write.lock"
BUILD_LOCK = "build.lock"
HISTORY = "history"  # the checkpoints and journals that restores replaced
MAGIC = b"GKJ1"
HEADER = struct.Struct("!4sII")  # magic, payload length, crc32 of the payload
MAX_RECORD_BYTES = 256 * 2**20


# --- what a write asks for and what it did -------------------------------------------------------------


@dataclass(frozen=True)
class WriteOp:
    """One write request: a SPARQL update, or a Graph Store operation on one graph (or on the store)."""

    kind: str  # update | put | post | delete | add (quads into their own graphs)
    text: str = ""  # the update (kind=update)
    base_iri: str | None = None  # resolves relative IRIs of the update or upload
    graph: str | None = None  # the target graph of put/post/delete
    body: bytes = b""  # the uploaded RDF (put/post/add)
    rdf_format: str | None = None  # a key of service.sparql.formats.BY_KEY for the upload

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


def parse_lines(lines: Any) -> list[ox.Quad]:
    data = "\n".join(lines).encode("utf-8")
    return list(ox.parse(data, format=ox.RdfFormat.N_QUADS)) if data else []


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# --- journal records -----------------------------------------------------------------------------------


def encode_record(record: Record) -> bytes:
    """The bytes of one framed journal record."""
    payload = json.dumps(asdict(record), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_record(payload: bytes) -> Record | None:
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
        header = stream.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        magic, length, crc = HEADER.unpack(header)
        if magic != MAGIC or length > MAX_RECORD_BYTES:
            return
        payload = stream.read(length)
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        record = decode_record(payload)
        if record is None:
            return
        offset += HEADER.size + length
        yield record, offset
