"""The operation layer: every served operation is the catalogue entry plus a small declarative overlay.

The catalogue (sandbox/spec/catalogue.yaml) is the only place a method, path, alias or status list is written.
Each provider's ``operations.py`` adds what the catalogue lacks (auth scheme and scope, body kind, required
headers, success status, error envelope) as one ``Op`` per served operation, and names its service class and
hosted pages in a ``Provider``. ``build_operations`` joins the two and ``check_startup`` refuses to start when a
piece is missing, naming the file: an operation without a handler, a body without its request schema, an
operation without a response schema, a schema file that names no operation (moto's "fail loudly" rule).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

BODY_KINDS = ("none", "json", "json_or_form", "form", "multipart")
RESPONSE_KINDS = ("json", "empty", "binary", "html")
SCHEMA_PARTS = ("request", "query", "headers", "response")
_PARAM = re.compile(r"{([^}/]+)}")


class StartupError(RuntimeError):
    """The declarations are incomplete or inconsistent: create_app() refuses to start."""


@dataclass(frozen=True)
class Op:
    """Overlay entry: what the catalogue does not say about an operation. ``None`` fields take the provider's
    default. ``auth`` names a scheme of the provider (or "none"); ``body`` is one of BODY_KINDS ("none": any body
    is ignored); ``status`` is the success status (default: the first catalogue status); ``envelope`` is passed
    to the provider's error renderer; ``empty_tail`` also serves the route with its last path parameter empty
    (so the service answers a missing id in the provider's own words instead of a routing 404)."""

    auth: str | None = None
    scope: str | tuple[str, ...] | None = None   # one scope, or alternatives of which any one grants access
    body: str | None = None
    headers: tuple[str, ...] = ()
    status: int | None = None
    envelope: str | None = None
    response: str | None = None
    empty_tail: bool = False
    slash_params: frozenset = frozenset()   # path parameters that may contain "/"


@dataclass(frozen=True)
class Operation:
    """One served operation or hosted page, resolved from catalogue + overlay."""

    id: str
    provider: str
    name: str
    method: str
    path: str
    aliases: tuple[tuple[str, str], ...]   # (method, path), same-method aliases first as in the catalogue
    statuses: tuple[int, ...]
    status: int
    auth: str
    scope: str | None
    body: str
    headers: tuple[str, ...]
    envelope: str | None
    response: str
    empty_tail: bool
    slash_params: frozenset
    kind: str = "operation"                # "operation" | "page"
    summary: str = ""
    tier: str = ""
    provenance: str = ""

    @property
    def routes(self) -> list[tuple[str, str]]:
        """Every (method, path) the operation answers on, the catalogue path first."""
        return [(self.method, self.path), *self.aliases]

    def route_table_entry(self) -> tuple[str, str, list[str]]:
        """(method, path, aliases) with aliases written as in the catalogue."""
        return (self.method, self.path,
                [p if m == self.method else f"{m} {p}" for m, p in self.aliases])


@dataclass
class Provider:
    """A provider's declaration: everything core needs to mount and serve it."""

    name: str
    title: str
    service: type                                       # constructed once with the Sandbox
    render_error: Callable                              # (SandboxError, Operation | None) -> (body, status)
    operations: dict[str, Op]                           # served operations: short name -> overlay
    default: Op = field(default_factory=Op)             # provider-wide defaults for the overlay fields
    schemes: dict = field(default_factory=dict)         # scheme name -> core.schemes.Scheme
    pages: dict[str, Callable] = field(default_factory=dict)   # page short name -> handler(ctx, **params)
    page_methods: tuple[str, ...] = ("GET", "POST")     # hosted pages take plain form posts too
    pages_dir: str | None = None                        # templates of the hosted pages
    assets_dir: str | None = None                       # static files (logos, images) served read-only at
                                                        # <pages prefix>/_assets/<path>; links via asset_url()
    scenarios: list = field(default_factory=list)      # magic values, served by the control API
    fire_webhook: str | None = None                     # service method name for /_sandbox/webhooks/fire
    webhooks: dict = field(default_factory=dict)        # webhook event -> its payload schema, relative to the
                                                        # provider's schemas ("defs/webhook_connection_status")
    tenant_header: str | None = None                    # a header naming a sub-tenant within the client (finoOS
                                                        # TenantID): applied right after auth, before parsing
    before: str | None = None                           # service method name called with the ctx of every
                                                        # operation after auth and validation, before the
                                                        # operation (lazy lifecycle work, e.g. finX autosync)


def page_methods(*methods: str):
    """Decorator for a page handler that answers only ``methods`` (default: GET and POST for form posts)."""
    def mark(fn):
        fn.page_methods = tuple(m.upper() for m in methods)
        return fn
    return mark


def _aliases(method: str, aliases: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for alias in aliases or []:
        verb, _, path = alias.partition(" ") if " " in alias else (method, " ", alias)
        out.append((verb.upper(), path))
    return tuple(out)


def build_operations(decl: Provider, section: dict) -> dict[str, Operation]:
    """Join a provider's catalogue section and its overlay into Operations (short name -> Operation)."""
    documented = {op["id"].split(".", 1)[1]: op for op in section.get("operations") or []}
    documented_pages = {p["id"].split(".", 1)[1]: p for p in section.get("pages") or []}
    d = decl.default
    out: dict[str, Operation] = {}
    for name, overlay in decl.operations.items():
        entry = documented.get(name)
        if entry is None:
            raise StartupError(f"{decl.name}.{name}: declared in providers/{decl.name}/operations.py but not in "
                               f"the catalogue (sandbox/spec/catalogue.yaml)")
        merged = Op(**{f: getattr(overlay, f) if getattr(overlay, f) not in (None, (), frozenset(), False)
                       else getattr(d, f) for f in Op.__dataclass_fields__})
        body = merged.body or "none"
        if body not in BODY_KINDS:
            raise StartupError(f"{decl.name}.{name}: body {body!r} is not one of {BODY_KINDS}")
        statuses = tuple(entry["statuses"])
        status = merged.status or statuses[0]
        if status not in statuses:
            raise StartupError(f"{decl.name}.{name}: success status {status} is not a catalogue status {statuses}")
        auth = merged.auth or "none"
        if auth != "none" and auth not in decl.schemes:
            raise StartupError(f"{decl.name}.{name}: auth scheme {auth!r} is not declared "
                               f"(schemes: {sorted(decl.schemes)})")
        out[name] = Operation(
            id=entry["id"], provider=decl.name, name=name, method=entry["method"].upper(), path=entry["path"],
            aliases=_aliases(entry["method"].upper(), entry.get("aliases")), statuses=statuses, status=status,
            auth=auth, scope=merged.scope, body=body, headers=tuple(merged.headers), envelope=merged.envelope,
            response=merged.response or ("empty" if status == 204 else "json"), empty_tail=merged.empty_tail,
            slash_params=merged.slash_params, summary=entry.get("summary", ""), tier=entry.get("tier", ""),
            provenance=entry.get("provenance", ""))
    for name in decl.pages:
        entry = documented_pages.get(name)
        if entry is None:
            raise StartupError(f"{decl.name}.{name}: a page handler in providers/{decl.name}/operations.py but no "
                               f"page of that id in the catalogue")
        method = entry["method"].upper()
        methods = getattr(decl.pages[name], "page_methods", decl.page_methods)
        extra = tuple((m, entry["path"]) for m in methods if m != method)
        out[name] = Operation(
            id=entry["id"], provider=decl.name, name=name, method=method, path=entry["path"],
            aliases=extra + _aliases(method, entry.get("aliases")), statuses=(200,), status=200, auth="none",
            scope=None, body="none", headers=(), envelope=None, response="html", empty_tail=False,
            slash_params=frozenset(), kind="page", summary=entry.get("summary", ""),
            provenance=entry.get("provenance", ""))
    return out


def check_startup(decl: Provider, ops: dict[str, Operation], service, registry, schema_root: Path,
                  catalogue_names: set[str]) -> None:
    """Refuse to start on a missing piece, naming the file to add or fix (issue 6: fail loudly)."""
    from .validation import schema_id

    problems = []
    folder = f"schemas/{decl.name}"
    for name, op in ops.items():
        if op.kind == "page":
            if not callable(decl.pages[name]):
                problems.append(f"{op.id}: page handler is not callable")
            continue
        if not callable(getattr(service, name, None)):
            problems.append(f"{op.id}: no handler {type(service).__name__}.{name} in providers/{decl.name}/service.py")
        if op.body != "none" and not registry.has(schema_id(decl.name, f"{name}.request")):
            problems.append(f"{op.id}: takes a {op.body} body but {folder}/{name}.request.json is missing")
        if op.response == "json" and not registry.has(schema_id(decl.name, f"{name}.response")):
            problems.append(f"{op.id}: answers JSON but {folder}/{name}.response.json is missing")
    if not registry.has(schema_id(decl.name, "error")):
        problems.append(f"{decl.name}: {folder}/error.json (the error envelope) is missing")
    for path in sorted((schema_root / decl.name).rglob("*.json")) if (schema_root / decl.name).is_dir() else []:
        rel = path.relative_to(schema_root / decl.name).as_posix()
        if rel == "error.json" or rel.startswith("defs/"):
            continue
        stem, _, part = rel[: -len(".json")].rpartition(".")
        if part not in SCHEMA_PARTS:
            why = f"'{part}' is no schema part"
        elif stem not in ops or ops[stem].kind == "page":
            why = "names no served operation" if stem in catalogue_names else "names no operation"
        else:
            continue
        problems.append(f"schemas/{decl.name}/{rel}: {why} (expected <operation>.{{{','.join(SCHEMA_PARTS)}}}"
                        f".json for an operation in providers/{decl.name}/operations.py, error.json or defs/*)")
    if problems:
        raise StartupError("provider-sandbox cannot start:\n  " + "\n  ".join(problems))


def check_unmounted_schemas(schema_root: Path, mounted: set[str], catalogue: dict) -> None:
    """Schema folders of providers that are not served yet must still name catalogue operations."""
    problems = []
    for folder in sorted(p for p in schema_root.iterdir() if p.is_dir() and p.name not in mounted):
        names = {op["id"].split(".", 1)[1] for op in (catalogue["providers"].get(folder.name) or {}).get(
            "operations", [])}
        if folder.name not in catalogue["providers"]:
            problems.append(f"schemas/{folder.name}/: no provider of that name in the catalogue")
            continue
        for path in sorted(folder.rglob("*.json")):
            rel = path.relative_to(folder).as_posix()
            stem, _, part = rel[: -len(".json")].rpartition(".")
            if rel != "error.json" and not rel.startswith("defs/") and (part not in SCHEMA_PARTS or stem not in names):
                problems.append(f"schemas/{folder.name}/{rel}: names no operation")
    if problems:
        raise StartupError("provider-sandbox cannot start:\n  " + "\n  ".join(problems))


def flask_rule(path: str, slash_params: frozenset = frozenset()) -> str:
    """Catalogue ``/a/{user-id}`` -> Flask ``/a/<user_id>`` (``<path:x>`` for params that may contain '/')."""
    def convert(match):
        name = param_name(match.group(1))
        return f"<path:{name}>" if match.group(1) in slash_params else f"<{name}>"
    return _PARAM.sub(convert, path)


def param_name(name: str) -> str:
    """A catalogue path parameter as a Python identifier (``user-id`` -> ``user_id``)."""
    return re.sub(r"\W", "_", name)


def path_params(path: str) -> list[str]:
    return _PARAM.findall(path)


def with_empty_tail(path: str) -> str | None:
    """``/a/{x}`` -> ``/a/`` (the route with its last parameter empty), or None when the path ends otherwise."""
    match = re.search(r"{[^}/]+}$", path)
    return path[: match.start()] if match else None


__all__ = ["Op", "Operation", "Provider", "StartupError", "build_operations", "check_startup", "flask_rule",
           "param_name", "path_params", "replace"]
