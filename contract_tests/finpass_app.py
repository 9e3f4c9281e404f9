"""An app with Finpass mounted, for tests written while Finpass is built family by family.

Once every Finpass operation is served (``sandbox.providers.PROVIDERS`` lists it) this is plain create_app; before
that it mounts only the operations that already have a handler, and the pages that are no scaffold, with a schema
registry that leaves out the Finpass schemas of operations not mounted yet.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from unittest import mock

from sandbox import create_app
from sandbox.core import context
from sandbox.core.validation import SCHEMA_DIR, SchemaRegistry


@lru_cache(maxsize=8)
def _registry(ready: frozenset) -> SchemaRegistry:
    root = Path(tempfile.mkdtemp(prefix="finpass-schemas-"))
    shutil.copytree(SCHEMA_DIR, root, dirs_exist_ok=True)
    for path in (root / "finpass").glob("*.json") if (root / "finpass").is_dir() else []:
        stem = path.name.rsplit(".", 2)[0]
        if path.name != "error.json" and stem not in ready:
            path.unlink()
    return SchemaRegistry(root)


def finpass_app(config: dict | None = None, **kwargs):
    import sandbox.providers as providers
    from sandbox.providers.finpass import PROVIDER
    from sandbox.providers.finpass.service import FinpassService

    if any(d.name == "finpass" for d in providers.PROVIDERS):
        return create_app(config, **kwargs)
    ops = {n: o for n, o in PROVIDER.operations.items() if callable(getattr(FinpassService, n, None))}
    pages = {n: h for n, h in PROVIDER.pages.items() if not getattr(h, "scaffold", False)}
    decl = dataclasses.replace(PROVIDER, operations=ops, pages=pages)
    with mock.patch.object(providers, "PROVIDERS", [*providers.PROVIDERS, decl]), \
            mock.patch.object(context, "_SCHEMAS", _registry(frozenset(ops))):
        return create_app(config, **kwargs)
