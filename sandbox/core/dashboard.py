"""The dashboard under /_sandbox/ui: the sandbox's state as server-rendered HTML pages with plain form posts.

It shows what the control API serves (clock, seed, clients, jobs and runs, hosted flows, the journal, webhook
deliveries, magic values) and its buttons call the same service objects (``sandbox.clock``, ``sandbox.jobs``,
``sandbox.flows``, ``sandbox.webhooks``), through the control API's own argument checks (admin.py). It is guarded
like the control API: the admin token (a login form sets an HttpOnly, SameSite=Strict cookie; ``Authorization:
Bearer`` works too), loopback-only when open, no cross-site state changes, and a CSRF token in every form.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from datetime import timedelta

from flask import Blueprint, g, make_response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from . import admin
from .auth import _TOKENS as TOKENS_COLLECTION
from .clock import _COLL as CLOCK_COLLECTION
from .clock import GLOBAL
from .context import VERSION, current_sandbox
from .errors import BadRequest, Forbidden, NotFound, SandboxError, Unauthorized
from .flows import OUTCOMES, PENDING
from .flows import collection as flow_collection
from .jobs import _JOBS as JOBS_COLLECTION
from .jobs import Jobs
from .journal import _COLL as JOURNAL_COLLECTION
from .journal import redact
from .webhooks import _HOOKS as WEBHOOKS_COLLECTION

log = logging.getLogger("sandbox.dashboard")

bp = Blueprint("_sandbox_ui", __name__, url_prefix="/_sandbox/ui", template_folder="templates")

SESSION_COOKIE = "sandbox_ui_session"
CSRF_COOKIE = "sandbox_ui_csrf"
CSRF_FIELD = "csrf"
COOKIE_PATH = "/_sandbox/ui"
PAGE_SIZE = 20            # collection items per page
JOURNAL_PAGE = 50         # journal entries per page
_SCAN = 200               # store rows read per round when filtering the journal
_NONCE = re.compile(r"[0-9a-f]{32}")
_PUBLIC_ENDPOINTS = frozenset({"_sandbox_ui.login"})
# No script at all, no framing, forms only to this origin: an injected tag in a journal body could not run even
# if escaping ever failed (it does not: Jinja autoescapes every .html template).
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")


# --- protection -------------------------------------------------------------------------------------------------
def _mac(label: str, value: str) -> str:
    """HMAC-SHA256 under the store's secret key (root, no tenant epoch: a full reset keeps the login)."""
    key = current_sandbox().secret.root()
    return hmac.new(key, f"dashboard.{label}\x1f{value}".encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def _session_value() -> str:
    """The login cookie's value: a MAC of the admin token (changing the token logs everybody out)."""
    return _mac("session", admin.admin_token())


def _cookie_authorized() -> bool:
    presented = request.cookies.get(SESSION_COOKIE, "")
    return bool(presented) and hmac.compare_digest(presented.encode("utf-8", "replace"), _session_value().encode())


def _nonce() -> str:
    """This browser's CSRF nonce (a random cookie, set on the first page); forms carry a MAC of it."""
    if "ui_nonce" not in g:
        found = request.cookies.get(CSRF_COOKIE, "")
        g.ui_nonce = found if _NONCE.fullmatch(found) else secrets.token_hex(16)
        g.ui_new_nonce = not _NONCE.fullmatch(found)
    return g.ui_nonce


def csrf_token() -> str:
    """The token every dashboard form posts back: a MAC of the browser's nonce cookie (double submit, signed)."""
    return _mac("csrf", _nonce())


def _check_csrf() -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get(CSRF_FIELD, "")
    if not _NONCE.fullmatch(cookie) or not hmac.compare_digest(sent.encode("utf-8", "replace"),
                                                           _mac("csrf", cookie).encode()):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page and try again")


@bp.before_request
def _guard():
    """Before every dashboard request: the control API's host rule, then the admin token (header or login
    cookie), then for POSTs the control API's cross-site check and this form's CSRF token."""
    host = admin._request_host()
    if not admin.admin_token() and not current_sandbox().config.get("INSECURE_OPEN_CONTROL_API") \
            and not (admin._loopback(host) or admin._ip_literal(host)):
        raise Forbidden(f"the dashboard without an admin token answers only loopback names and IP addresses, "
                        f"not Host {request.host[:100]!r}: set SANDBOX_ADMIN_TOKEN to reach it by a host name")
    if request.endpoint not in _PUBLIC_ENDPOINTS and not (admin.admin_authorized() or _cookie_authorized()):
        raise Unauthorized("the dashboard is locked: log in with the admin token")
    if request.method == "POST":
        why = admin._cross_site()
        if why:
            raise Forbidden(f"cross-site request refused ({why}): dashboard actions only come from its own pages")
        _check_csrf()
    return None


@bp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    if g.get("ui_new_nonce"):
        response.set_cookie(CSRF_COOKIE, g.ui_nonce, path=COOKIE_PATH, httponly=True, samesite="Strict",
                            secure=request.is_secure)
    return response


@bp.context_processor
def _context():
    sb = current_sandbox()
    # helpers for the dashboard's templates only (not app-wide globals that a provider's pages could meet)
    return {"version": VERSION, "locked": bool(admin.admin_token()), "cookie_login": _cookie_authorized(),
            "csrf_field": CSRF_FIELD, "here": _here(), "store_kind": type(sb.store).__name__,
            "csrf_token": csrf_token, "pretty": _pretty, "verdict_of": _verdict}


def _page(template: str, code: int = 200, **values):
    return make_response(render_template(f"dashboard/{template}", **values), code)


@bp.errorhandler(SandboxError)
def _sandbox_error(err: SandboxError):
    if isinstance(err, Unauthorized):
        nxt = _safe_back(_here() if request.method == "GET" else None)   # after login, back to this page
        response = _page("login.html", 401, message=err.message, next=nxt)
        response.headers["WWW-Authenticate"] = 'Bearer realm="sandbox-control"'
        return response
    return _page("error.html", err.status, status=err.status, message=err.message)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    status = exc.code or 400
    return _page("error.html", status, status=status, message=exc.description or exc.name)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.exception("dashboard error on %s %s", request.method, request.path)
    return _page("error.html", 500, status=500, message="internal error (logged by the server)")


# --- small helpers --------------------------------------------------------------------------------------------
def _here() -> str:
    """The current page as a path with its query (the target the action forms return to)."""
    return request.full_path.rstrip("?") if request.query_string else request.path


def _safe_back(value: str | None) -> str:
    """A dashboard path to return to; anything else (another site, another path) falls back to the overview."""
    value = value or ""
    if value.endswith("?"):
        value = value[:-1]
    inside = value == COOKIE_PATH or value.startswith((COOKIE_PATH + "/", COOKIE_PATH + "?"))
    if inside and "//" not in value and "\\" not in value and not re.search(r"[\x00-\x20]",
                                                                                                   value):
        return value
    return url_for("_sandbox_ui.overview")


def _back():
    return redirect(_safe_back(request.form.get("back")), code=303)


def _arg(name: str, source=None, *, limit: int = 400) -> str | None:
    value = (source if source is not None else request.args).get(name) or None
    if value is not None and len(value) > limit:
        raise BadRequest(f"{name} is too long")
    return value


def _pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def _tenants() -> list[str]:
    """Every tenant: each client's, and any that holds data (sub-tenants included), not the sandbox's own."""
    sb = current_sandbox()
    found = {c["tenant"] for c in sb.auth.clients()}
    found.update(t for t in sb.store.tenants() if not t.startswith("_"))
    return sorted(found)


def _tenant_arg(name: str = "tenant", *, required: bool = True, source=None, extra: tuple = ()) -> str | None:
    """A tenant named in the query (or form): 404 when the sandbox does not know it."""
    tenant = _arg(name, source)
    if tenant is None:
        if required:
            raise NotFound("no tenant named: pick one on the overview")
        return None
    if tenant not in _tenants() and tenant not in extra:
        raise NotFound(f"tenant {tenant} not found")
    return tenant


def collections(store, tenant: str) -> list[tuple[str, int]]:
    """(collection, item count) of one tenant's store namespace, sorted by name (``Store.collections``)."""
    return sorted(store.collections(tenant))


def _own_clock(sb, tenant: str) -> bool:
    """True when the tenant runs on a test clock of its own (else it follows the global clock)."""
    return sb.store.get(GLOBAL, CLOCK_COLLECTION, tenant) is not None


def _flow_count(sb, tenant: str) -> int:
    return sum(sb.store.count(tenant, flow_collection(p)) for p in sb.flows.providers())


def _users(sb, tenant: str, jobs: list[dict]) -> list[dict]:
    """The tenant's end users: subjects of its tokens (per provider) and owners of its jobs."""
    users: dict[str, dict] = {}

    def user(subject: str) -> dict:
        return users.setdefault(subject, {"subject": subject, "providers": set(), "tokens": 0, "jobs": 0})

    for _, record in sb.store.list(GLOBAL, TOKENS_COLLECTION):
        if record.get("tenant") == tenant and record.get("subject"):
            found = user(str(record["subject"]))
            found["providers"].add(record.get("provider") or "?")
            found["tokens"] += 1
    for job in jobs:
        if job.get("owner"):
            user(str(job["owner"]))["jobs"] += 1
    return [dict(u, providers=sorted(u["providers"])) for _, u in sorted(users.items())]


def _verdict(entry: dict) -> dict:
    """"valid", "invalid" (with each part's errors) or "not validated" (no schema, or refused before parsing)."""
    parts = entry.get("verdict") or {}
    problems = {part: value for part, value in parts.items() if value != "ok"}
    if problems:
        errors = [f"{part}: {e}" for part, value in problems.items()
                  for e in (value if isinstance(value, list) else [value])]
        return {"label": "invalid", "errors": errors}
    return {"label": "valid" if parts else "not validated", "errors": []}


# --- pages -------------------------------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form: a right admin token sets the session cookie; without a configured token there is none."""
    nxt = _safe_back(request.values.get("next"))
    if not admin.admin_token():
        return redirect(nxt, code=303)
    if request.method == "GET":
        if admin.admin_authorized() or _cookie_authorized():
            return redirect(nxt, code=303)
        return _page("login.html", 200, message=None, next=nxt)
    token = request.form.get("token", "")
    if not hmac.compare_digest(token.encode("utf-8", "replace"), admin.admin_token().encode()):
        return _page("login.html", 401, message="wrong admin token", next=nxt)
    response = redirect(nxt, code=303)
    response.set_cookie(SESSION_COOKIE, _session_value(), path=COOKIE_PATH, httponly=True, samesite="Strict",
                        secure=request.is_secure)
    return response


@bp.post("/logout")
def logout():
    response = redirect(url_for("_sandbox_ui.login"), code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")
    return response


@bp.get("/")
def overview():
    sb = current_sandbox()
    providers = [{"name": name, "title": getattr(m.decl, "title", name), "prefix": m.prefix,
                  "pages_prefix": m.pages_prefix, "operations": sum(op.kind == "operation" for op in m.ops.values()),
                  "pages": sum(op.kind == "page" for op in m.ops.values())}
                 for name, m in sorted(sb.providers.items())]
    clients = {}
    for client in sb.auth.clients():
        clients.setdefault(client["tenant"], []).append(admin._client_view(client))
    tenants = []
    for tenant in _tenants():
        colls = collections(sb.store, tenant)
        tenants.append({"name": tenant, "clients": clients.get(tenant, []), "collections": len(colls),
                        "item_count": sum(n for _, n in colls), "jobs": sb.store.count(tenant, JOBS_COLLECTION),
                        "flows": _flow_count(sb, tenant), "journal": sb.store.count(tenant, JOURNAL_COLLECTION),
                        "webhooks": sb.store.count(tenant, WEBHOOKS_COLLECTION),
                        "own_clock": _own_clock(sb, tenant)})
    return _page("overview.html", providers=providers, clock=sb.clock.describe(), seed=sb.seed.get(),
                 tenants=tenants)


@bp.get("/tenant")
def tenant_page():
    sb = current_sandbox()
    tenant = _tenant_arg("name")
    jobs = sorted(sb.jobs.list(tenant), key=lambda j: (j["created_at"], j["id"]), reverse=True)
    for job in jobs:
        job["final"] = Jobs.is_final(job)
    flows = []
    for provider in sb.flows.providers():
        for flow in sb.flows.list(tenant, provider):
            flows.append({**flow, "effective": sb.flows.status(tenant, flow)})
    flows.sort(key=lambda f: (f["created_at"], f["id"]), reverse=True)
    nested = [t for t in _tenants() if t.startswith(tenant + "/")]
    clients = [admin._client_view(c) for c in sb.auth.clients() if c["tenant"] == tenant]
    return _page("tenant.html", tenant=tenant, clients=clients, clock=sb.clock.describe(tenant),
                 own_clock=_own_clock(sb, tenant), jobs=jobs, flows=flows,
                 outcomes=OUTCOMES, pending=PENDING, users=_users(sb, tenant, jobs),
                 collections=collections(sb.store, tenant), nested=nested)


@bp.get("/collection")
def collection_page():
    sb = current_sandbox()
    tenant = _tenant_arg()
    name = _arg("name")
    counts = dict(collections(sb.store, tenant))
    if name is None or name not in counts:
        raise NotFound(f"collection {name} not found in tenant {tenant}")
    after = _arg("after", limit=2000)
    rows, cursor = sb.store.page(tenant, name, after=after, limit=PAGE_SIZE)
    # values of secret-named keys are hidden as in the journal: the page is for reading state, not credentials
    items = [{"key": key, "value": redact(value)} for key, value in rows]
    return _page("collection.html", tenant=tenant, name=name, total=counts[name], items=items, cursor=cursor,
                 after=after)


def _journal_tenants(sb) -> list[str]:
    anonymous = [t for t in sb.store.tenants() if t == "_anonymous"]
    return _tenants() + anonymous


def _journal_page(sb, tenants: list[str], provider: str | None, operation: str | None, after: str | None,
                  limit: int) -> tuple[list[dict], str | None]:
    """Newest-first journal entries of ``tenants`` matching the filters, older than the key ``after``; the keys
    (write time, process, sequence) order entries across tenants, so one cursor pages them all."""
    found = []
    for tenant in tenants:
        matched, cursor = [], after
        while len(matched) <= limit:
            rows, cursor = sb.store.page(tenant, JOURNAL_COLLECTION, after=cursor, limit=_SCAN, reverse=True)
            matched += [(key, tenant, entry) for key, entry in rows
                        if (provider is None or entry.get("provider") == provider)
                        and (operation is None or entry.get("operation") == operation)]
            if cursor is None:
                break
        found += matched[:limit + 1]
    found.sort(key=lambda row: row[0], reverse=True)
    page = found[:limit]
    more = len(found) > limit
    return [{"id": key, "tenant": tenant, **entry} for key, tenant, entry in page], (page[-1][0] if more else None)


@bp.get("/journal")
def journal_page():
    sb = current_sandbox()
    known = _journal_tenants(sb)
    tenant = _tenant_arg(required=False, extra=tuple(known))
    provider, operation = _arg("provider"), _arg("operation")
    if provider is not None and provider not in sb.providers:
        raise NotFound(f"provider {provider} not found")
    after = _arg("after", limit=200)
    entries, cursor = _journal_page(sb, [tenant] if tenant else known, provider, operation, after, JOURNAL_PAGE)
    operations = sorted(op.id for m in sb.providers.values() for op in m.ops.values()
                        if provider is None or op.provider == provider)
    return _page("journal.html", entries=entries, cursor=cursor, after=after, tenant=tenant, provider=provider,
                 operation=operation, tenants=known, providers=sorted(sb.providers), operations=operations)


@bp.get("/journal/entry")
def journal_entry():
    sb = current_sandbox()
    tenant = _tenant_arg(extra=tuple(_journal_tenants(sb)))
    entry_id = _arg("id", limit=200)
    entry = sb.store.get(tenant, JOURNAL_COLLECTION, entry_id) if entry_id else None
    if entry is None:
        raise NotFound(f"journal entry {entry_id} not found in tenant {tenant}")
    return _page("entry.html", tenant=tenant, entry_id=entry_id, entry=entry)


@bp.get("/webhooks")
def webhooks_page():
    sb = current_sandbox()
    tenant = _tenant_arg(required=False)
    provider = _arg("provider")
    if provider is not None and provider not in sb.providers:
        raise NotFound(f"provider {provider} not found")
    deliveries = [dict(d, tenant=t) for t in ([tenant] if tenant else _tenants())
                  for d in sb.webhooks.list(t, provider)]
    deliveries.sort(key=lambda d: (d["created_at"], d.get("seq", 0)), reverse=True)
    return _page("webhooks.html", deliveries=deliveries, tenant=tenant, provider=provider, tenants=_tenants(),
                 providers=sorted(sb.providers))


@bp.get("/webhooks/<hook_id>")
def webhook_page(hook_id: str):
    sb = current_sandbox()
    tenant = _tenant_arg()
    return _page("webhook.html", tenant=tenant, delivery=sb.webhooks.get(tenant, hook_id))


@bp.get("/scenarios")
def scenarios_page():
    sb = current_sandbox()
    tables = []
    for name, mounted in sorted(sb.providers.items()):
        rows = list(mounted.scenarios or [])
        columns: list[str] = []
        for row in rows:
            columns += [k for k in (row if isinstance(row, dict) else {}) if k not in columns]
        tables.append({"provider": name, "prefix": mounted.prefix, "columns": columns,
                       "rows": [row if isinstance(row, dict) else {"value": row} for row in rows]})
    return _page("scenarios.html", tables=tables)


# --- actions (form posts; each returns to the page it came from) ----------------------------------------------
def _seconds(raw: str | None) -> float:
    try:
        value = float((raw or "").strip())
    except ValueError:
        raise BadRequest(f"seconds must be a number, not {(raw or '')[:40]!r}") from None
    span = (admin.CLOCK_MAX - admin.CLOCK_MIN).total_seconds()
    return admin._number(value, "seconds", low=-span, high=span)


@bp.post("/clock")
def clock_action():
    """Move the global clock, or a tenant's own clock: the control API's clock actions with its checks."""
    sb = current_sandbox()
    form = request.form
    tenant = _tenant_arg(required=False, source=form)
    if tenant is not None and tenant.startswith("_"):
        raise BadRequest("tenant must not start with '_' (the sandbox's own namespaces)")
    action, clock = form.get("action"), sb.clock
    if action == "advance":
        seconds = _seconds(form.get("seconds"))
        try:
            target = clock.now(tenant) + timedelta(seconds=seconds)
        except OverflowError:
            target = admin.CLOCK_MAX
        clock.set(admin._in_range(target), tenant)
    elif action == "freeze":
        clock.freeze(tenant, admin._instant(form["at"].strip()) if (form.get("at") or "").strip() else None)
    elif action == "unfreeze":
        clock.unfreeze(tenant)
    elif action == "set":
        if not (form.get("at") or "").strip():
            raise BadRequest("set needs an ISO-8601 instant, e.g. 2030-01-01T00:00:00Z")
        clock.set(admin._instant(form["at"].strip()), tenant)
    elif action == "reset":
        clock.reset(tenant)
    else:
        raise BadRequest("action must be one of advance, freeze, unfreeze, set, reset")
    sb.tick()   # as the control API does: time moved, due transitions and webhook retries happen now
    return _back()


@bp.post("/jobs/<job_id>/<action>")
def job_action(job_id: str, action: str):
    """Tick (one step), complete or fail a job or run, as ``POST /_sandbox/jobs/<id>/<action>`` does."""
    jobs = current_sandbox().jobs
    tenant = admin._job_tenant(job_id, _tenant_arg(required=False, source=request.form))
    if action == "advance":
        jobs.advance(tenant, job_id)
    elif action == "complete":
        jobs.complete(tenant, job_id)
    elif action == "fail":
        message = (request.form.get("message") or "").strip()[:500]
        jobs.fail(tenant, job_id, message or "Job failed by the sandbox dashboard")
    else:
        raise NotFound(f"unknown job action {action!r} (advance, complete, fail)")
    return _back()


@bp.post("/flows/<flow_id>/complete")
def flow_complete(flow_id: str):
    """End a pending hosted flow with success, cancel or error (the defaults of ``POST /_sandbox/flows/<id>/
    complete``)."""
    outcome = request.form.get("outcome")
    if outcome not in OUTCOMES:
        raise BadRequest(f"outcome must be one of {', '.join(OUTCOMES)}")
    tenant = _tenant_arg(required=False, source=request.form)
    current_sandbox().flows.complete(flow_id, outcome, {}, tenant)
    return _back()


@bp.post("/webhooks/<hook_id>/redeliver")
def webhook_redeliver(hook_id: str):
    """Send a delivery again now (a new attempt is logged), as ``POST /_sandbox/webhooks/<id>/redeliver``."""
    tenant = _tenant_arg(source=request.form)
    current_sandbox().webhooks.redeliver(tenant, hook_id)
    return _back()


@bp.route("/<path:rest>", methods=["GET", "POST"])
def unknown(rest: str):
    raise NotFound(f"no dashboard page /_sandbox/ui/{rest[:100]}")
