"""Control API for hosted flows under /_sandbox/flows: list, inspect, and complete a pending flow.

``POST /_sandbox/flows/<id>/complete`` ends a flow with a chosen outcome and answers the redirect URL the user
would have reached, so a test can skip the hosted pages (as Plaid's sandbox lets tests skip Link). Errors use the
control API's neutral envelope (admin.py).
"""
from __future__ import annotations

from flask import Blueprint, request

from .admin import _body, _tenant, guard
from .context import current_sandbox
from .errors import BadRequest
from .flows import OUTCOMES

bp = Blueprint("_sandbox_flows", __name__, url_prefix="/_sandbox")
bp.before_request(guard)   # the admin token, cross-site refusal and JSON bodies of every control call


def _view(flows, tenant: str, flow: dict) -> dict:
    """The flow record as the control API shows it: with its tenant and effective status (EXPIRED)."""
    return {**flow, "tenant": tenant, "status": flows.status(tenant, flow)}


@bp.get("/flows")
def flows_list():
    """Flows of one tenant (or all), optionally one provider's, optionally with one (effective) status."""
    sb = current_sandbox()
    flows = sb.flows
    provider, status = request.args.get("provider") or None, request.args.get("status") or None
    tenant = _tenant()
    tenants = [tenant] if tenant else [t for t in sb.store.tenants() if not t.startswith("_")]
    providers = [provider] if provider else flows.providers()
    found = [_view(flows, t, f) for t in tenants for p in providers for f in flows.list(t, p)]
    if status:
        found = [f for f in found if f["status"] == status.upper()]
    found.sort(key=lambda f: (f["created_at"], f["tenant"], f["id"]))
    return {"flows": found}


@bp.get("/flows/<flow_id>")
def flow_get(flow_id: str):
    flows = current_sandbox().flows
    tenant, flow = flows.find(flow_id, _tenant(), request.args.get("provider") or None)
    return _view(flows, tenant, flow)


@bp.post("/flows/<flow_id>/complete")
def flow_complete(flow_id: str):
    """{"tenant"?, "provider"?, "outcome": "success"|"cancel"|"error", ...options} -> {flow_id, status, redirect_url}.

    Options are the definition's (finleap success: username, bank_id, accounts; error: reason)."""
    body = _body()
    outcome = body.get("outcome")
    if outcome not in OUTCOMES:
        raise BadRequest(f"outcome must be one of {', '.join(OUTCOMES)}")
    if body.get("provider") is not None and not isinstance(body["provider"], str):
        raise BadRequest("provider must be a provider name")
    options = {k: v for k, v in body.items() if k not in ("tenant", "provider", "outcome")}
    flows = current_sandbox().flows
    tenant, flow, url = flows.complete(flow_id, outcome, options, _tenant(body), body.get("provider") or None)
    return {"flow_id": flow["id"], "tenant": tenant, "status": flow["status"], "redirect_url": url}
