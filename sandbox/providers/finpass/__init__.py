"""Finpass (finpass.ai, India): Account Aggregator, bank-statement analysis, multi-bureau, corporate lookups,
EPFO + CRIF, ITR and AA-BSA journeys. Spec: finpass.md."""
from .operations import PROVIDER

__all__ = ["PROVIDER"]
