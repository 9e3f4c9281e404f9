"""API clients and tokens. Tokens expire on the sandbox clock; each client is its own tenant.

Every provider accepts the default client (``sandbox-client`` / ``sandbox-secret``); more clients, each with its
own secret, tenant and per-provider scope sets, are created through the control API. Client secrets are stored as
salted PBKDF2 hashes (shown once, when created); tokens are stored under their SHA-256 digest, with an expiry index
so ``purge_expired`` (the ticker) drops dead tokens and codes without scanning the live ones.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import logging
import secrets
from datetime import datetime, timedelta, timezone

from . import memo
from .clock import _COLL as _CLOCKS, GLOBAL, isoformat, parse_instant
from .errors import Forbidden, Unauthorized

DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"
_CLIENTS, _TOKENS, _EXPIRY = "clients", "tokens", "tokens.expiry"
_HASH_ITERATIONS = 10_000          # slows offline guessing of a leaked store; verified pairs are cached per process
_VERIFIED: dict[tuple[str, str], bool] = {}
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")   # a lone surrogate from JSON is a wrong secret, never a 500


def _digest(token: str) -> str:
    return hashlib.sha256(_b(token)).hexdigest()


def hash_secret(secret: str, salt: str | None = None, iterations: int = _HASH_ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hex>``: what the store keeps instead of a client secret."""
    salt = salt or secrets.token_hex(16)
    derived = hashlib.pbkdf2_hmac("sha256", _b(secret), _b(salt), iterations).hex()
    return f"pbkdf2_sha256${iterations}${salt}${derived}"


def check_secret(stored: str, presented: str) -> bool:
    """Constant-time check of ``presented`` against a ``hash_secret`` value (successes cached per process)."""
    memo_key = (stored, hashlib.sha256(_b(presented)).hexdigest())   # never the secret itself
    if _VERIFIED.get(memo_key):
        return True
    try:
        scheme, iterations, salt, expected = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        ok = hmac.compare_digest(hash_secret(presented, salt, int(iterations)).encode(), stored.encode())
    except ValueError:
        return False
    if ok:
        if len(_VERIFIED) > 4096:
            _VERIFIED.clear()
        _VERIFIED[memo_key] = True
    return ok


@functools.cache
def _default_hash() -> str:
    return hash_secret(DEFAULT_CLIENT_SECRET, salt="sandbox-default")


def public_client(record: dict) -> dict:
    """A client as the control API may list it: never its secret or hash."""
    return {k: v for k, v in record.items() if k not in ("client_secret", "secret_hash")}


def _expiry(now: datetime, ttl: float) -> datetime:
    try:
        return min(now + timedelta(seconds=ttl), _LATEST)
    except OverflowError:   # a token issued near year 9999 lives until the end of 9999
        return _LATEST


PURGE_EVERY = 16   # every this many tokens issued by a process, it purges up to PURGE_BATCH expired ones
PURGE_BATCH = 32   # twice the issue rate: under any sustained load the expired tokens go as fast as new ones come


class Auth:
    def __init__(self, store, clock, ids):
        self.store, self.clock, self.ids = store, clock, ids
        self._issued = itertools.count(1)

    # --- clients ---------------------------------------------------------------------------------
    def default_client(self) -> dict:
        return {"client_id": DEFAULT_CLIENT_ID, "secret_hash": _default_hash(), "tenant": DEFAULT_CLIENT_ID,
                "scopes": None}

    def client(self, client_id: str) -> dict | None:
        """The client record (``scopes`` None = every scope of every provider), or None. Read once per request."""
        def load():
            found = self.store.get(GLOBAL, _CLIENTS, client_id)
            return self.default_client() if found is None and client_id == DEFAULT_CLIENT_ID else found
        return memo.cached(("client", client_id), load)

    def authenticate_client(self, client_id, client_secret) -> dict | None:
        """The client if the id/secret pair is right (constant-time compare), else None."""
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            return None
        record = self.client(client_id)
        if not record:
            return None
        if record.get("secret_hash") == _default_hash():   # the published default secret: no hashing cost
            return record if hmac.compare_digest(_b(DEFAULT_CLIENT_SECRET), _b(client_secret)) else None
        if "secret_hash" in record:
            return record if check_secret(record["secret_hash"], client_secret) else None
        legacy = record.get("client_secret")   # stored in clear by an older version: still accepted
        if isinstance(legacy, str) and hmac.compare_digest(_b(legacy), _b(client_secret)):
            return record
        return None

    def create_client(self, client_id: str | None = None, client_secret: str | None = None,
                      scopes: dict | None = None, tenant: str | None = None) -> dict:
        """Register a client; ``scopes`` maps provider -> allowed scope list (absent provider = all scopes).

        The store keeps a hash of the secret; the returned record is the only place the secret is shown."""
        client_id = client_id or "client-" + "".join(
            self.ids.rng(GLOBAL, "client").choice("0123456789abcdef") for _ in range(12))   # an id: seed-derived
        if not client_secret:   # a credential: from the secret key, never from the seed
            rng = self.ids.secret_rng(GLOBAL, "client_secret") if getattr(self.ids, "secret", None) else \
                secrets.SystemRandom()
            client_secret = "".join(rng.choice("0123456789abcdef") for _ in range(32))
        record = {"client_id": client_id, "secret_hash": hash_secret(client_secret),
                  "tenant": tenant or client_id, "scopes": scopes}
        self.store.put(GLOBAL, _CLIENTS, client_id, record)
        memo.forget(("client", client_id))
        return {**public_client(record), "client_secret": client_secret}

    def delete_client(self, client_id: str) -> bool:
        memo.forget(("client", client_id))
        return self.store.delete(GLOBAL, _CLIENTS, client_id)

    def clients(self) -> list[dict]:
        """Every client without its secret or hash (the control API never lists secrets)."""
        listed = {k: v for k, v in self.store.list(GLOBAL, _CLIENTS)}
        listed.setdefault(DEFAULT_CLIENT_ID, self.default_client())
        return [public_client(listed[k]) for k in sorted(listed)]

    @staticmethod
    def allowed_scopes(client: dict, provider: str, all_scopes: list[str]) -> list[str]:
        scopes = (client.get("scopes") or {}).get(provider)
        return list(all_scopes) if scopes is None else [s for s in scopes if s in all_scopes]

    # --- tokens ----------------------------------------------------------------------------------
    def issue(self, provider: str, client: dict, token: str, ttl: float | None, *, kind: str = "access",
              subject: str | None = None, scopes: list[str] | None = None, data: dict | None = None) -> dict:
        """Store ``token`` (generated by the provider in its own format) with its expiry on the sandbox clock."""
        tenant = client["tenant"]
        now = self.clock.now(tenant)
        record = {"provider": provider, "kind": kind, "client_id": client["client_id"], "tenant": tenant,
                  "subject": subject, "scopes": scopes or [], "issued_at": isoformat(now),
                  "expires_at": isoformat(_expiry(now, ttl)) if ttl is not None else None,
                  "data": data or {}}
        digest = _digest(token)
        rows = [(GLOBAL, _TOKENS, digest, record)]
        if record["expires_at"]:   # the purge index: ISO instants sort by time (4-digit years)
            rows.append((GLOBAL, _EXPIRY, f"{record['expires_at']}|{digest}", {"tenant": tenant}))
        self.store.put_many(rows)   # one transaction: one write lock per token instead of two (issue 14)
        if next(self._issued) % PURGE_EVERY == 0:
            # bounded work on the issuing path keeps the store flat under sustained load, ticker or not
            try:
                self.purge_expired(limit=PURGE_BATCH)
            except Exception:   # a purge that fails (busy store) must not fail the token; the next one retries
                logging.getLogger("sandbox").exception("token purge failed")
        return record

    def lookup(self, provider: str, token: str | None, kind: str = "access") -> dict | None:
        """The live token record, or None if unknown, revoked, expired or of another provider/kind."""
        if not token:
            return None
        record = self.store.get(GLOBAL, _TOKENS, _digest(token))
        if not record or record["provider"] != provider or record["kind"] != kind:
            return None
        if record["expires_at"] and self.clock.now(record["tenant"]) >= parse_instant(record["expires_at"]):
            return None
        if record["client_id"] != DEFAULT_CLIENT_ID and not self.client(record["client_id"]):
            return None  # client deleted: its tokens die with it
        return record

    def verify(self, provider: str, token: str | None, kind: str = "access", scope: str | None = None) -> dict:
        """Like lookup, but raise Unauthorized (401) / Forbidden (403, missing ``scope``)."""
        record = self.lookup(provider, token, kind)
        if record is None:
            raise Unauthorized()
        if scope and scope not in record["scopes"]:
            raise Forbidden()
        return record

    def revoke(self, token: str) -> bool:
        """Invalidate a token at once (used for single-use codes and rotated refresh tokens)."""
        return self.store.delete(GLOBAL, _TOKENS, _digest(token))

    def consume(self, provider: str, token: str | None, kind: str, client_id: str | None = None) -> dict | None:
        """Atomically look up and revoke a single-use token; a second caller gets None. With ``client_id``, a
        token issued to another client is left untouched (a wrong client cannot burn its owner's code)."""
        if not token:
            return None
        taken: dict = {}

        def take(record):
            if record is None or record["provider"] != provider or record["kind"] != kind:
                return record  # not ours to consume: leave it untouched
            if client_id is not None and record["client_id"] != client_id:
                return record  # someone else's: refuse without burning it
            taken.update(record)
            return None

        self.store.update(GLOBAL, _TOKENS, _digest(token), take)
        if not taken:
            return None
        if taken["expires_at"] and self.clock.now(taken["tenant"]) >= parse_instant(taken["expires_at"]):
            return None
        return taken

    def forget_tenant(self, tenant: str) -> None:
        """Drop every token of a tenant (tenant reset); their index entries go with the next purge."""
        for key, record in self.store.list(GLOBAL, _TOKENS):
            if record.get("tenant") == tenant:
                self.store.delete(GLOBAL, _TOKENS, key)

    def purge_expired(self, limit: int = 2000) -> int:
        """Delete tokens and codes that have expired on their tenant's clock; returns how many went.

        Walks the expiry index in time order up to the latest "now" of any clock, examining at most ``limit``
        entries, so a tick costs little however many live tokens there are."""
        token = memo.begin()   # every clock read once for the whole walk
        try:
            clocks = [None] + [k for k, _ in self.store.list(GLOBAL, _CLOCKS) if k != "*"]
            horizon = isoformat(max(self.clock.now(t) for t in clocks))
            purged = examined = 0
            after = None
            while examined < limit:
                rows, after = self.store.page(GLOBAL, _EXPIRY, after=after, limit=min(200, limit - examined))
                for key, entry in rows:
                    expires_at, digest = key.rsplit("|", 1)
                    if expires_at > horizon:
                        return purged
                    examined += 1
                    if self.clock.now(entry.get("tenant")) < parse_instant(expires_at):
                        continue   # that tenant's clock runs behind: still alive there
                    record = self.store.get(GLOBAL, _TOKENS, digest)
                    if record is not None and record.get("expires_at") == expires_at:
                        self.store.delete(GLOBAL, _TOKENS, digest)
                        purged += 1
                    self.store.delete(GLOBAL, _EXPIRY, key)
                if after is None:
                    break
            return purged
        finally:
            memo.end(token)
