"""finX data products (finleap-products.md sections 5-7, 9, 10): securities, contracts, payment partners, categories,
the category tree, the timeline, risk reports and standalone categorization, all from the user's ledger."""
from __future__ import annotations


class Insights:
    def setup(self) -> None:
        """Register this area's job kinds or caches (called once by FinleapService.__init__)."""
