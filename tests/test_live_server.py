"""The real thing: `sandbox serve --workers 2` on SQLite, locked by an admin token, driven over HTTP by `sandbox
check` (the contract suites with --base-url and --admin-token). Proves state written by one gunicorn worker is read
by the other, that the control API is locked, that stalled clients block no worker, and that the CLI works."""
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.served import SANDBOX, serve_sandbox

ROOT = Path(__file__).resolve().parents[1]


ADMIN_TOKEN = "live-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _serve(args: list[str], log_dir, env: dict | None = None):
    """Start `sandbox serve` on a free port; yield its base URL once /_sandbox/health answers, stop it after."""
    with serve_sandbox(args, log_dir, env) as served:
        yield served.base


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("live")
    yield from _serve(["--workers", "2", "--store", f"sqlite:///{folder / 'sandbox.db'}", "--seed", "4"], folder,
                      {"SANDBOX_ADMIN_TOKEN": ADMIN_TOKEN})


@pytest.fixture(scope="module")
def single_worker(tmp_path_factory):
    yield from _serve(["--workers", "1", "--store", "memory://"], tmp_path_factory.mktemp("single"))


def test_the_served_control_api_is_locked(server):
    bare = requests.post(server + "/_sandbox/reset", json={})
    assert bare.status_code == 401 and bare.json()["error"]["kind"] == "unauthorized"
    assert requests.get(server + "/_sandbox/clients", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert requests.get(server + "/_sandbox/health").json() == {"status": "ok", "version": bare.headers[
        "X-Sandbox-Version"]}
    assert requests.get(server + "/_sandbox/seed", headers=ADMIN).json() == {"seed": 4}
    assert requests.get(server + "/_sandbox/flows", headers={"X-Sandbox-Admin-Token": ADMIN_TOKEN}).status_code == 200


def _stall(base: str, count: int) -> list[socket.socket]:
    """Connections that send half a request and then nothing: half a head, or a head and half its body."""
    host, port = base.rsplit("/", 1)[1].split(":")
    socks = []
    for i in range(count):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"GET /_sandbox/health HTTP/1.1\r\nHost: x\r\n" if i % 2 == 0 else
                  b"POST /_sandbox/tick HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{")
        socks.append(s)
    return socks


@pytest.mark.parametrize("fixture", ["server", "single_worker"])
def test_stalled_clients_block_no_worker(request, fixture):
    """Four clients that stall mid-request (twice the gunicorn workers): fresh requests still answer at once."""
    base = request.getfixturevalue(fixture)
    socks = _stall(base, 4)
    try:
        started = time.monotonic()
        for _ in range(6):   # fresh connections: each of the two workers takes some
            assert requests.get(base + "/_sandbox/health", timeout=3).status_code == 200
        assert time.monotonic() - started < 3.0
        with requests.Session() as kept_alive:   # and a kept-alive connection serves request after request
            for _ in range(3):
                assert kept_alive.get(base + "/_sandbox/health", timeout=3).status_code == 200
    finally:
        for s in socks:
            s.close()


def test_state_is_shared_across_workers(server):
    """A token and a job created through one worker are used through the other (X-Sandbox-Worker tells which)."""
    token = requests.post(server + "/open-finance/oauth/token", json={
        "userId": "live@example.com", "clientId": "sandbox-client", "clientSecret": "sandbox-secret"})
    h = {"Authorization": f"Bearer {token.json()['accessToken']}"}
    created = requests.post(server + "/open-finance/financial-report/318422557", headers=h)
    job = created.json()["jobId"]
    readers = {}
    for _ in range(60):  # fresh connections: gunicorn's sync workers take turns accepting them
        r = requests.get(f"{server}/open-finance/financial-report/{job}", headers=h)
        readers.setdefault(r.headers["X-Sandbox-Worker"], set()).add(r.status_code)
        if len(readers) == 2:
            break
    # two workers answered 200, so one of them read a job the other one wrote
    assert len(readers) == 2, f"only worker(s) {sorted(readers)} answered"
    assert all(codes == {200} for codes in readers.values()), readers


def _bystander(server: str) -> dict:
    """Another team's state on the shared sandbox: its own client with an Open Finance report job."""
    import secrets
    client = requests.post(server + "/_sandbox/clients", headers=ADMIN, json={
        "client_id": f"bystander-{secrets.token_hex(4)}", "client_secret": "bystander-secret"}).json()
    token = requests.post(server + "/open-finance/oauth/token", json={
        "userId": "b@example.com", "clientId": client["client_id"], "clientSecret": "bystander-secret"}).json()
    h = {"Authorization": f"Bearer {token['accessToken']}"}
    job = requests.post(server + "/open-finance/financial-report/043510023", headers=h).json()["jobId"]
    done = requests.post(f"{server}/_sandbox/jobs/{job}/complete", headers=ADMIN, json={"tenant": client["tenant"]})
    assert done.status_code == 200, done.text
    return {"h": h, "job": job, "before": requests.get(f"{server}/open-finance/financial-report/{job}", headers=h),
            "clock": requests.get(server + "/_sandbox/clock", headers=ADMIN).json(),
            "clients": {c["client_id"] for c in requests.get(server + "/_sandbox/clients", headers=ADMIN).json()[
                "clients"]}}


@pytest.mark.parametrize("provider,prefix,selection", [
    ("open_finance", "/open-finance", ""),   # every contract suite of the provider, over HTTP
    ("finleap", "/finleap", ""),
    ("finpass", "/finpass", ""),
    ("fino", "/fino/api", ""),
])
def test_sandbox_check_runs_the_contract_suite_over_http(server, provider, prefix, selection, tmp_path):
    """`sandbox check` against a shared served sandbox (seed 4, not CI's 0), TWICE in a row: it passes both times,
    writes JUnit XML and a one-screen summary, and leaves another client's data, the seed, the global clock and
    the client list as they were (each test used a client and tenant of its own, deleted afterwards)."""
    bystander = _bystander(server)
    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_ADMIN_TOKEN"}
    for run in (1, 2):
        junit = tmp_path / f"run{run}.xml"
        result = subprocess.run([SANDBOX, "check", provider, "--base-url", server + prefix, "--admin-token",
                                 ADMIN_TOKEN, "--junit-xml", str(junit), "-o", "addopts=", "-q",
                                 *(["-k", selection] if selection else []), "-p", "no:cacheprovider"],
                                capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert re.search(r"\b([5-9]|[1-9][0-9]+) passed", result.stdout) and " failed" not in result.stdout.replace(
            " 0 failed", ""), result.stdout[-3000:]
        assert f"sandbox check {provider} against {server}{prefix}: PASS" in result.stdout
        assert junit.read_text().startswith("<?xml") and 'failures="0"' in junit.read_text()
    after = requests.get(f"{server}/open-finance/financial-report/{bystander['job']}", headers=bystander["h"])
    assert after.status_code == 200 and after.json() == bystander["before"].json()
    assert requests.get(server + "/_sandbox/seed", headers=ADMIN).json() == {"seed": 4}
    clock = requests.get(server + "/_sandbox/clock", headers=ADMIN).json()
    assert clock["frozen"] == bystander["clock"]["frozen"] and clock["offsetSeconds"] == bystander["clock"][
        "offsetSeconds"]
    clients = {c["client_id"] for c in requests.get(server + "/_sandbox/clients", headers=ADMIN).json()["clients"]}
    assert clients == bystander["clients"]
