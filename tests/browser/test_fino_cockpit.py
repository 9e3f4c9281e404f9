"""The finoOS cockpit web page (``/fino/cockpit/{user-id}``, fino.md sections 10 and 12) in headless Chromium: a user
connects the test account, the analysis runs, the client asks for a cockpit link and a person opens it - directly and
embedded in an iframe - and after ``expireTimestamp`` (sandbox clock, moved through the control API) the same link
shows the 401 page. Screenshots land in ``test-artifacts/browser/<test>/``."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests

from .conftest import chromium_executable, serve_app

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    chromium_executable() is None,
    reason="no Chromium executable: set SANDBOX_CHROMIUM or install Debian's chromium (/usr/bin/chromium)")]


class FinoLive:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()
        self.http.trust_env = False
        self.control("PUT", "/jobs/policy", {"mode": "instant", "kind": "fino.analysis"})
        self.control("POST", "/clock/freeze", {"at": "2024-06-25T10:00:00Z"})
        r = self.http.post(f"{base_url}/fino/api/auth", data=urlencode({
            "client_id": "sandbox-client", "client_secret": "sandbox-secret", "grant_type": "client_credentials"}),
            headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
        assert r.status_code == 200, r.text
        self.h = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def control(self, method: str, path: str, body: dict) -> dict:
        r = self.http.request(method, f"{self.base_url}/_sandbox{path}", json=body, timeout=10)
        assert r.status_code < 300, r.text
        return r.json() if r.content else {}

    def call(self, method: str, path: str, **kw) -> requests.Response:
        return self.http.request(method, f"{self.base_url}/fino/api{path}", headers=self.h, timeout=30, **kw)

    def ok(self, method: str, path: str, status: int = 200, **kw) -> dict:
        r = self.call(method, path, **kw)
        assert r.status_code == status, r.text
        return r.json()


@pytest.fixture
def fino():

    from contract_tests.partial_app import fino_app
    from sandbox.core.store import MemoryStore

    app = fino_app({"SEED": 11}, store=MemoryStore())
    with serve_app(app) as port:
        live = FinoLive(f"http://127.0.0.1:{port}")
        try:
            yield live
        finally:
            live.http.close()


def euro(value: float) -> str:
    return f"{value:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".") + " €"


def test_cockpit_page_shows_the_cockpit_and_expires(page, shots, fino):
    uid = fino.ok("POST", "/users", 201, json={"type": "person", "name": "Max Mustermann"})["user"]["userID"]
    fino.ok("POST", f"/users/{uid}/banking/test-account", json={"userName": "finocontext1"})   # analysis: instant
    cockpit = fino.ok("GET", f"/users/{uid}/cockpit/person")
    link = fino.ok("GET", f"/users/{uid}/cockpit/link", params={"expires-in": "600"})
    assert link["expireTimestamp"] == "2024-06-25T10:10:00"

    response = page.goto(link["url"])
    assert response.status == 200
    expect(page.locator("#cockpit-title")).to_contain_text("Finanz-Cockpit · Max Mustermann")
    expect(page.locator("#income-total")).to_have_text(euro(cockpit["income"]["total"]))
    expect(page.locator("#spending-total")).to_have_text(euro(cockpit["spending"]["total"]))
    rows = page.locator("table#household tbody tr")
    expect(rows).to_have_count(7)
    accounts = page.locator("table#accounts tbody tr")
    expect(accounts).to_have_count(len(cockpit["accountData"]["accounts"]) + len(cockpit["accountData"]["creditCards"]))
    expect(page.locator("#recommendations")).to_be_visible()
    shots(page, "cockpit")

    # iframe-friendly: a client page embeds the cockpit
    page.set_content(f'<html><body><h1>Bankportal</h1><iframe id="c" src="{link["url"]}" width="1000" '
                     f'height="800"></iframe></body></html>')
    frame = page.frame_locator("#c")
    expect(frame.locator("#income-total")).to_have_text(euro(cockpit["income"]["total"]))
    shots(page, "embedded")

    fino.control("POST", "/clock/advance", {"seconds": 599})
    assert page.goto(link["url"]).status == 200
    fino.control("POST", "/clock/advance", {"seconds": 1})
    response = page.goto(link["url"])
    assert response.status == 401
    expect(page.locator("#error-title")).to_have_text("Link abgelaufen")
    shots(page, "expired")
