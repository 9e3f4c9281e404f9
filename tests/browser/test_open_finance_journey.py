"""The Open Finance consent journey (open_finance.md s.12) clicked through in headless Chromium: approve and reject
with redirects to a local callback server, the iframe window messages, and the Hebrew right-to-left page."""
from __future__ import annotations

import pytest

from .conftest import LiveSandbox, chromium_executable

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.skipif(chromium_executable() is None, reason="no Chromium executable")


def bearer(live: LiveSandbox, user: str = "browser@example.com") -> dict:
    r = live.http.post(live.url("/open-finance/oauth/token"), json={
        "userId": user, "clientId": "sandbox-client", "clientSecret": "sandbox-secret"}, timeout=10)
    return {"Authorization": f"Bearer {r.json()['accessToken']}"}


def create(live: LiveSandbox, h: dict, **body) -> dict:
    r = live.http.post(live.url("/open-finance/v2/connections"), json={"includeFakeProviders": True, **body},
                       headers=h, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def status(live: LiveSandbox, h: dict, cid: str) -> str:
    return live.http.get(live.url(f"/open-finance/v2/connections/{cid}"), headers=h, timeout=10).json()["status"]


@pytest.mark.browser
def test_journey_approve_redirects_and_the_connection_completes(page, shots, sandbox_server, callback_server):
    h = bearer(sandbox_server)
    created = create(sandbox_server, h, language="en", redirectUrl=callback_server.url(),
                     providerIds=["open-finance-sandbox", "leumi-sandbox"])
    assert page.goto(created["connectUrl"]).status == 200
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    expect(page.locator("form#step-provider")).to_be_visible()
    expect(page.locator("input[name=providerId]")).to_have_count(2)
    shots(page, "provider")
    page.locator("#provider-open-finance-sandbox").check()
    page.locator("#submit").click()
    expect(page.locator("form#step-consent")).to_be_visible()
    page.locator("#psuId").fill("043510023")
    shots(page, "consent")
    page.locator("#continue").click()
    expect(page.locator("form#step-bank")).to_be_visible()
    shots(page, "bank")
    page.locator("#approve").click()
    page.wait_for_url(callback_server.is_callback)
    shots(page, "callback")
    (hit,) = callback_server.callbacks()
    assert hit.query == [("connectionId", created["id"]), ("status", "FETCHING")]
    sandbox_server.http.post(sandbox_server.url("/_sandbox/clock/advance"), json={"seconds": 5}, timeout=10)
    assert status(sandbox_server, h, created["id"]) == "COMPLETED"
    assert page.goto(created["connectUrl"]).status == 400   # the link is spent


@pytest.mark.browser
def test_journey_reject(page, shots, sandbox_server, callback_server):
    h = bearer(sandbox_server)
    created = create(sandbox_server, h, language="en", redirectUrl=callback_server.url(), psuId="321547416",
                     providerIds=["open-finance-sandbox"])
    page.goto(created["connectUrl"])
    expect(page.locator("#psuId")).to_have_value("321547416")
    expect(page.locator("#psuId")).to_have_attribute("readonly", "")
    page.locator("#reject").click()
    page.wait_for_url(callback_server.is_callback)
    assert callback_server.callbacks()[0].params == {"connectionId": created["id"], "status": "REJECTED"}
    assert status(sandbox_server, h, created["id"]) == "REJECTED"


@pytest.mark.browser
def test_hebrew_journey_is_right_to_left(page, shots, sandbox_server):
    h = bearer(sandbox_server)
    created = create(sandbox_server, h, language="he", providerIds=["open-finance-sandbox"])
    page.goto(created["connectUrl"])
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "he")
    expect(page.locator("#continue")).to_have_text("המשך לבנק")
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    # in RTL the primary button sits right of the reject button
    cont, reject = page.locator("#continue").bounding_box(), page.locator("#reject").bounding_box()
    assert cont["x"] > reject["x"]
    shots(page, "hebrew")
    page.locator("#psuId").fill("12")
    page.locator("#psuId").evaluate("el => el.removeAttribute('pattern')")   # let the server judge it
    page.locator("#continue").click()
    expect(page.locator("#error")).to_have_text("נא להזין מספר זהות תקין (5-9 ספרות).")
    page.locator("#psuId").fill("1772268")
    page.locator("#continue").click()
    page.locator("#approve").click()
    expect(page.locator("#result")).to_have_attribute("data-outcome", "success")
    shots(page, "done")


@pytest.mark.browser
@pytest.mark.parametrize("action,events,final", [("approve", ["redirectToBank", "success"], "FETCHING"),
                                                 ("reject", ["redirectToBank", "fail"], "REJECTED"),
                                                 ("close", ["redirectToBank", "close"], "TERMINATED_BY_USER")])
def test_iframe_posts_window_messages(page, shots, sandbox_server, callback_server, action, events, final):
    h = bearer(sandbox_server)
    created = create(sandbox_server, h, language="en", iframe=True, providerIds=["open-finance-sandbox"],
                     redirectUrl=callback_server.url())
    callback_server.pages["/host"] = (
        "<!doctype html><html><head><meta charset='utf-8'><title>host</title></head><body>"
        "<script>window.messages = []; window.addEventListener('message', e => window.messages.push(e.data));</script>"
        f"<iframe id='journey' src='{created['connectUrl']}' width='600' height='700'></iframe></body></html>")
    page.goto(callback_server.url("/host"))
    frame = page.frame_locator("#journey")
    frame.locator("#psuId").fill("043510023")
    frame.locator("#continue").click()
    expect(frame.locator("form#step-bank")).to_be_visible()
    frame.locator(f"#{action}").click()
    page.wait_for_function(f"window.messages.length >= {len(events)}")
    shots(page, "framed")
    assert page.evaluate("window.messages") == events
    # after the message the frame goes on to redirectUrl with connectionId and status
    for _ in range(100):
        if callback_server.callbacks():
            break
        page.wait_for_timeout(50)
    assert callback_server.callbacks()[0].params == {"connectionId": created["id"], "status": final}
