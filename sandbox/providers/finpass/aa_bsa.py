"""Finpass AA-BSA journey (finpass.md section 8 "AA-BSA journey", s.9, s.10, s.12): an AA consent journey whose
fetched statements are analysed.

Journey states: ``initiated`` -> (mobile verified on the page) ``consent_pending`` -> (approved) a core job
``consent_granted -> data_fetched -> analysis_in_progress -> analysis_complete`` on the sandbox clock; terminal
failures ``consent_rejected``, ``failed``, ``expired``. The statement result and the analysis JSON come from the same
transactions of the person's ledger (people.py); the analysis uses sandbox/ledger/analytics.py (balance history,
months). Status changes are enqueued to ``webhook_url`` when the client gave one.
"""
from __future__ import annotations

import re
import statistics
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from ...core.clock import isoformat, parse_instant
from ...ledger.analytics import balance_history, month_key, month_label, months_between
from . import data
from .aa import (CONSENT_TYPES, FETCH_EXPIRE, FETCH_FAIL, IST, NO_ACCOUNTS, REJECT, SESSION_TTL, SLOW, SLOW_POLLS,
                 STAY_PENDING, ConsentFlow, _uuid, account_meta, deposit_accounts, error_page, ist, txn_mode,
                 txn_reference, window)
from .errors import InvalidInput, NotFoundError, NotReady
from .people import People

PROVIDER = "finpass"
JOURNEY_KIND, JOURNEY_PURPOSE = "aa-bsa-journey", "finpass.aa_bsa_journey"
JOB_KIND = "finpass.aa_bsa"
JOURNEYS = "finpass.aa_bsa_journeys"
DEFAULT_URL = "https://finpass.ai/"
CLIENT_ID_RE = re.compile(r"^bsa_clnt_[0-9a-f]{12}$")
PIPELINE = ["consent_granted", "data_fetched", "analysis_in_progress", "analysis_complete"]
FINAL_FAILURES = ("consent_rejected", "failed", "expired")
INCOME_CATEGORIES = ("salary", "pension", "freelance", "benefits")
SALARY_CATEGORIES = ("salary", "pension")
EMI_CATEGORIES = ("loan_repayment", "mortgage")
BOUNCE_RE = re.compile(r"\b(RETURN|RTN|BOUNCE|DISHONOUR)", re.IGNORECASE)
REVERSAL_RE = re.compile(r"\bREV(ERSAL)?\b", re.IGNORECASE)
STRESS_DAYS, STRESS_SHARE, STRESS_MONTHS = 5, Decimal("0.20"), 3
CENT = Decimal("0.01")

SCENARIOS: list[dict] = [
    {"kind": "AA-BSA mobile_number", "value": "9000000001 .. 9000000007",
     "effect": "as for AA (see the AA rows): 1 consent_rejected, 2 stays consent_pending, 4/5 failed, 6 expired, "
               f"7 stays consent_granted for the first {SLOW_POLLS} status polls",
     "source": "finpass.md section 12"},
]


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT, ROUND_HALF_UP))


def job_states(mobile: str) -> list[str]:
    if mobile in (FETCH_FAIL, NO_ACCOUNTS):
        return ["consent_granted", "failed"]
    if mobile == FETCH_EXPIRE:
        return ["consent_granted", "expired"]
    return list(PIPELINE)


class JourneyFlow(ConsentFlow):
    """The AA-BSA journey page: the same consent screen, driving the journey's status machine."""

    template = "aa_bsa_journey.html"
    title = "Share your bank statements for analysis"

    def on_otp(self, tenant, flow):
        self.service._bsa_patch(tenant, flow["id"], status="consent_pending")

    def decision(self, flow, outcome):
        if outcome != "success" or flow["mobile_number"] == REJECT:
            return "consent_rejected"
        return "consent_pending" if flow["mobile_number"] == STAY_PENDING else "consent_granted"

    def apply(self, tenant, flow, outcome, status, result):
        self.service._bsa_decided(tenant, flow["id"], status, result.get("accounts", []))


def aa_bsa_journey_page(ctx, client_id: str):
    return ctx.sandbox.flows.serve(ctx, JOURNEY_PURPOSE, token=ctx.request.args.get("token"),
                                   error_page=error_page, flow_id=client_id)


class AABSAJourney:
    """``aa_bsa_init``, ``aa_bsa_status``, ``aa_bsa_statement_result``, ``aa_bsa_analysis_json`` (finpass.md s.8)."""

    def setup(self) -> None:
        """Register the journey flow, the pipeline job kind (one step per 2 s or per poll) and its webhook hook."""
        self.sb.flows.register(PROVIDER, JOURNEY_KIND, JourneyFlow(self.sb.flows, self))
        self.sb.jobs.register_default(JOB_KIND, {"mode": "auto", "seconds": 2.0, "polls": 1})
        self.sb.jobs.on_transition(JOB_KIND, self._bsa_transition)

    # --- operations -------------------------------------------------------------------------------------------
    def aa_bsa_init(self, ctx) -> dict:
        body = ctx.body
        mobile = body["mobile_number"]
        if not data.is_mobile(mobile):
            raise InvalidInput("Invalid mobile number. Expected a 10-digit Indian mobile number starting with 6-9")
        consent_type = body.get("consent_type") or "loan_underwriting"
        if consent_type not in CONSENT_TYPES:
            raise InvalidInput("Invalid consent_type. Expected loan_underwriting or loan_monitoring")
        tenant, now = ctx.tenant, ctx.now()
        client_id = f"bsa_clnt_{data.hex_id(self.sb.ids.rng(tenant, 'finpass.aa_bsa_client'), 12)}"
        person = People(self.sb, tenant).key(mobile)
        redirect_url = body.get("redirect_url") or DEFAULT_URL
        flow, token = self.sb.flows.create(
            tenant, PROVIDER, JOURNEY_KIND, flow_id=client_id, redirect_uri=redirect_url,
            data={"mobile_number": mobile, "person": person, "family": "aa_bsa"}, ttl=SESSION_TTL,
            first_step="otp", purpose=JOURNEY_PURPOSE)
        journey = {"id": client_id, "client_id": client_id, "mobile_number": mobile, "consent_type": consent_type,
                   "redirect_url": redirect_url, "webhook_url": body.get("webhook_url") or DEFAULT_URL,
                   "notify": bool(body.get("webhook_url")), "person": person, "status": "initiated",
                   "created_at": isoformat(now), "updated_at": isoformat(now), "expires_at": flow["expires_at"],
                   "job_id": None, "polls": 0, "accounts": [], "as_of": None}
        self._bsa_journeys(tenant).put(client_id, journey)
        return {"success": True, "message": "AA BSA journey initiated successfully",
                "data": {"client_id": client_id,
                         "journey_url": ctx.url_for("aa_bsa_journey", client_id=client_id, token=token),
                         "status": "initiated", "consent_type": consent_type,
                         "expires_at": ist(parse_instant(flow["expires_at"]))}}

    def aa_bsa_status(self, ctx) -> dict:
        journey = self._bsa_journey(ctx.tenant, self._bsa_param(ctx), poll=True)
        return {"success": True, "message": "Journey status fetched successfully",
                "data": self._bsa_status_data(journey)}

    def aa_bsa_statement_result(self, ctx) -> dict:
        journey = self._bsa_complete(ctx)
        accounts = [self._bsa_account(ctx.tenant, journey, a, t, o) for a, t, o in self._bsa_data(ctx.tenant, journey)]
        return {"success": True, "message": "Statement result fetched successfully",
                "data": {"client_id": journey["client_id"], "accounts": accounts}}

    def aa_bsa_analysis_json(self, ctx) -> dict:
        journey = self._bsa_complete(ctx)
        start, end = window(parse_instant(journey["as_of"]).astimezone(IST).date())
        analysis = analyse(self._bsa_data(ctx.tenant, journey), start, end)
        return {"success": True, "message": "Analysis fetched successfully",
                "data": {"client_id": journey["client_id"], **analysis}}

    # --- state ------------------------------------------------------------------------------------------------
    def _bsa_journeys(self, tenant: str):
        return self.sb.collection(tenant, JOURNEYS)

    @staticmethod
    def _bsa_param(ctx):
        params = ctx.body if ctx.body else ctx.query
        client_id = (params or {}).get("client_id")
        if not client_id:
            raise InvalidInput("client_id is required")
        return client_id

    def _bsa_patch(self, tenant: str, client_id: str, **changes) -> dict:
        now = self.sb.clock.now(tenant)
        journey = self._bsa_journeys(tenant).patch(client_id, {**changes, "updated_at": isoformat(now)})
        if "status" in changes:
            self._bsa_notify(tenant, journey)
        return journey

    def _bsa_journey(self, tenant: str, client_id, poll: bool = False) -> dict:
        """Load-or-raise (400 malformed, 404 unknown/foreign), then apply auto-approval, expiry and the pipeline."""
        if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
            raise InvalidInput("Invalid client_id format. Expected bsa_clnt_<12 hex>")
        journey = self._bsa_journeys(tenant).get(client_id)
        if journey is None:
            raise NotFoundError("Journey not found for this client_id")
        if journey["job_id"] is None and journey["status"] in ("initiated", "consent_pending"):
            flow = self.sb.flows.get(tenant, PROVIDER, client_id)
            definition = self.sb.flows.definition(PROVIDER, JOURNEY_KIND)
            if definition.auto_approve(tenant, flow):
                journey = self._bsa_journeys(tenant).get(client_id)
            elif flow["status"] == "PENDING" and self.sb.flows.expired(tenant, flow):
                journey = self._bsa_patch(tenant, client_id, status="expired")
        if journey["job_id"] is None:
            return journey
        if journey["mobile_number"] == SLOW and poll:
            polls = self._bsa_journeys(tenant).update(client_id, lambda d: {**d, "polls": d["polls"] + 1})["polls"]
            job = self.sb.jobs.peek(tenant, journey["job_id"])
            if polls > SLOW_POLLS and job["step"] in job["holds"]:
                self.sb.jobs.resume(tenant, journey["job_id"])
        job = self.sb.jobs.poll(tenant, journey["job_id"]) if poll else self.sb.jobs.get(tenant, journey["job_id"])
        return self._bsa_journeys(tenant).get(client_id) if job["state"] != journey["status"] else journey

    def _bsa_complete(self, ctx) -> dict:
        journey = self._bsa_journey(ctx.tenant, self._bsa_param(ctx))
        if journey["status"] != "analysis_complete":
            raise NotReady(f"Analysis not ready: journey status is {journey['status']}", code="analysis_not_ready",
                           error_code="ANALYSIS_NOT_READY")
        return journey

    def _bsa_decided(self, tenant: str, client_id: str, status: str, accounts: list[str]) -> None:
        if status != "consent_granted":
            self._bsa_patch(tenant, client_id, status=status, accounts=accounts)
            return
        now = self.sb.clock.now(tenant)
        journey = self._bsa_patch(tenant, client_id, accounts=accounts, as_of=isoformat(now))
        mobile = journey["mobile_number"]
        job = self.sb.jobs.create(tenant, JOB_KIND, job_states(mobile), owner=client_id,
                                  data={"client_id": client_id}, holds=[0] if mobile == SLOW else None)
        current = self._bsa_journeys(tenant).get(client_id)["status"]
        changes = {"job_id": job["id"]} if current == job["state"] else {"job_id": job["id"], "status": job["state"]}
        self._bsa_patch(tenant, client_id, **changes)

    def _bsa_transition(self, tenant: str, job: dict, state: str) -> None:
        client_id = job["data"]["client_id"]
        if self._bsa_journeys(tenant).get(client_id) is None:
            return
        changes = {"status": state}
        if state == "failed":
            no_accounts = self._bsa_journeys(tenant).get(client_id)["mobile_number"] == NO_ACCOUNTS
            changes["error_message"] = ("No account data found for this consent" if no_accounts
                                        else "Account data fetch failed")
        self._bsa_patch(tenant, client_id, **changes)

    def _bsa_status_data(self, journey: dict) -> dict:
        return {"client_id": journey["client_id"], "status": journey["status"],
                "consent_type": journey["consent_type"], "mobile_number": data.mask_mobile(journey["mobile_number"]),
                "updated_at": ist(parse_instant(journey["updated_at"]))}

    def _bsa_notify(self, tenant: str, journey: dict) -> None:
        """Journey-status webhook (finpass.md s.9: same as the status data), enqueued only."""
        if journey.get("notify"):
            self.sb.webhooks.enqueue(tenant, PROVIDER, "aa_bsa.status", journey["webhook_url"],
                                     self._bsa_status_data(journey), owner=journey["client_id"])

    # --- data -------------------------------------------------------------------------------------------------
    def _bsa_data(self, tenant: str, journey: dict) -> list[tuple]:
        """[(account, transactions in the statement window, opening balance)] of the approved accounts."""
        as_of = parse_instant(journey["as_of"]).astimezone(IST).date()
        start, end = window(as_of)
        out = []
        for account, txns in deposit_accounts(self.sb, tenant, journey["person"], as_of):
            if account.id not in journey["accounts"]:
                continue
            before = [t for t in txns if t.booking_date <= start]
            opening = before[-1].balance_after if before else account.opening_balance
            out.append((account, [t for t in txns if start < t.booking_date <= end], opening))
        return out

    def _bsa_account(self, tenant: str, journey: dict, account, txns, opening: Decimal) -> dict:
        meta = account_meta(self.sb, tenant, account)
        start, end = window(parse_instant(journey["as_of"]).astimezone(IST).date())
        closing = txns[-1].balance_after if txns else opening
        return {"account_id": str(_uuid(self.sb.seed.get(), tenant, account.id)),
                "account_number": meta["masked_short"], "ifsc": meta["ifsc"], "bank_name": meta["bank_name"],
                "account_type": "Savings", "holder_name": account.owner_name, "opening_balance": _money(opening),
                "closing_balance": _money(closing), "statement_from": (start + timedelta(days=1)).isoformat(),
                "statement_to": end.isoformat(),
                "transactions": [{"date": t.booking_date.isoformat(), "narration": t.description,
                                  "amount": _money(abs(t.amount)), "type": "CREDIT" if t.amount > 0 else "DEBIT",
                                  "mode": txn_mode(t.description), "balance": _money(t.balance_after),
                                  "reference": txn_reference(t.description)} for t in txns]}


def analyse(accounts: list[tuple], start: date, end: date) -> dict:
    """The AA-BSA analysis of the statement transactions (finpass.md s.8), all accounts together.

    ``accounts``: [(account, transactions in (start, end], opening balance)]. Balances per day come from
    ``analytics.balance_history``; a month's balance is its average daily balance (ADB)."""
    first = start + timedelta(days=1)
    txns = sorted((t for _, ts, _ in accounts for t in ts), key=lambda t: t.booking_date)
    months = months_between(first, end)
    daily: dict[date, Decimal] = defaultdict(Decimal)
    for account, ts, opening in accounts:
        closing = ts[-1].balance_after if ts else opening
        for day, balance in balance_history(closing, ts, first, end):
            daily[day] += balance
    by_month: dict = defaultdict(list)
    for day, balance in sorted(daily.items()):
        by_month[month_key(day)].append((day, balance))
    adb = {m: sum(b for _, b in by_month[m]) / len(by_month[m]) for m in months if by_month[m]}

    credits = sum((t.amount for t in txns if t.amount > 0), Decimal(0))
    debits = -sum((t.amount for t in txns if t.amount < 0), Decimal(0))
    full_year = Decimal(12)
    income_total = sum((t.amount for t in txns if t.amount > 0 and t.category in INCOME_CATEGORIES), Decimal(0))
    avg_income = income_total / full_year
    salaries = [t for t in txns if t.amount > 0 and t.category in SALARY_CATEGORIES]
    salary_months = defaultdict(Decimal)
    for t in salaries:
        salary_months[month_key(t.booking_date)] += t.amount
    # stability over the complete months of the window: 100 - coefficient of variation (%), missing months count 0
    complete = [m for m in months if m != month_key(first) or first.day == 1][:12]
    series = [salary_months.get(m, Decimal(0)) for m in complete]
    stability = 0
    if series and sum(series) > 0:
        mean = statistics.fmean(float(v) for v in series)
        cv = statistics.pstdev(float(v) for v in series) / mean if mean else 1.0
        stability = max(0, min(100, round(100 - cv * 100)))

    emis: dict[str, list] = defaultdict(list)
    for t in txns:
        if t.amount < 0 and t.category in EMI_CATEGORIES:
            emis[t.counterparty].append(t)
    obligations = []
    for lender, items in sorted(emis.items()):
        monthly = abs(items[-1].amount)
        obligations.append({"description": items[-1].description, "lender": lender,
                            "category": "Home Loan EMI" if items[-1].category == "mortgage" else "Loan EMI",
                            "monthly_amount": _money(monthly), "occurrences": len(items),
                            "last_paid_on": items[-1].booking_date.isoformat()})
    total_emi = sum((Decimal(str(o["monthly_amount"])) for o in obligations), Decimal(0))
    foir = float((total_emi / avg_income).quantize(Decimal("0.0001"), ROUND_HALF_UP)) if avg_income > 0 else None

    trends = []
    for m in months:
        in_month = [t for t in txns if month_key(t.booking_date) == m]
        trends.append({"month": month_label(m),
                       "credits": _money(sum((t.amount for t in in_month if t.amount > 0), Decimal(0))),
                       "debits": _money(-sum((t.amount for t in in_month if t.amount < 0), Decimal(0))),
                       "closing_balance": _money(by_month[m][-1][1]) if by_month[m] else None})
    stressed = 0
    for m, days in by_month.items():
        tail = [b for _, b in days[-STRESS_DAYS:]]
        if adb.get(m) and adb[m] > 0 and min(tail) < adb[m] * STRESS_SHARE:
            stressed += 1
    return {
        "analysis_period": {"from": first.isoformat(), "to": end.isoformat()},
        "summary": {"total_credits": _money(credits), "total_debits": _money(debits),
                    "average_monthly_balance": _money(sum(adb.values()) / len(adb)) if adb else 0.0,
                    "minimum_monthly_balance": _money(min(adb.values())) if adb else 0.0},
        "income": {"average_monthly_income": _money(avg_income), "income_stability_score": stability,
                   "identified_salary_credits": [
                       {"date": t.booking_date.isoformat(), "amount": _money(t.amount), "narration": t.description,
                        "employer": t.counterparty} for t in salaries]},
        "obligations": {"fixed_obligations": obligations, "fixed_obligations_ratio": foir},
        "monthly_trends": trends,
        "risk_flags": {"emi_bounces": sum(1 for t in txns if t.amount < 0 and BOUNCE_RE.search(t.description)),
                       "salary_reversals": sum(1 for t in txns if t.amount < 0 and REVERSAL_RE.search(t.description)
                                               and "SAL" in t.description.upper()),
                       "end_of_month_stress": stressed >= STRESS_MONTHS, "stressed_months": stressed},
    }


__all__ = ["AABSAJourney", "SCENARIOS", "aa_bsa_journey_page", "analyse"]
