"""State store: a small, backend-neutral key/value interface namespaced by tenant and collection.

Values are JSON documents. Backends: SQLite (default; embedded, file-backed, WAL, safe across gunicorn workers
and restarts), memory (unit tests) and Redis (several instances sharing one state). All pass tests/test_store.py.
Keys order by code point (= UTF-8 byte order, which SQLite and Redis compare); ``page`` walks them with a keyset cursor.
"""
from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from bisect import bisect_left, bisect_right
from typing import Callable, Protocol

from .fastjson import dumps as _dump, loads as _loads   # orjson, with the json module's exact results


class Store(Protocol):
    def get(self, tenant: str, coll: str, key: str) -> dict | None: ...
    def get_text(self, tenant: str, coll: str, key: str) -> str | None: ...
    def put_many(self, rows: list[tuple[str, str, str, dict]]) -> None: ...
    def exists(self, tenant: str, coll: str, key: str) -> bool: ...
    def put(self, tenant: str, coll: str, key: str, value: dict) -> None: ...
    def add(self, tenant: str, coll: str, key: str, value: dict) -> bool: ...
    def delete(self, tenant: str, coll: str, key: str) -> bool: ...
    def list(self, tenant: str, coll: str, prefix: str = "", limit: int | None = None,
             reverse: bool = False) -> list[tuple[str, dict]]: ...
    def update(self, tenant: str, coll: str, key: str, fn: Callable[[dict | None], dict | None]) -> dict | None: ...
    def incr(self, tenant: str, coll: str, key: str, by: int = 1) -> int: ...
    def trim(self, tenant: str, coll: str, keep: int) -> int: ...
    def page(self, tenant: str, coll: str, *, prefix: str = "", after: str | None = None, limit: int = 100,
             reverse: bool = False) -> tuple[list[tuple[str, dict]], str | None]: ...
    def count(self, tenant: str, coll: str, prefix: str = "") -> int: ...
    def clear(self, tenant: str | None = None) -> None: ...
    def tenants(self) -> list[str]: ...
    def collections(self, tenant: str) -> list[tuple[str, int]]: ...


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no upper bound).

    Range scans use ``prefix <= key < prefix_end(prefix)``: exact for every key, unlike ``prefix + U+10FFFF``.
    """
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    nxt = ord(stripped[-1]) + 1
    if 0xD800 <= nxt <= 0xDFFF:  # surrogates cannot be stored as UTF-8: skip to the next encodable code point
        nxt = 0xE000
    return stripped[:-1] + chr(nxt)


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"page limit must be a positive integer, not {limit!r}")


def _cut(rows: list, limit: int) -> tuple[list, str | None]:
    """``rows`` holds up to limit + 1 items: the extra one only proves there is a next page."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1][0]
    return rows, None


class _Hooks:
    """Callbacks of a process-local write buffer (the journal's batches, core/journal.py): ``on_read(coll, fn)``
    runs ``fn`` before any read of ``coll`` here, ``on_clear(fn)`` before any clear, so a buffer is written before
    it could be missed or outlive a reset."""

    BATCHED_WRITES = True   # each write is its own commit here: buffering small writes into one batch pays

    def on_read(self, coll: str, fn: Callable[[], object]) -> None:
        self._read_hooks = {**getattr(self, "_read_hooks", {})}
        self._read_hooks.setdefault(coll, []).append(fn)

    def on_clear(self, fn: Callable[[], object]) -> None:
        self._clear_hooks = [*getattr(self, "_clear_hooks", []), fn]

    def _before_read(self, coll: str) -> None:
        hooks = getattr(self, "_read_hooks", None)
        if hooks and coll in hooks:
            for fn in hooks[coll]:
                fn()

    def _before_clear(self) -> None:
        for fn in getattr(self, "_clear_hooks", ()):
            fn()

    def _before_read_all(self) -> None:
        for fns in list(getattr(self, "_read_hooks", {}).values()):
            for fn in fns:
                fn()


class MemoryStore:
    """In-process store for unit tests; one lock makes update/incr atomic."""

    def __init__(self):
        self._data: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.RLock()

    def _coll(self, tenant, coll):
        return self._data.setdefault((tenant, coll), {})

    def get(self, tenant, coll, key):
        raw = self._data.get((tenant, coll), {}).get(key)
        return None if raw is None else _loads(raw)

    def get_text(self, tenant, coll, key):
        """The stored JSON text of a value, undecoded (a large document served as is), or None."""
        return self._data.get((tenant, coll), {}).get(key)

    def exists(self, tenant, coll, key):
        return key in self._data.get((tenant, coll), {})

    def put(self, tenant, coll, key, value):
        with self._lock:
            self._coll(tenant, coll)[key] = _dump(value)

    def put_many(self, rows):
        with self._lock:
            for tenant, coll, key, value in rows:
                self._coll(tenant, coll)[key] = _dump(value)

    def add(self, tenant, coll, key, value):
        with self._lock:
            items = self._coll(tenant, coll)
            if key in items:
                return False
            items[key] = _dump(value)
            return True

    def delete(self, tenant, coll, key):
        with self._lock:
            return self._data.get((tenant, coll), {}).pop(key, None) is not None

    def list(self, tenant, coll, prefix="", limit=None, reverse=False):
        with self._lock:
            items = self._data.get((tenant, coll), {})
            items = [(k, items[k]) for k in self._range(tenant, coll, prefix)]
        if reverse:
            items.reverse()
        return [(k, _loads(v)) for k, v in items[:limit]]

    def _range(self, tenant, coll, prefix) -> list[str]:
        """The sorted keys starting with ``prefix`` (call with the lock held)."""
        keys = sorted(self._data.get((tenant, coll), {}))
        end = prefix_end(prefix)
        return keys[bisect_left(keys, prefix): len(keys) if end is None else bisect_left(keys, end)]

    def page(self, tenant, coll, *, prefix="", after=None, limit=100, reverse=False):
        _check_limit(limit)
        with self._lock:
            keys = self._range(tenant, coll, prefix)
            if reverse:
                keys = keys[: len(keys) if after is None else bisect_left(keys, after)][::-1]
            else:
                keys = keys[0 if after is None else bisect_right(keys, after):]
            items = self._data[(tenant, coll)] if keys else {}
            rows = [(k, _loads(items[k])) for k in keys[: limit + 1]]
        return _cut(rows, limit)

    def count(self, tenant, coll, prefix=""):
        with self._lock:
            return len(self._range(tenant, coll, prefix))

    def update(self, tenant, coll, key, fn):
        with self._lock:
            new = fn(self.get(tenant, coll, key))
            if new is None:
                self.delete(tenant, coll, key)
            else:
                self.put(tenant, coll, key, new)
            return new

    def incr(self, tenant, coll, key, by=1):
        return self.update(tenant, coll, key, lambda old: {"n": (old or {"n": 0})["n"] + by})["n"]

    def trim(self, tenant, coll, keep):
        with self._lock:
            items = self._data.get((tenant, coll), {})
            drop = sorted(items)[: max(0, len(items) - keep)]
            for key in drop:
                del items[key]
            return len(drop)

    def clear(self, tenant=None):
        with self._lock:
            if tenant is None:
                self._data.clear()
            else:
                for name in [n for n in self._data if n[0] == tenant]:
                    del self._data[name]

    def tenants(self):
        return sorted({t for (t, _), items in self._data.items() if items})

    def collections(self, tenant: str) -> list[tuple[str, int]]:
        """(collection, item count) of every non-empty collection of ``tenant``, by name (the dashboard)."""
        with self._lock:
            return sorted((c, len(items)) for (t, c), items in self._data.items() if t == tenant and items)


def _locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class SQLiteStore(_Hooks):
    """SQLite in WAL mode; one connection per thread and process, BEGIN IMMEDIATE for read-modify-write.

    SQLite's own busy handler sleeps 1, 2, 5, 10... ms on a writer conflict; with several workers that dominates
    latency, so conflicts are retried here after 50-2000 microseconds instead (busy_timeout stays 0).
    """

    RETRY_FOR = 30.0

    _SCHEMA = ("CREATE TABLE IF NOT EXISTS kv (tenant TEXT NOT NULL, coll TEXT NOT NULL, key TEXT NOT NULL,"
               " value TEXT NOT NULL, PRIMARY KEY (tenant, coll, key)) WITHOUT ROWID")

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        self._conn()  # create the file and schema eagerly so start-up errors surface at once

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # never share a connection across a fork
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")  # first connection of a new file: let SQLite wait here
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(self._SCHEMA)
            conn.execute("PRAGMA busy_timeout=0")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _retry(self, fn):
        """Run ``fn`` (one statement or one transaction), retrying briefly while another writer holds the lock."""
        delay, deadline = 0.00005, None
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _locked(exc):
                    raise
                now = time.monotonic()
                deadline = deadline or now + self.RETRY_FOR
                if now > deadline:
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.002)

    def _exec(self, sql: str, args=()):
        return self._retry(lambda: self._conn().execute(sql, args))

    def _text(self, tenant, coll, key):
        self._before_read(coll)
        row = self._exec("SELECT value FROM kv WHERE tenant=? AND coll=? AND key=?", (tenant, coll, key)).fetchone()
        return None if row is None else row[0]

    def get(self, tenant, coll, key):
        text = self._text(tenant, coll, key)
        return None if text is None else _loads(text)

    def get_text(self, tenant, coll, key):
        """The stored JSON text of a value, undecoded (a large document served as is), or None."""
        return self._text(tenant, coll, key)

    def exists(self, tenant, coll, key):
        self._before_read(coll)
        return self._exec("SELECT 1 FROM kv WHERE tenant=? AND coll=? AND key=?",
                          (tenant, coll, key)).fetchone() is not None

    def put(self, tenant, coll, key, value):
        self._exec("INSERT OR REPLACE INTO kv VALUES (?,?,?,?)", (tenant, coll, key, _dump(value)))

    def put_many(self, rows):
        """Write several values in one transaction (one commit: the journal's batches)."""
        if not rows:
            return
        encoded = [(tenant, coll, key, _dump(value)) for tenant, coll, key, value in rows]
        conn = self._conn()
        self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            conn.executemany("INSERT OR REPLACE INTO kv VALUES (?,?,?,?)", encoded)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def add(self, tenant, coll, key, value):
        return self._exec("INSERT OR IGNORE INTO kv VALUES (?,?,?,?)", (tenant, coll, key, _dump(value))).rowcount == 1

    def delete(self, tenant, coll, key):
        return self._exec("DELETE FROM kv WHERE tenant=? AND coll=? AND key=?", (tenant, coll, key)).rowcount > 0

    def list(self, tenant, coll, prefix="", limit=None, reverse=False):
        sql, args = self._where(tenant, coll, prefix)
        sql = "SELECT key, value FROM kv" + sql + " ORDER BY key" + (" DESC" if reverse else "")
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        self._before_read(coll)
        rows = self._exec(sql, args).fetchall()
        return [(k, _loads(v)) for k, v in rows]

    @staticmethod
    def _where(tenant, coll, prefix, after=None, reverse=False) -> tuple[str, list]:
        """A WHERE clause that is a range on the primary key (tenant, coll, key): an index seek, never a scan."""
        sql, args = " WHERE tenant=? AND coll=?", [tenant, coll]
        if prefix:  # keys compare as text (BINARY: UTF-8 bytes); a range avoids LIKE and its escaping
            sql += " AND key >= ?"
            args.append(prefix)
        end = prefix_end(prefix)
        if end is not None:
            sql += " AND key < ?"
            args.append(end)
        if after is not None:
            sql += " AND key < ?" if reverse else " AND key > ?"
            args.append(after)
        return sql, args

    def page(self, tenant, coll, *, prefix="", after=None, limit=100, reverse=False):
        _check_limit(limit)
        sql, args = self._where(tenant, coll, prefix, after, reverse)
        sql = "SELECT key, value FROM kv" + sql + " ORDER BY key" + (" DESC" if reverse else "") + " LIMIT ?"
        self._before_read(coll)
        rows = self._exec(sql, args + [limit + 1]).fetchall()
        return _cut([(k, _loads(v)) for k, v in rows], limit)

    def count(self, tenant, coll, prefix=""):
        sql, args = self._where(tenant, coll, prefix)
        self._before_read(coll)
        return self._exec("SELECT count(*) FROM kv" + sql, args).fetchone()[0]

    def update(self, tenant, coll, key, fn):
        conn = self._conn()
        self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))  # the write lock is taken here, or retried
        try:
            row = conn.execute("SELECT value FROM kv WHERE tenant=? AND coll=? AND key=?",
                               (tenant, coll, key)).fetchone()
            new = fn(None if row is None else _loads(row[0]))
            if new is None:
                conn.execute("DELETE FROM kv WHERE tenant=? AND coll=? AND key=?", (tenant, coll, key))
            else:
                conn.execute("INSERT OR REPLACE INTO kv VALUES (?,?,?,?)", (tenant, coll, key, _dump(new)))
            conn.execute("COMMIT")
            return new
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def incr(self, tenant, coll, key, by=1):
        row = self._exec(
            "INSERT INTO kv VALUES (?,?,?,json_object('n', ?)) ON CONFLICT(tenant, coll, key) DO UPDATE SET"
            " value = json_object('n', json_extract(value, '$.n') + ?) RETURNING json_extract(value, '$.n')",
            (tenant, coll, key, by, by)).fetchone()
        return int(row[0])

    def trim(self, tenant, coll, keep):
        # a range below the (keep + 1)-th newest key: an index walk and a range delete (the former NOT IN of the
        # newest ``keep`` keys built a temporary table and probed it per row: 11.6 -> 3.5 ms per trim of 100 of 5,100)
        cur = self._exec(
            "DELETE FROM kv WHERE tenant=? AND coll=? AND key <= "
            "(SELECT key FROM kv WHERE tenant=? AND coll=? ORDER BY key DESC LIMIT 1 OFFSET ?)",
            (tenant, coll, tenant, coll, max(keep, 0)))
        return cur.rowcount

    def clear(self, tenant=None):
        self._before_clear()
        if tenant is None:
            self._exec("DELETE FROM kv")
        else:
            self._exec("DELETE FROM kv WHERE tenant=?", (tenant,))

    def tenants(self):
        return [r[0] for r in self._exec("SELECT DISTINCT tenant FROM kv ORDER BY tenant").fetchall()]

    def collections(self, tenant: str) -> list[tuple[str, int]]:
        """(collection, item count) of every non-empty collection of ``tenant``, by name (the dashboard)."""
        self._before_read_all()
        rows = self._exec("SELECT coll, COUNT(*) FROM kv WHERE tenant=? GROUP BY coll ORDER BY coll",
                          (tenant,)).fetchall()
        return [(coll, int(n)) for coll, n in rows]


class RedisStore(_Hooks):
    """Redis backend for several sandbox instances sharing one state: a hash per (tenant, collection).

    Beside each hash a sorted set (every score 0, so members order lexicographically by UTF-8 bytes) indexes its
    keys: ordered listing and paging read ranges of it (ZRANGEBYLEX) instead of loading the hash. Every write keeps
    both in one MULTI; update() uses WATCH/MULTI optimistic transactions. An index missing beside a non-empty hash
    (state written before the index existed) is rebuilt on first use.
    """

    # atomically rebuild the index KEYS[2] from the hash KEYS[1]
    _REINDEX = """
    redis.call('DEL', KEYS[2])
    local keys = redis.call('HKEYS', KEYS[1])
    for i = 1, #keys, 500 do
      local args = {}
      for j = i, math.min(i + 499, #keys) do args[#args + 1] = 0; args[#args + 1] = keys[j] end
      redis.call('ZADD', KEYS[2], unpack(args))
    end
    return #keys
    """

    def __init__(self, url: str, namespace: str = "sandbox"):
        import redis  # optional extra: pip install provider-sandbox[redis]

        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.ns = namespace
        self.r.ping()
        self._reindex = self.r.register_script(self._REINDEX)

    def _h(self, tenant, coll):
        return f"{self.ns}:{tenant}:{coll}"

    def _z(self, tenant, coll):
        return f"{self.ns}#idx:{tenant}:{coll}"  # "#" after the namespace: never a hash name ("{ns}:...")

    def _register(self, pipe, tenant, coll):
        pipe.sadd(f"{self.ns}:tenants", tenant)
        pipe.sadd(f"{self.ns}:colls:{tenant}", coll)

    def get(self, tenant, coll, key):
        raw = self.get_text(tenant, coll, key)
        return None if raw is None else _loads(raw)

    def get_text(self, tenant, coll, key):
        """The stored JSON text of a value, undecoded (a large document served as is), or None."""
        self._before_read(coll)
        return self.r.hget(self._h(tenant, coll), key)

    def put_many(self, rows):
        """Write several values in one MULTI (the journal's batches)."""
        pipe = self.r.pipeline()
        for tenant, coll, key, value in rows:
            pipe.hset(self._h(tenant, coll), key, _dump(value))
            pipe.zadd(self._z(tenant, coll), {key: 0})
            self._register(pipe, tenant, coll)
        pipe.execute()

    def exists(self, tenant, coll, key):
        return bool(self.r.hexists(self._h(tenant, coll), key))

    def put(self, tenant, coll, key, value):
        pipe = self.r.pipeline()
        pipe.hset(self._h(tenant, coll), key, _dump(value))
        pipe.zadd(self._z(tenant, coll), {key: 0})
        self._register(pipe, tenant, coll)
        pipe.execute()

    def add(self, tenant, coll, key, value):
        pipe = self.r.pipeline()
        pipe.hsetnx(self._h(tenant, coll), key, _dump(value))
        pipe.zadd(self._z(tenant, coll), {key: 0})  # idempotent: the key is in the hash either way
        self._register(pipe, tenant, coll)
        return bool(pipe.execute()[0])

    def delete(self, tenant, coll, key):
        pipe = self.r.pipeline()
        pipe.hdel(self._h(tenant, coll), key)
        pipe.zrem(self._z(tenant, coll), key)
        return bool(pipe.execute()[0])

    @staticmethod
    def _bounds(prefix, after, reverse) -> tuple[str, str]:
        """(min, max) ZRANGEBYLEX bounds for keys starting with ``prefix`` and beyond ``after``."""
        end = prefix_end(prefix)
        low = "[" + prefix if prefix else "-"
        high = "+" if end is None else "(" + end
        if after is not None:
            if reverse and (end is None or after < end):
                high = "(" + after
            elif not reverse and after >= prefix:
                low = "(" + after
        return low, high

    def _indexed(self, tenant, coll, command):
        """Run ``command(pipe)`` on the index in one MULTI with a size check; an index that disagrees with its hash
        (written by a version without the index) is rebuilt atomically and the command run again."""
        self._before_read(coll)
        h, z = self._h(tenant, coll), self._z(tenant, coll)
        pipe = self.r.pipeline()
        command(pipe)
        pipe.zcard(z)
        pipe.hlen(h)
        result, indexed, stored = pipe.execute()
        if indexed != stored:
            self._reindex(keys=[h, z])
            pipe = self.r.pipeline()
            command(pipe)
            result = pipe.execute()[0]
        return result

    def _rows(self, tenant, coll, keys):
        if not keys:
            return []
        values = self.r.hmget(self._h(tenant, coll), keys)
        return [(k, _loads(v)) for k, v in zip(keys, values) if v is not None]  # None: deleted meanwhile

    def list(self, tenant, coll, prefix="", limit=None, reverse=False):
        low, high = self._bounds(prefix, None, reverse)
        z, num = self._z(tenant, coll), -1 if limit is None else limit
        if reverse:
            keys = self._indexed(tenant, coll, lambda p: p.zrevrangebylex(z, high, low, 0, num))
        else:
            keys = self._indexed(tenant, coll, lambda p: p.zrangebylex(z, low, high, 0, num))
        return self._rows(tenant, coll, keys)

    def page(self, tenant, coll, *, prefix="", after=None, limit=100, reverse=False):
        _check_limit(limit)
        low, high = self._bounds(prefix, after, reverse)
        z = self._z(tenant, coll)
        if reverse:
            keys = self._indexed(tenant, coll, lambda p: p.zrevrangebylex(z, high, low, 0, limit + 1))
        else:
            keys = self._indexed(tenant, coll, lambda p: p.zrangebylex(z, low, high, 0, limit + 1))
        # decide "more" on the keys: a value deleted between the two reads shortens the page, not the walk
        more = len(keys) > limit
        keys = keys[:limit]
        return self._rows(tenant, coll, keys), (keys[-1] if more else None)

    def count(self, tenant, coll, prefix=""):
        low, high = self._bounds(prefix, None, False)
        z = self._z(tenant, coll)
        return self._indexed(tenant, coll, lambda p: p.zlexcount(z, low, high))

    def update(self, tenant, coll, key, fn):
        import redis

        name, index = self._h(tenant, coll), self._z(tenant, coll)
        while True:
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(name)
                    raw = pipe.hget(name, key)
                    new = fn(None if raw is None else _loads(raw))
                    pipe.multi()
                    if new is None:
                        pipe.hdel(name, key)
                        pipe.zrem(index, key)
                    else:
                        pipe.hset(name, key, _dump(new))
                        pipe.zadd(index, {key: 0})
                        self._register(pipe, tenant, coll)
                    pipe.execute()
                    return new
                except redis.WatchError:
                    continue

    def incr(self, tenant, coll, key, by=1):
        return self.update(tenant, coll, key, lambda old: {"n": (old or {"n": 0})["n"] + by})["n"]

    def trim(self, tenant, coll, keep):
        z = self._z(tenant, coll)
        drop = self._indexed(tenant, coll, lambda p: p.zrange(z, 0, -(max(keep, 0) + 1)))  # all but the newest ``keep``
        if drop:
            pipe = self.r.pipeline()
            pipe.hdel(self._h(tenant, coll), *drop)
            pipe.zrem(z, *drop)
            pipe.execute()
        return len(drop)

    def clear(self, tenant=None):
        self._before_clear()
        tenants = [tenant] if tenant else list(self.r.smembers(f"{self.ns}:tenants"))
        for t in tenants:
            colls = self.r.smembers(f"{self.ns}:colls:{t}")
            names = [n for c in colls for n in (self._h(t, c), self._z(t, c))]
            if names:
                self.r.delete(*names)
            self.r.delete(f"{self.ns}:colls:{t}")
            self.r.srem(f"{self.ns}:tenants", t)

    def tenants(self):
        return sorted(t for t in self.r.smembers(f"{self.ns}:tenants") if self.r.exists(f"{self.ns}:colls:{t}"))

    def collections(self, tenant: str) -> list[tuple[str, int]]:
        """(collection, item count) of every non-empty collection of ``tenant``, by name (the dashboard)."""
        self._before_read_all()
        counted = [(c, self.r.hlen(self._h(tenant, c))) for c in self.r.smembers(f"{self.ns}:colls:{tenant}")]
        return sorted((c, int(n)) for c, n in counted if n)


def open_store(url: str) -> Store:
    """Open a store from a URL: ``sqlite:///path`` (relative) or ``sqlite:////abs/path``, ``memory://``, ``redis://``."""
    if url.startswith("memory:"):
        return MemoryStore()
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///"):] or "sandbox.db")
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url)
    raise ValueError(f"unsupported store URL {url!r} (use sqlite:///path, memory:// or redis://host:port/db)")
