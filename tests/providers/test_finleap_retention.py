"""finX one-time retention (finleap-products.md s.3, inferred: ``FINLEAP_ONETIME_RETENTION`` seconds, default 0 =
keep): after it a one-time user's /rest/* calls are 404 (code 1004), its refresh token is 400 (code 1100) and its
data is gone from the store; ongoing users are never affected. Both sides of the boundary are checked."""
from __future__ import annotations

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore

from .test_finleap_products import B, bearer, complete, link, tokens

RETENTION = 3600


def _http(retention: float):
    app = create_app({"SEED": 7, "FINLEAP_ONETIME_RETENTION": retention}, store=MemoryStore())
    client = app.test_client()
    client.post("/_sandbox/clock/freeze", json={"at": "2026-03-10T09:00:00Z"})
    return app, client


def _advance(http, seconds: float) -> None:
    assert http.post("/_sandbox/clock/advance", json={"seconds": seconds}).status_code == 200


def _reads(http, tok: dict, flow_id: str) -> dict[str, int]:
    h = bearer(tok)
    return {path: http.get(path, headers=h).status_code
            for path in ("/finleap/rest/accounts", "/finleap/rest/transactions", "/finleap/rest/accesses",
                         f"/finleap/rest/income-reports/{flow_id}")}


def _stored(app, tenant: str = "sandbox-client") -> dict[str, int]:
    return {coll: n for coll, n in app.extensions["sandbox"].store.collections(tenant) if coll.startswith("finleap")}


@pytest.fixture
def retained():
    return _http(RETENTION)


def test_one_time_data_is_deleted_after_the_retention(retained):
    app, http = retained
    flow = link(http, "onetime/income-report")
    tok = tokens(http, complete(http, flow["id"]))
    held = _stored(app)
    _advance(http, RETENTION - 1)        # one second before the end: everything readable
    assert set(_reads(http, tok, flow["id"]).values()) == {200}
    fresh = http.post("/finleap/auth/token", json={"grant_type": "refresh_token",
                                                   "refresh_token": tok["refresh_token"]}, headers=B)
    assert fresh.status_code == 200
    tok = fresh.get_json()
    _advance(http, 1)                    # at the end: gone
    for path, status in _reads(http, tok, flow["id"]).items():
        assert status == 404, path
    r = http.get("/finleap/rest/transactions", headers=bearer(tok))
    assert r.get_json()["error"]["code"] == 1004
    refused = http.post("/finleap/auth/token", json={"grant_type": "refresh_token",
                                                     "refresh_token": tok["refresh_token"]}, headers=B)
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == 1100
    gone = _stored(app)
    for coll in ("finleap.accounts", "finleap.transactions", "finleap.accesses"):
        assert held[coll] > 0 and gone.get(coll, 0) == 0, (coll, held, gone)


def test_ongoing_users_are_kept(retained):
    app, http = retained
    flow = link(http, "ongoing/access", user_id="kept@example.com")
    tok = tokens(http, complete(http, flow["id"]))
    _advance(http, RETENTION * 5)
    h = bearer(tok)
    fresh = http.post("/finleap/auth/token", json={"grant_type": "refresh_token",
                                                   "refresh_token": tok["refresh_token"]}, headers=B)
    assert fresh.status_code == 200
    h = bearer(fresh.get_json())
    assert http.get("/finleap/rest/accounts", headers=h).status_code == 200
    assert http.get("/finleap/rest/transactions", headers=h).get_json()["transactions"]


def test_default_keeps_one_time_data():
    _, http = _http(0)
    flow = link(http, "onetime/income-report")
    tok = tokens(http, complete(http, flow["id"]))
    _advance(http, 50 * 86400)
    fresh = http.post("/finleap/auth/token", json={"grant_type": "refresh_token",
                                                   "refresh_token": tok["refresh_token"]}, headers=B)
    assert fresh.status_code == 200
    assert set(_reads(http, fresh.get_json(), flow["id"]).values()) == {200}
