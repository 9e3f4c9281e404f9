"""The generic dispatcher: one blueprint per provider, every route derived from its Operations.

For each request it names the operation, resolves the caller with the operation's auth scheme, parses and
validates path, query, headers and body against ``schemas/<provider>/<operation>.{query,headers,request}.json``,
calls ``service.<operation>(ctx, **path_params)`` and renders the result with the operation's success status.
Hosted pages go through the same route building and context, with their own handlers.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

from flask import Blueprint, Response, g, request, url_for

from . import fastjson
from .errors import BadRequest, MalformedBody, SandboxError, UnsupportedMediaType, ValidationFailed
from .operations import Operation, Provider, flask_rule, param_name, with_empty_tail
from .validation import MAX_JSON_DEPTH, json_depth_exceeds, lone_surrogate_at, printable, schema_id

from .context import TENANT_SEP   # nested tenants: "<client tenant>/<quoted sub-tenant>" (finoOS TenantID)


@dataclass
class Reply:
    """A service result that overrides the operation's success status or adds headers."""

    body: object = None
    status: int | None = None
    headers: dict = field(default_factory=dict)


class Ctx:
    """The request context every service method receives: who calls (client, tenant, end user, scopes), what
    they sent (path, query, headers, body, files) and where the sandbox is (``sandbox``, ``url_for``)."""

    def __init__(self, sandbox, decl: Provider, op: Operation, service, path: dict):
        self.sandbox, self.decl, self.op, self.service = sandbox, decl, op, service
        self.provider = decl.name
        self.request = request
        self.path = path
        self.query: dict = {}
        self.body = None
        self.files: dict = {}
        self.client: dict | None = None
        self.token: dict | None = None
        self.user: str | None = None
        self.scopes: list[str] = []
        self.user_scopes: set[str] | None = None   # per-user scopes (finoOS), loaded by the provider
        self._tenant: str | None = None

    # --- tenancy -----------------------------------------------------------------------------------------
    @property
    def tenant(self) -> str | None:
        return self._tenant

    @tenant.setter
    def tenant(self, value: str | None) -> None:
        self._tenant = value
        g.tenant = value   # the journal files the request under it

    @property
    def base_tenant(self) -> str | None:
        """The client's own tenant (without a nested sub-tenant)."""
        return self._tenant.split(TENANT_SEP, 1)[0] if self._tenant else None

    def enter_subtenant(self, name: str) -> str:
        """Nest the request in ``name`` within the client's tenant (created on first use). The name is quoted,
        so no user-chosen value can reach another client's or sub-tenant's keys."""
        self.tenant = f"{self.base_tenant}{TENANT_SEP}{quote(name, safe='')}"
        return self._tenant

    def require_user_scope(self, scope: str) -> None:
        from .errors import Forbidden
        if self.user_scopes is not None and scope not in self.user_scopes:
            raise Forbidden(f"The user has no {scope} scope")

    # --- helpers ---------------------------------------------------------------------------------------------
    def now(self):
        return self.sandbox.clock.now(self._tenant or "_anonymous")

    def url_for(self, name: str, **params) -> str:
        """Absolute URL of an operation or page of this provider (extra params become the query string), on the
        sandbox's public base URL (``public_base_url``), never on a Host header an attacker chose."""
        values = {param_name(k): v for k, v in params.items()}
        mounted = self.sandbox.providers[self.provider]
        target = mounted.ops[name]
        separate = target.kind == "page" and mounted.pages_prefix != mounted.prefix
        path = url_for(f"{self.provider}_pages.{name}" if separate else f"{self.provider}.{name}", **values)
        return public_base_url(self.sandbox.config) + path


# A Host header naming this machine: localhost, *.localhost, 127.0.0.0/8 or [::1], with an optional port.
_LOOPBACK_HOST = re.compile(r"^(?P<name>localhost|[a-z0-9-]+\.localhost|[0-9.]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$",
                            re.I)


def _is_loopback(host: str) -> bool:
    match = _LOOPBACK_HOST.match(host or "")
    if not match:
        return False
    name = match.group("name").strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name.lower() == "localhost" or name.lower().endswith(".localhost")


def public_base_url(config: dict) -> str:
    """Scheme and host of the links the sandbox hands out (widget locations, PDF urls, report hrefs): config
    ``PUBLIC_URL`` (env ``SANDBOX_PUBLIC_URL``) when set; else the request's own host when it is a loopback name
    (a local client keeps whatever port it reached, e.g. through Docker); else ``http://127.0.0.1:<PORT>``, so a
    forged ``Host`` header never puts another host into a link."""
    public = str(config.get("PUBLIC_URL") or "").strip()
    if public:
        return public.rstrip("/")
    if _is_loopback(request.host):
        return f"{request.scheme}://{request.host}"
    return f"http://127.0.0.1:{config.get('PORT') or 8080}"


def current_ctx() -> Ctx | None:
    return g.get("ctx")


# --- parsing ---------------------------------------------------------------------------------------------------
def _validate(sandbox, op: Operation, part: str, instance) -> None:
    sid = schema_id(op.provider, f"{op.name}.{part}")
    if not sandbox.schemas.has(sid):
        return
    errors = sandbox.schemas.errors(sid, instance)
    g.setdefault("verdict", {})[part] = "ok" if not errors else [
        e["pointer"] + ": " + e["message"] for e in errors[:5]]
    if errors:
        raise ValidationFailed(errors)


def _parse_json(raw: bytes):
    """Parse a JSON body: nesting is bounded before parsing (deep input never reaches a recursive parser,
    validator or encoder) and a lone surrogate in any string is refused (the store, the journal and the
    response could not encode it)."""
    if json_depth_exceeds(raw):
        raise MalformedBody(f"Request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedBody(f"Request body is not valid JSON: {printable(str(exc))[:200]}") from None
    pointer = lone_surrogate_at(body)
    if pointer is not None:
        field = pointer.rsplit("/", 1)[-1]
        raise ValidationFailed([{"pointer": pointer, "field": field, "validator": "surrogate",
                                 "message": "must not contain a lone UTF-16 surrogate"}])
    return body


def parse_body(ctx: Ctx) -> None:
    """Read the body as the operation's body kind says and validate it against ``<op>.request``."""
    kind = ctx.op.body
    if kind == "none":
        return
    req = ctx.request
    mimetype = req.mimetype or ""
    is_json = mimetype == "application/json" or mimetype.endswith("+json")
    if kind == "multipart":
        if req.get_data(cache=True).strip() and mimetype != "multipart/form-data":
            raise UnsupportedMediaType(f"Content-Type must be multipart/form-data, got {mimetype or 'none'}")
        ctx.body = req.form.to_dict() if mimetype == "multipart/form-data" else None
        ctx.files = {name: req.files.getlist(name) for name in req.files}
    else:
        raw = req.get_data(cache=True)
        body = None
        if raw.strip():
            if mimetype == "application/x-www-form-urlencoded" and kind in ("form", "json_or_form"):
                body = req.form.to_dict()
            elif kind == "form":
                raise UnsupportedMediaType(f"Content-Type must be application/x-www-form-urlencoded, "
                                           f"got {mimetype or 'none'}")
            elif mimetype and not is_json:
                raise UnsupportedMediaType(f"Content-Type must be application/json, got {mimetype}")
            else:
                body = _parse_json(raw)
        ctx.body = body
    _validate(ctx.sandbox, ctx.op, "request", ctx.body)


def parse_headers(ctx: Ctx) -> None:
    for name in ctx.op.headers:
        if not ctx.request.headers.get(name):
            raise BadRequest(f"Missing required header: {name}", kind="missing_header", details={"header": name})
    sid = schema_id(ctx.provider, f"{ctx.op.name}.headers")
    if ctx.sandbox.schemas.has(sid):
        _validate(ctx.sandbox, ctx.op, "headers", {k.lower(): v for k, v in ctx.request.headers.items()})


# --- dispatch --------------------------------------------------------------------------------------------------
def render(op: Operation, result) -> Response:
    """A service result as a response: dict/list -> JSON; str -> JSON text as is; None -> empty; Reply overrides
    the status or adds headers; a Response passes through."""
    status, headers = op.status, {}
    if isinstance(result, Reply):
        status, headers, result = result.status or op.status, result.headers, result.body
    if isinstance(result, Response):
        response = result
    elif result is None:
        response = Response(status=status)
    elif isinstance(result, (bytes, str)) and op.response != "json":
        response = Response(result, status=status)
    elif isinstance(result, str):
        response = Response(result, status=status, mimetype="application/json")
    else:
        response = Response(fastjson.dumpb(result), status=status,
                            mimetype="application/json")
    response.headers.update(headers)
    return response


def _handler(sandbox, decl: Provider, op: Operation, service):
    scheme = decl.schemes.get(op.auth)
    if op.kind == "page":
        page = decl.pages[op.name]

        def view(**path):
            ctx = g.ctx = Ctx(sandbox, decl, op, service, path)
            return page(ctx, **path)
        return view
    method = getattr(service, op.name)
    before = getattr(service, decl.before) if decl.before else None

    def view(**path):
        ctx = g.ctx = Ctx(sandbox, decl, op, service, path)
        if scheme is not None and not scheme.needs_body:
            scheme.resolve(ctx)
            _nest(ctx)
        parse_headers(ctx)
        ctx.query = request.args.to_dict()
        _validate(sandbox, op, "query", ctx.query)
        try:
            parse_body(ctx)
        except SandboxError:
            if scheme is not None and scheme.needs_body:
                scheme.attribute(ctx)   # a rejected body is journaled to the client it names, so its author sees it
            raise
        if scheme is not None and scheme.needs_body:
            scheme.resolve(ctx)
            _nest(ctx)
        if before is not None:
            before(ctx)
        return render(op, method(ctx, **path))
    return view


def _nest(ctx: Ctx) -> None:
    """Enter the sub-tenant the provider's tenant header names (finoOS ``TenantID``), so everything after auth
    (validation errors included) is stored and journaled there."""
    name = ctx.decl.tenant_header and ctx.request.headers.get(ctx.decl.tenant_header)
    if name and ctx.tenant and name != ctx.base_tenant:   # the client's own tenant id names its default tenant
        ctx.enter_subtenant(name)


def mount(sandbox, decl: Provider, ops: dict[str, Operation], service, prefix: str) -> Blueprint:
    """One blueprint for a provider: every route and alias of every operation and page, plus openapi.json."""
    bp = Blueprint(decl.name, __name__, url_prefix=prefix, template_folder=decl.pages_dir)
    for name, op in ops.items():
        view = _handler(sandbox, decl, op, service)
        routes = list(op.routes)
        if op.empty_tail:
            routes += [(m, t) for m, p in op.routes if (t := with_empty_tail(p)) is not None]
        seen = set()
        for i, (verb, path) in enumerate(routes):
            if (verb, path) in seen:
                continue
            seen.add((verb, path))
            defaults = None
            rule = flask_rule(path, op.slash_params)
            if i >= len(op.routes):   # the empty-tail variant: the missing parameter arrives as ""
                last = [p for p in op.routes if with_empty_tail(p[1]) == path][0][1]
                defaults = {param_name(last[last.rindex("{") + 1:-1]): ""}
            bp.add_url_rule(rule, endpoint=name if i == 0 else f"{name}__{i}", view_func=view, methods=[verb],
                            strict_slashes=False, **({"defaults": defaults} if defaults else {}))

    bp.before_request(name_operation)
    return bp


def name_operation() -> None:
    """Name the request's provider and operation in ``g`` (from the routed endpoint), so every error, even one
    raised before the view, renders in that operation's envelope and is journaled under it."""
    if "provider" in g or not request.endpoint or "." not in request.endpoint:
        return
    from .context import current_sandbox

    blueprint, endpoint = request.endpoint.split(".", 1)
    provider = blueprint[:-len("_pages")] if blueprint.endswith("_pages") else blueprint
    mounted = current_sandbox().providers.get(provider)
    if mounted is None:
        return
    op = mounted.ops.get(endpoint.split("__")[0])
    g.provider, g.op, g.operation = provider, op, (op.id if op else None)


# --- installing a provider --------------------------------------------------------------------------------------
@dataclass
class Mounted:
    """A served provider: its declaration, resolved operations, service object and mount points."""

    decl: Provider
    ops: dict
    service: object
    prefix: str
    pages_prefix: str

    @property
    def name(self) -> str:
        return self.decl.name

    @property
    def scenarios(self) -> list:
        return self.decl.scenarios

    @property
    def routes(self) -> dict[str, tuple[str, str, list[str]]]:
        """short name -> (method, path, aliases) relative to the prefix (pages: to the pages prefix)."""
        return {name: op.route_table_entry() for name, op in self.ops.items()}

    @property
    def absolute_routes(self) -> dict[str, tuple[str, str, list[str]]]:
        """Like ``routes`` but every path from the server root (API prefix or pages prefix)."""
        out = {}
        for name, op in self.ops.items():
            base = self.pages_prefix if op.kind == "page" else self.prefix
            method, path, aliases = op.route_table_entry()
            out[name] = (method, base + path,
                         [f"{a.split(' ', 1)[0]} {base}{a.split(' ', 1)[1]}" if " " in a else base + a for a in aliases])
        return out

    def fire_webhook(self, tenant: str, body: dict):
        return getattr(self.service, self.decl.fire_webhook)(tenant, body) if self.decl.fire_webhook else None

    def render_error(self, err, op):
        return self.decl.render_error(err, op)


def install(app, sandbox, decl: Provider, section: dict, catalogue_names: set[str]) -> Mounted:
    """Build, check and mount one provider; raises StartupError when a declared piece is missing."""
    from .operations import build_operations, check_startup

    ops = build_operations(decl, section)
    service = decl.service(sandbox)
    check_startup(decl, ops, service, sandbox.schemas, sandbox.schemas.root, catalogue_names)
    prefix, pages_prefix = section["sandbox_prefix"], section.get("pages_prefix") or section["sandbox_prefix"]
    api_ops = {n: o for n, o in ops.items() if o.kind == "operation" or pages_prefix == prefix}
    page_ops = {n: o for n, o in ops.items() if n not in api_ops}
    mounted = Mounted(decl, ops, service, prefix, pages_prefix)
    bp = mount(sandbox, decl, api_ops, service, prefix)
    _serve_openapi(bp, mounted)
    app.register_blueprint(bp)
    if page_ops:
        app.register_blueprint(mount(sandbox, decl, page_ops, service, pages_prefix), name=f"{decl.name}_pages")
    if decl.assets_dir:
        _serve_assets(app, decl, pages_prefix)
    sandbox.providers[decl.name] = mounted
    return mounted


ASSETS = "/_assets"


def _serve_assets(app, decl: Provider, pages_prefix: str) -> None:
    """Serve a provider's static files (no auth: they stand in for a public CDN such as a logo host); paths
    outside the directory and unknown files are 404."""
    from flask import send_from_directory

    def asset(filename: str):
        return send_from_directory(decl.assets_dir, filename, max_age=3600)

    app.add_url_rule(f"{pages_prefix}{ASSETS}/<path:filename>", endpoint=f"{decl.name}_assets", view_func=asset,
                     methods=["GET"])


def asset_url(ctx, path: str) -> str:
    """Absolute public URL of one of the provider's static files (``Provider.assets_dir``); needs a request."""
    mounted = ctx.sandbox.providers[ctx.provider]
    return public_base_url(ctx.sandbox.config) + mounted.pages_prefix + ASSETS + "/" + path.lstrip("/")


def _serve_openapi(bp: Blueprint, mounted: Mounted) -> None:
    from .openapi import build_openapi

    cache: dict = {}

    def openapi():
        if "doc" not in cache:
            from .context import current_sandbox
            cache["doc"] = build_openapi(mounted, current_sandbox().schemas)
        return cache["doc"]

    bp.add_url_rule("/openapi.json", endpoint="openapi", view_func=openapi, methods=["GET"])


# --- pre-signed downloads --------------------------------------------------------------------------------------
def presigned_denial(code: str, message: str | None = None, status: int = 403, **details) -> Response:
    """An object store's XML error for a bad pre-signed link (S3: AccessDenied, SignatureDoesNotMatch, NoSuchKey)."""
    from .signing import presigned_error
    return Response(presigned_error(code, message, **details), status=status, mimetype="application/xml")


def open_presigned(ctx: Ctx, purpose: str):
    """Check the request's pre-signed link (``?tenant&expires&signature``, core/signing.py) on the link tenant's
    sandbox clock: ``(claims, None)``, or ``(None, 403 XML)`` when it is missing, tampered or expired, as the
    providers' storage URLs answer. Enters the link's tenant so the journal files the download there."""
    from .clock import from_timestamp, isoformat
    from .signing import ExpiredToken, InvalidToken

    sandbox, query = ctx.sandbox, ctx.request.args.to_dict()
    try:
        signed = sandbox.signer.verify_url(ctx.request.path, query, purpose=purpose, now=sandbox.clock.now)
    except ExpiredToken:
        return None, presigned_denial("AccessDenied", "Request has expired",
                                      Expires=isoformat(from_timestamp(int(query["expires"]))),
                                      ServerTime=isoformat(sandbox.clock.now(query.get("tenant"))))
    except InvalidToken:
        return None, presigned_denial("SignatureDoesNotMatch" if "signature" in query else "AccessDenied")
    if signed.get("tenant") is None:
        return None, presigned_denial("AccessDenied")
    ctx.tenant = signed["tenant"]
    return signed, None
