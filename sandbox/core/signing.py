"""Signed, expiring tokens (HS256 JWTs) for hosted pages: widget links, consent journeys, SCA redirects.

The key derives from the seed, so the same seed gives the same URLs (byte-identical responses) while a tampered or
forged token still fails verification. Expiry is checked on the sandbox clock.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime


class InvalidToken(Exception):
    """Malformed, forged, tampered or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, seed_source):
        self._seed = seed_source  # callable -> int (the sandbox seed, read per use)

    def _key(self, purpose: str) -> bytes:
        return hashlib.sha256(f"provider-sandbox:{purpose}:{self._seed()}".encode()).digest()

    def encode(self, claims: dict, purpose: str) -> str:
        """A compact JWT (HS256) over ``claims``; ``purpose`` separates keys (a widget token is no SCA token)."""
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        signature = hmac.new(self._key(purpose), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def decode(self, token: str | None, purpose: str, now: datetime | None = None) -> dict:
        """The claims of a genuine token; InvalidToken when malformed, not ours, or past ``exp`` at ``now``."""
        try:
            header, payload, signature = (token or "").split(".")
            expected = hmac.new(self._key(purpose), f"{header}.{payload}".encode(), hashlib.sha256).digest()
            # compare the text, not decoded bytes: lenient base64 would accept altered unused trailing bits
            if not hmac.compare_digest(_b64(expected), signature):
                raise InvalidToken("signature mismatch")
            claims = json.loads(_unb64(payload))
        except InvalidToken:
            raise
        except (ValueError, TypeError) as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        if not isinstance(claims, dict):
            raise InvalidToken("malformed claims")
        if now is not None and "exp" in claims and now.timestamp() >= float(claims["exp"]):
            raise InvalidToken("expired")
        return claims
