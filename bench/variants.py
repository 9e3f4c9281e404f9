"""What-if under real load: the sandbox app with configuration variants, served like ``sandbox serve``.

    .venv/bin/python bench/variants.py                      # 6 s per run, 16 connections, every operation
    .venv/bin/python bench/variants.py --duration 10 --connections 64 --ops create-report
    .venv/bin/python bench/variants.py --worker-class sync gthread read-ahead --variants "as served"

Each variant is ``create_app(config)`` with some knobs of ``sandbox/config.py`` changed (ticker, journal), under
gunicorn with the same settings as ``sandbox serve --workers 2`` (its read-ahead worker, keepalive 5; or, to
choose the server by measurement, gunicorn's sync or gthread worker with ``--worker-class``), on a temporary
SQLite store; ``sandbox serve`` itself cannot turn the ticker off, hence this script. Load, reset between runs
and CPU accounting are those of ``bench/run.py`` (wrk required). Only 127.0.0.1 is used; every server is stopped.

This module is also the WSGI entry point of the variant servers: ``BENCH_VARIANT_CONFIG`` (JSON) -> ``app``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

VARIANTS = {
    "as served": {"TICKER": True},
    "ticker off": {"TICKER": False},
    "journal off": {"TICKER": True, "JOURNAL": False},
    "ticker + journal off": {"TICKER": False, "JOURNAL": False},
    "journal unbatched": {"TICKER": True, "JOURNAL_BATCH": False},   # each entry written by its request
}

WORKERS = {"read-ahead": ["--worker-class", "variants.ReadAhead"], "sync": ["--worker-class", "sync"],
           "gthread": ["--worker-class", "gthread", "--threads", "4"],
           "granian": []}   # not gunicorn: granian's WSGI mode (Rust HTTP server, one blocking thread per worker)


def server_command(worker: str, workers: int, host: str, port: int) -> list[str]:
    """The command serving ``variants:app`` with ``worker``: a gunicorn worker class, or granian."""
    bin_dir = Path(sys.executable).parent
    if worker == "granian":
        return [str(bin_dir / "granian"), "--interface", "wsgi", "--workers", str(workers), "--blocking-threads",
                "1", "--http", "1", "--no-ws", "--log-level", "warning", "--host", host, "--port", str(port),
                "variants:app"]
    return [str(bin_dir / "gunicorn"), "--workers", str(workers), *WORKERS[worker], "--keep-alive", "5",
            "--log-level", "warning", "--bind", f"{host}:{port}", "variants:app"]

if os.environ.get("BENCH_VARIANT_WORKER") == "read-ahead":   # gunicorn loads the worker class by name from here
    sys.path.insert(0, str(HERE.parent))
    from sandbox.cli import read_ahead_worker
    ReadAhead = read_ahead_worker()

if os.environ.get("BENCH_VARIANT_CONFIG"):  # imported by gunicorn in a variant server
    from sandbox import create_app

    app = create_app(json.loads(os.environ["BENCH_VARIANT_CONFIG"]))


def main() -> int:
    sys.path.insert(0, str(HERE))
    import run as bench

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=6.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--ops", nargs="+", choices=bench.OPERATIONS, default=list(bench.OPERATIONS))
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--worker-class", nargs="+", choices=list(WORKERS), default=["read-ahead"],
                   help="server(s) for each variant: gunicorn's read-ahead (sandbox serve's, the default), sync or "
                        "gthread worker, or granian's WSGI mode")
    args = p.parse_args()
    if not 0 < args.duration <= 120:
        p.error("--duration must be in (0, 120]")
    if not shutil.which("wrk"):
        bench.log("wrk is required (apt-get install wrk, or run bench/run.py once as root)")
        return 1
    import signal
    signal.signal(signal.SIGTERM, bench._raise_on_signal)  # stop the servers on kill too
    print("| variant | worker | operation | conns | req/s | p50 ms | p99 ms | non-2xx | server cores | other cores |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    failed = False
    with tempfile.TemporaryDirectory(prefix="sandbox-variants-") as tmp:
        tmp = Path(tmp)
        for name, worker in [(n, w) for n in args.variants for w in args.worker_class]:
            port = bench.free_port()
            config = {"STORE": f"sqlite:///{tmp / f'{port}.db'}", "SEED": 1, "JOB_DELAY": 3.0, **VARIANTS[name]}
            env = {**os.environ, "BENCH_VARIANT_CONFIG": json.dumps(config), "BENCH_VARIANT_WORKER": worker,
                   "SANDBOX_JOURNAL_BATCH": "0" if config.get("JOURNAL_BATCH") is False else "1",
                   "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
            if worker == "granian" and not (Path(sys.executable).parent / "granian").exists():
                bench.log("granian is not installed (pip install granian, or make bench installs the dev extras)")
                failed = True
                continue
            server = bench.Server(name, server_command(worker, args.workers, bench.HOST, port), port,
                                  tmp / f"{port}.log", env=env)
            try:
                server.start()
                server.wait_healthy()
                caps, _ = bench.capture_flow(port, args.ops)
                for op in args.ops:
                    ctx = bench.fresh_state(port, op, caps)
                    lua = bench.write_lua(tmp / f"{port}-{op}.lua", op, ctx)
                    bench.run_wrk(port, lua, args.connections, 1)  # warm-up
                    with bench.CpuMeter(server) as meter:
                        r = bench.run_wrk(port, lua, args.connections, args.duration)
                    c = meter.result
                    failed |= bool(r["non2xx"] or r["socket_errors"])
                    print(f"| {name} | {worker} | {op} | {args.connections} | {r['rps']:,.1f} | {r['p50_ms']:.2f} "
                          f"| {r['p99_ms']:.2f} | {r['non2xx']} | {c['server_cores']:.2f} | {c['other_cores']:.2f} |",
                          flush=True)
            except bench.BenchError as exc:
                bench.log(f"{name}: {exc}")
                failed = True
            finally:
                server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
