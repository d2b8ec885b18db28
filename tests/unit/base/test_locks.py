"""A forked child never keeps a lock its parent held at the fork (service.files), and a waiter that gives up
names the holders."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from pathlib import Path

from service.errors import WriteBusyError
from service.files import flock, held_locks, lock_holders


def test_a_child_forked_while_a_lock_is_held_does_not_keep_it(tmp_path: Path) -> None:
    path = tmp_path / "write.lock"
    with flock(path, None, "the test lock"):
        assert [h.what for h in held_locks()] == ["the test lock"]
        child = os.fork()
        if child == 0:  # the child: sleeps while the parent lets go and takes the lock again
            time.sleep(30)
            os._exit(0)
    try:
        # The child lets go as soon as it runs (its at-fork hook); one that kept the lock would hold it 30 s.
        fd = os.open(path, os.O_RDWR)
        try:
            for _ in range(500):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(0.01)
            else:
                raise AssertionError("the forked child kept the lock")
        finally:
            os.close(fd)
        assert held_locks() == []
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_a_waiter_gives_up_and_the_holder_is_named(tmp_path: Path) -> None:
    path = tmp_path / "write.lock"
    with flock(path, None, "the test lock"):
        assert lock_holders(path) and lock_holders(path)[0].startswith(f"{os.getpid()} ")
        child = os.fork()
        if child == 0:  # the child waits for the lock its parent holds, and gives up
            try:
                with flock(path, time.monotonic() + 0.2, "the test lock"):
                    os._exit(1)
            except WriteBusyError:
                os._exit(0)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert lock_holders(path) == []
