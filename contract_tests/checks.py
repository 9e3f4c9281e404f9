"""Checks: small functions named after the property they assert (schemathesis style). A failure is an
AssertionError subclass named after the symptom, carrying the operation and a curl line that reproduces it."""
from __future__ import annotations

from sandbox.core.context import schemas
from sandbox.core.validation import schema_id


class ContractViolation(AssertionError):
    def __init__(self, result, message: str):
        super().__init__(f"{result.operation} {result.method} {result.url} -> {result.status}: {message}\n"
                         f"reproduce: {result.curl()}\n"
                         f"body: {result.text[:600]}")
        self.result = result


class ResponseSchemaViolation(ContractViolation):
    pass


class ServerError(ContractViolation):
    pass


class UnexpectedStatus(ContractViolation):
    pass


class ErrorEnvelopeViolation(ContractViolation):
    pass


def not_a_server_error(result) -> None:
    if result.status >= 500:
        raise ServerError(result, "5xx")


def status_in(result, *expected: int) -> None:
    if result.status not in expected:
        raise UnexpectedStatus(result, f"expected one of {expected}")


def response_schema_conformance(result) -> None:
    """2xx bodies match ``<op>.response``; 4xx/5xx bodies match the provider's ``error`` schema."""
    provider, name = result.operation.split(".", 1)
    sid = schema_id(provider, f"{name}.response" if result.status < 400 else "error")
    registry = schemas()
    if not registry.has(sid):
        raise ResponseSchemaViolation(result, f"no schema {sid}")
    try:
        body = result.json
    except ValueError:
        raise ResponseSchemaViolation(result, "body is not JSON") from None
    errors = registry.errors(sid, body)
    if errors:
        raise ResponseSchemaViolation(result, f"{errors[0]['pointer']}: {errors[0]['message']}")


def provider_error(result, status: int, expected_body: dict | None = None) -> None:
    """An error in the provider's envelope with exactly ``status`` (and body, when given)."""
    status_in(result, status)
    response_schema_conformance(result)
    if expected_body is not None and result.json != expected_body:
        raise ErrorEnvelopeViolation(result, f"expected {expected_body}")
