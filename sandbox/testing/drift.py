"""Drift: what recorded upstream answers (cassettes) say that the catalogue and the schemas do not.

Four findings, each with the cassette file(s) that show it: responses that violate their schema (JSON pointer and
message), fields the upstream sends that the response schema does not declare (JSON path, array indices shown as
``*``), statuses the catalogue does not list for the operation, and requests that match no operation. Every
cassette is judged afresh (the verdict stored in it is not trusted), so an edited cassette is judged as edited.
"""
from __future__ import annotations

import re

from ..core.validation import _subschemas, schema_id
from .cassettes import PLACEHOLDER
from .proxy import check_response, provider_name, router, schemas

KINDS = ("schemaViolations", "undeclaredFields", "unlistedStatuses", "unmatchedRequests")


def _escape(key) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def undeclared_fields(sid: str, instance) -> list[tuple[str, str]]:
    """(path, example pointer) of every object member in ``instance`` that schema ``sid`` does not declare, where
    the object's schema declares properties (a free-form object or a map declares none, so it is never flagged);
    ``path`` writes array indices as ``*``. ``$ref``, ``allOf``/``anyOf``/``oneOf`` are followed."""
    registry = schemas()
    out: list[tuple[str, str]] = []
    _walk([(registry.schemas[sid], registry.registry.resolver(base_uri=sid))], instance, "", "", out)
    return out


def _walk(candidates: list, instance, path: str, pointer: str, out: list) -> None:
    parts = [p for schema, res in candidates for p in _subschemas(schema, res)]
    if isinstance(instance, dict):
        props: dict[str, list] = {}
        patterns, maps = [], []
        for sub, res in parts:
            for name, prop in (sub.get("properties") or {}).items():
                props.setdefault(name, []).append((prop, res))
            for pattern, prop in (sub.get("patternProperties") or {}).items():
                try:
                    patterns.append((re.compile(pattern), prop, res))
                except re.error:
                    continue
            extra = sub.get("additionalProperties")
            if isinstance(extra, dict):
                maps.append((extra, res))
        for key, value in instance.items():
            subs = props.get(key, []) + [(p, r) for rx, p, r in patterns if rx.search(str(key))]
            if not subs and maps:
                subs = maps
            child_path, child_pointer = f"{path}/{_escape(key)}", f"{pointer}/{_escape(key)}"
            if subs:
                _walk(subs, value, child_path, child_pointer, out)
            elif props or patterns:
                out.append((child_path, child_pointer))
    elif isinstance(instance, list):
        items = [(sub["items"], res) for sub, res in parts if isinstance(sub.get("items"), dict)]
        prefixed = [(sub["prefixItems"], res) for sub, res in parts if isinstance(sub.get("prefixItems"), list)]
        for i, value in enumerate(instance):
            subs = [(p[i], res) for p, res in prefixed if i < len(p) and isinstance(p[i], dict)] or items
            if subs:
                _walk(subs, value, f"{path}/*", f"{pointer}/{i}", out)


def _redacted_at(body, pointer: str | None) -> bool:
    """Whether the value at ``pointer`` is (or holds) a secret placeholder: the recording replaced the real value,
    so a format or length rule it breaks says nothing about the upstream."""
    node = body
    for step in (pointer or "").split("/")[1:]:
        step = step.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return False
    return isinstance(node, str) and PLACEHOLDER.search(node) is not None


def drift_report(cassettes: list[dict], provider: str | None = None) -> dict:
    """The drift in ``cassettes`` (each judged against ``provider``, or the provider it was recorded for):
    ``{"cassettes", "providers", "drift": bool, "schemaViolations", "undeclaredFields", "unlistedStatuses",
    "unmatchedRequests"}``; identical findings are merged, listing their files."""
    forced = provider_name(provider) if provider else None
    found: dict[str, dict] = {kind: {} for kind in KINDS}
    providers = set()

    def add(kind: str, key: tuple, entry: dict, file: str) -> None:
        item = found[kind].setdefault(key, dict(entry, count=0, files=[]))
        item["count"] += 1
        if file not in item["files"]:
            item["files"].append(file)

    for cassette in cassettes:
        name = forced or provider_name(cassette.get("provider") or "")
        providers.add(name)
        req, resp, file = cassette["request"], cassette["response"], cassette.get("file", "?")
        method, path = req["method"].upper(), req["path"]
        match = router(name).match(method, path)
        if match.op is None:
            add("unmatchedRequests", (name, method, path), {"provider": name, "method": method, "path": path,
                                                             "reason": match.reason}, file)
            continue
        op, status = match.op, resp["status"]
        fmt, body = resp.get("bodyFormat", "empty"), resp.get("body")
        head = method == "HEAD"   # no body to judge, as in the proxy
        for problem in check_response(op, status, fmt, body, head=head):
            if problem["kind"] == "status":
                add("unlistedStatuses", (op.id, status), {"operation": op.id, "status": status,
                                                           "listed": list(op.statuses)}, file)
            elif not _redacted_at(body, problem.get("pointer")):
                add("schemaViolations", (op.id, status, problem.get("pointer"), problem["message"]),
                    {"operation": op.id, "status": status, "schema": problem.get("schema"),
                     "pointer": problem.get("pointer"), "message": problem["message"]}, file)
        if head or fmt != "json" or status < 200 or 300 <= status < 400 or (status < 400 and op.response != "json"):
            continue
        sid = schema_id(op.provider, f"{op.name}.response" if status < 400 else "error")
        if not schemas().has(sid):
            continue
        for field_path, pointer in undeclared_fields(sid, body):
            add("undeclaredFields", (op.id, sid, field_path), {"operation": op.id, "status": status, "schema": sid,
                                                               "path": field_path, "example": pointer}, file)
    report = {"cassettes": len(cassettes), "providers": sorted(providers)}
    report.update({kind: list(found[kind].values()) for kind in KINDS})
    report["drift"] = any(report[kind] for kind in KINDS)
    return report


def render_text(report: dict, source: str = "") -> str:
    """The report for a terminal: one line per finding, with the cassette that shows it first."""
    head = f"sandbox drift{' ' + source if source else ''}: {report['cassettes']} cassettes " \
           f"({', '.join(report['providers']) or 'none'}): " + ("DRIFT FOUND" if report["drift"] else "no drift")
    lines = [head]

    def files(item):
        more = f" +{len(item['files']) - 1} more" if len(item["files"]) > 1 else ""
        return f"  [{item['files'][0]}{more}]"

    sections = (
        ("schemaViolations", "responses that violate their schema",
         lambda i: f"{i['operation']} {i['status']} {i['pointer'] or '/'}: {i['message']}"),
        ("undeclaredFields", "fields the schemas do not declare",
         lambda i: f"{i['operation']} {i['status']} {i['path']} (e.g. {i['example']}, seen {i['count']}x)"),
        ("unlistedStatuses", "statuses the catalogue does not list",
         lambda i: f"{i['operation']} {i['status']} (catalogue: {', '.join(map(str, i['listed']))}; "
                   f"seen {i['count']}x)"),
        ("unmatchedRequests", "requests that match no operation",
         lambda i: f"{i['method']} {i['path']} ({i['provider']}: {i['reason']})"),
    )
    for kind, title, line in sections:
        items = report[kind]
        if items:
            lines.append(f"{title} ({len(items)}):")
            lines += ["  " + line(item) + files(item) for item in items]
    return "\n".join(lines)


__all__ = ["drift_report", "render_text", "undeclared_fields"]
