"""The validating proxy, record/replay and the drift report, against a served sandbox standing in for the upstream.

The upstream is a real sandbox on a free port (werkzeug, threaded, memory store) wrapped in a recorder of what it
answered, so "the proxy changes nothing" is checked byte for byte against the upstream's own answer. The proxy and
the replay server run in-process (Flask test clients); their HTTP calls to the upstream are real."""
from __future__ import annotations

import base64
import gzip
import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from click.testing import CliRunner
from werkzeug.serving import make_server

from sandbox import create_app
from sandbox.core.store import MemoryStore
from sandbox.testing.cassettes import PLACEHOLDER, load_cassettes, value_matches
from sandbox.testing.drift import drift_report, undeclared_fields
from sandbox.testing.proxy import create_proxy_app, create_replay_app
from sandbox.testing.proxy_cli import drift as drift_command
from sandbox.testing.pytest_plugin import SandboxServer, _free_port, open_tenant

CALLBACK = "https://my-app.example.com/callback"


class Recorder:
    """WSGI middleware keeping what the upstream app answered to every provider call (not the control API)."""

    def __init__(self, app):
        self.app, self.seen = app, []

    def __call__(self, environ, start_response):
        got = {}

        def capture(status, headers, exc_info=None):
            got.update(status=int(status.split()[0]), headers=list(headers))
            return start_response(status, headers, exc_info)
        chunks = self.app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        if not environ["PATH_INFO"].startswith("/_sandbox"):
            self.seen.append(dict(got, method=environ["REQUEST_METHOD"], path=environ["PATH_INFO"], body=body))
        return [body]


def serve(app):
    port = _free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop():
        httpd.shutdown()
        httpd.server_close()
    return f"http://127.0.0.1:{port}", stop


def start_upstream(seed: int):
    """A served sandbox (memory store) behind a Recorder; returns it and the function that stops it."""
    app = create_app({"SEED": seed}, store=MemoryStore())
    recorder = Recorder(app)
    url, stop = serve(recorder)
    server = SandboxServer(url, None, app)
    server.recorder = recorder
    return server, stop


@pytest.fixture(scope="module")
def upstream():
    server, stop = start_upstream(7)
    yield server
    stop()


@pytest.fixture
def tenant(upstream):
    t = open_tenant(upstream.control, upstream.url, upstream.prefixes(), label="proxy")
    t.freeze()   # links carry expiry times: a frozen tenant clock makes two reads byte-identical
    yield t
    t.close()


def proxy_for(upstream, provider: str, record=None):
    prefix = upstream.prefixes()[provider]
    return create_proxy_app(provider, upstream.url + prefix, record=record, timeout=30).test_client()


def same_as_upstream(resp, upstream) -> None:
    """The proxied answer is the upstream's last answer: status, body bytes and every header, plus a verdict."""
    sent = upstream.recorder.seen[-1]
    assert resp.status_code == sent["status"]
    assert resp.get_data() == sent["body"]
    for key, value in sent["headers"]:
        assert resp.headers.get(key) == value, key


def valid(resp) -> None:
    assert resp.headers["X-Sandbox-Contract"] == "valid", resp.headers.get("X-Sandbox-Contract-Reason")


# --- flows, used by several tests --------------------------------------------------------------------------------
def stepper(seen: list, upstream=None):
    """A flow's step: keep the response; through the proxy (``upstream`` given) it must be valid and byte-equal to
    what the upstream answered."""
    def step(resp):
        seen.append(resp)
        if upstream is not None:
            valid(resp)
            same_as_upstream(resp, upstream)
        return resp
    return step


def open_finance_flow(client, tenant, upstream=None) -> list:
    """token -> create report -> poll (RUNNING, RUNNING) -> complete the job -> poll (DONE) -> read again."""
    seen = []
    step = stepper(seen, upstream)
    if upstream is not None:
        tenant.job_policy("open_finance.financial_report", mode="manual")
    token = step(client.post("/oauth/token", json={"userId": "john@example.com", "clientId": tenant.client_id,
                                                    "clientSecret": tenant.client_secret}))
    assert token.status_code == 200
    auth = {"Authorization": f"Bearer {token.get_json()['accessToken']}"}
    job = step(client.post("/financial-report/318422557", headers=auth, content_type="application/json"))
    job_id = job.get_json()["jobId"]
    for _ in range(2):
        assert step(client.get(f"/financial-report/{job_id}?withPdf=1", headers=auth)).get_json() == \
            {"status": "RUNNING"}
    if upstream is not None:
        tenant.complete_job(job_id)
    done = step(client.get(f"/financial-report/{job_id}?withPdf=1", headers=auth))
    assert done.get_json()["status"] == "DONE" and done.get_json()["financialReport"]["customerId"] == "318422557"
    step(client.get(f"/v2/financial-report/{job_id}", headers=auth))   # the catalogue alias, same operation
    return seen


def finleap_flow(client, tenant, upstream=None, code=None) -> list:
    """link (Basic) -> [user finishes the widget: control API] -> token (authorization_code) -> income report."""
    seen = []
    step = stepper(seen, upstream)
    basic = {"Authorization": "Basic " + base64.b64encode(
        f"{tenant.client_id}:{tenant.client_secret}".encode()).decode()}
    link = step(client.post("/onetime/income-report", headers=basic,
                            json={"redirect_uri": CALLBACK, "state": "7fe78733"})).get_json()
    if code is None:
        redirect = tenant.complete_flow(link["id"])["redirect_url"]
        code = parse_qs(urlsplit(redirect).query)["code"][0]
    token = step(client.post("/auth/token", headers=basic, json={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK})).get_json()
    report = step(client.get(f"/rest/income-reports/{link['id']}",
                             headers={"Authorization": f"Bearer {token['access_token']}"}))
    assert report.status_code == 200
    return seen, code, token


def finpass_flow(client, tenant, upstream=None) -> list:
    """AA init -> fetch (422 consent pending) -> [consent approved: control API] -> fetch until 200."""
    seen = []
    keys = {"x-api-key": tenant.client_id, "x-api-secret": tenant.client_secret}

    def step(resp):
        seen.append(resp)
        if upstream is not None:
            valid(resp)
            same_as_upstream(resp, upstream)
        return resp
    init = step(client.post("/api/v1/services/account-aggregator/init", headers=keys, json={
        "mobile_number": "9876543210", "consent_type": "loan_underwriting", "redirect_url": CALLBACK}))
    client_id = init.get_json()["data"]["client_id"]
    fetch = lambda: step(client.post("/api/v1/services/account-aggregator/fetch-json-report", headers=keys,  # noqa
                                     json={"client_id": client_id}))
    assert fetch().status_code == 422
    if upstream is not None:
        tenant.complete_flow(client_id)
    statuses = []
    for _ in range(8):
        statuses.append(fetch().status_code)
        if statuses[-1] == 200:
            break
    assert statuses[0] == 202 and statuses[-1] == 200, statuses
    return seen


# --- (1) a client's whole flow through the proxy, unchanged ------------------------------------------------------
def test_open_finance_flow_through_the_proxy_is_the_upstreams(upstream, tenant):
    client = proxy_for(upstream, "open_finance")
    seen = open_finance_flow(client, tenant, upstream)
    assert [r.headers["X-Sandbox-Operation"] for r in seen] == [
        "open_finance.create_token", "open_finance.create_financial_report"] + \
        ["open_finance.get_financial_report"] * 4
    # the same read straight from the upstream, with the token the proxy passed through
    token = seen[0].get_json()["accessToken"]
    job_id = seen[1].get_json()["jobId"]
    direct = requests.get(f"{upstream.url}/open-finance/financial-report/{job_id}?withPdf=1",
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert direct.status_code == 200 and direct.json() == seen[4].get_json()
    assert "X-Sandbox-Contract" not in direct.headers
    # the proxy journals each exchange with its verdict, secrets redacted
    entries = client.get("/_proxy/journal?limit=50").get_json()["entries"]
    assert [e["verdict"]["verdict"] for e in entries] == ["valid"] * 6
    assert entries[-1]["request"]["body"]["clientSecret"] == "[redacted]"
    assert tenant.client_secret not in json.dumps(entries) and token not in json.dumps(entries)
    assert client.get("/_proxy/journal?limit=0").status_code == 400


def test_finleap_and_finpass_flows_through_the_proxy(upstream, tenant):
    seen, _, _ = finleap_flow(proxy_for(upstream, "finleap"), tenant, upstream)
    assert [r.status_code for r in seen] == [201, 200, 200]
    seen = finpass_flow(proxy_for(upstream, "finpass"), tenant, upstream)
    assert seen[1].status_code == 422 and seen[1].get_json()["message_code"] == "consent_pending"


# --- (2) verdicts ------------------------------------------------------------------------------------------------
def test_an_invalid_request_is_forwarded_and_marked(upstream, tenant):
    client = proxy_for(upstream, "open_finance")
    resp = client.post("/oauth/token", json={"clientId": tenant.client_id, "clientSecret": tenant.client_secret})
    same_as_upstream(resp, upstream)            # the upstream's own 400 passes through
    assert resp.status_code == 400
    assert upstream.recorder.seen[-1]["path"] == "/open-finance/oauth/token"
    assert resp.headers["X-Sandbox-Contract"] == "request-invalid"
    assert resp.headers["X-Sandbox-Contract-Reason"] == "request /userId: 'userId' is a required property"
    # the other side of the boundary: the same call with userId is valid
    valid(client.post("/oauth/token", json={"userId": "u1", "clientId": tenant.client_id,
                                            "clientSecret": tenant.client_secret}))


def test_unknown_paths_and_methods_are_unknown_operations(upstream):
    client = proxy_for(upstream, "open_finance")
    resp = client.get("/no/such/thing")
    same_as_upstream(resp, upstream)
    assert upstream.recorder.seen[-1]["path"] == "/open-finance/no/such/thing"
    assert resp.headers["X-Sandbox-Contract"] == "unknown-operation"
    assert resp.headers["X-Sandbox-Contract-Reason"] == "no open_finance operation for GET /no/such/thing"
    wrong_method = client.delete("/oauth/token")
    assert wrong_method.headers["X-Sandbox-Contract"] == "unknown-operation"
    assert "for POST, not DELETE" in wrong_method.headers["X-Sandbox-Contract-Reason"]


def fake_upstream(body: dict, status: int = 200):
    """A tiny upstream answering every call with ``body``: a provider whose answers changed."""
    def app(environ, start_response):
        data = json.dumps(body).encode()
        start_response(f"{status} X", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]
    return serve(app)


def test_a_tampered_upstream_response_is_response_invalid():
    url, stop = fake_upstream({"tokenType": "Bearer", "expiresIn": "one day", "accessToken": "x" * 20})
    try:
        client = create_proxy_app("open_finance", url).test_client()
        resp = client.post("/oauth/token", json={"userId": "u", "clientId": "c", "clientSecret": "s"})
        assert resp.get_json()["expiresIn"] == "one day"      # passed through unchanged
        assert resp.headers["X-Sandbox-Contract"] == "response-invalid"
        assert resp.headers["X-Sandbox-Contract-Reason"] == "response /expiresIn: 'one day' is not of type 'integer'"
    finally:
        stop()
    url, stop = fake_upstream({"tokenType": "Bearer", "expiresIn": 60, "accessToken": "x" * 20})
    try:   # the boundary: the same answer with the right type is valid
        valid(create_proxy_app("open_finance", url).test_client().post(
            "/oauth/token", json={"userId": "u", "clientId": "c", "clientSecret": "s"}))
    finally:
        stop()


def test_a_compressed_answer_passes_byte_for_byte_and_is_still_judged():
    def app(environ, start_response):
        data = gzip.compress(json.dumps({"tokenType": "Bearer", "expiresIn": 0, "accessToken": "x" * 20}).encode())
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                                  ("Content-Length", str(len(data)))])
        return [data]
    url, stop = serve(app)
    try:
        resp = create_proxy_app("open_finance", url).test_client().post(
            "/oauth/token", json={"userId": "u", "clientId": "c", "clientSecret": "s"},
            headers={"Accept-Encoding": "gzip"})
        assert resp.headers["Content-Encoding"] == "gzip"
        assert json.loads(gzip.decompress(resp.get_data()))["expiresIn"] == 0
        assert resp.headers["X-Sandbox-Contract-Reason"] == "response /expiresIn: 0 is less than the minimum of 1"
    finally:
        stop()


def test_an_unreachable_upstream_is_a_502_json():
    port = _free_port()   # nothing listens there
    client = create_proxy_app("finpass", f"http://127.0.0.1:{port}", timeout=5).test_client()
    resp = client.post("/api/v1/services/account-aggregator/init", json={})
    assert resp.status_code == 502 and resp.headers["X-Sandbox-Contract"] == "upstream-unreachable"
    error = resp.get_json()["error"]
    assert error["kind"] == "upstream_unreachable" and f"127.0.0.1:{port}" in error["message"]
    assert "Traceback" not in resp.get_data(as_text=True)


# --- (3) record and replay ---------------------------------------------------------------------------------------
def same_but_secrets(replayed: list, live: list) -> None:
    """Replayed answers equal the live ones in order: same status, same bytes, except that secrets (tokens, link
    signatures) are their placeholders, each standing for the live value."""
    assert len(replayed) == len(live)
    for got, want in zip(replayed, live):
        assert got.status_code == want.status_code
        if PLACEHOLDER.search(got.get_data(as_text=True)):
            assert got.get_json() != want.get_json() and value_matches(got.get_json(), want.get_json())
        else:
            assert got.get_data() == want.get_data()


def test_record_redacts_secrets_and_replay_serves_the_flows_without_upstream(tmp_path):
    server, stop = start_upstream(11)
    url = server.url
    tenant = open_tenant(server.control, url, server.prefixes(), label="rec")
    tenant.freeze()
    rec = tmp_path / "cassettes"
    try:
        of = open_finance_flow(proxy_for(server, "open_finance", rec), tenant, server)
        fl, code, fl_token = finleap_flow(proxy_for(server, "finleap", rec), tenant, server)
        fp = finpass_flow(proxy_for(server, "finpass", rec), tenant, server)
        secret = tenant.client_secret
    finally:
        stop()
    files = sorted(rec.glob("*.json"))
    assert len(files) == len(of) + len(fl) + len(fp)
    text = "\n".join(f.read_text() for f in files)
    of_token = of[0].get_json()["accessToken"]
    basic = base64.b64encode(f"{tenant.client_id}:{secret}".encode()).decode()
    for value in (secret, of_token, basic, code, fl_token["access_token"], fl_token["refresh_token"]):
        assert value not in text
    first = json.loads(files[0].read_text())
    assert first["operation"] == "open_finance.create_token" and first["verdict"]["verdict"] == "valid"
    assert first["request"]["body"]["clientSecret"].startswith("redacted-")
    placeholder = first["response"]["body"]["accessToken"]
    second = json.loads(files[1].read_text())
    assert dict(second["request"]["headers"])["Authorization"] == f"Bearer {placeholder}"   # stable placeholder

    # replay, the upstream stopped: the same flows, the same statuses and bodies in the same order
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/_sandbox/health", timeout=2)
    cassettes = load_cassettes(rec)
    replay = create_replay_app(cassettes).test_client()
    replayed = open_finance_flow(replay, tenant)
    assert replayed[0].get_json() == dict(of[0].get_json(), accessToken=placeholder)
    same_but_secrets(replayed, of)
    same_but_secrets(finleap_flow(replay, tenant, code="any-code")[0], fl)
    replay_fp = finpass_flow(replay, tenant)
    same_but_secrets(replay_fp, fp)
    assert [r.status_code for r in replay_fp] == [200, 422] + [202] * (len(fp) - 3) + [200]
    # the last recorded answer repeats
    again = replay.post("/api/v1/services/account-aggregator/fetch-json-report", headers={},
                        json={"client_id": fp[0].get_json()["data"]["client_id"]})
    assert (again.status_code, again.get_json()) == (fp[-1].status_code, fp[-1].get_json())
    # an unmatched request: a clear 404
    missing = replay.get("/rest/income-reports/never-recorded")
    assert missing.status_code == 404 and missing.headers["X-Sandbox-Replay"] == "unmatched"
    assert missing.get_json()["error"]["message"] == "nothing was recorded for GET /rest/income-reports/never-recorded"
    other_body = replay.post("/api/v1/services/account-aggregator/fetch-json-report", json={"client_id": "aa_nope"})
    assert other_body.status_code == 200    # one recorded request for that path: the body does not choose
    other_query = replay.get(f"/financial-report/{of[1].get_json()['jobId']}?withPdf=0")
    assert other_query.status_code == 404 and "other query strings" in other_query.get_json()["error"]["message"]


def test_replay_lets_the_body_choose_when_recordings_differ_by_body(tmp_path):
    def cassette(n, user, token):
        return {"provider": "open_finance", "operation": "open_finance.create_token",
                "request": {"method": "POST", "path": "/oauth/token", "query": "", "headers": [],
                            "bodyFormat": "json", "body": {"userId": user, "clientId": "c",
                                                           "clientSecret": "redacted-clientsecret-1"}},
                "response": {"status": 200, "headers": [["Content-Type", "application/json"]], "bodyFormat": "json",
                             "body": {"tokenType": "Bearer", "expiresIn": 60, "accessToken": token}},
                "verdict": {"verdict": "valid"}}
    for n, (user, token) in enumerate([("alice", "a" * 20), ("bob", "b" * 20)]):
        (tmp_path / f"s-{n:05d}.json").write_text(json.dumps(cassette(n, user, token)))
    replay = create_replay_app(load_cassettes(tmp_path)).test_client()
    for user, token in [("bob", "b" * 20), ("alice", "a" * 20)]:
        got = replay.post("/oauth/token", json={"userId": user, "clientId": "c", "clientSecret": "real one"})
        assert got.get_json()["accessToken"] == token
    nobody = replay.post("/oauth/token", json={"userId": "carol", "clientId": "c", "clientSecret": "x"})
    assert nobody.status_code == 404 and "other request bodies" in nobody.get_json()["error"]["message"]


# --- (4) drift ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded(upstream, tmp_path_factory):
    """Cassettes of the Open Finance, finleap and Finpass flows against the sandbox upstream."""
    rec = tmp_path_factory.mktemp("drift") / "cassettes"
    t = open_tenant(upstream.control, upstream.url, upstream.prefixes(), label="drift")
    t.freeze()
    try:
        open_finance_flow(proxy_for(upstream, "open_finance", rec), t, upstream)
        finleap_flow(proxy_for(upstream, "finleap", rec), t, upstream)
        finpass_flow(proxy_for(upstream, "finpass", rec), t, upstream)
    finally:
        t.close()
    return rec


def test_drift_of_a_sandbox_recording_is_none(recorded):
    report = drift_report(load_cassettes(recorded))
    assert report["providers"] == ["finleap", "finpass", "open_finance"]
    assert report["drift"] is False, json.dumps(report, indent=1)[:3000]
    result = CliRunner().invoke(drift_command, [str(recorded)])
    assert result.exit_code == 0 and "no drift" in result.output


def test_drift_reports_each_edit_exactly(recorded, tmp_path):
    edited = tmp_path / "edited"
    edited.mkdir()
    files = sorted(recorded.glob("*.json"))
    for f in files:
        (edited / f.name).write_text(f.read_text())

    def edit(operation: str, index: int, change) -> str:
        name = [f.name for f in files if json.loads(f.read_text())["operation"] == operation][index]
        data = json.loads((edited / name).read_text())
        change(data)
        (edited / name).write_text(json.dumps(data))
        return name

    # an undeclared field deep in the DONE report, a required field removed, an unlisted status, an unknown path
    def add_field(d):
        d["response"]["body"]["financialReport"]["checkingAccountsILS"][0]["overdraftLimitEUR"] = 5
    f_added = edit("open_finance.get_financial_report", 2, add_field)
    f_removed = edit("open_finance.create_financial_report", 0, lambda d: d["response"]["body"].pop("jobId"))
    f_status = edit("finleap.create_token", 0, lambda d: d["response"].update(status=203))
    f_path = edit("finpass.aa_init", 0, lambda d: d["request"].update(path="/api/v1/services/account-aggregator/nit"))

    report = drift_report(load_cassettes(edited))
    assert report["drift"] is True
    assert [(i["operation"], i["path"], i["example"], i["files"]) for i in report["undeclaredFields"]] == [
        ("open_finance.get_financial_report", "/financialReport/checkingAccountsILS/*/overdraftLimitEUR",
         "/financialReport/checkingAccountsILS/0/overdraftLimitEUR", [f_added])]
    assert [(i["operation"], i["status"], i["pointer"], i["message"], i["files"]) for i in
            report["schemaViolations"]] == [
        ("open_finance.create_financial_report", 200, "/jobId", "'jobId' is a required property", [f_removed])]
    assert [(i["operation"], i["status"], i["listed"], i["files"]) for i in report["unlistedStatuses"]] == [
        ("finleap.create_token", 203, [200, 400, 401, 500], [f_status])]
    assert [(i["provider"], i["method"], i["path"], i["files"]) for i in report["unmatchedRequests"]] == [
        ("finpass", "POST", "/api/v1/services/account-aggregator/nit", [f_path])]

    result = CliRunner().invoke(drift_command, [str(edited), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output) == report
    text = CliRunner().invoke(drift_command, [str(edited)])
    assert text.exit_code == 1 and "DRIFT FOUND" in text.output
    assert "open_finance.get_financial_report 200 /financialReport/checkingAccountsILS/*/overdraftLimitEUR" in \
        text.output
    assert "open_finance.create_financial_report 200 /jobId: 'jobId' is a required property" in text.output
    assert "finleap.create_token 203" in text.output
    assert "POST /api/v1/services/account-aggregator/nit" in text.output


def test_drift_cli_refuses_unusable_input(tmp_path):
    assert CliRunner().invoke(drift_command, [str(tmp_path / "missing")]).exit_code == 2
    assert CliRunner().invoke(drift_command, [str(tmp_path)]).exit_code == 2          # no cassettes
    (tmp_path / "x.json").write_text('{"not": "a cassette"}')
    result = CliRunner().invoke(drift_command, [str(tmp_path)])
    assert result.exit_code == 2 and "x.json: not a cassette" in result.output


def test_undeclared_fields_skip_free_form_objects_and_follow_refs():
    sid = "https://provider-sandbox.local/schemas/open_finance/create_token.response.json"
    assert undeclared_fields(sid, {"tokenType": "Bearer", "expiresIn": 1, "accessToken": "x"}) == []
    assert undeclared_fields(sid, {"tokenType": "Bearer", "a": {"b": 1}}) == [("/a", "/a")]
    ref = "https://provider-sandbox.local/schemas/open_finance/create_financial_report.response.json"
    assert undeclared_fields(ref, {"jobId": "x", "when": 1}) == [("/when", "/when")]


def test_redactor_uses_one_stable_placeholder_per_secret_and_keeps_the_rest():
    from sandbox.testing.cassettes import Redactor

    token = "eyJ" + "t" * 40
    basic = base64.b64encode(b"client-a:very-secret-pw").decode()
    cassette = {
        "request": {"method": "POST", "path": "/auth/token", "query": "state=abc&code=one-time-code-1",
                    "headers": [["Authorization", f"Basic {basic}"], ["x-api-key", "key-123"]],
                    "bodyFormat": "form", "body": [["grant_type", "authorization_code"], ["code", "one-time-code-1"],
                                                   ["password", "pw"]]},
        "response": {"status": 200, "headers": [["Set-Cookie", "sid=abcdef; Path=/"]], "bodyFormat": "json",
                     "body": {"access_token": token, "token_type": "Bearer", "code": "INVALID_REQUEST",
                              "location": f"https://x.example/widget/?token={token}&lang=de",
                              "echo": "very-secret-pw"}}}
    out = Redactor().exchange(cassette)
    text = json.dumps(out)
    for secret in (token, basic, "one-time-code-1", "key-123", "abcdef", "very-secret-pw", '"pw"'):
        assert secret not in text, secret
    body = out["response"]["body"]
    assert body["token_type"] == "Bearer" and body["code"] == "INVALID_REQUEST"   # not secrets: kept
    assert body["location"] == f"https://x.example/widget/?token={body['access_token']}&lang=de"   # same placeholder
    assert out["request"]["query"] == f"state=abc&code={dict(out['request']['body'])['code']}"
    assert out["request"]["headers"][0][1].startswith("Basic redacted-")
    assert PLACEHOLDER.fullmatch(body["echo"])
