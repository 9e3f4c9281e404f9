"""finX data products (finleap-products.md s.5-7, 9, 10): the category table, categorize rules, aggregation
parameters, risk indicators and the figo01+risky persona, risk-report balance facts. Expected values are computed
here by hand or from the raw ledger, never from the functions under test."""
from datetime import date
from decimal import Decimal

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from sandbox.core.errors import ValidationFailed
from sandbox.ledger import generate_ledger
from sandbox.providers.finleap import data, risk
from sandbox.providers.finleap.insights import (
    _parse_bound,
    _parse_period,
    bucket,
    categorize_one,
    language,
    period_label,
)

TODAY = date(2025, 6, 15)


# ------------------------------------------------------------------------------------------ category table

def test_fixture_table_is_the_service_table():
    """One taxonomy (s.9 "keep it in one file"): ids, parents, kinds and English names equal data.CATEGORIES."""
    table = risk.category_table()
    assert set(table) == set(data.CATEGORIES)
    for cid, (name, parent, kind) in data.CATEGORIES.items():
        assert (table[cid]["name"]["en"], table[cid]["parent_id"], table[cid]["kind"]) == (name, parent, kind)
        assert table[cid]["name"]["de"]
    assert {c: table[c]["name"]["en"] for c in (2, 15, 31, 42, 56)} == {
        2: "Salary", 15: "Rent", 31: "Groceries", 42: "Subscriptions", 56: "Online-Shopping"}   # documented ids


def test_localised_path_is_general_to_specific():
    assert risk.localised_path(31, "de") == [{"id": 30, "parent_id": None, "name": "Alltag"},
                                             {"id": 31, "parent_id": 30, "name": "Lebensmittel"}]
    assert [c["name"] for c in risk.localised_path(31, "en")] == ["Daily life", "Groceries"]


def _request(header: str | None) -> Request:
    headers = {"Accept-Language": header} if header is not None else {}
    return Request(EnvironBuilder(headers=headers).get_environ())


@pytest.mark.parametrize("header,expected", [
    (None, "en"), ("", "en"), ("de", "de"), ("de-DE,de;q=0.9,en;q=0.8", "de"), ("en-US", "en"),
    ("fr", "de"), ("fr;q=1.0, en;q=0.5", "en"), ("*", "en"), ("es, de;q=0.2", "de")])
def test_language_english_by_default_german_otherwise(header, expected):
    assert language(_request(header)) == expected


# ------------------------------------------------------------------------------------------ categorize (s.10)

@pytest.mark.parametrize("name,purpose,amount,expected", [
    ("Arbeitgeber AG", "LOHN 05/2025", "2500", 2), ("ACME", "GEHALT MAI", "3100.50", 2),
    ("ACME", "GEHALT MAI", "-10", None),                      # a debit mentioning GEHALT is no salary
    ("Hausverwaltung", "MIETE JUNI", "-800", 15), ("HUK-COBURG", "Beitrag", "-90", 19),
    ("Allianz Versicherungs-AG", "", "-20", 19), ("Telekom Deutschland GmbH", "", "-40", 18),
    ("1u1 Telecom GmbH", "", "-30", 18), ("O2 Germany", "", "-15", 18), ("Spotify AB", "", "-9.99", 42),
    ("NETFLIX.COM", "", "-17.99", 42), ("REWE Markt GmbH", "", "-50", 31), ("BIO COMPANY", "", "-20", 31),
    ("Hamburger Hochbahn AG", "", "-3.5", 35), ("BVG", "", "-3", 35), ("AMAZON EU S.A R.L.", "", "-25", 56),
    ("Zalando SE", "", "-60", 56), ("Geldautomat 1234", "", "-100", 62), ("", "BARGELD AUSZAHLUNG", "-50", 62),
    ("LOTTO Hamburg", "", "-10", None),                       # "OTTO" only at a word start
    ("Max Muster", "Pizza", "12", 8), ("Max Muster", "Pizza", "-12", None),
    ("REWE", "MIETE", "-5", 31),                               # name is checked before purpose
])
def test_categorize_rules(name, purpose, amount, expected):
    assert categorize_one(name, purpose, Decimal(amount)) == expected


# ------------------------------------------------------------------------------------------ aggregation params

@pytest.mark.parametrize("value,expected", [
    ("2024", (date(2024, 1, 1), date(2024, 12, 31))), ("2024-02", (date(2024, 2, 1), date(2024, 2, 29))),
    ("2025-02", (date(2025, 2, 1), date(2025, 2, 28))), ("2025-Q4", (date(2025, 10, 1), date(2025, 12, 31))),
    ("2025-Q1", (date(2025, 1, 1), date(2025, 3, 31))), ("2025-W01", (date(2024, 12, 30), date(2025, 1, 5))),
    ("2020-W53", (date(2020, 12, 28), date(2021, 1, 3))), ("2025-06-15", (date(2025, 6, 15), date(2025, 6, 15)))])
def test_period_formats(value, expected):
    assert _parse_period(value) == expected


@pytest.mark.parametrize("value", ["2025-W53", "2025-W00", "2025-13", "2025-02-29", "2025-Q0", "25", "2025-6", ""])
def test_bad_periods_name_the_parameter(value):
    with pytest.raises(ValidationFailed) as err:
        _parse_period(value)
    assert err.value.errors[0]["field"] == "period"


def test_since_until_bounds():
    assert _parse_bound("2025-02", "until", True) == date(2025, 2, 28)
    assert _parse_bound("2025", "since", False) == date(2025, 1, 1)
    with pytest.raises(ValidationFailed):
        _parse_bound("2025-02-30", "since", False)


def test_period_labels():
    d = date(2024, 12, 30)   # ISO week 1 of 2025, quarter 4 of 2024
    assert [period_label(d, f) for f in ("daily", "weekly", "monthly", "quarterly", "yearly")] == \
        ["2024-12-30", "2025-W01", "2024-12", "2024-Q4", "2024"]


def test_bucket_uses_single_amounts():
    assert bucket([Decimal("-10.00"), Decimal("5.00"), Decimal("-0.01")]) == {
        "count": 3, "total": -5.01, "low": -10.0, "high": 5.0, "average": -1.67}


# ------------------------------------------------------------------------------------------ risk (s.9, s.11)

def _rendered(ledger, kind="checking"):
    account = next(a for a in ledger.accounts if a.kind == kind)
    return account, [data.render_transaction(t, "A1.1", "flow") for t in account.transactions]


def test_indicators_are_zero_for_the_default_persona_and_set_for_the_risky_one():
    plain = generate_ledger(21, "flow-x", TODAY, market="DE", months=13)
    risky = risk.risky_ledger(plain)
    since, until = date(2024, 6, 1), date(2025, 5, 31)
    _, plain_txns = _rendered(plain)
    assert all(v == {"count": 0, "total": 0.0} for v in risk.risk_indicators(plain_txns, since, until).values())
    account, txns = _rendered(risky)
    found = risk.risk_indicators(txns, since, until)
    # expected from the raw ledger: the bookings risky_ledger adds, counted by their texts
    window = [t for t in account.transactions if since <= t.booking_date <= until]
    returned = [t for t in window if t.description.startswith("RUECKLASTSCHRIFT")]
    gambling = [t for t in window if t.counterparty in risk.GAMBLING]
    collection = [t for t in window if t.counterparty == risk.COLLECTOR]
    garnish = [t for t in window if t.description.startswith("PFAENDUNG")]
    assert len(returned) == 12 and len(collection) == 6 and len(garnish) == 4 and len(gambling) >= 24
    for key, rows in [("returned_direct_debits", returned), ("gambling", gambling),
                      ("debt_collection", collection), ("garnishments", garnish)]:
        assert found[key] == {"count": len(rows), "total": float(sum(abs(t.amount) for t in rows))}, key


def test_risky_ledger_keeps_the_customer_and_is_overdrawn_on_some_days():
    plain = generate_ledger(21, "flow-y", TODAY, market="DE", months=13)
    risky = risk.risky_ledger(plain)
    before, after = _rendered(plain)[0], _rendered(risky)[0]
    assert risky.owner_name == plain.owner_name and len(risky.accounts) == len(plain.accounts)
    old = {(t.booking_date, t.amount, t.description) for t in before.transactions}
    assert old <= {(t.booking_date, t.amount, t.description) for t in after.transactions}
    assert after.balance == after.opening_balance + sum(t.amount for t in after.transactions)
    running, eod = after.opening_balance, {}
    for t in after.transactions:
        running += t.amount
        eod[t.booking_date] = running
        assert t.balance_after == running
    assert min(eod.values()) == Decimal("-250.00")        # overdrawn at its lowest, by construction
    assert risk.risky_ledger(plain).to_json() == risky.to_json()   # deterministic


def test_balance_facts_by_hand():
    # balance now 100; +50 on 05-20 (so 05-10..05-19: 50), -300 on 05-10 (so 05-09 and before: 350)
    txns = [{"booking_date": "2025-05-10", "amount": -300.0}, {"booking_date": "2025-05-20", "amount": 50.0}]
    facts = risk.account_balance_facts(Decimal("100"), txns, date(2025, 5, 1), date(2025, 5, 31), date(2025, 5, 31))
    assert facts["days_in_overdraft"] == 0
    # last 30 days ending 05-31: 05-02..05-09 (8 days) 350, 05-10..05-19 (10 days) 50, 05-20..05-31 (12 days) 100
    assert facts["average"]["one_month"] == round((8 * 350 + 10 * 50 + 12 * 100) / 30, 2) == 150.0
    # an overdraft exactly on the window's first and last day counts; the day after the window does not
    txns = [{"booking_date": "2025-05-01", "amount": -500.0}, {"booking_date": "2025-05-02", "amount": 500.0},
            {"booking_date": "2025-05-31", "amount": -500.0}, {"booking_date": "2025-06-01", "amount": 500.0},
            {"booking_date": "2025-06-02", "amount": -500.0}]
    facts = risk.account_balance_facts(Decimal("-100"), txns, date(2025, 5, 1), date(2025, 5, 31), date(2025, 6, 2))
    assert facts["days_in_overdraft"] == 2


def test_report_sections_split_regular_and_variable():
    salary = [{"booking_date": f"2025-0{m}-28", "amount": 2000.0, "categories": data.category_path(2),
               "name": "Acme GmbH", "account_id": "A1.1"} for m in range(1, 6)]
    odd = [{"booking_date": "2025-02-03", "amount": 150.0, "categories": data.category_path(7), "name": "Shop",
            "account_id": "A1.1"}]
    rent = [{"booking_date": f"2025-0{m}-01", "amount": -700.0, "categories": data.category_path(15),
             "name": "Vermieter", "account_id": "A1.1"} for m in range(1, 6)]
    transfer = [{"booking_date": "2025-03-05", "amount": -999.0, "categories": data.category_path(81), "name": "Me",
                 "account_id": "A1.1"}]
    account = {"account_id": "A1.1", "name": "Giro", "type": "Giro account", "owner": "Maria Müller",
               "iban": "DE89370400440532013000", "currency": "EUR"}
    report = risk.build_risk_report("r", date(2025, 1, 1), date(2025, 5, 31), date(2025, 6, 1), [account],
                                    {"A1.1": salary + odd + rent + transfer}, {"A1.1": Decimal("500")},
                                    "Müller, Maria", "de")
    assert report["period"] == 5
    inc = report["income"]
    assert inc["summary"] == {"count": 6, "total": 10150.0, "low": 2000.0, "high": 2150.0, "average": 2030.0}
    assert inc["regular"]["summary"]["total"] == 10000.0 and inc["variable"]["summary"]["total"] == 150.0
    assert inc["regular"]["streams"][0]["category"] == {"id": 2, "name": "Gehalt"}
    assert report["expenses"]["summary"]["total"] == 3500.0      # the savings transfer is not an expense
    assert report["expenses"]["regular"]["summary"]["count"] == 5
    acc = report["accounts"][0]
    assert acc["is_main_account"] and acc["verification_result"]["matched"]["affinity"] == "HIGH"
    assert acc["last_transaction_on"] == "2025-05-28"
