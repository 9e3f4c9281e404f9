"""Finpass hosted pages (catalogue pages, finpass.md section 10): handlers live with their product family."""
from __future__ import annotations

from .aa import aa_consent_page, aa_statement_pdf_page
from .aa_bsa import aa_bsa_journey_page
from .bsa import bsa_exports_page

PAGES = {"aa_consent": aa_consent_page, "aa_statement_pdf": aa_statement_pdf_page,
         "aa_bsa_journey": aa_bsa_journey_page, "bsa_exports": bsa_exports_page}
