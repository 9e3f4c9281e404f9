"""Open Finance route table and thin views. Paths are relative to the provider prefix ``/open-finance``.

The table is the only place a path is written (catalogue.yaml, provider open_finance): change a guess here.
"""
from __future__ import annotations

from flask import Response, request, url_for

from ...core.http import bearer_token, json_body, json_response, query_args, set_tenant

# operation id -> (method, path, aliases); the catalogue id is "open_finance.<operation>"
ROUTES = {
    "create_token": ("POST", "/oauth/token", []),
    "create_financial_report": ("POST", "/financial-report/{customerId}", ["/v2/financial-report/{customerId}"]),
    "get_financial_report": ("GET", "/financial-report/{jobId}", ["/v2/financial-report/{jobId}"]),
}
# hosted pages (catalogue "pages"), relative to pages_prefix /open-finance
PAGES = {
    "financial_report_pdf": ("GET", "/assets/financial-report/{jobId}.pdf", []),
}


class Views:
    def __init__(self, service):
        self.service = service

    def _auth(self, scope: str) -> dict:
        tok = self.service.authorize(bearer_token(), scope)
        set_tenant(tok["tenant"])
        return tok

    def create_token(self):
        body = json_body(allow_form=True)
        set_tenant(self.service.client_tenant(body["clientId"]))  # journal failed logins to the client too
        return self.service.create_token(body)

    def create_financial_report(self, customerId: str = ""):
        tok = self._auth("read:connections")
        # "No body is required; ignore any body" (open_finance.md section 5): the body is not parsed
        return self.service.create_financial_report(tok, customerId)

    def get_financial_report(self, jobId: str):
        tok = self._auth("read:connections")
        args = query_args()
        with_pdf = args.get("withPdf") == "1"
        url = url_for(f"{request.blueprint}.financial_report_pdf", jobId=jobId, _external=True) if with_pdf else None
        return json_response(self.service.get_financial_report(tok, jobId, url))

    def financial_report_pdf(self, jobId: str):
        return Response(self.service.financial_report_pdf(jobId), mimetype="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="report-{jobId}.pdf"'})
