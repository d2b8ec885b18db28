"""A snapshot as pyoxigraph stores: in memory, or on disk (RocksDB) built once per data version in a child."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path as FilePath
from typing import TYPE_CHECKING

import pyoxigraph as ox

from service.errors import (
    ConfigError,
)
from service.files import fsync_dir, hold_exclusive

if TYPE_CHECKING:
    pass

# ---------------------------------------------------------------------------------------------------------
# Shared by the embedded and rdflib engines.

log = logging.getLogger("guian_kg.engine")


# --- the embedded engine's stores ------------------------------------------------------------------------
#
# Both hold every quad of the snapshot in its named graph, plus the set union of the asserted graphs as the store's
# own default graph: pyoxigraph's union default graph is a bag, so a triple asserted in two claim graphs would count
# twice (COUNT, SUM, duplicate rows); rdflib's union is a set. A query's default graph is then that union, and with
# inferences the inferred graph beside it (the two are disjoint: see _keep_disjoint). The store's named graphs are
# exactly the snapshot's graphs, so a query over all of them passes no list.


def _keep_disjoint(store: ox.Store, inferred: ox.NamedNode) -> None:
    """Take out of the inferred graph any triple that is also asserted (reasoning keeps none; this makes sure)."""
    if store.query(f"ASK {{ GRAPH {inferred} {{ ?s ?p ?o }} ?s ?p ?o }}"):
        log.warning("the inferred graph repeats asserted triples: leaving them out of it")
        pattern = f"GRAPH {inferred} {{ ?s ?p ?o }}"
        store.update(f"DELETE {{ {pattern} }} WHERE {{ {pattern} ?s ?p ?o }}")


def memory_store(nquads: FilePath, inferred_graph: str) -> ox.Store:
    """The snapshot's N-Quads in an in-memory store, with the asserted union as its default graph."""
    inferred = ox.NamedNode(inferred_graph)
    store = ox.Store()
    store.bulk_load(path=nquads, format=ox.RdfFormat.N_QUADS)
    store.update(f"INSERT {{ ?s ?p ?o }} WHERE {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(?g != {inferred}) }}")
    _keep_disjoint(store, inferred)
    return store


def build_disk_store(nquads: FilePath, inferred_graph: str, target: FilePath) -> None:
    """Write the snapshot's N-Quads as an on-disk (RocksDB) store at `target`, laid out as `memory_store`'s.

    One bulk load of one file: the quads, then each asserted one again without its graph (the default graph).
    Blank node labels are scoped to a file, so both copies of a quad keep the same blank nodes.
    """
    inferred = ox.NamedNode(inferred_graph)
    combined = target.with_name(target.name + ".load.nq")
    ending = f" {inferred} .\n"
    with open(nquads, "rb") as source, open(combined, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 22)
    with open(nquads, encoding="utf-8") as source, open(combined, "a", encoding="utf-8") as out:
        for line in source:
            if line.endswith(ending) or line.isspace():
                continue
            if not line.endswith("> .\n"):  # every quad of a snapshot is in a named graph, the IRI last
                raise ConfigError(f"not a quad of a named graph in {nquads}: {line[:200]!r}")
            out.write(line[: line.rindex(" <")] + " .\n")
    try:
        store = ox.Store(str(target))
        store.bulk_load(path=combined, format=ox.RdfFormat.N_QUADS)
        _keep_disjoint(store, inferred)
        store.flush()
    finally:
        combined.unlink(missing_ok=True)


def disk_store(nquads: FilePath, inferred_graph: str, target: FilePath) -> FilePath:
    """The on-disk store of a snapshot at `target`, built once (in a child process) if it is not there yet.

    It is built beside `target` and renamed into place once the child that wrote it has exited, so `target` is
    never a partial store; a failed build leaves a temporary folder that the next build removes.

    Raises:
        ConfigError: when the build fails.
    """
    if (target / "CURRENT").is_file():
        return target
    # server workers may start at once: build only once
    with open(target.with_name(target.name + ".lock"), "a") as lock, hold_exclusive(lock, "the disk store lock"):
        if (target / "CURRENT").is_file():
            return target
        for stale in target.parent.glob(target.name + ".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        building = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        # A child builds it: RocksDB's background threads do not survive a fork, so a process that forks query
        # workers (a server, its zygotes) never opens RocksDB itself; and once the child has exited, the store is
        # closed and flushed for sure.
        done = subprocess.run(
            [sys.executable, "-m", "service.children", "build-disk-store", str(nquads), inferred_graph, str(building)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0 or not (building / "CURRENT").is_file():
            shutil.rmtree(building, ignore_errors=True)
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise ConfigError(f"building the on-disk store of {nquads.parent.name} failed: {detail[0][:500]}")
        os.rename(building, target)
        fsync_dir(target.parent)
        log.info("on-disk store of %s built at %s", nquads.parent.name, target)
    return target


def release_memory() -> None:
    """Give the heap pages freed by a dropped store back to the system (glibc keeps them otherwise)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)
