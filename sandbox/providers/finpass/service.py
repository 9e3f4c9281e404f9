"""Finpass operations, named like the catalogue ids, composed from one mixin per product family.

Each family lives in its own module (aa.py, aa_bsa.py, bsa.py, bureau.py) with its operations, page handlers and
scenarios; ``setup`` hooks register job kinds, flows and webhook defaults. Every stored object is scoped to the
key pair (tenant) that created it: another key pair gets 404 (finpass.md section 2).
"""
from __future__ import annotations

from .aa import AccountAggregator
from .aa_bsa import AABSAJourney
from .bsa import StatementAnalyser
from .bureau import Bureaus

PROVIDER = "finpass"


class FinpassService(AccountAggregator, AABSAJourney, StatementAnalyser, Bureaus):
    def __init__(self, sandbox):
        self.sb = sandbox
        for family in (AccountAggregator, AABSAJourney, StatementAnalyser, Bureaus):
            family.setup(self)
