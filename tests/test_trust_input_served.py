"""Issue 7: a chunked body over the limit gets the provider's 413 from a real served sandbox (gunicorn with one
worker and with two), and the server stops reading it at the limit. Raw sockets: no client library
second-guesses the framing."""
from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from tests.served import serve_sandbox

LIMIT = 1024 * 1024


@pytest.fixture(scope="module", params=[1, 2], ids=["one-worker", "two-workers"])
def server(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    with serve_sandbox(["--workers", str(request.param), "--store", f"sqlite:///{folder / 'sandbox.db'}"],
                       folder) as served:
        yield served.port


def send_chunked(port: int, path: str, size: int, headers: dict | None = None, finish: bool = False):
    """POST ``size`` bytes of JSON-ish body in 64 KB chunks; unless ``finish``, stop without the last chunk so the
    server must answer from what it read. Returns (status, headers, body, bytes the server took)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
             "Transfer-Encoding: chunked", "Connection: close", *[f"{k}: {v}" for k, v in (headers or {}).items()]]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sent = 0
    try:
        while sent < size:
            n = min(64 * 1024, size - sent)
            sock.sendall(b"%x\r\n" % n + b" " * n + b"\r\n")
            sent += n
        if finish:
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass   # the server answered and closed while we were still sending
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    fields = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:])
    return status, fields, json.loads(body[:_length(data)] or b"null")


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


@pytest.mark.parametrize("path,check", [
    ("/open-finance/oauth/token", lambda b: b == {"type": "CLIENT_ERROR", "message": "request entity too large"}),
    ("/finleap/onetime/income-report", lambda b: b["error"]["code"] == 1010),
    ("/_sandbox/clients", lambda b: b["error"]["status"] == 413),
])
def test_served_chunked_body_over_the_limit_is_a_413(server, path, check):
    started = time.perf_counter()
    status, headers, body = send_chunked(server, path, LIMIT + 256 * 1024)
    assert status == 413, body
    assert check(body), body
    assert time.perf_counter() - started < 10


def test_served_chunked_body_under_the_limit_is_read(server):
    body = json.dumps({"userId": "chunked@example.com", "clientId": "sandbox-client", "clientSecret": "sandbox-secret"})
    sock = socket.create_connection(("127.0.0.1", server), timeout=20)
    sock.sendall((f"POST /open-finance/oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  f"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{len(body):x}\r\n{body}\r\n0\r\n\r\n").encode())
    data = b""
    while piece := sock.recv(65536):
        data += piece
    sock.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:300]
    assert b'"accessToken"' in data


@pytest.mark.parametrize("size", [LIMIT + 10, 3 * LIMIT], ids=["read-ahead", "over-read-ahead"])
def test_a_pooled_client_keeps_working_after_a_413(server, size):
    """A client with a connection pool (requests.Session) sends a body over the limit, then its next request: that
    one must be answered, never fail with "connection closed without response" (the server either keeps the
    connection usable or says ``Connection: close`` on the 413 so the client opens a new one)."""
    base = f"http://127.0.0.1:{server}"
    session = requests.Session()
    body = b'{"userId": "' + b"x" * size + b'"}'
    first = session.post(base + "/open-finance/oauth/token", data=body, headers={"Content-Type": "application/json"},
                         timeout=30)
    assert first.status_code == 413
    for _ in range(3):
        after = session.post(base + "/open-finance/oauth/token", data="userId=a",
                             headers={"Content-Type": "text/plain"}, timeout=30)
        assert after.status_code == 400
