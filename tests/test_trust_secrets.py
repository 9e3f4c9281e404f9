"""Issue 7, "Isolation and secrets": credentials from a per-store secret key, wrong clients cannot burn codes,
signed expiring download links, redacted journal and server log, purged tokens, a per-tenant journal limit."""
from __future__ import annotations

import base64
import json
import logging
import threading
from datetime import datetime, timezone
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest

from sandbox import create_app
from sandbox.core.auth import Auth
from sandbox.core.clock import GLOBAL, Clock
from sandbox.core.ids import IdGen
from sandbox.core.journal import REDACTED, Journal, redact, redact_query
from sandbox.core.signing import InvalidToken, Signer
from sandbox.core.store import MemoryStore, SQLiteStore

from .conftest import FakeWall

FROZEN = datetime(2025, 4, 23, 10, 0, tzinfo=timezone.utc)
CB = "https://my-app.example.com/callback"
OF_CREDS = {"clientId": "sandbox-client", "clientSecret": "sandbox-secret"}


def basic(client_id="sandbox-client", secret="sandbox-secret") -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def make_app(store=None, **config):
    app = create_app({"SEED": 7, **config}, store=store or MemoryStore(), system_clock=FakeWall())
    app.extensions["sandbox"].clock.freeze(at=FROZEN)
    return app


def of_token(client, user="u1", creds=OF_CREDS) -> str:
    r = client.post("/open-finance/oauth/token", json={"userId": user, **creds})
    assert r.status_code == 200, r.data
    return r.json["accessToken"]


def finleap_link(client, headers=None) -> dict:
    r = client.post("/finleap/onetime/income-report", json={"redirect_uri": CB, "state": "s1"},
                    headers=headers or basic())
    assert r.status_code == 201, r.data
    return r.json


def finleap_code(app, headers=None) -> tuple[str, dict]:
    """Create a widget flow and finish it (as the control API does); returns (code, link)."""
    client, sb = app.test_client(), app.extensions["sandbox"]
    link = finleap_link(client, headers)
    _, _, url = sb.flows.complete(link["id"], "success", {}, provider="finleap")
    return dict(parse_qsl(urlsplit(url).query))["code"], link


def finleap_tokens(app, headers=None) -> dict:
    code, _ = finleap_code(app, headers)
    r = app.test_client().post("/finleap/auth/token", json={"grant_type": "authorization_code", "code": code,
                                                            "redirect_uri": CB}, headers=headers or basic())
    assert r.status_code == 200, r.data
    return r.json


def credentials(app) -> list[str]:
    """Every kind of credential the sandbox issues: OF token, finX page token, code, access and refresh token."""
    client = app.test_client()
    link = finleap_link(client)
    pair = finleap_tokens(app)
    code, _ = finleap_code(app)
    return [of_token(client), parse_qs(urlsplit(link["location"]).query)["token"][0], code,
            pair["access_token"], pair["refresh_token"]]


# --- 1. a secret key per store -----------------------------------------------------------------------------------
def test_credentials_do_not_derive_from_the_public_seed():
    """Two stores with the same seed and calls on a frozen clock: no credential can be computed from the seed."""
    a, b = credentials(make_app()), credentials(make_app())
    for x, y in zip(a, b):
        assert x != y


def test_the_secret_key_is_kept_in_the_store_so_workers_and_restarts_agree(tmp_path):
    path = str(tmp_path / "s.db")
    one, two = make_app(SQLiteStore(path)), make_app(SQLiteStore(path))   # two workers, one store
    link = finleap_link(one.test_client())
    assert two.test_client().get(link["location"].split("localhost", 1)[1]).status_code == 200
    assert one.extensions["sandbox"].secret.root() == two.extensions["sandbox"].secret.root()
    restarted = make_app(SQLiteStore(path))
    assert restarted.extensions["sandbox"].secret.root() == one.extensions["sandbox"].secret.root()


def test_a_configured_key_gives_byte_identical_credentials_and_another_key_others():
    first, again = credentials(make_app(SECRET_KEY="k1")), credentials(make_app(SECRET_KEY="k1"))
    assert first == again
    other = credentials(make_app(SECRET_KEY="k2"))
    assert all(x != y for x, y in zip(first, other))


def test_the_environment_sets_the_key():
    from sandbox.config import load_config
    assert load_config(environ={"SANDBOX_SECRET_KEY": "from-env"})["SECRET_KEY"] == "from-env"
    assert load_config(environ={})["SECRET_KEY"] == ""


def test_a_full_reset_keeps_the_key_but_issues_new_strings():
    app = make_app()
    sb = app.extensions["sandbox"]
    root, before = sb.secret.root(), credentials(app)
    sb.reset()
    sb.clock.freeze(at=FROZEN)
    assert sb.secret.root() == root
    after = credentials(app)
    assert all(x != y for x, y in zip(before, after))


def test_with_a_configured_key_a_reset_repeats_the_same_strings():
    app = make_app(SECRET_KEY="fixed")
    sb = app.extensions["sandbox"]
    before = credentials(app)
    sb.reset()
    sb.clock.freeze(at=FROZEN)
    assert credentials(app) == before


def test_a_tenant_reset_kills_the_old_page_tokens_even_when_flow_ids_repeat():
    app = make_app()
    sb, client = app.extensions["sandbox"], app.test_client()
    old = finleap_link(client)
    sb.reset("sandbox-client")
    sb.clock.freeze(at=FROZEN)
    new = finleap_link(client)
    assert new["id"] == old["id"]                     # data ids stay seed-derived...
    assert new["location"] != old["location"]         # ...credentials do not
    assert client.get(old["location"].split("localhost", 1)[1]).status_code == 400
    assert client.get(new["location"].split("localhost", 1)[1]).status_code == 200


def test_a_tenant_reset_leaves_other_tenants_page_tokens_alive():
    app = make_app()
    sb, client = app.extensions["sandbox"], app.test_client()
    sb.auth.create_client("org-b", "b-secret")
    theirs = finleap_link(client, basic("org-b", "b-secret"))
    sb.reset("sandbox-client")
    assert client.get(theirs["location"].split("localhost", 1)[1]).status_code == 200


def test_signer_refuses_tokens_without_expiry_and_tokens_signed_for_another_tenant():
    signer = Signer(b"k")
    with pytest.raises(ValueError):
        signer.encode({"flow_id": "f"}, "widget")       # every page token expires
    good = signer.encode({"flow_id": "f", "tenant": "a", "exp": 2_000_000_000}, "widget")
    head, payload, sig = good.split(".")
    relabelled = base64.urlsafe_b64encode(json.dumps({"flow_id": "f", "tenant": "b", "exp": 2_000_000_000})
                                          .encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        signer.decode(f"{head}.{relabelled}.{sig}", "widget")
    unsigned_exp = base64.urlsafe_b64encode(b'{"flow_id":"f"}').rstrip(b"=").decode()
    forged = Signer(b"k")._sign(f"{head}.{unsigned_exp}", "widget", None)
    with pytest.raises(InvalidToken):   # genuine signature but no exp: refused too
        signer.decode(f"{head}.{unsigned_exp}.{forged}", "widget")


def test_finleap_codes_and_sca_page_tokens_expire():
    app = make_app(SECRET_KEY="k")
    code, _ = finleap_code(app)
    claims = json.loads(base64.urlsafe_b64decode(code.split(".")[1] + "=="))
    assert claims["exp"] == int(FROZEN.timestamp()) + 3600


# --- 2. a wrong client cannot burn someone else's code or refresh token -----------------------------------------
def test_consume_checks_the_client_inside_the_atomic_update():
    store = MemoryStore()
    auth = Auth(store, Clock(store, FakeWall()), IdGen(store, 1))
    owner = auth.default_client()
    auth.issue("p", owner, "the-code", 60, kind="code")
    assert auth.consume("p", "the-code", "code", client_id="intruder") is None
    assert auth.lookup("p", "the-code", kind="code") is not None      # not burned
    assert auth.consume("p", "the-code", "code", client_id=owner["client_id"])["kind"] == "code"
    assert auth.consume("p", "the-code", "code", client_id=owner["client_id"]) is None


def test_a_wrong_client_presenting_a_code_or_refresh_token_does_not_burn_it():
    app = make_app()
    sb, client = app.extensions["sandbox"], app.test_client()
    sb.auth.create_client("mallory", "m-secret")
    code, _ = finleap_code(app)
    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": CB}
    r = client.post("/finleap/auth/token", json=grant, headers=basic("mallory", "m-secret"))
    assert r.status_code == 400
    r = client.post("/finleap/auth/token", json=grant, headers=basic())
    assert r.status_code == 200, r.data
    refresh = {"grant_type": "refresh_token", "refresh_token": r.json["refresh_token"]}
    assert client.post("/finleap/auth/token", json=refresh, headers=basic("mallory", "m-secret")).status_code == 400
    assert client.post("/finleap/auth/token", json=refresh, headers=basic()).status_code == 200


# --- 3. signed, expiring download links ---------------------------------------------------------------------------
def _pdf_url(app, **config) -> tuple[str, object]:
    client = app.test_client()
    h = {"Authorization": f"Bearer {of_token(client)}"}
    job = client.post("/open-finance/financial-report/318422557", headers=h).json["jobId"]
    app.extensions["sandbox"].jobs.complete("sandbox-client", job)
    url = client.get(f"/open-finance/financial-report/{job}?withPdf=1", headers=h).json["url"]
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}", client


def _s3_code(r) -> str:
    assert r.status_code == 403 and r.mimetype == "application/xml", (r.status_code, r.data)
    return r.data.decode().split("<Code>", 1)[1].split("</Code>", 1)[0]


def test_the_report_pdf_link_is_signed():
    app = make_app()
    link, client = _pdf_url(app)
    ok = client.get(link)
    assert ok.status_code == 200 and ok.data.startswith(b"%PDF-")
    path, query = link.split("?", 1)
    assert _s3_code(client.get(path)) == "AccessDenied"                       # no credentials: refused
    params = dict(parse_qsl(query))
    tampered = {**params, "signature": params["signature"][:-1] + ("A" if params["signature"][-1] != "A" else "B")}
    assert _s3_code(client.get(f"{path}?{urlencode(tampered)}")) == "SignatureDoesNotMatch"
    longer = {**params, "expires": str(int(params["expires"]) + 3600)}
    assert _s3_code(client.get(f"{path}?{urlencode(longer)}")) == "SignatureDoesNotMatch"
    other = path.replace(".pdf", "X.pdf")
    assert client.get(f"{other}?{query}").status_code == 403                   # signed for another path


def test_the_report_pdf_link_expires_after_an_hour_on_the_sandbox_clock():
    app = make_app()
    link, client = _pdf_url(app)
    sb = app.extensions["sandbox"]
    sb.clock.advance(3599)
    assert client.get(link).status_code == 200
    sb.clock.advance(1)
    r = client.get(link)
    assert _s3_code(r) == "AccessDenied" and b"Request has expired" in r.data


def test_the_report_pdf_link_validity_is_configurable():
    app = make_app(OPEN_FINANCE_PDF_LINK_TTL=60)
    link, client = _pdf_url(app)
    assert int(dict(parse_qsl(link.split("?", 1)[1]))["expires"]) == int(FROZEN.timestamp()) + 60


def test_url_signing_helpers_round_trip():
    signer = Signer(b"k")
    url = signer.sign_url("http://h/x/y.pdf?a=1", expires=100, tenant="t1", purpose="download")
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert signer.verify_url(parts.path, query, purpose="download", now=datetime.fromtimestamp(99, timezone.utc)) \
        == {"a": "1", "tenant": "t1", "expires": "100"}
    with pytest.raises(InvalidToken):
        signer.verify_url(parts.path, query, purpose="download", now=datetime.fromtimestamp(100, timezone.utc))
    with pytest.raises(InvalidToken):
        signer.verify_url(parts.path, {**query, "a": "2"}, purpose="download")
    with pytest.raises(InvalidToken):
        signer.verify_url(parts.path, query, purpose="other")


# --- 4. journal and server log ------------------------------------------------------------------------------------
def test_journal_redacts_page_tokens_and_codes_in_the_query_string():
    app = make_app()
    client = app.test_client()
    link = finleap_link(client)
    token = parse_qs(urlsplit(link["location"]).query)["token"][0]
    client.get(link["location"].split("localhost", 1)[1] + "&lang=de")
    raw = json.dumps(app.extensions["sandbox"].journal.read("sandbox-client", limit=100))
    assert token not in raw
    assert redact_query("token=abc&code=c&signature=s&state=keep&X-Amz-Signature=z&lang=de") == \
        f"token={REDACTED}&code={REDACTED}&signature={REDACTED}&state=keep&X-Amz-Signature={REDACTED}&lang=de"


@pytest.mark.parametrize("body", [
    b'{"clientSecret": "abc def ghi", bad',
    b'{"clientSecret": "abc def ghi',                 # unterminated: the tail is the secret
    b'{"clientSecret": "abc\\" def ghi"',             # an escaped quote inside the value
    b'{"x": 1, "client_secret":"abc def ghi" ,',
    b'client_secret=abc%20def%20ghi&grant_type=x&',
    b'{"password" : "abc def ghi", "userId": "u"',
])
def test_malformed_bodies_leak_no_tail_of_a_secret(body):
    j = Journal(MemoryStore())
    e = j.entry(at="x", provider="p", operation="p.op", method="POST", path="/x", query="", status=400,
                duration_ms=1.0, req_headers={}, req_body=body, req_type="application/json",
                resp_body=b"", resp_type=None, verdict={})
    shown = json.dumps(e["request"]["body"])
    for part in ("abc", "def", "ghi"):
        assert part not in shown, shown


def test_redaction_matches_whole_key_names_only():
    body = {"code": 1000, "tokenType": "Bearer", "sepa_remittance_info": "rent", "standingOrders": [1],
            "error": {"code": "INVALID_REQUEST", "message": "m"}, "country_code": "DE", "expiresIn": 1,
            "password": "p", "PIN": "1", "tan": "2", "otp": "3", "Client_Secret": "s", "accessToken": "a",
            "refresh_token": "r", "secret": "x", "x-api-secret": "y", "Authorization": "z", "cookie": "c"}
    out = redact(body)
    for kept in ("code", "tokenType", "sepa_remittance_info", "standingOrders", "error", "country_code", "expiresIn"):
        assert out[kept] == body[kept], kept
    for gone in ("password", "PIN", "tan", "otp", "Client_Secret", "accessToken", "refresh_token", "secret",
                 "x-api-secret", "Authorization", "cookie"):
        assert out[gone] == REDACTED, gone


def test_an_authorization_code_in_a_request_body_is_redacted_but_error_codes_are_kept():
    j = Journal(MemoryStore())
    e = j.entry(at="x", provider="p", operation="p.op", method="POST", path="/x", query="", status=400,
                duration_ms=1.0, req_headers={"X-Api-Secret": "s", "X-Api-Key": "k", "X-Request-Id": "r"},
                req_body=b'{"grant_type": "authorization_code", "code": "the-code"}', req_type="application/json",
                resp_body=b'{"error": {"code": 1000, "message": "bad"}, "code": 1000}', resp_type="application/json",
                verdict={})
    assert e["request"]["body"] == {"grant_type": "authorization_code", "code": REDACTED}
    assert e["response"]["body"] == {"error": {"code": 1000, "message": "bad"}, "code": 1000}
    assert e["request"]["headers"] == {"X-Api-Secret": REDACTED, "X-Api-Key": REDACTED, "X-Request-Id": "r"}


def test_client_secrets_are_stored_hashed():
    store = MemoryStore()
    auth = Auth(store, Clock(store, FakeWall()), IdGen(store, 1))
    created = auth.create_client("c1", "hunter2-secret")
    assert created["client_secret"] == "hunter2-secret"               # shown once, in the creating response
    assert "hunter2-secret" not in json.dumps(store.get(GLOBAL, "clients", "c1"))
    assert auth.authenticate_client("c1", "hunter2-secret")["client_id"] == "c1"
    assert auth.authenticate_client("c1", "hunter2-secreT") is None
    assert all("client_secret" not in c and "secret_hash" not in c for c in auth.clients())
    generated = auth.create_client()
    assert generated["client_secret"] and auth.authenticate_client(generated["client_id"], generated["client_secret"])


def test_clients_stored_in_clear_by_an_older_version_still_authenticate():
    store = MemoryStore()
    auth = Auth(store, Clock(store, FakeWall()), IdGen(store, 1))
    store.put(GLOBAL, "clients", "old", {"client_id": "old", "client_secret": "s", "tenant": "old", "scopes": None})
    assert auth.authenticate_client("old", "s")["client_id"] == "old"
    assert auth.authenticate_client("old", "x") is None


def test_the_server_access_log_redacts_token_query_parameters():
    from sandbox.core.journal import install_log_redaction
    install_log_redaction()
    install_log_redaction()   # idempotent
    seen = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    for name in ("werkzeug", "gunicorn.access"):
        logger, handler = logging.getLogger(name), Catch()
        logger.addHandler(handler)
        old = logger.level
        logger.setLevel(logging.INFO)
        try:
            logger.info('%s - - [%s] "%s" %s %s', "127.0.0.1", "now",
                        "GET /finleap/widget/?token=eyJsecret.part&lang=de HTTP/1.1", 200, "-")
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old)
    assert len(seen) == 2
    for line in seen:
        assert "eyJsecret" not in line and f"token={REDACTED}&lang=de" in line


# --- 5. purge and the journal limit --------------------------------------------------------------------------------
def test_expired_tokens_and_codes_are_purged_through_an_index():
    store, wall = MemoryStore(), FakeWall()
    clock = Clock(store, wall)
    auth = Auth(store, clock, IdGen(store, 1))
    client = auth.default_client()
    auth.issue("p", client, "short", 60)
    auth.issue("p", client, "code", 60, kind="code")
    auth.issue("p", client, "long", 3600)
    auth.issue("p", client, "forever", None)
    assert auth.purge_expired() == 0
    clock.advance(60)
    assert auth.purge_expired() == 2
    assert store.count(GLOBAL, "tokens") == 2 and auth.lookup("p", "long") and auth.lookup("p", "forever")
    assert auth.purge_expired() == 0


def test_purge_respects_a_tenant_clock_that_runs_behind():
    store, wall = MemoryStore(), FakeWall()
    clock = Clock(store, wall)
    auth = Auth(store, clock, IdGen(store, 1))
    lagging = auth.create_client("lag", "s")
    auth.issue("p", lagging, "t", 60)
    clock.advance(-3600, tenant="lag")          # the tenant's own test clock, an hour behind the global one
    clock.advance(120)
    assert auth.purge_expired() == 0 and auth.lookup("p", "t")
    clock.advance(3659, tenant="lag")
    assert auth.purge_expired() == 0
    clock.advance(1, tenant="lag")              # now 60 s after issue on its own clock
    assert auth.purge_expired() == 1


def test_sandbox_tick_purges():
    app = make_app()
    sb = app.extensions["sandbox"]
    of_token(app.test_client())
    sb.clock.advance(86400)
    assert sb.tick()["purged"] == 1
    assert sb.store.count(GLOBAL, "tokens") == 0


def test_the_journal_limit_holds_for_every_tenant():
    j = Journal(MemoryStore(), keep=10)
    entry = {"x": 1}
    for i in range(1500):
        j.record(f"t{i % 3}", entry)               # interleaved tenants: the 500th write is always t2's
    for t in ("t0", "t1", "t2"):
        assert j.store.count(t, "journal") <= 10, t
        assert len(j.read(t, limit=5000)) <= 10


def test_the_journal_limit_holds_under_concurrent_writes(tmp_path):
    j = Journal(SQLiteStore(str(tmp_path / "j.db")), keep=10)

    def write(tenant):
        for _ in range(300):
            j.record(tenant, {"x": 1})

    threads = [threading.Thread(target=write, args=(f"t{i % 4}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t in ("t0", "t1", "t2", "t3"):
        assert j.store.count(t, "journal") <= 10, t


def test_sca_page_tokens_carry_an_expiry_and_die_with_it():
    app = make_app()
    sb, client = app.extensions["sandbox"], app.test_client()
    link = finleap_link(client)
    _, _, url = sb.flows.complete(link["id"], "success", {"username": "figo01+sca"}, provider="finleap")
    code = dict(parse_qsl(urlsplit(url).query))["code"]
    tok = client.post("/finleap/auth/token", json={"grant_type": "authorization_code", "code": code},
                      headers=basic()).json["access_token"]
    bearer = {"Authorization": f"Bearer {tok}"}
    access = client.get("/finleap/rest/accesses", headers=bearer).json["accesses"][0]["id"]
    sync = client.post(f"/finleap/rest/accesses/{access}/syncs", json={}, headers=bearer).json
    for _ in range(5):   # QUEUED -> RUNNING -> AWAIT_AUTH, one step per poll
        polled = client.get(f"/finleap/rest/accesses/{access}/syncs/{sync['id']}", headers=bearer).json
        if polled.get("challenge"):
            break
    location = polled["challenge"]["location"]
    claims = json.loads(base64.urlsafe_b64decode(parse_qs(urlsplit(location).query)["token"][0].split(".")[1] + "=="))
    assert claims["exp"] == int(FROZEN.timestamp()) + 3600
    page = location.split("localhost", 1)[1]
    sb.clock.advance(3599)
    assert client.get(page).status_code == 200
    sb.clock.advance(1)
    assert client.get(page).status_code == 400


def test_a_lone_surrogate_secret_or_token_is_refused_not_a_crash():
    store = MemoryStore()
    auth = Auth(store, Clock(store, FakeWall()), IdGen(store, 1))
    auth.create_client("c1", "s1")
    assert auth.authenticate_client("sandbox-client", "\ud800") is None
    assert auth.authenticate_client("c1", "\ud800") is None
    assert auth.lookup("p", "\ud800") is None


def test_the_paging_cursor_secret_derives_from_the_secret_key():
    one, two = make_app(), make_app()
    assert one.extensions["sandbox"].cursor_secret("t") != two.extensions["sandbox"].cursor_secret("t")
    fixed = make_app(SECRET_KEY="k").extensions["sandbox"].cursor_secret("t")
    assert fixed == make_app(SECRET_KEY="k").extensions["sandbox"].cursor_secret("t")
