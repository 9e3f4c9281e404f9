"""finoOS account detection and history, contracts and companies (fino.md section 10), computed from the user's
bookings.

Result kinds registered with the platform's analysis run (after categorization's, before the cockpits'):

- ``account-detection``: ``{"accountsOverview": {"accountsView": [...], "creditsView": [...]}}``, what
  ``get_accounts_overview`` serves. Connected accounts plus accounts seen only as the counter-account of the user's
  transfers (``additionalAnalysesInfo.isUserAdded: true``).
- ``account-history``: ``{"histories": [...]}``, what ``get_account_history`` serves: every day of the last two years,
  rolled back exactly from each account's current balance through its bookings (ledger/analytics.balance_history).
- ``contracts``: ``{"contracts": [...]}``; ``list_contracts`` serves the array (minus contracts deleted since the run).

For the cockpits (helper C3): read ``results_so_far["contracts"]["contracts"]`` (public contract objects, deleted ones
already left out), ``results_so_far["account-detection"]["accountsOverview"]`` and
``results_so_far["account-history"]["histories"]``; ``self.company_for(name=..., creditor_id=...)`` finds a partner
in the company fixture (logo URL through ``logo_url(ctx, company)`` inside a request).

Everything is computed from the stored bookings of THAT user (manual upload or Banking UI), anchored on the run's
completion day (Berlin), in O(n log n) of the bookings.
"""
from __future__ import annotations

import re
import statistics
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from ...core.yamlio import load_yaml

from ...core.dispatch import asset_url
from ...ledger.analytics import INTERVALS, Booking, balance_history, categorise, iter_months, recurring_streams
from ...ledger.generator import FIXTURES, add_months
from . import german, model
from .errors import FinoError

BERLIN = ZoneInfo("Europe/Berlin")
COMPANIES_FILE = FIXTURES / "fino" / "companies.yaml"
DETECTION, HISTORY, CONTRACTS = "account-detection", "account-history", "contracts"   # = webhook events (s.11)
CATEGORIZATION_STATE = "categorization-state"   # categorization.py's internal result: [tid, aid, tags, run] items
DELETED = f"{model.PROVIDER}.deleted_contracts"  # per user: contractId -> {transactionIds, deletedAt}
BANKING_USER_SCOPES = ("banking", "banking-fetch", "banking-upload")
HISTORY_MONTHS = 24        # section 10: "daily balances for the last two years"
MAX_LOGO_QUERIES = 200     # section 10: "The maximum number of queries in a request is 200"
CENT = Decimal("0.01")

# --- account detection (section 10 "Account detection") ---------------------------------------------------------------
# creditsView holds the credit accounts (Kredite: loans and credit lines); everything else, credit cards included
# ("Bank-Account & CreditCards", reference), is in accountsView (inferred split).
CREDIT_TYPES = frozenset(("KREDITDARLEHEN", "KREDIT_KONTO"))
SAVING_TYPES = frozenset(("TAGESGELD", "FESTGELD", "SPARBUCH", "BAUSPAREN", "DEPOT", "FONDSDEPOT"))
_SAVING_TEXT = re.compile(r"umbuchung|übertrag|uebertrag|sparen|sparplan|spareinlage|tagesgeld|festgeld|sparbuch|"
                          r"bauspar|eigenes konto|eigenübertrag|rücklage|ruecklage|depot|wertpapier", re.I)
_LOAN_TEXT = re.compile(r"darlehen|kredit|tilgung|annuität|annuitaet|baufinanzierung|\brate\b", re.I)
_DETECTED_KIND = [(re.compile(r"bauspar", re.I), "BAUSPAREN", "Bausparvertrag"),
                  (re.compile(r"depot|wertpapier|sparplan", re.I), "DEPOT", "Depot"),
                  (re.compile(r"festgeld", re.I), "FESTGELD", "Festgeldkonto"),
                  (re.compile(r"sparbuch", re.I), "SPARBUCH", "Sparbuch")]
MIN_DETECTED_TRANSFERS = 2   # "regular transfers" (section 10): one transfer to an IBAN finds no account (inferred)

# --- contracts (section 10 "Contracts") -------------------------------------------------------------------------------
# analytics interval -> (finoOS interval, duration in days). The reference shows ANNUALLY with duration 365: duration is
# read as the interval's length in days (inferred); biweekly and bimonthly streams have no finoOS interval: no contract.
INTERVAL_NAMES = {"weekly": ("WEEKLY", 7), "monthly": ("MONTHLY", 30), "quarterly": ("QUARTERLY", 90),
                  "half_yearly": ("HALF_YEARLY", 180), "yearly": ("ANNUALLY", 365)}
RANGE_DAYS = {"weekly": 1}   # nextBookingRange = nextBookingDate -/+ 5 days (the reference example), weekly -/+ 1
MAX_AMOUNT_VARIATION = Decimal("0.5")   # (max - min) / median of a variable contract (utilities, wages)
# categories of partners whose contracts are yearly by nature: one direct debit older than two months is enough
SINGLE_BOOKING_YEARLY = frozenset(("CAR_TAX", "INSURANCE", "BROADCAST_FEE"))
SUBSCRIPTION_CATEGORIES = frozenset(("subscriptions", "communications", "utilities", "insurance", "education"))
CASH_GVC = frozenset((82, 83, 87))          # Bargeld
FEE_GVC = frozenset((805, 806, 808, 809))   # Abschluss, Entgelte, Zinsen
CARD_GVC = frozenset((106, 111))            # Kartenzahlung / Kartenverfügung
# categorization tags (categorization.py) -> contract category, when the partner is not in the company fixture
TAG_CATEGORIES = {"salary": "WORK", "pension": "PENSION", "child-benefit": "CHILD_BENEFIT",
                  "parental-allowance": "PARENTAL_ALLOWANCE", "rental": "RENTAL_INCOME", "alimony": "ALIMONY",
                  "insurance": "INSURANCE", "rent": "RENT", "credit": "LOAN", "security-saving-plan": "SAVINGS"}
NEUTRAL_CATEGORIES = {"salary": "WORK", "pension": "PENSION", "benefits": "CHILD_BENEFIT", "rent": "RENT",
                      "mortgage": "LOAN", "loan_repayment": "LOAN", "utilities": "ENERGY",
                      "communications": "TELECOMMUNICATION", "subscriptions": "SUBSCRIPTION", "insurance": "INSURANCE",
                      "education": "EDUCATION", "securities_purchase": "SAVINGS", "freelance": "WORK"}
_KEYWORD_CATEGORIES = [(re.compile(r"kfz[- ]?steuer|kraftfahrzeugsteuer", re.I), "CAR_TAX"),
                       (re.compile(r"rundfunk|beitragsservice", re.I), "BROADCAST_FEE"),
                       (re.compile(r"\bmiete\b|kaltmiete|warmmiete", re.I), "RENT"),
                       (re.compile(r"gehalt|lohn|bezüge", re.I), "WORK")]

# --- companies (section 10 "Companies") ------------------------------------------------------------------------
SEARCH_PROPERTIES = ("name", "tags", "creditorIDs", "websites", "addresses", "departments", "id", "industry",
                     "legalForm")
DEFAULT_SEARCH_LIMIT = 10
_LEGAL_FORMS = re.compile(r"\b(gmbh|ag|se|kg|ohg|eg|e\.?\s?v\.?|ug|co\.?|a\.?\s?g\.?|b\.?v\.?|ltd\.?|limited|ab|"
                          r"s\.?\s?[àa]\s?r\.?\s?l\.?|aör|vvag|kdör)(?=\W|$)", re.I)


def invalid(message: str) -> FinoError:
    return FinoError(message, type="invalidInput", status=400)


def not_found(message: str) -> FinoError:
    return FinoError(message, type="notFound", status=404)


def money(value: Decimal) -> float:
    """A Decimal amount as finoOS's JSON number (2 decimals; reference examples: ``"amount": -108``)."""
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def dec(value) -> Decimal:
    return Decimal(str(value or 0))


def berlin_day(epoch: int) -> date:
    return datetime.fromtimestamp(int(epoch), timezone.utc).astimezone(BERLIN).date()


def run_day(run: dict) -> date:
    """The Berlin calendar day the run completed: every result is anchored on it (the sandbox clock)."""
    at = datetime.fromisoformat(str(run["completed_at"]).replace("Z", "+00:00"))
    return at.astimezone(BERLIN).date()


def berlin_start(d: date) -> str:
    return datetime(d.year, d.month, d.day, tzinfo=BERLIN).isoformat()


def berlin_end(d: date) -> str:
    return datetime(d.year, d.month, d.day, 23, 59, 59, tzinfo=BERLIN).isoformat()


@lru_cache(maxsize=8192)
def norm(text) -> str:
    """Casefolded, accent-folded, single-spaced text for name comparisons."""
    text = unicodedata.normalize("NFKD", str(text or "")).casefold()
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).replace("ß", "ss")
    return " ".join(text.split())


@lru_cache(maxsize=8192)
def bare_name(text) -> str:
    """A company name without its legal form (``Allianz Versicherungs-AG`` -> ``allianz versicherungs``)."""
    out = _LEGAL_FORMS.sub(" ", norm(text).replace("&", " "))
    return " ".join(re.sub(r"[^\w+]+", " ", out).split())


def levenshtein(a: str, b: str, limit: int | None = None) -> int:
    """The Levenshtein edit distance (insert, delete, substitute: cost 1 each) of two strings; with ``limit``, any
    value above it may be returned as ``limit + 1`` (early exit)."""
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    if limit is not None and len(a) - len(b) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if limit is not None and min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def auto_fuzziness(term: str) -> int:
    """Elasticsearch's ``AUTO`` fuzziness (the reference: "levenshtein distance", "AUTO"/"1"/"2"): 0 edits for 1-2
    characters, 1 for 3-5, 2 for longer terms."""
    n = len(term)
    return 0 if n <= 2 else 1 if n <= 5 else 2


# ======================================================================================================================
# the company fixture
# ======================================================================================================================
@dataclass(frozen=True)
class Directory:
    """The company fixture with its lookup tables (loaded once)."""
    companies: tuple
    by_id: dict
    by_creditor: dict
    by_name: dict       # norm(name | alias | brand) -> company
    by_bare: dict       # bare_name(...) -> company
    by_bank_code: dict
    by_bic8: dict
    by_domain: dict


@lru_cache(maxsize=1)
def directory() -> Directory:
    """Load fixtures/fino/companies.yaml and check it: unique ids, valid SEPA creditor ids (mod 97-10), 32-char
    logo ids, logo files present."""
    data = load_yaml(COMPANIES_FILE)
    companies = tuple(data["companies"])
    by_id, by_creditor, by_name, by_bare, by_bank, by_bic, by_domain = {}, {}, {}, {}, {}, {}, {}
    logos = Path(__file__).resolve().parent / "assets"
    for c in companies:
        if c["id"] in by_id:
            raise ValueError(f"{COMPANIES_FILE}: duplicate company id {c['id']}")
        by_id[c["id"]] = c
        for cid in c.get("creditorIDs") or []:
            if not german.is_valid_creditor_id(cid):
                raise ValueError(f"{COMPANIES_FILE}: {c['name']}: invalid SEPA creditor id {cid}")
            by_creditor.setdefault(cid, c)
        if not re.fullmatch(r"[a-z0-9]{32}", c.get("logoID", "")):
            raise ValueError(f"{COMPANIES_FILE}: {c['name']}: logoID must be 32 lowercase alphanumerics")
        if not (logos / c["logo"]).is_file():
            raise ValueError(f"{COMPANIES_FILE}: {c['name']}: logo file {c['logo']} missing under {logos}")
        for text in (c["name"], c.get("brand") or "", *(c.get("aliases") or [])):
            if text:
                by_name.setdefault(norm(text), c)
                by_bare.setdefault(bare_name(text), c)
        for code in c.get("bankCodes") or []:
            by_bank.setdefault(code, c)
        for bic in c.get("bics") or []:
            by_bic.setdefault(bic[:8].upper(), c)
        if c.get("domain"):
            by_domain.setdefault(c["domain"].lower(), c)
    return Directory(companies, by_id, by_creditor, by_name, by_bare, by_bank, by_bic, by_domain)


def company_for(name: str | None = None, creditor_id: str | None = None) -> dict | None:
    """The fixture company behind a payment partner: by SEPA creditor id first, then by its exact name, alias or
    brand (casefolded), then by the name without legal form. None for a private person or an unknown firm."""
    d = directory()
    if creditor_id and creditor_id.upper() in d.by_creditor:
        return d.by_creditor[creditor_id.upper()]
    if not name:
        return None
    bare = bare_name(name)
    return d.by_name.get(norm(name)) or (d.by_bare.get(bare) if bare else None)


def logo_url(ctx, company: dict) -> str:
    """Absolute URL of a company's SVG logo, served by the sandbox (Provider.assets_dir, core.dispatch.asset_url)."""
    return asset_url(ctx, company["logo"])


def _address(c: dict) -> dict:
    a = c["address"]
    street, extra = a["street"], ""
    if street.startswith("Postfach"):
        street, extra = "", street
    return {"city": a["city"], "countryCode": a["countryCode"], "houseNumber": a["houseNumber"],
            "postcode": a["postcode"], "street": street, "streetAdditionalInfo": extra}


def render_company(ctx, c: dict) -> dict:
    """A fixture company as section 10's company model."""
    contact = c["contact"]
    contacts = {"email": contact["email"], "fax": contact["fax"], "telephone": contact["telephone"]}
    pref = contact["preferredContact"]
    info = {"address": _address(c), "contacts": contacts,
            "tags": [{"name": "default", "preferredContact": pref}, {"name": "account-change",
                                                                    "preferredContact": pref}]}
    return {"addresses": [_address(c)], "attributes": {"brand": c["brand"], "domain": c["domain"]},
            "contactInformations": [info], "creditorIDs": list(c.get("creditorIDs") or []),
            "departments": [{"addresses": [_address(c)], "contactInformations": [contacts], "name": name}
                            for name in c.get("departments") or []],
            "foundingDate": c["foundingDate"], "id": c["id"], "ignoreCreditor": False, "industry": c["industry"],
            "legalForm": c["legalForm"], "logos": [{"type": "svg", "url": logo_url(ctx, c)}], "name": c["name"],
            "tags": list(c.get("tags") or []), "terminationDate": None, "websites": [dict(w) for w in c["websites"]]}


def contract_partner(company: dict | None, name: str, creditor_id: str) -> dict:
    """Section 10's ``contractPartner``: the fixture company's data, or only what the booking shows."""
    if company is None:
        return {"additionalInfos": {"change_url": "", "preferred_contact": ""},
                "address": {"city": "", "countryCode": "", "postCode": "", "street": "", "streetAdditional": None,
                            "streetNumber": ""},
                "contact": {"email": "", "fax": "", "phone": "", "preferredContact": "", "website": ""},
                "creditorIds": [creditor_id] if creditor_id else [], "id": "", "name": name, "tags": []}
    a, contact = company["address"], company["contact"]
    sepa = next((w["url"] for w in company["websites"] if w["type"] == "sepa_info"), "")
    main = next((w["url"] for w in company["websites"] if w["type"] == "main_page"), "")
    return {"additionalInfos": {"change_url": sepa, "preferred_contact": contact["preferredContact"]},
            "address": {"city": a["city"], "countryCode": a["countryCode"], "postCode": a["postcode"],
                        # the reference example: "street": "Postfach 42 20", "streetAdditional": null
                        "street": a["street"], "streetAdditional": None, "streetNumber": a["houseNumber"]},
            "contact": {"email": contact["email"], "fax": contact["fax"], "phone": contact["telephone"],
                        "preferredContact": contact["preferredContact"], "website": main},
            # the company's creditor ids, and the one its debits here carry (a partner found by name)
            "creditorIds": list(dict.fromkeys([*(company.get("creditorIDs") or []), *([creditor_id] if creditor_id
                                                                                      else [])])),
            "id": str(company["id"]), "name": company["name"],
            "tags": list(company.get("tags") or [])}


# ======================================================================================================================
# the user's bookings as the analysis sees them
# ======================================================================================================================
@dataclass(frozen=True)
class Tx:
    """One stored transaction, normalised for the analysis."""
    id: str
    account_id: str
    day: date
    amount: Decimal
    partner: str
    iban: str
    creditor: str
    mref: str
    purpose: str
    gvc: int
    mcc: str
    doc: dict

    @property
    def text(self) -> str:
        return f"{self.purpose} {self.doc.get('bookingText') or ''} {self.partner}"


def _tx(doc: dict, account_id: str | None = None) -> Tx:
    partner = doc.get("paymentPartner") or {}
    try:
        gvc = int(doc.get("transactionCode") or 0)
    except (TypeError, ValueError):
        gvc = 0
    return Tx(doc["transactionId"], doc.get("accountId") or account_id, berlin_day(doc["bookingDate"]), dec(doc.get("amount")),
              str(partner.get("name") or "").strip(), str(partner.get("iban") or "").replace(" ", "").upper(),
              str(partner.get("creditorId") or "").strip().upper(), str(doc.get("mref") or "").strip(),
              str(doc.get("purpose") or ""), gvc, str(doc.get("merchantCategoryCode") or ""), doc)


def user_data(scope, user_id: str) -> list[tuple[dict, list[Tx]]]:
    """(account document, its transactions oldest first) for every stored account of the user."""
    out = []
    for account in model.accounts(scope, user_id).list():
        # the account is the collection's scope: a stored transaction need not repeat its accountId
        txs = sorted((_tx(t, account["accountId"]) for t in model.transactions(scope, user_id,
                                                                                  account["accountId"]).iter()),
                     key=lambda t: (t.day, t.id))
        out.append((account, txs))
    return out


# ======================================================================================================================
# account detection
# ======================================================================================================================
def month_stats(bookings: list[tuple[date, Decimal]], since: date, until: date) -> dict:
    """Section 10 ``analysis``: mean and median per calendar month of [since, until] of the net flow, the earnings
    (credits) and the spendings (debits, negative), months without bookings counting as 0 (inferred definition)."""
    months = list(iter_months(since, until))
    earning = {m: Decimal(0) for m in months}
    spending = {m: Decimal(0) for m in months}
    for day, amount in bookings:
        key = (day.year, day.month)
        if key not in earning:
            continue
        if amount > 0:
            earning[key] += amount
        else:
            spending[key] += amount
    net = [earning[m] + spending[m] for m in months] or [Decimal(0)]
    ins = [earning[m] for m in months] or [Decimal(0)]
    outs = [spending[m] for m in months] or [Decimal(0)]

    def mean(xs):
        return sum(xs, Decimal(0)) / len(xs)
    return {"average": money(mean(net)), "averageEarning": money(mean(ins)), "averageSpending": money(mean(outs)),
            "median": money(statistics.median(net)), "medianEarning": money(statistics.median(ins)),
            "medianSpending": money(statistics.median(outs))}


def _av(doc: dict, bookings: list[tuple[date, Decimal]], today: date, user_added: bool) -> dict:
    since = min((d for d, _ in bookings), default=today)
    since = min(since, today)
    overdraft = doc.get("overdraft") or {}
    return {"accountId": doc["accountId"], "accountNumber": doc.get("accountNumber") or "",
            "additionalAnalysesInfo": {"analysis": month_stats(bookings, since, today),
                                       "analysisPeriod": {"since": berlin_start(since), "until": berlin_end(today)},
                                       "isUserAdded": user_added},
            "balance": money(dec(doc.get("balance"))), "bankCode": doc.get("bankCode") or "",
            "bankName": doc.get("bankName") or "", "bic": doc.get("bic") or "",
            "currency": doc.get("currency") or "EUR",
            "iban": doc.get("iban") or "", "icon": doc.get("icon") or "", "name": doc.get("name") or "",
            # section 10: overDraft is a string here (a number in the cockpit's account)
            "overDraft": f"{dec(overdraft.get('amount')).quantize(CENT)}",
            "overDraftAvailable": bool(overdraft.get("available")), "owner": doc.get("owner") or "",
            "type": doc.get("type") or "UNKNOWN"}


def _own_name(partner: str, owners: set[str]) -> bool:
    p = norm(partner)
    if not p:
        return False
    tokens = set(p.replace(",", " ").split())
    return any(p == o or (len(o.split()) >= 2 and set(o.split()) <= tokens) for o in owners)


def detected_accounts(tenant: str, user_id: str, data, today: date) -> tuple[list[dict], list[dict]]:
    """Accounts the user's transfers reveal (section 10: "e.g. a savings account receiving transfers"): an IBAN that
    is not a connected account and receives or sends at least two transfers that are savings (the owner's own name as
    partner, or a savings purpose: Umbuchung, Sparen, Tagesgeld, Bauspar, Depot...) -> accountsView; or loan
    instalments (Darlehen, Kredit, Tilgung, SEPA purpose LOAR) -> creditsView. The counter-account sees the mirrored
    bookings; its balance is what the user moved there in the observed period (inferred: the bank's own balance is
    unknown; loans: 0)."""
    own = {doc.get("iban", "").replace(" ", "").upper() for doc, _ in data if doc.get("iban")}
    owners = {norm(doc.get("owner")) for doc, _ in data if doc.get("owner")}
    flows: dict[str, list[Tx]] = defaultdict(list)
    for _, txs in data:
        for t in txs:
            if t.iban and t.iban not in own and re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", t.iban):
                flows[t.iban].append(t)
    savings, credits = [], []
    for iban in sorted(flows):
        txs = flows[iban]
        saving = [t for t in txs if t.gvc not in CARD_GVC and (
            _own_name(t.partner, owners) or _SAVING_TEXT.search(t.purpose))]
        loan = [t for t in txs if t.amount < 0 and (
            (t.doc.get("sepaPurposeCode") or "").upper() == "LOAR" or _LOAN_TEXT.search(t.purpose))]
        chosen, kind = (loan, "loan") if len(loan) >= MIN_DETECTED_TRANSFERS and len(loan) >= len(saving) else (
            (saving, "saving") if len(saving) >= MIN_DETECTED_TRANSFERS else ([], None))
        if not kind:
            continue
        if kind == "loan":
            type_, name = "KREDITDARLEHEN", "Darlehen"
        else:
            type_, name = "TAGESGELD", "Tagesgeldkonto"
            words = " ".join(t.purpose for t in chosen)
            for pattern, t_, n_ in _DETECTED_KIND:
                if pattern.search(words):
                    type_, name = t_, n_
                    break
        mirrored = [(t.day, -t.amount) for t in chosen]
        bank_code = iban[4:12] if iban.startswith("DE") and len(iban) == 22 else ""
        bank = directory().by_bank_code.get(bank_code)
        moved = sum((a for _, a in mirrored), Decimal(0))
        doc = {"accountId": german.fetched_account_id("detected", tenant, user_id, iban),
               "accountNumber": iban[12:].lstrip("0") if bank_code else "", "balance": 0 if kind == "loan" else moved,
               "bankCode": bank_code, "bankName": (bank or {}).get("brand", ""), "bic": german.bic_for_iban(iban),
               "currency": "EUR", "iban": iban, "name": name, "overdraft": {"amount": 0, "available": False},
               "owner": chosen[-1].partner if kind == "saving" else "", "type": type_}
        (credits if kind == "loan" else savings).append(_av(doc, mirrored, today, True))
    return savings, credits


# ======================================================================================================================
# contracts
# ======================================================================================================================
def _candidate(t: Tx) -> bool:
    """Bookings that can belong to a contract: not cash, not bank fees and interest, not empty."""
    return t.amount != 0 and t.gvc not in CASH_GVC and t.gvc not in FEE_GVC and t.mcc != "6011"


def _group_key(t: Tx) -> str | None:
    """The partner a contract is with: the SEPA creditor id and mandate (one mandate = one contract), else the
    partner's name, else its IBAN; direction apart (an obligation and a receivable are two contracts)."""
    direction = "in" if t.amount > 0 else "out"
    if t.creditor:
        return f"{direction}|cid|{t.creditor}|{t.mref}"
    if t.partner:
        return f"{direction}|name|{norm(t.partner)}"
    if t.iban:
        return f"{direction}|iban|{t.iban}"
    return None


def _streams(txs: list[Tx], keyer, max_variation: Decimal | None = MAX_AMOUNT_VARIATION) -> tuple[list, list[Tx]]:
    """(recurring streams, the bookings of groups that formed none) of ``txs`` grouped by ``keyer``."""
    by_id = {t.id + "\x1f" + t.account_id: t for t in txs}
    keys = [keyer(t) for t in txs]
    sizes: dict[str, int] = defaultdict(int)
    for k in keys:
        sizes[k] += 1
    # a group of one booking is never a stream (analytics.MIN_COUNT >= 2): not worth an interval search
    bookings = [Booking(t.day, t.amount, "contract", k, ref=t.id + "\x1f" + t.account_id)
                for t, k in zip(txs, keys) if sizes[k] > 1]
    streams = recurring_streams(bookings, max_variation=max_variation, by_category=False)
    used = {b.ref for s in streams for b in s.bookings}
    return [(s, [by_id[b.ref] for b in s.bookings]) for s in streams], [t for t in txs if t.id + "\x1f" +
                                                                         t.account_id not in used]


def _neutral(t: Tx) -> str | None:
    try:
        return t.doc.get("_category") or categorise(t.partner, t.purpose, t.amount, mcc=t.mcc or None,
                                                    gvc=t.gvc or None)
    except (TypeError, ValueError):   # a malformed MCC or GVC decides nothing
        return None


def _subscription(t: Tx) -> bool:
    """A card payment that can be a contract: to a company of the fixture with a contract category (Netflix,
    Spotify, a gym), or categorised as a subscription, telecom, utility, insurance or education payment."""
    company = company_for(t.partner, t.creditor)
    return bool(company and company.get("category")) or _neutral(t) in SUBSCRIPTION_CATEGORIES


def _category(company, txs: list[Tx], tags: dict) -> str:
    if company and company.get("category"):
        return company["category"]
    words = " ".join(t.text for t in txs)
    for pattern, category in _KEYWORD_CATEGORIES[:2]:
        if pattern.search(words):
            return category
    counts: dict[str, int] = defaultdict(int)
    for t in txs:
        for tag in tags.get((t.account_id, t.id), ()):
            if tag in TAG_CATEGORIES:
                counts[TAG_CATEGORIES[tag]] += 1
    if counts:
        return min(counts, key=lambda c: (-counts[c], c))
    neutral = _neutral(txs[-1])
    if neutral in NEUTRAL_CATEGORIES:
        return NEUTRAL_CATEGORIES[neutral]
    for pattern, category in _KEYWORD_CATEGORIES[2:]:
        if pattern.search(words):
            return category
    return "OTHER"


def _contract_id(tenant: str, user_id: str, key: str, generation: int) -> str:
    return german.uuid_from("fino-contract", tenant, user_id, key, generation)


def detect_contracts(tenant: str, user_id: str, data, today: date, tags: dict, tombstones: dict,
                     detected_savings: frozenset = frozenset()) -> list[dict]:
    """Contracts (section 10): recurring bookings with one partner (weekly .. yearly, a few misses allowed).

    Grouping: creditor id + mandate reference (one SEPA mandate = one contract, whatever its amounts), else the
    partner's name or IBAN (amounts spread (max - min) at most half their median); a group that forms no stream is
    tried again per exact amount (two mandates of one insurer). Card payments count only with one fixed amount at a
    subscription-like partner (a streaming service, not a supermarket). A single direct debit 2-12 months old to a
    car-tax, insurance or broadcast-fee company of the fixture is an ANNUALLY contract (the reference example shows
    one transaction). Transfers between the user's own accounts (connected, or the savings accounts detection found:
    ``detected_savings``) are no contracts; loan instalments to a connected loan account are. ``tombstones``
    (contractId -> transactionIds of deleted contracts): a contract whose bookings are all deleted ones stays
    deleted; new bookings make it a new contract with a new contractId (inferred)."""
    accounts = {doc["accountId"]: doc for doc, _ in data}
    own = {doc.get("iban", "").replace(" ", "").upper(): doc for doc, _ in data if doc.get("iban")}
    owners = {norm(doc.get("owner")) for doc, _ in data if doc.get("owner")}
    txs = []
    for doc, account_txs in data:
        for t in account_txs:
            if not _candidate(t) or _group_key(t) is None:
                continue
            target = own.get(t.iban)
            if target is not None and target.get("type") not in CREDIT_TYPES:
                continue   # an internal transfer (savings, credit card settlement)
            if doc.get("type") in CREDIT_TYPES and t.amount > 0:
                continue   # the instalment arriving on the loan account: the giro side is the contract
            if t.iban and t.iban in detected_savings:
                continue   # to a savings account the transfers revealed (isUserAdded)
            if target is None and _own_name(t.partner, owners) and t.gvc not in (153,):
                continue   # to an own account elsewhere (account detection's business)
            txs.append(t)
    # a SEPA mandate (creditor id + mandate reference) is one contract whatever its amounts; other partners only
    # with amounts within +-50 % of their median
    # with one fixed amount (card payments: only so, grouped by amount at once, which keeps a supermarket's
    # thousands of card payments out of the interval search)
    cards = [t for t in txs if t.gvc in CARD_GVC or t.mcc]
    others = [t for t in txs if not (t.gvc in CARD_GVC or t.mcc)]
    mandates, rest = _streams([t for t in others if t.creditor], _group_key, max_variation=None)
    streams, rest = _streams(rest + [t for t in others if not t.creditor], _group_key)
    more, rest = _streams(rest + cards, lambda t: f"{_group_key(t)}|{t.amount}")
    found = [(_group_key(ts[0]), s, ts) for s, ts in mandates + streams] + [
        (f"{_group_key(ts[0])}|{ts[0].amount}", s, ts) for s, ts in more]
    left = defaultdict(int)
    for t in rest:
        left[_group_key(t)] += 1
    contracts = []
    for key, stream, items in found:
        if stream.interval not in INTERVAL_NAMES:
            continue
        if (items[0].gvc in CARD_GVC or items[0].mcc) and not _subscription(items[-1]):
            continue   # equal card amounts at a supermarket by chance are no subscription
        contracts.append(_contract(tenant, user_id, key, stream.interval, stream.next_expected, items, today, tags,
                                   tombstones, accounts))
    # single yearly direct debits of known partners (e.g. KfZ-Steuer to the Bundeskasse, reference example)
    for t in rest:
        if not t.creditor or t.amount >= 0 or left[_group_key(t)] != 1 or not 60 <= (today - t.day).days <= 380:
            continue
        company = company_for(t.partner, t.creditor)
        if company is None or company.get("category") not in SINGLE_BOOKING_YEARLY:
            continue
        contracts.append(_contract(tenant, user_id, f"{_group_key(t)}|{t.amount}", "yearly",
                                   add_months(t.day, 12), [t], today, tags, tombstones, accounts))
    contracts = [c for c in contracts if c is not None]
    contracts.sort(key=lambda c: (not c["isActive"], norm(c["contractPartner"]["name"]), c["contractId"]))
    return contracts


def _contract(tenant, user_id, key, interval, next_day, items: list[Tx], today, tags, tombstones, accounts):
    ids = [t.id for t in items]
    generation = 0
    while True:   # a deleted contract stays deleted until bookings beyond the deleted ones appear (inferred)
        contract_id = _contract_id(tenant, user_id, key, generation)
        tomb = tombstones.get(contract_id)
        if tomb is None:
            break
        if set(ids) <= set(tomb):
            return None
        generation += 1
    last = items[-1]
    company = company_for(last.partner, last.creditor)
    name, unit = INTERVAL_NAMES[interval]
    tolerance = RANGE_DAYS.get(interval, 5)
    amounts = {t.amount for t in items}
    active = today <= next_day + timedelta(days=INTERVALS[interval][2])
    return {"amount": money(last.amount), "amountConsistency": "fix" if len(amounts) == 1 else "variabel",
            # (inferred) "privacy": the partner is a private person (no company, no creditor id), e.g. a landlord
            "attributes": ["privacy"] if company is None and not last.creditor else [],
            "category": _category(company, items, tags), "contractId": contract_id,
            "contractPartner": contract_partner(company, last.partner or last.iban, last.creditor),
            "duration": unit, "interval": name, "isActive": active, "mref": last.mref,
            "nextBookingDate": next_day.isoformat(),
            "nextBookingRange": [(next_day - timedelta(days=tolerance)).isoformat(),
                                 (next_day + timedelta(days=tolerance)).isoformat()],
            "transactions": [{"transactionId": t.id} for t in items]}


# ======================================================================================================================
# the area
# ======================================================================================================================
class Detection:
    def setup(self) -> None:
        """Register account detection, account history and contracts as analysis result kinds (after
        categorization's, whose tags the contract categories use) and load the company fixture once."""
        directory()
        self.register_result(DETECTION, self._compute_detection)
        self.register_result(HISTORY, self._compute_history)
        self.register_result(CONTRACTS, self._compute_contracts)

    def company_for(self, name: str | None = None, creditor_id: str | None = None) -> dict | None:
        """The fixture company of a payment partner (see module function ``company_for``)."""
        return company_for(name, creditor_id)

    def forget_user(self, tenant: str, user_id: str) -> None:
        """Platform hook on user deletion: drop the user's deleted-contract marks."""
        self._tombstones(self._scope(tenant), user_id).clear()

    def _tombstones(self, scope, user_id: str):
        return self.sb.collection(scope.tenant, DELETED, scope=user_id, id_field="contractId")

    # --- result computation ---------------------------------------------------------------------------------------
    def _user_data(self, scope, user_id: str, run: dict):
        """``user_data`` read once per run: the three kinds of one run share it (the bookings a run sees)."""
        key = (scope.tenant, user_id, run["id"])
        cached = getattr(self, "_detection_cache", None)
        if cached is None or cached[0] != key:
            cached = self._detection_cache = (key, user_data(scope, user_id))
        return cached[1]

    def _compute_detection(self, scope, user_id: str, run: dict, results: dict) -> dict:
        today = run_day(run)
        data = self._user_data(scope, user_id, run)
        accounts, credits = [], []
        for doc, txs in data:
            view = _av(doc, [(t.day, t.amount) for t in txs], today, False)
            (credits if doc.get("type") in CREDIT_TYPES else accounts).append(view)
        savings, loans = detected_accounts(scope.tenant, user_id, data, today)
        return {"accountsOverview": {"accountsView": accounts + savings, "creditsView": credits + loans}}

    def _compute_history(self, scope, user_id: str, run: dict, results: dict) -> dict:
        today = run_day(run)
        since = add_months(today, -HISTORY_MONTHS)
        histories = []
        for doc, txs in self._user_data(scope, user_id, run):
            days = balance_history(dec(doc.get("balance")), [Booking(t.day, t.amount, "", "") for t in txs], since,
                                   today)
            daily = [{"balance": money(b), "date": d.isoformat()} for d, b in days]
            histories.append({"account": {"accountId": doc["accountId"]}, "dailyBalances": daily,
                              "startingBalance": dict(daily[0])})
        return {"histories": histories}

    def _compute_contracts(self, scope, user_id: str, run: dict, results: dict) -> dict:
        state = results.get(CATEGORIZATION_STATE) or {}
        tags = {(item[1], item[0]): item[2] for item in state.get("items") or []}
        tombstones = {doc["contractId"]: doc["transactionIds"] for doc in self._tombstones(scope, user_id).iter()}
        detection = results.get(DETECTION) or self._compute_detection(scope, user_id, run, results)
        savings = frozenset(a["iban"] for a in detection["accountsOverview"]["accountsView"]
                            if a["additionalAnalysesInfo"]["isUserAdded"])
        data = self._user_data(scope, user_id, run)
        self._detection_cache = None   # the last kind of the run: keep no bookings in memory
        return {"contracts": detect_contracts(scope.tenant, user_id, data, run_day(run), tags, tombstones, savings)}

    # --- operations: account detection and history (section 10) ----------------------------------------------------
    def get_accounts_overview(self, ctx, user_id):
        return self.read_result(ctx, user_id, DETECTION, "account-detection", raw=True)

    def get_account_detection_correlation(self, ctx, user_id):
        self.live_user(ctx, user_id)
        self.require_user_scopes(ctx, "account-detection")
        return self.correlation(ctx, user_id)

    def get_account_history(self, ctx, user_id):
        # no "account-history" user scope exists (section 4): balances come with the banking scopes, as the
        # account-history webhook does (platform.analysis_events)
        return self.read_result(ctx, user_id, HISTORY, *BANKING_USER_SCOPES, raw=True)

    def get_account_history_correlation(self, ctx, user_id):
        self.live_user(ctx, user_id)
        self.require_user_scopes(ctx, *BANKING_USER_SCOPES)
        return self.correlation(ctx, user_id)

    # --- operations: contracts (section 10) ---------------------------------------------------------------------------
    def _live_contracts(self, ctx, user_id: str) -> list[dict]:
        """The newest completed run's contracts minus the ones deleted since."""
        result = self.read_result(ctx, user_id, CONTRACTS, "contracts")
        tombs = self._tombstones(ctx, user_id)
        return [c for c in result["contracts"] if tombs.get(c["contractId"]) is None]

    def list_contracts(self, ctx, user_id):
        return self._live_contracts(ctx, user_id)

    def _bury(self, ctx, user_id: str, contract: dict) -> None:
        self._tombstones(ctx, user_id).put(contract["contractId"], {
            "contractId": contract["contractId"], "deletedAt": ctx.now().isoformat(),
            "transactionIds": [t["transactionId"] for t in contract["transactions"]]})

    def delete_contracts(self, ctx, user_id):
        for contract in self._live_contracts(ctx, user_id):
            self._bury(ctx, user_id, contract)
        return None

    def delete_contract(self, ctx, user_id, contract_id):
        contract = next((c for c in self._live_contracts(ctx, user_id) if c["contractId"] == contract_id), None)
        if contract is None:
            raise not_found("Contract not found")
        self._bury(ctx, user_id, contract)
        return None

    def get_contracts_correlation(self, ctx, user_id):
        self.live_user(ctx, user_id)
        self.require_user_scopes(ctx, "contracts")
        return self.correlation(ctx, user_id)

    # --- operations: companies (section 10 "Companies"; not user-scoped, no TenantID) ----------------------------
    def search_companies(self, ctx):
        """Weighted keyword search: per query, score = sum over its properties of weight x match quality (1 exact,
        0.75 a whole word or prefix, 0.5 a substring, 0.25 within the AUTO edit distance of a word); the best
        ``limit`` companies with a positive score, keyed by the query's keyword (inferred key)."""
        _logo_size(ctx)
        queries = ctx.body["queries"]
        keywords = [q["keyword"] for q in queries]
        dupes = sorted({k for k in keywords if keywords.count(k) > 1})
        if dupes:
            raise invalid(f"queries: keyword {dupes[0]!r} appears twice (results are keyed by keyword)")
        results = {}
        for q in queries:
            keyword = norm(q["keyword"])
            if not keyword:
                raise invalid("queries: keyword must not be blank")
            props = q.get("properties") or [{"name": "name", "weight": 1}]
            scored = []
            for c in directory().companies:
                score = sum(Decimal(str(p.get("weight", 1))) * _match(c, p["name"], keyword) for p in props)
                if score > 0:
                    scored.append((score, c))
            scored.sort(key=lambda sc: (-sc[0], norm(sc[1]["name"]), sc[1]["id"]))
            limit = int(q.get("limit") or DEFAULT_SEARCH_LIMIT)   # JSON Schema: 56.0 is an integer too
            results[q["keyword"]] = [{"company": render_company(ctx, c), "score": _number(s)}
                                     for s, c in scored[:limit]]
        return {"results": results}

    def search_company_logos(self, ctx):
        """Logo lookup (at most 200 queries): per query the first field that finds a company, in the order
        creditorID, iban (its bank code), bankCode, bic, domain, name (exact with exactMatch=true, else within the
        fuzziness edit distance); results carry the query's queryID, ``status`` ok or notFound. Order: by queryID
        (the reference guarantees none: match on queryID)."""
        _logo_size(ctx)
        exact = str(ctx.query.get("exactMatch", "false")).lower() == "true"
        fuzziness = str(ctx.query.get("fuzziness") or "AUTO").upper()
        queries = ctx.body["queries"]
        if len(queries) > MAX_LOGO_QUERIES:
            raise invalid(f"queries: at most {MAX_LOGO_QUERIES} queries per request, got {len(queries)}")
        out = []
        for q in queries:
            company = _logo_match(q, exact, fuzziness)
            if company is None:
                out.append({"company": "", "companyID": "", "logo": "", "queryID": q.get("queryID") or "",
                            "status": "notFound"})
            else:
                out.append({"company": company["brand"], "companyID": company["logoID"], "logo": logo_url(ctx, company),
                            "queryID": q.get("queryID") or "", "status": "ok"})
        out.sort(key=lambda r: r["queryID"])
        return {"results": out}


def _logo_size(ctx) -> int:
    """``logo-size``: the logo width (0 = original); every fixture logo is an SVG, which is never scaled (s.10)."""
    raw = ctx.query.get("logo-size")
    if raw in (None, ""):
        return 0
    return int(raw)   # the query schema admits digits only


def _number(value: Decimal):
    value = value.quantize(CENT, rounding=ROUND_HALF_UP).normalize()
    return int(value) if value == value.to_integral_value() else float(value)


def _values(c: dict, prop: str) -> list[str]:
    if prop == "name":
        return [c["name"], c.get("brand") or "", *(c.get("aliases") or [])]
    if prop == "tags":
        return list(c.get("tags") or [])
    if prop == "creditorIDs":
        return list(c.get("creditorIDs") or [])
    if prop == "websites":
        return [c.get("domain") or "", *(w["url"] for w in c["websites"])]
    if prop == "addresses":
        a = c["address"]
        return [a["city"], a["street"], a["postcode"], f"{a['street']} {a['houseNumber']}".strip()]
    if prop == "departments":
        return list(c.get("departments") or [])
    return [str(c.get(prop, ""))]   # id, industry, legalForm: the number as text


def _match(c: dict, prop: str, keyword: str) -> Decimal:
    """How well ``keyword`` (normalised) matches a company's property: the best over its values."""
    best = Decimal(0)
    for raw in _values(c, prop):
        value = norm(raw)
        if not value:
            continue
        if value == keyword or (prop == "name" and bare_name(raw) == bare_name(keyword) and bare_name(keyword)):
            return Decimal(1)
        if prop in ("id", "industry", "legalForm"):
            continue
        if prop == "creditorIDs":   # an identifier: exact or a prefix, never a near miss
            best = max(best, Decimal("0.75") if value.startswith(keyword) else Decimal(0))
            continue
        words = re.split(r"[^\w+&.]+", value)
        if keyword in words or value.startswith(keyword):
            best = max(best, Decimal("0.75"))
        elif keyword in value:
            best = max(best, Decimal("0.5"))
        elif len(keyword) >= 3 and any(levenshtein(keyword, w, auto_fuzziness(keyword)) <= auto_fuzziness(keyword)
                                       for w in words if w):
            best = max(best, Decimal("0.25"))
    return best


def _domain(text: str) -> str:
    text = text.strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text).split("/", 1)[0].split(":", 1)[0]
    return text[4:] if text.startswith("www.") else text


def _logo_match(q: dict, exact: bool, fuzziness: str) -> dict | None:
    d = directory()
    if q.get("creditorID"):
        c = d.by_creditor.get(q["creditorID"].strip().upper())
        if c:
            return c
    iban = (q.get("iban") or "").replace(" ", "").upper()
    if iban.startswith("DE") and len(iban) == 22 and iban[4:12] in d.by_bank_code:
        return d.by_bank_code[iban[4:12]]
    if q.get("bankCode") and q["bankCode"].strip() in d.by_bank_code:
        return d.by_bank_code[q["bankCode"].strip()]
    if q.get("bic") and q["bic"].strip().upper()[:8] in d.by_bic8:
        return d.by_bic8[q["bic"].strip().upper()[:8]]
    if q.get("domain"):
        host = _domain(q["domain"])
        while host:
            if host in d.by_domain:
                return d.by_domain[host]
            host = host.split(".", 1)[1] if "." in host else ""
    name = norm(q.get("name"))
    if not name:
        return None
    if exact:
        return d.by_name.get(name)
    allowed = auto_fuzziness(name) if fuzziness == "AUTO" else int(fuzziness)
    best = None
    for c in d.companies:
        for candidate in {norm(c["name"]), norm(c.get("brand")), bare_name(c["name"]),
                          *(norm(a) for a in c.get("aliases") or [])}:
            if not candidate:
                continue
            dist = levenshtein(name, candidate, allowed)
            if dist <= allowed and (best is None or (dist, c["id"]) < best[:2]):
                best = (dist, c["id"], c)
    return best[2] if best else None
