"""Finpass Account Aggregator and AA-BSA contract tests, by catalogue id (finpass.md s.4, 8-12). In-process by
default; over HTTP with --base-url. Consent pages are skipped with the control API (``/_sandbox/flows/<id>/complete``)
or completed with plain form posts, so these tests are marked ``control`` (sandbox-only)."""
from __future__ import annotations

import time
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sandbox.core.store import MemoryStore
from sandbox.spec import operations

from .checks import not_a_server_error, provider_error, response_schema_conformance, status_in
from .finpass_app import finpass_app
from .plugin import frozen_transport
from .transport import Receiver

OP = {name: op["id"] for name, op in operations("finpass").items()}
HYPO = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MOBILE = "9876543210"


@pytest.fixture
def fx(contract_options):
    with frozen_transport(contract_options, "finpass",
                          lambda: finpass_app({"SEED": 31}, store=MemoryStore())) as (transport, control):
        yield Client(transport, control, contract_options)


class Client:
    def __init__(self, transport, control, opts):
        self.t, self.control, self.opts = transport, control, opts

    def keys(self, key=None, secret=None) -> dict:
        return {"x-api-key": key or self.opts["client_id"], "x-api-secret": secret or self.opts["client_secret"]}

    def call(self, name, body=None, query=None, headers=None, method=None, alias=None):
        result = self.t.call(OP[name], json_body=body, query=query, headers=headers or self.keys(), method=method,
                             alias=alias)
        not_a_server_error(result)
        response_schema_conformance(result)
        return result

    def complete(self, flow_id, outcome="success", **options):
        return self.control._call("POST", f"/flows/{flow_id}/complete", {"outcome": outcome, **options})

    def ready(self, name, body, polls=6):
        for _ in range(polls):
            result = self.call(name, body)
            if result.status != 202:
                return result
        raise AssertionError(f"{name} still 202 after {polls} polls")


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + "?" + parts.query


@pytest.mark.control
def test_aa_happy_path_json_and_pdf(fx):
    init = fx.call("aa_init", {"mobile_number": MOBILE, "consent_type": "loan_underwriting",
                               "pan_number": "ABCPK1234L"})
    status_in(init, 200)
    data = init.json["data"]
    assert data["redirect_url"].split("?")[0].endswith(f"/finpass/aa/consent/{data['client_id']}")
    pending = fx.call("aa_fetch_json_report", {"client_id": data["client_id"]})
    provider_error(pending, 422)
    assert pending.json["message_code"] == "consent_pending"
    assert fx.complete(data["client_id"])["status"] == "SUCCEEDED"
    first = fx.call("aa_fetch_json_report", {"client_id": data["client_id"]})
    status_in(first, 202)
    assert first.json["status_code"] == 202 and first.json["data"]["status"] == "PENDING"
    report = fx.ready("aa_fetch_json_report", {"client_id": data["client_id"]})
    status_in(report, 200)
    for account in report.json["data"]["account_aggregator_json"]:
        txns = account["transaction_data"]["transaction_details"]
        for prev, cur in zip(txns, txns[1:]):
            sign = 1 if cur["type"] == "CREDIT" else -1
            assert Decimal(prev["transactional_balance"]) + sign * Decimal(str(cur["amount"])) \
                == Decimal(cur["transactional_balance"])
        assert account["profile_details"]["pan"] == "ABCPK1234L"
    pdf = fx.call("aa_fetch_pdf_report", {"client_id": data["client_id"]})
    status_in(pdf, 200)
    alias = fx.call("aa_fetch_pdf_report", {"client_id": data["client_id"]}, alias=0)
    status_in(alias, 200)
    link = pdf.json["data"]["reports"][0]["statement_report_link"]
    doc = fx.t.get(_path(link))
    assert doc.status == 200 and doc.content.startswith(b"%PDF-")
    fx.control.clock("advance", seconds=15 * 60)
    assert fx.t.get(_path(link)).status == 403


@pytest.mark.control
def test_aa_error_envelopes(fx):
    bad = fx.call("aa_init", {"mobile_number": "555", "consent_type": "loan_underwriting"})
    provider_error(bad, 400)
    assert bad.json["message_code"] == "invalid_mobile_number" and bad.json["status_code"] == 400
    unauth = fx.call("aa_init", {"mobile_number": MOBILE, "consent_type": "loan_underwriting"},
                     headers={"X-API-KEY": "nobody", "X-API-SECRET": "nothing"})
    provider_error(unauth, 401, {"status_code": 401, "success": False, "message_code": "unauthorized",
                                 "message": "Unauthorized access. Invalid or missing API credentials."})
    for body, status, code in (({"client_id": "x"}, 400, "invalid_client_id"),
                               ({"client_id": "aa_12345678_123456789012345678901234"}, 404, "client_not_found")):
        for name in ("aa_fetch_json_report", "aa_fetch_pdf_report", "aa_refresh_data"):
            result = fx.call(name, body)
            provider_error(result, status)
            assert result.json["message_code"] == code


@pytest.mark.control
@pytest.mark.parametrize("mobile,code", [("9000000001", "consent_rejected"), ("9000000002", "consent_pending"),
                                         ("9000000004", "fetch_error"), ("9000000005", "account_data_not_found"),
                                         ("9000000006", "fetch_expired")])
def test_aa_scenarios(fx, mobile, code):
    cid = fx.call("aa_init", {"mobile_number": mobile, "consent_type": "loan_underwriting"}).json["data"]["client_id"]
    fx.complete(cid)
    result = fx.ready("aa_fetch_json_report", {"client_id": cid})
    provider_error(result, 422)
    assert result.json["message_code"] == code


@pytest.mark.control
def test_aa_refresh_data_and_webhooks(fx):
    receiver = Receiver()
    try:
        init = fx.call("aa_init", {"mobile_number": MOBILE, "consent_type": "loan_monitoring",
                                   "webhook_url": receiver.url + "/aa"})
        cid = init.json["data"]["client_id"]
        fx.complete(cid)
        missing = fx.call("aa_fetch_json_report", {"client_id": cid})
        provider_error(missing, 400)
        assert missing.json["message_code"] == "request_id_required"
        refresh = fx.call("aa_refresh_data", {"client_id": cid})
        status_in(refresh, 200)
        rid = refresh.json["data"]["request_id"]
        old = fx.ready("aa_fetch_json_report", {"client_id": cid, "request_id": rid})
        fx.control.clock("advance", seconds=40 * 86400)
        rid2 = fx.call("aa_refresh_data", {"client_id": cid}, alias=0).json["data"]["request_id"]
        new = fx.ready("aa_fetch_json_report", {"client_id": cid, "request_id": rid2})
        old_end = old.json["data"]["account_aggregator_json"][0]["transaction_data"]["end_date"]
        assert new.json["data"]["account_aggregator_json"][0]["transaction_data"]["end_date"] > old_end
        deliveries = fx.control.flush_webhooks(provider="finpass")
        assert any(d["payload"]["consent_status"] == "ACTIVE" for d in deliveries)
        assert {d["payload"]["request_id"] for d in deliveries if d["payload"]["fi_status"] == "READY"} >= {rid, rid2}
        for _ in range(50):
            if len(receiver.received) >= len(deliveries):
                break
            time.sleep(0.05)
        assert receiver.received
    finally:
        receiver.close()


@pytest.mark.control
def test_aa_bsa_journey(fx):
    init = fx.call("aa_bsa_init", {"mobile_number": MOBILE})
    status_in(init, 200)
    cid = init.json["data"]["client_id"]
    early = fx.call("aa_bsa_statement_result", query={"client_id": cid})
    provider_error(early, 409)
    assert early.json["error_code"] == "ANALYSIS_NOT_READY"
    out = fx.complete(cid)
    assert out["redirect_url"] == f"https://finpass.ai/?client_id={cid}&status=consent_granted"
    statuses = [fx.call("aa_bsa_status", query={"client_id": cid}).json["data"]["status"] for _ in range(3)]
    assert statuses[-1] == "analysis_complete"
    posted = fx.call("aa_bsa_status", {"client_id": cid}, method="POST")
    status_in(posted, 200)
    stmt = fx.call("aa_bsa_statement_result", {"client_id": cid}, method="POST")
    analysis = fx.call("aa_bsa_analysis_json", query={"client_id": cid})
    status_in(stmt, 200)
    status_in(analysis, 200)
    credits = sum(Decimal(str(t["amount"])) for a in stmt.json["data"]["accounts"] for t in a["transactions"]
                  if t["type"] == "CREDIT")
    assert Decimal(str(analysis.json["data"]["summary"]["total_credits"])) == credits
    missing = fx.call("aa_bsa_status", query={"client_id": "bsa_clnt_000000000000"})
    provider_error(missing, 404)
    assert missing.json["error_code"] == "NOT_FOUND"


@pytest.mark.control
@given(body=st.one_of(st.none(), st.dictionaries(st.sampled_from(["mobile_number", "consent_type", "pan", "client_id",
                                                                  "request_id"]),
                                                 st.one_of(st.text(max_size=12), st.integers(), st.none()))))
@HYPO
def test_fuzzed_bodies_never_500(fx, body):
    for name in ("aa_init", "aa_fetch_json_report", "aa_refresh_data", "aa_bsa_init"):
        result = fx.t.call(OP[name], json_body=body, headers=fx.keys()) if body is not None else \
            fx.t.call(OP[name], data=b"{not json", headers={**fx.keys(), "Content-Type": "application/json"})
        not_a_server_error(result)
        assert result.status in (200, 400, 404, 422), result.text
        response_schema_conformance(result)
