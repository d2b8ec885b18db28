"""One exception family; every error a client can see carries a stable code and an HTTP status."""

from __future__ import annotations

from typing import Any

PROBLEM_TYPE_BASE = "https://w3id.org/guian-kg/problems/"


class GuianError(Exception):
    """Base of every error the service reports to a client as application/problem+json."""

    status = 500
    code = "internal-error"
    title = "Internal error"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem object for this error."""
        body = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        body.update(self.extra)
        return body


class ConfigError(GuianError):
    code, status, title = "config", 500, "Invalid configuration"


class BadRequestError(GuianError):
    code, status, title = "bad-request", 400, "Bad request"


class QuerySyntaxError(BadRequestError):
    code, title = "query-syntax", "SPARQL syntax error"


class UpdateSyntaxError(BadRequestError):
    code, title = "update-syntax", "SPARQL Update syntax error"


class RDFSyntaxError(BadRequestError):
    code, title = "rdf-syntax", "Malformed RDF"


class UpdateFailedError(BadRequestError):
    code, title = "update-failed", "SPARQL Update failed"


class InvalidParameterError(BadRequestError):
    code, title = "invalid-parameter", "Invalid parameter"


class UnauthorizedError(GuianError):
    code, status, title = "unauthorized", 401, "Authentication required"


class ForbiddenError(GuianError):
    code, status, title = "forbidden", 403, "Forbidden"


class ReadOnlyError(ForbiddenError):
    code, title = "read-only", "The service is read-only"


class ServiceForbiddenError(ForbiddenError):
    code, title = "service-forbidden", "SERVICE endpoint not allowed"


class LoadForbiddenError(ForbiddenError):
    code, title = "load-forbidden", "LOAD is not allowed"


class ReadOnlyGraphError(ForbiddenError):
    code, title = "read-only-graph", "This graph cannot be written"


class SourceReadOnlyError(ForbiddenError):
    code, status, title = "source-read-only", 403, "The source data is read-only"


class NotFoundError(GuianError):
    code, status, title = "not-found", 404, "Not found"


class MethodNotAllowedError(GuianError):
    code, status, title = "method-not-allowed", 405, "Method not allowed"


class NotAcceptableError(GuianError):
    code, status, title = "not-acceptable", 406, "Not acceptable"


class NotXMLRepresentableError(GuianError):
    code, status, title = "not-representable-in-xml", 406, "Not representable in XML"


class RequestTimeoutError(GuianError):
    code, status, title = "request-timeout", 408, "Request body too slow"


class PayloadTooLargeError(GuianError):
    code, status, title = "payload-too-large", 413, "Payload too large"


class URITooLongError(GuianError):
    code, status, title = "uri-too-long", 414, "URI too long"


class HeaderTooLargeError(GuianError):
    code, status, title = "header-too-large", 431, "Request header fields too large"


class UnsupportedMediaTypeError(GuianError):
    code, status, title = "unsupported-media-type", 415, "Unsupported media type"


class ResultTooLargeError(GuianError):
    code, status, title = "result-too-large", 422, "Result too large"


class UpdateTooLargeError(GuianError):
    code, status, title = "update-too-large", 422, "Update too large"


class QueryUnsupportedError(GuianError):
    code, status, title = "query-unsupported", 422, "Query not supported by this engine"


class RemoteServiceError(GuianError):
    code, status, title = "service-error", 502, "Remote SPARQL endpoint failed"


class NotImplementedYetError(GuianError):
    code, status, title = "not-implemented", 501, "Not implemented"


class QueryTimeoutError(GuianError):
    code, status, title = "query-timeout", 503, "Query time limit reached"


class QueryResourceError(GuianError):
    code, status, title = "query-resource-limit", 503, "Query exceeded its resources"


class NotReadyError(GuianError):
    code, status, title = "not-ready", 503, "Service not ready"


class UpdateTimeoutError(GuianError):
    code, status, title = "update-timeout", 503, "Update time limit reached"


class WriteBusyError(GuianError):
    code, status, title = "write-busy", 503, "Writes are busy"


class StorageError(GuianError):
    code, status, title = "storage-error", 503, "Storage unavailable"


def from_code(code: str, detail: str, extra: dict[str, Any] | None = None) -> GuianError:
    """The error of the family class with this code (GuianError itself for an unknown code)."""
    classes: dict[str, type[GuianError]] = {}
    pending: list[type[GuianError]] = [GuianError]
    while pending:
        cls = pending.pop()
        classes.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return classes.get(code, GuianError)(detail, **(extra or {}))
