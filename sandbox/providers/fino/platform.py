"""finoOS platform area: authentication (JWT), users and tenants, user scopes, the analysis lifecycle, webhooks,
advisors (with the advisor onboarding page) and platform status. fino.md sections 3, 4, 6, 7, 10 and 11.

For the other areas:
- ``start_analysis(ctx, user_id, trigger=..., only_if_active=...)`` starts an analysis run (upload ``finish``,
  Banking UI connect, sync); ``correlation(ctx, user_id)`` is the section 6 correlation body (404 while running).
- ``live_user(ctx, user_id)`` loads a user of ``ctx.tenant`` (404 when unknown or past ``expiresIn``) and sets
  ``ctx.user_scopes``; ``new_user(tenant, ...)`` creates one (upload ``start``, connect for an unknown id).
- ``expire_user_at(tenant, user_id, at)`` schedules a user's deletion (``expiresIn``; non-recurring connect users
  after 24 h); ``delete_user_data(tenant, user_id)`` deletes a user with all its data and calls every area's
  ``forget_user(tenant, user_id)`` hook, so an area with storage of its own defines one.
- ``analysis_results(tenant, user_id, run)`` computes a run's results (keyed by webhook event / result name);
  part 2 extends it with ``super()`` and its results become the webhooks' ``data``.
"""
from __future__ import annotations

import base64
import hmac
import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from urllib.parse import unquote

from flask import render_template, request

from ...core.clock import isoformat, parse_instant
from ...core.context import TENANT_SEP, VERSION
from ...core.dispatch import Reply, public_base_url
from ...core.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from ...core.paging import FINO_CONTEXT, fino_page
from . import model, tokens

PROVIDER = model.PROVIDER

# --- scopes (fino.md section 4) ------------------------------------------------------------------------------------
ALL_SCOPES = [
    "banking", "banking-fetch", "banking-connect", "banking-upload", "categorization", "categorization-categories",
    "account-detection", "account-history", "contracts", "cockpits", "renter-information", "webhooks",
    "companies", "companiesLogo",
    "person-income-salary", "person-income-pension", "person-income-child-benefit",
    "person-income-parental-allowance", "person-income-rental", "person-income-investment", "person-income-loan",
    "person-income-alimony", "person-income-self-employment", "person-income-other",
    "company-cash", "company-liquidity", "company-foreign-payment", "company-risk", "company-credit",
    "company-insurance", "company-investment",
    "credits", "bankingExternal",   # seen in the token example, undocumented
]
# userScopes: a per-user subset that limits what is calculated and readable; can only grow (section 4)
USER_SCOPES = ("banking", "banking-fetch", "banking-upload", "account-detection", "categorization", "contracts",
               "cockpits")
BANKING_USER_SCOPES = ("banking", "banking-fetch", "banking-upload")

# --- webhooks (fino.md section 11) ---------------------------------------------------------------------------------
COCKPIT_EVENTS = ("personcockpit", "companycockpit", "personcockpit-recommendations",
                  "companycockpit-recommendations", "cockpitrecommendations.notification")   # confirmed
RESULT_EVENTS = ("banking", "categorization", "account-detection", "account-history", "contracts")   # inferred
EVENTS = (*COCKPIT_EVENTS, *RESULT_EVENTS)
CORRELATION_HEADER = "Finoos-Correlation-Id"

# --- analysis runs (fino.md section 6) -----------------------------------------------------------------------------
ANALYSIS_STATES = ["RUNNING", "DONE"]
ANALYSIS_STATUSES = {"RUNNING": "running", "DONE": "done", "FAILED": "failed"}
ANALYSIS_DELAY = 2.0   # section 6: "stays running for a configurable delay (default 2 s)"

ADVISORS = f"{PROVIDER}.advisors"
_SEQ = f"{PROVIDER}.user_seq"
_EXPIRY = f"{PROVIDER}.user_expiry"   # "<expiresAt>|<userID>" -> {}: the purge walks it in time order
PUBLIC_USER_FIELDS = ("automaticAnalysis", "createdAt", "customUserID", "name", "type", "userID", "userScopes")
ADVISOR_FIELDS = ("mail", "name", "onboardingMail", "phoneNumber", "reportAccess", "reportInterval", "reportRole",
                  "reportSend", "role", "sendMail", "type", "welcomeMail")
_ADVISOR_BOOLS = ("onboardingMail", "reportAccess", "reportSend", "sendMail", "welcomeMail")

SCENARIOS: list[dict] = [
    {"provider": PROVIDER, "value": "expiresIn", "where": "create_user body",
     "effect": "the user (and all its data) is deleted once the sandbox clock passes createdAt + expiresIn seconds"},
    {"provider": PROVIDER, "value": "TenantID", "where": "header of every user-related call",
     "effect": "works in that sub-tenant of the client (created on first use); users are invisible across tenants"},
    {"provider": PROVIDER, "value": "fino.analysis", "where": "PUT /_sandbox/jobs/policy {kind}",
     "effect": "analysis runs finish 2 s after they start (sandbox clock); set instant or manual per kind"},
]


def invalid(field: str, message: str) -> ValidationFailed:
    """A 400 invalidInput naming ``field`` (for rules a schema cannot express)."""
    return ValidationFailed([{"pointer": f"/{field}", "field": field, "message": message, "validator": "custom"}])


def tenant_name(tenant: str) -> str:
    """The name a client sees: its own tenant id, or the ``TenantID`` it named (stored quoted after a '/')."""
    return unquote(tenant.split(TENANT_SEP, 1)[1]) if TENANT_SEP in tenant else tenant


def base_tenant(tenant: str) -> str:
    return tenant.split(TENANT_SEP, 1)[0]


def berlin_timestamp(instant: datetime | str) -> str:
    """RFC 3339 with the Europe/Berlin offset (``+01:00`` / ``+02:00``), as correlation timestamps are (s.13).
    EU summer time: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC."""
    at = parse_instant(instant) if isinstance(instant, str) else instant.astimezone(timezone.utc)

    def last_sunday(month: int) -> datetime:
        day = datetime(at.year, month, 31, 1, tzinfo=timezone.utc)
        return day - timedelta(days=(day.weekday() + 1) % 7)

    hours = 2 if last_sunday(3) <= at < last_sunday(10) else 1
    local = at + timedelta(hours=hours)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f"+0{hours}:00"


def _ordered_scopes(scopes) -> list[str]:
    held = set(scopes)
    return [s for s in USER_SCOPES if s in held]


def _creation(user: dict) -> tuple:
    return user["createdAt"], user.get("seq", 0), user["userID"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Platform:
    def setup(self) -> None:
        """The analysis run kind (2 s on the sandbox clock by default) and finoOS's webhook defaults: no HMAC
        header (a subscriber's secret travels in the payload, section 11)."""
        self.result_computers = {}
        self.sb.runs.register(model.ANALYSIS, ANALYSIS_STATES, done_state="DONE", failed_state="FAILED",
                              compute=self._compute_analysis, statuses=ANALYSIS_STATUSES, while_running="previous",
                              on_done=self._analysis_done)
        self.sb.jobs.register_default(model.ANALYSIS, {"mode": "auto", "seconds": ANALYSIS_DELAY, "polls": None})
        self.sb.webhooks.configure(PROVIDER, signature=False)

    def _scope(self, tenant: str):
        """A stand-in request context for model.py's helpers outside a request (ticker, hooks, pages)."""
        return SimpleNamespace(sandbox=self.sb, tenant=tenant)

    # ================================================================================================================
    # section 3: authentication
    # ================================================================================================================
    def authenticate(self, ctx) -> dict:
        """Client-credentials grant (form-encoded; the schema demands grant_type=client_credentials): a signed JWT
        living 300 s on the sandbox clock, carrying the client's booked scopes."""
        client = ctx.client
        scopes = self.sb.auth.allowed_scopes(client, PROVIDER, ALL_SCOPES)
        tenant = client["tenant"]
        session_state = self.sb.ids.uuid4(tenant, "fino-session-state")
        token = tokens.make_access_token(
            self.sb, client, scopes, now=self.sb.clock.now(tenant), jti=self.sb.ids.uuid4(tenant, "fino-jti"),
            session_state=session_state, issuer=f"{public_base_url(self.sb.config)}/fino/auth/realms/{tokens.REALM}",
            client_address=request.remote_addr or "127.0.0.1")
        self.sb.auth.issue(PROVIDER, client, token, tokens.TTL, scopes=scopes,
                           data={"session_state": session_state})
        return {"access_token": token, "expires_in": tokens.TTL, "not-before-policy": tokens.NOT_BEFORE_POLICY,
                "scope": " ".join(scopes), "session_state": session_state, "token_type": "Bearer"}

    # ================================================================================================================
    # sections 4 and 7: users and tenants
    # ================================================================================================================
    def _users(self, tenant: str):
        return model.users(self._scope(tenant))

    def _expired(self, tenant: str, user: dict) -> bool:
        at = user.get("expiresAt")
        return bool(at) and self.sb.clock.now(tenant) >= parse_instant(at)

    def _live(self, tenant: str, user_id: str) -> dict | None:
        user = self._users(tenant).get(user_id)
        if user is not None and self._expired(tenant, user):
            self.delete_user_data(tenant, user_id)   # lazily on read
            return None
        return user

    def live_user(self, ctx, user_id: str) -> dict:
        """The user of ``ctx.tenant`` or 404 (unknown, another tenant's, expired); sets ``ctx.user_scopes``."""
        user = self._live(ctx.tenant, user_id)
        if user is None:
            raise NotFound("User not found")
        ctx.user_scopes = set(user.get("userScopes") or ())
        return user

    @staticmethod
    def require_user_scopes(ctx, *alternatives: str) -> None:
        """403 unless the user holds one of ``alternatives`` (section 4: results outside the user's scopes)."""
        if ctx.user_scopes is not None and not set(alternatives) & set(ctx.user_scopes):
            raise Forbidden()

    def new_user(self, tenant: str, *, type: str, automaticAnalysis: str = "active", customUserID: str | None = None,
                 name: str | None = None, userScopes=None, expiresIn: int | None = None,
                 advisorIDs=(), user_id: str | None = None) -> dict:
        """Create a user in ``tenant`` (UUID v4 id unless ``user_id`` is given, e.g. the connect guide's "unknown
        id creates the user"; createdAt on the sandbox clock; all user scopes by default). Conflict if it exists."""
        self.purge_expired_users(tenant)
        now = self.sb.clock.now(tenant)
        users = self._users(tenant)
        doc = {"automaticAnalysis": automaticAnalysis or "active", "createdAt": isoformat(now),
               "customUserID": customUserID or "", "name": name or "", "type": type,
               "userScopes": _ordered_scopes(USER_SCOPES if userScopes is None else userScopes),
               "advisorIDs": list(dict.fromkeys(advisorIDs)),
               "seq": self.sb.store.incr(tenant, _SEQ, "users")}   # creation order on a frozen clock
        user = users.create(doc, id=user_id or users.new_id(), conflict=Conflict("User exists already"))
        if expiresIn is not None:
            user = self.expire_user_at(tenant, user["userID"], now + timedelta(seconds=expiresIn))
        return user

    def expire_user_at(self, tenant: str, user_id: str, at: datetime) -> dict:
        """Schedule the user's deletion at ``at`` (sandbox clock): lazily on read and by the purge."""
        stamp = isoformat(at)
        user = self._users(tenant).update(user_id, lambda u: {**u, "expiresAt": stamp}, NotFound("User not found"))
        self.sb.store.put(tenant, _EXPIRY, f"{stamp}|{user_id}", {})
        return user

    def purge_expired_users(self, tenant: str) -> int:
        """Delete every user of ``tenant`` whose expiry has passed on the sandbox clock; returns how many."""
        horizon = isoformat(self.sb.clock.now(tenant))
        gone = 0
        due = []
        for key, _ in self.sb.store.list(tenant, _EXPIRY):
            if key.split("|", 1)[0] > horizon:
                break
            due.append(key)
        for key in due:
            stamp, user_id = key.split("|", 1)
            user = self._users(tenant).get(user_id)
            if user is not None and user.get("expiresAt") == stamp:
                self.delete_user_data(tenant, user_id)
                gone += 1
            self.sb.store.delete(tenant, _EXPIRY, key)
        return gone

    def delete_user_data(self, tenant: str, user_id: str) -> None:
        """Delete the user and everything stored for it: accounts, transactions, bank logins, and whatever each
        area's ``forget_user(tenant, user_id)`` hook removes."""
        for cls in type(self).__mro__:
            hook = cls.__dict__.get("forget_user")
            if hook is not None:
                hook(self, tenant, user_id)
        scope = self._scope(tenant)
        # one scope level up covers every (user, account) pair of the user (core/collections.py)
        self.sb.collection(tenant, model.TRANSACTIONS, scope=user_id).clear()
        model.accounts(scope, user_id).clear()
        model.bank_logins(scope, user_id).clear()
        user = self._users(tenant).get(user_id)
        if user is not None and user.get("expiresAt"):
            self.sb.store.delete(tenant, _EXPIRY, f"{user['expiresAt']}|{user_id}")
        self._users(tenant).delete(user_id)

    @staticmethod
    def public_user(user: dict) -> dict:
        return {k: user[k] for k in PUBLIC_USER_FIELDS}

    @staticmethod
    def _context(ctx) -> dict:
        return {"client": ctx.client["client_id"], "tenant": tenant_name(ctx.tenant)}

    def list_users(self, ctx) -> dict:
        self.purge_expired_users(ctx.tenant)
        users = self._users(ctx.tenant).list(sort_key=_creation)
        page = fino_page([self.public_user(u) for u in users if not self._expired(ctx.tenant, u)], ctx.query,
                         FINO_CONTEXT, items_key="users", client=ctx.client["client_id"],
                         tenant=tenant_name(ctx.tenant))
        return page

    def create_user(self, ctx) -> dict:
        body = ctx.body
        user = self.new_user(ctx.tenant, type=body["type"], automaticAnalysis=body.get("automaticAnalysis"),
                             customUserID=body.get("customUserID"), name=body.get("name"),
                             userScopes=body.get("userScopes"), expiresIn=body.get("expiresIn"))
        return {"context": self._context(ctx), "user": self.public_user(user)}

    def get_user(self, ctx, user_id: str) -> dict:
        return {"context": self._context(ctx), "user": self.public_user(self.live_user(ctx, user_id))}

    def update_user(self, ctx, user_id: str) -> dict:
        body = ctx.body or {}
        for fixed in ("type", "userScopes"):   # section 7: type and scopes are not updatable
            if body.get(fixed) is not None:
                raise invalid(fixed, f"{fixed} cannot be updated" + (" (use add_user_scopes)" if fixed ==
                                                                      "userScopes" else ""))
        self.live_user(ctx, user_id)
        changes = {k: body[k] for k in ("automaticAnalysis", "customUserID", "name") if body.get(k) is not None}
        user = self._users(ctx.tenant).patch(user_id, changes, NotFound("User not found"))
        return {"context": self._context(ctx), "user": self.public_user(user)}

    def delete_user(self, ctx, user_id: str) -> None:
        self.live_user(ctx, user_id)
        self.delete_user_data(ctx.tenant, user_id)

    def delete_users(self, ctx) -> dict:
        deleted, not_found = [], []
        for user_id in ctx.body["userIDs"]:
            if self._live(ctx.tenant, user_id) is None:
                not_found.append(user_id)
            else:
                self.delete_user_data(ctx.tenant, user_id)
                deleted.append(user_id)
        # the sandbox never fails a deletion: failedToDelete stays empty
        return {"users": {"deleted": deleted, "failedToDelete": [], "notFound": not_found}}

    def _client_tenants(self, tenant: str) -> list[str]:
        """The client's own tenant and every TenantID sub-tenant of it that holds data."""
        base = base_tenant(tenant)
        return [t for t in self.sb.store.tenants() if t == base or t.startswith(base + TENANT_SEP)]

    def get_user_by_custom_user_id(self, ctx, custom_user_id: str) -> dict:
        """Section 7: only users whose cockpit was created (an analysis with the cockpits scope completed) are
        found; ``duplicates`` lists the client's other users with that customUserID, in any of its tenants."""
        matches = []
        for tenant in self._client_tenants(ctx.tenant):
            self.purge_expired_users(tenant)
            for user in self._users(tenant).iter(lambda u: u.get("customUserID") == custom_user_id):
                matches.append((tenant, user))
        matches.sort(key=lambda m: _creation(m[1]))
        found = next((m for m in matches if m[0] == ctx.tenant and m[1].get("cockpitAt")), None)
        if found is None:
            raise NotFound("User not found")
        tenant, user = found
        advisors = list(user.get("advisorIDs") or [])
        return {"advisorID": advisors[0] if advisors else "", "advisorIDs": advisors, "createdAt": user["createdAt"],
                "customUserID": user["customUserID"],
                "duplicates": [{"createdAt": u["createdAt"], "customUserID": u["customUserID"], "id": u["userID"],
                                "name": u["name"], "tenant": tenant_name(t), "type": u["type"]}
                               for t, u in matches if u["userID"] != user["userID"]],
                "id": user["userID"], "tenant": tenant_name(tenant), "type": user["type"]}

    def add_user_scopes(self, ctx, user_id: str) -> Reply:
        """Scopes are only ever added (section 4); a recalculation run starts with the grown set."""
        user = self.live_user(ctx, user_id)
        scopes = _ordered_scopes([*user["userScopes"], *ctx.body["userScopes"]])
        self._users(ctx.tenant).patch(user_id, {"userScopes": scopes}, NotFound("User not found"))
        ctx.user_scopes = set(scopes)
        run = self.start_analysis(ctx, user_id, trigger="scopes")
        return Reply({"correlationID": run["id"], "userScopes": scopes}, headers={CORRELATION_HEADER: run["id"]})

    def assign_advisors(self, tenant: str, user_id: str, advisor_ids) -> dict:
        """Connect a user's cockpit to advisors (upload ``advisors[]``, the advisor onboarding page)."""
        return self._users(tenant).update(user_id, lambda u: {**u, "advisorIDs": list(dict.fromkeys(
            [*(u.get("advisorIDs") or []), *advisor_ids]))}, NotFound("User not found"))

    # ================================================================================================================
    # section 6: the analysis lifecycle
    # ================================================================================================================
    def start_analysis(self, ctx, user_id: str, *, trigger: str = "api", only_if_active: bool = False,
                       correlation_id: str | None = None) -> dict | None:
        """Start an analysis run for the user (a new correlationID; correlation endpoints 404 until it is done).
        ``only_if_active``: automatic starts (connect, sync) happen only for ``automaticAnalysis: active`` users
        (None returned otherwise). ``correlation_id``: an id announced earlier (the connect session's
        ``Finoos-Correlation-Id``); default a new UUID. ``ctx`` needs only ``.tenant``."""
        user = self._live(ctx.tenant, user_id)
        if user is None:
            raise NotFound("User not found")
        if only_if_active and user.get("automaticAnalysis") != "active":
            return None
        params = {"trigger": trigger, "userScopes": list(user["userScopes"]), "type": user["type"]}
        return self.sb.runs.start(ctx.tenant, model.ANALYSIS, user_id, params=params, correlation_id=correlation_id)

    def analysis_run(self, ctx, user_id: str) -> dict | None:
        """The user's newest run (running, done or failed), or None; reading counts as a poll."""
        return self.sb.runs.current(ctx.tenant, model.ANALYSIS, user_id, poll=True)

    def correlation(self, ctx, user_id: str) -> dict:
        """Section 6: {correlationID, correlationTimestamp} of the newest run once done; 404 before, while it runs
        or after it failed."""
        run = self.analysis_run(ctx, user_id)
        if run is None:
            raise NotFound("No analysis has been run for this user yet")
        if not run["done"]:
            raise NotFound("The analysis failed" if run["failed"] else "The analysis is still running")
        return {"correlationID": run["id"], "correlationTimestamp": berlin_timestamp(run["completed_at"])}

    def trigger_analysis(self, ctx, user_id: str) -> Reply:
        user = self.live_user(ctx, user_id)
        if model.accounts(ctx, user_id).count() == 0:
            raise Conflict("The user has no raw banking data: upload or connect accounts first")
        current = self.sb.runs.current(ctx.tenant, model.ANALYSIS, user_id)
        if current is not None and not current["done"] and not current["failed"]:
            raise Conflict(f"An analysis is already in progress (correlationID {current['id']})")
        run = self.start_analysis(ctx, user_id, trigger="api")
        return Reply({"correlationID": run["id"], "userScopes": user["userScopes"]},
                     headers={CORRELATION_HEADER: run["id"]})

    def get_banking_correlation(self, ctx, user_id: str) -> dict:
        self.live_user(ctx, user_id)
        self.require_user_scopes(ctx, *BANKING_USER_SCOPES)
        return self.correlation(ctx, user_id)

    def _compute_analysis(self, tenant: str, user_id: str, run: dict) -> dict:
        return self.analysis_results(tenant, user_id, run)

    def analysis_results(self, tenant: str, user_id: str, run: dict) -> dict:
        """A run's results keyed by result (= webhook event) name: the banking snapshot the run saw, then every
        result kind an area registered (``register_result``), each computed from the bookings as they are now."""
        scope = self._scope(tenant)
        accounts = model.accounts(scope, user_id).list()
        count = sum(model.transactions(scope, user_id, a["accountId"]).count() for a in accounts)
        results = {"banking": {"accounts": len(accounts), "transactions": count}}
        for kind, compute in self.result_computers.items():
            results[kind] = compute(scope, user_id, run, results)
        return results

    def register_result(self, kind: str, compute) -> None:
        """Let an area add a result kind to every analysis run: ``compute(scope, user_id, run, results_so_far)``
        returns a JSON-able dict stored with the run (kinds computed in registration order)."""
        self.result_computers[kind] = compute

    def read_result(self, ctx, user_id: str, kind: str, *user_scopes: str, raw: bool = False) -> dict | str:
        """The newest completed run's ``kind`` result for a live user of this tenant: 404 before the first run
        completed (the previous run's results while a new one runs, section 6), 403 outside the user's scopes.
        ``raw``: its stored JSON text, to serve as is (a cockpit is ~200 KB: no decode and re-encode per read)."""
        self.live_user(ctx, user_id)
        if user_scopes:
            self.require_user_scopes(ctx, *user_scopes)
        results = self.sb.runs.results(ctx.tenant, model.ANALYSIS, user_id, poll=True)
        if kind not in results:
            raise NotFound(f"No {kind} results for this user yet")
        return results.text(kind) if raw else results[kind]

    @staticmethod
    def analysis_events(user_type: str, scopes) -> list[str]:
        """The webhook events a completed run emits, by the user's scopes (section 11)."""
        scopes = set(scopes)
        events = []
        if scopes & set(BANKING_USER_SCOPES):
            events += ["banking", "account-history"]
        events += [e for e in ("categorization", "account-detection", "contracts") if e in scopes]
        if "cockpits" in scopes:
            kind = "company" if user_type == "company" else "person"
            events += [f"{kind}cockpit", f"{kind}cockpit-recommendations", "cockpitrecommendations.notification"]
        return events

    def _analysis_done(self, tenant: str, run: dict, results: dict) -> None:
        user = self._users(tenant).get(run["subject"])
        if user is None:
            return   # deleted while the run ran
        scopes = run["params"].get("userScopes") or user["userScopes"]
        if "cockpits" in scopes and not user.get("cockpitAt"):
            user = self._users(tenant).update(user["userID"], lambda u: {**u, "cockpitAt": run["completed_at"]})
        for event in self.analysis_events(user["type"], scopes):
            self.publish_event(tenant, event, user, run, results.get(event))

    def _payload(self, tenant: str, event: str, user: dict | None, correlation_id: str, at: str, data) -> callable:
        body = {"event": event, "userID": user["userID"] if user else "",
                "customUserID": user.get("customUserID", "") if user else "", "tenantID": tenant_name(tenant),
                "correlationID": correlation_id, "timestamp": berlin_timestamp(at),
                "data": data if data is not None else {"correlationID": correlation_id,
                                                       "correlationTimestamp": berlin_timestamp(at)}}

        def for_subscriber(sub: dict) -> dict:
            return {**body, "secret": sub["secret"]} if sub.get("secret") else body
        return for_subscriber

    def publish_event(self, tenant: str, event: str, user: dict | None, run: dict, data=None) -> list[dict]:
        """Enqueue ``event`` for every subscription of the client (its base tenant) that listens to it, with the
        run's correlation id in the ``Finoos-Correlation-Id`` header (section 11)."""
        return self.sb.webhooks.publish(
            base_tenant(tenant), PROVIDER, event,
            self._payload(tenant, event, user, run["id"], run.get("completed_at") or isoformat(
                self.sb.clock.now(tenant)), data), headers={CORRELATION_HEADER: run["id"]})

    # ================================================================================================================
    # section 11: webhooks (subscriptions belong to the client: its base tenant, whatever TenantID says)
    # ================================================================================================================
    @staticmethod
    def _public_webhook(sub: dict) -> dict:
        out = {"id": sub["id"], "url": sub["url"], "method": sub["method"], "events": sub["events"]}
        if sub.get("secret"):
            out["secret"] = sub["secret"]
        out["createdAt"] = sub["created_at"]
        return out

    def _webhook(self, ctx, webhook_id: str) -> dict:
        try:
            return self.sb.webhooks.get_subscription(ctx.base_tenant, PROVIDER, webhook_id)
        except NotFound:
            raise NotFound("Webhook not found") from None

    def list_webhooks(self, ctx) -> dict:
        return {"webhooks": [self._public_webhook(s) for s in self.sb.webhooks.subscriptions(ctx.base_tenant,
                                                                                             PROVIDER)]}

    def create_webhook(self, ctx) -> dict:
        body = ctx.body
        sub = self.sb.webhooks.subscribe(ctx.base_tenant, PROVIDER, url=body["url"],
                                         events=list(dict.fromkeys(body["events"])),
                                         method=body.get("method") or "POST", secret=body.get("secret") or None)
        return self._public_webhook(sub)

    def get_webhook(self, ctx, webhook_id: str) -> dict:
        return self._public_webhook(self._webhook(ctx, webhook_id))

    def update_webhook(self, ctx, webhook_id: str) -> dict:
        body = ctx.body or {}
        self._webhook(ctx, webhook_id)
        changes = {k: body.get(k) for k in ("url", "method", "secret")}
        if body.get("events") is not None:
            changes["events"] = list(dict.fromkeys(body["events"]))
        try:
            sub = self.sb.webhooks.update_subscription(ctx.base_tenant, PROVIDER, webhook_id, **changes)
        except NotFound:
            raise NotFound("Webhook not found") from None
        return self._public_webhook(sub)

    def delete_webhook(self, ctx, webhook_id: str) -> None:
        self._webhook(ctx, webhook_id)
        self.sb.webhooks.unsubscribe(ctx.base_tenant, PROVIDER, webhook_id)

    def _find_user(self, tenant: str, user_id: str) -> tuple[str, dict] | tuple[None, None]:
        for t in self._client_tenants(tenant):
            user = self._live(t, user_id)
            if user is not None:
                return t, user
        return None, None

    def fire_webhook(self, tenant: str, body: dict) -> list[dict]:
        """Control API (``POST /_sandbox/webhooks/fire {"provider": "fino", "user_id"?, "event"?, "data"?}``):
        enqueue every subscription's events now (or only ``event``); with ``user_id`` the payload is that user's
        with the correlation id and results of its last completed run."""
        if TENANT_SEP in tenant:
            raise BadRequest("name the client's tenant: webhooks belong to the client, not to a TenantID")
        event = body.get("event")
        if event is not None and event not in EVENTS:
            raise BadRequest(f"event must be one of {', '.join(EVENTS)}")
        user_tenant, user = (None, None)
        if body.get("user_id"):
            user_tenant, user = self._find_user(tenant, str(body["user_id"]))
            if user is None:
                raise NotFound(f"user {body['user_id']} not found in tenant {tenant} or its TenantIDs")
        run = results = None
        if user is not None:
            run = self.sb.runs.last_completed(user_tenant, model.ANALYSIS, user["userID"])
            if run is not None:
                results = self.sb.runs.results(user_tenant, model.ANALYSIS, user["userID"], correlation_id=run["id"])
        now = isoformat(self.sb.clock.now(tenant))
        cid = run["id"] if run else self.sb.ids.uuid4(tenant, "correlation")
        at = run["completed_at"] if run else now
        deliveries = []
        for sub in self.sb.webhooks.subscriptions(tenant, PROVIDER, event):
            for ev in [event] if event else [e for e in sub["events"] if e != "*"] or list(EVENTS):
                data = body["data"] if "data" in body else (results or {}).get(ev)
                payload = self._payload(user_tenant or tenant, ev, user, cid, at, data)(sub)
                deliveries.append(self.sb.webhooks.enqueue(tenant, PROVIDER, ev, sub["url"], payload,
                                                           headers={CORRELATION_HEADER: cid}, method=sub["method"],
                                                           sub_id=sub["id"]))
        return deliveries

    # ================================================================================================================
    # section 10 "Advisors" (provisional CRUD) and the advisor onboarding page
    # ================================================================================================================
    def _advisors(self, tenant: str):
        return self.sb.collection(tenant, ADVISORS, id_field="id")

    def link_id(self, tenant: str, advisor_id: str) -> str:
        """The advisor's cockpit-creation link id: names tenant and advisor, signed with the store's key (so the
        unauthenticated page finds them and no one can forge a link into another tenant)."""
        payload = _b64(json.dumps([tenant, advisor_id], separators=(",", ":")).encode())
        mac = self.sb.secret.derive("fino-advisor-link", payload)
        return f"{payload}.{_b64(mac[:16])}"

    def resolve_link(self, link_id: str) -> tuple[str, dict]:
        """(tenant, advisor) of a link id; NotFound for a forged, foreign or deleted one."""
        try:
            payload, mac = link_id.split(".")
            expected = self.sb.secret.derive("fino-advisor-link", payload, create=False)
            if expected is None or not hmac.compare_digest(_b64(expected[:16]), mac):
                raise ValueError("signature")
            tenant, advisor_id = json.loads(_unb64(payload))
            if not isinstance(tenant, str) or not isinstance(advisor_id, str):
                raise ValueError("shape")
        except (ValueError, TypeError, UnicodeDecodeError):
            raise NotFound("Advisor link not found") from None
        advisor = self._advisors(tenant).get(advisor_id)
        if advisor is None:
            raise NotFound("Advisor link not found")
        return tenant, advisor

    def _public_advisor(self, ctx, advisor: dict) -> dict:
        out = {"id": advisor["id"], "linkID": advisor["linkID"],
               "linkURL": ctx.url_for("advisor_cockpit_onboarding", linkID=advisor["linkID"])}
        out.update({k: advisor[k] for k in ADVISOR_FIELDS})
        out["createdAt"] = advisor["createdAt"]
        return out

    def list_advisors(self, ctx) -> dict:
        advisors = self._advisors(ctx.tenant).list(sort_key=lambda a: (a["createdAt"], a["id"]))
        return {"advisors": [self._public_advisor(ctx, a) for a in advisors]}

    def create_advisor(self, ctx) -> dict:
        coll = self._advisors(ctx.tenant)
        advisor_id = coll.new_id()
        doc = {k: ctx.body.get(k, False if k in _ADVISOR_BOOLS else "") for k in ADVISOR_FIELDS}
        doc.update(linkID=self.link_id(ctx.tenant, advisor_id), createdAt=isoformat(ctx.now()))
        return self._public_advisor(ctx, coll.create(doc, id=advisor_id))

    def _advisor(self, ctx, advisor_id: str) -> dict:
        return self._advisors(ctx.tenant).load(advisor_id, NotFound("Advisor not found"))

    def get_advisor(self, ctx, advisor_id: str) -> dict:
        return self._public_advisor(ctx, self._advisor(ctx, advisor_id))

    def update_advisor(self, ctx, advisor_id: str) -> dict:
        changes = {k: v for k, v in (ctx.body or {}).items() if k in ADVISOR_FIELDS and v is not None}
        advisor = self._advisors(ctx.tenant).patch(advisor_id, changes, NotFound("Advisor not found"))
        return self._public_advisor(ctx, advisor)

    def delete_advisor(self, ctx, advisor_id: str) -> None:
        self._advisors(ctx.tenant).delete_or_404(advisor_id, NotFound("Advisor not found"))

    def advisor_onboarding(self, ctx, link_id: str):
        """The page behind an advisor's link: an end user creates a cockpit (a user, analysed automatically)
        assigned to that advisor. Plain form posts; errors re-render the form with status 400."""
        try:
            tenant, advisor = self.resolve_link(link_id)
        except NotFound:
            return render_template("advisor_error.html", message="This advisor link is invalid or no longer "
                                                                 "exists."), 404
        values = {"name": "", "type": "person", "customUserID": ""}
        if request.method != "POST":
            return render_template("advisor_onboarding.html", advisor=advisor, values=values, error=None,
                                   link_id=link_id)
        form = request.form
        values = {k: (form.get(k) or "").strip() for k in values}
        error = None
        if form.get("linkID") != link_id:
            error = "The form does not belong to this advisor link. Reload the page."
        elif not values["name"] or len(values["name"]) > 200:
            error = "Please enter your name (up to 200 characters)."
        elif values["type"] not in ("person", "company"):
            error = "Please choose person or company."
        elif len(values["customUserID"]) > 200:
            error = "The customer number may have up to 200 characters."
        elif form.get("consent") != "1":
            error = "Please agree that your advisor may see your cockpit."
        if error:
            return render_template("advisor_onboarding.html", advisor=advisor, values=values, error=error,
                                   link_id=link_id), 400
        user = self.new_user(tenant, type=values["type"], name=values["name"],
                             customUserID=values["customUserID"] or None, advisorIDs=[advisor["id"]])
        return render_template("advisor_done.html", advisor=advisor, user=user)

    # ================================================================================================================
    # section 10 "Platform status"
    # ================================================================================================================
    def get_platform_status(self, ctx) -> dict:
        return {"status": "ok", "version": VERSION}


def advisor_onboarding_page(ctx, linkID: str):
    """fino.advisor_cockpit_onboarding: GET shows the form, POST creates the advisor's new user."""
    return ctx.service.advisor_onboarding(ctx, linkID)
