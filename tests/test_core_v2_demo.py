"""Issue 6 "Done when": a provider operation is added by a catalogue entry, an overlay line, schemas and a service
method -- nothing else. This file adds a whole fake provider "demo" that way, entirely inside the test (a catalogue
section, ``schemas/demo/*.json``, a ``Provider`` and a service class), and uses it to exercise every core v2
feature no real provider uses yet: header-pair auth and client scopes, form-only and multipart bodies, required
headers, nested tenants (finoOS ``TenantID``), per-user scopes, the three pagination renderers, runs (404 / 202
until ready), rate limits on the sandbox clock, webhooks v2 (subscriber's method and secret, delivered outside the
request, control API refused), a hosted flow on a separate pages prefix, the OpenAPI document and the operations list.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from html import escape
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

import sandbox.providers as providers_module
from sandbox import create_app
from sandbox.core import context as context_module
from sandbox.core.errors import ValidationFailed
from sandbox.core.flows import FlowDefinition, Next
from sandbox.core.operations import Op, Provider
from sandbox.core.paging import FINO_METADATA, finleap_page, fino_page, open_finance_page
from sandbox.core.schemes import HeaderPair
from sandbox.core.store import MemoryStore
from sandbox.core.validation import SCHEMA_DIR, SchemaRegistry, schema_id
from sandbox.core.webhooks import verify_signature
from sandbox.spec import CATALOGUE

from .conftest import WALL, FakeWall

# --- 1. the catalogue entries (what a real provider writes in sandbox/spec/catalogue.yaml) ----------------------------
_OPS = [  # short name, method, path, statuses
    ("whoami", "GET", "/whoami", [200, 401]),
    ("read_scoped", "GET", "/scoped", [200, 401, 403]),
    ("submit_form", "POST", "/forms", [201, 400, 401, 415]),
    ("upload_document", "POST", "/documents", [201, 400, 401, 415]),
    ("get_ip", "GET", "/ip", [200, 400, 401]),
    ("create_item", "POST", "/items", [201, 400, 401]),
    ("list_items", "GET", "/items", [200, 400, 401]),
    ("list_items_pages", "GET", "/items/pages", [200, 400, 401]),
    ("list_items_offset", "GET", "/items/offset", [200, 400, 401]),
    ("set_user_scopes", "PUT", "/users/{user_id}/scopes", [200, 400, 401]),
    ("get_user_profile", "GET", "/users/{user_id}/profile", [200, 401, 403, 404]),
    ("start_analysis", "POST", "/analyses/{subject}", [201, 401]),
    ("get_analysis_results", "GET", "/analyses/{subject}/results", [200, 401, 404]),
    ("get_analysis_ready", "GET", "/analyses/{subject}/ready", [200, 202, 401, 404]),
    ("trigger_sync", "POST", "/syncs", [201, 401, 429]),
    ("create_subscription", "POST", "/subscriptions", [201, 400, 401]),
    ("publish_event", "POST", "/events", [200, 400, 401]),
    ("create_link", "POST", "/links", [201, 400, 401]),
    ("get_link", "GET", "/links/{link_id}", [200, 401, 404]),
]
DEMO_SECTION = {
    "title": "Demo provider (exists only inside tests/test_core_v2_demo.py)",
    "sandbox_prefix": "/demo/api",
    "pages_prefix": "/demo",
    "operations": [{"id": f"demo.{name}", "method": method, "path": path, "statuses": statuses, "tier": "test",
                    "provenance": "inferred", "summary": f"demo {name}"} for name, method, path, statuses in _OPS],
    "pages": [{"id": "demo.consent", "method": "GET", "path": "/consent/", "provenance": "inferred",
               "summary": "two-step consent page (login, approve)"}],
}

# --- 2. the schemas (schemas/demo/<operation>.<part>.json) ------------------------------------------------------------
_STR = {"type": "string"}
_ITEM = {"type": "object", "required": ["id", "name", "value", "tenant"], "additionalProperties": False,
         "properties": {"id": _STR, "name": _STR, "value": {"type": "integer"}, "tenant": _STR}}
_RESULTS = {"type": "object", "required": ["subject", "score", "correlationId"], "additionalProperties": False,
            "properties": {"subject": _STR, "score": {"type": "integer"}, "correlationId": _STR}}


def _obj(required, properties, extra=False):
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": extra}


SCHEMAS = {
    "error": _obj(["demoError"], {"demoError": _obj(["code", "message"], {
        "code": _STR, "message": _STR, "fields": {"type": "array", "items": _STR}, "details": {"type": "object"}})}),
    "whoami.response": _obj(["client", "tenant", "self", "page"],
                            {"client": _STR, "tenant": _STR, "self": _STR, "page": _STR}),
    "read_scoped.response": _obj(["secret"], {"secret": _STR}),
    "submit_form.request": _obj(["name"], {"name": {"type": "string", "minLength": 1},
                                           "amount": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{2})?$"}}),
    "submit_form.response": _obj(["name", "amount"], {"name": _STR, "amount": _STR}),
    "upload_document.request": _obj(["title"], {"title": {"type": "string", "minLength": 1}, "note": _STR}),
    "upload_document.response": _obj(["title", "files"], {"title": _STR, "note": _STR, "files": {
        "type": "array", "items": _obj(["field", "filename", "size", "sha256"], {
            "field": _STR, "filename": _STR, "size": {"type": "integer"}, "sha256": _STR})}}),
    "get_ip.headers": {"type": "object", "properties": {"user-ip": {"type": "string", "format": "ipv4"}}},
    "get_ip.response": _obj(["ip"], {"ip": _STR}),
    "create_item.request": _obj(["name"], {"name": {"type": "string", "minLength": 1}, "value": {"type": "integer"}}),
    "create_item.response": _ITEM,
    "list_items.response": _obj(["nextPage", "items"], {"nextPage": {"type": ["string", "null"]},
                                                        "items": {"type": "array", "items": _ITEM}}),
    "list_items_pages.response": _obj(["items", "metaData"], {"items": {"type": "array", "items": _ITEM},
                                                              "metaData": {"type": "object"}}),
    "list_items_offset.response": _obj(["items"], {"items": {"type": "array", "items": _ITEM}}),
    "set_user_scopes.request": _obj(["scopes"], {"scopes": {"type": "array", "items": _STR}}),
    "set_user_scopes.response": _obj(["user_id", "scopes"], {"user_id": _STR, "scopes": {"type": "array"}}),
    "get_user_profile.response": _obj(["user_id", "name"], {"user_id": _STR, "name": _STR}),
    "start_analysis.response": _obj(["correlationId", "status"], {"correlationId": _STR, "status": _STR}),
    "get_analysis_results.response": _RESULTS,
    # 200 with the results, or 202 with the pending body the error renderer gives Accepted
    "get_analysis_ready.response": {"oneOf": [_RESULTS, _obj(["status", "correlationId"], {
        "status": {"const": "running"}, "correlationId": _STR})]},
    "trigger_sync.response": _obj(["remaining"], {"remaining": {"type": "integer"}}),
    "create_subscription.request": _obj(["url"], {"url": _STR, "method": _STR, "secret": _STR,
                                                  "events": {"type": "array", "items": _STR}}),
    "create_subscription.response": _obj(["id", "url", "method", "events"], {
        "id": _STR, "url": _STR, "method": _STR, "events": {"type": "array"}}),
    "publish_event.request": _obj(["event"], {"event": _STR, "data": {"type": "object"}}),
    "publish_event.response": _obj(["queued"], {"queued": {"type": "integer"}}),
    "create_link.request": _obj(["redirect_uri"], {"redirect_uri": {"type": "string", "format": "uri"},
                                                   "state": _STR}),
    "create_link.response": _obj(["id", "location", "href"], {"id": _STR, "location": _STR, "href": _STR}),
    "get_link.response": _obj(["id", "status", "redirect_url"], {"id": _STR, "status": _STR,
                                                                 "redirect_url": {"type": ["string", "null"]}}),
}

# --- 3. the service (providers/demo/service.py) -----------------------------------------------------------------------
RUN_KIND = "demo.analysis"
PURPOSE = "demo.consent"
USER_SCOPE = "profile:read"
SYNCS_PER_DAY = 4


def expected_score(subject: str) -> int:
    """What the demo analysis computes, written independently of the service for the assertions."""
    return sum(map(ord, subject)) % 97


class ConsentFlow(FlowDefinition):
    """login (username ``demo`` / password ``1234``) -> approve -> redirect with code and state."""

    def render(self, ctx, tenant, flow, error):
        return (f"<!doctype html><form method=post><input type=hidden name=flow_id value={escape(flow['id'])}>"
                f"<input type=hidden name=step value={flow['step']}><p id=step>{flow['step']}</p>"
                f"<p id=error>{error or ''}</p></form>")

    def _code(self, tenant):
        return "code-" + self.flows.ids.uuid4(tenant, "demo.code")

    def step_login(self, tenant, flow, form):
        if (form.get("username"), form.get("password")) == ("demo", "1234"):
            return Next.goto("approve")
        return Next.finish("error", reason="login") if self.attempt(flow, "login") else Next.stay("bad_login")

    def step_approve(self, tenant, flow, form):
        return Next.finish("success", code=self._code(tenant)) if form.get("approve") == "yes" else Next.stay()

    def succeed(self, tenant, flow, options):
        return {"code": self._code(tenant)}


class DemoService:
    """One method per served operation, named like its catalogue id."""

    def __init__(self, sandbox):
        self.sb = sandbox
        sandbox.runs.register(RUN_KIND, ["RUNNING", "DONE"], done_state="DONE", compute=self._analyse,
                              statuses={"RUNNING": "running", "DONE": "done", "FAILED": "failed"})
        sandbox.flows.register("demo", "consent", ConsentFlow(sandbox.flows))

    # auth, bodies, headers
    def whoami(self, ctx):
        return {"client": ctx.client["client_id"], "tenant": ctx.tenant, "self": ctx.url_for("whoami"),
                "page": ctx.url_for("consent", token="t")}

    def read_scoped(self, ctx):
        return {"secret": "only with items:read"}

    def submit_form(self, ctx):
        amount = Decimal(ctx.body.get("amount", "0"))   # money is Decimal, rendered as a string
        return {"name": ctx.body["name"], "amount": str(amount + Decimal("0.00"))}

    def upload_document(self, ctx):
        files = [{"field": field, "filename": f.filename, "size": len(data := f.read()),
                  "sha256": hashlib.sha256(data).hexdigest()} for field, fs in ctx.files.items() for f in fs]
        return {**ctx.body, "files": files}

    def get_ip(self, ctx):
        return {"ip": ctx.request.headers["User-IP"]}

    # nested tenants and collections
    def _items(self, ctx):
        # the dispatcher has already entered the TenantID sub-tenant (Provider.tenant_header)
        return ctx.sandbox.collection(ctx.tenant, "demo.items")

    def create_item(self, ctx):
        return self._items(ctx).create({"name": ctx.body["name"], "value": ctx.body.get("value", 0),
                                        "tenant": ctx.tenant})

    def list_items(self, ctx):
        return open_finance_page(self._items(ctx), ctx.query, default_limit=100, max_limit=50)

    def list_items_pages(self, ctx):
        return fino_page(self._items(ctx), ctx.query, FINO_METADATA, items_key="items")

    def list_items_offset(self, ctx):
        return finleap_page(self._items(ctx), ctx.query, items_key="items")

    # per-user scopes
    def set_user_scopes(self, ctx, user_id):
        users = ctx.sandbox.collection(ctx.tenant, "demo.users")
        return users.put(user_id, {"user_id": user_id, "scopes": ctx.body["scopes"]})

    def get_user_profile(self, ctx, user_id):
        user = ctx.sandbox.collection(ctx.tenant, "demo.users").load(user_id, "User not found")
        ctx.user, ctx.user_scopes = user_id, set(user["scopes"])
        ctx.require_user_scope(USER_SCOPE)
        return {"user_id": user_id, "name": f"User {user_id}"}

    # runs and rate limits
    def _analyse(self, tenant, subject, run):
        return {"subject": subject, "score": sum(map(ord, subject)) % 97, "correlationId": run["id"]}

    def start_analysis(self, ctx, subject):
        run = ctx.sandbox.runs.start(ctx.tenant, RUN_KIND, subject)
        return {"correlationId": run["id"], "status": run["status"]}

    def get_analysis_results(self, ctx, subject):
        return ctx.sandbox.runs.results(ctx.tenant, RUN_KIND, subject)

    def get_analysis_ready(self, ctx, subject):
        return ctx.sandbox.runs.results(ctx.tenant, RUN_KIND, subject, while_running="accepted")

    def trigger_sync(self, ctx):
        return {"remaining": ctx.sandbox.limits.hit(ctx.tenant, "demo.sync", limit=SYNCS_PER_DAY, window="day")}

    # webhooks
    def create_subscription(self, ctx):
        body = ctx.body
        sub = ctx.sandbox.webhooks.subscribe(ctx.tenant, "demo", url=body["url"], events=body.get("events", ["*"]),
                                             method=body.get("method", "POST"), secret=body.get("secret"))
        return {k: sub[k] for k in ("id", "url", "method", "events")}

    def publish_event(self, ctx):
        body = ctx.body
        queued = ctx.sandbox.webhooks.publish(ctx.tenant, "demo", body["event"],
                                              {"event": body["event"], "data": body.get("data", {})})
        return {"queued": len(queued)}

    # hosted flow
    def create_link(self, ctx):
        flow, token = ctx.sandbox.flows.create(ctx.tenant, "demo", "consent", redirect_uri=ctx.body["redirect_uri"],
                                               state=ctx.body.get("state"), data={}, ttl=900, first_step="login",
                                               purpose=PURPOSE)
        return {"id": flow["id"], "location": ctx.url_for("consent", token=token),
                "href": ctx.url_for("get_link", link_id=flow["id"])}

    def get_link(self, ctx, link_id):
        flows = ctx.sandbox.flows
        flow = flows.get(ctx.tenant, "demo", link_id)
        return {"id": flow["id"], "status": flows.status(ctx.tenant, flow), "redirect_url": flow["redirect_url"]}


def consent_page(ctx):
    return ctx.sandbox.flows.serve(ctx, PURPOSE, token=ctx.request.args.get("token"),
                                   error_page=lambda reason: f"<p id=error>{reason}</p>")


def render_error(err, op=None):
    """The demo envelope {"demoError": {code, message, fields?, details?}}; a 2xx 'error' (Accepted) is the
    provider's own pending body instead."""
    if err.status < 300:
        return {"status": err.details.get("status"), "correlationId": err.details.get("correlation_id")}, err.status
    body = {"code": err.kind.upper(), "message": err.message}
    if isinstance(err, ValidationFailed):
        body["fields"] = [e["pointer"] for e in err.errors]
    elif err.details:
        body["details"] = err.details
    return {"demoError": body}, err.status


# --- 4. the overlay (providers/demo/operations.py) --------------------------------------------------------------------
DECL = Provider(
    name="demo",
    title="Demo",
    service=DemoService,
    render_error=render_error,
    schemes={"key": HeaderPair("x-api-key", "x-api-secret", "Invalid API key or secret")},
    tenant_header="TenantID",
    default=Op(auth="key"),
    operations={
        "whoami": Op(),
        "read_scoped": Op(scope="items:read"),
        "submit_form": Op(body="form"),
        "upload_document": Op(body="multipart"),
        "get_ip": Op(headers=("User-IP",)),
        "create_item": Op(body="json"),
        "list_items": Op(),
        "list_items_pages": Op(),
        "list_items_offset": Op(),
        "set_user_scopes": Op(body="json"),
        "get_user_profile": Op(),
        "start_analysis": Op(),
        "get_analysis_results": Op(),
        "get_analysis_ready": Op(),
        "trigger_sync": Op(),
        "create_subscription": Op(body="json"),
        "publish_event": Op(body="json"),
        "create_link": Op(body="json"),
        "get_link": Op(),
    },
    pages={"consent": consent_page},
)

KEY = {"x-api-key": "sandbox-client", "x-api-secret": "sandbox-secret"}
BASE = "/demo/api"


# --- wiring -----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    """The tmp catalogue (vendored + demo section) and schema registry (schemas/ + schemas/demo), built once."""
    root = tmp_path_factory.mktemp("demo")
    doc = yaml.safe_load(CATALOGUE.read_text())
    assert "demo" not in doc["providers"]   # the demo exists only here
    doc["providers"]["demo"] = DEMO_SECTION
    catalogue = root / "catalogue.yaml"
    catalogue.write_text(yaml.safe_dump(doc, sort_keys=False))
    schemas = root / "schemas"
    shutil.copytree(SCHEMA_DIR, schemas)
    (schemas / "demo").mkdir()
    for name, schema in SCHEMAS.items():
        full = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id("demo", name), **schema}
        (schemas / "demo" / f"{name}.json").write_text(json.dumps(full, indent=2))
    return catalogue, SchemaRegistry(schemas)


@pytest.fixture
def sent():
    """Every webhook delivery the sandbox attempts (a recording sender, no network)."""
    return []


@pytest.fixture
def demo(demo_files, monkeypatch, sent):
    catalogue, registry = demo_files
    monkeypatch.setattr(providers_module, "PROVIDERS", [*providers_module.PROVIDERS, DECL])
    monkeypatch.setattr(context_module, "_SCHEMAS", registry)

    def sender(method, url, body, headers, timeout):
        sent.append({"method": method, "url": url, "body": body, "headers": headers})
        return 200, None

    wall = FakeWall()
    # every response is validated against its schema (a 2xx against <op>.response, an error against error.json)
    app = create_app({"CATALOGUE": str(catalogue), "SEED": 3, "DEBUG_VALIDATE_RESPONSES": True}, store=MemoryStore(),
                     system_clock=wall, webhook_sender=sender)
    return app


@pytest.fixture
def client(demo):
    return demo.test_client()


def call(client, method, path, *, key=KEY, headers=None, **kw):
    """A demo API call; every answer must match its schema (the sandbox checks, see the fixture)."""
    response = client.open(BASE + path, method=method, headers={**(key or {}), **(headers or {})}, **kw)
    assert "X-Sandbox-Response-Invalid" not in response.headers, (path, response.headers["X-Sandbox-Response-Invalid"])
    return response


def advance(client, seconds):
    r = client.post("/_sandbox/clock/advance", json={"seconds": seconds})
    assert r.status_code == 200, r.json


def demo_error(response, status, code=None):
    """Assert ``response`` is a demo-envelope error with ``status`` (and ``code``); returns the inner body."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.json["demoError"]
    assert set(response.json) == {"demoError"}
    if code:
        assert body["code"] == code, body
    return body


# --- the claim itself -------------------------------------------------------------------------------------------------
def test_the_demo_provider_is_served_from_the_four_pieces_only(demo):
    """Every catalogue entry became a route answering under /demo/api, the page under /demo; no provider package
    or schema folder named demo exists outside this file."""
    assert not (Path(providers_module.__file__).parent / "demo").exists() and not (SCHEMA_DIR / "demo").exists()
    rules: dict[str, set] = {}
    for rule in demo.url_map.iter_rules():
        rules.setdefault(rule.rule, set()).update(rule.methods)
    for _, method, path, _ in _OPS:
        rule = BASE + path.replace("{", "<").replace("}", ">")
        assert method in rules[rule], rule
    assert "GET" in rules["/demo/consent/"] and "POST" in rules["/demo/consent/"]
    assert "/demo/api/consent/" not in rules and "/demo/whoami" not in rules
    assert demo.extensions["sandbox"].providers["demo"].prefix == BASE


# --- 1. header-pair auth and client scopes ----------------------------------------------------------------------------
def test_header_pair_auth_names_are_case_insensitive_and_the_secret_is_checked(client):
    r = call(client, "GET", "/whoami", key={"X-API-KEY": "sandbox-client", "X-Api-Secret": "sandbox-secret"})
    assert r.status_code == 200 and r.json["client"] == "sandbox-client" and r.json["tenant"] == "sandbox-client"
    assert call(client, "GET", "/whoami", key={"x-api-key": "sandbox-client", "x-api-secret": "sandbox-secreT"}
                ).status_code == 401
    body = demo_error(call(client, "GET", "/whoami", key={"x-api-key": "sandbox-client"}), 401, "UNAUTHORIZED")
    assert body["message"] == "Invalid API key or secret"
    demo_error(call(client, "GET", "/whoami", key={"x-api-secret": "sandbox-secret"}), 401)
    demo_error(call(client, "GET", "/whoami", key={"x-api-key": "nobody", "x-api-secret": "sandbox-secret"}), 401)
    # the secret in the Authorization header does not count: only the two headers are read
    basic = "Basic " + base64.b64encode(b"sandbox-client:sandbox-secret").decode()
    demo_error(call(client, "GET", "/whoami", key=None, headers={"Authorization": basic}), 401)


def test_a_client_with_a_reduced_scope_list_gets_403_on_a_scoped_operation(client):
    def new(client_id, scopes):
        r = client.post("/_sandbox/clients", json={"client_id": client_id, "client_secret": f"{client_id}-s",
                                                   "scopes": scopes})
        assert r.status_code == 201
        return {"x-api-key": client_id, "x-api-secret": f"{client_id}-s"}

    narrow = new("narrow", {"demo": ["items:write"]})
    reader = new("reader", {"demo": ["items:read"]})
    elsewhere = new("elsewhere", {"finleap": []})   # restricted elsewhere: every demo scope
    demo_error(call(client, "GET", "/scoped", key=narrow), 403, "FORBIDDEN")
    assert call(client, "GET", "/whoami", key=narrow).json["tenant"] == "narrow"   # unscoped ops still work
    assert call(client, "GET", "/scoped", key=reader).status_code == 200
    assert call(client, "GET", "/scoped", key=elsewhere).status_code == 200
    assert call(client, "GET", "/scoped").status_code == 200   # the default client has every scope


# --- 2. form-only body ------------------------------------------------------------------------------------------------
def test_a_form_only_operation_refuses_json_and_validates_the_form(client):
    body = demo_error(call(client, "POST", "/forms", json={"name": "Dana"}), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/x-www-form-urlencoded" in body["message"]
    r = call(client, "POST", "/forms", data={"name": "Dana", "amount": "12.5"})   # two decimals or none
    assert demo_error(r, 400, "VALIDATION")["fields"] == ["/amount"]
    assert demo_error(call(client, "POST", "/forms", data={"amount": "12.50"}), 400)["fields"] == ["/name"]
    assert demo_error(call(client, "POST", "/forms", data={"name": "D", "x": "1"}), 400)["fields"] == ["/x"]
    demo_error(call(client, "POST", "/forms"), 400, "VALIDATION")   # no body at all is no object
    r = call(client, "POST", "/forms", data={"name": "Dana", "amount": "12.50"})
    assert (r.status_code, r.json) == (201, {"name": "Dana", "amount": "12.50"})


# --- 3. multipart upload ----------------------------------------------------------------------------------------------
def test_a_multipart_upload_reaches_ctx_files_and_its_fields_are_validated(client):
    content = b"%PDF-1.4 demo payslip\n" * 40
    r = call(client, "POST", "/documents", content_type="multipart/form-data",
             data={"title": "Payslip", "file": (io.BytesIO(content), "payslip.pdf", "application/pdf")})
    assert r.status_code == 201, r.json
    assert r.json == {"title": "Payslip", "files": [{"field": "file", "filename": "payslip.pdf", "size": len(content),
                                                     "sha256": hashlib.sha256(content).hexdigest()}]}
    r = call(client, "POST", "/documents", content_type="multipart/form-data",
             data={"note": "no title", "file": (io.BytesIO(b"x"), "a.txt")})
    assert demo_error(r, 400, "VALIDATION")["fields"] == ["/title"]
    demo_error(call(client, "POST", "/documents", json={"title": "Payslip"}), 415, "UNSUPPORTED_MEDIA_TYPE")
    demo_error(call(client, "POST", "/documents", data={"title": "Payslip"}), 415)   # urlencoded is not multipart


# --- 4. a required header ---------------------------------------------------------------------------------------------
def test_a_required_header_is_named_when_missing_and_validated_when_present(client):
    body = demo_error(call(client, "GET", "/ip"), 400, "MISSING_HEADER")
    assert "User-IP" in body["message"] and body["details"] == {"header": "User-IP"}
    demo_error(call(client, "GET", "/ip", headers={"User-IP": ""}), 400, "MISSING_HEADER")
    assert demo_error(call(client, "GET", "/ip", headers={"User-IP": "not-an-ip"}), 400, "VALIDATION"
                      )["fields"] == ["/user-ip"]
    r = call(client, "GET", "/ip", headers={"user-ip": "203.0.113.7"})
    assert (r.status_code, r.json) == (200, {"ip": "203.0.113.7"})
    demo_error(call(client, "GET", "/ip", key={}, headers={"User-IP": "203.0.113.7"}), 401)   # auth comes first


# --- 5. nested tenants ------------------------------------------------------------------------------------------------
def _names(client, tenant_id=None, key=KEY):
    r = call(client, "GET", "/items", key=key, headers={} if tenant_id is None else {"TenantID": tenant_id})
    assert r.status_code == 200, r.json
    return sorted(item["name"] for item in r.json["items"])


def _create(client, name, tenant_id=None, key=KEY):
    r = call(client, "POST", "/items", key=key, json={"name": name},
             headers={} if tenant_id is None else {"TenantID": tenant_id})
    assert r.status_code == 201, r.json
    return r.json


def test_items_created_under_one_tenant_id_are_invisible_elsewhere(client, demo):
    made = _create(client, "in-a", "a")
    assert made["tenant"] == "sandbox-client/a"
    _create(client, "in-b", "b")
    _create(client, "at-top")
    assert _names(client, "a") == ["in-a"]
    assert _names(client, "b") == ["in-b"]
    assert _names(client) == ["at-top"]
    assert _names(client, "A") == [] and _names(client, "a ") == []


@pytest.mark.parametrize("sneaky", ["a/b", "a%2Fb", "a%252Fb", "../b", "b/..", "a/../b", "%2e%2e%2Fb", "/b", "b/"])
def test_a_tenant_id_with_slashes_or_escapes_reaches_no_other_sub_tenant(client, demo, sneaky):
    for name in ("a", "b", "a/b", "a%2Fb"):
        if name != sneaky:
            _create(client, f"item of {name}", name)
    _create(client, "sneaky", sneaky)
    assert _names(client, sneaky) == ["sneaky"]
    for name in ("a", "b", "a/b", "a%2Fb"):
        if name != sneaky:
            assert _names(client, name) == [f"item of {name}"], name
    assert _names(client) == []
    # every sub-tenant is exactly one level below the client's tenant, whatever the header held
    nested = [t for t in demo.extensions["sandbox"].store.tenants() if t.startswith("sandbox-client/")]
    assert len(nested) == len({"a", "b", "a/b", "a%2Fb", sneaky}) and all(t.count("/") == 1 for t in nested)


def test_reset_of_a_client_tenant_clears_its_sub_tenants_and_nothing_else(client):
    r = client.post("/_sandbox/clients", json={"client_id": "sandbox-client-2", "client_secret": "s2"})
    assert r.status_code == 201
    other = {"x-api-key": "sandbox-client-2", "x-api-secret": "s2"}
    _create(client, "nested", "a")
    _create(client, "top")
    _create(client, "theirs", "a", key=other)
    _create(client, "their top", key=other)
    journal = client.get("/_sandbox/journal", query_string={"tenant": "sandbox-client/a"}).json["entries"]
    assert [(e["operation"], e["status"]) for e in journal] == [("demo.create_item", 201)]
    assert journal[0]["request"]["headers"]["X-Api-Secret"] == "[redacted]"
    _names(client, "a")
    journal = client.get("/_sandbox/journal", query_string={"tenant": "sandbox-client/a"}).json["entries"]
    assert [e["operation"] for e in journal] == ["demo.list_items", "demo.create_item"]   # newest first
    top = client.get("/_sandbox/journal", query_string={"tenant": "sandbox-client"}).json["entries"]
    assert [e["operation"] for e in top] == ["demo.create_item"]   # the nested requests are not filed here

    assert client.post("/_sandbox/reset", json={"tenant": "sandbox-client"}).status_code == 200
    assert _names(client, "a") == [] and _names(client) == []
    journal = client.get("/_sandbox/journal", query_string={"tenant": "sandbox-client/a"}).json["entries"]
    assert [e["operation"] for e in journal] == ["demo.list_items"]   # only the read just made, after the reset
    # a tenant whose name merely starts with the reset one is untouched
    assert _names(client, "a", key=other) == ["theirs"] and _names(client, key=other) == ["their top"]


def test_a_client_whose_tenant_contains_the_separator_cannot_read_a_sub_tenant(client):
    _create(client, "private", "a")
    for tenant in ("sandbox-client/a", "_sandbox"):
        r = client.post("/_sandbox/clients", json={"client_id": "sly", "client_secret": "s", "tenant": tenant})
        assert r.status_code == 400, tenant
    r = client.post("/_sandbox/clients", json={"client_id": "sly/a", "client_secret": "s"})
    assert r.status_code == 400


def test_a_sub_tenant_runs_on_its_clients_test_clock(client):
    assert client.post("/_sandbox/clock/freeze", json={"tenant": "sandbox-client", "at": "2030-01-01T00:00:00Z"}
                       ).status_code == 200
    created = _create(client, "stamped", "a")["id"]
    assert created   # runs, rate-limit windows, ids and flows of the sub-tenant all read this clock:
    sandbox = client.application.extensions["sandbox"]
    assert sandbox.clock.now("sandbox-client/a") == sandbox.clock.now("sandbox-client")


# --- 6. per-user scopes -----------------------------------------------------------------------------------------------
def test_per_user_scopes_set_by_the_service_give_403_without_the_scope(client):
    demo_error(call(client, "GET", "/users/u1/profile"), 404, "NOT_FOUND")
    assert call(client, "PUT", "/users/u1/scopes", json={"scopes": ["profile:read", "x"]}).status_code == 200
    assert call(client, "PUT", "/users/u2/scopes", json={"scopes": ["profile:write"]}).status_code == 200
    r = call(client, "GET", "/users/u1/profile")
    assert (r.status_code, r.json) == (200, {"user_id": "u1", "name": "User u1"})
    body = demo_error(call(client, "GET", "/users/u2/profile"), 403, "FORBIDDEN")
    assert USER_SCOPE in body["message"]
    call(client, "PUT", "/users/u2/scopes", json={"scopes": ["profile:write", "profile:read"]})
    assert call(client, "GET", "/users/u2/profile").status_code == 200


# --- 7. collections and the three pagination renderers ----------------------------------------------------------------
def _walk_cursor(client, limit):
    pages, cursor = [], None
    while True:
        r = call(client, "GET", "/items", query_string={"limit": limit, **({"nextPage": cursor} if cursor else {})})
        assert r.status_code == 200, r.json
        pages.append(r.json["items"])
        cursor = r.json["nextPage"]
        if cursor is None:
            return pages
        assert len(pages) < 20


def _walk_fino(client, size):
    first = call(client, "GET", "/items/pages", query_string={"pageSize": size}).json
    meta = first["metaData"]
    pages = [first["items"]] + [call(client, "GET", "/items/pages", query_string={"page": n, "pageSize": size}
                                     ).json["items"] for n in range(2, meta["pages"] + 1)]
    beyond = call(client, "GET", "/items/pages", query_string={"page": meta["pages"] + 1, "pageSize": size}).json
    assert beyond["items"] == [] and beyond["metaData"]["totalCount"] == meta["totalCount"]
    return pages, meta


def _walk_offset(client, count):
    pages, offset = [], 0
    while True:
        items = call(client, "GET", "/items/offset", query_string={"count": count, "offset": offset}).json["items"]
        if not items:
            return pages
        pages.append(items)
        offset += count


@pytest.mark.parametrize("n", [6, 7])
def test_every_pagination_style_walks_every_item_exactly_once(client, n):
    created = {_create(client, f"item {i}")["id"] for i in range(n)}
    assert len(created) == n
    full, rest = divmod(n, 3)
    expected_sizes = [3] * full + ([rest] if rest else [])

    pages = _walk_cursor(client, 3)
    ids = [item["id"] for page in pages for item in page]
    assert [len(p) for p in pages] == expected_sizes and len(ids) == len(set(ids)) and set(ids) == created
    descending = call(client, "GET", "/items", query_string={"sort": "-1"}).json["items"]
    assert [item["id"] for item in descending] == ids[::-1]

    pages, meta = _walk_fino(client, 3)
    ids = [item["id"] for page in pages for item in page]
    assert meta == {"page": 1, "pageSize": 3, "pages": len(expected_sizes), "totalCount": n}
    assert [len(p) for p in pages] == expected_sizes and len(ids) == len(set(ids)) and set(ids) == created

    pages = _walk_offset(client, 3)
    ids = [item["id"] for page in pages for item in page]
    assert [len(p) for p in pages] == expected_sizes and len(ids) == len(set(ids)) and set(ids) == created


def test_paging_parameters_are_checked_in_the_provider_envelope(client):
    _create(client, "one")
    assert demo_error(call(client, "GET", "/items", query_string={"limit": "51"}), 400)["fields"] == ["/limit"]
    assert call(client, "GET", "/items", query_string={"limit": "50"}).status_code == 200
    assert demo_error(call(client, "GET", "/items", query_string={"nextPage": "forged.cursor"}), 400
                      )["fields"] == ["/nextPage"]
    assert demo_error(call(client, "GET", "/items/pages", query_string={"page": "0"}), 400)["fields"] == ["/page"]
    assert demo_error(call(client, "GET", "/items/offset", query_string={"count": "-1"}), 400)["fields"] == ["/count"]


# --- 8. runs: 404 while running, 202 via Accepted, 200 once done ------------------------------------------------------
def test_a_run_answers_404_and_202_while_running_and_its_results_once_done(client):
    demo_error(call(client, "GET", "/analyses/alice/results"), 404, "NOT_FOUND")   # no run yet
    r = call(client, "POST", "/analyses/alice")
    assert r.status_code == 201 and r.json["status"] == "running"
    cid = r.json["correlationId"]
    for _ in range(3):   # reads are no polls: only the clock completes the run
        demo_error(call(client, "GET", "/analyses/alice/results"), 404, "NOT_FOUND")
        r = call(client, "GET", "/analyses/alice/ready")
        assert (r.status_code, r.json) == (202, {"status": "running", "correlationId": cid})
        assert r.mimetype == "application/json"
    advance(client, 2.999)   # JOB_DELAY is 3 s on the sandbox clock
    demo_error(call(client, "GET", "/analyses/alice/results"), 404)
    assert call(client, "GET", "/analyses/alice/ready").status_code == 202
    advance(client, 0.001)
    expected = {"subject": "alice", "score": expected_score("alice"), "correlationId": cid}
    r = call(client, "GET", "/analyses/alice/results")
    assert (r.status_code, r.json) == (200, expected)
    r = call(client, "GET", "/analyses/alice/ready")
    assert (r.status_code, r.json) == (200, expected)
    demo_error(call(client, "GET", "/analyses/bob/results"), 404)   # per subject


def test_a_202_is_journaled_as_the_operations_answer(client):
    call(client, "POST", "/analyses/carol")
    call(client, "GET", "/analyses/carol/ready")
    entry = client.get("/_sandbox/journal").json["entries"][0]
    assert (entry["operation"], entry["status"]) == ("demo.get_analysis_ready", 202)
    assert entry["response"]["body"]["status"] == "running"


# --- 9. rate limit on the sandbox clock -------------------------------------------------------------------------------
def test_the_fifth_sync_of_a_utc_day_gets_429_until_midnight(client):
    for left in (3, 2, 1, 0):
        r = call(client, "POST", "/syncs")
        assert (r.status_code, r.json) == (201, {"remaining": left})
    midnight = datetime(WALL.year, WALL.month, WALL.day, tzinfo=timezone.utc) + timedelta(days=1)
    limited = call(client, "POST", "/syncs")
    body = demo_error(limited, 429, "RATE_LIMITED")
    assert body["details"]["retry_after"] == int((midnight - WALL).total_seconds())
    assert limited.headers["Retry-After"] == str(body["details"]["retry_after"])   # errors can carry headers
    advance(client, (midnight - WALL).total_seconds() - 1)   # 23:59:59: still the same day
    assert demo_error(call(client, "POST", "/syncs"), 429)["details"]["retry_after"] == 1
    advance(client, 1)
    r = call(client, "POST", "/syncs")
    assert (r.status_code, r.json) == (201, {"remaining": 3})


# --- 10. webhooks v2 --------------------------------------------------------------------------------------------------
def test_webhooks_are_delivered_outside_the_request_with_the_subscribers_method_and_secret(client, sent):
    r = call(client, "POST", "/subscriptions", json={"url": "https://receiver.example/hooks", "method": "put",
                                                     "secret": "whsec-demo", "events": ["item.created"]})
    assert r.status_code == 201 and r.json["method"] == "PUT"
    call(client, "POST", "/subscriptions", json={"url": "https://other.example/", "events": ["item.deleted"]})
    r = call(client, "POST", "/events", json={"event": "item.created", "data": {"id": "i-1"}})
    assert (r.status_code, r.json) == (200, {"queued": 1})
    assert sent == []   # the request only enqueued
    pending = client.get("/_sandbox/webhooks", query_string={"provider": "demo"}).json["deliveries"]
    assert [d["status"] for d in pending] == ["pending"]
    assert client.post("/_sandbox/tick").json["webhooks"] == 1
    assert len(sent) == 1
    delivery = sent[0]
    assert (delivery["method"], delivery["url"]) == ("PUT", "https://receiver.example/hooks")
    assert json.loads(delivery["body"]) == {"event": "item.created", "data": {"id": "i-1"}}
    signature = delivery["headers"]["X-Sandbox-Signature"]
    assert verify_signature("whsec-demo", delivery["body"], signature, now=WALL.timestamp(), tolerance=300)
    assert not verify_signature("whsec-other", delivery["body"], signature)
    assert not verify_signature("whsec-demo", delivery["body"] + b" ", signature)
    done = client.get("/_sandbox/webhooks", query_string={"provider": "demo"}).json["deliveries"]
    assert [(d["status"], d["attempts"][0]["method"]) for d in done] == [("delivered", "PUT")]
    assert client.post("/_sandbox/tick").json["webhooks"] == 0 and len(sent) == 1   # sent once


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/_sandbox/reset", "http://localhost:8080/%5Fsandbox/reset",
                                 "http://127.0.0.1:8080/demo/api/../../_sandbox/reset",
                                 "http://127.0.0.1:8080//_sandbox//reset"])
def test_a_subscription_to_the_control_api_is_refused_and_resets_nothing(client, sent, url):
    _create(client, "survivor")
    assert call(client, "POST", "/subscriptions", json={"url": url, "events": ["*"]}).status_code == 201
    assert call(client, "POST", "/subscriptions", json={"url": "https://fine.example/", "events": ["*"]}
                ).status_code == 201
    assert call(client, "POST", "/events", json={"event": "anything"}).json == {"queued": 2}
    client.post("/_sandbox/tick")
    assert [d["url"] for d in sent] == ["https://fine.example/"]
    deliveries = {d["url"]: d for d in client.get("/_sandbox/webhooks", query_string={"provider": "demo"}
                                                  ).json["deliveries"]}
    assert deliveries[url]["status"] == "refused" and "control API" in deliveries[url]["attempts"][0]["error"]
    assert deliveries["https://fine.example/"]["status"] == "delivered"
    assert _names(client) == ["survivor"]


# --- 11. a hosted flow on the pages prefix ----------------------------------------------------------------------------
def _link(client, state):
    r = call(client, "POST", "/links", json={"redirect_uri": "https://app.example/cb?from=demo", "state": state})
    assert r.status_code == 201, r.json
    return r.json


def _shape(url):
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path, [k for k, _ in parse_qsl(parts.query)]


def test_url_for_builds_absolute_urls_on_the_api_and_the_pages_prefix(client):
    r = call(client, "GET", "/whoami")
    assert r.json["self"] == "http://localhost/demo/api/whoami"
    assert r.json["page"] == "http://localhost/demo/consent/?token=t"
    link = _link(client, "s0")
    assert link["location"].startswith("http://localhost/demo/consent/?token=")
    assert link["href"] == f"http://localhost/demo/api/links/{link['id']}"


def test_a_flow_completed_by_form_posts_and_by_the_control_api_redirects_alike(client):
    link = _link(client, "s1")
    page = link["location"].removeprefix("http://localhost")
    r = client.get(page)
    assert r.status_code == 200 and "<p id=step>login</p>" in r.get_data(as_text=True)
    assert "X-Frame-Options" not in r.headers
    r = client.post(page, data={"flow_id": link["id"], "step": "login", "username": "demo", "password": "no"})
    assert r.status_code == 200 and "bad_login" in r.get_data(as_text=True)
    r = client.post(page, data={"flow_id": link["id"], "step": "login", "username": "demo", "password": "1234"})
    assert "<p id=step>approve</p>" in r.get_data(as_text=True)
    r = client.post(page, data={"flow_id": link["id"], "step": "approve", "approve": "yes"})
    assert r.status_code == 303
    by_form = r.headers["Location"]
    assert client.get(page).status_code == 400   # a page token works once

    other = _link(client, "s2")
    r = client.post(f"/_sandbox/flows/{other['id']}/complete", json={"outcome": "success", "provider": "demo"})
    assert r.status_code == 200 and r.json["status"] == "SUCCEEDED"
    by_control = r.json["redirect_url"]

    assert _shape(by_form) == _shape(by_control) == ("https", "app.example", "/cb", ["from", "code", "state"])
    assert dict(parse_qsl(urlsplit(by_form).query))["state"] == "s1"
    assert dict(parse_qsl(urlsplit(by_control).query))["state"] == "s2"
    codes = {dict(parse_qsl(urlsplit(u).query))["code"] for u in (by_form, by_control)}
    assert len(codes) == 2 and all(c.startswith("code-") for c in codes)
    for link_, url in ((link, by_form), (other, by_control)):
        r = call(client, "GET", f"/links/{link_['id']}")
        assert r.json == {"id": link_["id"], "status": "SUCCEEDED", "redirect_url": url}
    r = client.post(f"/_sandbox/flows/{other['id']}/complete", json={"outcome": "cancel"})
    assert r.status_code == 409   # ended flows stay ended


# --- 12. OpenAPI ------------------------------------------------------------------------------------------------------
def test_the_openapi_document_describes_the_demo_operations(client):
    from openapi_spec_validator import validate

    doc = client.get("/demo/api/openapi.json").json
    validate(doc)
    assert doc["servers"] == [{"url": "/demo/api"}]
    # the header pair: two apiKey schemes, required together by one security requirement
    assert doc["components"]["securitySchemes"] == {
        "key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "key_secret": {"type": "apiKey", "in": "header", "name": "x-api-secret"}}
    paths = doc["paths"]
    assert set(paths) == {path for _, _, path, _ in _OPS}
    assert "/consent/" not in paths   # hosted pages are no API operations
    assert all(op["security"] == [{"key": [], "key_secret": []}] for item in paths.values() for op in item.values())
    ip_headers = [p for p in paths["/ip"]["get"]["parameters"] if p["in"] == "header"]
    assert ip_headers == [{"name": "User-IP", "in": "header", "required": True, "schema": {"type": "string"}}]
    assert set(paths["/forms"]["post"]["requestBody"]["content"]) == {"application/x-www-form-urlencoded"}
    assert set(paths["/documents"]["post"]["requestBody"]["content"]) == {"multipart/form-data"}
    assert set(paths["/items"]["post"]["requestBody"]["content"]) == {"application/json"}
    assert "requestBody" not in paths["/items"]["get"]
    ready = paths["/analyses/{subject}/ready"]["get"]
    assert set(ready["responses"]) == {"200", "202", "401", "404"}
    assert paths["/users/{user_id}/profile"]["get"]["parameters"][0]["name"] == "user_id"


def test_every_security_requirement_names_a_declared_scheme(client, demo):
    """OpenAPI 3.1 s4.8.30, for every mounted provider: credentials in the body (Open Finance's token) are documented
    by the request body, not by a security requirement naming an undeclared scheme."""
    from openapi_spec_validator import validate

    for mounted in demo.extensions["sandbox"].providers.values():
        doc = client.get(f"{mounted.prefix}/openapi.json").json
        validate(doc)
        declared = set(doc["components"]["securitySchemes"])
        named = {name for item in doc["paths"].values() for op in item.values() for req in op["security"]
                 for name in req}
        assert named <= declared, (mounted.name, named - declared)
        assert named, mounted.name


# --- 13. the control API's operation list -----------------------------------------------------------------------------
def test_the_operations_list_shows_the_demo_overlay(client):
    ops = client.get("/_sandbox/operations").json["demo"]
    assert set(ops) == {name for name, *_ in _OPS} | {"consent"}
    expected = {"id": "demo.read_scoped", "kind": "operation", "method": "GET", "path": "/demo/api/scoped",
                "auth": "key", "scope": "items:read", "body": "none", "headers": [], "status": 200}
    assert {k: ops["read_scoped"][k] for k in expected} == expected
    assert (ops["submit_form"]["body"], ops["submit_form"]["status"]) == ("form", 201)
    assert ops["upload_document"]["body"] == "multipart"
    assert ops["get_ip"]["headers"] == ["User-IP"]
    assert ops["get_analysis_ready"]["statuses"] == [200, 202, 401, 404]
    assert (ops["consent"]["kind"], ops["consent"]["path"], ops["consent"]["auth"]) == ("page", "/demo/consent/",
                                                                                         "none")
    assert all(op["auth"] == "key" for name, op in ops.items() if name != "consent")


def test_a_request_refused_before_the_service_is_journaled_in_its_sub_tenant(client):
    """Provider.tenant_header is applied right after auth: a validation error is filed under the sub-tenant."""
    r = call(client, "POST", "/items", json={"value": 1}, headers={"TenantID": "a"})   # no name: schema violation
    assert r.status_code == 400
    journal = client.get("/_sandbox/journal", query_string={"tenant": "sandbox-client/a"}).json["entries"]
    assert [(e["operation"], e["status"]) for e in journal] == [("demo.create_item", 400)]
    top = client.get("/_sandbox/journal", query_string={"tenant": "sandbox-client"}).json["entries"]
    assert top == []


def test_static_assets_are_served_from_the_pages_prefix_without_auth_and_never_outside_their_directory(
        demo_files, monkeypatch, tmp_path):
    """Provider.assets_dir: files under <pages prefix>/_assets/ (a stand-in for a provider's public CDN, e.g.
    finoOS company logos), no credentials; unknown files and path traversal are 404; asset_url is absolute."""
    from dataclasses import replace
    from types import SimpleNamespace

    from sandbox.core.dispatch import asset_url

    assets = tmp_path / "assets"
    (assets / "logos").mkdir(parents=True)
    (assets / "logos" / "acme.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("not an asset")
    catalogue, registry = demo_files
    monkeypatch.setattr(providers_module, "PROVIDERS",
                        [*providers_module.PROVIDERS, replace(DECL, assets_dir=str(assets))])
    monkeypatch.setattr(context_module, "_SCHEMAS", registry)
    app = create_app({"CATALOGUE": str(catalogue), "SEED": 3}, store=MemoryStore(), system_clock=FakeWall())
    http = app.test_client()
    r = http.get("/demo/_assets/logos/acme.svg")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml" and b"<svg" in r.data
    assert http.get("/demo/_assets/logos/nope.svg").status_code == 404
    assert http.get("/demo/_assets/../secret.txt").status_code == 404
    assert http.get("/demo/_assets/%2e%2e/secret.txt").status_code == 404
    with app.test_request_context("/", base_url="http://127.0.0.1:8080"):
        ctx = SimpleNamespace(sandbox=app.extensions["sandbox"], provider="demo")
        assert asset_url(ctx, "logos/acme.svg") == "http://127.0.0.1:8080/demo/_assets/logos/acme.svg"
