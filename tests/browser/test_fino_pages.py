"""The finoOS Banking UI (``/fino/uba/auth``) and the money transfer SCA page (``/fino/uba/payment``) clicked through
in headless Chromium (fino.md sections 9, 12, 14): connect, error, exit, multibanking, embedded postMessage events,
and the payment TAN. Screenshots land in ``test-artifacts/browser/<test>/``."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests

from .conftest import chromium_executable, serve_app

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    chromium_executable() is None,
    reason="no Chromium executable: set SANDBOX_CHROMIUM or install Debian's chromium (/usr/bin/chromium)")]

PIN, TAN = "12345", "123456"
IP = {"User-IP": "192.0.2.10"}


class FinoLive:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()
        self.http.trust_env = False
        r = self.http.post(f"{base_url}/fino/api/auth", data=urlencode({
            "client_id": "sandbox-client", "client_secret": "sandbox-secret", "grant_type": "client_credentials"}),
            headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
        assert r.status_code == 200, r.text
        self.h = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def call(self, method: str, path: str, **kw) -> requests.Response:
        headers = {**self.h, **kw.pop("headers", {})}
        return self.http.request(method, f"{self.base_url}/fino/api{path}", headers=headers, timeout=10, **kw)

    def user(self) -> str:
        r = self.call("POST", "/users", json={"type": "person", "name": "Erika Mustermann"})
        assert r.status_code == 201, r.text
        return r.json()["user"]["userID"]

    def session(self, user_id: str, body: dict, query: dict | None = None, kind: str = "connect") -> dict:
        r = self.call("POST", f"/users/{user_id}/banking/{kind}", json=body, params=query or {})
        assert r.status_code == 200, r.text
        return r.json()

    def accounts(self, user_id: str) -> list[dict]:
        r = self.call("GET", f"/users/{user_id}/banking/accounts", params={"includeTransactions": "false"})
        assert r.status_code == 200, r.text
        return r.json()["accounts"]


@pytest.fixture
def fino():

    from contract_tests.partial_app import fino_app
    from sandbox.core.store import MemoryStore

    app = fino_app({"SEED": 9}, store=MemoryStore())
    with serve_app(app) as port:
        live = FinoLive(f"http://127.0.0.1:{port}")
        try:
            yield live
        finally:
            live.http.close()


def urls(cb) -> dict:
    return {"redirectURL": cb.url("/callback"), "errorURL": cb.url("/error"), "exitURL": cb.url("/exit")}


def step(page: Page, name: str):
    form = page.locator(f"form#step-{name}")
    expect(form).to_be_visible()
    return form


def bank_login(page: Page, shots, search: str, bank_name: str, user: str = "finocontext1", pin: str = PIN):
    step(page, "bank")
    page.locator("#q").fill(search)
    page.locator("#search").click()
    step(page, "bank")
    page.get_by_label(bank_name).check()
    shots(page, "bank")
    page.locator("#submit").click()
    credentials(page, shots, user, pin)


def credentials(page: Page, shots, user: str = "finocontext1", pin: str = PIN):
    step(page, "credentials")
    page.locator("#userName").fill(user)
    page.locator("#pin").fill(pin)
    shots(page, "credentials")
    page.locator("#submit").click()


def sca_and_accounts(page: Page, shots) -> list[str]:
    step(page, "sca")
    page.get_by_label("pushTAN").check()
    page.locator("#tan").fill(TAN)
    shots(page, "sca")
    page.locator("#submit").click()
    step(page, "accounts")
    boxes = page.locator("input[name=accountIds]")
    ids = [boxes.nth(i).get_attribute("value") for i in range(boxes.count())]
    shots(page, "accounts")
    page.locator("#submit").click()
    return ids


def test_connect_success(page, shots, fino, callback_server):
    uid = fino.user()
    s = fino.session(uid, {**urls(callback_server), "accountTypes": ["GIRO", "KREDIT_KARTE"]})
    assert page.goto(s["redirectURL"]).status == 200
    bank_login(page, shots, "Commerz", "Commerzbank")
    ids = sca_and_accounts(page, shots)
    page.wait_for_url(lambda u: callback_server.is_callback(u))
    shots(page, "callback")
    [hit] = callback_server.callbacks()
    assert hit.query == [("userID", uid)]
    accounts = fino.accounts(uid)
    assert sorted(a["accountId"] for a in accounts) == sorted(ids)
    assert {a["type"] for a in accounts} <= {"GIRO", "KREDIT_KARTE"} and {a["bankCode"] for a in accounts} == {"37040044"}


def test_connect_error_after_wrong_pins_and_scenario(page, shots, fino, callback_server):
    uid = fino.user()
    s = fino.session(uid, urls(callback_server), {"bankCode": "10070000"})
    page.goto(s["redirectURL"])
    for n in range(2):
        credentials(page, shots, pin="00000")
        expect(page.locator("#error")).to_contain_text(f"Verbleibende Versuche: {2 - n}")
    credentials(page, shots, pin="00000")
    page.wait_for_url(lambda u: callback_server.is_callback(u, "/error"))
    assert callback_server.callbacks("/error")[0].query == [("userID", uid)]
    s = fino.session(uid, urls(callback_server), {"bankCode": "10070000"})
    page.goto(s["redirectURL"])
    credentials(page, shots, user="finocontext-error")
    page.wait_for_url(lambda u: callback_server.is_callback(u, "/error"))
    assert len(callback_server.callbacks("/error")) == 2 and fino.accounts(uid) == []


def test_exit(page, shots, fino, callback_server):
    uid = fino.user()
    page.goto(fino.session(uid, urls(callback_server))["redirectURL"])
    step(page, "bank")
    page.locator("#exit").click()
    page.wait_for_url(lambda u: callback_server.is_callback(u, "/exit"))
    assert callback_server.callbacks("/exit")[0].query == [("userID", uid)]


def test_multibanking(page, shots, fino, callback_server):
    uid = fino.user()
    page.goto(fino.session(uid, urls(callback_server), {"multiple": "true"})["redirectURL"])
    bank_login(page, shots, "ING", "ING-DiBa")
    sca_and_accounts(page, shots)
    step(page, "overview")
    expect(page.locator("#logins li")).to_have_count(1)
    page.locator("#add").click()
    bank_login(page, shots, "Hamburger", "Hamburger Sparkasse")
    sca_and_accounts(page, shots)
    step(page, "overview")
    expect(page.locator("#logins li")).to_have_count(2)
    shots(page, "overview")
    page.locator("#submit").click()
    page.wait_for_url(lambda u: callback_server.is_callback(u))
    assert {a["bankCode"] for a in fino.accounts(uid)} == {"50010517", "20050550"}


def test_embedded_banking_ui_posts_events_to_the_parent(page, shots, fino, callback_server):
    uid = fino.user()
    s = fino.session(uid, urls(callback_server), {"demo": "true"})
    callback_server.pages["/host"] = (
        "<!doctype html><html><body><h1>host</h1><ol id='events'></ol>"
        f"<iframe id='uba' src='{s['redirectURL']}' width='600' height='700'></iframe>"
        "<script>window.addEventListener('message', function (e) { var li = document.createElement('li');"
        " li.textContent = e.data.type + ' ' + e.data.userID; document.getElementById('events').appendChild(li);"
        " });</script></body></html>")
    page.goto(callback_server.url("/host"))
    frame = page.frame_locator("#uba")
    expect(frame.locator("form#step-credentials")).to_be_visible()
    frame.locator("input[name=userName][value=finocontext1]").check()
    frame.locator("#submit").click()
    expect(frame.locator("form#step-accounts")).to_be_visible()
    frame.locator("#submit").click()
    expect(page.locator("#events li")).to_have_text([f"uba:success {uid}"])
    shots(page, "embedded")
    assert any(a["iban"] == "DE67100200004711951500" for a in fino.accounts(uid))


def test_payment_sca_page(page, shots, fino):
    uid = fino.user()
    r = fino.call("POST", f"/users/{uid}/banking/test-account", json={})
    login, account = r.json()["bankLoginId"], r.json()["data"][0]["accountId"]
    seen = []

    def app_site(route):
        seen.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1 id='app'>app</h1>")
    page.route("https://my-app.example.com/**", app_site)
    body = {"accountId": account, "moneyTransferInfos": [
        {"amount": -120.5, "creditor": {"iban": "DE89370400440532013000", "name": "Hausverwaltung Schulz"},
         "purpose": "Miete Februar"}], "redirectUrl": "https://my-app.example.com/paid",
        "fallbackUrl": "https://my-app.example.com/failed", "exitUrl": "https://my-app.example.com/left"}
    r = fino.call("POST", f"/users/{uid}/banking/bank-logins/{login}/money-transfers", json=body, headers=IP)
    assert r.status_code == 451, r.text
    payment = r.json()
    page.goto(payment["redirectURL"])
    expect(page.locator("#total")).to_have_text("120,50 EUR")
    page.locator("#tan").fill("000000")
    page.locator("#submit").click()
    expect(page.locator("#error")).to_contain_text("TAN")
    page.locator("#tan").fill(TAN)
    shots(page, "tan")
    page.locator("#submit").click()
    expect(page.locator("#app")).to_be_visible()
    assert seen == [f"https://my-app.example.com/paid?paymentId={payment['paymentId']}&userID={uid}"]
    got = fino.call("GET", f"/users/{uid}/banking/bank-logins/{login}/money-transfers/{payment['paymentId']}",
                    headers=IP).json()
    assert got["status"] == "EXECUTED"
    r = fino.call("GET", f"/users/{uid}/banking/accounts")
    booked = [t for a in r.json()["accounts"] for t in a["transactions"] if t["purpose"] == "Miete Februar"]
    assert [t["amount"] for t in booked] == [-120.5]
