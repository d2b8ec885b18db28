"""Read-your-writes and monotonic reads on a real server: `guian-kg serve --workers 2 --store-dir`.

Each write (a new project touching land management, in a claim graph of its own) is followed at once by reads on
fresh connections (so granian hands them to either web worker): the asserted triple and its inference
(`gk:coHandledBy` section 6, from two property chains) are there every time, and so is the project in the named
query's parameter vocabulary and in /api/explain. A reader running alongside never sees the data version go
back. Then the server is SIGKILLed and started again: the first query answered sees every acknowledged write.
KG_RYW_WRITES sets the number of writes (default 6).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from processes import free_port, spawn, stop

pytestmark = pytest.mark.e2e

WRITES = int(os.environ.get("KG_RYW_WRITES", "6"))
READS = 4  # per write, each on a fresh connection
TOKEN = "read-your-writes-token"
GK = "https://w3id.org/guian-kg/ontology#"
ID = "https://w3id.org/guian-kg/id/"
SECTION_6 = ID + "section/6"


def project(k: int) -> str:
    return f"{ID}project/ryw-{k}"


def insert(k: int) -> str:
    return (
        f"INSERT DATA {{ GRAPH <https://w3id.org/guian-kg/graph/claim/ryw-{k}> {{ <{project(k)}> a <{GK}Project> ; "
        f"<{GK}touchesDomain> <{ID}domain/land-management> }} }}"
    )


def ask(base: str, query: str) -> tuple[bool, int]:
    """The answer of an ASK on a fresh connection, and the journal position of the version that answered."""
    response = requests.get(base + "/sparql", params={"query": query}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["boolean"], seq_of(response.headers["Data-Version"])


def seq_of(version: str) -> int:
    tail = version.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0  # the shipped data's version has no suffix: position 0


def start(command: list[str], log: Path, base: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUIAN_KG_")}
    process = spawn(command, log, env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return process
        time.sleep(0.1)
    pytest.fail("server not alive in 180 s")


def test_every_write_is_visible_to_the_next_read_with_its_inferences(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--host=127.0.0.1",
        f"--port={port}",
        "--workers=2",
        "--threads=4",
        "--query-workers=1",
        f"--store-dir={tmp_path / 'store'}",
        f"--cache-dir={tmp_path / 'cache'}",
        f"--update-token={TOKEN}",
    ]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    process = start(command, tmp_path / "server.log", base)
    stop_reader, seen, backwards = threading.Event(), [], []

    def reader() -> None:  # monotonic reads: the version a client sees never goes back
        last = -1
        while not stop_reader.is_set():
            with contextlib.suppress(requests.RequestException):
                response = requests.get(base + "/sparql", params={"query": "ASK {}"}, timeout=60)
                if response.status_code == 200:
                    now = seq_of(response.headers["Data-Version"])
                    seen.append(now)
                    if now < last:
                        backwards.append((last, now))
                    last = max(last, now)

    watcher = threading.Thread(target=reader)
    watcher.start()
    misses, acknowledged = [], []
    try:
        for k in range(WRITES):
            written = requests.post(base + "/update", data={"update": insert(k)}, headers=auth, timeout=60)
            assert written.status_code == 200, written.text
            seq = written.json()["seq"]
            assert written.headers["Data-Version"] == written.json()["data_version"]
            acknowledged.append(k)
            for r in range(READS):
                query = (
                    f"ASK {{ <{project(k)}> <{GK}touchesDomain> ?d }}"
                    if r % 2 == 0
                    else f"ASK {{ <{project(k)}> <{GK}coHandledBy> <{SECTION_6}> }}"
                )
                found, answered = ask(base, query)
                if not found or answered < seq:
                    misses.append((k, r, found, answered, seq))
            # the named query's parameter vocabulary and the explainer follow the version too
            named = requests.get(base + "/api/queries/project-co-handling", params={"project": project(k)}, timeout=60)
            assert named.status_code == 200, named.text
            assert any(b["section"]["value"] == SECTION_6 for b in named.json()["results"]["bindings"])
            if k == 0:
                explained = requests.get(
                    base + "/api/explain",
                    params={"s": f"<{project(k)}>", "p": "gk:coHandledBy", "o": "id:section/6"},
                    timeout=120,
                )
                assert explained.status_code == 200, explained.text
    finally:
        stop_reader.set()
        watcher.join(120)
    assert misses == [], f"{len(misses)} reads missed an acknowledged write: {misses[:5]}"
    assert backwards == [] and seen, f"the version went back: {backwards[:5]}"
    # the versions after the first write were served by their delta (the zygote moved), not loaded again
    served = (tmp_path / "server.log").read_text(errors="replace")
    assert served.count("(moved by its delta)") >= WRITES - 1, served[-3000:]

    # SIGKILL everything, start again: the first query answered sees every acknowledged write and its inference
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    process = start(command, tmp_path / "server-2.log", base)
    try:
        found = []
        for k in acknowledged:
            for query in (
                f"ASK {{ <{project(k)}> <{GK}touchesDomain> ?d }}",
                f"ASK {{ <{project(k)}> <{GK}coHandledBy> <{SECTION_6}> }}",
            ):
                answer = requests.get(base + "/sparql", params={"query": query}, timeout=120)
                if answer.status_code == 503:  # not ready: the problem says when to come back
                    assert answer.headers["Retry-After"] and answer.json()["code"] == "not-ready"
                    time.sleep(float(answer.headers["Retry-After"]))
                    answer = requests.get(base + "/sparql", params={"query": query}, timeout=120)
                assert answer.status_code == 200, answer.text
                found.append(answer.json()["boolean"])
        assert all(found) and len(found) == 2 * WRITES
        for _ in range(30):  # each web worker answers /readyz for itself: probe again while one catches up
            ready = requests.get(base + "/readyz", timeout=60)
            if ready.status_code != 503:
                break
            time.sleep(float(ready.headers["Retry-After"]))
        assert ready.status_code == 200 and seq_of(ready.json()["data_version"]) == WRITES
    finally:
        stop(process)
