"""finX operations, named like the catalogue ids (finleap.md). Raise SandboxError subclasses; never build responses.

Tenancy: the client (HTTP Basic) is the tenant. Each successful widget flow creates a user with an access,
accounts and transactions; tokens from that flow's code are bound to the user and to the flow's reports.
"""
from __future__ import annotations

import random
import re
import string
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from ...core import flows, paging
from ...core.clock import isoformat
from ...core.errors import BadRequest, Forbidden, Locked, NotFound, SandboxError, ValidationFailed
from ...core.ids import stable_seed, uuid4
from ...core.signing import expires_at
from ...core.validation import schema_id
from ...ledger import generate_ledger
from ...ledger.models import Ledger
from . import data, reports, widget
from .insights import Insights

PROVIDER = "finleap"
SYNC_KIND = "finleap.sync"
SYNC_STATES = ["QUEUED", "RUNNING", "COMPLETED"]
SYNC_SCA_STATES = ["QUEUED", "RUNNING", "AWAIT_AUTH", "RUNNING", "COMPLETED"]
SYNC_FAIL_STATES = ["QUEUED", "RUNNING", "FAILED"]
FULL_SCOPE = ["accounts=ro", "balance=ro", "transactions=ro", "offline"]
_USERS, _ACCESSES, _ACCOUNTS, _TXNS, _REPORTS = (
    f"{PROVIDER}.{c}" for c in ("users", "accesses", "accounts", "transactions", "reports"))
# transactions are stored one per key, scoped by account: a sync adds keys instead of rewriting a document
_OBSERVE_KEYS = [re.compile(r"^/rest/transactions$"),
                 re.compile(r"^/rest/accounts/(?P<account>[^/?]+)/transactions(\?.*)?$"),
                 re.compile(r"^/rest/accounts/(?P<account>[^/?]+)/balance\?(.*&)?inferior_limit=(?P<limit>-?\d+)(&.*)?$")]


class InvalidGrant(SandboxError):
    status, kind, default_message = 400, "invalid_grant", "Invalid grant."


def invalid(field: str, message: str) -> ValidationFailed:
    """A 400 code 1000 naming ``field`` (for rules the schema cannot express)."""
    return ValidationFailed([{"pointer": f"/{field}", "field": field, "message": message, "validator": "custom"}])


def _token(rng: random.Random, prefix: str) -> str:
    # finleap.md s.3: lengths vary (clients must store >= 2048 bytes); A... access, R... refresh
    alphabet = string.ascii_letters + string.digits + "-_"
    return prefix + "".join(rng.choice(alphabet) for _ in range(rng.randint(120, 1200)))


class FinleapService(Insights):
    """Widget links, tokens, reports, accounts, notifications and syncs here; insights.py adds the data products."""

    def __init__(self, sandbox):
        self.sb = sandbox
        cfg = sandbox.config
        self.code_ttl = float(cfg["FINLEAP_CODE_TTL"])
        self.access_ttl = float(cfg["FINLEAP_ACCESS_TTL"])
        self.refresh_ttl = float(cfg["FINLEAP_REFRESH_TTL"])
        self.widget_ttl = float(cfg["FINLEAP_WIDGET_TTL"])
        sandbox.jobs.register_default(SYNC_KIND, {"mode": "auto", "seconds": 2.0, "polls": 1})
        sandbox.jobs.on_transition(SYNC_KIND, self._on_sync_transition)
        widget.register(sandbox.flows, self)
        # finleap.md s.7: notifications carry finX's User-Agent, count 2xx and 3xx as delivered, and are not signed
        sandbox.webhooks.configure(PROVIDER, signature=False, headers={"User-Agent": "finx-notification/1.0"},
                                   accept_3xx=True)
        Insights.setup(self)

    def _txns(self, tenant: str, account_id: str):
        return self.sb.collection(tenant, _TXNS, scope=account_id, id_field="transaction_id")

    # --- widget links --------------------------------------------------------------------------------------------
    def create_income_report_link(self, ctx) -> dict:
        """Create an income-report widget flow -> {location, id} (finleap.md s.5)."""
        if "reporting_period" in ctx.body and "sync_period" in ctx.body:
            raise invalid("reporting_period", "reporting_period and sync_period cannot be combined.")
        return self._create_flow(ctx, "income-report")

    def create_account_verification_link(self, ctx) -> dict:
        """Create an account-verification widget flow -> {location, id} (finleap.md s.5)."""
        return self._create_flow(ctx, "account-verification")

    def _create_flow(self, ctx, kind: str) -> dict:
        client, body = ctx.client, ctx.body
        check_redirect_uri_field(body["redirect_uri"], "redirect_uri")
        if body.get("sync_period"):
            period = max(1, -(-int(body["sync_period"]) // 30))  # legacy days -> months, rounded up
        else:
            period = int(body.get("reporting_period", 12))
        preset = [a["id"] for a in body.get("accounts", [])] + ([body["account"]] if body.get("account") else [])
        fields = {"type": kind, "client_id": client["client_id"], "language": body.get("language", "de"),
                  "preset_accounts": preset, "account_types": body.get("account_types") or [],
                  "allow_multi_selection": bool(body.get("allow_multi_selection", False)), "period": period,
                  "name": body.get("name"), "readout": body.get("readout") or [],
                  "bank_id": data.BANKS[0]["id"] if preset else None, "username": None, "sca_method": None,
                  "user_id": None}
        flow, token = self.sb.flows.create(
            client["tenant"], PROVIDER, kind, redirect_uri=body["redirect_uri"], state=body.get("state"), data=fields,
            ttl=self.widget_ttl, first_step="login" if preset else "bank", purpose=widget.PURPOSE,
            claims={"type": kind})   # finleap.md s.8: the widget token carries flow_id, type and exp
        return {"location": ctx.url_for("widget", token=token), "id": flow["id"]}

    def flow(self, tenant: str, flow_id: str) -> dict:
        return self.sb.flows.get(tenant, PROVIDER, flow_id)

    def save_flow(self, tenant: str, flow: dict) -> None:
        self.sb.flows.save(tenant, flow)

    # --- successful flow: user, access, accounts, transactions, report ------------------------------------------
    def complete_flow(self, tenant: str, flow: dict, account_refs: list[str]) -> str:
        """Materialise a successful flow and return the authorization code for the redirect."""
        now = self.sb.clock.now(tenant)
        seed = self.sb.seed.get()
        ledger = self._ledger(seed, flow, now.date())
        user_id = uuid4(random.Random(stable_seed(seed, tenant, flow["id"], "user")))
        access_id = uuid4(random.Random(stable_seed(seed, tenant, flow["id"], "access")))
        chosen = [a for a in data.widget_accounts(ledger) if a.id in account_refs] or data.widget_accounts(ledger)[:1]
        chosen = data.apply_preset_ibans(chosen, flow["preset_accounts"])
        bank = next((b for b in data.selectable_banks() if b["id"] == flow.get("bank_id")), data.BANKS[0])
        account_ids = []
        for ledger_account in chosen:
            account = data.render_account(ledger_account, access_id, flow["id"])
            txns = [data.render_transaction(t, account["account_id"], flow["id"]) for t in ledger_account.transactions]
            account.update(user_id=user_id, ledger_id=ledger_account.id, balance_value=str(ledger_account.balance),
                           credit_limit=str(ledger_account.credit_limit) if ledger_account.credit_limit else None,
                           last_booking=ledger_account.transactions[-1].booking_date.isoformat()
                           if ledger_account.transactions else None,
                           synced_at=isoformat(now))
            self.sb.store.put(tenant, _ACCOUNTS, account["account_id"], account)
            store_txns = self._txns(tenant, account["account_id"])
            for t in txns:
                store_txns.put(t["transaction_id"], t)
            account_ids.append(account["account_id"])
        access = {"id": access_id, "user_id": user_id, "flow_id": flow["id"], "access_method_id": bank["id"],
                  "provider": {"id": bank["id"], "name": bank["name"], "bic": bank["bic"],
                               "bank_code": bank["bank_code"], "country": "DE"},
                  "save_secrets": False, "auto_sync": True, "created_at": isoformat(now), "accounts": account_ids,
                  "scenario": flow.get("username") or data.MOCK_USERNAME, "current_sync": None, "months": flow["period"]}
        self.sb.store.put(tenant, _ACCESSES, access_id, access)
        self.sb.store.update(tenant, _USERS, user_id, lambda u: {
            "id": user_id, "flows": sorted(set((u or {}).get("flows", []) + [flow["id"]])),
            "accesses": sorted(set((u or {}).get("accesses", []) + [access_id]))})
        self.sb.store.put(tenant, _REPORTS, flow["id"], self._materialise_report(tenant, flow, ledger, account_ids))
        scopes = self._scopes(flow)
        client = self.sb.auth.client(flow["client_id"]) or self.sb.auth.default_client()
        # a credential: signed under the secret key, its jti drawn from it too (never computable from the seed)
        code = self.sb.signer.encode({"flow_id": flow["id"], "tenant": tenant,
                                      "jti": uuid4(self.sb.ids.secret_rng(tenant, "finleap.code")),
                                      "iat": int(now.timestamp()), "exp": expires_at(now, self.code_ttl)},
                                     "finleap.code")
        if self.sb.config.get("FINLEAP_LEGACY_CODES"):
            code = "O" + code  # python-figo rejects codes not starting with "O" (finleap.md s.3)
        self.sb.auth.issue(PROVIDER, client, code, self.code_ttl, kind="code", subject=user_id, scopes=scopes,
                           data={"flow_id": flow["id"], "redirect_uri": flow["redirect_uri"], "flows": [flow["id"]]})
        flow.update(user_id=user_id, access_id=access_id)   # core's Flows.finish sets the status and step
        self.save_flow(tenant, flow)
        return code

    def _ledger(self, seed: int, flow: dict, today: date) -> Ledger:
        owner = self._holder_name(flow)
        return generate_ledger(seed, flow["id"], today, market="DE", months=max(flow["period"], 1) + 1,
                               owner_name=owner)

    def _holder_name(self, flow: dict) -> str | None:
        """The account holder's name for the scenario usernames (data.USERNAME_SCENARIOS)."""
        name = flow.get("name")
        if not name:
            return None
        username = flow.get("username") or ""
        tokens = name.split()
        if username.endswith("+high") and len(tokens) > 1:
            translit = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
            return f"{''.join(translit.get(c, c) for c in tokens[-1])}, {' '.join(tokens[:-1])}"
        if username.endswith("+medium"):
            return f"{tokens[0]} Schmidt-Wagner"
        if username.endswith("+low"):
            return "Thomas Wagner" if name.casefold() != "thomas wagner" else "Maria Müller"
        return name

    def _materialise_report(self, tenant: str, flow: dict, ledger: Ledger, account_ids: list[str]) -> dict:
        if flow["type"] == "account-verification":
            account = self.sb.store.get(tenant, _ACCOUNTS, account_ids[0])
            preset_iban = next((a for a in flow["preset_accounts"] if a), None)
            return reports.build_account_verification(flow["id"], flow["name"], preset_iban, account,
                                                      [account["owner"]])
        return {"accounts": account_ids, "period": flow["period"]}  # income report is computed on read (s.5 window)

    @staticmethod
    def _scopes(flow: dict) -> list[str]:
        if flow["type"] == "income-report":
            return list(FULL_SCOPE)
        # (inferred, s.3) account verification grants raw data only with readout
        scopes = []
        if "ACCOUNTS" in flow["readout"]:
            scopes += ["accounts=ro", "balance=ro"]
        if "TRANSACTIONS" in flow["readout"]:
            scopes += ["transactions=ro"]
        return scopes + ["offline"]

    # --- tokens --------------------------------------------------------------------------------------------------
    def create_token(self, ctx) -> dict:
        """authorization_code or refresh_token grant; every refresh rotates both tokens (finleap.md s.3)."""
        client, body = ctx.client, ctx.body
        # consume checks the client inside its atomic update: a wrong client's attempt leaves the grant to its owner
        if body["grant_type"] == "authorization_code":
            record = self.sb.auth.consume(PROVIDER, body["code"], "code", client_id=client["client_id"])
            if record is None:
                raise InvalidGrant("The authorization code is invalid, expired or already used.")
            if body.get("redirect_uri") and body["redirect_uri"] != record["data"]["redirect_uri"]:
                raise InvalidGrant("redirect_uri does not match the widget link's redirect_uri.")
        else:
            record = self.sb.auth.consume(PROVIDER, body["refresh_token"], "refresh", client_id=client["client_id"])
            if record is None:
                raise InvalidGrant("The refresh token is invalid, expired or was already rotated.")
        return self._issue_pair(client, record)

    def _issue_pair(self, client: dict, grant: dict) -> dict:
        rng = self.sb.ids.secret_rng(client["tenant"], "finleap.token")   # credentials: from the secret key
        access, refresh = _token(rng, "A"), _token(rng, "R")
        keep = {"subject": grant["subject"], "scopes": grant["scopes"],
                "data": {"flows": grant["data"].get("flows", [])}}
        self.sb.auth.issue(PROVIDER, client, access, self.access_ttl, kind="access", **keep)
        self.sb.auth.issue(PROVIDER, client, refresh, self.refresh_ttl, kind="refresh", **keep)
        return {"access_token": access, "expires_in": int(self.access_ttl), "scope": " ".join(grant["scopes"]),
                "token_type": "Bearer", "refresh_token": refresh}

    # --- reports -------------------------------------------------------------------------------------------------
    def _report(self, tok: dict, report_id: str, kind: str) -> dict:
        flow = self.sb.store.get(tok["tenant"], flows.collection(PROVIDER), report_id)
        if flow is None or flow["type"] != kind or flow["status"] != "SUCCEEDED":
            raise NotFound("Report not found.")
        if report_id not in tok["data"].get("flows", []):
            raise Forbidden("This token does not belong to the report's flow.")  # (inferred) s.5
        return flow

    @staticmethod
    def _href_base(ctx) -> str:
        """The sandbox's own API base (report hrefs point at its /rest/transactions)."""
        return ctx.url_for("list_accounts").rsplit("/rest/", 1)[0]

    def get_income_report(self, ctx, id: str | None = None) -> dict:
        """The income report of a flow over its reporting period (s.5); computed from /rest/transactions data.
        Without an id (alias ``/rest/income-report``): the older query form over the token user's data."""
        tok, report_id, href_base = ctx.token, id, self._href_base(ctx)
        if report_id is None:
            return self._income_report_legacy(tok, ctx.query, href_base)
        flow = self._report(tok, report_id, "income-report")
        meta = self.sb.store.get(tok["tenant"], _REPORTS, report_id)
        since, until = reports.report_window(date.fromisoformat(flow["created_at"][:10]), flow["period"])
        return reports.build_income_report(self._report_txns(tok["tenant"], meta["accounts"]), since, until, href_base)

    def _income_report_legacy(self, tok: dict, args: dict, href_base: str) -> dict:
        """Older ``GET /rest/income-report?since=&until=&accounts=&accesses=`` over the token user's data."""
        accounts = self._user_accounts(tok, args.get("accounts"), args.get("accesses"))
        today = self.sb.clock.now(tok["tenant"]).date()
        default_since, default_until = reports.report_window(today, 12)
        since = date.fromisoformat(args["since"] + "-01") if args.get("since") else default_since
        until = _month_end(date.fromisoformat(args["until"] + "-01")) if args.get("until") else default_until
        if since > until:
            raise invalid("since", "since must not be after until.")
        return reports.build_income_report(self._report_txns(tok["tenant"], [a["account_id"] for a in accounts]),
                                           since, until, href_base)

    def _report_txns(self, tenant: str, account_ids: list[str]) -> list[dict]:
        txns = []
        for account_id in account_ids:
            account = self.sb.store.get(tenant, _ACCOUNTS, account_id)
            if account and account["type"] in ("Giro account", "Credit card"):
                txns += self._txns(tenant, account_id).list()
        return txns

    def get_account_verification_report(self, ctx, id: str) -> dict:
        tok, report_id = ctx.token, id
        self._report(tok, report_id, "account-verification")
        return self.sb.store.get(tok["tenant"], _REPORTS, report_id)

    # --- accounts and transactions -------------------------------------------------------------------------------
    def _user_accounts(self, tok: dict, accounts_filter: str | None = None, accesses_filter: str | None = None):
        user = self.sb.store.get(tok["tenant"], _USERS, tok["subject"]) or {"accesses": []}
        found = []
        wanted_accesses = set(accesses_filter.split(",")) if accesses_filter else None
        wanted_accounts = set(accounts_filter.split(",")) if accounts_filter else None
        for access_id in user["accesses"]:
            if wanted_accesses is not None and access_id not in wanted_accesses:
                continue
            access = self.sb.store.get(tok["tenant"], _ACCESSES, access_id)
            for account_id in access["accounts"]:
                if wanted_accounts is None or account_id in wanted_accounts:
                    found.append(self.sb.store.get(tok["tenant"], _ACCOUNTS, account_id))
        return found

    def _account(self, tok: dict, account_id: str) -> dict:
        account = self.sb.store.get(tok["tenant"], _ACCOUNTS, account_id)
        if account is None or account["user_id"] != tok["subject"]:
            raise NotFound("Account not found.")
        return account

    def _balance(self, account: dict) -> dict:
        return {"balance": float(Decimal(account["balance_value"])), "balance_date": account["synced_at"],
                "credit_line": float(Decimal(account["credit_limit"])) if account.get("credit_limit") else None,
                "monthly_spending_limit": None, "status": self._status(account)}

    @staticmethod
    def _status(account: dict) -> dict:
        return {"code": 1, "message": "Synchronization successful.", "sync_timestamp": account["synced_at"],
                "success_timestamp": account["synced_at"]}

    def _public_account(self, account: dict) -> dict:
        shown = {**account, "balance": self._balance(account), "status": self._status(account)}
        return self.sb.schemas.project(schema_id(PROVIDER, "get_account.response"), shown)

    def list_accounts(self, ctx) -> dict:
        return {"accounts": [self._public_account(a) for a in self._user_accounts(ctx.token)]}

    def get_account(self, ctx, account_id: str) -> dict:
        return self._public_account(self._account(ctx.token, account_id))

    def get_account_balance(self, ctx, account_id: str) -> dict:
        return self._balance(self._account(ctx.token, account_id))

    def list_transactions(self, ctx, account_id: str | None = None) -> dict:
        """Transactions with the figo query filters (finleap.md s.6), newest first unless sort=ASC."""
        tok, args = ctx.token, ctx.query
        if account_id:
            accounts = [self._account(tok, account_id)]
        else:
            accounts = self._user_accounts(tok, args.get("accounts"))
        items = [t for a in accounts for t in self._txns(tok["tenant"], a["account_id"]).list()]
        since, until = self._bound(items, args.get("since")), self._bound(items, args.get("until"))
        types = set(args["types"].split(",")) if args.get("types") else None
        categories = {int(c) for c in args["categories"].split(",") if c} if args.get("categories") else None
        selected = [t for t in items
                    if (since is None or t["booking_date"] >= since) and (until is None or t["booking_date"] <= until)
                    and (types is None or t["type"] in types)
                    and (not args.get("sync_id") or t.get("sync_id") == args["sync_id"])
                    and (categories is None or any(c["id"] in categories for c in t["categories"]))]
        selected.sort(key=lambda t: (t["booking_date"], t["transaction_id"]), reverse=args.get("sort", "DESC") != "ASC")
        page = paging.offset_slice(selected, paging.parse_offset_query(args))   # finleap.md s.6: count/offset
        if _flag(args.get("cents")):
            page = [{**t, "amount": int((Decimal(str(t["amount"])) * 100).to_integral_value())} for t in page]
        result: dict = {"transactions": page}
        if _flag(args.get("include_statistics")):
            credits = sum((Decimal(str(t["amount"])) for t in selected if t["amount"] > 0), Decimal(0))
            debits = sum((Decimal(str(t["amount"])) for t in selected if t["amount"] < 0), Decimal(0))
            result["statistics"] = {"count": len(selected), "credits": float(credits), "debits": float(debits),
                                    "balance": float(credits + debits)}
        return result

    @staticmethod
    def _bound(items: list[dict], value: str | None) -> str | None:
        """since/until: an ISO date, or a transaction id standing for its booking date (s.6)."""
        if not value:
            return None
        for t in items:
            if t["transaction_id"] == value:
                return t["booking_date"]
        try:
            return date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            raise invalid("since", "Not a valid date or transaction id.") from None

    def get_transaction(self, ctx, transaction_id: str, account_id: str | None = None) -> dict:
        tok = ctx.token
        accounts = [self._account(tok, account_id)] if account_id else self._user_accounts(tok)
        for a in accounts:
            found = self._txns(tok["tenant"], a["account_id"]).get(transaction_id)
            if found is not None:
                return found
        raise NotFound("Transaction not found.")

    # --- notifications -------------------------------------------------------------------------------------------
    def _check_observe_key(self, tok: dict, key: str) -> None:
        match = next((m for m in (p.match(key) for p in _OBSERVE_KEYS) if m), None)
        if match is None:
            raise invalid("observe_key", "Not a valid observe key.")
        if "account" in match.groupdict() and match.group("account"):
            self._account(tok, match.group("account"))
        needed = "balance=ro" if "/balance" in key else "transactions=ro"
        if needed not in tok["scopes"]:
            raise Forbidden(f"The observe key needs the {needed} scope.")  # finleap.md s.3

    # Notifications are subscriptions of core's webhook registry (owner = the end user, event = the observe key).
    @staticmethod
    def _public_notification(sub: dict) -> dict:
        return {"notification_id": sub["id"], "observe_key": sub["events"][0], "notify_uri": sub["url"],
                "state": (sub.get("data") or {}).get("state", "")}

    def list_notifications(self, ctx) -> dict:
        return {"notifications": [self._public_notification(s) for s in self.sb.webhooks.subscriptions(
            ctx.tenant, PROVIDER, owner=ctx.user)]}

    def create_notification(self, ctx) -> dict:
        tok, body = ctx.token, ctx.body
        self._check_observe_key(tok, body["observe_key"])
        check_redirect_uri_field(body["notify_uri"], "notify_uri")
        nid = data.figo_id("N", tok["tenant"], tok["subject"], self.sb.ids.uuid4(tok["tenant"], "finleap.notification"))
        sub = self.sb.webhooks.subscribe(ctx.tenant, PROVIDER, url=body["notify_uri"], events=[body["observe_key"]],
                                         owner=ctx.user, sub_id=nid, data={"state": body.get("state", "")})
        return self._public_notification(sub)

    def get_notification(self, ctx, notification_id: str) -> dict:
        return self._public_notification(self._notification(ctx, notification_id))

    def _notification(self, ctx, notification_id: str) -> dict:
        try:
            sub = self.sb.webhooks.get_subscription(ctx.tenant, PROVIDER, notification_id)
        except NotFound:
            sub = None
        if sub is None or sub.get("owner") != ctx.user:
            raise NotFound("Notification not found.")
        return sub

    def update_notification(self, ctx, notification_id: str) -> dict:
        tok, body = ctx.token, ctx.body
        current = self._notification(ctx, notification_id)
        if "observe_key" in body:
            self._check_observe_key(tok, body["observe_key"])
        if "notify_uri" in body:
            check_redirect_uri_field(body["notify_uri"], "notify_uri")
        sub = self.sb.webhooks.update_subscription(
            ctx.tenant, PROVIDER, current["id"], url=body.get("notify_uri"),
            events=[body["observe_key"]] if "observe_key" in body else None,
            data={"state": body["state"]} if "state" in body else None)
        return self._public_notification(sub)

    def delete_notification(self, ctx, notification_id: str) -> None:
        self.sb.webhooks.unsubscribe(ctx.tenant, PROVIDER, self._notification(ctx, notification_id)["id"])

    # --- accesses and syncs --------------------------------------------------------------------------------------
    def _access(self, tok: dict, access_id: str) -> dict:
        access = self.sb.store.get(tok["tenant"], _ACCESSES, access_id)
        if access is None or access["user_id"] != tok["subject"]:
            raise NotFound("Access not found.")
        return access

    def _public_access(self, access: dict) -> dict:
        return self.sb.schemas.project(schema_id(PROVIDER, "get_access.response"), access)

    def list_accesses(self, ctx) -> dict:
        tok = ctx.token
        user = self.sb.store.get(tok["tenant"], _USERS, tok["subject"]) or {"accesses": []}
        return {"accesses": [self._public_access(self.sb.store.get(tok["tenant"], _ACCESSES, a))
                             for a in user["accesses"]]}

    def get_access(self, ctx, access_id: str) -> dict:
        return self._public_access(self._access(ctx.token, access_id))

    def create_sync(self, ctx, access_id: str) -> dict:
        """Start a sync (QUEUED -> RUNNING -> COMPLETED; AWAIT_AUTH for SCA scenarios); 423 while one runs."""
        tok, body = ctx.token, ctx.body or {}
        access = self._access(tok, access_id)
        tenant = tok["tenant"]
        if access.get("current_sync"):
            running = self.sb.jobs.get(tenant, access["current_sync"])
            if running and not self.sb.jobs.is_final(running):
                raise Locked("A synchronization of this access is already running.")
        if body.get("redirect_uri"):
            check_redirect_uri_field(body["redirect_uri"], "redirect_uri")
        sca = access["scenario"].endswith("+sca")
        states = SYNC_SCA_STATES if sca else (SYNC_FAIL_STATES if access["scenario"].endswith("+syncfail")
                                              else SYNC_STATES)
        sync_id = self.sb.ids.uuid4(tenant, "finleap.sync")
        sca_location = None
        if sca:   # the SCA page is a flow keyed by the sync id: signed, expiring token, control-API completable
            _, token = self.sb.flows.create(
                tenant, PROVIDER, widget.SCA_KIND, flow_id=sync_id, redirect_uri=body.get("redirect_uri"),
                state=body.get("state"), data={"type": widget.SCA_KIND, "access_id": access_id}, ttl=self.widget_ttl,
                first_step="confirm", purpose=widget.SCA_PURPOSE)
            sca_location = ctx.url_for("sync_sca", sync_id=sync_id, token=token)
        job = self.sb.jobs.create(tenant, SYNC_KIND, states, job_id=sync_id,
                                  owner=tok["subject"], holds=[2] if sca else [],
                                  data={"access_id": access_id, "disable_notifications":
                                        bool(body.get("disable_notifications", False)),
                                        "redirect_uri": body.get("redirect_uri"), "state": body.get("state"),
                                        "sca_location": sca_location})
        self.sb.store.update(tenant, _ACCESSES, access_id, lambda a: {**a, "current_sync": sync_id})
        return self._public_sync(self.sb.jobs.peek(tenant, job["id"]) or job)

    def get_sync(self, ctx, access_id: str, sync_id: str) -> dict:
        tok = ctx.token
        self._access(tok, access_id)
        job = self.sb.jobs.poll(tok["tenant"], sync_id)
        if job is None or job["kind"] != SYNC_KIND or job["data"]["access_id"] != access_id:
            raise NotFound("Synchronization not found.")
        return self._public_sync(job)

    def _public_sync(self, job: dict) -> dict:
        challenge = None
        if job["state"] == "AWAIT_AUTH":
            challenge = {"id": f"{job['id']}-sca", "title": "Redirect authentication",
                         "label": "Please confirm the synchronization at your bank.", "format": "HTML",
                         "data": None, "type": "redirect", "location": job["data"]["sca_location"],
                         "created_at": job["step_since"]}
        error = None
        if job["state"] == "FAILED":
            # a scenario sync walks QUEUED -> RUNNING -> FAILED; a control-API or SCA failure carries its own error
            failure = job["error"] or {"message": "The bank rejected the synchronization (sandbox scenario).",
                                       "code": 1000, "description": "Bank error"}
            error = {"code": failure.get("code", 1000), "message": failure["message"],
                     "description": failure.get("description", failure["message"])}
        ended = job["step_since"] if job["state"] in ("COMPLETED", "FAILED") else None
        return {"id": job["id"], "status": job["state"], "challenge": challenge, "error": error,
                "created_at": job["created_at"], "started_at": job["data"].get("at_RUNNING"), "ended_at": ended}

    def sync_for_page(self, tenant: str, sync_id: str) -> dict:
        job = self.sb.jobs.peek(tenant, sync_id)
        if job is None or job["kind"] != SYNC_KIND:
            raise NotFound("Synchronization not found.")
        return job

    def confirm_sync_sca(self, tenant: str, sync_id: str, approve: bool) -> dict:
        """The SCA page's answer: approve resumes the sync, deny fails it."""
        job = self.sync_for_page(tenant, sync_id)
        if job["state"] != "AWAIT_AUTH":
            raise BadRequest("This synchronization is not waiting for authentication.")
        if approve:
            return self.sb.jobs.resume(tenant, sync_id)
        return self.sb.jobs.fail(tenant, sync_id, "The user denied the authentication.",
                                 {"code": 1002, "description": "SCA denied"})

    def _on_sync_transition(self, tenant: str, job: dict, state: str) -> None:
        """Sync hooks: record timestamps; scenario failures; on COMPLETED add new transactions and notify."""
        self.sb.jobs.update_data(tenant, job["id"], **{f"at_{state}": job["step_since"]})
        access = self.sb.store.get(tenant, _ACCESSES, job["data"]["access_id"])
        if access is not None and state == "COMPLETED":
            new = self._fetch_new_transactions(tenant, access, job["id"])
            if new and not job["data"]["disable_notifications"]:
                self._notify(tenant, access, new)

    def _fetch_new_transactions(self, tenant: str, access: dict, sync_id: str) -> dict[str, list[dict]]:
        """Bookings the ledger has between the last sync and today (sandbox clock), appended with ``sync_id``."""
        today = self.sb.clock.now(tenant).date()
        flow = self.sb.store.get(tenant, flows.collection(PROVIDER), access["flow_id"])
        ledger = self._ledger(self.sb.seed.get(), {**flow, "period": access["months"] + _months_between(
            date.fromisoformat(flow["created_at"][:10]), today)}, today)
        by_id = {a.id: a for a in ledger.accounts}
        added: dict[str, list[dict]] = {}
        for account_id in access["accounts"]:
            account = self.sb.store.get(tenant, _ACCOUNTS, account_id)
            ledger_account = by_id.get(account["ledger_id"])
            last = account.get("last_booking") or "0000-00-00"
            fresh = [t for t in (ledger_account.transactions if ledger_account else []) if t.booking_date.isoformat() > last]
            if not fresh:
                continue
            rendered = []
            for n, t in enumerate(fresh):
                item = data.render_transaction(t, account_id, access["flow_id"], sync_id)
                # a regenerated ledger renumbers its bookings: sync additions get the sync's own serials
                item["transaction_id"] = data.transaction_id(account_id, f"{data.figo_id('S', sync_id)[1:8]}{n:04d}")
                rendered.append(item)
            balance = Decimal(account["balance_value"]) + sum((t.amount for t in fresh), Decimal(0))
            store_txns = self._txns(tenant, account_id)
            for item in rendered:
                store_txns.put(item["transaction_id"], item)
            self.sb.store.update(tenant, _ACCOUNTS, account_id, lambda a: {
                **a, "balance_value": str(balance), "last_booking": fresh[-1].booking_date.isoformat(),
                "synced_at": isoformat(self.sb.clock.now(tenant))})
            added[account_id] = rendered
        return added

    def _notify(self, tenant: str, access: dict, new: dict[str, list[dict]]) -> list[dict]:
        """Enqueue the webhook of every notification whose observe key matches the new data (finleap.md s.7)."""
        deliveries = []
        for sub in self.sb.webhooks.subscriptions(tenant, PROVIDER, owner=access["user_id"]):
            payload_data = self._observed(tenant, sub["events"][0], new)   # observe keys match by pattern (s.7)
            if payload_data is None:
                continue
            deliveries.append(self._send(tenant, sub, payload_data))
        return deliveries

    def _send(self, tenant: str, sub: dict, payload_data) -> dict:
        """POST one notification (finleap.md s.7: {notification_id, observe_key, state, data}; 2xx or 3xx =
        delivered). Only enqueued: delivery happens outside the request."""
        public = self._public_notification(sub)
        return self.sb.webhooks.enqueue(
            tenant, PROVIDER, "notification", sub["url"], {**public, "data": payload_data}, sub_id=sub["id"],
            owner=sub.get("owner"))

    def _observed(self, tenant: str, key: str, new: dict[str, list[dict]]):
        if _OBSERVE_KEYS[0].match(key):
            items = [t for txns in new.values() for t in txns]
            return items or None
        match = _OBSERVE_KEYS[2].match(key)
        if match:
            account = self.sb.store.get(tenant, _ACCOUNTS, match.group("account"))
            if account and match.group("account") in new and \
                    Decimal(account["balance_value"]) < Decimal(match.group("limit")):
                return self._balance(account)
            return None
        match = _OBSERVE_KEYS[1].match(key)
        if match and new.get(match.group("account")):
            return new[match.group("account")]
        return None

    def fire_webhook(self, tenant: str, body: dict) -> list[dict]:
        """Control API: send notifications now (all of the tenant, or of ``user_id``) with the newest transactions."""
        deliveries = []
        for n in self.sb.webhooks.subscriptions(tenant, PROVIDER, owner=body.get("user_id") or None):
            user = self.sb.store.get(tenant, _USERS, n.get("owner") or "") or {"accesses": []}
            sample = [t for access_id in user["accesses"]
                      for account_id in self.sb.store.get(tenant, _ACCESSES, access_id)["accounts"]
                      for t in sorted(self._txns(tenant, account_id).list(),
                                      key=lambda t: (t["booking_date"], t["transaction_id"]))[-3:]]
            deliveries.append(self._send(tenant, n, body.get("data", sample)))
        return deliveries


def check_redirect_uri_field(uri: str, field: str) -> None:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationFailed([{"pointer": f"/{field}", "field": field, "message": "uri", "validator": "format"}])


def _flag(value: str | None) -> bool:
    """Query booleans: python-figo sends True/False, other clients true/false."""
    return (value or "").lower() == "true"


def _month_end(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _months_between(a: date, b: date) -> int:
    return max(0, (b.year - a.year) * 12 + b.month - a.month)
