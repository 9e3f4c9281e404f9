"""A vendored copy of shared/providers/catalogue.yaml (tests keep it identical to the shared spec when present).

Route tables live in each provider's routes.py; the catalogue supplies documented status codes and is the
reference the route tables are tested against.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

CATALOGUE = Path(__file__).with_name("catalogue.yaml")


@lru_cache(maxsize=1)
def catalogue() -> dict:
    return yaml.safe_load(CATALOGUE.read_text())


def operations(provider: str) -> dict[str, dict]:
    """Catalogue operations of ``provider`` keyed by their short name (``create_token``)."""
    return {op["id"].split(".", 1)[1]: op for op in catalogue()["providers"][provider]["operations"]}


def statuses(provider: str) -> dict[str, list[int]]:
    return {name: op["statuses"] for name, op in operations(provider).items()}
