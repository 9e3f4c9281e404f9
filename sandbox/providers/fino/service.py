"""finoOS operations, named like the catalogue ids, composed from one mixin per area.

platform.py: authentication (JWT), users and tenants, user scopes, the analysis lifecycle, webhooks, advisors,
status. banking.py: the banking data model, manual upload, reads, the account summary PDF. connect.py: the Banking
UI, the test account, bank logins, syncs and money transfers. Part 2 (analysis results, section 10):
categorization.py; detection.py (account detection and history, contracts, companies); cockpits.py (cockpits, link
and page, recommendations, person and company analytics). model.py: storage shared by all.
"""
from __future__ import annotations

from .banking import Banking
from .categorization import Categorization
from .cockpits import Cockpits
from .connect import Connect
from .detection import Detection
from .platform import Platform

AREAS = (Platform, Banking, Connect, Categorization, Detection, Cockpits)


class FinoService(*AREAS):
    def __init__(self, sandbox):
        self.sb = sandbox
        for area in AREAS:   # Platform first: the others register their analysis result kinds with it
            area.setup(self)
