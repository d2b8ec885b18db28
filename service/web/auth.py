"""Writes: the bearer token check, who wrote, and applying a write through the journal."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from flask import Response, g, request

from service.config import Settings
from service.errors import (
    GuianError,
    ReadOnlyError,
    UnauthorizedError,
)
from service.journal.records import WriteOp
from service.web.state import audit_log, state


def require_write_token(settings: Settings, authorization: str | None) -> None:
    """Let a write through only with the configured bearer token.

    Raises:
        ReadOnlyError: no update token is configured (the service is read-only).
        UnauthorizedError: a token is configured but the request's is missing or wrong.
    """
    if not settings.update_token:
        raise ReadOnlyError("this service is read-only: no update token is configured")
    scheme, _, presented = (authorization or "").partition(" ")
    # Digests of equal length: the comparison takes the same time whatever the presented token's length.
    expected = hashlib.sha256(settings.update_token.encode("utf-8")).digest()
    given = hashlib.sha256(presented.strip().encode("utf-8", "replace")).digest()
    if not hmac.compare_digest(given, expected) or scheme.lower() != "bearer":
        raise UnauthorizedError("send the update token as 'Authorization: Bearer <token>'")


def _who() -> dict[str, Any]:
    """Who sent the current request, as far as the audit log can tell (one token is shared by all writers)."""
    return {
        "remote": request.remote_addr,
        "request_id": g.get("request_id"),
        "agent": request.headers.get("User-Agent", "")[:120],
    }


def authorize_write() -> None:
    """Let the current request write only with the token (see `require_write_token`); refusals are audited."""
    try:
        require_write_token(state().settings, request.headers.get("Authorization"))
        settings = state().settings
        if settings.engine == "remote" and not settings.remote_update:
            raise ReadOnlyError("writes on the remote engine need the store's update endpoint: --remote-update URL")
    except GuianError as exc:
        audit_log.info(json.dumps({"event": "write-refused", "who": _who(), "status": exc.status, "code": exc.code}))
        raise


def apply_write(op: WriteOp) -> Response:
    """Apply a write for the current request and answer with its receipt; one audit line whatever happens.

    Raises:
        GuianError: whatever the writer raised (nothing was applied).
    """
    st = state()
    if st.writer is None:
        raise ReadOnlyError("this service is read-only: no update token is configured")
    who = _who()
    line: dict[str, Any] = {"event": "write", "who": who, **op.summary()}
    try:
        receipt = st.writer.apply(op, who)
    except GuianError as exc:
        audit_log.info(json.dumps({**line, "status": exc.status, "code": exc.code}, ensure_ascii=False))
        raise
    except Exception:
        audit_log.info(json.dumps({**line, "status": 500}, ensure_ascii=False))
        raise
    status = 201 if receipt.created else 200
    result = {
        "seq": receipt.seq,
        "data_version": receipt.data_version,
        "deleted": receipt.deleted,
        "inserted": receipt.inserted,
        "changed": receipt.changed,
    }
    audit_log.info(json.dumps({**line, "status": status, **result}, ensure_ascii=False))
    response = Response(json.dumps(result), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Data-Version"] = receipt.data_version
    return response
