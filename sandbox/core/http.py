"""App-level HTTP plumbing shared by every provider: error rendering in the provider's envelope (routing 404/405
and unexpected exceptions included), the per-request memo, the version headers and the journal hook.
Routes, parsing and validation are the dispatcher's (core/dispatch.py).
"""
from __future__ import annotations

import json
import logging
import os
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from .clock import isoformat
from . import memo
from .context import VERSION, current_sandbox
from .errors import (BadRequest, InternalError, MethodNotAllowed, NotFound, PayloadTooLarge, SandboxError,
                     UnsupportedMediaType)
from .validation import schema_id

log = logging.getLogger("sandbox")
ANONYMOUS = "_anonymous"


# --- app-level hooks ---------------------------------------------------------------------------------
def _provider_for_path(path: str):
    sandbox = current_sandbox()
    mounts = sorted(((p, m) for m in sandbox.providers.values() for p in {m.prefix, m.pages_prefix}),
                    key=lambda pm: -len(pm[0]))
    for prefix, mounted in mounts:
        if path == prefix or path.startswith(prefix + "/"):
            return mounted
    return None


def render_error(err: SandboxError) -> Response:
    spec = current_sandbox().providers.get(g.get("provider")) or _provider_for_path(request.path)
    if spec is None:
        body, status = {"error": {"status": err.status, "kind": err.kind, "message": err.message}}, err.status
    else:
        body, status = spec.render_error(err, g.get("op"))
    response = Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                        mimetype="application/json")
    response.headers.update(getattr(err, "headers", None) or {})
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
