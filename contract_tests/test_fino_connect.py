"""finoOS connect contract tests (fino.md sections 9, 12, 14), by catalogue id: Banking UI sessions completed with
plain form posts, the test account, syncs and their outcomes on the sandbox clock, disconnects, money transfers and
their SCA page. In-process by default; over HTTP with --base-url. Tests that drive hosted pages or the clock are
marked ``control`` (sandbox only). Expected values are computed here from what the test sent or chose."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest

from sandbox.core.context import schemas
from sandbox.core.store import MemoryStore
from sandbox.core.validation import schema_id
from sandbox.spec import operations

from .checks import not_a_server_error, provider_error, response_schema_conformance, status_in
from .partial_app import fino_app
from .plugin import make_transport

OP = {name: op["id"] for name, op in operations("fino").items()}
BERLIN = ZoneInfo("Europe/Berlin")
T0 = "2024-01-22T13:08:47Z"
OK, ERR, EXIT = "https://my-app.example.com/ok?x=1", "https://my-app.example.com/error", "https://my-app.example.com/exit"
URLS = {"redirectURL": OK, "errorURL": ERR, "exitURL": EXIT}
IP = {"User-IP": "203.0.113.7"}
PIN, TAN = "12345", "123456"
NEW_ID = "5f0c9a8e-3b1d-4c2e-9f6a-7d8e9f0a1b2c"   # a client-chosen user id the sandbox has not seen
pytestmark = pytest.mark.control


@pytest.fixture
def fx(contract_options):
    transport, control = make_transport(contract_options, "fino", lambda: fino_app({"SEED": 43}, store=MemoryStore()))
    control.reset()
    control.clock("freeze", at=T0)
    control.policy(mode="instant", kind="fino.analysis")
    yield Fino(transport, control, contract_options)
    control.clear_policy(kind="fino.analysis")
    control.clock("reset")


def conforms(body, name: str) -> None:
    errors = schemas().errors(schema_id("fino", name), body)
    assert errors == [], errors


class Fino:
    def __init__(self, transport, control, opts):
        self.t, self.control, self.opts = transport, control, opts
        self._token = None

    def token(self) -> str:
        if self._token is None:
            r = self.t.call(OP["authenticate"], data=f"client_id={self.opts['client_id']}&client_secret="
                            f"{self.opts['client_secret']}&grant_type=client_credentials",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
            status_in(r, 200)
            self._token = r.json["access_token"]
        return self._token

    def advance(self, seconds: float) -> None:
        self.control.clock("advance", seconds=seconds)
        self._token = None   # 300 s tokens: re-authenticate on the moved clock

    def call(self, name, body=None, query=None, tenant=None, headers=None, **path):
        h = {"Authorization": f"Bearer {self.token()}", **(headers or {})}
        if tenant:
            h["TenantID"] = tenant
        params = {k.replace("_", "-"): v for k, v in path.items()}
        r = self.t.call(OP[name], json_body=body, query=query, headers=h, path_params=params)
        not_a_server_error(r)
        if r.status not in (204, 451) and r.headers.get("Content-Type", "").startswith("application/json"):
            response_schema_conformance(r)
        return r

    def user(self, tenant=None, **extra) -> str:
        r = self.call("create_user", {"type": "person", "name": "Maria Müller", **extra}, tenant=tenant)
        status_in(r, 201)
        return r.json["user"]["userID"]

    def accounts(self, user_id, tenant=None) -> dict:
        r = self.call("get_accounts", tenant=tenant, user_id=user_id)
        status_in(r, 200)
        return {a["accountId"]: a for a in r.json["accounts"]}

    def session(self, user_id, body=None, query=None, kind="create_connect_session", tenant=None) -> dict:
        r = self.call(kind, dict(URLS) if body is None else body, query=query, tenant=tenant, user_id=user_id)
        status_in(r, 200)
        return {**r.json, "correlation": r.headers.get("Finoos-Correlation-Id")}

    # --- the hosted pages, by plain form posts ---------------------------------------------------------------------
    def page(self, url: str, form: dict | None = None):
        parts = urlsplit(url)
        path = parts.path + ("?" + parts.query if parts.query else "")
        if form is None:
            status, headers, content, _ = self.t.send("GET", path, {}, None)
        else:
            status, headers, content, _ = self.t.send("POST", path, {"Content-Type": "application/x-www-form-urlencoded"},
                                                      urlencode(form, doseq=True).encode())
        return status, headers, content.decode()

    def ui(self, url: str) -> "Page":
        return Page(self, url)


class Page:
    """One Banking UI / payment page session: remembers its flow id and current step from the HTML."""

    def __init__(self, fx: Fino, url: str):
        self.fx, self.url = fx, url
        self.status, self.headers, self.html = fx.page(url)
        self.location = None

    @property
    def step(self) -> str | None:
        m = re.search(r'<form method="post" action="" id="step-([a-z]+)"', self.html)
        return m.group(1) if m else None

    def hidden(self, name: str) -> str:
        return re.search(rf'name="{name}" value="([^"]+)"', self.html).group(1)

    def options(self, name: str) -> list[str]:
        return re.findall(rf'name="{name}" value="([^"]*)"', self.html)

    def post(self, **form):
        if "sessionId" not in form and "flow_id" in self.html:
            form = {"flow_id": self.hidden("flow_id"), "step": self.step, **form}
        self.status, self.headers, self.html = self.fx.page(self.url, form)
        self.location = self.headers.get("Location")
        return self

    def login(self, bank_code="37040044", user="finocontext1", accounts=None):
        if self.step == "bank":
            self.post(bankCode=bank_code)
        assert self.step == "credentials", self.html[:500]
        self.post(userName=user, pin=PIN)
        assert self.step == "sca", self.html[:500]
        self.post(scaMethod="pushTAN", tan=TAN)
        assert self.step == "accounts"
        offered = self.options("accountIds")
        self.post(accountIds=offered if accounts is None else accounts(offered))
        return offered


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def connect(fx, user_id, **kw) -> tuple[dict, Page, list[str]]:
    s = fx.session(user_id)
    page = fx.ui(s["redirectURL"])
    offered = page.login(**kw)
    status_in_page(page, 303)
    return s, page, offered


def status_in_page(page: Page, status: int) -> None:
    assert page.status == status, (page.status, page.html[:400])


# --- Banking UI sessions -----------------------------------------------------------------------------------------
def test_connect_session_shape_header_and_page(fx):
    uid = fx.user()
    s = fx.session(uid)
    conforms({k: s[k] for k in ("sessionId", "userIdentifier", "redirectURL")}, "defs/banking_ui_session")
    assert re.fullmatch(r"[0-9a-f-]{36}", s["correlation"])
    assert urlsplit(s["redirectURL"]).path == "/fino/uba/auth"
    assert dict(query_of(s["redirectURL"]))["sessionId"] == s["sessionId"]
    page = fx.ui(s["redirectURL"])
    status_in_page(page, 200)
    assert page.step == "bank" and "X-Frame-Options" not in page.headers


def test_connect_by_form_posts_creates_login_accounts_and_starts_analysis(fx):
    uid = fx.user()
    s, page, offered = connect(fx, uid, accounts=lambda ids: ids[:1])
    assert page.location == f"{OK}&userID={uid}"     # the URL's own query first, then userID
    accounts = fx.accounts(uid)
    assert list(accounts) == offered[:1]
    acc = accounts[offered[0]]
    assert acc["bankCode"] == "37040044" and acc["bic"] == "COBADEFFXXX" and acc["iban"][4:12] == "37040044"
    assert re.fullmatch(r"[0-9a-f]{24}", acc["bankLoginId"]) and len(acc["transactions"]) > 100
    days = {datetime.fromtimestamp(t["bookingDate"], BERLIN).strftime("%Y-%m") for t in acc["transactions"]}
    assert len(days) >= 12                                   # ~13 months of bookings
    r = fx.call("get_banking_correlation", user_id=uid)
    status_in(r, 200)
    assert r.json["correlationID"] == s["correlation"]      # the run the session header announced
    r = fx.call("get_sync_status", user_id=uid)
    assert [b["bankLoginId"] for b in r.json] == [acc["bankLoginId"]]
    assert r.json[0]["lastSynchronization"] == int(datetime.fromisoformat(T0.replace("Z", "+00:00")).timestamp())
    assert r.json[0]["active"] is False                      # not recurring


def test_bank_search_and_bank_code_skip(fx):
    uid = fx.user()
    page = fx.ui(fx.session(uid)["redirectURL"])
    page.post(q="Sparkasse", search="1")
    assert page.step == "bank"
    names = re.findall(r'name="bankCode" value="\d{8}"[^>]*> ([^<]+) <small', page.html)
    assert len(names) >= 2 and all("sparkasse" in n.casefold() for n in names)
    page.post(q="COBADEFF", search="1")
    assert page.options("bankCode") == ["37040044"]
    skipped = fx.ui(fx.session(uid, query={"bankCode": "50010517"})["redirectURL"])
    assert skipped.step == "credentials" and "ING-DiBa" in skipped.html
    r = fx.call("create_connect_session", dict(URLS), query={"bankCode": "99999999"}, user_id=uid)
    provider_error(r, 400)


def test_account_types_filter_the_offered_accounts(fx):
    uid = fx.user()
    s = fx.session(uid, {**URLS, "accountTypes": ["GIRO"]})
    page = fx.ui(s["redirectURL"])
    page.login(bank_code="10070000")
    types = {a["type"] for a in fx.accounts(uid).values()}
    assert types == {"GIRO"}


def test_unknown_user_id_creates_a_person_user(fx):
    r = fx.call("get_user", user_id=NEW_ID)
    provider_error(r, 404)
    fx.session(NEW_ID)
    r = fx.call("get_user", user_id=NEW_ID)
    status_in(r, 200)
    assert r.json["user"]["userID"] == NEW_ID and r.json["user"]["type"] == "person"
    assert r.json["user"]["automaticAnalysis"] == "active"
    provider_error(fx.call("create_connect_session", dict(URLS), user_id="crm-4711"), 400)


def test_missing_redirect_urls_and_bad_query_are_400(fx):
    uid = fx.user()
    provider_error(fx.call("create_connect_session", {"redirectURL": OK}, user_id=uid), 400)
    provider_error(fx.call("create_connect_session", dict(URLS), query={"demo": "yes"}, user_id=uid), 400)
    provider_error(fx.call("create_connect_session", {**URLS, "accountTypes": ["CHECKING"]}, user_id=uid), 400)


def test_demo_mode_uses_fino_bank_without_pin_or_sca(fx):
    uid = fx.user()
    page = fx.ui(fx.session(uid, query={"demo": "true"})["redirectURL"])
    assert page.step == "credentials" and "Fino Bank" in page.html
    assert "finocontext1" in page.options("userName")
    page.post(userName="finocontext1")
    assert page.step == "accounts"
    page.post(accountIds=page.options("accountIds"))
    status_in_page(page, 303)
    accounts = fx.accounts(uid).values()
    assert {a["bankCode"] for a in accounts} == {"10020000"} and {a["bic"] for a in accounts} == {"FINOBANK01"}
    giro = next(a for a in accounts if a["iban"] == "DE67100200004711951500")
    assert giro["owner"] == "Max Mustermann" and giro["accountNumber"] == "4739183"


def test_error_and_exit_targets(fx):
    uid = fx.user()
    page = fx.ui(fx.session(uid)["redirectURL"])
    page.post(bankCode="10070000").post(userName="finocontext-error", pin=PIN)
    assert page.status == 303 and page.location == f"{ERR}?userID={uid}"
    page = fx.ui(fx.session(uid)["redirectURL"])
    page.post(exit="1")
    assert page.status == 303 and page.location == f"{EXIT}?userID={uid}"
    page = fx.ui(fx.session(uid)["redirectURL"]).post(bankCode="10070000")
    for n in range(2):
        page.post(userName="finocontext1", pin="00000")
        assert page.status == 200 and page.step == "credentials" and "wrong" not in page.html
    page.post(userName="finocontext1", pin="00000")
    assert page.location == f"{ERR}?userID={uid}"
    again = fx.ui(page.url)
    assert again.status == 400                               # a finished session never redirects again
    assert fx.accounts(uid) == {}


def test_framed_finish_posts_a_message_instead_of_redirecting(fx):
    uid = fx.user()
    page = fx.ui(fx.session(uid)["redirectURL"])
    parts = urlsplit(page.url)
    status, headers, content, _ = fx.t.send("POST", parts.path + "?" + parts.query,
                                            {"Content-Type": "application/x-www-form-urlencoded",
                                             "Sec-Fetch-Dest": "iframe"},
                                            urlencode({"flow_id": page.hidden("flow_id"), "step": "bank",
                                                       "exit": "1"}).encode())
    assert status == 200
    html = content.decode()
    assert "postMessage" in html and '"type": "uba:exit"' in html.replace('":"', '": "')
    assert f"userID={uid}" in html


def test_multibanking_returns_to_management_and_adds_a_second_login(fx):
    uid = fx.user()
    s = fx.session(uid, query={"multiple": "true"})
    assert dict(query_of(s["redirectURL"]))["multiple"] == "true"
    page = fx.ui(s["redirectURL"])
    page.login(bank_code="10070000")
    assert page.status == 200 and page.step == "overview"
    page.post(add="1")
    assert page.step == "bank"
    page.login(bank_code="50010517")
    assert page.step == "overview"
    logins = re.findall(r'data-bank-login-id="([0-9a-f]{24})"', page.html)
    assert len(logins) == 2
    page.post(done="1")
    assert page.location == f"{OK}&userID={uid}"
    assert {a["bankLoginId"] for a in fx.accounts(uid).values()} == set(logins)
    # later: a management session with addBankLogin and bankCode goes straight to the credentials
    m = fx.session(uid, {}, query={"addBankLogin": "true", "bankCode": "12030000"}, kind="create_management_session")
    mpage = fx.ui(m["redirectURL"])
    assert mpage.step == "credentials" and "DKB" in mpage.html
    overview = fx.ui(fx.session(uid, {}, kind="create_management_session")["redirectURL"])
    assert overview.step == "overview"
    assert sorted(re.findall(r'data-bank-login-id="([0-9a-f]{24})"', overview.html)) == sorted(logins)
    overview.post(done="1")
    assert overview.status == 200 and overview.location is None   # no redirectURL given: a result page


def test_sessions_and_logins_are_tenant_scoped(fx):
    uid = fx.user(tenant="sandbox-client-a")
    provider_error(fx.call("get_sync_status", user_id=uid), 404)
    r = fx.call("connect_test_account", {}, user_id=uid, tenant="sandbox-client-a")
    status_in(r, 200)
    login = r.json["bankLoginId"]
    provider_error(fx.call("delete_bank_login", user_id=uid, banklogin_id=login, headers=IP), 404)
    provider_error(fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP), 404)
    status_in(fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP, tenant="sandbox-client-a"), 204)


# --- test account, sync, disconnect -------------------------------------------------------------------------------
def test_test_account_connects_without_sca_and_repeats(fx):
    uid = fx.user()
    r = fx.call("connect_test_account", None, user_id=uid)
    status_in(r, 200)
    body = r.json
    assert body["alreadyConnected"] is False and body["status"] == "success"
    [acc] = body["data"]
    assert (acc["iban"], acc["accountNumber"], acc["owner"], acc["type"]) == \
        ("DE67100200004711951500", "4739183", "Max Mustermann", "GIRO")
    assert acc["bankLoginId"] == body["bankLoginId"]
    stored = fx.accounts(uid)
    assert list(stored) == [acc["accountId"]] and stored[acc["accountId"]]["bankName"] == "Fino Bank"
    again = fx.call("connect_test_account", {"userName": "finocontext1"}, user_id=uid)
    assert again.json == {**body, "alreadyConnected": True}
    provider_error(fx.call("connect_test_account", {"userName": "somebody"}, user_id=uid), 400)
    provider_error(fx.call("connect_test_account", {}, user_id="00000000-0000-4000-8000-000000000000"), 404)


@pytest.mark.parametrize("user,status,kind", [("finocontext-deprecated", 409, "conflict"),
                                              ("finocontext-credentials", 422, "invalidInput"),
                                              ("finocontext-locked", 423, "locked")])
def test_trigger_sync_scenario_outcomes(fx, user, status, kind):
    uid = fx.user()
    login = fx.call("connect_test_account", {"userName": user}, user_id=uid).json["bankLoginId"]
    before = fx.accounts(uid)
    r = fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP)
    provider_error(r, status)
    assert r.json["type"] == kind
    assert fx.accounts(uid) == before
    assert fx.call("get_sync_status", user_id=uid).json[0]["active"] is False


def test_trigger_sync_204_then_429_on_the_fifth_of_a_day(fx):
    uid = fx.user()
    login = fx.call("connect_test_account", {}, user_id=uid).json["bankLoginId"]
    for n in range(4):
        r = fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP)
        status_in(r, 204)
        assert r.content == b""
    r = fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP)
    provider_error(r, 429)
    assert r.json["type"] == "tooManyRequests"
    now = datetime.fromisoformat(T0.replace("Z", "+00:00"))
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0)
    fx.advance((midnight - now).total_seconds() - 1)
    provider_error(fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP), 429)
    fx.advance(1)                                             # a new UTC day
    status_in(fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP), 204)


def test_trigger_sync_bad_input(fx):
    uid = fx.user()
    provider_error(fx.call("trigger_sync", {}, user_id=uid, headers=IP), 404)            # no bank login
    r = fx.call("trigger_sync", {}, user_id=uid)                                      # no User-IP
    provider_error(r, 400)
    provider_error(fx.call("trigger_sync", {"bankLoginId": "0" * 24}, user_id=uid, headers=IP), 404)
    provider_error(fx.call("trigger_sync", {"bankLoginId": "xyz"}, user_id=uid, headers=IP), 400)


def test_sca_scenario_451_until_the_sca_is_redone(fx):
    uid = fx.user()
    login = fx.call("connect_test_account", {"userName": "finocontext-sca"}, user_id=uid).json["bankLoginId"]
    r = fx.call("trigger_sync", {"bankLoginId": login, **URLS}, user_id=uid, headers=IP)
    assert r.status == 451
    conforms(r.json, "defs/banking_ui_session")
    page = fx.ui(r.json["redirectURL"])
    assert page.step == "renew" and login in page.html
    page.post(tan="000000")
    assert page.step == "renew" and page.status == 200
    page.post(tan=TAN)
    assert page.location == f"{OK}&userID={uid}"
    status_in(fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP), 204)


def test_consent_lapses_after_180_days_and_new_bookings_arrive(fx):
    uid = fx.user()
    login = fx.call("connect_test_account", {}, user_id=uid).json["bankLoginId"]
    [aid] = fx.accounts(uid)
    before = {t["transactionId"]: t for t in fx.accounts(uid)[aid]["transactions"]}
    fx.advance(40 * 86400)
    status_in(fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP), 204)
    after = {t["transactionId"]: t for t in fx.accounts(uid)[aid]["transactions"]}
    assert set(before) <= set(after)                                  # ids kept
    new = [t for tid, t in after.items() if tid not in before]
    assert new and min(t["bookingDate"] for t in new) > max(t["bookingDate"] for t in before.values()) - 86400 * 3
    synced = fx.call("get_sync_status", user_id=uid).json[0]["lastSynchronization"]
    assert synced == int(datetime.fromisoformat(T0.replace("Z", "+00:00")).timestamp()) + 40 * 86400
    fx.advance(140 * 86400 - 1)                                        # 1 s before the consent lapses
    status_in(fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP), 204)
    fx.advance(1)
    r = fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP)
    assert r.status == 451
    conforms(r.json, "defs/banking_ui_session")
    assert fx.call("get_sync_status", user_id=uid).json[0]["active"] is False
    done = fx.control._call("POST", f"/flows/{_flow_id(fx, r.json)}/complete", {"outcome": "success"})
    assert done["status"] == "SUCCEEDED"
    status_in(fx.call("trigger_sync", {"bankLoginId": login}, user_id=uid, headers=IP), 204)


def _flow_id(fx, session: dict) -> str:
    return Page(fx, session["redirectURL"]).hidden("flow_id")


def test_non_recurring_users_are_deleted_after_24h_unless_persisted(fx):
    gone, kept, recurring = fx.user(), fx.user(), fx.user()
    connect(fx, gone)
    s = fx.session(kept, {**URLS, "persistNonRecurring": True})
    fx.ui(s["redirectURL"]).login()
    s = fx.session(recurring, {**URLS, "recurring": True})
    fx.ui(s["redirectURL"]).login()
    fx.advance(24 * 3600 - 1)
    status_in(fx.call("get_user", user_id=gone), 200)
    fx.advance(1)
    provider_error(fx.call("get_user", user_id=gone), 404)
    status_in(fx.call("get_user", user_id=kept), 200)
    status_in(fx.call("get_user", user_id=recurring), 200)
    assert fx.call("get_sync_status", user_id=recurring).json[0]["active"] is True


def test_delete_bank_login_and_disconnect(fx):
    uid = fx.user()
    first = fx.call("connect_test_account", {}, user_id=uid).json["bankLoginId"]
    connect(fx, uid)
    second = {a["bankLoginId"] for a in fx.accounts(uid).values()} - {first}
    assert len(second) == 1
    provider_error(fx.call("delete_bank_login", user_id=uid, banklogin_id=first), 400)       # User-IP
    r = fx.call("delete_bank_login", user_id=uid, banklogin_id=first, headers=IP)
    status_in(r, 204)
    assert {a["bankLoginId"] for a in fx.accounts(uid).values()} == second
    provider_error(fx.call("delete_bank_login", user_id=uid, banklogin_id=first, headers=IP), 404)
    provider_error(fx.call("disconnect_banking", user_id=uid), 400)
    status_in(fx.call("disconnect_banking", user_id=uid, headers=IP), 204)
    assert fx.accounts(uid) == {} and fx.call("get_sync_status", user_id=uid).json == []
    status_in(fx.call("get_user", user_id=uid), 200)


# --- money transfers ------------------------------------------------------------------------------------------------
def transfer_body(account_id, amount=-12.5, **extra):
    return {"accountId": account_id, "moneyTransferInfos": [
        {"amount": amount, "creditor": {"iban": "DE83701999010000002000", "name": "Andreas Schett"},
         "purpose": "Rechnung 4711"}], "redirectUrl": "https://my-app.example.com/paid",
        "fallbackUrl": "https://my-app.example.com/failed", "exitUrl": "https://my-app.example.com/left", **extra}


def test_small_transfer_is_executed_without_tan_and_booked(fx):
    uid = fx.user()
    login = fx.call("connect_test_account", {}, user_id=uid).json["bankLoginId"]
    [aid] = fx.accounts(uid)
    balance = fx.accounts(uid)[aid]["balance"]
    r = fx.call("create_money_transfer", transfer_body(aid, -30), user_id=uid, banklogin_id=login, headers=IP)
    status_in(r, 200)
    assert r.json["status"] == "success"
    pid = r.json["paymentId"]
    got = fx.call("get_money_transfer", user_id=uid, banklogin_id=login, money_transfer_id=pid, headers=IP)
    status_in(got, 200)
    assert got.json["status"] == "EXECUTED"
    [item] = got.json["moneyTransfers"]
    assert item["amount"] == -30 and item["creditor"]["iban"] == "DE83701999010000002000"
    assert item["debtor"]["iban"] == "DE67100200004711951500" and item["debtor"]["name"] == "Max Mustermann"
    acc = fx.accounts(uid)[aid]
    booked = [t for t in acc["transactions"] if t["purpose"] == "Rechnung 4711"]
    assert len(booked) == 1 and booked[0]["amount"] == -30 and booked[0]["transactionCode"] == 116
    assert booked[0]["paymentPartner"]["name"] == "Andreas Schett"
    assert acc["balance"] == round(balance - 30, 2)


def test_transfer_above_30_eur_needs_the_tan_page(fx):
    uid = fx.user()
    login = fx.call("connect_test_account", {}, user_id=uid).json["bankLoginId"]
    [aid] = fx.accounts(uid)
    r = fx.call("create_money_transfer", transfer_body(aid, -30.01), user_id=uid, banklogin_id=login, headers=IP)
    assert r.status == 451
    conforms(r.json, "defs/money_transfer_session")
    pid = r.json["paymentId"]

    def status():
        return fx.call("get_money_transfer", user_id=uid, banklogin_id=login, money_transfer_id=pid,
                       headers=IP).json["status"]
    assert status() == "PENDING_SCA"
    page = fx.ui(r.json["redirectURL"])
    assert page.status == 200 and "30,01" in page.html
    page.post(sessionId=r.json["sessionId"], tan="999999")
    assert page.status == 200 and status() == "PENDING_SCA"
    page.post(sessionId=r.json["sessionId"], tan=TAN)
    assert page.location == f"https://my-app.example.com/paid?paymentId={pid}&userID={uid}"
    assert status() == "EXECUTED"
    assert any(t["amount"] == -30.01 for t in fx.accounts(uid)[aid]["transactions"])


@pytest.mark.parametrize("action,final,target", [("exit", "CANCELLED", "left"), ("wrong", "FAILED", "failed")])
def test_transfer_cancelled_or_failed_on_the_tan_page_is_not_booked(fx, action, final, target):
    uid = fx.user()
    login = fx.call("connect_test_account", {}, user_id=uid).json["bankLoginId"]
    [aid] = fx.accounts(uid)
    n = len(fx.accounts(uid)[aid]["transactions"])
    r = fx.call("create_money_transfer", transfer_body(aid, -500), user_id=uid, banklogin_id=login, headers=IP)
    page = fx.ui(r.json["redirectURL"])
    if action == "exit":
        page.post(sessionId=r.json["sessionId"], exit="1")
    else:
        for _ in range(3):
            page.post(sessionId=r.json["sessionId"], tan="1")
    assert page.location.startswith(f"https://my-app.example.com/{target}?paymentId=")
    got = fx.call("get_money_transfer", user_id=uid, banklogin_id=login, money_transfer_id=r.json["paymentId"],
                  headers=IP)
    assert got.json["status"] == final
    assert len(fx.accounts(uid)[aid]["transactions"]) == n


def test_future_transfer_is_booked_on_its_execution_date(fx):
    uid = fx.user()
    login = fx.call("connect_test_account", {}, user_id=uid).json["bankLoginId"]
    [aid] = fx.accounts(uid)
    tomorrow = (datetime.fromisoformat(T0.replace("Z", "+00:00")).astimezone(BERLIN) + timedelta(days=1)).date()
    r = fx.call("create_money_transfer", transfer_body(aid, -5, executionDate=tomorrow.isoformat()), user_id=uid,
                banklogin_id=login, headers=IP)
    pid = r.json["paymentId"]
    get = lambda: fx.call("get_money_transfer", user_id=uid, banklogin_id=login, money_transfer_id=pid,
                          headers=IP).json["status"]
    assert get() == "OPEN"
    fx.advance(24 * 3600)
    assert get() == "EXECUTED"
    booked = [t for t in fx.accounts(uid)[aid]["transactions"] if t["purpose"] == "Rechnung 4711"]
    assert datetime.fromtimestamp(booked[0]["bookingDate"], BERLIN).date() == tomorrow


def test_money_transfer_bad_input(fx):
    uid = fx.user()
    login = fx.call("connect_test_account", {}, user_id=uid).json["bankLoginId"]
    [aid] = fx.accounts(uid)
    today = datetime.fromisoformat(T0.replace("Z", "+00:00")).astimezone(BERLIN).date()
    bad = [transfer_body(aid, redirectUrl="http://my-app.example.com/paid"),          # https only
           transfer_body(aid, executionDate=(today - timedelta(days=1)).isoformat()),  # past
           transfer_body(aid, 12.5),                                                   # positive
           transfer_body(aid, -1.234),                                                 # three decimals
           {**transfer_body(aid), "moneyTransferInfos": [{"amount": -1, "creditor": {
               "iban": "DE83701999010000002001", "name": "X"}}]},                      # IBAN check digits
           transfer_body(aid, executionDate="2024-13-01")]
    for body in bad:
        provider_error(fx.call("create_money_transfer", body, user_id=uid, banklogin_id=login, headers=IP), 400)
    status_in(fx.call("create_money_transfer", transfer_body(aid, executionDate=today.isoformat()), user_id=uid,
                      banklogin_id=login, headers=IP), 200)
    provider_error(fx.call("create_money_transfer", transfer_body(aid), user_id=uid, banklogin_id=login), 400)
    provider_error(fx.call("create_money_transfer", transfer_body("A" + "0" * 24), user_id=uid, banklogin_id=login,
                           headers=IP), 404)
    provider_error(fx.call("create_money_transfer", transfer_body(aid), user_id=uid, banklogin_id="0" * 24,
                           headers=IP), 404)
    provider_error(fx.call("get_money_transfer", user_id=uid, banklogin_id=login, money_transfer_id="0" * 24,
                           headers=IP), 404)
    assert len([t for t in fx.accounts(uid)[aid]["transactions"] if t["purpose"] == "Rechnung 4711"]) == 1
