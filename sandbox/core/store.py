"""State store: a small, backend-neutral key/value interface namespaced by tenant and collection.

Values are JSON documents. Backends: SQLite (default; embedded, file-backed, WAL, safe across gunicorn workers
and restarts), memory (unit tests) and Redis (several instances sharing one state). All pass tests/test_store.py.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from typing import Callable, Protocol


class Store(Protocol):
    def get(self, tenant: str, coll: str, key: str) -> dict | None: ...
    def exists(self, tenant: str, coll: str, key: str) -> bool: ...
    def put(self, tenant: str, coll: str, key: str, value: dict) -> None: ...
    def add(self, tenant: str, coll: str, key: str, value: dict) -> bool: ...
    def delete(self, tenant: str, coll: str, key: str) -> bool: ...
    def list(self, tenant: str, coll: str, prefix: str = "", limit: int | None = None,
             reverse: bool = False) -> list[tuple[str, dict]]: ...
    def update(self, tenant: str, coll: str, key: str, fn: Callable[[dict | None], dict | None]) -> dict | None: ...
    def incr(self, tenant: str, coll: str, key: str, by: int = 1) -> int: ...
    def trim(self, tenant: str, coll: str, keep: int) -> int: ...
    def clear(self, tenant: str | None = None) -> None: ...
    def tenants(self) -> list[str]: ...


def _dump(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class MemoryStore:
    """In-process store for unit tests; one lock makes update/incr atomic."""

    def __init__(self):
        self._data: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.RLock()

    def _coll(self, tenant, coll):
        return self._data.setdefault((tenant, coll), {})

    def get(self, tenant, coll, key):
        raw = self._data.get((tenant, coll), {}).get(key)
        return None if raw is None else json.loads(raw)

    def exists(self, tenant, coll, key):
        return key in self._data.get((tenant, coll), {})

    def put(self, tenant, coll, key, value):
        with self._lock:
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
            items = sorted((k, v) for k, v in self._data.get((tenant, coll), {}).items() if k.startswith(prefix))
        if reverse:
            items.reverse()
        return [(k, json.loads(v)) for k, v in items[:limit]]

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


def _locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class SQLiteStore:
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

    def get(self, tenant, coll, key):
        row = self._exec("SELECT value FROM kv WHERE tenant=? AND coll=? AND key=?", (tenant, coll, key)).fetchone()
        return None if row is None else json.loads(row[0])

    def exists(self, tenant, coll, key):
        return self._exec("SELECT 1 FROM kv WHERE tenant=? AND coll=? AND key=?",
                          (tenant, coll, key)).fetchone() is not None

    def put(self, tenant, coll, key, value):
        self._exec("INSERT OR REPLACE INTO kv VALUES (?,?,?,?)", (tenant, coll, key, _dump(value)))

    def add(self, tenant, coll, key, value):
        return self._exec("INSERT OR IGNORE INTO kv VALUES (?,?,?,?)", (tenant, coll, key, _dump(value))).rowcount == 1

    def delete(self, tenant, coll, key):
        return self._exec("DELETE FROM kv WHERE tenant=? AND coll=? AND key=?", (tenant, coll, key)).rowcount > 0

    def list(self, tenant, coll, prefix="", limit=None, reverse=False):
        sql = "SELECT key, value FROM kv WHERE tenant=? AND coll=?"
        args: list = [tenant, coll]
        if prefix:
            # keys are compared as text; prefix || char(0x10FFFF) bounds the range without LIKE escaping issues
            sql += " AND key >= ? AND key < ?"
            args += [prefix, prefix + "\U0010ffff"]
        sql += " ORDER BY key" + (" DESC" if reverse else "")
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [(k, json.loads(v)) for k, v in self._exec(sql, args).fetchall()]

    def update(self, tenant, coll, key, fn):
        conn = self._conn()
        self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))  # the write lock is taken here, or retried
        try:
            row = conn.execute("SELECT value FROM kv WHERE tenant=? AND coll=? AND key=?",
                               (tenant, coll, key)).fetchone()
            new = fn(None if row is None else json.loads(row[0]))
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
        cur = self._exec(
            "DELETE FROM kv WHERE tenant=? AND coll=? AND key NOT IN "
            "(SELECT key FROM kv WHERE tenant=? AND coll=? ORDER BY key DESC LIMIT ?)",
            (tenant, coll, tenant, coll, keep))
        return cur.rowcount

    def clear(self, tenant=None):
        if tenant is None:
            self._exec("DELETE FROM kv")
        else:
            self._exec("DELETE FROM kv WHERE tenant=?", (tenant,))

    def tenants(self):
        return [r[0] for r in self._exec("SELECT DISTINCT tenant FROM kv ORDER BY tenant").fetchall()]


class RedisStore:
    """Redis backend for several sandbox instances sharing one state: a hash per (tenant, collection).

    Ordered listing sorts the hash keys client-side; update() uses WATCH/MULTI optimistic transactions.
    """

    def __init__(self, url: str, namespace: str = "sandbox"):
        import redis  # optional extra: pip install provider-sandbox[redis]

        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.ns = namespace
        self.r.ping()

    def _h(self, tenant, coll):
        return f"{self.ns}:{tenant}:{coll}"

    def get(self, tenant, coll, key):
        raw = self.r.hget(self._h(tenant, coll), key)
        return None if raw is None else json.loads(raw)

    def exists(self, tenant, coll, key):
        return bool(self.r.hexists(self._h(tenant, coll), key))

    def put(self, tenant, coll, key, value):
        pipe = self.r.pipeline()
        pipe.hset(self._h(tenant, coll), key, _dump(value))
        pipe.sadd(f"{self.ns}:tenants", tenant)
        pipe.sadd(f"{self.ns}:colls:{tenant}", coll)
        pipe.execute()

    def add(self, tenant, coll, key, value):
        added = self.r.hsetnx(self._h(tenant, coll), key, _dump(value))
        if added:
            self.r.sadd(f"{self.ns}:tenants", tenant)
            self.r.sadd(f"{self.ns}:colls:{tenant}", coll)
        return bool(added)

    def delete(self, tenant, coll, key):
        return bool(self.r.hdel(self._h(tenant, coll), key))

    def list(self, tenant, coll, prefix="", limit=None, reverse=False):
        items = sorted((k, v) for k, v in self.r.hgetall(self._h(tenant, coll)).items() if k.startswith(prefix))
        if reverse:
            items.reverse()
        return [(k, json.loads(v)) for k, v in items[:limit]]

    def update(self, tenant, coll, key, fn):
        import redis

        name = self._h(tenant, coll)
        while True:
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(name)
                    raw = pipe.hget(name, key)
                    new = fn(None if raw is None else json.loads(raw))
                    pipe.multi()
                    if new is None:
                        pipe.hdel(name, key)
                    else:
                        pipe.hset(name, key, _dump(new))
                        pipe.sadd(f"{self.ns}:tenants", tenant)
                        pipe.sadd(f"{self.ns}:colls:{tenant}", coll)
                    pipe.execute()
                    return new
                except redis.WatchError:
                    continue

    def incr(self, tenant, coll, key, by=1):
        return self.update(tenant, coll, key, lambda old: {"n": (old or {"n": 0})["n"] + by})["n"]

    def trim(self, tenant, coll, keep):
        name = self._h(tenant, coll)
        keys = sorted(self.r.hkeys(name))
        drop = keys[: max(0, len(keys) - keep)]
        if drop:
            self.r.hdel(name, *drop)
        return len(drop)

    def clear(self, tenant=None):
        tenants = [tenant] if tenant else list(self.r.smembers(f"{self.ns}:tenants"))
        for t in tenants:
            colls = self.r.smembers(f"{self.ns}:colls:{t}")
            names = [self._h(t, c) for c in colls]
            if names:
                self.r.delete(*names)
            self.r.delete(f"{self.ns}:colls:{t}")
            self.r.srem(f"{self.ns}:tenants", t)

    def tenants(self):
        return sorted(t for t in self.r.smembers(f"{self.ns}:tenants") if self.r.exists(f"{self.ns}:colls:{t}"))


def open_store(url: str) -> Store:
    """Open a store from a URL: ``sqlite:///path`` (relative) or ``sqlite:////abs/path``, ``memory://``, ``redis://``."""
    if url.startswith("memory:"):
        return MemoryStore()
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///"):] or "sandbox.db")
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url)
    raise ValueError(f"unsupported store URL {url!r} (use sqlite:///path, memory:// or redis://host:port/db)")
