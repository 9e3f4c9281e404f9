"""Finpass consent journeys (finpass.md s.10) clicked through in headless Chromium: the AA consent page and the
AA-BSA journey page, each redirecting to a local callback server; the client then reads the data over HTTP."""
from __future__ import annotations


import pytest

from .conftest import LiveSandbox, chromium_executable, serve_app

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.skipif(chromium_executable() is None, reason="no Chromium executable")
KEYS = {"x-api-key": "sandbox-client", "x-api-secret": "sandbox-secret"}


@pytest.fixture
def finpass_server():

    from contract_tests.finpass_app import finpass_app
    from sandbox.core.store import MemoryStore

    app = finpass_app({"SEED": 3}, store=MemoryStore())
    with serve_app(app) as port:
        live = LiveSandbox(app, port)
        try:
            yield live
        finally:
            live.http.close()


def api(live, path, body):
    return live.http.post(live.url(path), json=body, headers=KEYS, timeout=10)


def drive(page, shots, url, approve=True):
    assert page.goto(url).status == 200
    expect(page.locator("form#step-otp")).to_be_visible()
    page.locator("#otp").fill("123456")
    shots(page, "otp")
    page.locator("#submit").click()
    expect(page.locator("form#step-accounts")).to_be_visible()
    expect(page.locator("input[name=accounts]").first).to_be_checked()
    shots(page, "accounts")
    page.locator("#approve" if approve else "#reject").click()


@pytest.mark.browser
def test_aa_consent_journey_approve(page, shots, finpass_server, callback_server):
    init = api(finpass_server, "/finpass/api/v1/services/account-aggregator/init",
               {"mobile_number": "9876543210", "consent_type": "loan_underwriting",
                "redirect_url": callback_server.url()}).json()["data"]
    drive(page, shots, init["redirect_url"])
    page.wait_for_url(callback_server.is_callback)
    shots(page, "callback")
    (hit,) = callback_server.callbacks()
    assert hit.query == [("client_id", init["client_id"]), ("status", "ACTIVE")]
    for _ in range(5):
        r = api(finpass_server, "/finpass/api/v1/services/account-aggregator/fetch-json-report",
                {"client_id": init["client_id"]})
        if r.status_code == 200:
            break
    assert r.status_code == 200 and r.json()["data"]["account_aggregator_json"]
    assert page.goto(init["redirect_url"]).status == 400   # single use


@pytest.mark.browser
def test_aa_consent_journey_reject(page, shots, finpass_server, callback_server):
    init = api(finpass_server, "/finpass/api/v1/services/account-aggregator/init",
               {"mobile_number": "9876543210", "consent_type": "loan_underwriting",
                "redirect_url": callback_server.url()}).json()["data"]
    drive(page, shots, init["redirect_url"], approve=False)
    page.wait_for_url(callback_server.is_callback)
    assert callback_server.callbacks()[0].params["status"] == "REJECTED"


@pytest.mark.browser
def test_aa_bsa_journey(page, shots, finpass_server, callback_server):
    init = api(finpass_server, "/finpass/api/v1/aa-bsa-journey/init",
               {"mobile_number": "9876543210", "redirect_url": callback_server.url()}).json()["data"]
    drive(page, shots, init["journey_url"])
    page.wait_for_url(callback_server.is_callback)
    shots(page, "callback")
    assert callback_server.callbacks()[0].query == [("client_id", init["client_id"]), ("status", "consent_granted")]
    status = None
    for _ in range(5):
        status = finpass_server.http.get(finpass_server.url("/finpass/api/v1/aa-bsa-journey/status"),
                                         params={"client_id": init["client_id"]}, headers=KEYS).json()["data"]["status"]
    assert status == "analysis_complete"
    analysis = finpass_server.http.get(finpass_server.url("/finpass/api/v1/aa-bsa-journey/analysis-json"),
                                       params={"client_id": init["client_id"]}, headers=KEYS)
    assert analysis.status_code == 200 and analysis.json()["data"]["monthly_trends"]
