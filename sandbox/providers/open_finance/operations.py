"""Open Finance overlay on the catalogue (open_finance.md section 3): what the catalogue does not say.

Methods, paths, aliases and statuses live in sandbox/spec/catalogue.yaml only.
"""
from __future__ import annotations

from ...core.operations import Op, Provider
from ...core.schemes import Bearer, BodyCredentials
from . import errors
from .data import SCENARIOS
from .pages import financial_report_pdf
from .service import OpenFinanceService, REPORT_SCOPE

PROVIDER = Provider(
    name="open_finance",
    title="Open Finance",
    service=OpenFinanceService,
    render_error=errors.render,
    schemes={"bearer": Bearer(), "client_body": BodyCredentials("clientId", "clientSecret")},
    default=Op(auth="bearer"),
    operations={
        # report guide step 1: JSON {userId, clientId, clientSecret}; form bodies accepted as well
        "create_token": Op(auth="client_body", body="json_or_form"),
        # "No body is required; ignore any body" (section 5); POST .../financial-report/ -> 400 Missing customerId
        "create_financial_report": Op(scope=REPORT_SCOPE, envelope="report", empty_tail=True),
        "get_financial_report": Op(scope=REPORT_SCOPE, envelope="report"),
        # --- connections, journey, open banking, providers, branches (connections.py) ---------------------------
        # --- accounts, transactions, categories, securities (accounts.py) ----------------------------------------
        # --- monthly report, decision and scoring jobs (decisions.py) ---------------------------------------------
    },
    pages={"financial_report_pdf": financial_report_pdf},
    scenarios=SCENARIOS,
)
