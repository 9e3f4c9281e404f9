from datetime import timedelta

import pytest

from sandbox.core.clock import Clock
from sandbox.core.ids import IdGen
from sandbox.core.signing import InvalidToken, Signer
from sandbox.core.store import MemoryStore
from sandbox.core.webhooks import Webhooks

from .conftest import FakeWall


def test_signed_tokens_round_trip_and_reject_forgery_and_expiry():
    signer = Signer(lambda: 1)
    wall = FakeWall()
    token = signer.encode({"flow_id": "f", "exp": int(wall.at.timestamp()) + 60}, "widget")
    assert signer.decode(token, "widget", now=wall.at)["flow_id"] == "f"
    with pytest.raises(InvalidToken):
        signer.decode(token, "other-purpose")
    with pytest.raises(InvalidToken):
        Signer(lambda: 2).decode(token, "widget")
    with pytest.raises(InvalidToken):
        signer.decode(token, "widget", now=wall.at + timedelta(seconds=60))
    head, payload, sig = token.split(".")
    for bad in (f"{head}.{payload}.{sig[:-1]}{'A' if sig[-1] != 'A' else 'E'}", f"{head}.{payload}x.{sig}",
                "not-a-token", "", None, "a.b", f"{head}.{payload}.{sig}."):
        with pytest.raises(InvalidToken):
            signer.decode(bad, "widget")


def test_every_signature_character_matters():
    signer = Signer(lambda: 1)
    token = signer.encode({"x": 1}, "p")
    head, payload, sig = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(len(sig)):
        changed = sig[:i] + alphabet[alphabet.index(sig[i]) ^ 1] + sig[i + 1:]
        with pytest.raises(InvalidToken):
            signer.decode(f"{head}.{payload}.{changed}", "p")


class Recorder:
    def __init__(self, answers):
        self.answers, self.calls = list(answers), []

    def __call__(self, url, body, headers):
        self.calls.append((url, body, headers))
        answer = self.answers.pop(0) if self.answers else 200
        return (None, "ConnectionError: refused") if answer is None else (answer, None)


def outbox(answers):
    store, wall = MemoryStore(), FakeWall()
    clock = Clock(store, wall)
    sender = Recorder(answers)
    return Webhooks(store, clock, IdGen(store, 1), sender), clock, sender


def test_delivered_on_first_2xx():
    hooks, _, sender = outbox([204])
    record = hooks.enqueue("t", "p", "e", "http://127.0.0.1/x", {"a": 1}, headers={"User-Agent": "ua"})
    assert record["status"] == "delivered" and len(record["attempts"]) == 1
    assert sender.calls[0][1] == b'{"a":1}' and sender.calls[0][2]["User-Agent"] == "ua"
    assert hooks.deliver_due() == 0


def test_retries_with_backoff_on_the_clock_then_fails():
    hooks, clock, sender = outbox([500, None, 503])
    record = hooks.enqueue("t", "p", "e", "http://127.0.0.1/x", {})
    assert record["status"] == "pending" and record["attempts"][0]["status"] == 500
    assert hooks.deliver_due() == 0          # not due yet
    clock.advance(10)
    assert hooks.deliver_due() == 1
    record = hooks.get("t", record["id"])
    assert record["attempts"][1]["error"].startswith("ConnectionError") and record["status"] == "pending"
    clock.advance(50)
    hooks.deliver_due()
    record = hooks.get("t", record["id"])
    assert record["status"] == "failed" and len(record["attempts"]) == 3
    clock.advance(3600)
    assert hooks.deliver_due() == 0           # failed deliveries are not retried by themselves
    assert hooks.redeliver("t", record["id"])["status"] == "delivered"
    assert len(hooks.get("t", record["id"])["attempts"]) == 4


def test_3xx_counts_only_when_the_provider_says_so():
    hooks, _, _ = outbox([302, 302])
    assert hooks.enqueue("t", "p", "e", "http://127.0.0.1/x", {}, accept_3xx=True)["status"] == "delivered"
    assert hooks.enqueue("t", "p", "e", "http://127.0.0.1/x", {})["status"] == "pending"


def test_a_claimed_delivery_is_not_sent_twice():
    hooks, clock, sender = outbox([500])
    record = hooks.enqueue("t", "p", "e", "http://127.0.0.1/x", {}, deliver=False)
    hooks.store.update("t", "webhooks", record["id"],
                       lambda r: {**r, "lease_until": (clock.now() + timedelta(seconds=30)).isoformat()})
    assert hooks.attempt("t", record["id"]) is None   # another worker holds the lease
    assert sender.calls == []
