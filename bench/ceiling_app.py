"""The benchmark's ceiling: the cheapest Flask app that can answer the sandbox's three Open Finance calls.

It serves, byte for byte, the responses that ``bench/run.py`` captured from a real sandbox at the start of the
run (same status, same Content-Type, same body, same extra header), behind the same server the sandbox uses
(gunicorn, sync workers, same worker count, keepalive and logging settings as ``sandbox serve``). Whatever the
sandbox is slower than this costs is the sandbox's own work: auth, store, jobs, journal, JSON.

The captured responses come from a JSON file named by ``BENCH_CEILING_RESPONSES`` (or ``--responses``), loaded
once at import::

    {"token":  {"status": 200, "content_type": "application/json", "headers": {...}, "body_b64": "..."},
     "create": {...}, "poll": {...}}

Run: ``python bench/ceiling_app.py --port 8099 --workers 2 --responses /tmp/responses.json``
"""
from __future__ import annotations

import argparse
import base64
import json
import os

from flask import Flask, Response

OPERATIONS = ("token", "create", "poll")


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        captured = json.load(fh)
    missing = [op for op in OPERATIONS if op not in captured]
    if missing:
        raise SystemExit(f"ceiling_app: {path} lacks captured responses for {', '.join(missing)}")
    return captured


def create_app(captured: dict) -> Flask:
    app = Flask(__name__)

    def fixed(op: str):
        spec = captured[op]
        body = base64.b64decode(spec["body_b64"])
        status, ctype, headers = int(spec["status"]), spec["content_type"], dict(spec.get("headers") or {})

        def view(**_params):
            return Response(body, status=status, content_type=ctype, headers=headers)

        view.__name__ = f"ceiling_{op}"
        return view

    # the same paths and methods as the sandbox (prefix /open-finance)
    app.add_url_rule("/open-finance/oauth/token", view_func=fixed("token"), methods=["POST"])
    app.add_url_rule("/open-finance/financial-report/<customerId>", endpoint="create", view_func=fixed("create"),
                     methods=["POST"])
    app.add_url_rule("/open-finance/financial-report/<jobId>", endpoint="poll", view_func=fixed("poll"),
                     methods=["GET"])

    @app.get("/_sandbox/health")
    def health():
        return {"status": "ok", "ceiling": True}

    return app


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
        # mirrors sandbox/cli.py serve (workers > 1) setting for setting
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", "warning")

        def load(self):
            return wsgi

    _Gunicorn().run()


if __name__ == "__main__":
    main()
