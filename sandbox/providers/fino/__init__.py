"""finoOS (fino, Germany): client-credentials JWT auth, tenants, users, Banking UI, manual upload, syncs, money
transfers, the analysis lifecycle and webhooks (part 1); analysis results (part 2). Spec: fino.md."""
from .operations import PROVIDER

__all__ = ["PROVIDER"]
