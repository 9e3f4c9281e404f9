import pytest

from sandbox.core.auth import Auth
from sandbox.core.clock import Clock
from sandbox.core.errors import Forbidden, Unauthorized
from sandbox.core.ids import IdGen
from sandbox.core.journal import REDACTED, Journal, redact
from sandbox.core.store import MemoryStore

from .conftest import FakeWall


@pytest.fixture
def auth():
    store = MemoryStore()
    clock = Clock(store, FakeWall())
    return Auth(store, clock, IdGen(store, 1)), clock


def test_default_client_and_custom_clients(auth):
    a, _ = auth
    assert a.authenticate_client("sandbox-client", "sandbox-secret")["tenant"] == "sandbox-client"
    assert a.authenticate_client("sandbox-client", "nope") is None
    assert a.authenticate_client(None, "x") is None
    c = a.create_client(scopes={"open_finance": ["read:accounts"]})
    assert a.authenticate_client(c["client_id"], c["client_secret"])["tenant"] == c["client_id"]
    assert a.allowed_scopes(c, "open_finance", ["read:accounts", "read:connections"]) == ["read:accounts"]
    assert a.allowed_scopes(c, "finleap", ["x"]) == ["x"]
    assert {x["client_id"] for x in a.clients()} == {"sandbox-client", c["client_id"]}


def test_tokens_expire_on_the_clock_and_check_scope_and_provider(auth):
    a, clock = auth
    client = a.default_client()
    a.issue("p", client, "tok", 60, subject="u", scopes=["s1"])
    assert a.verify("p", "tok", scope="s1")["subject"] == "u"
    with pytest.raises(Forbidden):
        a.verify("p", "tok", scope="s2")
    with pytest.raises(Unauthorized):
        a.verify("other", "tok")
    with pytest.raises(Unauthorized):
        a.verify("p", "tok", kind="refresh")
    clock.advance(60)
    with pytest.raises(Unauthorized):
        a.verify("p", "tok")


def test_consume_is_single_use_and_leaves_foreign_tokens_alone(auth):
    a, _ = auth
    client = a.default_client()
    a.issue("p", client, "code", 60, kind="code")
    a.issue("p", client, "access", 60, kind="access")
    assert a.consume("p", "access", "code") is None
    assert a.lookup("p", "access") is not None  # presenting an access token as a code must not burn it
    assert a.consume("p", "code", "code")["kind"] == "code"
    assert a.consume("p", "code", "code") is None


def test_deleting_a_client_kills_its_tokens_and_tenant_reset_forgets_tokens(auth):
    a, _ = auth
    c = a.create_client("c1", "s1")
    a.issue("p", c, "t1", 60)
    assert a.lookup("p", "t1")
    a.delete_client("c1")
    assert a.lookup("p", "t1") is None
    c = a.create_client("c2", "s2")
    a.issue("p", c, "t2", 60)
    a.forget_tenant("c2")
    assert a.lookup("p", "t2") is None


def test_redaction():
    body = {"clientSecret": "s", "userId": "u", "nested": [{"access_token": "a", "refresh_token": "r", "ok": 1}],
            "password": "", "code": "c", "country_code": "DE"}
    out = redact(body)
    assert out["clientSecret"] == REDACTED and out["nested"][0]["access_token"] == REDACTED
    assert out["nested"][0]["refresh_token"] == REDACTED and out["nested"][0]["ok"] == 1
    assert out["code"] == "c" and out["userId"] == "u" and out["country_code"] == "DE"   # whole names only
    assert redact(body, frozenset({"code"}))["code"] == REDACTED   # a request body's top-level OAuth code


def test_journal_entries_redact_headers_and_text_bodies_and_trim():
    store = MemoryStore()
    j = Journal(store, keep=3)
    e = j.entry(at="x", provider="p", operation="p.op", method="POST", path="/x", query="", status=400,
                duration_ms=1.0, req_headers={"Authorization": "Bearer abc", "X-Other": "1"},
                req_body=b'{"clientSecret": "hunter2", bad json', req_type="application/json",
                resp_body=b'{"ok": true}', resp_type="application/json", verdict={})
    assert e["request"]["headers"]["Authorization"] == REDACTED and e["request"]["headers"]["X-Other"] == "1"
    assert "hunter2" not in str(e)
    for _ in range(600):
        j.record("t", e)
    assert len(j.read("t", limit=5000)) <= 100 + 3


def test_control_api_round_trip(client):
    assert client.get("/_sandbox/health").json["status"] == "ok"
    assert client.post("/_sandbox/seed", json={"seed": 5}).json == {"seed": 5}
    assert client.post("/_sandbox/seed", json={"seed": "x"}).status_code == 400
    frozen = client.post("/_sandbox/clock/freeze", json={"at": "2030-01-01T00:00:00Z"}).json
    assert frozen["now"] == "2030-01-01T00:00:00.000Z" and frozen["frozen"]
    assert client.post("/_sandbox/clock/advance", json={"seconds": 61}).json["now"] == "2030-01-01T00:01:01.000Z"
    assert client.post("/_sandbox/clock/nope", json={}).status_code == 404
    assert client.post("/_sandbox/clock/set", json={"at": "not a date"}).status_code == 400
    assert client.put("/_sandbox/jobs/policy", json={"mode": "instant"}).json["policy"] == {"mode": "instant"}
    assert client.put("/_sandbox/jobs/policy", json={"mode": "never"}).status_code == 400
    created = client.post("/_sandbox/clients", json={"client_id": "c9", "client_secret": "s9"})
    assert created.status_code == 201
    assert "c9" in {c["client_id"] for c in client.get("/_sandbox/clients").json["clients"]}
    assert client.delete("/_sandbox/clients/c9").status_code == 204
    assert client.delete("/_sandbox/clients/c9").status_code == 404
    assert client.get("/_sandbox/jobs/NOPE").status_code == 404
    assert "open_finance" in client.get("/_sandbox/scenarios").json
    ops = client.get("/_sandbox/operations").json["open_finance"]
    assert ops["create_token"]["path"] == "/open-finance/oauth/token"
    assert client.post("/_sandbox/reset", data="[1]", content_type="application/json").status_code == 400
    assert client.post("/_sandbox/reset", json={}).json == {"reset": "all"}
    assert client.get("/_sandbox/seed").json == {"seed": 5}  # reset keeps the seed


def test_jobs_over_the_control_api(client):
    tok = client.post("/open-finance/oauth/token", json={"userId": "u", "clientId": "sandbox-client",
                                                         "clientSecret": "sandbox-secret"}).json["accessToken"]
    h = {"Authorization": f"Bearer {tok}"}
    job_id = client.post("/open-finance/financial-report/c1", headers=h).json["jobId"]
    listed = client.get("/_sandbox/jobs?tenant=sandbox-client").json["jobs"]
    assert [j["id"] for j in listed] == [job_id] and listed[0]["state"] == "RUNNING"
    assert client.post(f"/_sandbox/jobs/{job_id}/complete", json={}).json["state"] == "DONE"
    assert client.get(f"/open-finance/financial-report/{job_id}", headers=h).json["status"] == "DONE"
    assert client.post(f"/_sandbox/jobs/{job_id}/fail", json={}).status_code == 409
    assert client.post(f"/_sandbox/jobs/{job_id}/explode", json={}).status_code == 404


def test_tenant_reset_leaves_other_tenants_alone(client):
    client.post("/_sandbox/clients", json={"client_id": "org-b", "client_secret": "b"})

    def flow(cid, secret):
        tok = client.post("/open-finance/oauth/token", json={"userId": "u", "clientId": cid,
                                                             "clientSecret": secret}).json["accessToken"]
        h = {"Authorization": f"Bearer {tok}"}
        return h, client.post("/open-finance/financial-report/c1", headers=h).json["jobId"]

    ha, ja = flow("sandbox-client", "sandbox-secret")
    hb, jb = flow("org-b", "b")
    client.post("/_sandbox/reset", json={"tenant": "org-b"})
    assert client.get(f"/open-finance/financial-report/{ja}", headers=ha).status_code == 200
    assert client.get(f"/open-finance/financial-report/{jb}", headers=hb).status_code == 401  # its tokens are gone


def test_unknown_routes_and_errors_are_json_never_html(client):
    for path in ("/nothing", "/open-finance/nothing", "/_sandbox/nothing"):
        r = client.get(path)
        assert r.status_code == 404 and r.is_json
    assert client.get("/").json["providers"]["open_finance"] == "/open-finance"


def test_debug_mode_validates_responses(wall):
    from sandbox import create_app
    app = create_app({"DEBUG_VALIDATE_RESPONSES": True}, store=MemoryStore(), system_clock=wall)
    c = app.test_client()
    r = c.post("/open-finance/oauth/token", json={"userId": "u", "clientId": "sandbox-client",
                                                  "clientSecret": "sandbox-secret"})
    assert r.status_code == 200 and "X-Sandbox-Response-Invalid" not in r.headers
    entry = c.get("/_sandbox/journal").json["entries"][0]
    assert entry["verdict"] == {"request": "ok", "response": "ok"}


@pytest.mark.parametrize("body, named", [
    ({"userId": 42, "clientId": "journaled", "clientSecret": "journaled-secret-123"}, True),   # invalid body
    ({"userId": 42, "clientId": "journaled", "clientSecret": "wrong"}, True),   # invalid body, wrong secret too
    ({"userId": 42, "clientId": "nobody", "clientSecret": "x"}, False),         # names no client
])
def test_a_body_refused_before_authentication_is_journaled_to_the_client_it_names(client, body, named):
    """Open Finance's token takes its credentials in the body, which is validated first: the refusal still reaches
    the journal of the client the body names (that client's author must see it), and never anybody else's."""
    assert client.post("/_sandbox/clients", json={"client_id": "journaled",
                                                  "client_secret": "journaled-secret-123"}).status_code == 201
    r = client.post("/open-finance/oauth/token", json=body)
    assert r.status_code == 400
    mine = client.get("/_sandbox/journal?tenant=journaled").get_json()["entries"]
    default = client.get("/_sandbox/journal?tenant=sandbox-client").get_json()["entries"]
    assert default == []
    if named:
        assert [(e["operation"], e["status"]) for e in mine] == [("open_finance.create_token", 400)]
        assert mine[0]["verdict"]["request"] != "ok" and mine[0]["request"]["body"]["clientSecret"] == "[redacted]"
    else:
        assert mine == []
