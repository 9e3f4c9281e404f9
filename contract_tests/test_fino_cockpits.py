"""finoOS cockpits, recommendations, person and company analytics and the cockpit page (fino.md sections 6, 10, 11,
12), by catalogue id. In-process by default; over HTTP with --base-url (``sandbox check fino``).

The client uploads a German household's and a German company's bookings (built below, each booking labelled with
what it is) and every expected number is computed here from that upload alone: income and spending parts as
monthly averages over the 12-month window (cockpit_blocks.py docstring), their transaction ids, household
categories, daily balances rolled back from the uploaded balance, customer tops, foreign sales. Time moves only
through the control API (clock frozen at T0; analysis runs instant).
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import pytest

from sandbox.core.store import MemoryStore
from sandbox.spec import operations

from .checks import not_a_server_error, provider_error, response_schema_conformance, status_in
from .partial_app import fino_app
from .plugin import make_transport
from .transport import Receiver

OP = {name: op["id"] for name, op in operations("fino").items()}
T0 = "2024-06-25T10:00:00Z"   # the sandbox clock: five days after the newest uploaded booking
# the 12 complete months before the run's month (June 2024 is still running on the clock)
WINDOW = [f"2023-{m:02d}" for m in range(6, 13)] + [f"2024-{m:02d}" for m in range(1, 6)]
pytestmark = pytest.mark.control


# =====================================================================================================================
# the upload: bookings labelled with what they are
# =====================================================================================================================
BERLIN = ZoneInfo("Europe/Berlin")
END = date(2024, 6, 20)   # the newest booking day; the clock is at T0, so the window is 2023-06 .. 2024-05


def epoch(d: date) -> int:
    return int(datetime.combine(d, time(12), BERLIN).timestamp())


def month_days(months: int, day: int) -> list[date]:
    """The ``day`` of each of the last ``months`` months up to END's month (oldest first)."""
    out = []
    y, m = END.year, END.month
    for _ in range(months):
        out.append(date(y, m, min(day, 28)))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return [d for d in reversed(out) if d <= END]


GIRO_IBAN, SAVINGS_IBAN = "DE89370400440532013000", "DE12500105170648489890"
COMPANY_IBAN = "DE02120300000000202051"


def _tx(tid, amount, day, text="", purpose="", name="", iban="", code="", gvc=0, mcc=None, creditor=""):
    t = {"transactionId": tid, "amount": amount, "bookingDate": epoch(day), "bookingText": text, "purpose": purpose,
         "paymentPartner": {"name": name, "iban": iban, "creditorId": creditor}, "sepaPurposeCode": code,
         "transactionCode": gvc}
    if mcc:
        t["merchantCategoryCode"] = mcc
    return t


def person_upload(months: int = 14, per_month_extra: int = 0) -> tuple[list[dict], dict[str, str]]:
    """A salaried renter with two children: salary, Kindergeld, Unterhalt received, a sub-let, rent, insurance,
    a loan, a phone contract, an ETF savings plan, card spending on the Girokonto and a connected credit card,
    transfers to the own Tagesgeld, one refund. ``per_month_extra`` adds that many grocery card payments a month
    (the scale test: ~5,000 bookings over 24 months)."""
    giro, card, savings = [], [], []
    labels = {}

    def add(target, kind, t):
        target.append(t)
        labels[t["transactionId"]] = kind

    for n, d in enumerate(month_days(months, 1)):
        k = f"{d:%Y%m}"
        add(giro, "salary", _tx(f"sal-{k}", 3150.0 + (n % 3) * 10, d.replace(day=27) if d.replace(day=27) <= END
                                 else d, "LOHN/GEHALT", f"Gehalt {d:%m/%Y}", "Muster Maschinenbau GmbH",
                                 "DE27100777770209299700", "SALA", 153))
        add(giro, "child-benefit", _tx(f"kg-{k}", 500.0, d.replace(day=5), "GUTSCHRIFT",
                                       "Kindergeld KG-Nr 123FK456789", "Bundesagentur fuer Arbeit - Familienkasse",
                                       "DE50760000000076001601", "BENE", 166))
        add(giro, "alimony", _tx(f"uh-{k}", 300.0, d.replace(day=6), "GUTSCHRIFT", "Unterhalt Lena und Tim",
                                 "Jan Beispiel", "DE75512108001245126199", "", 166))
        add(giro, "rental", _tx(f"mi-{k}", 450.0, d.replace(day=3), "GUTSCHRIFT", "Miete Zimmer Untermiete",
                                "Sabine Koch", "DE91100000000123456789", "", 166))
        add(giro, "rent", _tx(f"rent-{k}", -1150.0, d.replace(day=2), "DAUERAUFTRAG", "Miete Wohnung 3 OG links",
                              "Wohnbau Nord GmbH", "DE44500105175407324931", "RENT", 117))
        add(giro, "insurance", _tx(f"ins-{k}", -54.9, d.replace(day=1), "SEPA-BASISLASTSCHRIFT",
                                   "Haftpflicht 4711-0815", "HUK-COBURG Versicherung", "DE11700500000000001234",
                                   "INSU", 105, creditor="DE09HUK00000000123"))
        add(giro, "credit", _tx(f"loan-{k}", -210.0, d.replace(day=15), "SEPA-BASISLASTSCHRIFT",
                                "Ratenkredit 998877 Rate", "Beispielbank AG", "DE22100100500000011111", "LOAR", 105,
                                creditor="DE77ZZZ00000000555"))
        add(giro, "contract", _tx(f"tel-{k}", -39.99, d.replace(day=10), "SEPA-BASISLASTSCHRIFT",
                                  "Mobilfunk Rechnung", "Telekom Deutschland GmbH", "DE26300700100300000000", "PHON",
                                  105, creditor="DE41TEL00000000001"))
        add(giro, "security-saving-plan", _tx(f"etf-{k}", -100.0, d.replace(day=16), "SEPA-BASISLASTSCHRIFT",
                                              "Sparplan MSCI World", "Trade Republic Bank GmbH",
                                              "DE35100123450000000001", "SECU", 105))
        add(giro, "groceries", _tx(f"rewe-{k}", -87.45 - n, d.replace(day=8), "KARTENZAHLUNG", "REWE Markt",
                                   "REWE Markt GmbH", "", "", 106, "5411"))
        add(giro, "mobility", _tx(f"fuel-{k}", -62.1, d.replace(day=12), "KARTENZAHLUNG", "Aral Station 1234",
                                  "Aral AG", "", "", 106, "5541"))
        add(giro, "cash-withdrawal", _tx(f"atm-{k}", -200.0, d.replace(day=20) if d.replace(day=20) <= END else d,
                                         "BARGELDAUSZAHLUNG", "GA 12345 Sparkasse", "Sparkasse", "", "", 83, "6011"))
        add(giro, "internal-transfer", _tx(f"save-{k}", -250.0, d.replace(day=18) if d.replace(day=18) <= END else d,
                                           "DAUERAUFTRAG", "Umbuchung auf Tagesgeld", "Maria Muster", SAVINGS_IBAN,
                                           "", 117))
        add(savings, "internal-transfer", _tx(f"save-in-{k}", 250.0, d.replace(day=18) if d.replace(day=18) <= END
                                              else d, "DAUERAUFTRAGSGUTSCHRIFT", "Umbuchung vom Girokonto",
                                              "Maria Muster", GIRO_IBAN, "", 152))
        add(card, "recreational", _tx(f"card-rest-{k}", -48.3, d.replace(day=9), "KARTENZAHLUNG",
                                      "Restaurant Zur Linde", "Zur Linde", "", "", 106, "5812"))
        add(card, "clothing", _tx(f"card-cloth-{k}", -79.95, d.replace(day=11), "KARTENZAHLUNG", "ZALANDO SE",
                                  "Zalando SE", "", "", 106, "5651"))
        add(giro, "internal-transfer", _tx(f"ccset-{k}", -128.25, d.replace(day=14), "SEPA-BASISLASTSCHRIFT",
                                           "Kreditkartenabrechnung VISA", "Beispielbank AG", "", "CCRD", 105))
        for x in range(per_month_extra):
            add(giro, "groceries", _tx(f"edeka-{k}-{x}", -(12.0 + x % 50), d.replace(day=1 + x % 27),
                                       "KARTENZAHLUNG", "EDEKA Center", "EDEKA", "", "", 106, "5411"))
        if n % 6 == 2:
            add(giro, "vacation", _tx(f"trip-{k}", -640.0, d.replace(day=22) if d.replace(day=22) <= END else d,
                                      "KARTENZAHLUNG", "Lufthansa Ticket", "Deutsche Lufthansa AG", "", "", 106,
                                      "4511"))
    add(giro, "non-recurring", _tx("refund-1", 119.0, date(2024, 5, 19), "GUTSCHRIFT", "Erstattung Bestellung 4711",
                                   "Otto GmbH & Co KG", "DE55200400600200000001", "", 166))
    accounts = [
        {"accountId": "giro-1", "accountNumber": "532013000", "balance": 40805.55, "bankCode": "37040044",
         "bankName": "Commerzbank", "bic": "COBADEFFXXX", "currency": "EUR", "iban": GIRO_IBAN, "name": "Girokonto",
         "owner": "Maria Muster", "type": "GIRO", "overdraft": {"amount": 1500, "available": True},
         "transactions": giro},
        {"accountId": "tg-1", "accountNumber": "648489890", "balance": 6400.0, "bankCode": "50010517",
         "bankName": "ING", "bic": "INGDDEFFXXX", "currency": "EUR", "iban": SAVINGS_IBAN, "name": "Tagesgeld",
         "owner": "Maria Muster", "type": "TAGESGELD", "transactions": savings},
        {"accountId": "cc-1", "accountNumber": "4111111111111111", "balance": -128.25, "bankCode": "37040044",
         "bankName": "Commerzbank", "bic": "COBADEFFXXX", "currency": "EUR", "iban": "", "name": "Visa Classic",
         "owner": "Maria Muster", "type": "KREDIT_KARTE", "creditLine": 2000, "transactions": card},
        {"accountId": "depot-1", "accountNumber": "7001234", "balance": 4750.0, "bankCode": "10012345",
         "bankName": "Trade Republic", "bic": "TRBKDEBBXXX", "currency": "EUR", "iban": "", "name": "Depot",
         "owner": "Maria Muster", "type": "DEPOT", "transactions": [],
         "securities": [{"isin": "IE00B4L5Y983", "name": "iShares Core MSCI World UCITS ETF", "quantity": 50,
                         "price": 95.0, "amount": 4750.0, "currency": "EUR", "purchasePrice": 80.0,
                         "purchasePriceCurrency": "EUR", "wkn": "A0RPWH"}]},
    ]
    return accounts, labels


def company_upload(months: int = 14) -> tuple[list[dict], dict[str, str]]:
    """A GmbH: customer payments (one French customer), supplier invoices (one Austrian supplier), payroll for
    three employees, social security, an insurance, loan instalments, card-terminal payouts, a returned direct
    debit, and one overdrawn stretch; a Kontokorrentkredit account."""
    giro = []
    labels = {}

    def add(kind, t):
        giro.append(t)
        labels[t["transactionId"]] = kind

    customers = [("Müller Maschinenbau GmbH", "DE60100500000190123456", 9520.0),
                 ("Schneider Logistik KG", "DE07100100100666666666", 4165.0),
                 ("Dupont Industrie SA", "FR7630006000011234567890189", 3570.0)]
    for n, d in enumerate(month_days(months, 1)):
        k = f"{d:%Y%m}"
        for i, (name, iban, amount) in enumerate(customers):
            add("customer", _tx(f"rev-{k}-{i}", amount + n * 10, d.replace(day=4 + i), "GUTSCHRIFT",
                                f"RE-{k}-{i} {name}", name, iban, "SUPP", 166))
        add("supplier", _tx(f"sup-{k}-0", -2380.0, d.replace(day=9), "SEPA-UEBERWEISUNG",
                            "Rechnung 88123 Würth", "Würth Industrie Service GmbH", "DE81600501010002223334", "SUPP",
                            116))
        add("supplier", _tx(f"sup-{k}-1", -1190.0, d.replace(day=13), "SEPA-UEBERWEISUNG", "Rechnung 2024 Stahl",
                            "Voestalpine Stahl GmbH", "AT611904300234573201", "SUPP", 116))
        for e, (who, iban) in enumerate((("Anna Schmidt", "DE02100100100006820101"),
                                          ("Lukas Weber", "DE02300209000106531065"),
                                          ("Emma Wagner", "DE12500105170648489891"))):
            add("payroll", _tx(f"pay-{k}-{e}", -2450.0, d.replace(day=27) if d.replace(day=27) <= END else d,
                               "LOHN/GEHALT", f"LOHN/GEHALT {d:%m/%Y} {who}", who, iban, "SALA", 116))
        add("social", _tx(f"sv-{k}", -2940.0, d.replace(day=26) if d.replace(day=26) <= END else d,
                          "SEPA-BASISLASTSCHRIFT", f"Beitragsnachweis {d:%m/%Y}", "Techniker Krankenkasse",
                          "DE13200400000000000001", "SSBE", 105))
        add("insurance", _tx(f"ins-{k}", -312.0, d.replace(day=2), "SEPA-BASISLASTSCHRIFT",
                             "Betriebshaftpflicht 55-123", "Allianz Versicherungs-AG", "DE91700800000000000002",
                             "INSU", 105, creditor="DE54ALL00000000001"))
        add("credit", _tx(f"loan-{k}", -1800.0, d.replace(day=15), "SEPA-BASISLASTSCHRIFT",
                          "Rate Investitionsdarlehen 4711", "Commerzbank AG", "DE33100400000000000003", "LOAR", 105))
        add("terminal", _tx(f"sumup-{k}", 640.0 + n, d.replace(day=7), "GUTSCHRIFT", "SumUp Auszahlung",
                            "SumUp Payments Limited", "DE66100100100000000004", "", 166))
    add("returned", _tx("rl-1", 312.0, date(2024, 5, 3), "RUECKLASTSCHRIFT", "Rücklastschrift Allianz",
                        "Allianz Versicherungs-AG", "DE91700800000000000002", "", 109))
    accounts = [
        {"accountId": "biz-1", "accountNumber": "202051", "balance": -1250.0, "bankCode": "12030000",
         "bankName": "Deutsche Kreditbank", "bic": "BYLADEM1001", "currency": "EUR", "iban": COMPANY_IBAN,
         "name": "Geschäftskonto", "owner": "Muster Metallbau GmbH", "type": "GIRO", "creditLine": 10000,
         "overdraft": {"amount": 10000, "available": True}, "transactions": giro},
        {"accountId": "kk-1", "accountNumber": "9900123", "balance": -25000.0, "bankCode": "12030000",
         "bankName": "Deutsche Kreditbank", "bic": "BYLADEM1001", "currency": "EUR", "iban": "DE59120300000009900123",
         "name": "Kontokorrentkredit", "owner": "Muster Metallbau GmbH", "type": "KREDIT_KONTO", "transactions": []},
    ]
    return accounts, labels


# =====================================================================================================================
# the client
# =====================================================================================================================
@pytest.fixture
def fx(contract_options):
    transport, control = make_transport(contract_options, "fino", lambda: fino_app({"SEED": 47}, store=MemoryStore()))
    control.reset()
    control.clock("freeze", at=T0)
    control.policy(mode="instant", kind="fino.analysis")
    yield Fino(transport, control, contract_options)
    control.clear_policy(kind="fino.analysis")
    control.clock("reset")


class Fino:
    def __init__(self, transport, control, opts):
        self.t, self.control, self.opts = transport, control, opts
        self._tokens: dict = {}

    def token(self, client=None) -> str:
        client = client or (self.opts["client_id"], self.opts["client_secret"])
        if client not in self._tokens:
            r = self.t.call(OP["authenticate"], data=urlencode({"client_id": client[0], "client_secret": client[1],
                                                                "grant_type": "client_credentials"}),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
            status_in(r, 200)
            self._tokens[client] = r.json["access_token"]
        return self._tokens[client]

    def advance(self, seconds: float) -> None:
        self.control.clock("advance", seconds=seconds)
        self._tokens.clear()   # 300 s tokens: re-authenticate on the moved clock

    def call(self, name, body=None, query=None, tenant=None, client=None, alias=None, **path):
        h = {"Authorization": f"Bearer {self.token(client)}"}
        if tenant:
            h["TenantID"] = tenant
        params = {k.replace("_", "-"): v for k, v in path.items()}
        r = self.t.call(OP[name], json_body=body, query=query, headers=h, path_params=params, alias=alias)
        not_a_server_error(r)
        if r.status != 204 and r.headers.get("Content-Type", "").startswith("application/json"):
            response_schema_conformance(r)
        return r

    def ok(self, name, status=200, **kw):
        r = self.call(name, **kw)
        status_in(r, status)
        return r.json

    def user(self, type_="person", tenant=None, **extra) -> str:
        body = {"type": type_, "name": "Maria Muster", "automaticAnalysis": "suspended", **extra}
        return self.ok("create_user", 201, body=body, tenant=tenant)["user"]["userID"]

    def upload(self, uid, accounts, tenant=None) -> None:
        """set_accounts per account, transactions in chunks (the 1 MB body limit), then trigger_analysis."""
        for a in accounts:
            self.ok("set_accounts", body={"accounts": [{**a, "transactions": []}]}, user_id=uid, tenant=tenant)
            txs = a["transactions"]
            for i in range(0, len(txs), 1500):
                self.ok("add_transactions", body={"transactions": txs[i:i + 1500]}, user_id=uid,
                        account_id=a["accountId"], tenant=tenant)

    def analysed(self, uid, tenant=None) -> str:
        return self.ok("trigger_analysis", user_id=uid, tenant=tenant)["correlationID"]

    def page(self, url: str):
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        status, headers, content, _ = self.t.send("GET", path, {}, None)
        return status, headers, content.decode("utf-8", "replace")


def person(fx, tenant=None, **extra):
    """A person user with the household upload, analysed: (userID, correlationID, accounts, labels)."""
    uid = fx.user(tenant=tenant, **extra)
    accounts, labels = person_upload()
    fx.upload(uid, accounts, tenant)
    return uid, fx.analysed(uid, tenant), accounts, labels


def company(fx, tenant=None):
    uid = fx.user("company", tenant=tenant, name="Muster Metallbau GmbH")
    accounts, labels = company_upload()
    fx.upload(uid, accounts, tenant)
    return uid, fx.analysed(uid, tenant), accounts, labels


# =====================================================================================================================
# independent expectations (from the upload only)
# =====================================================================================================================
def d(x) -> Decimal:
    return Decimal(str(x))


def cents(x: Decimal) -> float:
    return float(x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def month(t) -> str:
    return datetime.fromtimestamp(t["bookingDate"], BERLIN).strftime("%Y-%m")


def in_window(accounts):
    return [(a, t) for a in accounts for t in a["transactions"] if month(t) in WINDOW]


def by_label(accounts, labels, *kinds, account_types=None):
    return [t for a, t in in_window(accounts) if labels[t["transactionId"]] in kinds
            and (account_types is None or a["type"] in account_types)]


def monthly_average(txs) -> float:
    return cents(sum((abs(d(t["amount"])) for t in txs), Decimal(0)) / len(WINDOW))


def ids(txs) -> set:
    return {t["transactionId"] for t in txs}


# =====================================================================================================================
# person cockpit
# =====================================================================================================================
def test_person_cockpit_income_and_spending_are_the_uploaded_bookings(fx):
    uid, cid, accounts, labels = person(fx)
    cockpit = fx.ok("get_person_cockpit", user_id=uid)
    income, spending = cockpit["income"], cockpit["spending"]
    parts = {"salary": ("salaryProps", "salary"), "childBenefit": ("childBenefitsProps", "child-benefit"),
             "alimony": ("alimonyProps", "alimony"), "rental": ("rentalProps", "rental"),
             "nonRecurringIncome": ("nonRecurringIncomeProps", "non-recurring"),
             "pension": ("pensionProps", "pension"), "elternGeld": ("elterngeldProps", "parental-allowance"),
             "other": ("otherProps", "other")}
    uploaded = {t["transactionId"] for a in accounts for t in a["transactions"]}
    for key, (props, label) in parts.items():
        txs = by_label(accounts, labels, label)
        assert income[key] == monthly_average(txs), key
        assert set(income[props]["transactionIDs"]) == ids(txs) <= uploaded, key
        assert income[props]["amount"] == cents(sum((d(t["amount"]) for t in txs), Decimal(0))), key
    assert income["salary"] == 3160.0 and income["childBenefit"] == 500.0   # 3150/3160/3170 rotating; 2 x 250
    assert income["total"] == cents(sum((d(income[k]) for k in parts), Decimal(0)))
    assert income["employer"] == ["Muster Maschinenbau GmbH"]
    assert [m["date"] for m in income["months"]] == WINDOW
    june = [t for t in by_label(accounts, labels, "salary", "child-benefit", "alimony", "rental", "non-recurring")
            if month(t) == "2024-05"]
    assert income["months"][-1]["value"] == cents(sum((d(t["amount"]) for t in june), Decimal(0)))
    consumption = ("groceries", "mobility", "cash-withdrawal", "vacation", "recreational", "clothing")
    expected = {"consumption": consumption, "contract": ("contract",), "credit": ("credit",),
                "insurance": ("insurance",), "rental": ("rent",), "securitySavingPlans": ("security-saving-plan",),
                "creditCards": ()}
    for key, kinds in expected.items():
        txs = by_label(accounts, labels, *kinds)
        assert spending[key] == monthly_average(txs), key
        assert set(spending[f"{key}Props"]["transactionIDs"]) == ids(txs), key
    assert spending["total"] == cents(sum((d(spending[k]) for k in expected), Decimal(0)))
    # internal transfers (own Tagesgeld, the connected card's settlement) are neither income nor spending
    internal = ids(by_label(accounts, labels, "internal-transfer"))
    every = {i for k in parts for i in income[parts[k][0]]["transactionIDs"]} | {
        i for k in expected for i in spending[f"{k}Props"]["transactionIDs"]}
    assert internal and not internal & every


def test_person_cockpit_household_liquidity_overview_and_wealth(fx):
    uid, cid, accounts, labels = person(fx)
    c = fx.ok("get_person_cockpit", user_id=uid)
    house = c["householdExpenditure"]
    names = {"groceries": "groceries", "mobility": "mobility", "cashWithdrawal": "cash-withdrawal",
             "vacation": "vacation", "recreational": "recreational", "clothing": "clothing"}
    for key, label in names.items():
        txs = by_label(accounts, labels, label)
        per = defaultdict(Decimal)
        for t in txs:
            per[month(t)] += abs(d(t["amount"]))
        assert house[key]["data"] == [{"date": m, "value": cents(per[m])} for m in WINDOW], key
        assert house[key]["total"] == cents(sum(per.values(), Decimal(0))) and set(house[key]["transactions"]) == ids(txs)
        assert house[key]["average"] == monthly_average(txs)
        values = sorted(per[m] for m in WINDOW)
        assert house[key]["median"] == cents((values[5] + values[6]) / 2), key
    assert house["other"]["total"] == 0 and house["other"]["transactions"] == []
    assert house["consumptionAverage"] == c["spending"]["consumption"]
    assert house["consumptionTotal"] == cents(sum((d(house[k]["total"]) for k in names), Decimal(0)))
    assert c["liquidity"] == {"creditLine": 1500.0, "creditLineProvided": True, "creditsAmount": 0.0,
                              "creditsProvided": True, "hasCreditCard": True, "tagesgeld": 6400.0,
                              "tagesgeldProvided": True,
                              "transactionsPerMonth": round(len(in_window(accounts)) / 12, 1)}
    assert c["overview"] == {"childrenCount": 2, "hasCar": True, "incomeTotal": c["income"]["total"], "isTenant": True}
    assert c["wealth"] == {"depot": 4750.0, "hasRealEstate": False, "housingSaving": 0.0, "securities": 4750.0,
                           "securitySavingPlans": 100.0}
    assert [s["isin"] for s in c["securities"]] == ["IE00B4L5Y983"]
    assert [x["contractPartner"]["name"] for x in c["credits"]] == ["Beispielbank AG"]
    assert set(c["credits"][0]["transactionIDs"]) == ids(by_label(accounts, labels, "credit"))
    assert c["credits"][0]["amount"] == "210.00" and c["credits"][0]["interval"] == "MONTHLY"
    assert [x["contractPartner"]["name"] for x in c["insurances"]] == ["HUK-COBURG Versicherung"]
    assert [x["contractPartner"]["name"] for x in c["savingSecurities"]] == ["Trade Republic Bank GmbH"]
    assert {a["accountId"] for a in c["accountData"]["accounts"]} == {"giro-1", "tg-1", "depot-1"}
    assert [a["accountId"] for a in c["accountData"]["creditCards"]] == ["cc-1"]
    assert c["observationPeriod"]["firstTransactionDate"] == "2023-05-01"
    assert c["observationPeriod"]["lastTransactionDateFormatted"] == "20.06.2024"
    assert c["user"] == {"finoOSID": uid} and c["type"] == "person"


def test_daily_balances_roll_back_from_the_uploaded_balance(fx):
    uid, cid, accounts, labels = person(fx)
    c = fx.ok("get_person_cockpit", user_id=uid)
    giro = next(a for a in accounts if a["accountId"] == "giro-1")
    history = next(h for h in c["accountHistories"]["histories"] if h["account"]["accountId"] == "giro-1")
    balances = {b["date"]: b["balance"] for b in history["dailyBalances"]}
    for day in ("2024-06-24", "2024-06-19", "2024-01-31", "2023-08-01"):
        after = sum((d(t["amount"]) for t in giro["transactions"]
                     if datetime.fromtimestamp(t["bookingDate"], BERLIN).date().isoformat() > day), Decimal(0))
        assert balances[day] == cents(d(giro["balance"]) - after), day
    assert history["account"]["overDraft"] == 1500.0 and history["account"]["overDraftAvailable"] is True


# =====================================================================================================================
# company cockpit
# =====================================================================================================================
def test_company_cockpit_blocks_are_the_uploaded_bookings(fx):
    uid, cid, accounts, labels = company(fx)
    c = fx.ok("get_company_cockpit", user_id=uid)
    window = [t for _, t in in_window(accounts)]
    credits = [t for t in window if t["amount"] > 0]
    debits = [t for t in window if t["amount"] < 0]
    caa = c["caa"]
    assert caa["earnings"] == cents(sum((d(t["amount"]) for t in credits), Decimal(0)))
    assert caa["spendings"] == cents(-sum((d(t["amount"]) for t in debits), Decimal(0)))
    assert (caa["incoming"], caa["outgoing"]) == (len(credits), len(debits))
    assert caa["total"] == cents(d(caa["earnings"]) - d(caa["spendings"]))
    assert caa["balance"] == -1250.0 and caa["negativeTotal"] == -1250.0
    foreign = [t for t in window if t["paymentPartner"]["iban"][:2] not in ("DE", "")]
    assert caa["foreignSales"] == {
        "earnings": cents(sum((d(t["amount"]) for t in foreign if t["amount"] > 0), Decimal(0))),
        "incoming": sum(1 for t in foreign if t["amount"] > 0),
        "outgoing": sum(1 for t in foreign if t["amount"] < 0),
        "spendings": cents(-sum((d(t["amount"]) for t in foreign if t["amount"] < 0), Decimal(0)))}
    assert caa["foreignSales"]["incoming"] == 12 and caa["foreignSales"]["outgoing"] == 12
    assert set(c["cashflow"]["incomings"]["transactionIDs"]) == ids(credits)
    assert set(c["cashflow"]["outgoings"]["transactionIDs"]) == ids(debits)
    assert c["cashflow"]["incomings"]["transactionCount"] == len(credits)
    totals = defaultdict(Decimal)
    for t in by_label(accounts, labels, "customer"):
        totals[t["paymentPartner"]["name"]] += d(t["amount"])
    grand = sum((d(t["amount"]) for t in credits), Decimal(0))
    ranking = sorted(totals.items(), key=lambda kv: -kv[1])
    top = c["customerTop"]
    assert [x["name"] for x in top[:3]] == [name for name, _ in ranking]
    assert [x["rank"] for x in top] == list(range(1, len(top) + 1))
    assert top[0]["totalPayments"] == cents(ranking[0][1]) and top[0]["percent"] == cents(ranking[0][1] * 100 / grand)
    assert top[0]["numberOfTransactions"] == 12
    assert [x["name"] for x in c["supplierTop"]] == ["Würth Industrie Service GmbH", "Voestalpine Stahl GmbH"]
    assert c["facts"]["staff"]["totalNumberOfEmployees"] == 3 and c["facts"]["staff"]["socialInsuranceEmployees"] == 3
    assert c["liquidity"]["cardPaymentTerminalProvided"] is True
    assert c["liquidity"]["cardPaymentTerminalAmount"] == cents(sum((d(t["amount"]) for t in by_label(
        accounts, labels, "terminal")), Decimal(0)))
    assert c["liquidity"]["creditsAmount"] == 25000.0
    assert [x["contractPartner"]["name"] for x in c["insurances"]] == ["Allianz Versicherungs-AG"]
    assert [x["contractPartner"]["name"] for x in c["credits"]] == ["Commerzbank AG"]
    assert [p["from"] for p in caa["revenueGraphData"]] == [f"{m}-01" for m in WINDOW]
    assert len(caa["revenueForecastData"]) == 3 and caa["revenueForecastData"][0]["from"] == "2024-06-01"


def test_company_liquidity_per_month_matches_the_daily_balances(fx):
    uid, cid, accounts, labels = company(fx)
    c = fx.ok("get_company_cockpit", user_id=uid)
    giro = accounts[0]
    per_day = defaultdict(Decimal)
    for t in giro["transactions"]:
        per_day[datetime.fromtimestamp(t["bookingDate"], BERLIN).date()] += d(t["amount"])
    today = date(2024, 6, 25)
    balance, day, eod = d(giro["balance"]), today, {}
    while day >= date(2023, 6, 1):
        eod[day] = balance
        balance -= per_day.get(day, Decimal(0))
        day -= timedelta(days=1)
    rows = {m["date"]: m for m in next(x for x in c["caa"]["liquidity"]
                                       if x["account"]["accountId"] == "biz-1")["liquidityMonthly"]}
    assert list(rows) == WINDOW
    for m in WINDOW:
        values = [b for k, b in sorted(eod.items()) if k.strftime("%Y-%m") == m]
        row = rows[m]
        assert (row["minBalance"], row["maxBalance"], row["endOfMonthBalance"]) == (
            cents(min(values)), cents(max(values)), cents(values[-1])), m
        assert row["overdrawDays"] == sum(1 for b in values if b < 0), m
        month_tx = [t for t in giro["transactions"] if month(t) == m]
        assert row["earnings"] == cents(sum((d(t["amount"]) for t in month_tx if t["amount"] > 0), Decimal(0)))
    assert rows["2024-05"]["backDebitCount"] == 1 and rows["2024-04"]["backDebitCount"] == 0
    assert any(rows[m]["overdrawDays"] for m in WINDOW)
    # the same balances as the account-history result (detection area), where both have the day
    r = fx.call("get_account_history", user_id=uid)
    if r.status == 200:
        hist = next(h for h in r.json["histories"] if h["account"]["accountId"] == "biz-1")
        daily = {b["date"]: b["balance"] for b in hist["dailyBalances"]}
        for m in WINDOW:
            last = max(k for k in eod if k.strftime("%Y-%m") == m).isoformat()
            if last in daily:
                assert daily[last] == rows[m]["endOfMonthBalance"], m


# =====================================================================================================================
# type, lifecycle, correlation, scopes
# =====================================================================================================================
PERSON_OPS = ("get_person_cockpit", "get_person_income", "get_person_spending", "get_person_household_budget",
              "get_person_living_situation", "get_person_risk", "get_person_adult_check")
COMPANY_OPS = ("get_company_cockpit", "get_company_cash", "get_company_liquidity", "get_company_foreign_payments",
               "get_company_risk", "get_company_credit", "get_company_insurance", "get_company_investment",
               "get_company_internal_bookings")


def test_the_other_user_type_gets_404(fx):
    p, _, _, _ = person(fx)
    c, _, _, _ = company(fx)
    for name in COMPANY_OPS:
        provider_error(fx.call(name, user_id=p), 404)
        status_in(fx.call(name, user_id=c), 200)
    for name in PERSON_OPS:
        provider_error(fx.call(name, user_id=c), 404)
        status_in(fx.call(name, user_id=p), 200)


def test_everything_is_404_before_the_first_run_and_for_unknown_users(fx):
    uid = fx.user()
    fx.upload(uid, person_upload(3)[0])
    for name in (*PERSON_OPS, "get_cockpit_recommendations", "get_cockpit_correlation", "get_cockpit_link"):
        provider_error(fx.call(name, user_id=uid), 404)
        provider_error(fx.call(name, user_id="00000000-0000-4000-8000-000000000000"), 404)
    fx.analysed(uid)
    for name in (*PERSON_OPS, "get_cockpit_recommendations", "get_cockpit_correlation", "get_cockpit_link"):
        status_in(fx.call(name, user_id=uid), 200)


def test_another_tenant_never_sees_the_cockpit(fx):
    uid, _, _, _ = person(fx, tenant="branch-1")
    status_in(fx.call("get_person_cockpit", user_id=uid, tenant="branch-1"), 200)
    for name in (*PERSON_OPS, "get_cockpit_link", "get_cockpit_recommendations"):
        provider_error(fx.call(name, user_id=uid), 404)
        provider_error(fx.call(name, user_id=uid, tenant="branch-2"), 404)


def test_cockpit_correlation_answers_the_run_and_a_named_run(fx):
    uid, cid, accounts, _ = person(fx)
    got = fx.ok("get_cockpit_correlation", user_id=uid)
    assert got["correlationID"] == cid and got["correlationTimestamp"].endswith("+02:00")   # June: CEST
    assert fx.ok("get_cockpit_correlation", user_id=uid, query={"correlation-id": cid}) == got
    provider_error(fx.call("get_cockpit_correlation", user_id=uid,
                           query={"correlation-id": "00000000-0000-4000-8000-000000000000"}), 404)
    other, other_cid, _, _ = person(fx)
    provider_error(fx.call("get_cockpit_correlation", user_id=uid, query={"correlation-id": other_cid}), 404)
    # a second run while the first's results stay readable: manual policy keeps it running
    fx.control.policy(mode="manual", kind="fino.analysis")
    second = fx.analysed(uid)
    provider_error(fx.call("get_cockpit_correlation", user_id=uid), 404)
    provider_error(fx.call("get_cockpit_correlation", user_id=uid, query={"correlation-id": second}), 404)
    assert fx.ok("get_cockpit_correlation", user_id=uid, query={"correlation-id": cid})["correlationID"] == cid
    income = fx.ok("get_person_income", user_id=uid)
    assert income["correlationID"] == cid   # the previous run's results while the new one runs (section 6)
    fx.control.policy(mode="instant", kind="fino.analysis")


def test_analytics_are_projections_of_the_cockpit_with_the_run_id(fx):
    uid, cid, _, _ = person(fx)
    c = fx.ok("get_person_cockpit", user_id=uid)
    assert fx.ok("get_person_income", user_id=uid) == {"correlationID": cid, "income": c["income"]}
    assert fx.ok("get_person_spending", user_id=uid) == {"correlationID": cid, "spending": c["spending"]}
    assert fx.ok("get_person_household_budget", user_id=uid) == {"correlationID": cid,
                                                                  "householdBudget": c["householdExpenditure"]}
    assert fx.ok("get_person_living_situation", user_id=uid) == {
        "correlationID": cid, "livingSituation": {"overview": c["overview"], "wealth": c["wealth"]}}
    assert fx.ok("get_person_risk", user_id=uid) == {"correlationID": cid, "risk": {"flags": [], "score": 100}}
    adult = fx.ok("get_person_adult_check", user_id=uid)["adultCheck"]
    assert adult["isAdult"] is True and {"salary", "rent", "childBenefit"} <= set(adult["indicators"])
    co, ccid, _, _ = company(fx)
    k = fx.ok("get_company_cockpit", user_id=co)
    assert fx.ok("get_company_cash", user_id=co) == {"correlationID": ccid, "cash": {
        **k["cashflow"], "collectivePayments": k["collectivePayments"]}}
    assert fx.ok("get_company_liquidity", user_id=co) == {"correlationID": ccid, "liquidity": {
        "accounts": k["caa"]["liquidity"], **k["liquidity"]}}
    foreign = {"correlationID": ccid, "foreignPayments": k["caa"]["foreignSales"]}
    assert fx.ok("get_company_foreign_payments", user_id=co) == foreign
    assert fx.ok("get_company_foreign_payments", user_id=co, alias=0) == foreign              # /users/{id}/foreign-payments
    assert fx.ok("get_company_foreign_payments", alias=1, query={"user-id": co}) == foreign   # /foreign-payments
    provider_error(fx.call("get_company_foreign_payments", alias=1), 404)   # no user named
    assert fx.ok("get_company_credit", user_id=co)["credit"]["credits"] == k["credits"]
    assert fx.ok("get_company_insurance", user_id=co)["insurance"] == {"insurances": k["insurances"]}
    assert fx.ok("get_company_investment", user_id=co)["investment"] == {
        "savingSecurities": k["savingSecurities"], "securities": k["securities"]}
    assert fx.ok("get_company_internal_bookings", user_id=co)["internalBookings"] == {
        "internalContracts": k["internalContracts"]}
    risk = fx.ok("get_company_risk", user_id=co)["risk"]
    assert {"overdrawDays", "returnedDebits"} <= set(risk["flags"]) and risk["score"] < 100


def test_module_scopes_gate_the_analytics_and_user_scopes_the_cockpit(fx):
    created = fx.control.create_client(client_id="fino-small", client_secret="small-secret",
                                       scopes={"fino": ["person-income-rental", "company-cash"]})
    small = (created["client_id"], "small-secret")
    uid = fx.ok("create_user", 201, body={"type": "person", "automaticAnalysis": "suspended"},
                client=small)["user"]["userID"]
    forbidden = {"type": "forbidden", "message": "Forbidden. No access to this resource"}
    provider_error(fx.call("get_person_cockpit", user_id=uid, client=small), 403, forbidden)
    provider_error(fx.call("get_company_liquidity", user_id=uid, client=small), 403, forbidden)
    provider_error(fx.call("get_person_income", user_id=uid, client=small), 404)   # one income module suffices
    provider_error(fx.call("get_company_cash", user_id=uid, client=small), 404)
    limited, _, _, _ = person(fx, userScopes=["banking"])
    provider_error(fx.call("get_person_cockpit", user_id=limited), 403, forbidden)
    provider_error(fx.call("get_cockpit_link", user_id=limited), 403, forbidden)
    status_in(fx.call("get_person_income", user_id=limited), 200)


# =====================================================================================================================
# list, recommendations, webhooks
# =====================================================================================================================
def test_list_cockpits_pages_and_filters(fx):
    users = []
    for n in range(3):
        uid = fx.user(customUserID=f"kd-{n}")
        fx.ok("add_user_scopes", body={"userScopes": ["cockpits"]}, user_id=uid)   # a run without data: empty cockpit
        users.append(uid)
    fx.user(customUserID="kd-none")   # no run, no cockpit
    listed = fx.ok("list_cockpits")
    assert listed["metaData"] == {"page": 1, "pageCount": 1, "pageSize": 20, "totalCount": 3}
    assert [x["id"] for x in listed["cockpits"]] == users
    assert [x["customUserID"] for x in listed["cockpits"]] == ["kd-0", "kd-1", "kd-2"]
    page2 = fx.ok("list_cockpits", query={"page": "2", "page-size": "2"})
    assert page2["metaData"] == {"page": 2, "pageCount": 2, "pageSize": 2, "totalCount": 3}
    assert [x["id"] for x in page2["cockpits"]] == users[2:]
    assert fx.ok("list_cockpits", query={"page": "3", "page-size": "2"})["cockpits"] == []
    assert [x["id"] for x in fx.ok("list_cockpits", query={"custom-user-id": "kd-1"})["cockpits"]] == [users[1]]
    for bad in ({"page-size": "1"}, {"page-size": "0"}, {"page": "0"}, {"page": "x"}, {"page-size": "-3"},
                {"page-size": "2.5"}):
        provider_error(fx.call("list_cockpits", query=bad), 400)
    provider_error(fx.call("list_cockpits", tenant="elsewhere", query={"page": "x"}), 400)
    assert fx.ok("list_cockpits", tenant="elsewhere")["cockpits"] == []


def test_list_cockpits_filters_by_advisor(fx):
    advisor = fx.ok("create_advisor", 201, body={"mail": "berater@bank.example", "name": "Petra Berater"})
    path = "/" + advisor["linkURL"].split("://", 1)[1].split("/", 1)[1]
    status, _, content, _ = fx.t.send("POST", path, {"Content-Type": "application/x-www-form-urlencoded"},
                                      urlencode({"linkID": advisor["linkID"], "name": "Beratene Kundin",
                                                 "type": "person", "customUserID": "kd-adv",
                                                 "consent": "1"}).encode())
    assert status == 200
    uid = re.search(r'id="userID">([0-9a-f-]{36})<', content.decode()).group(1)
    fx.user(customUserID="kd-other")
    fx.ok("add_user_scopes", body={"userScopes": ["cockpits"]}, user_id=uid)
    got = fx.ok("list_cockpits", query={"advisor-id": advisor["id"]})
    assert [(x["id"], x["name"], x["type"]) for x in got["cockpits"]] == [(uid, "Beratene Kundin", "person")]
    assert fx.ok("list_cockpits", query={"advisor-id": "unknown"})["cockpits"] == []


def test_recommendations_follow_the_rules(fx):
    uid = fx.user()
    days = month_days(12, 1)
    giro = [_tx(f"s-{n}", 2000.0, day.replace(day=27) if day.replace(day=27) <= END else day, "LOHN/GEHALT",
                "Gehalt", "Firma GmbH", "DE27100777770209299700", "SALA", 153) for n, day in enumerate(days)]
    giro += [_tx(f"g-{n}", -1800.0, day.replace(day=10), "KARTENZAHLUNG", "EDEKA", "EDEKA", "", "", 106, "5411")
             for n, day in enumerate(days)]
    fx.upload(uid, [{"accountId": "g", "accountNumber": "1", "balance": 5000.0, "iban": GIRO_IBAN, "type": "GIRO",
                     "name": "Girokonto", "transactions": giro}])
    fx.analysed(uid)
    recs = fx.ok("get_cockpit_recommendations", user_id=uid)["recommendations"]
    names = [r["name"] for r in recs]
    # no insurance; consumption 1800 > 70 % of 2000; no Tagesgeld but income > spending; no saving plan
    assert names == ["insurance-check", "budget-coaching", "savings-account", "security-saving-plan"]
    budget = recs[1]
    assert budget["data"] == {"consumption": 1800.0, "incomeTotal": 2000.0, "share": 90.0}
    assert all(r["showCustomer"] and r["showAdvisor"] and r["title"] and r["text"] for r in recs)
    assert len({r["id"] for r in recs}) == 4
    fx.analysed(uid)   # the same rules on the same bookings: the same ids
    assert [r["id"] for r in fx.ok("get_cockpit_recommendations", user_id=uid)["recommendations"]] == [
        r["id"] for r in recs]
    co, _, _, _ = company(fx)
    names = [r["name"] for r in fx.ok("get_cockpit_recommendations", user_id=co)["recommendations"]]
    assert "credit-line" in names and "business-insurance" not in names   # overdrawn, insured


def test_cockpit_webhooks_carry_the_cockpit_and_its_recommendations(fx):
    hooks = Receiver()
    try:
        fx.ok("create_webhook", 201, body={"url": hooks.url + "/fino", "events": [
            "personcockpit", "personcockpit-recommendations", "cockpitrecommendations.notification"]})
        uid, cid, _, _ = person(fx)
        fx.control.flush_webhooks(provider="fino")
        got = {json.loads(r["body"])["event"]: json.loads(r["body"]) for r in hooks.received}
        assert set(got) == {"personcockpit", "personcockpit-recommendations", "cockpitrecommendations.notification"}
        assert got["personcockpit"]["data"] == fx.ok("get_person_cockpit", user_id=uid)
        assert got["personcockpit-recommendations"]["data"] == fx.ok("get_cockpit_recommendations", user_id=uid)
        assert got["cockpitrecommendations.notification"]["data"]["type"] == "person"
        assert all(p["correlationID"] == cid for p in got.values())
    finally:
        hooks.close()


# =====================================================================================================================
# cockpit link and page
# =====================================================================================================================
def test_cockpit_link_expires_on_the_sandbox_clock(fx):
    uid, _, _, _ = person(fx)
    link = fx.ok("get_cockpit_link", user_id=uid, query={"expires-in": "60"})
    assert link["expireTimestamp"] == "2024-06-25T10:01:00"
    assert f"/cockpit/{uid}?" in link["url"]
    status, headers, html = fx.page(link["url"])
    assert status == 200 and headers.get("Content-Type", "").startswith("text/html")
    income = fx.ok("get_person_cockpit", user_id=uid)["income"]["total"]
    shown = f"{income:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    assert 'id="income-total">' + shown in html and "HUK-COBURG Versicherung" in html
    fx.advance(59)
    assert fx.page(link["url"])[0] == 200          # 1 s before expireTimestamp
    fx.advance(1)
    status, _, html = fx.page(link["url"])
    assert status == 401 and "abgelaufen" in html   # at expireTimestamp
    # tampering with the user or the expiry breaks the signature
    fresh = fx.ok("get_cockpit_link", user_id=uid)["url"]
    parts = urlsplit(fresh)
    query = dict(parse_qsl(parts.query))
    assert fx.page(urlunsplit(parts._replace(query=urlencode({**query, "expires": str(int(query["expires"]) + 9)}))))[
        0] == 401
    other, _, _, _ = person(fx)
    assert fx.page(fresh.replace(uid, other))[0] == 401
    assert fx.page(fresh)[0] == 200


def test_cockpit_link_default_24h_alias_and_bad_values(fx):
    uid, _, _, _ = person(fx)
    assert fx.ok("get_cockpit_link", user_id=uid)["expireTimestamp"] == "2024-06-26T10:00:00"
    assert fx.ok("get_cockpit_link", user_id=uid, alias=0)["expireTimestamp"] == "2024-06-26T10:00:00"   # POST
    for bad in ("0", "-5", "abc", "1.5", "99999999999", "31536001"):
        provider_error(fx.call("get_cockpit_link", user_id=uid, query={"expires-in": bad}), 400)
    co, _, _, _ = company(fx)
    url = fx.ok("get_cockpit_link", user_id=co)["url"]
    status, _, html = fx.page(url)
    assert status == 200 and "Firmen-Cockpit" in html and "Würth Industrie Service GmbH" in html


def test_the_page_of_a_deleted_user_is_404(fx):
    uid, _, _, _ = person(fx)
    url = fx.ok("get_cockpit_link", user_id=uid)["url"]
    status_in(fx.call("delete_user", user_id=uid), 204)
    assert fx.page(url)[0] == 404
