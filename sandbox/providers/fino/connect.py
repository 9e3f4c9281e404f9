"""finoOS connect area (scaffold: filled in by its owner)."""
from __future__ import annotations

SCENARIOS: list[dict] = []


class Connect:
    def setup(self) -> None:
        """Register job kinds, run kinds, flows and webhook defaults of this area."""


def banking_ui_page(ctx, **params):
    raise NotImplementedError("banking_ui_page")


banking_ui_page.scaffold = True


def money_transfer_sca_page(ctx, **params):
    raise NotImplementedError("money_transfer_sca_page")


money_transfer_sca_page.scaffold = True
