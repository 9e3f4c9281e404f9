"""Deliberate bugs that once passed the whole suite, each pinned by a test that fails when it comes back (issue 7).

a. An Open Finance token that dies after 86.4 s while advertising ``expiresIn: 86400`` (seconds mistaken for
   milliseconds): a token lives exactly ``expiresIn`` seconds on the sandbox clock, for the default and a custom
   SANDBOX_OPEN_FINANCE_TOKEN_TTL, alive one second before and dead at the boundary.
b. finleap accesses and syncs readable across tenants and across users of one tenant.
c. Rent dropped from the Open Finance report's expenses: the report's income and expense figures are recomputed
   from the connection's ledger (the stored transactions), not with the report code.
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore
from sandbox.ledger.models import CATEGORY_KINDS

T0 = "2025-04-23T09:30:00Z"
OF = "/open-finance"
CALLBACK = "https://my-app.example.com/callback"


def _app(**config):
    return create_app({"SEED": 7, **config}, store=MemoryStore(),
                      system_clock=lambda: datetime(2025, 4, 23, 9, 30, tzinfo=timezone.utc))


def _basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _control(http, path: str, body: dict | None = None, status: int = 200) -> dict:
    r = http.post(f"/_sandbox/{path}", json=body or {})
    assert r.status_code == status, (path, r.status_code, r.get_data(as_text=True))
    return r.get_json()


# --- a. Open Finance token lifetime -----------------------------------------------------------------------------

def _of_token(http, user: str = "ttl-user@example.com") -> dict:
    r = http.post(f"{OF}/oauth/token", json={"userId": user, "clientId": "sandbox-client",
                                             "clientSecret": "sandbox-secret"})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def _token_works(http, token: str) -> bool:
    """A Bearer-protected call: 200 with a live token, 401 with a dead one (nothing in between)."""
    r = http.post(f"{OF}/financial-report/043510023", headers=_bearer(token))
    assert r.status_code in (200, 401), r.get_data(as_text=True)
    return r.status_code == 200


@pytest.mark.parametrize("config,env,ttl", [
    ({}, None, 86400),                                   # the documented default (open_finance.md s.3)
    ({"OPEN_FINANCE_TOKEN_TTL": 600}, None, 600),        # explicit config
    ({}, "3600", 3600),                                  # SANDBOX_OPEN_FINANCE_TOKEN_TTL from the environment
])
def test_open_finance_token_lives_exactly_expires_in_seconds(monkeypatch, config, env, ttl):
    if env is not None:
        monkeypatch.setenv("SANDBOX_OPEN_FINANCE_TOKEN_TTL", env)
    http = _app(**config).test_client()
    _control(http, "clock/freeze", {"at": T0})
    issued = _of_token(http)
    assert issued["expiresIn"] == ttl and issued["tokenType"] == "Bearer"
    token = issued["accessToken"]
    assert _token_works(http, token)
    _control(http, "clock/advance", {"seconds": 86.4})          # the milliseconds mistake would end here
    assert _token_works(http, token)
    _control(http, "clock/advance", {"seconds": ttl - 1 - 86.4})   # T0 + expiresIn - 1 s: still alive
    assert _token_works(http, token)
    _control(http, "clock/advance", {"seconds": 1})             # T0 + expiresIn: dead
    assert not _token_works(http, token)
    assert _token_works(http, _of_token(http)["accessToken"])   # a new token works again


def test_open_finance_token_expiry_follows_the_tenants_own_clock():
    """The lifetime is counted on the sandbox clock of the token's tenant, not on the wall clock."""
    http = _app().test_client()
    _control(http, "clock/freeze", {"at": T0, "tenant": "sandbox-client"})
    token = _of_token(http)["accessToken"]
    _control(http, "clock/advance", {"seconds": 86399})           # the global clock moves, the tenant's does not
    assert _token_works(http, token)
    _control(http, "clock/advance", {"seconds": 86399, "tenant": "sandbox-client"})
    assert _token_works(http, token)
    _control(http, "clock/advance", {"seconds": 1, "tenant": "sandbox-client"})
    assert not _token_works(http, token)


# --- b. finleap accesses and syncs stay with their user and tenant ----------------------------------------------

class FinxUser:
    """One end user of a finX client: a completed income-report flow, its tokens, access, account and a sync."""

    def __init__(self, http, client_id: str = "sandbox-client", secret: str = "sandbox-secret"):
        self.http, self.basic = http, _basic(client_id, secret)
        link = http.post("/finleap/onetime/income-report", json={"redirect_uri": CALLBACK}, headers=self.basic)
        assert link.status_code == 201, link.get_data(as_text=True)
        self.flow = link.get_json()["id"]
        done = _control(http, f"flows/{self.flow}/complete", {"outcome": "success"})
        code = parse_qs(urlsplit(done["redirect_url"]).query)["code"][0]
        r = http.post("/finleap/auth/token", headers=self.basic,
                      json={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK})
        assert r.status_code == 200, r.get_data(as_text=True)
        self.token = r.get_json()["access_token"]
        self.access = self.get("/rest/accesses").get_json()["accesses"][0]["id"]
        r = self.post(f"/rest/accesses/{self.access}/syncs", {})
        assert r.status_code == 201, r.get_data(as_text=True)
        self.sync = r.get_json()["id"]

    def get(self, path: str):
        return self.http.get("/finleap" + path, headers=_bearer(self.token))

    def post(self, path: str, body: dict):
        return self.http.post("/finleap" + path, json=body, headers=_bearer(self.token))


@pytest.fixture
def finx_users():
    """Owner A and user B of the default tenant, C of another client (tenant)."""
    http = _app().test_client()
    _control(http, "clock/freeze", {"at": T0})
    _control(http, "clients", {"client_id": "other-client", "client_secret": "other-secret-0123456789"}, 201)
    return http, FinxUser(http), FinxUser(http), FinxUser(http, "other-client", "other-secret-0123456789")


def test_each_user_reaches_its_own_access_and_sync(finx_users):
    _, *users = finx_users
    for user in users:
        assert user.get(f"/rest/accesses/{user.access}").status_code == 200
        assert user.get(f"/rest/accesses/{user.access}/syncs/{user.sync}").status_code == 200
        assert [a["id"] for a in user.get("/rest/accesses").get_json()["accesses"]] == [user.access]


@pytest.mark.parametrize("intruder", ["same tenant", "other tenant"])
def test_finleap_accesses_and_syncs_are_not_readable_by_another_user_or_tenant(finx_users, intruder):
    http, owner, b, c = finx_users
    other = b if intruder == "same tenant" else c
    assert owner.access != other.access and owner.sync != other.sync
    # finleap.md s.6: an id the token's user does not own is "not found" (never its data)
    for path in (f"/rest/accesses/{owner.access}", f"/rest/accesses/{owner.access}/syncs/{owner.sync}",
                 f"/rest/accesses/{other.access}/syncs/{owner.sync}"):   # own access, foreign sync id
        r = other.get(path)
        assert r.status_code == 404 and r.get_json()["error"]["code"] == 1004, (path, r.get_data(as_text=True))
    assert owner.access not in {a["id"] for a in other.get("/rest/accesses").get_json()["accesses"]}
    # nor can it start a sync on the owner's access
    r = other.post(f"/rest/accesses/{owner.access}/syncs", {})
    assert r.status_code == 404, r.get_data(as_text=True)
    # and the owner's view is unchanged: same access, its own sync still current
    assert owner.get(f"/rest/accesses/{owner.access}").status_code == 200
    jobs = http.get("/_sandbox/jobs").get_json()["jobs"]
    assert sum(1 for j in jobs if j.get("data", {}).get("access_id") == owner.access) == 1


# --- c. the Open Finance report's income and expenses, recomputed from the ledger --------------------------------

# Money moved between the user's own accounts (to savings, buying securities) is neither income nor expense
# (open_finance.md s.5: expenses are what leaves the household). Every other debit of a checking account is one.
OWN_ACCOUNT_MOVES = {"savings_transfer", "securities_purchase"}


def _cents(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _done_report(http, token: str, customer: str) -> dict:
    job = http.post(f"{OF}/financial-report/{customer}", headers=_bearer(token)).get_json()["jobId"]
    for _ in range(3):
        body = http.get(f"{OF}/financial-report/{job}", headers=_bearer(token)).get_json()
        if body["status"] == "DONE":
            return body["financialReport"]
    raise AssertionError(body)


def _checking_bookings(sandbox, tenant: str) -> list[dict]:
    """Every booking of the tenant's one stored connection ledger's checking accounts (the raw stored JSON)."""
    ledgers = [value for _, value in sandbox.store.list(tenant, "open_finance.ledgers")]
    assert len(ledgers) == 1, len(ledgers)
    return [t for a in ledgers[0]["accounts"] if a["kind"] == "checking" for t in a["transactions"]]


@pytest.mark.parametrize("user,customer", [("dana@example.com", "john"), ("eli@example.com", "043510023")])
def test_open_finance_report_income_and_expenses_equal_the_ledgers_transactions(user, customer):
    app = _app()
    http = app.test_client()
    _control(http, "clock/freeze", {"at": T0})
    report = _done_report(http, _of_token(http, user)["accessToken"], customer)
    bookings = _checking_bookings(app.extensions["sandbox"], "sandbox-client")
    assert any(t["category"] in ("rent", "mortgage") for t in bookings)   # the household pays for housing
    income: dict[str, Decimal] = {}
    expense: dict[str, Decimal] = {}
    for t in bookings:
        month, amount = t["booking_date"][:7], Decimal(str(t["amount"]))
        if amount > 0 and CATEGORY_KINDS[t["category"]] == "income":
            income[month] = income.get(month, Decimal(0)) + amount
        elif amount < 0 and t["category"] not in OWN_ACCOUNT_MOVES:
            expense[month] = expense.get(month, Decimal(0)) - amount
    rows = report["yearMonthBalance"]
    assert rows and report["currentDate"] == "2025-04-23"
    for row in rows:
        m = row["yearMonth"]
        assert Decimal(str(row["sumIncome"])) == _cents(income.get(m, Decimal(0))), m
        assert Decimal(str(row["sumExpense"])) == _cents(expense.get(m, Decimal(0))), m
    # the per-month averages run over the complete months (the current one is still open)
    full = [r["yearMonth"] for r in rows if r["yearMonth"] != "2025-04"]
    avg_in = _cents(sum((income.get(m, Decimal(0)) for m in full), Decimal(0)) / len(full))
    avg_out = _cents(sum((expense.get(m, Decimal(0)) for m in full), Decimal(0)) / len(full))
    tio = report["totalIncomesOutcome"]
    assert Decimal(str(tio["sumIncomePerMonth"])) == avg_in
    assert Decimal(str(tio["sumExpansesPerMonth"])) == avg_out
    assert Decimal(str(tio["sumNetIncomePerMonth"])) == avg_in - avg_out


def test_rent_is_counted_in_the_month_it_is_paid():
    """The boundary the recomputation guards, stated directly: every month's expense is at least its rent."""
    app = _app()
    http = app.test_client()
    _control(http, "clock/freeze", {"at": T0})
    report = _done_report(http, _of_token(http, "fay@example.com")["accessToken"], "john")
    rent: dict[str, Decimal] = {}
    for t in _checking_bookings(app.extensions["sandbox"], "sandbox-client"):
        if t["category"] == "rent":
            rent[t["booking_date"][:7]] = rent.get(t["booking_date"][:7], Decimal(0)) - Decimal(str(t["amount"]))
    rows = {r["yearMonth"]: r for r in report["yearMonthBalance"]}
    assert rent and set(rent) & set(rows)
    for month, paid in rent.items():
        if month in rows:
            assert Decimal(str(rows[month]["sumExpense"])) >= paid > 0, month
