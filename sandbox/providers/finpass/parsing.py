"""Reading uploaded bank statements (finpass.md section 5): file sniffing, PDF text extraction with pypdf, table
and account-detail recognition across bank layouts, and the analysis with its data-quality flags.

A statement table is found by its header line (``Date``/``Txn Date``/``Tran Date``..., ``Narration``/
``Description``/``Particulars``..., ``Withdrawal``/``Debit``, ``Deposit``/``Credit`` or ``Amount`` + ``Dr/Cr``,
``Balance``); every later line is cut into columns at the header's x positions, so column order, date format,
digit grouping and Cr/Dr conventions may differ per bank. Account details come from ``Label : value`` texts.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from .statements import CENT, StatementLine, mode_of

MAGIC = {"pdf": (b"%PDF-",), "png": (b"\x89PNG\r\n\x1a\n",), "jpeg": (b"\xff\xd8\xff",)}
EXTENSIONS = {"pdf": "pdf", "png": "png", "jpg": "jpeg", "jpeg": "jpeg"}


class StatementFileError(Exception):
    """A file the analyser cannot read: ``code`` is the style A message_code, ``status`` the HTTP status."""

    status, code = 422, "unreadable_file"

    def __init__(self, message: str, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status or self.status


class PasswordRequired(StatementFileError):
    code = "password_required"


class WrongPassword(StatementFileError):
    code = "incorrect_password"


def sniff(data: bytes) -> str | None:
    """The real type of a file from its magic bytes: pdf, png, jpeg or None (a PDF header may follow junk
    within the first 1024 bytes, as readers allow)."""
    if data.startswith(MAGIC["png"][0]):
        return "png"
    if data.startswith(MAGIC["jpeg"][0]):
        return "jpeg"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    return None


def check_image(data: bytes) -> None:
    """Decode the image (Pillow) so a truncated or corrupt PNG/JPEG is refused like a corrupt PDF."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.width < 1 or image.height < 1:
                raise StatementFileError("The image has no pixels", "unreadable_file")
    except StatementFileError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise StatementFileError(f"The image could not be decoded: {str(exc)[:120]}", "unreadable_file") from None


# --- PDF text --------------------------------------------------------------------------------------------------
@dataclass
class Line:
    y: float
    cells: list[tuple[float, str]]   # (x, text), left to right

    @property
    def text(self) -> str:
        return " ".join(t for _, t in self.cells)


def open_pdf(data: bytes, password: str | None):
    """A pypdf reader, decrypted with ``password`` when the PDF is protected."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            if not password:
                # some PDFs are encrypted with an empty user password only (owner restrictions): they open
                if reader.decrypt("") == 0:
                    raise PasswordRequired("The PDF is password protected: send its password in the password field")
            elif reader.decrypt(password) == 0:
                raise WrongPassword("The password does not open this PDF")
        len(reader.pages)
        return reader
    except StatementFileError:
        raise
    except (DependencyError, NotImplementedError) as exc:
        raise StatementFileError(f"Unsupported PDF encryption: {str(exc)[:120]}", "unsupported_encryption") from None
    except FileNotDecryptedError:
        raise PasswordRequired("The PDF is password protected: send its password in the password field") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError,
            AssertionError, ZeroDivisionError) as exc:
        raise StatementFileError(f"The PDF could not be read: {str(exc)[:120] or type(exc).__name__}") from None


def page_lines(page) -> list[Line]:
    """The text of one page as lines (same baseline), each cut into its positioned text runs."""
    runs: list[tuple[float, float, str]] = []

    def visit(text, cm, tm, font, size):
        text = " ".join((text or "").split())
        if text:
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            runs.append((x, y, text))

    page.extract_text(visitor_text=visit)
    lines: list[Line] = []
    for x, y, text in sorted(runs, key=lambda r: (-r[1], r[0])):
        if lines and abs(lines[-1].y - y) <= 1.5:
            lines[-1].cells.append((x, text))
        else:
            lines.append(Line(y, [(x, text)]))
    for line in lines:
        line.cells.sort()
    return lines


def pdf_lines(reader) -> list[list[Line]]:
    from pypdf.errors import PdfReadError
    pages = []
    try:
        for page in reader.pages:
            pages.append(page_lines(page))
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError,
            AssertionError, ZeroDivisionError) as exc:
        raise StatementFileError(f"The PDF text could not be read: {str(exc)[:120] or type(exc).__name__}") from None
    return pages


# --- values ----------------------------------------------------------------------------------------------------
_DATE_FORMATS = [(r"\d{1,2} [A-Za-z]{3} \d{4}", "%d %b %Y"), (r"\d{1,2} [A-Za-z]{4,9} \d{4}", "%d %B %Y"),
                 (r"\d{1,2}/\d{1,2}/\d{4}", "%d/%m/%Y"), (r"\d{1,2}/\d{1,2}/\d{2}", "%d/%m/%y"),
                 (r"\d{1,2}-\d{1,2}-\d{4}", "%d-%m-%Y"), (r"\d{1,2}-\d{1,2}-\d{2}", "%d-%m-%y"),
                 (r"\d{1,2}-[A-Za-z]{3}-\d{4}", "%d-%b-%Y"), (r"\d{1,2}-[A-Za-z]{3}-\d{2}", "%d-%b-%y"),
                 (r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d"), (r"\d{1,2}\.\d{1,2}\.\d{4}", "%d.%m.%Y")]


def parse_date(text: str | None) -> date | None:
    text = " ".join((text or "").split())
    for pattern, fmt in _DATE_FORMATS:
        if re.fullmatch(pattern, text):
            try:
                return datetime.strptime(text, fmt).date()
            except ValueError:
                return None
    return None


def parse_amount(text: str | None) -> Decimal | None:
    """``1,23,456.78``, ``1,234.56 Dr``, ``-250.00``, ``(250.00)``, ``Rs. 99``... -> Decimal (Dr negative)."""
    raw = (text or "").strip()
    if not raw:
        return None
    sign = 1
    upper = raw.upper()
    for suffix, s in ((" DR", -1), ("DR", -1), (" CR", 1), ("CR", 1)):
        if upper.endswith(suffix):
            raw, sign = raw[: -len(suffix)], s
            break
    raw = re.sub(r"^(INR|RS\.?|\u20b9)\s*", "", raw.strip(), flags=re.I).replace(",", "").replace(" ", "")
    if raw.startswith("(") and raw.endswith(")"):
        raw, sign = raw[1:-1], -sign
    if not re.fullmatch(r"[-+]?\d+(\.\d{1,2})?", raw):
        return None
    try:
        return (Decimal(raw) * sign).quantize(CENT)
    except InvalidOperation:
        return None


# --- header and account details ---------------------------------------------------------------------------------
def column_role(header: str) -> str:
    h = " ".join(header.lower().split())
    if h.startswith(("s no", "s.no", "sr", "sl no", "sl.")) or h in ("#", "no", "no."):
        return "serial"
    if "value" in h and ("date" in h or "dt" in h):
        return "value_date"
    if any(k in h for k in ("narration", "description", "particulars", "remarks", "details")):
        return "narration"
    if any(k in h for k in ("dr/cr", "cr/dr", "dr / cr")):
        return "drcr"
    if any(k in h for k in ("withdrawal", "debit")):
        return "debit"
    if any(k in h for k in ("deposit", "credit")):
        return "credit"
    if "balance" in h:
        return "balance"
    if any(k in h for k in ("chq", "cheque", "ref")):
        return "reference"
    if "date" in h or h in ("dt", "txn dt"):
        return "date"
    if "amount" in h:
        return "amount"
    return "other"


def header_columns(line: Line) -> list[tuple[float, str]] | None:
    """(x, role) per column when ``line`` is a transaction table header."""
    if len(line.cells) < 4 or any(len(t) > 40 or ":" in t for _, t in line.cells):
        return None
    roles = [(x, column_role(t)) for x, t in line.cells]
    found = {r for _, r in roles}
    if {"date", "balance", "narration"} <= found and ({"debit", "credit"} <= found or "amount" in found):
        return roles
    return None


LABELS = {
    "account_holder_name": ("account name", "account holder", "account holder name", "name", "customer name",
                            "a/c name", "a/c holder"),
    "account_number": ("account number", "account no", "a/c no", "a/c number", "account #"),
    "ifsc": ("ifs code", "ifsc", "ifsc code", "rtgs/neft ifsc", "ifsc/rtgs code", "neft ifsc"),
    "micr_code": ("micr", "micr code", "micr no"),
    "customer_id": ("cif no", "cif number", "cif", "cust id", "customer id", "crn", "customer no"),
    "ckyc_number": ("ckycr number", "ckyc no", "ckyc number", "ckyc", "ckyc id"),
    "email": ("email", "email id", "e-mail", "e-mail id"),
    "phone": ("mobile no", "mobile", "phone no", "phone", "registered mobile", "mobile number", "phone number"),
    "address": ("address", "communication address"),
    "generation_date": ("date", "statement date", "statement generated on", "generated on", "date of statement",
                        "report date"),
    "branch": ("branch", "account branch", "branch name", "home branch"),
    "period": ("account statement from", "statement from", "transaction period", "statement period", "period",
               "statement of account from"),
    "opening": ("opening balance", "balance as on", "balance b/f", "brought forward"),
    "closing": ("closing balance",),
}
_LABEL_OF = {synonym: name for name, synonyms in LABELS.items() for synonym in synonyms}
BANKS = [("state bank of india", "State Bank of India"), ("hdfc bank", "HDFC Bank"), ("icici bank", "ICICI Bank"),
         ("axis bank", "Axis Bank"), ("kotak mahindra", "Kotak Mahindra Bank"), ("punjab national", "Punjab National Bank"),
         ("bank of baroda", "Bank of Baroda"), ("canara bank", "Canara Bank"), ("union bank of india", "Union Bank of India"),
         ("yes bank", "Yes Bank"), ("indusind", "IndusInd Bank"), ("idfc first", "IDFC FIRST Bank")]
IFSC_BANKS = {"SBIN": "State Bank of India", "HDFC": "HDFC Bank", "ICIC": "ICICI Bank", "UTIB": "Axis Bank",
              "KKBK": "Kotak Mahindra Bank", "PUNB": "Punjab National Bank", "BARB": "Bank of Baroda",
              "CNRB": "Canara Bank", "UBIN": "Union Bank of India", "YESB": "Yes Bank", "INDB": "IndusInd Bank",
              "IDFB": "IDFC FIRST Bank"}


def label_value(text: str) -> tuple[str, str] | None:
    """``Label : value`` -> (field, value) for the labels a statement header uses."""
    m = re.match(r"^\s*([^:]{1,40}?)\s*:\s*(.*?)\s*$", text)
    if not m:
        return None
    label = " ".join(m.group(1).lower().split()).rstrip(".")
    field_name = _LABEL_OF.get(label)
    if field_name is None and label.startswith("balance as on"):
        field_name = "opening"
    return (field_name, m.group(2)) if field_name else None


@dataclass
class ParsedStatement:
    account_info: dict
    opening_balance: Decimal | None
    period_from: date | None
    period_to: date | None
    lines: list[StatementLine] = field(default_factory=list)
    has_text: bool = True


def _split_period(value: str) -> tuple[date | None, date | None]:
    parts = re.split(r"\s+(?:to|TO|To|-)\s+", value, maxsplit=1)
    if len(parts) == 2:
        return parse_date(parts[0]), parse_date(re.sub(r"^(?:to|TO|To)\s*:\s*", "", parts[1]))
    return None, None


def parse_pdf(data: bytes, password: str | None = None) -> ParsedStatement:
    """Read a statement PDF: account details, opening balance, period and every transaction line as printed.
    ``has_text`` is False for a PDF without a text layer (a scan)."""
    pages = pdf_lines(open_pdf(data, password))
    texts = [cell for page in pages for line in page for cell in line.cells]
    info = {k: None for k in ("bank_name", "account_holder_name", "account_number", "address", "ifsc", "micr_code",
                              "customer_id", "ckyc_number", "email", "phone", "pincode", "generation_date")}
    if not texts:
        return ParsedStatement(info, None, None, None, [], has_text=False)
    raw: dict[str, str] = {}
    lines: list[StatementLine] = []
    columns = None
    for page in pages:
        for line in page:
            roles = header_columns(line)
            if roles:
                columns = roles
                continue
            row = _row(line, columns) if columns else None
            if row is not None:
                lines.append(row)
                continue
            for _, text in line.cells:
                found = label_value(text)
                if found and found[0] not in raw:
                    raw[found[0]] = found[1]
    all_text = " ".join(t for _, t in texts).lower()
    for needle, name in BANKS:
        if needle in all_text:
            info["bank_name"] = name
            break
    for key in ("account_holder_name", "account_number", "address", "micr_code", "customer_id", "ckyc_number",
                "email", "phone"):
        info[key] = raw.get(key) or None
    ifsc = (raw.get("ifsc") or "").upper().strip()
    info["ifsc"] = ifsc or None
    if info["bank_name"] is None and ifsc[:4] in IFSC_BANKS:
        info["bank_name"] = IFSC_BANKS[ifsc[:4]]
    pin = re.search(r"(?:PIN\s*:?\s*)?(\d{6})\s*$", info["address"] or "")
    info["pincode"] = pin.group(1) if pin else None
    generated = parse_date(raw.get("generation_date"))
    info["generation_date"] = generated.isoformat() if generated else None
    period_from, period_to = _split_period(raw.get("period") or "")
    opening = parse_amount(raw.get("opening"))
    return ParsedStatement(info, opening, period_from, period_to, lines)


def _row(line: Line, columns: list[tuple[float, str]]) -> StatementLine | None:
    values: dict[str, str] = {}
    for x, text in line.cells:
        role = columns[0][1]
        for cx, crole in columns:
            if cx <= x + 1.0:
                role = crole
        values[role] = f"{values[role]} {text}" if role in values else text
    when = parse_date(values.get("date"))
    balance = parse_amount(values.get("balance"))
    if when is None or balance is None:
        return None
    debit, credit = parse_amount(values.get("debit")), parse_amount(values.get("credit"))
    if debit is not None or credit is not None:
        amount = (credit or Decimal(0)) - abs(debit or Decimal(0))
    else:
        amount = parse_amount(values.get("amount"))
        if amount is None:
            return None
        drcr = (values.get("drcr") or "").strip().upper()
        amount = -abs(amount) if drcr.startswith("D") else abs(amount)
    return StatementLine(when, parse_date(values.get("value_date")), values.get("narration", ""),
                         values.get("reference", ""), amount.quantize(CENT), balance)


# --- analysis ---------------------------------------------------------------------------------------------------
def money(value: Decimal | None):
    """INR amounts as JSON numbers with two decimals (float repr round-trips 2-decimal values exactly)."""
    return None if value is None else float(value.quantize(CENT))


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def analyse(info: dict, lines: list[StatementLine], opening: Decimal | None, period_from: date | None,
            period_to: date | None) -> dict:
    """The statement-result body (without status fields): transactions as printed plus what the analyser finds:
    balance discrepancies (a balance that does not follow from the line above, the first line from the opening
    balance), days whose end-of-day balance is negative, and dates earlier than the line above."""
    if opening is None and lines:
        opening = lines[0].balance - lines[0].amount
    discrepancies, sequence = [], []
    previous_balance, previous_date = opening, None
    for row, line in enumerate(lines, 1):
        if previous_balance is not None:
            expected = previous_balance + line.amount
            if expected != line.balance:
                discrepancies.append({"row": row, "date": line.date.isoformat(), "narration": line.narration,
                                      "expected_balance": money(expected), "reported_balance": money(line.balance),
                                      "difference": money(line.balance - expected)})
        if previous_date is not None and line.date < previous_date:
            sequence.append({"row": row, "date": line.date.isoformat(), "previous_date": previous_date.isoformat()})
        previous_balance, previous_date = line.balance, line.date
    end_of_day: dict[date, Decimal] = {}
    for line in lines:
        end_of_day[line.date] = line.balance
    negative = [{"date": d.isoformat(), "balance": money(b)} for d, b in sorted(end_of_day.items()) if b < 0]
    credits = sum((t.amount for t in lines if t.amount > 0), Decimal(0))
    debits = -sum((t.amount for t in lines if t.amount < 0), Decimal(0))
    months: dict[str, dict] = {}
    for line in lines:
        month = months.setdefault(line.date.strftime("%Y-%m"), {"credits": Decimal(0), "debits": Decimal(0)})
        month["credits" if line.amount > 0 else "debits"] += abs(line.amount)
        month["closing_balance"] = line.balance
    dates = [t.date for t in lines]
    return {
        "account_info": info,
        "statement_period": {"from": _iso(period_from or (min(dates) if dates else None)),
                             "to": _iso(period_to or (max(dates) if dates else None))},
        "transactions": [{"date": t.date.isoformat(), "value_date": t.value_date.isoformat() if t.value_date else None,
                          "narration": t.narration, "amount": money(abs(t.amount)), "type": t.type, "mode": t.mode,
                          "balance": money(t.balance), "reference": t.reference} for t in lines],
        "summary": {"opening_balance": money(opening), "closing_balance": money(lines[-1].balance if lines else opening),
                    "total_credits": money(credits), "total_debits": money(debits),
                    "credit_count": sum(1 for t in lines if t.amount > 0),
                    "debit_count": sum(1 for t in lines if t.amount < 0), "transaction_count": len(lines)},
        "monthly_summary": [{"month": m, "credits": money(v["credits"]), "debits": money(v["debits"]),
                             "closing_balance": money(v["closing_balance"])} for m, v in sorted(months.items())],
        "balance_discrepancies": discrepancies,
        "negative_balance_days": negative,
        "mismatched_sequence_dates": sequence,
    }


__all__ = ["StatementFileError", "PasswordRequired", "WrongPassword", "sniff", "check_image", "open_pdf",
           "parse_pdf", "parse_date", "parse_amount", "analyse", "EXTENSIONS", "mode_of", "ParsedStatement"]
