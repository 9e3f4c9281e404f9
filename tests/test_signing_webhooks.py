import base64
import hashlib
import hmac
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sandbox.core.clock import Clock
from sandbox.core.ids import IdGen
from sandbox.core.signing import InvalidToken, Signer
from sandbox.core.store import MemoryStore
from sandbox.core.errors import BadRequest, Conflict, NotFound
from sandbox.core.webhooks import Webhooks, http_sender, refusal, sign, verify_signature

from .conftest import FakeWall


def test_signed_tokens_round_trip_and_reject_forgery_and_expiry():
    signer = Signer(b"key-1")
    wall = FakeWall()
    token = signer.encode({"flow_id": "f", "exp": int(wall.at.timestamp()) + 60}, "widget")
    assert signer.decode(token, "widget", now=wall.at)["flow_id"] == "f"
    with pytest.raises(InvalidToken):
        signer.decode(token, "other-purpose")
    with pytest.raises(InvalidToken):
        Signer(b"key-2").decode(token, "widget")
    with pytest.raises(InvalidToken):
        signer.decode(token, "widget", now=wall.at + timedelta(seconds=60))
    head, payload, sig = token.split(".")
    for bad in (f"{head}.{payload}.{sig[:-1]}{'A' if sig[-1] != 'A' else 'E'}", f"{head}.{payload}x.{sig}",
                "not-a-token", "", None, "a.b", f"{head}.{payload}.{sig}."):
        with pytest.raises(InvalidToken):
            signer.decode(bad, "widget")


def test_every_signature_character_matters():
    signer = Signer(b"key-1")
    token = signer.encode({"x": 1, "exp": 2_000_000_000}, "p")
    head, payload, sig = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(len(sig)):
        changed = sig[:i] + alphabet[alphabet.index(sig[i]) ^ 1] + sig[i + 1:]
        with pytest.raises(InvalidToken):
            signer.decode(f"{head}.{payload}.{changed}", "p")


class Recorder:
    """A fake sender: records (method, url, body, headers) and answers from a list (None = connection error)."""

    def __init__(self, answers=()):
        self.answers, self.calls = list(answers), []

    def __call__(self, method, url, body, headers, timeout):
        self.calls.append((method, url, body, headers))
        answer = self.answers.pop(0) if self.answers else 200
        return (None, "ConnectionError: refused") if answer is None else (answer, None)


def outbox(answers=(), sender=None, store=None):
    store, wall = store or MemoryStore(), FakeWall()
    clock = Clock(store, wall)
    sender = sender or Recorder(answers)
    return Webhooks(store, clock, IdGen(store, 1), sender), clock, sender


def test_enqueue_sends_nothing_until_deliver_due():
    hooks, _, sender = outbox([204])
    record = hooks.enqueue("t", "p", "e", "http://127.0.0.1/x", {"a": 1}, headers={"User-Agent": "ua"})
    assert record["status"] == "pending" and record["attempts"] == [] and sender.calls == []
    assert hooks.deliver_due() == 1
    record = hooks.get("t", record["id"])
    assert record["status"] == "delivered" and len(record["attempts"]) == 1
    method, url, body, headers = sender.calls[0]
    assert (method, url, body) == ("POST", "http://127.0.0.1/x", b'{"a":1}')
    assert headers["User-Agent"] == "ua" and headers["Content-Type"] == "application/json"
    assert hooks.deliver_due() == 0 and len(sender.calls) == 1


def test_retries_with_backoff_on_the_clock_then_fails():
    hooks, clock, sender = outbox([500, None, 503])
    record = hooks.enqueue("t", "p", "e", "http://127.0.0.1/x", {})
    assert hooks.deliver_due() == 1
    record = hooks.get("t", record["id"])
    assert record["status"] == "pending" and record["attempts"][0]["status"] == 500
    clock.advance(9.999)
    assert hooks.deliver_due() == 0          # BACKOFF[1] = 10 s after enqueue: not due yet
    clock.advance(0.001)
    assert hooks.deliver_due() == 1
    record = hooks.get("t", record["id"])
    assert record["attempts"][1]["error"].startswith("ConnectionError") and record["status"] == "pending"
    clock.advance(49)
    assert hooks.deliver_due() == 0          # BACKOFF[2] = 60 s after enqueue
    clock.advance(1)
    assert hooks.deliver_due() == 1
    record = hooks.get("t", record["id"])
    assert record["status"] == "failed" and len(record["attempts"]) == 3
    clock.advance(3600)
    assert hooks.deliver_due() == 0           # failed deliveries are not retried by themselves
    assert hooks.redeliver("t", record["id"])["status"] == "delivered"   # the control API's redeliver is synchronous
    assert len(hooks.get("t", record["id"])["attempts"]) == 4 and len(sender.calls) == 4


def test_3xx_counts_only_when_the_provider_says_so():
    hooks, _, _ = outbox([302, 302])
    yes = hooks.enqueue("t", "p", "e", "http://127.0.0.1/x", {}, accept_3xx=True)
    no = hooks.enqueue("t", "p", "e", "http://127.0.0.1/x", {})
    assert hooks.deliver_due() == 2
    assert hooks.get("t", yes["id"])["status"] == "delivered" and hooks.get("t", no["id"])["status"] == "pending"


def test_provider_defaults_apply_to_its_deliveries_only():
    hooks, _, sender = outbox([302, 302])
    hooks.configure("finleap", accept_3xx=True, headers={"User-Agent": "finx-notification/1.0"})
    a = hooks.enqueue("t", "finleap", "e", "http://127.0.0.1/a", {})
    b = hooks.enqueue("t", "other", "e", "http://127.0.0.1/b", {})
    hooks.deliver_due()
    assert hooks.get("t", a["id"])["status"] == "delivered" and hooks.get("t", b["id"])["status"] == "pending"
    agents = {url: headers.get("User-Agent") for _, url, _, headers in sender.calls}
    assert agents == {"http://127.0.0.1/a": "finx-notification/1.0", "http://127.0.0.1/b": None}


def test_a_claimed_delivery_is_not_sent_twice():
    hooks, clock, sender = outbox([500])
    record = hooks.enqueue("t", "p", "e", "http://127.0.0.1/x", {})
    hooks.store.update("t", "webhooks", record["id"],
                       lambda r: {**r, "lease_until": (clock.now() + timedelta(seconds=30)).isoformat()})
    assert hooks.attempt("t", record["id"]) is None   # another worker holds the lease
    assert hooks.deliver_due() == 0
    assert sender.calls == []
    clock.advance(30)                                 # the lease ran out: the delivery is claimable again
    assert hooks.deliver_due() == 1 and len(sender.calls) == 1


def test_deliveries_of_every_tenant_are_due_through_the_global_index_but_stay_apart():
    hooks, _, sender = outbox()
    a = hooks.enqueue("ta", "p", "e", "http://127.0.0.1/a", {"n": 1})
    b = hooks.enqueue("tb", "p", "e", "http://127.0.0.1/b", {"n": 2})
    hooks.store.clear("tb")                           # tenant tb reset before its delivery went out
    assert hooks.deliver_due() == 1 and [c[1] for c in sender.calls] == ["http://127.0.0.1/a"]
    assert [r["id"] for r in hooks.list("ta")] == [a["id"]] and hooks.list("tb") == []
    with pytest.raises(NotFound):
        hooks.get("ta", b["id"])
    assert hooks.store.list("_sandbox", "webhooks_pending") == []


# ---- subscriptions -------------------------------------------------------------------------------------------

def test_subscription_crud():
    hooks, _, _ = outbox()
    sub = hooks.subscribe("t", "fino", url="https://hooks.example.com/a", events=["personcockpit"], method="put",
                          secret="s1", headers={"X-Team": "risk"}, owner="u1")
    assert sub["method"] == "PUT" and sub["events"] == ["personcockpit"] and sub["secret"] == "s1"
    assert hooks.get_subscription("t", "fino", sub["id"]) == sub
    assert hooks.subscriptions("t", "fino") == [sub]
    assert hooks.subscriptions("t", "fino", owner="u2") == [] and hooks.subscriptions("t", "finleap") == []
    assert hooks.subscriptions("other-tenant", "fino") == []
    with pytest.raises(NotFound):
        hooks.get_subscription("other-tenant", "fino", sub["id"])
    with pytest.raises(NotFound):
        hooks.get_subscription("t", "finleap", sub["id"])

    updated = hooks.update_subscription("t", "fino", sub["id"], url=None, secret=None, method="PATCH",
                                        auth={"type": "bearer", "token": "tok"})
    assert updated["url"] == sub["url"] and updated["secret"] == "s1"          # None = unchanged
    assert updated["method"] == "PATCH" and updated["auth"] == {"type": "bearer", "token": "tok"}
    assert updated["headers"] == {"X-Team": "risk"} and updated["events"] == ["personcockpit"]
    cleared = hooks.update_subscription("t", "fino", sub["id"], secret="", auth={})
    assert cleared["secret"] is None and cleared["auth"] is None and cleared["method"] == "PATCH"
    assert hooks.get_subscription("t", "fino", sub["id"]) == cleared

    with pytest.raises(Conflict):
        hooks.subscribe("t", "fino", url="https://x.example.com", events=["*"], sub_id=sub["id"])
    assert hooks.unsubscribe("t", "fino", sub["id"])["id"] == sub["id"]
    assert hooks.subscriptions("t", "fino") == []
    for call in (lambda: hooks.get_subscription("t", "fino", sub["id"]),
                 lambda: hooks.unsubscribe("t", "fino", sub["id"]),
                 lambda: hooks.update_subscription("t", "fino", sub["id"], url="https://y.example.com")):
        with pytest.raises(NotFound):
            call()


@pytest.mark.parametrize("bad", [
    {"events": []}, {"events": "personcockpit"}, {"events": [""]}, {"method": "PO ST"}, {"method": ""},
    {"auth": {"type": "digest"}}, {"auth": {"type": "basic", "username": "u"}}, {"headers": {"X": 1}},
    {"headers": {"X-A": "v\r\nX-Injected: 1"}}, {"headers": {"X A": "v"}},
    {"auth": {"type": "header", "name": "X-K", "value": "k\nX-B: 2"}},
    {"auth": {"type": "header", "name": "", "value": "k"}},
    {"url": ""}, {"signature": {"signed": "{t}"}}, {"signature": {"value": "v1={sig}"}},
    {"signature": {"encoding": "base32"}}])
def test_subscribe_rejects_bad_fields(bad):
    hooks, _, _ = outbox()
    fields = {"url": "https://hooks.example.com/a", "events": ["*"], **bad}
    with pytest.raises(BadRequest):
        hooks.subscribe("t", "fino", **fields)
    assert hooks.subscriptions("t", "fino") == []


def test_publish_reaches_matching_subscriptions_only():
    hooks, _, sender = outbox()
    every = hooks.subscribe("t", "fino", url="https://h.example.com/all", events=["*"])
    cockpit = hooks.subscribe("t", "fino", url="https://h.example.com/cockpit", events=["personcockpit", "banking"])
    mine = hooks.subscribe("t", "fino", url="https://h.example.com/u1", events=["personcockpit"], owner="u1")
    hooks.subscribe("t", "finleap", url="https://h.example.com/finleap", events=["*"])
    hooks.subscribe("t2", "fino", url="https://h.example.com/t2", events=["*"])

    def targets(deliveries):
        return sorted(d["sub_id"] for d in deliveries)

    assert targets(hooks.publish("t", "fino", "personcockpit", {}, owner="u1")) == \
        sorted([every["id"], cockpit["id"], mine["id"]])
    assert targets(hooks.publish("t", "fino", "personcockpit", {}, owner="u2")) == sorted([every["id"],
                                                                                            cockpit["id"]])
    assert targets(hooks.publish("t", "fino", "personcockpit", {})) == sorted([every["id"], cockpit["id"]])
    assert targets(hooks.publish("t", "fino", "contracts", {}, owner="u1")) == [every["id"]]
    assert hooks.publish("t", "nobody", "personcockpit", {}) == []
    assert sender.calls == []                                   # publishing only enqueues
    assert hooks.deliver_due() == 8 and len(sender.calls) == 8
    assert "https://h.example.com/t2" not in {c[1] for c in sender.calls}
    assert {s["id"] for s in hooks.subscriptions("t", "fino", event="banking")} == {every["id"], cockpit["id"]}


def test_payload_may_be_built_per_subscriber():
    hooks, _, sender = outbox()
    hooks.subscribe("t", "fino", url="https://h.example.com/a", events=["*"], secret="sa")
    hooks.subscribe("t", "fino", url="https://h.example.com/b", events=["*"])
    hooks.publish("t", "fino", "banking", lambda sub: {"event": "banking", "secret": sub["secret"]})
    hooks.deliver_due()
    assert {url: json.loads(body)["secret"] for _, url, body, _ in sender.calls} == \
        {"https://h.example.com/a": "sa", "https://h.example.com/b": None}


class Server:
    """A loopback receiver that answers every method (contract_tests' Receiver knows only POST and GET)."""

    def __init__(self, status=200):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                 "body": body})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_method_custom_headers_auth_and_signature_reach_a_real_receiver():
    server = Server()
    try:
        hooks, clock, _ = outbox(sender=http_sender)
        basic = hooks.subscribe("t", "fino", url=server.url + "/basic", events=["*"], method="PUT",
                                auth={"type": "basic", "username": "ann", "password": "pw:1"},
                                headers={"X-Custom": "c1"}, secret="whsec")
        bearer = hooks.subscribe("t", "fino", url=server.url + "/bearer", events=["*"], method="PATCH",
                                 auth={"type": "bearer", "token": "tok-9"})
        header = hooks.subscribe("t", "fino", url=server.url + "/header", events=["*"], method="GET",
                                 auth={"type": "header", "name": "X-Api-Token", "value": "k-7"})
        deliveries = hooks.publish("t", "fino", "banking", {"event": "banking", "n": 1})
        assert server.received == []
        assert hooks.deliver_due() == 3
        got = {r["path"]: r for r in server.received}
        assert {p: r["method"] for p, r in got.items()} == {"/basic": "PUT", "/bearer": "PATCH", "/header": "GET"}
        assert got["/basic"]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"ann:pw:1").decode()
        assert got["/basic"]["headers"]["X-Custom"] == "c1" and got["/basic"]["body"] == b'{"event":"banking","n":1}'
        assert got["/bearer"]["headers"]["Authorization"] == "Bearer tok-9"
        assert got["/header"]["headers"]["X-Api-Token"] == "k-7" and "Authorization" not in got["/header"]["headers"]
        signature = got["/basic"]["headers"]["X-Sandbox-Signature"]
        t = int(clock.now().timestamp())
        expected = hmac.new(b"whsec", f"{t}.".encode() + got["/basic"]["body"], hashlib.sha256).hexdigest()
        assert signature == f"t={t},v1={expected}"
        assert verify_signature("whsec", got["/basic"]["body"], signature)
        assert "X-Sandbox-Signature" not in got["/bearer"]["headers"]          # no secret, no signature
        logged = {d["sub_id"]: hooks.get("t", d["id"])["attempts"][0] for d in deliveries}
        assert logged[basic["id"]]["headers"]["Authorization"] == "[redacted]"
        assert logged[basic["id"]]["headers"]["X-Sandbox-Signature"] == signature
        assert logged[header["id"]]["headers"]["X-Api-Token"] == "[redacted]"
        assert logged[bearer["id"]]["method"] == "PATCH" and logged[bearer["id"]]["status"] == 200
    finally:
        server.close()


def test_signature_fails_when_body_secret_or_time_differ():
    body = b'{"event":"banking"}'
    name, value = sign("whsec", body, 1_700_000_000)
    assert name == "X-Sandbox-Signature" and verify_signature("whsec", body, value)
    assert not verify_signature("whsec", body.replace(b"banking", b"bankinG"), value)
    assert not verify_signature("whsec", body + b" ", value)
    assert not verify_signature("other", body, value)
    assert not verify_signature("whsec", body, value.replace("t=1700000000", "t=1700000001"))
    assert not verify_signature("whsec", body, None) and not verify_signature("whsec", body, "garbage")
    assert verify_signature("whsec", body, value, now=1_700_000_300, tolerance=300)
    assert not verify_signature("whsec", body, value, now=1_700_000_301, tolerance=300)


def test_signature_scheme_is_configurable_per_provider_and_subscription():
    hooks, _, sender = outbox()
    shopify = {"header": "X-Hook-Hmac", "signed": "{body}", "value": "{sig}", "encoding": "base64"}
    hooks.configure("acme", signature=shopify)
    hooks.configure("fino", signature=False)   # finoOS echoes the secret in the payload, no header (fino.md s.11)
    hooks.subscribe("t", "acme", url="https://h.example.com/acme", events=["*"], secret="k")
    hooks.subscribe("t", "acme", url="https://h.example.com/own", events=["*"], secret="k",
                    signature={"header": "X-Own"})
    hooks.subscribe("t", "fino", url="https://h.example.com/fino", events=["*"], secret="k")
    hooks.publish("t", "acme", "e", {"a": 1})
    hooks.publish("t", "fino", "e", {"a": 1})
    hooks.deliver_due()
    sent = {url: (body, headers) for _, url, body, headers in sender.calls}
    body, headers = sent["https://h.example.com/acme"]
    assert headers["X-Hook-Hmac"] == base64.b64encode(hmac.new(b"k", body, hashlib.sha256).digest()).decode()
    assert verify_signature("k", body, headers["X-Hook-Hmac"], scheme=shopify)
    assert not verify_signature("k", body + b"x", headers["X-Hook-Hmac"], scheme=shopify)
    body, headers = sent["https://h.example.com/own"]
    assert "X-Sandbox-Signature" not in headers and verify_signature("k", body, headers["X-Own"],
                                                                        scheme={"header": "X-Own"})
    assert not any("sig" in h.lower() or "hmac" in h.lower() for h in sent["https://h.example.com/fino"][1])


def test_a_rotated_secret_signs_the_retries():
    hooks, clock, sender = outbox([500, 200])
    sub = hooks.subscribe("t", "p", url="https://h.example.com/a", events=["*"], secret="old")
    hooks.publish("t", "p", "e", {})
    hooks.deliver_due()
    hooks.update_subscription("t", "p", sub["id"], secret="new")
    clock.advance(10)
    hooks.deliver_due()
    (_, _, b1, h1), (_, _, b2, h2) = sender.calls
    assert verify_signature("old", b1, h1["X-Sandbox-Signature"]) and not verify_signature("new", b1,
                                                                                             h1["X-Sandbox-Signature"])
    assert verify_signature("new", b2, h2["X-Sandbox-Signature"])
    assert h1["X-Sandbox-Signature"].startswith(f"t={int(clock.now().timestamp()) - 10},")


def test_deleting_a_subscription_cancels_its_pending_deliveries():
    hooks, clock, sender = outbox([500])
    sub = hooks.subscribe("t", "p", url="https://h.example.com/a", events=["*"])
    [delivery] = hooks.publish("t", "p", "e", {})
    hooks.deliver_due()
    hooks.unsubscribe("t", "p", sub["id"])
    clock.advance(10)
    assert hooks.deliver_due() == 1 and len(sender.calls) == 1
    record = hooks.get("t", delivery["id"])
    assert record["status"] == "cancelled" and "deleted" in record["attempts"][-1]["error"]
    clock.advance(3600)
    assert hooks.deliver_due() == 0 and len(sender.calls) == 1


# ---- delivery outside requests -------------------------------------------------------------------------------

def test_slow_receivers_are_attempted_concurrently(store):
    # Each send waits at a barrier for the other two; sent one after another the barrier would break (timeout).
    barrier = threading.Barrier(3, timeout=10)
    calls = []

    def slow(method, url, body, headers, timeout):
        calls.append(url)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return None, "not concurrent"
        return 200, None

    hooks, _, _ = outbox(sender=slow, store=store)   # memory and SQLite (one connection per pool thread)
    for n in range(3):
        hooks.subscribe("t", "p", url=f"https://slow{n}.example.com/h", events=["*"])
    deliveries = hooks.publish("t", "p", "e", {})
    assert calls == []
    assert hooks.deliver_due() == 3
    assert sorted(calls) == [f"https://slow{n}.example.com/h" for n in range(3)]
    assert [hooks.get("t", d["id"])["status"] for d in deliveries] == ["delivered"] * 3


def test_with_one_worker_sends_are_serial():
    # The other side of the concurrency test: one worker cannot get past a barrier of two, both sends fail.
    barrier = threading.Barrier(2, timeout=0.2)

    def slow(method, url, body, headers, timeout):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return None, "not concurrent"
        return 200, None

    store, wall = MemoryStore(), FakeWall()
    hooks = Webhooks(store, Clock(store, wall), IdGen(store, 1), slow, workers=1)
    first = hooks.enqueue("t", "p", "e", "https://a.example.com/h", {})
    second = hooks.enqueue("t", "p", "e", "https://b.example.com/h", {})
    hooks.deliver_due()
    assert hooks.get("t", first["id"])["attempts"][0]["error"] == "not concurrent"
    assert hooks.get("t", second["id"])["status"] == "pending"


def test_background_worker_delivers_without_a_tick():
    sent = threading.Event()

    def sender(method, url, body, headers, timeout):
        sent.set()
        return 200, None

    hooks, _, _ = outbox(sender=sender)
    record = hooks.enqueue("t", "p", "e", "https://h.example.com/a", {})
    worker = hooks.start_worker(interval=0.01)
    try:
        assert hooks.start_worker() is worker           # one worker per process
        assert sent.wait(10)
    finally:
        hooks.stop_worker(timeout=10)
    assert not worker.is_alive()
    assert hooks.get("t", record["id"])["status"] == "delivered"


def test_control_api_deliver_is_synchronous():
    hooks, _, sender = outbox([500, 200])
    a = hooks.enqueue("t", "p", "e", "https://h.example.com/a", {})
    b = hooks.enqueue("t", "p", "e", "https://h.example.com/b", {})
    done = hooks.deliver("t", [a["id"], b["id"]])
    assert [len(r["attempts"]) for r in done] == [1, 1] and len(sender.calls) == 2
    assert sorted(r["status"] for r in done) == ["delivered", "pending"]


def test_a_hanging_receiver_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)   # accepts the connection (backlog), never answers
    try:
        status, error = http_sender("POST", f"http://127.0.0.1:{listener.getsockname()[1]}/h", b"{}",
                                    {"Content-Type": "application/json"}, timeout=0.2)
        assert status is None and "Timeout" in error
    finally:
        listener.close()


def test_a_raising_sender_does_not_keep_the_lease():
    def broken(method, url, body, headers, timeout):
        raise RuntimeError("boom")

    hooks, clock, _ = outbox(sender=broken)
    record = hooks.enqueue("t", "p", "e", "https://h.example.com/a", {})
    assert hooks.deliver_due() == 1
    record = hooks.get("t", record["id"])
    assert record["attempts"][0]["error"] == "RuntimeError: boom" and record["lease_until"] is None


# ---- refused URLs --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/_sandbox", "http://127.0.0.1:8080/_sandbox/reset", "https://sandbox.example.com/_sandbox/",
    "http://localhost/_sandbox/clock/advance?x=1", "http://h.example.com//_sandbox/reset",
    "http://h.example.com/a/../_sandbox/reset", "http://h.example.com/%5Fsandbox/reset",
    "ftp://h.example.com/hook", "file:///etc/passwd", "javascript:alert(1)", "/relative/hook", "http:///nohost"])
def test_control_api_and_non_http_urls_are_refused_never_sent(url):
    hooks, _, sender = outbox()
    hooks.subscribe("t", "p", url=url, events=["*"])
    [record] = hooks.publish("t", "p", "e", {})
    assert record["status"] == "refused" and record["attempts"][0]["error"].startswith("refused:")
    assert hooks.deliver_due() == 0
    again = hooks.redeliver("t", record["id"])
    assert again["status"] == "refused" and len(again["attempts"]) == 2
    assert sender.calls == []


@pytest.mark.parametrize("url", [
    "https://example.com/_sandboxx", "https://example.com/x/_sandbox", "https://example.com/_sandbox-hooks/a",
    "http://_sandbox.example.com/hook", "https://example.com/hook?next=/_sandbox/reset", "HTTPS://example.com/a"])
def test_urls_that_only_look_like_the_control_api_are_sent(url):
    assert refusal(url) is None
    hooks, _, sender = outbox()
    record = hooks.enqueue("t", "p", "e", url, {})
    assert record["status"] == "pending" and hooks.deliver_due() == 1 and sender.calls[0][1] == url
