"""App-level HTTP plumbing shared by every provider: error rendering in the provider's envelope (routing 404/405
and unexpected exceptions included), the per-request memo, the version headers and the journal hook.
Routes, parsing and validation are the dispatcher's (core/dispatch.py).

Before any route runs, every request is screened (issue 7, "no 500, no unbounded work"): a body over
``MAX_CONTENT_LENGTH`` is a 413 whether its length is declared or chunked, and a chunked body is never read past
the limit; a lone surrogate in the path, query or a header, or a control-API JSON body nested too deeply, is a 400.
"""
from __future__ import annotations

import io
import json
import logging
import os
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from .clock import isoformat
from . import fastjson, memo
from .context import VERSION, current_sandbox
from .errors import (BadRequest, InternalError, MethodNotAllowed, NotFound, PayloadTooLarge, SandboxError,
                     UnsupportedMediaType)
from .validation import MAX_JSON_DEPTH, has_lone_surrogate, json_depth_exceeds, lone_surrogate_at, printable, schema_id

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
    response = Response(fastjson.dumpb(body), status=status,
                        mimetype="application/json")
    response.headers.update(getattr(err, "headers", None) or {})
    return response


_HTTP_ERRORS = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge, 415: UnsupportedMediaType}
_TOO_LARGE, _BAD_TEXT = "sandbox.body_too_large", "sandbox.lone_surrogate_in"
_SCREENED_ENVIRON = ("PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "SCRIPT_NAME")
_TOO_LARGE_TEXT = "Request body exceeds the size limit"


def screen_environ(wsgi_app, limit_of):
    """WSGI middleware in front of Flask: reads a chunked body up to ``limit_of()`` + 1 bytes
    and no further, so werkzeug's silent truncation at the limit becomes a 413; replaces lone surrogates in the
    path, query and headers (no HTTP server produces them, an embedding can) with escapes so routing and
    rendering work, and marks both for ``_screen`` to answer in the provider's envelope."""

    def app(environ, start_response):
        for key in [k for k in environ if k in _SCREENED_ENVIRON or k.startswith("HTTP_")]:
            value = environ[key]
            if isinstance(value, str) and has_lone_surrogate(value):
                environ[key] = printable(value)
                environ.setdefault(_BAD_TEXT, "path" if key == "PATH_INFO" else
                                   "query" if key == "QUERY_STRING" else "headers")
        # RFC 9112 s.6.3: with Transfer-Encoding chunked any Content-Length is ignored
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            limit, stream, buffer = limit_of(), environ["wsgi.input"], bytearray()
            while len(buffer) <= limit:
                piece = stream.read(min(64 * 1024, limit + 1 - len(buffer)))
                if not piece:
                    break
                buffer += piece
            if len(buffer) > limit:
                environ[_TOO_LARGE], buffer = True, bytearray()
            # hand Flask an ordinary sized body: werkzeug reads it whole, parses forms, journals it
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(bytes(buffer)), str(len(buffer))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        return wsgi_app(environ, start_response)

    return app


def _screen() -> None:
    """Refuse what must never reach a handler (see the module docstring); runs before every route."""
    from .dispatch import name_operation

    name_operation()   # errors below render in the operation's own envelope
    environ = request.environ
    if environ.get(_TOO_LARGE) or (request.content_length or 0) > (request.max_content_length or float("inf")):
        raise PayloadTooLarge(_TOO_LARGE_TEXT)
    if environ.get(_BAD_TEXT):
        part = environ[_BAD_TEXT]
        raise BadRequest(f"The request {part} must not contain a lone UTF-16 surrogate", kind="lone_surrogate",
                         details={part: ["Must not contain a lone surrogate."]})
    if g.get("op") is None and request.content_length and (request.mimetype or "").endswith("json"):
        raw = request.get_data(cache=True)   # control API and unrouted paths; operations parse in dispatch
        if json_depth_exceeds(raw):
            raise BadRequest(f"Request body nests deeper than {MAX_JSON_DEPTH} levels", kind="malformed_body")
        try:
            bad = lone_surrogate_at(json.loads(raw))
        except (ValueError, RecursionError):
            return   # malformed JSON: the route's own parser answers it
        if bad is not None:
            raise BadRequest(f"Request body has a lone UTF-16 surrogate at {bad or '/'}", kind="lone_surrogate")


def init_http(app: Flask) -> None:
    """Register JSON error handlers (routing 404/405 included), the request screen, the version header and the
    journal."""
    app.wsgi_app = screen_environ(app.wsgi_app, lambda: app.config.get("MAX_CONTENT_LENGTH") or (1 << 20))

    @app.errorhandler(SandboxError)
    def _sandbox_error(err):
        return render_error(err)

    @app.errorhandler(HTTPException)
    def _http_error(exc):
        cls = _HTTP_ERRORS.get(exc.code, BadRequest)
        # routing errors keep each class's default text, so a provider renders its own wording for them
        message = None if exc.code in (404, 405) else {413: _TOO_LARGE_TEXT}.get(exc.code, exc.description)
        # RFC 9110 s.15.5.6: a 405 names the allowed methods (and s.10.2.1: any response may, e.g. Express's 404)
        allowed = getattr(exc, "valid_methods", None) if exc.code == 405 else None
        headers = {"Allow": ", ".join(sorted(allowed))} if allowed else None
        return render_error(cls(message, status=exc.code if exc.code and exc.code < 500 else None, headers=headers))

    @app.errorhandler(Exception)
    def _unexpected(exc):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(InternalError())

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        g.memo_token = memo.begin()
        _screen()

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
