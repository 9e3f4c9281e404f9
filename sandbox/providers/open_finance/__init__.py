"""Open Finance (open-finance.ai, Israel): token, financial-report jobs (seed tier). Spec: open_finance.md."""
from .operations import PROVIDER

__all__ = ["PROVIDER"]
