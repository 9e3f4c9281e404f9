"""Open Finance monthly report, decision and private-scoring jobs (open_finance.md s.6-7), the IL ledger features
behind the financial report's count* fields, and their consistency with the stored ledger.

Expected values are recomputed here from the raw stored ledger JSON (amounts, categories, events, balances), never
through sandbox/providers/open_finance/reports.py.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore
from sandbox.ledger import generate_ledger
from sandbox.ledger.models import CATEGORY_KINDS

NOW = "2025-04-23T10:00:00Z"
TODAY = date(2025, 4, 23)
GUIDE = "318422557"
LEDGERS = "open_finance.ledgers"
INCOME_SOURCES = {"salary", "pension", "benefits"}
OWN = {"savings_transfer", "securities_purchase"}


def make(config: dict | None = None):
    app = create_app({"SEED": 11, "SECRET_KEY": "unit", **(config or {})}, store=MemoryStore())
    http = app.test_client()
    assert http.post("/_sandbox/clock/freeze", json={"at": NOW}).status_code == 200
    return app, http


def bearer(http, user: str) -> dict:
    tok = http.post("/open-finance/oauth/token", json={"userId": user, "clientId": "sandbox-client",
                                                       "clientSecret": "sandbox-secret"}).get_json()["accessToken"]
    return {"Authorization": f"Bearer {tok}"}


def provision(http, user: str, customer: str = GUIDE) -> dict:
    h = bearer(http, user)
    assert http.post(f"/open-finance/financial-report/{customer}", headers=h).status_code == 200
    return h


def stored_ledgers(app) -> list[dict]:
    """Every stored ledger of the default tenant, as raw JSON."""
    store = app.extensions["sandbox"].store
    return [doc for _, doc in store.list("sandbox-client", LEDGERS)]


def done(http, path: str, job_id: str, h: dict) -> dict:
    assert http.post(f"/_sandbox/jobs/{job_id}/complete", json={}).status_code == 200
    r = http.get(f"/open-finance/v2/{path}/{job_id}", headers=h)
    assert r.status_code == 200
    return r.get_json()


def D(value) -> Decimal:
    return Decimal(str(value))


def ils_checking(ledger: dict) -> list[dict]:
    return [a for a in ledger["accounts"] if a["kind"] == "checking" and a["currency"] == "ILS"]


def month_of(day: str) -> tuple[int, int]:
    return int(day[:4]), int(day[5:7])


# --- the monthly report --------------------------------------------------------------------------------------------
def test_monthly_report_numbers_are_the_stored_ledgers_march_sums():
    app, http = make()
    h = provision(http, "m-user")
    assert http.get("/open-finance/v2/data/monthly-report/m-user", headers=h).status_code == 404
    r = http.get("/open-finance/v2/data/monthly-report/m-user", headers=h)
    assert r.status_code == 200
    report = r.get_json()
    (ledger,) = stored_ledgers(app)
    inc, exp, salary, cheque_in, cheque_out, mortgage, regular_exp = (Decimal(0),) * 7
    events = Counter()
    for a in ils_checking(ledger):
        for t in a["transactions"]:
            if month_of(t["booking_date"]) != (2025, 3):
                continue
            amount = Decimal(t["amount"])
            events[t.get("event")] += 1
            if amount > 0 and CATEGORY_KINDS[t["category"]] == "income":
                inc += amount
                salary += amount if t["category"] == "salary" else 0
                cheque_in += amount if t.get("event") == "cheque_deposit" else 0
            elif amount < 0 and t["category"] not in OWN:
                exp -= amount
                cheque_out -= amount if t.get("event") == "cheque" else 0
                mortgage -= amount if t["category"] == "mortgage" else 0
                regular_exp -= amount if CATEGORY_KINDS[t["category"]] == "regular" else 0
    loan_events = Counter(t.get("event") for a in ledger["accounts"] if a["kind"] in ("loan", "mortgage")
                          for t in a["transactions"] if month_of(t["booking_date"]) == (2025, 3))
    b = report["openBankingReportBalances"]
    assert (D(b["incomes"]["total"]), D(b["incomes"]["incomeFromSalary"]), D(b["incomes"]["incomeFromChecks"])) == \
        (inc, salary, cheque_in)
    assert (D(b["expenses"]["total"]), D(b["expenses"]["expensesFromChecks"]), D(b["expenses"]["expensesFromMortgage"]),
            D(b["expenses"]["regularExpensesSum"])) == (exp, cheque_out, mortgage, regular_exp)
    assert b["nsf"] == events["cheque_returned"] >= 1
    assert b["standingOrdersReturns"] == events["standing_order_returned"] >= 1
    assert b["canceledChecks"] == events["cheque_cancelled"] and b["accountForeclosure"] == events["foreclosure"] == 1
    assert b["limitationAlert"] == events["alert_notice"]
    assert b["fallingBehindWarnings"] == loan_events["loan_arrears"] >= 1
    assert b["transfersForFallingBehind"] == events["arrears_payment"]
    loans = report["MonthlyReportGeneralDetails"]["loans"]
    owed = {a["number"]: -Decimal(a["balance"]) for a in ledger["accounts"] if a["kind"] in ("loan", "mortgage")}
    assert {k: D(v["amount"]) for k, v in loans["bankLoans"].items()} == owed
    assert D(loans["totalLoansAmount"]) == sum(owed.values())
    savings = report["MonthlyReportGeneralDetails"]["savings"]
    assert D(savings["totalSavingsAmount"]) == sum(Decimal(a["balance"]) for a in ledger["accounts"]
                                                  if a["kind"] == "savings")


def test_monthly_report_rebuilds_when_the_data_changes():
    """404 / 200 boundaries: the first call, a new connection's data, and a new month each answer 404 once."""
    app, http = make()
    h = provision(http, "changing")
    url = "/open-finance/v2/data/monthly-report/changing"
    assert [http.get(url, headers=h).status_code for _ in range(3)] == [404, 200, 200]
    http.post("/_sandbox/clock/advance", json={"seconds": 7 * 86400})            # still April: same report
    h = bearer(http, "changing")
    assert http.get(url, headers=h).status_code == 200
    http.post("/_sandbox/clock/set", json={"at": "2025-04-30T23:59:59Z"})
    h = bearer(http, "changing")
    assert http.get(url, headers=h).status_code == 200                        # last second of April
    http.post("/_sandbox/clock/set", json={"at": "2025-05-01T00:00:00Z"})
    h = bearer(http, "changing")
    assert [http.get(url, headers=h).status_code for _ in range(2)] == [404, 200]   # May: a new report


def test_monthly_report_refuses_users_without_data_and_other_users():
    _, http = make()
    lonely = bearer(http, "lonely")
    r = http.get("/open-finance/v2/data/monthly-report/lonely", headers=lonely)
    assert r.status_code == 400 and r.get_json() == {"type": "CLIENT_ERROR", "message": "The user has no connections"}
    provision(http, "owner")
    r = http.get("/open-finance/v2/data/monthly-report/owner", headers=lonely)
    assert r.status_code == 400 and r.get_json()["message"] == "The user has no connections"


# --- decisions and scoring -----------------------------------------------------------------------------------------
def _metrics(ledger: dict, today: date) -> dict:
    """Independent recomputation of the decision figures: up to 12 complete months before today's month."""
    last = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    first_seen = min(month_of(t["booking_date"]) for a in ledger["accounts"] for t in a["transactions"])
    months = []
    y, m = last
    while (y, m) >= first_seen and len(months) < 12:
        months.append((y, m))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    start = date(*months[-1], 1)
    end = today.replace(day=1) - timedelta(days=1)
    income = expense = Decimal(0)
    regular = set()
    for a in ils_checking(ledger):
        for t in a["transactions"]:
            if not start.isoformat() <= t["booking_date"] <= end.isoformat():
                continue
            amount = Decimal(t["amount"])
            if amount > 0 and CATEGORY_KINDS[t["category"]] == "income":
                income += amount
                if t["category"] in INCOME_SOURCES:
                    regular.add(month_of(t["booking_date"]))
            elif amount < 0 and t["category"] not in OWN:
                expense -= amount
    overdraft = 0
    day = start
    while day <= end:
        total = Decimal(0)
        for a in ils_checking(ledger):
            balance = Decimal(a["opening_balance"])
            for t in a["transactions"]:
                if t["booking_date"] <= day.isoformat():
                    balance = Decimal(t["balance_after"])
            total += balance
        overdraft += total < 0
        day += timedelta(days=1)
    events = Counter(t.get("event") for a in ledger["accounts"] for t in a["transactions"]
                     if start.isoformat() <= t["booking_date"] <= end.isoformat())
    cent = Decimal("0.01")
    return {"income": (income / len(months)).quantize(cent, ROUND_HALF_UP),
            "expense": (expense / len(months)).quantize(cent, ROUND_HALF_UP), "regular": len(regular),
            "overdraft": overdraft, "events": events,
            "loans": sum(-Decimal(a["balance"]) for a in ledger["accounts"] if a["kind"] in ("loan", "mortgage")),
            "assets": sum(Decimal(a["balance"]) for a in ledger["accounts"] if a["kind"] in ("savings", "securities"))}


@pytest.mark.parametrize("customer", [GUIDE, "043510023", "321547853"])
def test_decision_extended_items_are_the_ledgers_figures(customer):
    app, http = make()
    h = provision(http, "d-user", customer)
    job = http.post(f"/open-finance/v2/decision-extended/{customer}", headers=h).get_json()["jobId"]
    items = {i["parameter"]: i for i in done(http, "decision-extended", job, h)["decision"]}
    (ledger,) = stored_ledgers(app)
    m = _metrics(ledger, TODAY)
    ev = m["events"]
    expected = {
        "averageMonthlyIncome": (m["income"], m["income"] >= 4000),
        "netMonthlyIncome": (m["income"] - m["expense"], m["income"] >= m["expense"]),
        "returnedCheques": (ev["cheque_returned"], ev["cheque_returned"] == 0),
        "standingOrderReturns": (ev["standing_order_returned"], ev["standing_order_returned"] == 0),
        "foreclosures": (ev["foreclosure"], ev["foreclosure"] == 0),
        "overdueLoanInstalments": (ev["loan_arrears"], ev["loan_arrears"] == 0),
        "overdraftDays": (m["overdraft"], m["overdraft"] <= 10),
        "regularIncomeMonths": (m["regular"], m["regular"] >= 1),
        "cancelledCheques": (ev["cheque_cancelled"], ev["cheque_cancelled"] == 0),
        "limitationAlerts": (ev["alert_notice"], ev["alert_notice"] == 0),
    }
    for parameter, (value, passed) in expected.items():
        assert (D(items[parameter]["value"]), items[parameter]["passed"]) == (Decimal(value), passed), parameter
    if customer != "043510023":
        assert ev["cheque_returned"] and ev["foreclosure"] and ev["loan_arrears"]
    if customer == GUIDE:
        assert m["overdraft"] >= 1


@pytest.mark.parametrize("customer", [GUIDE, "043510023", "321547853"])
def test_private_score_follows_the_documented_formula(customer):
    app, http = make()
    h = provision(http, "s-user", customer)
    created = http.post(f"/open-finance/v2/private-scoring/{customer}", headers=h).get_json()
    assert created["status"] == "READY"
    scoring = done(http, "private-scoring", created["jobId"], h)["scoring"]
    (ledger,) = stored_ledgers(app)
    m = _metrics(ledger, TODAY)
    ev = m["events"]
    ratio = (m["income"] - m["expense"]) / m["income"]
    score = Decimal(600) + 100 * max(Decimal(-1), min(Decimal(1), ratio))
    score += 50 if m["assets"] >= 3 * m["expense"] else 0
    score -= (40 * ev["cheque_returned"] + 30 * ev["standing_order_returned"] + 100 * ev["foreclosure"]
              + 50 * ev["loan_arrears"] + 10 * ev["alert_notice"] + 2 * m["overdraft"])
    expected = int(max(Decimal(300), min(Decimal(850), score)).to_integral_value(ROUND_HALF_UP))
    assert scoring["finalScore"] == expected
    assert scoring["customerId"] == customer and scoring["createdAt"] == "2025-04-23T10:00:00.000Z"


def test_jobs_follow_the_default_policy_3_seconds_or_the_second_poll():
    _, http = make()
    h = provision(http, "policy-user")
    job = http.post(f"/open-finance/v2/decision/{GUIDE}", headers=h).get_json()["jobId"]
    assert http.get(f"/open-finance/v2/decision/{job}", headers=h).get_json() == {"status": "RUNNING"}
    assert http.get(f"/open-finance/v2/decision/{job}", headers=h).get_json()["status"] == "DONE"
    job = http.post(f"/open-finance/v2/decision/{GUIDE}", headers=h).get_json()["jobId"]
    http.post("/_sandbox/clock/advance", json={"seconds": 2.999})
    assert http.get(f"/_sandbox/jobs/{job}").get_json()["state"] == "RUNNING"   # no poll counted
    http.post("/_sandbox/clock/advance", json={"seconds": 0.001})
    assert http.get(f"/open-finance/v2/decision/{job}", headers=h).get_json()["status"] == "DONE"


def test_strict_connections_mode_leaves_users_without_data():
    _, http = make({"OPEN_FINANCE_STRICT_CONNECTIONS": True})
    h = bearer(http, "strict")
    r = http.post(f"/open-finance/financial-report/{GUIDE}", headers=h)
    assert r.status_code == 400 and r.get_json() == {"message": "No active connections found", "code": "INVALID_REQUEST"}
    for path in ("decision", "decision-extended"):
        r = http.post(f"/open-finance/v2/{path}/{GUIDE}", headers=h)
        assert r.status_code == 400 and r.get_json()["message"] == "No active connections found"
    assert http.post(f"/open-finance/v2/private-scoring/{GUIDE}", headers=h).get_json()["status"] == \
        "NO_CONNECTIONS_FOUND"
    assert http.get("/open-finance/v2/data/monthly-report/strict", headers=h).status_code == 400


def test_jobs_are_deterministic_for_a_seed():
    def run():
        _, http = make()
        h = provision(http, "det")
        job = http.post(f"/open-finance/v2/decision-extended/{GUIDE}", headers=h).get_json()["jobId"]
        return job, done(http, "decision-extended", job, h)
    assert run() == run()


# --- the financial report's count* fields and currencies come from the stored ledger -------------------------------
@pytest.mark.parametrize("customer", [GUIDE, "321547853", "043510023"])
def test_financial_report_counts_and_currencies_are_the_ledgers(customer):
    app, http = make()
    h = provision(http, "fr-user", customer)
    job = http.post(f"/open-finance/financial-report/{customer}", headers=h).get_json()["jobId"]
    http.post(f"/_sandbox/jobs/{job}/complete", json={})
    report = http.get(f"/open-finance/financial-report/{job}", headers=h).get_json()["financialReport"]
    (ledger,) = stored_ledgers(app)
    events = Counter(t.get("event") for a in ledger["accounts"] for t in a["transactions"])
    assert (report["countAkam"], report["countAlertNotice"], report["countCancelled"], report["countForeclosure"],
            report["countLoanOverDue"]) == (events["cheque_returned"], events["alert_notice"],
                                             events["cheque_cancelled"], events["foreclosure"], events["loan_arrears"])
    checking = [a for a in ledger["accounts"] if a["kind"] == "checking"]
    assert [r["accountNumber"] for r in report["checkingAccounts"]] == [a["number"] for a in checking]
    assert [r["accountNumber"] for r in report["checkingAccountsILS"]] == [a["number"] for a in checking
                                                                            if a["currency"] == "ILS"]
    foreign = Counter()
    for a in ledger["accounts"]:
        if a["currency"] != "ILS" and a["kind"] in ("checking", "savings"):
            foreign[a["currency"]] += Decimal(a["balance"])
    assert {f["currency"]: D(f["amount"]) for f in report["savingsAndSecurities"]["totalForeignCurrencyAmount"]} == \
        dict(foreign)
    if customer == GUIDE:
        assert foreign and events["cheque_returned"] >= 2 and report["loans"] and report["securities"]


# --- the IL market features leave every other market exactly as it was -------------------------------------------
# sha256 of generate_ledger(7, customer, date(2025, 4, 23), market, months=13).to_json() before IL features existed
BASELINE = {
    ("DE", "a"): "b221517869f938e265ea390900f8ece6ca8e3dc1737307e64547d35cb91360c4",
    ("IN", "a"): "8f77a7c091cd04f8a8de965402abe37e8c6fe239acbba2b78edc07d8b6b37a40",
    ("DE", GUIDE): "51a9db3322dad74522003fac089968d40778f89e98bea9ed5c6392508f149b05",
    ("IN", "cust-42"): "b988a11bb6542a8325c8c5d7ab3f77b4e6d7bed17f0b104e9aeecd2f6ebf7e38",
}


@pytest.mark.parametrize("market,customer", list(BASELINE))
def test_other_markets_carry_no_events_or_foreign_accounts(market, customer):
    ledger = generate_ledger(7, customer, TODAY, market=market, months=13)
    raw = json.dumps(ledger.to_json(), sort_keys=True, ensure_ascii=False)
    assert '"event"' not in raw
    assert len({a.currency for a in ledger.accounts}) == 1
    assert hashlib.sha256(raw.encode()).hexdigest() == BASELINE[(market, customer)]


def test_the_guide_customer_is_pinned_whatever_the_seed():
    for seed in (0, 1, 11, 99):
        ledger = generate_ledger(seed, GUIDE, TODAY, market="IL")
        kinds = {a.kind for a in ledger.accounts}
        assert ledger.persona == "high_earner_investor" and {"loan", "securities", "savings"} <= kinds
        assert any(a.currency != "ILS" for a in ledger.accounts)
        events = Counter(t.event for a in ledger.accounts for t in a.transactions)
        assert events["cheque_returned"] >= 2 and events["foreclosure"] == 1 and events["loan_arrears"] >= 1
