"""finoOS banking: German data helpers, ledger -> finoOS accounts (every account type, GVC/SEPA fields), the company
ledger, the summary PDF cut, and materialise_bank_accounts (bank-fetched data the manual-upload operations must not
touch). Expected values are computed from the ledger's own bookings, independently of the code under test."""
from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, timezone
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from contract_tests.partial_app import fino_app
from sandbox.core.store import MemoryStore
from sandbox.ledger import available_personas, generate_ledger, is_valid_iban
from sandbox.providers.fino import german, model
from sandbox.providers.fino.banking import PDF_LIMIT, ledger_accounts, summary_cut

BERLIN = ZoneInfo("Europe/Berlin")
TODAY = date(2025, 6, 16)
BIC = re.compile(r"^[A-Z]{4}DE[A-Z0-9]{2}([A-Z0-9]{3})?$")


# --- helpers of german.py -------------------------------------------------------------------------------------------
def test_creditor_ids_are_valid_and_the_check_catches_a_typo():
    assert german.is_valid_creditor_id("DE98ZZZ09999999999")          # the Bundesbank's published test id
    assert not german.is_valid_creditor_id("DE98ZZZ09999999998")
    for name in ("Vattenfall Europe Sales", "Techniker Krankenkasse", "Spotify AB"):
        cid = german.creditor_id(name)
        assert re.fullmatch(r"DE[0-9]{2}ZZZ[0-9]{11}", cid) and german.is_valid_creditor_id(cid)
        assert cid == german.creditor_id(name)
        wrong = cid[:-1] + str((int(cid[-1]) + 1) % 10)
        assert not german.is_valid_creditor_id(wrong)


def test_ids_and_references_have_the_documented_shapes():
    assert re.fullmatch(r"A[0-9a-f]{24}\.[0-9a-f]{40}", german.fetched_account_id("t", "u", "l", "a"))
    assert re.fullmatch(r"T[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        german.fetched_transaction_id("x"))
    for i in range(50):
        assert len(german.mandate_reference(f"c{i}", "k")) <= 35
        assert len(german.end_to_end_reference(i)) <= 35
    assert german.wkn("DE0007164600") == "716460" and german.wkn("IE00B4L5Y983") == "A0RPWH"
    assert all(BIC.match(german.bic_for_blz(b)) for b in german.BIC_BY_BLZ if b != german.FINO_BANK["code"])
    assert BIC.match(german.bic_for_blz("99999999"))


# --- ledger -> finoOS ------------------------------------------------------------------------------------------------
def _ledger(persona, key="p1"):
    if persona == "company":
        return german.generate_company_ledger(7, key, TODAY, months=13)
    return generate_ledger(7, key, TODAY, market="DE", months=13, persona=persona)


def _berlin_day(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone(BERLIN).date()


@pytest.mark.parametrize("persona", [*available_personas(), "company"])
def test_ledger_accounts_mirror_the_ledger(persona):
    ledger = _ledger(persona)
    docs = ledger_accounts("tenant", "user", "5d7267d1b747aa683d88668f", ledger, 7)
    by_ledger = {d["_ledger"]: (d, txs) for d, txs in docs}
    for acc in ledger.accounts:
        doc, txs = by_ledger[acc.id]
        assert doc["balance"] == float(acc.balance)
        assert len(txs) == len(acc.transactions) and len({t["transactionId"] for t in txs}) == len(txs)
        assert sum(Decimal(str(t["amount"])) for t in txs) == sum(t.amount for t in acc.transactions)
        assert sorted(_berlin_day(t["bookingDate"]) for t in txs) == sorted(t.booking_date for t in acc.transactions)
        if acc.iban:
            assert is_valid_iban(doc["iban"]) and doc["iban"][4:12] == doc["bankCode"] and BIC.match(doc["bic"])
        for t in txs:
            partner = t["paymentPartner"]
            if partner["iban"]:
                assert is_valid_iban(partner["iban"]) and BIC.match(partner["bic"])
            if t["transactionCode"] == 105 and t["amount"] < 0:
                assert german.is_valid_creditor_id(partner["creditorId"]) and 0 < len(t["mref"]) <= 35
            assert len(t["eref"]) <= 35
            if t["_category"] == "salary":
                assert (t["transactionCode"], t["sepaPurposeCode"]) == (153, "SALA") and t["amount"] > 0
            if t["_category"] == "rent":
                assert t["transactionCode"] == 117
    # standing orders: one per recurring rent / savings transfer, amounts from the ledger
    giro = next(d for d, _ in docs if d["type"] == "GIRO")
    ledger_giro = next(a for a in ledger.accounts if a.kind == "checking")
    rents = [t for t in ledger_giro.transactions if t.category == "rent"]
    orders = {(o["name"], o["amount"]) for o in giro["standingOrders"]}
    if len(rents) >= 2:
        assert (rents[0].counterparty, float(-rents[0].amount)) in orders
        order = next(o for o in giro["standingOrders"] if o["name"] == rents[0].counterparty)
        assert order["firstExecutionDate"] == rents[0].booking_date.isoformat()
        assert order["lastExecutionDate"] == rents[-1].booking_date.isoformat()
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", order["creationTimestamp"])


def test_every_account_type_appears_across_personas():
    seen = set()
    for persona in [*available_personas(), "company"]:
        for key in ("p1", "p2"):
            seen |= {d["type"] for d, _ in ledger_accounts("t", "u", "l", _ledger(persona, key), 7)}
    assert seen == set(german.ACCOUNT_TYPES)


def test_depot_securities_equal_the_holdings():
    ledger = _ledger("high_earner_investor")
    docs = ledger_accounts("t", "u", "l", ledger, 7)
    depot = next(d for d, _ in docs if d["type"] == "DEPOT")
    ledger_depot = next(a for a in ledger.accounts if a.kind == "securities")
    assert round(sum(s["amount"] for s in depot["securities"]), 2) == float(ledger_depot.balance)
    assert {s["isin"] for s in depot["securities"]} == {h.isin for h in ledger_depot.holdings}
    assert all(re.fullmatch(r"[0-9a-f]{24}", s["securityId"]) and re.fullmatch(r"[A-Z0-9]{6}", s["wkn"])
               for s in depot["securities"])


# --- the company ledger ----------------------------------------------------------------------------------------------
def test_company_ledger_vat_payroll_loan_and_balances():
    ledger = _ledger("company", "firm-1")
    assert ledger.to_json() == _ledger("company", "firm-1").to_json()            # deterministic
    giro, loan, reserve = ledger.accounts
    for acc in ledger.accounts:
        assert acc.opening_balance + sum(t.amount for t in acc.transactions) == acc.balance
    running = giro.opening_balance
    for t in giro.transactions:
        running += t.amount
        assert running >= 0                                                   # never overdrawn
    # VAT paid on the 10th of month M+1 = 19 % of the month's net revenue - 19 % of net supplier invoices
    per_month = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for t in giro.transactions:
        if t.category in ("revenue", "supplier"):
            net = (abs(t.amount) / Decimal("1.19")).quantize(Decimal("1"))
            per_month[(t.booking_date.year, t.booking_date.month)][t.category == "supplier"] += net
    vats = [t for t in giro.transactions if t.category == "vat"]
    assert len(vats) >= 11
    for v in vats[1:]:
        y, m = (v.booking_date.year, v.booking_date.month - 1) if v.booking_date.month > 1 else (v.booking_date.year - 1, 12)
        out, inp = per_month[(y, m)]
        assert abs(-v.amount - (out - inp) * Decimal("0.19")) < 3, (v, out, inp)
    payroll = [t for t in giro.transactions if t.category == "payroll"]
    months = {(t.booking_date.year, t.booking_date.month) for t in payroll}
    assert len(payroll) % len(months) == 0 and len(payroll) // len(months) >= 3   # same staff every month
    # the loan: each instalment on the giro matches the credit on the loan account
    out_legs = sorted((t.booking_date, -t.amount) for t in giro.transactions if t.category == "loan_repayment")
    in_legs = sorted((t.booking_date, t.amount) for t in loan.transactions if t.category == "loan_repayment")
    assert out_legs == in_legs and loan.balance < 0
    assert {t.category for t in giro.transactions} >= {"revenue", "supplier", "payroll", "social_security",
                                                       "wage_tax", "vat", "rent", "loan_repayment"}


# --- summary cut -----------------------------------------------------------------------------------------------------
def _txs(per_day: list[int]):
    start = int(datetime(2024, 3, 1, 9, tzinfo=BERLIN).timestamp())
    return [{"transactionId": f"{d}-{i}", "bookingDate": start + d * 86400 + i}
            for d, n in enumerate(per_day) for i in range(n)]


def test_summary_cut_boundaries():
    assert summary_cut(_txs([5000, 5000])) == (_txs([5000, 5000]), None)                # exactly the limit
    shown, stopped = summary_cut(_txs([5000, 4999, 2]))                                 # 10001: day 3 dropped
    assert len(shown) == 9999 and stopped == datetime(2024, 3, 3, tzinfo=BERLIN).isoformat()
    shown, stopped = summary_cut(_txs([4000, 6001]))                                    # day 2 would exceed
    assert len(shown) == 4000 and stopped == datetime(2024, 3, 2, tzinfo=BERLIN).isoformat()
    shown, stopped = summary_cut(_txs([PDF_LIMIT + 5]))                                 # one huge day: cut inside
    assert len(shown) == PDF_LIMIT and stopped == datetime(2024, 3, 1, 11, 46, 40, tzinfo=BERLIN).isoformat()


# --- materialise_bank_accounts and the manual-upload guards -------------------------------------------------------------
@pytest.fixture
def app():
    return fino_app({"SEED": 3}, store=MemoryStore())


def _ctx(app, at):
    sandbox = app.extensions["sandbox"]
    return SimpleNamespace(sandbox=sandbox, tenant="sandbox-client", now=lambda: at, user_scopes=None,
                           service=sandbox.providers["fino"].service)


def _token(client):
    r = client.post("/fino/api/auth", data={"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                                            "grant_type": "client_credentials"})
    return {"Authorization": "Bearer " + r.get_json()["access_token"]}


def test_materialise_upserts_and_protects_bank_data(app):
    client = app.test_client()
    h = _token(client)
    uid = client.post("/fino/api/users", json={"type": "person"}, headers=h).get_json()["user"]["userID"]
    svc = app.extensions["sandbox"].providers["fino"].service
    login = "5d7267d1b747aa683d88668f"
    first = svc.materialise_bank_accounts(_ctx(app, datetime(2025, 5, 1, 12, tzinfo=timezone.utc)), uid, login,
                                          "cust-42", account_types=["GIRO", "TAGESGELD"])
    assert first and {a["type"] for a in first} <= {"GIRO", "TAGESGELD"}
    assert all(a["bankLoginId"] == login and re.fullmatch(r"A[0-9a-f]{24}\.[0-9a-f]{40}", a["accountId"])
               for a in first)
    giro = next(a for a in first if a["type"] == "GIRO")["accountId"]
    ctx = _ctx(app, None)
    before = {t["transactionId"]: t for t in model.transactions(ctx, uid, giro).iter()}
    svc.materialise_bank_accounts(_ctx(app, datetime(2025, 7, 1, 12, tzinfo=timezone.utc)), uid, login, "cust-42",
                                  account_types=["GIRO"])
    after = {t["transactionId"]: t for t in model.transactions(ctx, uid, giro).iter()}
    assert set(before) < set(after)                                 # same bookings keep their ids, new ones appear
    expected_new = generate_ledger(3, "cust-42", date(2025, 7, 1), market="DE", months=13)
    ledger_giro = next(a for a in expected_new.accounts if a.kind == "checking")
    newest = max(t.booking_date for t in ledger_giro.transactions)
    assert max(_berlin_day(t["bookingDate"]) for t in after.values()) == newest
    # manual-upload operations refuse bank-fetched data, changing nothing
    tid = next(iter(before))
    base = f"/fino/api/users/{uid}/banking/accounts"
    snapshot = client.get(base, headers=h).get_json()
    for method, url, body in [("delete", f"{base}/{giro}/transactions", {"ids": [tid]}),
                              ("patch", f"{base}/{giro}", {"transactions": [{"transactionId": tid, "amount": 1}]}),
                              ("post", f"{base}/{giro}/transactions",
                               {"transactions": [{"transactionId": tid, "amount": 1, "bookingDate": 1}]}),
                              ("patch", base, {"accounts": [{"accountId": giro, "name": "x"}]}),
                              ("post", base, {"accounts": [{"accountId": giro}]}),
                              ("delete", base, {"ids": [giro]}), ("delete", f"{base}/{giro}", None)]:
        r = getattr(client, method)(url, json=body, headers=h)
        assert r.status_code == 400 and r.get_json()["type"] == "invalidInput", (method, url, r.get_json())
    assert client.get(base, headers=h).get_json() == snapshot
    # a manual transaction may be added to a bank account and deleted again
    r = client.post(f"{base}/{giro}/transactions", json={"transactions": [
        {"transactionId": "manual-1", "amount": -3, "bookingDate": 1717200000}]}, headers=h)
    assert r.status_code == 200
    assert client.delete(f"{base}/{giro}/transactions", json={"ids": ["manual-1"]}, headers=h).status_code == 204


def test_company_users_get_the_company_ledger(app):
    client = app.test_client()
    h = _token(client)
    uid = client.post("/fino/api/users", json={"type": "company"}, headers=h).get_json()["user"]["userID"]
    svc = app.extensions["sandbox"].providers["fino"].service
    out = svc.materialise_bank_accounts(_ctx(app, datetime(2025, 5, 1, 12, tzinfo=timezone.utc)), uid,
                                        "4c3f499042d08950a7f6126b", "firm-7", bank=german.FINO_BANK)
    assert {a["type"] for a in out} == {"GIRO", "KREDITDARLEHEN", "TAGESGELD", "KREDIT_KONTO", "OTHER", "UNKNOWN"}
    assert all(a["bankName"] == "Fino Bank" and a["bic"] == "FINOBANK01" for a in out)
    assert all(is_valid_iban(a["iban"]) and a["iban"][4:12] == "10020000" for a in out if a["iban"])
    txs = client.get(f"/fino/api/users/{uid}/banking/transactions", headers=h).get_json()
    assert any(t["sepaPurposeCode"] == "VATX" for t in txs) and any(t["purpose"].startswith("LOHN/GEHALT") for t in txs)
