"""HTTP plumbing shared by every provider: route tables -> blueprints, body/query parsing with schema validation,
credentials, app-level error rendering in the provider's envelope, the version header and the journal hook.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Callable

from flask import Blueprint, Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from .clock import isoformat
from . import memo
from .context import VERSION, current_sandbox
from .errors import (BadRequest, InternalError, MalformedBody, MethodNotAllowed, NotFound, PayloadTooLarge,
                     SandboxError, UnsupportedMediaType, ValidationFailed)
from .validation import schema_id

log = logging.getLogger("sandbox")
ANONYMOUS = "_anonymous"
_PARAM = re.compile(r"{([^}/]+)}")


@dataclass
class ProviderSpec:
    """What core needs to know about a provider: where it is mounted and how it renders errors."""

    name: str
    prefix: str
    render_error: Callable[[SandboxError, str | None], tuple[dict, int]]
    scenarios: list[dict] = field(default_factory=list)   # magic values, served by the control API
    routes: dict = field(default_factory=dict)            # operation -> (method, path, aliases)
    fire_webhook: Callable[[str, dict], list] | None = None  # (tenant, request body) -> deliveries, for the control API


def flask_path(path: str, path_params: frozenset = frozenset()) -> str:
    """Catalogue ``/a/{x}`` -> Flask ``/a/<x>`` (``<path:x>`` for params that may contain slashes)."""
    return _PARAM.sub(lambda m: f"<path:{m.group(1)}>" if m.group(1) in path_params else f"<{m.group(1)}>", path)


def build_blueprint(spec: ProviderSpec, views, path_params: frozenset = frozenset(),
                    pages_dir: str | None = None) -> Blueprint:
    """One blueprint per provider from its route table: each operation's path and aliases call the view of the
    same name, so the catalogue id (``<provider>.<operation>``) is the Flask endpoint. ``pages_dir``: the
    provider's folder of hosted-page templates."""
    bp = Blueprint(spec.name, __name__, url_prefix=spec.prefix, template_folder=pages_dir)
    for op, (method, path, aliases) in spec.routes.items():
        view = getattr(views, op)
        rules = [(method, path)] + [tuple(a.split(" ", 1)) if " " in a else (method, a) for a in aliases]
        for i, (verb, rule) in enumerate(rules):
            bp.add_url_rule(flask_path(rule, path_params), endpoint=op if i == 0 else f"{op}__{i}",
                            view_func=view, methods=[verb], strict_slashes=False)
    bp.before_request(lambda: _enter(spec))
    return bp


def serve_openapi(bp: Blueprint, spec: ProviderSpec, title: str, statuses: dict, security: dict | None = None,
                  op_security: dict | None = None) -> None:
    """Serve ``<prefix>/openapi.json``, assembled once per process from the route table and schemas."""
    from .openapi import build_openapi

    cache: dict = {}

    def openapi():
        if "doc" not in cache:
            cache["doc"] = build_openapi(spec, current_sandbox().schemas, title, spec.prefix, statuses, security,
                                         op_security)
        return cache["doc"]

    bp.add_url_rule("/openapi.json", endpoint="openapi", view_func=openapi, methods=["GET"])


def _enter(spec: ProviderSpec) -> None:
    g.provider = spec.name
    name = request.endpoint.split(".", 1)[1].split("__")[0] if request.endpoint else None
    g.operation = f"{spec.name}.{name}" if name and name != "openapi" else None


def operation() -> str | None:
    return g.get("operation")


def set_tenant(tenant: str) -> None:
    g.tenant = tenant


# --- request parsing ---------------------------------------------------------------------------------
def json_body(validate: bool = True, *, allow_form: bool = False):
    """The request's JSON body (None when empty), validated against ``<op>.request`` when that schema exists.

    Malformed JSON -> MalformedBody; a non-JSON content type with a body -> UnsupportedMediaType.
    """
    raw = request.get_data(cache=True)
    body = None
    if raw.strip():
        mimetype = request.mimetype or ""
        if allow_form and mimetype == "application/x-www-form-urlencoded":
            body = request.form.to_dict()
        elif mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
            raise UnsupportedMediaType(f"Content-Type must be application/json, got {mimetype}")
        else:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise MalformedBody(f"Request body is not valid JSON: {exc}") from None
    if validate:
        _check("request", body)
    return body


def query_args(validate: bool = True) -> dict:
    """Query parameters (first value each), validated against ``<op>.query`` when that schema exists."""
    args = request.args.to_dict()
    if validate:
        _check("query", args)
    return args


def _check(part: str, instance) -> None:
    op = operation()
    if not op:
        return
    sandbox = current_sandbox()
    provider, name = op.split(".", 1)
    sid = schema_id(provider, f"{name}.{part}")
    if sandbox.schemas.has(sid):
        errors = sandbox.schemas.errors(sid, instance)
        g.setdefault("verdict", {})[part] = "ok" if not errors else [e["pointer"] + ": " + e["message"] for e in errors[:5]]
        if errors:
            raise ValidationFailed(errors)


def json_response(result, status: int = 200):
    """A view result: dicts go through Flask's JSON provider; str is JSON text already (sent as is)."""
    if isinstance(result, str):
        return Response(result, status=status, mimetype="application/json")
    return result, status


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def basic_credentials() -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return (user, password) if sep else (None, None)


# --- app-level hooks ---------------------------------------------------------------------------------
def _provider_for_path(path: str):
    sandbox = current_sandbox()
    for spec in sorted(sandbox.providers.values(), key=lambda s: -len(s.prefix)):
        if path == spec.prefix or path.startswith(spec.prefix + "/"):
            return spec
    return None


def render_error(err: SandboxError) -> Response:
    spec = current_sandbox().providers.get(g.get("provider")) or _provider_for_path(request.path)
    if spec is None:
        body, status = {"error": {"status": err.status, "kind": err.kind, "message": err.message}}, err.status
    else:
        body, status = spec.render_error(err, operation())
    response = Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                        mimetype="application/json")
    return response


_HTTP_ERRORS = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge, 415: UnsupportedMediaType}


def init_http(app: Flask) -> None:
    """Register JSON error handlers (routing 404/405 included), the version header and the journal."""

    @app.errorhandler(SandboxError)
    def _sandbox_error(err):
        return render_error(err)

    @app.errorhandler(HTTPException)
    def _http_error(exc):
        cls = _HTTP_ERRORS.get(exc.code, BadRequest)
        # routing errors keep each class's default text, so a provider renders its own wording for them
        message = None if exc.code in (404, 405) else {413: "Request body exceeds the 1 MB limit"}.get(
            exc.code, exc.description)
        return render_error(cls(message, status=exc.code if exc.code and exc.code < 500 else None))

    @app.errorhandler(Exception)
    def _unexpected(exc):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(InternalError())

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        g.memo_token = memo.begin()

    @app.teardown_request
    def _end(exc=None):
        token = g.pop("memo_token", None)
        if token is not None:
            memo.end(token)

    @app.after_request
    def _finish(response: Response):
        response.headers["X-Sandbox-Version"] = VERSION
        response.headers["X-Sandbox-Worker"] = str(os.getpid())  # which process answered (workers share state)
        sandbox = current_sandbox()
        op = g.get("operation")
        if op and sandbox.config.get("DEBUG_VALIDATE_RESPONSES") and response.mimetype == "application/json":
            _validate_response(sandbox, op, response)
        if sandbox.journal.enabled and not request.path.startswith("/_sandbox") and request.path != "/favicon.ico":
            _journal(sandbox, op, response)
        return response


def _validate_response(sandbox, op: str, response: Response) -> None:
    provider, name = op.split(".", 1)
    sid = schema_id(provider, f"{name}.response" if response.status_code < 400 else "error")
    if not sandbox.schemas.has(sid):
        return
    errors = sandbox.schemas.errors(sid, json.loads(response.get_data()))
    g.setdefault("verdict", {})["response"] = "ok" if not errors else [e["pointer"] + ": " + e["message"] for e in errors[:5]]
    if errors:
        response.headers["X-Sandbox-Response-Invalid"] = errors[0]["pointer"] + " " + errors[0]["message"][:200]
        log.error("response of %s violates %s: %s", op, sid, errors[0])


def _journal(sandbox, op: str | None, response: Response) -> None:
    try:
        tenant = g.get("tenant") or ANONYMOUS
        body = None if response.direct_passthrough or response.is_streamed else response.get_data()
        entry = sandbox.journal.entry(
            at=isoformat(sandbox.clock.now(tenant)), provider=g.get("provider"), operation=op,
            method=request.method, path=request.path, query=request.query_string.decode("latin-1"),
            status=response.status_code, duration_ms=(time.perf_counter() - g.get("started", time.perf_counter())) * 1000,
            req_headers=dict(request.headers), req_body=request.get_data(cache=True) if 0 < (request.content_length or 0) <= (request.max_content_length or 1 << 20) else b"",
            req_type=request.mimetype, resp_body=body, resp_type=response.mimetype,
            verdict=g.get("verdict", {}))
        sandbox.journal.record(tenant, entry)
    except Exception:  # the journal must never break a response
        log.exception("journal write failed")
