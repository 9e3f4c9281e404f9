"""Finpass credit and registry products (finpass.md sections 6, 7, 8): multi-bureau, corporate lookups, EPFO + CRIF
and the ITR analyzer.

Everything about a person comes from their one ledger (people.py): bureau tradelines are the ledger's loans and
cards (so the EMIs debited in their statements are the ``emiAmount`` of the loans in every bureau report), EPFO's
current employer and salary credits are the ledger's salary bookings, and ITR incomes are the ledger's income
credits per financial year. Corporate answers come from fixtures/in_companies.yaml (companies.py).
Scenario identifiers (finpass.md section 12) are listed in ``SCENARIOS``.
"""
from __future__ import annotations

import math
import random
import re
import string
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from ...core.clock import parse_instant
from ...ledger import add_months, stable_seed
from ...ledger.models import Account, Ledger
from . import companies, data
from .errors import FinpassError, InvalidInput, NotFoundError, NotReady
from .people import IST, People

BUREAUS = ("equifax", "experian", "cibil", "crif")
SCORE_TYPES = {"cibil": "CIBILTUSC3", "experian": "ERS", "equifax": "ERS4.0", "crif": "PERFORM_CONSUMER_2.0"}
NO_HIT_NAME = "no hit"                 # finpass.md s.12: every bureau success:false, overall failed
PARTIAL_HIT_NAME = "partial hit"       # sandbox addition: only cibil and crif answer
PARTIAL_HIT_BUREAUS = ("cibil", "crif")
NO_RECORD = "No record found"
ITR_KIND = "finpass.itr"
ITR_STATES = ["initiated", "processing", "completed"]
ITR_FAIL_STATES = ["initiated", "processing", "failed"]
ITR_BAD_PASSWORD, ITR_FAIL_LATER = "invalid", "fail-later"
ITR_YEARS = 3
PAN_MESSAGE = "Invalid PAN format. Expected format: ABCDE1234F"
ACCOUNT_TYPES = {"loan": "Personal Loan", "mortgage": "Housing Loan", "credit_card": "Credit Card"}
EMI_CATEGORIES = ("loan_repayment", "mortgage")
INCOME_HEADS = {"salary": "salary", "pension": "salary", "freelance": "business"}
ENQUIRY_MEMBERS = ("Bajaj Finance Ltd", "Tata Capital Ltd", "HDFC Bank", "ICICI Bank", "Aditya Birla Finance Ltd",
                   "Axis Bank", "Kotak Mahindra Bank", "IDFC First Bank", "Hero FinCorp Ltd")
ENQUIRY_PURPOSES = ("Personal Loan", "Credit Card", "Consumer Loan", "Two-Wheeler Loan", "Housing Loan")
PAST_EMPLOYERS = ("Tata Consultancy Services Ltd", "Wipro Ltd", "HCL Technologies Ltd", "Tech Mahindra Ltd",
                  "Larsen & Toubro Ltd", "Reliance Retail Ltd", "Bharti Airtel Ltd", "Mahindra & Mahindra Ltd",
                  "Asian Paints Ltd", "Hindustan Unilever Ltd", "Cognizant Technology Solutions India Pvt Ltd",
                  "Accenture Solutions Pvt Ltd")
EPFO_OFFICES = ("MHBAN", "PUPUN", "THTHA", "DLCPM", "KNBNG", "PYKRP", "TNMAS", "APHYD", "GJAHD", "WBCAL", "GNGGN")

SCENARIOS = [
    {"kind": "multi-bureau name", "value": "No Hit", "effect": "every bureau success:false (No record found), "
     "overall status failed", "source": "finpass.md section 12"},
    {"kind": "multi-bureau name", "value": "Partial Hit", "effect": "only cibil and crif answer; equifax and "
     "experian success:false, overall partial (completed if only those two were asked)", "source": "sandbox"},
    {"kind": "multi-bureau person", "value": "a person with no loans or cards (e.g. the student persona)",
     "effect": "no bureau holds a record: every bureau success:false, overall failed", "source": "sandbox"},
    {"kind": "corporate CIN/LLPIN/PAN", "value": "digits all 9, e.g. U99999MH9999PTC999999, AAA-9999, AAACZ9999Z",
     "effect": "404 NOT_FOUND", "source": "finpass.md section 12"},
    {"kind": "corporate", "value": "any CIN/LLPIN/PAN not in fixtures/in_companies.yaml",
     "effect": "404 NOT_FOUND", "source": "sandbox"},
    {"kind": "EPFO mobile_number", "value": "a person without salary credits (freelancer, retiree)",
     "effect": "404 NOT_FOUND (no EPFO member)", "source": "sandbox"},
    {"kind": "ITR password", "value": ITR_BAD_PASSWORD, "effect": "422 INVALID_CREDENTIALS at init",
     "source": "finpass.md section 12"},
    {"kind": "ITR password", "value": ITR_FAIL_LATER, "effect": "job ends failed with error_message",
     "source": "finpass.md section 12"},
]


class InvalidCredentials(FinpassError):
    """The income-tax e-filing portal refused the login (not the API keys: those are the 401 of section 2)."""

    status, code, error_code = 422, "invalid_credentials", "INVALID_CREDENTIALS"
    default_message = "Invalid credentials for the income tax e-filing portal"


def _money(value: Decimal) -> float:
    """INR as a JSON number with at most two decimals."""
    return float(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _rupees(value) -> int:
    return int(Decimal(value).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _ist(dt: datetime) -> str:
    return dt.astimezone(IST).isoformat(timespec="seconds")


def _month(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _text(body: dict, field: str) -> str:
    value = body.get(field)
    return value.strip() if isinstance(value, str) else ""


def person_dob(ledger: Ledger) -> date:
    """A date of birth that fits the persona (deterministic per ledger)."""
    rng = random.Random(stable_seed("finpass-dob", ledger.customer_id))
    low, high = {"student": (19, 24), "retiree": (61, 72), "high_earner_investor": (34, 52)}.get(ledger.persona,
                                                                                                 (25, 45))
    age_days = rng.randint(low * 365, high * 365 + 364)
    return ledger.anchor - timedelta(days=age_days)


# --------------------------------------------------------------------------------------------- bureau tradelines
def _ledger_start(ledger: Ledger) -> date:
    days = [t.booking_date for a in ledger.accounts for t in a.transactions]
    return min(days) if days else ledger.anchor


def _last4(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return digits[-4:].rjust(4, "0")


def _tradeline(ledger: Ledger, account: Account, start: date) -> dict:
    rng = random.Random(stable_seed("finpass-tradeline", ledger.customer_id, account.id))
    kind = account.kind
    txns = account.transactions
    if kind == "credit_card":
        payments = [t for t in txns if t.amount > 0 and t.category == "card_settlement"]
        opened = add_months(start, -rng.randint(12, 72)).replace(day=rng.randint(1, 28))
        outstanding = max(Decimal(0), -account.balance)
        high = max([Decimal(0)] + [-t.balance_after for t in txns])
        emi = None
        sanctioned = account.credit_limit
    else:
        payments = [t for t in txns if t.amount > 0 and t.category in EMI_CATEGORIES]
        first = payments[0].booking_date if payments else start
        opened = min(add_months(first, -1), start - timedelta(days=1))
        outstanding = max(Decimal(0), -account.balance)
        sanctioned = -account.opening_balance
        high = sanctioned
        emi = payments[-1].amount if payments else None
    history = sorted({_month(t.booking_date) for t in payments}, reverse=True)
    reported = max((t.booking_date for t in txns), default=ledger.anchor)
    return {
        "accountType": ACCOUNT_TYPES[kind],
        "memberName": account.bank_name,
        "accountNumber": "XXXXXX" + _last4(account.number),
        "ownership": "Individual",
        "accountStatus": "Active",
        "dateOpened": opened.isoformat(),
        "dateReported": reported.isoformat(),
        "lastPaymentDate": payments[-1].booking_date.isoformat() if payments else None,
        "dateClosed": None,
        "sanctionAmount": _money(sanctioned) if sanctioned is not None else None,
        "creditLimit": _money(account.credit_limit) if account.credit_limit is not None else None,
        "highCreditAmount": _money(high),
        "currentBalance": _money(outstanding),
        "amountOverdue": 0,
        "emiAmount": _money(emi) if emi is not None else None,
        "monthlyPayStatus": [{"date": m, "status": "0"} for m in history],
    }


def tradelines(ledger: Ledger) -> list[dict]:
    """The person's credit accounts as every bureau reports them (RBI: lenders report to all four bureaus)."""
    start = _ledger_start(ledger)
    return [_tradeline(ledger, a, start) for a in ledger.accounts if a.kind in ACCOUNT_TYPES]


def credit_score(ledger: Ledger, lines: list[dict], bureau: str, seed: int) -> int:
    """300-900: a clean repayment history raises it, card utilisation lowers it; each bureau differs a little."""
    limits = sum(Decimal(str(t["creditLimit"])) for t in lines if t["creditLimit"])
    used = sum(Decimal(str(t["currentBalance"])) for t in lines if t["accountType"] == "Credit Card")
    utilisation = float(used / limits) if limits else 0.0
    months = sum(len(t["monthlyPayStatus"]) for t in lines)
    score = 690 + min(months, 40) * 2 + 15 * min(len(lines), 4) - int(min(utilisation, 1.5) * 160)
    score += random.Random(stable_seed("finpass-score", seed, ledger.customer_id, bureau)).randint(-18, 18)
    return max(300, min(900, score))


def enquiries(ledger: Ledger, bureau: str, today: date) -> list[dict]:
    rng = random.Random(stable_seed("finpass-enquiries", ledger.customer_id, bureau))
    found = []
    for _ in range(rng.randint(0, 3)):
        day = today - timedelta(days=rng.randint(20, 360))
        found.append({"enquiryDate": day.isoformat(), "memberName": rng.choice(ENQUIRY_MEMBERS),
                      "enquiryPurpose": rng.choice(ENQUIRY_PURPOSES),
                      "enquiryAmount": rng.choice((50000, 100000, 200000, 300000, 500000, 1000000))})
    return sorted(found, key=lambda e: e["enquiryDate"], reverse=True)


def bureau_report(ledger: Ledger, bureau: str, seed: int, today: date, pan: str, mobile: str | None,
                  gender: str | None = None) -> dict | None:
    """One bureau's ``data`` (finpass.md section 6), or None when the bureau holds no record (no credit history)."""
    lines = tradelines(ledger)
    if not lines:
        return None
    score = credit_score(ledger, lines, bureau, seed)
    return {"credit_score": score, "report_date": today.isoformat(), "credit_report": [{
        "scores": [{"score": str(score), "scoreType": SCORE_TYPES[bureau]}],
        "personal_info": {"name": ledger.owner_name, "pan": pan, "mobile": mobile, "gender": gender,
                          "date_of_birth": person_dob(ledger).isoformat()},
        "accounts": lines,
        "enquiries": enquiries(ledger, bureau, today),
    }]}


# --------------------------------------------------------------------------------------------------------- EPFO
def _salary_credits(ledger: Ledger) -> list:
    return sorted((t for a in ledger.accounts if a.kind == "checking" for t in a.transactions
                   if t.category == "salary" and t.amount > 0), key=lambda t: (t.booking_date, t.id))


def epf_shares(salary_credit: Decimal) -> dict:
    """EPF contributions on a month's wages: EPF wages (basic + DA) = 45% of the salary credited, rounded to the
    rupee; employee 12%; employer 12% split into the pension fund (8.33% of wages up to 15,000, at most 1,250) and
    the EPF remainder (``employer_share``)."""
    wages = _rupees(Decimal(salary_credit) * Decimal("0.45"))
    employee = _rupees(Decimal(wages) * Decimal("0.12"))
    pension = min(_rupees(Decimal(min(wages, 15000)) * Decimal("0.0833")), 1250)
    return {"epf_wages": wages, "employee_share": employee, "employer_share": employee - pension,
            "pension_share": pension}


def _establishment(rng: random.Random) -> str:
    return f"{rng.choice(EPFO_OFFICES)}{rng.randint(1, 9999999):07d}000"


def epfo_record(ledger: Ledger, mobile: str, seed: int) -> dict | None:
    """The person's EPFO member record (None without salary credits: not an EPF member)."""
    credits = _salary_credits(ledger)
    if not credits:
        return None
    rng = random.Random(stable_seed("finpass-epfo", seed, ledger.customer_id))
    dob = person_dob(ledger)
    employer = credits[-1].counterparty
    first = credits[0].booking_date
    earliest_join = date(dob.year + 21, dob.month, min(dob.day, 28))
    joined = max(add_months(first, -rng.randint(1, 48)).replace(day=rng.randint(1, 28)),
                 min(earliest_join, first - timedelta(days=1)))
    establishment = _establishment(rng)
    latest = epf_shares(credits[-1].amount)
    history = [{"employer_name": employer, "establishment_id": establishment, "date_of_joining": joined.isoformat(),
                "date_of_exit": None, "pf_account_number": f"{establishment}{rng.randint(1, 9999999):07d}",
                "employee_share": latest["employee_share"], "employer_share": latest["employer_share"],
                "pension_share": latest["pension_share"], "last_contribution_month": _month(credits[-1].booking_date),
                "salary_credits": [{"month": _month(t.booking_date), "credit_date": t.booking_date.isoformat(),
                                    "amount": _money(t.amount), "narration": t.description,
                                    **epf_shares(t.amount)} for t in credits]}]
    # earlier employers, each left before the next one was joined (never before the member turned 21)
    exit_before = joined
    wages_factor = Decimal("0.8")
    others = [e for e in PAST_EMPLOYERS if e != employer]
    rng.shuffle(others)
    for name in others[:rng.randint(0, 2)]:
        left = exit_before - timedelta(days=rng.randint(1, 60))
        started = add_months(left, -rng.randint(12, 48))
        if started < earliest_join:
            break
        est = _establishment(rng)
        shares = epf_shares(credits[0].amount * wages_factor)
        history.append({"employer_name": name, "establishment_id": est, "date_of_joining": started.isoformat(),
                        "date_of_exit": left.isoformat(), "pf_account_number": f"{est}{rng.randint(1, 9999999):07d}",
                        "employee_share": shares["employee_share"], "employer_share": shares["employer_share"],
                        "pension_share": shares["pension_share"], "last_contribution_month": _month(left),
                        "salary_credits": []})
        exit_before, wages_factor = started, wages_factor * Decimal("0.8")
    return {"uan": data.gen_uan(random.Random(stable_seed("finpass-uan", seed, ledger.customer_id))),
            "name": ledger.owner_name, "date_of_birth": dob.isoformat(), "mobile": mobile, "kyc_verified": True,
            "total_employers": len(history), "employment_history": history}


# ---------------------------------------------------------------------------------------------------------- ITR
# new tax regime per assessment year (start year): standard deduction, slabs (upper bound, rate), rebate u/s 87A limit
TAX_RULES = {
    2023: (Decimal(0), [(250000, 0), (500000, 5), (750000, 10), (1000000, 15), (1250000, 20), (1500000, 25),
                        (None, 30)], 500000),
    2024: (Decimal(50000), [(300000, 0), (600000, 5), (900000, 10), (1200000, 15), (1500000, 20), (None, 30)],
           700000),
    2025: (Decimal(75000), [(300000, 0), (700000, 5), (1000000, 10), (1200000, 15), (1500000, 20), (None, 30)],
           700000),
    2026: (Decimal(75000), [(400000, 0), (800000, 5), (1200000, 10), (1600000, 15), (2000000, 20), (2400000, 25),
                            (None, 30)], 1200000),
}


def assessment_year(start: int) -> str:
    return f"{start}-{(start + 1) % 100:02d}"


def income_tax(taxable: Decimal, ay_start: int) -> int:
    """Tax under the new regime incl. 87A rebate, surcharge (10/15/25 %) and 4 % cess, to the rupee."""
    _, slabs, rebate = TAX_RULES[min(max(ay_start, 2023), 2026)]
    tax, lower = Decimal(0), Decimal(0)
    for upper, rate in slabs:
        top = taxable if upper is None else min(taxable, Decimal(upper))
        if top > lower:
            tax += (top - lower) * rate / 100
        if upper is None or taxable <= upper:
            break
        lower = Decimal(upper)
    if taxable <= rebate:
        tax = Decimal(0)
    surcharge = 25 if taxable > 20000000 else 15 if taxable > 10000000 else 10 if taxable > 5000000 else 0
    tax = tax * (100 + surcharge) / 100
    return _rupees(tax * Decimal("1.04"))


def standard_deduction(ay_start: int) -> Decimal:
    return TAX_RULES[min(max(ay_start, 2023), 2026)][0]


def income_by_month(ledger: Ledger) -> tuple[dict[str, dict[str, Decimal]], list[str]]:
    """{head: {YYYY-MM: credited}} for the ledger's income credits, and the months the ledger fully covers."""
    start, anchor = _ledger_start(ledger), ledger.anchor
    covered, m = [], start.replace(day=1)
    if start.day != 1:
        m = add_months(m, 1)
    while add_months(m, 1) - timedelta(days=1) <= anchor:
        covered.append(_month(m))
        m = add_months(m, 1)
    heads: dict[str, dict[str, Decimal]] = {}
    for a in ledger.accounts:
        if a.kind != "checking":
            continue
        for t in a.transactions:
            head = INCOME_HEADS.get(t.category)
            if head and t.amount > 0:
                bucket = heads.setdefault(head, {})
                bucket[_month(t.booking_date)] = bucket.get(_month(t.booking_date), Decimal(0)) + t.amount
    return heads, covered


def fy_income(by_month: dict[str, Decimal], covered: list[str], fy_start: int) -> Decimal:
    """One income head over the financial year April ``fy_start`` .. March: the credits booked in months the ledger
    covers; any other month gets the average covered month, 8 % less per year before the ledger (increments)."""
    if not covered:
        return Decimal(0)
    average = sum((by_month.get(m, Decimal(0)) for m in covered), Decimal(0)) / len(covered)
    first = date.fromisoformat(covered[0] + "-01")
    total = Decimal(0)
    for i in range(12):
        month = add_months(date(fy_start, 4, 1), i)
        key = _month(month)
        if key in covered:
            total += by_month.get(key, Decimal(0))
        else:
            back = max(0, (first.year - month.year) * 12 + first.month - month.month)
            total += average * Decimal("0.92") ** math.ceil(back / 12)
    return total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def itr_records(ledger: Ledger, today: date, seed: int) -> list[dict]:
    """The person's last ``ITR_YEARS`` returns filed by ``today`` (new regime), most recent first."""
    heads, covered = income_by_month(ledger)
    latest_ay = today.year if today.month >= 4 else today.year - 1
    records = []
    for ay in range(latest_ay, latest_ay - ITR_YEARS - 1, -1):
        rng = random.Random(stable_seed("finpass-itr", seed, ledger.customer_id, ay))
        filed = date(ay, 7, rng.randint(5, 31))
        if filed > today:
            continue
        salary = fy_income(heads.get("salary", {}), covered, ay - 1)
        receipts = fy_income(heads.get("business", {}), covered, ay - 1)
        business = _rupees(receipts / 2)              # presumptive income u/s 44ADA: 50 % of gross receipts
        gross = _rupees(salary) + business
        deductions = _rupees(min(standard_deduction(ay), salary))
        taxable = max(0, gross - deductions)
        tax = income_tax(Decimal(taxable), ay)
        tds = _rupees(Decimal(tax) * (1 + Decimal(rng.randint(-4, 7)) / 100)) + _rupees(receipts / 10)
        refund, demand = max(0, tds - tax), max(0, tax - tds)
        itr_type = ("ITR-4" if gross <= 5000000 else "ITR-3") if business else \
            ("ITR-1" if gross <= 5000000 else "ITR-2")
        records.append({
            "assessment_year": assessment_year(ay), "financial_year": assessment_year(ay - 1),
            "itr_type": itr_type, "filing_date": filed.isoformat(),
            "acknowledgement_number": f"{rng.randint(10 ** 14, 10 ** 15 - 1)}", "tax_regime": "new",
            "income_from_salary": _rupees(salary), "income_from_business": business,
            "gross_total_income": gross, "total_deductions": deductions, "net_taxable_income": taxable,
            "tax_payable": tax, "tds_amount": tds,
            "refund_status": ("Refund Issued" if ay < latest_ay else "Refund Processing") if refund else
            "Not Applicable", "refund_amount": refund, "demand_amount": demand})
        if len(records) == ITR_YEARS:
            break
    return records


# --------------------------------------------------------------------------------------------------- the service
class Bureaus:
    def setup(self) -> None:
        """ITR jobs walk initiated -> processing -> completed on the sandbox clock (poll every 5-10 s, s.8)."""
        self.sb.jobs.register_default(ITR_KIND, {"mode": "auto", "seconds": 5.0, "polls": 2})

    def _today(self, ctx) -> date:
        return ctx.now().astimezone(IST).date()

    # --- multi-bureau (finpass.md s.6, style A) --------------------------------------------------------------------
    def multi_bureau_fetch(self, ctx) -> dict:
        body = ctx.body
        consent = body.get("consent")
        if consent != "Y":
            raise InvalidInput("Consent is required to fetch credit reports (consent must be 'Y')",
                               code="consent_required")
        pan = _text(body, "pan").upper()
        if not data.is_pan(pan):
            raise InvalidInput(PAN_MESSAGE, code="invalid_pan")
        mobile = _text(body, "mobile_number")
        if not data.is_mobile(mobile):
            raise InvalidInput("Invalid mobile number. Expected a 10-digit Indian mobile number",
                               code="invalid_mobile_number")
        name = _text(body, "name")
        if not name:
            raise InvalidInput("name is required", code="invalid_name")
        gender = _text(body, "gender").lower()
        if gender not in ("male", "female"):
            raise InvalidInput("Invalid gender. Expected male or female", code="invalid_gender")
        bureaus = body.get("bureaus")
        if not isinstance(bureaus, list) or not bureaus:
            raise InvalidInput("bureaus must be a non-empty list of equifax, experian, cibil, crif",
                               code="invalid_bureaus")
        chosen = []
        for b in bureaus:
            b = b.strip().lower() if isinstance(b, str) else b
            if b not in BUREAUS:
                raise InvalidInput(f"Unsupported bureau {b!r}: expected equifax, experian, cibil or crif",
                                   code="invalid_bureaus")
            if b not in chosen:
                chosen.append(b)
        people = People(self.sb, ctx.tenant)
        ledger = people.ledger(people.key(mobile=mobile, pan=pan))
        seed, today = self.sb.seed.get(), self._today(ctx)
        scenario = re.sub(r"\s+", " ", name.lower())
        results = {}
        for b in chosen:
            report = None
            if scenario != NO_HIT_NAME and (scenario != PARTIAL_HIT_NAME or b in PARTIAL_HIT_BUREAUS):
                report = bureau_report(ledger, b, seed, today, pan, mobile, gender)
            results[b] = ({"success": True, "message": "Report fetched successfully", "data": report} if report
                          else {"success": False, "message": NO_RECORD, "data": None})
        ok = sum(r["success"] for r in results.values())
        status = "completed" if ok == len(results) else "partial" if ok else "failed"
        rng = ctx.sandbox.ids.rng(ctx.tenant, "finpass.mbf")
        return {"success": True, "status_code": 200, "message": "Success", "message_code": "success",
                "status": status, "pan": pan, "doc_id": "mbf_" + data.hex_id(rng, 24), "results": results}

    # --- corporate (finpass.md s.7, style B) ---------------------------------------------------------------------
    def corporate_cin_lookup(self, ctx) -> dict:
        cin = _text(ctx.body, "cin").upper()
        if not data.is_cin(cin):
            raise InvalidInput("Invalid CIN format. Expected 21 characters, e.g. L22210MH1995PLC084781")
        company = companies.find_cin(cin)
        if company is None:
            raise NotFoundError(f"No company found for CIN {cin}")
        return {"success": True, "message": "Company details fetched successfully",
                "data": companies.company_view(company)}

    def corporate_llpin_lookup(self, ctx) -> dict:
        llpin = _text(ctx.body, "llpin").upper()
        if not data.is_llpin(llpin):
            raise InvalidInput("Invalid LLPIN format. Expected format: AAA-1234")
        llp = companies.find_llpin(llpin)
        if llp is None:
            raise NotFoundError(f"No LLP found for LLPIN {llpin}")
        return {"success": True, "message": "LLP details fetched successfully", "data": companies.llp_view(llp)}

    def corporate_pan_lookup(self, ctx) -> dict:
        pan = _text(ctx.body, "pan").upper()
        if not data.is_pan(pan):
            raise InvalidInput(PAN_MESSAGE)
        found = companies.find_pan(pan)
        if found is None:
            raise NotFoundError(f"No entity found for PAN {pan}")
        return {"success": True, "message": "Entity details fetched successfully",
                "data": companies.entity_view(*found)}

    def corporate_company_autocomplete(self, ctx) -> dict:
        name = ctx.body.get("company_name")
        if not isinstance(name, str):
            raise InvalidInput("company_name is required")
        results = companies.autocomplete(name)
        return {"success": True, "message": "Autocomplete results fetched successfully",
                "total_results": len(results), "data": results}

    # --- EPFO + CRIF (finpass.md s.8, style B) -------------------------------------------------------------------
    def epfo_crif_combined_report(self, ctx) -> dict:
        mobile = _text(ctx.body, "mobile_number")
        if not data.is_mobile(mobile):
            raise InvalidInput("Invalid mobile number. Expected a 10-digit Indian mobile number")
        people = People(self.sb, ctx.tenant)
        key = people.key(mobile=mobile)
        ledger = people.ledger(key)
        seed, today = self.sb.seed.get(), self._today(ctx)
        epfo = epfo_record(ledger, mobile, seed)
        if epfo is None:
            raise NotFoundError("No EPFO record found for this mobile number")
        report = bureau_report(ledger, "crif", seed, today, people.pan_of(key), mobile)
        if report:
            inner = report["credit_report"][0]
            crif = {"status": "HIT", "credit_score": report["credit_score"], "report_date": report["report_date"],
                    "score_type": SCORE_TYPES["crif"], "accounts": inner["accounts"],
                    "enquiries": inner["enquiries"]}
        else:
            crif = {"status": "NO_HIT", "credit_score": None, "report_date": today.isoformat(),
                    "score_type": SCORE_TYPES["crif"], "accounts": [], "enquiries": []}
        return {"success": True, "message": "EPFO and CRIF report fetched successfully",
                "data": {"epfo": epfo, "crif": crif}}

    # --- ITR analyzer (finpass.md s.8, style B) ------------------------------------------------------------------
    def itr_init(self, ctx) -> dict:
        pan = _text(ctx.body, "username").upper()
        if not data.is_pan(pan):
            raise InvalidInput(PAN_MESSAGE)
        password = ctx.body.get("password")
        if not isinstance(password, str) or not password:
            raise InvalidInput("password is required")
        if password == ITR_BAD_PASSWORD:
            raise InvalidCredentials("Invalid credentials: the income tax e-filing portal rejected the login")
        rng = ctx.sandbox.ids.rng(ctx.tenant, "finpass.itr_job")
        job_id = "itr_job_" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(12))
        people = People(self.sb, ctx.tenant)
        key = people.key(pan=pan)
        people.ledger(key)      # anchor the person's ledger now
        fail = password == ITR_FAIL_LATER
        job = self.sb.jobs.create(ctx.tenant, ITR_KIND, ITR_FAIL_STATES if fail else ITR_STATES, job_id=job_id,
                                  failed_state="failed",
                                  data={"pan": pan, "person": key, "error_message": (
                                      "Login to the income tax e-filing portal failed: invalid credentials"
                                      if fail else None)})
        return {"success": True, "message": "ITR analysis job submitted successfully",
                "data": {"job_id": job_id, "status": job["state"], "pan": data.mask_pan(pan),
                         "created_at": _ist(parse_instant(job["created_at"]))}}

    def _itr_job(self, ctx, poll: bool) -> dict:
        params = ctx.body if isinstance(ctx.body, dict) else ctx.query
        job_id = params.get("job_id") if isinstance(params, dict) else None
        if not isinstance(job_id, str) or not job_id.strip():
            raise InvalidInput("job_id is required")
        job_id = job_id.strip()
        job = None
        if job_id.startswith("itr_job_"):
            jobs = self.sb.jobs
            job = jobs.poll(ctx.tenant, job_id) if poll else jobs.get(ctx.tenant, job_id)
        if job is None or job["kind"] != ITR_KIND:
            raise NotFoundError(f"ITR job {job_id} not found")
        return job

    def _itr_status(self, job: dict) -> dict:
        status = job["state"]
        error = None
        if status == "failed":
            error = job["data"].get("error_message") or (job.get("error") or {}).get("message") or "Job failed"
        return {"job_id": job["id"], "status": status, "pan": data.mask_pan(job["data"]["pan"]),
                "created_at": _ist(parse_instant(job["created_at"])),
                "updated_at": _ist(parse_instant(job["step_since"])), "error_message": error}

    def itr_status(self, ctx) -> dict:
        job = self._itr_job(ctx, poll=True)
        return {"success": True, "message": "ITR job status fetched successfully", "data": self._itr_status(job)}

    def itr_data(self, ctx) -> dict:
        job = self._itr_job(ctx, poll=False)
        if job["state"] != "completed":
            state = self._itr_status(job)
            detail = f"failed: {state['error_message']}" if job["state"] == "failed" else f"is {job['state']}"
            raise NotReady(f"ITR analysis job {detail}; data is available once the job is completed")
        people = People(self.sb, ctx.tenant)
        ledger = people.ledger(job["data"]["person"])
        done = parse_instant(job["step_since"]).astimezone(IST).date()
        records = itr_records(ledger, done, self.sb.seed.get())
        return {"success": True, "message": "ITR data fetched successfully",
                "data": {"job_id": job["id"], "pan": data.mask_pan(job["data"]["pan"]), "name": ledger.owner_name,
                         "filing_status": "Regular", "itr_records": records}}
