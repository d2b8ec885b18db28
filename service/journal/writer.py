"""Applying one write: under the write lock, evaluate, check, append, fsync, then acknowledge."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

import pyoxigraph as ox

from service import errors
from service.errors import (
    ReadOnlyGraphError,
    SourceReadOnlyError,
    StorageError,
    WriteBusyError,
)
from service.journal.evaluator import Evaluator
from service.journal.log import Journal
from service.journal.protection import CURATED_GRAPH_PREFIX, SourceGraphs
from service.journal.records import Head, Receipt, Record, WriteOp, chain_digest, now, parse_lines
from service.sparql.update_lint import is_internal_graph

log = logging.getLogger("guian_kg.writes")


# --- the writer (in each web process) ------------------------------------------------------------------


class Downstream(Protocol):
    """Where a journalled write goes next before it is acknowledged (the remote store: service.runtime.mirror)."""

    def before_write(self) -> None:
        """Called under the write lock before a write is evaluated at the journal's head."""

    def after_write(self, before: Head, record: Record) -> None:
        """Called under the write lock once `record` (after `before`) is durable; raising fails the write (the
        downstream has then undone it in the journal)."""


class Writer:
    """Applies writes to the durable store: serialised across threads and processes, acknowledged once durable."""

    def __init__(
        self,
        store: Journal,
        inferred_graph: str,
        timeout: float,
        memory_mb: int,
        max_changes: int,
        source: SourceGraphs | None = None,
        downstream: Downstream | None = None,
    ) -> None:
        self.store = store
        self.downstream = downstream
        self.source = source or SourceGraphs(())  # the shipped data's graphs: read-only (empty: all writable)
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
            SourceReadOnlyError: it touches a graph of the shipped source data (unless source writes are allowed).
            UpdateTooLargeError: more quads change than `max_changes`.
            UpdateTimeoutError, WriteBusyError: the time limit passed first (nothing applied).
            StorageError: the journal could not be written (nothing applied).
            RemoteServiceError: the downstream (remote) store did not take it (undone: nothing applied).
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
        if self.downstream is not None:
            self.downstream.before_write()  # may journal what the downstream holds and we do not, first
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
            time=now(),
            who=who,
            what=op.summary(),
            delete=delete,
            insert=insert,
        )
        new = self.store.append(head, record)
        if self.downstream is not None:
            self.downstream.after_write(head, record)
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
        for quad in parse_lines(lines):
            graph = quad.graph_name
            if isinstance(graph, ox.DefaultGraph):
                raise ReadOnlyGraphError(
                    "the default graph is the read-only union of the named graphs: write into a named graph "
                    "(GRAPH <…> { … }); every fact needs a claim graph"
                )
            if is_internal_graph(graph, self.inferred_graph):
                raise ReadOnlyGraphError(
                    f"<{graph.value}> is computed by reasoning and cannot be written; write the asserted facts",
                    graph=graph.value,
                )
            if graph.value in self.source:
                raise SourceReadOnlyError(
                    f"<{graph.value}> holds the shipped source data, which is read-only here; write your claims into "
                    f"a graph of your own, e.g. <{CURATED_GRAPH_PREFIX}…> (the operator can allow source writes with "
                    "--source-writes)",
                    graph=graph.value,
                )

    def close(self) -> None:
        """Stop the evaluator child."""
        self.evaluator.close()


def run_build(env: dict[str, str], timeout: float = 600.0) -> dict:
    """Materialise the store's newest version in a child process (`python -m service.children build`); its summary.

    Raises:
        StorageError: when the child fails.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-m", "service.children", "build", str(os.getpid())],
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
