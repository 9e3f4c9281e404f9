"""Finpass Bank Statement Analyser contract tests (finpass.md section 5, page finpass.bsa_exports), by catalogue id.
In-process by default; over HTTP with --base-url:

    sandbox check finpass --base-url http://127.0.0.1:8080/finpass

Statements come from the repo's generator (sandbox/providers/finpass/statements.py): what the analyser returns is
compared with what the generator printed, so a client written from finpass.md can check its own integration.
"""
from __future__ import annotations

import hashlib
import io
import json
import uuid
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from openpyxl import load_workbook

from sandbox.core.store import MemoryStore
from sandbox.spec import operations

from .checks import not_a_server_error, provider_error, response_schema_conformance, status_in
from .finpass_app import finpass_app
from .plugin import make_transport

OP = {name: op["id"] for name, op in operations("finpass").items()}
KIND = "finpass.bsa_statement"
CHECKPOINTS = ["uploaded", "parsing", "extracting", "analysing", "analysing_completed"]
TODAY = date(2025, 7, 23)


@pytest.fixture
def fx(contract_options):
    transport, control = make_transport(contract_options, "finpass",
                                        lambda: finpass_app({"SEED": 11}, store=MemoryStore()))
    if control:
        control.reset()
        control.clock("freeze")
    yield Bsa(transport, control, contract_options)
    if control:
        control.clear_policy(kind=KIND)
        control.clock("reset")


def multipart(fields: dict | None = None, files: dict | None = None) -> tuple[bytes, str]:
    boundary = "----finpass" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in (fields or {}).items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content, ctype) in (files or {}).items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                  f"Content-Type: {ctype}\r\n\r\n".encode())
        out.write(content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


class Bsa:
    def __init__(self, transport, control, opts):
        self.t, self.control, self.opts = transport, control, opts

    def keys(self, key=None, secret=None) -> dict:
        return {"x-api-key": key or self.opts["client_id"], "x-api-secret": secret or self.opts["client_secret"]}

    def upload(self, content: bytes | None, filename="statement.pdf", ctype="application/pdf", password=None,
               headers=None):
        files = {"file": (filename, content, ctype)} if content is not None else {}
        body, content_type = multipart({"password": password} if password else {}, files)
        r = self.t.call(OP["bsa_upload_statement"], data=body,
                        headers={**(self.keys() if headers is None else headers), "Content-Type": content_type})
        not_a_server_error(r)
        response_schema_conformance(r)
        return r

    def uploaded(self, content: bytes, **kw) -> str:
        r = self.upload(content, **kw)
        status_in(r, 200)
        assert r.json["data"]["status"] == "processing"
        return r.json["data"]["client_id"]

    def result(self, client_id=None, headers=None, post=False, alias=None, query=None):
        if post:
            r = self.t.call(OP["bsa_statement_result"], json_body={"client_id": client_id} if client_id else {},
                            headers=self.keys() if headers is None else headers, alias=alias)
        else:
            r = self.t.call(OP["bsa_statement_result"], headers=self.keys() if headers is None else headers, alias=alias,
                            query=query if query is not None else ({"client_id": client_id} if client_id else None))
        not_a_server_error(r)
        response_schema_conformance(r)
        return r

    def completed(self, client_id: str, polls: int = 20) -> dict:
        for _ in range(polls):
            r = self.result(client_id)
            status_in(r, 200)
            data = json.loads(r.content, parse_float=Decimal)["data"]
            if data["status"] != "processing":
                return data
            if self.control:
                self.control.clock("advance", seconds=1)
        raise AssertionError(f"{client_id} still processing after {polls} polls")

    def download(self, url: str):
        parts = urlsplit(url)
        r = self.t.get(parts.path + (f"?{parts.query}" if parts.query else ""))
        r.operation = "finpass.bsa_exports"   # its errors are checked against finpass's error schema
        not_a_server_error(r)
        return r


def _statement(bank="hdfc", inconsistent=True, password=None, months=4):
    from sandbox.providers.finpass.statements import person_ledger, statement_pdf
    return statement_pdf(person_ledger("9876543210", seed=0, today=TODAY), bank, months=months,
                         inconsistent=inconsistent, password=password)


def _png() -> bytes:
    from PIL import Image
    raw = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 30, 30)).save(raw, "PNG")
    return raw.getvalue()


def _dec(value) -> Decimal:
    return Decimal(str(value))


# --- the happy path ------------------------------------------------------------------------------------------------
@pytest.mark.control
def test_statement_result_walks_the_checkpoints_on_the_sandbox_clock(fx):
    fx.control.policy(kind=KIND, mode="auto", seconds=1)
    pdf, _ = _statement("sbi", inconsistent=False, months=2)
    client_id = fx.uploaded(pdf)
    seen = []
    for _ in range(len(CHECKPOINTS)):
        data = fx.result(client_id).json["data"]
        seen.append((data["status"], data["checkpoint"], data["progress"]))
        fx.control.clock("advance", seconds=1)
    assert [s[1] for s in seen] == CHECKPOINTS
    assert [s[0] for s in seen] == ["processing"] * 4 + ["completed"]
    progress = [s[2] for s in seen]
    assert progress[-1] is None and all(0 <= p <= 100 for p in progress[:-1]) and progress[:-1] == sorted(progress[:-1])
    processing = fx.result(client_id).json["data"]
    assert processing["excel_report_url"] and processing["transactions"]
    # without clock moves nothing advances: a second upload stays at its first checkpoint however often polled
    other = fx.uploaded(pdf)
    assert {fx.result(other).json["data"]["checkpoint"] for _ in range(3)} == {"uploaded"}


@pytest.mark.parametrize("bank", ["sbi", "hdfc", "icici", "axis"])
def test_uploaded_statement_is_parsed_and_its_inconsistencies_flagged(fx, bank):
    pdf, st = _statement(bank, inconsistent=True)
    data = fx.completed(fx.uploaded(pdf, filename=f"{bank}-statement.PDF"))
    assert data["status"] == "completed" and data["source"] == "pdf_text" and data["error_message"] is None
    assert data["account_info"] == st.account_info
    assert [(t["date"], t["value_date"], t["narration"], t["reference"], t["amount"], t["type"], t["balance"])
            for t in data["transactions"]] == [
        (t.date.isoformat(), t.value_date and t.value_date.isoformat(), t.narration, t.reference, abs(t.amount),
         t.type, t.balance) for t in st.lines]
    inj = st.injected
    assert [(d["row"], d["expected_balance"], d["reported_balance"]) for d in data["balance_discrepancies"]] == [
        (d["row"], Decimal(d["expected_balance"]), Decimal(d["reported_balance"])) for d in inj["balance_discrepancies"]]
    assert [(d["date"], d["balance"]) for d in data["negative_balance_days"]] == [
        (d["date"], Decimal(d["balance"])) for d in inj["negative_balance_days"]]
    assert data["mismatched_sequence_dates"] == inj["mismatched_sequence_dates"]
    credits = sum((t.amount for t in st.lines if t.amount > 0), Decimal(0))
    assert data["summary"]["total_credits"] == credits and data["summary"]["opening_balance"] == st.opening_balance
    assert data["summary"]["closing_balance"] == st.lines[-1].balance
    assert data["statement_period"] == {"from": st.period_from.isoformat(), "to": st.period_to.isoformat()}


def test_clean_statement_has_no_flags_and_the_same_result_on_every_path(fx):
    pdf, st = _statement("icici", inconsistent=False)
    client_id = fx.uploaded(pdf, password="ignored-for-unprotected-files")
    data = fx.completed(client_id)
    assert data["balance_discrepancies"] == data["negative_balance_days"] == data["mismatched_sequence_dates"] == []
    assert len(data["transactions"]) == len(st.lines)
    for post, alias in ((True, 0), (False, 1), (True, 2)):   # POST body, the /bank/ path, both
        again = fx.result(client_id, post=post, alias=alias)
        status_in(again, 200)
        assert again.json["data"]["transactions"] == json.loads(fx.result(client_id).content)["data"]["transactions"]


def test_password_protected_statement(fx):
    pdf, st = _statement("hdfc", inconsistent=False, password="HDFC@1234")
    provider_error(fx.upload(pdf), 422)
    assert fx.upload(pdf).json["message_code"] == "password_required"
    wrong = fx.upload(pdf, password="nope")
    provider_error(wrong, 422)
    assert wrong.json["message_code"] == "incorrect_password"
    data = fx.completed(fx.uploaded(pdf, password="HDFC@1234"))
    assert [t["balance"] for t in data["transactions"]] == [t.balance for t in st.lines]


# --- exports ---------------------------------------------------------------------------------------------------------
def test_exports_open_and_match_the_analysis(fx):
    pdf, st = _statement("axis", inconsistent=True)
    data = fx.completed(fx.uploaded(pdf))
    exported = fx.download(data["json_report_url"])
    status_in(exported, 200)
    assert exported.headers["Content-Type"].startswith("application/json")
    document = json.loads(exported.content, parse_float=Decimal)
    skip = {"checkpoint", "progress", "error_message", "excel_report_url", "json_report_url"}
    assert document == {k: v for k, v in data.items() if k not in skip}
    xlsx = fx.download(data["excel_report_url"])
    status_in(xlsx, 200)
    assert xlsx.content[:2] == b"PK"
    wb = load_workbook(io.BytesIO(xlsx.content))
    assert wb.sheetnames == ["Account Info", "Transactions", "Summary", "Monthly Summary", "Balance Discrepancies",
                             "Negative Balance Days", "Sequence Mismatches"]
    rows = list(wb["Transactions"].iter_rows(min_row=2, values_only=True))
    assert [(r[0].date().isoformat(), r[2], r[3], r[4], _dec(r[6]), _dec(r[7])) for r in rows] == [
        (t.date.isoformat(), t.narration, t.reference, t.type, abs(t.amount), t.balance) for t in st.lines]
    info = dict(wb["Account Info"].iter_rows(min_row=2, values_only=True))
    assert {k: info[k] for k in st.account_info} == st.account_info
    flagged = list(wb["Balance Discrepancies"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], _dec(r[5])) for r in flagged] == [
        (d["row"], Decimal(d["difference"])) for d in st.injected["balance_discrepancies"]]
    negative = list(wb["Negative Balance Days"].iter_rows(min_row=2, values_only=True))
    assert [(r[0].date().isoformat(), _dec(r[1])) for r in negative] == [
        (d["date"], Decimal(d["balance"])) for d in st.injected["negative_balance_days"]]


def denied(result, status: int, code: str, message: str | None = None) -> None:
    """A pre-signed link refused like an object store refuses it: S3's XML error body."""
    status_in(result, status)
    assert result.headers["Content-Type"].startswith("application/xml"), result.headers
    assert f"<Code>{code}</Code>" in result.text, result.text
    if message:
        assert f"<Message>{message}</Message>" in result.text, result.text


@pytest.mark.control
def test_export_links_are_signed_and_expire_on_the_sandbox_clock(fx):
    pdf, _ = _statement("sbi", inconsistent=False, months=2)
    data = fx.completed(fx.uploaded(pdf))
    url = data["json_report_url"]
    status_in(fx.download(url), 200)
    assert fx.download(url).headers.get("Cache-Control", "").startswith("private")
    denied(fx.download(url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")), 403, "SignatureDoesNotMatch")
    denied(fx.download(url.replace(".json?", ".xlsx?")), 403, "SignatureDoesNotMatch")   # json link, xlsx file
    denied(fx.download(url.split("?")[0]), 403, "AccessDenied")                         # no signature at all
    fx.control.clock("advance", seconds=899)
    status_in(fx.download(url), 200)
    fx.control.clock("advance", seconds=2)
    denied(fx.download(url), 403, "AccessDenied", "Request has expired")
    fresh = fx.completed(data["client_id"])   # a new poll signs new links
    status_in(fx.download(fresh["excel_report_url"]), 200)


# --- images and scans: synthetic statements --------------------------------------------------------------------------
def test_images_get_a_deterministic_synthetic_statement(fx):
    png = _png()
    first = fx.completed(fx.uploaded(png, filename="scan.png", ctype="image/png"))
    second = fx.completed(fx.uploaded(png, filename="again.PNG", ctype="image/png"))
    assert first["source"] == second["source"] == "synthetic"
    assert first["client_id"] != second["client_id"]
    assert first["transactions"] == second["transactions"] and first["account_info"] == second["account_info"]
    assert len(first["transactions"]) > 20 and first["balance_discrepancies"] == []
    balances = [Decimal(first["summary"]["opening_balance"])]
    for t in first["transactions"]:   # the synthetic statement is internally consistent
        balances.append(balances[-1] + (t["amount"] if t["type"] == "CREDIT" else -t["amount"]))
        assert balances[-1] == t["balance"]
    jpeg = io.BytesIO()
    from PIL import Image
    Image.new("RGB", (30, 30), (0, 90, 0)).save(jpeg, "JPEG")
    other = fx.completed(fx.uploaded(jpeg.getvalue(), filename="photo.jpg", ctype="image/jpeg"))
    assert other["account_info"]["account_number"] != first["account_info"]["account_number"]


def test_pdf_without_text_layer_gets_a_synthetic_statement(fx):
    from fpdf import FPDF
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60)
    data = fx.completed(fx.uploaded(bytes(pdf.output()), filename="scanned.pdf"))
    assert data["source"] == "synthetic" and data["status"] == "completed" and data["transactions"]


def test_pdf_with_text_but_no_transactions_fails_after_extracting(fx):
    from fpdf import FPDF
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Dear customer, your loan sanction letter is attached.")
    data = fx.completed(fx.uploaded(bytes(pdf.output()), filename="letter.pdf"))
    assert data["status"] == "failed" and data["checkpoint"] == "extraction_failed" and data["progress"] is None
    assert "No transactions" in data["error_message"]
    assert data["transactions"] is None and data["json_report_url"] is None


# --- bad input -------------------------------------------------------------------------------------------------------
def test_bad_files_get_the_documented_envelope_and_code(fx):
    pdf, _ = _statement("hdfc", inconsistent=False, months=1)
    cases = [
        (fx.upload(None), 400, "file_required"),
        (fx.upload(b"hello", filename="notes.txt", ctype="text/plain"), 400, "invalid_file_type"),
        (fx.upload(b"%PDF-1.4 whatever", filename="statement.docx"), 400, "invalid_file_type"),
        (fx.upload(_png(), filename="statement.pdf"), 400, "invalid_file_type"),        # a PNG named .pdf
        (fx.upload(pdf, filename="statement.jpg", ctype="image/jpeg"), 400, "invalid_file_type"),
        (fx.upload(b"just some text, not a pdf", filename="statement.pdf"), 400, "invalid_file_type"),
        (fx.upload(b"", filename="statement.pdf"), 422, "empty_file"),
        (fx.upload(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <</Type /Catalog", filename="broken.pdf"), 422,
         "unreadable_file"),
        (fx.upload(pdf[: len(pdf) // 3], filename="truncated.pdf"), 422, "unreadable_file"),
        (fx.upload(_png()[:30], filename="cut.png", ctype="image/png"), 422, "unreadable_file"),
    ]
    if not fx.opts.get("base_url"):
        # over HTTP a server answers 413 before reading a 2 MB body and closes, and `requests` (no Expect:
        # 100-continue) then sees a reset while still sending: tests/test_trust_input_served.py covers a served
        # 413 with raw sockets
        cases.append((fx.upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * 2_000_000, filename="huge.png",
                                ctype="image/png"), 413, None))
    for result, status, code in cases:
        provider_error(result, status)
        body = result.json
        assert body["status_code"] == status and body["success"] is False and body["data"] is None
        if code:
            assert body["message_code"] == code, (code, body)
    json_instead = fx.t.call(OP["bsa_upload_statement"], json_body={"file": "statement.pdf"}, headers=fx.keys())
    provider_error(json_instead, 400)


def test_result_errors(fx):
    provider_error(fx.result(), 400)
    assert fx.result().json["message_code"] == "client_id_required"
    assert fx.result(post=True).json["message_code"] == "client_id_required"
    unknown = fx.result("bank_statement_doesnotexist0000000")
    provider_error(unknown, 404, {"data": None, "status_code": 404, "success": False, "message": "Client not found",
                                  "message_code": "client_not_found"})
    provider_error(fx.result(query={"client_id": "x" * 300}), 400)
    bad_body = fx.t.call(OP["bsa_statement_result"], json_body={"client_id": 42}, headers=fx.keys(), method="POST",
                         alias=0)
    provider_error(bad_body, 400)


def test_both_operations_need_the_key_pair(fx):
    pdf, _ = _statement("sbi", inconsistent=False, months=1)
    unauthorized = {"status_code": 401, "success": False,
                    "message": "Unauthorized access. Invalid or missing API credentials.", "message_code": "unauthorized"}
    for headers in ({}, fx.keys(secret="wrong"), {"X-API-KEY": "nobody", "X-API-SECRET": "x"}):
        provider_error(fx.upload(pdf, headers=headers), 401, unauthorized)
        provider_error(fx.result("bank_statement_x", headers=headers), 401, unauthorized)
    upper = {"X-API-Key": fx.opts["client_id"], "X-API-Secret": fx.opts["client_secret"]}
    status_in(fx.upload(pdf, headers=upper), 200)


@pytest.mark.control
def test_statements_are_visible_only_to_the_key_pair_that_uploaded_them(fx):
    pdf, _ = _statement("icici", inconsistent=False, months=1)
    client_id = fx.uploaded(pdf)
    two = fx.control.create_client(client_id="lender-two", client_secret="lender-two-secret")
    other = fx.keys(two["client_id"], "lender-two-secret")
    provider_error(fx.result(client_id, headers=other), 404)
    provider_error(fx.result(client_id, headers=other, post=True), 404)
    status_in(fx.result(client_id), 200)


def test_same_file_same_analysis_by_content_hash(fx):
    png = _png()
    assert hashlib.sha256(png).hexdigest() == hashlib.sha256(_png()).hexdigest()   # PNG encoding is deterministic
    a = fx.completed(fx.uploaded(png, filename="a.png", ctype="image/png"))
    b = fx.completed(fx.uploaded(_png(), filename="b.jpeg.png", ctype="image/png"))
    assert a["transactions"] == b["transactions"]
