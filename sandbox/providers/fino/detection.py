"""finoOS account detection and history, contracts and companies (fino.md section 10), computed from the user's bookings."""
from __future__ import annotations


class Detection:
    def setup(self) -> None:
        """Register this area's result kinds, job kinds or flows (called once by the service's __init__)."""
