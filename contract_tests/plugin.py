"""pytest plugin: options and fixtures shared by every provider's contract tests.

In-process by default (a fresh app on an in-memory store); with --base-url the same tests go over HTTP to any
server. Tests marked ``control`` need the sandbox control API and skip themselves with --real-provider.
"""
from __future__ import annotations

from contextlib import contextmanager

import os
import secrets

import pytest

from sandbox import spec

from .transport import Control, HTTPTransport, WSGITransport


def pytest_addoption(parser):
    group = parser.getgroup("contract", "provider contract tests")
    group.addoption("--base-url", default=None, help="provider base URL, e.g. http://127.0.0.1:8080/open-finance")
    group.addoption("--client-id", default="sandbox-client")
    group.addoption("--client-secret", default="sandbox-secret")
    group.addoption("--user-id", default="contract-user@example.com")
    group.addoption("--admin-token", default=os.environ.get("SANDBOX_ADMIN_TOKEN") or None,
                    help="the sandbox's admin token, for a locked control API (default: $SANDBOX_ADMIN_TOKEN)")
    group.addoption("--real-provider", action="store_true", default=False,
                    help="the target is the real provider: skip tests that need the sandbox control API")


def pytest_configure(config):
    config.addinivalue_line("markers", "control: needs the sandbox control API (skipped against a real provider)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--real-provider"):
        skip = pytest.mark.skip(reason="needs the sandbox control API; target is the real provider")
        for item in items:
            if "control" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def contract_options(request):
    """This test's options (a fresh copy per test). Against a served sandbox, make_transport replaces the client
    credentials with a client of the test's own, in a tenant of its own, deleted (and so cleaned) afterwards."""
    o = request.config.getoption
    options = {"base_url": o("--base-url"), "client_id": o("--client-id"), "client_secret": o("--client-secret"),
               "user_id": o("--user-id"), "real": o("--real-provider"), "admin_token": o("--admin-token"),
               "cleanup": []}
    yield options
    for step in reversed(options["cleanup"]):
        step()


def served_routes(app, provider: str) -> dict[str, tuple[str, str, list[str]]]:
    """The app's own operation table (what it really serves), paths from the server root."""
    return app.extensions["sandbox"].providers[provider].absolute_routes


@contextmanager
def frozen_transport(contract_options, provider: str, app_factory, at=None):
    """(transport, control) for one contract test on a frozen clock (at ``at`` if given); afterwards the job
    policies and the clock are restored. Over HTTP every control call stays in the test's own tenant."""
    transport, control = make_transport(contract_options, provider, app_factory)
    if control:
        control.reset()
        control.clock("freeze", **({"at": at} if at is not None else {}))
    try:
        yield transport, control
    finally:
        if control:
            control.clear_policy()
            control.clock("reset")


def make_transport(contract_options, provider: str, app_factory):
    """(transport, control): WSGI into a fresh app, or HTTP to --base-url (control API at the server root).

    Operations are addressed by catalogue id; their routes come from the target's own operation table
    (``/_sandbox/operations``), or from the vendored catalogue when the target is the real provider, so a path
    changed in the catalogue moves the contract tests with it.
    """
    base = contract_options["base_url"]
    prefix = spec.provider(provider)["sandbox_prefix"]
    if base and contract_options["real"]:
        transport = HTTPTransport(base, spec.routes(provider), "")
        return transport, None
    if base:
        root = base.rstrip("/")
        root = root[: -len(prefix)] if root.endswith(prefix) else root
        control = Control(HTTPTransport(root, {}, ""), contract_options.get("admin_token"))
        routes = {name: (r["method"], r["path"], r["aliases"])
                  for name, r in control.get("/operations")[provider].items()}
        transport = HTTPTransport(root, routes, "")
        transport.raw_prefix = prefix
        # a sandbox these checks did not start: never reset, reseed or move the clock of anybody else's tenant
        own = control.create_client(client_id=f"check-{provider.replace('_', '-')}-{secrets.token_hex(6)}",
                                    client_secret=secrets.token_urlsafe(24))
        control.tenant = own["tenant"]
        contract_options.update(client_id=own["client_id"], client_secret=own["client_secret"])
        contract_options.setdefault("cleanup", []).append(control.cleanup)
        return transport, control
    app = app_factory()
    transport = WSGITransport(app, served_routes(app, provider), "")
    transport.raw_prefix = prefix
    return transport, Control(transport)
