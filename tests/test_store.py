"""The store contract every backend must pass (memory, SQLite; Redis when SANDBOX_TEST_REDIS is set)."""
import multiprocessing

import pytest

from sandbox.core.store import SQLiteStore, open_store


@pytest.fixture
def store(any_store):
    return any_store   # one store test suite over memory, SQLite and Redis (tests/conftest.py)


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


# --- cursor paging and counting (issue 6, item 4) ----------------------------------------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from sandbox.core.store import prefix_end  # noqa: E402


def _walk(store, limit, **kw):
    """Every page of a keyset walk: [(keys, next)]; fails if the walk does not end."""
    pages, after = [], None
    for _ in range(1000):
        items, after = store.page("t", "c", after=after, limit=limit, **kw)
        pages.append(([k for k, _ in items], after))
        if after is None:
            return pages
    raise AssertionError("page walk never ended")


def _fill(store, keys):
    for k in keys:
        store.put("t", "c", k, {"k": k})


def test_page_walks_every_key_once_in_order(store):
    keys = [f"k{i:02d}" for i in range(7)]
    _fill(store, reversed(keys))
    assert _walk(store, 3) == [(keys[0:3], "k02"), (keys[3:6], "k05"), (keys[6:7], None)]
    items, nxt = store.page("t", "c", limit=2)
    assert items == [("k00", {"k": "k00"}), ("k01", {"k": "k01"})] and nxt == "k01"


def test_page_limit_boundaries(store):
    keys = [f"k{i}" for i in range(4)]
    _fill(store, keys)
    assert _walk(store, 4) == [(keys, None)]                      # limit == size: one page, no cursor
    assert _walk(store, 5) == [(keys, None)]                      # limit == size + 1
    assert _walk(store, 3) == [(keys[:3], "k2"), (keys[3:], None)]  # limit == size - 1: one more page of one
    assert _walk(store, 1)[-2:] == [(["k2"], "k2"), (["k3"], None)]
    assert store.page("t", "empty", limit=1) == ([], None)
    assert store.page("t", "c", after="k3", limit=10) == ([], None)  # cursor on the last key: exhausted
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError):
            store.page("t", "c", limit=bad)


def test_page_reverse(store):
    keys = [f"k{i}" for i in range(5)]
    _fill(store, keys)
    assert _walk(store, 2, reverse=True) == [(["k4", "k3"], "k3"), (["k2", "k1"], "k1"), (["k0"], None)]
    assert store.page("t", "c", after="k2", limit=5, reverse=True) == ([("k1", {"k": "k1"}), ("k0", {"k": "k0"})],
                                                                       None)
    assert store.page("t", "c", after="k0", limit=5, reverse=True) == ([], None)


def test_page_and_count_respect_the_prefix(store):
    _fill(store, ["a", "b", "b|", "b|1", "b|2", "b|3", "b}", "b~", "c"])
    assert _walk(store, 2, prefix="b|") == [(["b|", "b|1"], "b|1"), (["b|2", "b|3"], None)]
    assert _walk(store, 3, prefix="b|", reverse=True) == [(["b|3", "b|2", "b|1"], "b|1"), (["b|"], None)]
    assert store.count("t", "c", prefix="b|") == 4
    assert store.count("t", "c", prefix="b") == 7
    assert store.count("t", "c") == 9
    assert store.count("t", "c", prefix="zz") == 0 and store.count("t", "none") == 0
    # a cursor outside the prefix range never leaves it
    assert [k for k, _ in store.page("t", "c", prefix="b|", after="a", limit=9)[0]] == ["b|", "b|1", "b|2", "b|3"]
    assert store.page("t", "c", prefix="b|", after="c", limit=9) == ([], None)
    assert [k for k, _ in store.page("t", "c", prefix="b|", after="c", limit=9, reverse=True)[0]] == [
        "b|3", "b|2", "b|1", "b|"]
    assert store.page("t", "c", prefix="b|", after="a", limit=9, reverse=True) == ([], None)


def test_cursor_survives_the_deletion_of_its_key(store):
    keys = [f"k{i}" for i in range(6)]
    _fill(store, keys)
    first, cursor = store.page("t", "c", limit=3)
    assert cursor == "k2"
    store.delete("t", "c", "k2")
    store.delete("t", "c", "k3")
    rest, nxt = store.page("t", "c", after=cursor, limit=3)
    assert [k for k, _ in rest] == ["k4", "k5"] and nxt is None
    back, _ = store.page("t", "c", after=cursor, limit=3, reverse=True)
    assert [k for k, _ in back] == ["k1", "k0"]


UNUSUAL = ["", "a", "a\x00", "a\x1f", "a\x1fb", "a|b", "a\x7f", "aé", "aü", "a\u20ac", "a\uffff", "a😀",
           "a\U0010ffff", "a\U0010ffffz", "b", "日本"]


def test_unicode_and_separator_keys_order_by_code_point(store):
    _fill(store, reversed(UNUSUAL))
    expected = sorted(UNUSUAL)  # Python orders str by code point, as UTF-8 bytes order in SQLite and Redis
    assert expected.index("a\U0010ffffz") > expected.index("a😀")
    assert [k for page, _ in _walk(store, 3) for k in page] == expected
    assert [k for page, _ in _walk(store, 4, reverse=True) for k in page] == expected[::-1]
    with_a = [k for k in expected if k.startswith("a")]
    assert [k for page, _ in _walk(store, 2, prefix="a") for k in page] == with_a
    assert [k for k, _ in store.list("t", "c", prefix="a")] == with_a  # list's prefix bound is exact too
    assert store.count("t", "c", prefix="a") == len(with_a) == 13
    assert store.count("t", "c", prefix="a\U0010ffff") == 2
    assert store.get("t", "c", "a\x1fb") == {"k": "a\x1fb"}


def test_prefix_end_bounds_exactly():
    assert prefix_end("") is None
    assert prefix_end("ab") == "ac"
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\U0010ffff\U0010ffff") is None
    assert prefix_end("a\ud7ff") == "a\ue000"  # skips the surrogates, which UTF-8 cannot carry


def test_index_follows_every_write(store):
    """count and page see add, update (create and delete), incr, delete, trim and clear (Redis keeps an index)."""
    store.add("t", "c", "a", {})
    store.add("t", "c", "a", {"again": True})
    store.update("t", "c", "b", lambda old: {"v": 1})
    store.incr("t", "c", "n")
    store.put("t", "c", "z", {})
    assert store.count("t", "c") == 4
    store.update("t", "c", "b", lambda old: None)
    store.delete("t", "c", "z")
    assert [k for k, _ in store.page("t", "c")[0]] == ["a", "n"]
    _fill(store, [f"j{i}" for i in range(5)])
    assert store.trim("t", "c", 2) == 5 and [k for k, _ in store.page("t", "c")[0]] == ["j4", "n"]
    assert store.count("t", "c") == 2
    store.clear("t")
    assert store.count("t", "c") == 0 and store.page("t", "c") == ([], None)
    _fill(store, ["x"])
    assert store.page("t", "c") == ([("x", {"k": "x"})], None)


keys_strategy = st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=4), max_size=25, unique=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=keys_strategy, limit=st.integers(1, 7), reverse=st.booleans(), prefix=st.text("ab\x1f", max_size=2))
def test_page_walk_matches_a_sorted_model(store, keys, limit, reverse, prefix):
    store.clear()
    _fill(store, keys)
    expected = sorted((k for k in keys if k.startswith(prefix)), reverse=reverse)
    pages = _walk(store, limit, prefix=prefix, reverse=reverse)
    assert [k for page, _ in pages for k in page] == expected
    assert all(len(page) == limit and nxt == page[-1] for page, nxt in pages[:-1])
    assert pages[-1][1] is None and len(pages[-1][0]) <= limit
    assert len(pages) == max(1, -(-len(expected) // limit))
    assert store.count("t", "c", prefix=prefix) == len(expected)


def test_redis_rebuilds_a_missing_index(store):
    """State written before the index existed (plain hash) still pages, counts and trims."""
    if not hasattr(store, "r"):
        pytest.skip("Redis only")
    store.r.delete(store._h("t", "legacy"), store._z("t", "legacy"))  # written behind clear()'s back: not registered
    for k in ["b", "a", "c"]:  # what put() wrote before the index existed
        store.r.hset(store._h("t", "legacy"), k, '{"v":1}')
    store.r.sadd(f"{store.ns}:tenants", "t")
    store.r.sadd(f"{store.ns}:colls:t", "legacy")
    assert store.count("t", "legacy") == 3
    assert [k for k, _ in store.page("t", "legacy", limit=2)[0]] == ["a", "b"]
    store.r.hset(store._h("t", "legacy"), "d", '{"v":1}')  # a write behind the index's back is noticed too
    assert [k for k, _ in store.list("t", "legacy", reverse=True)] == ["d", "c", "b", "a"]
    assert store.trim("t", "legacy", 1) == 3 and store.r.zrange(store._z("t", "legacy"), 0, -1) == ["d"]


def test_redis_clear_leaves_no_keys_behind(store):
    if not hasattr(store, "r"):
        pytest.skip("Redis only")
    _fill(store, ["a", "b"])
    store.put("t2", "d", "x", {})
    store.clear("t")
    assert sorted(store.r.keys(store.ns + "*")) == sorted([store._h("t2", "d"), store._z("t2", "d"),
                                                          f"{store.ns}:tenants", f"{store.ns}:colls:t2"])
    store.clear()
    assert store.r.keys(store.ns + "*") == []


def test_sqlite_page_and_count_seek_the_primary_key(tmp_path):
    """page/count are range seeks on (tenant, coll, key), never a table scan nor a sort."""
    s = SQLiteStore(str(tmp_path / "plan.db"))
    seen = []
    s._conn().set_trace_callback(seen.append)
    s.page("t", "c", prefix="u1\x1f", after="u1\x1fk", limit=5)
    s.page("t", "c", after="k", limit=5, reverse=True)
    s.count("t", "c", prefix="u1\x1f")
    s._conn().set_trace_callback(None)
    assert len(seen) == 3
    for sql in seen:
        plan = " ".join(row[3] for row in s._conn().execute("EXPLAIN QUERY PLAN " + sql))
        assert "SEARCH kv USING PRIMARY KEY (tenant=? AND coll=? AND key" in plan and "TEMP B-TREE" not in plan, plan
