"""Finpass aa operations (scaffold: filled in by its owner)."""
from __future__ import annotations

SCENARIOS: list[dict] = []


class AccountAggregator:
    def setup(self) -> None:
        """Register job kinds, flows and webhook defaults of this family."""


def aa_consent_page(ctx, **params):
    raise NotImplementedError("aa_consent_page")


aa_consent_page.scaffold = True


def aa_statement_pdf_page(ctx, **params):
    raise NotImplementedError("aa_statement_pdf_page")


aa_statement_pdf_page.scaffold = True
