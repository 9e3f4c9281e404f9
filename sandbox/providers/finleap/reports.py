"""finX reports (finleap.md section 5): the income report computed from finX transactions, and the account
verification report with its name ``affinity``.

All money is summed as Decimal cents; rendered totals therefore add up exactly:
disposable.total = income.total - sum(regular group totals), discretionary.total = disposable.total - sum(variable).
Months, monthly sums and stream grouping are the shared ledger analytics (sandbox/ledger/analytics.py).
"""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from ...ledger.analytics import (
    Booking,
    Month,
    add_months,
    first_of_month,
    group_streams,
    monthly_sums,
    months_between,
)
from .data import CATEGORIES, category_kind

CENT = Decimal("0.01")
ZERO = Decimal(0)
AFFINITY_ORDER = ["VERY_HIGH", "HIGH", "MEDIUM", "LOW"]
# finleap.md s.5 "Sandbox arithmetic": which category kinds feed which report section (fees are scheduled charges).
REGULAR_KINDS = {"regular", "fee"}
VARIABLE_KINDS = {"variable"}
INCOME_KINDS = {"income"}


# ---------------------------------------------------------------------------------------------- helpers

def report_window(today: date, period: int) -> tuple[date, date]:
    """The ``period`` complete calendar months before ``today``'s month: (first day, last day), finleap.md s.5
    (docs href example: today in 2025-06, period 12 -> since=2024-06-01, until=2025-05-31)."""
    if period < 1:
        raise ValueError("period must be >= 1")
    this_month = first_of_month(today)
    return add_months(this_month, -period), this_month - timedelta(days=1)


def _money(value: Decimal) -> float:
    """Decimal -> JSON number with two decimals (never ``-0.0``)."""
    q = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return float(q) if q != 0 else 0.0


def _ratio(part: Decimal, whole: Decimal) -> float:
    # finleap.md s.5: ratio = figure / income.summary.total, two decimals; 0.0 without income (sandbox decision)
    return _money(part / whole) if whole != 0 else 0.0


def _cents(amount) -> Decimal:
    return Decimal(str(amount)).quantize(CENT, rounding=ROUND_HALF_UP)


def _booking_day(t: dict) -> date | None:
    raw = t.get("booking_date")
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        return None


def _classify(transactions: list[dict], since: date, until: date) -> dict[str, list[Booking]]:
    """Split booked transactions in [since, until] into income / regular / variable entries (finleap.md s.5):
    Bookings with the finX category id and the (positive) reported amount."""
    out: dict[str, list[Booking]] = {"income": [], "regular": [], "variable": []}
    for t in transactions:
        # only booked transactions inside the window; a missing ``booked`` flag counts as booked (sandbox decision)
        if not t.get("booked", True):
            continue
        day = _booking_day(t)
        if day is None or not since <= day <= until:
            continue
        categories = t.get("categories") or []
        if not categories:
            continue
        category = categories[-1].get("id")     # the most specific category (general -> specific path)
        if category not in CATEGORIES:
            continue
        kind, amount = category_kind(category), _cents(t.get("amount") or 0)
        partner = t.get("name") or ""
        if kind in INCOME_KINDS and amount > 0:
            out["income"].append(Booking(day, amount, category, partner))
        elif kind in REGULAR_KINDS and amount < 0:
            out["regular"].append(Booking(day, -amount, category, partner))
        elif kind in VARIABLE_KINDS and amount < 0:
            out["variable"].append(Booking(day, -amount, category, partner))
        # transfers (card settlement, savings, investments) are ignored: card purchases are counted on the card
    return out


def _total(entries: list[Booking]) -> Decimal:
    return sum((e.amount for e in entries), ZERO)


def _summary(entries: list[Booking], months: list[Month]) -> dict:
    """``{total, low, high, average, count}``: low/high over monthly sums, an empty month counting 0 (s.5)."""
    monthly = list(monthly_sums(entries, months).values())
    total = _total(entries)
    return {"total": _money(total), "low": _money(min(monthly)), "high": _money(max(monthly)),
            "average": _money(total / len(months)), "count": len(entries)}


def _stream_object(stream) -> dict:
    """A finX stream (finleap.md s.5: same category and payment partner) from a shared-analytics Stream."""
    return {"category": {"id": stream.category, "name": CATEGORIES[stream.category][0]},
            "first_booked_on": stream.first.isoformat(), "last_booked_on": stream.last.isoformat()}


def _expense_groups(entries: list[Booking], months: list[Month]) -> list[dict]:
    """One group per category (a stream family), each with its own summary; groups sorted by total desc, id."""
    by_category: dict[int, list[Booking]] = defaultdict(list)
    for e in entries:
        by_category[e.category].append(e)
    ordered = sorted(by_category.items(), key=lambda kv: (-_total(kv[1]), kv[0]))
    # streams are ranked by total desc, payment partner, category (group_streams)
    return [{"summary": _summary(es, months), "streams": [_stream_object(s) for s in group_streams(es)]}
            for cat, es in ordered]


def _difference(income: list[Booking], minus: list[Booking], months: list[Month], income_total: Decimal) -> dict:
    """disposable / discretionary income (s.5): totals subtract, low/high over monthly differences."""
    inc, out = monthly_sums(income, months), monthly_sums(minus, months)
    diffs = [inc[m] - out[m] for m in months]
    total = _total(income) - _total(minus)
    return {"total": _money(total), "low": _money(min(diffs)), "high": _money(max(diffs)),
            "average": _money(total / len(months)), "ratio": _ratio(total, income_total)}


def build_income_report(transactions: list[dict], since: date, until: date, href_base: str) -> dict:
    """The finX income report (finleap.md s.5) over booked transactions of the report accounts in [since, until].

    Callers pass only Giro account and Credit card transactions; transfers between them are ignored.
    """
    if until < since:
        raise ValueError("until must not be before since")
    months = months_between(since, until)
    parts = _classify(transactions, since, until)
    income, regular, variable = parts["income"], parts["regular"], parts["variable"]

    income_total = _total(income)
    # href lists the income categories present; with no income all income categories (an empty filter would
    # otherwise match every transaction) -- sandbox decision
    cats = sorted({e.category for e in income}) or sorted(c for c, v in CATEGORIES.items() if v[2] in INCOME_KINDS)
    href = (f"{href_base.rstrip('/')}/rest/transactions?categories={','.join(map(str, cats))}"
            f"&since={since.isoformat()}&until={until.isoformat()}")
    ranked = group_streams(income)
    primary = {**_stream_object(ranked[0]), "payment_partner": ranked[0].counterparty} if ranked else None

    return {
        "period": len(months),
        "income": {
            "summary": {**_summary(income, months), "href": href},
            "streams": [_stream_object(s) for s in ranked],
            "primary": primary,
        },
        "regular_expenses": _expense_groups(regular, months),
        "variable_expenses": _expense_groups(variable, months),
        "disposable_income": _difference(income, regular, months, income_total),
        "discretionary_income": _difference(income, regular + variable, months, income_total),
    }


# ------------------------------------------------------------------------------------------ affinity

_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_SPACES = re.compile(r"\s+")


def _raw(name: str) -> str:
    """Case-insensitive raw form: NFC, casefold, trimmed, whitespace collapsed (VERY_HIGH compares these)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", name or "").casefold()).strip()


def _plain(text: str) -> str:
    """Drop remaining diacritics (é -> e, ä -> a) and turn punctuation (commas, dots, hyphens ...) into spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch if ch.isalnum() else " " for ch in decomposed if not unicodedata.combining(ch))


def _tokens(name: str) -> list[frozenset[str]]:
    """Normalised tokens of a name, each as its set of spellings: umlauts transliterated (ü -> ue) and stripped
    (ü -> u), finleap.md s.5. Tokens are sorted for a deterministic order."""
    raw = _raw(name)
    translit, stripped = _plain(raw.translate(_TRANSLIT)).split(), _plain(raw).split()
    # both variants split at the same places (transliteration only lengthens letters), so tokens align
    if len(translit) != len(stripped):          # defensive: fall back to one spelling per token
        return sorted((frozenset([t]) for t in translit), key=sorted)
    return sorted((frozenset(pair) for pair in zip(translit, stripped)), key=sorted)


def _same_token(a: frozenset[str], b: frozenset[str]) -> bool:
    return not a.isdisjoint(b)


def _same_multiset(left: list[frozenset[str]], right: list[frozenset[str]]) -> bool:
    """A perfect one-to-one matching of tokens exists (order-insensitive comparison of token multisets)."""
    if len(left) != len(right):
        return False
    match: dict[int, int] = {}          # right index -> left index

    def augment(i: int, seen: set[int]) -> bool:
        for j, token in enumerate(right):
            if j not in seen and _same_token(left[i], token):
                seen.add(j)
                if j not in match or augment(match[j], seen):
                    match[j] = i
                    return True
        return False

    return all(augment(i, set()) for i in range(len(left)))


def affinity(provided: str, holder: str) -> str:
    """How closely ``provided`` matches an account-holder name: VERY_HIGH | HIGH | MEDIUM | LOW (finleap.md s.5)."""
    a, b = _raw(provided), _raw(holder)
    if a and a == b:
        return "VERY_HIGH"                       # exact match, case-insensitive
    left, right = _tokens(provided), _tokens(holder)
    if not left or not right:
        return "LOW"                             # nothing comparable (sandbox decision)
    if _same_multiset(left, right):
        return "HIGH"                            # order / punctuation / umlaut transliteration only
    if any(_same_token(x, y) for x in left for y in right):
        return "MEDIUM"                          # partial similarity: a shared name token
    return "LOW"


def build_account_verification(report_id: str, provided_name: str, provided_iban: str | None, account: dict,
                               holders: list[str]) -> dict:
    """The account verification report (finleap.md s.5): the holder best matching ``provided_name``
    (ties -> first holder; no holders -> name null, LOW)."""
    best_name, best = None, "LOW"
    for holder in holders:
        level = affinity(provided_name, holder)
        if best_name is None or AFFINITY_ORDER.index(level) < AFFINITY_ORDER.index(best):
            best_name, best = holder, level
    return {
        "id": report_id,
        "provided": {"name": provided_name, "iban": provided_iban or account.get("iban")},
        "matched": {"name": best_name, "affinity": best},
        "account": {"name": account.get("name"), "type": account.get("type"), "owners": list(holders),
                    "iban": account.get("iban"), "currency": account.get("currency")},
    }
