"""Slow, idle and surplus clients meet the connection guard (service.runtime.guard), not granian: the service
keeps answering while they are open, stalled bodies get 408 and their connection closed, idle connections are
closed, and connections past the cap are shed with 503 (issue 20)."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from benchmarks.abuse import run

pytestmark = pytest.mark.e2e

LIMITS = {"idle_seconds": 2, "header_seconds": 2, "body_seconds": 3}


def test_service_answers_through_stalled_bodies_and_2000_idle_connections(start_server) -> None:
    server = start_server(max_connections=256, **LIMITS)
    report = run(server.base, idle=2000, stalled=8, trickle=2, seconds=8)
    # Every probe (/healthz and a query, 5 s client timeout each) was answered 200.
    assert report.probes >= 5
    assert report.failures == []
    assert len(report.health_ms) == report.probes and len(report.query_ms) == report.probes
    # Stalled and trickling bodies: 408, then the connection closed.
    assert report.stalled_answers == ["HTTP/1.1 408 Request body too slow"] * 10
    assert len(report.stalled_closed_after_s) == 10
    # Idle connections: every one closed by the server.
    assert report.idle_opened == 2000
    assert report.idle_closed == 2000


def stalled_body(server) -> socket.socket:
    host, port = server.base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(b"POST /sparql HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nquery=")
    return sock


def _open(sock: socket.socket) -> bool:
    """Whether the server still waits on this stalled body: nothing to read (an answer or the end: let go)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)
    return False


def test_connections_past_the_cap_are_shed_with_503(start_server) -> None:
    server = start_server(max_connections=4, body_seconds=30)
    busy = [stalled_body(server) for _ in range(4)]
    try:
        # A connection whose bytes the guard has not read yet still counts as idle and may be closed to make room
        # (on a loaded machine the guard may not have read all four yet): then open another one in its place
        # and ask again, until the four are busy.
        for _ in range(20):
            time.sleep(0.5)
            answer = requests.get(server.base + "/healthz", headers={"Connection": "close"}, timeout=5)
            if answer.status_code != 200:
                break
            for i, sock in enumerate(busy):
                if not _open(sock):
                    sock.close()
                    busy[i] = stalled_body(server)
        assert answer.status_code == 503
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["code"] == "not-ready"
        assert answer.headers["Connection"] == "close"
    finally:
        for sock in busy:
            sock.close()
    for _ in range(50):  # the slots are free again once the stalled clients left
        if requests.get(server.base + "/healthz", timeout=5).status_code == 200:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the service did not recover after the busy connections closed")


def test_an_idle_connection_makes_room_for_a_new_one(start_server) -> None:
    server = start_server(max_connections=4)
    host, port = server.base.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(4)]
    try:
        time.sleep(0.2)
        assert requests.get(server.base + "/healthz", timeout=5).status_code == 200
        idle[0].settimeout(5)
        assert idle[0].recv(1) == b""  # the longest-idle connection was closed to make room
    except ConnectionResetError:
        pass  # closed with a reset: also closed
    finally:
        for sock in idle:
            sock.close()


def test_bodies_keep_alive_and_limits_through_the_guard(start_server) -> None:
    server = start_server(max_request_bytes=4096)
    with requests.Session() as session:
        # A chunked body arrives whole; the client's connection is kept for the next request.
        chunked = session.post(
            server.sparql,
            data=iter([b"query=ASK", b"%7B%7D"]),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert chunked.status_code == 200 and chunked.json()["boolean"] is True
        assert chunked.headers["Connection"] == "keep-alive"
        again = session.post(server.sparql, data={"query": "ASK {}"}, timeout=10)
        assert again.status_code == 200
        # Too large by its declared length: 413 without reading it, the connection closed.
        large = session.post(server.sparql, data={"query": "ASK {} #" + "x" * 5000}, timeout=10)
        assert large.status_code == 413 and large.json()["code"] == "payload-too-large"
    # A request head over 64 KiB: 431.
    huge = requests.get(server.base + "/healthz", headers={"X-Big": "y" * 70_000}, timeout=10)
    assert huge.status_code == 431 and huge.json()["code"] == "header-too-large"


def test_absolute_urls_and_downloads_on_a_real_server(start_server) -> None:
    server = start_server(public_url="https://kg.example.org/")
    description = requests.get(server.sparql, headers={"Host": "evil.example", "Accept": "text/turtle"}, timeout=10)
    assert "evil.example" not in description.text
    assert "<https://kg.example.org/sparql>" in description.text
    query = 'SELECT ?x WHERE { VALUES ?x { "=1+1" } }'
    download = requests.get(
        server.sparql, params={"query": query, "format": "csv", "download": "spreadsheet"}, timeout=10
    )
    assert download.headers["Content-Disposition"] == 'attachment; filename="results.csv"'
    assert download.text.splitlines()[1] == "'=1+1"
    exact = requests.get(server.sparql, params={"query": query, "format": "csv"}, timeout=10)
    assert exact.text.splitlines()[1] == "=1+1"
