"""Tests that kill mutants `make mutate` found surviving in the Open Finance service: connections are per user (a
mutant that dropped the user scope served one user's bank data in another's report) and strict mode provisions
nothing."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore
from sandbox.providers.open_finance.data import TEST_PSU_IDS

OF = "/open-finance"


def _app(**config):
    return create_app({"SEED": 7, **config}, store=MemoryStore(),
                      system_clock=lambda: datetime(2025, 4, 23, 9, 30, tzinfo=timezone.utc))


def _token(http, user: str, client=("sandbox-client", "sandbox-secret")) -> dict:
    r = http.post(f"{OF}/oauth/token", json={"userId": user, "clientId": client[0], "clientSecret": client[1]})
    assert r.status_code == 200, r.get_data(as_text=True)
    return {"Authorization": f"Bearer {r.get_json()['accessToken']}"}


def _report(http, headers: dict, customer: str) -> dict:
    r = http.post(f"{OF}/financial-report/{customer}", headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    job = r.get_json()["jobId"]
    for _ in range(2):
        body = http.get(f"{OF}/financial-report/{job}", headers=headers).get_json()
    assert body["status"] == "DONE", body
    return body["financialReport"]


def _checking_numbers(report: dict) -> list[str]:
    return [a["accountNumber"] for a in report["checkingAccounts"]]


@pytest.mark.parametrize("other_client", [False, True], ids=["same tenant", "other tenant"])
def test_each_users_report_shows_that_users_own_bank_data(other_client):
    """User A's first report provisions A's connection (psuId X); user B's first report (psuId Y) must get B's
    own connection with Y's published accounts (open_finance.md s.11), never A's."""
    http = _app().test_client()
    client = ("sandbox-client", "sandbox-secret")
    if other_client:
        client = ("mutants-t2", "mutants-t2-secret-0123456789")
        r = http.post("/_sandbox/clients", json={"client_id": client[0], "client_secret": client[1]})
        assert r.status_code == 201, r.get_data(as_text=True)
    x, y = "043510023", "321547416"
    a = _report(http, _token(http, "carol"), x)
    b = _report(http, _token(http, "carol|x" if not other_client else "carol", client), y)
    assert _checking_numbers(a)[0] == TEST_PSU_IDS[x][0][0]
    assert _checking_numbers(b)[0] == TEST_PSU_IDS[y][0][0]
    assert not set(_checking_numbers(a)) & set(_checking_numbers(b))


def test_a_users_connection_is_kept_for_later_reports():
    """The first report provisions the connection; a later report with another customerId reuses it."""
    http = _app().test_client()
    me = _token(http, "dan")
    first = _report(http, me, "043510023")
    later = _report(http, me, "321547416")
    assert _checking_numbers(later) == _checking_numbers(first)


def test_strict_connections_provision_nothing():
    http = _app(OPEN_FINANCE_STRICT_CONNECTIONS=True).test_client()
    r = http.post(f"{OF}/financial-report/043510023", headers=_token(http, "erin"))
    assert r.status_code == 400 and "No active connections found" in r.get_data(as_text=True)


def test_without_strict_connections_the_first_report_provisions_one():
    http = _app(OPEN_FINANCE_STRICT_CONNECTIONS=False).test_client()
    assert _checking_numbers(_report(http, _token(http, "erin"), "043510023"))
