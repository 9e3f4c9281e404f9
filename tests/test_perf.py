"""Issue 14 (performance): what the speed-ups must not break. Expired tokens are purged so the store stops
growing; the journal's batches are written before any read, reset or clean exit; the stored report, YAML loader,
Ledger.to_json, orjson and the compiled validator give what the slower code gave; values derived from a stored
document (core/derived.py) follow every change of it."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from sandbox import create_app
from sandbox.core import fastjson
from sandbox.core.auth import PURGE_BATCH, PURGE_EVERY, Auth
from sandbox.core.clock import Clock
from sandbox.core.ids import IdGen
from sandbox.core.journal import Journal
from sandbox.core.store import MemoryStore, SQLiteStore
from sandbox.core.validation import SchemaRegistry, schema_id
from sandbox.core.yamlio import load_yaml

from .conftest import FakeWall

ROOT = Path(__file__).resolve().parents[1]
FROZEN = datetime(2025, 4, 23, 10, 0, tzinfo=timezone.utc)
OF_CREDS = {"clientId": "sandbox-client", "clientSecret": "sandbox-secret"}
UNKNOWN_JOB = "/open-finance/financial-report/01J0000000000000000000000"   # 400 when authorised, 401 when not


def make_app(store, **config):
    app = create_app({"SEED": 7, **config}, store=store, system_clock=FakeWall())
    app.extensions["sandbox"].clock.freeze(at=FROZEN)
    return app


# --- expired tokens ---------------------------------------------------------------------------------------------
def _auth(store, wall):
    clock = Clock(store, wall)
    clock.freeze(at=FROZEN)
    return Auth(store, clock, IdGen(store, 1)), clock


def test_issuing_purges_expired_tokens_so_the_store_stops_growing():
    store = MemoryStore()
    auth, clock = _auth(store, FakeWall())
    client = auth.default_client()
    for i in range(100):
        auth.issue("p", client, f"old-{i}", 10)
    assert store.count("_sandbox", "tokens") == 100
    clock.advance(11)                                  # all 100 expired
    needed = -(-100 // PURGE_BATCH) * PURGE_EVERY      # issues until every expired one has had its turn
    for i in range(needed):
        auth.issue("p", client, f"new-{i}", 10)
    assert store.count("_sandbox", "tokens") == needed                  # only the live ones are left
    assert store.count("_sandbox", "tokens.expiry") == needed
    sizes = []
    for round_ in range(20):                           # sustained load: 50 tokens per TTL, round after round
        for i in range(50):
            auth.issue("p", client, f"r{round_}-{i}", 10)
        clock.advance(11)
        sizes.append(store.count("_sandbox", "tokens"))
    assert max(sizes[5:]) <= 50 + PURGE_BATCH, sizes   # flat: a round's tokens plus at most one batch behind


def test_a_live_token_is_never_purged():
    store = MemoryStore()
    auth, clock = _auth(store, FakeWall())
    client = auth.default_client()
    for i in range(3 * PURGE_EVERY):
        auth.issue("p", client, f"t{i}", 3600)
    assert store.count("_sandbox", "tokens") == 3 * PURGE_EVERY
    assert auth.lookup("p", "t0") is not None


# --- the journal's batches --------------------------------------------------------------------------------------
def test_the_journal_batches_on_sqlite_and_reads_see_every_entry(tmp_path):
    j = Journal(SQLiteStore(str(tmp_path / "j.db")), keep=50)
    assert j.batched and not Journal(MemoryStore()).batched
    for i in range(30):
        j.record("t", {"i": i})
    assert [e["i"] for e in j.read("t", limit=100)] == list(range(29, -1, -1))   # the read flushed first
    for i in range(30, 40):
        j.record("t", {"i": i})
    assert j.store.count("t", "journal") == 40     # a direct store read flushes too
    j.record("t", {"i": 40})
    assert dict(j.store.collections("t"))["journal"] == 41   # and the dashboard's listing of collections
    for i in range(100):
        j.record("t", {"i": i})
    j.flush()
    assert j.store.count("t", "journal") <= 50 + j.trim_every


def test_a_read_in_another_worker_sees_the_entries_still_buffered_here(tmp_path):
    path = str(tmp_path / "two.db")
    one, two = Journal(SQLiteStore(path)), Journal(SQLiteStore(path))   # two workers' journals, one store
    for i in range(5):
        one.record("t", {"i": i})
    assert [e["i"] for e in two.read("t")] == [4, 3, 2, 1, 0]        # waited for worker one's batch
    assert two.store.list("_sandbox", "journal") == []                # no unwritten entries anywhere now


def test_a_worker_that_died_with_unwritten_entries_does_not_hold_reads_up(tmp_path):
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    assert dead.wait(timeout=60) == 0
    s = SQLiteStore(str(tmp_path / "dead.db"))
    s.put("_sandbox", "journal", f"pending|{socket.gethostname()}|{dead.pid}|1", {"since": 1})
    j = Journal(s)
    j.record("t", {"x": 1})
    assert j.read("t") == [{"x": 1}]
    assert s.list("_sandbox", "journal") == []                        # the dead worker's marker is gone


def test_entries_recorded_before_a_reset_do_not_come_back(tmp_path):
    s = SQLiteStore(str(tmp_path / "r.db"))
    j = Journal(s)
    j.record("t", {"before": True})
    s.clear()
    j.flush()
    assert j.read("t") == []


def test_an_entry_the_store_refuses_does_not_block_the_others(tmp_path):
    j = Journal(SQLiteStore(str(tmp_path / "p.db")))
    j.record("t", {"ok": 1})
    j.record("t", {"bad": "\ud800"})       # SQLite cannot encode a lone surrogate
    j.record("t", {"ok": 2})
    j.flush()
    assert [e for e in j.read("t")] == [{"ok": 2}, {"ok": 1}]


def test_the_journal_is_written_on_a_clean_exit(tmp_path):
    db = tmp_path / "exit.db"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from sandbox.core.journal import Journal
        from sandbox.core.store import SQLiteStore
        j = Journal(SQLiteStore({str(db)!r}))
        for i in range(25):
            j.record("t", {{"i": i}})
        # no flush: a clean interpreter exit (gunicorn's worker ends with sys.exit) must write the buffer
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert SQLiteStore(str(db)).count("t", "journal") == 25


# --- the report poll, YAML, ledgers, JSON, validation --------------------------------------------------------------
def test_a_done_report_is_served_from_its_stored_text_and_old_records_still_read(tmp_path):
    app = make_app(SQLiteStore(str(tmp_path / "rep.db")), JOB_DELAY=0)
    client, sb = app.test_client(), app.extensions["sandbox"]
    token = client.post("/open-finance/oauth/token", json={"userId": "u1", **OF_CREDS}).get_json()["accessToken"]
    auth = {"Authorization": f"Bearer {token}"}
    job = client.post("/open-finance/financial-report/318422557", headers=auth).get_json()["jobId"]
    for _ in range(3):
        polled = client.get(f"/open-finance/financial-report/{job}", headers=auth)
    body = polled.get_json()
    assert body["status"] == "DONE"
    key = sb.jobs.get("sandbox-client", job)["data"]["report"]
    stored = sb.store.get("sandbox-client", "open_finance.reports", key)
    assert body["financialReport"] == stored and "json" not in stored     # the report itself, not escaped text
    legacy = json.dumps(stored, separators=(",", ":"), ensure_ascii=False)
    sb.store.put("sandbox-client", "open_finance.reports", key, {"json": legacy})   # written by an older version
    again = client.get(f"/open-finance/financial-report/{job}", headers=auth)
    assert again.get_json() == body
    assert sb.providers["open_finance"].service.report("sandbox-client", key) == stored


def test_load_yaml_uses_libyaml_when_present_and_falls_back(monkeypatch, tmp_path):
    from sandbox.core import yamlio

    path = ROOT / "sandbox" / "fixtures" / "markets" / "DE.yaml"
    reference = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    assert load_yaml(path) == reference
    if getattr(yaml, "CSafeLoader", None):
        assert yamlio.SafeLoader is yaml.CSafeLoader
    monkeypatch.setattr(yamlio, "SafeLoader", yaml.SafeLoader)      # PyYAML built without libyaml
    assert load_yaml(path) == reference
    (tmp_path / "bad.yaml").write_text("!!python/object:os.system x", encoding="utf-8")
    with pytest.raises(yaml.YAMLError):                               # still the safe loader
        load_yaml(tmp_path / "bad.yaml")


def _asdict_json(ledger):
    """The former Ledger.to_json, computed with dataclasses.asdict (the reference)."""
    def jsonable(v):
        if isinstance(v, dict):
            return {k: jsonable(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [jsonable(x) for x in v]
        if isinstance(v, date):
            return v.isoformat()
        return str(v) if type(v).__name__ == "Decimal" else v
    data = jsonable(dataclasses.asdict(ledger))
    for account in data["accounts"]:
        for tx in account["transactions"]:
            if tx["event"] is None:
                del tx["event"]
    return data


@pytest.mark.parametrize("market", ["IL", "DE", "IN"])
def test_ledger_to_json_is_what_asdict_gave(market):
    from sandbox.ledger import generate_ledger
    from sandbox.ledger.models import ledger_from_json

    ledger = generate_ledger(5, "318422557", date(2025, 4, 23), market=market, months=6)
    got = ledger.to_json()
    assert json.dumps(got) == json.dumps(_asdict_json(ledger))     # same keys, same order, same values
    assert ledger_from_json(got).to_json() == got


def test_the_store_json_round_trips_what_the_json_module_did():
    s = MemoryStore()
    values = {"int_keys": {1: "a", 2: "b"}, "big": 2 ** 70, "text": "ü ß 日本", "float": 0.1,
              "nested": [{"x": None}]}
    s.put("t", "c", "k", values)
    assert s.get("t", "c", "k") == json.loads(json.dumps(values))
    s._data[("t", "c")]["nan"] = '{"x":NaN}'                     # written by the json module of an older version
    assert str(s.get("t", "c", "nan")["x"]) == "nan"
    with pytest.raises(TypeError):
        s.put("t", "c", "bad", {"at": datetime.now()})            # refused as json.dumps refused it
    assert fastjson.orjson is not None                           # a dependency: the fast path is what runs
    for value in values.values():                                # responses: byte for byte what json.dumps gave
        expected = json.dumps({"v": value}, ensure_ascii=False, separators=(",", ":"))
        assert fastjson.dumps({"v": value}) == expected
        assert fastjson.dumpb({"v": value}) in (expected, expected.encode())


@pytest.fixture(scope="module")
def registries():
    fast, slow = SchemaRegistry(), SchemaRegistry()
    slow.fast_validator = lambda sid: None      # python-jsonschema only: today's reference
    return fast, slow


@pytest.mark.parametrize("instance", [
    {"userId": "u", "clientId": "c", "clientSecret": "s"},
    {"userId": "u"},
    {"userId": 5, "clientId": "c", "clientSecret": "s", "extra": True},
    {},
    [],
    "text",
])
def test_the_compiled_validator_gives_the_same_verdict_and_messages(registries, instance):
    fast, slow = registries
    sid = schema_id("open_finance", "create_token.request")
    assert fast.errors(sid, instance) == slow.errors(sid, instance)


def test_a_pattern_the_compiled_validator_reads_stricter_still_passes_as_before(registries):
    fast, slow = registries
    fast.schemas["urn:test:trailing"] = schema = {"type": "string", "pattern": "^[0-9]+$"}
    fast._fast.pop("urn:test:trailing", None)
    fast._validators.pop("urn:test:trailing", None)
    compiled = fast.fast_validator("urn:test:trailing")
    if compiled is None:
        pytest.skip("jsonschema_rs is not installed")
    assert not compiled.is_valid("123\n")            # Rust regex: "$" is the very end
    assert fast.errors("urn:test:trailing", "123\n") == []   # python-jsonschema decides, as before
    assert schema


def test_a_served_sandbox_writes_every_journal_entry_before_its_workers_exit(tmp_path):
    """``sandbox serve`` with two workers, stopped with SIGTERM right after the requests: nothing is lost."""
    import requests

    from .served import serve_sandbox

    db = tmp_path / "served.db"
    with serve_sandbox(["--workers", "2", "--store", f"sqlite:///{db}", "--quiet"], tmp_path) as served:
        for i in range(40):
            r = requests.post(served.base + "/open-finance/oauth/token", json={"userId": f"u{i}", **OF_CREDS},
                              timeout=10)
            assert r.status_code == 200
    # the context manager sent SIGTERM to the process group and waited for it to exit
    store = SQLiteStore(str(db))
    entries = [e for _, e in store.list("sandbox-client", "journal")]
    assert sum(e.get("operation") == "open_finance.create_token" for e in entries) == 40


@pytest.mark.parametrize("keep", [0, 1, 3, 10, 11, 50])
def test_sqlite_trim_keeps_the_newest_like_the_memory_store(tmp_path, keep):
    stores = [MemoryStore(), SQLiteStore(str(tmp_path / "trim.db"))]
    for s in stores:
        for i in range(10):
            s.put("t", "j", f"{i:03d}", {"i": i})
        s.put("t", "other", "000", {"kept": True})
    removed = [s.trim("t", "j", keep) for s in stores]
    assert removed[0] == removed[1] == max(0, 10 - keep)
    assert [k for k, _ in stores[1].list("t", "j")] == [f"{i:03d}" for i in range(10)][10 - min(keep, 10):]
    assert [k for k, _ in stores[0].list("t", "j")] == [k for k, _ in stores[1].list("t", "j")]
    assert stores[1].get("t", "other", "000") == {"kept": True}


# --- derived values of stored documents (core/derived.py) ---------------------------------------------------------
def test_derived_values_are_reused_for_the_same_text_only():
    from sandbox.core.derived import Derived

    built = []
    cache = Derived(size=2)

    def build(text):
        built.append(text)
        return {"n": len(built)}

    first = cache.get("a", '{"x":1}', build)
    assert cache.get("a", '{"x":1}', build) is first                  # same text: the same value, not rebuilt
    assert cache.get("a", '{"x":2}', build) == {"n": 2}               # changed text: rebuilt
    cache.get("b", "1", build), cache.get("c", "1", build)            # two more keys: "a" is the oldest, evicted
    assert cache.get("a", '{"x":2}', build) == {"n": 5}
    assert len(built) == 5


def test_an_open_finance_page_follows_a_ledger_rewritten_behind_its_back():
    """The rendered view is shared between requests; a ledger another worker rewrote (here: written straight into
    the store, a transaction renamed) shows on the next page, and a PATCH shows though the view is shared."""
    from tests.providers.test_open_finance_data import P, World

    w = World()
    first = w.http.get(f"{P}/transactions?limit=5", headers=w.h).get_json()["items"][0]
    store = w.app.extensions["sandbox"].store
    raw = store.get("sandbox-client", "open_finance.ledgers", w.conn["id"])
    from tests.providers.test_open_finance_data import raw_refs
    for account in raw["accounts"]:
        for ref, t in zip(raw_refs(account), account["transactions"]):
            if ref == first["transactionProviderIdentifier"]:
                t["description"] = "rewritten elsewhere"
    store.put("sandbox-client", "open_finance.ledgers", w.conn["id"], raw)
    again = w.http.get(f"{P}/transactions?limit=5", headers=w.h).get_json()["items"][0]
    assert again["SK"] == first["SK"] and again["description"]["description"] == "rewritten elsewhere"
    patched = w.http.patch(f"{P}/transactions/{quote(first['SK'], safe='')}", headers=w.h,
                           json={"transactionSk": first["SK"], "classification": "REGULAR_INCOME"})
    assert patched.status_code == 200, patched.get_data(as_text=True)
    page = w.http.get(f"{P}/transactions?limit=5", headers=w.h).get_json()["items"]
    assert page[0]["changedClassification"] == {"type": "REGULAR_INCOME", "source": "USER"}
    assert "changedClassification" not in page[1]
