"""Finpass Account Aggregator and AA-BSA journeys (finpass.md s.4, 8-12): consent page by form posts, scenarios,
balances checked against the person's ledger, expiring PDF links, refresh-data on the moving clock, webhooks."""
from __future__ import annotations

import io
import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from contract_tests.finpass_app import finpass_app
from sandbox.core.store import MemoryStore
from sandbox.providers.finpass import data
from sandbox.providers.finpass.people import People

H = {"x-api-key": "sandbox-client", "x-api-secret": "sandbox-secret"}
AA = "/finpass/api/v1/services/account-aggregator/"
BSA = "/finpass/api/v1/aa-bsa-journey/"
MOBILE = "9876543210"


@pytest.fixture
def app():
    return finpass_app({"SEED": 11}, store=MemoryStore())


@pytest.fixture
def c(app):
    client = app.test_client()
    client.post("/_sandbox/clock/freeze", json={})
    return client


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def init(c, mobile=MOBILE, consent_type="loan_underwriting", **extra):
    r = c.post(AA + "init", json={"mobile_number": mobile, "consent_type": consent_type, **extra}, headers=H)
    assert r.status_code == 200, r.json
    return r.json["data"]


def consent(c, journey_url, id_field_value, approve=True, otp="123456"):
    """Drive the consent page by plain form posts; returns the final response."""
    url = local(journey_url)
    page = c.get(url)
    assert page.status_code == 200
    page = c.post(url, data={"client_id": id_field_value, "step": "otp", "otp": otp})
    refs = re.findall(r'name="accounts" value="([^"]+)"', page.data.decode())
    form = {"client_id": id_field_value, "step": "accounts", "accounts": refs}
    form["approve" if approve else "reject"] = "1"
    return c.post(url, data=form)


def fetch(c, client_id, path="fetch-json-report", **extra):
    return c.post(AA + path, json={"client_id": client_id, **extra}, headers=H)


def fetch_ready(c, client_id, **extra):
    for _ in range(5):
        r = fetch(c, client_id, **extra)
        if r.status_code != 202:
            return r
    raise AssertionError("still 202 after 5 polls")


def ledger_checking(app, mobile=MOBILE):
    sb = app.extensions["sandbox"]
    people = People(sb, "sandbox-client")
    ledger = people.ledger(people.key(mobile))
    return [a for a in ledger.accounts if a.kind == "checking"]


# --- data.py ---------------------------------------------------------------------------------------------------

def test_indian_validators_and_generators_are_valid_by_construction():
    import random
    rng = random.Random(1)
    for _ in range(50):
        ifsc = data.gen_ifsc(rng)
        assert data.is_ifsc(ifsc) and data.is_micr(data.gen_micr(rng, ifsc))
        assert data.is_pan(data.gen_pan(rng)) and data.is_mobile(data.gen_mobile(rng))
        assert data.is_cin(data.gen_cin(rng)) and data.is_llpin(data.gen_llpin(rng)) and data.is_uan(data.gen_uan(rng))
        assert data.MASKED_ACCOUNT_RE.match(data.gen_masked_account(rng))
    assert data.gen_micr(rng, "HDFC0001234")[3:6] == "240"
    assert data.is_pan("abcde1234f")   # inputs are upper-cased first (the service stores the upper-case PAN)
    for bad in ("ABCDE1234", "ABCD11234F", "ABCDE12345", 5):
        assert not data.is_pan(bad)
    assert not data.is_mobile("5876543210") and not data.is_mobile("987654321") and data.is_mobile("6000000000")
    assert not data.is_ifsc("HDFC1234567") and data.is_ifsc("SBIN0061100")
    assert data.mask_pan("ABCDE1234F") == "ABCDE****F" and data.mask_mobile("9876543210") == "98XXXXXX10"
    assert data.mask_account("12345678901234", 17) == "XXXXXXXXXXXXX1234"


# --- AA --------------------------------------------------------------------------------------------------------

def test_init_validation_and_401(c):
    bad = [({"mobile_number": "12345", "consent_type": "loan_underwriting"}, "invalid_mobile_number"),
           ({"mobile_number": MOBILE, "consent_type": "other"}, "invalid_consent_type"),
           ({"mobile_number": MOBILE, "consent_type": "loan_underwriting", "pan": "ABC123"}, "invalid_pan"),
           ({"consent_type": "loan_underwriting"}, "mobile_number_required")]
    for body, code in bad:
        r = c.post(AA + "init", json=body, headers=H)
        assert r.status_code == 400 and r.json["status_code"] == 400 and r.json["message_code"] == code, r.json
    r = c.post(AA + "init", json={"mobile_number": MOBILE, "consent_type": "loan_underwriting"},
               headers={"x-api-key": "sandbox-client", "x-api-secret": "nope"})
    assert r.status_code == 401 and r.json["message_code"] == "unauthorized"


def test_consent_journey_fetch_and_balances_match_the_ledger(app, c):
    d = init(c, pan="abcpe1234f", redirect_url="https://app.example.com/cb?x=1")
    cid = d["client_id"]
    assert d["pan_number"] == "ABCPE1234F" and "/finpass/aa/consent/" in d["redirect_url"]
    assert fetch(c, cid).json["message_code"] == "consent_pending"
    done = consent(c, d["redirect_url"], cid)
    assert done.status_code == 303
    assert done.headers["Location"] == f"https://app.example.com/cb?x=1&client_id={cid}&status=ACTIVE"
    first = fetch(c, cid)
    assert first.status_code == 202 and first.json["data"] == {"client_id": cid, "status": "PENDING"}
    r = fetch_ready(c, cid)
    assert r.status_code == 200 and r.json["status_code"] == 200
    accounts = r.json["data"]["account_aggregator_json"]
    checking = ledger_checking(app)
    assert len(accounts) == len(checking) >= 1
    for acc, ledger_acc in zip(accounts, checking):
        txns = acc["transaction_data"]["transaction_details"]
        assert txns and acc["profile_details"]["pan"] == "ABCPE1234F"
        # running balance: previous balance +/- amount, to the paisa; the last equals current_balance
        for prev, cur in zip(txns, txns[1:]):
            sign = 1 if cur["type"] == "CREDIT" else -1
            assert Decimal(prev["transactional_balance"]) + sign * Decimal(str(cur["amount"])) \
                == Decimal(cur["transactional_balance"])
        assert txns[-1]["transactional_balance"] == acc["summary_details"]["current_balance"]
        # independently from the ledger: same closing balance, same bookings in the window
        assert Decimal(acc["summary_details"]["current_balance"]) == ledger_acc.balance
        start = acc["transaction_data"]["start_date"]
        expected = [t for t in ledger_acc.transactions if t.booking_date.isoformat() > start]
        assert [t["narration"] for t in txns] == [t.description for t in expected]
        assert acc["masked_account_number"].endswith(ledger_acc.number[-4:])
        assert data.is_ifsc(acc["summary_details"]["ifsc"]) and data.is_micr(acc["summary_details"]["micr_code"])
        assert acc["transaction_data"]["end_date"] > start
    # the page is single use
    assert c.get(local(d["redirect_url"])).status_code == 400


def test_reject_and_foreign_and_malformed_client_ids(app, c):
    d = init(c, redirect_url="https://app.example.com/cb")
    out = consent(c, d["redirect_url"], d["client_id"], approve=False)
    assert out.headers["Location"].endswith(f"client_id={d['client_id']}&status=REJECTED")
    assert fetch(c, d["client_id"]).json["message_code"] == "consent_rejected"
    assert fetch(c, "nonsense").json["message_code"] == "invalid_client_id"
    r = fetch(c, "aa_00000000_000000000000000000000000")
    assert r.status_code == 404 and r.json["message_code"] == "client_not_found"
    c.post("/_sandbox/clients", json={"client_id": "other", "client_secret": "other-secret"})
    other = c.post(AA + "fetch-json-report", json={"client_id": d["client_id"]},
                   headers={"x-api-key": "other", "x-api-secret": "other-secret"})
    assert other.status_code == 404


@pytest.mark.parametrize("mobile,approve,code", [
    ("9000000001", True, "consent_rejected"), ("9000000002", True, "consent_pending"),
    ("9000000004", True, "fetch_error"), ("9000000005", True, "account_data_not_found"),
    ("9000000006", True, "fetch_expired")])
def test_scenarios_force_their_outcome(c, mobile, approve, code):
    d = init(c, mobile=mobile)
    consent(c, d["redirect_url"], d["client_id"], approve=approve)
    r = fetch_ready(c, d["client_id"])
    assert r.status_code == 422 and r.json["message_code"] == code, r.json


def test_revoked_after_first_fetch_and_slow_fetch(c):
    d = init(c, mobile="9000000003")
    consent(c, d["redirect_url"], d["client_id"])
    assert fetch_ready(c, d["client_id"]).status_code == 200
    assert fetch(c, d["client_id"]).json["message_code"] == "consent_revoked"
    d = init(c, mobile="9000000007")
    consent(c, d["redirect_url"], d["client_id"])
    c.post("/_sandbox/clock/advance", json={"seconds": 60})
    assert [fetch(c, d["client_id"]).status_code for _ in range(4)] == [202, 202, 202, 200]


def test_wrong_otp_three_times_ends_the_journey(c):
    d = init(c, redirect_url="https://app.example.com/cb")
    url = local(d["redirect_url"])
    for _ in range(2):
        assert c.post(url, data={"client_id": d["client_id"], "step": "otp", "otp": "12"}).status_code == 200
    out = c.post(url, data={"client_id": d["client_id"], "step": "otp", "otp": "x"})
    assert out.status_code == 303 and out.headers["Location"].endswith("status=REJECTED")


def test_auto_approve_setting_and_control_api_completion():
    app = finpass_app({"SEED": 11, "FINPASS_AUTO_APPROVE_SECONDS": 30}, store=MemoryStore())
    c = app.test_client()
    c.post("/_sandbox/clock/freeze", json={})
    d = init(c)
    c.post("/_sandbox/clock/advance", json={"seconds": 29})
    assert fetch(c, d["client_id"]).json["message_code"] == "consent_pending"
    c.post("/_sandbox/clock/advance", json={"seconds": 1})
    assert fetch(c, d["client_id"]).status_code == 202
    assert fetch_ready(c, d["client_id"]).status_code == 200
    # the control API skips the page too
    d2 = init(c)
    out = c.post(f"/_sandbox/flows/{d2['client_id']}/complete", json={"outcome": "success"})
    assert out.status_code == 200 and out.json["status"] == "SUCCEEDED"
    assert fetch_ready(c, d2["client_id"]).status_code == 200


def test_pdf_links_are_real_pdfs_that_expire(app, c):
    pypdf = pytest.importorskip("pypdf")
    d = init(c)
    consent(c, d["redirect_url"], d["client_id"])
    fetch_ready(c, d["client_id"])
    r = fetch(c, d["client_id"], path="fetch-statement-pdf")
    assert r.status_code == 200
    report = r.json["data"]["reports"][0]
    assert report["status"] == "READY" and report["fip_id"].endswith("-FIP")
    link = local(report["statement_report_link"])
    pdf = c.get(link)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.data)).pages)
    assert ledger_checking(app)[0].number[-4:] in text
    assert c.get(link.replace("token=", "token=x")).status_code == 403
    c.post("/_sandbox/clock/advance", json={"seconds": 15 * 60 - 1})
    assert c.get(link).status_code == 200
    c.post("/_sandbox/clock/advance", json={"seconds": 1})
    assert c.get(link).status_code == 403


def test_refresh_data_under_loan_monitoring_sees_new_data(c):
    d = init(c, consent_type="loan_monitoring")
    cid = d["client_id"]
    assert c.post(AA + "refresh-data", json={"client_id": cid}, headers=H).json["message_code"] == "consent_not_active"
    consent(c, d["redirect_url"], cid)
    r = fetch(c, cid)
    assert r.status_code == 400 and r.json["message_code"] == "request_id_required"
    first = c.post(AA + "refresh-data", json={"client_id": cid}, headers=H).json["data"]["request_id"]
    assert re.match(r"^account_aggregator_v2_[A-Za-z]{20}_[A-Za-z]{8}$", first)
    old = fetch_ready(c, cid, request_id=first).json["data"]["account_aggregator_json"][0]
    c.post("/_sandbox/clock/advance", json={"seconds": 45 * 86400})
    second = c.post(AA + "refresh-data", json={"client_id": cid}, headers=H).json["data"]["request_id"]
    new = fetch_ready(c, cid, request_id=second).json["data"]["account_aggregator_json"][0]
    assert new["transaction_data"]["end_date"] > old["transaction_data"]["end_date"]
    new_txns = new["transaction_data"]["transaction_details"]
    assert new_txns[-1]["transaction_timestamp"][:10] > old["transaction_data"]["end_date"]
    for prev, cur in zip(new_txns, new_txns[1:]):
        sign = 1 if cur["type"] == "CREDIT" else -1
        assert Decimal(prev["transactional_balance"]) + sign * Decimal(str(cur["amount"])) \
            == Decimal(cur["transactional_balance"])
    # the old request still serves its own snapshot
    assert fetch(c, cid, request_id=first).json["data"]["account_aggregator_json"][0] == old
    r = fetch(c, cid, request_id="account_aggregator_v2_unknown")
    assert r.status_code == 422 and r.json["message_code"] == "no_fi_request_found"


def test_consent_status_changes_are_enqueued_webhooks(app, c):
    d = init(c, webhook_url="https://hooks.example.com/aa")
    consent(c, d["redirect_url"], d["client_id"])
    fetch_ready(c, d["client_id"])
    hooks = c.get("/_sandbox/webhooks", query_string={"tenant": "sandbox-client", "provider": "finpass"}).json
    items = hooks["deliveries"]
    payloads = [h["payload"] for h in items]
    assert {(p["consent_status"], p["fi_status"]) for p in payloads} == {("ACTIVE", None), ("ACTIVE", "READY")}
    assert all(p["client_id"] == d["client_id"] and h["url"] == "https://hooks.example.com/aa"
               for p, h in zip(payloads, items))


# --- AA-BSA ----------------------------------------------------------------------------------------------------

def bsa_init(c, mobile=MOBILE, **extra):
    r = c.post(BSA + "init", json={"mobile_number": mobile, **extra}, headers=H)
    assert r.status_code == 200, r.json
    return r.json["data"]


def bsa_status(c, cid, post=False):
    if post:
        return c.post(BSA + "status", json={"client_id": cid}, headers=H)
    return c.get(BSA + "status", query_string={"client_id": cid}, headers=H)


def test_aa_bsa_journey_status_machine_and_analysis(app, c):
    d = bsa_init(c)
    cid = d["client_id"]
    assert d["status"] == "initiated" and d["consent_type"] == "loan_underwriting" and d["expires_at"].endswith("+05:30")
    assert bsa_status(c, cid).json["data"]["status"] == "initiated"
    r = c.get(BSA + "analysis-json", query_string={"client_id": cid}, headers=H)
    assert r.status_code == 409 and r.json == {"success": False, "message": r.json["message"],
                                               "error_code": "ANALYSIS_NOT_READY"}
    url = local(d["journey_url"])
    c.get(url)
    page = c.post(url, data={"client_id": cid, "step": "otp", "otp": "654321"})
    assert bsa_status(c, cid).json["data"]["status"] == "consent_pending"
    refs = re.findall(r'name="accounts" value="([^"]+)"', page.data.decode())
    out = c.post(url, data={"client_id": cid, "step": "accounts", "accounts": refs, "approve": "1"})
    assert out.headers["Location"] == f"https://finpass.ai/?client_id={cid}&status=consent_granted"
    seen = [bsa_status(c, cid, post=i % 2 == 1).json["data"]["status"] for i in range(4)]
    assert seen == ["data_fetched", "analysis_in_progress", "analysis_complete", "analysis_complete"]
    assert bsa_status(c, cid).json["data"]["mobile_number"] == "98XXXXXX10"

    stmt = c.get(BSA + "statement-result", query_string={"client_id": cid}, headers=H).json["data"]
    analysis = c.post(BSA + "analysis-json", json={"client_id": cid}, headers=H).json["data"]
    (account,) = stmt["accounts"]
    ledger_acc = ledger_checking(app)[0]
    txns = account["transactions"]
    assert account["closing_balance"] == float(ledger_acc.balance)
    bal = Decimal(str(account["opening_balance"]))
    for t in txns:
        bal += Decimal(str(t["amount"])) * (1 if t["type"] == "CREDIT" else -1)
        assert bal == Decimal(str(t["balance"]))
    credits = sum(Decimal(str(t["amount"])) for t in txns if t["type"] == "CREDIT")
    debits = sum(Decimal(str(t["amount"])) for t in txns if t["type"] == "DEBIT")
    assert Decimal(str(analysis["summary"]["total_credits"])) == credits
    assert Decimal(str(analysis["summary"]["total_debits"])) == debits
    assert sum(Decimal(str(m["credits"])) for m in analysis["monthly_trends"]) == credits
    assert analysis["monthly_trends"][-1]["closing_balance"] == account["closing_balance"]
    # salary credits and EMIs, independently from the ledger's categories
    window = [t for t in ledger_acc.transactions if t.booking_date.isoformat() >= account["statement_from"]]
    salaries = [t for t in window if t.category in ("salary", "pension")]
    assert [s["amount"] for s in analysis["income"]["identified_salary_credits"]] == [float(t.amount) for t in salaries]
    income = sum((t.amount for t in window if t.category in ("salary", "pension", "freelance", "benefits")), Decimal(0))
    assert analysis["income"]["average_monthly_income"] == float((income / 12).quantize(Decimal("0.01")))
    emis = {t.counterparty: abs(t.amount) for t in window if t.category in ("loan_repayment", "mortgage")}
    assert {o["lender"]: Decimal(str(o["monthly_amount"])) for o in analysis["obligations"]["fixed_obligations"]} == emis
    if income:
        expected_foir = (sum(emis.values(), Decimal(0)) / (income / 12)).quantize(Decimal("0.0001"))
        assert Decimal(str(analysis["obligations"]["fixed_obligations_ratio"])) == expected_foir
    assert 0 <= analysis["income"]["income_stability_score"] <= 100


@pytest.mark.parametrize("mobile,final", [("9000000001", "consent_rejected"), ("9000000004", "failed"),
                                          ("9000000006", "expired"), ("9000000002", "consent_pending")])
def test_aa_bsa_scenarios(c, mobile, final):
    d = bsa_init(c, mobile=mobile)
    c.post(f"/_sandbox/flows/{d['client_id']}/complete", json={"outcome": "success"})
    for _ in range(5):
        status = bsa_status(c, d["client_id"]).json["data"]["status"]
    assert status == final


def test_aa_bsa_validation_and_expiry(c):
    assert c.post(BSA + "init", json={"mobile_number": "123"}, headers=H).json["error_code"] == "INVALID_INPUT"
    assert bsa_status(c, "bsa_clnt_zzz").status_code == 400
    assert bsa_status(c, "bsa_clnt_000000000000").status_code == 404
    assert c.get(BSA + "status", headers=H).status_code == 400
    d = bsa_init(c)
    c.post("/_sandbox/clock/advance", json={"seconds": 24 * 3600})
    assert bsa_status(c, d["client_id"]).json["data"]["status"] == "expired"
