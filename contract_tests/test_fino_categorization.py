"""finoOS categorization contract tests (fino.md sections 4-6, 10 "Categorization", 11, 13), by catalogue id.
In-process by default; over HTTP with --base-url:

    sandbox check fino --base-url http://127.0.0.1:8080/fino/api

The test uploads German bookings whose tags it knows (salary from an employer, rent standing order, REWE with an MCC,
a Vodafone direct debit, an insurance with a creditor id, child benefit, transfers between the user's own accounts,
...) and compares every tag with its own expectation. Runs finish 2 s after they start on the frozen sandbox clock;
time moves only through the control API.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from .checks import provider_error, status_in
from .fino_client import FinoClient, fino_fixture
from .transport import Receiver
BERLIN = ZoneInfo("Europe/Berlin")
FORBIDDEN = {"type": "forbidden", "message": "Forbidden. No access to this resource"}
GIRO_IBAN, SAVINGS_IBAN = "DE64100200007791587578", "DE89370400440532013000"
SAL, RENT, DD, CARD, ATM, CT, CT_IN = 153, 117, 105, 106, 83, 116, 166   # German GVC (fino.md section 8)
MONTHS = (1, 2, 3)
pytestmark = pytest.mark.control


def at(month: int, day: int, hour: int = 10, second: int = 0) -> int:
    """A booking instant in 2024 (Berlin), Unix seconds as finoOS sends them."""
    return int(datetime(2024, month, day, hour, 0, second, tzinfo=BERLIN).timestamp())


def tx(tid, amount, when, purpose="", partner=None, gvc=None, **extra):
    doc = {"transactionId": tid, "amount": amount, "bookingDate": when, "purpose": purpose, **extra}
    if partner:
        doc["paymentPartner"] = partner if isinstance(partner, dict) else {"name": partner}
    if gvc is not None:
        doc["transactionCode"] = gvc
    return doc


E, S, F, V, R = "earning", "spending", "fix", "variable", "recurring"


def known_bookings() -> tuple[list[dict], list[dict], dict[str, list[str]]]:
    """(Girokonto transactions, Tagesgeld transactions, transactionId -> expected tags): the test's own truth.
    Tag order: earning|spending, fix|variable, recurring, category."""
    giro, savings, want = [], [], {}

    def add(doc, tags, book=giro):
        book.append(doc)
        want[doc["transactionId"]] = tags

    for m in MONTHS:
        add(tx(f"sal-{m}", 3563.84, at(m, 27), f"LOHN/GEHALT {m:02d}/2024", {
            "name": "Müschke GmbH", "iban": "DE83701999010000002000", "bic": "GENODEF1S04"}, SAL,
               bookingText="LOHN/GEHALT", sepaPurposeCode="SALA"), [E, F, R, "salary"])
        add(tx(f"rent-{m}", -950.0, at(m, 1), f"Miete {m:02d}/2024 Whg. 3. OG links", {
            "name": "Hausverwaltung Krause GmbH", "iban": "DE02120300000000202051"}, RENT,
               bookingText="DAUERAUFTRAG", sepaPurposeCode="RENT"), [S, F, R, "rent"])
        add(tx(f"voda-{m}", -39.99, at(m, 5), f"Vodafone GmbH Kd-Nr. 123456789 Rechnung {m:02d}/2024", {
            "name": "Vodafone GmbH", "creditorId": "DE61ZZZ00000006016"}, DD, bookingText="SEPA-BASISLASTSCHRIFT",
               mref="KD1234567890/2021"), [S, F, R, "contract"])
        add(tx(f"ins-{m}", -25.40, at(m, 2), "Beitrag Privathaftpflicht Vertrag 4711-0815", {
            "name": "Allianz Versicherungs-AG", "creditorId": "DE24ZZZ00000018421"}, DD,
               bookingText="SEPA-BASISLASTSCHRIFT", sepaPurposeCode="INSU"), [S, F, R, "insurance"])
        add(tx(f"kg-{m}", 250.0, at(m, 10), "KINDERGELD KG-NR 123FK456789", "Familienkasse Berlin-Brandenburg",
               CT_IN, bookingText="GUTSCHRIFT"), [E, F, R, "child-benefit"])
    for n, (month, day, amount) in enumerate([(1, 3, -54.30), (1, 19, -12.99), (2, 8, -87.45), (3, 14, -23.10)]):
        add(tx(f"rewe-{n}", amount, at(month, day, 18), "REWE SAGT DANKE 4711", "REWE Markt GmbH", CARD,
               merchantCategoryCode="5411", bookingText="KARTENZAHLUNG"), [S, V, "groceries"])
    add(tx("atm", -200.0, at(2, 15), "GA Alexanderplatz 15.02. 10:00", "Berliner Sparkasse", ATM,
           bookingText="BARGELDAUSZAHLUNG"), [S, V, "cash-withdrawal"])
    add(tx("aral", -65.20, at(2, 16), "ARAL 123 Berlin", "ARAL Tankstelle", CARD, merchantCategoryCode="5541"),
        [S, V, "mobility"])
    add(tx("hm", -39.95, at(2, 17), "H&M 456 Berlin Alexa", "H&M Hennes & Mauritz", CARD,
           merchantCategoryCode="5651"), [S, V, "clothing"])
    add(tx("lh", -289.0, at(2, 18), "LH 220 FRA-LIS 12.04.2024", "Deutsche Lufthansa AG", CARD,
           merchantCategoryCode="4511"), [S, V, "vacation"])
    add(tx("cine", -24.0, at(2, 19), "CineStar Berlin Tickets", "CineStar Berlin", CARD,
           merchantCategoryCode="7832"), [S, V, "recreational"])
    add(tx("etf", -100.0, at(2, 20), "Sparplan Depot 5566778 iShares Core MSCI World", "ING-DiBa AG", DD),
        [S, F, "security-saving-plan"])
    add(tx("loan", -180.0, at(2, 21), "Rate Ratenkredit 7788990", "Santander Consumer Bank AG", DD),
        [S, F, "credit"])
    add(tx("elterngeld", 1200.0, at(2, 22), "Elterngeld 02/2024 Az. 99-123", "L-Bank", CT_IN),
        [E, F, "parental-allowance"])
    add(tx("unterhalt", 350.0, at(2, 23), "Unterhalt Februar Lea", "Jan Becker", CT_IN), [E, F, "alimony"])
    add(tx("miete-in", 720.0, at(2, 24), "Miete Februar Whg. EG", "Sabine Wolf", CT_IN), [E, F, "rental"])
    add(tx("gift", -20.0, at(2, 25), "Geschenk Geburtstag", "Max Mustermann", CT), [S, V])
    add(tx("refund", 15.99, at(2, 26), "Gutschrift Retoure 1234567", "Zalando SE", CT_IN), [E, V])
    # a transfer to the user's own Tagesgeld: both sides are internal transfers (the partner IBAN is the user's)
    add(tx("to-savings", -500.0, at(3, 2), "Sparen", {"name": "Torben Mais", "iban": SAVINGS_IBAN}, CT),
        [S, V, "internal-transfer"])
    add(tx("from-giro", 500.0, at(3, 2, 11), "Sparen", {"name": "Torben Mais", "iban": GIRO_IBAN}, CT_IN),
        [E, V, "internal-transfer"], book=savings)
    return giro, savings, want


def account(aid, number, iban, txs, type_="GIRO", name="Girokonto"):
    return {"accountId": aid, "accountNumber": number, "balance": 2004.41, "bankCode": "10020000",
            "bankName": "Fino Bank", "bic": "FINOBANK01", "currency": "EUR", "iban": iban, "name": name,
            "owner": "Torben Mais", "type": type_, "transactions": txs}


@pytest.fixture
def fx(contract_options):
    yield from fino_fixture(contract_options, Fino, seed=23)


class Fino(FinoClient):
    """The finoOS client plus this file's bookings and categorization reads."""

    def upload(self, user_id, tenant=None) -> dict[str, list[str]]:
        giro, savings, want = known_bookings()
        self.ok("set_accounts", body={"accounts": [
            account("giro-1", "7791587578", GIRO_IBAN, giro),
            account("tg-1", "532013000", SAVINGS_IBAN, savings, "TAGESGELD", "Tagesgeld")]},
            tenant=tenant, user_id=user_id)
        return want

    def finish(self):
        self.control.clock("advance", seconds=2)

    def all_tags(self, user_id, tenant=None, **query) -> dict[str, dict]:
        """transactionId -> categorization entry, read page by page (pageSize 7)."""
        out, page = {}, 1
        while True:
            body = self.ok("get_categorization", query={"page": page, "pageSize": 7, **query}, tenant=tenant,
                           user_id=user_id).json
            for item in body["categorization"]:
                assert item["transactionId"] not in out
                out[item["transactionId"]] = item
            if page >= body["metaData"]["pages"]:
                return out
            page += 1


def _patterns(fx, uid, body, status=204):
    r = fx.call("set_categorization_patterns", body=body, user_id=uid)
    if status == 204:
        status_in(r, 204)
        return r.headers["Finoos-Correlation-Id"]
    provider_error(r, status)
    assert r.json["type"] == "invalidInput"
    return r


# --- tags from the user's own bookings ------------------------------------------------------------------------------
def test_every_uploaded_booking_gets_the_tags_the_test_expects(fx):
    uid = fx.user()
    want = fx.upload(uid)
    cid = fx.analyse(uid)
    got = fx.all_tags(uid)
    assert {t: e["tags"] for t, e in got.items()} == want
    corr = fx.ok("get_categorization_correlation", user_id=uid).json
    assert corr["correlationID"] == cid
    assert {e["creationDate"] for e in got.values()} == {corr["correlationTimestamp"]}
    assert {e["accountId"] for t, e in got.items() if t != "from-giro"} == {"giro-1"}
    assert got["from-giro"]["accountId"] == "tg-1"
    # every tag is a node of the tree
    tree_tags = set()
    stack = [fx.ok("get_categorization_tree").json["nodes"]]
    while stack:
        node = stack.pop()
        tree_tags.add(node["tag"])
        stack.extend(node["children"])
    assert {t for tags in want.values() for t in tags} <= tree_tags


def test_results_are_404_before_the_first_run_and_the_previous_ones_while_a_new_run_runs(fx):
    uid = fx.user()
    want = fx.upload(uid)
    for name, extra in (("get_categorization", {}), ("get_categorization_correlation", {}),
                        ("get_categorized_transactions", {}), ("get_transaction_tags", {"transaction_id": "sal-1"})):
        provider_error(fx.call(name, user_id=uid, **extra), 404)
    fx.ok("trigger_analysis", user_id=uid)
    fx.control.clock("advance", seconds=1.9)
    provider_error(fx.call("get_categorization", user_id=uid), 404)   # the first run is still running
    provider_error(fx.call("get_categorization_correlation", user_id=uid), 404)
    fx.control.clock("advance", seconds=0.1)
    first = fx.ok("get_categorization_correlation", user_id=uid).json["correlationID"]
    assert fx.ok("get_transaction_tags", user_id=uid, transaction_id="rewe-0").json == {"tags": want["rewe-0"]}
    # a pattern makes REWE a contract; while that run runs, the previous results are served
    second = _patterns(fx, uid, {"patterns": [{"type": "name", "value": "REWE Markt GmbH",
                                               "tags": ["spending", "fix", "contract"]}]})
    assert second != first
    provider_error(fx.call("get_categorization_correlation", user_id=uid), 404)
    assert fx.ok("get_transaction_tags", user_id=uid, transaction_id="rewe-0").json == {"tags": want["rewe-0"]}
    assert fx.all_tags(uid)["rewe-1"]["tags"] == want["rewe-1"]
    fx.finish()
    assert fx.ok("get_categorization_correlation", user_id=uid).json["correlationID"] == second
    assert fx.ok("get_transaction_tags", user_id=uid, transaction_id="rewe-0").json == {
        "tags": ["spending", "fix", "contract"]}


def test_a_banking_ui_test_account_is_tagged_from_its_own_bookings(fx):
    uid = fx.user(automaticAnalysis="active")
    fx.ok("connect_test_account", body={}, user_id=uid)
    fx.finish()
    txs = fx.ok("get_transactions", user_id=uid).json
    got = fx.all_tags(uid)
    assert set(got) == {t["transactionId"] for t in txs} and len(txs) > 100
    categorized = fx.ok("get_categorized_transactions", user_id=uid).json["accounts"]
    for acc in categorized:
        for t in acc["transactions"]:
            assert t["tags"] == got[t["transactionId"]]["tags"]
            assert got[t["transactionId"]]["accountId"] == acc["accountId"]
    for t in txs:
        tags = got[t["transactionId"]]["tags"]
        assert tags[0] == ("earning" if t["amount"] > 0 else "spending")
        assert tags[1] in ("fix", "variable")
        if t["transactionCode"] == 153:      # GVC 153: Lohn, Gehalt, Rente
            assert {"salary", "pension"} & set(tags), t
        if t.get("merchantCategoryCode") == "5411" and t["amount"] < 0:
            assert "groceries" in tags, t
        if t["transactionCode"] == 83:       # GVC 83: Barauszahlung
            assert "cash-withdrawal" in tags, t
    salaries = [t for t in txs if t["transactionCode"] == 153 and t["amount"] > 0]
    # the generated persona decides the income: a student or a freelancer has no GVC 153 salary, and over HTTP the
    # tenant (so the persona) differs per run; the in-process persona (seed 23) has one, so this is never vacuous there
    if not fx.opts.get("base_url"):
        assert salaries
    assert all("recurring" in got[t["transactionId"]]["tags"] for t in salaries)


# --- paging ---------------------------------------------------------------------------------------------------------
def test_paging_boundaries_and_newest_first(fx):
    uid = fx.user()
    giro, savings, want = known_bookings()
    fx.upload(uid)
    fx.analyse(uid)
    total = len(want)
    newest_first = [t["transactionId"] for t in sorted(giro + savings, key=lambda t: (t["bookingDate"],
                                                                                     t["transactionId"]),
                                                      reverse=True)]
    default = fx.ok("get_categorization", user_id=uid).json
    assert default["metaData"] == {"page": 1, "pageSize": 10, "pages": -(-total // 10), "totalCount": total}
    assert [e["transactionId"] for e in default["categorization"]] == newest_first[:10]
    for size in (total - 1, total, total + 1):
        pages = -(-total // size)
        last = fx.ok("get_categorization", query={"page": pages, "pageSize": size}, user_id=uid).json
        assert last["metaData"] == {"page": pages, "pageSize": size, "pages": pages, "totalCount": total}
        assert [e["transactionId"] for e in last["categorization"]] == newest_first[(pages - 1) * size:]
        r = fx.call("get_categorization", query={"page": pages + 1, "pageSize": size}, user_id=uid)
        provider_error(r, 400)
        assert r.json["type"] == "invalidInput"
    for bad in ({"page": 0}, {"pageSize": 0}, {"page": "x"}, {"pageSize": "-3"}, {"page": "1.5"},
                {"correlationID": "not-a-uuid"}):
        provider_error(fx.call("get_categorization", query=bad, user_id=uid), 400)
    assert fx.ok("get_categorization", alias=0, user_id=uid).json == default   # /categorization/tags


def test_a_user_without_bookings_has_one_empty_page(fx):
    uid = fx.user()
    fx.ok("add_user_scopes", body={"userScopes": ["categorization"]}, user_id=uid)   # a run without banking data
    fx.finish()
    body = fx.ok("get_categorization", user_id=uid).json
    assert body == {"categorization": [], "metaData": {"page": 1, "pageSize": 10, "pages": 0, "totalCount": 0}}
    provider_error(fx.call("get_categorization", query={"page": 2}, user_id=uid), 400)


# --- the correlationID filter ---------------------------------------------------------------------------------------
def test_correlation_filter_returns_only_tags_added_or_changed_by_that_run_or_newer(fx):
    uid = fx.user()
    want = fx.upload(uid)
    first = fx.analyse(uid)
    t1 = fx.ok("get_categorization_correlation", user_id=uid).json["correlationTimestamp"]
    fx.control.clock("advance", seconds=120)   # the token lives 300 s
    fx.ok("add_transactions", body={"transactions": [tx("new-1", -9.99, at(3, 20), "Spotify P1234", "Spotify AB",
                                                        DD)]}, user_id=uid, account_id="giro-1")
    second = _patterns(fx, uid, {"patterns": [{"type": "creditorId", "value": "DE61ZZZ00000006016",
                                               "tags": ["spending", "fix", "recurring", "contract", "insurance"]}]})
    fx.finish()
    t2 = fx.ok("get_categorization_correlation", user_id=uid).json["correlationTimestamp"]
    assert t2 != t1
    changed = fx.all_tags(uid, correlationID=second)
    assert set(changed) == {"new-1", "voda-1", "voda-2", "voda-3"}
    assert changed["new-1"]["tags"] == ["spending", "fix", "contract"]   # a direct debit to a streaming service
    assert changed["voda-2"]["tags"] == ["spending", "fix", "recurring", "contract", "insurance"]
    assert {e["creationDate"] for e in changed.values()} == {t2}
    everything = fx.all_tags(uid, correlationID=first)
    assert set(everything) == set(want) | {"new-1"}
    assert everything["sal-1"]["creationDate"] == t1 and everything["voda-1"]["creationDate"] == t2
    third = fx.analyse(uid)   # nothing changed
    assert fx.all_tags(uid, correlationID=third) == {}
    assert set(fx.all_tags(uid, correlationID=second)) == set(changed)
    unknown = fx.call("get_categorization", query={"correlationID": "cc451d48-dbc2-4ea4-894a-fb4b299f9e56"},
                      user_id=uid)
    provider_error(unknown, 404)


# --- patterns -------------------------------------------------------------------------------------------------------
def test_patterns_retag_exactly_the_matching_bookings_on_both_sides_of_since_and_until(fx):
    uid = fx.user()
    want = fx.upload(uid)
    fx.ok("add_transactions", body={"transactions": [
        tx("edge-before", -10.0, at(2, 10, 12, 0) - 1, "Einkauf", "Kiosk Yildiz", CARD),
        tx("edge-since", -11.0, at(2, 10, 12, 0), "Einkauf", "Kiosk Yildiz", CARD),
        tx("edge-until", -12.0, at(2, 20, 12, 0), "Einkauf", "kiosk  YILDIZ", CARD),
        tx("edge-after", -13.0, at(2, 20, 12, 0) + 1, "Einkauf", "Kiosk Yildiz", CARD)]},
        user_id=uid, account_id="giro-1")
    fx.analyse(uid)
    before = {t: e["tags"] for t, e in fx.all_tags(uid).items()}
    assert before["edge-since"] == ["spending", "variable"]
    mine = ["spending", "variable", "groceries"]
    since = datetime(2024, 2, 10, 12, 0, tzinfo=BERLIN).isoformat()              # +01:00
    until = datetime(2024, 2, 20, 11, 0, tzinfo=ZoneInfo("UTC")).isoformat()     # the same instant as 12:00 Berlin
    override = ["spending", "insurance"]
    key = hashlib.sha1(b"gift").hexdigest()
    body = {"ids": {key: override},
            "patterns": [{"type": "name", "value": "Kiosk Yildiz", "tags": mine, "since": since, "until": until},
                         {"type": "creditorId", "value": "de24zzz00000018421", "tags": ["spending", "contract"]}]}
    _patterns(fx, uid, body)
    fx.finish()
    after = {t: e["tags"] for t, e in fx.all_tags(uid).items()}
    expected = dict(before)
    expected.update({"edge-since": mine, "edge-until": mine, "gift": override,
                     **{f"ins-{m}": ["spending", "contract"] for m in MONTHS}})
    assert after == expected
    stored = fx.ok("get_categorization_patterns", user_id=uid).json
    assert stored == {"ids": {key: override}, "patterns": [
        {"since": "2024-02-10T11:00:00+00:00", "tags": mine, "type": "name", "until": "2024-02-20T11:00:00+00:00",
         "value": "Kiosk Yildiz"},
        {"tags": ["spending", "contract"], "type": "creditorId", "value": "de24zzz00000018421"}]}
    # a complete replacement: an empty document removes every pattern and the rules decide again
    _patterns(fx, uid, {"patterns": []})
    fx.finish()
    assert fx.ok("get_categorization_patterns", user_id=uid).json == {"ids": {}, "patterns": []}
    assert {t: e["tags"] for t, e in fx.all_tags(uid).items()} == before
    assert {t: before[t] for t in want} == want


BAD_PATTERNS = [
    {"patterns": [{"type": "iban", "value": "DE02120300000000202051", "tags": ["spending"]}]},
    {"patterns": [{"type": "name", "value": "x", "tags": ["spending"], "since": "2024-02-30T00:00:00Z"}]},
    {"patterns": [{"type": "name", "value": "x", "tags": ["spending"], "until": "last tuesday"}]},
    {"patterns": [{"type": "name", "value": "x", "tags": ["spending"], "since": "2024-02-01"}]},
    {"patterns": [{"type": "name", "value": "x", "tags": ["spending"], "since": "2024-03-01T00:00:00Z",
                   "until": "2024-02-01T00:00:00Z"}]},
    {"patterns": [{"type": "name", "value": "REWE", "tags": ["spending"], "since": "2024-01-01T00:00:00Z"},
                  {"type": "name", "value": "rewe", "tags": ["spending"], "until": "2024-01-01T00:00:00Z"}]},
    {"patterns": [{"type": "name", "value": "REWE", "tags": ["spending"]},
                  {"type": "name", "value": "REWE", "tags": ["earning"], "since": "2020-01-01T00:00:00Z"}]},
    {"patterns": [{"type": "name", "value": "x", "tags": ["shoes"]}]},
    {"patterns": [{"type": "name", "value": "x", "tags": []}]},
    {"patterns": [{"type": "name", "value": "", "tags": ["spending"]}]},
    {"patterns": [{"type": "name", "value": "x", "tags": "spending"}]},
    {"ids": {"gift": ["spending"]}},
    {"ids": {hashlib.sha1(b"x").hexdigest(): ["nope"]}},
    {"patterns": "all"},
    {"pattern": []},
]


@pytest.mark.parametrize("body", BAD_PATTERNS)
def test_bad_patterns_are_400_and_change_nothing(fx, body):
    uid = fx.user()
    fx.upload(uid)
    good = {"patterns": [{"type": "name", "value": "REWE Markt GmbH", "tags": ["spending", "groceries"],
                          "since": "2024-01-01T00:00:00+00:00", "until": "2024-12-31T23:59:59+00:00"}]}
    _patterns(fx, uid, good)
    fx.finish()
    corr = fx.ok("get_categorization_correlation", user_id=uid).json
    _patterns(fx, uid, body, status=400)
    assert fx.ok("get_categorization_patterns", user_id=uid).json == {"ids": {}, **good}
    assert fx.ok("get_categorization_correlation", user_id=uid).json == corr   # no run started


def test_adjacent_ranges_of_one_value_and_equal_ranges_of_two_values_are_fine(fx):
    uid = fx.user()
    body = {"patterns": [
        {"type": "name", "value": "REWE", "tags": ["spending"], "until": "2024-01-31T23:59:59+00:00"},
        {"type": "name", "value": "REWE", "tags": ["spending", "groceries"], "since": "2024-02-01T00:00:00+00:00"},
        {"type": "creditorId", "value": "REWE", "tags": ["spending"]}]}
    _patterns(fx, uid, body)
    assert fx.ok("get_categorization_patterns", user_id=uid).json["patterns"] == [
        {k: p[k] for k in sorted(p)} for p in body["patterns"]]


# --- per transaction, categorized transactions ----------------------------------------------------------------------
def test_transaction_tags_and_categorized_transactions(fx):
    uid = fx.user()
    want = fx.upload(uid)
    fx.analyse(uid)
    for tid in ("sal-2", "rewe-3", "from-giro"):
        assert fx.ok("get_transaction_tags", user_id=uid, transaction_id=tid).json == {"tags": want[tid]}
    assert fx.ok("get_transaction_tags", alias=0, user_id=uid, transaction_id="atm").json == {"tags": want["atm"]}
    provider_error(fx.call("get_transaction_tags", user_id=uid, transaction_id="no-such-tx"), 404)
    other = fx.user()
    fx.upload(other)
    fx.analyse(other)
    fx.ok("delete_transactions", 204, body={"ids": ["gift"]}, user_id=other, account_id="giro-1")
    provider_error(fx.call("get_transaction_tags", user_id=other, transaction_id="gift"), 404)   # deleted
    fx.ok("add_transactions", body={"transactions": [tx("late", -3.5, at(3, 28), "Kaffee", "Balzac Coffee",
                                                        CARD)]}, user_id=uid, account_id="giro-1")
    assert fx.ok("get_transaction_tags", user_id=uid, transaction_id="late").json == {"tags": []}   # not analysed
    accounts = fx.ok("get_categorized_transactions", user_id=uid).json["accounts"]
    assert [a["accountId"] for a in accounts] == ["giro-1", "tg-1"]
    seen = {t["transactionId"]: (a["accountId"], t) for a in accounts for t in a["transactions"]}
    assert {t: v[1]["tags"] for t, v in seen.items()} == {**want, "late": []}
    assert seen["sal-1"][1]["amount"] == 3563.84 and seen["sal-1"][1]["paymentPartner"]["name"] == "Müschke GmbH"
    assert seen["from-giro"][0] == "tg-1"


# --- scopes, users, tenants -----------------------------------------------------------------------------------------
def test_user_scope_without_categorization_is_403_and_unknown_users_404(fx):
    uid = fx.user(userScopes=["banking", "contracts"])
    fx.upload(uid)
    fx.analyse(uid)
    for name, extra in (("get_categorization", {}), ("get_categorization_correlation", {}),
                        ("get_categorization_patterns", {}), ("get_categorized_transactions", {}),
                        ("get_transaction_tags", {"transaction_id": "sal-1"})):
        provider_error(fx.call(name, user_id=uid, **extra), 403, FORBIDDEN)
        provider_error(fx.call(name, user_id="0b7f3c36-2c1b-4d5e-9c4f-111111111111", **extra), 404)
    provider_error(fx.call("set_categorization_patterns", body={"patterns": []}, user_id=uid), 403, FORBIDDEN)
    fx.ok("add_user_scopes", body={"userScopes": ["categorization"]}, user_id=uid)
    fx.finish()
    status_in(fx.call("get_categorization", user_id=uid), 200)


def test_users_of_another_tenant_are_not_found(fx):
    uid = fx.user(tenant="shop-1")
    fx.upload(uid, tenant="shop-1")
    fx.analyse(uid, tenant="shop-1")
    status_in(fx.call("get_categorization", user_id=uid, tenant="shop-1"), 200)
    provider_error(fx.call("get_categorization", user_id=uid), 404)
    provider_error(fx.call("get_categorization_patterns", user_id=uid, tenant="shop-2"), 404)
    provider_error(fx.call("set_categorization_patterns", body={"patterns": []}, user_id=uid), 404)


def test_client_scopes_gate_categorization_and_the_tree(fx):
    made = [fx.control.create_client(client_id=name, client_secret=secret, scopes={"fino": scopes})
            for name, secret, scopes in (("fino-cat-only", "cat-secret-0123456789", ["banking", "categorization"]),
                                         ("fino-tree-only", "tree-secret-0123456789",
                                          ["categorization-categories"]))]
    cat, tree = ((m["client_id"], s) for m, s in zip(made, ("cat-secret-0123456789", "tree-secret-0123456789")))
    provider_error(fx.call("get_categorization_tree", client=cat), 403, FORBIDDEN)
    provider_error(fx.call("get_tag_descriptions", client=cat), 403, FORBIDDEN)
    status_in(fx.call("get_categorization_tree", client=tree), 200)
    provider_error(fx.call("get_categorization", user_id="any", client=tree), 403, FORBIDDEN)
    provider_error(fx.call("set_categorization_patterns", body={"patterns": []}, user_id="any", client=tree), 403,
                   FORBIDDEN)
    uid = fx.ok("create_user", 201, body={"type": "person"}, client=cat).json["user"]["userID"]
    status_in(fx.call("get_categorization_patterns", user_id=uid, client=cat), 200)


# --- the tree and its descriptions ----------------------------------------------------------------------------------
def test_tree_is_a_hierarchy_with_a_stable_change_hash(fx):
    body = fx.ok("get_categorization_tree").json
    assert fx.ok("get_categorization_tree", alias=0).json == body == fx.ok("get_categorization_tree", alias=1).json
    root = body["nodes"]
    assert root["level"] == 0 and root["type"] == "root"
    tags, stack = [], [root]
    while stack:
        node = stack.pop()
        tags.append(node["tag"])
        for child in node["children"]:
            assert child["level"] == node["level"] + 1
        stack.extend(node["children"])
    assert len(tags) == len(set(tags))
    level1 = {n["tag"]: n for n in root["children"]}
    assert {"earning", "spending", "fix", "variable", "recurring"} <= set(level1)
    assert all(level1[t]["type"] == "attribute" for t in ("earning", "spending", "fix", "variable", "recurring"))
    assert {c["tag"] for c in level1["earning"]["children"]} == {
        "salary", "pension", "child-benefit", "parental-allowance", "rental", "alimony"}
    assert {c["tag"] for c in level1["spending"]["children"]} == {
        "insurance", "rent", "groceries", "mobility", "clothing", "recreational", "vacation", "cash-withdrawal",
        "credit", "contract", "security-saving-plan"}
    assert "internal-transfer" in tags and len(body["treeVersionHash"]) == 40


def test_descriptions_in_german_and_english_cover_the_tree(fx):
    tree, stack = [], [fx.ok("get_categorization_tree").json["nodes"]]
    while stack:
        node = stack.pop()
        tree.append(node["tag"])
        stack.extend(node["children"])
    de = fx.ok("get_tag_descriptions", query={"language": "de"}).json
    en = fx.ok("get_tag_descriptions", query={"language": "en"}).json
    assert fx.ok("get_tag_descriptions").json == de                     # German by default (inferred)
    assert fx.ok("get_tag_descriptions", alias=0, query={"language": "en"}).json == en
    for body, lang in ((de, "de"), (en, "en")):
        assert body["language"] == lang and sorted(d["name"] for d in body["descriptionList"]) == sorted(tree)
        assert all(d["displayName"] and d["description"] for d in body["descriptionList"])
    names = {lang: {d["name"]: d["displayName"] for d in b["descriptionList"]} for lang, b in (("de", de), ("en", en))}
    assert names["de"]["groceries"] == "Lebensmittel" and names["en"]["groceries"] == "Groceries"
    assert names["de"]["child-benefit"] == "Kindergeld"
    assert de["descriptionVersionHash"] != en["descriptionVersionHash"]
    for bad in ("fr", "DE", "", "de,en"):
        r = fx.call("get_tag_descriptions", query={"language": bad})
        provider_error(r, 400)
        assert r.json["type"] == "invalidInput"


# --- the webhook ----------------------------------------------------------------------------------------------------
def test_the_categorization_webhook_carries_what_the_run_changed(fx):
    hooks = Receiver()
    try:
        fx.ok("create_webhook", 201, body={"url": hooks.url + "/fino", "events": ["categorization"]})
        uid = fx.user()
        fx.upload(uid)
        cid = fx.analyse(uid)
        fx.control.flush_webhooks(provider="fino")
        [got] = [json.loads(r["body"]) for r in hooks.received]
        assert got["event"] == "categorization" and got["correlationID"] == cid
        assert got["data"] == fx.ok("get_categorization", query={"correlationID": cid}, user_id=uid).json
    finally:
        hooks.close()
