"""Fixtures for the browser tests: the sandbox served on a loopback port, a callback server that records the
widget's redirects, headless Chromium (Debian's build, driven by Playwright) and per-test screenshots.

Every server binds 127.0.0.1:0 and lives for one test, so the tests run in parallel under pytest-xdist.

Without Chromium or the playwright package the browser tests skip themselves - unless SANDBOX_REQUIRE_BROWSER=1
(``.ci/run`` sets it): then every skip in this directory is reported as a failure naming the missing tool.
"""
from __future__ import annotations

import html
import os
import re
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
CLIENT = ("sandbox-client", "sandbox-secret")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
TIMEOUT_MS = 10_000
POLL = 0.02  # serve_forever poll interval: shutdown() waits up to one interval
REQUIRE_ENV = "SANDBOX_REQUIRE_BROWSER"


def chromium_executable() -> str | None:
    """``$SANDBOX_CHROMIUM`` (a path or a command name) or ``/usr/bin/chromium``, if it is executable."""
    wanted = os.environ.get("SANDBOX_CHROMIUM") or "/usr/bin/chromium"
    path = shutil.which(wanted)
    return path if path and os.path.isfile(path) else None


def browser_required() -> bool:
    """CI demands the browser tests (``SANDBOX_REQUIRE_BROWSER=1``): a skip there would hide a missing tool."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


def _as_failure(report, what: str) -> None:
    """Turn a skip (not an xfail) into a failure that names why the test could not run."""
    if not (browser_required() and report.skipped and not hasattr(report, "wasxfail")):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"{REQUIRE_ENV}=1 but this {what} was skipped: {reason}\n"
                       f"(install Debian's chromium and the playwright package, or set SANDBOX_CHROMIUM)")


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """Module-level skips (``importorskip("playwright...")``) fail too when the browser is required."""
    report = yield
    _as_failure(report, "module")
    return report


# --- the sandbox, served for the browser ------------------------------------------------------------------------

class LiveSandbox:
    """The Flask app on a real loopback port, plus a requests session for the client-side API calls."""

    def __init__(self, app, port: int):
        self.app = app
        self.base_url = f"http://127.0.0.1:{port}"
        self.http = requests.Session()
        self.http.trust_env = False  # never route loopback calls through an environment proxy

    def url(self, path: str) -> str:
        return self.base_url + path

    def post(self, path: str, json: dict, auth=CLIENT, **kw) -> requests.Response:
        return self.http.post(self.url(path), json=json, auth=auth, timeout=10, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url(path), timeout=10, **kw)

    def create_link(self, kind: str, body: dict) -> dict:
        """``POST /finleap/onetime/<kind>`` -> ``{"location", "id"}`` (asserts 201)."""
        resp = self.post(f"/finleap/onetime/{kind}", body)
        assert resp.status_code == 201, resp.text
        link = resp.json()
        assert link["location"].startswith(self.url("/finleap/widget/?token=")), link
        return link

    def exchange_code(self, code: str, redirect_uri: str) -> requests.Response:
        return self.post("/finleap/auth/token",
                         {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})

    def bearer_get(self, path: str, access_token: str) -> requests.Response:
        return self.get(path, headers={"Authorization": f"Bearer {access_token}"})


@pytest.fixture
def sandbox_server():
    from sandbox import create_app
    from sandbox.core.store import MemoryStore

    app = create_app({"SEED": 3}, store=MemoryStore())
    with serve_app(app) as port:
        live = LiveSandbox(app, port)
        try:
            yield live
        finally:
            live.http.close()


@contextmanager
def serve_app(app):
    """Serve a WSGI app on a free loopback port in a thread for one test; yields the port, shuts it down after."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL}, name="live-server",
                              daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- the client's side: a callback server ----------------------------------------------------------------------

@dataclass
class Hit:
    path: str                          # path without the query
    query: list[tuple[str, str]]       # parsed query, in the order sent
    raw_query: str

    @property
    def keys(self) -> list[str]:
        return [k for k, _ in self.query]

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)


@dataclass
class CallbackServer:
    base_url: str
    hits: list[Hit] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)   # extra HTML pages to serve (path -> body)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/callback") -> str:
        return self.base_url + path

    def callbacks(self, path: str = "/callback") -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def is_callback(self, url: str, path: str = "/callback") -> bool:
        return url.startswith(self.url(path) + "?") or url == self.url(path)


@pytest.fixture
def callback_server():
    recorder: CallbackServer | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            parts = urlsplit(self.path)
            with recorder.lock:
                recorder.hits.append(Hit(parts.path, parse_qsl(parts.query, keep_blank_values=True), parts.query))
                page = recorder.pages.get(parts.path)
            if page is None and parts.path == "/favicon.ico":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if page is None:
                items = "".join(f"<li><code>{html.escape(k)}</code> = <code>{html.escape(v)}</code></li>"
                                for k, v in parse_qsl(parts.query, keep_blank_values=True))
                page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>callback received</title>"
                        f"</head><body><h1 id='callback'>callback received</h1><ul>{items}</ul></body></html>")
            body = page.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recorder = CallbackServer(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL}, name="callback-server",
                              daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- the browser ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium():
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium executable (set SANDBOX_CHROMIUM or install Debian's chromium at /usr/bin/chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    pw = sync_api.sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _as_failure(report, "test")
    setattr(item, f"rep_{report.when}", report)
    return report


def _artifact_dir(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", request.node.name).strip("_")
    return ARTIFACTS / name


@pytest.fixture
def page(chromium, request):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = chromium.new_context(viewport={"width": 800, "height": 900}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    try:
        yield pg
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            try:
                folder = _artifact_dir(request)
                folder.mkdir(parents=True, exist_ok=True)
                pg.screenshot(path=str(folder / "99-failure.png"), full_page=True)
            except Exception:  # the screenshot is a courtesy, never a second failure
                pass
        context.close()


class Shots:
    """``shots(page, "login")`` -> ``test-artifacts/browser/<test>/<nn>-login.png``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0
        shutil.rmtree(folder, ignore_errors=True)   # no stale pictures from an earlier run
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, pg, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        pg.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request) -> Shots:
    return Shots(_artifact_dir(request))
