"""Ledger generator: determinism and the money/booking invariants every provider relies on."""
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from sandbox.ledger import (
    ACCOUNT_KINDS,
    CATEGORY_KINDS,
    add_months,
    available_markets,
    available_personas,
    generate_ledger,
    stable_seed,
)
from sandbox.ledger.generator import FIXTURES
from sandbox.ledger.iban import is_valid_iban, parse_il_iban

MARKETS = ("IL", "DE", "IN")
PERSONAS = available_personas()
REGULAR_INCOME = {"salaried_renter", "homeowner_with_mortgage", "retiree", "high_earner_investor", "student"}


def _isin_ok(isin: str) -> bool:
    if not re.fullmatch(r"[A-Z]{2}[A-Z0-9]{9}[0-9]", isin):
        return False
    digits = "".join(str(int(c, 36)) for c in isin[:-1])
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10 == int(isin[-1])


def _il_id_ok(nid: str) -> bool:
    total = 0
    for i, ch in enumerate(nid):
        x = int(ch) * (1 if i % 2 == 0 else 2)
        total += x // 10 + x % 10
    return len(nid) == 9 and total % 10 == 0


def _month(d: date) -> tuple[int, int]:
    return d.year, d.month


def _prev(ym: tuple[int, int]) -> tuple[int, int]:
    y, m = ym
    return (y - 1, 12) if m == 1 else (y, m - 1)


def check_ledger(ledger, anchor: date, months: int, market: str) -> None:
    """Assert every structural and arithmetic invariant of one generated ledger."""
    start = add_months(anchor, -months)
    assert ledger.market == market and ledger.anchor == anchor and ledger.months == months
    assert ledger.persona in PERSONAS
    json.dumps(ledger.to_json(), ensure_ascii=False)
    currency = {"IL": "ILS", "DE": "EUR", "IN": "INR"}[market]

    # owner and national id
    if market == "IL":
        assert _il_id_ok(ledger.national_id)
    elif market == "DE":
        assert re.fullmatch(r"[1-9][0-9]{10}", ledger.national_id)
    else:
        assert re.fullmatch(r"[A-Z]{3}P[A-Z][0-9]{4}[A-Z]", ledger.national_id)

    accounts = ledger.accounts
    ids = [a.id for a in accounts]
    assert len(set(ids)) == len(ids)
    # one checking account in the market currency; IL may add a foreign-currency one (IL.yaml `features`)
    foreign = [a for a in accounts if a.currency != currency]
    assert accounts[0].kind == "checking" and sum(a.kind == "checking" for a in accounts) == 1 + len(foreign)
    assert all(a.kind == "checking" for a in foreign) and (market == "IL" or not foreign)
    fx_ibans = {a.iban for a in foreign}
    by_kind = defaultdict(list)
    for a in accounts:
        by_kind[a.kind].append(a)
    checking = by_kind["checking"][0]

    for a in accounts:
        assert a.kind in ACCOUNT_KINDS
        assert re.fullmatch(r"[0-9a-f]{8}-" + a.kind + r"-[0-9]+", a.id)
        assert (a.currency == currency or a in foreign) and a.owner_name == ledger.owner_name
        for money in (a.opening_balance, a.balance):
            assert isinstance(money, Decimal) and money.as_tuple().exponent == -2
        assert a.balance == a.opening_balance + sum((t.amount for t in a.transactions), Decimal("0.00"))
        running = a.opening_balance
        keys = []
        for n, t in enumerate(a.transactions, 1):
            assert t.id == f"{a.id}-{n:05d}" and t.account_id == a.id
            assert t.category in CATEGORY_KINDS
            assert t.currency == a.currency
            assert t.amount != 0 and t.amount.as_tuple().exponent == -2
            assert t.balance_after.as_tuple().exponent == -2
            assert start <= t.booking_date <= anchor
            assert timedelta(0) <= t.booking_date - t.value_date <= timedelta(days=2)
            assert t.description and t.counterparty
            running += t.amount
            assert t.balance_after == running
            keys.append((t.booking_date, t.id))
            if t.counterparty_iban is not None:
                assert is_valid_iban(t.counterparty_iban), t.counterparty_iban
        assert keys == sorted(keys)
        if a.transactions:
            assert a.transactions[-1].balance_after == a.balance

        # numbers and IBANs
        if a.kind == "credit_card":
            assert a.iban is None and re.fullmatch(r"\*{11,12}[0-9]{4}", a.number)
            assert a.credit_limit is not None and a.credit_limit > 0
            low = min([a.opening_balance] + [t.balance_after for t in a.transactions])
            assert -low <= a.credit_limit
        elif market == "IL":
            bank, branch, account = a.number.split("-")
            assert len(bank) == 2 and len(branch) == 3 and 5 <= len(account) <= 9
            assert bank == a.bank_code and branch == a.branch
            if a.kind != "securities":
                assert is_valid_iban(a.iban) and parse_il_iban(a.iban) == (int(bank), int(branch), int(account))
        elif market == "DE":
            assert re.fullmatch(r"[0-9]{8}", a.bank_code) and a.branch is None
            if a.kind != "securities":
                assert is_valid_iban(a.iban) and a.iban[4:12] == a.bank_code and a.iban[12:] == a.number
        else:
            assert a.iban is None and re.fullmatch(r"[A-Z]{4}0[0-9]{6}", a.bank_code)

    # credit cards: one settlement a month, equal to the previous month's card bookings
    chk_settle = Counter((t.booking_date, t.amount) for t in checking.transactions if t.category == "card_settlement")
    card_settle = Counter()
    for card in by_kind["credit_card"]:
        monthly = defaultdict(lambda: Decimal("0.00"))
        settlements = {}
        for t in card.transactions:
            if t.category == "card_settlement":
                assert t.amount > 0 and _month(t.booking_date) not in settlements
                settlements[_month(t.booking_date)] = t.amount
                card_settle[(t.booking_date, -t.amount)] += 1
            else:
                monthly[_month(t.booking_date)] += t.amount
        for ym, amount in settlements.items():
            assert amount == -monthly[_prev(ym)]
        # every charged month that ended before the anchor's month minus one was settled
        for ym, total in monthly.items():
            nxt = (ym[0] + 1, 1) if ym[1] == 12 else (ym[0], ym[1] + 1)
            if total < 0 and nxt < _month(anchor):
                assert nxt in settlements, (card.id, ym)
    assert chk_settle == card_settle

    # internal transfers have exact counter-bookings
    def legs(account, category):   # conversions into a foreign-currency account change currency: not legs here
        return Counter((t.booking_date, t.amount) for t in account.transactions
                       if t.category == category and t.counterparty_iban not in fx_ibans)

    def neg(counter):
        return Counter({(d, -amt): n for (d, amt), n in counter.items()})

    for kind, category in (("savings", "savings_transfer"), ("securities", "securities_purchase"),
                           ("loan", "loan_repayment"), ("mortgage", "mortgage")):
        other = Counter()
        for acc in by_kind[kind]:
            other += legs(acc, category)
        assert neg(legs(checking, category)) == other, kind
    for acc in by_kind["savings"] + foreign:
        assert all(t.amount > 0 for t in acc.transactions) and acc.opening_balance > 0

    # loans: always owed (negative), shrinking with every instalment
    for acc in by_kind["loan"] + by_kind["mortgage"]:
        assert acc.opening_balance < 0 and acc.balance < 0
        assert all(t.balance_after < 0 for t in acc.transactions)
        after_repayment = [abs(t.balance_after) for t in acc.transactions if t.amount > 0]
        assert after_repayment == sorted(after_repayment, reverse=True)
        assert len(set(after_repayment)) == len(after_repayment)
        assert abs(acc.balance) <= abs(acc.opening_balance)
        assert {t.category for t in acc.transactions} <= {"interest_charge", "loan_repayment", "mortgage"}

    # securities: balance is the depot value
    for acc in by_kind["securities"]:
        assert 2 <= len(acc.holdings) <= 6
        assert acc.balance == sum((h.value for h in acc.holdings), Decimal("0.00"))
        assert acc.opening_balance >= 0
        for h in acc.holdings:
            assert _isin_ok(h.isin), h.isin
            assert h.units > 0 and h.price > 0 and h.average_price > 0 and h.currency == currency

    # coverage: at least `months` distinct months with bookings
    if months <= 12:
        covered = {_month(t.booking_date) for t in checking.transactions}
        assert len(covered) >= months
        if ledger.persona in REGULAR_INCOME:
            regular = [t for t in checking.transactions if t.category in ("salary", "pension")]
            assert len(regular) >= months - 1


# ------------------------------------------------------------------------------------------------- properties

@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=-(2 ** 63), max_value=2 ** 63), customer_id=st.text(max_size=40),
       anchor=st.dates(date(2015, 1, 1), date(2035, 12, 31)), market=st.sampled_from(MARKETS),
       months=st.integers(1, 36), persona=st.none() | st.sampled_from(PERSONAS))
def test_invariants_hold(seed, customer_id, anchor, market, months, persona):
    ledger = generate_ledger(seed, customer_id, anchor, market, months, persona)
    check_ledger(ledger, anchor, months, market)
    prefix = f"{stable_seed(seed, customer_id):016x}"[:8]
    assert all(a.id.startswith(prefix + "-") for a in ledger.accounts)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(), customer_id=st.text(max_size=20), anchor=st.dates(date(2015, 1, 1), date(2035, 12, 31)),
       market=st.sampled_from(MARKETS), months=st.integers(1, 36))
def test_deterministic(seed, customer_id, anchor, market, months):
    a = generate_ledger(seed, customer_id, anchor, market, months)
    b = generate_ledger(seed, customer_id, anchor, market, months)
    assert a.to_json() == b.to_json()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10 ** 9), customer_id=st.text(min_size=1, max_size=12),
       anchor=st.dates(date(2016, 1, 1), date(2035, 12, 31)), market=st.sampled_from(MARKETS))
def test_identity_does_not_depend_on_anchor(seed, customer_id, anchor, market):
    a = generate_ledger(seed, customer_id, anchor, market, 3)
    b = generate_ledger(seed, customer_id, anchor - timedelta(days=40), market, 12)
    assert (a.persona, a.owner_name, a.national_id) == (b.persona, b.owner_name, b.national_id)
    assert [(x.id, x.number, x.iban) for x in a.accounts] == [(x.id, x.number, x.iban) for x in b.accounts]


# ------------------------------------------------------------------------------------------------- examples

@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("persona", PERSONAS)
def test_every_persona_in_every_market(market, persona):
    for months in (1, 12, 36):
        anchor = date(2024, 2, 29)
        ledger = generate_ledger(7, f"cust-{persona}", anchor, market, months, persona)
        assert ledger.persona == persona
        check_ledger(ledger, anchor, months, market)


def test_different_seed_or_customer_gives_a_different_ledger():
    anchor = date(2025, 3, 14)
    base = generate_ledger(1, "alice", anchor, "DE").to_json()
    assert generate_ledger(2, "alice", anchor, "DE").to_json() != base
    assert generate_ledger(1, "bob", anchor, "DE").to_json() != base
    assert generate_ledger(1, "alice", anchor, "DE").to_json() == base


def test_account_features_follow_the_persona():
    anchor = date(2024, 9, 30)
    kinds = {p: Counter(a.kind for a in generate_ledger(3, "c", anchor, "IL", 12, p).accounts) for p in PERSONAS}
    assert kinds["student"] == Counter({"checking": 1})
    assert kinds["homeowner_with_mortgage"]["mortgage"] == 1
    assert kinds["high_earner_investor"]["securities"] == 1 and kinds["high_earner_investor"]["credit_card"] == 2
    assert kinds["high_earner_investor"]["loan"] == 1
    assert kinds["salaried_renter"]["credit_card"] == 1 and kinds["salaried_renter"]["savings"] == 1
    freelancer = generate_ledger(3, "c", anchor, "IL", 12, "freelancer")
    per_month = Counter(_month(t.booking_date) for t in freelancer.accounts[0].transactions if t.category == "freelance")
    assert set(per_month.values()) <= {1, 2, 3}
    assert not any(t.category == "salary" for t in freelancer.accounts[0].transactions)


def test_il_card_issuers_and_names():
    issuers = set()
    for i in range(40):
        ledger = generate_ledger(i, f"c{i}", date(2024, 5, 1), "IL", 2, "salaried_renter")
        assert re.search(r"[\u0590-\u05FF]", ledger.owner_name_native)
        assert re.fullmatch(r"[A-Za-z' -]+", ledger.owner_name)
        issuers |= {a.bank_id for a in ledger.accounts if a.kind == "credit_card"}
    assert issuers <= {"isracard", "cal", "max", "americanExpress"} and len(issuers) >= 3


def test_owner_name_override_and_bad_arguments():
    ledger = generate_ledger(1, "x", date(2024, 1, 31), "DE", 2, owner_name="Erika Mustermann")
    assert ledger.owner_name == ledger.owner_name_native == "Erika Mustermann"
    assert all(a.owner_name == "Erika Mustermann" for a in ledger.accounts)
    with pytest.raises(ValueError):
        generate_ledger(1, "x", date(2024, 1, 31), "FR")
    with pytest.raises(ValueError):
        generate_ledger(1, "x", date(2024, 1, 31), "IL", persona="astronaut")
    with pytest.raises(ValueError):
        generate_ledger(1, "x", date(2024, 1, 31), "IL", months=0)


def test_personas_are_spread_over_customers():
    seen = Counter(generate_ledger(5, f"cust-{i}", date(2024, 1, 1), "IN", 1).persona for i in range(120))
    assert set(seen) == set(PERSONAS)


def test_stable_seed_is_process_independent():
    code = ("from datetime import date; import hashlib, json; from sandbox.ledger import generate_ledger, stable_seed;"
            "j = json.dumps(generate_ledger(9, 'cust', date(2024, 4, 4), 'IL', 3).to_json(), sort_keys=True);"
            "print(stable_seed(1, 'a'), hashlib.sha256(j.encode()).hexdigest())")
    root = str(Path(__file__).resolve().parents[2])
    outs = set()
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed, PYTHONPATH=root)
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout)
    assert len(outs) == 1


# ------------------------------------------------------------------------------------------------- fixtures

def test_fixture_data_is_consistent():
    assert set(MARKETS) <= set(available_markets())
    assert {"salaried_renter", "homeowner_with_mortgage", "freelancer", "student", "retiree",
            "high_earner_investor"} <= set(PERSONAS)
    personas = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in (FIXTURES / "personas").glob("*.yaml")}
    for code in MARKETS:
        mk = yaml.safe_load((FIXTURES / "markets" / f"{code}.yaml").read_text(encoding="utf-8"))
        for cat, names in mk["merchants"].items():
            assert cat in CATEGORY_KINDS and names and all(isinstance(n, str) for n in names), (code, cat)
        for payee in mk["payees"].values():
            assert all(isinstance(n, str) for n in payee["names"])
        for sec in mk["securities"]:
            assert _isin_ok(sec["isin"]), sec
        for name, persona in personas.items():
            for cat in persona.get("spending") or {}:
                assert mk["merchants"].get(cat), (code, name, cat)
        if code == "IL":
            codes = {b["id"]: b["code"] for b in mk["banks"]}
            assert codes["leumi"] == "10" and codes["hapoalim"] == "12" and codes["yahav"] == "04"
            assert all(re.fullmatch(r"[0-9]{2}", c) for c in codes.values()) and len(codes) == 14
            assert {i["id"] for i in mk["card_issuers"]} == {"isracard", "cal", "max", "americanExpress"}
        if code == "DE":
            assert all(re.fullmatch(r"[0-9]{8}", b["code"]) for b in mk["banks"])
