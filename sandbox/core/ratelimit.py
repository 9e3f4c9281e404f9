"""Rate-limit counters on the sandbox clock: fixed windows (a UTC calendar day, or N seconds), per tenant and key.

One document per (tenant, key) holds only the current window's count, so old windows never accumulate; a hit in a
new window starts from zero. Counting happens inside ``store.update``, so concurrent workers can never exceed a
limit. Example: finoOS answers "the fifth manual `trigger_sync` of a bank login within one day" with 429
(../shared/providers/fino.md §14; §9 trigger_sync outcomes: "daily limit of manual synchronizations reached (PSD2
allows 4 unattended accesses per day)"); the sandbox reads "day" as the UTC calendar day of the sandbox clock:
``limiter.hit(tenant, f"fino.sync|{bank_login_id}", limit=4, window="day")``.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from .clock import isoformat, parse_instant, utc
from .errors import TooManyRequests

_COLL = "ratelimit"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def window_bounds(now: datetime, window) -> tuple[datetime, datetime]:
    """[start, end) of the window holding ``now``: "day" = the UTC calendar day; seconds = epoch-aligned slots."""
    now = utc(now)
    if window == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    if isinstance(window, bool) or not isinstance(window, (int, float)) or window <= 0:
        raise ValueError(f'window must be "day" or a positive number of seconds, not {window!r}')
    size = timedelta(seconds=window)
    start = _EPOCH + size * ((now - _EPOCH) // size)  # timedelta arithmetic: exact to the microsecond
    return start, start + size


class RateLimiter:
    def __init__(self, store, clock):
        self.store, self.clock = store, clock

    def _window(self, tenant: str, window) -> tuple[str, datetime]:
        start, end = window_bounds(self.clock.now(tenant), window)
        return f"{window}@{isoformat(start)}", end

    def hit(self, tenant: str, key: str, *, limit: int, window, cost: int = 1) -> int:
        """Count one use of ``key``; TooManyRequests (nothing counted) when it would exceed ``limit``.

        Returns the uses left in the window. The error's details carry ``reset_at`` and ``retry_after`` (seconds).
        """
        window_id, end = self._window(tenant, window)
        refused: list[int] = []

        def count(doc):
            refused.clear()  # the store may retry this function (Redis WATCH)
            n = doc["n"] if doc and doc.get("window") == window_id else 0  # a new window starts from zero
            if n + cost > limit:
                refused.append(n)
                return doc  # unchanged: a refused hit is not counted
            return {"window": window_id, "until": isoformat(end), "n": n + cost}

        doc = self.store.update(tenant, _COLL, key, count)
        if refused:
            retry = max(1, math.ceil((end - self.clock.now(tenant)).total_seconds()))
            raise TooManyRequests(f"rate limit of {limit} per {_describe(window)} reached for {key}",
                                  details={"limit": limit, "window": window, "used": refused[0],
                                           "reset_at": isoformat(end), "retry_after": retry},
                                  headers={"Retry-After": str(retry)})
        return max(0, limit - doc["n"])

    def remaining(self, tenant: str, key: str, *, limit: int, window) -> int:
        """Uses of ``key`` left in the current window (nothing is counted)."""
        window_id, _ = self._window(tenant, window)
        doc = self.store.get(tenant, _COLL, key)
        used = doc["n"] if doc and doc.get("window") == window_id else 0
        return max(0, limit - used)

    def reset(self, tenant: str, key: str) -> None:
        """Forget a key's counter (control API, scenarios)."""
        self.store.delete(tenant, _COLL, key)

    def prune(self, tenant: str) -> int:
        """Drop the tenant's counters whose window has ended (keys not hit since); returns how many."""
        now, dropped = self.clock.now(tenant), 0
        for key, doc in self.store.list(tenant, _COLL):
            if parse_instant(doc["until"]) <= now:
                self.store.update(tenant, _COLL, key, lambda d, stale=doc["until"]: _drop_if(d, stale))
                dropped += 1
        return dropped


def _drop_if(doc: dict | None, stale_until: str) -> dict | None:
    """Delete a counter only if it still holds the stale window: a concurrent hit may just have opened a new one."""
    return None if doc is None or doc["until"] == stale_until else doc


def _describe(window) -> str:
    return "day" if window == "day" else f"{window:g} s"
