"""Command line: ``sandbox serve`` runs the sandbox, ``sandbox check`` runs contract tests against any server."""
from __future__ import annotations

import os
import sys

import click

from .config import load_config


@click.group()
@click.version_option(package_name="provider-sandbox")
def main():
    """provider-sandbox: a local, stateful stand-in for four financial-data provider APIs.

    \b
    `sandbox serve` serves all four on one port (default http://127.0.0.1:8080):
      open_finance  Open Finance (Israel)            /open-finance   (data API also at /open-finance/v2)
      finleap       finleap connect / finX (Germany) /finleap
      finpass       Finpass (India)                  /finpass
      fino          finoOS (Germany)                 /fino/api       (hosted pages under /fino)
    plus the control API at /_sandbox. `sandbox check <provider>` runs the contract tests.
    """


def is_loopback_bind(host: str) -> bool:
    """True when ``host`` binds loopback only (127.0.0.0/8, ::1, localhost); 0.0.0.0, ::, LAN IPs and names that
    resolve anywhere else are reachable from other machines."""
    import ipaddress
    import socket

    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    if name.lower() == "localhost":
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses)


LOCKED_BIND_HELP = (
    "refusing to serve the control API (/_sandbox: reset, clients, clock) unauthenticated on {host}, which other "
    "machines can reach.\nSet an admin token, e.g.\n"
    "    SANDBOX_ADMIN_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))') sandbox serve ...\n"
    "    docker run -e SANDBOX_ADMIN_TOKEN=<token> ...\n"
    "and send it on control calls as 'Authorization: Bearer <token>' or 'X-Sandbox-Admin-Token: <token>'; or "
    "bind 127.0.0.1; or, if you really want an open control API, pass --insecure-open-control-api.")


@main.command()
@click.option("--host", envvar="SANDBOX_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="SANDBOX_PORT", default=8080, type=int, show_default=True)
@click.option("--workers", envvar="SANDBOX_WORKERS", default=1, type=int, show_default=True,
              help="gunicorn worker processes (sharing the store; memory:// needs 1).")
@click.option("--store", envvar="SANDBOX_STORE", default="sqlite:///sandbox.db", show_default=True,
              help="sqlite:///path, memory:// (single worker only) or redis://host:port/db")
@click.option("--seed", envvar="SANDBOX_SEED", default=0, type=int, show_default=True)
@click.option("--job-delay", envvar="SANDBOX_JOB_DELAY", default=3.0, type=float, show_default=True,
              help="Seconds on the sandbox clock before a job is done; 0 = instant.")
@click.option("--admin-token", envvar="SANDBOX_ADMIN_TOKEN", default="", show_default=False,
              help="Lock the control API (/_sandbox): calls need 'Authorization: Bearer <token>'. Required when "
                   "--host is not a loopback address. Prefer the environment variable (visible in ps otherwise).")
@click.option("--insecure-open-control-api", envvar="SANDBOX_INSECURE_OPEN_CONTROL_API", is_flag=True,
              default=False, help="Serve an open control API on a non-loopback address anyway (anyone who can reach "
                                  "the port can reset the sandbox and create clients).")
@click.option("--reset/--keep", default=False, help="Start from an empty store (default: keep state).")
@click.option("--quiet", envvar="SANDBOX_QUIET", is_flag=True, default=False,
              help="No access log (default: one line per request on stdout, secrets in query strings redacted).")
def serve(host, port, workers, store, seed, job_delay, admin_token, insecure_open_control_api, reset, quiet):
    """Serve every provider on one port."""
    if not admin_token and not insecure_open_control_api and not is_loopback_bind(host):
        raise click.UsageError(LOCKED_BIND_HELP.format(host=host))
    overrides = {"HOST": host, "PORT": port, "WORKERS": workers, "STORE": store, "SEED": seed, "JOB_DELAY": job_delay,
                 "TICKER": True, "ADMIN_TOKEN": admin_token,
                 "INSECURE_OPEN_CONTROL_API": bool(insecure_open_control_api)}
    if store.startswith("memory:") and workers > 1:
        raise click.BadParameter("the memory store is per process; use sqlite or redis with --workers > 1",
                                 param_hint="--store")
    if workers < 1:
        raise click.BadParameter("at least one worker", param_hint="--workers")
    check_store_writable(store)
    from . import create_app
    from .core.context import Sandbox

    boot = Sandbox(load_config(overrides))  # applies --seed/--reset once, before workers start
    if reset:
        boot.store.clear()
    boot.seed.set(seed)
    lock = "control API locked by admin token" if admin_token else "control API open"
    click.echo(f"provider-sandbox on http://{host}:{port} (store {store}, seed {seed}, workers {workers}, {lock}; "
               f"providers: open_finance /open-finance, finleap /finleap, finpass /finpass, fino /fino/api)", err=True)
    from .core.journal import install_log_redaction

    install_log_redaction()   # the access log never shows page tokens, codes or signatures from query strings
    run_server(host, port, workers, lambda: create_app(overrides), quiet)


def run_server(host: str, port: int, workers: int, app_factory, quiet: bool = False) -> None:
    """One production server for one worker or many: gunicorn with the read-ahead worker below (a slow client holds
    no worker), one access-log line per request on stdout unless ``quiet``. Each worker builds its own app."""
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", read_ahead_worker())
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", None if quiet else "-")
            self.cfg.set("access_log_format", ACCESS_LOG_FORMAT)
            self.cfg.set("loglevel", "warning")

        def load(self):
            return app_factory()

    _Gunicorn().run()


ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms worker=%(p)s'


def check_store_writable(store: str) -> None:
    """Fail fast, with the fix, when an SQLite store's file or folder is not writable (a read-only volume, a
    missing folder): otherwise every request would fail later with a database error."""
    if not store.startswith("sqlite:///"):
        return
    from pathlib import Path

    path = Path(store[len("sqlite:///"):]).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    problem = None
    if not folder.is_dir():
        problem = f"the folder {folder} does not exist"
    elif path.exists() and not os.access(path, os.R_OK | os.W_OK):
        problem = f"the store file {path} is not readable and writable by this user (uid {os.getuid()})"
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = f"the folder {folder} is not writable by this user (uid {os.getuid()})"
    if problem:
        raise click.UsageError(
            f"cannot use the store {store}: {problem}. SQLite needs to write the file and its -wal/-shm files "
            f"beside it. Create the folder or fix its permissions (docker: mount a volume the image's user 10001 "
            f"may write, e.g. -v sandbox-data:/data), or choose another path with --store / SANDBOX_STORE.")


# --- the gunicorn worker -------------------------------------------------------------------------------------
READ_AHEAD_TIMEOUT = 30.0      # seconds a connection may take to send its whole request (it holds no worker)
READ_AHEAD_MAX_PENDING = 1024  # connections still sending, per worker; beyond that the oldest is dropped
READ_AHEAD_BODY = 1024 * 1024 + 65536  # bodies up to the sandbox's 1 MB limit are read ahead; larger get the 413
IO_TIMEOUT = 5.0               # once a worker serves a request: longest wait on one socket read or write
_HEAD_END = b"\r\n\r\n"
_worker_class = None


def read_ahead_worker():
    """gunicorn's sync worker, except that a connection reaches the application only once its whole request has
    arrived (head, and a body up to the size limit), read ahead without blocking in one selector loop, and that
    kept-alive connections go back to that loop between requests.

    The sync worker blocks on a client that sends half a request (two such clients froze ``--workers 2`` for the
    30 s worker timeout); gthread's threads only raise the number of stalled clients it takes (its thread blocks
    on a half-sent request). Here a slow or idle client costs a file descriptor, never the worker; requests are
    served one at a time in the worker's only thread, as on sync."""
    global _worker_class
    if _worker_class is not None:
        return _worker_class
    import errno
    import os
    import re
    import selectors
    import socket
    import time
    from datetime import datetime

    from gunicorn import http, util
    from gunicorn.http import wsgi
    from gunicorn.workers.sync import SyncWorker

    length_re = re.compile(rb"^content-length:[ \t]*([0-9]{1,12})[ \t]*\r?$", re.I | re.M)
    chunked_re = re.compile(rb"^transfer-encoding:[^\r\n]*chunked", re.I | re.M)
    expect_re = re.compile(rb"^expect:[ \t]*100-continue", re.I | re.M)

    class _Pending:
        __slots__ = ("sock", "addr", "listener", "buf", "deadline")

        def __init__(self, sock, addr, listener, buf=b"", timeout=READ_AHEAD_TIMEOUT):
            self.sock, self.addr, self.listener = sock, addr, listener
            self.buf = bytearray(buf)
            self.deadline = time.monotonic() + timeout

        def complete(self) -> bool:
            """The request head has arrived, and its body too (or the body will not be read ahead)."""
            end = self.buf.find(_HEAD_END)
            if end < 0:
                return len(self.buf) > 65536   # an oversized head: the parser answers it
            head = bytes(self.buf[:end + 2])
            if expect_re.search(head):
                return True                    # the client waits for "100 Continue" before its body
            body = len(self.buf) - end - 4
            if chunked_re.search(head):
                return self.buf.endswith(b"0\r\n\r\n") or body > READ_AHEAD_BODY
            match = length_re.search(head)
            length = int(match.group(1)) if match else 0
            return body >= length or length > READ_AHEAD_BODY

        def whole(self) -> bool:
            """The whole request (head and body) is in the buffer: after the response, what the application left
            unread can be dropped and the connection kept alive."""
            end = self.buf.find(_HEAD_END)
            if end < 0:
                return False
            head = bytes(self.buf[:end + 2])
            body = len(self.buf) - end - 4
            if chunked_re.search(head):
                return self.buf.endswith(b"0\r\n\r\n")
            match = length_re.search(head)
            return body >= (int(match.group(1)) if match else 0)

    class ReadAheadWorker(SyncWorker):
        def run(self):
            if self.cfg.is_ssl:
                return super().run()
            sel = selectors.DefaultSelector()
            for listener in self.sockets:
                listener.setblocking(False)
                sel.register(listener, selectors.EVENT_READ, listener)
            sel.register(self.PIPE[0], selectors.EVENT_READ, None)
            pending: dict[int, _Pending] = {}
            try:
                while self.alive:
                    self.notify()
                    for key, _ in sel.select(timeout=1.0):
                        if key.data is None:
                            try:
                                os.read(self.PIPE[0], 64)
                            except OSError:
                                pass
                        elif isinstance(key.data, _Pending):
                            self._read(sel, pending, key.data)
                        else:
                            self._accept(sel, pending, key.data)
                        if not self.alive:
                            break
                    self._expire(sel, pending)
                    if not self.is_parent_alive():
                        return
            finally:
                for conn in pending.values():
                    util.close(conn.sock)
                sel.close()

        def _accept(self, sel, pending, listener):
            # one per wake-up: kept-alive connections stay with the worker that accepted them, and taking eight at
            # once let one worker hold every connection of a load test (0.86 vs 0.00 cores, issue 14). One per
            # turn gives the other workers a chance at a burst but no even split (a worker looping faster still
            # takes most: bench/README.md). The listener stays readable: the next turn takes the next.
            for _ in range(1):
                try:
                    client, addr = listener.accept()
                except OSError as exc:
                    if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                        return
                    raise
                util.close_on_exec(client)
                self._park(sel, pending, _Pending(client, addr, listener))

        def _park(self, sel, pending, conn):
            """Wait, without blocking, for the rest of the connection's next request."""
            conn.sock.setblocking(False)
            pending[conn.sock.fileno()] = conn
            sel.register(conn.sock, selectors.EVENT_READ, conn)
            if len(pending) > READ_AHEAD_MAX_PENDING:
                self._drop(sel, pending, min(pending.values(), key=lambda c: c.deadline))

        def _read(self, sel, pending, conn):
            try:
                data = conn.sock.recv(262144)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._drop(sel, pending, conn)
                return
            if not conn.buf:   # a request begins (on a kept-alive connection too): it has the whole read-ahead time
                conn.deadline = max(conn.deadline, time.monotonic() + READ_AHEAD_TIMEOUT)
            conn.buf += data
            if not conn.complete():
                return
            sel.unregister(conn.sock)
            del pending[conn.sock.fileno()]
            while conn is not None and self.alive:
                conn.sock.settimeout(IO_TIMEOUT)   # blocking, bounded: a client that stops reading or sending
                conn = self.serve(conn)
                if conn is not None and not conn.complete():
                    self._park(sel, pending, conn)
                    return
            if conn is not None:
                util.close(conn.sock)

        def _expire(self, sel, pending):
            now = time.monotonic()
            for conn in [c for c in pending.values() if c.deadline <= now]:
                if not conn.buf and self._waiting(conn.sock):
                    # an idle kept-alive connection whose next request arrived while this worker served another
                    # one past the keep-alive deadline: closing it now would reset the client's request (seen as
                    # "Connection reset by peer" right after a long request). It is read on the next turn, with
                    # the budget of a new request.
                    conn.deadline = now + READ_AHEAD_TIMEOUT
                    continue
                self._drop(sel, pending, conn)

        @staticmethod
        def _waiting(sock) -> bool:
            try:
                return bool(sock.recv(1, socket.MSG_PEEK))
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                return False

        @staticmethod
        def _drop(sel, pending, conn):
            sel.unregister(conn.sock)
            pending.pop(conn.sock.fileno(), None)
            util.close(conn.sock)

        def serve(self, conn):
            """SyncWorker.handle for a request already read (the parser starts from the buffered bytes). Returns
            the connection with what the client sent after the request when it stays open, else None."""
            req, client = None, conn.sock
            try:
                parser = http.get_parser(self.cfg, client, conn.addr)
                parser.unreader.unread(bytes(conn.buf))
                req = next(parser)
                # A body that was not read ahead whole (over the size limit) cannot be skipped cheaply: that
                # response says "Connection: close" (a pooled client must not reuse the socket); one read ahead is
                # dropped from the buffer whatever its size (gunicorn's own drain stops at 64 KB and then closed
                # the connection after a keep-alive response: a client's next request on it failed).
                whole = conn.whole()
                if self.handle_request(conn.listener, req, client, conn.addr, whole) and self.alive \
                        and parser.finish_body(deadline=time.monotonic() + IO_TIMEOUT, max_bytes=READ_AHEAD_BODY):
                    return _Pending(client, conn.addr, conn.listener, parser.unreader.take_buffered(),
                                    self.cfg.keepalive)
            except (http.errors.NoMoreData, StopIteration, socket.timeout):
                pass   # the client left, or stopped reading or sending for IO_TIMEOUT
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                    self.log.exception("Socket error processing request.")
            except BaseException as exc:
                self.handle_error(req, client, conn.addr, exc)
            util.close_graceful(client)
            return None

        def handle_request(self, listener, req, client, addr, whole: bool = True) -> bool:
            """SyncWorker.handle_request without its forced close: True when the connection may stay open."""
            environ, resp = {}, None
            try:
                self.cfg.pre_request(self, req)
                request_start = datetime.now()
                resp, environ = wsgi.create(req, client, addr, listener.getsockname(), self.cfg)
                if not self.cfg.keepalive or not whole:
                    resp.force_close()
                self.nr += 1
                if self.nr >= self.max_requests:
                    self.log.info("Autorestarting worker after current request.")
                    self.alive = False
                    resp.force_close()
                respiter = self.wsgi(environ, resp.start_response)
                try:
                    if isinstance(respiter, environ["wsgi.file_wrapper"]):
                        resp.write_file(respiter)
                    else:
                        for item in respiter:
                            resp.write(item)
                    resp.close()
                finally:
                    self.log.access(resp, req, environ, datetime.now() - request_start)
                    if hasattr(respiter, "close"):
                        respiter.close()
                return not resp.should_close()
            except OSError:
                raise
            except (Exception, SystemExit):
                if resp and resp.headers_sent:
                    # a half-sent response cannot be followed by an error page on the same socket
                    self.log.exception("Error handling request")
                    raise StopIteration() from None
                raise
            finally:
                try:
                    self.cfg.post_request(self, req, environ, resp)
                except Exception:
                    self.log.exception("Exception in post_request hook")

    _worker_class = ReadAheadWorker
    return _worker_class


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("provider")
@click.option("--base-url", default=None, help="Run over HTTP against this server (sandbox or real provider).")
@click.option("--client-id", default=None)
@click.option("--client-secret", default=None)
@click.option("--user-id", default=None, help="Open Finance: the userId tokens are issued for.")
@click.option("--admin-token", envvar="SANDBOX_ADMIN_TOKEN", default=None,
              help="The sandbox's admin token, when its control API is locked (default: $SANDBOX_ADMIN_TOKEN).")
@click.option("--real-provider", is_flag=True, help="Target is the real provider: skip control-API tests.")
@click.option("--junit-xml", "junit_xml", default=None, metavar="PATH", help="Write a JUnit XML report (for CI).")
@click.pass_context
def check(ctx, provider, base_url, client_id, client_secret, user_id, admin_token, real_provider, junit_xml):
    """Run PROVIDER's contract tests (in-process by default); extra arguments go to pytest.

    Against a served sandbox each test uses a client and tenant of its own, deleted afterwards: other tenants'
    data, the clock and the seed are never touched, so it can run any number of times against any seed."""
    import pytest

    import glob

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # test_<provider>.py, or one file per product area (test_<provider>_<area>.py: Finpass, finoOS)
    targets = sorted(glob.glob(os.path.join(here, "contract_tests", f"test_{provider}.py")) +
                     glob.glob(os.path.join(here, "contract_tests", f"test_{provider}_*.py")))
    if not targets:
        raise click.BadParameter(f"no contract tests for {provider!r}", param_hint="PROVIDER")
    args = [*targets, "-p", "contract_tests.plugin"]
    for flag, value in (("--base-url", base_url), ("--client-id", client_id), ("--client-secret", client_secret),
                        ("--user-id", user_id), ("--admin-token", admin_token)):
        if value:
            args += [flag, value]
    if real_provider:
        args.append("--real-provider")
    if junit_xml:
        args.append(f"--junitxml={junit_xml}")
    summary = CheckSummary(provider, base_url or "in-process")
    code = pytest.main(args + list(ctx.args), plugins=[summary])
    click.echo(summary.render())
    sys.exit(code)


class CheckSummary:
    """A pytest plugin collecting one line per contract file and the failures, printed as one screen at the end."""

    def __init__(self, provider: str, target: str):
        self.provider, self.target = provider, target
        self.files: dict[str, dict[str, int]] = {}
        self.failures: list[str] = []

    def pytest_runtest_logreport(self, report):
        if report.when != "call" and not (report.failed or report.skipped):
            return
        name = report.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        counts = self.files.setdefault(name, {"passed": 0, "failed": 0, "skipped": 0})
        outcome = "failed" if report.failed else "skipped" if report.skipped else "passed"
        if report.when == "call" or outcome != "passed":
            counts[outcome] += 1
        if report.failed:
            self.failures.append(report.nodeid)

    def render(self) -> str:
        total = {k: sum(c[k] for c in self.files.values()) for k in ("passed", "failed", "skipped")}
        verdict = "PASS" if not total["failed"] and total["passed"] else "FAIL"
        lines = [f"sandbox check {self.provider} against {self.target}: {verdict} "
                 f"({total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped)"]
        lines += [f"  {name:<44} {c['passed']:>4} passed {c['failed']:>3} failed {c['skipped']:>3} skipped"
                  for name, c in sorted(self.files.items())]
        lines += [f"  FAILED {nodeid}" for nodeid in self.failures[:20]]
        if len(self.failures) > 20:
            lines.append(f"  ... and {len(self.failures) - 20} more")
        return "\n".join(lines)


# `sandbox proxy | replay | drift` (sandbox/testing/proxy_cli.py)
from .testing.proxy_cli import COMMANDS as _PROXY_COMMANDS  # noqa: E402

for _command in _PROXY_COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":
    main()
