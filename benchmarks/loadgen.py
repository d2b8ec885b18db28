"""Drives wrk with pre-built requests (`pool.lua`) and returns throughput and latency percentiles."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

SCRIPT = Path(__file__).resolve().parent / "pool.lua"


@dataclass(frozen=True)
class Request:
    """One HTTP request of a workload, independent of the server it goes to."""

    method: str
    path: str  # with the query string
    body: bytes = b""
    content_type: str | None = None
    accept: str | None = None
    label: str = ""  # what it is, for reports (e.g. "named:sections-for-domain", "adhoc:03")

    def raw(self, host: str) -> bytes:
        """The request as HTTP/1.1 bytes on a keep-alive connection to `host`."""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}", "User-Agent: guian-kg-bench"]
        if self.accept:
            lines.append(f"Accept: {self.accept}")
        if self.method == "POST" or self.body:
            lines.append(f"Content-Type: {self.content_type or 'application/octet-stream'}")
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    throughput: float  # completed requests per second
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int  # socket errors, timeouts and non-2xx answers
    wrapped: int  # "once" pools that ran out and started over (0 for a cold run that stayed cold)

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def write_pool(requests: Sequence[Request], base_url: str, path: Path) -> None:
    """Write the requests as wrk pool records for the server at `base_url`."""
    host = urlsplit(base_url).netloc
    with open(path, "wb") as out:
        for request in requests:
            raw = request.raw(host)
            out.write(f"{len(raw)}\n".encode() + raw)


def run_wrk(
    base_url: str,
    requests: Sequence[Request],
    *,
    mode: str,
    duration: float,
    connections: int,
    threads: int = 2,
    timeout: float = 60.0,
) -> LoadResult:
    """One wrk run against `base_url`.

    mode "cycle" repeats the requests for `duration` seconds; mode "once" sends each exactly once and ends
    when all are answered (or after `duration` seconds, whichever comes first).

    Raises:
        RuntimeError: wrk failed or printed no result.
    """
    if not requests:
        raise ValueError("no requests")
    threads = max(1, min(threads, connections, len(requests)))
    connections = max(connections, threads)
    with tempfile.TemporaryDirectory(prefix="guian-bench-") as folder:
        pool = Path(folder) / "pool.bin"
        write_pool(requests, base_url, pool)
        argv = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            f"--timeout={max(1, round(timeout))}s",
            "-s",
            str(SCRIPT),
            base_url + "/",
            "--",
            str(pool),
            mode,
            str(threads),
        ]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        done_threads = 0
        stderr_lines: list[str] = []

        def watch_stderr() -> None:
            nonlocal done_threads
            assert process.stderr is not None
            for line in process.stderr:
                if line.strip() == "THREAD-DONE":
                    done_threads += 1
                    if done_threads >= threads and process.poll() is None:
                        time.sleep(0.05)
                        process.send_signal(signal.SIGINT)  # wrk ends its sleep and reports at once
                else:
                    stderr_lines.append(line)

        watcher = threading.Thread(target=watch_stderr, daemon=True)
        watcher.start()
        assert process.stdout is not None
        stdout = process.stdout.read()  # not communicate(): it would read stderr too, racing the watcher
        process.wait(timeout=duration + timeout + 60)
        watcher.join(timeout=5)
    result = None
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    if process.returncode not in (0, -signal.SIGINT) or result is None:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stdout[-2000:]} {''.join(stderr_lines)[-2000:]}")
    if mode == "once" and result["active_s"] > 0:
        seconds = result["active_s"]
        completed = result["received"]
    else:
        seconds = result["duration_us"] / 1e6
        completed = result["requests"]
    socket_errors = {k: v for k, v in result["errors"].items() if k != "status"}  # "status" is in non2xx
    errors = sum(socket_errors.values()) + result["non2xx"]
    latency = result["latency_us"]
    return LoadResult(
        requests=completed,
        seconds=round(seconds, 4),
        throughput=round(completed / seconds, 2) if seconds > 0 else 0.0,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        mean_ms=round(latency["mean"] / 1000, 3),
        errors=errors,
        wrapped=result["wrapped"],
    )
