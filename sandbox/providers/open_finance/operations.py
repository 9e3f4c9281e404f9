"""Open Finance overlay on the catalogue (open_finance.md section 3): what the catalogue does not say.

Methods, paths, aliases and statuses live in sandbox/spec/catalogue.yaml only.
"""
from __future__ import annotations

from pathlib import Path

from ...core.operations import Op, Provider
from ...core.schemes import Bearer, BodyCredentials
from . import errors
from .data import SCENARIOS
from .pages import bank_sca, connect_journey, financial_report_pdf
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
        # scopes per the reference's security schemes (open_finance.md section 3); branches (inferred) read:providers
        "list_connections": Op(scope="read:connections"),
        "create_connection": Op(scope="create:connections", body="json"),
        "get_connection": Op(scope="read:connections"),
        "delete_connection": Op(scope="delete:connections"),
        "refresh_connection": Op(scope="update:connections"),
        "refresh_user_connections": Op(scope="update:connections"),
        "open_banking_init": Op(scope="create:connections", body="json"),
        "open_banking_finalize": Op(scope="create:connections"),
        "list_providers": Op(scope="read:providers"),
        "list_bank_branches": Op(scope="read:providers"),
        # --- accounts, transactions, categories, securities (accounts.py) ----------------------------------------
        # scopes: the API reference's security schemes and the endpoint pages (open_finance.md section 3)
        "list_accounts": Op(scope="read:accounts"),
        "get_account": Op(scope="read:accounts"),
        "get_account_balance_history": Op(scope="read:accounts"),   # route inferred (catalogue)
        "list_transactions": Op(scope="read:transactions"),
        "get_transaction": Op(scope="read:transactions"),
        "update_transaction": Op(scope="update:transactions", body="json"),
        "get_transaction_categories": Op(scope="read:categories"),
        "get_extended_securities": Op(scope="read:extended-securities"),
        # --- monthly report, decision and scoring jobs (decisions.py) ---------------------------------------------
        # s.6: the reference declares no scope for the monthly report (any valid token of the user)
        "get_monthly_report": Op(),
        # (inferred) same job model as the financial report (s.6, s.7), so the same scope; any body is ignored
        "create_decision": Op(scope=REPORT_SCOPE),
        "get_decision": Op(scope=REPORT_SCOPE),
        "create_decision_extended": Op(scope=REPORT_SCOPE),
        "get_decision_extended": Op(scope=REPORT_SCOPE),
        "create_private_scoring": Op(scope=REPORT_SCOPE),
        "get_private_scoring": Op(scope=REPORT_SCOPE),
    },
    pages={"financial_report_pdf": financial_report_pdf, "connect_journey": connect_journey, "bank_sca": bank_sca},
    pages_dir=str(Path(__file__).parent / "pages"),      # journey templates (connections.py, pages.py)
    assets_dir=str(Path(__file__).parent / "assets"),    # provider logos (list_providers image)
    fire_webhook="fire_webhook",                          # connection status webhooks on demand (s.9)
    webhooks={"CONNECTIONS": "defs/webhook_connection_status"},   # the payload each event carries (s.9)
    scenarios=SCENARIOS,
)
