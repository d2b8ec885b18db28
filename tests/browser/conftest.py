"""A real `guian-kg serve` on loopback, Debian's Chromium driven by Playwright, and a log of every request.

Without Chromium or the playwright package the browser tests are skipped on a developer machine and fail
under CI=true, so a CI run can never pass by silently testing nothing.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from processes import free_port, in_ci, spawn, stop, wait_ready

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
LOOPBACK = "127.0.0.1"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-pings",
]


def _missing(reason: str) -> None:
    """Skip locally; fail in CI, where a missing browser means the suite is not what it claims."""
    if in_ci():
        pytest.fail(f"browser tests cannot run under CI=true: {reason}")
    pytest.skip(reason)


def _serve_command() -> list[str]:
    script = Path(sys.executable).with_name("guian-kg")
    return [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]


@pytest.fixture(scope="session")
def server(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a `guian-kg serve` process on a free loopback port, stopped at the end."""
    port = free_port()
    log = tmp_path_factory.mktemp("browser-server") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUIAN_KG_")}
    command = [
        *_serve_command(),
        "serve",
        f"--host={LOOPBACK}",
        f"--port={port}",
        "--workers=1",
        "--threads=8",
        "--query-workers=2",
        f"--cache-dir={cache_dir}",
    ]
    process = spawn(command, log, env)
    base = f"http://{LOOPBACK}:{port}"
    try:
        wait_ready(base + "/readyz", process, log, timeout=180)
        yield base
    finally:
        stop(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, with its background network features switched off."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install playwright)")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _missing("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class RequestLog:
    """Every URL the browser asked for, and what went wrong on the page (console errors, CSP reports)."""

    urls: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def foreign_hosts(self) -> set[str]:
        """Hosts other than 127.0.0.1 among the requested URLs (data: and about: URLs have none)."""
        hosts = {urlsplit(url).hostname for url in self.urls if urlsplit(url).scheme in ("http", "https", "ws", "wss")}
        return {host for host in hosts if host != LOOPBACK}


@pytest.fixture
def request_log() -> RequestLog:
    """The requests of the current test's browser context."""
    return RequestLog()


@pytest.fixture
def context(browser: Any, request_log: RequestLog) -> Iterator[Any]:
    """A fresh browser context that records every request and refuses any that would leave 127.0.0.1."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")

    def guard(route: Any) -> None:
        url = route.request.url
        request_log.urls.append(url)
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).hostname != LOOPBACK:
            request_log.blocked.append(url)
            route.abort("blockedbyclient")
        else:
            route.continue_()

    ctx.route("**/*", guard)
    ctx.on("request", lambda req: request_log.urls.append(req.url))
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any, request_log: RequestLog) -> Iterator[Any]:
    """A page of the recording context; every test also checks that nothing left loopback."""
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.on("console", lambda msg: msg.type == "error" and request_log.console_errors.append(msg.text))
    tab.on("pageerror", lambda exc: request_log.console_errors.append(str(exc)))
    yield tab
    assert not request_log.foreign_hosts(), f"requests left 127.0.0.1: {request_log.blocked}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The folder screenshots go to (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
