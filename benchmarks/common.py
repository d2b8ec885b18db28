"""What every benchmark needs: processes on loopback ports, readiness, memory of a process tree, the machine."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
VENV_BIN = Path(sys.executable).parent
PACKAGES = ("pyoxigraph", "oxigraph", "rdflib", "rdflib-endpoint", "owlrl", "Flask", "granian", "uvicorn", "fastapi")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Status and body of a GET (an HTTP error status is returned, not raised)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post(url: str, body: bytes, content_type: str, accept: str, timeout: float = 60.0) -> tuple[int, bytes]:
    """Status and body of a POST (an HTTP error status is returned, not raised)."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type, "Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    """A server process started in its own process group, so that stopping it stops all its children."""

    name: str
    argv: Sequence[str]
    port: int
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    startup_seconds: float | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process (its output goes to `log_path`)."""
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(
            list(self.argv),
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if log is not subprocess.DEVNULL:
            log.close()

    def wait_ready(self, timeout: float = 600.0) -> float:
        """Seconds from start until `ready_path` answers 200.

        Raises:
            RuntimeError: the process died or did not become ready in time (with the log's tail).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                status, _ = http_get(self.base + self.ready_path, timeout=2.0)
                if status == 200:
                    self.startup_seconds = time.perf_counter() - self.started_at
                    return self.startup_seconds
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def pids(self) -> list[int]:
        """The server process and all its descendants."""
        if self.process is None:
            return []
        return process_tree(self.process.pid)

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # children that outlived the leader (same process group)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running(servers: Sequence[Server], timeout: float = 600.0) -> Iterator[Sequence[Server]]:
    """Start every server, wait until all are ready, and stop them all on exit, even on failure."""
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(timeout)
        yield servers
    finally:
        for server in servers:
            server.stop()


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_of(pids: Sequence[int]) -> dict[str, int]:
    """Bytes of memory of a set of processes: summed RSS (double-counts shared pages), summed PSS, largest RSS."""
    rss = pss = largest = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        values = {}
        for line in rollup.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                values[parts[0].rstrip(":")] = int(parts[1]) * 1024
        rss += values.get("Rss", 0)
        pss += values.get("Pss", 0)
        largest = max(largest, values.get("Rss", 0))
    return {"rss_sum": rss, "pss_sum": pss, "rss_largest": largest, "processes": len(pids)}


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def wait_for_quiet(limit: float = 1.5, patience: float = 300.0, log=print) -> float:
    """Wait (up to `patience` s) until the 1-minute load is at most `limit`; return the load found."""
    deadline = time.monotonic() + patience
    load = load_average()
    while load > limit and time.monotonic() < deadline:
        log(f"load {load:.2f} > {limit}: waiting for the machine to calm down")
        time.sleep(15)
        load = load_average()
    return load


def machine() -> dict[str, object]:
    """The machine and software the numbers were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_total = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    wrk = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0].strip()
    git = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
        git = git.stdout.strip() + ("+dirty" if dirty.strip() else "")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_bytes": mem_total,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": wrk,
        "git": git,
        "load_average_at_start": os.getloadavg(),
    }


def machine_markdown(info: dict[str, object]) -> str:
    """The machine description as Markdown lines."""
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v)  # type: ignore[union-attr]
    load = ", ".join(f"{x:.2f}" for x in info["load_average_at_start"])  # type: ignore[union-attr]
    return "\n".join(
        [
            f"- CPU: {info['cpu']} × {info['nproc']} (nproc)",
            f"- memory: {int(info['memory_bytes']) / 2**30:.1f} GiB; kernel {info['kernel']}",  # type: ignore[arg-type]
            f"- Python {info['python']}; {packages}",
            f"- load generator: {info['wrk']}",
            f"- code: git {info['git']}; load average at start: {load}",
        ]
    )


def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def dump_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def fmt_bytes(count: float | None) -> str:
    if count is None:
        return "–"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count:.0f} B"


def log(message: str) -> None:
    """A timestamped progress line on stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_size(text: str) -> int:
    """A size written as 10k, 1m, 250000 — in triples."""
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * factor)


def size_label(n: int) -> str:
    """10k, 100k, 1M."""
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def write_report(path: Path, text: str, report: dict) -> None:
    """Write a result as `path` (Markdown) and the same name in .json, print the Markdown and say where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    dump_json(path.with_suffix(".json"), report)
    print(text)
    log(f"written {path} and {path.with_suffix('.json')}")
