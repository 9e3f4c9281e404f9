"""Issue 12, item 2: every webhook the sandbox sends has a declared payload schema (``Provider.webhooks``,
``schemas/<provider>/defs/webhook_*.json``). One in-process sandbox is driven through its public API and control API
until each provider has enqueued every event it declares; every delivery is then checked against the schema its
(provider, event) declares. The expected events come from the declarations, so an event declared without a way to
trigger it here fails, and so does a delivery of an undeclared event or a payload its schema refuses."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from urllib.parse import urljoin

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore
from sandbox.core.validation import SCHEMA_BASE, SCHEMA_DIR
from sandbox.providers import PROVIDERS
from sandbox.testing import strategies

TENANT = "sandbox-client"
BASIC = ("sandbox-client", "sandbox-secret")
HOOK = "https://hooks.example.com"
FINPASS = {"x-api-key": "sandbox-client", "x-api-secret": "sandbox-secret"}
AA = "/finpass/api/v1/services/account-aggregator/"
BSA = "/finpass/api/v1/aa-bsa-journey/"
DECLARED = sorted((decl.name, event) for decl in PROVIDERS for event in decl.webhooks)


class World:
    """One sandbox (memory store, frozen clock, a recording sender: nothing leaves the process)."""

    def __init__(self):
        self.sent: list[dict] = []
        self.app = create_app({"SEED": 5, "SECRET_KEY": "webhook-payloads"}, store=MemoryStore(),
                              system_clock=lambda: datetime(2026, 3, 2, 10, tzinfo=timezone.utc),
                              webhook_sender=self._send)
        self.http = self.app.test_client()
        self.control("clock/freeze", {"at": "2026-03-02T10:00:00Z"})

    def _send(self, method, url, body, headers, timeout=5.0):
        self.sent.append({"method": method, "url": url, "body": json.loads(body)})
        return 200, None

    def control(self, path: str, body: dict | None = None, status: int = 200):
        r = self.http.post(f"/_sandbox/{path}", json=body or {})
        assert r.status_code == status, (path, r.status_code, r.get_data(as_text=True))
        return r.get_json()

    def advance(self, seconds: float) -> None:
        self.control("clock/advance", {"seconds": seconds})

    def ok(self, response, status: int = 200):
        assert response.status_code == status, (response.request.path, response.status_code,
                                                response.get_data(as_text=True)[:500])
        return response.get_json()

    def deliveries(self, provider: str) -> list[dict]:
        return self.http.get(f"/_sandbox/webhooks?tenant={TENANT}&provider={provider}").get_json()["deliveries"]


# --- driving each provider until it has sent every event ------------------------------------------------------------
def drive_open_finance(w: World) -> None:
    """Status webhooks (s.9) through the organisation subscription and a connection's own callback URLs, for a
    connection that completes, one that ends in ERROR (connectionError) and an on-demand fire."""
    w.control("webhooks/subscriptions", {"provider": "open_finance", "url": f"{HOOK}/of-org",
                                         "events": ["CONNECTIONS"]}, status=201)
    token = w.ok(w.http.post("/open-finance/oauth/token", json={
        "userId": "dana@example.com", "clientId": "sandbox-client", "clientSecret": "sandbox-secret"}))
    h = {"Authorization": f"Bearer {token['accessToken']}"}
    ids = []
    for psu in ("043510023", "316159011"):   # s.11: a PSU with data, and one whose connection ends in ERROR
        created = w.ok(w.http.post("/open-finance/v2/connections", headers=h, json={
            "includeFakeProviders": True, "providerIds": ["open-finance-sandbox"], "expiryDate": "2026-09-30",
            "callbackInformation": {"webhooks": {"successUrl": f"{HOOK}/of-ok", "failUrl": f"{HOOK}/of-fail"}}}),
            201)
        page, cid = created["connectUrl"].split("localhost", 1)[1], created["id"]
        w.http.post(page, data={"flow_id": cid, "step": "consent", "psuId": psu, "continue": "1"})
        w.http.post(page, data={"flow_id": cid, "step": "bank", "approve": "1"})
        w.advance(4)
        w.ok(w.http.get(f"/open-finance/v2/connections/{cid}", headers=h))   # settles the fetch steps
        ids.append(cid)
    w.control("webhooks/fire", {"provider": "open_finance", "connectionId": ids[0]}, status=201)


def drive_finleap(w: World) -> None:
    """Notifications (s.7) for each kind of observe key, fired by a sync that fetched new bookings."""
    link = w.ok(w.http.post("/finleap/onetime/income-report", json={"redirect_uri": f"{HOOK}/cb"}, auth=BASIC), 201)
    done = w.control(f"flows/{link['id']}/complete", {"outcome": "success"})
    code = re.search(r"[?&]code=([^&]+)", done["redirect_url"]).group(1)
    token = w.ok(w.http.post("/finleap/auth/token", auth=BASIC, json={
        "grant_type": "authorization_code", "code": code, "redirect_uri": f"{HOOK}/cb"}))
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    account = w.ok(w.http.get("/finleap/rest/accounts", headers=bearer))["accounts"][0]["account_id"]
    access = w.ok(w.http.get("/finleap/rest/accesses", headers=bearer))["accesses"][0]["id"]
    for key in ("/rest/transactions", f"/rest/accounts/{account}/transactions?include_pending=true",
                f"/rest/accounts/{account}/balance?inferior_limit=1000000000"):
        w.ok(w.http.post("/finleap/rest/notifications", headers=bearer, json={
            "observe_key": key, "notify_uri": f"{HOOK}/fl", "state": "st-1"}), 201)
    w.advance(3 * 86400)   # three days of new bookings for the sync to fetch
    token = w.ok(w.http.post("/finleap/auth/token", auth=BASIC, json={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"]}))
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    sync = w.ok(w.http.post(f"/finleap/rest/accesses/{access}/syncs", headers=bearer, json={}), 201)
    w.advance(60)
    status = w.ok(w.http.get(f"/finleap/rest/accesses/{access}/syncs/{sync['id']}", headers=bearer))["status"]
    assert status == "COMPLETED"


def drive_finpass(w: World) -> None:
    """AA consent webhooks (consent ACTIVE / REJECTED, FI READY and DENIED, a refresh-data request id) and the
    AA-BSA journey's status webhooks (s.9)."""
    def aa(mobile: str, consent_type: str = "loan_underwriting") -> str:
        data = w.ok(w.http.post(AA + "init", headers=FINPASS, json={
            "mobile_number": mobile, "consent_type": consent_type, "webhook_url": f"{HOOK}/aa"}))["data"]
        w.control(f"flows/{data['client_id']}/complete", {"outcome": "success"})
        return data["client_id"]

    def fetch(client_id: str, **extra) -> None:
        for _ in range(5):   # polls move the FI request on (202 while pending)
            if w.http.post(AA + "fetch-json-report", headers=FINPASS,
                           json={"client_id": client_id, **extra}).status_code != 202:
                return

    fetch(aa("9876543210"))
    fetch(aa("9000000004"))   # s.12: the FI fetch fails (DENIED)
    aa("9000000001")          # s.12: the consent is rejected
    monitored = aa("9876543211", "loan_monitoring")
    request_id = w.ok(w.http.post(AA + "refresh-data", headers=FINPASS, json={"client_id": monitored}))
    fetch(monitored, request_id=request_id["data"]["request_id"])
    for mobile in ("9876543210", "9000000004"):   # a journey that completes, one that fails
        data = w.ok(w.http.post(BSA + "init", headers=FINPASS, json={
            "mobile_number": mobile, "webhook_url": f"{HOOK}/bsa"}))["data"]
        w.control(f"flows/{data['client_id']}/complete", {"outcome": "success"})
        for _ in range(4):
            w.http.get(BSA + "status", query_string={"client_id": data["client_id"]}, headers=FINPASS)


def drive_fino(w: World) -> None:
    """Every section 11 event: a person and a company user with every user scope, a test bank login each, an
    analysis run each; then an on-demand fire without a user (data: the correlation)."""
    token = w.ok(w.http.post("/fino/api/auth", data={"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                                                     "grant_type": "client_credentials"}))
    h = {"Authorization": f"Bearer {token['access_token']}"}
    events = strategies.webhook_events("fino")
    w.ok(w.http.post("/fino/api/webhooks", headers=h, json={"url": f"{HOOK}/fino", "events": events,
                                                          "secret": "geheim"}), 201)
    w.ok(w.http.post("/fino/api/webhooks", headers=h, json={"url": f"{HOOK}/fino-put", "method": "PUT",
                                                          "events": ["banking"]}), 201)
    scopes = ["banking", "banking-fetch", "banking-upload", "account-detection", "categorization", "contracts",
              "cockpits"]
    for kind in ("person", "company"):
        user = w.ok(w.http.post("/fino/api/users", headers=h, json={
            "type": kind, "customUserID": f"c-{kind}", "userScopes": scopes}), 201)["user"]["userID"]
        w.ok(w.http.post(f"/fino/api/users/{user}/banking/test-account", headers=h, json={}))
        w.advance(60)
        trigger = w.http.post(f"/fino/api/users/{user}/trigger-analysis", headers=h)
        assert trigger.status_code in (200, 201, 202, 409), trigger.get_data(as_text=True)
        w.advance(60)
        w.control("tick")
    w.control("webhooks/fire", {"provider": "fino", "event": "banking"}, status=201)


DRIVERS = {"open_finance": drive_open_finance, "finleap": drive_finleap, "finpass": drive_finpass,
           "fino": drive_fino}


@pytest.fixture(scope="module")
def world():
    w = World()
    for drive in DRIVERS.values():
        drive(w)
    w.log = {decl.name: w.deliveries(decl.name) for decl in PROVIDERS}
    return w


# --- the declarations ------------------------------------------------------------------------------------------------
def test_every_provider_with_webhooks_declares_them_and_is_driven_here():
    """A provider that can fire webhooks declares its events; each provider with events has a driver above."""
    for decl in PROVIDERS:
        if decl.fire_webhook:
            assert decl.webhooks, decl.name
        if decl.webhooks:
            assert decl.name in DRIVERS, f"{decl.name} declares webhooks: add a driver to {__name__}"


@pytest.mark.parametrize("provider,event", DECLARED, ids=[f"{p}:{e}" for p, e in DECLARED])
def test_a_declared_schema_exists_and_cites_its_spec(provider, event):
    sid = strategies.webhook_schema(provider, event)
    schema = strategies.registry().schemas[sid]   # KeyError: declared but no such file
    assert sid.startswith(f"{SCHEMA_BASE}{provider}/defs/webhook_")
    assert re.search(r"\w+\.md section \d", schema["description"]), schema["description"]


def test_every_webhook_schema_file_is_declared_or_shared_by_declared_ones():
    """No dead payload schema: each ``defs/webhook_*.json`` is some event's, or referenced by one (fino's envelope)."""
    registry = strategies.registry()
    declared = {strategies.webhook_schema(p, e) for p, e in DECLARED}
    referenced = set()
    for sid in declared:
        text = json.dumps(registry.schemas[sid])
        referenced |= {urljoin(sid, ref).split("#")[0] for ref in re.findall(r'"\$ref": "([^"]+)"', text)}
    files = {SCHEMA_BASE + p.relative_to(SCHEMA_DIR).as_posix() for p in SCHEMA_DIR.glob("*/defs/webhook_*.json")}
    assert files and files <= declared | referenced, files - declared - referenced


def test_unknown_providers_and_events_are_named():
    with pytest.raises(LookupError, match="unknown provider 'nope'"):
        strategies.webhook_events("nope")
    with pytest.raises(LookupError, match=r"open_finance sends no webhook event 'PAYMENTS' \(its events: CONNECTIONS"):
        strategies.webhook_schema("open_finance", "PAYMENTS")


# --- what the sandbox really sent ------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider,event", DECLARED, ids=[f"{p}:{e}" for p, e in DECLARED])
def test_every_declared_event_is_sent_and_matches_its_schema(world, provider, event):
    found = [d for d in world.log[provider] if d["event"] == event]
    assert found, f"{provider} never sent {event!r}: the driver in {__name__} must trigger it"
    sid = strategies.webhook_schema(provider, event)
    for delivery in found:
        assert strategies.registry().errors(sid, delivery["payload"]) == [], delivery


@pytest.mark.parametrize("provider", sorted(DRIVERS))
def test_every_delivery_names_a_declared_event(world, provider):
    declared = set(strategies.webhook_events(provider))
    assert world.log[provider]
    assert {d["event"] for d in world.log[provider]} <= declared


def test_the_deliveries_cover_the_payload_variants(world):
    """The drivers reach the branches the schemas describe (so the checks above are not vacuous)."""
    of = [d["payload"] for d in world.log["open_finance"]]
    assert any(p.get("connectionError") for p in of) and any(p["accountNumbers"] for p in of)
    assert {"FETCHING", "CONNECTED", "COMPLETED", "ERROR"} <= {p["connectionStatus"] for p in of}
    assert {p["expiryDate"] for p in of} == {"2026-09-30"}
    assert {d["url"] for d in world.log["open_finance"]} == {f"{HOOK}/of-org", f"{HOOK}/of-ok", f"{HOOK}/of-fail"}
    fl = [d["payload"] for d in world.log["finleap"]]
    assert any(isinstance(p["data"], dict) for p in fl) and any(isinstance(p["data"], list) and p["data"] for p in fl)
    aa = [d["payload"] for d in world.log["finpass"] if d["event"] == "aa.consent_status"]
    assert {"READY", "DENIED", None} <= {p["fi_status"] for p in aa}
    assert {"ACTIVE", "REJECTED"} <= {p["consent_status"] for p in aa} and any(p["request_id"] for p in aa)
    bsa = {d["payload"]["status"] for d in world.log["finpass"] if d["event"] == "aa_bsa.status"}
    assert {"consent_granted", "analysis_complete", "failed"} <= bsa
    fino = [d["payload"] for d in world.log["fino"]]
    assert any(p.get("secret") == "geheim" for p in fino) and any("secret" not in p for p in fino)
    assert any(p["userID"] == "" for p in fino) and any(p["userID"] for p in fino)
    assert any(set(p["data"]) == {"correlationID", "correlationTimestamp"} for p in fino)


def test_a_renamed_payload_field_is_caught():
    """The check the tests above make, on a payload broken the way a provider change would break it."""
    good = {"expiryDate": None, "bankName": "open-finance-sandbox", "connectionStatus": "ACTIVE",
            "connectionId": "7c4cb3a4-3d0b-4a8e-9a55-c0d0a4f0f0a1", "userId": "dana@example.com",
            "orgId": "0b0e0f3e-2a83-4c55-8b36-2f4b3e0f5d11", "accountNumbers": ["DE89370400440532013000"]}
    sid = strategies.webhook_schema("open_finance", "CONNECTIONS")
    assert strategies.registry().errors(sid, good) == []
    renamed = {("connection_id" if k == "connectionId" else k): v for k, v in good.items()}
    assert {e["field"] for e in strategies.registry().errors(sid, renamed)} >= {"connectionId"}


def test_finleap_fire_sends_a_balance_notification_its_balance():
    """POST /_sandbox/webhooks/fire sends each notification the data its observe key watches (finleap.md s.7)."""
    w = World()
    drive_finleap(w)
    w.control("webhooks/fire", {"provider": "finleap"}, status=201)
    sid = strategies.webhook_schema("finleap", "notification")
    assert all(strategies.registry().errors(sid, d["payload"]) == [] for d in w.deliveries("finleap"))
