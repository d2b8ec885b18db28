"""Runs queries in pre-forked worker processes, so the time limit holds although no engine can be interrupted.

Neither engine can be stopped mid-query (SIGALRM does not stop pyoxigraph; PITFALLS), so each query runs in a
worker process that is killed at its deadline. Layout:

    web process ──control socket──► zygote (loads the engine once; single-threaded; forks workers)
         └──────── one socketpair per worker ──────────────► worker ... worker (share the engine copy-on-write)

The zygote forks because forking the web process itself, once its request threads run, can copy a lock some
other thread holds. The zygote hands each new worker's socket and pidfd to the web process (SCM_RIGHTS), so the
web process can SIGKILL exactly that worker (a pidfd cannot hit a recycled pid) and ask for a replacement.
Workers die with the zygote (PR_SET_PDEATHSIG) and on EOF; the zygote dies on EOF of its control socket, and
it closes every socket and pipe it inherited, so a client connection or another executor's socket that the web
process closes is not kept open by it. Each worker gets its engine ready after the fork (an on-disk store is opened
there, never shared across a fork) and says so before its first query.

An executor holds its data version in use (service.data.snapshots.hold) until it is closed, so the cache never prunes a
version that its processes still read; the zygote lets go of the marks of other executors' versions.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import gc
import json
import logging
import os
import pickle
import resource
import select
import signal
import socket
import stat
import struct
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import IO, Any

from service import errors
from service.config import Settings
from service.data.builder import Delta
from service.data.snapshots import Snapshot, hold, load_snapshot
from service.engines.base import Engine, QueryJob, QueryOutcome, query_from
from service.errors import (
    ConfigError,
    GuianError,
    NotReadyError,
    QueryResourceError,
    QueryTimeoutError,
)
from service.processes import die_with_parent
from service.sparql.lexer import check_query

log = logging.getLogger("guian_kg.executor")

_LENGTH = struct.Struct("!I")
_PID = struct.Struct("!i")
_SPAWN_TIMEOUT = 30.0  # seconds the zygote may take to fork one worker
_ADVANCE_TIMEOUT = 120.0  # seconds the zygote may take to apply a delta
_HEADROOM = 64 * 2**20  # address space a worker needs beyond what it inherits, to run a small query
_IN_USE_MARKS: set[int] = set()  # fds of the version marks this process's executors hold (see _close_inherited)


def _send(sock: socket.socket, payload: bytes) -> None:
    if len(payload) < 65536:
        sock.sendall(_LENGTH.pack(len(payload)) + payload)
    else:
        sock.sendall(_LENGTH.pack(len(payload)))
        sock.sendall(payload)


def _recv_exact(sock: socket.socket, size: int, deadline: float | None) -> bytearray:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
        count = sock.recv_into(view[got:])
        if count == 0:
            raise EOFError
        got += count
    return buffer


def _recv(sock: socket.socket, deadline: float | None = None) -> bytearray:
    """One length-prefixed message. Raises TimeoutError past `deadline`, EOFError when the peer is gone."""
    (size,) = _LENGTH.unpack(_recv_exact(sock, _LENGTH.size, deadline))
    return _recv_exact(sock, size, deadline)


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


# --- the worker process --------------------------------------------------------------------------------


def _encode_reply(meta: dict[str, Any], body: bytes = b"") -> bytes:
    # JSON, not pickle: the worker runs untrusted queries, and the web process must not unpickle its output.
    return json.dumps(meta, default=str).encode() + b"\n" + body


def _run_job(engine: Engine, payload: bytes) -> bytes:
    try:
        job = pickle.loads(payload)
        outcome = engine.execute(job)
    except GuianError as exc:
        return _encode_reply({"ok": False, "code": exc.code, "detail": exc.detail, "extra": exc.extra})
    except MemoryError:
        error = QueryResourceError("the query needed more memory than a query worker may use")
        return _encode_reply({"ok": False, "code": error.code, "detail": error.detail, "retire": True})
    except Exception:
        log.exception("query worker failed")
        return _encode_reply({"ok": False, "code": GuianError.code, "detail": "the query engine failed"})
    meta = {"ok": True, "form": outcome.form, "media_type": outcome.media_type, "rows": outcome.rows}
    return _encode_reply({**meta, "extra": outcome.extra}, outcome.body)


def _close_inherited(keep: set[int]) -> None:
    """Close the sockets, pipes, other executors' in-use marks and lock files this process inherited, but `keep`.

    A lock file another thread of the web process held (flock) at the fork — the store's build or write lock,
    the remote watcher's — would otherwise stay locked as long as this process lives, and the next build wait
    for it forever.
    """
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                mode = os.fstat(fd).st_mode
                lock = stat.S_ISREG(mode) and os.readlink(f"/proc/self/fd/{fd}").endswith(".lock")
                if stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode) or fd in _IN_USE_MARKS or lock:
                    os.close(fd)
            except OSError:
                pass  # the fd of the listdir itself, already closed


def _worker_main(sock: socket.socket, engine: Engine, zygote: int, memory_bytes: int) -> None:
    die_with_parent(zygote)
    # pyoxigraph aborts the process when it runs out of memory: that is our signal, not a crash to dump.
    faulthandler.disable()
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, resource.getrlimit(resource.RLIMIT_AS)[1]))
    sock.settimeout(None)
    try:
        engine.after_fork()
    except GuianError as exc:
        _send(sock, _encode_reply({"ok": False, "code": exc.code, "detail": exc.detail}))
        return
    except Exception:
        log.exception("a query worker could not get its engine ready")
        _send(sock, _encode_reply({"ok": False, "code": GuianError.code, "detail": "the query engine failed"}))
        return
    _send(sock, _encode_reply({"ok": True}))  # ready: the web process waits for this before using the worker
    while True:
        try:
            payload = _recv(sock)
            reply = _run_job(engine, bytes(payload))
            _send(sock, reply)
        except (EOFError, OSError):
            return  # the web process closed our socket or died


# --- the zygote process --------------------------------------------------------------------------------


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if os.waitstatus_to_exitcode(status) not in (0, -signal.SIGKILL):
            log.warning("query worker %d ended with exit code %d", pid, os.waitstatus_to_exitcode(status))


def _spawn_worker(ctl: socket.socket, engine: Engine, memory_bytes: int) -> None:
    ours, theirs = socket.socketpair()
    zygote = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            ctl.close()
            ours.close()
            _worker_main(theirs, engine, zygote, memory_bytes)
        except BaseException:
            log.exception("query worker crashed")
            code = 1
        finally:
            os._exit(code)
    theirs.close()
    pidfd = os.pidfd_open(pid)  # before any waitpid, so the pid cannot have been recycled
    try:
        socket.send_fds(ctl, [_PID.pack(pid)], [ours.fileno(), pidfd])
    finally:
        ours.close()
        os.close(pidfd)


def _advance(ctl: socket.socket, engine: Engine, marks: set[int]) -> None:
    """Move the engine to a newer version by the delta that follows on `ctl`; reply "moved", "declined" (nothing
    changed: the engine cannot) or "failed" (then exit: the data may be half-moved, no worker may fork from it)."""
    snapshot, remove, add = pickle.loads(_recv(ctl))
    try:
        outcome = "moved" if engine.apply(snapshot, remove, add) else "declined"
    except Exception:
        log.exception("moving the loaded data to version %s failed", snapshot.version)
        outcome = "failed"
    if outcome == "moved":
        for fd in marks:  # the version this zygote loaded is no longer read here: let the cache prune it
            with contextlib.suppress(OSError):
                os.close(fd)
        marks.clear()
        gc.freeze()
    _send(ctl, outcome.encode())
    if outcome == "failed":
        raise SystemExit(0)


def _zygote_main(
    ctl: socket.socket, load_engine: Callable[[], Engine], memory_mb: int, marks: set[int] | None = None
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the web process, which then closes us
    try:
        engine = load_engine()
        hello = {"engine": engine.name, "address_space": _address_space()}
    except GuianError as exc:
        hello = {"error": exc.code, "detail": exc.detail}
    except Exception as exc:
        log.exception("loading the query engine failed")
        hello = {"error": GuianError.code, "detail": f"loading the query engine failed: {exc!r}"}
    _send(ctl, pickle.dumps(hello))
    if "error" in hello:
        return
    # Keep the loaded engine out of the collector's reach: a collection in a worker would otherwise write to
    # every object header and turn the shared copy-on-write pages into private copies.
    gc.freeze()
    while True:
        readable, _, _ = select.select([ctl], [], [], 1.0)
        _reap()
        if not readable:
            continue
        command = ctl.recv(1)
        if not command:
            return  # the web process closed the executor or died
        if command == b"a":
            _advance(ctl, engine, marks if marks is not None else set())
            continue
        try:
            _spawn_worker(ctl, engine, memory_mb * 2**20)
        except OSError:
            log.exception("could not fork a query worker")
            ctl.sendall(b"\0")  # no fds attached: the web process reports it


# --- the web process side ------------------------------------------------------------------------------


@dataclass
class _Worker:
    pid: int
    sock: socket.socket
    pidfd: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    killed: bool = False


def _kill(worker: _Worker) -> None:
    """SIGKILL the worker and close its fds, once (close() and a failing run() may both get here)."""
    with worker.lock:
        if worker.killed:
            return
        worker.killed = True
        with contextlib.suppress(ProcessLookupError):  # already gone
            signal.pidfd_send_signal(worker.pidfd, signal.SIGKILL)
        worker.sock.close()
        os.close(worker.pidfd)


class _Zygote:
    """A zygote process (the engine loaded at one data version) and the web process's end of its control socket.

    Executors of successive versions share it: `advance` moves its engine to the next version by a delta (a few
    quads instead of a whole load), and from then on it forks workers of that version only; an executor of an
    older version that needs a worker after that starts a zygote of its own. It ends when its last user releases it.
    Thread-safe.
    """

    def __init__(
        self,
        settings: Settings,
        engine_factory: Callable[[Settings, Snapshot], Engine],
        snapshot: Snapshot,
        in_use: IO[bytes] | None,
    ) -> None:
        keep = {in_use.fileno()} if in_use is not None else set()
        self.version = snapshot.version
        self.users = 1
        self._lock = threading.Lock()
        self._ctl, zygote_end = socket.socketpair()
        try:
            pid = os.fork()
        except OSError:
            self._ctl.close()
            zygote_end.close()
            raise
        if pid == 0:
            try:
                _close_inherited(keep={zygote_end.fileno(), *keep})
                load = functools.partial(engine_factory, settings, snapshot)
                _zygote_main(zygote_end, load, settings.query_memory_mb, keep)
            finally:
                os._exit(0)
        zygote_end.close()
        self.pid = pid
        try:
            hello = pickle.loads(_recv(self._ctl))
        except EOFError:
            self.close()
            raise ConfigError("the query engine process exited while loading") from None
        if "error" in hello:
            self.close()
            raise errors.from_code(hello["error"], hello["detail"])
        self.engine_name: str = hello["engine"]
        need = hello["address_space"] + _HEADROOM
        if settings.query_memory_mb * 2**20 < need:
            self.close()
            raise ConfigError(
                f"query_memory_mb={settings.query_memory_mb} is below what a query worker maps once the engine "
                f"is loaded; use at least {need // 2**20 + 1}"
            )

    def spawn(self, version: str) -> _Worker | None:
        """A new worker at `version`, ready; None when this zygote has moved past that version.

        Raises:
            NotReadyError: when the zygote is gone or the worker did not get ready.
        """
        with self._lock:
            if version != self.version:
                return None
            self._ctl.settimeout(_SPAWN_TIMEOUT)
            try:
                self._ctl.sendall(b"s")
                message, fds, _, _ = socket.recv_fds(self._ctl, _PID.size, 2)
            except OSError:
                message, fds = b"", []
        if len(message) != _PID.size or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            raise NotReadyError("the query engine process is gone")
        (pid,) = _PID.unpack(message)
        worker = _Worker(pid, socket.socket(fileno=fds[0]), fds[1])
        try:
            hello = _recv(worker.sock, time.monotonic() + _SPAWN_TIMEOUT)
            meta = json.loads(hello[: hello.index(b"\n")])
        except (TimeoutError, EOFError, OSError, ValueError):
            _kill(worker)
            raise NotReadyError("a new query worker did not get ready") from None
        if not meta["ok"]:
            _kill(worker)
            raise errors.from_code(meta["code"], meta["detail"])
        return worker

    def advance(self, since: str, snapshot: Snapshot, delta: Delta) -> bool:
        """Move to `snapshot` by `delta` (made from version `since`) and take one more user; False (nothing taken)
        when the zygote is not at `since` or its engine cannot move (it then ends: its users start their own)."""
        with self._lock:
            if self.version != since or self.users <= 0:
                return False
            self._ctl.settimeout(_ADVANCE_TIMEOUT)
            try:
                self._ctl.sendall(b"a")
                _send(self._ctl, pickle.dumps((snapshot, delta.remove, delta.add), protocol=pickle.HIGHEST_PROTOCOL))
                outcome = bytes(_recv(self._ctl)).decode()
            except (OSError, EOFError):
                outcome = "failed"
            if outcome == "moved":
                self.version = snapshot.version
                self.users += 1
            elif outcome != "declined":
                self.version = ""  # gone: its users fork from zygotes of their own
            return outcome == "moved"

    def release(self) -> None:
        """One user fewer; the last one ends the process."""
        with self._lock:
            self.users -= 1
            last = self.users == 0
        if last:
            self.close()

    def close(self) -> None:
        self._ctl.close()
        try:
            os.kill(self.pid, signal.SIGKILL)  # our own child, not yet waited for: the pid is still ours
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _shutdown(zygote: list[_Zygote], workers: dict[int, _Worker], in_use: IO[bytes] | None) -> None:
    for worker in list(workers.values()):
        _kill(worker)
    workers.clear()
    zygote[0].release()
    if in_use is not None:  # last: no process of this executor reads the version any more
        _IN_USE_MARKS.discard(in_use.fileno())
        in_use.close()


class QueryExecutor:
    """A pool of `settings.query_workers` worker processes that answer QueryJobs within a time limit.

    The engine is loaded as `engine_factory(settings, snapshot)` (e.g. `engine_for`) in the zygote, never in
    this process; `snapshot` defaults to `load_snapshot(settings)`. `moved_from` makes the executor of the next
    version from the one before by a delta, moving its zygote forward instead of loading the data again.
    Thread-safe.
    """

    def __init__(
        self,
        settings: Settings,
        engine_factory: Callable[[Settings, Snapshot], Engine],
        snapshot: Snapshot | None = None,
        zygote: _Zygote | None = None,
    ) -> None:
        """Start the zygote (or use `zygote`, already at `snapshot` and counting this executor) and fork the workers.

        Raises:
            ConfigError: when query_memory_mb is below what a worker already maps, or the engine fails to load.
        """
        if snapshot is None:
            snapshot = load_snapshot(settings)
        self.settings = settings
        self.snapshot = snapshot
        self._factory = engine_factory
        in_use = hold(snapshot)
        self._in_use = in_use
        keep = {in_use.fileno()} if in_use is not None else set()
        _IN_USE_MARKS.update(keep)
        try:
            if zygote is None:
                zygote = _Zygote(settings, engine_factory, snapshot, in_use)
        except BaseException:
            if in_use is not None:
                _IN_USE_MARKS.difference_update(keep)
                in_use.close()
            raise
        self._zygote = [zygote]
        self.engine_name: str = zygote.engine_name
        self._workers: dict[int, _Worker] = {}
        self._idle: list[_Worker] = []
        self._replacing = 0  # workers being replaced right now
        self._cond = threading.Condition()
        self._spawn_lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(self, _shutdown, self._zygote, self._workers, in_use)
        try:
            for _ in range(settings.query_workers):
                self._add(self._spawn())
        except BaseException:
            self.close()
            raise

    @classmethod
    def moved_from(cls, previous: QueryExecutor, snapshot: Snapshot, since: str, delta: Delta) -> QueryExecutor | None:
        """The executor of `snapshot`, made by moving `previous`'s zygote forward by `delta` (made from version
        `since`); None when it cannot be (blank nodes, another version, an engine that cannot apply deltas)."""
        if delta.has_blank_nodes or previous.closed:
            return None
        zygote = previous._zygote[0]
        if not zygote.advance(since, snapshot, delta):
            return None
        try:
            return cls(previous.settings, previous._factory, snapshot, zygote=zygote)
        except BaseException:
            zygote.release()
            raise

    # -- pool -------------------------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        with self._spawn_lock:
            worker = self._zygote[0].spawn(self.snapshot.version)
            if worker is None:  # the zygote moved on to a newer version: this one gets a zygote of its own
                own = _Zygote(self.settings, self._factory, self.snapshot, self._in_use)
                old, self._zygote[0] = self._zygote[0], own
                old.release()
                worker = own.spawn(self.snapshot.version)
                assert worker is not None
            return worker

    def _add(self, worker: _Worker) -> None:
        with self._cond:
            if not self._closed:
                self._workers[worker.pid] = worker
                self._idle.append(worker)
                self._cond.notify()
                return
        _kill(worker)  # close() ran while it was being forked

    def _acquire(self, deadline: float, timeout: float) -> _Worker:
        with self._cond:
            while not self._idle:
                if self._closed or not (self._workers or self._replacing):
                    raise NotReadyError("no query workers are running")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueryTimeoutError(
                        f"no query worker became free within the {timeout:g} s time limit", timeout=timeout
                    )
                self._cond.wait(remaining)
            return self._idle.pop()

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            self._idle.append(worker)
            self._cond.notify()

    def _replace(self, worker: _Worker) -> None:
        """Kill `worker` and fork one in its place."""
        with self._cond:
            self._workers.pop(worker.pid, None)
            closed = self._closed
            self._replacing += 1  # waiters wait for the replacement rather than give up
        _kill(worker)
        try:
            if not closed:
                self._add(self._spawn())
        except (OSError, GuianError):
            log.exception("could not replace query worker %d; %d left", worker.pid, len(self._workers))
        finally:
            with self._cond:
                self._replacing -= 1
                self._cond.notify_all()  # waiters re-check whether any worker is left

    # -- public -----------------------------------------------------------------------------------------

    @property
    def zygote_pid(self) -> int:
        """Process id of the zygote that holds the loaded engine (for metrics and tests)."""
        return self._zygote[0].pid

    @property
    def closed(self) -> bool:
        """Whether close() was called (a replaced or shut-down executor)."""
        return self._closed

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for metrics and tests)."""
        with self._cond:
            return sorted(self._workers)

    def run(self, job: QueryJob, timeout: float) -> QueryOutcome:
        """Answer `job` in a worker within `timeout` seconds (never more than settings.query_timeout).

        Raises:
            QuerySyntaxError, ServiceForbiddenError: before any worker is involved (see check_query).
            QueryTimeoutError: at the deadline; the worker running the query is killed and replaced.
            QueryResourceError: when the worker died (e.g. out of memory); it is replaced.
            NotReadyError: after close(), or when no worker could be started.
            GuianError: whatever the engine raised (syntax, result size, ...).
        """
        if job.form is None or job.query_from is None:  # read here, so that no query worker lexes the text
            form = job.form or check_query(job.query, self.settings.service_allow)
            job = replace(job, form=form, query_from=query_from(job))
        timeout = min(timeout, self.settings.query_timeout)  # the one clamp: a client may only lower the limit
        deadline = time.monotonic() + timeout
        worker = self._acquire(deadline, timeout)
        try:
            worker.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            _send(worker.sock, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            reply = _recv(worker.sock, deadline)
        except TimeoutError:
            self._replace(worker)
            detail = f"the query ran longer than the {timeout:g} s time limit"
            raise QueryTimeoutError(detail, timeout=timeout) from None
        except (EOFError, OSError):
            self._replace(worker)
            if self._closed:
                raise NotReadyError("the query executor was closed") from None
            raise QueryResourceError("the query worker died running this query (memory or engine crash)") from None
        except BaseException:
            self._replace(worker)  # the socket may hold half a message: never reuse it
            raise
        newline = reply.index(b"\n")
        meta = json.loads(reply[:newline])
        if meta.get("retire"):
            self._replace(worker)
        else:
            self._release(worker)
        if not meta["ok"]:
            raise errors.from_code(meta["code"], meta["detail"], meta.get("extra"))
        body = bytes(reply[newline + 1 :])
        return QueryOutcome(meta["form"], meta["media_type"], body, meta["rows"], meta["extra"])

    def close(self) -> None:
        """Kill the workers and the zygote. Queries still running raise NotReadyError."""
        with self._cond:
            self._closed = True
            self._idle.clear()
            self._cond.notify_all()
        self._finalizer()

    def __enter__(self) -> QueryExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
