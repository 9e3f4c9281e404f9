"""finoOS platform contract tests (fino.md sections 3, 4, 6, 7, 10, 11), by catalogue id. In-process by default;
over HTTP with --base-url:

    sandbox check fino --base-url http://127.0.0.1:8080/fino/api

Authentication, tenants, users, user scopes, the analysis lifecycle (runs started by add_user_scopes, which needs no
banking data), webhooks with deliveries to a loopback receiver, advisors with their onboarding page, status.
"""
from __future__ import annotations

import json
from urllib.parse import urlencode

import jwt
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sandbox.core.store import MemoryStore
from sandbox.spec import operations

from .checks import not_a_server_error, provider_error, response_schema_conformance, status_in
from .partial_app import fino_app
from .plugin import frozen_transport
from .transport import Receiver

OP = {name: op["id"] for name, op in operations("fino").items()}
HYPO = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
USER_SCOPES = ["banking", "banking-fetch", "banking-upload", "account-detection", "categorization", "contracts",
               "cockpits"]
UNAUTHORIZED = {"type": "unauthorized",
                "message": "Invalid authorization. Check your access tokens or tenant id and secret"}
FORBIDDEN = {"type": "forbidden", "message": "Forbidden. No access to this resource"}


@pytest.fixture
def fx(contract_options):
    with frozen_transport(contract_options, "fino",
                          lambda: fino_app({"SEED": 21}, store=MemoryStore())) as (transport, control):
        yield Fino(transport, control, contract_options)


class Fino:
    """A small finoOS client over the contract transport."""

    def __init__(self, transport, control, opts):
        self.t, self.control, self.opts = transport, control, opts
        self._token = None

    def call(self, name, **kw):
        result = self.t.call(OP[name], **kw)
        not_a_server_error(result)
        return result

    def auth(self, client_id=None, secret=None, **extra):
        form = {"client_id": client_id or self.opts["client_id"], "client_secret": secret or self.opts["client_secret"],
                "grant_type": "client_credentials", **extra}
        return self.call("authenticate", data=urlencode(form),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})

    def h(self, tenant: str | None = None, token: str | None = None) -> dict:
        if token is None:
            if self._token is None:
                r = self.auth()
                status_in(r, 200)
                self._token = r.json["access_token"]
            token = self._token
        return {"Authorization": f"Bearer {token}", **({"TenantID": tenant} if tenant else {})}

    def ok(self, name, status=200, **kw):
        r = self.call(name, **kw)
        status_in(r, status)
        if status != 204:
            response_schema_conformance(r)
        return r

    def user(self, tenant=None, **body) -> dict:
        body.setdefault("type", "person")
        return self.ok("create_user", 201, json_body=body, headers=self.h(tenant)).json["user"]

    def page(self, url: str, form: dict | None = None):
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        if form is None:
            status, headers, content, _ = self.t.send("GET", path, {}, None)
        else:
            status, headers, content, _ = self.t.send(
                "POST", path, {"Content-Type": "application/x-www-form-urlencoded"}, urlencode(form).encode())
        return status, headers, content.decode("utf-8", "replace")


# --- section 3: authentication -----------------------------------------------------------------------------------
def test_authenticate_returns_a_keycloak_style_signed_jwt(fx):
    r = fx.auth()
    status_in(r, 200)
    response_schema_conformance(r)
    body = r.json
    assert body["expires_in"] == 300 and body["token_type"] == "Bearer"
    assert 1000 <= len(body["access_token"]) <= 2200
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "JWT" and header["alg"] == "HS256" and len(header["kid"]) == 43
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 300
    assert claims["azp"] == fx.opts["client_id"] and claims["session_state"] == body["session_state"]
    assert claims["scope"].split()[2:] == body["scope"].split()
    if not fx.opts["real"]:
        booked = set(body["scope"].split())
        assert {"banking", "webhooks", "cockpits", "companiesLogo", "person-income-salary"} <= booked


@pytest.mark.parametrize("form,content_type", [
    ({"client_id": "sandbox-client", "client_secret": "sandbox-secret", "grant_type": "password"}, "form"),
    ({"client_id": "sandbox-client", "client_secret": "sandbox-secret"}, "form"),
    ({"client_secret": "sandbox-secret", "grant_type": "client_credentials"}, "form"),
    ({"client_id": "sandbox-client", "client_secret": "sandbox-secret", "grant_type": "client_credentials"}, "json"),
])
def test_authenticate_refuses_wrong_grants_and_json_with_400(fx, form, content_type):
    if content_type == "json":
        r = fx.call("authenticate", json_body=form)
    else:
        r = fx.call("authenticate", data=urlencode(form), headers={"Content-Type": "application/x-www-form-urlencoded"})
    provider_error(r, 400)
    assert r.json["type"] == "invalidInput"


def test_wrong_credentials_get_401_invalid_client(fx):
    invalid_client = {"type": "unauthorized", "message": "Invalid client credentials"}
    provider_error(fx.auth(secret="wrong-secret"), 401, invalid_client)
    provider_error(fx.auth(client_id="nobody"), 401, invalid_client)


def test_missing_or_forged_bearer_gets_401(fx):
    provider_error(fx.call("list_users"), 401, UNAUTHORIZED)
    token = fx.auth().json["access_token"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    provider_error(fx.call("list_users", headers=fx.h(token=forged)), 401, UNAUTHORIZED)


@pytest.mark.control
def test_token_lives_300_seconds_on_the_sandbox_clock(fx):
    token = fx.auth().json["access_token"]
    fx.control.clock("advance", seconds=299)
    status_in(fx.call("list_users", headers=fx.h(token=token)), 200)
    fx.control.clock("advance", seconds=1)
    provider_error(fx.call("list_users", headers=fx.h(token=token)), 401, UNAUTHORIZED)
    status_in(fx.call("list_users", headers=fx.h(token=fx.auth().json["access_token"])), 200)   # re-authenticate


@pytest.mark.control
def test_scope_echoes_booked_scopes_and_gates_endpoints(fx):
    small = fx.control.create_client(client_id="fino-small", client_secret="small-secret",
                                     scopes={"fino": ["banking", "credits", "not-a-scope"]})
    r = fx.auth(client_id=small["client_id"], secret="small-secret")
    status_in(r, 200)
    assert r.json["scope"] == "banking credits"
    h = fx.h(token=r.json["access_token"])
    provider_error(fx.call("list_webhooks", headers=h), 403, FORBIDDEN)
    provider_error(fx.call("create_webhook", json_body={"url": "https://x.example/h", "events": ["banking"]},
                           headers=h), 403, FORBIDDEN)
    status_in(fx.call("list_users", headers=h), 200)   # no scope needed


# --- sections 4 and 7: users and tenants -------------------------------------------------------------------------
def test_user_crud(fx):
    user = fx.user(customUserID="0815", name="Max Mustermann", automaticAnalysis="suspended")
    assert user["userScopes"] == USER_SCOPES and user["automaticAnalysis"] == "suspended"
    got = fx.ok("get_user", path_params={"user-id": user["userID"]}, headers=fx.h()).json
    assert got == {"context": {"client": fx.opts["client_id"], "tenant": fx.opts["client_id"]}, "user": user}
    patched = fx.ok("update_user", path_params={"user-id": user["userID"]},
                    json_body={"name": "Erika Mustermann", "customUserID": None}, headers=fx.h()).json["user"]
    assert patched == {**user, "name": "Erika Mustermann"}
    again = fx.ok("update_user", path_params={"user-id": user["userID"]}, json_body={}, headers=fx.h()).json["user"]
    assert again == patched
    for fixed in ({"type": "company"}, {"userScopes": ["banking"]}):
        r = fx.call("update_user", path_params={"user-id": user["userID"]}, json_body=fixed, headers=fx.h())
        provider_error(r, 400)
        assert r.json["type"] == "invalidInput" and next(iter(fixed)) in r.json["message"]
    provider_error(fx.call("update_user", path_params={"user-id": user["userID"]},
                           json_body={"automaticAnalysis": "sometimes"}, headers=fx.h()), 400)
    status_in(fx.call("delete_user", path_params={"user-id": user["userID"]}, headers=fx.h()), 204)
    provider_error(fx.call("get_user", path_params={"user-id": user["userID"]}, headers=fx.h()), 404)
    provider_error(fx.call("delete_user", path_params={"user-id": user["userID"]}, headers=fx.h()), 404)


@pytest.mark.parametrize("body", [{}, {"type": "robot"}, {"type": "person", "userScopes": ["webhooks"]},
                                  {"type": "person", "expiresIn": 0}, {"type": "person", "name": 5},
                                  {"type": "person", "automaticAnalysis": "on"}])
def test_create_user_refuses_bad_bodies(fx, body):
    r = fx.call("create_user", json_body=body, headers=fx.h())
    provider_error(r, 400)
    assert r.json["type"] == "invalidInput"


def test_list_users_pages_ten_with_the_context_envelope(fx):
    created = [fx.user(customUserID=f"c{i:02d}")["userID"] for i in range(12)]
    first = fx.ok("list_users", headers=fx.h()).json
    assert first["context"] == {"client": fx.opts["client_id"], "count": 12, "page": 1, "pageSize": 10,
                                "tenant": fx.opts["client_id"]}
    second = fx.ok("list_users", query={"page": "2"}, headers=fx.h()).json
    assert [u["userID"] for u in first["users"] + second["users"]] == created   # creation order, no overlap
    assert second["context"]["page"] == 2 and len(second["users"]) == 2
    assert fx.ok("list_users", query={"page": "3"}, headers=fx.h()).json["users"] == []
    for bad in ("0", "x", "-1"):
        provider_error(fx.call("list_users", query={"page": bad}, headers=fx.h()), 400)


def test_tenants_isolate_users(fx):
    mine = fx.user(tenant="acme-1", customUserID="t1")
    listed = fx.ok("list_users", headers=fx.h("acme-1")).json
    assert listed["context"]["tenant"] == "acme-1" and [u["userID"] for u in listed["users"]] == [mine["userID"]]
    assert fx.ok("list_users", headers=fx.h()).json["users"] == []
    for tenant in (None, "acme-2"):
        provider_error(fx.call("get_user", path_params={"user-id": mine["userID"]}, headers=fx.h(tenant)), 404)
        provider_error(fx.call("delete_user", path_params={"user-id": mine["userID"]}, headers=fx.h(tenant)), 404)
    status_in(fx.call("get_user", path_params={"user-id": mine["userID"]}, headers=fx.h("acme-1")), 200)


@pytest.mark.control
def test_users_of_another_client_are_not_found(fx):
    user = fx.user()
    other_client = fx.control.create_client(client_id="fino-other", client_secret="other-secret")
    other = fx.h(token=fx.auth(client_id=other_client["client_id"], secret="other-secret").json["access_token"])
    provider_error(fx.call("get_user", path_params={"user-id": user["userID"]}, headers=other), 404)
    assert fx.ok("list_users", headers=other).json["context"]["count"] == 0


def test_delete_users_reports_each_id(fx):
    a, b = fx.user()["userID"], fx.user()["userID"]
    other_tenant = fx.user(tenant="t-x")["userID"]
    r = fx.ok("delete_users", json_body={"userIDs": [a, "nope", b, a, other_tenant]}, headers=fx.h()).json
    assert r == {"users": {"deleted": [a, b], "failedToDelete": [], "notFound": ["nope", a, other_tenant]}}
    assert fx.ok("list_users", headers=fx.h()).json["context"]["count"] == 0
    provider_error(fx.call("delete_users", json_body={"userIDs": []}, headers=fx.h()), 400)
    provider_error(fx.call("delete_users", json_body={"userIDs": ["x"] * 1001}, headers=fx.h()), 400)


@pytest.mark.control
def test_users_with_expires_in_disappear_when_the_clock_passes_it(fx):
    short = fx.user(expiresIn=60)
    keep = fx.user()
    fx.control.clock("advance", seconds=59)
    status_in(fx.call("get_user", path_params={"user-id": short["userID"]}, headers=fx.h()), 200)
    fx.control.clock("advance", seconds=1)
    provider_error(fx.call("get_user", path_params={"user-id": short["userID"]}, headers=fx.h()), 404)
    listed = fx.ok("list_users", headers=fx.h()).json
    assert [u["userID"] for u in listed["users"]] == [keep["userID"]] and listed["context"]["count"] == 1


@pytest.mark.control
def test_expired_users_are_purged_without_being_read(fx):
    fx.user(expiresIn=30)
    fx.user(expiresIn=90)
    fx.control.clock("advance", seconds=45)
    assert fx.ok("list_users", headers=fx.h()).json["context"]["count"] == 1
    fx.control.clock("advance", seconds=45)
    assert fx.ok("list_users", headers=fx.h()).json["context"]["count"] == 0


# --- user scopes and the analysis lifecycle ----------------------------------------------------------------------
@pytest.mark.control
def test_user_scopes_only_grow_and_start_a_run(fx):
    user = fx.user(userScopes=["contracts", "banking"])
    assert user["userScopes"] == ["banking", "contracts"]
    uid = {"user-id": user["userID"]}
    r = fx.ok("add_user_scopes", path_params=uid, json_body={"userScopes": ["cockpits", "banking"]}, headers=fx.h())
    assert r.json["userScopes"] == ["banking", "contracts", "cockpits"]
    assert r.headers["Finoos-Correlation-Id"] == r.json["correlationID"]
    fewer = fx.ok("add_user_scopes", path_params=uid, json_body={"userScopes": ["banking"]}, headers=fx.h()).json
    assert fewer["userScopes"] == ["banking", "contracts", "cockpits"] and fewer["correlationID"] != r.json[
        "correlationID"]
    assert fx.ok("get_user", path_params=uid, headers=fx.h()).json["user"]["userScopes"] == fewer["userScopes"]
    provider_error(fx.call("add_user_scopes", path_params=uid, json_body={"userScopes": ["webhooks"]},
                           headers=fx.h()), 400)
    provider_error(fx.call("add_user_scopes", path_params={"user-id": "unknown"},
                           json_body={"userScopes": ["banking"]}, headers=fx.h()), 404)


@pytest.mark.control
def test_banking_correlation_is_404_while_running_and_200_when_done(fx):
    user = fx.user(userScopes=["banking"])
    uid = {"user-id": user["userID"]}
    provider_error(fx.call("get_banking_correlation", path_params=uid, headers=fx.h()), 404)   # no run yet
    run = fx.ok("add_user_scopes", path_params=uid, json_body={"userScopes": ["contracts"]}, headers=fx.h()).json
    fx.control.clock("advance", seconds=1.9)
    provider_error(fx.call("get_banking_correlation", path_params=uid, headers=fx.h()), 404)
    fx.control.clock("advance", seconds=0.1)
    done = fx.ok("get_banking_correlation", path_params=uid, headers=fx.h()).json
    assert done["correlationID"] == run["correlationID"]
    assert done["correlationTimestamp"][-6:] in ("+01:00", "+02:00")
    nxt = fx.ok("add_user_scopes", path_params=uid, json_body={"userScopes": ["cockpits"]}, headers=fx.h()).json
    provider_error(fx.call("get_banking_correlation", path_params=uid, headers=fx.h()), 404)   # a new run: 404 again
    fx.control.clock("advance", seconds=2)
    assert fx.ok("get_banking_correlation", path_params=uid, headers=fx.h()).json["correlationID"] == nxt[
        "correlationID"]


@pytest.mark.control
def test_results_outside_the_user_scopes_are_403(fx):
    user = fx.user(userScopes=["cockpits"])
    uid = {"user-id": user["userID"]}
    provider_error(fx.call("get_banking_correlation", path_params=uid, headers=fx.h()), 403, FORBIDDEN)
    fx.ok("add_user_scopes", path_params=uid, json_body={"userScopes": ["banking-fetch"]}, headers=fx.h())
    fx.control.clock("advance", seconds=2)
    status_in(fx.call("get_banking_correlation", path_params=uid, headers=fx.h()), 200)


def test_trigger_analysis_without_banking_data_is_409(fx):
    user = fx.user()
    provider_error(fx.call("trigger_analysis", path_params={"user-id": user["userID"]}, headers=fx.h()), 409)
    for alias in (0, 1):
        provider_error(fx.call("trigger_analysis", path_params={"user-id": user["userID"]}, headers=fx.h(),
                               alias=alias), 409)
    provider_error(fx.call("trigger_analysis", path_params={"user-id": "nobody"}, headers=fx.h()), 404)


@pytest.mark.control
def test_user_by_custom_user_id_needs_a_cockpit_and_lists_duplicates(fx):
    user = fx.user(customUserID="4711", name="Max")
    twin = fx.user(tenant="branch-2", customUserID="4711", name="Max B", type="company")
    fx.user(customUserID="other")
    other_client = fx.control.create_client(client_id="fino-other", client_secret="other-secret")
    other = fx.h(token=fx.auth(client_id=other_client["client_id"], secret="other-secret").json["access_token"])
    status_in(fx.call("create_user", json_body={"type": "person", "customUserID": "4711"}, headers=other), 201)
    path = {"custom-user-id": "4711"}
    provider_error(fx.call("get_user_by_custom_user_id", path_params=path, headers=fx.h()), 404)   # no cockpit yet
    fx.ok("add_user_scopes", path_params={"user-id": user["userID"]}, json_body={"userScopes": ["cockpits"]},
          headers=fx.h())
    fx.control.clock("advance", seconds=2)
    found = fx.ok("get_user_by_custom_user_id", path_params=path, headers=fx.h()).json
    assert found["id"] == user["userID"] and found["tenant"] == fx.opts["client_id"] and found["type"] == "person"
    assert found["duplicates"] == [{"createdAt": twin["createdAt"], "customUserID": "4711", "id": twin["userID"],
                                    "name": "Max B", "tenant": "branch-2", "type": "company"}]
    provider_error(fx.call("get_user_by_custom_user_id", path_params=path, headers=fx.h("branch-2")), 404)
    provider_error(fx.call("get_user_by_custom_user_id", path_params={"custom-user-id": "none"}, headers=fx.h()), 404)


# --- section 11: webhooks ----------------------------------------------------------------------------------------
def test_webhook_crud(fx):
    created = fx.ok("create_webhook", 201, json_body={"url": "https://hooks.example.com/fino", "method": "PUT",
                                                      "events": ["personcockpit", "banking", "banking"]},
                    headers=fx.h()).json
    assert created["method"] == "PUT" and created["events"] == ["personcockpit", "banking"] and "secret" not in created
    wid = {"webhook-id": created["id"]}
    assert fx.ok("list_webhooks", headers=fx.h()).json == {"webhooks": [created]}
    assert fx.ok("get_webhook", path_params=wid, headers=fx.h()).json == created
    with_secret = fx.ok("update_webhook", path_params=wid, json_body={"secret": "s3cr3t", "url": None},
                        headers=fx.h()).json
    assert with_secret == {**created, "secret": "s3cr3t"}
    moved = fx.ok("update_webhook", path_params=wid, json_body={"events": ["contracts"], "method": "POST"},
                  headers=fx.h()).json
    assert moved["events"] == ["contracts"] and moved["method"] == "POST" and moved["secret"] == "s3cr3t"
    cleared = fx.ok("update_webhook", path_params=wid, json_body={"secret": ""}, headers=fx.h()).json
    assert "secret" not in cleared
    status_in(fx.call("delete_webhook", path_params=wid, headers=fx.h()), 204)
    provider_error(fx.call("get_webhook", path_params=wid, headers=fx.h()), 404)
    provider_error(fx.call("delete_webhook", path_params=wid, headers=fx.h()), 404)


@pytest.mark.parametrize("body", [
    {"url": "ftp://hooks.example.com/x", "events": ["banking"]},
    {"url": "not a url", "events": ["banking"]},
    {"url": "https://hooks.example.com/x", "events": []},
    {"url": "https://hooks.example.com/x", "events": ["everything"]},
    {"url": "https://hooks.example.com/x", "events": ["banking"], "method": "GET"},
    {"events": ["banking"]},
])
def test_create_webhook_refuses_bad_bodies(fx, body):
    provider_error(fx.call("create_webhook", json_body=body, headers=fx.h()), 400)


@pytest.mark.control
def test_webhooks_are_visible_only_to_their_client_whatever_the_tenant(fx):
    hook = fx.ok("create_webhook", 201, json_body={"url": "https://h.example/x", "events": ["banking"]},
                 headers=fx.h("some-tenant")).json
    status_in(fx.call("get_webhook", path_params={"webhook-id": hook["id"]}, headers=fx.h()), 200)
    other_client = fx.control.create_client(client_id="fino-other", client_secret="other-secret")
    other = fx.h(token=fx.auth(client_id=other_client["client_id"], secret="other-secret").json["access_token"])
    provider_error(fx.call("get_webhook", path_params={"webhook-id": hook["id"]}, headers=other), 404)
    assert fx.ok("list_webhooks", headers=other).json == {"webhooks": []}


@pytest.mark.control
def test_completed_runs_are_delivered_with_method_secret_and_correlation_header(fx):
    hooks = Receiver()
    try:
        fx.ok("create_webhook", 201, json_body={"url": hooks.url + "/fino", "method": "PUT", "secret": "abc",
                                                "events": ["banking", "personcockpit", "categorization"]},
              headers=fx.h())
        user = fx.user(tenant="shop-7", customUserID="0815", userScopes=["banking", "cockpits"])
        run = fx.ok("add_user_scopes", path_params={"user-id": user["userID"]}, json_body={"userScopes": ["banking"]},
                    headers=fx.h("shop-7")).json
        fx.control.clock("advance", seconds=2)
        log = fx.control.flush_webhooks(provider="fino")
        assert sorted(d["event"] for d in log) == ["banking", "personcockpit"]   # no categorization user scope
        assert all(d["status"] == "delivered" and d["method"] == "PUT" for d in log)
        got = sorted(hooks.received, key=lambda r: json.loads(r["body"])["event"])
        assert [r["method"] for r in got] == ["PUT", "PUT"]
        for received in got:
            payload = json.loads(received["body"])
            assert received["headers"]["Finoos-Correlation-Id"] == run["correlationID"]
            assert payload["correlationID"] == run["correlationID"] and payload["secret"] == "abc"
            assert payload["userID"] == user["userID"] and payload["customUserID"] == "0815"
            assert payload["tenantID"] == "shop-7" and payload["data"]
    finally:
        hooks.close()


@pytest.mark.control
def test_failed_deliveries_are_retried_and_logged(fx):
    hooks = Receiver(status=503)
    try:
        fx.ok("create_webhook", 201, json_body={"url": hooks.url + "/h", "events": ["banking"]}, headers=fx.h())
        user = fx.user(userScopes=["banking"])
        fx.ok("add_user_scopes", path_params={"user-id": user["userID"]}, json_body={"userScopes": ["banking"]},
              headers=fx.h())
        fx.control.clock("advance", seconds=2)
        [delivery] = fx.control.flush_webhooks(provider="fino")
        assert delivery["status"] == "pending" and [a["status"] for a in delivery["attempts"]] == [503]
        fx.control.clock("advance", seconds=10)
        assert [a["status"] for a in fx.control.get(f"/webhooks/{delivery['id']}")["attempts"]] == [503, 503]
        fx.control.clock("advance", seconds=50)
        final = fx.control.get(f"/webhooks/{delivery['id']}")
        assert final["status"] == "failed" and len(final["attempts"]) == 3 and len(hooks.received) == 3
    finally:
        hooks.close()


@pytest.mark.control
def test_fire_webhook_on_demand(fx):
    hooks = Receiver()
    try:
        fx.ok("create_webhook", 201, json_body={"url": hooks.url + "/h", "events": ["banking", "contracts"],
                                                "method": "PATCH"}, headers=fx.h())
        user = fx.user(userScopes=["banking"])
        fired = fx.control._call("POST", "/webhooks/fire", {"provider": "fino", "user_id": user["userID"],
                                                            "event": "contracts", "data": {"x": 1}})["deliveries"]
        assert [d["status"] for d in fired] == ["delivered"] and fired[0]["method"] == "PATCH"
        payload = json.loads(hooks.received[0]["body"])
        assert payload["event"] == "contracts" and payload["data"] == {"x": 1} and payload["userID"] == user["userID"]
        assert hooks.received[0]["headers"]["Finoos-Correlation-Id"] == payload["correlationID"]
        every = fx.control._call("POST", "/webhooks/fire", {"provider": "fino"})["deliveries"]
        assert sorted(d["event"] for d in every) == ["banking", "contracts"]
    finally:
        hooks.close()


# --- advisors and the onboarding page ----------------------------------------------------------------------------
def test_advisor_crud(fx):
    adv = fx.ok("create_advisor", 201, json_body={"mail": "berater@example.de", "name": "Max Berater",
                                                  "phoneNumber": "0123456789", "sendMail": True}, headers=fx.h()).json
    assert adv["sendMail"] is True and adv["welcomeMail"] is False and adv["linkID"] in adv["linkURL"]
    aid = {"advisor-id": adv["id"]}
    assert fx.ok("list_advisors", headers=fx.h()).json == {"advisors": [adv]}
    assert fx.ok("get_advisor", path_params=aid, headers=fx.h()).json == adv
    upd = fx.ok("update_advisor", path_params=aid, json_body={"name": "Erika Beraterin", "mail": None},
                headers=fx.h()).json
    assert upd == {**adv, "name": "Erika Beraterin"}
    provider_error(fx.call("update_advisor", path_params=aid, json_body={"linkID": "x"}, headers=fx.h()), 400)
    provider_error(fx.call("get_advisor", path_params=aid, headers=fx.h("elsewhere")), 404)
    status_in(fx.call("delete_advisor", path_params=aid, headers=fx.h()), 204)
    provider_error(fx.call("get_advisor", path_params=aid, headers=fx.h()), 404)
    provider_error(fx.call("create_advisor", json_body={"name": "no mail"}, headers=fx.h()), 400)
    provider_error(fx.call("create_advisor", json_body={"mail": "not-an-email", "name": "x"}, headers=fx.h()), 400)


@pytest.mark.control
def test_advisor_onboarding_page_creates_a_user_assigned_to_the_advisor(fx):
    adv = fx.ok("create_advisor", 201, json_body={"mail": "berater@example.de", "name": "Max Berater"},
                headers=fx.h("bank-a")).json
    status, headers, html = fx.page(adv["linkURL"])
    assert status == 200 and "Max Berater" in html and 'name="linkID"' in html
    assert "x-frame-options" not in {k.lower() for k in headers}
    form = {"linkID": adv["linkID"], "name": "Erika <Muster>", "type": "company", "customUserID": "K-1"}
    status, _, html = fx.page(adv["linkURL"], form)   # no consent
    assert status == 400 and "einverstanden" in html and "Erika &lt;Muster&gt;" in html
    status, _, html = fx.page(adv["linkURL"], {**form, "consent": "1"})
    assert status == 200 and "Cockpit angelegt" in html
    users = fx.ok("list_users", headers=fx.h("bank-a")).json["users"]
    assert [(u["name"], u["type"], u["customUserID"], u["automaticAnalysis"]) for u in users] == [
        ("Erika <Muster>", "company", "K-1", "active")]
    assert users[0]["userID"] in html
    fx.ok("add_user_scopes", path_params={"user-id": users[0]["userID"]}, json_body={"userScopes": ["cockpits"]},
          headers=fx.h("bank-a"))
    fx.control.clock("advance", seconds=2)
    found = fx.ok("get_user_by_custom_user_id", path_params={"custom-user-id": "K-1"}, headers=fx.h("bank-a")).json
    assert found["advisorID"] == adv["id"] and found["advisorIDs"] == [adv["id"]]
    assert fx.ok("list_users", headers=fx.h()).json["users"] == []   # the advisor's tenant only
    forged = adv["linkURL"][:-3] + ("AAA" if not adv["linkURL"].endswith("AAA") else "BBB")
    assert fx.page(forged)[0] == 404
    status_in(fx.call("delete_advisor", path_params={"advisor-id": adv["id"]}, headers=fx.h("bank-a")), 204)
    assert fx.page(adv["linkURL"])[0] == 404


# --- platform status ---------------------------------------------------------------------------------------------
def test_platform_status_needs_no_auth(fx):
    r = fx.ok("get_platform_status")
    assert r.json["status"] == "ok"


# --- fuzz --------------------------------------------------------------------------------------------------------
@HYPO
@given(body=st.dictionaries(
    st.sampled_from(["type", "automaticAnalysis", "customUserID", "name", "userScopes", "expiresIn", "bogus"]),
    st.one_of(st.none(), st.booleans(), st.integers(-5, 10**10), st.text(max_size=8),
              st.sampled_from(["person", "company", "active", "suspended"]),
              st.lists(st.sampled_from([*USER_SCOPES, "webhooks", ""]), max_size=3)), max_size=5))
def test_any_create_user_body_gets_201_or_invalid_input(fx, body):
    r = fx.call("create_user", json_body=body, headers=fx.h())
    assert r.status in (201, 400), r.curl()
    response_schema_conformance(r)
    if r.status == 400:
        assert r.json["type"] == "invalidInput"


@HYPO
@given(body=st.dictionaries(st.sampled_from(["url", "method", "events", "secret", "x"]),
                            st.one_of(st.none(), st.integers(), st.text(max_size=10),
                                      st.sampled_from(["https://h.example/x", "POST", "PUT", "DELETE"]),
                                      st.lists(st.sampled_from(["banking", "contracts", "nope"]), max_size=3)),
                            max_size=4))
def test_any_update_webhook_body_gets_200_or_invalid_input(fx, body):
    hook = fx.ok("create_webhook", 201, json_body={"url": "https://h.example/x", "events": ["banking"]},
                 headers=fx.h()).json
    r = fx.call("update_webhook", path_params={"webhook-id": hook["id"]}, json_body=body, headers=fx.h())
    assert r.status in (200, 400), r.curl()
    response_schema_conformance(r)
