"""Slow and idle clients against a running server, on loopback: does it still answer?

    python -m benchmarks.abuse --url http://127.0.0.1:8000 [--idle 2000] [--stalled 8] [--trickle 2] [--seconds 20]

Opens `--idle` TCP connections that never send a byte, `--stalled` clients that send a POST head and half its
body and then nothing, and `--trickle` clients that send their body one byte every 2 s; meanwhile probes
`/healthz` and a small query once a second. Prints one JSON object: the probes' worst and median latency and
failures, how many idle connections the server closed and when, and what the stalled clients were answered.
Every loop is bounded by `--seconds`; only loopback addresses are accepted.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import resource
import socket
import statistics
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import requests

QUERY = "ASK { ?s ?p ?o }"


@dataclass
class Report:
    """What one run saw."""

    probes: int = 0
    failures: list[str] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    query_ms: list[float] = field(default_factory=list)
    idle_opened: int = 0
    idle_refused: int = 0
    idle_closed: int = 0
    idle_closed_after_s: float | None = None
    stalled_answers: list[str] = field(default_factory=list)
    stalled_closed_after_s: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        def stats(values: list[float]) -> dict:
            if not values:
                return {}
            return {"max_ms": round(max(values), 1), "median_ms": round(statistics.median(values), 1)}

        return {
            "probes": self.probes,
            "failures": self.failures,
            "healthz": stats(self.health_ms),
            "query": stats(self.query_ms),
            "idle_opened": self.idle_opened,
            "idle_refused": self.idle_refused,
            "idle_closed_by_server": self.idle_closed,
            "idle_all_closed_after_s": self.idle_closed_after_s,
            "stalled_answers": self.stalled_answers,
            "stalled_closed_after_s": [round(s, 1) for s in self.stalled_closed_after_s],
        }


def loopback(url: str) -> tuple[str, int]:
    """The host and port of `url`, which must be on loopback.

    Raises:
        ValueError: for any other address.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    address = socket.gethostbyname(host)
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f"{url} is not a loopback address: this probe only runs against this machine")
    return address, parts.port or 80


def open_idle(address: tuple[str, int], count: int, report: Report) -> list[socket.socket]:
    """`count` connections that send nothing."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(2)
        try:
            sock.connect(address)
        except OSError:
            report.idle_refused += 1
            sock.close()
            continue
        sock.setblocking(False)
        sockets.append(sock)
    report.idle_opened = len(sockets)
    return sockets


def count_closed(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the server has closed (readable and at EOF, or reset)."""
    closed = 0
    for sock in sockets:
        if sock.fileno() < 0:
            closed += 1
            continue
        try:
            data = sock.recv(4096)  # non-blocking: BlockingIOError while the connection is open and silent
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:
            sock.close()
            closed += 1
    return closed


def stalled_client(address: tuple[str, int], trickle: bool, seconds: float, report: Report) -> None:
    """A POST whose body stops half-way (or trickles one byte every 2 s); records the answer and when it closed."""
    sock = socket.create_connection(address, timeout=2)
    began = time.monotonic()
    body = b"query=" + b"A" * 994
    head = (
        "POST /sparql HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: {}\r\n\r\n".format(*address, len(body))
    ).encode()
    answer = b""
    try:
        sock.sendall(head + (b"" if trickle else body[:500]))
        sent = 0
        sock.settimeout(0.5)
        while time.monotonic() - began < seconds:
            if trickle and sent < len(body) - 1:
                with contextlib.suppress(OSError):
                    sock.sendall(body[sent : sent + 1])
                    sent += 1
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                time.sleep(1.5 if trickle else 0)
                continue
            if not chunk:
                report.stalled_closed_after_s.append(time.monotonic() - began)
                break
            answer += chunk
    except OSError:
        report.stalled_closed_after_s.append(time.monotonic() - began)
    finally:
        sock.close()
    report.stalled_answers.append(answer.split(b"\r\n", 1)[0].decode("latin-1") or "(none)")


def probe(url: str, report: Report) -> None:
    """One /healthz and one query, each with a 5 s client timeout."""
    report.probes += 1
    for path, params, into in (("/healthz", None, report.health_ms), ("/sparql", {"query": QUERY}, report.query_ms)):
        began = time.monotonic()
        try:
            response = requests.get(url + path, params=params, timeout=5)
            if response.status_code != 200:
                report.failures.append(f"{path}: {response.status_code}")
        except requests.RequestException as exc:
            report.failures.append(f"{path}: {type(exc).__name__}")
            continue
        into.append((time.monotonic() - began) * 1000)


def run(url: str, idle: int, stalled: int, trickle: int, seconds: float) -> Report:
    """Hold `idle` idle connections and `stalled` + `trickle` slow bodies open, probing once a second."""
    address = loopback(url)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, idle + 256)), hard))
    report = Report()
    began = time.monotonic()
    sockets = open_idle(address, idle, report)
    slow = [
        threading.Thread(target=stalled_client, args=(address, k >= stalled, seconds, report), daemon=True)
        for k in range(stalled + trickle)
    ]
    for thread in slow:
        thread.start()
    closed = 0
    try:
        while time.monotonic() - began < seconds:
            tick = time.monotonic()
            probe(url, report)
            closed += count_closed([s for s in sockets if s.fileno() >= 0])
            if sockets and closed == len(sockets) and report.idle_closed_after_s is None:
                report.idle_closed_after_s = round(time.monotonic() - began, 1)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    finally:
        report.idle_closed = closed
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in slow:
            thread.join(timeout=seconds + 5)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--stalled", type=int, default=8)
    parser.add_argument("--trickle", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    report = run(args.url, args.idle, args.stalled, args.trickle, args.seconds)
    print(json.dumps(report.summary(), indent=1))


if __name__ == "__main__":
    main()
