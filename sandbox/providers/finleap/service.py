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
from ...core.clock import isoformat, parse_instant
from ...core.errors import BadRequest, Forbidden, Locked, NotFound, SandboxError, ValidationFailed
from ...core.ids import stable_seed, uuid4
from ...core.jobs import GLOBAL
from ...core.signing import expires_at
from ...core.validation import schema_id
from ...ledger import generate_ledger
from ...ledger.iban import is_valid_iban
from ...ledger.models import Ledger
from . import data, reports, risk, widget
from .insights import Insights

PROVIDER = "finleap"
SYNC_KIND = "finleap.sync"
SYNC_STATES = ["QUEUED", "RUNNING", "COMPLETED"]
SYNC_SCA_STATES = ["QUEUED", "RUNNING", "AWAIT_AUTH", "RUNNING", "COMPLETED"]
SYNC_FAIL_STATES = ["QUEUED", "RUNNING", "FAILED"]
FULL_SCOPE = ["accounts=ro", "balance=ro", "transactions=ro", "offline"]
_AUTOSYNC = f"{PROVIDER}.autosync"   # the ticker's index (in the sandbox's own tenant) of accesses that autosync
_USERS, _ACCESSES, _ACCOUNTS, _TXNS, _REPORTS, _RECEIPTS = (
    f"{PROVIDER}.{c}" for c in ("users", "accesses", "accounts", "transactions", "reports", "receipts"))
# finleap-products.md s.3: widget flow types; "ongoing-*" flows address the end user by the client's user_id
ACCESS_KINDS = ("access", "ongoing-access")
PAYMENT_KINDS = ("payment", "ongoing-payment")
RISK_KINDS = ("risk-report", "ongoing-risk-report")
# finleap-products.md s.3: a sync after the consent ended fails like other bank failures (same code)
CONSENT_EXPIRED = {"message": "Consent expired, renew via /ongoing/sync", "code": 1000, "description": "Bank error"}
ONGOING_KINDS = ("ongoing-access", "ongoing-sync", "ongoing-payment", "ongoing-risk-report")
# Client products (finleap-products.md s.2, inferred 403 code 1002): a client whose finleap scope list (control API
# POST /_sandbox/clients {"scopes": {"finleap": [...]}}) names any "product:<name>" has only the products it names;
# no product entry = every product (the sandbox default). "legacy-codes" in the same list = figo-style "O..." codes.
PRODUCTS = ("income-report", "account-verification", "access", "payment", "risk-report", "categorization")
PRODUCT_PREFIX, LEGACY_CODES = "product:", "legacy-codes"
DEFAULT_SYNC_PERIOD = 90      # days of history of /onetime/access and /ongoing/access (D-fd)
PAYMENT_PERIOD_MONTHS = 3     # history generated behind a payment's debtor account (inferred)
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
        # D-rcpt: a receipt is readable for 1 h after the payment (finleap-products.md s.8)
        self.receipt_ttl = float(cfg.get("FINLEAP_RECEIPT_TTL", 3600.0))
        # finleap-products.md s.3 (inferred): one-time retention (0 = keep), consent lifetime, autosync interval
        self.onetime_retention = float(cfg.get("FINLEAP_ONETIME_RETENTION", 0.0))
        self.consent_days = float(cfg.get("FINLEAP_CONSENT_DAYS", 180.0))
        self.autosync_hours = float(cfg.get("FINLEAP_AUTOSYNC_HOURS", 6.0))
        sandbox.jobs.register_default(SYNC_KIND, {"mode": "auto", "seconds": 2.0, "polls": 1})
        sandbox.jobs.on_transition(SYNC_KIND, self._on_sync_transition)
        sandbox.on_tick(self.autosync_tick)   # finleap-products.md s.3: autosync on the sandbox clock, unread too
        widget.register(sandbox.flows, self)
        # finleap.md s.7: notifications carry finX's User-Agent, count 2xx and 3xx as delivered, and are not signed
        sandbox.webhooks.configure(PROVIDER, signature=False, headers={"User-Agent": "finx-notification/1.0"},
                                   accept_3xx=True)
        Insights.setup(self)

    def _txns(self, tenant: str, account_id: str):
        return self.sb.collection(tenant, _TXNS, scope=account_id, id_field="transaction_id")

    # --- client settings (control API: the client's finleap scope list) --------------------------------------------
    @staticmethod
    def _client_flags(client: dict | None) -> list[str]:
        return list(((client or {}).get("scopes") or {}).get(PROVIDER) or [])

    def require_product(self, ctx, product: str) -> None:
        """403 code 1002 unless the calling client has ``product`` (finleap-products.md s.2, inferred). Products
        are switched per client through the control API; no ``product:*`` entry = every product enabled."""
        flags = self._client_flags(ctx.client)
        if any(f.startswith(PRODUCT_PREFIX) for f in flags) and PRODUCT_PREFIX + product not in flags:
            raise Forbidden(f"The product {product} is not enabled for this client.")

    def legacy_codes(self, client: dict | None) -> bool:
        """figo-style codes ("O...", python-figo / node-figo): for the whole server (SANDBOX_FINLEAP_LEGACY_CODES)
        or per client ("legacy-codes" in its finleap scope list, control API)."""
        return bool(self.sb.config.get("FINLEAP_LEGACY_CODES")) or LEGACY_CODES in self._client_flags(client)

    # --- widget links --------------------------------------------------------------------------------------------
    def create_income_report_link(self, ctx) -> dict:
        """Create an income-report widget flow -> {location, id} (finleap.md s.5)."""
        self.require_product(ctx, "income-report")
        body = coerce_body(ctx.body)
        if "reporting_period" in body and "sync_period" in body:
            raise invalid("reporting_period", "reporting_period and sync_period cannot be combined.")
        return self._create_flow(ctx, "income-report", body)

    def create_account_verification_link(self, ctx) -> dict:
        """Create an account-verification widget flow -> {location, id} (finleap.md s.5)."""
        self.require_product(ctx, "account-verification")
        return self._create_flow(ctx, "account-verification", coerce_body(ctx.body))

    def create_onetime_access_link(self, ctx) -> dict:
        """One-time financial data (finleap-products.md s.4): a new anonymous user per flow."""
        self.require_product(ctx, "access")
        return self._create_flow(ctx, "access", coerce_body(ctx.body))

    def create_ongoing_access_link(self, ctx) -> dict:
        """Ongoing access (multibanking, s.4): the access is added to the client's user ``user_id``."""
        self.require_product(ctx, "access")
        return self._create_flow(ctx, "ongoing-access", coerce_body(ctx.body))

    def create_ongoing_sync_link(self, ctx) -> dict:
        """Re-synchronise accounts of an existing ongoing user through the widget (s.4): 404 code 1004 for an
        unknown ``user_id``, 400 for ``account_ids`` that are not the user's (both inferred)."""
        self.require_product(ctx, "access")
        body = coerce_body(ctx.body)
        user = self._ongoing_user(ctx.client, body["user_id"])
        if user is None:
            raise NotFound("Unknown user_id.")
        owned = {a: self.sb.store.get(ctx.tenant, _ACCOUNTS, a) for a in body["account_ids"]}
        if any(acc is None or acc["user_id"] != user["id"] for acc in owned.values()):
            raise invalid("account_ids", "Unknown account.")
        return self._create_flow(ctx, "ongoing-sync", body, user=user, sync_accounts=list(dict.fromkeys(owned)))

    def create_onetime_payment_link(self, ctx) -> dict:
        """One-time SEPA payment (finleap-products.md s.8): the link id is the receipt id."""
        self.require_product(ctx, "payment")
        return self._create_flow(ctx, "payment", self._payment_body(ctx))

    def create_ongoing_payment_link(self, ctx) -> dict:
        """Payment of an ongoing user (s.8): ``account_id`` (a synced account of the user) or ``payment.debtor.iban``
        presets the debtor, never both (400, inferred)."""
        self.require_product(ctx, "payment")
        body = self._payment_body(ctx)
        if body.get("account_id") and (body["payment"].get("debtor") or {}).get("iban"):
            raise invalid("account_id", "account_id and payment.debtor.iban cannot be combined.")
        return self._create_flow(ctx, "ongoing-payment", body)

    def create_onetime_risk_report_link(self, ctx) -> dict:
        """One-time risk report link (s.9); helper code in reports/insights builds the report from flow_user()."""
        self.require_product(ctx, "risk-report")
        return self._create_flow(ctx, "risk-report", coerce_body(ctx.body))

    def create_ongoing_risk_report_link(self, ctx) -> dict:
        """Ongoing risk report link (s.9) for the client's user ``user_id``."""
        self.require_product(ctx, "risk-report")
        return self._create_flow(ctx, "ongoing-risk-report", coerce_body(ctx.body))

    def _payment_body(self, ctx) -> dict:
        """Coerce and check a payment link body (s.8): IBANs (mod 97), amount > 0 with at most 2 decimals, EUR,
        execution date not in the past (sandbox clock) and at most a year ahead (inferred)."""
        body = coerce_body(ctx.body)
        payment = body["payment"]
        for party in ("creditor", "debtor"):
            iban = (payment.get(party) or {}).get("iban")
            if iban is not None and not is_valid_iban(iban.replace(" ", "").upper()):
                raise invalid("iban", "Not a valid IBAN.")   # s.8: {"iban": ["Not a valid IBAN."]}
        try:
            value = Decimal(str(payment["amount"]["value"]))
        except ArithmeticError:
            raise invalid("amount", "Not a valid number.") from None
        if not value.is_finite() or value <= 0:
            raise invalid("amount", "Must be greater than 0.")
        if value >= Decimal("1000000000"):   # (inferred) before quantize: 1e300 has no 2-decimal form
            raise invalid("amount", "Must be less than 1000000000.")
        if value != value.quantize(Decimal("0.01")):
            raise invalid("amount", "At most 2 decimal places.")
        if payment.get("execution_date"):
            today = self.sb.clock.now(ctx.tenant).date()
            try:
                when = date.fromisoformat(payment["execution_date"])
            except ValueError:
                raise invalid("execution_date", "Not a valid date.") from None
            if when < today:
                raise invalid("execution_date", "Must not be in the past.")
            if when > today + timedelta(days=365):
                raise invalid("execution_date", "Must be at most one year ahead.")
        return body

    def _create_flow(self, ctx, kind: str, body: dict, user: dict | None = None,
                     sync_accounts: list[str] | None = None) -> dict:
        """Store a widget flow of ``kind`` (finleap-products.md s.3) and answer {location, id} (201)."""
        client, tenant = ctx.client, ctx.tenant
        check_redirect_uri_field(body["redirect_uri"], "redirect_uri")
        if kind in ("income-report", "account-verification", *RISK_KINDS):
            if body.get("sync_period"):
                period = max(1, -(-int(body["sync_period"]) // 30))  # legacy days -> months, rounded up
            else:
                period = int(body.get("reporting_period", 12))
            # string values ("12", s.2) skip the schema's bounds: the same bounds again after coercion
            if "reporting_period" in body and not 4 <= body["reporting_period"] <= 24:
                raise invalid("reporting_period", "Must be greater than or equal to 4 and less than or equal to 24.")
            if "sync_period" in body and not 1 <= body["sync_period"] <= 730:
                raise invalid("sync_period", "Must be greater than or equal to 1 and less than or equal to 730.")
        elif kind in PAYMENT_KINDS:
            period = PAYMENT_PERIOD_MONTHS
        else:   # access products: sync_period days of history, default 90, above the maximum -> the maximum (D-fd)
            days = int(body.get("sync_period", DEFAULT_SYNC_PERIOD))
            if days < 1:
                raise invalid("sync_period", "Must be greater than or equal to 1.")
            period = max(1, -(-min(days, 730) // 30))
        preset = [a["id"] for a in body.get("accounts", [])] + ([body["account"]] if body.get("account") else [])
        payment = body.get("payment")
        debtor_iban = ((payment or {}).get("debtor") or {}).get("iban")
        if debtor_iban:
            debtor_iban = debtor_iban.replace(" ", "").upper()
            preset = [debtor_iban]
        user_key = user["id"] if user else (
            self._ongoing_user_key(client, body["user_id"]) if kind in ONGOING_KINDS else None)
        bank = self._preset_bank(tenant, kind, body, preset, debtor_iban, user_key, sync_accounts)
        if kind in ONGOING_KINDS and user is None:   # only once the body is valid: a 400 creates nothing
            user = self._ongoing_user(client, body["user_id"], create=True)
        multi_default = kind not in ("income-report", "account-verification")   # s.4 / D-rc: default true
        fields = {"type": kind, "client_id": client["client_id"], "language": body.get("language", "de"),
                  "preset_accounts": preset, "account_types": body.get("account_types") or [],
                  "allow_multi_selection": bool(body.get("allow_multi_selection", multi_default)) and not (
                      kind not in ("income-report", "account-verification") and body.get("accounts")),
                  "period": period, "name": body.get("name"), "readout": body.get("readout") or [],
                  "bank_id": bank["id"] if bank else None, "username": None, "sca_method": None,
                  "user_id": user["id"] if user else None, "external_user_id": body.get("user_id"),
                  "save_secrets": bool(body.get("save_secrets", False)) and kind in ONGOING_KINDS,
                  "provider_id": body.get("provider_id"), "tracking_id": body.get("tracking_id"),
                  "payment": payment, "debtor_account": body.get("account_id"), "sync_accounts": sync_accounts,
                  "save_credentials": False}
        saved = (user or {}).get("saved_credentials", {}).get(bank["id"]) if bank and kind in ONGOING_KINDS else None
        if saved:
            fields.update(username=saved, login_skipped=True)     # D-pay / [PFM-branch]: saved credentials skip the login, SCA remains
        first = "bank" if bank is None else ("login" if not saved else widget.after_login_step(fields))
        flow, token = self.sb.flows.create(
            tenant, PROVIDER, kind, redirect_uri=body["redirect_uri"], state=body.get("state"), data=fields,
            ttl=self.widget_ttl, first_step=first, purpose=widget.PURPOSE,
            claims={"type": kind})   # finleap.md s.8: the widget token carries flow_id, type and exp
        return {"location": ctx.url_for("widget", token=token), "id": flow["id"]}

    def _preset_bank(self, tenant: str, kind: str, body: dict, preset: list[str], debtor_iban: str | None,
                     user_key: str | None, sync_accounts: list[str] | None) -> dict | None:
        """The bank the link identifies, so the widget skips bank selection (s.3), or None."""
        if sync_accounts:   # ongoing sync: the bank of the accounts' access
            account = self.sb.store.get(tenant, _ACCOUNTS, sync_accounts[0])
            access = self.sb.store.get(tenant, _ACCESSES, account["access_id"])
            return data.bank_by_id(access["provider"]["id"]) or data.BANKS[0]
        if kind == "ongoing-payment" and body.get("account_id"):
            account = self.sb.store.get(tenant, _ACCOUNTS, body["account_id"])
            if account is None or account["user_id"] != user_key:
                raise invalid("account_id", "Unknown account.")
            access = self.sb.store.get(tenant, _ACCESSES, account["access_id"])
            return data.bank_by_id(access["provider"]["id"]) or data.BANKS[0]
        if debtor_iban:     # D-pay: the debtor IBAN wins over provider_id
            return data.bank_of_iban(debtor_iban) or data.BANKS[0]
        if body.get("provider_id"):
            bank = data.bank_by_id(body["provider_id"])
            if bank is None:
                raise invalid("provider_id", "Unknown provider.")   # (inferred) s.4
            return bank
        if kind in ("income-report", "account-verification"):
            return data.BANKS[0] if preset else None     # finleap.md s.8, as before
        if len(preset) == 1:   # [AIS] comment: one accounts[] entry skips bank selection
            return data.bank_of_iban(preset[0]) or data.BANKS[0]
        return None

    # --- end users ------------------------------------------------------------------------------------------------
    def _ongoing_user_key(self, client: dict, user_id: str) -> str:
        return uuid4(random.Random(stable_seed(self.sb.seed.get(), client["tenant"], client["client_id"],
                                               "ongoing-user", user_id)))

    def _ongoing_user(self, client: dict, user_id: str, create: bool = False) -> dict | None:
        """The end user the client calls ``user_id`` (finleap-products.md s.13 decision 4: one user per client and
        id, shared by ongoing access, payments and risk reports); created on first use when ``create``."""
        key = self._ongoing_user_key(client, user_id)
        if create:
            return self.sb.store.update(client["tenant"], _USERS, key, lambda u: u or {
                "id": key, "external_id": user_id, "client_id": client["client_id"], "flows": [], "accesses": [],
                "saved_credentials": {}})
        found = self.sb.store.get(client["tenant"], _USERS, key)
        return found if found and found.get("accesses") else None   # a user exists once a flow connected a bank

    def flow_user(self, tenant: str, flow_id: str) -> dict | None:
        """The end user of a SUCCEEDED widget flow, for the data products (F2: risk reports):
        ``{"user_id", "external_user_id", "flow", "accounts", "report"}`` where ``accounts`` are the finX account
        ids the flow connected (risk flows: the report's accounts) and ``report`` the stored _REPORTS record
        (``{"accounts", "period", "name", "type"}``) or None. None for an unknown or unfinished flow. Stable API."""
        flow = self.sb.store.get(tenant, flows.collection(PROVIDER), flow_id)
        if flow is None or flow.get("status") != "SUCCEEDED" or not flow.get("user_id"):
            return None
        report = self.sb.store.get(tenant, _REPORTS, flow_id)
        return {"user_id": flow["user_id"], "external_user_id": flow.get("external_user_id"), "flow": flow,
                "accounts": list((report or {}).get("accounts") or flow.get("connected_accounts") or []),
                "report": report}

    def user_ledger(self, tenant: str, user_id: str, account_ids: list[str] | None = None) -> dict:
        """Everything /rest/* serves for end user ``user_id`` (F2: one source for reports and aggregations):
        ``{"accounts": [stored account records], "transactions": {account_id: [rendered finX transactions]}}``;
        ``account_ids`` narrows to those accounts. Account records carry ``balance_value`` (str), ``type``,
        ``iban``, ``owner``, ``ledger_id``, ``access_id``; transactions are exactly what /rest/transactions
        lists (amounts in euros, ``booked`` false = pending). Stable API."""
        user = self.sb.store.get(tenant, _USERS, user_id) or {"accesses": []}
        accounts = []
        for access_id in user["accesses"]:
            access = self.sb.store.get(tenant, _ACCESSES, access_id)
            for account_id in (access or {}).get("accounts", []):
                if account_ids is None or account_id in account_ids:
                    accounts.append(self.sb.store.get(tenant, _ACCOUNTS, account_id))
        return {"accounts": accounts,
                "transactions": {a["account_id"]: self._txns(tenant, a["account_id"]).list() for a in accounts}}

    def flow(self, tenant: str, flow_id: str) -> dict:
        return self.sb.flows.get(tenant, PROVIDER, flow_id)

    def save_flow(self, tenant: str, flow: dict) -> None:
        self.sb.flows.save(tenant, flow)

    # --- successful flow: user, access, accounts, transactions, report ------------------------------------------
    def complete_flow(self, tenant: str, flow: dict, account_refs: list[str]) -> str:
        """Materialise a successful flow and return the authorization code for the redirect.

        ``account_refs``: ledger account ids chosen on the accounts step (payments: the debtor's). One-time flows
        get a new anonymous user; ongoing flows add to the client's ``user_id`` user (finleap-products.md s.3)."""
        now = self.sb.clock.now(tenant)
        seed = self.sb.seed.get()
        kind = flow["type"]
        if flow.get("user_id"):
            user_id = flow["user_id"]
        else:
            user_id = uuid4(random.Random(stable_seed(seed, tenant, flow["id"], "user")))
        if kind == "ongoing-sync":
            account_ids = self._sync_in_flow(tenant, flow, user_id)
            access_id = None
        elif kind == "ongoing-payment" and flow.get("debtor_account"):
            account_ids = [flow["debtor_account"]]
            access_id = self.sb.store.get(tenant, _ACCOUNTS, flow["debtor_account"])["access_id"]
        else:
            access_id, account_ids = self._connect_accounts(tenant, flow, user_id, account_refs, now, seed)
        onetime = {"onetime": True, "connected_at": isoformat(now)} if kind not in ONGOING_KINDS else {}
        self.sb.store.update(tenant, _USERS, user_id, lambda u: {
            **(u or {"id": user_id, "saved_credentials": {}}), **onetime,
            "flows": sorted(set((u or {}).get("flows", []) + [flow["id"]])),
            "accesses": sorted(set((u or {}).get("accesses", []) + ([access_id] if access_id else []))),
            "saved_credentials": {**(u or {}).get("saved_credentials", {}), **(
                {flow["bank_id"]: flow["username"]} if flow.get("save_credentials") and flow.get("bank_id") else {})}})
        if kind in PAYMENT_KINDS:
            self._submit_payment(tenant, flow, account_ids[0], now)
        else:
            self.sb.store.put(tenant, _REPORTS, flow["id"], self._materialise_report(tenant, flow, account_ids))
        scopes = self._scopes(flow)
        client = self.sb.auth.client(flow["client_id"]) or self.sb.auth.default_client()
        # a credential: signed under the secret key, its jti drawn from it too (never computable from the seed)
        code = self.sb.signer.encode({"flow_id": flow["id"], "tenant": tenant,
                                      "jti": uuid4(self.sb.ids.secret_rng(tenant, "finleap.code")),
                                      "iat": int(now.timestamp()), "exp": expires_at(now, self.code_ttl)},
                                     "finleap.code")
        if self.legacy_codes(client):
            code = "O" + code  # python-figo rejects codes not starting with "O" (finleap.md s.3), per client
        self.sb.auth.issue(PROVIDER, client, code, self.code_ttl, kind="code", subject=user_id, scopes=scopes,
                           data={"flow_id": flow["id"], "redirect_uri": flow["redirect_uri"], "flows": [flow["id"]]})
        flow.update(user_id=user_id, access_id=access_id, connected_accounts=account_ids)
        self.save_flow(tenant, flow)   # core's Flows.finish sets the status and step
        return code

    def _connect_accounts(self, tenant: str, flow: dict, user_id: str, account_refs: list[str], now,
                          seed: int) -> tuple[str, list[str]]:
        """Store the access and the chosen accounts with their transactions. Ongoing flows reconnecting the same
        bank reuse the user's access there (ids derive from user + bank, so nothing is duplicated)."""
        ledger = self._ledger(seed, flow, now.date())
        key = self._ledger_key(flow)
        access_id = uuid4(random.Random(stable_seed(seed, tenant, key, "access")))
        offered = data.widget_accounts(ledger, depot=flow.get("bank_id") == data.DEMOBANK_ID)
        chosen = [a for a in offered if a.id in account_refs] or offered[:1]
        chosen = data.apply_preset_ibans(chosen, flow["preset_accounts"])
        bank = data.bank_by_id(flow.get("bank_id")) or data.BANKS[0]
        existing = self.sb.store.get(tenant, _ACCESSES, access_id)
        account_ids = []
        for ledger_account in chosen:
            account = data.render_account(ledger_account, access_id, key)
            account_ids.append(account["account_id"])
            if self.sb.store.get(tenant, _ACCOUNTS, account["account_id"]) is not None:
                continue   # already connected by an earlier flow of this user: keep its synced state
            txns = [data.render_transaction(t, account["account_id"], flow["id"]) for t in ledger_account.transactions]
            account.update(user_id=user_id, ledger_id=ledger_account.id, balance_value=str(ledger_account.balance),
                           credit_limit=str(ledger_account.credit_limit) if ledger_account.credit_limit else None,
                           last_booking=ledger_account.transactions[-1].booking_date.isoformat()
                           if ledger_account.transactions else None,
                           synced_at=isoformat(now), holdings=[
                               {"isin": h.isin, "name": h.name, "units": str(h.units), "price": str(h.price),
                                "average_price": str(h.average_price), "currency": h.currency}
                               for h in getattr(ledger_account, "holdings", []) or []] or None)
            self.sb.store.put(tenant, _ACCOUNTS, account["account_id"], account)
            store_txns = self._txns(tenant, account["account_id"])
            for t in txns:
                store_txns.put(t["transaction_id"], t)
        saved = bool(flow.get("save_credentials"))
        # finleap-products.md s.3 (inferred): auto_sync = secrets saved; the consent given now lasts
        # FINLEAP_CONSENT_DAYS; the connection itself is the access's first sync
        consent = isoformat(now + timedelta(days=self.consent_days))
        access = {"id": access_id, "user_id": user_id, "flow_id": flow["id"], "access_method_id": bank["id"],
                  "provider": {"id": bank["id"], "name": bank["name"], "bic": bank["bic"],
                               "bank_code": bank["bank_code"], "country": "DE"},
                  "save_secrets": saved, "auto_sync": saved, "created_at": isoformat(now),
                  "accounts": account_ids, "scenario": flow.get("username") or data.MOCK_USERNAME,
                  "current_sync": None, "months": flow["period"], "consent_expires_at": consent,
                  "last_sync_at": isoformat(now)}
        if existing is not None:   # multibanking: a later flow at the same bank adds its accounts to the access
            saved = bool(existing.get("save_secrets")) or saved   # and its SCA renews the consent
            access = {**existing, "accounts": list(dict.fromkeys(existing["accounts"] + account_ids)),
                      "save_secrets": saved, "auto_sync": saved, "consent_expires_at": consent}
        self.sb.store.put(tenant, _ACCESSES, access_id, access)
        self._mark_auto_sync(tenant, access)
        self._schedule_autosync(tenant, access)
        return access_id, account_ids

    def _mark_auto_sync(self, tenant: str, access: dict) -> None:
        """Each account of the access shows the access's ``auto_sync`` (finleap.md s.6 account field)."""
        for account_id in access["accounts"]:
            account = self.sb.store.get(tenant, _ACCOUNTS, account_id)
            if account is not None and account.get("auto_sync") != access["auto_sync"]:
                self.sb.store.put(tenant, _ACCOUNTS, account_id, {**account, "auto_sync": access["auto_sync"]})

    def _sync_in_flow(self, tenant: str, flow: dict, user_id: str) -> list[str]:
        """Ongoing sync (s.4, [PFM-branch]): one sync per access owning the flow's accounts, COMPLETED before the
        redirect (same machinery as create_sync: new bookings carry the sync id, notifications fire)."""
        access_ids = list(dict.fromkeys(self.sb.store.get(tenant, _ACCOUNTS, a)["access_id"]
                                        for a in flow["sync_accounts"]))
        syncs = []
        for access_id in access_ids:
            sync_id = self._instant_sync(tenant, access_id, user_id, SYNC_STATES, flow_id=flow["id"])
            renewed = isoformat(self.sb.clock.now(tenant) + timedelta(days=self.consent_days))   # a new SCA (s.3)

            def renew(a):
                saved = bool(a.get("save_secrets") or flow.get("save_credentials"))
                return {**a, "save_secrets": saved, "auto_sync": saved, "consent_expires_at": renewed}

            access = self.sb.store.update(tenant, _ACCESSES, access_id, renew)
            self._mark_auto_sync(tenant, access)
            self._schedule_autosync(tenant, access)
            syncs.append(sync_id)
        flow["sync_ids"] = syncs
        return list(flow["sync_accounts"])

    def _ledger_key(self, flow: dict) -> str:
        """Whose ledger a flow reads: the flow's own (one-time: an anonymous person per flow), or, for ongoing
        flows, the user's at that bank (the same person and accounts on every flow of that user)."""
        if flow["type"] in ONGOING_KINDS and flow.get("user_id"):
            return f"{flow['user_id']}:{flow.get('bank_id') or data.BANKS[0]['id']}"
        return flow.get("ledger_key") or flow["id"]

    def _ledger(self, seed: int, flow: dict, today: date) -> Ledger:
        owner = self._holder_name(flow)
        persona = data.DEMO_PERSONA if flow.get("bank_id") == data.DEMOBANK_ID else None
        ledger = generate_ledger(seed, self._ledger_key(flow), today, market="DE", months=max(flow["period"], 1) + 1,
                                 owner_name=owner, persona=persona)
        if (flow.get("username") or "").endswith("+risky"):   # finleap-products.md s.11: risk.py's persona
            ledger = risk.risky_ledger(ledger)
        return ledger

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

    def _materialise_report(self, tenant: str, flow: dict, account_ids: list[str]) -> dict:
        if flow["type"] == "account-verification":
            account = self.sb.store.get(tenant, _ACCOUNTS, account_ids[0])
            preset_iban = next((a for a in flow["preset_accounts"] if a), None)
            return reports.build_account_verification(flow["id"], flow["name"], preset_iban, account,
                                                      [account["owner"]])
        # income and risk reports are computed on read from these accounts (s.5 window; risk: finleap-products s.9)
        return {"accounts": account_ids, "period": flow["period"], "name": flow.get("name"), "type": flow["type"]}

    @staticmethod
    def _scopes(flow: dict) -> list[str]:
        if flow["type"] not in ("account-verification", *PAYMENT_KINDS):
            return list(FULL_SCOPE)   # income report, access products, sync, risk reports (s.3 table)
        # (inferred, s.3) account verification and payments grant raw data only with readout
        scopes = []
        if "ACCOUNTS" in flow["readout"]:
            scopes += ["accounts=ro", "balance=ro"]
        if "TRANSACTIONS" in flow["readout"]:
            scopes += ["transactions=ro"]
        return scopes + ["offline"]

    # --- payments (finleap-products.md s.8) ------------------------------------------------------------------------
    def _submit_payment(self, tenant: str, flow: dict, account_id: str, now) -> None:
        """The confirmed payment: its receipt (readable for FINLEAP_RECEIPT_TTL by its client only) and the debit
        on the debtor account: booked at once for SEPA Instant, pending (``booked: false``) until the next sync
        otherwise (inferred, s.8 side effect)."""
        p = flow["payment"]
        account = self.sb.store.get(tenant, _ACCOUNTS, account_id)
        value = Decimal(str(p["amount"]["value"])).quantize(Decimal("0.01"))
        kind = p.get("type") or "SEPA transfer"
        rng = random.Random(stable_seed(self.sb.seed.get(), tenant, flow["id"], "end_to_end_reference"))
        e2e = p.get("end_to_end_reference") or "".join(
            rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))   # like the D-rcpt example
        receipt = {"id": flow["id"], "debtor": {"iban": account["iban"]},
                   "creditor": {"iban": p["creditor"]["iban"].replace(" ", "").upper(), "name": p["creditor"]["name"]},
                   "amount": {"value": float(value), "currency": p["amount"].get("currency", "EUR")},
                   "purpose": p["purpose"]}
        if p.get("sepa_purpose_code"):
            receipt["sepa_purpose_code"] = p["sepa_purpose_code"]   # D-rcpt: only when given
        receipt.update(end_to_end_reference=e2e, submitted_at=isoformat(now), type=kind)
        if p.get("execution_date"):
            receipt["execution_date"] = p["execution_date"]   # (inferred) echoed when the link set one
        self.sb.store.put(tenant, _RECEIPTS, flow["id"], {
            "receipt": receipt, "client_id": flow["client_id"],
            "expires_at": isoformat(now + timedelta(seconds=self.receipt_ttl))})
        instant = kind == "SEPA Instant transfer" and not p.get("execution_date")
        day = p.get("execution_date") or now.date().isoformat()
        stamp = isoformat(now)
        txn = {"transaction_id": data.transaction_id(account_id, f"{data.figo_id('P', flow['id'])[1:8]}9999"),
               "account_id": account_id, "name": receipt["creditor"]["name"], "account_number": None,
               "bank_code": receipt["creditor"]["iban"][4:12] if receipt["creditor"]["iban"].startswith("DE") else None,
               "bank_name": None, "amount": -float(value), "currency": receipt["amount"]["currency"],
               "booking_date": day, "value_date": day, "purpose": p["purpose"], "type": "Transfer",
               "booking_text": "SEPA-UEBERWEISUNG", "booked": instant, "categories": [],
               "creation_timestamp": stamp, "modification_timestamp": stamp, "visited": False, "bic": None,
               "iban": receipt["creditor"]["iban"], "booking_key": None, "creditor_id": None,
               "mandate_reference": None, "sepa_purpose_code": p.get("sepa_purpose_code"),
               "sepa_remittance_info": p["purpose"], "text_key_addition": None, "end_to_end_reference": e2e,
               "customer_reference": None, "prima_nota_number": None, "additional_info": None, "sync_id": None}
        self._txns(tenant, account_id).put(txn["transaction_id"], txn)
        if instant:
            self.sb.store.update(tenant, _ACCOUNTS, account_id, lambda a: {
                **a, "balance_value": str(Decimal(a["balance_value"]) - value)})

    def get_payment_receipt(self, ctx, id: str) -> dict:
        """The receipt of a successful payment flow (D-rcpt): 404 code 1004 while the user is in the flow, after
        cancel or failure, for another client's id, and FINLEAP_RECEIPT_TTL (1 h) after success."""
        self.require_product(ctx, "payment")
        found = self.sb.store.get(ctx.tenant, _RECEIPTS, id)
        if found is None or found["client_id"] != ctx.client["client_id"] or \
                self.sb.clock.now(ctx.tenant) >= parse_instant(found["expires_at"]):
            raise NotFound("Payment receipt not found.")
        return found["receipt"]

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
            user = self.sb.store.get(ctx.tenant, _USERS, record["subject"])
            if user is not None and self._retired(ctx.tenant, user):   # finleap-products.md s.3 (inferred)
                raise InvalidGrant("The data of this one-time flow was deleted after its retention time.")
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
        since, until = default_since, default_until
        # the query schema's YYYY-MM pattern lets year 0 through ("0000-01"); date() refuses it -> 400, not 500
        for field in ("since", "until"):
            if args.get(field):
                try:
                    first = date.fromisoformat(args[field] + "-01")
                except ValueError:
                    raise invalid(field, "Not a valid month (YYYY-MM).") from None
                if field == "since":
                    since = first
                else:
                    until = _month_end(first)
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
        """Transactions with the figo query filters (finleap.md s.6), newest first unless sort=ASC. ``filter``,
        ``since_type`` and ``include_pending`` really filter; ``cents`` gives integer cents."""
        tok, args = ctx.token, ctx.query
        if account_id:
            accounts = [self._account(tok, account_id)]
        else:
            accounts = self._user_accounts(tok, args.get("accounts"))
        items = [t for a in accounts for t in self._txns(tok["tenant"], a["account_id"]).list()]
        # since_type (python-figo): which date since/until compare: booking (default), creation or modification
        field = {"booked": "booking_date", "created": "creation_timestamp",
                 "modified": "modification_timestamp"}[args.get("since_type") or "booked"]
        since, until = self._bound(items, args.get("since"), field), self._bound(items, args.get("until"), field)
        types = set(args["types"].split(",")) if args.get("types") else None
        categories = {int(c) for c in args["categories"].split(",") if c} if args.get("categories") else None
        wanted = _figo_filter(args.get("filter"))
        # include_pending (python-figo default False): pending bookings (booked false) only when asked for
        pending = _flag(args.get("include_pending"))
        selected = [t for t in items
                    if (since is None or t[field][:10] >= since) and (until is None or t[field][:10] <= until)
                    and (types is None or t["type"] in types) and (pending or t["booked"])
                    and (not args.get("sync_id") or t.get("sync_id") == args["sync_id"])
                    and (categories is None or any(c["id"] in categories for c in t["categories"]))
                    and _matches_filter(t, wanted)]
        selected.sort(key=lambda t: (t["booking_date"], t["transaction_id"]), reverse=args.get("sort", "DESC") != "ASC")
        page = paging.offset_slice(selected, paging.parse_offset_query(args))   # finleap.md s.6: count/offset
        if _flag(args.get("cents")):
            page = [_in_cents(t) for t in page]
        result: dict = {"transactions": page}
        if _flag(args.get("include_statistics")):
            credits = sum((Decimal(str(t["amount"])) for t in selected if t["amount"] > 0), Decimal(0))
            debits = sum((Decimal(str(t["amount"])) for t in selected if t["amount"] < 0), Decimal(0))
            result["statistics"] = {"count": len(selected), "credits": float(credits), "debits": float(debits),
                                    "balance": float(credits + debits)}
        return result

    @staticmethod
    def _bound(items: list[dict], value: str | None, field: str = "booking_date") -> str | None:
        """since/until: an ISO date, or a transaction id standing for its date (s.6) of ``field``."""
        if not value:
            return None
        for t in items:
            if t["transaction_id"] == value:
                return t[field][:10]
        try:
            return date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            raise invalid("since", "Not a valid date or transaction id.") from None

    def get_transaction(self, ctx, transaction_id: str, account_id: str | None = None) -> dict:
        """One transaction; ``cents=true`` gives integer cents as on the list (python-figo get_transaction). The
        catalogue documents no 400 here, so other ``cents`` values are ignored (no query schema)."""
        tok = ctx.token
        accounts = [self._account(tok, account_id)] if account_id else self._user_accounts(tok)
        for a in accounts:
            found = self._txns(tok["tenant"], a["account_id"]).get(transaction_id)
            if found is not None:
                return _in_cents(found) if _flag(ctx.query.get("cents")) else found
        raise NotFound("Transaction not found.")

    # --- notifications -------------------------------------------------------------------------------------------
    def _check_observe_key(self, tok: dict, key: str) -> None:
        match = next((m for m in (p.match(key) for p in _OBSERVE_KEYS) if m), None)
        if match is None:
            raise invalid("observe_key", "Not a valid observe key.")
        if "account" in match.groupdict() and match.group("account"):
            try:
                self._account(tok, match.group("account"))
            except NotFound:
                # a bad field value, not a missing resource: POST documents no 404, and on PUT a 404 would read as
                # "this notification does not exist" (finleap.md s.6: invalid key -> 400 code 1000)
                raise invalid("observe_key", "Unknown account.") from None
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

    # --- lifecycle: one-time retention, consent, autosync (finleap-products.md s.3, inferred) ----------------------
    def before_operation(self, ctx) -> None:
        """Every /rest/* call of an end user: one-time data past FINLEAP_ONETIME_RETENTION is deleted (404, code
        1004); every GET first runs the due autosyncs of the user's accesses. Lazy, so it works across workers."""
        tok = ctx.token
        if tok is None or not ctx.op.path.startswith("/rest/"):
            return
        tenant = tok["tenant"]
        user = self.sb.store.get(tenant, _USERS, tok["subject"])
        if user is None:
            return
        if self._retired(tenant, user):
            raise NotFound("The data of this one-time flow was deleted after its retention time.")
        if ctx.op.method == "GET":
            self._autosync(tenant, user)

    def _retired(self, tenant: str, user: dict) -> bool:
        """True once a one-time user's data is past its retention; the data is then deleted (a tombstone keeps the
        user so later calls and refreshes are refused alike)."""
        if user.get("deleted"):
            return True
        if not self.onetime_retention or not user.get("onetime"):
            return False
        end = parse_instant(user["connected_at"]) + timedelta(seconds=self.onetime_retention)
        if self.sb.clock.now(tenant) < end:
            return False
        for access_id in user.get("accesses", []):
            access = self.sb.store.get(tenant, _ACCESSES, access_id)
            for account_id in (access or {}).get("accounts", []):
                self._txns(tenant, account_id).clear()
                self.sb.store.delete(tenant, _ACCOUNTS, account_id)
            self.sb.store.delete(tenant, _ACCESSES, access_id)
        for flow_id in user.get("flows", []):
            self.sb.store.delete(tenant, _REPORTS, flow_id)
        self.sb.store.put(tenant, _USERS, user["id"], {"id": user["id"], "onetime": True, "deleted": True,
                                                        "connected_at": user["connected_at"], "flows": user["flows"],
                                                        "accesses": [], "saved_credentials": {}})
        return True

    def _consent_expired(self, access: dict, now) -> bool:
        """The access's consent (FINLEAP_CONSENT_DAYS from its last SCA) is over: autosync stops, syncs fail."""
        until = access.get("consent_expires_at")
        end = parse_instant(until) if until else \
            parse_instant(access["created_at"]) + timedelta(days=self.consent_days)
        return now >= end

    def _autosync_due(self, access: dict | None, now) -> bool:
        """An access syncs by itself now: credentials saved, no SCA scenario (nobody answers it), consent alive,
        its last sync FINLEAP_AUTOSYNC_HOURS old (finleap-products.md s.3, inferred)."""
        return bool(self.autosync_hours > 0 and access and access.get("auto_sync")
                    and not access["scenario"].endswith("+sca") and not self._consent_expired(access, now)
                    and now >= parse_instant(access.get("last_sync_at") or access["created_at"])
                    + timedelta(hours=self.autosync_hours))

    def _autosync(self, tenant: str, user: dict) -> None:
        """The due autosyncs of the user's accesses, before a /rest read answers (the ticker may not have run yet)."""
        if self.autosync_hours <= 0:
            return
        now = self.sb.clock.now(tenant)
        for access_id in user.get("accesses", []):
            self._autosync_access(tenant, self.sb.store.get(tenant, _ACCESSES, access_id), now)

    def _autosync_access(self, tenant: str, access: dict | None, now) -> bool:
        """Run an instant sync (create_sync's path: new bookings carry its id, notifications fire) if the access is
        due and no sync of it runs; one request or ticker claims each due sync. True when it ran."""
        if not self._autosync_due(access, now):
            return False
        running = access.get("current_sync") and self.sb.jobs.peek(tenant, access["current_sync"])
        if running and not self.sb.jobs.is_final(running):
            return False
        claimed = []

        def claim(a):
            if not self._autosync_due(a, now):
                return a
            claimed.append(True)
            return {**a, "last_sync_at": isoformat(now)}

        self.sb.store.update(tenant, _ACCESSES, access["id"], claim)
        if not claimed:
            return False   # another request or worker claimed it first
        states = SYNC_FAIL_STATES if access["scenario"].endswith("+syncfail") else SYNC_STATES
        self._instant_sync(tenant, access["id"], access["user_id"], states, autosync=True)
        return True

    def _instant_sync(self, tenant: str, access_id: str, owner: str, states: list[str], **extra) -> str:
        """Run a sync of an access to its end now, recorded as the access's current sync (create_sync's machinery:
        the hooks add the new bookings with its id and notify); returns its id."""
        sync_id = self.sb.ids.uuid4(tenant, "finleap.sync")
        self.sb.jobs.create(tenant, SYNC_KIND, states, job_id=sync_id, owner=owner,
                            data={"access_id": access_id, "disable_notifications": False, "redirect_uri": None,
                                  "state": None, "sca_location": None, **extra})
        self.sb.store.update(tenant, _ACCESSES, access_id, lambda a: {**a, "current_sync": sync_id} if a else a)
        self.sb.jobs.complete(tenant, sync_id)
        return sync_id

    def _schedule_autosync(self, tenant: str, access: dict) -> None:
        """Index an access with saved credentials for the ticker (GLOBAL ``finleap.autosync``: tenant|access id), so
        it syncs and notifies on the sandbox clock even when nobody reads; the ticker drops what no longer qualifies."""
        if access.get("auto_sync") and self.autosync_hours > 0:
            self.sb.store.put(GLOBAL, _AUTOSYNC, f"{tenant}|{access['id']}", {})

    def autosync_tick(self) -> int:
        """Ticker hook: every indexed access that is due syncs now; entries of deleted, non-saving or expired
        accesses are dropped. Returns how many synced."""
        done = 0
        for key, _ in self.sb.store.list(GLOBAL, _AUTOSYNC):
            tenant, access_id = key.rsplit("|", 1)
            access = self.sb.store.get(tenant, _ACCESSES, access_id)
            now = self.sb.clock.now(tenant)
            if access is None or not access.get("auto_sync") or access["scenario"].endswith("+sca") or \
                    self._consent_expired(access, now):
                self.sb.store.delete(GLOBAL, _AUTOSYNC, key)   # an ongoing sync flow's renewal indexes it again
                continue
            done += self._autosync_access(tenant, access, now)
        return done

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
        expired = self._consent_expired(access, self.sb.clock.now(tenant))
        sca = access["scenario"].endswith("+sca") and not expired
        states = SYNC_SCA_STATES if sca else (SYNC_FAIL_STATES if expired or access["scenario"].endswith("+syncfail")
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
                                        "sca_location": sca_location,
                                        "failure": CONSENT_EXPIRED if expired else None})
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
            failure = job["error"] or job["data"].get("failure") or {
                "message": "The bank rejected the synchronization (sandbox scenario).", "code": 1000,
                "description": "Bank error"}
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
        if access is not None and state in ("COMPLETED", "FAILED"):   # autosync counts from the last sync's end
            access = self.sb.store.update(tenant, _ACCESSES, access["id"], lambda a: a and {
                **a, "last_sync_at": job["step_since"]}) or access
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
            store_txns = self._txns(tenant, account_id)
            # pending payments (finleap-products.md s.8, standard SEPA) are booked by the first sync on/after their date
            due = [t for t in store_txns.list() if not t["booked"] and t["booking_date"] <= today.isoformat()]
            if not fresh and not due:
                continue
            stamp = isoformat(self.sb.clock.now(tenant))
            rendered = []
            for n, t in enumerate(fresh):
                item = data.render_transaction(t, account_id, access["flow_id"], sync_id)
                # a regenerated ledger renumbers its bookings: sync additions get the sync's own serials
                item["transaction_id"] = data.transaction_id(account_id, f"{data.figo_id('S', sync_id)[1:8]}{n:04d}")
                # fetched now: since_type=created|modified tells them from the history (finleap.md s.6)
                item["creation_timestamp"] = item["modification_timestamp"] = stamp
                rendered.append(item)
            for t in due:
                rendered.append({**t, "booked": True, "sync_id": sync_id, "modification_timestamp": stamp})
            balance = Decimal(account["balance_value"]) + sum((t.amount for t in fresh), Decimal(0)) + sum(
                (Decimal(str(t["amount"])) for t in due), Decimal(0))
            for item in rendered:
                store_txns.put(item["transaction_id"], item)
            newest = fresh[-1].booking_date.isoformat() if fresh else last
            self.sb.store.update(tenant, _ACCOUNTS, account_id, lambda a: {
                **a, "balance_value": str(balance), "last_booking": newest if fresh else a.get("last_booking"),
                "synced_at": stamp})
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
        """Control API: send notifications now (all of the tenant, or of ``user_id``), each with the data its observe
        key watches (finleap.md s.7): a balance key gets its account's balance, a transactions key the newest
        transactions (of its account, or of all the user's accounts); ``data`` in the body overrides."""
        deliveries = []
        for n in self.sb.webhooks.subscriptions(tenant, PROVIDER, owner=body.get("user_id") or None):
            if "data" in body:
                deliveries.append(self._send(tenant, n, body["data"]))
                continue
            key = n["events"][0]
            balance = _OBSERVE_KEYS[2].match(key)
            if balance:
                account = self.sb.store.get(tenant, _ACCOUNTS, balance.group("account"))
                deliveries.append(self._send(tenant, n, self._balance(account) if account else None))
                continue
            one = _OBSERVE_KEYS[1].match(key)
            user = self.sb.store.get(tenant, _USERS, n.get("owner") or "") or {"accesses": []}
            accounts = [one.group("account")] if one else [
                account_id for access_id in user["accesses"]
                for account_id in self.sb.store.get(tenant, _ACCESSES, access_id)["accounts"]]
            sample = [t for account_id in accounts
                      for t in sorted(self._txns(tenant, account_id).list(),
                                      key=lambda t: (t["booking_date"], t["transaction_id"]))[-3:]]
            deliveries.append(self._send(tenant, n, sample))
        return deliveries


def check_redirect_uri_field(uri: str, field: str) -> None:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationFailed([{"pointer": f"/{field}", "field": field, "message": "uri", "validator": "format"}])


def _flag(value: str | None) -> bool:
    """Query booleans: python-figo sends True/False, other clients true/false."""
    return (value or "").lower() == "true"


def _in_cents(t: dict) -> dict:
    """figo ``cents``: the amount as integer cents."""
    return {**t, "amount": int((Decimal(str(t["amount"])) * 100).to_integral_value())}


FILTER_KEYS = ("date", "person", "purpose", "amount")


def _figo_filter(raw: str | None) -> dict:
    """The figo ``filter`` query parameter: a JSON object with ``date``, ``person``, ``purpose``, ``amount``
    (finleap.md s.6). Anything else is a 400 code 1000 naming ``filter``."""
    if not raw:
        return {}
    import json
    try:
        value = json.loads(raw)
    except ValueError:
        raise invalid("filter", "Not a valid JSON object.") from None
    if not isinstance(value, dict) or set(value) - set(FILTER_KEYS):
        raise invalid("filter", f"Must be an object with the keys {', '.join(FILTER_KEYS)}.")
    if "date" in value:
        try:
            value["date"] = date.fromisoformat(str(value["date"])[:10]).isoformat()
        except ValueError:
            raise invalid("filter", "date: Not a valid date.") from None
    if "amount" in value:
        try:
            value["amount"] = abs(Decimal(str(value["amount"])))
            if not value["amount"].is_finite():
                raise ArithmeticError
        except ArithmeticError:
            raise invalid("filter", "amount: Not a valid number.") from None
    for key in ("person", "purpose"):
        if key in value and not isinstance(value[key], str):
            raise invalid("filter", f"{key}: Not a valid string.")
    return value


def _matches_filter(t: dict, wanted: dict) -> bool:
    """(inferred) figo filter semantics: ``date`` = booking date, ``person`` / ``purpose`` = case-insensitive
    substring of the counterparty name / purpose, ``amount`` = the absolute amount in euros."""
    if "date" in wanted and t["booking_date"] != wanted["date"]:
        return False
    if "person" in wanted and wanted["person"].casefold() not in (t.get("name") or "").casefold():
        return False
    if "purpose" in wanted and wanted["purpose"].casefold() not in (t.get("purpose") or "").casefold():
        return False
    if "amount" in wanted and abs(Decimal(str(t["amount"]))) != wanted["amount"]:
        return False
    return True


# finleap-products.md s.2: link bodies are read like marshmallow: integers may come as "12", booleans as "true"
INTEGER_FIELDS = ("reporting_period", "sync_period")
BOOLEAN_FIELDS = ("allow_multi_selection", "save_secrets")
_TRUE, _FALSE = {"true"}, {"false"}


def coerce_body(body: dict) -> dict:
    """The link body with string-typed integers and booleans converted (the schemas admit them by pattern);
    anything unconvertible is a 400 code 1000 with marshmallow's message."""
    out = dict(body)
    for key in INTEGER_FIELDS:
        if isinstance(out.get(key), str):
            try:
                out[key] = int(out[key].strip())
            except ValueError:
                raise invalid(key, "Not a valid integer.") from None
    for key in BOOLEAN_FIELDS:
        if isinstance(out.get(key), str):
            text = out[key].strip().lower()
            if text not in _TRUE | _FALSE:
                raise invalid(key, "Not a valid boolean.")
            out[key] = text in _TRUE
    return out


def _month_end(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _months_between(a: date, b: date) -> int:
    return max(0, (b.year - a.year) * 12 + b.month - a.month)
