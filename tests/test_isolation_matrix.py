"""Isolation matrix, generated from the operation table: every served operation whose route takes a path id, on
every provider, present and future.

For each such route the owner (user A of tenant T1) creates the resource; then (i) user B of the same tenant and
(ii) a user of another tenant T2 call the route with THEIR OWN valid credentials and the owner's ids (and, for
routes with several ids, with their own id in one place and the owner's in another): they must be refused with the
provider's documented "not found / invalid / forbidden" status, never a 2xx, and nothing of the owner's may change.
Then the owner still gets its 2xx.

How to create a provider's resources and credentials lives in one small table, FACTORIES, keyed by provider and
then by operation: a provider or operation with path ids but no entry FAILS the matrix (covered by construction).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from sandbox import create_app
from sandbox.core.operations import path_params
from sandbox.core.store import MemoryStore

WALL = datetime(2025, 4, 23, 9, 30, tzinfo=timezone.utc)
CALLBACK = "https://my-app.example.com/callback"
OTHER_CLIENT = ("isolation-t2", "isolation-t2-secret-0123456789")


def _app():
    return create_app({"SEED": 5}, store=MemoryStore(), system_clock=lambda: WALL)


def _basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _ok(resp, *statuses):
    assert resp.status_code in (statuses or (200, 201)), (resp.status_code, resp.get_data(as_text=True)[:400])
    return resp.get_json(silent=True)


def _control(http, path: str, body: dict | None = None, status: int = 200) -> dict:
    return _ok(http.post(f"/_sandbox/{path}", json=body or {}), status)


# --- the table: per provider, how to make an owner, its peers and each operation's request ----------------------

@dataclass
class Entry:
    """How one operation is called in the matrix.

    ``ids(actor)`` gives the path ids of ``actor``'s own resource (fresh if the call may consume it);
    ``request(actor)`` the actor's own valid credentials and a valid body; ``snapshot(owner)`` what the intruders
    must leave unchanged (None: nothing beyond the owner's 2xx); ``owned=False`` marks a path parameter that names
    no owned resource (anyone may use it): the intruder then gets its own result, which ``own_result`` checks.
    ``client_wide=True`` marks a resource a provider documents as the client's, shared by all its sub-tenants (finoOS
    webhooks, fino.md s.11): where the "user of the same tenant" is the same client in another sub-tenant, that
    caller is the owner itself, so only the other tenant is an intruder."""

    ids: Callable
    request: Callable
    snapshot: Callable | None = None
    owned: bool = True
    own_result: Callable | None = None
    client_wide: bool = False   # the resource belongs to the whole client, not to one of its sub-tenants (see below)


@dataclass
class Factory:
    """A provider's entry in FACTORIES: set-up of the three callers, refusal statuses and one Entry per operation."""

    setup: Callable                         # app -> (owner, same_tenant_user, other_tenant_user)
    refused: frozenset                      # the provider's documented not found / invalid / forbidden statuses
    entries: dict[str, Entry] = field(default_factory=dict)


# --- Open Finance ------------------------------------------------------------------------------------------------

class OFUser:
    """A Bearer for one userId of one client (report guide step 1) and a DONE report job of that user."""

    def __init__(self, http, user: str, client=("sandbox-client", "sandbox-secret")):
        self.http = http
        self.token = _ok(http.post("/open-finance/oauth/token", json={
            "userId": user, "clientId": client[0], "clientSecret": client[1]}))["accessToken"]
        self.job = self.new_job()
        for _ in range(2):   # DONE on its 2nd poll
            _ok(http.get(f"/open-finance/financial-report/{self.job}", headers=_bearer(self.token)))

    def new_job(self, customer: str = "043510023") -> str:
        return _ok(self.http.post(f"/open-finance/financial-report/{customer}", headers=_bearer(self.token)))["jobId"]


def _of_setup(app):
    http = app.test_client()
    _control(http, "clients", {"client_id": OTHER_CLIENT[0], "client_secret": OTHER_CLIENT[1]}, 201)
    return OFUser(http, "owner@example.com"), OFUser(http, "peer@example.com"), \
        OFUser(http, "owner@example.com", OTHER_CLIENT)   # same userId, other tenant: still someone else


def _of_own_job(owner, intruder, response):
    """A report for any customerId is the caller's own job: its owner can poll it, the other cannot."""
    job = response.get_json()["jobId"]
    assert job != owner.job
    assert intruder.http.get(f"/open-finance/financial-report/{job}", headers=_bearer(intruder.token)).status_code \
        == 200
    assert owner.http.get(f"/open-finance/financial-report/{job}", headers=_bearer(owner.token)).status_code == 400


_OF_CALL = lambda actor: (_bearer(actor.token), None)   # noqa: E731

# --- decisions.py helpers: decision / scoring jobs and the monthly report of one OFUser ---
_OF_JOB_PATHS = {"decision": "decision", "decision_extended": "decision-extended", "private_scoring": "private-scoring"}


def _of_user_id(actor) -> str:
    """The userId a sandbox token was issued for (its JWT-looking payload's ``sub``, service.create_token)."""
    payload = actor.token.split(".")[1]
    import json
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def _of_v2_job(actor, path: str) -> str:
    """A decision / scoring job of ``actor`` (its report made it a connection), made once per actor."""
    jobs = actor.__dict__.setdefault("_v2_jobs", {})
    if path not in jobs:
        jobs[path] = _ok(actor.http.post(f"/open-finance/v2/{path}/043510023", headers=_bearer(actor.token)))["jobId"]
    return jobs[path]


def _of_own_v2_job(owner, intruder, response, path: str):
    job = response.get_json()["jobId"]
    assert intruder.http.get(f"/open-finance/v2/{path}/{job}", headers=_bearer(intruder.token)).status_code == 200
    assert owner.http.get(f"/open-finance/v2/{path}/{job}", headers=_bearer(owner.token)).status_code == 400


def _of_monthly_ids(actor) -> dict:
    """The actor's own userId, its monthly report built (the first call answers 404 and builds it, s.6)."""
    user = _of_user_id(actor)
    first = actor.http.get(f"/open-finance/v2/data/monthly-report/{quote(user, safe='')}", headers=_bearer(actor.token))
    assert first.status_code in (200, 404), first.get_data(as_text=True)
    return {"userId": user}

OPEN_FINANCE = Factory(setup=_of_setup, refused=frozenset({400, 404}), entries={   # 404: s.6 connection/data routes
    # customerId is the client's own customer reference, not an owned resource (open_finance.md s.5)
    "create_financial_report": Entry(ids=lambda a: {"customerId": "043510023"}, request=_OF_CALL, owned=False,
                                     own_result=_of_own_job),
    # unknown and foreign jobs are "400 Invalid jobId" (s.5: the guide has no 404)
    "get_financial_report": Entry(ids=lambda a: {"jobId": a.job}, request=_OF_CALL),
    # --- connections.py entries ---
    # a foreign or unknown connection is "404 No connection was found" / "connection not found" (open_finance.md
    # s.4/s.6); each actor's connection is created and consented through the control API (flows/<id>/complete)
    "get_connection": Entry(ids=(_of_connection := lambda a: (lambda cid: (
        _control(a.http, f"flows/{cid}/complete", {"outcome": "success"}), cid)[1])(_ok(a.http.post(
            "/open-finance/v2/connections", json={"includeFakeProviders": True}, headers=_bearer(a.token)), 201)["id"]))
        and (lambda a: {"connectionId": _of_connection(a)}), request=_OF_CALL),
    "delete_connection": Entry(ids=lambda a: {"connectionId": _of_connection(a)}, request=_OF_CALL,
                               snapshot=(_of_ids := lambda o: sorted(c["id"] for c in _ok(o.http.get(
                                   "/open-finance/v2/connections", headers=_bearer(o.token)))["items"]))),
    "refresh_connection": Entry(ids=lambda a: {"connectionId": _of_connection(a)}, request=_OF_CALL, snapshot=_of_ids),
    # the path userId: another user's is 404 (a token sees only its own user, s.3); the same userId in another tenant
    # names that tenant's own user (the matrix skips ids equal to the intruder's own)
    "refresh_user_connections": Entry(ids=lambda a: (_of_connection(a), {"userId": __import__("json").loads(
        base64.urlsafe_b64decode(a.token.split(".")[1] + "=="))["sub"]})[1], request=_OF_CALL, snapshot=_of_ids),
    # --- accounts.py entries ---
    # another user's or tenant's account id or transaction SK is "404 Route or entity not found" / "Transaction not
    # found" (open_finance.md s.4/s.6); each actor's data is its auto-provisioned report connection (s.5)
    "get_account": Entry(ids=(_of_account := lambda a: {"accountId": _ok(a.http.get(
        "/open-finance/v2/data/accounts", headers=_bearer(a.token)))["items"][0]["id"]}), request=_OF_CALL),
    "get_account_balance_history": Entry(ids=_of_account, request=_OF_CALL),
    "get_transaction": Entry(ids=(_of_sk := lambda a: {"SK": _ok(a.http.get(
        "/open-finance/v2/data/transactions?limit=1", headers=_bearer(a.token)))["items"][0]["SK"]}), request=_OF_CALL),
    "update_transaction": Entry(ids=_of_sk, request=lambda a: (_bearer(a.token), {
        "transactionSk": _of_sk(a)["SK"], "mainCategory": "OTHER", "subCategory": "UNCATEGORIZED",
        "labels": ["isolation"]}),
        snapshot=lambda o: _ok(o.http.get("/open-finance/v2/data/transactions/" + quote(_of_sk(o)["SK"], safe=""),
                                          headers=_bearer(o.token)))),
    # --- decisions.py entries ---
    # the monthly report of another userId is "400 The user has no connections" (decisions.py; s.3 user-bound tokens)
    "get_monthly_report": Entry(ids=lambda a: _of_monthly_ids(a), request=_OF_CALL),
    # customerId names no owned resource: each caller starts its own job; jobs of others are "400 Invalid jobId" (s.7)
    **{f"create_{kind}": Entry(ids=lambda a: {"customerId": "043510023"}, request=_OF_CALL, owned=False,
                               own_result=lambda o, i, r, path=path: _of_own_v2_job(o, i, r, path))
       for kind, path in _OF_JOB_PATHS.items()},
    **{f"get_{kind}": Entry(ids=lambda a, path=path: {"jobId": _of_v2_job(a, path)}, request=_OF_CALL)
       for kind, path in _OF_JOB_PATHS.items()},
})


# --- finleap -----------------------------------------------------------------------------------------------------

class FinxUser:
    """One finX end user: a completed income-report flow (access, account, transactions) with its tokens, a
    completed account-verification flow with its token, a finished sync; notifications on demand."""

    def __init__(self, http, client=("sandbox-client", "sandbox-secret")):
        self.http, self.basic = http, _basic(*client)
        self.income_flow, self.token = self._connect("income-report", {})
        self.av_flow, self.av_token = self._connect("account-verification",
                                                    {"name": "Maria Müller", "readout": ["ACCOUNTS"]})
        self.account = self.get("/rest/accounts")["accounts"][0]["account_id"]
        self.transaction = self.get(f"/rest/accounts/{self.account}/transactions?count=1")["transactions"][0][
            "transaction_id"]
        self.access = self.get("/rest/accesses")["accesses"][0]["id"]
        self.sync = _ok(self.http.post(f"/finleap/rest/accesses/{self.access}/syncs", json={},
                                       headers=_bearer(self.token)), 201)["id"]
        self.finish_syncs()

    def _connect(self, kind: str, extra: dict) -> tuple[str, str]:
        link = _ok(self.http.post(f"/finleap/onetime/{kind}", json={"redirect_uri": CALLBACK, **extra},
                                  headers=self.basic), 201)
        done = _control(self.http, f"flows/{link['id']}/complete", {"outcome": "success"})
        code = parse_qs(urlsplit(done["redirect_url"]).query)["code"][0]
        tokens = _ok(self.http.post("/finleap/auth/token", headers=self.basic, json={
            "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}))
        return link["id"], tokens["access_token"]

    def get(self, path: str) -> dict:
        return _ok(self.http.get("/finleap" + path, headers=_bearer(self.token)))

    def notification(self) -> str:
        return _ok(self.http.post("/finleap/rest/notifications", headers=_bearer(self.token), json={
            "observe_key": "/rest/transactions", "notify_uri": "https://hooks.example.com/finx", "state": "s0"}),
            201)["notification_id"]

    def finish_syncs(self) -> None:
        """End every sync of this user's access (one runs at a time: a new one would be 423)."""
        for job in self.http.get("/_sandbox/jobs").get_json()["jobs"]:
            if job.get("data", {}).get("access_id") == self.access and job["state"] not in ("COMPLETED", "FAILED"):
                _control(self.http, f"jobs/{job['id']}/complete")

    def syncs(self) -> list[str]:
        return sorted(j["id"] for j in self.http.get("/_sandbox/jobs").get_json()["jobs"]
                      if j.get("data", {}).get("access_id") == self.access)


def _finx_setup(app):
    http = app.test_client()
    _control(http, "clients", {"client_id": OTHER_CLIENT[0], "client_secret": OTHER_CLIENT[1]}, 201)
    return FinxUser(http), FinxUser(http), FinxUser(http, OTHER_CLIENT)


def _fx_call(actor):
    return _bearer(actor.token), None


def _notification_ids(actor):
    if not getattr(actor, "_notification", None):
        actor._notification = actor.notification()
    return {"notification_id": actor._notification}


def _notification_state(owner):
    return owner.get(f"/rest/notifications/{owner._notification}")


def _fresh_sync_ids(actor):
    actor.finish_syncs()
    return {"access_id": actor.access}


_ACCOUNT = lambda a: {"account_id": a.account}   # noqa: E731


def _receipt_of(actor) -> str:
    """A successful one-time payment of the actor's client (its flow id = receipt id), made once per actor."""
    if not getattr(actor, "_receipt", None):
        link = _ok(actor.http.post("/finleap/onetime/payment", headers=actor.basic, json={
            "redirect_uri": CALLBACK, "payment": {
                "creditor": {"iban": "DE86990003540000002000", "name": "Peter Jackson"},
                "amount": {"value": 57.99, "currency": "EUR"}, "purpose": "Thank you for the fish"}}), 201)
        _control(actor.http, f"flows/{link['id']}/complete", {"outcome": "success"})
        actor._receipt = link["id"]
    return actor._receipt

FINLEAP = Factory(setup=_finx_setup, refused=frozenset({403, 404}), entries={
    # finleap.md s.5: a report is readable with a token of its own flow (another flow's token: 403, inferred)
    "get_income_report": Entry(ids=lambda a: {"id": a.income_flow}, request=_fx_call),
    "get_account_verification_report": Entry(ids=lambda a: {"id": a.av_flow},
                                             request=lambda a: (_bearer(a.av_token), None)),
    # s.6: ids the token's user does not own are "not found" (1004)
    "get_account": Entry(ids=_ACCOUNT, request=_fx_call),
    "get_account_balance": Entry(ids=_ACCOUNT, request=_fx_call),
    "list_transactions": Entry(ids=_ACCOUNT, request=_fx_call),
    "get_transaction": Entry(ids=lambda a: {"account_id": a.account, "transaction_id": a.transaction},
                             request=_fx_call),
    # s.7: notifications belong to the user who registered them
    "get_notification": Entry(ids=_notification_ids, request=_fx_call, snapshot=_notification_state),
    "update_notification": Entry(ids=_notification_ids, snapshot=_notification_state,
                                 request=lambda a: (_bearer(a.token), {"state": "changed by the caller"})),
    "delete_notification": Entry(ids=_notification_ids, request=_fx_call, snapshot=_notification_state),
    # s.6: accesses and their syncs
    "get_access": Entry(ids=lambda a: {"access_id": a.access}, request=_fx_call,
                        snapshot=lambda o: o.get(f"/rest/accesses/{o.access}")),
    "create_sync": Entry(ids=_fresh_sync_ids, request=lambda a: (_bearer(a.token), {}),
                         snapshot=lambda o: o.syncs()),
    "get_sync": Entry(ids=lambda a: {"access_id": a.access, "sync_id": a.sync}, request=_fx_call),
    # --- product flows entries (service.py, widget.py) ---
    # finleap-products.md s.8 (D-rcpt): a receipt is the client's (HTTP Basic): another client gets 404 code 1004;
    # every user of the same tenant is that same client, so only the other tenant is an intruder
    "get_payment_receipt": Entry(ids=lambda a: {"id": _receipt_of(a)}, request=lambda a: (a.basic, None),
                                 client_wide=True),
    # --- insights.py entries ---
    # finleap-products.md s.11: accounts, accesses and contracts of another user are "not found" (1004)
    "list_securities": Entry(ids=_ACCOUNT, request=_fx_call),
    "list_contracts": Entry(ids=_ACCOUNT, request=_fx_call),
    "list_payment_partners": Entry(ids=lambda a: {"account_id": a.account, "access_id": a.access}, request=_fx_call),
    "list_categories": Entry(ids=lambda a: {"account_id": a.account, "access_id": a.access}, request=_fx_call),
    "get_timeline": Entry(ids=lambda a: {"access_id": a.access}, request=_fx_call),
    # the first contract the user still has (delete_contract consumes the owner's, get_contract then takes the next)
    "get_contract": Entry(ids=lambda a: {"contract_id": a.get("/rest/contracts")[0]["id"]}, request=_fx_call,
                          snapshot=lambda o: o.get("/rest/contracts")),
    "delete_contract": Entry(ids=lambda a: {"contract_id": a.get("/rest/contracts")[0]["id"]}, request=_fx_call,
                             snapshot=lambda o: o.get("/rest/contracts")),
    # s.9: a risk report is readable with its own flow's token (another flow's token: 403, as the income report)
    "get_risk_report": Entry(
        ids=lambda a: {"id": (a.__dict__.get("_risk") or a.__dict__.setdefault(
            "_risk", a._connect("risk-report", {"name": "Maria Müller"})))[0]},
        request=lambda a: (_bearer(a.__dict__["_risk"][1]), None)),
})

# --- finoOS ------------------------------------------------------------------------------------------------------

FINO_IP = {"User-IP": "203.0.113.7"}   # fino.md s.9: mandatory on sync, disconnect and money transfer
FINO_URLS = {"redirectURL": "https://my-app.example.com/ok", "errorURL": "https://my-app.example.com/error",
             "exitURL": "https://my-app.example.com/exit"}
FINO_BOOKED = 1745000000   # a booking instant (epoch seconds) for manually uploaded transactions


class FinoCaller:
    """One finoOS caller: a client-credentials Bearer (s.3) acting in one tenant (s.4: the client's own, or a
    ``TenantID`` sub-tenant), with a user of that tenant that owns one of everything: the test account's bank login
    and Girokonto (with bookings and a DONE analysis, so its cockpit exists), a manually uploaded account with a
    transaction, an executed money transfer; and, at client/tenant level, a webhook and an advisor. Fresh users,
    accounts, logins, webhooks and advisors on demand for the operations that consume them."""

    def __init__(self, http, label: str, client=("sandbox-client", "sandbox-secret"), tenant_id: str | None = None):
        self.http, self.label, self.n = http, label, 0
        token = _ok(http.post("/fino/api/auth", data={"client_id": client[0], "client_secret": client[1],
                                                      "grant_type": "client_credentials"}))["access_token"]
        self.headers = {**_bearer(token), **({"TenantID": tenant_id} if tenant_id else {})}
        self.custom = f"isolation-{label}"
        self.user = self.new_user(customUserID=self.custom)
        self.bank_login, self.account = self.test_account(self.user)
        self.manual, self.manual_tx = self.manual_account(self.user)
        self.transfer = self.api("POST", f"/users/{self.user}/banking/bank-logins/{self.bank_login}/money-transfers",
                                 self.transfer_body(), ip=True)["paymentId"]
        self.webhook, self.advisor = self.new_webhook(), self.new_advisor()

    def api(self, method: str, path: str, body=None, *, ip: bool = False, status=(200, 201, 204)):
        headers = {**self.headers, **(FINO_IP if ip else {})}
        return _ok(self.http.open("/fino/api" + path, method=method, headers=headers, json=body), *status)

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.label}-{self.n}"

    def new_user(self, **fields) -> str:
        return self.api("POST", "/users", {"type": "person", "name": f"user of {self.label}", **fields})["user"][
            "userID"]

    def test_account(self, user: str, name: str = "finocontext1") -> tuple[str, str]:
        """s.9 test account: (bankLoginId, accountId of its Girokonto); the connect starts an analysis (instant)."""
        done = self.api("POST", f"/users/{user}/banking/test-account", {"userName": name})
        return done["bankLoginId"], done["data"][0]["accountId"]

    def manual_account(self, user: str) -> tuple[str, str]:
        account, tx = self.fresh("manual"), self.fresh("tx")
        self.api("POST", f"/users/{user}/banking/accounts", {"accounts": [{"accountId": account, "transactions": [
            {"transactionId": tx, "amount": -4.2, "bookingDate": FINO_BOOKED}]}]})
        return account, tx

    def manual_transaction(self) -> str:
        tx = self.fresh("tx")
        self.api("POST", f"/users/{self.user}/banking/accounts/{self.manual}/transactions",
                 {"transactions": [{"transactionId": tx, "amount": -1, "bookingDate": FINO_BOOKED}]})
        return tx

    def transfer_body(self) -> dict:
        """A 1.50 EUR transfer from the Girokonto: <= 30 EUR executes without TAN (s.14); https URLs only."""
        return {"accountId": self.account, "moneyTransferInfos": [{"amount": -1.5, "purpose": "isolation",
                "creditor": {"iban": "DE89370400440532013000", "name": "Erika Mustermann"}}],
                "redirectUrl": "https://my-app.example.com/paid", "fallbackUrl": "https://my-app.example.com/failed",
                "exitUrl": "https://my-app.example.com/exit"}

    def new_webhook(self) -> str:
        return self.api("POST", "/webhooks", {"url": "https://receiver.example/x", "events": ["banking"]})["id"]

    def new_advisor(self) -> str:
        return self.api("POST", "/advisors", {"mail": "a@b.example", "name": "A"})["id"]

    def state(self, user: str | None = None) -> tuple:
        """What an intruder must leave alone: a user with its banking data, bank logins and analysis."""
        user = user or self.user
        reads = [self.http.get(f"/fino/api/users/{user}{tail}", headers=self.headers)
                 for tail in ("", "/banking/accounts", "/banking/sync", "/banking/correlation")]
        return tuple((r.status_code, r.get_json()) for r in reads)


def _fino_setup(app):
    http = app.test_client()
    _ok(http.put("/_sandbox/jobs/policy", json={"mode": "instant", "kind": "fino.analysis"}))   # runs DONE at once
    _control(http, "clients", {"client_id": OTHER_CLIENT[0], "client_secret": OTHER_CLIENT[1]}, 201)
    # s.4: the same client in another TenantID sees none of the owner's users (404); another client neither
    return FinoCaller(http, "owner"), FinoCaller(http, "peer", tenant_id="other"), \
        FinoCaller(http, "stranger", OTHER_CLIENT)


def _fino(body: Callable | None = None, *, ip: bool = False) -> Callable:
    """request(actor): the actor's Bearer (and TenantID), User-IP where s.9 demands it, its own valid body."""
    return lambda a: ({**a.headers, **(FINO_IP if ip else {})}, body(a) if body else None)


def _fino_fresh_user(a, bank: bool = False) -> dict:
    """A user of the actor's own, for operations that consume it (optionally with the test account)."""
    a.fresh_user = a.new_user()
    ids = {"user-id": a.fresh_user}
    if bank:
        ids["banklogin-id"] = a.test_account(a.fresh_user)[0]
    return ids


def _fino_own_session(owner, intruder, response):
    """s.9: a session for an unknown user id creates that user -- in the caller's own tenant: the intruder got a new,
    empty user of its own under that id, the owner's user (and its data) is untouched and still the owner's."""
    uid = owner.fresh_user
    assert response.get_json()["userIdentifier"] != owner.api("POST", f"/users/{uid}/banking/management",
                                                              {})["userIdentifier"]
    assert intruder.api("GET", f"/users/{uid}")["user"]["name"] == ""
    assert owner.api("GET", f"/users/{uid}")["user"]["name"] == "user of owner"
    assert intruder.api("GET", f"/users/{uid}/banking/sync") == []


_FU = lambda a: {"user-id": a.user}                                        # noqa: E731
_FMANUAL = lambda a: {"user-id": a.user, "account-id": a.manual}           # noqa: E731
_FLOGIN = lambda a: {"user-id": a.user, "banklogin-id": a.bank_login}      # noqa: E731
_fstate = lambda o: o.state()                                              # noqa: E731
_ffresh_state = lambda o: o.state(o.fresh_user)                            # noqa: E731


def _fino_fresh_account(a) -> dict:
    a.fresh_account = a.manual_account(a.user)[0]
    return {"user-id": a.user, "account-id": a.fresh_account}


def _fino_fresh_webhook(a) -> dict:
    a.fresh_webhook = a.new_webhook()
    return {"webhook-id": a.fresh_webhook}


def _fino_company(a) -> dict:
    """The actor's company user (s.10 company cockpit): the test account connected, so its analysis is DONE."""
    if getattr(a, "company_user", None) is None:
        a.company_user = a.new_user(type="company", name=f"company of {a.label}")
        a.test_account(a.company_user)
    return {"user-id": a.company_user}


def _fino_contract_user(a, with_contract: bool = True) -> dict:
    """A fresh user of the actor's with the test account (its instant analysis detects contracts), and with
    ``with_contract`` the id of one of them (s.10 contracts are consumed by the deletes)."""
    _fino_fresh_user(a, bank=True)
    ids = {"user-id": a.fresh_user}
    if with_contract:
        ids["contract-id"] = a.api("GET", f"/users/{a.fresh_user}/contracts")[0]["contractId"]
    return ids


def _fino_fresh_advisor(a) -> dict:
    a.fresh_advisor = a.new_advisor()
    return {"advisor-id": a.fresh_advisor}


FINO = Factory(setup=_fino_setup, refused=frozenset({403, 404}), entries={
    # s.4 and s.7: users live in one tenant; another TenantID of the client or another client: 404 notFound
    "get_user": Entry(ids=_FU, request=_fino()),
    "update_user": Entry(ids=_FU, request=_fino(lambda a: {"name": f"renamed by {a.label}"}), snapshot=_fstate),
    "delete_user": Entry(ids=_fino_fresh_user, request=_fino(), snapshot=_ffresh_state),
    # s.7: only a user with a created cockpit of the caller's own tenant is found by its customUserID (404 else)
    "get_user_by_custom_user_id": Entry(ids=lambda a: {"custom-user-id": a.custom}, request=_fino()),
    "add_user_scopes": Entry(ids=_FU, request=_fino(lambda a: {"userScopes": ["banking"]}), snapshot=_fstate),
    "trigger_analysis": Entry(ids=_FU, request=_fino(), snapshot=_fstate),
    # s.9 manual upload and reads
    "get_accounts": Entry(ids=_FU, request=_fino()),
    "get_transactions": Entry(ids=_FU, request=_fino()),
    "get_account_summary_pdf": Entry(ids=lambda a: {"user-id": a.user, "account-id": a.account}, request=_fino()),
    "set_accounts": Entry(ids=_FU, snapshot=_fstate, request=_fino(
        lambda a: {"accounts": [{"accountId": f"set-{a.label}", "name": "set by the caller"}]})),
    "update_accounts": Entry(ids=_FU, snapshot=_fstate, request=_fino(
        lambda a: {"accounts": [{"accountId": a.manual, "name": f"patched by {a.label}"}]})),
    "delete_accounts": Entry(ids=_FU, snapshot=_fstate,
                             request=_fino(lambda a: {"ids": [a.manual_account(a.user)[0]]})),
    "delete_account": Entry(ids=_fino_fresh_account, request=_fino(), snapshot=_fstate),
    "update_transactions": Entry(ids=_FMANUAL, snapshot=_fstate, request=_fino(
        lambda a: {"transactions": [{"transactionId": a.manual_tx, "purpose": f"patched by {a.label}"}]})),
    "add_transactions": Entry(ids=_FMANUAL, snapshot=_fstate, request=_fino(lambda a: {"transactions": [
        {"transactionId": f"added-{a.label}", "amount": -2, "bookingDate": FINO_BOOKED}]})),
    "delete_transactions": Entry(ids=_FMANUAL, snapshot=_fstate,
                                 request=_fino(lambda a: {"ids": [a.manual_transaction()]})),
    # s.9 Banking UI sessions: an unknown user-id CREATES that user (connect guide) in the caller's own tenant, so
    # the id names no resource the intruder could reach; checked: the intruder only got a new user of its own
    "create_connect_session": Entry(ids=_fino_fresh_user, request=_fino(lambda a: dict(FINO_URLS)), owned=False,
                                    own_result=_fino_own_session),
    "create_management_session": Entry(ids=_fino_fresh_user, request=_fino(lambda a: {}), owned=False,
                                       own_result=_fino_own_session),
    # s.9 test account, bank logins, syncs, disconnect
    "connect_test_account": Entry(ids=_FU, request=_fino(lambda a: {}), snapshot=_fstate),
    "get_banking_correlation": Entry(ids=_FU, request=_fino()),
    "get_sync_status": Entry(ids=_FU, request=_fino()),
    # the owner syncs twice (two routes): within the 4 a day of s.9
    "trigger_sync": Entry(ids=_FU, request=_fino(lambda a: {"bankLoginId": a.bank_login}, ip=True),
                          snapshot=_fstate),
    "delete_bank_login": Entry(ids=lambda a: _fino_fresh_user(a, bank=True), request=_fino(ip=True),
                               snapshot=_ffresh_state),
    "disconnect_banking": Entry(ids=lambda a: _fino_fresh_user(a, bank=True), request=_fino(ip=True),
                                snapshot=_ffresh_state),
    # s.9 money transfers (User-IP; the caller's own debtor account in the body)
    "create_money_transfer": Entry(ids=_FLOGIN, request=_fino(lambda a: a.transfer_body(), ip=True),
                                   snapshot=_fstate),
    "get_money_transfer": Entry(ids=lambda a: {**_FLOGIN(a), "money-transfer-id": a.transfer},
                                request=_fino(ip=True)),
    # s.11 webhooks belong to the client (all its TenantIDs share them, events carry tenantID): client_wide
    "get_webhook": Entry(ids=lambda a: {"webhook-id": a.webhook}, request=_fino(), client_wide=True),
    "update_webhook": Entry(ids=lambda a: {"webhook-id": a.webhook}, client_wide=True,
                            request=_fino(lambda a: {"url": f"https://receiver.example/{a.label}"}),
                            snapshot=lambda o: o.api("GET", f"/webhooks/{o.webhook}")),
    "delete_webhook": Entry(ids=_fino_fresh_webhook, request=_fino(), client_wide=True,
                            snapshot=lambda o: o.api("GET", f"/webhooks/{o.fresh_webhook}")),
    # s.10 advisors: per tenant (TenantID included)
    "get_advisor": Entry(ids=lambda a: {"advisor-id": a.advisor}, request=_fino()),
    "update_advisor": Entry(ids=lambda a: {"advisor-id": a.advisor}, request=_fino(lambda a: {"name": a.label}),
                            snapshot=lambda o: o.api("GET", f"/advisors/{o.advisor}")),
    "delete_advisor": Entry(ids=_fino_fresh_advisor, request=_fino(),
                            snapshot=lambda o: o.api("GET", f"/advisors/{o.fresh_advisor}")),
    # --- categorization.py entries ---
    # s.10 categorization: results, patterns and tags of one user of one tenant (404 elsewhere)
    "get_categorization": Entry(ids=_FU, request=_fino()),
    "get_categorization_correlation": Entry(ids=_FU, request=_fino()),
    "get_categorization_patterns": Entry(ids=_FU, request=_fino()),
    "set_categorization_patterns": Entry(ids=_FU, request=_fino(lambda a: {"patterns": [
        {"type": "name", "value": f"partner of {a.label}", "tags": ["spending", "contract"]}]}),
        snapshot=lambda o: (o.api("GET", f"/users/{o.user}/categorization/patterns"), o.state())),
    "get_categorized_transactions": Entry(ids=_FU, request=_fino()),
    "get_transaction_tags": Entry(ids=lambda a: {"user-id": a.user, "transaction-id": a.manual_tx},
                                  request=_fino()),
    # --- detection.py entries ---
    # s.10 account detection, history, contracts: results of the user's own analysis (the test account's run)
    "get_accounts_overview": Entry(ids=_FU, request=_fino()),
    "get_account_detection_correlation": Entry(ids=_FU, request=_fino()),
    "get_account_history": Entry(ids=_FU, request=_fino()),
    "get_account_history_correlation": Entry(ids=_FU, request=_fino()),
    "list_contracts": Entry(ids=_FU, request=_fino()),
    "get_contracts_correlation": Entry(ids=_FU, request=_fino()),
    "delete_contracts": Entry(ids=lambda a: _fino_contract_user(a, with_contract=False), request=_fino(),
                              snapshot=lambda o: o.api("GET", f"/users/{o.fresh_user}/contracts")),
    "delete_contract": Entry(ids=_fino_contract_user, request=_fino(),
                             snapshot=lambda o: o.api("GET", f"/users/{o.fresh_user}/contracts")),
    # --- cockpits.py entries ---
    # s.10 cockpits and analytics: results of the caller's own user (person: the test-account user, analysed at set-up;
    # company: a company user with the test account, created on first use); another tenant or client: 404
    **{name: Entry(ids=_FU, request=_fino()) for name in (
        "get_cockpit_link", "get_person_cockpit", "get_cockpit_correlation", "get_cockpit_recommendations",
        "get_person_income", "get_person_spending", "get_person_household_budget", "get_person_living_situation",
        "get_person_risk", "get_person_adult_check")},
    **{name: Entry(ids=lambda a: _fino_company(a), request=_fino()) for name in (
        "get_company_cockpit", "get_company_cash", "get_company_liquidity", "get_company_foreign_payments",
        "get_company_risk", "get_company_credit", "get_company_insurance", "get_company_investment",
        "get_company_internal_bookings")},
})


FACTORIES: dict[str, Factory] = {"open_finance": OPEN_FINANCE, "finleap": FINLEAP, "fino": FINO}


# --- the matrix --------------------------------------------------------------------------------------------------

def _routes_with_ids():
    """(provider, operation, method, path from the server root) for every served operation route with path ids."""
    app = _app()
    out = []
    for provider, mounted in sorted(app.extensions["sandbox"].providers.items()):
        for name, op in sorted(mounted.ops.items()):
            if op.kind != "operation":
                continue
            for method, path in op.routes:
                if path_params(path):
                    out.append((provider, name, method, mounted.prefix + path))
    return out


ROUTES = _routes_with_ids()


def test_the_matrix_covers_every_provider_and_operation_with_path_ids():
    """Every provider with such routes has a factory and every such operation an entry; no stale entries."""
    served = {(p, n) for p, n, _, _ in ROUTES}
    assert served, "no served operation takes a path id?"
    missing = sorted(f"{p}.{n}" for p, n in served if n not in FACTORIES.get(p, Factory(None, frozenset())).entries)
    assert not missing, f"add these to FACTORIES in tests/test_isolation_matrix.py: {missing}"
    stale = sorted(f"{p}.{n}" for p, f in FACTORIES.items() for n in f.entries if (p, n) not in served)
    assert not stale, f"FACTORIES names operations that serve no route with path ids: {stale}"


@pytest.fixture(scope="module")
def worlds():
    cache: dict = {}

    def get(provider: str):
        if provider not in cache:
            factory = FACTORIES.get(provider)
            if factory is None:
                pytest.fail(f"{provider} serves operations with path ids but has no FACTORIES entry "
                            f"(tests/test_isolation_matrix.py): a new provider must say how to create its resources")
            cache[provider] = factory.setup(_app())
        return cache[provider]
    return get


def _path(template: str, ids: dict) -> str:
    for name in path_params(template):
        template = template.replace("{" + name + "}", quote(str(ids[name]), safe=""))
    return template


def _call(actor, method: str, path: str, request):
    headers, body = request(actor)
    return actor.http.open(path, method=method, headers=headers, json=body)


@pytest.mark.parametrize("provider,name,method,path", ROUTES, ids=[f"{p}.{n}:{m} {r}" for p, n, m, r in ROUTES])
def test_foreign_users_and_tenants_are_refused_and_the_owner_is_not(worlds, provider, name, method, path):
    factory = FACTORIES.get(provider)
    world = worlds(provider)
    entry = factory.entries.get(name)
    if entry is None:
        pytest.fail(f"{provider}.{name} ({method} {path}) takes a path id but has no entry in FACTORIES[{provider!r}]")
    owner, peer, stranger = world
    params = path_params(path)
    owner_ids = entry.ids(owner)
    before = entry.snapshot(owner) if entry.snapshot else None
    intruders = (("user of the same tenant", peer), ("client of another tenant", stranger))
    for label, intruder in intruders[1:] if entry.client_wide else intruders:
        mine = entry.ids(intruder)
        # the owner's ids, then (several ids) the intruder's own id in one place and the owner's in the others
        variants = [owner_ids] + ([{**owner_ids, p: mine[p]} for p in params] if len(params) > 1 else [])
        for ids in variants:
            if ids == mine:
                continue
            r = _call(intruder, method, _path(path, ids), entry.request)
            if not entry.owned:
                assert 200 <= r.status_code < 300, (label, r.status_code, r.get_data(as_text=True)[:300])
                entry.own_result(owner, intruder, r)
                continue
            assert r.status_code in factory.refused and not 200 <= r.status_code < 300, \
                (label, ids, r.status_code, r.get_data(as_text=True)[:300])
        if entry.snapshot:
            assert entry.snapshot(owner) == before, f"a {label} changed the owner's resource"
    r = _call(owner, method, _path(path, owner_ids), entry.request)
    assert 200 <= r.status_code < 300, ("owner", r.status_code, r.get_data(as_text=True)[:300])
    if name == "delete_notification":
        owner._notification = None   # consumed: the next operation gets a fresh one
