"""German banking data for finoOS (fino.md section 13): BICs by BLZ, SEPA creditor ids, mandate and end-to-end
references, GVC codes (Geschäftsvorfallcodes) and SEPA purpose codes per ledger category, WKNs, fino account types per
ledger account kind, and a company ledger (customers, suppliers, payroll, VAT, loans) for users of type ``company``.

Pure functions and tables: every value derives from its arguments (seeded), never from the wall clock.
"""
from __future__ import annotations

import calendar
import hashlib
import math
import random
import re
from datetime import date, timedelta
from decimal import Decimal

from ...ledger.generator import add_months, counterparty_iban, stable_seed
from ...ledger.iban import de_iban, is_valid_iban
from ...ledger.models import Account, Holding, Ledger, Transaction

# --- banks -----------------------------------------------------------------------------------------------------
# The provider's test bank (fino.md section 14): BIC "FINOBANK01" as in every reference example (not 8/11 chars).
FINO_BANK = {"name": "Fino Bank", "code": "10020000", "bic": "FINOBANK01"}
# BLZ -> BIC of the banks the DE ledger market uses (fixtures/markets/DE.yaml), plus a few more real ones.
BIC_BY_BLZ = {
    "10070000": "DEUTDEBBXXX", "37040044": "COBADEFFXXX", "12030000": "BYLADEM1001", "50010517": "INGDDEFFXXX",
    "10050000": "BELADEBEXXX", "20050550": "HASPDEHHXXX", "70150000": "SSKMDEMMXXX", "10010010": "PBNKDEFFXXX",
    "70020270": "HYVEDEMMXXX", "10011001": "NTSBDEB1XXX", "10090000": "BEVODEBBXXX", "70169464": "GENODEF1M04",
    "37050198": "COLSDE33XXX", "50050201": "HELADEF1822", "60050101": "SOLADEST600", "76026000": "NORSDE71XXX",
    "43060967": "GENODEM1GLS", "10020000": FINO_BANK["bic"],
}
_BIC_RE = re.compile(r"^[A-Z]{4}DE[A-Z0-9]{2}([A-Z0-9]{3})?$")

# --- account types (fino.md section 8) ---------------------------------------------------------------------------
ACCOUNT_TYPES = ("BAUSPAREN", "DEPOT", "FESTGELD", "FONDSDEPOT", "GIRO", "KREDIT_KARTE", "KREDIT_KONTO",
                 "KREDITDARLEHEN", "SPARBUCH", "TAGESGELD", "UNKNOWN", "OTHER")
TYPE_BY_KIND = {"checking": "GIRO", "credit_card": "KREDIT_KARTE", "savings": "TAGESGELD", "loan": "KREDITDARLEHEN",
                "mortgage": "KREDITDARLEHEN", "securities": "DEPOT"}
# persona -> {ledger kind: (fino type, product name)}: the same ledger account, the product a German bank would sell
PERSONA_TYPES = {
    "retiree": {"savings": ("SPARBUCH", "Sparbuch")},
    "homeowner_with_mortgage": {"savings": ("BAUSPAREN", "Bausparvertrag")},
    "freelancer": {"savings": ("TAGESGELD", "Tagesgeldkonto")},
    "company": {"loan": ("KREDITDARLEHEN", "Investitionsdarlehen"), "savings": ("TAGESGELD", "Steuerrücklage")},
}
# persona -> static extra accounts (no movements inside the window): (fino type, name, balance range EUR)
PERSONA_EXTRAS = {
    "high_earner_investor": [("FESTGELD", "Festgeld 24 Monate", (10000, 50000)),
                             ("FONDSDEPOT", "VL-Fondsdepot", (2000, 9000))],
    "salaried_renter": [("FONDSDEPOT", "VL-Fondsdepot", (500, 4000))],
    "freelancer": [("KREDIT_KONTO", "Rahmenkredit", (0, 0))],
    "company": [("KREDIT_KONTO", "Kontokorrentkredit", (0, 0)), ("OTHER", "Mietkautionskonto", (3000, 12000)),
                ("UNKNOWN", "Verrechnungskonto", (0, 2500))],
}
FUNDS = {"IE00B4L5Y983": ("iShares Core MSCI World UCITS ETF", "A0RPWH", 95.0),
         "IE00BK5BQT80": ("Vanguard FTSE All-World UCITS ETF Acc", "A2PKXG", 120.0),
         "LU0274208692": ("Xtrackers MSCI World Swap UCITS ETF", "DBX1MW", 100.0),
         "IE00B5BMR087": ("iShares Core S&P 500 UCITS ETF", "A0YEDG", 520.0),
         "DE0008474503": ("DekaFonds CF", "847450", 140.0), "DE0008491051": ("UniGlobal", "849105", 380.0)}

# --- GVC and SEPA purpose per ledger category ---------------------------------------------------------------------
# (GVC, booking text, ISO 20022 purpose code, SEPA channel) -- channel: "ct" credit transfer, "dd" direct debit,
# "so" standing order, "card", "cash", "fee" (no SEPA references)
_CATEGORY_GVC = {
    "salary": (153, "LOHN/GEHALT", "SALA", "ct"), "pension": (153, "RENTE", "PENS", "ct"),
    "benefits": (166, "GUTSCHRIFT", "BENE", "ct"), "freelance": (166, "GUTSCHRIFT", "SCVE", "ct"),
    "transfer_in": (166, "GUTSCHRIFT", "CASH", "ct"), "refund": (166, "GUTSCHRIFT", "", "ct"),
    "interest_income": (805, "ABSCHLUSS", "", "fee"),
    "rent": (117, "DAUERAUFTRAG", "RENT", "so"), "savings_transfer": (117, "DAUERAUFTRAG", "", "so"),
    "mortgage": (105, "SEPA-BASISLASTSCHRIFT", "LOAR", "dd"), "loan_repayment": (105, "SEPA-BASISLASTSCHRIFT", "LOAR", "dd"),
    "utilities": (105, "SEPA-BASISLASTSCHRIFT", "ELEC", "dd"), "communications": (105, "SEPA-BASISLASTSCHRIFT", "PHON", "dd"),
    "insurance": (105, "SEPA-BASISLASTSCHRIFT", "INSU", "dd"), "subscriptions": (105, "SEPA-BASISLASTSCHRIFT", "SUBS", "dd"),
    "education": (105, "SEPA-BASISLASTSCHRIFT", "STDY", "dd"), "securities_purchase": (105, "SEPA-BASISLASTSCHRIFT", "SECU", "dd"),
    "card_settlement": (105, "SEPA-BASISLASTSCHRIFT", "CCRD", "dd"),
    "cash_withdrawal": (83, "BARGELDAUSZAHLUNG", "", "cash"),
    "fees": (805, "ENTGELTABSCHLUSS", "", "fee"), "card_fee": (808, "GEBUEHREN", "", "fee"),
    "interest_charge": (805, "ZINSEN/ENTGELTE", "", "fee"),
    # company ledger categories (see generate_company_ledger)
    "revenue": (166, "GUTSCHRIFT", "SUPP", "ct"), "supplier": (116, "SEPA-UEBERWEISUNG", "SUPP", "ct"),
    "payroll": (116, "LOHN/GEHALT", "SALA", "ct"), "social_security": (105, "SEPA-BASISLASTSCHRIFT", "SSBE", "dd"),
    "wage_tax": (105, "SEPA-BASISLASTSCHRIFT", "TAXS", "dd"), "vat": (105, "SEPA-BASISLASTSCHRIFT", "VATX", "dd"),
}
_CARD = (106, "KARTENZAHLUNG", "GDDS", "card")
# On the receiving account an internal or incoming transfer is a credit (GVC 166/152), whatever the debit side is.
_INCOMING = {"so": (152, "DAUERAUFTRAGSGUTSCHRIFT"), "dd": (166, "GUTSCHRIFT"), "ct": (166, "GUTSCHRIFT")}


def gvc(category: str, amount: Decimal | float) -> dict:
    """GVC code, booking text, SEPA purpose code and channel of a ledger booking (card spending by default)."""
    code, text, purpose, channel = _CATEGORY_GVC.get(category, _CARD)
    if amount > 0 and channel in ("dd", "so") and category not in ("interest_income",):
        code, text = _INCOMING[channel]
    if amount < 0 and channel == "ct" and category in ("refund", "transfer_in", "benefits", "freelance", "revenue"):
        code, text = 116, "SEPA-UEBERWEISUNG"
    return {"transactionCode": code, "bookingText": text, "sepaPurposeCode": purpose, "channel": channel}


# --- identifiers ---------------------------------------------------------------------------------------------------
def _digits(text: str) -> str:
    return "".join(str(int(ch, 36)) for ch in text)


def creditor_id(name: str, country: str = "DE") -> str:
    """A stable SEPA creditor identifier for ``name``: ``DE`` + 2 check digits + ``ZZZ`` + 11 chars (mod 97-10
    over the national id and ``DE00``; the business code is not part of the check)."""
    national = "0" + f"{stable_seed('creditor', name) % 10 ** 10:010d}"
    return f"{country}{98 - int(_digits(national + country + '00')) % 97:02d}ZZZ{national}"


def is_valid_creditor_id(cid: str) -> bool:
    if not isinstance(cid, str) or not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{3}[A-Z0-9]{1,28}", cid):
        return False
    return int(_digits(cid[7:] + cid[:4])) % 97 == 1


_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def mandate_reference(creditor: str, customer: str) -> str:
    """A mandate reference (<= 35 chars, SEPA character set), stable per creditor and customer."""
    rng = random.Random(stable_seed("mandate", creditor, customer))
    style = rng.randrange(3)
    if style == 0:
        return "".join(rng.choice(_REF_ALPHABET) for _ in range(20))
    if style == 1:
        return f"M{rng.randint(10 ** 7, 10 ** 8 - 1)}-{rng.randint(1, 99):02d}"
    return f"KD{rng.randint(10 ** 9, 10 ** 10 - 1)}/{rng.randint(2015, 2024)}"


def end_to_end_reference(*parts) -> str:
    """An end-to-end reference (<= 35 chars), stable for its parts."""
    rng = random.Random(stable_seed("eref", *parts))
    return f"E2E{rng.randint(10 ** 10, 10 ** 11 - 1)}/{rng.randint(1, 999999):06d}/" + "".join(
        rng.choice(_REF_ALPHABET) for _ in range(8))


def hex_id(*parts, length: int = 24) -> str:
    """Lowercase hex of ``length`` characters from the SHA-256 (then SHA-512) of ``parts``."""
    raw = "\x1f".join(map(str, parts)).encode()
    text = hashlib.sha256(raw).hexdigest() + hashlib.sha512(raw).hexdigest()
    return text[:length]


def fetched_account_id(*parts) -> str:
    """A bank-fetched account id: ``A`` + 24 hex + ``.`` + 40 hex (fino.md section 13)."""
    return f"A{hex_id('account', *parts)}.{hex_id('account-tail', *parts, length=40)}"


def fetched_transaction_id(*parts) -> str:
    """A bank-fetched transaction id: ``T`` + UUID v4."""
    h = hex_id("transaction", *parts, length=32)
    h = h[:12] + "4" + h[13:16] + "89ab"[int(h[16], 16) % 4] + h[17:]
    return f"T{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid_from(*parts) -> str:
    return fetched_transaction_id(*parts)[1:]


def bic_for_blz(blz: str) -> str:
    """The BIC of a BLZ: from the table, else a well-formed 11-char BIC derived from the BLZ."""
    if blz in BIC_BY_BLZ:
        return BIC_BY_BLZ[blz]
    rng = random.Random(stable_seed("bic", blz))
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + "DE" + \
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + rng.choice("123456789") + "XXX"


def bic_for_iban(iban: str | None) -> str:
    if not iban or not iban.startswith("DE") or len(iban) != 22:
        return ""
    return bic_for_blz(iban[4:12])


def wkn(isin: str) -> str:
    """The WKN of an ISIN: German ISINs carry it (characters 6-11); known funds from the table; else derived."""
    if isin in FUNDS:
        return FUNDS[isin][1]
    if isin.startswith("DE") and len(isin) == 12:
        return isin[5:11]
    rng = random.Random(stable_seed("wkn", isin))
    return "A" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(5))


# --- the company ledger -----------------------------------------------------------------------------------------
COMPANY_CATEGORY_KINDS = {"revenue": "income", "supplier": "variable", "payroll": "regular",
                          "social_security": "regular", "wage_tax": "regular", "vat": "regular"}
_CUSTOMERS = ["Müller Maschinenbau GmbH", "Schneider Logistik KG", "Becker & Söhne OHG", "Hoffmann Bau AG",
              "Wagner IT-Services GmbH", "Stadtwerke Leipzig GmbH", "Klein Medizintechnik GmbH",
              "Fischer Handels GmbH", "Nordlicht Energie eG", "Braun Architekten PartG"]
_SUPPLIERS = ["Würth Industrie Service GmbH", "Conrad Electronic SE", "Lyreco Deutschland GmbH",
              "Metro Deutschland GmbH", "Hornbach Baumarkt AG", "Bechtle AG", "DATEV eG",
              "Thyssenkrupp Materials Services GmbH"]
_HEALTH_FUNDS = ["Techniker Krankenkasse", "AOK Nordost", "Barmer"]
_TAX_OFFICES = ["Finanzamt Berlin Mitte/Tiergarten", "Finanzamt München", "Finanzamt Hamburg-Nord"]
_COMPANY_BILLS = [("Vattenfall Europe Sales", "utilities", (180, 420)), ("Telekom Deutschland GmbH", "communications",
                  (90, 160)), ("Allianz Versicherungs-AG", "insurance", (240, 480))]
_COMPANY_BANKS = [("Commerzbank", "37040044"), ("Deutsche Bank", "10070000"), ("Berliner Sparkasse", "10050000"),
                  ("HypoVereinsbank", "70020270"), ("Berliner Volksbank", "10090000")]


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _business_day(y: int, m: int, day: int) -> date:
    last = calendar.monthrange(y, m)[1]
    d = date(y, m, min(max(day, 1), last))
    step = timedelta(days=1 if d.day <= 15 else -1)
    while d.weekday() >= 5:
        d += step
    return d


def generate_company_ledger(seed: int, customer_id: str, anchor: date, months: int = 12,
                            owner_name: str | None = None) -> Ledger:
    """A German company's ledger on the shared model (persona ``company``): a Geschäftskonto with customer
    payments (net + 19 % VAT), supplier payments, payroll per employee, social security and wage tax, monthly VAT
    (Umsatzsteuer-Voranmeldung: output minus input VAT), office rent, bills and bank fees; an Investitionsdarlehen
    (interest then instalment, both legs matching) and a Steuerrücklage (tax reserve) savings account.
    Categories beyond CATEGORY_KINDS are listed in COMPANY_CATEGORY_KINDS. Deterministic in its arguments."""
    if months < 1:
        raise ValueError("months must be >= 1")
    irng = random.Random(stable_seed(seed, customer_id, "DE", "company", "identity"))
    from ...ledger.generator import _faker, _FAKER_LOCK  # the ledger's seeded de_DE Faker
    with _FAKER_LOCK:
        fake = _faker("de_DE")
        fake.seed_instance(stable_seed(seed, customer_id, "DE", "company-faker"))
        company = owner_name or f"{fake.last_name()} {irng.choice(['GmbH', 'GmbH & Co. KG', 'AG', 'UG (haftungsbeschränkt)', 'KG'])}"
        employees = [f"{fake.first_name()} {fake.last_name()}" for _ in range(irng.randint(3, 9))]
        landlord = fake.company()
    bank_name, blz = irng.choice(_COMPANY_BANKS)
    prefix = f"{stable_seed(seed, customer_id):016x}"[:8]
    start, events = add_months(anchor, -months), {}
    used: set[str] = set()

    def number() -> tuple[str, str]:
        while True:
            n = irng.randint(10 ** 6, 10 ** 10 - 1)
            if str(n) not in used:
                used.add(str(n))
                return f"{n:010d}", de_iban(blz, n)

    specs = []
    for kind, name in (("checking", "Geschäftskonto"), ("loan", "Investitionsdarlehen"), ("savings", "Steuerrücklage")):
        num, iban = number()
        specs.append({"id": f"{prefix}-{kind}-1", "kind": kind, "name": name, "number": num, "iban": iban})
        events[specs[-1]["id"]] = []
    checking, loan, reserve = specs
    cid = checking["id"]
    seq = [0]

    def add(acc, d, cents, text, cp, cat, cp_iban=None):
        if start <= d <= anchor:
            seq[0] += 1
            events[acc].append((d, seq[0], cents, text, cp, cp_iban, cat))

    customers = irng.sample(_CUSTOMERS, irng.randint(4, 7))
    suppliers = irng.sample(_SUPPLIERS, irng.randint(3, 5))
    salaries = {e: irng.randint(2600, 6200) * 100 for e in employees}
    health = irng.choice(_HEALTH_FUNDS)
    tax_office = irng.choice(_TAX_OFFICES)
    rent_cents = irng.randint(12, 60) * 10000
    principal = irng.randint(50, 400) * 100000
    rate = irng.uniform(0.035, 0.065) / 12
    remaining = max(irng.randint(48, 120), months + 12)
    payment = int(math.ceil(principal * rate / (1 - (1 + rate) ** -remaining)))
    loan_ref = str(irng.randint(10 ** 8, 10 ** 9))
    outstanding = principal
    reserve_cents = irng.randint(5, 20) * 10000
    invoice_no = irng.randint(100, 900)
    y, m = start.year, start.month
    while (y, m) <= (anchor.year, anchor.month):
        mrng = random.Random(stable_seed(seed, customer_id, "DE", "company", y, m))
        last = calendar.monthrange(y, m)[1]
        out_vat = in_vat = 0
        for _ in range(mrng.randint(6, 11)):                       # customer payments (gross, 19 % VAT)
            who = mrng.choice(customers)
            net = mrng.randint(1500, 18000) * 100
            invoice_no += 1
            d = _business_day(y, m, mrng.randint(1, last))
            add(cid, d, int(net * 1.19), f"RE-{y}-{invoice_no:04d} {who}", who, "revenue", counterparty_iban("DE", who))
            out_vat += int(net * 0.19)
        for _ in range(mrng.randint(2, 6)):                        # supplier invoices
            who = mrng.choice(suppliers)
            net = mrng.randint(150, 6000) * 100
            d = _business_day(y, m, mrng.randint(1, last))
            add(cid, d, -int(net * 1.19), f"Rechnung {mrng.randint(10 ** 6, 10 ** 7)} {who}", who, "supplier",
                counterparty_iban("DE", who))
            in_vat += int(net * 0.19)
        payday = _business_day(y, m, 28)
        for e, gross in salaries.items():                          # net pay per employee
            add(cid, payday, -int(gross * 0.64), f"LOHN/GEHALT {m:02d}/{y} {e}", e, "payroll", counterparty_iban("DE", e))
        total = sum(salaries.values())
        add(cid, _business_day(y, m, 27), -int(total * 0.40), f"Beitragsnachweis {m:02d}/{y}", health,
            "social_security", counterparty_iban("DE", health))
        add(cid, _business_day(y, m, 10), -int(total * 0.16), f"Lohnsteuer {m:02d}/{y} StNr 30/{loan_ref[:3]}/{loan_ref[3:8]}",
            tax_office, "wage_tax", counterparty_iban("DE", tax_office))
        vat_due = out_vat - in_vat                                 # Umsatzsteuer-Voranmeldung, due the 10th
        nxt_y, nxt_m = (y + 1, 1) if m == 12 else (y, m + 1)
        add(cid, _business_day(nxt_y, nxt_m, 10), -vat_due,
            f"USt-VA {m:02d}/{y}", tax_office, "vat", counterparty_iban("DE", tax_office))
        add(cid, _business_day(y, m, 3), -rent_cents, f"Dauerauftrag Miete Gewerbe {landlord}", landlord, "rent",
            counterparty_iban("DE", landlord))
        for who, cat, (lo, hi) in _COMPANY_BILLS:
            add(cid, _business_day(y, m, 5), -mrng.randint(lo, hi) * 100, f"SEPA-Lastschrift {who}", who, cat,
                counterparty_iban("DE", who))
        add(cid, _business_day(y, m, last), -mrng.randint(1500, 4500), "Kontoführungsentgelt", bank_name, "fees")
        d = _business_day(y, m, 15)                                # the loan: interest, then the instalment
        if start <= d <= anchor:
            interest = int(round(outstanding * rate))
            pay = min(payment, outstanding + interest)
            add(loan["id"], d, -interest, "Sollzinsen", bank_name, "interest_charge")
            add(loan["id"], d, pay, "Tilgungsrate", company, "loan_repayment", checking["iban"])
            add(cid, d, -pay, f"Rate Investitionsdarlehen {loan_ref}", bank_name, "loan_repayment", loan["iban"])
            outstanding += interest - pay
        d = _business_day(y, m, 20)                                # tax reserve transfer
        add(cid, d, -reserve_cents, "Umbuchung Steuerrücklage", company, "savings_transfer", reserve["iban"])
        add(reserve["id"], d, reserve_cents, "Umbuchung vom Geschäftskonto", company, "savings_transfer",
            checking["iban"])
        y, m = nxt_y, nxt_m
    # openings: checking never overdrawn, loan owes the principal, reserve starts with a few months' worth
    running = low = 0
    for e in sorted(events[cid], key=lambda e: (e[0], e[1])):
        running += e[2]
        low = min(low, running)
    openings = {cid: max(irng.randint(20, 80) * 100000, -low + 500000), loan["id"]: -principal,
                reserve["id"]: reserve_cents * irng.randint(2, 8)}
    accounts = []
    for spec in specs:
        bal = openings[spec["id"]]
        txs = []
        for n, (d, _s, cents, text, cp, cp_iban, cat) in enumerate(sorted(events[spec["id"]],
                                                                          key=lambda e: (e[0], e[1])), 1):
            bal += cents
            txs.append(Transaction(f"{spec['id']}-{n:05d}", spec["id"], d, d, _money(cents), "EUR", text, cp,
                                   cp_iban, cat, _money(bal)))
        accounts.append(Account(id=spec["id"], kind=spec["kind"], name=spec["name"], currency="EUR",
                                bank_id="company", bank_name=bank_name, bank_code=blz, branch=None,
                                number=spec["number"], iban=spec["iban"], owner_name=company,
                                opening_balance=_money(openings[spec["id"]]), balance=_money(bal),
                                transactions=txs))
    return Ledger(customer_id=customer_id, market="DE", persona="company", owner_name=company,
                  owner_name_native=company, national_id=f"DE{irng.randint(10 ** 8, 10 ** 9 - 1)}", anchor=anchor,
                  months=months, accounts=accounts)


def extra_accounts(persona: str, seed: int, customer_id: str) -> list[dict]:
    """Static accounts a persona also holds (no bookings inside the window): Festgeld, VL-Fondsdepot,
    Rahmenkredit, Mietkaution...: (type, name, balance cents, holdings) dicts, deterministic."""
    rng = random.Random(stable_seed(seed, customer_id, "fino-extras", persona))
    out = []
    for type_, name, (lo, hi) in PERSONA_EXTRAS.get(persona, []):
        cents = rng.randint(lo, hi) * 100 if hi else 0
        holdings = []
        if type_ == "FONDSDEPOT":
            funds = rng.sample(sorted(FUNDS), 2)
            left = cents
            for i, isin in enumerate(funds):
                fname, _w, price = FUNDS[isin]
                price_c = int(price * rng.uniform(0.85, 1.2) * 100)
                share = left if i == len(funds) - 1 else left // 2
                units = Decimal(share) / Decimal(price_c)
                units = units.quantize(Decimal("0.001"))
                holdings.append(Holding(fname, isin, units, _money(int(price_c * rng.uniform(0.8, 1.05))),
                                        _money(price_c), "EUR"))
            cents = sum(int(h.value * 100) for h in holdings)
        credit_line = rng.randint(5, 30) * 100000 if type_ == "KREDIT_KONTO" else 0
        out.append({"type": type_, "name": name, "cents": cents, "holdings": holdings, "creditLine": credit_line,
                    "number": f"{rng.randint(10 ** 6, 10 ** 10 - 1)}"})
    return out


__all__ = ["ACCOUNT_TYPES", "BIC_BY_BLZ", "COMPANY_CATEGORY_KINDS", "FINO_BANK", "bic_for_blz", "bic_for_iban",
           "creditor_id", "end_to_end_reference", "extra_accounts", "fetched_account_id", "fetched_transaction_id",
           "generate_company_ledger", "gvc", "hex_id", "is_valid_creditor_id", "is_valid_iban", "mandate_reference",
           "uuid_from", "wkn"]

# Merchant category codes (ISO 18245) of card bookings by ledger category.
MCC = {"groceries": "5411", "restaurants": "5812", "coffee": "5814", "fuel": "5541", "public_transport": "4111",
       "taxi": "4121", "shopping": "5311", "electronics": "5732", "leisure": "7832", "travel": "4511",
       "health": "8021", "pharmacy": "5912", "cash_withdrawal": "6011", "subscriptions": "4899"}
