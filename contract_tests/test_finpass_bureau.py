"""Finpass multi-bureau, corporate, EPFO + CRIF and ITR contract tests, by catalogue id (finpass.md sections 6-8,
11-12). In-process by default; over HTTP with --base-url:

    sandbox check finpass --base-url http://127.0.0.1:8080/finpass

Expectations come from the responses themselves and from finpass.md (formats, cross-product consistency), never
from the sandbox's code. Tests marked ``control`` use sandbox-only scenario identifiers or the control API.
"""
from __future__ import annotations

import dataclasses
import re
from unittest import mock

import pytest

from sandbox.core.store import MemoryStore
from sandbox.spec import operations

from .checks import not_a_server_error, provider_error, response_schema_conformance, status_in
from .finpass_app import finpass_app
from .plugin import make_transport

OP = {name: op["id"] for name, op in operations("finpass").items()}
FAMILY = ("multi_bureau_fetch", "corporate_cin_lookup", "corporate_llpin_lookup", "corporate_pan_lookup",
          "corporate_company_autocomplete", "epfo_crif_combined_report", "itr_init", "itr_status", "itr_data")
UNAUTHORIZED = {"status_code": 401, "success": False, "message": "Unauthorized access. Invalid or missing API "
                "credentials.", "message_code": "unauthorized"}
PAN_RE = re.compile(r"^[A-Z]{5}[0-9]{4}[A-Z]$")
CIN_RE = re.compile(r"^[LU][0-9]{5}[A-Z]{2}[0-9]{4}[A-Z]{3}[0-9]{6}$")
LLPIN_RE = re.compile(r"^[A-Z]{3}-[0-9]{4}$")
BUREAUS = ["equifax", "experian", "cibil", "crif"]


def family_app():
    """Finpass with (at least) this family mounted: the whole provider once the lead mounts it for good, until
    then only these operations, so another family's work in progress cannot break these tests."""
    import sandbox.providers as providers
    import sandbox.providers.finpass as finpass

    if any(d.name == "finpass" for d in providers.PROVIDERS):
        return finpass_app({"SEED": 21}, store=MemoryStore())
    decl = dataclasses.replace(finpass.PROVIDER, pages={},
                               operations={k: v for k, v in finpass.PROVIDER.operations.items() if k in FAMILY})
    with mock.patch.object(finpass, "PROVIDER", decl):
        return finpass_app({"SEED": 21}, store=MemoryStore())


@pytest.fixture
def fx(contract_options):
    transport, control = make_transport(contract_options, "finpass", family_app)
    if control:
        control.reset()
        control.clock("freeze")
    yield Finpass(transport, control, contract_options)
    if control:
        control.clear_policy()
        control.clock("reset")


class Finpass:
    def __init__(self, transport, control, opts):
        self.t, self.control, self.opts = transport, control, opts
        self.keys = {"x-api-key": opts["client_id"], "x-api-secret": opts["client_secret"]}

    def call(self, name, body=None, *, headers=None, query=None, alias=None, method=None, data=None):
        r = self.t.call(OP[name], json_body=body, query=query, alias=alias, method=method, data=data,
                        headers=self.keys if headers is None else headers)
        not_a_server_error(r)
        return r

    def ok(self, name, body=None, **kw) -> dict:
        r = self.call(name, body, **kw)
        status_in(r, 200)
        response_schema_conformance(r)
        return r.json

    def fail(self, name, body, status, *, code=None, error_code=None, **kw) -> dict:
        r = self.call(name, body, **kw)
        provider_error(r, status)
        if code is not None:
            assert r.json["message_code"] == code, r.json
            assert r.json["status_code"] == status and r.json["success"] is False and r.json["data"] is None
        if error_code is not None:
            assert r.json["error_code"] == error_code and r.json["success"] is False, r.json
        return r.json

    def bureau(self, mobile="9876543210", pan="ABCPE1234F", name="Ravi Kumar", bureaus=None, **extra) -> dict:
        body = {"pan": pan, "name": name, "mobile_number": mobile, "consent": "Y", "gender": "male",
                "bureaus": BUREAUS if bureaus is None else bureaus, **extra}
        return self.ok("multi_bureau_fetch", body)

    def person_with_credit(self) -> tuple[str, str, dict]:
        """A mobile whose person has a credit history (first bureau answers), with its PAN and report."""
        for i in range(40):
            mobile, pan = f"98{i:08d}", f"ABCP{chr(65 + i % 26)}{1000 + i}K"
            report = self.bureau(mobile, pan)
            if report["status"] == "completed":
                return mobile, pan, report
        pytest.skip("no person with a credit history among 40 mobiles")

    def salaried_person(self) -> tuple[str, dict]:
        for i in range(40):
            mobile = f"97{i:08d}"
            r = self.call("epfo_crif_combined_report", {"mobile_number": mobile})
            if r.status == 200:
                response_schema_conformance(r)
                return mobile, r.json["data"]
            provider_error(r, 404)
        pytest.skip("no salaried person among 40 mobiles")


# --- auth ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("headers", [{}, {"x-api-key": "sandbox-client"}, {"x-api-key": "sandbox-client",
                                                                          "x-api-secret": "wrong"}])
def test_every_operation_answers_the_documented_401(fx, name, headers):
    r = fx.call(name, {"cin": "L22210MH1995PLC084781"}, headers=headers)
    provider_error(r, 401, UNAUTHORIZED)


def test_header_names_are_case_insensitive(fx):
    keys = {"X-API-KEY": fx.opts["client_id"], "X-Api-Secret": fx.opts["client_secret"]}
    r = fx.call("corporate_company_autocomplete", {"company_name": "tea"}, headers=keys)
    status_in(r, 200)


# --- multi-bureau (s.6) --------------------------------------------------------------------------------------------
def test_multi_bureau_reports_every_requested_bureau(fx):
    mobile, pan, report = fx.person_with_credit()
    assert report["status"] == "completed" and report["success"] is True and report["status_code"] == 200
    assert report["pan"] == pan and re.fullmatch(r"mbf_[0-9a-f]{24}", report["doc_id"])
    assert sorted(report["results"]) == sorted(BUREAUS)
    accounts = []
    for bureau, result in report["results"].items():
        data = result["data"]
        assert result["success"] is True and 300 <= data["credit_score"] <= 900
        credit = data["credit_report"][0]
        assert credit["scores"][0]["score"] == str(data["credit_score"])
        assert credit["accounts"], bureau
        accounts.append(credit["accounts"])
        for acc in credit["accounts"]:
            assert re.fullmatch(r"X+[0-9]{4}", acc["accountNumber"])
            assert (acc["emiAmount"] is None) == (acc["accountType"] == "Credit Card")
            assert acc["currentBalance"] <= acc["highCreditAmount"] + 0.001
    # lenders report to every bureau: the same tradelines everywhere
    assert all(a == accounts[0] for a in accounts)


def test_multi_bureau_answers_only_the_bureaus_asked_for(fx):
    mobile, pan, _ = fx.person_with_credit()
    report = fx.bureau(mobile, pan.lower(), bureaus=["cibil", "cibil", "CRIF"])
    assert sorted(report["results"]) == ["cibil", "crif"] and report["pan"] == pan


def test_the_same_person_gets_the_same_tradelines_each_time(fx):
    mobile, pan, first = fx.person_with_credit()
    again = fx.bureau(mobile, pan)
    assert again["doc_id"] != first["doc_id"]
    assert again["results"] == first["results"]


@pytest.mark.control
def test_no_hit_name_fails_every_bureau(fx):
    mobile, pan, _ = fx.person_with_credit()
    report = fx.bureau(mobile, pan, name="No Hit")
    assert report["status"] == "failed"
    assert all(r == {"success": False, "message": "No record found", "data": None}
               for r in report["results"].values())


@pytest.mark.control
def test_partial_hit_gives_partial_or_completed(fx):
    mobile, pan, _ = fx.person_with_credit()
    report = fx.bureau(mobile, pan, name="Partial Hit")
    assert report["status"] == "partial"
    assert {b for b, r in report["results"].items() if r["success"]} == {"cibil", "crif"}
    assert fx.bureau(mobile, pan, name="Partial Hit", bureaus=["cibil", "crif"])["status"] == "completed"
    assert fx.bureau(mobile, pan, name="Partial Hit", bureaus=["experian"])["status"] == "failed"


BASE = {"pan": "ABCPE1234F", "name": "Ravi Kumar", "mobile_number": "9876543210", "consent": "Y", "gender": "male",
        "bureaus": ["cibil"]}


@pytest.mark.parametrize("change,code", [
    ({"consent": "N"}, "consent_required"), ({"consent": "y"}, "consent_required"),
    ({"consent": "YES"}, "consent_required"), ({"consent": None}, "consent_required"),
    ({"bureaus": []}, "invalid_bureaus"), ({"bureaus": ["transunion"]}, "invalid_bureaus"),
    ({"bureaus": [7]}, "invalid_bureaus"),
    ({"pan": "ABCDE12345"}, "invalid_pan"), ({"pan": "ABC"}, "invalid_pan"),
    ({"mobile_number": "12345"}, "invalid_mobile_number"), ({"mobile_number": "5876543210"}, "invalid_mobile_number"),
    ({"gender": "other"}, "invalid_gender"), ({"name": "   "}, "invalid_name"),
])
def test_multi_bureau_bad_input_gets_the_documented_code(fx, change, code):
    fx.fail("multi_bureau_fetch", {**BASE, **change}, 400, code=code)


@pytest.mark.parametrize("body", [None, [], {"pan": "ABCPE1234F"}, {**BASE, "bureaus": "cibil"},
                                  {k: v for k, v in BASE.items() if k != "consent"}, {**BASE, "pan": 12}])
def test_multi_bureau_malformed_bodies_get_400_style_a(fx, body):
    r = fx.call("multi_bureau_fetch", body)
    provider_error(r, 400)
    assert r.json["status_code"] == 400 and "message_code" in r.json


def test_multi_bureau_non_json_body_is_400(fx):
    r = fx.call("multi_bureau_fetch", data=b"{not json", headers={**fx.keys, "Content-Type": "application/json"})
    provider_error(r, 400)


# --- corporate (s.7) -----------------------------------------------------------------------------------------------
def _first(fx, query, entity_type):
    found = fx.ok("corporate_company_autocomplete", {"company_name": query})
    assert found["total_results"] == len(found["data"])
    hits = [d for d in found["data"] if d["entity_type"] == entity_type]
    assert hits, f"no {entity_type} for {query!r}"
    return found, hits


@pytest.mark.parametrize("query", ["limited", "tea", "private"])
def test_a_company_answers_identically_by_cin_pan_and_autocomplete(fx, query):
    _, hits = _first(fx, query, "Company")
    for hit in hits[:6]:
        assert CIN_RE.match(hit["cin"]) and hit["llpin"] is None
        by_cin = fx.ok("corporate_cin_lookup", {"cin": hit["cin"].lower()})
        assert by_cin["message"] == "Company details fetched successfully"
        company = by_cin["data"]
        assert company["cin"] == hit["cin"] and company["company_name"] == hit["entity_name"]
        assert company["status"] == hit["status"] and company["state"] == hit["state"]
        assert company["pan"][3] == "C" and PAN_RE.match(company["pan"])
        assert company["paid_up_capital"] <= company["authorised_capital"]
        # the CIN encodes the listing, incorporation year and (via the RoC) the company's own data
        assert company["cin"][8:12] == company["date_of_incorporation"][:4]
        assert (company["cin"][0] == "L") <= (company["company_type"] == "Public Limited Company")
        entity = fx.ok("corporate_pan_lookup", {"pan": company["pan"]})["data"]
        assert entity == {"pan": company["pan"], "entity_name": company["company_name"], "entity_type": "Company",
                          "status": company["status"], "cin": company["cin"], "llpin": None,
                          "date_of_incorporation": company["date_of_incorporation"],
                          "registered_address": company["registered_address"], "state": company["state"]}


def test_an_llp_answers_identically_by_llpin_pan_and_autocomplete(fx):
    _, hits = _first(fx, "llp", "LLP")
    for hit in hits:
        assert LLPIN_RE.match(hit["llpin"]) and hit["cin"] is None
        llp = fx.ok("corporate_llpin_lookup", {"llpin": hit["llpin"]})["data"]
        assert llp["llp_name"] == hit["entity_name"] and llp["status"] == hit["status"]
        assert llp["state"] == hit["state"] and llp["pan"][3] == "F"
        entity = fx.ok("corporate_pan_lookup", {"pan": llp["pan"]})["data"]
        assert (entity["entity_type"], entity["llpin"], entity["cin"]) == ("LLP", llp["llpin"], None)
        assert (entity["entity_name"], entity["status"], entity["registered_address"]) == (
            llp["llp_name"], llp["status"], llp["registered_address"])


def test_autocomplete_under_three_characters_finds_nothing(fx):
    for query in ("", "ka", " t "):
        found = fx.ok("corporate_company_autocomplete", {"company_name": query})
        assert found["total_results"] == 0 and found["data"] == []


def test_autocomplete_matches_case_insensitively_and_only_matches(fx):
    upper = fx.ok("corporate_company_autocomplete", {"company_name": "TEA"})
    lower = fx.ok("corporate_company_autocomplete", {"company_name": "tea"})
    assert upper == lower and upper["total_results"] > 0
    assert all("tea" in d["entity_name"].lower() for d in upper["data"])


@pytest.mark.parametrize("name,body,message", [
    ("corporate_cin_lookup", {"cin": "L22210MH1995PLC08478"}, "Invalid CIN format"),
    ("corporate_cin_lookup", {"cin": "X22210MH1995PLC084781"}, "Invalid CIN format"),
    ("corporate_cin_lookup", {}, None),
    ("corporate_llpin_lookup", {"llpin": "AAA1234"}, "Invalid LLPIN format"),
    ("corporate_llpin_lookup", {"llpin": "AA-12345"}, "Invalid LLPIN format"),
    ("corporate_pan_lookup", {"pan": "AAACZ999Z"}, "Invalid PAN format"),
    ("corporate_pan_lookup", {"pan": 1234567890}, None),
    ("corporate_company_autocomplete", {}, None),
    ("corporate_company_autocomplete", None, None),
])
def test_corporate_bad_input_is_400_invalid_input(fx, name, body, message):
    error = fx.fail(name, body, 400, error_code="INVALID_INPUT")
    if message:
        assert error["message"].startswith(message)


@pytest.mark.control
@pytest.mark.parametrize("name,body", [
    ("corporate_cin_lookup", {"cin": "U99999MH9999PTC999999"}),
    ("corporate_cin_lookup", {"cin": "L99999KA9999PLC999999"}),
    ("corporate_llpin_lookup", {"llpin": "AAA-9999"}), ("corporate_pan_lookup", {"pan": "AAACZ9999Z"}),
    ("corporate_pan_lookup", {"pan": "AAAFZ9999Z"}),
])
def test_all_nines_identifiers_are_not_found(fx, name, body):
    fx.fail(name, body, 404, error_code="NOT_FOUND")


# --- EPFO + CRIF (s.8) ---------------------------------------------------------------------------------------------
def test_epfo_record_and_crif_tell_the_same_story_as_the_bureau(fx):
    mobile, data = fx.salaried_person()
    epfo = data["epfo"]
    assert re.fullmatch(r"[0-9]{12}", epfo["uan"]) and epfo["mobile"] == mobile
    assert epfo["total_employers"] == len(epfo["employment_history"])
    current = [e for e in epfo["employment_history"] if e["date_of_exit"] is None]
    assert len(current) == 1
    current = current[0]
    assert current["salary_credits"], "the current employer credits a salary"
    assert all(current["employer_name"] in c["narration"] for c in current["salary_credits"])
    assert current["pf_account_number"].startswith(current["establishment_id"])
    assert current["date_of_joining"] <= current["salary_credits"][0]["credit_date"]
    # employment periods never overlap, and nobody works before turning 18
    periods = sorted((e["date_of_joining"], e["date_of_exit"] or "9999") for e in epfo["employment_history"])
    assert all(a[1] <= b[0] for a, b in zip(periods, periods[1:]))
    assert int(periods[0][0][:4]) - int(epfo["date_of_birth"][:4]) >= 18
    # the CRIF block is CRIF's multi-bureau report for the same person
    report = fx.bureau(mobile, name=epfo["name"], bureaus=["crif"])["results"]["crif"]
    crif = data["crif"]
    if crif["status"] == "NO_HIT":
        assert report["success"] is False
    else:
        assert crif["credit_score"] == report["data"]["credit_score"]
        assert crif["accounts"] == report["data"]["credit_report"][0]["accounts"]


@pytest.mark.parametrize("body", [{"mobile_number": "12345"}, {"mobile_number": "+919876543210"}, {},
                                  {"mobile_number": 9876543210}, None])
def test_epfo_bad_mobile_is_400(fx, body):
    fx.fail("epfo_crif_combined_report", body, 400, error_code="INVALID_INPUT")


def test_epfo_alias_paths_answer_the_same(fx):
    mobile, data = fx.salaried_person()
    for alias in (0, 1):
        r = fx.call("epfo_crif_combined_report", {"mobile_number": mobile}, alias=alias)
        status_in(r, 200)
        assert r.json["data"] == data


# --- ITR (s.8) -----------------------------------------------------------------------------------------------------
def _init(fx, pan="ABCPE1234F", password="secret", **kw):
    return fx.ok("itr_init", {"username": pan, "password": password}, **kw)["data"]


def _status(fx, job_id, post=False):
    if post:
        return fx.ok("itr_status", {"job_id": job_id}, alias=0)["data"]
    return fx.ok("itr_status", query={"job_id": job_id})["data"]


@pytest.mark.control
def test_itr_job_walks_to_completed_on_the_sandbox_clock(fx):
    job = _init(fx)
    assert job["status"] == "initiated" and job["pan"] == "ABCPE****F"
    assert re.fullmatch(r"itr_job_[a-z0-9]{12}", job["job_id"])
    fx.fail("itr_data", None, 409, error_code="JOB_NOT_COMPLETED", query={"job_id": job["job_id"]})
    seen = [job["status"]]
    for _ in range(6):
        fx.control.clock("advance", seconds=6)
        state = _status(fx, job["job_id"], post=len(seen) % 2 == 0)
        assert state["pan"] == "ABCPE****F" and state["job_id"] == job["job_id"]
        if state["status"] != seen[-1]:
            seen.append(state["status"])
            if state["status"] != "completed":
                fx.fail("itr_data", {"job_id": job["job_id"]}, 409, error_code="JOB_NOT_COMPLETED", alias=0)
        if state["status"] == "completed":
            break
    assert seen == ["initiated", "processing", "completed"]
    data = fx.ok("itr_data", query={"job_id": job["job_id"]})["data"]
    assert data == fx.ok("itr_data", {"job_id": job["job_id"]}, alias=0)["data"]
    assert data["pan"] == "ABCPE****F" and data["itr_records"]
    years = [r["assessment_year"] for r in data["itr_records"]]
    assert years == sorted(years, reverse=True)
    for r in data["itr_records"]:
        start = int(r["assessment_year"][:4])
        assert r["assessment_year"] == f"{start}-{(start + 1) % 100:02d}"
        assert r["filing_date"][:4] == str(start)
        assert r["net_taxable_income"] == max(0, r["gross_total_income"] - r["total_deductions"])
        assert r["refund_amount"] == max(0, r["tds_amount"] - r["tax_payable"])
        assert r["demand_amount"] == max(0, r["tax_payable"] - r["tds_amount"])


def test_itr_wrong_password_is_invalid_credentials(fx):
    error = fx.fail("itr_init", {"username": "ABCPE1234F", "password": "invalid"}, 422,
                    error_code="INVALID_CREDENTIALS")
    assert "credentials" in error["message"].lower()


@pytest.mark.control
def test_itr_fail_later_ends_failed(fx):
    job = _init(fx, password="fail-later")
    for _ in range(4):
        fx.control.clock("advance", seconds=6)
        state = _status(fx, job["job_id"])
    assert state["status"] == "failed" and state["error_message"]
    error = fx.fail("itr_data", None, 409, error_code="JOB_NOT_COMPLETED", query={"job_id": job["job_id"]})
    assert "failed" in error["message"]


@pytest.mark.parametrize("body", [{"username": "ABCDE1234", "password": "x"},
                                  {"username": "abcde12345", "password": "x"},
                                  {"username": "", "password": "x"}])
def test_itr_malformed_pan_gets_the_documented_message(fx, body):
    error = fx.fail("itr_init", body, 400, error_code="INVALID_INPUT")
    assert error["message"] == "Invalid PAN format. Expected format: ABCDE1234F"


@pytest.mark.parametrize("body", [{"username": "ABCPE1234F"}, {"username": "ABCPE1234F", "password": ""},
                                  {"password": "x"}, None])
def test_itr_missing_fields_are_400(fx, body):
    fx.fail("itr_init", body, 400, error_code="INVALID_INPUT")


@pytest.mark.parametrize("name", ["itr_status", "itr_data"])
def test_itr_unknown_or_missing_job_id(fx, name):
    fx.fail(name, None, 404, error_code="NOT_FOUND", query={"job_id": "itr_job_aaaaaaaaaaaa"})
    fx.fail(name, {"job_id": "../../jobs"}, 404, error_code="NOT_FOUND", alias=0)
    fx.fail(name, None, 400, error_code="INVALID_INPUT")
    fx.fail(name, {}, 400, error_code="INVALID_INPUT", alias=0)
    fx.fail(name, {"job_id": 42}, 400, error_code="INVALID_INPUT", alias=0)


@pytest.mark.control
def test_an_itr_job_is_visible_only_to_its_key_pair(fx):
    job = _init(fx)
    other = fx.control.create_client(client_id="finpass-other-bureau", client_secret="other-secret")
    keys = {"x-api-key": other["client_id"], "x-api-secret": "other-secret"}
    for name in ("itr_status", "itr_data"):
        fx.fail(name, None, 404, error_code="NOT_FOUND", query={"job_id": job["job_id"]}, headers=keys)
    assert _status(fx, job["job_id"])["job_id"] == job["job_id"]
