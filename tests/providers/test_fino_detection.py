"""finoOS account detection, account history, contracts and companies (fino.md section 10) at unit level: the edit
distance, the company fixture, consistency of every result with the bookings of a Banking-UI-connected user (the
shared German ledger), contract deletion marks, intervals, determinism and the 24-month / 5,000-booking budget."""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from contract_tests.partial_app import fino_app
from sandbox.core.store import MemoryStore
from sandbox.ledger.analytics import default_categoriser
from sandbox.ledger.generator import FIXTURES
from sandbox.providers.fino import detection, german
from sandbox.providers.fino.detection import Tx, auto_fuzziness, detect_contracts, levenshtein

BERLIN = ZoneInfo("Europe/Berlin")
T0 = "2025-04-23T09:30:00Z"
TODAY = date(2025, 4, 23)
ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((FIXTURES / "fino" / "companies.yaml").read_text())["companies"]
URLS = {"redirectURL": "https://app.example/ok", "errorURL": "https://app.example/err",
        "exitURL": "https://app.example/exit"}


# --- edit distance ----------------------------------------------------------------------------------------------------
def reference_distance(a: str, b: str) -> int:
    """The textbook recursive definition (memoised), independent of the DP under test."""
    @lru_cache(maxsize=None)
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
    return d(len(a), len(b))


@settings(max_examples=300, deadline=None)
@given(st.text("abcdeé ", max_size=8), st.text("abcdeé ", max_size=8), st.integers(0, 3))
def test_levenshtein_is_the_edit_distance(a, b, limit):
    exact = reference_distance(a, b)
    assert levenshtein(a, b) == exact == levenshtein(b, a)
    capped = levenshtein(a, b, limit)
    assert capped == exact if exact <= limit else capped > limit


def test_known_distances_and_auto_fuzziness():
    assert levenshtein("vodafone", "vodafon") == 1 and levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("e.on", "e.on") == 0
    # Elasticsearch AUTO: 0 edits up to 2 characters, 1 up to 5, 2 beyond
    assert [auto_fuzziness("x" * n) for n in range(1, 9)] == [0, 0, 1, 1, 1, 2, 2, 2]


# --- the company fixture ----------------------------------------------------------------------------------------------
def mod97_valid(cid: str) -> bool:
    """ISO 7064 mod 97-10 over the national id + country + check digits (the business code is skipped)."""
    digits = "".join(str(int(ch, 36)) for ch in cid[7:] + cid[:4])
    return int(digits) % 97 == 1


def test_the_company_fixture_is_large_german_and_valid():
    assert len(RAW) >= 60
    assert len({c["id"] for c in RAW}) == len(RAW) == len({c["logoID"] for c in RAW}) == len({c["name"] for c in RAW})
    categories = {c["category"] for c in RAW}
    assert {"INSURANCE", "HEALTH_INSURANCE", "TELECOMMUNICATION", "ENERGY", "STREAMING", "RENT", "CAR_TAX", "LOAN",
            "WORK", "TAX", "BROADCAST_FEE"} <= categories
    for c in RAW:
        for cid in c["creditorIDs"]:
            assert len(cid) == 18 and cid[:2] == "DE" and cid[4:7].isalnum() and mod97_valid(cid), (c["name"], cid)
        assert c["address"]["postcode"] and c["address"]["city"] and c["contact"]["email"].count("@") == 1
        assert isinstance(c["industry"], int) and isinstance(c["legalForm"], int)
        svg = ROOT / "sandbox" / "providers" / "fino" / "assets" / c["logo"]
        root = ET.fromstring(svg.read_text())
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("aria-label")
    assert next(c for c in RAW if c["name"] == "Bundeskasse Trier")["creditorIDs"] == ["DE09ZZZ00000000001"]
    assert detection.directory().companies   # the loader's own checks pass too


def test_direct_debit_payees_of_the_german_ledger_are_in_the_fixture_with_their_creditor_ids():
    """Bank-fetched debits carry german.creditor_id(payee): each DE market payee that debits is a fixture company
    holding that id, so a Banking-UI user's contracts find their partners by creditor id."""
    market = yaml.safe_load((FIXTURES / "markets" / "DE.yaml").read_text())
    debiting = ("electricity", "water", "gas", "property_tax", "broadcast_fee", "internet", "mobile", "tv",
                "health_insurance", "life_insurance", "car_insurance", "home_insurance", "tuition", "kindergarten")
    for payee in debiting:
        for name in market["payees"][payee]["names"]:
            company = detection.company_for(name, german.creditor_id(name))
            assert company is not None, name
            assert german.creditor_id(name) in company["creditorIDs"], name


# --- a Banking-UI-connected user --------------------------------------------------------------------------------------
def make_env(seed=5):
    app = fino_app({"SEED": seed}, store=MemoryStore())
    c = app.test_client()
    c.post("/_sandbox/clock/freeze", json={"at": T0})
    c.put("/_sandbox/jobs/policy", json={"mode": "instant", "kind": "fino.analysis"})
    tok = c.post("/fino/api/auth", data={"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                                         "grant_type": "client_credentials"}).json["access_token"]
    return SimpleNamespace(app=app, c=c, sb=app.extensions["sandbox"], h={"Authorization": f"Bearer {tok}"})


def connected_user(env, account_types=("GIRO",), kind="person") -> str:
    """A user connected through the Banking UI (the flow completed through the control API, as a person would)."""
    uid = env.c.post("/fino/api/users", json={"type": kind, "name": "Erika Mustermann"}, headers=env.h).json["user"][
        "userID"]
    s = env.c.post(f"/fino/api/users/{uid}/banking/connect", json={**URLS, "accountTypes": list(account_types)},
                   headers=env.h).json
    parts = urlsplit(s["redirectURL"])
    html = env.c.get(parts.path + "?" + parts.query).data.decode()
    import re
    fid = re.search(r'name="(?:flow_id|sessionId)" value="([^"]+)"', html).group(1)
    r = env.c.post(f"/_sandbox/flows/{fid}/complete", json={"outcome": "success"})
    assert r.status_code == 200, r.json
    assert env.c.get(f"/fino/api/users/{uid}/banking/correlation", headers=env.h).status_code == 200
    return uid


def get(env, path):
    r = env.c.get("/fino/api" + path, headers=env.h)
    assert r.status_code == 200, (path, r.status_code, r.data[:300])
    return r.json


def berlin_day(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, BERLIN).date()


@pytest.mark.parametrize("kind", ["person", "company"])
def test_every_result_agrees_with_the_connected_bookings(kind):
    env = make_env(seed=17 if kind == "person" else 3)
    uid = connected_user(env, ("GIRO",) if kind == "person" else ("GIRO", "KREDITDARLEHEN"), kind)
    accounts = get(env, f"/users/{uid}/banking/accounts")["accounts"]
    txs = {(a["accountId"], t["transactionId"]): t for a in accounts for t in a["transactions"]}
    assert len(txs) > 100
    # history: every day's balance = the current balance minus every later booking (recomputed here)
    histories = {h["account"]["accountId"]: h for h in get(env, f"/users/{uid}/account-history")["histories"]}
    assert set(histories) == {a["accountId"] for a in accounts}
    for a in accounts:
        per_day = defaultdict(Decimal)
        for t in a["transactions"]:
            per_day[berlin_day(t["bookingDate"])] += Decimal(str(t["amount"]))
        running = Decimal(str(a["balance"]))
        expected = {}
        d = TODAY
        while d >= date(2023, 4, 23):
            expected[d.isoformat()] = float(running.quantize(Decimal("0.01")))
            running -= per_day.get(d, Decimal(0))
            d -= timedelta(days=1)
        got = {e["date"]: e["balance"] for e in histories[a["accountId"]]["dailyBalances"]}
        assert got == expected
    # detection: the connected accounts as stored, plus counter-accounts that are not connected
    overview = get(env, f"/users/{uid}/account-detection")["accountsOverview"]
    views = overview["accountsView"] + overview["creditsView"]
    connected = {a["accountId"]: a for a in accounts}
    ibans = {a["iban"] for a in accounts if a["iban"]}
    for v in views:
        if v["additionalAnalysesInfo"]["isUserAdded"]:
            assert v["iban"] not in ibans
            partners = [t for t in txs.values() if t["paymentPartner"]["iban"] == v["iban"]]
            assert len(partners) >= 2
            assert v["additionalAnalysesInfo"]["analysisPeriod"]["since"][:10] == min(
                berlin_day(t["bookingDate"]) for t in partners).isoformat()
        else:
            a = connected[v["accountId"]]
            assert (v["balance"], v["iban"], v["type"]) == (a["balance"], a["iban"], a["type"])
            assert (v in overview["creditsView"]) == (a["type"] in ("KREDITDARLEHEN", "KREDIT_KONTO"))
    assert {v["accountId"] for v in views if not v["additionalAnalysesInfo"]["isUserAdded"]} == set(connected)
    # contracts: real transactions of the user, one partner each, the partner's creditor id from the bookings
    contracts = get(env, f"/users/{uid}/contracts")
    assert len(contracts) >= 4
    by_id = {t["transactionId"]: t for t in txs.values()}
    for c in contracts:
        items = [by_id[x["transactionId"]] for x in c["transactions"]]
        assert len({(t["paymentPartner"]["creditorId"], t["paymentPartner"]["name"]) for t in items}) == 1, c
        assert c["amount"] == items[-1]["amount"]
        assert c["amountConsistency"] == ("fix" if len({t["amount"] for t in items}) == 1 else "variabel")
        days = [berlin_day(t["bookingDate"]) for t in items]
        assert days == sorted(days)
        cid = items[-1]["paymentPartner"]["creditorId"]
        if cid:
            assert cid in c["contractPartner"]["creditorIds"] and c["contractPartner"]["id"], c["contractPartner"]
        assert date.fromisoformat(c["nextBookingDate"]) > days[-1]
    if kind == "person":
        assert {"TELECOMMUNICATION", "HEALTH_INSURANCE"} <= {c["category"] for c in contracts}
    else:
        assert {"TAX", "WORK"} <= {c["category"] for c in contracts}


def test_same_seed_same_results():
    def run():
        env = make_env(seed=9)
        uid = connected_user(env)
        return [env.c.get(f"/fino/api/users/{uid}{p}", headers=env.h).data
                for p in ("/account-detection", "/account-history", "/contracts")]
    assert run() == run()


# --- contract detection details ---------------------------------------------------------------------------------------
def t(tid, day: date, amount, partner="Muster Hausverwaltung GmbH", **kw) -> Tx:
    doc = {"transactionId": tid, "accountId": "giro", "bookingText": ""}
    return Tx(tid, "giro", day, Decimal(str(amount)), partner, kw.get("iban", "DE02120300000000202051"),
              kw.get("creditor", ""), kw.get("mref", ""), kw.get("purpose", ""), kw.get("gvc", 117), kw.get("mcc", ""),
              doc)


def account(txs):
    return [({"accountId": "giro", "iban": "DE64100200007791587578", "owner": "Torben Mais", "type": "GIRO"}, txs)]


def test_weekly_half_yearly_and_deletion_generations():
    weekly = [t(f"w{n}", date(2025, 1, 6) + timedelta(days=7 * n), -25, "Putzhilfe Anna K.") for n in range(15)]
    half = [t(f"h{n}", d, -240, "LMU München", gvc=105, creditor="DE64ZZZ00000047110", mref="SEM-1")
            for n, d in enumerate((date(2023, 10, 1), date(2024, 4, 2), date(2024, 10, 1), date(2025, 4, 1)))]
    found = detect_contracts("t", "u", account(weekly + half), TODAY, {}, {})
    by = {c["contractPartner"]["name"]: c for c in found}
    assert by["Putzhilfe Anna K."]["interval"] == "WEEKLY" and by["Putzhilfe Anna K."]["duration"] == 7
    assert by["Putzhilfe Anna K."]["attributes"] == ["privacy"]   # a private person
    assert by["Putzhilfe Anna K."]["nextBookingRange"] == ["2025-04-20", "2025-04-22"]   # weekly: -/+ 1 day
    lmu = by["Ludwig-Maximilians-Universität München"]
    assert (lmu["interval"], lmu["category"], lmu["nextBookingDate"]) == ("HALF_YEARLY", "EDUCATION", "2025-10-01")
    # a deletion mark holding all of a contract's bookings hides it; one more booking makes a new contract
    marks = {lmu["contractId"]: [x["transactionId"] for x in lmu["transactions"]]}
    assert "Ludwig-Maximilians-Universität München" not in {
        c["contractPartner"]["name"] for c in detect_contracts("t", "u", account(weekly + half), TODAY, {}, marks)}
    later = half + [t("h4", date(2025, 10, 1), -240, "LMU München", gvc=105, creditor="DE64ZZZ00000047110",
                      mref="SEM-1")]
    again = detect_contracts("t", "u", account(later), date(2025, 10, 2), {}, marks)
    new = next(c for c in again if c["contractPartner"]["name"].startswith("Ludwig"))
    assert new["contractId"] != lmu["contractId"] and len(new["transactions"]) == 5


def test_inactive_contracts_and_irregular_bookings():
    old = [t(f"o{n}", d, -9.99, "Spotify AB", gvc=106, mcc="5815") for n, d in enumerate(
        (date(2024, 1, 10), date(2024, 2, 10), date(2024, 3, 11), date(2024, 4, 10)))]
    irregular = [t(f"i{n}", date(2024, 1, 1) + timedelta(days=d), -30, "Kiosk am Eck") for n, d in
                 enumerate((0, 3, 19, 20, 47, 90))]
    found = detect_contracts("t", "u", account(old + irregular), TODAY, {}, {})
    assert [c["contractPartner"]["name"] for c in found] == ["Spotify AB"]
    assert found[0]["isActive"] is False and found[0]["category"] == "STREAMING"


# --- scale: 24 months, ~5,000 bookings --------------------------------------------------------------------------------
def big_upload() -> list[dict]:
    import random
    rng = random.Random(7)
    txs, n = [], 0
    start = date(2023, 4, 24)
    for day in range((TODAY - start).days + 1):
        d = start + timedelta(days=day)
        at = int(datetime(d.year, d.month, d.day, 12, tzinfo=BERLIN).timestamp())

        def add(amount, partner, gvc, **extra):
            nonlocal n
            n += 1
            txs.append({"transactionId": f"t{n}", "amount": amount, "bookingDate": at, "transactionCode": gvc,
                        "paymentPartner": partner, **extra})
        if d.day == 28:
            add(3400.0, {"name": "SAP SE"}, 153, purpose="Gehalt")
        if d.day == 1:
            add(-1100.0, {"name": "degewo AG", "iban": "DE02120300000000202051"}, 117, purpose="Miete")
        if d.day == 5:
            add(-39.99, {"name": "Vodafone GmbH", "creditorId": german.creditor_id("Vodafone GmbH")}, 105,
                mref="VF-1")
        for _ in range(rng.choice((5, 6, 7, 7, 8))):
            add(-round(rng.uniform(2, 120), 2), {"name": rng.choice(["REWE Markt GmbH", "EDEKA", "Lidl", "dm"])}, 106,
                merchantCategoryCode="5411")
    return txs


def test_a_user_with_24_months_and_5000_bookings_gets_every_result_fast():
    env = make_env(seed=13)
    uid = env.c.post("/fino/api/users", json={"type": "person", "automaticAnalysis": "suspended"},
                     headers=env.h).json["user"]["userID"]
    txs = big_upload()
    assert 4500 <= len(txs) <= 5000
    r = env.c.post(f"/fino/api/users/{uid}/banking/accounts", headers=env.h, json={"accounts": [
        {"accountId": "giro", "balance": 1234.56, "iban": "DE64100200007791587578", "type": "GIRO",
         "transactions": txs}]})
    assert r.status_code == 200, r.data[:300]
    scope = SimpleNamespace(sandbox=env.sb, tenant="sandbox-client")
    svc = env.sb.providers["fino"].service
    run = {"id": "x", "completed_at": T0}
    default_categoriser()   # the shared rule tables load once per process (about 1 s): not part of a run
    started = time.perf_counter()
    detection_result = svc._compute_detection(scope, uid, run, {})
    history = svc._compute_history(scope, uid, run, {})
    contracts = svc._compute_contracts(scope, uid, run, {DETECTION_KIND: detection_result})
    elapsed = time.perf_counter() - started
    print(f"\naccount-detection + account-history + contracts for {len(txs)} bookings: {elapsed:.2f} s")
    assert {c["contractPartner"]["name"] for c in contracts["contracts"]} == {"SAP SE", "degewo AG", "Vodafone GmbH"}
    assert history["histories"][0]["dailyBalances"][-1]["balance"] == 1234.56
    started = time.perf_counter()
    cid = env.c.post(f"/fino/api/users/{uid}/trigger-analysis", headers=env.h)
    assert cid.status_code in (200, 202), cid.data[:200]
    assert env.c.get(f"/fino/api/users/{uid}/contracts", headers=env.h).status_code == 200
    print(f"the whole analysis run (every registered kind) over HTTP in-process: {time.perf_counter() - started:.2f} s")


DETECTION_KIND = detection.DETECTION
