"""The transports, control client and receiver now live in sandbox.testing.transport (also used by the pytest plugin
for client authors); this module keeps the contract tests' imports working."""
from sandbox.testing.transport import (  # noqa: F401
    Control, HTTPTransport, Receiver, Result, Transport, WSGITransport, build_path)
