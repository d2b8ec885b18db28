"""Request bodies read with a deadline, and request size limits."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Response, request

from service import errors

MAX_URL_BYTES = 16 * 1024  # longer URLs get 414 (granian drops request heads over 64 KiB: service.serve)
SLOW_READERS = 64  # bodies being read at once, per process
BODY_ERROR = "guian_kg.body_error"  # WSGI environ: why the body could not be read (raised by guard_request)


def guard_request() -> Response | None:
    """414 for an over-long URL; the error of a body that did not arrive whole in time (read by `BodyReader`)."""
    environ = request.environ
    if len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) > MAX_URL_BYTES:
        raise errors.URITooLongError(f"the URL is over {MAX_URL_BYTES} bytes; send the query with POST")
    problem = environ.get(BODY_ERROR)
    if problem is not None:
        raise problem
    return None


class BodyReader:
    """Reads request bodies whole within a deadline (`settings.body_seconds`), on threads of its own.

    The server hands the request over before its body has arrived and its read has no time limit, so the read
    runs on a pool thread while the request's thread waits at most `seconds` (slow clients get 408). One per app.
    """

    def __init__(self, seconds: float, limit: int, readers: int = SLOW_READERS) -> None:
        self.seconds = seconds
        self.limit = limit
        # Behind the connection guard (`guian-kg serve`) a request reaches the app with its body whole: read it in
        # the request's own thread, without the hand-off (see `service.web.app.behind_guard`).
        self.whole = False
        self._slots = threading.BoundedSemaphore(readers)
        self._pool = ThreadPoolExecutor(readers, thread_name_prefix="guian-kg-body")  # threads start as needed

    def read(self, environ: dict[str, Any]) -> bytes | None:
        """Read a request body into the environ and return it (None: nothing was read; a problem is left under
        BODY_ERROR)."""
        limit = self.limit
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None  # Flask answers the malformed header
        if environ["REQUEST_METHOD"] in ("GET", "HEAD", "OPTIONS") or not (declared or chunked) or declared > limit:
            return None  # no body, or one refused by its declared length where it is read (413), without reading it
        if len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) > MAX_URL_BYTES:
            return None  # refused with 414 before its body matters
        if self.whole:
            return self._keep(environ, self._read_whole(environ["wsgi.input"]))
        if not self._slots.acquire(blocking=False):
            environ[BODY_ERROR] = errors.NotReadyError("too many request bodies are arriving slowly; retry later")
            return None
        stream = environ["wsgi.input"]

        def read() -> bytes:
            try:
                return stream.read(limit + 1)
            finally:
                self._slots.release()

        try:
            body = self._pool.submit(read).result(self.seconds)
        except TimeoutError:
            # The reader stays blocked until the client sends or leaves; the slots cap how many may.
            message = f"the request body did not arrive within {self.seconds:g} s"
            environ[BODY_ERROR] = errors.RequestTimeoutError(message)
            return None
        except Exception:  # the client went away
            body = None
        return self._keep(environ, body)

    def _read_whole(self, stream: Any) -> bytes | None:
        try:
            return stream.read(self.limit + 1)
        except Exception:  # the client went away
            return None

    @staticmethod
    def _keep(environ: dict[str, Any], body: bytes | None) -> bytes | None:
        if body is None:
            environ[BODY_ERROR] = errors.BadRequestError("the request body could not be read")
            return None
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return body
