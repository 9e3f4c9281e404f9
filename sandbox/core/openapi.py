"""Assemble an OpenAPI 3.1 document for a provider from the same declarations that serve it.

Paths, methods and statuses come from the catalogue; security, header parameters and body media types from the
overlay; schemas from ``schemas/<provider>/``: each operation's request, query and response schema and the
provider's ``error`` schema are lifted into ``components.schemas`` together with their ``$defs`` and every schema
they reference in another file (shared definitions such as ``defs/account.json`` are written once).
"""
from __future__ import annotations

import copy
import re
from urllib.parse import unquote, urldefrag, urljoin

from .operations import path_params
from .validation import SCHEMA_BASE, schema_id

_MEDIA = {"json": ["application/json"], "json_or_form": ["application/json", "application/x-www-form-urlencoded"],
          "form": ["application/x-www-form-urlencoded"], "multipart": ["multipart/form-data"]}
_PARAM = re.compile(r"{([^}/]+)}")


def _component_name(sid: str) -> str:
    """``.../schemas/fino/defs/account.json`` -> ``fino_defs_account`` (OpenAPI allows ``[A-Za-z0-9._-]`` only)."""
    return _safe(sid[len(SCHEMA_BASE):-len(".json")] if sid.startswith(SCHEMA_BASE) else sid)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _pointer_segments(fragment: str) -> list[str]:
    """A JSON-pointer fragment (``/$defs/a~1b/properties``) as decoded segments (RFC 6901, RFC 3986)."""
    return [unquote(p).replace("~1", "/").replace("~0", "~") for p in fragment.split("/")[1:]]


def _pointer(segments) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in segments)


class _Lifter:
    """Copies schemas into ``components.schemas`` once each: a file becomes one component, each of its top-level
    ``$defs`` another, and every ``$ref`` (same-file, relative or absolute cross-file) is rewritten to point there."""

    def __init__(self, registry, components: dict):
        self.registry, self.components = registry, components
        self.names: dict[str, str] = {}   # schema id (or id#/$defs/x) -> component name, one-to-one

    def _name(self, key: str, wanted: str) -> str:
        """A component name for ``key``, never one already given to another key (suffix ``_2``, ``_3``...)."""
        if key not in self.names:
            taken, name, n = set(self.names.values()), wanted, 1
            while name in taken:
                n += 1
                name = f"{wanted}_{n}"
            self.names[key] = name
        return self.names[key]

    def ref(self, sid: str) -> dict:
        """A ``$ref`` to schema ``sid`` in components, lifting it (and what it references) on first use."""
        if sid not in self.names:
            name = self._name(sid, _component_name(sid))
            schema = copy.deepcopy(self.registry.schemas[sid])
            defs = schema.pop("$defs", {})
            for key in ("$id", "$schema"):
                schema.pop(key, None)
            for def_name in defs:
                self._name(f"{sid}#/$defs/{def_name}", f"{name}__{_safe(def_name)}")
            self.components[name] = schema   # placeholder first: a file may reference itself
            self._rewrite(schema, sid)
            for def_name, definition in defs.items():
                self._rewrite(definition, sid)
                self.components[self.names[f"{sid}#/$defs/{def_name}"]] = definition
        return {"$ref": f"#/components/schemas/{self.names[sid]}"}

    def _target(self, ref: str, base: str) -> str:
        url, fragment = urldefrag(urljoin(base, ref))
        url = url or base
        if url not in self.registry.schemas or (fragment and not fragment.startswith("/")):
            return ref   # unknown files and $anchor refs stay as written (tests/test_openapi_defs.py walks them)
        name = self.ref(url)["$ref"].rsplit("/", 1)[1]
        segments = _pointer_segments(fragment)
        if len(segments) >= 2 and segments[0] == "$defs" and f"{url}#/$defs/{segments[1]}" in self.names:
            name, segments = self.names[f"{url}#/$defs/{segments[1]}"], segments[2:]
        return f"#/components/schemas/{name}" + _pointer(segments)

    def _rewrite(self, node, base: str) -> None:
        """Rewrite every ``$ref`` under ``node`` (a part of schema ``base``) to its component."""
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                node["$ref"] = self._target(node["$ref"], base)
            for value in node.values():
                self._rewrite(value, base)
        elif isinstance(node, list):
            for value in node:
                self._rewrite(value, base)


def build_openapi(mounted, registry) -> dict:
    """OpenAPI 3.1 for a mounted provider (core.dispatch.Mounted)."""
    decl, components, paths = mounted.decl, {}, {}
    lift = _Lifter(registry, components)
    shapes: dict[str, str] = {}   # "/a/{}" -> first templated key: equal shapes share one path item (3.1 s4.8.2)
    error_ref = lift.ref(schema_id(decl.name, "error")) if registry.has(schema_id(decl.name, "error")) else None
    declared = {name: s.openapi_schemes(name) for name, s in decl.schemes.items()}   # auth name -> its schemes
    for op in mounted.ops.values():
        if op.kind != "operation":
            continue   # hosted pages are HTML, not API operations
        for i, (method, path) in enumerate(op.routes):
            if method != op.method:
                continue
            path = shapes.setdefault(_PARAM.sub("{}", path), path)
            item: dict = {"operationId": op.id if i == 0 else f"{op.id}__alias{i}", "summary": op.summary,
                          "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                         for p in path_params(path)],
                          "responses": {}}
            for header in op.headers:
                item["parameters"].append({"name": header, "in": "header", "required": True,
                                           "schema": {"type": "string"}})
            query_sid = schema_id(decl.name, f"{op.name}.query")
            if registry.has(query_sid):
                query = registry.schemas[query_sid]
                for name, prop in query.get("properties", {}).items():
                    prop = copy.deepcopy(prop)
                    lift._rewrite(prop, query_sid)   # a parameter schema may use shared definitions too
                    item["parameters"].append({"name": name, "in": "query", "schema": prop,
                                               "required": name in query.get("required", [])})
            request_sid = schema_id(decl.name, f"{op.name}.request")
            if op.body in _MEDIA and registry.has(request_sid):
                ref = lift.ref(request_sid)
                item["requestBody"] = {"required": "null" not in str(registry.schemas[request_sid].get("type")),
                                       "content": {media: {"schema": ref} for media in _MEDIA[op.body]}}
            response_sid = schema_id(decl.name, f"{op.name}.response")
            for status in op.statuses:
                entry: dict = {"description": str(status)}
                if status < 300 and op.response == "json" and status != 204 and registry.has(response_sid):
                    entry["content"] = {"application/json": {"schema": lift.ref(response_sid)}}
                elif status < 300 and op.response == "binary":
                    entry["content"] = {"application/octet-stream": {"schema": {}}}
                elif status >= 400 and error_ref:
                    entry["content"] = {"application/json": {"schema": error_ref}}
                item["responses"][str(status)] = entry
            # every name must be a declared scheme (OpenAPI 3.1 s4.8.30): body credentials have none
            needed = declared.get(op.auth, {})
            item["security"] = [{name: [] for name in needed}] if needed else []
            paths.setdefault(path, {})[method.lower()] = item
    # OpenAPI 3.1 top-level webhooks: the body each declared event sends (Provider.webhooks, defs/webhook_*.json)
    webhooks = {event: {"post": {
        "operationId": f"{decl.name}.webhook.{event}", "summary": f"{event} webhook",
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": lift.ref(schema_id(decl.name, name))}}},
        "responses": {"200": {"description": "any 2xx answer: delivered"}}}}
        for event, name in sorted((getattr(decl, "webhooks", None) or {}).items())}
    schemes = {name: doc for docs in declared.values() for name, doc in docs.items()}
    return {"openapi": "3.1.0", "info": {"title": f"{decl.title} (provider-sandbox)", "version": "sandbox"},
            "servers": [{"url": mounted.prefix}], "paths": paths, "webhooks": webhooks,
            "components": {"schemas": components, "securitySchemes": schemes}}
