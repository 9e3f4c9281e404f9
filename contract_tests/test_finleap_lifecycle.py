"""finX access lifecycle (finleap-products.md s.3, inferred): autosync of accesses with saved credentials every 6 h
on the sandbox clock (the ticker and every control-API clock move; also before a /rest read answers), through
create_sync's own path (new bookings carry the sync id, notifications fire), the 180-day consent after which
autosync stops and syncs fail until the user renews it through an ongoing sync flow. In-process by default; over
HTTP with --base-url, the clock moving only through the control API (the checks' own tenant).
"""
from __future__ import annotations

import json

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore

from .checks import response_schema_conformance, status_in
from .plugin import frozen_transport
from .test_finleap_products import Products
from .transport import Receiver

HOUR, DAY = 3600, 86400
CONSENT_EXPIRED = "Consent expired, renew via /ongoing/sync"

pytestmark = pytest.mark.control


@pytest.fixture
def fx(contract_options):
    with frozen_transport(contract_options, "finleap",
                          lambda: create_app({"SEED": 21}, store=MemoryStore())) as (transport, control):
        yield Lifecycle(transport, control, contract_options)


class Lifecycle(Products):
    """Products' client plus a user whose tokens are kept fresh across long clock moves (refresh tokens live 90
    days and rotate)."""

    def ongoing_user(self, user_id: str, save: bool) -> None:
        self.user_id = user_id
        self.pair = self.token_for(self.product_link("ongoing-access", user_id=user_id), save=save)

    def h(self) -> dict:
        """A bearer header for the user, refreshed (the access token lives 1 h)."""
        r = self.refresh(self.pair["refresh_token"])
        status_in(r, 200)
        self.pair = r.json
        return self.bearer(self.pair["access_token"])

    def token(self) -> str:
        """A fresh access token of the user (for the Products helpers that take one)."""
        return self.h()["Authorization"].split(" ", 1)[1]

    def advance(self, seconds: float) -> None:
        self.control.clock("advance", seconds=seconds)

    def sync_jobs(self, access_id: str) -> list[dict]:
        """The access's syncs as the control API lists them (explicit and automatic), oldest first."""
        jobs = self.control.get("/jobs?kind=finleap.sync")["jobs"]
        return sorted((j for j in jobs if j["data"]["access_id"] == access_id), key=lambda j: j["created_at"])

    def access(self, h: dict) -> dict:
        r = self.call("list_accesses", headers=h)
        status_in(r, 200)
        response_schema_conformance(r)
        (access,) = r.json["accesses"]
        return access

    def sync_now(self, access_id: str, h: dict) -> dict:
        """An explicit sync, polled until it ends."""
        sync = self.call("create_sync", path_params={"access_id": access_id}, json_body={}, headers=h)
        status_in(sync, 201)
        for _ in range(5):
            r = self.call("get_sync", path_params={"access_id": access_id, "sync_id": sync.json["id"]}, headers=h)
            status_in(r, 200)
            response_schema_conformance(r)
            if r.json["status"] in ("COMPLETED", "FAILED"):
                return r.json
        raise AssertionError(f"sync did not end: {r.json}")


def test_saved_credentials_autosync_every_six_hours_on_the_clock(fx):
    """The sandbox clock drives autosync (the ticker, and every control-API clock move): the notification arrives
    without the client reading anything; the sync is the one create_sync would run."""
    receiver = Receiver()
    try:
        fx.ongoing_user("auto-1@example.com", save=True)
        h = fx.h()
        access = fx.access(h)
        assert access["save_secrets"] is True and access["auto_sync"] is True
        assert all(a["auto_sync"] is True for a in fx.accounts(fx.pair["access_token"]))
        before = fx.txns(fx.pair["access_token"])
        last_booking = max(t["booking_date"] for t in before)
        status_in(fx.call("create_notification", json_body={"observe_key": "/rest/transactions",
                                                            "notify_uri": receiver.url + "/hook", "state": "auto"},
                          headers=h), 201)
        syncs = len(fx.sync_jobs(access["id"]))
        fx.advance(35 * DAY)   # a month always brings regular bookings; nothing is read from here on
        jobs = fx.sync_jobs(access["id"])
        assert len(jobs) == syncs + 1 and jobs[-1]["state"] == "COMPLETED" and jobs[-1]["data"]["autosync"]
        auto = jobs[-1]["id"]
        fx.control.flush_webhooks(provider="finleap")
        hooks = [json.loads(x["body"]) for x in receiver.received]
        notified = [sorted(t["transaction_id"] for t in x["data"]) for x in hooks if x["state"] == "auto"]
        assert len(notified) == 1 and notified[0]
        h = fx.h()
        after = fx.txns(fx.pair["access_token"])
        today = fx.control.get("/clock")["now"][:10]
        new = [t for t in after if t.get("sync_id") == auto]
        assert notified == [sorted(t["transaction_id"] for t in new)]
        assert len(after) == len(before) + len(new)
        assert all(last_booking < t["booking_date"] <= today for t in new)
        got = fx.call("get_sync", path_params={"access_id": access["id"], "sync_id": auto}, headers=h)
        status_in(got, 200)
        assert got.json["status"] == "COMPLETED"
        assert len(fx.sync_jobs(access["id"])) == syncs + 1   # reading did not sync again
        # the next autosync is due 6 h after the last one ended: not a second earlier
        fx.advance(6 * HOUR - 1)
        fx.accounts(fx.token())
        assert len(fx.sync_jobs(access["id"])) == syncs + 1
        fx.advance(1)
        assert len(fx.sync_jobs(access["id"])) == syncs + 2
    finally:
        receiver.close()


def test_without_saved_credentials_no_autosync_but_explicit_syncs(fx):
    fx.ongoing_user("manual-1@example.com", save=False)
    h = fx.h()
    access = fx.access(h)
    assert access["save_secrets"] is False and access["auto_sync"] is False
    before = fx.txns(fx.pair["access_token"])
    syncs = len(fx.sync_jobs(access["id"]))
    fx.advance(35 * DAY)
    h = fx.h()
    assert fx.txns(fx.pair["access_token"]) == before
    assert len(fx.sync_jobs(access["id"])) == syncs
    assert fx.sync_now(access["id"], h)["status"] == "COMPLETED"
    assert len(fx.txns(fx.pair["access_token"])) > len(before)


def test_consent_lasts_180_days_then_syncs_fail_until_renewed(fx):
    fx.ongoing_user("consent-1@example.com", save=True)
    h = fx.h()
    access = fx.access(h)
    connected = fx.control.get("/clock")["now"]
    for _ in range(2):                       # 178 days, refreshing within the refresh tokens' 90 days
        fx.advance(89 * DAY)
        fx.h()
    fx.advance(2 * DAY - 1)                  # one second before the consent's end: still syncs
    h = fx.h()
    assert fx.sync_now(access["id"], h)["status"] == "COMPLETED"
    fx.advance(1)                            # exactly 180 days after the connection: over
    assert fx.control.get("/clock")["now"][:19] > connected[:19]
    h = fx.h()
    failed = fx.sync_now(access["id"], h)
    assert failed["status"] == "FAILED" and failed["error"]["message"] == CONSENT_EXPIRED
    assert failed["error"]["code"] == 1000   # the code of other bank failures
    # no autosync after the consent ended, however long the user waits
    syncs = len(fx.sync_jobs(access["id"]))
    fx.advance(7 * HOUR)
    before = fx.txns(fx.token())
    assert len(fx.sync_jobs(access["id"])) == syncs
    # the user renews the consent through an ongoing sync flow: syncs and autosync work again
    renewal = fx.product_link("ongoing-sync", user_id="consent-1@example.com", account_ids=[a["account_id"]
                              for a in fx.accounts(fx.token())])
    params, _ = fx.walk(renewal)
    assert params["success"] == "true", params
    h = fx.h()
    assert fx.sync_now(access["id"], h)["status"] == "COMPLETED"
    fx.advance(6 * HOUR)
    assert len(fx.txns(fx.token())) >= len(before)
    jobs = fx.sync_jobs(access["id"])
    assert jobs[-1]["data"].get("autosync") and jobs[-1]["state"] == "COMPLETED"
