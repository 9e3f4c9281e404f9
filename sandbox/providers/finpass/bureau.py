"""Finpass bureau operations (scaffold: filled in by its owner)."""
from __future__ import annotations

SCENARIOS: list[dict] = []


class Bureaus:
    def setup(self) -> None:
        """Register job kinds, flows and webhook defaults of this family."""
