"""finoOS platform area (scaffold: filled in by its owner)."""
from __future__ import annotations

SCENARIOS: list[dict] = []


class Platform:
    def setup(self) -> None:
        """Register job kinds, run kinds, flows and webhook defaults of this area."""


def advisor_onboarding_page(ctx, **params):
    raise NotImplementedError("advisor_onboarding_page")


advisor_onboarding_page.scaffold = True
