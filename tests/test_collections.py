"""Collections (core/collections.py) on every store backend, and the three pagination styles (core/paging.py)."""
import random
import uuid

import pytest
from hypothesis import given, settings, strategies as st

from sandbox.core import paging
from sandbox.core.clock import Clock
from sandbox.core.collections import Collection, escape_component, merge_patch, scope_prefix
from sandbox.core.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from sandbox.core.ids import IdGen, stable_seed
from sandbox.core.store import MemoryStore

from .conftest import WALL, FakeWall

SEED = 7
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@pytest.fixture
def store(any_store):
    return any_store   # one store test suite over memory, SQLite and Redis (tests/conftest.py)


@pytest.fixture
def make(store):
    """make(name, **kw) -> a Collection for tenant "t" on the store under test."""
    clock, ids = Clock(store, FakeWall()), IdGen(store, SEED)
    return lambda name="things", tenant="t", **kw: Collection(store, ids, clock, tenant, name, **kw)


def expected_uuid(tenant, kind, n):
    """The nth id of a kind, computed the documented way: seed + tenant + kind + sequence number -> RNG -> UUID v4."""
    rng = random.Random(stable_seed(SEED, tenant, kind, n))
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# -- single items ---------------------------------------------------------------------------------------------------

def test_get_and_load_or_404(make):
    c = make()
    assert c.get("nope") is None and c.exists("nope") is False
    with pytest.raises(NotFound) as err:
        c.load("nope")
    assert err.value.status == 404 and err.value.details == {"collection": "things", "id": "nope"}
    with pytest.raises(NotFound, match="^No connection was found$"):
        c.load("nope", "No connection was found")
    custom = Forbidden("not yours")
    with pytest.raises(Forbidden) as err:
        c.load("nope", custom)
    assert err.value is custom
    with pytest.raises(Conflict):
        c.load("nope", Conflict)
    c.put("there", {"v": 1})
    assert c.load("there") == {"v": 1} and c.exists("there")


def test_create_draws_deterministic_ids_and_refuses_duplicates(make):
    c = make("accounts")
    doc = {"name": "Giro"}
    first = c.create(doc)
    second = c.create({"name": "Savings"})
    assert first == {"name": "Giro", "id": expected_uuid("t", "accounts", 1)}
    assert second["id"] == expected_uuid("t", "accounts", 2) != first["id"]
    assert doc == {"name": "Giro"}  # the caller's dict is not changed
    assert c.get(first["id"]) == first
    # another tenant draws its own sequence
    assert make("accounts", tenant="u").create({})["id"] == expected_uuid("u", "accounts", 1)
    # chosen ids: argument, else the document's id field
    assert c.create({"name": "x"}, id="mine") == {"name": "x", "id": "mine"}
    assert c.create({"id": "doc-id", "n": 1})["id"] == "doc-id"
    with pytest.raises(Conflict) as err:
        c.create({"name": "other"}, id="mine")
    assert err.value.status == 409
    assert c.get("mine") == {"name": "x", "id": "mine"}  # first writer wins
    with pytest.raises(BadRequest, match="taken"):
        c.create({}, id="mine", conflict=BadRequest("taken"))
    assert c.create({"v": 1}, id="k", id_field=None) == {"v": 1}
    assert c.create({"v": 1}, id="k2", id_field="accountId") == {"v": 1, "accountId": "k2"}
    with pytest.raises(ValueError):
        c.create({}, id_kind="serial")


def test_create_ulid_takes_its_time_from_the_sandbox_clock(make):
    c = make("jobs", id_kind="ulid", id_field="jobId")
    job = c.create({"status": "RUNNING"})
    ms = int(WALL.timestamp() * 1000)
    stamp = "".join(CROCKFORD[(ms >> (5 * i)) & 31] for i in range(9, -1, -1))
    assert len(job["jobId"]) == 26 and job["jobId"][:10] == stamp
    assert c.get(job["jobId"]) == job
    assert make("jobs").create({}, id_kind="ulid")["id"][:10] == stamp


def test_key_of_makes_composite_keys(make):
    c = make("txns", key_of=lambda d: f"{d['date']}|{d['id']}")
    c.create({"date": "2025-02-01"}, id="b")
    c.create({"date": "2025-01-15"}, id="z")
    assert [d["id"] for d in c.list()] == ["z", "b"]  # ordered by date first
    assert c.get("2025-01-15|z")["id"] == "z"


def test_put_replaces_whole_documents(make):
    c = make()
    c.put("k", {"a": 1, "b": 2})
    assert c.put("k", {"a": 3}) == {"a": 3}
    assert c.get("k") == {"a": 3}


def test_patch_leaves_absent_and_null_fields_unchanged(make):
    c = make()
    c.put("k", {"id": "k", "name": "old", "keep": 1, "tags": ["a"], "nested": {"x": 1, "y": {"z": 2, "w": 3}},
                "scalar": 5})
    new = c.patch("k", {"name": "new", "keep": None, "tags": ["b"], "nested": {"y": {"z": 9, "w": None}},
                        "scalar": {"now": "dict"}, "added": 0, "id": "hijack"})
    expected = {"id": "k", "name": "new", "keep": 1, "tags": ["b"], "nested": {"x": 1, "y": {"z": 9, "w": 3}},
                "scalar": {"now": "dict"}, "added": 0}
    assert new == expected and c.get("k") == expected
    assert c.patch("k", {}) == expected
    with pytest.raises(NotFound):
        c.patch("missing", {"a": 1})
    assert c.get("missing") is None  # a failed patch creates nothing
    with pytest.raises(NotFound, match="gone"):
        c.patch("missing", {"a": 1}, "gone")


def test_merge_patch_does_not_alias_its_inputs():
    old, changes = {"n": {"a": 1}}, {"n": {"b": 2}, "d": {"e": 1}}
    new = merge_patch(old, changes)
    new["n"]["c"] = 3
    new["d"]["f"] = 1
    assert old == {"n": {"a": 1}} and changes == {"n": {"b": 2}, "d": {"e": 1}}


def test_update_is_read_modify_write(make):
    c = make()
    c.put("k", {"n": 1})
    assert c.update("k", lambda d: {**d, "n": d["n"] + 1}) == {"n": 2}
    with pytest.raises(NotFound):
        c.update("missing", lambda d: d)


def test_delete_and_delete_or_404(make):
    c = make()
    c.put("k", {})
    assert c.delete("k") is True and c.delete("k") is False
    c.put("k", {})
    c.delete_or_404("k")
    assert c.get("k") is None
    with pytest.raises(NotFound, match="connection not found"):
        c.delete_or_404("k", "connection not found")


# -- many items -----------------------------------------------------------------------------------------------------

def fill(c, n):
    for i in range(n):
        c.put(f"k{i:02d}", {"id": f"k{i:02d}", "i": i, "even": i % 2 == 0, "score": (i * 7) % 5})
    return [f"k{i:02d}" for i in range(n)]


def test_list_filters_and_sorts(make):
    c = make()
    keys = fill(c, 6)
    assert [d["id"] for d in c.list()] == keys
    assert [d["id"] for d in c.list(reverse=True)] == keys[::-1]
    assert [d["i"] for d in c.list(filter=lambda d: d["even"])] == [0, 2, 4]
    assert [d["i"] for d in c.list(filter={"even": False, "ignored": None})] == [1, 3, 5]
    by_score = sorted(range(6), key=lambda i: ((i * 7) % 5, i))  # stable sort: ties keep key order
    assert [d["i"] for d in c.list(sort_key=lambda d: d["score"])] == by_score
    assert [d["i"] for d in c.list(sort_key=lambda d: d["i"], reverse=True)] == [5, 4, 3, 2, 1, 0]
    assert c.count() == 6 and c.count(filter={"even": True}) == 3
    assert make("empty").list() == [] and make("empty").count() == 0


def walk(c, limit, **kw):
    pages, cursor = [], None
    while True:
        page = c.page(cursor, limit, **kw)
        pages.append(([d["id"] for d in page.items], page.next))
        if page.next is None:
            return pages
        cursor = page.next
        assert len(pages) < 100


@pytest.mark.parametrize("size", [0, 1, 4, 5])
def test_page_boundaries(make, size):
    c = make()
    keys = fill(c, size)
    assert walk(c, size or 1) == [(keys, None)]           # limit == size: one page, next is None
    assert walk(c, size + 1) == [(keys, None)]            # limit == size + 1
    if size > 1:                                          # limit == size - 1: a last page of one, next None
        assert walk(c, size - 1) == [(keys[:-1], keys[-2]), (keys[-1:], None)]
    assert [k for page, _ in walk(c, 2) for k in page] == keys
    with pytest.raises(ValueError):
        c.page(None, 0)


def test_page_with_a_filter_keeps_page_sizes(make):
    c = make()
    fill(c, 30)
    assert walk(c, 2, filter={"even": True})[:2] == [(["k00", "k02"], "k02"), (["k04", "k06"], "k06")]
    assert len(walk(c, 2, filter={"even": True})) == 8  # 15 matches: 7 full pages and one of one
    # the lookahead walks past many non-matching items to know the last page is the last
    assert walk(c, 2, filter=lambda d: d["i"] < 4) == [(["k00", "k01"], "k01"), (["k02", "k03"], None)]
    # a single match far behind several read batches
    assert walk(c, 2, filter=lambda d: d["i"] == 27) == [(["k27"], None)]
    assert walk(c, 3, filter=lambda d: False) == [([], None)]
    assert walk(c, 4, filter={"even": True}, reverse=True)[0] == (["k28", "k26", "k24", "k22"], "k22")


def test_page_cursor_after_a_deleted_item(make):
    c = make()
    fill(c, 5)
    first = c.page(None, 2)
    c.delete(first.next)
    assert [d["id"] for d in c.page(first.next, 2).items] == ["k02", "k03"]


def test_window_is_offset_paging(make):
    c = make()
    fill(c, 5)
    assert [d["i"] for d in c.window(0, 2)] == [0, 1]
    assert [d["i"] for d in c.window(3, 10)] == [3, 4]
    assert c.window(5, 1) == [] and c.window(0, 0) == []
    assert [d["i"] for d in c.window(1, 2, filter={"even": True})] == [2, 4]
    assert [d["i"] for d in c.window(0, 2, reverse=True)] == [4, 3]


# -- scopes ---------------------------------------------------------------------------------------------------------

def test_scope_prefix_escapes_the_separator():
    assert scope_prefix(None) == ""
    assert scope_prefix("u1") == "u1\x1f"
    assert scope_prefix(("u1", "a\x1fb")) == "u1\x1fa%1Fb\x1f"
    assert escape_component("50%\x1f") == "50%25%1F"
    assert len({escape_component(s) for s in ["a\x1fb", "a%1Fb", "a%251Fb", "a|b"]}) == 4
    with pytest.raises(TypeError):
        scope_prefix((1,))


def test_a_scope_never_sees_another_scopes_items(make):
    names = ["carol", "carol\x1fx", "carol|x", "carol%1Fx", "carol\x1f", ""]
    scopes = {name: make("owned", scope=name) for name in names}
    for name, c in scopes.items():
        c.create({"owner": name}, id="b")
    # a user-chosen id that spells out another scope's key
    scopes["carol"].create({"owner": "carol", "forged": True}, id="x\x1fb")
    scopes["carol"].create({"owner": "carol", "forged": True}, id="x|b")
    for name, c in scopes.items():
        mine = c.list()
        assert {d["owner"] for d in mine} == {name}, name
        assert c.count() == len(mine) == (3 if name == "carol" else 1)
        assert c.get("b")["owner"] == name
        assert [d["owner"] for d in c.page(None, 10).items] == [name] * len(mine)
    assert scopes["carol\x1fx"].get("x\x1fb") is None and scopes["carol|x"].get("x|b") is None
    assert scopes["carol"].clear() == 3
    assert all(c.count() == 1 for n, c in scopes.items() if n != "carol")


def test_within_narrows_a_scope(make):
    users = make("accounts", scope="user-1")
    acc = users.within("acc-1")
    acc.put("t1", {"v": 1})
    assert acc.scope == ("user-1", "acc-1") and acc.get("t1") == {"v": 1}
    assert make("accounts", scope=("user-1", "acc-2")).get("t1") is None
    assert make("accounts", scope=("user-2", "acc-1")).get("t1") is None


# -- paging: shared pieces ------------------------------------------------------------------------------------------

BAD_INTS = ["abc", "-1", "1.5", " 5", "5 ", "+5", "٣", "0x10", "1e3", "99999999999999999999", True, 2.0]


def field_of(err):
    return err.value.errors[0]["field"]


@pytest.mark.parametrize("value", BAD_INTS)
def test_int_param_refuses_anything_but_plain_digits(value):
    with pytest.raises(ValidationFailed) as err:
        paging.int_param({"n": value}, "n", 1)
    assert err.value.status == 400 and field_of(err) == "n" and "n " in err.value.message


def test_int_param_bounds_and_defaults():
    assert paging.int_param({}, "n", 7) == 7 and paging.int_param({"n": ""}, "n", 7) == 7
    assert paging.int_param({"n": ["3", "4"]}, "n", 7) == 3 and paging.int_param({"n": 3}, "n", 7) == 3
    assert paging.int_param({"n": "007"}, "n", 1) == 7
    assert paging.int_param({"n": "2"}, "n", 1, minimum=2, maximum=3) == 2
    assert paging.int_param({"n": "3"}, "n", 1, minimum=2, maximum=3) == 3
    for outside in ("1", "4"):
        with pytest.raises(ValidationFailed, match="between 2 and 3"):
            paging.int_param({"n": outside}, "n", 1, minimum=2, maximum=3)


def test_cursors_round_trip_and_refuse_tampering():
    for position in ["k1", "", "ü\x1f😀", 0, 12]:
        token = paging.encode_cursor(position, bind="b")
        assert paging.decode_cursor(token, bind="b") == position
        assert token.isascii() and "=" not in token
    token = paging.encode_cursor("k1", bind="b")
    payload, mac = token.split(".")
    forged = paging.encode_cursor("k9", bind="b").split(".")[0] + "." + mac
    swapped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in ["", "garbage", "a.b", "a.b.c", forged, swapped, token + ".", "." + token, "x" * 5000]:
        with pytest.raises(ValidationFailed) as err:
            paging.decode_cursor(bad, bind="b")
        assert field_of(err) == "nextPage"
    with pytest.raises(ValidationFailed):
        paging.decode_cursor(token, bind="other")          # another listing's cursor
    with pytest.raises(ValidationFailed):
        paging.decode_cursor(token, bind="b", secret=b"k")  # another key
    assert paging.decode_cursor(paging.encode_cursor("k", secret=b"k"), secret=b"k") == "k"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_no_cursor_text_gets_anything_but_a_400(text):
    try:
        paging.decode_cursor(text)
    except ValidationFailed:
        pass


# -- Open Finance ---------------------------------------------------------------------------------------------------

def test_open_finance_query_parsing():
    q = paging.parse_cursor_query({})
    assert q == paging.CursorQuery(paging.OPEN_FINANCE_DEFAULT_LIMIT, None, False, False)
    assert paging.parse_cursor_query({"limit": "5", "sort": "-1", "nextPage": ""}) == paging.CursorQuery(5, None, True,
                                                                                                         True)
    assert paging.parse_cursor_query({"sort": "1"}).reverse is False
    for bad in ("0", "abc", "-5"):
        with pytest.raises(ValidationFailed) as err:
            paging.parse_cursor_query({"limit": bad})
        assert field_of(err) == "limit"
    for bad in ("2", "asc", "-"):
        with pytest.raises(ValidationFailed) as err:
            paging.parse_cursor_query({"sort": bad})
        assert field_of(err) == "sort"
    # transactions: at most 500 per page (open_finance.md section 6), refused or capped
    assert paging.parse_cursor_query({"limit": "500"}, max_limit=500).limit == 500
    with pytest.raises(ValidationFailed, match="between 1 and 500"):
        paging.parse_cursor_query({"limit": "501"}, max_limit=500)
    assert paging.parse_cursor_query({"limit": "501"}, max_limit=500, over_max="clamp").limit == 500
    assert paging.parse_cursor_query({"limit": "499"}, max_limit=500, over_max="clamp").limit == 499


def of_walk(source, query, **kw):
    """Follow nextPage to the end: [body, ...]."""
    bodies, query = [], dict(query)
    while True:
        body = paging.open_finance_page(source, query, **kw)
        bodies.append(body)
        if body["nextPage"] is None:
            return bodies
        query["nextPage"] = body["nextPage"]
        assert len(bodies) < 100


@pytest.mark.parametrize("size", [0, 1, 3, 4])
def test_open_finance_pages_sequences_and_collections_alike(make, size):
    c = make()
    fill(c, size)
    seq = [{"id": f"k{i:02d}", "i": i} for i in range(size)]
    for source in (seq, c):
        for limit, pages in [(size or 1, 1), (size + 1, 1), (3, max(1, -(-size // 3)))]:
            bodies = of_walk(source, {"limit": str(limit)})
            assert len(bodies) == pages
            assert [d["i"] for b in bodies for d in b["items"]] == list(range(size))
            assert all(len(b["items"]) == limit for b in bodies[:-1]) and bodies[-1]["nextPage"] is None
            assert all(set(b) == {"nextPage", "items"} for b in bodies)
        desc = of_walk(source, {"limit": "2", "sort": "-1"})
        assert [d["i"] for b in desc for d in b["items"]] == list(range(size))[::-1]
    assert paging.open_finance_page([], {}) == {"nextPage": None, "items": []}


def test_open_finance_cursor_is_bound_to_its_listing(make):
    c = make()
    fill(c, 5)
    seq = list(range(5))
    asc = paging.open_finance_page(seq, {"limit": "2"})["nextPage"]
    with pytest.raises(ValidationFailed):                      # same cursor, other sort order
        paging.open_finance_page(seq, {"limit": "2", "sort": "-1", "nextPage": asc})
    with pytest.raises(ValidationFailed):                      # a sequence cursor on a collection
        paging.open_finance_page(c, {"nextPage": asc})
    keyed = paging.open_finance_page(c, {"limit": "2"})["nextPage"]
    with pytest.raises(ValidationFailed):                      # and the other way round
        paging.open_finance_page(seq, {"nextPage": keyed})
    with pytest.raises(ValidationFailed):
        paging.open_finance_page(c, {"nextPage": keyed}, bind="connections?status=ACTIVE")
    with pytest.raises(ValidationFailed):
        paging.open_finance_page(c, {"nextPage": "definitely-not-a-cursor"})
    assert paging.open_finance_page(c, {"nextPage": keyed})["items"][0]["i"] == 2


def test_open_finance_count_is_the_page_before_the_post_filter(make):
    # list_connections: "count = items in this page before the status filter" (open_finance.md section 6)
    conns = [{"id": i, "status": "ACTIVE" if i % 3 == 0 else "EXPIRED"} for i in range(7)]
    body = paging.open_finance_page(conns, {"limit": "4"}, post_filter={"status": "ACTIVE"}, with_count=True)
    assert list(body) == ["nextPage", "count", "items"]
    assert body["count"] == 4 and [x["id"] for x in body["items"]] == [0, 3] and body["nextPage"]
    last = paging.open_finance_page(conns, {"limit": "4", "nextPage": body["nextPage"]},
                                    post_filter={"status": "ACTIVE"}, with_count=True)
    assert last == {"nextPage": None, "count": 3, "items": [{"id": 6, "status": "ACTIVE"}]}
    # a filter before paging keeps pages full instead
    full = paging.open_finance_page(conns, {"limit": "2"}, filter={"status": "ACTIVE"}, with_count=True)
    assert full["count"] == 2 and [x["id"] for x in full["items"]] == [0, 3] and full["nextPage"]


# -- finoOS ---------------------------------------------------------------------------------------------------------

def test_fino_query_parsing_per_style():
    assert paging.parse_page_query({}, paging.FINO_CONTEXT) == paging.PageQuery(1, 10)
    assert paging.parse_page_query({"page": "3", "pageSize": "50"}, paging.FINO_CONTEXT) == paging.PageQuery(3, 10)
    assert paging.parse_page_query({}, paging.FINO_METADATA) == paging.PageQuery(1, 10)
    assert paging.parse_page_query({"page": "2", "pageSize": "1"}, paging.FINO_METADATA) == paging.PageQuery(2, 1)
    assert paging.parse_page_query({}, paging.FINO_METADATA_COCKPITS) == paging.PageQuery(1, 20)
    assert paging.parse_page_query({"page-size": "2"}, paging.FINO_METADATA_COCKPITS).page_size == 2
    with pytest.raises(ValidationFailed) as err:  # cockpits: min 2 (fino.md list_cockpits)
        paging.parse_page_query({"page-size": "1"}, paging.FINO_METADATA_COCKPITS)
    assert field_of(err) == "page-size"
    for style in (paging.FINO_CONTEXT, paging.FINO_METADATA, paging.FINO_METADATA_COCKPITS):
        for bad in ("0", "x", "-1"):
            with pytest.raises(ValidationFailed) as err:
                paging.parse_page_query({"page": bad}, style)
            assert field_of(err) == "page"
    with pytest.raises(ValidationFailed):
        paging.parse_page_query({"pageSize": "0"}, paging.FINO_METADATA)


def test_fino_context_envelope_as_documented():
    users = [{"userID": str(i)} for i in range(15)]
    body = paging.fino_page(users, {"page": "1"}, paging.FINO_CONTEXT, items_key="users", client="testClient",
                            tenant="testTenant")
    # fino.md list_users example: {"context": {"client":"testClient","count":15,"page":1,"pageSize":10,...}}
    assert body["context"] == {"client": "testClient", "count": 15, "page": 1, "pageSize": 10, "tenant": "testTenant"}
    assert [u["userID"] for u in body["users"]] == [str(i) for i in range(10)]
    second = paging.fino_page(users, {"page": "2"}, paging.FINO_CONTEXT, items_key="users", client="c", tenant="t")
    assert [u["userID"] for u in second["users"]] == [str(i) for i in range(10, 15)]
    past = paging.fino_page(users, {"page": "3"}, paging.FINO_CONTEXT, items_key="users", client="c", tenant="t")
    assert past["users"] == [] and past["context"]["count"] == 15 and past["context"]["page"] == 3
    with pytest.raises(ValueError):
        paging.fino_page(users, {}, paging.FINO_CONTEXT, items_key="users")


@pytest.mark.parametrize("total,size,pages", [(0, 10, 0), (1, 10, 1), (10, 10, 1), (11, 10, 2), (20, 10, 2)])
def test_fino_metadata_envelopes(total, size, pages):
    items = list(range(total))
    body = paging.fino_page(items, {"pageSize": str(size), "page": "1"}, paging.FINO_METADATA,
                            items_key="categorization")
    assert body == {"categorization": items[:size],
                    "metaData": {"page": 1, "pageSize": size, "pages": pages, "totalCount": total}}
    last = paging.fino_page(items, {"pageSize": str(size), "page": str(max(pages, 1))}, paging.FINO_METADATA,
                            items_key="categorization")
    assert last["categorization"] == items[(max(pages, 1) - 1) * size:]
    cockpits = paging.fino_page(items, {"page-size": str(size)}, paging.FINO_METADATA_COCKPITS, items_key="cockpits")
    assert cockpits["metaData"] == {"page": 1, "pageCount": pages, "pageSize": size, "totalCount": total}


def test_fino_pages_a_collection_like_a_sequence(make):
    c = make()
    fill(c, 7)
    seq = c.list()
    for page in ("1", "2", "3", "4"):
        q = {"page": page, "pageSize": "3"}
        assert paging.fino_page(c, q, paging.FINO_METADATA, items_key="x") == paging.fino_page(
            seq, q, paging.FINO_METADATA, items_key="x")
    body = paging.fino_page(c, {"pageSize": "2"}, paging.FINO_METADATA, items_key="x", filter={"even": True},
                            reverse=True)
    assert [d["i"] for d in body["x"]] == [6, 4] and body["metaData"]["totalCount"] == 4


# -- finleap --------------------------------------------------------------------------------------------------------

def test_finleap_query_parsing():
    assert paging.parse_offset_query({}) == paging.OffsetQuery(1000, 0)
    assert paging.parse_offset_query({"count": "0", "offset": "7"}) == paging.OffsetQuery(0, 7)
    for name in ("count", "offset"):
        for bad in ("abc", "-1", "2.0"):
            with pytest.raises(ValidationFailed) as err:
                paging.parse_offset_query({name: bad})
            assert field_of(err) == name and isinstance(err.value, BadRequest)


@pytest.mark.parametrize("count,offset,expected", [
    ("5", "0", [0, 1, 2, 3, 4]), ("6", "0", [0, 1, 2, 3, 4]), ("4", "0", [0, 1, 2, 3]), ("2", "4", [4]),
    ("2", "5", []), ("2", "3", [3, 4]), ("0", "0", []), (None, "1", [1, 2, 3, 4])])
def test_finleap_count_and_offset(make, count, offset, expected):
    c = make()
    fill(c, 5)
    query = {"offset": offset} if count is None else {"count": count, "offset": offset}
    assert [x["i"] for x in paging.finleap_page(c.list(), query)] == expected
    assert [x["i"] for x in paging.finleap_page(c, query, items_key="transactions")["transactions"]] == expected


def test_finleap_renders_bare_arrays_or_keyed_lists():
    assert paging.finleap_page([3, 2, 1], {}) == [3, 2, 1]  # list_contracts: a bare array (finleap-products.md 6)
    assert paging.finleap_page([3, 2, 1], {"count": "2"}, items_key="securities", reverse=True) == {
        "securities": [1, 2]}
    assert paging.finleap_page([], {"offset": "9"}, items_key="transactions") == {"transactions": []}


def test_collections_work_without_an_app():
    """A Collection needs only a store, ids and a clock (no Flask app, no request)."""
    store = MemoryStore()
    c = Collection(store, IdGen(store, SEED), Clock(store, FakeWall()), "t", "plain")
    assert c.create({})["id"] == expected_uuid("t", "plain", 1)


def test_paging_a_scope_with_cursors_stays_in_the_scope(make):
    """Cursors are item keys within the scope; neighbouring scopes' keys sort before and after them."""
    for owner in ("anna", "bob", "bob0", "bobby", "carl"):
        c = make("owned", scope=owner)
        for i in range(5):
            c.put(f"{owner[0]}{i}", {"owner": owner, "i": i})
    bob = make("owned", scope="bob")
    assert [ids for ids, _ in walk_keys(bob, 2)] == [["b0", "b1"], ["b2", "b3"], ["b4"]]
    assert [ids for ids, _ in walk_keys(bob, 2, reverse=True)] == [["b4", "b3"], ["b2", "b1"], ["b0"]]
    assert walk_keys(bob, 5) == [(["b0", "b1", "b2", "b3", "b4"], None)]
    assert [d["i"] for d in bob.window(3, 5)] == [3, 4]


def walk_keys(c, limit, **kw):
    pages, cursor = [], None
    while True:
        page = c.page(cursor, limit, **kw)
        pages.append(([f"{d['owner'][0]}{d['i']}" for d in page.items], page.next))
        if page.next is None:
            return pages
        cursor = page.next
        assert len(pages) < 20


def test_filtered_walks_read_growing_batches():
    """A selective filter must not cost one store round trip per page size: batches double up to 500."""
    store = MemoryStore()
    calls = []
    real = store.page
    store.page = lambda *a, **kw: calls.append(kw["limit"]) or real(*a, **kw)
    c = Collection(store, IdGen(store, SEED), Clock(store, FakeWall()), "t", "big")
    fill(c, 40)
    assert [d["i"] for d in c.page(None, 2, filter=lambda d: d["i"] == 37).items] == [37]
    assert calls == [3, 6, 12, 24]
    calls.clear()
    assert len(c.list()) == 40 and calls == [500]


def test_fino_sequence_reverse():
    body = paging.fino_page(list(range(5)), {"pageSize": "2", "page": "3"}, paging.FINO_METADATA, items_key="x",
                            reverse=True)
    assert body["x"] == [0] and body["metaData"]["pages"] == 3


@pytest.mark.parametrize("payload", [b"\xff\xfe", b"not json", b"[1]", b'{"o": -1}', b'{"o": true}', b'{"o": 1.5}',
                                     b'{"k": 1}', b'{"k": "a", "o": 1}', b"{}", b"null"])
def test_well_signed_but_malformed_cursors_are_a_400(payload):
    """Even a cursor with a valid MAC (e.g. signed under an older format) never reaches the store as garbage."""
    text = paging._b64(payload)
    with pytest.raises(ValidationFailed):
        paging.decode_cursor(f"{text}.{paging._mac(text, '', b'')}")
    bad_b64 = "a"  # one base64 character: incorrect padding
    with pytest.raises(ValidationFailed):
        paging.decode_cursor(f"{bad_b64}.{paging._mac(bad_b64, '', b'')}")
