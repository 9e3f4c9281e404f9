"""YAML fixtures, parsed fast: libyaml's ``CSafeLoader`` when PyYAML was built with it, else the pure-Python
``SafeLoader`` (same documents, about 5-9x slower). Every fixture loader goes through ``load_yaml``, so start-up
and the first data generation never pay the pure-Python parser (issue 14: 229 -> 26 ms for the fixtures).
"""
from __future__ import annotations

from pathlib import Path

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def loads_yaml(text: str):
    """Parse YAML text with the safe loader (libyaml when available)."""
    return yaml.load(text, Loader=SafeLoader)


def load_yaml(path):
    """Parse the UTF-8 YAML file at ``path`` with the safe loader (libyaml when available)."""
    return loads_yaml(Path(path).read_text(encoding="utf-8"))
