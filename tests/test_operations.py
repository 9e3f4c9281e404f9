"""The operation layer: routes, OpenAPI and contract tests all follow the catalogue; start-up refuses each missing
piece (a handler, a request schema, a response schema, a schema file that names no operation)."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import sandbox.providers as providers_module
from sandbox import create_app
from sandbox.core import context as context_module
from sandbox.core.operations import Op, StartupError
from sandbox.core.store import MemoryStore
from sandbox.core.validation import SCHEMA_DIR, SchemaRegistry
from sandbox.spec import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]


def _moved_catalogue(tmp_path, provider: str, op: str, path: str, aliases: list[str] | None = None) -> Path:
    doc = yaml.safe_load(CATALOGUE.read_text())
    for entry in doc["providers"][provider]["operations"]:
        if entry["id"] == f"{provider}.{op}":
            entry["path"] = path
            if aliases is not None:
                entry["aliases"] = aliases
    target = tmp_path / "catalogue.yaml"
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


# --- a guessed path changed in the catalogue alone moves everything ---------------------------------------------
def test_a_path_changed_in_the_catalogue_moves_the_route_and_the_openapi_path(tmp_path):
    moved = _moved_catalogue(tmp_path, "finleap", "list_accounts", "/rest/v9/my-accounts")
    app = create_app({"CATALOGUE": str(moved)}, store=MemoryStore())
    client = app.test_client()
    # the new path is served by the operation (401 in nrich's envelope: it reached the Bearer scheme)...
    r = client.get("/finleap/rest/v9/my-accounts")
    assert r.status_code == 401 and r.json["error"]["code"] == 1001
    # ...the old one is no route any more (a routing 404 in the provider's envelope)
    assert client.get("/finleap/rest/accounts").status_code == 404
    paths = client.get("/finleap/openapi.json").json["paths"]
    assert "/rest/v9/my-accounts" in paths and "/rest/accounts" not in paths
    assert paths["/rest/v9/my-accounts"]["get"]["operationId"] == "finleap.list_accounts"
    operations = client.get("/_sandbox/operations").json["finleap"]
    assert operations["list_accounts"]["path"] == "/finleap/rest/v9/my-accounts"
    # the unmoved app still serves the catalogue's own path
    assert create_app({}, store=MemoryStore()).test_client().get("/finleap/rest/accounts").status_code == 401


def test_the_contract_tests_follow_a_moved_path(tmp_path):
    """The Open Finance contract suite passes unchanged against a catalogue whose report paths moved."""
    moved = _moved_catalogue(tmp_path, "open_finance", "get_financial_report", "/reports/{jobId}/status",
                             aliases=["/v2/reports/{jobId}/status"])
    env = {**os.environ, "SANDBOX_CATALOGUE": str(moved)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-rA", "-p", "no:randomly", "-p", "no:xdist",
                          "contract_tests/test_open_finance.py", "-k", "three_call_flow or visible_only"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.stdout.count("PASSED contract_tests/test_open_finance.py::") >= 3 and "SKIPPED" not in run.stdout
    # and the moved app really answers on the new path only
    app = create_app({"CATALOGUE": str(moved)}, store=MemoryStore())
    routes = {r.rule for r in app.url_map.iter_rules()}
    assert "/open-finance/reports/<jobId>/status" in routes
    assert "/open-finance/financial-report/<jobId>" not in routes


def test_aliases_behave_identically_by_construction(app):
    """Every alias of every served operation answers an anonymous call exactly like the catalogue path."""
    client = app.test_client()
    compared = 0
    for mounted in app.extensions["sandbox"].providers.values():
        for op in mounted.ops.values():
            if op.kind != "operation" or not op.aliases:
                continue
            base = mounted.prefix
            fill = lambda p: p.replace("{", "").replace("}", "")   # noqa: E731 - any value for each parameter
            first = client.open(base + fill(op.path), method=op.method)
            for method, alias in op.aliases:
                other = client.open(base + fill(alias), method=method)
                assert (other.status_code, other.get_data()) == (first.status_code, first.get_data()), (op.id, alias)
                compared += 1
    assert compared >= 5


def test_an_empty_trailing_id_reaches_the_service_on_every_alias(app):
    """Open Finance's report guide: POST /financial-report/ -> 400 Missing customerId, on the /v2 alias too."""
    client = app.test_client()
    tok = client.post("/open-finance/oauth/token", json={"userId": "u", "clientId": "sandbox-client",
                                                          "clientSecret": "sandbox-secret"}).json["accessToken"]
    for path in ("/open-finance/financial-report/", "/open-finance/v2/financial-report/"):
        r = client.post(path, headers={"Authorization": f"Bearer {tok}"})
        assert (r.status_code, r.json) == (400, {"message": "Missing customerId", "code": "INVALID_REQUEST"}), path


# --- start-up refuses each missing piece --------------------------------------------------------------------------
@pytest.fixture
def finleap_decl(monkeypatch):
    """Swap the finleap declaration for a copy the test may break."""
    index = next(i for i, d in enumerate(providers_module.PROVIDERS) if d.name == "finleap")
    original = providers_module.PROVIDERS[index]

    def use(**changes):
        swapped = list(providers_module.PROVIDERS)
        swapped[index] = dataclasses.replace(original, **changes)
        monkeypatch.setattr(providers_module, "PROVIDERS", swapped)
    return original, use


@pytest.fixture
def schema_copy(tmp_path, monkeypatch):
    """A private copy of schemas/ the test may break, used as the process's schema registry."""
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, root)

    def load():
        monkeypatch.setattr(context_module, "_SCHEMAS", SchemaRegistry(root))
    return root, load


def _start():
    return create_app({}, store=MemoryStore())


def test_startup_refuses_an_operation_without_a_handler(finleap_decl):
    original, use = finleap_decl

    class Broken(original.service):
        list_accounts = None
    use(service=Broken)
    with pytest.raises(StartupError, match=r"finleap\.list_accounts: no handler .*providers/finleap/service\.py"):
        _start()


def test_startup_refuses_an_overlay_entry_the_catalogue_does_not_know(finleap_decl):
    original, use = finleap_decl
    use(operations={**original.operations, "list_acounts": Op()})
    with pytest.raises(StartupError, match=r"finleap\.list_acounts: .*not in the catalogue"):
        _start()


@pytest.mark.parametrize("provider,file,message", [
    ("finleap", "create_notification.request.json", r"finleap\.create_notification: takes a json body but "),
    ("open_finance", "get_financial_report.response.json", r"open_finance\.get_financial_report: answers JSON but ")])
def test_startup_refuses_an_operation_without_its_request_or_response_schema(schema_copy, provider, file, message):
    root, load = schema_copy
    (root / provider / file).unlink()
    load()
    with pytest.raises(StartupError, match=message + rf"schemas/{provider}/{file.replace('.', '[.]')} is missing"):
        _start()


@pytest.mark.parametrize("name,why", [("create_tokn.request.json", "names no operation"),
                                      ("create_token.reqest.json", "'reqest' is no schema part"),
                                      ("list_securities.response.json", "names no served operation")])
def test_startup_refuses_a_schema_file_that_names_no_operation(schema_copy, monkeypatch, name, why):
    root, load = schema_copy
    # every catalogue operation is served now: an operation the overlay leaves out stands in for an unserved one
    finleap = next(d for d in providers_module.PROVIDERS if d.name == "finleap")
    partial = dataclasses.replace(finleap, operations={k: v for k, v in finleap.operations.items()
                                                       if k != "list_securities"})
    monkeypatch.setattr(providers_module, "PROVIDERS",
                        [partial if d is finleap else d for d in providers_module.PROVIDERS])
    shutil.copy(root / "finleap" / "create_token.request.json", root / "finleap" / name)
    (root / "finleap" / "list_securities.query.json").unlink()   # its own schemas would name it too
    load()
    with pytest.raises(StartupError, match=rf"schemas/finleap/{name.replace('.', '[.]')}: {why}"):
        _start()


def test_startup_refuses_a_stray_schema_of_a_provider_not_served_yet(schema_copy, monkeypatch):
    root, load = schema_copy
    monkeypatch.setattr(providers_module, "PROVIDERS", [d for d in providers_module.PROVIDERS if d.name != "finpass"])
    (root / "finpass" / "no_such_operation.response.json").write_text(
        (root / "finleap" / "error.json").read_text().replace("finleap/error", "finpass/no_such_operation.response"))
    load()
    with pytest.raises(StartupError, match=r"schemas/finpass/no_such_operation\.response\.json: names no operation"):
        _start()


def test_the_real_declarations_start(schema_copy):
    """The control case: the unbroken copy starts, so the failures above are caused by what each test broke."""
    _, load = schema_copy
    load()
    assert set(_start().extensions["sandbox"].providers) == {d.name for d in providers_module.PROVIDERS}
