"""Pure computations of the finoOS cockpit blocks (fino.md section 10 "Cockpits"), from one user's stored accounts and
transactions. No storage, no clock: the caller passes the bookings, optional per-transaction tags (categorization)
and the day the analysis ran. Everything is O(n log n) in the number of bookings.

Conventions (all **(inferred)**, the reference publishes block names but no computation rules):
- The *window* is the last 12 complete calendar months up to the month of the newest booking (fewer when the
  bookings start later); the month the analysis runs in is still running and never part of it. Months are
  ``YYYY-MM``. Per-part amounts (``income.salary``, ``spending.rental``, ...) are
  monthly averages over the window (sum / number of window months, rounded half-up to cents) and every
  ``…Props{amount, transactionIDs}`` holds the window's sum and the ids of exactly those bookings.
  ``income.total`` / ``spending.total`` are the sums of their (rounded) parts.
- Spending amounts are positive (outflows); credit transfers between the user's own accounts (counterparty IBAN of
  one of the user's accounts, "Umbuchung") are internal and count neither as income nor as spending.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable
from zoneinfo import ZoneInfo

from ...ledger.analytics import categorise

BERLIN = ZoneInfo("Europe/Berlin")
CENT = Decimal("0.01")
ZERO = Decimal(0)
WINDOW_MONTHS = 12
VERSION = "1.0.0"

# --- cockpit categories (fino.md section 10: the category names of the sandbox tree) ------------------------------
EARNING_CATEGORIES = ("salary", "pension", "child-benefit", "parental-allowance", "rental", "alimony")
SPENDING_CONTRACT_CATEGORIES = ("rent", "insurance", "credit", "contract", "security-saving-plan")
HOUSEHOLD_CATEGORIES = ("groceries", "mobility", "clothing", "recreational", "vacation", "cash-withdrawal")
KNOWN = (*EARNING_CATEGORIES, *SPENDING_CONTRACT_CATEGORIES, *HOUSEHOLD_CATEGORIES, "internal-transfer")
OTHER_EARNING, OTHER_SPENDING, CREDIT_CARD = "other-earning", "other-spending", "credit-card"
# householdExpenditure keys (camelCase as the block lists them)
HOUSEHOLD_KEYS = {"cash-withdrawal": "cashWithdrawal", "clothing": "clothing", "groceries": "groceries",
                  "mobility": "mobility", OTHER_SPENDING: "other", "recreational": "recreational",
                  "vacation": "vacation"}
LOAN_TYPES = ("KREDIT_KONTO", "KREDITDARLEHEN")
DEPOT_TYPES = ("DEPOT", "FONDSDEPOT")
CARD_TYPE = "KREDIT_KARTE"
KINDERGELD_PER_CHILD = Decimal(250)   # Kindergeld per child and month since 2023 (BKGG section 6)

# neutral ledger categories (fixtures/categorisation.yaml) -> cockpit categories, for bookings without a tag
_NEUTRAL = {
    "salary": "salary", "pension": "pension", "rent": "rent", "insurance": "insurance", "groceries": "groceries",
    "fuel": "mobility", "public_transport": "mobility", "taxi": "mobility", "shopping": "clothing",
    "restaurants": "recreational", "coffee": "recreational", "leisure": "recreational", "travel": "vacation",
    "cash_withdrawal": "cash-withdrawal", "utilities": "contract", "communications": "contract",
    "subscriptions": "contract", "education": "contract", "mortgage": "credit", "loan_repayment": "credit",
    "securities_purchase": "security-saving-plan", "savings_transfer": "internal-transfer",
}
_TEXT_CREDIT = (("kindergeld", "child-benefit"), ("familienkasse", "child-benefit"),
                ("elterngeld", "parental-allowance"), ("unterhalt", "alimony"), ("miete", "rental"),
                ("rente", "pension"), ("gehalt", "salary"), ("lohn", "salary"), ("salary", "salary"))
_TEXT_DEBIT = (("kreditkartenabrechnung", CREDIT_CARD), ("ausgleich kreditkarte", CREDIT_CARD),
               ("umbuchung", "internal-transfer"), ("miete", "rent"), ("versicherung", "insurance"),
               ("darlehen", "credit"), ("tilgung", "credit"), ("baufinanzierung", "credit"),
               ("ratenkredit", "credit"), ("sparplan", "security-saving-plan"))
_PURPOSE_DEBIT = {"RENT": "rent", "INSU": "insurance", "LOAR": "credit", "SECU": "security-saving-plan",
                  "CCRD": CREDIT_CARD}
_PURPOSE_CREDIT = {"SALA": "salary", "PENS": "pension"}
_RETURN_TEXTS = ("rücklastschrift", "ruecklastschrift", "retoure", "lastschriftrückgabe")
_TERMINAL_TEXTS = ("sumup", "payone", "concardis", "kartenumsatz", "ec-cash", "girocard-umsatz", "zettle")
_PAYROLL_TEXTS = ("lohn/gehalt", "gehalt", "lohn ")
_SOCIAL_TEXTS = ("beitragsnachweis", "sozialversicherung", "krankenkasse")


def q2(value: Decimal) -> Decimal:
    """Rounded half-up to cents."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def num(value: Decimal) -> float:
    """A money amount as finoOS renders numbers (a JSON number with at most two decimals)."""
    return float(q2(value))


def money_text(value: Decimal) -> str:
    """Contract-like items carry ``amount`` as a string ("10.33", fino.md section 10)."""
    return f"{q2(value):.2f}"


@dataclass(frozen=True)
class Tx:
    """One booking as the cockpit sees it."""
    id: str
    account: str
    amount: Decimal
    day: date
    month: str
    name: str
    iban: str
    creditor: str
    text: str
    gvc: int
    mcc: str
    category: str

    @property
    def is_credit(self) -> bool:
        return self.amount > 0


def berlin_day(epoch: int) -> date:
    """The Berlin calendar day of a booking instant (Unix seconds, section 13)."""
    return datetime.fromtimestamp(int(epoch), BERLIN).date()


def month_of(d: date) -> str:
    """``YYYY-MM`` (the cockpit's month format, section 10, inferred)."""
    return f"{d.year:04d}-{d.month:02d}"


def add_month(month: str, n: int) -> str:
    """``month`` moved by ``n`` months."""
    y, m = int(month[:4]), int(month[5:])
    k = y * 12 + (m - 1) + n
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


def months_range(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``, both included."""
    out, m = [], first
    while m <= last:
        out.append(m)
        m = add_month(m, 1)
    return out


# --- classification --------------------------------------------------------------------------------------------
def classify(doc: dict, own_ibans: frozenset, card_connected: bool, tags: Iterable[str] | None = None) -> str:
    """The cockpit category of one stored transaction: the categorization's category tag when it has one, else the
    sandbox's rules (own-account IBAN -> internal transfer; SEPA purpose code; German booking-text keywords; the
    neutral categoriser on counterparty, text, GVC and MCC); ``other-earning`` / ``other-spending`` otherwise."""
    amount = Decimal(str(doc.get("amount") or 0))
    partner = doc.get("paymentPartner") or {}
    iban = (partner.get("iban") or "").replace(" ", "").upper()
    if iban and iban in own_ibans:
        return "internal-transfer"
    text = f"{doc.get('bookingText') or ''} {doc.get('purpose') or ''}".casefold()
    purpose_code = (doc.get("sepaPurposeCode") or "").upper()
    if amount < 0 and (purpose_code == "SSBE" or "beitragsnachweis" in text):
        return OTHER_SPENDING   # an employer's social-security contributions (SSBE): no insurance contract
    if amount < 0 and (purpose_code == "CCRD" or "kreditkartenabrechnung" in text or "ausgleich kreditkarte" in text):
        # a card bill: internal when the card account is connected (its bookings count there), else card spending
        return "internal-transfer" if card_connected else CREDIT_CARD
    for tag in tags or ():
        if tag in KNOWN:
            return tag
    name = partner.get("name") or ""
    if amount > 0:
        if purpose_code in _PURPOSE_CREDIT:
            return _PURPOSE_CREDIT[purpose_code]
        low = f"{text} {name.casefold()}"
        for word, cat in _TEXT_CREDIT:
            if word in low:
                return cat
        neutral = categorise(name, text, amount, mcc=doc.get("merchantCategoryCode") or None,
                             gvc=doc.get("transactionCode") or None)
        return _NEUTRAL.get(neutral, OTHER_EARNING) if neutral in ("salary", "pension") else OTHER_EARNING
    cat = _PURPOSE_DEBIT.get(purpose_code)
    if cat is None:
        for word, found in _TEXT_DEBIT:
            if word in text:
                cat = found
                break
    if cat is None:
        neutral = categorise(name, text, amount, mcc=doc.get("merchantCategoryCode") or None,
                             gvc=doc.get("transactionCode") or None)
        cat = CREDIT_CARD if neutral == "card_settlement" else _NEUTRAL.get(neutral, OTHER_SPENDING)
        if cat in EARNING_CATEGORIES:
            cat = OTHER_SPENDING
    if cat == CREDIT_CARD and card_connected:
        return "internal-transfer"   # the card's own bookings are counted on the card account
    return cat


def normalise(accounts: list[dict], transactions: dict[str, list[dict]],
              tags: dict[str, list[str]] | None = None) -> list[Tx]:
    """Every booking of the user as a ``Tx``, oldest first (ties by id)."""
    own = frozenset((a.get("iban") or "").replace(" ", "").upper() for a in accounts if a.get("iban"))
    card_connected = any(a.get("type") == CARD_TYPE for a in accounts)
    out = []
    for account in accounts:
        for doc in transactions.get(account["accountId"], ()):
            if not doc.get("transactionId") or not isinstance(doc.get("bookingDate"), int):
                continue   # not a booking the upload schema admits (defensive: a run never fails on one)
            day = berlin_day(doc["bookingDate"])
            partner = doc.get("paymentPartner") or {}
            out.append(Tx(doc["transactionId"], account["accountId"], Decimal(str(doc.get("amount") or 0)), day,
                          month_of(day), partner.get("name") or "", (partner.get("iban") or "").replace(" ", "").upper(),
                          partner.get("creditorId") or "",
                          f"{doc.get('bookingText') or ''} {doc.get('purpose') or ''}".strip(),
                          int(doc.get("transactionCode") or 0), str(doc.get("merchantCategoryCode") or ""),
                          classify(doc, own, card_connected, (tags or {}).get(doc["transactionId"]))))
    out.sort(key=lambda t: (t.day, t.id))
    return out


# --- the window ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    months: list[str]
    txs: list[Tx]   # bookings inside the window

    @property
    def size(self) -> int:
        return max(len(self.months), 1)


def window(txs: list[Tx], today: date) -> Window:
    """The last WINDOW_MONTHS complete months up to the newest booking's month (see the module docstring): when
    the newest booking falls in the month of ``today`` (the run), that month is still running and is left out."""
    if not txs:
        return Window([], [])
    last = txs[-1].month
    if last >= month_of(today):
        last = add_month(month_of(today), -1)
    first = max(txs[0].month, add_month(last, -(WINDOW_MONTHS - 1)))
    if first > last:
        return Window([], [])
    return Window(months_range(first, last), [t for t in txs if first <= t.month <= last])


def props(items: list[Tx]) -> dict:
    """``…Props{amount, transactionIDs}``: the window's (absolute) sum and the ids behind it."""
    return {"amount": num(sum((abs(t.amount) for t in items), ZERO)), "transactionIDs": [t.id for t in items]}


def average(items: list[Tx], w: Window) -> Decimal:
    """The monthly average of the bookings' absolute amounts over the window."""
    return q2(sum((abs(t.amount) for t in items), ZERO) / w.size)


def per_month(items: list[Tx], w: Window) -> dict[str, Decimal]:
    """Absolute sums per window month (every month present, zero when nothing was booked)."""
    sums = {m: ZERO for m in w.months}
    for t in items:
        if t.month in sums:
            sums[t.month] += abs(t.amount)
    return sums


def median(values: list[Decimal]) -> Decimal:
    """The median, rounded to cents (0 for no values)."""
    return q2(statistics.median(values)) if values else ZERO


# --- contract-like items -----------------------------------------------------------------------------------------
def interval_of(days: list[date]) -> str:
    """MONTHLY, QUARTERLY, ... from the median gap between bookings (section 10 contracts enum)."""
    if len(days) < 2:
        return "ONCE"
    gap = statistics.median((b - a).days for a, b in zip(days, days[1:]))
    for limit, name in ((10, "WEEKLY"), (45, "MONTHLY"), (110, "QUARTERLY"), (220, "HALF_YEARLY")):
        if gap <= limit:
            return name
    return "ANNUALLY"


_INTERVAL_DAYS = {"WEEKLY": 7, "MONTHLY": 31, "QUARTERLY": 92, "HALF_YEARLY": 183, "ANNUALLY": 366, "ONCE": 31}


def contract_items(items: list[Tx], category: str, today: date, logos: dict | None = None) -> list[dict]:
    """Contract-like items (fino.md section 10 "Common cockpit blocks"): the bookings grouped by payment partner
    (creditor id, else IBAN, else name); amount = the newest booking's absolute amount; active while the next booking
    is not overdue by more than half an interval."""
    groups: dict[str, list[Tx]] = defaultdict(list)
    for t in items:
        groups[t.creditor or t.iban or t.name.casefold() or t.text.casefold()].append(t)
    out = []
    for key, group in groups.items():
        days = [t.day for t in group]
        interval = interval_of(days)
        newest = group[-1]
        active = (today - newest.day).days <= _INTERVAL_DAYS[interval] * 1.5
        amounts = {abs(t.amount) for t in group}
        out.append({"amount": money_text(abs(newest.amount)),
                    "attributes": ["fix" if len(amounts) == 1 else "variabel", "recurring" if len(group) > 1 else
                                   "nonRecurring"],
                    "bookingText": newest.text, "category": category,
                    "contractPartner": {"creditorId": newest.creditor, "iban": newest.iban, "name": newest.name},
                    "interval": interval, "isActive": active, "logo": (logos or {}).get(newest.name, ""),
                    "transactionIDs": [t.id for t in group]})
    out.sort(key=lambda i: (-Decimal(i["amount"]), i["contractPartner"]["name"], i["transactionIDs"][0]))
    return out


def contracts_from_detection(detected, fallback: list[dict]) -> list[dict]:
    """The cockpit's ``contracts[]`` from the contracts result (detection area) when it is there, in the
    contract-like item shape; else ``fallback``."""
    items = detected.get("contracts") if isinstance(detected, dict) else detected
    if not isinstance(items, list) or not items:
        return fallback
    out = []
    try:
        for c in items:
            partner = c.get("contractPartner") or {}
            creditor = (partner.get("creditorIds") or [""])[0]
            out.append({"amount": money_text(abs(Decimal(str(c.get("amount") or 0)))),
                        "attributes": list(c.get("attributes") or []), "bookingText": c.get("mref") or "",
                        "category": str(c.get("category") or ""),
                        "contractPartner": {"creditorId": creditor, "iban": partner.get("iban") or "",
                                            "name": partner.get("name") or ""},
                        "interval": str(c.get("interval") or ""), "isActive": bool(c.get("isActive")), "logo": "",
                        "transactionIDs": [t["transactionId"] if isinstance(t, dict) else str(t)
                                           for t in c.get("transactions") or []]})
    except (AttributeError, TypeError, KeyError, ArithmeticError, ValueError):
        return fallback
    return out


# --- balances ----------------------------------------------------------------------------------------------------
def daily_balances(balance: Decimal, items: list[Tx], since: date, until: date) -> list[tuple[date, Decimal]]:
    """End-of-day balances from ``since`` to ``until``, rolled back from the current ``balance`` through the
    bookings (the account history rule of section 10)."""
    per_day: dict[date, Decimal] = defaultdict(Decimal)
    for t in items:
        per_day[t.day] += t.amount
    after = sum((v for d, v in per_day.items() if d > until), ZERO)
    running = balance - after
    out = []
    day = until
    while day >= since:
        out.append((day, running))
        running -= per_day.get(day, ZERO)
        day -= timedelta(days=1)
    out.reverse()
    return out


def histories_from_detection(history) -> dict[str, list[tuple[date, Decimal]]]:
    """{accountId: [(day, balance)]} from the account-history result (detection area), {} when absent."""
    out = {}
    try:
        for h in (history or {}).get("histories") or []:
            out[h["account"]["accountId"]] = [(date.fromisoformat(b["date"]), Decimal(str(b["balance"])))
                                              for b in h.get("dailyBalances") or []]
    except (AttributeError, TypeError, KeyError, ValueError, ArithmeticError):
        return {}
    return out


# --- shared blocks -----------------------------------------------------------------------------------------------
def observation_period(txs: list[Tx]) -> dict:
    """``observationPeriod``: first/last booking (ISO and German ``DD.MM.YYYY``), a gap = a calendar month without
    any booking in between; score = covered months out of 12 (x 100, capped), minus 25 with a gap."""
    if not txs:
        return {"firstTransactionDate": "", "firstTransactionDateFormatted": "", "gapWithinObservationPeriod": False,
                "lastTransactionDate": "", "lastTransactionDateFormatted": "", "score": 0}
    first, last = txs[0].day, txs[-1].day
    months = months_range(txs[0].month, txs[-1].month)
    booked = {t.month for t in txs}
    gap = any(m not in booked for m in months)
    score = min(100, round(len(months) * 100 / WINDOW_MONTHS)) - (25 if gap else 0)
    return {"firstTransactionDate": first.isoformat(), "firstTransactionDateFormatted": first.strftime("%d.%m.%Y"),
            "gapWithinObservationPeriod": gap, "lastTransactionDate": last.isoformat(),
            "lastTransactionDateFormatted": last.strftime("%d.%m.%Y"), "score": max(score, 0)}


def cockpit_account(account: dict, txs: list[Tx], w: Window) -> dict:
    """A cockpit account with its ``additionalAnalysesInfo`` (monthly net flow, earnings and spendings: average and
    median over the window; ``analysisPeriod{Since, Until}`` capitalised as the reference writes it)."""
    own = [t for t in w.txs if t.account == account["accountId"]]
    earn = per_month([t for t in own if t.is_credit], w)
    spend = per_month([t for t in own if not t.is_credit], w)
    net = [earn[m] - spend[m] for m in w.months]
    analysis = {"average": num(sum(net, ZERO) / w.size), "averageEarning": num(sum(earn.values(), ZERO) / w.size),
                "averageSpending": num(sum(spend.values(), ZERO) / w.size), "median": num(median(net)),
                "medianEarning": num(median(list(earn.values()))),
                "medianSpending": num(median(list(spend.values())))}
    mine = [t for t in txs if t.account == account["accountId"]]
    period = {"Since": mine[0].day.isoformat() if mine else "", "Until": mine[-1].day.isoformat() if mine else ""}
    overdraft = account.get("overdraft") or {}
    return {"accountId": account["accountId"], "accountNumber": account.get("accountNumber") or "",
            "additionalAnalysesInfo": {"analysis": analysis, "analysisPeriod": period, "isUserAdded": False},
            "balance": float(account.get("balance") or 0), "bankCode": account.get("bankCode") or "",
            "bankName": account.get("bankName") or "", "bic": account.get("bic") or "",
            "creditLine": float(account.get("creditLine") or 0), "iban": account.get("iban") or "",
            "icon": account.get("icon") or "", "name": account.get("name") or "",
            "overDraft": float(overdraft.get("amount") or 0), "overDraftAvailable": bool(overdraft.get("available")),
            "owner": account.get("owner") or "", "type": account.get("type") or "UNKNOWN"}


def securities_block(accounts: list[dict]) -> list[dict]:
    """``securities[]`` from the depot positions the bank delivered (accounts' ``securities``)."""
    out = []
    for a in accounts:
        for s in a.get("securities") or []:
            isin, wkn = s.get("isin") or "", s.get("wkn") or ""
            out.append({"amount": float(s.get("amount") or 0), "isin": isin, "isinwkn": isin or wkn,
                        "logo": {"svg": "", "svgBase64": "", "url": ""}, "name": s.get("name") or "",
                        "priceAmount": float(s.get("price") or 0), "priceCurrency": s.get("priceCurrency") or "EUR",
                        "purchasePriceAmount": float(s.get("purchasePrice") or 0),
                        "purchasePriceCurrency": s.get("purchasePriceCurrency") or "EUR",
                        "quantity": float(s.get("quantity") or 0), "wkn": wkn})
    return out


def _by_cat(w: Window) -> dict[str, list[Tx]]:
    out: dict[str, list[Tx]] = defaultdict(list)
    for t in w.txs:
        out[t.category].append(t)
    return out


def common_lists(txs: list[Tx], w: Window, accounts: list[dict], today: date, detected_contracts=None) -> dict:
    """The contract-like lists both cockpits carry, from the window's bookings by category."""
    cats = _by_cat(w)
    contracts = contract_items([t for t in w.txs if not t.is_credit and t.category in ("contract", "rent")],
                               "contract", today)
    return {"contracts": contracts_from_detection(detected_contracts, contracts),
            "credits": contract_items([t for t in cats["credit"] if not t.is_credit], "credit", today),
            "insurances": contract_items([t for t in cats["insurance"] if not t.is_credit], "insurance", today),
            "internalContracts": contract_items(cats["internal-transfer"], "internal-transfer", today),
            "savingSecurities": contract_items([t for t in cats["security-saving-plan"] if not t.is_credit],
                                               "security-saving-plan", today),
            "securities": securities_block(accounts)}


def _head(kind: str, user_id: str, tenant: dict, created_at: str, txs: list[Tx]) -> dict:
    return {"createdAt": created_at, "observationPeriod": observation_period(txs), "tenant": tenant, "type": kind,
            "user": {"finoOSID": user_id}, "version": VERSION}


# --- person ------------------------------------------------------------------------------------------------------
def _recurring(items: list[Tx]) -> tuple[list[Tx], list[Tx]]:
    """(recurring, non-recurring) credits: a payer seen in at least 3 distinct months is recurring."""
    months: dict[str, set] = defaultdict(set)
    for t in items:
        months[t.iban or t.name.casefold()].add(t.month)
    rec = [t for t in items if len(months[t.iban or t.name.casefold()]) >= 3]
    ids = {t.id for t in rec}
    return rec, [t for t in items if t.id not in ids]


def income_block(w: Window) -> dict:
    """``income``: parts by category (monthly averages), Props with the ids, per-month totals, salaries by employer."""
    credits = [t for t in w.txs if t.is_credit and t.category != "internal-transfer"]
    by: dict[str, list[Tx]] = defaultdict(list)
    for t in credits:
        by[t.category].append(t)
    other_recurring, non_recurring = _recurring(by[OTHER_EARNING])
    parts = {"salary": by["salary"], "pension": by["pension"], "childBenefit": by["child-benefit"],
             "elternGeld": by["parental-allowance"], "rental": by["rental"], "alimony": by["alimony"],
             "other": other_recurring, "nonRecurringIncome": non_recurring}
    props_names = {"salary": "salaryProps", "pension": "pensionProps", "childBenefit": "childBenefitsProps",
                   "elternGeld": "elterngeldProps", "rental": "rentalProps", "alimony": "alimonyProps",
                   "other": "otherProps", "nonRecurringIncome": "nonRecurringIncomeProps"}
    out: dict = {}
    total = ZERO
    for key, items in parts.items():
        amount = average(items, w)
        total += amount
        out[key] = float(amount)
        out[props_names[key]] = props(items)
    employers: dict[str, list[Tx]] = defaultdict(list)
    for t in by["salary"]:
        employers[t.name].append(t)
    salary_list = []
    for employer, items in sorted(employers.items()):
        months = per_month(items, w)
        booked = [v for v in months.values() if v]
        salary_list.append({"amount": float(average(items, w)), "amountMedian": num(median(booked)),
                            "employer": employer,
                            "months": [{"amount": num(v), "month": m} for m, v in months.items()]})
    salary_months = per_month(by["salary"], w)
    last3 = [salary_months[m] for m in w.months[-3:]]
    last3_ids = [t.id for t in by["salary"] if t.month in set(w.months[-3:])]
    monthly = per_month(credits, w)
    out.update(employer=sorted(employers), months=[{"date": m, "value": num(v)} for m, v in monthly.items()],
               salaryList=salary_list, salaryMedian3Months=num(median(last3)),
               salaryMedianProps={"amount": num(median(last3)), "transactionIDs": last3_ids}, total=num(total))
    return dict(sorted(out.items()))


def spending_block(w: Window) -> tuple[dict, dict[str, list[Tx]]]:
    """``spending`` (monthly averages of outflows by part) and the bookings of every part."""
    debits = [t for t in w.txs if not t.is_credit and t.category != "internal-transfer"]
    by: dict[str, list[Tx]] = defaultdict(list)
    for t in debits:
        by[t.category].append(t)
    named = {"contract": by["contract"], "credit": by["credit"], "creditCards": by[CREDIT_CARD],
             "insurance": by["insurance"], "rental": by["rent"], "securitySavingPlans": by["security-saving-plan"]}
    taken = {t.id for items in named.values() for t in items}
    parts = {"consumption": [t for t in debits if t.id not in taken], **named}
    out: dict = {}
    total = ZERO
    for key, items in parts.items():
        amount = average(items, w)
        total += amount
        out[key] = float(amount)
        out[f"{key}Props"] = props(items)
    out["total"] = num(total)
    return dict(sorted(out.items())), parts


def household_block(consumption: list[Tx], w: Window) -> dict:
    """``householdExpenditure``: the consumption split by household category, each with total, monthly average,
    median and per-month data (every window month, zeros included) and its transaction ids."""
    by: dict[str, list[Tx]] = defaultdict(list)
    for t in consumption:
        by[HOUSEHOLD_KEYS.get(t.category, "other")].append(t)
    out: dict = {}
    for key in sorted(set(HOUSEHOLD_KEYS.values())):
        items = by[key]
        months = per_month(items, w)
        out[key] = {"average": float(average(items, w)), "data": [{"date": m, "value": num(v)}
                                                                   for m, v in months.items()],
                    "median": num(median(list(months.values()))),
                    "total": num(sum((abs(t.amount) for t in items), ZERO)), "transactions": [t.id for t in items]}
    months = per_month(consumption, w)
    out.update(consumptionAverage=float(average(consumption, w)),
               consumptionData=[{"date": m, "value": num(v)} for m, v in months.items()],
               consumptionMedian=num(median(list(months.values()))),
               consumptionTotal=num(sum((abs(t.amount) for t in consumption), ZERO)))
    return out


def _balance_sum(accounts: list[dict], types) -> Decimal:
    return sum((Decimal(str(a.get("balance") or 0)) for a in accounts if a.get("type") in types), ZERO)


def person_cockpit(user_id: str, accounts: list[dict], txs: list[Tx], today: date, created_at: str, tenant: dict,
                   histories: dict[str, list[tuple[date, Decimal]]], detected_contracts=None,
                   detected_histories: dict | None = None) -> dict:
    """The person cockpit (fino.md section 10 "Person cockpit"), every block from the same bookings;
    ``accountHistories`` are the account-history result's (detection area) where it has the account."""
    w = window(txs, today)
    income = income_block(w)
    spending, parts = spending_block(w)
    household = household_block(parts["consumption"], w)
    lists = common_lists(txs, w, accounts, today, detected_contracts)
    giro = [a for a in accounts if a.get("type") not in (CARD_TYPE, *LOAN_TYPES, *DEPOT_TYPES)]
    credit_line = sum((Decimal(str((a.get("overdraft") or {}).get("amount") or 0)) for a in giro), ZERO)
    loans = -_balance_sum(accounts, LOAN_TYPES)
    tagesgeld = _balance_sum(accounts, ("TAGESGELD",))
    child_benefit = Decimal(str(income["childBenefit"]))
    has_car = any(t.mcc in ("5541", "5542", "5983") or "kfz" in t.text.casefold() for t in w.txs if not t.is_credit)
    securities_value = sum((Decimal(str(s["amount"])) for s in lists["securities"]), ZERO)
    out = _head("person", user_id, tenant, created_at, txs)
    out.update(
        accountData={"accounts": [cockpit_account(a, txs, w) for a in accounts if a.get("type") != CARD_TYPE],
                     "creditCards": [cockpit_account(a, txs, w) for a in accounts if a.get("type") == CARD_TYPE]},
        accountHistories={"histories": [
            {"account": {"accountId": a["accountId"], "iban": a.get("iban") or "",
                         "overDraft": float((a.get("overdraft") or {}).get("amount") or 0),
                         "overDraftAvailable": bool((a.get("overdraft") or {}).get("available"))},
             "dailyBalances": [{"balance": num(b), "date": d.isoformat()} for d, b in (
                 (detected_histories or {}).get(a["accountId"]) or histories.get(a["accountId"], []))]}
            for a in accounts]},
        householdExpenditure=household, income=income, spending=spending,
        liquidity={"creditLine": num(credit_line), "creditLineProvided": credit_line > 0,
                   "creditsAmount": num(max(loans, ZERO)), "creditsProvided": loans > 0 or bool(lists["credits"]),
                   "hasCreditCard": any(a.get("type") == CARD_TYPE for a in accounts) or spending["creditCards"] > 0,
                   "tagesgeld": num(tagesgeld), "tagesgeldProvided": any(a.get("type") == "TAGESGELD"
                                                                         for a in accounts),
                   "transactionsPerMonth": round(len(w.txs) / w.size, 1)},
        overview={"childrenCount": int((child_benefit / KINDERGELD_PER_CHILD).to_integral_value(ROUND_HALF_UP)),
                  "hasCar": has_car, "incomeTotal": income["total"], "isTenant": spending["rental"] > 0},
        wealth={"depot": num(_balance_sum(accounts, DEPOT_TYPES)),
                "hasRealEstate": any("baufinanzierung" in t.text.casefold() or "grundsteuer" in t.text.casefold()
                                     for t in w.txs),
                "housingSaving": num(_balance_sum(accounts, ("BAUSPAREN",))), "securities": num(securities_value),
                "securitySavingPlans": spending["securitySavingPlans"]},
        **lists)
    return dict(sorted(out.items()))


# --- company -----------------------------------------------------------------------------------------------------
def _epoch_month(month: str) -> int:
    return int(datetime(int(month[:4]), int(month[5:]), 1, tzinfo=BERLIN).timestamp())


def graph_points(items: list[Tx], w: Window, incoming: bool, top: int = 10) -> list[dict]:
    """Monthly graph points ``{from, incoming, interval, outgoing, payments[{amount, paymentDate}], timestamp}``;
    ``payments`` lists the month's ``top`` largest bookings (sandbox bound, inferred)."""
    by: dict[str, list[Tx]] = defaultdict(list)
    for t in items:
        by[t.month].append(t)
    out = []
    for m in w.months:
        month_items = by.get(m, [])
        total = num(sum((abs(t.amount) for t in month_items), ZERO))
        biggest = sorted(month_items, key=lambda t: (-abs(t.amount), t.id))[:top]
        out.append({"from": f"{m}-01", "incoming": total if incoming else 0.0, "interval": "MONTHLY",
                    "outgoing": 0.0 if incoming else total,
                    "payments": [{"amount": num(abs(t.amount)), "paymentDate": t.day.isoformat()} for t in biggest],
                    "timestamp": _epoch_month(m)})
    return out


def forecast(points: list[dict], incoming: bool, months: int = 3) -> list[dict]:
    """The next ``months`` months at the average of the last three (sandbox rule, inferred)."""
    if not points:
        return []
    key = "incoming" if incoming else "outgoing"
    recent = [Decimal(str(p[key])) for p in points[-3:]]
    value = num(sum(recent, ZERO) / len(recent))
    last = points[-1]["from"][:7]
    out = []
    for n in range(1, months + 1):
        m = add_month(last, n)
        out.append({"from": f"{m}-01", "incoming": value if incoming else 0.0, "interval": "MONTHLY",
                    "outgoing": 0.0 if incoming else value, "payments": [], "timestamp": _epoch_month(m)})
    return out


def tops(items: list[Tx], limit: int = 10) -> list[dict]:
    """customerTop / supplierTop: partners by total (absolute), rank 1 = largest, percent of all such payments."""
    groups: dict[str, list[Tx]] = defaultdict(list)
    for t in items:
        groups[t.iban or t.name.casefold()].append(t)
    grand = sum((abs(t.amount) for t in items), ZERO)
    rows = []
    for key, group in groups.items():
        total = sum((abs(t.amount) for t in group), ZERO)
        rows.append((total, key, group))
    rows.sort(key=lambda r: (-r[0], r[1]))
    out = []
    for rank, (total, _, group) in enumerate(rows[:limit], 1):
        percent = q2(total * 100 / grand) if grand else ZERO
        out.append({"averageAmountTransaction": num(total / len(group)), "creditorID": group[-1].creditor,
                    "displayPercent": f"{percent:.1f} %".replace(".", ","), "iban": group[-1].iban, "logo": "",
                    "name": group[-1].name, "numberOfTransactions": len(group), "percent": float(percent),
                    "rank": rank, "totalPayments": num(total)})
    return out


def liquidity_monthly(account: dict, items: list[Tx], w: Window, balances: list[tuple[date, Decimal]]) -> list[dict]:
    """Per window month: earnings, spendings, returned direct debits, and min/max/end-of-month balances and
    overdraw days (days ending below zero) from the account's daily balances."""
    by_month: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    for d, b in balances:
        by_month[month_of(d)].append((d, b))
    mine = [t for t in items if t.account == account["accountId"]]
    out = []
    for m in w.months:
        month_tx = [t for t in mine if t.month == m]
        days = by_month.get(m, [])
        values = [b for _, b in days]
        out.append({"backDebitCount": sum(1 for t in month_tx if t.is_credit and
                                          (t.gvc == 109 or any(x in t.text.casefold() for x in _RETURN_TEXTS))),
                    "date": m, "earnings": num(sum((t.amount for t in month_tx if t.is_credit), ZERO)),
                    "endOfMonthBalance": num(values[-1]) if values else 0.0,
                    "maxBalance": num(max(values)) if values else 0.0,
                    "minBalance": num(min(values)) if values else 0.0,
                    "overdrawDays": sum(1 for b in values if b < 0),
                    "spendings": num(sum((-t.amount for t in month_tx if not t.is_credit), ZERO))})
    return out


def company_cockpit(user_id: str, accounts: list[dict], txs: list[Tx], today: date, created_at: str, tenant: dict,
                    histories: dict[str, list[tuple[date, Decimal]]], detected_contracts=None,
                    detected_histories: dict | None = None) -> dict:
    """The company cockpit (fino.md section 10 "Company cockpit"), every block from the same bookings."""
    w = window(txs, today)
    external = [t for t in w.txs if t.category != "internal-transfer"]
    earnings = [t for t in external if t.is_credit]
    spendings = [t for t in external if not t.is_credit]
    foreign = [t for t in external if t.iban and not t.iban.startswith("DE")]
    payment_accounts = [a for a in accounts if a.get("type") not in (*LOAN_TYPES, *DEPOT_TYPES)]
    earn_sum = sum((t.amount for t in earnings), ZERO)
    spend_sum = sum((-t.amount for t in spendings), ZERO)
    revenue = graph_points(earnings, w, True)
    spending = graph_points(spendings, w, False)
    payroll = [t for t in spendings if any(x in t.text.casefold() for x in _PAYROLL_TEXTS)]
    social = [t for t in spendings if any(x in t.text.casefold() for x in _SOCIAL_TEXTS)]
    last_month = w.months[-1] if w.months else ""
    employees = {t.iban or t.name for t in payroll if t.month == last_month}
    payroll_or_social = set(payroll) | set(social)   # supplierTop: trade payees only (inferred)
    terminal = [t for t in earnings if any(x in t.text.casefold() for x in _TERMINAL_TEXTS)]
    collective = [t for t in external if "sammel" in t.text.casefold() or t.gvc in (191, 192, 193)]
    loans = -_balance_sum(accounts, LOAN_TYPES)
    lists = common_lists(txs, w, accounts, today, detected_contracts)
    out = _head("company", user_id, tenant, created_at, txs)
    out.update(
        accountData={"accounts": [cockpit_account(a, txs, w) for a in accounts if a.get("type") != CARD_TYPE],
                     "creditCards": [cockpit_account(a, txs, w) for a in accounts if a.get("type") == CARD_TYPE]},
        caa={"balance": num(sum((Decimal(str(a.get("balance") or 0)) for a in payment_accounts), ZERO)),
             "earnings": num(earn_sum), "spendings": num(spend_sum), "incoming": len(earnings),
             "outgoing": len(spendings), "total": num(earn_sum - spend_sum),
             "negativeTotal": num(sum((min(Decimal(str(a.get("balance") or 0)), ZERO) for a in payment_accounts),
                                      ZERO)),
             "foreignSales": {"earnings": num(sum((t.amount for t in foreign if t.is_credit), ZERO)),
                              "incoming": sum(1 for t in foreign if t.is_credit),
                              "outgoing": sum(1 for t in foreign if not t.is_credit),
                              "spendings": num(sum((-t.amount for t in foreign if not t.is_credit), ZERO))},
             "liquidity": [{"account": {"accountId": a["accountId"], "accountNumber": a.get("accountNumber") or "",
                                        "balance": float(a.get("balance") or 0),
                                        "creditLine": float(a.get("creditLine") or 0),
                                        "creditLineProvided": float(a.get("creditLine") or 0) > 0,
                                        "currency": a.get("currency") or "EUR", "iban": a.get("iban") or ""},
                            "liquidityMonthly": liquidity_monthly(a, w.txs, w, histories.get(a["accountId"], []))}
                           for a in payment_accounts],
             "revenueGraphData": revenue, "revenueForecastData": forecast(revenue, True),
             "spendingGraphData": spending, "spendingForecastData": forecast(spending, False)},
        cashflow={"incomings": {"amount": num(earn_sum), "transactionCount": len(earnings),
                                "transactionIDs": [t.id for t in earnings]},
                  "outgoings": {"amount": num(spend_sum), "transactionCount": len(spendings),
                                "transactionIDs": [t.id for t in spendings]}},
        collectivePayments={"quantity": len(collective),
                            "sum": num(sum((abs(t.amount) for t in collective), ZERO))},
        customerTop=tops(earnings), supplierTop=tops([t for t in spendings if t.category not in (
            "credit", "insurance", "security-saving-plan") and t not in payroll_or_social]),
        facts={"staff": {"socialInsuranceEmployees": len(employees) if social else 0,
                         "totalMonthlyExpenses": float(average(payroll + social, w)),
                         "totalNumberOfEmployees": len(employees)}},
        graphs=[{"category": "revenue", "interval": "MONTHLY", "paymentType": "incoming", "reviews": revenue},
                {"category": "spending", "interval": "MONTHLY", "paymentType": "outgoing", "reviews": spending}],
        liquidity={"cardPaymentTerminalAmount": num(sum((t.amount for t in terminal), ZERO)),
                   "cardPaymentTerminalProvided": bool(terminal), "creditsAmount": num(max(loans, ZERO)),
                   "creditsProvided": loans > 0 or bool(lists["credits"]),
                   "tagesgeld": num(_balance_sum(accounts, ("TAGESGELD",))),
                   "tagesgeldProvided": any(a.get("type") == "TAGESGELD" for a in accounts)},
        **lists)
    return dict(sorted(out.items()))


def balances_for(accounts: list[dict], txs: list[Tx], today: date) -> dict[str, list[tuple[date, Decimal]]]:
    """Daily balances per account, rolled back from the balance through the bookings (section 10's account history
    rule), from the first window day to the later of today and the newest booking."""
    w = window(txs, today)
    by_account: dict[str, list[Tx]] = defaultdict(list)
    for t in txs:
        by_account[t.account].append(t)
    since = date.fromisoformat(f"{w.months[0]}-01") if w.months else today
    until = max(today, txs[-1].day) if txs else today
    return {a["accountId"]: daily_balances(Decimal(str(a.get("balance") or 0)), by_account[a["accountId"]],
                                           since, until) for a in accounts}


# --- recommendations, risk, adult check ----------------------------------------------------------------------------
def _recommendation(rid: str, name: str, title: str, text: str, advisor: str, product: str, priority: int,
                    data: dict, model: str, icon: str) -> dict:
    return {"advisorText": advisor, "data": data, "dataModel": model, "dataType": "object",
            "hyperlinkLabel": "Mehr erfahren", "icon": icon, "id": rid, "name": name, "priority": priority,
            "product": product, "showAdvisor": True, "showCustomer": True, "text": text,
            "textHyperlink": f"https://www.fino.run/produkte/{product}", "title": title}


def overdrawn_days(cockpit: dict) -> int:
    """Days a current account (not a card, loan or depot: their negative balances are normal) ended below zero."""
    current = {a["accountId"] for a in cockpit["accountData"]["accounts"]
               if a["type"] not in (CARD_TYPE, *LOAN_TYPES, *DEPOT_TYPES)}
    return sum(1 for h in cockpit["accountHistories"]["histories"] if h["account"]["accountId"] in current
               for b in h["dailyBalances"] if b["balance"] < 0)


def person_recommendations(cockpit: dict, ident) -> list[dict]:
    """Rules over the person cockpit (sandbox, inferred): no insurance detected, consumption above 70 % of income,
    overdraft used in the window, no Tagesgeld while income exceeds spending, no security saving plan."""
    out = []
    income, spending = cockpit["income"], cockpit["spending"]
    if not cockpit["insurances"]:
        out.append(_recommendation(ident("insurance"), "insurance-check", "Versicherungsschutz prüfen",
                                   "Wir haben keine Versicherungsbeiträge auf Ihren Konten gefunden.",
                                   "Kunde zahlt keine erkennbaren Versicherungsbeiträge: Beratung zu Haftpflicht "
                                   "und Berufsunfähigkeit anbieten.", "versicherung", 1,
                                   {"insurances": 0}, "insurances", "shield"))
    if income["total"] > 0 and spending["consumption"] > 0.7 * income["total"]:
        share = round(spending["consumption"] * 100 / income["total"], 1)
        out.append(_recommendation(ident("consumption"), "budget-coaching", "Haushaltsbudget im Blick",
                                   f"Ihr Konsum liegt bei {share} % Ihres Einkommens.",
                                   "Hohe Konsumquote: Budgetplanung besprechen.", "budget", 2,
                                   {"consumption": spending["consumption"], "incomeTotal": income["total"],
                                    "share": share}, "spending.consumption", "wallet"))
    overdrawn = overdrawn_days(cockpit)
    if overdrawn:
        out.append(_recommendation(ident("overdraft"), "overdraft-refinancing", "Dispositionskredit ablösen",
                                   f"Ihr Konto war an {overdrawn} Tagen im Minus.",
                                   "Dispo-Nutzung: Umschuldung in einen Ratenkredit anbieten.", "ratenkredit", 1,
                                   {"overdrawnDays": overdrawn}, "accountHistories", "warning"))
    if not cockpit["liquidity"]["tagesgeldProvided"] and income["total"] > spending["total"]:
        out.append(_recommendation(ident("tagesgeld"), "savings-account", "Tagesgeldkonto eröffnen",
                                   "Sie haben monatlich Geld übrig: ein Tagesgeldkonto bringt Zinsen.",
                                   "Überschuss ohne Tagesgeld: Tagesgeld anbieten.", "tagesgeld", 3,
                                   {"surplus": round(income["total"] - spending["total"], 2)}, "liquidity",
                                   "piggy-bank"))
    if not cockpit["savingSecurities"]:
        out.append(_recommendation(ident("saving-plan"), "security-saving-plan", "ETF-Sparplan starten",
                                   "Schon kleine monatliche Beträge können langfristig Vermögen aufbauen.",
                                   "Kein Wertpapiersparplan erkannt.", "sparplan", 4, {"savingSecurities": 0},
                                   "savingSecurities", "chart"))
    return out


def company_recommendations(cockpit: dict, ident) -> list[dict]:
    """Rules over the company cockpit (sandbox, inferred): no insurance, overdraw days, a customer above 30 %
    of revenue, negative net cash flow."""
    out = []
    if not cockpit["insurances"]:
        out.append(_recommendation(ident("insurance"), "business-insurance", "Betriebsversicherung prüfen",
                                   "Wir haben keine Versicherungsbeiträge Ihres Unternehmens gefunden.",
                                   "Keine Betriebshaftpflicht erkennbar.", "gewerbeversicherung", 1,
                                   {"insurances": 0}, "insurances", "shield"))
    overdraw = sum(m["overdrawDays"] for acc in cockpit["caa"]["liquidity"] for m in acc["liquidityMonthly"])
    if overdraw:
        out.append(_recommendation(ident("overdraft"), "credit-line", "Kontokorrentrahmen anpassen",
                                   f"Ihre Konten waren an {overdraw} Tagen im Minus.",
                                   "Überziehungstage: Kontokorrentlinie prüfen.", "kontokorrent", 1,
                                   {"overdrawDays": overdraw}, "caa.liquidity", "warning"))
    top = cockpit["customerTop"][0] if cockpit["customerTop"] else None
    if top and top["percent"] > 30:
        out.append(_recommendation(ident("concentration"), "credit-insurance", "Forderungsausfall absichern",
                                   f"{top['name']} steht für {top['percent']} % Ihres Umsatzes.",
                                   "Klumpenrisiko beim größten Kunden.", "warenkreditversicherung", 2,
                                   {"customer": top["name"], "percent": top["percent"]}, "customerTop", "users"))
    if cockpit["caa"]["total"] < 0:
        out.append(_recommendation(ident("cashflow"), "liquidity-planning", "Liquidität planen",
                                   "Ihre Ausgaben übersteigen Ihre Einnahmen im Beobachtungszeitraum.",
                                   "Negativer Cashflow.", "liquiditaetsplanung", 1, {"total": cockpit["caa"]["total"]},
                                   "caa", "trend-down"))
    return out


_GAMBLING = ("lotto", "tipico", "bwin", "bet365", "casino", "sportwetten")
_COLLECTION = ("inkasso", "mahnbescheid", "pfändung", "pfaendung")


def _text_hits(cockpit: dict, words, txs: list[Tx]) -> int:
    return sum(1 for t in txs if any(w in t.text.casefold() or w in t.name.casefold() for w in words))


def person_risk(cockpit: dict, txs: list[Tx], today: date) -> dict:
    """Risk (provisional): score 0-100, higher = lower risk; 100 minus the weight of each flag raised."""
    w = window(txs, today)
    flags = []
    if overdrawn_days(cockpit):
        flags.append("overdraft")
    if any(t.is_credit and (t.gvc == 109 or any(x in t.text.casefold() for x in _RETURN_TEXTS)) for t in w.txs):
        flags.append("returnedDebits")
    if _text_hits(cockpit, _GAMBLING, w.txs) or any(t.mcc == "7995" for t in w.txs):
        flags.append("gambling")
    if _text_hits(cockpit, _COLLECTION, w.txs):
        flags.append("debtCollection")
    income = cockpit["income"]
    if income["salary"] + income["pension"] == 0:
        flags.append("noRegularIncome")
    if income["total"] and cockpit["spending"]["total"] > income["total"]:
        flags.append("spendingExceedsIncome")
    weights = {"overdraft": 15, "returnedDebits": 20, "gambling": 15, "debtCollection": 25, "noRegularIncome": 15,
               "spendingExceedsIncome": 10}
    return {"flags": flags, "score": max(0, 100 - sum(weights[f] for f in flags))}


def company_risk(cockpit: dict, txs: list[Tx], today: date) -> dict:
    """Company risk (provisional): score 0-100, higher = lower risk."""
    w = window(txs, today)
    flags = []
    months = [m for acc in cockpit["caa"]["liquidity"] for m in acc["liquidityMonthly"]]
    if any(m["overdrawDays"] for m in months):
        flags.append("overdrawDays")
    if any(m["backDebitCount"] for m in months):
        flags.append("returnedDebits")
    if cockpit["customerTop"] and cockpit["customerTop"][0]["percent"] > 50:
        flags.append("customerConcentration")
    if cockpit["caa"]["total"] < 0:
        flags.append("negativeCashflow")
    if _text_hits(cockpit, _COLLECTION, w.txs):
        flags.append("debtCollection")
    weights = {"overdrawDays": 20, "returnedDebits": 20, "customerConcentration": 15, "negativeCashflow": 20,
               "debtCollection": 25}
    return {"flags": flags, "score": max(0, 100 - sum(weights[f] for f in flags))}


def adult_check(cockpit: dict) -> dict:
    """Adult check (provisional, documented rule): adult when the bookings show something only an adult of full
    legal age (18, BGB section 2) can hold: salary or pension income, Kindergeld received (paid to parents), rent
    paid, a credit, an insurance contract or a credit card."""
    income, spending = cockpit["income"], cockpit["spending"]
    indicators = [name for name, hit in (
        ("salary", income["salary"] > 0), ("pension", income["pension"] > 0),
        ("childBenefit", income["childBenefit"] > 0), ("rent", spending["rental"] > 0),
        ("credit", bool(cockpit["credits"])), ("insurance", bool(cockpit["insurances"])),
        ("creditCard", bool(cockpit["liquidity"]["hasCreditCard"]))) if hit]
    return {"indicators": indicators, "isAdult": bool(indicators)}
