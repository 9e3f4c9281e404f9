"""Issue 12, item 1: the pytest plugin a client author gets with the package. A new project (pytester: its own
directory, its own conftest-free session) writes short tests against each provider with the ``sandbox`` fixture
and they pass; the journal assertion fails when the client breaks the contract; tests are isolated tenants."""
from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

PROJECT_TESTS = '''
import requests
from urllib.parse import parse_qs, urlsplit


def test_open_finance(sandbox):
    api = sandbox.base_url("open_finance")
    tok = requests.post(f"{api}/oauth/token", json={"userId": "u1", **sandbox.credentials("open_finance")}).json()
    h = {"Authorization": f"Bearer {tok['accessToken']}"}
    job = requests.post(f"{api}/financial-report/043510023", headers=h).json()["jobId"]
    sandbox.complete_job(job)
    assert requests.get(f"{api}/financial-report/{job}", headers=h).json()["status"] == "DONE"
    sandbox.assert_called("open_finance.create_token", valid=True, status=200)


def test_finleap(sandbox):
    api = sandbox.base_url("finleap")
    link = requests.post(f"{api}/onetime/income-report", auth=sandbox.basic_auth(),
                         json={"redirect_uri": "https://my-app.example.com/cb", "state": "s1"}).json()
    done = sandbox.complete_flow(link["id"], "success")
    code = parse_qs(urlsplit(done["redirect_url"]).query)["code"][0]
    tokens = requests.post(f"{api}/auth/token", auth=sandbox.basic_auth(),
                           json={"grant_type": "authorization_code", "code": code}).json()
    accounts = requests.get(f"{api}/rest/accounts", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert accounts.status_code == 200 and accounts.json()["accounts"]


def test_fino(sandbox):
    api = sandbox.base_url("fino")
    auth = requests.post(f"{api}/auth", data={"grant_type": "client_credentials", **sandbox.credentials("fino")})
    h = {"Authorization": "Bearer " + auth.json()["access_token"]}
    user = requests.post(f"{api}/users", headers=h, json={"type": "person", "name": "Maria"})
    assert user.status_code == 201 and requests.get(f"{api}/users", headers=h).json()["context"]["count"] == 1


def test_finpass(sandbox):
    api = sandbox.base_url("finpass")
    found = requests.post(f"{api}/api/v1/corporate/company-autocomplete", headers=sandbox.credentials("finpass"),
                          json={"company_name": "tea"})
    assert found.status_code == 200 and found.json()["success"] is True


def test_time_moves_only_for_this_tenant(sandbox):
    before = sandbox.control.get("/clock")["now"]
    sandbox.advance(86400)
    assert sandbox.control.get("/clock")["now"] > before


def test_a_broken_client_is_caught_by_the_journal(sandbox):
    api = sandbox.base_url("open_finance")
    requests.post(f"{api}/oauth/token", json={"userId": 42, **sandbox.credentials("open_finance")})
    sandbox.assert_called("open_finance.create_token", valid=True)
'''


@pytest.fixture
def project(pytester):
    pytester.makepyfile(test_my_client=PROJECT_TESTS)
    return pytester


def test_a_new_project_tests_its_client_against_every_provider(project):
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=5, failed=1)
    # the deliberately broken client fails with the contract problem named, not with a crash
    result.stdout.fnmatch_lines(["*test_a_broken_client_is_caught_by_the_journal*",
                                 "*create_token: the request broke the contract*userId*"])


def test_each_test_gets_a_fresh_tenant_and_leaves_nothing_behind(pytester):
    pytester.makepyfile(test_tenants='''
seen = []

def test_one(sandbox):
    seen.append(sandbox.tenant)
    assert sandbox.journal() == []

def test_two(sandbox):
    seen.append(sandbox.tenant)
    assert sandbox.journal() == [] and seen[0] != seen[1]
    clients = {c["client_id"] for c in sandbox.control.get("/clients")["clients"]}
    assert seen[0] not in clients and sandbox.client_id in clients   # the first test's client is gone
''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q").assert_outcomes(passed=2)


def test_the_wsgi_fixture_needs_no_socket(pytester):
    pytester.makepyfile(test_wsgi='''
def test_token(sandbox_wsgi):
    r = sandbox_wsgi.client.post(sandbox_wsgi.path("open_finance") + "/oauth/token",
                                 json={"userId": "u", **sandbox_wsgi.credentials("open_finance")})
    assert r.status_code == 200
    sandbox_wsgi.assert_called("create_token", valid=True)
''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q").assert_outcomes(passed=1)
