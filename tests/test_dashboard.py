"""The dashboard under /_sandbox/ui (core/dashboard.py): guarded like the control API, showing the real state and
changing it through form posts.

Every expected value is read independently through the control API (``/_sandbox/clock``, ``/_sandbox/jobs/<id>``,
``/_sandbox/flows/<id>``, ``/_sandbox/webhooks/<id>``, ``/_sandbox/journal``), never from the dashboard itself.
"""
from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from markupsafe import escape

from sandbox import create_app
from sandbox.core.clock import isoformat, parse_instant
from sandbox.core.dashboard import CSRF_COOKIE, JOURNAL_PAGE, PAGE_SIZE, SESSION_COOKIE
from sandbox.core.store import MemoryStore

TOKEN = "dash-admin-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
UI = "/_sandbox/ui"
XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'


class Recorder:
    """The webhook sender: records each send and answers 500 (so every delivery stays retryable)."""

    def __init__(self):
        self.sent = []

    def __call__(self, method, url, body, headers, timeout=5.0):
        self.sent.append((method, url, body))
        return 500, None


@pytest.fixture
def recorder():
    return Recorder()


def make_app(wall, recorder, **config):
    return create_app({"SEED": 7, "JOURNAL": True, "ADMIN_TOKEN": "", **config}, store=MemoryStore(),
                      system_clock=wall, webhook_sender=recorder)


@pytest.fixture
def open_client(wall, recorder):
    return make_app(wall, recorder).test_client()


@pytest.fixture
def locked_client(wall, recorder):
    return make_app(wall, recorder, ADMIN_TOKEN=TOKEN).test_client()


def csrf_of(client, path: str = UI + "/", **kw) -> str:
    """The CSRF token of a dashboard page (GETting it also sets the browser's nonce cookie)."""
    resp = client.get(path, **kw)
    assert resp.status_code in (200, 401), resp.status_code
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', resp.get_data(as_text=True))
    assert found, "no CSRF field on the page"
    return found.group(1)


def post_form(client, path: str, data: dict, *, back: str = UI + "/", headers=None, csrf: str | None = None):
    token = csrf if csrf is not None else csrf_of(client, headers=headers)
    return client.post(UI + path, data={"csrf": token, "back": back, **data}, headers=headers or {})


def text(resp) -> str:
    return resp.get_data(as_text=True)


# --- a world with a tenant, a job, a flow, journal entries and a webhook delivery --------------------------------
def build_world(client, headers=None) -> dict:
    """Tenant ``acme`` (its own client), an Open Finance token and financial report (a RUNNING job), a pending
    consent journey (a flow) and one webhook delivery."""
    h = headers or {}
    created = client.post("/_sandbox/clients", json={"client_id": "acme"}, headers=h)
    assert created.status_code == 201, created.data
    secret = created.json["client_secret"]
    token = client.post("/open-finance/oauth/token",
                        json={"userId": "john@example.com", "clientId": "acme", "clientSecret": secret}).json
    auth = {"Authorization": f"Bearer {token['accessToken']}"}
    job = client.post("/open-finance/financial-report/318422557", headers=auth)
    assert job.status_code == 200, job.data
    flow = client.post("/open-finance/v2/connections", headers=auth, json={
        "includeFakeProviders": True, "providerIds": ["open-finance-sandbox"],
        "redirectUrl": "https://my-app.example.com/cb", "language": "en"})
    assert flow.status_code == 201, flow.data
    sub = client.post("/_sandbox/webhooks/subscriptions", headers=h, json={
        "provider": "open_finance", "tenant": "acme", "url": "http://127.0.0.1:9/hook"})
    assert sub.status_code == 201, sub.data
    fired = client.post("/_sandbox/webhooks/fire", headers=h, json={"provider": "open_finance", "tenant": "acme"})
    assert fired.status_code == 201, fired.data
    deliveries = fired.json["deliveries"]
    assert deliveries
    return {"secret": secret, "auth": auth, "job": job.json["jobId"], "flow": flow.json["id"],
            "delivery": deliveries[0]["id"], "access_token": token["accessToken"]}


# --- protection ---------------------------------------------------------------------------------------------------
PAGES = ["/", "/tenant?name=sandbox-client", "/journal", "/webhooks", "/scenarios",
         "/collection?tenant=sandbox-client&name=jobs", "/journal/entry?tenant=sandbox-client&id=x"]


@pytest.mark.parametrize("page", PAGES)
def test_locked_dashboard_needs_the_token_on_every_page(locked_client, page):
    resp = locked_client.get(UI + page)
    assert resp.status_code == 401
    assert resp.mimetype == "text/html"
    assert 'name="token"' in text(resp)                     # the login form, for humans
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert locked_client.get(UI + page, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert locked_client.get(UI + page, headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401


def test_every_dashboard_route_but_login_is_locked(locked_client):
    """Every route of the blueprint (also ones added later) answers 401 without the token, GET and POST alike."""
    rules = [r for r in locked_client.application.url_map.iter_rules() if r.endpoint.startswith("_sandbox_ui.")]
    assert len(rules) >= 12
    csrf = csrf_of(locked_client)
    for rule in rules:
        path = rule.rule.replace("<path:rest>", "x/y")
        for arg in rule.arguments:
            path = path.replace(f"<{arg}>", "x")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = locked_client.open(path, method=method, data={"csrf": csrf} if method == "POST" else None,
                                      headers={"Authorization": "Bearer wrong"})
            if rule.endpoint == "_sandbox_ui.login":
                assert resp.status_code == (200 if method == "GET" else 401), (method, path)
            else:
                assert resp.status_code == 401, (method, path, resp.status_code)


def test_bearer_and_admin_header_open_the_locked_dashboard(locked_client):
    assert locked_client.get(UI + "/", headers=BEARER).status_code == 200
    assert locked_client.get(UI + "/", headers={"X-Sandbox-Admin-Token": TOKEN}).status_code == 200


def test_login_form_sets_a_strict_httponly_cookie(locked_client):
    csrf = csrf_of(locked_client, UI + "/login")
    wrong = locked_client.post(UI + "/login", data={"csrf": csrf, "token": TOKEN[:-1], "next": UI + "/journal"})
    assert wrong.status_code == 401
    assert "wrong admin token" in text(wrong)
    assert SESSION_COOKIE not in (wrong.headers.get("Set-Cookie") or "")
    assert locked_client.get(UI + "/").status_code == 401

    right = locked_client.post(UI + "/login", data={"csrf": csrf, "token": TOKEN, "next": UI + "/journal"})
    assert right.status_code == 303
    assert right.headers["Location"].endswith(UI + "/journal")
    cookie = next(c for c in right.headers.getlist("Set-Cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/_sandbox/ui" in cookie
    assert TOKEN not in cookie                                 # the cookie holds a MAC, never the token itself
    assert locked_client.get(UI + "/").status_code == 200      # the cookie works
    assert locked_client.get(UI + "/journal").status_code == 200

    # a tampered cookie is refused
    value = locked_client.get_cookie(SESSION_COOKIE, path="/_sandbox/ui").value
    locked_client.set_cookie(SESSION_COOKIE, value[:-1] + ("0" if value[-1] != "0" else "1"), path="/_sandbox/ui")
    assert locked_client.get(UI + "/").status_code == 401


def test_login_without_csrf_or_next_elsewhere(locked_client):
    csrf_of(locked_client, UI + "/login")
    # no CSRF field: a login posted from another page is refused
    assert locked_client.post(UI + "/login", data={"token": TOKEN}).status_code == 403
    csrf = csrf_of(locked_client, UI + "/login")
    resp = locked_client.post(UI + "/login", data={"csrf": csrf, "token": TOKEN, "next": "https://evil.example/"})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(UI + "/")        # never redirected off the dashboard


def test_logout_clears_the_cookie(locked_client):
    csrf = csrf_of(locked_client, UI + "/login")
    locked_client.post(UI + "/login", data={"csrf": csrf, "token": TOKEN})
    assert locked_client.get(UI + "/").status_code == 200
    resp = post_form(locked_client, "/logout", {})
    assert resp.status_code == 303
    assert locked_client.get(UI + "/").status_code == 401


def test_actions_need_the_token_too(locked_client, wall):
    before = locked_client.get("/_sandbox/clock", headers=BEARER).json["now"]
    csrf = csrf_of(locked_client)   # a 401 page still carries a token: it must not be enough
    resp = locked_client.post(UI + "/clock", data={"csrf": csrf, "action": "advance", "seconds": "60"})
    assert resp.status_code == 401
    assert locked_client.get("/_sandbox/clock", headers=BEARER).json["now"] == before


def test_open_dashboard_answers_loopback_only(wall, recorder):
    client = make_app(wall, recorder).test_client()
    assert client.get(UI + "/").status_code == 200                                    # Host: localhost
    assert client.get(UI + "/", base_url="http://127.0.0.1:8080").status_code == 200
    rebound = client.get(UI + "/", base_url="http://evil.example:8080")              # DNS rebinding
    assert rebound.status_code == 403
    assert rebound.mimetype == "text/html"
    insecure = make_app(wall, recorder, INSECURE_OPEN_CONTROL_API=True).test_client()
    assert insecure.get(UI + "/", base_url="http://evil.example:8080").status_code == 200
    locked = make_app(wall, recorder, ADMIN_TOKEN=TOKEN).test_client()
    assert locked.get(UI + "/", base_url="http://sandbox.internal", headers=BEARER).status_code == 200


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "null"}])
def test_cross_site_posts_are_refused(open_client, headers):
    before = open_client.get("/_sandbox/clock").json["now"]
    csrf = csrf_of(open_client)
    resp = open_client.post(UI + "/clock", data={"csrf": csrf, "action": "advance", "seconds": "60"},
                            headers=headers)
    assert resp.status_code == 403
    assert "cross-site" in text(resp)
    assert open_client.get("/_sandbox/clock").json["now"] == before
    # the same post from the dashboard's own origin works
    same = open_client.post(UI + "/clock", data={"csrf": csrf, "action": "advance", "seconds": "60"},
                            headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 303


def test_csrf_token_is_required_and_bound_to_the_browser(open_client, wall, recorder):
    before = open_client.get("/_sandbox/clock").json["now"]
    csrf_of(open_client)
    assert open_client.post(UI + "/clock", data={"action": "advance", "seconds": "60"}).status_code == 403
    assert open_client.post(UI + "/clock", data={"csrf": "0" * 64, "action": "advance",
                                                 "seconds": "60"}).status_code == 403
    # another browser's token does not work with this browser's nonce cookie
    other = open_client.application.test_client()
    foreign = csrf_of(other)
    assert foreign != csrf_of(open_client)
    assert open_client.post(UI + "/clock", data={"csrf": foreign, "action": "advance",
                                                 "seconds": "60"}).status_code == 403
    # without the nonce cookie no token is valid
    fresh = open_client.application.test_client()
    assert fresh.post(UI + "/clock", data={"csrf": foreign, "action": "advance", "seconds": "60"}).status_code == 403
    assert open_client.get("/_sandbox/clock").json["now"] == before
    cookie = open_client.get_cookie(CSRF_COOKIE, path="/_sandbox/ui")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"


def test_pages_forbid_scripts_and_framing(open_client):
    resp = open_client.get(UI + "/")
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert "script-src" not in resp.headers["Content-Security-Policy"]   # none allowed: default-src 'none'
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"


# --- pages show the real state -------------------------------------------------------------------------------------
def test_overview_shows_providers_clock_seed_and_tenants(open_client):
    world = build_world(open_client)
    page = text(open_client.get(UI + "/"))
    health = open_client.get("/_sandbox/health").json
    for name, prefix in health["providers"].items():
        assert f"<code>{escape(prefix)}</code>" in page, name
    assert open_client.get("/_sandbox/clock").json["now"] in page
    assert f'id="seed">{health["seed"]}<' in page
    assert 'id="clock-state">running<' in page
    for client in open_client.get("/_sandbox/clients").json["clients"]:
        assert f"<code>{client['client_id']}</code>" in page
    assert world["secret"] not in page                      # never a secret
    row = re.search(r'<tr data-tenant="acme">(.*?)</tr>', page, re.S).group(1)
    jobs = open_client.get("/_sandbox/jobs?tenant=acme").json["jobs"]
    journal = open_client.get("/_sandbox/journal?tenant=acme&limit=5000").json["entries"]
    hooks = open_client.get("/_sandbox/webhooks?tenant=acme").json["deliveries"]
    flows = open_client.get("/_sandbox/flows?tenant=acme").json["flows"]
    cells = re.findall(r'<td class="num">(?:<a [^>]*>)?(\d+)', row)
    # collections, items, jobs, flows, journal, webhooks
    assert [int(c) for c in cells[2:]] == [len(jobs), len(flows), len(journal), len(hooks)]


def test_overview_clock_shows_frozen(open_client):
    open_client.post("/_sandbox/clock/freeze", json={"at": "2031-02-03T04:05:06Z"})
    page = text(open_client.get(UI + "/"))
    assert "2031-02-03T04:05:06.000Z" in page
    assert 'id="clock-state">frozen<' in page


def test_tenant_page_shows_jobs_flows_users_and_collections(open_client):
    world = build_world(open_client)
    page = text(open_client.get(UI + "/tenant", query_string={"name": "acme"}))
    job = open_client.get(f"/_sandbox/jobs/{world['job']}").json
    assert job["state"] == "RUNNING"
    row = re.search(rf'<tr id="job-{world["job"]}".*?</tr>', page, re.S).group(0)
    assert ">RUNNING<" in row and job["kind"] in row
    assert "job-complete" in row and "job-fail" in row and "job-advance" in row
    flow = open_client.get(f"/_sandbox/flows/{world['flow']}").json
    frow = re.search(rf'<tr id="flow-{world["flow"]}".*?</tr>', page, re.S).group(0)
    assert f">{flow['status']}<" in frow and all(f'value="{o}"' in frow for o in ("success", "cancel", "error"))
    assert "<code>john@example.com</code>" in page
    assert open_client.get("/_sandbox/clock?tenant=acme").json["now"] in page
    # collections with their item counts: jobs and the journal, counted through the control API
    jobs = open_client.get("/_sandbox/jobs?tenant=acme").json["jobs"]
    journal = open_client.get("/_sandbox/journal?tenant=acme&limit=5000").json["entries"]
    counts = dict(re.findall(r'name=([^"&]+)">[^<]+</a></td><td class="num">(\d+)<', page))
    assert int(counts["jobs"]) == len(jobs)
    assert int(counts["journal"]) == len(journal)
    assert "open_finance.connections" in counts


def test_collection_page_lists_items_as_json_paged(open_client):
    world = build_world(open_client)
    for i in range(PAGE_SIZE + 3):   # more journal entries than one page holds
        open_client.get("/open-finance/v2/data/accounts", headers=world["auth"])
    total = len(open_client.get("/_sandbox/journal?tenant=acme&limit=5000").json["entries"])
    assert total > PAGE_SIZE
    first = text(open_client.get(UI + "/collection", query_string={"tenant": "acme", "name": "journal"}))
    keys1 = re.findall(r'class="item-key">([^<]+)<', first)
    assert len(keys1) == PAGE_SIZE
    nxt = html.unescape(re.search(r'id="next" href="([^"]+)"', first).group(1))
    second = text(open_client.get(nxt))
    keys2 = re.findall(r'class="item-key">([^<]+)<', second)
    assert len(keys2) == total - PAGE_SIZE and not set(keys1) & set(keys2)
    assert 'id="next"' not in second
    assert "&#34;operation&#34;: &#34;open_finance.create_token&#34;" in first + second   # pretty JSON
    # a job, as JSON, with the same state the control API reports
    jobs_page = text(open_client.get(UI + "/collection", query_string={"tenant": "acme", "name": "jobs"}))
    assert "&#34;state&#34;: &#34;RUNNING&#34;" in jobs_page


def test_journal_lists_entries_with_verdicts_and_filters(open_client):
    world = build_world(open_client)
    bad = open_client.post("/open-finance/oauth/token", json={"userId": "x", "clientId": "acme"})
    assert bad.status_code == 400
    entries = open_client.get("/_sandbox/journal?tenant=acme&limit=5000").json["entries"]
    invalid = next(e for e in entries if e["status"] == 400)
    problems = [m for v in invalid["verdict"].values() if v != "ok" for m in v]
    assert problems
    page = text(open_client.get(UI + "/journal", query_string={"tenant": "acme"}))
    assert page.count('class="entry"') == len(entries)
    for message in problems:
        assert str(escape(message)) in page
    assert ">valid<" in page and ">invalid<" in page
    assert "/open-finance/financial-report/318422557" in page
    only = text(open_client.get(UI + "/journal", query_string={"tenant": "acme",
                                                               "operation": "open_finance.create_token"}))
    expected = [e for e in entries if e["operation"] == "open_finance.create_token"]
    assert only.count('class="entry"') == len(expected) == 2
    assert "/financial-report/" not in only
    # every tenant at once, filtered by provider: acme's entries (no other tenant has any)
    all_of = text(open_client.get(UI + "/journal", query_string={"provider": "open_finance"}))
    assert all_of.count('class="entry"') == len(entries)
    assert world["secret"] not in all_of


def test_journal_pages_older_entries(open_client):
    build_world(open_client)
    for _ in range(JOURNAL_PAGE):
        open_client.get("/open-finance/v2/data/accounts", headers={"Authorization": "Bearer nope"})
    entries = open_client.get("/_sandbox/journal?tenant=acme&limit=5000").json["entries"]
    anonymous = open_client.get("/_sandbox/journal?tenant=_anonymous&limit=5000").json["entries"]
    first = text(open_client.get(UI + "/journal"))
    assert first.count('class="entry"') == JOURNAL_PAGE
    older = html.unescape(re.search(r'id="older" href="([^"]+)"', first).group(1))
    second = text(open_client.get(older))
    assert second.count('class="entry"') == len(entries) + len(anonymous) - JOURNAL_PAGE
    ids = re.findall(r'data-entry="([^"]+)"', first) + re.findall(r'data-entry="([^"]+)"', second)
    assert len(ids) == len(set(ids)) and ids == sorted(ids, reverse=True)


def test_journal_entry_shows_request_and_redacted_response(open_client):
    world = build_world(open_client)
    page = text(open_client.get(UI + "/journal", query_string={"tenant": "acme",
                                                               "operation": "open_finance.create_token"}))
    link = html.unescape(re.search(r'class="entry-link" href="([^"]+)"', page).group(1))
    entry = open_client.get(link)
    assert entry.status_code == 200
    body = text(entry)
    assert "&#34;userId&#34;: &#34;john@example.com&#34;" in body
    assert "&#34;clientSecret&#34;: &#34;[redacted]&#34;" in body
    assert "&#34;accessToken&#34;: &#34;[redacted]&#34;" in body
    assert world["secret"] not in body and world["access_token"] not in body
    assert 'id="verdict">valid' in body


def test_untrusted_bodies_render_inert(open_client):
    world = build_world(open_client)
    open_client.post("/open-finance/oauth/token", json={"userId": XSS, "clientId": "acme", "clientSecret": "x",
                                                        XSS: XSS})
    open_client.post("/open-finance/oauth/token", data=XSS, content_type="application/json")
    open_client.get("/open-finance/" + XSS)
    # an authenticated, invalid body: the validation errors quote the hostile value back
    bad = open_client.post("/open-finance/v2/connections", headers=world["auth"],
                           json={"includeFakeProviders": XSS, "redirectUrl": XSS, XSS: [XSS]})
    assert bad.status_code == 400
    assert any("<script>" in str(v) for e in open_client.get("/_sandbox/journal?tenant=acme").json["entries"]
               for v in (e["verdict"] or {}).values())
    pages = [text(open_client.get(UI + "/journal"))]
    links = re.findall(r'class="entry-link" href="([^"]+)"', pages[0])
    assert len(links) >= 6
    for link in links:
        pages.append(text(open_client.get(html.unescape(link))))
    pages.append(text(open_client.get(UI + "/collection", query_string={"tenant": "acme", "name": "journal"})))
    joined = "".join(pages)
    assert "<script" not in joined and "<img" not in joined
    assert "&lt;script&gt;alert(" in joined                  # shown, escaped
    assert "onerror=alert(1)&gt;" in joined
    assert ">invalid<" in pages[0]


def test_webhooks_page_lists_deliveries(open_client):
    world = build_world(open_client)
    record = open_client.get(f"/_sandbox/webhooks/{world['delivery']}?tenant=acme").json
    page = text(open_client.get(UI + "/webhooks"))
    row = re.search(rf'<tr id="delivery-{world["delivery"]}".*?</tr>', page, re.S).group(0)
    assert f">{record['status']}<" in row
    assert re.search(r'delivery-attempts">(\d+)<', row).group(1) == str(len(record["attempts"]))
    assert "http://127.0.0.1:9/hook" in row and 'class="redeliver"' in row
    detail = text(open_client.get(UI + f"/webhooks/{world['delivery']}", query_string={"tenant": "acme"}))
    assert record["payload"]["connectionId"] in detail


def test_scenarios_page_shows_every_magic_value(open_client):
    page = text(open_client.get(UI + "/scenarios"))
    scenarios = open_client.get("/_sandbox/scenarios").json
    assert set(scenarios) == set(re.findall(r'data-provider="([^"]+)"', page))
    for provider, rows in scenarios.items():
        table = re.search(rf'data-provider="{provider}">(.*?)</table>', page, re.S).group(1)
        assert table.count("<tr>") == len(rows) + 1
        for row in rows:
            if isinstance(row.get("value"), str):
                assert str(escape(row["value"])) in table, (provider, row["value"])


# --- actions change the state ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds", [90, 0.5, -30])
def test_advance_moves_the_clock_by_exactly_n_seconds(open_client, seconds):
    before = parse_instant(open_client.get("/_sandbox/clock").json["now"])
    resp = post_form(open_client, "/clock", {"action": "advance", "seconds": str(seconds)}, back=UI + "/journal")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(UI + "/journal")
    after = open_client.get("/_sandbox/clock").json["now"]
    assert after == isoformat(before + timedelta(seconds=seconds))


def test_freeze_set_resume_and_tenant_clock(open_client, wall):
    build_world(open_client)
    post_form(open_client, "/clock", {"action": "set", "at": "2030-01-01T00:00:00Z"})
    assert open_client.get("/_sandbox/clock").json["now"] == "2030-01-01T00:00:00.000Z"
    post_form(open_client, "/clock", {"action": "freeze", "at": ""})
    assert open_client.get("/_sandbox/clock").json["frozen"] is True
    wall.at += timedelta(seconds=5)
    assert open_client.get("/_sandbox/clock").json["now"] == "2030-01-01T00:00:00.000Z"
    post_form(open_client, "/clock", {"action": "unfreeze"})
    clock = open_client.get("/_sandbox/clock").json
    assert clock["frozen"] is False and clock["now"] == "2030-01-01T00:00:00.000Z"
    wall.at += timedelta(seconds=5)
    assert open_client.get("/_sandbox/clock").json["now"] == "2030-01-01T00:00:05.000Z"
    # a tenant's own clock moves alone
    post_form(open_client, "/clock", {"action": "advance", "seconds": "30", "tenant": "acme"})
    assert open_client.get("/_sandbox/clock?tenant=acme").json["now"] == "2030-01-01T00:00:35.000Z"
    assert open_client.get("/_sandbox/clock").json["now"] == "2030-01-01T00:00:05.000Z"
    post_form(open_client, "/clock", {"action": "reset", "tenant": "acme"})
    assert open_client.get("/_sandbox/clock?tenant=acme").json["now"] == "2030-01-01T00:00:05.000Z"


@pytest.mark.parametrize("data, status", [
    ({"action": "advance", "seconds": "abc"}, 400), ({"action": "advance", "seconds": "nan"}, 400),
    ({"action": "advance", "seconds": "1e20"}, 400), ({"action": "set", "at": "yesterday"}, 400),
    ({"action": "set", "at": "9001-01-01T00:00:00Z"}, 400), ({"action": "set"}, 400),
    ({"action": "explode"}, 400), ({"action": "advance", "seconds": "1", "tenant": "nobody"}, 404),
    ({"action": "advance", "seconds": "1", "tenant": "_sandbox"}, 404)])
def test_bad_clock_input_is_a_page_not_a_move(open_client, data, status):
    before = open_client.get("/_sandbox/clock").json
    resp = post_form(open_client, "/clock", data)
    assert resp.status_code == status
    assert resp.mimetype == "text/html" and 'id="error-message"' in text(resp)
    assert open_client.get("/_sandbox/clock").json == before


def test_complete_and_fail_jobs(open_client):
    world = build_world(open_client)
    back = UI + "/tenant?name=acme"
    resp = post_form(open_client, f"/jobs/{world['job']}/complete", {"tenant": "acme"}, back=back)
    assert resp.status_code == 303 and resp.headers["Location"].endswith(back)
    assert open_client.get(f"/_sandbox/jobs/{world['job']}").json["state"] == "DONE"
    page = text(open_client.get(back))
    row = re.search(rf'<tr id="job-{world["job"]}".*?</tr>', page, re.S).group(0)
    assert ">DONE<" in row and "job-complete" not in row
    # failing a finished job is a conflict, shown as a page
    assert post_form(open_client, f"/jobs/{world['job']}/fail", {"tenant": "acme"}).status_code == 409

    auth = world["auth"]
    second = open_client.post("/open-finance/financial-report/318422557", headers=auth).json["jobId"]
    post_form(open_client, f"/jobs/{second}/fail", {"message": "bank down"})
    job = open_client.get(f"/_sandbox/jobs/{second}").json
    assert job["state"] == "FAILED" and job["error"]["message"] == "bank down"

    third = open_client.post("/open-finance/financial-report/318422557", headers=auth).json["jobId"]
    before = open_client.get(f"/_sandbox/jobs/{third}").json
    post_form(open_client, f"/jobs/{third}/advance", {"tenant": "acme"})
    after = open_client.get(f"/_sandbox/jobs/{third}").json
    assert after["step"] == before["step"] + 1 and after["state"] == before["states"][before["step"] + 1]


@pytest.mark.parametrize("outcome, status", [("success", "SUCCEEDED"), ("cancel", "CANCELLED"),
                                             ("error", "FAILED")])
def test_complete_flows(open_client, outcome, status):
    world = build_world(open_client)
    resp = post_form(open_client, f"/flows/{world['flow']}/complete", {"outcome": outcome, "tenant": "acme"})
    assert resp.status_code == 303
    flow = open_client.get(f"/_sandbox/flows/{world['flow']}").json
    assert flow["status"] == status and flow["outcome"] == outcome
    page = text(open_client.get(UI + "/tenant", query_string={"name": "acme"}))
    row = re.search(rf'<tr id="flow-{world["flow"]}".*?</tr>', page, re.S).group(0)
    assert f">{status}<" in row and 'value="success"' not in row
    again = post_form(open_client, f"/flows/{world['flow']}/complete", {"outcome": "success"})
    assert again.status_code == 409
    assert post_form(open_client, f"/flows/{world['flow']}/complete", {"outcome": "maybe"}).status_code == 400


def test_redeliver_makes_a_new_attempt(open_client, recorder):
    world = build_world(open_client)
    before = open_client.get(f"/_sandbox/webhooks/{world['delivery']}?tenant=acme").json
    sends = len(recorder.sent)
    resp = post_form(open_client, f"/webhooks/{world['delivery']}/redeliver", {"tenant": "acme"},
                     back=UI + "/webhooks")
    assert resp.status_code == 303
    after = open_client.get(f"/_sandbox/webhooks/{world['delivery']}?tenant=acme").json
    assert len(after["attempts"]) == len(before["attempts"]) + 1
    assert len(recorder.sent) == sends + 1 and recorder.sent[-1][1] == "http://127.0.0.1:9/hook"


def test_actions_work_with_bearer_on_a_locked_dashboard(locked_client):
    world = build_world(locked_client, headers=BEARER)
    resp = post_form(locked_client, f"/jobs/{world['job']}/complete", {}, headers=BEARER)
    assert resp.status_code == 303
    assert locked_client.get(f"/_sandbox/jobs/{world['job']}", headers=BEARER).json["state"] == "DONE"


# --- bad ids and hostile input: a 404 page, never a 500 ----------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/tenant?name=nobody", "/tenant", "/collection?tenant=acme&name=nothing", "/collection?tenant=nobody&name=jobs",
    "/journal/entry?tenant=acme&id=nope", "/journal/entry?tenant=acme", "/journal?tenant=nobody",
    "/journal?provider=nobody", "/webhooks/nope?tenant=acme", "/webhooks/nope", "/webhooks?provider=x",
    "/no/such/page", "/tenant?name=%00%ff", "/journal/entry?tenant=acme&id=" + "x" * 5000])
def test_bad_ids_are_404_pages(open_client, path):
    build_world(open_client)
    resp = open_client.get(UI + path)
    assert resp.status_code in (400, 404), (path, resp.status_code)
    assert resp.mimetype == "text/html" and 'id="error-message"' in text(resp)


@pytest.mark.parametrize("path", ["/jobs/nope/complete", "/jobs/nope/fail", "/flows/nope/complete",
                                  "/webhooks/nope/redeliver", "/no/such/action"])
def test_bad_ids_in_actions_are_404_pages(open_client, path):
    build_world(open_client)
    resp = post_form(open_client, path, {"outcome": "success", "tenant": "acme"})
    assert resp.status_code == 404, (path, resp.status_code)
    assert resp.mimetype == "text/html"


def test_unknown_job_action_is_404_and_changes_nothing(open_client):
    world = build_world(open_client)
    resp = post_form(open_client, f"/jobs/{world['job']}/explode", {})
    assert resp.status_code == 404
    assert open_client.get(f"/_sandbox/jobs/{world['job']}").json["state"] == "RUNNING"


@pytest.mark.parametrize("back", ["https://evil.example/x", "//evil.example/x", "/open-finance/x", "/_sandbox/uix",
                                  "/_sandbox/ui//evil.example", "/_sandbox/ui\\x"])
def test_actions_never_redirect_off_the_dashboard(open_client, back):
    resp = post_form(open_client, "/clock", {"action": "advance", "seconds": "1"}, back=back)
    assert resp.status_code == 303
    assert resp.headers["Location"] in (UI + "/", "http://localhost" + UI + "/")


# --- every store backend ----------------------------------------------------------------------------------------
def test_collections_are_listed_on_every_store(any_store, wall, recorder):
    """The tenant page lists a tenant's collections with their counts on memory, SQLite and Redis stores."""
    client = create_app({"SEED": 7, "ADMIN_TOKEN": ""}, store=any_store, system_clock=wall,
                        webhook_sender=recorder).test_client()
    world = build_world(client)
    for _ in range(3):
        client.get("/open-finance/v2/data/accounts", headers=world["auth"])
    page = text(client.get(UI + "/tenant", query_string={"name": "acme"}))
    counts = {k: int(v) for k, v in re.findall(r'name=([^"&]+)">[^<]+</a></td><td class="num">(\d+)<', page)}
    assert counts["jobs"] == len(client.get("/_sandbox/jobs?tenant=acme").json["jobs"])
    assert counts["journal"] == len(client.get("/_sandbox/journal?tenant=acme&limit=5000").json["entries"])
    assert counts["webhooks"] == len(client.get("/_sandbox/webhooks?tenant=acme").json["deliveries"])
    assert counts["open_finance.connections"] == 2     # the report's provisioned one and the journey's
    collection = client.get(UI + "/collection", query_string={"tenant": "acme", "name": "open_finance.connections"})
    assert collection.status_code == 200 and text(collection).count('class="item-key"') == 2


def test_sub_tenants_are_listed_and_open(open_client):
    """finoOS TenantID sub-tenants ("<client tenant>/<name>") have pages of their own."""
    token = open_client.post("/fino/api/auth", data={"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                                                     "grant_type": "client_credentials"}).json["access_token"]
    created = open_client.post("/fino/api/users", json={"type": "person", "customUserID": "0815"},
                               headers={"Authorization": f"Bearer {token}", "TenantID": "shop-1"})
    assert created.status_code in (200, 201), created.data
    nested = [t for t in open_client.application.extensions["sandbox"].store.tenants() if "/" in t]
    assert nested
    overview = text(open_client.get(UI + "/"))
    for name in nested:
        assert f'data-tenant="{escape(name)}"' in overview
        page = open_client.get(UI + "/tenant", query_string={"name": name})
        assert page.status_code == 200 and str(escape(name)) in text(page)
    parent = text(open_client.get(UI + "/tenant", query_string={"name": "sandbox-client"}))
    assert "Sub-tenants" in parent


HOSTILE = ["", " ", "acme", "_sandbox", "_anonymous", "x" * 3000, "%00", "\u202e\u0000", "../..", "acme/../x",
           "<script>", "a&b=c"]


def test_hostile_query_values_never_give_a_500(open_client):
    build_world(open_client)
    pages = ["/", "/tenant", "/collection", "/journal", "/journal/entry", "/webhooks", "/webhooks/x", "/scenarios",
             "/login"]
    for page in pages:
        for value in HOSTILE:
            query = {k: value for k in ("name", "tenant", "id", "after", "provider", "operation", "next")}
            resp = open_client.get(UI + page, query_string=query)
            assert resp.status_code < 500, (page, value, resp.status_code)
            assert resp.mimetype == "text/html", (page, value, resp.mimetype)
        # bytes that are not UTF-8, and an encoded lone surrogate
        for raw in ("tenant=%ff%fe&name=%ff&id=%c3", "tenant=%ed%b3%bf&name=%ed%b3%bf&after=%ed%b3%bf"):
            resp = open_client.get(UI + page, query_string=raw)
            assert resp.status_code < 500, (page, raw, resp.status_code)


def test_fino_analysis_runs_show_as_jobs_and_complete(open_client):
    """finoOS analysis runs are jobs (core/runs.py): listed with their correlation id, completed by the button."""
    token = open_client.post("/fino/api/auth", data={"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                                                     "grant_type": "client_credentials"}).json["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    uid = open_client.post("/fino/api/users", json={"type": "person", "customUserID": "42"}, headers=h).json
    uid = uid["user"]["userID"]
    assert open_client.post(f"/fino/api/users/{uid}/banking/test-account", json={}, headers=h).status_code < 300
    assert open_client.get(f"/fino/api/users/{uid}/banking/correlation", headers=h).status_code == 404   # running
    runs = [j for j in open_client.get("/_sandbox/jobs?tenant=sandbox-client").json["jobs"]
            if j["kind"] == "fino.analysis" and j["state"] != "DONE"]
    assert len(runs) == 1
    run = runs[0]
    page = text(open_client.get(UI + "/tenant", query_string={"name": "sandbox-client"}))
    row = re.search(rf'<tr id="job-{run["id"]}".*?</tr>', page, re.S).group(0)
    assert f"<code>{run['data']['run']}</code>" in row and f">{run['state']}<" in row
    post_form(open_client, f"/jobs/{run['id']}/complete", {"tenant": "sandbox-client"})
    assert open_client.get(f"/_sandbox/jobs/{run['id']}").json["state"] == "DONE"
    assert open_client.get(f"/fino/api/users/{uid}/banking/correlation", headers=h).status_code == 200
