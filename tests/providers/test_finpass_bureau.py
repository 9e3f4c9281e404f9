"""Finpass multi-bureau, corporate, EPFO and ITR against the person's ledger and the company fixture.

Expected values are computed here from the ledger's own transactions (statement EMI debits, salary credits) and
from finpass.md's formats, never through sandbox/providers/finpass/bureau.py's helpers.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
import yaml

from contract_tests.test_finpass_bureau import family_app
from sandbox.providers.finpass import bureau, companies
from sandbox.providers.finpass.people import People

KEYS = {"x-api-key": "sandbox-client", "x-api-secret": "sandbox-secret"}
TENANT = "sandbox-client"
EMI_TEXT = re.compile(r"^EMI \d+ (PERSONAL|HOME) LOAN$")
CIN_RE = re.compile(r"^[LU][0-9]{5}[A-Z]{2}[0-9]{4}[A-Z]{3}[0-9]{6}$")
PAN_RE = re.compile(r"^[A-Z]{5}[0-9]{4}[A-Z]$")
FY_2024_25 = (date(2024, 4, 1), date(2025, 3, 31))


@pytest.fixture
def app():
    return family_app()


@pytest.fixture
def client(app):
    return app.test_client()


def post(client, path, body, status=200):
    r = client.post("/finpass" + path, json=body, headers=KEYS)
    assert r.status_code == status, r.get_json()
    return r.get_json()


def control(client, path, body=None):
    r = client.post("/_sandbox" + path, json=body or {})
    assert r.status_code < 300, r.get_data()
    return r.get_json()


def ledger_of(app, mobile=None, pan=None):
    sb = app.extensions["sandbox"]
    with app.app_context():
        people = People(sb, TENANT)
        return people.ledger(people.key(mobile=mobile, pan=pan))


def fetch(client, mobile, pan="ABCPE1234F", bureaus=("cibil", "experian", "equifax", "crif"), name="Ravi Kumar"):
    return post(client, "/api/v1/services/multi-bureau/fetch",
                {"pan": pan, "name": name, "mobile_number": mobile, "consent": "Y", "gender": "female",
                 "bureaus": list(bureaus)})


# --- the company fixture ------------------------------------------------------------------------------------------
def test_fixture_is_large_varied_and_valid_by_construction():
    raw = yaml.safe_load(companies.FIXTURE.read_text())
    entities = raw["companies"] + raw["llps"] + raw["others"]
    assert len(raw["companies"]) + len(raw["llps"]) >= 40
    pans = [e["pan"] for e in entities]
    assert len(set(pans)) == len(pans)
    states = {"MH": "Maharashtra", "KA": "Karnataka", "DL": "Delhi", "TN": "Tamil Nadu", "GJ": "Gujarat",
              "WB": "West Bengal", "TG": "Telangana", "UP": "Uttar Pradesh", "RJ": "Rajasthan", "HR": "Haryana",
              "KL": "Kerala", "AP": "Andhra Pradesh", "PB": "Punjab", "MP": "Madhya Pradesh", "AS": "Assam",
              "OR": "Odisha", "BR": "Bihar", "GA": "Goa"}
    for c in raw["companies"]:
        cin = c["cin"]
        assert CIN_RE.match(cin), cin
        assert states[cin[6:8]] == c["state"] and c["registered_address"].endswith(
            re.search(r"- \d{6}$", c["registered_address"]).group(0))
        assert cin[8:12] == str(c["date_of_incorporation"])[:4]
        assert {"PLC": "Public Limited Company", "PTC": "Private Limited Company"}.get(cin[12:15], c["company_type"]) \
            == c["company_type"]
        assert c["pan"][3] == "C" and PAN_RE.match(c["pan"]) and c["pan"][4] == c["company_name"][0]
        assert 0 < c["paid_up_capital"] <= c["authorised_capital"]
        assert set(re.sub(r"\D", "", cin)) != {"9"}
    for entry in raw["llps"]:
        assert re.fullmatch(r"[A-Z]{3}-[0-9]{4}", entry["llpin"]) and entry["pan"][3] == "F"
        assert str(entry["date_of_incorporation"]) >= "2009"
    assert {e["entity_type"]: e["pan"][3] for e in raw["others"]} == {"Trust": "T", "Firm": "F"}
    statuses = {c["status"] for c in raw["companies"]} | {e["status"] for e in raw["llps"]}
    assert {"Active", "Struck Off", "Defunct"} <= statuses
    assert len({c["state"] for c in raw["companies"]}) >= 12


@pytest.mark.parametrize("path,value,problem", [
    (("companies", 0, "date_of_incorporation"), "2010-01-01", "year"),
    (("companies", 0, "state"), "Karnataka", "state"),
    (("companies", 0, "pan"), "AADPS7949A", "4th character"),
    (("companies", 0, "pan"), "AADCX7949A", "5th character"),
    (("companies", 0, "roc_code"), "RoC-Delhi", "registrar"),
    (("companies", 0, "paid_up_capital"), 10 ** 12, "paid-up"),
    (("companies", 0, "cin"), "U15400MH2009PTC2693", "malformed CIN"),
    (("llps", 0, "pan"), "AAWCS1005T", "4th character"),
    (("llps", 0, "llpin"), "AAB4521", "malformed LLPIN"),
    (("llps", 0, "date_of_incorporation"), "2005-01-01", "LLP Act"),
])
def test_a_broken_fixture_is_refused(tmp_path, path, value, problem):
    raw = yaml.safe_load(companies.FIXTURE.read_text())
    section, index, field = path
    raw[section][index][field] = value
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(raw))
    with pytest.raises(companies.FixtureError, match=problem):
        companies.load(broken)


def test_every_fixture_entity_answers_through_each_of_its_identifiers(client):
    raw = yaml.safe_load(companies.FIXTURE.read_text())
    for c in raw["companies"]:
        by_cin = post(client, "/api/v1/corporate/cin-lookup", {"cin": c["cin"]})["data"]
        by_pan = post(client, "/api/v1/corporate/pan-lookup", {"pan": c["pan"].lower()})["data"]
        assert by_cin["company_name"] == by_pan["entity_name"] == c["company_name"]
        assert by_pan["cin"] == c["cin"] and by_cin["pan"] == c["pan"]
        found = post(client, "/api/v1/corporate/company-autocomplete", {"company_name": c["company_name"]})
        assert found["data"][0]["cin"] == c["cin"]
    for entry in raw["llps"]:
        by_pin = post(client, "/api/v1/corporate/llpin-lookup", {"llpin": entry["llpin"].lower()})["data"]
        assert by_pin["pan"] == entry["pan"] and by_pin["status"] == entry["status"]
    for entry in raw["others"]:
        by_pan = post(client, "/api/v1/corporate/pan-lookup", {"pan": entry["pan"]})["data"]
        assert (by_pan["entity_type"], by_pan["cin"], by_pan["llpin"]) == (entry["entity_type"], None, None)


def test_unknown_but_well_formed_identifiers_are_404(client):
    assert post(client, "/api/v1/corporate/cin-lookup", {"cin": "U72200KA2001PTC000123"}, 404)["error_code"] \
        == "NOT_FOUND"
    post(client, "/api/v1/corporate/llpin-lookup", {"llpin": "ZZZ-0001"}, 404)
    post(client, "/api/v1/corporate/pan-lookup", {"pan": "ZZZCZ0001Z"}, 404)


# --- multi-bureau against the ledger ------------------------------------------------------------------------------
def test_bureau_loans_carry_the_emis_debited_in_the_statements(app, client):
    """For many persons: the EMI debits in the savings account are exactly the loans' emiAmount in every bureau,
    and the cards are the ledger's cards with their outstanding balances."""
    with_loans = 0
    for i in range(24):
        mobile = f"99{i:08d}"
        report = fetch(client, mobile)
        ledger = ledger_of(app, mobile)
        statement = [t for a in ledger.accounts if a.kind == "checking" for t in a.transactions]
        emi_debits = {-t.amount for t in statement if EMI_TEXT.match(t.description)}
        cards = {a.number[-4:]: -a.balance for a in ledger.accounts if a.kind == "credit_card"}
        if not emi_debits and not cards:
            assert report["status"] == "failed", "no credit history -> no bureau record"
            assert all(r["data"] is None and r["message"] == "No record found" for r in report["results"].values())
            continue
        assert report["status"] == "completed"
        with_loans += bool(emi_debits)
        for result in report["results"].values():
            accounts = result["data"]["credit_report"][0]["accounts"]
            emis = {Decimal(str(a["emiAmount"])) for a in accounts if a["emiAmount"] is not None}
            assert emis == emi_debits, (mobile, ledger.persona)
            reported_cards = {a["accountNumber"][-4:]: Decimal(str(a["currentBalance"]))
                              for a in accounts if a["accountType"] == "Credit Card"}
            assert reported_cards == cards
            for a in accounts:
                assert len(a["monthlyPayStatus"]) >= 1 and all(m["status"] == "0" for m in a["monthlyPayStatus"])
                assert a["dateOpened"] < min(t.booking_date for t in statement).isoformat() or \
                    a["accountType"] == "Credit Card"
    assert with_loans >= 2, "the sample must include persons with loans"


def test_scores_stay_in_range_and_follow_utilisation(app, client):
    scores = []
    for i in range(20):
        report = fetch(client, f"96{i:08d}")
        for result in report["results"].values():
            if result["success"]:
                scores.append(result["data"]["credit_score"])
                assert 300 <= result["data"]["credit_score"] <= 900
    assert len(set(scores)) > 5, "scores differ between persons and bureaus"


def test_the_same_seed_gives_the_same_reports():
    a, b = family_app().test_client(), family_app().test_client()
    for client in (a, b):
        control(client, "/clock/freeze", {"at": "2025-07-23T06:00:00Z"})
    assert fetch(a, "9123456780") == fetch(b, "9123456780")


# --- EPFO against the ledger --------------------------------------------------------------------------------------
def test_epfo_salary_credits_are_the_ledgers_salary_bookings(app, client):
    checked = missing = 0
    for i in range(16):
        mobile = f"95{i:08d}"
        ledger = ledger_of(app, mobile)
        salary = [t for a in ledger.accounts if a.kind == "checking" for t in a.transactions
                  if t.amount > 0 and "SALARY" in t.description]
        r = client.post("/finpass/api/v1/epfo/crif-combined-report", json={"mobile_number": mobile}, headers=KEYS)
        if not salary:
            assert r.status_code == 404 and r.get_json()["error_code"] == "NOT_FOUND"
            missing += 1
            continue
        assert r.status_code == 200, r.get_json()
        epfo = r.get_json()["data"]["epfo"]
        assert epfo["name"] == ledger.owner_name and epfo["mobile"] == mobile
        current = epfo["employment_history"][0]
        assert current["date_of_exit"] is None and current["employer_name"] == salary[-1].counterparty
        got = [(c["credit_date"], Decimal(str(c["amount"]))) for c in current["salary_credits"]]
        assert got == [(t.booking_date.isoformat(), t.amount) for t in salary]
        for c in current["salary_credits"]:
            assert c["employee_share"] == int((Decimal(c["epf_wages"]) * Decimal("0.12")).quantize(Decimal(1),
                                                                                                   "ROUND_HALF_UP"))
            assert c["employer_share"] + c["pension_share"] == c["employee_share"]
            assert c["pension_share"] <= 1250
        assert (current["employee_share"], current["employer_share"]) == (
            current["salary_credits"][-1]["employee_share"], current["salary_credits"][-1]["employer_share"])
        checked += 1
    assert checked >= 3 and missing >= 1, (checked, missing)


# --- ITR against the ledger ---------------------------------------------------------------------------------------
def _tax_fy_2024_25(taxable: int) -> int:
    """New regime, AY 2025-26: 0-3L nil, 3-7L 5 %, 7-10L 10 %, 10-12L 15 %, 12-15L 20 %, above 30 %; 87A rebate up to
    7L; surcharge 10 % above 50L, 15 % above 1Cr; 4 % cess."""
    slabs = [(300000, 0), (700000, 5), (1000000, 10), (1200000, 15), (1500000, 20), (10 ** 12, 30)]
    tax, lower = Decimal(0), 0
    for upper, rate in slabs:
        if taxable > lower:
            tax += Decimal(min(taxable, upper) - lower) * rate / 100
        lower = upper
    if taxable <= 700000:
        tax = Decimal(0)
    tax *= Decimal("1.15") if taxable > 10 ** 7 else Decimal("1.10") if taxable > 5 * 10 ** 6 else 1
    return int((tax * Decimal("1.04")).quantize(Decimal(1), "ROUND_HALF_UP"))


def _complete_itr(client, pan):
    """Analyse the PAN's returns in August 2025 (after the AY 2025-26 filing season)."""
    control(client, "/clock/set", {"at": "2025-08-20T06:00:00Z"})
    job = post(client, "/api/v1/itr-analyzer/analyze", {"username": pan, "password": "pw"})["data"]
    control(client, "/clock/advance", {"seconds": 30})
    for _ in range(6):
        r = client.get("/finpass/api/v1/itr-analyzer/status", query_string={"job_id": job["job_id"]}, headers=KEYS)
        if r.get_json()["data"]["status"] == "completed":
            break
    r = client.get("/finpass/api/v1/itr-analyzer/data", query_string={"job_id": job["job_id"]}, headers=KEYS)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["data"]


def test_itr_incomes_are_the_ledgers_salary_for_a_covered_financial_year(app, client):
    control(client, "/clock/freeze", {"at": "2025-04-20T06:00:00Z"})
    checked = 0
    for i in range(10):
        mobile, pan = f"94{i:08d}", f"ABCP{chr(65 + i)}{2000 + i}Q"
        control(client, "/clock/set", {"at": "2025-04-20T06:00:00Z"})
        fetch(client, mobile, pan, bureaus=["cibil"])       # links the PAN to the person, anchors the ledger
        ledger = ledger_of(app, mobile)
        if ledger.persona in ("freelancer", "retiree"):
            continue
        data = _complete_itr(client, pan)
        assert data["name"] == ledger.owner_name and data["pan"] == pan[:5] + "****" + pan[-1]
        start = min(t.booking_date for a in ledger.accounts for t in a.transactions)
        assert start <= FY_2024_25[0], "a 13-month ledger anchored on 2025-04-20 covers FY 2024-25"
        salary = sum(t.amount for a in ledger.accounts if a.kind == "checking" for t in a.transactions
                     if "SALARY" in t.description and FY_2024_25[0] <= t.booking_date <= FY_2024_25[1])
        record = next(r for r in data["itr_records"] if r["assessment_year"] == "2025-26")
        assert record["income_from_salary"] == int(salary.quantize(Decimal(1), "ROUND_HALF_UP"))
        assert record["gross_total_income"] == record["income_from_salary"]
        assert record["total_deductions"] == 75000
        assert record["tax_payable"] == _tax_fy_2024_25(record["net_taxable_income"])
        assert record["itr_type"] == ("ITR-1" if record["gross_total_income"] <= 5000000 else "ITR-2")
        assert [r["assessment_year"] for r in data["itr_records"]] == ["2025-26", "2024-25", "2023-24"]
        checked += 1
    assert checked >= 3


def test_itr_for_a_freelancer_declares_presumptive_business_income(app, client):
    control(client, "/clock/freeze", {"at": "2025-04-20T06:00:00Z"})
    for i in range(30):
        mobile, pan = f"93{i:08d}", f"ABCP{chr(65 + i % 26)}{3000 + i}R"
        fetch(client, mobile, pan, bureaus=["cibil"])
        if ledger_of(app, mobile).persona == "freelancer":
            break
    else:
        pytest.skip("no freelancer among 30 mobiles")
    data = _complete_itr(client, pan)
    record = next(r for r in data["itr_records"] if r["assessment_year"] == "2025-26")
    assert record["income_from_salary"] == 0 and record["income_from_business"] > 0
    assert record["itr_type"] in ("ITR-3", "ITR-4") and record["total_deductions"] == 0


def test_scenarios_are_declared():
    values = {s["value"] for s in bureau.SCENARIOS}
    assert {"No Hit", "Partial Hit", "invalid", "fail-later"} <= values


@pytest.mark.parametrize("taxable", [0, 299999, 650000, 700000, 700001, 1150000, 1800000, 4999999, 5000001, 7500000,
                                     10000001, 15000000])
def test_income_tax_follows_the_fy_2024_25_new_regime(taxable):
    assert bureau.income_tax(Decimal(taxable), 2025) == _tax_fy_2024_25(taxable)
