"""finX risk insights (finleap-products.md section 9): the risk report computed from the same stored transactions
/rest/transactions serves, and the ``figo01+risky`` persona (section 11) whose ledger really triggers the indicators.

Pure functions: callers (insights.py) load accounts and transactions; nothing here touches the store or a clock.
Money is summed as Decimal cents (reports.py helpers) and rendered as JSON numbers with two decimals.
"""
from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from ...core.yamlio import load_yaml

from ...core.ids import stable_seed
from ...ledger.analytics import (Booking, balance_history, group_streams, monthly_sums, months_between,
                                recurring_streams)
from ...ledger.generator import add_months
from ...ledger.models import Ledger, Transaction
from .reports import _booking_day, _cents, _money, _total, affinity

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "finleap"
ZERO = Decimal(0)
INCOME_KINDS = {"income"}
EXPENSE_KINDS = {"regular", "variable", "fee"}     # transfers between own accounts are neither (as the income report)
AVERAGE_WINDOWS = {"one_month": 30, "three_months": 90, "six_months": 180}   # days (inferred, s.9)


# ------------------------------------------------------------------------------------------------ category table

@lru_cache(maxsize=1)
def category_table() -> dict[int, dict]:
    """The one finX category table (fixtures/finleap/categories.yaml): id -> {parent_id, kind, name{en, de}}."""
    raw = load_yaml(FIXTURES / "categories.yaml")
    return {c["id"]: {"parent_id": c["parent_id"], "kind": c["kind"], "name": dict(c["name"])}
            for c in raw["categories"]}


def category_name(category_id: int, lang: str) -> str:
    """A category's name in ``lang`` (en | de); ids outside the table keep their id as text."""
    entry = category_table().get(category_id)
    return entry["name"][lang] if entry else str(category_id)


def category_kind(category_id: int) -> str | None:
    entry = category_table().get(category_id)
    return entry["kind"] if entry else None


def localised_path(category_id: int, lang: str) -> list[dict]:
    """``categories`` of a transaction, general -> specific ``[{id, parent_id, name}]`` in ``lang``."""
    table, path, cursor = category_table(), [], category_id
    while cursor is not None and cursor in table:
        path.insert(0, {"id": cursor, "parent_id": table[cursor]["parent_id"],
                        "name": table[cursor]["name"][lang]})
        cursor = table[cursor]["parent_id"]
    return path


# ------------------------------------------------------------------------------------------------ indicators

@lru_cache(maxsize=1)
def indicator_rules() -> dict[str, tuple[str, tuple[re.Pattern, ...]]]:
    """name -> (direction credit|debit, keyword patterns) from fixtures/finleap/risk_indicators.yaml."""
    raw = load_yaml(FIXTURES / "risk_indicators.yaml")
    return {name: (spec["direction"], tuple(re.compile(re.escape(k), re.IGNORECASE) for k in spec["keywords"]))
            for name, spec in raw["indicators"].items()}


def indicator_of(t: dict) -> str | None:
    """The risk indicator a transaction counts for (first rule in file order), or None."""
    amount = _cents(t.get("amount") or 0)
    text = f"{t.get('name') or ''} | {t.get('purpose') or ''}"
    for name, (direction, patterns) in indicator_rules().items():
        if (amount > 0) != (direction == "credit") or amount == 0:
            continue
        if any(p.search(text) for p in patterns):
            return name
    return None


def risk_indicators(transactions: list[dict], since: date, until: date) -> dict:
    """``{indicator: {count, total}}`` over booked transactions in [since, until]; total = sum of |amount|."""
    out = {name: {"count": 0, "total": ZERO} for name in indicator_rules()}
    for t in transactions:
        day = _booking_day(t)
        if not t.get("booked", True) or day is None or not since <= day <= until:
            continue
        name = indicator_of(t)
        if name:
            out[name]["count"] += 1
            out[name]["total"] += abs(_cents(t["amount"]))
    return {name: {"count": v["count"], "total": _money(v["total"])} for name, v in out.items()}


# ------------------------------------------------------------------------------------------------ the report

def _bookings(transactions: list[dict], since: date, until: date, kinds: set[str], sign: int) -> list[Booking]:
    """Booked transactions in the window whose most specific category has one of ``kinds`` and whose amount has
    ``sign``, as Bookings with the positive reported amount and the finX category id."""
    out = []
    for t in transactions:
        day = _booking_day(t)
        if not t.get("booked", True) or day is None or not since <= day <= until or not t.get("categories"):
            continue
        category = t["categories"][-1].get("id")
        amount = _cents(t.get("amount") or 0)
        if category_kind(category) in kinds and amount * sign > 0:
            out.append(Booking(day, amount * sign, category, t.get("name") or "", ref=t.get("transaction_id")))
    return out


def _summary(entries: list[Booking], months) -> dict:
    """``{count, total, low, high, average}``: low/high = smallest/largest monthly sum (an empty month counts 0),
    average = total / period (s.9, checked against the docs example)."""
    monthly = list(monthly_sums(entries, months).values())
    total = _total(entries)
    return {"count": len(entries), "total": _money(total), "low": _money(min(monthly)),
            "high": _money(max(monthly)), "average": _money(total / len(months))}


def _section(entries: list[Booking], months, lang: str) -> dict:
    """``{summary, regular{summary, streams}, variable{summary, streams}}``: a stream (category + payment partner)
    is regular when the shared analytics recognise it as recurring (weekly .. yearly), else variable."""
    recurring = {(s.category, s.counterparty) for s in recurring_streams(entries)}
    regular = [e for e in entries if (e.category, e.counterparty) in recurring]
    variable = [e for e in entries if (e.category, e.counterparty) not in recurring]

    def part(es: list[Booking]) -> dict:
        streams = [{**_summary(list(s.bookings), months),
                    "category": {"id": s.category, "name": category_name(s.category, lang)},
                    "first_booked_on": s.first.isoformat(), "last_booked_on": s.last.isoformat()}
                   for s in group_streams(es)]
        return {"summary": _summary(es, months), "streams": streams}

    return {"summary": _summary(entries, months), "regular": part(regular), "variable": part(variable)}


def account_balance_facts(current_balance: Decimal, transactions: list[dict], since: date, until: date,
                          anchor: date) -> dict:
    """``{days_in_overdraft, average{one_month, three_months, six_months}}``: days in [since, until] whose
    end-of-day balance is < 0, and mean end-of-day balances over the 30/90/180 days ending on ``anchor``
    (rolled back exactly from the current balance over every booked transaction; inferred, s.9)."""
    booked = [Booking(d, _cents(t["amount"]), 0, "") for t in transactions
              if t.get("booked", True) and (d := _booking_day(t)) is not None]
    first = min([since, anchor - timedelta(days=max(AVERAGE_WINDOWS.values()) - 1)])
    last = max(until, anchor)
    history = dict(balance_history(current_balance, booked, first, last))
    overdraft = sum(1 for d, b in history.items() if since <= d <= until and b < 0)
    averages = {}
    for key, days in AVERAGE_WINDOWS.items():
        values = [history[anchor - timedelta(days=i)] for i in range(days)]
        averages[key] = _money(sum(values, ZERO) / len(values))
    return {"days_in_overdraft": overdraft, "average": averages}


def build_risk_report(report_id: str, since: date, until: date, anchor: date, accounts: list[dict],
                      transactions: dict[str, list[dict]], balances: dict[str, Decimal], name: str | None,
                      lang: str = "en") -> dict:
    """The risk report (finleap-products.md s.9) over ``accounts`` (finX account dicts) and their stored
    transactions (account_id -> list), in the window [since, until]; ``anchor`` is the report's "today"."""
    months = months_between(since, until)
    everything = [t for a in accounts for t in transactions.get(a["account_id"], [])]
    income = _bookings(everything, since, until, INCOME_KINDS, 1)
    expenses = _bookings(everything, since, until, EXPENSE_KINDS, -1)
    per_account_income = {a["account_id"]: _total(_bookings(transactions.get(a["account_id"], []), since, until,
                                                            INCOME_KINDS, 1)) for a in accounts}
    # is_main_account: the account with the largest income (ties -> the first listed), s.9 (inferred)
    main = max(accounts, key=lambda a: per_account_income[a["account_id"]])["account_id"] if accounts else None
    rendered_accounts = []
    for a in accounts:
        txns = transactions.get(a["account_id"], [])
        days = [d for t in txns if t.get("booked", True) and (d := _booking_day(t)) is not None]
        entry = {"name": a.get("name"), "type": a.get("type"), "owners": [a["owner"]] if a.get("owner") else [],
                 "iban": a.get("iban"), "currency": a.get("currency"),
                 "is_jointly_managed": bool(a.get("is_jointly_managed", False)),
                 "is_main_account": a["account_id"] == main,
                 "last_transaction_on": max(days).isoformat() if days else None,
                 "balance": account_balance_facts(balances[a["account_id"]], txns, since, until, anchor)}
        if name:   # verification_result only when the link named a person (s.9), affinity as finleap.md s.5
            holder = a.get("owner") or ""
            entry["verification_result"] = {"provided": {"name": name},
                                            "matched": {"name": holder or None, "affinity": affinity(name, holder)}}
        rendered_accounts.append(entry)
    return {"id": report_id, "period": len(months), "accounts": rendered_accounts,
            "income": _section(income, months, lang), "expenses": _section(expenses, months, lang),
            "risk_indicators": risk_indicators(everything, since, until)}


# ------------------------------------------------------------------------------------------------ risky persona

GAMBLING = ["Tipico Co. Ltd.", "bwin.com", "Lottoland Ltd."]
UTILITY = "Vattenfall Europe Sales GmbH"
COLLECTOR = "EOS KSI Inkasso Deutschland GmbH"
COURT = "Amtsgericht Hamburg"
DISPO = Decimal("1000.00")   # the overdraft line the risky checking account runs into


def risky_ledger(ledger: Ledger) -> Ledger:
    """The ``figo01+risky`` persona (finleap-products.md s.11): the same customer's ledger plus, on the checking
    account, monthly gambling payments, a returned direct debit with its fee, debt collection every second month
    and a garnishment every third month; the opening balance is lowered so the account is overdrawn on some days.
    Deterministic per customer and month, so a later sync (regenerated ledger) finds the same past bookings."""
    checking = next((a for a in ledger.accounts if a.kind == "checking"), None)
    if checking is None:
        return ledger
    start = add_months(ledger.anchor, -ledger.months)
    extra: list[tuple] = []   # (day, amount, text, counterparty, iban, category)
    for y, m in months_between(start, ledger.anchor):
        rng = random.Random(stable_seed(ledger.customer_id, "finleap.risky", y, m))

        def day(lo: int, hi: int) -> date:
            return date(y, m, rng.randint(lo, hi))

        for _ in range(rng.randint(2, 4)):
            partner = rng.choice(GAMBLING)
            extra.append((day(1, 28), -Decimal(rng.randint(20, 150)), f"KARTENZAHLUNG {partner.upper()} SPORTWETTEN",
                          partner, None, "leisure"))
        debit_day = day(2, 6)
        amount = Decimal(rng.randint(8000, 14000)).scaleb(-2)
        ref = f"VK{rng.randint(10 ** 7, 10 ** 8 - 1)}"
        extra.append((debit_day, -amount, f"LASTSCHRIFT ABSCHLAG STROM {ref}", UTILITY, None, "utilities"))
        extra.append((debit_day + timedelta(days=2), amount, f"RUECKLASTSCHRIFT MANGELS DECKUNG {ref}", UTILITY,
                      None, "refund"))
        extra.append((debit_day + timedelta(days=2), Decimal("-3.00"), "ENTGELT RUECKLASTSCHRIFT",
                      checking.bank_name, None, "fees"))
        if m % 2 == 0:
            extra.append((day(10, 20), -Decimal(rng.randint(4500, 12000)).scaleb(-2),
                          f"INKASSO AKTENZEICHEN {rng.randint(10 ** 6, 10 ** 7 - 1)} FORDERUNG", COLLECTOR, None, "fees"))
        if m % 3 == 0:
            extra.append((day(14, 24), -Decimal(rng.randint(150, 300)),
                          f"PFAENDUNG AZ {rng.randint(100, 999)} M {rng.randint(1000, 9999)}/{y % 100:02d}",
                          COURT, None, "fees"))
    merged = [(t.booking_date, n, t.amount, t.value_date, t.description, t.counterparty, t.counterparty_iban,
               t.category) for n, t in enumerate(checking.transactions)]
    base = len(merged)
    merged += [(d, base + n, amt, d, text, cp, iban, cat) for n, (d, amt, text, cp, iban, cat) in enumerate(extra)
               if start <= d <= ledger.anchor]
    merged.sort(key=lambda e: (e[0], e[1]))
    # lowest end-of-day running sum -> an opening balance that leaves the account 250.00 overdrawn at its lowest
    running, lowest, by_day = ZERO, None, {}
    for e in merged:
        running += e[2]
        by_day[e[0]] = running
    # the lowest day of the last whole month before the anchor: every one-time report window (whole months before
    # the flow, at least one) and every ongoing one contains overdraft days, whatever the seed drew earlier (days
    # before it may be overdrawn deeper still)
    last_month_end = ledger.anchor.replace(day=1) - timedelta(days=1)
    recent = [v for d, v in by_day.items() if last_month_end.replace(day=1) <= d <= last_month_end]
    lowest = min(recent or by_day.values(), default=ZERO)
    opening = -lowest - Decimal("250.00")
    balance, txns = opening, []
    for n, (d, _seq, amt, vd, text, cp, iban, cat) in enumerate(merged, 1):
        balance += amt
        txns.append(Transaction(f"{checking.id}-{n:05d}", checking.id, d, vd, amt, checking.currency, text, cp, iban,
                                cat, balance))
    risky = replace(checking, opening_balance=opening, balance=balance, transactions=txns,
                    credit_limit=checking.credit_limit or DISPO)
    return replace(ledger, accounts=[risky if a is checking else a for a in ledger.accounts])
