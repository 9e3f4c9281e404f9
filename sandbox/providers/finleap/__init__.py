"""finleap connect finX / nrich: widget links, hosted widget, tokens, reports, account data, notifications,
syncs. Spec: finleap.md."""
from .operations import PROVIDER

__all__ = ["PROVIDER"]
