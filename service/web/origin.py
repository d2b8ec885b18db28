"""Absolute URLs come from the configured public base URL, never from the request's Host header.

`--public-url` (GUIAN_KG_PUBLIC_URL) names where clients reach the service (behind a reverse proxy: the proxy's
URL); unset, it is `http://<host>:<port>/` of the settings. Every absolute URL the service writes — OpenAPI
`servers`, the service description's `sd:endpoint`, `Link`, `Location` — and the base that relative IRIs in a
request resolve against are built from it, because the WSGI environ's scheme, host and script name are set
from it before the app sees the request.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from service.config import Settings

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def public_url(settings: Settings) -> str:
    """The public base URL of the service, ending in '/'."""
    if settings.public_url:
        return settings.public_url if settings.public_url.endswith("/") else settings.public_url + "/"
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/"


class PublicOrigin:
    """WSGI middleware: the request's scheme, host and path prefix are the public URL's."""

    def __init__(self, app: WSGIApp, url: str) -> None:
        self.app = app
        parts = urllib.parse.urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.prefix = parts.path.rstrip("/")
        self.port = str(parts.port or (443 if parts.scheme == "https" else 80))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.url_scheme"] = self.scheme
        environ["HTTP_HOST"] = self.host
        environ["SERVER_NAME"] = self.host.rsplit(":", 1)[0] if not self.host.endswith("]") else self.host
        environ["SERVER_PORT"] = self.port
        environ["SCRIPT_NAME"] = self.prefix
        environ.pop("HTTP_X_FORWARDED_HOST", None)
        return self.app(environ, start_response)
