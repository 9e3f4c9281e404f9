"""finoOS banking contract tests (fino.md sections 7 upload, 8, 9), by catalogue id. In-process by default; over HTTP
with --base-url. Expected values are computed here from what the test sent, never read back from the sandbox."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sandbox.core.store import MemoryStore
from sandbox.spec import operations

from .checks import not_a_server_error, provider_error, response_schema_conformance, status_in
from .partial_app import fino_app
from .plugin import make_transport

OP = {name: op["id"] for name, op in operations("fino").items()}
HYPO = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BERLIN = ZoneInfo("Europe/Berlin")
T0 = 1705928941   # 2024-01-22 14:09:01 Berlin


@pytest.fixture
def fx(contract_options):
    transport, control = make_transport(contract_options, "fino", lambda: fino_app({"SEED": 41}, store=MemoryStore()))
    if control:
        control.reset()
    return Fino(transport, control, contract_options)


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

    def call(self, name, body=None, query=None, tenant=None, schema=True, **path):
        headers = {"Authorization": f"Bearer {self.token()}"}
        if tenant:
            headers["TenantID"] = tenant
        params = {k.replace("_", "-"): v for k, v in path.items()}   # the reference's kebab-case names
        r = self.t.call(OP[name], json_body=body, query=query, headers=headers, path_params=params)
        not_a_server_error(r)
        if schema and r.status != 204 and r.headers.get("Content-Type", "").startswith("application/json"):
            response_schema_conformance(r)
        return r

    def user(self, tenant=None, type_="person") -> str:
        r = self.call("create_user", {"type": type_, "name": "Maria Müller", "customUserID": "0815"}, tenant=tenant)
        status_in(r, 201)
        return r.json["user"]["userID"]

    def accounts(self, user_id, tenant=None, **query) -> dict:
        r = self.call("get_accounts", query=query or None, tenant=tenant, user_id=user_id)
        status_in(r, 200)
        return {a["accountId"]: a for a in r.json["accounts"]}


def tx(tid, amount, when=T0, **extra):
    return {"transactionId": tid, "amount": amount, "bookingDate": when, **extra}


def account(aid="A38253.f837c3ab353", number="83767594", txs=(), **extra):
    return {"accountId": aid, "accountNumber": number, "balance": 2004.41, "bankCode": "10020000",
            "bankName": "Fino Bank", "bic": "FINOBANK01", "currency": "EUR", "iban": "DE64100200007791587578",
            "name": "Girokonto", "owner": "Torben Mais", "type": "GIRO", "transactions": list(txs), **extra}


def snapshot(fx, user_id, tenant=None):
    return fx.accounts(user_id, tenant)


# --- set / get -----------------------------------------------------------------------------------------------------
def test_set_accounts_then_get_accounts_round_trip(fx):
    uid = fx.user()
    sent = account(txs=[tx("accId1_txId1", 3563.84, bookingText="Salary current month", mref="PWG9O3S2BVHZ0V27BI2X",
                           paymentPartner={"iban": "DE83701999010000002000", "name": "Andreas Schett"}),
                        tx("accId1_txId2", -12.5, T0 - 86400)],
                   securities=[{"isin": "US0378331005", "name": "finoOS Security", "quantity": 40, "price": 1.23,
                                "amount": 200, "currency": "EUR"}],
                   standingOrders=[{"amount": 200, "currency": "EUR", "executionDay": 2, "interval": "MONTHLY",
                                    "purpose": "Taschengeld", "iban": "DE64100200007791587578"}])
    r = fx.call("set_accounts", {"accounts": [sent]}, user_id=uid)
    status_in(r, 200)
    assert r.json == {"userId": uid}
    got = fx.accounts(uid)[sent["accountId"]]
    for field in ("accountNumber", "balance", "bankCode", "bankName", "bic", "iban", "name", "owner", "type"):
        assert got[field] == sent[field], field
    assert [t["transactionId"] for t in got["transactions"]] == ["accId1_txId1", "accId1_txId2"]   # newest first
    first = got["transactions"][0]
    assert first["accountId"] == sent["accountId"] and first["valueDate"] == T0 and first["amount"] == 3563.84
    assert first["paymentPartner"] == {"bic": "", "creditorId": "", "iban": "DE83701999010000002000",
                                       "name": "Andreas Schett"}
    assert got["securities"][0]["accountId"] == sent["accountId"] and len(got["securities"][0]["securityId"]) == 24
    assert got["standingOrders"][0]["purpose"] == "Taschengeld"
    assert "bankLoginId" not in got   # manual uploads have no bank login
    without = fx.accounts(uid, includeTransactions="false")[sent["accountId"]]
    assert "transactions" not in without


def test_set_accounts_replaces_by_id_and_keeps_others(fx):
    uid = fx.user()
    fx.call("set_accounts", {"accounts": [account(txs=[tx("a", 1), tx("b", 2)]), account("B2", "111", [tx("c", 3)])]},
            user_id=uid)
    r = fx.call("set_accounts", {"accounts": [account(txs=[tx("z", 9)], name="Neues Girokonto", balance=1.0)]},
                user_id=uid)
    status_in(r, 200)
    got = fx.accounts(uid)
    assert set(got) == {"A38253.f837c3ab353", "B2"}
    assert got["A38253.f837c3ab353"]["name"] == "Neues Girokonto" and got["A38253.f837c3ab353"]["balance"] == 1.0
    assert [t["transactionId"] for t in got["A38253.f837c3ab353"]["transactions"]] == ["z"]
    assert [t["transactionId"] for t in got["B2"]["transactions"]] == ["c"]


def test_set_accounts_same_id_other_account_number_conflicts_and_changes_nothing(fx):
    uid = fx.user()
    fx.call("set_accounts", {"accounts": [account(txs=[tx("a", 1)])]}, user_id=uid)
    before = snapshot(fx, uid)
    r = fx.call("set_accounts", {"accounts": [account(number="999", txs=[])]}, user_id=uid)
    provider_error(r, 409)
    assert r.json["type"] == "conflict"
    assert snapshot(fx, uid) == before


@pytest.mark.parametrize("body,status", [
    ({"accounts": []}, 400),                                                  # non-empty
    ({"accounts": [account(), account()]}, 400),                              # duplicate account ids
    ({"accounts": [account(txs=[tx("x", 1), tx("x", 2)])]}, 400),             # duplicate transaction ids
    ({"accounts": [account(txs=[{"transactionId": "x", "amount": 1}])]}, 400),   # no bookingDate
    ({"accounts": [account(txs=[tx("x", 1, 2147483647)])]}, 400),              # epoch above the schema maximum
    ({"accounts": [account(type="CHECKING")]}, 400),                          # not in the type enum
    ({"accounts": [account(aid=f"A{i}", number=str(i)) for i in range(101)]}, 400),   # more than 100 accounts
    ({"accounts": [account(txs=[tx(f"t{i}", 1) for i in range(5001)])]}, 400),  # more than 5000 transactions
    ({"accounts": [account(txs=[tx("x", 1, accountId="other")])]}, 400),     # a transaction naming another account
])
def test_set_accounts_bad_input(fx, body, status):
    uid = fx.user()
    fx.call("set_accounts", {"accounts": [account(aid="keep", number="1", txs=[tx("k", 1)])]}, user_id=uid)
    before = snapshot(fx, uid)
    r = fx.call("set_accounts", body, user_id=uid)
    provider_error(r, status)
    assert r.json["type"] == "invalidInput"
    assert snapshot(fx, uid) == before


def test_unknown_and_foreign_users_are_not_found(fx):
    uid = fx.user(tenant="sandbox-client-a")
    for tenant in (None, "sandbox-client-b"):
        for name, body, path in [("get_accounts", None, {}), ("get_transactions", None, {}),
                                 ("set_accounts", {"accounts": [account()]}, {}),
                                 ("update_accounts", {"accounts": [{"accountId": "x"}]}, {}),
                                 ("delete_accounts", {"ids": ["x"]}, {}),
                                 ("add_transactions", {"transactions": [tx("a", 1)]}, {"account_id": "x"}),
                                 ("delete_account", None, {"account_id": "x"})]:
            r = fx.call(name, body, tenant=tenant, user_id=uid, **path)
            provider_error(r, 404)
            assert r.json["type"] == "notFound"
    assert fx.accounts(uid, tenant="sandbox-client-a") == {}


# --- update --------------------------------------------------------------------------------------------------------
def test_update_accounts_absent_or_null_is_unchanged_and_ids_immutable(fx):
    uid = fx.user()
    fx.call("set_accounts", {"accounts": [account(txs=[tx("a", 1, bookingText="alt", purpose="p")])]}, user_id=uid)
    r = fx.call("update_accounts", {"accounts": [{"accountId": "A38253.f837c3ab353", "bankName": None, "name": "Neu",
                                                  "accountNumber": "83767594", "icon": "https://x.example/i.png",
                                                  "transactions": [{"transactionId": "a", "bookingText": "neu",
                                                                    "purpose": None}]}]}, user_id=uid)
    status_in(r, 204)
    got = fx.accounts(uid)["A38253.f837c3ab353"]
    assert got["name"] == "Neu" and got["bankName"] == "Fino Bank" and got["icon"] == "https://x.example/i.png"
    assert got["transactions"][0]["bookingText"] == "neu" and got["transactions"][0]["purpose"] == "p"
    before = snapshot(fx, uid)
    for body, status in [({"accounts": [{"accountId": "A38253.f837c3ab353", "accountNumber": "1", "name": "X"}]}, 400),
                         ({"accounts": [{"accountId": "nope", "name": "X"}]}, 404),
                         ({"accounts": [{"accountId": "A38253.f837c3ab353", "name": "X",
                                         "transactions": [{"transactionId": "nope", "amount": 1}]}]}, 404),
                         ({"accounts": [{"accountId": "A38253.f837c3ab353", "name": "X"},
                                        {"accountId": "A38253.f837c3ab353", "name": "Y"}]}, 400)]:
        provider_error(fx.call("update_accounts", body, user_id=uid), status)
        assert snapshot(fx, uid) == before


def test_update_transactions(fx):
    uid = fx.user()
    fx.call("set_accounts", {"accounts": [account(txs=[tx("a", 1), tx("b", 2)])]}, user_id=uid)
    r = fx.call("update_transactions", {"transactions": [{"transactionId": "b", "amount": -7.5, "currency": None,
                                                          "paymentPartner": {"name": "Neu"}}]},
                user_id=uid, account_id="A38253.f837c3ab353")
    status_in(r, 204)
    got = {t["transactionId"]: t for t in fx.accounts(uid)["A38253.f837c3ab353"]["transactions"]}
    assert got["b"]["amount"] == -7.5 and got["b"]["currency"] == "EUR" and got["b"]["paymentPartner"]["name"] == "Neu"
    assert got["a"]["amount"] == 1
    before = snapshot(fx, uid)
    provider_error(fx.call("update_transactions", {"transactions": [{"transactionId": "a", "amount": 5},
                                                                    {"transactionId": "zz", "amount": 5}]},
                           user_id=uid, account_id="A38253.f837c3ab353"), 404)
    provider_error(fx.call("update_transactions", {"transactions": [{"transactionId": "a", "accountId": "B"}]},
                           user_id=uid, account_id="A38253.f837c3ab353"), 400)
    provider_error(fx.call("update_transactions", {"transactions": [{"transactionId": "a", "amount": 5}]},
                           user_id=uid, account_id="unknown"), 404)
    assert snapshot(fx, uid) == before


# --- add / delete --------------------------------------------------------------------------------------------------
def test_add_transactions_same_id_overrides(fx):
    uid = fx.user()
    fx.call("set_accounts", {"accounts": [account(txs=[tx("a", 1)])]}, user_id=uid)
    r = fx.call("add_transactions", {"transactions": [tx("a", 10), tx("b", 20)]}, user_id=uid,
                account_id="A38253.f837c3ab353")
    status_in(r, 200)
    assert r.json == {"transactionsAdded": 2}
    got = {t["transactionId"]: t["amount"] for t in fx.accounts(uid)["A38253.f837c3ab353"]["transactions"]}
    assert got == {"a": 10, "b": 20}
    before = snapshot(fx, uid)
    provider_error(fx.call("add_transactions", {"transactions": [tx("c", 1), tx("c", 2)]}, user_id=uid,
                           account_id="A38253.f837c3ab353"), 400)
    provider_error(fx.call("add_transactions", {"transactions": [tx("c", 1)]}, user_id=uid, account_id="nope"), 404)
    provider_error(fx.call("add_transactions", {"transactions": []}, user_id=uid,
                           account_id="A38253.f837c3ab353"), 400)
    assert snapshot(fx, uid) == before


def test_delete_transactions_and_accounts(fx):
    uid = fx.user()
    fx.call("set_accounts", {"accounts": [account(txs=[tx("a", 1), tx("b", 2), tx("c", 3)]),
                                          account("B2", "2"), account("C3", "3")]}, user_id=uid)
    before = snapshot(fx, uid)
    provider_error(fx.call("delete_transactions", {"ids": ["a", "nope"]}, user_id=uid,
                           account_id="A38253.f837c3ab353"), 404)
    assert snapshot(fx, uid) == before
    status_in(fx.call("delete_transactions", {"ids": ["a", "c"]}, user_id=uid, account_id="A38253.f837c3ab353"), 204)
    assert [t["transactionId"] for t in fx.accounts(uid)["A38253.f837c3ab353"]["transactions"]] == ["b"]
    provider_error(fx.call("delete_accounts", {"ids": ["B2", "nope"]}, user_id=uid), 404)
    assert set(fx.accounts(uid)) == {"A38253.f837c3ab353", "B2", "C3"}
    status_in(fx.call("delete_accounts", {"ids": ["B2"]}, user_id=uid), 204)
    status_in(fx.call("delete_account", user_id=uid, account_id="C3"), 204)
    assert set(fx.accounts(uid)) == {"A38253.f837c3ab353"}
    provider_error(fx.call("delete_account", user_id=uid, account_id="C3"), 404)


# --- reading ---------------------------------------------------------------------------------------------------------
def test_get_transactions_filters(fx):
    uid = fx.user()
    day = 86400
    fx.call("set_accounts", {"accounts": [account(txs=[tx("a", 1, T0), tx("b", 2, T0 + day), tx("c", 3, T0 + 2 * day)]),
                                          account("B2", "2", [tx("d", 4, T0 + day)])]}, user_id=uid)

    def ids(**query):
        r = fx.call("get_transactions", query=query, user_id=uid)
        status_in(r, 200)
        return [t["transactionId"] for t in r.json]

    def rfc(epoch):
        return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")

    assert sorted(ids()) == ["a", "b", "c", "d"]
    assert ids()[0] == "c"                                               # newest first
    assert sorted(ids(since=rfc(T0 + day))) == ["b", "c", "d"]          # inclusive
    assert sorted(ids(since=rfc(T0 + day + 1))) == ["c"]
    assert sorted(ids(until=rfc(T0 + day))) == ["a", "b", "d"]          # inclusive
    assert sorted(ids(until=rfc(T0 + day - 1))) == ["a"]
    berlin = datetime.fromtimestamp(T0 + day, BERLIN).isoformat()       # an offset form works too
    assert sorted(ids(since=berlin, until=berlin)) == ["b", "d"]
    assert sorted(ids(transactionIds="a,d,zz", since=rfc(T0 + 5 * day))) == ["a", "d"]   # ids win over dates
    for bad in ({"since": "yesterday"}, {"lastMonths": "0"}, {"lastMonths": "-1"},
                {"since": rfc(T0 + day), "until": rfc(T0)}):
        provider_error(fx.call("get_transactions", query=bad, user_id=uid), 400)


@pytest.mark.control
def test_get_transactions_last_months(fx):
    fx.control.clock("freeze", at="2024-06-15T10:00:00Z")
    try:
        uid = fx.user()
        now = int(datetime(2024, 6, 15, 10, tzinfo=timezone.utc).timestamp())
        cut = int(datetime(2024, 5, 15, 12, tzinfo=timezone.utc).timestamp())   # 2024-05-15 12:00 Berlin+2 = 10:00Z
        fx.call("set_accounts", {"accounts": [account(txs=[tx("in", 1, cut + 60), tx("out", 1, cut - 7200 - 60),
                                                            tx("future", 1, now + 60)])]}, user_id=uid)
        r = fx.call("get_transactions", query={"lastMonths": "1"}, user_id=uid)
        assert [t["transactionId"] for t in r.json] == ["in"]
        r = fx.call("get_transactions", query={"lastMonths": "2"}, user_id=uid)
        assert [t["transactionId"] for t in r.json] == ["in", "out"]
    finally:
        fx.control.clock("reset")


def _pdf(fx, uid, aid, **query):
    r = fx.call("get_account_summary_pdf", query=query or None, user_id=uid, account_id=aid)
    return r


def test_account_summary_pdf_is_a_real_pdf(fx):
    uid = fx.user()
    fx.call("set_accounts", {"accounts": [account(txs=[tx("a", -12.5, purpose="Miete Januar"), tx("b", 100)])]},
            user_id=uid)
    r = _pdf(fx, uid, "A38253.f837c3ab353")
    status_in(r, 200)
    assert r.headers["Content-Type"].startswith("application/pdf") and r.content.startswith(b"%PDF-")
    assert b"%%EOF" in r.content[-64:] and "stoppedAt" not in r.headers
    provider_error(_pdf(fx, uid, "nope"), 404)
    provider_error(_pdf(fx, uid, "A38253.f837c3ab353", since="not-a-date"), 400)


def test_account_summary_pdf_206_past_10000_transactions(fx):
    uid = fx.user()
    fx.call("set_accounts", {"accounts": [account()]}, user_id=uid)
    day0 = int(datetime(2024, 3, 1, 12, tzinfo=BERLIN).timestamp())
    per_day = 1000    # 10 full days = exactly 10000, then one more booking on day 11
    txs = [tx(f"t{d:02d}-{i:04d}", -1, day0 + d * 86400 + i) for d in range(10) for i in range(per_day)]
    for start in range(0, len(txs), 5000):
        status_in(fx.call("add_transactions", {"transactions": txs[start:start + 5000]}, user_id=uid,
                          account_id="A38253.f837c3ab353"), 200)
    exact = _pdf(fx, uid, "A38253.f837c3ab353")
    status_in(exact, 200)                        # exactly 10000: complete
    assert "stoppedAt" not in exact.headers
    status_in(fx.call("add_transactions", {"transactions": [tx("extra", -1, day0 + 10 * 86400)]}, user_id=uid,
                      account_id="A38253.f837c3ab353"), 200)
    since = datetime(2024, 3, 1, tzinfo=BERLIN).isoformat()
    cropped = _pdf(fx, uid, "A38253.f837c3ab353", since=since)
    status_in(cropped, 206)
    assert cropped.content.startswith(b"%PDF-")
    # 10001 in range: days 1-10 (10000) fit the limit, so the PDF stops before day 11, the next day with bookings
    assert cropped.headers["stoppedAt"] == datetime(2024, 3, 11, tzinfo=BERLIN).isoformat()
    limited = _pdf(fx, uid, "A38253.f837c3ab353", since=since,
                   until=datetime(2024, 3, 10, 23, 59, 59, tzinfo=BERLIN).isoformat())
    status_in(limited, 200)


# --- phased upload (section 7) -------------------------------------------------------------------------------------
def upload(fx, status, custom="1337", accounts=None, tenant=None, **extra):
    body = {"customUserID": custom, "status": status, "accounts": accounts or [account()], **extra}
    return fx.call("upload_user_banking_data", body, tenant=tenant)


def test_upload_phases(fx):
    r = upload(fx, "start", type="person", name="Torben Mais", accounts=[account(txs=[tx("a", 1)])])
    status_in(r, 200)
    uid = r.json["userID"]
    assert r.json["customUserID"] == "1337"
    provider_error(upload(fx, "start", type="person"), 409)                       # already open
    status_in(upload(fx, "upload", accounts=[account("B2", "2", [tx("b", 2)])]), 200)
    got = fx.accounts(uid)
    assert set(got) == {"A38253.f837c3ab353", "B2"}
    user = fx.call("get_user", user_id=uid)
    assert user.json["user"]["customUserID"] == "1337" and user.json["user"]["type"] == "person"
    done = upload(fx, "finish", accounts=[account("B2", "2", [tx("b", 3)])])
    status_in(done, 200)
    assert done.json["userID"] == uid and done.json["correlationID"] != r.json["correlationID"]
    assert fx.accounts(uid)["B2"]["transactions"][0]["amount"] == 3
    provider_error(upload(fx, "upload"), 404)                                    # closed again
    provider_error(upload(fx, "finish"), 404)
    again = upload(fx, "start,upload,finish", type="person")                     # a new upload for the same user
    status_in(again, 200)
    assert again.json["userID"] == uid


def test_upload_start_finish_in_one_call_and_out_of_order(fx):
    for bad in ("finish,start", "upload,start", "start,start", "begin", "start, finish"):
        provider_error(upload(fx, bad, custom="x", type="person"), 400)
    provider_error(upload(fx, "upload", custom="x"), 404)                        # upload before start
    provider_error(upload(fx, "finish", custom="x"), 404)
    provider_error(upload(fx, "start", custom="x"), 400)                          # type required with start
    provider_error(upload(fx, "start", custom="x", type="person", accounts=[account(), account()]), 400)
    provider_error(fx.call("upload_user_banking_data", {"customUserID": "x", "status": "start", "type": "person",
                                                        "accounts": []}), 400)
    r = fx.call("list_users")
    assert all(u["customUserID"] != "x" for u in r.json["users"])               # nothing was created
    ok = upload(fx, "start,finish", custom="x", type="company", name="ACME GmbH")
    status_in(ok, 200)
    assert fx.call("get_user", user_id=ok.json["userID"]).json["user"]["type"] == "company"


def test_upload_is_per_tenant(fx):
    status_in(upload(fx, "start", custom="t", type="person", tenant="sandbox-client-a"), 200)
    provider_error(upload(fx, "upload", custom="t", tenant="sandbox-client-b"), 404)
    status_in(upload(fx, "start", custom="t", type="person", tenant="sandbox-client-b"), 200)


# --- fuzzing -------------------------------------------------------------------------------------------------------
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                     max_leaves=12)
_tx = st.fixed_dictionaries({"transactionId": st.text(max_size=4) | st.integers()},
                            optional={"amount": _json | st.floats(allow_nan=False), "bookingDate": _json | st.integers(),
                                      "accountId": _json, "paymentPartner": _json})
_acc = st.fixed_dictionaries({"accountId": st.text(max_size=4) | st.none()},
                             optional={"accountNumber": _json, "type": _json, "transactions": st.lists(_tx, max_size=3),
                                       "overdraft": _json, "balance": _json})


@HYPO
@given(body=st.fixed_dictionaries({"accounts": st.lists(_acc, max_size=3)}) | _json)
def test_fuzz_set_and_update_never_5xx(fx, body):
    uid = getattr(fx, "_fuzz_user", None) or fx.user()
    fx._fuzz_user = uid
    for name in ("set_accounts", "update_accounts"):
        r = fx.call(name, body, user_id=uid)
        assert r.status in (200, 204, 400, 404, 409), r.text
        if r.status >= 400:
            response_schema_conformance(r)


@HYPO
@given(body=st.fixed_dictionaries({"customUserID": st.text(max_size=4), "status": st.sampled_from(
    ["start", "upload", "finish", "start,finish", "finish,start", "x"])},
    optional={"accounts": st.lists(_acc, max_size=2), "type": st.sampled_from(["person", "company", "x"])}))
def test_fuzz_upload_never_5xx(fx, body):
    r = fx.call("upload_user_banking_data", body)
    assert r.status in (200, 400, 404, 409), r.text


def test_deleting_the_user_ends_its_upload(fx):
    r = upload(fx, "start", custom="gone", type="person")
    status_in(r, 200)
    status_in(fx.call("delete_user", user_id=r.json["userID"]), 204)
    provider_error(upload(fx, "upload", custom="gone"), 404)
    again = upload(fx, "start", custom="gone", type="person")
    status_in(again, 200)
    assert again.json["userID"] != r.json["userID"]
