"""The read-ahead gunicorn worker's bookkeeping of parked connections, on real socket pairs (no server needed)."""
import selectors
import socket
import time
from types import SimpleNamespace

import pytest

from sandbox.cli import READ_AHEAD_TIMEOUT, read_ahead_worker


@pytest.fixture()
def worker():
    cls = read_ahead_worker()
    return object.__new__(cls)   # only the connection bookkeeping is exercised, not gunicorn's start-up


@pytest.fixture()
def parked():
    """A kept-alive connection parked in the worker's selector, its keep-alive deadline already past."""
    server, client = socket.socketpair()
    server.setblocking(False)
    sel = selectors.DefaultSelector()
    conn = SimpleNamespace(sock=server, buf=bytearray(), deadline=time.monotonic() - 0.1)
    sel.register(server, selectors.EVENT_READ, conn)
    yield sel, {server.fileno(): conn}, conn, client
    sel.close()
    server.close()
    client.close()


def test_an_idle_kept_alive_connection_is_closed_at_its_deadline(worker, parked):
    sel, pending, conn, client = parked
    worker._expire(sel, pending)
    assert pending == {}
    assert client.recv(10) == b""     # closed: the client sees the end of the stream, not a reset


def test_a_request_that_arrived_while_the_worker_was_busy_is_not_reset(worker, parked):
    """The worker served a long request past this connection's keep-alive deadline, and meanwhile the client sent
    its next request on it: it must be served, not closed with the request unread (the client got ECONNRESET)."""
    sel, pending, conn, client = parked
    client.sendall(b"DELETE /_sandbox/clients/x HTTP/1.1\r\nHost: h\r\n\r\n")
    before = time.monotonic()
    worker._expire(sel, pending)
    assert pending == {conn.sock.fileno(): conn}
    assert conn.deadline >= before + READ_AHEAD_TIMEOUT - 1
    assert conn.sock.recv(4) == b"DELE"   # still there, unread until the worker's next turn


def test_a_started_request_past_its_deadline_is_dropped(worker, parked):
    """A client that began a request and stalled (bytes already read ahead) has used its time: dropped."""
    sel, pending, conn, client = parked
    conn.buf += b"GET / HT"
    client.sendall(b"T")
    worker._expire(sel, pending)
    assert pending == {}
