"""The source is protected: the shipped graphs are read-only by default, curators write graphs of their own, and
a restore keeps the history it replaces, so an earlier position comes back with one command (issue 20)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

TOKEN = "source-test-token"
BASE = "https://w3id.org/guian-kg/"
CURATED = BASE + "graph/curated/source-test"
FLAGSHIP = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{BASE}graph/ontology> {{ ?s ?p ?o }} }}"


def update(server, text: str) -> requests.Response:
    return requests.post(
        server.base + "/update",
        data=text.encode(),
        headers={"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )


def ask_eventually(server, query: str, expected: bool) -> None:
    for _ in range(300):  # the new version is built in the background (bounded: 30 s)
        if requests.get(server.sparql, params={"query": query}, timeout=30).json()["boolean"] is expected:
            return
        time.sleep(0.1)
    pytest.fail(f"{query} never became {expected}")


def cli(store: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "service.cli", *args, f"--store-dir={store}", f"--cache-dir={cache}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_source_graphs_are_read_only_and_curated_graphs_writable(start_server, tmp_path: Path) -> None:
    server = start_server(update_token=TOKEN, store_dir=tmp_path / "store")
    for text in (
        "DROP ALL",
        f"DROP GRAPH <{BASE}graph/ontology>",
        f"CLEAR GRAPH <{BASE}graph/provenance>",
        f"INSERT DATA {{ GRAPH <{BASE}graph/claim/section-6> {{ <urn:x> <urn:y> <urn:z> }} }}",
    ):
        refused = update(server, text)
        assert refused.status_code == 403, (text, refused.text)
        problem = refused.json()
        assert problem["code"] == "source-read-only"
        assert "graph/curated/" in problem["detail"]
    rows = requests.get(server.sparql, params={"query": FLAGSHIP}, timeout=30).json()["results"]["bindings"]
    assert int(rows[0]["n"]["value"]) > 100  # the ontology is all there
    added = update(server, f"INSERT DATA {{ GRAPH <{CURATED}> {{ <urn:mine> <urn:says> 1 }} }}")
    assert added.status_code == 200, added.text
    ask_eventually(server, f"ASK {{ GRAPH <{CURATED}> {{ <urn:mine> <urn:says> 1 }} }}", True)


def test_source_writes_when_the_operator_opts_in(start_server, tmp_path: Path) -> None:
    server = start_server(update_token=TOKEN, store_dir=tmp_path / "store", source_writes="true")
    answer = update(server, f"INSERT DATA {{ GRAPH <{BASE}graph/claim/section-6> {{ <urn:x> <urn:y> <urn:z> }} }}")
    assert answer.status_code == 200, answer.text


def test_restore_keeps_history_and_goes_back_to_an_earlier_position(
    start_server, tmp_path: Path, e2e_cache: Path
) -> None:
    store = tmp_path / "store"
    server = start_server(update_token=TOKEN, store_dir=store)
    first = update(server, f"INSERT DATA {{ GRAPH <{CURATED}> {{ <urn:a> <urn:n> 1 }} }}").json()
    second = update(server, f"INSERT DATA {{ GRAPH <{CURATED}> {{ <urn:b> <urn:n> 2 }} }}").json()
    assert second["seq"] == first["seq"] + 1
    backup = tmp_path / "backup.nq"
    assert cli(store, e2e_cache, "backup", "--output", str(backup)).returncode == 0
    update(server, f"DROP GRAPH <{CURATED}>")
    done = cli(store, e2e_cache, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    assert len(list((store / "history").iterdir())) == 1  # the replaced checkpoint and journal are kept
    # Back to the position after the first write: it is in the kept history now, not in the current journal.
    done = cli(store, e2e_cache, "restore", "--to", str(first["seq"]))
    assert done.returncode == 0, done.stderr
    assert f"brought back position {first['seq']}" in done.stdout
    ask_eventually(server, f"ASK {{ GRAPH <{CURATED}> {{ <urn:a> <urn:n> 1 }} }}", True)
    ask_eventually(server, f"ASK {{ GRAPH <{CURATED}> {{ <urn:b> <urn:n> 2 }} }}", False)
    missing = cli(store, e2e_cache, "restore", "--to", "999")
    assert missing.returncode == 2
    assert "position 999" in missing.stderr
    assert "Traceback" not in missing.stderr
