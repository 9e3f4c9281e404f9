"""finoOS access tokens (fino.md section 3): Keycloak-style signed JWTs made with PyJWT.

The real ``POST /auth`` answers like a Keycloak client-credentials grant: an access token of about 2 KB, ``expires_in``
300, ``scope`` (the client's booked scopes, space-separated), ``session_state`` (UUID) and ``not-before-policy``. The
sandbox token is a genuine JWT (header ``alg``, ``typ``, ``kid``; Keycloak's claims) signed HS256 with a key derived
from the store's secret key (core/signing.py), never from the public seed. Clients treat it as opaque: the sandbox
verifies it by lookup (core/auth.py stores its digest with the expiry on the sandbox clock), so a tenant reset or the
300 s lifetime kills it whatever its signature says.
"""
from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime

import jwt

from ...core.ids import stable_seed

ALGORITHM = "HS256"
TTL = 300                    # section 3: "expires_in": 300, no refresh token
NOT_BEFORE_POLICY = 1618235966   # section 3 example: the realm's not-before policy (a fixed instant, unix seconds)
REALM = "finoos"
# Keycloak adds its own default client scopes in front of the booked ones in the token's scope claim
KEYCLOAK_SCOPES = ("profile", "email")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_key(sandbox, tenant: str) -> bytes:
    """The tenant's JWT key: HMAC-derived from the store's secret key and the tenant's epoch (a reset renews it)."""
    return sandbox.secret.derive("fino-jwt", tenant=tenant)


def key_id(key: bytes) -> str:
    """A Keycloak-looking ``kid`` (43 base64url characters) that names the key without revealing it."""
    return _b64(hashlib.sha256(b"fino-kid\x1f" + key).digest())


def service_account_id(client_id: str) -> str:
    """The ``sub`` of a client's tokens: its service-account user, a stable UUID per client id."""
    return str(uuid.UUID(int=stable_seed("fino-service-account", client_id) << 64
                         | stable_seed("fino-service-account-lo", client_id), version=4))


def make_access_token(sandbox, client: dict, scopes: list[str], *, now: datetime, jti: str, session_state: str,
                      issuer: str, client_address: str) -> str:
    """A signed access token for ``client`` with ``scopes``, issued at ``now`` (sandbox clock), expiring TTL later."""
    iat = int(now.timestamp())
    client_id = client["client_id"]
    claims = {
        "exp": iat + TTL, "iat": iat, "jti": jti, "iss": issuer,
        "aud": ["finoos-api", "account"], "sub": service_account_id(client_id), "typ": "Bearer", "azp": client_id,
        "session_state": session_state, "acr": "1", "allowed-origins": ["/*"],
        "realm_access": {"roles": [f"default-roles-{REALM}", "offline_access", "uma_authorization"]},
        "resource_access": {client_id: {"roles": ["uma_protection"]},
                            "account": {"roles": ["manage-account", "manage-account-links", "view-profile"]}},
        "scope": " ".join([*KEYCLOAK_SCOPES, *scopes]), "sid": session_state, "clientHost": client_address,
        "clientId": client_id, "email_verified": False, "tenant": client["tenant"],
        "preferred_username": f"service-account-{client_id.lower()}", "clientAddress": client_address,
    }
    key = signing_key(sandbox, client["tenant"])
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": key_id(key)})


def decode_access_token(sandbox, token: str, tenant: str, *, verify_exp: bool = False) -> dict:
    """The claims of a genuine token of ``tenant`` (tests and debugging; requests verify by lookup instead).
    Raises ``jwt.InvalidTokenError`` for a forged or foreign token."""
    key = signing_key(sandbox, tenant)
    return jwt.decode(token, key, algorithms=[ALGORITHM], audience="finoos-api",
                      options={"verify_exp": verify_exp})
