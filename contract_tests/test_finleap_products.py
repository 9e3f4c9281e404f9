"""finX widget products (finleap-products.md s.2-4, 8, 11-13), by catalogue id: one-time and ongoing access, ongoing
sync, one-time and ongoing payments with receipts, risk report links; the client products switch and per-client
legacy codes (control API); ``cents`` and the figo filters on every transaction route. In-process by default; over
HTTP with --base-url (``sandbox check finleap``): flows are completed by plain form posts to the widget or through
``POST /_sandbox/flows/<id>/complete``, the clock moves only through the control API.
"""
from __future__ import annotations

import json
import re
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore

from .checks import provider_error, response_schema_conformance, status_in
from .plugin import frozen_transport
from .test_finleap import CALLBACK, Finx

PAYMENT = {"creditor": {"iban": "DE86990003540000002000", "name": "Peter Jackson"},
           "amount": {"value": 57.99, "currency": "EUR"}, "purpose": "Thank you for the fish",
           "sepa_purpose_code": "GDDS", "end_to_end_reference": "124/473294/384785"}   # the [OTP] request values
FULL = "accounts=ro balance=ro transactions=ro offline"
LINKS = {"access": "create_onetime_access_link", "ongoing-access": "create_ongoing_access_link",
         "ongoing-sync": "create_ongoing_sync_link", "payment": "create_onetime_payment_link",
         "ongoing-payment": "create_ongoing_payment_link", "risk": "create_onetime_risk_report_link",
         "ongoing-risk": "create_ongoing_risk_report_link"}


@pytest.fixture
def fx(contract_options):
    with frozen_transport(contract_options, "finleap",
                          lambda: create_app({"SEED": 21}, store=MemoryStore())) as (transport, control):
        yield Products(transport, control, contract_options)


class Products(Finx):
    """The finX client of contract_tests/test_finleap.py plus the product links and their widget steps."""

    def product_link(self, kind: str, client=None, expect: int = 201, **body):
        body.setdefault("redirect_uri", CALLBACK)
        body.setdefault("state", "7fe78733")
        r = self.call(LINKS[kind], json_body=body, headers=client or self.basic())
        if expect == 201:
            status_in(r, 201)
            response_schema_conformance(r)
            return r.json
        return r

    def first_step(self, location: str) -> str:
        status, _, html = self._page(location)
        assert status == 200, html[:300]
        return re.search(r'name="step" value="([a-z]+)"', html).group(1)

    def walk(self, link: dict, username="figo01", password="654321", bank="mockbank-embedded", pick_all=False,
             save=False, cancel_at: str | None = None) -> tuple[dict, list[str]]:
        """Complete the widget by plain form posts: (callback parameters, the steps seen)."""
        location, flow_id = link["location"], link["id"]
        status, _, html = self._page(location)
        seen = []
        for _ in range(10):
            assert status == 200, html[:300]
            step = re.search(r'name="step" value="([a-z]+)"', html).group(1)
            seen.append(step)
            form = {"flow_id": flow_id, "step": step}
            if cancel_at == step:
                form["cancel"] = "1"
            elif step == "bank":
                form["bank_id"] = bank
            elif step == "login":
                form.update(username=username, password=password)
                if save:
                    form["save_credentials"] = "1"
            elif step == "sca":
                form["sca_method"] = "Auth Meth by Phone"
            elif step == "otp":
                form["otp"] = "123456"
            elif step in ("accounts", "debtor"):
                ids = re.findall(r'name="accounts" value="([^"]+)"', html)
                self.offered, self.offered_page = ids, html   # what the user was offered (the persona decides)
                form["accounts"] = ids if pick_all else ids[:1]
            status, headers, html = self._page(location, form)
            if status == 303:
                return dict(parse_qsl(urlsplit(headers["Location"]).query, keep_blank_values=True)), seen
        raise AssertionError(f"widget did not finish: {seen}")

    def token_for(self, link: dict, **walk) -> dict:
        params, _ = self.walk(link, **walk)
        assert params["success"] == "true", params
        r = self.exchange(params["code"])
        status_in(r, 200)
        return r.json

    def receipt(self, receipt_id: str, client=None):
        r = self.call("get_payment_receipt", path_params={"id": receipt_id}, headers=client or self.basic())
        response_schema_conformance(r)
        return r

    def txns(self, token: str, **query) -> list[dict]:
        r = self.call("list_transactions", query={"count": "1000", **query}, headers=self.bearer(token))
        status_in(r, 200)
        response_schema_conformance(r)
        return r.json["transactions"]

    def accounts(self, token: str) -> list[dict]:
        r = self.call("list_accounts", headers=self.bearer(token))
        status_in(r, 200)
        response_schema_conformance(r)
        return r.json["accounts"]


def nrich(result, status: int, code: int, field: str | None = None, message: str | None = None):
    provider_error(result, status)
    assert result.json["error"]["code"] == code, result.json
    if field:
        assert field in result.json["error"].get("data", {}), result.json
        if message:
            assert message in result.json["error"]["data"][field], result.json


# --- link creation: every product, 201 {location, id}; type coercion (s.2) ---------------------------------------
@pytest.mark.parametrize("kind,body", [
    ("access", {"sync_period": 90, "account_types": ["Giro account", "Depot"], "tracking_id": "t-1"}),
    ("ongoing-access", {"user_id": "postman-collection-1@qwist.com", "save_secrets": True}),
    ("payment", {"payment": PAYMENT, "readout": ["ACCOUNTS"]}),
    ("ongoing-payment", {"user_id": "u-pay", "payment": PAYMENT}),
    ("risk", {"name": "Hans-Peter Meier", "reporting_period": 12}),
    ("ongoing-risk", {"user_id": "u-risk", "reporting_period": 6}),
])
def test_every_product_link_is_a_201_location_and_id(fx, kind, body):
    link = fx.product_link(kind, **body)
    assert "token=" in link["location"] and re.fullmatch(r"[0-9a-f-]{36}", link["id"])


@pytest.mark.parametrize("kind,body", [
    ("risk", {"reporting_period": "12", "allow_multi_selection": "true"}),          # [RISK] verbatim
    ("ongoing-risk", {"user_id": "u", "reporting_period": "12", "save_secrets": "false"}),
    ("ongoing-payment", {"user_id": "u", "payment": PAYMENT, "save_secrets": "false"}),   # [OGP]
    ("payment", {"payment": PAYMENT, "save_secrets": "false"}),                    # [OGP] on /onetime/payment
    ("access", {"sync_period": "30", "allow_multi_selection": "False"}),
    ("ongoing-access", {"user_id": "u", "sync_period": "60", "save_secrets": "TRUE"}),
])
def test_string_typed_integers_and_booleans_are_accepted(fx, kind, body):
    fx.product_link(kind, **body)


@pytest.mark.parametrize("kind,body,field,message", [
    ("risk", {"reporting_period": "12a"}, "reporting_period", "Not a valid integer."),
    ("risk", {"reporting_period": "3"}, "reporting_period", None),      # the bounds hold for strings too
    ("risk", {"reporting_period": "25"}, "reporting_period", None),
    ("risk", {"allow_multi_selection": "yes please"}, "allow_multi_selection", "Not a valid boolean."),
    ("access", {"sync_period": "1.5"}, "sync_period", "Not a valid integer."),
    ("access", {"sync_period": "0"}, "sync_period", None),
    ("ongoing-access", {"user_id": "u", "save_secrets": "nope"}, "save_secrets", "Not a valid boolean."),
    ("ongoing-access", {}, "user_id", "Missing data for required field."),
    ("ongoing-risk", {}, "user_id", "Missing data for required field."),
    ("access", {"bogus": 1}, "bogus", "Unknown field."),
    ("access", {"account_types": ["Depot", "Piggy bank"]}, "account_types.1", None),
    ("access", {"provider_id": "no-such-bank"}, "provider_id", None),
    ("ongoing-sync", {"user_id": "u"}, "account_ids", "Missing data for required field."),
])
def test_invalid_link_bodies_get_1000_naming_the_field(fx, kind, body, field, message):
    nrich(fx.product_link(kind, expect=400, **body), 400, 1000, field, message)


def test_income_report_link_coerces_too(fx):
    status_in(fx.call("create_income_report_link", json_body={"redirect_uri": CALLBACK, "reporting_period": "6"},
                      headers=fx.basic()), 201)
    nrich(fx.call("create_income_report_link", json_body={"redirect_uri": CALLBACK, "reporting_period": "30"},
                  headers=fx.basic()), 400, 1000, "reporting_period")


@pytest.mark.parametrize("payment,field", [
    ({**PAYMENT, "creditor": {"iban": "DE86990003540000002001", "name": "Peter Jackson"}}, "iban"),   # checksum
    ({**PAYMENT, "debtor": {"iban": "DE00123"}}, "iban"),
    ({**PAYMENT, "amount": {"value": 0, "currency": "EUR"}}, "amount"),
    ({**PAYMENT, "amount": {"value": -5, "currency": "EUR"}}, "amount"),
    ({**PAYMENT, "amount": {"value": "-5", "currency": "EUR"}}, "payment.amount.value"),
    ({**PAYMENT, "amount": {"value": 1.234, "currency": "EUR"}}, "amount"),
    ({**PAYMENT, "amount": {"value": 10, "currency": "USD"}}, "payment.amount.currency"),
    ({**PAYMENT, "purpose": "x" * 141}, "payment.purpose"),
    ({k: v for k, v in PAYMENT.items() if k != "purpose"}, "payment.purpose"),
    ({k: v for k, v in PAYMENT.items() if k != "amount"}, "payment.amount"),
    ({**PAYMENT, "creditor": {"iban": "DE86990003540000002000"}}, "payment.creditor.name"),
    ({**PAYMENT, "execution_date": "2001-01-01"}, "execution_date"),
    ({**PAYMENT, "execution_date": "2026-02-30"}, "execution_date"),
    ({**PAYMENT, "type": "Wire"}, "payment.type"),
])
def test_payment_amounts_ibans_and_dates_are_validated(fx, payment, field):
    nrich(fx.product_link("payment", expect=400, payment=payment), 400, 1000, field)


def test_a_bad_iban_uses_the_documented_message(fx):
    bad = {**PAYMENT, "creditor": {"iban": "DE86990003540000002001", "name": "Peter Jackson"}}
    r = fx.product_link("payment", expect=400, payment=bad)
    assert r.json["error"]["data"] == {"iban": ["Not a valid IBAN."]}


# --- products: one-time access, Demobank with a Depot ------------------------------------------------------------
@pytest.mark.control
def test_onetime_access_flow_grants_the_full_scope_and_its_accounts(fx):
    link = fx.product_link("access")
    params, seen = fx.walk(link, pick_all=True)
    assert list(params) == ["code", "state", "success", "flow_id"] and params["flow_id"] == link["id"]
    assert seen == ["bank", "login", "sca", "otp", "accounts"]
    tokens = fx.exchange(params["code"]).json
    assert tokens["scope"] == FULL and tokens["refresh_token"]   # [AIS] asserts a refresh token for one-time
    accounts = fx.accounts(tokens["access_token"])
    # multi-selection is the default (D-fd): checkboxes, and every account picked is granted (how many the user has
    # depends on the persona, i.e. on the seed and the user: any number passes)
    assert re.search(r'type="checkbox"[^>]*name="accounts"|name="accounts"[^>]*type="checkbox"', fx.offered_page)
    assert len(accounts) == len(fx.offered) >= 1 and accounts[0]["type"] == "Giro account"


@pytest.mark.control
def test_one_account_preset_skips_the_bank_step_and_multi_selection(fx):
    link = fx.product_link("access", accounts=[{"id": "DE82900948150000002881"}], allow_multi_selection=True)
    assert fx.first_step(link["location"]) == "login"
    tokens = fx.token_for(link, pick_all=True)
    accounts = fx.accounts(tokens["access_token"])
    assert [a["iban"] for a in accounts] == ["DE82900948150000002881"]   # D-fd: multi ignored with accounts


@pytest.mark.control
def test_demobank_demo_login_offers_a_depot_without_sca(fx):
    link = fx.product_link("access", provider_id="demobank", account_types=["Depot"])
    params, seen = fx.walk(link, username="demo", password="demo")
    assert seen == ["login", "accounts"]   # provider_id skips the bank; demo/demo skips SCA (inferred)
    tokens = fx.exchange(params["code"]).json
    accounts = fx.accounts(tokens["access_token"])
    assert [a["type"] for a in accounts] == ["Depot"]
    accesses = fx.call("list_accesses", headers=fx.bearer(tokens["access_token"])).json["accesses"]
    assert accesses[0]["provider"]["bank_code"] == "90090042" and accesses[0]["provider"]["name"] == \
        "Demobank - 90090042"


@pytest.mark.control
def test_the_mock_bank_moved_off_the_demobank_code(fx):
    link = fx.product_link("access")
    tokens = fx.token_for(link, bank="mockbank-decoupled")
    access = fx.call("list_accesses", headers=fx.bearer(tokens["access_token"])).json["accesses"][0]
    assert access["provider"]["name"] == "Mockbank - Decoupled" and access["provider"]["bank_code"] != "90090042"


# --- ongoing: one user per client and user_id, saved credentials, ongoing sync -----------------------------------
@pytest.mark.control
def test_ongoing_access_adds_banks_to_one_user_and_saved_credentials_skip_the_login(fx):
    first = fx.product_link("ongoing-access", user_id="u-multi")
    params, seen = fx.walk(first, bank="mockbank-embedded", save=True)
    assert "login" in seen
    one = fx.accounts(fx.exchange(params["code"]).json["access_token"])
    second = fx.product_link("ongoing-access", user_id="u-multi", provider_id="mockbank-decoupled")
    tokens = fx.token_for(second)
    both = fx.accounts(tokens["access_token"])
    assert {a["account_id"] for a in one} < {a["account_id"] for a in both}   # multibanking: the same user
    assert len(fx.call("list_accesses", headers=fx.bearer(tokens["access_token"])).json["accesses"]) == 2
    # credentials saved at mockbank-embedded: a later ongoing flow there needs only SCA (D-pay, [PFM-branch])
    third = fx.product_link("ongoing-risk", user_id="u-multi", provider_id="mockbank-embedded")
    params, seen = fx.walk(third)
    assert seen[0] == "sca" and "login" not in seen and params["success"] == "true"
    assert fx.exchange(params["code"]).json["scope"] == FULL
    # without saved credentials the login stays (mockbank-decoupled was connected without saving)
    fourth = fx.product_link("ongoing-access", user_id="u-multi", provider_id="mockbank-decoupled")
    assert fx.first_step(fourth["location"]) == "login"


@pytest.mark.control
def test_the_same_user_id_of_another_client_is_another_user(fx):
    tokens = fx.token_for(fx.product_link("ongoing-access", user_id="shared-id"))
    mine = {a["account_id"] for a in fx.accounts(tokens["access_token"])}
    other = fx.control.create_client(client_id="products-other", client_secret="other-secret-123")
    h = fx.basic(other["client_id"], "other-secret-123")
    link = fx.product_link("ongoing-access", client=h, user_id="shared-id")
    params, _ = fx.walk(link)
    theirs = fx.exchange(params["code"], client=h).json
    assert not mine & {a["account_id"] for a in fx.accounts(theirs["access_token"])}
    # the other client's user "shared-id" exists, but the accounts of my "shared-id" are not its accounts
    r = fx.product_link("ongoing-sync", client=h, expect=400, user_id="shared-id", account_ids=sorted(mine))
    nrich(r, 400, 1000, "account_ids", "Unknown account.")


@pytest.mark.control
def test_ongoing_sync_runs_a_completed_sync_inside_the_flow(fx):
    tokens = fx.token_for(fx.product_link("ongoing-access", user_id="u-sync", save_secrets="true"))
    account = fx.accounts(tokens["access_token"])[0]
    before = fx.txns(tokens["access_token"])
    nrich(fx.product_link("ongoing-sync", expect=404, user_id="nobody", account_ids=[account["account_id"]]),
          404, 1004)
    nrich(fx.product_link("ongoing-sync", expect=400, user_id="u-sync", account_ids=["A0000000.0"]),
          400, 1000, "account_ids")
    fx.control.clock("advance", seconds=20 * 86400)   # the ledger has new bookings after 20 days
    link = fx.product_link("ongoing-sync", user_id="u-sync", account_ids=[account["account_id"]])
    params, seen = fx.walk(link)
    assert seen == ["sca", "otp", "synced"]   # bank of the accounts, credentials saved (save_secrets)
    assert params["success"] == "true" and params["code"]   # s.13 decision 3: with a code
    tokens = fx.exchange(params["code"]).json
    assert tokens["scope"] == FULL
    after = fx.txns(tokens["access_token"])
    new = [t for t in after if t["transaction_id"] not in {b["transaction_id"] for b in before}]
    assert new and all(t["sync_id"] for t in new)
    sync_id = new[0]["sync_id"]
    assert {t["transaction_id"] for t in fx.txns(tokens["access_token"], sync_id=sync_id)} == \
        {t["transaction_id"] for t in new if t["sync_id"] == sync_id}
    access_id = account["access_id"]
    sync = fx.call("get_sync", path_params={"access_id": access_id, "sync_id": sync_id},
                   headers=fx.bearer(tokens["access_token"]))
    status_in(sync, 200)
    assert sync.json["status"] == "COMPLETED"


@pytest.mark.control
def test_ongoing_flows_can_be_completed_through_the_control_api(fx):
    link = fx.product_link("ongoing-access", user_id="u-ctl")
    done = fx.control.complete_flow(link["id"], "success", save_credentials=True)
    query = dict(parse_qsl(urlsplit(done["redirect_url"]).query))
    assert fx.exchange(query["code"]).json["scope"] == FULL
    payment = fx.product_link("ongoing-payment", user_id="u-ctl", provider_id="mockbank-decoupled", payment=PAYMENT)
    assert fx.first_step(payment["location"]) == "sca"   # saved through the control API
    done = fx.control.complete_flow(payment["id"], "success")
    assert done["status"] == "SUCCEEDED"
    status_in(fx.receipt(payment["id"]), 200)


# --- payments and receipts ----------------------------------------------------------------------------------------
@pytest.mark.control
def test_onetime_payment_receipt_matches_the_request_and_the_debtor_account(fx):
    link = fx.product_link("payment", payment={**PAYMENT, "type": "SEPA Instant transfer"},
                           readout=["ACCOUNTS", "TRANSACTIONS"])
    nrich(fx.receipt(link["id"]), 404, 1004)   # D-rcpt: 404 while the user is still in the flow
    params, seen = fx.walk(link)
    assert seen == ["bank", "login", "sca", "otp", "debtor", "confirm"] and params["success"] == "true"
    r = fx.receipt(link["id"])
    status_in(r, 200)
    receipt = r.json
    assert receipt["id"] == link["id"] and receipt["creditor"] == PAYMENT["creditor"]
    assert receipt["amount"] == {"value": 57.99, "currency": "EUR"} and receipt["purpose"] == PAYMENT["purpose"]
    assert receipt["sepa_purpose_code"] == "GDDS" and receipt["end_to_end_reference"] == "124/473294/384785"
    assert receipt["type"] == "SEPA Instant transfer"
    tokens = fx.exchange(params["code"]).json
    assert tokens["scope"] == FULL   # readout ACCOUNTS + TRANSACTIONS
    (debtor,) = fx.accounts(tokens["access_token"])
    assert debtor["iban"] == receipt["debtor"]["iban"] and debtor["type"] == "Giro account"
    # the instant debit is booked on the debtor account and is in its balance
    booked = [t for t in fx.txns(tokens["access_token"]) if t["end_to_end_reference"] == "124/473294/384785"]
    assert [(t["amount"], t["booked"], t["iban"]) for t in booked] == [(-57.99, True, PAYMENT["creditor"]["iban"])]
    # (the balance arithmetic against the raw ledger: tests/providers/test_finleap_products.py)


@pytest.mark.control
def test_a_payment_without_readout_grants_no_account_data(fx):
    link = fx.product_link("payment", payment=PAYMENT)
    tokens = fx.token_for(link)
    assert tokens["scope"] == "offline"
    provider_error(fx.call("list_accounts", headers=fx.bearer(tokens["access_token"])), 403)


@pytest.mark.control
def test_receipt_lives_one_hour_after_success(fx):
    link = fx.product_link("payment", payment=PAYMENT)
    fx.walk(link)
    fx.control.clock("advance", seconds=3599)
    status_in(fx.receipt(link["id"]), 200)
    fx.control.clock("advance", seconds=1)
    nrich(fx.receipt(link["id"]), 404, 1004)


@pytest.mark.control
def test_no_receipt_after_cancel_rejection_or_for_another_client(fx):
    cancelled = fx.product_link("payment", payment=PAYMENT)
    params, _ = fx.walk(cancelled, cancel_at="confirm")
    assert params["cancel"] == "true"
    nrich(fx.receipt(cancelled["id"]), 404, 1004)
    rejected = fx.product_link("payment", payment=PAYMENT)
    params, seen = fx.walk(rejected, username="figo01+paymentfail")
    assert params["success"] == "false" and "cancel" not in params and seen[-1] == "confirm"
    nrich(fx.receipt(rejected["id"]), 404, 1004)
    paid = fx.product_link("payment", payment=PAYMENT)
    fx.walk(paid)
    other = fx.control.create_client(client_id="receipt-other", client_secret="receipt-other-secret")
    nrich(fx.receipt(paid["id"], client=fx.basic(other["client_id"], "receipt-other-secret")), 404, 1004)
    status_in(fx.receipt(paid["id"]), 200)


@pytest.mark.control
def test_a_payment_flow_cannot_be_completed_for_another_clients_link(fx):
    other = fx.control.create_client(client_id="flow-other", client_secret="flow-other-secret")
    link = fx.product_link("payment", payment=PAYMENT)
    headers = {"Content-Type": "application/json"}
    if fx.control.admin_token:
        headers["Authorization"] = f"Bearer {fx.control.admin_token}"
    status, _, content, _ = fx.control.t.send(
        "POST", f"/_sandbox/flows/{link['id']}/complete", headers,
        json.dumps({"outcome": "success", "tenant": other["tenant"]}).encode())
    assert status == 404, content
    nrich(fx.receipt(link["id"]), 404, 1004)
    # a post naming another flow never advances this one (stale), and the receipt stays absent
    second = fx.product_link("payment", payment=PAYMENT)
    status, _, html = fx._page(link["location"], {"flow_id": second["id"], "step": "bank", "bank_id": "demobank"})
    assert status == 200 and fx.first_step(link["location"]) == "bank"


@pytest.mark.control
def test_debtor_iban_presets_the_bank_and_the_account(fx):
    debtor = "DE07900948150000002000"
    link = fx.product_link("payment", payment={**PAYMENT, "debtor": {"iban": debtor}}, provider_id="demobank")
    assert fx.first_step(link["location"]) == "login"   # D-pay: the debtor IBAN wins over provider_id
    params, seen = fx.walk(link)
    assert "bank" not in seen
    assert fx.receipt(link["id"]).json["debtor"]["iban"] == debtor


@pytest.mark.control
def test_ongoing_payment_from_a_synced_account_skips_bank_and_debtor(fx):
    tokens = fx.token_for(fx.product_link("ongoing-access", user_id="u-payer"), save=True)
    account = fx.accounts(tokens["access_token"])[0]
    nrich(fx.product_link("ongoing-payment", expect=400, user_id="u-payer", account_id=account["account_id"],
                          payment={**PAYMENT, "debtor": {"iban": account["iban"]}}), 400, 1000, "account_id")
    nrich(fx.product_link("ongoing-payment", expect=400, user_id="somebody-else", account_id=account["account_id"],
                          payment=PAYMENT), 400, 1000, "account_id")
    link = fx.product_link("ongoing-payment", user_id="u-payer", account_id=account["account_id"],
                           payment={**PAYMENT, "type": "SEPA transfer"}, readout=["TRANSACTIONS"])
    params, seen = fx.walk(link)
    assert seen == ["sca", "otp", "confirm"]
    assert fx.receipt(link["id"]).json["debtor"]["iban"] == account["iban"]
    # a standard transfer is pending until the next sync books it (inferred, s.8)
    tokens = fx.exchange(params["code"]).json
    pending = [t for t in fx.txns(tokens["access_token"], include_pending="true")
               if t["end_to_end_reference"] == PAYMENT["end_to_end_reference"]]
    assert [t["booked"] for t in pending] == [False]
    assert pending[0]["transaction_id"] not in {t["transaction_id"] for t in fx.txns(tokens["access_token"])}


# --- client products (403 code 1002) and legacy codes per client (control API) -----------------------------------
@pytest.mark.control
def test_client_products_switch(fx):
    only = fx.control.create_client(client_id="pay-only", client_secret="pay-only-secret",
                                    scopes={"finleap": ["product:payment"]})
    h = fx.basic(only["client_id"], "pay-only-secret")
    for kind, body in [("access", {}), ("ongoing-access", {"user_id": "u"}), ("risk", {}),
                       ("ongoing-risk", {"user_id": "u"})]:
        nrich(fx.product_link(kind, client=h, expect=403, **body), 403, 1002)
    nrich(fx.call("create_income_report_link", json_body={"redirect_uri": CALLBACK}, headers=h), 403, 1002)
    link = fx.product_link("payment", client=h, payment=PAYMENT)
    fx.control.complete_flow(link["id"], "success", tenant=only["tenant"])
    status_in(fx.receipt(link["id"], client=h), 200)
    # the default client has every product
    fx.product_link("access")


@pytest.mark.control
def test_legacy_codes_are_chosen_per_client(fx):
    legacy = fx.control.create_client(client_id="figo-legacy", client_secret="figo-legacy-secret",
                                      scopes={"finleap": ["legacy-codes"]})
    h = fx.basic(legacy["client_id"], "figo-legacy-secret")
    mine = fx.product_link("access")
    theirs = fx.product_link("access", client=h)       # no product entry: every product (legacy-codes only)
    my_code = dict(fx.walk(mine)[0])["code"]
    their_code = dict(parse_qsl(urlsplit(fx.control.complete_flow(theirs["id"], tenant=legacy["tenant"])[
        "redirect_url"]).query))["code"]
    assert their_code.startswith("O") and not my_code.startswith("O")   # python-figo insists on "O..."
    for code, client in [(my_code, None), (their_code, h)]:
        r = fx.exchange(code, client=client)
        status_in(r, 200)
        assert r.json["refresh_token"].startswith("R")


# --- cents and figo filters on every transaction route -----------------------------------------------------------
@pytest.mark.control
def test_cents_on_every_transaction_route(fx):
    tokens = fx.token_for(fx.product_link("access"))
    h = fx.bearer(tokens["access_token"])
    account = fx.accounts(tokens["access_token"])[0]["account_id"]
    euros = fx.call("list_transactions", query={"count": "5"}, headers=h).json["transactions"]
    cents = fx.call("list_transactions", query={"count": "5", "cents": "true"}, headers=h)
    response_schema_conformance(cents)
    by_alias = fx.call("list_transactions", alias=0, path_params={"account_id": account},
                       query={"count": "5", "cents": "True"}, headers=h).json["transactions"]
    assert [t["amount"] for t in cents.json["transactions"]] == [int(Decimal(str(t["amount"])) * 100) for t in euros]
    assert all(isinstance(t["amount"], int) for t in by_alias)
    t = euros[0]
    for alias, params in [(None, {"transaction_id": t["transaction_id"]}),
                          (0, {"account_id": t["account_id"], "transaction_id": t["transaction_id"]})]:
        one = fx.call("get_transaction", alias=alias, path_params=params, query={"cents": "True"}, headers=h)
        status_in(one, 200)
        response_schema_conformance(one)
        assert one.json["amount"] == int(Decimal(str(t["amount"])) * 100)
        plain = fx.call("get_transaction", alias=alias, path_params=params, headers=h).json
        assert plain["amount"] == t["amount"]   # python-figo get_transaction(..., cents=True) got euros before


@pytest.mark.control
def test_figo_filters_really_filter(fx):
    tokens = fx.token_for(fx.product_link("access"))
    h = fx.bearer(tokens["access_token"])
    everything = fx.txns(tokens["access_token"])
    sample = next(t for t in everything if t["name"] and t["purpose"])
    person = sample["name"][:4].lower()
    expected = {t["transaction_id"] for t in everything if person in (t["name"] or "").lower()}
    got = {t["transaction_id"] for t in fx.txns(tokens["access_token"], filter=json.dumps({"person": person}))}
    assert got == expected and 0 < len(got) < len(everything)
    amount = abs(sample["amount"])
    got = fx.txns(tokens["access_token"], filter=json.dumps({"amount": amount, "date": sample["booking_date"]}))
    assert sample["transaction_id"] in {t["transaction_id"] for t in got}
    assert all(abs(t["amount"]) == amount and t["booking_date"] == sample["booking_date"] for t in got)
    word = sample["purpose"].split()[0].lower()
    got = fx.txns(tokens["access_token"], filter=json.dumps({"purpose": word}))
    assert {t["transaction_id"] for t in got} == {t["transaction_id"] for t in everything
                                                  if word in (t["purpose"] or "").lower()}
    for bad in ["{nope", json.dumps({"colour": "red"}), json.dumps([1]), json.dumps({"date": "yesterday"})]:
        nrich(fx.call("list_transactions", query={"filter": bad}, headers=h), 400, 1000, "filter")


@pytest.mark.control
def test_since_type_and_include_pending_filter(fx):
    # credentials not saved: no autosync books the payment on the reads below (test_finleap_lifecycle covers that)
    tokens = fx.token_for(fx.product_link("ongoing-access", user_id="u-figo"))
    account = fx.accounts(tokens["access_token"])[0]
    history = fx.txns(tokens["access_token"])
    fx.control.clock("advance", seconds=10 * 86400)
    today = fx.control.get("/clock")["now"][:10]
    link = fx.product_link("ongoing-payment", user_id="u-figo", account_id=account["account_id"], payment=PAYMENT,
                           readout=["ACCOUNTS", "TRANSACTIONS"])
    token = fx.token_for(link)["access_token"]   # the same user: one token sees every account of it
    pending_ids = {t["transaction_id"] for t in fx.txns(token, include_pending="true")} - \
        {t["transaction_id"] for t in fx.txns(token)}
    assert len(pending_ids) == 1                                   # include_pending=false (default) hides it
    created = fx.txns(token, since=today, since_type="created", include_pending="true")
    assert {t["transaction_id"] for t in created} == pending_ids   # created today: only the payment
    booked = fx.txns(token, since=today, include_pending="true")
    assert pending_ids <= {t["transaction_id"] for t in booked}
    assert len(history) == len(fx.txns(token, until=today, since_type="modified"))   # nothing modified yet after
