"""finX data products (finleap-products.md s.5-7, 9, 10) contract tests, by catalogue id: securities, contracts,
payment partners, categories, category tree, timeline, risk reports and standalone categorization. In-process by
default; over HTTP with ``sandbox check finleap --base-url http://127.0.0.1:8080/finleap``.

Every expected figure is recomputed here from /rest/transactions and /rest/accounts (what a client can see), never
from the code under test. Widget flows are completed through the control API or by plain form posts (``control``).
"""
from __future__ import annotations

import base64
import calendar
import re
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore
from sandbox.spec import operations

from .checks import not_a_server_error, provider_error, response_schema_conformance, status_in
from .plugin import frozen_transport

OP = {name: op["id"] for name, op in operations("finleap").items()}
CALLBACK = "https://my-app.example.com/callback"
CENT = Decimal("0.01")
pytestmark = pytest.mark.control   # every test completes a widget flow or reads the sandbox's own data


@pytest.fixture
def fx(contract_options):
    with frozen_transport(contract_options, "finleap",
                          lambda: create_app({"SEED": 21}, store=MemoryStore())) as (transport, control):
        yield Finx(transport, control, contract_options)


def money(x) -> Decimal:
    return Decimal(str(x)).quantize(CENT)


def nrich(result, status: int, code: int, field: str | None = None):
    provider_error(result, status)
    response_schema_conformance(result)
    assert result.json["error"]["code"] == code, result.json
    if field:
        assert field in result.json["error"].get("data", {}), result.json


class Finx:
    """A small finX client over the contract transport."""

    def __init__(self, transport, control, opts):
        self.t, self.control, self.opts = transport, control, opts

    def basic(self, **extra) -> dict:
        pair = f"{self.opts['client_id']}:{self.opts['client_secret']}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode(), **extra}

    def call(self, name, **kw):
        result = self.t.call(OP[name], **kw)
        not_a_server_error(result)
        return result

    def ok(self, name, status=200, **kw):
        r = self.call(name, **kw)
        status_in(r, status)
        if status != 204:
            response_schema_conformance(r)
        return r

    def tokens(self, code: str) -> dict:
        r = self.call("create_token", json_body={"grant_type": "authorization_code", "code": code},
                      headers=self.basic())
        status_in(r, 200)
        return r.json

    def connect(self, link_op="create_income_report_link", username="figo01", **body) -> tuple[str, dict]:
        """A flow completed through the control API: (flow id, Bearer headers)."""
        body.setdefault("redirect_uri", CALLBACK)
        link = self.call(link_op, json_body=body, headers=self.basic())
        status_in(link, 201)
        done = self.control.complete_flow(link.json["id"], "success", username=username)
        code = dict(parse_qsl(urlsplit(done["redirect_url"]).query))["code"]
        self.last_tokens = self.tokens(code)
        return link.json["id"], {"Authorization": "Bearer " + self.last_tokens["access_token"]}

    def depot(self) -> dict:
        """[AIS] depot path by plain form posts: /onetime/access, bank "Demobank - 90090042", demo/demo, every
        offered account (Depot included)."""
        link = self.call("create_onetime_access_link", json_body={"redirect_uri": CALLBACK}, headers=self.basic())
        status_in(link, 201)
        location, flow_id = link.json["location"], link.json["id"]
        path = "/" + location.split("://", 1)[1].split("/", 1)[1]
        html = self.t.send("GET", path, {}, None)[2].decode()
        for _ in range(8):
            step = re.search(r'name="step" value="([a-z]+)"', html).group(1)
            form = {"flow_id": flow_id, "step": step}
            if step == "bank":
                form["bank_id"] = "demobank"
            elif step == "login":
                form.update(username="demo", password="demo")
            elif step == "sca":
                form["sca_method"] = "Auth Meth by Phone"
            elif step == "otp":
                form["otp"] = "123456"
            elif step == "accounts":
                form["accounts"] = re.findall(r'name="accounts" value="([^"]+)"', html)
            status, headers, content, _ = self.t.send(
                "POST", path, {"Content-Type": "application/x-www-form-urlencoded"}, urlencode(form, doseq=True).encode())
            if status == 303:
                code = dict(parse_qsl(urlsplit(headers["Location"]).query))["code"]
                return {"Authorization": "Bearer " + self.tokens(code)["access_token"]}
            assert status == 200, content[:300]
            html = content.decode()
        raise AssertionError("widget did not finish")

    def transactions(self, headers, **query) -> list[dict]:
        r = self.ok("list_transactions", headers=headers, query={"count": "100000", "sort": "ASC", **query})
        return r.json["transactions"]

    def accounts(self, headers) -> list[dict]:
        return self.ok("list_accounts", headers=headers).json["accounts"]


def bucket(amounts: list[Decimal]) -> dict:
    total = sum(amounts, Decimal(0))
    return {"count": len(amounts), "total": total, "low": min(amounts), "high": max(amounts),
            "average": (total / len(amounts)).quantize(CENT, ROUND_HALF_UP)}


def as_decimal(row: dict) -> dict:
    return {k: (money(row[k]) if k != "count" else row[k]) for k in ("count", "total", "low", "high", "average")}


# --- payment partners and categories ----------------------------------------------------------------------------
def test_list_payment_partners_recomputed_from_transactions(fx):
    _, h = fx.connect()
    rows = fx.ok("list_payment_partners", headers=h).json
    assert rows and rows[0]["id"]            # [PFM] reads data[0].id: non-empty for the default persona
    expected = defaultdict(list)
    for t in fx.transactions(h):
        expected[(t["name"], t["iban"])].append(money(t["amount"]))
    got = {(r["name"], r["iban"]): as_decimal(r) for r in rows}
    assert got == {k: {**bucket(v), "total": money(bucket(v)["total"])} for k, v in expected.items()}
    assert [money(r["total"]) for r in rows] == sorted(money(r["total"]) for r in rows)          # asc by default
    desc = fx.ok("list_payment_partners", headers=h, query={"sort": "desc"}).json
    assert [r["id"] for r in desc] == [r["id"] for r in sorted(rows, key=lambda r: -r["total"])] or \
        [money(r["total"]) for r in desc] == sorted((money(r["total"]) for r in rows), reverse=True)
    # ids are stable per partner; the account alias gives the same partners for a one-account user
    account = fx.accounts(h)[0]["account_id"]
    alias = fx.ok("list_payment_partners", headers=h, path_params={"account_id": account}, alias=0).json
    assert {r["id"] for r in alias} == {r["id"] for r in rows}


def test_payment_partner_amount_bounds_both_sides(fx):
    _, h = fx.connect()
    amounts = [money(t["amount"]) for t in fx.transactions(h)]
    pivot = sorted(amounts)[len(amounts) // 2]
    below = fx.ok("list_payment_partners", headers=h, query={"amount_lt": str(pivot)}).json
    above = fx.ok("list_payment_partners", headers=h, query={"amount_gte": str(pivot)}).json
    assert sum(r["count"] for r in below) == sum(1 for a in amounts if a < pivot)
    assert sum(r["count"] for r in above) == sum(1 for a in amounts if a >= pivot)
    upto = fx.ok("list_categories", headers=h, query={"amount_lte": str(pivot)}).json
    assert sum(r["count"] for r in upto) == sum(1 for a in amounts if a <= pivot)


def test_list_categories_buckets_hrefs_and_language(fx):
    _, h = fx.connect()
    rows = fx.ok("list_categories", headers=h).json
    expected = defaultdict(list)
    for t in fx.transactions(h):
        expected[t["categories"][-1]["id"]].append(money(t["amount"]))
    assert {r["id"]: as_decimal(r) for r in rows} == \
        {k: {**bucket(v), "total": money(bucket(v)["total"])} for k, v in expected.items()}
    for row in rows[:4]:   # href lists exactly the bucket's transactions on /rest/transactions
        query = dict(parse_qsl(urlsplit(row["href"]).query))
        listed = fx.transactions(h, **query)
        assert len(listed) == row["count"] and money(sum(money(t["amount"]) for t in listed)) == money(row["total"])
    by_id = {r["id"]: r["name"] for r in rows}
    german = {r["id"]: r["name"] for r in fx.ok("list_categories", headers={**h, "Accept-Language": "de"}).json}
    english = {r["id"]: r["name"] for r in fx.ok("list_categories", headers={**h, "Accept-Language": "en-GB"}).json}
    assert english == by_id and set(german) == set(by_id)
    known = {2: ("Salary", "Gehalt"), 15: ("Rent", "Miete"), 16: ("Mortgage", "Hypothek"),
             18: ("Telecommunication", "Telekommunikation"), 31: ("Groceries", "Lebensmittel")}
    present = [i for i in known if i in by_id]
    assert present and all((by_id[i], german[i]) == known[i] for i in present)


def test_aggregation_period_filters_and_bad_values(fx):
    _, h = fx.connect()
    txns = fx.transactions(h)
    month = txns[-1]["booking_date"][:7]
    rows = fx.ok("list_categories", headers=h, query={"period": month}).json
    assert sum(r["count"] for r in rows) == sum(1 for t in txns if t["booking_date"][:7] == month)
    y, m = int(month[:4]), int(month[5:])
    q = f"{y}-Q{(m - 1) // 3 + 1}"
    in_q = [t for t in txns if t["booking_date"][:4] == str(y) and (int(t["booking_date"][5:7]) - 1) // 3 == (m - 1) // 3]
    assert sum(r["count"] for r in fx.ok("list_payment_partners", headers=h, query={"period": q}).json) == len(in_q)
    for query, field in [({"period": "2025-Q5"}, "period"), ({"period": "2025-W60"}, "period"),
                         ({"period": "2025-02-30"}, "period"), ({"since": "2025-13"}, "since"),
                         ({"amount_gte": "abc"}, "amount_gte"), ({"sort": "DESC"}, "sort"),
                         ({"since": "2025-06", "until": "2025-05"}, "since")]:
        nrich(fx.call("list_payment_partners", headers=h, query=query), 400, 1000, field)
        nrich(fx.call("list_categories", headers=h, query=query), 400, 1000, field)


# --- category tree ----------------------------------------------------------------------------------------------
def test_get_category_tree_basic_auth_and_language(fx):
    en = fx.ok("get_category_tree", headers=fx.basic()).json
    de = fx.ok("get_category_tree", headers=fx.basic(**{"Accept-Language": "de-DE,de;q=0.9"})).json
    fr = fx.ok("get_category_tree", headers=fx.basic(**{"Accept-Language": "fr"})).json   # unknown -> German (D-cat)

    def flat(nodes):
        return {n["id"]: n["name"] for node in nodes for n in [node, *flat_nodes(node["children"])]}

    def flat_nodes(nodes):
        return [x for n in nodes for x in [n, *flat_nodes(n["children"])]]

    assert set(flat(en)) == set(flat(de)) and {2, 15, 31, 42, 56} <= set(flat(en))
    assert flat(en)[2] == "Salary" and flat(de)[2] == "Gehalt" and flat(fr) == flat(de)
    nrich(fx.call("get_category_tree"), 401, 1001)
    nrich(fx.call("get_category_tree", headers={"Authorization": "Bearer abc"}), 401, 1001)


# --- timeline ---------------------------------------------------------------------------------------------------
def test_get_timeline_recomputed_from_transactions_and_balance(fx):
    _, h = fx.connect()
    body = fx.ok("get_timeline", headers=h).json
    accounts = fx.accounts(h)
    assert [a["account_id"] for a in body["accounts"]] == [a["account_id"] for a in accounts]
    txns = fx.transactions(h)
    current = sum(money(a["balance"]["balance"]) for a in accounts)
    points = body["data_points"]
    assert [p["period"] for p in points] == sorted(p["period"] for p in points)
    assert points[0]["period"] == txns[0]["booking_date"][:7]
    for p in points:
        mine = [money(t["amount"]) for t in txns if t["booking_date"][:7] == p["period"]]
        deposits, expenses = sum((a for a in mine if a > 0), Decimal(0)), sum((a for a in mine if a < 0), Decimal(0))
        later = sum((money(t["amount"]) for t in txns if t["booking_date"][:7] > p["period"]), Decimal(0))
        assert (money(p["deposits"]), money(p["expenses"]), money(p["cashflow"]), money(p["balance"])) == \
            (deposits, expenses, deposits + expenses, current - later), p
    # filters change the flows, never the balance
    income = next(t for t in txns if t["categories"][0]["id"] == 1 and t["amount"] > 0)["categories"][-1]["id"]
    filtered = fx.ok("get_timeline", headers=h, query={"categories": str(income)}).json["data_points"]
    assert [p["balance"] for p in filtered] == [p["balance"] for p in points]
    assert money(sum(money(p["cashflow"]) for p in filtered)) == \
        money(sum(money(t["amount"]) for t in txns if t["categories"][-1]["id"] == income))


@pytest.mark.parametrize("frequency,pattern", [("daily", r"^\d{4}-\d{2}-\d{2}$"), ("weekly", r"^\d{4}-W\d{2}$"),
                                               ("quarterly", r"^\d{4}-Q[1-4]$"), ("yearly", r"^\d{4}$")])
def test_get_timeline_frequencies(fx, frequency, pattern):
    _, h = fx.connect()
    txns = fx.transactions(h)
    since = txns[-1]["booking_date"][:7] + "-01"
    body = fx.ok("get_timeline", headers=h, query={"frequency": frequency, "since": since}).json
    assert body["data_points"] and all(re.match(pattern, p["period"]) for p in body["data_points"])
    assert money(sum(money(p["cashflow"]) for p in body["data_points"])) == \
        money(sum(money(t["amount"]) for t in txns if t["booking_date"] >= since))


def test_get_timeline_bad_values(fx):
    _, h = fx.connect()
    nrich(fx.call("get_timeline", headers=h, query={"frequency": "hourly"}), 400, 1000, "frequency")
    nrich(fx.call("get_timeline", headers=h, query={"since": "yesterday"}), 400, 1000, "since")
    nrich(fx.call("get_timeline", headers=h, query={"categories": "2,x"}), 400, 1000, "categories")
    # the sandbox's ten-year bound, both sides
    status_in(fx.call("get_timeline", headers=h, query={"since": "2020-01-01", "until": "2030-01-07",
                                                         "frequency": "yearly"}), 200)
    nrich(fx.call("get_timeline", headers=h, query={"since": "2020-01-01", "until": "2030-01-08"}), 400, 1000,
          "since")
    nrich(fx.call("get_timeline", headers=h, path_params={"access_id": "00000000-0000-4000-8000-000000000000"},
                  alias=0), 404, 1004)


# --- contracts --------------------------------------------------------------------------------------------------
def _months_later(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, min(d.day, calendar.monthrange(d.year + y, m + 1)[1]))


def _intervals_between(a: date, b: date, frequency: str) -> int | None:
    """How many whole ``frequency`` intervals lie between two bookings, within the recognition rule's +- 5 days
    (finleap-products.md s.6; months are calendar months, the day clamped), or None if the gap matches none."""
    if frequency == "weekly":
        fits = [n for n in range(1, 60) if abs((b - a).days - 7 * n) <= 5]
    else:
        months = {"monthly": 1, "quarterly": 3, "half-yearly": 6, "yearly": 12}[frequency]
        fits = [n for n in range(1, 30) if abs((b - _months_later(a, n * months)).days) <= 5]
    return min(fits, key=lambda n: abs((b - a).days - n * (7 if frequency == "weekly" else 30.44 * months)),
               default=None)


def test_list_get_delete_contract(fx):
    _, h = fx.connect()
    contracts = fx.ok("list_contracts", headers=h).json
    assert contracts, "[PFM] reads data[0].id: the default persona must have a contract"
    txns = {t["transaction_id"]: t for t in fx.transactions(h)}
    for c in contracts:   # every contract is made of real bookings with its partner on its account
        booked = [txns[i] for i in c["transaction_ids"]]
        assert len(booked) >= 3 and {t["name"] for t in booked} == {c["payment_partner"]["name"]}
        assert {t["account_id"] for t in booked} == {c["account_id"]}
        assert booked[-1]["booking_date"] == c["last_booked_on"] and money(booked[-1]["amount"]) == money(c["amount"])
        assert booked[0]["booking_date"] == c["first_booked_on"] and c["next_booking_on"] > c["last_booked_on"]
        days = [date.fromisoformat(b["booking_date"]) for b in booked]
        steps = [_intervals_between(a, b, c["frequency"]) for a, b in zip(days, days[1:])]
        assert all(steps) and min(steps) == 1, (c["frequency"], days)   # its rhythm, not a multiple of it
    assert any(c["frequency"] == "monthly" for c in contracts)
    first = contracts[0]
    assert fx.ok("get_contract", headers=h, path_params={"contract_id": first["id"]}).json == first
    r = fx.ok("delete_contract", 204, headers=h, path_params={"contract_id": first["id"]})
    assert r.content == b""
    nrich(fx.call("get_contract", headers=h, path_params={"contract_id": first["id"]}), 404, 1004)
    nrich(fx.call("delete_contract", headers=h, path_params={"contract_id": first["id"]}), 404, 1004)
    assert first["id"] not in {c["id"] for c in fx.ok("list_contracts", headers=h).json}


def test_list_contracts_paging_and_account_alias(fx):
    _, h = fx.connect()
    contracts = fx.ok("list_contracts", headers=h).json
    assert fx.ok("list_contracts", headers=h, query={"count": "1", "offset": "1"}).json == contracts[1:2]
    assert fx.ok("list_contracts", headers=h, query={"offset": str(len(contracts))}).json == []
    account = fx.accounts(h)[0]["account_id"]
    alias = fx.ok("list_contracts", headers=h, path_params={"account_id": account}, alias=0).json
    assert alias == [c for c in contracts if c["account_id"] == account]
    nrich(fx.call("list_contracts", headers=h, query={"count": "ten"}), 400, 1000, "count")
    nrich(fx.call("list_contracts", headers=h, path_params={"account_id": "A1.1"}, alias=0), 404, 1004)


def test_contracts_names_follow_accept_language(fx):
    _, h = fx.connect()
    en = fx.ok("list_contracts", headers=h).json
    de = fx.ok("list_contracts", headers={**h, "Accept-Language": "de"}).json
    assert [c["id"] for c in en] == [c["id"] for c in de]
    names = {2: ("Salary", "Gehalt"), 3: ("Pension", "Rente"), 15: ("Rent", "Miete"), 16: ("Mortgage", "Hypothek"),
             17: ("Utilities", "Nebenkosten"), 18: ("Telecommunication", "Telekommunikation"),
             19: ("Insurance", "Versicherungen"), 42: ("Subscriptions", "Abonnements")}
    pairs = [(a["category"], b["category"]) for a, b in zip(en, de) if a["category"]["id"] in names]
    assert pairs and all((a["name"], b["name"]) == names[a["id"]] for a, b in pairs)


# --- securities -------------------------------------------------------------------------------------------------
def test_list_securities_of_the_demobank_depot(fx):
    h = fx.depot()
    securities = fx.ok("list_securities", headers=h).json["securities"]
    assert securities, "Demobank - 90090042 with demo/demo offers a Depot (AIS description)"
    for s in securities:
        assert money(Decimal(str(s["quantity"])) * Decimal(str(s["price"]))) == money(s["amount"])
    depots = [a for a in fx.accounts(h) if a["type"] == "Depot"]
    assert len(depots) == 1 and {s["account_id"] for s in securities} == {depots[0]["account_id"]}
    balance = fx.ok("get_account_balance", headers=h, path_params={"account_id": depots[0]["account_id"]}).json
    assert money(sum(money(s["amount"]) for s in securities)) == money(balance["balance"])
    alias = fx.ok("list_securities", headers=h, path_params={"account_id": depots[0]["account_id"]}, alias=0).json
    assert alias["securities"] == securities
    others = [a for a in fx.accounts(h) if a["type"] != "Depot"]
    if others:
        assert fx.ok("list_securities", headers=h, path_params={"account_id": others[0]["account_id"]},
                     alias=0).json == {"securities": []}
    assert fx.ok("list_securities", headers=h, query={"count": "1"}).json["securities"] == securities[:1]
    assert fx.ok("list_securities", headers=h, query={"since": securities[0]["security_id"]}).json[
        "securities"] == securities[1:]


def test_list_securities_without_a_depot_and_bad_input(fx):
    _, h = fx.connect()
    assert fx.ok("list_securities", headers=h).json == {"securities": []}
    nrich(fx.call("list_securities", headers=h, query={"offset": "-1"}), 400, 1000, "offset")
    nrich(fx.call("list_securities", headers=h, path_params={"account_id": "A1.1"}, alias=0), 404, 1004)
    nrich(fx.call("list_securities"), 401, 1001)


# --- risk reports -----------------------------------------------------------------------------------------------
def _window(flow_day: date, period: int) -> tuple[str, str]:
    first = flow_day.replace(day=1)
    y, m = divmod(first.month - 1 - period, 12)
    return date(first.year + y, m + 1, 1).isoformat(), (first - timedelta(days=1)).isoformat()


def _sandbox_day(fx) -> date:
    """The sandbox clock's day (UTC; frozen by the fixture, so the day a flow completed just now was created on).
    Not the newest booking's day: on the first days of a month the account may have no booking yet this month."""
    return date.fromisoformat(fx.control.clock("advance", seconds=0)["now"][:10])


def test_get_risk_report_recomputed_from_transactions(fx):
    flow_id, h = fx.connect("create_onetime_risk_report_link", name="Hans-Peter Meier", reporting_period="6")
    report = fx.ok("get_risk_report", headers=h, path_params={"id": flow_id}).json
    assert report["id"] == flow_id and report["period"] == 6
    txns = fx.transactions(h)
    accounts = fx.accounts(h)
    # the window: the 6 full months before the flow's day
    since, until = _window(_sandbox_day(fx), 6)
    window = [t for t in txns if since <= t["booking_date"] <= until]
    income = [money(t["amount"]) for t in window if t["categories"][0]["id"] == 1 and money(t["amount"]) > 0]
    transfers = {80, 81, 82}
    expenses = [-money(t["amount"]) for t in window
                if money(t["amount"]) < 0 and t["categories"][-1]["id"] not in transfers]
    assert report["income"]["summary"]["count"] == len(income)
    assert money(report["income"]["summary"]["total"]) == money(sum(income, Decimal(0)))
    assert money(report["expenses"]["summary"]["total"]) == money(sum(expenses, Decimal(0)))
    for section in ("income", "expenses"):
        parts = report[section]
        assert parts["regular"]["summary"]["count"] + parts["variable"]["summary"]["count"] == \
            parts["summary"]["count"]
        assert money(parts["summary"]["average"]) == \
            (Decimal(str(parts["summary"]["total"])) / 6).quantize(CENT, ROUND_HALF_UP)
    streams = report["income"]["regular"]["streams"] + report["income"]["variable"]["streams"]
    assert {s["category"]["id"] for s in streams} == {t["categories"][-1]["id"] for t in window
                                                      if t["categories"][0]["id"] == 1 and t["amount"] > 0}
    assert sum(s["count"] for s in streams) == len(income)
    assert report["risk_indicators"] == {k: {"count": 0, "total": 0.0} for k in
                                         ("returned_direct_debits", "debt_collection", "gambling", "garnishments")}
    (acc,) = report["accounts"]
    assert acc["is_main_account"] and acc["iban"] == accounts[0]["iban"]
    assert acc["verification_result"]["provided"] == {"name": "Hans-Peter Meier"}
    assert acc["last_transaction_on"] == max(t["booking_date"] for t in txns)
    assert acc["balance"]["days_in_overdraft"] == 0


def test_get_risk_report_of_the_risky_persona(fx):
    flow_id, h = fx.connect("create_onetime_risk_report_link", username="figo01+risky")
    report = fx.ok("get_risk_report", headers=h, path_params={"id": flow_id}).json
    indicators = report["risk_indicators"]
    for name in ("returned_direct_debits", "debt_collection", "gambling", "garnishments"):
        assert indicators[name]["count"] > 0 and indicators[name]["total"] > 0, indicators
    assert report["accounts"][0]["balance"]["days_in_overdraft"] > 0
    # the indicators are bookings /rest/transactions serves: e.g. the returned direct debits
    txns = fx.transactions(h)
    since, until = _window(_sandbox_day(fx), report["period"])
    returned = [t for t in txns if since <= t["booking_date"] <= until and "RUECKLASTSCHRIFT" in (t["purpose"] or "")
                and t["amount"] > 0]
    assert indicators["returned_direct_debits"]["count"] == len(returned)


def _income_count(txns: list[dict], since: str, until: str) -> int:
    """Income bookings in [since, until] as the risk report counts them: credits in the income category group."""
    return sum(1 for t in txns if since <= t["booking_date"] <= until and t["categories"][0]["id"] == 1
               and money(t["amount"]) > 0)


def test_ongoing_risk_report_is_recomputed_on_read_and_one_time_is_not(fx):
    """s.9 (inferred): a one-time report is computed over the months before its flow; an ongoing one over the
    months before today, on every read. The clock moves through the control API only; each expected count is
    computed from the bookings /rest/transactions serves, for the window of that day."""
    once_id, once_h = fx.connect("create_onetime_risk_report_link", reporting_period=4)
    once_refresh = fx.last_tokens["refresh_token"]
    body = {"redirect_uri": CALLBACK, "user_id": "risk-user-1@example.com", "reporting_period": 4}
    link = fx.call("create_ongoing_risk_report_link", json_body=body, headers=fx.basic())
    status_in(link, 201)
    done = fx.control.complete_flow(link.json["id"], "success")
    tokens = fx.tokens(dict(parse_qsl(urlsplit(done["redirect_url"]).query))["code"])
    ongoing_h = {"Authorization": "Bearer " + tokens["access_token"]}
    once = fx.ok("get_risk_report", headers=once_h, path_params={"id": once_id}).json
    ongoing = fx.ok("get_risk_report", headers=ongoing_h, path_params={"id": link.json["id"]}).json
    assert ongoing["period"] == once["period"] == 4
    assert len(ongoing["accounts"]) == len(fx.accounts(ongoing_h))
    txns = fx.transactions(ongoing_h)
    today = _sandbox_day(fx)
    assert ongoing["income"]["summary"]["count"] == _income_count(txns, *_window(today, 4)) > 0

    refresh = {"ongoing": tokens["refresh_token"], "once": once_refresh}

    def refreshed(which: str) -> dict:
        """A fresh access token for the flow (refresh tokens rotate: the answer's replaces the one used)."""
        r = fx.call("create_token", json_body={"grant_type": "refresh_token", "refresh_token": refresh[which]},
                    headers=fx.basic())
        status_in(r, 200)
        refresh[which] = r.json.get("refresh_token", refresh[which])
        return {"Authorization": "Bearer " + r.json["access_token"]}

    # two new months, no new bookings (no sync): the window moves by two months, half of it past the last booking
    later_day = date.fromisoformat(fx.control.clock("advance", seconds=62 * 86400)["now"][:10])
    h = refreshed("ongoing")
    later = fx.ok("get_risk_report", headers=h, path_params={"id": link.json["id"]}).json
    assert fx.transactions(h) == txns
    assert later["income"]["summary"]["count"] == _income_count(txns, *_window(later_day, 4))
    assert later["accounts"][0]["last_transaction_on"] == ongoing["accounts"][0]["last_transaction_on"]
    once_later = fx.ok("get_risk_report", headers=refreshed("once"), path_params={"id": once_id}).json
    # seven months on (refreshing within the 90-day refresh-token life), the whole window is past the last booking
    for _ in range(2):
        fx.control.clock("advance", seconds=80 * 86400)
        refreshed("once"), refreshed("ongoing")
    gone = fx.ok("get_risk_report", headers=refreshed("ongoing"), path_params={"id": link.json["id"]}).json
    assert gone["income"]["summary"]["count"] == gone["expenses"]["summary"]["count"] == 0
    assert gone["accounts"][0]["last_transaction_on"] == ongoing["accounts"][0]["last_transaction_on"]
    assert once_later == once
    assert fx.ok("get_risk_report", headers=refreshed("once"), path_params={"id": once_id}).json == once


def test_get_risk_report_refusals(fx):
    flow_id, h = fx.connect("create_onetime_risk_report_link")
    other_id, other_h = fx.connect("create_onetime_risk_report_link")
    nrich(fx.call("get_risk_report", headers=other_h, path_params={"id": flow_id}), 403, 1002)
    nrich(fx.call("get_risk_report", headers=h, path_params={"id": "00000000-0000-4000-8000-000000000000"}),
          404, 1004)
    income_id, income_h = fx.connect()
    nrich(fx.call("get_risk_report", headers=income_h, path_params={"id": income_id}), 404, 1004)
    nrich(fx.call("get_risk_report", path_params={"id": flow_id}), 401, 1001)


# --- standalone categorization ----------------------------------------------------------------------------------
CAT_SAMPLE = [
    {"id": "T855975904752173059.55", "amount": -49.99, "currency": "EUR", "name": "Telekom Deutschland GmbH",
     "purpose": "Rechnung 05/2025", "booked": True, "booked_at": "2025-05-14T00:00:00.000Z",
     "iban": "DE11120300003932435128", "bic": "BYLADEM1001", "creditor_id": "DE49ZZZ00000022466",
     "mandate_reference": "KD-1", "end_to_end_reference": "E2E-1", "sepa_remittance_info": "Rechnung 05/2025"},
    {"id": "T2", "amount": "2500.00", "name": "Acme GmbH", "purpose": "LOHN / GEHALT 05/2025", "booked": "true"},
    {"id": "T3", "amount": -23.4, "name": "LOTTO Hamburg", "purpose": "Tippschein"},
    {"id": "T4", "amount": 12.0, "name": "Max Muster", "purpose": "Pizza"},
    {"id": "T5", "amount": -61.2, "name": "REWE Markt GmbH", "purpose": "Einkauf"},
]


def test_categorize_transactions(fx):
    r = fx.ok("categorize_transactions", headers=fx.basic(), json_body=CAT_SAMPLE)
    assert [t["id"] for t in r.json] == [t["id"] for t in CAT_SAMPLE]
    assert all({k: v for k, v in out.items() if k != "categories"} == given for out, given in zip(r.json, CAT_SAMPLE))
    leaf = [t["categories"][-1]["id"] if t["categories"] else None for t in r.json]
    assert leaf == [18, 2, None, 8, 31]       # LOTTO is not OTTO: keywords match at a word start
    assert r.json[0]["categories"][0]["parent_id"] is None and r.json[4]["categories"][-1]["name"] == "Groceries"
    de = fx.ok("categorize_transactions", headers=fx.basic(**{"Accept-Language": "de"}), json_body=CAT_SAMPLE)
    assert de.json[4]["categories"][-1]["name"] == "Lebensmittel"
    assert fx.ok("categorize_transactions", headers=fx.basic(), json_body=[]).json == []


def test_categorize_transactions_bad_input(fx):
    b = fx.basic()
    nrich(fx.call("categorize_transactions", headers=b, json_body=[{"id": "T1"}]), 400, 1000, "0.amount")
    nrich(fx.call("categorize_transactions", headers=b, json_body=[{"id": "T1", "amount": "12a"}]), 400, 1000,
          "0.amount")
    nrich(fx.call("categorize_transactions", headers=b, json_body=[{"id": "T1", "amount": 1, "colour": "x"}]),
          400, 1000, "0.colour")
    nrich(fx.call("categorize_transactions", headers=b, json_body={"id": "T1", "amount": 1}), 400, 1000)
    many = [{"id": f"T{i}", "amount": -1} for i in range(1001)]
    nrich(fx.call("categorize_transactions", headers=b, json_body=many), 400, 1000)
    assert fx.ok("categorize_transactions", headers=b, json_body=many[:1000]).json[999]["id"] == "T999"
    nrich(fx.call("categorize_transactions", json_body=[]), 401, 1001)


def test_categorize_needs_the_categorization_product(fx):
    """s.2 (inferred): a client whose product list lacks categorization gets 403 code 1002."""
    only = fx.control.create_client(client_id="no-categorize", client_secret="no-categorize-secret-0123456789",
                                    scopes={"finleap": ["product:payment"]})
    pair = f"{only['client_id']}:no-categorize-secret-0123456789"
    h = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    nrich(fx.call("categorize_transactions", headers=h, json_body=CAT_SAMPLE), 403, 1002)
    status_in(fx.call("categorize_transactions", headers=fx.basic(), json_body=CAT_SAMPLE), 200)
