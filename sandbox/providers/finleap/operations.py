"""finX overlay on the catalogue (finleap.md sections 3-7): auth, scopes and body kinds per operation.

Methods, paths, aliases and statuses live in sandbox/spec/catalogue.yaml only.
"""
from __future__ import annotations

from pathlib import Path

from ...core.operations import Op, Provider
from ...core.schemes import Basic, Bearer
from . import errors
from .data import SCENARIOS
from .widget import sync_sca_page, widget_page
from .service import FinleapService

ACCOUNTS, BALANCE, TRANSACTIONS = "accounts=ro", "balance=ro", "transactions=ro"   # finleap.md s.3 scopes

PROVIDER = Provider(
    name="finleap",
    title="finleap connect finX",
    service=FinleapService,
    render_error=errors.render,
    # Basic with the client id/secret on /onetime/* and /auth/token, Bearer user tokens on /rest/* (s.3)
    schemes={"basic": Basic("Invalid client credentials."), "bearer": Bearer()},
    default=Op(auth="bearer"),
    operations={
        "create_income_report_link": Op(auth="basic", body="json"),
        "create_account_verification_link": Op(auth="basic", body="json"),
        "create_token": Op(auth="basic", body="json_or_form"),   # OAuth clients post forms, nrich SDKs JSON
        "get_income_report": Op(),
        "get_account_verification_report": Op(),
        "list_accounts": Op(scope=ACCOUNTS),
        "get_account": Op(scope=ACCOUNTS),
        "get_account_balance": Op(scope=BALANCE),
        "list_transactions": Op(scope=TRANSACTIONS),
        "get_transaction": Op(scope=TRANSACTIONS),
        "list_notifications": Op(),
        "create_notification": Op(body="json"),
        "get_notification": Op(),
        "update_notification": Op(body="json"),
        "delete_notification": Op(),
        "list_accesses": Op(scope=ACCOUNTS),
        "get_access": Op(scope=ACCOUNTS),
        "create_sync": Op(scope=ACCOUNTS, body="json"),
        "get_sync": Op(scope=ACCOUNTS),
        # --- finleap-products.md: widget links of every product, payments, receipts (service.py, widget.py) -------
        # s.2: link creation and receipts are client calls (HTTP Basic); products are switched per client in the
        # service (403 code 1002), so no scope here. GET receipt ignores any body ([OTP] sends Content-Type only).
        "create_onetime_access_link": Op(auth="basic", body="json"),
        "create_ongoing_access_link": Op(auth="basic", body="json"),
        "create_ongoing_sync_link": Op(auth="basic", body="json"),
        "create_onetime_payment_link": Op(auth="basic", body="json"),
        "create_ongoing_payment_link": Op(auth="basic", body="json"),
        "get_payment_receipt": Op(auth="basic"),
        "create_onetime_risk_report_link": Op(auth="basic", body="json"),
        "create_ongoing_risk_report_link": Op(auth="basic", body="json"),
        # --- finleap-products.md: securities, contracts, aggregations, risk reports, categorize (insights.py) ------
        # s.13: scopes accounts=ro for securities, transactions=ro for contracts and aggregations (inferred)
        "list_securities": Op(scope=ACCOUNTS),
        "list_contracts": Op(scope=TRANSACTIONS),
        "get_contract": Op(scope=TRANSACTIONS),
        "delete_contract": Op(scope=TRANSACTIONS),
        "list_payment_partners": Op(scope=TRANSACTIONS),
        "list_categories": Op(scope=TRANSACTIONS),
        "get_timeline": Op(scope=TRANSACTIONS),
        "get_category_tree": Op(auth="basic"),            # s.2: client auth (HTTP Basic)
        "get_risk_report": Op(),                          # bound to the flow's token, as get_income_report (s.9)
        "categorize_transactions": Op(auth="basic", body="json"),   # s.10: a bare JSON array, Basic auth
    },
    pages={"widget": widget_page, "sync_sca": sync_sca_page},
    pages_dir=str(Path(__file__).with_name("pages")),
    scenarios=SCENARIOS,
    fire_webhook="fire_webhook",
    before="before_operation",   # finleap-products.md s.3: one-time retention and autosync, lazily on /rest/* calls
    webhooks={"notification": "defs/webhook_notification"},   # the payload each event carries (s.7)
)
