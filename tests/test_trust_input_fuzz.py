"""Issue 7: every hostile input of "No 500, no unbounded work" sent to EVERY served operation and page (generated
from the app's operation table, so a new operation or provider is swept without editing this file), with valid
credentials (Open Finance: a token; finleap: Basic and a Bearer from a completed widget flow). Each must get a
4xx in the provider's own error schema (``schemas/<provider>/error.json``), never a 5xx, and change nothing stored
(journal and id sequences aside)."""
from __future__ import annotations

import base64
import io
import json
import re
import sqlite3
from pathlib import Path

import pytest
from werkzeug.test import EnvironBuilder

from sandbox import create_app
from sandbox.core.store import MemoryStore, SQLiteStore
from sandbox.core.validation import schema_id

CALLBACK = "https://my-app.example.com/callback"
BASIC = {"Authorization": "Basic " + base64.b64encode(b"sandbox-client:sandbox-secret").decode()}
LIMIT = 1024 * 1024
VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _table() -> list[tuple[str, str]]:
    app = create_app({"SEED": 3}, store=MemoryStore())
    return [(p, n) for p, m in sorted(app.extensions["sandbox"].providers.items()) for n in m.ops]


OPERATIONS = _table()


# --- the world: one tenant with real data behind every id ------------------------------------------------------------
class World:
    def __init__(self, tmp_path):
        self.db = str(tmp_path / "fuzz.db")
        self.app = create_app({"SEED": 3, "JOB_DELAY": 0}, store=SQLiteStore(self.db))
        self.sandbox = self.app.extensions["sandbox"]
        self.client = self.app.test_client()
        self.auth: dict[str, dict] = {}
        self.ids: dict[str, str] = {}
        self._open_finance()
        self._finleap()
        self._finpass()
        self._fino()

    def _open_finance(self):
        r = self.client.post("/open-finance/oauth/token", json={"userId": "fuzz@example.com",
                                                                "clientId": "sandbox-client",
                                                                "clientSecret": "sandbox-secret"})
        self.auth["open_finance"] = {"Authorization": f"Bearer {r.json['accessToken']}"}
        job = self.client.post("/open-finance/financial-report/318422557", headers=self.auth["open_finance"])
        self.ids.update(customerId="318422557", jobId=job.json["jobId"])
        assert self.client.get(f"/open-finance/financial-report/{job.json['jobId']}",
                               headers=self.auth["open_finance"]).json["status"] == "DONE"

    def _finleap(self):
        link = self.client.post("/finleap/onetime/income-report", json={"redirect_uri": CALLBACK}, headers=BASIC)
        done = self.client.post(f"/_sandbox/flows/{link.json['id']}/complete", json={"outcome": "success"})
        code = re.search(r"[?&]code=([^&]+)", done.json["redirect_url"]).group(1)
        token = self.client.post("/finleap/auth/token", headers=BASIC, json={
            "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}).json["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        self.auth["finleap"] = bearer
        account = self.client.get("/finleap/rest/accounts", headers=bearer).json["accounts"][0]["account_id"]
        txn = self.client.get("/finleap/rest/transactions?count=1", headers=bearer).json["transactions"][0]
        access = self.client.get("/finleap/rest/accesses", headers=bearer).json["accesses"][0]["id"]
        note = self.client.post("/finleap/rest/notifications", headers=bearer, json={
            "observe_key": "/rest/transactions", "notify_uri": CALLBACK}).json["notification_id"]
        sync = self.client.post(f"/finleap/rest/accesses/{access}/syncs", headers=bearer, json={}).json["id"]
        self.ids.update(id=link.json["id"], account_id=account, transaction_id=txn["transaction_id"],
                        access_id=access, notification_id=note, sync_id=sync)

    def _finpass(self):
        keys = {"x-api-key": "sandbox-client", "x-api-secret": "sandbox-secret"}
        self.auth["finpass"] = keys
        r = self.client.post("/finpass/api/v1/services/account-aggregator/init", headers=keys, json={
            "mobile_number": "9876543210", "consent_type": "loan_underwriting"})
        assert r.status_code == 200, r.get_data(as_text=True)
        self.ids["client_id"] = r.json["data"]["client_id"]
        self.ids["report_no"] = "1"

    def _fino(self):
        r = self.client.post("/fino/api/auth", data={"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                                                     "grant_type": "client_credentials"})
        assert r.status_code == 200, r.get_data(as_text=True)
        bearer = {"Authorization": f"Bearer {r.json['access_token']}", "User-IP": "203.0.113.7"}
        self.auth["fino"] = bearer
        user = self.client.post("/fino/api/users", headers=bearer, json={"type": "person"}).json["user"]["userID"]
        self.ids["user-id"] = user
        test = self.client.post(f"/fino/api/users/{user}/banking/test-account", headers=bearer, json={}).json
        self.ids["banklogin-id"] = test["bankLoginId"]
        self.ids["account-id"] = test["data"][0]["accountId"]
        hook = self.client.post("/fino/api/webhooks", headers=bearer, json={
            "url": "https://receiver.example/fino", "events": ["banking"]})
        assert hook.status_code == 201, hook.get_data(as_text=True)
        self.ids["webhook-id"] = hook.json.get("id") or hook.json.get("webhookID") or hook.json.get("webhook", {}).get("id", "x")
        advisor = self.client.post("/fino/api/advisors", headers=bearer, json={"mail": "a@b.example", "name": "A"})
        self.ids["advisor-id"] = advisor.json.get("id") or advisor.json.get("advisor", {}).get("id", "x")

    def headers(self, provider: str, op) -> dict:
        """Valid credentials for ``op`` on every mounted provider (a new provider must add its own here)."""
        if op.auth == "basic":
            return dict(BASIC)
        if op.auth in ("bearer", "keys"):
            return dict(self.auth[provider])
        return {}

    def path(self, provider: str, op) -> str:
        mounted = self.sandbox.providers[provider]
        prefix = mounted.pages_prefix if op.kind == "page" else mounted.prefix
        return prefix + re.sub(r"\{([^}]+)\}", lambda m: self.ids.get(m.group(1), "x"), op.path)

    def dump(self) -> list:
        with sqlite3.connect(self.db) as conn:
            return conn.execute("SELECT tenant, coll, key, value FROM kv WHERE coll NOT IN ('journal', 'seq') "
                                "ORDER BY 1, 2, 3").fetchall()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return World(tmp_path_factory.mktemp("fuzz"))


# --- the hostile inputs ------------------------------------------------------------------------------------------------
def deep(depth):
    return lambda w, env: _body(env, "[" * depth + "]" * depth)


def surrogate_body(w, env):
    _body(env, '{"\\ud800": "\\udfff", "state": "x\\udbff"}')


EXAMPLES = Path(__file__).with_name("schema_examples")


def surrogate_in_valid_body(w, env):
    """The operation's own valid example body with a lone surrogate appended to every string: only the
    surrogate is wrong, so the request reaches as far as a valid one would."""
    provider, name = env["fuzz.op"].split(".", 1)
    examples = sorted(EXAMPLES.glob(f"{provider}/{name}.request.valid-*.json"))
    body = json.loads(examples[0].read_text()) if examples else {"state": "x"}

    def spoil(node):
        if isinstance(node, str):
            return node + "\udc00"
        if isinstance(node, dict):
            return {k: spoil(v) for k, v in node.items()}
        return [spoil(v) for v in node] if isinstance(node, list) else node
    spoiled = spoil(body)
    if spoiled == body and isinstance(body, dict):   # an example without strings: add one
        spoiled["state"] = "\udc00"
    _body(env, json.dumps(spoiled))


def _body(env, text: str):
    data = text.encode()
    env["wsgi.input"], env["CONTENT_LENGTH"], env["CONTENT_TYPE"] = io.BytesIO(data), str(len(data)), "application/json"


def surrogate_in(key):
    def apply(w, env):
        if key == "PATH_INFO":
            env[key] = env[key].rstrip("/") + "\ud800"
        elif key == "QUERY_STRING":
            env[key] = (env[key] + "&" if env[key] else "") + "q=\udc00"
        else:
            env[key] = "a\udfff"
    return apply


def chunked_over_limit(w, env):
    env.pop("CONTENT_LENGTH", None)
    env["HTTP_TRANSFER_ENCODING"], env["wsgi.input_terminated"] = "chunked", True
    env["wsgi.input"], env["CONTENT_TYPE"] = io.BytesIO(b" " * (LIMIT + 1)), "application/json"


def declared_over_limit(w, env):
    env["wsgi.input"], env["CONTENT_LENGTH"] = io.BytesIO(b""), str(LIMIT + 1)   # nothing is read: never sent
    env["CONTENT_TYPE"] = "application/json"


INPUTS = {
    "deep-1000": (deep(1000), "body"), "deep-100000": (deep(100_000), "body"),
    "surrogate-body": (surrogate_body, "body"), "surrogate-valid-body": (surrogate_in_valid_body, "body"), "surrogate-path": (surrogate_in("PATH_INFO"), "any"),
    "surrogate-query": (surrogate_in("QUERY_STRING"), "any"), "surrogate-header": (surrogate_in("HTTP_X_FUZZ"), "any"),
    "chunked-over-limit": (chunked_over_limit, "any"), "declared-over-limit": (declared_over_limit, "any"),
}


def call(app, env):
    out = {}

    def start_response(status, headers, exc_info=None):
        out["status"], out["headers"] = int(status.split()[0]), dict(headers)

    body = b"".join(app(env, start_response))
    return out["status"], out["headers"], body


def check_rejected(world, provider, op, status, headers, body, before, allowed=range(400, 500)):
    assert status in allowed, (op.id, status, body[:300])
    if op.kind == "operation" or headers.get("Content-Type", "").startswith("application/json"):
        errors = world.sandbox.schemas.errors(schema_id(provider, "error"), json.loads(body))
        assert not errors, (op.id, body[:300], errors[:2])
    assert world.dump() == before, f"{op.id}: a rejected request changed the store"


CASES = [(p, n, i) for p, n in OPERATIONS for i in INPUTS]


@pytest.mark.parametrize("provider,name,kind", CASES, ids=[f"{p}.{n}-{i}" for p, n, i in CASES])
def test_hostile_input_is_a_4xx_in_the_provider_envelope_and_changes_nothing(world, provider, name, kind):
    op = world.sandbox.providers[provider].ops[name]
    apply, scope = INPUTS[kind]
    for method, _ in op.routes[:1]:
        if scope == "body" and (op.body == "none" or op.kind == "page"):
            pytest.skip(f"{op.id} reads no body")   # a body it never reads is ignored, as by the providers
        env = EnvironBuilder(path=world.path(provider, op), method=method,
                             headers=world.headers(provider, op)).get_environ()
        env["fuzz.op"] = op.id
        apply(world, env)
        before = world.dump()
        status, headers, body = call(world.app, env)
        expected = range(413, 414) if "over-limit" in kind else range(400, 500)
        check_rejected(world, provider, op, status, headers, body, before, expected)


@pytest.mark.parametrize("provider,name", OPERATIONS, ids=[f"{p}.{n}" for p, n in OPERATIONS])
def test_an_unserved_method_names_the_allowed_ones(world, provider, name):
    """finleap (and the control API): 405 with Allow. Open Finance: Express's 404, still with Allow."""
    op = world.sandbox.providers[provider].ops[name]
    path = world.path(provider, op)
    adapter = world.app.url_map.bind("localhost")
    served = set()
    for verb in VERBS:
        try:
            adapter.match(path, method=verb)
            served.add(verb)
        except Exception:
            pass
    verb = next((v for v in VERBS if v not in served), None)
    if verb is None:   # e.g. finoOS /users/{id}/banking/accounts answers GET, POST, PUT, PATCH and DELETE
        pytest.skip(f"every method of {sorted(VERBS)} is served on {path}")
    env = EnvironBuilder(path=path, method=verb, headers=world.headers(provider, op)).get_environ()
    before = world.dump()
    status, headers, body = call(world.app, env)
    check_rejected(world, provider, op, status, headers, body, before, range(404, 406))
    assert served <= {m.strip() for m in headers["Allow"].split(",")}, (op.id, headers)
