"""finoOS cockpit computations (providers/fino/cockpit_blocks.py) and the analysis at scale.

Expected values are computed here from the bookings the test builds; the cockpit code is only ever the thing under
test. The scale test times a full analysis run of a 24-month, ~5,000-booking user through the app.
"""
from __future__ import annotations

import random
import time
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from contract_tests.test_fino_cockpits import BERLIN, GIRO_IBAN, SAVINGS_IBAN, _tx, epoch, person_upload
from sandbox import create_app
from sandbox.core.store import MemoryStore
from sandbox.providers.fino import cockpit_blocks as blocks

TENANT = {"color": "#00875a", "logoUrl": "", "name": "t"}
UID = "6080b03e-4495-47c2-abe4-eea4b6fcc6a2"


def cockpit_of(accounts, tags=None, today=date(2024, 6, 25)):
    accounts = sorted(accounts, key=lambda a: a["accountId"])
    txs = blocks.normalise(accounts, {a["accountId"]: a["transactions"] for a in accounts}, tags)
    return blocks.person_cockpit(UID, accounts, txs, today, "2024-06-25T10:00:00.000Z", TENANT,
                                 blocks.balances_for(accounts, txs, today)), txs


def giro(txs, balance=1000.0, **extra):
    return {"accountId": "g", "accountNumber": "1", "balance": balance, "iban": GIRO_IBAN, "type": "GIRO",
            "transactions": txs, **extra}


# --- classification --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("doc,expected", [
    (_tx("a", -250.0, date(2024, 1, 5), "DAUERAUFTRAG", "Sparen", "Ich", SAVINGS_IBAN), "internal-transfer"),
    (_tx("a", 3000.0, date(2024, 1, 5), "GUTSCHRIFT", "x", "Firma", "DE1", "SALA", 166), "salary"),
    (_tx("a", 1400.0, date(2024, 1, 5), "GUTSCHRIFT", "Altersrente 01/2024", "Deutsche Rentenversicherung"), "pension"),
    (_tx("a", 250.0, date(2024, 1, 5), "GUTSCHRIFT", "Kindergeld", "Familienkasse"), "child-benefit"),
    (_tx("a", 900.0, date(2024, 1, 5), "GUTSCHRIFT", "Elterngeld 3/12", "L-Bank"), "parental-allowance"),
    (_tx("a", 300.0, date(2024, 1, 5), "GUTSCHRIFT", "Unterhalt Januar", "Jan"), "alimony"),
    (_tx("a", 55.0, date(2024, 1, 5), "GUTSCHRIFT", "Erstattung", "Otto"), "other-earning"),
    (_tx("a", -900.0, date(2024, 1, 5), "DAUERAUFTRAG", "Wohnung", "Vermieter", "DE2", "RENT", 117), "rent"),
    (_tx("a", -49.0, date(2024, 1, 5), "LASTSCHRIFT", "Beitrag", "HUK", "DE3", "INSU", 105), "insurance"),
    (_tx("a", -199.0, date(2024, 1, 5), "LASTSCHRIFT", "Ratenkredit 123", "Bank"), "credit"),
    (_tx("a", -100.0, date(2024, 1, 5), "LASTSCHRIFT", "Sparplan ETF", "Broker"), "security-saving-plan"),
    (_tx("a", -30.0, date(2024, 1, 5), "KARTENZAHLUNG", "REWE", "REWE", mcc="5411"), "groceries"),
    (_tx("a", -60.0, date(2024, 1, 5), "KARTENZAHLUNG", "Aral", "Aral", mcc="5541"), "mobility"),
    (_tx("a", -200.0, date(2024, 1, 5), "BARGELDAUSZAHLUNG", "GA", "Sparkasse", mcc="6011"), "cash-withdrawal"),
    (_tx("a", -2940.0, date(2024, 1, 5), "LASTSCHRIFT", "Beitragsnachweis 01/2024", "TK", "DE4", "SSBE", 105),
     "other-spending"),
    (_tx("a", -128.0, date(2024, 1, 5), "LASTSCHRIFT", "Kreditkartenabrechnung", "Bank"), "credit-card"),
])
def test_classify_rules(doc, expected):
    assert blocks.classify(doc, frozenset({GIRO_IBAN, SAVINGS_IBAN}), card_connected=False) == expected


def test_a_category_tag_wins_over_the_rules_but_not_over_an_own_account():
    doc = _tx("a", -30.0, date(2024, 1, 5), "KARTENZAHLUNG", "REWE", "REWE", mcc="5411")
    assert blocks.classify(doc, frozenset(), False, ["spending", "variable", "recreational"]) == "recreational"
    assert blocks.classify(doc, frozenset(), False, ["spending", "variable"]) == "groceries"   # no category tag
    own = _tx("a", -250.0, date(2024, 1, 5), "X", "Y", "Ich", SAVINGS_IBAN)
    assert blocks.classify(own, frozenset({SAVINGS_IBAN}), False, ["rent"]) == "internal-transfer"
    settlement = _tx("a", -128.0, date(2024, 1, 5), "LASTSCHRIFT", "Kreditkartenabrechnung", "Bank")
    assert blocks.classify(settlement, frozenset(), card_connected=True) == "internal-transfer"


# --- window, intervals, balances ----------------------------------------------------------------------------------
def test_window_is_the_last_twelve_months_up_to_the_newest_booking():
    accounts = [giro([_tx(f"t{m}", -1.0, date(2023 + (m - 1) // 12, (m - 1) % 12 + 1, 3)) for m in range(1, 19)])]
    txs = blocks.normalise(accounts, {"g": accounts[0]["transactions"]})
    w = blocks.window(txs, date(2024, 7, 1))
    assert w.months[0] == "2023-07" and w.months[-1] == "2024-06" and len(w.months) == 12
    assert [t.id for t in w.txs] == [f"t{m}" for m in range(7, 19)]
    short = blocks.window(txs[-3:], date(2025, 1, 1))
    assert short.months == ["2024-04", "2024-05", "2024-06"] and short.size == 3
    running = blocks.window(txs, date(2024, 6, 25))   # June is the run's month: still running, left out
    assert running.months[0] == "2023-06" and running.months[-1] == "2024-05"
    assert [t.id for t in running.txs] == [f"t{m}" for m in range(6, 18)]
    assert blocks.window(txs[-1:], date(2024, 6, 30)).months == []


@pytest.mark.parametrize("gap,name", [(7, "WEEKLY"), (30, "MONTHLY"), (31, "MONTHLY"), (91, "QUARTERLY"),
                                      (182, "HALF_YEARLY"), (365, "ANNUALLY")])
def test_interval_from_the_median_gap(gap, name):
    start = date(2022, 1, 3).toordinal()
    assert blocks.interval_of([date.fromordinal(start + i * gap) for i in range(4)]) == name
    assert blocks.interval_of([date(2024, 1, 1)]) == "ONCE"


def test_daily_balances_roll_back_through_the_bookings():
    accounts = [giro([_tx("a", -100.0, date(2024, 6, 10)), _tx("b", 40.0, date(2024, 6, 12)),
                      _tx("c", -5.0, date(2024, 6, 30))], balance=500.0)]
    txs = blocks.normalise(accounts, {"g": accounts[0]["transactions"]})
    got = dict(blocks.daily_balances(Decimal("500"), txs, date(2024, 6, 9), date(2024, 6, 13)))
    # after the 13th only c (-5) is booked: 505 at the end of the 13th
    assert got == {date(2024, 6, 9): Decimal("565"), date(2024, 6, 10): Decimal("465"),
                   date(2024, 6, 11): Decimal("465"), date(2024, 6, 12): Decimal("505"),
                   date(2024, 6, 13): Decimal("505")}


def test_observation_period_gap_and_score():
    days = [date(2023, 7, 3), date(2023, 8, 3), date(2023, 10, 3)]
    accounts = [giro([_tx(f"t{n}", -1.0, d) for n, d in enumerate(days)])]
    txs = blocks.normalise(accounts, {"g": accounts[0]["transactions"]})
    got = blocks.observation_period(txs)
    assert got == {"firstTransactionDate": "2023-07-03", "firstTransactionDateFormatted": "03.07.2023",
                   "gapWithinObservationPeriod": True, "lastTransactionDate": "2023-10-03",
                   "lastTransactionDateFormatted": "03.10.2023", "score": round(4 * 100 / 12) - 25}


def test_tops_rank_and_percent():
    accounts = [giro([_tx("a", 600.0, date(2024, 1, 5), "", "", "A GmbH", "DE1"),
                      _tx("b", 300.0, date(2024, 1, 6), "", "", "B AG", "DE2"),
                      _tx("c", 100.0, date(2024, 2, 6), "", "", "A GmbH", "DE1")])]
    txs = blocks.normalise(accounts, {"g": accounts[0]["transactions"]})
    top = blocks.tops(txs)
    assert [(t["rank"], t["name"], t["totalPayments"], t["percent"], t["numberOfTransactions"]) for t in top] == [
        (1, "A GmbH", 700.0, 70.0, 2), (2, "B AG", 300.0, 30.0, 1)]
    assert top[0]["displayPercent"] == "70,0 %" and top[0]["averageAmountTransaction"] == 350.0


# --- adult check, risk ----------------------------------------------------------------------------------------------
def test_adult_check_rule():
    minor, _ = cockpit_of([giro([_tx("p", -4.99, date(2024, 6, 1), "KARTENZAHLUNG", "Kiosk", "Kiosk", mcc="5411")])], today=date(2024, 7, 1))
    assert blocks.adult_check(minor) == {"indicators": [], "isAdult": False}
    earner, _ = cockpit_of([giro([_tx("s", 1200.0, date(2024, 6, 1), "LOHN/GEHALT", "Gehalt", "Firma", "DE1",
                                      "SALA", 153)])], today=date(2024, 7, 1))
    assert blocks.adult_check(earner) == {"indicators": ["salary"], "isAdult": True}


def test_person_risk_flags():
    txs = [_tx("s", 1000.0, date(2024, 6, 1), "LOHN/GEHALT", "Gehalt", "Firma", "DE1", "SALA", 153),
           _tx("w", -50.0, date(2024, 6, 2), "KARTENZAHLUNG", "Tipico Sportwetten", "Tipico"),
           _tx("i", -80.0, date(2024, 6, 3), "UEBERWEISUNG", "Forderung 12 Inkasso", "EOS KSI Inkasso"),
           _tx("x", -2000.0, date(2024, 6, 4), "UEBERWEISUNG", "Auto", "Haendler")]
    c, t = cockpit_of([giro(txs, balance=-200.0)], today=date(2024, 7, 1))
    assert blocks.person_risk(c, t, date(2024, 7, 1)) == {"flags": ["overdraft", "gambling", "debtCollection",
                                                  "spendingExceedsIncome"], "score": 100 - 15 - 15 - 25 - 10}


# --- consistency under random bookings ----------------------------------------------------------------------------
AMOUNTS = st.decimals(min_value=Decimal("-3000"), max_value=Decimal("3000"), places=2).filter(lambda x: x != 0)
KINDS = st.sampled_from([("SALA", "Gehalt"), ("", "Kindergeld"), ("RENT", "Miete"), ("INSU", "Beitrag"),
                         ("", "Unterhalt"), ("", "Einkauf"), ("LOAR", "Rate"), ("", "Umbuchung")])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(AMOUNTS, KINDS, st.integers(0, 500)), min_size=1, max_size=60))
def test_totals_are_the_sums_of_their_parts_and_ids_are_the_users(rows):
    txs = [_tx(f"t{n}", float(amount), date.fromordinal(date(2023, 1, 1).toordinal() + day), "", text,
               f"P{n % 5}", f"DE{n % 5:02d}", code) for n, (amount, (code, text), day) in enumerate(rows)]
    c, _ = cockpit_of([giro(txs)])
    income, spending = c["income"], c["spending"]
    parts = ("salary", "pension", "childBenefit", "elternGeld", "rental", "alimony", "other", "nonRecurringIncome")
    assert Decimal(str(income["total"])) == sum(Decimal(str(income[p])) for p in parts)
    sparts = ("consumption", "contract", "credit", "creditCards", "insurance", "rental", "securitySavingPlans")
    assert Decimal(str(spending["total"])) == sum(Decimal(str(spending[p])) for p in sparts)
    uploaded = {t["transactionId"]: t for t in txs}
    income_ids = [i for k, v in income.items() if k.endswith("Props") and k != "salaryMedianProps"
                  for i in v["transactionIDs"]]
    spending_ids = [i for k, v in spending.items() if k.endswith("Props") for i in v["transactionIDs"]]
    assert len(income_ids) == len(set(income_ids)) and len(spending_ids) == len(set(spending_ids))
    assert all(uploaded[i]["amount"] > 0 for i in income_ids) and all(uploaded[i]["amount"] < 0 for i in spending_ids)
    house = c["householdExpenditure"]
    house_ids = [i for k, v in house.items() if isinstance(v, dict) for i in v["transactions"]]
    assert sorted(house_ids) == sorted(spending["consumptionProps"]["transactionIDs"])
    window = {t.month for t in blocks.window(blocks.normalise([giro(txs)], {"g": txs}), date(2024, 6, 25)).txs}
    for i in income_ids + spending_ids:
        assert datetime.fromtimestamp(uploaded[i]["bookingDate"], BERLIN).strftime("%Y-%m") in window


# --- scale ----------------------------------------------------------------------------------------------------------
def test_a_24_month_5000_booking_user_gets_every_result_fast():
    """The whole analysis run (banking snapshot, categorization, detection, cockpits) of ~5,000 bookings."""
    app = create_app({"SEED": 3}, store=MemoryStore())
    http = app.test_client()
    http.put("/_sandbox/jobs/policy", json={"mode": "manual", "kind": "fino.analysis"})
    http.post("/_sandbox/clock/freeze", json={"at": "2024-06-25T10:00:00Z"})
    token = http.post("/fino/api/auth", data={"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                                              "grant_type": "client_credentials"}).get_json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    uid = http.post("/fino/api/users", json={"type": "person", "automaticAnalysis": "suspended"},
                    headers=h).get_json()["user"]["userID"]
    accounts, _ = person_upload(24, 185)
    count = sum(len(a["transactions"]) for a in accounts)
    assert 4800 <= count <= 5000
    for a in accounts:
        assert http.post(f"/fino/api/users/{uid}/banking/accounts", headers=h,
                         json={"accounts": [{**a, "transactions": []}]}).status_code == 200
        for i in range(0, len(a["transactions"]), 1500):
            assert http.post(f"/fino/api/users/{uid}/banking/accounts/{a['accountId']}/transactions", headers=h,
                             json={"transactions": a["transactions"][i:i + 1500]}).status_code < 300
    run = http.post(f"/fino/api/users/{uid}/trigger-analysis", headers=h).get_json()["correlationID"]
    sb = app.extensions["sandbox"]
    job = sb.runs.get("sandbox-client", "fino.analysis", run)["job_id"]
    started = time.perf_counter()
    assert http.post(f"/_sandbox/jobs/{job}/advance", json={"tenant": "sandbox-client"}).status_code < 300
    elapsed = time.perf_counter() - started
    cockpit = http.get(f"/fino/api/users/{uid}/cockpit/person", headers=h).get_json()
    assert cockpit["income"]["salary"] > 0 and len(cockpit["householdExpenditure"]["groceries"]["transactions"]) > 2000
    print(f"\nanalysis run of {count} bookings over 24 months: {elapsed:.2f} s")
    # the cockpit part alone
    accs = sorted(accounts, key=lambda a: a["accountId"])
    started = time.perf_counter()
    txs = blocks.normalise(accs, {a["accountId"]: a["transactions"] for a in accs})
    blocks.person_cockpit(UID, accs, txs, date(2024, 6, 25), "x", TENANT, blocks.balances_for(accs, txs,
                                                                                              date(2024, 6, 25)))
    print(f"cockpit blocks alone: {time.perf_counter() - started:.2f} s")


def test_random_seeded_shuffle_does_not_change_the_cockpit():
    accounts, _ = person_upload(14)
    first, _ = cockpit_of(accounts)
    shuffled = [{**a, "transactions": random.Random(5).sample(a["transactions"], len(a["transactions"]))}
                for a in reversed(accounts)]
    again, _ = cockpit_of(shuffled)
    assert again == first
    assert epoch(date(2024, 6, 20)) == int(datetime(2024, 6, 20, 12, tzinfo=BERLIN).timestamp())
