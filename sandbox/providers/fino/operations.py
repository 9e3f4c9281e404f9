"""finoOS overlay on the catalogue (fino.md sections 3-9, 11): auth, scopes, body kinds and headers per operation.

Methods, paths (71 of them inferred), aliases and statuses live in sandbox/spec/catalogue.yaml only: a corrected
path is a one-line change there. Scopes are the client's booked scopes (section 4); a tuple means any one of them.
"""
from __future__ import annotations

from pathlib import Path

from ...core.operations import Op, Provider
from ...core.schemes import Bearer, BodyCredentials
from . import banking, cockpits, connect, errors, platform
from .service import FinoService

BANKING_FETCH = ("banking", "banking-fetch")
BANKING_UPLOAD = ("banking", "banking-upload")
BANKING_CONNECT = ("banking", "banking-connect")
USER_IP = ("User-IP",)   # section 9: mandatory on sync, disconnect and money transfer

PROVIDER = Provider(
    name="fino",
    title="finoOS",
    service=FinoService,
    render_error=errors.render,
    schemes={"client_form": BodyCredentials("client_id", "client_secret", errors.INVALID_CLIENT),
             "bearer": Bearer()},
    default=Op(auth="bearer"),
    tenant_header="TenantID",   # section 4: optional sub-tenant of the client, created on first use
    operations={
        # --- authentication, users, tenants (sections 3, 4, 7) ---------------------------------------------------
        "authenticate": Op(auth="client_form", body="form"),   # section 3: form encoding required, JSON -> 400
        "list_users": Op(),
        "create_user": Op(body="json"),
        "get_user": Op(),
        "update_user": Op(body="json"),
        "delete_user": Op(),
        "delete_users": Op(body="json"),
        "get_user_by_custom_user_id": Op(),
        "add_user_scopes": Op(body="json"),
        "trigger_analysis": Op(),
        "upload_user_banking_data": Op(scope=BANKING_UPLOAD, body="json"),
        # --- banking data: manual upload and reads (sections 8, 9) ------------------------------------------------
        "get_accounts": Op(scope=BANKING_FETCH),
        "set_accounts": Op(scope=BANKING_UPLOAD, body="json"),
        "update_accounts": Op(scope=BANKING_UPLOAD, body="json"),
        "update_transactions": Op(scope=BANKING_UPLOAD, body="json"),
        "add_transactions": Op(scope=BANKING_UPLOAD, body="json"),
        "delete_transactions": Op(scope=BANKING_UPLOAD, body="json"),
        "delete_accounts": Op(scope=BANKING_UPLOAD, body="json"),
        "delete_account": Op(scope=BANKING_UPLOAD),
        "get_transactions": Op(scope=BANKING_FETCH),
        "get_account_summary_pdf": Op(scope=BANKING_FETCH, response="binary"),
        # --- Banking UI, bank logins, syncs, money transfers (section 9) ------------------------------------------
        "create_connect_session": Op(scope=BANKING_CONNECT, body="json"),
        "create_management_session": Op(scope=BANKING_CONNECT, body="json"),
        "connect_test_account": Op(scope=BANKING_CONNECT, body="json"),
        "get_banking_correlation": Op(scope=BANKING_FETCH),
        "get_sync_status": Op(scope=BANKING_CONNECT),
        "trigger_sync": Op(scope=BANKING_CONNECT, body="json", headers=USER_IP),
        "delete_bank_login": Op(scope=BANKING_CONNECT, headers=USER_IP),
        "disconnect_banking": Op(scope=BANKING_CONNECT, headers=USER_IP),
        "create_money_transfer": Op(scope="banking", body="json", headers=USER_IP),
        "get_money_transfer": Op(scope="banking", headers=USER_IP),
        # --- webhooks, advisors, platform status (sections 11, 10 "Advisors", "Platform status") -------------------
        "list_webhooks": Op(scope="webhooks"),
        "create_webhook": Op(scope="webhooks", body="json"),
        "get_webhook": Op(scope="webhooks"),
        "update_webhook": Op(scope="webhooks", body="json"),
        "delete_webhook": Op(scope="webhooks"),
        "list_advisors": Op(),
        "create_advisor": Op(body="json"),
        "get_advisor": Op(),
        "update_advisor": Op(body="json"),
        "delete_advisor": Op(),
        "get_platform_status": Op(auth="none"),
        # --- part 2, section 10: categorization (categorization.py) ---------------------------------------------
        "get_categorization": Op(scope="categorization"),
        "get_categorization_correlation": Op(scope="categorization"),
        "get_categorization_patterns": Op(scope="categorization"),
        "set_categorization_patterns": Op(scope="categorization", body="json"),   # 204 + Finoos-Correlation-Id
        "get_categorized_transactions": Op(scope="categorization"),
        "get_transaction_tags": Op(scope="categorization"),
        # section 4: the tree and descriptions need categorization-categories and name no user (no TenantID)
        "get_categorization_tree": Op(scope="categorization-categories"),
        "get_tag_descriptions": Op(scope="categorization-categories"),
        # --- part 2, section 10: account detection and history, contracts, companies (detection.py) ------------
        "get_accounts_overview": Op(scope="account-detection"),
        "get_account_detection_correlation": Op(scope="account-detection"),
        "get_account_history": Op(scope="account-history"),
        "get_account_history_correlation": Op(scope="account-history"),
        "list_contracts": Op(scope="contracts"),
        "delete_contracts": Op(scope="contracts"),
        "get_contracts_correlation": Op(scope="contracts"),
        "delete_contract": Op(scope="contracts"),
        "search_companies": Op(scope="companies", body="json"),          # section 10: no TenantID (not user-scoped)
        "search_company_logos": Op(scope="companiesLogo", body="json"),
        # --- part 2, section 10: cockpits, recommendations, person and company analytics (cockpits.py) -----------
        # section 10 "Cockpits" (scope cockpits; the reference once writes "cockpit" for the correlation endpoint)
        "list_cockpits": Op(scope="cockpits"),
        "get_cockpit_link": Op(scope="cockpits"),
        "get_person_cockpit": Op(scope="cockpits"),
        "get_company_cockpit": Op(scope="cockpits"),
        "get_cockpit_correlation": Op(scope=("cockpits", "cockpit")),
        "get_cockpit_recommendations": Op(scope="cockpits"),
        # section 10 "Person and company analytics": module scopes per the table; "-" there = no module scope, the
        # bearer suffices (inferred); get_person_income is unlocked by any one person-income-* module
        "get_person_income": Op(scope=cockpits.INCOME_SCOPES),
        "get_person_spending": Op(),
        "get_person_household_budget": Op(),
        "get_person_living_situation": Op(),
        "get_person_risk": Op(),
        "get_person_adult_check": Op(),
        "get_company_cash": Op(scope="company-cash"),
        "get_company_liquidity": Op(scope="company-liquidity"),
        "get_company_foreign_payments": Op(scope="company-foreign-payment"),
        "get_company_risk": Op(scope="company-risk"),
        "get_company_credit": Op(scope="company-credit"),
        "get_company_insurance": Op(scope="company-insurance"),
        "get_company_investment": Op(scope="company-investment"),
        "get_company_internal_bookings": Op(),
    },
    # section 12: banking_ui_management shares /uba/auth with banking_ui_connect (the session decides the section)
    pages={"banking_ui_connect": connect.banking_ui_page, "money_transfer_sca": connect.money_transfer_sca_page,
           "advisor_cockpit_onboarding": platform.advisor_onboarding_page,
           "cockpit_web": cockpits.cockpit_web_page},   # section 12: signed, expiring cockpit page
    pages_dir=str(Path(__file__).with_name("pages")),
    assets_dir=str(Path(__file__).with_name("assets")),   # company logos (companies search, contract partners)
    scenarios=platform.SCENARIOS + banking.SCENARIOS + connect.SCENARIOS,
    fire_webhook="fire_webhook",
    # the payload each event carries (section 11): one schema per event of platform.EVENTS
    webhooks={event: "defs/webhook_" + event.replace("-", "_").replace(".", "_") for event in platform.EVENTS},
)
