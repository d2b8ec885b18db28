"""No inherited locks: a write, at once a slow write that holds the write lock while the first write's build ends
(the web process then forks a new query zygote), then more writes — writes, backup and restore go on.

Before the fix the zygote and its workers kept the flock of `write.lock` they were forked with, and every later
write answered 503 write-busy until a restart (issue 20).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from service.files import lock_holders

pytestmark = pytest.mark.e2e

TOKEN = "lock-test-token"
GRAPH = "https://w3id.org/guian-kg/graph/curated/lock-test"
# Slow on purpose: a four-way product over the data, counted; it holds the write lock until its time limit (8 s),
# well past the build of the first write.
SLOW = (
    f"INSERT {{ GRAPH <{GRAPH}> {{ <urn:slow> <urn:count> ?n }} }} WHERE {{ "
    "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?a ?p ?t } GRAPH ?h { ?b ?q ?t } GRAPH ?i { ?c ?r ?t } "
    "GRAPH ?j { ?d ?s ?t } FILTER(STRLEN(CONCAT(STR(?a), STR(?b), STR(?c))) > 0) } }"
)


def write(server, k: int, timeout: float = 60) -> requests.Response:
    update = f"INSERT DATA {{ GRAPH <{GRAPH}> {{ <urn:item:{k}> <urn:n> {k} }} }}"
    return requests.post(
        server.base + "/update",
        data=update.encode(),
        headers={"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"},
        timeout=timeout,
    )


def cli(store: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "service.cli", *args, f"--store-dir={store}", f"--cache-dir={cache}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def server_tree(root: int) -> list[int]:
    """`root` and every process under it."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(child) for child in children)
    return found


def open_on(pid: int, target: Path) -> bool:
    """Whether process `pid` has `target` open."""
    try:
        names = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for name in names:
        try:
            if Path(name.readlink()) == target:
                return True
        except OSError:
            continue
    return False


def test_a_write_lock_is_never_kept_by_a_forked_child(start_server, tmp_path: Path, e2e_cache: Path) -> None:
    store = tmp_path / "store"
    server = start_server(update_token=TOKEN, store_dir=store, query_timeout=8)
    lock = store / "write.lock"
    first = write(server, 1)
    assert first.status_code in (200, 204), first.text
    answers: list[requests.Response] = []
    slow = threading.Thread(
        target=lambda: answers.append(
            requests.post(
                server.base + "/update",
                data=SLOW.encode(),
                headers={"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            )
        )
    )
    slow.start()
    slow.join(timeout=60)
    assert answers, "the slow write did not answer"
    assert answers[0].status_code in (200, 204) or answers[0].json()["code"] == "update-timeout", answers[0].text
    for k in range(2, 6):
        answer = write(server, k)
        assert answer.status_code in (200, 204), answer.text
    # Between writes nobody holds the lock, and no query zygote or worker of the server has it open.
    assert lock_holders(lock) == []
    tree = server_tree(server.process.pid)
    assert len(tree) > 2  # the server, its web worker, query processes
    web_and_workers = [pid for pid in tree if open_on(pid, lock.resolve())]
    assert web_and_workers == [], web_and_workers
    backup = tmp_path / "backup.nq"
    done = cli(store, e2e_cache, "backup", "--output", str(backup))
    assert done.returncode == 0, done.stderr
    assert "<urn:item:5>" in backup.read_text()
    done = cli(store, e2e_cache, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    answer = write(server, 6)
    assert answer.status_code in (200, 204), answer.text
    query = f"ASK {{ GRAPH <{GRAPH}> {{ <urn:item:6> <urn:n> 6 . <urn:item:5> <urn:n> 5 }} }}"
    for _ in range(300):  # the new version is built in the background (bounded: 30 s)
        if requests.get(server.sparql, params={"query": query}, timeout=30).json()["boolean"]:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the write after the restore never became visible")
