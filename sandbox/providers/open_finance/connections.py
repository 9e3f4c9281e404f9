"""Open Finance connections, the consent journey, open-banking init/finalize, providers and branches, and connection
webhooks (open_finance.md sections 6, 8, 9, 11, 12).

A connection is one document in ``self._connections(tenant, userId)`` (visible to tokens of the same organisation
and userId only, s.3/s.5). Its status machine (s.8) runs on the sandbox clock and on the core job engine:

- ``create_connection`` -> ``INACTIVE``; the journey (page ``connect_journey``) or ``open_banking_init`` -> bank SCA
  page -> ``open_banking_finalize`` give the consent;
- consent -> ``FETCHING`` -> ``CONNECTED`` -> ``COMPLETED`` (or ``ACTIVE`` with ``refreshData``) as a job of kind
  ``open_finance.connection_fetch`` (one step every 2 s on the clock by default; instant/manual through the control
  API's job policy, forced with ``/_sandbox/jobs/<id>/complete``), or the psuId outcomes of s.11;
- ``PARTIALLY_AUTHORIZED`` (psuId 064837123, joint account) waits for its co-owners as a job of kind
  ``open_finance.co_owners`` (id ``<connectionId>.co_owners``) held in its first state, so no job policy ever moves
  it: ``/_sandbox/jobs/<id>/complete`` (all co-owners approve) starts the fetch above, ``/fail`` (one declines)
  gives ``REJECTED`` (s.8);
- lazily on every read (so it works across workers, like the job engine): ``PARTIALLY_AUTHORIZED`` for 5 days ->
  ``EXPIRED`` (an answer after that changes nothing); a past ``expiryDate`` -> ``EXPIRED``; an ``ACTIVE`` connection
  refreshes its data once per sandbox day;
- a newer connection of the same user, psuId and provider turning ``ACTIVE`` moves the older ``ACTIVE`` one to
  ``REPLACED``.

Each status change POSTs the s.9 payload to the organisation's webhook subscriptions (core subscriptions of provider
``open_finance``, event ``CONNECTIONS``) and to the connection's ``callbackInformation.webhooks`` URL for that status,
through the core outbox (enqueue only; retries with backoff; visible in ``/_sandbox/webhooks``).
"""
from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta, timezone

from flask import make_response, render_template

from ...core.clock import isoformat, parse_instant
from ...core.dispatch import asset_url
from ...core.errors import BadRequest, Conflict, Locked, NotFound
from ...core.flows import FlowDefinition, FlowUsed, Next
from ...core.ids import stable_seed, uuid4
from ...core.paging import invalid, open_finance_page
from ...ledger import generate_ledger
from . import data

PROVIDER = "open_finance"
_CONNECTIONS, _LEDGERS = f"{PROVIDER}.connections", f"{PROVIDER}.ledgers"   # as service.py names them
_SCA = f"{PROVIDER}.sca_states"            # open_banking_init states -> {connectionId, code, used}
FETCH_KIND = f"{PROVIDER}.connection_fetch"
# s.8 PARTIALLY_AUTHORIZED: the co-owners' answer. Held in its first state (holds=[0]): only the control API or the
# dashboard moves it, complete/advance = all approve, fail = one declines; the 5-day expiry closes it as NOT_APPROVED.
CO_OWNERS_KIND = f"{PROVIDER}.co_owners"
CO_OWNERS_STATES = ["AWAITING_CO_OWNERS", "APPROVED"]
CO_OWNERS_FAILED = "NOT_APPROVED"
JOURNEY_KIND, BANK_KIND = "journey", "bank_sca"
JOURNEY_PURPOSE, BANK_PURPOSE = f"{PROVIDER}.journey", f"{PROVIDER}.bank_sca"   # page-token purposes
JOURNEY_TTL = 24 * 3600.0   # (inferred) the connectUrl's lifetime is undocumented: one day on the sandbox clock
FETCH_STEP_SECONDS = 2.0    # (inferred) s.6 only says "background": one state per 2 s on the sandbox clock
WEBHOOK_EVENT = "CONNECTIONS"   # callbackInformation.webhooks.products value for connection events (s.6/s.9)
OK = data.OK_STATUSES
# Fields of the public Connection object (s.6); everything else in the document is sandbox bookkeeping.
PUBLIC = ("id", "userId", "customerId", "psuId", "psuIdType", "psuCorporateId", "providerId", "status", "mode",
          "expiryDate", "accounts", "cards", "savings", "loans", "securities", "transactions", "providerIds",
          "includeFakeProviders", "excludeCreditCardProviders", "callbackInformation", "refreshSettings", "error",
          "organization", "isFake", "restrictedTo", "iframe", "access", "contactId", "redirectUrl", "startDate",
          "createdAt", "updatedAt", "scaOAuth", "verifier", "lastFetchedDataDate", "language", "paymentId",
          "allowBusiness", "allowInsurance", "isPriority", "customerApprovalGranted", "journeyId", "externalId",
          "agentEmail", "connectionMode")
COUNTS = ("accounts", "cards", "savings", "loans", "securities", "transactions")
_CREATE_COPY = ("customerId", "psuId", "psuIdType", "psuCorporateId", "startDate", "expiryDate", "redirectUrl",
                "language", "iframe", "restrictedTo", "access", "callbackInformation", "journeyId", "externalId",
                "agentEmail", "paymentId", "allowBusiness", "allowInsurance", "contactId", "customerApprovalGranted",
                "excludeCreditCardProviders", "isPriority")


def co_owners_job_id(connection_id: str) -> str:
    """The id of the co-owners job of a PARTIALLY_AUTHORIZED connection (s.8): derived, so a test can address it."""
    return f"{connection_id}.co_owners"


def _day(value: str | None) -> str | None:
    return value[:10] if value else None


def _expiry_instant(value: str | None) -> datetime | None:
    """``expiryDate`` (date-time, or a bare date meaning its midnight UTC) as an instant; None without one or for a
    value no instant can hold (year 0, an offset past year 1), which create and init refuse (_check_expiry)."""
    if not value or not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=timezone.utc)
        return parse_instant(value)
    except (ValueError, OverflowError):
        return None


def _check_expiry(body: dict) -> None:
    """s.6 ``expiryDate`` is a date-time: the schema's format check lets year 0 through, which no instant can hold
    (Joi-style 400, as startDate)."""
    value = body.get("expiryDate")
    if isinstance(value, str) and value and _expiry_instant(value) is None:
        raise invalid("expiryDate", "must be a valid date", "format")


class Connections:
    """create/list/get/delete/refresh connections, open-banking init/finalize, providers, branches, journey flows."""

    def setup(self) -> None:
        """Register the fetch job kind and its hook, the journey and bank-SCA flows; read the production switch."""
        self.production_enabled = bool(self.sb.config.get("OPEN_FINANCE_PRODUCTION_ENABLED", False))
        # s.4: with a big-query export enabled, a connection can be deleted only once it is 90 minutes old (423)
        self.bigquery_export = bool(self.sb.config.get("OPEN_FINANCE_BIGQUERY_EXPORT", False))
        # other areas drop their per-connection state here (called with tenant, user_id, connection_id)
        self.connection_deleted_hooks: list = []
        self.sb.jobs.register_default(FETCH_KIND, {"mode": "auto", "seconds": FETCH_STEP_SECONDS, "polls": None})
        self.sb.jobs.on_transition(FETCH_KIND, self._on_fetch)
        # the co-owners job is held in its first state, which no policy leaves; manual says so once more
        self.sb.jobs.register_default(CO_OWNERS_KIND, {"mode": "manual"})
        self.sb.jobs.on_transition(CO_OWNERS_KIND, self._on_co_owners)
        self.sb.flows.register(PROVIDER, JOURNEY_KIND, JourneyFlow(self.sb.flows, self))
        self.sb.flows.register(PROVIDER, BANK_KIND, BankScaFlow(self.sb.flows, self))

    # --- documents -------------------------------------------------------------------------------------------
    def org_id(self, tenant: str) -> str:
        """The organisation's id (UUID v4, s.10 inferred), stable for a seed and tenant."""
        return uuid4(random.Random(stable_seed(self.sb.seed.get(), tenant, "open_finance.orgId")))

    def connection_view(self, tenant: str, doc: dict) -> dict:
        """The public Connection object (s.6): documented fields only, counts from the data endpoints (accounts.py)."""
        out = {k: doc.get(k) for k in PUBLIC if k in doc}
        counts = self.connection_counts(tenant, doc) if hasattr(self, "connection_counts") else {}
        for key in COUNTS:
            out[key] = counts.get(key)
        return out

    def _doc(self, tenant: str, user_id: str, connection_id: str) -> dict | None:
        return self._connections(tenant, user_id).get(connection_id) if connection_id else None

    def _load(self, tenant: str, user_id: str, connection_id: str, message: str = data.CONNECTION_NOT_FOUND) -> dict:
        """The settled connection, or 404 with the operation's documented text (s.4)."""
        doc = self._doc(tenant, user_id, connection_id)
        if doc is None:
            raise NotFound(message)
        return self.settle(tenant, user_id, doc)

    def connections_for_data(self, tenant: str, user_id: str) -> list[dict]:
        """Every connection of a user with due transitions applied (expiry, daily refresh, finished fetches): data
        endpoints call this before reading ledgers, so data moves forward with the clock."""
        return [self.settle(tenant, user_id, doc) for doc in self._connections(tenant, user_id).list()]

    # --- the state machine -------------------------------------------------------------------------------------
    def settle(self, tenant: str, user_id: str, doc: dict) -> dict:
        """Apply every transition that is due on the sandbox clock (s.8) and return the current document."""
        job_id = doc.get("_fetchJob")
        if job_id and doc["status"] in ("FETCHING", "CONNECTED"):
            self.sb.jobs.get(tenant, job_id)   # due job steps fire _on_fetch, which moves the connection
            doc = self._doc(tenant, user_id, doc["id"]) or doc
        now = self.sb.clock.now(tenant)
        status = doc["status"]
        expiry = _expiry_instant(doc.get("expiryDate"))
        if status not in data.TERMINAL and expiry is not None and now >= expiry:
            return self._expire(tenant, user_id, doc, expiry)
        if status == "PARTIALLY_AUTHORIZED":
            due = parse_instant(doc["_statusSince"]) + timedelta(days=data.PARTIAL_AUTH_DAYS)
            if now >= due:
                return self._expire(tenant, user_id, doc, due)
        if status == "ACTIVE":
            last = (doc.get("refreshSettings") or {}).get("lastFetchedDataDate")
            if last and now.date() > parse_instant(last).date():
                return self._refresh_data(tenant, user_id, doc["id"], status, daily=True) or doc
        return doc

    def await_co_owners(self, tenant: str, user_id: str, connection_id: str) -> dict:
        """A connection entered PARTIALLY_AUTHORIZED: its co-owners' job, held until the control API answers (s.8:
        all approve -> the fetch, one declines -> REJECTED; _on_co_owners applies the answer)."""
        return self.sb.jobs.create(tenant, CO_OWNERS_KIND, list(CO_OWNERS_STATES), owner=user_id,
                                   data={"connectionId": connection_id}, job_id=co_owners_job_id(connection_id),
                                   holds=[0], failed_state=CO_OWNERS_FAILED)

    def _expire(self, tenant: str, user_id: str, doc: dict, at: datetime) -> dict:
        """EXPIRED at ``at`` (consent expiry, or s.8's 5 days without the co-owners' answer); a still open co-owners
        job is closed, so an answer sent afterwards finds nothing to approve."""
        moved = self._set_status(tenant, user_id, doc["id"], "EXPIRED", at=at, expect=(doc["status"],),
                                 error=data.ERRORS["EXPIRED"])
        if moved is not None and doc["status"] == "PARTIALLY_AUTHORIZED":
            self._close_co_owners(tenant, doc["id"])
        return moved or self._doc(tenant, user_id, doc["id"]) or doc

    def _close_co_owners(self, tenant: str, connection_id: str) -> None:
        job_id = co_owners_job_id(connection_id)
        job = self.sb.jobs.peek(tenant, job_id)
        if job is None or self.sb.jobs.is_final(job):
            return
        try:
            self.sb.jobs.fail(tenant, job_id, f"No answer from the co-owners within {data.PARTIAL_AUTH_DAYS} days",
                              {"reason": "EXPIRED"})
        except Conflict:
            pass   # answered at this very moment: the hook sees the connection EXPIRED and does nothing

    def _on_co_owners(self, tenant: str, job: dict, state: str) -> None:
        """Job hook (s.8): the co-owners answered. APPROVED -> the fetch every consent gets (FETCHING -> CONNECTED ->
        COMPLETED, or ACTIVE with refreshData: s.11's inferred rule); failed -> REJECTED. Only while the connection is
        still PARTIALLY_AUTHORIZED: a due expiry is applied first and wins over a late answer."""
        if (job.get("error") or {}).get("reason") == "EXPIRED":
            return   # closed by the expiry itself (_close_co_owners): the connection is EXPIRED already
        user_id, connection_id = job["owner"], job["data"]["connectionId"]
        doc = self._doc(tenant, user_id, connection_id)
        if doc is None:
            return
        doc = self.settle(tenant, user_id, doc)
        if doc["status"] != "PARTIALLY_AUTHORIZED":
            return
        if state == CO_OWNERS_STATES[-1]:
            refresh = bool((doc.get("refreshSettings") or {}).get("refreshData"))
            self._start_fetch(tenant, user_id, connection_id, data.fetch_states("ACTIVE", refresh),
                              expect=("PARTIALLY_AUTHORIZED",))
        elif state == job["failed_state"]:   # a co-owner declined
            self._set_status(tenant, user_id, connection_id, "REJECTED", expect=("PARTIALLY_AUTHORIZED",),
                             error=data.ERRORS["REJECTED"])

    def _set_status(self, tenant: str, user_id: str, connection_id: str, status: str, *, at: datetime | None = None,
                    expect: tuple | None = None, error: dict | None = None, changes: dict | None = None) -> dict | None:
        """Move a connection to ``status`` atomically if it is in one of ``expect``; enqueue its webhooks. Returns the
        new document, or None when another request moved it first (each transition happens, and is sent, once)."""
        now = self.sb.clock.now(tenant)
        at = at or now
        moved: dict = {}

        def apply(doc):
            moved.clear()
            if expect is not None and doc["status"] not in expect:
                return doc
            doc = {**doc, **(changes or {}), "status": status, "updatedAt": isoformat(now),
                   "_statusSince": isoformat(at)}
            if error is not None:
                doc["error"] = dict(error)
            moved.update(doc)
            return doc

        try:
            self._connections(tenant, user_id).update(connection_id, apply)
        except NotFound:
            return None   # deleted meanwhile
        if not moved:
            return None
        self._publish(tenant, moved)
        return moved

    def _consent(self, tenant: str, user_id: str, connection_id: str, provider_id: str, psu_id: str,
                 psu_id_type: str | None = None) -> dict:
        """The user consented at ``provider_id`` as ``psu_id`` (journey or finalize): the s.11 outcome starts."""
        doc = self._doc(tenant, user_id, connection_id)
        if doc is None or doc["status"] != "INACTIVE":
            raise FlowUsed()
        info = data.provider(provider_id) or {}
        changes = {"providerId": provider_id, "psuId": psu_id, "psuIdType": psu_id_type or doc.get("psuIdType") or "ID",
                   "isFake": bool(info.get("isFake")), "customerApprovalGranted": True}
        outcome = data.psu_outcome(provider_id, psu_id)
        if outcome in ("REJECTED", "PARTIALLY_AUTHORIZED"):
            # decided at the bank itself: no fetch (s.8: joint accounts wait for their co-owners)
            moved = self._set_status(tenant, user_id, connection_id, outcome, expect=("INACTIVE",), changes=changes,
                                     error=data.ERRORS.get(outcome))
            if moved is not None and outcome == "PARTIALLY_AUTHORIZED":
                self.await_co_owners(tenant, user_id, connection_id)
            return moved or self._doc(tenant, user_id, connection_id)
        refresh = bool((doc.get("refreshSettings") or {}).get("refreshData"))
        return self._start_fetch(tenant, user_id, connection_id, data.fetch_states(outcome, refresh),
                                 expect=("INACTIVE",), changes=changes)

    def _start_fetch(self, tenant: str, user_id: str, connection_id: str, states: list[str], *, expect: tuple,
                     changes: dict | None = None) -> dict:
        """FETCHING now, the next states on the job engine (its hook moves the connection)."""
        moved = self._set_status(tenant, user_id, connection_id, "FETCHING", expect=expect, changes=changes)
        if moved is None:
            return self._doc(tenant, user_id, connection_id)
        job = self.sb.jobs.create(tenant, FETCH_KIND, states, owner=user_id, data={"connectionId": connection_id})
        self._connections(tenant, user_id).patch(connection_id, {"_fetchJob": job["id"]})
        return self._doc(tenant, user_id, connection_id)

    def _on_fetch(self, tenant: str, job: dict, state: str) -> None:
        """Job hook: the fetch reached ``state``; the connection follows unless it left FETCHING/CONNECTED meanwhile."""
        user_id, connection_id = job["owner"], job["data"]["connectionId"]
        at = parse_instant(job["step_since"])
        if state == "CONNECTED":
            self._set_status(tenant, user_id, connection_id, state, at=at, expect=("FETCHING",))
        elif state in OK:
            self._refresh_data(tenant, user_id, connection_id, state, at=at, expect=("FETCHING", "CONNECTED"))
        else:
            self._set_status(tenant, user_id, connection_id, state, at=at, expect=("FETCHING", "CONNECTED"),
                             error=data.ERRORS.get(state))

    def _refresh_data(self, tenant: str, user_id: str, connection_id: str, status: str, *,
                      at: datetime | None = None, expect: tuple | None = None, daily: bool = False) -> dict | None:
        """(Re)build the connection's one ledger up to today (same seed key: older bookings stay identical), bump
        ``dataVersion`` (the financial report's cache key) and enter ``status``; REPLACE older ACTIVE twins."""
        doc = self._doc(tenant, user_id, connection_id)
        if doc is None:
            return None
        now = self.sb.clock.now(tenant)
        ledger = data.apply_test_accounts(generate_ledger(self.sb.seed.get(), doc["psuId"], now.date(), market="IL"),
                                          doc["psuId"])
        version: dict = {}

        def apply(current):
            version.clear()
            if expect is not None and current["status"] not in expect:
                return current
            last = (current.get("refreshSettings") or {}).get("lastFetchedDataDate")
            if daily and (current["status"] != "ACTIVE" or (last and parse_instant(last).date() >= now.date())):
                return current   # another request refreshed it today already
            settings = {**(current.get("refreshSettings") or {}), "lastFetchedDataDate": isoformat(now)}
            new = {**current, "status": status, "dataVersion": int(current.get("dataVersion") or 0) + 1,
                   "refreshSettings": settings, "lastFetchedDataDate": isoformat(now), "updatedAt": isoformat(now),
                   "error": None}
            if current["status"] != status:
                new["_statusSince"] = isoformat(at or now)
                version["_changed"] = True
            version.update(new)
            return new

        self.sb.store.put(tenant, _LEDGERS, connection_id, ledger.to_json())
        try:
            doc = self._connections(tenant, user_id).update(connection_id, apply)
        except NotFound:
            self.sb.store.delete(tenant, _LEDGERS, connection_id)
            return None
        if not version:
            return doc
        changed = version.pop("_changed", False)
        if status == "ACTIVE" and changed:
            self._replace_twins(tenant, user_id, version)
        if changed:
            self._publish(tenant, version)
        return version

    def _replace_twins(self, tenant: str, user_id: str, doc: dict) -> None:
        """s.8: an older ACTIVE connection of the same psuId and provider becomes REPLACED."""
        for other in self._connections(tenant, user_id).list():
            if (other["id"] != doc["id"] and other["status"] == "ACTIVE" and other.get("psuId") == doc["psuId"]
                    and other.get("providerId") == doc["providerId"] and other["createdAt"] <= doc["createdAt"]):
                self._set_status(tenant, user_id, other["id"], "REPLACED", expect=("ACTIVE",))

    # --- webhooks (s.9) ------------------------------------------------------------------------------------------
    def webhook_payload(self, tenant: str, doc: dict) -> dict:
        """The documented connection-status payload; accountNumbers are the IBANs of the connection's accounts."""
        raw = self.sb.store.get(tenant, _LEDGERS, doc["id"]) if doc["status"] in (*OK, "CONNECTED") else None
        ibans = [a["iban"] for a in (raw or {}).get("accounts", []) if a.get("iban")]
        payload = {"expiryDate": _day(doc.get("expiryDate")), "bankName": doc.get("providerId"),
                   "connectionId": doc["id"], "connectionStatus": doc["status"], "userId": doc["userId"],
                   "orgId": doc.get("orgId") or self.org_id(tenant)}
        if doc.get("error"):
            payload["connectionError"] = {"message": doc["error"]["message"], "type": doc["error"]["type"]}
        payload["accountNumbers"] = ibans
        return payload

    def _publish(self, tenant: str, doc: dict) -> list[dict]:
        """Enqueue the status webhook to the organisation's subscriptions and the connection's own URL (s.9)."""
        payload = self.webhook_payload(tenant, doc)
        deliveries = self.sb.webhooks.publish(tenant, PROVIDER, WEBHOOK_EVENT, payload)
        hooks = (doc.get("callbackInformation") or {}).get("webhooks") or {}
        url = hooks.get(data.WEBHOOK_ROUTE.get(doc["status"], ""))
        products = hooks.get("products")
        if url and hooks.get("enabled", True) and (not products or WEBHOOK_EVENT in products):
            headers = dict(hooks.get("customHeaders") or {})
            basic = hooks.get("basic") or {}
            if basic.get("enabled") and basic.get("username") is not None:
                import base64
                pair = f"{basic['username']}:{basic.get('password') or ''}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
            # (inferred) oauth client-credentials tokens are not fetched by the sandbox: deliveries go without them
            deliveries.append(self.sb.webhooks.enqueue(tenant, PROVIDER, WEBHOOK_EVENT, url, payload, headers=headers,
                                                       owner=doc["userId"]))
        return deliveries

    def fire_webhook(self, tenant: str, body: dict) -> list[dict]:
        """Control API (``POST /_sandbox/webhooks/fire {"provider": "open_finance", ...}``): send the current status
        webhook of every connection of the tenant (or of ``user_id``, or one ``connectionId``) now. With
        ``organizationWebhook`` ({url, events?, auth?, headers?} or null) it first sets or removes the organisation's
        webhook (the dashboard's Settings -> Alerts, s.9)."""
        if "organizationWebhook" in body:
            self.set_organization_webhook(tenant, body["organizationWebhook"])
            if not (body.get("user_id") or body.get("connectionId")):
                return []
        deliveries = []
        for key, doc in self.sb.store.list(tenant, _CONNECTIONS):
            if body.get("user_id") and doc["userId"] != body["user_id"]:
                continue
            if body.get("connectionId") and doc["id"] != body["connectionId"]:
                continue
            deliveries += self._publish(tenant, self.settle(tenant, doc["userId"], doc))
        return deliveries

    def set_organization_webhook(self, tenant: str, spec: dict | None) -> dict | None:
        """The organisation-level webhook (s.9 "Settings -> Alerts"): a core subscription of this provider with the
        fixed id ``organization``; None removes it."""
        try:
            self.sb.webhooks.unsubscribe(tenant, PROVIDER, "organization")
        except NotFound:
            pass
        if not spec:
            return None
        if not isinstance(spec, dict):
            raise BadRequest("organizationWebhook must be an object {url, events?, auth?, headers?} or null")
        return self.sb.webhooks.subscribe(tenant, PROVIDER, url=spec.get("url"),
                                          events=spec.get("events") or [WEBHOOK_EVENT], auth=spec.get("auth"),
                                          headers=spec.get("headers"), sub_id="organization", signature=False)

    # --- operations ----------------------------------------------------------------------------------------------
    def _allowed_providers(self, include_fake: bool, provider_ids: list[str] | None) -> list[dict]:
        """Providers a journey may offer: ``providerIds`` (empty = all); sandbox ones only with includeFakeProviders;
        real ones only for a production-enabled organisation (s.6 sandbox rule)."""
        out = []
        for p in data.providers():
            if provider_ids and p["providerFriendlyId"] not in provider_ids:
                continue
            if p["isFake"] and not include_fake:
                continue
            if not p["isFake"] and not self.production_enabled:
                continue
            out.append(p)
        return out

    def create_connection(self, ctx) -> dict:
        """201 {id, connectUrl}: an INACTIVE connection and its consent journey (s.6, s.8, s.12)."""
        body = ctx.body or {}
        if "startDate" in body and data.parse_day(body["startDate"]) is None:
            # s.6: startDate is a date YYYY-MM-DD; the schema's format check lets year 0 through (Joi-style 400)
            raise invalid("startDate", "must be a valid date", "format")
        _check_expiry(body)
        include_fake = bool(body.get("includeFakeProviders", False))
        if not include_fake and not self.production_enabled:
            raise BadRequest(data.PRODUCTION_ACCESS)   # s.6 sandbox rule, text from s.4
        allowed = self._allowed_providers(include_fake, body.get("providerIds"))
        if not allowed:
            raise NotFound(data.NO_PROVIDERS)
        tenant, user_id = ctx.tenant, ctx.user
        coll = self._connections(tenant, user_id)
        now = isoformat(ctx.now())
        doc = {"userId": user_id, "status": "INACTIVE", "mode": body.get("connectionMode") or "PSD2",
               "providerId": allowed[0]["providerFriendlyId"] if len(allowed) == 1 else None,
               "providerIds": list(body.get("providerIds") or []), "includeFakeProviders": include_fake,
               "refreshSettings": {"refreshData": bool(body.get("refreshData", False)),
                                   "frequencyPerDay": 1 if body.get("refreshData") else 0, "lastFetchedDataDate": None},
               "error": None, "organization": {"name": tenant}, "isFake": include_fake and all(
                   p["isFake"] for p in allowed), "createdAt": now, "updatedAt": now, "lastFetchedDataDate": None,
               "orgId": self.org_id(tenant), "dataVersion": 0, "_statusSince": now,
               "_seq": self.sb.store.incr(tenant, f"{PROVIDER}.connection_seq", "n")}   # creation order
        doc.update({k: body[k] for k in _CREATE_COPY if k in body})
        doc.setdefault("iframe", False)
        doc = coll.create(doc)
        flow, token = self.sb.flows.create(
            tenant, PROVIDER, JOURNEY_KIND, flow_id=doc["id"], redirect_uri=body.get("redirectUrl"),
            data={"tenant_id": tenant, "user_id": user_id, "providers": [p["providerFriendlyId"] for p in allowed],
                  "provider_id": doc["providerId"], "psu_locked": body.get("psuId"), "language": body.get("language"),
                  "iframe": bool(body.get("iframe"))},
            ttl=JOURNEY_TTL, first_step="consent" if len(allowed) == 1 else "provider", purpose=JOURNEY_PURPOSE)
        return {"id": doc["id"], "connectUrl": ctx.url_for("connect_journey", connectionId=doc["id"], token=token)}

    def list_connections(self, ctx) -> dict:
        """{nextPage, count, items}: the token user's connections, oldest first (``sort=-1`` newest first)."""
        if "userId" in ctx.query:
            raise BadRequest("userId is not allowed in query for non-admin users")   # s.4
        docs = sorted(self.connections_for_data(ctx.tenant, ctx.user), key=lambda d: (d["createdAt"], d.get("_seq", 0), d["id"]))
        wanted = {k: ctx.query.get(k) or None for k in ("customerId", "contactId")}
        status = ctx.query.get("status") or None
        page = open_finance_page(docs, ctx.query, filter=wanted, post_filter={"status": status}, with_count=True,
                                 max_limit=500, bind=f"connections\x00{ctx.user}\x00{sorted(wanted.items())}\x00{status}",
                                 secret=ctx.sandbox.cursor_secret(ctx.tenant))
        page["items"] = [self.connection_view(ctx.tenant, d) for d in page["items"]]
        return page

    def get_connection(self, ctx, connectionId: str) -> dict:
        """One connection (poll its status); 404 ``No connection was found`` (s.6)."""
        return self.connection_view(ctx.tenant, self._load(ctx.tenant, ctx.user, connectionId))

    def delete_connection(self, ctx, connectionId: str) -> None:
        """204; the connection, its ledger (all its accounts and transactions), journey and fetch job are gone.
        423 while it is younger than 90 minutes on the sandbox clock when OPEN_FINANCE_BIGQUERY_EXPORT is set (s.4)."""
        tenant, user_id = ctx.tenant, ctx.user
        doc = self._doc(tenant, user_id, connectionId)
        if doc is not None and self.bigquery_export:
            unlocked = parse_instant(doc["createdAt"]) + timedelta(minutes=data.DELETE_LOCK_MINUTES)
            if self.sb.clock.now(tenant) < unlocked:
                raise Locked(data.DELETE_LOCKED)
        if doc is None or not self._connections(tenant, user_id).delete(connectionId):
            raise NotFound(data.DELETE_NOT_FOUND)
        self.sb.store.delete(tenant, _LEDGERS, connectionId)
        self.sb.store.delete(tenant, f"{PROVIDER}.flows", connectionId)
        self.sb.store.delete(tenant, f"{PROVIDER}.flows", f"{connectionId}.bank")
        if doc.get("_fetchJob"):
            self.sb.jobs.delete(tenant, doc["_fetchJob"])
        self.sb.jobs.delete(tenant, co_owners_job_id(connectionId))   # s.8: nothing left to approve
        for hook in self.connection_deleted_hooks:
            hook(tenant, user_id, connectionId)
        return None

    def _refresh(self, tenant: str, user_id: str, doc: dict, strict: bool) -> None:
        doc = self.settle(tenant, user_id, doc)
        if doc["status"] == "FETCHING" or (doc["status"] == "CONNECTED" and doc.get("_fetchJob")):
            return   # a fetch is running already
        if doc["status"] not in OK:
            if strict:
                # (inferred) the reference gives no text for refreshing a connection without consent
                raise BadRequest(f"Connection in status {doc['status']} can not be refreshed")
            return
        self._start_fetch(tenant, user_id, doc["id"], ["FETCHING", doc["status"]], expect=(doc["status"],))

    def refresh_connection(self, ctx, connectionId: str) -> None:
        """204: a background re-fetch, FETCHING -> back to ACTIVE/COMPLETED with data up to today (s.6)."""
        if not connectionId.strip():
            raise BadRequest("connectionId missing from params")   # s.4
        doc = self._doc(ctx.tenant, ctx.user, connectionId)
        if doc is None:
            raise NotFound(data.CONNECTION_NOT_FOUND)
        self._refresh(ctx.tenant, ctx.user, doc, strict=True)

    def refresh_user_connections(self, ctx, userId: str) -> None:
        """204: re-fetch every ACTIVE/COMPLETED connection of the user. (inferred) Another user's id, or a user
        without connections, is 404 ``No connection was found``: a token only ever sees its own user (s.3)."""
        docs = self._connections(ctx.tenant, ctx.user).list() if userId == ctx.user else []
        if not docs:
            raise NotFound(data.CONNECTION_NOT_FOUND)
        for doc in docs:
            self._refresh(ctx.tenant, ctx.user, doc, strict=False)

    # --- headless journey: open-banking init / bank SCA / finalize ---------------------------------------------
    def open_banking_init(self, ctx) -> dict:
        """{connection, scaOAuth}: the user goes to the bank's SCA page (page ``bank_sca``) for an INACTIVE
        connection; the bank sends ``code`` and ``state`` back to the connection's redirectUrl (s.6)."""
        body, tenant, user_id = ctx.body, ctx.tenant, ctx.user
        _check_expiry(body)
        doc = self._load(tenant, user_id, body["connectionId"])
        provider = data.provider(body["providerId"])
        if provider is None or provider not in self._allowed_providers(doc.get("includeFakeProviders", False),
                                                                       doc.get("providerIds")):
            if provider is not None and not provider["isFake"] and not self.production_enabled:
                raise BadRequest(data.PRODUCTION_ACCESS)
            raise NotFound(data.NO_PROVIDERS)
        if doc["status"] != "INACTIVE":
            raise BadRequest(f"Connection in status {doc['status']} can not be initiated")   # (inferred)
        state = self.sb.ids.secret_rng(tenant, "open_finance.sca_state").getrandbits(128).to_bytes(16, "big").hex()
        flow, token = self.sb.flows.create(
            tenant, PROVIDER, BANK_KIND, flow_id=f"{doc['id']}.bank", redirect_uri=doc.get("redirectUrl"),
            data={"tenant_id": tenant, "user_id": user_id, "connection_id": doc["id"], "sca_state": state,
                  "provider_id": provider["providerFriendlyId"], "code": None}, ttl=JOURNEY_TTL, first_step="authorize",
            purpose=BANK_PURPOSE)
        sca = ctx.url_for("bank_sca", connectionId=doc["id"], token=token)
        self.sb.collection(tenant, _SCA, scope=user_id).put(state, {"connectionId": doc["id"], "code": None,
                                                                    "used": False})
        changes = {"providerId": provider["providerFriendlyId"], "psuId": body["psuId"], "scaOAuth": sca,
                   "isFake": provider["isFake"], "updatedAt": isoformat(ctx.now())}
        for key in ("psuIdType", "psuCorporateId", "expiryDate", "restrictedTo", "customerApprovalGranted"):
            if key in body:
                changes[key] = body[key]
        if "refreshData" in body:
            changes["refreshSettings"] = {**(doc.get("refreshSettings") or {}), "refreshData": bool(body["refreshData"]),
                                          "frequencyPerDay": 1 if body["refreshData"] else 0}
        doc = self._connections(tenant, user_id).patch(doc["id"], changes)
        return {"connection": self.connection_view(tenant, doc), "scaOAuth": sca}

    def open_banking_finalize(self, ctx) -> dict:
        """After the bank's redirect: ``code`` + ``state`` start the fetch, ``error`` rejects (s.6, s.8)."""
        tenant, user_id, query = ctx.tenant, ctx.user, ctx.query
        states = self.sb.collection(tenant, _SCA, scope=user_id)
        record = states.get(query["state"])
        doc = self._doc(tenant, user_id, record["connectionId"]) if record else None
        if record is None or doc is None:
            raise BadRequest("Invalid state")   # (inferred) unknown, foreign or deleted
        if record["used"]:
            raise BadRequest("The state was already used")   # (inferred)
        error = query.get("error")
        if not error and (not record["code"] or query.get("code") != record["code"]):
            raise BadRequest("Invalid code")   # (inferred)

        def use(current):
            if current["used"]:
                raise BadRequest("The state was already used")
            return {**current, "used": True}
        states.update(query["state"], use)
        if error:
            doc = self._set_status(tenant, user_id, doc["id"], "REJECTED", expect=("INACTIVE",),
                                   error=data.ERRORS["REJECTED"]) or self._doc(tenant, user_id, doc["id"])
        else:
            try:
                doc = self._consent(tenant, user_id, doc["id"], doc["providerId"], doc["psuId"])
            except FlowUsed:
                raise BadRequest(f"Connection in status {doc['status']} can not be finalized") from None
        self.sb.store.delete(tenant, f"{PROVIDER}.flows", doc["id"])   # the journey link is spent too
        return {"connectionId": doc["id"], "connectionStatus": doc["status"], "paymentStatus": None,
                "orgId": doc.get("orgId") or self.org_id(tenant), "userId": user_id, "paymentId": doc.get("paymentId"), "token": None,
                "isIframe": bool(doc.get("iframe")), "isPayment": False, "psuId": doc.get("psuId"),
                "redirectUrl": doc.get("redirectUrl")}

    # --- providers and branches ----------------------------------------------------------------------------------
    def list_providers(self, ctx) -> list:
        """200 array of Provider (s.6); sandbox providers only with ``includeFakeProviders=true``; ``type`` filters
        (sandbox extension, inferred). 404 ``No providers were found`` when nothing matches."""
        include_fake = ctx.query.get("includeFakeProviders") == "true"
        kind = ctx.query.get("type")
        out = []
        for p in data.providers():
            if (p["isFake"] and not include_fake) or (kind and p["type"] != kind):
                continue
            out.append({**p, "image": asset_url(ctx, p["image"])})
        if not out:
            raise NotFound(data.NO_PROVIDERS)
        return out

    def list_bank_branches(self, ctx) -> list:
        """200 array of branches of ``bankCode`` (required, s.6); (inferred) 404 for a bank without branches."""
        branches = data.bank_branches().get(int(ctx.query["bankCode"]))
        if not branches:
            raise NotFound("No branches were found")
        return [dict(b) for b in branches]


# --- hosted pages: the consent journey and the bank SCA page (s.12) --------------------------------------------
_EVENTS = {"success": "success", "error": "fail", "cancel": "close"}   # s.12 window messages per flow outcome


def _lang(flow: dict, requested: str | None = None) -> str:
    """The connection's language; unset, the user's choice (``?lang=`` or the posted ``language``), else Hebrew."""
    if flow.get("language") in data.LANGUAGES:
        return flow["language"]
    if requested in data.LANGUAGES:
        return requested
    return flow.get("chosen_language") or "he"


class _Journeys(FlowDefinition):
    step_field = "step"

    def __init__(self, flows, service):
        super().__init__(flows)
        self.service = service

    def _connection(self, flow: dict) -> dict | None:
        return self.service._doc(flow["tenant_id"], flow["user_id"], flow.get("connection_id") or flow["id"])

    def _page(self, template: str, ctx, flow: dict, **values):
        from .pages import page_context
        return render_template(template, **page_context(ctx, flow, **values))


class JourneyFlow(_Journeys):
    """The consent journey (``connectUrl``). Hidden ``flow_id`` (= connectionId), ``step`` and ``language``; steps:
    ``provider`` (``providerId``), ``consent`` (``psuId``, then ``continue=1``, or ``reject=1``), ``bank``
    (``approve=1`` or ``reject=1``); ``close=1`` leaves at any step (TERMINATED_BY_USER)."""

    cancel_field = "close"

    def render(self, ctx, tenant, flow, error):
        return self._page("open_finance_journey.html", ctx, flow, error=error)

    def _remember(self, flow: dict, form: dict) -> None:
        if form.get("language") in data.LANGUAGES and not flow.get("language"):
            flow["chosen_language"] = form["language"]

    def step_provider(self, tenant, flow, form):
        self._remember(flow, form)
        if form.get("providerId") not in flow["providers"]:
            return Next.stay("choose")
        flow["provider_id"] = form["providerId"]
        return Next.goto("consent")

    def step_consent(self, tenant, flow, form):
        self._remember(flow, form)
        if "reject" in form:
            return Next.finish("error", reason="rejected")
        psu_id = flow.get("psu_locked") or form.get("psuId", "").strip()
        if not re.fullmatch(data.PSU_ID_PATTERN, psu_id):
            return Next.stay("invalid_psu")
        flow["psu_id"] = psu_id
        return Next.goto("bank")

    def step_bank(self, tenant, flow, form):
        self._remember(flow, form)
        if "approve" not in form:
            return Next.finish("error", reason="rejected")
        doc = self.service._consent(tenant, flow["user_id"], flow["id"], flow["provider_id"], flow["psu_id"])
        return Next.finish("error" if doc["status"] == "REJECTED" else "success")

    def cancel(self, tenant, flow, form):
        self.service._set_status(tenant, flow["user_id"], flow["id"], "TERMINATED_BY_USER", expect=("INACTIVE",),
                                 error=data.ERRORS["TERMINATED_BY_USER"])
        return Next.finish("cancel")

    def end(self, tenant, flow, outcome, **result):
        if outcome == "error" and result.get("reason") == "rejected":
            self.service._set_status(tenant, flow["user_id"], flow["id"], "REJECTED", expect=("INACTIVE",),
                                     error=data.ERRORS["REJECTED"])
        return super().end(tenant, flow, outcome, **result)

    def redirect_params(self, flow, outcome, result):
        # s.12 (inferred query): ?connectionId=<id>&status=<STATUS>, the status the connection has now
        doc = self._connection(flow)
        return [("connectionId", flow["id"]), ("status", doc["status"] if doc else "")]

    def finished(self, ctx, tenant, flow, url):
        if not flow.get("iframe"):
            return super().finished(ctx, tenant, flow, url)
        # iframe=true: post the s.12 window message to the parent first, then go on to redirectUrl (if any)
        return make_response(self._page("open_finance_done.html", ctx, flow, event=_EVENTS[flow["outcome"]], url=url))

    def render_done(self, ctx, tenant, flow):
        return self._page("open_finance_done.html", ctx, flow, event=None, url=None)

    def complete(self, tenant, flow, outcome, options):
        """Control API: ``success`` consents as ``psuId`` (default: the locked one, else 043510023) at
        ``providerId`` (default: the chosen one, else the first offered); ``error`` rejects; ``cancel`` closes."""
        if outcome == "cancel":
            self.cancel(tenant, flow, {})
            return self.end(tenant, flow, "cancel")
        if outcome == "error":
            return self.end(tenant, flow, "error", reason="rejected")
        provider_id = options.get("providerId") or flow.get("provider_id") or flow["providers"][0]
        if provider_id not in flow["providers"]:
            raise BadRequest(f"providerId must be one of {flow['providers']}")
        psu_id = flow.get("psu_locked") or options.get("psuId") or "043510023"
        if not isinstance(psu_id, str) or not re.fullmatch(data.PSU_ID_PATTERN, psu_id):
            raise BadRequest("psuId must be 5-9 digits")
        flow.update(provider_id=provider_id, psu_id=psu_id)
        try:
            doc = self.service._consent(tenant, flow["user_id"], flow["id"], provider_id, psu_id)
        except FlowUsed:
            raise Conflict(f"connection {flow['id']} is no longer INACTIVE") from None
        return self.end(tenant, flow, "error" if doc["status"] == "REJECTED" else "success")


class BankScaFlow(_Journeys):
    """The simulated bank SCA page (``scaOAuth``) of the headless path. Hidden ``flow_id``; ``approve=1`` redirects
    to redirectUrl ``?code=&state=``, ``reject=1`` to ``?error=access_denied&state=`` (no redirectUrl: a page
    showing them). The connection changes only when the client calls ``open_banking_finalize``."""

    step_field = None
    cancel_field = "reject"

    def render(self, ctx, tenant, flow, error):
        return self._page("open_finance_bank.html", ctx, flow, error=error)

    def step_authorize(self, tenant, flow, form):
        if "approve" not in form:
            return Next.stay()
        return Next.finish("success", code=self._issue_code(tenant, flow))

    def _issue_code(self, tenant: str, flow: dict) -> str:
        code = self.service.sb.ids.secret_rng(tenant, "open_finance.sca_code").getrandbits(128).to_bytes(16, "big").hex()
        flow["code"] = code
        self.service.sb.collection(tenant, _SCA, scope=flow["user_id"]).patch(flow["sca_state"], {"code": code})
        return code

    def cancel(self, tenant, flow, form):
        return Next.finish("error", error="access_denied")

    def redirect_params(self, flow, outcome, result):
        if outcome == "success":
            return [("code", result.get("code") or flow.get("code")), ("state", flow["sca_state"])]
        return [("error", "access_denied"), ("state", flow["sca_state"])]

    def render_done(self, ctx, tenant, flow):
        return self._page("open_finance_bank.html", ctx, flow, error=None, done=True)

    def complete(self, tenant, flow, outcome, options):
        """Control API: ``success`` approves (a code for finalize), ``error``/``cancel`` deny (error=access_denied)."""
        if outcome == "success":
            return self.end(tenant, flow, "success", code=self._issue_code(tenant, flow))
        return self.end(tenant, flow, outcome, error="access_denied")
