"""Process helpers shared by every child we fork or spawn (query workers, zygotes, write evaluators)."""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when `parent` dies; exit now if it already has.

    Raises:
        OSError: when prctl(PR_SET_PDEATHSIG) fails (a child that would outlive its parent must not start).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)
