"""Open Finance hosted pages: the report PDF download (catalogue page open_finance.financial_report_pdf)."""
from __future__ import annotations

from flask import Response

from ...core.operations import page_methods


@page_methods("GET")
def financial_report_pdf(ctx, jobId: str):
    """Like the provider's pre-signed asset URL, the link carries no bearer token."""
    return Response(ctx.service.financial_report_pdf(jobId), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="report-{jobId}.pdf"'})
