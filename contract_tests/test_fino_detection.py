"""finoOS account detection, account history, contracts and companies contract tests (fino.md sections 4-6, 10
"Account detection", "Account history", "Contracts", "Companies", 13), by catalogue id. In-process by default; over
HTTP with --base-url:

    sandbox check fino --base-url http://127.0.0.1:8080/fino/api

The test uploads a German Girokonto whose contracts it knows (monthly rent standing order, yearly KfZ-Steuer to the
Bundeskasse, a quarterly HUK-COBURG direct debit, a monthly Siemens salary with a raise, a Netflix card
subscription), noise that must not become a contract (weekly REWE card payments of changing amounts, a one-off
purchase) and monthly transfers to a Tagesgeld IBAN it never uploaded (a detected account). Every expected value is
computed here from those bookings and from the raw company fixture; the clock is frozen and moves only through the
control API.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from sandbox.providers.fino.detection import COMPANIES_FILE
from .checks import provider_error, response_schema_conformance, status_in
from .fino_client import FinoClient, fino_fixture
BERLIN = ZoneInfo("Europe/Berlin")
FORBIDDEN = {"type": "forbidden", "message": "Forbidden. No access to this resource"}
T0 = "2025-04-23T09:30:00Z"          # the frozen sandbox clock: Wednesday, 23 April 2025 (Berlin 11:30)
TODAY = date(2025, 4, 23)
GIRO_IBAN, SAVINGS_IBAN = "DE64100200007791587578", "DE89370400440532013000"
GIRO_BALANCE = Decimal("2004.41")
SO, DD, CARD, SAL, CT = 117, 105, 106, 153, 116   # German GVC (fino.md section 8)
COMPANIES = {c["name"]: c for c in yaml.safe_load(
    COMPANIES_FILE.read_text())["companies"]}
HYPO = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
pytestmark = pytest.mark.control


def at(d: date, hour: int = 12) -> int:
    """A booking instant on Berlin day ``d``, Unix seconds as finoOS sends them."""
    return int(datetime(d.year, d.month, d.day, hour, tzinfo=BERLIN).timestamp())


def months(first: date, count: int, day: int) -> list[date]:
    out, y, m = [], first.year, first.month
    for _ in range(count):
        out.append(date(y, m, day))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def creditor_id(national: str) -> str:
    """A SEPA creditor id DE..ZZZ<national> with its ISO 7064 mod 97-10 check digits (computed here)."""
    digits = "".join(str(int(ch, 36)) for ch in national + "DE00")
    return f"DE{98 - int(digits) % 97:02d}ZZZ{national}"


HUK_CREDITOR = creditor_id("00000471100")   # not in the fixture: the partner is found by its name


def tx(tid, amount, day, purpose, partner, gvc, **extra):
    return {"transactionId": tid, "amount": amount, "bookingDate": at(day), "purpose": purpose,
            "paymentPartner": partner, "transactionCode": gvc, **extra}


def known_bookings() -> tuple[list[dict], dict[str, dict]]:
    """(Girokonto transactions, expected contracts by partner name): the test's own truth."""
    giro, want = [], {}

    def contract(partner, category, interval, duration, consistency, ids, next_day, amount, mref=""):
        want[partner] = {"category": category, "interval": interval, "duration": duration,
                         "amountConsistency": consistency, "ids": ids, "nextBookingDate": next_day,
                         "amount": amount, "mref": mref}

    rent = [tx(f"rent-{d:%Y%m}", -850.0, d, f"Miete {d:%m/%Y} Whg. 3. OG links", {
        "name": "Vonovia SE", "iban": "DE02120300000000202051"}, SO, sepaPurposeCode="RENT",
        bookingText="DAUERAUFTRAG") for d in months(date(2024, 5, 1), 12, 1)]
    contract("Vonovia SE", "RENT", "MONTHLY", 30, "fix", rent, date(2025, 5, 1), -850.0)
    tax = [tx(f"kfz-{d.year}", -108.0, d, "KFZ-STEUER B-FM 4711 FIN 123456", {
        "name": "Bundeskasse Trier", "creditorId": "DE09ZZZ00000000001"}, DD, mref="KFZFK11111111111")
        for d in (date(2024, 1, 22), date(2025, 1, 20))]
    contract("Bundeskasse Trier", "CAR_TAX", "ANNUALLY", 365, "fix", tax, date(2026, 1, 20), -108.0,
             "KFZFK11111111111")
    huk = [tx(f"huk-{d:%Y%m}", -89.7, d, "Kfz-Versicherung Vertrag 4711-0815", {
        "name": "HUK-COBURG", "creditorId": HUK_CREDITOR}, DD, mref="HUK-4711-KFZ", sepaPurposeCode="INSU")
        for d in (date(2024, 4, 15), date(2024, 7, 15), date(2024, 10, 15), date(2025, 1, 15), date(2025, 4, 15))]
    contract("HUK-COBURG Haftpflicht-Unterstützungs-Kasse kraftfahrender Beamter Deutschlands a. G.", "INSURANCE",
             "QUARTERLY", 90, "fix", huk, date(2025, 7, 15), -89.7, "HUK-4711-KFZ")
    salary = [tx(f"sal-{d:%Y%m}", 3350.0 if d.year == 2025 else 3200.0, d, f"LOHN/GEHALT {d:%m/%Y}", {
        "name": "Siemens AG", "iban": "DE27100777770209299700"}, SAL, sepaPurposeCode="SALA",
        bookingText="LOHN/GEHALT") for d in months(date(2024, 4, 28), 12, 28)]
    contract("Siemens AG", "WORK", "MONTHLY", 30, "variabel", salary, date(2025, 4, 28), 3350.0)
    netflix = [tx(f"nflx-{d:%Y%m}", -13.99, d, "NETFLIX.COM 866-579-7172", {"name": "NETFLIX.COM"}, CARD,
                  merchantCategoryCode="4899", bookingText="KARTENZAHLUNG") for d in months(date(2024, 5, 14), 12, 14)]
    contract("Netflix International B.V.", "STREAMING", "MONTHLY", 30, "fix", netflix, date(2025, 5, 14), -13.99)
    # noise: weekly REWE card payments of changing amounts, a one-off purchase, monthly transfers to an own Tagesgeld
    first = date(2024, 5, 3)
    rewe = [tx(f"rewe-{n}", -round(18.35 + (n * 13) % 47 + n / 100, 2), first + timedelta(days=7 * n),
               "REWE SAGT DANKE 4711", {"name": "REWE Markt GmbH"}, CARD, merchantCategoryCode="5411")
            for n in range(50)]
    oneoff = [tx("mediamarkt", -349.0, date(2024, 11, 29), "MediaMarkt Berlin Alexa", {"name": "MediaMarkt"}, CARD,
                 merchantCategoryCode="5732")]
    saving = [tx(f"tg-{d:%Y%m}", -200.0, d, "Umbuchung auf Tagesgeld", {"name": "Torben Mais", "iban": SAVINGS_IBAN},
                 SO) for d in months(date(2024, 5, 2), 12, 2)]
    giro = rent + tax + huk + salary + netflix + rewe + oneoff + saving
    return giro, want


def accounts_body() -> dict:
    giro, _ = known_bookings()
    return {"accounts": [
        {"accountId": "giro-1", "accountNumber": "7791587578", "balance": float(GIRO_BALANCE), "bankCode": "10020000",
         "bankName": "Fino Bank", "bic": "FINOBANK01", "currency": "EUR", "iban": GIRO_IBAN, "name": "Girokonto",
         "owner": "Torben Mais", "type": "GIRO", "overdraft": {"amount": 1500, "available": True},
         "transactions": giro},
        {"accountId": "loan-1", "accountNumber": "900112233", "balance": -4800.0, "bankCode": "10020000",
         "bankName": "Fino Bank", "bic": "FINOBANK01", "currency": "EUR", "iban": "", "name": "Ratenkredit",
         "owner": "Torben Mais", "type": "KREDITDARLEHEN", "transactions": []}]}


@pytest.fixture
def fx(contract_options):
    yield from fino_fixture(contract_options, Fino, seed=29, at=T0)


class Fino(FinoClient):
    """The finoOS client plus this file's uploads, contracts and logo searches."""

    def uploaded_user(self, tenant=None, **body) -> str:
        uid = self.user(tenant, **body)
        self.ok("set_accounts", body=accounts_body(), tenant=tenant, user_id=uid)
        return uid

    def contracts(self, uid, tenant=None) -> list[dict]:
        return self.ok("list_contracts", tenant=tenant, user_id=uid).json

    def logos(self, queries, **query):
        return self.call("search_company_logos", body={"queries": queries}, query=query or None)


def money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def berlin_day(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, BERLIN).date()


# --- account history ----------------------------------------------------------------------------------------------
def test_account_history_rolls_back_exactly_from_the_current_balance(fx):
    uid = fx.uploaded_user()
    provider_error(fx.call("get_account_history", user_id=uid), 404)               # no completed run yet
    provider_error(fx.call("get_account_history_correlation", user_id=uid), 404)
    cid = fx.analyse(uid)
    assert fx.ok("get_account_history_correlation", user_id=uid).json["correlationID"] == cid
    histories = {h["account"]["accountId"]: h for h in fx.ok("get_account_history", user_id=uid).json["histories"]}
    assert set(histories) == {"giro-1", "loan-1"}
    # expected: balance at the end of day d = current balance - every booking after d (Berlin days), recomputed
    giro, _ = known_bookings()
    since = date(2023, 4, 23)   # two years back from the frozen day
    got = histories["giro-1"]["dailyBalances"]
    assert [e["date"] for e in got] == [(since + timedelta(days=n)).isoformat()
                                        for n in range((TODAY - since).days + 1)]
    for entry in got:
        d = date.fromisoformat(entry["date"])
        later = sum((Decimal(str(t["amount"])) for t in giro if berlin_day(t["bookingDate"]) > d), Decimal(0))
        assert entry["balance"] == money(GIRO_BALANCE - later), entry
    assert got[-1]["balance"] == float(GIRO_BALANCE)
    assert histories["giro-1"]["startingBalance"] == got[0]
    # before the first booking nothing moves: the opening balance is the current one minus everything booked
    assert got[0]["balance"] == money(GIRO_BALANCE - sum(Decimal(str(t["amount"])) for t in giro))
    loan = histories["loan-1"]["dailyBalances"]
    assert {e["balance"] for e in loan} == {-4800.0} and len(loan) == len(got)


# --- account detection --------------------------------------------------------------------------------------------
def _analysis(bookings: list[tuple[date, Decimal]], since: date, until: date) -> dict:
    """Monthly means and medians of net, earnings and spendings over every month of [since, until] (recomputed)."""
    keys, cursor = [], since.replace(day=1)
    while cursor <= until:
        keys.append((cursor.year, cursor.month))
        cursor = (cursor.replace(year=cursor.year + 1, month=1) if cursor.month == 12
                  else cursor.replace(month=cursor.month + 1))
    ins, outs = defaultdict(Decimal), defaultdict(Decimal)
    for d, amount in bookings:
        (ins if amount > 0 else outs)[(d.year, d.month)] += amount
    net = [ins[k] + outs[k] for k in keys]
    e, s = [ins[k] for k in keys], [outs[k] for k in keys]
    mean = lambda xs: sum(xs, Decimal(0)) / len(xs)   # noqa: E731
    return {"average": money(mean(net)), "averageEarning": money(mean(e)), "averageSpending": money(mean(s)),
            "median": money(statistics.median(net)), "medianEarning": money(statistics.median(e)),
            "medianSpending": money(statistics.median(s))}


def test_accounts_overview_adds_the_savings_account_found_through_transfers(fx):
    uid = fx.uploaded_user()
    provider_error(fx.call("get_accounts_overview", user_id=uid), 404)
    provider_error(fx.call("get_account_detection_correlation", user_id=uid), 404)
    cid = fx.analyse(uid)
    assert fx.ok("get_account_detection_correlation", user_id=uid).json["correlationID"] == cid
    body = fx.ok("get_accounts_overview", user_id=uid).json["accountsOverview"]
    assert fx.ok("get_accounts_overview", user_id=uid, alias=0).json["accountsOverview"] == body
    views = {a["iban"] or a["accountId"]: a for a in body["accountsView"]}
    assert set(views) == {GIRO_IBAN, SAVINGS_IBAN}
    assert [c["accountId"] for c in body["creditsView"]] == ["loan-1"]
    giro, savings = views[GIRO_IBAN], views[SAVINGS_IBAN]
    # the connected Girokonto, its figures recomputed from the uploaded bookings
    bookings = [(berlin_day(t["bookingDate"]), Decimal(str(t["amount"]))) for t in known_bookings()[0]]
    first = min(d for d, _ in bookings)
    assert giro["accountId"] == "giro-1" and giro["balance"] == float(GIRO_BALANCE) and giro["type"] == "GIRO"
    assert giro["overDraft"] == "1500.00" and giro["overDraftAvailable"] is True
    info = giro["additionalAnalysesInfo"]
    assert info["isUserAdded"] is False
    assert info["analysisPeriod"] == {"since": "2024-01-22T00:00:00+01:00", "until": "2025-04-23T23:59:59+02:00"}
    assert first == date(2024, 1, 22)
    assert info["analysis"] == _analysis(bookings, first, TODAY)
    # the Tagesgeld nobody uploaded: found through the monthly "Umbuchung auf Tagesgeld" (isUserAdded)
    moved = [(berlin_day(t["bookingDate"]), -Decimal(str(t["amount"]))) for t in known_bookings()[0]
             if t["paymentPartner"].get("iban") == SAVINGS_IBAN]
    assert len(moved) == 12
    assert savings["additionalAnalysesInfo"]["isUserAdded"] is True
    assert savings["type"] == "TAGESGELD" and savings["bankCode"] == SAVINGS_IBAN[4:12]
    assert savings["accountNumber"] == SAVINGS_IBAN[12:].lstrip("0") and savings["owner"] == "Torben Mais"
    assert savings["balance"] == money(sum((a for _, a in moved), Decimal(0))) == 2400.0
    assert savings["additionalAnalysesInfo"]["analysis"] == _analysis(moved, min(d for d, _ in moved), TODAY)
    loan = body["creditsView"][0]
    assert loan["type"] == "KREDITDARLEHEN" and loan["balance"] == -4800.0 and loan["name"] == "Ratenkredit"


# --- contracts ------------------------------------------------------------------------------------------------------
def _check_contracts(got: list[dict], want: dict[str, dict]) -> None:
    by_partner = {c["contractPartner"]["name"]: c for c in got}
    assert set(by_partner) == set(want)
    for name, w in want.items():
        c = by_partner[name]
        company = COMPANIES[name]
        assert c["category"] == w["category"] == company["category"], name
        assert (c["interval"], c["duration"], c["amountConsistency"]) == (w["interval"], w["duration"],
                                                                          w["amountConsistency"]), name
        assert [t["transactionId"] for t in c["transactions"]] == [t["transactionId"] for t in w["ids"]], name
        assert c["amount"] == w["amount"] and c["mref"] == w["mref"], name
        assert c["nextBookingDate"] == w["nextBookingDate"].isoformat(), name
        assert c["nextBookingRange"] == [(w["nextBookingDate"] - timedelta(days=5)).isoformat(),
                                         (w["nextBookingDate"] + timedelta(days=5)).isoformat()], name
        assert c["isActive"] is True
        partner = c["contractPartner"]
        # the company's creditor ids plus the one its debits here carry (HUK-COBURG: found by its name)
        own = w["ids"][-1]["paymentPartner"].get("creditorId")
        assert partner["id"] == str(company["id"]), name
        assert partner["creditorIds"] == company["creditorIDs"] + ([own] if own and own not in company[
            "creditorIDs"] else []), name
        assert partner["address"]["city"] == company["address"]["city"]
        assert partner["address"]["postCode"] == company["address"]["postcode"]
        assert partner["contact"]["email"] == company["contact"]["email"]


def test_contracts_are_the_recurring_bookings_with_their_partners(fx):
    uid = fx.uploaded_user()
    provider_error(fx.call("list_contracts", user_id=uid), 404)
    provider_error(fx.call("get_contracts_correlation", user_id=uid), 404)
    cid = fx.analyse(uid)
    assert fx.ok("get_contracts_correlation", user_id=uid).json["correlationID"] == cid
    got = fx.contracts(uid)
    _, want = known_bookings()
    _check_contracts(got, want)   # no REWE (changing card amounts), no MediaMarkt, no Tagesgeld transfers
    tax = next(c for c in got if c["category"] == "CAR_TAX")
    assert tax["contractPartner"]["creditorIds"] == ["DE09ZZZ00000000001"]
    assert tax["contractPartner"]["tags"] == ["KfZ-Steuer"]
    assert tax["contractPartner"]["contact"]["fax"] == "+49 651 14481001"
    assert len({c["contractId"] for c in got}) == len(got)
    assert fx.contracts(uid) == got   # stable


def test_contracts_are_deleted_one_by_one_or_all_and_new_bookings_bring_them_back(fx):
    uid = fx.uploaded_user()
    fx.analyse(uid)
    first = fx.contracts(uid)
    netflix = next(c for c in first if c["category"] == "STREAMING")
    status_in(fx.call("delete_contract", user_id=uid, contract_id=netflix["contractId"]), 204)
    assert [c["contractId"] for c in fx.contracts(uid)] == [c["contractId"] for c in first if c is not netflix]
    provider_error(fx.call("delete_contract", user_id=uid, contract_id=netflix["contractId"]), 404)   # gone
    provider_error(fx.call("delete_contract", user_id=uid, contract_id="00000000-0000-4000-8000-000000000000"), 404)
    fx.analyse(uid)   # a new run over the same bookings: the deleted contract stays deleted
    assert netflix["contractId"] not in {c["contractId"] for c in fx.contracts(uid)}
    assert len(fx.contracts(uid)) == len(first) - 1
    status_in(fx.call("delete_contracts", user_id=uid), 204)
    assert fx.contracts(uid) == []
    fx.analyse(uid)
    assert fx.contracts(uid) == []
    # nine days later the May rent arrives: the rent contract comes back with a new id; the others stay deleted
    fx.control.clock("advance", seconds=9 * 86400)
    fx._tokens.clear()   # tokens live 300 s
    status_in(fx.call("add_transactions", body={"transactions": [tx("rent-202505", -850.0, date(2025, 5, 1),
              "Miete 05/2025 Whg. 3. OG links", {"name": "Vonovia SE", "iban": "DE02120300000000202051"}, SO)]},
              user_id=uid, account_id="giro-1"), 200)
    fx.analyse(uid)
    back = fx.contracts(uid)
    old_rent = next(c for c in first if c["category"] == "RENT")
    assert [c["category"] for c in back] == ["RENT"]
    assert back[0]["contractId"] != old_rent["contractId"]
    assert [t["transactionId"] for t in back[0]["transactions"]] == [
        *(t["transactionId"] for t in old_rent["transactions"]), "rent-202505"]
    assert back[0]["nextBookingDate"] == "2025-06-01"


def test_results_stay_readable_while_a_new_run_runs(fx):
    uid = fx.uploaded_user()
    fx.analyse(uid)
    before = fx.contracts(uid)
    fx.ok("trigger_analysis", user_id=uid)
    for name in ("get_contracts_correlation", "get_account_detection_correlation", "get_account_history_correlation"):
        provider_error(fx.call(name, user_id=uid), 404)   # section 6: 404 while the analysis runs
    assert fx.contracts(uid) == before                    # the previous run's results meanwhile (inferred)
    status_in(fx.call("get_accounts_overview", user_id=uid), 200)
    fx.control.clock("advance", seconds=2)
    status_in(fx.call("get_contracts_correlation", user_id=uid), 200)


def test_user_scopes_client_scopes_and_tenants(fx):
    uid = fx.uploaded_user(userScopes=["banking"])
    fx.analyse(uid)
    for name in ("get_accounts_overview", "get_account_detection_correlation", "list_contracts",
                 "get_contracts_correlation", "delete_contracts"):
        provider_error(fx.call(name, user_id=uid), 403, FORBIDDEN)   # outside the user's scopes (section 4)
    provider_error(fx.call("delete_contract", user_id=uid, contract_id="x"), 403, FORBIDDEN)
    status_in(fx.call("get_account_history", user_id=uid), 200)   # balances come with the banking scopes
    status_in(fx.call("get_account_history_correlation", user_id=uid), 200)
    # another TenantID of the same client: the user does not exist there
    for name in ("get_accounts_overview", "get_account_history", "list_contracts", "delete_contracts"):
        provider_error(fx.call(name, user_id=uid, tenant="branch-2"), 404)
    provider_error(fx.call("list_contracts", user_id="no-such-user"), 404)
    # a client without the scopes (section 4): 403 before anything else
    small = fx.control.create_client(client_id="fino-c2-small", client_secret="small-secret-0123456789",
                                     scopes={"fino": ["banking", "banking-upload"]})
    client = (small["client_id"], "small-secret-0123456789")
    for name in ("get_accounts_overview", "get_account_history", "list_contracts", "get_contracts_correlation"):
        provider_error(fx.call(name, user_id=uid, client=client), 403, FORBIDDEN)
    provider_error(fx.call("search_companies", body={"queries": [{"keyword": "E.ON"}]}, client=client), 403)
    provider_error(fx.call("search_company_logos", body={"queries": [{"name": "E.ON"}]}, client=client), 403,
                   FORBIDDEN)


# --- companies ------------------------------------------------------------------------------------------------------
def test_search_companies_scores_weighted_properties_keyed_by_keyword(fx):
    body = {"queries": [{"keyword": "E.ON", "limit": 1, "properties": [{"name": "name", "weight": 3}]},
                        {"keyword": "Versicherung", "limit": 4,
                         "properties": [{"name": "name", "weight": 2}, {"name": "tags", "weight": 1}]},
                        {"keyword": "DE09ZZZ00000000001", "properties": [{"name": "creditorIDs", "weight": 1}]}]}
    r = fx.ok("search_companies", body=body, query={"logo-size": "64"})
    results = r.json["results"]
    assert list(results) == ["E.ON", "Versicherung", "DE09ZZZ00000000001"]
    eon = results["E.ON"]
    assert len(eon) == 1 and eon[0]["score"] == 3   # an exact name match scores its weight
    company = eon[0]["company"]
    raw = COMPANIES["E.ON Energie Deutschland GmbH"]
    assert company["name"] == raw["name"] and company["id"] == raw["id"] and "DE41EON00000129793" in company[
        "creditorIDs"]
    assert company["addresses"][0]["postcode"] == raw["address"]["postcode"]
    assert company["logos"][0]["type"] == "svg" and company["logos"][0]["url"].endswith(".svg")
    insurers = results["Versicherung"]
    assert 1 <= len(insurers) <= 4
    assert [x["score"] for x in insurers] == sorted((x["score"] for x in insurers), reverse=True)
    assert all("Versicherung" in x["company"]["tags"] for x in insurers)
    assert [x["company"]["name"] for x in results["DE09ZZZ00000000001"]] == ["Bundeskasse Trier"]
    assert fx.ok("search_companies", body={"queries": [{"keyword": "Zzyzxqwv"}]}).json == {"results": {"Zzyzxqwv": []}}


@pytest.mark.parametrize("body", [
    {"queries": []}, {"queries": [{"keyword": ""}]}, {"queries": [{"keyword": "x", "limit": 0}]},
    {"queries": [{"keyword": "x", "properties": [{"name": "colour", "weight": 1}]}]},
    {"queries": [{"keyword": "E.ON"}, {"keyword": "E.ON"}]}, {"queries": "E.ON"}, {},
])
def test_search_companies_rejects_malformed_queries(fx, body):
    provider_error(fx.call("search_companies", body=body), 400)


def test_logo_search_matches_by_every_field_and_answers_per_query_id(fx):
    queries = [{"queryID": "1", "name": "E.ON"}, {"queryID": "2", "creditorID": "DE09ZZZ00000000001"},
               {"queryID": "3", "iban": "DE89 3704 0044 0532 0130 00"}, {"queryID": "4", "bic": "INGDDEFFXXX"},
               {"queryID": "5", "domain": "https://www.netflix.com/de/"}, {"queryID": "6", "bankCode": "10020000"},
               {"queryID": "10", "name": "Keine Firma dieses Namens"}]
    r = fx.logos(queries)
    status_in(r, 200)
    response_schema_conformance(r)
    by_id = {x["queryID"]: x for x in r.json["results"]}
    assert set(by_id) == {q["queryID"] for q in queries}
    expected = {"1": "E.ON Energie Deutschland GmbH", "2": "Bundeskasse Trier", "3": "Commerzbank AG",
                "4": "ING-DiBa AG", "5": "Netflix International B.V.", "6": "fino digital GmbH"}
    for qid, name in expected.items():
        raw = COMPANIES[name]
        assert by_id[qid]["status"] == "ok" and by_id[qid]["company"] == raw["brand"], qid
        assert by_id[qid]["companyID"] == raw["logoID"] and by_id[qid]["logo"].endswith(raw["logo"])
    assert by_id["6"]["company"] == "fino"   # the reference example's answer
    assert by_id["10"] == {"company": "", "companyID": "", "logo": "", "queryID": "10", "status": "notFound"}
    # the logo is served: an SVG
    logo = by_id["1"]["logo"]
    got = fx.t.get("/" + logo.split("://", 1)[1].split("/", 1)[1])
    assert got.status == 200 and got.headers.get("Content-Type", "").startswith("image/svg+xml")
    assert got.content.lstrip().startswith(b"<svg")


@pytest.mark.parametrize("name,fuzziness,exact,status", [
    ("Vodafone", None, "false", "ok"), ("VODAFONE", None, "true", "ok"), ("Vodafon", None, "true", "notFound"),
    ("Vodafon", "1", None, "ok"),        # 1 edit
    ("Vodaf0n", "1", None, "notFound"),  # 2 edits > 1
    ("Vodaf0n", "2", None, "ok"),        # 2 edits
    ("Vodaf0n", "AUTO", None, "ok"),     # AUTO: 7 characters -> 2 edits
    ("Vod4f0n", "2", None, "notFound"),  # 3 edits
    ("degew", "AUTO", None, "ok"),       # AUTO: 5 characters -> 1 edit ("degewo")
    ("dagew", "AUTO", None, "notFound"), # 2 edits > 1
    ("dagawo", "AUTO", None, "ok"),      # AUTO: 6 characters -> 2 edits
    ("Ergo", None, None, "ok"), ("Erg0", "AUTO", None, "ok"),      # AUTO: 4 characters -> 1 edit
    ("Er90", "AUTO", None, "notFound"),  # 2 edits > 1
    ("O2", None, None, "ok"), ("O3", "AUTO", None, "notFound"),    # AUTO: 2 characters -> exact only
    ("O3", "1", None, "ok"),
])
def test_logo_fuzziness_boundaries(fx, name, fuzziness, exact, status):
    query = {k: v for k, v in (("fuzziness", fuzziness), ("exactMatch", exact)) if v is not None}
    r = fx.logos([{"name": name, "queryID": "q"}], **query)
    status_in(r, 200)
    assert r.json["results"][0]["status"] == status, r.json


def test_logo_search_takes_200_queries_not_201(fx):
    queries = [{"name": "E.ON", "queryID": str(n)} for n in range(200)]
    r = fx.logos(queries)
    status_in(r, 200)
    assert sorted(int(x["queryID"]) for x in r.json["results"]) == list(range(200))
    provider_error(fx.logos([*queries, {"name": "E.ON", "queryID": "200"}]), 400)


@pytest.mark.parametrize("queries,query", [
    ([{"queryID": "1"}], None), ([{"name": "", "queryID": "1"}], None), ([], None), ("E.ON", None),
    ([{"name": "E.ON"}], {"fuzziness": "3"}), ([{"name": "E.ON"}], {"exactMatch": "yes"}),
    ([{"name": "E.ON"}], {"logo-size": "-1"}), ([{"name": "E.ON"}], {"logo-size": "wide"}),
    ([{"name": 5}], None), ([{"name": "E.ON", "colour": "red"}], None),
])
def test_malformed_logo_queries_get_400(fx, queries, query):
    r = fx.logos(queries, **(query or {}))
    provider_error(r, 400)
    assert r.json["type"] == "invalidInput"


@HYPO
@given(st.lists(st.fixed_dictionaries({}, optional={
    "name": st.text(max_size=40), "iban": st.text(max_size=30), "bic": st.text(max_size=11),
    "creditorID": st.text(max_size=35), "domain": st.text(max_size=40), "bankCode": st.text(max_size=12),
    "queryID": st.text(max_size=8)}), min_size=1, max_size=5),
    st.sampled_from([None, "AUTO", "0", "1", "2"]))
def test_fuzz_logo_queries_answer_each_query_or_400(fx, queries, fuzziness):
    r = fx.logos(queries, **({"fuzziness": fuzziness} if fuzziness else {}))
    assert r.status in (200, 400), r.status
    response_schema_conformance(r)
    if r.status == 200:
        assert sorted(x["queryID"] for x in r.json["results"]) == sorted(q.get("queryID", "") for q in queries)
