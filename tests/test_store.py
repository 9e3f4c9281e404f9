"""The store contract every backend must pass (memory, SQLite; Redis when SANDBOX_TEST_REDIS is set)."""
import multiprocessing
import os

import pytest

from sandbox.core.store import SQLiteStore, open_store


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "memory":
        return open_store("memory://")
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path}/s.db")
    url = os.environ.get("SANDBOX_TEST_REDIS")
    if not url:
        pytest.skip("set SANDBOX_TEST_REDIS=redis://127.0.0.1:6379/15 to run the store suite on Redis")
    s = open_store(url)
    s.clear()
    return s


def test_put_get_delete(store):
    assert store.get("t", "c", "k") is None
    store.put("t", "c", "k", {"a": 1, "ü": "ß"})
    assert store.get("t", "c", "k") == {"a": 1, "ü": "ß"}
    store.put("t", "c", "k", {"a": 2})
    assert store.get("t", "c", "k") == {"a": 2}
    assert store.delete("t", "c", "k") is True
    assert store.delete("t", "c", "k") is False
    assert store.get("t", "c", "k") is None


def test_add_is_first_writer_wins(store):
    assert store.add("t", "c", "k", {"v": 1}) is True
    assert store.add("t", "c", "k", {"v": 2}) is False
    assert store.get("t", "c", "k") == {"v": 1}


def test_list_is_ordered_and_prefix_filtered(store):
    for key in ["b|2", "a|1", "b|1", "c", "b|10"]:
        store.put("t", "c", key, {"k": key})
    assert [k for k, _ in store.list("t", "c")] == ["a|1", "b|1", "b|10", "b|2", "c"]
    assert [k for k, _ in store.list("t", "c", prefix="b|")] == ["b|1", "b|10", "b|2"]
    assert [k for k, _ in store.list("t", "c", reverse=True, limit=2)] == ["c", "b|2"]
    assert store.list("t", "other") == []


def test_tenants_are_isolated_and_clearable(store):
    store.put("t1", "c", "k", {"v": 1})
    store.put("t2", "c", "k", {"v": 2})
    assert store.get("t1", "c", "k") == {"v": 1}
    assert store.tenants() == ["t1", "t2"]
    store.clear("t1")
    assert store.get("t1", "c", "k") is None
    assert store.get("t2", "c", "k") == {"v": 2}
    store.clear()
    assert store.tenants() == []


def test_update_and_incr_are_atomic_read_modify_write(store):
    assert store.incr("t", "seq", "x") == 1
    assert store.incr("t", "seq", "x") == 2
    assert store.incr("t", "seq", "x", by=5) == 7
    assert store.update("t", "c", "k", lambda old: {"n": (old or {"n": 0})["n"] + 1}) == {"n": 1}
    assert store.update("t", "c", "k", lambda old: None) is None
    assert store.get("t", "c", "k") is None


def test_update_rolls_back_when_the_function_raises(store):
    store.put("t", "c", "k", {"v": 1})
    with pytest.raises(RuntimeError):
        store.update("t", "c", "k", lambda old: (_ for _ in ()).throw(RuntimeError("boom")))
    assert store.get("t", "c", "k") == {"v": 1}


def test_trim_keeps_newest(store):
    for i in range(10):
        store.put("t", "j", f"{i:03d}", {"i": i})
    assert store.trim("t", "j", 3) == 7
    assert [k for k, _ in store.list("t", "j")] == ["007", "008", "009"]


def _hammer(path, n):
    s = SQLiteStore(path)
    for _ in range(n):
        s.incr("t", "seq", "shared")
        s.update("t", "c", "counter", lambda old: {"n": (old or {"n": 0})["n"] + 1})


def test_two_processes_share_one_sqlite_file(tmp_path):
    """State written by one process is read by another, and concurrent increments are never lost."""
    path = str(tmp_path / "shared.db")
    SQLiteStore(path).put("t", "c", "hello", {"from": "parent"})
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(path, 200)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    reader = SQLiteStore(path)
    assert reader.get("t", "seq", "shared") == {"n": 400}
    assert reader.get("t", "c", "counter") == {"n": 400}
    assert reader.get("t", "c", "hello") == {"from": "parent"}


def test_sqlite_state_survives_a_restart(tmp_path):
    path = str(tmp_path / "restart.db")
    SQLiteStore(path).put("t", "c", "k", {"v": 1})
    assert SQLiteStore(path).get("t", "c", "k") == {"v": 1}


def test_open_store_rejects_unknown_urls():
    with pytest.raises(ValueError):
        open_store("postgres://x")
