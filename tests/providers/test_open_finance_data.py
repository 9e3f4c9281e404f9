"""Open Finance accounts and transactions (open_finance.md s.6, s.10) against the stored ledger.

Every expected value is recomputed here from the raw ledger JSON the sandbox stored for the connection (strings of
Decimals, read straight from the store), never from accounts.py: balances, counts, sums per account, end-of-day
balances, balance histories, securities values, paging boundaries.
"""
from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import quote

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore
from sandbox.ledger import generate_ledger, is_valid_iban
from sandbox.providers.open_finance.data import TEST_PSU_IDS, apply_test_accounts

WALL = datetime(2025, 4, 23, 9, 30, tzinfo=timezone.utc)
SEED = 11
P = "/open-finance/v2/data"
KIND_TYPES = {"checking": "CHECKING", "credit_card": "CARD", "savings": "SAVINGS", "loan": "LOAN",
              "mortgage": "LOAN", "securities": "SECURITIES"}


def raw_refs(raw_account: dict) -> list[str]:
    """The reference each raw ledger booking is served under, computed here from the account id, the booking day and
    the booking's place among that day's (``<ledger account>-<YYYYMMDD>-<nnn>``), not by the service."""
    seen: Counter = Counter()
    out = []
    for t in raw_account["transactions"]:
        seen[t["booking_date"]] += 1
        out.append(f"{raw_account['id']}-{t['booking_date'].replace('-', '')}-{seen[t['booking_date']]:03d}")
    return out


def investor_customer(seed: int = SEED) -> str:
    """A customerId whose generated persona has every account kind (checking, 2 cards, savings, loan, securities)."""
    for i in range(200):
        cid = f"90000{i:04d}"
        if generate_ledger(seed, cid, WALL.date(), market="IL").persona == "high_earner_investor":
            return cid
    raise AssertionError("no investor persona")


class World:
    """One app, one user with one auto-provisioned connection (first financial report), and its raw ledger."""

    def __init__(self, customer: str | None = None, user: str = "data-user@example.com", app=None):
        self.app = app or create_app({"SEED": SEED}, store=MemoryStore(), system_clock=lambda: WALL)
        self.http = self.app.test_client()
        self.user = user
        self.token = self.token_for(user)
        self.customer = customer or investor_customer()
        r = self.http.post(f"/open-finance/financial-report/{self.customer}", headers=self.h)
        assert r.status_code == 200, r.get_data(as_text=True)
        sb = self.app.extensions["sandbox"]
        self.connections = sb.providers["open_finance"].service.user_connections("sandbox-client", user)
        self.conn = self.connections[0]
        self.raw = sb.store.get("sandbox-client", "open_finance.ledgers", self.conn["id"])

    def token_for(self, user, client=("sandbox-client", "sandbox-secret")) -> str:
        return self.http.post("/open-finance/oauth/token", json={"userId": user, "clientId": client[0],
                                                                  "clientSecret": client[1]}).get_json()["accessToken"]

    @property
    def h(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, status: int = 200, headers=None, **query):
        r = self.http.get(P + path, headers=headers or self.h, query_string=query)
        assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
        return r.get_json()

    def all_transactions(self, **query) -> list[dict]:
        items, page = [], self.get("/transactions", **query)
        items += page["items"]
        while page["nextPage"]:
            page = self.get("/transactions", nextPage=page["nextPage"], **query)
            items += page["items"]
        return items

    def raw_accounts(self, kind=None) -> list[dict]:
        return [a for a in self.raw["accounts"] if kind is None or a["kind"] == kind]

    def public(self, raw_account: dict, duplicate: bool = False) -> dict:
        """The public account of a ledger account (externalId is the ledger id; the duplicate is the bank's view)."""
        matches = [a for a in self.get("/accounts", includeDuplicates="1")["items"] if a["externalId"] == raw_account["id"]]
        card_issuer = {a["providerId"] for a in matches} - {self.bank_provider}
        if raw_account["kind"] != "credit_card":
            return matches[0]
        return [a for a in matches if (a["providerId"] == self.bank_provider) == duplicate
                and (duplicate or a["providerId"] in card_issuer)][0]

    @property
    def bank_provider(self) -> str:
        return {"12": "hapoalim", "10": "leumi", "11": "discount", "31": "beinleumi", "20": "mizrahi", "04": "yahav",
                "54": "jerusalem", "13": "union", "14": "otsarHahayal", "17": "mercantile", "18": "one-zero",
                "26": "ubank", "46": "masad", "52": "pagi"}[self.raw_accounts("checking")[0]["bank_code"].zfill(2)]


def D(x) -> Decimal:
    return Decimal(str(x))


@pytest.fixture(scope="module")
def world():
    return World()


# --- accounts ------------------------------------------------------------------------------------------------------
def test_accounts_one_per_ledger_account_with_documented_types_and_numbers(world):
    items = world.get("/accounts")["items"]
    assert Counter(a["accountType"] for a in items) == Counter(KIND_TYPES[a["kind"]] for a in world.raw_accounts())
    assert sorted(a["externalId"] for a in items) == sorted(a["id"] for a in world.raw_accounts())
    for a in items:
        assert uuid.UUID(a["id"]).version == 4 and a["connectionId"] == world.conn["id"]
        assert a["userId"] == world.user
        raw = next(r for r in world.raw_accounts() if r["id"] == a["externalId"])
        assert a["accountNumber"] == raw["number"] and a["currency"] == raw["currency"]
        if raw["kind"] != "credit_card":   # section 10: BBAN bank-branch-account -> parsedAccount
            bank, branch, number = raw["number"].split("-")
            assert a["parsedAccount"] == {"bank": bank, "branch": branch, "number": number}
        assert a["transactions"] == len(raw["transactions"])


def test_duplicate_cards_are_hidden_unless_asked(world):
    plain = world.get("/accounts")["items"]
    dups = world.get("/accounts", includeDuplicates="1")["items"]
    cards = world.raw_accounts("credit_card")
    assert len(cards) == 2 and len(dups) == len(plain) + len(cards)
    extra = [a for a in dups if a["id"] not in {p["id"] for p in plain}]
    assert {a["externalId"] for a in extra} == {c["id"] for c in cards}
    assert all(a["accountType"] == "CARD" and a["providerId"] == world.bank_provider for a in extra)
    assert world.get("/accounts", includeDuplicates="0")["items"] == plain


def test_checking_balances_follow_the_ledger_with_and_without_the_overdraft(world):
    raw = world.raw_accounts("checking")[0]
    a = world.public(raw)
    closing = [b for b in a["balances"] if b["balanceType"] == "closingBooked"]
    assert len(closing) == 2   # docs/account-balance-types: twice, with and without the credit limit
    without = next(b for b in closing if not b["creditLimitIncluded"])
    with_limit = next(b for b in closing if b["creditLimitIncluded"])
    assert D(without["balanceAmount"]["amount"]) == D(raw["balance"])
    assert D(with_limit["balanceAmount"]["amount"]) == D(raw["balance"]) + D(a["creditLimit"])
    assert D(raw["balance"]) == D(raw["opening_balance"]) + sum(D(t["amount"]) for t in raw["transactions"])
    assert {b["balanceType"] for b in a["balances"]} >= {"closingBooked", "interimAvailable"}


def test_card_non_invoiced_is_the_sum_of_transactions_after_the_last_settlement(world):
    for raw in world.raw_accounts("credit_card"):
        a = world.public(raw)
        settled = max(t["booking_date"] for t in raw["transactions"] if t["category"] == "card_settlement")
        expected = sum((D(t["amount"]) for t in raw["transactions"] if t["booking_date"] > settled), Decimal(0))
        non_invoiced = [b for b in a["balances"] if b["balanceType"] == "nonInvoiced"]
        assert len(non_invoiced) == 1 and D(non_invoiced[0]["balanceAmount"]["amount"]) == expected
        txs = world.all_transactions(accountId=a["id"])
        assert [t["isInvoiced"] for t in txs] == [t["booking_date"] <= settled for t in raw["transactions"]]


def test_loan_reports_its_original_amount_at_the_contract_start(world):
    raw = world.raw_accounts("loan")[0]
    a = world.public(raw)
    closing = next(b for b in a["balances"] if b["balanceType"] == "closingBooked")
    assert D(closing["balanceAmount"]["amount"]) == D(raw["opening_balance"])
    assert closing["referenceDate"] == a["relatedDates"]["contractStartDate"] < raw["transactions"][0]["booking_date"]
    current = next(b for b in a["balances"] if b["balanceType"] == "interimBooked")
    assert D(current["balanceAmount"]["amount"]) == D(raw["balance"])
    assert a["loanType"] == ["RETAIL_LOAN"]


def test_unknown_and_malformed_account_ids_are_the_documented_404(world):
    for bad in ("nope", str(uuid.uuid4()), "%00", "x" * 300):
        body = world.get(f"/accounts/{quote(bad, safe='')}", status=404)
        assert body == {"type": "CLIENT_ERROR", "message": "Route or entity not found"}
        world.get(f"/accounts/{quote(bad, safe='')}/balances/history", status=404)


def test_account_filters(world):
    for kind in ("CHECKING", "CARD", "LOAN", "SAVINGS", "SECURITIES"):
        items = world.get("/accounts", accountType=kind)["items"]
        assert items and all(a["accountType"] == kind for a in items)
    assert len(world.get("/accounts", connectionId=world.conn["id"])["items"]) == len(world.raw_accounts())
    assert world.get("/accounts", connectionId="other")["items"] == []
    assert world.get("/accounts", userId=world.user)["items"] == world.get("/accounts")["items"]
    assert world.get("/accounts", userId="someone-else", status=400)["message"] == \
        "userId is not allowed in query for non-admin users"
    world.get("/accounts", accountType="CURRENT", status=400)
    world.get("/accounts", includeDuplicates="yes", status=400)


def test_account_paging_is_a_cursor(world):
    everything = world.get("/accounts", includeDuplicates="1")["items"]
    first = world.get("/accounts", includeDuplicates="1", limit="3")
    assert first["items"] == everything[:3] and first["nextPage"]
    rest = world.get("/accounts", includeDuplicates="1", limit="100", nextPage=first["nextPage"])
    assert first["items"] + rest["items"] == everything and rest["nextPage"] is None
    assert world.get("/accounts", sort="-1")["items"] == world.get("/accounts")["items"][::-1]
    # a cursor of another listing (other filter) is refused, like a forged one
    world.get("/accounts", includeDuplicates="0", limit="100", nextPage=first["nextPage"], status=400)
    world.get("/accounts", limit="0", status=400)


# --- balance history -----------------------------------------------------------------------------------------------
def test_balance_history_rolls_back_exactly_through_the_transactions(world):
    for raw in world.raw_accounts():
        a = world.public(raw)
        items = world.get(f"/accounts/{a['id']}/balances/history")["items"]
        per_day = defaultdict(Decimal)
        for t in raw["transactions"]:
            per_day[t["booking_date"]] += D(t["amount"])
        assert D(items[-1]["balance"]) == D(raw["balance"]) and items[-1]["date"] == world.raw["anchor"]
        assert D(items[0]["balance"]) == D(raw["opening_balance"])
        running = D(raw["opening_balance"])
        for prev, row in zip(items, items[1:]):
            assert date.fromisoformat(row["date"]) == date.fromisoformat(prev["date"]) + timedelta(days=1)
            running += per_day.get(row["date"], Decimal(0))
            assert D(row["balance"]) == running


# --- transactions --------------------------------------------------------------------------------------------------
def test_every_ledger_transaction_is_served_once_and_sums_move_the_balances(world):
    txs = world.all_transactions()
    raw_count = sum(len(a["transactions"]) for a in world.raw_accounts())
    assert len(txs) == raw_count and len({t["SK"] for t in txs}) == raw_count and not any(t["isDuplicate"] for t in txs)
    for raw in world.raw_accounts():
        a = world.public(raw)
        mine = [t for t in txs if t["accountId"] == a["id"]]
        moved = sum((D(t["amount"]["chargedAmount"]["amount"]) for t in mine), Decimal(0))
        assert D(raw["opening_balance"]) + moved == D(raw["balance"])
        assert [t["transactionProviderIdentifier"] for t in mine] == raw_refs(raw)


def test_balance_per_end_day_is_the_running_balance_at_the_end_of_that_day(world):
    raw = world.raw_accounts("checking")[0]
    a = world.public(raw)
    running, end_of_day = D(raw["opening_balance"]), {}
    for t in raw["transactions"]:
        running += D(t["amount"])
        end_of_day[t["booking_date"]] = running
    for t in world.all_transactions(accountId=a["id"]):
        assert D(t["balancePerEndDay"]) == end_of_day[t["date"]["bookingDate"]]


def test_transaction_fields_follow_the_spec(world):
    from sandbox.providers.open_finance.data import CATEGORIES
    txs = world.all_transactions()
    raw_by_id = {ref: (a, t) for a in world.raw_accounts() for ref, t in zip(raw_refs(a), a["transactions"])}
    counts = Counter()
    for t in txs:
        a, r = raw_by_id[t["transactionProviderIdentifier"]]
        # SK = TX#<accountId>#<bookingDate>#<n>, n counting the account's bookings of that day from 1
        counts[(t["accountId"], r["booking_date"])] += 1
        assert t["SK"] == f"TX#{t['accountId']}#{r['booking_date']}#{counts[(t['accountId'], r['booking_date'])]}"
        assert D(t["amount"]["chargedAmount"]["amount"]) == D(r["amount"])   # > 0 credit, < 0 debit
        assert (t["category"]["main"], t["category"]["sub"]) == CATEGORIES[r["category"]]
        assert t["date"]["bookingDate"] == r["booking_date"] and t["date"]["valueDate"] == r["value_date"]
        own = t["creditorAccount"] if D(r["amount"]) > 0 else t["debtorAccount"]
        if a["kind"] == "credit_card":
            assert own["maskedPan"] == a["number"] and t["category"]["categorizedBy"] in ("MCC", "SYSTEM")
        else:
            assert own["bban"] == a["number"]
            if a["iban"]:
                assert own["iban"] == a["iban"] and is_valid_iban(own["iban"]) and own["iban"].startswith("IL")
        if r["counterparty_iban"]:
            other = t["debtorAccount"] if D(r["amount"]) > 0 else t["creditorAccount"]
            assert other["iban"] == r["counterparty_iban"] and is_valid_iban(other["iban"])
    assert [t["date"]["bookingDate"] for t in txs] == sorted(t["date"]["bookingDate"] for t in txs)


def test_paging_boundaries_500_per_page(world):
    total = sum(len(a["transactions"]) for a in world.raw_accounts())
    assert total > 500
    pages = []
    page = world.get("/transactions")
    pages.append(page)
    while page["nextPage"]:
        page = world.get("/transactions", nextPage=page["nextPage"])
        pages.append(page)
    sizes = [len(p["items"]) for p in pages]
    assert sizes == [500] * (total // 500) + ([total % 500] if total % 500 else [])
    assert pages[-1]["nextPage"] is None and all(p["nextPage"] for p in pages[:-1])
    assert len(world.get("/transactions", limit="500")["items"]) == 500
    assert len(world.get("/transactions", limit="501")["items"]) == 500   # at most 500 per page (clamped)
    assert len(world.get("/transactions", limit="499")["items"]) == 499
    # exactly the remaining count: no further page; one less: one more page with one item
    raw = world.raw_accounts("checking")[0]
    a = world.public(raw)
    n = len(raw["transactions"])
    assert world.get("/transactions", accountId=a["id"], limit=str(n))["nextPage"] is None
    first = world.get("/transactions", accountId=a["id"], limit=str(n - 1))
    last = world.get("/transactions", accountId=a["id"], limit=str(n - 1), nextPage=first["nextPage"])
    assert len(last["items"]) == 1 and last["nextPage"] is None
    world.get("/transactions", limit="0", status=400)
    world.get("/transactions", limit="-1", status=400)
    world.get("/transactions", limit="ten", status=400)


def test_sort_descending_is_the_reverse(world):
    asc = world.all_transactions()
    desc = world.all_transactions(sort="-1")
    assert desc == asc[::-1]
    world.get("/transactions", sort="0", status=400)


def test_date_range_is_inclusive_and_cannot_be_combined_with_limit(world):
    raw_days = [t["booking_date"] for a in world.raw_accounts() for t in a["transactions"]]
    day = sorted(raw_days)[len(raw_days) // 2]
    before = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    got = world.all_transactions(dateFrom=day, dateTo=day)
    assert len(got) == raw_days.count(day) and {t["date"]["bookingDate"] for t in got} == {day}
    after = world.all_transactions(dateFrom=day)
    assert len(after) == sum(1 for d in raw_days if d >= day)
    upto = world.all_transactions(dateTo=before)
    assert len(upto) == sum(1 for d in raw_days if d <= before)
    body = world.get("/transactions", dateFrom=day, limit="10", status=400)
    assert body["type"] == "CLIENT_ERROR"
    world.get("/transactions", dateTo=day, limit="10", status=400)
    for bad in ("2025-1-01", "01/01/2025", "2025-02-30", "2025-13-01", "yesterday"):
        world.get("/transactions", dateFrom=bad, status=400)


def test_filters_and_duplicates(world):
    everything = world.all_transactions(includeDuplicates="1")
    plain = world.all_transactions()
    dups = [t for t in everything if t["isDuplicate"]]
    card_raw = sum(len(a["transactions"]) for a in world.raw_accounts("credit_card"))
    assert len(dups) == card_raw and len(everything) == len(plain) + card_raw
    cards = world.all_transactions(type="CARD")
    banks = world.all_transactions(type="BANK")
    assert len(cards) == card_raw and len(cards) + len(banks) == len(plain)
    assert world.all_transactions(connectionId=world.conn["id"]) == plain
    assert world.get("/transactions", connectionId="nope")["items"] == []
    assert world.get("/transactions", accountId="nope")["items"] == []
    for provider in {t["providerId"] for t in plain}:
        assert all(t["providerId"] == provider for t in world.all_transactions(providerId=provider))
    assert world.get("/transactions", userId=world.user, status=400)["message"] == \
        "userId is not allowed in query for non-admin users"
    world.get("/transactions", type="ATM", status=400)


def test_malformed_and_foreign_cursors_are_400(world):
    good = world.get("/transactions")["nextPage"]
    for bad in ("garbage", good[:-2] + "xx", good + ".x", "", "a" * 3000):
        if bad:
            world.get("/transactions", nextPage=bad, status=400)
    world.get("/transactions", nextPage=good, type="CARD", status=400)     # another listing's cursor


def test_get_transaction_by_url_encoded_sk(world):
    t = world.get("/transactions", limit="3")["items"][2]
    assert world.get("/transactions/" + quote(t["SK"], safe="")) == t
    for bad in ("TX#nope#2025-01-01#1", "nope", t["SK"][:-1] + "999", "TX#" + str(uuid.uuid4()) + "#2025-01-01#1"):
        assert world.get("/transactions/" + quote(bad, safe=""), status=404) == \
            {"type": "CLIENT_ERROR", "message": "Transaction not found"}


# --- update_transaction --------------------------------------------------------------------------------------------
def _patch(world, sk: str, body: dict, status: int = 200, headers=None):
    r = world.http.patch(P + "/transactions/" + quote(sk, safe=""), json=body, headers=headers or world.h)
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    return r.get_json()


def test_update_transaction_is_stored_per_user_and_read_back():
    w = World()
    t = next(t for t in w.get("/transactions", limit="50")["items"] if t["amount"]["chargedAmount"]["amount"] < 0)
    body = _patch(w, t["SK"], {"transactionSk": t["SK"], "mainCategory": "LEISURE", "subCategory": "HOBBIES",
                               "classification": "REGULAR_EXPENSE", "labels": ["gym", "gym", "club"]})
    assert body["changedCategory"] == {"main": "LEISURE", "sub": "HOBBIES"}
    assert body["changedClassification"] == {"type": "REGULAR_EXPENSE", "source": "USER"}
    assert body["labels"] == ["gym", "club"] and body["category"] == t["category"]   # the original stays
    assert w.get("/transactions/" + quote(t["SK"], safe="")) == body
    assert next(x for x in w.all_transactions() if x["SK"] == t["SK"]) == body
    # a later patch of only the labels keeps the category change
    again = _patch(w, t["SK"], {"transactionSk": t["SK"], "labels": []})
    assert again["changedCategory"] == body["changedCategory"] and again["labels"] == []
    # main only: its sub stays when the main is unchanged, else the main's OTHER sub
    assert _patch(w, t["SK"], {"transactionSk": t["SK"], "mainCategory": "SHOPPING"})["changedCategory"] == \
        {"main": "SHOPPING", "sub": "SHOPPING_OTHER"}


@pytest.mark.parametrize("body", [
    {"mainCategory": "LEISURE"},                                     # transactionSk is required
    {"transactionSk": "x", "mainCategory": "NOT_A_CATEGORY"},
    {"transactionSk": "x", "mainCategory": "LEISURE", "subCategory": "GROCERIES"},
    {"transactionSk": "x", "mainCategory": "SALARY"},                # an income main on an expense
    {"transactionSk": "x", "classification": "WHATEVER"},
    {"transactionSk": "x", "labels": "gym"},
    {"transactionSk": "x", "labels": [1, 2]},
    {"transactionSk": 5},
])
def test_update_transaction_bad_input_is_400_and_changes_nothing(world, body):
    t = next(t for t in world.get("/transactions", limit="50")["items"] if t["amount"]["chargedAmount"]["amount"] < 0)
    before = world.get("/transactions/" + quote(t["SK"], safe=""))
    err = _patch(world, t["SK"], body, status=400)
    assert err["type"] == "CLIENT_ERROR" and err["message"]
    assert world.get("/transactions/" + quote(t["SK"], safe="")) == before


def test_update_unknown_transaction_is_404(world):
    sk = "TX#" + str(uuid.uuid4()) + "#2025-01-01#1"
    assert _patch(world, sk, {"transactionSk": sk, "labels": ["a"]}, status=404)["message"] == "Transaction not found"


# --- isolation -----------------------------------------------------------------------------------------------------
def test_other_users_and_tenants_see_nothing_of_the_owner():
    owner = World(user="owner@example.com")
    sb_client = owner.http.post("/_sandbox/clients", json={"client_id": "t2", "client_secret": "t2-secret-0123456789"})
    assert sb_client.status_code == 201
    peer = {"Authorization": "Bearer " + owner.token_for("peer@example.com")}
    stranger = {"Authorization": "Bearer " + owner.token_for("owner@example.com", ("t2", "t2-secret-0123456789"))}
    account = owner.get("/accounts")["items"][0]
    t = owner.get("/transactions", limit="1")["items"][0]
    for headers in (peer, stranger):
        assert owner.get("/accounts", headers=headers)["items"] == []
        assert owner.get("/transactions", headers=headers)["items"] == []
        owner.get(f"/accounts/{account['id']}", status=404, headers=headers)
        owner.get(f"/accounts/{account['id']}/balances/history", status=404, headers=headers)
        owner.get("/transactions/" + quote(t["SK"], safe=""), status=404, headers=headers)
        _patch(owner, t["SK"], {"transactionSk": t["SK"], "labels": ["x"]}, status=404, headers=headers)
        assert owner.get("/extended-securities", headers=headers) == {"positions": [], "totalPositionsValue": 0,
                                                                      "orders": []}
    assert owner.get("/transactions/" + quote(t["SK"], safe="")) == t


def test_ids_are_deterministic_for_a_seed_and_differ_between_users():
    a, b = World(user="same@example.com"), World(user="same@example.com")
    assert a.get("/accounts")["items"] == b.get("/accounts")["items"]
    c = World(user="other@example.com", customer=a.customer)
    assert {x["id"] for x in c.get("/accounts")["items"]}.isdisjoint({x["id"] for x in a.get("/accounts")["items"]})


# --- connection counts, categories, securities, scopes ---------------------------------------------------------------
def test_connection_counts_equal_what_the_lists_show(world):
    service = world.app.extensions["sandbox"].providers["open_finance"].service
    counts = service.connection_counts("sandbox-client", world.conn)
    listed = Counter(a["accountType"] for a in world.get("/accounts", connectionId=world.conn["id"])["items"])
    assert counts == {"accounts": listed["CHECKING"], "cards": listed["CARD"], "savings": listed["SAVINGS"],
                      "loans": listed["LOAN"], "securities": listed["SECURITIES"],
                      "transactions": len(world.all_transactions(connectionId=world.conn["id"]))}
    assert counts["cards"] == 2 and counts["transactions"] == sum(len(a["transactions"]) for a in world.raw_accounts())
    assert service.account_objects("sandbox-client", world.conn) == \
        world.get("/accounts", connectionId=world.conn["id"])["items"]
    assert service.connection_counts("sandbox-client", {**world.conn, "id": "no-ledger"}) == {
        "accounts": None, "cards": None, "savings": None, "loans": None, "securities": None, "transactions": None}


def test_transaction_categories_are_the_documented_static_lists(world):
    from sandbox.providers.open_finance.data import CATEGORIES
    body = world.get("/transaction-categories")
    assert body["mainCategoriesExpenses"] == ["HOUSEHOLD_&_SERVICES", "HOME_IMPROVEMENTS", "FOOD_&_DRINKS",
                                              "TRANSPORT", "SHOPPING", "LEISURE", "HEALTH_&_BEAUTY", "OTHER",
                                              "FINANCE"]
    assert body["mainCategoriesIncomes"] == ["SALARY", "PENSION", "REIMBURSEMENTS", "BENEFITS", "FINANCE", "OTHER"]
    assert body["subCategoriesExpenses"]["HOUSEHOLD_&_SERVICES"][1] == "MORTGAGE"   # mortgage payments (s.10)
    assert body["subCategoriesIncome"]["OTHER"] == ["OTHER", "UNCATEGORIZED"]
    for main, sub in CATEGORIES.values():   # every category the data uses is in the lists
        assert sub in body["subCategoriesExpenses"].get(main, []) + body["subCategoriesIncome"].get(main, [])
    other = World(user="cats@example.com")
    assert other.get("/transaction-categories") == body


def test_extended_securities_value_is_the_securities_balance(world):
    raw = world.raw_accounts("securities")[0]
    body = world.get("/extended-securities")
    assert len(body["positions"]) == len(raw["holdings"])
    values = [D(h["units"]) * D(h["price"]) for h in raw["holdings"]]
    assert [D(p["positionValue"]) for p in body["positions"]] == [v.quantize(Decimal("0.01")) for v in values]
    assert D(body["totalPositionsValue"]) == sum(D(p["positionValue"]) for p in body["positions"]) == D(raw["balance"])
    deposits = [t for t in raw["transactions"] if t["category"] == "securities_purchase"]
    assert len(body["orders"]) == len(deposits)
    assert all(o["side"] == "buy" and o["orderStatus"] == "filled" for o in body["orders"])
    account = world.public(raw)
    assert [p["financialInstrument"]["isin"] for p in account["securityPositions"]] == [h["isin"] for h in raw["holdings"]]


def test_scopes_per_operation():
    w = World()
    r = w.http.post("/_sandbox/clients", json={"client_id": "narrow", "client_secret": "narrow-secret-0123456789",
                                               "scopes": {"open_finance": ["read:accounts", "read:connections"]}})
    assert r.status_code == 201
    w2 = World(app=w.app, user="narrow@example.com")
    narrow = {"Authorization": "Bearer " + w2.token_for("narrow@example.com", ("narrow", "narrow-secret-0123456789"))}
    assert w2.get("/accounts", headers=narrow)["items"] == []   # allowed, and this tenant has no data
    forbidden = {"type": "CLIENT_ERROR",
                 "message": "Forbidden - Access token missing the required permissions to preform this action"}
    for path in ("/transactions", "/transaction-categories", "/extended-securities"):
        assert w2.get(path, status=403, headers=narrow) == forbidden
    r = w.http.patch(P + "/transactions/x", json={"transactionSk": "x"}, headers=narrow)
    assert r.status_code == 403


def test_no_connection_means_empty_lists_not_errors():
    w = World()
    h = {"Authorization": "Bearer " + w.token_for("nobody@example.com")}
    assert w.get("/accounts", headers=h) == {"nextPage": None, "items": []}
    assert w.get("/transactions", headers=h) == {"nextPage": None, "items": []}


def test_a_deleted_ledger_takes_its_accounts_and_transactions_with_it():
    w = World()
    account = w.get("/accounts")["items"][0]
    t = w.get("/transactions", limit="1")["items"][0]
    w.app.extensions["sandbox"].store.delete("sandbox-client", "open_finance.ledgers", w.conn["id"])
    assert w.get("/accounts")["items"] == [] and w.get("/transactions")["items"] == []
    w.get(f"/accounts/{account['id']}", status=404)
    w.get("/transactions/" + quote(t["SK"], safe=""), status=404)


def test_replaced_connections_are_not_listed():
    w = World()
    store = w.app.extensions["sandbox"].store
    service = w.app.extensions["sandbox"].providers["open_finance"].service
    coll = service._connections("sandbox-client", w.user)
    coll.patch(w.conn["id"], {"status": "REPLACED"})
    assert w.get("/accounts")["items"] == []
    assert store.get("sandbox-client", "open_finance.ledgers", w.conn["id"]) is not None


# --- with connections.py: a consented connection, its counts, refresh and delete ------------------------------------
def _connect(w: World, psu_id: str, **body) -> str:
    r = w.http.post("/open-finance/v2/connections", headers=w.h, json={"includeFakeProviders": True, "psuId": psu_id,
                                                                        **body})
    assert r.status_code == 201, r.get_data(as_text=True)
    cid = r.get_json()["id"]
    assert w.http.post(f"/_sandbox/flows/{cid}/complete", json={"outcome": "success"}).status_code == 200
    return cid


def test_a_consented_connection_serves_its_data_once_fetched_and_its_counts_match():
    w = World()
    cid = _connect(w, "321547416")
    for _ in range(120):   # FETCHING -> CONNECTED -> COMPLETED on the sandbox clock (connections.py, s.8)
        status = w.http.get(f"/open-finance/v2/connections/{cid}", headers=w.h).get_json()["status"]
        if status == "COMPLETED":
            break
        if status == "FETCHING":
            assert w.get("/accounts", connectionId=cid)["items"] == []   # nothing before the first fetch ends
        w.http.post("/_sandbox/clock/advance", json={"seconds": 1})
    conn = w.http.get(f"/open-finance/v2/connections/{cid}", headers=w.h).get_json()
    assert conn["status"] == "COMPLETED"
    listed = Counter(a["accountType"] for a in w.get("/accounts", connectionId=cid)["items"])
    assert {k: conn[k] for k in ("accounts", "cards", "savings", "loans", "securities")} == {
        "accounts": listed["CHECKING"], "cards": listed["CARD"], "savings": listed["SAVINGS"],
        "loans": listed["LOAN"], "securities": listed["SECURITIES"]}
    assert conn["transactions"] == len(w.all_transactions(connectionId=cid))
    raw = w.app.extensions["sandbox"].store.get("sandbox-client", "open_finance.ledgers", cid)
    numbers = {a["accountNumber"] for a in w.get("/accounts", connectionId=cid)["items"]}
    assert {"31-114-435694", "31-124-272604", "31-064-406821"} & numbers   # the published BBANs (s.11)
    assert conn["transactions"] == sum(len(a["transactions"]) for a in raw["accounts"])
    account = w.get("/accounts", connectionId=cid)["items"][0]
    t = w.get("/transactions", connectionId=cid, limit="1")["items"][0]
    assert w.http.delete(f"/open-finance/v2/connections/{cid}", headers=w.h).status_code == 204
    w.get(f"/accounts/{account['id']}", status=404)
    w.get("/transactions/" + quote(t["SK"], safe=""), status=404)
    assert w.get("/accounts", connectionId=cid)["items"] == []


def test_refreshed_data_moves_forward_with_the_clock_and_stays_consistent():
    w = World()
    cid = _connect(w, "058766718", refreshData=True)
    w.http.post("/_sandbox/clock/advance", json={"seconds": 60})
    assert w.http.get(f"/open-finance/v2/connections/{cid}", headers=w.h).get_json()["status"] == "ACTIVE"
    before = w.all_transactions(connectionId=cid)
    w.http.post("/_sandbox/clock/advance", json={"seconds": 10 * 86400})
    w.token = w.token_for(w.user)   # tokens live 24 h on the sandbox clock (s.3)
    after = w.all_transactions(connectionId=cid)
    assert max(t["date"]["bookingDate"] for t in after) > max(t["date"]["bookingDate"] for t in before)
    for account in w.get("/accounts", connectionId=cid)["items"]:
        history = w.get(f"/accounts/{account['id']}/balances/history")["items"]
        moved = sum((D(t["amount"]["chargedAmount"]["amount"]) for t in after if t["accountId"] == account["id"]),
                    Decimal(0))
        assert D(history[-1]["balance"]) - D(history[0]["balance"]) == moved


@pytest.mark.parametrize("psu_id", [p for p, (bbans, status) in TEST_PSU_IDS.items() if status == "ACTIVE"])
def test_every_published_active_psu_id_serves_its_three_documented_accounts(psu_id):
    """open_finance.md s.11: each ACTIVE test psuId has the three published BBANs, whatever persona it draws (a
    persona with fewer non-card accounts gets deposit accounts without movements); IBANs valid, totals intact."""
    w = World()
    cid = _connect(w, psu_id)
    w.http.put("/_sandbox/jobs/policy", json={"kind": "open_finance.connection_fetch", "mode": "instant"})
    for _ in range(10):
        if w.http.get(f"/open-finance/v2/connections/{cid}", headers=w.h).get_json()["status"] == "COMPLETED":
            break
        w.http.post("/_sandbox/clock/advance", json={"seconds": 5})
    accounts = w.get("/accounts", connectionId=cid)["items"]
    numbers = {a["accountNumber"] for a in accounts}
    assert set(TEST_PSU_IDS[psu_id][0]) <= numbers, (psu_id, sorted(numbers))
    for a in accounts:
        if a.get("iban"):
            iban = a["iban"]
            assert int("".join(str(int(c, 36)) for c in iban[4:] + iban[:4])) % 97 == 1


@pytest.mark.parametrize("psu_id", ["043510023", "321547416", "1772268"])
def test_published_psu_ids_have_exactly_their_documented_accounts_for_every_seed(psu_id):
    """s.11: each ACTIVE test psuId has exactly its three BBANs (plus cards), the first its one checking account,
    whatever persona the seed draws: a second checking account or further accounts must not show up."""
    documented = set(TEST_PSU_IDS[psu_id][0])
    for seed in range(40):
        ledger = apply_test_accounts(generate_ledger(seed, psu_id, date(2026, 11, 30), market="IL"), psu_id)
        numbers = [a.number for a in ledger.accounts if a.kind != "credit_card"]
        assert sorted(numbers) == sorted(documented), (seed, [(a.kind, a.number) for a in ledger.accounts])
        checking = [a.number for a in ledger.accounts if a.kind == "checking"]
        assert checking == [TEST_PSU_IDS[psu_id][0][0]], (seed, [(a.kind, a.number) for a in ledger.accounts])
