"""Error hierarchy. Services raise these; each provider renders them into its own envelope (providers/*/errors.py).

Status codes live here only. ``kind`` is a neutral name a provider maps to its own code or text.
"""
from __future__ import annotations


class SandboxError(Exception):
    status = 500
    kind = "internal"
    default_message = "Internal server error"

    def __init__(self, message: str | None = None, *, kind: str | None = None, details: dict | None = None,
                 status: int | None = None, headers: dict | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.details = details or {}
        self.headers = headers or {}   # e.g. Retry-After on a 429; added to the rendered response
        if kind:
            self.kind = kind
        if status:
            self.status = status


class BadRequest(SandboxError):
    status, kind, default_message = 400, "bad_request", "Bad request"


class MalformedBody(BadRequest):
    kind, default_message = "malformed_body", "Request body is not valid JSON"


class ValidationFailed(BadRequest):
    """A request violated its operation's schema. ``errors``: [{pointer, field, message, validator}], best first."""

    kind = "validation"

    def __init__(self, errors: list[dict], message: str | None = None):
        super().__init__(message or (errors[0]["message"] if errors else "Invalid request"))
        self.errors = errors


class Unauthorized(SandboxError):
    status, kind, default_message = 401, "unauthorized", "Unauthorized"


class Forbidden(SandboxError):
    status, kind, default_message = 403, "forbidden", "Forbidden"


class NotFound(SandboxError):
    status, kind, default_message = 404, "not_found", "Not found"


class MethodNotAllowed(SandboxError):
    status, kind, default_message = 405, "method_not_allowed", "Method not allowed"


class Conflict(SandboxError):
    status, kind, default_message = 409, "conflict", "Conflict"


class PayloadTooLarge(SandboxError):
    status, kind, default_message = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(SandboxError):
    status, kind, default_message = 415, "unsupported_media_type", "Unsupported content type"


class Unprocessable(SandboxError):
    status, kind, default_message = 422, "unprocessable", "Unprocessable entity"


class Locked(SandboxError):
    status, kind, default_message = 423, "locked", "Resource locked"


class TooManyRequests(SandboxError):
    status, kind, default_message = 429, "rate_limited", "Too many requests"


class InternalError(SandboxError):
    status, kind, default_message = 500, "internal", "Internal server error"


class Accepted(SandboxError):
    """Not an error for the client: the request was accepted but its result is not ready (e.g. Finpass 202)."""

    status, kind, default_message = 202, "accepted", "Accepted; the result is not ready yet"
