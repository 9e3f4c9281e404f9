"""Open Finance accounts, balances and transactions of a user's connections, categories and extended securities
(open_finance.md sections 6 and 10).

Everything is rendered from the ONE ledger stored per connection (``open_finance.ledgers``, the same ledger the
financial report computes from): account balances are the ledger's balances (opening + sum of the transactions),
each transaction's ``balancePerEndDay`` is the account's end-of-day balance, balance histories are rolled back from
the current balance through the transactions (ledger/analytics.balance_history). Ids are UUIDs derived from the
connection id and the ledger's own ids, so they are stable for a seed and differ between users and tenants.

A connection created with ``startDate`` (section 6: "transactions are collected from this date") serves only the
transactions booked on or after it: lists, lookups by SK, counts and balance histories all read the cut list, and
service.ledgers_of cuts the ledgers the reports and jobs compute from the same way (data.cut_ledger). What the bank
reports about the account itself (balances, rates, loan dates, holdings) is not transaction data and is not cut.

Decisions marked (inferred) are not in the provider's documents; the spec sections are cited next to each quirk.
"""
from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from urllib.parse import unquote

from ...core import fastjson
from ...core.collections import scope_prefix
from ...core.derived import Derived
from ...core.errors import BadRequest, NotFound, ValidationFailed
from ...core.ids import stable_seed, uuid4
from ...core.paging import OPEN_FINANCE_MAX_TRANSACTIONS, invalid, open_finance_page
from ...ledger.analytics import balance_history
from ...ledger.generator import add_months
from ...ledger.models import CATEGORY_KINDS, ledger_from_json
from . import data

_LEDGERS = "open_finance.ledgers"            # the same store collection service.py writes (one ledger/connection)
_CHANGES = "open_finance.transaction_changes"  # per-user PATCHes of transactions (update_transaction)
# Rendered views of the stored ledgers, reused while a ledger's stored text is unchanged (core/derived.py): a
# transaction page rendered all ~1,500 transactions of a 12-month ledger on every request (issue 14)
_VIEWS = Derived(size=8)
NOT_FOUND = "Route or entity not found"       # API reference 404 text of the /v2/data routes (section 4)
TX_NOT_FOUND = "Transaction not found"         # section 4 / 6: get/patch transaction by SK
USER_IN_QUERY = "userId is not allowed in query for non-admin users"   # section 3 / 4

# ledger account kind -> accountType (section 6: CHECKING | CARD | LOAN | SAVINGS | SECURITIES)
ACCOUNT_TYPES = {"checking": "CHECKING", "credit_card": "CARD", "savings": "SAVINGS", "loan": "LOAN",
                 "mortgage": "LOAN", "securities": "SECURITIES"}
# Connection object counts (section 6 "Connection object": accounts, cards, savings, loans, securities)
_COUNT_KEYS = {"CHECKING": "accounts", "CARD": "cards", "SAVINGS": "savings", "LOAN": "loans",
               "SECURITIES": "securities"}
# Connections whose stored ledger the data endpoints serve: ACTIVE / COMPLETED (the statuses reports and jobs use,
# section 6-7), CONNECTED once fetched, and FETCHING during a refresh (the previous fetch's data stays readable).
# (inferred) A REPLACED connection's data is served by the newer connection of the same psuId and provider
# (section 8), so listing both would show every account twice; error and expired connections serve none.
DATA_STATUSES = ("ACTIVE", "COMPLETED", "CONNECTED", "FETCHING")

# (inferred) MCC codes of card purchases (section 10: categoryCode "MCC or other", categorizedBy example "MCC").
MCC = {"groceries": "5411", "restaurants": "5812", "coffee": "5814", "fuel": "5541", "public_transport": "4111",
       "taxi": "4121", "shopping": "5651", "electronics": "5732", "leisure": "7832", "travel": "4722",
       "health": "8011", "pharmacy": "5912", "subscriptions": "4899", "communications": "4814",
       "utilities": "4900", "insurance": "6300", "education": "8220", "cash_withdrawal": "6011"}

# Classification types (section 10: REGULAR_EXPENSE and *_INCOME are documented; the rest (inferred)).
CLASSIFICATIONS = ("REGULAR_INCOME", "IRREGULAR_INCOME", "REGULAR_EXPENSE", "IRREGULAR_EXPENSE", "INTERNAL_TRANSFER")
CLASSIFICATION_SOURCES = ("SYSTEM", "USER")
_TRANSFERS = ("card_settlement", "savings_transfer", "securities_purchase")

# docs.open-finance.ai/docs/transaction-categories (section 10): main -> subs, expenses and incomes.
EXPENSE_CATEGORIES = {
    "HOUSEHOLD_&_SERVICES": ["RENT", "MORTGAGE", "COMMUNICATIONS", "UTILITIES", "INSURANCE_&_FEES", "SERVICES", "HOME",
                             "HOUSEHOLD_&_SERVICES_OTHER"],
    "HOME_IMPROVEMENTS": ["RENOVATION_&_REPAIRS", "FURNITURE_&_INTERIOR", "GARDEN", "HOME_IMPROVEMENTS_OTHER"],
    "FOOD_&_DRINKS": ["GROCERIES", "RESTAURANT", "COFFEE_&_SNACKS", "ALCOHOL_&_TOBACCO", "BARS", "FOOD_&_DRINKS_OTHER"],
    "TRANSPORT": ["CAR_&_FUEL", "PUBLIC_TRANSPORT", "FLIGHTS", "TAXI", "TRANSPORT_OTHER"],
    "SHOPPING": ["CLOTHES_&_ACCESSORIES", "ELECTRONICS", "HOBBY_&_SPORTS_EQUIPMENT", "BOOKS_&_GAMES", "GIFTS",
                 "SHOPPING_OTHER"],
    "LEISURE": ["CULTURE_&_EVENTS", "HOBBIES", "SPORTS_&_FITNESS", "VACATION", "LEISURE_OTHER"],
    "HEALTH_&_BEAUTY": ["HEALTHCARE", "PHARMACY", "EYECARE", "BEAUTY", "HEALTH_&_BEAUTY_OTHER"],
    "OTHER": ["CASH_WITHDRAWALS", "BUSINESS_EXPENSES", "KIDS", "PETS", "CHARITY", "EDUCATION", "UNCATEGORIZED", "OTHER"],
    "FINANCE": ["INTEREST_RATES", "FINANCE_OTHER", "FEES", "CHECKS_GENERAL", "CREDIT_CARD_EXPENSES", "LOANS", "SAVINGS",
                "CAPITAL_MARKET"],
}
INCOME_CATEGORIES = {
    "SALARY": ["SALARY_OTHER"], "PENSION": ["PENSION_OTHER"], "REIMBURSEMENTS": ["REIMBURSEMENTS_OTHER"],
    "BENEFITS": ["BENEFITS_OTHER"], "FINANCE": ["FINANCE_OTHER"], "OTHER": ["OTHER", "UNCATEGORIZED"],
}

CENT = Decimal("0.01")


def num(value: Decimal) -> int | float:
    """Decimal money as a JSON number (whole amounts stay integers, as in the reference's Amount example)."""
    with localcontext() as c:
        c.prec = max(28, value.adjusted() + 4)
        q = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return int(q) if q == q.to_integral_value() else float(q)


def amount(value: Decimal, currency: str) -> dict:
    return {"amount": num(value), "currency": currency}


def account_uuid(connection_id: str, ledger_account_id: str, duplicate: bool = False) -> str:
    """The public account id: a UUID v4 derived from the connection and the ledger account (stable for a seed)."""
    return uuid4(random.Random(stable_seed("open_finance.account", connection_id, ledger_account_id,
                                           "bank-view" if duplicate else "")))


def booking_ref(ledger_account_id: str, day: date, n: int) -> str:
    """The provider's reference of the ``n``-th booking of ``day`` on a ledger account (1-based, the SK's numbering).
    Unlike the ledger's positional ids it survives a refresh that moves the data window (section 6: a refresh moves
    the data forward; the bookings already served keep their ids, as a bank's do)."""
    return f"{ledger_account_id}-{day:%Y%m%d}-{n:03d}"


def _tx_uuid(account_id: str, ledger_tx_id: str) -> str:
    return uuid4(random.Random(stable_seed("open_finance.transaction", account_id, ledger_tx_id)))


def _overdraft(connection_id: str, ledger_account_id: str) -> Decimal:
    """(inferred) a checking account's overdraft limit: the ledger has none, the balance types need one (s.6)."""
    return Decimal(random.Random(stable_seed("open_finance.overdraft", connection_id, ledger_account_id))
                   .choice((2000, 5000, 10000, 15000, 20000)))


def sk(account_id: str, booking_date: str, n: int) -> str:
    """Transaction SK (section 10, inferred format): ``TX#<accountId>#<bookingDate>#<n>``, n counts from 1 per day."""
    return f"TX#{account_id}#{booking_date}#{n}"


def _classification(category: str, amount_: Decimal) -> str:
    kind = CATEGORY_KINDS.get(category)
    if category in _TRANSFERS:
        return "INTERNAL_TRANSFER"
    if amount_ > 0:
        return "REGULAR_INCOME" if category in data.REGULAR_INCOME else "IRREGULAR_INCOME"
    return "REGULAR_EXPENSE" if kind == "regular" else "IRREGULAR_EXPENSE"


class _View:
    """One connection's ledger rendered as Open Finance accounts and transactions (internal, per request)."""

    def __init__(self, connection: dict, ledger, org_id: str, start: date | None = None):
        self.connection, self.ledger, self.org_id = connection, ledger, org_id
        self.start = start                    # section 6 startDate: transactions booked before it are not collected
        self.accounts: list[dict] = []        # public Account objects (duplicates included)
        self.transactions: list[dict] = []    # public Transaction objects, oldest first
        self.ledger_accounts: dict[str, object] = {}   # public account id -> ledger Account
        self.collected: dict[str, list] = {}  # public account id -> its ledger transactions on/after ``start``
        self.duplicates: set[str] = set()     # public ids of duplicate accounts
        self._build()

    def _build(self) -> None:
        conn, ledger = self.connection, self.ledger
        banks = [a for a in ledger.accounts if a.kind != "credit_card"]
        for account in ledger.accounts:
            kept = [t for t in account.transactions if self.start is None or t.booking_date >= self.start]
            views = [(account_uuid(conn["id"], account.id), data.provider_id(account), False)]
            if account.kind == "credit_card" and banks:
                # section 6: "a card connected both via its bank and its issuer yields duplicate transactions";
                # (inferred) every card of a sandbox connection is also reported by the account-holding bank
                views.append((account_uuid(conn["id"], account.id, True), data.provider_id(banks[0]), True))
            for public_id, provider, duplicate in views:
                self.ledger_accounts[public_id] = account
                self.collected[public_id] = kept
                if duplicate:
                    self.duplicates.add(public_id)
                self.accounts.append(self._account(account, public_id, provider, len(kept)))
                self.transactions.extend(self._transactions(account, kept, public_id, provider, duplicate))
        self.transactions.sort(key=lambda t: t["date"]["bookingDate"])   # stable: account order within a day
        self.visible = [t for t in self.transactions if not t["isDuplicate"]]   # what a page shows by default

    # --- accounts ------------------------------------------------------------------------------------------
    def _account(self, a, public_id: str, provider: str, collected: int) -> dict:
        conn, ledger = self.connection, self.ledger
        account_type = ACCOUNT_TYPES[a.kind]
        bank, branch, number = data.split_bban(a.number)
        ref_date = ledger.anchor.isoformat()
        out = {
            "id": public_id, "userId": conn["userId"], "providerId": provider, "connectionId": conn["id"],
            "externalId": a.id, "status": "enabled", "accountNumber": a.number, "product": a.name,
            "parsedAccount": {"bank": bank, "branch": branch, "number": number}, "accountType": account_type,
            "currency": a.currency, "ownerInfo": {"nationalId": ledger.national_id, "fullName": a.owner_name},
            "accountName": a.name, "balances": self._balances(a, ref_date), "usage": "private",
            "transactions": collected,   # the count of the transactions served (section 6 startDate)
        }
        if a.kind == "checking":
            out["creditLimit"] = num(_overdraft(conn["id"], a.id))
        if a.kind == "credit_card":
            out["parsedAccount"] = {"bank": "", "branch": "", "number": a.number[-4:]}
            out["creditStatus"] = "enabled"
            out["creditLimit"] = num(a.credit_limit or Decimal(0))
            settled = _last_settlement(a)
            if settled:
                out["cardDueDate"] = add_months(settled, 1).isoformat()   # (inferred) monthly billing day
        if a.kind in ("loan", "mortgage"):
            out["loanType"] = ["MORTGAGE" if a.kind == "mortgage" else "RETAIL_LOAN"]
            out["relatedDates"] = _loan_dates(a, ledger.anchor)
        if a.kind in ("loan", "mortgage", "savings"):
            rate = _interest_rate(a)
            if rate is not None:
                out["interst"] = [{"rate": [{"precentage": rate}], "type": "INDE" if a.kind != "savings" else "FIXD",
                                   "relatedIndecies": [{"index": "PRIME", "additionalInformation": "Bank of Israel prime"}]
                                   if a.kind != "savings" else [], "currency": a.currency}]   # "interst" (sic, s.6)
        if a.kind == "securities":
            out["securityPositions"] = [_position(h, ledger.anchor) for h in a.holdings]
            out["securityOrders"] = [{k: v for k, v in o.items() if k != "providerId"}
                                     for o in _orders(a, public_id, provider)]
        return out

    def _balances(self, a, ref_date: str) -> list[dict]:
        """docs.open-finance.ai/docs/account-balance-types (section 6): checking closingBooked twice (with and
        without the overdraft, creditLimitIncluded) plus interim balances; cards nonInvoiced; loans the original
        amount as closingBooked at the contract start. Signs are the ledger's (< 0 owed), so the current balance
        is always opening balance + sum of the transactions."""
        def bal(kind, value, when=ref_date, limit=False):
            return {"balanceType": kind, "balanceAmount": amount(value, a.currency), "referenceDate": when,
                    "creditLimitIncluded": limit}
        if a.kind == "checking":
            limit = _overdraft(self.connection["id"], a.id)
            return [bal("closingBooked", a.balance), bal("closingBooked", a.balance + limit, limit=True),
                    bal("interimBooked", a.balance), bal("interimAvailable", a.balance + limit, limit=True)]
        if a.kind == "credit_card":
            settled = _last_settlement(a)
            open_ = sum((t.amount for t in a.transactions if not _invoiced(settled, t)), Decimal(0))
            return [bal("nonInvoiced", open_), bal("closingBooked", a.balance),
                    bal("interimAvailable", (a.credit_limit or Decimal(0)) + a.balance, limit=True)]
        if a.kind in ("loan", "mortgage"):
            start = _loan_dates(a, self.ledger.anchor)["contractStartDate"]
            return [bal("closingBooked", a.opening_balance, when=start), bal("interimBooked", a.balance)]
        return [bal("closingBooked", a.balance), bal("interimAvailable", a.balance)]

    # --- transactions --------------------------------------------------------------------------------------
    def _transactions(self, a, kept: list, public_id: str, provider: str, duplicate: bool) -> list[dict]:
        conn = self.connection
        end_of_day: dict[date, Decimal] = {}
        for t in a.transactions:          # the account's balance after the day's last booking
            end_of_day[t.booking_date] = t.balance_after
        per_day: dict[date, int] = defaultdict(int)
        own = {"currency": a.currency}
        if a.kind == "credit_card":
            own["maskedPan"] = a.number
        else:
            own["bban"] = a.number
            if a.iban:
                own["iban"] = a.iban
        settled = _last_settlement(a) if a.kind == "credit_card" else None
        out = []
        for t in kept:   # the cut keeps whole days: SK numbers per day are those of the full ledger
            per_day[t.booking_date] += 1
            day = t.booking_date.isoformat()
            ref = booking_ref(a.id, t.booking_date, per_day[t.booking_date])
            main, sub = data.CATEGORIES[t.category]
            mcc = MCC.get(t.category) if a.kind == "credit_card" else None
            other = {"currency": t.currency, **({"iban": t.counterparty_iban} if t.counterparty_iban else {}),
                     "other": t.counterparty}
            tx = {
                "id": _tx_uuid(public_id, ref), "SK": sk(public_id, day, per_day[t.booking_date]),
                "userId": conn["userId"], "orgId": self.org_id, "connectionId": conn["id"], "accountId": public_id,
                "providerId": provider, "transactionProviderIdentifier": ref, "accountNumber": a.number,
                "status": "BOOKED", "entryReference": ref,
                "amount": {"originalAmount": amount(t.amount, t.currency), "chargedAmount": amount(t.amount, t.currency)},
                "description": {"description": t.description, "additionalInfo": t.counterparty},
                "category": {"main": main, "sub": sub, "categorizedBy": "MCC" if mcc else "SYSTEM"},
                "type": "NORMAL",
                "date": {"valueDate": t.value_date.isoformat(), "bookingDate": day,
                         "transactionDate": t.value_date.isoformat()},
                "merchantName": t.counterparty,
                "classification": {"type": _classification(t.category, t.amount), "source": "SYSTEM"},
                "labels": [],
                "balancePerEndDay": num(end_of_day[t.booking_date]),
                "isDuplicate": duplicate,
                # chargedAmount > 0 is a credit (section 10): the other party is the debtor, else the creditor
                "debtorAccount": other if t.amount > 0 else own,
                "creditorAccount": own if t.amount > 0 else other,
            }
            if mcc:
                tx["categoryCode"] = mcc
            if a.kind == "credit_card":
                tx["isInvoiced"] = _invoiced(settled, t)
            out.append(tx)
        return out


def _last_settlement(a) -> date | None:
    days = [t.booking_date for t in a.transactions if t.category == "card_settlement"]
    return max(days) if days else None


def _invoiced(settled: date | None, t) -> bool:
    """(inferred) a card transaction is invoiced once a monthly settlement was booked on or after its date."""
    return settled is not None and t.booking_date <= settled


def _loan_dates(a, anchor: date) -> dict:
    """(inferred) contract start one month before the first instalment; end when the instalments' average principal
    repays the remaining balance."""
    first = a.transactions[0].booking_date if a.transactions else anchor
    start = add_months(first, -1)
    principal = [t.amount for t in a.transactions if t.amount > 0]
    paid = sum(principal, Decimal(0)) - sum((-t.amount for t in a.transactions if t.amount < 0), Decimal(0))
    per_month = paid / len(principal) if principal and paid > 0 else None
    months = int((-a.balance / per_month).to_integral_value()) + 1 if per_month and a.balance < 0 else 0
    return {"contractStartDate": start.isoformat(), "contractEndDate": add_months(anchor, months).isoformat(),
            "contractAvailabilityDate": start.isoformat()}


def _interest_rate(a) -> float | None:
    """(inferred) yearly rate in % from the ledger's interest bookings of the last 12 months over the balance."""
    cats = ("interest_charge",) if a.kind != "savings" else ("interest_income",)
    rows = [t for t in a.transactions if t.category in cats]
    if not rows or not a.balance:
        return None
    since = rows[-1].booking_date - timedelta(days=365)
    yearly = abs(sum((t.amount for t in rows if t.booking_date > since), Decimal(0)))
    span = max((rows[-1].booking_date - max(rows[0].booking_date, since)).days, 1)
    yearly = yearly * Decimal(365) / Decimal(max(span, 300))
    return float((yearly / abs(a.balance) * 100).quantize(CENT))


def _position(h, anchor: date) -> dict:
    return {"financialInstrument": {
        "isin": h.isin, "name": h.name,
        "normalisedPrice": {"amount": amount(h.price, h.currency), "priceDateTime": f"{anchor.isoformat()}T00:00:00Z",
                            "priceType": "MRKT", "sourceOfPrice": {"type": "LMAR", "mic": "XTAE"}},
        "unitsNumber": num(h.units), "balanceType": "AVAI",
        "averageBuyingPrice": amount(h.average_price, h.currency), "details": h.isin[2:8]}}


def _orders(a, account_id: str, provider: str) -> list[dict]:
    """(inferred) one filled buy order per deposit into the securities account, for the holdings in turn; units
    are what the deposit buys at the holding's average price."""
    if not a.holdings:
        return []
    out = []
    for i, t in enumerate(t for t in a.transactions if t.category == "securities_purchase" and t.amount > 0):
        h = a.holdings[i % len(a.holdings)]
        units = int(t.amount // h.average_price) if h.average_price > 0 else 0
        out.append({"orderId": _tx_uuid(account_id, f"order-{t.booking_date}-{t.amount}"), "side": "buy",
                    "financialInstrument": {"isin": h.isin, "name": h.name}, "unitsNumber": str(units),
                    "orderStatus": "filled", "providerId": provider})
    return out


def _flag(query: dict, name: str) -> bool:
    value = query.get(name)
    return value in ("1", "true")


def _invalid_together(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([{"pointer": f"/{field}", "field": field, "message": message, "validator": "custom"}])


class Accounts:
    """list/get accounts, balance history, list/get/patch transactions, categories, extended securities."""

    def setup(self) -> None:
        """Register this area's job kinds, flows or webhooks (called once by OpenFinanceService.__init__)."""

    # --- shared model (also used by connections.py and decisions.py) -----------------------------------------
    def _view(self, tenant: str, connection: dict) -> _View | None:
        """The connection's ledger rendered, or None without data. Shared with later requests of this process
        while the stored ledger is the same (_VIEWS): read-only for every caller."""
        if connection.get("status") not in DATA_STATUSES:
            return None
        text = self.sb.store.get_text(tenant, _LEDGERS, connection["id"])
        if text is None:
            return None
        org = connection.get("orgId") or (self.org_id(tenant) if hasattr(self, "org_id") else tenant)
        start = data.start_date(connection)   # section 6: the cut is the connection's own, never shared
        # everything of the connection a view renders is in the key; the ledger is compared by its full text
        key = (tenant, connection["id"], connection["userId"], org, start)
        return _VIEWS.get(key, text, lambda raw: _View(connection, ledger_from_json(fastjson.loads(raw)), org, start))

    def _views(self, tenant: str, user_id: str) -> list[_View]:
        # user_connections applies the transitions due on the sandbox clock first (connections.py, s.8)
        views = (self._view(tenant, c) for c in self.user_connections(tenant, user_id))
        return [v for v in views if v is not None]

    def account_objects(self, tenant: str, connection: dict, include_duplicates: bool = False) -> list[dict]:
        """The public Account objects of one connection, as list_accounts shows them (duplicates only when asked)."""
        view = self._view(tenant, connection)
        if view is None:
            return []
        return [a for a in view.accounts if include_duplicates or a["id"] not in view.duplicates]

    def connection_counts(self, tenant: str, connection: dict) -> dict:
        """{accounts, cards, savings, loans, securities, transactions} of a connection exactly as list_accounts and
        list_transactions (connectionId filter, no duplicates) count them; every value None while it has no data."""
        view = self._view(tenant, connection)
        if view is None:
            return {k: None for k in (*_COUNT_KEYS.values(), "transactions")}
        counts = {k: 0 for k in _COUNT_KEYS.values()}
        for a in view.accounts:
            if a["id"] not in view.duplicates:
                counts[_COUNT_KEYS[a["accountType"]]] += 1
        counts["transactions"] = sum(1 for t in view.transactions if not t["isDuplicate"])
        return counts

    def _find_account(self, ctx, account_id: str) -> tuple[_View, dict]:
        for view in self._views(ctx.tenant, ctx.user):
            for account in view.accounts:
                if account["id"] == account_id:
                    return view, account
        raise NotFound(NOT_FOUND)   # unknown, foreign or deleted (section 4)

    # --- accounts -----------------------------------------------------------------------------------------------
    def list_accounts(self, ctx) -> dict:
        """The token user's accounts over all connections, filtered by accountType/connectionId, duplicates hidden
        unless includeDuplicates=1, paged by the nextPage cursor (section 6)."""
        q = ctx.query
        if q.get("userId") not in (None, "", ctx.user):
            _user_in_query()
        dups = _flag(q, "includeDuplicates")
        items = []
        for view in self._views(ctx.tenant, ctx.user):
            items.extend(a for a in view.accounts if dups or a["id"] not in view.duplicates)
        wanted = {"accountType": q.get("accountType") or None, "connectionId": q.get("connectionId") or None}
        bind = json.dumps([wanted, dups], sort_keys=True)
        return open_finance_page(items, q, filter=wanted, bind=bind, secret=ctx.sandbox.cursor_secret(ctx.tenant))

    def get_account(self, ctx, accountId: str) -> dict:
        """One account of the token user; 404 for unknown, foreign or deleted ids."""
        return self._find_account(ctx, accountId)[1]

    def get_account_balance_history(self, ctx, accountId: str) -> dict:
        """End-of-day balances from the day before the first booking served to the data's date, rolled back exactly
        from the current balance through the account's transactions since ``startDate`` (route and shape inferred,
        catalogue; cut: section 6)."""
        view, account = self._find_account(ctx, accountId)
        a = view.ledger_accounts[accountId]
        collected = view.collected[accountId]   # section 6 startDate: only the collected transactions
        until = view.ledger.anchor
        first = min((t.booking_date for t in collected), default=until)
        since = min(first - timedelta(days=1), until)
        rows = balance_history(a.balance, collected, since, until)
        return {"items": [{"date": d.isoformat(), "balance": num(b)} for d, b in rows]}

    # --- transactions -------------------------------------------------------------------------------------------
    def _changes(self, tenant: str, user_id: str) -> dict[str, dict]:
        """SK -> the user's change of that transaction (few: one store read per request, not one per item)."""
        prefix = scope_prefix(user_id)
        return {key[len(prefix):]: change for key, change in self.sb.store.list(tenant, _CHANGES, prefix=prefix)}

    @staticmethod
    def _changed(tx: dict, changes: dict[str, dict]) -> dict:
        """``tx`` with its change applied, as a new dict (views are shared: never written to)."""
        change = changes.get(tx["SK"])
        return {**tx, **change} if change else tx

    def list_transactions(self, ctx) -> dict:
        """The token user's transactions, oldest first (sort=-1 newest first), at most 500 per page, filtered by
        dateFrom/dateTo (not with limit), accountId, connectionId, type, providerId; duplicates hidden unless
        includeDuplicates=1 (section 6)."""
        q = ctx.query
        if q.get("userId") is not None:
            _user_in_query()
        date_from, date_to = q.get("dateFrom") or None, q.get("dateTo") or None
        if (date_from or date_to) and q.get("limit") not in (None, ""):
            # reference: "If you use this you cant use limit" (section 6)
            raise _invalid_together("limit", "is not allowed together with dateFrom or dateTo")
        for name, value in (("dateFrom", date_from), ("dateTo", date_to)):
            if value:
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise invalid(name, "must be a valid date", "format") from None
        dups = _flag(q, "includeDuplicates")
        kind = q.get("type") or None
        wanted = {"accountId": q.get("accountId") or None, "connectionId": q.get("connectionId") or None,
                  "providerId": q.get("providerId") or None}
        card_ids: set[str] = set()
        items = []
        for view in self._views(ctx.tenant, ctx.user):
            card_ids.update(a["id"] for a in view.accounts if a["accountType"] == "CARD")
            items.extend(view.transactions if dups else view.visible)
        fields = [(k, v) for k, v in wanted.items() if v is not None]

        def keep(t: dict) -> bool:
            if any(t[k] != v for k, v in fields):
                return False
            day = t["date"]["bookingDate"]
            if (date_from and day < date_from) or (date_to and day > date_to):
                return False
            # type: "The type of the provider" BANK | CARD (reference); card accounts are CARD (inferred)
            return kind is None or (kind == "CARD") == (t["accountId"] in card_ids)

        bind = json.dumps([wanted, kind, date_from, date_to, dups], sort_keys=True)
        narrowed = bool(fields or date_from or date_to or kind)
        page = open_finance_page(items, q, filter=keep if narrowed else None,
                                 default_limit=OPEN_FINANCE_MAX_TRANSACTIONS,
                                 max_limit=OPEN_FINANCE_MAX_TRANSACTIONS, over_max="clamp", bind=bind,
                                 secret=ctx.sandbox.cursor_secret(ctx.tenant))
        changes = self._changes(ctx.tenant, ctx.user)
        page["items"] = [self._changed(t, changes) for t in page["items"]]
        return page

    def _find_transaction(self, ctx, SK: str) -> dict:
        key = unquote(SK) if "%23" in SK.upper() else SK    # tolerate a doubly encoded SK (section 10: URL-encode)
        parts = key.split("#")
        if len(parts) == 4 and parts[0] == "TX":
            for view in self._views(ctx.tenant, ctx.user):
                if parts[1] in view.ledger_accounts:
                    for t in view.transactions:
                        if t["SK"] == key:
                            return self._changed(t, self._changes(ctx.tenant, ctx.user))
        raise NotFound(TX_NOT_FOUND)

    def get_transaction(self, ctx, SK: str) -> dict:
        """One transaction by its SK, with the user's changes; 404 Transaction not found otherwise."""
        return self._find_transaction(ctx, SK)

    def update_transaction(self, ctx, SK: str) -> dict:
        """Re-categorise / re-classify / label a transaction for this user (section 6): sets changedCategory{main,
        sub} and changedClassification{type, source: USER}, stores labels; returns the updated Transaction."""
        body = ctx.body or {}
        tx = self._find_transaction(ctx, SK)
        change = {k: tx[k] for k in ("changedCategory", "changedClassification", "labels") if k in tx}
        main, sub = body.get("mainCategory"), body.get("subCategory")
        if main is not None or sub is not None:
            income = tx["amount"]["chargedAmount"]["amount"] > 0
            table = INCOME_CATEGORIES if income else EXPENSE_CATEGORIES
            current = tx.get("changedCategory") or tx["category"]
            main = main if main is not None else current["main"]
            if main not in table:
                raise _invalid_together("mainCategory", f"must be one of [{', '.join(table)}]")
            if sub is None:
                sub = current["sub"] if current["main"] == main else table[main][-1]
            if sub not in table[main]:
                raise _invalid_together("subCategory", f"must be one of [{', '.join(table[main])}]")
            change["changedCategory"] = {"main": main, "sub": sub}
        if body.get("classification") is not None:
            if body["classification"] not in CLASSIFICATIONS:
                raise _invalid_together("classification", f"must be one of [{', '.join(CLASSIFICATIONS)}]")
            # section 6: a user's change is recorded with source USER
            change["changedClassification"] = {"type": body["classification"], "source": "USER"}
        if body.get("labels") is not None:
            change["labels"] = list(dict.fromkeys(body["labels"]))
        self.sb.store.put(ctx.tenant, _CHANGES, scope_prefix(ctx.user) + tx["SK"], change)
        return {**tx, **change}

    # --- static lists and securities ----------------------------------------------------------------------------
    def get_transaction_categories(self, ctx) -> dict:
        """The static category lists of docs.open-finance.ai/docs/transaction-categories (section 10)."""
        return {"mainCategoriesExpenses": list(EXPENSE_CATEGORIES), "mainCategoriesIncomes": list(INCOME_CATEGORIES),
                "subCategoriesExpenses": EXPENSE_CATEGORIES, "subCategoriesIncome": INCOME_CATEGORIES}

    def get_extended_securities(self, ctx) -> dict:
        """Positions and orders of the user's securities accounts (section 6); totalPositionsValue = the sum of the
        positions' values, which equals the securities accounts' balances (ledger: balance == sum of holdings)."""
        positions, orders, total = [], [], Decimal(0)
        for view in self._views(ctx.tenant, ctx.user):
            for account in view.accounts:
                if account["accountType"] != "SECURITIES":
                    continue
                a = view.ledger_accounts[account["id"]]
                for h in a.holdings:
                    total += h.value
                    positions.append({**_position(h, view.ledger.anchor), "providerId": account["providerId"],
                                      "currentPrice": num(h.price), "positionValue": num(h.value),
                                      "symbol": h.isin[2:8], "securityId": h.isin})
                orders.extend(_orders(a, account["id"], account["providerId"]))
        return {"positions": positions, "totalPositionsValue": num(total), "orders": orders}


def _user_in_query():
    """section 3: a non-admin token naming another user in the query (every sandbox token is non-admin)."""
    raise BadRequest(USER_IN_QUERY)
