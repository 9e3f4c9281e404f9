"""Deterministic identifiers: every random choice comes from one seed, a tenant and a per-tenant sequence.

The sequence lives in the store, so several workers never hand out the same id, and the same seed plus the same
calls on a frozen clock give the same ids (byte-identical responses). Credentials (tokens, codes) come from
``secret_rng`` instead: keyed by the store's secret key (core/signing.py), never computable from the public seed.
"""
from __future__ import annotations

import hashlib
import random
import string
import uuid
from datetime import datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_COLL = "seq"


def stable_seed(*parts) -> int:
    """A 64-bit seed from any parts, stable across processes and runs (never Python's salted hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def ulid(at: datetime, rng: random.Random) -> str:
    """A ULID: 48-bit millisecond timestamp from the sandbox clock and 80 random bits, Crockford base32."""
    value = (int(at.timestamp() * 1000) << 80) | rng.getrandbits(80)
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def token(rng: random.Random, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


class IdGen:
    """Hands out a fresh RNG per (tenant, kind): the nth draw of a kind is the same for the same seed."""

    def __init__(self, store, seed, secret=None):
        self.store = store
        self._seed = seed if callable(seed) else (lambda: seed)  # callable: read per draw (control API may change it)
        self.secret = secret   # a core.signing.SecretKey: the root of secret_rng

    @property
    def seed(self) -> int:
        return self._seed()

    def rng(self, tenant: str, kind: str) -> random.Random:
        n = self.store.incr(tenant, _COLL, kind)
        return random.Random(stable_seed(self.seed, tenant, kind, n))

    def secret_rng(self, tenant: str, kind: str) -> random.Random:
        """An RNG for a credential: the nth draw of a kind is HMAC-derived from the secret key, the tenant's epoch,
        the seed and n, so it is unguessable without the key, new after a reset (random key), and byte-identical
        for the same seed, configured key and calls."""
        if self.secret is None:
            raise RuntimeError("IdGen has no secret key: credentials must not derive from the public seed")
        n = self.store.incr(tenant, _COLL, kind)
        return random.Random(int.from_bytes(self.secret.derive("credential", self.seed, kind, n, tenant=tenant),
                                            "big"))

    def ulid(self, tenant: str, kind: str, at: datetime) -> str:
        return ulid(at, self.rng(tenant, kind))

    def uuid4(self, tenant: str, kind: str) -> str:
        return uuid4(self.rng(tenant, kind))
