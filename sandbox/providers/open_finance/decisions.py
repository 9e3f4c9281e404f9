"""Open Finance monthly report and the decision, decision-extended and private-scoring jobs (open_finance.md sections 6 and 7)."""
from __future__ import annotations


class Decisions:
    def setup(self) -> None:
        """Register this area's job kinds, flows or webhooks (called once by OpenFinanceService.__init__)."""
