"""The sandbox clock: the only source of "now". Its state lives in the store so every worker agrees.

A clock is either running (system time plus an offset) or frozen at an instant. A tenant may have its own clock
(Stripe-style test clock); otherwise the global clock applies.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from . import memo

GLOBAL = "_sandbox"
_COLL = "clock"          # in the GLOBAL namespace, keyed by tenant ("*" = the global clock)
_GLOBAL_KEY = "*"
# The ends of representable time: sandbox instants saturate here instead of overflowing (a clock set to year 9999
# plus a token lifetime must not raise OverflowError in the middle of a request).
MAX_INSTANT = datetime.max.replace(tzinfo=timezone.utc)
MIN_INSTANT = datetime.min.replace(tzinfo=timezone.utc)


def utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant (``Z`` allowed); naive values are taken as UTC."""
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def add_seconds(dt: datetime, seconds: float) -> datetime:
    """``dt`` moved by ``seconds``, saturating at MIN_INSTANT/MAX_INSTANT instead of raising OverflowError; every
    expiry and deadline computed from sandbox time goes through here. NaN is refused (ValueError)."""
    if math.isnan(seconds):
        raise ValueError("seconds must be a number, not NaN")
    try:
        return utc(dt) + timedelta(seconds=seconds)
    except OverflowError:
        return MAX_INSTANT if seconds > 0 else MIN_INSTANT


def from_timestamp(seconds: float) -> datetime:
    """The UTC instant of a POSIX timestamp (e.g. a JWT ``exp``), saturating at MIN_INSTANT/MAX_INSTANT."""
    return add_seconds(datetime(1970, 1, 1, tzinfo=timezone.utc), seconds)


def isoformat(dt: datetime) -> str:
    """Render an instant as ISO-8601 UTC with a ``Z`` and millisecond precision."""
    return utc(dt).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wall_clock() -> datetime:
    """The real UTC time: the default system source of every Clock (tests replace it, see tests/conftest.py)."""
    return datetime.now(timezone.utc)


class Clock:
    """Reads and moves sandbox time. ``system`` is injectable so tests never depend on the wall clock."""

    def __init__(self, store, system=None):
        self.store = store
        self.system = system or (lambda: wall_clock())

    def state(self, tenant: str | None = None) -> dict:
        """The tenant's own clock if it has one, else the global clock (all clocks: one query per request)."""
        clocks = memo.cached("clocks", lambda: dict(self.store.list(GLOBAL, _COLL)))
        base = tenant.split("/", 1)[0] if tenant else None   # a nested sub-tenant runs on its client's clock
        return (clocks.get(tenant or _GLOBAL_KEY) or (base and clocks.get(base)) or clocks.get(_GLOBAL_KEY)
                or {"frozen": False, "at": None, "offset": 0.0})

    def now(self, tenant: str | None = None) -> datetime:
        """Current sandbox time for ``tenant`` (its own clock if set, else the global one)."""
        state = self.state(tenant)
        if state.get("frozen"):
            return parse_instant(state["at"])
        return add_seconds(self.system(), state.get("offset", 0.0))

    def _write(self, tenant: str | None, state: dict) -> dict:
        self.store.put(GLOBAL, _COLL, tenant or _GLOBAL_KEY, state)
        memo.forget("clocks")
        return self.describe(tenant)

    def freeze(self, tenant: str | None = None, at: datetime | None = None) -> dict:
        """Stop time at ``at`` (default: the current sandbox time)."""
        return self._write(tenant, {"frozen": True, "at": isoformat(at or self.now(tenant)), "offset": 0.0})

    def unfreeze(self, tenant: str | None = None) -> dict:
        """Let time run again from where it stands."""
        offset = (self.now(tenant) - self.system()).total_seconds()
        return self._write(tenant, {"frozen": False, "at": None, "offset": offset})

    def set(self, at: datetime, tenant: str | None = None) -> dict:
        """Jump to ``at``, keeping the frozen/running mode."""
        if self.state(tenant).get("frozen"):
            return self.freeze(tenant, at)
        return self._write(tenant, {"frozen": False, "at": None, "offset": (utc(at) - self.system()).total_seconds()})

    def advance(self, seconds: float, tenant: str | None = None) -> dict:
        """Move time forward (or back, with a negative value) by ``seconds``."""
        return self.set(add_seconds(self.now(tenant), seconds), tenant)

    def reset(self, tenant: str | None = None) -> dict:
        self.store.delete(GLOBAL, _COLL, tenant or _GLOBAL_KEY)
        memo.forget("clocks")
        return self.describe(tenant)

    def describe(self, tenant: str | None = None) -> dict:
        state = self.state(tenant)
        return {"now": isoformat(self.now(tenant)), "frozen": bool(state.get("frozen")),
                "offsetSeconds": state.get("offset", 0.0), "tenant": tenant}
