"""Answers of repeated queries, kept per data version: a repeated request costs a dictionary look-up.

An answer is found two ways, sharing one memory budget:

- by the job's identity (`job_identity`): the query with its comments and layout normalised away, the result
  format, `infer`, the protocol graphs, the base IRI, the bound parameters and the row limit — so the same query
  sent by GET, by form or as a body, or reformatted, runs once per data version;
- by the exact bytes of an HTTP request (`RequestKey`), so that a client repeating itself is answered before the
  web framework runs at all (`service.web.fast_path.FastAnswers`).

Every key carries the data version the answer was computed on; a new version (a write, a swap) empties the cache,
and a lookup only ever returns an answer of the version being served. Queries whose answer may differ between two
runs on the same data are never cached: SERVICE (another endpoint's data), RAND, NOW, UUID, STRUUID and BNODE().
Errors are never cached.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from service.engines.base import QueryJob
from service.sparql.lexer import tokens

# Functions whose value changes from one evaluation to the next, and SERVICE, whose data is not ours.
VOLATILE_WORDS = frozenset({"rand", "now", "uuid", "struuid", "bnode", "service"})
_ENTRY_OVERHEAD = 512  # bytes of bookkeeping per entry, counted against the budget


@dataclass(frozen=True)
class Answer:
    """A finished, successful answer as it goes on the wire."""

    version: str
    etag: str  # quoted, strong
    content_type: str
    body: bytes
    form: str
    rows: int
    query_sha256: str  # for the query log of a hit

    @property
    def size(self) -> int:
        return len(self.body) + _ENTRY_OVERHEAD


def job_identity(job: QueryJob) -> bytes | None:
    """What determines a job's answer on one data version, or None when its answer may change between runs.

    The query is normalised to its significant tokens (comments and whitespace between tokens carry no meaning),
    so equal identities mean equal answers.
    """
    try:
        significant = tokens(job.query)
    except Exception:  # a lexer error is the engine's to report, with its position
        return None
    if any(t.kind == "word" and t.text.lower() in VOLATILE_WORDS for t in significant):
        return None
    parts = (
        " ".join(t.text for t in significant),
        job.result_format,
        "infer" if job.infer else "asserted",
        "\x1f".join(job.default_graph_uris),
        "\x1f".join(job.named_graph_uris),
        job.base_iri or "",
        "\x1f".join(f"{name}={term}" for name, term in job.bindings),
        str(job.max_rows),
    )
    return "\x1e".join(parts).encode("utf-8", "surrogatepass")


def etag_of(version: str, identity: bytes) -> str:
    """The strong ETag of an answer: its data version and a digest of its identity."""
    return f'"{version}-{hashlib.sha256(identity).hexdigest()[:24]}"'


class ResultCache:
    """A thread-safe LRU of answers, bounded by the bytes of their bodies, for one data version at a time."""

    def __init__(self, max_bytes: int, version: str | None) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Answer] = OrderedDict()
        self._bytes = 0
        self._version = version  # the data version being served: the only one kept
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable, version: str) -> Answer | None:
        """The answer stored under `key` for data version `version`, if any (and mark it recently used)."""
        with self._lock:
            answer = self._entries.get(key)
            if answer is None or answer.version != version:
                return None
            self._entries.move_to_end(key)
            return answer

    def put(self, key: Hashable, answer: Answer) -> None:
        """Keep `answer` under `key`, unless it is of another data version than the one being served.

        An answer larger than an eighth of the budget is not kept (it would push out many small ones).
        """
        if answer.size > self.max_bytes // 8:
            return
        with self._lock:
            if answer.version != self._version:
                return  # computed on a version swapped out meanwhile
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = answer
            self._bytes += answer.size
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size

    def clear(self, version: str | None) -> None:
        """Forget every answer; from now on only answers of `version` (the one being served) are kept."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._version = version
