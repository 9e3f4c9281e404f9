"""finX widget products (finleap-products.md s.2-4, 8, 13) inside the sandbox: type coercion, payment arithmetic
against the raw ledger, the F2 interface (flow_user / user_ledger), widget screens and token expiry, legacy codes,
bank table decisions. Expected values are recomputed from generate_ledger or from the data endpoints."""
from __future__ import annotations

import base64
import json
import re
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sandbox import create_app
from sandbox.core.errors import ValidationFailed
from sandbox.core.store import MemoryStore
from sandbox.core.validation import SCHEMA_DIR
from sandbox.ledger import generate_ledger
from sandbox.providers.finleap import data, errors
from sandbox.providers.finleap.service import PAYMENT_PERIOD_MONTHS, coerce_body

CB = "https://my-app.example.com/callback"
B = {"Authorization": "Basic " + base64.b64encode(b"sandbox-client:sandbox-secret").decode()}
PAYMENT = {"creditor": {"iban": "DE86990003540000002000", "name": "Peter Jackson"},
           "amount": {"value": 57.99, "currency": "EUR"}, "purpose": "Thank you for the fish"}
SCHEMAS = SCHEMA_DIR / "finleap"


@pytest.fixture
def app():
    return create_app({"SEED": 7}, store=MemoryStore())


@pytest.fixture
def http(app):
    client = app.test_client()
    client.post("/_sandbox/clock/freeze", json={"at": "2026-03-10T09:00:00Z"})
    return client


def link(http, path: str, **body) -> dict:
    r = http.post(f"/finleap/{path}", json={"redirect_uri": CB, **body}, headers=B)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def complete(http, flow_id: str, **options) -> dict:
    r = http.post(f"/_sandbox/flows/{flow_id}/complete", json={"outcome": "success", **options})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def tokens(http, done: dict) -> dict:
    code = parse_qs(urlsplit(done["redirect_url"]).query)["code"][0]
    r = http.post("/finleap/auth/token", json={"grant_type": "authorization_code", "code": code}, headers=B)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def bearer(tok: dict) -> dict:
    return {"Authorization": f"Bearer {tok['access_token']}"}


# --- coercion (s.2) -------------------------------------------------------------------------------------------
def test_error_messages_know_the_coercion_patterns():
    integer = json.loads((SCHEMAS / "defs" / "coercible_integer.json").read_text())
    boolean = json.loads((SCHEMAS / "defs" / "coercible_boolean.json").read_text())
    assert integer["pattern"] == errors.INTEGER_PATTERN and boolean["pattern"] == errors.BOOLEAN_PATTERN


@pytest.mark.parametrize("raw,expected", [("12", 12), (" 7 ", 7), ("+4", 4), (12, 12)])
def test_integer_strings_become_integers(raw, expected):
    assert coerce_body({"reporting_period": raw})["reporting_period"] == expected


@pytest.mark.parametrize("raw,expected", [("true", True), ("False", False), ("TRUE", True), (True, True)])
def test_boolean_strings_become_booleans(raw, expected):
    assert coerce_body({"allow_multi_selection": raw})["allow_multi_selection"] is expected


@pytest.mark.parametrize("body", [{"reporting_period": "12a"}, {"sync_period": ""}, {"save_secrets": "yes"}])
def test_unconvertible_strings_are_1000s(body):
    with pytest.raises(ValidationFailed):
        coerce_body(body)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=st.one_of(st.integers(-10**6, 10**6), st.text(max_size=8), st.booleans(), st.none(),
                       st.floats(allow_nan=True)),
       field=st.sampled_from(["reporting_period", "allow_multi_selection", "name"]),
       path=st.sampled_from(["onetime/risk-report", "ongoing/risk-report"]))
def test_any_risk_link_value_is_a_201_or_an_nrich_400(app, value, field, path):
    http = app.test_client()
    body = {"redirect_uri": CB, "user_id": "hyp", field: value}
    if path.startswith("onetime"):
        body.pop("user_id")
    r = http.post(f"/finleap/{path}", data=json.dumps(body, allow_nan=True), headers={
        **B, "Content-Type": "application/json"})
    assert r.status_code in (201, 400), r.get_data(as_text=True)
    if r.status_code == 400:
        assert r.get_json()["error"]["code"] == 1000


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(amount=st.one_of(st.integers(-5, 10**10), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6)),
       iban=st.sampled_from(["DE86990003540000002000", "DE86990003540000002001", "GB82WEST12345698765432", "x"]),
       when=st.one_of(st.none(), st.sampled_from(["2026-03-09", "2026-03-10", "2027-03-10", "2027-03-11", "2026-02-30"])))
def test_any_payment_is_a_201_or_an_nrich_400(app, amount, iban, when):
    http = app.test_client()
    http.post("/_sandbox/clock/freeze", json={"at": "2026-03-10T09:00:00Z"})
    payment = {**PAYMENT, "creditor": {"iban": iban, "name": "P"}, "amount": {"value": amount}}
    if when:
        payment["execution_date"] = when
    r = http.post("/finleap/onetime/payment", json={"redirect_uri": CB, "payment": payment}, headers=B)
    assert r.status_code in (201, 400), r.get_data(as_text=True)
    ok = (_valid_amount(amount) and iban in ("DE86990003540000002000", "GB82WEST12345698765432")
          and when in (None, "2026-03-10", "2027-03-10"))
    assert (r.status_code == 201) == ok, (amount, iban, when, r.get_json())


def _valid_amount(amount) -> bool:
    """The rule of finleap-products.md s.8, written independently: > 0, at most 2 decimals; numbers or numeric
    strings (marshmallow reads "57.99"); below 10^9 (sandbox bound)."""
    if isinstance(amount, bool):
        return False
    if isinstance(amount, str):
        if not re.fullmatch(r" *[0-9]{1,12}(\.[0-9]{1,12})? *", amount):
            return False
        amount = amount.strip()
    value = Decimal(str(amount))
    return 0 < value < 10**9 and value * 100 == int(value * 100)


@pytest.mark.parametrize("when,status", [("2026-03-09", 400), ("2026-03-10", 201), ("2027-03-10", 201),
                                         ("2027-03-11", 400)])
def test_execution_date_boundaries_on_the_sandbox_clock(http, when, status):
    r = http.post("/finleap/onetime/payment", headers=B, json={
        "redirect_uri": CB, "payment": {**PAYMENT, "execution_date": when}})
    assert r.status_code == status, r.get_json()


# --- payments against the raw ledger -------------------------------------------------------------------------------
def test_an_instant_payment_lowers_the_debtor_balance_by_exactly_its_amount(http):
    pay = link(http, "onetime/payment", payment={**PAYMENT, "type": "SEPA Instant transfer"},
               readout=["ACCOUNTS", "TRANSACTIONS"])
    tok = tokens(http, complete(http, pay["id"]))
    (account,) = http.get("/finleap/rest/accounts", headers=bearer(tok)).get_json()["accounts"]
    # independently: the debtor is the first Giro account of the flow's own ledger (payments: 3 months + 1)
    ledger = generate_ledger(7, pay["id"], date(2026, 3, 10), market="DE", months=PAYMENT_PERIOD_MONTHS + 1)
    giro = next(a for a in ledger.accounts if a.kind == "checking")
    assert account["iban"] == giro.iban
    balance = http.get(f"/finleap/rest/accounts/{account['account_id']}/balance", headers=bearer(tok)).get_json()
    assert Decimal(str(balance["balance"])) == giro.balance - Decimal("57.99")
    txns = http.get("/finleap/rest/transactions?count=1000", headers=bearer(tok)).get_json()["transactions"]
    assert len(txns) == len(giro.transactions) + 1
    receipt = http.get(f"/finleap/payment-receipts/{pay['id']}", headers=B).get_json()
    assert re.fullmatch(r"[A-Z0-9]{16}", receipt["end_to_end_reference"])   # generated like D-rcpt's example
    assert "sepa_purpose_code" not in receipt and receipt["submitted_at"].startswith("2026-03-10T09:00:00")


def test_a_standard_transfer_is_pending_until_the_next_sync_books_it(http):
    pay = link(http, "onetime/payment", payment=PAYMENT, readout=["ACCOUNTS", "TRANSACTIONS"])
    tok = tokens(http, complete(http, pay["id"]))
    (account,) = http.get("/finleap/rest/accounts", headers=bearer(tok)).get_json()["accounts"]
    before = Decimal(str(account["balance"]["balance"]))
    pending = [t for t in http.get("/finleap/rest/transactions?include_pending=true", headers=bearer(tok))
               .get_json()["transactions"] if not t["booked"]]
    assert [t["amount"] for t in pending] == [-57.99]
    sync = http.post(f"/finleap/rest/accesses/{account['access_id']}/syncs", json={}, headers=bearer(tok)).get_json()
    http.post(f"/_sandbox/jobs/{sync['id']}/complete", json={})
    booked = http.get(f"/finleap/rest/transactions?sync_id={sync['id']}", headers=bearer(tok)).get_json()
    assert pending[0]["transaction_id"] in {t["transaction_id"] for t in booked["transactions"]}
    after = http.get(f"/finleap/rest/accounts/{account['account_id']}/balance", headers=bearer(tok)).get_json()
    others = sum((Decimal(str(t["amount"])) for t in booked["transactions"]
                  if t["transaction_id"] != pending[0]["transaction_id"]), Decimal(0))
    assert Decimal(str(after["balance"])) == before - Decimal("57.99") + others


# --- the interface for the data products (F2) ---------------------------------------------------------------------
def test_flow_user_and_user_ledger_serve_what_the_rest_api_serves(app, http):
    risk = link(http, "ongoing/risk-report", user_id="f2-user", reporting_period="6")
    service = app.extensions["sandbox"].providers["finleap"].service
    assert service.flow_user("sandbox-client", risk["id"]) is None   # still pending
    tok = tokens(http, complete(http, risk["id"], accounts=None))
    found = service.flow_user("sandbox-client", risk["id"])
    accounts = http.get("/finleap/rest/accounts", headers=bearer(tok)).get_json()["accounts"]
    assert found["external_user_id"] == "f2-user" and found["report"]["period"] == 6
    assert found["accounts"] == [a["account_id"] for a in accounts]
    world = service.user_ledger("sandbox-client", found["user_id"])
    assert [a["account_id"] for a in world["accounts"]] == found["accounts"]
    served = http.get("/finleap/rest/transactions?count=100000", headers=bearer(tok)).get_json()["transactions"]
    assert sorted(t["transaction_id"] for ts in world["transactions"].values() for t in ts) == \
        sorted(t["transaction_id"] for t in served)
    assert service.flow_user("another-tenant", risk["id"]) is None


# --- widget screens --------------------------------------------------------------------------------------------------
def _page(http, location: str, form: dict | None = None):
    path = "/" + location.split("://", 1)[1].split("/", 1)[1]
    return http.get(path) if form is None else http.post(path, data=form)


def test_the_confirmation_screen_shows_creditor_amount_and_purpose(http):
    pay = link(http, "onetime/payment", payment=PAYMENT, language="de", provider_id="mockbank-embedded")
    for form in [{"step": "login", "username": "figo01", "password": "654321"},
                 {"step": "sca", "sca_method": "Auth Meth by Phone"}, {"step": "otp", "otp": "123456"}]:
        assert _page(http, pay["location"], {"flow_id": pay["id"], **form}).status_code == 200
    html = _page(http, pay["location"]).get_data(as_text=True)
    debtor = re.search(r'name="accounts" value="([^"]+)"', html).group(1)
    html = _page(http, pay["location"], {"flow_id": pay["id"], "step": "debtor", "accounts": debtor}) \
        .get_data(as_text=True)
    assert 'value="confirm"' in html and "Peter Jackson" in html and "57,99 EUR" in html
    assert "Thank you for the fish" in html and "DE86990003540000002000" in html


def test_ongoing_logins_offer_save_credentials(http):
    asked = link(http, "ongoing/access", user_id="u", provider_id="mockbank-embedded")
    html = _page(http, asked["location"]).get_data(as_text=True)
    assert 'type="checkbox" name="save_credentials"' in html
    preset = link(http, "ongoing/access", user_id="u", provider_id="mockbank-embedded", save_secrets=True)
    html = _page(http, preset["location"]).get_data(as_text=True)
    assert 'type="hidden" name="save_credentials" value="1"' in html
    onetime = link(http, "onetime/access", provider_id="mockbank-embedded")
    assert "save_credentials" not in _page(http, onetime["location"]).get_data(as_text=True)


def test_a_payment_page_token_dies_at_its_expiry(http):
    pay = link(http, "onetime/payment", payment=PAYMENT)
    http.post("/_sandbox/clock/advance", json={"seconds": 3599})
    assert _page(http, pay["location"]).status_code == 200
    http.post("/_sandbox/clock/advance", json={"seconds": 1})
    assert _page(http, pay["location"]).status_code == 400
    assert http.post(f"/_sandbox/flows/{pay['id']}/complete", json={"outcome": "success"}).status_code == 409


def test_control_api_rejects_an_unknown_debtor_and_a_bad_save_flag(http):
    pay = link(http, "onetime/payment", payment=PAYMENT)
    r = http.post(f"/_sandbox/flows/{pay['id']}/complete", json={"outcome": "success", "accounts": ["nope"]})
    assert r.status_code == 400
    ongoing = link(http, "ongoing/access", user_id="u")
    r = http.post(f"/_sandbox/flows/{ongoing['id']}/complete", json={"outcome": "success", "save_credentials": "y"})
    assert r.status_code == 400
    r = http.post(f"/_sandbox/flows/{pay['id']}/complete", json={"outcome": "error", "reason": "payment_rejected"})
    assert r.status_code == 200 and "success=false" in r.get_json()["redirect_url"]


def test_a_rejected_ongoing_request_creates_no_user(app, http):
    r = http.post("/finleap/ongoing/payment", headers=B, json={
        "redirect_uri": CB, "user_id": "ghost", "account_id": "A1.1", "payment": PAYMENT})
    assert r.status_code == 400
    r = http.post("/finleap/ongoing/sync", headers=B, json={"redirect_uri": CB, "user_id": "ghost",
                                                            "account_ids": ["A1.1"]})
    assert r.status_code == 404 and r.get_json()["error"]["code"] == 1004


# --- legacy codes and the bank table ---------------------------------------------------------------------------------
def test_the_server_wide_legacy_switch_still_works():
    http = create_app({"SEED": 7, "FINLEAP_LEGACY_CODES": True}, store=MemoryStore()).test_client()
    done = complete(http, link(http, "onetime/access")["id"])
    assert parse_qs(urlsplit(done["redirect_url"]).query)["code"][0].startswith("O")
    assert tokens(http, done)["scope"] == "accounts=ro balance=ro transactions=ro offline"


def test_bank_codes_are_unique_and_the_demobank_owns_90090042():
    codes = [b["bank_code"] for b in data.BANKS]
    assert len(codes) == len(set(codes))
    assert data.bank_by_id(data.DEMOBANK_ID)["bank_code"] == "90090042"
    assert data.bank_of_iban("DE07900900420000002000")["id"] == data.DEMOBANK_ID
    assert data.bank_of_iban("DE07900948150000002000") is None and data.bank_of_iban(None) is None
