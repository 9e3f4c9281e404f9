"""Provider-neutral analytics over bookings: months, monthly totals, streams and recurring-stream detection,
daily balance histories and a rule-based categoriser. Every provider report computes from these functions.

Money is Decimal throughout and summed exactly; nothing here reads a clock (callers pass their "today").
Imports nothing from ``sandbox.providers``: providers adapt their own records into :class:`Booking`.
"""
from __future__ import annotations

import calendar
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

from ..core.yamlio import load_yaml

from .generator import FIXTURES, add_months
from .models import CATEGORY_KINDS, Account, Transaction

ZERO = Decimal(0)
Month = tuple[int, int]            # (year, month): sortable, hashable month key


# --------------------------------------------------------------------------------------------------- records

@dataclass(frozen=True)
class Booking:
    """One booking as analytics sees it: signed amount (> 0 credit), the neutral ledger category (or a
    provider's own category key, e.g. finX ids, which analytics only compares and sorts) and the payment partner."""
    day: date
    amount: Decimal
    category: str | int
    counterparty: str
    text: str = ""
    ref: str | None = field(default=None, compare=False)   # the source transaction's id, for back-references


def booking_from_transaction(t: Transaction) -> Booking:
    """A ledger Transaction as a Booking (booking date, signed amount, ledger category, counterparty)."""
    return Booking(t.booking_date, t.amount, t.category, t.counterparty, t.description, t.id)


def bookings_from_transactions(transactions: Iterable[Transaction]) -> list[Booking]:
    """Ledger Transactions as Bookings, in their order."""
    return [booking_from_transaction(t) for t in transactions]


def account_bookings(accounts: Account | Iterable[Account]) -> list[Booking]:
    """Every booking of one or more ledger accounts, oldest first (stable for same-day bookings)."""
    accounts = [accounts] if isinstance(accounts, Account) else list(accounts)
    out = [booking_from_transaction(t) for a in accounts for t in a.transactions]
    out.sort(key=lambda b: b.day)
    return out


def kind_of(category) -> str | None:
    """The neutral kind of a category (income | regular | variable | fee | transfer); None for foreign keys."""
    return CATEGORY_KINDS.get(category) if isinstance(category, str) else None


def _day_amount(record) -> tuple[date, Decimal]:
    if isinstance(record, Booking):
        return record.day, record.amount
    return record.booking_date, record.amount      # ledger Transaction (or anything shaped like it)


# --------------------------------------------------------------------------------------------------- months

def first_of_month(d: date) -> date:
    """The first day of ``d``'s month."""
    return d.replace(day=1)


def last_of_month(d: date) -> date:
    """The last day of ``d``'s month."""
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def month_key(d: date) -> Month:
    """``d``'s month as a sortable ``(year, month)`` key."""
    return d.year, d.month


def month_label(m: Month) -> str:
    """A month key as ``YYYY-MM``."""
    return f"{m[0]:04d}-{m[1]:02d}"


def iter_months(since: date, until: date) -> Iterator[Month]:
    """Every calendar month touched by [since, until], oldest first (nothing when until < since)."""
    if until < since:
        return
    cursor = first_of_month(since)
    while cursor <= until:
        yield cursor.year, cursor.month
        cursor = add_months(cursor, 1)


def months_between(since: date, until: date) -> list[Month]:
    """``list(iter_months(since, until))``."""
    return list(iter_months(since, until))


# --------------------------------------------------------------------------------------------------- monthly totals

def monthly_sums(bookings: Iterable[Booking], months: Iterable[Month]) -> dict[Month, Decimal]:
    """Sum of amounts per month, every month of ``months`` present (0 when empty); other months are ignored."""
    sums = {m: ZERO for m in months}
    for b in bookings:
        key = (b.day.year, b.day.month)
        if key in sums:
            sums[key] += b.amount
    return sums


def default_is_income(b: Booking) -> bool:
    """Default income: a credit that is not an internal transfer."""
    return b.amount > 0 and kind_of(b.category) != "transfer"


def default_is_expense(b: Booking) -> bool:
    """Default expense: a debit that is not an internal transfer."""
    return b.amount < 0 and kind_of(b.category) != "transfer"


@dataclass
class MonthlyTotals:
    """Per-month income and expense (both >= 0 for the default rules) and the same split by category."""
    months: list[Month]
    income: dict[Month, Decimal]
    expense: dict[Month, Decimal]
    income_by_category: dict[object, dict[Month, Decimal]]
    expense_by_category: dict[object, dict[Month, Decimal]]

    @property
    def net(self) -> dict[Month, Decimal]:
        """income - expense per month."""
        return {m: self.income[m] - self.expense[m] for m in self.months}

    @property
    def by_category(self) -> dict[object, dict[Month, Decimal]]:
        """Signed sum per category and month of the counted bookings; over categories it adds up to ``net``."""
        out: dict[object, dict[Month, Decimal]] = {}
        for c in set(self.income_by_category) | set(self.expense_by_category):
            inc, exp = self.income_by_category.get(c, {}), self.expense_by_category.get(c, {})
            out[c] = {m: inc.get(m, ZERO) - exp.get(m, ZERO) for m in self.months}
        return out


def monthly_totals(bookings: Iterable[Booking], months: Iterable[Month] | None = None, *,
                   is_income: Callable[[Booking], bool] = default_is_income,
                   is_expense: Callable[[Booking], bool] = default_is_expense) -> MonthlyTotals:
    """Income (sum of ``is_income`` bookings) and expense (minus the sum of ``is_expense`` bookings) per month and
    per category and month. ``months`` defaults to every month from the first to the last booking; bookings in
    other months are ignored. A booking matching both predicates counts as income."""
    bookings = list(bookings)
    if months is None:
        days = [b.day for b in bookings]
        months = months_between(min(days), max(days)) if days else []
    months = list(months)
    wanted = set(months)
    income = {m: ZERO for m in months}
    expense = {m: ZERO for m in months}
    inc_cat: dict[object, dict[Month, Decimal]] = {}
    exp_cat: dict[object, dict[Month, Decimal]] = {}
    for b in bookings:
        key = (b.day.year, b.day.month)
        if key not in wanted:
            continue
        if is_income(b):
            income[key] += b.amount
            row = inc_cat.setdefault(b.category, {m: ZERO for m in months})
            row[key] += b.amount
        elif is_expense(b):
            expense[key] -= b.amount
            row = exp_cat.setdefault(b.category, {m: ZERO for m in months})
            row[key] -= b.amount
    return MonthlyTotals(months, income, expense, inc_cat, exp_cat)


# --------------------------------------------------------------------------------------------------- streams

@dataclass(frozen=True)
class Stream:
    """Bookings of one category with one payment partner, oldest first."""
    category: object
    counterparty: str
    bookings: tuple[Booking, ...]

    @property
    def total(self) -> Decimal:
        return sum((b.amount for b in self.bookings), ZERO)

    @property
    def count(self) -> int:
        return len(self.bookings)

    @property
    def first(self) -> date:
        return self.bookings[0].day

    @property
    def last(self) -> date:
        return self.bookings[-1].day


def _sort_key(value) -> tuple:
    return (0, value, "") if isinstance(value, (int, float, Decimal)) else (1, 0, str(value))


def group_streams(bookings: Iterable[Booking]) -> list[Stream]:
    """Group bookings by (category, counterparty); ranked by |total| desc, then counterparty, then category."""
    groups: dict[tuple, list[Booking]] = defaultdict(list)
    for b in bookings:
        groups[(b.category, b.counterparty)].append(b)
    streams = [Stream(cat, partner, tuple(sorted(bs, key=lambda b: b.day))) for (cat, partner), bs in groups.items()]
    streams.sort(key=lambda s: (-abs(s.total), s.counterparty, _sort_key(s.category)))
    return streams


# ------------------------------------------------------------------------------------------- recurring streams

# name -> (unit, step, tolerance in days): gaps between bookings must be whole multiples of the step, give or take
# the tolerance (weekend/holiday rolling of the generator and of real banks moves a booking by up to ~3 days).
INTERVALS: dict[str, tuple[str, int, int]] = {
    "weekly": ("days", 7, 1),
    "biweekly": ("days", 14, 2),
    "monthly": ("months", 1, 5),
    "bimonthly": ("months", 2, 6),
    "quarterly": ("months", 3, 7),
    "half_yearly": ("months", 6, 10),
    "yearly": ("months", 12, 14),
}
# fewest bookings that make a stream of an interval (a yearly contract seen twice is already a stream)
MIN_COUNT = {"weekly": 4, "biweekly": 3, "monthly": 3, "bimonthly": 3, "quarterly": 3, "half_yearly": 2,
             "yearly": 2}
_DAYS_PER_MONTH = 30.436875


@dataclass(frozen=True)
class RecurringStream:
    """A recurring stream: interval, amount statistics over |amount| and the expected next booking."""
    category: object
    counterparty: str
    direction: str                  # "in" (credits) | "out" (debits)
    interval: str                   # key of INTERVALS
    count: int
    missed: int                     # expected bookings that did not happen between first and last
    first: date
    last: date
    next_expected: date
    median: Decimal                 # of |amount|
    minimum: Decimal
    maximum: Decimal
    variation: Decimal              # (maximum - minimum) / median
    total: Decimal                  # signed sum
    bookings: tuple[Booking, ...]

    def is_active(self, today: date) -> bool:
        """Still running on ``today``: the next booking is not overdue beyond the interval's tolerance."""
        return today <= self.next_expected + timedelta(days=INTERVALS[self.interval][2])


def _fit(days: list[date], name: str, max_tolerance: int | None = None) -> int | None:
    """Missed bookings if every gap is a whole number of ``name`` intervals within tolerance (at most
    ``max_tolerance`` days when given), else None."""
    unit, step, tol = INTERVALS[name]
    if max_tolerance is not None:
        tol = min(tol, max_tolerance)
    missed = 0
    for a, b in zip(days, days[1:]):
        gap = (b - a).days
        if unit == "days":
            n = max(1, round(gap / step))
            deviation = abs(gap - n * step)
        else:
            n = max(1, round(gap / (_DAYS_PER_MONTH * step)))
            deviation = abs((b - add_months(a, n * step)).days)
        if deviation > tol:
            return None
        missed += n - 1
    return missed


def detect_interval(days: list[date], max_missed_share: Decimal = Decimal("0.25"),
                    max_tolerance: int | None = None) -> tuple[str, int] | None:
    """The interval of sorted booking days and the bookings missed, or None if irregular: fewest missed wins,
    then the longest interval; at most ``max_missed_share`` of the expected bookings may be missing and no gap
    may deviate more than the interval's tolerance (capped at ``max_tolerance`` days when given)."""
    best = None
    for order, name in enumerate(INTERVALS):
        missed = _fit(days, name, max_tolerance)
        if missed is None or missed > max_missed_share * (len(days) + missed):
            continue
        if best is None or (missed, -order) < (best[1], -best[2]):
            best = (name, missed, order)
    return (best[0], best[1]) if best else None


def _next_expected(days: list[date], interval: str) -> date:
    unit, step, _ = INTERVALS[interval]
    last = days[-1]
    if unit == "days":
        return last + timedelta(days=step)
    # the usual day of the month (median_low of the days), so a weekend-rolled booking does not shift the schedule;
    # the last booking's scheduled date is the usual day nearest to it (rolling may cross a month end)
    day = statistics.median_low(d.day for d in days)

    def on_day(month_start: date) -> date:
        return month_start.replace(day=min(day, calendar.monthrange(month_start.year, month_start.month)[1]))

    scheduled = min((on_day(add_months(first_of_month(last), k)) for k in (-1, 0, 1)),
                    key=lambda d: abs((d - last).days))
    return on_day(add_months(first_of_month(scheduled), step))


def recurring_streams(bookings: Iterable[Booking], *, max_variation: Decimal | None = Decimal("0.25"),
                      min_count: int | None = None, max_missed_share: Decimal = Decimal("0.25"),
                      by_category: bool = True, max_tolerance: int | None = None) -> list[RecurringStream]:
    """Recurring streams among ``bookings``: grouped by counterparty (+ category) and direction, regular gaps
    (weekly .. yearly, a few skipped bookings allowed) and consistent amounts ((max - min) / median <=
    ``max_variation``; None accepts any). Ranked by |total| desc, counterparty, category."""
    groups: dict[tuple, list[Booking]] = defaultdict(list)
    for b in bookings:
        if b.amount == 0:
            continue
        key = (b.category if by_category else None, b.counterparty, "in" if b.amount > 0 else "out")
        groups[key].append(b)
    found = []
    for (category, partner, direction), bs in groups.items():
        bs.sort(key=lambda b: b.day)
        days = [b.day for b in bs]
        fit = detect_interval(days, max_missed_share, max_tolerance)
        if fit is None:
            continue
        interval, missed = fit
        if len(bs) < (min_count if min_count is not None else MIN_COUNT[interval]):
            continue
        amounts = [abs(b.amount) for b in bs]
        median = statistics.median(amounts)
        lo, hi = min(amounts), max(amounts)
        variation = (hi - lo) / median
        if max_variation is not None and variation > max_variation:
            continue
        if not by_category:    # the stream's category: the most frequent one (ties -> smallest key)
            counts: dict = defaultdict(int)
            for b in bs:
                counts[b.category] += 1
            category = min(counts, key=lambda c: (-counts[c], _sort_key(c)))
        found.append(RecurringStream(
            category=category, counterparty=partner, direction=direction, interval=interval, count=len(bs),
            missed=missed, first=days[0], last=days[-1], next_expected=_next_expected(days, interval),
            median=median, minimum=lo, maximum=hi, variation=variation,
            total=sum((b.amount for b in bs), ZERO), bookings=tuple(bs)))
    found.sort(key=lambda s: (-abs(s.total), s.counterparty, _sort_key(s.category), s.direction))
    return found


# --------------------------------------------------------------------------------------------------- balances

def balance_history(current_balance: Decimal, transactions: Iterable, since: date,
                    until: date) -> list[tuple[date, Decimal]]:
    """End-of-day balances for every day of [since, until], rolled back exactly from ``current_balance`` (the
    balance after all of ``transactions``, Bookings or ledger Transactions): balance(d) = current - bookings after d."""
    if until < since:
        raise ValueError("until must not be before since")
    per_day: dict[date, Decimal] = defaultdict(Decimal)
    after_until = ZERO
    for record in transactions:
        day, amount = _day_amount(record)
        if day > until:
            after_until += amount
        elif day > since:
            per_day[day] += amount        # bookings on or before ``since`` never need rolling back
    balance = current_balance - after_until
    out = []
    day = until
    while True:
        out.append((day, balance))
        if day == since:
            break
        balance -= per_day.get(day, ZERO)
        day -= timedelta(days=1)
    out.reverse()
    return out


# --------------------------------------------------------------------------------------------------- categoriser

RULES_FILE = FIXTURES / "categorisation.yaml"


class _Rule:
    __slots__ = ("category", "sign", "gvc", "text", "counterparty")

    def __init__(self, raw: dict):
        self.category = raw["category"]
        if self.category not in CATEGORY_KINDS:
            raise ValueError(f"categorisation rule with unknown category {self.category!r}")
        self.sign = raw.get("sign")
        if self.sign not in (None, "credit", "debit"):
            raise ValueError(f"categorisation rule sign must be credit or debit, not {self.sign!r}")
        self.gvc = frozenset(_gvc(g) for g in raw["gvc"]) if raw.get("gvc") else None
        self.text = [re.compile(p, re.IGNORECASE) for p in raw.get("text") or []] or None
        self.counterparty = [re.compile(p, re.IGNORECASE) for p in raw.get("counterparty") or []] or None

    def matches(self, sign: str | None, gvc: str | None, text: str, counterparty: str) -> bool:
        return ((self.sign is None or self.sign == sign)
                and (self.gvc is None or gvc in self.gvc)
                and (self.text is None or any(p.search(text) for p in self.text))
                and (self.counterparty is None or any(p.search(counterparty) for p in self.counterparty)))


def _gvc(code) -> str:
    return f"{int(code):03d}"


def _name(text: str) -> str:
    return " ".join(str(text or "").casefold().split())


@dataclass(frozen=True)
class Categoriser:
    """Rule tables loaded from a fixture file (see fixtures/categorisation.yaml for the order of evaluation)."""
    mcc: tuple[tuple[int, int, str], ...]           # (low, high, category), inclusive code ranges
    rules: tuple[_Rule, ...]
    names: dict[str, str]                           # casefolded payee / merchant -> category of debits
    payers: dict[str, str]                          # casefolded payer -> category of credits
    merchants: frozenset[str]                       # casefolded merchant names (credits from them are refunds)
    fallback: tuple[_Rule, ...]

    def __call__(self, counterparty: str = "", text: str = "", amount: Decimal | None = None, *,
                 mcc=None, gvc=None, category: str | None = None) -> str | None:
        if category in CATEGORY_KINDS:
            return category
        sign = None if amount is None or amount == 0 else ("credit" if amount > 0 else "debit")
        if mcc not in (None, ""):
            code = int(mcc)
            for lo, hi, cat in self.mcc:
                if lo <= code <= hi:
                    return "refund" if sign == "credit" else cat
        gvc_code = _gvc(gvc) if gvc not in (None, "") else None
        text, partner = str(text or ""), str(counterparty or "")
        for rule in self.rules:
            if rule.matches(sign, gvc_code, text, partner):
                return rule.category
        key = _name(partner)
        if key in self.names and sign != "credit":
            return self.names[key]
        if key in self.payers and sign == "credit":
            return self.payers[key]
        if key in self.merchants and sign == "credit":
            return "refund"
        for rule in self.fallback:
            if rule.matches(sign, gvc_code, text, partner):
                return rule.category
        return None


def load_categoriser(path=RULES_FILE, markets_dir=FIXTURES / "markets") -> Categoriser:
    """Build a Categoriser from a rules file plus the payment partners named in the market fixtures."""
    data = load_yaml(path)
    mcc = []
    for cat, codes in (data.get("mcc") or {}).items():
        if cat not in CATEGORY_KINDS:
            raise ValueError(f"mcc table with unknown category {cat!r}")
        for code in codes:
            lo, _, hi = str(code).partition("-")
            mcc.append((int(lo), int(hi or lo), cat))
    payee_categories = data.get("payee_categories") or {}
    payer_categories = data.get("payer_categories") or {}
    for cat in [*payee_categories.values(), *payer_categories.values()]:
        if cat not in CATEGORY_KINDS:
            raise ValueError(f"name table with unknown category {cat!r}")
    names: dict[str, str] = {}
    payers: dict[str, str] = {}
    merchants: set[str] = set()
    ambiguous: set[str] = set()

    def add(name: str, cat: str, table: dict = names) -> None:
        key = _name(name)
        if table.get(key, cat) != cat:
            ambiguous.add(key)          # e.g. one name in two merchant lists: the name alone cannot decide
        table[key] = cat

    for market in sorted(markets_dir.glob("*.yaml")):
        m = load_yaml(market)
        for cat, merchant_names in (m.get("merchants") or {}).items():
            for n in merchant_names:
                add(n, cat)
                merchants.add(_name(n))
        for payee, spec in (m.get("payees") or {}).items():
            if payee in payee_categories:
                for n in spec.get("names") or []:
                    add(n, payee_categories[payee])
        for source, cat in payer_categories.items():
            for n in m.get(source) or []:
                add(n, cat, payers)
    for key in ambiguous:
        names.pop(key, None)
        payers.pop(key, None)
    return Categoriser(tuple(mcc), tuple(_Rule(r) for r in data.get("rules") or []), names, payers,
                       frozenset(merchants), tuple(_Rule(r) for r in data.get("fallback") or []))


@lru_cache(maxsize=1)
def default_categoriser() -> Categoriser:
    """The categoriser of fixtures/categorisation.yaml (loaded once)."""
    return load_categoriser()


def categorise(counterparty: str = "", text: str = "", amount: Decimal | None = None, *, mcc=None, gvc=None,
               category: str | None = None) -> str | None:
    """The neutral category of a booking: the ledger's own ``category`` when given, else the first hit of the
    fixture rules (MCC, GVC/text rules, known payment partners, fallbacks); None when nothing matches."""
    return default_categoriser()(counterparty, text, amount, mcc=mcc, gvc=gvc, category=category)


def categorise_booking(b: Booking, *, mcc=None, gvc=None) -> str | None:
    """``categorise`` for a Booking (its category is used when it is a neutral ledger category)."""
    return categorise(b.counterparty, b.text, b.amount, mcc=mcc, gvc=gvc,
                      category=b.category if isinstance(b.category, str) else None)
