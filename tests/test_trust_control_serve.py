"""Trust, control API (issue 7): `sandbox serve` refuses an open control API on a non-loopback address, and the
Docker image (which binds 0.0.0.0) needs SANDBOX_ADMIN_TOKEN."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from sandbox import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def served(monkeypatch, tmp_path):
    """`sandbox serve` with the server (gunicorn) replaced by a recorder: what would have been served."""
    calls = []
    monkeypatch.setattr(cli, "run_server", lambda host, port, workers, factory, quiet=False:
                        calls.append((host, factory())))
    monkeypatch.delenv("SANDBOX_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("SANDBOX_INSECURE_OPEN_CONTROL_API", raising=False)
    monkeypatch.delenv("SANDBOX_HOST", raising=False)

    def run(*args, env=None):
        result = CliRunner().invoke(cli.main, ["serve", "--store", f"sqlite:///{tmp_path}/s.db", *args], env=env)
        return result, calls
    return run


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "[::]"])
def test_serve_refuses_an_open_control_api_on_a_reachable_address(served, host):
    result, calls = served("--host", host)
    assert result.exit_code == 2 and calls == [], result.output
    assert "SANDBOX_ADMIN_TOKEN" in result.output and "--insecure-open-control-api" in result.output
    assert "docker run -e SANDBOX_ADMIN_TOKEN" in result.output


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_serve_binds_loopback_without_a_token(served, host):
    result, calls = served("--host", host)
    assert result.exit_code == 0 and [h for h, _ in calls] == [host], result.output
    app = calls[0][1]
    assert app.extensions["sandbox"].config["ADMIN_TOKEN"] == ""


def test_serve_binds_everywhere_with_a_token_from_the_environment_or_the_option(served):
    result, calls = served("--host", "0.0.0.0", env={"SANDBOX_ADMIN_TOKEN": "t0k"})
    assert result.exit_code == 0, result.output
    client = calls[-1][1].test_client()
    assert client.get("/_sandbox/seed").status_code == 401
    assert client.get("/_sandbox/seed", headers={"Authorization": "Bearer t0k"}).status_code == 200
    result, calls = served("--host", "0.0.0.0", "--admin-token", "opt")
    assert result.exit_code == 0 and calls[-1][1].extensions["sandbox"].config["ADMIN_TOKEN"] == "opt"


def test_the_insecure_flag_serves_an_open_control_api_on_purpose(served):
    result, calls = served("--host", "0.0.0.0", "--insecure-open-control-api")
    assert result.exit_code == 0, result.output
    client = calls[-1][1].test_client()
    # open on purpose: reachable by any host name too (no DNS-rebinding guard to get in the way)
    assert client.get("/_sandbox/seed", headers={"Host": "sandbox.ci.example:8080"}).status_code == 200


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                           ("0.0.0.0", False), ("::", False), ("192.168.0.1", False),
                                           ("no-such-host.invalid", False)])
def test_is_loopback_bind(host, loopback):
    assert cli.is_loopback_bind(host) is loopback


def test_the_docker_image_binds_everywhere_and_brings_no_token():
    """The image serves on 0.0.0.0, so `sandbox serve` in it refuses to start unless `docker run` passes
    SANDBOX_ADMIN_TOKEN; no token is baked into the image (everyone who pulls it would know it)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "SANDBOX_HOST=0.0.0.0" in dockerfile
    assert "SANDBOX_ADMIN_TOKEN=" not in dockerfile.replace("-e SANDBOX_ADMIN_TOKEN=", "")
    assert "insecure" not in dockerfile.lower().split("\ncmd", 1)[1]   # the image never opens the control API
    assert "/_sandbox/health" in dockerfile   # the health check needs no token
