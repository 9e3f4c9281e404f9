"""finX / nrich error envelope and code table (finleap.md section 4). Codes other than 1000/1008 are (inferred).

{"error": {"code": 1000, "group": "client", "description": "...", "data": {"<field>": ["<message>"]}}}
"""
from __future__ import annotations

from ...core.errors import SandboxError, ValidationFailed

# status -> (code, group, description); one table, as finleap.md s.4 asks
CODES = {
    400: (1000, "client", "Request body doesn't match input schema."),
    401: (1001, "client", "Missing, invalid or expired credentials."),
    403: (1002, "client", "Insufficient permission."),
    404: (1004, "client", "Not found."),
    405: (1005, "client", "Method not allowed."),
    413: (1010, "client", "Request entity too large."),
    423: (1008, "client", "Resource locked."),
    429: (1009, "client", "Exceeded rate limit."),
    500: (2000, "server", "We are very sorry, but something went wrong."),
}
INVALID_GRANT = (1100, "client", "Invalid grant.")
LANGUAGE_MESSAGE = "Must be one of: de, en, es, fr, ar."
# the patterns of schemas/finleap/defs/coercible_integer.json and coercible_boolean.json (kept equal by tests/providers/test_finleap_products.py)
INTEGER_PATTERN = "^ *[+-]?[0-9]{1,9} *$"
BOOLEAN_PATTERN = "^(true|false|True|False|TRUE|FALSE)$"


def field_message(error: dict) -> str:
    """The marshmallow-style message nrich puts in ``data`` for one schema violation."""
    validator, message = error["validator"], error["message"]
    if validator == "required":
        return "Missing data for required field."
    if validator == "format" and "uri" in message:
        return "Not a valid URL."
    if validator in ("enum", "const"):
        if error["field"] == "language":
            return LANGUAGE_MESSAGE
        choices = message.split(" is not one of ")[-1] if " is not one of " in message else ""
        return f"Must be one of: {choices.strip('[]').replace(chr(39), '')}." if choices else "Invalid value."
    if validator == "type":
        kind = message.rsplit(" is not of type ", 1)[-1].strip("'")
        return {"string": "Not a valid string.", "integer": "Not a valid integer.", "boolean": "Not a valid boolean.",
                "array": "Not a valid list.", "object": "Not a valid mapping type.", "number": "Not a valid number."
                }.get(kind, "Invalid type.")
    if validator in ("additionalProperties", "unevaluatedProperties"):
        return "Unknown field."
    if validator == "minimum":
        return f"Must be greater than or equal to {message.split('less than the minimum of ')[-1]}."
    if validator == "maximum":
        return f"Must be less than or equal to {message.split('greater than the maximum of ')[-1]}."
    if validator == "maxLength":
        return "Longer than maximum length."
    if validator == "surrogate":
        return "Must not contain a lone surrogate."
    if validator == "pattern":
        # string-typed integers/booleans (defs/coercible_*.json, finleap-products.md s.2): marshmallow's messages
        if message.endswith(f"'{INTEGER_PATTERN}'"):
            return "Not a valid integer."
        if message.endswith(f"'{BOOLEAN_PATTERN}'"):
            return "Not a valid boolean."
        return "String does not match expected pattern."
    return message


def render(err: SandboxError, op=None) -> tuple[dict, int]:
    """Render any sandbox error as an nrich error body."""
    status = err.status if err.status in CODES else (400 if err.status < 500 else 500)
    if err.status == 415:
        status = 400
    if err.kind == "invalid_grant":
        code, group, description = INVALID_GRANT
    else:
        code, group, description = CODES[status]
    body: dict = {"code": code, "group": group, "description": description}
    if isinstance(err, ValidationFailed):
        data: dict[str, list[str]] = {}
        for e in err.errors:
            key = e["pointer"].lstrip("/").replace("/", ".") or "_schema"
            message = field_message(e)
            if message not in data.setdefault(key, []):
                data[key].append(message)
        body["data"] = data
    elif err.details:
        body["data"] = err.details
    elif err.message != type(err).default_message:
        body["data"] = {"_schema": [err.message]}  # a clear reason beside the standard description
    if status >= 500:
        body.pop("data", None)
    return {"error": body}, status
