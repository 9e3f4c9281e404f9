"""Open Finance connections, consent journey, open-banking init/finalize, providers and branches (open_finance.md
sections 6, 8, 9, 11, 12), by catalogue id. In-process by default; over HTTP with --base-url:

    sandbox check open_finance --base-url http://127.0.0.1:8080/open-finance

The clock is frozen and moved, the fetch job policy set and hosted flows completed only through the control API.
"""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore

from .checks import provider_error, response_schema_conformance, status_in
from .plugin import make_transport
from .transport import Receiver

OF = "open_finance."
FETCH_KIND = "open_finance.connection_fetch"
PRODUCTION = ("production access is not enabled for this organization, you must include fake providers or contact us")
pytestmark = pytest.mark.control


@pytest.fixture
def of(contract_options):
    transport, control = make_transport(contract_options, "open_finance",
                                        lambda: create_app({"SEED": 11, "SECRET_KEY": "contract-tests"}, store=MemoryStore()))
    control.reset()
    control.clock("freeze")
    # one fetch step every 2 s on the sandbox clock, whatever the server's --job-delay
    control.policy(kind=FETCH_KIND, mode="auto", seconds=2)
    yield transport, control, contract_options
    control.clear_policy(kind=FETCH_KIND)
    control.clock("reset")


def token(of, user_id: str | None = None) -> dict:
    transport, _, opts = of
    r = transport.call(OF + "create_token", json_body={"userId": user_id or opts["user_id"],
                                                       "clientId": opts["client_id"], "clientSecret": opts["client_secret"]})
    status_in(r, 200)
    return {"Authorization": f"Bearer {r.json['accessToken']}"}


def call(of, op: str, h: dict, **kw):
    r = of[0].call(OF + op, headers=h, **kw)
    if r.status != 204:
        response_schema_conformance(r)
    return r


def create(of, h, **body):
    r = call(of, "create_connection", h, json_body={"includeFakeProviders": True, **body})
    status_in(r, 201)
    return r.json


def page_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def form(of, url: str, fields: dict):
    """A plain form post to a hosted page, as a browser without JavaScript sends it: (status, headers, html)."""
    status, headers, content, _ = of[0].send("POST", page_path(url), {"Content-Type": "application/x-www-form-urlencoded"},
                                            urlencode(fields).encode())
    return status, {k.lower(): v for k, v in headers.items()}, content.decode("utf-8", "replace")


def journey(of, created: dict, psu_id: str = "043510023", provider: str | None = None) -> tuple[int, dict, str]:
    """Walk the consent journey with form posts: [provider] -> psuId -> approve at the bank."""
    cid, url = created["id"], created["connectUrl"]
    if provider:
        status, _, _ = form(of, url, {"flow_id": cid, "step": "provider", "providerId": provider})
        assert status == 200
    status, _, html = form(of, url, {"flow_id": cid, "step": "consent", "psuId": psu_id, "continue": "1"})
    assert status == 200 and 'id="step-bank"' in html, html[:400]
    return form(of, url, {"flow_id": cid, "step": "bank", "approve": "1"})


def status_of(of, h, cid: str) -> str:
    r = call(of, "get_connection", h, path_params={"connectionId": cid})
    status_in(r, 200)
    return r.json["status"]


# --- create / get / journey ---------------------------------------------------------------------------------------
def test_create_connection_needs_fake_providers_on_a_sandbox_organisation(of):
    h = token(of)
    r = call(of, "create_connection", h, json_body={"redirectUrl": "https://my-app.example.com/cb"})
    provider_error(r, 400, {"type": "CLIENT_ERROR", "message": PRODUCTION})
    r = call(of, "create_connection", h, json_body={"includeFakeProviders": True, "psuId": "12ab"})
    provider_error(r, 400)
    assert "psuId" in json.loads(r.json["message"])[0]
    # only real providers asked for: none may be offered to a sandbox organisation
    r = call(of, "create_connection", h, json_body={"includeFakeProviders": True, "providerIds": ["leumi"]})
    provider_error(r, 404, {"type": "CLIENT_ERROR", "message": "No providers were found"})


def test_journey_by_form_posts_walks_the_state_machine_and_redirects(of):
    transport, control, _ = of
    h = token(of)
    created = create(of, h, redirectUrl="https://my-app.example.com/cb?x=1", language="en",
                     providerIds=["open-finance-sandbox", "leumi-sandbox"])
    cid = created["id"]
    got = call(of, "get_connection", h, path_params={"connectionId": cid})
    assert got.json["status"] == "INACTIVE" and got.json["includeFakeProviders"] is True
    page = transport.get(page_path(created["connectUrl"]))
    assert page.status == 200 and 'lang="en"' in page.text and 'id="step-provider"' in page.text
    assert "leumi-sandbox" in page.text and "hapoalim-sandbox" not in page.text   # providerIds honoured
    status, headers, _ = journey(of, created, provider="open-finance-sandbox")
    assert status == 303
    assert headers["location"] == f"https://my-app.example.com/cb?x=1&connectionId={cid}&status=FETCHING"
    assert status_of(of, h, cid) == "FETCHING"
    control.clock("advance", seconds=1.999)
    assert status_of(of, h, cid) == "FETCHING"
    control.clock("advance", seconds=0.001)
    assert status_of(of, h, cid) == "CONNECTED"
    control.clock("advance", seconds=2)
    final = call(of, "get_connection", h, path_params={"connectionId": cid}).json
    assert final["status"] == "COMPLETED" and final["providerId"] == "open-finance-sandbox"
    assert final["psuId"] == "043510023" and final["accounts"] is not None
    # the link is spent: a replay shows the error page (400), never a redirect or a 500
    status, headers, html = form(of, created["connectUrl"], {"flow_id": cid, "step": "bank", "approve": "1"})
    assert status == 400 and "location" not in headers and 'id="error"' in html


def test_journey_posts_for_another_connection_change_nothing(of):
    transport, _, _ = of
    h = token(of)
    a, b = create(of, h, providerIds=["open-finance-sandbox"]), create(of, h, providerIds=["open-finance-sandbox"])
    # a's page with b's id in the form: stale, re-rendered, nothing moves
    status, _, html = form(of, a["connectUrl"], {"flow_id": b["id"], "step": "consent", "psuId": "043510023",
                                                 "continue": "1"})
    assert status == 200 and 'id="error"' in html and 'id="step-consent"' in html
    # a's token on b's path: refused with the error page
    wrong = page_path(a["connectUrl"]).replace(a["id"], b["id"], 1)
    assert transport.get(wrong).status == 400
    assert status_of(of, h, a["id"]) == status_of(of, h, b["id"]) == "INACTIVE"
    # a tampered token
    assert transport.get(page_path(a["connectUrl"])[:-3] + "xyz").status == 400


def test_published_psu_ids_give_their_outcomes(of):
    _, control, _ = of
    h = token(of)
    expected = {"050299338": "REJECTED", "064837123": "PARTIALLY_AUTHORIZED", "316159011": "ERROR",
                "316159029": "FETCHING_ERROR", "316159052": "SUSPENDED_BY_PROVIDER", "321547416": "ACTIVE"}
    ids = {}
    for psu, _ in expected.items():
        created = create(of, h, providerIds=["open-finance-sandbox"], refreshData=psu == "321547416")
        status, headers, _ = journey(of, created, psu_id=psu)
        assert status == 200   # no redirectUrl: the done page
        ids[psu] = created["id"]
    control.clock("advance", seconds=10)
    for psu, status in expected.items():
        got = call(of, "get_connection", h, path_params={"connectionId": ids[psu]}).json
        assert got["status"] == status, (psu, got)
        assert (got["error"] is not None) == (status not in ("ACTIVE", "PARTIALLY_AUTHORIZED")), got


def test_control_api_completes_the_journey(of):
    _, control, _ = of
    h = token(of)
    created = create(of, h, redirectUrl="https://my-app.example.com/cb", psuId="050299338",
                     providerIds=["open-finance-sandbox"])
    done = control._call("POST", f"/flows/{created['id']}/complete", {"outcome": "success"})
    assert done["redirect_url"] == f"https://my-app.example.com/cb?connectionId={created['id']}&status=REJECTED"
    cancelled = create(of, h)
    done = control._call("POST", f"/flows/{cancelled['id']}/complete", {"outcome": "cancel"})
    assert done["status"] == "CANCELLED" and status_of(of, h, cancelled["id"]) == "TERMINATED_BY_USER"


# --- list / delete ---------------------------------------------------------------------------------------------------
def test_list_connections_pages_filters_and_counts(of):
    _, control, _ = of
    h = token(of)
    made = [create(of, h, customerId="c-1" if i < 3 else "c-2", refreshData=i == 1)["id"] for i in range(4)]
    control._call("POST", f"/flows/{made[1]}/complete", {"outcome": "success", "psuId": "321547416"})
    control.clock("advance", seconds=10)
    first = call(of, "list_connections", h, query={"limit": "3"})
    status_in(first, 200)
    assert first.json["count"] == 3 and first.json["nextPage"]
    second = call(of, "list_connections", h, query={"limit": "3", "nextPage": first.json["nextPage"]})
    assert second.json["nextPage"] is None and second.json["count"] == 1
    assert [c["id"] for c in first.json["items"] + second.json["items"]] == made   # oldest first
    newest = call(of, "list_connections", h, query={"sort": "-1", "limit": "4"})
    assert [c["id"] for c in newest.json["items"]] == made[::-1] and newest.json["nextPage"] is None
    by_customer = call(of, "list_connections", h, query={"customerId": "c-2"})
    assert [c["id"] for c in by_customer.json["items"]] == made[3:]
    # count = items of the page before the status filter (s.6)
    active = call(of, "list_connections", h, query={"status": "ACTIVE", "limit": "2"})
    assert active.json["count"] == 2 and [c["id"] for c in active.json["items"]] == [made[1]]
    provider_error(call(of, "list_connections", h, query={"nextPage": "garbage"}), 400)
    provider_error(call(of, "list_connections", h, query={"limit": "0"}), 400)
    provider_error(call(of, "list_connections", h, query={"limit": "3", "nextPage": first.json["nextPage"],
                                                             "sort": "-1"}), 400)   # a cursor of another listing
    provider_error(call(of, "list_connections", h, query={"userId": "someone"}), 400,
                   {"type": "CLIENT_ERROR", "message": "userId is not allowed in query for non-admin users"})
    # another user of the organisation sees none of them
    assert call(of, "list_connections", token(of, "other@example.com")).json == {"nextPage": None, "count": 0,
                                                                              "items": []}


def test_get_and_delete_connection(of):
    h = token(of)
    created = create(of, h)
    cid = created["id"]
    provider_error(call(of, "get_connection", h, path_params={"connectionId": "nope"}), 404,
                   {"type": "CLIENT_ERROR", "message": "No connection was found"})
    provider_error(call(of, "get_connection", token(of, "other@example.com"), path_params={"connectionId": cid}), 404)
    status_in(call(of, "delete_connection", h, path_params={"connectionId": cid}), 204)
    provider_error(call(of, "get_connection", h, path_params={"connectionId": cid}), 404)
    provider_error(call(of, "delete_connection", h, path_params={"connectionId": cid}), 404,
                   {"type": "CLIENT_ERROR", "message": "connection not found"})
    assert of[0].get(page_path(created["connectUrl"])).status == 400   # its journey is gone too


# --- refresh -----------------------------------------------------------------------------------------------------------
def test_refresh_connection_moves_data_forward(of):
    transport, control, opts = of
    h = token(of)
    created = create(of, h, refreshData=False)
    control._call("POST", f"/flows/{created['id']}/complete", {"outcome": "success", "psuId": "043510023"})
    control.clock("advance", seconds=10)
    assert status_of(of, h, created["id"]) == "COMPLETED"
    control.clock("advance", seconds=3 * 86400)
    h = token(of)   # tokens live 24 h on the sandbox clock
    status_in(call(of, "refresh_connection", h, path_params={"connectionId": created["id"]}), 204)
    got = call(of, "get_connection", h, path_params={"connectionId": created["id"]}).json
    assert got["status"] == "FETCHING"
    control.clock("advance", seconds=2)
    got = call(of, "get_connection", h, path_params={"connectionId": created["id"]}).json
    assert got["status"] == "COMPLETED"
    assert got["lastFetchedDataDate"] == got["refreshSettings"]["lastFetchedDataDate"]
    assert got["lastFetchedDataDate"][:10] == control.clock("freeze")["now"][:10]
    provider_error(call(of, "refresh_connection", h, path_params={"connectionId": "nope"}), 404)
    provider_error(call(of, "refresh_connection", h, path_params={"connectionId": " "}), 400,
                   {"type": "CLIENT_ERROR", "message": "connectionId missing from params"})
    inactive = create(of, h)
    provider_error(call(of, "refresh_connection", h, path_params={"connectionId": inactive["id"]}), 400)
    status_in(call(of, "refresh_user_connections", h, path_params={"userId": opts["user_id"]}), 204)
    assert status_of(of, h, created["id"]) == "FETCHING" and status_of(of, h, inactive["id"]) == "INACTIVE"
    provider_error(call(of, "refresh_user_connections", h, path_params={"userId": "other@example.com"}), 404)


# --- headless: open-banking init / bank SCA / finalize ------------------------------------------------------------------
def test_open_banking_init_bank_sca_and_finalize(of):
    transport, control, _ = of
    h = token(of)
    created = create(of, h, redirectUrl="https://my-app.example.com/bank-back")
    body = {"providerId": "open-finance-sandbox", "connectionId": created["id"], "psuId": "321547416",
            "refreshData": True}
    init = call(of, "open_banking_init", h, json_body=body)
    status_in(init, 200)
    assert init.json["connection"]["psuId"] == "321547416" and init.json["connection"]["status"] == "INACTIVE"
    sca = init.json["scaOAuth"]
    assert transport.get(page_path(sca)).status == 200
    status, headers, _ = form(of, sca, {"flow_id": f"{created['id']}.bank", "approve": "1"})
    assert status == 303
    back = urlsplit(headers["location"])
    assert back.netloc == "my-app.example.com" and back.path == "/bank-back"
    q = {k: v[0] for k, v in parse_qs(back.query).items()}
    assert list(q) == ["code", "state"]
    provider_error(call(of, "open_banking_finalize", h, query={"state": q["state"], "code": "wrong"}), 400)
    provider_error(call(of, "open_banking_finalize", h, query={"code": q["code"]}), 400)
    provider_error(call(of, "open_banking_finalize", h, query={"state": "unknown", "code": q["code"]}), 400)
    provider_error(call(of, "open_banking_finalize", token(of, "other@example.com"), query=q), 400)
    fin = call(of, "open_banking_finalize", h, query=q)
    status_in(fin, 200)
    assert fin.json["connectionId"] == created["id"] and fin.json["connectionStatus"] == "FETCHING"
    assert fin.json["isPayment"] is False and fin.json["psuId"] == "321547416"
    provider_error(call(of, "open_banking_finalize", h, query=q), 400)   # a state works once
    control.clock("advance", seconds=10)
    assert status_of(of, h, created["id"]) == "ACTIVE"
    provider_error(call(of, "open_banking_init", h, json_body=body), 400)   # no longer INACTIVE
    provider_error(call(of, "open_banking_init", h, json_body={**body, "connectionId": "nope"}), 404)
    provider_error(call(of, "open_banking_init", h, json_body={**body, "providerId": "leumi"}), 400,
                   {"type": "CLIENT_ERROR", "message": PRODUCTION})


def test_bank_sca_rejection_finalizes_rejected(of):
    h = token(of)
    created = create(of, h, redirectUrl="https://my-app.example.com/bank-back")
    init = call(of, "open_banking_init", h, json_body={"providerId": "leumi-sandbox", "connectionId": created["id"],
                                                      "psuId": "105210748"}).json
    status, headers, _ = form(of, init["scaOAuth"], {"flow_id": f"{created['id']}.bank", "reject": "1"})
    q = {k: v[0] for k, v in parse_qs(urlsplit(headers["location"]).query).items()}
    assert status == 303 and q["error"] == "access_denied"
    fin = call(of, "open_banking_finalize", h, query=q)
    assert fin.json["connectionStatus"] == "REJECTED" and status_of(of, h, created["id"]) == "REJECTED"


# --- providers and branches ---------------------------------------------------------------------------------------------
def test_list_providers(of):
    transport, _, _ = of
    h = token(of)
    real = call(of, "list_providers", h)
    status_in(real, 200)
    assert real.json and not any(p["isFake"] for p in real.json)
    ids = {p["providerFriendlyId"]: p for p in call(of, "list_providers", h, query={"includeFakeProviders": "true"}).json}
    assert {"open-finance-sandbox", "leumi", "mizrahi-sandbox"} <= set(ids)
    assert ids["leumi"]["bankCode"] == 10 and ids["beinleumi"]["bankCode"] == 31
    assert transport.get(page_path(ids["leumi"]["image"])).status == 200
    provider_error(call(of, "list_providers", h, query={"type": "INSURANCE"}), 404,
                   {"type": "CLIENT_ERROR", "message": "No providers were found"})
    # the catalogue lists no 400: anything but "true" means false
    maybe = call(of, "list_providers", h, query={"includeFakeProviders": "maybe"})
    assert [p["providerFriendlyId"] for p in maybe.json] == [p["providerFriendlyId"] for p in real.json]


def test_list_bank_branches(of):
    h = token(of)
    branches = call(of, "list_bank_branches", h, query={"bankCode": "31"})
    status_in(branches, 200)
    assert {b["bankCode"] for b in branches.json} == {31}
    assert {19, 21, 50} <= {b["branchCode"] for b in branches.json}   # the published 31-019-…, 31-021-…, 31-050-…
    provider_error(call(of, "list_bank_branches", h), 400,
                   {"type": "CLIENT_ERROR", "message": '["\\"bankCode\\" is required"]'})
    provider_error(call(of, "list_bank_branches", h, query={"bankCode": "abc"}), 400)
    provider_error(call(of, "list_bank_branches", h, query={"bankCode": "99"}), 404)


# --- webhooks (s.9) -------------------------------------------------------------------------------------------------------
def test_status_changes_are_posted_to_the_connection_webhooks(of):
    _, control, opts = of
    receiver = Receiver()
    try:
        h = token(of)
        hooks = {"webhooks": {"enabled": True, "successUrl": receiver.url + "/ok", "failUrl": receiver.url + "/fail",
                              "abortUrl": receiver.url + "/abort", "customHeaders": {"X-Client": "c-1"}}}
        ok = create(of, h, providerIds=["open-finance-sandbox"], callbackInformation=hooks, expiryDate="2099-01-01")
        bad = create(of, h, providerIds=["open-finance-sandbox"], callbackInformation=hooks)
        left = create(of, h, callbackInformation=hooks)
        journey(of, ok, psu_id="043510023")
        journey(of, bad, psu_id="316159011")
        form(of, left["connectUrl"], {"flow_id": left["id"], "step": "provider", "close": "1"})
        control.clock("advance", seconds=10)
        status_of(of, h, ok["id"])
        status_of(of, h, bad["id"])
        log = control.flush_webhooks(provider="open_finance")
        assert all(d["status"] == "delivered" for d in log), log
        got = [(r["path"], json.loads(r["body"])) for r in receiver.received]
        # routing (s.9): success statuses to successUrl, errors to failUrl, leaving the journey to abortUrl;
        # FETCHING goes to the organisation's webhook only (none configured here)
        assert sorted((p, b["connectionId"], b["connectionStatus"]) for p, b in got) == sorted([
            ("/ok", ok["id"], "CONNECTED"), ("/ok", ok["id"], "COMPLETED"), ("/abort", left["id"], "TERMINATED_BY_USER"),
            ("/fail", bad["id"], "ERROR")])
        by_status = {b["connectionStatus"]: b for _, b in got}
        assert by_status["COMPLETED"]["userId"] == opts["user_id"] and by_status["COMPLETED"]["bankName"] == \
            "open-finance-sandbox" and by_status["COMPLETED"]["expiryDate"] == "2099-01-01"
        assert by_status["COMPLETED"]["accountNumbers"] and all(
            n.startswith("IL") and len(n) == 23 for n in by_status["COMPLETED"]["accountNumbers"])
        assert by_status["ERROR"]["connectionError"]["type"] and "connectionError" not in by_status["COMPLETED"]
        assert all(r["headers"].get("X-Client") == "c-1" for r in receiver.received)
    finally:
        receiver.close()
