"""Shared definitions are written once (issue 6, item 1): ``schemas/<provider>/defs/*.json`` hold account,
transaction, notification, ... ; operation schemas reference them by relative ``$ref``; the schema registry resolves
those references; each provider's OpenAPI document lifts every def into ``components.schemas`` exactly once, with
every ``$ref`` resolving inside the document and the document exactly as strict as the schema files."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from sandbox.core.context import schemas
from sandbox.core.openapi import _component_name, _Lifter
from sandbox.core.validation import SCHEMA_BASE, SCHEMA_DIR, SchemaRegistry, schema_id

EXAMPLES = Path(__file__).parent / "schema_examples"
BASIC = ("sandbox-client", "sandbox-secret")
PREFIXES = {"finleap": "/finleap", "open_finance": "/open-finance"}
ANNOTATIONS = {"$comment", "title", "description", "$id", "$schema", "x-provenance"}


def _def_files(provider: str) -> list[Path]:
    return sorted((SCHEMA_DIR / provider / "defs").glob("*.json"))


def _walk(node, path=()):
    """Every (json path, dict) in ``node``, depth first."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, path + (i,))


def _strip(node, base: str = ""):
    """``node`` without annotations, its ``$ref``s made absolute against ``base``: what a schema asserts."""
    if isinstance(node, dict):
        return {k: (urljoin(base, v) if k == "$ref" and base and isinstance(v, str) else _strip(v, base))
                for k, v in node.items() if k not in ANNOTATIONS}
    if isinstance(node, list):
        return [_strip(v, base) for v in node]
    return node


def _refs_of(sid: str, schema: dict) -> set[str]:
    """Absolute schema ids ``schema`` (with id ``sid``) references in other files."""
    out = set()
    for _, node in _walk(schema):
        if isinstance(node.get("$ref"), str):
            url = urljoin(sid, node["$ref"]).split("#", 1)[0]
            if url and url != sid:
                out.add(url)
    return out


def _examples(provider: str, name: str) -> list[tuple[str, object]]:
    """(kind, instance) of every example of schema ``name`` (``get_account.response``, ``defs/account``)."""
    folder = EXAMPLES / provider / Path(name).parent
    stem = Path(name).name
    return [(p.name[len(stem) + 1:].split("-")[0], json.loads(p.read_text()))
            for p in sorted(folder.glob(f"{stem}.*-*.json"))]


# --- the files ---------------------------------------------------------------------------------------------------
def test_the_resources_named_in_the_issue_are_shared_definitions():
    names = {p.stem for p in _def_files("finleap")}
    assert {"account", "transaction", "notification", "access", "sync", "account_balance"} <= names


@pytest.mark.parametrize("path", [p for prov in PREFIXES for p in _def_files(prov)], ids=lambda p: p.stem)
def test_a_def_file_has_its_id_a_title_and_cites_the_spec(path):
    schema = json.loads(path.read_text())
    assert schema["$id"] == SCHEMA_BASE + path.relative_to(SCHEMA_DIR).as_posix()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"].strip()
    assert re.search(r"\w+\.md section \d", schema["$comment"]), schema["$comment"]


@pytest.mark.parametrize("provider", list(PREFIXES))
def test_every_def_serves_at_least_two_operations(provider):
    """A definition used by one operation belongs in that file's ``$defs``; a def nobody references is dead."""
    registry = schemas()
    own = {sid: s for sid, s in registry.schemas.items() if sid.startswith(f"{SCHEMA_BASE}{provider}/")}

    def reach(sid, seen):
        for target in _refs_of(sid, own[sid]) - seen:
            seen.add(target)
            reach(target, seen)
        return seen

    # webhook payloads are used by Provider.webhooks, not by operations (tests/test_webhook_payloads.py)
    users: dict[str, set[str]] = {sid: set() for sid in own if "/defs/" in sid and "/defs/webhook_" not in sid}
    for sid in own:
        if "/defs/" not in sid:
            for target in reach(sid, set()):
                users[target].add(sid)
    for sid, by in users.items():
        assert len(by) >= 2, (sid, by)


def test_no_object_definition_is_written_in_two_files():
    """The same object shape (3+ properties, annotations aside) in two schema files must become a defs/ file.
    Query schemas are exempt: they are flattened into OpenAPI parameters, never an object definition (sibling
    endpoints such as finX's aggregations share their parameter lists)."""
    where: dict[str, set[str]] = {}
    for sid, schema in schemas().schemas.items():
        if sid.endswith(".query.json"):
            continue
        for _, node in _walk(schema):
            if isinstance(node.get("properties"), dict) and len(node["properties"]) >= 3:
                where.setdefault(json.dumps(_strip(node, sid), sort_keys=True), set()).add(sid)
    copies = [sorted(files) for files in where.values() if len(files) > 1]
    assert copies == []


# --- the registry resolves the references --------------------------------------------------------------------------
LISTS = [("list_accounts.response", "accounts", "get_account.response", "defs/account"),
         ("list_transactions.response", "transactions", "get_transaction.response", "defs/transaction"),
         ("list_notifications.response", "notifications", "get_notification.response", "defs/notification"),
         ("list_accesses.response", "accesses", "get_access.response", "defs/access")]


@pytest.mark.parametrize("list_name,key,one_name,def_name", LISTS, ids=[x[1] for x in LISTS])
def test_a_list_checks_each_item_exactly_as_the_single_resource(list_name, key, one_name, def_name):
    """Every example of the single resource (and of its def) keeps its verdict inside a list, after a valid item;
    an invalid one is reported at ``/<key>/1/...``: the list's items really go through the shared def."""
    registry = schemas()
    list_sid = schema_id("finleap", list_name)
    cases = _examples("finleap", one_name) + _examples("finleap", def_name)
    good = next(instance for kind, instance in cases if kind == "valid")
    assert {kind for kind, _ in cases} == {"valid", "invalid"}
    for kind, instance in cases:
        alone = registry.errors(schema_id("finleap", one_name), instance)
        as_def = registry.errors(schema_id("finleap", def_name), instance)
        listed = registry.errors(list_sid, {key: [good, instance]})
        assert (alone == []) == (as_def == []) == (listed == []) == (kind == "valid"), (kind, instance, listed)
        assert all(e["pointer"].startswith(f"/{key}/1") for e in listed), listed


def test_an_account_missing_a_required_field_inside_a_list_is_reported_there():
    registry = schemas()
    sid = schema_id("finleap", "list_accounts.response")
    account = _examples("finleap", "defs/account")[-1][1]   # valid-0 sorts after invalid-0
    assert registry.errors(sid, {"accounts": [account]}) == []
    missing = {k: v for k, v in account.items() if k != "name"}
    errors = registry.errors(sid, {"accounts": [account, missing]})
    assert [(e["pointer"], e["validator"]) for e in errors] == [("/accounts/1/name", "required")]
    deep = json.loads(json.dumps(account))
    deep["balance"]["status"]["code"] = "0"   # list -> account.json -> account_balance.json -> sync_status.json
    assert "/accounts/0/balance/status/code" in [e["pointer"] for e in registry.errors(sid, {"accounts": [deep]})]


def test_without_the_def_file_the_reference_does_not_resolve(tmp_path):
    """The operation schema holds no copy of the account: take defs/account.json away and validation cannot run."""
    shutil.copytree(SCHEMA_DIR, tmp_path / "schemas")
    (tmp_path / "schemas" / "finleap" / "defs" / "account.json").unlink()
    crippled = SchemaRegistry(tmp_path / "schemas")
    with pytest.raises(Unresolvable):
        crippled.errors(schema_id("finleap", "list_accounts.response"), {"accounts": [{"account_id": "A1.1"}]})
    assert schemas().errors(schema_id("finleap", "list_accounts.response"), {"accounts": [{"account_id": "A1.1"}]})


# --- the OpenAPI documents -----------------------------------------------------------------------------------------
def _resolve(doc: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        part = unquote(part).replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _doc_validator(doc: dict, component: str) -> Draft202012Validator:
    """A 2020-12 validator for ``#/components/schemas/<component>`` of ``doc`` (OpenAPI 3.1 schemas are 2020-12)."""
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(doc, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{component}"}, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture
def docs(client):
    return {provider: client.get(f"{prefix}/openapi.json").json for provider, prefix in PREFIXES.items()}


@pytest.mark.parametrize("provider", list(PREFIXES))
def test_each_shared_def_is_one_component_and_is_never_inlined(docs, provider):
    doc = docs[provider]
    components = doc["components"]["schemas"]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in components)
    assert not any("$id" in c or "$schema" in c or "$defs" in c for c in components.values())
    for path in _def_files(provider):
        sid = SCHEMA_BASE + path.relative_to(SCHEMA_DIR).as_posix()
        name = _component_name(sid)
        assert name in components, name
        body = json.dumps(_strip(components[name]), sort_keys=True)
        copies = [where for where, node in _walk(doc) if json.dumps(_strip(node), sort_keys=True) == body]
        assert copies == [("components", "schemas", name)], copies
        refs = [where for where, node in _walk(doc) if node.get("$ref") == f"#/components/schemas/{name}"]
        assert refs, f"{name} is lifted but nothing references it"


@pytest.mark.parametrize("provider", list(PREFIXES))
def test_every_ref_in_the_document_resolves_inside_it_and_the_document_is_valid(docs, provider):
    from openapi_spec_validator import validate
    doc = docs[provider]
    refs = [node["$ref"] for _, node in _walk(doc) if isinstance(node.get("$ref"), str)]
    assert refs
    for ref in refs:
        assert isinstance(_resolve(doc, ref), dict), ref
    validate(doc)


def test_the_finleap_list_responses_reference_the_def_components(docs):
    components = docs["finleap"]["components"]["schemas"]
    for list_name, key, _, def_name in LISTS:
        items = components[_component_name(schema_id("finleap", list_name))]["properties"][key]["items"]
        assert items == {"$ref": f"#/components/schemas/{_component_name(schema_id('finleap', def_name))}"}
    sync = components["finleap_defs_sync"]   # a def's own $defs become components of their own
    assert sync["properties"]["challenge"]["anyOf"][0] == {"$ref": "#/components/schemas/finleap_defs_sync__challenge"}


@pytest.mark.parametrize("provider", list(PREFIXES))
def test_the_document_is_exactly_as_strict_as_the_schema_files(docs, provider):
    """Every example under tests/schema_examples keeps its verdict against the lifted component."""
    doc = docs[provider]
    checked = 0
    for path in sorted((EXAMPLES / provider).rglob("*.json")):
        rel = path.relative_to(EXAMPLES / provider).as_posix()
        name, kind = rel.rsplit(".", 2)[0], rel.rsplit(".", 2)[1].split("-")[0]
        component = _component_name(schema_id(provider, name))
        if component not in doc["components"]["schemas"]:
            continue   # query schemas become parameters, not components
        errors = list(_doc_validator(doc, component).iter_errors(json.loads(path.read_text())))
        assert (errors == []) == (kind == "valid"), (rel, [e.message for e in errors])
        checked += 1
    assert checked >= (100 if provider == "finleap" else 10)


def _finleap_token(client) -> dict:
    link = client.post("/finleap/onetime/income-report", json={"redirect_uri": "https://my-app.example.com/cb",
                                                               "state": "s-1"}, auth=BASIC)
    assert link.status_code == 201, link.text
    done = client.post(f"/_sandbox/flows/{link.json['id']}/complete", json={"outcome": "success"})
    assert done.status_code == 200, done.text
    code = dict(parse_qsl(urlsplit(done.json["redirect_url"]).query))["code"]
    token = client.post("/finleap/auth/token", json={"grant_type": "authorization_code", "code": code}, auth=BASIC)
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json['access_token']}"}


@pytest.mark.parametrize("path,key,tamper,component", [
    ("/rest/accounts", "accounts", lambda item: item.pop("name"), "finleap_defs_account"),
    ("/rest/transactions", "transactions", lambda item: item.update(amount="1.00"), "finleap_defs_transaction"),
    ("/rest/transactions", "transactions", lambda item: item["categories"][0].pop("parent_id"),
     "finleap_defs_category")], ids=["account", "transaction", "transaction.category"])
def test_schemathesis_checks_a_real_list_response_through_the_shared_def(app, client, path, key, tamper,
                                                                         component):
    import schemathesis
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi.checks import response_schema_conformance

    headers = _finleap_token(client)
    schema = schemathesis.openapi.from_wsgi("/finleap/openapi.json", app)
    case = schema[path]["GET"].Case(headers=headers)
    response = client.get(f"/finleap{path}", headers=headers)
    assert response.status_code == 200 and response.json[key], response.text
    case.validate_response(response, checks=[response_schema_conformance])

    body = response.json
    tamper(body[key][-1])
    response.set_data(json.dumps(body))
    with pytest.raises(FailureGroup) as failed:
        case.validate_response(response, checks=[response_schema_conformance])
    messages = [str(e) for e in failed.value.exceptions]
    assert len(messages) == 1 and f"/components/schemas/{component}" in messages[0], messages


# --- the lifter on references the real schemas do not use (yet) --------------------------------------------------
def _toy(tmp_path) -> SchemaRegistry:
    base = f"{SCHEMA_BASE}toy/"
    files = {
        "error.json": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
        "defs/a.json": {"type": "object", "required": ["b"],
                        "properties": {"b": {"$ref": "b.json"}, "inner": {"$ref": "#/$defs/in ner"},
                                       "self": {"$ref": "#"}, "slash": {"$ref": "#/$defs/x~1y"},
                                       "plain": {"$ref": "#/$defs/plain"}},
                        "$defs": {"in ner": {"type": "integer", "minimum": 3}, "x/y": {"const": "slash"},
                                  "plain": {"type": "boolean"}}},
        "defs/b.json": {"anyOf": [{"$ref": "../error.json"}, {"type": "string", "maxLength": 2}]},
        "defs/a__plain.json": {"const": "collides with a's $defs component name"},
        "get_x.query.json": {"type": "object", "properties": {"b": {"$ref": "defs/b.json"}}},
        "get_x.response.json": {"type": "object",
                                "properties": {"a": {"$ref": "defs/a.json"},
                                               "deep": {"$ref": "defs/a.json#/$defs/in%20ner"},
                                               "prop": {"$ref": f"{base}defs/a.json#/properties/b"},
                                               "odd": {"$ref": "defs/a__plain.json"}}},
    }
    for rel, schema in files.items():
        target = tmp_path / "toy" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                      "$id": base + rel, **schema}))
    return SchemaRegistry(tmp_path)


@pytest.mark.parametrize("instance", [
    {}, {"a": {"b": "ok"}}, {"a": {"b": "too long"}}, {"a": {"b": {"message": "m"}}}, {"a": {"b": {}}},
    {"a": {}}, {"a": {"b": "ok", "inner": 3}}, {"a": {"b": "ok", "inner": 2}}, {"deep": 3}, {"deep": 2},
    {"prop": "ok"}, {"prop": 5}, {"a": {"b": "ok", "self": {"b": "no!"}}}, {"a": {"b": "ok", "self": {"b": "k"}}},
    {"a": {"b": "ok", "slash": "slash"}}, {"a": {"b": "ok", "slash": "other"}},
    {"a": {"b": "ok", "plain": True}}, {"a": {"b": "ok", "plain": "yes"}},
    {"odd": "collides with a's $defs component name"}, {"odd": 1}])
def test_lifted_relative_nested_and_escaped_refs_keep_their_meaning(tmp_path, instance):
    registry = _toy(tmp_path)
    components: dict = {}
    ref = _Lifter(registry, components).ref(schema_id("toy", "get_x.response"))
    doc = {"components": {"schemas": components}}
    for _, node in _walk(doc):
        if isinstance(node.get("$ref"), str):
            assert isinstance(_resolve(doc, node["$ref"]), dict), node["$ref"]
    assert len(components) == 8   # 5 files (get_x, a, b, a__plain, error) and a's three $defs, none overwritten
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in components), sorted(components)
    lifted = _doc_validator(doc, ref["$ref"].rsplit("/", 1)[1])
    expected = registry.errors(schema_id("toy", "get_x.response"), instance) == []
    assert lifted.is_valid(instance) == expected


def test_query_parameters_may_use_shared_definitions_too(tmp_path):
    """A query schema is not a component (its properties become parameters), yet its refs must resolve."""
    from types import SimpleNamespace

    from sandbox.core.openapi import build_openapi
    registry = _toy(tmp_path)
    op = SimpleNamespace(kind="operation", routes=[("GET", "/x")], method="GET", id="toy.get_x", summary="",
                         name="get_x", headers=(), body="none", statuses=(200, 400), response="json", auth="none")
    decl = SimpleNamespace(name="toy", title="Toy", schemes={})
    doc = build_openapi(SimpleNamespace(decl=decl, ops={"get_x": op}, prefix="/toy"), registry)
    param = next(p for p in doc["paths"]["/x"]["get"]["parameters"] if p["name"] == "b")
    assert param["schema"] == {"$ref": "#/components/schemas/toy_defs_b"}
    for _, node in _walk(doc):
        if isinstance(node.get("$ref"), str):
            assert isinstance(_resolve(doc, node["$ref"]), dict), node["$ref"]
    from openapi_spec_validator import validate
    validate(doc)
