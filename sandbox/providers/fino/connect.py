"""finoOS connect area (fino.md sections 9 "Banking UI sessions", "Bank logins, sync, disconnect", "Money transfer",
12 and 14): the Banking UI (``/fino/uba/auth``, connect and management sections), the test account, bank logins,
syncs on the sandbox clock, disconnects, and money transfers with their SCA page (``/fino/uba/payment``).

Storage: bank logins in the shared ``model.bank_logins`` (internal fields start with ``_``), their accounts and
bookings through the banking area's ``materialise_bank_accounts`` (a later ledger keeps ids and adds new bookings),
money transfers in ``fino.money_transfers`` (scoped by user). Banking UI sessions are core flows: the connect
``sessionId`` is the flow's signed, expiring page token; a payment session id is 24 hex and its page carries the
token beside it. Every scenario of section 14 lives in ``SCENARIO_LOGINS``.
"""
from __future__ import annotations

import inspect
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from flask import make_response, render_template

from ...core.clock import isoformat, parse_instant
from ...core.dispatch import Reply
from ...core.errors import BadRequest, Conflict, NotFound, TooManyRequests, ValidationFailed
from ...core.flows import FlowDefinition, Next
from ...ledger.generator import market_banks
from ...ledger.iban import is_valid_iban
from . import german, model
from .banking import BERLIN, ledger_accounts
from .errors import FinoError

PROVIDER = model.PROVIDER
CORRELATION_HEADER = "Finoos-Correlation-Id"
UBA_PURPOSE, PAYMENT_PURPOSE = "fino.uba", "fino.payment"      # signing purposes: a UBA token is no payment token
CONNECT, MANAGEMENT, PAYMENT = "connect", "management", "payment"   # flow kinds
TRANSFERS = f"{PROVIDER}.money_transfers"
SESSION_TTL = 3600                      # Banking UI / payment page token lifetime, sandbox clock (inferred)
CONSENT_DAYS = 180                      # section 9: consent lifetime (inferred, PSD2 practice)
NON_RECURRING_TTL = 24 * 3600           # section 9: non-recurring users are deleted after 24 h
SYNC_LIMIT = 4                          # section 9: PSD2 allows 4 unattended accesses per day -> the 5th is 429
BACKGROUND_SYNC = 24 * 3600             # recurring logins are synchronised daily in the background (inferred)
PIN, TAN = "12345", "123456"            # sandbox credentials of every bank in the Banking UI
SCA_METHODS = ("pushTAN", "SMS-TAN", "chipTAN")
SCA_EXEMPT_EUR = Decimal("30")          # PSD2 RTS art. 16: transfers up to 30 EUR in total need no TAN (sandbox rule)
MAX_EXECUTION_DAYS = 365                # executionDate at most a year ahead (sandbox rule)
TEST_USER = "finocontext1"
TEST_ACCOUNT = {"iban": "DE67100200004711951500", "accountNumber": "4739183", "owner": "Max Mustermann"}
ACCOUNT_TYPES = german.ACCOUNT_TYPES

# The one scenario table (fino.md section 14): Banking UI user name or test-account userName -> effect.
SCENARIO_LOGINS = {
    "finocontext1": {"effect": None, "label": "Max Mustermann",
                     "text": "mocked fino bank account, no SCA on the test account; syncs answer 204"},
    "finocontext-sca": {"effect": "sca", "label": "SCA erforderlich",
                        "text": "connects; later trigger_sync answers 451 with a new Banking UI session until the "
                                "SCA is redone there"},
    "finocontext-locked": {"effect": "locked", "label": "Konto gesperrt",
                           "text": "connects; trigger_sync answers 423 (access blocked by the bank)"},
    "finocontext-credentials": {"effect": "credentials", "label": "Zugangsdaten fehlen",
                                "text": "connects; trigger_sync answers 422 (credentials required)"},
    "finocontext-deprecated": {"effect": "deprecated", "label": "Schnittstelle veraltet",
                               "text": "connects; trigger_sync answers 409 (deprecated interface)"},
    "finocontext-error": {"effect": "error", "label": "Bankfehler",
                          "text": "the Banking UI ends at errorURL; the test account answers 400"},
}
ERROR_REASONS = ("bank_error", "wrong_credentials", "wrong_tan", "no_matching_accounts", "user_deleted")

SCENARIOS: list[dict] = [
    *({"provider": PROVIDER, "value": name, "where": "Banking UI user name (PIN 12345) or connect_test_account "
       "userName", "effect": s["text"]} for name, s in SCENARIO_LOGINS.items()),
    {"provider": PROVIDER, "value": "fino bank (bankCode 10020000)", "where": "Banking UI, demo=true, test account",
     "effect": "the provider's test bank (BIC FINOBANK01); finocontext1 there is DE67100200004711951500, Max Mustermann"},
    {"provider": PROVIDER, "value": "demo=true", "where": "create_connect_session / create_management_session query",
     "effect": "fino bank preselected, a demo login chosen from a list, no PIN and no SCA"},
    {"provider": PROVIDER, "value": f"PIN {PIN}, TAN {TAN}", "where": "Banking UI and payment SCA page",
     "effect": "the sandbox credentials; three wrong PINs or TANs end the flow at errorURL / fallbackUrl"},
    {"provider": PROVIDER, "value": "5th trigger_sync of a bank login in one UTC day", "where": "trigger_sync",
     "effect": "429 tooManyRequests"},
    {"provider": PROVIDER, "value": f"{CONSENT_DAYS} days after the consent", "where": "trigger_sync",
     "effect": "451 with a new Banking UI session (renew the SCA there)"},
    {"provider": PROVIDER, "value": "money transfer total <= 30 EUR", "where": "create_money_transfer",
     "effect": "200 without TAN; above: 451 with the payment SCA page (TAN 123456)"},
]

_USER_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")   # userID: UUID (s.13)


def banks() -> list[dict]:
    """The banks the Banking UI offers: fino bank first, then the German market's banks (valid BLZ and BIC)."""
    out = [dict(german.FINO_BANK)]
    for b in market_banks("DE"):
        if b["code"] != german.FINO_BANK["code"]:
            out.append({"name": b["name"], "code": b["code"], "bic": german.bic_for_blz(b["code"])})
    return out


def bank_by_code(code: str | None) -> dict | None:
    return next((b for b in banks() if b["code"] == code), None)


def search_banks(query: str) -> list[dict]:
    q = (query or "").strip().casefold()
    if not q:
        return banks()
    return [b for b in banks() if q in b["name"].casefold() or q in b["code"] or q in b["bic"].casefold()]


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([{"pointer": f"/{field}", "field": field, "message": message, "validator": "custom"}])


def _flag(value) -> bool:
    return str(value).lower() == "true"


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class _Scope:
    """What the model and banking helpers need outside a request (pages, control API): sandbox, tenant, service,
    now()."""

    def __init__(self, sandbox, tenant: str, service):
        self.sandbox, self.tenant, self.service = sandbox, tenant, service
        self.user_scopes = None

    def now(self) -> datetime:
        return self.sandbox.clock.now(self.tenant)


class Connect:
    def setup(self) -> None:
        """The Banking UI (connect and management sections share one definition) and the payment SCA page."""
        uba = BankingUiFlow(self.sb.flows, self)
        self.sb.flows.register(PROVIDER, CONNECT, uba)
        self.sb.flows.register(PROVIDER, MANAGEMENT, uba)
        self.sb.flows.register(PROVIDER, PAYMENT, PaymentFlow(self.sb.flows, self))

    def _area(self, tenant: str) -> _Scope:
        return _Scope(self.sb, tenant, self)

    def _hex24(self, tenant: str, kind: str) -> str:
        """An ObjectId-like id (24 lowercase hex; section 13), deterministic for the seed and call order."""
        return f"{self.sb.ids.rng(tenant, kind).getrandbits(96):024x}"

    def forget_user(self, tenant: str, user_id: str) -> None:
        """Platform hook on user deletion: the user's money transfers (logins and accounts go with the model)."""
        self.sb.collection(tenant, TRANSFERS, scope=user_id, id_field="paymentId").clear()

    # ================================================================================================================
    # Banking UI sessions
    # ================================================================================================================
    def _session_user(self, ctx, user_id: str) -> dict:
        """The user, or (connect guide) a new person user with that id and automaticAnalysis active."""
        try:
            return self.live_user(ctx, user_id)
        except NotFound:
            pass
        if not _USER_ID_RE.match(user_id):
            raise FinoError("user-id: an unknown user is created by the connect session, so its id must be a "
                            "lowercase UUID", type="invalidInput", status=400)
        created = self.new_user(ctx.tenant, type="person", automaticAnalysis="active")
        users = self._users(ctx.tenant)   # new_user draws its own id: move the document to the id the client chose
        users.delete(created["userID"])
        user = users.create({**created, "userID": user_id}, id=user_id)
        ctx.user_scopes = set(user.get("userScopes") or ())
        return user

    def user_identifier(self, tenant: str, user_id: str) -> str:
        return german.hex_id("uba-user", tenant, user_id, length=32)

    def _new_session(self, tenant: str, user_id: str, kind: str, *, body: dict, query: dict, first_step: str,
                     repair_login: str | None = None, add: bool = False) -> tuple[dict, str]:
        demo = _flag(query.get("demo"))
        bank_code = german.FINO_BANK["code"] if demo else query.get("bankCode")
        if bank_code and bank_by_code(bank_code) is None:
            raise _invalid("bankCode", f"unknown bankCode {bank_code}; the Banking UI offers "
                                       f"{', '.join(b['code'] for b in banks())}")
        data = {"user_id": user_id, "section": kind, "demo": demo, "bank_code": bank_code,
                "multiple": _flag(query.get("multiple")), "add_bank_login": add,
                "account_types": list(dict.fromkeys(body.get("accountTypes") or [])),
                "recurring": bool(body.get("recurring", False)), "store_secrets": bool(body.get("storeSecrets", True)),
                "persist": bool(body.get("persistNonRecurring", False)), "repair_login": repair_login,
                "correlation_id": self.sb.ids.uuid4(tenant, "correlation"), "search": "", "user_name": None,
                "pending_login": None, "connected": [], "sca_method": None}
        redirects = {o: body.get(k) for o, k in (("success", "redirectURL"), ("error", "errorURL"),
                                                 ("cancel", "exitURL")) if body.get(k)}
        return self.sb.flows.create(tenant, PROVIDER, kind, redirect_uri=None, redirects=redirects, data=data,
                                    ttl=SESSION_TTL, first_step=first_step, purpose=UBA_PURPOSE,
                                    claims={"section": kind})

    def _session_reply(self, ctx, flow: dict, token: str, status: int | None = None) -> Reply:
        extra = {"multiple": "true"} if flow["multiple"] else {}
        body = {"sessionId": token, "userIdentifier": self.user_identifier(ctx.tenant, flow["user_id"]),
                "redirectURL": ctx.url_for("banking_ui_connect", sessionId=token, **extra)}
        return Reply(body, status=status, headers={CORRELATION_HEADER: flow["correlation_id"]})

    def create_connect_session(self, ctx, user_id: str) -> Reply:
        user = self._session_user(ctx, user_id)
        first = "credentials" if _flag(ctx.query.get("demo")) or ctx.query.get("bankCode") else "bank"
        flow, token = self._new_session(ctx.tenant, user["userID"], CONNECT, body=ctx.body, query=ctx.query,
                                        first_step=first, add=True)
        return self._session_reply(ctx, flow, token)

    def create_management_session(self, ctx, user_id: str) -> Reply:
        user = self._session_user(ctx, user_id)
        body, query = ctx.body or {}, ctx.query
        repair = body.get("bankLoginId")
        if repair:
            model.bank_logins(ctx, user["userID"]).load(repair, FinoError("Bank login not found", type="notFound",
                                                                         status=404))
            first = "renew"
        elif _flag(query.get("addBankLogin")):
            first = "credentials" if _flag(query.get("demo")) or query.get("bankCode") else "bank"
        else:
            first = "overview"
        flow, token = self._new_session(ctx.tenant, user["userID"], MANAGEMENT, body=body, query=query,
                                        first_step=first, repair_login=repair, add=_flag(query.get("addBankLogin")))
        return self._session_reply(ctx, flow, token)

    # --- bank logins ------------------------------------------------------------------------------------------------
    def _logins(self, scope, user_id: str) -> list[dict]:
        return model.bank_logins(scope, user_id).list(sort_key=lambda b: (b["createdAt"], b.get("_seq", 0),
                                                                          b["bankLoginId"]))

    @staticmethod
    def _effect(login: dict) -> str | None:
        return (SCENARIO_LOGINS.get(login.get("userName")) or {}).get("effect")

    @staticmethod
    def consent_lapsed(login: dict, now: datetime) -> bool:
        return now >= parse_instant(login["consentExpiresAt"])

    def _active(self, login: dict, now: datetime) -> bool:
        """Section 9 ``active``: still synchronised automatically in the background."""
        return bool(login.get("recurring") and login.get("storeSecrets") and not login.get("scaRequired")
                    and self._effect(login) not in ("locked", "credentials", "deprecated")
                    and not self.consent_lapsed(login, now))

    def _login_spec(self, user_id: str, bank: dict, user_name: str) -> tuple[str, dict | None]:
        """(ledger key, account overrides) of a login: fino bank logins are the provider's mocked accounts (the
        same bookings for everyone; finocontext1's Girokonto is DE67100200004711951500), other banks a ledger of
        their own per user, bank and login name."""
        if bank["code"] == german.FINO_BANK["code"]:
            return f"fino-test-account|{user_name}", (dict(TEST_ACCOUNT) if user_name == TEST_USER else None)
        return f"{user_id}|{bank['code']}|{user_name}", None

    def _new_login(self, scope, user_id: str, login_id: str, bank: dict, user_name: str, *, source: str,
                   recurring: bool, store_secrets: bool, account_types: list, demo: bool = False) -> dict:
        now = scope.now()
        key, overrides = self._login_spec(user_id, bank, user_name)
        return {"bankLoginId": login_id, "bankCode": bank["code"], "bankName": bank["name"], "bic": bank["bic"],
                "userName": user_name, "source": source, "demo": demo, "recurring": recurring,
                "storeSecrets": store_secrets, "accountTypes": list(account_types), "accountIds": None,
                "createdAt": isoformat(now), "consentGrantedAt": isoformat(now),
                "consentExpiresAt": isoformat(now + timedelta(days=CONSENT_DAYS)),
                "lastSynchronization": _epoch(now), "scaRequired": False,
                "_ledgerKey": key, "_overrides": overrides,
                "_seq": self.sb.store.incr(scope.tenant, f"{PROVIDER}.bank_login_seq", user_id)}

    def candidates(self, scope, user_id: str, login: dict) -> list[dict]:
        """The accounts a login offers (stored form, not yet stored), filtered by its accountTypes."""
        user = model.load_user(scope, user_id)
        ledger = self.bank_ledger(scope, login["_ledgerKey"], user.get("type", "person"), 13)
        bank = {"name": login["bankName"], "code": login["bankCode"], "bic": login["bic"]}
        docs = ledger_accounts(scope.tenant, user_id, login["bankLoginId"], ledger, self.sb.seed.get(), bank=bank,
                               overrides=login.get("_overrides"))
        wanted = set(login.get("accountTypes") or ()) or None
        return [d for d, _ in docs if wanted is None or d["type"] in wanted]

    def _materialise(self, scope, user_id: str, login: dict) -> list[dict]:
        """Store (or refresh, as a sync does) the login's chosen accounts from its ledger as of now, then re-apply
        the login's executed money transfers to the balances."""
        bank = {"name": login["bankName"], "code": login["bankCode"], "bic": login["bic"]}
        stored = self.materialise_bank_accounts(scope, user_id, login["bankLoginId"], login["_ledgerKey"],
                                                login.get("accountTypes") or None, bank=bank,
                                                overrides=login.get("_overrides"), months=13)
        keep = set(login["accountIds"]) if login.get("accountIds") is not None else None
        accounts = model.accounts(scope, user_id)
        out = []
        for acc in stored:
            if keep is not None and acc["accountId"] not in keep:
                accounts.delete(acc["accountId"])
                model.transactions(scope, user_id, acc["accountId"]).clear()
            else:
                out.append(acc)
        for transfer in self._transfers(scope.tenant, user_id).iter(
                lambda t: t["bankLoginId"] == login["bankLoginId"] and t["status"] == "EXECUTED"):
            self._adjust_balance(scope, user_id, transfer["accountId"], transfer["_total"])
        return out

    def _auto_analysis(self, scope, user_id: str, trigger: str, correlation_id: str | None = None) -> dict | None:
        """Start an analysis run for ``automaticAnalysis: active`` users (section 6 pattern A), with the connect
        session's correlation id when given (the id its response header announced)."""
        if correlation_id and "correlation_id" in inspect.signature(self.start_analysis).parameters:
            return self.start_analysis(scope, user_id, trigger=trigger, only_if_active=True,
                                       correlation_id=correlation_id)
        if correlation_id:
            # the platform's start_analysis takes no correlation id (yet): the same run it would start
            user = self._live(scope.tenant, user_id)
            if user is None or user.get("automaticAnalysis") != "active":
                return None
            params = {"trigger": trigger, "userScopes": list(user["userScopes"]), "type": user["type"]}
            try:
                return self.sb.runs.start(scope.tenant, model.ANALYSIS, user_id, params=params,
                                          correlation_id=correlation_id)
            except Conflict:   # the id is taken already: a fresh one below
                pass
        return self.start_analysis(scope, user_id, trigger=trigger, only_if_active=True)

    def connect_login(self, tenant: str, flow: dict, account_ids: list[str]) -> dict:
        """A successful Banking UI login: store the bank login and its chosen accounts with ~13 months of bookings,
        start the analysis, and schedule the deletion of non-recurring users after 24 h (section 9)."""
        scope = self._area(tenant)
        user_id = flow["user_id"]
        bank = bank_by_code(flow["bank_code"])
        login = self._new_login(scope, user_id, flow["pending_login"], bank, flow["user_name"], source="banking-ui",
                                recurring=flow["recurring"], store_secrets=flow["store_secrets"],
                                account_types=flow["account_types"], demo=flow["demo"])
        login["accountIds"] = list(account_ids)
        login["scaRequired"] = self._effect(login) == "sca"
        model.bank_logins(scope, user_id).put(login["bankLoginId"], login)
        self._materialise(scope, user_id, login)
        first = not flow["connected"]
        self._auto_analysis(scope, user_id, "connect", flow["correlation_id"] if first else None)
        if not flow["recurring"] and not flow["persist"]:
            user = self._live(tenant, user_id)
            if user is not None and not any(b.get("recurring") for b in self._logins(scope, user_id)):
                self.expire_user_at(tenant, user_id, scope.now() + timedelta(seconds=NON_RECURRING_TTL))
        flow["connected"].append(login["bankLoginId"])
        flow["pending_login"] = None
        return login

    def renew_consent(self, tenant: str, user_id: str, login_id: str) -> dict:
        """The SCA was redone in the Banking UI: a new consent (the old one is invalidated) for 180 days."""
        now = self.sb.clock.now(tenant)

        def renew(login):
            return {**login, "consentGrantedAt": isoformat(now), "scaRequired": False,
                    "consentExpiresAt": isoformat(now + timedelta(days=CONSENT_DAYS))}
        return model.bank_logins(self._area(tenant), user_id).update(login_id, renew, NotFound("Bank login not found"))

    # ================================================================================================================
    # Test account, sync status, sync, disconnect
    # ================================================================================================================
    def connect_test_account(self, ctx, user_id: str) -> Reply:
        """Section 9: a mocked fino bank account without SCA; ``alreadyConnected`` on a repeat call."""
        user = self.live_user(ctx, user_id)
        name = (ctx.body or {}).get("userName") or TEST_USER
        scenario = SCENARIO_LOGINS.get(name)
        if scenario is None:
            raise _invalid("userName", f"unknown test user {name!r}; use one of {', '.join(SCENARIO_LOGINS)}")
        if scenario["effect"] == "error":
            raise FinoError("The fino bank rejected the login of finocontext-error", type="invalidInput", status=400)
        logins = model.bank_logins(ctx, user["userID"])
        existing = next((b for b in self._logins(ctx, user["userID"])
                         if b.get("source") == "test-account" and b["userName"] == name), None)
        headers = {}
        if existing is None:
            login = self._new_login(ctx, user["userID"], self._hex24(ctx.tenant, "fino.bank_login"),
                                    dict(german.FINO_BANK), name, source="test-account", recurring=True,
                                    store_secrets=True, account_types=["GIRO"])
            offered = self.candidates(ctx, user["userID"], login)
            login["accountIds"] = [offered[0]["accountId"]] if offered else []
            login["scaRequired"] = scenario["effect"] == "sca"
            logins.put(login["bankLoginId"], login)
            self._materialise(ctx, user["userID"], login)
            run = self._auto_analysis(ctx, user["userID"], "connect")
            if run:
                headers[CORRELATION_HEADER] = run["id"]
        else:
            login = existing
        accounts = model.accounts(ctx, user["userID"])
        data = []
        for aid in login["accountIds"]:
            acc = accounts.get(aid)
            if acc is not None:
                data.append({k: acc.get(k) or "" for k in ("accountId", "accountNumber", "bankLoginId", "iban",
                                                            "name", "owner", "type")})
        return Reply({"alreadyConnected": existing is not None, "bankLoginId": login["bankLoginId"], "data": data,
                      "status": "success"}, headers=headers)

    def _background_syncs(self, scope, user_id: str) -> None:
        """Recurring logins are synchronised daily in the background (lazily, when the sandbox clock passed a due
        sync): new bookings arrive, lastSynchronization moves on, the analysis runs again."""
        now = scope.now()
        synced = False
        for login in self._logins(scope, user_id):
            due = login["lastSynchronization"] + BACKGROUND_SYNC
            if not self._active(login, now) or _epoch(now) < due:
                continue
            steps = (_epoch(now) - login["lastSynchronization"]) // BACKGROUND_SYNC
            login = model.bank_logins(scope, user_id).patch(
                login["bankLoginId"], {"lastSynchronization": login["lastSynchronization"] + steps * BACKGROUND_SYNC})
            self._materialise(scope, user_id, login)
            synced = True
        if synced:
            self._auto_analysis(scope, user_id, "sync")

    def get_sync_status(self, ctx, user_id: str) -> list[dict]:
        self.live_user(ctx, user_id)
        self._settle_transfers(ctx, user_id)
        self._background_syncs(ctx, user_id)
        now = ctx.now()
        return [{"active": self._active(b, now), "bankLoginId": b["bankLoginId"],
                 "lastSynchronization": b["lastSynchronization"]} for b in self._logins(ctx, user_id)]

    def trigger_sync(self, ctx, user_id: str) -> Reply:
        """Section 9 outcomes: 204 synced | 409 deprecated interface | 422 credentials required | 423 blocked |
        451 SCA to redo (consent lapsed or finocontext-sca: a new Banking UI session) | 429 the 5th of a day."""
        self.live_user(ctx, user_id)
        body = ctx.body or {}
        logins = self._logins(ctx, user_id)
        if body.get("bankLoginId"):
            login = next((b for b in logins if b["bankLoginId"] == body["bankLoginId"]), None)
            if login is None:
                raise FinoError("Bank login not found", type="notFound", status=404)
        elif len(logins) == 1:
            login = logins[0]
        elif not logins:
            raise FinoError("The user has no bank login: connect a bank first", type="notFound", status=404)
        else:
            raise _invalid("bankLoginId", "required when the user has several bank logins")
        effect = self._effect(login)
        if effect == "deprecated":
            raise FinoError("The interface used for this connection is deprecated: send the user to a management "
                            "session", type="conflict", status=409)
        if effect == "credentials" or not login.get("storeSecrets"):
            raise FinoError("credentials required", type="invalidInput", status=422)
        if effect == "locked":
            raise FinoError("Access to the account is blocked by the bank (account locked after wrong PIN entries)",
                            type="locked", status=423)
        now = ctx.now()
        if login.get("scaRequired") or self.consent_lapsed(login, now):
            flow, token = self._new_session(ctx.tenant, user_id, MANAGEMENT, body=body, query={}, first_step="renew",
                                            repair_login=login["bankLoginId"])
            return self._session_reply(ctx, flow, token, status=451)
        try:
            ctx.sandbox.limits.hit(ctx.tenant, f"fino.sync|{user_id}|{login['bankLoginId']}", limit=SYNC_LIMIT,
                                   window="day")
        except TooManyRequests as exc:
            raise FinoError(f"Daily limit of manual synchronizations reached ({SYNC_LIMIT} per bank login and day)",
                            type="tooManyRequests", status=429, headers=exc.headers) from None
        login = model.bank_logins(ctx, user_id).patch(login["bankLoginId"], {"lastSynchronization": _epoch(now)})
        self._materialise(ctx, user_id, login)
        self._settle_transfers(ctx, user_id)
        run = self._auto_analysis(ctx, user_id, "sync")
        return Reply(None, status=204, headers={CORRELATION_HEADER: run["id"]} if run else {})

    def _drop_login(self, scope, user_id: str, login_id: str) -> None:
        accounts = model.accounts(scope, user_id)
        for acc in list(accounts.iter(lambda a: a.get("bankLoginId") == login_id)):
            model.transactions(scope, user_id, acc["accountId"]).clear()
            accounts.delete(acc["accountId"])
        transfers = self._transfers(scope.tenant, user_id)
        for t in list(transfers.iter(lambda t: t["bankLoginId"] == login_id)):
            transfers.delete(t["paymentId"])
        model.bank_logins(scope, user_id).delete(login_id)

    def delete_bank_login(self, ctx, user_id: str, banklogin_id: str) -> None:
        self.live_user(ctx, user_id)
        model.bank_logins(ctx, user_id).load(banklogin_id, FinoError("Bank login not found", type="notFound",
                                                                     status=404))
        self._drop_login(ctx, user_id, banklogin_id)

    def disconnect_banking(self, ctx, user_id: str) -> None:
        """All bank logins and all banking data of the user (uploaded ones too); the user stays."""
        self.live_user(ctx, user_id)
        self.sb.collection(ctx.tenant, model.TRANSACTIONS, scope=user_id).clear()
        model.accounts(ctx, user_id).clear()
        model.bank_logins(ctx, user_id).clear()
        self._transfers(ctx.tenant, user_id).clear()

    # ================================================================================================================
    # Money transfers
    # ================================================================================================================
    def _transfers(self, tenant: str, user_id: str):
        return self.sb.collection(tenant, TRANSFERS, scope=user_id, id_field="paymentId")

    def _adjust_balance(self, scope, user_id: str, account_id: str, amount: float) -> None:
        accounts = model.accounts(scope, user_id)
        if accounts.get(account_id) is not None:
            accounts.update(account_id, lambda a: {**a, "balance": float(
                (Decimal(str(a.get("balance") or 0)) + Decimal(str(amount))).quantize(Decimal("0.01")))})

    def create_money_transfer(self, ctx, user_id: str, banklogin_id: str) -> Reply:
        self.live_user(ctx, user_id)
        login = model.bank_logins(ctx, user_id).load(banklogin_id, FinoError("Bank login not found",
                                                                             type="notFound", status=404))
        body = ctx.body
        account = model.accounts(ctx, user_id).get(body["accountId"])
        if account is None or account.get("bankLoginId") != banklogin_id:
            raise FinoError("Account not found for this bank login", type="notFound", status=404)
        if "SINGLE_MONEY_TRANSFER" not in (account.get("supportedPayments") or []):
            raise _invalid("accountId", f"the {account.get('type')} account supports no SINGLE_MONEY_TRANSFER")
        for field in ("redirectUrl", "fallbackUrl", "exitUrl"):
            url = body.get(field)
            if url is not None and not re.match(r"^https://[^/?#\s]+", url):
                raise _invalid(field, "must be an https URL")
        today = ctx.now().astimezone(BERLIN).date()
        try:
            execution = date.fromisoformat(body["executionDate"]) if body.get("executionDate") else today
        except ValueError:
            raise _invalid("executionDate", "must be a date YYYY-MM-DD") from None
        if execution < today:
            raise _invalid("executionDate", f"must not be in the past (today is {today.isoformat()})")
        if execution > today + timedelta(days=MAX_EXECUTION_DAYS):
            raise _invalid("executionDate", f"must be within {MAX_EXECUTION_DAYS} days")
        infos, total = [], Decimal(0)
        for n, info in enumerate(body["moneyTransferInfos"]):
            where = f"moneyTransferInfos/{n}"
            try:
                amount = Decimal(str(info["amount"]))
            except InvalidOperation:
                raise _invalid(f"{where}/amount", "must be a number") from None
            if amount >= 0 or amount != amount.quantize(Decimal("0.01")):
                raise _invalid(f"{where}/amount", "must be negative with at most two decimals (e.g. -33)")
            creditor = info["creditor"]
            iban = creditor["iban"].replace(" ", "").upper()
            if not is_valid_iban(iban):
                raise _invalid(f"{where}/creditor/iban", f"{creditor['iban']!r} is not a valid IBAN")
            if iban == (account.get("iban") or ""):
                raise _invalid(f"{where}/creditor/iban", "the creditor is the debtor account")
            infos.append({"amount": float(amount), "creditor": {"bic": creditor.get("bic") or german.bic_for_iban(iban),
                                                                 "iban": iban, "name": creditor["name"]},
                          "purpose": info.get("purpose") or ""})
            total += amount
        transfers = self._transfers(ctx.tenant, user_id)
        payment_id, session_id = self._hex24(ctx.tenant, "fino.payment"), self._hex24(ctx.tenant, "fino.session")
        needs_tan = -total > SCA_EXEMPT_EUR
        doc = {"paymentId": payment_id, "sessionId": session_id, "bankLoginId": banklogin_id,
               "accountId": account["accountId"], "executionDate": execution.isoformat(),
               "singleBooking": bool(body.get("singleBooking", False)), "infos": infos,
               "debtor": {"accountNumber": account.get("accountNumber") or "", "bic": account.get("bic") or login["bic"],
                          "iban": account.get("iban") or "", "name": account.get("owner") or ""},
               "status": "PENDING_SCA" if needs_tan else "OPEN", "createdAt": isoformat(ctx.now()),
               "_total": float(total), "_executedAt": None,
               "_urls": {k: body.get(k) for k in ("redirectUrl", "fallbackUrl", "exitUrl")}}
        transfers.put(payment_id, doc)
        if not needs_tan:
            self._settle(ctx, user_id, doc)
            return Reply({"paymentId": payment_id, "sessionId": session_id, "status": "success"})
        redirects = {o: body.get(k) for o, k in (("success", "redirectUrl"), ("error", "fallbackUrl"),
                                                 ("cancel", "exitUrl")) if body.get(k)}
        _, token = self.sb.flows.create(ctx.tenant, PROVIDER, PAYMENT, redirect_uri=None, redirects=redirects,
                                        data={"user_id": user_id, "payment_id": payment_id}, ttl=SESSION_TTL,
                                        first_step="tan", purpose=PAYMENT_PURPOSE, flow_id=session_id)
        return Reply({"paymentId": payment_id, "sessionId": session_id,
                      "redirectURL": ctx.url_for("money_transfer_sca", sessionId=session_id, token=token)},
                     status=451)

    def _settle(self, scope, user_id: str, doc: dict) -> dict:
        """Move a transfer on by the sandbox clock: OPEN is EXECUTED (and booked) on its execution date; a
        PENDING_SCA transfer whose SCA page expired unused FAILED."""
        transfers = self._transfers(scope.tenant, user_id)
        now = scope.now()
        if doc["status"] == "PENDING_SCA":
            flow = self.sb.store.get(scope.tenant, f"{PROVIDER}.flows", doc["sessionId"])
            if flow is None or (flow["status"] == "PENDING" and self.sb.flows.expired(scope.tenant, flow)):
                doc = transfers.patch(doc["paymentId"], {"status": "FAILED"})
            return doc
        if doc["status"] != "OPEN" or date.fromisoformat(doc["executionDate"]) > now.astimezone(BERLIN).date():
            return doc
        account = model.accounts(scope, user_id).get(doc["accountId"])
        if account is None:
            return transfers.patch(doc["paymentId"], {"status": "FAILED"})
        execution = date.fromisoformat(doc["executionDate"])
        when = _epoch(now) if execution == now.astimezone(BERLIN).date() else \
            int(datetime.combine(execution, time(8, 0), BERLIN).timestamp())
        txs = model.transactions(scope, user_id, doc["accountId"])
        items = [(sum(Decimal(str(i["amount"])) for i in doc["infos"]), None)] if doc["singleBooking"] and \
            len(doc["infos"]) > 1 else [(Decimal(str(i["amount"])), i) for i in doc["infos"]]
        for n, (amount, info) in enumerate(items):
            tid = german.fetched_transaction_id("money-transfer", scope.tenant, doc["paymentId"], n)
            partner = {"bic": "", "creditorId": "", "iban": "", "name": ""}
            if info is not None:
                partner.update(bic=info["creditor"]["bic"], iban=info["creditor"]["iban"], name=info["creditor"]["name"])
            purpose = info["purpose"] if info is not None else f"Sammelueberweisung {len(doc['infos'])} Auftraege"
            txs.put(tid, {"transactionId": tid, "accountId": doc["accountId"], "amount": float(amount),
                          "bookingDate": when, "valueDate": when,
                          "bookingText": "SEPA-UEBERWEISUNG" if info is not None else "SAMMEL-UEBERWEISUNG",
                          "currency": "EUR", "differentCreditor": "", "differentDebitor": "",
                          "eref": german.end_to_end_reference(doc["paymentId"], n), "mref": "",
                          "paymentPartner": partner, "purpose": purpose, "sepaPurposeCode": "",
                          "transactionCode": 116, "_source": "bank", "_category": "transfer_out",
                          "_payment": doc["paymentId"]})
        self._adjust_balance(scope, user_id, doc["accountId"], doc["_total"])
        return transfers.patch(doc["paymentId"], {"status": "EXECUTED", "_executedAt": isoformat(now)})

    def _settle_transfers(self, scope, user_id: str) -> None:
        for doc in list(self._transfers(scope.tenant, user_id).iter(
                lambda t: t["status"] in ("OPEN", "PENDING_SCA"))):
            self._settle(scope, user_id, doc)

    def get_money_transfer(self, ctx, user_id: str, banklogin_id: str, money_transfer_id: str) -> dict:
        self.live_user(ctx, user_id)
        model.bank_logins(ctx, user_id).load(banklogin_id, FinoError("Bank login not found", type="notFound",
                                                                     status=404))
        doc = self._transfers(ctx.tenant, user_id).get(money_transfer_id)
        if doc is None or doc["bankLoginId"] != banklogin_id:
            raise FinoError("Money transfer not found", type="notFound", status=404)
        doc = self._settle(ctx, user_id, doc)
        return {"moneyTransfers": [{"amount": i["amount"], "creditor": i["creditor"], "currency": "EUR",
                                    "debtor": doc["debtor"], "purpose": i["purpose"]} for i in doc["infos"]],
                "status": doc["status"]}

    def transfer_for_page(self, tenant: str, flow: dict) -> dict:
        return self._transfers(tenant, flow["user_id"]).load(flow["payment_id"], NotFound("Money transfer not found"))

    def confirm_transfer(self, tenant: str, flow: dict, outcome: str) -> dict:
        """The payment page decided: success -> OPEN (executed on its date), cancel -> CANCELLED, error -> FAILED."""
        scope = self._area(tenant)
        status = {"success": "OPEN", "cancel": "CANCELLED", "error": "FAILED"}[outcome]
        doc = self._transfers(tenant, flow["user_id"]).patch(flow["payment_id"], {"status": status})
        return self._settle(scope, flow["user_id"], doc) if status == "OPEN" else doc


# ====================================================================================================================
# Hosted pages
# ====================================================================================================================
TEXT = {
    "title": "Bankverbindung", "bank": "Bank suchen", "search": "Suchen", "credentials": "Anmeldung bei",
    "userName": "Anmeldename / Legitimations-ID", "pin": "PIN", "sca": "Freigabe", "tan": "TAN",
    "accounts": "Konten auswählen", "overview": "Ihre Bankverbindungen", "renew": "Zugriff erneut freigeben",
    "next": "Weiter", "exit": "Abbrechen", "add": "Weitere Bank verbinden", "done": "Fertig",
    "wrong_credentials": "Anmeldename oder PIN ist falsch.", "wrong_tan": "Die TAN ist falsch.",
    "choose_bank": "Bitte wählen Sie eine Bank.", "choose_account": "Bitte wählen Sie mindestens ein Konto.",
    "stale": "Dieser Schritt ist nicht mehr aktuell.", "attempts_left": "Verbleibende Versuche",
    "expired": "Diese Sitzung ist ungültig oder abgelaufen.", "used": "Diese Sitzung wurde bereits beendet.",
    "no_banks": "Keine Bank gefunden.", "no_logins": "Noch keine Bank verbunden.",
    "demo": "Demo-Modus: fino bank mit Demo-Zugängen", "payment": "Überweisung freigeben", "confirm": "Freigeben",
    "success": "Vorgang abgeschlossen.", "cancel": "Vorgang abgebrochen.", "error": "Vorgang fehlgeschlagen.",
}


def uba_error_page(reason: str):
    return render_template("uba_message.html", t=TEXT, message=TEXT[reason], event=None, url=None)


class _Framed:
    """The end of a hosted flow: 303 to the target for plain clients; inside an iframe (``Sec-Fetch-Dest:
    iframe``) a page that posts ``uba:success|error|exit`` to ``window.parent`` first, then goes on."""

    EVENTS = {"success": "uba:success", "error": "uba:error", "cancel": "uba:exit"}

    def message(self, flow: dict) -> dict:
        return {"type": self.EVENTS[flow["outcome"]], "userID": flow["user_id"]}

    def finished(self, ctx, tenant, flow, url):
        framed = ctx.request.headers.get("Sec-Fetch-Dest") == "iframe"
        if url and not framed:
            return super().finished(ctx, tenant, flow, url)
        event = self.message(flow)
        if url:
            event["redirectURL"] = url
        return make_response(render_template("uba_message.html", t=TEXT, message=TEXT[flow["outcome"]],
                                             event=event, url=url))

    def render_done(self, ctx, tenant, flow):
        return render_template("uba_message.html", t=TEXT, message=TEXT[flow["outcome"]], event=self.message(flow),
                               url=None)


class BankingUiFlow(_Framed, FlowDefinition):
    """The Banking UI ("Universal Bank Access"). Form fields: ``flow_id``, ``step``, and per step:
    overview ``add=1`` | ``done=1``; bank ``q`` + ``search=1`` or ``bankCode``; credentials ``userName``, ``pin``
    (demo: ``userName`` only); sca ``scaMethod``, ``tan``; accounts ``accountIds`` (repeatable); renew ``tan``.
    ``exit=1`` leaves at any step (exitURL)."""

    cancel_field = "exit"
    list_fields = ("accountIds",)
    max_attempts = 3

    def __init__(self, flows, service):
        super().__init__(flows)
        self.service = service

    def message(self, flow):
        out = super().message(flow)
        if flow["outcome"] == "success":
            out["bankLoginIds"] = list(flow["connected"]) or ([flow["repair_login"]] if flow["repair_login"] else [])
        elif flow["outcome"] == "error":
            out["reason"] = flow.get("reason") or "bank_error"
        return out

    def render(self, ctx, tenant, flow, error):
        scope = self.service._area(tenant)
        step = flow["step"]
        out = {"t": TEXT, "flow": flow, "step": step, "error": error, "banks": [], "bank": None, "accounts": [],
               "logins": [], "login": None, "demo_users": SCENARIO_LOGINS, "sca_methods": SCA_METHODS,
               "attempts_left": self.attempts_left(flow, "pin" if step == "credentials" else "tan"), "pin": PIN,
               "tan": TAN}
        out["bank"] = bank_by_code(flow.get("bank_code"))
        if step == "bank":
            out["banks"] = search_banks(flow["search"])
        elif step == "accounts":
            out["accounts"] = self._offered(scope, flow)
        elif step in ("overview", "renew"):
            out["logins"] = self.service._logins(scope, flow["user_id"])
            out["login"] = next((b for b in out["logins"] if b["bankLoginId"] == flow["repair_login"]), None)
        return render_template("uba_auth.html", **out)

    def _offered(self, scope, flow) -> list[dict]:
        login = self._pending(scope, flow)
        return self.service.candidates(scope, flow["user_id"], login)

    def _pending(self, scope, flow) -> dict:
        return self.service._new_login(scope, flow["user_id"], flow["pending_login"], bank_by_code(flow["bank_code"]),
                                       flow["user_name"], source="banking-ui", recurring=flow["recurring"],
                                       store_secrets=flow["store_secrets"], account_types=flow["account_types"])

    def _user_alive(self, tenant, flow) -> bool:
        return self.service._live(tenant, flow["user_id"]) is not None

    # --- steps ----------------------------------------------------------------------------------------------------
    def step_overview(self, tenant, flow, form):
        if "add" in form:
            flow["pending_login"] = None
            if flow["demo"]:
                return Next.goto("credentials")
            flow["bank_code"], flow["search"] = None, ""
            return Next.goto("bank")
        if "done" in form:
            return Next.finish("success")
        return Next.stay()

    def step_bank(self, tenant, flow, form):
        code = form.get("bankCode")
        if "search" in form or not code:
            flow["search"] = (form.get("q") or "").strip()[:100]
            return Next.stay(None if "search" in form else "choose_bank")
        if bank_by_code(code) is None:
            return Next.stay("choose_bank")
        flow["bank_code"] = code
        return Next.goto("credentials")

    def step_credentials(self, tenant, flow, form):
        name = (form.get("userName") or "").strip()
        if not self._user_alive(tenant, flow):
            return Next.finish("error", reason="user_deleted")
        if name == "finocontext-error":
            return Next.finish("error", reason="bank_error")
        if name in SCENARIO_LOGINS and (flow["demo"] or form.get("pin") == PIN):
            flow["user_name"] = name
            flow["pending_login"] = self.service._hex24(tenant, "fino.bank_login")   # the ids the accounts step shows
            return Next.goto("accounts" if flow["demo"] else "sca")
        if self.attempt(flow, "pin"):
            return Next.finish("error", reason="wrong_credentials")
        flow["last_user_name"] = name[:100]
        return Next.stay("wrong_credentials")

    def step_sca(self, tenant, flow, form):
        if form.get("scaMethod") not in SCA_METHODS:
            return Next.stay("stale")
        flow["sca_method"] = form["scaMethod"]
        if (form.get("tan") or "").strip() != TAN:
            if self.attempt(flow, "tan"):
                return Next.finish("error", reason="wrong_tan")
            return Next.stay("wrong_tan")
        return Next.goto("accounts")

    def step_accounts(self, tenant, flow, form):
        scope = self.service._area(tenant)
        offered = [a["accountId"] for a in self._offered(scope, flow)]
        if not offered:
            return Next.finish("error", reason="no_matching_accounts")
        chosen = [a for a in offered if a in set(form.get("accountIds") or [])]
        if not chosen:
            return Next.stay("choose_account")
        if not self._user_alive(tenant, flow):
            return Next.finish("error", reason="user_deleted")
        self.service.connect_login(tenant, flow, chosen)
        if flow["multiple"]:
            return Next.goto("overview")   # section 9: multiple=true returns to the management screen
        return Next.finish("success")

    def step_renew(self, tenant, flow, form):
        if (form.get("tan") or "").strip() != TAN:
            if self.attempt(flow, "tan"):
                return Next.finish("error", reason="wrong_tan")
            return Next.stay("wrong_tan")
        try:
            self.service.renew_consent(tenant, flow["user_id"], flow["repair_login"])
        except NotFound:
            return Next.finish("error", reason="bank_error")
        return Next.goto("overview") if flow["multiple"] else Next.finish("success")

    # --- outcomes ---------------------------------------------------------------------------------------------------
    def redirect_params(self, flow, outcome, result):
        return [("userID", flow["user_id"])]   # section 9: every UI redirect appends ?userID=<user-id>

    def succeed(self, tenant, flow, options):
        """Control API: renew the consent of a repair session, else connect ``userName`` (default finocontext1) at
        ``bankCode`` (default the session's, else fino bank) with ``accountIds`` (default every offered account)."""
        if flow["step"] == "renew":
            self.service.renew_consent(tenant, flow["user_id"], flow["repair_login"])
            return {}
        if flow["step"] == "overview" and flow["connected"] and not options:
            return {}
        name = options.get("userName") or TEST_USER
        if name not in SCENARIO_LOGINS or name == "finocontext-error":
            raise BadRequest(f"userName must be one of {[n for n in SCENARIO_LOGINS if n != 'finocontext-error']} "
                             "(use outcome error for finocontext-error)")
        code = german.FINO_BANK["code"] if flow["demo"] else options.get("bankCode") or flow.get("bank_code") or \
            german.FINO_BANK["code"]
        if bank_by_code(code) is None:
            raise BadRequest(f"bankCode must be one of {[b['code'] for b in banks()]}")
        if not self._user_alive(tenant, flow):
            raise BadRequest("the session's user no longer exists")
        flow.update(bank_code=code, user_name=name, pending_login=self.service._hex24(tenant, "fino.bank_login"))
        offered = [a["accountId"] for a in self._offered(self.service._area(tenant), flow)]
        wanted = options.get("accountIds")
        if wanted is None:
            wanted = offered
        if isinstance(wanted, str):
            wanted = [wanted]
        if not offered:
            raise BadRequest("no account matches the session's accountTypes (use outcome error)")
        if not isinstance(wanted, list) or not wanted or any(a not in offered for a in wanted):
            raise BadRequest(f"accountIds must be a non-empty list of the offered account ids {offered}")
        self.service.connect_login(tenant, flow, wanted)
        return {}

    def fail_reason(self, tenant, flow, options):
        reason = options.get("reason") or "bank_error"
        if reason not in ERROR_REASONS:
            raise BadRequest(f"reason must be one of {list(ERROR_REASONS)}")
        return reason


class PaymentFlow(_Framed, FlowDefinition):
    """The money transfer SCA page (flow id = the transfer's sessionId). Form fields: ``sessionId``, ``tan``
    (``confirm=1``), or ``exit=1`` to cancel the transfer. Three wrong TANs fail it."""

    id_field = "sessionId"
    step_field = None
    cancel_field = "exit"
    max_attempts = 3

    def __init__(self, flows, service):
        super().__init__(flows)
        self.service = service

    def message(self, flow):
        return {**super().message(flow), "paymentId": flow["payment_id"]}

    def render(self, ctx, tenant, flow, error):
        transfer = self.service.transfer_for_page(tenant, flow)
        total = -sum(Decimal(str(i["amount"])) for i in transfer["infos"])
        return render_template("uba_payment.html", t=TEXT, flow=flow, transfer=transfer, error=error,
                               total=f"{total:,.2f}".replace(",", "X").replace(".", ",").replace("X", "."),
                               attempts_left=self.attempts_left(flow, "tan"), tan=TAN)

    def step_tan(self, tenant, flow, form):
        if self.service.transfer_for_page(tenant, flow)["status"] != "PENDING_SCA":
            return Next.stay("stale")
        if (form.get("tan") or "").strip() != TAN:
            if self.attempt(flow, "tan"):
                self.service.confirm_transfer(tenant, flow, "error")
                return Next.finish("error", reason="wrong_tan")
            return Next.stay("wrong_tan")
        self.service.confirm_transfer(tenant, flow, "success")
        return Next.finish("success")

    def cancel(self, tenant, flow, form):
        self.service.confirm_transfer(tenant, flow, "cancel")
        return Next.finish("cancel")

    def redirect_params(self, flow, outcome, result):
        return [("paymentId", flow["payment_id"]), ("userID", flow["user_id"])]

    def complete(self, tenant, flow, outcome, options):
        """Control API: success confirms the TAN, cancel cancels the transfer, error fails it."""
        self.service.confirm_transfer(tenant, flow, outcome)
        return self.end(tenant, flow, outcome, **({"reason": self.fail_reason(tenant, flow, options)}
                                                  if outcome == "error" else {}))


# --- page handlers (catalogue pages fino.banking_ui_connect, also serving fino.banking_ui_management, and
# fino.money_transfer_sca) ------------------------------------------------------------------------------------------
def banking_ui_page(ctx, **params):
    return ctx.sandbox.flows.serve(ctx, UBA_PURPOSE, token=ctx.request.args.get("sessionId"),
                                   error_page=uba_error_page)


def money_transfer_sca_page(ctx, **params):
    return ctx.sandbox.flows.serve(ctx, PAYMENT_PURPOSE, token=ctx.request.args.get("token"),
                                   error_page=uba_error_page, flow_id=ctx.request.args.get("sessionId") or "")
