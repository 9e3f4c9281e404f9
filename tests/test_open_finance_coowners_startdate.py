"""Open Finance: the co-owners of a PARTIALLY_AUTHORIZED consent answer through the job engine (open_finance.md s.8,
psuId 064837123 of s.11), and a connection's ``startDate`` cuts the transactions it serves (s.6: "transactions are
collected from this date"). Expectations are computed from the stored ledger or from an uncut connection of the same
psuId, never from the service's own cut."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from sandbox.ledger import generate_ledger
from sandbox.providers.open_finance.accounts import _VIEWS
from sandbox.testing.transport import Receiver
from tests.providers.test_open_finance_connections import WALL, World, data_items

PSU = "064837123"               # s.11: joint account, PARTIALLY_AUTHORIZED
SANDBOX = "open-finance-sandbox"
KIND = "open_finance.co_owners"
DAY = 86400
TENANT = "sandbox-client"


@pytest.fixture
def w():
    return World()


def job_id(cid: str) -> str:
    return f"{cid}.co_owners"


def job(w: World, cid: str) -> dict:
    r = w.http.get(f"/_sandbox/jobs/{job_id(cid)}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def partially_authorized(w: World, **body) -> str:
    """A connection consented as psuId 064837123 at the current sandbox instant: PARTIALLY_AUTHORIZED at once."""
    created = w.create(providerIds=[SANDBOX], **body)
    w.consent(created, PSU)
    got = w.get(created["id"])
    assert got["status"] == "PARTIALLY_AUTHORIZED" and w.ledger(created["id"]) is None
    return created["id"]


def later(w: World, seconds: float) -> None:
    """Move the clock; a fresh token, since tokens live one sandbox day (s.3)."""
    w.advance(seconds)
    w.h = w.token(w.user)


# --- s.8 PARTIALLY_AUTHORIZED: the co-owners approve -------------------------------------------------------------------
@pytest.mark.parametrize("refresh,final", [(False, "COMPLETED"), (True, "ACTIVE")])
def test_co_owners_approve_then_the_normal_fetch_runs(w, refresh, final):
    cid = partially_authorized(w, refreshData=refresh)
    held = job(w, cid)
    assert held["kind"] == KIND and held["state"] == "AWAITING_CO_OWNERS" and held["data"]["connectionId"] == cid
    later(w, DAY)
    assert w.get(cid)["status"] == "PARTIALLY_AUTHORIZED"
    answered = w.control(f"jobs/{job_id(cid)}/complete")
    assert answered["state"] == "APPROVED"
    assert w.get(cid)["status"] == "FETCHING" and w.ledger(cid) is None
    w.advance(2)
    assert w.get(cid)["status"] == "CONNECTED"
    w.advance(2)
    got = w.get(cid)
    assert got["status"] == final and got["error"] is None
    # generated accounts and transactions like any other psuId: the ledger of (seed, psuId) as of the fetch day
    expected = generate_ledger(21, PSU, (WALL + timedelta(days=1)).date(), market="IL")
    accounts = data_items(w, "accounts", connectionId=cid)
    assert accounts and {a["connectionId"] for a in accounts} == {cid}
    assert {a["accountNumber"] for a in accounts} == {a.number for a in expected.accounts}
    ledger_count = sum(len(a.transactions) for a in expected.accounts)
    assert got["transactions"] == ledger_count == len(data_items(w, "transactions", connectionId=cid))
    assert sum(got[k] for k in ("accounts", "cards", "savings", "loans", "securities")) == len(accounts)
    # an answer given twice changes nothing more
    assert w.control(f"jobs/{job_id(cid)}/complete")["state"] == "APPROVED"
    assert w.get(cid)["status"] == final


def test_advance_on_the_held_job_is_an_approval_too(w):
    cid = partially_authorized(w)
    assert w.control(f"jobs/{job_id(cid)}/advance")["state"] == "APPROVED"
    w.advance(4)
    assert w.get(cid)["status"] == "COMPLETED"


# --- s.8: one co-owner declines ------------------------------------------------------------------------------------------
def test_a_co_owner_declines_gives_rejected(w):
    cid = partially_authorized(w)
    later(w, 3 * DAY)
    failed = w.control(f"jobs/{job_id(cid)}/fail", {"message": "co-owner declined"})
    assert failed["state"] == "NOT_APPROVED"
    got = w.get(cid)
    assert got["status"] == "REJECTED" and got["error"]["type"] == "CONSENT_REJECTED"
    assert w.ledger(cid) is None and data_items(w, "accounts", connectionId=cid) == []
    # the job is over: approving afterwards moves nothing, failing again is a conflict
    assert w.control(f"jobs/{job_id(cid)}/complete")["state"] == "NOT_APPROVED"
    w.control(f"jobs/{job_id(cid)}/fail", status=409)
    later(w, 10 * DAY)
    assert w.get(cid)["status"] == "REJECTED"


# --- s.8: 5 days without an answer ---------------------------------------------------------------------------------------
def test_no_answer_expires_after_exactly_five_days(w):
    cid = partially_authorized(w)   # PARTIALLY_AUTHORIZED at 10:00:00.000
    later(w, 5 * DAY - 0.001)
    assert w.get(cid)["status"] == "PARTIALLY_AUTHORIZED"
    assert job(w, cid)["state"] == "AWAITING_CO_OWNERS"
    later(w, 0.001)
    got = w.get(cid)
    assert got["status"] == "EXPIRED" and got["error"]["type"] == "CONSENT_EXPIRED"
    assert got["updatedAt"] == "2026-03-07T10:00:00.000Z"
    closed = job(w, cid)
    assert closed["state"] == "NOT_APPROVED" and closed["error"]["reason"] == "EXPIRED"


@pytest.mark.parametrize("read_first", [False, True], ids=["answer first", "read first"])
@pytest.mark.parametrize("answer", ["complete", "advance", "fail"])
def test_an_answer_after_the_deadline_does_not_revive_the_connection(w, read_first, answer):
    cid = partially_authorized(w)
    later(w, 5 * DAY + 60)
    if read_first:
        assert w.get(cid)["status"] == "EXPIRED"   # the read applies the expiry and closes the job
    r = w.http.post(f"/_sandbox/jobs/{job_id(cid)}/{answer}", json={})
    assert r.status_code in ((409,) if read_first and answer == "fail" else (200,)), r.get_data(as_text=True)
    later(w, 60)
    got = w.get(cid)
    assert got["status"] == "EXPIRED" and got["error"]["type"] == "CONSENT_EXPIRED"
    assert w.ledger(cid) is None and data_items(w, "accounts", connectionId=cid) == []


# --- the job never moves by itself ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", [None, {"mode": "instant"}, {"kind": KIND, "mode": "instant"},
                                    {"kind": KIND, "mode": "auto", "seconds": 1, "polls": 1}],
                         ids=["default", "global instant", "kind instant", "kind auto 1s/1 poll"])
def test_no_job_policy_moves_the_co_owners_job(w, policy):
    if policy:
        assert w.http.put("/_sandbox/jobs/policy", json=policy).status_code == 200
    cid = partially_authorized(w)
    for _ in range(4):
        later(w, DAY)
        w.control("tick")
        for _ in range(3):
            assert w.get(cid)["status"] == "PARTIALLY_AUTHORIZED"
            assert w.http.get("/open-finance/v2/connections", headers=w.h).status_code == 200
        assert job(w, cid)["state"] == "AWAITING_CO_OWNERS"
    assert w.ledger(cid) is None


def test_instant_jobs_by_configuration_do_not_move_it_either():
    w = World({"JOB_DELAY": 0})   # --job-delay 0: every kind instant
    cid = partially_authorized(w)
    later(w, 4 * DAY)
    w.control("tick")
    assert w.get(cid)["status"] == "PARTIALLY_AUTHORIZED" and job(w, cid)["state"] == "AWAITING_CO_OWNERS"
    w.control(f"jobs/{job_id(cid)}/complete")
    assert w.get(cid)["status"] == "COMPLETED"   # the fetch itself is instant under this configuration


def test_the_financial_reports_auto_provisioned_joint_connection_can_be_approved(w):
    """s.5: a first report for customerId 064837123 provisions a PARTIALLY_AUTHORIZED connection: no data yet (400),
    and its co-owners answer through the same job as a consented one's."""
    r = w.http.post(f"/open-finance/financial-report/{PSU}", headers=w.h)
    assert r.status_code == 400 and r.get_json()["message"] == "No active connections found"
    [conn] = w.http.get("/open-finance/v2/connections", headers=w.h).get_json()["items"]
    assert conn["status"] == "PARTIALLY_AUTHORIZED" and job(w, conn["id"])["state"] == "AWAITING_CO_OWNERS"
    w.control(f"jobs/{job_id(conn['id'])}/complete")
    w.advance(4)
    assert w.get(conn["id"])["status"] == "COMPLETED"
    assert w.http.post(f"/open-finance/financial-report/{PSU}", headers=w.h).status_code == 200


def test_deleting_the_connection_removes_its_co_owners_job(w):
    cid = partially_authorized(w)
    assert w.http.delete(f"/open-finance/v2/connections/{cid}", headers=w.h).status_code == 204
    assert w.http.get(f"/_sandbox/jobs/{job_id(cid)}").status_code == 404


# --- s.9: every status change is a webhook ----------------------------------------------------------------------------------
@pytest.mark.parametrize("answer,statuses", [
    ("complete", ["PARTIALLY_AUTHORIZED", "FETCHING", "CONNECTED", "COMPLETED"]),
    ("fail", ["PARTIALLY_AUTHORIZED", "REJECTED"]),
    (None, ["PARTIALLY_AUTHORIZED", "EXPIRED"]),
    ("late", ["PARTIALLY_AUTHORIZED", "EXPIRED"]),
])
def test_each_status_change_fires_the_webhook(answer, statuses):
    w = World()
    receiver = Receiver()
    try:
        w.control("webhooks/fire", {"provider": "open_finance", "organizationWebhook": {"url": receiver.url + "/org"}},
                  status=201)
        cid = partially_authorized(w, callbackInformation={"webhooks": {"failUrl": receiver.url + "/fail"}})
        if answer in ("complete", "fail"):
            later(w, DAY)
            w.control(f"jobs/{job_id(cid)}/{answer}")
            later(w, 4)
        else:
            later(w, 5 * DAY)
            if answer == "late":
                w.control(f"jobs/{job_id(cid)}/complete")
                later(w, 4)
        w.get(cid)
        mine = [d for d in w.deliveries() if d["payload"]["connectionId"] == cid]
        org = [d for d in mine if d["url"].endswith("/org")]
        assert [d["payload"]["connectionStatus"] for d in org] == statuses
        assert {d["status"] for d in mine} == {"delivered"}
        # s.9 routing (inferred): the connection's failUrl gets REJECTED / EXPIRED
        fail = [d["payload"]["connectionStatus"] for d in mine if d["url"].endswith("/fail")]
        assert fail == [s for s in statuses if s in ("REJECTED", "EXPIRED")]
        received = [json.loads(r["body"])["connectionStatus"] for r in receiver.received
                    if json.loads(r["body"])["connectionId"] == cid]
        assert sorted(received) == sorted(statuses + fail)
    finally:
        receiver.close()


# --- s.6 startDate -----------------------------------------------------------------------------------------------------------
START = "2025-12-08"   # a day with bookings (guarded below): the cut is "on or after", never "after"


def raw_booked_since(ledger: dict, start: str) -> list[tuple[str, str, str]]:
    """(bookingDate, amount, description) of every stored ledger transaction booked on or after ``start``."""
    return sorted((t["booking_date"], t["amount"], t["description"]) for a in ledger["accounts"]
                  for t in a["transactions"] if t["booking_date"] >= start)


def served(items: list[dict]) -> list[tuple[str, str, str]]:
    # the amount as the ledger writes it (two decimals), so both sides compare as text
    return sorted((t["date"]["bookingDate"], f'{t["amount"]["chargedAmount"]["amount"]:.2f}',
                   t["description"]["description"]) for t in items)


def test_start_date_cuts_every_transaction_the_connection_serves(w):
    full = w.connected("043510023")
    full_items = data_items(w, "transactions", connectionId=full)   # read first: its view is cached
    cut = w.connected("043510023", startDate=START)
    assert w.get(cut)["startDate"] == START
    items = data_items(w, "transactions", connectionId=cut)
    assert items and all(t["date"]["bookingDate"] >= START for t in items)
    assert any(t["date"]["bookingDate"] == START for t in items)   # the start day itself is collected
    # the same bookings as the uncut connection of the same psuId on/after START, and as the stored ledger
    expected = [t for t in full_items if t["date"]["bookingDate"] >= START]
    assert len(expected) < len(full_items)
    assert served(items) == served(expected) == raw_booked_since(w.ledger(cut), START)
    got = w.get(cut)
    assert got["transactions"] == len(expected) and w.get(full)["transactions"] == len(full_items)
    # duplicates (s.6) are cut as well
    dups = data_items(w, "transactions", connectionId=cut, includeDuplicates="1")
    assert len(dups) > len(items) and all(t["date"]["bookingDate"] >= START for t in dups)
    # date filters inside the cut
    window = data_items(w, "transactions", connectionId=cut, dateFrom="2025-11-01", dateTo="2025-12-31")
    assert window and all(START <= t["date"]["bookingDate"] <= "2025-12-31" for t in window)
    # per account: the list and the account's transactions count agree, on/after START only
    accounts = data_items(w, "accounts", connectionId=cut)
    assert sum(a["transactions"] for a in accounts) == len(expected)
    full_accounts = {a["externalId"]: a for a in data_items(w, "accounts", connectionId=full)}
    for account in accounts:
        own = data_items(w, "transactions", accountId=account["id"])
        assert len(own) == account["transactions"] and all(t["date"]["bookingDate"] >= START for t in own)
        # what the bank reports about the account is not transaction data: the balances are the same (those with
        # the overdraft aside: its limit is drawn per connection)
        def own_balances(a):
            return [b for b in a["balances"] if not b["creditLimitIncluded"]]
        assert own_balances(account) == own_balances(full_accounts[account["externalId"]])
        # the balance history starts at the cut and is the uncut twin's history from there on
        history, twin = (w.http.get(f"/open-finance/v2/data/accounts/{a}/balances/history", headers=w.h).get_json()
                         ["items"] for a in (account["id"], full_accounts[account["externalId"]]["id"]))
        first = (date.fromisoformat(START) - timedelta(days=1)).isoformat()
        assert history[0]["date"] >= first and history == [row for row in twin if row["date"] >= history[0]["date"]]
    # a transaction booked before START is not found through the cut connection
    before = next(t for t in full_items if t["date"]["bookingDate"] < START)
    ext = next(e for e, a in full_accounts.items() if a["id"] == before["accountId"])
    mine = next(a for a in accounts if a["externalId"] == ext)
    sk = before["SK"].replace(before["accountId"], mine["id"])
    assert w.http.get(f"/open-finance/v2/data/transactions/{sk.replace('#', '%23')}", headers=w.h).status_code == 404
    assert w.http.get(f"/open-finance/v2/data/transactions/{before['SK'].replace('#', '%23')}",
                      headers=w.h).status_code == 200
    # the uncut connection, read again after the cut one, still serves everything
    assert served(data_items(w, "transactions", connectionId=full)) == served(full_items)


def test_a_future_start_date_serves_no_transactions(w):
    full = w.connected("043510023")
    today = w.connected("043510023", startDate="2026-03-02")   # the sandbox day: only its own bookings
    todays = [t for t in data_items(w, "transactions", connectionId=full) if t["date"]["bookingDate"] == "2026-03-02"]
    assert todays and served(data_items(w, "transactions", connectionId=today)) == served(todays)
    cut = w.connected("043510023", startDate="2026-03-03")   # tomorrow
    assert data_items(w, "transactions", connectionId=cut) == []
    assert w.get(cut)["transactions"] == 0
    accounts = data_items(w, "accounts", connectionId=cut)
    assert accounts and all(a["transactions"] == 0 for a in accounts)
    assert len(accounts) == len(data_items(w, "accounts", connectionId=full))


def test_the_cached_view_is_per_connection_and_per_cut(w):
    """core/derived.py keeps a view per key while the stored ledger text is the same: the same stored ledger read
    with and without a startDate must never share a view."""
    cid = w.connected("043510023")
    service = w.sb.providers["open_finance"].service
    doc = w.sb.store.get(TENANT, "open_finance.connections", f"{w.user}\x1f{cid}")
    _VIEWS.clear()
    whole = service.connection_counts(TENANT, doc)["transactions"]
    cut = service.connection_counts(TENANT, {**doc, "startDate": START})["transactions"]
    again = service.connection_counts(TENANT, doc)["transactions"]
    expected = len(raw_booked_since(w.ledger(cid), START))
    assert cut == expected < whole == again


def test_reports_compute_from_the_cut_data():
    """The financial and monthly reports of a user whose only connection has a startDate use only the transactions
    that connection serves: months before the cut are absent, the months after it equal an uncut twin's."""
    w = World()
    full_user, cut_user = w.token("full@example.com"), w.token("cut@example.com")
    reports = {}
    for name, h, body in (("full", full_user, {}), ("jan", cut_user, {"startDate": "2026-01-01"})):
        w.h = h
        w.connected("043510023", **body)
        r = w.http.post("/open-finance/financial-report/043510023", headers=h)
        assert r.status_code == 200, r.get_data(as_text=True)
        for _ in range(2):
            out = w.http.get(f"/open-finance/financial-report/{r.get_json()['jobId']}", headers=h).get_json()
        assert out["status"] == "DONE"
        reports[name] = out["financialReport"]
    full_rows, cut_rows = reports["full"]["yearMonthBalance"], reports["jan"]["yearMonthBalance"]
    assert [r["yearMonth"] for r in cut_rows] == ["2026-03", "2026-02", "2026-01"]
    assert cut_rows == full_rows[:3] and len(full_rows) > 3


@pytest.mark.parametrize("start,same_month", [("2026-02-01", True), ("2026-03-01", False)])
def test_monthly_report_counts_only_what_the_connection_collected(start, same_month):
    """The monthly report covers the previous month (February here): a cut at its first day keeps it whole, a cut
    after it leaves nothing to count; loans and savings balances are not transactions and stay."""
    w = World()
    got = {}
    for user, body in (("full@example.com", {}), ("cut@example.com", {"startDate": start})):
        w.h = w.token(user)
        w.connected("043510023", **body)
        path = f"/open-finance/v2/data/monthly-report/{user}"
        assert w.http.get(path, headers=w.h).status_code == 404   # s.6: the first call builds it
        r = w.http.get(path, headers=w.h)
        assert r.status_code == 200, r.get_data(as_text=True)
        got[user] = r.get_json()
    full, cut = got["full@example.com"], got["cut@example.com"]
    inc, exp = (cut["openBankingReportBalances"][k] for k in ("incomes", "expenses"))
    full_inc, full_exp = (full["openBankingReportBalances"][k] for k in ("incomes", "expenses"))
    assert full_inc["total"] > 0 and full_exp["total"] > 0
    if same_month:
        assert (inc, exp) == (full_inc, full_exp)
    else:
        assert inc["total"] == 0 and exp["total"] == 0
    details, full_details = cut["MonthlyReportGeneralDetails"], full["MonthlyReportGeneralDetails"]
    assert details["loans"]["totalLoansAmount"] == full_details["loans"]["totalLoansAmount"]
    assert details["savings"]["totalSavingsAmount"] == full_details["savings"]["totalSavingsAmount"]


@pytest.mark.parametrize("bad", ["2026-02-30", "2026-1-5", "20260105", "0000-01-01", "", "2026-01-05T00:00:00Z",
                                 "yesterday", "２０２６-01-05", 20260105, None, ["2026-01-05"]])
def test_a_malformed_start_date_is_the_providers_400(w, bad):
    r = w.http.post("/open-finance/v2/connections", json={"includeFakeProviders": True, "startDate": bad},
                    headers=w.h)
    assert r.status_code == 400, r.get_data(as_text=True)
    body = r.get_json()
    assert set(body) == {"type", "message"} and body["type"] == "CLIENT_ERROR"
    messages = json.loads(body["message"])   # s.3/s.4: a JSON-encoded array of Joi-style messages
    assert isinstance(messages, list) and messages[0].startswith('"startDate" ')
    listed = w.http.get("/open-finance/v2/connections", headers=w.h).get_json()
    assert listed["items"] == []   # nothing was created


def test_a_valid_start_date_is_accepted_and_shown(w):
    cid = w.create(startDate="2024-02-29")["id"]
    assert w.get(cid)["startDate"] == "2024-02-29"


@pytest.mark.parametrize("bad", ["0000-01-01", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "2026-02-30",
                                 "2026-13-01T00:00:00Z"])
def test_an_expiry_no_instant_can_hold_is_the_providers_400_not_a_later_500(w, bad):
    """s.6 expiryDate is a date-time: year 0 passed the schema and broke every later read of the connection."""
    r = w.http.post("/open-finance/v2/connections", json={"includeFakeProviders": True, "expiryDate": bad},
                    headers=w.h)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert json.loads(r.get_json()["message"])[0].startswith('"expiryDate" ')
    assert w.http.get("/open-finance/v2/connections", headers=w.h).get_json()["items"] == []
    cid = w.create()["id"]
    r = w.http.post("/open-finance/v2/connect/open-banking-init", headers=w.h, json={
        "providerId": SANDBOX, "connectionId": cid, "psuId": "043510023", "expiryDate": bad})
    assert r.status_code == 400, r.get_data(as_text=True)
    assert w.get(cid)["status"] == "INACTIVE" and "expiryDate" not in {k for k, v in w.get(cid).items() if v}


def test_a_valid_expiry_is_kept_and_expires_the_connection(w):
    cid = w.create(expiryDate="2099-01-01T00:00:00Z")["id"]
    assert w.get(cid)["status"] == "INACTIVE" and w.get(cid)["expiryDate"].startswith("2099-01-01")
