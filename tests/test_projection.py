"""A resource's public shape is its response schema: SchemaRegistry.project keeps what the schema declares."""
import json

from sandbox.core.context import schemas
from sandbox.core.validation import SchemaRegistry, schema_id


def _registry(tmp_path, files: dict) -> SchemaRegistry:
    for name, schema in files.items():
        path = tmp_path / "demo" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                    "$id": f"https://provider-sandbox.local/schemas/demo/{name}", **schema}))
    return SchemaRegistry(tmp_path)


def test_projection_follows_refs_across_files_arrays_and_combinators(tmp_path):
    reg = _registry(tmp_path, {
        "defs/item.json": {"type": "object", "properties": {"id": {}, "tags": {"type": "array", "items": {
            "type": "object", "properties": {"name": {}}}}}},
        "list.response.json": {"type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": "defs/item.json"}},
            "meta": {"allOf": [{"properties": {"page": {}}}, {"properties": {"size": {}}}]},
            "free": {"type": "object"}}},
    })
    stored = {"items": [{"id": 1, "secret": "x", "tags": [{"name": "a", "internal": True}]}],
              "meta": {"page": 1, "size": 2, "cursor_key": "k"}, "free": {"2025-01": 3}, "owner": "u1"}
    assert reg.project("https://provider-sandbox.local/schemas/demo/list.response.json", stored) == {
        "items": [{"id": 1, "tags": [{"name": "a"}]}], "meta": {"page": 1, "size": 2}, "free": {"2025-01": 3}}


def test_served_finx_accounts_and_accesses_show_no_internal_fields(client):
    """Stored finX accounts carry user_id, ledger_id, balance_value...: the API shows only the schema's fields."""
    from contract_tests.test_finleap import Finx
    from contract_tests.transport import Control, WSGITransport
    from contract_tests.plugin import served_routes

    transport = WSGITransport(client.application, served_routes(client.application, "finleap"), "")
    fx = Finx(transport, Control(transport), {"client_id": "sandbox-client", "client_secret": "sandbox-secret"})
    _, tokens = fx.connected()
    h = fx.bearer(tokens["access_token"])
    registry = schemas()
    account_fields = set(registry.schemas[schema_id("finleap", "defs/account")]["properties"])
    for account in fx.call("list_accounts", headers=h).json["accounts"]:
        assert set(account) <= account_fields
        assert not {"user_id", "ledger_id", "balance_value", "last_booking", "synced_at"} & set(account)
    for access in fx.call("list_accesses", headers=h).json["accesses"]:
        assert not {"user_id", "flow_id", "scenario", "current_sync", "months"} & set(access)
