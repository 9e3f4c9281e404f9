"""Open Finance connection state machine, journey pages and webhooks (open_finance.md sections 6, 8, 9, 11, 12):
every transition on both sides of its boundary on the sandbox clock, computed independently of the service."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from contract_tests.transport import Receiver
from sandbox import create_app
from sandbox.core.store import MemoryStore
from sandbox.ledger import generate_ledger
from sandbox.ledger.iban import il_iban

WALL = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
FETCH_KIND = "open_finance.connection_fetch"


class World:
    """One in-process sandbox with a frozen clock and a token for one user."""

    def __init__(self, config: dict | None = None, user: str = "dana@example.com"):
        self.app = create_app({"SEED": 21, "SECRET_KEY": "unit", **(config or {})}, store=MemoryStore(),
                              system_clock=lambda: WALL)
        self.sb = self.app.extensions["sandbox"]
        self.http = self.app.test_client()
        self.control("clock/freeze", {"at": "2026-03-02T10:00:00Z"})
        self.user = user
        self.h = self.token(user)

    def control(self, path: str, body: dict | None = None, status: int = 200):
        r = self.http.post(f"/_sandbox/{path}", json=body or {})
        assert r.status_code == status, r.get_data(as_text=True)
        return r.get_json()

    def advance(self, seconds: float):
        return self.control("clock/advance", {"seconds": seconds})

    def token(self, user: str) -> dict:
        r = self.http.post("/open-finance/oauth/token", json={"userId": user, "clientId": "sandbox-client",
                                                               "clientSecret": "sandbox-secret"})
        return {"Authorization": f"Bearer {r.get_json()['accessToken']}"}

    def create(self, **body) -> dict:
        r = self.http.post("/open-finance/v2/connections", json={"includeFakeProviders": True, **body}, headers=self.h)
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()

    def get(self, cid: str) -> dict:
        r = self.http.get(f"/open-finance/v2/connections/{cid}", headers=self.h)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()

    def page(self, url: str, **form):
        path = url.split("localhost", 1)[1]
        return self.http.post(path, data=form) if form else self.http.get(path)

    def consent(self, created: dict, psu: str = "043510023", provider: str | None = None):
        cid = created["id"]
        if provider:
            self.page(created["connectUrl"], flow_id=cid, step="provider", providerId=provider)
        r = self.page(created["connectUrl"], flow_id=cid, step="consent", psuId=psu, **{"continue": "1"})
        assert 'id="step-bank"' in r.get_data(as_text=True), r.get_data(as_text=True)[:500]
        return self.page(created["connectUrl"], flow_id=cid, step="bank", approve="1")

    def connected(self, psu: str = "043510023", **body) -> str:
        created = self.create(providerIds=["open-finance-sandbox"], **body)
        self.consent(created, psu)
        self.advance(4)
        return created["id"]

    def ledger(self, cid: str) -> dict | None:
        return self.sb.store.get("sandbox-client", "open_finance.ledgers", cid)

    def deliveries(self) -> list[dict]:
        self.control("tick")
        return self.http.get("/_sandbox/webhooks?provider=open_finance").get_json()["deliveries"]


@pytest.fixture
def w():
    return World()


def data_items(w: World, path: str, **query) -> list[dict]:
    """Every item of a paged /v2/data list, following nextPage (s.6: at most 500 transactions a page)."""
    items, cursor = [], None
    while True:
        q = {**query, **({"nextPage": cursor} if cursor else {})}
        r = w.http.get(f"/open-finance/v2/data/{path}", query_string=q, headers=w.h)
        assert r.status_code == 200, r.get_data(as_text=True)
        body = r.get_json()
        items += body["items"]
        cursor = body["nextPage"]
        if not cursor:
            return items


# --- the fetch: INACTIVE -> FETCHING -> CONNECTED -> COMPLETED | ACTIVE ---------------------------------------------
def test_fetch_steps_on_both_sides_of_each_boundary(w):
    created = w.create(providerIds=["open-finance-sandbox"])
    cid = created["id"]
    assert w.get(cid)["status"] == "INACTIVE"
    w.advance(3600)
    assert w.get(cid)["status"] == "INACTIVE"   # nothing happens without the user
    w.consent(created)
    assert w.get(cid)["status"] == "FETCHING" and w.ledger(cid) is None
    w.advance(2 - 0.001)
    assert w.get(cid)["status"] == "FETCHING"
    w.advance(0.001)
    assert w.get(cid)["status"] == "CONNECTED"
    w.advance(2 - 0.001)
    assert w.get(cid)["status"] == "CONNECTED" and w.ledger(cid) is None
    w.advance(0.001)
    done = w.get(cid)
    assert done["status"] == "COMPLETED" and w.ledger(cid) is not None
    assert done["updatedAt"] == "2026-03-02T11:00:04.000Z"


def test_refresh_data_makes_an_active_connection(w):
    cid = w.connected(refreshData=True)
    assert w.get(cid)["status"] == "ACTIVE"


def test_instant_and_manual_job_policies_drive_the_fetch(w):
    w.http.put("/_sandbox/jobs/policy", json={"kind": FETCH_KIND, "mode": "instant"})
    created = w.create(providerIds=["open-finance-sandbox"], redirectUrl="https://app.example/cb")
    r = w.consent(created)
    assert r.headers["Location"].endswith("&status=COMPLETED")
    w.http.put("/_sandbox/jobs/policy", json={"kind": FETCH_KIND, "mode": "manual"})
    created = w.create(providerIds=["open-finance-sandbox"])
    w.consent(created)
    w.advance(3600)
    assert w.get(created["id"])["status"] == "FETCHING"
    job = w.sb.store.get("sandbox-client", "open_finance.connections",
                         f"{w.user}\x1f{created['id']}")["_fetchJob"]
    w.control(f"jobs/{job}/complete")
    assert w.get(created["id"])["status"] == "COMPLETED"


# --- psuId outcomes (s.11) and their data ------------------------------------------------------------------------------
@pytest.mark.parametrize("psu,status,data", [
    ("050299338", "REJECTED", False), ("064837123", "PARTIALLY_AUTHORIZED", False), ("316159011", "ERROR", False),
    ("316159029", "FETCHING_ERROR", False), ("316159052", "SUSPENDED_BY_PROVIDER", False),
    ("8332884", "COMPLETED", True), ("123456789", "COMPLETED", True)])
def test_published_psu_ids(w, psu, status, data):
    cid = w.connected(psu)
    got = w.get(cid)
    assert got["status"] == status and (w.ledger(cid) is not None) == data
    assert (got["error"] is None) == data or status == "PARTIALLY_AUTHORIZED"


def test_documented_accounts_of_a_test_psu_id_reach_the_webhook_and_the_ledger(w):
    cid = w.connected("043510023")
    documented = [il_iban(31, 19, 29114), il_iban(31, 21, 731722), il_iban(31, 50, 5703)]   # s.11 BBANs
    # they go to the persona's non-card accounts in order (data.apply_test_accounts): as many as it has
    slots = [a for a in generate_ledger(21, "043510023", WALL.date(), market="IL").accounts if a.kind != "credit_card"]
    expected = set(documented[:len(slots)])
    ibans = {a["iban"] for a in w.ledger(cid)["accounts"] if a.get("iban")}
    assert expected <= ibans
    payload = w.sb.providers["open_finance"].service.webhook_payload("sandbox-client", {**w.get(cid), "orgId": "o"})
    assert expected <= set(payload["accountNumbers"])


# --- PARTIALLY_AUTHORIZED: 5 days, then EXPIRED -----------------------------------------------------------------------
def test_partially_authorized_expires_after_five_days(w):
    cid = w.connected("064837123")   # consented at 10:00:00, PARTIALLY_AUTHORIZED at once
    w.advance(5 * 86400 - 4 - 1)
    w.h = w.token(w.user)
    assert w.get(cid)["status"] == "PARTIALLY_AUTHORIZED"
    w.advance(2)
    w.h = w.token(w.user)
    got = w.get(cid)
    assert got["status"] == "EXPIRED" and got["error"]["type"] == "CONSENT_EXPIRED"


# --- expiryDate ---------------------------------------------------------------------------------------------------------
def test_past_expiry_date_gives_expired(w):
    cid = w.connected(refreshData=True, expiryDate="2026-03-02T12:00:00Z")
    w.advance(2 * 3600 - 4 - 1)   # 11:59:59
    assert w.get(cid)["status"] == "ACTIVE"
    w.advance(2)                  # 12:00:01
    assert w.get(cid)["status"] == "EXPIRED"
    late = w.create(expiryDate="2026-03-01")   # already past: expired before anyone consents
    assert w.get(late["id"])["status"] == "EXPIRED"


# --- REPLACED -------------------------------------------------------------------------------------------------------------
def test_a_newer_active_connection_replaces_the_older_one(w):
    old = w.connected("321547416", refreshData=True)
    other_psu = w.connected("321547804", refreshData=True)
    one_time = w.connected("321547416")          # COMPLETED: not ACTIVE, replaces nothing
    assert w.get(old)["status"] == "ACTIVE"
    new = w.connected("321547416", refreshData=True)
    assert w.get(old)["status"] == "REPLACED"
    assert [w.get(c)["status"] for c in (other_psu, one_time, new)] == ["ACTIVE", "COMPLETED", "ACTIVE"]


# --- data moves forward with the clock -----------------------------------------------------------------------------------
def test_active_connections_refresh_daily_and_keep_older_bookings(w):
    cid = w.connected("043510023", refreshData=True)
    before = w.ledger(cid)
    version = w.sb.store.get("sandbox-client", "open_finance.connections", f"{w.user}\x1f{cid}")["dataVersion"]
    w.advance(86400)
    w.h = w.token(w.user)
    got = w.get(cid)
    after = w.ledger(cid)
    today = datetime(2026, 3, 3).date()
    assert got["lastFetchedDataDate"].startswith("2026-03-03")
    assert w.sb.store.get("sandbox-client", "open_finance.connections", f"{w.user}\x1f{cid}")["dataVersion"] == version + 1
    # the stored ledger is the one the ledger module builds for that psuId up to the new today
    assert after["anchor"] == today.isoformat() and before["anchor"] == "2026-03-02"
    assert after["accounts"][0]["transactions"] == json.loads(json.dumps(
        generate_ledger(21, "043510023", today, market="IL").to_json()))["accounts"][0]["transactions"]
    w.advance(3600)   # same day: no second refresh
    w.get(cid)
    assert w.sb.store.get("sandbox-client", "open_finance.connections", f"{w.user}\x1f{cid}")["dataVersion"] == version + 1


def test_refresh_connection_goes_through_fetching(w):
    cid = w.connected("043510023")
    w.advance(86400)
    w.h = w.token(w.user)
    assert w.http.get(f"/open-finance/v2/connections/refresh/{cid}", headers=w.h).status_code == 204
    assert w.get(cid)["status"] == "FETCHING"
    w.advance(2)
    got = w.get(cid)
    assert got["status"] == "COMPLETED" and w.ledger(cid)["anchor"] == "2026-03-03"


def test_delete_removes_the_connection_and_its_data(w):
    cid = w.connected("043510023")
    listed = w.http.get(f"/open-finance/v2/data/accounts?connectionId={cid}", headers=w.h).get_json()["items"]
    assert listed and w.ledger(cid) is not None
    assert w.http.delete(f"/open-finance/v2/connections/{cid}", headers=w.h).status_code == 204
    assert w.ledger(cid) is None
    assert w.http.get(f"/open-finance/v2/data/accounts?connectionId={cid}", headers=w.h).get_json()["items"] == []


def test_connection_counts_equal_what_the_data_endpoints_list(w):
    cid = w.connected("043510023")
    got = w.get(cid)
    accounts = w.http.get(f"/open-finance/v2/data/accounts?connectionId={cid}&limit=500",
                          headers=w.h).get_json()["items"]
    assert sum(got[k] for k in ("accounts", "cards", "savings", "loans", "securities")) == len(accounts)
    assert w.get(w.create()["id"])["accounts"] is None


# --- production switch ---------------------------------------------------------------------------------------------------
def test_a_production_enabled_organisation_needs_no_fake_providers():
    w = World({"OPEN_FINANCE_PRODUCTION_ENABLED": True})
    r = w.http.post("/open-finance/v2/connections", json={"providerIds": ["leumi"]}, headers=w.h)
    assert r.status_code == 201
    html = w.page(r.get_json()["connectUrl"]).get_data(as_text=True)
    assert "בנק לאומי" in html and 'id="step-consent"' in html
    w2 = World()
    r = w2.http.post("/open-finance/v2/connections", json={"includeFakeProviders": False}, headers=w2.h)
    assert r.status_code == 400 and "production access" in r.get_json()["message"]


# --- journey pages ---------------------------------------------------------------------------------------------------------
def test_hebrew_is_right_to_left_and_english_left_to_right(w):
    he = w.page(w.create(language="he")["connectUrl"]).get_data(as_text=True)
    en = w.page(w.create(language="en")["connectUrl"]).get_data(as_text=True)
    assert '<html lang="he" dir="rtl">' in he and "בחרו את הבנק" in he and 'id="lang-en"' not in he
    assert '<html lang="en" dir="ltr">' in en and "Choose your bank" in en
    unset = w.create()["connectUrl"]
    assert 'id="lang-en"' in w.page(unset).get_data(as_text=True)   # unset: the user chooses
    assert '<html lang="en" dir="ltr">' in w.page(unset + "&lang=en").get_data(as_text=True)


def test_locked_psu_id_cannot_be_changed(w):
    created = w.create(providerIds=["open-finance-sandbox"], psuId="321547416")
    html = w.page(created["connectUrl"]).get_data(as_text=True)
    assert 'value="321547416" readonly' in html
    w.page(created["connectUrl"], flow_id=created["id"], step="consent", psuId="050299338", **{"continue": "1"})
    w.page(created["connectUrl"], flow_id=created["id"], step="bank", approve="1")
    assert w.get(created["id"])["psuId"] == "321547416"


def test_invalid_psu_id_stays_on_the_page(w):
    created = w.create(providerIds=["open-finance-sandbox"], language="en")
    for bad in ("1234", "1234567890", "12a45", ""):
        r = w.page(created["connectUrl"], flow_id=created["id"], step="consent", psuId=bad, **{"continue": "1"})
        assert r.status_code == 200 and "valid ID number" in r.get_data(as_text=True)
    assert w.get(created["id"])["status"] == "INACTIVE"


def test_iframe_posts_window_messages(w):
    created = w.create(providerIds=["open-finance-sandbox"], iframe=True, redirectUrl="https://app.example/cb")
    cid = created["id"]
    w.page(created["connectUrl"], flow_id=cid, step="consent", psuId="043510023", **{"continue": "1"})
    bank = w.page(created["connectUrl"]).get_data(as_text=True)
    assert 'postMessage("redirectToBank"' in bank
    done = w.page(created["connectUrl"], flow_id=cid, step="bank", approve="1")
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and '"event": "success"' in html and "app.example/cb?connectionId=" in html
    rejected = w.create(iframe=True)
    html = w.page(rejected["connectUrl"], flow_id=rejected["id"], step="provider", close="1").get_data(as_text=True)
    assert '"event": "close"' in html and w.get(rejected["id"])["status"] == "TERMINATED_BY_USER"


def test_reject_button_rejects(w):
    created = w.create(providerIds=["open-finance-sandbox"], redirectUrl="https://app.example/cb")
    r = w.page(created["connectUrl"], flow_id=created["id"], step="consent", reject="1")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"connectionId={created['id']}&status=REJECTED")
    assert w.get(created["id"])["status"] == "REJECTED"


def test_journey_link_expires_after_a_day(w):
    created = w.create()
    w.advance(86400 - 1)
    assert w.page(created["connectUrl"]).status_code == 200
    w.advance(1)
    r = w.page(created["connectUrl"])
    assert r.status_code == 400 and 'id="error"' in r.get_data(as_text=True)


# --- webhooks ---------------------------------------------------------------------------------------------------------------
def test_organisation_webhook_gets_every_status_change():
    w = World()
    receiver = Receiver()
    try:
        w.control("webhooks/fire", {"provider": "open_finance", "organizationWebhook": {"url": receiver.url + "/org"}},
                  status=201)
        cid = w.connected("043510023")
        w.deliveries()
        statuses = [json.loads(r["body"])["connectionStatus"] for r in receiver.received]
        assert sorted(statuses) == sorted(["FETCHING", "CONNECTED", "COMPLETED"])
        # on demand: the current status once more
        fired = w.control("webhooks/fire", {"provider": "open_finance", "connectionId": cid}, status=201)
        assert [d["status"] for d in fired["deliveries"]] == ["delivered"]
        assert json.loads(receiver.received[-1]["body"])["connectionStatus"] == "COMPLETED"
        assert json.loads(receiver.received[-1]["body"])["orgId"] == w.sb.providers["open_finance"].service.org_id(
            "sandbox-client")
    finally:
        receiver.close()


def test_failing_webhook_is_retried_then_given_up(w):
    receiver = Receiver(status=500)
    try:
        created = w.create(providerIds=["open-finance-sandbox"],
                           callbackInformation={"webhooks": {"failUrl": receiver.url + "/fail"}})
        w.consent(created, "050299338")
        assert [d["attempts"] for d in w.deliveries()][0][0]["status"] == 500
        w.advance(10)
        w.advance(50)
        log = w.deliveries()
        assert log[0]["status"] == "failed" and [a["status"] for a in log[0]["attempts"]] == [500, 500, 500]
        assert len(receiver.received) == 3
    finally:
        receiver.close()


def test_products_and_enabled_switch_off_connection_webhooks(w):
    hooks = {"successUrl": "http://127.0.0.1:9/ok"}
    w.connected(callbackInformation={"webhooks": {**hooks, "enabled": False}})
    w.connected(callbackInformation={"webhooks": {**hooks, "products": ["PAYMENTS"]}})
    assert w.deliveries() == []
    w.connected(callbackInformation={"webhooks": hooks})
    assert len(w.deliveries()) == 2   # CONNECTED and COMPLETED


# --- headless path --------------------------------------------------------------------------------------------------------
def test_bank_page_without_redirect_url_shows_code_and_state(w):
    created = w.create()
    init = w.http.post("/open-finance/v2/connect/open-banking-init", headers=w.h, json={
        "providerId": "mizrahi-sandbox", "connectionId": created["id"], "psuId": "245938880"}).get_json()
    html = w.page(init["scaOAuth"], flow_id=f"{created['id']}.bank", approve="1").get_data(as_text=True)
    flow = w.http.get(f"/_sandbox/flows/{created['id']}.bank").get_json()
    assert f'id="code">{flow["code"]}<' in html and f'id="state">{flow["sca_state"]}<' in html
    r = w.http.get(f"/open-finance/v2/connect/open-banking-finalize?code={flow['code']}&state={flow['sca_state']}",
                   headers=w.h)
    assert r.get_json()["connectionStatus"] == "FETCHING"
    # the control API completes a bank page the same way
    c2 = w.create(redirectUrl="https://app.example/back")
    w.http.post("/open-finance/v2/connect/open-banking-init", headers=w.h, json={
        "providerId": "leumi-sandbox", "connectionId": c2["id"], "psuId": "105210748"})
    url = w.control(f"flows/{c2['id']}.bank/complete", {"outcome": "success"})["redirect_url"]
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert w.http.get(f"/open-finance/v2/connect/open-banking-finalize?code={q['code']}&state={q['state']}",
                      headers=w.h).status_code == 200


def test_big_query_export_locks_deletion_for_ninety_minutes():
    """s.4: 423 "connection locked" while a connection is younger than 90 minutes when the organisation exports to
    big-query (OPEN_FINANCE_BIGQUERY_EXPORT); nothing is deleted by the refused call; at 90 minutes it goes."""
    w = World({"OPEN_FINANCE_BIGQUERY_EXPORT": True})
    cid = w.create()["id"]
    w.advance(90 * 60 - 1)
    w.h = w.token(w.user)
    r = w.http.delete(f"/open-finance/v2/connections/{cid}", headers=w.h)
    assert r.status_code == 423, r.get_data(as_text=True)
    assert r.get_json()["type"] == "CLIENT_ERROR" and "locked" in r.get_json()["message"]
    assert w.get(cid)["id"] == cid
    w.advance(1)
    assert w.http.delete(f"/open-finance/v2/connections/{cid}", headers=w.h).status_code == 204
    assert w.http.delete(f"/open-finance/v2/connections/{cid}", headers=w.h).status_code == 404


def test_without_the_export_a_new_connection_is_deleted_at_once():
    w = World()
    cid = w.create()["id"]
    assert w.http.delete(f"/open-finance/v2/connections/{cid}", headers=w.h).status_code == 204


@pytest.mark.parametrize("days", [1, 40])
def test_a_refresh_keeps_the_ids_of_the_bookings_already_served(days):
    """s.6/s.8: an ACTIVE connection refreshes daily and its data moves forward; the bookings it served before keep
    their ids (the ledger is regenerated over a moved window, whose positional ids all shift by a day's bookings),
    so a client syncing by id sees only the new days as new."""
    w = World()
    cid = w.connected("123456789", refreshData=True)
    assert w.get(cid)["status"] == "ACTIVE"
    before = {t["id"]: t for t in data_items(w, "transactions", connectionId=cid)}
    w.advance(days * 86400)
    w.h = w.token(w.user)
    assert w.get(cid)["status"] == "ACTIVE"
    after = {t["id"]: t for t in data_items(w, "transactions", connectionId=cid)}
    first_day = min(t["date"]["bookingDate"] for t in after.values())
    last_before = max(t["date"]["bookingDate"] for t in before.values())
    kept = [t for t in before.values() if t["date"]["bookingDate"] > first_day]   # still inside the new window
    assert kept and all(t["id"] in after for t in kept)
    assert all(after[t["id"]]["SK"] == t["SK"] and after[t["id"]]["date"] == t["date"] for t in kept)
    new = [t for i, t in after.items() if i not in before]
    assert all(t["date"]["bookingDate"] >= last_before for t in new)
    assert new or days == 1   # a single day may bring nothing; forty always bring bookings
