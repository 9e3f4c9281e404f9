"""Realistic Indian bank-statement PDFs from a ledger: several bank layouts, clean or deliberately inconsistent.

A :class:`Statement` is the model (account details, opening balance, the printed lines, and the inconsistencies
that were injected); :func:`render_pdf` lays it out like an SBI-, HDFC-, ICICI- or Axis-style statement with fpdf2
(column order, date format, digit grouping, Dr/Cr conventions differ per bank), optionally password-protected.
The Finpass statement analyser (bsa.py, parsing.py) must read back exactly these lines and flag exactly the
injected inconsistencies. Command line (a person of the sandbox's Finpass ledger, by mobile number)::

    python -m sandbox.providers.finpass.statements --bank hdfc --out statement.pdf [--inconsistent] [--password x]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ...core.ids import stable_seed
from ...ledger import add_months, generate_ledger
from ...ledger.models import Ledger

if TYPE_CHECKING:   # fpdf2 is imported when a PDF is rendered (_pdf_class)
    from fpdf import FPDF

CENT = Decimal("0.01")
MONTHS = 13   # people.py: a year of statements plus the running month


# --- layouts --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    role: str      # date, value_date, narration, reference, debit, credit, amount, drcr, balance, serial, branch
    header: str
    width: float   # mm
    align: str = "L"


@dataclass(frozen=True)
class Layout:
    key: str
    bank_name: str             # canonical name (account_info.bank_name)
    title: str                 # first line of the document
    ifsc_prefix: str
    micr_bank: str             # the 3 bank digits of a MICR code
    date_format: str
    grouping: str              # "indian" (12,34,567.89), "western" (1,234,567.89), "plain" (1234567.89)
    columns: tuple[Column, ...]
    labels: dict               # account_info field -> printed label
    balance_suffix: bool = False   # "12,345.67 Cr" / "1,234.56 Dr" instead of a minus sign
    account_digits: int = 12
    account_prefix: str = ""
    customer_digits: int = 9


def _cols(*spec) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in spec)


LAYOUTS: dict[str, Layout] = {
    "sbi": Layout(
        "sbi", "State Bank of India", "STATE BANK OF INDIA", "SBIN", "002", "%d %b %Y", "indian",
        _cols(("date", "Txn Date", 22), ("value_date", "Value Date", 22), ("narration", "Description", 105),
              ("reference", "Ref No./Cheque No.", 40), ("debit", "Debit", 28, "R"), ("credit", "Credit", 28, "R"),
              ("balance", "Balance", 32, "R")),
        {"account_holder_name": "Account Name", "address": "Address", "generation_date": "Date",
         "account_number": "Account Number", "customer_id": "CIF No.", "ckyc_number": "CKYCR Number",
         "ifsc": "IFS Code", "micr_code": "MICR Code", "email": "Email", "phone": "Mobile No",
         "branch": "Branch", "period": "Account Statement from", "opening": "Balance as on"},
        account_digits=11, account_prefix="3", customer_digits=11),
    "hdfc": Layout(
        "hdfc", "HDFC Bank", "HDFC BANK LIMITED", "HDFC", "240", "%d/%m/%y", "western",
        _cols(("date", "Date", 18), ("narration", "Narration", 110), ("reference", "Chq./Ref.No.", 38),
              ("value_date", "Value Dt", 18), ("debit", "Withdrawal Amt.", 30, "R"),
              ("credit", "Deposit Amt.", 30, "R"), ("balance", "Closing Balance", 33, "R")),
        {"account_holder_name": "Account Holder", "address": "Address", "phone": "Phone no.", "email": "Email",
         "customer_id": "Cust ID", "account_number": "Account No", "ifsc": "RTGS/NEFT IFSC", "micr_code": "MICR",
         "ckyc_number": "CKYC No", "branch": "Account Branch", "generation_date": "Statement Date",
         "period": "Statement From", "opening": "Opening Balance"},
        account_digits=14, account_prefix="50100", customer_digits=9),
    "icici": Layout(
        "icici", "ICICI Bank", "ICICI Bank Limited", "ICIC", "229", "%d/%m/%Y", "plain",
        _cols(("serial", "S No.", 10), ("value_date", "Value Date", 20), ("date", "Transaction Date", 24),
              ("reference", "Cheque Number", 32), ("narration", "Transaction Remarks", 103),
              ("debit", "Withdrawal Amount (INR)", 29, "R"), ("credit", "Deposit Amount (INR)", 29, "R"),
              ("balance", "Balance (INR)", 30, "R")),
        {"account_holder_name": "Name", "customer_id": "Customer ID", "account_number": "Account Number",
         "ifsc": "IFSC Code", "micr_code": "MICR Code", "ckyc_number": "CKYC Number", "address": "Address",
         "email": "Email ID", "phone": "Registered Mobile", "branch": "Branch",
         "generation_date": "Statement Generated On", "period": "Transaction Period", "opening": "Opening Balance"},
        account_digits=12, account_prefix="", customer_digits=9),
    "axis": Layout(
        "axis", "Axis Bank", "AXIS BANK LTD", "UTIB", "211", "%d-%m-%Y", "western",
        _cols(("date", "Tran Date", 20), ("reference", "Chq No", 34), ("narration", "Particulars", 112),
              ("amount", "Amount", 30, "R"), ("drcr", "DR/CR", 14, "C"), ("balance", "Balance", 34, "R"),
              ("branch", "Init.Br", 18, "C")),
        {"account_holder_name": "Customer Name", "address": "Address", "customer_id": "Customer ID",
         "account_number": "Account No", "ifsc": "IFSC Code", "micr_code": "MICR Code", "ckyc_number": "CKYC No",
         "email": "Email", "phone": "Mobile No", "branch": "Branch", "generation_date": "Statement Date",
         "period": "Statement Period", "opening": "Opening Balance"},
        balance_suffix=True, account_digits=15, account_prefix="9", customer_digits=9),
}
BANK_KEYS = tuple(LAYOUTS)

# city, state, 3-digit PIN prefix, 3-digit MICR city code, branch names
CITIES = [("Mumbai", "Maharashtra", "400", "400", ["Andheri East", "Bandra West", "Powai", "Fort"]),
          ("Bengaluru", "Karnataka", "560", "560", ["Koramangala", "Indiranagar", "Whitefield", "Jayanagar"]),
          ("New Delhi", "Delhi", "110", "110", ["Connaught Place", "Karol Bagh", "Saket", "Dwarka"]),
          ("Chennai", "Tamil Nadu", "600", "600", ["T Nagar", "Adyar", "Anna Nagar", "Velachery"]),
          ("Pune", "Maharashtra", "411", "411", ["Kothrud", "Baner", "Hadapsar", "Camp"]),
          ("Hyderabad", "Telangana", "500", "500", ["Banjara Hills", "Gachibowli", "Begumpet", "Kukatpally"]),
          ("Kolkata", "West Bengal", "700", "700", ["Park Street", "Salt Lake", "Ballygunge", "Howrah"]),
          ("Ahmedabad", "Gujarat", "380", "380", ["Navrangpura", "Satellite", "Maninagar", "Bopal"])]
STREETS = ["MG Road", "Link Road", "Station Road", "Nehru Nagar", "Gandhi Marg", "Shivaji Path", "Lake View Road",
           "Temple Street", "Ring Road", "Church Street", "Residency Road", "Hill Road"]
BUILDINGS = ["Sai Krupa Apartments", "Green Park Society", "Shanti Niketan", "Lotus Residency", "Prestige Towers",
             "Sunshine Enclave", "Royal Palms", "Silver Oak Heights"]

MODES = ("UPI", "NEFT", "IMPS", "RTGS", "ATM", "CARD", "CASH", "FT", "OTHERS")


def mode_of(narration: str) -> str:
    """The transaction mode of a narration (finpass.md section 11 modes)."""
    text = narration.upper()
    for prefix, mode in (("UPI", "UPI"), ("NEFT", "NEFT"), ("IMPS", "IMPS"), ("RTGS", "RTGS"), ("ATW", "ATM"),
                         ("ATM", "ATM"), ("NWD", "ATM"), ("POS", "CARD"), ("CC PAYMENT", "CARD"),
                         ("CASH", "CASH"), ("BY CASH", "CASH"), ("RD INSTALLMENT", "FT"), ("FT-", "FT"),
                         ("TRANSFER", "FT")):
        if text.startswith(prefix):
            return mode
    return "OTHERS"


# --- the model ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatementLine:
    date: date
    value_date: date | None
    narration: str
    reference: str
    amount: Decimal      # > 0 credit, < 0 debit
    balance: Decimal     # as printed

    @property
    def type(self) -> str:
        return "CREDIT" if self.amount > 0 else "DEBIT"

    @property
    def mode(self) -> str:
        return mode_of(self.narration)

    def key(self) -> tuple:
        """What a parser must read back exactly."""
        return (self.date, self.value_date, self.narration, self.reference, self.amount, self.balance)


@dataclass
class Statement:
    bank: str                       # layout key
    account_info: dict              # account_info fields of finpass.md section 5 (strings or None)
    branch: str
    period_from: date
    period_to: date
    opening_balance: Decimal
    lines: list[StatementLine]
    injected: dict = field(default_factory=lambda: {"balance_discrepancies": [], "negative_balance_days": [],
                                                     "mismatched_sequence_dates": []})

    @property
    def closing_balance(self) -> Decimal:
        return self.lines[-1].balance if self.lines else self.opening_balance

    def expected_json(self) -> dict:
        """The lines and injected inconsistencies as JSON (for users checking their own parser)."""
        return {"bank": self.bank, "account_info": self.account_info,
                "statement_period": {"from": self.period_from.isoformat(), "to": self.period_to.isoformat()},
                "opening_balance": str(self.opening_balance), "closing_balance": str(self.closing_balance),
                "transactions": [{"date": t.date.isoformat(),
                                  "value_date": t.value_date.isoformat() if t.value_date else None,
                                  "narration": t.narration, "reference": t.reference, "amount": str(t.amount),
                                  "type": t.type, "mode": t.mode, "balance": str(t.balance)} for t in self.lines],
                "injected": self.injected}


def _latin1(text: str) -> str:
    # core PDF fonts are Latin-1: the statement holds exactly what is printed
    return " ".join(str(text).encode("latin-1", "replace").decode("latin-1").split())


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _reference(narration: str, rng: random.Random) -> str:
    found = re.search(r"\d{9,}", narration)
    return found.group(0) if found else _digits(rng, 12)


def _account(ledger: Ledger):
    for account in ledger.accounts:
        if account.kind == "checking":
            return account
    raise ValueError("the ledger has no savings/current (checking) account")


def _identity(ledger: Ledger, layout: Layout, mobile: str | None) -> tuple[dict, str]:
    account = _account(ledger)
    rng = random.Random(stable_seed(ledger.customer_id, "finpass.statement.identity"))
    brng = random.Random(stable_seed(ledger.customer_id, layout.key, "finpass.statement.bank"))
    city, state, pin3, micr_city, branches = rng.choice(CITIES)
    pincode = pin3 + _digits(rng, 3)
    address = (f"Flat No. {rng.choice('ABCD')}-{rng.randint(1, 14)}0{rng.randint(1, 8)}, "
               f"{rng.choice(BUILDINGS)}, {rng.choice(STREETS)}, {city}, {state} - {pincode}")
    branch_code = re.sub(r"\D", "", account.bank_code[-6:]).rjust(6, "0")[-6:] if account.bank_code else _digits(brng, 6)
    if account.bank_id == layout.key and len(account.number) == layout.account_digits:
        number = account.number
    else:
        prefix = layout.account_prefix or str(brng.randint(1, 9))
        number = prefix + _digits(brng, layout.account_digits - len(prefix))
    first, *rest = ledger.owner_name.split()
    email = f"{first.lower()}.{(rest[-1] if rest else 'in').lower()}{rng.randint(10, 99)}@gmail.com"
    own = re.fullmatch(r"finpass:m:([6-9]\d{9})", ledger.customer_id)   # a people.py person keyed by mobile
    phone = mobile or (own.group(1) if own else rng.choice("6789") + _digits(rng, 9))
    info = {
        "bank_name": layout.bank_name,
        "account_holder_name": _latin1(ledger.owner_name),
        "account_number": number,
        "address": _latin1(address),
        "ifsc": f"{layout.ifsc_prefix}0{branch_code}",
        "micr_code": micr_city + layout.micr_bank + _digits(brng, 3),
        "customer_id": str(brng.randint(1, 9)) + _digits(brng, layout.customer_digits - 1),
        "ckyc_number": str(rng.randint(1, 9)) + _digits(rng, 13),
        "email": email,
        "phone": phone,
        "pincode": pincode,
        "generation_date": None,
    }
    return info, f"{rng.choice(branches)}, {city}"


def build_statement(ledger: Ledger, bank: str | None = None, *, months: int = 6, until: date | None = None,
                    inconsistent: bool = False, mobile: str | None = None) -> Statement:
    """The statement of the ledger's savings account for the last ``months`` months up to ``until`` (default: the
    ledger's anchor), laid out for ``bank`` (default: the ledger's own bank when it has a layout, else HDFC).

    ``inconsistent`` injects one balance discrepancy (a tampered amount), one negative-balance day (an overdraft
    repaid the next day) and one out-of-sequence date, recorded in ``Statement.injected``.
    """
    account = _account(ledger)
    bank = (bank or (account.bank_id if account.bank_id in LAYOUTS else "hdfc")).lower()
    if bank not in LAYOUTS:
        raise ValueError(f"unknown bank layout {bank!r}; known: {', '.join(LAYOUTS)}")
    layout = LAYOUTS[bank]
    until = until or ledger.anchor
    since = add_months(until, -(months - 1)).replace(day=1)
    info, branch = _identity(ledger, layout, mobile)
    info["generation_date"] = until.isoformat()
    rng = random.Random(stable_seed(ledger.customer_id, bank, since.isoformat(), until.isoformat(), "lines"))
    opening = account.opening_balance
    lines: list[StatementLine] = []
    for t in account.transactions:
        if t.booking_date < since:
            opening = t.balance_after
        elif t.booking_date <= until:
            narration = _latin1(t.description)
            lines.append(StatementLine(t.booking_date, t.value_date, narration, _reference(narration, rng),
                                       t.amount, t.balance_after))
    statement = Statement(bank, info, branch, since, until, opening, lines)
    if inconsistent:
        _inject(statement, random.Random(stable_seed(ledger.customer_id, bank, "inconsistent")))
    if not any(c.role == "value_date" for c in layout.columns):   # the layout prints no value date
        statement.lines = [replace(t, value_date=None) for t in statement.lines]
    return statement


def _eod(lines: list[StatementLine]) -> dict[date, Decimal]:
    days: dict[date, Decimal] = {}
    for line in lines:
        days[line.date] = line.balance
    return days


def _inject(st: Statement, rng: random.Random) -> None:
    """One inconsistency of each kind, in separate thirds of the statement so that none hides another."""
    lines = st.lines
    n = len(lines)
    if n < 12:
        raise ValueError("an inconsistent statement needs at least 12 transactions")
    # 1. an overdraft: a cheque paid as the last line of a day, covered by a cash deposit opening the next date
    days = sorted(_eod(lines))
    first_third = [d for d in days[1:] if d < lines[n // 3].date] or days[1:2]
    day = rng.choice(first_third[:-1] or first_third)
    last = max(i for i, t in enumerate(lines) if t.date == day)
    eod = lines[last].balance
    over = (eod + Decimal(rng.randint(1000, 9000))).quantize(CENT)
    chq = _digits(rng, 6)
    payee = rng.choice(["Shree Ganesh Traders", "Balaji Enterprises", "Om Sai Motors", "Sharma Electricals"])
    debit = StatementLine(day, day, f"CHQ PAID-MICR CTS-{chq}-{payee.upper()}", chq, -over, eod - over)
    next_day = lines[last + 1].date if last + 1 < n else day + timedelta(days=1)
    credit = StatementLine(next_day, next_day, f"CASH DEPOSIT-{st.branch.split(',')[0].upper()}", _digits(rng, 12),
                           over, eod)
    lines[last + 1:last + 1] = [debit, credit]
    st.injected["negative_balance_days"].append({"date": day.isoformat(), "balance": str(eod - over)})
    n = len(lines)
    # 2. an out-of-sequence date in the middle third: the line claims a date before the line above it
    k = rng.randrange(n // 3 + 2, 2 * n // 3)
    while lines[k - 1].date == lines[k].date and k < 2 * n // 3 + 3:
        k += 1
    earlier = lines[k - 1].date - timedelta(days=rng.randint(2, 4))
    lines[k] = replace(lines[k], date=earlier, value_date=earlier)
    st.injected["mismatched_sequence_dates"].append(
        {"row": k + 1, "date": earlier.isoformat(), "previous_date": lines[k - 1].date.isoformat()})
    # 3. a tampered amount in the last third: the printed balance no longer follows from the line above
    j = rng.randrange(2 * n // 3 + 2, n - 1)
    t = lines[j]
    delta = Decimal(rng.randint(100, 4999))
    tampered = t.amount + delta if t.amount > 0 else t.amount - delta
    lines[j] = replace(t, amount=tampered)
    expected = lines[j - 1].balance + tampered
    st.injected["balance_discrepancies"].append(
        {"row": j + 1, "date": t.date.isoformat(), "expected_balance": str(expected),
         "reported_balance": str(t.balance), "difference": str(t.balance - expected)})


# --- rendering ------------------------------------------------------------------------------------------------
def format_amount(value: Decimal, grouping: str) -> str:
    """2 decimals with the bank's digit grouping (Indian lakh/crore, western thousands or none)."""
    sign = "-" if value < 0 else ""
    whole, frac = f"{abs(value):.2f}".split(".")
    if grouping == "western":
        whole = f"{int(whole):,}"
    elif grouping == "indian" and len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        groups = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        whole = ",".join(([head] if head else []) + groups + [tail])
    return f"{sign}{whole}.{frac}"


def _balance_text(value: Decimal, layout: Layout) -> str:
    if layout.balance_suffix:
        return f"{format_amount(abs(value), layout.grouping)} {'Dr' if value < 0 else 'Cr'}"
    return format_amount(value, layout.grouping)


@lru_cache(maxsize=1)
def _pdf_class():
    """The statement's FPDF subclass, built on first use: fpdf2 is imported only when a PDF is rendered (issue 14:
    it was ~0.4 s of every start-up)."""
    from fpdf import FPDF

    class _PDF(FPDF):
        def __init__(self, footer_text: str):
            super().__init__(orientation="L", format="A4")
            self.footer_text = footer_text

        def footer(self):
            self.set_y(-10)
            self.set_font("Helvetica", "I", 7)
            self.cell(0, 5, f"{self.footer_text}    Page {self.page_no()} of {{nb}}", align="C")
    return _PDF


def _fit(pdf: FPDF, text: str, width: float, size: float, style: str = "") -> None:
    """Shrink the font until ``text`` fits its cell: every line of the statement stays one line."""
    while size > 3.5 and pdf.get_string_width(text) > width - 2:
        size -= 0.25
        pdf.set_font("Helvetica", style, size)


def _cell(pdf: FPDF, width: float, height: float, text: str, align: str = "L", size: float = 7,
          style: str = "", border=0) -> None:
    pdf.set_font("Helvetica", style, size)
    _fit(pdf, text, width, size, style)
    pdf.cell(width, height, text, border=border, align=align)


def _row_values(layout: Layout, serial: int, line: StatementLine, branch_code: str) -> list[str]:
    fmt = layout.date_format
    values = {"serial": str(serial), "date": line.date.strftime(fmt),
              "value_date": line.value_date.strftime(fmt) if line.value_date else "",
              "narration": line.narration, "reference": line.reference,
              "debit": format_amount(-line.amount, layout.grouping) if line.amount < 0 else "",
              "credit": format_amount(line.amount, layout.grouping) if line.amount > 0 else "",
              "amount": format_amount(abs(line.amount), layout.grouping), "drcr": "DR" if line.amount < 0 else "CR",
              "balance": _balance_text(line.balance, layout), "branch": branch_code}
    return [values[c.role] for c in layout.columns]


def render_pdf(st: Statement, password: str | None = None) -> bytes:
    """The statement as a PDF in its bank's layout (same statement -> same bytes); with ``password`` it is
    AES-128 encrypted and opens only with that password."""
    layout = LAYOUTS[st.bank]
    info, fmt = st.account_info, layout.date_format
    created = datetime.combine(st.period_to, time(18, 30), tzinfo=timezone(timedelta(hours=5, minutes=30)))
    from fpdf.enums import EncryptionMethod

    pdf = _pdf_class()(f"This is a computer generated statement of {layout.bank_name} (sandbox test data) "
               f"and does not require a signature.")
    pdf.set_creation_date(created)
    pdf.set_title(f"Account Statement {info['account_number']}")
    pdf.set_producer("provider-sandbox")
    pdf.alias_nb_pages()
    pdf.set_auto_page_break(auto=True, margin=16)
    if password:
        pdf.set_encryption(owner_password=f"owner-{password}", user_password=password,
                           encryption_method=EncryptionMethod.AES_128)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 8, layout.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(0, 5, "Statement of Account - Savings Account", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    labels = layout.labels
    period = f"{st.period_from.strftime(fmt)} to {st.period_to.strftime(fmt)}"
    left = [("account_holder_name", info["account_holder_name"]), ("address", info["address"]),
            ("email", info["email"]), ("phone", info["phone"]), ("customer_id", info["customer_id"]),
            ("ckyc_number", info["ckyc_number"])]
    right = [("account_number", info["account_number"]), ("branch", st.branch), ("ifsc", info["ifsc"]),
             ("micr_code", info["micr_code"]),
             ("generation_date", date.fromisoformat(info["generation_date"]).strftime(fmt)), ("period", period)]
    for (lk, lv), (rk, rv) in zip(left, right):
        _cell(pdf, 165, 5, f"{labels[lk]} : {lv}", size=8)
        _cell(pdf, 0, 5, f"{labels[rk]} : {rv}", size=8)
        pdf.ln()
    pdf.ln(2)
    opening_label = labels["opening"]
    if opening_label == "Balance as on":
        opening_label = f"Balance as on {(st.period_from - timedelta(days=1)).strftime(fmt)}"
    _cell(pdf, 0, 5, f"{opening_label} : {_balance_text(st.opening_balance, layout)}", size=8, style="B")
    pdf.ln(7)
    branch_code = info["ifsc"][-4:]

    def header():
        pdf.set_fill_color(225, 232, 240)
        for column in layout.columns:
            _cell(pdf, column.width, 6, column.header, "L", size=7, style="B", border=1)
        pdf.ln()

    header()
    for i, line in enumerate(st.lines, 1):
        if pdf.will_page_break(5):
            pdf.add_page()
            header()
        for column, value in zip(layout.columns, _row_values(layout, i, line, branch_code)):
            _cell(pdf, column.width, 5, value, column.align, size=7, border="LR")
        pdf.ln()
    pdf.ln(4)
    credits = sum((t.amount for t in st.lines if t.amount > 0), Decimal(0))
    debits = -sum((t.amount for t in st.lines if t.amount < 0), Decimal(0))
    pdf.set_font("Helvetica", "B", 8)
    pdf.cell(0, 5, "STATEMENT SUMMARY", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    for label, value in (("Total Debits", format_amount(debits, layout.grouping)),
                         ("Total Credits", format_amount(credits, layout.grouping)),
                         ("Closing Balance", _balance_text(st.closing_balance, layout))):
        pdf.cell(0, 5, f"{label} : {value}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.cell(0, 5, "**** End of Statement ****", align="C")
    return bytes(pdf.output())


def statement_pdf(ledger: Ledger, bank: str | None = None, *, password: str | None = None,
                  **options) -> tuple[bytes, Statement]:
    """Build and render in one go: (pdf bytes, the statement it shows)."""
    statement = build_statement(ledger, bank, **options)
    return render_pdf(statement, password), statement


def person_ledger(mobile: str = "9876543210", seed: int = 0, today: date | None = None) -> Ledger:
    """The Finpass person of a mobile number, as people.py generates them (same seed, same first-use day)."""
    return generate_ledger(seed, f"finpass:m:{mobile}", today or date.today(), market="IN", months=MONTHS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.providers.finpass.statements",
                                     description="Generate a realistic Indian bank-statement PDF (sandbox test data).")
    parser.add_argument("--bank", default="hdfc", choices=BANK_KEYS, help="layout (default hdfc)")
    parser.add_argument("--out", required=True, help="PDF file to write")
    parser.add_argument("--inconsistent", action="store_true",
                        help="inject a balance discrepancy, a negative-balance day and an out-of-sequence date")
    parser.add_argument("--password", help="encrypt the PDF (AES-128) with this user password")
    parser.add_argument("--mobile", default="9876543210", help="the Finpass person (people.py key m:<mobile>)")
    parser.add_argument("--seed", type=int, default=0, help="sandbox seed (SANDBOX_SEED, default 0)")
    parser.add_argument("--today", type=date.fromisoformat, help="ledger anchor, YYYY-MM-DD (default today)")
    parser.add_argument("--months", type=int, default=6, help="statement months (1-13, default 6)")
    parser.add_argument("--ledger", help="a Ledger JSON document (ledger.models.Ledger.to_json) instead of a person")
    parser.add_argument("--json", help="also write the expected transactions and injected flags as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.months <= MONTHS:
        parser.error(f"--months must be between 1 and {MONTHS}")
    if args.ledger:
        from ...ledger.models import ledger_from_json
        ledger = ledger_from_json(json.loads(Path(args.ledger).read_text()))
    else:
        ledger = person_ledger(args.mobile, args.seed, args.today)
    data, statement = statement_pdf(ledger, args.bank, password=args.password, months=args.months,
                                    inconsistent=args.inconsistent, mobile=None if args.ledger else args.mobile)
    Path(args.out).write_bytes(data)
    if args.json:
        Path(args.json).write_text(json.dumps(statement.expected_json(), indent=2))
    print(f"{args.out}: {LAYOUTS[args.bank].bank_name}, {statement.account_info['account_holder_name']}, "
          f"{len(statement.lines)} transactions {statement.period_from} .. {statement.period_to}"
          f"{', inconsistent' if args.inconsistent else ''}{', password-protected' if args.password else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
