"""Issue 7, "No 500, no unbounded work": hostile but well-formed-looking input gets the provider's 4xx envelope,
quickly, and changes nothing stored. In-process; the served chunked-body checks are in test_trust_input_served.py
and the every-operation sweep in test_trust_input_fuzz.py."""
from __future__ import annotations

import base64
import io
import json
import time
from datetime import datetime, timezone

import pytest
from werkzeug.test import EnvironBuilder

from sandbox import create_app
from sandbox.core.clock import MAX_INSTANT, Clock, add_seconds, from_timestamp, isoformat, parse_instant
from sandbox.core.store import MemoryStore
from sandbox.core.validation import MAX_JSON_DEPTH, json_depth_exceeds, lone_surrogate_at

from .conftest import FakeWall

BASIC = {"Authorization": "Basic " + base64.b64encode(b"sandbox-client:sandbox-secret").decode()}
CALLBACK = "https://my-app.example.com/callback"
JSON = "application/json"


@pytest.fixture
def app(wall):
    return create_app({"SEED": 7, "JOB_DELAY": 0}, store=MemoryStore(), system_clock=wall)


def dump(app) -> dict:
    """Every stored document except the journal and id sequences (what a rejected request must not change)."""
    data = app.extensions["sandbox"].store._data
    return {k: dict(v) for k, v in data.items() if k[1] not in ("journal", "seq") and v}


def of_auth(client, user="trust@example.com") -> dict:
    r = client.post("/open-finance/oauth/token", json={"userId": user, "clientId": "sandbox-client",
                                                        "clientSecret": "sandbox-secret"})
    assert r.status_code == 200, r.data
    return {"Authorization": f"Bearer {r.json['accessToken']}"}


def nested(depth: int, leaf: str = "1") -> str:
    """JSON text nesting ``depth`` levels of alternating arrays and objects."""
    opens = "".join('{"a":' if i % 2 else "[" for i in range(depth))
    closes = "".join("}" if i % 2 else "]" for i in reversed(range(depth)))
    return opens + leaf + closes


# --- 1. deep JSON -------------------------------------------------------------------------------------------------
def test_depth_helper_counts_levels_and_ignores_brackets_in_strings():
    assert not json_depth_exceeds(nested(MAX_JSON_DEPTH).encode())
    assert json_depth_exceeds(nested(MAX_JSON_DEPTH + 1).encode())
    assert not json_depth_exceeds(json.dumps({"s": "[" * 500 + '\\"{' * 100}).encode())
    assert json.loads(nested(MAX_JSON_DEPTH))   # the helper's text is valid JSON


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, 1000, 100_000])
def test_deep_json_gets_the_open_finance_400_quickly(app, depth):
    client = app.test_client()
    before = dump(app)
    started = time.perf_counter()
    r = client.post("/open-finance/oauth/token", data=nested(depth), content_type=JSON)
    assert time.perf_counter() - started < 2
    assert r.status_code == 400 and r.json["type"] == "CLIENT_ERROR", r.data
    assert "nest" in r.json["message"], r.json
    assert dump(app) == before


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, 100_000])
def test_deep_json_gets_the_nrich_400_on_finleap(app, depth):
    client = app.test_client()
    body = '{"redirect_uri":"%s","state":%s}' % (CALLBACK, nested(depth, '"x"'))
    r = client.post("/finleap/onetime/income-report", data=body, content_type=JSON, headers=BASIC)
    assert r.status_code == 400 and r.json["error"]["code"] == 1000, r.data
    # sync credentials are a free-form object: 900 levels went through json.loads and broke jsonschema/the store
    link, token = finleap_connected(client)
    auth = {"Authorization": f"Bearer {token}"}
    access = client.get("/finleap/rest/accesses", headers=auth).json["accesses"][0]["id"]
    before = dump(app)
    r = client.post(f"/finleap/rest/accesses/{access}/syncs", headers=auth, content_type=JSON,
                    data='{"credentials":{"x":%s}}' % nested(depth))
    assert r.status_code == 400 and r.json["error"]["code"] == 1000, r.data
    assert dump(app) == before


def test_json_at_the_depth_limit_is_accepted(app):
    client = app.test_client()
    link, token = finleap_connected(client)
    auth = {"Authorization": f"Bearer {token}"}
    access = client.get("/finleap/rest/accesses", headers=auth).json["accesses"][0]["id"]
    r = client.post(f"/finleap/rest/accesses/{access}/syncs", headers=auth, content_type=JSON,
                    data='{"credentials":{"x":%s}}' % nested(MAX_JSON_DEPTH - 2))   # body and credentials: 2 levels
    assert r.status_code == 201, r.data


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_deep_json_on_the_control_api_is_a_400_not_a_500(app, depth):
    r = app.test_client().post("/_sandbox/clients", data=nested(depth), content_type=JSON)
    assert r.status_code == 400, r.data
    assert r.json["error"]["status"] == 400


# --- 2. lone surrogates -------------------------------------------------------------------------------------------
def test_surrogate_helper_finds_lone_halves_only():
    assert lone_surrogate_at({"a": ["x", "\ud800"]}) == "/a/1"
    assert lone_surrogate_at({"\udfff": 1}) == "/\\udfff"
    assert lone_surrogate_at({"a": "\U0001F600 ok", "b": [1, None, True]}) is None


@pytest.mark.parametrize("value", ["\\ud800", "\\udfff", "x\\udbff", "\\ude00y"])
def test_lone_surrogate_in_an_open_finance_body_is_a_400_and_no_token(app, value):
    client = app.test_client()
    before = dump(app)
    body = '{"userId":"%s","clientId":"sandbox-client","clientSecret":"sandbox-secret"}' % value
    r = client.post("/open-finance/oauth/token", data=body, content_type=JSON)
    assert r.status_code == 400 and r.json["type"] == "CLIENT_ERROR", r.data
    assert "userId" in r.json["message"] and "surrogate" in r.json["message"]
    assert dump(app) == before


def test_lone_surrogate_in_a_finleap_body_value_or_key_is_a_400(app):
    client = app.test_client()
    before = dump(app)
    r = client.post("/finleap/onetime/income-report", content_type=JSON, headers=BASIC,
                    data='{"redirect_uri":"%s","state":"\\ud800"}' % CALLBACK)
    assert r.status_code == 400 and "surrogate" in r.json["error"]["data"]["state"][0], r.data
    r = client.post("/finleap/onetime/income-report", content_type=JSON, headers=BASIC,
                    data='{"redirect_uri":"%s","\\udc00":1}' % CALLBACK)
    assert r.status_code == 400 and r.json["error"]["code"] == 1000, r.data
    assert dump(app) == before
    # the other side: a proper surrogate pair (an emoji) is ordinary text
    r = client.post("/finleap/onetime/income-report", content_type=JSON, headers=BASIC,
                    data='{"redirect_uri":"%s","state":"\\ud83d\\ude00"}' % CALLBACK)
    assert r.status_code == 201, r.data


def test_lone_surrogate_in_a_control_api_body_is_a_400(app):
    r = app.test_client().post("/_sandbox/clients", content_type=JSON, data='{"client_id":"a\\ud800"}')
    assert r.status_code == 400, r.data
    assert not any(c["client_id"].startswith("a") for c in app.extensions["sandbox"].auth.clients())


def _raw_wsgi(app, env) -> tuple[int, dict, dict]:
    """Call the WSGI app directly (werkzeug's test client itself cannot build these environs)."""
    out = {}

    def start_response(status, headers, exc_info=None):
        out["status"], out["headers"] = int(status.split()[0]), dict(headers)

    body = b"".join(app(env, start_response))
    return out["status"], out["headers"], json.loads(body)


def test_lone_surrogate_in_query_path_or_header_is_a_400(app):
    """No HTTP server hands these to WSGI (environ strings are latin-1), but an embedding or a test client can."""
    client = app.test_client()
    auth = of_auth(client)
    before = dump(app)
    env = EnvironBuilder(path="/open-finance/financial-report/x", method="POST", headers=auth).get_environ()
    env["PATH_INFO"] = "/open-finance/financial-report/\ud800"
    status, _, body = _raw_wsgi(app, env)
    assert status == 400 and body["code"] == "INVALID_REQUEST", body
    env = EnvironBuilder(path="/open-finance/financial-report/01M8KRHFTAJKB334SF6CMGW3A3", headers=auth).get_environ()
    env["QUERY_STRING"] = "withPdf=\ud800"
    status, _, body = _raw_wsgi(app, env)
    assert status == 400 and body["code"] == "INVALID_REQUEST", body
    env = EnvironBuilder(path="/finleap/onetime/income-report", method="POST", headers=BASIC, json={
        "redirect_uri": CALLBACK}).get_environ()
    env["HTTP_X_NOTE"] = "a\udc80"
    status, _, body = _raw_wsgi(app, env)
    assert status == 400 and body["error"]["data"] == {"headers": ["Must not contain a lone surrogate."]}, body
    assert dump(app) == before


# --- 3. Open Finance report with the clock moved far ---------------------------------------------------------------
def _report(client, auth) -> dict:
    job = client.post("/open-finance/financial-report/318422557", headers=auth)
    assert job.status_code == 200, job.data
    r = client.get(f"/open-finance/financial-report/{job.json['jobId']}?withPdf=1", headers=auth)
    assert r.status_code == 200 and r.json["status"] == "DONE", r.data
    return r.json["financialReport"]


def _move(client, **body):
    """Move the global clock; instants past the control API's range (year 9000) are set on the clock itself."""
    if "at" in body and body["at"] >= "9001":
        client.application.extensions["sandbox"].clock.set(parse_instant(body["at"]))
        return
    r = client.post("/_sandbox/clock/set" if "at" in body else "/_sandbox/clock/advance", json=body)
    assert r.status_code == 200, r.data


def test_report_before_every_booking_covers_no_months(app):
    """open_finance.md s.5: the report is built from the data that exists when the job is created. With the clock
    moved back before the first booking no month is covered: no monthly rows, averages 0 (not 0/0 -> 500)."""
    client = app.test_client()
    auth = of_auth(client)
    first = _report(client, auth)
    assert first["yearMonthBalance"]
    _move(client, seconds=-500 * 86400)
    report = _report(client, of_auth(client))
    tio = report["totalIncomesOutcome"]
    assert report["yearMonthBalance"] == [] and report["creditCardOutcomes"] == []
    assert (tio["sumIncomePerMonth"], tio["sumExpansesPerMonth"], tio["sumNetIncomePerMonth"]) == (0, 0, 0)
    assert all(r["amount"] == 0 for r in tio["regularIncomeSources"])
    assert all(r["avgFee"] == 0 for r in report["monthlyAverageProviderFees"])


def test_report_a_few_months_back_still_averages_complete_months(app):
    client = app.test_client()
    auth = of_auth(client)
    _report(client, auth)
    _move(client, seconds=-200 * 86400)
    report = _report(client, of_auth(client))
    months = [r["yearMonth"] for r in report["yearMonthBalance"]]
    assert 4 <= len(months) <= 8 and months[0] == report["currentDate"][:7]
    assert report["totalIncomesOutcome"]["sumIncomePerMonth"] > 0


@pytest.mark.parametrize("at", ["2225-06-15T10:00:00Z", "9999-12-30T12:00:00Z"])
def test_report_far_in_the_future_is_bounded(app, at):
    client = app.test_client()
    _report(client, of_auth(client))
    _move(client, at=at)
    started = time.perf_counter()
    report = _report(client, of_auth(client))
    assert time.perf_counter() - started < 5
    months = [r["yearMonth"] for r in report["yearMonthBalance"]]
    assert months[0] == at[:7] and len(months) == 120     # the sandbox's report window (reports.py)
    assert report["totalIncomesOutcome"]["sumIncomePerMonth"] == 0   # no bookings in the last ten years


# --- 4. the end of time ----------------------------------------------------------------------------------------
def test_add_seconds_saturates_at_both_ends():
    top = parse_instant("9999-12-31T23:59:00Z")
    assert add_seconds(top, 30) == parse_instant("9999-12-31T23:59:30Z")
    assert add_seconds(top, 86400) == MAX_INSTANT
    assert add_seconds(top, 1e300) == MAX_INSTANT and add_seconds(top, float("inf")) == MAX_INSTANT
    assert add_seconds(parse_instant("0001-01-01T00:00:10Z"), -60).year == 1
    assert isoformat(MAX_INSTANT) == "9999-12-31T23:59:59.999Z"
    assert parse_instant(isoformat(MAX_INSTANT)) <= MAX_INSTANT
    with pytest.raises(ValueError):
        add_seconds(top, float("nan"))


def test_a_running_clock_past_year_9999_saturates_instead_of_overflowing():
    wall = FakeWall(datetime(2025, 1, 1, tzinfo=timezone.utc))
    clock = Clock(MemoryStore(), system=wall)
    clock.set(parse_instant("9999-12-31T23:59:59Z"))
    wall.at = datetime(2026, 1, 1, tzinfo=timezone.utc)   # a year of wall time later
    assert clock.now() == MAX_INSTANT
    clock.advance(10 ** 12)
    assert clock.now() == MAX_INSTANT
    clock.advance(-(10 ** 13))
    assert clock.now().year == 1


def test_from_timestamp_saturates():
    assert from_timestamp(0) == parse_instant("1970-01-01T00:00:00Z")
    assert from_timestamp(253402300799 + 3600) == MAX_INSTANT


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59Z", "9999-12-31T00:00:00Z"])
def test_open_finance_at_the_end_of_time_does_not_500(app, at):
    """A first report at the end of time: token expiry saturates, the ledger's December 9999 needs no January
    10000, and its centuries of salary growth need more than 28 digits of Decimal precision (reports.py)."""
    client = app.test_client()
    _move(client, at=at)
    r = client.post("/open-finance/oauth/token", json={"userId": "late@example.com", "clientId": "sandbox-client",
                                                        "clientSecret": "sandbox-secret"})
    assert r.status_code == 200, r.data
    report = _report(client, {"Authorization": f"Bearer {r.json['accessToken']}"})
    assert report["yearMonthBalance"][0]["yearMonth"] == "9999-12"


def test_finleap_link_at_the_end_of_time_does_not_500(app):
    client = app.test_client()
    _move(client, at="9999-12-31T23:59:59Z")
    r = client.post("/finleap/onetime/income-report", json={"redirect_uri": CALLBACK}, headers=BASIC)
    assert r.status_code < 500, r.data


# --- 5. numeric bounds --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field,value,ok", [
    ("reporting_period", 24, True), ("reporting_period", 25, False), ("reporting_period", 24_000, False),
    ("reporting_period", 10 ** 30, False), ("sync_period", 730, True), ("sync_period", 731, False),
    ("sync_period", 10 ** 30, False),
])
def test_finleap_reporting_and_sync_periods_are_bounded(app, field, value, ok):
    client = app.test_client()
    r = client.post("/finleap/onetime/income-report", json={"redirect_uri": CALLBACK, field: value}, headers=BASIC)
    if ok:
        assert r.status_code == 201, r.data
    else:
        assert r.status_code == 400, r.data
        maximum = {"reporting_period": 24, "sync_period": 730}[field]
        assert r.json["error"]["data"][field] == [f"Must be less than or equal to {maximum}."]


def _numeric_fields(node, path=""):
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number") or (node.get("type") == "string" and "[0-9]+$" in node.get(
                "pattern", "") and "," not in node.get("pattern", "")):
            yield path, node
        for key, value in node.items():
            yield from _numeric_fields(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numeric_fields(value, f"{path}/{i}")


@pytest.mark.parametrize("provider", ["finleap", "open_finance"])
def test_every_numeric_request_field_has_a_maximum(app, provider):
    """Request bodies and queries: every number declares ``maximum``, every digit string ``maxLength``."""
    schemas = app.extensions["sandbox"].schemas
    unbounded = []
    for sid, schema in schemas.schemas.items():
        if f"/{provider}/" not in sid or not sid.endswith((".request.json", ".query.json", ".headers.json")):
            continue
        for path, node in _numeric_fields(schema):
            if "maximum" not in node and "exclusiveMaximum" not in node and "maxLength" not in node:
                unbounded.append(sid.rsplit("/", 1)[1] + path)
    assert not unbounded, unbounded


# --- 6. bodies over the limit ---------------------------------------------------------------------------------------
class CountingStream(io.BytesIO):
    """The request body as the server hands it over, counting what the app reads."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, size=-1):
        out = super().read(size)
        self.taken += len(out)
        return out

    def readline(self, size=-1):
        out = super().readline(size)
        self.taken += len(out)
        return out


def _chunked(client, path, size, headers=None, mimetype=JSON):
    stream = CountingStream(b"[" * size)
    env = EnvironBuilder(path=path, method="POST", headers={"Transfer-Encoding": "chunked",
                                                            "Content-Type": mimetype, **(headers or {})}).get_environ()
    env.pop("CONTENT_LENGTH", None)
    env["wsgi.input"], env["wsgi.input_terminated"] = stream, True   # what werkzeug's and gunicorn's servers set
    return client.open(env), stream


LIMIT = 1024 * 1024


@pytest.mark.parametrize("path,headers,check", [
    ("/open-finance/oauth/token", None, lambda r: r.json == {"type": "CLIENT_ERROR", "message": "request entity too large"}),
    ("/finleap/onetime/income-report", BASIC, lambda r: r.json["error"]["code"] == 1010),
    ("/open-finance/financial-report/318422557", None, lambda r: r.json["code"] == "INVALID_REQUEST"),
    ("/_sandbox/clients", None, lambda r: r.json["error"]["status"] == 413),
])
def test_chunked_body_over_the_limit_is_a_413_and_not_read_further(app, path, headers, check):
    client = app.test_client()
    before = dump(app)
    r, stream = _chunked(client, path, 3 * LIMIT, headers)
    assert r.status_code == 413, r.data
    assert check(r), r.data
    assert stream.taken <= LIMIT + 64 * 1024
    assert dump(app) == before


def test_chunked_body_at_the_limit_is_read_whole(app):
    client = app.test_client()
    body = json.dumps({"redirect_uri": CALLBACK, "state": ""}).encode()
    body = body[:-2] + b" " * (LIMIT - len(body)) + body[-2:]
    assert len(body) == LIMIT
    stream = CountingStream(body)
    env = EnvironBuilder(path="/finleap/onetime/income-report", method="POST",
                         headers={"Transfer-Encoding": "chunked", "Content-Type": JSON, **BASIC}).get_environ()
    env.pop("CONTENT_LENGTH", None)
    env["wsgi.input"], env["wsgi.input_terminated"] = stream, True
    r = client.open(env)
    assert r.status_code == 201, r.data
    r, _ = _chunked(client, "/finleap/onetime/income-report", LIMIT + 1, BASIC)
    assert r.status_code == 413, r.data


def test_declared_content_length_over_the_limit_is_a_413_without_reading(app):
    client = app.test_client()
    stream = CountingStream(b"[" * (LIMIT + 1))
    env = EnvironBuilder(path="/open-finance/oauth/token", method="POST", content_type=JSON).get_environ()
    env["wsgi.input"], env["CONTENT_LENGTH"] = stream, str(LIMIT + 1)
    r = client.open(env)
    assert r.status_code == 413 and r.json["message"] == "request entity too large", r.data
    assert stream.taken == 0


# --- 7. 405 carries Allow ---------------------------------------------------------------------------------------
def test_405_carries_allow_on_finleap_and_the_control_api(app):
    client = app.test_client()
    r = client.put("/finleap/onetime/income-report", headers=BASIC)
    assert r.status_code == 405 and r.json["error"]["code"] == 1005
    assert "POST" in [m.strip() for m in r.headers["Allow"].split(",")]
    r = client.delete("/_sandbox/health")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


def test_open_finance_keeps_express_404_for_a_known_path_and_still_says_allow(app):
    """Express answers an unknown method with its 404 (open_finance.md s.4); RFC 9110 s.10.2.1 lets any response
    carry Allow, so the sandbox keeps the provider's status and body and adds the header."""
    r = app.test_client().put("/open-finance/oauth/token")
    assert r.status_code == 404 and r.json == {"type": "CLIENT_ERROR", "message": "Route or entity not found"}
    assert "POST" in r.headers["Allow"]
    r = app.test_client().put("/open-finance/no-such-route")
    assert r.status_code == 404 and "Allow" not in r.headers


# --- 8. links use the public base URL ---------------------------------------------------------------------------
def finleap_connected(client, host=None) -> tuple[dict, str]:
    """A completed widget flow (skipped through the control API) and its access token."""
    headers = {**BASIC, **({"Host": host} if host else {})}
    link = client.post("/finleap/onetime/income-report", json={"redirect_uri": CALLBACK, "state": "s"}, headers=headers)
    assert link.status_code == 201, link.data
    done = client.post(f"/_sandbox/flows/{link.json['id']}/complete", json={"outcome": "success"})
    assert done.status_code == 200, done.data
    code = dict(p.split("=", 1) for p in done.json["redirect_url"].split("?", 1)[1].split("&"))["code"]
    r = client.post("/finleap/auth/token", json={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": CALLBACK}, headers=BASIC)
    assert r.status_code == 200, r.data
    return link.json, r.json["access_token"]


def test_public_url_wins_over_a_forged_host_header(wall):
    app = create_app({"SEED": 7, "JOB_DELAY": 0, "PUBLIC_URL": "https://sandbox.example.com/"}, store=MemoryStore(),
                     system_clock=wall)
    client = app.test_client()
    link, token = finleap_connected(client, host="evil.example")
    assert link["location"].startswith("https://sandbox.example.com/finleap/widget/?token="), link
    report = client.get(f"/finleap/rest/income-reports/{link['id']}", headers={"Authorization": f"Bearer {token}",
                                                                                 "Host": "evil.example"})
    assert report.json["income"]["summary"]["href"].startswith("https://sandbox.example.com/finleap/rest/transactions")
    auth = {**of_auth(client), "Host": "evil.example:8080"}
    job = client.post("/open-finance/financial-report/318422557", headers=auth).json["jobId"]
    r = client.get(f"/open-finance/financial-report/{job}?withPdf=1", headers=auth)
    assert r.json["url"].startswith("https://sandbox.example.com/open-finance/assets/"), r.json["url"]


def test_without_public_url_only_a_loopback_host_is_trusted(app):
    client = app.test_client()
    for host, expected in [("localhost:5000", "http://localhost:5000/"), ("127.0.0.1:8080", "http://127.0.0.1:8080/"),
                           ("[::1]:9000", "http://[::1]:9000/"), ("evil.example", "http://127.0.0.1:8080/"),
                           ("localhost.evil.example", "http://127.0.0.1:8080/"), ("localhost@evil", "http://127.0.0.1:8080/")]:
        r = client.post("/finleap/onetime/income-report", json={"redirect_uri": CALLBACK}, headers={**BASIC, "Host": host})
        assert r.status_code == 201, r.data
        assert r.json["location"].startswith(expected + "finleap/widget/"), (host, r.json["location"])


def test_public_url_comes_from_the_environment_too(wall, monkeypatch):
    monkeypatch.setenv("SANDBOX_PUBLIC_URL", "https://env.example.com")
    app = create_app({"SEED": 7}, store=MemoryStore(), system_clock=wall)
    r = app.test_client().post("/finleap/onetime/income-report", json={"redirect_uri": CALLBACK}, headers=BASIC)
    assert r.json["location"].startswith("https://env.example.com/finleap/widget/?token="), r.json
