"""Following the journal from a web process: notice a new position, have it built, install it."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.journal.log import Journal

log = logging.getLogger("guian_kg.writes")


# --- following the journal (in each web process) --------------------------------------------------------


@dataclass
class Follower:
    """Keeps one process's served version up with the journal: a stat per request, one background build at a time.

    `build()` makes (or finds cached) the newest version and returns its snapshot; `install(snapshot)` serves it
    and returns False when the app is gone (the follower then stops).
    """

    store: Journal
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
    # read-your-writes: the journal's stat key and the moment it was taken, for the version being served
    _served_key: tuple | None = None
    _served_since: float = float("-inf")
    _installed: threading.Condition = field(default_factory=threading.Condition)
    _offered: Any = None  # a build of the head made by this process (see `offer`)

    def __post_init__(self) -> None:
        self._idle.set()

    def offer(self, built: Any) -> None:
        """Install `built`, a build of the journal's head this process made itself (a write that needed its
        delta at once), in the background instead of building it again."""
        with self._lock:
            self._offered = built
        self._failed_at, self._seen = 0.0, None
        self.poll()

    def _build(self) -> Any:
        with self._lock:
            offered, self._offered = self._offered, None
        if offered is not None:
            head = self.store.head()
            if offered.version == self.store.version(head.seq, head.chain, head.manifest):
                return offered
        return self.build()

    def current(self) -> bool:
        """Whether the served version holds every record the journal holds now (two stats when nothing moved)."""
        key = self._key()
        if key is None or key == self._served_key or self._stopped:
            return True
        head = self.store.head()
        if self.store.version(head.seq, head.chain, head.manifest) != self.served:
            return False
        with self._installed:  # the journal moved without a new position (a checkpoint), or a first look
            self._served_key = key
        return True

    def wait_current(self, timeout: float) -> bool:
        """Block until the served version holds every record acknowledged before this call (read-your-writes).

        A build samples the journal's stat key before it reads the head: once a version is installed whose key
        was taken after this call began, or equals the key seen here, every write acknowledged before this call
        is in it. False at `timeout` (a build failed or is slow); True at once when nothing moved.
        """
        if self.current():
            return True
        asked, key = time.monotonic(), self._key()
        deadline = asked + timeout
        self._failed_at = 0.0  # a reader waits: retry a failed build now rather than after retry_after
        self.poll()
        with self._installed:
            while not (self._served_since >= asked or self._served_key == key or self._stopped):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._installed.wait(min(left, 0.5))
                if not self._running:
                    self.poll()  # a build that failed (or coalesced past us): start another
        return True

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
                sampled, key = time.monotonic(), self._key()  # before the build reads the head
                snapshot = self._build()
                if snapshot.version != self.served:
                    if not self.install(snapshot):
                        self._stopped = True
                        return
                    self.served = snapshot.version
                with self._installed:
                    self._served_key, self._served_since = key, sampled
                    self._installed.notify_all()
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
            with self._installed:
                self._installed.notify_all()

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
