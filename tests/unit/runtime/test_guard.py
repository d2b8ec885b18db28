"""The connection guard's relay (issue 17): kept-alive upstream connections, every answer framing relayed whole,
the client's connection kept or closed as the answer allows. Limits and abuse: tests/e2e/test_abuse_clients.py."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.runtime.guard import Guard, Limits

ANSWERS = {
    b"/length": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    b"/chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n"
    ),
    b"/not-modified": b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n',
    b"/until-close": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
    b"/closing": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
}


class Upstream:
    """A stand-in for granian on a Unix socket: answers by path, echoes POST bodies, counts its connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                lines = head.split(b"\r\n")
                method, path, _ = lines[0].split(b" ")
                length = next(
                    (int(v) for k, _, v in (x.partition(b":") for x in lines[1:]) if k == b"content-length"), 0
                )
                body = await reader.readexactly(length)
                if path == b"/echo":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                else:
                    answer = ANSWERS[path]
                    if method == b"HEAD":
                        answer = answer.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
                    writer.write(answer)
                await writer.drain()
                if path in (b"/until-close", b"/closing"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[int, Upstream]]:
    upstream = Upstream()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    path = tmp_path / "upstream.sock"
    limits = Limits(max_connections=16, idle_seconds=5, header_seconds=5, body_seconds=5, max_body_bytes=4096)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    tasks: list[asyncio.Task] = []
    guards = [Guard(listener, path, limits)]

    async def main() -> None:
        server = await asyncio.start_unix_server(upstream.handle, path=str(path))
        tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        started.set()
        async with server:
            await guards[0].serve()

    def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(main())
        for kept in guards[0].pool:
            kept.transport.close()
        pending = asyncio.all_tasks(loop)  # the stand-in's connection handlers
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, asyncio.sleep(0.05), return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(5)
    yield listener.getsockname()[1], upstream
    loop.call_soon_threadsafe(tasks[0].cancel)
    thread.join(5)
    listener.close()


def test_answers_relayed_whole_over_one_upstream_connection(guarded) -> None:
    port, upstream = guarded
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(3):
        client.request("GET", "/length")
        answer = client.getresponse()
        assert (answer.status, answer.read(), answer.getheader("Connection")) == (200, b"hello", "keep-alive")
        client.request("GET", "/chunked")
        answer = client.getresponse()
        assert answer.read() == b"hello world"  # the chunks, their extension and trailer relayed as they came
        client.request("GET", "/not-modified")
        answer = client.getresponse()
        assert (answer.status, answer.read(), answer.getheader("ETag")) == (304, b"", '"x"')
        client.request("HEAD", "/length")
        answer = client.getresponse()
        assert (answer.status, answer.read(), answer.getheader("Content-Length")) == (200, b"", "5")
        client.request("POST", "/echo", body=b"query=ASK%7B%7D", headers={"Content-Type": "text/plain"})
        assert client.getresponse().read() == b"query=ASK%7B%7D"
    client.close()
    assert upstream.connections == 1  # 15 requests, one connection to granian
    assert all(b"connection: close" not in head.lower() for head in upstream.requests)


def test_an_answer_delimited_by_the_end_of_its_connection_closes_the_clients(guarded) -> None:
    port, upstream = guarded
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    client.request("GET", "/until-close")
    answer = client.getresponse()
    assert (answer.read(), answer.getheader("Connection")) == (b"until the end", "close")
    client.close()
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    client.request("GET", "/closing")  # granian closes after it: the next request needs a new upstream connection
    assert client.getresponse().read() == b"ok"
    client.request("GET", "/length")
    assert client.getresponse().read() == b"hello"
    client.close()
    assert upstream.connections == 3


def test_pipelined_requests_are_answered_in_order(guarded) -> None:
    port, _ = guarded
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"GET /length HTTP/1.1\r\nHost: x\r\n\r\nGET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.count(b"HTTP/1.1 200 OK") == 2
    first, second = received.split(b"hello", 1)
    assert first.endswith(b"Content-Length: 5\r\nconnection: keep-alive\r\n\r\n")
    assert second.startswith(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n")
    assert received.endswith(b"0\r\nT: 1\r\n\r\n")
