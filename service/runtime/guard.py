"""The connection guard: the process in front of granian that slow, idle and surplus clients meet first.

granian (2.8) closes a connection whose request head stalls once it has begun, but not one that never sends a
byte, has no deadline for a body, and queues connections past its capacity instead of refusing them (measured:
README "Security"). The guard listens on the public address and gives every connection, in one asyncio loop:

- an idle limit: the first byte of each request must come within `idle_seconds` (closed silently after);
- a head deadline: the request line and headers must arrive whole within `header_seconds`, in `HEAD_BYTES`;
- a body deadline: the body, read whole here, must arrive within `body_seconds` (408, then the connection closes);
- a cap: at most `max_connections`; a new one past the cap closes the longest-idle connection, or, when every
  connection is busy with a request, is answered 503 and closed.

A request that passed goes to granian over a Unix socket, whole, on a kept-alive connection from a small pool
(one request at a time on each; a pooled connection idle for `UPSTREAM_IDLE_SECONDS` is closed before granian's
own head timeout could close it under a request); the answer is relayed as its bytes arrive, its framing
(Content-Length or chunked) followed so that the connection can carry the next request, and its head's
connection fields rewritten for the client (whose connection stays open when the answer is framed). granian and
the app therefore never wait on a client.

Every request crosses this process, so it is written for a low cost per request: asyncio protocols and timer
handles (no streams, no task per read), and no new Unix connection per request.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import socket
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import uvloop

from service import errors
from service.errors import GuianError

log = logging.getLogger("guian_kg.guard")

HEAD_BYTES = 64 * 1024  # largest request line + headers
RESPONSE_HEAD_BYTES = 1024 * 1024
BACKLOG = 4096  # connections the kernel queues before they are accepted (capped by net.core.somaxconn)
SEND_STALL_SECONDS = 30.0  # a client that reads none of its answer for this long is dropped
REFUSE_SECONDS = 1.0  # how long a refusal (408, 413, 503, ...) may take to leave before the connection is cut
UPSTREAM_IDLE_SECONDS = 5.0  # granian closes a kept-alive connection after 10 s without a request head
UPSTREAM_POOL = 64  # idle upstream connections kept
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"expect", b"te", b"upgrade", b"proxy-connection"}
CHUNK_LINE_BYTES = 4096  # longest chunk-size line (with extensions) or trailer line of a chunked body

# what a client connection is doing
IDLE, HEAD, BODY, FORWARD, CLOSED = range(5)
# where a chunked body's parser is
SIZE, DATA, TRAILER = range(3)


@dataclass(frozen=True)
class Limits:
    """What a client connection may take."""

    max_connections: int
    idle_seconds: float
    header_seconds: float
    body_seconds: float
    max_body_bytes: int


def problem_response(error: GuianError, extra_headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A whole HTTP/1.1 response carrying `error` as application/problem+json; the connection closes after it."""
    body = json.dumps(error.problem(), ensure_ascii=False).encode()
    reason = error.title.encode("ascii", "replace")
    head = [
        b"HTTP/1.1 %d %s" % (error.status, reason),
        b"Content-Type: application/problem+json",
        b"Content-Length: %d" % len(body),
        b"Cache-Control: no-store",
        b"Connection: close",
        *(f"{name}: {value}".encode() for name, value in extra_headers),
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@dataclass
class _Request:
    method: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in (self.header(b"connection") or b"").split(b",")}
        if self.version == b"HTTP/1.0":
            return b"keep-alive" in tokens
        return b"close" not in tokens


def _parse_head(head: bytes) -> _Request:
    lines = head.split(b"\r\n")
    while lines and not lines[0]:
        lines.pop(0)  # empty lines before a request line are allowed (RFC 9112 §2.2)
    parts = lines[0].split(b" ") if lines else []
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise errors.BadRequestError("not an HTTP/1.1 request line")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise errors.BadRequestError("a malformed header line")
        headers.append((name.lower(), value.strip()))
    return _Request(parts[0], parts[2], headers)


def _upstream_request(request: _Request, head: bytes, body: bytes) -> bytes:
    """The request as granian gets it: hop-by-hop fields dropped, the body's length declared."""
    request_line = head.lstrip(b"\r\n").split(b"\r\n", 1)[0]
    lines = [request_line]
    lines += [name + b": " + value for name, value in request.headers if name not in HOP_BY_HOP]
    lines = [line for line in lines if not line.startswith(b"content-length:")]
    if body or request.header(b"content-length") is not None or request.header(b"transfer-encoding"):
        lines.append(b"content-length: %d" % len(body))
    if request.version != b"HTTP/1.1":
        lines.append(b"connection: close")  # an HTTP/1.0 request line: the connection is not reused
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _response_head(request: _Request, head: bytes) -> tuple[bool, bytes]:
    """The answer's head as the client gets it, and whether the client connection may stay open after it."""
    lines = head[:-4].split(b"\r\n")
    status_line, fields = lines[0], lines[1:]
    status = int(status_line.split(b" ", 2)[1])
    names = {line.partition(b":")[0].strip().lower() for line in fields}
    framed = (
        b"content-length" in names
        or b"transfer-encoding" in names
        or request.method == b"HEAD"
        or status in (204, 304)
        or 100 <= status < 200
    )
    keep = request.keep_alive and framed
    kept = [line for line in fields if line.partition(b":")[0].strip().lower() not in (b"connection", b"keep-alive")]
    kept.append(b"connection: keep-alive" if keep else b"connection: close")
    return keep, b"\r\n".join([status_line, *kept]) + b"\r\n\r\n"


class _Chunks:
    """An incremental parser of chunked framing over a growing buffer: where the framing ends, and the data."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit  # most data bytes allowed (None: any)
        self.state = SIZE
        self.left = 0  # data bytes of the current chunk still to come
        self.pos = 0  # parsed up to here in the buffer
        self.data = bytearray()

    def feed(self, buffer: bytearray, keep_data: bool = True) -> bool:
        """Parse what `buffer` holds past the last position; whether the framing is complete (at `self.pos`).

        Raises:
            BadRequestError: malformed framing.
            PayloadTooLargeError: more data than the limit.
        """
        pos = self.pos
        try:
            while True:
                if self.state == DATA:
                    if len(buffer) - pos < self.left + 2:
                        return False
                    if keep_data:
                        self.data += buffer[pos : pos + self.left]
                    if buffer[pos + self.left : pos + self.left + 2] != b"\r\n":
                        raise errors.BadRequestError("a malformed chunk")
                    pos += self.left + 2
                    self.state = SIZE
                    continue
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    if len(buffer) - pos > CHUNK_LINE_BYTES:
                        raise errors.BadRequestError("a malformed chunk size")
                    return False
                line = bytes(buffer[pos:end])
                pos = end + 2
                if self.state == TRAILER:
                    if not line:
                        return True  # trailer fields (dropped) end with an empty line
                    continue
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise errors.BadRequestError("a malformed chunk size") from None
                if size < 0:
                    raise errors.BadRequestError("a malformed chunk size")
                if size == 0:
                    self.state = TRAILER
                    continue
                if self.limit is not None and len(self.data) + size > self.limit:
                    raise errors.PayloadTooLargeError(f"the request body is over {self.limit} bytes")
                self.left = size
                self.state = DATA
        finally:
            self.pos = pos


class _Upstream(asyncio.Protocol):
    """One kept-alive connection to granian, relaying one answer at a time to its client."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.transport: asyncio.Transport | None = None
        self.client: _Client | None = None
        self.request: _Request | None = None
        self.buffer = bytearray()
        self.in_head = True
        self.length: int | None = None  # body bytes still to relay (Content-Length framing)
        self.chunks: _Chunks | None = None  # chunked framing
        self.reusable = True
        self.closed = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, client: _Client, request: _Request, payload: bytes) -> None:
        self.client, self.request = client, request
        self.buffer.clear()
        self.in_head, self.length, self.chunks = True, None, None
        self.reusable = request.version == b"HTTP/1.1"
        self.transport.write(payload)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:
            self.reusable = False  # bytes nobody asked for: this connection is out of step
            self.transport.abort()  # type: ignore[union-attr]
            return
        if self.in_head:
            self.buffer += data
            self._head(client)
            return
        self._relay(client, data)

    def _head(self, client: _Client) -> None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > RESPONSE_HEAD_BYTES:
                self._broken()
            return
        head, rest = bytes(buffer[: end + 4]), bytes(buffer[end + 4 :])
        buffer.clear()
        request = self.request
        assert request is not None
        try:
            status = int(head.split(b" ", 2)[1])
            keep, client_head = _response_head(request, head)
        except (ValueError, IndexError):
            self._broken()
            return
        if 100 <= status < 200 and status != 101:
            client.transport.write(head)  # an interim answer, then the real one
            self.buffer += rest
            self._head(client)
            return
        fields = {}
        for line in head[:-4].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip().lower()
        if b"close" in fields.get(b"connection", b"").split(b","):
            self.reusable = False
        client.keep = keep
        self.in_head = False
        client.transport.write(client_head)
        if request.method == b"HEAD" or status in (204, 304):
            self.length = 0
        elif b"transfer-encoding" in fields:
            if fields[b"transfer-encoding"].split(b",")[-1].strip() == b"chunked":
                self.chunks = _Chunks(None)
            else:
                self.reusable = False  # delimited by the end of the connection
                client.keep = False
        elif b"content-length" in fields:
            try:
                self.length = int(fields[b"content-length"])
            except ValueError:
                self._broken()
                return
        else:
            self.reusable = False  # delimited by the end of the connection
        if rest or self.length == 0:
            self._relay(client, rest)

    def _relay(self, client: _Client, data: bytes) -> None:
        if self.length is not None:
            if len(data) > self.length:
                self.reusable = False  # more than announced: never reuse this connection
                data = data[: self.length]
            self.length -= len(data)
            if data:
                client.transport.write(data)
            if self.length == 0:
                self._done(client)
            return
        if self.chunks is not None:
            self.buffer += data
            if data:
                client.transport.write(data)
            try:
                complete = self.chunks.feed(self.buffer, keep_data=False)
            except GuianError:
                self._broken()
                return
            if complete:
                if self.chunks.pos != len(self.buffer):
                    self.reusable = False
                self._done(client)
            return
        if data:
            client.transport.write(data)  # until granian closes the connection

    def _done(self, client: _Client) -> None:
        self.client = self.request = self.chunks = None
        self.buffer.clear()
        self.guard.check_in(self)
        client.answered()

    def _broken(self) -> None:
        self.reusable = False
        self.transport.abort()  # type: ignore[union-attr]  # connection_lost tells the client

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.guard.forget(self)
        client = self.client
        self.client = None
        if client is None:
            return
        if not self.in_head and self.length is None and self.chunks is None:
            client.keep = False  # an answer delimited by the end of the connection: whole now
            client.answered()
            return
        log.warning("granian closed a connection before its answer was whole")
        client.cut()

    def pause_reading(self) -> None:
        if not self.closed:
            self.transport.pause_reading()  # type: ignore[union-attr]

    def resume_reading(self) -> None:
        if not self.closed:
            self.transport.resume_reading()  # type: ignore[union-attr]


class _Client(asyncio.Protocol):
    """One client connection: its deadlines, its request read whole, then relayed through an upstream."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.limits = guard.limits
        self.loop = guard.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.state = IDLE
        self.buffer = bytearray()
        self.timer: asyncio.TimerHandle | None = None
        self.stall: asyncio.TimerHandle | None = None
        self.request: _Request | None = None
        self.head = b""
        self.declared: int | None = None
        self.chunks: _Chunks | None = None
        self.upstream: _Upstream | None = None
        self.keep = False
        self.eof = False
        self.reading = True

    # -- the connection ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        guard = self.guard
        if not guard.admit():
            guard.shed += 1
            busy = errors.NotReadyError("the service has too many connections open; retry shortly")
            self.state = CLOSED
            self._refuse(busy, (("Retry-After", "1"),))
            return
        guard.connections[self] = None
        self._wait()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = CLOSED
        self.guard.connections.pop(self, None)
        self.guard.idle.pop(self, None)
        self._cancel()
        if self.stall is not None:
            self.stall.cancel()
        upstream, self.upstream = self.upstream, None
        if upstream is not None and upstream.client is self:
            upstream.client = None
            upstream._broken()  # half an answer in flight: never reuse that connection

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.state in (IDLE, HEAD, BODY):
            self._advance()
        elif self.state == FORWARD and len(self.buffer) > HEAD_BYTES and self.reading:
            self.reading = False  # a client sending ahead of its answers waits
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        return self.state == FORWARD  # keep the write side open for the answer under way

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()
        if self.stall is None:
            self.stall = self.loop.call_later(SEND_STALL_SECONDS, self.transport.abort)

    def resume_writing(self) -> None:
        if self.stall is not None:
            self.stall.cancel()
            self.stall = None
        if self.upstream is not None:
            self.upstream.resume_reading()

    # -- reading a request ------------------------------------------------------------------------------

    def _cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _wait(self) -> None:
        """Wait for the next request (idle)."""
        self.state = IDLE
        self.guard.idle[self] = None
        self.timer = self.loop.call_later(self.limits.idle_seconds, self.transport.abort)
        if self.buffer:
            self._advance()

    def _advance(self) -> None:
        try:
            if self.state == IDLE:
                self.guard.idle.pop(self, None)
                self._cancel()
                self.state = HEAD
                # a head that stalls: no answer (the client is not reading one)
                self.timer = self.loop.call_later(self.limits.header_seconds, self.transport.abort)
            if self.state == HEAD and not self._head():
                return
            if self.state == BODY:
                body = self._body()
                if body is not None:
                    self._forward(body)
        except GuianError as exc:
            self._refuse(exc)

    def _head(self) -> bool:
        """Whether the head is whole (then parsed, the body's framing checked)."""
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0 or end > HEAD_BYTES:
            if len(buffer) > HEAD_BYTES:
                raise errors.HeaderTooLargeError("the request line and headers are over 64 KiB")
            return False
        head = bytes(buffer[: end + 4])
        del buffer[: end + 4]
        request = _parse_head(head)
        self.request, self.head = request, head
        length = request.header(b"content-length")
        chunked = b"chunked" in (request.header(b"transfer-encoding") or b"").lower()
        limit = self.limits.max_body_bytes
        self.declared, self.chunks = None, None
        if length is not None or chunked:
            try:
                declared = int(length) if length is not None else None
            except ValueError:
                declared = -1
            if (declared is not None and declared < 0) or (chunked and length is not None):
                raise errors.BadRequestError("a malformed Content-Length or Transfer-Encoding")
            if declared is not None and declared > limit:
                raise errors.PayloadTooLargeError(f"the request body is over {limit} bytes")
            if (request.header(b"expect") or b"").lower() == b"100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.declared = declared
            self.chunks = None if declared is not None else _Chunks(limit)
        self._cancel()
        self.timer = self.loop.call_later(self.limits.body_seconds, self._too_slow)
        self.state = BODY
        return True

    def _body(self) -> bytes | None:
        """The whole body once it is here (b"" without one), else None."""
        buffer = self.buffer
        if self.chunks is not None:
            if not self.chunks.feed(buffer):
                return None
            body = bytes(self.chunks.data)
            del buffer[: self.chunks.pos]
            self.chunks = None
            return body
        declared = self.declared or 0
        if len(buffer) < declared:
            return None
        body = bytes(buffer[:declared])
        del buffer[:declared]
        return body

    def _too_slow(self) -> None:
        seconds = f"{self.limits.body_seconds:g}"
        self._refuse(errors.RequestTimeoutError(f"the request body did not arrive within {seconds} s"))

    def _refuse(self, error: GuianError, extra_headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Answer `error` and close the connection (cut if the answer cannot leave within REFUSE_SECONDS)."""
        self._cancel()
        self.state = CLOSED
        self.guard.idle.pop(self, None)
        self.transport.write(problem_response(error, extra_headers))
        self.transport.close()
        self.loop.call_later(REFUSE_SECONDS, self.transport.abort)

    # -- relaying ---------------------------------------------------------------------------------------

    def _forward(self, body: bytes) -> None:
        self._cancel()
        self.state = FORWARD
        request = self.request
        assert request is not None
        payload = _upstream_request(request, self.head, body)
        upstream = self.guard.check_out()
        if upstream is not None:
            self.upstream = upstream
            upstream.send(self, request, payload)
        else:
            self.guard.connect(self, request, payload)

    def attach(self, upstream: _Upstream | None, request: _Request, payload: bytes) -> None:
        """Send the request on a newly opened upstream connection (None: granian cannot be reached)."""
        if self.state != FORWARD:
            if upstream is not None:
                self.guard.check_in(upstream)  # the client left meanwhile
            return
        if upstream is None:
            self._refuse(errors.NotReadyError("the service is starting or stopping; retry shortly"))
            return
        self.upstream = upstream
        upstream.send(self, request, payload)

    def answered(self) -> None:
        """The whole answer was relayed: wait for the next request, or close."""
        self.upstream = None
        if self.state != FORWARD:
            return
        if not self.keep or self.eof:
            self.state = CLOSED
            self.transport.close()  # after what is buffered has left (SEND_STALL_SECONDS at most)
            self.loop.call_later(SEND_STALL_SECONDS, self.transport.abort)
            return
        if not self.reading:
            self.reading = True
            self.transport.resume_reading()
        self._wait()

    def cut(self) -> None:
        """The answer broke off: close the connection at once."""
        self.upstream = None
        self.state = CLOSED
        self.transport.abort()


class Guard:
    """The guard of one listening socket, forwarding to granian's Unix socket at `upstream`."""

    def __init__(self, listener: socket.socket, upstream: Path, limits: Limits) -> None:
        self.listener = listener
        self.upstream = upstream
        self.limits = limits
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.connections: dict[_Client, None] = {}
        self.idle: OrderedDict[_Client, None] = OrderedDict()  # longest idle first
        self.pool: collections.deque[_Upstream] = collections.deque()  # idle upstream connections, oldest first
        self.connecting: set[asyncio.Task] = set()  # the loop holds tasks weakly
        self.shed = 0  # connections refused with 503
        self.evicted = 0  # idle connections closed to make room

    async def serve(self) -> None:
        """Accept and guard connections until cancelled."""
        self.loop = asyncio.get_running_loop()
        server = await self.loop.create_server(lambda: _Client(self), sock=self.listener, backlog=BACKLOG)
        async with server:
            await server.serve_forever()

    def admit(self) -> bool:
        """Whether a new connection may stay (closing the longest-idle one to make room if need be)."""
        if len(self.connections) < self.limits.max_connections:
            return True
        if not self.idle:
            return False
        oldest, _ = self.idle.popitem(last=False)
        self.evicted += 1
        self.connections.pop(oldest, None)
        oldest.transport.abort()
        return True

    # -- upstream connections ---------------------------------------------------------------------------

    def check_out(self) -> _Upstream | None:
        """An idle upstream connection that granian has not had time to give up on, or None."""
        pool, now = self.pool, self.loop.time()
        while pool:
            upstream = pool.popleft()
            if not upstream.closed and now - upstream.idle_since < UPSTREAM_IDLE_SECONDS:
                return upstream
            upstream.transport.close()  # type: ignore[union-attr]
        return None

    def check_in(self, upstream: _Upstream) -> None:
        """Keep an upstream connection whose answer is whole for the next request (or close it)."""
        if upstream.closed:
            return
        if not upstream.reusable or len(self.pool) >= UPSTREAM_POOL:
            upstream.transport.close()  # type: ignore[union-attr]
            return
        upstream.idle_since = self.loop.time()
        self.pool.append(upstream)

    def forget(self, upstream: _Upstream) -> None:
        """An upstream connection closed: out of the pool."""
        with contextlib.suppress(ValueError):  # not in the pool: it was carrying an answer
            self.pool.remove(upstream)

    def connect(self, client: _Client, request: _Request, payload: bytes) -> None:
        """Open a new upstream connection and hand it to `client` (None when granian is not listening)."""

        async def opened() -> None:
            try:
                _, upstream = await self.loop.create_unix_connection(lambda: _Upstream(self), str(self.upstream))
            except OSError:
                client.attach(None, request, payload)
                return
            client.attach(upstream, request, payload)

        task = self.loop.create_task(opened())
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)


def run_guard(listener: socket.socket, upstream: Path, limits: Limits) -> None:
    """Run the guard of `listener` until the process is stopped."""
    listener.setblocking(False)
    uvloop.run(Guard(listener, upstream, limits).serve())  # libuv's loop: about a third less time per request
