"""Open Finance monthly report, decision, decision-extended and private-scoring jobs, by catalogue id (open_finance.md
sections 6 and 7). In-process by default; over HTTP with --base-url (jobs and the clock move only through the control
API). A user gets data the documented way a guide client does: its first financial report provisions a COMPLETED
sandbox connection (s.5); customer 318422557 (the guide's example) has loans, securities, a foreign-currency account
and count* incidents (fixtures/markets/IL.yaml).
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore

from .checks import provider_error, response_schema_conformance, status_in
from .plugin import make_transport

TOKEN, REPORT, GET_REPORT = ("open_finance.create_token", "open_finance.create_financial_report",
                             "open_finance.get_financial_report")
MONTHLY = "open_finance.get_monthly_report"
JOBS = {  # create op -> (get op, job kind of the sandbox job engine)
    "open_finance.create_decision": ("open_finance.get_decision", "open_finance.decision"),
    "open_finance.create_decision_extended": ("open_finance.get_decision_extended", "open_finance.decision_extended"),
    "open_finance.create_private_scoring": ("open_finance.get_private_scoring", "open_finance.private_scoring"),
}
DECISIONS = ["open_finance.create_decision", "open_finance.create_decision_extended"]
GUIDE_CUSTOMER = "318422557"
INVALID_JOB = {"type": "CLIENT_ERROR", "message": "Invalid jobId"}
NO_ACTIVE = {"type": "CLIENT_ERROR", "message": "No active connections found"}
NO_CONNECTIONS = {"type": "CLIENT_ERROR", "message": "The user has no connections"}
NO_REPORT = {"type": "CLIENT_ERROR", "message": "The user has no report, refreshing it's data and creating the report"}
# Open Finance (main, sub) of the ledger's income categories (open_finance.md s.10; sandbox data.CATEGORIES)
INCOME = {("SALARY", "SALARY_OTHER"), ("PENSION", "PENSION_OTHER"), ("BENEFITS", "BENEFITS_OTHER"),
          ("OTHER", "OTHER"), ("FINANCE", "FINANCE_OTHER"), ("REIMBURSEMENTS", "REIMBURSEMENTS_OTHER")}
OWN_TRANSFERS = {("FINANCE", "SAVINGS"), ("FINANCE", "CAPITAL_MARKET")}   # to the user's savings / securities / FX


@pytest.fixture
def of(contract_options):
    transport, control = make_transport(contract_options, "open_finance",
                                        lambda: create_app({"SEED": 11, "SECRET_KEY": "contract-tests"},
                                                           store=MemoryStore()))
    if contract_options["real"]:
        pytest.skip("sandbox data, scenarios and the control API are sandbox-only")
    control.reset()
    control.clock("freeze", at="2025-04-23T10:00:00Z")
    yield transport, control, contract_options
    control.clear_policy()
    control.clock("reset")


def token(of, user_id: str) -> str:
    transport, _, opts = of
    r = transport.call(TOKEN, json_body={"userId": user_id, "clientId": opts["client_id"],
                                         "clientSecret": opts["client_secret"]})
    status_in(r, 200)
    return r.json["accessToken"]


def bearer(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}


def with_data(of, user_id: str, customer: str = GUIDE_CUSTOMER) -> str:
    """A token of a user whose first financial report provisioned a COMPLETED connection (s.5), and that report DONE."""
    tok = token(of, user_id)
    r = of[0].call(REPORT, path_params={"customerId": customer}, headers=bearer(tok))
    status_in(r, 200)
    return tok


def financial_report(of, tok: str, customer: str = GUIDE_CUSTOMER) -> dict:
    transport, control, _ = of
    job = transport.call(REPORT, path_params={"customerId": customer}, headers=bearer(tok)).json["jobId"]
    control.job(job, "complete")
    r = transport.call(GET_REPORT, path_params={"jobId": job}, headers=bearer(tok))
    return r.json["financialReport"]


def create(of, op: str, tok: str, customer: str = GUIDE_CUSTOMER):
    r = of[0].call(op, path_params={"customerId": customer}, headers=bearer(tok))
    response_schema_conformance(r)
    return r


def poll(of, op: str, tok: str, job_id: str):
    r = of[0].call(JOBS[op][0], path_params={"jobId": job_id}, headers=bearer(tok))
    status_in(r, 200)
    response_schema_conformance(r)
    return r.json


# --- jobs: lifecycle on the sandbox clock ---------------------------------------------------------------------------
@pytest.mark.parametrize("op", list(JOBS))
def test_a_job_is_running_until_its_time_then_done(of, op):
    """Boundary: RUNNING just before the policy's completion time, DONE just after (s.7)."""
    _, control, _ = of
    control.policy(mode="auto", seconds=5, kind=JOBS[op][1])
    tok = with_data(of, "jobs-user")
    r = create(of, op, tok)
    status_in(r, 200)
    job_id = r.json["jobId"]
    if op.endswith("private_scoring"):
        assert r.json["status"] == "READY"
    assert poll(of, op, tok, job_id) == {"status": "RUNNING"}
    control.clock("advance", seconds=4.9)
    assert poll(of, op, tok, job_id) == {"status": "RUNNING"}
    control.clock("advance", seconds=0.2)
    done = poll(of, op, tok, job_id)
    assert done["status"] == "DONE"
    assert done == poll(of, op, tok, job_id)   # DONE is stable


@pytest.mark.parametrize("op", DECISIONS)
def test_decision_items_agree_with_the_financial_report(of, op):
    """decision[] {parameter, value, passed} (provisional shape): incidents equal the report's count* fields."""
    _, control, _ = of
    tok = with_data(of, "decision-user")
    report = financial_report(of, tok)
    job_id = create(of, op, tok).json["jobId"]
    control.job(job_id, "complete")
    items = {i["parameter"]: i for i in poll(of, op, tok, job_id)["decision"]}
    for parameter, field in (("returnedCheques", "countAkam"), ("foreclosures", "countForeclosure"),
                             ("overdueLoanInstalments", "countLoanOverDue")):
        assert items[parameter]["value"] == report[field] > 0
        assert items[parameter]["passed"] is False
    assert all(isinstance(i["passed"], bool) for i in items.values())
    if op.endswith("extended"):
        assert items["cancelledCheques"]["value"] == report["countCancelled"]
        assert items["limitationAlerts"]["value"] == report["countAlertNotice"]
        assert {"debtToYearlyIncome", "regularIncomeMonths"} <= set(items)
    else:
        assert "debtToYearlyIncome" not in items


@pytest.mark.parametrize("op", DECISIONS)
def test_decisions_need_an_active_or_completed_connection(of, op):
    provider_error(create(of, op, token(of, "nobody")), 400, NO_ACTIVE)
    rejected = token(of, "rejected-user")   # published psuId 050299338: the consent is REJECTED (s.11)
    provider_error(of[0].call(REPORT, path_params={"customerId": "050299338"}, headers=bearer(rejected)), 400)
    provider_error(create(of, op, rejected), 400, NO_ACTIVE)


def test_private_scoring_statuses_follow_the_connections(of):
    transport = of[0]
    op = "open_finance.create_private_scoring"
    nobody = token(of, "scoring-nobody")
    r = create(of, op, nobody)
    status_in(r, 200)
    assert r.json["status"] == "NO_CONNECTIONS_FOUND"
    assert poll(of, op, nobody, r.json["jobId"]) == {"status": "NO_CONNECTIONS_FOUND"}
    pending = token(of, "scoring-pending")   # a connection waiting for its consent journey: INACTIVE (s.8)
    made = transport.call("open_finance.create_connection", json_body={"includeFakeProviders": True},
                          headers=bearer(pending))
    status_in(made, 201)
    r = create(of, op, pending)
    assert r.json["status"] == "NOT_READY"
    assert poll(of, op, pending, r.json["jobId"]) == {"status": "NOT_READY"}
    tok = with_data(of, "scoring-ready")
    r = create(of, op, tok)
    assert r.json["status"] == "READY"
    status_in(transport.call("open_finance.create_connection", json_body={"includeFakeProviders": True},
                             headers=bearer(tok)), 201)
    assert create(of, op, tok).json["status"] == "LOADING_MORE"


def _readme_scores(items: dict) -> tuple[set, Decimal]:
    """The finalScore the README formula gives for a user's decision-extended figures (the same credit metrics, at
    the same frozen instant): (the possible scores, the incident penalty). Two candidates only when the liquid-assets
    ratio, rounded to cents, reads exactly 3.00 (the +50 needs the unrounded ratio >= 3)."""
    v = {name: Decimal(str(item["value"])) for name, item in items.items()}
    income, net = v["averageMonthlyIncome"], v["netMonthlyIncome"]
    ratio = net / income if income else Decimal(-1)
    penalty = (40 * v["returnedCheques"] + 30 * v["standingOrderReturns"] + 100 * v["foreclosures"]
               + 50 * v["overdueLoanInstalments"] + 10 * v["limitationAlerts"] + 2 * v["overdraftDays"])
    base = Decimal(600) + 100 * max(Decimal(-1), min(Decimal(1), ratio)) - penalty
    liquid = v["liquidAssetsToMonthlyExpenses"]
    bonuses = (50,) if liquid > 3 else (0,) if liquid < 3 else (0, 50)
    return ({int(max(Decimal(300), min(Decimal(850), base + b)).to_integral_value(rounding=ROUND_HALF_UP))
             for b in bonuses}, penalty)


def test_private_scoring_done_has_a_score_for_its_customer(of):
    """finalScore follows the README formula over the figures decision-extended reports for the same data; the
    guide customer's returned cheques, foreclosure and missed instalments cost it points. (Not compared with another
    customer's score: whether a published psuId's generated persona scores higher depends on the seed.)"""
    _, control, _ = of
    op = "open_finance.create_private_scoring"
    tok = with_data(of, "score-user")
    healthy = with_data(of, "healthy-user", customer="043510023")
    for who, customer in ((tok, GUIDE_CUSTOMER), (healthy, "043510023")):
        job_id = create(of, op, who, customer).json["jobId"]
        control.job(job_id, "complete")
        done = poll(of, op, who, job_id)
        scoring = done["scoring"]
        assert scoring["customerId"] == customer and scoring["createdAt"].startswith("2025-04-23T10:00:00")
        assert 300 <= scoring["finalScore"] <= 850
        extended = "open_finance.create_decision_extended"
        decision = create(of, extended, who, customer).json["jobId"]
        control.job(decision, "complete")
        items = {i["parameter"]: i for i in poll(of, extended, who, decision)["decision"]}
        expected, penalty = _readme_scores(items)
        assert scoring["finalScore"] in expected, (customer, scoring["finalScore"], expected, items)
        if customer == GUIDE_CUSTOMER:   # its incidents (IL.yaml distress) are always there and always cost points
            assert penalty >= 40 * 2 + 100 + 50, items


@pytest.mark.parametrize("op", list(JOBS))
def test_unknown_foreign_and_other_kind_job_ids_are_invalid(of, op):
    owner, stranger = with_data(of, "owner@example.com"), with_data(of, "stranger@example.com")
    job_id = create(of, op, owner).json["jobId"]
    report_job = of[0].call(REPORT, path_params={"customerId": GUIDE_CUSTOMER}, headers=bearer(owner)).json["jobId"]
    other_kind = create(of, next(o for o in JOBS if o != op), owner).json["jobId"]
    for tok, bad in ((owner, "not-a-ulid"), (owner, "01HZZYPQTN3CW7RR3PKR55A6JK"), (owner, "%F0%9F%92%A5"),
                     (stranger, job_id), (owner, report_job), (owner, other_kind)):
        provider_error(of[0].call(JOBS[op][0], path_params={"jobId": bad}, headers=bearer(tok)), 400, INVALID_JOB)
    status_in(of[0].call(JOBS[op][0], path_params={"jobId": job_id}, headers=bearer(owner)), 200)


@pytest.mark.parametrize("op", list(JOBS))
def test_a_job_uses_the_data_that_existed_when_it_was_created(of, op):
    """Deleting the connection afterwards changes nothing in a running job's result (s.6)."""
    transport, control, _ = of
    tok = with_data(of, "snapshot-user")
    first = create(of, op, tok).json["jobId"]
    second = create(of, op, tok).json["jobId"]
    control.job(second, "complete")
    expected = poll(of, op, tok, second)
    connections = transport.call("open_finance.list_connections", headers=bearer(tok)).json["items"]
    for c in connections:
        status_in(transport.call("open_finance.delete_connection", path_params={"connectionId": c["id"]},
                                 headers=bearer(tok)), 204)
    control.job(first, "complete")
    result = poll(of, op, tok, first)
    if "scoring" in expected:
        assert result["scoring"]["finalScore"] == expected["scoring"]["finalScore"]
    else:
        assert result == expected
    after = create(of, op, tok)
    if op.endswith("private_scoring"):
        assert after.json["status"] == "NO_CONNECTIONS_FOUND"
    else:
        provider_error(after, 400, NO_ACTIVE)


@pytest.mark.parametrize("op", list(JOBS))
def test_failure_scenario_and_control_api_failure(of, op):
    _, control, _ = of
    tok = with_data(of, "failing-user")
    job_id = create(of, op, tok, customer="sandbox-job-fails").json["jobId"]
    assert poll(of, op, tok, job_id)["status"] == "FAILED"
    job_id = create(of, op, tok).json["jobId"]
    control.job(job_id, "fail", message="bank timeout")
    assert poll(of, op, tok, job_id) == {"status": "FAILED", "message": "bank timeout"}
    provider_error(create(of, op, tok, customer="sandbox-internal-error"), 500)


@pytest.mark.parametrize("op", list(JOBS))
def test_job_routes_need_the_scope_and_a_token(of, op):
    transport, control, _ = of
    provider_error(transport.call(op, path_params={"customerId": "1"}, headers={}), 401)
    provider_error(transport.call(JOBS[op][0], path_params={"jobId": "01HZZYPQTN3CW7RR3PKR55A6JK"}, headers={}), 401)
    narrow = control.create_client(client_id="narrow-jobs", client_secret="narrow-jobs-secret-0123456789",
                                   scopes={"open_finance": ["read:accounts"]})
    r = transport.call(TOKEN, json_body={"userId": "u", "clientId": narrow["client_id"],
                                         "clientSecret": "narrow-jobs-secret-0123456789"})
    provider_error(transport.call(op, path_params={"customerId": "1"}, headers=bearer(r.json["accessToken"])), 403)


# --- monthly report -------------------------------------------------------------------------------------------------
def test_monthly_report_without_connections_is_a_400(of):
    tok = token(of, "lonely")
    provider_error(of[0].call(MONTHLY, path_params={"userId": "lonely"}, headers=bearer(tok)), 400, NO_CONNECTIONS)


def test_monthly_report_is_404_first_then_200(of):
    transport, control, _ = of
    tok = with_data(of, "monthly-user")
    first = transport.call(MONTHLY, path_params={"userId": "monthly-user"}, headers=bearer(tok))
    provider_error(first, 404, NO_REPORT)
    second = transport.call(MONTHLY, path_params={"userId": "monthly-user"}, headers=bearer(tok))
    status_in(second, 200)
    response_schema_conformance(second)
    third = transport.call(MONTHLY, path_params={"userId": "monthly-user"}, headers=bearer(tok))
    assert third.json == second.json
    # a new month is a new report: 404 once more, then 200
    control.clock("advance", seconds=40 * 86400)
    tok = token(of, "monthly-user")   # tokens live 24 h (s.3)
    provider_error(transport.call(MONTHLY, path_params={"userId": "monthly-user"}, headers=bearer(tok)), 404)
    status_in(transport.call(MONTHLY, path_params={"userId": "monthly-user"}, headers=bearer(tok)), 200)


def test_monthly_report_of_another_user_is_refused(of):
    tok = with_data(of, "alice")
    with_data(of, "bob")
    for _ in range(2):
        provider_error(of[0].call(MONTHLY, path_params={"userId": "bob"}, headers=bearer(tok)), 400, NO_CONNECTIONS)


def _all(of, op: str, tok: str, query: dict | None = None) -> list:
    items, cursor = [], None
    while True:
        q = dict(query or {}, **({"nextPage": cursor} if cursor else {}))
        r = of[0].call(op, headers=bearer(tok), query=q)
        status_in(r, 200)
        items += r.json["items"]
        cursor = r.json.get("nextPage")
        if not cursor:
            return items


def test_monthly_report_totals_equal_the_sums_of_the_transactions_it_covers(of):
    """Recomputed from the data endpoints: last complete month, shekel checking accounts (s.6 consistency)."""
    transport = of[0]
    tok = with_data(of, "sums-user")
    transport.call(MONTHLY, path_params={"userId": "sums-user"}, headers=bearer(tok))
    report = transport.call(MONTHLY, path_params={"userId": "sums-user"}, headers=bearer(tok)).json
    accounts = _all(of, "open_finance.list_accounts", tok)
    checking = {a["id"] for a in accounts if a["accountType"] == "CHECKING" and a["currency"] == "ILS"}
    assert any(a["accountType"] == "CHECKING" and a["currency"] != "ILS" for a in accounts)   # an FX account
    txs = [t for t in _all(of, "open_finance.list_transactions", tok, {"dateFrom": "2025-03-01", "dateTo": "2025-03-31"})
           if t["accountId"] in checking]
    assert txs
    income = expense = salary = Decimal(0)
    for t in txs:
        value = Decimal(str(t["amount"]["chargedAmount"]["amount"]))
        key = (t["category"]["main"], t["category"]["sub"])
        if value > 0 and key in INCOME:
            income += value
            salary += value if key == ("SALARY", "SALARY_OTHER") else 0
        elif value < 0 and key not in OWN_TRANSFERS:
            expense -= value
    balances = report["openBankingReportBalances"]
    assert Decimal(str(balances["incomes"]["total"])) == income
    assert Decimal(str(balances["incomes"]["incomeFromSalary"])) == salary
    assert Decimal(str(balances["expenses"]["total"])) == expense
    # the guide customer's incidents of that month (IL.yaml distress: every kind in the last complete month)
    assert balances["nsf"] >= 1 and balances["accountForeclosure"] == 1 and balances["fallingBehindWarnings"] >= 1
    details = report["MonthlyReportGeneralDetails"]
    listed = {a["id"] for kind in ("checking", "savings", "loans") for a in details["accounts"][kind]}
    assert checking <= listed
    loans = details["loans"]
    assert Decimal(str(loans["totalLoansAmount"])) == sum(Decimal(str(v["amount"])) for v in loans["bankLoans"].values())
    assert loans["bankLoans"]


def test_financial_report_exercises_counts_fx_loans_and_securities(of):
    """The default contract-test customer now has what was constant before (issue 13)."""
    report = financial_report(of, with_data(of, "guide-user"))
    assert report["countAkam"] >= 2 and report["countForeclosure"] == 1 and report["countLoanOverDue"] >= 1
    assert report["countAlertNotice"] == 1 and report["countCancelled"] == 1
    assert len(report["checkingAccounts"]) == len(report["checkingAccountsILS"]) + 1
    assert {r["currency"] for r in report["checkingAccountsILS"]} == {"ILS"}
    fx = report["savingsAndSecurities"]["totalForeignCurrencyAmount"]
    assert fx and all(f["currency"] != "ILS" and f["amount"] > 0 for f in fx)
    fx_rows = [r for r in report["checkingAccounts"] if r["currency"] != "ILS"]
    assert sum(r["amount"] for r in fx_rows) == sum(f["amount"] for f in fx)
    assert report["loans"] and report["securities"]
