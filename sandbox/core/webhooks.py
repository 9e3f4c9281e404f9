"""Webhook outbox: providers enqueue deliveries; they are POSTed with retries and backoff on the sandbox clock.

Every attempt is logged and readable through the control API, which can also redeliver and fire events on demand
(Plaid's fire_webhook). Workers claim a delivery atomically, so several gunicorn workers never send it twice.
"""
from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Callable

from .clock import GLOBAL, isoformat, parse_instant
from .errors import NotFound

_HOOKS, _PENDING = "webhooks", "webhooks_pending"
BACKOFF = (0, 10, 60)  # seconds after enqueue for attempts 1..3 (providers document "3 tries", no schedule)
LEASE = 30.0


def http_sender(url: str, body: bytes, headers: dict, timeout: float = 5.0) -> tuple[int | None, str | None]:
    """POST with requests; (status, None) or (None, error text). Redirects are not followed."""
    import requests

    try:
        response = requests.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
        return response.status_code, None
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300]


class Webhooks:
    def __init__(self, store, clock, ids, sender: Callable = http_sender, backoff: tuple = BACKOFF):
        self.store, self.clock, self.ids, self.sender, self.backoff = store, clock, ids, sender, backoff

    def enqueue(self, tenant: str, provider: str, event: str, url: str, payload, *, headers: dict | None = None,
                accept_3xx: bool = False, deliver: bool = True) -> dict:
        """Queue one delivery (first attempt due now); ``deliver`` tries it at once, synchronously."""
        now = self.clock.now(tenant)
        record = {"id": self.ids.uuid4(tenant, "webhook"), "provider": provider, "event": event, "url": url,
                  "payload": payload, "headers": {"Content-Type": "application/json", **(headers or {})},
                  "accept_3xx": accept_3xx, "status": "pending", "attempts": [], "created_at": isoformat(now),
                  "next_attempt_at": isoformat(now), "lease_until": None}
        self.store.put(tenant, _HOOKS, record["id"], record)
        self.store.put(GLOBAL, _PENDING, f"{tenant}|{record['id']}", {})
        if deliver:
            return self.attempt(tenant, record["id"]) or record
        return record

    def list(self, tenant: str, provider: str | None = None) -> list[dict]:
        records = [r for _, r in self.store.list(tenant, _HOOKS)]
        records.sort(key=lambda r: r["created_at"])
        return [r for r in records if provider is None or r["provider"] == provider]

    def get(self, tenant: str, hook_id: str) -> dict:
        record = self.store.get(tenant, _HOOKS, hook_id)
        if record is None:
            raise NotFound(f"webhook {hook_id} not found")
        return record

    def redeliver(self, tenant: str, hook_id: str) -> dict:
        """Send a delivery again now, whatever its status (a new attempt is logged)."""
        now = isoformat(self.clock.now(tenant))
        self.get(tenant, hook_id)
        self.store.update(tenant, _HOOKS, hook_id, lambda r: {**r, "status": "pending", "next_attempt_at": now,
                                                                "lease_until": None, "redelivery": True})
        self.store.put(GLOBAL, _PENDING, f"{tenant}|{hook_id}", {})
        return self.attempt(tenant, hook_id) or self.get(tenant, hook_id)

    def deliver_due(self) -> int:
        """Attempt every pending delivery whose time has come, in every tenant; returns attempts made."""
        made = 0
        for key, _ in self.store.list(GLOBAL, _PENDING):
            tenant, hook_id = key.rsplit("|", 1)
            if self.store.get(tenant, _HOOKS, hook_id) is None:  # the tenant was reset
                self.store.delete(GLOBAL, _PENDING, key)
                continue
            made += self.attempt(tenant, hook_id) is not None
        return made

    def attempt(self, tenant: str, hook_id: str) -> dict | None:
        """Claim and send one due delivery; None if it is not due, not pending or claimed by another worker."""
        now = self.clock.now(tenant)
        claimed: dict = {}

        def claim(record):
            if (record is None or record["status"] != "pending" or parse_instant(record["next_attempt_at"]) > now
                    or (record["lease_until"] and parse_instant(record["lease_until"]) > now)):
                return record
            record["lease_until"] = isoformat(now + timedelta(seconds=LEASE))
            claimed.update(record)
            return record

        self.store.update(tenant, _HOOKS, hook_id, claim)
        if not claimed:
            return None
        body = json.dumps(claimed["payload"], ensure_ascii=False, separators=(",", ":")).encode()
        started = time.perf_counter()
        status, error = self.sender(claimed["url"], body, claimed["headers"])
        ok = status is not None and (200 <= status < 300 or (claimed["accept_3xx"] and 300 <= status < 400))
        attempt = {"at": isoformat(now), "status": status, "error": error,
                   "durationMs": round((time.perf_counter() - started) * 1000, 2)}

        def settle(record):
            record["attempts"].append(attempt)
            record["lease_until"] = None
            n = len([a for a in record["attempts"]])
            if ok:
                record["status"] = "delivered"
            elif n >= len(self.backoff) and not record.get("redelivery"):
                record["status"] = "failed"
            elif record.get("redelivery"):
                record["status"], record["redelivery"] = ("failed", False)
            else:
                due = parse_instant(record["created_at"]) + timedelta(seconds=self.backoff[n])
                record["next_attempt_at"] = isoformat(max(due, now))
            return record

        record = self.store.update(tenant, _HOOKS, hook_id, settle)
        if record["status"] != "pending":
            self.store.delete(GLOBAL, _PENDING, f"{tenant}|{hook_id}")
        return record
