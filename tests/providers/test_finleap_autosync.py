"""finX autosync between ticks (finleap-products.md s.3, inferred): when wall time moves the sandbox clock and no
ticker has run yet, a /rest read runs the due autosync before it answers; the ticker's index drops accesses that no
longer autosync. The wall clock is injected, nothing sleeps."""
from __future__ import annotations

from datetime import timedelta

from sandbox import create_app
from sandbox.core.store import MemoryStore
from tests.conftest import FakeWall

from .test_finleap_products import bearer, complete, link, tokens

DAY = 86400


def _world():
    wall = FakeWall()
    app = create_app({"SEED": 7}, store=MemoryStore(), system_clock=wall)
    return app, app.test_client(), wall


def _index(app) -> list[str]:
    return [k for k, _ in app.extensions["sandbox"].store.list("_sandbox", "finleap.autosync")]


def test_a_read_syncs_first_when_no_tick_ran():
    app, http, wall = _world()
    flow = link(http, "ongoing/access", user_id="reader@example.com", save_secrets=True)
    tok = tokens(http, complete(http, flow["id"]))
    before = http.get("/finleap/rest/transactions", headers=bearer(tok)).get_json()["transactions"]
    assert len(_index(app)) == 1
    wall.at += timedelta(days=35)          # wall time passes; no ticker in this process, no control call
    fresh = http.post("/finleap/auth/token", json={"grant_type": "refresh_token",
                                                   "refresh_token": tok["refresh_token"]},
                      headers={"Authorization": "Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ="}).get_json()
    after = http.get("/finleap/rest/transactions", headers=bearer(fresh)).get_json()["transactions"]
    new = [t for t in after if t.get("sync_id")]
    assert new and len(after) == len(before) + len(new)
    assert http.post("/_sandbox/tick").get_json()["due"] == 0   # already synced: the ticker finds nothing due


def test_the_tick_drops_accesses_that_no_longer_autosync():
    app, http, wall = _world()
    flow = link(http, "ongoing/access", user_id="gone@example.com", save_secrets=True)
    tokens(http, complete(http, flow["id"]))
    assert len(_index(app)) == 1
    wall.at += timedelta(days=181)         # past the 180-day consent
    assert http.post("/_sandbox/tick").get_json()["due"] == 0
    assert _index(app) == []
    unsaved = link(http, "ongoing/access", user_id="plain@example.com")
    tokens(http, complete(http, unsaved["id"]))
    assert _index(app) == []               # no saved credentials: never indexed
