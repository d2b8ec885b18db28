"""The remote store as the source of truth (`--engine remote`): a local mirror that follows it, and inferences
that we keep in it.

With the remote engine the service still keeps a journal (service.journal): here it is a *mirror* of what the
remote store holds in our graphs. Everything the service derives — the inferred graph, pages and pictures,
named-query vocabularies, statistics, explanations, answers to questions — is derived from the mirror's versions,
exactly as on the embedded engine, so it follows the store:

- **A change through us** (`/update`, `/store`): the writer evaluates it against the mirror and journals its
  delta (service.journal.writer), then `after_write` — under the same write lock — builds the new version in
  this process (incremental reasoning: service.data.builder), and sends the asserted delta and the inferred
  graph's delta to the store in one SPARQL Update request. Only then is the write acknowledged. If the store
  refuses it, the mirror is made equal to the store again (the write is undone in the journal) and the client
  gets `502 service-error`.
- **A change behind our back** (the store's own update endpoint, another tool): every `poll` seconds a probe
  (triples and object length per graph, one query) is compared with the probe taken after our last change;
  when they differ the store's graphs are read, the difference is journalled as a `sync` record, the new
  version is built and the inferred graph's difference is sent to the store. Every `recheck` seconds the store
  is read and compared whole, whatever the probe says (a change that keeps every graph's counts).

All of it runs under the journal's write lock, so the processes of one deployment (and several deployments
sharing a store folder) change the store one at a time; the probe taken after each change is kept in the store
folder (`remote-probe.json`), shared by the processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NoReturn

from service.data.builder import Delta
from service.engines.remote_store import Probe, RemoteStore, has_blank_node
from service.errors import GuianError, RemoteServiceError
from service.files import write_atomically
from service.journal.log import Journal
from service.journal.records import Head, Record, chain_digest, now

log = logging.getLogger("guian_kg.remote")

WATCH_LOCK = "remote-watch.lock"  # in the store folder: held by the one process that probes the store
KNOWN = "remote-probe.json"  # in the store folder: the store's probe after our last change
KEEP_DELTAS = 8  # versions whose inferred-graph deltas this process keeps (the newest few are ever asked for)
PROBE_SHARE = 0.25  # at most this share of the time between probes is spent probing (a probe scans the store)


class RemoteMirror:
    """Keeps a store folder's journal equal to a remote store, and the store's inferred graph equal to ours.

    `build_head()` builds the journal's newest position in this process (its installation follows in the
    background) and returns its version and, when it was built by a delta, (the version before, the `Delta`);
    `inferred_lines(version)` is the inferred graph's N-Quads lines of a version built.
    """

    def __init__(
        self,
        remote: RemoteStore,
        journal: Journal,
        poll: float,
        recheck: float,
        lock_timeout: float = 60.0,
    ) -> None:
        self.remote = remote
        self.journal = journal
        self.poll = poll
        self.recheck = recheck
        self.lock_timeout = lock_timeout
        self.build_head: Callable[[], tuple[str, tuple[str, Delta] | None]] = _unset
        self.inferred_lines: Callable[[str], set[str]] = _unset
        self._stop = threading.Event()
        self._last_full = time.monotonic()
        self.probe_seconds = 0.0  # how long the watcher's last probe took

    @property
    def _known_path(self) -> Path:
        return self.journal.path / KNOWN

    def _version(self, head: Head) -> str:
        return self.journal.version(head.seq, head.chain, head.manifest)

    # -- under the write lock: changes through us -----------------------------------------------------------

    def before_write(self) -> None:
        """Before a write is evaluated (hold the write lock): take in what the store holds and the mirror does
        not yet (a write through another deployment, or behind our back, not probed yet), so that the write is
        evaluated against the store's data; then serve the head in this process, so that the build after the
        write is that one record's.

        Raises:
            RemoteServiceError: the store could not be probed or read (nothing is written).
        """
        probe = self.remote.probe()
        if probe != self._known():
            self._sync_locked(probe)
        self.build_head()

    def after_write(self, before: Head, record: Record) -> None:
        """Send a journalled write and the inferences it changed to the store; undo it in the journal when the
        store refuses (hold the write lock).

        Raises:
            RemoteServiceError: the store refused or could not be reached (the mirror equals the store again,
                or will at the next probe).
        """
        try:
            version, delta = self.build_head()
            if delta is not None and delta[0] == self._version(before):
                remove, add = _inferred(delta[1], self.remote.inferred_graph)
            else:  # built over the whole data: compare with the store's inferred graph
                remove, add = self._inferred_difference(version)
            known = self._known()
            gone, new = [*record.delete, *remove], [*record.insert, *add]
            if self._send(gone, new, version) and known is not None:
                self._remember(known.after(gone, new))  # no second scan of the store: the watcher checks it
            else:
                self._remember()
        except GuianError as exc:
            log.error("the remote store did not take write %d (%s): making the mirror equal to it", record.seq, exc)
            self._forget()
            with contextlib.suppress(GuianError, OSError):
                self._sync_locked()
            if isinstance(exc, RemoteServiceError):
                raise
            raise RemoteServiceError(f"the remote store did not take the write: {exc.detail}") from None

    def _inferred_difference(self, version: str) -> tuple[list[str], list[str]]:
        _, theirs = self.remote.read(inferred_only=True)
        ours = self.inferred_lines(version)
        return sorted(theirs - ours), sorted(ours - theirs)

    def _send(self, remove: list[str], add: list[str], version: str) -> bool:
        """One update (True); the graphs where a blank node's quad leaves or enters are replaced whole instead (a
        DELETE cannot name a blank node; an INSERT makes new ones), then read back (the store labels them anew)."""
        blank = {_graph_of(line) for line in (*remove, *add) if has_blank_node(line)}
        if not blank:
            self.remote.change(remove, add)
            return True
        lines, _ = self.journal.lines_at()
        if self.remote.inferred_graph in blank:
            lines |= self.inferred_lines(version)
        replace = {g: sorted(line for line in lines if _graph_of(line) == g) for g in sorted(blank)}
        keep = [line for line in remove if _graph_of(line) not in blank]
        self.remote.change(keep, [line for line in add if _graph_of(line) not in blank], replace)
        self._sync_locked()
        return False

    # -- changes behind our back ----------------------------------------------------------------------------

    def adopt(self) -> bool:
        """Make the journal equal to the store's graphs, at start (before any version is served: the inferred
        graph is compared by the first `sync`); True when it changed.

        Raises:
            RemoteServiceError: the store could not be read.
        """
        with self.journal.locked(time.monotonic() + self.lock_timeout):
            asserted, _ = self.remote.read()
            return self._take_in(asserted)

    def _take_in(self, asserted: set[str], graphs: Sequence[str] | None = None) -> bool:
        """Journal the difference between the store's asserted lines (of `graphs`, or all) and the mirror's."""
        head = self.journal.recover()
        lines, _ = self.journal.lines_at(head.seq)
        if graphs is not None:
            wanted = set(graphs)
            lines = {line for line in lines if _graph_of(line) in wanted}
        delete, insert = tuple(sorted(lines - asserted)), tuple(sorted(asserted - lines))
        if not (delete or insert):
            return False
        record = Record(
            seq=head.seq + 1,
            chain=chain_digest(head.chain, delete, insert),
            time=now(),
            who={"remote": self.remote.query_url},
            what={"op": "sync", "deleted": len(delete), "inserted": len(insert)},
            delete=delete,
            insert=insert,
        )
        self.journal.append(head, record)
        log.info("the remote store changed behind our back: %d quads out, %d in", len(delete), len(insert))
        return True

    def sync(self, full: bool = False) -> bool:
        """Take in what changed in the store since our last change (every graph read and compared when `full`,
        or when the probe moved); True when something had.

        Raises:
            RemoteServiceError: the store could not be read.
            WriteBusyError: the write lock stayed taken.
        """
        with self.journal.locked(time.monotonic() + self.lock_timeout):
            if full:
                return self._sync_locked()
            probe = self.remote.probe()
            return probe != self._known() and self._sync_locked(probe)

    def _sync_locked(self, probe: Probe | None = None) -> bool:
        """Make the mirror equal to the store, then the store's inferred graph equal to ours (hold the write lock).

        Given the `probe` just taken, only the graphs whose probe moved since our last change are read (and the
        inferred graph's change comes from the build's delta when its own row did not move); else all of them.
        """
        known = self._known()
        moved = _moved(known, probe) if known is not None and probe is not None else None
        if moved is not None and not moved:
            return False
        asserted, theirs = self.remote.read(graphs=moved)
        before = self.journal.recover()
        changed = self._take_in(asserted, moved)
        version, delta = self.build_head()
        inferred = self.remote.inferred_graph
        if moved is not None and inferred not in moved and not changed:
            remove, add = [], []  # nothing of ours moved, and the inferred graph is as we left it
        elif moved is not None and inferred not in moved and delta is not None and delta[0] == self._version(before):
            remove, add = _inferred(delta[1], inferred)  # the store's inferred graph was ours: move it as ours moved
        else:
            if moved is not None and inferred not in moved:
                _, theirs = self.remote.read(inferred_only=True)
            ours = self.inferred_lines(version)
            remove, add = sorted(theirs - ours), sorted(ours - theirs)
        if (remove or add) and not self.remote.update_url:
            log.warning(
                "the store's inferred graph differs from ours (%d out, %d in) and cannot be kept without "
                "--remote-update: queries with infer=true read the store's",
                len(remove),
                len(add),
            )
            remove, add, probe = [], [], None
        if remove or add:
            if any(has_blank_node(line) for line in (*remove, *add)):
                self.remote.change((), (), {inferred: sorted(self.inferred_lines(version))})
                probe = None
            else:
                self.remote.change(remove, add)
            log.info("the store's inferred graph: %d inferences out, %d in", len(remove), len(add))
        self._remember(probe.after(remove, add) if probe is not None else None)
        return changed

    def _known(self) -> Probe | None:
        try:
            return Probe.from_json(json.loads(self._known_path.read_bytes())["probe"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _remember(self, probe: Probe | None = None) -> None:
        probe = probe or self.remote.probe()
        write_atomically(self._known_path, json.dumps({"probe": probe.as_json()}).encode())

    def _forget(self) -> None:
        with contextlib.suppress(OSError):
            self._known_path.unlink()

    # -- the watcher ----------------------------------------------------------------------------------------

    def watch(self) -> threading.Thread | None:
        """Start the background probe (every `poll` seconds, or longer on a store so large that probing would
        otherwise take over a quarter of its time; a whole comparison every `recheck`); None when polling is off."""
        if self.poll <= 0:
            return None
        thread = threading.Thread(target=self._watch, name="guian-kg-remote-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        # One watcher per store folder: the processes of a deployment take turns holding this lock (a probe scans
        # the store; two processes probing would only double that).
        with open(self.journal.path / WATCH_LOCK, "a") as lock:
            while not self._stop.wait(self.interval()):
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another process watches; this one takes over if it ends
                self._watch_once()

    def interval(self) -> float:
        """Seconds until the next probe: `poll`, stretched so that probing takes at most PROBE_SHARE of the time."""
        return max(self.poll, self.probe_seconds / PROBE_SHARE)

    def _probe(self) -> Probe:
        """The store's probe, timed (a probe scans the store: its time sets the interval on a large store)."""
        started, was = time.monotonic(), self.interval()
        probe = self.remote.probe()
        self.probe_seconds = time.monotonic() - started
        now = self.interval()
        if now > self.poll and abs(now - was) > was / 2:
            log.info("a probe of the remote store takes %.2f s: probing every %.1f s", self.probe_seconds, now)
        return probe

    def _watch_once(self) -> None:
        full = self.recheck > 0 and time.monotonic() - self._last_full >= self.recheck
        try:
            if full or self._probe() != self._known():
                self.sync(full=full)
            if full:
                self._last_full = time.monotonic()
        except GuianError as exc:
            log.warning("following the remote store failed (%s); trying again in %g s", exc.detail, self.poll)
        except Exception:
            log.exception("following the remote store failed")


def _unset(*args: object) -> NoReturn:
    raise RuntimeError("the mirror is not connected to a builder yet")


def _inferred(delta: Delta, graph: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The lines of a build's delta that are in the inferred graph: (taken out, put in)."""
    return tuple(lines_in_graph(delta.remove, graph)), tuple(lines_in_graph(delta.add, graph))


def _moved(known: Probe, probe: Probe) -> list[str]:
    """The graphs whose probe row differs (appeared, went, or changed)."""
    before = {g: (n, size) for g, n, size in known.graphs}
    after = {g: (n, size) for g, n, size in probe.graphs}
    return sorted(g for g in before.keys() | after.keys() if before.get(g) != after.get(g))


def _graph_of(line: str) -> str:
    """The graph IRI of a canonical N-Quads line in a named graph (its last term)."""
    return line[line.rindex("<") + 1 : line.rindex(">")]


def lines_in_graph(lines: Iterable[str], graph: str) -> set[str]:
    """The lines of one named graph."""
    suffix = f"<{graph}> ."
    return {line for line in lines if line.endswith(suffix)}
