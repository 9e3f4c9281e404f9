"""Control API under /_sandbox: health, reset, seed, clock, jobs, clients, journal, scenarios.

Like moto's /moto-api and Stripe's test clocks: everything a test needs to steer the sandbox, over plain HTTP.
Errors here use one neutral envelope: {"error": {"status", "kind", "message"}}.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from .clock import parse_instant
from .context import VERSION, current_sandbox
from .errors import BadRequest, NotFound

bp = Blueprint("_sandbox", __name__, url_prefix="/_sandbox")


def _body() -> dict:
    body = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(body, dict):
        raise BadRequest("control API bodies are JSON objects")
    return body


def _tenant(body: dict | None = None) -> str | None:
    return (body or {}).get("tenant") or request.args.get("tenant") or None


@bp.get("/health")
def health():
    sb = current_sandbox()
    sb.store.get("_sandbox", "config", "seed")  # touches the store: health fails if the store does
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
    body, clock = _body(), current_sandbox().clock
    tenant = _tenant(body)
    try:
        if action == "freeze":
            result = clock.freeze(tenant, parse_instant(body["at"]) if body.get("at") else None)
        elif action == "unfreeze":
            result = clock.unfreeze(tenant)
        elif action == "advance":
            result = clock.advance(float(body.get("seconds", 0)), tenant)
        elif action == "set":
            result = clock.set(parse_instant(body["at"]), tenant)
        elif action == "reset":
            result = clock.reset(tenant)
        else:
            raise NotFound(f"unknown clock action {action!r} (freeze, unfreeze, advance, set, reset)")
    except (KeyError, ValueError, TypeError) as exc:
        raise BadRequest(f"bad clock request: {exc}") from None
    current_sandbox().tick()  # time moved: due transitions, their hooks and due webhook retries happen now
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


@bp.route("/jobs/policy", methods=["GET", "PUT", "POST", "DELETE"])
def job_policy():
    jobs = current_sandbox().jobs
    body = _body() if request.method != "GET" else {}
    kind = body.get("kind") or request.args.get("kind") or "*"
    tenant = _tenant(body)
    if request.method == "DELETE":
        jobs.clear_policy(kind, tenant)
    elif request.method != "GET":
        try:
            jobs.set_policy(body, kind, tenant)
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


@bp.route("/clients", methods=["GET", "POST"])
def clients():
    auth = current_sandbox().auth
    if request.method == "POST":
        body = _body()
        scopes = body.get("scopes")
        if scopes is not None and not (isinstance(scopes, dict) and all(isinstance(v, list) for v in scopes.values())):
            raise BadRequest("scopes maps a provider name to a list of scope strings")
        for field in ("client_id", "tenant"):
            value = body.get(field)
            if value is not None and (not isinstance(value, str) or not value or "/" in value
                                      or value.startswith("_") or len(value) > 200):
                # "/" nests sub-tenants (core/dispatch.py) and "_" names the sandbox's own namespaces
                raise BadRequest(f"{field} must be a non-empty string without '/' that does not start with '_'")
        client = auth.create_client(body.get("client_id"), body.get("client_secret"), scopes, body.get("tenant"))
        return jsonify(client), 201
    return {"clients": auth.clients()}


@bp.delete("/clients/<client_id>")
def client_delete(client_id: str):
    if not current_sandbox().auth.delete_client(client_id):
        raise NotFound(f"client {client_id} not found")
    return "", 204


@bp.get("/journal")
def journal():
    sb = current_sandbox()
    tenant = _tenant() or "sandbox-client"
    try:
        limit = min(int(request.args.get("limit", 100)), 5000)
    except ValueError:
        raise BadRequest("limit must be an integer") from None
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
