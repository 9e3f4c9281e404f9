"""An app with Finpass mounted while it is built family by family (see partial_app.py)."""
from __future__ import annotations

from .partial_app import partial_app


def finpass_app(config: dict | None = None, **kwargs):
    return partial_app("finpass", config, **kwargs)
