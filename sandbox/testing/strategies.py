"""Hypothesis strategies for client authors, generated from the sandbox's own JSON Schemas: provider responses and
request bodies, valid or deliberately invalid, so the code that parses a provider's answers can be property-tested
without a server.

    from hypothesis import given
    from sandbox.testing.strategies import responses

    @given(responses("open_finance", "get_financial_report"))
    def test_my_parser_takes_every_valid_report(body):
        parse_report(body)          # your code: must not crash on anything the provider may send

    @given(responses("finleap", "list_transactions", valid=False))
    def test_my_parser_rejects_broken_answers(body):
        with pytest.raises(MyParseError):
            parse_transactions(body)

Webhook bodies too: ``webhook_payloads("open_finance", "CONNECTIONS")`` (or ``event=None``: any event of the
provider) draws the payloads the sandbox sends, from the schema each provider declares per event
(``Provider.webhooks``, ``schemas/<provider>/defs/webhook_*.json``), so a webhook handler can be property-tested:

    @given(webhook_payloads("fino"))
    def test_my_handler_takes_every_fino_event(payload):
        handle_fino_webhook(payload)

Schemas with cross-file ``$ref`` (shared ``defs/``) are bundled first, then drawn by a generator for the JSON
Schema subset the sandbox uses (``format`` honoured for date, date-time, email, uuid, uri, ipv4); every value is
checked against the real validator. Invalid values are valid ones with one targeted breakage (a required field
dropped, a value of the wrong type, or an enum/const/pattern broken), checked against the validator.
"""
from __future__ import annotations

import copy
import json
from datetime import timezone
from functools import lru_cache

from hypothesis import strategies as st

from ..core.validation import SchemaRegistry, schema_id

_KEYWORDS_TO_DROP = ("$id", "$schema", "$comment", "examples", "deprecated", "readOnly", "writeOnly")


@lru_cache(maxsize=1)
def registry() -> SchemaRegistry:
    return SchemaRegistry()


def bundled(sid: str) -> dict:
    """Schema ``sid`` with every ``$ref`` inlined (recursive refs cut at depth 6 to ``{}``, i.e. anything)."""
    reg = registry()
    resolver = reg.registry.resolver(base_uri=sid)

    def inline(node, resolver, depth):
        if isinstance(node, list):
            return [inline(item, resolver, depth) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            if depth > 6:
                return {}
            resolved = resolver.lookup(node["$ref"])
            target = inline(resolved.contents, resolved.resolver, depth + 1)
            rest = {k: inline(v, resolver, depth) for k, v in node.items()
                    if k != "$ref" and k not in _KEYWORDS_TO_DROP and k not in ("title", "description")}
            return {"allOf": [target, rest]} if rest else target
        return {k: (inline(v, resolver, depth) if k not in ("const", "enum", "default") else v)
                for k, v in node.items() if k not in _KEYWORDS_TO_DROP and k != "$defs"}

    return inline(reg.schemas[sid], resolver, 0)


def schema_for(provider: str, operation: str, part: str = "response") -> str:
    """The schema id of an operation's part: response, request, query or headers (catalogue short name or id)."""
    name = operation.split(".", 1)[-1]
    sid = schema_id(provider, f"{name}.{part}")
    if not registry().has(sid):
        raise LookupError(f"{provider}.{name} has no {part} schema ({sid})")
    return sid


_FORMATS = {
    "date": st.dates().map(lambda d: d.isoformat()),
    "date-time": st.datetimes(timezones=st.just(timezone.utc)).map(
        lambda d: d.isoformat().replace("+00:00", "Z")),
    "email": st.emails(),
    "uuid": st.uuids().map(str),
    "uri": st.sampled_from(["https://example.com/", "https://my-app.example.com/cb?x=1", "http://127.0.0.1:8080/a"]),
    "ipv4": st.ip_addresses(v=4).map(str),
}
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=10))


def from_schema(schema) -> st.SearchStrategy:
    """Values for the JSON Schema subset the sandbox's schemas use (types, properties/required, items, enum/const,
    pattern, format, bounds, lengths, allOf/anyOf/oneOf). Not exhaustive: callers filter through the validator."""
    if schema is True or schema == {}:
        return _SCALARS
    if schema is False:
        return st.nothing()
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "allOf" in schema:
        merged: dict = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            for key, value in (part if isinstance(part, dict) else {}).items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = sorted(set(merged.get("required", [])) | set(value))
                else:
                    merged.setdefault(key, value)
        return from_schema(merged)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            return st.one_of([from_schema({**rest, **option} if isinstance(option, dict) else option)
                              for option in schema[key]])
    types = schema.get("type")
    if isinstance(types, list):
        return st.one_of([from_schema({**schema, "type": t}) for t in types])
    if types is None:
        types = "object" if "properties" in schema else "array" if "items" in schema else \
            "string" if ("pattern" in schema or "format" in schema) else None
    if types == "null":
        return st.none()
    if types == "boolean":
        return st.booleans()
    if types in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if "exclusiveMinimum" in schema:
            low = schema["exclusiveMinimum"] + (1 if types == "integer" else 1e-6)
        if "exclusiveMaximum" in schema:
            high = schema["exclusiveMaximum"] - (1 if types == "integer" else 1e-6)
        if types == "integer":
            return st.integers(int(low) if low is not None else -10**9, int(high) if high is not None else 10**9)
        return st.one_of(st.integers(int(low) if low is not None else -10**6, int(high) if high is not None
                                     else 10**6),
                         st.floats(low if low is not None else -1e9, high if high is not None else 1e9,
                                   allow_nan=False, allow_infinity=False).map(lambda f: round(f, 2)))
    if types == "string":
        lo = schema.get("minLength", 0)
        if "pattern" in schema:   # more specific than a format ("date-time" with a +05:30 pattern)
            cap = schema.get("maxLength", 10**6)
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda t: lo <= len(t) <= cap)
        if schema.get("format") in _FORMATS:
            return _FORMATS[schema["format"]]
        hi = schema.get("maxLength", max(lo, 24))
        return st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=lo, max_size=hi)
    if types == "array":
        items = schema.get("items", {})
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems", lo + 3)
        return st.lists(from_schema(items), min_size=lo, max_size=min(hi, lo + 3),
                        unique_by=(lambda v: json.dumps(v, sort_keys=True)) if schema.get(
                            "uniqueItems") else None)
    if types == "object" or types is None and "additionalProperties" in schema:
        properties = schema.get("properties") or {}
        required = [name for name in schema.get("required") or [] if name in properties or True]
        fields = {name: from_schema(properties.get(name, {})) for name in required}
        optional = {name: from_schema(sub) for name, sub in properties.items() if name not in fields}
        extra = schema.get("additionalProperties")
        base = st.fixed_dictionaries(fields, optional=optional)
        if isinstance(extra, dict) and extra and not properties:
            names = schema.get("propertyNames") or {}
            keys = st.sampled_from(names["enum"]) if "enum" in names else from_schema(names) if names else \
                st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=8)
            low = schema.get("minProperties", 0)
            return st.dictionaries(keys, from_schema(extra), min_size=low,
                                   max_size=max(low, schema.get("maxProperties", low + 3)))
        return base
    return _SCALARS


def valid_values(sid: str) -> st.SearchStrategy:
    validator = registry().validator(sid)
    return from_schema(bundled(sid)).filter(lambda value: not any(validator.iter_errors(value)))


def _breakages(schema: dict, value, path=()):
    """(path, new value or a delete marker) candidates that each break ``value`` against ``schema``."""
    out = []
    if not isinstance(schema, dict):
        return out
    types = schema.get("type")
    for key in ("allOf", "anyOf", "oneOf"):   # composed schemas (a webhook envelope + its event): break any part
        for part in schema.get(key) or []:
            out.extend(_breakages(part, value, path))
    if isinstance(value, dict):
        for name in schema.get("required") or []:
            if name in value:
                out.append((path + (name,), _DELETE))
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                out.extend(_breakages(sub, value[name], path + (name,)))
        out.append((path, [value]))   # an object where an object is required: a list instead
    elif isinstance(value, list):
        out.append((path, {"not": "a list"}))
        if value and isinstance(schema.get("items"), dict):
            out.extend(_breakages(schema["items"], value[0], path + (0,)))
    elif isinstance(value, bool):
        out.append((path, "true"))
    elif isinstance(value, (int, float)):
        out.append((path, str(value)))
    elif isinstance(value, str):
        out.append((path, 12345))
        if "enum" in schema or "const" in schema or "pattern" in schema or "format" in schema:
            out.append((path, value + "\u0000not-allowed"))
    elif value is None and types not in (None, "null"):
        out.append((path, "null"))
    return out


_DELETE = object()


def _apply(value, path, replacement):
    value = copy.deepcopy(value)
    if not path:
        return replacement
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    if replacement is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return value


def invalid_values(sid: str) -> st.SearchStrategy:
    """A valid value with one breakage that the validator rejects (never a value the provider could send)."""
    schema = bundled(sid)
    validator = registry().validator(sid)

    @st.composite
    def broken(draw):
        value = draw(valid_values(sid))
        candidates = _breakages(schema, value)
        # tried in a drawn order, the first that breaks wins: validating every candidate of a large response
        # (a cockpit has hundreds) made each example cost seconds
        draw(st.randoms(use_true_random=False)).shuffle(candidates)
        for path, replacement in candidates:
            broken_value = _apply(value, path, replacement)
            if any(validator.iter_errors(broken_value)):
                return broken_value
        return {"unexpected": "shape"} if not isinstance(value, dict) else [value]

    return broken().filter(lambda value: any(validator.iter_errors(value)))


def responses(provider: str, operation: str, *, valid: bool = True) -> st.SearchStrategy:
    """Successful responses of ``provider.operation`` as its schema allows them (``valid=False``: broken ones)."""
    sid = schema_for(provider, operation, "response")
    return valid_values(sid) if valid else invalid_values(sid)


def request_bodies(provider: str, operation: str, *, valid: bool = True) -> st.SearchStrategy:
    """Request bodies of ``provider.operation`` (for a client's serialisation tests, or for fuzzing a server)."""
    sid = schema_for(provider, operation, "request")
    return valid_values(sid) if valid else invalid_values(sid)


def errors(provider: str, *, valid: bool = True) -> st.SearchStrategy:
    """The provider's error envelopes (its ``error.json``)."""
    sid = schema_id(provider, "error")
    return valid_values(sid) if valid else invalid_values(sid)


def schema_values(sid: str, *, valid: bool = True) -> st.SearchStrategy:
    """Any schema of the sandbox by id, e.g. a webhook payload kept in a provider's ``defs/``."""
    return valid_values(sid) if valid else invalid_values(sid)


def _webhook_declarations() -> dict[str, dict[str, str]]:
    """provider -> {event: schema name} as each provider's ``operations.PROVIDER.webhooks`` declares them."""
    from ..providers import PROVIDERS   # the harness may know the providers; core never does
    return {decl.name: dict(decl.webhooks) for decl in PROVIDERS}


def webhook_events(provider: str) -> list[str]:
    """The webhook events ``provider`` sends, as its declaration lists them (raises LookupError for no provider)."""
    declared = _webhook_declarations()
    if provider not in declared:
        raise LookupError(f"unknown provider {provider!r} (one of {', '.join(sorted(declared))})")
    return list(declared[provider])


def webhook_schema(provider: str, event: str) -> str:
    """The schema id of the payload ``provider`` sends for webhook ``event``."""
    events = webhook_events(provider)
    if event not in events:
        raise LookupError(f"{provider} sends no webhook event {event!r} (its events: {', '.join(events) or 'none'})")
    return schema_id(provider, _webhook_declarations()[provider][event])


def webhook_payloads(provider: str, event: str | None = None, valid: bool = True) -> st.SearchStrategy:
    """Webhook bodies ``provider`` POSTs for ``event`` (None: any of its events), valid, or with one targeted
    breakage the validator rejects (``valid=False``): for property-testing a webhook handler without a server."""
    if event is None:
        events = webhook_events(provider)
        if not events:
            raise LookupError(f"{provider} declares no webhook events")
        return st.one_of([webhook_payloads(provider, e, valid) for e in events])
    sid = webhook_schema(provider, event)
    return valid_values(sid) if valid else invalid_values(sid)
