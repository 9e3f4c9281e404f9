"""Where one sandbox worker spends its time: the benchmark's operations (bench/flows.py) in-process, under cProfile.

    .venv/bin/python bench/profile_worker.py                   # cost table + top 25 functions per operation
    .venv/bin/python bench/profile_worker.py --what-if --sql   # + journal off / ticker on, + SQL per request
    .venv/bin/python bench/profile_worker.py --contention      # + 1 vs 2 processes on one SQLite file
    .venv/bin/python bench/profile_worker.py -n 1000 --top 40 --sort cumulative --ops poll-report

It builds the app with ``create_app`` on a temporary SQLite store (as ``sandbox serve`` does, minus gunicorn and
the socket) and drives it with Flask's test client, so the numbers are the sandbox's own cost per request:
routing, auth, store, jobs, journal and JSON. For scale, the ceiling app (``bench/ceiling_app.py``) is driven
the same way with the same response bytes. Nothing listens on a port. Only configuration knobs that exist
(``sandbox/config.py``) are varied; no sandbox code is patched.
"""
from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from sandbox import create_app  # noqa: E402

import ceiling_app  # noqa: E402
import flows  # noqa: E402

OPS = flows.OPERATIONS


def build(tmp: Path, name: str, ops=OPS, **overrides):
    """A sandbox app on its own SQLite file with each operation set up (bench/flows.py):
    (app, {op: request function}, {op: captured response for the ceiling})."""
    cfg = {"STORE": f"sqlite:///{tmp / name}.db", "SEED": 1, "JOB_DELAY": 3.0, **overrides}
    app = create_app(cfg)
    send = flows.wsgi_sender(app)
    client = app.test_client()
    fns, caps = {}, {}
    for op in ops:
        method, path, headers, body = flows.prepare(op, send)
        fns[op] = (lambda m, p, h, b: lambda: client.open(p, method=m, headers=h, data=b))(method, path, headers, body)
        r = fns[op]()
        assert 200 <= r.status_code <= 299, (op, r.status_code, r.data[:300])
        rule_method, rule = flows.ROUTES[op]
        caps[op] = {"method": rule_method, "rule": rule, "status": r.status_code, "content_type": r.content_type,
                    "body_b64": base64.b64encode(r.data).decode(),
                    "headers": {k: v for k, v in r.headers.items() if k.lower().startswith("x-sandbox")},
                    "spec": (method, path, headers, body)}
    return app, fns, caps


def build_ceiling(caps: dict):
    """The ceiling app in-process, answering each operation's same request (path, headers, body)."""
    client = ceiling_app.create_app(caps).test_client()
    return {op: (lambda m, p, h, b: lambda: client.open(p, method=m, headers=h, data=b))(*cap["spec"])
            for op, cap in caps.items()}


def statements_per_request(tmp: Path, ops=OPS, n: int = 20) -> dict[str, tuple[float, float]]:
    """{op: (SQL statements, write statements) per request} on the request's own connection (the journal's
    batches are written by a background thread: not counted here)."""
    app, fns, _ = build(tmp, "statements", ops)
    out = {}
    for op in ops:
        for _ in range(3):
            fns[op]()
        with SQLTrace(app) as trace:
            for _ in range(n):
                fns[op]()
        out[op] = (sum(trace.statements.values()) / n, trace.writes() / n)
    return out


def per_request_ms(fn, n: int) -> float:
    """CPU milliseconds per request of this process (every thread: the journal's flusher included), best of 3
    rounds: CPU time, not wall time, so other processes on a busy machine disturb it less."""
    for _ in range(min(20, n)):
        status = fn().status_code
        assert 200 <= status <= 299, status
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n * 1000)
    return best


_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")


class SQLTrace:
    """SQLite statements issued by the request thread (sqlite3 trace callback on the store's connection)."""

    def __init__(self, app):
        store = app.extensions["sandbox"].store
        self.conn = store._conn() if hasattr(store, "_conn") else None
        self.statements: Counter = Counter()
        self.transactions = 0
        self._in_tx = False

    def __enter__(self):
        if self.conn is not None:
            self.conn.set_trace_callback(self._trace)
        return self

    def __exit__(self, *exc):
        if self.conn is not None:
            self.conn.set_trace_callback(None)

    def _trace(self, sql: str):
        text = " ".join(_LITERALS.sub("?", sql).split())
        self.statements[text[:110]] += 1
        head = text.split(" ", 1)[0].upper() if text else ""
        if head == "BEGIN":
            self._in_tx = True
            self.transactions += 1
        elif head in ("COMMIT", "ROLLBACK"):
            self._in_tx = False
        elif head in ("INSERT", "DELETE", "UPDATE", "REPLACE") and not self._in_tx:
            self.transactions += 1  # autocommit write: one write transaction of its own

    def writes(self) -> int:
        return sum(n for s, n in self.statements.items() if s.split(" ", 1)[0].upper() in ("INSERT", "DELETE", "UPDATE"))


def contention(tmp: Path, op: str, seconds: float) -> tuple[float, float]:
    """Requests/s of ``op`` with one process, then with two processes on the same SQLite file (fork)."""
    def loop(fn, deadline) -> int:
        n = 0
        while time.perf_counter() < deadline and n < 10_000_000:
            fn()
            n += 1
        return n

    app, ops, _ = build(tmp, f"contention-{op}", (op,))
    t0 = time.perf_counter()
    one = loop(ops[op], t0 + seconds) / (time.perf_counter() - t0)
    reads = []
    pids = []
    t0 = time.perf_counter()
    for _ in range(2):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: its own connection (the store reconnects after fork), same file
            os.close(r)
            try:
                n = loop(ops[op], t0 + seconds)
                os.write(w, str(n).encode())
            finally:
                os._exit(0)
        os.close(w)
        reads.append(r)
        pids.append(pid)
    total = 0
    for r, pid in zip(reads, pids):
        with os.fdopen(r) as fh:
            total += int(fh.read() or 0)
        os.waitpid(pid, 0)
    return one, total / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=300, help="requests per operation and measurement (default 300)")
    p.add_argument("--top", type=int, default=25, help="functions listed per profile (0: no cProfile)")
    p.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    p.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    p.add_argument("--what-if", action="store_true", help="time each operation with the journal off / ticker on")
    p.add_argument("--sql", action="store_true", help="list the SQL statements of one request per operation")
    p.add_argument("--contention", type=float, nargs="?", const=3.0, default=None, metavar="SECONDS",
                   help="req/s with 1 and with 2 processes on one SQLite file (default 3 s each)")
    args = p.parse_args()
    if not 1 <= args.n <= 100_000:
        p.error("-n must be in [1, 100000]")
    if args.contention is not None and not 0 < args.contention <= 60:
        p.error("--contention must be in (0, 60] seconds")

    with tempfile.TemporaryDirectory(prefix="sandbox-profile-") as tmp:
        tmp = Path(tmp)
        app, ops, caps = build(tmp, "default", args.ops)
        ceiling = build_ceiling(caps)
        print(f"# Per-request CPU cost in one process (Flask test client, SQLite store, best of 3 x {args.n} "
              f"requests each)\n")
        print("| operation | sandbox CPU ms/request | ceiling CPU ms/request | sandbox − ceiling ms | SQL statements "
              "| write statements | write transactions |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        traces = {}
        for op in args.ops:
            ms, cms = per_request_ms(ops[op], args.n), per_request_ms(ceiling[op], args.n)
            with SQLTrace(app) as trace:
                for _ in range(20):
                    ops[op]()
            traces[op] = trace
            print(f"| {op} | {ms:.3f} | {cms:.3f} | {ms - cms:.3f} | {sum(trace.statements.values()) / 20:.1f} "
                  f"| {trace.writes() / 20:.1f} | {trace.transactions / 20:.1f} |")

        if args.sql:
            for op in args.ops:
                print(f"\n# SQL of one {op} request (average count over 20 requests)\n")
                for sql, n in traces[op].statements.most_common():
                    print(f"- {n / 20:4.1f} × `{sql}`")

        if args.what_if:
            variants = {"journal off (JOURNAL=0)": {"JOURNAL": False},
                        "ticker on, as `sandbox serve` (TICKER=1)": {"TICKER": True}}
            print("\n# What-if (configuration knobs only), ms/request\n")
            print("| operation | default | " + " | ".join(variants) + " |")
            print("|---|---:|" + "---:|" * len(variants))
            other = {name: build(tmp, f"variant{i}", args.ops, **cfg)[1]
                     for i, (name, cfg) in enumerate(variants.items())}
            for op in args.ops:
                cells = [f"{per_request_ms(ops[op], args.n):.3f}"]
                cells += [f"{per_request_ms(other[name][op], args.n):.3f}" for name in variants]
                print(f"| {op} | " + " | ".join(cells) + " |")

        if args.contention is not None:
            print(f"\n# SQLite contention: req/s with 1 process, then 2 processes on one file "
                  f"({args.contention:g} s each, {os.cpu_count()} CPUs)\n")
            print("| operation | 1 process | 2 processes | scaling (ideal 2.0 with 2 idle CPUs) |")
            print("|---|---:|---:|---:|")
            for op in args.ops:
                one, two = contention(tmp, op, args.contention)
                print(f"| {op} | {one:,.0f} | {two:,.0f} | {two / one:.2f} |")

        for op in args.ops if args.top > 0 else ():
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(args.n):
                ops[op]()
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).strip_dirs().sort_stats(args.sort).print_stats(args.top)
            text = out.getvalue()
            print(f"\n# {op}: top {args.top} functions by {args.sort} ({args.n} requests)\n")
            print(text[text.index("ncalls"):].rstrip() if "ncalls" in text else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
