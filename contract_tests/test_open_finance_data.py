"""Open Finance accounts and transactions contract tests (open_finance.md s.6, s.10), by catalogue id.

In-process by default; over HTTP with --base-url (``sandbox check open_finance``). A user's data comes from the
connection its first financial report provisions (open_finance.md s.5); the customerId is chosen so the user has
every account kind. Expected values are computed from other data endpoints (transactions vs balances vs
histories), never taken from the response under test.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore
from sandbox.ledger import choose_persona, is_valid_iban

from .checks import provider_error, response_schema_conformance, status_in
from .plugin import frozen_transport

OP = "open_finance."
TOKEN, CREATE = OP + "create_token", OP + "create_financial_report"
ACCOUNTS, ACCOUNT, HISTORY = OP + "list_accounts", OP + "get_account", OP + "get_account_balance_history"
TXS, TX, PATCH = OP + "list_transactions", OP + "get_transaction", OP + "update_transaction"
CATEGORIES, SECURITIES = OP + "get_transaction_categories", OP + "get_extended_securities"
NOT_FOUND = {"type": "CLIENT_ERROR", "message": "Route or entity not found"}
TX_NOT_FOUND = {"type": "CLIENT_ERROR", "message": "Transaction not found"}
UNAUTHORIZED = {"type": "CLIENT_ERROR", "message": "Unauthorized access - Invalid access token"}
FORBIDDEN = {"type": "CLIENT_ERROR",
             "message": "Forbidden - Access token missing the required permissions to preform this action"}


@pytest.fixture
def of(contract_options):
    with frozen_transport(contract_options, "open_finance",
                          lambda: create_app({"SEED": 11, "SECRET_KEY": "contract-tests"},
                                             store=MemoryStore())) as (transport, control):
        yield transport, control, contract_options


def D(x) -> Decimal:
    return Decimal(str(x))


class User:
    """A token for the contract user and data: its first report provisions a connection (open_finance.md s.5)."""

    def __init__(self, of, user_id: str | None = None, client=None):
        self.t, control, opts = of
        client_id, secret = client or (opts["client_id"], opts["client_secret"])
        r = self.t.call(TOKEN, json_body={"userId": user_id or opts["user_id"], "clientId": client_id,
                                          "clientSecret": secret})
        status_in(r, 200)
        self.h = {"Authorization": "Bearer " + r.json["accessToken"]}
        customer = "318422557"
        if control:   # a customer whose data has every account kind (checking, cards, savings, loan, securities)
            seed = control.get("/seed")["seed"]
            customer = next(c for c in (f"90000{i:04d}" for i in range(500))
                            if choose_persona(seed, c) == "high_earner_investor")
        status_in(self.t.call(CREATE, path_params={"customerId": customer}, headers=self.h), 200)

    def call(self, op, status=200, **kw):
        r = self.t.call(op, headers={**self.h, **kw.pop("headers", {})}, **kw)
        status_in(r, status)
        response_schema_conformance(r)
        return r

    def ok(self, op, **kw):
        return self.call(op, **kw).json

    def pages(self, op, **query) -> list[dict]:
        items, body = [], self.ok(op, query=query or None)
        items += body["items"]
        while body["nextPage"]:
            body = self.ok(op, query={**query, "nextPage": body["nextPage"]})
            items += body["items"]
        return items


# --- list_accounts / get_account ---------------------------------------------------------------------------------
def test_list_accounts_and_get_account_agree(of):
    u = User(of)
    items = u.pages(ACCOUNTS, limit="2")
    assert items == u.ok(ACCOUNTS)["items"]
    assert {a["accountType"] for a in items} <= {"CHECKING", "CARD", "LOAN", "SAVINGS", "SECURITIES"}
    for a in items:
        assert u.ok(ACCOUNT, path_params={"accountId": a["id"]}) == a
        if a["accountType"] != "CARD" and a["accountNumber"].count("-") == 2:
            bank, branch, number = a["accountNumber"].split("-")   # BBAN -> parsedAccount (s.10)
            assert a["parsedAccount"] == {"bank": bank, "branch": branch, "number": number}


@pytest.mark.control
def test_every_account_kind_and_duplicates_only_when_asked(of):
    u = User(of)
    plain = u.ok(ACCOUNTS)["items"]
    assert {a["accountType"] for a in plain} == {"CHECKING", "CARD", "LOAN", "SAVINGS", "SECURITIES"}
    every = u.ok(ACCOUNTS, query={"includeDuplicates": "1"})["items"]
    cards = [a for a in plain if a["accountType"] == "CARD"]
    extra = [a for a in every if a not in plain]
    assert cards and len(extra) == len(cards)
    assert sorted(a["accountNumber"] for a in extra) == sorted(a["accountNumber"] for a in cards)
    for kind in ("CHECKING", "CARD", "LOAN", "SAVINGS", "SECURITIES"):
        assert u.ok(ACCOUNTS, query={"accountType": kind})["items"] == [a for a in plain if a["accountType"] == kind]
    checking = next(a for a in plain if a["accountType"] == "CHECKING")
    closing = [b for b in checking["balances"] if b["balanceType"] == "closingBooked"]
    assert sorted(b["creditLimitIncluded"] for b in closing) == [False, True]   # docs/account-balance-types
    assert all(any(b["balanceType"] == "nonInvoiced" for b in a["balances"]) for a in cards)


def test_unknown_account_is_the_404_envelope(of):
    u = User(of)
    for bad in ("nope", "00000000-0000-4000-8000-000000000000"):
        provider_error(u.call(ACCOUNT, 404, path_params={"accountId": bad}), 404, NOT_FOUND)
        provider_error(u.call(HISTORY, 404, path_params={"accountId": bad}), 404, NOT_FOUND)


@pytest.mark.parametrize("query", [{"accountType": "CURRENT"}, {"limit": "0"}, {"limit": "x"}, {"sort": "2"},
                                   {"includeDuplicates": "2"}, {"nextPage": "garbage"},
                                   {"userId": "someone-else@example.com"}])
def test_list_accounts_bad_query_is_a_400_envelope(of, query):
    provider_error(User(of).call(ACCOUNTS, 400, query=query), 400)


# --- balances follow transactions ------------------------------------------------------------------------------
def _current(account) -> Decimal:
    """The account's current booked balance: the newest closingBooked/interimBooked without the credit limit (a
    loan's closingBooked is its original amount at the contract start, docs/account-balance-types)."""
    booked = [b for b in account["balances"] if b["balanceType"] in ("closingBooked", "interimBooked")
              and not b.get("creditLimitIncluded")]
    newest = max(b["referenceDate"] for b in booked)
    return D(next(b for b in booked if b["referenceDate"] == newest)["balanceAmount"]["amount"])


def test_balance_history_ends_at_the_balance_and_moves_by_the_transactions(of):
    u = User(of)
    txs = u.pages(TXS)
    for a in u.ok(ACCOUNTS)["items"]:
        items = u.ok(HISTORY, path_params={"accountId": a["id"]})["items"]
        assert D(items[-1]["balance"]) == _current(a)
        per_day = defaultdict(Decimal)
        for t in txs:
            if t["accountId"] == a["id"]:
                per_day[t["date"]["bookingDate"]] += D(t["amount"]["chargedAmount"]["amount"])
        assert sum(per_day.values(), Decimal(0)) == D(items[-1]["balance"]) - D(items[0]["balance"])
        for prev, row in zip(items, items[1:]):
            assert D(row["balance"]) - D(prev["balance"]) == per_day.get(row["date"], Decimal(0))
        assert a["transactions"] == sum(1 for t in txs if t["accountId"] == a["id"])


# --- list_transactions -------------------------------------------------------------------------------------------
def test_transactions_page_by_500_to_a_null_cursor(of):
    u = User(of)
    first = u.ok(TXS)
    assert len(first["items"]) <= 500
    everything = u.pages(TXS)
    assert len({t["SK"] for t in everything}) == len(everything)
    if len(everything) > 500:
        assert len(first["items"]) == 500 and first["nextPage"]
        assert len(u.ok(TXS, query={"limit": "501"})["items"]) == 500
    assert u.pages(TXS, sort="-1") == everything[::-1]
    n = len(everything)
    assert u.ok(TXS, query={"limit": str(n)})["nextPage"] is None or n > 500
    small = u.ok(TXS, query={"limit": "3"})
    assert small["items"] == everything[:3] and small["nextPage"]


def test_transaction_fields_and_signs(of):
    u = User(of)
    accounts = {a["id"]: a for a in u.ok(ACCOUNTS, query={"includeDuplicates": "1"})["items"]}
    for t in u.pages(TXS):
        assert t["accountId"] in accounts and not t["isDuplicate"]
        assert t["SK"].startswith(f"TX#{t['accountId']}#{t['date']['bookingDate']}#")
        charged = D(t["amount"]["chargedAmount"]["amount"])
        own = t["creditorAccount"] if charged > 0 else t["debtorAccount"]   # > 0 credit (s.10)
        if own.get("iban"):
            assert is_valid_iban(own["iban"]) and own["iban"].startswith("IL")


def test_date_filters_are_inclusive_and_exclude_limit(of):
    u = User(of)
    everything = u.pages(TXS)
    days = sorted({t["date"]["bookingDate"] for t in everything})
    day = days[len(days) // 2]
    got = u.pages(TXS, dateFrom=day, dateTo=day)
    assert got == [t for t in everything if t["date"]["bookingDate"] == day]
    assert len(u.pages(TXS, dateFrom=day)) == sum(1 for t in everything if t["date"]["bookingDate"] >= day)
    provider_error(u.call(TXS, 400, query={"dateFrom": day, "limit": "5"}), 400)
    provider_error(u.call(TXS, 400, query={"dateTo": day, "limit": "5"}), 400)


@pytest.mark.parametrize("query", [{"dateFrom": "2025/01/01"}, {"dateTo": "2025-02-30"}, {"dateFrom": "yesterday"},
                                   {"nextPage": "garbage"}, {"nextPage": "eyJvIjo1MDB9.AAAAAAAAAAAAAAAA"},
                                   {"limit": "0"}, {"sort": "asc"}, {"type": "ATM"}, {"includeDuplicates": "yes"},
                                   {"userId": "contract-user@example.com"}])
def test_list_transactions_bad_query_is_a_400_envelope(of, query):
    provider_error(User(of).call(TXS, 400, query=query), 400)


@pytest.mark.control
def test_filters_split_the_transactions(of):
    u = User(of)
    everything = u.pages(TXS)
    cards = u.pages(TXS, type="CARD")
    banks = u.pages(TXS, type="BANK")
    assert cards and banks and sorted(t["SK"] for t in cards + banks) == sorted(t["SK"] for t in everything)
    by_account = Counter(t["accountId"] for t in everything)
    for account_id, n in by_account.items():
        assert len(u.pages(TXS, accountId=account_id)) == n
    conn = everything[0]["connectionId"]
    assert u.pages(TXS, connectionId=conn) == [t for t in everything if t["connectionId"] == conn]
    with_dups = u.pages(TXS, includeDuplicates="1")
    assert len(with_dups) == len(everything) + len(cards)
    assert sum(t["isDuplicate"] for t in with_dups) == len(cards)


# --- get_transaction / update_transaction ---------------------------------------------------------------------------
def test_get_transaction_by_sk_and_unknown_sk(of):
    u = User(of)
    t = u.ok(TXS, query={"limit": "5"})["items"][4]
    assert u.ok(TX, path_params={"SK": t["SK"]}) == t
    provider_error(u.call(TX, 404, path_params={"SK": "TX#nope#2025-01-01#1"}), 404, TX_NOT_FOUND)


def test_update_transaction_is_read_back_by_get_and_list(of):
    u = User(of)
    t = next(x for x in u.ok(TXS, query={"limit": "50"})["items"] if x["amount"]["chargedAmount"]["amount"] < 0)
    body = {"transactionSk": t["SK"], "mainCategory": "LEISURE", "subCategory": "SPORTS_&_FITNESS",
            "classification": "REGULAR_EXPENSE", "labels": ["gym"]}
    updated = u.ok(PATCH, path_params={"SK": t["SK"]}, json_body=body)
    assert updated["changedCategory"] == {"main": "LEISURE", "sub": "SPORTS_&_FITNESS"}
    assert updated["changedClassification"] == {"type": "REGULAR_EXPENSE", "source": "USER"}
    assert updated["labels"] == ["gym"] and updated["category"] == t["category"]
    assert u.ok(TX, path_params={"SK": t["SK"]}) == updated
    assert next(x for x in u.pages(TXS) if x["SK"] == t["SK"]) == updated


@pytest.mark.parametrize("body", [{}, {"mainCategory": "LEISURE"}, {"transactionSk": "x", "mainCategory": "NOPE"},
                                  {"transactionSk": "x", "mainCategory": "LEISURE", "subCategory": "RENT"},
                                  {"transactionSk": "x", "classification": "NOPE"}, {"transactionSk": "x", "labels": 3}])
def test_update_transaction_bad_body_is_a_400_envelope(of, body):
    u = User(of)
    t = next(x for x in u.ok(TXS, query={"limit": "50"})["items"] if x["amount"]["chargedAmount"]["amount"] < 0)
    provider_error(u.call(PATCH, 400, path_params={"SK": t["SK"]}, json_body=body), 400)
    assert u.ok(TX, path_params={"SK": t["SK"]}) == t


def test_update_unknown_transaction_is_404(of):
    u = User(of)
    provider_error(u.call(PATCH, 404, path_params={"SK": "TX#x#2025-01-01#1"},
                          json_body={"transactionSk": "TX#x#2025-01-01#1", "labels": []}), 404, TX_NOT_FOUND)


# --- categories and securities -------------------------------------------------------------------------------------
def test_transaction_categories_are_static(of):
    body = User(of).ok(CATEGORIES)
    assert body == User(of, user_id="someone-else@example.com").ok(CATEGORIES)
    assert "FOOD_&_DRINKS" in body["mainCategoriesExpenses"] and "SALARY" in body["mainCategoriesIncomes"]
    assert "MORTGAGE" in body["subCategoriesExpenses"]["HOUSEHOLD_&_SERVICES"]


def test_extended_securities_value_is_the_securities_accounts_balance(of):
    u = User(of)
    body = u.ok(SECURITIES)
    total = sum((D(p["positionValue"]) for p in body["positions"]), Decimal(0))
    assert D(body["totalPositionsValue"]) == total
    held = [a for a in u.ok(ACCOUNTS, query={"accountType": "SECURITIES"})["items"]]
    assert total == sum((_current(a) for a in held), Decimal(0))
    assert len(body["positions"]) == sum(len(a.get("securityPositions", [])) for a in held)


# --- auth and isolation --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op,params", [(ACCOUNTS, {}), (ACCOUNT, {"accountId": "x"}), (HISTORY, {"accountId": "x"}),
                                       (TXS, {}), (TX, {"SK": "x"}), (CATEGORIES, {}), (SECURITIES, {})])
def test_data_routes_need_a_valid_bearer_token(of, op, params):
    for headers in ({}, {"Authorization": "Bearer garbage.token.x"}):
        provider_error(of[0].call(op, path_params=params, headers=headers), 401, UNAUTHORIZED)


@pytest.mark.control
def test_scopes_read_accounts_and_read_transactions_are_separate(of):
    transport, control, _ = of
    narrow = control.create_client(client_id="accounts-only", client_secret="accounts-only-secret",
                                   scopes={"open_finance": ["read:accounts", "read:connections"]})
    u = User(of, client=(narrow["client_id"], "accounts-only-secret"))
    assert u.ok(ACCOUNTS)["items"]
    for op in (TXS, CATEGORIES, SECURITIES):
        provider_error(u.call(op, 403), 403, FORBIDDEN)


def test_another_user_sees_none_of_the_owners_data(of):
    owner = User(of)
    account = owner.ok(ACCOUNTS)["items"][0]
    t = owner.ok(TXS, query={"limit": "1"})["items"][0]
    other = User.__new__(User)
    other.t = of[0]
    r = of[0].call(TOKEN, json_body={"userId": "intruder@example.com", "clientId": of[2]["client_id"],
                                     "clientSecret": of[2]["client_secret"]})
    other.h = {"Authorization": "Bearer " + r.json["accessToken"]}
    assert other.ok(ACCOUNTS) == {"nextPage": None, "items": []}
    assert other.ok(TXS) == {"nextPage": None, "items": []}
    provider_error(other.call(ACCOUNT, 404, path_params={"accountId": account["id"]}), 404, NOT_FOUND)
    provider_error(other.call(TX, 404, path_params={"SK": t["SK"]}), 404, TX_NOT_FOUND)
    provider_error(other.call(PATCH, 404, path_params={"SK": t["SK"]},
                              json_body={"transactionSk": t["SK"], "labels": ["x"]}), 404, TX_NOT_FOUND)
    assert owner.ok(TX, path_params={"SK": t["SK"]}) == t


# --- a consented connection (connections.py) -----------------------------------------------------------------------
@pytest.mark.control
def test_a_consented_connection_serves_the_published_accounts_and_its_counts_match(of):
    transport, control, opts = of
    u = User.__new__(User)
    u.t = transport
    r = transport.call(TOKEN, json_body={"userId": "journey-user@example.com", "clientId": opts["client_id"],
                                         "clientSecret": opts["client_secret"]})
    u.h = {"Authorization": "Bearer " + r.json["accessToken"]}
    created = u.call(OP + "create_connection", 201,
                     json_body={"includeFakeProviders": True, "psuId": "321547416"}).json
    control.complete_flow(created["id"], "success")
    for _ in range(120):
        conn = u.ok(OP + "get_connection", path_params={"connectionId": created["id"]})
        if conn["status"] == "COMPLETED":
            break
        control.clock("advance", seconds=1)
    assert conn["status"] == "COMPLETED"
    accounts = u.ok(ACCOUNTS, query={"connectionId": created["id"]})["items"]
    assert {"31-114-435694", "31-124-272604", "31-064-406821"} & {a["accountNumber"] for a in accounts}   # s.11
    listed = Counter(a["accountType"] for a in accounts)
    assert (conn["accounts"], conn["cards"], conn["savings"], conn["loans"], conn["securities"]) == \
        (listed["CHECKING"], listed["CARD"], listed["SAVINGS"], listed["LOAN"], listed["SECURITIES"])
    assert conn["transactions"] == len(u.pages(TXS, connectionId=created["id"]))
