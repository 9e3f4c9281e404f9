"""Where one sandbox worker spends its time: the three benchmark operations in-process, under cProfile.

    .venv/bin/python bench/profile_worker.py              # 300 requests per operation, top 25 functions
    .venv/bin/python bench/profile_worker.py -n 1000 --top 40 --sort cumulative
    .venv/bin/python bench/profile_worker.py --what-if    # also time them with the journal off, etc.

It builds the app with ``create_app`` on a temporary SQLite store (as ``sandbox serve`` does, minus gunicorn and
the socket) and drives it with Flask's test client, so the numbers are the sandbox's own cost per request: routing,
auth, store, jobs, journal and JSON. Nothing listens on a port. Only configuration knobs that exist
(``sandbox/config.py``) are varied; no sandbox code is patched.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import create_app  # noqa: E402

TOKEN_BODY = {"userId": "bench@example.com", "clientId": "sandbox-client", "clientSecret": "sandbox-secret"}
CUSTOMER = "318422557"


def build(tmp: Path, name: str, **overrides):
    db = tmp / f"{name}.db"
    cfg = {"STORE": f"sqlite:///{db}", "SEED": 1, "JOB_DELAY": 3.0, **overrides}
    app = create_app(cfg)
    client = app.test_client()
    tok = client.post("/open-finance/oauth/token", json=TOKEN_BODY).get_json()["accessToken"]
    auth = {"Authorization": f"Bearer {tok}"}
    job = client.post(f"/open-finance/financial-report/{CUSTOMER}", headers={**auth, "Content-Type": "application/json"}
                      ).get_json()["jobId"]
    for _ in range(2):
        done = client.get(f"/open-finance/financial-report/{job}", headers=auth).get_json()
    assert done.get("status") == "DONE", done
    ops = {
        "token": lambda: client.post("/open-finance/oauth/token", json=TOKEN_BODY),
        "create-report": lambda: client.post(f"/open-finance/financial-report/{CUSTOMER}",
                                             headers={**auth, "Content-Type": "application/json"}),
        "poll-report": lambda: client.get(f"/open-finance/financial-report/{job}", headers=auth),
    }
    return app, ops, db


def per_request_ms(fn, n: int) -> float:
    for _ in range(min(20, n)):
        assert fn().status_code == 200
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1000


class CountingSQL:
    """Counts SQLite statements per request via sqlite3's trace callback on the store's connection."""

    def __init__(self, app):
        store = app.extensions["sandbox"].store
        self.conn = store._conn() if hasattr(store, "_conn") else None
        self.n = 0
        self.writes = 0
        if self.conn is not None:
            self.conn.set_trace_callback(self._trace)

    def _trace(self, sql: str):
        self.n += 1
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if head in ("INSERT", "DELETE", "UPDATE", "BEGIN"):
            self.writes += 1

    def close(self):
        if self.conn is not None:
            self.conn.set_trace_callback(None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=300, help="requests per operation (default 300)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    p.add_argument("--ops", nargs="+", default=["token", "create-report", "poll-report"])
    p.add_argument("--what-if", action="store_true", help="also time each operation under other configurations")
    args = p.parse_args()
    if not 1 <= args.n <= 100_000:
        p.error("-n must be in [1, 100000]")

    with tempfile.TemporaryDirectory(prefix="sandbox-profile-") as tmp:
        tmp = Path(tmp)
        app, ops, _ = build(tmp, "default")
        print(f"# per-request cost in one process (Flask test client, SQLite store, {args.n} requests each)\n")
        print("| operation | ms/request | req/s (1 core) | SQL statements/request | of which writes |")
        print("|---|---:|---:|---:|---:|")
        for op in args.ops:
            ms = per_request_ms(ops[op], args.n)
            counter = CountingSQL(app)
            for _ in range(50):
                ops[op]()
            counter.close()
            print(f"| {op} | {ms:.2f} | {1000 / ms:,.0f} | {counter.n / 50:.1f} | {counter.writes / 50:.1f} |")

        if args.what_if:
            variants = {"journal off (JOURNAL=0)": {"JOURNAL": False}}
            print("\n# what-if (configuration knobs only)\n")
            print("| operation | default ms | " + " | ".join(variants) + " |")
            print("|---|---:|" + "---:|" * len(variants))
            other = {name: build(tmp, f"v{i}", **cfg)[1] for i, (name, cfg) in enumerate(variants.items())}
            for op in args.ops:
                base = per_request_ms(ops[op], args.n)
                cells = [f"{per_request_ms(other[name][op], args.n):.2f}" for name in variants]
                print(f"| {op} | {base:.2f} | " + " | ".join(cells) + " |")

        for op in args.ops:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(args.n):
                ops[op]()
            prof.disable()
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out).strip_dirs().sort_stats(args.sort)
            stats.print_stats(args.top)
            text = out.getvalue()
            print(f"\n# {op}: top {args.top} by {args.sort} ({args.n} requests)\n")
            print(text.split("\n", 1)[1].strip("\n") if "function calls" in text else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
