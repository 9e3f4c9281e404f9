"""The store's secret key, and what derives from it: signed expiring page tokens (HS256 JWTs) and signed URLs.

Credentials never derive from the public seed (anyone who knows the seed could compute them). The secret key is
random per store by default, generated once and kept in the store, so every worker and every restart agrees; a full
reset keeps it. ``SECRET_KEY`` (``SANDBOX_SECRET_KEY``) sets it for byte-identical runs. With a random key, each
tenant also gets a random *epoch* that a reset replaces, so a reset never issues the same strings again and kills
the old ones; with a configured key the epoch is constant, so the same seed, key and calls on a frozen clock give
the same strings, resets included. Expiry is always checked on the sandbox clock.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timezone
from typing import Callable, Mapping
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from . import memo

_GLOBAL = "_sandbox"           # core.clock.GLOBAL (not imported: signing is used by clock-free code too)
_CONFIG, _EPOCHS = "config", "signing.epochs"
_KEY = "secret_key"
_NO_TENANT = "*"


class InvalidToken(Exception):
    """Malformed, forged, tampered or expired."""


class ExpiredToken(InvalidToken):
    """Genuine, but past its expiry on the sandbox clock."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecretKey:
    """The root of every credential and signature: random per store (kept in the store) or configured."""

    def __init__(self, store=None, configured: str | bytes | None = None):
        self.store = store
        if isinstance(configured, str):
            configured = configured.encode()
        self._configured = hashlib.sha256(b"provider-sandbox:" + configured).digest() if configured else None
        if self._configured is None and store is None:
            raise ValueError("a random secret key needs a store to live in")

    @property
    def configured(self) -> bool:
        """True when set by SECRET_KEY: credentials are then byte-identical for the same seed, key and calls."""
        return self._configured is not None

    def root(self) -> bytes:
        """The 32-byte key; the first worker to need a random one creates it (first writer wins)."""
        if self._configured is not None:
            return self._configured

        def load():
            found = self.store.get(_GLOBAL, _CONFIG, _KEY)
            if found is None:
                self.store.add(_GLOBAL, _CONFIG, _KEY, {"key": secrets.token_hex(32)})
                found = self.store.get(_GLOBAL, _CONFIG, _KEY)
            return bytes.fromhex(found["key"])
        return memo.cached(("secret", _KEY), load)

    def record(self) -> dict | None:
        """The stored record of a random key (to put back after a full reset), None when configured or unset."""
        return None if self.configured else self.store.get(_GLOBAL, _CONFIG, _KEY)

    def restore(self, record: dict | None) -> None:
        if record:
            self.store.put(_GLOBAL, _CONFIG, _KEY, record)
        memo.forget(("secret", _KEY))

    def epoch(self, tenant: str | None, create: bool = True) -> str | None:
        """The tenant's epoch: "" with a configured key; else random, replaced by each reset. ``create=False``
        (verifying) gives None for a tenant that has none, so a forged tenant name never writes to the store."""
        if self.configured:
            return ""
        name = tenant or _NO_TENANT

        def load():
            found = self.store.get(_GLOBAL, _EPOCHS, name)
            if found is None and create:
                self.store.add(_GLOBAL, _EPOCHS, name, {"epoch": secrets.token_hex(16)})
                found = self.store.get(_GLOBAL, _EPOCHS, name)
            return found["epoch"] if found else None
        value = memo.cached(("secret", "epoch", name), load)
        if value is None:
            memo.forget(("secret", "epoch", name))   # do not remember "none yet": a signing may create it next
        return value

    def forget_tenant(self, tenant: str) -> None:
        """A tenant reset: the next credential or page token of ``tenant`` starts a new epoch."""
        if not self.configured:
            self.store.delete(_GLOBAL, _EPOCHS, tenant)
        memo.forget(("secret", "epoch", tenant))

    def derive(self, *parts, tenant: str | None = None, create: bool = True) -> bytes | None:
        """HMAC-SHA256 of ``parts`` under the root key and ``tenant``'s epoch (None: no epoch yet and not created)."""
        epoch = self.epoch(tenant, create)
        if epoch is None:
            return None
        message = "\x1f".join(map(str, (*parts, tenant or _NO_TENANT, epoch))).encode()
        return hmac.new(self.root(), message, hashlib.sha256).digest()


class Signer:
    """HS256 page tokens and signed URLs under the store's secret key (``SecretKey``, or fixed bytes in tests)."""

    def __init__(self, secret: SecretKey | bytes | str):
        self.secret = secret if isinstance(secret, SecretKey) else SecretKey(configured=secret)

    def _key(self, purpose: str, tenant: str | None, create: bool = True) -> bytes | None:
        return self.secret.derive("sign", purpose, tenant=tenant, create=create)

    def _sign(self, signing_input: str, purpose: str, tenant: str | None, create: bool = True) -> str | None:
        key = self._key(purpose, tenant, create)
        return None if key is None else _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())

    def encode(self, claims: dict, purpose: str) -> str:
        """A compact JWT (HS256) over ``claims``, which must carry ``exp`` (every page token expires); ``purpose``
        separates keys (a widget token is no SCA token) and the ``tenant`` claim binds the tenant's epoch."""
        if not isinstance(claims.get("exp"), (int, float)) or isinstance(claims.get("exp"), bool):
            raise ValueError("a signed token needs a numeric exp claim: every page token expires")
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        signing_input = f"{header}.{payload}"
        return f"{signing_input}.{self._sign(signing_input, purpose, _tenant(claims))}"

    def decode(self, token: str | None, purpose: str, now: datetime | None = None) -> dict:
        """The claims of a genuine token; InvalidToken when malformed, not ours, without ``exp``, or past ``exp``
        at ``now`` (ExpiredToken)."""
        try:
            header, payload, signature = (token or "").split(".")
            claims = json.loads(_unb64(payload))
            if not isinstance(claims, dict):
                raise InvalidToken("malformed claims")
            expected = self._sign(f"{header}.{payload}", purpose, _tenant(claims), create=False)
            # compare the text, not decoded bytes: lenient base64 would accept altered unused trailing bits
            if expected is None or not hmac.compare_digest(expected, signature):
                raise InvalidToken("signature mismatch")
            exp = float(claims["exp"])
        except InvalidToken:
            raise
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        if now is not None and now.timestamp() >= exp:
            raise ExpiredToken("expired")
        return claims

    # --- pre-signed URLs (download links: Open Finance report PDF; Finpass and finoOS files later) ---------------
    def sign_url(self, url: str, *, expires: int, tenant: str | None = None, purpose: str = "download") -> str:
        """``url`` with ``tenant``, ``expires`` (unix seconds) and ``signature`` appended, as pre-signed object
        URLs are: the signature covers the path and every query parameter, so nothing can be changed."""
        parts = urlsplit(url)
        params = [*_pairs(parts.query), *([("tenant", tenant)] if tenant is not None else []),
                  ("expires", str(int(expires)))]
        signature = self._url_signature(unquote(parts.path), params, purpose, tenant, create=True)
        return urlunsplit(parts._replace(query=urlencode([*params, ("signature", signature)])))

    def verify_url(self, path: str, query: Mapping[str, str], *, purpose: str = "download",
                   now: datetime | Callable[[str | None], datetime] | None = None) -> dict:
        """The signed parameters of a genuine link (``signature`` removed); InvalidToken when missing or tampered,
        ExpiredToken at or after ``expires`` (``now``: an instant, or a function of the link's tenant)."""
        params = {k: v for k, v in query.items() if k != "signature"}
        signature, tenant = query.get("signature"), params.get("tenant")
        if not isinstance(signature, str) or "expires" not in params:
            raise InvalidToken("not a signed link")
        expected = self._url_signature(path, list(params.items()), purpose, tenant, create=False)
        if expected is None or not hmac.compare_digest(expected, signature):
            raise InvalidToken("signature mismatch")
        try:
            expires = int(params["expires"])
        except ValueError:
            raise InvalidToken("malformed expires") from None
        at = now(tenant) if callable(now) else now
        if at is not None and at.timestamp() >= expires:
            raise ExpiredToken("expired")
        return params

    def _url_signature(self, path: str, params: list, purpose: str, tenant: str | None, create: bool) -> str | None:
        canonical = path + "?" + urlencode(sorted((str(k), str(v)) for k, v in params))
        return self._sign(canonical, f"url:{purpose}", tenant, create)


def _tenant(claims: dict) -> str | None:
    tenant = claims.get("tenant")
    return tenant if isinstance(tenant, str) else None


def _pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl
    return parse_qsl(query, keep_blank_values=True)


def expires_at(now: datetime, ttl: float) -> int:
    """``now + ttl`` as whole unix seconds (for ``exp`` claims and ``expires`` parameters)."""
    return int(now.astimezone(timezone.utc).timestamp() + ttl)


_S3_MESSAGES = {"AccessDenied": "Access Denied", "SignatureDoesNotMatch": (
    "The request signature we calculated does not match the signature you provided. Check your key and signing "
    "method.")}


def presigned_error(code: str, message: str | None = None, **details) -> bytes:
    """An S3-style XML error body (``<Error><Code>…``), as an object store answers a bad or expired pre-signed URL."""
    from xml.sax.saxutils import escape
    fields = [("Code", code), ("Message", message or _S3_MESSAGES.get(code, code)), *details.items()]
    inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'.encode()
