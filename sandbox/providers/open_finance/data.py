"""Open Finance data rules (open_finance.md sections 10-11): categories, test identifiers, provider ids.

Pure functions and tables: the ledger's neutral categories mapped to the provider's taxonomy, and the published
fake psuIds with their fixed account numbers and outcomes.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal

from ...ledger.iban import il_iban
from ...ledger.models import Ledger

SANDBOX_PROVIDER = "open-finance-sandbox"
OK_STATUSES = ("ACTIVE", "COMPLETED")

# Ledger category -> (main, sub) of docs.open-finance.ai/docs/transaction-categories (section 10).
CATEGORIES = {
    "salary": ("SALARY", "SALARY_OTHER"), "pension": ("PENSION", "PENSION_OTHER"),
    "benefits": ("BENEFITS", "BENEFITS_OTHER"), "freelance": ("OTHER", "OTHER"),
    "interest_income": ("FINANCE", "FINANCE_OTHER"), "refund": ("REIMBURSEMENTS", "REIMBURSEMENTS_OTHER"),
    "transfer_in": ("OTHER", "OTHER"),
    "rent": ("HOUSEHOLD_&_SERVICES", "RENT"), "mortgage": ("HOUSEHOLD_&_SERVICES", "MORTGAGE"),
    "utilities": ("HOUSEHOLD_&_SERVICES", "UTILITIES"), "communications": ("HOUSEHOLD_&_SERVICES", "COMMUNICATIONS"),
    "insurance": ("HOUSEHOLD_&_SERVICES", "INSURANCE_&_FEES"), "subscriptions": ("HOUSEHOLD_&_SERVICES", "SERVICES"),
    "loan_repayment": ("FINANCE", "LOANS"), "education": ("OTHER", "EDUCATION"),
    "groceries": ("FOOD_&_DRINKS", "GROCERIES"), "restaurants": ("FOOD_&_DRINKS", "RESTAURANT"),
    "coffee": ("FOOD_&_DRINKS", "COFFEE_&_SNACKS"), "fuel": ("TRANSPORT", "CAR_&_FUEL"),
    "public_transport": ("TRANSPORT", "PUBLIC_TRANSPORT"), "taxi": ("TRANSPORT", "TAXI"),
    "shopping": ("SHOPPING", "CLOTHES_&_ACCESSORIES"), "electronics": ("SHOPPING", "ELECTRONICS"),
    "leisure": ("LEISURE", "CULTURE_&_EVENTS"), "travel": ("LEISURE", "VACATION"),
    "health": ("HEALTH_&_BEAUTY", "HEALTHCARE"), "pharmacy": ("HEALTH_&_BEAUTY", "PHARMACY"),
    "cash_withdrawal": ("OTHER", "CASH_WITHDRAWALS"), "fees": ("FINANCE", "FEES"), "card_fee": ("FINANCE", "FEES"),
    "interest_charge": ("FINANCE", "INTEREST_RATES"), "card_settlement": ("FINANCE", "CREDIT_CARD_EXPENSES"),
    "savings_transfer": ("FINANCE", "SAVINGS"), "securities_purchase": ("FINANCE", "CAPITAL_MARKET"),
}

# Income categories that count as regular income sources; classificationSource values (report guide: SALARY).
REGULAR_INCOME = {"salary": "SALARY", "pension": "PENSION", "benefits": "BENEFITS"}

# Bank of Israel numbering (open_finance.md section 10) -> provider id.
BANK_IDS = {"04": "yahav", "10": "leumi", "11": "discount", "12": "hapoalim", "13": "union", "14": "otsarHahayal",
            "17": "mercantile", "18": "one-zero", "20": "mizrahi", "26": "ubank", "31": "beinleumi", "46": "masad",
            "52": "pagi", "54": "jerusalem"}

# docs.open-finance.ai/docs/testing-with-fake-bank-data (section 11): psuId -> (account BBANs, status).
TEST_PSU_IDS: dict[str, tuple[tuple[str, ...], str]] = {
    "043510023": (("31-019-29114", "31-021-731722", "31-050-5703"), "ACTIVE"),
    "321547416": (("31-114-435694", "31-124-272604", "31-064-406821"), "ACTIVE"),
    "1772268": (("11-002-11440386", "11-002-152384687", "11-002-166426662"), "ACTIVE"),
    "8332884": (("11-004-78969958", "11-005-145532722", "11-014-190035856"), "ACTIVE"),
    "058766718": (("12-615-32449", "12-615-343779", "12-627-230522"), "ACTIVE"),
    "038506499": (("12-628-667746", "12-630-119945", "12-630-435510"), "ACTIVE"),
    "520023185": (("10-882-43487887", "10-940-8924227", "10-985-3816794"), "ACTIVE"),
    "321547796": (("10-988-3750659", "10-922-2084286", "10-985-3816794"), "ACTIVE"),
    "321547804": (("20-574-308223", "20-461-336809", "20-723-648357"), "ACTIVE"),
    "321547812": (("20-443-113222", "20-433-299099", "20-477-433289"), "ACTIVE"),
    "321547820": (("04-130-158895", "04-141-43814", "04-118-90291"), "ACTIVE"),
    "321547853": (("04-124-317146", "04-125-193440", "04-124-318436"), "ACTIVE"),
    "050299338": ((), "REJECTED"),
    "064837123": ((), "PARTIALLY_AUTHORIZED"),
    "316159011": ((), "ERROR"),
    "316159029": ((), "FETCHING_ERROR"),
    "316159052": ((), "SUSPENDED_BY_PROVIDER"),
}

# Sandbox-only customerIds for the financial report (open_finance.md section 7: FAILED only via a scenario switch).
SCENARIO_JOB_FAILS = "sandbox-job-fails"
SCENARIO_INTERNAL_ERROR = "sandbox-internal-error"

SCENARIOS = [
    *({"kind": "psuId", "value": psu, "effect": f"connection {status}" + (f", accounts {', '.join(bbans)}" if bbans else ""),
       "source": "docs.open-finance.ai/docs/testing-with-fake-bank-data"} for psu, (bbans, status) in TEST_PSU_IDS.items()),
    {"kind": "customerId", "value": "<any test psuId above>", "effect": "the auto-provisioned connection of a "
     "financial report uses it as psuId: ACTIVE ids give those accounts, error ids give 400 No active connections found"},
    {"kind": "customerId", "value": SCENARIO_JOB_FAILS, "effect": "report job ends FAILED {status, message}"},
    {"kind": "customerId", "value": SCENARIO_INTERNAL_ERROR,
     "effect": "create_financial_report answers 500 {message: Something went wrong, code: INTERNAL_ERROR}"},
]


def connection_status(psu_id: str, refresh_data: bool = False) -> str:
    """Outcome of a consent for ``psu_id`` on the sandbox provider; ACTIVE rows are COMPLETED when one-time."""
    status = TEST_PSU_IDS.get(psu_id, ((), "ACTIVE"))[1]
    if status == "ACTIVE" and not refresh_data:
        return "COMPLETED"  # (inferred) section 11: one-time connections end COMPLETED
    return status


def apply_test_accounts(ledger: Ledger, psu_id: str) -> Ledger:
    """Give the ledger's first non-card accounts the documented BBANs of a published test psuId (section 11: each
    ACTIVE psuId has exactly those three accounts; further non-card accounts are left out). A persona with fewer
    non-card accounts gets the missing ones as deposit (savings) accounts without movements: balance = opening
    balance, so every total still adds up."""
    bbans = list(dict.fromkeys(TEST_PSU_IDS.get(psu_id, ((), ""))[0]))
    slots = [a for a in ledger.accounts if a.kind != "credit_card"]
    if bbans:
        # exactly the documented accounts (plus cards), the first one the checking account (inferred: s.11 lists no
        # kinds): a persona's second checking account or accounts beyond the list would show undocumented numbers
        first = next((a for a in slots if a.kind == "checking"), slots[0] if slots else None)
        others = [a for a in slots if a is not first and a.kind != "checking"]
        slots = ([first] if first else []) + others[:len(bbans) - 1]
        kept = {a.id for a in slots}
        ledger.accounts[:] = [a for a in ledger.accounts if a.kind == "credit_card" or a.id in kept]
    for account, bban in zip(slots, bbans):
        bank, branch, number = bban.split("-")
        index = ledger.accounts.index(account)
        ledger.accounts[index] = replace(account, number=bban, bank_code=bank, branch=branch,
                                         bank_id=BANK_IDS.get(bank, account.bank_id),
                                         iban=il_iban(int(bank), int(branch), int(number)))
    template = next((a for a in ledger.accounts if a.kind != "credit_card"), None)
    for bban in bbans[len(slots):]:
        bank, branch, number = bban.split("-")
        prefix = template.id.split("-", 1)[0]
        n = 1 + sum(a.kind == "savings" for a in ledger.accounts)
        opening = Decimal(5000 + int(hashlib.sha256(bban.encode()).hexdigest(), 16) % 45000).quantize(Decimal("0.01"))
        ledger.accounts.append(replace(template, id=f"{prefix}-savings-{n}", kind="savings", name="פיקדון",
                                       currency="ILS", number=bban, bank_code=bank, branch=branch,
                                       bank_id=BANK_IDS.get(bank, template.bank_id),
                                       iban=il_iban(int(bank), int(branch), int(number)), opening_balance=opening,
                                       balance=opening, credit_limit=None, transactions=[], holdings=[]))
    return ledger


def parse_day(value) -> date | None:
    """A ``YYYY-MM-DD`` calendar date (section 6 ``startDate``), or None for anything else (wrong type, shape, day or
    year 0, which the schema's ``format: date`` lets through but ``date`` cannot hold)."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def start_date(connection: dict) -> date | None:
    """The connection's ``startDate`` (section 6: "transactions are collected from this date"), None without one."""
    return parse_day(connection.get("startDate"))


def cut_ledger(ledger: Ledger, start: date | None) -> Ledger:
    """The ledger as a connection with ``startDate`` = ``start`` collected it (section 6): each account keeps only the
    transactions booked on or after ``start`` (none for a future date); its opening balance becomes the balance before
    the first kept one, so ``balance == opening_balance + sum(transactions)`` still holds. None: the ledger itself."""
    if start is None:
        return ledger
    accounts = []
    for a in ledger.accounts:
        kept = [t for t in a.transactions if t.booking_date >= start]
        if len(kept) == len(a.transactions):
            accounts.append(a)
            continue
        accounts.append(replace(a, opening_balance=a.balance - sum((t.amount for t in kept), Decimal(0)),
                                transactions=kept))
    return replace(ledger, accounts=accounts)


def provider_id(account) -> str:
    """Provider id of an account: the bank's id, or the card issuer's for cards (section 10 provider list)."""
    return BANK_IDS.get(account.bank_code.zfill(2), account.bank_id) if account.kind != "credit_card" else account.bank_id


def split_bban(number: str) -> tuple[str, str, str]:
    parts = number.split("-")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else ("", "", number)


# --- connections, providers, branches (open_finance.md sections 6, 8, 10-12) -------------------------------------

from functools import lru_cache   # noqa: E402  (kept with the tables that use it)
from pathlib import Path          # noqa: E402

from ...core.yamlio import load_yaml   # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "open_finance"

# Section 8: every status of the Connection schema enum.
STATUSES = ("INACTIVE", "FETCHING", "CONNECTED", "COMPLETED", "ACTIVE", "ERROR", "EXPIRED", "FETCHING_ERROR", "REJECTED",
            "PARTIALLY_AUTHORIZED", "REPLACED", "REVOKED", "SUSPENDED_BY_PROVIDER", "CREDENTIALS_ERROR", "UNKNOWN",
            "TERMINATED_BY_USER")
# Statuses a connection never leaves on its own (a refresh, an expiry or a newer connection cannot revive them).
TERMINAL = ("ERROR", "EXPIRED", "FETCHING_ERROR", "REJECTED", "REPLACED", "REVOKED", "SUSPENDED_BY_PROVIDER",
            "CREDENTIALS_ERROR", "TERMINATED_BY_USER")
# Section 9 routing (inferred): successUrl / failUrl / abortUrl of callbackInformation.webhooks.
WEBHOOK_ROUTE = {"CONNECTED": "successUrl", "COMPLETED": "successUrl", "ACTIVE": "successUrl",
                 "ERROR": "failUrl", "EXPIRED": "failUrl", "FETCHING_ERROR": "failUrl", "REJECTED": "failUrl",
                 "REVOKED": "failUrl", "SUSPENDED_BY_PROVIDER": "failUrl", "CREDENTIALS_ERROR": "failUrl",
                 "TERMINATED_BY_USER": "abortUrl"}
# connectionError of the webhook / Connection.error for the error outcomes of section 11 (texts inferred).
ERRORS = {
    "REJECTED": {"type": "CONSENT_REJECTED", "message": "The account owner rejected the consent at the bank"},
    "ERROR": {"type": "PROVIDER_ERROR", "message": "The connection to the institution failed"},
    "FETCHING_ERROR": {"type": "FETCHING_ERROR", "message": "Fetching the accounts from the institution failed"},
    "SUSPENDED_BY_PROVIDER": {"type": "SUSPENDED_BY_PROVIDER", "message": "The provider suspended the consent"},
    "EXPIRED": {"type": "CONSENT_EXPIRED", "message": "The consent has expired"},
    "TERMINATED_BY_USER": {"type": "TERMINATED_BY_USER", "message": "The user left the consent journey"},
}
PARTIAL_AUTH_DAYS = 5            # section 8: PARTIALLY_AUTHORIZED -> EXPIRED after 5 days without an answer
PSU_ID_PATTERN = r"^[0-9]{5,9}$"  # section 6: psuId ^[0-9]+$, length 5-9
PRODUCTION_ACCESS = ("production access is not enabled for this organization, you must include fake providers or "
                     "contact us")   # section 4, verbatim
NO_PROVIDERS = "No providers were found"          # section 6
CONNECTION_NOT_FOUND = "No connection was found"  # section 4/6: get_connection and the other connection routes
DELETE_NOT_FOUND = "connection not found"         # section 6: delete_connection
# s.4: 423 "connection locked": deletion only for connections >= 90 min old when big-query export is enabled (the
# documented description; no body is documented, so the sandbox's text says why)
DELETE_LOCK_MINUTES = 90
DELETE_LOCKED = ("connection locked: with the big-query export enabled, a connection can be deleted once it is 90 "
                 "minutes old")
LANGUAGES = ("he", "en")


def fetch_states(outcome: str, refresh_data: bool) -> list[str]:
    """The states a consented connection walks through on the job engine for a psuId outcome (section 8/11).

    (inferred) ERROR fails while connecting (no CONNECTED); FETCHING_ERROR and SUSPENDED_BY_PROVIDER fail after it."""
    if outcome == "ERROR":
        return ["FETCHING", "ERROR"]
    if outcome in ("FETCHING_ERROR", "SUSPENDED_BY_PROVIDER"):
        return ["FETCHING", "CONNECTED", outcome]
    return ["FETCHING", "CONNECTED", "ACTIVE" if refresh_data else "COMPLETED"]


def psu_outcome(provider_id: str, psu_id: str) -> str:
    """Section 11: the published psuIds decide the outcome on ``open-finance-sandbox``; any other psuId, and every
    psuId on the other providers, consents normally (ACTIVE, reported COMPLETED for one-time connections)."""
    if provider_id == SANDBOX_PROVIDER:
        return TEST_PSU_IDS.get(psu_id, ((), "ACTIVE"))[1]
    return "ACTIVE"


@lru_cache(maxsize=1)
def providers() -> tuple[dict, ...]:
    """Every provider of fixtures/open_finance/providers.yaml, in sortIndex order (real first, then sandbox)."""
    return tuple(sorted(load_yaml(FIXTURES / "providers.yaml"), key=lambda p: p["sortIndex"]))


def provider(provider_id: str) -> dict | None:
    return next((p for p in providers() if p["providerFriendlyId"] == provider_id), None)


PROVIDER_IDS = tuple(p["providerFriendlyId"] for p in providers())


@lru_cache(maxsize=1)
def bank_branches() -> dict[int, tuple[dict, ...]]:
    """fixtures/open_finance/bank_branches.yaml grouped by bankCode, in branchCode order."""
    rows = load_yaml(FIXTURES / "bank_branches.yaml")
    out: dict[int, list[dict]] = {}
    for row in rows:
        out.setdefault(row["bankCode"], []).append(row)
    return {code: tuple(sorted(rows, key=lambda r: r["branchCode"])) for code, rows in out.items()}


# The consent journey's texts (section 12: he | en, Hebrew right-to-left).
TEXT = {
    "en": {"title": "Connect your bank account", "choose_provider": "Choose your bank or card company",
           "psu_id": "ID number", "psu_id_hint": "5-9 digits, as on your national ID or passport",
           "continue": "Continue to the bank", "reject": "Reject", "close": "Close", "approve": "Approve",
           "consent": "Share your accounts, balances and transactions with {org}", "bank_title": "{bank}: approve access",
           "bank_text": "{org} asks to read your accounts, balances and transactions until {until}.",
           "invalid_psu": "Please enter a valid ID number (5-9 digits).", "choose": "Please choose a provider.",
           "stale": "This step is no longer current.", "expired": "This link is invalid or has expired.",
           "used": "This journey has already been completed.", "done": "Done", "language": "Language",
           "result": {"success": "Your accounts are being connected.", "error": "The connection was rejected.",
                      "cancel": "You left the journey."},
           "redirecting": "Redirecting to your bank…", "sandbox": "provider-sandbox · Open Finance test journey",
           "code": "Authorization code", "state": "State"},
    "he": {"title": "חיבור חשבון הבנק", "choose_provider": "בחרו את הבנק או חברת האשראי",
           "psu_id": "מספר תעודת זהות", "psu_id_hint": "5-9 ספרות, כמו בתעודת הזהות או בדרכון",
           "continue": "המשך לבנק", "reject": "דחייה", "close": "סגירה", "approve": "אישור",
           "consent": "שיתוף החשבונות, היתרות והתנועות שלכם עם {org}", "bank_title": "{bank}: אישור גישה",
           "bank_text": "{org} מבקשת לקרוא את החשבונות, היתרות והתנועות שלכם עד {until}.",
           "invalid_psu": "נא להזין מספר זהות תקין (5-9 ספרות).", "choose": "נא לבחור ספק.",
           "stale": "שלב זה אינו עדכני עוד.", "expired": "הקישור אינו תקף או שפג תוקפו.",
           "used": "התהליך כבר הושלם.", "done": "סיום", "language": "שפה",
           "result": {"success": "החשבונות שלכם מתחברים.", "error": "החיבור נדחה.", "cancel": "יצאתם מהתהליך."},
           "redirecting": "מעבר לבנק…", "sandbox": "provider-sandbox · מסע בדיקה של Open Finance",
           "code": "קוד הרשאה", "state": "מצב"},
}
assert TEXT["he"].keys() == TEXT["en"].keys()

CONNECTION_SCENARIOS = [
    {"kind": "create_connection", "value": "includeFakeProviders: false",
     "effect": f"400 {PRODUCTION_ACCESS!r} unless OPEN_FINANCE_PRODUCTION_ENABLED"},
    {"kind": "journey", "value": "open-finance-sandbox + a psuId of the table above",
     "effect": "the connection ends in that status (COMPLETED instead of ACTIVE for one-time connections); "
               "064837123 stays PARTIALLY_AUTHORIZED until its co-owners answer (section 8): POST "
               "/_sandbox/jobs/<connectionId>.co_owners/complete = all approve (FETCHING -> CONNECTED -> "
               "COMPLETED|ACTIVE, generated data), .../fail = one declines (REJECTED); no answer for 5 days: EXPIRED "
               "(a later answer changes nothing)"},
    {"kind": "journey", "value": "any other psuId (5-9 digits) or provider",
     "effect": "generated accounts (seeded by the psuId), FETCHING -> CONNECTED -> COMPLETED|ACTIVE"},
    {"kind": "create_connection", "value": "startDate: YYYY-MM-DD",
     "effect": "only transactions booked on or after it are served and counted (none for a future date); "
               "a malformed date is 400"},
]
SCENARIOS.extend(CONNECTION_SCENARIOS)
