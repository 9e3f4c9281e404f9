"""The dashboard (/_sandbox/ui) driven in headless Chromium against a served, token-locked sandbox: log in with
the admin token, complete a pending job from the tenant page, read the journal and an entry, redeliver a webhook.

Each effect is checked through the control API as well as on the page. The sandbox clock is frozen, so the job
only moves when the button is clicked. Screenshots land in ``test-artifacts/browser/<test>/``.
"""
from __future__ import annotations


import pytest
import requests

from .conftest import chromium_executable, serve_app

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.skipif(
    chromium_executable() is None,
    reason="no Chromium executable: set SANDBOX_CHROMIUM or install Debian's chromium (/usr/bin/chromium)")

TOKEN = "browser-dashboard-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


class Served:
    """A token-locked sandbox on a loopback port, a webhook recorder and a requests session for control calls."""

    def __init__(self, port: int, sent: list):
        self.base_url = f"http://127.0.0.1:{port}"
        self.sent = sent
        self.http = requests.Session()
        self.http.trust_env = False

    def url(self, path: str) -> str:
        return self.base_url + path

    def call(self, method: str, path: str, **kw) -> requests.Response:
        return self.http.request(method, self.url(path), timeout=10, **kw)

    def control(self, method: str, path: str, json: dict | None = None) -> dict:
        resp = self.call(method, "/_sandbox" + path, json=json, headers=ADMIN)
        assert resp.status_code < 300, (path, resp.status_code, resp.text)
        return resp.json()


@pytest.fixture
def served():

    from sandbox import create_app
    from sandbox.core.store import MemoryStore

    sent: list = []

    def sender(method, url, body, headers, timeout=5.0):
        sent.append((method, url))
        return 503, None   # stays retryable: the redelivery is a visible new attempt

    app = create_app({"SEED": 3, "ADMIN_TOKEN": TOKEN}, store=MemoryStore(), webhook_sender=sender)
    with serve_app(app) as port:
        live = Served(port, sent)
        try:
            yield live
        finally:
            live.http.close()


def world(s: Served) -> dict:
    """Tenant acme with a RUNNING financial-report job and one webhook delivery, on a frozen clock."""
    s.control("POST", "/clock/freeze")
    secret = s.control("POST", "/clients", {"client_id": "acme"})["client_secret"]
    token = s.call("POST", "/open-finance/oauth/token",
                   json={"userId": "john@example.com", "clientId": "acme", "clientSecret": secret}).json()
    job = s.call("POST", "/open-finance/financial-report/318422557",
                 headers={"Authorization": f"Bearer {token['accessToken']}"}).json()["jobId"]
    s.control("POST", "/webhooks/subscriptions", {"provider": "open_finance", "tenant": "acme",
                                                  "url": "http://127.0.0.1:9/hook"})
    delivery = s.control("POST", "/webhooks/fire", {"provider": "open_finance", "tenant": "acme"})["deliveries"][0]
    return {"job": job, "delivery": delivery["id"], "secret": secret}


def test_dashboard_login_complete_job_journal_and_redeliver(served: Served, page: Page, shots):
    w = world(served)
    assert served.call("GET", "/_sandbox/ui/").status_code == 401

    # log in with the admin token
    page.goto(served.url("/_sandbox/ui/"))
    expect(page.locator("#token")).to_be_visible()
    shots(page, "login")
    page.locator("#token").fill(TOKEN)
    page.locator("#login-submit").click()
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("tr[data-tenant=acme]")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "sandbox_ui_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    shots(page, "overview")

    # the tenant page: the pending job, completed with its button
    page.locator("tr[data-tenant=acme] a").first.click()
    expect(page.locator("#tenant-name")).to_have_text("acme")
    row = page.locator(f"#job-{w['job']}")
    expect(row.locator(".job-state")).to_contain_text("RUNNING")
    shots(page, "tenant-running")
    row.locator("button.job-complete").click()
    expect(page.locator(f"#job-{w['job']} .job-state")).to_contain_text("DONE")
    expect(page.locator(f"#job-{w['job']} button.job-complete")).to_have_count(0)
    assert served.control("GET", f"/jobs/{w['job']}")["state"] == "DONE"
    shots(page, "tenant-done")

    # the journal, then one entry (redacted by the journal, escaped by the page)
    page.get_by_role("link", name="Journal", exact=True).click()
    expect(page.locator("#journal tr.entry").first).to_be_visible()
    token_row = page.locator("#journal tr.entry", has_text="open_finance.create_token")
    expect(token_row).to_have_count(1)
    shots(page, "journal")
    token_row.locator("a.entry-link").click()
    expect(page.locator("#request-body")).to_contain_text('"clientSecret": "[redacted]"')
    expect(page.locator("#request-body")).to_contain_text("john@example.com")
    expect(page.locator("#response-body")).to_contain_text('"accessToken": "[redacted]"')
    expect(page.locator("#verdict")).to_contain_text("valid")
    assert w["secret"] not in page.content()
    shots(page, "entry")

    # webhooks: redeliver makes one more attempt
    before = len(served.control("GET", f"/webhooks/{w['delivery']}?tenant=acme")["attempts"])
    sends = len(served.sent)
    page.get_by_role("link", name="Webhooks", exact=True).click()
    delivery = page.locator(f"#delivery-{w['delivery']}")
    expect(delivery.locator(".delivery-attempts")).to_have_text(str(before))
    delivery.locator("button.redeliver").click()
    expect(page.locator(f"#delivery-{w['delivery']} .delivery-attempts")).to_have_text(str(before + 1))
    assert len(served.control("GET", f"/webhooks/{w['delivery']}?tenant=acme")["attempts"]) == before + 1
    assert len(served.sent) == sends + 1
    shots(page, "redelivered")

    # the clock form moves the frozen clock by exactly the seconds entered
    page.get_by_role("link", name="Overview", exact=True).click()
    now = served.control("GET", "/clock")["now"]
    page.locator("#advance-seconds").fill("120")
    page.locator("#advance").click()
    expect(page.locator("#clock-state")).to_have_text("frozen")
    from datetime import timedelta

    from sandbox.core.clock import isoformat, parse_instant
    expected = isoformat(parse_instant(now) + timedelta(seconds=120))
    expect(page.locator("#clock-now")).to_have_text(expected)
    assert served.control("GET", "/clock")["now"] == expected

    # logging out locks the dashboard again
    page.locator("#logout").click()
    expect(page.locator("#token")).to_be_visible()
    assert served.call("GET", "/_sandbox/ui/", headers={"Cookie": "sandbox_ui_session=forged"}).status_code == 401


def test_dashboard_refuses_a_cross_site_form(served: Served, page: Page, chromium):
    """A page on another origin posting the clock form (even with a token copied from the dashboard) is refused."""
    world(served)
    before = served.control("GET", "/clock")["now"]
    page.goto(served.url("/_sandbox/ui/login"))
    page.locator("#token").fill(TOKEN)
    page.locator("#login-submit").click()
    expect(page.locator("h1")).to_have_text("Overview")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    # another origin (localhost vs 127.0.0.1 differ as sites only by name: use a data: URL, an opaque origin)
    attack = (f"<form method=post action='{served.url('/_sandbox/ui/clock')}'>"
              f"<input name=csrf value='{csrf}'><input name=action value=advance>"
              f"<input name=seconds value=3600><button id=go>go</button></form>")
    page.goto("data:text/html," + attack)
    page.locator("#go").click()
    page.wait_for_load_state()
    assert served.control("GET", "/clock")["now"] == before
