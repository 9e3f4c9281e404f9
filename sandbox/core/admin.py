"""Control API under /_sandbox: health, reset, seed, clock, jobs, clients, journal, scenarios.

Like moto's /moto-api and Stripe's test clocks: everything a test needs to steer the sandbox, over plain HTTP.
Errors here use one neutral envelope: {"error": {"status", "kind", "message"}}. ``guard`` runs before every call
(this blueprint's and admin_flows.py's): the admin token, cross-site refusal, JSON-only bodies.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import math
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, request

from .auth import DEFAULT_CLIENT_ID
from .clock import parse_instant
from .context import VERSION, current_sandbox
from .errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized, UnsupportedMediaType

bp = Blueprint("_sandbox", __name__, url_prefix="/_sandbox")

ADMIN_HEADER = "X-Sandbox-Admin-Token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# the sandbox clock moves within these years: datetime's own range ends at 9999, and a clock near it overflows
# every "now + ttl" (tokens, jobs, ledgers), so a clock move is refused well before that
CLOCK_MIN = datetime(1970, 1, 1, tzinfo=timezone.utc)
CLOCK_MAX = datetime(9001, 1, 1, tzinfo=timezone.utc)    # exclusive: the last instant of year 9000 is allowed
MAX_POLICY_SECONDS = 315_576_000                         # 10 years (of 365.25 days): "manual" is for "never"
MAX_POLICY_POLLS = 1_000_000


# --- guard: admin token, cross-site requests, JSON bodies --------------------------------------------------
def admin_token() -> str:
    """The configured admin token (``ADMIN_TOKEN`` / ``SANDBOX_ADMIN_TOKEN``); "" = the control API is open."""
    return str(current_sandbox().config.get("ADMIN_TOKEN") or "")


def admin_authorized() -> bool:
    """True when no token is configured, or the request presents it (Bearer or X-Sandbox-Admin-Token)."""
    token = admin_token()
    if not token:
        return True
    auth = request.headers.get("Authorization", "")
    presented = [auth[7:].strip() if auth[:7].lower() == "bearer " else "", request.headers.get(ADMIN_HEADER, "")]
    # constant-time compare of every candidate (no early exit that would tell which header was tried)
    matches = [hmac.compare_digest(p.encode("utf-8", "replace"), token.encode()) for p in presented]
    return any(matches)


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ip_literal(host: str | None) -> bool:
    try:
        ipaddress.ip_address((host or "").strip("[]"))
        return True
    except ValueError:
        return False


def _request_host() -> str | None:
    try:
        return urlsplit("//" + request.host).hostname
    except ValueError:
        return None


def _cross_site() -> str | None:
    """Why this request comes from another site (None: same site or not a browser).

    Browsers send ``Sec-Fetch-Site`` and, on every cross-origin POST, ``Origin``; curl and test clients send
    neither. Same site = the Origin's host is the request's host (any port), or both are loopback."""
    site = (request.headers.get("Sec-Fetch-Site") or "").lower()
    if site == "cross-site":
        return "Sec-Fetch-Site: cross-site"
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    try:
        origin_host = urlsplit(origin).hostname if origin != "null" else None
    except ValueError:
        origin_host = None
    host = _request_host()
    if origin_host and (origin_host == host or (_loopback(origin_host) and _loopback(host))):
        return None
    return f"Origin: {origin[:100]}"


def guard():
    """Before every control call: 401 without the admin token (health answers status and version only), 403 for
    a host name on an open control API (DNS rebinding) or a cross-site state change, 415 for a non-JSON body."""
    if not admin_authorized():
        if request.endpoint == "_sandbox.health":
            return None
        raise Unauthorized(f"the control API is locked: send 'Authorization: Bearer <admin token>' or "
                           f"'{ADMIN_HEADER}: <admin token>' (the token is set with SANDBOX_ADMIN_TOKEN)",
                           headers={"WWW-Authenticate": 'Bearer realm="sandbox-control"'})
    host = _request_host()
    if not admin_token() and not current_sandbox().config.get("INSECURE_OPEN_CONTROL_API") \
            and not (_loopback(host) or _ip_literal(host)):
        # a page on evil.example whose DNS name is re-pointed at 127.0.0.1 reaches a local sandbox with its own
        # Host header: an open control API answers loopback names and IP addresses only
        raise Forbidden(f"the control API without an admin token answers only loopback names and IP addresses, "
                        f"not Host {request.host[:100]!r}: set SANDBOX_ADMIN_TOKEN to reach it by a host name")
    if request.method not in _UNSAFE:
        return None
    why = _cross_site()
    if why:
        raise Forbidden(f"cross-site request refused ({why}): the control API only takes state changes from "
                        f"the same site or from non-browser clients")
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    mimetype = request.mimetype
    if (mimetype or has_body) and not (mimetype == "application/json" or mimetype.endswith("+json")):
        # an HTML form (urlencoded, multipart) or fetch(no-cors) (text/plain) can post cross-site without a
        # CORS preflight; application/json cannot
        raise UnsupportedMediaType(f"control API bodies must be sent as Content-Type: application/json, "
                                   f"not {mimetype or 'no Content-Type'!r}")
    return None


bp.before_request(guard)


# --- parsing ------------------------------------------------------------------------------------------------
def _body() -> dict:
    """The JSON object body ({} when empty); 400 for anything else or anything the store could not keep."""
    if not request.get_data():
        return {}
    try:
        body = json.loads(request.get_data())
        json.dumps(body, ensure_ascii=False).encode("utf-8")   # lone surrogates cannot be stored
    except (ValueError, RecursionError, UnicodeError):
        raise BadRequest("control API bodies are JSON objects (UTF-8, no lone surrogates, not nested deeply)"
                         ) from None
    if not isinstance(body, dict):
        raise BadRequest("control API bodies are JSON objects")
    return body


def _tenant(body: dict | None = None) -> str | None:
    value = (body or {}).get("tenant")
    if value is None or value == "":
        value = request.args.get("tenant") or None
    if value is not None and (not isinstance(value, str) or len(value) > 400):
        raise BadRequest("tenant must be a string")
    return value


def _own_tenant(body: dict | None = None) -> str | None:
    """A tenant a control call may write a clock or policy for: not one of the sandbox's own '_' namespaces."""
    tenant = _tenant(body)
    if tenant is not None and tenant.startswith("_"):
        raise BadRequest("tenant must not start with '_' (the sandbox's own namespaces)")
    return tenant


def _number(value, field: str, *, low: float, high: float) -> float:
    """A JSON number (not a bool, string or non-finite value) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{field} must be a number, not {json.dumps(value)[:40]}")
    if isinstance(value, int) and not low <= value <= high:
        raise BadRequest(f"{field} must be between {low:g} and {high:g}")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise BadRequest(f"{field} must be a finite number between {low:g} and {high:g}")
    return value


def _instant(value, field: str = "at") -> datetime:
    """An ISO-8601 instant within the clock's range (1970 to the end of 9000)."""
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be an ISO-8601 instant string, e.g. 2030-01-01T00:00:00Z")
    try:
        at = parse_instant(value)
    except (ValueError, OverflowError):
        raise BadRequest(f"{field} is not an ISO-8601 instant: {value[:60]!r}") from None
    return _in_range(at)


def _in_range(at: datetime) -> datetime:
    if not CLOCK_MIN <= at < CLOCK_MAX:
        raise BadRequest("the sandbox clock moves between 1970-01-01T00:00:00Z and the end of year 9000")
    return at


@bp.get("/health")
def health():
    sb = current_sandbox()
    sb.store.get("_sandbox", "config", "seed")  # touches the store: health fails if the store does
    if not admin_authorized():
        return {"status": "ok", "version": VERSION}   # liveness probes need no token, and learn nothing more
    return {"status": "ok", "version": VERSION, "store": type(sb.store).__name__, "seed": sb.seed.get(),
            "now": sb.clock.describe()["now"],
            "providers": {name: spec.prefix for name, spec in sorted(sb.providers.items())}}


@bp.post("/reset")
def reset():
    body = _body()
    current_sandbox().reset(_tenant(body))
    return {"reset": _tenant(body) or "all"}


@bp.route("/seed", methods=["GET", "POST", "PUT"])
def seed():
    sb = current_sandbox()
    if request.method != "GET":
        value = _body().get("seed")
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadRequest("seed must be an integer")
        sb.seed.set(value)
    return {"seed": sb.seed.get()}


@bp.get("/clock")
def clock_get():
    return current_sandbox().clock.describe(_tenant())


@bp.post("/clock/<action>")
def clock_action(action: str):
    body, sb = _body(), current_sandbox()
    clock = sb.clock
    tenant = _own_tenant(body)
    # every argument is checked (type, finiteness, 1970..9000) before anything moves
    if action == "freeze":
        at = _instant(body["at"]) if body.get("at") is not None else None
        result = clock.freeze(tenant, at)
    elif action == "unfreeze":
        result = clock.unfreeze(tenant)
    elif action == "advance":
        span = (CLOCK_MAX - CLOCK_MIN).total_seconds()
        seconds = body.get("seconds")
        seconds = 0.0 if seconds is None else _number(seconds, "seconds", low=-span, high=span)
        try:
            target = clock.now(tenant) + timedelta(seconds=seconds)
        except OverflowError:
            target = CLOCK_MAX   # past datetime's own range: out of the clock's too
        result = clock.set(_in_range(target), tenant)
    elif action == "set":
        if body.get("at") is None:
            raise BadRequest("set needs at: an ISO-8601 instant, e.g. 2030-01-01T00:00:00Z")
        result = clock.set(_instant(body["at"]), tenant)
    elif action == "reset":
        result = clock.reset(tenant)
    else:
        raise NotFound(f"unknown clock action {action!r} (freeze, unfreeze, advance, set, reset)")
    sb.tick()  # time moved: due transitions, their hooks and due webhook retries happen now
    return result


@bp.post("/tick")
def tick():
    """Run what the background ticker does, now: due job transitions and webhook deliveries."""
    return current_sandbox().tick()


@bp.get("/webhooks")
def webhooks_list():
    sb = current_sandbox()
    tenant = _tenant() or "sandbox-client"
    return {"tenant": tenant, "deliveries": sb.webhooks.list(tenant, request.args.get("provider"))}


@bp.get("/webhooks/<hook_id>")
def webhook_get(hook_id: str):
    return current_sandbox().webhooks.get(_tenant() or "sandbox-client", hook_id)


@bp.post("/webhooks/<hook_id>/redeliver")
def webhook_redeliver(hook_id: str):
    body = _body()
    return current_sandbox().webhooks.redeliver(_tenant(body) or "sandbox-client", hook_id)


@bp.route("/webhooks/subscriptions", methods=["GET", "POST"])
def webhook_subscriptions():
    """A tenant's webhook subscriptions to one provider's events: list them (GET ?provider=&tenant=), or add one
    (POST {provider, tenant?, url, events?: ["*"], method?, secret?, auth?, headers?}). Stands in for a provider's
    dashboard setting (Open Finance's organisation webhook, open_finance.md s.9); deliveries go through the outbox."""
    sb = current_sandbox()
    body = _body() if request.method == "POST" else {}
    provider = body.get("provider") if request.method == "POST" else request.args.get("provider")
    if provider not in sb.providers:
        raise BadRequest(f"provider must be one of {sorted(sb.providers)}")
    tenant = _own_tenant(body) or "sandbox-client"
    if request.method == "GET":
        return {"tenant": tenant, "subscriptions": sb.webhooks.subscriptions(tenant, provider)}
    url = body.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise BadRequest("url must be the subscriber's absolute http(s) URL")
    extra = {k: body[k] for k in ("method", "secret", "auth", "headers") if body.get(k) is not None}
    created = sb.webhooks.subscribe(tenant, provider, url=body["url"], events=body.get("events") or ["*"], **extra)
    return jsonify(created), 201


@bp.delete("/webhooks/subscriptions/<provider>/<sub_id>")
def webhook_unsubscribe(provider: str, sub_id: str):
    sb = current_sandbox()
    if provider not in sb.providers:
        raise NotFound(f"unknown provider {provider!r}")
    sb.webhooks.unsubscribe(_own_tenant() or "sandbox-client", provider, sub_id)
    return "", 204


@bp.post("/webhooks/fire")
def webhook_fire():
    """Fire a provider event on demand: {"provider", "tenant"?, ...provider-specific fields}."""
    body = _body()
    sb = current_sandbox()
    spec = sb.providers.get(body.get("provider"))
    if spec is None or not spec.decl.fire_webhook:
        raise BadRequest(f"provider must be one of {sorted(n for n, s in sb.providers.items() if s.decl.fire_webhook)}")
    tenant = _tenant(body) or "sandbox-client"
    deliveries = spec.fire_webhook(tenant, body)
    # firing on demand is synchronous: the answer shows each delivery's first attempt
    deliveries = sb.webhooks.deliver(tenant, [d["id"] for d in deliveries])
    return jsonify({"deliveries": deliveries}), 201


def _policy(body: dict) -> dict:
    """A checked job policy: mode, and for auto seconds (0..10 years) and/or polls (0..1,000,000)."""
    mode = body.get("mode", "auto")
    if mode not in ("auto", "instant", "manual"):
        raise BadRequest("mode must be one of auto, instant, manual")
    policy = {"mode": mode}
    if mode == "auto":
        seconds, polls = body.get("seconds"), body.get("polls")
        if seconds is not None:
            policy["seconds"] = _number(seconds, "seconds", low=0, high=MAX_POLICY_SECONDS)
        if polls is not None:
            if isinstance(polls, bool) or not isinstance(polls, int) or not 0 <= polls <= MAX_POLICY_POLLS:
                raise BadRequest(f"polls must be an integer between 0 and {MAX_POLICY_POLLS:,}")
            policy["polls"] = polls
        if seconds is None and not polls:
            raise BadRequest("an auto policy needs seconds and/or polls")
    return policy


def _kind(body: dict) -> str:
    kind = body.get("kind")
    if kind is None:
        kind = request.args.get("kind") or "*"
    if not isinstance(kind, str) or not kind or "|" in kind or len(kind) > 200:
        raise BadRequest("kind must be a job kind name (a non-empty string without '|')")
    return kind


@bp.route("/jobs/policy", methods=["GET", "PUT", "POST", "DELETE"])
def job_policy():
    jobs = current_sandbox().jobs
    body = _body() if request.method != "GET" else {}
    kind = _kind(body)
    tenant = _own_tenant(body) if request.method != "GET" else _tenant()
    if request.method == "DELETE":
        jobs.clear_policy(kind, tenant)
    elif request.method != "GET":
        try:
            jobs.set_policy(_policy(body), kind, tenant)
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRequest(str(exc)) from None
    return {"kind": kind, "tenant": tenant, "policy": jobs.policy(tenant or "_sandbox", kind)}


@bp.get("/jobs")
def jobs_list():
    sb = current_sandbox()
    tenants = [_tenant()] if _tenant() else [t for t in sb.store.tenants() if not t.startswith("_")]
    return {"jobs": [dict(job, tenant=t) for t in tenants for job in sb.jobs.list(t, request.args.get("kind"))]}


def _job_tenant(job_id: str, tenant: str | None) -> str:
    sb = current_sandbox()
    for t in [tenant] if tenant else sb.store.tenants():
        if sb.jobs.peek(t, job_id):
            return t
    raise NotFound(f"job {job_id} not found")


@bp.get("/jobs/<job_id>")
def job_get(job_id: str):
    tenant = _job_tenant(job_id, _tenant())
    return dict(current_sandbox().jobs.get(tenant, job_id), tenant=tenant)


@bp.post("/jobs/<job_id>/<action>")
def job_action(job_id: str, action: str):
    body, jobs = _body(), current_sandbox().jobs
    tenant = _job_tenant(job_id, _tenant(body))
    if action == "advance":
        job = jobs.advance(tenant, job_id)
    elif action == "complete":
        job = jobs.complete(tenant, job_id)
    elif action == "fail":
        job = jobs.fail(tenant, job_id, body.get("message") or "Job failed by the sandbox control API")
    else:
        raise NotFound(f"unknown job action {action!r} (advance, complete, fail)")
    return dict(job, tenant=tenant)


def _client_view(client: dict) -> dict:
    """A client as lists show it: never its secret (only the POST that creates a client answers that, once)."""
    return {"client_id": client["client_id"], "tenant": client["tenant"], "scopes": client.get("scopes")}


def _check_new_client(auth, client_id: str | None, tenant: str | None) -> None:
    """409 unless the id is free and the tenant is new: no other client is bound to it and it holds no data.

    A shared CI sandbox: one job's client can neither replace another's (or the default client) nor attach to
    its tenant and read its data. A tenant is released, clean, when its client is deleted."""
    if client_id is not None and auth.client(client_id) is not None:
        raise Conflict(f"client {client_id} already exists: delete it first, or choose another client_id")
    wanted = tenant or client_id
    if wanted is None:
        return
    for other in auth.clients():
        if other["tenant"] == wanted or other["client_id"] == wanted:
            raise Conflict(f"tenant {wanted} belongs to client {other['client_id']}: a new client may only "
                           f"name a new tenant")
    held = [t for t in current_sandbox().store.tenants() if t == wanted or t.startswith(wanted + "/")]
    if held:
        raise Conflict(f"tenant {wanted} already holds data: reset it first (POST /_sandbox/reset "
                       f"{{\"tenant\": \"{wanted}\"}}), or choose another tenant")


@bp.route("/clients", methods=["GET", "POST"])
def clients():
    auth = current_sandbox().auth
    if request.method == "POST":
        body = _body()
        scopes = body.get("scopes")
        if scopes is not None and not (isinstance(scopes, dict) and all(
                isinstance(v, list) and all(isinstance(s, str) for s in v) for v in scopes.values())):
            raise BadRequest("scopes maps a provider name to a list of scope strings")
        for field in ("client_id", "tenant", "client_secret"):
            value = body.get(field)
            if value is not None and (not isinstance(value, str) or not value or len(value) > 200 or (
                    field != "client_secret" and ("/" in value or value.startswith("_")))):
                # "/" nests sub-tenants (core/dispatch.py) and "_" names the sandbox's own namespaces
                raise BadRequest(f"{field} must be a non-empty string" + (
                    " without '/' that does not start with '_'" if field != "client_secret" else ""))
        _check_new_client(auth, body.get("client_id"), body.get("tenant"))
        client = auth.create_client(body.get("client_id"), body.get("client_secret"), scopes, body.get("tenant"))
        secret = body.get("client_secret") or client.get("client_secret")
        return jsonify({**_client_view(client), "client_secret": secret}), 201
    return {"clients": [_client_view(c) for c in auth.clients()]}


@bp.delete("/clients/<client_id>")
def client_delete(client_id: str):
    """Delete a client; its tokens die, and its tenant's data is forgotten when no other client shares it."""
    sb = current_sandbox()
    if client_id == DEFAULT_CLIENT_ID:
        raise Conflict(f"{DEFAULT_CLIENT_ID} is the default client of every provider and cannot be deleted")
    client = sb.auth.client(client_id)
    if client is None or not sb.auth.delete_client(client_id):
        raise NotFound(f"client {client_id} not found")
    if not any(c["tenant"] == client["tenant"] for c in sb.auth.clients()):
        sb.reset(client["tenant"])   # released clean: the next client naming this tenant starts from nothing
    return "", 204


@bp.get("/journal")
def journal():
    sb = current_sandbox()
    tenant = _tenant() or "sandbox-client"
    raw = request.args.get("limit", "100")
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= 5000:
        raise BadRequest("limit must be an integer between 1 and 5000")
    limit = int(raw)
    return {"tenant": tenant, "entries": sb.journal.read(tenant, limit, request.args.get("operation"))}


@bp.get("/scenarios")
def scenarios():
    sb = current_sandbox()
    return {name: spec.scenarios for name, spec in sorted(sb.providers.items())}


@bp.get("/operations")
def operations():
    """Every served operation and page with its method, paths from the server root, aliases and overlay (from
    the catalogue and each provider's operations.py: the same table the dispatcher serves)."""
    sb = current_sandbox()
    out = {}
    for name, mounted in sorted(sb.providers.items()):
        routes = mounted.absolute_routes
        out[name] = {short: {"id": op.id, "kind": op.kind, "method": routes[short][0], "path": routes[short][1],
                             "aliases": routes[short][2], "auth": op.auth, "scope": op.scope, "body": op.body,
                             "headers": list(op.headers), "status": op.status, "statuses": list(op.statuses),
                             "tier": op.tier, "provenance": op.provenance}
                     for short, op in mounted.ops.items()}
    return out
