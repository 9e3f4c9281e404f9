"""Finpass aa_bsa operations (scaffold: filled in by its owner)."""
from __future__ import annotations

SCENARIOS: list[dict] = []


class AABSAJourney:
    def setup(self) -> None:
        """Register job kinds, flows and webhook defaults of this family."""


def aa_bsa_journey_page(ctx, **params):
    raise NotImplementedError("aa_bsa_journey_page")


aa_bsa_journey_page.scaffold = True
