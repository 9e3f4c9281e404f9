"""finX widget products (finleap-products.md s.3, 8) clicked through in headless Chromium: a one-time payment (debtor
choice, confirmation screen, receipt) and ongoing access (save credentials, then a second flow of the same user that
needs only SCA). Screenshots of every step land in ``test-artifacts/browser/<test>/``.
"""
from __future__ import annotations

import pytest

from .conftest import chromium_executable
from .test_finleap_widget import choose_bank, choose_sca, enter_otp, log_in, step_form, wait_for_callback

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.skipif(
    chromium_executable() is None,
    reason="no Chromium executable: set SANDBOX_CHROMIUM or install Debian's chromium (/usr/bin/chromium)")

PAYMENT = {"creditor": {"iban": "DE86990003540000002000", "name": "Peter Jackson"},
           "amount": {"value": 57.99, "currency": "EUR"}, "purpose": "Thank you for the fish",
           "type": "SEPA Instant transfer"}


@pytest.mark.browser
def test_onetime_payment_with_debtor_choice_and_confirmation(page, shots, sandbox_server, callback_server):
    link = sandbox_server.create_link("payment", {"redirect_uri": callback_server.url(), "state": "pay-1",
                                                  "language": "en", "payment": PAYMENT,
                                                  "readout": ["ACCOUNTS", "TRANSACTIONS"]})
    pending = sandbox_server.get(f"/finleap/payment-receipts/{link['id']}", auth=("sandbox-client", "sandbox-secret"))
    assert pending.status_code == 404 and pending.json()["error"]["code"] == 1004
    assert page.goto(link["location"]).status == 200
    choose_bank(page, shots)
    log_in(page, shots)
    choose_sca(page, shots)
    enter_otp(page, shots)
    step_form(page, "debtor")
    debtor = page.locator("input[name=accounts]").first
    expect(debtor).to_be_checked()
    debtor_label = page.locator("label.choice").first.inner_text()
    shots(page, "debtor")
    page.locator("#submit").click()
    step_form(page, "confirm")
    expect(page.locator("#creditor")).to_contain_text("Peter Jackson")
    expect(page.locator("#creditor")).to_contain_text("DE86990003540000002000")
    expect(page.locator("#amount")).to_contain_text("57.99 EUR")
    expect(page.locator("#purpose")).to_have_text("Thank you for the fish")
    expect(page.locator("#submit")).to_have_text("Pay now")
    shots(page, "confirm")
    page.locator("#submit").click()

    hit = wait_for_callback(page, callback_server)
    shots(page, "callback")
    assert hit.keys == ["code", "state", "success", "flow_id"] and hit.params["success"] == "true"
    receipt = sandbox_server.get(f"/finleap/payment-receipts/{link['id']}", auth=("sandbox-client", "sandbox-secret"))
    assert receipt.status_code == 200, receipt.text
    body = receipt.json()
    assert body["amount"] == {"value": 57.99, "currency": "EUR"} and body["creditor"]["name"] == "Peter Jackson"
    assert body["debtor"]["iban"] in debtor_label   # the account the user chose on the debtor step
    tokens = sandbox_server.exchange_code(hit.params["code"], callback_server.url()).json()
    txns = sandbox_server.bearer_get("/finleap/rest/transactions", tokens["access_token"]).json()["transactions"]
    assert any(t["amount"] == -57.99 and t["name"] == "Peter Jackson" and t["booked"] for t in txns)


@pytest.mark.browser
def test_ongoing_access_saves_credentials_for_the_next_flow(page, shots, sandbox_server, callback_server):
    redirect_uri = callback_server.url()
    first = sandbox_server.post("/finleap/ongoing/access", {"redirect_uri": redirect_uri, "state": "o-1",
                                                            "language": "en", "user_id": "browser-user"}).json()
    page.goto(first["location"])
    choose_bank(page, shots)
    step_form(page, "login")
    page.locator("#username").fill("figo01")
    page.locator("#password").fill("654321")
    page.get_by_label("Save my credentials").check()
    shots(page, "login-save")
    page.locator("#submit").click()
    choose_sca(page, shots)
    enter_otp(page, shots)
    step_form(page, "accounts")
    boxes = page.locator("input[name=accounts][type=checkbox]")   # multi-selection is the default (D-mb)
    chosen = boxes.count()
    assert chosen > 1
    for i in range(chosen):
        boxes.nth(i).check()
    shots(page, "accounts")
    page.locator("#submit").click()
    hit = wait_for_callback(page, callback_server)
    assert hit.params["success"] == "true"
    tokens = sandbox_server.exchange_code(hit.params["code"], redirect_uri).json()
    accounts = sandbox_server.bearer_get("/finleap/rest/accounts", tokens["access_token"]).json()["accounts"]
    assert len(accounts) == chosen

    # the same user, the same bank: the login is skipped, only SCA remains (saved credentials)
    second = sandbox_server.post("/finleap/ongoing/risk-report", {
        "redirect_uri": redirect_uri, "state": "o-2", "language": "en", "user_id": "browser-user",
        "provider_id": "mockbank-embedded"}).json()
    page.goto(second["location"])
    step_form(page, "sca")
    expect(page.locator("#saved-login")).to_have_text("Your saved credentials are used.")
    shots(page, "sca-saved")
    choose_sca(page, shots)
    enter_otp(page, shots)
    step_form(page, "accounts")
    page.locator("#submit").click()
    page.wait_for_url(lambda url: "state=o-2" in url)
    hits = [h for h in callback_server.callbacks() if h.params.get("state") == "o-2"]
    assert len(hits) == 1 and hits[0].params["success"] == "true"
    again = sandbox_server.exchange_code(hits[0].params["code"], redirect_uri).json()
    mine = {a["account_id"] for a in accounts}
    assert mine <= {a["account_id"] for a in sandbox_server.bearer_get("/finleap/rest/accounts",
                                                                        again["access_token"]).json()["accounts"]}
