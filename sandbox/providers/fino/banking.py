"""finoOS banking area (fino.md sections 7 "upload", 8, 9 "Manual upload" and "Reading banking data", 13).

Storage is the shared model (model.py): one account document per (user, accountId), one transaction document per
(user, account, transactionId). Internal fields start with ``_`` and are never rendered: ``_source`` (``manual`` or
``bank``), and on bank-fetched data ``_ledger``/``_category`` (the shared ledger's account id and category, which the
analysis reads). Every write validates the whole request first, so bad input changes nothing.
"""
from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from ...core.dispatch import Reply
from ...core.errors import NotFound
from ...core.pdf import render_pdf
from ...ledger.generator import add_months, generate_ledger, stable_seed
from ...ledger.iban import de_iban
from ...ledger.models import Ledger
from . import german, model
from .errors import FinoError

SCENARIOS: list[dict] = [
    {"kind": "upload_user_banking_data status", "value": "start | upload | finish | start,upload,finish ...",
     "effect": "phases in canonical order; 'upload'/'finish' without an open upload -> 404, 'start' while one is "
               "open -> 409, 'finish' starts the analysis", "source": "fino.md section 7"},
    {"kind": "get_account_summary_pdf", "value": "> 10000 transactions in range",
     "effect": "206 with header stoppedAt (start of the next day not in the PDF)", "source": "fino.md section 9"},
]

BERLIN = ZoneInfo("Europe/Berlin")
UPLOADS = f"{model.PROVIDER}.uploads"    # phased uploads, one per customUserID (sandbox bookkeeping)
MAX_ACCOUNTS = 100          # per request (sandbox bound, inferred; the schemas say it too)
MAX_TRANSACTIONS = 5000     # per transactions array
MAX_IDS = 5000              # per ids list / transactionIds query
PDF_LIMIT = 10000           # fino.md section 9: the account summary holds at most 10000 transactions
ALL_USER_SCOPES = ["banking", "banking-fetch", "banking-upload", "account-detection", "categorization", "contracts",
                   "cockpits"]

_ACCOUNT_FIELDS = ("accountNumber", "balance", "bankCode", "bankName", "bic", "creditLine", "currency", "iban",
                   "icon", "monthlySpendingLimit", "name", "overdraft", "owner", "supportedPayments", "type")
_TX_FIELDS = ("amount", "bookingDate", "bookingText", "currency", "differentCreditor", "differentDebitor", "eref",
              "mref", "paymentPartner", "purpose", "sepaPurposeCode", "transactionCode", "valueDate",
              "merchantCategoryCode")
_SECURITY_FIELDS = ("amount", "amountOriginalCurrency", "currency", "exchangeRate", "isin", "market", "name", "price",
                    "priceCurrency", "purchasePrice", "purchasePriceCurrency", "quantity", "securityId", "wkn")
_ORDER_FIELDS = ("amount", "creationTimestamp", "currency", "executionDay", "firstExecutionDate", "interval",
                 "lastExecutionDate", "iban", "name", "purpose", "standingOrderId")
_PARTNER_FIELDS = ("bic", "creditorId", "iban", "name")


def invalid(message: str) -> FinoError:
    return FinoError(message, type="invalidInput", status=400)


def not_found(message: str) -> FinoError:
    return FinoError(message, type="notFound", status=404)


def conflict(message: str) -> FinoError:
    return FinoError(message, type="conflict", status=409)


# --- rendering ---------------------------------------------------------------------------------------------------
def public(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def render_transaction(doc: dict) -> dict:
    """A stored transaction as finoOS serves it: every field present (Go-style zero values for missing ones)."""
    partner = {f: "" for f in _PARTNER_FIELDS}
    partner.update({k: v for k, v in (doc.get("paymentPartner") or {}).items() if k in _PARTNER_FIELDS and v is not None})
    out = {"accountId": doc["accountId"], "amount": doc["amount"], "bookingDate": doc["bookingDate"],
           "bookingText": doc.get("bookingText") or "", "currency": doc.get("currency") or "EUR",
           "differentCreditor": doc.get("differentCreditor") or "", "differentDebitor": doc.get("differentDebitor") or "",
           "eref": doc.get("eref") or "", "mref": doc.get("mref") or "", "paymentPartner": partner,
           "purpose": doc.get("purpose") or "", "sepaPurposeCode": doc.get("sepaPurposeCode") or "",
           "transactionCode": doc.get("transactionCode") or 0, "transactionId": doc["transactionId"],
           "valueDate": doc.get("valueDate") if doc.get("valueDate") is not None else doc["bookingDate"]}
    if doc.get("merchantCategoryCode"):
        out["merchantCategoryCode"] = doc["merchantCategoryCode"]
    return out


def render_account(doc: dict, transactions: list[dict] | None = None) -> dict:
    out = {"accountId": doc["accountId"], "accountNumber": doc.get("accountNumber") or "",
           "balance": doc.get("balance") or 0, "bankCode": doc.get("bankCode") or "",
           "bankName": doc.get("bankName") or "", "bic": doc.get("bic") or "", "creditLine": doc.get("creditLine") or 0,
           "currency": doc.get("currency") or "EUR", "iban": doc.get("iban") or "",
           "monthlySpendingLimit": doc.get("monthlySpendingLimit") or 0, "name": doc.get("name") or "",
           "overdraft": {"amount": 0, "available": False, **(doc.get("overdraft") or {})},
           "owner": doc.get("owner") or "", "securities": list(doc.get("securities") or []),
           "standingOrders": list(doc.get("standingOrders") or []),
           "supportedPayments": list(doc.get("supportedPayments") or []), "type": doc.get("type") or "UNKNOWN"}
    if doc.get("bankLoginId"):
        out["bankLoginId"] = doc["bankLoginId"]
    if doc.get("icon"):
        out["icon"] = doc["icon"]
    if transactions is not None:
        out["transactions"] = transactions
    return out


def _newest_first(docs):
    return sorted(docs, key=lambda t: (t.get("bookingDate") or 0, t["transactionId"]), reverse=True)


# --- request normalisation -----------------------------------------------------------------------------------------
def _pick(raw: dict, fields) -> dict:
    return {k: raw[k] for k in fields if k in raw and raw[k] is not None}


def _unique(items: list[dict], field: str, where: str) -> None:
    seen = Counter(i[field] for i in items)
    dupes = sorted(k for k, n in seen.items() if n > 1)
    if dupes:
        raise invalid(f"{where}: duplicate {field} {dupes[0]!r} (ids must be unique)")


def _transaction_doc(raw: dict, account_id: str, currency: str) -> dict:
    if raw.get("accountId") not in (None, account_id):
        raise invalid(f"transaction {raw['transactionId']!r}: accountId {raw['accountId']!r} does not match "
                      f"account {account_id!r}")
    doc = _pick(raw, _TX_FIELDS)
    if "paymentPartner" in doc:
        doc["paymentPartner"] = _pick(doc["paymentPartner"], _PARTNER_FIELDS)
    doc.setdefault("currency", currency)
    doc.setdefault("valueDate", doc["bookingDate"])
    return {"transactionId": raw["transactionId"], "accountId": account_id, **doc, "_source": "manual"}


def _account_doc(ctx, raw: dict) -> tuple[dict, list[dict]]:
    """(account document, transaction documents) of an AccountRequest; ids checked for duplicates."""
    aid = raw["accountId"]
    doc = {"accountId": aid, **_pick(raw, _ACCOUNT_FIELDS), "_source": "manual"}
    doc.setdefault("currency", "EUR")
    doc.setdefault("type", "UNKNOWN")
    txs = raw.get("transactions") or []
    _unique(txs, "transactionId", f"account {aid!r}")
    for kind, id_field in (("securities", "securityId"), ("standingOrders", "standingOrderId")):
        items = raw.get(kind) or []
        _unique([i for i in items if i.get(id_field)], id_field, f"account {aid!r} {kind}")
        rendered = []
        for n, item in enumerate(items):
            fields = _SECURITY_FIELDS if kind == "securities" else _ORDER_FIELDS
            one = {"accountId": aid, **_pick(item, fields)}
            if id_field not in one:   # a stable id from the content (same upload -> same id)
                one[id_field] = german.hex_id(ctx.tenant, aid, n, sorted(one.items())) if kind == "securities" \
                    else german.uuid_from(ctx.tenant, aid, n, sorted(one.items()))
            rendered.append(one)
        doc[kind] = rendered
    return doc, [_transaction_doc(t, aid, doc["currency"]) for t in txs]


def _check_user_scope(user: dict, *alternatives: str) -> None:
    scopes = user.get("userScopes")
    if scopes and not set(scopes) & set(alternatives):
        raise FinoError("Forbidden. No access to this resource", type="forbidden", status=403)


def _epoch_to_berlin(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc).astimezone(BERLIN)


def parse_instant(text: str, end_of_day: bool = False) -> int:
    """RFC3339 (``Z`` or offset) -> epoch seconds; a bare date is that day in Berlin (inclusive end with
    ``end_of_day``)."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            moment = datetime.combine(d, time(23, 59, 59) if end_of_day else time(0), BERLIN)
        else:
            moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError("no offset")
        return int(moment.timestamp())
    except (ValueError, OverflowError, OSError):
        raise invalid(f"{text!r} is not an RFC3339 timestamp") from None


class Banking:
    def setup(self) -> None:
        """Nothing to register: uploads start the analysis through the platform area's ``start_analysis``."""

    # --- helpers --------------------------------------------------------------------------------------------------
    def _user(self, ctx, user_id: str, *scopes: str) -> dict:
        """The user of this tenant (the platform area's ``live_user``: 404 when unknown, foreign or expired), and
        403 unless its userScopes hold one of ``scopes``."""
        live = getattr(self, "live_user", None)
        user = live(ctx, user_id) if live else model.load_user(ctx, user_id)
        if scopes:
            _check_user_scope(user, *scopes)
        return user

    def forget_user(self, tenant: str, user_id: str) -> None:
        """Platform hook on user deletion: drop the user's upload bookkeeping (accounts go with the model)."""
        uploads = self.sb.collection(tenant, UPLOADS, id_field="customUserID")
        for key, doc in list(uploads.items(lambda d: d.get("userID") == user_id)):
            uploads.delete(key)

    def _manual_account(self, ctx, user_id: str, account_id: str, what: str = "modified") -> dict:
        doc = model.load_account(ctx, user_id, account_id)
        if doc.get("_source") == "bank":
            raise invalid(f"Account {account_id} was fetched from the bank and cannot be {what} by manual upload")
        return doc

    def _check_set(self, ctx, user_id: str | None, accounts: list[dict]) -> list[tuple[dict, list[dict]]]:
        """Validate an accounts list for set semantics (replace by id): unique ids, no bank-fetched id, an existing
        id keeps its accountNumber."""
        _unique(accounts, "accountId", "accounts")
        prepared = [_account_doc(ctx, raw) for raw in accounts]
        if user_id is not None:
            coll = model.accounts(ctx, user_id)
            for doc, _ in prepared:
                old = coll.get(doc["accountId"])
                if old is None:
                    continue
                if old.get("_source") == "bank":
                    raise invalid(f"Account {doc['accountId']} was fetched from the bank and cannot be replaced")
                if (old.get("accountNumber") or "") != (doc.get("accountNumber") or ""):
                    raise conflict(f"Account {doc['accountId']} exists with another accountNumber")
        return prepared

    def _store_set(self, ctx, user_id: str, prepared) -> None:
        coll = model.accounts(ctx, user_id)
        for doc, txs in prepared:
            tcoll = model.transactions(ctx, user_id, doc["accountId"])
            if coll.get(doc["accountId"]) is not None:
                tcoll.clear()   # a replaced account brings its own transactions
            coll.put(doc["accountId"], doc)
            for t in txs:
                tcoll.put(t["transactionId"], t)

    def _account_transactions(self, ctx, user_id: str, account_id: str) -> list[dict]:
        return list(model.transactions(ctx, user_id, account_id).iter())

    # --- upload (section 7) ---------------------------------------------------------------------------------------
    def upload_user_banking_data(self, ctx):
        body = ctx.body
        phases = body["status"].split(",")
        custom = body["customUserID"]
        uploads = ctx.sandbox.collection(ctx.tenant, UPLOADS, id_field="customUserID")
        users = model.users(ctx)
        session = uploads.get(custom)
        is_open = bool(session and session.get("status") == "open")
        user = None
        if "start" in phases:
            if is_open:
                raise conflict(f"customUserID {custom} already has an open upload; finish it first")
            if not body.get("type"):
                raise invalid("type: required with status start")
            user = next((u for u in users.iter(lambda u: u.get("customUserID") == custom)
                         if self._alive(ctx, u["userID"])), None)
        else:
            if not is_open:
                raise not_found(f"No open upload for customUserID {custom}: send status start first")
            user = self._alive(ctx, session["userID"])
            if user is None:
                raise not_found("User not found")
        if user is not None:
            _check_user_scope(user, "banking", "banking-upload")
        prepared = self._check_set(ctx, user["userID"] if user else None, body["accounts"])
        now = ctx.now()
        if "start" in phases:
            if user is None:
                advisors = [a["id"] for a in body.get("advisors") or [] if a.get("id")]
                new_user = getattr(self, "new_user", None)
                if new_user is not None:
                    user = new_user(ctx.tenant, type=body["type"], customUserID=custom, name=body.get("name"),
                                    advisorIDs=advisors)
                else:   # the platform area not loaded: the same document it writes
                    user = users.create({"automaticAnalysis": "active", "createdAt": _rfc3339_ms(now),
                                         "customUserID": custom, "name": body.get("name") or "",
                                         "type": body["type"], "userScopes": list(ALL_USER_SCOPES),
                                         "advisorIDs": advisors}, id=users.new_id())
            session = uploads.put(custom, {"customUserID": custom, "userID": user["userID"], "status": "open",
                                           "correlationID": uploads.new_id(), "startedAt": _rfc3339_ms(now),
                                           "advisors": body.get("advisors") or [], "phases": []})
        self._store_set(ctx, user["userID"], prepared)
        correlation, stamp = session["correlationID"], _berlin_stamp(now)
        if "finish" in phases:
            correlation, stamp = self._start_analysis(ctx, user["userID"], correlation, stamp)
            session = {**session, "status": "finished", "finishedAt": _rfc3339_ms(now)}
        session = {**session, "phases": session.get("phases", []) + phases, "correlationID": correlation}
        uploads.put(custom, session)
        return {"correlationID": correlation, "correlationTimestamp": stamp, "customUserID": custom,
                "userID": user["userID"]}

    def _alive(self, ctx, user_id: str) -> dict | None:
        try:
            return self._user(ctx, user_id)
        except (NotFound, FinoError) as exc:
            if getattr(exc, "status", 404) == 404:
                return None
            raise

    def _start_analysis(self, ctx, user_id: str, correlation: str, stamp: str) -> tuple[str, str]:
        """Start the analysis run (platform area); its correlation id and timestamp, or the upload's own when the
        platform area has no ``start_analysis`` yet."""
        start = getattr(self, "start_analysis", None)
        if start is None:
            return correlation, stamp
        run = start(ctx, user_id, trigger="upload")
        if isinstance(run, str):
            return run, stamp
        if isinstance(run, dict):
            cid = run.get("correlationID") or run.get("correlation_id") or run.get("id") or correlation
            ts = run.get("correlationTimestamp") or run.get("correlation_timestamp") or stamp
            return cid, ts
        return correlation, stamp

    # --- manual upload (section 9) --------------------------------------------------------------------------------
    def set_accounts(self, ctx, user_id):
        self._user(ctx, user_id, "banking", "banking-upload")
        prepared = self._check_set(ctx, user_id, ctx.body["accounts"])
        self._store_set(ctx, user_id, prepared)
        return {"userId": user_id}

    def update_accounts(self, ctx, user_id):
        self._user(ctx, user_id, "banking", "banking-upload")
        changes = ctx.body.get("accounts") or []
        _unique(changes, "accountId", "accounts")
        plan = []
        for raw in changes:
            aid = raw["accountId"]
            old = self._manual_account(ctx, user_id, aid, "updated")
            if raw.get("accountNumber") is not None and raw["accountNumber"] != (old.get("accountNumber") or ""):
                raise invalid(f"Account {aid}: accountNumber cannot be changed")
            patch = _pick(raw, [f for f in _ACCOUNT_FIELDS if f != "accountNumber"])
            tx_plan = self._check_tx_patches(ctx, user_id, aid, raw.get("transactions") or [])
            plan.append((aid, patch, tx_plan))
        coll = model.accounts(ctx, user_id)
        for aid, patch, tx_plan in plan:
            coll.patch(aid, patch)
            self._store_tx_patches(ctx, user_id, aid, tx_plan)
        return None

    def _check_tx_patches(self, ctx, user_id, account_id, patches: list[dict]):
        _unique(patches, "transactionId", f"account {account_id!r}")
        tcoll = model.transactions(ctx, user_id, account_id)
        plan = []
        for raw in patches:
            tid = raw["transactionId"]
            old = tcoll.get(tid)
            if old is None:
                raise not_found(f"Transaction {tid} not found in account {account_id}")
            if old.get("_source") == "bank":
                raise invalid(f"Transaction {tid} was fetched from the bank and cannot be updated")
            if raw.get("accountId") not in (None, account_id):
                raise invalid(f"Transaction {tid}: accountId cannot be changed")
            patch = _pick(raw, _TX_FIELDS)
            if "paymentPartner" in patch:
                patch["paymentPartner"] = {k: v for k, v in patch["paymentPartner"].items() if k in _PARTNER_FIELDS}
            plan.append((tid, patch))
        return plan

    def _store_tx_patches(self, ctx, user_id, account_id, plan) -> None:
        tcoll = model.transactions(ctx, user_id, account_id)
        for tid, patch in plan:
            tcoll.patch(tid, patch)

    def update_transactions(self, ctx, user_id, account_id):
        self._user(ctx, user_id, "banking", "banking-upload")
        model.load_account(ctx, user_id, account_id)
        plan = self._check_tx_patches(ctx, user_id, account_id, ctx.body.get("transactions") or [])
        self._store_tx_patches(ctx, user_id, account_id, plan)
        return None

    def add_transactions(self, ctx, user_id, account_id):
        self._user(ctx, user_id, "banking", "banking-upload")
        account = model.load_account(ctx, user_id, account_id)
        raws = ctx.body["transactions"]
        _unique(raws, "transactionId", "transactions")
        tcoll = model.transactions(ctx, user_id, account_id)
        docs = [_transaction_doc(t, account_id, account.get("currency") or "EUR") for t in raws]
        for doc in docs:
            old = tcoll.get(doc["transactionId"])
            if old is not None and old.get("_source") == "bank":
                raise invalid(f"Transaction {doc['transactionId']} was fetched from the bank and cannot be overridden")
        for doc in docs:
            tcoll.put(doc["transactionId"], doc)
        return {"transactionsAdded": len(docs)}

    def delete_transactions(self, ctx, user_id, account_id):
        self._user(ctx, user_id, "banking", "banking-upload")
        model.load_account(ctx, user_id, account_id)
        ids = list(dict.fromkeys(ctx.body.get("ids") or []))
        tcoll = model.transactions(ctx, user_id, account_id)
        for tid in ids:
            old = tcoll.get(tid)
            if old is None:
                raise not_found(f"Transaction {tid} not found in account {account_id}")
            if old.get("_source") == "bank":
                raise invalid(f"Transaction {tid} was fetched from the bank: only manually uploaded transactions "
                              f"can be deleted")
        for tid in ids:
            tcoll.delete(tid)
        return None

    def delete_accounts(self, ctx, user_id):
        self._user(ctx, user_id, "banking", "banking-upload")
        ids = list(dict.fromkeys(ctx.body.get("ids") or []))
        for aid in ids:
            self._manual_account(ctx, user_id, aid, "deleted")
        for aid in ids:
            self._drop_account(ctx, user_id, aid)
        return None

    def delete_account(self, ctx, user_id, account_id):
        self._user(ctx, user_id, "banking", "banking-upload")
        self._manual_account(ctx, user_id, account_id, "deleted")
        self._drop_account(ctx, user_id, account_id)
        return None

    def _drop_account(self, ctx, user_id, account_id) -> None:
        model.transactions(ctx, user_id, account_id).clear()
        model.accounts(ctx, user_id).delete(account_id)

    # --- reading (section 9) --------------------------------------------------------------------------------------
    def get_accounts(self, ctx, user_id):
        self._user(ctx, user_id, "banking", "banking-fetch")
        include = str(ctx.query.get("includeTransactions", "true")).lower() != "false"
        out = []
        for doc in model.accounts(ctx, user_id).iter():
            txs = None
            if include:
                txs = [render_transaction(t) for t in
                       _newest_first(self._account_transactions(ctx, user_id, doc["accountId"]))]
            out.append(render_account(doc, txs))
        return {"accounts": out}

    def get_transactions(self, ctx, user_id):
        self._user(ctx, user_id, "banking", "banking-fetch")
        q = ctx.query
        wanted = since = until = None
        if q.get("transactionIds"):
            wanted = {t for t in q["transactionIds"].split(",") if t}
            if len(wanted) > MAX_IDS:
                raise invalid(f"transactionIds: at most {MAX_IDS} ids")
        elif q.get("lastMonths"):
            now = ctx.now().astimezone(BERLIN)
            since = int(datetime.combine(add_months(now.date(), -int(q["lastMonths"])), now.timetz()).timestamp())
            until = int(now.timestamp())
        else:
            since = parse_instant(q["since"]) if q.get("since") else None
            until = parse_instant(q["until"], end_of_day=True) if q.get("until") else None
            if since is not None and until is not None and since > until:
                raise invalid("since must not be after until")
        out = []
        for account in model.accounts(ctx, user_id).iter():
            for t in self._account_transactions(ctx, user_id, account["accountId"]):
                if wanted is not None and t["transactionId"] not in wanted:
                    continue
                if since is not None and t["bookingDate"] < since or until is not None and t["bookingDate"] > until:
                    continue
                out.append(t)
        return [render_transaction(t) for t in _newest_first(out)]

    def get_account_summary_pdf(self, ctx, user_id, account_id):
        self._user(ctx, user_id, "banking", "banking-fetch")
        account = model.load_account(ctx, user_id, account_id)
        q = ctx.query
        since = parse_instant(q["since"]) if q.get("since") else None
        until = parse_instant(q["until"], end_of_day=True) if q.get("until") else None
        if since is not None and until is not None and since > until:
            raise invalid("since must not be after until")
        txs = sorted((t for t in self._account_transactions(ctx, user_id, account_id)
                      if (since is None or t["bookingDate"] >= since) and (until is None or t["bookingDate"] <= until)),
                     key=lambda t: (t["bookingDate"], t["transactionId"]))
        shown, stopped = summary_cut(txs)
        now = ctx.now()
        period = (f"{_day(since) if since is not None else (_day(txs[0]['bookingDate']) if txs else '-')} - "
                  f"{_day(shown[-1]['bookingDate']) if stopped and shown else (_day(until) if until is not None else _day(int(now.timestamp())))}")
        meta = [("Kontoinhaber", account.get("owner") or ""), ("IBAN", account.get("iban") or ""),
                ("BIC", account.get("bic") or ""), ("Bank", f"{account.get('bankName') or ''} (BLZ {account.get('bankCode') or '-'})"),
                ("Konto", f"{account.get('name') or ''} {account.get('accountNumber') or ''} ({account.get('type') or 'UNKNOWN'})"),
                ("Kontostand", f"{_amount(account.get('balance') or 0)} {account.get('currency') or 'EUR'}"),
                ("Zeitraum", period), ("Umsätze", f"{len(shown)} von {len(txs)}")]
        rows = [[_day(t["bookingDate"]), (t.get("bookingText") or "")[:24], ((t.get("paymentPartner") or {}).get("name") or "")[:28],
                 (t.get("purpose") or "")[:40], _amount(t["amount"])] for t in shown]
        pdf = render_pdf(f"Kontoübersicht {account.get('name') or account_id}", meta,
                         [("Umsätze", ["Buchung", "Buchungstext", "Partner", "Verwendungszweck", "Betrag EUR"],
                           rows)], created=now)
        headers = {"Content-Type": "application/pdf",
                   "Content-Disposition": f'inline; filename="account-summary-{account_id}.pdf"'}
        if stopped is not None:
            headers["stoppedAt"] = stopped
            return Reply(pdf, status=206, headers=headers)
        return Reply(pdf, status=200, headers=headers)

    # --- bank-fetched data (section 13; called by the connect area) ------------------------------------------------
    def materialise_bank_accounts(self, ctx, user_id: str, bank_login_id: str, ledger_or_seed_key,
                                  account_types=None, *, bank: dict | None = None, overrides: dict | None = None,
                                  months: int = 13) -> list[dict]:
        """Store a ledger's accounts as bank-fetched finoOS accounts of ``bank_login_id`` and return them (rendered,
        without transactions). ``ledger_or_seed_key``: a Ledger, or a key a ledger is generated from (a company
        ledger for company users). ``account_types`` filters by finoOS type; ``bank`` (e.g. german.FINO_BANK) moves
        the accounts to that bank; ``overrides`` replaces fields of the first GIRO (e.g. finocontext1's IBAN).
        Ids derive from the content, so materialising a later ledger of the same customer upserts: the same
        bookings keep their ids and only new ones appear."""
        user = model.load_user(ctx, user_id)
        ledger = ledger_or_seed_key
        if not isinstance(ledger, Ledger):
            ledger = self.bank_ledger(ctx, str(ledger_or_seed_key), user.get("type", "person"), months)
        docs = ledger_accounts(ctx.tenant, user_id, bank_login_id, ledger, self.sb.seed.get(), bank=bank,
                               overrides=overrides)
        wanted = set(account_types) if account_types else None
        coll = model.accounts(ctx, user_id)
        out = []
        for doc, txs in docs:
            if wanted is not None and doc["type"] not in wanted:
                continue
            tcoll = model.transactions(ctx, user_id, doc["accountId"])
            stored = coll.get(doc["accountId"])
            doc["_bankBalance"] = doc["balance"]   # as the bank reports it, before the sandbox's money transfers
            if stored is not None and stored.get("_source") == "bank":
                # a sync (section 13): only the bookings after the newest stored one are new. A regenerated ledger
                # recomputes interest over its own window, so its past bookings may differ from what was fetched
                # then; the account keeps its history and its balance moves by exactly the new bookings.
                newest = max((t["bookingDate"] for t in tcoll.iter()), default=None)
                if newest is not None:
                    txs = [t for t in txs if t["bookingDate"] > newest]
                    base = Decimal(str(stored.get("_bankBalance", stored["balance"])))
                    doc["balance"] = doc["_bankBalance"] = float(
                        base + sum((Decimal(str(t["amount"])) for t in txs), Decimal(0)))
            coll.put(doc["accountId"], doc)
            for t in txs:
                tcoll.put(t["transactionId"], t)
            out.append(render_account(doc))
        return out

    def bank_ledger(self, ctx, key: str, user_type: str = "person", months: int = 13) -> Ledger:
        """The ledger a bank login of ``key`` shows today (sandbox clock, Berlin date)."""
        today = ctx.now().astimezone(BERLIN).date()
        seed = self.sb.seed.get()
        if user_type == "company":
            return german.generate_company_ledger(seed, key, today, months=months)
        return generate_ledger(seed, key, today, market="DE", months=months)


# --- ledger -> finoOS ----------------------------------------------------------------------------------------------
def _epoch(d: date, *parts) -> int:
    """A booking instant on day ``d`` (Berlin), between 06:00 and 21:59, stable for ``parts``."""
    seconds = 6 * 3600 + stable_seed("fino-time", *parts) % (16 * 3600)
    return int(datetime.combine(d, time(0), BERLIN).timestamp()) + seconds


def ledger_accounts(tenant: str, user_id: str, bank_login_id: str, ledger: Ledger, seed: int,
                    bank: dict | None = None, overrides: dict | None = None) -> list[tuple[dict, list[dict]]]:
    """(account document, transaction documents) for every account of ``ledger`` plus the persona's static extras."""
    persona_types = german.PERSONA_TYPES.get(ledger.persona, {})
    out = []
    giro_done = False
    owner_key = f"{ledger.customer_id}"
    for acc in ledger.accounts:
        type_, name = persona_types.get(acc.kind, (german.TYPE_BY_KIND.get(acc.kind, "UNKNOWN"), acc.name))
        aid = german.fetched_account_id(tenant, user_id, bank_login_id, acc.id)
        bank_code = (bank or {}).get("code") or acc.bank_code
        iban = acc.iban or ""
        if bank and iban:
            iban = de_iban(bank_code, int(acc.number))
        number = acc.number.lstrip("0") if acc.kind != "credit_card" else acc.number
        rng = random.Random(stable_seed(seed, tenant, user_id, acc.id, "fino-account"))
        limit = float(acc.credit_limit) if acc.credit_limit is not None else 0
        dispo = rng.choice([0, 500, 1000, 2000, 3000, 5000]) if type_ == "GIRO" else 0
        doc = {"accountId": aid, "accountNumber": number, "balance": float(acc.balance), "bankCode": bank_code,
               "bankLoginId": bank_login_id, "bankName": (bank or {}).get("name") or acc.bank_name,
               "bic": (bank or {}).get("bic") or german.bic_for_blz(bank_code),
               "creditLine": limit if type_ == "KREDIT_KARTE" else float(dispo), "currency": acc.currency,
               "iban": iban, "monthlySpendingLimit": limit, "name": name,
               "overdraft": {"amount": float(dispo), "available": dispo > 0}, "owner": acc.owner_name,
               "securities": [], "standingOrders": [],
               "supportedPayments": ["SINGLE_MONEY_TRANSFER"] if type_ == "GIRO" else [], "type": type_,
               "_source": "bank", "_ledger": acc.id, "_persona": ledger.persona}
        if type_ == "GIRO" and not giro_done:
            giro_done = True
            if overrides:
                doc.update({k: v for k, v in overrides.items() if k in _ACCOUNT_FIELDS})
        doc["securities"] = [_security(aid, h, tenant, user_id, acc.id) for h in acc.holdings]
        txs = _transactions(aid, acc, doc, owner_key)
        doc["standingOrders"] = _standing_orders(aid, txs)
        out.append((doc, txs))
    for n, extra in enumerate(german.extra_accounts(ledger.persona, seed, ledger.customer_id)):
        key = f"{ledger.customer_id}-extra-{n}"
        bank_code = (bank or {}).get("code") or (ledger.accounts[0].bank_code if ledger.accounts else "10070000")
        aid = german.fetched_account_id(tenant, user_id, bank_login_id, key)
        has_iban = extra["type"] not in ("FONDSDEPOT", "DEPOT")
        doc = {"accountId": aid, "accountNumber": extra["number"], "balance": extra["cents"] / 100 * (
                   -1 if extra["type"] == "KREDIT_KONTO" else 1),
               "bankCode": bank_code, "bankLoginId": bank_login_id,
               "bankName": (bank or {}).get("name") or (ledger.accounts[0].bank_name if ledger.accounts else ""),
               "bic": (bank or {}).get("bic") or german.bic_for_blz(bank_code),
               "creditLine": extra["creditLine"] / 100, "currency": "EUR",
               "iban": de_iban(bank_code, int(extra["number"])) if has_iban else "", "monthlySpendingLimit": 0,
               "name": extra["name"], "overdraft": {"amount": 0, "available": False}, "owner": ledger.owner_name,
               "securities": [_security(aid, h, tenant, user_id, key) for h in extra["holdings"]],
               "standingOrders": [], "supportedPayments": [], "type": extra["type"], "_source": "bank",
               "_ledger": key, "_persona": ledger.persona}
        out.append((doc, []))
    return out


def _security(aid: str, h, *parts) -> dict:
    value = float(h.value)
    return {"accountId": aid, "amount": value, "amountOriginalCurrency": value, "currency": h.currency,
            "exchangeRate": 1.0, "isin": h.isin, "market": "XETRA", "name": h.name, "price": float(h.price),
            "priceCurrency": h.currency, "purchasePrice": float(h.average_price), "purchasePriceCurrency": h.currency,
            "quantity": float(h.units), "securityId": german.hex_id("security", *parts, h.isin), "wkn": german.wkn(h.isin)}


def _transactions(aid: str, acc, account: dict, owner_key: str) -> list[dict]:
    seen: Counter = Counter()
    out = []
    for t in acc.transactions:
        content = (t.booking_date.isoformat(), str(t.amount), t.description, t.counterparty)
        seen[content] += 1
        tid = german.fetched_transaction_id(aid, *content, seen[content])
        g = german.gvc(t.category, t.amount)
        partner_iban = t.counterparty_iban or ""
        partner = {"bic": german.bic_for_iban(partner_iban), "creditorId": "", "iban": partner_iban,
                   "name": t.counterparty}
        eref = mref = ""
        if g["channel"] == "dd" and t.amount < 0:
            partner["creditorId"] = german.creditor_id(t.counterparty)
            mref = german.mandate_reference(partner["creditorId"], owner_key + acc.id)
            eref = german.end_to_end_reference(tid)
        elif g["channel"] == "ct":
            eref = german.end_to_end_reference(tid)
        elif g["channel"] == "so":
            eref = "NOTPROVIDED"
        doc = {"transactionId": tid, "accountId": aid, "amount": float(t.amount),
               "bookingDate": _epoch(t.booking_date, tid), "valueDate": _epoch(t.value_date, tid),
               "bookingText": g["bookingText"], "currency": t.currency, "differentCreditor": "",
               "differentDebitor": "", "eref": eref, "mref": mref, "paymentPartner": partner,
               "purpose": t.description, "sepaPurposeCode": g["sepaPurposeCode"],
               "transactionCode": g["transactionCode"], "_source": "bank", "_category": t.category}
        if g["channel"] == "card" and t.category in german.MCC:
            doc["merchantCategoryCode"] = german.MCC[t.category]
        elif t.category == "cash_withdrawal":
            doc["merchantCategoryCode"] = german.MCC["cash_withdrawal"]
        out.append(doc)
    return out


def _standing_orders(aid: str, txs: list[dict]) -> list[dict]:
    """Standing orders behind the account's recurring GVC 117 debits (rent, savings transfers)."""
    groups: dict[tuple, list[dict]] = {}
    for t in txs:
        if t["transactionCode"] == 117 and t["amount"] < 0:
            groups.setdefault((t["paymentPartner"]["name"], t["paymentPartner"]["iban"], t["amount"]), []).append(t)
    orders = []
    for (name, iban, amount), items in sorted(groups.items()):
        if len(items) < 2:
            continue
        days = sorted(_epoch_to_berlin(t["bookingDate"]).date() for t in items)
        first, last = days[0], days[-1]
        created = datetime.combine(first - timedelta(days=5), time(10, 15, 0), timezone.utc)
        orders.append({"accountId": aid, "amount": -amount, "creationTimestamp": created.strftime("%Y-%m-%d %H:%M:%SZ"),
                       "currency": items[0]["currency"], "executionDay": Counter(d.day for d in days).most_common(1)[0][0],
                       "firstExecutionDate": first.isoformat(), "iban": iban, "interval": "MONTHLY",
                       "lastExecutionDate": last.isoformat(), "name": name, "purpose": items[0]["purpose"],
                       "standingOrderId": german.uuid_from("standing-order", aid, name, iban, amount)})
    return orders


# --- small formatting helpers ---------------------------------------------------------------------------------------
def summary_cut(txs: list[dict], limit: int = PDF_LIMIT) -> tuple[list[dict], str | None]:
    """The transactions (sorted ascending) a summary PDF holds: all if at most ``limit``; else every transaction up
    to the last Berlin day that keeps the count within ``limit``, and ``stoppedAt`` = the start of the next day
    with transactions (RFC3339, Berlin offset). A single day above the limit is cut inside the day."""
    if len(txs) <= limit:
        return txs, None
    first_out = txs[limit]
    cut_day = _epoch_to_berlin(first_out["bookingDate"]).date()
    shown = [t for t in txs[:limit] if _epoch_to_berlin(t["bookingDate"]).date() < cut_day]
    if not shown:   # one day holds more than the limit
        return txs[:limit], _epoch_to_berlin(first_out["bookingDate"]).isoformat()
    return shown, datetime.combine(cut_day, time(0), BERLIN).isoformat()


def _day(epoch: int) -> str:
    return _epoch_to_berlin(epoch).strftime("%d.%m.%Y")


def _amount(value) -> str:
    text = f"{Decimal(str(value)):,.2f}"
    return text.replace(",", "X").replace(".", ",").replace("X", ".")


def _rfc3339_ms(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _berlin_stamp(moment: datetime) -> str:
    return moment.astimezone(BERLIN).replace(microsecond=0).isoformat()


__all__ = ["Banking", "NotFound", "SCENARIOS", "ledger_accounts", "parse_instant", "render_account",
           "render_transaction", "summary_cut"]
