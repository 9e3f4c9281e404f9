"""Transports: the same request goes into the WSGI app (in-process) or over HTTP with requests; the control API
client (Control) and a loopback receiver for webhooks and redirects. Used by the contract tests and by the pytest
plugin for client authors (sandbox.testing.pytest_plugin).

Operations are addressed by catalogue id; paths come from the providers' route tables, never written in tests.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import requests

from sandbox.core.operations import _PARAM


@dataclass
class Result:
    operation: str
    method: str
    url: str
    status: int
    headers: dict
    content: bytes
    request_body: bytes | None = None
    request_headers: dict = field(default_factory=dict)

    @property
    def json(self):
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def curl(self) -> str:
        """A curl line that reproduces the request (secrets included: it is a local sandbox)."""
        parts = ["curl", "-i", "-X", self.method, self.url]
        for k, v in self.request_headers.items():
            parts += ["-H", f"{k}: {v}"]
        if self.request_body:
            parts += ["--data-binary", self.request_body.decode("utf-8", "replace")]
        return " ".join(shlex.quote(p) for p in parts)


def build_path(path: str, params: dict) -> str:
    return _PARAM.sub(lambda m: quote(str(params[m.group(1)]), safe=""), path)


class Transport:
    """Base: ``call(op, ...)`` resolves the operation's route and sends one request."""

    def __init__(self, routes: dict[str, tuple], prefix: str):
        self.routes, self.prefix = routes, prefix
        self.raw_prefix = prefix   # what a ``raw_path`` is relative to (the provider's API prefix)

    def url_for(self, op: str, path_params: dict | None = None, alias: int | None = None) -> tuple[str, str]:
        name = op.split(".", 1)[1]
        method, path, aliases = self.routes[name]
        if alias is not None:
            chosen = aliases[alias]
            method, path = chosen.split(" ", 1) if " " in chosen else (method, chosen)
        return method, build_path(path, path_params or {})

    def call(self, op: str, *, path_params: dict | None = None, query: dict | None = None, json_body=None,
             data: bytes | str | None = None, headers: dict | None = None, alias: int | None = None,
             method: str | None = None, raw_path: str | None = None) -> Result:
        verb, path = self.url_for(op, path_params, alias)
        verb = method or verb
        path = self.raw_prefix + raw_path if raw_path is not None else self.prefix + path
        headers = dict(headers or {})
        body: bytes | None = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif data is not None:
            body = data.encode() if isinstance(data, str) else data
        qs = ("?" + urlencode(query)) if query else ""
        status, resp_headers, content, url = self.send(verb, path + qs, headers, body)
        return Result(op, verb, url, status, resp_headers, content, body, headers)

    def send(self, method, path, headers, body):
        raise NotImplementedError

    def get(self, path: str, headers: dict | None = None) -> Result:
        """A raw GET of a full path below the server root (hosted pages, downloads)."""
        status, h, content, url = self.send("GET", path, headers or {}, None)
        return Result("raw", "GET", url, status, h, content)


class WSGITransport(Transport):
    def __init__(self, app, routes, prefix):
        super().__init__(routes, prefix)
        self.client = app.test_client()

    def send(self, method, path, headers, body):
        resp = self.client.open(path, method=method, headers=headers, data=body)
        return resp.status_code, dict(resp.headers), resp.get_data(), "http://localhost" + path


class HTTPTransport(Transport):
    def __init__(self, root: str, routes, prefix):
        super().__init__(routes, prefix)
        self.root = root.rstrip("/")
        self.session = requests.Session()

    def send(self, method, path, headers, body):
        url = self.root + path
        resp = self.session.request(method, url, headers=headers, data=body, timeout=30, allow_redirects=False)
        return resp.status_code, dict(resp.headers), resp.content, url


class Control:
    """The sandbox control API (/_sandbox), over the same transport as the provider calls.

    ``tenant`` (set when the checks run against a served sandbox they did not start): every call that takes a
    tenant is scoped to the checks' own, so a reset, a clock move or a job policy never touches anybody else's data;
    clients a test creates get a unique id (``create_client`` answers the real one) and are deleted by ``cleanup``.
    """

    def __init__(self, transport: Transport, admin_token: str | None = None, tenant: str | None = None):
        self.t = transport
        self.admin_token = admin_token   # a locked sandbox (SANDBOX_ADMIN_TOKEN) wants it on every control call
        self.tenant = tenant
        self.created: list[str] = []

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        if self.tenant and not path.startswith("/clients"):   # a new client's "tenant" names its own
            if method == "GET" and "tenant=" not in path:
                path += ("&" if "?" in path else "?") + urlencode({"tenant": self.tenant})
            elif method != "GET":
                body = self._scoped(body or {})
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.admin_token:
            headers["Authorization"] = f"Bearer {self.admin_token}"
        status, _, content, url = self.t.send(method, "/_sandbox" + path, headers,
                                              json.dumps(body).encode() if body is not None else None)
        assert status < 300, f"control API {method} {path} -> {status}: {content[:300]!r}"
        return json.loads(content) if content else {}

    def _scoped(self, body: dict) -> dict:
        return {"tenant": self.tenant, **body} if self.tenant and "tenant" not in body else body

    def reset(self, tenant=None):
        tenant = tenant or self.tenant
        return self._call("POST", "/reset", {"tenant": tenant} if tenant else {})

    def clock(self, action: str, **body):
        return self._call("POST", f"/clock/{action}", self._scoped(body))

    def policy(self, **body):
        return self._call("PUT", "/jobs/policy", self._scoped(body))

    def clear_policy(self, **body):
        return self._call("DELETE", "/jobs/policy", self._scoped(body))

    def job(self, job_id: str, action: str | None = None, **body):
        if action:
            return self._call("POST", f"/jobs/{job_id}/{action}", self._scoped(body))
        return self._call("GET", f"/jobs/{job_id}")

    def create_client(self, **body):
        """A new client; against a shared sandbox its id (and tenant) get a unique suffix: use the answer's."""
        if self.tenant:
            import uuid

            suffix = uuid.uuid4().hex[:12]
            for key in ("client_id", "tenant"):
                if body.get(key):
                    body[key] = f"{body[key]}-{suffix}"
        created = self._call("POST", "/clients", body)
        self.created.append(created["client_id"])
        return created

    def delete_client(self, client_id: str) -> None:
        self._call("DELETE", f"/clients/{quote(client_id, safe='')}")

    def cleanup(self) -> None:
        """Delete every client this control created (each one's tenant is released, clean)."""
        while self.created:
            client_id = self.created.pop()
            try:
                self.delete_client(client_id)
            except AssertionError:
                pass   # deleted by the test itself

    def journal(self, tenant: str | None = None, **query):
        qs = urlencode({"tenant": tenant or self.tenant or "sandbox-client", **query})
        return self._call("GET", f"/journal?{qs}")

    def complete_flow(self, flow_id: str, outcome: str = "success", **options):
        return self._call("POST", f"/flows/{quote(flow_id, safe='')}/complete",
                          self._scoped({"outcome": outcome, **options}))

    def get(self, path: str):
        return self._call("GET", path)

    def flush_webhooks(self, tenant: str | None = None, provider: str | None = None, rounds: int = 50) -> list:
        """Deliver every due webhook now (``/tick``) and return the delivery log once nothing is in flight.

        Requests only enqueue deliveries; in-process the tick sends them at once, against a served sandbox its own
        delivery worker may hold a lease on one, so the log is re-read (bounded) until none is pending."""
        import time

        tenant = tenant or self.tenant or "sandbox-client"
        qs = urlencode({"tenant": tenant, **({"provider": provider} if provider else {})})
        deliveries: list = []
        for _ in range(rounds):
            self._call("POST", "/tick", {})
            deliveries = self._call("GET", f"/webhooks?{qs}")["deliveries"]
            if not any(d["status"] == "pending" and not d["attempts"] for d in deliveries):
                return deliveries
            time.sleep(0.05)
        return deliveries


class Receiver:
    """A loopback HTTP server that records what is sent to it (webhooks, redirect callbacks)."""

    def __init__(self, status: int = 200):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = []
        answer = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                 "body": body})
                # deliveries (any method a subscriber chose) get the configured answer; redirect GETs a 200
                self.send_response(200 if self.command == "GET" else answer.status)
                self.end_headers()
            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record

            def log_message(self, *args):
                pass

        self.status = status
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
