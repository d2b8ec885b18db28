"""Files that survive a crash: fsync'd folders, atomic replacement, and advisory locks with a deadline."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from service.errors import (
    WriteBusyError,
)

# --- files ---------------------------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
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
    fsync_dir(target.parent)


@contextlib.contextmanager
def flock(path: Path, deadline: float | None, what: str) -> Iterator[None]:
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
