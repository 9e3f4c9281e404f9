"""Finpass Bank Statement Analyser (finpass.md section 5; page finpass.bsa_exports of section 10).

``upload-statement`` takes a multipart ``file`` (PDF, PNG, JPG, JPEG; ``password`` for protected PDFs). The file is
checked at once (type by extension and magic bytes, size, readability, password) and a PDF with a text layer is
really parsed (parsing.py: pypdf); images and PDFs without text get a deterministic synthetic statement from the
person ledger keyed by the file's hash (statements.py). ``statement-result`` walks the checkpoints
``uploaded -> parsing -> extracting -> analysing -> analysing_completed`` as a job on the sandbox clock, then
returns the analysis with signed, expiring links to its Excel and JSON exports. Documents are scoped to the key
pair that uploaded them.
"""
from __future__ import annotations

import hashlib
import io
import json
import string
import zipfile
from datetime import date, datetime

from flask import Response

from ...core.ids import token
from ...core.operations import page_methods
from ...core.dispatch import open_presigned, presigned_denial
from ...core.signing import expires_at
from .errors import FinpassError, InvalidInput, NotFoundError, Unprocessable
from .parsing import EXTENSIONS, StatementFileError, analyse, check_image, parse_pdf, sniff
from .people import People
from .statements import build_statement

JOB_KIND = "finpass.bsa_statement"
CHECKPOINTS = ["uploaded", "parsing", "extracting", "analysing", "analysing_completed"]
FAILED_PATH = ["uploaded", "parsing", "extracting", "extraction_failed"]
PROGRESS = {"uploaded": 10, "parsing": 30, "extracting": 55, "analysing": 80}
LINK_PURPOSE = "finpass.bsa_exports"
EXPORT_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "json": "application/json"}
_DOCS = "finpass.bsa_docs"
_ALNUM = string.ascii_lowercase + string.digits
SYNTHETIC_MONTHS = 6

SCENARIOS: list[dict] = [
    {"kind": "bsa upload", "value": "PDF with a text layer",
     "effect": "parsed: account_info and transactions from the document; flags what it finds", "source": "finpass.md s.5"},
    {"kind": "bsa upload", "value": "PNG/JPG image or a PDF without text (scan)",
     "effect": "a deterministic synthetic statement of the person keyed by the file's SHA-256"},
    {"kind": "bsa upload", "value": "PDF with text but no transaction table",
     "effect": "statement-result ends status failed, checkpoint extraction_failed"},
    {"kind": "bsa upload", "value": "protected PDF without password / wrong password",
     "effect": "422 password_required / incorrect_password"},
    {"kind": "bsa generator", "value": "python -m sandbox.providers.finpass.statements --bank sbi|hdfc|icici|axis "
                                       "--out s.pdf [--inconsistent] [--password x]",
     "effect": "a statement the analyser reads back exactly; --inconsistent adds one balance discrepancy, one "
               "negative-balance day and one out-of-sequence date"},
]


class StatementAnalyser:
    def setup(self) -> None:
        """One checkpoint every second on the sandbox clock or every second poll, whichever comes first."""
        self.sb.jobs.register_default(JOB_KIND, {"mode": "auto", "seconds": 1.0, "polls": 2})

    def _bsa_docs(self, tenant: str):
        return self.sb.collection(tenant, _DOCS)

    # --- upload ------------------------------------------------------------------------------------------------
    def bsa_upload_statement(self, ctx) -> dict:
        """Check and read the uploaded statement now; its analysis is revealed checkpoint by checkpoint."""
        tenant = ctx.tenant
        uploads = [f for f in ctx.files.get("file") or [] if f is not None]
        upload = uploads[0] if uploads else None
        if upload is None:
            raise InvalidInput("file is required: send the statement as multipart field 'file'", code="file_required")
        name = (upload.filename or "").strip()
        ext = name.rsplit(".", 1)[1].lower() if "." in name else ""
        if ext and ext not in EXTENSIONS:
            raise InvalidInput(f"Unsupported file type .{ext[:10]}: upload a PDF, PNG, JPG or JPEG",
                               code="invalid_file_type")
        limit = _max_bytes(self.sb.config)
        data = upload.read(limit + 1)
        if not data:
            raise Unprocessable("The uploaded file is empty", code="empty_file", error_code="INVALID_INPUT")
        if len(data) > limit:
            raise FinpassError(f"The file exceeds the {limit} byte limit", code="file_too_large", status=413)
        kind = sniff(data)
        if kind is None or (ext and EXTENSIONS[ext] != kind):
            what = {"pdf": "a PDF", "png": "a PNG image", "jpeg": "a JPEG image"}.get(kind, "an unsupported file")
            raise InvalidInput(f"The file content is {what}, not what its {('.' + ext) if ext else 'name'} says: "
                               f"upload a PDF, PNG, JPG or JPEG", code="invalid_file_type")
        password = (ctx.body or {}).get("password") or None
        digest = hashlib.sha256(data).hexdigest()
        try:
            analysis, source, error = self._read_statement(tenant, kind, data, password, digest)
        except StatementFileError as exc:
            raise FinpassError(exc.message, code=exc.code, status=exc.status) from None
        now = ctx.now()
        rng = self.sb.ids.rng(tenant, "finpass.bsa")
        client_id = "bank_statement_" + token(rng, 20, _ALNUM)
        doc_id = f"svclog_{int(now.timestamp()) & 0xFFFFFFFF:08x}_{token(rng, 24, '0123456789abcdef')}"
        job = self.sb.jobs.create(tenant, JOB_KIND, FAILED_PATH if error else CHECKPOINTS, owner=client_id,
                                  data={"client_id": client_id}, failed_state="failed")
        self._bsa_docs(tenant).put(client_id, {
            "id": client_id, "client_id": client_id, "doc_id": doc_id, "job_id": job["id"], "file_name": name[:200],
            "file_type": kind, "size": len(data), "sha256": digest, "source": source, "error_message": error,
            "analysis": analysis, "created_at": now.isoformat()})
        return {"success": True, "status_code": 200, "message": "Bank statement uploaded successfully",
                "message_code": "success", "data": {"doc_id": doc_id, "client_id": client_id, "status": "processing"}}

    def _read_statement(self, tenant: str, kind: str, data: bytes, password: str | None, digest: str):
        """(analysis, source, error_message): parsed from the PDF's text, or synthetic for images and scans."""
        if kind == "pdf":
            parsed = parse_pdf(data, password)
            if parsed.has_text:
                if not parsed.lines:
                    return None, "pdf_text", "No transactions could be extracted from the statement"
                return analyse(parsed.account_info, parsed.lines, parsed.opening_balance, parsed.period_from,
                               parsed.period_to), "pdf_text", None
        else:
            check_image(data)
        ledger = People(self.sb, tenant).ledger(f"f:{digest[:32]}")
        st = build_statement(ledger, months=SYNTHETIC_MONTHS)
        return analyse(st.account_info, st.lines, st.opening_balance, st.period_from, st.period_to), "synthetic", None

    # --- result ------------------------------------------------------------------------------------------------
    def _bsa_doc(self, tenant: str, params) -> dict:
        client_id = params.get("client_id") if isinstance(params, dict) else None
        if not client_id or not isinstance(client_id, str):
            raise InvalidInput("client_id is required", code="client_id_required")
        doc = self._bsa_docs(tenant).get(client_id) if len(client_id) <= 200 else None
        if doc is None:
            raise NotFoundError("Client not found", code="client_not_found")
        return doc

    def bsa_statement_result(self, ctx) -> dict:
        """Poll a statement: ``processing`` with its checkpoint and progress, then ``completed`` with the analysis
        and export links (or ``failed``)."""
        tenant = ctx.tenant
        doc = self._bsa_doc(tenant, ctx.body or ctx.query or {})
        job = self.sb.jobs.poll(tenant, doc["job_id"]) or {}
        state = job.get("state", "failed")
        data = {"doc_id": doc["doc_id"], "client_id": doc["client_id"], "status": "processing", "checkpoint": state,
                "progress": PROGRESS.get(state), "error_message": None, "file_name": doc["file_name"],
                "source": doc["source"], "account_info": None, "statement_period": None, "transactions": None,
                "summary": None, "monthly_summary": None, "balance_discrepancies": None,
                "negative_balance_days": None, "mismatched_sequence_dates": None, "excel_report_url": None,
                "json_report_url": None}
        if state in ("extraction_failed", "failed"):
            message = doc["error_message"] or (job.get("error") or {}).get("message") or "Statement analysis failed"
            data.update(status="failed", progress=None, error_message=message)
        elif state == CHECKPOINTS[-1]:
            data.update(doc["analysis"], status="completed", progress=None)
            expires = expires_at(ctx.now(), _link_ttl(self.sb.config))
            for ext, key in (("xlsx", "excel_report_url"), ("json", "json_report_url")):
                data[key] = self.sb.signer.sign_url(ctx.url_for("bsa_exports", client_id=doc["client_id"], ext=ext),
                                                    expires=expires, tenant=tenant, purpose=LINK_PURPOSE)
        return {"data": data, "status_code": 200, "success": True, "message": "Success", "message_code": "success"}

    # --- exports -----------------------------------------------------------------------------------------------
    def bsa_export(self, tenant: str, client_id: str, ext: str) -> bytes | None:
        """The export of a completed analysis of ``tenant`` (from the verified link); None when there is none."""
        doc = self._bsa_docs(tenant).get(client_id) if ext in EXPORT_TYPES else None
        if doc is None or doc.get("analysis") is None:
            return None
        document = export_document(doc)
        if ext == "json":
            return json.dumps(document, ensure_ascii=False, indent=2).encode()
        return export_xlsx(document)


def export_document(doc: dict) -> dict:
    """The JSON export: the completed analysis as statement-result shows it (without progress or links)."""
    return {"doc_id": doc["doc_id"], "client_id": doc["client_id"], "status": "completed",
            "file_name": doc["file_name"], "source": doc["source"], **doc["analysis"]}


def export_xlsx(document: dict) -> bytes:
    """The Excel export (openpyxl): Account Info, Transactions, Summary, Monthly Summary and one sheet per flag;
    money as numeric cells, dates as date cells. Same analysis -> same bytes."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    bold = Font(bold=True)

    def sheet(title, header, rows, first=False):
        ws = wb.active if first else wb.create_sheet()
        ws.title = title
        ws.append(header)
        for cell in ws[1]:
            cell.font = bold
        for row in rows:
            ws.append(row)
        for col, name in enumerate(header, 1):
            width = max([len(str(name))] + [len(str(r[col - 1])) for r in rows if r[col - 1] is not None][:500])
            ws.column_dimensions[ws.cell(1, col).column_letter].width = min(60, width + 2)
        return ws

    def day(value):
        return date.fromisoformat(value) if value else None

    info = document["account_info"] or {}
    period = document.get("statement_period") or {}
    sheet("Account Info", ["Field", "Value"],
          [[k, v] for k, v in info.items()] + [["statement_from", period.get("from")], ["statement_to", period.get("to")],
                                               ["doc_id", document["doc_id"]], ["client_id", document["client_id"]],
                                               ["source", document["source"]]], first=True)
    ws = sheet("Transactions", ["Date", "Value Date", "Narration", "Reference", "Type", "Mode", "Amount", "Balance"],
               [[day(t["date"]), day(t["value_date"]), t["narration"], t["reference"], t["type"], t["mode"],
                 t["amount"], t["balance"]] for t in document["transactions"]])
    for row in ws.iter_rows(min_row=2):
        for cell in row[:2]:
            cell.number_format = "yyyy-mm-dd"
        for cell in row[6:8]:
            cell.number_format = "#,##0.00"
    summary = document["summary"] or {}
    sheet("Summary", ["Metric", "Value"], [[k, v] for k, v in summary.items()])
    sheet("Monthly Summary", ["Month", "Credits", "Debits", "Closing Balance"],
          [[m["month"], m["credits"], m["debits"], m["closing_balance"]] for m in document["monthly_summary"]])
    sheet("Balance Discrepancies", ["Row", "Date", "Narration", "Expected Balance", "Reported Balance", "Difference"],
          [[d["row"], day(d["date"]), d["narration"], d["expected_balance"], d["reported_balance"], d["difference"]]
           for d in document["balance_discrepancies"]])
    sheet("Negative Balance Days", ["Date", "Balance"],
          [[day(d["date"]), d["balance"]] for d in document["negative_balance_days"]])
    sheet("Sequence Mismatches", ["Row", "Date", "Previous Date"],
          [[d["row"], day(d["date"]), day(d["previous_date"])] for d in document["mismatched_sequence_dates"]])
    stamp = info.get("generation_date") or period.get("to") or "2000-01-01"
    wb.properties.created = wb.properties.modified = datetime.fromisoformat(stamp + "T00:00:00")
    wb.properties.creator = "provider-sandbox (Finpass BSA)"
    raw = io.BytesIO()
    # openpyxl's Workbook.save stamps ``modified`` with the wall clock (writer/excel.py save_workbook): two exports
    # a second apart differed. Its writer alone keeps the stamp set above.
    from openpyxl.writer.excel import ExcelWriter

    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).save()
    return _fixed_zip(raw.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite the xlsx container with fixed entry times so the same workbook always has the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, src.read(item.filename))
    return out.getvalue()


def _max_bytes(config: dict) -> int:
    return int(float(config.get("FINPASS_BSA_MAX_FILE_BYTES") or config.get("MAX_CONTENT_LENGTH") or 1 << 20))


def _link_ttl(config: dict) -> float:
    return float(config.get("FINPASS_BSA_LINK_TTL") or 900.0)


_denied = presigned_denial


@page_methods("GET")
def bsa_exports_page(ctx, client_id: str, ext: str):
    """``/files/bsa/{client_id}.{ext}?tenant=…&expires=…&signature=…``: the Excel or JSON export of a completed
    analysis. Like the provider's pre-signed storage URLs (catalogue real_url), it needs no API keys but its
    signature, checked on the link tenant's sandbox clock: a missing, tampered or expired one gets the object
    store's 403 XML (AccessDenied / SignatureDoesNotMatch / "Request has expired")."""
    signed, denied = open_presigned(ctx, LINK_PURPOSE)
    if denied:
        return denied
    content = ctx.service.bsa_export(signed["tenant"], client_id, ext)
    if content is None:
        return _denied("NoSuchKey", "The specified key does not exist.", status=404, Key=f"{client_id}.{ext}")
    return Response(content, mimetype=EXPORT_TYPES[ext],
                    headers={"Content-Disposition": f'attachment; filename="{client_id}.{ext}"',
                             "Cache-Control": "private, max-age=0"})
