"""The real thing: `sandbox serve --workers 2` on SQLite, driven over HTTP by `sandbox check` (the contract
suites with --base-url). Proves state written by one gunicorn worker is read by the other, and the CLI works."""
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = str(Path(sys.executable).with_name("sandbox"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    db = tmp_path_factory.mktemp("live") / "sandbox.db"
    proc = subprocess.Popen([SANDBOX, "serve", "--workers", "2", "--port", str(port), "--store", f"sqlite:///{db}",
                             "--seed", "4"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if requests.get(base + "/_sandbox/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)  # waiting for a child process to bind its port, not for sandbox time
        else:
            raise RuntimeError(proc.stdout.read1().decode())
        yield base
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)


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


@pytest.mark.parametrize("provider,prefix,selection", [
    ("open_finance", "/open-finance", "three_call_flow or totals or visible_only or journal or expires"),
    ("finleap", "/finleap", "three_call_flow or refresh_rotates or sync_adds or sca or tampered"),
])
def test_sandbox_check_runs_the_contract_suite_over_http(server, provider, prefix, selection):
    result = subprocess.run([SANDBOX, "check", provider, "--base-url", server + prefix, "-o", "addopts=", "-q", "-k", selection,
                             "-p", "no:cacheprovider"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\b([5-9]|[1-9][0-9]+) passed", result.stdout) and "failed" not in result.stdout, result.stdout
