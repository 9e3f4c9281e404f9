"""Fuzz every served operation of every provider THROUGH its auth hooks, with real credentials (schemathesis).

Each provider has a "world" below: it obtains real credentials the way a client does (Open Finance: a Bearer from
``/oauth/token``; finleap: Basic client credentials and a Bearer from a widget flow completed through the control
API; finoOS: a Bearer from the client-credentials form and the mandatory User-IP header; Finpass: the key pair)
and real resource ids (report jobs; the flow's accounts, transactions, access, a sync, a notification; a finoOS
user with the test account, a money transfer, a webhook, an advisor; Finpass AA, statement, ITR and AA-BSA ids). A
good share of the generated cases get those ids as path parameters, query parameters or body fields (and real
credentials in credential bodies), so the fuzzing reaches the handlers instead of the 401 wall. schemathesis's checks stay on: no 5xx, status code
documented, response schema and content type, ``ignored_auth`` (probes every authenticated 2xx without and with
invalid credentials), negative data rejected, and - in the stateful runs - ``use_after_free`` and
``ensure_resource_availability``. Every operation must answer the great majority of its cases with something
other than 401/403, and the ones that can succeed must succeed at least once.

A new provider fails ``test_every_provider_has_a_fuzz_world`` until it adds its world to ``WORLDS``.
"""
from __future__ import annotations

import os

import base64
import collections
import io
import random
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import ComponentInfo
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.transport.serialization import Binary, contains_binary

from sandbox import create_app
from sandbox.core.store import MemoryStore
from sandbox.providers.finpass.statements import person_ledger, statement_pdf

WALL = datetime(2025, 4, 23, 9, 30, tzinfo=timezone.utc)
CLIENT = ("sandbox-client", "sandbox-secret")
CALLBACK = "https://my-app.example.com/callback"
# budget: ~110 operation routes x (POSITIVE + NEGATIVE) cases + 3 stateful runs: about 85 s of CPU, about 50 s on
# 2 cores (-n 2)
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}
REAL_IDS = 0.6            # share of cases whose path ids are real (the rest probe unknown ids: 404/400)
REAL_CREDENTIALS = 0.85   # share of credential bodies (create_token: Open Finance client, finX refresh grant;
                          # authenticate: finoOS client form) made real; other bodies get real ids (a notification's
                          # observe key) at the REAL_IDS share
CREDENTIAL_OPERATIONS = {"create_token", "authenticate"}
MIN_NOT_AUTH_REJECTED = 0.7
# positive_data_acceptance is off: the schemas accept values the providers refuse by rule (a redirect_uri that is a
# URI but not http(s), since after until, reporting_period together with sync_period) and answer 400 for them,
# as the real providers do. Every other schemathesis check stays on.
EXCLUDED_CHECKS = [positive_data_acceptance]


def _app():
    return create_app({"SEED": 11, "JOB_DELAY": 3}, store=MemoryStore(), system_clock=lambda: WALL)


def _basic(client_id: str = CLIENT[0], secret: str = CLIENT[1]) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _ok(resp, *statuses):
    assert resp.status_code in (statuses or (200, 201)), (resp.status_code, resp.get_data(as_text=True)[:400])
    return resp.get_json(silent=True)


# --- worlds: real credentials and real ids per provider ---------------------------------------------------------

class OpenFinanceWorld:
    """A Bearer for one user (report guide step 1), a DONE and a RUNNING report job of that user."""

    provider, prefix = "open_finance", "/open-finance"
    headers: dict = {}   # sent on every call (unless the case negates its headers)

    def __init__(self, app):
        self.http = app.test_client()
        self.user = "fuzz-user@example.com"
        self.token = _ok(self.http.post(f"{self.prefix}/oauth/token", json={
            "userId": self.user, "clientId": CLIENT[0], "clientSecret": CLIENT[1]}))["accessToken"]
        self.customers = ["043510023", "321547416", "1772268"]   # published fake psuIds (open_finance.md s.11)
        self.jobs = [self._job(c) for c in self.customers[:2]]
        for _ in range(2):   # DONE on its 2nd poll (SANDBOX_JOB_POLLS)
            _ok(self.http.get(f"{self.prefix}/financial-report/{self.jobs[0]}", headers=_bearer(self.token)))
        # the report provisioned the user's sandbox connection: its accounts, transactions and v2 jobs
        h = _bearer(self.token)
        self.connections = [c["id"] for c in _ok(self.http.get(f"{self.prefix}/v2/connections", headers=h))["items"]]
        self.accounts = [a["id"] for a in _ok(self.http.get(f"{self.prefix}/v2/data/accounts", headers=h))["items"]][:3]
        self.sks = [t["SK"] for t in _ok(self.http.get(f"{self.prefix}/v2/data/transactions?limit=3",
                                                       headers=h))["items"]]
        # a connection of its own for delete_connection, so deleting never takes the data the other cases read
        self.spare = _ok(self.http.post(f"{self.prefix}/v2/connections", headers=h,
                                        json={"includeFakeProviders": True}))["id"]
        self.v2_jobs = {kind: _ok(self.http.post(f"{self.prefix}/v2/{kind}/{self.customers[0]}", headers=h))["jobId"]
                        for kind in ("decision", "decision-extended", "private-scoring")}

    def _job(self, customer: str) -> str:
        return _ok(self.http.post(f"{self.prefix}/financial-report/{customer}", headers=_bearer(self.token)))["jobId"]

    def auth_config(self) -> dict:
        return {"bearer": {"bearer": self.token}}

    def refresh(self) -> None:
        """Nothing is consumed by the fuzzing: jobs and the token stay valid."""

    def real_params(self, name: str) -> list[dict]:
        if name == "create_financial_report":
            return [{"customerId": c} for c in self.customers]
        if name == "get_financial_report":   # the catalogue names the job id path parameter customerId
            return [{"customerId": j} for j in self.jobs]
        if name in ("create_decision", "create_decision_extended", "create_private_scoring"):
            return [{"customerId": c} for c in self.customers]
        jobs = {"get_decision": "decision", "get_decision_extended": "decision-extended",
                "get_private_scoring": "private-scoring"}
        if name in jobs:   # one path template with the create route: the id is named customerId there too
            return [{"customerId": self.v2_jobs[jobs[name]], "jobId": self.v2_jobs[jobs[name]]}]
        if name == "delete_connection":
            return [{"connectionId": self.spare}]
        if name in ("get_connection", "refresh_connection"):
            return [{"connectionId": c} for c in self.connections]
        if name in ("refresh_user_connections", "get_monthly_report"):
            return [{"userId": self.user}]
        if name in ("get_account", "get_account_balance_history"):
            return [{"accountId": a} for a in self.accounts]
        if name in ("get_transaction", "update_transaction"):
            return [{"SK": sk} for sk in self.sks]
        return []

    def real_body(self, name: str, body):
        if name == "create_token" and isinstance(body, dict):
            return {**body, "clientId": CLIENT[0], "clientSecret": CLIENT[1]}
        return body

    def real_query(self, name: str, query: dict) -> dict:
        return query

    def real_headers(self, name: str) -> dict:
        return {}

    def observe(self, name: str, response) -> None:
        pass

    # operations that must reach their success status at least once in the fuzzing
    reachable = {"create_token", "create_financial_report", "get_financial_report", "list_connections",
                 "get_connection", "list_accounts", "get_account", "list_transactions",
                 "get_transaction_categories", "get_decision", "create_private_scoring", "list_providers",
                 "delete_connection", "get_account_balance_history", "get_decision_extended", "get_extended_securities",
                 "get_private_scoring"}
    # decided not to demand a 2xx from the fuzzing (each is reached by its contract tests), and why
    unreached = {
        **dict.fromkeys(("create_connection", "open_banking_init", "open_banking_finalize"),
                        "needs includeFakeProviders true / a journey state the generated bodies never carry"),
        **dict.fromkeys(("refresh_connection", "refresh_user_connections", "create_decision",
                         "create_decision_extended", "get_monthly_report"),
                        "the fuzzing's own refresh/delete calls leave the world's connection FETCHING or gone"),
        **dict.fromkeys(("get_transaction", "update_transaction"), "SK ids hold '#': generated paths never match"),
        "list_bank_branches": "bankCode is required and generated values are no Israeli bank code",
    }


class FinleapWorld:
    """Basic client credentials; a completed income-report flow (user, access, account, transactions) and its
    tokens; a completed account-verification flow and its token; a notification and a sync of the first user."""

    provider, prefix = "finleap", "/finleap"
    headers: dict = {}

    def __init__(self, app):
        self.http = app.test_client()
        self.income_flow, tokens = self._connect("income-report", {})
        self.token, self.refresh_token = tokens["access_token"], tokens["refresh_token"]
        self.av_flow, av_tokens = self._connect("account-verification",
                                                {"name": "Maria Müller", "readout": ["ACCOUNTS", "TRANSACTIONS"]})
        self.av_token = av_tokens["access_token"]
        me = _bearer(self.token)
        self.accounts = [a["account_id"] for a in _ok(self.http.get(f"{self.prefix}/rest/accounts", headers=me))[
            "accounts"]]
        self.transactions = [t["transaction_id"] for t in _ok(self.http.get(
            f"{self.prefix}/rest/accounts/{self.accounts[0]}/transactions?count=6", headers=me))["transactions"]]
        self.accesses = [a["id"] for a in _ok(self.http.get(f"{self.prefix}/rest/accesses", headers=me))["accesses"]]
        self.syncs = [_ok(self.http.post(f"{self.prefix}/rest/accesses/{self.accesses[0]}/syncs", json={},
                                         headers=me), 201)["id"]]
        self.notifications: list[str] = []
        self.refresh()
        assert self.accounts and self.transactions and self.accesses

    def _connect(self, kind: str, extra: dict) -> tuple[str, dict]:
        """Create a widget link, complete its flow through the control API, exchange the code for tokens."""
        link = _ok(self.http.post(f"{self.prefix}/onetime/{kind}", json={"redirect_uri": CALLBACK, **extra},
                                  headers=_basic()), 201)
        done = _ok(self.http.post(f"/_sandbox/flows/{link['id']}/complete", json={"outcome": "success"}))
        code = parse_qs(urlsplit(done["redirect_url"]).query)["code"][0]
        tokens = _ok(self.http.post(f"{self.prefix}/auth/token", json={
            "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}, headers=_basic()))
        return link["id"], tokens

    def refresh(self) -> None:
        """A fresh notification for every test (the fuzzing of DELETE removes them); no sync left running."""
        self._finish_syncs()
        created = _ok(self.http.post(f"{self.prefix}/rest/notifications", json={
            "observe_key": "/rest/transactions", "notify_uri": "https://hooks.example.com/finx", "state": "s"},
            headers=_bearer(self.token)), 201)
        self.notifications = [created["notification_id"]]

    def auth_config(self) -> dict:
        return {"basic": {"username": CLIENT[0], "password": CLIENT[1]}, "bearer": {"bearer": self.token}}

    def real_params(self, name: str) -> list[dict]:
        accounts = [{"account_id": a} for a in self.accounts]
        return {
            "get_income_report": [{"id": self.income_flow}],
            "get_account_verification_report": [{"id": self.av_flow}],
            "get_account": accounts,
            "get_account_balance": accounts,
            "list_transactions": accounts,
            "get_transaction": [{"account_id": self.accounts[0], "transaction_id": t} for t in self.transactions],
            "get_notification": [{"notification_id": n} for n in self.notifications],
            "update_notification": [{"notification_id": n} for n in self.notifications],
            "delete_notification": [{"notification_id": n} for n in self.notifications],
            "get_access": [{"access_id": a} for a in self.accesses],
            "create_sync": [{"access_id": a} for a in self.accesses],
            "get_sync": [{"access_id": self.accesses[0], "sync_id": s} for s in self.syncs],
        }.get(name, [])

    def real_body(self, name: str, body):
        if name == "create_token" and isinstance(body, dict):
            return {"grant_type": "refresh_token", "refresh_token": self.refresh_token}   # rotates: see observe()
        if name == "create_notification" and isinstance(body, dict):   # an observe key of the user's own data
            return {**body, "observe_key": f"/rest/accounts/{self.accounts[0]}/transactions",
                    "notify_uri": "https://hooks.example.com/finx"}
        return body

    def real_query(self, name: str, query: dict) -> dict:
        return query

    def real_headers(self, name: str) -> dict:
        # an account-verification report is readable only with a token of its own flow (finleap.md s.5)
        return _bearer(self.av_token) if name == "get_account_verification_report" else {}

    def observe(self, name: str, response) -> None:
        if name == "create_token" and response.status_code == 200:
            self.refresh_token = response.json()["refresh_token"]   # every refresh kills the old refresh token
        if name == "create_sync" and response.status_code == 201:
            self.syncs.append(response.json()["id"])
            self._finish_syncs()   # one sync per access at a time (423): end it so the next one can start

    def _finish_syncs(self) -> None:
        for sync_id in self.syncs:
            job = _ok(self.http.get(f"/_sandbox/jobs/{sync_id}"))
            if job["state"] not in ("COMPLETED", "FAILED"):
                _ok(self.http.post(f"/_sandbox/jobs/{sync_id}/complete", json={}))

    reachable = {"create_income_report_link", "create_account_verification_link", "create_token",
                 "get_income_report", "get_account_verification_report", "list_accounts", "get_account",
                 "get_account_balance", "list_transactions", "get_transaction", "list_notifications",
                 "create_notification", "get_notification", "update_notification", "delete_notification",
                 "list_accesses", "get_access", "create_sync", "get_sync", "categorize_transactions",
                 "create_onetime_access_link", "create_onetime_risk_report_link", "create_ongoing_access_link",
                 "create_ongoing_risk_report_link", "get_category_tree"}
    unreached = {
        **dict.fromkeys(("create_onetime_payment_link", "create_ongoing_payment_link"),
                        "a valid IBAN with its checksum and an execution date on the sandbox clock are never generated"),
        "create_ongoing_sync_link": "needs an existing ongoing user_id, which the world does not create",
        **dict.fromkeys(("get_contract", "delete_contract", "get_payment_receipt", "get_risk_report"),
                        "the world has no contract, receipt or risk-report id"),
        **dict.fromkeys(("list_contracts", "list_categories", "list_payment_partners", "list_securities",
                         "get_timeline"),
                        "their account/access alias routes get generated ids; the top-level routes are covered by "
                        "contract tests"),
    }


class FinpassWorld:
    """The client's key pair in x-api-key / x-api-secret (finpass.md: every call). Its ids travel in bodies and
    queries, not in paths: a consented AA journey for each consent type (approved through the control API, data
    fetched), an uploaded statement (statements.py) of the bank statement analyser, an ITR job and a consented
    AA-BSA journey, all completed (jobs are instant); valid lookup bodies (PAN, CIN, LLPIN, mobile, company)."""

    provider, prefix = "finpass", "/finpass"
    headers: dict = {}
    AA, AA_BSA = "/finpass/api/v1/services/account-aggregator", "/finpass/api/v1/aa-bsa-journey"
    MOBILE, PAN = "9876543210", "ABCPE1234F"

    def __init__(self, app):
        self.http = app.test_client()
        _ok(self.http.put("/_sandbox/jobs/policy", json={"kind": "*", "mode": "instant"}))
        keys = {"x-api-key": CLIENT[0], "x-api-secret": CLIENT[1]}
        self.keys = keys
        self.aa = {}
        for consent in ("loan_underwriting", "loan_monitoring"):
            data = _ok(self.http.post(f"{self.AA}/init", json={"mobile_number": self.MOBILE, "consent_type": consent},
                                      headers=keys))["data"]
            _ok(self.http.post(f"/_sandbox/flows/{data['client_id']}/complete", json={"outcome": "success"}))
            self.aa[consent] = data["client_id"]
        # loan monitoring reads by the request id of a refresh (finpass.md s.4)
        self.request_id = _ok(self.http.post(f"{self.AA}/refresh-data", json={
            "client_id": self.aa["loan_monitoring"]}, headers=keys))["data"]["request_id"]
        for consent, extra in (("loan_underwriting", {}), ("loan_monitoring", {"request_id": self.request_id})):
            self._until_ready(f"{self.AA}/fetch-json-report", {"client_id": self.aa[consent], **extra})
        self.pdf, _ = statement_pdf(person_ledger(self.MOBILE, 11, WALL.date()), "hdfc", months=1)
        upload = self.http.post(f"{self.prefix}/api/v1/services/bsa/upload-statement", headers=keys,
                                content_type="multipart/form-data",
                                data={"file": (io.BytesIO(self.pdf), "statement.pdf")})
        self.bsa = _ok(upload)["data"]["client_id"]
        _ok(self.http.get(f"{self.prefix}/api/v1/services/bsa/statement-result", query_string={"client_id": self.bsa},
                          headers=keys))
        self.itr = _ok(self.http.post(f"{self.prefix}/api/v1/itr-analyzer/analyze", json={
            "username": self.PAN, "password": "secret"}, headers=keys))["data"]["job_id"]
        self._until_ready(f"{self.prefix}/api/v1/itr-analyzer/data", {"job_id": self.itr})
        self.aa_bsa = _ok(self.http.post(f"{self.AA_BSA}/init", json={"mobile_number": self.MOBILE},
                                         headers=keys))["data"]["client_id"]
        _ok(self.http.post(f"/_sandbox/flows/{self.aa_bsa}/complete", json={"outcome": "success"}))
        self._until_ready(f"{self.AA_BSA}/analysis-json", {"client_id": self.aa_bsa})

    def _until_ready(self, path: str, body: dict, polls: int = 8) -> dict:
        for _ in range(polls):
            r = self.http.post(path, json=body, headers=self.keys)
            if r.status_code == 200:
                return r.get_json()
        raise AssertionError((path, r.status_code, r.get_data(as_text=True)[:400]))

    def auth_config(self) -> dict:
        return {"keys": {"api_key": CLIENT[0]}, "keys_secret": {"api_key": CLIENT[1]}}

    def refresh(self) -> None:
        """Nothing is consumed by the fuzzing: journeys, uploads and jobs stay readable."""

    def real_params(self, name: str) -> list[dict]:
        return []

    def _ids(self, name: str) -> dict:
        aa = self.aa["loan_underwriting"]
        return {
            "bsa_statement_result": {"client_id": self.bsa},
            "aa_fetch_json_report": {"client_id": aa},
            "aa_fetch_pdf_report": {"client_id": aa},
            "aa_refresh_data": {"client_id": self.aa["loan_monitoring"]},
            "itr_status": {"job_id": self.itr},
            "itr_data": {"job_id": self.itr},
            "aa_bsa_status": {"client_id": self.aa_bsa},
            "aa_bsa_statement_result": {"client_id": self.aa_bsa},
            "aa_bsa_analysis_json": {"client_id": self.aa_bsa},
        }.get(name, {})

    def real_body(self, name: str, body):
        if not isinstance(body, dict):
            return body
        if name == "bsa_upload_statement":
            return {**body, "file": Binary(self.pdf)}   # a multipart file part (see _realise)
        valid = {
            "aa_init": {"mobile_number": self.MOBILE, "consent_type": "loan_underwriting"},
            "multi_bureau_fetch": {"pan": self.PAN, "name": "Ravi Kumar", "mobile_number": self.MOBILE,
                                   "consent": "Y", "gender": "male", "bureaus": ["cibil", "experian"]},
            "corporate_cin_lookup": {"cin": "L72200KA1996PLC220687"},
            "corporate_llpin_lookup": {"llpin": "AAE-9012"},
            "corporate_pan_lookup": {"pan": "AACCK4844Z"},
            "corporate_company_autocomplete": {"company_name": "kaveri"},
            "epfo_crif_combined_report": {"mobile_number": self.MOBILE},
            "itr_init": {"username": self.PAN, "password": "secret"},
            "aa_bsa_init": {"mobile_number": self.MOBILE},
        }.get(name)
        if valid is not None:
            return valid
        ids = self._ids(name)
        if name in ("aa_fetch_json_report", "aa_fetch_pdf_report"):
            return ids   # a generated request_id names no FI request of the consent (422 no_fi_request_found)
        return {**body, **ids} if ids else body

    def real_query(self, name: str, query: dict) -> dict:
        ids = self._ids(name)
        return {**query, **ids} if ids and name not in (
            "aa_fetch_json_report", "aa_fetch_pdf_report", "aa_refresh_data") else query

    def real_headers(self, name: str) -> dict:
        return {}

    def observe(self, name: str, response) -> None:
        pass

    reachable = {"bsa_upload_statement", "bsa_statement_result", "aa_init", "aa_fetch_json_report",
                 "aa_fetch_pdf_report", "aa_refresh_data", "multi_bureau_fetch", "corporate_cin_lookup",
                 "corporate_llpin_lookup", "corporate_pan_lookup", "corporate_company_autocomplete",
                 "epfo_crif_combined_report", "itr_init", "itr_status", "itr_data", "aa_bsa_init", "aa_bsa_status",
                 "aa_bsa_statement_result", "aa_bsa_analysis_json"}


class FinoWorld:
    """A client-credentials Bearer (form POST /auth) and the mandatory User-IP on every call; fresh for every test
    (the fuzzing deletes them): a person user (analysis suspended) with the fino test account (bank login,
    account, transactions), a manually uploaded account, a money transfer under the SCA exemption, a webhook, an
    advisor. Analysis runs are instant, so correlation and trigger-analysis answer 200 too."""

    provider, prefix = "fino", "/fino/api"
    headers = {"User-IP": "203.0.113.7"}
    MANUAL = "A38253.f837c3ab353"
    CREDITOR = {"iban": "DE83701999010000002000", "name": "Andreas Schett"}

    def __init__(self, app):
        self.http = app.test_client()
        self.token = _ok(self.http.post(f"{self.prefix}/auth", data={
            "client_id": CLIENT[0], "client_secret": CLIENT[1], "grant_type": "client_credentials"}))["access_token"]
        _ok(self.http.put("/_sandbox/jobs/policy", json={"kind": "fino.analysis", "mode": "instant"}))
        self.serial = 0
        self.refresh()

    def _call(self, method: str, path: str, body=None, *statuses):
        r = self.http.open(f"{self.prefix}{path}", method=method, json=body,
                           headers={**_bearer(self.token), **self.headers})
        return _ok(r, *statuses)

    def refresh(self) -> None:
        self.serial += 1
        self.custom = f"fuzz-{self.serial}"
        self.user = self._call("POST", "/users", {"type": "person", "customUserID": self.custom,
                                                  "automaticAnalysis": "suspended"}, 201)["user"]["userID"]
        login = self._call("POST", f"/users/{self.user}/banking/test-account", {})
        self.login, self.account = login["bankLoginId"], login["data"][0]["accountId"]
        self._call("POST", f"/users/{self.user}/banking/accounts", {"accounts": [self._manual_account()]}, 200, 201)
        self.accounts = [self.account, self.MANUAL]
        self.transfer = self._call("POST", f"/users/{self.user}/banking/bank-logins/{self.login}/money-transfers",
                                   self._transfer_body())["paymentId"]
        self._call("POST", f"/users/{self.user}/trigger-analysis")   # instant: the cockpit exists, customUserID
        self.webhook = self._call("POST", "/webhooks", {"url": "https://receiver.example/x", "events": ["banking"]},
                                  201)["id"]
        self.advisor = self._call("POST", "/advisors", {"mail": "a@b.example", "name": "A"}, 201)["id"]

    def _manual_account(self) -> dict:
        return {"accountId": self.MANUAL, "accountNumber": "83767594", "balance": 2004.41, "bankCode": "10020000",
                "currency": "EUR", "iban": "DE64100200007791587578", "name": "Girokonto", "type": "GIRO",
                "transactions": [{"transactionId": "accId1_txId1", "amount": -12.5, "bookingDate": 1705928941,
                                  "valueDate": 1705928941, "currency": "EUR", "purpose": "Miete"}]}

    def _transfer_body(self) -> dict:
        return {"accountId": self.account, "moneyTransferInfos": [
            {"amount": -12, "creditor": self.CREDITOR, "purpose": "Rechnung 4711"}]}

    def auth_config(self) -> dict:
        return {"bearer": {"bearer": self.token}}

    def real_params(self, name: str) -> list[dict]:
        user = {"user-id": self.user}
        if name in ("get_user_by_custom_user_id",):
            return [{"custom-user-id": self.custom}]
        if name in ("get_webhook", "update_webhook", "delete_webhook"):
            return [{"webhook-id": self.webhook}]
        if name in ("get_advisor", "update_advisor", "delete_advisor"):
            return [{"advisor-id": self.advisor}]
        if name in ("create_money_transfer", "get_money_transfer", "delete_bank_login"):
            return [{**user, "banklogin-id": self.login, "money-transfer-id": self.transfer}]
        if name in ("update_transactions", "add_transactions", "delete_transactions"):
            return [{**user, "account-id": self.MANUAL}]
        if name in ("delete_account", "get_account_summary_pdf"):
            return [{**user, "account-id": a} for a in self.accounts]
        return [user]

    def real_body(self, name: str, body):
        if not isinstance(body, dict):
            return body
        if name == "authenticate":
            return {**body, "client_id": CLIENT[0], "client_secret": CLIENT[1], "grant_type": "client_credentials"}
        if name == "create_money_transfer":
            return self._transfer_body()
        if name == "delete_users":
            return {"userIDs": [self.user]}
        if name in ("delete_accounts",):
            return {"ids": [self.MANUAL]}
        if name == "delete_transactions":
            return {"ids": ["accId1_txId1"]}
        if name == "update_transactions":
            return {"transactions": [{"transactionId": "accId1_txId1", "amount": -13.5, "purpose": "Miete Mai"}]}
        if name == "add_transactions":
            return {"transactions": [{"transactionId": "accId1_txId2", "amount": 250, "bookingDate": 1705928941,
                                      "valueDate": 1705928941, "currency": "EUR", "purpose": "Gehalt"}]}
        if name == "upload_user_banking_data":   # a new upload user each time: start and finish in one call
            self.serial += 1
            return {"customUserID": f"fuzz-upload-{self.serial}", "status": "start,finish", "type": "person",
                    "accounts": [self._manual_account()]}
        if name == "set_accounts":
            return {"accounts": [self._manual_account()]}
        if name == "update_accounts":
            return {"accounts": [{"accountId": self.MANUAL, "name": "Haushaltskonto", "balance": 1990.5}]}
        if name in ("connect_test_account", "create_management_session"):
            return {}
        if name == "trigger_sync":
            return {"bankLoginId": self.login}
        if name == "create_advisor":
            return {**body, "mail": "a@b.example", "name": "A"}
        return body

    def real_query(self, name: str, query: dict) -> dict:
        return query

    def real_headers(self, name: str) -> dict:
        return {}

    def observe(self, name: str, response) -> None:
        pass

    reachable = {
        "authenticate", "list_users", "create_user", "delete_users", "get_user", "update_user", "delete_user",
        "get_user_by_custom_user_id", "add_user_scopes", "trigger_analysis", "upload_user_banking_data",
        "get_accounts", "set_accounts", "update_accounts", "delete_accounts", "update_transactions",
        "delete_account", "add_transactions", "delete_transactions", "get_transactions", "get_account_summary_pdf",
        "create_connect_session", "create_management_session", "connect_test_account", "get_banking_correlation",
        "get_sync_status", "trigger_sync", "delete_bank_login", "disconnect_banking", "create_money_transfer",
        "get_money_transfer", "list_webhooks", "create_webhook", "get_webhook", "update_webhook", "delete_webhook",
        "list_advisors", "create_advisor", "get_advisor", "update_advisor", "delete_advisor", "get_platform_status",
        # part 2: the world's person user has a completed analysis run (connect_test_account)
        "delete_contracts", "get_account_detection_correlation", "get_account_history",
        "get_account_history_correlation", "get_accounts_overview", "get_categorization",
        "get_categorization_correlation", "get_categorization_patterns", "get_categorization_tree",
        "get_categorized_transactions", "get_cockpit_correlation", "get_cockpit_link", "get_cockpit_recommendations",
        "get_contracts_correlation", "get_person_adult_check", "get_person_cockpit", "get_person_household_budget",
        "get_person_income", "get_person_living_situation", "get_person_risk", "get_person_spending",
        "get_tag_descriptions", "list_cockpits", "list_contracts", "search_companies", "search_company_logos",
        "set_categorization_patterns"}
    unreached = {
        **dict.fromkeys(("get_company_cockpit", "get_company_cash", "get_company_credit",
                         "get_company_foreign_payments", "get_company_insurance", "get_company_internal_bookings",
                         "get_company_investment", "get_company_liquidity", "get_company_risk"),
                        "the world's user is a person: company results are 404 for it (fino.md s.10)"),
        **dict.fromkeys(("delete_contract", "get_transaction_tags"), "the world has no contract or transaction id"),
    }


WORLDS = {"open_finance": OpenFinanceWorld, "finleap": FinleapWorld, "finpass": FinpassWorld, "fino": FinoWorld}


# --- what is served ----------------------------------------------------------------------------------------------

def _served_labels() -> list[tuple[str, str, str]]:
    """(provider, operation short name, schemathesis label) for every path+method of every provider's OpenAPI."""
    app = _app()
    http = app.test_client()
    out = []
    for name, mounted in sorted(app.extensions["sandbox"].providers.items()):
        doc = http.get(f"{mounted.prefix}/openapi.json").get_json()
        for path, item in doc["paths"].items():
            for method, op in item.items():
                short = op["operationId"].split(".", 1)[1].split("__")[0]
                out.append((name, short, f"{method.upper()} {path}"))
    return out


SERVED = _served_labels()


def test_every_provider_has_a_fuzz_world():
    """A new provider must say how to obtain real credentials and ids before its operations can be fuzzed."""
    assert {p for p, _, _ in SERVED} <= set(WORLDS), "add a world for the new provider to WORLDS"
    for provider, short, _ in SERVED:
        world = WORLDS[provider]
        unreached = getattr(world, "unreached", {})
        assert (short in world.reachable) != (short in unreached) or world.reachable == set(), \
            f"{provider}.{short}: decide whether it must reach 2xx (add it to {world.__name__}.reachable, or to " \
            f"its unreached with the reason)"


class Fuzzed:
    """One provider's app, world and schemathesis schema (loaded with the world's credentials)."""

    def __init__(self, provider: str):
        self.app = _app()
        self.world = WORLDS[provider](self.app)
        self.config = SchemathesisConfig.from_dict({
            "auth": {"openapi": self.world.auth_config()},
            # credentials are never generated (not even removed by negative cases): ignored_auth probes them
            "generation": {"with-security-parameters": False, "database": "none"},
        })
        self.schema = schemathesis.openapi.from_wsgi(f"{self.world.prefix}/openapi.json", self.app,
                                                   config=self.config)


@pytest.fixture(scope="module")
def fuzzed():
    cache: dict[str, Fuzzed] = {}

    def get(provider: str) -> Fuzzed:
        if provider not in cache:
            cache[provider] = Fuzzed(provider)
        return cache[provider]
    return get


def _is_negative_at(case, location) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_negative and case.meta.is_negative_at(location)


def _realise(world, short: str, case, rng: random.Random) -> bool:
    """Give ``case`` real path ids (and real credentials in credential bodies) unless that part is the negated
    one; True when something was replaced."""
    changed = False
    options = world.real_params(short)
    names = set(case.path_parameters or {})
    fitting = [{k: o[k] for k in names} for o in options if names and names <= set(o)]
    if fitting and rng.random() < REAL_IDS and not _is_negative_at(case, ParameterLocation.PATH):
        case.path_parameters = {**case.path_parameters, **rng.choice(fitting)}
        headers = world.real_headers(short)
        if headers:
            case.headers = {**(case.headers or {}), **headers}
        changed = True
    if world.headers and not _is_negative_at(case, ParameterLocation.HEADER):
        case.headers = {**(case.headers or {}), **world.headers}   # e.g. finoOS's mandatory User-IP
    if rng.random() < REAL_IDS and not _is_negative_at(case, ParameterLocation.QUERY):
        query = world.real_query(short, dict(case.query or {}))
        if query != (case.query or {}):
            case.query = query
            changed = True
    share = REAL_CREDENTIALS if short in CREDENTIAL_OPERATIONS else REAL_IDS
    if case.body is not None and rng.random() < share and not _is_negative_at(case, ParameterLocation.BODY):
        body = world.real_body(short, case.body)
        if body is not case.body:
            case.body = body
            changed = True
            if contains_binary(body) and case.meta is not None:
                # schemathesis cannot validate binary data, so it judges every edited body holding a file part
                # negative; the world's file (a real statement) is valid by construction: the case stays positive
                case.meta.components[ParameterLocation.BODY] = ComponentInfo(mode=GenerationMode.POSITIVE)
                if all(info.mode.is_positive for info in case.meta.components.values()):
                    case.meta.generation.mode = GenerationMode.POSITIVE
    return changed


# --- bugs the fuzzing found: each has a deterministic xfail(strict) test below; the fuzzing tolerates exactly its
# signature meanwhile. When the fix lands the xfail test XPASSes and fails: drop its xfail mark and its entry here.

def _fino_bad_include_transactions(case, response) -> bool:
    return response.status_code == 400 and "includeTransactions" in response.text


def _fino_delete_bank_account(case, response) -> bool:
    return response.status_code == 400 and "was fetched from the bank and cannot be deleted" in response.text


def _fino_pdf_media_type(case, response) -> bool:
    media = {k.lower(): v for k, v in response.headers.items()}.get("content-type") or [""]
    return response.status_code in (200, 206) and \
        (media if isinstance(media, str) else media[0]).startswith("application/pdf")


def _fino_body_too_large(case, response) -> bool:
    return response.status_code == 413 and "payloadTooLarge" in response.text


def _fino_account_number_conflict(case, response) -> bool:
    return response.status_code == 409 and "exists with another accountNumber" in response.text


def _fino_bad_expires_in(case, response) -> bool:
    return response.status_code == 400 and "expires-in" in response.text


def _either(*signatures):
    return lambda case, response: any(known(case, response) for known in signatures)


FINO_PDF = "/users/{user-id}/banking/accounts/{account-id}"
# every finoOS operation with a JSON body (all POST and PATCH, the bulk DELETEs)
FINO_BODIES = {label for provider, _, label in SERVED if provider == "fino" and (
    label.split()[0] in ("POST", "PATCH") or label in (
        "DELETE /users", "DELETE /users/{user-id}/banking/accounts", f"DELETE {FINO_PDF}/transactions"))}
KNOWN_BUGS = {
    **{("fino", label): _fino_body_too_large for label in FINO_BODIES},
    ("fino", "GET /users/{user-id}/banking/accounts"): _fino_bad_include_transactions,
    ("fino", f"DELETE {FINO_PDF}"): _fino_delete_bank_account,
    ("fino", "POST /users/{user-id}/banking/accounts"): _either(_fino_account_number_conflict, _fino_body_too_large),
    **{("fino", f"GET {FINO_PDF}/{tail}"): _fino_pdf_media_type for tail in ("summary", "summary/pdf", "pdf")},
    **{("fino", f"{verb} /users/{{user-id}}/cockpit/link"): _fino_bad_expires_in for verb in ("GET", "POST")},
}


@pytest.fixture
def finx():
    app = _app()
    return FinleapWorld(app)


@pytest.mark.parametrize("query", ["since=0000-01", "until=0000-12"])
def test_legacy_income_report_with_month_zero_of_year_zero_is_a_400(finx, query):
    r = finx.http.get(f"/finleap/rest/income-report?{query}", headers=_bearer(finx.token))
    assert r.status_code == 400 and r.json["error"]["code"] == 1000, (r.status_code, r.get_data(as_text=True))


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_notification_observing_an_unknown_account_is_a_400(finx, method):
    path = "/finleap/rest/notifications" + (f"/{finx.notifications[0]}" if method == "PUT" else "")
    r = finx.http.open(path, method=method, headers=_bearer(finx.token), json={
        "observe_key": "/rest/accounts/A0000000.0/transactions", "notify_uri": "https://hooks.example.com/n"})
    assert r.status_code == 400 and r.json["error"]["code"] == 1000, (r.status_code, r.get_data(as_text=True))


def test_a_notification_observing_an_own_account_is_created(finx):
    """The other side of the boundary above: the flow's own account is a valid observe key."""
    r = finx.http.post("/finleap/rest/notifications", headers=_bearer(finx.token), json={
        "observe_key": f"/rest/accounts/{finx.accounts[0]}/transactions", "notify_uri": "https://hooks.example.com/n"})
    assert r.status_code == 201, r.get_data(as_text=True)


@pytest.fixture
def fino():
    return FinoWorld(_app())


def _fino_documented(world, method: str, path: str) -> set[int]:
    doc = world.http.get(f"{world.prefix}/openapi.json").get_json()
    return {int(s) for s in doc["paths"][path][method.lower()]["responses"]}


@pytest.mark.xfail(strict=True, reason="BUG: GET /users/{user-id}/banking/accounts?includeTransactions=maybe answers "
                   "400 invalidInput (schemas/fino/get_accounts.query.json enum) but fino.get_accounts documents no "
                   "400 (200, 401, 403, 404, 500); the catalogue (sandbox/spec + shared/providers copy) must list 400")
def test_fino_get_accounts_documents_its_400(fino):
    r = fino.http.get(f"/fino/api/users/{fino.user}/banking/accounts?includeTransactions=maybe",
                      headers={**_bearer(fino.token), **fino.headers})
    assert r.status_code == 400
    assert 400 in _fino_documented(fino, "GET", "/users/{user-id}/banking/accounts")


@pytest.mark.xfail(strict=True, reason="BUG: DELETE /users/{user-id}/banking/accounts/{bank-fetched account} answers "
                   "400 invalidInput ('fetched from the bank') but fino.delete_account documents no 400 (204, 401, "
                   "403, 404, 500); the catalogue (sandbox/spec + shared/providers copy) must list 400")
def test_fino_delete_account_documents_its_400(fino):
    r = fino.http.delete(f"/fino/api/users/{fino.user}/banking/accounts/{fino.account}",
                         headers={**_bearer(fino.token), **fino.headers})
    assert r.status_code == 400
    assert 400 in _fino_documented(fino, "DELETE", FINO_PDF)


@pytest.mark.xfail(strict=True, reason="BUG: the account summary answers Content-Type application/pdf (fino.md s.9) "
                   "but the OpenAPI documents application/octet-stream for every Op(response='binary') "
                   "(core/openapi.py); binary responses must document their real media type")
@pytest.mark.parametrize("tail", ["summary", "summary/pdf", "pdf"])
def test_fino_account_summary_documents_application_pdf(fino, tail):
    r = fino.http.get(f"/fino/api/users/{fino.user}/banking/accounts/{fino.account}/{tail}",
                      headers={**_bearer(fino.token), **fino.headers})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/pdf")
    doc = fino.http.get("/fino/api/openapi.json").get_json()
    assert "application/pdf" in doc["paths"][f"{FINO_PDF}/{tail}"]["get"]["responses"]["200"]["content"]


@pytest.mark.xfail(strict=True, reason="BUG: POST /users/{user-id}/banking/accounts with an existing accountId and "
                   "another accountNumber answers 409 conflict (contract_tests/test_fino_banking.py wants it) but "
                   "fino.set_accounts documents no 409 (200, 201, 400, 401, 403, 404, 500); the catalogue "
                   "(sandbox/spec + shared/providers copy) must list 409")
def test_fino_set_accounts_documents_its_409(fino):
    r = fino.http.post(f"/fino/api/users/{fino.user}/banking/accounts", headers={**_bearer(fino.token), **fino.headers},
                       json={"accounts": [{**fino._manual_account(), "accountNumber": "999"}]})
    assert r.status_code == 409 and r.json["type"] == "conflict"
    assert 409 in _fino_documented(fino, "POST", "/users/{user-id}/banking/accounts")


@pytest.mark.xfail(strict=True, reason="BUG: GET /users/{user-id}/cockpit/link?expires-in=soon answers 400 "
                   "invalidInput (schemas/fino/get_cockpit_link.query.json: seconds, 1 s to 365 days) but "
                   "fino.get_cockpit_link documents no 400 (200, 401, 403, 404, 500); the catalogue must list 400")
def test_fino_cockpit_link_documents_its_400(fino):
    r = fino.http.get(f"/fino/api/users/{fino.user}/cockpit/link?expires-in=soon",
                      headers={**_bearer(fino.token), **fino.headers})
    assert r.status_code == 400 and "expires-in" in r.get_data(as_text=True)
    assert 400 in _fino_documented(fino, "GET", "/users/{user-id}/cockpit/link")


@pytest.mark.xfail(strict=True, reason="BUG: a schema-valid finoOS body over MAX_CONTENT_LENGTH (1 MB; the schemas "
                   "allow 100 accounts x 5000 transactions) answers 413 payloadTooLarge, which no fino operation "
                   "documents (upload: 200, 202, 400, 401, 403, 404, 409, 500); the catalogue must list 413 for body "
                   "operations (or the schemas' sandbox bounds must fit under the limit)")
def test_fino_oversized_upload_documents_its_413(fino):
    tx = {"amount": -1.5, "bookingDate": 1705928941, "valueDate": 1705928941, "currency": "EUR", "purpose": "x" * 200}
    body = {"customUserID": "big", "status": "start,finish", "type": "person", "accounts": [{
        **fino._manual_account(), "transactions": [{**tx, "transactionId": f"t{n}"} for n in range(5000)]}]}
    r = fino.http.post("/fino/api/users/upload", json=body, headers={**_bearer(fino.token), **fino.headers})
    assert r.status_code == 413
    assert 413 in _fino_documented(fino, "POST", "/users/upload")


@pytest.mark.parametrize("provider,short,label", SERVED, ids=[f"{p}:{l}" for p, _, l in SERVED])
def test_fuzz_operation_with_real_credentials(fuzzed, provider, short, label):
    """schemathesis, positive and negative cases, through the auth hooks; most answers are not 401/403."""
    if provider not in WORLDS:
        pytest.fail(f"{provider} is served but has no fuzz world: add one to WORLDS in "
                    f"tests/test_fuzz_authenticated.py (how to get its real credentials and ids)")
    f = fuzzed(provider)
    f.world.refresh()
    operation = f.schema.find_operation_by_label(label)
    statuses: collections.Counter = collections.Counter()
    for mode, budget in EXAMPLES.items():

        # a fixed seed: the same examples every run, so the share of non-401 answers cannot flake in CI
        @hypothesis.seed(20261129)
        @settings(max_examples=budget, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy(generation_mode=mode), seed=st.integers(0, 2**32 - 1))
        def run(case, seed):
            _realise(f.world, short, case, random.Random(seed))
            response = case.call()
            statuses[response.status_code] += 1
            f.world.observe(short, response)
            known = KNOWN_BUGS.get((provider, label))
            if known and known(case, response):
                return   # see the xfail test named in KNOWN_BUGS' comment
            case.validate_response(response, excluded_checks=EXCLUDED_CHECKS)

        try:
            run()
        except Unsatisfiable:
            # nothing of this operation can be made invalid (e.g. one free-form string path id, no body)
            assert mode is GenerationMode.NEGATIVE, label
    total = sum(statuses.values())
    rejected = statuses[401] + statuses[403]
    assert total and (total - rejected) / total >= MIN_NOT_AUTH_REJECTED, (label, dict(statuses))
    if short in f.world.reachable or os.environ.get("SANDBOX_FUZZ_REACH_ALL"):   # (the latter: to find new ones)
        assert any(200 <= s < 300 for s in statuses), f"{label} never succeeded: {dict(statuses)}"


# --- stateful: use_after_free and ensure_resource_availability need call sequences -------------------------------

# OpenAPI links the test adds to the served documents (the catalogue has none), per resource life cycle: what an
# id in a response feeds; each group runs as its own state machine over its linked operations only.
LINKS = {
    ("open_finance", "report jobs"): [
        ("POST /financial-report/{customerId}", "200", "GET /financial-report/{customerId}",
         {"customerId": "$response.body#/jobId"}),
        ("POST /v2/financial-report/{customerId}", "200", "GET /v2/financial-report/{customerId}",
         {"customerId": "$response.body#/jobId"}),
    ],
    ("finleap", "notifications"): [
        *[("POST /rest/notifications", "201", f"{verb} /rest/notifications/{{notification_id}}",
           {"notification_id": "$response.body#/notification_id"}) for verb in ("GET", "PUT", "DELETE")],
        ("DELETE /rest/notifications/{notification_id}", "204", "GET /rest/notifications/{notification_id}",
         {"notification_id": "$request.path.notification_id"}),
    ],
    ("finleap", "syncs"): [
        ("POST /rest/accesses/{access_id}/syncs", "201", "GET /rest/accesses/{access_id}/syncs/{sync_id}",
         {"access_id": "$request.path.access_id", "sync_id": "$response.body#/id"}),
    ],
}
# every group must reach each of these at least once with real data
MUST_SUCCEED = {
    ("open_finance", "report jobs"): {"POST /financial-report/{customerId}", "GET /financial-report/{customerId}"},
    ("finleap", "notifications"): {"POST /rest/notifications", "GET /rest/notifications/{notification_id}",
                                   "DELETE /rest/notifications/{notification_id}"},
    ("finleap", "syncs"): {"POST /rest/accesses/{access_id}/syncs", "GET /rest/accesses/{access_id}/syncs/{sync_id}"},
}
STATEFUL = settings(max_examples=15, stateful_step_count=6, deadline=None, suppress_health_check=list(HealthCheck),
                    database=None)


def _linked_schema(f: Fuzzed, links: list):
    doc = f.app.test_client().get(f"{f.world.prefix}/openapi.json").get_json()
    by_label = {f"{m.upper()} {p}": op for p, item in doc["paths"].items() for m, op in item.items()}
    for source, status, target, parameters in links:
        target_id = by_label[target]["operationId"]
        by_label[source]["responses"][status].setdefault("links", {})[f"to_{target_id}"] = {
            "operationId": target_id, "parameters": parameters}
    schema = schemathesis.openapi.from_dict(doc, config=f.config)
    schema.app, schema.location = f.app, f"{f.world.prefix}/openapi.json"
    # only the linked operations: the sequences stay on the resources whose life cycle is checked
    return schema.include(name=sorted({label for link in links for label in (link[0], link[2])}))


@pytest.mark.parametrize("provider,group", sorted(LINKS), ids=[f"{p}:{g}" for p, g in sorted(LINKS)])
def test_stateful_fuzzing_with_real_credentials(provider, group):
    """Linked call sequences (create -> read/update/delete -> read): use_after_free, resource availability and
    every stateless check, through the auth hooks."""
    f = Fuzzed(provider)
    links = LINKS[(provider, group)]
    schema = _linked_schema(f, links)
    short_of = {f"{m.upper()} {p}": op["operationId"].split(".", 1)[1].split("__")[0]
                for p, item in schema.raw_schema["paths"].items() for m, op in item.items()}
    linked_targets = {target for _, _, target, _ in links}
    statuses: collections.Counter = collections.Counter()

    class Machine(schema.as_state_machine()):
        def before_call(self, case):
            if case.operation.label not in linked_targets:   # roots get real ids; linked calls keep the link's
                # seeded by the case itself: a replayed scenario makes the same choices (Hypothesis demands it)
                rng = random.Random(repr((case.operation.label, case.path_parameters, case.body, case.query)))
                _realise(f.world, short_of[case.operation.label], case, rng)

        def after_call(self, response, case):
            super().after_call(response, case)
            statuses[(case.operation.label, response.status_code)] += 1
            f.world.observe(short_of[case.operation.label], response)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            known = KNOWN_BUGS.get((provider, case.operation.label))
            if known and known(case, response):
                return
            case.validate_response(response, excluded_checks=EXCLUDED_CHECKS, transport_kwargs=kwargs or None,
                                   recorder=self.recorder)

    Machine.run(settings=STATEFUL)
    done = {label for (label, status), n in statuses.items() if 200 <= status < 300}
    # the links were followed with real data: each sequence reached its resource
    assert MUST_SUCCEED[(provider, group)] <= done, dict(statuses)
