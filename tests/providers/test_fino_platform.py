"""finoOS platform area: JWTs, Berlin timestamps, the analysis lifecycle on real banking data, user deletion,
webhook payloads and determinism (unit level, with direct access to the app's store)."""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from types import SimpleNamespace
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jwt
import pytest

from contract_tests.partial_app import fino_app
from sandbox.core.store import MemoryStore
from sandbox.ledger.generator import generate_ledger
from sandbox.providers.fino import model, tokens
from sandbox.providers.fino.platform import Platform, berlin_timestamp

TENANT = "sandbox-client"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CREDS = urlencode({"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                   "grant_type": "client_credentials"})


class Recorder:
    def __init__(self, status=200):
        self.sent, self.status = [], status

    def __call__(self, method, url, body, headers, timeout=5.0):
        self.sent.append({"method": method, "url": url, "body": json.loads(body), "headers": headers})
        return self.status, None


@pytest.fixture
def env():
    recorder = Recorder()
    app = fino_app({"SEED": 7, "SECRET_KEY": "unit-key"}, store=MemoryStore(), webhook_sender=recorder)
    client = app.test_client()
    client.post("/_sandbox/clock/freeze", json={"at": "2024-01-22T13:08:47Z"})
    token = client.post("/fino/api/auth", data=CREDS, headers=FORM).json["access_token"]
    return SimpleNamespace(app=app, c=client, sb=app.extensions["sandbox"], rec=recorder,
                           h={"Authorization": f"Bearer {token}"}, token=token)


def seed_banking(sb, tenant: str, user_id: str, seed: int = 3) -> tuple[int, int]:
    """Put a German ledger's accounts and transactions into the shared model (as upload/connect would)."""
    ledger = generate_ledger(seed, user_id, date(2024, 1, 21), market="DE")
    scope = SimpleNamespace(sandbox=sb, tenant=tenant)
    n_tx = 0
    for i, acc in enumerate(ledger.accounts):
        model.accounts(scope, user_id).create({"accountId": acc.id, "iban": acc.iban, "name": acc.name,
                                               "balance": float(acc.balance), "bankCode": acc.bank_code})
        for t in acc.transactions:
            booked = int(datetime.combine(t.booking_date, time(12), tzinfo=timezone.utc).timestamp())
            model.transactions(scope, user_id, acc.id).create({
                "transactionId": t.id, "accountId": acc.id, "amount": float(t.amount), "currency": "EUR",
                "bookingDate": booked, "valueDate": booked, "purpose": t.description or "",
                "paymentPartner": {"name": t.counterparty or ""}})
            n_tx += 1
        model.bank_logins(scope, user_id).create({"bankLoginId": f"{i:024x}"})
    return len(ledger.accounts), n_tx


def new_user(env, tenant=None, **body) -> str:
    headers = {**env.h, **({"TenantID": tenant} if tenant else {})}
    r = env.c.post("/fino/api/users", json={"type": "person", **body}, headers=headers)
    assert r.status_code == 201, r.json
    return r.json["user"]["userID"]


# --- section 13: correlation timestamps in Berlin time -------------------------------------------------------------
@pytest.mark.parametrize("instant", [
    "2024-03-31T00:59:59Z", "2024-03-31T01:00:00Z", "2024-10-27T00:59:59Z", "2024-10-27T01:00:00Z",
    "2025-03-30T00:59:59Z", "2025-03-30T01:00:00Z", "2025-10-26T00:59:59Z", "2025-10-26T01:00:00Z",
    "2024-01-22T13:08:47Z", "2024-07-01T23:30:00Z", "2027-12-31T23:59:59Z"])
def test_berlin_timestamps_match_the_tz_database(instant):
    at = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    expected = at.astimezone(ZoneInfo("Europe/Berlin")).isoformat(timespec="seconds")
    assert berlin_timestamp(at) == expected == berlin_timestamp(instant)


# --- section 3: the JWT --------------------------------------------------------------------------------------------
def test_access_token_is_signed_with_the_store_key_and_carries_keycloak_claims(env):
    claims = tokens.decode_access_token(env.sb, env.token, TENANT)
    assert claims["exp"] - claims["iat"] == 300
    assert claims["iat"] == int(datetime(2024, 1, 22, 13, 8, 47, tzinfo=timezone.utc).timestamp())
    assert claims["preferred_username"] == "service-account-sandbox-client" and claims["tenant"] == TENANT
    assert claims["sub"] == tokens.service_account_id("sandbox-client")
    header = jwt.get_unverified_header(env.token)
    assert header["kid"] == tokens.key_id(tokens.signing_key(env.sb, TENANT))
    head, payload, sig = env.token.split(".")
    with pytest.raises(jwt.InvalidTokenError):
        tokens.decode_access_token(env.sb, f"{head}.{payload}.{sig[::-1]}", TENANT)
    with pytest.raises(jwt.InvalidTokenError):   # another tenant's key does not verify it
        tokens.decode_access_token(env.sb, env.token, "someone-else")


def test_same_seed_key_and_calls_give_identical_tokens_and_ids():
    def run():
        app = fino_app({"SEED": 11, "SECRET_KEY": "k"}, store=MemoryStore())
        c = app.test_client()
        c.post("/_sandbox/clock/freeze", json={"at": "2024-05-01T08:00:00Z"})
        auth = c.post("/fino/api/auth", data=CREDS, headers=FORM).json
        user = c.post("/fino/api/users", json={"type": "company"},
                      headers={"Authorization": f"Bearer {auth['access_token']}"}).json
        return auth, user
    assert run() == run()


# --- section 6: the analysis lifecycle on real data ---------------------------------------------------------------
def test_trigger_analysis_runs_on_the_users_banking_data(env):
    uid = new_user(env, customUserID="0815")
    n_acc, n_tx = seed_banking(env.sb, TENANT, uid)
    assert n_acc >= 1 and n_tx > 50
    r = env.c.post(f"/fino/api/users/{uid}/trigger-analysis", headers=env.h)
    assert r.status_code == 200 and r.headers["Finoos-Correlation-Id"] == r.json["correlationID"]
    cid = r.json["correlationID"]
    again = env.c.post(f"/fino/api/users/{uid}/analyze", headers=env.h)   # alias, run in progress
    assert again.status_code == 409 and again.json["type"] == "conflict"
    assert env.c.get(f"/fino/api/users/{uid}/banking/correlation", headers=env.h).status_code == 404
    env.c.post("/_sandbox/clock/advance", json={"seconds": 2})
    done = env.c.get(f"/fino/api/users/{uid}/banking/correlation", headers=env.h)
    assert done.json == {"correlationID": cid, "correlationTimestamp": "2024-01-22T14:08:49+01:00"}
    results = env.sb.runs.results(TENANT, model.ANALYSIS, uid)
    assert results["banking"] == {"accounts": n_acc, "transactions": n_tx}
    second = env.c.post(f"/fino/api/users/{uid}/analysis", headers=env.h)   # done: a new run may start
    assert second.status_code == 200 and second.json["correlationID"] != cid


def test_start_analysis_respects_automatic_analysis_only_when_asked(env):
    active, suspended = new_user(env), new_user(env, automaticAnalysis="suspended")
    ctx = SimpleNamespace(tenant=TENANT)
    with env.app.test_request_context():
        service = env.sb.providers["fino"].service
        assert service.start_analysis(ctx, suspended, trigger="sync", only_if_active=True) is None
        run = service.start_analysis(ctx, active, trigger="sync", only_if_active=True)
        assert run["status"] == "running" and run["params"]["trigger"] == "sync"
        assert service.start_analysis(ctx, suspended, trigger="upload")["subject"] == suspended
        announced = "cc451d48-dbc2-4ea4-894a-fb4b299f9e56"
        assert service.start_analysis(ctx, active, trigger="connect", correlation_id=announced)["id"] == announced
        chosen = service.new_user(TENANT, type="person", user_id="client-chosen-id")
        assert chosen["userID"] == "client-chosen-id" and chosen["automaticAnalysis"] == "active"
        from sandbox.core.errors import Conflict
        with pytest.raises(Conflict):
            service.new_user(TENANT, type="person", user_id="client-chosen-id")


def test_runs_finish_instantly_under_an_instant_policy(env):
    env.c.put("/_sandbox/jobs/policy", json={"mode": "instant", "kind": model.ANALYSIS})
    uid = new_user(env)
    seed_banking(env.sb, TENANT, uid)
    cid = env.c.post(f"/fino/api/users/{uid}/trigger-analysis", headers=env.h).json["correlationID"]
    assert env.c.get(f"/fino/api/users/{uid}/banking/correlation", headers=env.h).json["correlationID"] == cid


# --- section 7: deleting a user deletes its data -------------------------------------------------------------------
def test_delete_user_removes_all_its_data_and_calls_area_hooks(env, monkeypatch):
    forgotten = []
    monkeypatch.setattr(Platform, "forget_user", lambda self, tenant, user_id: forgotten.append((tenant, user_id)),
                        raising=False)
    gone, kept = new_user(env), new_user(env)
    seed_banking(env.sb, TENANT, gone, seed=1)
    _, kept_tx = seed_banking(env.sb, TENANT, kept, seed=2)
    assert env.c.delete(f"/fino/api/users/{gone}", headers=env.h).status_code == 204
    assert forgotten == [(TENANT, gone)]
    scope = SimpleNamespace(sandbox=env.sb, tenant=TENANT)
    assert model.accounts(scope, gone).count() == 0 and model.bank_logins(scope, gone).count() == 0
    assert env.sb.collection(TENANT, model.TRANSACTIONS, scope=gone).count() == 0
    assert env.sb.collection(TENANT, model.TRANSACTIONS, scope=kept).count() == kept_tx
    assert model.accounts(scope, kept).count() > 0


def test_expired_users_lose_their_data_too(env):
    uid = new_user(env, expiresIn=10)
    seed_banking(env.sb, TENANT, uid)
    env.c.post("/_sandbox/clock/advance", json={"seconds": 10})
    assert env.c.get("/fino/api/users", headers=env.h).json["context"]["count"] == 0
    assert env.sb.collection(TENANT, model.TRANSACTIONS, scope=uid).count() == 0
    assert env.sb.store.list(TENANT, "fino.user_expiry") == []


# --- section 11: delivery details ----------------------------------------------------------------------------------
def test_deliveries_carry_the_secret_in_the_payload_not_an_hmac_header(env):
    env.c.post("/fino/api/webhooks", json={"url": "https://hooks.example.com/f", "method": "PUT", "secret": "geheim",
                                           "events": ["banking", "companycockpit"]}, headers=env.h)
    uid = new_user(env, tenant="filiale 1", type="company", userScopes=["banking-upload", "cockpits"])
    seed_banking(env.sb, f"{TENANT}/filiale%201", uid)
    cid = env.c.post(f"/fino/api/users/{uid}/trigger-analysis",
                     headers={**env.h, "TenantID": "filiale 1"}).json["correlationID"]
    env.c.post("/_sandbox/clock/advance", json={"seconds": 2})
    env.c.post("/_sandbox/tick", json={})
    sent = sorted(env.rec.sent, key=lambda s: s["body"]["event"])
    assert [s["body"]["event"] for s in sent] == ["banking", "companycockpit"]
    for s in sent:
        assert s["method"] == "PUT" and s["headers"]["Finoos-Correlation-Id"] == cid
        assert not any(k.lower().endswith("signature") for k in s["headers"])
        assert s["body"]["secret"] == "geheim" and s["body"]["tenantID"] == "filiale 1"
        assert s["body"]["timestamp"] == "2024-01-22T14:08:49+01:00"
    assert sent[0]["body"]["data"]["accounts"] >= 1
    log = env.c.get(f"/_sandbox/webhooks?tenant={TENANT}&provider=fino").json["deliveries"]
    assert len(log) == 2 and {d["status"] for d in log} == {"delivered"}


def test_fire_webhook_refuses_a_nested_tenant_and_unknown_users(env):
    service = env.sb.providers["fino"].service
    from sandbox.core.errors import BadRequest, NotFound
    with env.app.test_request_context():
        with pytest.raises(BadRequest):
            service.fire_webhook(f"{TENANT}/x", {})
        with pytest.raises(NotFound):
            service.fire_webhook(TENANT, {"user_id": "nobody"})
        with pytest.raises(BadRequest):
            service.fire_webhook(TENANT, {"event": "nope"})
        assert service.fire_webhook(TENANT, {}) == []   # no subscriptions: nothing to send


def test_advisor_link_ids_are_bound_to_their_tenant(env):
    service = env.sb.providers["fino"].service
    adv = env.c.post("/fino/api/advisors", json={"mail": "b@example.de", "name": "B"},
                     headers={**env.h, "TenantID": "t1"}).json
    tenant, found = service.resolve_link(adv["linkID"])
    assert tenant == f"{TENANT}/t1" and found["id"] == adv["id"]
    payload, mac = adv["linkID"].split(".")
    import base64
    forged = base64.urlsafe_b64encode(json.dumps(["other-client", adv["id"]]).encode()).rstrip(b"=").decode()
    from sandbox.core.errors import NotFound
    for bad in (f"{forged}.{mac}", "x", "a.b.c", f"{payload}.", ""):
        with pytest.raises(NotFound):
            service.resolve_link(bad)
    later = datetime(2024, 1, 22, 13, 8, 47, tzinfo=timezone.utc) + timedelta(days=400)
    env.c.post("/_sandbox/clock/set", json={"at": later.isoformat()})
    assert service.resolve_link(adv["linkID"])[1]["id"] == adv["id"]   # a permanent link
