"""Shared ledger analytics: months, monthly totals, streams, recurring-stream detection, balance histories and the
rule-based categoriser. Expected values are recomputed independently from the bookings."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from sandbox.ledger import CATEGORY_KINDS, available_personas, generate_ledger
from sandbox.ledger.analytics import (
    Booking,
    account_bookings,
    add_months,
    balance_history,
    bookings_from_transactions,
    categorise,
    detect_interval,
    group_streams,
    month_label,
    monthly_sums,
    monthly_totals,
    months_between,
    recurring_streams,
)

ZERO = Decimal(0)
seeds = st.integers(0, 2**32)
personas = st.sampled_from(available_personas())
markets = st.sampled_from(["DE", "IL", "IN"])
anchors = st.dates(date(2018, 1, 1), date(2032, 12, 31))


def ledger(seed, persona, market, anchor, months=13):
    return generate_ledger(seed, f"c{seed % 97}", anchor, market=market, months=months, persona=persona)


def b(day: date, amount, category="rent", partner="Vermieter") -> Booking:
    return Booking(day, Decimal(str(amount)), category, partner)


# --------------------------------------------------------------------------------------------------- months

@settings(max_examples=200, deadline=None)
@given(since=anchors, length=st.integers(-40, 800))
def test_months_between_counts_every_touched_month(since, length):
    until = since + timedelta(days=length)
    months = months_between(since, until)
    if until < since:
        assert months == []
        return
    assert len(months) == (until.year * 12 + until.month) - (since.year * 12 + since.month) + 1
    assert months[0] == (since.year, since.month) and months[-1] == (until.year, until.month)
    # every day of the range falls in a listed month and consecutive months are one apart
    assert {(since + timedelta(days=i)).timetuple()[:2] for i in range(length + 1)} == set(months)
    assert all((b_[0] * 12 + b_[1]) - (a[0] * 12 + a[1]) == 1 for a, b_ in zip(months, months[1:]))
    assert month_label(months[0]) == since.strftime("%Y-%m")


# --------------------------------------------------------------------------------------------------- monthly totals

@settings(max_examples=25, deadline=None)
@given(seed=seeds, persona=personas, market=markets, anchor=anchors, back=st.integers(0, 8), span=st.integers(0, 9))
def test_monthly_totals_add_up_to_the_bookings_of_the_window(seed, persona, market, anchor, back, span):
    lg = ledger(seed, persona, market, anchor)
    bookings = account_bookings(lg.accounts)
    start = add_months(anchor.replace(day=1), -back - span)
    months = months_between(start, add_months(start, span))
    in_window = [x for x in bookings if (x.day.year, x.day.month) in set(months)]

    assert sum(monthly_sums(bookings, months).values(), ZERO) == sum((x.amount for x in in_window), ZERO)

    totals = monthly_totals(bookings, months)
    assert totals.months == months and list(totals.income) == months and list(totals.expense) == months
    counted = [x for x in in_window if CATEGORY_KINDS[x.category] != "transfer"]
    assert sum(totals.income.values(), ZERO) == sum((x.amount for x in counted if x.amount > 0), ZERO)
    assert sum(totals.expense.values(), ZERO) == -sum((x.amount for x in counted if x.amount < 0), ZERO)
    assert sum(totals.net.values(), ZERO) == sum((x.amount for x in counted), ZERO)
    for m in months:    # per month, and the categories add up to the month's net
        month_rows = [x for x in counted if (x.day.year, x.day.month) == m]
        assert totals.income[m] == sum((x.amount for x in month_rows if x.amount > 0), ZERO) >= 0
        assert sum((row[m] for row in totals.by_category.values()), ZERO) == totals.net[m]
    for category, row in totals.by_category.items():
        assert CATEGORY_KINDS[category] != "transfer"
        assert sum(row.values(), ZERO) == sum((x.amount for x in counted if x.category == category), ZERO)


def test_monthly_totals_with_custom_rules_and_default_months():
    rows = [b(date(2025, 1, 3), 100, "salary"), b(date(2025, 1, 9), -30, "groceries"),
            b(date(2025, 3, 1), -500, "savings_transfer"), b(date(2025, 3, 2), 5, "refund")]
    totals = monthly_totals(rows)          # months: first to last booking month, the empty one included
    assert totals.months == [(2025, 1), (2025, 2), (2025, 3)]
    assert totals.income == {(2025, 1): Decimal(100), (2025, 2): ZERO, (2025, 3): Decimal(5)}
    assert totals.expense == {(2025, 1): Decimal(30), (2025, 2): ZERO, (2025, 3): ZERO}   # transfer left out
    salary_only = monthly_totals(rows, [(2025, 1)], is_income=lambda x: x.category == "salary",
                                 is_expense=lambda x: x.amount < 0)
    assert salary_only.income == {(2025, 1): Decimal(100)} and salary_only.expense == {(2025, 1): Decimal(30)}
    assert monthly_totals([]).months == []


# --------------------------------------------------------------------------------------------------- balances

@settings(max_examples=25, deadline=None)
@given(seed=seeds, persona=personas, market=markets, anchor=anchors, days=st.integers(0, 120),
       lag=st.integers(0, 40))
def test_balance_history_rolls_back_exactly(seed, persona, market, anchor, days, lag):
    lg = ledger(seed, persona, market, anchor)
    until = anchor - timedelta(days=lag)
    since = until - timedelta(days=days)
    for account in lg.accounts:
        history = balance_history(account.balance, account.transactions, since, until)
        assert [d for d, _ in history] == [since + timedelta(days=i) for i in range(days + 1)]
        for d, balance in history:       # independently: forward from the opening balance
            expected = account.opening_balance + sum(
                (t.amount for t in account.transactions if t.booking_date <= d), ZERO)
            assert balance == expected
        for (d0, b0), (d1, b1) in zip(history, history[1:]):
            assert b1 - b0 == sum((t.amount for t in account.transactions if t.booking_date == d1), ZERO)
        if lag == 0:
            assert history[-1][1] == account.balance
        # Bookings give the same history as ledger Transactions
        assert balance_history(account.balance, bookings_from_transactions(account.transactions), since,
                               until) == history


def test_balance_history_small_example_and_bad_range():
    rows = [b(date(2025, 1, 1), 10), b(date(2025, 1, 3), -4), b(date(2025, 1, 3), 1), b(date(2025, 1, 9), 100)]
    assert balance_history(Decimal(150), rows, date(2025, 1, 1), date(2025, 1, 4)) == [
        (date(2025, 1, 1), Decimal(53)), (date(2025, 1, 2), Decimal(53)), (date(2025, 1, 3), Decimal(50)),
        (date(2025, 1, 4), Decimal(50))]
    with pytest.raises(ValueError):
        balance_history(ZERO, rows, date(2025, 1, 2), date(2025, 1, 1))


# --------------------------------------------------------------------------------------------------- streams

def test_group_streams_groups_by_category_and_partner_and_ranks_by_total():
    rows = [b(date(2025, 1, 5), 10, 2, "Zeta"), b(date(2025, 1, 1), 10, 2, "Alpha"),
            b(date(2025, 2, 1), 30, 3, "Alpha"), b(date(2025, 3, 9), 5, 2, "Zeta")]
    streams = group_streams(rows)
    assert [(s.category, s.counterparty, s.total, s.count) for s in streams] == [
        (3, "Alpha", 30, 1), (2, "Zeta", 15, 2), (2, "Alpha", 10, 1)]
    assert (streams[1].first, streams[1].last) == (date(2025, 1, 5), date(2025, 3, 9))


@settings(max_examples=150, deadline=None)
@given(start=st.dates(date(2019, 1, 1), date(2030, 12, 1)), day=st.integers(1, 28), n=st.integers(6, 18),
       data=st.data())
def test_monthly_rent_with_one_skipped_month_is_monthly(start, day, n, data):
    skip = data.draw(st.integers(1, n - 2))     # the skipped month lies inside the series
    first = start.replace(day=day)
    days = [add_months(first, i) for i in range(n) if i != skip]
    # weekend rolling moves a minority of the bookings by 1-2 days
    rolled = data.draw(st.dictionaries(st.integers(0, len(days) - 1), st.integers(1, 2), max_size=(len(days) - 1) // 2))
    rows = [b(d + timedelta(days=rolled.get(i, 0)), -800) for i, d in enumerate(days)]
    [stream] = recurring_streams(rows)
    assert (stream.interval, stream.missed, stream.count, stream.direction) == ("monthly", 1, n - 1, "out")
    assert stream.next_expected == add_months(first, n)     # the usual day, not the rolled one
    assert (stream.median, stream.minimum, stream.maximum, stream.variation) == (800, 800, 800, 0)
    assert stream.total == Decimal(-800) * (n - 1)
    assert stream.is_active(stream.next_expected) and not stream.is_active(stream.next_expected + timedelta(days=6))


def test_too_many_skipped_bookings_are_not_a_stream():
    months = [0, 1, 2, 3, 5, 6, 7, 8]                         # 1 of 9 missing: monthly
    assert detect_interval([add_months(date(2025, 1, 1), i) for i in months]) == ("monthly", 1)
    assert detect_interval([add_months(date(2025, 1, 1), i) for i in (0, 2, 4, 5)]) is None  # 2 of 6 missing
    assert detect_interval([add_months(date(2025, 1, 1), i) for i in (0, 1, 3)]) == ("monthly", 1)  # 1 of 4


@pytest.mark.parametrize("late, capped", [(5, True), (6, False)])
def test_a_tolerance_cap_narrows_every_interval(late, capped):
    # quarterly allows 7 days by default; a provider whose rule says +- 5 days caps it (finleap-products.md s.6)
    days = [date(2025, 1, 15), date(2025, 4, 15), date(2025, 7, 15) + timedelta(days=late), date(2025, 10, 15)]
    assert detect_interval(days) == ("quarterly", 0)
    assert detect_interval(days, max_tolerance=5) == (("quarterly", 0) if capped else None)
    found = recurring_streams([b(d, -120, "insurance", "HUK") for d in days], max_tolerance=5)
    assert [s.interval for s in found] == (["quarterly"] if capped else [])


@pytest.mark.parametrize("step, interval, expected_next", [
    (timedelta(days=7), "weekly", date(2025, 3, 5)),
    (timedelta(days=14), "biweekly", date(2025, 4, 23)),
    (3, "quarterly", date(2027, 1, 15)),
    (6, "half_yearly", date(2029, 1, 15)),
    (12, "yearly", date(2033, 1, 15)),
])
def test_intervals(step, interval, expected_next):
    first = date(2025, 1, 15)
    days = [first + step * i for i in range(7)] if isinstance(step, timedelta) else \
        [add_months(first, step * i) for i in range(8)]
    [stream] = recurring_streams([b(d, 49.99, "insurance", "HUK") for d in days])
    assert (stream.interval, stream.missed, stream.next_expected) == (interval, 0, expected_next)


def test_yearly_needs_two_bookings_monthly_three():
    yearly = [b(date(2024, 3, 1), -300, "insurance", "HUK"), b(date(2025, 3, 3), -310, "insurance", "HUK")]
    assert [s.interval for s in recurring_streams(yearly)] == ["yearly"]
    monthly = [b(date(2025, m, 1), -9.99, "subscriptions", "Netflix") for m in (3, 4)]
    assert recurring_streams(monthly) == []
    assert [s.interval for s in recurring_streams(monthly, min_count=2)] == ["monthly"]


@settings(max_examples=150, deadline=None)
@given(start=st.dates(date(2019, 1, 1), date(2030, 12, 1)), gaps=st.lists(st.integers(9, 11), min_size=2,
                                                                              max_size=30))
def test_irregular_series_are_not_streams(start, gaps):
    # 9-11 day gaps are no multiple of a week (+-1), a fortnight (+-2) or a month (+-5): never regular
    days = [start]
    for g in gaps:
        days.append(days[-1] + timedelta(days=g))
    assert detect_interval(days) is None
    assert recurring_streams([b(d, -12.5, "groceries", "REWE") for d in days]) == []


@pytest.mark.parametrize("last, accepted", [("125.00", True), ("125.01", False), ("75.00", True), ("74.99", False)])
def test_amount_consistency_boundary(last, accepted):
    amounts = ["100.00", "100.00", "100.00", last]          # median 100: variation (max - min) / 100
    rows = [b(add_months(date(2025, 1, 2), i), -Decimal(a), "utilities", "Vattenfall") for i, a in enumerate(amounts)]
    found = recurring_streams(rows)
    assert bool(found) is accepted
    variation = abs(Decimal(last) - 100) / 100
    if accepted:
        assert found[0].variation == variation == Decimal("0.25")
    assert len(recurring_streams(rows, max_variation=None)) == 1                 # no amount rule: always
    assert len(recurring_streams(rows, max_variation=variation)) == 1            # at the boundary: included


def test_streams_are_split_by_direction_and_category():
    days = [add_months(date(2025, 1, 28), i) for i in range(4)]
    rows = [b(d, 2500, "salary", "Acme") for d in days] + [b(d, -25, "fees", "Acme") for d in days]
    rows += [b(d, -25, "subscriptions", "Acme") for d in days]
    found = recurring_streams(rows)
    assert sorted((s.category, s.direction) for s in found) == [("fees", "out"), ("salary", "in"),
                                                                ("subscriptions", "out")]
    assert found[0].category == "salary"
    # by counterparty only: the 8 debits fall on 4 days, and same-day pairs are no regular series
    merged = recurring_streams(rows, by_category=False)
    assert [(s.category, s.direction, s.count) for s in merged] == [("salary", "in", 4)]
    fees_only = recurring_streams([x for x in rows if x.category != "subscriptions"], by_category=False)
    assert sorted((s.category, s.direction) for s in fees_only) == [("fees", "out"), ("salary", "in")]


@settings(max_examples=15, deadline=None)
@given(seed=seeds, market=markets, anchor=anchors)
def test_generated_rent_and_salary_are_monthly_streams(seed, market, anchor):
    lg = ledger(seed, "salaried_renter", market, anchor, months=14)
    checking = next(a for a in lg.accounts if a.kind == "checking")
    found = recurring_streams(account_bookings(checking))
    by_category = {s.category: s for s in found}
    for category in ("rent", "salary"):
        expected = [t for t in checking.transactions if t.category == category]
        stream = by_category[category]
        assert stream.interval == "monthly" and stream.count == len(expected)
        assert stream.counterparty == expected[0].counterparty
        assert stream.first == expected[0].booking_date and stream.last == expected[-1].booking_date
        assert stream.total == sum((t.amount for t in expected), ZERO)
        assert stream.last < stream.next_expected <= add_months(stream.last, 1) + timedelta(days=5)
    for s in found:
        assert s.variation <= Decimal("0.25") and s.count == len(s.bookings) >= 2
        assert {x.counterparty for x in s.bookings} == {s.counterparty}


# --------------------------------------------------------------------------------------------------- categoriser

@settings(max_examples=10, deadline=None)
@given(seed=seeds, persona=personas, market=markets)
def test_categoriser_recovers_generated_categories_and_is_never_wrong(seed, persona, market):
    lg = ledger(seed, persona, market, date(2025, 6, 15), months=12)
    rows = [t for a in lg.accounts for t in a.transactions]
    hits = 0
    for t in rows:
        assert categorise(t.counterparty, t.description, t.amount, category=t.category) == t.category
        guess = categorise(t.counterparty, t.description, t.amount)
        assert guess in (t.category, None), (t.description, t.counterparty, t.category, guess)
        hits += guess == t.category
    assert hits >= 0.8 * len(rows)


@pytest.mark.parametrize("kwargs, expected", [
    ({"counterparty": "Unknown GmbH", "amount": Decimal("-12.30"), "mcc": 5411}, "groceries"),
    ({"counterparty": "Unknown GmbH", "amount": Decimal("12.30"), "mcc": "5411"}, "refund"),
    ({"counterparty": "Lufthansa Group", "amount": Decimal("-420"), "mcc": 3005}, "travel"),
    ({"counterparty": "X", "amount": Decimal("-1"), "mcc": 3300}, None),             # just outside 3000-3299
    ({"counterparty": "Acme", "text": "Gehalt Mai", "amount": Decimal("2850"), "gvc": 153}, "salary"),
    ({"counterparty": "DRV", "text": "RENTE 05/2025", "amount": Decimal("1200"), "gvc": "153"}, "pension"),
    ({"counterparty": "Anna", "text": "Danke", "amount": Decimal("50"), "gvc": 166}, "transfer_in"),
    ({"counterparty": "Anna", "text": "Danke", "amount": Decimal("-50"), "gvc": 166}, None),
    ({"counterparty": "Hausverwaltung", "text": "Dauerauftrag Miete Juni", "amount": Decimal("-800")}, "rent"),
    ({"counterparty": "Hausverwaltung", "text": "Dauerauftrag Miete Juni", "amount": Decimal("800")}, None),
    ({"counterparty": "REWE Markt GmbH", "text": "Kartenzahlung", "amount": Decimal("-30")}, "groceries"),
    ({"counterparty": "rewe markt  gmbh", "text": "", "amount": Decimal("5")}, "refund"),
    ({"counterparty": "Telekom Deutschland GmbH", "text": "", "amount": Decimal("-39.95")}, "communications"),
    ({"counterparty": "Somebody", "text": "", "amount": Decimal("-1"), "category": "taxi"}, "taxi"),
    ({"counterparty": "Somebody", "text": "", "amount": Decimal("-1"), "category": "unknown"}, None),
])
def test_categorise_rules(kwargs, expected):
    assert categorise(**kwargs) == expected


def test_booking_adapters_keep_order_and_sum():
    lg = ledger(3, "salaried_renter", "DE", date(2025, 6, 15))
    for account in lg.accounts:
        rows = account_bookings(account)
        assert [x.ref for x in rows] == [t.id for t in account.transactions]
        assert sum((x.amount for x in rows), ZERO) == account.balance - account.opening_balance


def test_next_expected_when_rolling_crossed_a_month_end():
    days = [date(2025, m, 28) for m in range(1, 6)] + [date(2025, 7, 1)]     # June's booking rolled to 1 July
    [stream] = recurring_streams([b(d, 3000, "salary", "Acme") for d in days])
    assert (stream.interval, stream.missed, stream.next_expected) == ("monthly", 0, date(2025, 7, 28))
    early = [date(2025, m, 1) for m in range(2, 7)] + [date(2025, 6, 30)]    # July's booking rolled to 30 June
    [stream] = recurring_streams([b(d, -800) for d in early])
    assert stream.next_expected == date(2025, 8, 1)
