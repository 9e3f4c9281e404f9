"""finoOS person and company cockpits, the cockpit link and page, recommendations and the analytics projections (fino.md section 10)."""
from __future__ import annotations


class Cockpits:
    def setup(self) -> None:
        """Register this area's result kinds, job kinds or flows (called once by the service's __init__)."""
