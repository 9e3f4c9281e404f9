"""A small finoOS client over the contract transport, shared by the finoOS contract files: form-grant tokens per
API client, calls by operation short name (TenantID, path parameters with dashes), schema-checked ``ok`` calls."""
from __future__ import annotations

from sandbox.core.store import MemoryStore
from sandbox.spec import operations

from .checks import not_a_server_error, response_schema_conformance, status_in
from .partial_app import fino_app
from .plugin import frozen_transport

OP = {name: op["id"] for name, op in operations("fino").items()}


def fino_fixture(contract_options, client_class, seed: int, at=None):
    """Generator for a finoOS fixture: the client over a transport (in-process app at ``seed`` or a served sandbox)
    on a frozen clock (at ``at`` if given); the job policies and clock are restored afterwards."""
    with frozen_transport(contract_options, "fino", lambda: fino_app({"SEED": seed}, store=MemoryStore()),
                          at=at) as (transport, control):
        yield client_class(transport, control, contract_options)


class FinoClient:
    """A small finoOS client over the contract transport."""

    def __init__(self, transport, control, opts):
        self.t, self.control, self.opts = transport, control, opts
        self._tokens = {}

    def token(self, client=None) -> str:
        client = client or (self.opts["client_id"], self.opts["client_secret"])
        if client not in self._tokens:
            r = self.t.call(OP["authenticate"], data=f"client_id={client[0]}&client_secret={client[1]}"
                            "&grant_type=client_credentials",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
            status_in(r, 200)
            self._tokens[client] = r.json["access_token"]
        return self._tokens[client]

    def call(self, name, body=None, query=None, tenant=None, client=None, alias=None, **path):
        headers = {"Authorization": f"Bearer {self.token(client)}", **({"TenantID": tenant} if tenant else {})}
        params = {k.replace("_", "-"): v for k, v in path.items()}
        r = self.t.call(OP[name], json_body=body, query=query, headers=headers, path_params=params, alias=alias)
        not_a_server_error(r)
        return r

    def ok(self, name, status=200, **kw):
        r = self.call(name, **kw)
        status_in(r, status)
        if status != 204:
            response_schema_conformance(r)
        return r

    def user(self, tenant=None, **body) -> str:
        body = {"type": "person", "automaticAnalysis": "suspended", **body}
        return self.ok("create_user", 201, body=body, tenant=tenant).json["user"]["userID"]

    def analyse(self, user_id, tenant=None) -> str:
        """Trigger a run and let it finish (2 s on the frozen clock); its correlationID."""
        cid = self.ok("trigger_analysis", tenant=tenant, user_id=user_id).json["correlationID"]
        self.control.clock("advance", seconds=2)
        return cid
