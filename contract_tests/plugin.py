"""pytest plugin: options and fixtures shared by every provider's contract tests.

In-process by default (a fresh app on an in-memory store); with --base-url the same tests go over HTTP to any
server. Tests marked ``control`` need the sandbox control API and skip themselves with --real-provider.
"""
from __future__ import annotations

import pytest

from .transport import Control, HTTPTransport, WSGITransport


def pytest_addoption(parser):
    group = parser.getgroup("contract", "provider contract tests")
    group.addoption("--base-url", default=None, help="provider base URL, e.g. http://127.0.0.1:8080/open-finance")
    group.addoption("--client-id", default="sandbox-client")
    group.addoption("--client-secret", default="sandbox-secret")
    group.addoption("--user-id", default="contract-user@example.com")
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


@pytest.fixture(scope="session")
def contract_options(request):
    o = request.config.getoption
    return {"base_url": o("--base-url"), "client_id": o("--client-id"), "client_secret": o("--client-secret"),
            "user_id": o("--user-id"), "real": o("--real-provider")}


def make_transport(contract_options, provider: str, prefix: str, routes: dict, app_factory):
    """(transport, control): WSGI into a fresh app, or HTTP to --base-url (control API at the server root)."""
    base = contract_options["base_url"]
    if base:
        root = base[: -len(prefix)] if base.rstrip("/").endswith(prefix) else base
        transport = HTTPTransport(root, routes, prefix if base.rstrip("/").endswith(prefix) else "")
        control = HTTPTransport(root, routes, "")
    else:
        app = app_factory()
        transport = WSGITransport(app, routes, prefix)
        control = transport
    return transport, (None if contract_options["real"] else Control(control))
