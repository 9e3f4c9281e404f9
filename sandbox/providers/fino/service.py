"""finoOS operations, named like the catalogue ids, composed from one mixin per area.

platform.py: authentication (JWT), users and tenants, user scopes, the analysis lifecycle, webhooks, advisors,
status. banking.py: the banking data model, manual upload, reads, the account summary PDF. connect.py: the Banking
UI, the test account, bank logins, syncs and money transfers. model.py: storage shared by all three.
"""
from __future__ import annotations

from .banking import Banking
from .connect import Connect
from .platform import Platform


class FinoService(Platform, Banking, Connect):
    def __init__(self, sandbox):
        self.sb = sandbox
        for area in (Platform, Banking, Connect):
            area.setup(self)
