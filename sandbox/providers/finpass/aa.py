"""Finpass Account Aggregator (finpass.md sections 4, 9, 10, 12): consent journeys, FI data fetch, PDFs, refresh.

A consent session (``client_id`` ``aa_<8hex>_<24hex>``) is a hosted flow on core/flows.py (page ``aa_consent``:
OTP -> discovered FIP accounts -> approve / reject -> redirect to the client's ``redirect_url`` with
``client_id`` and ``status``). Approval makes the consent ACTIVE and starts an FI request: a core job
``PENDING -> READY`` (or ``DENIED`` / ``TIMEOUT`` for the scenarios) on the sandbox clock; fetch-json-report answers
202 while it runs. Reports come from the person's one ledger (people.py): the checking accounts, with the ledger's
running balances as ``transactional_balance``. ``loan_monitoring`` consents take new FI requests with
refresh-data; each request sees the ledger as of its own creation, so moving the clock brings new bookings.
Consent and FI status changes are enqueued to the init ``webhook_url`` (core outbox; delivery happens elsewhere).
"""
from __future__ import annotations

import dataclasses
import random
import re
import string
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

from flask import make_response, render_template

from ...core.clock import isoformat, parse_instant
from ...core.errors import BadRequest
from ...core.flows import FlowDefinition, FlowUsed, Next
from ...core.pdf import render_pdf
from ...core.signing import InvalidToken
from ...ledger import generate_ledger
from ...ledger.analytics import months_between
from ...ledger.generator import stable_seed
from . import data
from .errors import InvalidInput, NotFoundError, Pending, Unprocessable
from .people import IST, MONTHS, People

PROVIDER = "finpass"
CONSENT_KIND, CONSENT_PURPOSE = "aa-consent", "finpass.aa_consent"
PDF_PURPOSE = "finpass.aa_statement_pdf"
FI_KIND = "finpass.aa_fi"
SESSIONS = "finpass.aa_sessions"
SESSION_TTL = 24 * 3600          # the init session expires if the user never acts (finpass.md s.4, inferred)
PDF_LINK_TTL = 15 * 60           # statement_report_link validity (finpass.md s.4: default 15 min)
CONSENT_TYPES = ("loan_underwriting", "loan_monitoring")
CLIENT_ID_RE = re.compile(r"^(aa_[0-9a-f]{8}_[0-9a-f]{24}|account_aggregator_v2_[A-Za-z0-9_]+)$")
OTP_RE = re.compile(r"^[0-9]{6}$")
SUGGESTED_OTP = "123456"

# finpass.md section 12: AA / AA-BSA mobile numbers forcing an outcome
REJECT, STAY_PENDING, REVOKE, FETCH_FAIL, NO_ACCOUNTS, FETCH_EXPIRE, SLOW = (
    "9000000001", "9000000002", "9000000003", "9000000004", "9000000005", "9000000006", "9000000007")
SLOW_POLLS = 3
SCENARIO_EFFECTS = {
    REJECT: "the user rejects the consent (whatever they press) -> fetch 422 consent_rejected; AA-BSA consent_rejected",
    STAY_PENDING: "the consent stays PENDING even after approval -> fetch 422 consent_pending",
    REVOKE: "consent approved, then REVOKED after the first successful fetch -> later 422 consent_revoked",
    FETCH_FAIL: "the FI fetch fails (DENIED) -> 422 fetch_error; AA-BSA failed",
    NO_ACCOUNTS: "no accounts at the FIPs -> 422 account_data_not_found",
    FETCH_EXPIRE: "the FI fetch window lapses (TIMEOUT) -> 422 fetch_expired; AA-BSA expired",
    SLOW: f"slow fetch: 202 for the first {SLOW_POLLS} polls",
}
SCENARIOS: list[dict] = [
    {"kind": "AA / AA-BSA mobile_number", "value": k, "effect": v, "source": "finpass.md section 12"}
    for k, v in SCENARIO_EFFECTS.items()] + [
    {"kind": "AA consent page", "value": f"any 6-digit OTP ({SUGGESTED_OTP} suggested)",
     "effect": "OTP accepted; three malformed OTPs end the journey (consent REJECTED)"},
    {"kind": "config", "value": "SANDBOX_FINPASS_AUTO_APPROVE_SECONDS=N",
     "effect": "consents (AA and AA-BSA) approve themselves N seconds after init on the sandbox clock"},
]
# 422 per consent status (finpass.md s.4 table; EXPIRED/PAUSED codes inferred)
CONSENT_ERRORS = {
    "PENDING": ("consent_pending", "Consent is pending approval from the customer"),
    "REJECTED": ("consent_rejected", "Consent has been rejected by the customer"),
    "REVOKED": ("consent_revoked", "Consent has been revoked by the customer"),
    "EXPIRED": ("consent_expired", "Consent has expired"),
    "PAUSED": ("consent_paused", "Consent has been paused by the customer"),
}
FI_ERRORS = {"DENIED": ("fetch_error", "Account data fetch failed"),
             "TIMEOUT": ("fetch_expired", "Account data fetch has expired")}


# --------------------------------------------------------------------------------------------------- helpers

def ist(dt: datetime) -> str:
    """An instant in India Standard Time, ISO-8601 with ``+05:30`` (finpass.md s.11)."""
    return dt.astimezone(IST).isoformat(timespec="seconds")


def invalid_client_id() -> InvalidInput:
    return InvalidInput("Invalid or expired client ID provided", code="invalid_client_id")


def auto_approve_seconds(sb) -> float:
    """``FINPASS_AUTO_APPROVE_SECONDS`` (0 = off): consents approve themselves that long after init."""
    try:
        return max(0.0, float(sb.config.get("FINPASS_AUTO_APPROVE_SECONDS", 0) or 0))
    except (TypeError, ValueError):
        return 0.0


def fi_states(mobile: str) -> list[str]:
    """The FI request's job states for a mobile's scenario."""
    return ["PENDING", {FETCH_FAIL: "DENIED", FETCH_EXPIRE: "TIMEOUT"}.get(mobile, "READY")]


@lru_cache(maxsize=64)
def _fresh_ledger(seed: int, key: str, until: date, months: int):
    return generate_ledger(seed, f"finpass:{key}", until, market="IN", months=months)


def deposit_accounts(sb, tenant: str, key: str, until: date) -> list[tuple]:
    """The person's deposit (checking) accounts as of ``until``: [(account, transactions up to until)].

    The stored ledger ends at its anchor; a later ``until`` appends the bookings a ledger generated for that day
    has after the anchor, re-chaining their running balances from the stored closing balance (balance identity
    holds exactly across the seam)."""
    ledger = People(sb, tenant).ledger(key)
    extra: dict[str, list] = {}
    if until > ledger.anchor:
        months = MONTHS + len(months_between(ledger.anchor, until))
        fresh = _fresh_ledger(sb.seed.get(), key, until, months)
        extra = {a.id: [t for t in a.transactions if ledger.anchor < t.booking_date <= until]
                 for a in fresh.accounts}
    out = []
    for account in ledger.accounts:
        if account.kind != "checking":
            continue
        txns = [t for t in account.transactions if t.booking_date <= until]
        balance = txns[-1].balance_after if txns else account.opening_balance
        for n, t in enumerate(extra.get(account.id, []), 1):
            balance += t.amount
            txns.append(dataclasses.replace(t, id=f"{account.id}-x{n:05d}", balance_after=balance))
        out.append((account, txns))
    return out


def txn_mode(narration: str) -> str:
    """ReBIT transaction mode from an Indian narration (UPI, NEFT, IMPS, ATM, ... FT, OTHERS)."""
    text = narration.upper()
    for prefix, mode in (("UPI", "UPI"), ("NEFT", "NEFT"), ("IMPS", "IMPS"), ("RTGS", "RTGS"), ("ATW", "ATM"),
                         ("ATM", "ATM"), ("POS", "CARD"), ("CASH", "CASH"), ("RD INSTALLMENT", "FT"),
                         ("CC PAYMENT", "FT")):
        if text.startswith(prefix):
            return mode
    return "OTHERS"


def txn_reference(narration: str) -> str:
    found = re.search(r"\b([0-9]{9,16})\b", narration)
    return found.group(1) if found else ""


def person_profile(sb, tenant: str, key: str, mobile: str, pan: str | None, email: str | None) -> dict:
    """The AA ``profile_details`` of the person (deterministic for seed and person)."""
    people = People(sb, tenant)
    ledger = people.ledger(key)
    rng = random.Random(stable_seed(sb.seed.get(), tenant, key, "aa-profile"))
    city = rng.choice(sorted(data.MICR_CITIES))
    pincode = data.gen_pincode(rng, city)
    dob = date(rng.randint(1965, 2000), rng.randint(1, 12), rng.randint(1, 28))
    first = ledger.owner_name.split()[0].lower()
    return {"name": ledger.owner_name.upper(), "dob": dob.isoformat(), "mobile": mobile,
            "nominee": rng.choice(["REGISTERED", "NOT-REGISTERED"]),
            "landline": f"0{rng.randint(11, 99)}-{rng.randint(2000000, 7999999)}",
            "address": f"{rng.randint(1, 250)}, {rng.choice(['MG Road', 'Station Road', 'Nehru Nagar', 'Park Street', 'Linking Road'])}, {city}, PIN : {pincode}",
            "email": email or f"{first}.{rng.randint(10, 99)}@example.in",
            "pan": (pan or people.pan_of(key)).upper(), "ckyc_registered": rng.choice(["true", "false"]),
            "type": "SINGLE"}


def account_meta(sb, tenant: str, account) -> dict:
    """Static facts of one deposit account: masks, IFSC, MICR, FIP, opening date."""
    ifsc = account.bank_code if data.is_ifsc(account.bank_code) else data.gen_ifsc(random.Random(account.id))
    bank, _, fip = data.bank_of_ifsc(ifsc)
    rng = random.Random(stable_seed(sb.seed.get(), tenant, account.id, "aa-account"))
    return {"ifsc": ifsc, "bank_name": account.bank_name or bank, "fip_id": fip,
            "micr": data.micr_for_ifsc(ifsc, str(sb.seed.get())), "branch": ifsc[-5:],
            "masked": data.mask_account(account.number, 17), "masked_short": data.mask_account(account.number, 14),
            "opening_date": date(rng.randint(2008, 2019), rng.randint(1, 12), rng.randint(1, 28)).isoformat(),
            "number": account.number}


def render_transactions(txns) -> list[dict]:
    """AA ``transaction_details``: ids T000001.., signed amounts as positive numbers, balances as strings."""
    out = []
    for n, t in enumerate(txns, 1):
        day = t.booking_date
        minute = int(stable_seed(t.id) % 600)
        stamp = datetime(day.year, day.month, day.day, 9 + minute // 60, minute % 60, tzinfo=IST)
        out.append({"transaction_id": f"T{n:06d}", "amount": float(abs(t.amount)), "narration": t.description,
                    "type": "CREDIT" if t.amount > 0 else "DEBIT", "mode": txn_mode(t.description),
                    "transaction_timestamp": stamp.isoformat(timespec="seconds"),
                    "value_date": datetime(t.value_date.year, t.value_date.month, t.value_date.day,
                                           tzinfo=IST).isoformat(timespec="seconds"),
                    "reference": txn_reference(t.description), "transactional_balance": f"{t.balance_after:.2f}"})
    return out


def window(as_of: date) -> tuple[date, date]:
    """The statement window: one year up to ``as_of`` (finpass.md s.4 example 2024-07-23 .. 2025-07-23)."""
    try:
        start = as_of.replace(year=as_of.year - 1)
    except ValueError:   # 29 February
        start = as_of.replace(year=as_of.year - 1, day=28)
    return start, as_of


# --------------------------------------------------------------------------------------------------- the page

def error_page(reason: str) -> str:
    message = {"expired": "This consent link is invalid or has expired.",
               "used": "This consent request has already been completed."}.get(reason, "This link cannot be used.")
    return render_template("aa_error.html", message=message)


class ConsentFlow(FlowDefinition):
    """The simulated AA consent screen (finpass.md s.10), shared by AA and AA-BSA journeys.

    Form fields: hidden ``client_id`` and ``step``; step ``otp``: ``otp`` (any 6 digits); step ``accounts``:
    ``accounts`` (repeatable, discovered account refs) and the ``approve`` button. ``reject`` rejects at any step.
    Subclasses say what approval and rejection do (``apply``) and which status the redirect carries."""

    id_field = "client_id"
    cancel_field = "reject"
    list_fields = ("accounts",)
    template = "aa_consent.html"
    title = "Share your bank account data"

    def __init__(self, flows, service):
        super().__init__(flows)
        self.service = service

    # --- to override ----------------------------------------------------------------------------------------
    def discovered(self, tenant: str, flow: dict) -> list[dict]:
        """FIP accounts discovered for the flow's mobile number: [{ref, fip_id, bank_name, masked, type}]."""
        if flow["mobile_number"] == NO_ACCOUNTS:
            return []
        until = self.flows.clock.now(tenant).astimezone(IST).date()
        out = []
        for account, _ in deposit_accounts(self.service.sb, tenant, flow["person"], until):
            meta = account_meta(self.service.sb, tenant, account)
            out.append({"ref": account.id, "fip_id": meta["fip_id"], "bank_name": meta["bank_name"],
                        "masked": meta["masked_short"], "type": "SAVINGS", "ifsc": meta["ifsc"]})
        return out

    def on_otp(self, tenant: str, flow: dict) -> None:
        """The mobile number was verified (AA-BSA: the journey becomes consent_pending)."""

    def decision(self, flow: dict, outcome: str) -> str:
        """The status the redirect carries for ``outcome`` (scenarios force theirs)."""
        raise NotImplementedError

    def apply(self, tenant: str, flow: dict, outcome: str, status: str, result: dict) -> None:
        """Side effects of the decision (store the consent status, start the fetch, enqueue webhooks)."""
        raise NotImplementedError

    # --- page -------------------------------------------------------------------------------------------------
    def render(self, ctx, tenant, flow, error):
        accounts = self.discovered(tenant, flow) if flow["step"] == "accounts" else []
        return render_template(self.template, flow=flow, step=flow["step"], error=error, accounts=accounts,
                               title=self.title, mobile=data.mask_mobile(flow["mobile_number"]),
                               attempts_left=self.attempts_left(flow, "otp"), suggested_otp=SUGGESTED_OTP)

    def render_done(self, ctx, tenant, flow):
        return render_template("aa_error.html", message=f"Consent journey finished: {flow.get('final_status')}",
                               done=True, status=flow.get("final_status"))

    # --- steps ------------------------------------------------------------------------------------------------
    def step_otp(self, tenant, flow, form):
        if not OTP_RE.match(form.get("otp", "").strip()):
            if self.attempt(flow, "otp"):
                return Next.finish("error", reason="wrong_otp")
            return Next.stay("wrong_otp")
        flow["otp_verified"] = True
        self.on_otp(tenant, flow)
        return Next.goto("accounts")

    def step_accounts(self, tenant, flow, form):
        if "approve" not in form:
            return Next.stay()
        offered = [a["ref"] for a in self.discovered(tenant, flow)]
        chosen = [a for a in form.get("accounts", []) if a in offered]
        if offered and not chosen:
            return Next.stay("choose_account")
        return Next.finish("success", accounts=chosen)

    def cancel(self, tenant, flow, form):
        return Next.finish("cancel")

    # --- outcomes ---------------------------------------------------------------------------------------------
    def succeed(self, tenant, flow, options):
        """Control API: approve with ``accounts`` (discovered refs; default all of them)."""
        offered = [a["ref"] for a in self.discovered(tenant, flow)]
        wanted = options.get("accounts")
        if wanted is None:
            return {"accounts": offered}
        if isinstance(wanted, str):
            wanted = [wanted]
        if not isinstance(wanted, list) or any(a not in offered for a in wanted):
            raise BadRequest(f"accounts must be a list of the discovered account refs {offered}")
        return {"accounts": wanted}

    def end(self, tenant, flow, outcome, **result):
        status = self.decision(flow, outcome)
        flow["final_status"] = status
        flow["chosen_accounts"] = result.get("accounts", [])
        url = super().end(tenant, flow, outcome, status=status, **result)
        self.apply(tenant, flow, outcome, status, result)
        return url

    def redirect_params(self, flow, outcome, result):
        # finpass.md s.10 (inferred query): ?client_id=...&status=<consent status>
        return [("client_id", flow["id"]), ("status", result["status"])]

    def auto_approve(self, tenant: str, flow: dict) -> bool:
        """Approve a pending flow whose auto-approve moment has come (FINPASS_AUTO_APPROVE_SECONDS)."""
        seconds = auto_approve_seconds(self.service.sb)
        if not seconds or flow["status"] != "PENDING":
            return False
        due = parse_instant(flow["created_at"]) + timedelta(seconds=seconds)
        if self.flows.clock.now(tenant) < due or due >= parse_instant(flow["expires_at"]):
            return False
        try:
            self.end(tenant, flow, "success", **self.succeed(tenant, flow, {}))
        except FlowUsed:
            pass
        return True


class AAConsentFlow(ConsentFlow):
    def decision(self, flow, outcome):
        if outcome != "success" or flow["mobile_number"] == REJECT:
            return "REJECTED"
        return "PENDING" if flow["mobile_number"] == STAY_PENDING else "ACTIVE"

    def apply(self, tenant, flow, outcome, status, result):
        self.service._aa_decided(tenant, flow["id"], status, result.get("accounts", []))


def aa_consent_page(ctx, client_id: str):
    return ctx.sandbox.flows.serve(ctx, CONSENT_PURPOSE, token=ctx.request.args.get("token"),
                                   error_page=error_page, flow_id=client_id)


def _pdf_denied(message: str, status: int = 403):
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            f"<Message>{message}</Message></Error>")
    response = make_response(body, status)
    response.mimetype = "application/xml"
    return response


def aa_statement_pdf_page(ctx, client_id: str, report_no: str):
    """The pre-signed statement PDF (finpass.md s.10): 403 once the link expired or when it was tampered with."""
    sb = ctx.sandbox
    try:
        claims = sb.signer.decode(ctx.request.args.get("token"), PDF_PURPOSE)
        tenant = claims["tenant"]
        if claims["client_id"] != client_id or str(claims["report_no"]) != str(report_no):
            raise InvalidToken("path mismatch")
    except (InvalidToken, KeyError, TypeError):
        return _pdf_denied("Invalid signature")
    try:
        sb.signer.decode(ctx.request.args.get("token"), PDF_PURPOSE, now=sb.clock.now(tenant))
    except InvalidToken:
        return _pdf_denied("Request has expired")
    ctx.tenant = tenant
    body = ctx.service._aa_statement_pdf(tenant, client_id, claims["request"], int(report_no))
    if body is None:
        return _pdf_denied("The specified key does not exist.", 404)
    response = make_response(body, 200)
    response.mimetype = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{client_id}_{report_no}.pdf"'
    return response


# --------------------------------------------------------------------------------------------------- the service

class AccountAggregator:
    """``aa_init``, ``aa_fetch_json_report``, ``aa_fetch_pdf_report``, ``aa_refresh_data`` (finpass.md s.4)."""

    def setup(self) -> None:
        """Register the consent flow, the FI job kind (2 s / 2 polls) and its webhook hook."""
        self.sb.flows.register(PROVIDER, CONSENT_KIND, AAConsentFlow(self.sb.flows, self))
        self.sb.jobs.register_default(FI_KIND, {"mode": "auto", "seconds": 2.0, "polls": 2})
        self.sb.jobs.on_transition(FI_KIND, self._aa_fi_transition)

    # --- operations -------------------------------------------------------------------------------------------
    def aa_init(self, ctx) -> dict:
        body = ctx.body
        mobile, consent_type = body["mobile_number"], body["consent_type"]
        if not data.is_mobile(mobile):
            raise InvalidInput("Invalid mobile number. Expected a 10-digit Indian mobile number",
                               code="invalid_mobile_number")
        if consent_type not in CONSENT_TYPES:
            raise InvalidInput("Invalid consent_type. Expected loan_underwriting or loan_monitoring",
                               code="invalid_consent_type")
        pan = body.get("pan_number") or body.get("pan")
        if pan is not None and not data.is_pan(pan):
            raise InvalidInput("Invalid PAN format. Expected format: ABCDE1234F", code="invalid_pan")
        pan = pan.strip().upper() if pan else None
        tenant, now = ctx.tenant, ctx.now()
        rng = self.sb.ids.rng(tenant, "finpass.aa_client")
        client_id = f"aa_{data.hex_id(rng, 8)}_{data.hex_id(rng, 24)}"
        person = People(self.sb, tenant).key(mobile, pan)
        session = {"id": client_id, "client_id": client_id, "mobile_number": mobile, "pan_number": pan,
                   "email_id": body.get("email"), "consent_type": consent_type, "webhook_url": body.get("webhook_url"),
                   "return_url": body.get("redirect_url"), "person": person, "consent_status": "PENDING",
                   "created_at": isoformat(now), "updated_at": isoformat(now), "accounts": [], "requests": {},
                   "default_request": None, "revoke_after_fetch": mobile == REVOKE}
        self.sb.collection(tenant, SESSIONS).put(client_id, session)
        _, token = self.sb.flows.create(
            tenant, PROVIDER, CONSENT_KIND, flow_id=client_id, redirect_uri=body.get("redirect_url"),
            data={"mobile_number": mobile, "person": person, "family": "aa"}, ttl=SESSION_TTL, first_step="otp",
            purpose=CONSENT_PURPOSE)
        return _ok({"client_id": client_id, "mobile_number": mobile, "pan_number": pan,
                    "email_id": body.get("email"),
                    "redirect_url": ctx.url_for("aa_consent", client_id=client_id, token=token)})

    def aa_fetch_json_report(self, ctx) -> dict:
        tenant = ctx.tenant
        session, request_key, request = self._aa_ready_request(ctx)
        as_of = parse_instant(request["as_of"])
        report = []
        for account, txns in deposit_accounts(self.sb, tenant, session["person"], as_of.astimezone(IST).date()):
            if account.id not in session["accounts"]:
                continue
            report.append(self._aa_account_json(tenant, session, account, txns, as_of))
        self._aa_after_fetch(tenant, session)
        return _ok({"client_id": session["client_id"], "account_aggregator_json": report})

    def aa_fetch_pdf_report(self, ctx) -> dict:
        tenant = ctx.tenant
        session, request_key, request = self._aa_ready_request(ctx)
        as_of = parse_instant(request["as_of"])
        exp = int((ctx.now() + timedelta(seconds=PDF_LINK_TTL)).timestamp())
        reports = []
        accounts = deposit_accounts(self.sb, tenant, session["person"], as_of.astimezone(IST).date())
        for n, (account, _) in enumerate([a for a in accounts if a[0].id in session["accounts"]], 1):
            meta = account_meta(self.sb, tenant, account)
            token = self.sb.signer.encode({"tenant": tenant, "client_id": session["client_id"], "report_no": n,
                                           "request": request_key, "exp": exp}, PDF_PURPOSE)
            reports.append({"fip_id": meta["fip_id"], "account_number": meta["masked_short"], "status": "READY",
                            "statement_report_link": ctx.url_for("aa_statement_pdf", client_id=session["client_id"],
                                                                 report_no=n, token=token)})
        self._aa_after_fetch(tenant, session)
        return _ok({"client_id": session["client_id"], "reports": reports})

    def aa_refresh_data(self, ctx) -> dict:
        tenant = ctx.tenant
        session = self._aa_session(tenant, ctx.body["client_id"])
        if session["consent_type"] != "loan_monitoring" or session["consent_status"] != "ACTIVE":
            raise Unprocessable("Consent is not active for periodic data refresh (loan_monitoring)",
                                code="consent_not_active")
        rng = self.sb.ids.rng(tenant, "finpass.aa_request")
        request_id = ("account_aggregator_v2_" + "".join(rng.choice(string.ascii_letters) for _ in range(20))
                      + "_" + "".join(rng.choice(string.ascii_letters) for _ in range(8)))
        self._aa_start_request(tenant, session["client_id"], request_id)
        return _ok({"request_id": request_id})

    # --- consent state ----------------------------------------------------------------------------------------
    def _aa_sessions(self, tenant: str):
        return self.sb.collection(tenant, SESSIONS)

    def _aa_session(self, tenant: str, client_id) -> dict:
        """Load-or-raise (400 malformed id, 404 unknown or another key pair's), then settle time-driven changes."""
        if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
            raise invalid_client_id()
        session = self._aa_sessions(tenant).get(client_id)
        if session is None:
            raise NotFoundError("Client not found", code="client_not_found")
        if session["consent_status"] == "PENDING":
            flow = self.sb.flows.get(tenant, PROVIDER, client_id)
            definition = self.sb.flows.definition(PROVIDER, CONSENT_KIND)
            if definition.auto_approve(tenant, flow):
                session = self._aa_sessions(tenant).get(client_id)
            elif flow["status"] == "PENDING" and self.sb.flows.expired(tenant, flow):
                session = self._aa_set_status(tenant, client_id, "EXPIRED")
        return session

    def _aa_decided(self, tenant: str, client_id: str, status: str, accounts: list[str]) -> None:
        """The consent journey ended with ``status``; ACTIVE starts the first FI request."""
        def write(doc):
            doc["accounts"] = list(accounts)
            return doc
        self._aa_sessions(tenant).update(client_id, write)
        if status == "PENDING":
            return   # scenario 9000000002: the approval never lands
        self._aa_set_status(tenant, client_id, status)
        if status == "ACTIVE":
            self._aa_start_request(tenant, client_id, None)

    def _aa_set_status(self, tenant: str, client_id: str, status: str) -> dict:
        now = self.sb.clock.now(tenant)
        session = self._aa_sessions(tenant).patch(client_id, {"consent_status": status, "updated_at": isoformat(now)})
        self._aa_notify(tenant, session, None, None)
        return session

    def _aa_start_request(self, tenant: str, client_id: str, request_id: str | None) -> None:
        session = self._aa_sessions(tenant).get(client_id)
        job = self.sb.jobs.create(tenant, FI_KIND, fi_states(session["mobile_number"]), owner=client_id,
                                  data={"client_id": client_id, "request_id": request_id})
        now = self.sb.clock.now(tenant)
        key = request_id or "_default"
        holder = {"job_id": job["id"], "as_of": isoformat(now), "created_at": isoformat(now), "polls": 0}

        def write(doc):
            doc["requests"][key] = holder
            if request_id is None:
                doc["default_request"] = key
            return doc
        self._aa_sessions(tenant).update(client_id, write)

    def _aa_ready_request(self, ctx) -> tuple[dict, str, dict]:
        """The checks every fetch makes, in order: client id, request id, consent status, FI request, readiness."""
        tenant, body = ctx.tenant, ctx.body
        session = self._aa_session(tenant, body["client_id"])
        request_id = body.get("request_id")
        if session["consent_type"] == "loan_monitoring" and not request_id:
            raise InvalidInput("request_id is required for loan_monitoring consent", code="request_id_required")
        if session["consent_status"] != "ACTIVE":
            code, message = CONSENT_ERRORS[session["consent_status"]]
            raise Unprocessable(message, code=code)
        key = request_id or session["default_request"]
        request = session["requests"].get(key) if key else None
        if request is None:
            raise Unprocessable("No financial information request found", code="no_fi_request_found")

        def count(doc):
            doc["requests"][key]["polls"] += 1
            return doc
        polls = self._aa_sessions(tenant).update(session["client_id"], count)["requests"][key]["polls"]
        pending = Pending("Data fetch in progress, please retry after some time",
                          data={"client_id": session["client_id"], "status": "PENDING"})
        if session["mobile_number"] == SLOW and polls <= SLOW_POLLS:
            self.sb.jobs.get(tenant, request["job_id"])
            raise pending
        job = self.sb.jobs.poll(tenant, request["job_id"])
        if session["mobile_number"] == SLOW and job["state"] == "PENDING":
            job = self.sb.jobs.complete(tenant, request["job_id"])
        if job["state"] == "PENDING":
            raise pending
        if job["state"] in FI_ERRORS:
            code, message = FI_ERRORS[job["state"]]
            raise Unprocessable(message, code=code)
        if session["mobile_number"] == NO_ACCOUNTS or not session["accounts"]:
            raise Unprocessable("No account data found for this consent", code="account_data_not_found")
        # the data is as of the moment the FIP delivered it (the FI request's completion)
        request = {**request, "as_of": job.get("step_since") or request["as_of"]}
        return session, key, request

    def _aa_after_fetch(self, tenant: str, session: dict) -> None:
        if session.get("revoke_after_fetch") and session["consent_status"] == "ACTIVE":
            self._aa_set_status(tenant, session["client_id"], "REVOKED")

    def _aa_fi_transition(self, tenant: str, job: dict, state: str) -> None:
        session = self._aa_sessions(tenant).get(job["data"]["client_id"])
        if session is not None and state != "PENDING":
            self._aa_notify(tenant, session, state, job["data"].get("request_id"))

    def _aa_notify(self, tenant: str, session: dict, fi_status: str | None, request_id: str | None) -> None:
        """Consent-status webhook (finpass.md s.9), enqueued only: the outbox delivers it."""
        if not session.get("webhook_url"):
            return
        payload = {"client_id": session["client_id"], "consent_status": session["consent_status"],
                   "fi_status": fi_status, "consent_type": session["consent_type"], "request_id": request_id,
                   "updated_at": ist(self.sb.clock.now(tenant))}
        self.sb.webhooks.enqueue(tenant, PROVIDER, "aa.consent_status", session["webhook_url"], payload,
                                 owner=session["client_id"])

    # --- rendering --------------------------------------------------------------------------------------------
    def _aa_account_json(self, tenant: str, session: dict, account, txns, as_of: datetime) -> dict:
        meta = account_meta(self.sb, tenant, account)
        start, end = window(as_of.astimezone(IST).date())
        shown = [t for t in txns if start < t.booking_date <= end]
        balance = txns[-1].balance_after if txns else account.opening_balance
        profile = person_profile(self.sb, tenant, session["person"], session["mobile_number"],
                                 session.get("pan_number"), session.get("email_id"))
        return {
            "account_id": str(_uuid(self.sb.seed.get(), tenant, account.id)),
            "status": "READY",
            "profile_details": profile,
            "summary_details": {
                "branch": meta["branch"], "facility": "NO_FACILITY_GRANTED", "micr_code": meta["micr"],
                "opening_date": meta["opening_date"], "current_od_limit": "0.00",
                "drawing_limit": f"{max(balance, 0):.2f}", "status": "ACTIVE", "account_type": "",
                "account_sub_type": "SAVINGS", "ifsc": meta["ifsc"], "current_balance": f"{balance:.2f}",
                "currency": "INR", "balance_date_time": ist(as_of)},
            "transaction_data": {"transaction_details": render_transactions(shown), "start_date": start.isoformat(),
                                 "end_date": end.isoformat()},
            "transaction_type": "deposit",
            "masked_account_number": meta["masked"],
        }

    def _aa_statement_pdf(self, tenant: str, client_id: str, request_key: str, report_no: int) -> bytes | None:
        session = self._aa_sessions(tenant).get(client_id)
        if session is None or request_key not in session["requests"]:
            return None
        job = self.sb.jobs.peek(tenant, session["requests"][request_key]["job_id"])
        as_of = parse_instant(job.get("step_since") if job else session["requests"][request_key]["as_of"])
        chosen = [a for a in deposit_accounts(self.sb, tenant, session["person"], as_of.astimezone(IST).date())
                  if a[0].id in session["accounts"]]
        if not 1 <= report_no <= len(chosen):
            return None
        account, txns = chosen[report_no - 1]
        doc = self._aa_account_json(tenant, session, account, txns, as_of)
        summary, profile = doc["summary_details"], doc["profile_details"]
        rows = [[t["transaction_timestamp"][:10], t["narration"][:38], t["type"], f"{t['amount']:.2f}",
                 t["transactional_balance"]] for t in doc["transaction_data"]["transaction_details"]]
        meta = [("Account holder", profile["name"]), ("Account", doc["masked_account_number"]),
                ("Bank", account_meta(self.sb, tenant, account)["bank_name"]), ("IFSC", summary["ifsc"]),
                ("MICR", summary["micr_code"]),
                ("Period", f"{doc['transaction_data']['start_date']} to {doc['transaction_data']['end_date']}"),
                ("Current balance", f"INR {summary['current_balance']}"), ("Consent", client_id)]
        return render_pdf("Account statement (Account Aggregator)", meta,
                          [("Transactions", ["Date", "Narration", "Type", "Amount", "Balance"], rows)],
                          as_of.replace(tzinfo=timezone.utc) if as_of.tzinfo is None else as_of)


def _uuid(*parts):
    import uuid
    return uuid.UUID(int=stable_seed(*parts, "hi") << 64 | stable_seed(*parts, "lo"), version=4)


def _ok(payload) -> dict:
    """Style A success envelope (finpass.md s.3)."""
    return {"data": payload, "status_code": 200, "success": True, "message": "Success", "message_code": "success"}


__all__ = ["AccountAggregator", "ConsentFlow", "SCENARIOS", "aa_consent_page", "aa_statement_pdf_page"]
