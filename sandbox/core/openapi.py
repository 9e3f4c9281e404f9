"""Assemble an OpenAPI 3.1 document for a provider from the same declarations that serve it.

Paths, methods and statuses come from the catalogue; security, header parameters and body media types from the
overlay; schemas from ``schemas/<provider>/``: each operation's request, query and response schema and the
provider's ``error`` schema are lifted into ``components.schemas`` together with their ``$defs`` and every schema
they reference in another file (shared definitions such as ``defs/account.json`` are written once).
"""
from __future__ import annotations

import copy
import re
from urllib.parse import urldefrag, urljoin

from .operations import path_params
from .validation import SCHEMA_BASE, schema_id

_MEDIA = {"json": ["application/json"], "json_or_form": ["application/json", "application/x-www-form-urlencoded"],
          "form": ["application/x-www-form-urlencoded"], "multipart": ["multipart/form-data"]}
_PARAM = re.compile(r"{([^}/]+)}")


def _component_name(sid: str) -> str:
    """``.../schemas/fino/defs/account.json`` -> ``fino_defs_account``."""
    return re.sub(r"\W", "_", sid[len(SCHEMA_BASE):-len(".json")] if sid.startswith(SCHEMA_BASE) else sid)


class _Lifter:
    def __init__(self, registry, components: dict):
        self.registry, self.components, self.done = registry, components, set()

    def ref(self, sid: str) -> dict:
        """A ``$ref`` to schema ``sid`` in components, lifting it (and what it references) on first use."""
        name = _component_name(sid)
        if sid not in self.done:
            self.done.add(sid)
            schema = copy.deepcopy(self.registry.schemas[sid])
            defs = schema.pop("$defs", {})
            for key in ("$id", "$schema"):
                schema.pop(key, None)
            self._rewrite(schema, sid, name)
            for def_name, definition in defs.items():
                self._rewrite(definition, sid, name)
                self.components[f"{name}__{def_name}"] = definition
            self.components[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def _target(self, ref: str, base: str, base_name: str) -> str:
        url, fragment = urldefrag(urljoin(base, ref))
        if url == base or not url:
            name = base_name
        else:
            if url not in self.registry.schemas:
                return ref   # leave unknown references alone (the meta-schema test catches them)
            name = self.ref(url)["$ref"].rsplit("/", 1)[1]
        if fragment.startswith("/$defs/"):
            return f"#/components/schemas/{name}__{fragment[len('/$defs/'):]}"
        return f"#/components/schemas/{name}" + (f"/{fragment.lstrip('/')}" if fragment else "")

    def _rewrite(self, node, base: str, base_name: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                node["$ref"] = self._target(node["$ref"], base, base_name)
            for value in node.values():
                self._rewrite(value, base, base_name)
        elif isinstance(node, list):
            for value in node:
                self._rewrite(value, base, base_name)


def build_openapi(mounted, registry) -> dict:
    """OpenAPI 3.1 for a mounted provider (core.dispatch.Mounted)."""
    decl, components, paths = mounted.decl, {}, {}
    lift = _Lifter(registry, components)
    shapes: dict[str, str] = {}   # "/a/{}" -> first templated key: equal shapes share one path item (3.1 s4.8.2)
    error_ref = lift.ref(schema_id(decl.name, "error")) if registry.has(schema_id(decl.name, "error")) else None
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
            item["security"] = [] if op.auth == "none" else [{op.auth: []}]
            paths.setdefault(path, {})[method.lower()] = item
    schemes = {name: s.openapi for name, s in decl.schemes.items() if s.openapi}
    return {"openapi": "3.1.0", "info": {"title": f"{decl.title} (provider-sandbox)", "version": "sandbox"},
            "servers": [{"url": mounted.prefix}], "paths": paths,
            "components": {"schemas": components, "securitySchemes": schemes}}
