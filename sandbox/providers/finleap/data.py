"""finX data rules (finleap.md section 9): categories, account and transaction types, id formats, mock bank,
and rendering of the shared ledger into finX accounts and transactions. Tables, not logic, live here.
"""
from __future__ import annotations

import random
import re
from datetime import date, datetime, time, timezone

from dataclasses import replace

from ...core.ids import stable_seed
from ...ledger import market_banks
from ...ledger.iban import is_valid_iban
from ...ledger.models import Account, Ledger

# Fixed category table (finleap.md s.9): ids 2, 15, 31, 42, 56 are documented; the rest are (inferred).
# id -> (name, parent_id, kind); kind drives the income report: income | regular | variable | fee | transfer
CATEGORIES: dict[int, tuple[str, int | None, str]] = {
    1: ("Income", None, "group"), 10: ("Living and housing", None, "group"), 30: ("Daily life", None, "group"),
    50: ("Shopping and leisure", None, "group"), 69: ("Finance", None, "group"),
    2: ("Salary", 1, "income"), 3: ("Pension", 1, "income"), 4: ("Social benefits", 1, "income"),
    5: ("Freelance income", 1, "income"), 6: ("Interest income", 1, "income"), 7: ("Refunds", 1, "income"),
    8: ("Incoming transfers", 1, "income"),
    15: ("Rent", 10, "regular"), 16: ("Mortgage", 10, "regular"), 17: ("Utilities", 10, "regular"),
    18: ("Telecommunication", 10, "regular"), 19: ("Insurance", 10, "regular"), 20: ("Loan repayment", 69, "regular"),
    21: ("Education", 10, "regular"), 42: ("Subscriptions", 50, "regular"),
    31: ("Groceries", 30, "variable"), 32: ("Restaurants", 30, "variable"), 33: ("Coffee and snacks", 30, "variable"),
    34: ("Mobility", 30, "variable"), 35: ("Public transport", 30, "variable"), 36: ("Taxi", 30, "variable"),
    56: ("Online-Shopping", 50, "variable"), 57: ("Electronics", 50, "variable"), 58: ("Leisure", 50, "variable"),
    59: ("Travel", 50, "variable"), 60: ("Health", 30, "variable"), 61: ("Pharmacy", 30, "variable"),
    62: ("Cash withdrawal", 30, "variable"),
    70: ("Bank charges", 69, "fee"), 71: ("Card fees", 69, "fee"), 72: ("Interest charges", 69, "fee"),
    80: ("Credit card settlement", 69, "transfer"), 81: ("Savings", 69, "transfer"), 82: ("Investments", 69, "transfer"),
}

# ledger category -> finX category id
LEDGER_CATEGORY = {
    "salary": 2, "pension": 3, "benefits": 4, "freelance": 5, "interest_income": 6, "refund": 7, "transfer_in": 8,
    "rent": 15, "mortgage": 16, "utilities": 17, "communications": 18, "insurance": 19, "loan_repayment": 20,
    "education": 21, "subscriptions": 42,
    "groceries": 31, "restaurants": 32, "coffee": 33, "fuel": 34, "public_transport": 35, "taxi": 36,
    "shopping": 56, "electronics": 57, "leisure": 58, "travel": 59, "health": 60, "pharmacy": 61,
    "cash_withdrawal": 62, "fees": 70, "card_fee": 71, "interest_charge": 72,
    "card_settlement": 80, "savings_transfer": 81, "securities_purchase": 82,
}

# finX transaction types (finleap.md s.9) by ledger category
TRANSACTION_TYPES = {
    "salary": "Salary or rent", "pension": "Salary or rent", "benefits": "Salary or rent", "rent": "Standing order",
    "mortgage": "Standing order", "loan_repayment": "Standing order", "savings_transfer": "Standing order",
    "securities_purchase": "Standing order", "utilities": "Direct debit", "communications": "Direct debit",
    "insurance": "Direct debit", "subscriptions": "Direct debit", "education": "Direct debit",
    "card_settlement": "Direct debit", "fees": "Charges or interest", "card_fee": "Charges or interest",
    "interest_charge": "Charges or interest", "interest_income": "Charges or interest",
}
ACCOUNT_TYPES = {"checking": "Giro account", "savings": "Savings account", "credit_card": "Credit card",
                 "loan": "Loan account", "mortgage": "Loan account",
                 "securities": "Depot"}   # depots: offered only by the Demobank (finleap-products.md s.3)
# finleap-products.md s.2: the account_types enum of the new products ([AIS] request comment)
ACCOUNT_TYPE_VALUES = ["Giro account", "Savings account", "Daily savings account", "Credit card", "Loan account",
                       "PayPal", "Depot", "Cash book", "Unknown"]
LANGUAGES = ["de", "en", "es", "fr", "ar"]

# The finX mock bank (finleap.md s.8): login figo01 / 654321, SCA "Auth Meth by Phone", OTP 123456.
MOCK_USERNAME, MOCK_PASSWORD, MOCK_OTP = "figo01", "654321", "123456"
SCA_METHODS = ["Auth Meth by Phone", "Auth Meth by App"]
MAX_LOGIN_ATTEMPTS = 3
# finleap-products.md s.13 decision 2: bank code 90090042 belongs to the documented "Demobank - 90090042" ([AIS]
# description: demo / demo, a Depot account); the sandbox's own "Mockbank - Decoupled" (its code was a guess) moved
# to the unused 90090041.
BANKS = [
    {"id": "mockbank-decoupled", "name": "Mockbank - Decoupled", "bic": "MOCKDEMM001", "bank_code": "90090041"},
    {"id": "mockbank-embedded", "name": "Mockbank - Embedded", "bic": "MOCKDEMM002", "bank_code": "90090043"},
    {"id": "demobank", "name": "Demobank - 90090042", "bic": "DEMODEMM001", "bank_code": "90090042"},
]
DEMOBANK_ID, DEMO_USERNAME, DEMO_PASSWORD = "demobank", "demo", "demo"
DEMO_PERSONA = "high_earner_investor"    # its ledger has a securities account, rendered as type "Depot"

# Sandbox-only usernames (password 654321): the account holder's name relative to the verified name, and errors.
USERNAME_SCENARIOS = {
    "figo01": "holder = the name to verify (affinity VERY_HIGH)",
    "figo01+high": "holder = the name with surname first and umlauts transliterated (HIGH)",
    "figo01+medium": "holder = the same first name, another surname (MEDIUM)",
    "figo01+low": "holder = an unrelated name (LOW)",
    "figo01+sca": "later syncs of this access need a redirect SCA (AWAIT_AUTH)",
    "figo01+syncfail": "later syncs of this access end FAILED",
    "figo01+risky": "a risky persona: overdraft days, returned direct debits, gambling, debt collection (risk "
                    "report risk_indicators; finleap-products.md s.11)",
    "figo01+paymentfail": "the bank rejects the payment: redirect success=false, no receipt (payment flows)",
    "bank_error": "the bank answers with an error: redirect with success=false",
}
SCENARIOS = [
    {"kind": "widget login", "value": f"{MOCK_USERNAME} / {MOCK_PASSWORD}, OTP {MOCK_OTP}",
     "effect": "successful login (documented mock bank)", "source": "finleap.md section 8"},
    *({"kind": "widget username", "value": k, "effect": v} for k, v in USERNAME_SCENARIOS.items() if k != "figo01"),
    {"kind": "widget", "value": "wrong password 3 times", "effect": "redirect success=false (no cancel)"},
    {"kind": "widget", "value": "Cancel button", "effect": "redirect success=false&cancel=true"},
    {"kind": "widget bank", "value": "Demobank - 90090042, login demo / demo",
     "effect": "no SCA; offers a Depot account (GET /rest/securities non-empty)", "source": "[AIS] description"},
    {"kind": "control API", "value": 'POST /_sandbox/clients {"scopes": {"finleap": ["legacy-codes", ...]}}',
     "effect": "figo-style authorization codes (O...) for that client only (python-figo / node-figo)"},
    {"kind": "control API", "value": 'POST /_sandbox/clients {"scopes": {"finleap": ["product:payment", ...]}}',
     "effect": "only the listed products (product:income-report, account-verification, access, payment, "
               "risk-report, categorization); the others answer 403 code 1002"},
]


def category_path(category_id: int) -> list[dict]:
    """finX ``categories``: general -> specific, ``[{id, parent_id, name}]``."""
    name, parent, _ = CATEGORIES[category_id]
    path = [{"id": category_id, "parent_id": parent, "name": name}]
    while parent is not None:
        pname, pparent, _ = CATEGORIES[parent]
        path.insert(0, {"id": parent, "parent_id": pparent, "name": pname})
        parent = pparent
    return path


def category_kind(category_id: int) -> str:
    return CATEGORIES[category_id][2]


def figo_id(prefix: str, *parts) -> str:
    """figo-style opaque ids (inferred, s.9): ``A1234567.8``, ``T…``, ``N…``."""
    rng = random.Random(stable_seed(prefix, *parts))
    return f"{prefix}{rng.randrange(10**6, 10**7)}.{rng.randrange(1, 100)}"


def transaction_id(account_id: str, serial: str) -> str:
    """A figo-style transaction id unique by construction within its account: the account's digits, then a
    serial (the ledger's per-account sequence, or a sync's own serial), e.g. ``T12345678.42``. Random ids in
    the same short space collided (two transactions of one account sharing an id)."""
    return f"T{re.sub(r'[^0-9]', '', account_id)}.{serial}"


def _stamp(d: date) -> str:
    return datetime.combine(d, time(6, 0), tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


def render_account(account: Account, access_id: str, flow_id: str) -> dict:
    """A finX Account (python-figo models.py) for a ledger account; ``balance`` follows its transactions."""
    return {
        "account_id": figo_id("A", flow_id, account.id), "account_number": account.number,
        "bank_code": account.bank_code, "iban": account.iban, "bic": _bic(account), "access_id": access_id,
        "bank_name": account.bank_name, "icon": None, "currency": account.currency,
        "balance": None,  # filled by the service from the stored transactions
        "type": ACCOUNT_TYPES[account.kind], "name": account.name, "owner": account.owner_name,
        "auto_sync": True, "save_pin": False, "supported_payments": {}, "is_jointly_managed": False,
        "status": None,
    }


def _bic(account: Account) -> str:
    letters = re.sub(r"[^A-Z]", "", account.bank_name.upper())[:4]  # BIC: 4 letters bank, DE, location, branch
    return f"{letters:X<4}DE{account.bank_code[-2:]}XXX"[:11]


def render_transaction(t, account_id: str, flow_id: str, sync_id: str | None = None) -> dict:
    """A finX Transaction for a ledger transaction (amount signed, negative = debit; money as a JSON number)."""
    category_id = LEDGER_CATEGORY[t.category]
    return {
        "transaction_id": transaction_id(account_id, str(int(t.id.rsplit("-", 1)[1]))), "account_id": account_id, "name": t.counterparty,
        "account_number": None, "bank_code": None, "bank_name": None, "amount": float(t.amount),
        "currency": t.currency, "booking_date": t.booking_date.isoformat(), "value_date": t.value_date.isoformat(),
        "purpose": t.description, "type": TRANSACTION_TYPES.get(t.category, "Transfer"),
        "booking_text": TRANSACTION_TYPES.get(t.category, "Transfer").upper(), "booked": True,
        "categories": category_path(category_id), "creation_timestamp": _stamp(t.booking_date),
        "modification_timestamp": _stamp(t.booking_date), "visited": False, "bic": None,
        "iban": t.counterparty_iban, "booking_key": None, "creditor_id": None, "mandate_reference": None,
        "sepa_purpose_code": None, "sepa_remittance_info": t.description, "text_key_addition": None,
        "end_to_end_reference": None, "customer_reference": None, "prima_nota_number": None,
        "additional_info": None, "sync_id": sync_id,
    }


def widget_accounts(ledger: Ledger, depot: bool = False) -> list[Account]:
    """Accounts the widget offers; securities depots only at the Demobank (``depot``)."""
    return [a for a in ledger.accounts if a.kind in ACCOUNT_TYPES and (depot or a.kind != "securities")]


def bank_by_id(bank_id: str | None) -> dict | None:
    return next((b for b in selectable_banks() if b["id"] == bank_id), None)


def bank_of_iban(iban: str | None) -> dict | None:
    """The selectable bank whose code a German IBAN carries (characters 5-12), or None."""
    if not iban or not iban.upper().startswith("DE") or len(iban) < 12:
        return None
    return next((b for b in selectable_banks() if b["bank_code"] == iban[4:12]), None)


def apply_preset_ibans(accounts: list[Account], preset: list[str]) -> list[Account]:
    """Accounts the client already knew (``accounts[].id`` / ``account`` IBANs) become the connected accounts."""
    ibans = [p.replace(" ", "").upper() for p in preset if is_valid_iban(p) and p.upper().startswith("DE")]
    out = list(accounts)
    giros = [i for i, a in enumerate(out) if a.iban]
    for index, iban in zip(giros, ibans):
        out[index] = replace(out[index], iban=iban, bank_code=iban[4:12], number=iban[12:].lstrip("0") or "0")
    return out


def selectable_banks() -> list[dict]:
    """Banks offered on the widget's bank step: the finX mock banks plus a few German banks (fixtures)."""
    return BANKS + [{"id": f"bank-{b['id']}", "name": b["name"], "bic": "", "bank_code": str(b["code"])}
                    for b in market_banks("DE")[:4]]
