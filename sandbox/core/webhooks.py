"""Webhooks: a per-tenant subscription registry and an outbox delivered outside requests.

Subscribers choose URL, HTTP method, events, secret (HMAC signature header), auth and custom headers (finoOS lets
the client pick the method and a secret, fino.md s.11; Open Finance's callbackInformation carries basic auth and
customHeaders, open_finance.md s.9). A request only enqueues; ``deliver_due`` (the ticker, a background worker or
the control API) sends due deliveries concurrently with retries and backoff on the sandbox clock. Workers claim a
delivery with a lease, so several gunicorn workers never send it twice. Deliveries to the sandbox's own control API
(``/_sandbox``) and non-http(s) URLs are refused and logged, never sent.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import posixpath
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import timedelta
from typing import Callable
from urllib.parse import unquote, urlsplit

from .clock import GLOBAL, isoformat, parse_instant
from .errors import BadRequest, Conflict, NotFound

log = logging.getLogger("sandbox.webhooks")

_HOOKS, _PENDING, _SUBS, _SEQ = "webhooks", "webhooks_pending", "webhook_subscriptions", "webhook_seq"
BACKOFF = (0, 10, 60)  # seconds after enqueue for attempts 1..3 (providers document "3 tries", no schedule)
LEASE = 30.0           # seconds a claimed delivery is held; must exceed one send (timeout 5 s connect + 5 s read)
TIMEOUT = 5.0          # per send: connect and read timeout
WORKERS = 4            # concurrent sends per process, so slow receivers do not serialise
REDACTED = "[redacted]"
DEFAULT_SIGNATURE = {  # Stripe's scheme: header "t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<body>'>"
    "header": "X-Sandbox-Signature", "signed": "{t}.{body}", "value": "t={t},v1={sig}", "encoding": "hex"}
_AUTH_TYPES = {"basic": ("username", "password"), "bearer": ("token",), "header": ("name", "value")}
_METHOD = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Z-]+$")  # an RFC 9110 token, upper-cased
_CTL = re.compile(r"[\r\n\x00]")                     # header values may not smuggle further headers
_UNSET = object()


def http_sender(method: str, url: str, body: bytes, headers: dict,
                timeout: float = TIMEOUT) -> tuple[int | None, str | None]:
    """Send one delivery with any HTTP method; (status, None) or (None, error text). Redirects are not followed.

    Only the status line and headers are read (``stream=True``), so a receiver that trickles a body cannot hold
    the sender; connect and each read wait at most ``timeout`` seconds.
    """
    import requests

    try:
        response = requests.request(method, url, data=body, headers=headers, timeout=timeout,
                                    allow_redirects=False, stream=True)
        response.close()
        return response.status_code, None
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300]


def refusal(url: str) -> str | None:
    """Why a delivery URL must not be sent to (None if it may): non-http(s), or the sandbox's own control API."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"refused: malformed URL ({exc})"
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return f"refused: only absolute http(s) URLs are delivered, not {url[:100]!r}"
    path = posixpath.normpath("/" + re.sub(r"/+", "/", unquote(parts.path)).lstrip("/"))
    if path == "/_sandbox" or path.startswith("/_sandbox/"):
        return "refused: the URL points at the sandbox control API (/_sandbox), which webhooks may not call"
    return None


def _scheme(override) -> dict | None:
    """A full signature scheme from DEFAULT_SIGNATURE and a partial override; None when signing is switched off."""
    if override is False:
        return None
    scheme = {**DEFAULT_SIGNATURE, **(override or {})}
    if "{body}" not in scheme["signed"] or "{sig}" not in scheme["value"] or scheme["encoding"] not in ("hex",
                                                                                                         "base64"):
        raise BadRequest("signature: 'signed' needs {body}, 'value' needs {sig}, 'encoding' is hex or base64")
    if "{t}" in scheme["signed"] and "{t}" not in scheme["value"]:
        raise BadRequest("signature: a timestamp in 'signed' must also appear in 'value' ({t})")
    return scheme


def _mac(secret: str, body: bytes, t: str, scheme: dict) -> str:
    head, _, tail = scheme["signed"].partition("{body}")
    digest = hmac.new(secret.encode(), head.replace("{t}", t).encode() + body + tail.replace("{t}", t).encode(),
                      hashlib.sha256).digest()
    return digest.hex() if scheme["encoding"] == "hex" else base64.b64encode(digest).decode()


def sign(secret: str, body: bytes, t: int, scheme: dict | None = None) -> tuple[str, str]:
    """The (header name, header value) a delivery of ``body`` at unix time ``t`` carries for ``secret``."""
    scheme = _scheme(scheme)
    return scheme["header"], scheme["value"].replace("{t}", str(t)).replace("{sig}", _mac(secret, body, str(t),
                                                                                             scheme))


def verify_signature(secret: str, body: bytes, header_value: str | None, *, scheme: dict | None = None,
                     now: float | None = None, tolerance: float | None = None) -> bool:
    """True if ``header_value`` signs exactly ``body`` with ``secret`` (for tests and client authors).

    With ``now`` and ``tolerance`` (unix seconds) a timestamp further than ``tolerance`` from ``now`` fails too.
    """
    scheme = _scheme(scheme)
    pattern = re.escape(scheme["value"]).replace(r"\{t\}", r"(?P<t>\d+)").replace(r"\{sig\}", r"(?P<sig>[^,\s]+)")
    match = re.fullmatch(pattern, (header_value or "").strip())
    if not match:
        return False
    t = match.groupdict().get("t") or ""
    if tolerance is not None and now is not None and (not t or abs(now - int(t)) > tolerance):
        return False
    return hmac.compare_digest(match.group("sig"), _mac(secret, body, t, scheme))


def _url(value) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest("url is required")
    return value


def _signature(value):
    """A subscription's signature override: None = the provider's scheme, False = none, else a partial scheme."""
    if value is False or not value:
        return value if value is False else None
    _scheme(value)
    return dict(value)


def _method(value) -> str:
    method = str(value or "").upper()
    if not _METHOD.match(method):
        raise BadRequest(f"method must be an HTTP method such as POST or PUT, not {value!r}")
    return method


def _events(value) -> list[str]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(e, str) and e for e in value):
        raise BadRequest('events must be a non-empty list of event names, or ["*"] for every event')
    return list(value)


def _auth(value) -> dict | None:
    if not value:
        return None
    fields = _AUTH_TYPES.get(value.get("type")) if isinstance(value, dict) else None
    if fields is None or not all(isinstance(value.get(f), str) for f in fields):
        raise BadRequest('auth must be {"type":"basic","username","password"}, {"type":"bearer","token"} '
                         'or {"type":"header","name","value"}')
    if any(_CTL.search(value[f]) for f in fields) or (value["type"] == "header" and not _METHOD.match(
            value["name"].upper())):
        raise BadRequest("auth values may not contain line breaks; a header name must be a token")
    return {"type": value["type"], **{f: value[f] for f in fields}}


def _headers(value) -> dict:
    if not value:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and _METHOD.match(k.upper()) and isinstance(v, str)
                                              and not _CTL.search(v) for k, v in value.items()):
        raise BadRequest("headers must be an object of header names to string values (no line breaks)")
    return dict(value)


def _auth_headers(auth: dict | None) -> dict:
    if not auth:
        return {}
    if auth["type"] == "basic":
        pair = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    if auth["type"] == "bearer":
        return {"Authorization": f"Bearer {auth['token']}"}
    return {auth["name"]: auth["value"]}


class Webhooks:
    def __init__(self, store, clock, ids, sender: Callable = http_sender, backoff: tuple = BACKOFF, *,
                 workers: int = WORKERS, timeout: float = TIMEOUT):
        """``sender(method, url, body, headers, timeout) -> (status | None, error | None)`` is injectable."""
        self.store, self.clock, self.ids, self.sender, self.backoff = store, clock, ids, sender, backoff
        self.workers, self.timeout = workers, timeout
        self.defaults: dict[str, dict] = {}   # provider -> {"signature", "headers", "accept_3xx"} (configure)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = None
        self._pool_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()

    # ---- provider defaults -------------------------------------------------------------------------------------

    def configure(self, provider: str, *, signature=_UNSET, headers: dict | None = None,
                  accept_3xx: bool | None = None) -> dict:
        """A provider's delivery defaults: signature scheme (partial dict, or False = no HMAC header even with a
        secret), headers every delivery carries (e.g. User-Agent) and whether 3xx counts as delivered."""
        current = dict(self.defaults.get(provider, {}))
        if signature is not _UNSET:
            _scheme(signature)  # validate now, not at the first delivery
            current["signature"] = signature
        if headers is not None:
            current["headers"] = _headers(headers)
        if accept_3xx is not None:
            current["accept_3xx"] = bool(accept_3xx)
        self.defaults[provider] = current
        return current

    # ---- subscriptions -----------------------------------------------------------------------------------------

    def subscribe(self, tenant: str, provider: str, *, url: str, events, method: str = "POST",
                  secret: str | None = None, auth: dict | None = None, headers: dict | None = None,
                  owner: str | None = None, sub_id: str | None = None, signature=None,
                  data: dict | None = None) -> dict:
        """Register a subscriber for ``events`` (["*"] = all); ``owner`` scopes it to one end user's events.

        ``signature`` overrides the provider's scheme (False: none); ``data`` is free provider data (e.g. finleap's
        ``state``). A given ``sub_id`` that exists already is a Conflict.
        """
        fields = {"provider": provider, "url": _url(url), "events": _events(events), "method": _method(method),
                  "secret": secret or None, "auth": _auth(auth), "headers": _headers(headers), "owner": owner,
                  "signature": _signature(signature), "data": data}   # validated before an id is drawn
        now = isoformat(self.clock.now(tenant))
        record = {"id": sub_id or self.ids.uuid4(tenant, "webhook-subscription"), **fields, "created_at": now,
                  "updated_at": now}
        if not self.store.add(tenant, _SUBS, f"{provider}|{record['id']}", record):
            raise Conflict(f"webhook subscription {record['id']} exists already")
        return record

    def subscriptions(self, tenant: str, provider: str, event: str | None = None,
                      owner: str | None = None) -> list[dict]:
        """A provider's subscriptions, oldest first; ``event``: those it reaches, ``owner``: that user's only."""
        subs = [s for _, s in self.store.list(tenant, _SUBS, prefix=f"{provider}|")]
        subs.sort(key=lambda s: (s["created_at"], s["id"]))
        return [s for s in subs if (event is None or "*" in s["events"] or event in s["events"])
                and (owner is None or s["owner"] == owner)]

    def get_subscription(self, tenant: str, provider: str, sub_id: str) -> dict:
        record = self.store.get(tenant, _SUBS, f"{provider}|{sub_id}")
        if record is None:
            raise NotFound(f"webhook subscription {sub_id} not found")
        return record

    def update_subscription(self, tenant: str, provider: str, sub_id: str, **changes) -> dict:
        """Patch a subscription: an absent or None field stays; "" / {} clears secret, auth, headers, signature."""
        checks = {"url": _url, "events": _events, "method": _method, "secret": lambda v: v or None,
                  "auth": _auth, "headers": _headers, "owner": lambda v: v or None, "data": lambda v: v or None,
                  "signature": _signature}
        unknown = set(changes) - set(checks)
        if unknown:
            raise BadRequest(f"unknown subscription fields {sorted(unknown)}")
        clean = {k: checks[k](v) for k, v in changes.items() if v is not None}
        self.get_subscription(tenant, provider, sub_id)
        now = isoformat(self.clock.now(tenant))
        updated = self.store.update(tenant, _SUBS, f"{provider}|{sub_id}",
                                    lambda r: None if r is None else {**r, **clean, "updated_at": now})
        if updated is None:  # deleted meanwhile
            raise NotFound(f"webhook subscription {sub_id} not found")
        return updated

    def unsubscribe(self, tenant: str, provider: str, sub_id: str) -> dict:
        """Delete a subscription (NotFound if absent); its pending deliveries end as "cancelled" when due."""
        record = self.get_subscription(tenant, provider, sub_id)
        if not self.store.delete(tenant, _SUBS, f"{provider}|{sub_id}"):
            raise NotFound(f"webhook subscription {sub_id} not found")
        return record

    # ---- outbox ------------------------------------------------------------------------------------------------

    def publish(self, tenant: str, provider: str, event: str, payload, owner: str | None = None, *,
                headers: dict | None = None, accept_3xx: bool | None = None) -> list[dict]:
        """Enqueue one delivery per subscription reached by ``event`` (never sends; see ``deliver_due``).

        A subscription with an owner only gets that owner's events. ``payload`` may be a callable
        ``payload(subscription)`` for per-subscriber bodies (finoOS echoes the secret in it, fino.md s.11).
        """
        deliveries = []
        for sub in self.subscriptions(tenant, provider, event):
            if sub["owner"] is not None and sub["owner"] != owner:
                continue
            body = payload(sub) if callable(payload) else payload
            deliveries.append(self.enqueue(tenant, provider, event, sub["url"], body, headers=headers,
                                           accept_3xx=accept_3xx, method=sub["method"], sub_id=sub["id"],
                                           owner=owner))
        return deliveries

    def enqueue(self, tenant: str, provider: str, event: str, url: str, payload, *, headers: dict | None = None,
                accept_3xx: bool | None = None, method: str = "POST", sub_id: str | None = None,
                owner: str | None = None) -> dict:
        """Queue one delivery, first attempt due now; nothing is sent here (requests never do network I/O).

        With ``sub_id`` the subscription's auth, custom headers and secret are applied at each send (so a rotated
        secret signs the retries). A refused URL ends "refused" at once, with the reason as its only attempt.
        """
        now = self.clock.now(tenant)
        defaults = self.defaults.get(provider, {})
        record = {"id": self.ids.uuid4(tenant, "webhook"), "seq": self.store.incr(tenant, _SEQ, "n"),
                  "provider": provider, "event": event, "method": _method(method), "url": url, "sub_id": sub_id,
                  "owner": owner, "payload": payload,
                  "headers": {"Content-Type": "application/json", **defaults.get("headers", {}),
                              **_headers(headers)},
                  "accept_3xx": bool(defaults.get("accept_3xx", False) if accept_3xx is None else accept_3xx),
                  "status": "pending", "attempts": [], "created_at": isoformat(now),
                  "next_attempt_at": isoformat(now), "lease_until": None}
        reason = refusal(url)
        if reason:
            log.warning("webhook %s (%s %s) %s", record["id"], tenant, provider, reason)
            record.update(status="refused", next_attempt_at=None, attempts=[
                {"at": isoformat(now), "status": None, "error": reason, "durationMs": 0.0}])
            self.store.put(tenant, _HOOKS, record["id"], record)
            return record
        self.store.put(tenant, _HOOKS, record["id"], record)
        self.store.put(GLOBAL, _PENDING, f"{tenant}|{record['id']}", {})
        return record

    def list(self, tenant: str, provider: str | None = None) -> list[dict]:
        records = [r for _, r in self.store.list(tenant, _HOOKS)]
        records.sort(key=lambda r: (r["created_at"], r.get("seq", 0)))
        return [r for r in records if provider is None or r["provider"] == provider]

    def get(self, tenant: str, hook_id: str) -> dict:
        record = self.store.get(tenant, _HOOKS, hook_id)
        if record is None:
            raise NotFound(f"webhook {hook_id} not found")
        return record

    def redeliver(self, tenant: str, hook_id: str) -> dict:
        """Control API: send a delivery again now, synchronously, whatever its status (a new attempt is logged)."""
        now = isoformat(self.clock.now(tenant))
        self.get(tenant, hook_id)
        self.store.update(tenant, _HOOKS, hook_id, lambda r: {**r, "status": "pending", "next_attempt_at": now,
                                                                "lease_until": None, "redelivery": True})
        self.store.put(GLOBAL, _PENDING, f"{tenant}|{hook_id}", {})
        return self.attempt(tenant, hook_id) or self.get(tenant, hook_id)

    def deliver(self, tenant: str, hook_ids: list[str]) -> list[dict]:
        """Control API (e.g. fire): attempt these deliveries now, concurrently, and return their records."""
        futures = [self._executor().submit(self.attempt, tenant, hook_id) for hook_id in hook_ids]
        wait_futures(futures)
        return [f.result() or self.get(tenant, hook_id) for f, hook_id in zip(futures, hook_ids)]

    def deliver_due(self) -> int:
        """Attempt every due pending delivery of every tenant, ``workers`` at a time; returns attempts made.

        Waits for its sends (each bounded by the sender's timeout), so callers see the outcome.
        """
        due = []
        for key, _ in self.store.list(GLOBAL, _PENDING):
            tenant, hook_id = key.rsplit("|", 1)
            record = self.store.get(tenant, _HOOKS, hook_id)
            if record is None or record["status"] != "pending":  # the tenant was reset, or a stale index entry
                self.store.delete(GLOBAL, _PENDING, key)
            elif self._claimable(record, self.clock.now(tenant)):
                due.append((tenant, hook_id))
        if not due:
            return 0
        futures = [self._executor().submit(self.attempt, tenant, hook_id) for tenant, hook_id in due]
        wait_futures(futures)
        made = 0
        for future, (tenant, hook_id) in zip(futures, due):
            if future.exception() is not None:  # e.g. a store error; the lease expires and a later round retries
                log.error("webhook %s (%s) attempt failed", hook_id, tenant, exc_info=future.exception())
            else:
                made += future.result() is not None
        return made

    def start_worker(self, interval: float = 0.5) -> threading.Thread:
        """Background delivery loop for a served process (one per process; idempotent). ``stop_worker`` ends it."""
        if self._worker and self._worker.is_alive():
            return self._worker
        self._stop.clear()

        def loop():
            while not self._stop.is_set():
                try:
                    self.deliver_due()
                except Exception:  # keep delivering; the next round retries
                    log.exception("webhook delivery round failed")
                self._stop.wait(interval)

        self._worker = threading.Thread(target=loop, name="sandbox-webhooks", daemon=True)
        self._worker.start()
        return self._worker

    def stop_worker(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._worker:
            self._worker.join(timeout)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():  # a forked worker gets its own threads
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="sandbox-webhook")
                self._pool_pid = os.getpid()
            return self._pool

    @staticmethod
    def _claimable(record: dict | None, now) -> bool:
        return bool(record and record["status"] == "pending" and parse_instant(record["next_attempt_at"]) <= now
                    and not (record["lease_until"] and parse_instant(record["lease_until"]) > now))

    def _request(self, tenant: str, record: dict, body: bytes, now) -> tuple[dict | None, set, str | None]:
        """One send's headers (subscription auth, custom headers, signature), the names to redact when logging
        them, or why the delivery stops (its subscription is gone)."""
        headers = dict(record["headers"])
        private = {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-api-secret"}
        if not record.get("sub_id"):
            return headers, private, None
        sub = self.store.get(tenant, _SUBS, f"{record['provider']}|{record['sub_id']}")
        if sub is None:
            return None, private, f"cancelled: subscription {record['sub_id']} was deleted"
        headers.update(sub["headers"])
        headers.update(_auth_headers(sub["auth"]))
        if sub["auth"] and sub["auth"]["type"] == "header":
            private.add(sub["auth"]["name"].lower())
        if sub["secret"]:
            override = sub.get("signature")
            if override is None:
                override = self.defaults.get(record["provider"], {}).get("signature")
            scheme = _scheme(override)
            if scheme:
                name, value = sign(sub["secret"], body, int(now.timestamp()), scheme)
                headers[name] = value
        return headers, private, None

    def attempt(self, tenant: str, hook_id: str) -> dict | None:
        """Claim and send one due delivery; None if it is not due, not pending or claimed by another worker."""
        now = self.clock.now(tenant)
        claimed: dict = {}

        def claim(record):
            if not self._claimable(record, now):
                return record
            record["lease_until"] = isoformat(now + timedelta(seconds=LEASE))
            claimed.update(record)
            return record

        self.store.update(tenant, _HOOKS, hook_id, claim)
        if not claimed:
            return None
        body = json.dumps(claimed["payload"], ensure_ascii=False, separators=(",", ":")).encode()
        method = claimed.get("method", "POST")
        stop = refusal(claimed["url"])
        headers, private, cancelled = (None, set(), None) if stop else self._request(tenant, claimed, body, now)
        stop = stop or cancelled
        started = time.perf_counter()
        if stop:
            status, error = None, stop
            log.warning("webhook %s (%s %s) %s", hook_id, tenant, claimed["provider"], stop)
        else:
            try:
                status, error = self.sender(method, claimed["url"], body, headers, self.timeout)
            except Exception as exc:  # a broken sender must not leave the delivery leased forever
                status, error = None, f"{type(exc).__name__}: {exc}"[:300]
        ok = status is not None and (200 <= status < 300 or (claimed["accept_3xx"] and 300 <= status < 400))
        attempt = {"at": isoformat(now), "status": status, "error": error,
                   "durationMs": round((time.perf_counter() - started) * 1000, 2), "method": method}
        if headers is not None:  # as sent, credentials redacted; the signature stays visible (it is no secret)
            attempt["headers"] = {k: (REDACTED if k.lower() in private else v) for k, v in headers.items()}

        def settle(record):
            if record is None:  # the tenant was reset mid-send
                return None
            record["attempts"].append(attempt)
            record["lease_until"] = None
            n = len(record["attempts"])
            if ok:
                record["status"] = "delivered"
            elif stop:
                record["status"] = stop.split(":", 1)[0]  # "refused" or "cancelled"
            elif record.get("redelivery"):
                record["status"] = "failed"
            elif n >= len(self.backoff):
                record["status"] = "failed"
            else:
                due = parse_instant(record["created_at"]) + timedelta(seconds=self.backoff[n])
                record["next_attempt_at"] = isoformat(max(due, now))
            if record["status"] != "pending":
                record.pop("redelivery", None)
            return record

        record = self.store.update(tenant, _HOOKS, hook_id, settle)
        if record is None or record["status"] != "pending":
            self.store.delete(GLOBAL, _PENDING, f"{tenant}|{hook_id}")
        return record
