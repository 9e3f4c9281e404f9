"""The finX widget (finleap.md sections 3, 5, 8) clicked through in headless Chromium.

A client creates a widget link over HTTP, the browser completes the hosted widget, the widget redirects to a local
callback server, and the client exchanges the code and reads the report. Screenshots of every step land in
``test-artifacts/browser/<test>/``.
"""
from __future__ import annotations

import re

import pytest

from .conftest import chromium_executable

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.skipif(
    chromium_executable() is None,
    reason="no Chromium executable: set SANDBOX_CHROMIUM or install Debian's chromium (/usr/bin/chromium)")

PASSWORD, OTP = "654321", "123456"
BANK = "mockbank-embedded"


# --- widget steps ---------------------------------------------------------------------------------------------------

def step_form(page: Page, step: str):
    """The form of widget step ``step`` (bank, login, sca, otp, accounts); waits until it is shown."""
    form = page.locator(f"form#step-{step}")
    expect(form).to_be_visible()
    return form


def choose_bank(page: Page, shots, bank_id: str = BANK) -> None:
    step_form(page, "bank")
    page.locator(f"input[name=bank_id][value='{bank_id}']").check()
    shots(page, "bank")
    page.locator("#submit").click()


def log_in(page: Page, shots, username: str = "figo01", password: str = PASSWORD, shot: str = "login") -> None:
    step_form(page, "login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    shots(page, shot)
    page.locator("#submit").click()


def choose_sca(page: Page, shots, method: str = "Auth Meth by Phone") -> None:
    step_form(page, "sca")
    page.get_by_label(method).check()
    shots(page, "sca")
    page.locator("#submit").click()


def enter_otp(page: Page, shots, otp: str = OTP) -> None:
    step_form(page, "otp")
    page.locator("#otp").fill(otp)
    shots(page, "otp")
    page.locator("#submit").click()


def choose_account(page: Page, shots) -> str:
    step_form(page, "accounts")
    first = page.locator("input[name=accounts]").first
    first.check()
    shots(page, "accounts")
    return first.get_attribute("value")


def wait_for_callback(page: Page, callback_server):
    page.wait_for_url(callback_server.is_callback)
    expect(page.locator("#callback")).to_have_text("callback received")
    hits = callback_server.callbacks()
    assert len(hits) == 1, [h.raw_query for h in hits]
    return hits[0]


def complete_widget(page: Page, shots, callback_server, username: str = "figo01"):
    """Bank -> login -> SCA -> OTP -> account -> redirect; returns the recorded callback."""
    choose_bank(page, shots)
    expect(page.locator("form#step-login h2")).to_contain_text("Mockbank - Embedded")
    log_in(page, shots, username)
    choose_sca(page, shots)
    enter_otp(page, shots)
    choose_account(page, shots)
    page.locator("#submit").click()
    hit = wait_for_callback(page, callback_server)
    shots(page, "callback")
    return hit


# --- tests ------------------------------------------------------------------------------------------------------------

@pytest.mark.browser
def test_income_report_success_path(page, shots, sandbox_server, callback_server):
    redirect_uri = callback_server.url()
    state = "order 42/ü&x=1"   # needs encoding on the way back
    link = sandbox_server.create_link("income-report", {"redirect_uri": redirect_uri, "state": state,
                                                        "language": "en"})
    response = page.goto(link["location"])
    assert response.status == 200
    expect(page.locator("html")).to_have_attribute("lang", "en")

    hit = complete_widget(page, shots, callback_server)

    assert hit.keys == ["code", "state", "success", "flow_id"]
    assert hit.raw_query.startswith("code=")       # the Postman collections split the URL on '&' and take [0]
    assert hit.params["success"] == "true"
    assert hit.params["state"] == state
    assert hit.params["flow_id"] == link["id"]
    code = hit.params["code"]
    assert code.startswith("eyJ")

    tokens = sandbox_server.exchange_code(code, redirect_uri)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("A") and body["refresh_token"].startswith("R")

    report = sandbox_server.bearer_get(f"/finleap/rest/income-reports/{link['id']}", body["access_token"])
    assert report.status_code == 200, report.text
    assert report.json()["period"] == 12

    again = sandbox_server.exchange_code(code, redirect_uri)
    assert again.status_code == 400, again.text
    assert again.json()["error"]["code"] == 1100

    # the link is single use: opening it again shows an error page, no second redirect
    reopened = page.goto(link["location"])
    assert reopened.status == 400
    expect(page.locator("#error")).to_contain_text("already been used")
    shots(page, "reopened")
    assert len(callback_server.callbacks()) == 1


@pytest.mark.browser
def test_cancel_on_login_step(page, shots, sandbox_server, callback_server):
    link = sandbox_server.create_link("income-report", {"redirect_uri": callback_server.url(), "state": "c-1",
                                                        "language": "en"})
    page.goto(link["location"])
    choose_bank(page, shots)
    step_form(page, "login")
    page.locator("#username").fill("figo01")
    shots(page, "login")
    page.locator("#cancel").click()

    hit = wait_for_callback(page, callback_server)
    shots(page, "callback")
    assert hit.query == [("state", "c-1"), ("success", "false"), ("cancel", "true"), ("flow_id", link["id"])]
    assert "code" not in hit.params


@pytest.mark.browser
def test_three_wrong_passwords_end_the_flow(page, shots, sandbox_server, callback_server):
    link = sandbox_server.create_link("income-report", {"redirect_uri": callback_server.url(), "state": "w-1",
                                                        "language": "en"})
    page.goto(link["location"])
    choose_bank(page, shots)
    for attempt, left in ((1, 2), (2, 1)):
        log_in(page, shots, password="000000", shot=f"wrong-password-{attempt}")
        # the attempts counter tells the re-rendered page from the previous one (no race with the old page)
        expect(page.locator("#error")).to_have_text(f"Wrong username or PIN. · Attempts left: {left}")
        assert callback_server.callbacks() == []
    shots(page, "error")
    log_in(page, shots, password="000000", shot="wrong-password-3")

    hit = wait_for_callback(page, callback_server)
    shots(page, "callback")
    assert hit.query == [("state", "w-1"), ("success", "false"), ("flow_id", link["id"])]


@pytest.mark.browser
@pytest.mark.parametrize("username, affinity", [("figo01", "VERY_HIGH"), ("figo01+high", "HIGH"),
                                                ("figo01+low", "LOW")])
def test_account_verification(page, shots, sandbox_server, callback_server, username, affinity):
    redirect_uri = callback_server.url()
    link = sandbox_server.create_link("account-verification", {"redirect_uri": redirect_uri, "name": "Maria Müller",
                                                               "state": "av-1", "language": "en"})
    page.goto(link["location"])
    hit = complete_widget(page, shots, callback_server, username=username)
    assert hit.keys == ["code", "state", "success", "flow_id"]
    assert hit.params["success"] == "true" and hit.params["flow_id"] == link["id"]

    tokens = sandbox_server.exchange_code(hit.params["code"], redirect_uri)
    assert tokens.status_code == 200, tokens.text
    report = sandbox_server.bearer_get(f"/finleap/rest/account-verifications/{link['id']}",
                                       tokens.json()["access_token"])
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["provided"]["name"] == "Maria Müller"
    assert body["matched"]["affinity"] == affinity


@pytest.mark.browser
def test_enter_in_the_login_form_continues(page, shots, sandbox_server, callback_server):
    """Implicit submission uses the form's first submit button: that must be Continue, not Cancel."""
    link = sandbox_server.create_link("income-report", {"redirect_uri": callback_server.url(), "state": "k-1",
                                                        "language": "en"})
    page.goto(link["location"])
    choose_bank(page, shots)
    step_form(page, "login")
    page.locator("#username").fill("figo01")
    page.locator("#password").fill(PASSWORD)
    shots(page, "login")
    page.locator("#password").press("Enter")
    expect(page.locator("form#step-sca").or_(page.locator("#callback"))).to_be_visible()
    shots(page, "after-enter")
    assert callback_server.callbacks() == [], "Enter cancelled the flow"
    step_form(page, "sca")


HOST_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>client app</title></head>
<body style="margin:0;font-family:sans-serif"><h1 style="font-size:16px;margin:8px">client app with the widget</h1>
<iframe src="{src}" title="finX widget" style="width:520px;height:760px;border:1px solid #999"></iframe></body></html>"""


@pytest.mark.browser
def test_widget_works_inside_an_iframe(page, shots, sandbox_server, callback_server):
    link = sandbox_server.create_link("income-report", {"redirect_uri": callback_server.url(), "state": "if-1",
                                                        "language": "en"})
    callback_server.pages["/host"] = HOST_PAGE.format(src=link["location"])
    widget_responses = []
    page.on("response", lambda r: widget_responses.append(r) if "/finleap/widget/" in r.url else None)

    page.goto(callback_server.url("/host"))   # another origin (other port) than the widget
    frame = page.frame_locator("iframe")
    expect(frame.locator("form#step-bank")).to_be_visible()
    shots(page, "bank")
    frame.locator(f"input[name=bank_id][value='{BANK}']").check()
    frame.locator("#submit").click()
    expect(frame.locator("form#step-login")).to_be_visible()
    frame.locator("#username").fill("figo01")
    frame.locator("#password").fill(PASSWORD)
    shots(page, "login")
    frame.locator("#submit").click()
    expect(frame.locator("form#step-sca")).to_be_visible()
    shots(page, "sca")
    frame.get_by_label("Auth Meth by Phone").check()
    frame.locator("#submit").click()
    frame.locator("#otp").fill(OTP)
    frame.locator("#submit").click()
    expect(frame.locator("form#step-accounts")).to_be_visible()
    frame.locator("#submit").click()

    # the redirect lands inside the frame; the embedding page stays where it is
    expect(frame.locator("#callback")).to_have_text("callback received")
    shots(page, "callback")
    assert page.url == callback_server.url("/host")
    hits = callback_server.callbacks()
    assert len(hits) == 1 and hits[0].keys == ["code", "state", "success", "flow_id"]
    assert hits[0].params["flow_id"] == link["id"]

    assert len(widget_responses) >= 6   # GET + bank, login, SCA, OTP and account posts
    for resp in widget_responses:
        headers = resp.all_headers()
        assert "x-frame-options" not in headers, (resp.url, headers)
        assert "frame-ancestors" not in headers.get("content-security-policy", ""), (resp.url, headers)


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _tamper_signature(location: str, position: int = 0) -> str:
    """Change one character of the token's signature (by default the first one)."""
    head, token = location.split("?token=")
    header, payload, signature = token.split(".")
    chars = list(signature)
    chars[position] = B64URL[B64URL.index(chars[position]) ^ 1]   # a neighbouring base64url digit
    return f"{head}?token={header}.{payload}.{''.join(chars)}"


@pytest.mark.browser
@pytest.mark.parametrize("how", [
    "tampered",
    # the 43rd base64url character of an HS256 signature carries 2 unused bits: altering one must still be rejected
    "tampered-last-char",
    "expired",
])
def test_bad_widget_token_shows_an_error_page(page, shots, sandbox_server, callback_server, how):
    link = sandbox_server.create_link("income-report", {"redirect_uri": callback_server.url(), "state": "t-1",
                                                        "language": "en"})
    url = link["location"]
    if how.startswith("tampered"):
        url = _tamper_signature(url, -1 if how == "tampered-last-char" else 0)
        assert url != link["location"]
    else:
        moved = sandbox_server.post("/_sandbox/clock/advance", {"seconds": 7200}, auth=None)
        assert moved.status_code == 200, moved.text

    response = page.goto(url)
    assert response.status == 400
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error")).to_contain_text("invalid or has expired")
    expect(page.locator("form")).to_have_count(0)
    shots(page, "error")
    assert page.url == url
    assert callback_server.hits == []


@pytest.mark.browser
@pytest.mark.parametrize("language, html_lang, continue_text, cancel_text", [
    ("de", "de", "Weiter", "Abbrechen"),
    (None, "de", "Weiter", "Abbrechen"),      # de is the default
    ("en", "en", "Continue", "Cancel"),
    ("ar", "ar", "متابعة", "إلغاء"),
], ids=["de", "default", "en", "ar"])
def test_widget_language(page, shots, sandbox_server, callback_server, language, html_lang, continue_text,
                         cancel_text):
    body = {"redirect_uri": callback_server.url(), "state": "l-1"}
    if language:
        body["language"] = language
    link = sandbox_server.create_link("income-report", body)
    page.goto(link["location"])
    step_form(page, "bank")
    expect(page.locator("html")).to_have_attribute("lang", html_lang)
    expect(page.locator("#submit")).to_have_text(continue_text)
    expect(page.locator("#cancel")).to_have_text(cancel_text)
    if html_lang == "ar":
        expect(page.locator("html")).to_have_attribute("dir", "rtl")
    else:
        expect(page.locator("html")).not_to_have_attribute("dir", re.compile(".+"))
    shots(page, "bank")
