"""finoOS error envelope (fino.md section 5): {"type": "<errorType>", "message": "<text>"}."""
from __future__ import annotations

from ...core.errors import SandboxError, ValidationFailed

INVALID_CLIENT = "Invalid client credentials"                                     # section 3 (inferred body)
UNAUTHORIZED = "Invalid authorization. Check your access tokens or tenant id and secret"   # section 3 / 5
FORBIDDEN = "Forbidden. No access to this resource"                               # section 4 (documented)
# status -> type (section 5; only invalidInput and forbidden are documented, the rest inferred)
TYPES = {400: "invalidInput", 401: "unauthorized", 403: "forbidden", 404: "notFound", 405: "methodNotAllowed",
         409: "conflict", 413: "payloadTooLarge", 415: "invalidInput", 422: "invalidInput", 423: "locked",
         429: "tooManyRequests", 451: "unavailableForLegalReasons", 500: "internalServerError"}


class FinoError(SandboxError):
    """A finoOS error with an explicit ``type`` (e.g. 422 "credentials required" keeps type invalidInput)."""

    type: str | None = None

    def __init__(self, message: str | None = None, *, type: str | None = None, status: int | None = None,
                 headers: dict | None = None):
        super().__init__(message, status=status, headers=headers)
        self.type = type or self.type


def render(err: SandboxError, op) -> tuple[dict, int]:
    """Render any error as finoOS's {type, message}."""
    status = err.status if err.status in TYPES else (400 if err.status < 500 else 500)
    if status == 415:
        status = 400   # (inferred) a body in the wrong encoding is invalid input (section 3: JSON to /auth -> 400)
    message = err.message
    if isinstance(err, ValidationFailed):
        first = err.errors[0]
        message = f"{first['pointer'].lstrip('/') or 'body'}: {first['message']}"
    elif status == 401:
        message = INVALID_CLIENT if op is not None and op.name == "authenticate" else UNAUTHORIZED
    elif status == 403 and err.message in ("Forbidden", type(err).default_message):
        message = FORBIDDEN
    elif status >= 500:
        message = "Internal server error"
    kind = err.type if isinstance(err, FinoError) and err.type else TYPES.get(status, "invalidInput")
    return {"type": kind, "message": message}, status
