"""JSON Schema (2020-12) registry and validation with JSON-pointer error reports.

Every schema under ``schemas/`` is loaded once into an immutable ``referencing.Registry``; validators are built
lazily per schema id and cached. Formats are checked (jsonschema[format-nongpl]).
"""
from __future__ import annotations

import ast
import json
import re
from functools import cached_property
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from .errors import ValidationFailed

try:   # compiled validator for the happy path (optional: without it python-jsonschema does everything)
    import jsonschema_rs as _rs
except ImportError:  # pragma: no cover
    _rs = None

SCHEMA_BASE = "https://provider-sandbox.local/schemas/"
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"   # package data (sandbox/schemas)
MAX_JSON_DEPTH = 64   # nesting levels a request body may have (arrays and objects; the body itself is level 1)
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_REQUIRED = re.compile(r"^(.*) is a required property$")
_EXTRA = re.compile(r"\((.*) (?:was|were) unexpected\)")


def schema_id(provider: str, name: str) -> str:
    """The ``$id`` of ``schemas/<provider>/<name>.json``."""
    return f"{SCHEMA_BASE}{provider}/{name}.json"


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays/objects deeper than ``limit`` (brackets inside strings do not count).
    A linear scan run before json.loads, so deep input never reaches a recursive parser, validator or encoder."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a UTF-16 surrogate code point (only an unpaired ``\\udXXX`` escape produces one);
    such text cannot be encoded as UTF-8, so it would fail later in the store, the journal or the response."""
    return bool(_LONE_SURROGATE.search(text))


def printable(text: str) -> str:
    """``text`` with surrogates shown as ``\\udXXX`` escapes: safe to put in an error message."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def lone_surrogate_at(value) -> str | None:
    """JSON pointer of the first string (value or key) in ``value`` holding a lone surrogate, or None."""
    stack = [("", value)]
    while stack:
        pointer, node = stack.pop()
        if isinstance(node, str):
            if has_lone_surrogate(node):
                return pointer
        elif isinstance(node, dict):
            children = []
            for key, child in node.items():
                step = pointer + "/" + printable(str(key)).replace("~", "~0").replace("/", "~1")
                if has_lone_surrogate(str(key)):
                    return step
                children.append((step, child))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(f"{pointer}/{i}", child) for i, child in enumerate(node)]))
    return None


def _field_of(error: ValidationError) -> tuple[str, str]:
    """(JSON pointer, field name) the error is about; for required/additional properties, the property itself."""
    path = list(error.absolute_path)
    name = None
    if error.validator == "required":
        match = _REQUIRED.match(error.message)
        if match:
            try:
                name = ast.literal_eval(match.group(1))
            except (ValueError, SyntaxError):
                name = match.group(1).strip("'\"")
    elif error.validator in ("additionalProperties", "unevaluatedProperties"):
        match = _EXTRA.search(error.message)
        if match:
            name = match.group(1).split(", ")[0].strip("'\"")
    if name is not None:
        path.append(name)
    pointer = "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path) if path else ""
    return pointer, (str(path[-1]) if path else "")


def describe(error: ValidationError) -> dict:
    pointer, field = _field_of(error)
    message = error.message
    if len(message) > 300:
        message = message[:297] + "..."
    return {"pointer": pointer, "field": field, "message": message, "validator": error.validator}


class SchemaRegistry:
    """All schemas of ``root`` (one folder per provider), loaded once."""

    def __init__(self, root: Path = SCHEMA_DIR):
        self.root = root
        self.schemas: dict[str, dict] = {}
        for path in sorted(root.rglob("*.json")):
            schema = json.loads(path.read_text())
            self.schemas[schema.get("$id") or SCHEMA_BASE + path.relative_to(root).as_posix()] = schema
        self.registry = Registry().with_resources(
            (sid, Resource.from_contents(s)) for sid, s in self.schemas.items())
        self._validators: dict[str, Draft202012Validator] = {}
        self._rs_registry = None
        self._fast: dict[str, object] = {}   # sid -> compiled jsonschema_rs validator, or None where unavailable

    def has(self, sid: str) -> bool:
        return sid in self.schemas

    def validator(self, sid: str) -> Draft202012Validator:
        found = self._validators.get(sid)
        if found is None:
            found = Draft202012Validator(self.schemas[sid], registry=self.registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
            self._validators[sid] = found
        return found

    def fast_validator(self, sid: str):
        """A compiled validator (jsonschema-rs) for the happy path, or None (not installed, or it cannot compile
        this schema): answers "valid?" in microseconds; python-jsonschema still explains every failure."""
        if sid in self._fast:
            return self._fast[sid]
        found = None
        if _rs is not None:
            try:
                if self._rs_registry is None:
                    self._rs_registry = _rs.Registry([(i, s) for i, s in self.schemas.items()])
                found = _rs.Draft202012Validator(self.schemas[sid], validate_formats=True, registry=self._rs_registry)
            except Exception:   # a schema it cannot compile: python-jsonschema alone, as before
                found = None
        self._fast[sid] = found
        return found

    def errors(self, sid: str, instance) -> list[dict]:
        """Every violation, the best-ranked (jsonschema.best_match) first; [] when valid.

        The compiled validator answers first: what it accepts, python-jsonschema accepts too (formats checked alike;
        its patterns are at most stricter: ``$`` before a final newline, Unicode ``\\d``), so the verdict and
        every message are python-jsonschema's, as before, at a fraction of the cost (an Open Finance token body:
        22 -> 0.4 us)."""
        fast = self.fast_validator(sid)
        if fast is not None:
            try:
                if fast.is_valid(instance):
                    return []
            except Exception:   # a value it cannot take (e.g. an int beyond 64 bits): the reference validator
                pass
        validator = self.validator(sid)
        found = list(validator.iter_errors(instance))
        if not found:
            return []
        best = best_match(found)
        ordered = [best] + [e for e in sorted(found, key=lambda e: list(e.absolute_path).__repr__()) if e is not best]
        return [describe(e) for e in ordered]

    def check(self, sid: str, instance) -> None:
        """Raise ValidationFailed (400 in the provider's envelope) if ``instance`` violates schema ``sid``."""
        found = self.errors(sid, instance)
        if found:
            raise ValidationFailed(found)

    def project(self, sid: str, instance):
        """``instance`` reduced to what schema ``sid`` declares: an object keeps only the properties its schema
        (through ``$ref``, ``allOf``/``anyOf``/``oneOf``) names, recursively; arrays project each item. A stored
        resource's public shape is its response schema, so no provider keeps a list of fields to hide."""
        resolver = self.registry.resolver(base_uri=sid)
        return _project(self.schemas[sid], instance, resolver)

    @cached_property
    def ids(self) -> list[str]:
        return sorted(self.schemas)

    def meta_errors(self) -> dict[str, str]:
        """Schemas that are not themselves valid 2020-12 schemas (checked by the test suite)."""
        bad = {}
        for sid, schema in self.schemas.items():
            try:
                Draft202012Validator.check_schema(schema)
            except Exception as exc:  # SchemaError
                bad[sid] = str(exc).splitlines()[0]
        return bad


def _subschemas(schema: dict, resolver):
    """(schema, resolver) of ``schema`` and every schema it is combined with (refs followed)."""
    if not isinstance(schema, dict):
        return
    yield schema, resolver
    if isinstance(schema.get("$ref"), str):
        resolved = resolver.lookup(schema["$ref"])
        yield from _subschemas(resolved.contents, resolved.resolver)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            yield from _subschemas(sub, resolver)


def _project(schema: dict, instance, resolver):
    parts = list(_subschemas(schema, resolver))
    if isinstance(instance, dict):
        props: dict = {}
        for sub, res in parts:
            for name, prop in (sub.get("properties") or {}).items():
                props.setdefault(name, []).append((prop, res))
        if not props:
            return instance   # a free-form object (e.g. a map of months): nothing declared to project onto
        return {k: _project_many(props[k], v) for k, v in instance.items() if k in props}
    if isinstance(instance, list):
        items = [(sub["items"], res) for sub, res in parts if isinstance(sub.get("items"), dict)]
        return [_project_many(items, v) for v in instance] if items else instance
    return instance


def _project_many(candidates: list, instance):
    """Project onto the first candidate schema that declares anything for this value."""
    for prop, res in candidates:
        projected = _project(prop, instance, res)
        if projected is not instance or not isinstance(instance, (dict, list)):
            return projected
    return instance
