"""Runtime and packaging (issue 12, part 6): the wheel carries its schemas, fixtures, catalogue, templates and assets
and serves a flow from a fresh venv; `sandbox serve` logs one line per request and refuses an unwritable store;
`sandbox --help` names every served provider; `make run` honours PORT/STORE/SEED and the SANDBOX_* variables and
installs runtime dependencies only; one lock pins everything; two instances on one Redis share one state."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from sandbox import cli, create_app
from sandbox.core.context import VERSION
from tests.served import serve_sandbox

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sandbox"


# --- the wheel ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the source tree (no build/ or egg-info left in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("sandbox", "contract_tests"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (whl,) = out.glob("provider_sandbox-*.whl")
    return whl


def test_the_wheel_carries_every_data_file_of_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    # expected from the source tree, not from the build configuration: every file the package reads at run time
    data = [p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts]
    kinds = {p.relative_to(PACKAGE).parts[0] for p in data}
    assert {"schemas", "fixtures", "spec", "providers"} <= kinds
    missing = sorted(str(p.relative_to(ROOT)) for p in data if p.relative_to(ROOT).as_posix() not in names)
    assert not missing, f"{len(missing)} data files not in the wheel, e.g. {missing[:5]}"
    modules = [p.relative_to(ROOT).as_posix() for d in ("sandbox", "contract_tests") for p in (ROOT / d).rglob("*.py")
               if "__pycache__" not in p.parts]
    assert not [m for m in modules if m not in names]
    assert any(n.endswith("catalogue.yaml") for n in names) and any(n.endswith("LICENSE") for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    entry_points = zipfile.ZipFile(wheel).read(meta).decode()
    assert "sandbox = sandbox.cli:main" in entry_points and "provider_sandbox = sandbox.testing.pytest_plugin" in entry_points
    assert f"provider_sandbox-{VERSION}-" in wheel.name   # the version the sandbox reports is the package's


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with only the wheel installed; its dependencies come from this venv's site-packages (appended to
    sys.path, so nothing of the checkout can shadow the installed package)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = Path(subprocess.check_output([venv / "bin" / "python", "-c",
                                         "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "deps-from-the-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


def test_the_installed_wheel_serves_a_flow_from_its_own_files(installed, tmp_path):
    where = subprocess.check_output([installed / "bin" / "python", "-c", "import sandbox; print(sandbox.__file__)"],
                                    cwd=tmp_path, text=True).strip()
    assert where.startswith(str(installed)), where   # the installed copy, not the checkout
    with serve_sandbox(["--store", f"sqlite:///{tmp_path}/s.db", "--job-delay", "0"], tmp_path,
                       executable=str(installed / "bin" / "sandbox"), cwd=str(tmp_path)) as served:
        base = served.base
        of = base + "/open-finance"
        tok = requests.post(of + "/oauth/token", json={"userId": "wheel@example.com", "clientId": "sandbox-client",
                                                       "clientSecret": "sandbox-secret"}, timeout=30)
        assert tok.status_code == 200, tok.text
        auth = {"Authorization": f"Bearer {tok.json()['accessToken']}"}
        job = requests.post(of + "/financial-report/043510023", headers=auth, timeout=30)   # fixtures + ledger
        assert job.status_code == 200, job.text
        report = requests.get(of + f"/financial-report/{job.json()['jobId']}", headers=auth, timeout=30)
        assert report.status_code == 200 and report.json()["status"] == "DONE", report.text
        # schemas: a body without userId is refused in the provider's envelope, from the packaged schema
        bad = requests.post(of + "/oauth/token", json={"clientId": "sandbox-client"}, timeout=30)
        assert bad.status_code == 400 and "userId" in bad.text
        assert requests.get(of + "/openapi.json", timeout=30).json()["openapi"].startswith("3.1")
        # templates: finleap's hosted widget renders from the packaged Jinja templates
        link = requests.post(base + "/finleap/onetime/income-report", auth=("sandbox-client", "sandbox-secret"),
                             json={"redirect_uri": "https://app.example.com/cb", "state": "s1"}, timeout=30)
        assert link.status_code == 201, link.text
        page = requests.get(link.json()["location"], timeout=30)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html") and "<form" in page.text
        assert set(requests.get(base + "/_sandbox/operations", timeout=30).json()) == {
            "open_finance", "finleap", "finpass", "fino"}
        # assets: a finoOS company logo is served from the package
        logo = sorted((PACKAGE / "providers" / "fino" / "assets" / "logos").iterdir())[0]
        assert requests.get(base + f"/fino/_assets/logos/{logo.name}", timeout=30).content == logo.read_bytes()
    out = served.log()
    # one access-log line per request, none of them with a secret
    lines = [line for line in out.splitlines() if '"GET ' in line or '"POST ' in line]
    assert any("/oauth/token" in line and " 200 " in line for line in lines), out[-2000:]
    assert "sandbox-secret" not in out


def test_sandbox_check_runs_from_the_installed_wheel(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    done = subprocess.run([installed / "bin" / "sandbox", "check", "open_finance", "-k", "token", "-p",
                           "no:cacheprovider", "-p", "no:randomly"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert re.search(r"\d+ passed", done.stdout), done.stdout[-2000:]
    assert str(installed) in subprocess.check_output(
        [installed / "bin" / "python", "-c", "import contract_tests; print(contract_tests.__file__)"],
        cwd=tmp_path, text=True)


# --- sandbox serve and --help --------------------------------------------------------------------------------------

def test_help_and_banner_name_exactly_the_served_providers(monkeypatch, tmp_path):
    served = {name: spec.prefix for name, spec in create_app({"STORE": "memory://"}).extensions["sandbox"]
              .providers.items()}
    assert set(served) == {"open_finance", "finleap", "finpass", "fino"}
    text = CliRunner().invoke(cli.main, ["--help"]).output
    for name, prefix in served.items():
        assert re.search(rf"^\s+{name}\s.*\s{re.escape(prefix)}(\s|$)", text, re.M), (name, prefix, text)
    monkeypatch.setattr(cli, "run_server", lambda *a, **k: None)
    for key in [k for k in os.environ if k.startswith("SANDBOX_")]:
        monkeypatch.delenv(key)
    result = CliRunner().invoke(cli.main, ["serve", "--store", f"sqlite:///{tmp_path}/s.db"])
    assert result.exit_code == 0, result.output
    for name, prefix in served.items():
        assert f"{name} {prefix}" in result.output


@pytest.fixture
def no_server(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "run_server", lambda *a, **k: calls.append(a))
    for key in [k for k in os.environ if k.startswith("SANDBOX_")]:
        monkeypatch.delenv(key)
    return calls


def test_an_unwritable_or_missing_data_folder_is_refused_with_the_fix(no_server, tmp_path, monkeypatch):
    result = CliRunner().invoke(cli.main, ["serve", "--store", f"sqlite:///{tmp_path}/missing/s.db"])
    assert result.exit_code == 2 and "does not exist" in result.output and "--store" in result.output
    assert no_server == [] and not (tmp_path / "missing").exists()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    result = CliRunner().invoke(cli.main, ["serve", "--store", f"sqlite:///{tmp_path}/s.db"])
    assert result.exit_code == 2 and "not writable" in result.output and "-v sandbox-data:/data" in result.output
    assert no_server == []
    monkeypatch.setattr(os, "access", real_access)
    result = CliRunner().invoke(cli.main, ["serve", "--store", f"sqlite:///{tmp_path}/s.db"])
    assert result.exit_code == 0 and len(no_server) == 1, result.output


def test_one_access_log_line_per_request_with_secrets_redacted(tmp_path):
    with serve_sandbox(["--store", "memory://"], tmp_path) as served:
        for n in range(3):
            requests.get(served.base + f"/finleap/widget/x{n}?code=topsecret{n}&state=s", timeout=30)
        requests.post(served.base + "/open-finance/oauth/token", json={}, timeout=30)
    out = served.log()
    lines = [line for line in out.splitlines() if "/finleap/widget/x" in line]
    assert len(lines) == 3, out[-2000:]
    assert all("code=[redacted]" in line for line in lines) and "topsecret" not in out
    assert len([line for line in out.splitlines() if "/open-finance/oauth/token" in line]) == 1


# --- make run, the lock, Docker ------------------------------------------------------------------------------------

def make_dry_run(*args, env=None) -> str:
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "MAKE")) and k not in
             ("PORT", "STORE", "SEED")}
    return subprocess.run(["make", "-n", "-B", *args], cwd=ROOT, env={**clean, **(env or {})}, capture_output=True,
                          text=True, timeout=60, check=True).stdout


def serve_line(out: str) -> str:
    (line,) = [line for line in out.splitlines() if "sandbox serve" in line]
    return line


def test_make_run_honours_port_store_seed_and_sandbox_variables():
    assert serve_line(make_dry_run("run")).split() == [
        "SANDBOX_PORT=8080", "SANDBOX_STORE=sqlite:///sandbox.db", "SANDBOX_SEED=0", ".venv/bin/sandbox", "serve"]
    line = serve_line(make_dry_run("run", "PORT=9001", "STORE=memory://", "SEED=7"))
    assert line.split()[:3] == ["SANDBOX_PORT=9001", "SANDBOX_STORE=memory://", "SANDBOX_SEED=7"]
    line = serve_line(make_dry_run("run", env={"SANDBOX_PORT": "9002", "SANDBOX_SEED": "3"}))
    assert line.split()[:3] == ["SANDBOX_PORT=9002", "SANDBOX_STORE=sqlite:///sandbox.db", "SANDBOX_SEED=3"]
    # any other SANDBOX_* variable reaches `sandbox serve` through the environment: no option is hard-coded
    assert "--" not in line


def test_make_run_installs_runtime_dependencies_only_and_make_test_the_toolchain():
    run = make_dry_run("run")
    installs = [line for line in run.splitlines() if "pip install" in line and "-e" in line]
    assert installs and all("dev" not in line and "-c constraints.txt" in line for line in installs), installs
    test = make_dry_run("test")
    assert any("'.[dev,redis]'" in line and "-c constraints.txt" in line for line in test.splitlines())


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_lock_pins_every_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_name(r) for r in extra}
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[_name(name)] = version
    assert not declared - set(pins), f"not locked: {sorted(declared - set(pins))}"
    from importlib import metadata
    drift = {n: (v, metadata.version(n)) for n, v in pins.items() if n in declared and _installed(n) != v}
    assert not drift, f"the test venv differs from the lock: {drift}"


def _installed(name: str) -> str | None:
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def test_docker_image_and_compose_use_the_lock_and_share_one_redis():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-c constraints.txt" in dockerfile and "check" in dockerfile   # `sandbox check` works in the image
    for source in re.findall(r"^COPY (.+) \./?\S*$", dockerfile, re.M):
        for name in source.split():
            assert (ROOT / name).exists(), f"Dockerfile copies {name}, which does not exist"
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert {".git", ".venv"} <= set(ignored)
    assert not {"sandbox", "contract_tests", "constraints.txt", "pyproject.toml"} & set(ignored)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    sandboxes = [s for name, s in services.items() if name != "redis"]
    assert len(sandboxes) == 2
    stores = {s["environment"]["SANDBOX_STORE"] for s in sandboxes}
    assert stores == {"redis://redis:6379/0"} and all("redis" in s["depends_on"] for s in sandboxes)
    assert len({p for s in sandboxes for p in s["ports"]}) == 2
    assert all("SANDBOX_ADMIN_TOKEN" in s["environment"] and ":?" in s["environment"]["SANDBOX_ADMIN_TOKEN"]
               for s in sandboxes)   # the token is required, never defaulted
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_two_instances_on_one_redis_share_one_state(tmp_path):
    url = os.environ.get("SANDBOX_TEST_REDIS")
    if not url:
        if os.environ.get("SANDBOX_REQUIRE_REDIS", "").lower() in ("1", "true", "yes"):
            pytest.fail("SANDBOX_REQUIRE_REDIS=1 but SANDBOX_TEST_REDIS is not set", pytrace=False)
        pytest.skip("set SANDBOX_TEST_REDIS to run two instances on one Redis")
    import redis

    shared = re.sub(r"/\d+$", "/13", url)   # a database of this test's own, emptied before and after
    redis.Redis.from_url(shared).flushdb()
    try:
        with serve_sandbox(["--store", shared, "--quiet"], tmp_path) as one, \
                serve_sandbox(["--store", shared, "--quiet"], tmp_path) as two:
            a, b = one.base, two.base
            requests.post(b + "/_sandbox/clock/freeze", json={}, timeout=30)
            tok = requests.post(a + "/open-finance/oauth/token", timeout=30, json={
                "userId": "twin@example.com", "clientId": "sandbox-client", "clientSecret": "sandbox-secret"}).json()
            auth = {"Authorization": f"Bearer {tok['accessToken']}"}
            job = requests.post(a + "/open-finance/financial-report/043510023", headers=auth, timeout=30).json()
            seen = requests.get(b + f"/open-finance/financial-report/{job['jobId']}", headers=auth, timeout=30)
            assert seen.status_code == 200 and seen.json()["status"] != "DONE"   # frozen clock: still running
            assert requests.post(b + f"/_sandbox/jobs/{job['jobId']}/complete", json={}, timeout=30).ok
            done = requests.get(a + f"/open-finance/financial-report/{job['jobId']}", headers=auth, timeout=30)
            assert done.json()["status"] == "DONE"
            assert requests.get(a + "/_sandbox/clock", timeout=30).json()["frozen"] is True
    finally:
        redis.Redis.from_url(shared).flushdb()


def test_a_new_project_uses_the_plugin_of_the_installed_wheel(installed, tmp_path):
    """The five-line tests of the README's plugin guide, one per provider, in a project of their own that only has
    the installed package: its pytest11 entry point brings the fixtures."""
    from tests.test_pytest_plugin import PROJECT_TESTS

    project = tmp_path / "my-client"
    project.mkdir()
    (project / "test_my_client.py").write_text(PROJECT_TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "PYTEST_"))}
    done = subprocess.run([installed / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    # five pass; the sixth is the guide's deliberately broken client, caught by the journal assertion
    assert re.search(r"\b1 failed, 5 passed\b", done.stdout), (done.stdout + done.stderr)[-3000:]
    assert "create_token: the request broke the contract" in done.stdout and "userId" in done.stdout
