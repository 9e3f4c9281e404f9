"""The operation catalogue: a vendored copy of shared/providers/catalogue.yaml (a test keeps the two identical).

It is the only place a method, path, alias or status list is written. ``create_app`` reads it (config
``CATALOGUE`` may point at another file, e.g. a test that moves a guessed path) and derives every route, the
OpenAPI documents and the contract tests' routes from it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

CATALOGUE = Path(__file__).with_name("catalogue.yaml")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~5x faster at start-up


@lru_cache(maxsize=4)
def catalogue(path: str | None = None) -> dict:
    """The parsed catalogue (cached per path: it is read-only data)."""
    return yaml.load(Path(path or CATALOGUE).read_text(), Loader=_Loader)


def provider(name: str, path: str | None = None) -> dict:
    """One provider's section: prefixes, operations, pages, webhooks."""
    return catalogue(path)["providers"][name]


def operations(name: str, path: str | None = None) -> dict[str, dict]:
    """Catalogue operations of provider ``name`` keyed by their short name (``create_token``)."""
    return {op["id"].split(".", 1)[1]: op for op in provider(name, path)["operations"]}


def pages(name: str, path: str | None = None) -> dict[str, dict]:
    """Hosted pages of provider ``name`` keyed by their short name (``widget``)."""
    return {page["id"].split(".", 1)[1]: page for page in provider(name, path).get("pages") or []}


def routes(name: str, path: str | None = None) -> dict[str, tuple[str, str, list[str]]]:
    """short name -> (method, path, aliases) for every operation and page: what a client of the real provider
    uses (the contract tests' routes when no sandbox control API is there to ask)."""
    found = {n: (op["method"], op["path"], list(op.get("aliases") or [])) for n, op in operations(name, path).items()}
    found.update({n: (p["method"], p["path"], list(p.get("aliases") or [])) for n, p in pages(name, path).items()})
    return found


def statuses(name: str, path: str | None = None) -> dict[str, list[int]]:
    return {n: op["statuses"] for n, op in operations(name, path).items()}
