"""The one HTTP client for the SPARQL endpoints we call (SERVICE, the remote store, push).

No redirects (credentials never follow one), answers capped in size, deadlines on every read.
"""

from __future__ import annotations

import base64
import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from typing import IO, Any

import pyoxigraph as ox

from service import __version__
from service.errors import (
    RemoteServiceError,
)

USER_AGENT = f"guian-kg/{__version__}"
RESULTS_ACCEPT = (
    "application/sparql-results+json, application/sparql-results+xml;q=0.9, text/tab-separated-values;q=0.8"
)
GRAPH_ACCEPT = "application/n-triples, text/turtle;q=0.9, application/n-quads;q=0.8, application/rdf+xml;q=0.5"
MAX_ANSWER_BYTES = 64 * 2**20  # one SERVICE answer
GET_LIMIT = 2000  # longer SERVICE requests are POSTed as a form
FORM = "application/x-www-form-urlencoded"
JSON = ox.QueryResultsFormat.JSON

RESULT_FORMATS: dict[str, ox.QueryResultsFormat] = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "application/xml": ox.QueryResultsFormat.XML,
    "text/xml": ox.QueryResultsFormat.XML,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
    "text/csv": ox.QueryResultsFormat.CSV,
}


# --- HTTP ---------------------------------------------------------------------------------------------------


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the 3xx error it is: the allowlist names endpoints, not where they point."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


OPENER = urllib.request.build_opener(_RefuseRedirects)


def with_credentials(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The URL without the user:password it may carry, and the headers with them as Basic authorization.

    Credentials never travel in a URL we log, and never follow a redirect: OPENER refuses every one.
    """
    parts = urllib.parse.urlsplit(url)
    if not parts.username:
        return url, headers
    token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    authorized = {**headers, "Authorization": "Basic " + base64.b64encode(token.encode()).decode()}
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), authorized


def snippet(raw: bytes, limit: int = 300) -> str:
    text = " ".join(raw.decode("utf-8", "replace").split())
    return text[:limit] + ("…" if len(text) > limit else "")


def read_capped(response: IO[bytes], deadline: float, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := response.read(65536):
        size += len(chunk)
        if size > limit:
            raise ValueError(f"answered more than {limit // 2**20} MiB")
        if time.monotonic() > deadline:
            raise TimeoutError
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_results(endpoint: str, query: str, timeout: float) -> tuple[str, bytes]:
    """The media type and body of a SELECT's answer from `endpoint`, within about `timeout` seconds.

    GET while the URL stays short, else a POSTed form (what every SPARQL 1.1 endpoint accepts); no redirects.

    Raises:
        RemoteServiceError: naming the endpoint, for a failure to connect, a time-out, a non-200 answer, or an
            answer too large.
    """
    deadline = time.monotonic() + timeout
    params = urllib.parse.urlencode({"query": query})
    headers = {"Accept": RESULTS_ACCEPT, "User-Agent": USER_AGENT}
    if len(endpoint) + len(params) < GET_LIMIT:
        url = endpoint + ("&" if "?" in endpoint else "?") + params
        request = urllib.request.Request(url, headers=headers)
    else:
        request = urllib.request.Request(endpoint, data=params.encode(), headers={**headers, "Content-Type": FORM})
    try:
        with OPENER.open(request, timeout=timeout) as response:
            return response.headers.get_content_type(), read_capped(response, deadline, MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        where = f" (redirect to {exc.headers.get('Location')!r} not followed)" if 300 <= exc.code < 400 else ""
        said = snippet(exc.read(2000)) if exc.code >= 400 else ""
        reason = f"answered HTTP {exc.code}{where}" + (f": {said}" if said else "")
        raise RemoteServiceError(f"SERVICE <{endpoint}> {reason}", endpoint=endpoint, status_code=exc.code) from None
    except (TimeoutError, urllib.error.URLError) as exc:
        if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
            detail = f"SERVICE <{endpoint}> did not answer within the {timeout:g} s SERVICE time limit"
            raise RemoteServiceError(detail, endpoint=endpoint, reason="timeout") from None
        raise RemoteServiceError(
            f"SERVICE <{endpoint}> could not be reached: {getattr(exc, 'reason', exc)}", endpoint=endpoint
        ) from None
    except (OSError, HTTPException, ValueError) as exc:
        raise RemoteServiceError(f"SERVICE <{endpoint}> failed: {exc}", endpoint=endpoint) from None


def parse_solutions(endpoint: str, media_type: str, body: bytes) -> ox.QuerySolutions:
    """A SELECT answer in any SPARQL results format.

    Raises:
        RemoteServiceError: naming the endpoint, for another media type (an HTML page, plain JSON…) or a body
            that is not what its media type says (e.g. cut off by an error after the headers).
    """
    fmt = RESULT_FORMATS.get(media_type)
    if fmt is None:
        raise RemoteServiceError(
            f"SERVICE <{endpoint}> answered {media_type or 'without a media type'}, not SPARQL results",
            endpoint=endpoint,
        )
    try:
        parsed = ox.parse_query_results(body, fmt)
    except SyntaxError as exc:
        raise RemoteServiceError(f"SERVICE <{endpoint}> sent malformed results: {exc}", endpoint=endpoint) from None
    if not isinstance(parsed, ox.QuerySolutions):
        raise RemoteServiceError(f"SERVICE <{endpoint}> answered a boolean, not solutions", endpoint=endpoint)
    return parsed


class KeepAlive:
    """One keep-alive HTTP connection to an endpoint's server (per process: a forked child opens its own),
    opened again when the server closed it while idle. Credentials in the URL become a Basic header; nothing
    follows a redirect (a 3xx is returned like any other answer)."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        self.shown, self.headers = with_credentials(endpoint, {"User-Agent": USER_AGENT})
        parts = urllib.parse.urlsplit(self.shown)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint URL: {self.shown!r}")
        self.https, self.host, self.port = parts.scheme == "https", parts.hostname, parts.port
        self.path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        self.has_query = bool(parts.query)
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._pid = os.getpid()

    def send(
        self, method: str, body: bytes, headers: dict[str, str], params: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request: the answer's status, headers and body.

        Raises:
            TimeoutError, OSError, http.client.HTTPException: the server could not be reached or did not answer.
        """
        target = self.path
        if params:
            target += ("&" if self.has_query else "?") + urllib.parse.urlencode(params)
        headers = {**self.headers, **headers, "Content-Length": str(len(body))}
        if self._pid != os.getpid():  # inherited from the parent: never share its socket
            self._conn, self._pid = None, os.getpid()
        for attempt in (1, 2):
            reused = self._conn is not None
            if self._conn is None:
                kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
                self._conn = kind(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, target, body=body, headers=headers)
                response = self._conn.getresponse()
                said = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if reused and attempt == 1:
                    continue  # the server closed the idle connection: once more on a new one
                raise
            except (OSError, http.client.HTTPException):
                self.close()
                raise
            if response.will_close:
                self.close()
            return response.status, response.msg, said
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
