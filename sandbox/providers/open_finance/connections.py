"""Open Finance connections, the consent journey, open-banking init/finalize, providers and branches, and connection webhooks (open_finance.md sections 6, 8, 9, 11, 12)."""
from __future__ import annotations


class Connections:
    def setup(self) -> None:
        """Register this area's job kinds, flows or webhooks (called once by OpenFinanceService.__init__)."""
