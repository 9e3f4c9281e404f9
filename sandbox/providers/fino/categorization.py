"""finoOS categorization (fino.md section 10): the category tree, tags per transaction from rules on counterparty, purpose, GVC and MCC, patterns, descriptions."""
from __future__ import annotations


class Categorization:
    def setup(self) -> None:
        """Register this area's result kinds, job kinds or flows (called once by the service's __init__)."""
