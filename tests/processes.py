"""Real processes in tests: free loopback ports, spawning into a process group, readiness, stopping.

Shared by tests/e2e and tests/browser (pytest's `pythonpath` puts tests/ on the import path).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    """Whether this run is CI's, where every peer is installed and a missing one is a failure."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require(available: object, what: str) -> None:
    """Skip without `what` on a developer's machine; fail under CI=true."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{what} is missing (CI installs it: see .ci/run)")
    pytest.skip(f"{what} is not installed")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `command` in the repository, in its own process group, its output going to `log`."""
    with open(log, "wb") as output:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    """Stop a process we started and everything it started (its own process group), by id."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    """Poll `url` until it answers 200; fail with the process's log if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:]
            pytest.fail(f"{process.args!r} exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"{url} not ready in {timeout:g} s:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.1)


def gone(pid: int, within: float = 5.0) -> bool:
    """Whether process `pid` has exited (reaped, or a zombie: its files are closed) within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False
