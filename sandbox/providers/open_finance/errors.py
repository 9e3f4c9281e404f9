"""Open Finance error envelopes (open_finance.md section 4).

Token and /v2 routes: {"type": "CLIENT_ERROR", "message": "..."}; financial-report routes:
{"message": "...", "code": "INVALID_REQUEST" | "INTERNAL_ERROR"}, except 401/403 which keep {type, message}.
"""
from __future__ import annotations

import json

from ...core.errors import SandboxError, ValidationFailed

# Texts from the API reference (open_finance.md section 4); "preform" is the provider's spelling.
UNAUTHORIZED = "Unauthorized access - Invalid access token"
FORBIDDEN = "Forbidden - Access token missing the required permissions to preform this action"
NOT_FOUND = "Route or entity not found"
INTERNAL = "Internal server error"
# Report guide: the token endpoint's 401 message is a JSON-encoded OAuth error.
TOKEN_DENIED = json.dumps({"error": "access_denied", "error_description": "Unauthorized"}, separators=(",", ":"))

_JOI_TYPES = {"string": "a string", "object": "of type object", "number": "a number", "integer": "an integer",
              "boolean": "a boolean", "array": "an array"}


def joi_message(error: dict) -> str:
    """One Joi-style message (the provider validates with Joi: '"clientSecret" is required')."""
    field = error["field"] or "value"
    validator = error["validator"]
    if validator == "required":
        return f'"{field}" is required'
    if validator in ("additionalProperties", "unevaluatedProperties"):
        return f'"{field}" is not allowed'
    if validator == "type":
        expected = error["message"].rsplit(" is not of type ", 1)[-1].strip("'")
        return f'"{field}" must be {_JOI_TYPES.get(expected, expected)}'
    if validator == "minLength":
        return f'"{field}" is not allowed to be empty'
    if validator == "maxLength":
        return f'"{field}" length must be less than or equal to the limit'
    return f'"{field}" {error["message"]}'


def render(err: SandboxError, op) -> tuple[dict, int]:
    """Render any sandbox error in the envelope the given operation uses (overlay ``envelope="report"``: the
    financial-report routes' {message, code})."""
    operation = op.id if op else None
    if op is not None and op.envelope == "report" and err.status not in (401, 403):
        if err.status >= 500:
            return {"message": "Something went wrong", "code": "INTERNAL_ERROR"}, 500
        if err.status == 413:   # refused before the route runs (body-parser), so the status survives (inferred)
            return {"message": "request entity too large", "code": "INVALID_REQUEST"}, 413
        return {"message": err.message, "code": "INVALID_REQUEST"}, 400
    if isinstance(err, ValidationFailed):
        # 400 message: a JSON-encoded array of Joi messages, one per invalid field (report guide)
        messages = list(dict.fromkeys(joi_message(e) for e in err.errors))
        return {"type": "CLIENT_ERROR", "message": json.dumps(messages, separators=(",", ":"))}, 400
    if err.status == 401:
        message = TOKEN_DENIED if operation == "open_finance.create_token" else UNAUTHORIZED
    elif err.status == 403:
        message = FORBIDDEN
    elif err.status in (404, 405):
        # Express answers an unknown method on a known path with its 404 too
        return {"type": "CLIENT_ERROR", "message": err.message if err.status == 404 and err.message != "Not found"
                else NOT_FOUND}, 404
    elif err.status >= 500:
        # (inferred) 5xx body is undocumented; keep the documented text
        return {"type": "SERVER_ERROR", "message": INTERNAL}, err.status
    else:
        message = err.message
    if err.status == 413:
        message = "request entity too large"  # body-parser's PayloadTooLargeError text
    status = 400 if err.status == 415 else err.status  # (inferred) an unparsed body surfaces as a 400
    return {"type": "CLIENT_ERROR", "message": message}, status
