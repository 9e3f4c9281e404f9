"""pytest plugin for client authors (installed with the package, loaded automatically through its entry point).

Fixtures:

- ``sandbox_server`` (session): a sandbox served on a free loopback port in this process (every provider, in-memory
  store, seed from ``--sandbox-seed``), or the server named by ``--sandbox-url`` / ``SANDBOX_URL`` (a shared one:
  the admin token comes from ``--sandbox-admin-token`` / ``SANDBOX_ADMIN_TOKEN``). Under pytest-xdist every worker
  starts its own.
- ``sandbox`` (function): this test's own client and tenant on that server (deleted, and so cleaned, afterwards), with
  its credentials, each provider's base URL and helpers to move the clock, finish jobs, complete hosted flows, fire
  and collect webhooks on a local receiver, and assert on the journal ("my client called X with a valid body").
- ``sandbox_wsgi`` (function): the same for an in-process WSGI client (Flask test client), no sockets at all.

Example (a complete test)::

    import requests

    def test_my_open_finance_client(sandbox):
        api = sandbox.base_url("open_finance")
        token = requests.post(f"{api}/oauth/token", json={"userId": "u1", **sandbox.credentials("open_finance")})
        assert token.status_code == 200
        sandbox.assert_called("open_finance.create_token", valid=True)
"""
from __future__ import annotations

import os
import secrets
import socket
import threading
from typing import Any

import pytest

from .transport import Control, HTTPTransport, Receiver, WSGITransport

# How each provider takes the client id and secret (its own field names): what ``credentials(provider)`` returns.
CREDENTIAL_FIELDS = {
    "open_finance": ("clientId", "clientSecret"),     # JSON body of POST /oauth/token
    "finleap": ("client_id", "client_secret"),        # HTTP Basic, or the token body
    "fino": ("client_id", "client_secret"),           # form body of POST /auth
    "finpass": ("x-api-key", "x-api-secret"),         # headers
}


def pytest_addoption(parser):
    group = parser.getgroup("provider-sandbox", "provider-sandbox fixtures for testing your own client")
    group.addoption("--sandbox-url", default=os.environ.get("SANDBOX_URL") or None,
                    help="use this running sandbox instead of starting one (default: $SANDBOX_URL)")
    group.addoption("--sandbox-admin-token", default=os.environ.get("SANDBOX_ADMIN_TOKEN") or None,
                    help="admin token of a locked sandbox (default: $SANDBOX_ADMIN_TOKEN)")
    group.addoption("--sandbox-seed", type=int, default=int(os.environ.get("SANDBOX_SEED") or 0),
                    help="seed of the sandbox the plugin starts (default: $SANDBOX_SEED or 0)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SandboxServer:
    """A running sandbox: its root URL, admin token and (when started here) the in-process app."""

    def __init__(self, url: str, admin_token: str | None = None, app=None):
        self.url, self.admin_token, self.app = url.rstrip("/"), admin_token, app
        self._http = HTTPTransport(self.url, {}, "")
        self.control = Control(self._http, admin_token)

    def prefixes(self) -> dict[str, str]:
        """Provider name -> path prefix, from the server's own health answer."""
        return self.control.get("/health")["providers"]


def start_server(seed: int = 0, config: dict | None = None) -> tuple[SandboxServer, callable]:
    """Serve a fresh sandbox (memory store) on a free loopback port in a background thread; returns the server
    and a function that stops it."""
    from werkzeug.serving import make_server

    from .. import create_app
    from ..core.store import MemoryStore

    app = create_app({"SEED": seed, **(config or {})}, store=MemoryStore())
    app.extensions["sandbox"].start_ticker()
    port = _free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="sandbox-server", daemon=True)
    thread.start()

    def stop():
        httpd.shutdown()
        httpd.server_close()
    return SandboxServer(f"http://127.0.0.1:{port}", None, app), stop


class SandboxTenant:
    """One test's client and tenant on a sandbox, and the helpers a client author needs around it."""

    def __init__(self, root: str, control: Control, client: dict, prefixes: dict[str, str]):
        self.root, self.control, self._prefixes = root, control, prefixes
        self.client_id, self.client_secret, self.tenant = client["client_id"], client["client_secret"], \
            client["tenant"]
        control.tenant = self.tenant
        self._receivers: list[Receiver] = []

    # --- where and who -------------------------------------------------------------------------------------------
    def base_url(self, provider: str) -> str:
        """The URL your client uses instead of the provider's (e.g. ``.../open-finance``)."""
        return self.root + self._prefixes[provider]

    def credentials(self, provider: str) -> dict:
        """This tenant's client id and secret under the provider's own field names (Finpass: its headers)."""
        id_field, secret_field = CREDENTIAL_FIELDS[provider]
        return {id_field: self.client_id, secret_field: self.client_secret}

    def basic_auth(self) -> tuple[str, str]:
        """(client_id, client_secret) for ``requests``' ``auth=`` (finleap's Basic-authenticated calls)."""
        return self.client_id, self.client_secret

    # --- time and jobs -------------------------------------------------------------------------------------------
    def advance(self, seconds: float) -> dict:
        """Move this tenant's sandbox clock (due jobs, expiries and webhook retries happen now)."""
        return self.control.clock("advance", seconds=seconds)

    def set_time(self, at: str) -> dict:
        return self.control.clock("set", at=at)

    def freeze(self, at: str | None = None) -> dict:
        return self.control.clock("freeze", **({"at": at} if at else {}))

    def complete_job(self, job_id: str) -> dict:
        return self.control.job(job_id, "complete")

    def fail_job(self, job_id: str, message: str = "failed (sandbox)") -> dict:
        return self.control.job(job_id, "fail", message=message)

    def job_policy(self, kind: str | None = None, **policy) -> dict:
        """E.g. ``job_policy(mode="instant")`` or ``job_policy("open_finance.financial_report", mode="manual")``."""
        return self.control.policy(**({"kind": kind} if kind else {}), **policy)

    # --- hosted pages --------------------------------------------------------------------------------------------
    def flows(self, provider: str | None = None, status: str | None = None) -> list[dict]:
        query = "&".join(f"{k}={v}" for k, v in (("provider", provider), ("status", status)) if v)
        return self.control.get("/flows" + (f"?{query}" if query else ""))["flows"]

    def complete_flow(self, flow_id: str | None = None, outcome: str = "success", **options) -> dict:
        """Finish a hosted flow (widget, consent journey, Banking UI...) as the user would: ``success``,
        ``cancel`` or ``error``. Without an id: this tenant's newest open flow. Returns its redirect_url."""
        if flow_id is None:
            pending = [f for f in self.flows() if f["status"] == "PENDING"]
            if not pending:
                raise AssertionError("no open hosted flow in this tenant")
            flow_id = pending[-1]["id"]
        return self.control.complete_flow(flow_id, outcome, **options)

    # --- webhooks ------------------------------------------------------------------------------------------------
    def receiver(self, status: int = 200) -> Receiver:
        """A loopback HTTP server recording what the sandbox sends (webhooks, redirects); closed after the test."""
        receiver = Receiver(status)
        self._receivers.append(receiver)
        return receiver

    def deliveries(self, provider: str | None = None) -> list[dict]:
        """Deliver every due webhook now and return this tenant's delivery log."""
        return self.control.flush_webhooks(provider=provider)

    def fire_webhook(self, provider: str, **fields) -> list[dict]:
        return self.control._call("POST", "/webhooks/fire", {"provider": provider, **fields})["deliveries"]

    # --- journal -------------------------------------------------------------------------------------------------
    def journal(self, operation: str | None = None, limit: int = 500) -> list[dict]:
        """What your client sent and got, newest first, with the contract verdict of each part."""
        entries = self.control.journal(limit=limit)["entries"]
        if operation:   # a catalogue id ("open_finance.create_token") or its short name
            entries = [e for e in entries if e.get("operation") and (
                e["operation"] == operation or e["operation"].split(".", 1)[-1] == operation)]
        return entries

    def assert_called(self, operation: str, *, valid: bool | None = True, status: int | None = None) -> dict:
        """Assert the client called ``operation`` (catalogue id or short name); with ``valid=True`` the newest such
        call must have passed request validation (body, query, headers), with ``status`` answered that status.
        Returns the journal entry."""
        entries = self.journal(operation)
        if not entries:
            seen = sorted({e.get("operation") or e["path"] for e in self.journal()})
            raise AssertionError(f"{operation} was never called in this test (called: {seen})")
        entry = entries[0]
        problems = {part: verdict for part, verdict in (entry.get("verdict") or {}).items()
                    if part != "response" and verdict != "ok"}
        if valid is True and problems:
            raise AssertionError(f"{operation}: the request broke the contract: {problems}")
        if valid is False and not problems and entry["status"] < 400:
            raise AssertionError(f"{operation}: expected an invalid request, the sandbox accepted it")
        if status is not None and entry["status"] != status:
            raise AssertionError(f"{operation}: answered {entry['status']}, expected {status}")
        return entry

    def scenarios(self, provider: str | None = None) -> Any:
        """The magic values (test identifiers) of every provider, or one."""
        found = self.control.get("/scenarios")
        return found[provider] if provider else found

    def close(self) -> None:
        for receiver in self._receivers:
            receiver.close()
        self.control.cleanup()


def open_tenant(control: Control, root: str, prefixes: dict[str, str], label: str = "test") -> SandboxTenant:
    """A new client (unique id, random secret) in a tenant of its own; ``close()`` deletes it and its data."""
    client = control.create_client(client_id=f"{label}-{secrets.token_hex(6)}",
                                   client_secret=secrets.token_urlsafe(24))
    return SandboxTenant(root, control, client, prefixes)


@pytest.fixture(scope="session")
def sandbox_server(request):
    """The sandbox this session tests against (started here unless --sandbox-url names one)."""
    url = request.config.getoption("--sandbox-url")
    if url:
        yield SandboxServer(url, request.config.getoption("--sandbox-admin-token"))
        return
    server, stop = start_server(request.config.getoption("--sandbox-seed"))
    try:
        yield server
    finally:
        stop()


@pytest.fixture
def sandbox(sandbox_server, request):
    """This test's own client and tenant on the session's sandbox (see SandboxTenant)."""
    control = Control(HTTPTransport(sandbox_server.url, {}, ""), sandbox_server.admin_token)
    tenant = open_tenant(control, sandbox_server.url, sandbox_server.prefixes(), label="pytest")
    try:
        yield tenant
    finally:
        tenant.close()


@pytest.fixture(scope="session")
def sandbox_wsgi_app(request):
    """An in-process sandbox app (memory store) for WSGI tests: no sockets, no threads."""
    from .. import create_app
    from ..core.store import MemoryStore

    return create_app({"SEED": request.config.getoption("--sandbox-seed")}, store=MemoryStore())


@pytest.fixture
def sandbox_wsgi(sandbox_wsgi_app):
    """A SandboxTenant whose ``client`` is a Flask test client of the in-process app (``sandbox_wsgi.client.get(
    sandbox_wsgi.path("open_finance") + "/v2/...")``)."""
    transport = WSGITransport(sandbox_wsgi_app, {}, "")
    control = Control(transport)
    prefixes = {name: mounted.prefix for name, mounted in sandbox_wsgi_app.extensions["sandbox"].providers.items()}
    tenant = open_tenant(control, "http://localhost", prefixes, label="wsgi")
    tenant.client = transport.client
    tenant.path = lambda provider: prefixes[provider]
    try:
        yield tenant
    finally:
        tenant.close()
