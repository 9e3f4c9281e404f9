"""Per-request memo: shared state (clock, seed, job policies, clients) is read from the store once per request.

Outside a request (tests, the ticker) nothing is cached, so every read sees the store as it is.
"""
from __future__ import annotations

from contextvars import ContextVar
from typing import Callable

_CACHE: ContextVar[dict | None] = ContextVar("sandbox_request_memo", default=None)


def begin():
    """Start a request's memo (core/http.py before_request); returns the token that ends it."""
    return _CACHE.set({})


def end(token) -> None:
    _CACHE.reset(token)


def cached(key, compute: Callable):
    """``compute()`` once per request for ``key`` (None results included); uncached outside a request."""
    memo = _CACHE.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def forget(key) -> None:
    """Drop ``key`` after a write, so the rest of the request reads the new value."""
    memo = _CACHE.get()
    if memo is not None:
        memo.pop(key, None)
