"""Entry points of the child processes we spawn (`python -m service.children …`); never run by hand.

    evaluate DIR PARENT MEMORY_MB            a write evaluator over the store in DIR (service.journal.evaluator)
    build PARENT                             materialise the store's newest version (service.data.snapshots)
    build-disk-store NQUADS INFERRED TARGET  write a snapshot's on-disk store (service.data.oxstores)
    guard PARENT FD UPSTREAM                 the connection guard on listening socket FD (service.runtime.guard)

Spawned, not forked: a fresh interpreter is safe to start from a threaded web process, and RocksDB's background
threads never exist in a process that forks.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from service.config import load_settings
from service.data.oxstores import build_disk_store
from service.data.snapshots import build_newest
from service.errors import ConfigError
from service.journal.evaluator import evaluator_main
from service.processes import die_with_parent
from service.runtime.guard import Limits, run_guard

USAGE = (
    "usage: python -m service.children evaluate DIR PARENT MEMORY_MB | build PARENT"
    " | build-disk-store NQUADS INFERRED_GRAPH TARGET | guard PARENT FD UPSTREAM"
)


def main(argv: Sequence[str]) -> int:
    """Run the child `argv` names; its exit code."""
    if argv[:1] == ["evaluate"] and len(argv) == 4:
        evaluator_main(argv[1], int(argv[2]), int(argv[3]))
        return 0
    if argv[:1] == ["build"] and len(argv) == 2:
        die_with_parent(int(argv[1]))
        os.nice(10)  # reasoning takes seconds of CPU: let the web processes answer requests first
        logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s: %(message)s", stream=sys.stderr)
        print(json.dumps(build_newest(load_settings())))
        return 0
    if argv[:1] == ["build-disk-store"] and len(argv) == 4:
        build_disk_store(Path(argv[1]), argv[2], Path(argv[3]))
        return 0
    if argv[:1] == ["guard"] and len(argv) == 4:
        die_with_parent(int(argv[1]))
        settings = load_settings()
        logging.basicConfig(level=settings.log_level, format="[%(levelname)s] %(name)s: %(message)s", stream=sys.stderr)
        limits = Limits(
            max_connections=settings.max_connections * settings.workers,
            idle_seconds=settings.idle_seconds,
            header_seconds=settings.header_seconds,
            body_seconds=settings.body_seconds,
            max_body_bytes=settings.max_request_bytes,
        )
        run_guard(socket.socket(fileno=int(argv[2])), Path(argv[3]), limits)
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except ConfigError as exc:
        print(f"guian-kg: {exc.detail}", file=sys.stderr)
        sys.exit(2)
