"""Files that survive a crash: fsync'd folders, atomic replacement, and advisory locks with a deadline.

An flock belongs to the open file, which a forked child shares: a child forked while a lock is held (a query
zygote, its workers) would keep it held after the parent lets go, and every later writer would wait forever.
Every lock taken here is therefore registered while held, and a forked child closes the registered files at once
(`os.register_at_fork`), which leaves the parent's lock as it was. (Until the child runs that hook, a moment
after the fork, the lock stays taken even if the parent lets go; waiters poll, so they see it free then.)
A lock held longer than `LONG_HOLD` seconds is logged with its holder when released, and a waiter that gives
up logs the processes that hold it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from service.errors import (
    WriteBusyError,
)

log = logging.getLogger("guian_kg.locks")

LONG_HOLD = 30.0  # seconds: a lock held longer is logged with its holder


# --- files ---------------------------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(target: Path, data: bytes | Iterable[bytes]) -> None:
    """Write `target` whole or not at all: a temporary file, fsync'd, renamed over it, the folder fsync'd."""
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as tmp:
        if isinstance(data, bytes):
            tmp.write(data)
        else:
            tmp.writelines(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, target)
    fsync_dir(target.parent)


# --- locks ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """Who holds one of this process's locks: what it guards, the thread, since when (monotonic)."""

    what: str
    pid: int
    thread: str
    since: float


_HELD: dict[int, Holder] = {}  # fd -> holder, for every lock this process holds now


def _close_held_in_child() -> None:
    """In a forked child: let go of the files of the parent's locks, so the child never keeps one.

    Each fd is pointed at /dev/null (dup2) rather than closed: a Python file object of another thread may still
    own the number and close it later in the child, which must not hit a file the child has opened since.
    """
    if not _HELD:
        return
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        for fd in list(_HELD):
            with contextlib.suppress(OSError):
                os.dup2(null, fd, inheritable=False)
    finally:
        os.close(null)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


def held_locks() -> list[Holder]:
    """The locks this process holds now."""
    return list(_HELD.values())


def lock_holders(path: Path) -> list[str]:
    """The processes that hold an flock on `path` (from /proc/locks): "pid (command)" each; [] when unknown."""
    try:
        info = os.stat(path)
        with open("/proc/locks") as table:
            rows = table.read().splitlines()
    except OSError:
        return []
    found = []
    for row in rows:
        parts = row.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" (a waiter's row carries "->" after the number)
        if "->" in parts:
            continue
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        pid, where = parts[4], parts[5].split(":")
        if len(where) == 3 and where[2] == str(info.st_ino) and int(where[0], 16) == os.major(info.st_dev):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                command = "?"
            found.append(f"{pid} ({command[:120]})")
    return found


@contextlib.contextmanager
def _registered(fd: int, what: str) -> Iterator[None]:
    """Register the lock on `fd` as held until the block ends; log it if it was held past `LONG_HOLD`."""
    holder = Holder(what, os.getpid(), threading.current_thread().name, time.monotonic())
    _HELD[fd] = holder
    try:
        yield
    finally:
        _HELD.pop(fd, None)
        held = time.monotonic() - holder.since
        if held > LONG_HOLD:
            log.warning("%s was held for %.1f s by process %d thread %s", what, held, holder.pid, holder.thread)


@contextlib.contextmanager
def hold_exclusive(file: IO, what: str) -> Iterator[None]:
    """Wait for an exclusive flock on the open `file` and hold it, registered, until the block ends.

    The caller closes the file (which releases the lock).
    """
    _HELD[file.fileno()] = Holder(what, os.getpid(), threading.current_thread().name, time.monotonic())
    try:
        fcntl.flock(file, fcntl.LOCK_EX)
        with _registered(file.fileno(), what):
            yield
    finally:
        _HELD.pop(file.fileno(), None)


@contextlib.contextmanager
def flock(path: Path, deadline: float | None, what: str) -> Iterator[None]:
    """Hold an exclusive flock on `path`; wait until `deadline` (monotonic), forever when None.

    Raises:
        WriteBusyError: when the lock is not free by the deadline.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    # Registered before it is locked: a fork between the flock and the registration would keep the lock.
    _HELD[fd] = Holder(what, os.getpid(), threading.current_thread().name, time.monotonic())
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
                        log.warning("%s stayed busy past the time limit; held by %s", what, lock_holders(path) or "?")
                        raise WriteBusyError(f"{what} stayed busy past the time limit; retry") from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.005)  # one poller per process: threads queue on its lock
        with _registered(fd, what):
            yield
    finally:
        _HELD.pop(fd, None)
        os.close(fd)  # releases the lock
