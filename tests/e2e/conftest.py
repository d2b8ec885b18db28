"""Real processes for the e2e tests: our server (a factory), peer engines (Oxigraph server, Comunica) and a
recording proxy that shows what each client really sent.

A peer missing on a developer's machine skips its tests; under CI=true (where .ci/run installs them) it fails.
The versions of every client and peer used are printed at the end of the run.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from processes import free_port, require, spawn, stop, wait_ready

from benchmarks.servers import grant_sparql_update, virtuoso_commands, virtuoso_version, write_virtuoso_ini

ROOT = Path(__file__).resolve().parents[2]
PEERS = Path(__file__).resolve().parent / "peers"
PARTNER_DATA = PEERS / "partner.ttl"
COMUNICA_RUNNER = PEERS / "comunica.cjs"
COMUNICA_PACKAGE = PEERS / "node_modules" / "@comunica" / "query-sparql" / "package.json"
VERSIONS: dict[str, str] = {}  # client or peer -> exact version, printed at the end of the run


# --- our server ---------------------------------------------------------------------------------------------


@dataclass
class Server:
    """A running `guian-kg serve` process."""

    base: str
    process: subprocess.Popen
    log: Path

    @property
    def sparql(self) -> str:
        return self.base + "/sparql"


@pytest.fixture(scope="session")
def e2e_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One reasoning cache for every server of the session: the closure is computed once."""
    return tmp_path_factory.mktemp("e2e-cache")


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory, e2e_cache: Path) -> Iterator[Callable[..., Server]]:
    """Factory: `start_server(engine="rdflib", service_allow="http://…")` runs `guian-kg serve` on a free port
    with those settings as flags (and the test defaults below), waits until it is ready, and stops it at the
    end of the module, even on failure."""
    started: list[Server] = []

    def start(**settings: Any) -> Server:
        port = free_port()
        flags = {
            "host": "127.0.0.1",
            "port": port,
            "workers": 1,
            "threads": 8,
            "query_workers": 3,
            "cache_dir": e2e_cache,
            **settings,
        }
        command = [sys.executable, "-m", "service.cli", "serve"]
        for name, value in flags.items():
            if value is not None:
                text = " ".join(value) if isinstance(value, tuple | list) else str(value)
                command.append(f"--{name.replace('_', '-')}={text}")
        log = tmp_path_factory.mktemp("server") / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUIAN_KG_")}
        server = Server(f"http://127.0.0.1:{port}", spawn(command, log, env), log)
        started.append(server)
        wait_ready(server.base + "/readyz", server.process, log)
        return server

    yield start
    for server in started:
        stop(server.process)


# --- Oxigraph server ----------------------------------------------------------------------------------------


def oxigraph_binary() -> str | None:
    """The `oxigraph` command of the PyPI package `oxigraph` (next to this Python, or on PATH)."""
    beside = Path(sys.executable).parent / "oxigraph"
    return str(beside) if beside.exists() else shutil.which("oxigraph")


@dataclass
class Oxigraph:
    """A running `oxigraph serve` process."""

    base: str
    process: subprocess.Popen
    log: Path

    @property
    def query(self) -> str:
        return self.base + "/query"

    @property
    def update(self) -> str:
        return self.base + "/update"

    @property
    def store(self) -> str:
        return self.base + "/store"

    def load_turtle(self, path: Path, graph: str | None = None) -> None:
        """Load a Turtle file into the default graph (or `graph`) through the Graph Store Protocol."""
        target = {"graph": graph} if graph else {"default": ""}
        response = requests.post(
            self.store, params=target, data=path.read_bytes(), headers={"Content-Type": "text/turtle"}, timeout=30
        )
        assert response.status_code in (200, 201, 204), response.text


@pytest.fixture(scope="module")
def start_oxigraph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Oxigraph]]:
    """Factory: `start_oxigraph(union_default_graph=True, data=PARTNER_DATA, timeout_s=5)` runs `oxigraph serve`
    (a fresh on-disk store) on a free port; stopped at the end of the module."""
    binary = oxigraph_binary()
    require(binary, "Oxigraph server (the PyPI package oxigraph)")
    assert binary is not None
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    VERSIONS["Oxigraph server"] = version.removeprefix("oxigraph ")
    started: list[Oxigraph] = []

    def start(union_default_graph: bool = False, data: Path | None = None, timeout_s: int | None = None) -> Oxigraph:
        port = free_port()
        folder = tmp_path_factory.mktemp("oxigraph")
        command = [binary, "serve", "--location", str(folder / "db"), "--bind", f"127.0.0.1:{port}"]
        if union_default_graph:
            command.append("--union-default-graph")
        if timeout_s is not None:
            command.append(f"--timeout-s={timeout_s}")
        peer = Oxigraph(f"http://127.0.0.1:{port}", spawn(command, folder / "log"), folder / "log")
        started.append(peer)
        wait_ready(peer.query + "?query=ASK%7B%7D", peer.process, peer.log, timeout=30)
        if data is not None:
            peer.load_turtle(data)
        return peer

    yield start
    for peer in started:
        stop(peer.process)


# --- Comunica ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def comunica() -> Callable[[list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """Runs Comunica jobs `[{"name", "query", "sources"}]` in one Node process (see peers/comunica.cjs) and
    returns each job's rows by name; a job that failed fails the test with Comunica's message."""
    node = shutil.which("node")
    require(node, "Node.js")
    require(COMUNICA_PACKAGE.exists(), "Comunica (npm ci --prefix tests/e2e/peers)")
    assert node is not None
    VERSIONS["Node.js"] = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    VERSIONS["Comunica @comunica/query-sparql"] = json.loads(COMUNICA_PACKAGE.read_text())["version"]

    def run(jobs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        done = subprocess.run(
            [node, str(COMUNICA_RUNNER)], input=json.dumps({"jobs": jobs}), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-4000:]
        output = json.loads(done.stdout)
        failed = {r["name"]: r["error"] for r in output["results"] if "error" in r}
        assert not failed, failed
        return {r["name"]: r["bindings"] for r in output["results"]}

    return run


# --- a recording proxy -------------------------------------------------------------------------------------


@dataclass
class Seen:
    """One request that went through a Recorder, and what it was answered."""

    method: str
    path: str
    content_type: str
    accept: str
    query: str
    status: int = 0
    response_type: str = ""


@dataclass
class Recorder:
    """A loopback reverse proxy in front of an endpoint: every request is forwarded unchanged (Host included,
    so a service description names the proxy) and recorded in `seen`."""

    base: str
    target: str
    seen: list[Seen] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path

    def queries(self) -> list[Seen]:
        """The requests that carried a query."""
        return [s for s in self.seen if s.query]


def _query_of(handler: BaseHTTPRequestHandler, body: bytes) -> str:
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
    content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        params.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
    elif content_type == "application/sparql-query":
        return body.decode("utf-8", "replace")
    return (params.get("query") or [""])[0]


def _proxy_handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Seen(
                self.command,
                self.path,
                self.headers.get("Content-Type") or "",
                self.headers.get("Accept") or "",
                _query_of(self, body),
            )
            recorder.seen.append(seen)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
            target = urllib.parse.urlsplit(recorder.target)  # read per request: a test may set it after the start
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
            finally:
                connection.close()
            seen.status, seen.response_type = answer.status, answer.getheader("Content-Type") or ""
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("connection", "content-length", "transfer-encoding", "date", "server"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_HEAD = _forward

    return Handler


@pytest.fixture(scope="module")
def start_recorder() -> Iterator[Callable[[str], Recorder]]:
    """Factory: `start_recorder("http://127.0.0.1:PORT")` puts a recording proxy in front of that endpoint."""
    servers: list[ThreadingHTTPServer] = []

    def start(target: str) -> Recorder:
        server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        recorder = Recorder(f"http://127.0.0.1:{server.server_address[1]}", target.rstrip("/"))
        server.RequestHandlerClass = _proxy_handler(recorder)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return recorder

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- the versions of the clients and peers, in the test output ------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _python_client_versions() -> None:
    import pyoxigraph
    import rdflib
    import SPARQLWrapper

    VERSIONS["SPARQLWrapper"] = SPARQLWrapper.__version__
    VERSIONS["rdflib (SPARQLStore, SERVICE)"] = rdflib.__version__
    VERSIONS["pyoxigraph (embedded engine)"] = pyoxigraph.__version__


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the exact version of every client and peer the e2e tests ran against."""
    if VERSIONS:
        terminalreporter.section("e2e clients and peers")
        for name, version in sorted(VERSIONS.items()):
            terminalreporter.write_line(f"{name}: {version}")


@pytest.fixture(name="free_port", scope="session")
def _free_port_fixture() -> Callable[[], int]:
    """`free_port` as a fixture, for test modules (they cannot import this conftest)."""
    return free_port


# --- Virtuoso (Debian's virtuoso-opensource-7-bin) ---------------------------------------------------------


@dataclass
class Virtuoso:
    """A running `virtuoso-t` whose SPARQL endpoint (/sparql) takes queries and updates."""

    base: str
    process: subprocess.Popen
    log: Path

    @property
    def sparql(self) -> str:
        return self.base + "/sparql"


@pytest.fixture(scope="module")
def virtuoso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Virtuoso]:
    """A fresh Virtuoso on free loopback ports, its SPARQL user allowed to update; stopped after the module."""
    binary, isql = virtuoso_commands()
    require(binary and isql, "Virtuoso (apt-get install virtuoso-opensource-7-bin)")
    assert binary is not None and isql is not None
    VERSIONS["Virtuoso (Debian)"] = virtuoso_version(binary)
    folder = tmp_path_factory.mktemp("virtuoso")
    sql_port, http_port = free_port(), free_port()
    ini = write_virtuoso_ini(folder, sql_port, http_port)
    log = folder / "stdout.log"
    peer = Virtuoso(f"http://127.0.0.1:{http_port}", spawn([binary, "+configfile", str(ini), "+foreground"], log), log)
    try:
        wait_ready(peer.sparql + "?query=ASK%7B%7D", peer.process, log, timeout=90)
        grant_sparql_update(isql, sql_port)
        yield peer
    finally:
        stop(peer.process)
