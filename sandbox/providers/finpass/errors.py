"""Finpass error envelopes (finpass.md section 3) and error classes, one per documented code family.

Style A (AA, BSA, multi-bureau): {"data": null, "status_code": N, "success": false, "message", "message_code"}.
Style B (corporate, EPFO, ITR, AA-BSA): {"success": false, "message", "error_code"}.
401 on every endpoint: the confirmed body of section 2. HTTP status and ``status_code`` always agree.
"""
from __future__ import annotations

import re

from ...core.errors import SandboxError, ValidationFailed

UNAUTHORIZED_MESSAGE = "Unauthorized access. Invalid or missing API credentials."
# style B error_code per status (section 3: INVALID_INPUT and INVALID_CREDENTIALS documented, the rest inferred)
ERROR_CODES = {400: "INVALID_INPUT", 401: "INVALID_CREDENTIALS", 403: "FORBIDDEN", 404: "NOT_FOUND",
               405: "METHOD_NOT_ALLOWED", 409: "JOB_NOT_COMPLETED", 413: "PAYLOAD_TOO_LARGE",
               422: "CONSENT_REQUIRED", 429: "RATE_LIMITED", 500: "INTERNAL_ERROR"}
# style A message_code per core error kind (inferred where section 3 gives none)
MESSAGE_CODES = {"not_found": "not_found", "method_not_allowed": "method_not_allowed",
                 "payload_too_large": "payload_too_large", "unsupported_media_type": "invalid_content_type",
                 "malformed_body": "invalid_json", "bad_request": "bad_request", "rate_limited": "rate_limited",
                 "internal": "internal_error", "forbidden": "forbidden", "missing_header": "missing_header"}


class FinpassError(SandboxError):
    """A Finpass error: ``code`` is the style A ``message_code``, ``error_code`` the style B code (default: by
    status); ``data`` is rendered as style A ``data`` (e.g. the pending body of a 202)."""

    status, kind, default_message = 400, "bad_request", "Bad request"
    code = "bad_request"
    error_code: str | None = None

    def __init__(self, message: str | None = None, *, code: str | None = None, error_code: str | None = None,
                 status: int | None = None, data=None, headers: dict | None = None):
        super().__init__(message, status=status, headers=headers)
        self.code = code or self.code
        self.error_code = error_code or self.error_code
        self.data = data


class InvalidInput(FinpassError):
    status, code, error_code, default_message = 400, "invalid_input", "INVALID_INPUT", "Invalid input"


class NotFoundError(FinpassError):
    status, code, error_code, default_message = 404, "client_not_found", "NOT_FOUND", "Resource not found"


class NotReady(FinpassError):
    status, code, error_code, default_message = 409, "not_ready", "JOB_NOT_COMPLETED", "Result not ready yet"


class Unprocessable(FinpassError):
    status, code, error_code, default_message = 422, "unprocessable", "CONSENT_REQUIRED", "Unprocessable request"


class Pending(FinpassError):
    """202 while data is being fetched (AA fetch-json-report, finpass.md section 4): not a failure."""

    status, code, default_message = 202, "data_not_ready", "Data is being fetched, please retry"


def _field_message(err: ValidationFailed) -> tuple[str, str]:
    first = err.errors[0]
    field = first["field"] or first["pointer"].rsplit("/", 1)[-1] or "body"
    # message_code is snake_case (section 3); a client-chosen key may be anything, so only a safe name is used
    name = re.sub(r"[^a-z0-9_]+", "_", field.lower()).strip("_")
    name = name if re.match(r"^[a-z][a-z0-9_]{0,60}$", name) else "input"
    if first["validator"] == "required":
        return f"{field} is required", f"{name}_required"
    return f"Invalid {field}: {first['message']}", f"invalid_{name}"


def render(err: SandboxError, op) -> tuple[dict, int]:
    """Render any error in the envelope of the operation's style (``Op.envelope``: "A" or "B")."""
    status = err.status if err.status in ERROR_CODES or err.status == 202 else (400 if err.status < 500 else 500)
    if err.status == 415:
        status = 400
    if status == 401:
        return {"status_code": 401, "success": False, "message": UNAUTHORIZED_MESSAGE,
                "message_code": "unauthorized"}, 401
    message, code = err.message, MESSAGE_CODES.get(err.kind, err.kind)
    if isinstance(err, ValidationFailed):
        message, code = _field_message(err)
    elif isinstance(err, FinpassError):
        code = err.code
    if status >= 500:
        message, code = "Internal server error", "internal_error"
    style = op.envelope if op is not None else "A"
    if style == "B":
        error_code = (err.error_code if isinstance(err, FinpassError) and err.error_code else None) \
            or ERROR_CODES.get(status, "INVALID_INPUT")
        return {"success": status < 400, "message": message, "error_code": error_code}, status
    data = err.data if isinstance(err, FinpassError) else None
    return {"data": data, "status_code": status, "success": status < 400, "message": message,
            "message_code": code}, status
