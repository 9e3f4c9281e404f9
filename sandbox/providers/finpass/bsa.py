"""Finpass bsa operations (scaffold: filled in by its owner)."""
from __future__ import annotations

SCENARIOS: list[dict] = []


class StatementAnalyser:
    def setup(self) -> None:
        """Register job kinds, flows and webhook defaults of this family."""


def bsa_exports_page(ctx, **params):
    raise NotImplementedError("bsa_exports_page")


bsa_exports_page.scaffold = True
