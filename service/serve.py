"""`guian-kg serve`: the app under granian (WSGI), one app created inside each server worker."""

from __future__ import annotations

import atexit
import copy
import gc
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from granian import Granian
from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.log import LOGGING_CONFIG

from service.config import Settings, export_settings
from service.data.snapshots import load_snapshot
from service.errors import ConfigError
from service.journal.writer import ephemeral_store_dir
from service.library.vocabulary import load_vocabulary
from service.runtime.guard import BACKLOG
from service.web.app import behind_guard, create_app

APP_FACTORY = "service.serve:worker_app"
HEAD_BYTES = 64 * 1024  # largest request line + headers granian accepts


def worker_app() -> Any:
    """The app of one server worker, its start-up objects frozen out of the garbage collector.

    Everything built at start-up lives as long as the worker: leaving it to the cyclic collector only makes
    each full collection walk it (about 60 ms in a web worker here, a latency spike in some request).
    """
    app = behind_guard(create_app())  # granian listens on a private socket only the guard connects to
    gc.collect()
    gc.freeze()
    return app


def logging_config(level: str) -> dict[str, Any]:
    """Granian's logging configuration plus the service's loggers (query log lines are bare JSON)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["service"] = {"()": "logging.Formatter", "fmt": "[%(levelname)s] %(name)s: %(message)s"}
    config["formatters"]["json_lines"] = {"()": "logging.Formatter", "fmt": "%(message)s"}
    config["handlers"]["service"] = {
        "class": "logging.StreamHandler",
        "formatter": "service",
        "stream": "ext://sys.stderr",
    }
    config["handlers"]["query_log"] = {
        "class": "logging.StreamHandler",
        "formatter": "json_lines",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["guian_kg"] = {"handlers": ["service"], "level": level.upper(), "propagate": False}
    config["loggers"]["guian_kg.query"] = {"handlers": ["query_log"], "level": level.upper(), "propagate": False}
    return config


def serve(settings: Settings) -> None:
    """Run the service under granian until interrupted: settings.workers processes × settings.threads threads.

    The data snapshot is reasoned and cached here, once, before the workers start; each worker then
    builds its own app (and its query worker processes) through the factory, after the fork.
    """
    if settings.update_token and settings.store_dir is None:
        # One journal for every worker process: writes without --store-dir live in a temporary folder.
        settings = replace(settings, store_dir=ephemeral_store_dir())
        atexit.register(shutil.rmtree, settings.store_dir, True)
        logging.getLogger("guian_kg.serve").warning(
            "writes are enabled without --store-dir: they live in %s until the service stops", settings.store_dir
        )
    listener = listen(settings.host, settings.port)
    load_snapshot(settings)  # reasoned, and its on-disk store built if it needs one: once, before the workers start
    load_vocabulary(settings.reasoning_cache, settings.data)  # the workers inherit it
    export_settings(settings)
    # granian listens on a private Unix socket; the connection guard (service.runtime.guard) owns the public one.
    private = Path(tempfile.mkdtemp(prefix="guian-kg-serve-"))
    atexit.register(shutil.rmtree, private, True)
    upstream = private / "granian.sock"
    guard = start_guard(listener, upstream)
    atexit.register(guard.kill)
    Granian(
        APP_FACTORY,
        factory=True,
        interface=Interfaces.WSGI,
        uds=upstream,
        uds_permissions=0o600,
        workers=settings.workers,
        blocking_threads=settings.threads,
        # The guard already enforced these on the client; they hold for anything that reaches granian directly.
        http1_settings=HTTP1Settings(header_read_timeout=10_000, max_buffer_size=HEAD_BYTES),
        log_dictconfig=logging_config(settings.log_level),
    ).serve()


def listen(host: str, port: int) -> socket.socket:
    """The public listening socket (bound here, so a taken port stops the start with a clear message).

    Raises:
        ConfigError: when the address cannot be bound.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(BACKLOG)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return listener


def start_guard(listener: socket.socket, upstream: Path) -> subprocess.Popen:
    """Spawn the connection guard on `listener` (`python -m service.children guard`); the socket is its alone."""
    fd = listener.fileno()
    os.set_inheritable(fd, True)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "service.children", "guard", str(os.getpid()), str(fd), str(upstream)],
            pass_fds=[fd],
        )
    finally:
        listener.close()  # the web workers forked later must not hold the public socket
