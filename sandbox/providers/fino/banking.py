"""finoOS banking area (scaffold: filled in by its owner)."""
from __future__ import annotations

SCENARIOS: list[dict] = []


class Banking:
    def setup(self) -> None:
        """Register job kinds, run kinds, flows and webhook defaults of this area."""
