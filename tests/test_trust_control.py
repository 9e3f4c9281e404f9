"""Trust, control API (issue 7): an admin token locks /_sandbox, cross-site and form requests are refused, client
lists hold no secrets and clients cannot take over another client or tenant, malformed clock and policy calls get
a 400 in the control API's envelope and change nothing."""
import json

import pytest

from sandbox import create_app
from sandbox.core.context import VERSION
from sandbox.core.store import MemoryStore

TOKEN = "s3cret-admin-token"


@pytest.fixture
def locked(wall):
    app = create_app({"SEED": 7, "ADMIN_TOKEN": TOKEN}, store=MemoryStore(), system_clock=wall)
    return app.test_client()


def _neutral(resp, status: int, kind: str | None = None) -> dict:
    """The control API's envelope: {"error": {"status", "kind", "message"}}."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    body = resp.get_json()
    assert set(body) == {"error"} and body["error"]["status"] == status and body["error"]["message"], body
    if kind:
        assert body["error"]["kind"] == kind, body
    return body["error"]


def _control_routes(app):
    """Every /_sandbox route with one method each, path parameters filled with a placeholder."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/_sandbox") or rule.endpoint.endswith(".static") or rule.endpoint.startswith("_sandbox_ui."):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<{arg}>", "x").replace(f"<path:{arg}>", "x")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, path, rule.endpoint


# --- 1. admin token ------------------------------------------------------------------------------------------
def test_a_locked_control_api_refuses_every_call_without_the_token(locked):
    routes = list(_control_routes(locked.application))
    assert len(routes) > 25, routes   # admin.py and admin_flows.py both
    for method, path, endpoint in routes:
        if endpoint == "_sandbox.health":
            continue
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Sandbox-Admin-Token": TOKEN + "x"},
                        {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}):
            resp = locked.open(path, method=method, headers=headers, json={} if method != "GET" else None)
            err = _neutral(resp, 401, "unauthorized")
            assert "X-Sandbox-Admin-Token" in err["message"] and "SANDBOX_ADMIN_TOKEN" in err["message"]
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_token_opens_the_control_api_by_either_header(locked):
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"Authorization": f"bearer {TOKEN}"},
                    {"X-Sandbox-Admin-Token": TOKEN}):
        assert locked.post("/_sandbox/seed", json={"seed": 3}, headers=headers).get_json() == {"seed": 3}
        assert locked.get("/_sandbox/flows", headers=headers).status_code == 200       # admin_flows.py too
        assert locked.get("/_sandbox/clients", headers=headers).status_code == 200


def test_a_refused_call_changes_nothing(locked):
    h = {"X-Sandbox-Admin-Token": TOKEN}
    locked.post("/_sandbox/clock/freeze", json={"at": "2031-01-01T00:00:00Z"}, headers=h)
    assert locked.post("/_sandbox/reset", json={}).status_code == 401
    assert locked.post("/_sandbox/clock/set", json={"at": "2040-01-01T00:00:00Z"}).status_code == 401
    assert locked.post("/_sandbox/clients", json={"client_id": "intruder"}).status_code == 401
    assert locked.get("/_sandbox/clock", headers=h).get_json()["now"] == "2031-01-01T00:00:00.000Z"
    ids = {c["client_id"] for c in locked.get("/_sandbox/clients", headers=h).get_json()["clients"]}
    assert "intruder" not in ids


def test_health_stays_open_but_says_only_status_and_version_without_the_token(locked):
    bare = locked.get("/_sandbox/health")
    assert bare.status_code == 200 and bare.get_json() == {"status": "ok", "version": VERSION}
    full = locked.get("/_sandbox/health", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
    assert {"store", "seed", "now", "providers"} <= set(full)


def test_the_admin_token_comes_from_the_environment(monkeypatch, wall):
    monkeypatch.setenv("SANDBOX_ADMIN_TOKEN", "from-env")
    c = create_app({"SEED": 1}, store=MemoryStore(), system_clock=wall).test_client()
    assert c.get("/_sandbox/seed").status_code == 401
    assert c.get("/_sandbox/seed", headers={"X-Sandbox-Admin-Token": "from-env"}).status_code == 200


def test_without_a_token_the_control_api_stays_open(client):
    assert client.get("/_sandbox/health").get_json()["seed"] == 7
    assert client.post("/_sandbox/seed", json={"seed": 2}).get_json() == {"seed": 2}
    assert client.post("/_sandbox/tick").status_code == 200      # no body, no Content-Type: fine


# --- 2. cross-site requests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://localhost", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://localhost.evil.example"},
])
def test_cross_site_state_changes_are_refused(client, headers):
    client.post("/_sandbox/seed", json={"seed": 9})
    for method, path, body in (("POST", "/_sandbox/reset", {}), ("POST", "/_sandbox/seed", {"seed": 1}),
                               ("PUT", "/_sandbox/jobs/policy", {"mode": "manual"}),
                               ("DELETE", "/_sandbox/clients/sandbox-client", None),
                               ("POST", "/_sandbox/flows/x/complete", {"outcome": "success"})):
        err = _neutral(client.open(path, method=method, json=body, headers=headers), 403, "forbidden")
        assert "cross-site" in err["message"]
    assert client.get("/_sandbox/seed").get_json() == {"seed": 9}
    assert client.get("/_sandbox/jobs/policy").get_json()["policy"]["mode"] == "auto"


def test_cross_site_is_refused_even_with_the_admin_token(locked):
    resp = locked.post("/_sandbox/reset", json={}, headers={"X-Sandbox-Admin-Token": TOKEN,
                                                            "Origin": "https://evil.example"})
    _neutral(resp, 403, "forbidden")


@pytest.mark.parametrize("headers", [
    {},                                                          # curl, requests, the contract harness
    {"Origin": "http://localhost"},                              # the test client's own origin
    {"Origin": "http://localhost:3000"},                         # a local dev front-end (loopback to loopback)
    {"Origin": "http://127.0.0.1:5173", "Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},                                  # typed in the address bar
])
def test_same_origin_and_non_browser_clients_keep_working(client, headers):
    assert client.post("/_sandbox/seed", json={"seed": 4}, headers=headers).get_json() == {"seed": 4}


@pytest.mark.parametrize("content_type,data", [
    ("application/x-www-form-urlencoded", "tenant=sandbox-client"),
    ("application/x-www-form-urlencoded", ""),                   # <form method=post> without fields
    ("multipart/form-data; boundary=x", "--x--"),
    ("text/plain", '{"seed": 1}'),                               # fetch(no-cors) sends text/plain
    (None, '{"seed": 1}'),                                        # a body without a Content-Type
])
def test_bodies_must_be_json(client, content_type, data):
    client.post("/_sandbox/seed", json={"seed": 9})
    kw = {"content_type": content_type} if content_type else {}
    for path in ("/_sandbox/reset", "/_sandbox/seed", "/_sandbox/clients"):
        err = _neutral(client.post(path, data=data, **kw), 415, "unsupported_media_type")
        assert "application/json" in err["message"]
    assert client.get("/_sandbox/seed").get_json() == {"seed": 9}
    assert client.post("/_sandbox/seed", data='{"seed": 1}', content_type="application/json; charset=utf-8"
                       ).get_json() == {"seed": 1}


@pytest.mark.parametrize("host,status", [
    ("evil.example", 403), ("evil.example:8080", 403), ("127.0.0.1.nip.io", 403),   # DNS rebinding names
    ("localhost", 200), ("localhost:8080", 200), ("127.0.0.1:8080", 200), ("[::1]:8080", 200),
    ("192.168.1.20:8080", 200), ("api.localhost", 200),
])
def test_an_open_control_api_answers_loopback_and_ip_hosts_only(client, host, status):
    resp = client.get("/_sandbox/clients", headers={"Host": host})
    assert resp.status_code == status, resp.get_data(as_text=True)
    if status == 403:
        assert "SANDBOX_ADMIN_TOKEN" in _neutral(resp, 403)["message"]


def test_a_locked_control_api_answers_any_host_name(locked):
    resp = locked.get("/_sandbox/clients", headers={"Host": "sandbox.ci.example", "X-Sandbox-Admin-Token": TOKEN})
    assert resp.status_code == 200


# --- 3. clients: no secrets in lists, no take-over ------------------------------------------------------------
def test_client_lists_hold_no_secrets(client):
    created = client.post("/_sandbox/clients", json={"client_id": "ci-a", "client_secret": "top-secret-a"})
    assert created.status_code == 201 and created.get_json()["client_secret"] == "top-secret-a"  # returned once
    generated = client.post("/_sandbox/clients", json={}).get_json()
    assert len(generated["client_secret"]) >= 16
    listed = client.get("/_sandbox/clients")
    text = listed.get_data(as_text=True)
    for secret in ("sandbox-secret", "top-secret-a", generated["client_secret"]):
        assert secret not in text
    for entry in listed.get_json()["clients"]:
        assert set(entry) == {"client_id", "tenant", "scopes"}, entry
    assert {"sandbox-client", "ci-a", generated["client_id"]} <= {c["client_id"] for c in listed.get_json()["clients"]}


def _token(client, client_id, secret):
    return client.post("/open-finance/oauth/token", json={"userId": "u", "clientId": client_id,
                                                          "clientSecret": secret})


def test_an_existing_client_cannot_be_overwritten(client):
    assert client.post("/_sandbox/clients", json={"client_id": "ci-a", "client_secret": "a1"}).status_code == 201
    for body in ({"client_id": "ci-a", "client_secret": "evil"}, {"client_id": "sandbox-client", "client_secret": "x"},
                 {"client_id": "sandbox-client", "client_secret": "sandbox-secret", "scopes": {"open_finance": []}}):
        err = _neutral(client.post("/_sandbox/clients", json=body), 409, "conflict")
        assert "already exists" in err["message"]
    assert _token(client, "ci-a", "a1").status_code == 200 and _token(client, "ci-a", "evil").status_code == 401
    assert _token(client, "sandbox-client", "sandbox-secret").status_code == 200
    assert _token(client, "sandbox-client", "x").status_code == 401


def test_a_new_client_may_only_name_a_new_tenant(client):
    assert client.post("/_sandbox/clients", json={"client_id": "ci-a", "client_secret": "a"}).status_code == 201
    assert client.post("/_sandbox/clients", json={"client_id": "ci-b", "tenant": "team-b"}).status_code == 201
    for body in ({"client_id": "thief", "tenant": "sandbox-client"},   # the default client's tenant
                 {"client_id": "thief", "tenant": "ci-a"},             # another client's (default) tenant
                 {"client_id": "thief", "tenant": "team-b"},           # another client's named tenant
                 {"client_id": "team-b"}):                             # an id that is another client's tenant
        err = _neutral(client.post("/_sandbox/clients", json=body), 409, "conflict")
        assert "tenant" in err["message"] and "belongs to client" in err["message"]
    assert "thief" not in {c["client_id"] for c in client.get("/_sandbox/clients").get_json()["clients"]}


def test_deleting_a_client_releases_its_tenant_clean(client):
    assert client.post("/_sandbox/clients", json={"client_id": "ci-a", "client_secret": "a"}).status_code == 201
    token = _token(client, "ci-a", "a").get_json()["accessToken"]
    client.post("/open-finance/financial-report/c1", headers={"Authorization": f"Bearer {token}"})
    assert client.get("/_sandbox/jobs?tenant=ci-a").get_json()["jobs"]
    assert client.delete("/_sandbox/clients/ci-a").status_code == 204
    # the next CI job that creates "ci-a" starts from nothing: no jobs, no tokens of the previous owner
    assert client.post("/_sandbox/clients", json={"client_id": "ci-a", "client_secret": "b"}).status_code == 201
    assert client.get("/_sandbox/jobs?tenant=ci-a").get_json()["jobs"] == []
    assert client.get("/open-finance/financial-report/c1", headers={"Authorization": f"Bearer {token}"}
                      ).status_code == 401
    _neutral(client.delete("/_sandbox/clients/sandbox-client"), 409, "conflict")   # the default always exists


# --- 4. malformed numbers and types on the clock and policy calls ---------------------------------------------
def _state(client):
    return (client.get("/_sandbox/clock").get_json(), client.get("/_sandbox/clock?tenant=sandbox-client").get_json(),
            client.get("/_sandbox/jobs/policy").get_json(), client.get("/_sandbox/jobs/policy?kind=k").get_json())


BAD_NUMBERS = ["NaN", "abc", "61", True, False, [], [1], {}, 10 ** 400, 1e20, -1e20, 2 ** 63]
BAD_INSTANTS = ["garbage", "", "9999-12-31T23:59:59Z", "9001-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
                "0001-01-01T00:00:00+01:00", "10000-01-01T00:00:00Z", 0, 1.5, True, [], {}, "2030-02-30T00:00:00Z"]


def _bad_clock_bodies():
    for value in BAD_NUMBERS:
        yield "advance", {"seconds": value}
    for raw in ("NaN", "Infinity", "-Infinity", "1e309", "-1e309"):
        yield "advance", raw
    for value in BAD_INSTANTS:
        yield "set", {"at": value}
        yield "freeze", {"at": value}
    yield "set", {}
    for tenant in ([], 1, {"a": 1}, True, "_sandbox", "\ud800", "x" * 401):
        yield "advance", {"seconds": 1, "tenant": tenant}
    yield "advance", {"seconds": 2.9e11}                 # past year 9000 from 2025
    yield "advance", {"seconds": -1.8e9}                 # before 1970 from 2025


@pytest.mark.parametrize("action,body", list(_bad_clock_bodies()), ids=repr)
def test_malformed_clock_calls_get_400_and_change_nothing(client, action, body):
    client.post("/_sandbox/clock/freeze", json={"at": "2025-04-23T09:30:00Z"})
    before = _state(client)
    if isinstance(body, str):   # a raw JSON number the json module decodes as nan/inf
        resp = client.post(f"/_sandbox/clock/{action}", data='{"seconds": %s}' % body, content_type="application/json")
    else:
        resp = client.post(f"/_sandbox/clock/{action}", data=json.dumps(body, allow_nan=False),
                           content_type="application/json")
    _neutral(resp, 400)   # kind bad_request (lone_surrogate when the app-level body check catches it first)
    assert _state(client) == before


def test_the_clock_moves_within_1970_to_9000(client):
    assert client.post("/_sandbox/clock/set", json={"at": "1970-01-01T00:00:00Z"}).get_json()["now"] == \
        "1970-01-01T00:00:00.000Z"
    _neutral(client.post("/_sandbox/clock/advance", json={"seconds": -0.001}), 400)
    assert client.post("/_sandbox/clock/freeze", json={"at": "9000-12-31T23:59:59.999Z"}).get_json()["now"] == \
        "9000-12-31T23:59:59.999Z"
    err = _neutral(client.post("/_sandbox/clock/advance", json={"seconds": 0.001}), 400)
    assert "1970" in err["message"] and "9000" in err["message"]
    assert client.post("/_sandbox/clock/advance", json={"seconds": -86400}).get_json()["now"] == \
        "9000-12-30T23:59:59.999Z"
    assert client.post("/_sandbox/clock/advance", json={"seconds": 60, "tenant": "sandbox-client"}
                       ).get_json()["tenant"] == "sandbox-client"
    assert client.post("/_sandbox/clock/advance", json={}).status_code == 200          # seconds default to 0
    assert client.post("/_sandbox/clock/freeze", json={"at": None}).status_code == 200  # at defaults to now


def _bad_policies():
    for value in BAD_NUMBERS + [-1, -0.5, 315_576_000.5]:
        yield {"mode": "auto", "seconds": value}
    for value in BAD_NUMBERS + [-1, 1.5, 1_000_001]:
        yield {"mode": "auto", "polls": value}
    for mode in (None, 1, [], {}, "never", ""):
        yield {"mode": mode}
    for kind in ([], 1, "", "a|b"):
        yield {"mode": "instant", "kind": kind}
    for tenant in ([], 1, "_sandbox"):
        yield {"mode": "instant", "tenant": tenant}
    yield {"mode": "auto"}                               # needs seconds and/or polls
    yield {"mode": "auto", "seconds": None, "polls": None}
    yield [1]


@pytest.mark.parametrize("body", list(_bad_policies()), ids=repr)
def test_malformed_policies_get_400_and_change_nothing(client, body):
    client.put("/_sandbox/jobs/policy", json={"mode": "auto", "seconds": 5})
    before = _state(client)
    for method in ("PUT", "POST"):
        resp = client.open("/_sandbox/jobs/policy", method=method, data=json.dumps(body, allow_nan=False),
                           content_type="application/json")
        _neutral(resp, 400, "bad_request")
    assert _state(client) == before


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "1e309", "-1e309"])
def test_non_finite_policy_seconds_are_refused(client, raw):
    before = _state(client)
    resp = client.put("/_sandbox/jobs/policy", data='{"mode": "auto", "seconds": %s}' % raw,
                      content_type="application/json")
    _neutral(resp, 400, "bad_request")
    assert _state(client) == before


def test_policy_bounds_are_inclusive(client):
    ok = {"mode": "auto", "seconds": 315_576_000, "polls": 1_000_000}
    assert client.put("/_sandbox/jobs/policy", json=ok).get_json()["policy"] == {**ok, "seconds": 315_576_000.0}
    zero = client.put("/_sandbox/jobs/policy", json={"mode": "auto", "seconds": 0, "polls": 0}).get_json()
    assert zero["policy"]["seconds"] == 0.0
    assert client.put("/_sandbox/jobs/policy", json={"mode": "auto", "polls": 3, "kind": "k"}).get_json()["policy"] \
        == {"mode": "auto", "seconds": None, "polls": 3}


@pytest.mark.parametrize("query", ["limit=-1", "limit=0", "limit=abc", "limit=1e3", "limit=99999999999999999999"])
def test_journal_limits_are_bounded(client, query):
    _neutral(client.get(f"/_sandbox/journal?{query}"), 400, "bad_request")


def test_control_bodies_that_cannot_be_stored_get_400(client):
    before = _state(client)
    deep = '{"tenant": ' + "[" * 5000 + "]" * 5000 + "}"
    _neutral(client.post("/_sandbox/reset", data=deep, content_type="application/json"), 400)
    _neutral(client.post("/_sandbox/clients", data='{"client_id": "a\\ud800"}', content_type="application/json"), 400)
    _neutral(client.post("/_sandbox/clock/freeze", data='{"tenant": "\\udfff"}', content_type="application/json"), 400)
    assert _state(client) == before
