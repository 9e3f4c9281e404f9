"""The benchmark's operations: how to bring a sandbox into the state each one needs, and the request it sends.

One definition serves ``bench/run.py`` (over HTTP, against ``sandbox serve``) and ``bench/profile_worker.py``
(in-process, Flask's test client): ``prepare(op, send)`` runs the set-up calls through ``send`` and returns the
load request ``(method, path, headers, body)``. ``send(method, path, headers, body) -> (status, headers, bytes)``.

Operations: the Open Finance report flow (``token``, ``create-report``, ``poll-report``) and one heavy read per
provider (issue 14): ``of-transactions`` (a page of the Open Finance v2 transactions), ``finleap-transactions``
(``GET /finleap/rest/transactions`` after a completed widget flow), ``fino-cockpit`` (the finoOS person cockpit
after an analysis run over a 12-month upload) and ``finpass-report`` (the Finpass AA JSON report after an approved
consent). Set-up uses the control API (``/_sandbox``) where a human would click through a hosted page.
"""
from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parents[1]
USER = "bench@example.com"
CUSTOMER = "318422557"
CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"
TOKEN_BODY = json.dumps({"userId": USER, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}, separators=(",", ":"))
REPORT_FLOW = ("token", "create-report", "poll-report")
HEAVY_READS = ("of-transactions", "finleap-transactions", "fino-cockpit", "finpass-report")
OPERATIONS = REPORT_FLOW + HEAVY_READS
JSON = {"Content-Type": "application/json"}
CALLBACK = "https://bench.example.com/callback"
FINPASS_AA = "/finpass/api/v1/services/account-aggregator"
PAGE = 100   # transactions per page of the two transaction reads (a client's usual page, not the 500 maximum)
# The ceiling's route per operation (Flask rules): it answers any id there with the captured bytes.
ROUTES = {
    "token": ("POST", "/open-finance/oauth/token"),
    "create-report": ("POST", "/open-finance/financial-report/<customer>"),
    "poll-report": ("GET", "/open-finance/financial-report/<job>"),
    "of-transactions": ("GET", "/open-finance/v2/data/transactions"),
    "finleap-transactions": ("GET", "/finleap/rest/transactions"),
    "fino-cockpit": ("GET", "/fino/api/users/<user>/cockpit/person"),
    "finpass-report": ("POST", FINPASS_AA + "/fetch-json-report"),
}


class FlowError(RuntimeError):
    """A set-up call did not answer as expected (the message says which and what it got)."""


def _json(send, method, path, headers=None, body=None, expect=(200,)):
    raw = body if body is None or isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    status, _, content = send(method, path, {**(JSON if raw is not None else {}), **(headers or {})}, raw)
    if status not in expect:
        raise FlowError(f"{method} {path}: HTTP {status} (expected {expect}): {content[:300]!r}")
    return json.loads(content) if content else None


def of_token(send) -> str:
    return _json(send, "POST", "/open-finance/oauth/token", body=TOKEN_BODY.encode())["accessToken"]


def prepare(op: str, send) -> tuple[str, str, dict, bytes | None]:
    """Set ``op``'s state up through ``send``; the load request ``(method, path, headers, body)``."""
    if op == "token":
        return "POST", "/open-finance/oauth/token", dict(JSON), TOKEN_BODY.encode()
    if op in ("create-report", "poll-report", "of-transactions"):
        bearer = {"Authorization": f"Bearer {of_token(send)}"}
        job = _json(send, "POST", f"/open-finance/financial-report/{CUSTOMER}", bearer)["jobId"]  # generates data
        if op == "create-report":
            return "POST", f"/open-finance/financial-report/{CUSTOMER}", {**bearer, **JSON}, None
        if op == "of-transactions":
            return "GET", f"/open-finance/v2/data/transactions?limit={PAGE}", bearer, None
        for _ in range(2):   # RUNNING, then DONE (--job-delay: the bench advances the clock past it)
            _json(send, "POST", "/_sandbox/clock/advance", body={"seconds": 60})
            if _json(send, "GET", f"/open-finance/financial-report/{job}", bearer).get("status") == "DONE":
                return "GET", f"/open-finance/financial-report/{job}", bearer, None
        raise FlowError(f"report job {job} not DONE after the clock moved 2 minutes")
    if op == "finleap-transactions":
        return _finleap(send)
    if op == "fino-cockpit":
        return _fino(send)
    if op == "finpass-report":
        return _finpass(send)
    raise ValueError(f"unknown operation {op!r}")


def _finleap(send):
    basic = {"Authorization": "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()}
    link = _json(send, "POST", "/finleap/onetime/income-report", basic,
                 {"redirect_uri": CALLBACK, "state": "bench"}, expect=(201,))
    done = _json(send, "POST", f"/_sandbox/flows/{link['id']}/complete",
                 body={"outcome": "success", "provider": "finleap"})
    code = dict(parse_qsl(urlsplit(done["redirect_url"]).query)).get("code")
    if not code:
        raise FlowError(f"finleap flow completed without a code: {done}")
    token = _json(send, "POST", "/finleap/auth/token", basic,
                  {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK})["access_token"]
    return "GET", f"/finleap/rest/transactions?count={PAGE}", {"Authorization": f"Bearer {token}"}, None


def _fino(send, months: int = 12):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from contract_tests.test_fino_cockpits import person_upload   # the scale test's realistic upload

    _json(send, "PUT", "/_sandbox/jobs/policy", body={"mode": "manual", "kind": "fino.analysis"})
    form = f"client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&grant_type=client_credentials".encode()
    status, _, content = send("POST", "/fino/api/auth", {"Content-Type": "application/x-www-form-urlencoded"}, form)
    if status != 200:
        raise FlowError(f"POST /fino/api/auth: HTTP {status}: {content[:300]!r}")
    h = {"Authorization": f"Bearer {json.loads(content)['access_token']}"}
    uid = _json(send, "POST", "/fino/api/users", h, {"type": "person", "automaticAnalysis": "suspended"},
                expect=(200, 201))["user"]["userID"]
    accounts, _ = person_upload(months, 185)
    for a in accounts:
        _json(send, "POST", f"/fino/api/users/{uid}/banking/accounts", h, {"accounts": [{**a, "transactions": []}]},
              expect=(200, 201))
        for i in range(0, len(a["transactions"]), 1500):
            _json(send, "POST", f"/fino/api/users/{uid}/banking/accounts/{a['accountId']}/transactions", h,
                  {"transactions": a["transactions"][i:i + 1500]}, expect=(200, 201, 202))
    _json(send, "POST", f"/fino/api/users/{uid}/trigger-analysis", h, expect=(200, 201, 202))
    jobs = _json(send, "GET", "/_sandbox/jobs?kind=fino.analysis")["jobs"]
    for job in jobs:
        if job.get("state") not in ("DONE", "FAILED"):
            _json(send, "POST", f"/_sandbox/jobs/{job['id']}/advance", body={"tenant": job["tenant"]})
    _json(send, "DELETE", "/_sandbox/jobs/policy?kind=fino.analysis", expect=(200, 204, 404))
    path = f"/fino/api/users/{uid}/cockpit/person"
    _json(send, "GET", path, h)
    return "GET", path, h, None


def _finpass(send):
    keys = {"x-api-key": CLIENT_ID, "x-api-secret": CLIENT_SECRET}
    init = _json(send, "POST", f"{FINPASS_AA}/init", keys,
                 {"mobile_number": "9876543210", "consent_type": "loan_underwriting", "pan_number": "ABCPK1234L"})
    client_id = init["data"]["client_id"]
    _json(send, "POST", f"/_sandbox/flows/{client_id}/complete", body={"outcome": "success"})
    body = json.dumps({"client_id": client_id}).encode()
    for _ in range(10):
        status, _, content = send("POST", f"{FINPASS_AA}/fetch-json-report", {**keys, **JSON}, body)
        if status == 200:
            return "POST", f"{FINPASS_AA}/fetch-json-report", {**keys, **JSON}, body
        if status != 202:
            raise FlowError(f"finpass fetch-json-report: HTTP {status}: {content[:300]!r}")
        _json(send, "POST", "/_sandbox/clock/advance", body={"seconds": 60})
    raise FlowError("finpass report still 202 after the clock moved 10 minutes")


def wsgi_sender(app):
    """``send`` over Flask's test client (in-process, no socket)."""
    client = app.test_client()

    def send(method, path, headers=None, body=None):
        r = client.open(path, method=method, headers=headers or {}, data=body)
        return r.status_code, dict(r.headers), r.get_data()
    return send
