"""The benchmark's ceiling: the cheapest Flask app that can answer the sandbox's benchmark requests.

It serves, byte for byte, the responses that ``bench/run.py`` captured from a real sandbox at the start of the
run (same status, same Content-Type, same body, same extra headers), behind the same server the sandbox uses
(gunicorn with ``sandbox serve``'s read-ahead worker, same worker count, keepalive, no access log: the benchmark
starts the sandbox with ``--quiet``). Whatever the sandbox is slower than this costs is the sandbox's own work:
auth, store, jobs, journal, JSON.

The captured responses come from a JSON file named by ``BENCH_CEILING_RESPONSES`` (or ``--responses``), loaded
once at import: one entry per operation with its route (bench/flows.py ``ROUTES``)::

    {"token": {"method": "POST", "rule": "/open-finance/oauth/token", "status": 200,
               "content_type": "application/json", "headers": {...}, "body_b64": "..."}, ...}

Run: ``python bench/ceiling_app.py --port 8099 --workers 2 --responses /tmp/responses.json``
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path

from flask import Flask, Response

# captures written before the routes were in the file (token/create/poll of the report flow)
_LEGACY = {"token": ("POST", "/open-finance/oauth/token"),
           "create": ("POST", "/open-finance/financial-report/<customerId>"),
           "poll": ("GET", "/open-finance/financial-report/<jobId>")}


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        captured = json.load(fh)
    if not isinstance(captured, dict) or not captured:
        raise SystemExit(f"ceiling_app: {path} holds no captured responses")
    for op, spec in captured.items():
        if "rule" not in spec and op in _LEGACY:
            spec["method"], spec["rule"] = _LEGACY[op]
        if not spec.get("rule") or not spec.get("method"):
            raise SystemExit(f"ceiling_app: the capture of {op!r} in {path} has no method and rule")
    return captured


def create_app(captured: dict) -> Flask:
    app = Flask(__name__)

    def fixed(op: str, spec: dict):
        body = base64.b64decode(spec["body_b64"])
        status, ctype, headers = int(spec["status"]), spec["content_type"], dict(spec.get("headers") or {})

        def view(**_params):
            return Response(body, status=status, content_type=ctype, headers=headers)

        view.__name__ = f"ceiling_{op}"
        return view

    for op, spec in captured.items():   # the same paths and methods as the sandbox
        app.add_url_rule(spec["rule"], endpoint=op, view_func=fixed(op, spec), methods=[spec["method"]])

    @app.get("/_sandbox/health")
    def health():
        return {"status": "ok", "ceiling": True}

    return app


def worker_class() -> str:
    """``sandbox serve``'s gunicorn worker (read-ahead, keep-alive), so both servers differ only in the app."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        from sandbox.cli import read_ahead_worker
        return read_ahead_worker()
    except ImportError:   # an older sandbox without it served with gunicorn's sync worker
        return "sync"


_PATH = os.environ.get("BENCH_CEILING_RESPONSES")
app = create_app(_load(_PATH)) if _PATH else None  # importable as ceiling_app:app when the variable is set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--responses", default=_PATH, help="captured responses (JSON); default $BENCH_CEILING_RESPONSES")
    args = parser.parse_args()
    if not args.responses:
        parser.error("--responses or BENCH_CEILING_RESPONSES is required")
    wsgi = app if app is not None and args.responses == _PATH else create_app(_load(args.responses))

    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        # mirrors sandbox/cli.py run_server setting for setting (the sandbox runs with --quiet: no access log)
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("worker_class", worker_class())
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", "warning")

        def load(self):
            return wsgi

    _Gunicorn().run()


if __name__ == "__main__":
    main()
