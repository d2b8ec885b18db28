"""Builds the dataset every part shares: ontology + data + provenance graphs, and the cached inferred graph.

Without a store folder the data is the shipped files'; with one (`--store-dir`) it is the store's, at its newest
journal position (service.journal), materialised once per data version in the same cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import pyoxigraph as ox
from rdflib import Dataset, Graph, URIRef

from service import names
from service.config import Settings
from service.data.builder import IncrementalBuilder
from service.data.oxstores import disk_store
from service.data.reasoning import materialise, reasoner_version
from service.data.sources import asserted_dataset, data_version, reason
from service.errors import ConfigError, NotReadyError
from service.files import hold_exclusive, write_atomically
from service.journal.log import Journal
from service.journal.records import BUILD_LOCK, canonical_lines

log = logging.getLogger("guian_kg.store")

STORE_GRAPHS = "graphs.exact"  # graph IRIs of a version built from a store, as written (never rebased)
LAST_BUILT = "last-built.json"  # in the store folder: the newest version built, for a fast restart
# A process switches to a new version seconds after it is built; one still serving a version this old is idle
# and switches on its next request. Older versions built from stores are removed from the cache, unless a process
# still serves them (it holds IN_USE shared: see `hold`).
PRUNE_SECONDS = 3600.0
IN_USE = "in-use.lock"
DISK_STORE = "oxigraph"  # in a version folder: its on-disk store (service.engine.disk_store)
NQUADS_WAIT_SECONDS = 30.0  # how long a reader waits for a version file written after serving
QUAD_COUNT = "quads.txt"  # in a version folder: how many quads its dataset.nq holds


@dataclass(frozen=True)
class Snapshot:
    """One data version, materialised: the whole dataset (asserted + inferred) as an N-Quads file.

    `disk_store`: the same data as a read-only on-disk store, for the embedded engine, when the dataset is larger
    than `settings.memory_max_quads` (None: the engine loads the N-Quads into memory).
    """

    version: str
    nquads: Path
    graphs: tuple[str, ...]
    inferred_graph: str
    base_iri: str
    disk_store: Path | None = None

    @functools.cached_property
    def asserted_graphs(self) -> tuple[str, ...]:
        """The graphs but the inferred one (computed once: a large dataset has tens of thousands)."""
        return tuple(g for g in self.graphs if g != self.inferred_graph)


def _write_nquads(dataset: Dataset, inferred: list[tuple], target: Path, base_iri: str) -> None:
    """Write asserted + inferred quads to `target` atomically, rebased onto the deployment's base IRI."""
    full = Dataset()
    for quad in dataset.quads((None, None, None, None)):
        full.add(quad)
    inferred_graph = full.graph(URIRef(names.INFERRED_GRAPH))
    for triple in inferred:
        inferred_graph.add(triple)
    text = full.serialize(format="nquads")
    if base_iri != names.DEFAULT_BASE:
        text = text.replace("<" + names.DEFAULT_BASE, "<" + base_iri)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent, delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, target)


def base_snapshot(settings: Settings) -> Snapshot:
    """The source data's version (graph_data/ + ontology, or `settings.data`), reasoning once per version and
    caching the result."""
    base = settings.base_iri
    version = data_version(base, settings.reasoner, settings.data)
    folder = settings.reasoning_cache / version
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "dataset.nq"
    with open(folder / ".lock", "w") as lock, hold_exclusive(lock, "the reasoning cache lock"):
        # several server workers may start at once: reason only once
        dataset = None
        if not target.exists():
            dataset = asserted_dataset(settings.data)
            closure = reason(dataset, settings.reasoner)
            _write_nquads(dataset, closure.triples, target, base)
            log.info("data version %s cached at %s", version, target)
        graph_names = folder / "graphs.txt"
        if not graph_names.exists():
            dataset = dataset or asserted_dataset(settings.data)
            listed = sorted({str(c.identifier) for c in dataset.graphs() if isinstance(c.identifier, URIRef)})
            listed = [g for g in listed if g != str(dataset.default_graph.identifier)]
            write_atomically(graph_names, ("\n".join([*listed, names.INFERRED_GRAPH]) + "\n").encode())
    return _snapshot_in(settings, folder, version)


def _snapshot_in(settings: Settings, folder: Path, version: str) -> Snapshot:
    """The snapshot cached in `folder` (built from a store: graph IRIs as written; else canonical, rebased).

    For the embedded engine, a dataset over `settings.memory_max_quads` quads is served from an on-disk store,
    built here the first time (see service.engine.disk_store).
    """
    base = settings.base_iri
    exact = folder / STORE_GRAPHS
    if exact.exists():
        graphs = tuple(exact.read_text(encoding="utf-8").split())
    else:
        graphs = tuple(names.rebase(g, base) for g in (folder / "graphs.txt").read_text(encoding="utf-8").split())
    snapshot = Snapshot(version, folder / "dataset.nq", graphs, names.rebase(names.INFERRED_GRAPH, base), base)
    if settings.engine == "embedded" and _quad_count(folder) > settings.memory_max_quads:
        target = disk_store(snapshot.nquads, snapshot.inferred_graph, folder / DISK_STORE)
        snapshot = replace(snapshot, disk_store=target)
    return snapshot


def _quad_count(folder: Path) -> int:
    """How many quads the folder's dataset.nq holds (counted once, then read from QUAD_COUNT)."""
    try:
        return int((folder / QUAD_COUNT).read_text(encoding="ascii"))
    except (OSError, ValueError):
        pass
    count, last = 0, b"\n"
    with open(folder / "dataset.nq", "rb") as nquads:
        while chunk := nquads.read(1 << 22):  # lines, less the empty ones
            count += chunk.count(b"\n") - chunk.count(b"\n\n") - (last == b"\n" and chunk[:1] == b"\n")
            last = chunk[-1:]
    with contextlib.suppress(OSError):  # a read-only cache: count again next time
        write_atomically(folder / QUAD_COUNT, str(count).encode("ascii"))
    return count


def hold(snapshot: Snapshot) -> IO[bytes] | None:
    """Mark the snapshot's version as served until the returned file is closed (it is shared by the processes
    forked meanwhile): `prune_cache` leaves it alone. None for a cache this process cannot write to.

    Raises:
        NotReadyError: when the version was pruned from the cache meanwhile.
    """
    gone = NotReadyError(f"data version {snapshot.version} is no longer in the cache")
    try:
        mark = open(snapshot.nquads.parent / IN_USE, "ab")  # noqa: SIM115 (held open by the caller)
    except FileNotFoundError:
        raise gone from None
    except PermissionError:
        return None  # nor can any pruner of ours
    fcntl.flock(mark, fcntl.LOCK_SH)  # waits while a pruner removes the folder
    if not (snapshot.nquads.exists() or _built_in(snapshot.nquads.parent)) or (
        snapshot.disk_store is not None and not snapshot.disk_store.is_dir()
    ):
        mark.close()
        raise gone
    return mark


def _built_in(folder: Path) -> bool:
    """Whether `folder` holds a built version (its N-Quads file may still be being written: see `nquads_of`)."""
    return (folder / STORE_GRAPHS).exists() or (folder / "graphs.txt").exists()


def _cached(folder: Path) -> bool:
    return (folder / "dataset.nq").exists() and _built_in(folder)


def load_snapshot(settings: Settings) -> Snapshot:
    """The data version to serve: the shipped data's, or with a store folder the newest one already built.

    With `settings.store_dir`, the store is made from the shipped data on first use. When the journal's newest
    position has no cached closure yet, the newest built one of the same history is served (the process follows
    up in the background: see service.writes.Follower); with none, the newest position is built here.
    """
    if settings.store_dir is None:
        return base_snapshot(settings)
    store = open_journal(settings)
    head, records, _ = store.walk(None)
    version = store.version(head.seq, head.chain, head.manifest)
    folder = settings.reasoning_cache / version
    if _cached(folder):
        return _snapshot_in(settings, folder, version)
    built = _last_built(store)
    chains = {head.manifest.checkpoint_seq: head.manifest.checkpoint_chain, **{r.seq: r.chain for r in records}}
    if built is not None and chains.get(built["seq"]) == built["chain"]:
        folder = settings.reasoning_cache / built["version"]
        if _cached(folder):
            return _snapshot_in(settings, folder, built["version"])
    return snapshot_of(settings, build_newest(settings)["version"])


def open_journal(settings: Settings) -> Journal:
    """The durable store of `settings.store_dir`, made from the shipped data (position 0) on first use.

    Raises:
        ConfigError: when the folder holds a store of another base IRI.
    """
    assert settings.store_dir is not None
    reasoner = settings.reasoner
    store = Journal(
        settings.store_dir, reasoner_version(reasoner), data_version(settings.base_iri, reasoner, settings.data)
    )
    if not store.exists:
        base = base_snapshot(settings)
        inferred = ox.NamedNode(base.inferred_graph)
        quads = [q for q in ox.parse(path=base.nquads, format=ox.RdfFormat.N_QUADS) if q.graph_name != inferred]
        store.create(settings.base_iri, canonical_lines(quads), chain=base.version, initial_version=base.version)
    manifest = store.manifest()
    if manifest.base_iri != settings.base_iri:
        raise ConfigError(
            f"the store in {settings.store_dir} holds data of base IRI {manifest.base_iri}, not {settings.base_iri}"
        )
    return store


def snapshot_of(settings: Settings, version: str) -> Snapshot:
    """The snapshot of a version already built in the reasoning cache."""
    return _snapshot_in(settings, settings.reasoning_cache / version, version)


def _last_built(store: Journal) -> dict | None:
    try:
        return json.loads((store.path / LAST_BUILT).read_bytes())
    except (OSError, ValueError):
        return None


def build_newest(settings: Settings, builder: IncrementalBuilder | None = None, defer: bool = False) -> dict:
    """Materialise the store's newest position (one build at a time per store); its version and position.

    With a `builder` (a web process's), the closure is maintained from its previous build (service.data.builder),
    and the summary's "delta" is (the version that build made, the builder's `Delta` since) when it went by deltas.
    With `defer` too, a version that has such a delta gets its graphs and count now and its N-Quads file from the
    summary's "finish" (a callable; `nquads_of` waits for the file), so that a process can serve the version by
    its delta before the whole file is written.

    Raises:
        rules.Unsupported: from the builder, when the closure needs owlrl (build without it then).
    """
    store = open_journal(settings)
    assert settings.store_dir is not None
    with open(settings.store_dir / BUILD_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one owlrl run at a time: the next waiter then builds the newest
        head = store.head()
        version = store.version(head.seq, head.chain, head.manifest)
        folder = settings.reasoning_cache / version
        folder.mkdir(parents=True, exist_ok=True)
        cached = _cached(folder)
        inferred = names.rebase(names.INFERRED_GRAPH, settings.base_iri)
        if builder is not None:  # also when cached: the builder follows every version its process serves
            graphs = builder.materialise(store, head)
            count, text = builder.chunks()
        elif not cached:
            lines, _ = store.lines_at(head.seq)
            full, graphs = _materialise_lines(lines, inferred, settings.reasoner)
            count, text = sum(1 for line in full.split("\n") if line), iter([full.encode()])
        summary = {"version": version, "seq": head.seq, "chain": head.chain}
        last_built = json.dumps(summary).encode()

        def finish() -> None:
            write_atomically(folder / "dataset.nq", text)
            write_atomically(store.path / LAST_BUILT, last_built)  # a restart serves it: only once it is whole

        # only a version an engine can be moved to: an in-memory one (one served from an on-disk store reads the
        # file now), or the remote store (which holds the data itself)
        in_memory = not cached and (
            settings.engine == "remote" or (settings.engine == "embedded" and count <= settings.memory_max_quads)
        )
        later = defer and builder is not None and builder.delta is not None and in_memory
        if not cached:
            write_atomically(folder / STORE_GRAPHS, ("\n".join([*graphs, inferred]) + "\n").encode())
            write_atomically(folder / QUAD_COUNT, str(count).encode())  # known: not counted from the file again
            if not later:
                write_atomically(folder / "dataset.nq", text)
            log.info("data version %s (journal position %d) cached at %s", version, head.seq, folder)
        if not later:
            _snapshot_in(settings, folder, version)  # its on-disk store too, if it needs one: built here
            write_atomically(store.path / LAST_BUILT, last_built)
        prune_cache(settings.reasoning_cache, keep=folder)
    if builder is not None and builder.delta is not None:  # in this process only: what changed since which version
        delta = builder.delta
        summary["delta"] = (store.version(delta.since, delta.chain, head.manifest), delta)
    if later:
        summary["finish"] = finish
    return summary


def nquads_of(snapshot: Snapshot, timeout: float = NQUADS_WAIT_SECONDS) -> Path:
    """The snapshot's N-Quads file, waiting while its builder writes it (see build_newest's `defer`).

    Raises:
        NotReadyError: when it is not there within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while not snapshot.nquads.exists():
        if time.monotonic() > deadline:
            raise NotReadyError(f"the data of version {snapshot.version} is still being written")
        time.sleep(0.02)
    return snapshot.nquads


def prune_cache(cache: Path, keep: Path) -> None:
    """Remove versions built from stores that are old (not touched for PRUNE_SECONDS) and served by no process."""
    cutoff = time.time() - PRUNE_SECONDS
    for leftover in cache.glob(".pruned-*"):  # a pruner that died halfway
        shutil.rmtree(leftover, ignore_errors=True)
    for graphs in cache.glob(f"*/{STORE_GRAPHS}"):
        folder = graphs.parent
        try:
            if folder == keep or (folder / "dataset.nq").stat().st_mtime >= cutoff:
                continue
            with open(folder / IN_USE, "ab") as mark:
                fcntl.flock(mark, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: a process serves it
                # Out of sight at once (a rename is atomic), then removed; `hold` waits for the lock, then sees
                # that the folder is gone.
                doomed = folder.with_name(f".pruned-{folder.name}-{os.getpid()}")
                os.rename(folder, doomed)
                shutil.rmtree(doomed)
        except OSError:
            continue  # served, or another process pruned it first


def _materialise_lines(lines: set[str], inferred_graph: str, reasoner: str) -> tuple[str, list[str]]:
    """The N-Quads of asserted `lines` plus their OWL 2 RL closure in `inferred_graph`, and the asserted graphs."""
    triples, graphs = [], set()
    for line in lines:
        cut = line.rindex(" <")  # the graph IRI ends every line (no default-graph quads in a store)
        triples.append(line[:cut] + " .")
        graphs.add(line[cut + 2 : line.rindex(">")])
    union = Graph()
    union.parse(data="\n".join(triples), format="nt")
    closure = materialise(union, reasoner)
    inferred = closure.inferred.serialize(format="nt", encoding="utf-8").decode("utf-8")
    tail = "".join(
        line[: -len(" .")] + f" <{inferred_graph}> .\n" for line in inferred.split("\n") if line.endswith(" .")
    )
    return "".join(line + "\n" for line in sorted(lines)) + tail, sorted(graphs)
