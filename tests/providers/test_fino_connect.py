"""finoOS connect area at unit level: the scenario table, determinism, background syncs on the clock, the control-API
shortcut for Banking UI and payment flows, single bookings, expired payment pages and user deletion."""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import pytest

from contract_tests.partial_app import fino_app
from sandbox.core.store import MemoryStore
from sandbox.providers.fino import connect, model

T0 = "2024-01-22T13:08:47Z"
EPOCH0 = int(datetime.fromisoformat(T0.replace("Z", "+00:00")).timestamp())
URLS = {"redirectURL": "https://app.example/ok", "errorURL": "https://app.example/err",
        "exitURL": "https://app.example/exit"}
IP = {"User-IP": "198.51.100.2"}
CREDS = urlencode({"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                   "grant_type": "client_credentials"})


def make_env(seed=5):
    app = fino_app({"SEED": seed}, store=MemoryStore())
    c = app.test_client()
    c.post("/_sandbox/clock/freeze", json={"at": T0})
    c.put("/_sandbox/jobs/policy", json={"mode": "instant", "kind": "fino.analysis"})
    env = SimpleNamespace(app=app, c=c, sb=app.extensions["sandbox"])

    def auth():
        tok = c.post("/fino/api/auth", data=CREDS,
                     headers={"Content-Type": "application/x-www-form-urlencoded"}).json["access_token"]
        env.h = {"Authorization": f"Bearer {tok}"}
    env.auth = auth
    auth()

    def advance(seconds):
        c.post("/_sandbox/clock/advance", json={"seconds": seconds})
        auth()
    env.advance = advance
    return env


@pytest.fixture
def env():
    return make_env()


def user(env) -> str:
    r = env.c.post("/fino/api/users", json={"type": "person", "name": "Erika Mustermann"}, headers=env.h)
    assert r.status_code == 201
    return r.json["user"]["userID"]


def flow_id_of(env, url: str) -> str:
    parts = urlsplit(url)
    html = env.c.get(parts.path + "?" + parts.query).data.decode()
    return re.search(r'name="(?:flow_id|sessionId)" value="([^"]+)"', html).group(1)


def test_every_scenario_login_is_listed_for_the_control_api():
    listed = {s["value"] for s in connect.SCENARIOS}
    assert set(connect.SCENARIO_LOGINS) <= listed
    assert {s["effect"] for s in connect.SCENARIO_LOGINS.values()} == \
        {None, "sca", "locked", "credentials", "deprecated", "error"}


def test_same_seed_same_calls_same_bytes():
    def run():
        env = make_env(seed=11)
        uid = user(env)
        s = env.c.post(f"/fino/api/users/{uid}/banking/connect", json=URLS, headers=env.h)
        t = env.c.post(f"/fino/api/users/{uid}/banking/test-account", json={}, headers=env.h)
        return uid, s.json["userIdentifier"], s.headers["Finoos-Correlation-Id"], t.data
    assert run() == run()


def test_control_api_completes_a_connect_session(env):
    uid = user(env)
    s = env.c.post(f"/fino/api/users/{uid}/banking/connect", json={**URLS, "accountTypes": ["GIRO"]},
                   headers=env.h).json
    fid = flow_id_of(env, s["redirectURL"])
    bad = env.c.post(f"/_sandbox/flows/{fid}/complete", json={"outcome": "success", "bankCode": "11111111"})
    assert bad.status_code == 400
    r = env.c.post(f"/_sandbox/flows/{fid}/complete", json={"outcome": "success", "bankCode": "10050000"})
    assert r.status_code == 200, r.json
    assert r.json["redirect_url"] == f"https://app.example/ok?userID={uid}"
    accounts = env.c.get(f"/fino/api/users/{uid}/banking/accounts?includeTransactions=false", headers=env.h).json
    assert {a["type"] for a in accounts["accounts"]} == {"GIRO"}
    assert {a["bankCode"] for a in accounts["accounts"]} == {"10050000"}
    again = env.c.post(f"/_sandbox/flows/{fid}/complete", json={"outcome": "success"})
    assert again.status_code == 409
    s = env.c.post(f"/fino/api/users/{uid}/banking/connect", json=URLS, headers=env.h).json
    r = env.c.post(f"/_sandbox/flows/{flow_id_of(env, s['redirectURL'])}/complete",
                   json={"outcome": "error", "reason": "wrong_tan"})
    assert r.json["redirect_url"] == f"https://app.example/err?userID={uid}"


def test_recurring_logins_sync_daily_in_the_background(env):
    uid = user(env)
    s = env.c.post(f"/fino/api/users/{uid}/banking/connect", json={**URLS, "recurring": True}, headers=env.h).json
    env.c.post(f"/_sandbox/flows/{flow_id_of(env, s['redirectURL'])}/complete", json={"outcome": "success"})
    tenant = "sandbox-client"
    scope = SimpleNamespace(sandbox=env.sb, tenant=tenant)

    def count():
        return sum(model.transactions(scope, uid, a["accountId"]).count() for a in model.accounts(scope, uid).list())
    before = count()
    env.advance(86400 - 1)
    status = env.c.get(f"/fino/api/users/{uid}/banking/sync", headers=env.h).json
    assert status[0]["lastSynchronization"] == EPOCH0 and status[0]["active"] is True
    env.advance(86400 * 9 + 1)
    status = env.c.get(f"/fino/api/users/{uid}/banking/sync", headers=env.h).json
    assert status[0]["lastSynchronization"] == EPOCH0 + 10 * 86400
    assert count() > before


def test_single_booking_books_the_sum_once(env):
    uid = user(env)
    login = env.c.post(f"/fino/api/users/{uid}/banking/test-account", json={}, headers=env.h).json
    aid = login["data"][0]["accountId"]
    infos = [{"amount": -4.5, "creditor": {"iban": "DE83701999010000002000", "name": "A"}, "purpose": "eins"},
             {"amount": -5.25, "creditor": {"iban": "DE89370400440532013000", "name": "B"}, "purpose": "zwei"}]
    r = env.c.post(f"/fino/api/users/{uid}/banking/bank-logins/{login['bankLoginId']}/money-transfers",
                   json={"accountId": aid, "moneyTransferInfos": infos, "singleBooking": True}, headers={**env.h, **IP})
    assert r.status_code == 200, r.json
    scope = SimpleNamespace(sandbox=env.sb, tenant="sandbox-client")
    booked = [t for t in model.transactions(scope, uid, aid).list() if t.get("_payment") == r.json["paymentId"]]
    assert [t["amount"] for t in booked] == [-9.75] and booked[0]["bookingText"] == "SAMMEL-UEBERWEISUNG"


def test_unconfirmed_payment_fails_when_its_page_expires(env):
    uid = user(env)
    login = env.c.post(f"/fino/api/users/{uid}/banking/test-account", json={}, headers=env.h).json
    base = f"/fino/api/users/{uid}/banking/bank-logins/{login['bankLoginId']}/money-transfers"
    r = env.c.post(base, json={"accountId": login["data"][0]["accountId"], "moneyTransferInfos": [
        {"amount": -100, "creditor": {"iban": "DE83701999010000002000", "name": "A"}}]}, headers={**env.h, **IP})
    assert r.status_code == 451
    env.advance(connect.SESSION_TTL - 1)
    assert env.c.get(f"{base}/{r.json['paymentId']}", headers={**env.h, **IP}).json["status"] == "PENDING_SCA"
    env.advance(1)
    assert env.c.get(f"{base}/{r.json['paymentId']}", headers={**env.h, **IP}).json["status"] == "FAILED"
    parts = urlsplit(r.json["redirectURL"])
    assert env.c.get(parts.path + "?" + parts.query).status_code == 400


def test_payment_page_token_must_match_the_session(env):
    uid = user(env)
    login = env.c.post(f"/fino/api/users/{uid}/banking/test-account", json={}, headers=env.h).json
    base = f"/fino/api/users/{uid}/banking/bank-logins/{login['bankLoginId']}/money-transfers"
    body = {"accountId": login["data"][0]["accountId"], "moneyTransferInfos": [
        {"amount": -100, "creditor": {"iban": "DE83701999010000002000", "name": "A"}}]}
    one = env.c.post(base, json=body, headers={**env.h, **IP}).json
    two = env.c.post(base, json=body, headers={**env.h, **IP}).json
    token = dict(p.split("=", 1) for p in urlsplit(one["redirectURL"]).query.split("&"))["token"]
    assert env.c.get(f"/fino/uba/payment?sessionId={two['sessionId']}&token={token}").status_code == 400
    assert env.c.get(f"/fino/uba/payment?sessionId={one['sessionId']}&token={token}").status_code == 200
    connect_token = env.c.post(f"/fino/api/users/{uid}/banking/connect", json=URLS, headers=env.h).json["sessionId"]
    assert env.c.get(f"/fino/uba/payment?sessionId={one['sessionId']}&token={connect_token}").status_code == 400


def test_deleting_the_user_forgets_its_transfers(env):
    uid = user(env)
    login = env.c.post(f"/fino/api/users/{uid}/banking/test-account", json={}, headers=env.h).json
    env.c.post(f"/fino/api/users/{uid}/banking/bank-logins/{login['bankLoginId']}/money-transfers",
               json={"accountId": login["data"][0]["accountId"], "moneyTransferInfos": [
                   {"amount": -1, "creditor": {"iban": "DE83701999010000002000", "name": "A"}}]},
               headers={**env.h, **IP})
    assert env.sb.collection("sandbox-client", connect.TRANSFERS, scope=uid).count() == 1
    assert env.c.delete(f"/fino/api/users/{uid}", headers=env.h).status_code == 204
    assert env.sb.collection("sandbox-client", connect.TRANSFERS, scope=uid).count() == 0


def test_a_sync_adds_only_newer_bookings_and_moves_the_balance_by_them():
    """Section 13 sync: a regenerated ledger recomputes loan and savings interest over its own window, so its past
    bookings differ from those fetched before; the sync keeps the fetched history, adds only bookings after the newest
    stored one, and each balance moves by exactly their sum (checked over several users: most personas have interest)."""
    env = make_env(seed=9)
    checked = 0
    for _ in range(6):
        uid = user(env)
        s = env.c.post(f"/fino/api/users/{uid}/banking/connect", json={**URLS, "recurring": True},
                       headers=env.h).json
        env.c.post(f"/_sandbox/flows/{flow_id_of(env, s['redirectURL'])}/complete", json={"outcome": "success"})
        before = {a["accountId"]: a for a in env.c.get(f"/fino/api/users/{uid}/banking/accounts",
                                                       headers=env.h).json["accounts"]}
        env.advance(40 * 86400)   # the daily background syncs run on the way; then one triggered by hand
        login = env.c.get(f"/fino/api/users/{uid}/banking/sync", headers=env.h).json[0]["bankLoginId"]
        r = env.c.post(f"/fino/api/users/{uid}/banking/sync", json={"bankLoginId": login}, headers={**env.h, **IP})
        assert r.status_code == 204, r.data
        after = {a["accountId"]: a for a in env.c.get(f"/fino/api/users/{uid}/banking/accounts",
                                                      headers=env.h).json["accounts"]}
        assert set(after) == set(before)
        for aid, old in before.items():
            old_ids = {t["transactionId"] for t in old["transactions"]}
            newest = max((t["bookingDate"] for t in old["transactions"]), default=0)
            new = [t for t in after[aid]["transactions"] if t["transactionId"] not in old_ids]
            assert old_ids <= {t["transactionId"] for t in after[aid]["transactions"]}
            assert all(t["bookingDate"] > newest for t in new), [t for t in new if t["bookingDate"] <= newest][:3]
            moved = sum((Decimal(str(t["amount"])) for t in new), Decimal(0))
            assert Decimal(str(after[aid]["balance"])) == Decimal(str(old["balance"])) + moved
            checked += 1
    assert checked >= 6
