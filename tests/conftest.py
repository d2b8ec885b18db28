"""Shared fixtures: apps per engine built by the real factory, a client, and the one problem+json assertion."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

ENGINES = ["embedded", "rdflib"]
# The Flask test client's origin, as the public URL (absolute URLs never come from Host: service.web.origin).
TEST_CLIENT_URL = "http://localhost/"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


@pytest.fixture(scope="session", autouse=True)
def _clean_environment() -> Iterator[None]:
    """Tests see the settings they pass, never the developer's GUIAN_KG_* variables."""
    mp = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith("GUIAN_KG_"):
            mp.delenv(name)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One reasoning cache for the whole session: the closure is computed once."""
    return tmp_path_factory.mktemp("guian-kg-cache")


def _close(app: Flask) -> None:
    executor = app.extensions["guian_kg"].executor
    if executor is not None:
        executor.close()


@pytest.fixture(scope="session")
def _shared_apps(cache_dir: Path) -> Iterator[dict[str, Flask]]:
    from service.web.app import create_app

    class Apps(dict):
        def __missing__(self, engine: str) -> Flask:
            self[engine] = create_app({"cache_dir": str(cache_dir), "engine": engine, "public_url": TEST_CLIENT_URL})
            return self[engine]

    apps = Apps()
    yield apps
    for app in apps.values():
        _close(app)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine in turn: the same protocol tests pass on embedded and rdflib."""
    return request.param


@pytest.fixture
def make_app(engine: str, cache_dir: Path) -> Iterator[Callable[..., Flask]]:
    """Build an app with settings overrides (engine = the parametrised one unless given); closed afterwards."""
    from service.web.app import create_app

    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        # the Flask test client's origin, as the public URL (absolute URLs never come from Host)
        app = create_app({"cache_dir": str(cache_dir), "engine": engine, "public_url": TEST_CLIENT_URL, **overrides})
        built.append(app)
        return app

    yield build
    for app in built:
        _close(app)


@pytest.fixture
def app(engine: str, _shared_apps: dict[str, Flask]) -> Flask:
    """The default-settings app of the parametrised engine (shared by the session)."""
    return _shared_apps[engine]


@pytest.fixture
def client(app: Flask):
    """A Flask test client of `app`."""
    return app.test_client()


def assert_problem(response, status: int, code: str) -> dict[str, Any]:
    """Assert the canonical RFC 9457 problem shape with this status and code; return the problem."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "application/problem+json", response.headers.get("Content-Type")
    problem = json.loads(response.get_data(as_text=True))
    assert set(problem) >= PROBLEM_KEYS, problem
    assert problem["status"] == status
    assert problem["code"] == code, problem
    assert problem["type"].endswith("/" + code)
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["detail"], str) and problem["detail"]
    return problem


@pytest.fixture(name="assert_problem")
def _assert_problem_fixture() -> Callable[..., dict[str, Any]]:
    """`assert_problem` as a fixture, for test modules that cannot import conftest."""
    return assert_problem


@pytest.fixture
def listener() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback TCP listener that records every connection and drops it (proves no request was made)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)  # closing a socket does not wake a thread blocked in accept()
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                seen.append(b"connection")  # before closing: the client cannot return earlier

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/", seen
    stop.set()
    thread.join(5)
    server.close()
