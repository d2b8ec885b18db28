"""The connection guard: the process in front of granian that slow, idle and surplus clients meet first.

granian (2.8) closes a connection whose request head stalls once it has begun, but not one that never sends a
byte, has no deadline for a body, and queues connections past its capacity instead of refusing them (measured:
README "Security"). The guard listens on the public address and gives every connection, in one asyncio loop:

- an idle limit: the first byte of each request must come within `idle_seconds` (closed silently after);
- a head deadline: the request line and headers must arrive whole within `header_seconds`, in `HEAD_BYTES`;
- a body deadline: the body, read whole here, must arrive within `body_seconds` (408, then the connection closes);
- a cap: at most `max_connections`; a new one past the cap closes the longest-idle connection, or, when every
  connection is busy with a request, is answered 503 and closed.

A request that passed goes to granian over a Unix socket, whole, on a connection of its own (`Connection: close`);
the answer is streamed back (its framing kept, so the client's connection stays open). granian and the app
therefore never wait on a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from service import errors
from service.errors import GuianError

log = logging.getLogger("guian_kg.guard")

HEAD_BYTES = 64 * 1024  # largest request line + headers
RESPONSE_HEAD_BYTES = 1024 * 1024
CHUNK = 64 * 1024
BACKLOG = 4096  # connections the kernel queues before they are accepted (capped by net.core.somaxconn)
SEND_STALL_SECONDS = 30.0  # a client that reads none of its answer for this long is dropped
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"expect", b"te", b"upgrade", b"proxy-connection"}


@dataclass(frozen=True)
class Limits:
    """What a client connection may take."""

    max_connections: int
    idle_seconds: float
    header_seconds: float
    body_seconds: float
    max_body_bytes: int


class Closed(Exception):
    """The client connection is to be closed (after the answer already sent, if any)."""


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


class Guard:
    """The guard of one listening socket, forwarding to granian's Unix socket at `upstream`."""

    def __init__(self, listener: socket.socket, upstream: Path, limits: Limits) -> None:
        self.listener = listener
        self.upstream = upstream
        self.limits = limits
        self.connections: dict[int, asyncio.StreamWriter] = {}
        self.idle: OrderedDict[int, asyncio.StreamWriter] = OrderedDict()  # longest idle first
        self.shed = 0  # connections refused with 503
        self.evicted = 0  # idle connections closed to make room

    async def serve(self) -> None:
        """Accept and guard connections until cancelled."""
        server = await asyncio.start_server(self._handle, sock=self.listener, limit=HEAD_BYTES, backlog=BACKLOG)
        async with server:
            await server.serve_forever()

    def _admit(self, writer: asyncio.StreamWriter) -> bool:
        if len(self.connections) < self.limits.max_connections:
            return True
        if not self.idle:
            return False
        key, oldest = self.idle.popitem(last=False)
        self.evicted += 1
        self.connections.pop(key, None)
        oldest.transport.abort()
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._admit(writer):
            self.shed += 1
            busy = errors.NotReadyError("the service has too many connections open; retry shortly")
            with contextlib.suppress(OSError):
                writer.write(problem_response(busy, (("Retry-After", "1"),)))
                await asyncio.wait_for(writer.drain(), 1.0)
            writer.transport.abort()
            return
        self.connections[id(writer)] = writer
        try:
            while await self._one_request(reader, writer):
                pass
        except (Closed, OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except Exception:
            log.exception("the connection guard failed on a connection")
        finally:
            self.connections.pop(id(writer), None)
            self.idle.pop(id(writer), None)
            writer.transport.abort()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Guard and forward one request; whether the connection stays open for another."""
        self.idle[id(writer)] = writer
        try:
            first = await asyncio.wait_for(reader.read(1), self.limits.idle_seconds)
        except TimeoutError:
            return False  # idle: closed without a word, as any HTTP/1.1 server may
        finally:
            self.idle.pop(id(writer), None)
        if not first:
            return False
        try:
            rest = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.limits.header_seconds)
            request = _parse_head(first + rest)
        except TimeoutError:
            return False  # a head that stalls: no answer (the client is not reading one)
        except (asyncio.LimitOverrunError, ValueError):
            await self._refuse(writer, errors.HeaderTooLargeError("the request line and headers are over 64 KiB"))
            return False
        except errors.BadRequestError as exc:
            await self._refuse(writer, exc)
            return False
        body = await self._body(reader, writer, request)
        return await self._forward(writer, request, first + rest, body)

    async def _refuse(self, writer: asyncio.StreamWriter, error: GuianError) -> None:
        writer.write(problem_response(error))
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.drain(), 1.0)

    async def _body(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: _Request) -> bytes:
        """The whole request body, read within the body deadline.

        Raises:
            Closed: after answering 408 (too slow), 413 (too large) or 400 (bad framing).
        """
        length = request.header(b"content-length")
        chunked = b"chunked" in (request.header(b"transfer-encoding") or b"").lower()
        if length is None and not chunked:
            return b""
        limit = self.limits.max_body_bytes
        try:
            declared = int(length) if length is not None else None
        except ValueError:
            declared = -1
        if (declared is not None and declared < 0) or (chunked and length is not None):
            await self._refuse(writer, errors.BadRequestError("a malformed Content-Length or Transfer-Encoding"))
            raise Closed
        if declared is not None and declared > limit:
            await self._refuse(writer, errors.PayloadTooLargeError(f"the request body is over {limit} bytes"))
            raise Closed
        if (request.header(b"expect") or b"").lower() == b"100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            if declared is not None:
                return await asyncio.wait_for(reader.readexactly(declared), self.limits.body_seconds)
            return await asyncio.wait_for(self._chunked(reader, limit), self.limits.body_seconds)
        except TimeoutError:
            seconds = f"{self.limits.body_seconds:g}"
            await self._refuse(
                writer, errors.RequestTimeoutError(f"the request body did not arrive within {seconds} s")
            )
            raise Closed from None
        except errors.GuianError as exc:
            await self._refuse(writer, exc)
            raise Closed from None

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise errors.BadRequestError("a malformed chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailer fields: dropped
                return bytes(body)
            if len(body) + size > limit:
                raise errors.PayloadTooLargeError(f"the request body is over {limit} bytes")
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise errors.BadRequestError("a malformed chunk")

    async def _forward(self, writer: asyncio.StreamWriter, request: _Request, head: bytes, body: bytes) -> bool:
        """Send the request to granian, stream its answer back; whether the client connection stays open."""
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.upstream, limit=RESPONSE_HEAD_BYTES)
        except OSError:
            await self._refuse(writer, errors.NotReadyError("the service is starting or stopping; retry shortly"))
            return False
        try:
            request_line = head.lstrip(b"\r\n").split(b"\r\n", 1)[0]
            lines = [request_line]
            lines += [name + b": " + value for name, value in request.headers if name not in HOP_BY_HOP]
            lines = [line for line in lines if not line.startswith(b"content-length:")]
            if body or request.header(b"content-length") is not None or request.header(b"transfer-encoding"):
                lines.append(b"content-length: %d" % len(body))
            lines.append(b"connection: close")
            up_writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            await up_writer.drain()
            response_head = await up_reader.readuntil(b"\r\n\r\n")
            keep, response_head = self._response_head(request, response_head)
            writer.write(response_head)
            while chunk := await up_reader.read(CHUNK):
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), SEND_STALL_SECONDS)
            await asyncio.wait_for(writer.drain(), SEND_STALL_SECONDS)
            return keep
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            log.warning("granian closed a connection before its answer was whole")
            return False
        finally:
            up_writer.transport.abort()

    @staticmethod
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
        kept = [
            line for line in fields if line.partition(b":")[0].strip().lower() not in (b"connection", b"keep-alive")
        ]
        kept.append(b"connection: keep-alive" if keep else b"connection: close")
        return keep, b"\r\n".join([status_line, *kept]) + b"\r\n\r\n"


def run_guard(listener: socket.socket, upstream: Path, limits: Limits) -> None:
    """Run the guard of `listener` until the process is stopped."""
    listener.setblocking(False)
    asyncio.run(Guard(listener, upstream, limits).serve())
