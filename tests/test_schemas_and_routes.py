"""Schemas are valid 2020-12, accept their valid examples and reject their invalid ones; route tables match the
catalogue; the OpenAPI documents are valid and fuzzing them never yields a 5xx."""
import json
from pathlib import Path

import pytest
import yaml

from sandbox.core.context import schemas
from sandbox.core.validation import SCHEMA_BASE
from sandbox.spec import CATALOGUE, operations

EXAMPLES = Path(__file__).parent / "schema_examples"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "providers" / "catalogue.yaml"


def test_every_schema_is_a_valid_2020_12_schema_with_an_id():
    registry = schemas()
    assert registry.meta_errors() == {}
    for sid, schema in registry.schemas.items():
        assert schema["$id"] == sid and sid.startswith(SCHEMA_BASE)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _example_key(path: Path) -> tuple[str, str, str]:
    """``<provider>/[defs/]<name>.<valid|invalid>-<n>.json`` -> (provider, name, kind); name keeps ``defs/``."""
    provider, rest = path.relative_to(EXAMPLES).as_posix().split("/", 1)
    name, kind, _ = rest.rsplit(".", 2)
    return provider, name, kind.split("-")[0]


def _examples():
    for path in sorted(EXAMPLES.rglob("*.json")):
        provider, name, kind = _example_key(path)
        yield pytest.param(provider, name, kind, path, id=path.relative_to(EXAMPLES).as_posix())


@pytest.mark.parametrize("provider,name,kind,path", list(_examples()))
def test_schema_examples(provider, name, kind, path):
    sid = f"{SCHEMA_BASE}{provider}/{name}.json"
    errors = schemas().errors(sid, json.loads(path.read_text()))
    assert (errors == []) == (kind == "valid"), errors


def test_every_schema_has_examples_of_both_kinds():
    """Operation schemas and shared definitions (``defs/*.json``) alike; query schemas are exempt."""
    names = {_example_key(p) for p in EXAMPLES.rglob("*.json")}
    for sid in schemas().schemas:
        provider, name = sid[len(SCHEMA_BASE):-len(".json")].split("/", 1)
        if name.endswith(".query"):
            continue
        assert (provider, name, "valid") in names and (provider, name, "invalid") in names, sid


def test_vendored_catalogue_matches_the_shared_spec():
    if not SHARED.exists():
        pytest.skip("shared/ spec not beside the checkout")
    assert yaml.safe_load(SHARED.read_text()) == yaml.safe_load(CATALOGUE.read_text())


def _served(app, provider):
    return app.extensions["sandbox"].providers[provider]


@pytest.mark.parametrize("provider", ["open_finance", "finleap"])
def test_served_routes_are_the_catalogue_routes(app, provider):
    """Every served operation answers exactly on its catalogue method, path and aliases, nowhere else."""
    mounted, documented = _served(app, provider), operations(provider)
    served = {op for op, o in mounted.ops.items() if o.kind == "operation"}
    assert served <= set(documented)
    rules = {(rule.rule, method, rule.endpoint.split(".", 1)[1].split("__")[0])
             for rule in app.url_map.iter_rules() if rule.endpoint.startswith(provider + ".")
             for method in rule.methods - {"HEAD", "OPTIONS"}}
    for name in served:
        op = documented[name]
        expected = {(op["method"], op["path"])} | {
            tuple(a.split(" ", 1)) if " " in a else (op["method"], a) for a in op.get("aliases", [])}
        from sandbox.core.operations import flask_rule
        got = {(m, r[len(mounted.prefix):]) for r, m, n in rules if n == name and not r.endswith("/")
               or (n == name and r.endswith("/") and mounted.ops[name].kind == "page")}
        assert {(m, flask_rule(p)) for m, p in expected} <= got, name


@pytest.mark.parametrize("provider,prefix", [("open_finance", "/open-finance"), ("finleap", "/finleap")])
def test_openapi_document_is_valid_and_covers_the_served_operations(app, client, provider, prefix):
    from openapi_spec_validator import validate
    doc = client.get(f"{prefix}/openapi.json").json
    validate(doc)
    op_ids = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    served = {o.id for o in _served(app, provider).ops.values() if o.kind == "operation"}
    assert served and served <= op_ids


def test_schemathesis_without_credentials_meets_the_auth_wall(app):
    """Anonymous fuzzing (schemathesis): an operation that declares a security scheme answers 401 to every request
    without credentials, never a 5xx; the rest never 5xx either. The fuzzing that reaches the handlers, with real
    credentials and ids, is tests/test_fuzz_authenticated.py."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    for spec in app.extensions["sandbox"].providers.values():
        schema = schemathesis.openapi.from_wsgi(f"{spec.prefix}/openapi.json", app)
        for result in schema.get_all_operations():
            operation = result.ok()
            secured = bool(operation.definition.raw.get("security"))

            @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(case=operation.as_strategy())
            def run(case):
                case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
                response = case.call()
                assert response.status_code < 500, case.as_curl_command()
                if secured:
                    assert response.status_code == 401, (operation.label, response.status_code, response.text[:200])
                case.validate_response(response)  # status documented, body matches its schema

            run()


def test_validation_errors_carry_json_pointers():
    from sandbox.core.validation import schema_id
    registry = schemas()
    sid = schema_id("finleap", "create_income_report_link.request")
    errors = registry.errors(sid, {"language": "xx", "accounts": [{"currency": "EUR"}], "bogus": 1})
    pointers = {e["pointer"] for e in errors}
    assert {"/redirect_uri", "/language", "/accounts/0/id", "/bogus"} <= pointers
    required = next(e for e in errors if e["validator"] == "required" and e["pointer"] == "/redirect_uri")
    assert required["field"] == "redirect_uri"
    assert registry.errors(sid, {"redirect_uri": "https://x.example/cb"}) == []


@pytest.mark.parametrize("fmt,good,bad", [("date-time", "2025-04-23T10:00:00Z", "2025-04-23 10:00"),
                                          ("uri", "https://x.example/cb?a=1", "not a url"),
                                          ("date", "2025-04-23", "23/04/2025"),
                                          ("uuid", "3ca31c37-986a-454e-ad64-8e97143c86bc", "3ca31c37"),
                                          ("email", "info@kaveri-tech.example", "not-an-email")])
def test_every_format_the_schemas_use_is_really_checked(fmt, good, bad):
    from jsonschema import Draft202012Validator
    checker = Draft202012Validator.FORMAT_CHECKER
    assert checker.conforms(good, fmt) and not checker.conforms(bad, fmt)
    used = {m for text in (json.dumps(s) for s in schemas().schemas.values())
            for m in __import__("re").findall(r'"format": "([^"]+)"', text)}
    # "binary" is OpenAPI's mark of a multipart file part (finpass upload-statement): the part never reaches the
    # validated instance (core/dispatch.py puts files in ctx.files), so it needs no checker
    assert used - {"binary"} <= {"date-time", "uri", "date", "uuid", "email"}, used
