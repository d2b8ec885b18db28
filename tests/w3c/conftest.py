"""Servers for the W3C suite: one per engine for the whole session (ours on the embedded and the rdflib engine,
and Oxigraph server beside them as the peer), started on an empty dataset (`--data` an empty folder) with writes
on and a durable store (journal on).

`W3C_ENGINES` (space-separated, default all three) picks the targets; `W3C_SUMMARY=FILE` writes the per-group
table (tests / pass / expected failure, per target) as JSON at the end of the run. A missing suite skips on a
developer's machine and fails under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from processes import free_port, require, spawn, stop, wait_ready
from w3c.judge import FAILURES, SUMMARY
from w3c.suite import SPARQL11, cases, nquads, path_of, quads_of, query_graphs

TOKEN = "w3c-suite-token"


@dataclass
class Target:
    """A SPARQL endpoint under test: ours (`embedded`, `rdflib`) or Oxigraph server (`oxigraph`)."""

    name: str
    base: str
    ours: bool

    @property
    def query_url(self) -> str:
        return self.base + ("/sparql" if self.ours else "/query")

    @property
    def update_url(self) -> str:
        return self.base + "/update"

    @property
    def store_url(self) -> str:
        return self.base + "/store"

    @property
    def write_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"} if self.ours else {}

    def settle(self, response: requests.Response) -> None:
        """Wait until a successful write of ours is served (its journal position reached `/readyz`)."""
        if not self.ours or response.status_code >= 300 or not response.content:
            return
        receipt = response.json()
        seq = receipt.get("seq") or 0
        if not receipt.get("changed", True) or seq == 0:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            version = requests.get(self.base + "/readyz", timeout=10).json().get("data_version", "")
            if version.rpartition("-")[2].isdigit() and int(version.rpartition("-")[2]) >= seq:
                return
            time.sleep(0.01)
        pytest.fail(f"write {seq} not served within 60 s")


def _oxigraph_binary() -> str | None:
    beside = Path(sys.executable).parent / "oxigraph"
    return str(beside) if beside.exists() else shutil.which("oxigraph")


def _start(engine: str, folder: Path) -> tuple[Target, object]:
    port = free_port()
    log = folder / "server.log"
    if engine == "oxigraph":
        binary = _oxigraph_binary()
        require(binary, "Oxigraph server (`oxigraph`, PyPI package oxigraph)")
        command = [binary, "serve", "--location", str(folder / "store"), "--bind", f"127.0.0.1:{port}"]
        process = spawn(command, log)
        wait_ready(f"http://127.0.0.1:{port}/query?query=ASK%7B%7D", process, log)
        return Target(engine, f"http://127.0.0.1:{port}", ours=False), process
    (folder / "empty").mkdir()
    flags = {
        "data": folder / "empty",
        "engine": engine,
        "port": port,
        "workers": 1,
        "query_workers": 2,
        "update_token": TOKEN,
        "store_dir": folder / "store",
        "cache_dir": folder / "cache",
        "source_writes": "true",
        "max_request_bytes": 16 * 1024 * 1024,
        "log_level": "WARNING",
    }
    command = [sys.executable, "-m", "service.cli", "serve"]
    command += [f"--{name.replace('_', '-')}={value}" for name, value in flags.items()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUIAN_KG_")}
    process = spawn(command, log, env)
    wait_ready(f"http://127.0.0.1:{port}/readyz", process, log)
    return Target(engine, f"http://127.0.0.1:{port}", ours=True), process


@pytest.fixture(scope="session")
def suite_present() -> None:
    require(SPARQL11.is_dir(), f"the W3C SPARQL 1.1 test suite ({SPARQL11}; set W3C_RDF_TESTS)")


def _lazy_servers(
    tmp_path_factory: pytest.TempPathFactory, prefix: str, prepare: Callable[[Target], None] | None
) -> Iterator[Callable[[str], Target]]:
    """A getter that starts one server per engine on first use (prepared by `prepare`); all stopped at the end."""
    started: dict[str, Target] = {}
    processes = []

    def get(engine: str) -> Target:
        if engine not in started:
            target, process = _start(engine, tmp_path_factory.mktemp(f"{prefix}-{engine}"))
            processes.append(process)
            if prepare is not None:
                prepare(target)
            started[engine] = target
        return started[engine]

    yield get
    for process in processes:
        stop(process)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory, suite_present: None) -> Iterator[Callable[[str], Target]]:
    """Query servers, started lazily (one per engine), each loaded once with every query test's data."""
    yield from _lazy_servers(tmp_path_factory, "w3c", _load_query_data)


@pytest.fixture(scope="session")
def update_servers(tmp_path_factory: pytest.TempPathFactory, suite_present: None) -> Iterator[Callable[[str], Target]]:
    """Servers the update and update-syntax tests change freely (each update test resets the dataset)."""
    yield from _lazy_servers(tmp_path_factory, "w3c-update", None)


def _load_query_data(target: Target) -> None:
    """Every data file of the query tests, each in the graph named after it, by one Graph Store Protocol POST."""
    files: set[str] = set()
    for case in cases({"QueryEvaluationTest", "CSVResultFormatTest"}):
        files.update(case.data)
        files.update(name for name, _ in case.graph_data)
        if case.action:
            from_default, from_named = query_graphs(_read(case.action), case.action)
            files.update(iri for iri in [*from_default, *from_named] if path_of(iri).is_file())
    quads = [quad for iri in sorted(files) if iri.endswith((".ttl", ".nt", ".rdf")) for quad in quads_of(iri, iri)]
    response = requests.post(
        target.store_url,
        data=nquads(quads),
        headers={"Content-Type": "application/n-quads", **target.write_headers},
        timeout=120,
    )
    assert response.status_code < 300, response.text
    target.settle(response)


def _read(iri: str) -> str:
    return path_of(iri).read_text(encoding="utf-8")


# --- the summary ---------------------------------------------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("W3C_SUMMARY")
    if target and SUMMARY:
        document = {"table": SUMMARY, "failures": FAILURES}
        Path(target).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
