"""Open Finance hosted pages: the report PDF download (catalogue page open_finance.financial_report_pdf)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Response

from ...core.clock import isoformat
from ...core.operations import page_methods
from ...core.signing import ExpiredToken, InvalidToken, presigned_error
from .service import PDF_LINK


def _denied(code: str, message: str | None = None, **details) -> Response:
    return Response(presigned_error(code, message, **details), status=403, mimetype="application/xml")


@page_methods("GET")
def financial_report_pdf(ctx, jobId: str):
    """A pre-signed link, like the provider's S3 asset URL (catalogue ``real_url`` on open-finance-assets.s3):
    no bearer token, but a missing, tampered or expired signature gets S3's 403 XML (AccessDenied /
    SignatureDoesNotMatch / "Request has expired"), checked on the link tenant's sandbox clock."""
    sandbox = ctx.sandbox
    query = ctx.request.args.to_dict()
    try:
        signed = sandbox.signer.verify_url(ctx.request.path, query, purpose=PDF_LINK, now=sandbox.clock.now)
    except ExpiredToken:
        expired = datetime.fromtimestamp(int(query["expires"]), timezone.utc)
        return _denied("AccessDenied", "Request has expired", Expires=isoformat(expired),
                       ServerTime=isoformat(sandbox.clock.now(query.get("tenant"))))
    except InvalidToken:
        if "signature" in query:
            return _denied("SignatureDoesNotMatch")
        return _denied("AccessDenied")
    if signed.get("tenant") is None:
        return _denied("AccessDenied")
    ctx.tenant = signed["tenant"]   # the journal files the download under the link's tenant
    return Response(ctx.service.financial_report_pdf(jobId, signed["tenant"]), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="report-{jobId}.pdf"',
                             "Cache-Control": "private, max-age=0"})
