"""Assemble an OpenAPI 3.1 document for a provider from its route table and its JSON Schemas.

Schemas stay the single source: each operation's ``<op>.request`` / ``<op>.query`` / ``<op>.response`` and the
provider's ``error`` schema are lifted into ``components.schemas`` (their ``$defs`` too, refs rewritten).
"""
from __future__ import annotations

import copy
import re

from .validation import schema_id

_DEF_REF = re.compile(r"^#/\$defs/(.+)$")
_PARAM = re.compile(r"{([^}/]+)}")


def _component_name(name: str) -> str:
    return name.replace(".", "_")


def _lift(schema: dict, name: str, components: dict) -> dict:
    """Copy ``schema`` into components under ``name`` with its $defs as ``name__def``; return a $ref to it."""
    schema = copy.deepcopy(schema)
    defs = schema.pop("$defs", {})
    schema.pop("$id", None)
    schema.pop("$schema", None)

    def rewrite(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and _DEF_REF.match(ref):
                node["$ref"] = f"#/components/schemas/{name}__{_DEF_REF.match(ref).group(1)}"
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for value in node:
                rewrite(value)

    rewrite(schema)
    for def_name, definition in defs.items():
        rewrite(definition)
        components[f"{name}__{def_name}"] = definition
    components[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def build_openapi(spec, registry, title: str, server_url: str, statuses: dict[str, list[int]],
                  security: dict[str, dict] | None = None, op_security: dict[str, list] | None = None) -> dict:
    """OpenAPI 3.1 for ``spec`` (a ProviderSpec); ``statuses`` maps operation -> documented status codes."""
    components: dict = {}
    paths: dict = {}
    shapes: dict[str, str] = {}  # "/a/{}" -> first templated key: equal shapes must share one path item (3.1 s4.8.2)
    error_ref = None
    if registry.has(schema_id(spec.name, "error")):
        error_ref = _lift(registry.schemas[schema_id(spec.name, "error")], "error", components)
    for op, (method, path, aliases) in spec.routes.items():
        if op not in statuses:
            continue  # hosted pages are not API operations
        for i, route in enumerate([path] + [a for a in aliases if " " not in a]):
            route = shapes.setdefault(_PARAM.sub("{}", route), route)
            operation = {"operationId": f"{spec.name}.{op}" if i == 0 else f"{spec.name}.{op}__alias{i}",
                         "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                        for p in _PARAM.findall(route)],
                         "responses": {}}
            query_sid = schema_id(spec.name, f"{op}.query")
            if registry.has(query_sid):
                for name, prop in registry.schemas[query_sid].get("properties", {}).items():
                    operation["parameters"].append({"name": name, "in": "query", "schema": prop,
                                                    "required": name in registry.schemas[query_sid].get("required", [])})
            request_sid = schema_id(spec.name, f"{op}.request")
            if registry.has(request_sid):
                operation["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": _lift(registry.schemas[request_sid], _component_name(f"{op}.request"), components)}}}
            response_sid = schema_id(spec.name, f"{op}.response")
            for status in statuses[op]:
                entry: dict = {"description": f"{status}"}
                if status < 300 and status != 204 and registry.has(response_sid):
                    entry["content"] = {"application/json": {"schema": _lift(
                        registry.schemas[response_sid], _component_name(f"{op}.response"), components)}}
                elif status >= 400 and error_ref:
                    entry["content"] = {"application/json": {"schema": error_ref}}
                operation["responses"][str(status)] = entry
            if op_security and op in op_security:
                operation["security"] = op_security[op]
            paths.setdefault(route, {})[method.lower()] = operation
    document = {"openapi": "3.1.0", "info": {"title": title, "version": "sandbox"},
                "servers": [{"url": server_url}], "paths": paths,
                "components": {"schemas": components, "securitySchemes": security or {}}}
    return document
