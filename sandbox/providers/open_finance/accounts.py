"""Open Finance accounts, balances and transactions of a user's connections, categories and extended securities (open_finance.md sections 6 and 10)."""
from __future__ import annotations


class Accounts:
    def setup(self) -> None:
        """Register this area's job kinds, flows or webhooks (called once by OpenFinanceService.__init__)."""
