"""Authentication schemes the dispatcher resolves before (or, for credentials in the body, after) parsing.

A scheme fills the request context: the client (and so the tenant), and for tokens the end user and scopes.
Providers pick schemes by name in their overlay; the OpenAPI ``securitySchemes`` come from the same objects.
"""
from __future__ import annotations

import base64

from .errors import Forbidden, Unauthorized


def bearer_token(request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def basic_credentials(request) -> tuple[str | None, str | None]:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return (user, password) if sep else (None, None)


def scopes_of(op) -> tuple[str, ...]:
    """The scopes an operation accepts: ``Op.scope`` is one scope or a tuple of alternatives (any one grants it,
    e.g. finoOS ``banking`` or ``banking-upload``)."""
    if not op.scope:
        return ()
    return (op.scope,) if isinstance(op.scope, str) else tuple(op.scope)


class Scheme:
    """Base: ``resolve(ctx)`` authenticates the caller or raises Unauthorized / Forbidden."""

    needs_body = False   # credentials travel in the body: resolved after the body is parsed and validated
    openapi: dict | None = None

    def attribute(self, ctx) -> None:
        """Name the caller's tenant without authenticating (journal attribution); nothing by default."""

    def resolve(self, ctx) -> None:
        raise NotImplementedError

    def openapi_schemes(self, name: str) -> dict[str, dict]:
        """The OpenAPI ``securitySchemes`` a caller must satisfy together (none: the body schema documents them)."""
        return {name: self.openapi} if self.openapi else {}


class ClientScheme(Scheme):
    """Client credentials (id + secret) from wherever a subclass finds them; the client's tenant is the tenant."""

    def __init__(self, message: str | None = None):
        self.message = message

    def credentials(self, ctx) -> tuple:
        raise NotImplementedError

    def attribute(self, ctx) -> None:
        """File the request under the tenant of the client it names (no authentication: a journal attribution for
        requests refused before their credentials were checked, e.g. a token body that fails validation)."""
        client_id, _ = self.credentials(ctx)
        known = ctx.sandbox.auth.client(client_id) if isinstance(client_id, str) and client_id else None
        if known:
            ctx.tenant = known["tenant"]

    def resolve(self, ctx) -> None:
        client_id, secret = self.credentials(ctx)
        auth = ctx.sandbox.auth
        self.attribute(ctx)   # failed logins are journaled to the client they name
        client = auth.authenticate_client(client_id, secret)
        if client is None:
            raise Unauthorized(self.message)
        ctx.client, ctx.tenant = client, client["tenant"]
        needed = scopes_of(ctx.op)
        if needed and not auth.allowed_scopes(client, ctx.provider, list(needed)):
            raise Forbidden()


class Basic(ClientScheme):
    """HTTP Basic with the client id and secret (finX ``/onetime/*`` and ``/auth/token``)."""

    openapi = {"type": "http", "scheme": "basic"}

    def credentials(self, ctx):
        return basic_credentials(ctx.request)


class HeaderPair(ClientScheme):
    """Client id and secret in two headers (names case-insensitive), e.g. Finpass's x-api-key / x-api-secret."""

    def __init__(self, id_header: str, secret_header: str, message: str | None = None):
        super().__init__(message)
        self.id_header, self.secret_header = id_header, secret_header
        self.openapi = {"type": "apiKey", "in": "header", "name": id_header}

    def credentials(self, ctx):
        return ctx.request.headers.get(self.id_header), ctx.request.headers.get(self.secret_header)

    def openapi_schemes(self, name: str) -> dict[str, dict]:
        """Both headers, required together (one security requirement naming two apiKey schemes)."""
        return {name: self.openapi, f"{name}_secret": {"type": "apiKey", "in": "header", "name": self.secret_header}}


class BodyCredentials(ClientScheme):
    """Client id and secret as body fields (Open Finance's token body; finoOS's form-encoded grant)."""

    needs_body = True

    def __init__(self, id_field: str, secret_field: str, message: str | None = None):
        super().__init__(message)
        self.id_field, self.secret_field = id_field, secret_field

    def credentials(self, ctx):
        body = ctx.body if isinstance(ctx.body, dict) else {}
        return body.get(self.id_field), body.get(self.secret_field)


class Bearer(Scheme):
    """A Bearer token the provider issued through ``sandbox.auth`` (expiry on the sandbox clock, scopes)."""

    openapi = {"type": "http", "scheme": "bearer"}

    def __init__(self, kind: str = "access"):
        self.kind = kind

    def resolve(self, ctx) -> None:
        auth = ctx.sandbox.auth
        record = auth.lookup(ctx.provider, bearer_token(ctx.request), self.kind)
        if record is None:
            raise Unauthorized()
        ctx.token, ctx.tenant, ctx.user = record, record["tenant"], record["subject"]
        ctx.scopes = list(record["scopes"])
        ctx.client = auth.client(record["client_id"])
        needed = scopes_of(ctx.op)
        if needed and not set(needed) & set(ctx.scopes):
            raise Forbidden()
