"""The shared financial world: plain dataclasses every provider renders into its own payloads.

Money is always ``Decimal`` with two places; dates are ``datetime.date``. Providers never mutate these objects:
they persist what they need (via ``to_json``) and render at their own edge.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal

# Account kinds every market may produce.
ACCOUNT_KINDS = ("checking", "credit_card", "savings", "loan", "mortgage", "securities")

# Neutral ledger categories (providers map them to their own taxonomies in their data.py).
# kind tells how a category behaves: income, regular (scheduled) expense, variable expense, internal transfer, fee.
CATEGORY_KINDS = {
    "salary": "income", "pension": "income", "benefits": "income", "freelance": "income",
    "interest_income": "income", "refund": "income", "transfer_in": "income",
    "rent": "regular", "mortgage": "regular", "utilities": "regular", "communications": "regular",
    "insurance": "regular", "subscriptions": "regular", "loan_repayment": "regular", "education": "regular",
    "groceries": "variable", "restaurants": "variable", "coffee": "variable", "fuel": "variable",
    "public_transport": "variable", "taxi": "variable", "shopping": "variable", "electronics": "variable",
    "leisure": "variable", "travel": "variable", "health": "variable", "pharmacy": "variable",
    "cash_withdrawal": "variable",
    "fees": "fee", "card_fee": "fee", "interest_charge": "fee",
    "card_settlement": "transfer", "savings_transfer": "transfer", "securities_purchase": "transfer",
}


@dataclass(frozen=True)
class Transaction:
    id: str                      # stable within the ledger: f"{account_id}-{n:05d}"
    account_id: str
    booking_date: date
    value_date: date
    amount: Decimal              # > 0 credit, < 0 debit, in the account currency
    currency: str
    description: str             # booking text as a bank would show it
    counterparty: str            # payment partner (employer, landlord, merchant, bank)
    counterparty_iban: str | None
    category: str                # key of CATEGORY_KINDS
    balance_after: Decimal       # running balance of the account after this booking
    # What the booking is beyond its category, for markets that generate such events (IL, fixtures/markets/IL.yaml
    # ``features``): cheque, cheque_deposit, cheque_returned, cheque_cancelled, standing_order_returned,
    # alert_notice, foreclosure, loan_arrears, arrears_payment. None (and absent from to_json) elsewhere.
    event: str | None = None

    @property
    def kind(self) -> str:
        return CATEGORY_KINDS[self.category]

    def to_json(self) -> dict:
        data = _shallow(self)
        if data["event"] is None:
            del data["event"]   # ledgers without events serialise exactly as before
        return data


@dataclass(frozen=True)
class Holding:
    name: str
    isin: str
    units: Decimal
    average_price: Decimal
    price: Decimal
    currency: str

    @property
    def value(self) -> Decimal:
        return (self.units * self.price).quantize(Decimal("0.01"))

    def to_json(self) -> dict:
        return _shallow(self)


@dataclass
class Account:
    id: str                      # stable: f"{customer-derived prefix}-{kind}-{n}"
    kind: str                    # one of ACCOUNT_KINDS
    name: str                    # product name, e.g. "Girokonto", "חשבון עו\"ש", "Visa Gold"
    currency: str
    bank_id: str                 # market bank key (fixtures/markets/<M>.yaml), e.g. "leumi", "dkb"
    bank_name: str
    bank_code: str               # IL: 2-digit bank number ("10"); DE: 8-digit BLZ
    branch: str | None           # IL: 3-digit branch; DE: None
    number: str                  # IL: BBAN "bank-branch-account" e.g. "10-944-50151142"; DE: account number; card: masked PAN
    iban: str | None             # ISO 13616 with correct mod-97 check digits (None for cards)
    owner_name: str
    opening_balance: Decimal     # balance before the first transaction
    balance: Decimal             # == opening_balance + sum(t.amount for t in transactions)
    credit_limit: Decimal | None = None
    transactions: list[Transaction] = field(default_factory=list)
    holdings: list[Holding] = field(default_factory=list)   # securities accounts only; balance == sum(values)

    def to_json(self) -> dict:
        data = _shallow(self, skip=("transactions", "holdings"))
        data["transactions"] = [t.to_json() for t in self.transactions]
        data["holdings"] = [h.to_json() for h in self.holdings]
        return data


@dataclass
class Ledger:
    customer_id: str
    market: str                  # "IL" | "DE" | "IN"
    persona: str                 # persona file stem, e.g. "salaried_renter"
    owner_name: str              # Latin script
    owner_name_native: str       # market script (Hebrew for IL; same as owner_name elsewhere)
    national_id: str             # IL: 9 digits; DE: tax id 11 digits; IN: PAN "ABCDE1234F"
    anchor: date                 # "today" on the sandbox clock when generated; no booking after it
    months: int
    accounts: list[Account] = field(default_factory=list)

    def to_json(self) -> dict:
        data = _shallow(self, skip=("accounts",))
        data["accounts"] = [a.to_json() for a in self.accounts]
        return data


_FIELDS: dict[type, tuple[str, ...]] = {}


def _shallow(obj, skip: tuple[str, ...] = ()) -> dict:
    """``obj``'s own fields as JSON values (Decimal -> str, date -> ISO), without ``skip``. Unlike
    ``dataclasses.asdict`` it never deep-copies the nested lists the callers serialise themselves: asdict on a
    Ledger copied every transaction three times over (77 -> 9 ms for a 12-month ledger)."""
    names = _FIELDS.get(type(obj))
    if names is None:
        names = _FIELDS[type(obj)] = tuple(f.name for f in fields(obj))
    return {name: _jsonable(getattr(obj, name)) for name in names if name not in skip}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def ledger_from_json(data: dict) -> Ledger:
    """Inverse of ``Ledger.to_json`` (ledgers are persisted as JSON documents in the store)."""
    accounts = []
    for raw in data["accounts"]:
        txns = [Transaction(**{**t, "booking_date": date.fromisoformat(t["booking_date"]),
                               "value_date": date.fromisoformat(t["value_date"]), "amount": Decimal(t["amount"]),
                               "balance_after": Decimal(t["balance_after"])}) for t in raw["transactions"]]
        holdings = [Holding(**{**h, "units": Decimal(h["units"]), "average_price": Decimal(h["average_price"]),
                               "price": Decimal(h["price"])}) for h in raw["holdings"]]
        fields = {k: v for k, v in raw.items() if k not in ("transactions", "holdings")}
        for key in ("opening_balance", "balance", "credit_limit"):
            if fields.get(key) is not None:
                fields[key] = Decimal(fields[key])
        accounts.append(Account(**fields, transactions=txns, holdings=holdings))
    head = {k: v for k, v in data.items() if k != "accounts"}
    head["anchor"] = date.fromisoformat(head["anchor"])
    return Ledger(**head, accounts=accounts)
