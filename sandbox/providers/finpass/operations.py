"""Finpass overlay on the catalogue (finpass.md sections 2-8): auth, body kinds and the envelope style per operation.

Methods, paths, aliases and statuses live in sandbox/spec/catalogue.yaml only. Envelope "A" is the AA/BSA style
({data, status_code, success, message, message_code}), "B" the corporate/ITR/AA-BSA/EPFO style
({success, message, data} / {success, message, error_code}) (finpass.md section 3).
"""
from __future__ import annotations

from pathlib import Path

from ...core.operations import Op, Provider
from ...core.schemes import HeaderPair
from . import errors
from . import aa, aa_bsa, bsa, bureau
from .pages import PAGES
from .service import FinpassService

A, B = "A", "B"
# GET operations that also answer POST with a JSON body: params come from the query or the body (finpass.md s.5, s.8)
QUERY_OR_BODY = Op(body="json", envelope=B)

PROVIDER = Provider(
    name="finpass",
    title="Finpass",
    service=FinpassService,
    render_error=errors.render,
    # finpass.md s.2: x-api-key + x-api-secret on every request, names case-insensitive; 401 body on every endpoint
    schemes={"keys": HeaderPair("x-api-key", "x-api-secret", errors.UNAUTHORIZED_MESSAGE)},
    default=Op(auth="keys", body="json", envelope=B),
    operations={
        # --- Bank Statement Analyser (style A) --------------------------------------------------------------------
        "bsa_upload_statement": Op(body="multipart", envelope=A),
        "bsa_statement_result": Op(envelope=A),
        # --- Account Aggregator (style A) -------------------------------------------------------------------------
        "aa_init": Op(envelope=A),
        "aa_fetch_json_report": Op(envelope=A),
        "aa_fetch_pdf_report": Op(envelope=A),
        "aa_refresh_data": Op(envelope=A),
        # --- multi-bureau (style A keys: status_code, success, message) -------------------------------------------
        "multi_bureau_fetch": Op(envelope=A),
        # --- corporate, EPFO, ITR, AA-BSA (style B) ---------------------------------------------------------------
        "corporate_cin_lookup": Op(),
        "corporate_llpin_lookup": Op(),
        "corporate_pan_lookup": Op(),
        "corporate_company_autocomplete": Op(),
        "epfo_crif_combined_report": Op(),
        "itr_init": Op(),
        "itr_status": QUERY_OR_BODY,
        "itr_data": QUERY_OR_BODY,
        "aa_bsa_init": Op(),
        "aa_bsa_status": QUERY_OR_BODY,
        "aa_bsa_statement_result": QUERY_OR_BODY,
        "aa_bsa_analysis_json": QUERY_OR_BODY,
    },
    pages=PAGES,
    pages_dir=str(Path(__file__).with_name("pages")),
    scenarios=aa.SCENARIOS + aa_bsa.SCENARIOS + bsa.SCENARIOS + bureau.SCENARIOS,
    webhooks={"aa.consent_status": "defs/webhook_aa_consent_status",   # the payload each event carries (s.9)
              "aa_bsa.status": "defs/webhook_aa_bsa_status"},
)
