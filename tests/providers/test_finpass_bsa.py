"""Finpass bank statement analyser service (bsa.py): synthetic statements from the person ledger keyed by the file
hash, size limit boundaries, job policies, exports, and a statement laid out by another PDF writer."""
from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from contract_tests.finpass_app import finpass_app
from sandbox.core.store import MemoryStore
from sandbox.ledger import add_months, generate_ledger
from sandbox.providers.finpass import bsa
from sandbox.providers.finpass.statements import person_ledger, statement_pdf

KEYS = {"x-api-key": "sandbox-client", "x-api-secret": "sandbox-secret"}
UPLOAD = "/finpass/api/v1/services/bsa/upload-statement"
RESULT = "/finpass/api/v1/services/bsa/statement-result"
NOW = datetime(2025, 7, 23, 6, 0, tzinfo=timezone.utc)


def _app(**config):
    app = finpass_app({"SEED": 5, **config}, store=MemoryStore())
    app.extensions["sandbox"].clock.freeze("sandbox-client", NOW)
    return app, app.test_client()


def _upload(client, content: bytes, name="statement.pdf", **fields):
    return client.post(UPLOAD, headers=KEYS, content_type="multipart/form-data",
                       data={**fields, "file": (io.BytesIO(content), name)})


def _done(client, client_id: str, polls: int = 12) -> dict:
    for _ in range(polls):
        data = json.loads(client.get(RESULT, headers=KEYS, query_string={"client_id": client_id}).data,
                          parse_float=Decimal)["data"]
        if data["status"] != "processing":
            return data
    raise AssertionError("still processing")


def _png(color=(10, 20, 30)) -> bytes:
    from PIL import Image
    raw = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(raw, "PNG")
    return raw.getvalue()


def test_image_statement_is_the_ledger_of_the_person_keyed_by_the_file_hash():
    app, client = _app()
    png = _png()
    r = _upload(client, png, "scan.png")
    assert r.status_code == 200, r.json
    data = _done(client, r.json["data"]["client_id"])
    assert data["source"] == "synthetic"
    # computed independently: people.py generates the person of key f:<sha256[:32]> on the sandbox clock's day
    digest = hashlib.sha256(png).hexdigest()
    ledger = generate_ledger(5, f"finpass:f:{digest[:32]}", NOW.date(), market="IN", months=13)
    account = next(a for a in ledger.accounts if a.kind == "checking")
    since = add_months(NOW.date(), -(bsa.SYNTHETIC_MONTHS - 1)).replace(day=1)
    expected = [(t.booking_date.isoformat(), abs(t.amount), "CREDIT" if t.amount > 0 else "DEBIT", t.balance_after)
                for t in account.transactions if since <= t.booking_date <= NOW.date()]
    assert [(t["date"], t["amount"], t["type"], t["balance"]) for t in data["transactions"]] == expected
    assert data["account_info"]["account_holder_name"] == ledger.owner_name
    assert data["statement_period"] == {"from": since.isoformat(), "to": NOW.date().isoformat()}


def test_file_size_limit_boundary():
    pdf, _ = statement_pdf(person_ledger("9876543210", 0, NOW.date()), "hdfc", months=1)
    app, client = _app(FINPASS_BSA_MAX_FILE_BYTES=len(pdf))
    assert _upload(client, pdf).status_code == 200                      # exactly at the limit: accepted
    over = _upload(client, pdf + b"\n%padding\n")                       # one line over: refused
    assert over.status_code == 413
    assert over.json == {"data": None, "status_code": 413, "success": False,
                         "message": f"The file exceeds the {len(pdf)} byte limit", "message_code": "file_too_large"}


def test_instant_jobs_complete_on_the_first_poll_and_failed_jobs_report_failed():
    app, client = _app(JOB_DELAY=0)
    pdf, st = statement_pdf(person_ledger("9876543210", 0, NOW.date()), "sbi", months=2)
    client_id = _upload(client, pdf).json["data"]["client_id"]
    first = client.get(RESULT, headers=KEYS, query_string={"client_id": client_id}).json["data"]
    assert first["status"] == "completed" and len(first["transactions"]) == len(st.lines)
    app2, client2 = _app()
    sb = app2.extensions["sandbox"]
    failing = _upload(client2, pdf).json["data"]["client_id"]
    doc = sb.collection("sandbox-client", "finpass.bsa_docs").get(failing)
    sb.jobs.fail("sandbox-client", doc["job_id"], "Parser crashed (sandbox control)")
    data = _done(client2, failing)
    assert (data["status"], data["checkpoint"], data["error_message"]) == (
        "failed", "failed", "Parser crashed (sandbox control)")
    assert data["excel_report_url"] is None


def test_statement_written_by_another_pdf_writer_is_parsed():
    """Not tied to statements.py: a plain table (core/pdf.py) with the usual headers is read too."""
    from sandbox.core.pdf import render_pdf
    rows = [["01/04/2025", "UPI/512345678901/Chai Point/ybl", "", "120.00", "", "9,880.00"],
            ["02/04/2025", "NEFT CR-SBIN52500001-ACME LTD-SALARY", "", "", "50,000.00", "59,880.00"],
            ["02/04/2025", "ATW-512345XXXXXX1234-MUMBAI", "", "2,000.00", "", "57,000.00"],
            ["01/04/2025", "ACH D- BAJAJ FINANCE-EMI", "", "60,000.00", "", "-3,000.00"]]
    pdf = render_pdf("Kotak Mahindra Bank - Account Statement",
                     [("Account No", "1234567890"), ("IFSC", "KKBK0000958"), ("Opening Balance", "10,000.00")],
                     [("Transactions", ["Date", "Narration", "Chq/Ref No", "Withdrawal", "Deposit", "Balance"], rows)],
                     NOW)
    app, client = _app(JOB_DELAY=0)
    data = _done(client, _upload(client, pdf, "kotak.pdf").json["data"]["client_id"])
    assert data["account_info"]["bank_name"] == "Kotak Mahindra Bank"
    assert data["account_info"]["account_number"] == "1234567890" and data["account_info"]["ifsc"] == "KKBK0000958"
    assert [(t["amount"], t["type"], t["mode"]) for t in data["transactions"]] == [
        (Decimal("120.00"), "DEBIT", "UPI"), (Decimal("50000.00"), "CREDIT", "NEFT"), (Decimal("2000.00"), "DEBIT", "ATM"),
        (Decimal("60000.00"), "DEBIT", "OTHERS")]
    assert [d["row"] for d in data["balance_discrepancies"]] == [3]         # 59,880 - 2,000 is not 57,000
    assert data["negative_balance_days"] == [{"date": "2025-04-01", "balance": Decimal("-3000.0")}]
    assert data["mismatched_sequence_dates"] == [{"row": 4, "date": "2025-04-01", "previous_date": "2025-04-02"}]


def test_xlsx_export_is_deterministic_and_complete():
    app, client = _app(JOB_DELAY=0)
    pdf, st = statement_pdf(person_ledger("9876543210", 0, NOW.date()), "icici", months=3, inconsistent=True)
    client_id = _upload(client, pdf).json["data"]["client_id"]
    doc = app.extensions["sandbox"].store.get("sandbox-client", "finpass.bsa_docs", client_id)
    document = bsa.export_document(doc)
    first, second = bsa.export_xlsx(document), bsa.export_xlsx(json.loads(json.dumps(document)))
    assert first == second
    # the document's own dates, never the wall clock (openpyxl's save stamps "modified" with now: a second ticking
    # between the two exports above made them differ)
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        core = zf.read("docProps/core.xml").decode()
    stamps = re.findall(r"<dcterms:(created|modified)[^>]*>([^<]+)<", core)
    day = (document["account_info"] or {}).get("generation_date") or document["statement_period"]["to"]
    assert len(stamps) == 2 and {value for _, value in stamps} == {f"{day}T00:00:00Z"}, core
    wb = load_workbook(io.BytesIO(first))
    summary = dict(wb["Summary"].iter_rows(min_row=2, values_only=True))
    assert summary["transaction_count"] == len(st.lines)
    assert Decimal(str(summary["total_debits"])) == -sum(t.amount for t in st.lines if t.amount < 0)
    months = list(wb["Monthly Summary"].iter_rows(min_row=2, values_only=True))
    assert [m[0] for m in months] == sorted({t.date.strftime("%Y-%m") for t in st.lines})
    seq = list(wb["Sequence Mismatches"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[1].date().isoformat()) for r in seq] == [
        (d["row"], d["date"]) for d in st.injected["mismatched_sequence_dates"]]


def test_export_links_are_bound_to_their_path_and_document():
    app, client = _app(JOB_DELAY=0)
    pdf, _ = statement_pdf(person_ledger("9876543210", 0, NOW.date()), "sbi", months=1)
    client_id = _upload(client, pdf).json["data"]["client_id"]
    data = client.get(RESULT, headers=KEYS, query_string={"client_id": client_id}).json["data"]
    assert data["status"] == "completed"
    url = data["json_report_url"].replace("http://localhost", "")
    csv = client.get(url.replace(".json?", ".csv?"))
    assert csv.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in csv.data   # the path is signed
    no_token = client.get(f"/finpass/files/bsa/{client_id}.json")
    assert no_token.status_code == 403 and b"<Code>AccessDenied</Code>" in no_token.data
    # a genuine link to a document that is gone (tenant reset) is the store's 404 NoSuchKey
    app.extensions["sandbox"].store.delete("sandbox-client", "finpass.bsa_docs", client_id)
    gone = client.get(url)
    assert gone.status_code == 404 and b"<Code>NoSuchKey</Code>" in gone.data
    assert client.post(url).status_code == 405


@pytest.mark.parametrize("name", ["statement", "STATEMENT.JPEG"])
def test_extension_is_optional_and_case_insensitive(name):
    app, client = _app(JOB_DELAY=0)
    from PIL import Image
    raw = io.BytesIO()
    Image.new("RGB", (8, 8)).save(raw, "JPEG")
    assert _upload(client, raw.getvalue(), name).status_code == 200
