"""The bank-statement generator (statements.py) and the statement parser (parsing.py), proven on every layout:
what is printed is what the parser reads back (exact Decimal amounts and balances), a clean statement is the
person's ledger, and the injected inconsistencies are exactly the ones the analysis flags."""
from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader

from sandbox.ledger import add_months, generate_ledger
from sandbox.providers.finpass import parsing, statements
from sandbox.providers.finpass.parsing import analyse, parse_amount, parse_date, parse_pdf
from sandbox.providers.finpass.statements import LAYOUTS, build_statement, format_amount, person_ledger, render_pdf

TODAY = date(2025, 7, 23)
IFSC = r"^[A-Z]{4}0[A-Z0-9]{6}$"


@pytest.fixture(scope="module")
def ledger():
    return person_ledger("9876543210", seed=0, today=TODAY)


def _checking(ledger):
    return next(a for a in ledger.accounts if a.kind == "checking")


def _dec(value) -> Decimal:
    return Decimal(str(value))


@pytest.mark.parametrize("bank", list(LAYOUTS))
def test_clean_statement_round_trips_exactly_and_is_the_ledger(ledger, bank):
    st = build_statement(ledger, bank, months=6)
    parsed = parse_pdf(render_pdf(st))
    # the parser reads back every printed line: dates, narrations, references, exact amounts and balances
    assert [t.key() for t in parsed.lines] == [t.key() for t in st.lines]
    assert parsed.account_info == st.account_info
    assert parsed.opening_balance == st.opening_balance
    assert (parsed.period_from, parsed.period_to) == (date(2025, 2, 1), TODAY)
    # ... and what was printed is the ledger's savings account over the period, computed here independently
    since = add_months(TODAY, -5).replace(day=1)
    account = _checking(ledger)
    expected = [(t.booking_date, t.amount, t.balance_after) for t in account.transactions
                if since <= t.booking_date <= TODAY]
    assert [(t.date, t.amount, t.balance) for t in parsed.lines] == expected
    before = [t.balance_after for t in account.transactions if t.booking_date < since]
    assert parsed.opening_balance == (before[-1] if before else account.opening_balance)
    analysis = analyse(parsed.account_info, parsed.lines, parsed.opening_balance, parsed.period_from,
                       parsed.period_to)
    assert analysis["balance_discrepancies"] == analysis["negative_balance_days"] == []
    assert analysis["mismatched_sequence_dates"] == []
    info = parsed.account_info
    assert info["bank_name"] == LAYOUTS[bank].bank_name
    assert info["account_holder_name"] == ledger.owner_name
    assert info["ifsc"].startswith(LAYOUTS[bank].ifsc_prefix)
    import re
    assert re.match(IFSC, info["ifsc"]) and re.fullmatch(r"\d{9}", info["micr_code"])
    assert info["micr_code"][3:6] == LAYOUTS[bank].micr_bank and info["address"].endswith(info["pincode"])
    assert len(info["account_number"]) == LAYOUTS[bank].account_digits and info["phone"] == "9876543210"


@pytest.mark.parametrize("bank", list(LAYOUTS))
def test_inconsistent_statement_flags_exactly_the_injected_inconsistencies(ledger, bank):
    st = build_statement(ledger, bank, months=6, inconsistent=True)
    clean = build_statement(ledger, bank, months=6)
    assert len(st.lines) == len(clean.lines) + 2   # the overdraft and its cover
    parsed = parse_pdf(render_pdf(st))
    assert [t.key() for t in parsed.lines] == [t.key() for t in st.lines]
    got = analyse(parsed.account_info, parsed.lines, parsed.opening_balance, parsed.period_from, parsed.period_to)
    inj = st.injected
    assert [(d["row"], d["date"], _dec(d["expected_balance"]), _dec(d["reported_balance"]), _dec(d["difference"]))
            for d in got["balance_discrepancies"]] == [
        (d["row"], d["date"], Decimal(d["expected_balance"]), Decimal(d["reported_balance"]), Decimal(d["difference"]))
        for d in inj["balance_discrepancies"]]
    assert [(d["date"], _dec(d["balance"])) for d in got["negative_balance_days"]] == [
        (d["date"], Decimal(d["balance"])) for d in inj["negative_balance_days"]]
    assert got["mismatched_sequence_dates"] == inj["mismatched_sequence_dates"]
    for kind in inj:
        assert len(inj[kind]) == 1
    # independent check of the tampered line: its printed balance does not follow from the line above
    row = inj["balance_discrepancies"][0]["row"]
    above, line = st.lines[row - 2], st.lines[row - 1]
    assert above.balance + line.amount != line.balance
    assert Decimal(inj["negative_balance_days"][0]["balance"]) < 0
    seq = inj["mismatched_sequence_dates"][0]["row"]
    assert st.lines[seq - 1].date < st.lines[seq - 2].date


def test_amount_and_balance_conventions_per_bank():
    assert format_amount(Decimal("12345678.9"), "indian") == "1,23,45,678.90"
    assert format_amount(Decimal("999.5"), "indian") == "999.50"
    assert format_amount(Decimal("-1234567.89"), "western") == "-1,234,567.89"
    assert format_amount(Decimal("1234.5"), "plain") == "1234.50"
    for text, value in (("1,23,456.78", "123456.78"), ("1,234.56 Dr", "-1234.56"), ("12.00 Cr", "12.00"),
                        ("-250.00", "-250.00"), ("(75.10)", "-75.10"), ("Rs. 99", "99.00"), ("INR 5,000.5", "5000.50")):
        assert parse_amount(text) == Decimal(value), text
    for bad in ("", "abc", "1.234", "12-34", None):
        assert parse_amount(bad) is None
    assert parse_date("01 Feb 2025") == parse_date("01/02/25") == parse_date("01/02/2025") == date(2025, 2, 1)
    assert parse_date("01-02-2025") == parse_date("2025-02-01") == date(2025, 2, 1)
    assert parse_date("31/02/2025") is None and parse_date("Opening Balance") is None


def test_axis_layout_prints_negative_balances_with_dr_and_the_parser_reads_them(ledger):
    st = build_statement(ledger, "axis", months=6, inconsistent=True)
    text = "\n".join(p.extract_text() for p in PdfReader(__import__("io").BytesIO(render_pdf(st))).pages)
    neg = Decimal(st.injected["negative_balance_days"][0]["balance"])
    assert f"{format_amount(-neg, 'western')} Dr" in text
    assert any(t.balance == neg for t in parse_pdf(render_pdf(st)).lines)


def test_password_protected_statement(ledger):
    st = build_statement(ledger, "icici", months=3)
    data = render_pdf(st, password="abcd1234")
    assert PdfReader(__import__("io").BytesIO(data)).is_encrypted
    with pytest.raises(parsing.PasswordRequired):
        parse_pdf(data)
    with pytest.raises(parsing.WrongPassword):
        parse_pdf(data, "wrong")
    assert [t.key() for t in parse_pdf(data, "abcd1234").lines] == [t.key() for t in st.lines]


def test_generation_is_deterministic_and_depends_on_the_person(ledger):
    a = render_pdf(build_statement(ledger, "hdfc", months=4, inconsistent=True))
    b = render_pdf(build_statement(person_ledger("9876543210", seed=0, today=TODAY), "hdfc", months=4,
                                   inconsistent=True))
    assert a == b
    other = build_statement(person_ledger("9123456780", seed=0, today=TODAY), "hdfc", months=4)
    assert other.account_info["account_number"] != build_statement(ledger, "hdfc", months=4).account_info["account_number"]


def test_any_ledger_can_be_rendered():
    ledger = generate_ledger(5, "someone-else", TODAY, market="IN", months=13)
    st = build_statement(ledger, months=13)
    assert st.bank == (_checking(ledger).bank_id if _checking(ledger).bank_id in LAYOUTS else "hdfc")
    assert st.period_from == date(2024, 7, 1) and len(st.lines) > 100
    assert [t.key() for t in parse_pdf(render_pdf(st)).lines] == [t.key() for t in st.lines]
    with pytest.raises(ValueError):
        build_statement(ledger, "nosuchbank")


def test_cli_writes_a_statement_and_its_expected_json(tmp_path, capsys):
    out, side = tmp_path / "statement.pdf", tmp_path / "expected.json"
    assert statements.main(["--bank", "sbi", "--out", str(out), "--inconsistent", "--password", "x",
                            "--today", TODAY.isoformat(), "--months", "3", "--json", str(side)]) == 0
    assert "State Bank of India" in capsys.readouterr().out
    expected = json.loads(side.read_text())
    parsed = parse_pdf(out.read_bytes(), "x")
    assert [(t.date.isoformat(), str(t.amount), str(t.balance), t.narration) for t in parsed.lines] == [
        (t["date"], t["amount"], t["balance"], t["narration"]) for t in expected["transactions"]]
    got = analyse(parsed.account_info, parsed.lines, parsed.opening_balance, None, None)
    assert [d["row"] for d in got["balance_discrepancies"]] == [d["row"] for d in expected["injected"]["balance_discrepancies"]]
    with pytest.raises(SystemExit):
        statements.main(["--bank", "nosuch", "--out", str(out)])


def test_parser_refuses_corrupt_pdfs_and_ignores_text_that_is_no_statement():
    with pytest.raises(parsing.StatementFileError):
        parse_pdf(b"%PDF-1.4\n garbage without objects")
    from fpdf import FPDF
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Quarterly newsletter: Date Narration Debit Credit Balance are words here")
    parsed = parse_pdf(bytes(pdf.output()))
    assert parsed.has_text and parsed.lines == []
    blank = FPDF()
    blank.add_page()
    blank.rect(10, 10, 50, 50)
    assert parse_pdf(bytes(blank.output())).has_text is False


def test_sniff_uses_magic_bytes():
    assert parsing.sniff(b"%PDF-1.7 ...") == "pdf"
    assert parsing.sniff(b"\x89PNG\r\n\x1a\n....") == "png"
    assert parsing.sniff(b"\xff\xd8\xff\xe0....") == "jpeg"
    assert parsing.sniff(b"PK\x03\x04 a zip") is None
    assert parsing.sniff(b"") is None


def test_clean_statements_of_several_people_have_no_flags():
    for mobile in ("9000000010", "9811122233", "7012345678"):
        led = person_ledger(mobile, seed=3, today=TODAY)
        st = build_statement(led, months=13)
        got = analyse(st.account_info, st.lines, st.opening_balance, st.period_from, st.period_to)
        assert not (got["balance_discrepancies"] or got["negative_balance_days"] or got["mismatched_sequence_dates"])
        assert st.lines[0].date >= st.period_from and st.lines[-1].date <= st.period_to <= TODAY
        assert st.period_to - st.period_from < timedelta(days=400)
