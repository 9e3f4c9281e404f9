"""Open Finance hosted pages: the report PDF download (catalogue page open_finance.financial_report_pdf)."""
from __future__ import annotations

from flask import Response

from ...core.dispatch import open_presigned
from ...core.operations import page_methods
from .service import PDF_LINK


@page_methods("GET")
def financial_report_pdf(ctx, jobId: str):
    """A pre-signed link, like the provider's S3 asset URL (catalogue ``real_url`` on open-finance-assets.s3):
    no bearer token, but a missing, tampered or expired signature gets S3's 403 XML (AccessDenied /
    SignatureDoesNotMatch / "Request has expired"), checked on the link tenant's sandbox clock."""
    signed, denied = open_presigned(ctx, PDF_LINK)
    if denied:
        return denied
    return Response(ctx.service.financial_report_pdf(jobId, signed["tenant"]), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="report-{jobId}.pdf"',
                             "Cache-Control": "private, max-age=0"})
