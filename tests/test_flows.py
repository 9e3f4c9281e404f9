"""Hosted flows (core/flows.py, core/admin_flows.py): page tokens, the step machine, exits, redirects, and the
control-API shortcut; then finleap's widget and sync SCA page on top of them (finleap.md s.8).

The core tests drive a toy two-step flow through a small Flask app; expected redirect URLs are written out by hand.
"""
from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask, Response, request

from sandbox.config import load_config
from sandbox.core import admin_flows
from sandbox.core.clock import isoformat
from sandbox.core.context import Sandbox
from sandbox.core.flows import (FlowDefinition, FlowExpired, Flows, FlowUsed, Next, callback_url, frame_friendly)
from sandbox.core.http import init_http
from sandbox.core.store import MemoryStore

from .conftest import WALL, FakeWall

PURPOSE = "toy.page"
CB = "https://app.example/cb?x=1"
TTL = 600


class Toy(FlowDefinition):
    """pin -> pick -> success with code; two wrong pins end with error (reason "locked")."""

    list_fields = ("picks",)
    max_attempts = 2

    def render(self, ctx, tenant, flow, error):
        return f'<form id="step-{flow["step"]}" data-step="{flow["step"]}"><p id="msg">{error or ""}</p></form>'

    def render_done(self, ctx, tenant, flow):
        return f'<p id="done">{flow["status"]}</p>'

    def step_pin(self, tenant, flow, form):
        if form.get("pin") == "1234":
            return Next.goto("pick")
        if self.attempt(flow, "pin"):
            return Next.finish("error", reason="locked")
        return Next.stay("wrong_pin")

    def step_pick(self, tenant, flow, form):
        picks = [p for p in form.get("picks", []) if p in ("a", "b")]
        if not picks:
            return Next.stay("pick_one")
        return Next.finish("success", code=f"c-{flow['id']}-{'+'.join(picks)}")

    def redirect_params(self, flow, outcome, result):
        if outcome == "success":
            return [("code", result["code"]), ("state", flow["state"] or ""), ("ok", "1")]
        params = [("state", flow["state"] or ""), ("ok", "0")]
        if outcome == "cancel":
            params.append(("cancel", "1"))
        if outcome == "error":
            params.append(("why", result["reason"]))
        return params

    def succeed(self, tenant, flow, options):
        return {"code": f"c-{flow['id']}-{'+'.join(options.get('picks', ['a']))}"}


def make_app(wall, seed: int = 5):
    sb = Sandbox(load_config({"SEED": seed, "STORE": "memory://"}), store=MemoryStore(), system_clock=wall)
    if not hasattr(sb, "flows"):   # until Sandbox.__init__ creates it (issue 6 item 7)
        sb.flows = Flows(sb.store, sb.clock, sb.ids, sb.signer)
    sb.flows.register("toy", "login", Toy(sb.flows))
    app = Flask(__name__)
    app.extensions["sandbox"] = sb
    init_http(app)
    app.register_blueprint(admin_flows.bp)

    def serve(flow_id=None):
        ctx = SimpleNamespace(sandbox=sb, request=request, tenant=None, service=None)
        return sb.flows.serve(ctx, PURPOSE, token=request.args.get("token"), flow_id=flow_id,
                              error_page=lambda reason: f'<p id="error">{reason}</p>')

    app.add_url_rule("/toy/page", "page", serve, methods=["GET", "POST"])
    app.add_url_rule("/toy/keyed/<flow_id>", "keyed", serve, methods=["GET", "POST"])
    return app, sb


@pytest.fixture
def toy(wall):
    app, sb = make_app(wall)
    return SimpleNamespace(app=app, sb=sb, client=app.test_client(), wall=wall)


def new_flow(sb, tenant="tenant-a", **kw):
    args = {"redirect_uri": CB, "state": "st 1", "data": {"label": "L"}, "ttl": TTL, "first_step": "pin",
            "purpose": PURPOSE, **kw}
    return sb.flows.create(tenant, "toy", "login", **args)


def page(client, token, form=None, path="/toy/page"):
    if form is None:
        return client.get(path, query_string={"token": token})
    return client.post(path, query_string={"token": token}, data=form)


def stored(sb, tenant, flow_id):
    return sb.flows.get(tenant, "toy", flow_id)


# --- tokens ---------------------------------------------------------------------------------------------------------
def test_token_is_alive_one_second_before_exp_and_dead_at_exp(toy):
    flow, token = new_flow(toy.sb)
    assert flow["expires_at"] == isoformat(WALL + timedelta(seconds=TTL))
    toy.wall.at = WALL + timedelta(seconds=TTL - 1)
    assert page(toy.client, token).status_code == 200
    assert toy.sb.flows.open(token, PURPOSE)[1]["id"] == flow["id"]
    toy.wall.at = WALL + timedelta(seconds=TTL)
    r = page(toy.client, token)
    assert r.status_code == 400 and "Location" not in r.headers and 'id="error">expired' in r.text
    with pytest.raises(FlowExpired):
        toy.sb.flows.open(token, PURPOSE)
    # a post with a dead token cannot move the flow either
    assert page(toy.client, token, {"flow_id": flow["id"], "step": "pin", "pin": "1234"}).status_code == 400
    assert stored(toy.sb, "tenant-a", flow["id"])["step"] == "pin"


def test_forged_tampered_and_foreign_tokens_are_expired_not_used(toy):
    flow, token = new_flow(toy.sb)
    other, other_token = new_flow(toy.sb)
    head, payload, sig = token.split(".")
    claims = {"flow_id": flow["id"], "tenant": "tenant-a", "provider": "toy", "kind": "login",
              "exp": int((WALL + timedelta(seconds=TTL)).timestamp())}
    bad = [
        f"{head}.{payload}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}",    # tampered signature
        toy.sb.signer.encode(claims, "other.page"),                         # signed for another page
        toy.sb.signer.encode({**claims, "flow_id": "no-such-flow"}, PURPOSE),   # genuine, but no such flow
        toy.sb.signer.encode({**claims, "tenant": "tenant-b"}, PURPOSE),   # the flow is not in that tenant
        "", "not.a.token",
    ]
    for t in bad:
        r = page(toy.client, t)
        assert r.status_code == 400 and 'id="error">expired' in r.text, t
    assert page(toy.client, token).status_code == 200      # the genuine one still works
    # a keyed page (e.g. /journey/{connectionId}) refuses a genuine token of another flow
    assert page(toy.client, other_token, path=f"/toy/keyed/{flow['id']}").status_code == 400
    assert page(toy.client, token, path=f"/toy/keyed/{flow['id']}").status_code == 200


def test_a_finished_flow_is_used_not_expired(toy):
    flow, token = new_flow(toy.sb)
    assert page(toy.client, token, {"flow_id": flow["id"], "cancel": "1"}).status_code == 303
    r = page(toy.client, token)
    assert r.status_code == 400 and 'id="error">used' in r.text and "Location" not in r.headers
    with pytest.raises(FlowUsed) as caught:
        toy.sb.flows.open(token, PURPOSE)
    assert not isinstance(caught.value, FlowExpired)
    # used wins only while the token lives: after exp the page says expired
    toy.wall.at = WALL + timedelta(seconds=TTL)
    assert 'id="error">expired' in page(toy.client, token).text


# --- the step machine ---------------------------------------------------------------------------------------------
def test_posts_naming_another_flow_or_an_old_step_never_advance(toy):
    a, token_a = new_flow(toy.sb)
    b, _ = new_flow(toy.sb)
    r = page(toy.client, token_a, {"flow_id": b["id"], "step": "pin", "pin": "1234"})
    assert r.status_code == 200 and 'data-step="pin"' in r.text and 'id="msg">stale' in r.text
    assert stored(toy.sb, "tenant-a", a["id"])["step"] == "pin" == stored(toy.sb, "tenant-a", b["id"])["step"]
    r = page(toy.client, token_a, {"flow_id": b["id"], "cancel": "1"})   # nor cancel it
    assert r.status_code == 200 and stored(toy.sb, "tenant-a", a["id"])["status"] == "PENDING"
    r = page(toy.client, token_a, {"step": "pin", "pin": "1234"})         # no flow id at all
    assert r.status_code == 200 and stored(toy.sb, "tenant-a", a["id"])["step"] == "pin"

    r = page(toy.client, token_a, {"flow_id": a["id"], "step": "pin", "pin": "1234"})
    assert r.status_code == 200 and 'data-step="pick"' in r.text and 'id="msg"></p>' in r.text
    r = page(toy.client, token_a, {"flow_id": a["id"], "step": "pin", "pin": "1234"})   # replay of the old step
    assert 'id="msg">stale' in r.text and stored(toy.sb, "tenant-a", a["id"])["step"] == "pick"
    r = page(toy.client, token_a, {"flow_id": a["id"], "step": "pick", "picks": ["a", "b"]})
    assert r.status_code == 303
    assert r.headers["Location"] == f"https://app.example/cb?x=1&code=c-{a['id']}-a%2Bb&state=st+1&ok=1"


def test_cancel_redirects_to_the_registered_uri_only(toy):
    flow, token = new_flow(toy.sb)
    r = page(toy.client, token, {"flow_id": flow["id"], "step": "pick", "cancel": "1",
                                 "redirect_uri": "https://evil.example/", "state": "forged"})
    assert r.status_code == 303
    assert r.headers["Location"] == "https://app.example/cb?x=1&state=st+1&ok=0&cancel=1"
    saved = stored(toy.sb, "tenant-a", flow["id"])
    assert (saved["status"], saved["outcome"], saved["step"]) == ("CANCELLED", "cancel", "done")
    assert saved["redirect_url"] == r.headers["Location"] and saved["label"] == "L"


def test_attempts_counter_ends_in_the_error_exit(toy):
    flow, token = new_flow(toy.sb)
    r = page(toy.client, token, {"flow_id": flow["id"], "step": "pin", "pin": "0000"})
    assert r.status_code == 200 and 'id="msg">wrong_pin' in r.text
    assert stored(toy.sb, "tenant-a", flow["id"])["attempts"] == {"pin": 1}
    r = page(toy.client, token, {"flow_id": flow["id"], "step": "pin", "pin": "0000"})
    assert r.status_code == 303 and r.headers["Location"] == "https://app.example/cb?x=1&state=st+1&ok=0&why=locked"
    saved = stored(toy.sb, "tenant-a", flow["id"])
    assert (saved["status"], saved["reason"], saved["attempts"]) == ("FAILED", "locked", {"pin": 2})


def test_pages_are_iframe_friendly_and_not_cached(toy):
    flow, token = new_flow(toy.sb)
    for r in (page(toy.client, token), page(toy.client, "forged"),
              page(toy.client, token, {"flow_id": flow["id"], "cancel": "1"})):
        assert "X-Frame-Options" not in r.headers and "Content-Security-Policy" not in r.headers
        assert r.headers["Cache-Control"] == "no-store"
    denied = Response("x", headers={"X-Frame-Options": "DENY"})
    out = frame_friendly(denied, "*")
    assert "X-Frame-Options" not in out.headers and out.headers["Content-Security-Policy"] == "frame-ancestors *"


def test_redirect_url_keeps_the_uri_query_and_the_parameter_order():
    assert callback_url("https://a.example/cb", [("z", "1"), ("a", "2")]) == "https://a.example/cb?z=1&a=2"
    assert callback_url("https://a.example/cb?t=42&u=", [("code", "c&d"), ("state", "")]) == \
        "https://a.example/cb?t=42&u=&code=c%26d&state="
    assert callback_url("https://a.example/cb?t=1#frag", []) == "https://a.example/cb?t=1#frag"
    assert callback_url("https://a.example/cb#frag", [("s", "1")]) == "https://a.example/cb?s=1#frag"


def test_without_a_target_the_flow_ends_on_a_done_page_and_outcomes_may_have_their_own(toy):
    flow, token = new_flow(toy.sb, redirect_uri=None)
    r = page(toy.client, token, {"flow_id": flow["id"], "cancel": "1"})
    assert r.status_code == 200 and r.text == '<p id="done">CANCELLED</p>'
    # finoOS style: redirectURL on success, errorURL / exitURL otherwise
    flow, token = new_flow(toy.sb, redirects={"error": "https://app.example/err", "cancel": "https://app.example/exit"})
    r = page(toy.client, token, {"flow_id": flow["id"], "cancel": "1"})
    assert r.headers["Location"] == "https://app.example/exit?state=st+1&ok=0&cancel=1"
    flow, _ = new_flow(toy.sb, redirects={"error": "https://app.example/err"})
    _, _, url = toy.sb.flows.complete(flow["id"], "success", {})
    assert url == f"https://app.example/cb?x=1&code=c-{flow['id']}-a&state=st+1&ok=1"


def test_create_refuses_core_fields_unknown_kinds_and_steps(toy):
    with pytest.raises(ValueError, match="core fields"):
        new_flow(toy.sb, data={"status": "SUCCEEDED"})
    with pytest.raises(LookupError):
        toy.sb.flows.create("tenant-a", "toy", "nope", redirect_uri=CB, data={}, ttl=1, first_step="pin",
                            purpose=PURPOSE)
    with pytest.raises(ValueError, match="no step"):
        new_flow(toy.sb, first_step="nope")


# --- control API ----------------------------------------------------------------------------------------------------
def _drive(client, flow, token, outcome):
    """Finish a toy flow with form posts the way a user would."""
    form = {"flow_id": flow["id"], "step": "pin"}
    if outcome == "cancel":
        return page(client, token, {**form, "cancel": "1"}).headers["Location"]
    if outcome == "error":
        page(client, token, {**form, "pin": "0"})
        return page(client, token, {**form, "pin": "0"}).headers["Location"]
    page(client, token, {**form, "pin": "1234"})
    return page(client, token, {"flow_id": flow["id"], "step": "pick", "picks": "a"}).headers["Location"]


@pytest.mark.parametrize("outcome, options, status", [("success", {}, "SUCCEEDED"), ("cancel", {}, "CANCELLED"),
                                                      ("error", {"reason": "locked"}, "FAILED")])
def test_control_api_complete_gives_the_url_the_form_would(outcome, options, status):
    by_form, by_api = make_app(FakeWall()), make_app(FakeWall())   # same seed, same clock: same flow ids
    flow_f, token_f = new_flow(by_form[1])
    flow_a, token_a = new_flow(by_api[1])
    assert flow_f["id"] == flow_a["id"]
    expected = _drive(by_form[0].test_client(), flow_f, token_f, outcome)
    client = by_api[0].test_client()
    r = client.post(f"/_sandbox/flows/{flow_a['id']}/complete", json={"outcome": outcome, **options})
    assert r.status_code == 200, r.text
    assert r.json == {"flow_id": flow_a["id"], "tenant": "tenant-a", "status": status, "redirect_url": expected}
    assert expected.startswith(CB + "&")
    assert page(client, token_a).status_code == 400     # the page is used up, as after the form
    again = client.post(f"/_sandbox/flows/{flow_a['id']}/complete", json={"outcome": outcome})
    assert again.status_code == 409 and again.json["error"]["kind"] == "conflict"


def test_control_api_unknown_flow_bad_outcome_and_expired_flow(toy):
    r = toy.client.post("/_sandbox/flows/nope/complete", json={"outcome": "success"})
    assert r.status_code == 404 and r.json["error"]["status"] == 404 and r.json["error"]["kind"] == "not_found"
    assert toy.client.get("/_sandbox/flows/nope").status_code == 404
    flow, _ = new_flow(toy.sb)
    for body in ({"outcome": "maybe"}, {}, {"outcome": None}):
        r = toy.client.post(f"/_sandbox/flows/{flow['id']}/complete", json=body)
        assert r.status_code == 400 and r.json["error"]["kind"] == "bad_request"
    toy.wall.at = WALL + timedelta(seconds=TTL - 1)
    assert toy.client.get(f"/_sandbox/flows/{flow['id']}").json["status"] == "PENDING"
    toy.wall.at = WALL + timedelta(seconds=TTL)
    assert toy.client.get(f"/_sandbox/flows/{flow['id']}").json["status"] == "EXPIRED"
    r = toy.client.post(f"/_sandbox/flows/{flow['id']}/complete", json={"outcome": "success"})
    assert r.status_code == 409 and stored(toy.sb, "tenant-a", flow["id"])["status"] == "PENDING"


def test_a_flow_of_tenant_a_cannot_be_completed_naming_tenant_b(toy):
    flow, _ = new_flow(toy.sb, tenant="tenant-a")
    new_flow(toy.sb, tenant="tenant-b")   # tenant-b exists in the store
    r = toy.client.post(f"/_sandbox/flows/{flow['id']}/complete", json={"tenant": "tenant-b", "outcome": "cancel"})
    assert r.status_code == 404
    assert toy.client.get(f"/_sandbox/flows/{flow['id']}?tenant=tenant-b").status_code == 404
    assert stored(toy.sb, "tenant-a", flow["id"])["status"] == "PENDING"
    r = toy.client.post(f"/_sandbox/flows/{flow['id']}/complete", json={"tenant": "tenant-a", "outcome": "cancel"})
    assert r.status_code == 200 and r.json["tenant"] == "tenant-a"


def test_control_api_lists_and_filters_flows(toy):
    a1, _ = new_flow(toy.sb, tenant="tenant-a")
    a2, _ = new_flow(toy.sb, tenant="tenant-a")
    b1, _ = new_flow(toy.sb, tenant="tenant-b")
    toy.sb.flows.complete(a2["id"], "cancel", {}, tenant="tenant-a")
    ids = lambda q: sorted(f["id"] for f in toy.client.get(f"/_sandbox/flows{q}").json["flows"])  # noqa: E731
    assert ids("") == sorted([a1["id"], a2["id"], b1["id"]])
    assert ids("?tenant=tenant-a") == sorted([a1["id"], a2["id"]])
    assert ids("?tenant=tenant-a&status=PENDING") == [a1["id"]]
    assert ids("?status=cancelled") == [a2["id"]]
    assert ids("?provider=toy&tenant=tenant-b") == [b1["id"]]
    assert ids("?provider=other") == []
    one = toy.client.get(f"/_sandbox/flows/{b1['id']}").json
    assert (one["tenant"], one["provider"], one["kind"], one["step"], one["label"]) == \
        ("tenant-b", "toy", "login", "pin", "L")


# --- finleap's widget and sync SCA on the flow machine ------------------------------------------------------------
FIN_CB = "https://my-app.example.com/callback"
BASIC = ("sandbox-client", "sandbox-secret")


def fin_app(wall):
    from sandbox import create_app
    app = create_app({"SEED": 11, "SECRET_KEY": "t"}, store=MemoryStore(), system_clock=wall)
    if not hasattr(app.extensions["sandbox"], "flows") or "_sandbox_flows" not in app.blueprints:
        pytest.skip("Sandbox.flows and the flows control API are not wired into create_app yet")
    return app


def fin_link(client, path="income-report", **body):
    r = client.post(f"/finleap/onetime/{path}", json={"redirect_uri": FIN_CB, "state": "s-1", **body}, auth=BASIC)
    assert r.status_code == 201, r.text
    return r.json


def fin_widget(client, link, password="654321", username="figo01", cancel_at=None):
    """Complete the widget by form posts -> the redirect URL (or the last response when it did not end)."""
    path = link["location"].split("://", 1)[1].split("/", 1)[1]
    r = client.get("/" + path)
    for _ in range(10):
        step = re.search(r'name="step" value="([a-z]+)"', r.text).group(1)
        form = {"flow_id": link["id"], "step": step}
        if cancel_at == step:
            form["cancel"] = "1"
        form.update({"bank": {"bank_id": "mockbank-decoupled"}, "login": {"username": username, "password": password},
                     "sca": {"sca_method": "Auth Meth by Phone"}, "otp": {"otp": "123456"},
                     "accounts": {"accounts": re.findall(r'name="accounts" value="([^"]+)"', r.text)[:1]}}[step])
        r = client.post("/" + path, data=form)
        if r.status_code == 303:
            return r.headers["Location"]
        assert r.status_code == 200, r.text
    raise AssertionError("the widget did not end")


@pytest.mark.parametrize("outcome, body, form", [
    ("success", {}, {}), ("cancel", {}, {"cancel_at": "login"}),
    ("error", {"reason": "wrong_credentials"}, {"password": "wrong"})])
def test_finleap_control_api_complete_gives_the_widget_url(outcome, body, form):
    by_form, by_api = fin_app(FakeWall()), fin_app(FakeWall())
    link_f, link_a = fin_link(by_form.test_client()), fin_link(by_api.test_client())
    assert link_f == link_a
    expected = fin_widget(by_form.test_client(), link_f, **form)
    r = by_api.test_client().post(f"/_sandbox/flows/{link_a['id']}/complete", json={"outcome": outcome, **body})
    assert r.status_code == 200, r.text
    assert r.json["redirect_url"] == expected
    keys = [k for k, _ in parse_qsl(urlsplit(expected).query)]
    assert keys == {"success": ["code", "state", "success", "flow_id"], "cancel": ["state", "success", "cancel",
                    "flow_id"], "error": ["state", "success", "flow_id"]}[outcome]


def test_finleap_control_api_success_options_pick_scenario_and_accounts(wall):
    client = fin_app(wall).test_client()
    link = fin_link(client, "account-verification", name="Maria Müller", readout=["ACCOUNTS"])
    bad = client.post(f"/_sandbox/flows/{link['id']}/complete", json={"outcome": "success", "accounts": ["nope"]})
    assert bad.status_code == 400 and "offered account ids" in bad.json["error"]["message"]
    bad = client.post(f"/_sandbox/flows/{link['id']}/complete", json={"outcome": "success", "username": "x"})
    assert bad.status_code == 400
    done = client.post(f"/_sandbox/flows/{link['id']}/complete",
                       json={"outcome": "success", "username": "figo01+low", "bank_id": "mockbank-embedded"})
    assert done.status_code == 200, done.text
    code = dict(parse_qsl(urlsplit(done.json["redirect_url"]).query))["code"]
    tokens = client.post("/finleap/auth/token", json={"grant_type": "authorization_code", "code": code}, auth=BASIC)
    assert tokens.status_code == 200, tokens.text
    h = {"Authorization": f"Bearer {tokens.json['access_token']}"}
    report = client.get(f"/finleap/rest/account-verifications/{link['id']}", headers=h)
    assert report.status_code == 200 and report.json["matched"]["affinity"] == "LOW"
    access = client.get("/finleap/rest/accesses", headers=h).json["accesses"][0]
    assert access["access_method_id"] == "mockbank-embedded"


def test_finleap_widget_token_lives_exactly_its_ttl(wall):
    client = fin_app(wall).test_client()
    link = fin_link(client)
    path = "/" + link["location"].split("://", 1)[1].split("/", 1)[1]
    wall.at = WALL + timedelta(seconds=3599)
    assert client.get(path).status_code == 200
    wall.at = WALL + timedelta(seconds=3600)
    r = client.get(path)
    assert r.status_code == 400 and "abgelaufen" in r.text and "expired" in r.text


def test_finleap_sync_sca_page_is_a_flow_with_an_expiring_token(wall):
    client = fin_app(wall).test_client()
    link = fin_link(client)
    code = dict(parse_qsl(urlsplit(fin_widget(client, link, username="figo01+sca")).query))["code"]
    h = {"Authorization": "Bearer " + client.post("/finleap/auth/token", json={
        "grant_type": "authorization_code", "code": code}, auth=BASIC).json["access_token"]}
    access_id = client.get("/finleap/rest/accesses", headers=h).json["accesses"][0]["id"]

    def start():
        sync = client.post(f"/finleap/rest/accesses/{access_id}/syncs", headers=h,
                           json={"redirect_uri": "https://my-app.example.com/sync-done", "state": "s9"}).json
        for _ in range(4):
            now = client.get(f"/finleap/rest/accesses/{access_id}/syncs/{sync['id']}", headers=h).json
            if now["status"] == "AWAIT_AUTH":
                return sync, now["challenge"]["location"]
        raise AssertionError(now)

    sync, location = start()
    path = "/" + location.split("://", 1)[1].split("/", 1)[1]
    assert client.get(path).status_code == 200
    stale = client.post(path, data={"sync_id": "other", "approve": "1"})
    assert stale.status_code == 200 and 'id="error"' in stale.text
    r = client.post("/_sandbox/flows/" + sync["id"] + "/complete", json={"outcome": "cancel"})
    assert r.json["redirect_url"] == "https://my-app.example.com/sync-done?state=s9"
    failed = client.get(f"/finleap/rest/accesses/{access_id}/syncs/{sync['id']}", headers=h).json
    assert failed["status"] == "FAILED" and failed["error"]["code"] == 1002
    assert client.get(path).status_code == 400   # used

    sync, location = start()
    path = "/" + location.split("://", 1)[1].split("/", 1)[1]
    wall.at = wall.at + timedelta(seconds=3600)
    assert client.post(path, data={"sync_id": sync["id"], "approve": "1"}).status_code == 400   # expired
