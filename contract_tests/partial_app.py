"""An app with a provider mounted while it is built area by area (Finpass, finoOS).

Once the provider is served for good (``sandbox.providers.PROVIDERS`` lists it) this is plain create_app; before
that it mounts only the operations that already have a handler and the pages that are no scaffold, with a schema
registry that leaves out the provider's schemas of operations not mounted yet.
"""
from __future__ import annotations

import dataclasses
import importlib
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from unittest import mock

from sandbox import create_app
from sandbox.core import context
from sandbox.core.validation import SCHEMA_DIR, SchemaRegistry


@lru_cache(maxsize=16)
def _registry(provider: str, ready: frozenset) -> SchemaRegistry:
    root = Path(tempfile.mkdtemp(prefix=f"{provider}-schemas-"))
    shutil.copytree(SCHEMA_DIR, root, dirs_exist_ok=True)
    for path in (root / provider).glob("*.json") if (root / provider).is_dir() else []:
        if path.name != "error.json" and path.name.rsplit(".", 2)[0] not in ready:
            path.unlink()
    return SchemaRegistry(root)


def partial_app(provider: str, config: dict | None = None, **kwargs):
    import sandbox.providers as providers

    if any(d.name == provider for d in providers.PROVIDERS):
        return create_app(config, **kwargs)
    decl = importlib.import_module(f"sandbox.providers.{provider}").PROVIDER
    ops = {n: o for n, o in decl.operations.items() if callable(getattr(decl.service, n, None))}
    pages = {n: h for n, h in decl.pages.items() if not getattr(h, "scaffold", False)}
    partial = dataclasses.replace(decl, operations=ops, pages=pages)
    with mock.patch.object(providers, "PROVIDERS", [*providers.PROVIDERS, partial]), \
            mock.patch.object(context, "_SCHEMAS", _registry(provider, frozenset(ops))):
        return create_app(config, **kwargs)


def fino_app(config: dict | None = None, **kwargs):
    return partial_app("fino", config, **kwargs)
