"""Open Finance contract tests, by catalogue id. In-process by default; over HTTP with --base-url.

    sandbox check open_finance --base-url http://127.0.0.1:8080/open-finance
    sandbox check open_finance --base-url https://api.open-finance.ai --client-id .. --client-secret .. \\
        --user-id .. --real-provider
"""
from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sandbox import create_app
from sandbox.core.store import MemoryStore

from .checks import not_a_server_error, provider_error, response_schema_conformance, status_in
from .plugin import frozen_transport, make_transport

PREFIX = "/open-finance"
TOKEN, CREATE, GET = ("open_finance.create_token", "open_finance.create_financial_report",
                      "open_finance.get_financial_report")
HYPO = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def of(contract_options):
    """(transport, control, options) for one test: a fresh in-process sandbox, or the --base-url server."""
    with frozen_transport(contract_options, "open_finance",
                          lambda: create_app({"SEED": 11, "SECRET_KEY": "contract-tests"},
                                             store=MemoryStore())) as (transport, control):
        yield transport, control, contract_options


def token(of, user_id: str | None = None, client_id=None, client_secret=None) -> str:
    transport, _, opts = of
    r = transport.call(TOKEN, json_body={"userId": user_id or opts["user_id"],
                                         "clientId": client_id or opts["client_id"],
                                         "clientSecret": client_secret or opts["client_secret"]})
    status_in(r, 200)
    response_schema_conformance(r)
    return r.json["accessToken"]


def bearer(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}


def create_report(of, tok, customer_id="318422557", alias=None):
    transport = of[0]
    return transport.call(CREATE, path_params={"customerId": customer_id}, headers=bearer(tok), alias=alias)


def poll_until_done(of, tok, job_id, alias=None, with_pdf=False):
    """Poll like a real client. In the sandbox the clock is moved instead of sleeping."""
    transport, control, _ = of
    query = {"withPdf": "1"} if with_pdf else None
    for attempt in range(60):
        r = transport.call(GET, path_params={"jobId": job_id}, headers=bearer(tok), alias=alias, query=query)
        status_in(r, 200)
        response_schema_conformance(r)
        if r.json["status"] != "RUNNING":
            return r
        if control:
            control.clock("advance", seconds=1)
        else:
            time.sleep(2)  # real provider only: reports take 5-20 s
    raise AssertionError(f"job {job_id} still RUNNING")


# --- create_token ---------------------------------------------------------------------------------------------
def test_create_token_issues_a_bearer_token(of):
    transport, _, opts = of
    r = transport.call(TOKEN, json_body={"userId": opts["user_id"], "clientId": opts["client_id"],
                                         "clientSecret": opts["client_secret"]})
    status_in(r, 200)
    response_schema_conformance(r)
    assert r.json["tokenType"] == "Bearer"


@pytest.mark.parametrize("missing", ["userId", "clientId", "clientSecret"])
def test_create_token_missing_field_is_a_joi_400(of, missing):
    transport, _, opts = of
    body = {"userId": opts["user_id"], "clientId": opts["client_id"], "clientSecret": opts["client_secret"]}
    del body[missing]
    r = transport.call(TOKEN, json_body=body)
    provider_error(r, 400, {"type": "CLIENT_ERROR", "message": json.dumps([f'"{missing}" is required'])})


def test_create_token_wrong_secret_is_access_denied(of):
    transport, _, opts = of
    r = transport.call(TOKEN, json_body={"userId": opts["user_id"], "clientId": opts["client_id"],
                                         "clientSecret": "definitely-wrong"})
    provider_error(r, 401, {"type": "CLIENT_ERROR",
                            "message": '{"error":"access_denied","error_description":"Unauthorized"}'})


@pytest.mark.parametrize("raw", [b"{not json", b"[1,2", b"\xff\xfe", b'{"userId": "a",}'])
def test_create_token_malformed_json_is_a_400_envelope(of, raw):
    r = of[0].call(TOKEN, data=raw, headers={"Content-Type": "application/json"})
    provider_error(r, 400)


@HYPO
@given(body=st.one_of(
    st.dictionaries(st.sampled_from(["userId", "clientId", "clientSecret", "extra"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
                    max_size=4),
    st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=10), st.none()))
def test_create_token_never_5xx_and_invalid_bodies_get_the_envelope(of, body):
    r = of[0].call(TOKEN, json_body=body) if body is not None else of[0].call(TOKEN, data=b"null",
                                                                             headers={"Content-Type": "application/json"})
    not_a_server_error(r)
    assert r.status in (200, 400, 401), r.curl()
    response_schema_conformance(r)


@HYPO
@given(user_id=st.text(min_size=1, max_size=80).filter(lambda s: s.strip()))
def test_any_user_id_gets_a_token_and_a_report_job(of, user_id):
    tok = token(of, user_id=user_id)
    r = create_report(of, tok, customer_id="318422557")
    status_in(r, 200)
    response_schema_conformance(r)


# --- auth on report routes ----------------------------------------------------------------------------------
UNAUTHORIZED = {"type": "CLIENT_ERROR", "message": "Unauthorized access - Invalid access token"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer garbage.token.x"},
                                     {"Authorization": "Basic c2FuZGJveDpzZWNyZXQ="}])
def test_report_routes_need_a_valid_bearer_token(of, headers):
    transport = of[0]
    provider_error(transport.call(CREATE, path_params={"customerId": "1"}, headers=headers), 401, UNAUTHORIZED)
    provider_error(transport.call(GET, path_params={"jobId": "01HZZYPQTN3CW7RR3PKR55A6JK"}, headers=headers), 401,
                   UNAUTHORIZED)


@pytest.mark.control
def test_token_expires_on_the_sandbox_clock(of):
    transport, control, _ = of
    tok = token(of)
    status_in(create_report(of, tok), 200)
    control.clock("advance", seconds=86400)
    provider_error(create_report(of, tok), 401, UNAUTHORIZED)


@pytest.mark.control
def test_a_client_without_read_connections_gets_403(of):
    transport, control, _ = of
    narrow = control.create_client(client_id="narrow", client_secret="narrow-secret",
                                   scopes={"open_finance": ["read:accounts"]})
    tok = token(of, client_id=narrow["client_id"], client_secret="narrow-secret")
    provider_error(create_report(of, tok), 403, {
        "type": "CLIENT_ERROR",
        "message": "Forbidden - Access token missing the required permissions to preform this action"})


# --- financial report lifecycle -------------------------------------------------------------------------------
@pytest.mark.parametrize("alias", [None, 0], ids=["guide-path", "v2-path"])
def test_three_call_flow_running_then_done_with_pdf(of, alias):
    transport, control, _ = of
    tok = token(of)
    r = create_report(of, tok, alias=alias)
    status_in(r, 200)
    response_schema_conformance(r)
    job_id = r.json["jobId"]
    first = transport.call(GET, path_params={"jobId": job_id}, headers=bearer(tok), alias=alias)
    status_in(first, 200)
    assert first.json == {"status": "RUNNING"}
    done = poll_until_done(of, tok, job_id, alias=alias, with_pdf=True)
    assert done.json["status"] == "DONE"
    report = done.json["financialReport"]
    assert report["customerId"] == "318422557"
    pdf = transport.get(done.json["url"].split("://", 1)[1].split("/", 1)[1].join(["/", ""]))
    status_in(pdf, 200)
    assert pdf.headers["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    without = transport.call(GET, path_params={"jobId": job_id}, headers=bearer(tok), alias=alias)
    assert "url" not in without.json


def test_report_totals_equal_their_parts(of):
    tok = token(of)
    job_id = create_report(of, tok).json["jobId"]
    report = poll_until_done(of, tok, job_id).json["financialReport"]
    tio = report["totalIncomesOutcome"]
    assert round(tio["sumIncomePerMonth"] - tio["sumExpansesPerMonth"], 2) == tio["sumNetIncomePerMonth"]
    loans = report.get("loans", [])
    for category, key in (("MORTGAGE", "totalMortgageAmount"), ("LOANS", "totalLoansAmount")):
        assert round(sum(l["balance"] for l in loans if l["mainCategory"] == category), 2) == report["loansTotal"][key]
    sas = report["savingsAndSecurities"]
    assert round(sum(s["amount"] for s in report.get("savings", [])), 2) == sas["totalSavings"]
    assert round(sum(s["totalValue"] for s in report.get("securities", [])), 2) == sas["totalSecuritiesValue"]
    by_cat: dict = {}
    for row in report.get("creditCardOutcomesByCat", []):
        key = (row["accountNumber"], row["yearMonth"])
        by_cat[key] = round(by_cat.get(key, 0) + row["sumExpanse"], 2)
    for row in report.get("creditCardOutcomes", []):
        assert by_cat.get((row["accountNumber"], row["yearMonth"]), 0) == row["sumExpanse"]


@pytest.mark.parametrize("job_id", ["not-a-ulid", "01HZZYPQTN3CW7RR3PKR55A6JK", "0" * 26, "%F0%9F%92%A5"])
def test_unknown_or_malformed_job_id_is_invalid(of, job_id):
    tok = token(of)
    r = of[0].call(GET, path_params={"jobId": job_id}, headers=bearer(tok))
    provider_error(r, 400, {"message": "Invalid jobId", "code": "INVALID_REQUEST"})


def test_a_job_is_visible_only_to_the_user_whose_token_created_it(of):
    owner, stranger = token(of, user_id="owner@example.com"), token(of, user_id="stranger@example.com")
    job_id = create_report(of, owner).json["jobId"]
    r = of[0].call(GET, path_params={"jobId": job_id}, headers=bearer(stranger))
    provider_error(r, 400, {"message": "Invalid jobId", "code": "INVALID_REQUEST"})
    status_in(of[0].call(GET, path_params={"jobId": job_id}, headers=bearer(owner)), 200)


@pytest.mark.control
def test_tenants_never_see_each_others_jobs(of):
    transport, control, _ = of
    other = control.create_client(client_id="other-org", client_secret="other-secret")
    mine = token(of, user_id="same-user")
    theirs = token(of, user_id="same-user", client_id=other["client_id"], client_secret="other-secret")
    job_id = create_report(of, mine).json["jobId"]
    provider_error(transport.call(GET, path_params={"jobId": job_id}, headers=bearer(theirs)), 400)


@pytest.mark.parametrize("customer_id", ["%20", "   "])
def test_blank_customer_id_is_missing(of, customer_id):
    tok = token(of)
    r = of[0].call(CREATE, path_params={"customerId": "x"}, headers=bearer(tok),
                   raw_path=f"/financial-report/{customer_id.replace(' ', '%20')}")
    provider_error(r, 400, {"message": "Missing customerId", "code": "INVALID_REQUEST"})


# --- sandbox scenarios and test identifiers ----------------------------------------------------------------
@pytest.mark.control
@pytest.mark.parametrize("psu_id", ["050299338", "064837123", "316159011", "316159029", "316159052"])
def test_error_psu_ids_leave_no_active_connection(of, psu_id):
    tok = token(of, user_id=f"user-{psu_id}")
    provider_error(create_report(of, tok, customer_id=psu_id), 400,
                   {"message": "No active connections found", "code": "INVALID_REQUEST"})


@pytest.mark.control
def test_published_psu_id_gives_its_documented_accounts(of):
    tok = token(of, user_id="psu-user")
    job_id = create_report(of, tok, customer_id="043510023").json["jobId"]
    report = poll_until_done(of, tok, job_id).json["financialReport"]
    numbers = {row["accountNumber"] for row in report["checkingAccounts"]}
    assert numbers == {"31-019-29114"}
    assert report["providerId"] == "beinleumi"


@pytest.mark.control
def test_failure_scenario_and_internal_error_scenario(of):
    tok = token(of)
    job_id = create_report(of, tok, customer_id="sandbox-job-fails").json["jobId"]
    r = of[0].call(GET, path_params={"jobId": job_id}, headers=bearer(tok))
    status_in(r, 200)
    response_schema_conformance(r)
    assert r.json["status"] == "FAILED"
    provider_error(create_report(of, tok, customer_id="sandbox-internal-error"), 500,
                   {"message": "Something went wrong", "code": "INTERNAL_ERROR"})


@pytest.mark.control
def test_control_api_can_fail_a_job(of):
    transport, control, _ = of
    tok = token(of)
    job_id = create_report(of, tok).json["jobId"]
    control.job(job_id, "fail", message="bank timeout")
    r = transport.call(GET, path_params={"jobId": job_id}, headers=bearer(tok))
    assert r.json == {"status": "FAILED", "message": "bank timeout"}


# --- bad input never loses state -------------------------------------------------------------------------------
@pytest.mark.control
def test_huge_bodies_and_garbage_get_envelopes_and_lose_nothing(of):
    transport, _, _ = of
    tok = token(of)
    job_id = create_report(of, tok).json["jobId"]
    done = poll_until_done(of, tok, job_id)
    huge = b'{"userId": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    r = transport.call(TOKEN, data=huge, headers={"Content-Type": "application/json"})
    provider_error(r, 413)
    provider_error(transport.call(TOKEN, data="userId=a", headers={"Content-Type": "text/plain"}), 400)
    r = transport.call(GET, path_params={"jobId": job_id}, headers=bearer(tok))
    assert r.json == done.json
    r = transport.call(GET, path_params={"jobId": job_id}, headers=bearer(tok), method="DELETE")
    provider_error(r, 404, {"type": "CLIENT_ERROR", "message": "Route or entity not found"})


# --- determinism and journal ---------------------------------------------------------------------------------------
@pytest.mark.control
def test_same_seed_and_calls_give_byte_identical_responses(of):
    transport, control, _ = of
    if control.tenant is not None:
        pytest.skip("byte-identical replays need a sandbox these checks started: a shared one is never reseeded, "
                    "and a reset tenant gets new credentials (trust: secrets change after a reset)")

    def run():
        control.reset()
        control._call("POST", "/seed", {"seed": 99})
        control.clock("freeze", at="2025-04-23T10:00:00Z")
        tok = token(of)
        created = create_report(of, tok)
        job_id = created.json["jobId"]
        polled = [transport.call(GET, path_params={"jobId": job_id}, headers=bearer(tok), query={"withPdf": "1"}).content
                  for _ in range(2)]
        return [tok.encode(), created.content] + polled

    first, second = run(), run()
    assert first == second
    assert b'"DONE"' in first[-1]


@pytest.mark.control
def test_journal_records_requests_with_secrets_redacted(of):
    transport, control, opts = of
    tok = token(of)
    create_report(of, tok)
    entries = control.journal()["entries"]
    ops = [e["operation"] for e in entries]
    assert CREATE in ops and TOKEN in ops
    raw = json.dumps(entries)
    assert tok not in raw and "sandbox-secret" not in raw
    token_entry = next(e for e in entries if e["operation"] == TOKEN)
    assert token_entry["request"]["body"]["clientSecret"] == "[redacted]"
    assert token_entry["verdict"]["request"] == "ok"


def test_every_response_carries_the_sandbox_version_header(of):
    transport, _, opts = of
    if opts["real"]:
        pytest.skip("sandbox-only header")
    r = transport.call(TOKEN, json_body={})
    assert r.headers.get("X-Sandbox-Version")


# --- the job lifecycle as a state machine ----------------------------------------------------------------------
class ReportJobLifecycle(RuleBasedStateMachine):
    """Any interleaving of creates, polls and clock moves: RUNNING only before DONE, DONE absorbing and stable."""

    def __init__(self):
        super().__init__()
        self.app = create_app({"SEED": 5, "JOB_DELAY": 3, "JOB_POLLS": 3}, store=MemoryStore())
        self.transport, self.control = make_transport({"base_url": None, "real": False}, "open_finance",
                                                      lambda: self.app)
        self.control.clock("freeze", at="2025-04-23T10:00:00Z")
        self.tok = token((self.transport, self.control, {"user_id": "sm", "client_id": "sandbox-client",
                                                         "client_secret": "sandbox-secret"}))
        self.seen: dict[str, list[str]] = {}
        self.reports: dict[str, str] = {}

    @rule()
    def create(self):
        r = create_report((self.transport, self.control, {}), self.tok)
        assert r.status == 200
        self.seen[r.json["jobId"]] = []

    @precondition(lambda self: self.seen)
    @rule(data=st.data())
    def poll(self, data):
        job_id = data.draw(st.sampled_from(sorted(self.seen)))
        r = self.transport.call(GET, path_params={"jobId": job_id}, headers=bearer(self.tok))
        assert r.status == 200
        response_schema_conformance(r)
        self.seen[job_id].append(r.json["status"])
        if r.json["status"] == "DONE":
            body = json.dumps(r.json["financialReport"], sort_keys=True)
            assert self.reports.setdefault(job_id, body) == body  # stable once DONE

    @rule(seconds=st.sampled_from([0.5, 1, 2, 5]))
    def advance(self, seconds):
        self.control.clock("advance", seconds=seconds)

    @invariant()
    def running_only_before_done(self):
        for states in self.seen.values():
            assert all(s in ("RUNNING", "DONE") for s in states)
            if "DONE" in states:
                assert "RUNNING" not in states[states.index("DONE"):]


TestReportJobLifecycle = pytest.mark.control(ReportJobLifecycle.TestCase)
ReportJobLifecycle.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)


@pytest.mark.control
def test_a_user_id_with_a_separator_never_reaches_another_users_data(of):
    """Store keys are built from user ids: ``carol`` must not see the connection of ``carol|x`` (or the like)."""
    for other in ("carol|x", "carol\x1fx", "carol%1Fx", "carol/x"):
        status_in(create_report(of, token(of, user_id=other), customer_id="043510023"), 200)   # ACTIVE data
    carol = token(of, user_id="carol")
    job = create_report(of, carol, customer_id="050299338")   # a REJECTED psuId: carol has no data of her own
    provider_error(job, 400, {"message": "No active connections found", "code": "INVALID_REQUEST"})
